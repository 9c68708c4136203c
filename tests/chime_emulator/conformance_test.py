#!/usr/bin/env python3
"""Conformance test: boto3's chime-sdk-messaging client against tidings-chime-local.

usage: conformance_test.py PATH/TO/tidings-chime-local [unittest args, e.g. -k Paging -v]

The official client (endpoint_url pointed at the emulator, retries disabled) drives
every implemented operation, the validation errors, SigV4 authentication, NextToken
paging over hundreds of messages, --data-dir persistence across a restart and the
fault injection admin endpoint. Response bodies are checked against the botocore
model (field names and JSON types) and the parsed responses must carry datetimes
where the model says timestamp. Each test starts the emulators it needs; none is
left running, even when a test fails or the interpreter is interrupted.
"""
import atexit
import ctypes
import datetime
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

import boto3
import botocore.session
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore import xform_name

BINARY = None  # set from argv in __main__
REGION = "us-east-1"
DEFAULT_ACCESS = "AKIDTIDINGSLOCAL"
DEFAULT_SECRET = "tidings-local-secret"
ACCESS = "AKIDCONFORMANCETEST"  # passed with --access-key to the main emulator
SECRET = "conformance-secret-9f2c"
APP = "arn:aws:chime:us-east-1:123456789012:app-instance/4b1f0c2e-7a53-4f9e-9d1a-2c3e4f5a6b7c"
STARTUP_TIMEOUT_S = 20.0
LISTEN_PREFIX = "tidings-chime-local listening on http://127.0.0.1:"
UTC = datetime.timezone.utc

MODEL = botocore.session.get_session().get_service_model("chime-sdk-messaging")


def user(name):
    return f"{APP}/user/{name}"


def token():
    return uuid.uuid4().hex


def ms_round(dt):
    """A datetime rounded to the millisecond (the service's precision)."""
    us = dt.microsecond
    ms = (us + 500) // 1000
    return dt.replace(microsecond=0) + datetime.timedelta(milliseconds=ms)


# ---------------------------------------------------------------------------
# The emulator process
# ---------------------------------------------------------------------------

_RUNNING = set()


def _stop_all_at_exit():
    for emu in list(_RUNNING):
        emu.stop(check=False)


atexit.register(_stop_all_at_exit)


