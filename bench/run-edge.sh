#!/usr/bin/env bash
# Edge benchmark: sandboxd's preview edge next to nginx, HAProxy and Caddy in one run, all four
# proxying to the same backend, which runs inside one sandbox's network namespace
# (see bench/README.md, "Edge").
#
#   bench/run-edge.sh
#   ROUNDS=5 DUR=10 bench/run-edge.sh
#
# Steps: installs nginx, haproxy, caddy and wrk if one is missing (apt-get); builds sandboxd
# (Release, in BUILD_DIR, incremental); makes sure a Docker Engine answers and the test image
# exists; starts ONE sandboxd on a temporary config (its own network, edge.workers 1, no
# access log) and creates one sandbox with ports [3000, 8000]; starts the backend (the host's
# nginx entered into that container's network namespace with nsenter, on <container IP>:8000:
# /64b and /1m); starts nginx, HAProxy and Caddy as proxies to the same address (one worker
# or thread each, keep-alive upstream, no access log); then
#   1. throughput: interleaved rounds of wrk (scenarios ka64, 1m, close) against every target,
#      the target order rotated each round; proxy CPU per request, latency, peak RSS;
#   2. idle connections: RSS per idle keep-alive client connection, per proxy;
#   3. wake: a stopped sandbox -> first byte through the edge, next to a raw Engine API start
#      -> port open of a twin container made from the sandbox container's own spec (sandboxd
#      stops a container of its own that it did not start, so it cannot be the same one).
# Pinning: every proxy on PROXY_CPU (1); wrk, the backend and the helpers on LOAD_CPU (0).
# Results: bench/results/edge-<UTC time>/ (raw.tsv, idle.tsv, wake.tsv, env.txt, summary.md,
# the configs and the logs), and the summary on stdout.
#
# Environment (defaults): ROUNDS (3), DUR (5 s per wrk run), CONNS (64), WARMUP (1 s),
# TARGETS ("sandboxd nginx haproxy caddy direct"; direct = wrk straight to the backend),
# SCENARIOS ("ka64 1m close"), IDLE_CONNS (10000, at most 18000), IDLE_TARGETS
# ("sandboxd nginx haproxy caddy"), WAKE_REPS (10), GRACE (stop grace s, 10),
# EDGE_MAX_IDLE (edge.upstream.max_idle_per_backend, 256 like nginx's keepalive here),
# QUIET_MAX (%, 60) / QUIET_WAIT (s, 2): before each run wait at most QUIET_WAIT s for the
# machine to be less busy than QUIET_MAX % of one core, BENCH_TIMEOUT (s, 1800: no new step
# starts after it), BUILD_DIR (build-bench), SANDBOXD (a binary to use instead of building),
# OUT (results dir), PROXY_CPU (1), LOAD_CPU (0).
#
# Only the processes this script starts are stopped, by PID, when it exits. Traffic goes to
# loopback, the Docker unix socket and the benchmark sandbox's container IP only.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bench=$root/bench
export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

say() { printf '[%s] run-edge: %s\n' "$(date +%T)" "$*" >&2; }
fail() { say "$*"; exit 1; }

