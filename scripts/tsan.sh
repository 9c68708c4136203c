#!/usr/bin/env bash
# The ThreadSanitizer run (scripts/test.sh --tsan configures BUILD_DIR): builds
# only the tests of the code that runs threads - the engine (RocksDB's
# background threads call our file cipher), the sync engines, attachments'
# transfers (parts side by side) and the daemon - and runs each gtest binary
# as one shard per core, side by side, then the daemon end to end. Races
# inside the uninstrumented Debian libraries are suppressed by tests/tsan.supp,
# never races in our code (docs/TESTING.md, "ThreadSanitizer").
#   scripts/tsan.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:?usage: scripts/tsan.sh BUILD_DIR}

gtests=(
  tests/engine/tidings_engine_test
  tests/sync/tidings_sync_engine_test
  tests/sync/tidings_realtime_engine_test
  tests/sync/tidings_reconciler_test
  tests/sync/tidings_e2e_sync_test
  tests/daemon/tidings_daemon_unit_test
  tests/attachments/tidings_attachments_test
  tests/api/tidings_api_internal_test
)
targets=(tidings_cli)
for t in "${gtests[@]}"; do targets+=("$(basename "$t")"); done
cmake --build "$build_dir" -j"$(nproc)" --target "${targets[@]}"

export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp ${TSAN_OPTIONS:-}"
export TIDINGS_SANITIZED=1
failed=()
shards=$(nproc)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# One gtest shard (GTEST_TOTAL_SHARDS) of a binary, its output in $logs/<i>;
# a hung shard is stopped after 900 s, CTest's limit in the other steps.
shard() {
  GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$2 timeout 900 "$build_dir/$1" --gtest_brief=1 \
    >"$logs/$2" 2>&1
}
# Each binary runs as one shard per core, side by side. A shard that failed
# without a race report runs once more, as CTest reruns a failed test in the
# other builds (a timing assertion under TSan's slowdown); a race report is
# never retried.
for t in "${gtests[@]}"; do
  echo "tsan: $t"
  pids=()
  for ((i = 0; i < shards; i++)); do
    shard "$t" "$i" &
    pids+=($!)
  done
  for ((i = 0; i < shards; i++)); do
    rc=0
    wait "${pids[$i]}" || rc=$?
    cat "$logs/$i"
    ((rc)) || continue
    if grep -q "ThreadSanitizer" "$logs/$i"; then
      failed+=("$t (shard $i of $shards)")
    elif shard "$t" "$i"; then
      cat "$logs/$i"
      echo "tsan: $t shard $i of $shards passed on a second run (no race was reported on the first)"
    else
      cat "$logs/$i"
      failed+=("$t (shard $i of $shards)")
    fi
  done
done
ctest --test-dir "$build_dir" --output-on-failure --timeout 900 -R '^daemon\.end_to_end$' ||
  failed+=(daemon.end_to_end)
if ((${#failed[@]})); then
  echo "tsan: failed: ${failed[*]}" >&2
  exit 1
fi
echo "tsan: no races"
