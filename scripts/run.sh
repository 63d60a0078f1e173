#!/usr/bin/env bash
# Runs sandboxd with its defaults on a fresh Debian bookworm machine (as root): installs
# the dependencies, builds the binaries, makes a Docker Engine available (a reachable one, or
# a private dockerd started by scripts/docker-engine.sh), builds the sandbox image when it is
# missing or outdated, and starts `sandboxd serve`. Extra arguments go to `sandboxd serve`
# (e.g. `-c /etc/sandboxd/sandboxd.yaml`). Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target sandboxd runtimed-static

docker_env=$(scripts/docker-engine.sh start)
eval "$docker_env"
export DOCKER_HOST

# The default docker.image, sandboxd-base:latest (Debian, Node.js 22, the agent CLIs, this
# build's runtimed as its entrypoint). The first build takes a few minutes; afterwards it is
# rebuilt only when an input changed (the script, image/base/, runtimed: then only the last
# layers) and otherwise left alone in under a second. An image with that tag that was not
# built by the script is replaced: point docker.image elsewhere to run a custom one.
image/build-base-image.sh build/runtimed/runtimed-static

exec build/app/sandboxd serve "$@"
