#!/usr/bin/env python3
"""The official Amazon Chime SDK for JavaScript and Tidings devices in one
conversation, through tidings-chime-local's messaging WebSocket.

usage: js_tidings_test.py PATH/TO/tidings PATH/TO/tidings-chime-local [unittest args]

Alice's Tidings daemon (plaintext conversation "consult", polling once an
hour, so only the socket delivers) and Bob on amazon-chime-sdk-js
(DefaultMessagingSession, messaging_session.js):
- the JS session receives what the Tidings device sends, as text;
- the Tidings device receives what the JS client sends, then its edit and
  its redaction;
- a second Tidings device that pulls afterwards holds exactly what Alice's
  holds.

Exit 77 (CTest: skipped) when node or tests/js/node_modules is missing."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "daemon"))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
from js_session_test import SKIP, JsSession  # noqa: E402
from daemon_util import ChimeLocal, Daemon, clean_env  # noqa: E402
import tidings_unittest  # noqa: E402

TIDINGS = os.path.abspath(sys.argv[1])
CHIME_LOCAL = os.path.abspath(sys.argv[2])


class TidingsDevice:
    def __init__(self, d, server, name, user, env):
        self.env = env
        self.store, self.key = os.path.join(d, name), os.path.join(d, name + ".key")
        self.g = ["--store", self.store, "--key-file", self.key]
        self.cli("--store", self.store, "init", "--user", user)
        self.cfg = os.path.join(d, name + ".toml")
        self.log_path = os.path.join(d, name + ".log")
        with open(self.cfg, "w") as f:
            f.write(f'[store]\npath = "{self.store}"\nkey_file = "{self.key}"\n[sync]\n'
                    f'backends = ["chime"]\nactive_poll_ms = 3600000\nidle_poll_ms = 3600000\n'
                    + server.config(user))
        self.daemon = None

    def cli(self, *args):
        p = subprocess.run([TIDINGS, *args], env=self.env, capture_output=True, text=True)
        if p.returncode != 0:
            raise AssertionError(f"tidings {args[-3:]} exit {p.returncode}: {p.stderr}")
        return p.stdout.strip()

    def start(self):
        self.daemon = Daemon.start(TIDINGS, [], ["--config", self.cfg], self.env, self.log_path)
        end = time.time() + 30
        while time.time() < end and "realtime.up" not in self.daemon.log():
            time.sleep(0.05)
        assert "realtime.up" in self.daemon.log(), self.daemon.log()[-2000:]
        return self

    def messages(self, conv):
        out = self.cli(*self.g, "--json", "log", "-c", conv)
        return [(m["id"], m["body"], m.get("deleted", False)) for m in map(json.loads, out.splitlines())]

    def wait_for(self, conv, predicate, timeout=30):
        end, got = time.time() + timeout, []
        while time.time() < end:
            try:
                got = self.messages(conv)
            except AssertionError:
                got = []
            if predicate(got):
                return got
            time.sleep(0.1)
        return got


class JsAndTidings(tidings_unittest.TestCase):
    def test_messages_edits_and_redactions_both_ways(self):
        d = tempfile.mkdtemp(prefix="tidings-js-")
        self.addCleanup(shutil.rmtree, d, True)
        server = ChimeLocal(CHIME_LOCAL, d, tls=True)
        self.addCleanup(server.stop)
        env = clean_env({**server.env(), "HOME": d})
        alice = TidingsDevice(d, server, "alice", "alice", env)
        alice.cli(*alice.g, "conversation", "create", "consult", "--member", "bob", "--plaintext")
        alice.start()
        self.addCleanup(alice.daemon.stop)

        js = JsSession(server.endpoint, server.user_arn("bob"), server.ca,
                       access=server.creds["access_key"], secret=server.creds["secret"])
        self.addCleanup(js.stop)
        js.next(lambda e: e.get("event") == "started", what="messagingSessionDidStart")

        # Tidings -> JS: the message as text.
        alice.cli(*alice.g, "send", "-c", "consult", "hello from tidings")
        got = js.next(lambda e: e.get("type") == "CREATE_CHANNEL_MESSAGE" and
                      (e.get("payload") or {}).get("Content") == "hello from tidings",
                      what="Alice's message")
        channel = got["payload"]["ChannelArn"]

        # JS -> Tidings: a message, its edit, its redaction, over the socket.
        js.command({"id": "s1", "send": {"ChannelArn": channel, "Content": "hello from js",
                                         "Type": "STANDARD", "Persistence": "PERSISTENT",
                                         "ClientRequestToken": uuid.uuid4().hex}})
        sent = js.next(lambda e: e.get("event") in ("sent", "error") and e.get("id") == "s1",
                       what="the SDK's send")
        self.assertEqual(sent["event"], "sent", sent)
        mine = alice.wait_for("consult", lambda m: any(b == "hello from js" for _, b, _ in m))
        self.check(any(b == "hello from js" for _, b, _ in mine), f"Alice got Bob's JS message: {mine}")
        js.command({"id": "u1", "update": {"ChannelArn": channel, "MessageId": sent["messageId"],
                                           "Content": "hello from js, edited"}})
        js.next(lambda e: e.get("id") == "u1", what="the SDK's update")
        mine = alice.wait_for("consult", lambda m: any(b == "hello from js, edited" for _, b, _ in m))
        self.check(any(b == "hello from js, edited" for _, b, _ in mine),
                   f"Alice sees the JS client's edit: {mine}")
        self.check(not any(b == "hello from js" for _, b, _ in mine), "the old text is gone")

        js.command({"id": "r1", "redact": {"ChannelArn": channel, "MessageId": sent["messageId"]}})
        js.next(lambda e: e.get("id") == "r1", what="the SDK's redaction")
        mine = alice.wait_for("consult", lambda m: not any("from js" in b for _, b, _ in m))
        self.check(not any("from js" in b for _, b, _ in mine),
                   f"the redacted text is gone from Alice's device: {mine}")

        # A device that pulls afterwards converges on the same history.
        bob = TidingsDevice(d, server, "bob-tidings", "bob", env).start()
        self.addCleanup(bob.daemon.stop)
        fresh = bob.wait_for("consult", lambda m: m == alice.messages("consult"))
        self.check(fresh == alice.messages("consult"),
                   f"a fresh device holds what Alice holds:\n{fresh}\n{alice.messages('consult')}")


if __name__ == "__main__":
    if shutil.which("node") is None or not os.path.isdir(os.path.join(HERE, "node_modules")):
        print("skipped: node or tests/js/node_modules is missing (scripts/setup.sh)")
        sys.exit(SKIP)
    unittest.main(argv=[sys.argv[0], *sys.argv[3:]])
