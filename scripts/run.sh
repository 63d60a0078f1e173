#!/usr/bin/env bash
# Runs sandboxd with its defaults on a fresh Debian bookworm machine (as root): installs
# the dependencies, builds the binary, and starts `sandboxd serve`. Extra arguments go to
# `sandboxd serve` (e.g. `-c /etc/sandboxd/sandboxd.yaml`). Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSANDBOXD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target sandboxd
exec build/app/sandboxd serve "$@"
