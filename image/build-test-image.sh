#!/usr/bin/env bash
# Builds the tiny image the Docker tests use as their sandbox image, in about a second.
#
#   [TESTAPP=PATH] [RUNTIMED=PATH] image/build-test-image.sh [TAG]   (default sandboxd-test:latest)
#
# TESTAPP names the static test app built by CMake (<build>/image/testapp/testapp). When it
# is given, the image holds it as /usr/local/bin/testapp and serves it instead of busybox
# httpd; the tests, scripts/test.sh and scripts/run.sh pass it.
#
# RUNTIMED names the static runtimed (<build>/runtimed/runtimed-static). When it is given,
# the image is a sandboxd sandbox image (SPEC §6.1): its ENTRYPOINT is
# /usr/local/bin/runtimed, which needs the runtimed.json that sandboxd writes before every
# start (it exits 78 without one), and the app is the dev server that runtimed supervises:
# /usr/local/bin/sandbox-dev, which sandboxd runs when sandbox.dev_command names it (the
# integration tests' configuration does). /bin/bash is a two-line stand-in that runs busybox
# sh, since runtimed starts the dev command as `bash -lc <command>`. The integration tests
# and scripts/test.sh pass it. Without RUNTIMED the image runs sandbox-init as before (the
# Docker client's own tests use that image, under another tag).
#
# Nothing is pulled: the root file system is assembled here from the host's busybox-static
# and imported through the Engine API (`POST /images/create?fromSrc=-` with a tar body), on
# the socket named by DOCKER_HOST (unix:// only) or /var/run/docker.sock.
#
# The image holds: busybox with all its applet links in /bin; /tmp with mode 1777 (Docker
# copies that mode onto a tmpfs mounted there); user and group `sandbox` 1000:1000 with home
# /home/sandbox; /opt/sandbox-skel/ (README.md, workspace/.keep) for workspace seeding; and
# /usr/local/bin/sandbox-init, its CMD (without RUNTIMED), which runs the testapp (or, without
# it, serves the hostname over busybox httpd) on $PORT (default 3000) and exits at once on
# SIGTERM. Default user 1000:1000, workdir /home/sandbox.
#
# Idempotent: the image carries a label with the hash of its inputs; when an image with TAG
# and the same hash exists, nothing is built. Prints the image id on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tag=${1:-sandboxd-test:latest}
repo=${tag%:*}
version=${tag##*:}
if [[ "$repo" == "$tag" || "$version" == */* ]]; then  # no tag part (a registry port is not one)
  repo=$tag
  version=latest
fi

say() { echo "build-test-image: $*" >&2; }

sock=/var/run/docker.sock
if [[ -n "${DOCKER_HOST:-}" ]]; then
  [[ "$DOCKER_HOST" == unix://* ]] || { say "DOCKER_HOST must be unix://, got $DOCKER_HOST"; exit 1; }
  sock=${DOCKER_HOST#unix://}
fi
api() { curl -sS -m 60 --unix-socket "$sock" "$@"; }
if [[ "$(api -m 5 http://localhost/_ping 2>/dev/null)" != OK ]]; then
  say "no Docker Engine answers on $sock; run: eval \"\$(scripts/docker-engine.sh start)\""
  exit 1
fi

busybox=${BUSYBOX:-/bin/busybox}
if [[ ! -x "$busybox" ]] || ldd "$busybox" >/dev/null 2>&1; then
  say "$busybox is not a static busybox: apt-get install busybox-static"
  exit 1
fi

urlencode() {
  local LC_ALL=C s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case "$c" in
      [a-zA-Z0-9.~_-]) out+=$c ;;
      *) out+=$(printf '%%%02X' "'$c") ;;
    esac
  done
  printf '%s' "$out"
}

image_id() {  # prints the id of $tag, or nothing
  api "http://localhost/images/$(urlencode "$tag")/json" 2>/dev/null |
    sed -n 's/^{"Id":"\([^"]*\)".*/\1/p'
}

testapp=${TESTAPP:-}
if [[ -n "$testapp" ]] && { [[ ! -x "$testapp" ]] || ldd "$testapp" >/dev/null 2>&1; }; then
  say "TESTAPP=$testapp is not a static executable: build the testapp target first"
  exit 1
fi
runtimed=${RUNTIMED:-}
if [[ -n "$runtimed" ]] && { [[ ! -x "$runtimed" ]] || ldd "$runtimed" >/dev/null 2>&1; }; then
  say "RUNTIMED=$runtimed is not a static executable: build the runtimed-static target first"
  exit 1
fi

# runtimed goes in stripped: a tenth of the size, and build directories of one build type
# then hand over the same bytes instead of rebuilding the shared image in turn.
stripped=""
if [[ -n "$runtimed" ]]; then
  stripped=$(mktemp /tmp/sandboxd-test-runtimed.XXXXXX)
  trap 'rm -f "$stripped"' EXIT
  strip --strip-all -o "$stripped" "$runtimed"
fi

# The binaries' bytes are part of the hash, so a changed app or runtimed rebuilds the image
# (and an image without one differs from one with it). The mode word keeps an image with
# only one of them apart from one with only the other.
mode="testapp=${testapp:+yes} runtimed=${runtimed:+yes}"
hash=$( (echo "$mode"; cat "$0" "$here/sandbox-init" "$here/sandbox-dev" "$busybox" \
  ${testapp:+"$testapp"} ${stripped:+"$stripped"}) | sha256sum | cut -c1-16)
existing=$(api "http://localhost/images/$(urlencode "$tag")/json" 2>/dev/null || true)
if [[ "$existing" == *"\"sandboxd.test-image.hash\":\"$hash\""* ]]; then
  say "$tag is up to date"
  image_id
  exit 0
fi
previous=$(image_id)

work=$(mktemp -d /tmp/sandboxd-test-image.XXXXXX)
trap 'rm -rf "$work" ${stripped:+"$stripped"}' EXIT
root=$work/root
mkdir -p "$root"/{bin,etc,tmp,root,proc,sys,dev,run,usr/bin,usr/local/bin,var/www} \
  "$root/home/sandbox" "$root/opt/sandbox-skel/workspace"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
install -m 0755 "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [[ "$applet" == busybox ]] || ln -s busybox "$root/bin/$applet"
done
ln -s /bin/env "$root/usr/bin/env"
install -m 0755 "$here/sandbox-init" "$root/usr/local/bin/sandbox-init"
if [[ -n "$testapp" ]]; then
  install -m 0755 "$testapp" "$root/usr/local/bin/testapp"
fi
if [[ -n "$runtimed" ]]; then
  install -m 0755 "$stripped" "$root/usr/local/bin/runtimed"
  install -m 0755 "$here/sandbox-dev" "$root/usr/local/bin/sandbox-dev"
  printf '#!/bin/sh\n# bash stand-in of the sandboxd test image: busybox sh\nexec /bin/sh "$@"\n' \
    >"$root/bin/bash"
  chmod 0755 "$root/bin/bash"
fi

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
sandbox:x:1000:1000:sandbox:/home/sandbox:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
sandbox:x:1000:
nogroup:x:65534:
EOF
echo 'sandboxd test image' >"$root/var/www/index.html"
cat >"$root/opt/sandbox-skel/README.md" <<'EOF'
# Workspace

Seeded from /opt/sandbox-skel of the sandboxd test image.
EOF
: >"$root/opt/sandbox-skel/workspace/.keep"
chown 1000:1000 "$root/home/sandbox"

changes=(
  'ENV PATH=/usr/local/bin:/bin'
  'ENV HOME=/home/sandbox'
  'USER 1000:1000'
  'WORKDIR /home/sandbox'
  "LABEL sandboxd.test-image.hash=$hash"
)
if [[ -n "$runtimed" ]]; then
  changes+=('ENTRYPOINT ["/usr/local/bin/runtimed"]')
else
  changes+=('CMD ["/usr/local/bin/sandbox-init"]')
fi
query="fromSrc=-&repo=$(urlencode "$repo")&tag=$(urlencode "$version")"
for c in "${changes[@]}"; do query+="&changes=$(urlencode "$c")"; done

tar --numeric-owner -C "$root" -cf "$work/rootfs.tar" .
out=$(api -X POST -H 'Content-Type: application/x-tar' --data-binary "@$work/rootfs.tar" \
  "http://localhost/images/create?$query")
if [[ "$out" == *'"error"'* || "$out" != *'"status":"sha256:'* ]]; then
  say "import failed: $out"
  exit 1
fi
id=$(image_id)
[[ -n "$id" ]] || { say "imported, but $tag cannot be inspected"; exit 1; }
if [[ -n "$previous" && "$previous" != "$id" ]]; then
  # The outdated image is untagged now; drop it unless a container still uses it.
  api -X DELETE "http://localhost/images/$previous" >/dev/null 2>&1 || true
fi
say "built $tag ($(du -k "$work/rootfs.tar" | cut -f1) KiB)"
echo "$id"
