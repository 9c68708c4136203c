#!/usr/bin/env bash
# Installs everything Tidings needs on a fresh Debian 12 machine. Idempotent:
# packages already present are not reinstalled, and nothing is downloaded at
# build time.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git python3 python3-pip
  librocksdb-dev libsodium-dev libsimdjson-dev libcurl4-openssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libcpp-httplib-dev libssl-dev
  libsqlite3-dev libsqlcipher-dev zlib1g-dev libtomlplusplus-dev
  libboost-dev libboost-system-dev openssl
  clang-format
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
