#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and shows
# Tidings at work. Leaves nothing running and nothing behind but build/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target tidings_cli >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tidings() { build/cli/tidings --store "$work/device" --key-file "$work/device.key" "$@"; }

echo "== create an encrypted store (key file 0600 beside it)"
build/cli/tidings --store "$work/device" init --user dr-lee
echo
echo "== write messages to two conversations"
tidings send -c patient-42 "Good morning, how is the pain today?" >/dev/null
tidings send -c patient-42 "Please take 400 mg ibuprofen with food." >/dev/null
id=$(tidings send -c patient-42 "Next check-up: Tuesday 10:00")
tidings send -c clinic-staff "Room 3 is free after 14:00." >/dev/null
tidings edit "$id" "Next check-up: Wednesday 10:00" >/dev/null
echo
echo "== reopen and print them in order"
for c in patient-42 clinic-staff; do
  echo "-- $c"
  tidings log -c "$c"
done
echo
echo "== conversations by activity, and the outbox waiting for a network"
tidings conversations
tidings outbox
echo
echo "== nothing readable on disk"
if grep -rqa "ibuprofen" "$work/device"; then echo "plaintext found!"; exit 1; fi
echo "grep for 'ibuprofen' under the store: no match"
tidings verify
