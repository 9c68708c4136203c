#!/usr/bin/env bash
# The library as an app developer meets it (docs/install.md): install into a
# temporary prefix, then build a C and a C++ app against the installed package
# with CMake (find_package) and with pkg-config, each linked with the shared
# and the static library, and run them - without LD_LIBRARY_PATH.
# Usage: install_test.sh CMAKE BUILD_DIR APP_SOURCE_DIR CC CXX PKG_CONFIG
set -euo pipefail
cmake=$1 build=$2 app=$3 cc=$4 cxx=$5 pkg_config=$6
unset LD_LIBRARY_PATH

work=$(mktemp -d "${TMPDIR:-/tmp}/tidings-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
fail() {
  echo "install_test: $*" >&2
  exit 1
}
quietly() {  # runs a command, showing its output only if it fails
  "$@" >"$work/step.log" 2>&1 || { cat "$work/step.log" >&2; fail "failed: $*"; }
}

quietly "$cmake" --install "$build" --prefix "$prefix"
export PKG_CONFIG_PATH="$(dirname "$(find "$prefix" -name tidings.pc)")"
libdir=$("$pkg_config" --variable=libdir tidings)
libdir=$(cd "$libdir" && pwd)  # tidings.pc names it relative to its own place

# What an app and an operator get.
for f in include/tidings/tidings.h include/tidings/tidings.hpp bin/tidings \
  bin/tidings-chime-local lib/systemd/system/tidings-daemon.service; do
  [[ -e $prefix/$f ]] || fail "not installed: $f"
done
[[ ! -e $prefix/include/tidings/status.h && ! -e $prefix/include/common ]] || fail "an internal header was installed"
for f in libtidings.a libtidings.so cmake/Tidings/TidingsConfig.cmake \
  cmake/Tidings/TidingsConfigVersion.cmake; do
  [[ -e $libdir/$f ]] || fail "not installed: $libdir/$f"
done
grep -q "^ExecStart=/.*/bin/tidings daemon " \
  "$prefix/lib/systemd/system/tidings-daemon.service" || fail "the unit does not start bin/tidings"
soname=$(readelf -d "$libdir/libtidings.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libtidings.so.[0-9]* && -e $libdir/$soname ]] || fail "SONAME '$soname' not installed"

# The installed library and binaries find what they need by themselves.
for f in "$libdir/libtidings.so" "$prefix/bin/tidings" "$prefix/bin/tidings-chime-local"; do
  if ldd "$f" | grep -q "not found"; then
    ldd "$f" >&2
    fail "$f does not find its libraries without LD_LIBRARY_PATH"
  fi
done
quietly "$prefix/bin/tidings" --help
quietly "$prefix/bin/tidings-chime-local" --help

# Runs one app in a fresh directory; a static app must not need libtidings.so.
run_app() {
  local exe=$1 kind=$2 dir
  if readelf -d "$exe" | grep -q "NEEDED.*libtidings"; then
    [[ $kind == shared ]] || fail "$exe was linked statically but needs libtidings.so"
  else
    [[ $kind == static ]] || fail "$exe was linked with the shared library but does not need it"
  fi
  dir=$(mktemp -d "$work/run.XXXXXX")
  "$exe" "$dir" >"$work/step.log" 2>&1 || { cat "$work/step.log" >&2; fail "$exe failed"; }
  echo "install_test: $(basename "$(dirname "$exe")")/$(basename "$exe"): $(cat "$work/step.log")"
}

# find_package(Tidings), from a C project and from a C++ one.
for lang in C CXX; do
  quietly "$cmake" -S "$app" -B "$work/cmake-$lang" -DAPP_LANGUAGE=$lang \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx"
  quietly "$cmake" --build "$work/cmake-$lang" -j2
done
for kind in shared static; do
  run_app "$work/cmake-C/app_c_$kind" $kind
  run_app "$work/cmake-CXX/app_cpp_$kind" $kind
done

# pkg-config. With both libraries installed the linker takes the shared one
# for -ltidings; the archive is named as -l:libtidings.a. An app linking the
# shared library from a prefix outside the linker's search path records it
# (-rpath), as any app does.
read -ra cflags <<<"$("$pkg_config" --cflags tidings)"
read -ra shared <<<"$("$pkg_config" --libs tidings)"
read -ra static <<<"$("$pkg_config" --static --libs tidings)"
static=("${static[@]/#-ltidings/-l:libtidings.a}")
mkdir "$work/pc-app"
quietly "$cc" -std=c99 -Wall -Wextra -Werror -pedantic "$app/app.c" "${cflags[@]}" \
  -o "$work/pc-app/app_c_shared" "${shared[@]}" -Wl,-rpath,"$libdir"
quietly "$cc" -std=c99 -Wall -Wextra -Werror -pedantic "$app/app.c" "${cflags[@]}" \
  -o "$work/pc-app/app_c_static" "${static[@]}"
quietly "$cxx" -std=c++20 -Wall -Wextra -Werror -pedantic "$app/app.cc" "${cflags[@]}" \
  -o "$work/pc-app/app_cpp_shared" "${shared[@]}" -Wl,-rpath,"$libdir"
quietly "$cxx" -std=c++20 -Wall -Wextra -Werror -pedantic "$app/app.cc" "${cflags[@]}" \
  -o "$work/pc-app/app_cpp_static" "${static[@]}"
for kind in shared static; do
  run_app "$work/pc-app/app_c_$kind" $kind
  run_app "$work/pc-app/app_cpp_$kind" $kind
done
echo "install_test: ok"
