#!/usr/bin/env bash
# How tests/engine/data/schema-v1-store was made: with the `tidings` CLI as of
# commit a6f471e, the last one before schema v2 (outbox entries that refer to
# the message body). Kept so a store written by that release's real code, not
# by a simulation of it, is what the compatibility test opens.
#
#   git worktree add /tmp/v1 a6f471e && cmake -S /tmp/v1 -B /tmp/v1/build \
#     -DCMAKE_BUILD_TYPE=Release -DTIDINGS_BUILD_TESTS=OFF -DTIDINGS_BUILD_BENCH=OFF
#   cmake --build /tmp/v1/build --target tidings_cli
#   bash make_schema_v1_store.sh /tmp/v1/build/cli/tidings
set -euo pipefail
T=$1
out=$(cd "$(dirname "$0")" && pwd)/schema-v1-store
rm -rf "$out" "$out.key"
export TIDINGS_STORE=$out TIDINGS_KEY_FILE=$out.key
"$T" init --user alice
"$T" conversation ward-7 --title "Ward 7" --member alice --member dr-bob
first=$("$T" --json send -c ward-7 "first, as typed" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
second=$("$T" --json send -c ward-7 "second" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
third=$("$T" --json send -c ward-7 "third" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$T" edit "$first" "first, edited"
"$T" delete "$second"
"$T" react "$third" ok
"$T" send -c clinic "hello clinic"
"$T" mark-read -c ward-7
"$T" verify
# The key file stays beside the store; the test copies both and makes the key 0600.
