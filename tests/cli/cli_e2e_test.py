#!/usr/bin/env python3
"""End-to-end test of the real `tidings` binary, run as a user runs it.

Usage: cli_e2e_test.py /path/to/tidings
"""
import json
import os
import subprocess
import sys
import tempfile

TIDINGS = sys.argv[1]
failures = []


def run(*args, stdin=None, env=None, expect=0):
    e = dict(os.environ)
    e.pop("TIDINGS_PASSPHRASE", None)
    e.update(env or {})
    p = subprocess.run([TIDINGS, *args], input=stdin, capture_output=True, text=True, env=e, timeout=60)
    if p.returncode != expect:
        failures.append(f"{args}: exit {p.returncode}, expected {expect}; stderr: {p.stderr.strip()}")
    return p


def check(cond, what):
    if not cond:
        failures.append(what)


with tempfile.TemporaryDirectory() as d:
    store = os.path.join(d, "store")
    key = store + ".key"
    g = ["--store", store, "--key-file", key]
    p = run("--store", store, "init", "--user", "alice")
    check("created store" in p.stdout, "init announces the store")
    check(oct(os.stat(key).st_mode & 0o777) == "0o600", "key file is 0600")
    run("--store", store, "init", "--user", "alice", expect=2)  # already exists

    ids = []
    for i in range(3):
        ids.append(run(*g, "send", "-c", "general", f"hello {i}").stdout.strip())
    ids.append(run(*g, "send", "-c", "general", stdin="from stdin\n").stdout.strip())
    run(*g, "send", "-c", "random", "elsewhere")
    run(*g, "edit", ids[1], "hello 1, edited")
    run(*g, "delete", ids[2])
    run(*g, "react", ids[0], "+1")

    log = run(*g, "log", "-c", "general").stdout.splitlines()
    check(len(log) == 4, f"log shows 4 messages, got {log}")
    check("hello 0" in log[0] and "[+1 alice]" in log[0], "first message with reaction")
    check("edited" in log[1], "edit shown")
    check("(deleted)" in log[2], "delete shown")
    check("from stdin" in log[3], "stdin body")

    rows = [json.loads(l) for l in run(*g, "--json", "log", "-c", "general").stdout.splitlines()]
    check([r["id"] for r in rows] == ids, "json log in send order")
    check(all(r["state"] == "pending" for r in rows), "unsynced messages are pending")
    check(rows[2]["deleted"] and rows[2]["body"] == "", "deleted body erased")
    page = [json.loads(l) for l in run(*g, "--json", "log", "-c", "general", "--limit", "2",
                                        "--before", rows[2]["order"]).stdout.splitlines()]
    check([r["id"] for r in page] == ids[:2], "paging with --before")

    convs = [json.loads(l) for l in run(*g, "--json", "conversations").stdout.splitlines()]
    check([c["id"] for c in convs] == ["random", "general"], f"conversations by activity: {convs}")
    check(convs[1]["messages"] == 3, "deleted message not counted")

    outbox = [json.loads(l) for l in run(*g, "--json", "outbox").stdout.splitlines()]
    check(len(outbox) == 8, f"8 operations queued, got {len(outbox)}")
    check({o["kind"] for o in outbox} == {"send", "edit", "delete", "react"}, "operation kinds")
    run(*g, "outbox", "discard", str(outbox[0]["seq"]), expect=1)  # only failed entries can be discarded

    stats = json.loads(run(*g, "--json", "stats").stdout)
    check(stats["messages"] == 5 and stats["conversations"] == 2, f"stats {stats}")
    v = run(*g, "--json", "verify")
    check(json.loads(v.stdout)["problems"] == 0, "verify clean")

    out = os.path.join(d, "export.jsonl")
    run(*g, "export", "--output", out)
    lines = [json.loads(l) for l in open(out)]
    check(len(lines) == 5, "export has every message")
    check(oct(os.stat(out).st_mode & 0o777) == "0o600", "export file is 0600")
    run(*g, "export", "--output", out, expect=2)  # never overwrites

    # Errors: each with its exit code and a message on stderr.
    p = run("--store", store, "--key-file", os.path.join(d, "missing.key"), "stats", expect=3)
    check("does not exist" in p.stderr, "missing key file message")
    other = os.path.join(d, "other.key")
    with open(other, "w") as f:
        f.write("ab" * 32 + "\n")
    os.chmod(other, 0o600)
    p = run("--store", store, "--key-file", other, "stats", expect=4)
    check("key does not open" in p.stderr, f"wrong key message: {p.stderr}")
    os.chmod(key, 0o644)
    p = run(*g, "stats", expect=4)
    check("chmod 600" in p.stderr, "loose key file refused")
    os.chmod(key, 0o600)
    run("--store", os.path.join(d, "nothing"), "--key-file", key, "stats", expect=3)
    run(*g, "log", "-c", "no-such-conversation", expect=3)
    run(*g, "send", "-c", "general", "x" * 70000, expect=2)
    run("stats", env={"TIDINGS_STORE": ""}, expect=2)

    # Passphrase stores.
    pstore = os.path.join(d, "pstore")
    run("--store", pstore, "init", "--user", "bob", env={"TIDINGS_PASSPHRASE": "correct horse"})
    run("--store", pstore, "send", "-c", "c", "hi", env={"TIDINGS_PASSPHRASE": "correct horse"})
    run("--store", pstore, "stats", env={"TIDINGS_PASSPHRASE": "wrong horse"}, expect=4)

    # Corrupt the store: verify must fail with exit 5 (or the open reports corruption).
    run(*g, "stats")
    for root, _, files in os.walk(store):
        for name in files:
            if name.endswith(".log") or name.endswith(".sst"):
                path = os.path.join(root, name)
                size = os.path.getsize(path)
                if size > 200:
                    with open(path, "r+b") as f:
                        f.seek(size // 2)
                        b = f.read(1)
                        f.seek(size // 2)
                        f.write(bytes([b[0] ^ 0x40]))
    p = run(*g, "verify", expect=5)
    check("tidings:" in p.stderr, "corruption explained on stderr")

if failures:
    print("FAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
print("cli e2e: all checks passed")
