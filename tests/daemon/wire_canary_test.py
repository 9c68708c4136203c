#!/usr/bin/env python3
"""The wire canary: with end-to-end encryption on, nothing a user wrote
reaches a server. Markers go in message bodies, an edit, a reaction, the
title, the conversation id and the user ids; two devices sync through
DynamoDB (moto with IAM on, each user its own identity) and through the
Chime emulator (tidings-chime-local, its journal on disk). None of the
markers may appear - in plain text, hex or base64 - in any HTTP request body
the `tidings` processes send (a recording proxy sits between them and the
servers), in the emulator's journal, or in the moto table read back with
boto3. With the conversation in plaintext mode the same run must show them:
that is what shows the test can fail.

On Chime the user ids are the AppInstanceUser ids in every request's ARNs
(Chime authenticates and delivers by them, docs/security.md "out of scope"),
so the user-id marker is checked on DynamoDB only.

Usage: wire_canary_test.py /path/to/tidings /path/to/moto_setup.py /path/to/tidings-chime-local
"""
import base64
import http.client
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import tidings_unittest  # noqa: E402
from daemon_util import ChimeLocal, Moto, clean_env  # noqa: E402

TIDINGS = MOTO_SETUP = CHIME_LOCAL = None

MARKERS = {
    "body": "CanaryBodyQx7",
    "edit": "CanaryEditQx7",
    "reaction": "CanaryReactQx7",
    "title": "CanaryTitleQx7",
    "conversation": "CanaryConvQx7",
    "user": "CanaryUserQx7",
}


def forms(marker):
    """The marker as it could appear: plain, hex, and base64 at each of the
    three alignments (the inner characters that do not depend on neighbours)."""
    raw = marker.encode()
    out = {marker, raw.hex(), raw.hex().upper()}
    for pad in range(3):
        enc = base64.b64encode(b"\0" * pad + raw).decode()
        start = (pad * 4 + 2) // 3 + 1
        out.add(enc[start:len(enc) - 3])
    return out


def found(markers, blob):
    return sorted(name for name, m in markers.items() if any(f in blob for f in forms(m)))


