#!/usr/bin/env python3
"""Secrets in memory (docs/security.md, "Secrets in memory"): what an
auditor with root finds in a running daemon's memory, read through
/proc/PID/mem.

- Messages with marker words are sent through the daemon's socket and synced
  to moto; then every readable mapping of the daemon is scanned. Each marker
  may appear only in the store's own copies of its records (the message and
  its outbox operation, both of which carry the message id just before the
  body: the store encrypts files, not its memtable or block cache), at most
  four times - no socket frame, HTTP body or freed buffer keeps it. The scan
  runs between sync rounds (a pull's page is in memory while it is merged).
- The AWS secret access key is not in the daemon's environment (nor
  /proc/PID/environ) and appears at most once: its locked copy.
- `tidings` is not dumpable: run as another user, its /proc/PID files belong
  to root; TIDINGS_PASSPHRASE is gone from /proc/PID/environ.
- A plain http:// endpoint to a non-loopback host is refused at start.

Needs root (CAP_SYS_PTRACE: the daemon is not dumpable); skipped otherwise.
Usage: daemon_memory_test.py /path/to/tidings [unittest arguments]"""
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from daemon_util import Daemon, Moto, clean_env
from memory_scan import find
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import tidings_unittest  # noqa: E402

TIDINGS = sys.argv[1]
NOBODY = 65534


def run(args, env, **kw):
    return subprocess.run([TIDINGS, *args], env=env, capture_output=True, text=True, timeout=60,
                          **kw)


def environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return f.read()


@unittest.skipUnless(os.geteuid() == 0, "reading another process's memory needs root")
class DaemonMemory(tidings_unittest.TestCase):
    # ASan keeps freed memory in quarantine unwiped, and its shadow maps are
    # terabytes to read: the release build's run is the one that counts.
    @unittest.skipIf(os.environ.get("TIDINGS_SANITIZED"), "a sanitizer's allocator keeps freed memory")
    def test_memory_holds_text_only_in_the_store(self):
        with tempfile.TemporaryDirectory() as d:
            moto = Moto(d)
            try:
                secret = "awsSECRET" + secrets.token_hex(16)
                moto.creds = {"access_key": "AKIDMEMTEST", "secret": secret}
                env = clean_env({**moto.env(), "HOME": d})
                store = os.path.join(d, "s")
                self.assertEqual(run(["--store", store, "init", "--user", "alice"], env).returncode, 0)
                run(["dynamodb", "create-table", "--table", "tidings"], env)
                cfg = os.path.join(d, "daemon.toml")
                config = (f'[store]\npath = "{store}"\n[sync]\nbackends = ["dynamodb"]\n'
                          f'active_poll_ms = 60000\nidle_poll_ms = 60000\n[dynamodb]\ntable = "tidings"\n')
                with open(cfg, "w") as f:
                    f.write(config + 'endpoint = "http://10.1.2.3:8000"\n')
                p = run(["daemon", "--config", cfg], env)
                self.check(p.returncode == 2 and "only on loopback" in p.stderr,
                           f"a plain http endpoint off this machine: exit {p.returncode} {p.stderr}")
                with open(cfg, "w") as f:
                    f.write(config)

                dmn = Daemon.start(TIDINGS, [], ["--config", cfg], env, os.path.join(d, "d.log"))
                self.assertIsNotNone(dmn.wait_log(r"daemon\.started"), dmn.log())
                markers = {}
                for i in range(6):
                    marker = f"mkWORD{i}x{secrets.token_hex(8)}"
                    p = run(["--store", store, "send", "-c", f"conv-{i % 2}", f"say {marker} now"], env)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    markers[marker] = p.stdout.strip()
                # Synced: the outbox is empty, so the text also went out as HTTP
                # bodies. The sends are pushed at once; the long poll interval
                # keeps a pull from running during the scan (a pull's page is
                # in memory while it is merged: docs/security.md).
                end = time.time() + 20
                while time.time() < end and run(["--store", store, "outbox"], env).stdout.strip():
                    time.sleep(0.2)
                self.check(not run(["--store", store, "outbox"], env).stdout.strip(), "synced")
                # A read the app asks for runs in the reader's process, not the daemon.
                self.check(all(m in run(["--store", store, "log", "-c", "conv-0"], env).stdout
                               for m in list(markers)[0::2]), "log shows the text")

                pid = dmn.proc.pid
                self.check(secret.encode() not in environ(pid), "AWS secret in /proc/PID/environ")
                hits = find(pid, [m.encode() for m in markers] + [secret.encode()])
                for marker, msg_id in markers.items():
                    where = hits[marker.encode()]
                    # Every version of the message record the memtable still
                    # holds (sent, then acknowledged, then marked synced) is
                    # a copy, and so is the write-ahead log's write buffer;
                    # each must be a store record (measured: 2-4 copies).
                    self.check(1 <= len(where) <= 4,
                               f"{marker}: {len(where)} copies in {sorted({n for _, n, _ in where})}")
                    for addr, name, before in where:
                        self.check(msg_id.encode() in before,
                                   f"{marker} at {addr:#x} ({name}) outside a store record: "
                                   f"{before[-60:]!r}")
                aws = hits[secret.encode()]
                self.check(len(aws) <= 1 and all(n != "[stack]" for _, n, _ in aws),
                           f"the AWS secret: {aws}")
                dmn.stop()
            finally:
                moto.stop()

    def test_not_dumpable_and_no_passphrase_in_the_environment(self):
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o755)
            store, key = os.path.join(d, "s"), os.path.join(d, "s.key")
            env = clean_env({"HOME": d})
            self.assertEqual(run(["--store", store, "init", "--user", "bob"], env).returncode, 0)
            for root, dirs, files in os.walk(d):
                for name in [root, *(os.path.join(root, x) for x in dirs + files)]:
                    os.chown(name, NOBODY, NOBODY)
            # nobody must reach the binary: a checkout under a 0700 directory
            # (mktemp -d) hides it, so it runs from a copy here.
            binary = os.path.join(d, "tidings")
            shutil.copy2(TIDINGS, binary)
            os.chmod(binary, 0o755)
            phrase = "ppHIDDEN" + secrets.token_hex(8)
            # `send -` waits for its body on stdin: alive while we look.
            proc = subprocess.Popen(
                [binary, "--store", store, "--key-file", key, "send", "-c", "c", "-"],
                env={**env, "TIDINGS_PASSPHRASE": phrase}, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, user=NOBODY, group=NOBODY)
            try:
                time.sleep(0.5)
                self.assertIsNone(proc.poll(), "tidings send exited before reading its body")
                with open(f"/proc/{proc.pid}/status") as f:
                    uid = next(line.split()[1] for line in f if line.startswith("Uid:"))
                self.check(uid == str(NOBODY), f"runs as nobody ({uid})")
                # proc(5): not dumpable -> /proc/PID files belong to root.
                self.check(os.stat(f"/proc/{proc.pid}/mem").st_uid == 0,
                           "/proc/PID/mem belongs to the user: the process is dumpable")
                env_now = environ(proc.pid)
                self.check(phrase.encode() not in env_now and b"TIDINGS_PASSPHRASE=" + phrase[:4].encode()
                           not in env_now, "TIDINGS_PASSPHRASE still in /proc/PID/environ")
                out, err = proc.communicate(b"hello", timeout=30)
                self.check(proc.returncode == 0, f"send: {err}")
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()


if __name__ == "__main__":
    del sys.argv[1:2]  # the path read above; the rest is unittest's
    tidings_unittest.main()
