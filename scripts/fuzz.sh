#!/usr/bin/env bash
# Long fuzz runs (docs/TESTING.md, "Fuzzing"). CI runs each target for a few
# seconds (ctest -L fuzz in the sanitizer build); this runs them for longer.
#   scripts/fuzz.sh TARGET SECONDS   one target (records, operation_codec, ...)
#   scripts/fuzz.sh all SECONDS      every target in turn, SECONDS each
#   scripts/fuzz.sh --seeds          rewrite fuzz/corpus/ from this build's encoders
# Builds in $FUZZ_BUILD_DIR (default build-asan, the tree `scripts/test.sh
# --sanitize` uses). New inputs go to $FUZZ_BUILD_DIR/fuzz/work/TARGET/new and
# crashes to $FUZZ_BUILD_DIR/fuzz/work/TARGET/crash-*; a crash fixed becomes a
# seed in fuzz/corpus/TARGET/ (named regression-*), so every later run
# replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${FUZZ_BUILD_DIR:-build-asan}
targets=(records operation_codec dynamodb_items chime_json messaging_events e2e_frames daemon_frames
  store_header key_file search_text s3_xml attachment_object)

# The same configuration as scripts/test.sh --sanitize, so both share the
# tree; a tree configured with GCC starts over.
if [[ -f "$build_dir/CMakeCache.txt" ]] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang' "$build_dir/CMakeCache.txt"; then
  rm -rf "$build_dir"
fi
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ -DTIDINGS_FUZZ=ON -DTIDINGS_BUILD_BENCH=OFF >/dev/null

if [[ "${1:-}" == "--seeds" ]]; then
  cmake --build "$build_dir" -j"$(nproc)" --target tidings_fuzz_seeds
  "$build_dir/fuzz/tidings_fuzz_seeds" fuzz/corpus
  exit 0
fi
target=${1:?usage: scripts/fuzz.sh TARGET|all SECONDS | --seeds}
seconds=${2:?usage: scripts/fuzz.sh TARGET|all SECONDS | --seeds}
[[ "$target" == all ]] && run=("${targets[@]}") || run=("$target")

cmake --build "$build_dir" -j"$(nproc)" --target "${run[@]/%/_fuzz}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in "${run[@]}"; do
  work="$build_dir/fuzz/work/$t"
  mkdir -p "$work/new"
  echo "fuzz: $t for $seconds s"
  "$build_dir/fuzz/${t}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/" "$work/new" "fuzz/corpus/$t"
done
