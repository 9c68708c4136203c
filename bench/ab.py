#!/usr/bin/env python3
"""Google Benchmark binaries run alternately, for an A/B of two builds on a
noisy machine: each round runs every configuration once, in a random order;
the medians per configuration and benchmark are printed at the end, with the
1-minute load average seen at the start of each run. A ratio to a baseline in
the same binary (raw RocksDB) is taken between medians of one configuration.

  python3 bench/ab.py ROUNDS FILTER NAME=ENV~VALUE,ENV~VALUE:BINARY ...

e.g. main's build against this one, without the search index:
  python3 bench/ab.py 7 'BM_Append_(Tidings|Raw)/(1|100)(/1)?/real_time$' \
    main=TIDINGS_BENCH_SEARCH_INDEX~0:../build-main/bench/engine/tidings_store_bench \
    new=TIDINGS_BENCH_SEARCH_INDEX~0:build/bench/engine/tidings_store_bench
AB_ARGS overrides the benchmark arguments (default --benchmark_min_time=0.5).
While /tmp/quiet exists, it waits.
"""
import json, os, subprocess, sys, statistics, time, random
rounds = int(sys.argv[1]); filt = sys.argv[2]; extra = os.environ.get("AB_ARGS", "--benchmark_min_time=0.5").split()
configs = []
for spec in sys.argv[3:]:
    name, rest = spec.split("=", 1)
    envs, binary = rest.rsplit(":", 1)
    env = dict(os.environ)
    for kv in filter(None, envs.split(",")):
        k, v = kv.split("~"); env[k] = v
    configs.append((name, env, binary))
res = {}
loads = []
for r in range(rounds):
    order = list(configs); random.shuffle(order)
    for name, env, binary in order:
        while os.path.exists("/tmp/quiet"): time.sleep(30)
        loads.append(os.getloadavg()[0])
        out = subprocess.run([binary, "--benchmark_filter=" + filt, "--benchmark_format=json"] + extra,
                             env=env, capture_output=True, text=True)
        if out.returncode != 0: print(out.stderr, file=sys.stderr); sys.exit(1)
        for b in json.loads(out.stdout)["benchmarks"]:
            if b.get("run_type") == "aggregate": continue
            v = b.get("items_per_second") or b.get("p50_us")
            res.setdefault((name, b["name"]), []).append(v)
    print(f"round {r+1} done, load {os.getloadavg()}", file=sys.stderr, flush=True)
for (name, bench), vals in sorted(res.items(), key=lambda x: (x[0][1], x[0][0])):
    print(f"{bench:60s} {name:12s} median {statistics.median(vals):12.1f}  n={len(vals)}  min {min(vals):.1f} max {max(vals):.1f}")
print("load avg (1 min) over runs: min %.2f median %.2f max %.2f" % (min(loads), statistics.median(loads), max(loads)))
