#!/usr/bin/env python3
"""End-to-end test of `tidings keys`, device trust, conversation modes and the
send-time limit, with the real `tidings` binary, as a user runs it.

Usage: cli_keys_test.py /path/to/tidings /path/to/e2e_keys_helper /path/to/hold_store [Class.test_x]

No server runs: other users' devices are pinned with e2e_keys_helper, as a
sync round would pin them, and a sync against a dead Chime endpoint is enough
for the store to learn Chime's limits. Every command's stdout and stderr is
kept, and each case ends by checking that none of this device's key bytes
(hex or base64, from the helper) ever appeared in them.
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_e2e_test as base  # noqa: E402
import tidings_unittest  # noqa: E402

HELPER = None  # set from argv in __main__
FINGERPRINT = re.compile(r"^[0-9]{5}( [0-9]{5}){5}$")
AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}
APP = "arn:aws:chime:us-east-1:123456789012:app-instance/app"


class KeysCase(base.CliTestCase):
    """alice's new store; every output of the case is kept and checked for key bytes."""

    def setUp(self):
        super().setUp()
        self.outputs = []
        self.run_cli(*self.g, "init", "--user", "alice")
        self.addCleanup(self.check_no_key_bytes)

    def run_cli(self, *args, **kw):
        p = super().run_cli(*args, **kw)
        self.outputs.append(p.stdout + p.stderr)
        return p

    def helper(self, *args):
        p = subprocess.run([HELPER, args[0], self.store, self.key, *args[1:]], capture_output=True,
                           text=True, timeout=60)
        self.check(p.returncode == 0, f"helper {args}: {p.stderr}")
        return p.stdout.split()

    def check_no_key_bytes(self):
        forms = self.helper("keys")
        self.check(len(forms) == 8, f"the helper lists 4 keys in 2 forms: {len(forms)}")
        seen = "\n".join(self.outputs)
        for f in forms:
            for variant in {f, f.upper(), f.rstrip("=")}:
                self.check(variant not in seen, "a key's bytes appeared in the CLI's output")

    def keys_json(self):
        rows = self.jsonl(self.run_cli(*self.g, "--json", "keys"), "keys --json")
        ident = [r for r in rows if r.get("kind") == "identity"]
        devices = [r for r in rows if r.get("kind") == "device"]
        changes = [r for r in rows if r.get("kind") == "key-change"]
        self.check(len(ident) == 1, f"one identity row: {rows}")
        return (ident or [{}])[0], devices, changes


