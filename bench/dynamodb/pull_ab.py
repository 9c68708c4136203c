#!/usr/bin/env python3
"""The DynamoDB pull of builds or settings against the raw signed-Query
ceiling, one moto_server, rounds of every configuration in a random order
(index on and off for each variant, and raw), medians per configuration:

  python3 bench/dynamodb/pull_ab.py N ROUNDS VARIANT VARIANT ...

A VARIANT is a binary (named "before" and "after" in the order given, for
two) or NAME=ENV~VALUE,ENV~VALUE:BINARY as bench/ab.py takes it, e.g.
  off=TIDINGS_BENCH_READ_AHEAD~0:build/bench/dynamodb/tidings_dynamodb_bench

The table is written once (push-plain, N messages, by the last variant) and
each pull reads it into a new store.
"""
import json, os, random, statistics, subprocess, sys
from moto_table import moto_table
n = int(sys.argv[1]); rounds = int(sys.argv[2])
variants = {}  # name -> (binary, env)
for i, spec in enumerate(sys.argv[3:]):
    if "=" in spec.split(":", 1)[0]:
        name, rest = spec.split("=", 1)
        envs, binary = rest.rsplit(":", 1)
        env = dict(kv.split("~") for kv in filter(None, envs.split(",")))
    else:
        name, binary, env = (["before", "after"][i] if len(sys.argv) == 5 else f"v{i}"), spec, {}
    variants[name] = (binary, env)
res = {}
with moto_table() as (endpoint, ddb):
    def run(binary, *args, env=None):
        out = subprocess.run([binary, args[0], endpoint, "bench", *args[1:]], capture_output=True,
                             text=True, check=True, env=env).stdout
        return json.loads(out)
    last = list(variants.values())[-1][0]
    run(last, "push-plain", "t-pull", str(n))
    for r in range(rounds):
        cfgs = [(v, idx) for v in variants for idx in ("1", "0")] + [("raw", None)]
        random.shuffle(cfgs)
        for v, idx in cfgs:
            if v == "raw":
                o = run(last, "raw", "t-pull")
                res.setdefault("raw", []).append(n / o["seconds"])
            else:
                binary, extra = variants[v]
                env = dict(os.environ); env.update(extra); env["TIDINGS_BENCH_SEARCH_INDEX"] = idx
                o = run(binary, "pull", "t-pull", env=env)
                res.setdefault(f"{v} index={idx}", []).append(o["messages"] / o["seconds"])
        print("round", r + 1, os.getloadavg()[0], flush=True)
raw = statistics.median(res["raw"])
for k, v in sorted(res.items()):
    m = statistics.median(v)
    print(f"{k:18} median {m:9.0f} msg/s  ratio to raw {m / raw:.2f}  runs {[round(x) for x in v]}")
