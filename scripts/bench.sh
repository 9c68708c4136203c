#!/usr/bin/env bash
# Builds the benchmarks (Release) and runs them side by side; figures go to
# bench/RESULTS.md by hand with this command line. TIDINGS_BENCH_MESSAGES sets
# the fixture size (default 1,000,000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DTIDINGS_BUILD_TESTS=OFF >/dev/null
cmake --build build-bench -j"$(nproc)" --target tidings_store_bench tidings_sqlite_bench \
  tidings_sqlcipher_bench tidings_merge_bench tidings_dynamodb_bench
out=build-bench/results
mkdir -p "$out"
# The store suite runs each case 7 times, Tidings and raw RocksDB repetitions
# interleaved at random, and reports medians: this 2-vCPU machine's noisy
# neighbours move single runs by up to 40% (coefficients of variation of
# 10-40% over 3 repetitions), and they now hit both sides alike.
build-bench/bench/engine/tidings_store_bench --benchmark_min_time=0.5 --benchmark_repetitions=7 \
  --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true \
  --benchmark_out="$out/store.json" --benchmark_out_format=json | tee "$out/store.txt"
for b in sqlite sqlcipher; do
  build-bench/bench/engine/tidings_${b}_bench --benchmark_min_time=1 \
    --benchmark_out="$out/$b.json" --benchmark_out_format=json | tee "$out/$b.txt"
done
build-bench/bench/sync/tidings_merge_bench --benchmark_min_time=0.5 --benchmark_repetitions=7 \
  --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true \
  --benchmark_out="$out/merge.json" --benchmark_out_format=json | tee "$out/merge.txt"
python3 bench/dynamodb/run.py build-bench/bench/dynamodb/tidings_dynamodb_bench 5000 | tee "$out/dynamodb.txt"
