#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
#   scripts/test.sh              release build with debug info, in build/
#   scripts/test.sh --sanitize   clang ASan + UBSan build of the tests and the
#                                fuzz targets (smoke runs, label fuzz), in build-asan/;
#                                every test but the long whole-system runs
#                                (label long; TIDINGS_SANITIZE_LONG=1 runs them too)
#   scripts/test.sh --tsan       clang ThreadSanitizer build of the engine, sync
#                                and daemon tests, in build-tsan/
# Long soak and fuzz runs are behind TIDINGS_SOAK=1 and scripts/fuzz.sh (see
# docs/TESTING.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

mode=${1:-}
build_dir=build
ctest_args=()
# Line tables only (-g1): stack traces and sanitizer reports keep file and
# line, and GCC compiles a unit 22 to 29 % faster than with full -g
# (docs/TESTING.md, "CI time").
# Unity builds: each target's files compile in batches of 16 as one unit, so
# the headers they share are parsed once; a cold build takes about half the
# CPU (docs/TESTING.md, "CI time"). A plain `cmake` build compiles each file
# alone, which is what catches a missing include.
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" -DCMAKE_UNITY_BUILD=ON
  -DCMAKE_UNITY_BUILD_BATCH_SIZE=16)
clang=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++)
case "$mode" in
  "") ;;
  --sanitize)
    build_dir=build-asan
    cmake_args+=("${clang[@]}" -DTIDINGS_FUZZ=ON -DTIDINGS_BUILD_BENCH=OFF)
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    export TIDINGS_SANITIZED=1
    # The long whole-system runs (kill loops, the real-time and outage
    # scenarios, the moto conformance suite...) drive the same code as the
    # shorter end-to-end tests that run here; the release step runs them all
    # (docs/TESTING.md, "CI time").
    [[ "${TIDINGS_SANITIZE_LONG:-}" == 1 ]] || ctest_args+=(-LE '^long$')
    ;;
  --tsan)
    build_dir=build-tsan
    cmake_args+=("${clang[@]}" -DTIDINGS_TSAN=ON -DTIDINGS_BUILD_BENCH=OFF)
    ;;
  *)
    echo "usage: scripts/test.sh [--sanitize | --tsan]" >&2
    exit 2
    ;;
esac

# A tree configured with another compiler (build-asan/ was GCC's) starts over:
# CMake would drop the other options along with the old cache.
cache="$build_dir/CMakeCache.txt"
if [[ -n "$mode" && -f "$cache" ]] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang' "$cache"; then
  rm -rf "$build_dir"
fi

jobs=$(nproc)
cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
if [[ "$mode" == "--tsan" ]]; then
  exec bash scripts/tsan.sh "$build_dir"
fi
cmake --build "$build_dir" -j"$jobs"
# A failed test runs once more (docs/TESTING.md says why it was added and
# what closed that race); a real failure fails both runs, and CTest names
# every test that needed the second.
ctest --test-dir "$build_dir" --output-on-failure -j"$jobs" --timeout 900 --repeat until-pass:2 \
  "${ctest_args[@]}"
