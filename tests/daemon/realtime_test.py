#!/usr/bin/env python3
"""Real-time delivery between two `tidings daemon`s through tidings-chime-local's
messaging WebSocket (TLS, presigned connect), with polling turned down to
once an hour so that only the socket and the gap fill after a reconnect can
deliver anything within a test.

Usage: realtime_test.py /path/to/tidings /path/to/tidings-chime-local [unittest args]

Cases: delivery over the socket (end-to-end and plaintext conversations); a
500-message gap (100 when TIDINGS_SANITIZED=1) while B's socket is down (dropped by the fault switch, then
refused until the gap is written), and while the emulator restarts; kill -9
of B's daemon while its socket is up; a device whose clock is 20 minutes slow
(libfaketime; not under the sanitizers). Every case checks that B holds every message exactly once, in
the order A holds them."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import tidings_unittest  # noqa: E402
from daemon_util import ChimeLocal, Daemon, clean_env  # noqa: E402
from wss import libfaketime  # noqa: E402

TIDINGS = os.path.abspath(sys.argv[1])
CHIME_LOCAL = os.path.abspath(sys.argv[2])
HOUR_MS = 3_600_000
# Each message is one `tidings send` process: under the sanitizers (every
# process start several times slower) the gap is 100, not 500.
GAP = 100 if os.environ.get("TIDINGS_SANITIZED") == "1" else 500


class Device:
    """A store with its own daemon: polls once an hour, pushes at once."""

    def __init__(self, d, server, user, env, wrap=()):
        self.user, self.env, self.wrap = user, env, list(wrap)
        self.store, self.key = os.path.join(d, user), os.path.join(d, user + ".key")
        self.g = ["--store", self.store, "--key-file", self.key]
        self.cfg = os.path.join(d, user + ".toml")
        self.log_path = os.path.join(d, user + ".log")
        self.run("--store", self.store, "init", "--user", user)
        with open(self.cfg, "w") as f:
            f.write(f"""[store]
path = "{self.store}"
key_file = "{self.key}"
[sync]
backends = ["chime"]
active_poll_ms = {HOUR_MS}
idle_poll_ms = {HOUR_MS}
base_backoff_ms = 50
max_backoff_ms = 500
[log]
level = "debug"
""" + server.config(user))
        self.daemon = None

    def run(self, *args, check=True):
        p = subprocess.run([TIDINGS, *args], env=self.env, capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"tidings {' '.join(args[:4])}... exit {p.returncode}: {p.stderr}")
        return p

    def start(self):
        # A wrapper (env with libfaketime) goes in front: [wrapper, its args..., tidings, daemon ...].
        program, pre = (self.wrap[0], self.wrap[1:] + [TIDINGS]) if self.wrap else (TIDINGS, [])
        self.daemon = Daemon.start(program, pre, ["--config", self.cfg], self.env, self.log_path)
        return self

    def up_count(self):
        return self.daemon.log().count("realtime.up")

    def wait_up(self, after=0, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            if self.up_count() > after:
                return True
            if self.daemon.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def send(self, conv, body):
        return self.run(*self.g, "send", "-c", conv, body).stdout.strip()

    def messages(self, conv):
        """(id, body) of every message, in the conversation's order."""
        p = self.run(*self.g, "--json", "log", "-c", conv, "--limit", "100000", check=False)
        if p.returncode != 0:
            return []
        return [(m["id"], m["body"]) for m in map(json.loads, p.stdout.splitlines())]


