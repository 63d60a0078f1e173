#!/usr/bin/env bash
# TLS benchmark of issue 5 (see bench/README.md, "TLS"):
#   1. issuance time: one DNS-01 issuance of *.preview.test + preview.test with sandboxd's
#      acme::Issuer next to Debian's lego CLI, against the tests' ACME lab (BIND9 + pebble on
#      loopback), interleaved rounds (bench/acme_issuance.cc, target acme_issuance_bench);
#   2. TLS handshakes per second: sandboxd's HTTPS edge next to nginx, the same P-256
#      certificate, one worker each pinned to PROXY_CPU, wrk on LOAD_CPU with
#      `Connection: close` so that every request is a new TLS connection answered with a tiny
#      body (sandboxd: /healthz of `Host: preview.test`, which the edge answers itself; nginx:
#      `return 200 "ok\n"`). Scenarios:
#        full     every handshake is a full one: wrk runs with bench/tls_full_handshake.c
#                 preloaded, which drops the session wrk would offer; nginx has tickets and
#                 its session cache off (sandboxd's edge always issues a ticket; nobody uses it);
#        resumed  tickets on both sides (sandboxd's default; nginx `ssl_session_tickets on`),
#                 session caches off on both; wrk offers the last ticket, so after the first
#                 handshake of each connection slot every handshake is a resumption.
#
#   bench/run-tls.sh
#   ROUNDS=7 DUR=10 ISSUANCE_ROUNDS=0 bench/run-tls.sh
#
# Steps: installs nginx, wrk, lego, bind9 and pebble with apt-get when one is missing;
# builds sandboxd and acme_issuance_bench (Release, BUILD_DIR, incremental); makes sure a
# Docker Engine answers (sandboxd will not start without one; no sandbox is created); runs the
# issuance part; makes the certificate with the openssl CLI; starts sandboxd (tls.mode files)
# and nginx; checks that both answer and that the client really makes full / resumed
# handshakes (nginx logs $ssl_session_reused on a check port); then interleaved rounds of
# every scenario and target, the target order rotated each round.
# Results: bench/results/tls-<UTC time>/ (summary.md, raw.tsv, issuance.tsv, issuance.md,
# env.txt, the configs, the certificate and the logs), and the summary on stdout.
#
# Environment (defaults): ROUNDS (5), DUR (5 s per wrk run), CONNS (64), WARMUP (1 s),
# TARGETS ("sandboxd nginx"), SCENARIOS ("full resumed"), ISSUANCE_ROUNDS (5; 0 skips part 1),
# ISSUANCE_WARMUP (1), LEGO_SEQUENCE_INTERVAL (s, 0; see README), QUIET_MAX (%, 60) /
# QUIET_WAIT (s, 2): before each wrk run wait at most QUIET_WAIT s for the machine to be less
# busy than QUIET_MAX % of one core, BENCH_TIMEOUT (s, 1800: no new step starts after it),
# BUILD_DIR (build-bench), SANDBOXD (a binary to use instead of building), ISSUANCE_BIN (the
# same for acme_issuance_bench), OUT (results dir), PROXY_CPU (1), LOAD_CPU (0).
#
# Only the processes this script starts are stopped, by PID, when it exits. Traffic stays on
# loopback (and the Docker unix socket).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bench=$root/bench
export PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin

say() { printf '[%s] run-tls: %s\n' "$(date +%T)" "$*" >&2; }
fail() { say "$*"; exit 1; }

