#!/usr/bin/env python3
"""The DynamoDB pull of two builds against the raw signed-Query ceiling, one
moto_server, rounds of every configuration in a random order (index on and
off for each build, and raw), medians per configuration:

  python3 bench/dynamodb/pull_ab.py N ROUNDS BEFORE_BINARY AFTER_BINARY

The table is written once (push-plain, N messages) and each pull reads it
into a new store.
"""
import json, os, random, statistics, subprocess, sys
from moto_table import moto_table
n = int(sys.argv[1]); rounds = int(sys.argv[2])
bins = {"before": sys.argv[3], "after": sys.argv[4]}
res = {}
with moto_table() as (endpoint, ddb):
    def run(binary, *args, env=None):
        out = subprocess.run([binary, args[0], endpoint, "bench", *args[1:]], capture_output=True,
                             text=True, check=True, env=env).stdout
        return json.loads(out)
    run(bins["after"], "push-plain", "t-pull", str(n))
    for r in range(rounds):
        cfgs = [(b, idx) for b in bins for idx in ("1", "0")] + [("raw", None)]
        random.shuffle(cfgs)
        for b, idx in cfgs:
            if b == "raw":
                o = run(bins["after"], "raw", "t-pull")
                res.setdefault("raw", []).append(n / o["seconds"])
            else:
                env = dict(os.environ); env["TIDINGS_BENCH_SEARCH_INDEX"] = idx
                o = run(bins[b], "pull", "t-pull", env=env)
                res.setdefault(f"{b} index={idx}", []).append(o["messages"] / o["seconds"])
        print("round", r + 1, os.getloadavg()[0], flush=True)
raw = statistics.median(res["raw"])
for k, v in sorted(res.items()):
    m = statistics.median(v)
    print(f"{k:18} median {m:9.0f} msg/s  ratio to raw {m / raw:.2f}  runs {[round(x) for x in v]}")