def _die_with_parent():
    # Linux: SIGTERM the emulator if this test process dies (even by SIGKILL).
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Emulator:
    """One tidings-chime-local process on an ephemeral port."""

    def __init__(self, *args, env_overrides=None):
        self.args = list(args)
        env = dict(os.environ)
        for key in ("TIDINGS_CHIME_LOCAL_ACCESS_KEY", "TIDINGS_CHIME_LOCAL_SECRET_KEY",
                    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
            env.pop(key, None)
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        env.update(env_overrides or {})
        self.env = env
        self.proc = None
        self.endpoint = None
        self.stderr_file = None
        self.stderr_text = ""
        self.drainer = None
        self.returncode = None
        self.clients = []

    def start(self):
        self.stderr_file = tempfile.TemporaryFile()
        cmd = [BINARY, "--port", "0"] + self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.stderr_file,
                                     env=self.env, preexec_fn=_die_with_parent)
        _RUNNING.add(self)
        line = self._read_line(STARTUP_TIMEOUT_S)
        if not line.startswith(LISTEN_PREFIX) or not line[len(LISTEN_PREFIX):].isdigit():
            self.stop(check=False)
            raise AssertionError(
                f"{' '.join(cmd)}: first stdout line should be '{LISTEN_PREFIX}PORT', got "
                f"{line!r}; stderr: {self.stderr_tail()}")
        port = int(line[len(LISTEN_PREFIX):])
        if not 0 < port < 65536:
            raise AssertionError(f"listening line names port {port}")
        self.endpoint = f"http://127.0.0.1:{port}"
        # Keep draining stdout so the emulator never blocks on a full pipe.
        self.drainer = threading.Thread(target=self._drain, daemon=True)
        self.drainer.start()
        return self

    def _read_line(self, timeout):
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop(check=False)
                raise AssertionError(
                    f"tidings-chime-local did not print its 'listening on' line within "
                    f"{timeout:.0f} s (stdout so far {buf!r}); stderr: {self.stderr_tail()}")
            ready, _, _ = select.select([fd], [], [], min(left, 0.2))
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    rc = self.proc.wait()
                    self.stop(check=False)
                    raise AssertionError(
                        f"tidings-chime-local exited (status {rc}) before listening; stdout "
                        f"{buf!r}; stderr: {self.stderr_tail()}")
                buf += chunk
        return buf.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")

    def _drain(self):
        try:
            while self.proc.stdout.read(4096):
                pass
        except (OSError, ValueError):
            pass

    def stderr_tail(self, limit=2000):
        if self.stderr_file is None:
            return self.stderr_text[-limit:]
        try:
            self.stderr_file.seek(0)
            data = self.stderr_file.read()
        except (OSError, ValueError):
            return "<unreadable>"
        return data[-limit:].decode("utf-8", "replace")

    def stop(self, check=True):
        """SIGTERM, wait; returns the exit status. check: raise unless it exits 0 in time."""
        if self.proc is None:
            return self.returncode
        proc, self.proc = self.proc, None
        _RUNNING.discard(self)
        self.close_clients()  # idle keep-alive connections delayed the shutdown once
        problem = None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                problem = "did not exit within 10 s of SIGTERM (killed)"
        else:
            problem = f"had already exited with status {proc.returncode} before SIGTERM"
        self.returncode = proc.returncode
        if self.drainer is not None:
            self.drainer.join(timeout=2)
            self.drainer = None
        proc.stdout.close()
        self.stderr_text = self.stderr_tail(100000)
        self.stderr_file.close()
        self.stderr_file = None
        if problem is None and proc.returncode != 0:
            problem = f"exited with status {proc.returncode} after SIGTERM (contract: 0)"
        if check and problem:
            raise AssertionError(f"tidings-chime-local {problem}; stderr: {self.stderr_tail()}")
        return self.returncode

    # -- clients ---------------------------------------------------------------
    def client(self, access=DEFAULT_ACCESS, secret=DEFAULT_SECRET, validate=True,
               retries=None, **config):
        # total_max_attempts 1: no retry at all (retries={"max_attempts": 1} would still
        # retry once: botocore counts max_attempts after the first attempt).
        cfg = Config(retries=retries or {"total_max_attempts": 1, "mode": "standard"},
                     parameter_validation=validate, connect_timeout=5, read_timeout=15, **config)
        client = boto3.client("chime-sdk-messaging", endpoint_url=self.endpoint,
                              region_name=REGION, aws_access_key_id=access,
                              aws_secret_access_key=secret, config=cfg)
        self.clients.append(client)
        return client

    def close_clients(self):
        for c in self.clients:
            c.close()
        self.clients = []

    def admin(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.endpoint + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def set_faults(self, faults):
        status, body = self.admin("POST", "/_emulator/faults", faults)
        if status != 204:
            raise AssertionError(f"POST /_emulator/faults {faults}: expected 204, got {status} "
                                 f"{body[:200]!r}")

    def raw(self, method, path, query="", body=b"", headers=None, creds=None, sign=True,
            send_body=None):
        """A hand-made request (SigV4-signed by botocore unless sign=False).

        send_body: bytes sent instead of the signed body (tampering)."""
        creds = creds or (DEFAULT_ACCESS, DEFAULT_SECRET)
        url = self.endpoint + path + ("?" + query if query else "")
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        req = AWSRequest(method=method, url=url, data=body, headers=hdrs)
        if sign:
            SigV4Auth(Credentials(*creds), "chime", REGION).add_auth(req)
        data = body if send_body is None else send_body
        out = urllib.request.Request(url, data=data if method in ("POST", "PUT") else None,
                                     method=method, headers=dict(req.headers.items()))
        try:
            with urllib.request.urlopen(out, timeout=10) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


# ---------------------------------------------------------------------------
# Model checks
# ---------------------------------------------------------------------------

def check_raw_json(path, value, shape, problems):
    """The wire JSON against a botocore shape: known member names, JSON types."""
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a JSON object ({shape.name}), got {value!r:.80}")
            return
        for key, v in value.items():
            member = shape.members.get(key)
            if member is None:
                # rest-json may use a locationName; look for it.
                member = next((m for n, m in shape.members.items()
                               if m.serialization.get("name") == key
                               and not m.serialization.get("location")), None)
            if member is None:
                problems.append(f"{path}.{key}: not a member of {shape.name} in the model")
                continue
            if v is None:
                problems.append(f"{path}.{key}: null (absent members are omitted, not null)")
                continue
            check_raw_json(f"{path}.{key}", v, member, problems)
    elif t == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a JSON array, got {value!r:.80}")
            return
        for i, v in enumerate(value):
            check_raw_json(f"{path}[{i}]", v, shape.member, problems)
    elif t == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a JSON object (map), got {value!r:.80}")
            return
        for k, v in value.items():
            check_raw_json(f"{path}[{k!r}]", v, shape.value, problems)
    elif t == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string, got {value!r:.80}")
        elif shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
    elif t in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer, got {value!r:.80}")
    elif t == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected true/false, got {value!r:.80}")
    elif t == "timestamp":
        # rest-json body timestamps are epoch seconds (JSON numbers) in the model.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected epoch seconds (a JSON number), got {value!r:.80}")
        elif not 1.5e9 < value < 4.2e9:
            problems.append(f"{path}: {value} is not epoch seconds of a plausible date")


def check_parsed(path, value, shape, problems):
    """The parsed response: timestamps are timezone-aware datetimes."""
    t = shape.type_name
    if t == "structure" and isinstance(value, dict):
        for key, v in value.items():
            if key in shape.members:
                check_parsed(f"{path}.{key}", v, shape.members[key], problems)
    elif t == "list" and isinstance(value, list):
        for i, v in enumerate(value):
            check_parsed(f"{path}[{i}]", v, shape.member, problems)
    elif t == "timestamp":
        if not isinstance(value, datetime.datetime) or value.tzinfo is None:
            problems.append(f"{path}: boto3 did not parse a timestamp: {value!r}")


class Chime:
    """A boto3 client plus the raw response of its last call, checked against the model."""

    def __init__(self, test, client):
        self.test = test
        self.client = client
        self.last_raw = None
        client.meta.events.register("before-parse.chime-sdk-messaging.*", self._capture)

    def _capture(self, operation_model, response_dict, **kwargs):
        self.last_raw = (operation_model.name, response_dict["status_code"],
                         dict(response_dict["headers"]), response_dict["body"])

    def __call__(self, op, **params):
        """Call op (CamelCase name); assert the model's success status and response shape."""
        self.last_raw = None
        try:
            resp = getattr(self.client, xform_name(op))(**params)
        except ClientError as e:
            err = e.response.get("Error", {})
            raise AssertionError(
                f"{op}: unexpected error {err.get('Code')} "
                f"({e.response['ResponseMetadata'].get('HTTPStatusCode')}): "
                f"{err.get('Message')}") from None
        model = MODEL.operation_model(op)
        status = resp["ResponseMetadata"]["HTTPStatusCode"]
        self.test.assertEqual(status, model.http.get("responseCode", 200),
                              f"{op}: HTTP status (model says {model.http.get('responseCode')})")
        problems = []
        raw_body = self.last_raw[3] if self.last_raw else b""
        out = model.output_shape
        if out is None:
            self.test.assertIn(raw_body.strip(), (b"", b"{}"),
                               f"{op}: {status} response should have no body")
        else:
            try:
                raw = json.loads(raw_body or b"{}")
            except ValueError:
                raise AssertionError(f"{op}: response body is not JSON: {raw_body[:200]!r}")
            check_raw_json(op, raw, out, problems)
            check_parsed(op, resp, out, problems)
        self.test.assertFalse(problems, f"{op}: response does not match the botocore model:\n  "
                              + "\n  ".join(problems))
        return resp

    def error(self, op, code, status, **params):
        """Call op expecting the error code with the HTTP status; returns the error response."""
        self.last_raw = None
        try:
            resp = getattr(self.client, xform_name(op))(**params)
        except ClientError as e:
            r = e.response
            got = (r.get("Error", {}).get("Code"), r["ResponseMetadata"].get("HTTPStatusCode"))
            self.test.assertEqual(got, (code, status),
                                  f"{op}: expected {code} ({status}), got {got[0]} ({got[1]}): "
                                  f"{r.get('Error', {}).get('Message')}")
            headers = r["ResponseMetadata"].get("HTTPHeaders", {})
            self.test.assertEqual(headers.get("x-amzn-errortype", "").split(":")[0], code,
                                  f"{op}: x-amzn-ErrorType header")
            self.test.assertTrue(r["Error"].get("Message"), f"{op}: {code} without a Message")
            body = self.last_raw[3] if self.last_raw else b""
            try:
                raw = json.loads(body)
            except ValueError:
                raise AssertionError(f"{op}: {code} body is not JSON: {body[:200]!r}") from None
            self.test.assertIsInstance(raw, dict, f"{op}: {code} body")
            self.test.assertEqual(raw.get("Code"), code, f"{op}: error body Code ({raw})")
            self.test.assertIsInstance(raw.get("Message"), str, f"{op}: error body Message")
            return r
        self.test.fail(f"{op}: expected {code} ({status}), the call succeeded: "
                       f"{ {k: v for k, v in resp.items() if k != 'ResponseMetadata'} }")


# ---------------------------------------------------------------------------
# Shared emulator for most tests
# ---------------------------------------------------------------------------

class EmulatorTestCase(unittest.TestCase):
    emu = None

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator("--access-key", ACCESS, "--secret-key", SECRET).start()
        cls.addClassCleanup(cls.emu.stop)

    def setUp(self):
        self.chime = Chime(self, self.emu.client(ACCESS, SECRET))
        # Server-side validation: boto3 would refuse some of these parameters itself.
        self.loose = Chime(self, self.emu.client(ACCESS, SECRET, validate=False))
        self.addCleanup(self.emu.close_clients)

    def new_channel(self, bearer, name="conformance", members=(), **extra):
        params = dict(AppInstanceArn=APP, Name=name, Mode="UNRESTRICTED", Privacy="PRIVATE",
                      ClientRequestToken=token(), ChimeBearer=bearer)
        params.update(extra)
        if members:
            params["MemberArns"] = list(members)
        arn = self.chime("CreateChannel", **params)["ChannelArn"]
        self.assertTrue(arn.startswith(APP + "/channel/"),
                        f"CreateChannel: ChannelArn {arn!r} should be {APP}/channel/<id>")
        return arn

    def send(self, channel, bearer, content, tok=None, **extra):
        params = dict(ChannelArn=channel, Content=content, Type="STANDARD",
                      Persistence="PERSISTENT", ClientRequestToken=tok or token(),
                      ChimeBearer=bearer)
        params.update(extra)
        return self.chime("SendChannelMessage", **params)

    def list_all(self, channel, bearer, order="ASCENDING", page=50, client=None, start=None,
                 **extra):
        """All messages, following NextToken (from start); returns (messages, page sizes)."""
        client = client or self.chime
        out, sizes, kwargs = [], [], ({"NextToken": start} if start else {})
        for _ in range(1000):
            r = client("ListChannelMessages", ChannelArn=channel, ChimeBearer=bearer,
                       SortOrder=order, MaxResults=page, **extra, **kwargs)
            msgs = r.get("ChannelMessages", [])
            self.assertLessEqual(len(msgs), page, f"ListChannelMessages: MaxResults={page} "
                                 f"returned {len(msgs)} messages")
            out.extend(msgs)
            sizes.append(len(msgs))
            if not r.get("NextToken"):
                return out, sizes
            kwargs = {"NextToken": r["NextToken"]}
        self.fail("ListChannelMessages: NextToken never ends (1000 pages)")


ALICE, BOB, CAROL, DAVE = user("alice"), user("bob"), user("carol"), user("dave")


class Operations(EmulatorTestCase):
    """Every operation, its response shape and its effect."""

    def test_create_channel_is_idempotent_by_token(self):
        tok = token()
        params = dict(AppInstanceArn=APP, Name="idem", Mode="RESTRICTED", Privacy="PUBLIC",
                      Metadata="m1", ClientRequestToken=tok, ChimeBearer=ALICE)
        first = self.chime("CreateChannel", **params)["ChannelArn"]
        again = self.chime("CreateChannel", **params)["ChannelArn"]
        self.assertEqual(again, first, "CreateChannel: same ClientRequestToken, new ChannelArn")
        other = self.chime("CreateChannel", **dict(params, ClientRequestToken=token()))
        self.assertNotEqual(other["ChannelArn"], first,
                            "CreateChannel: a different ClientRequestToken must make a new channel")
        d = self.chime("DescribeChannel", ChannelArn=first, ChimeBearer=ALICE)["Channel"]
        self.assertEqual((d["ChannelArn"], d["Name"], d["Mode"], d["Privacy"], d["Metadata"]),
                         (first, "idem", "RESTRICTED", "PUBLIC", "m1"), "DescribeChannel")

    def test_create_channel_with_channel_id(self):
        cid = "conf-" + uuid.uuid4().hex[:20]
        arn = self.chime("CreateChannel", AppInstanceArn=APP, Name="fixed id", ChannelId=cid,
                         ClientRequestToken=token(), ChimeBearer=ALICE)["ChannelArn"]
        self.assertEqual(arn, f"{APP}/channel/{cid}", "CreateChannel with ChannelId: ARN")
        self.chime.error("CreateChannel", "ConflictException", 409, AppInstanceArn=APP,
                         Name="fixed id", ChannelId=cid, ClientRequestToken=token(),
                         ChimeBearer=BOB)

    def test_describe_channel(self):
        before = datetime.datetime.now(UTC) - datetime.timedelta(seconds=2)
        arn = self.new_channel(ALICE, name="Ward 7 handover", Metadata='{"k":"v"}')
        ch = self.chime("DescribeChannel", ChannelArn=arn, ChimeBearer=ALICE)["Channel"]
        self.assertEqual(ch["ChannelArn"], arn)
        self.assertEqual(ch["Name"], "Ward 7 handover")
        self.assertEqual(ch["Mode"], "UNRESTRICTED")
        self.assertEqual(ch["Privacy"], "PRIVATE")
        self.assertEqual(ch["Metadata"], '{"k":"v"}')
        self.assertEqual(ch.get("CreatedBy", {}).get("Arn"), ALICE, "DescribeChannel: CreatedBy")
        created = ch.get("CreatedTimestamp")
        self.assertIsInstance(created, datetime.datetime, "DescribeChannel: CreatedTimestamp")
        after = datetime.datetime.now(UTC) + datetime.timedelta(seconds=2)
        self.assertTrue(before <= created <= after,
                        f"DescribeChannel: CreatedTimestamp {created} is not now")
        m = self.send(arn, ALICE, "hello")
        msg = self.chime("GetChannelMessage", ChannelArn=arn, MessageId=m["MessageId"],
                         ChimeBearer=ALICE)["ChannelMessage"]
        ch = self.chime("DescribeChannel", ChannelArn=arn, ChimeBearer=ALICE)["Channel"]
        self.assertIn("LastMessageTimestamp", ch, "DescribeChannel after a message")
        self.assertGreaterEqual(ch["LastMessageTimestamp"], msg["CreatedTimestamp"],
                                "DescribeChannel: LastMessageTimestamp before the last message")

    def test_memberships(self):
        arn = self.new_channel(ALICE, members=[BOB])
        r = self.chime("CreateChannelMembership", ChannelArn=arn, MemberArn=CAROL,
                       Type="DEFAULT", ChimeBearer=ALICE)
        self.assertEqual(r["ChannelArn"], arn, "CreateChannelMembership: ChannelArn")
        self.assertEqual(r.get("Member", {}).get("Arn"), CAROL, "CreateChannelMembership: Member")
        listed = self.chime("ListChannelMemberships", ChannelArn=arn, ChimeBearer=BOB)
        self.assertEqual(listed.get("ChannelArn"), arn, "ListChannelMemberships: ChannelArn")
        arns = sorted(m["Member"]["Arn"] for m in listed["ChannelMemberships"])
        self.assertEqual(arns, sorted([ALICE, BOB, CAROL]),
                         "ListChannelMemberships: the creator, MemberArns and the added member")
        # carol can read now, then is removed and cannot.
        self.chime("ListChannelMessages", ChannelArn=arn, ChimeBearer=CAROL)
        self.chime("DeleteChannelMembership", ChannelArn=arn, MemberArn=CAROL, ChimeBearer=ALICE)
        arns = sorted(m["Member"]["Arn"] for m in self.chime(
            "ListChannelMemberships", ChannelArn=arn, ChimeBearer=ALICE)["ChannelMemberships"])
        self.assertEqual(arns, sorted([ALICE, BOB]), "ListChannelMemberships after the delete")
        self.chime.error("ListChannelMessages", "ForbiddenException", 403, ChannelArn=arn,
                         ChimeBearer=CAROL)

    def test_hidden_members(self):
        # Model: "Hidden members are only returned if the type filter in
        # ListChannelMemberships equals HIDDEN."
        arn = self.new_channel(ALICE)
        self.chime("CreateChannelMembership", ChannelArn=arn, MemberArn=BOB, Type="DEFAULT",
                   ChimeBearer=ALICE)
        self.chime("CreateChannelMembership", ChannelArn=arn, MemberArn=DAVE, Type="HIDDEN",
                   ChimeBearer=ALICE)

        def members(**kw):
            return sorted(m["Member"]["Arn"] for m in self.chime(
                "ListChannelMemberships", ChannelArn=arn, ChimeBearer=ALICE,
                **kw)["ChannelMemberships"])

        self.assertEqual(members(), sorted([ALICE, BOB]), "ListChannelMemberships, no Type")
        self.assertEqual(members(Type="DEFAULT"), sorted([ALICE, BOB]),
                         "ListChannelMemberships Type=DEFAULT")
        self.assertEqual(members(Type="HIDDEN"), [DAVE], "ListChannelMemberships Type=HIDDEN")
        d = self.chime("DescribeChannelMembershipForAppInstanceUser", ChannelArn=arn,
                       AppInstanceUserArn=DAVE, ChimeBearer=DAVE)["ChannelMembership"]
        self.assertEqual(d["AppInstanceUserMembershipSummary"].get("Type"), "HIDDEN",
                         "DescribeChannelMembershipForAppInstanceUser of a hidden member")
        self.send(arn, DAVE, "a hidden member is still a member")

    def test_membership_permissions(self):
        # Model (CreateChannel Mode): members add members to UNRESTRICTED channels, only
        # moderators (the creator) to RESTRICTED ones. A member can leave the channel.
        restricted = self.new_channel(ALICE, Mode="RESTRICTED", members=[BOB])
        self.chime.error("CreateChannelMembership", "ForbiddenException", 403,
                         ChannelArn=restricted, MemberArn=CAROL, Type="DEFAULT",
                         ChimeBearer=BOB)
        self.chime("CreateChannelMembership", ChannelArn=restricted, MemberArn=CAROL,
                   Type="DEFAULT", ChimeBearer=ALICE)
        open_ = self.new_channel(ALICE, members=[BOB])
        self.chime("CreateChannelMembership", ChannelArn=open_, MemberArn=CAROL,
                   Type="DEFAULT", ChimeBearer=BOB)
        # A plain member cannot remove another one; anyone can leave.
        self.chime.error("DeleteChannelMembership", "ForbiddenException", 403,
                         ChannelArn=open_, MemberArn=CAROL, ChimeBearer=BOB)
        self.chime("DeleteChannelMembership", ChannelArn=open_, MemberArn=BOB, ChimeBearer=BOB)
        arns = sorted(m["Member"]["Arn"] for m in self.chime(
            "ListChannelMemberships", ChannelArn=open_, ChimeBearer=ALICE)["ChannelMemberships"])
        self.assertEqual(arns, sorted([ALICE, CAROL]), "after bob left")

    def test_only_the_sender_edits(self):
        # Model (CreateChannelMembership): a member can "edit their own messages".
        arn = self.new_channel(ALICE, members=[BOB])
        mid = self.send(arn, ALICE, "mine")["MessageId"]
        self.chime.error("UpdateChannelMessage", "ForbiddenException", 403, ChannelArn=arn,
                         MessageId=mid, Content="not yours", ChimeBearer=BOB)
        got = self.chime("GetChannelMessage", ChannelArn=arn, MessageId=mid,
                         ChimeBearer=BOB)["ChannelMessage"]
        self.assertEqual(got["Content"], "mine", "a refused UpdateChannelMessage changed it")

    def test_public_channel(self):
        # Model (CreateChannelMembership): "Public Channels: You do not need to be a member
        # to list messages, but you must be a member to send messages."
        arn = self.new_channel(ALICE, Privacy="PUBLIC")
        mid = self.send(arn, ALICE, "on the notice board")["MessageId"]
        r = self.chime("ListChannelMessages", ChannelArn=arn, ChimeBearer=CAROL)
        self.assertEqual([m["MessageId"] for m in r["ChannelMessages"]], [mid],
                         "ListChannelMessages of a PUBLIC channel by a non-member")
        self.chime.error("SendChannelMessage", "ForbiddenException", 403, ChannelArn=arn,
                         Content="c", Type="STANDARD", Persistence="PERSISTENT",
                         ClientRequestToken=token(), ChimeBearer=CAROL)

    def test_list_channel_memberships_paging(self):
        members = [user(f"m{i:02d}-{uuid.uuid4().hex[:6]}") for i in range(11)]
        arn = self.new_channel(ALICE)
        for m in members:
            self.chime("CreateChannelMembership", ChannelArn=arn, MemberArn=m, Type="DEFAULT",
                       ChimeBearer=ALICE)
        seen, kwargs, pages = [], {}, 0
        while True:
            r = self.chime("ListChannelMemberships", ChannelArn=arn, ChimeBearer=ALICE,
                           MaxResults=5, **kwargs)
            self.assertLessEqual(len(r["ChannelMemberships"]), 5, "ListChannelMemberships page")
            seen += [m["Member"]["Arn"] for m in r["ChannelMemberships"]]
            pages += 1
            self.assertLess(pages, 20, "ListChannelMemberships: NextToken never ends")
            if not r.get("NextToken"):
                break
            kwargs = {"NextToken": r["NextToken"]}
        self.assertEqual(sorted(seen), sorted(members + [ALICE]),
                         "ListChannelMemberships pages: every member exactly once")
        self.assertGreaterEqual(pages, 3, "ListChannelMemberships: 12 members in pages of 5")

    def test_memberships_for_app_instance_user(self):
        me = user("erin-" + uuid.uuid4().hex[:8])
        made = {}
        for i in range(7):
            arn = self.new_channel(me, name=f"chan {i}", Metadata=f"meta-{i}")
            made[arn] = i
        # One more made by someone else, with the user as a member.
        gone = self.new_channel(ALICE, name="chan 7", Metadata="meta-7", members=[me])
        made[gone] = 7
        seen, kwargs, pages = [], {}, 0
        while True:
            r = self.chime("ListChannelMembershipsForAppInstanceUser", AppInstanceUserArn=me,
                           ChimeBearer=me, MaxResults=3, **kwargs)
            self.assertLessEqual(len(r["ChannelMemberships"]), 3,
                                 "ListChannelMembershipsForAppInstanceUser page size")
            for m in r["ChannelMemberships"]:
                s = m["ChannelSummary"]
                seen.append(s["ChannelArn"])
                i = made.get(s["ChannelArn"])
                self.assertIsNotNone(i, f"ListChannelMembershipsForAppInstanceUser: "
                                        f"{s['ChannelArn']} is not one of the user's channels")
                self.assertEqual((s.get("Name"), s.get("Mode"), s.get("Privacy"),
                                  s.get("Metadata")),
                                 (f"chan {i}", "UNRESTRICTED", "PRIVATE", f"meta-{i}"),
                                 "ListChannelMembershipsForAppInstanceUser: ChannelSummary")
                self.assertEqual(m.get("AppInstanceUserMembershipSummary", {}).get("Type"),
                                 "DEFAULT", "ListChannelMembershipsForAppInstanceUser: Type")
            pages += 1
            self.assertLess(pages, 20, "ListChannelMembershipsForAppInstanceUser: endless")
            if not r.get("NextToken"):
                break
            kwargs = {"NextToken": r["NextToken"]}
        self.assertEqual(sorted(seen), sorted(made),
                         "ListChannelMembershipsForAppInstanceUser: every channel exactly once")
        self.assertGreaterEqual(pages, 3, "8 channels in pages of 3")
        # A channel the user is removed from is no longer listed.
        self.chime("DeleteChannelMembership", ChannelArn=gone, MemberArn=me, ChimeBearer=ALICE)
        r = self.chime("ListChannelMembershipsForAppInstanceUser", AppInstanceUserArn=me,
                       ChimeBearer=me, MaxResults=50)
        self.assertEqual(sorted(m["ChannelSummary"]["ChannelArn"] for m in r["ChannelMemberships"]),
                         sorted(a for a in made if a != gone),
                         "ListChannelMembershipsForAppInstanceUser after DeleteChannelMembership")

    def test_memberships_for_app_instance_user_scope(self):
        # Model: "Only an AppInstanceAdmin can call the API with a user ARN that is not their
        # own." Without AppInstanceUserArn: the bearer's own channels.
        me = user("frank-" + uuid.uuid4().hex[:8])
        arn = self.new_channel(ALICE, members=[me])
        r = self.chime("ListChannelMembershipsForAppInstanceUser", ChimeBearer=me)
        self.assertEqual([m["ChannelSummary"]["ChannelArn"] for m in r["ChannelMemberships"]],
                         [arn], "ListChannelMembershipsForAppInstanceUser without a user ARN")
        self.chime.error("ListChannelMembershipsForAppInstanceUser", "ForbiddenException", 403,
                         AppInstanceUserArn=me, ChimeBearer=BOB)

    def test_describe_membership_and_read_marker(self):
        arn = self.new_channel(ALICE, name="marker", members=[BOB])
        self.send(arn, ALICE, "read me")
        before = datetime.datetime.now(UTC) - datetime.timedelta(seconds=2)
        r = self.chime("UpdateChannelReadMarker", ChannelArn=arn, ChimeBearer=BOB)
        after = datetime.datetime.now(UTC) + datetime.timedelta(seconds=2)
        self.assertEqual(r.get("ChannelArn"), arn, "UpdateChannelReadMarker: ChannelArn")
        d = self.chime("DescribeChannelMembershipForAppInstanceUser", ChannelArn=arn,
                       AppInstanceUserArn=BOB, ChimeBearer=BOB)["ChannelMembership"]
        self.assertEqual(d["ChannelSummary"]["ChannelArn"], arn,
                         "DescribeChannelMembershipForAppInstanceUser: ChannelSummary")
        self.assertEqual(d["ChannelSummary"].get("Name"), "marker")
        summary = d.get("AppInstanceUserMembershipSummary", {})
        self.assertEqual(summary.get("Type"), "DEFAULT")
        marker = summary.get("ReadMarkerTimestamp")
        self.assertIsInstance(marker, datetime.datetime,
                              "DescribeChannelMembershipForAppInstanceUser: ReadMarkerTimestamp "
                              "after UpdateChannelReadMarker")
        self.assertTrue(before <= marker <= after, f"ReadMarkerTimestamp {marker} is not now")
        self.chime.error("UpdateChannelReadMarker", "ForbiddenException", 403, ChannelArn=arn,
                         ChimeBearer=CAROL)

    def test_send_get_update_delete(self):
        arn = self.new_channel(ALICE, members=[BOB])
        tok = token()
        sent = self.send(arn, ALICE, "first draft", tok=tok, Metadata='{"n":1}',
                         ContentType="text/plain")
        self.assertEqual(sent["ChannelArn"], arn, "SendChannelMessage: ChannelArn")
        mid = sent["MessageId"]
        self.assertTrue(mid, "SendChannelMessage: MessageId")
        self.assertEqual(sent.get("Status", {}).get("Value"), "SENT", "SendChannelMessage: Status")
        # Same token: same message, not a second one.
        again = self.send(arn, ALICE, "first draft", tok=tok, Metadata='{"n":1}',
                          ContentType="text/plain")
        self.assertEqual(again["MessageId"], mid,
                         "SendChannelMessage: same ClientRequestToken must return the same MessageId")
        msgs, _ = self.list_all(arn, ALICE)
        self.assertEqual([m["MessageId"] for m in msgs], [mid],
                         "SendChannelMessage twice with one token: exactly one message")

        got = self.chime("GetChannelMessage", ChannelArn=arn, MessageId=mid,
                         ChimeBearer=BOB)["ChannelMessage"]
        self.assertEqual(got["ChannelArn"], arn)
        self.assertEqual(got["MessageId"], mid)
        self.assertEqual(got["Content"], "first draft")
        self.assertEqual(got["Metadata"], '{"n":1}')
        self.assertEqual(got["Type"], "STANDARD")
        self.assertEqual(got.get("ContentType"), "text/plain")
        self.assertEqual(got.get("Persistence"), "PERSISTENT")
        self.assertEqual(got.get("Sender", {}).get("Arn"), ALICE, "GetChannelMessage: Sender")
        self.assertIs(got.get("Redacted"), False, "GetChannelMessage: Redacted")
        self.assertEqual(got.get("Status", {}).get("Value"), "SENT")
        self.assertIsInstance(got.get("CreatedTimestamp"), datetime.datetime)
        self.assertNotIn("LastEditedTimestamp", got, "GetChannelMessage: never edited")
        self.assertEqual(msgs[0]["Content"], "first draft", "ListChannelMessages: Content")
        self.assertEqual(msgs[0]["CreatedTimestamp"], got["CreatedTimestamp"],
                         "ListChannelMessages and GetChannelMessage: CreatedTimestamp")

        up = self.chime("UpdateChannelMessage", ChannelArn=arn, MessageId=mid,
                        Content="final text", Metadata='{"n":2}', ChimeBearer=ALICE)
        self.assertEqual((up["ChannelArn"], up["MessageId"]), (arn, mid), "UpdateChannelMessage")
        got2 = self.chime("GetChannelMessage", ChannelArn=arn, MessageId=mid,
                          ChimeBearer=ALICE)["ChannelMessage"]
        self.assertEqual((got2["Content"], got2["Metadata"]), ("final text", '{"n":2}'),
                         "GetChannelMessage after UpdateChannelMessage")
        self.assertEqual(got2["CreatedTimestamp"], got["CreatedTimestamp"],
                         "UpdateChannelMessage must not change CreatedTimestamp")
        self.assertIsInstance(got2.get("LastEditedTimestamp"), datetime.datetime,
                              "GetChannelMessage after an edit: LastEditedTimestamp")
        self.assertGreaterEqual(got2["LastEditedTimestamp"], got["CreatedTimestamp"])
        self.assertGreaterEqual(got2.get("LastUpdatedTimestamp"), got2["LastEditedTimestamp"],
                                "LastUpdatedTimestamp")
        listed, _ = self.list_all(arn, BOB)
        self.assertEqual([(m["MessageId"], m["Content"]) for m in listed], [(mid, "final text")],
                         "ListChannelMessages after UpdateChannelMessage")

        keep = self.send(arn, BOB, "stays")["MessageId"]
        self.chime("DeleteChannelMessage", ChannelArn=arn, MessageId=mid, ChimeBearer=ALICE)
        self.chime.error("GetChannelMessage", "NotFoundException", 404, ChannelArn=arn,
                         MessageId=mid, ChimeBearer=ALICE)
        listed, _ = self.list_all(arn, ALICE)
        self.assertEqual([m["MessageId"] for m in listed], [keep],
                         "ListChannelMessages after DeleteChannelMessage")

    def test_redact(self):
        arn = self.new_channel(ALICE, members=[BOB])
        mid = self.send(arn, ALICE, "secret ward number", Metadata='{"private":true}')["MessageId"]
        other = self.send(arn, BOB, "unrelated", Metadata="kept")["MessageId"]
        r = self.chime("RedactChannelMessage", ChannelArn=arn, MessageId=mid, ChimeBearer=ALICE)
        self.assertEqual((r.get("ChannelArn"), r.get("MessageId")), (arn, mid),
                         "RedactChannelMessage response")
        got = self.chime("GetChannelMessage", ChannelArn=arn, MessageId=mid,
                         ChimeBearer=BOB)["ChannelMessage"]
        self.assertIs(got.get("Redacted"), True, "GetChannelMessage after redaction: Redacted")
        self.assertIn(got.get("Content"), (None, ""), "redacted message still has Content")
        self.assertIn(got.get("Metadata"), (None, ""), "redacted message still has Metadata")
        listed = {m["MessageId"]: m for m in self.list_all(arn, BOB)[0]}
        self.assertEqual(sorted(listed), sorted([mid, other]),
                         "ListChannelMessages after redaction: the redacted message stays listed")
        self.assertIs(listed[mid].get("Redacted"), True, "ListChannelMessages: Redacted")
        self.assertIn(listed[mid].get("Content"), (None, ""), "ListChannelMessages: Content")
        self.assertIn(listed[mid].get("Metadata"), (None, ""), "ListChannelMessages: Metadata")
        self.assertEqual((listed[other]["Content"], listed[other].get("Metadata")),
                         ("unrelated", "kept"), "redaction touched another message")
        self.assertIs(listed[other].get("Redacted"), False)

    def test_control_and_limits_at_the_edge(self):
        arn = self.new_channel(ALICE)
        # Exactly at each limit is accepted.
        self.send(arn, ALICE, "x" * 4096)
        self.send(arn, ALICE, "é" * 2048)  # 4096 bytes
        self.send(arn, ALICE, "m", Metadata="y" * 1024)
        self.chime("SendChannelMessage", ChannelArn=arn, Content="c" * 30, Type="CONTROL",
                   Persistence="NON_PERSISTENT", ClientRequestToken=token(), ChimeBearer=ALICE)
        self.chime("UpdateChannelMessage", ChannelArn=arn,
                   MessageId=self.send(arn, ALICE, "short")["MessageId"], Content="z" * 4096,
                   ChimeBearer=ALICE)

    def test_text_round_trip(self):
        # boto3 sends JSON with \u escapes (surrogate pairs for emoji); every character must
        # come back as sent, in every field that carries text.
        content = ('Gr\u00fc\u00dfe \U0001F600 "quoted" \\ back/slash\nnew line\ttab '
                   '\u0001\u001f \u4e2d\u6587 \u202e <tag> &amp; \u2028 end')
        metadata = '{"k":"v \U0001F4AC \\"x\\""}'
        name = "Station \u00e9t\u00e9 \U0001F3E5"
        arn = self.new_channel(ALICE, name=name, Metadata=metadata)
        ch = self.chime("DescribeChannel", ChannelArn=arn, ChimeBearer=ALICE)["Channel"]
        self.assertEqual((ch["Name"], ch["Metadata"]), (name, metadata), "DescribeChannel text")
        mid = self.send(arn, ALICE, content, Metadata=metadata)["MessageId"]
        got = self.chime("GetChannelMessage", ChannelArn=arn, MessageId=mid,
                         ChimeBearer=ALICE)["ChannelMessage"]
        self.assertEqual((got["Content"], got["Metadata"]), (content, metadata),
                         "GetChannelMessage: text changed on the way")
        listed = self.list_all(arn, ALICE)[0][0]
        self.assertEqual((listed["Content"], listed["Metadata"]), (content, metadata),
                         "ListChannelMessages: text changed on the way")
        self.send(arn, ALICE, "\U0001F600" * 1024)  # 4096 bytes
        self.loose.error("SendChannelMessage", "BadRequestException", 400, ChannelArn=arn,
                         Content="\U0001F600" * 1025, Type="STANDARD", Persistence="PERSISTENT",
                         ClientRequestToken=token(), ChimeBearer=ALICE)  # 4100 bytes

    def test_request_id(self):
        # AWS answers every request, success or error, with an x-amzn-RequestId header;
        # boto3 reports it as ResponseMetadata.RequestId (and users log it).
        arn = self.new_channel(ALICE)
        ids = set()
        for _ in range(2):
            r = self.chime("DescribeChannel", ChannelArn=arn, ChimeBearer=ALICE)
            self.assertTrue(r["ResponseMetadata"].get("RequestId"),
                            "DescribeChannel: no x-amzn-RequestId header")
            ids.add(r["ResponseMetadata"]["RequestId"])
        self.assertEqual(len(ids), 2, "two requests, one RequestId")
        e = self.chime.error("DescribeChannel", "ForbiddenException", 403, ChannelArn=arn,
                             ChimeBearer=CAROL)
        self.assertTrue(e["ResponseMetadata"].get("RequestId"),
                        "ForbiddenException: no x-amzn-RequestId header")

    def test_non_persistent_messages_are_not_stored(self):
        arn = self.new_channel(ALICE, members=[BOB])
        kept = self.send(arn, ALICE, "kept")["MessageId"]
        r = self.chime("SendChannelMessage", ChannelArn=arn, Content="typing...",
                       Type="STANDARD", Persistence="NON_PERSISTENT", ClientRequestToken=token(),
                       ChimeBearer=BOB)
        self.assertTrue(r.get("MessageId"), "SendChannelMessage NON_PERSISTENT: MessageId")
        listed = [m["MessageId"] for m in self.list_all(arn, ALICE)[0]]
        self.assertEqual(listed, [kept], "ListChannelMessages: a NON_PERSISTENT message is "
                         "delivered, not stored (Chime), so it is not listed")

    def test_concurrent_sends(self):
        from concurrent.futures import ThreadPoolExecutor
        arn = self.new_channel(ALICE, members=[BOB])
        clients = [self.emu.client(ACCESS, SECRET) for _ in range(8)]

        def send(i):
            c = clients[i % len(clients)]
            return c.send_channel_message(
                ChannelArn=arn, Content=f"c{i}", Type="STANDARD", Persistence="PERSISTENT",
                ClientRequestToken=f"conc-{i}", ChimeBearer=BOB if i % 2 else ALICE)["MessageId"]

        def same_token(i):
            c = clients[i % len(clients)]
            return c.send_channel_message(
                ChannelArn=arn, Content="once", Type="STANDARD", Persistence="PERSISTENT",
                ClientRequestToken="conc-same", ChimeBearer=ALICE)["MessageId"]

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(send, range(160)))
            same = list(pool.map(same_token, range(16)))
        self.assertEqual(len(set(ids)), 160, "concurrent SendChannelMessage: MessageIds collide")
        self.assertEqual(len(set(same)), 1, "16 concurrent sends with one ClientRequestToken: "
                         f"{len(set(same))} different MessageIds")
        msgs, _ = self.list_all(arn, ALICE)
        got = [m["MessageId"] for m in msgs]
        self.assertEqual(sorted(got), sorted(ids + same[:1]),
                         "concurrent sends: every message exactly once, the token's once")
        stamps = [m["CreatedTimestamp"] for m in msgs]
        self.assertEqual(stamps, sorted(stamps), "concurrent sends: ascending listing order")
        self.assertEqual([m["MessageId"] for m in self.list_all(arn, BOB, "DESCENDING")[0]],
                         got[::-1], "concurrent sends: DESCENDING is the reverse")

    def test_list_channel_messages_default_order_is_descending(self):
        arn = self.new_channel(ALICE)
        ids = [self.send(arn, ALICE, f"m{i}")["MessageId"] for i in range(5)]
        r = self.chime("ListChannelMessages", ChannelArn=arn, ChimeBearer=ALICE)
        self.assertEqual([m["MessageId"] for m in r["ChannelMessages"]], ids[::-1],
                         "ListChannelMessages without SortOrder (Chime: descending)")
        self.assertNotIn("NextToken", r, "ListChannelMessages: NextToken on the last page")
        r = self.chime("ListChannelMessages", ChannelArn=arn, ChimeBearer=ALICE,
                       SortOrder="ASCENDING", MaxResults=2)
        self.assertEqual([m["MessageId"] for m in r["ChannelMessages"]], ids[:2],
                         "ListChannelMessages ASCENDING MaxResults=2")
        self.assertTrue(r.get("NextToken"), "ListChannelMessages: more pages, no NextToken")
        self.assertEqual(r.get("ChannelArn"), arn, "ListChannelMessages: ChannelArn")