class Keys(KeysCase):
    def test_keys_exist_after_init_with_stable_fingerprints(self):
        run, check, g = self.run_cli, self.check, self.g
        me, devices, changes = self.keys_json()
        check(re.fullmatch(r"[0-9a-f]{32}", me.get("device", "")), f"device id: {me}")
        check(FINGERPRINT.match(me.get("fingerprint", "")), f"device fingerprint: {me}")
        check(FINGERPRINT.match(me.get("user_fingerprint", "")), f"user fingerprint: {me}")
        check(len(devices) == 1 and devices[0]["this_device"] and devices[0]["user"] == "alice"
              and devices[0]["trust"] == "unverified" and devices[0]["device"] == me.get("device"),
              f"this device is listed: {devices}")
        check(changes == [], f"no key change yet: {changes}")
        again, _, _ = self.keys_json()
        check(again == me, f"stable across runs: {me} / {again}")
        human = run(*g, "keys").stdout
        check(me.get("fingerprint", "?") in human and "this device" in human, f"keys: {human}")

    def test_verify_and_remove_change_trust_and_key_changes_show(self):
        run, check, g = self.run_cli, self.check, self.g
        bob = self.helper("pin", "bob")[0]
        run(*g, "conversation", "create", "c", "--member", "alice", "--member", "bob")
        _, devices, _ = self.keys_json()
        check([d["trust"] for d in devices if d["user"] == "bob"] == ["unverified"],
              f"bob's device pinned unverified: {devices}")
        p = run(*g, "keys", "verify", "bob", bob)
        check("verified" in p.stdout, f"verify says so: {p.stdout}")
        _, devices, _ = self.keys_json()
        check([d["trust"] for d in devices if d["device"] == bob] == ["verified"], f"{devices}")
        run(*g, "keys", "remove", "bob", bob)
        _, devices, _ = self.keys_json()
        check([d["trust"] for d in devices if d["device"] == bob] == ["removed"], f"{devices}")
        # A second device of a known user is a key change, shown loudly.
        second = self.helper("pin", "bob")[0]
        _, _, changes = self.keys_json()
        check([(c["change"], c["user"], c["device"]) for c in changes] == [("new-device", "bob", second)],
              f"key changes: {changes}")
        check("key changes" in run(*g, "keys").stdout, "keys lists key changes")
        status = run(*g, "status").stdout
        check("key changes: 1" in status and second in status, f"status shows it: {status}")

    def test_unknown_device_and_own_device(self):
        run, check, g = self.run_cli, self.check, self.g
        p = run(*g, "keys", "verify", "bob", "0" * 32, expect=base.EXIT_NOT_FOUND)
        check("tidings keys" in p.stderr, f"says how to list devices: {p.stderr}")
        me, _, _ = self.keys_json()
        p = run(*g, "keys", "remove", "alice", me.get("device", ""), expect=base.EXIT_FAIL)
        check("own device" in p.stderr, f"own device cannot be removed: {p.stderr}")
        run(*g, "keys", "verify", expect=base.EXIT_USAGE)

    def test_a_held_store_refuses_trust_changes_clearly(self):
        if not base.HOLDER:
            self.skipTest("no hold_store binary given")
        bob = self.helper("pin", "bob")[0]
        holder = subprocess.Popen([base.HOLDER, self.store, self.key], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            self.check(holder.stdout.readline().strip() == "ready", "holder opened the store")
            self.run_cli(*self.g, "keys")  # reads work
            p = self.run_cli(*self.g, "keys", "verify", "bob", bob, expect=base.EXIT_BUSY)
            self.check("another process" in p.stderr or "read-only" in p.stderr,
                       f"busy explained: {p.stderr}")
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
            holder.stdout.close()


class ThroughDaemon(KeysCase):
    def test_writes_go_through_the_daemon_that_holds_the_store(self):
        run, check, g = self.run_cli, self.check, self.g
        bob = self.helper("pin", "bob")[0]
        cfg = os.path.join(self.d, "daemon.toml")
        with open(cfg, "w") as f:
            f.write(f'[store]\npath = "{self.store}"\nkey_file = "{self.key}"\n'
                    '[sync]\nbackends = ["dynamodb"]\n'
                    '[dynamodb]\nendpoint = "http://127.0.0.1:1"\n'  # nothing listens
                    '[metrics]\nlisten = "127.0.0.1:0"\n')
        log = open(os.path.join(self.d, "daemon.log"), "w")
        self.addCleanup(log.close)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
        daemon = subprocess.Popen([base.TIDINGS, "daemon", "--config", cfg], env={**env, **AWS},
                                  stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
        try:
            sock = os.path.join(self.store, "daemon.sock")
            for _ in range(200):
                if os.path.exists(sock) or daemon.poll() is not None:
                    break
                time.sleep(0.05)
            check(os.path.exists(sock), "the daemon listens")
            run(*g, "conversation", "create", "p", "--plaintext", "--member", "alice", "--member", "bob")
            run(*g, "conversation", "create", "p", expect=base.EXIT_USAGE)
            check(re.search(r"conversation p\s+plaintext", run(*g, "status").stdout), "created plaintext")
            run(*g, "keys", "verify", "bob", bob)
            _, devices, _ = self.keys_json()
            check([d["trust"] for d in devices if d["device"] == bob] == ["verified"], f"{devices}")
            run(*g, "keys", "remove", "bob", "0" * 32, expect=base.EXIT_NOT_FOUND)
            run(*g, "conversation", "upgrade", "p")
            check(not re.search(r"conversation p\s+plaintext", run(*g, "status").stdout), "upgraded")
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)
        check(daemon.returncode == 0, f"the daemon stopped cleanly: {daemon.returncode}")


class Modes(KeysCase):
    def test_create_upgrade_and_status(self):
        run, check, g = self.run_cli, self.check, self.g
        run(*g, "conversation", "create", "interop", "--plaintext", "--member", "alice", "--member", "bob")
        run(*g, "conversation", "create", "secret", "--title", "T")
        run(*g, "conversation", "legacy", "--title", "old form")  # create-or-update still works
        status = run(*g, "status").stdout
        check(re.search(r"conversation interop\s+plaintext", status), f"status: {status}")
        check(re.search(r"conversation secret\s+end-to-end \(pending first sync\)", status), status)
        check(re.search(r"conversation legacy\s+end-to-end \(pending first sync\)", status), status)
        p = run(*g, "conversation", "create", "interop", expect=base.EXIT_USAGE)
        check("upgrade" in p.stderr, f"exists: says how to change the mode: {p.stderr}")
        p = run(*g, "conversation", "upgrade", "interop")
        check("end-to-end" in p.stdout, f"upgrade says so: {p.stdout}")
        status = run(*g, "status").stdout
        check(not re.search(r"conversation interop\s+plaintext", status), f"upgraded: {status}")
        run(*g, "conversation", "upgrade", "nope", expect=base.EXIT_NOT_FOUND)
        run(*g, "conversation", expect=base.EXIT_USAGE)
        convs = {c["id"]: c for c in self.jsonl(run(*g, "--json", "conversations"), "conversations")}
        check(convs.get("interop", {}).get("members") == ["alice", "bob"], f"members kept: {convs}")


class Limits(KeysCase):
    def sync_with_dead_chime(self):
        # Only the handle's backends matter: nothing listens at the endpoint.
        p = subprocess.run([base.TIDINGS, *self.g, "sync", "--backend", "chime", "--chime-app-instance",
                            APP, "--chime-endpoint", "http://127.0.0.1:1", "--rounds", "1"],
                           capture_output=True, text=True, env={**os.environ, **AWS}, timeout=60)
        self.outputs.append(p.stdout + p.stderr)
        self.check(p.returncode in (0, base.EXIT_UNAVAILABLE), f"sync: {p.returncode} {p.stderr}")

    def send(self, conv, size, expect=0):
        return self.run_cli(*self.g, "send", "-c", conv, "-", stdin="x" * size, expect=expect)

    def limit_in(self, p):
        m = re.search(r"at most (\d+) bytes per message on Chime", p.stderr)
        self.check(m, f"the error gives the limit: {p.stderr}")
        return int(m.group(1)) if m else 0

    def test_the_exact_limit_is_checked_when_sending(self):
        check = self.check
        self.send("before", 5000)  # no Chime handle yet: nothing to check against
        self.run_cli(*self.g, "conversation", "create", "interop", "--plaintext")
        self.sync_with_dead_chime()
        # End to end: a text over the sealed frame is not refused; it travels
        # as a file (docs/attachments.md, "Long text") and the log shows it.
        p = self.run_cli(*self.g, "--json", "send", "-c", "secret", "-", stdin="y" * 5000)
        sent = json.loads(p.stdout)
        check(len(sent["body"]) == 5000 and [a["body"] for a in sent["attachments"]] == [True],
              f"a long text is kept and travels as a file: {sent['attachments']}")
        p = self.run_cli(*self.g, "--json", "send", "-c", "secret", "-", stdin="y" * 2000)
        check(json.loads(p.stdout)["attachments"] == [], "a text that fits travels as text")
        p = self.send("interop", 4097, expect=base.EXIT_USAGE)
        check(self.limit_in(p) == 4096, f"plaintext: Chime's 4096 bytes: {p.stderr}")
        self.send("interop", 4096)


if __name__ == "__main__":
    base.TIDINGS, HELPER, base.HOLDER = tidings_unittest.args(
        3, "/path/to/tidings /path/to/e2e_keys_helper /path/to/hold_store")
    tidings_unittest.main()
