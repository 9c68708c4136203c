#!/usr/bin/env python3
"""`tidings send --attach`, `attachments` and `fetch` end to end: the real
binary, two stores, moto on 127.0.0.1 (an ephemeral port) serving DynamoDB
and S3 with SigV4 and IAM on (tests/attachments/moto_setup.py: each device
user may touch its own DynamoDB partitions and the bucket's objects only).

Usage: cli_attachments_test.py /path/to/tidings [Class.test_x]

A photo sent by one store is listed, uploaded by `sync --s3-bucket`, arrives
with the message on the other store, is fetched and saved byte for byte;
the bucket holds neither its bytes nor its name; the errors a user can hit
(no bucket, no such file, an object that is not one) exit with their codes
and say what to do.
"""
import json
import os
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
sys.path.insert(0, os.path.join(HERE, "..", "daemon"))
import tidings_unittest  # noqa: E402
from daemon_util import Moto  # noqa: E402

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

TIDINGS = None  # set from argv in __main__
SETUP = os.path.join(HERE, "moto_setup.py")
BUCKET = "tidings-attachments-cli"
NAME_MARKER = "CANARY-NAME-jdoe-rash"
BYTES_MARKER = b"CANARY-BYTES-51d2"
EXIT_OK, EXIT_USAGE, EXIT_NOT_FOUND = 0, 2, 3


