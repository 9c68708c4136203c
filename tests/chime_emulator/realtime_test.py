#!/usr/bin/env python3
"""tidings-chime-local's messaging WebSocket and the operations around it, with
boto3 on the REST side and a minimal RFC 6455 client (wss.py) on the socket.

usage: realtime_test.py PATH/TO/tidings-chime-local [unittest args]

A throwaway CA and a certificate for 127.0.0.1 are made with the openssl
command; the emulator serves wss:// with them and the client trusts only that
CA. URLs are presigned by botocore's SigV4QueryAuth (not Tidings' signer).
"""
import datetime
import os
import sys
import tempfile
import time
import unittest
import uuid

import botocore.auth

import conformance_test as ct
from conformance_test import ACCESS, APP, SECRET, Chime, Emulator, user
from wss import Closed, Refused, WebSocket, event_type, make_ca, payload, presign, wait_for

ALICE, BOB, CAROL = user("alice"), user("bob"), user("carol")


class RealtimeTestCase(unittest.TestCase):
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
        self.addCleanup(self.emu.admin, "POST", "/_emulator/realtime/faults", {})
        self.sockets = []
        self.addCleanup(lambda: [s.close() for s in self.sockets])

    def host_port(self):
        return self.chime("GetMessagingSessionEndpoint")["Endpoint"]["Url"]

    def connect(self, who, session_id=None, secret=SECRET, access=ACCESS, expires=10):
        url = presign(self.host_port(), who, session_id or str(uuid.uuid4()), access, secret,
                      expires=expires)
        ws = WebSocket(url, self.ca)
        self.sockets.append(ws)
        return ws

    def established(self, who, session_id=None):
        ws = self.connect(who, session_id)
        first = ws.recv()
        self.assertEqual(event_type(first), "SESSION_ESTABLISHED", first)
        self.assertEqual(first["Headers"]["x-amz-chime-message-type"], "SYSTEM")
        return ws

    def channel(self, *members):
        return self.chime("CreateChannel", AppInstanceArn=APP, Name="rt", ChimeBearer=ALICE,
                          ClientRequestToken=uuid.uuid4().hex,
                          **({"MemberArns": list(members)} if members else {}))["ChannelArn"]

    def send(self, ch, content, bearer=ALICE, **extra):
        params = dict(ChannelArn=ch, Content=content, Type="STANDARD", Persistence="PERSISTENT",
                      ClientRequestToken=uuid.uuid4().hex, ChimeBearer=bearer)
        params.update(extra)
        return self.chime("SendChannelMessage", **params)["MessageId"]

    def refused(self, status, **connect):
        with self.assertRaises(Refused) as cm:
            self.connect(**connect)
        self.assertEqual(cm.exception.status, status, cm.exception.body)
        return cm.exception.body


class Endpoint(RealtimeTestCase):
    def test_endpoint_names_the_websocket_listener(self):
        url = self.host_port()
        self.assertRegex(url, r"^127\.0\.0\.1:\d+$", "host:port, no scheme")
        self.assertNotEqual(url, self.emu.endpoint.split("//")[1], "the socket has its own port")
        status, body = self.emu.admin("GET", "/_emulator/realtime")
        self.assertEqual(status, 200)
        self.assertIn(url.split(":")[1].encode(), body)

    def test_without_tls_the_endpoint_is_a_clear_error_not_not_found(self):
        emu = Emulator().start()
        self.addCleanup(emu.stop)
        r = Chime(self, emu.client()).error("GetMessagingSessionEndpoint", "UnsupportedOperation",
                                            400)
        self.assertIn("--tls-cert", r["Error"]["Message"])