ROUNDS=${ROUNDS:-3}
DUR=${DUR:-5}
CONNS=${CONNS:-64}
WARMUP=${WARMUP:-1}
TARGETS=${TARGETS:-"sandboxd nginx haproxy caddy direct"}
SCENARIOS=${SCENARIOS:-"ka64 1m close"}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_TARGETS=${IDLE_TARGETS:-"sandboxd nginx haproxy caddy"}
WAKE_REPS=${WAKE_REPS:-10}
GRACE=${GRACE:-10}
EDGE_MAX_IDLE=${EDGE_MAX_IDLE:-256}
QUIET_MAX=${QUIET_MAX:-60}
QUIET_WAIT=${QUIET_WAIT:-2}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-1800}
BUILD_DIR=${BUILD_DIR:-$root/build-bench}
PROXY_CPU=${PROXY_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
OUT=${OUT:-$root/bench/results/edge-$(date -u +%Y%m%d-%H%M%S)}
IMAGE=sandboxd-test:latest
BACKEND_PORT=8000   # declared by the sandbox; the backend nginx listens here
APP_PORT=3000       # declared too; the test image's own httpd (used by the wake part)

isint() { [[ "$1" =~ ^[0-9]+$ ]]; }
for v in ROUNDS DUR CONNS WARMUP IDLE_CONNS WAKE_REPS GRACE EDGE_MAX_IDLE QUIET_MAX QUIET_WAIT \
         BENCH_TIMEOUT PROXY_CPU LOAD_CPU; do
  isint "${!v}" || fail "$v must be a whole number, got '${!v}'"
done
((ROUNDS >= 1 && ROUNDS <= 50)) || fail "ROUNDS must be 1..50"
((DUR >= 1 && DUR <= 120)) || fail "DUR must be 1..120"
((CONNS >= 1 && CONNS <= 1000)) || fail "CONNS must be 1..1000"
((WARMUP <= 30)) || fail "WARMUP must be at most 30"
((IDLE_CONNS <= 18000)) || fail "IDLE_CONNS must be at most 18000 (the hard nofile limit is 20000 here)"
((WAKE_REPS <= 200)) || fail "WAKE_REPS must be at most 200"
((QUIET_WAIT <= 60)) || fail "QUIET_WAIT must be at most 60"
deadline=$((SECONDS + BENCH_TIMEOUT))
past_deadline() { ((SECONDS >= deadline)); }

# ------------------------------------------------------------------------------ peers, build

need=()
for pair in nginx:nginx haproxy:haproxy caddy:caddy wrk:wrk nsenter:util-linux taskset:util-linux \
            curl:curl python3:python3 pgrep:procps; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if ((${#need[@]})); then
  say "installing ${need[*]}"
  # Debian starts a freshly installed nginx/haproxy service unless policy-rc.d says no; this
  # bench starts its own, so forbid that for the time of the install only.
  rcd_made=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    rcd_made=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
    { apt-get update >&2 && apt-get install -y --no-install-recommends "${need[@]}" >&2; } ||
    { [[ -n "$rcd_made" ]] && rm -f /usr/sbin/policy-rc.d; fail "apt-get install failed"; }
  [[ -n "$rcd_made" ]] && rm -f /usr/sbin/policy-rc.d
fi

if [[ -n "${SANDBOXD:-}" ]]; then
  [[ -x "$SANDBOXD" ]] || fail "SANDBOXD=$SANDBOXD is not executable"
else
  SANDBOXD=$BUILD_DIR/app/sandboxd
  if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
    say "configuring a Release build in $BUILD_DIR"
    cmake -S "$root" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >&2
  fi
  grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$BUILD_DIR/CMakeCache.txt" ||
    fail "$BUILD_DIR is not a Release build; use another BUILD_DIR"
  say "building sandboxd (incremental) in $BUILD_DIR"
  if ! cmake --build "$BUILD_DIR" -j2 --target sandboxd >"$BUILD_DIR/run-edge-build.log" 2>&1; then
    tail -20 "$BUILD_DIR/run-edge-build.log" >&2
    [[ -x "$SANDBOXD" ]] || fail "the build failed and there is no earlier binary"
    say "the build failed (someone may be mid-edit); using the existing $SANDBOXD"
  fi
fi

eval "$(scripts/docker-engine.sh start)"
export DOCKER_HOST
sock=${DOCKER_HOST#unix://}
image/build-test-image.sh "$IMAGE" >/dev/null

# ------------------------------------------------------------------------------ state, cleanup

tmp=$(mktemp -d /tmp/sandboxd-edge-bench.XXXXXX)
chmod 755 "$tmp"   # nginx workers run as www-data and read the backend's files under it
mkdir -p "$OUT"
net="sbx-edge-$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
declare -A PID=()       # name -> pid of every process this script started and still runs
declare -A PORT=()      # target -> port on 127.0.0.1
declare -A W=()         # the fields of one wrk result
sid=""; instance=""; cport=""

api() { curl -sS -m 30 --unix-socket "$sock" "$@"; }

# stop_pid NAME: SIGTERM, SIGKILL after 10 s; only a pid this script started.
stop_pid() {
  local name=$1 pid=${PID[$1]:-} i
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then say "$name ($pid) ignored SIGTERM; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  wait "$pid" 2>/dev/null || true
  unset "PID[$name]"
}

# shellcheck disable=SC2317  # run from the EXIT trap
cleanup() {
  local rc=$? n c
  set +e
  trap - EXIT INT TERM
  for n in caddy haproxy nginx backend; do stop_pid "$n"; done
  if [[ -n "$sid" && -n "${PID[sandboxd]:-}" ]]; then
    curl -s -m 60 -o /dev/null -X DELETE "http://127.0.0.1:$cport/v1/sandboxes/$sid" ||
      say "could not purge sandbox $sid through the API"
  fi
  stop_pid sandboxd
  if [[ -n "${PID[logfilter]:-}" ]]; then   # it ends at EOF, once sandboxd is gone
    for ((n = 0; n < 50; n++)); do kill -0 "${PID[logfilter]}" 2>/dev/null || break; sleep 0.1; done
  fi
  for n in "${!PID[@]}"; do stop_pid "$n"; done
  # Whatever this run left on the engine: the wake twin, and this instance's containers. An
  # engine that is restarting right now (someone else's test) gets 30 s to come back.
  for ((n = 0; n < 60; n++)); do
    [[ "$(api -m 2 http://localhost/_ping 2>/dev/null)" == OK ]] && break
    sleep 0.5
  done
  for n in "sandboxd.bench=edge-$$" ${instance:+"sandboxd.instance=$instance"}; do
    api -G "http://localhost/containers/json" --data-urlencode all=1 \
      --data-urlencode "filters={\"label\":[\"$n\"]}" 2>/dev/null |
      grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4 | while read -r c; do
        api -X DELETE "http://localhost/containers/$c?force=1" >/dev/null 2>&1
        say "removed leftover container ${c:0:12}"
      done
  done
  api -X DELETE "http://localhost/networks/$net" >/dev/null 2>&1
  if [[ -d "$tmp" ]]; then
    cp "$tmp/sandboxd.log" "$OUT/sandboxd.log" 2>/dev/null
    for n in backend nginx haproxy caddy; do
      [[ -s "$tmp/$n/out.log" ]] && cp "$tmp/$n/out.log" "$OUT/$n.log"
      [[ -s "$tmp/$n/error.log" ]] && cp "$tmp/$n/error.log" "$OUT/$n.error.log"
    done
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The proxies and the idle-connection helper need many descriptors: raise the soft limit to
# the hard one (20000 here) for everything started from now on.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
((nofile >= IDLE_CONNS + 500)) || say "warning: nofile is $nofile, below IDLE_CONNS+500"

mapfile -t ports < <(python3 "$bench/edge_bench.py" free-ports 5)
cport=${ports[0]}; PORT[sandboxd]=${ports[1]}; PORT[nginx]=${ports[2]}
PORT[haproxy]=${ports[3]}; PORT[caddy]=${ports[4]}

# ------------------------------------------------------------------------------ sandboxd

cat >"$tmp/sandboxd.yaml" <<EOF
data_dir: $tmp/data
log:
  level: info
  access_log: ""
control:
  listen: 127.0.0.1:$cport
edge:
  http:
    listen: "127.0.0.1:${PORT[sandboxd]}"
  workers: 1
  limits:
    max_connections: 20000
    max_connections_per_client: 20000
  upstream:
    max_idle_per_backend: $EDGE_MAX_IDLE
docker:
  socket: $DOCKER_HOST
  image: $IMAGE
  network: $net
  stop_timeout: ${GRACE}s
sandbox:
  nofile: 4096
EOF
cp "$tmp/sandboxd.yaml" "$OUT/sandboxd.yaml"
: >"$tmp/sandboxd.log"
# sandboxd's stderr goes through a FIFO to a filter that drops and counts JSON access lines:
# builds up to commit 3b2e493 wrote one per request to stderr whatever log.access_log said
# (see bench/README.md). The count lands in env.txt, so a run with the access log on shows.
mkfifo "$tmp/stderr.fifo"
taskset -c "$LOAD_CPU" python3 "$bench/edge_bench.py" logfilter --out "$tmp/sandboxd.log" \
  --count-file "$tmp/access.count" <"$tmp/stderr.fifo" &
PID[logfilter]=$!
taskset -c "$PROXY_CPU" "$SANDBOXD" serve -c "$tmp/sandboxd.yaml" 2>"$tmp/stderr.fifo" &
PID[sandboxd]=$!
say "sandboxd pid ${PID[sandboxd]} (control :$cport, edge :${PORT[sandboxd]}), network $net, temp $tmp"
code=""
for ((i = 0; i < 300; i++)); do   # <= 30 s
  kill -0 "${PID[sandboxd]}" 2>/dev/null || { cat "$tmp/sandboxd.log" >&2; fail "sandboxd exited"; }
  code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$cport/readyz" || true)
  [[ "$code" == 200 ]] && break
  sleep 0.1
done
[[ "$code" == 200 ]] || { tail -20 "$tmp/sandboxd.log" >&2; fail "/readyz never answered 200"; }
instance=$(sed -n 's/.*store opened .*instance=\([0-9A-Z]*\).*/\1/p' "$tmp/sandboxd.log" | head -1 || true)

sid=$(python3 "$bench/edge_bench.py" create --control "127.0.0.1:$cport" \
        --project "edge-bench-$$" --ports "$APP_PORT,$BACKEND_PORT")
read -r cpid cip < <(python3 "$bench/edge_bench.py" inspect --docker-socket "$sock" \
                       --container "s-$sid" --network "$net")
HOST="s-$sid-$BACKEND_PORT.preview.localhost"
say "sandbox $sid: container pid $cpid, IP $cip; preview host $HOST"

# ------------------------------------------------------------------------------ backend, proxies

for n in backend nginx haproxy caddy; do mkdir -p "$tmp/$n"; done
mkdir -p "$tmp/backend/www"
head -c 1048576 /dev/urandom >"$tmp/backend/www/1m"
chmod -R a+rX "$tmp/backend"

temp_paths() {  # nginx temp dirs inside DIR
  local d=$1
  printf '    client_body_temp_path %s/tmp_body;\n    proxy_temp_path %s/tmp_proxy;\n' "$d" "$d"
  printf '    fastcgi_temp_path %s/tmp_fcgi;\n    uwsgi_temp_path %s/tmp_uwsgi;\n    scgi_temp_path %s/tmp_scgi;\n' "$d" "$d" "$d"
}

# The backend: nginx, 1 worker, in the container's network namespace on <IP>:8000.
# /64b: 64 bytes from memory; /1m: a 1 MiB file (sendfile).
cat >"$tmp/backend/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $tmp/backend/nginx.pid;
error_log $tmp/backend/error.log warn;
worker_rlimit_nofile 19000;
events { worker_connections 18000; }
http {
    access_log off;
$(temp_paths "$tmp/backend")
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    server {
        listen $cip:$BACKEND_PORT backlog=4096;
        root $tmp/backend/www;
        location = /64b { return 200 "000000000000000000000000000000000000000000000000000000000000000\n"; }
        location / { }
    }
}
EOF
taskset -c "$LOAD_CPU" nsenter -t "$cpid" -n nginx -c "$tmp/backend/nginx.conf" -p "$tmp/backend/" \
  -e "$tmp/backend/error.log" >"$tmp/backend/out.log" 2>&1 &
PID[backend]=$!

# nginx as the proxy.
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process on;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
worker_rlimit_nofile 19500;
events { worker_connections 19000; }
http {
    access_log off;
$(temp_paths "$tmp/nginx")
    server_names_hash_bucket_size 128;   # the preview host name is longer than 64 bytes
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    upstream sandbox {
        server $cip:$BACKEND_PORT;
        keepalive 256;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]} default_server backlog=4096;
        return 404;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]};
        server_name $HOST;
        location / {
            proxy_pass http://sandbox;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_max_temp_file_size 0;
        }
    }
}
EOF

# HAProxy: one thread, server-side keep-alive reused for any request, no log.
hmax=$((IDLE_CONNS + CONNS + 400))
cat >"$tmp/haproxy/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $hmax
    no strict-limits
defaults
    mode http
    maxconn $hmax
    option http-keep-alive
    option forwardfor
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
frontend fe
    bind 127.0.0.1:${PORT[haproxy]}
    http-request deny deny_status 404 unless { hdr(host) -i $HOST }
    default_backend sandbox
backend sandbox
    server s1 $cip:$BACKEND_PORT
EOF

# Caddy: GOMAXPROCS=1 (one thread of Go code, like one worker elsewhere), no access log
# (Caddy's default), upstream keep-alive pool of 256.
cat >"$tmp/caddy/Caddyfile" <<EOF
{
    admin off
    auto_https off
}
http://$HOST:${PORT[caddy]} {
    bind 127.0.0.1
    reverse_proxy $cip:$BACKEND_PORT {
        transport http {
            keepalive 300s
            keepalive_idle_conns 256
            keepalive_idle_conns_per_host 256
        }
    }
}
http://:${PORT[caddy]} {
    bind 127.0.0.1
    respond 404
}
EOF
cp "$tmp/backend/nginx.conf" "$OUT/backend-nginx.conf"
cp "$tmp/nginx/nginx.conf" "$OUT/nginx.conf"
cp "$tmp/haproxy/haproxy.cfg" "$OUT/haproxy.cfg"
cp "$tmp/caddy/Caddyfile" "$OUT/Caddyfile"

