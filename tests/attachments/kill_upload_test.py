#!/usr/bin/env python3
"""kill -9 during multipart uploads: `tidings sync --s3-bucket` (a real child
process, uploading on its sync thread) and `tidings daemon` (uploading on
AttachmentSync's upload thread while its engine runs) are killed at random
moments while they upload large attachments to moto's S3 (SigV4 and IAM on,
tests/attachments/moto_setup.py); between kills the bucket's open multipart
uploads are read as the admin.

Usage: kill_upload_test.py /path/to/tidings [Class.test_x]
Environment: TIDINGS_KILLS (default 40 for sync and 12 for the daemon; 25 and
8 when TIDINGS_SANITIZED is set, 400 and 160 with TIDINGS_SOAK=1),
TIDINGS_KILL_SEED (default: random, printed, so a run replays).

Checks: every attachment whose send was acknowledged (the command printed the
message id) reaches the other store whole; an upload resumes rather than
starting over (one multipart upload per object, its parts never fewer after a
kill, and more each time the child lived long enough); once the outbox
drains, no multipart upload is left open in the bucket.
"""
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "common"))
sys.path.insert(0, os.path.join(HERE, "..", "daemon"))
import tidings_unittest  # noqa: E402
from daemon_util import Daemon, Moto  # noqa: E402

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

TIDINGS = None  # set from argv in __main__
SETUP = os.path.join(HERE, "moto_setup.py")
BUCKET = "tidings-attachments-cli"
# 24 parts of 6 MiB: with 16 parts in flight an upload of a smaller file is
# over too soon for most kills to land in it.
FILE_BYTES = 144 << 20