class Routing(RealtimeTestCase):
    """The four operations that used to reach other operations' handlers."""

    def test_get_channel_message_status(self):
        ch = self.channel(BOB)
        mid = self.send(ch, "status?")
        r = self.chime("GetChannelMessageStatus", ChannelArn=ch, MessageId=mid, ChimeBearer=BOB)
        self.assertEqual(r["Status"]["Value"], "SENT")
        self.chime.error("GetChannelMessageStatus", "NotFoundException", 404, ChannelArn=ch,
                         MessageId="nope", ChimeBearer=BOB)

    def test_describe_channel_moderated_by_app_instance_user(self):
        ch = self.channel(BOB)
        r = self.chime("DescribeChannelModeratedByAppInstanceUser", ChannelArn=ch,
                       AppInstanceUserArn=ALICE, ChimeBearer=ALICE)
        self.assertEqual(r["Channel"]["ChannelSummary"]["ChannelArn"], ch)
        self.chime.error("DescribeChannelModeratedByAppInstanceUser", "NotFoundException", 404,
                         ChannelArn=ch, AppInstanceUserArn=BOB, ChimeBearer=BOB)

    def test_batch_create_channel_membership(self):
        ch = self.channel()
        r = self.chime("BatchCreateChannelMembership", ChannelArn=ch, MemberArns=[BOB, CAROL],
                       Type="DEFAULT", ChimeBearer=ALICE)
        self.assertEqual(sorted(m["Arn"] for m in r["BatchChannelMemberships"]["Members"]),
                         [BOB, CAROL])
        self.assertEqual(r["Errors"], [])
        listed = self.chime("ListChannelMemberships", ChannelArn=ch, ChimeBearer=ALICE)
        self.assertEqual(sorted(m["Member"]["Arn"] for m in listed["ChannelMemberships"]),
                         sorted([ALICE, BOB, CAROL]))
        again = self.chime("BatchCreateChannelMembership", ChannelArn=ch, MemberArns=[BOB],
                           ChimeBearer=ALICE)
        self.assertEqual([e["ErrorCode"] for e in again["Errors"]], ["Conflict"])

    def test_search_channels_is_unsupported_and_creates_nothing(self):
        before = self.chime("ListChannelMembershipsForAppInstanceUser", ChimeBearer=ALICE)
        r = self.chime.error("SearchChannels", "UnsupportedOperation", 400, ChimeBearer=ALICE,
                             Fields=[{"Key": "MEMBERS", "Values": [ALICE], "Operator": "EQUALS"}])
        self.assertIn("SearchChannels", r["Error"]["Message"])
        after = self.chime("ListChannelMembershipsForAppInstanceUser", ChimeBearer=ALICE)
        self.assertEqual(len(after["ChannelMemberships"]), len(before["ChannelMemberships"]))

    def test_operations_not_emulated_never_answer_not_found(self):
        ch = self.channel()
        for op, params in [("ListChannels", dict(AppInstanceArn=APP, ChimeBearer=ALICE)),
                           ("ListChannelBans", dict(ChannelArn=ch, ChimeBearer=ALICE)),
                           ("DescribeChannelMembership",
                            dict(ChannelArn=ch, MemberArn=ALICE, ChimeBearer=ALICE)),
                           ("ListTagsForResource", dict(ResourceARN=ch))]:
            r = self.chime.error(op, "UnsupportedOperation", 400, **params)
            self.assertIn(op, r["Error"]["Message"])

    def test_update_and_delete_channel(self):
        ch = self.channel(BOB)
        self.chime("UpdateChannel", ChannelArn=ch, Name="renamed", ChimeBearer=ALICE)
        self.assertEqual(self.chime("DescribeChannel", ChannelArn=ch, ChimeBearer=BOB)
                         ["Channel"]["Name"], "renamed")
        self.chime.error("UpdateChannel", "ForbiddenException", 403, ChannelArn=ch, Name="x",
                         ChimeBearer=BOB)
        self.chime("DeleteChannel", ChannelArn=ch, ChimeBearer=ALICE)
        self.chime.error("DescribeChannel", "NotFoundException", 404, ChannelArn=ch,
                         ChimeBearer=ALICE)


class Persistence(unittest.TestCase):
    def test_new_mutations_survive_a_restart(self):
        data = tempfile.TemporaryDirectory(prefix="chime-realtime-")
        self.addCleanup(data.cleanup)
        emu = Emulator("--data-dir", data.name).start()
        self.addCleanup(emu.stop, check=False)
        chime = Chime(self, emu.client())

        def channel(name):
            return chime("CreateChannel", AppInstanceArn=APP, Name=name, ChimeBearer=ALICE,
                         ClientRequestToken=uuid.uuid4().hex)["ChannelArn"]

        kept, gone = channel("kept"), channel("gone")
        chime("BatchCreateChannelMembership", ChannelArn=kept, MemberArns=[BOB, CAROL],
              ChimeBearer=ALICE)
        chime("UpdateChannel", ChannelArn=kept, Name="renamed", Metadata="md", ChimeBearer=ALICE)
        chime("DeleteChannel", ChannelArn=gone, ChimeBearer=ALICE)
        self.assertEqual(emu.stop(), 0)
        emu.start()
        chime = Chime(self, emu.client())
        described = chime("DescribeChannel", ChannelArn=kept, ChimeBearer=CAROL)["Channel"]
        self.assertEqual((described["Name"], described["Metadata"]), ("renamed", "md"))
        members = chime("ListChannelMemberships", ChannelArn=kept, ChimeBearer=ALICE)
        self.assertEqual(sorted(m["Member"]["Arn"] for m in members["ChannelMemberships"]),
                         sorted([ALICE, BOB, CAROL]))
        chime.error("DescribeChannel", "NotFoundException", 404, ChannelArn=gone,
                    ChimeBearer=ALICE)


