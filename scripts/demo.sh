#!/usr/bin/env bash
# The README's first command: two devices work offline, then come online and
# converge through local backends - the Chime SDK Messaging emulator
# (tidings-chime-local) for delivery and, when moto is installed, a
# local DynamoDB for persistence - each device running `tidings daemon` as a
# kiosk would. No AWS account needed; everything listens on 127.0.0.1 only and
# nothing is left running or behind but build/.
set -euo pipefail
cd "$(dirname "$0")/.."
# TIDINGS_DEMO_BIN / TIDINGS_DEMO_CHIME_BIN: already built binaries (the test
# suite runs the demo so).
bin=${TIDINGS_DEMO_BIN:-build/cli/tidings}
chime_bin=${TIDINGS_DEMO_CHIME_BIN:-build/emulator/chime/tidings-chime-local}
if [ -z "${TIDINGS_DEMO_BIN:-}" ]; then
  bash scripts/setup.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc)" --target tidings_cli tidings-chime-local >/dev/null
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Waits (up to 10 s) for a line matching $2 in file $1; prints the line.
wait_for_line() {
  for _ in $(seq 200); do
    if grep -m1 "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "demo: timed out waiting for '$2' in $1:" >&2
  cat "$1" >&2
  return 1
}

export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIDTIDINGSDEMO AWS_SECRET_ACCESS_KEY=demo-secret
app=arn:aws:chime:us-east-1:123456789012:app-instance/tidings-demo

# The emulator serves Chime's messaging WebSocket over TLS with a certificate
# from a throwaway CA made here; the devices trust it through AWS_CA_BUNDLE,
# as they would a private CA.
tls() { openssl "$@" >/dev/null 2>&1; }
tls req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.key" -out "$work/ca.pem" -days 1 \
  -subj "/CN=tidings demo CA"
tls req -newkey rsa:2048 -nodes -keyout "$work/tls.key" -out "$work/tls.csr" -subj "/CN=127.0.0.1"
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
  >"$work/tls.cnf"
tls x509 -req -in "$work/tls.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -out "$work/tls.pem" -days 1 -extfile "$work/tls.cnf"
export AWS_CA_BUNDLE=$work/ca.pem

# The secret through the environment: argv is visible to every user (ps).
TIDINGS_CHIME_LOCAL_SECRET_KEY=$AWS_SECRET_ACCESS_KEY \
  "$chime_bin" --port 0 --access-key "$AWS_ACCESS_KEY_ID" \
  --tls-cert "$work/tls.pem" --tls-key "$work/tls.key" >"$work/chime.out" 2>"$work/chime.log" &
pids+=($!)
chime_url=$(wait_for_line "$work/chime.out" "listening on" | awk '{ print $NF }')
backends=chime
echo "== local backends on 127.0.0.1: Chime SDK Messaging emulator at $chime_url (and its messaging WebSocket)"
if python3 -c "import moto" >/dev/null 2>&1; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 tests/common/moto_server.py -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
    sleep 0.1
  done
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
  echo "   and DynamoDB (moto, tests/common/moto_server.py) at $AWS_ENDPOINT_URL_DYNAMODB: $("$bin" dynamodb create-table)"
  backends=chime,dynamodb
else
  echo "   (moto is not installed: Chime only; scripts/setup.sh installs it)"
fi

doctor() { "$bin" --store "$work/doctor" --key-file "$work/doctor.key" "$@"; }
patient() { "$bin" --store "$work/patient" --key-file "$work/patient.key" "$@"; }

echo "== two devices, each with its own encrypted store"
"$bin" --store "$work/doctor" init --user dr-lee >/dev/null
"$bin" --store "$work/patient" init --user ana >/dev/null
doctor conversation visit-42 --title "Follow-up visit" --member dr-lee --member ana
patient conversation visit-42 --title "Follow-up visit" --member dr-lee --member ana

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

# Converged: the same messages in the same order on both, both outboxes empty.
converged() {
  doctor log -c visit-42 | cut -c26- >"$work/a.txt" &&
    patient log -c visit-42 | cut -c26- >"$work/b.txt" &&
    cmp -s "$work/a.txt" "$work/b.txt" &&
    [ -z "$(doctor outbox)" ] && [ -z "$(patient outbox)" ]
}
wait_converged() {
  for _ in $(seq 300); do
    converged && return 0
    sleep 0.1
  done
  echo "demo: the devices did not converge in 30 s; daemon logs:" >&2
  cat "$work"/*-daemon.log >&2
  return 1
}

echo "== online: each device starts its sync daemon ($backends; Chime's WebSocket delivers, polling every 200 ms only while it is down)"
start_daemon() {  # device user
  TIDINGS_DAEMON_SYNC_BACKENDS=$backends TIDINGS_DAEMON_SYNC_ACTIVE_POLL_MS=200 \
    TIDINGS_DAEMON_SYNC_BASE_BACKOFF_MS=100 \
    TIDINGS_DAEMON_CHIME_APP_INSTANCE_ARN=$app TIDINGS_DAEMON_CHIME_USER_ARN=$app/user/$2 \
    TIDINGS_DAEMON_CHIME_ENDPOINT=$chime_url \
    "$bin" --store "$work/$1" --key-file "$work/$1.key" daemon --log-format json \
    2>"$work/$1-daemon.log" &
  pids+=($!)
}
start_daemon doctor dr-lee
start_daemon patient ana
started=$(date +%s%N)
wait_converged
echo "converged after $((($(date +%s%N) - started) / 1000000)) ms"

echo "== online: the patient sends; the daemon delivers it to the doctor's device"
sent=$(date +%s%N)
patient send -c visit-42 "Thank you, see you Wednesday!" >/dev/null
wait_converged
echo "on the doctor's device after $((($(date +%s%N) - sent) / 1000000)) ms (the two CLI runs that check included)"
echo "== the doctor's sync status, per backend (read while the daemon runs)"
doctor status

for p in "${pids[@]:1}"; do kill -TERM "$p" 2>/dev/null || true; done  # daemons (and moto)
for p in "${pids[@]:1}"; do wait "$p" 2>/dev/null || true; done

echo "== both conversations, side by side: the same messages in the same order"
converged
printf '%-60s | %s\n' "doctor's device" "patient's device"
paste -d'|' "$work/a.txt" "$work/b.txt" | awk -F'|' '{ printf "%-60.60s | %s\n", $1, $2 }'
if cmp -s "$work/a.txt" "$work/b.txt"; then echo "converged: identical"; else echo "NOT converged"; exit 1; fi
if grep -rqa "ibuprofen" "$work/doctor" "$work/patient"; then echo "plaintext on disk!"; exit 1; fi
echo "nothing readable on disk: grep for 'ibuprofen' in both stores finds nothing"
if grep -qa "ibuprofen\|$AWS_SECRET_ACCESS_KEY" "$work"/*-daemon.log; then
  echo "message text or a secret in a daemon log!"
  exit 1
fi