class Attachments(tidings_unittest.TestCase):
    def setUp(self):
        super().setUp()
        d = tempfile.TemporaryDirectory()
        self.addCleanup(d.cleanup)
        self.dir = d.name
        self.moto = Moto(self.dir, moto_setup=SETUP)
        self.addCleanup(self.moto.stop)
        self.g, self.env = {}, {}
        for user in ("hana", "ivan"):
            store = os.path.join(self.dir, user)
            creds = self.moto.creds_for(user)
            self.env[user] = {"AWS_ACCESS_KEY_ID": creds["access_key"],
                              "AWS_SECRET_ACCESS_KEY": creds["secret"],
                              "AWS_REGION": "us-east-1",
                              "AWS_ENDPOINT_URL_DYNAMODB": self.moto.endpoint,
                              "AWS_ENDPOINT_URL_S3": self.moto.endpoint}
            self.cli(user, "init", "--user", user, store_flags=["--store", store])
            self.g[user] = ["--store", store, "--key-file", store + ".key"]
        for user in ("hana", "ivan"):
            self.cli(user, "conversation", "consult", "--member", "hana", "--member", "ivan")

    def cli(self, user, *args, expect=EXIT_OK, store_flags=None):
        e = {k: v for k, v in os.environ.items()
             if not k.startswith("TIDINGS_") and not k.startswith("AWS_")}
        e.update(self.env[user])
        e["HOME"] = self.dir
        p = subprocess.run([TIDINGS, *(store_flags or self.g[user]), *args], capture_output=True,
                           text=True, env=e, timeout=120, stdin=subprocess.DEVNULL)
        if expect is not None:
            self.check(p.returncode == expect,
                       f"{args}: exit {p.returncode}, expected {expect}; stderr: {p.stderr.strip()}")
        secret = self.env[user]["AWS_SECRET_ACCESS_KEY"]
        self.check(secret not in p.stdout + p.stderr, f"{args}: the secret appears in the output")
        return p

    def attachments(self, user):
        p = self.cli(user, "--json", "attachments")
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def test_a_photo_goes_up_with_its_message_and_comes_down_whole(self):
        photo = os.path.join(self.dir, NAME_MARKER + ".jpg")
        data = (BYTES_MARKER + os.urandom(1 << 20)) * 6  # 6 MiB: a multipart upload
        with open(photo, "wb") as f:
            f.write(data)
        p = self.cli("hana", "--json", "send", "-c", "consult", "--attach", photo, "the rash")
        sent = json.loads(p.stdout)
        self.check(len(sent["attachments"]) == 1, f"the message lists its file: {sent}")
        obj = sent["attachments"][0]["object"]
        self.check(sent["attachments"][0]["name"] == NAME_MARKER + ".jpg", sent)
        listed = self.attachments("hana")
        self.check([a["state"] for a in listed] == ["queued"], f"queued before sync: {listed}")

        s3 = ["--s3-bucket", BUCKET, "--s3-path-style"]
        # Ivan's device publishes its keys first, so Hana's sync seals the
        # conversation's key to it (end to end by default on DynamoDB).
        self.cli("ivan", "sync", *s3)
        self.cli("hana", "sync", *s3)
        listed = self.attachments("hana")
        self.check([(a["object"], a["state"], a["location"]) for a in listed] ==
                   [(obj, "sent", BUCKET)], f"sent after sync: {listed}")
        self.cli("ivan", "sync", *s3)
        p = self.cli("ivan", "--json", "log", "-c", "consult")
        got = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        self.check(len(got) == 1 and got[0]["attachments"] == sent["attachments"],
                   f"the other store has the message and its file: {got}")
        self.check([a["state"] for a in self.attachments("ivan")] == ["remote"], "remote")
        p = self.cli("ivan", "log", "-c", "consult")
        self.check(f"[file {NAME_MARKER}.jpg, {len(data)} bytes, {obj[:12]}]" in p.stdout,
                   f"the log line shows the file: {p.stdout}")

        out = os.path.join(self.dir, "saved.jpg")
        p = self.cli("ivan", "fetch", obj, "--to", out, *s3)
        self.check("saved to" in p.stdout, p.stdout)
        with open(out, "rb") as f:
            self.check(f.read() == data, "the saved file is the photo, byte for byte")
        self.check(stat.S_IMODE(os.stat(out).st_mode) == 0o600, "saved 0600")
        self.check([a["state"] for a in self.attachments("ivan")] == ["available"], "available")
        self.cli("ivan", "verify")
        # Fetched again: nothing to download, saved to a new file.
        self.cli("ivan", "fetch", obj, "--to", os.path.join(self.dir, "again.jpg"), *s3)

        # The bucket holds one object under an opaque key, ciphertext only.
        admin = boto3.session.Session(
            aws_access_key_id=self.moto.creds["admin_access_key"],
            aws_secret_access_key=self.moto.creds["admin_secret"], region_name="us-east-1")
        bucket = admin.client("s3", endpoint_url=self.moto.endpoint,
                              config=Config(s3={"addressing_style": "path"}))
        keys = [o["Key"] for o in bucket.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        self.check(keys == ["tidings/" + obj], f"one object, named by its hash: {keys}")
        body = bucket.get_object(Bucket=BUCKET, Key=keys[0])["Body"].read()
        self.check(BYTES_MARKER not in body and NAME_MARKER.encode() not in body,
                   "the object holds neither the photo's bytes nor its name")
        uploads = bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        self.check(uploads == [], f"no multipart upload left open: {uploads}")

    def test_errors_say_what_to_do(self):
        p = self.cli("hana", "send", "-c", "consult", "--attach",
                     os.path.join(self.dir, NAME_MARKER + ".pdf"), "x", expect=EXIT_NOT_FOUND)
        self.check("does not exist" in p.stderr and NAME_MARKER not in p.stderr,
                   f"a missing file is named by the user, not by us: {p.stderr}")
        p = self.cli("hana", "fetch", "a" * 64, expect=EXIT_USAGE)
        self.check("TIDINGS_S3_BUCKET" in p.stderr, f"no bucket explained: {p.stderr}")
        p = self.cli("hana", "fetch", "a" * 64, "--s3-bucket", BUCKET, expect=EXIT_NOT_FOUND)
        p = self.cli("hana", "fetch", "not-an-object", "--s3-bucket", BUCKET, expect=EXIT_USAGE)
        self.check("64 hex digits" in p.stderr, p.stderr)
        # A send with a file and no bucket at sync: parked, saying what to set.
        photo = os.path.join(self.dir, "p.jpg")
        with open(photo, "wb") as f:
            f.write(b"tiny photo")
        self.cli("hana", "send", "-c", "consult", "--attach", photo)
        self.cli("hana", "sync")
        p = self.cli("hana", "--json", "outbox")
        entries = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        self.check(len(entries) == 1 and entries[0]["failed"] and
                   "S3 bucket" in entries[0]["last_error"], f"parked with the reason: {entries}")


if __name__ == "__main__":
    (TIDINGS,) = tidings_unittest.args(1, "/path/to/tidings")
    tidings_unittest.main()
