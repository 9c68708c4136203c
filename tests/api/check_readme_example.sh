#!/usr/bin/env bash
# The README's C example must compile clean under -Wall -Wextra -Werror
# -pedantic, as C99 and as C++20: it is the idiom apps copy.
# Usage: check_readme_example.sh CC CXX README INCLUDE_DIR
set -euo pipefail
cc=$1 cxx=$2 readme=$3 include=$4
block=$(awk '/^```c$/ {on = 1; next} on && /^```$/ {exit} on {print}' "$readme")
if [[ -z "$block" ]]; then
  echo "check_readme_example: no \`\`\`c block in $readme"
  exit 1
fi
src=$(mktemp --suffix=.c)
trap 'rm -f "$src"' EXIT
cat >"$src" <<SRC
#include "tidings/tidings.h"
static int handle(tidings_code code, const char* message) { return (int)code + (message != 0); }
static void show(const tidings_message* message) { (void)message; }
int example(const char* path, const uint8_t key_bytes[TIDINGS_KEY_SIZE]);
int example(const char* path, const uint8_t key_bytes[TIDINGS_KEY_SIZE]) {
$block
  return 0;
}
SRC
flags=(-fsyntax-only -Wall -Wextra -Werror -pedantic -I "$include")
"$cc" -std=c99 "${flags[@]}" "$src"
"$cxx" -x c++ -std=c++20 "${flags[@]}" "$src"
echo "check_readme_example: the README's C example compiles clean as C99 and C++20"