start_proxy() {
  local n=$1
  case $n in
    nginx)
      taskset -c "$PROXY_CPU" nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx/" \
        -e "$tmp/nginx/error.log" >"$tmp/nginx/out.log" 2>&1 & ;;
    haproxy)
      taskset -c "$PROXY_CPU" haproxy -db -f "$tmp/haproxy/haproxy.cfg" >"$tmp/haproxy/out.log" 2>&1 & ;;
    caddy)
      HOME=$tmp/caddy XDG_DATA_HOME=$tmp/caddy/data XDG_CONFIG_HOME=$tmp/caddy/config GOMAXPROCS=1 \
        taskset -c "$PROXY_CPU" caddy run --adapter caddyfile --config "$tmp/caddy/Caddyfile" \
        >"$tmp/caddy/out.log" 2>&1 & ;;
  esac
  PID[$n]=$!
}

target_url() {  # target path -> URL wrk and curl use
  if [[ $1 == direct ]]; then echo "http://$cip:$BACKEND_PORT$2"; else echo "http://127.0.0.1:${PORT[$1]}$2"; fi
}

# check TARGET: /64b gives 200 with 64 bytes and /1m 200 with 1 MiB (bounded wait, 15 s).
check() {
  local t=$1 i a b
  for ((i = 0; i < 150; i++)); do
    a=$(curl -s -o /dev/null -m 2 -w '%{http_code} %{size_download}' -H "Host: $HOST" "$(target_url "$t" /64b)" || true)
    [[ "$a" == "200 64" ]] && break
    if [[ $t != direct && -n "${PID[$t]:-}" ]] && ! kill -0 "${PID[$t]}" 2>/dev/null; then break; fi
    sleep 0.1
  done
  b=$(curl -s -o /dev/null -m 10 -w '%{http_code} %{size_download}' -H "Host: $HOST" "$(target_url "$t" /1m)" || true)
  [[ "$a" == "200 64" && "$b" == "200 1048576" ]] || { say "$t: /64b -> '$a', /1m -> '$b'"; return 1; }
}

