#!/usr/bin/env bash
# Lifecycle benchmark: sandboxd vs the Engine API, in one run (see bench/README.md).
#
#   bench/run-lifecycle.sh [lifecycle.py options, e.g. --rounds 20]
#
# Makes sure a Docker Engine answers (scripts/docker-engine.sh start; an engine it had to start
# is left running for the next user) and that the test image exists (image/build-test-image.sh),
# starts build/app/sandboxd on a temporary config (data_dir in a temp dir, control on
# 127.0.0.1:0, its own network), waits for /readyz, runs bench/lifecycle.py, and prints its
# table. At the end it stops that sandboxd by its PID (SIGTERM, SIGKILL after 15 s), removes
# what the run left on the Engine (by label) and the network, and deletes the temp dir.
#
# Environment: OUT (JSON results, default bench/results/lifecycle-<time>.json),
# BENCH_TIMEOUT (seconds for lifecycle.py, default 900), GRACE (stop grace, s, default 10),
# SANDBOXD (binary, default build/app/sandboxd).
# Traffic: loopback (the control API) and the Docker unix socket only.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { echo "run-lifecycle: $*" >&2; }

SANDBOXD=${SANDBOXD:-$root/build/app/sandboxd}
GRACE=${GRACE:-10}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-900}
OUT=${OUT:-$root/bench/results/lifecycle-$(date -u +%Y%m%d-%H%M%S).json}
[[ -x "$SANDBOXD" ]] || { say "no sandboxd binary at $SANDBOXD (build it first)"; exit 1; }

eval "$(scripts/docker-engine.sh start)"
export DOCKER_HOST
sock=${DOCKER_HOST#unix://}
image/build-test-image.sh sandboxd-test:latest >/dev/null

# shellcheck disable=SC2317  # also used from the EXIT trap
api() { curl -sS -m 30 --unix-socket "$sock" "$@"; }

tmp=$(mktemp -d /tmp/sandboxd-bench.XXXXXX)
net="sbx-bench-$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
tag="run$$"
pid=""
bench_pid=""
instance=""

# shellcheck disable=SC2317  # run from the EXIT trap
cleanup() {
  local rc=$? i f
  set +e
  if [[ -n "$bench_pid" ]] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid"   # timeout(1) passes it on to lifecycle.py
    wait "$bench_pid" 2>/dev/null
  fi
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then say "sandboxd $pid ignored SIGTERM; SIGKILL"; kill -KILL "$pid"; fi
    wait "$pid" 2>/dev/null
  fi
  # Whatever an interrupted run left: the direct path's containers, and this instance's.
  for f in "sandboxd.bench=$tag" ${instance:+"sandboxd.instance=$instance"}; do
    api -G "http://localhost/containers/json" --data-urlencode all=1 \
      --data-urlencode "filters={\"label\":[\"$f\"]}" 2>/dev/null |
      grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4 | while read -r c; do
        api -X DELETE "http://localhost/containers/$c?force=1" >/dev/null 2>&1
        say "removed leftover container ${c:0:12}"
      done
  done
  api -X DELETE "http://localhost/networks/$net" >/dev/null 2>&1
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$tmp/sandboxd.yaml" <<EOF
data_dir: $tmp/data
log:
  level: info
control:
  listen: 127.0.0.1:0
edge:
  http:
    listen: "127.0.0.1:0"
docker:
  socket: $DOCKER_HOST
  image: sandboxd-test:latest
  network: $net
  stop_timeout: ${GRACE}s
sandbox:
  nofile: 4096
EOF
mkdir -p "$tmp/direct" "$(dirname "$OUT")"

: >"$tmp/sandboxd.log"
"$SANDBOXD" serve -c "$tmp/sandboxd.yaml" 2>>"$tmp/sandboxd.log" &
pid=$!
say "sandboxd pid $pid, network $net, temp dir $tmp"

port=""
for ((i = 0; i < 150; i++)); do   # <= 15 s for the listener
  port=$(sed -n 's/.*control listening .*port=\([0-9]*\).*/\1/p' "$tmp/sandboxd.log" | head -1 || true)
  [[ -n "$port" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$tmp/sandboxd.log" >&2; say "sandboxd exited"; exit 1; }
  sleep 0.1
done
[[ -n "$port" ]] || { cat "$tmp/sandboxd.log" >&2; say "no control port logged"; exit 1; }
instance=$(sed -n 's/.*store opened .*instance=\([0-9A-Z]*\).*/\1/p' "$tmp/sandboxd.log" | head -1 || true)
for ((i = 0; i < 300; i++)); do   # <= 30 s for /readyz
  code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)
  [[ "$code" == 200 ]] && break
  sleep 0.1
done
[[ "$code" == 200 ]] || { cat "$tmp/sandboxd.log" >&2; say "/readyz never answered 200"; exit 1; }

say "measuring (bounded by ${BENCH_TIMEOUT}s)"
set +e
timeout -k 10 "$BENCH_TIMEOUT" python3 "$root/bench/lifecycle.py" \
  --sandboxd "127.0.0.1:$port" --docker-socket "$sock" --image sandboxd-test:latest \
  --network "$net" --workdir "$tmp/direct" --grace "$GRACE" --nofile 4096 --tag "$tag" \
  --out "$OUT" "$@" &
bench_pid=$!
wait "$bench_pid"   # in the background so that a SIGTERM to this script is handled at once
rc=$?
bench_pid=""
set -e
if grep -q ' error \| warn ' "$tmp/sandboxd.log"; then
  say "sandboxd logged warnings or errors:"; grep ' error \| warn ' "$tmp/sandboxd.log" | head -20 >&2
fi
[[ -s "$OUT" ]] && say "JSON results: $OUT"
case $rc in
  0) say "goal met" ;;
  1) say "goal missed, or fewer rounds than asked (see the table)" ;;
  *) say "lifecycle.py failed (exit $rc)" ;;
esac
exit $rc
