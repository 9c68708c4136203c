#!/usr/bin/env python3
"""`tidings sync --backend chime` end to end: the real binary against the real
emulator (tidings-chime-local on 127.0.0.1, an ephemeral port, SigV4 checked).

Usage: cli_sync_chime_test.py /path/to/tidings /path/to/tidings-chime-local [Class.test_x]

Two stores exchange messages through one channel with one-shot syncs; the
errors a user can hit (no app instance, wrong secret, server gone) exit with
their codes and say what to do; nothing is lost while the server is away.
Each case starts its own emulator and stores.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import tidings_unittest  # noqa: E402

TIDINGS = CHIME_LOCAL = None  # set from argv in __main__
APP = "arn:aws:chime:us-east-1:123456789012:app-instance/cli-test"
ACCESS, SECRET = "AKIDCLITEST", "cli-test-secret-DO-NOT-LOG-3f9e"
EXIT_OK, EXIT_USAGE, EXIT_CREDENTIALS, EXIT_UNAVAILABLE = 0, 2, 4, 7


class SyncChime(tidings_unittest.TestCase):
    def setUp(self):
        super().setUp()
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        self.server = subprocess.Popen([CHIME_LOCAL, "--port", "0", "--access-key", ACCESS],
                                       env={**os.environ, "TIDINGS_CHIME_LOCAL_SECRET_KEY": SECRET},
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.addCleanup(self.stop_server)
        line = self.server.stdout.readline()
        if "listening on" not in line:
            self.fail(f"tidings-chime-local did not start: {line!r}")
        endpoint = line.split()[-1]
        self.g = {}
        for user in ("alice", "bob"):
            store = os.path.join(d.name, user)
            self.run_cli("--store", store, "init", "--user", user)
            self.g[user] = ["--store", store, "--key-file", store + ".key"]
            self.run_cli(*self.g[user], "conversation", "clinic", "--member", "alice",
                         "--member", "bob")
        self.sync_flags = ["sync", "--backend", "chime", "--chime-app-instance", APP,
                           "--chime-endpoint", endpoint]

    def stop_server(self):
        if self.server.poll() is None:
            self.server.kill()
            self.server.wait()
        self.server.stdout.close()

    def run_cli(self, *args, env=None, expect=0):
        e = {k: v for k, v in os.environ.items()
             if not k.startswith("TIDINGS_") and not k.startswith("AWS_")}
        e.update({"AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET,
                  "AWS_REGION": "us-east-1", "HOME": os.environ.get("TMPDIR", "/tmp")})
        e.update(env or {})
        p = subprocess.run([TIDINGS, *args], capture_output=True, text=True, env=e, timeout=60,
                           stdin=subprocess.DEVNULL)
        if expect is not None:
            self.check(p.returncode == expect,
                       f"{args}: exit {p.returncode}, expected {expect}; stderr: {p.stderr.strip()}")
        self.check(SECRET not in p.stdout + p.stderr, f"{args}: the secret appears in the output")
        return p

    def test_usage_errors_say_what_to_give(self):
        g = self.g
        # No app instance: a usage error that says what to give.
        p = self.run_cli(*g["alice"], "sync", "--backend", "chime", expect=EXIT_USAGE)
        self.check("--chime-app-instance" in p.stderr and "TIDINGS_CHIME_APP_INSTANCE_ARN" in p.stderr,
                   f"missing app instance explained: {p.stderr}")
        p = self.run_cli(*g["alice"], "sync", "--backend", "carrier-pigeon", expect=EXIT_USAGE)

    def test_two_stores_converge_after_a_refused_sync(self):
        g, sync_flags = self.g, self.sync_flags
        self.run_cli(*g["alice"], "send", "-c", "clinic", "hello bob")
        mid = self.run_cli(*g["alice"], "send", "-c", "clinic", "typo").stdout.strip()
        self.run_cli(*g["alice"], "edit", mid, "fixed")
        # Wrong secret: bad credentials (not a channel's permission: nothing is
        # parked), nothing leaves the outbox, and the next sync works.
        p = self.run_cli(*g["alice"], *sync_flags, env={"AWS_SECRET_ACCESS_KEY": "wrong"},
                         expect=EXIT_CREDENTIALS)
        self.check("check the AWS credentials" in p.stderr, f"wrong secret explained: {p.stderr}")
        outbox = self.run_cli(*g["alice"], "--json", "outbox").stdout.splitlines()
        self.check(len(outbox) == 3, f"outbox kept after a refused sync: {len(outbox)} entries")

        p = self.run_cli(*g["alice"], "--json", *sync_flags)
        summary = json.loads(p.stdout or "{}")
        self.check(summary.get("outbox") == 0 and summary.get("errors") == 0,
                   f"alice synced: {p.stdout}")
        self.run_cli(*g["bob"], *sync_flags)
        self.run_cli(*g["bob"], "send", "-c", "clinic", "hi alice")
        self.run_cli(*g["bob"], *sync_flags)
        self.run_cli(*g["alice"], *sync_flags)
        # End-to-end: on Chime a device is known only once it announced itself
        # in the channel, so bob gets the key of alice's first messages from
        # alice's last sync, and reads them at his next one.
        self.run_cli(*g["bob"], *sync_flags)
        logs = {u: self.run_cli(*g[u], "--json", "log", "-c", "clinic").stdout
                for u in ("alice", "bob")}
        bodies = {u: [json.loads(x)["body"] for x in logs[u].splitlines()] for u in logs}
        self.check(bodies["alice"] == bodies["bob"], f"both stores agree: {bodies}")
        self.check(bodies["alice"] == ["hello bob", "fixed", "hi alice"],
                   f"content: {bodies['alice']}")
        status = self.run_cli(*g["alice"], "--json", "status").stdout.splitlines()
        self.check(any(json.loads(x).get("backend") == "chime"
                       for x in status[0:] if x.startswith("{")),
                   f"status lists the chime backend: {status}")

    def test_server_gone_keeps_the_message_waiting(self):
        g, sync_flags = self.g, self.sync_flags
        self.run_cli(*g["bob"], *sync_flags)
        # The server goes away: exit 7, the message stays in the outbox.
        self.server.terminate()
        self.server.wait(10)
        self.run_cli(*g["bob"], "send", "-c", "clinic", "are you there?")
        p = self.run_cli(*g["bob"], *sync_flags, expect=EXIT_UNAVAILABLE)
        self.check("retried on the next sync" in p.stderr, f"unavailable explained: {p.stderr}")
        self.check(len(self.run_cli(*g["bob"], "--json", "outbox").stdout.splitlines()) == 1,
                   "the unsent message waits in the outbox")


if __name__ == "__main__":
    TIDINGS, CHIME_LOCAL = tidings_unittest.args(2, "/path/to/tidings /path/to/tidings-chime-local")
    tidings_unittest.main()
