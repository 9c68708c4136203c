#!/usr/bin/env python3
"""`tidings log` (a read-only open) while the daemon restarts in a loop never
reports a corrupt store or an I/O error: each daemon start replays and flushes
its WAL, each stop flushes and compacts, and the files it deletes are a race
for a reader, not damage (engine/open_retry.h).

Usage: daemon_restart_reads_test.py /path/to/tidings
TIDINGS_SOAK=1: 1,000 reads (default 60). No backend is reachable: the daemon
only backs off, which is all this test needs from it.
"""
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import tidings_unittest  # noqa: E402
from daemon_util import Daemon, clean_env, free_port  # noqa: E402

TIDINGS = None
READS = 1000 if os.environ.get("TIDINGS_SOAK") == "1" else 60


class DaemonRestarts(tidings_unittest.TestCase):
    def test_reads_during_restarts_never_falsely_alarm(self):
        with tempfile.TemporaryDirectory() as d:
            env = clean_env({"HOME": d, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
                             "AWS_REGION": "us-east-1",
                             "AWS_ENDPOINT_URL_DYNAMODB": f"http://127.0.0.1:{free_port()}"})
            store, key = os.path.join(d, "a"), os.path.join(d, "a.key")
            g = ["--store", store, "--key-file", key]

            def tidings(*args):
                return subprocess.run([TIDINGS, *args], env=env, capture_output=True, text=True,
                                      stdin=subprocess.DEVNULL, timeout=60)

            self.assertEqual(tidings(*g, "init", "--user", "kiosk").returncode, 0)
            self.assertEqual(tidings(*g, "send", "-c", "c", "first").returncode, 0)
            cfg = os.path.join(d, "daemon.toml")
            with open(cfg, "w") as f:
                f.write(f'[store]\npath = "{store}"\nkey_file = "{key}"\n'
                        "[sync]\nbase_backoff_ms = 1000\nmax_backoff_ms = 5000\n")
            stop = threading.Event()
            restarts = [0]
            rng = random.Random(17)

            def restarter():
                while not stop.is_set():
                    dmn = Daemon.start(TIDINGS, [], ["--config", cfg], env,
                                       os.path.join(d, "daemon.log"))
                    # Writes through the daemon, so each run has a WAL to flush.
                    for i in range(3):
                        tidings(*g, "send", "-c", "c", f"r{restarts[0]} {i}")
                    stop.wait(rng.uniform(0.05, 0.4))
                    dmn.stop()
                    restarts[0] += 1

            t = threading.Thread(target=restarter)
            t.start()
            alarms = []
            reads = 0
            # READS reads, and on a loaded machine (slow daemon starts) more,
            # until at least 3 restarts have raced them (a minute at most).
            deadline = time.monotonic() + 60
            try:
                while reads < READS or (restarts[0] < 3 and time.monotonic() < deadline):
                    p = tidings(*g, "log", "-c", "c", "--limit", "3")
                    if p.returncode != 0:
                        alarms.append(f"log {reads}: exit {p.returncode}: {p.stderr.strip()}")
                    reads += 1
            finally:
                stop.set()
                t.join()
            print(f"{reads} `tidings log` during {restarts[0]} daemon restarts: "
                  f"{len(alarms)} false alarms")
            self.check(restarts[0] >= 3, f"only {restarts[0]} restarts")
            self.check(not alarms, "\n".join(alarms[:5]))


if __name__ == "__main__":
    TIDINGS = sys.argv[1]
    unittest.main(argv=[sys.argv[0], *sys.argv[2:]], verbosity=2)