check direct || { cat "$tmp/backend/out.log" "$tmp/backend/error.log" >&2 2>/dev/null; fail "the backend does not answer"; }
for t in $TARGETS; do
  case $t in
    sandboxd | direct) ;;
    nginx | haproxy | caddy) start_proxy "$t" ;;
    *) fail "unknown target $t (sandboxd nginx haproxy caddy direct)" ;;
  esac
done
for t in $TARGETS; do
  check "$t" || { cat "$tmp/$t/out.log" >&2 2>/dev/null; fail "$t does not proxy to the backend"; }
done
say "all targets answer: $TARGETS"

# ------------------------------------------------------------------------------ accounting

HZ=$(getconf CLK_TCK)
tree_pids() {  # PID -> PID and all its descendants
  local p=$1 c
  echo "$p"
  for c in $(pgrep -P "$p" 2>/dev/null || true); do tree_pids "$c"; done
}
target_pids() {
  case $1 in
    direct) tree_pids "${PID[backend]}" ;;
    *) tree_pids "${PID[$1]}" ;;
  esac | tr '\n' ' '
}
cpu_ticks() {  # PIDS... -> utime+stime ticks, summed (all threads of each process)
  local p line s=0
  local -a f
  for p in "$@"; do
    line=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    line=${line##*) }
    read -r -a f <<<"$line"
    s=$((s + f[11] + f[12]))
  done
  echo "$s"
}
child_ticks() {  # CPU of the waited-for children of this shell (wrk)
  local line
  local -a f
  line=$(cat /proc/$$/stat)
  line=${line##*) }
  read -r -a f <<<"$line"
  echo $((f[13] + f[14]))
}
core_ticks() {  # -> "busy(user+nice+system) total" of cpuN
  awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print $2 + $3 + $4, t }' /proc/stat
}
reset_peak() { local p; for p in "$@"; do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done; }
peak_kb() {  # PIDS... -> VmHWM summed
  local p s=0 v
  for p in "$@"; do
    v=$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
    s=$((s + ${v:-0}))
  done
  echo "$s"
}
quiet_gate() {  # bounded: wait <= QUIET_WAIT s for the machine to be < QUIET_MAX % of one core busy
  local i a b busy=0
  for ((i = 0; i <= QUIET_WAIT; i++)); do
    a=$(awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print $2 + $3 + $4 + $7 + $8, t }' /proc/stat)
    sleep 0.5
    b=$(awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print $2 + $3 + $4 + $7 + $8, t }' /proc/stat)
    busy=$(awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " ");
             d = y[2] - x[2]; print (d > 0) ? int(100 * n * (y[1] - x[1]) / d) : 0 }')
    ((busy < QUIET_MAX)) && break
  done
  echo "$busy"
}

