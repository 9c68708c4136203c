"""Helpers for the daemon's end-to-end tests: a moto server on 127.0.0.1 with
an ephemeral port, the real `tidings` binary, a daemon process, /metrics
parsing and a scan of the DynamoDB table that decodes the stored operations."""
import atexit
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import boto3

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chime_emulator"))
from wss import make_ca  # noqa: E402  (a throwaway CA for the emulator's WebSocket)

# moto_server with the IAM conditions of the documented policy enforced and
# DynamoDB requests serialised (tests/common/moto_server.py).
MOTO_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common",
                           "moto_server.py")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def terminate(proc, timeout=10):
    """SIGTERM, then SIGKILL if it has not exited after `timeout` s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Moto:
    """moto on 127.0.0.1 (tests/common/moto_server.py); `moto_setup` turns
    signature checking and IAM on after the setup actions (then `creds` holds
    a least-privilege user's keys)."""

    def __init__(self, workdir, moto_setup=None, port=None):
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        if moto_setup:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "5"
        self.log = open(os.path.join(workdir, f"moto-{self.port}.log"), "w")
        self.proc = subprocess.Popen(
            ["python3", MOTO_SERVER, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self.log, stderr=self.log, env=env)
        if not wait_port(self.port):
            raise RuntimeError("moto server (tests/common/moto_server.py) did not start")
        self.moto_setup = moto_setup
        self.creds = {"access_key": "test-access", "secret": "test-secret-DO-NOT-LOG-7c1f"}
        if moto_setup:
            out = subprocess.run(["python3", moto_setup, self.endpoint, "tidings"], check=True,
                                 capture_output=True, text=True).stdout
            self.creds = json.loads(out)

    def creds_for(self, user):
        """Keys of an IAM user of its own for Tidings user `user` (tagged
        tidings-user-tag = T(user), the device policy only); needs moto_setup."""
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.creds["admin_access_key"],
               "AWS_SECRET_ACCESS_KEY": self.creds["admin_secret"]}
        out = subprocess.run(["python3", self.moto_setup, "--add-user", self.endpoint, user],
                             check=True, capture_output=True, text=True, env=env).stdout
        return json.loads(out)

    def env(self):
        return {"AWS_ACCESS_KEY_ID": self.creds["access_key"],
                "AWS_SECRET_ACCESS_KEY": self.creds["secret"], "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL_DYNAMODB": self.endpoint}

    def stop(self):
        terminate(self.proc)
        self.log.close()


class ChimeLocal:
    """tidings-chime-local (the project's Chime SDK Messaging emulator) on
    127.0.0.1 with an ephemeral port; SigV4 checked against `creds`."""

    APP = "arn:aws:chime:us-east-1:123456789012:app-instance/tidings-daemon"

    def __init__(self, binary, workdir, data_dir=None, tls=False):
        """tls: also serve the messaging WebSocket, with a certificate from a
        throwaway CA (made with openssl) that env() names in AWS_CA_BUNDLE."""
        self.binary, self.workdir, self.data_dir = binary, workdir, data_dir
        self.creds = {"access_key": "AKIDDAEMONTEST", "secret": "chime-secret-DO-NOT-LOG-91ab"}
        self.ca = self.cert = self.key = None
        if tls:
            tls_dir = os.path.join(workdir, "chime-tls")
            os.makedirs(tls_dir, exist_ok=True)
            self.ca, self.cert, self.key = make_ca(tls_dir)
        self.port = self.ws_port = 0
        self.start()

    def start(self):
        """Starts the emulator; after restart(), on the ports it had before."""
        self.log = open(os.path.join(self.workdir, "chime-local.log"), "a")
        extra = ["--data-dir", self.data_dir] if self.data_dir else []
        if self.cert:
            extra += ["--tls-cert", self.cert, "--tls-key", self.key, "--ws-port", str(self.ws_port)]
        self.proc = subprocess.Popen(  # the secret in the environment, not in argv
            [self.binary, "--port", str(self.port), "--access-key", self.creds["access_key"],
             *extra],
            env={**os.environ, "TIDINGS_CHIME_LOCAL_SECRET_KEY": self.creds["secret"]},
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        _started.append(self.proc)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"tidings-chime-local did not start: {line!r}")
        self.endpoint = line.split()[-1]
        self.port = int(self.endpoint.rsplit(":", 1)[1])
        if self.cert and not self.ws_port:
            self.ws_port = self.admin("GET", "/_emulator/realtime")["port"]

    def restart(self):
        """Stops the emulator (its sockets drop) and starts it again on the
        same ports; with a data_dir its journal keeps every message."""
        self.stop()
        self.start()

    def admin(self, method, path, body=None):
        """An admin call (/_emulator/...): the JSON answer."""
        req = urllib.request.Request(self.endpoint + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read().decode()
        return json.loads(text) if text.strip() else {}

    def drop_sockets(self, user=None, code=0):
        """Drops the WebSocket sessions (of `user`): code 0 abruptly, else
        with that close code."""
        body = {"code": code}
        if user:
            body["user"] = self.user_arn(user)
        return self.admin("POST", "/_emulator/realtime/drop", body)

    def realtime_faults(self, **faults):
        """delay_ms, refuse_status, refuse_close (emulator/chime/README.md)."""
        return self.admin("POST", "/_emulator/realtime/faults", faults)

    def user_arn(self, user):
        return f"{self.APP}/user/{user}"

    def env(self):
        """AWS settings for a `tidings` process that talks to this emulator."""
        env = {"AWS_ACCESS_KEY_ID": self.creds["access_key"],
               "AWS_SECRET_ACCESS_KEY": self.creds["secret"], "AWS_REGION": "us-east-1"}
        if self.ca:
            env["AWS_CA_BUNDLE"] = self.ca
        return env

    def config(self, user):
        """The daemon's [chime] section for `user`."""
        return (f'[chime]\napp_instance_arn = "{self.APP}"\nuser_arn = "{self.user_arn(user)}"\n'
                f'region = "us-east-1"\nendpoint = "{self.endpoint}"\n')

    def stop(self):
        terminate(self.proc)
        self.log.close()

    def server_ops(self, user):
        """Every operation in the channels `user` is a member of, read with
        boto3 as that user: list of (conversation, kind, op_id, body), kind
        as engine::OpKind (1 = send). The message metadata is Tidings'
        envelope header; a send's content is its text (a native Chime
        message), any other operation's content its envelope."""
        kinds = {"send": 1, "edit": 2, "delete": 3, "react": 4, "unreact": 5, "read": 6}
        chime = boto3.client("chime-sdk-messaging", endpoint_url=self.endpoint,
                             region_name="us-east-1", aws_access_key_id=self.creds["access_key"],
                             aws_secret_access_key=self.creds["secret"])
        bearer = self.user_arn(user)
        channels, kw = [], {"AppInstanceUserArn": bearer, "ChimeBearer": bearer}
        while True:
            page = chime.list_channel_memberships_for_app_instance_user(**kw)
            channels += [m["ChannelSummary"] for m in page["ChannelMemberships"]]
            if not page.get("NextToken"):
                break
            kw["NextToken"] = page["NextToken"]
        ops = []
        for ch in channels:
            conv = json.loads(ch.get("Metadata") or "{}").get("conversation", ch["Name"])
            kw = {"ChannelArn": ch["ChannelArn"], "ChimeBearer": bearer, "MaxResults": 50}
            while True:
                page = chime.list_channel_messages(**kw)
                for m in page["ChannelMessages"]:
                    head = json.loads(m.get("Metadata") or "{}")
                    kind = kinds.get(head.get("k"), 0)
                    body = m.get("Content", "")
                    if kind != 1:
                        body = json.loads(body or "{}").get("b", "")
                    ops.append((conv, kind, head.get("op", head.get("id")), body))
                if not page.get("NextToken"):
                    break
                kw["NextToken"] = page["NextToken"]
        chime.close()
        return ops


def clean_env(extra):
    """The test's environment without any TIDINGS_ or AWS_ setting of the
    caller, plus `extra`; HOME points at a dir without ~/.aws."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("TIDINGS_") and not k.startswith("AWS_")}
    e.update(extra)
    return e


def read_varint(b, i):
    shift = value = 0
    while True:
        c = b[i]
        i += 1
        value |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return value, i


def server_ops(endpoint, creds, table="tidings", conversations=None):
    """Every operation stored in the table: list of (conversation, kind, op_id, body).
    Items hold varint-length-prefixed wire::EncodeOperation records
    (docs/sync.md; items without "v" hold the legacy encoding): U8 version,
    U8 kind, then op_id as varint length + bytes."""
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id=creds["access_key"],
                       aws_secret_access_key=creds["secret"])
    ops = []
    if conversations is not None:  # Query only (a least-privilege user may not Scan)
        for conv in conversations:
            kw = {"TableName": table, "KeyConditionExpression": "pk = :p",
                  "ExpressionAttributeValues": {":p": {"S": "c#" + conv}}}
            while True:
                page = ddb.query(**kw)
                ops += decode_items(page["Items"])
                if "LastEvaluatedKey" not in page:
                    break
                kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return ops
    kwargs = {"TableName": table}
    while True:
        page = ddb.scan(**kwargs)
        ops += decode_items(page["Items"])
        if "LastEvaluatedKey" not in page:
            return ops
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def op_body(rec, item_format):
    """The body field of an encoded operation: after version, kind, op_id,
    conversation_id, author, at (two fixed64; two varints in item format 0)
    and message_id."""
    i = 2
    for _ in range(3):  # op_id, conversation_id, author
        n, i = read_varint(rec, i)
        i += n
    if item_format == 0:
        _, i = read_varint(rec, i)
        _, i = read_varint(rec, i)
    else:
        i += 16
    n, i = read_varint(rec, i)  # message_id
    i += n
    n, i = read_varint(rec, i)
    return rec[i:i + n].decode(errors="replace")


def decode_items(items):
    """(conversation, kind, op_id, body) of every operation in these items.
    A sealed operation (frame "o.<op id>" in an end-to-end conversation's
    "l#" item, docs/dynamodb.md) shows only its op id: (log id, None, op_id,
    None)."""
    ops = []
    for item in items:
        pk = item["pk"]["S"]
        if pk.startswith("l#") and "f" in item:
            blob, i = item["f"]["B"], 0
            while i < len(blob):
                n, i = read_varint(blob, i)
                frame_id = blob[i:i + n].decode()
                n, i = read_varint(blob, i + n)
                i += n
                if frame_id.startswith("o."):
                    ops.append((pk[2:], None, frame_id[2:], None))
            continue
        if not pk.startswith("c#") or "o" not in item:
            continue
        blob = item["o"]["B"]
        item_format = int(item.get("v", {"N": "0"})["N"])
        i = 0
        while i < len(blob):
            n, i = read_varint(blob, i)
            rec = blob[i:i + n]
            i += n
            idlen, j = read_varint(rec, 2)
            ops.append((pk[2:], rec[1], rec[j:j + idlen].decode(), op_body(rec, item_format)))
    return ops


def metrics(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out, text


def healthz(port):
    try:
        r = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


_started = []  # every server and daemon a test started: killed at exit if still running
_groups = []  # every daemon's process group (a wrapper such as faketime forks the daemon)


def _signal_group(pgid, sig):
    """Signals every process of a group; False when none is left."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False


@atexit.register
def _kill_leftovers():
    for proc in _started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for pgid in _groups:
        _signal_group(pgid, signal.SIGKILL)


class Daemon:
    """A `tidings daemon` process; its stderr goes to a log file we can read.
    It runs in a process group of its own, which stop() and kill() signal: a
    wrapper in front of it (faketime forks the daemon and does not pass
    signals on) leaves no daemon behind. A test that fails with an exception
    leaves none behind either (atexit)."""

    @classmethod
    def start(cls, tidings, global_args, daemon_args, env, log_path):
        d = cls.__new__(cls)
        d.log_path = log_path
        d.logf = open(log_path, "ab")
        d.proc = subprocess.Popen([tidings, *global_args, "daemon", *daemon_args], env=env,
                                  stdout=subprocess.DEVNULL, stderr=d.logf,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        _started.append(d.proc)
        _groups.append(d.proc.pid)
        return d

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, timeout=20.0):
        end = time.time() + timeout
        while time.time() < end:
            m = re.search(pattern, self.log())
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        return re.search(pattern, self.log())

    def metrics_port(self):
        m = self.wait_log(r'metrics\.listening(?: address=\S+ port=|".*"port":")(\d+)')
        return int(m.group(1)) if m else None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        """SIGTERM to the group; SIGKILL if any of it is left after `timeout` s."""
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
        end = time.time() + timeout
        while time.time() < end and (self.proc.poll() is None or
                                     _signal_group(self.proc.pid, 0)):
            time.sleep(0.02)
        if _signal_group(self.proc.pid, signal.SIGKILL) or self.proc.poll() is None:
            self.proc.wait()
        self.logf.close()
        return self.proc.returncode

    def kill(self):
        _signal_group(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.logf.close()
