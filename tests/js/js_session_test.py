#!/usr/bin/env python3
"""The official Amazon Chime SDK for JavaScript against tidings-chime-local.

usage: js_session_test.py PATH/TO/tidings-chime-local [unittest args]

amazon-chime-sdk-js's DefaultMessagingSession (messaging_session.js, under
Node with the `ws` package) resolves the endpoint with
@aws-sdk/client-chime-sdk-messaging's GetMessagingSessionEndpoint, presigns
/connect with its own SigV4 code and trusts the emulator's throwaway CA
through NODE_EXTRA_CA_CERTS. boto3 sends, edits and redacts; the JS client
must see SESSION_ESTABLISHED and each event with the right content, and what
it sends through the SDK client must be what boto3 reads back.

Exit 77 (CTest: skipped) when node or tests/js/node_modules is missing
(scripts/setup.sh runs `npm ci` there).
"""
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "chime_emulator"))

import conformance_test as ct  # noqa: E402
from conformance_test import ACCESS, APP, SECRET, Chime, Emulator, user  # noqa: E402
from wss import make_ca  # noqa: E402

ALICE, BOB = user("alice"), user("bob")
SKIP = 77


class JsSession:
    """messaging_session.js as a child: JSON lines out, JSON commands in."""

    def __init__(self, endpoint, who, ca, session_id=None, access=ACCESS, secret=SECRET):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=access, AWS_SECRET_ACCESS_KEY=secret,
                   AWS_REGION="us-east-1", NODE_EXTRA_CA_CERTS=ca,
                   NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        for k in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                  "https_proxy"):
            env.pop(k, None)
        cmd = ["node", os.path.join(HERE, "messaging_session.js"), "--endpoint", endpoint,
               "--user", who, "--session-id", session_id or str(uuid.uuid4())]
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, env=env, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def next(self, predicate, timeout=15, what="an event"):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                item = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                break
            seen.append(item)
            if predicate(item):
                return item
        raise AssertionError(f"the JS client did not report {what} within {timeout} s; "
                             f"it reported {seen}; stderr: {self.stderr_text()}")

    def message(self, event_type, **payload_fields):
        def match(item):
            if item.get("event") != "message" or item.get("type") != event_type:
                return False
            p = item.get("payload") or {}
            return all(p.get(k) == v for k, v in payload_fields.items())
        return self.next(match, what=f"{event_type} {payload_fields}")

    def command(self, obj):
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.command({"stop": True})
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.stderr):
            try:
                f.close()
            except OSError:
                pass


class OfficialJsClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.ca, cert, key = make_ca(cls.tmp.name)
        cls.emu = Emulator("--access-key", ACCESS, "--secret-key", SECRET,
                           "--tls-cert", cert, "--tls-key", key).start()
        cls.addClassCleanup(cls.emu.stop)

    def setUp(self):
        self.chime = Chime(self, self.emu.client(ACCESS, SECRET))
        self.addCleanup(self.emu.close_clients)
        self.ch = self.chime("CreateChannel", AppInstanceArn=APP, Name="js", ChimeBearer=ALICE,
                             MemberArns=[BOB],
                             ClientRequestToken=uuid.uuid4().hex)["ChannelArn"]

    def session(self, who=BOB):
        js = JsSession(self.emu.endpoint, who, self.ca)
        self.addCleanup(js.stop)
        js.next(lambda e: e.get("event") == "started", what="messagingSessionDidStart")
        return js

    def send(self, content, **extra):
        params = dict(ChannelArn=self.ch, Content=content, Type="STANDARD",
                      Persistence="PERSISTENT", ClientRequestToken=uuid.uuid4().hex,
                      ChimeBearer=ALICE)
        params.update(extra)
        return self.chime("SendChannelMessage", **params)["MessageId"]

    def test_receives_what_boto3_sends_edits_and_redacts(self):
        js = self.session()
        js.message("SESSION_ESTABLISHED")
        mid = self.send("hello from boto3 \u00e9\U0001F600", Metadata="meta")
        created = js.message("CREATE_CHANNEL_MESSAGE", MessageId=mid)
        p = created["payload"]
        self.assertEqual((p["Content"], p["Metadata"], p["ChannelArn"], p["Sender"]["Arn"]),
                         ("hello from boto3 \u00e9\U0001F600", "meta", self.ch, ALICE))
        self.assertEqual(created["headers"]["x-amz-chime-message-type"], "STANDARD")
        self.chime("UpdateChannelMessage", ChannelArn=self.ch, MessageId=mid, Content="edited",
                   ChimeBearer=ALICE)
        updated = js.message("UPDATE_CHANNEL_MESSAGE", MessageId=mid)
        self.assertEqual(updated["payload"]["Content"], "edited")
        self.assertIn("LastEditedTimestamp", updated["payload"])
        self.chime("RedactChannelMessage", ChannelArn=self.ch, MessageId=mid, ChimeBearer=ALICE)
        redacted = js.message("REDACT_CHANNEL_MESSAGE", MessageId=mid)
        self.assertTrue(redacted["payload"]["Redacted"])
        self.assertNotIn("Content", redacted["payload"])
        self.send("typing", Type="CONTROL", Persistence="NON_PERSISTENT")
        js.message("CREATE_CHANNEL_MESSAGE", Persistence="NON_PERSISTENT", Content="typing")

    def test_what_the_js_client_sends_boto3_reads(self):
        js = self.session()
        js.command({"id": 1, "send": {"ChannelArn": self.ch, "Content": "from the JS SDK"}})
        sent = js.next(lambda e: e.get("id") == 1, what="the send's result")
        self.assertEqual(sent["event"], "sent", sent)
        got = self.chime("GetChannelMessage", ChannelArn=self.ch, MessageId=sent["messageId"],
                         ChimeBearer=ALICE)["ChannelMessage"]
        self.assertEqual((got["Content"], got["Sender"]["Arn"]), ("from the JS SDK", BOB))
        js.message("CREATE_CHANNEL_MESSAGE", MessageId=sent["messageId"])

    def test_reconnects_after_a_1012_drop(self):
        js = self.session()
        status, body = self.emu.admin("POST", "/_emulator/realtime/drop", {"code": 1012})
        self.assertEqual(status, 200, body)
        # 1012 is one of the codes the SDK reconnects on: a new SESSION_ESTABLISHED.
        js.next(lambda e: e.get("event") == "started", timeout=20, what="a second start")
        mid = self.send("after the reconnect")
        js.message("CREATE_CHANNEL_MESSAGE", MessageId=mid, Content="after the reconnect")

    def test_kicked_session_stops_for_good(self):
        sid = str(uuid.uuid4())
        first = JsSession(self.emu.endpoint, BOB, self.ca, session_id=sid)
        self.addCleanup(first.stop)
        first.next(lambda e: e.get("event") == "started", what="the first start")
        second = JsSession(self.emu.endpoint, BOB, self.ca, session_id=sid)
        self.addCleanup(second.stop)
        second.next(lambda e: e.get("event") == "started", what="the second start")
        stopped = first.next(lambda e: e.get("event") == "stopped", what="the kick (4003)")
        self.assertEqual(stopped["code"], 4003)


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        sys.stderr.write(f"usage: {sys.argv[0]} PATH/TO/tidings-chime-local [unittest args]\n")
        sys.exit(2)
    if shutil.which("node") is None:
        print("SKIPPED: node is not installed (Node 20+; scripts/setup.sh)")
        sys.exit(SKIP)
    if not os.path.isdir(os.path.join(HERE, "node_modules", "amazon-chime-sdk-js")):
        print("SKIPPED: tests/js/node_modules is missing: run `npm ci` in tests/js "
              "(scripts/setup.sh does)")
        sys.exit(SKIP)
    ct.BINARY = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