class SignatureWording(RealtimeTestCase):
    def test_expired_signature_is_worded_as_aws_words_it(self):
        real = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda: real() - datetime.timedelta(minutes=20)
        try:
            r = self.chime.error("ListChannelMembershipsForAppInstanceUser",
                                 "InvalidSignatureException", 403, ChimeBearer=ALICE)
        finally:
            botocore.auth.get_current_datetime = real
        self.assertRegex(r["Error"]["Message"],
                         r"^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z "
                         r"\(\d{8}T\d{6}Z - 15 min\.\)$")


class Connect(RealtimeTestCase):
    def test_presigned_connect_is_established(self):
        ws = self.established(BOB)
        ws.ping(b"hello")
        self.assertEqual(ws.recv(), {"pong": "hello"}, "pings are answered")

    def test_refusals(self):
        self.assertIn(b"InvalidSignatureException", self.refused(403, who=BOB, secret="wrong"))
        self.assertIn(b"UnrecognizedClientException", self.refused(403, who=BOB, access="AKIDNO"))
        for bad in ("bob", "arn:aws:iam::123456789012:user/bob", APP + "/channel/c",
                    APP + "/user/"):
            self.refused(403, who=bad)
        # A device whose clock is 20 minutes slow: refused, worded so, and told the time.
        host_port = self.host_port()
        real = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda: real() - datetime.timedelta(minutes=20)
        try:
            url = presign(host_port, BOB, "slow", ACCESS, SECRET)
        finally:
            botocore.auth.get_current_datetime = real
        with self.assertRaises(Refused) as cm:
            WebSocket(url, self.ca)
        self.assertEqual(cm.exception.status, 403)
        self.assertIn(b"Signature expired", cm.exception.body)
        self.assertRegex(cm.exception.head, rb"(?i)\r\ndate: \w{3}, \d\d \w{3} \d{4} ")
        # A URL valid for 1 s, used 2 s later.
        url = presign(self.host_port(), BOB, "s", ACCESS, SECRET, expires=1)
        time.sleep(2.1)
        with self.assertRaises(Refused) as cm:
            WebSocket(url, self.ca)
        self.assertEqual(cm.exception.status, 403)
        self.assertIn(b"Signature expired", cm.exception.body)

    def test_kicked_when_the_same_session_connects_again(self):
        first = self.established(BOB, session_id="same")
        self.established(BOB, session_id="same")
        with self.assertRaises(Closed) as cm:
            first.recv()
        self.assertEqual(cm.exception.code, 4003)
        other = self.established(BOB, session_id="other")  # another session id: no kick
        self.assertEqual(other.events(), [])


