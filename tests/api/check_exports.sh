#!/usr/bin/env bash
# libtidings.so must export the C API and nothing else (no C++, RocksDB or
# libsodium symbols an app could bind to by accident).
set -euo pipefail
lib=$1
syms=$(nm -D --defined-only "$lib" | awk '{print $NF}')
count=$(grep -c '^tidings_' <<<"$syms" || true)
others=$(grep -v '^tidings_' <<<"$syms" || true)
if [[ -n "$others" ]]; then
  echo "check_exports: $lib exports symbols outside the C API:"
  head -20 <<<"$others"
  exit 1
fi
# The API is all there: every function declared in the headers (the
# arguments after the library) is exported, except the static inline helpers.
shift
declared=$(cat "$@" | grep -oE '\btidings_[a-z_]+\(' | tr -d '(' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$syms" | sort -u) |
  grep -vE '^tidings_key_(raw|passphrase|file)$|_init$' || true)
if [[ -n "$missing" ]]; then
  echo "check_exports: declared in $* but not exported: $missing"
  exit 1
fi
if (( count < 30 )); then
  echo "check_exports: only $count tidings_* symbols; expected the whole API"
  exit 1
fi
echo "check_exports: $count symbols, all tidings_*"