class KillDuringUpload(tidings_unittest.TestCase):
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
            self.env[user] = {**{k: v for k, v in os.environ.items()
                                 if not k.startswith("TIDINGS_") and not k.startswith("AWS_")},
                              "AWS_ACCESS_KEY_ID": creds["access_key"],
                              "AWS_SECRET_ACCESS_KEY": creds["secret"],
                              "AWS_REGION": "us-east-1",
                              "AWS_ENDPOINT_URL_DYNAMODB": self.moto.endpoint,
                              "AWS_ENDPOINT_URL_S3": self.moto.endpoint,
                              "TIDINGS_S3_BUCKET": BUCKET, "HOME": self.dir}
            self.g[user] = ["--store", store, "--key-file", store + ".key"]
            self.cli(user, "init", "--user", user)
            self.cli(user, "conversation", "consult", "--member", "hana", "--member", "ivan")
        admin = boto3.session.Session(
            aws_access_key_id=self.moto.creds["admin_access_key"],
            aws_secret_access_key=self.moto.creds["admin_secret"], region_name="us-east-1")
        self.s3 = admin.client("s3", endpoint_url=self.moto.endpoint,
                               config=Config(s3={"addressing_style": "path"}))

    def cli(self, user, *args, expect=0):
        p = subprocess.run([TIDINGS, *self.g[user], *args], capture_output=True, text=True,
                           env=self.env[user], timeout=600, stdin=subprocess.DEVNULL)
        if expect is not None:
            self.check(p.returncode == expect,
                       f"{args}: exit {p.returncode}, expected {expect}; stderr: {p.stderr.strip()}")
        return p

    def open_uploads(self):
        """{key: {upload id: number of parts}} of the bucket's open uploads."""
        out = {}
        for u in self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []):
            try:
                parts = self.s3.list_parts(Bucket=BUCKET, Key=u["Key"], UploadId=u["UploadId"])
            except self.s3.exceptions.NoSuchUpload:
                continue  # completed meanwhile: the server finishes a killed client's request
            out.setdefault(u["Key"], {})[u["UploadId"]] = len(parts.get("Parts", []))
        return out

    def outbox_empty(self, user):
        p = self.cli(user, "--json", "outbox")
        return p.returncode == 0 and not p.stdout.strip()

    def send_file(self, n, rng):
        path = os.path.join(self.dir, f"scan-{n}.tiff")
        digest = hashlib.sha256()
        with open(path, "wb") as f:
            for _ in range(FILE_BYTES >> 20):
                chunk = rng.randbytes(1 << 20)
                f.write(chunk)
                digest.update(chunk)
        p = self.cli("hana", "--json", "send", "-c", "consult", "--attach", path, f"scan {n}")
        if p.returncode != 0:
            return None
        os.remove(path)  # the store has it now; the file is not needed again
        return json.loads(p.stdout)["attachments"][0]["object"], digest.hexdigest()

    def test_uploads_resume_after_every_kill_and_leave_nothing_open(self):
        def sync():
            child = subprocess.Popen([TIDINGS, *self.g["hana"], "sync", "--s3-path-style"],
                                     env=self.env["hana"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

            def kill():
                child.send_signal(signal.SIGKILL)
                child.wait()
            return kill
        self.kill_uploads(sync, default_kills=(40, 25, 400), pause=(0.05, 0.8),
                          mid_upload=1 / 2, min_grew=2)

    def test_a_daemon_killed_while_it_uploads_resumes_and_leaves_nothing_open(self):
        store, key = self.g["hana"][1], self.g["hana"][3]
        cfg = os.path.join(self.dir, "hana-daemon.toml")
        with open(cfg, "w") as f:
            f.write(f'[store]\npath = "{store}"\nkey_file = "{key}"\n'
                    f'[s3]\nbucket = "{BUCKET}"\npath_style = true\n')
        log_path = os.path.join(self.dir, "daemon.log")

        def daemon():
            return Daemon.start(TIDINGS, [], ["--config", cfg], self.env["hana"], log_path).kill
        # A daemon opens its store and starts its engine before it uploads, so
        # fewer kills land in an upload: 7-8 of 12, parts grew across 2-4
        # kills in four runs; the bounds leave room for that.
        self.kill_uploads(daemon, default_kills=(12, 8, 160), pause=(0.3, 1.5),
                          mid_upload=1 / 3, min_grew=1)

    def kill_uploads(self, start, default_kills, pause, mid_upload, min_grew):
        """Kills what start() started (it returns the kill) at random moments
        while hana's outbox has a file to upload, then drains the outbox with
        `tidings sync` and checks every file arrived whole. At least
        `mid_upload` of the kills must land during an upload, and parts must
        grow across `min_grew` of them."""
        default = (default_kills[2] if os.environ.get("TIDINGS_SOAK") == "1" else
                   default_kills[1] if os.environ.get("TIDINGS_SANITIZED") else default_kills[0])
        kills = int(os.environ.get("TIDINGS_KILLS", default))
        seed = int(os.environ.get("TIDINGS_KILL_SEED", random.randrange(1 << 30)))
        print(f"kill_upload_test: {kills} kills, TIDINGS_KILL_SEED={seed}", flush=True)
        rng = random.Random(seed)
        self.cli("ivan", "sync")  # publishes ivan's device keys first
        sent = {}  # object -> sha256 of the file
        seen = {}  # object key -> upload id -> the most parts seen
        ids_per_key = {}
        grew = killed_mid_upload = 0
        n = 0
        for k in range(kills):
            if self.outbox_empty("hana"):
                got = self.send_file(n, rng)
                n += 1
                self.check(got is not None, "send --attach failed")
                if got:
                    sent[got[0]] = got[1]
            kill = start()
            time.sleep(rng.uniform(*pause))
            kill()
            now = self.open_uploads()
            killed_mid_upload += bool(now)
            for key, uploads in now.items():
                ids_per_key.setdefault(key, set()).update(uploads)
                for upload_id, parts in uploads.items():
                    before = seen.setdefault(key, {}).get(upload_id)
                    if before is not None:
                        self.check(parts >= before,
                                   f"kill {k}: {key} {upload_id} went from {before} to {parts} parts")
                        grew += parts > before
                    seen[key][upload_id] = max(parts, before or 0)
        # Unkilled, the queue drains.
        for _ in range(10):
            self.cli("hana", "sync", "--s3-path-style", expect=None)
            if self.outbox_empty("hana"):
                break
        self.check(self.outbox_empty("hana"), "hana's outbox drains")
        left = self.open_uploads()
        self.check(left == {}, f"no multipart upload left open: {left}")
        print(f"kill_upload_test: {kills} kills, {killed_mid_upload} with an upload open, "
              f"{len(sent)} files, parts grew across {grew} kills", flush=True)
        self.check(killed_mid_upload >= int(kills * mid_upload),
                   f"kills land during an upload ({killed_mid_upload} of {kills})")
        self.check(grew >= min_grew, f"uploads resumed with more parts after kills ({grew})")
        for key, ids in ids_per_key.items():
            # A kill between creating an upload and saving its id may cost one
            # more (the next run finds and aborts it); a restart would cost many.
            self.check(len(ids) <= 3, f"{key} was uploaded as {len(ids)} multipart uploads")

        # Every acknowledged file reaches the other store whole.
        self.cli("ivan", "sync")
        for obj, digest in sent.items():
            out = os.path.join(self.dir, "fetched-" + obj[:8])
            self.cli("ivan", "fetch", obj, "--to", out, "--s3-path-style")
            h = hashlib.sha256()
            with open(out, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            self.check(h.hexdigest() == digest, f"{obj[:8]} arrived whole")
            os.remove(out)
        self.cli("hana", "verify")
        self.cli("ivan", "verify")


if __name__ == "__main__":
    (TIDINGS,) = tidings_unittest.args(1, "/path/to/tidings")
    tidings_unittest.main()