class FanOut(RealtimeTestCase):
    def test_events_reach_every_members_sessions_and_only_theirs(self):
        bob1, bob2, carol = self.established(BOB), self.established(BOB), self.established(CAROL)
        ch = self.channel(BOB)
        created = bob1.recv()
        self.assertEqual(event_type(created), "CREATE_CHANNEL")
        self.assertEqual(payload(created)["ChannelArn"], ch)
        mid = self.send(ch, "hello \u00e9 \U0001F600", Metadata="m")
        for ws in (bob1, bob2):
            frames = [f for f in ws.events() if event_type(f) == "CREATE_CHANNEL_MESSAGE"]
            self.assertEqual(len(frames), 1)
            self.assertIsInstance(frames[0]["Payload"], str, "Payload is a JSON string")
            p = payload(frames[0])
            self.assertEqual((p["MessageId"], p["Content"], p["Metadata"], p["ChannelArn"]),
                             (mid, "hello \u00e9 \U0001F600", "m", ch))
            self.assertEqual(p["Sender"]["Arn"], ALICE)
            self.assertEqual(p["Persistence"], "PERSISTENT")
            self.assertRegex(p["CreatedTimestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertEqual(frames[0]["Headers"]["x-amz-chime-message-type"], "STANDARD")
        self.assertEqual(carol.events(), [], "not a member: nothing")

    def test_edits_redactions_deletes_in_order(self):
        bob = self.established(BOB)
        ch = self.channel(BOB)
        m1, m2 = self.send(ch, "one"), self.send(ch, "two")
        self.chime("UpdateChannelMessage", ChannelArn=ch, MessageId=m1, Content="one!",
                   ChimeBearer=ALICE)
        self.chime("RedactChannelMessage", ChannelArn=ch, MessageId=m1, ChimeBearer=ALICE)
        self.chime("DeleteChannelMessage", ChannelArn=ch, MessageId=m2, ChimeBearer=ALICE)
        got = [(event_type(f), (payload(f) or {}).get("MessageId"),
                (payload(f) or {}).get("Content")) for f in bob.events()]
        self.assertEqual(got, [("CREATE_CHANNEL", None, None),
                               ("CREATE_CHANNEL_MESSAGE", m1, "one"),
                               ("CREATE_CHANNEL_MESSAGE", m2, "two"),
                               ("UPDATE_CHANNEL_MESSAGE", m1, "one!"),
                               ("REDACT_CHANNEL_MESSAGE", m1, None),
                               ("DELETE_CHANNEL_MESSAGE", m2, None)])

    def test_non_persistent_messages_are_fanned_out_not_stored(self):
        bob = self.established(BOB)
        ch = self.channel(BOB)
        bob.events()
        self.send(ch, "typing", Type="CONTROL", Persistence="NON_PERSISTENT")
        frames = bob.events()
        self.assertEqual([event_type(f) for f in frames], ["CREATE_CHANNEL_MESSAGE"])
        self.assertEqual(payload(frames[0])["Persistence"], "NON_PERSISTENT")
        self.assertEqual(frames[0]["Headers"]["x-amz-chime-message-type"], "CONTROL")
        listed = self.chime("ListChannelMessages", ChannelArn=ch, ChimeBearer=BOB)
        self.assertEqual(listed["ChannelMessages"], [])

    def test_memberships_and_channel_events_and_removed_members_hear_no_more(self):
        bob, carol = self.established(BOB), self.established(CAROL)
        ch = self.channel(BOB)
        self.chime("CreateChannelMembership", ChannelArn=ch, MemberArn=CAROL, Type="DEFAULT",
                   ChimeBearer=ALICE)
        c = carol.events()
        self.assertEqual([event_type(f) for f in c], ["CREATE_CHANNEL_MEMBERSHIP"])
        self.assertEqual(payload(c[0])["Member"]["Arn"], CAROL)
        self.chime("DeleteChannelMembership", ChannelArn=ch, MemberArn=CAROL, ChimeBearer=ALICE)
        self.assertEqual([event_type(f) for f in carol.events()], ["DELETE_CHANNEL_MEMBERSHIP"])
        self.send(ch, "after carol left")
        self.chime("UpdateChannel", ChannelArn=ch, Name="new name", ChimeBearer=ALICE)
        self.chime("DeleteChannel", ChannelArn=ch, ChimeBearer=ALICE)
        self.assertEqual(carol.events(), [], "a removed member gets nothing more")
        self.assertEqual([event_type(f) for f in bob.events()],
                         ["CREATE_CHANNEL", "CREATE_CHANNEL_MEMBERSHIP",
                          "DELETE_CHANNEL_MEMBERSHIP", "CREATE_CHANNEL_MESSAGE", "UPDATE_CHANNEL",
                          "DELETE_CHANNEL"])


class Faults(RealtimeTestCase):
    def realtime(self, path, body, status=200):
        got, out = self.emu.admin("POST", "/_emulator/realtime/" + path, body)
        self.assertEqual(got, status, out)
        return out

    def test_drop_abruptly_and_cleanly(self):
        bob, carol = self.established(BOB), self.established(CAROL)
        self.assertIn(b'"dropped":1', self.realtime("drop", {"user": CAROL, "code": 1012}))
        with self.assertRaises(Closed) as cm:
            carol.recv()
        self.assertEqual(cm.exception.code, 1012)
        self.realtime("drop", {})  # everyone, no close frame
        with self.assertRaises(Closed) as cm:
            bob.recv()
        self.assertEqual(cm.exception.code, 1006, "an abrupt drop has no close frame")
        wait_for(lambda: b'"sessions":0' in self.emu.admin("GET", "/_emulator/realtime")[1],
                 what="no sessions left")

    def test_delay_keeps_order(self):
        bob = self.established(BOB)
        ch = self.channel(BOB)
        bob.events()
        self.realtime("faults", {"delay_ms": 400}, 204)
        start = time.monotonic()
        ids = [self.send(ch, str(i)) for i in range(5)]
        first = bob.recv(timeout=5)
        self.assertGreaterEqual(time.monotonic() - start, 0.35, "events wait delay_ms")
        rest = bob.events(until_quiet=1)
        self.assertEqual([payload(f)["MessageId"] for f in [first] + rest], ids)

    def test_refuse_connects(self):
        self.realtime("faults", {"refuse_status": 503}, 204)
        self.refused(503, who=BOB)
        self.realtime("faults", {"refuse_close": 1011}, 204)
        ws = self.connect(BOB)
        with self.assertRaises(Closed) as cm:
            ws.recv()
        self.assertEqual(cm.exception.code, 1011, "closed before SESSION_ESTABLISHED")
        self.realtime("faults", {}, 204)
        self.established(BOB)

    def test_bad_admin_requests(self):
        self.realtime("drop", {"code": 1006}, 400)
        self.realtime("faults", {"delay_ms": "soon"}, 400)
        self.realtime("faults", {"refuse_status": 200}, 400)


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        sys.stderr.write(f"usage: {sys.argv[0]} PATH/TO/tidings-chime-local [unittest args]\n")
        sys.exit(2)
    ct.BINARY = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
