#!/usr/bin/env python3
"""`tidings rekey` and `init --passphrase-profile`, run as a user runs them.

Usage: cli_rekey_test.py /path/to/tidings /path/to/hold_store [Class.test_x]
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_e2e_test as base  # noqa: E402
import tidings_unittest  # noqa: E402


class RekeyCase(base.CliTestCase):
    def header(self):
        with open(os.path.join(self.store, "TIDINGS"), "rb") as f:
            return f.read()

    def test_passphrase_key_file_and_rotation(self):
        self.run_cli(*self.g, "init", "--user", "ann")
        self.run_cli(*self.g, "send", "-c", "c", "before the rekey")
        s = ["--store", self.store]
        self.run_cli(*self.g, "rekey", expect=base.EXIT_USAGE)  # nothing to change
        self.run_cli(*self.g, "rekey", "--new-passphrase", "--new-key-file", "x",
                     expect=base.EXIT_USAGE)
        self.run_cli(*self.g, "rekey", "--new-passphrase", "--passphrase-profile", "fast",
                     env={"TIDINGS_NEW_PASSPHRASE": "pw"}, expect=base.EXIT_USAGE)
        p = self.run_cli(*self.g, "rekey", "--new-passphrase",
                         env={"TIDINGS_NEW_PASSPHRASE": "new pass"})
        self.check("key now a passphrase" in p.stdout, p.stdout)
        self.check("new pass" not in p.stdout + p.stderr, "the passphrase is never printed")
        self.run_cli(*self.g, "log", "-c", "c", expect=base.EXIT_KEY)
        self.run_cli(*s, "log", "-c", "c", env={"TIDINGS_PASSPHRASE": "old"}, expect=base.EXIT_KEY)
        p = self.run_cli(*s, "log", "-c", "c", env={"TIDINGS_PASSPHRASE": "new pass"})
        self.check("before the rekey" in p.stdout, p.stdout)

        # To a new key file and a new data key at once.
        k2 = os.path.join(self.d, "k2")
        p = self.run_cli("--json", *s, "rekey", "--rotate-data-key", "--new-key-file", k2,
                         env={"TIDINGS_PASSPHRASE": "new pass"})
        out = json.loads(p.stdout)
        self.check(out["data_key_rotated"] is True and out["key_file"] == k2, p.stdout)
        self.check(base.mode(k2) == 0o600, "the new key file is private")
        self.check(sorted(os.listdir(self.store)) == ["TIDINGS", "db-1"], os.listdir(self.store))
        p = self.run_cli(*s, "--key-file", k2, "log", "-c", "c")
        self.check("before the rekey" in p.stdout, p.stdout)
        p = self.run_cli(*s, "--key-file", k2, "verify")
        self.check("0 problems" in p.stdout, p.stdout)

    def test_rekey_refuses_a_held_store(self):
        self.run_cli(*self.g, "init", "--user", "ann")
        holder = subprocess.Popen([base.HOLDER, self.store, self.key], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            self.check(holder.stdout.readline().strip() == "ready", "the holder opened the store")
            p = self.run_cli(*self.g, "rekey", "--rotate-data-key", expect=base.EXIT_BUSY)
            self.check("another process" in p.stderr, p.stderr)
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
            holder.stdout.close()
        self.check(sorted(os.listdir(self.store)) == ["TIDINGS", "db"], "nothing changed")

    def test_init_profile_sets_the_argon2id_limits(self):
        s = ["--store", self.store]
        self.run_cli(*s, "init", "--user", "ann", "--passphrase", "--passphrase-profile",
                     "moderate", env={"TIDINGS_PASSPHRASE": "pw"})
        # The header holds the limits in plaintext: moderate is 256 MiB.
        self.check(b"\x80\x80\x80\x80\x01" in self.header(), "256 MiB (a varint) in the header")
        self.run_cli(*s, "stats", env={"TIDINGS_PASSPHRASE": "pw"})


if __name__ == "__main__":
    base.TIDINGS, base.HOLDER = tidings_unittest.args(2, "/path/to/tidings /path/to/hold_store")
    tidings_unittest.main()