class Validation(EmulatorTestCase):
    """Server-side validation, through a client that does not validate parameters itself."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = Chime(unittest.TestCase(), cls.emu.client(ACCESS, SECRET))
        cls.channel = c("CreateChannel", AppInstanceArn=APP, Name="validation",
                        Privacy="PRIVATE", ClientRequestToken=token(), ChimeBearer=ALICE,
                        MemberArns=[BOB])["ChannelArn"]
        cls.message = c("SendChannelMessage", ChannelArn=cls.channel, Content="hi",
                        Type="STANDARD", Persistence="PERSISTENT", ClientRequestToken=token(),
                        ChimeBearer=ALICE)["MessageId"]

    def bad(self, op, **params):
        return self.loose.error(op, "BadRequestException", 400, **params)

    def test_max_results(self):
        for n in (0, 51, -1):
            with self.subTest(MaxResults=n):
                self.bad("ListChannelMessages", ChannelArn=self.channel, ChimeBearer=ALICE,
                         MaxResults=n)
                self.bad("ListChannelMemberships", ChannelArn=self.channel, ChimeBearer=ALICE,
                         MaxResults=n)
                self.bad("ListChannelMembershipsForAppInstanceUser", AppInstanceUserArn=ALICE,
                         ChimeBearer=ALICE, MaxResults=n)
        self.loose("ListChannelMessages", ChannelArn=self.channel, ChimeBearer=ALICE,
                   MaxResults=50)
        self.loose("ListChannelMessages", ChannelArn=self.channel, ChimeBearer=ALICE,
                   MaxResults=1)

    def test_content_limits(self):
        common = dict(ChannelArn=self.channel, Persistence="PERSISTENT", ChimeBearer=ALICE)
        self.bad("SendChannelMessage", Content="x" * 4097, Type="STANDARD",
                 ClientRequestToken=token(), **common)
        self.bad("SendChannelMessage", Content="€" * 1366, Type="STANDARD",  # 4098 bytes
                 ClientRequestToken=token(), **common)
        self.bad("SendChannelMessage", Content="", Type="STANDARD", ClientRequestToken=token(),
                 **common)
        self.bad("SendChannelMessage", Content="c" * 31, Type="CONTROL",
                 ClientRequestToken=token(), **dict(common, Persistence="NON_PERSISTENT"))
        self.bad("SendChannelMessage", Content="m", Metadata="y" * 1025, Type="STANDARD",
                 ClientRequestToken=token(), **common)
        self.bad("UpdateChannelMessage", ChannelArn=self.channel, MessageId=self.message,
                 Content="x" * 4097, ChimeBearer=ALICE)
        self.bad("UpdateChannelMessage", ChannelArn=self.channel, MessageId=self.message,
                 Content="x", Metadata="y" * 1025, ChimeBearer=ALICE)
        self.bad("CreateChannel", AppInstanceArn=APP, Name="n", Metadata="y" * 1025,
                 ClientRequestToken=token(), ChimeBearer=ALICE)
        # Nothing of that was stored.
        msgs, _ = self.list_all(self.channel, ALICE)
        self.assertEqual([m["MessageId"] for m in msgs], [self.message],
                         "a refused SendChannelMessage stored a message")
        got = self.chime("GetChannelMessage", ChannelArn=self.channel, MessageId=self.message,
                         ChimeBearer=ALICE)["ChannelMessage"]
        self.assertEqual(got["Content"], "hi", "a refused UpdateChannelMessage changed content")

    def test_enums_and_tokens(self):
        common = dict(ChannelArn=self.channel, Content="c", ChimeBearer=ALICE)
        self.bad("SendChannelMessage", Type="SHOUTING", Persistence="PERSISTENT",
                 ClientRequestToken=token(), **common)
        self.bad("SendChannelMessage", Type="STANDARD", Persistence="FOREVER",
                 ClientRequestToken=token(), **common)
        self.bad("SendChannelMessage", Type="STANDARD", Persistence="PERSISTENT",
                 ClientRequestToken="x", **common)  # min 2
        self.bad("SendChannelMessage", Type="STANDARD", Persistence="PERSISTENT",
                 ClientRequestToken="bad token!", **common)
        self.bad("SendChannelMessage", Type="STANDARD", Persistence="PERSISTENT",
                 ClientRequestToken="t" * 65, **common)
        self.bad("ListChannelMessages", ChannelArn=self.channel, ChimeBearer=ALICE,
                 SortOrder="SIDEWAYS")
        self.bad("CreateChannel", AppInstanceArn=APP, Name="n", Mode="OPEN",
                 ClientRequestToken=token(), ChimeBearer=ALICE)
        self.bad("CreateChannelMembership", ChannelArn=self.channel, MemberArn=CAROL,
                 Type="VIP", ChimeBearer=ALICE)

    def test_missing_required_fields(self):
        self.bad("SendChannelMessage", ChannelArn=self.channel, Type="STANDARD",
                 Persistence="PERSISTENT", ClientRequestToken=token(), ChimeBearer=ALICE)
        self.bad("SendChannelMessage", ChannelArn=self.channel, Content="c",
                 Persistence="PERSISTENT", ClientRequestToken=token(), ChimeBearer=ALICE)
        self.bad("SendChannelMessage", ChannelArn=self.channel, Content="c", Type="STANDARD",
                 ClientRequestToken=token(), ChimeBearer=ALICE)
        self.bad("SendChannelMessage", ChannelArn=self.channel, Content="c", Type="STANDARD",
                 Persistence="PERSISTENT", ClientRequestToken=token())  # no bearer
        self.bad("CreateChannel", AppInstanceArn=APP, ClientRequestToken=token(),
                 ChimeBearer=ALICE)  # no Name
        self.bad("CreateChannel", Name="n", ClientRequestToken=token(), ChimeBearer=ALICE)
        self.bad("CreateChannelMembership", ChannelArn=self.channel, Type="DEFAULT",
                 ChimeBearer=ALICE)  # no MemberArn
        self.bad("CreateChannelMembership", ChannelArn=self.channel, MemberArn=CAROL,
                 ChimeBearer=ALICE)  # no Type
        self.bad("UpdateChannelMessage", ChannelArn=self.channel, MessageId=self.message,
                 ChimeBearer=ALICE)  # no Content
        self.bad("DescribeChannelMembershipForAppInstanceUser", ChannelArn=self.channel,
                 ChimeBearer=ALICE)  # no AppInstanceUserArn
        # ClientRequestToken is filled in by boto3 when missing, so: by hand.
        path = "/channels/" + urllib.parse.quote(self.channel, safe="") + "/messages"
        body = json.dumps({"Content": "c", "Type": "STANDARD",
                           "Persistence": "PERSISTENT"}).encode()
        status, headers, resp = self.emu.raw("POST", path, body=body, creds=(ACCESS, SECRET),
                                             headers={"x-amz-chime-bearer": ALICE})
        self.assertEqual((status, headers.get("x-amzn-errortype", "").split(":")[0]),
                         (400, "BadRequestException"),
                         f"SendChannelMessage without ClientRequestToken: {resp[:200]!r}")
        status, headers, resp = self.emu.raw("POST", path, body=b"{not json",
                                             creds=(ACCESS, SECRET),
                                             headers={"x-amz-chime-bearer": ALICE})
        self.assertEqual(status, 400, f"SendChannelMessage with a malformed body: {resp[:200]!r}")

    def test_malformed_arns(self):
        self.bad("DescribeChannel", ChannelArn="not-an-arn", ChimeBearer=ALICE)
        self.bad("ListChannelMessages", ChannelArn="arn:aws:chime", ChimeBearer=ALICE)
        self.bad("DescribeChannel", ChannelArn=self.channel, ChimeBearer="alice")
        self.bad("SendChannelMessage", ChannelArn=self.channel, Content="c", Type="STANDARD",
                 Persistence="PERSISTENT", ClientRequestToken=token(), ChimeBearer="bob")
        self.bad("CreateChannelMembership", ChannelArn=self.channel, MemberArn="carol",
                 Type="DEFAULT", ChimeBearer=ALICE)
        self.bad("CreateChannel", AppInstanceArn="app", Name="n", ClientRequestToken=token(),
                 ChimeBearer=ALICE)
        self.bad("ListChannelMembershipsForAppInstanceUser", AppInstanceUserArn="nobody",
                 ChimeBearer=ALICE)

    def test_bad_next_token(self):
        for tok in ("garbage", "AAAA", "x" * 200):
            with self.subTest(NextToken=tok):
                self.bad("ListChannelMessages", ChannelArn=self.channel, ChimeBearer=ALICE,
                         NextToken=tok)
        # A real token, but of another channel's listing.
        other = self.new_channel(ALICE)
        for i in range(3):
            self.send(other, ALICE, f"o{i}")
        foreign = self.chime("ListChannelMessages", ChannelArn=other, ChimeBearer=ALICE,
                             MaxResults=1)["NextToken"]
        self.chime("ListChannelMessages", ChannelArn=other, ChimeBearer=ALICE, MaxResults=1,
                   NextToken=foreign)
        self.bad("ListChannelMessages", ChannelArn=self.channel, ChimeBearer=ALICE,
                 NextToken=foreign)
        self.bad("ListChannelMemberships", ChannelArn=self.channel, ChimeBearer=ALICE,
                 NextToken="garbage")
        self.bad("ListChannelMembershipsForAppInstanceUser", AppInstanceUserArn=ALICE,
                 ChimeBearer=ALICE, NextToken="garbage")

    def test_unknown_channel(self):
        ghost = f"{APP}/channel/no-such-channel-{uuid.uuid4().hex[:8]}"
        nf = ("NotFoundException", 404)
        self.chime.error("DescribeChannel", *nf, ChannelArn=ghost, ChimeBearer=ALICE)
        self.chime.error("ListChannelMessages", *nf, ChannelArn=ghost, ChimeBearer=ALICE)
        self.chime.error("SendChannelMessage", *nf, ChannelArn=ghost, Content="c",
                         Type="STANDARD", Persistence="PERSISTENT", ClientRequestToken=token(),
                         ChimeBearer=ALICE)
        self.chime.error("GetChannelMessage", *nf, ChannelArn=ghost, MessageId=self.message,
                         ChimeBearer=ALICE)
        self.chime.error("CreateChannelMembership", *nf, ChannelArn=ghost, MemberArn=BOB,
                         Type="DEFAULT", ChimeBearer=ALICE)
        self.chime.error("ListChannelMemberships", *nf, ChannelArn=ghost, ChimeBearer=ALICE)

    def test_unknown_message(self):
        ghost = "no-such-message-" + uuid.uuid4().hex[:8]
        nf = ("NotFoundException", 404)
        self.chime.error("GetChannelMessage", *nf, ChannelArn=self.channel, MessageId=ghost,
                         ChimeBearer=ALICE)
        self.chime.error("UpdateChannelMessage", *nf, ChannelArn=self.channel, MessageId=ghost,
                         Content="c", ChimeBearer=ALICE)
        self.chime.error("RedactChannelMessage", *nf, ChannelArn=self.channel, MessageId=ghost,
                         ChimeBearer=ALICE)

    def test_non_member_bearer(self):
        fb = ("ForbiddenException", 403)
        self.chime.error("ListChannelMessages", *fb, ChannelArn=self.channel, ChimeBearer=CAROL)
        self.chime.error("DescribeChannel", *fb, ChannelArn=self.channel, ChimeBearer=CAROL)
        self.chime.error("SendChannelMessage", *fb, ChannelArn=self.channel, Content="c",
                         Type="STANDARD", Persistence="PERSISTENT", ClientRequestToken=token(),
                         ChimeBearer=CAROL)
        self.chime.error("GetChannelMessage", *fb, ChannelArn=self.channel,
                         MessageId=self.message, ChimeBearer=CAROL)
        self.chime.error("UpdateChannelMessage", *fb, ChannelArn=self.channel,
                         MessageId=self.message, Content="hijack", ChimeBearer=CAROL)
        self.chime.error("RedactChannelMessage", *fb, ChannelArn=self.channel,
                         MessageId=self.message, ChimeBearer=CAROL)
        self.chime.error("DeleteChannelMessage", *fb, ChannelArn=self.channel,
                         MessageId=self.message, ChimeBearer=CAROL)
        self.chime.error("ListChannelMemberships", *fb, ChannelArn=self.channel,
                         ChimeBearer=CAROL)
        self.chime.error("CreateChannelMembership", *fb, ChannelArn=self.channel,
                         MemberArn=CAROL, Type="DEFAULT", ChimeBearer=CAROL)
        got = self.chime("GetChannelMessage", ChannelArn=self.channel, MessageId=self.message,
                         ChimeBearer=BOB)["ChannelMessage"]
        self.assertEqual((got["Content"], got.get("Redacted")), ("hi", False),
                         "a refused call by a non-member changed the message")


class Auth(EmulatorTestCase):
    """SigV4: the emulator checks the signature, not only the access key."""

    def test_valid_signature(self):
        self.new_channel(ALICE)

    def test_wrong_secret(self):
        bad = Chime(self, self.emu.client(ACCESS, SECRET + "x"))
        bad.error("ListChannelMembershipsForAppInstanceUser", "InvalidSignatureException", 403,
                  AppInstanceUserArn=ALICE, ChimeBearer=ALICE)
        bad.error("CreateChannel", "InvalidSignatureException", 403, AppInstanceArn=APP, Name="n",
                  ClientRequestToken=token(), ChimeBearer=ALICE)

    def test_unknown_access_key(self):
        # The emulator was started with --access-key ACCESS: the default key is unknown here.
        for access, secret in (("AKIDUNKNOWN", SECRET), (DEFAULT_ACCESS, DEFAULT_SECRET)):
            with self.subTest(access=access):
                bad = Chime(self, self.emu.client(access, secret))
                bad.error("CreateChannel", "UnrecognizedClientException", 403,
                          AppInstanceArn=APP, Name="n", ClientRequestToken=token(),
                          ChimeBearer=ALICE)

    def test_unsigned(self):
        bad = Chime(self, self.emu.client(ACCESS, SECRET, signature_version=UNSIGNED))
        bad.error("ListChannelMembershipsForAppInstanceUser",
                  "MissingAuthenticationTokenException", 403,
                  AppInstanceUserArn=ALICE, ChimeBearer=ALICE)
        status, headers, body = self.emu.raw("GET", "/channels",
                                             query="scope=app-instance-user-memberships",
                                             headers={"x-amz-chime-bearer": ALICE}, sign=False)
        self.assertEqual(status, 403, "no Authorization header")
        self.assertTrue(headers.get("x-amzn-errortype", "").startswith(
            "MissingAuthenticationTokenException"), f"x-amzn-ErrorType: {headers}")
        err = json.loads(body)
        self.assertEqual(err.get("Code"), "MissingAuthenticationTokenException",
                         f"error body {err}")
        self.assertTrue(err.get("Message"), f"error body without Message: {err}")

    def test_tampered_body(self):
        arn = self.new_channel(ALICE)
        path = "/channels/" + urllib.parse.quote(arn, safe="") + "/messages"
        signed = json.dumps({"Content": "pay 10", "Type": "STANDARD", "Persistence": "PERSISTENT",
                             "ClientRequestToken": token()}).encode()
        sent = signed.replace(b"pay 10", b"pay 99")
        status, headers, body = self.emu.raw("POST", path, body=signed, send_body=sent,
                                             creds=(ACCESS, SECRET),
                                             headers={"x-amz-chime-bearer": ALICE})
        self.assertEqual((status, headers.get("x-amzn-errortype", "").split(":")[0]),
                         (403, "InvalidSignatureException"),
                         f"a body changed after signing must be refused: {body[:200]!r}")
        self.assertEqual(self.list_all(arn, ALICE)[0], [], "the tampered message was stored")
        # The same request untampered works (so the refusal above was the signature).
        status, _, body = self.emu.raw("POST", path, body=signed, creds=(ACCESS, SECRET),
                                       headers={"x-amz-chime-bearer": ALICE})
        self.assertEqual(status, 201, f"hand-signed SendChannelMessage: {body[:200]!r}")

    def test_tampered_bearer(self):
        arn = self.new_channel(ALICE)
        path = "/channels/" + urllib.parse.quote(arn, safe="") + "/messages"
        req = AWSRequest(method="GET", url=self.emu.endpoint + path,
                         headers={"x-amz-chime-bearer": CAROL})
        SigV4Auth(Credentials(ACCESS, SECRET), "chime", REGION).add_auth(req)
        headers = dict(req.headers.items())
        headers["x-amz-chime-bearer"] = ALICE  # signed as carol, sent as alice
        out = urllib.request.Request(self.emu.endpoint + path, method="GET", headers=headers)
        try:
            with urllib.request.urlopen(out, timeout=10) as resp:
                status = resp.status
        except urllib.error.HTTPError as e:
            status = e.code
        self.assertEqual(status, 403, "a signed header changed after signing must be refused")

    def test_wrong_region(self):
        # The credential scope names eu-west-1; the emulator is us-east-1.
        c = boto3.client("chime-sdk-messaging", endpoint_url=self.emu.endpoint,
                         region_name="eu-west-1", aws_access_key_id=ACCESS,
                         aws_secret_access_key=SECRET,
                         config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
        self.emu.clients.append(c)
        Chime(self, c).error("ListChannelMembershipsForAppInstanceUser",
                             "InvalidSignatureException", 403, AppInstanceUserArn=ALICE,
                             ChimeBearer=ALICE)

    def test_stale_signature(self):
        # SigV4 requests are valid for 15 minutes (AWS refuses older x-amz-date).
        import botocore.auth
        real = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda: real() - datetime.timedelta(hours=1)
        try:
            status, headers, body = self.emu.raw(
                "GET", "/channels", query="scope=app-instance-user-memberships",
                headers={"x-amz-chime-bearer": ALICE}, creds=(ACCESS, SECRET))
        finally:
            botocore.auth.get_current_datetime = real
        self.assertEqual((status, headers.get("x-amzn-errortype", "").split(":")[0]),
                         (403, "InvalidSignatureException"),
                         f"a request signed an hour ago must be refused: {body[:200]!r}")

    def test_admin_needs_no_signature(self):
        status, body = self.emu.admin("GET", "/_emulator/healthz")
        self.assertEqual((status, body.strip()), (200, b"ok"), "GET /_emulator/healthz")


class Paging(EmulatorTestCase):
    """NextToken paging over hundreds of messages, and NotBefore/NotAfter windows."""
    N = 320

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = Chime(unittest.TestCase(), cls.emu.client(ACCESS, SECRET))
        cls.channel = c("CreateChannel", AppInstanceArn=APP, Name="paging",
                        ClientRequestToken=token(), ChimeBearer=ALICE,
                        MemberArns=[BOB])["ChannelArn"]
        cls.ids = []
        t0 = time.monotonic()
        for i in range(cls.N):
            r = c("SendChannelMessage", ChannelArn=cls.channel, Content=f"message {i}",
                  Type="STANDARD", Persistence="PERSISTENT", ClientRequestToken=f"page-{i}",
                  ChimeBearer=ALICE if i % 3 else BOB)
            cls.ids.append(r["MessageId"])
            if i in (99, 199, 299):
                time.sleep(0.04)  # gaps the NotBefore/NotAfter windows can fall into
        cls.send_seconds = time.monotonic() - t0
        cls.asc, cls.asc_pages = None, None

    def ascending(self):
        if self.asc is None:
            type(self).asc, type(self).asc_pages = self.list_all(self.channel, BOB)
        return self.asc

    def test_all_pages_ascending(self):
        msgs = self.ascending()
        got = [m["MessageId"] for m in msgs]
        self.assertEqual(len(got), len(set(got)), "ListChannelMessages ASCENDING: duplicates")
        self.assertEqual(got, self.ids, "ListChannelMessages ASCENDING: every message exactly "
                         "once, in the order they were sent")
        self.assertEqual([m["Content"] for m in msgs], [f"message {i}" for i in range(self.N)])
        stamps = [m["CreatedTimestamp"] for m in msgs]
        self.assertEqual(stamps, sorted(stamps), "ASCENDING: CreatedTimestamp not ascending")
        self.assertEqual(self.asc_pages, [50] * 6 + [20], "ASCENDING page sizes (MaxResults 50)")
        senders = [m["Sender"]["Arn"] for m in msgs]
        self.assertEqual(senders, [ALICE if i % 3 else BOB for i in range(self.N)], "Sender")

    def test_all_pages_descending(self):
        msgs, pages = self.list_all(self.channel, ALICE, order="DESCENDING")
        got = [m["MessageId"] for m in msgs]
        self.assertEqual(got, self.ids[::-1], "ListChannelMessages DESCENDING: every message "
                         "exactly once, newest first")
        self.assertEqual(pages, [50] * 6 + [20], "DESCENDING page sizes (MaxResults 50)")

    def test_small_pages(self):
        msgs, pages = self.list_all(self.channel, ALICE, page=7)
        self.assertEqual([m["MessageId"] for m in msgs], self.ids, "MaxResults 7 pages")
        self.assertEqual(len(pages), -(-self.N // 7), "number of MaxResults=7 pages")

    def window(self, order="ASCENDING", **bounds):
        msgs, _ = self.list_all(self.channel, ALICE, order=order, **bounds)
        return [m["MessageId"] for m in msgs]

    def test_time_windows(self):
        t = [ms_round(m["CreatedTimestamp"]) for m in self.ascending()]
        ms = datetime.timedelta(milliseconds=1)
        ids = self.ids
        self.assertGreater(t[100] - t[99], 20 * ms, "the test's gap between bursts")
        cases = [
            ("NotBefore/NotAfter between the gaps", dict(NotBefore=t[100] - 15 * ms,
                                                        NotAfter=t[199] + 15 * ms), ids[100:200]),
            ("NotBefore only", dict(NotBefore=t[200] - 15 * ms), ids[200:]),
            ("NotAfter only", dict(NotAfter=t[99] + 15 * ms), ids[:100]),
            ("bounds on message timestamps (inclusive)",
             dict(NotBefore=t[100], NotAfter=t[199]), ids[100:200]),
            ("whole-second bounds around everything",
             dict(NotBefore=datetime.datetime(2001, 1, 1, tzinfo=UTC),
                  NotAfter=datetime.datetime(2099, 1, 1, tzinfo=UTC)), ids),
            ("an empty window", dict(NotBefore=t[99] + 5 * ms, NotAfter=t[100] - 5 * ms), []),
            ("a window in the future", dict(NotBefore=datetime.datetime(2099, 1, 1,
                                                                        tzinfo=UTC)), []),
        ]
        for name, bounds, want in cases:
            with self.subTest(window=name):
                self.assertEqual(self.window(**bounds), want,
                                 f"ListChannelMessages ASCENDING, {name}")
                self.assertEqual(self.window(order="DESCENDING", **bounds), want[::-1],
                                 f"ListChannelMessages DESCENDING, {name}")

    def test_next_token_survives_deletions(self):
        for order in ("ASCENDING", "DESCENDING"):
            arn = self.new_channel(ALICE)
            ids = [self.send(arn, ALICE, f"d{i}")["MessageId"] for i in range(120)]
            want = ids if order == "ASCENDING" else ids[::-1]
            r = self.chime("ListChannelMessages", ChannelArn=arn, ChimeBearer=ALICE,
                           SortOrder=order, MaxResults=50)
            self.assertEqual([m["MessageId"] for m in r["ChannelMessages"]], want[:50],
                             f"ListChannelMessages {order} first page")
            # Delete the last message of this page and the first of the next one.
            for gone in (want[49], want[50]):
                self.chime("DeleteChannelMessage", ChannelArn=arn, MessageId=gone,
                           ChimeBearer=ALICE)
            rest, _ = self.list_all(arn, ALICE, order=order, start=r["NextToken"])
            self.assertEqual([m["MessageId"] for m in rest], want[51:],
                             f"ListChannelMessages {order}: a NextToken taken before deletions "
                             "resumes right after its page (nothing skipped, nothing repeated)")

    def test_zz_next_token_survives_new_messages(self):
        # zz: runs last in this class, it adds messages to the channel.
        self.ascending()
        r = self.chime("ListChannelMessages", ChannelArn=self.channel, ChimeBearer=ALICE,
                       SortOrder="ASCENDING", MaxResults=50)
        asc = [m["MessageId"] for m in r["ChannelMessages"]]
        asc_token = r["NextToken"]
        r = self.chime("ListChannelMessages", ChannelArn=self.channel, ChimeBearer=ALICE,
                       SortOrder="DESCENDING", MaxResults=50)
        desc = [m["MessageId"] for m in r["ChannelMessages"]]
        desc_token = r["NextToken"]
        new = [self.send(self.channel, BOB, f"late {i}")["MessageId"] for i in range(12)]

        rest, _ = self.list_all(self.channel, ALICE, start=asc_token)
        asc += [m["MessageId"] for m in rest]
        self.assertEqual(len(asc), len(set(asc)),
                         "ASCENDING paging with new messages between pages: duplicates")
        self.assertEqual(asc[:self.N], self.ids,
                         "ASCENDING paging with new messages between pages: the old messages, "
                         "each once, in order")
        self.assertEqual(asc[self.N:], new[:len(asc) - self.N],
                         "ASCENDING paging: after the old messages only new ones, in order")

        rest, _ = self.list_all(self.channel, ALICE, order="DESCENDING", start=desc_token)
        desc += [m["MessageId"] for m in rest]
        self.assertEqual(desc, self.ids[::-1],
                         "DESCENDING paging with new messages between pages: every old message "
                         "exactly once (the new ones are before the first page)")


class Persistence(unittest.TestCase):
    """--data-dir: everything acknowledged survives a SIGTERM and restart."""

    def test_restart_keeps_everything(self):
        data = tempfile.TemporaryDirectory(prefix="chime-conformance-")
        self.addCleanup(data.cleanup)
        emu = Emulator("--data-dir", data.name).start()
        self.addCleanup(emu.stop, check=False)
        chime = Chime(self, emu.client())
        ctok = token()
        create = dict(AppInstanceArn=APP, Name="durable", Metadata="dm", ClientRequestToken=ctok,
                      ChimeBearer=ALICE)
        arn = chime("CreateChannel", **create)["ChannelArn"]
        chime("CreateChannelMembership", ChannelArn=arn, MemberArn=BOB, Type="DEFAULT",
              ChimeBearer=ALICE)
        sends = {}
        for i in range(25):
            tok = f"durable-{i}"
            sends[tok] = chime("SendChannelMessage", ChannelArn=arn, Content=f"d{i}",
                               Metadata=f"md{i}", Type="STANDARD", Persistence="PERSISTENT",
                               ClientRequestToken=tok, ChimeBearer=BOB if i % 2 else ALICE)[
                                   "MessageId"]
        ids = list(sends.values())
        chime("UpdateChannelMessage", ChannelArn=arn, MessageId=ids[3], Content="edited",
              ChimeBearer=BOB)
        chime("RedactChannelMessage", ChannelArn=arn, MessageId=ids[4], ChimeBearer=ALICE)
        chime("DeleteChannelMessage", ChannelArn=arn, MessageId=ids[5], ChimeBearer=ALICE)
        chime("UpdateChannelReadMarker", ChannelArn=arn, ChimeBearer=BOB)

        def snapshot(c):
            msgs, kwargs = [], {}
            while True:
                r = c("ListChannelMessages", ChannelArn=arn, ChimeBearer=ALICE,
                      SortOrder="ASCENDING", MaxResults=10, **kwargs)
                msgs += [{k: v for k, v in m.items()} for m in r["ChannelMessages"]]
                if not r.get("NextToken"):
                    break
                kwargs = {"NextToken": r["NextToken"]}
            channel = c("DescribeChannel", ChannelArn=arn, ChimeBearer=ALICE)["Channel"]
            members = sorted(m["Member"]["Arn"] for m in c(
                "ListChannelMemberships", ChannelArn=arn, ChimeBearer=ALICE)["ChannelMemberships"])
            marker = c("DescribeChannelMembershipForAppInstanceUser", ChannelArn=arn,
                       AppInstanceUserArn=BOB, ChimeBearer=BOB)["ChannelMembership"]
            mine = sorted(m["ChannelSummary"]["ChannelArn"] for m in c(
                "ListChannelMembershipsForAppInstanceUser", AppInstanceUserArn=BOB,
                ChimeBearer=BOB)["ChannelMemberships"])
            return msgs, channel, members, marker, mine

        before = snapshot(chime)
        self.assertEqual(len(before[0]), 24, "25 sent, 1 deleted")
        self.assertEqual(emu.stop(), 0, "SIGTERM: exit status")

        emu2 = Emulator("--data-dir", data.name).start()
        self.addCleanup(emu2.stop, check=False)
        chime2 = Chime(self, emu2.client())
        after = snapshot(chime2)
        for name, b, a in zip(("messages", "DescribeChannel", "memberships",
                               "read marker", "channels of the user"), before, after):
            self.assertEqual(a, b, f"after a restart with the same --data-dir: {name} differ")
        # Tokens still idempotent.
        self.assertEqual(chime2("CreateChannel", **create)["ChannelArn"], arn,
                         "CreateChannel with the same token after a restart")
        for i in (0, 24):
            tok = f"durable-{i}"
            again = chime2("SendChannelMessage", ChannelArn=arn, Content=f"d{i}",
                           Metadata=f"md{i}", Type="STANDARD", Persistence="PERSISTENT",
                           ClientRequestToken=tok, ChimeBearer=BOB if i % 2 else ALICE)
            self.assertEqual(again["MessageId"], sends[tok],
                             f"SendChannelMessage {tok} again after a restart: new MessageId")
        # New messages after a restart: new ids, after the old ones.
        fresh = chime2("SendChannelMessage", ChannelArn=arn, Content="after restart",
                       Type="STANDARD", Persistence="PERSISTENT", ClientRequestToken=token(),
                       ChimeBearer=ALICE)["MessageId"]
        self.assertNotIn(fresh, ids, "a MessageId was reused after a restart")
        final = snapshot(chime2)[0]
        self.assertEqual([m["MessageId"] for m in final],
                         [m["MessageId"] for m in before[0]] + [fresh],
                         "messages after a restart: the old ones once, then the new one")
        self.assertEqual(emu2.stop(), 0, "SIGTERM: exit status")


    def test_sigkill_keeps_every_acknowledged_mutation(self):
        # "every acknowledged mutation durable before the response": kill -9, no goodbye.
        data = tempfile.TemporaryDirectory(prefix="chime-conformance-kill-")
        self.addCleanup(data.cleanup)
        emu = Emulator("--data-dir", data.name).start()
        self.addCleanup(emu.stop, check=False)
        chime = Chime(self, emu.client())
        arn = chime("CreateChannel", AppInstanceArn=APP, Name="killed",
                    ClientRequestToken="kill-channel", ChimeBearer=ALICE,
                    MemberArns=[BOB])["ChannelArn"]
        ids = [chime("SendChannelMessage", ChannelArn=arn, Content=f"k{i}", Type="STANDARD",
                     Persistence="PERSISTENT", ClientRequestToken=f"kill-{i}",
                     ChimeBearer=ALICE)["MessageId"] for i in range(40)]
        chime("RedactChannelMessage", ChannelArn=arn, MessageId=ids[7], ChimeBearer=ALICE)
        chime("DeleteChannelMembership", ChannelArn=arn, MemberArn=BOB, ChimeBearer=ALICE)
        emu.proc.kill()
        emu.proc.wait()
        emu.stop(check=False)

        emu2 = Emulator("--data-dir", data.name).start()
        self.addCleanup(emu2.stop, check=False)
        chime2 = Chime(self, emu2.client())
        r = chime2("ListChannelMessages", ChannelArn=arn, ChimeBearer=ALICE,
                   SortOrder="ASCENDING", MaxResults=50)
        self.assertEqual([m["MessageId"] for m in r["ChannelMessages"]], ids,
                         "after kill -9 and a restart: every acknowledged message")
        self.assertIs(r["ChannelMessages"][7].get("Redacted"), True,
                      "after kill -9: the acknowledged redaction")
        chime2.error("ListChannelMessages", "ForbiddenException", 403, ChannelArn=arn,
                     ChimeBearer=BOB)
        self.assertEqual(chime2("SendChannelMessage", ChannelArn=arn, Content="k39",
                                Type="STANDARD", Persistence="PERSISTENT",
                                ClientRequestToken="kill-39", ChimeBearer=ALICE)["MessageId"],
                         ids[39], "after kill -9: the last token is still idempotent")


class Faults(unittest.TestCase):
    """POST /_emulator/faults and the fault flags."""

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator().start()  # default credentials
        cls.addClassCleanup(cls.emu.stop)

    def setUp(self):
        self.chime = Chime(self, self.emu.client())
        self.addCleanup(self.emu.set_faults, {})
        self.channel = self.chime("CreateChannel", AppInstanceArn=APP, Name="faults",
                                  ClientRequestToken=token(), ChimeBearer=ALICE)["ChannelArn"]

    def send(self, tok):
        return self.chime.client.send_channel_message(
            ChannelArn=self.channel, Content=tok, Type="STANDARD", Persistence="PERSISTENT",
            ClientRequestToken=tok, ChimeBearer=ALICE)

    def listed(self):
        r = self.chime("ListChannelMessages", ChannelArn=self.channel, ChimeBearer=ALICE,
                       SortOrder="ASCENDING", MaxResults=50)
        return [(m["MessageId"], m["Content"]) for m in r["ChannelMessages"]]

    def test_throttle_error_reset(self):
        self.emu.set_faults({"throttle": 1.0})
        for i in range(3):
            self.chime.error("SendChannelMessage", "ThrottledClientException", 429,
                             ChannelArn=self.channel, Content="t", Type="STANDARD",
                             Persistence="PERSISTENT", ClientRequestToken=f"throttled-{i}",
                             ChimeBearer=ALICE)
        self.chime.error("ListChannelMessages", "ThrottledClientException", 429,
                         ChannelArn=self.channel, ChimeBearer=ALICE)
        self.emu.set_faults({"error": 1.0})
        for i in range(4):
            try:
                self.send(f"failed-{i}")
                self.fail("SendChannelMessage with error=1.0 succeeded")
            except ClientError as e:
                code = e.response["Error"]["Code"]
                status = e.response["ResponseMetadata"]["HTTPStatusCode"]
                self.assertIn((code, status), [("ServiceFailureException", 500),
                                               ("ServiceUnavailableException", 503)],
                              "SendChannelMessage with error=1.0")
        self.emu.set_faults({})
        self.assertEqual(self.listed(), [], "throttled/failed requests must not be applied")
        mid = self.send("works-again")["MessageId"]
        self.assertEqual(self.listed(), [(mid, "works-again")], "after faults reset to {}")

    def test_commit_then_fail_then_retry(self):
        self.emu.set_faults({"commit_then_fail": 1.0})
        try:
            self.send("ctf-1")
            self.fail("SendChannelMessage with commit_then_fail=1.0 succeeded")
        except ClientError as e:
            self.assertEqual(e.response["ResponseMetadata"]["HTTPStatusCode"], 500,
                             "commit_then_fail: status")
        self.emu.set_faults({})
        stored = self.listed()
        self.assertEqual([c for _, c in stored], ["ctf-1"],
                         "commit_then_fail: the request is applied")
        again = self.send("ctf-1")["MessageId"]
        self.assertEqual(again, stored[0][0], "retry after commit_then_fail: same MessageId")
        self.assertEqual(self.listed(), stored, "retry after commit_then_fail: no duplicate")

    def test_mixed_faults_with_retries(self):
        # A client retrying with the same token ends with every message exactly once
        # (retried here at once; boto3's own backoff would only make the test slow).
        self.emu.set_faults({"throttle": 0.2, "error": 0.2, "commit_then_fail": 0.2,
                             "seed": 42})
        retrying = self.emu.client()
        ids, failures = {}, 0
        for i in range(80):
            tok = f"mixed-{i}"
            for _ in range(20):
                try:
                    ids[tok] = retrying.send_channel_message(
                        ChannelArn=self.channel, Content=tok, Type="STANDARD",
                        Persistence="PERSISTENT", ClientRequestToken=tok,
                        ChimeBearer=ALICE)["MessageId"]
                    break
                except ClientError as e:
                    failures += 1
                    self.assertIn(e.response["ResponseMetadata"]["HTTPStatusCode"],
                                  (429, 500, 503), f"SendChannelMessage {tok} under faults")
            else:
                self.fail(f"SendChannelMessage {tok}: 20 attempts failed")
        self.emu.set_faults({})
        self.assertGreater(failures, 0, "the faults never showed (seed 42, 20% each)")
        listed, kwargs = [], {}
        while True:
            r = self.chime("ListChannelMessages", ChannelArn=self.channel, ChimeBearer=ALICE,
                           SortOrder="ASCENDING", MaxResults=50, **kwargs)
            listed += [(m["MessageId"], m["Content"]) for m in r["ChannelMessages"]]
            if not r.get("NextToken"):
                break
            kwargs = {"NextToken": r["NextToken"]}
        self.assertEqual(listed, [(ids[f"mixed-{i}"], f"mixed-{i}") for i in range(80)],
                         "under throttle/error/commit_then_fail with retries: every message "
                         "exactly once, in order, with the MessageId its sender was given")

    def test_latency(self):
        self.emu.set_faults({"latency_ms": 500})
        t0 = time.monotonic()
        self.listed()
        self.assertGreaterEqual(time.monotonic() - t0, 0.49, "latency_ms 500")
        self.emu.set_faults({})
        t0 = time.monotonic()
        self.listed()
        self.assertLess(time.monotonic() - t0, 0.45, "latency after reset to {}")

    def test_throttle_flag(self):
        emu = Emulator("--throttle-rate", "1.0").start()
        self.addCleanup(emu.stop)
        Chime(self, emu.client()).error(
            "ListChannelMembershipsForAppInstanceUser", "ThrottledClientException", 429,
            AppInstanceUserArn=ALICE, ChimeBearer=ALICE)


    def test_error_rate_flag(self):
        emu = Emulator("--error-rate", "1.0", "--seed", "7").start()
        self.addCleanup(emu.stop)
        try:
            emu.client().list_channel_memberships_for_app_instance_user(
                AppInstanceUserArn=ALICE, ChimeBearer=ALICE)
            self.fail("--error-rate 1.0: the call succeeded")
        except ClientError as e:
            got = (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
            self.assertIn(got, [("ServiceFailureException", 500),
                                ("ServiceUnavailableException", 503)], "--error-rate 1.0")


class Connections(unittest.TestCase):
    def test_many_idle_keep_alive_connections(self):
        # 40 clients (devices, test helpers) each keep a connection open: the next request
        # must not wait for one of them to time out.
        emu = Emulator().start()
        self.addCleanup(emu.stop)
        slow = []
        for n in range(40):
            c = emu.client()
            t0 = time.monotonic()
            c.list_channel_memberships_for_app_instance_user(AppInstanceUserArn=ALICE,
                                                             ChimeBearer=ALICE)
            took = time.monotonic() - t0
            if took > 1.0:
                slow.append(f"client {n + 1}: {took:.1f} s")
        self.assertEqual(slow, [], "a request waited while other clients held idle "
                         "keep-alive connections")


class CommandLine(unittest.TestCase):
    def test_bad_flags_exit_2(self):
        for args in (["--no-such-flag"], ["--port", "not-a-port"]):
            with self.subTest(args=args):
                p = subprocess.run([BINARY] + args, capture_output=True, timeout=20)
                self.assertEqual(p.returncode, 2, f"{args}: exit status (contract: 2)")
                self.assertTrue(p.stderr.strip(), f"{args}: no message on stderr")

    def test_sigint_exits_0(self):
        emu = Emulator().start()
        self.addCleanup(emu.stop, check=False)
        emu.client().list_channel_memberships_for_app_instance_user(
            AppInstanceUserArn=ALICE, ChimeBearer=ALICE)
        emu.close_clients()
        emu.proc.send_signal(signal.SIGINT)
        try:
            rc = emu.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("SIGINT: still running after 10 s")
        self.assertEqual(rc, 0, f"SIGINT: exit status; stderr: {emu.stderr_tail()}")

    def test_unusable_data_dir(self):
        with tempfile.NamedTemporaryFile() as f:  # a file where a directory should be
            p = subprocess.run([BINARY, "--port", "0", "--data-dir", f.name + "/sub"],
                               capture_output=True, timeout=20)
        self.assertNotEqual(p.returncode, 0, "--data-dir that cannot be created: exit status")
        self.assertNotIn(b"listening on", p.stdout, "--data-dir unusable, yet listening")
        self.assertIn(f.name.encode(), p.stderr, "the error names the data directory")

    def test_region_flag(self):
        emu = Emulator("--region", "eu-west-1").start()
        self.addCleanup(emu.stop)
        c = boto3.client("chime-sdk-messaging", endpoint_url=emu.endpoint,
                         region_name="eu-west-1", aws_access_key_id=DEFAULT_ACCESS,
                         aws_secret_access_key=DEFAULT_SECRET,
                         config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
        emu.clients.append(c)
        Chime(self, c)("ListChannelMembershipsForAppInstanceUser", AppInstanceUserArn=ALICE,
                       ChimeBearer=ALICE)
        Chime(self, emu.client()).error(  # signed for us-east-1
            "ListChannelMembershipsForAppInstanceUser", "InvalidSignatureException", 403,
            AppInstanceUserArn=ALICE, ChimeBearer=ALICE)

    def test_env_credentials(self):
        emu = Emulator(env_overrides={"TIDINGS_CHIME_LOCAL_ACCESS_KEY": "AKIDFROMENV",
                                      "TIDINGS_CHIME_LOCAL_SECRET_KEY": "env-secret"}).start()
        self.addCleanup(emu.stop)
        Chime(self, emu.client("AKIDFROMENV", "env-secret"))(
            "ListChannelMembershipsForAppInstanceUser", AppInstanceUserArn=ALICE,
            ChimeBearer=ALICE)


class Expiration(unittest.TestCase):
    """ExpirationSettings (CreateChannel, PutChannelExpirationSettings, DescribeChannel) and
    channels that expire on the server's clock, which POST /_emulator/clock moves on."""

    def setUp(self):
        self.emu = Emulator().start()
        self.addCleanup(self.emu.stop)
        self.chime = Chime(self, self.emu.client())
        self.loose = Chime(self, self.emu.client(validate=False))

    def advance(self, days):
        status, body = self.emu.admin("POST", "/_emulator/clock",
                                      {"advance_ms": int(days * 86_400_000)})
        self.assertEqual(status, 200, f"POST /_emulator/clock: {body[:200]!r}")

    def channel(self, **extra):
        return self.chime("CreateChannel", AppInstanceArn=APP, Name="expiring",
                          ClientRequestToken=token(), ChimeBearer=ALICE, **extra)["ChannelArn"]

    def settings(self, arn):
        return self.chime("DescribeChannel", ChannelArn=arn,
                          ChimeBearer=ALICE)["Channel"].get("ExpirationSettings")

    def listed(self):
        r = self.chime("ListChannelMembershipsForAppInstanceUser", AppInstanceUserArn=ALICE,
                       ChimeBearer=ALICE)
        return {m["ChannelSummary"]["ChannelArn"] for m in r["ChannelMemberships"]}

    def test_settings_and_expiry(self):
        by_created = self.channel(ExpirationSettings={"ExpirationDays": 2,
                                                      "ExpirationCriterion": "CREATED_TIMESTAMP"})
        by_last = self.channel()
        forever = self.channel()
        put = self.chime("PutChannelExpirationSettings", ChannelArn=by_last, ChimeBearer=ALICE,
                         ExpirationSettings={"ExpirationDays": 3,
                                             "ExpirationCriterion": "LAST_MESSAGE_TIMESTAMP"})
        self.assertEqual(put["ChannelArn"], by_last)
        self.assertEqual(put["ExpirationSettings"]["ExpirationDays"], 3)
        self.assertEqual(self.settings(by_created),
                         {"ExpirationDays": 2, "ExpirationCriterion": "CREATED_TIMESTAMP"})
        self.assertEqual(self.settings(by_last),
                         {"ExpirationDays": 3, "ExpirationCriterion": "LAST_MESSAGE_TIMESTAMP"})
        self.assertIsNone(self.settings(forever), "no settings: DescribeChannel shows none")

        self.advance(1.5)
        self.chime("SendChannelMessage", ChannelArn=by_last, Content="still here",
                   Type="STANDARD", Persistence="PERSISTENT", ClientRequestToken=token(),
                   ChimeBearer=ALICE)
        self.advance(1)  # 2.5 days after creation, 1 day after by_last's message
        self.chime.error("DescribeChannel", "NotFoundException", 404, ChannelArn=by_created,
                         ChimeBearer=ALICE)
        self.assertEqual(self.listed(), {by_last, forever})
        self.advance(2.5)  # 3.5 days after by_last's message
        self.chime.error("ListChannelMessages", "NotFoundException", 404, ChannelArn=by_last,
                         ChimeBearer=ALICE)
        self.assertEqual(self.listed(), {forever})

        # Out of the model's bounds; removing the settings; moderators only.
        self.loose.error("PutChannelExpirationSettings", "BadRequestException", 400,
                         ChannelArn=forever, ChimeBearer=ALICE,
                         ExpirationSettings={"ExpirationDays": 0,
                                             "ExpirationCriterion": "CREATED_TIMESTAMP"})
        self.chime("PutChannelExpirationSettings", ChannelArn=forever, ChimeBearer=ALICE,
                   ExpirationSettings={"ExpirationDays": 30,
                                       "ExpirationCriterion": "CREATED_TIMESTAMP"})
        self.chime("PutChannelExpirationSettings", ChannelArn=forever, ChimeBearer=ALICE)
        self.assertIsNone(self.settings(forever), "settings removed")
        self.advance(40)
        self.assertEqual(self.listed(), {forever})
        self.chime("CreateChannelMembership", ChannelArn=forever, MemberArn=BOB, Type="DEFAULT",
                   ChimeBearer=ALICE)
        self.chime.error("PutChannelExpirationSettings", "ForbiddenException", 403,
                         ChannelArn=forever, ChimeBearer=BOB)


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        sys.stderr.write(f"usage: {sys.argv[0]} PATH/TO/tidings-chime-local [unittest args]\n")
        sys.exit(2)
    BINARY = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
