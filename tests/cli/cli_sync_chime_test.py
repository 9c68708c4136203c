#!/usr/bin/env python3
"""`tidings sync --backend chime` end to end: the real binary against the real
emulator (tidings-chime-local on 127.0.0.1, an ephemeral port, SigV4 checked).

Usage: cli_sync_chime_test.py /path/to/tidings /path/to/tidings-chime-local

Two stores exchange messages through one channel with one-shot syncs; the
errors a user can hit (no app instance, wrong secret, server gone) exit with
their codes and say what to do; nothing is lost while the server is away.
"""
import json
import os
import subprocess
import sys
import tempfile

TIDINGS, CHIME_LOCAL = sys.argv[1], sys.argv[2]
APP = "arn:aws:chime:us-east-1:123456789012:app-instance/cli-test"
ACCESS, SECRET = "AKIDCLITEST", "cli-test-secret-DO-NOT-LOG-3f9e"
EXIT_OK, EXIT_USAGE, EXIT_CREDENTIALS, EXIT_UNAVAILABLE = 0, 2, 4, 7
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def run(*args, env=None, expect=0):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("TIDINGS_") and not k.startswith("AWS_")}
    e.update({"AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET,
              "AWS_REGION": "us-east-1", "HOME": os.environ.get("TMPDIR", "/tmp")})
    e.update(env or {})
    p = subprocess.run([TIDINGS, *args], capture_output=True, text=True, env=e, timeout=60,
                       stdin=subprocess.DEVNULL)
    if expect is not None and p.returncode != expect:
        failures.append(f"{args}: exit {p.returncode}, expected {expect}; stderr: {p.stderr.strip()}")
    check(SECRET not in p.stdout + p.stderr, f"{args}: the secret appears in the output")
    return p


with tempfile.TemporaryDirectory() as d:
    server = subprocess.Popen([CHIME_LOCAL, "--port", "0", "--access-key", ACCESS],
                              env={**os.environ, "TIDINGS_CHIME_LOCAL_SECRET_KEY": SECRET},
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline()
        if "listening on" not in line:
            sys.exit(f"tidings-chime-local did not start: {line!r}")
        endpoint = line.split()[-1]
        g = {}
        for user in ("alice", "bob"):
            store = os.path.join(d, user)
            run("--store", store, "init", "--user", user)
            g[user] = ["--store", store, "--key-file", store + ".key"]
            run(*g[user], "conversation", "clinic", "--member", "alice", "--member", "bob")
        sync_flags = ["sync", "--backend", "chime", "--chime-app-instance", APP,
                      "--chime-endpoint", endpoint]

        # No app instance: a usage error that says what to give.
        p = run(*g["alice"], "sync", "--backend", "chime", expect=EXIT_USAGE)
        check("--chime-app-instance" in p.stderr and "TIDINGS_CHIME_APP_INSTANCE_ARN" in p.stderr,
              f"missing app instance explained: {p.stderr}")
        p = run(*g["alice"], "sync", "--backend", "carrier-pigeon", expect=EXIT_USAGE)

        run(*g["alice"], "send", "-c", "clinic", "hello bob")
        mid = run(*g["alice"], "send", "-c", "clinic", "typo").stdout.strip()
        run(*g["alice"], "edit", mid, "fixed")
        # Wrong secret: bad credentials (not a channel's permission: nothing is
        # parked), nothing leaves the outbox, and the next sync works.
        p = run(*g["alice"], *sync_flags, env={"AWS_SECRET_ACCESS_KEY": "wrong"},
                expect=EXIT_CREDENTIALS)
        check("check the AWS credentials" in p.stderr, f"wrong secret explained: {p.stderr}")
        outbox = run(*g["alice"], "--json", "outbox").stdout.splitlines()
        check(len(outbox) == 3, f"outbox kept after a refused sync: {len(outbox)} entries")

        p = run(*g["alice"], "--json", *sync_flags)
        summary = json.loads(p.stdout or "{}")
        check(summary.get("outbox") == 0 and summary.get("errors") == 0, f"alice synced: {p.stdout}")
        run(*g["bob"], *sync_flags)
        run(*g["bob"], "send", "-c", "clinic", "hi alice")
        run(*g["bob"], *sync_flags)
        run(*g["alice"], *sync_flags)
        logs = {u: run(*g[u], "--json", "log", "-c", "clinic").stdout for u in ("alice", "bob")}
        bodies = {u: [json.loads(x)["body"] for x in logs[u].splitlines()] for u in logs}
        check(bodies["alice"] == bodies["bob"], f"both stores agree: {bodies}")
        check(bodies["alice"] == ["hello bob", "fixed", "hi alice"], f"content: {bodies['alice']}")
        status = run(*g["alice"], "--json", "status").stdout.splitlines()
        check(any(json.loads(x).get("backend") == "chime" for x in status[0:] if x.startswith("{")),
              f"status lists the chime backend: {status}")

        # The server goes away: exit 7, the message stays in the outbox.
        server.terminate()
        server.wait(10)
        run(*g["bob"], "send", "-c", "clinic", "are you there?")
        p = run(*g["bob"], *sync_flags, expect=EXIT_UNAVAILABLE)
        check("retried on the next sync" in p.stderr, f"unavailable explained: {p.stderr}")
        check(len(run(*g["bob"], "--json", "outbox").stdout.splitlines()) == 1,
              "the unsent message waits in the outbox")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

if failures:
    print("FAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
print("cli sync --backend chime: all checks passed")
