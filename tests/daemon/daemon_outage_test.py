#!/usr/bin/env python3
"""Backend outage: the DynamoDB server goes away (connections refused) while
the app keeps writing through the daemon, then comes back on the same port.
The daemon must back off instead of spinning - the request count in /metrics
stays small during the outage - and then catch up: every message written
during the outage reaches the server exactly once.

The server is moto_server behind a TCP forwarder on a fixed port that this
test closes and reopens: moto keeps its tables in memory, so a restarted moto
would come back empty and the daemon would (rightly) see "no such table", a
different failure. Closing the port is what a dead server or network looks
like to the daemon.

Usage: daemon_outage_test.py /path/to/tidings [unittest arguments]
Env: TIDINGS_SOAK=1 makes the outage 3 minutes with the production backoff
cap (60 s) instead of 8 s with a 2 s cap."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

from daemon_util import Daemon, Moto, clean_env, free_port, healthz, metrics, server_ops
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import tidings_unittest  # noqa: E402

TIDINGS = sys.argv[1]
soak = os.environ.get("TIDINGS_SOAK") == "1"
OUTAGE_S = 180 if soak else 8
MAX_BACKOFF_MS = 60_000 if soak else 2_000
IDLE_POLL_MS = 60_000 if soak else 1_000
# Measured after the backoff ramped up to its cap (base 100 ms doubling).
SETTLE_S = 90 if soak else 2
c = None  # the running case (tidings_unittest.TestCase): checks are recorded on it


class Forwarder:
    """127.0.0.1:port -> target, which stop() closes (listener and every
    connection) and start() reopens on the same port."""

    def __init__(self, port, target):
        self.port, self.target = port, target
        self.lock = threading.Lock()
        self.conns = []
        self.listener = None
        self.hang = False  # accept connections but never answer

    def start(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def stop(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.conns = []

    def _accept(self, listener):
        while True:
            try:
                a, _ = listener.accept()
            except OSError:
                return
            if self.hang:
                with self.lock:
                    self.conns.append(a)
                continue
            try:
                b = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                a.close()
                continue
            with self.lock:
                self.conns += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pipe, args=(x, y), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def wait_drained(g, env, timeout):
    end = time.time() + timeout
    while time.time() < end:
        p = subprocess.run([TIDINGS, *g, "--json", "stats"], env=env, capture_output=True, text=True)
        if p.returncode == 0 and json.loads(p.stdout)["outbox"] == 0:
            return True
        time.sleep(0.2)
    return False


class BackendOutage(tidings_unittest.TestCase):
    def test_backs_off_without_spinning_and_catches_up(self):
        global c
        c = self
        with tempfile.TemporaryDirectory() as d:
            moto = Moto(d)
            fwd = Forwarder(free_port(), moto.port)
            fwd.start()
            dmn = None
            try:
                env = clean_env({**moto.env(), "HOME": d,
                                 "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{fwd.port}"})
                subprocess.run([TIDINGS, "dynamodb", "create-table"], env=env, check=True,
                               capture_output=True)
                store, key = os.path.join(d, "a"), os.path.join(d, "a.key")
                g = ["--store", store, "--key-file", key]
                subprocess.run([TIDINGS, "--store", store, "init", "--user", "kiosk"], env=env, check=True,
                               capture_output=True)
                cfg = os.path.join(d, "daemon.toml")
                with open(cfg, "w") as f:
                    f.write(f"""[store]
