#!/usr/bin/env bash
# Runs sandboxd with its defaults on a fresh Debian bookworm machine (as root): installs
# the dependencies, builds the binary, makes a Docker Engine available (a reachable one, or
# a private dockerd started by scripts/docker-engine.sh), builds the sandbox image when the
# engine lacks it, and starts `sandboxd serve`. Extra arguments go to `sandboxd serve`
# (e.g. `-c /etc/sandboxd/sandboxd.yaml`). Stop it with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target sandboxd testapp

docker_env=$(scripts/docker-engine.sh start)
eval "$docker_env"
export DOCKER_HOST

# The default docker.image. Until the full base image (Node, agents) is built here, the
# small busybox image stands in for it; an image already on the engine is kept.
image=sandboxd-base:latest
socket=${DOCKER_HOST#unix://}
if [[ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$socket" \
        "http://localhost/images/$image/json")" != 200 ]]; then
  TESTAPP=build/image/testapp/testapp image/build-test-image.sh "$image"
fi

exec build/app/sandboxd serve "$@"
