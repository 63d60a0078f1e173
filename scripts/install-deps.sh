#!/usr/bin/env bash
# Installs every build and test dependency of sandboxd from Debian bookworm's packages.
# Idempotent: packages already present are not touched, and apt's lists are refreshed
# only when something is missing. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential g++ cmake ninja-build ccache pkg-config git curl ca-certificates
  libboost1.81-dev libboost-json1.81-dev libboost-program-options1.81-dev libboost-url1.81-dev
  libssl-dev libsqlite3-dev sqlite3 libyaml-cpp-dev node-llhttp libfmt-dev zlib1g-dev
  libgtest-dev libgmock-dev googletest
  chromium python3
)

# ACME (acme/ and tests/acme_lab/): ldns builds the RFC 2136 updates with TSIG; BIND9 and
# pebble are the lab peers the acme tests start themselves; lego is the reference client.
packages+=(libldns-dev bind9 bind9-utils bind9-dnsutils pebble lego)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# libboost1.81-dev conflicts with Debian's default 1.74 headers.
if dpkg-query -W -f='${Status}' libboost1.74-dev 2>/dev/null | grep -q 'install ok installed'; then
  $sudo apt-get remove -y libboost1.74-dev
fi
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