# The backend still answers (a Docker Engine restarted by someone else stops the container,
# and with it the backend's network namespace: every figure after that is meaningless).
backend_alive() {
  [[ "$(curl -s -o /dev/null -m 3 -w '%{http_code}' "http://$cip:$BACKEND_PORT/64b" || true)" == 200 ]] &&
    kill -0 "${PID[backend]}" 2>/dev/null
}
broken=""
lost_backend() {
  broken="the backend stopped answering at $(date -u +%H:%M:%S) UTC (engine restart?); later phases skipped"
  say "$broken"
  echo "aborted: $broken" >>"$OUT/env.txt"
}

scenario() {  # -> SPATH and SEXTRA for a scenario
  case $1 in
    ka64) SPATH=/64b; SEXTRA=() ;;
    1m) SPATH=/1m; SEXTRA=() ;;
    close) SPATH=/64b; SEXTRA=(-H "Connection: close") ;;
    *) fail "unknown scenario $1 (ka64 1m close)" ;;
  esac
}

# run_wrk TARGET SECONDS -> the WRK line (empty on failure); bounded by timeout(1).
run_wrk() {
  timeout -k 5 $(($2 + 30)) taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$2s" --timeout 5s \
    -s "$bench/edge_wrk.lua" -H "Host: $HOST" "${SEXTRA[@]}" "$(target_url "$1" "$SPATH")" 2>&1 |
    grep '^WRK ' || true
}

