#!/usr/bin/env bash
# Installs everything Tidings needs on a fresh Debian 12 machine. Idempotent:
# packages already present are not reinstalled, and nothing is downloaded at
# build time.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git python3 python3-pip
  librocksdb-dev libsodium-dev libsimdjson-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libcpp-httplib-dev libssl-dev openssl
  libboost-dev libboost-system-dev
  libsqlite3-dev libsqlcipher-dev zlib1g-dev libtomlplusplus-dev
  libutf8proc-dev libstemmer-dev libexpat1-dev
  clang-format faketime clang libclang-rt-14-dev lld
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The DynamoDB tests run against moto_server and the Chime emulator is checked
# with boto3; both are Python packages that Debian 12 does not ship at usable
# versions.
if ! command -v moto_server >/dev/null 2>&1 || ! python3 -c "import boto3, botocore, moto" >/dev/null 2>&1; then
  echo "setup: installing moto[server] and boto3 with pip"
  python3 -m pip install --quiet "moto[server]" boto3 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages "moto[server]" boto3
fi

# tests/js runs the official Chime SDK for JavaScript (amazon-chime-sdk-js)
# against the emulator under Node 20+ (Debian 12's nodejs is 18: too old for
# the SDK). Its packages come from the npm registry, pinned by
# tests/js/package-lock.json; without node and npm that test is skipped.
js_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/js"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  if [ ! -d "$js_dir/node_modules/amazon-chime-sdk-js" ] ||
    [ "$js_dir/package-lock.json" -nt "$js_dir/node_modules/.package-lock.json" ]; then
    echo "setup: npm ci in tests/js"
    (cd "$js_dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) ||
      echo "setup: npm ci failed in tests/js; its test will be skipped" >&2
  fi
else
  echo "setup: no node/npm (Node 20+): the tests/js Chime SDK for JavaScript test will be skipped"
fi
