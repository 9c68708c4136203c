#!/usr/bin/env python3
"""Time to first screen over loopback: a fresh device opens a conversation of
N messages (default 100,000) kept in DynamoDB (one moto_server on 127.0.0.1).

Each case runs in its own process on a fresh store (bench/dynamodb/dynamodb_bench):
  first newest   pull newest first until the newest message is in the store
  first oldest   the same, every page from the beginning (the behaviour before)
  rtt            the newest page's signed Query (Limit 50 items), not decoded: a round trip
  backfill       newest first, then the whole history filled; peak RSS, with
                 glibc's defaults and with its mmap threshold fixed (as the CLI does)

The newest-first and round-trip cases alternate, REPS times each.

  python3 bench/dynamodb/first_screen.py build/bench/dynamodb/tidings_dynamodb_bench \
      [--messages N] [--reps R] [--oldest-reps K]
"""
import argparse
import json
import os
import statistics
import subprocess

from moto_table import moto_table

ap = argparse.ArgumentParser()
ap.add_argument("binary")
ap.add_argument("--messages", type=int, default=100_000)
ap.add_argument("--reps", type=int, default=41)
ap.add_argument("--oldest-reps", type=int, default=3)
args = ap.parse_args()

def run(*argv, env=None):
    p = subprocess.run([args.binary, argv[0], ENDPOINT, "bench", "long", *argv[1:]],
                       capture_output=True, text=True, check=True, env=env)
    return json.loads(p.stdout), p.stderr


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))]


with moto_table() as (ENDPOINT, _):
    pushed, err = run("push-plain", str(args.messages))
    newest = [l.split()[1] for l in err.splitlines() if l.startswith("newest ")][0]
    print(f"pushed {pushed['messages']} messages in {pushed['seconds']:.1f} s "
          f"({pushed['requests']} requests)")

    first, rtt = [], []
    for _ in range(args.reps):
        r, _ = run("rtt"); rtt.append(r["seconds"] * 1000)
        r, _ = run("first", newest, "newest"); first.append(r)
    oldest = [run("first", newest, "oldest")[0] for _ in range(args.oldest_reps)]
    backfill, _ = run("backfill")
    # glibc's mmap threshold fixed at its default, as the CLI and daemon fix
    # it (docs/engine.md, "Memory"): the allocator, not the store, is the rest.
    fixed, _ = run("backfill", env=dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072"))

    ms = [r["seconds"] * 1000 for r in first]
    print(f"\n{'case':44} {'p50 ms':>9} {'p99 ms':>9} {'requests':>9} {'messages':>9}")
    print(f"{'newest first, until the newest is stored':44} {pct(ms, .5):9.2f} {pct(ms, .99):9.2f}"
          f" {statistics.median(r['requests'] for r in first):9.0f}"
          f" {statistics.median(r['messages'] for r in first):9.0f}")
    print(f"{'one round trip (the newest page Query)':44} {pct(rtt, .5):9.2f} {pct(rtt, .99):9.2f}"
          f" {1:9d} {'':>9}")
    oms = [r["seconds"] * 1000 for r in oldest]
    print(f"{'oldest first, until the newest is stored':44} {pct(oms, .5):9.0f} {max(oms):9.0f}"
          f" {statistics.median(r['requests'] for r in oldest):9.0f}"
          f" {statistics.median(r['messages'] for r in oldest):9.0f}")
    print(f"\nbackfill of {backfill['messages']} messages, newest first: "
          f"{backfill['seconds']:.1f} s, {backfill['requests']} requests, "
          f"RSS {backfill['rss_start_mb']:.1f} MB at start, {backfill['rss_peak_mb']:.1f} MB peak; "
          f"{fixed['rss_peak_mb']:.1f} MB peak with glibc's mmap threshold fixed")