class RealtimeDelivery(tidings_unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tidings-rt-")
        self.server = ChimeLocal(CHIME_LOCAL, self.dir, data_dir=os.path.join(self.dir, "chime"),
                                 tls=True)
        self.env = clean_env({**self.server.env(), "HOME": self.dir})
        self.devices = []

    def tearDown(self):
        for dev in self.devices:
            if dev.daemon:
                dev.daemon.stop()
        self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def device(self, user, wrap=()):
        dev = Device(self.dir, self.server, user, self.env, wrap)
        self.devices.append(dev)
        return dev

    def pair(self, plaintext=False, b_wrap=()):
        a, b = self.device("alice"), self.device("bob", b_wrap)
        a.run(*a.g, "conversation", "create", "consult", "--member", "bob",
              *(["--plaintext"] if plaintext else []))
        a.start(), b.start()
        self.assertTrue(a.wait_up() and b.wait_up(), "both push channels came up:\n"
                        + a.daemon.log()[-2000:] + b.daemon.log()[-2000:])
        return a, b

    def converge(self, a, b, want, timeout=90):
        """Waits until B holds `want` messages; checks A and B agree exactly."""
        end, got = time.time() + timeout, []
        while time.time() < end:
            got = b.messages("consult")
            if len(got) >= want:
                break
            time.sleep(0.2)
        ids = [m[0] for m in got]
        self.check(len(ids) == len(set(ids)), f"B holds a message twice ({len(ids)} rows, "
                   f"{len(set(ids))} distinct)")
        self.check(len(got) == want, f"B holds {len(got)} of {want} messages")
        self.check(got == a.messages("consult"), "B's history is A's, in the same order")
        return got

    def test_delivered_over_the_socket_end_to_end(self):
        a, b = self.pair()
        for i in range(20):
            a.send("consult", f"over the socket {i}")
        self.converge(a, b, 20)

    def test_delivered_over_the_socket_plaintext(self):
        a, b = self.pair(plaintext=True)
        for i in range(20):
            a.send("consult", f"plain over the socket {i}")
        got = self.converge(a, b, 20)
        self.check(got[-1][1] == "plain over the socket 19", f"newest body: {got[-1]}")

    def test_a_conversation_made_while_the_socket_is_up(self):
        # No listing timer runs while the socket is up: the membership event
        # is how B learns of it.
        a, b = self.pair()
        a.run(*a.g, "conversation", "create", "followup", "--member", "bob")
        a.send("followup", "a new conversation")
        end, got = time.time() + 30, []
        while time.time() < end and not got:
            got = b.messages("followup")
            time.sleep(0.2)
        self.check([m[1] for m in got] == ["a new conversation"], f"B got it: {got}")

    def test_a_gap_of_500_while_the_socket_is_down(self):
        a, b = self.pair()
        a.send("consult", "before the gap")
        self.converge(a, b, 1)
        ups = b.up_count()
        self.server.realtime_faults(refuse_status=503)  # B cannot come back yet
        self.server.drop_sockets(user="bob")            # abruptly: B sees 1006
        for i in range(GAP):
            a.send("consult", f"gap {i}")
        self.server.realtime_faults()
        self.check(b.wait_up(after=ups, timeout=60), "B's push channel came back")
        self.converge(a, b, GAP + 1, timeout=120)

    def test_a_gap_while_the_emulator_restarts(self):
        a, b = self.pair()
        a.send("consult", "before the restart")
        self.converge(a, b, 1)
        ups = b.up_count()
        self.server.restart()
        for i in range(100):
            a.send("consult", f"after the restart {i}")
        self.check(b.wait_up(after=ups, timeout=60), "B's push channel came back")
        self.converge(a, b, 101, timeout=120)

    def test_kill_9_while_the_socket_is_up(self):
        a, b = self.pair()
        for i in range(30):
            a.send("consult", f"before the kill {i}")
        self.converge(a, b, 30)
        b.daemon.kill()
        for i in range(50):
            a.send("consult", f"while B is dead {i}")
        b.start()
        self.check(b.wait_up(), "B's push channel came up after the restart")
        self.converge(a, b, 80)
        self.check(b.run(*b.g, "verify", check=False).returncode == 0, "B's store verifies")

    # ASan's allocator reads the clock the first time it maps memory for a
    # size class; preloaded, libfaketime answers that first call by setting
    # itself up, which allocates, and when that allocation needs the same
    # size class the process deadlocks at start (seen in one ASan build of
    # two from the same source). The release build runs this case.
    @unittest.skipUnless(libfaketime(), "libfaketime is missing")
    @unittest.skipIf(os.environ.get("TIDINGS_SANITIZED") == "1",
                     "libfaketime can deadlock an ASan build's allocator at start")
    def test_a_clock_20_minutes_slow(self):
        # B's wall clock is 20 minutes behind; its monotonic clock is left
        # alone (timeouts and backoff stay true).
        self.env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
        slow = ["env", f"LD_PRELOAD={libfaketime()}", "FAKETIME=-20m"]
        a, b = self.pair(b_wrap=slow)
        for i in range(10):
            a.send("consult", f"to a slow clock {i}")
        self.converge(a, b, 10)
        # And the other way: B's messages reach A.
        p = subprocess.run([*slow, TIDINGS, *b.g, "send", "-c", "consult", "from a slow clock"],
                           env=self.env, capture_output=True, text=True)
        self.check(p.returncode == 0, f"send on the slow device: {p.stderr}")
        end = time.time() + 60
        while time.time() < end and len(a.messages("consult")) < 11:
            time.sleep(0.2)
        self.check(len(a.messages("consult")) == 11, "A got the slow device's message")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], *sys.argv[3:]])
