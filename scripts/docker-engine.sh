#!/usr/bin/env bash
# Makes a Docker Engine available to the tests (Debian bookworm, root, no systemd).
#
#   scripts/docker-engine.sh start   use a running engine or start a private dockerd;
#                                    prints `export DOCKER_HOST=unix:///...` on stdout
#   scripts/docker-engine.sh env     prints that line if the engine answers, else fails
#   scripts/docker-engine.sh stop    stops the private dockerd this script started (by its
#                                    recorded PID) and waits for it to exit
#
# Typical use:  eval "$(scripts/docker-engine.sh start)"; trap 'scripts/docker-engine.sh stop' EXIT
#
# An engine that already answers `GET /_ping` ($DOCKER_HOST, else /var/run/docker.sock) is used
# as it is and never stopped by this script. Otherwise docker.io (plus busybox-static, curl and
# iptables) is installed with apt-get when missing, and dockerd runs on its own socket, data
# root and exec root under $SANDBOXD_DOCKERD_DIR (default /tmp/sandboxd-dockerd): pidfile
# dockerd.pid, log dockerd.log. Every command is idempotent. Messages go to stderr; stdout
# carries only the export line. Exit status is non-zero whenever no engine can be had, so CI
# fails rather than skips.
set -euo pipefail

state_dir=${SANDBOXD_DOCKERD_DIR:-/tmp/sandboxd-dockerd}
sock="$state_dir/docker.sock"
pidfile="$state_dir/dockerd.pid"
logfile="$state_dir/dockerd.log"
ready_tries=${SANDBOXD_DOCKERD_READY_TRIES:-300}   # x 0.1 s: 30 s to answer /_ping

say() { echo "docker-engine: $*" >&2; }

# engine_ping SOCKET_PATH: true when the engine on that socket answers OK.
engine_ping() {
  [[ -S "$1" ]] || return 1
  [[ "$(curl -s -m 2 --unix-socket "$1" http://localhost/_ping 2>/dev/null)" == OK ]]
}

# The socket path of a unix:// DOCKER_HOST, empty for anything else.
docker_host_socket() {
  local h=${DOCKER_HOST:-}
  [[ "$h" == unix://* ]] && echo "${h#unix://}"
  return 0
}

api_version() {
  curl -s -m 2 --unix-socket "$1" http://localhost/version 2>/dev/null |
    sed -n 's/.*"ApiVersion":"\([0-9.]*\)".*/\1/p'
}

announce() {
  say "engine ready at unix://$1 (API $(api_version "$1"))"
  echo "export DOCKER_HOST=unix://$1"
}

# The PID of the private dockerd if it is alive and really ours, else nothing.
our_pid() {
  [[ -f "$pidfile" ]] || return 0
  local pid
  pid=$(cat "$pidfile" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  # Guards against a recycled PID: it must be a dockerd serving our socket.
  if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "dockerd.*unix://$sock"; then
    echo "$pid"
  fi
}

install_missing() {
  local need=()
  command -v curl >/dev/null || need+=(curl)
  command -v dockerd >/dev/null || need+=(docker.io)
  # The test image needs a static busybox (Debian's plain `busybox` is dynamic).
  if [[ ! -x /bin/busybox ]] || ldd /bin/busybox >/dev/null 2>&1; then need+=(busybox-static); fi
  command -v iptables >/dev/null || need+=(iptables)
  ((${#need[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    say "missing ${need[*]} and not root: install them or provide DOCKER_HOST"
    exit 1
  fi
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${need[@]}" >&2
}

start_private() {
  mkdir -p "$state_dir"
  local pid
  pid=$(our_pid)
  if [[ -n "$pid" ]]; then
    say "private dockerd already running (pid $pid)"
  else
    install_missing
    if [[ $(id -u) -ne 0 ]]; then
      say "a private dockerd needs root"
      exit 1
    fi
    rm -f "$sock" "$pidfile"
    say "starting private dockerd (state in $state_dir, log $logfile)"
    # setsid: the engine outlives the shell that started it; stop it with `stop`.
    setsid dockerd \
      --host "unix://$sock" \
      --data-root "$state_dir/data" \
      --exec-root "$state_dir/exec" \
      --pidfile "$pidfile" \
      </dev/null >>"$logfile" 2>&1 &
    pid=$!
  fi
  local i
  for ((i = 0; i < ready_tries; i++)); do
    if engine_ping "$sock"; then
      announce "$sock"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      say "dockerd exited during start; last lines of $logfile:"
      tail -n 30 "$logfile" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  say "dockerd did not answer /_ping within $((ready_tries / 10)) s; last lines of $logfile:"
  tail -n 30 "$logfile" >&2 || true
  exit 1
}

cmd_start() {
  command -v curl >/dev/null || install_missing
  local s
  s=$(docker_host_socket)
  if [[ -n "$s" ]] && engine_ping "$s"; then
    announce "$s"
    return 0
  fi
  [[ -n "${DOCKER_HOST:-}" ]] && say "DOCKER_HOST=$DOCKER_HOST does not answer; looking further"
  if engine_ping /var/run/docker.sock; then
    announce /var/run/docker.sock
    return 0
  fi
  start_private
}

cmd_env() {
  local s
  s=$(docker_host_socket)
  for candidate in "$s" /var/run/docker.sock "$sock"; do
    if [[ -n "$candidate" ]] && engine_ping "$candidate"; then
      echo "export DOCKER_HOST=unix://$candidate"
      return 0
    fi
  done
  say "no Docker Engine answers; run: eval \"\$(scripts/docker-engine.sh start)\""
  exit 1
}

cmd_stop() {
  local pid
  pid=$(our_pid)
  if [[ -z "$pid" ]]; then
    say "no private dockerd running"
    return 0
  fi
  say "stopping private dockerd (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  # dockerd stops its containers first (up to their stop timeouts): allow 30 s, then kill.
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "dockerd still running after 30 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
  if kill -0 "$pid" 2>/dev/null; then
    say "dockerd (pid $pid) did not exit"
    exit 1
  fi
  rm -f "$pidfile"
  say "stopped"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  env) cmd_env ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