ROUNDS=${ROUNDS:-5}
DUR=${DUR:-5}
CONNS=${CONNS:-64}
WARMUP=${WARMUP:-1}
TARGETS=${TARGETS:-"sandboxd nginx"}
SCENARIOS=${SCENARIOS:-"full resumed"}
ISSUANCE_ROUNDS=${ISSUANCE_ROUNDS:-5}
ISSUANCE_WARMUP=${ISSUANCE_WARMUP:-1}
LEGO_SEQUENCE_INTERVAL=${LEGO_SEQUENCE_INTERVAL:-0}
QUIET_MAX=${QUIET_MAX:-60}
QUIET_WAIT=${QUIET_WAIT:-2}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-1800}
BUILD_DIR=${BUILD_DIR:-$root/build-bench}
PROXY_CPU=${PROXY_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
OUT=${OUT:-$root/bench/results/tls-$(date -u +%Y%m%d-%H%M%S)}
IMAGE=sandboxd-test:latest
HOST=preview.test

isint() { [[ "$1" =~ ^[0-9]+$ ]]; }
for v in ROUNDS DUR CONNS WARMUP ISSUANCE_ROUNDS ISSUANCE_WARMUP LEGO_SEQUENCE_INTERVAL QUIET_MAX \
         QUIET_WAIT BENCH_TIMEOUT PROXY_CPU LOAD_CPU; do
  isint "${!v}" || fail "$v must be a whole number, got '${!v}'"
done
((ROUNDS >= 1 && ROUNDS <= 50)) || fail "ROUNDS must be 1..50"
((DUR >= 1 && DUR <= 120)) || fail "DUR must be 1..120"
((CONNS >= 1 && CONNS <= 1000)) || fail "CONNS must be 1..1000"
((WARMUP <= 30)) || fail "WARMUP must be at most 30"
((ISSUANCE_ROUNDS <= 50)) || fail "ISSUANCE_ROUNDS must be at most 50"
((ISSUANCE_WARMUP <= 5)) || fail "ISSUANCE_WARMUP must be at most 5"
((LEGO_SEQUENCE_INTERVAL <= 120)) || fail "LEGO_SEQUENCE_INTERVAL must be at most 120"
((QUIET_WAIT <= 60)) || fail "QUIET_WAIT must be at most 60"
for s in $SCENARIOS; do [[ $s == full || $s == resumed ]] || fail "unknown scenario $s (full resumed)"; done
for t in $TARGETS; do [[ $t == sandboxd || $t == nginx ]] || fail "unknown target $t (sandboxd nginx)"; done
deadline=$((SECONDS + BENCH_TIMEOUT))
past_deadline() { ((SECONDS >= deadline)); }

# ------------------------------------------------------------------------------ peers, build

need=()
for pair in nginx:nginx wrk:wrk lego:lego named:bind9 pebble:pebble openssl:openssl curl:curl \
            taskset:util-linux cc:gcc python3:python3 pgrep:procps; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if ((${#need[@]})); then
  say "installing ${need[*]}"
  # Debian starts a freshly installed nginx or named service unless policy-rc.d says no; this
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
[[ -f /usr/include/openssl/ssl.h ]] || fail "the OpenSSL headers are missing (libssl-dev; scripts/install-deps.sh)"

targets=()
[[ -z "${SANDBOXD:-}" ]] && targets+=(sandboxd)
((ISSUANCE_ROUNDS > 0)) && [[ -z "${ISSUANCE_BIN:-}" ]] && targets+=(acme_issuance_bench)
if ((${#targets[@]})); then
  if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
    # Without the tests: a test file someone is in the middle of adding cannot stop the build.
    say "configuring a Release build in $BUILD_DIR"
    cmake -S "$root" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSANDBOXD_TESTS=OFF >&2
  fi
  grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$BUILD_DIR/CMakeCache.txt" ||
    fail "$BUILD_DIR is not a Release build; use another BUILD_DIR"
  # A cache made before acme/ existed (or with a short module list) has no acme target.
  if ! grep -q '^SANDBOXD_MODULES:STRING=.*acme' "$BUILD_DIR/CMakeCache.txt"; then
    say "$BUILD_DIR: adding acme to SANDBOXD_MODULES"
    cmake -S "$root" -B "$BUILD_DIR" \
      -DSANDBOXD_MODULES="base;config;store;docker;acme;edge;control;runtimed;app" >&2
  fi
  say "building ${targets[*]} (incremental) in $BUILD_DIR"
  if ! cmake --build "$BUILD_DIR" -j2 --target "${targets[@]}" >"$BUILD_DIR/run-tls-build.log" 2>&1; then
    tail -20 "$BUILD_DIR/run-tls-build.log" >&2
    say "the build failed (someone may be mid-edit); using the binaries already there"
  fi
fi
SANDBOXD=${SANDBOXD:-$BUILD_DIR/app/sandboxd}
ISSUANCE_BIN=${ISSUANCE_BIN:-$BUILD_DIR/bench/acme_issuance_bench}
[[ -x "$SANDBOXD" ]] || fail "no sandboxd binary at $SANDBOXD"
((ISSUANCE_ROUNDS == 0)) || [[ -x "$ISSUANCE_BIN" ]] || fail "no acme_issuance_bench at $ISSUANCE_BIN"

eval "$(scripts/docker-engine.sh start)"
export DOCKER_HOST
sock=${DOCKER_HOST#unix://}

# ------------------------------------------------------------------------------ state, cleanup

tmp=$(mktemp -d /tmp/sandboxd-tls-bench.XXXXXX)
mkdir -p "$OUT" "$tmp/nginx" "$tmp/data"
net="sbx-tls-$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
declare -A PID=()       # name -> pid of every process this script started and still runs
declare -A PORT=()      # name -> port on 127.0.0.1
declare -A W=()         # the fields of one wrk result

# stop_pid NAME: SIGTERM, SIGKILL after 20 s; only a pid this script started.
stop_pid() {
  local name=$1 pid=${PID[$1]:-} i
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then say "$name ($pid) ignored SIGTERM; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  wait "$pid" 2>/dev/null || true
  unset "PID[$name]"
}

# shellcheck disable=SC2317  # run from the EXIT trap
cleanup() {
  local rc=$? n
  set +e
  trap - EXIT INT TERM
  for n in "${!PID[@]}"; do stop_pid "$n"; done
  # sandboxd makes its network at start; an engine that is restarting right now (someone
  # else's test) gets 30 s to come back before the network is removed.
  for ((n = 0; n < 60; n++)); do
    [[ "$(curl -s -m 2 --unix-socket "$sock" http://localhost/_ping 2>/dev/null)" == OK ]] && break
    sleep 0.5
  done
  curl -s -m 30 --unix-socket "$sock" -X DELETE "http://localhost/networks/$net" >/dev/null 2>&1
  if [[ -d "$tmp" ]]; then
    cp "$tmp/sandboxd.log" "$OUT/sandboxd.log" 2>/dev/null
    for n in error.log check.log out.log; do
      [[ -s "$tmp/nginx/$n" ]] && cp "$tmp/nginx/$n" "$OUT/nginx.$n"
    done
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# ------------------------------------------------------------------------------ env

commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain -- edge control app acme 2>/dev/null | wc -l)
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "host: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r)"
  echo "run: handshakes $ROUNDS rounds x ${DUR}s x scenarios ($SCENARIOS), $CONNS connections, wrk on cpu$LOAD_CPU, servers on cpu$PROXY_CPU; issuance $ISSUANCE_ROUNDS rounds + $ISSUANCE_WARMUP warm-up"
  echo "sandboxd: $SANDBOXD (built $(date -u -r "$SANDBOXD" '+%Y-%m-%d %H:%M UTC')), commit $commit ($dirty changed files under edge/ control/ app/ acme/ in the tree)"
  echo "versions: $(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }'), $(openssl version), lego $(dpkg-query -W -f '${Version}' lego 2>/dev/null || echo '?'), pebble $(dpkg-query -W -f '${Version}' pebble 2>/dev/null || echo '?'), bind9 $(dpkg-query -W -f '${Version}' bind9 2>/dev/null || echo '?')"
  echo "loadavg_before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/env.txt"

# ------------------------------------------------------------------------------ 1. issuance

if ((ISSUANCE_ROUNDS > 0)); then
  # Not pinned: the lab (pebble, named) and both clients share the machine the same way, and
  # a client that waits on the network most of the time gains nothing from a core of its own.
  # The program bounds every attempt itself (120 s) and stops on SIGTERM after cleaning up;
  # timeout(1) is only the last resort.
  ilimit=$(((ISSUANCE_ROUNDS + ISSUANCE_WARMUP) * 2 * 130 + 120))
  say "issuance: $ISSUANCE_ROUNDS rounds + $ISSUANCE_WARMUP warm-up, sandboxd and lego alternating"
  timeout -k 20 "$ilimit" "$ISSUANCE_BIN" --rounds "$ISSUANCE_ROUNDS" --warmup "$ISSUANCE_WARMUP" \
    --lego "$(command -v lego)" --lego-sequence-interval "$LEGO_SEQUENCE_INTERVAL" \
    --max-seconds $((ilimit - 300 > 60 ? ilimit - 300 : 60)) --out "$OUT" \
    >/dev/null 2> >(tee "$OUT/issuance.log" >&2) || say "issuance: the program reported a failure (see issuance.log)"
fi

# ------------------------------------------------------------------------------ 2. handshakes

past_deadline && fail "BENCH_TIMEOUT reached before the handshake part"

# One P-256 certificate for both servers, self-signed, for *.preview.test and preview.test.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=$HOST" -addext "subjectAltName=DNS:*.$HOST,DNS:$HOST" \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null || fail "openssl could not make the certificate"
cp "$tmp/cert.pem" "$OUT/cert.pem"

mapfile -t ports < <(python3 "$bench/edge_bench.py" free-ports 5)
PORT[sandboxd]=${ports[0]}; PORT[sandboxd_http]=${ports[1]}
PORT[nginx_full]=${ports[2]}; PORT[nginx_resumed]=${ports[3]}; PORT[nginx_check]=${ports[4]}

cat >"$tmp/sandboxd.yaml" <<EOF
data_dir: $tmp/data
log:
  level: info
  access_log: ""
control:
  listen: 127.0.0.1:0
preview:
  suffix: $HOST
tls:
  mode: files
  files:
    cert: $tmp/cert.pem
    key: $tmp/key.pem
edge:
  http:
    listen: "127.0.0.1:${PORT[sandboxd_http]}"
  https:
    listen: "127.0.0.1:${PORT[sandboxd]}"
  workers: 1
  limits:
    max_connections: 20000
    max_connections_per_client: 20000
docker:
  socket: $DOCKER_HOST
  image: $IMAGE
  network: $net
sandbox:
  nofile: 4096
EOF
cp "$tmp/sandboxd.yaml" "$OUT/sandboxd.yaml"

# The same TLS settings as sandboxd's edge where nginx has a knob: TLS 1.2 and 1.3 (nginx 1.22
# leaves 1.3 out by default), sandboxd's TLS 1.2 suites in server order, no session cache.
# TLS 1.3 suites and key-exchange groups are OpenSSL's defaults on both sides.
tls_common="ssl_certificate $tmp/cert.pem;
        ssl_certificate_key $tmp/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
        ssl_prefer_server_ciphers on;
        ssl_session_cache off;"
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
    client_body_temp_path $tmp/nginx/client_body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    default_type text/plain;
    log_format reuse '\$ssl_protocol \$ssl_session_reused';
    server {   # scenario full
        listen 127.0.0.1:${PORT[nginx_full]} ssl backlog=4096;
        $tls_common
        ssl_session_tickets off;
        location / { return 200 "ok\n"; }
    }
    server {   # scenario resumed
        listen 127.0.0.1:${PORT[nginx_resumed]} ssl backlog=4096;
        $tls_common
        ssl_session_tickets on;
        location / { return 200 "ok\n"; }
    }
    server {   # not measured: shows whether the client resumes when tickets are offered
        listen 127.0.0.1:${PORT[nginx_check]} ssl;
        $tls_common
        ssl_session_tickets on;
        access_log $tmp/nginx/check.log reuse;
        location / { return 200 "ok\n"; }
    }
}
EOF
cp "$tmp/nginx/nginx.conf" "$OUT/nginx.conf"

cc -shared -fPIC -O2 -Wall -o "$tmp/full.so" "$bench/tls_full_handshake.c" -ldl ||
  fail "cannot build the wrk shim"

taskset -c "$PROXY_CPU" "$SANDBOXD" serve -c "$tmp/sandboxd.yaml" 2>"$tmp/sandboxd.log" &
PID[sandboxd]=$!
taskset -c "$PROXY_CPU" nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx/" -e "$tmp/nginx/error.log" \
  >"$tmp/nginx/out.log" 2>&1 &
PID[nginx]=$!
say "sandboxd pid ${PID[sandboxd]} (https :${PORT[sandboxd]}), nginx pid ${PID[nginx]} (:${PORT[nginx_full]} full, :${PORT[nginx_resumed]} resumed), temp $tmp"

port_of() {  # TARGET SCENARIO -> the port wrk uses
  if [[ $1 == sandboxd ]]; then echo "${PORT[sandboxd]}"; else echo "${PORT[nginx_$2]}"; fi
}
# answers PORT -> "<body> <status>" of GET /healthz with SNI and Host preview.test, verified
# against our certificate.
answers() {
  curl -s -m 2 --cacert "$tmp/cert.pem" --resolve "$HOST:$1:127.0.0.1" -w ' %{http_code}' \
    "https://$HOST:$1/healthz" 2>/dev/null | tr -d '\r\n' || true
}
for t in sandboxd nginx; do
  for s in full resumed; do
    [[ $t == sandboxd && $s == resumed ]] && continue   # one port serves both
    a=""
    for ((i = 0; i < 300; i++)); do   # <= 30 s
      kill -0 "${PID[$t]}" 2>/dev/null || break
      a=$(answers "$(port_of "$t" "$s")")
      [[ "$a" == *" 200" ]] && break
      sleep 0.1
    done
    if [[ "$a" != *" 200" ]]; then
      tail -20 "$tmp/sandboxd.log" "$tmp/nginx/error.log" >&2 2>/dev/null
      fail "$t ($s) does not answer 200 over HTTPS (got '$a')"
    fi
  done
done
say "both answer: sandboxd '$(answers "${PORT[sandboxd]}")', nginx '$(answers "${PORT[nginx_full]}")'"

# ------------------------------------------------------------------------------ accounting

HZ=$(getconf CLK_TCK)
tree_pids() {  # PID -> PID and all its descendants
  local p=$1 c
  echo "$p"
  for c in $(pgrep -P "$p" 2>/dev/null || true); do tree_pids "$c"; done
}
cpu_ticks() {  # PIDS... -> utime+stime ticks, summed over every thread of each process
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
child_ticks() {  # CPU of the reaped children of this shell (wrk)
  local line
  local -a f
  line=$(cat /proc/$$/stat)
  line=${line##*) }
  read -r -a f <<<"$line"
  echo $((f[13] + f[14]))
}
core_ticks() {  # N -> "busy total" ticks of cpuN
  awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print $2 + $3 + $4 + $7 + $8, t }' /proc/stat
}
quiet_gate() {  # waits <= QUIET_WAIT s for the machine to be < QUIET_MAX % of one core busy
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

# run_wrk TARGET SCENARIO SECONDS [CONNS] -> the WRK line (empty on failure); bounded by timeout(1).
run_wrk() {
  local pre=()
  [[ $2 == full ]] && pre=(env "LD_PRELOAD=$tmp/full.so")
  timeout -k 5 $(($3 + 30)) "${pre[@]}" taskset -c "$LOAD_CPU" wrk -t1 -c"${4:-$CONNS}" -d"$3s" \
    --timeout 5s -s "$bench/edge_wrk.lua" -H "Host: $HOST" -H "Connection: close" \
    "https://127.0.0.1:$(port_of "$1" "$2")/healthz" 2>&1 |
    grep '^WRK ' || true
}

# ------------------------------------------------------------------------------ client check

# The check port issues tickets: with the shim no handshake may be a resumption, without it
# nearly all of them must be. nginx logs "r" for a reused session and "." for a full one.
client_check() {  # SCENARIO -> "<full> <reused>" handshake counts seen by the check port
  local line pre=()
  [[ $1 == full ]] && pre=(env "LD_PRELOAD=$tmp/full.so")
  : >"$tmp/nginx/check.log"
  line=$(timeout -k 5 30 "${pre[@]}" taskset -c "$LOAD_CPU" wrk -t1 -c4 -d1s \
    -s "$bench/edge_wrk.lua" -H "Host: $HOST" -H "Connection: close" \
    "https://127.0.0.1:${PORT[nginx_check]}/healthz" 2>&1 | grep '^WRK ' || true)
  [[ -n "$line" ]] || { echo "0 0"; return; }
  sleep 0.3   # the access log is written as each request ends
  awk '$2 == "r" { r++ } $2 == "." { f++ } END { print f + 0, r + 0 }' "$tmp/nginx/check.log"
}
# And the servers' side: a second openssl s_client offers the first one's session.
resumes() {  # PORT -> yes when the server accepts a session it issued (ticket), else no
  local req='GET /healthz HTTP/1.1\r\nHost: preview.test\r\nConnection: close\r\n\r\n'
  rm -f "$tmp/session.pem"
  # shellcheck disable=SC2059  # the request is the format: it holds the \r\n escapes
  printf "$req" | timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername "$HOST" -ign_eof \
    -sess_out "$tmp/session.pem" >/dev/null 2>&1 || true
  [[ -s "$tmp/session.pem" ]] || { echo no; return; }
  # shellcheck disable=SC2059
  if printf "$req" | timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername "$HOST" -ign_eof \
       -sess_in "$tmp/session.pem" 2>/dev/null | grep -q '^Reused'; then echo yes; else echo no; fi
}
echo "server resumes a session (openssl s_client): sandboxd $(resumes "${PORT[sandboxd]}"), nginx full port $(resumes "${PORT[nginx_full]}"), nginx resumed port $(resumes "${PORT[nginx_resumed]}")" >>"$OUT/env.txt"
say "$(tail -1 "$OUT/env.txt")"

read -r cf cr <<<"$(client_check full)"
read -r rf rr <<<"$(client_check resumed)"
echo "client check: with the shim $cf full / $cr resumed; without it $rf full / $rr resumed (nginx check port, tickets on)" >>"$OUT/env.txt"
say "client check: shim -> $cf full, $cr resumed; plain wrk -> $rf full, $rr resumed"
((cf > 0 && cr == 0)) || fail "the shim does not stop wrk from resuming sessions"
((rr > rf)) || say "warning: plain wrk resumed fewer handshakes than it made in full ($rr vs $rf)"

# ------------------------------------------------------------------------------ rounds

RAW=$OUT/raw.tsv
printf 'round\tscenario\ttarget\thandshakes\tseconds\ths_per_s\tp50_us\tp90_us\tp99_us\tmax_us\terrors\tnon2xx\tserver_cpu_pct\tserver_us_per_hs\twrk_cpu_pct\twrk_us_per_hs\tcpu%s_pct\tcpu%s_pct\tforeign_pct\tpre_busy_pct\n' \
  "$LOAD_CPU" "$PROXY_CPU" >"$RAW"
read -r -a TA <<<"$TARGETS"
nt=${#TA[@]}
if ((WARMUP > 0)); then
  say "warm-up: ${WARMUP}s of each scenario per target (not recorded)"
  for s in $SCENARIOS; do
    for t in "${TA[@]}"; do run_wrk "$t" "$s" "$WARMUP" >/dev/null; done
  done
fi
say "handshakes: $ROUNDS rounds x $(wc -w <<<"$SCENARIOS") scenarios x $nt targets x ${DUR}s"
for ((r = 1; r <= ROUNDS; r++)); do
  past_deadline && { say "BENCH_TIMEOUT reached; no more rounds"; break; }
  for s in $SCENARIOS; do
    for ((k = 0; k < nt; k++)); do
      t=${TA[$(((k + r - 1) % nt))]}
      kill -0 "${PID[$t]}" 2>/dev/null || fail "$t (pid ${PID[$t]}) is gone"
      read -r -a pp <<<"$(tree_pids "${PID[$t]}" | tr '\n' ' ')"
      busy_before=$(quiet_gate)
      read -r -a c0a <<<"$(core_ticks "$LOAD_CPU")"; read -r -a c1a <<<"$(core_ticks "$PROXY_CPU")"
      pa=$(cpu_ticks "${pp[@]}"); wa=$(child_ticks)
      line=$(run_wrk "$t" "$s" "$DUR")
      read -r -a c0b <<<"$(core_ticks "$LOAD_CPU")"; read -r -a c1b <<<"$(core_ticks "$PROXY_CPU")"
      pb=$(cpu_ticks "${pp[@]}"); wb=$(child_ticks)
      if [[ -z "$line" ]]; then say "round $r $s $t: wrk gave no result"; continue; fi
      W=()
      for kv in ${line#WRK }; do W[${kv%%=*}]=${kv#*=}; done
      awk -v r="$r" -v s="$s" -v t="$t" -v req="${W[requests]}" -v secs="${W[seconds]}" \
          -v p50="${W[p50_us]}" -v p90="${W[p90_us]}" -v p99="${W[p99_us]}" -v mx="${W[max_us]}" \
          -v err="${W[errors]}" -v non2="${W[non2xx]}" -v pd=$((pb - pa)) -v wd=$((wb - wa)) \
          -v c0=$((c0b[0] - c0a[0])) -v c0t=$((c0b[1] - c0a[1])) -v c1=$((c1b[0] - c1a[0])) \
          -v c1t=$((c1b[1] - c1a[1])) -v hz="$HZ" -v pre="$busy_before" 'BEGIN {
            fr = 100 * (c0 + c1 - pd - wd) / hz / secs; if (fr < 0) fr = 0
            printf "%d\t%s\t%s\t%d\t%.3f\t%.0f\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%s\t%.1f\t%s\t%.1f\t%.1f\t%.1f\t%s\n",
              r, s, t, req, secs, req / secs, p50, p90, p99, mx, err, non2,
              100 * pd / hz / secs, req ? sprintf("%.2f", pd * 1e6 / hz / req) : "NA",
              100 * wd / hz / secs, req ? sprintf("%.2f", wd * 1e6 / hz / req) : "NA",
              100 * c0 / (c0t ? c0t : 1), 100 * c1 / (c1t ? c1t : 1), fr, pre }' >>"$RAW"
      say "$(tail -1 "$RAW" | awk -F'\t' '{ printf "r%s %-7s %-8s %6s hs/s  server %5s%% %6s us/hs  wrk %5s%%  err %s/%s  foreign %s%%", $1, $2, $3, $6, $13, $14, $15, $11, $12, $19 }')"
    done
  done
done

# ------------------------------------------------------------------------------ report

echo "loadavg_after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/env.txt"
if grep -q ' error \| warn ' "$tmp/sandboxd.log"; then
  say "sandboxd logged warnings or errors:"; grep ' error \| warn ' "$tmp/sandboxd.log" | head -20 >&2
fi
python3 "$bench/tls_report.py" "$OUT" >"$OUT/summary.md"
cat "$OUT/summary.md"
say "results in $OUT"