class RecordingProxy:
    """A forward HTTP proxy on 127.0.0.1 that keeps every request body."""

    def __init__(self):
        self.bodies = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                proxy.bodies.append(body)
                url = urllib.parse.urlsplit(self.path)
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
                path = url.path + (("?" + url.query) if url.query else "")
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("proxy-connection", "connection")}
                conn.request(self.command, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class WireCanary(tidings_unittest.TestCase):
    def setUp(self):
        super().setUp()
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        self.dir = d.name
        self.proxy = RecordingProxy()
        self.addCleanup(self.proxy.stop)

    def cli(self, store, *args, env):
        e = clean_env({**env, "HOME": self.dir, "http_proxy": self.proxy.url,
                       "HTTP_PROXY": self.proxy.url, "no_proxy": "", "NO_PROXY": ""})
        p = subprocess.run([TIDINGS, "--store", store, "--key-file", store + ".key", *args],
                           env=e, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
        self.check(p.returncode == 0, f"{args[:2]}: exit {p.returncode}: {p.stderr.strip()}")
        return p.stdout

    def exchange(self, users, envs, sync, plaintext):
        """Both devices write every kind of marker, then sync until each sees
        the other's messages."""
        conv = "consult-" + MARKERS["conversation"]
        stores = {}
        for u in users:
            stores[u] = os.path.join(self.dir, ("plain-" if plaintext else "e2e-") + u)
            subprocess.run([TIDINGS, "--store", stores[u], "init", "--user", u],
                           env=clean_env({"HOME": self.dir}), check=True, capture_output=True)
            if plaintext:
                self.cli(stores[u], "conversation", "create", conv, "--plaintext", env=envs[u])
            self.cli(stores[u], "conversation", conv, "--title", "Visit " + MARKERS["title"],
                     *sum((["--member", m] for m in users), []), env=envs[u])
        a, b = users
        mid = self.cli(stores[a], "send", "-c", conv, "ibuprofen " + MARKERS["body"],
                       env=envs[a]).strip()
        self.cli(stores[a], "edit", mid, "ibuprofen 400 mg " + MARKERS["edit"], env=envs[a])
        for _ in range(3):
            for u in users:
                self.cli(stores[u], *sync, env=envs[u])
        self.cli(stores[b], "react", mid, MARKERS["reaction"], env=envs[b])
        self.cli(stores[b], "send", "-c", conv, "thanks " + MARKERS["body"], env=envs[b])
        for _ in range(2):
            for u in users:
                self.cli(stores[u], *sync, env=envs[u])
        logs = {}
        for u in users:
            out = self.cli(stores[u], "--json", "log", "-c", conv, env=envs[u])
            logs[u] = [json.loads(x)["body"] for x in out.splitlines() if x.strip()]
        self.check(logs[a] == logs[b] and len(logs[a]) == 2,
                   f"both devices hold both messages: {logs}")

    def run_dynamodb(self, plaintext):
        moto = Moto(self.dir, MOTO_SETUP)
        self.addCleanup(moto.stop)
        users = ["doctor-" + MARKERS["user"], "patient-" + MARKERS["user"]]
        envs = {}
        for u in users:
            c = moto.creds_for(u)
            envs[u] = {"AWS_ACCESS_KEY_ID": c["access_key"], "AWS_SECRET_ACCESS_KEY": c["secret"],
                       "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint}
        self.exchange(users, envs, ["sync", "--backend", "dynamodb"], plaintext)
        import boto3
        ddb = boto3.client("dynamodb", endpoint_url=moto.endpoint, region_name="us-east-1",
                           aws_access_key_id=moto.creds["admin_access_key"],
                           aws_secret_access_key=moto.creds["admin_secret"])
        items = []
        for page in ddb.get_paginator("scan").paginate(TableName="tidings"):
            items += page["Items"]
        table = ""
        for item in items:
            for v in item.values():
                for kind, value in v.items():
                    table += (base64.b64encode(value).decode() + " " + value.decode("latin-1")
                              if kind == "B" else str(value)) + "\n"
        return table

    def run_chime(self, plaintext):
        journal_dir = os.path.join(self.dir, "journal-" + ("plain" if plaintext else "e2e"))
        os.makedirs(journal_dir, exist_ok=True)
        chime = ChimeLocal(CHIME_LOCAL, self.dir, data_dir=journal_dir)
        self.addCleanup(chime.stop)
        users = ["doctor", "patient"]
        envs = {u: chime.env() for u in users}
        sync = ["sync", "--backend", "chime", "--chime-app-instance", chime.APP,
                "--chime-endpoint", chime.endpoint]
        self.exchange(users, envs, sync, plaintext)
        with open(os.path.join(chime.data_dir, "journal.jsonl"), encoding="utf-8") as f:
            return f.read()

    def check_wire(self, server_blob, markers, plaintext, where):
        wire = b"\n".join(self.proxy.bodies).decode("latin-1")
        self.check(len(self.proxy.bodies) > 10, f"{where}: the proxy saw the requests "
                                                f"({len(self.proxy.bodies)})")
        if plaintext:
            self.check(found(markers, wire), f"{where} plaintext: the markers are on the wire")
            self.check(found(markers, server_blob), f"{where} plaintext: the markers are stored")
        else:
            self.check(not found(markers, wire), f"{where}: markers on the wire: "
                                                 f"{found(markers, wire)}")
            self.check(not found(markers, server_blob), f"{where}: markers on the server: "
                                                        f"{found(markers, server_blob)}")

    def test_dynamodb_end_to_end_carries_no_marker(self):
        self.check_wire(self.run_dynamodb(False), MARKERS, False, "dynamodb")

    def test_dynamodb_plaintext_mode_shows_them(self):
        self.check_wire(self.run_dynamodb(True), MARKERS, True, "dynamodb")

    def test_chime_end_to_end_carries_no_marker(self):
        markers = {k: v for k, v in MARKERS.items() if k != "user"}
        self.check_wire(self.run_chime(False), markers, False, "chime")

    def test_chime_plaintext_mode_shows_them(self):
        markers = {k: v for k, v in MARKERS.items() if k != "user"}
        self.check_wire(self.run_chime(True), markers, True, "chime")


if __name__ == "__main__":
    TIDINGS, MOTO_SETUP, CHIME_LOCAL = tidings_unittest.args(
        3, "/path/to/tidings /path/to/moto_setup.py /path/to/tidings-chime-local")
    tidings_unittest.main()
