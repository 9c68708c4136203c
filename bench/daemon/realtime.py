#!/usr/bin/env python3
"""Real-time delivery benchmark: two pairs of `tidings daemon`s side by side in
one run, each pair on its own tidings-chime-local - one serving the messaging
WebSocket (TLS, a throwaway CA), one without it, so that pair can only poll -
both with the default poll settings (2 s while a conversation is active).

Usage: python3 bench/daemon/realtime.py build/cli/tidings [--messages N]
           [--idle-seconds S] [--gap N] [--chime-local PATH]

- Delivery latency A -> B: messages go to the two pairs in turn (interleaved),
  spaced randomly over the poll cycle. Latency = B's daemon logs
  message.received - the message id's UUIDv7 time (taken by the client just
  before it hands the message to A's daemon). Same machine, same clock.
- Idle cost: B's REST requests (tidings_backend_requests_total on /metrics)
  and CPU (utime+stime) over --idle-seconds with no writes, per hour.
- Catch-up: B's socket is dropped and refused while A writes --gap messages;
  then connects are allowed again. Reported: from allowing connects to B
  having merged the last one, and from B's realtime.up to that."""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "daemon"))
from measure import cpu_seconds, log_ms, pct, uuid7_ms  # noqa: E402
from daemon_util import ChimeLocal, Daemon, clean_env, metrics  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("tidings")
ap.add_argument("--messages", type=int, default=40)
ap.add_argument("--idle-seconds", type=int, default=60)
ap.add_argument("--gap", type=int, default=500)
ap.add_argument("--chime-local", help="tidings-chime-local (default: next to the build's cli/)")
args = ap.parse_args()
T = args.tidings
CHIME_LOCAL = args.chime_local or os.path.join(os.path.dirname(os.path.abspath(T)), "..",
                                               "emulator", "chime", "tidings-chime-local")
CONV = "bench"


class Pair:
    def __init__(self, d, label, tls, sync_extra=""):
        self.label = label
        self.dir = os.path.join(d, label)
        os.makedirs(self.dir)
        self.server = ChimeLocal(CHIME_LOCAL, self.dir, tls=tls)
        self.env = clean_env({**self.server.env(), "HOME": self.dir})
        self.g, self.daemons = {}, {}
        for name, user in (("a", "alice"), ("b", "bob")):
            store, key = os.path.join(self.dir, name), os.path.join(self.dir, name + ".key")
            self.cli("--store", store, "init", "--user", user)
            self.g[name] = ["--store", store, "--key-file", key]
            cfg = os.path.join(self.dir, name + ".toml")
            with open(cfg, "w") as f:
                f.write(f'[store]\npath = "{store}"\nkey_file = "{key}"\n[sync]\n'
                        f'backends = ["chime"]\n{sync_extra if name == "b" else ""}'
                        f'[log]\nlevel = "debug"\n'
                        f'[metrics]\nlisten = "127.0.0.1:0"\n{self.server.config(user)}')
            if name == "a":
                self.cli(*self.g["a"], "conversation", "create", CONV, "--member", "bob")
            self.daemons[name] = Daemon.start(T, [], ["--config", cfg], self.env,
                                              os.path.join(self.dir, name + ".log"))

    def cli(self, *a):
        return subprocess.run([T, *a], env=self.env, capture_output=True, text=True,
                              check=True).stdout.strip()

    def send(self, body):
        return self.cli(*self.g["a"], "send", "-c", CONV, body)

    def received(self):
        """message id -> when B's daemon merged it (ms)."""
        out = {}
        for line in self.daemons["b"].log().splitlines():
            m = re.match(r"(\S+) DEBUG message\.received .*message=(\S+)", line)
            if m:
                out.setdefault(m.group(2), log_ms(m.group(1)))
        return out

    def wait_received(self, mid, timeout=60):
        end = time.time() + timeout
        while time.time() < end and mid not in self.received():
            time.sleep(0.05)
        return mid in self.received()

    def b_requests(self):
        m, _ = metrics(self.daemons["b"].metrics_port())
        return m.get('tidings_backend_requests_total{backend="chime"}', 0)

    def stop(self):
        for dm in self.daemons.values():
            dm.stop()
        self.server.stop()