# ------------------------------------------------------------------------------ env

commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain -- edge control app 2>/dev/null | wc -l)
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "host: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r)"
  echo "run: $ROUNDS rounds x ${DUR}s, $CONNS connections, wrk+backend on cpu$LOAD_CPU, proxies on cpu$PROXY_CPU, targets: $TARGETS"
  echo "sandboxd: $SANDBOXD, commit $commit ($dirty changed files under edge/ control/ app/ in the tree)"
  echo "versions: $(nginx -v 2>&1 | sed 's/.*: //'), $(haproxy -v | head -1 | awk '{ print $1, $3 }'), caddy $(caddy version | awk '{ print $1 }'), $(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }')"
  echo "docker: $(api http://localhost/version | sed -n 's/.*"Version":"\([^"]*\)".*"ApiVersion":"\([^"]*\)".*/\1 (API \2)/p' | head -1)"
  echo "sandbox: $sid, container IP $cip, backend $cip:$BACKEND_PORT"
  echo "loadavg_before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/env.txt"

# ------------------------------------------------------------------------------ 1. throughput

RAW=$OUT/raw.tsv
printf 'round\tscenario\ttarget\trequests\tseconds\trps\tp50_us\tp90_us\tp99_us\tmax_us\tMiBps\terrors\tnon2xx\tproxy_cpu_pct\tproxy_us_per_req\tpeak_rss_kb\tbackend_cpu_pct\twrk_cpu_pct\tcpu%s_pct\tcpu%s_pct\tforeign_pct\tpre_busy_pct\n' \
  "$LOAD_CPU" "$PROXY_CPU" >"$RAW"
