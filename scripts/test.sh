#!/usr/bin/env bash
# The whole test suite, from a fresh Debian bookworm machine (as root):
#   1. installs every dependency (scripts/install-deps.sh),
#   2. makes a Docker Engine available (scripts/docker-engine.sh), builds the test image and
#      the base image (image/build-base-image.sh) that the e2e tests run,
#   3. builds everything and runs every test with ctest,
#   4. builds the parser and store suites with ASan + UBSan and runs them again.
# Exits non-zero when anything fails. Build dirs: build/ and build-asan/.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc)
scripts/install-deps.sh

echo "== build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"

echo "== docker engine and test image"
# A reachable engine is used as it is; otherwise a private dockerd is started (and stopped
# again, by its PID, when this script exits). A missing engine fails the run.
if docker_env=$(scripts/docker-engine.sh env 2>/dev/null); then
  eval "$docker_env"  # an engine already answers: use it, never stop it
else
  docker_env=$(scripts/docker-engine.sh start)
  eval "$docker_env"
  trap 'scripts/docker-engine.sh stop' EXIT
fi
export DOCKER_HOST
TESTAPP=build/image/testapp/testapp RUNTIMED=build/runtimed/runtimed-static \
  image/build-test-image.sh

echo "== base image (the e2e tests run it)"
# Up to date in under a second when no input changed; a new runtimed rebuilds one layer
# (~30 s); from nothing ~5 min. A failed build fails the run.
image/build-base-image.sh build/runtimed/runtimed-static

echo "== tests"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 300

echo "== sanitizer build (ASan + UBSan): tests labelled 'sanitize'"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSANDBOXD_SANITIZE=ON
sanitize_targets=$(sed -n 's/^sanitize_target: //p' build/sanitize-targets.txt)
# shellcheck disable=SC2086
cmake --build build-asan -j"$jobs" --target $sanitize_targets
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan -L sanitize --output-on-failure -j"$jobs" --timeout 600
