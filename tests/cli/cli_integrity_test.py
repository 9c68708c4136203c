#!/usr/bin/env python3
"""The store's integrity as a user meets it through the real `tidings` binary.

Usage: cli_integrity_test.py /path/to/tidings [Class.test_x]

- One-shot writers (`tidings send`, one process each) keep db/ bounded.
- `tidings log` (read-only) while one-shot writers run, and so compact and
  delete files, never reports a corrupt store (exit 5) or an I/O error.
- A bit flipped anywhere in a table before its footer: `log` and `export` either fail (exit 5)
  or show all 40 messages, never fewer with exit 0; `verify` fails.

TIDINGS_SOAK=1: 1,000 sends and 1,000 reads (default 30 sends, 40 reads, 20 flips).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import tidings_unittest  # noqa: E402

TIDINGS = None  # set from argv in __main__
EXIT_CORRUPT = 5
SOAK = os.environ.get("TIDINGS_SOAK") == "1"
PREFIX = 64  # engine/encrypted_env.cc: each file starts with a 64-byte plaintext prefix
# The footer (53 bytes) ends every table; its zero padding is read by nothing,
# so a flip there changes nothing. corruption_test.cc flips its other bytes.
FOOTER = 53


class CliIntegrity(tidings_unittest.TestCase):
    def setUp(self):
        super().setUp()
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.d = tmp.name
        self.store = os.path.join(self.d, "store")
        self.g = ["--store", self.store, "--key-file", self.store + ".key"]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}

    def tidings(self, *args, g=None):
        return subprocess.run([TIDINGS, *(g or self.g), *args], capture_output=True, text=True,
                              env=self.env, timeout=120, stdin=subprocess.DEVNULL)

    def send(self, i, g=None):
        p = self.tidings("send", "-c", "c", f"message {i:04d}", g=g)
        self.check(p.returncode == 0, f"send {i}: exit {p.returncode}: {p.stderr.strip()}")

    def db_files(self):
        return len(os.listdir(os.path.join(self.store, "db")))

    def test_one_shot_sends_keep_the_file_count_bounded(self):
        sends = 1000 if SOAK else 30
        self.assertEqual(self.tidings("init", "--user", "alice").returncode, 0)
        most = 0
        for i in range(sends):
            self.send(i)
            most = max(most, self.db_files())
        print(f"{sends} one-shot `tidings send`: {self.db_files()} files in db/ (at most {most})")
        self.check(most <= 48, f"db/ grew to {most} files")
        log = self.tidings("--json", "log", "-c", "c", "--limit", "10000")
        self.check(log.returncode == 0 and len(log.stdout.splitlines()) == sends,
                   f"log shows every message: {len(log.stdout.splitlines())} of {sends}")

    def test_reads_while_one_shot_writers_compact_never_alarm(self):
        reads = 1000 if SOAK else 40
        self.assertEqual(self.tidings("init", "--user", "alice").returncode, 0)
        self.send(-1)  # the conversation exists before the first read
        stop = threading.Event()
        sent = [0]

        def writer():
            while not stop.is_set():
                self.send(sent[0])
                sent[0] += 1

        t = threading.Thread(target=writer)
        t.start()
        alarms = []
        try:
            for i in range(reads):
                p = self.tidings("log", "-c", "c", "--limit", "5")
                if p.returncode != 0:
                    alarms.append(f"log {i}: exit {p.returncode}: {p.stderr.strip()}")
        finally:
            stop.set()
            t.join()
        print(f"{reads} `tidings log` during {sent[0]} one-shot sends: {len(alarms)} false alarms")
        self.check(not alarms, "\n".join(alarms[:5]))

    def test_a_flipped_bit_in_a_table_is_never_a_shorter_history(self):
        self.assertEqual(self.tidings("init", "--user", "alice").returncode, 0)
        for i in range(40):
            self.send(i)
        db = os.path.join(self.store, "db")
        tables = sorted(f for f in os.listdir(db) if f.endswith(".sst"))
        self.assertTrue(tables)
        trials = 400 if SOAK else 20
        def body(t):
            return os.path.getsize(os.path.join(db, t)) - PREFIX - FOOTER

        total = sum(body(t) for t in tables)
        stride = max(1, total // trials)
        counts = {"tried": 0, "log or export failed": 0, "verify failed": 0}
        pos = stride // 2
        for n in range(trials):
            # The n-th flip: walk the tables' ciphertext at an even stride.
            at, which = pos, 0
            while at >= body(tables[which]):
                at -= body(tables[which])
                which += 1
            pos += stride
            trial = os.path.join(self.d, "trial")
            shutil.rmtree(trial, ignore_errors=True)
            shutil.copytree(self.store, trial)
            with open(os.path.join(trial, "db", tables[which]), "r+b") as f:
                f.seek(PREFIX + at)
                b = f.read(1)[0]
                f.seek(PREFIX + at)
                f.write(bytes([b ^ (1 << (n % 8))]))
            g = ["--store", trial, "--key-file", self.store + ".key"]
            counts["tried"] += 1
            failed = False
            for cmd in (["--json", "log", "-c", "c", "--limit", "1000"], ["export"]):
                p = self.tidings(*cmd, g=g)
                if p.returncode == 0:
                    shown = len(p.stdout.splitlines())
                    self.check(shown == 40, f"{tables[which]}+{at} bit {n % 8}: {' '.join(cmd)}: exit 0 "
                                            f"with {shown} of 40 messages")
                else:
                    failed = True
                    self.check(p.returncode == EXIT_CORRUPT, f"{cmd}: exit {p.returncode}: {p.stderr}")
            counts["log or export failed"] += failed
            v = self.tidings("verify", g=g)
            counts["verify failed"] += v.returncode != 0
            self.check(v.returncode == EXIT_CORRUPT,
                       f"{tables[which]}+{at} bit {n % 8}: verify exit {v.returncode}")
        print(f"flips across {len(tables)} tables: {counts}")


if __name__ == "__main__":
    TIDINGS = sys.argv[1]
    unittest.main(argv=[sys.argv[0], *sys.argv[2:]], verbosity=2)