path = "{store}"
key_file = "{key}"
[sync]
active_poll_ms = 200
idle_poll_ms = {IDLE_POLL_MS}
base_backoff_ms = 100
max_backoff_ms = {MAX_BACKOFF_MS}
connect_timeout_ms = 1000
request_timeout_ms = 30000
[metrics]
listen = "127.0.0.1:0"
""")
                dmn = Daemon.start(TIDINGS, [], ["--config", cfg], env, os.path.join(d, "daemon.log"))
                port = dmn.metrics_port()
                ids = []

                def send(conv, body):
                    p = subprocess.run([TIDINGS, *g, "send", "-c", conv, body], env=env,
                                       capture_output=True, text=True)
                    c.check(p.returncode == 0, f"send during the test: {p.stderr}")
                    ids.append(p.stdout.strip())

                for i in range(6):
                    send(f"c{i % 3}", f"before {i}")
                c.check(wait_drained(g, env, 20), "first messages pushed")

                fwd.stop()
                t_down = time.time()
                for i in range(9):
                    send(f"c{i % 3}", f"during {i}")
                time.sleep(SETTLE_S)  # the first failures and quick retries
                m0, _ = metrics(port)
                r0 = m0['tidings_backend_requests_total{backend="dynamodb"}']
                time.sleep(max(0, OUTAGE_S - (time.time() - t_down)))
                m1, text = metrics(port)
                r1 = m1['tidings_backend_requests_total{backend="dynamodb"}']
                window = time.time() - t_down - SETTLE_S
                rate = (r1 - r0) / window
                errors = sum(v for k, v in m1.items() if k.startswith("tidings_backend_errors_total"))
                retries = m1['tidings_backend_retries_total{backend="dynamodb"}']
                lag = m1['tidings_pull_lag_seconds{backend="dynamodb"}']
                print(f"outage {OUTAGE_S}s (backoff cap {MAX_BACKOFF_MS} ms): {r1 - r0:.0f} requests in "
                      f"the last {window:.1f}s ({rate:.1f}/s) for 3 conversations; "
                      f"{retries:.0f} retries and "
                      f"{errors:.0f} errors in all", flush=True)
                # A spin would be thousands per second (a refused connect is instant).
                # Expected: 3 conversations + the listing, each call tried 3 times by
                # the AWS client, about once per half backoff cap (full jitter) or
                # idle poll (the listing); 1.5x slack.
                bound = 1.5 * 3 * (3 + 1) / (min(MAX_BACKOFF_MS, IDLE_POLL_MS) / 2000)
                c.check(rate < bound, f"{rate:.1f} requests/s during the outage (bound {bound:.1f})")
                c.check(lag > OUTAGE_S / 2, f"pull lag shows the outage: {lag}")
                c.check(m1.get('tidings_backend_errors_total{backend="dynamodb",kind="unavailable"}', 0) > 0,
                        "unavailable errors counted")
                code, _ = healthz(port)
                c.check(code == 200, f"/healthz during an outage (sync keeps trying): {code}")

                fwd.start()
                t_up = time.time()
                c.check(wait_drained(g, env, MAX_BACKOFF_MS / 1000 * 3 + 15), "caught up after the outage")
                print(f"caught up {time.time() - t_up:.1f}s after the server came back", flush=True)
                # The outbox drains when the last push is acknowledged; the pull of the
                # same round records its success a moment later (seen: 0.1 s), so the
                # lag gets one backoff cap to come back, not a single sample.
                lag_deadline = time.time() + MAX_BACKOFF_MS / 1000
                while True:
                    m2, _ = metrics(port)
                    lag = m2['tidings_pull_lag_seconds{backend="dynamodb"}']
                    if lag < OUTAGE_S / 2 or time.time() > lag_deadline:
                        break
                    time.sleep(0.05)
                c.check(lag < OUTAGE_S / 2, f"pull lag back to normal: {lag}")
                sends = [op[2] for op in server_ops(moto.endpoint, moto.creds) if op[1] in (1, None)]
                for i in ids:
                    c.check(sends.count(i) == 1, f"{i} on the server {sends.count(i)} times")
                # SIGTERM while a request hangs (the server accepts and never answers,
                # request_timeout_ms is 30 s): the daemon abandons the request after
                # its 1 s grace and exits promptly.
                fwd.stop()
                fwd.hang = True
                fwd.start()
                send("c0", "while hanging")
                time.sleep(0.5)
                t0 = time.monotonic()  # a duration: immune to wall-clock steps
                rc = dmn.stop()
                took = time.monotonic() - t0
                dmn = None
                print(f"SIGTERM with a request hanging: exit {rc} after {took:.2f}s", flush=True)
                c.check(rc == 0 and took < 2.5, f"SIGTERM with a hanging request: exit {rc} in {took:.2f}s")
            finally:
                if dmn:
                    dmn.kill()
                fwd.stop()
                moto.stop()


if __name__ == "__main__":
    del sys.argv[1:2]  # the paths read above; the rest is unittest's
    tidings_unittest.main()
