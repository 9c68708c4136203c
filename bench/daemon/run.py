#!/usr/bin/env python3
"""Daemon benchmark: delivery latency from device A to device B through two
`tidings daemon`s and a local backend - DynamoDB (moto_server) or Chime SDK
Messaging (tidings-chime-local), both on 127.0.0.1 - for several poll
intervals, and the CPU an idle daemon uses.

Usage: python3 bench/daemon/run.py build/cli/tidings [--backend dynamodb|chime]
           [--messages N] [--idle-seconds S] [--polls 200,1000,2000]

Latency of one message = (B's daemon logs message.received for it) - (the
message id's UUIDv7 timestamp, taken by the client just before it hands the
message to A's daemon). Same machine, same clock. Messages are spaced by a
random delay so they land at every phase of B's poll cycle.

Idle CPU = utime+stime of the daemon process (/proc/PID/stat) over
--idle-seconds with no writes, extrapolated to an hour."""
import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "daemon"))
from measure import cpu_seconds, log_ms, pct, uuid7_ms  # noqa: E402
from daemon_util import ChimeLocal, Daemon, Moto, clean_env  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("tidings")
ap.add_argument("--messages", type=int, default=40)
ap.add_argument("--idle-seconds", type=int, default=60)
ap.add_argument("--polls", default="200,1000,2000")
ap.add_argument("--backend", choices=["dynamodb", "chime"], default="dynamodb")
ap.add_argument("--chime-local", help="tidings-chime-local (default: next to the build's cli/)")
args = ap.parse_args()
T = args.tidings
CHIME_LOCAL = args.chime_local or os.path.join(os.path.dirname(os.path.abspath(T)), "..",
                                               "emulator", "chime", "tidings-chime-local")

with tempfile.TemporaryDirectory() as d:
    moto = chime = None
    if args.backend == "chime":
        chime = ChimeLocal(CHIME_LOCAL, d)
        env = clean_env({**chime.env(), "HOME": d})
    else:
        moto = Moto(d)
        env = clean_env({**moto.env(), "HOME": d})
        subprocess.run([T, "dynamodb", "create-table"], env=env, check=True, capture_output=True)

    SYNC_BACKENDS = 'backends = ["chime"]\n' if chime else ""

    def backend_config(user):
        return chime.config(user) if chime else ""

    results = []
    for poll in [int(p) for p in args.polls.split(",")]:
        run_dir = os.path.join(d, f"p{poll}")
        os.makedirs(run_dir)
        daemons, gl = [], {}
        conv = f"bench-{poll}"
        for name, user in (("a", "alice"), ("b", "bob")):
            store, key = os.path.join(run_dir, name), os.path.join(run_dir, name + ".key")
            subprocess.run([T, "--store", store, "init", "--user", user], env=env, check=True,
                           capture_output=True)
            gl[name] = ["--store", store, "--key-file", key]
            cfg = os.path.join(run_dir, name + ".toml")
            with open(cfg, "w") as f:
                f.write(f'[store]\npath = "{store}"\nkey_file = "{key}"\n[sync]\n'
                        f'active_poll_ms = {poll}\nidle_poll_ms = {max(poll, 2000)}\n'
                        f'{SYNC_BACKENDS}[log]\nlevel = "debug"\n{backend_config(user)}')
            if name == "a":
                subprocess.run([T, *gl["a"], "conversation", conv, "--member", "bob"], env=env,
                               check=True, capture_output=True)
            daemons.append(Daemon.start(T, [], ["--config", cfg], env,
                                        os.path.join(run_dir, name + ".log")))
        # Warm-up: B learns the conversation (listing) and it becomes active.
        first = subprocess.run([T, *gl["a"], "send", "-c", conv, "warm-up"], env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
        daemons[1].wait_log(re.escape(first), timeout=30)
        ids = []
        rng = random.Random(poll)
        for i in range(args.messages):
            time.sleep(rng.uniform(0.05, 0.05 + poll / 1000))
            p = subprocess.run([T, *gl["a"], "send", "-c", conv, f"m{i}"], env=env,
                               capture_output=True, text=True, check=True)
            ids.append(p.stdout.strip())
        daemons[1].wait_log(re.escape(ids[-1]), timeout=30)
        time.sleep(poll / 1000 * 2 + 0.5)
        received = {}
        for line in daemons[1].log().splitlines():
            m = re.match(r"(\S+) DEBUG message\.received .*message=(\S+)", line)
            if m:
                received.setdefault(m.group(2), log_ms(m.group(1)))
        lat = [received[i] - uuid7_ms(i) for i in ids if i in received]
        for dm in daemons:
            dm.stop()
        results.append((poll, len(lat), pct(lat, 50), pct(lat, 99), max(lat)))
        print(f"poll {poll} ms: {len(lat)}/{len(ids)} delivered, p50 {pct(lat, 50):.0f} ms, "
              f"p99 {pct(lat, 99):.0f} ms, max {max(lat):.0f} ms", flush=True)

    # Idle CPU: default poll settings, three synced conversations, no writes.
    store, key = os.path.join(d, "idle"), os.path.join(d, "idle.key")
    subprocess.run([T, "--store", store, "init", "--user", "idle"], env=env, check=True,
                   capture_output=True)
    for c in ("x", "y", "z"):
        subprocess.run([T, "--store", store, "--key-file", key, "send", "-c", c, "hi"], env=env,
                       check=True, capture_output=True)
    idle = []
    for label, extra in (("default (2 s active / 60 s idle poll)", ""),
                         ("60 s poll", "active_poll_ms = 60000\n")):
        cfg = os.path.join(d, "idle.toml")
        with open(cfg, "w") as f:
            f.write(f'[store]\npath = "{store}"\nkey_file = "{key}"\n[sync]\n{extra}'
                    f'{SYNC_BACKENDS}{backend_config("idle")}')
        dm = Daemon.start(T, [], ["--config", cfg], env, os.path.join(d, "idle.log"))
        time.sleep(5)
        c0, t0 = cpu_seconds(dm.proc.pid), time.time()
        time.sleep(args.idle_seconds)
        c1, t1 = cpu_seconds(dm.proc.pid), time.time()
        dm.stop()
        per_hour = (c1 - c0) / (t1 - t0) * 3600
        idle.append((label, c1 - c0, t1 - t0, per_hour))
        print(f"idle daemon, {label}: {c1 - c0:.2f} s CPU in {t1 - t0:.0f} s -> "
              f"{per_hour:.1f} s CPU per hour ({per_hour / 36:.3f}% of a core)", flush=True)
    for server in (moto, chime):
        if server:
            server.stop()
    print(json.dumps({"latency": results, "idle": idle}))
