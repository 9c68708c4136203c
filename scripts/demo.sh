#!/usr/bin/env bash
# The README's first command: two devices work offline, then converge through
# a local DynamoDB (moto_server on 127.0.0.1). No AWS account needed; nothing
# is left running or behind but build/.
set -euo pipefail
cd "$(dirname "$0")/.."
# TIDINGS_DEMO_BIN: an already built `tidings` (the test suite runs the demo so).
bin=${TIDINGS_DEMO_BIN:-build/cli/tidings}
if [ -z "${TIDINGS_DEMO_BIN:-}" ]; then
  bash scripts/setup.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)" --target tidings_cli >/dev/null
fi

work=$(mktemp -d)
moto_pid=""
cleanup() {
  [ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null && wait "$moto_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
  sleep 0.1
done
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port" AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo-secret
doctor() { "$bin" --store "$work/doctor" --key-file "$work/doctor.key" "$@"; }
patient() { "$bin" --store "$work/patient" --key-file "$work/patient.key" "$@"; }

echo "== a local DynamoDB on 127.0.0.1:$port, and two devices with encrypted stores"
"$bin" dynamodb create-table
"$bin" --store "$work/doctor" init --user dr-lee >/dev/null
"$bin" --store "$work/patient" init --user ana >/dev/null
doctor conversation visit-42 --title "Follow-up visit" --member dr-lee --member ana

echo "== both offline: each writes, edits and deletes locally"
doctor send -c visit-42 "Good morning Ana, how is the pain today?" >/dev/null
patient send -c visit-42 "Hi doctor, better since yesterday." >/dev/null
typo=$(doctor send -c visit-42 "Please take 400 mg ibuprofen with fod.")
doctor edit "$typo" "Please take 400 mg ibuprofen with food." >/dev/null
oops=$(patient send -c visit-42 "(sent to the wrong chat)")
patient delete "$oops"
patient send -c visit-42 "Can we move the check-up to Wednesday?" >/dev/null
doctor send -c visit-42 "Wednesday 10:00 works." >/dev/null
echo "doctor outbox: $(doctor outbox | wc -l) operations; patient outbox: $(patient outbox | wc -l)"

echo "== online: each device syncs (push its outbox, pull the other's)"
doctor sync
patient sync
doctor sync

echo "== both conversations, side by side: the same messages in the same order"
doctor log -c visit-42 | cut -c26- >"$work/a.txt"
patient log -c visit-42 | cut -c26- >"$work/b.txt"
printf '%-60s | %s\n' "doctor's device" "patient's device"
paste -d'|' "$work/a.txt" "$work/b.txt" | awk -F'|' '{ printf "%-60.60s | %s\n", $1, $2 }'
if cmp -s "$work/a.txt" "$work/b.txt"; then echo "converged: identical"; else echo "NOT converged"; exit 1; fi
if grep -rqa "ibuprofen" "$work/doctor" "$work/patient"; then echo "plaintext on disk!"; exit 1; fi
echo "nothing readable on disk: grep for 'ibuprofen' in both stores finds nothing"
