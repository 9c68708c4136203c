#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
#   scripts/test.sh              release build with debug info, in build/
#   scripts/test.sh --sanitize   ASan + UBSan build of the tests, in build-asan/
# Long soak and fuzz runs are behind TIDINGS_SOAK=1 (see docs/TESTING.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [[ "${1:-}" == "--sanitize" ]]; then
  build_dir=build-asan
  cmake_args+=(-DTIDINGS_SANITIZE=ON -DTIDINGS_BUILD_BENCH=OFF)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  export TIDINGS_SANITIZED=1
fi

jobs=$(nproc)
cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" -j"$jobs"
# A failed test runs once more (docs/TESTING.md says why it was added and
# what closed that race); a real failure fails both runs, and CTest names
# every test that needed the second.
ctest --test-dir "$build_dir" --output-on-failure -j"$jobs" --timeout 900 --repeat until-pass:2
