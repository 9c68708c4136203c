#!/usr/bin/env bash
# Runs the search suites (Tidings, SQLite FTS5 and FTS4, SQLCipher FTS4) and prints
# the tables of bench/RESULTS.md's "Search" section from the medians.
#
#   bench/search/run.sh [BUILD_DIR [SUITE...]]
#
# BUILD_DIR defaults to build; SUITEs are tidings, sqlite (FTS5), sqlite_fts4
# and sqlcipher (FTS4), all four by default; "report" runs none and prints
# the tables of the JSON already there. Raw JSON goes to BUILD_DIR/results/search-N (N: the
# fixture size), and the tables come from every suite's JSON there, so a
# later run of one suite is compared with the others' earlier run.
#
# TIDINGS_BENCH_MESSAGES: fixture size (default 1,000,000; develop with
# 20000). TIDINGS_BENCH_QUERY_ITERATIONS: timed queries per repetition
# (default 200). TIDINGS_BENCH_REPETITIONS: repetitions, interleaved at
# random within each suite (default 5). Fixtures are kept under
# $TIDINGS_BENCH_DIR/tidings-search-bench (default /tmp) for the next run;
# TIDINGS_BENCH_REBUILD=1 rebuilds them.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
shift || true
suites=("${@:-tidings sqlite sqlite_fts4 sqlcipher}")
out=$build/results/search-${TIDINGS_BENCH_MESSAGES:-1000000}
mkdir -p "$out"
for name in ${suites[*]}; do
  case $name in
    report) continue ;;
    tidings) suite=tidings_search_bench ;;
    sqlite | sqlite_fts4 | sqlcipher) suite=tidings_search_${name}_bench ;;
    *) echo "unknown suite $name (tidings, sqlite, sqlite_fts4, sqlcipher, report)" >&2 && exit 2 ;;
  esac
  "$build/bench/search/$suite" --benchmark_min_time=0.5 \
    --benchmark_repetitions="${TIDINGS_BENCH_REPETITIONS:-5}" \
    --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true \
    --benchmark_out="$out/$suite.json" --benchmark_out_format=json | tee "$out/$suite.txt"
done
python3 - "$out"/*.json <<'PY'
import json, re, sys
rows = {}  # (benchmark, engine) -> counters of the median
for path in sys.argv[1:]:
    for b in json.load(open(path))["benchmarks"]:
        # The median of the repetitions; a single repetition has no aggregates.
        if b.get("aggregate_name", "median") != "median":
            continue
        if b.get("run_type") == "iteration" and b.get("repetitions", 1) > 1:
            continue
        name = re.sub(r"/(iterations:\d+|manual_time|real_time)", "", b["run_name"])
        engine = b.get("label", "").split(" index")[0]
        rows[(name, engine)] = b
engines = ["tidings", "sqlite_fts5", "sqlite_fts4", "sqlcipher_fts4"]
def get(name, engine, key):
    b = rows.get((name, engine))
    return b.get(key) if b else None
def fmt(v, digits=0):
    return "-" if v is None else f"{v:,.{digits}f}"
def ratio(a, b):
    return "-" if a is None or b is None or a == 0 else f"{b / a:.1f}x"
# Cells: wall-clock p50 / p99 (CPU p50) in microseconds; ratios: wall p50 (CPU p50).
print("\n| query | matches | Tidings | SQLite FTS5 | SQLite FTS4 | SQLCipher FTS4 | FTS5 / Tidings p50 (target >= 1) | SQLCipher / Tidings p50 (target >= 2) |")
print("|---|---|---|---|---|---|---|---|")
for q in ["rare", "common", "two_terms", "prefix", "phrase", "folded"]:
    n = f"BM_Search/{q}"
    cells = [f"{fmt(get(n, e, 'p50_us'))} / {fmt(get(n, e, 'p99_us'))} ({fmt(get(n, e, 'cpu_p50_us'))})"
             for e in engines]
    both = lambda e, k: f"{ratio(get(n, 'tidings', k), get(n, e, k))}"
    # Every engine should find the same messages; a difference shows as a/b/c.
    found = [get(n, e, "matches") for e in engines]
    seen = sorted({m for m in found if m is not None})
    matches = fmt(seen[0]) if len(seen) == 1 else "/".join(fmt(m) for m in found)
    print(f"| {q} | {matches} | " + " | ".join(cells) +
          f" | {both('sqlite_fts5', 'p50_us')} ({both('sqlite_fts5', 'cpu_p50_us')})"
          f" | {both('sqlcipher_fts4', 'p50_us')} ({both('sqlcipher_fts4', 'cpu_p50_us')}) |")
print("\n| append (msg/s) | index off | index on | on / off (Tidings target >= 0.8x) |")
print("|---|---|---|---|")
for e in engines:
    for batch in (1, 100):
        off = get(f"BM_SearchAppend/batch:{batch}/index:0", e, "items_per_second")
        on = get(f"BM_SearchAppend/batch:{batch}/index:1", e, "items_per_second")
        r = "-" if not off or not on else f"{on / off:.2f}x"
        print(f"| {e}, batch {batch} | {fmt(off)} | {fmt(on)} | {r} |")
print("\n| size (MB) | message text | store without index | store with index | index | index / text | build (s) |")
print("|---|---|---|---|---|---|---|")
t = lambda k: get("BM_SearchIndexSize", "tidings", k)
print(f"| tidings | {fmt(t('body_MB'), 1)} | {fmt(t('store_noindex_MB'), 1)} | {fmt(t('store_MB'), 1)} | "
      f"{fmt(t('index_MB'), 1)} | {ratio(t('body_MB'), t('index_MB'))} | "
      f"{fmt(t('build_s'), 1)} (without index {fmt(t('build_noindex_s'), 1)}) |")
for e in engines[1:]:
    s = lambda k: get("BM_SearchIndexSize", e, k)
    print(f"| {e} | {fmt(s('body_MB'), 1)} | {fmt(s('db_noindex_MB'), 1)} | {fmt(s('db_MB'), 1)} | "
          f"{fmt(s('fts_MB'), 1)} | {ratio(s('body_MB'), s('fts_MB'))} | "
          f"{fmt(s('fts_build_s'), 1)} index rebuild (messages {fmt(s('data_s'), 1)}) |")
PY
