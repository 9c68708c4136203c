#!/usr/bin/env bash
# libtidings.so must export exactly the C API: no C++, RocksDB or libsodium
# symbols an app could bind to by accident, every function the public C
# headers declare, and nothing they no longer declare (a removed or renamed
# function must leave the library too).
# Usage: check_exports.sh LIBRARY INCLUDE_DIR   (reads INCLUDE_DIR/*.h)
set -euo pipefail
lib=$1
include_dir=$2
syms=$(nm -D --defined-only "$lib" | awk '{print $NF}' | sort -u)
others=$(grep -v '^tidings_' <<<"$syms" || true)
if [[ -n "$others" ]]; then
  echo "check_exports: $lib exports symbols outside the C API:"
  head -20 <<<"$others"
  exit 1
fi
headers=("$include_dir"/*.h)
# Functions the headers declare, less the static inline ones (initialisers,
# key-source builders), which live in the caller's code.
declared=$(cat "${headers[@]}" | grep -oE '\btidings_[a-z0-9_]+\(' | tr -d '(' | sort -u)
inline=$(cat "${headers[@]}" | grep -oE 'static inline [^(]*\btidings_[a-z0-9_]+\(' |
  grep -oE 'tidings_[a-z0-9_]+\($' | tr -d '(' | sort -u)
api=$(comm -23 <(echo "$declared") <(echo "$inline"))
missing=$(comm -23 <(echo "$api") <(echo "$syms"))
if [[ -n "$missing" ]]; then
  echo "check_exports: declared in ${headers[*]} but not exported:" $missing
  exit 1
fi
stale=$(comm -13 <(echo "$api") <(echo "$syms"))
if [[ -n "$stale" ]]; then
  echo "check_exports: exported but declared in no public header:" $stale
  exit 1
fi
count=$(wc -l <<<"$api")
if ((count < 30)); then
  echo "check_exports: only $count tidings_* functions declared; expected the whole API"
  exit 1
fi
echo "check_exports: $count symbols, exactly the C API of ${headers[*]}"