with tempfile.TemporaryDirectory() as d:
    # The socket pair's B polls once an hour: with the socket up it does not
    # poll at all, and the catch-up below is then the socket's alone (with a
    # 2 s poll, B would catch up by polling while its socket is refused).
    ws = Pair(d, "websocket", tls=True,
              sync_extra="active_poll_ms = 3600000\nidle_poll_ms = 3600000\n")
    poll = Pair(d, "polling", tls=False)
    pairs = (ws, poll)
    for p in pairs:  # B learns the conversation and its keys; it becomes active
        if not p.wait_received(p.send("warm-up"), timeout=90):
            sys.exit(f"{p.label}: the warm-up message never arrived")
    ids = {p.label: [] for p in pairs}
    rng = random.Random(7)
    for i in range(args.messages):
        for p in pairs:  # interleaved: both pairs see the same machine load
            time.sleep(rng.uniform(0.05, 2.05))
            ids[p.label].append(p.send(f"m{i}"))
    latency = {}
    for p in pairs:
        p.wait_received(ids[p.label][-1])
        got = p.received()
        lat = [got[i] - uuid7_ms(i) for i in ids[p.label] if i in got]
        latency[p.label] = {"delivered": len(lat), "sent": len(ids[p.label]),
                            "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat)}
        print(f"{p.label}: {len(lat)}/{len(ids[p.label])} delivered, p50 {pct(lat, 50):.0f} ms, "
              f"p99 {pct(lat, 99):.0f} ms, max {max(lat):.0f} ms", flush=True)

    # Idle: the conversation is still active (polled every 2 s without a socket).
    idle = {}
    time.sleep(5)
    before = {p.label: (p.b_requests(), cpu_seconds(p.daemons["b"].proc.pid)) for p in pairs}
    t0 = time.time()
    time.sleep(args.idle_seconds)
    secs = time.time() - t0
    for p in pairs:
        r0, c0 = before[p.label]
        req, cpu = p.b_requests() - r0, cpu_seconds(p.daemons["b"].proc.pid) - c0
        idle[p.label] = {"requests_per_hour": req / secs * 3600, "cpu_s_per_hour": cpu / secs * 3600}
        print(f"{p.label}: idle B: {req:.0f} requests and {cpu:.2f} s CPU in {secs:.0f} s -> "
              f"{req / secs * 3600:.0f} requests and {cpu / secs * 3600:.1f} s CPU per hour",
              flush=True)

    # Catch-up after a reconnect (the WebSocket pair).
    b_log = ws.daemons["b"]
    ups = b_log.log().count("realtime.up")
    ws.server.realtime_faults(refuse_status=503)
    ws.server.drop_sockets(user="bob")
    gap = [ws.send(f"gap {i}") for i in range(args.gap)]
    time.sleep(1)  # A has pushed them (its pushes follow each write at once)
    allowed = time.time() * 1000
    ws.server.realtime_faults()
    ws.wait_received(gap[-1], timeout=300)
    got = ws.received()
    up_at = None
    for line in b_log.log().splitlines():
        if "realtime.up" in line:
            ups -= 1
            if ups < 0:
                up_at = log_ms(line.split()[0])
                break
    done = max(got[i] for i in gap if i in got)
    catch = {"messages": len([i for i in gap if i in got]), "gap": len(gap),
             "from_allowed_ms": done - allowed,
             "from_socket_up_ms": None if up_at is None else done - up_at}
    print(f"catch-up: {catch['messages']}/{len(gap)} merged, {done - allowed:.0f} ms after "
          f"connects were allowed" + ("" if up_at is None else
                                      f", {done - up_at:.0f} ms after the socket came up"),
          flush=True)
    for p in pairs:
        p.stop()
    print(json.dumps({"latency": latency, "idle": idle, "catch_up": catch}))