read -r -a TA <<<"$TARGETS"
nt=${#TA[@]}
if ((WARMUP > 0)); then
  say "warm-up: ${WARMUP}s of each scenario per target (not recorded)"
  for s in $SCENARIOS; do
    scenario "$s"
    for t in "${TA[@]}"; do run_wrk "$t" "$WARMUP" >/dev/null; done
  done
fi
say "throughput: $ROUNDS rounds x $(wc -w <<<"$SCENARIOS") scenarios x $nt targets x ${DUR}s"
for ((r = 1; r <= ROUNDS; r++)); do
  past_deadline && { say "BENCH_TIMEOUT reached; no more rounds"; break; }
  for s in $SCENARIOS; do
    scenario "$s"
    for ((k = 0; k < nt; k++)); do
      t=${TA[$(((k + r - 1) % nt))]}
      read -r -a pp <<<"$(target_pids "$t")"
      read -r -a bp <<<"$(target_pids direct)"
      pre=$(quiet_gate)
      reset_peak "${pp[@]}"
      read -r -a c0a <<<"$(core_ticks "$LOAD_CPU")"; read -r -a c1a <<<"$(core_ticks "$PROXY_CPU")"
      pa=$(cpu_ticks "${pp[@]}"); ba=$(cpu_ticks "${bp[@]}"); wa=$(child_ticks)
      line=$(run_wrk "$t" "$DUR")
      read -r -a c0b <<<"$(core_ticks "$LOAD_CPU")"; read -r -a c1b <<<"$(core_ticks "$PROXY_CPU")"
      pb=$(cpu_ticks "${pp[@]}"); bb=$(cpu_ticks "${bp[@]}"); wb=$(child_ticks)
      peak=$(peak_kb "${pp[@]}")
      if ! backend_alive; then lost_backend; break 3; fi
      if [[ -z "$line" ]]; then say "round $r $s $t: wrk gave no result"; continue; fi
      W=()
      for kv in ${line#WRK }; do W[${kv%%=*}]=${kv#*=}; done   # requests seconds bytes p50_us ... non2xx
      awk -v r="$r" -v s="$s" -v t="$t" -v req="${W[requests]}" -v secs="${W[seconds]}" -v bytes="${W[bytes]}" \
          -v p50="${W[p50_us]}" -v p90="${W[p90_us]}" -v p99="${W[p99_us]}" -v mx="${W[max_us]}" -v err="${W[errors]}" \
          -v non2="${W[non2xx]}" -v pd=$((pb - pa)) -v bd=$((bb - ba)) -v wd=$((wb - wa)) \
          -v c0=$((c0b[0] - c0a[0])) -v c0t=$((c0b[1] - c0a[1])) -v c1=$((c1b[0] - c1a[0])) \
          -v c1t=$((c1b[1] - c1a[1])) -v hz="$HZ" -v peak="$peak" -v pre="$pre" 'BEGIN {
            direct = (t == "direct")
            pcpu = direct ? "NA" : sprintf("%.1f", 100 * pd / hz / secs)
            upr = (direct || req == 0) ? "NA" : sprintf("%.2f", pd * 1e6 / hz / req)
            fr = 100 * (c0 + c1 - (direct ? 0 : pd) - bd - wd) / hz / secs; if (fr < 0) fr = 0
            printf "%d\t%s\t%s\t%d\t%.3f\t%.0f\t%d\t%d\t%d\t%d\t%.1f\t%d\t%d\t%s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\n",
              r, s, t, req, secs, req / secs, p50, p90, p99, mx, bytes / secs / 1048576, err, non2,
              pcpu, upr, direct ? "NA" : peak, 100 * bd / hz / secs, 100 * wd / hz / secs,
              100 * c0 / (c0t ? c0t : 1), 100 * c1 / (c1t ? c1t : 1), fr, pre }' >>"$RAW"
      say "$(tail -1 "$RAW" | awk -F'\t' '{ printf "r%s %-5s %-8s %7s rps p50 %5.2f ms p99 %6.2f ms  %s us/req  peak %s kB  err %s/%s  foreign %s%%", $1, $2, $3, $6, $7/1000, $9/1000, $15, $16, $12, $13, $21 }')"
    done
  done
done

# ------------------------------------------------------------------------------ 2. idle connections

if ((IDLE_CONNS > 0)) && [[ -z "$broken" ]] && ! past_deadline; then
  say "idle connections: $IDLE_CONNS per proxy"
  for t in $IDLE_TARGETS; do
    [[ $t == sandboxd || -n "${PID[$t]:-}" ]] || { say "idle: $t is not running; skipped"; continue; }
    past_deadline && break
    backend_alive || { lost_backend; break; }
    read -r -a pp <<<"$(target_pids "$t")"
    timeout -k 5 300 taskset -c "$LOAD_CPU" python3 "$bench/edge_bench.py" idle --port "${PORT[$t]}" \
      --host "$HOST" --n "$IDLE_CONNS" --pids "${pp[*]}" --target "$t" --tsv "$OUT/idle.tsv" >&2 ||
      say "idle: $t failed"
  done
fi

# ------------------------------------------------------------------------------ 3. wake

# The backend lives in the container's network namespace, which a stop takes away: stop it
# (and the other proxies, to quiet the machine) first.
for n in caddy haproxy nginx backend; do stop_pid "$n"; done
if ((WAKE_REPS > 0)) && [[ -z "$broken" ]] && ! past_deadline; then
  say "wake: $WAKE_REPS reps through the edge and $WAKE_REPS raw Engine API starts, alternating"
  timeout -k 5 $((WAKE_REPS * 2 * 60 + 60)) taskset -c "$LOAD_CPU" python3 "$bench/edge_bench.py" wake \
    --control "127.0.0.1:$cport" --edge "127.0.0.1:${PORT[sandboxd]}" --docker-socket "$sock" \
    --id "$sid" --network "$net" --port "$APP_PORT" --reps "$WAKE_REPS" --grace "$GRACE" \
    --tag "$$" --out "$OUT/wake.tsv" || say "wake measurement failed"
fi

# ------------------------------------------------------------------------------ report

echo "loadavg_after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/env.txt"
echo "edge access lines on sandboxd's stderr: $(cat "$tmp/access.count" 2>/dev/null || echo unknown)" >>"$OUT/env.txt"
if grep -q ' error \| warn ' "$tmp/sandboxd.log"; then
  say "sandboxd logged warnings or errors:"; grep ' error \| warn ' "$tmp/sandboxd.log" | head -20 >&2
fi
python3 "$bench/edge_bench.py" report "$OUT" >"$OUT/summary.md"
cat "$OUT/summary.md"
say "results in $OUT"
