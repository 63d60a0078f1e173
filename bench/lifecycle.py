#!/usr/bin/env python3
"""Lifecycle latency of sandboxd next to the same operations sent straight to the Engine API.

Each round runs two paths one after the other (the order alternates between rounds, so a drift
of the machine's load hits both alike):

  direct    POST /containers/create (the hardened spec of SPEC 5.4) + POST start + GET json
            -> "create->running"; POST stop?t=GRACE -> "stop"; POST start + GET json
            -> "stop->start"; DELETE ?force=1 -> "remove".
  sandboxd  POST /v1/sandboxes?wait=true -> "create->running"; POST /v1/sandboxes/{id}/stop
            -> "stop"; POST /v1/sandboxes/{id}/start -> "stop->start"; DELETE -> "remove"
            (purge: container, workspace, store rows).

Between the timed steps, and never inside them, both paths wait in the same way until the
container's PID 1 has installed its SIGTERM handler (the test image's init ignores SIGTERM in
its first instants): GET /containers/{id}/top until the `sleep 2147483647` it starts after the
trap shows up. Both paths use the same stop grace.

Afterwards the Engine's own event log (GET /events with since/until, outside the timed part)
gives the time of each container event (create, start, die, ...) relative to the start of the
call, which shows where sandboxd's extra time goes.

Python 3 standard library only. Traffic: the sandboxd control address (loopback) and the
Docker unix socket.
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import secrets
import shutil
import socket
import sys
import time
import urllib.parse

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
READY_MARK = "sleep 2147483647"  # started by the test image's init once its trap is set


# ------------------------------------------------------------------------------- HTTP plumbing

class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over an AF_UNIX stream socket (the Docker Engine API)."""

    def __init__(self, socket_path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.socket_path)
        self.sock = s


class Client:
    """One keep-alive connection; reconnects once when the peer closed it between calls."""

    def __init__(self, factory, prefix=""):
        self.factory = factory
        self.prefix = prefix
        self.conn = None

    def request(self, method, path, body=None, ok=(200,)):
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = self.factory()
            try:
                self.conn.request(method, self.prefix + path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        if resp.status not in ok:
            raise RuntimeError(f"{method} {path} -> {resp.status}: {raw[:300]!r}")
        if raw and (resp.getheader("Content-Type") or "").startswith("application/json"):
            return resp.status, json.loads(raw)
        return resp.status, raw

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# ------------------------------------------------------------------------------- helpers

def new_ulid():
    value = (int(time.time() * 1000) << 80) | int.from_bytes(secrets.token_bytes(10), "big")
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def ms_since(t0):
    return (time.perf_counter_ns() - t0) / 1e6


def percentile(values, p):
    """Linear interpolation between closest ranks (numpy's default)."""
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def cpu_busy_sample():
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    vals = [int(x) for x in parts]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


def fsync_probe(directory, n=20):
    """Median ms of a 4 KiB write + fsync in `directory`: the price of one durable store
    commit there (sandboxd's SQLite runs with synchronous=FULL)."""
    path = os.path.join(directory, ".fsync-probe")
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(n):
            t = time.perf_counter_ns()
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
            times.append(ms_since(t))
    finally:
        os.close(fd)
        os.unlink(path)
    return round(percentile(times, 50), 2)


def busy_pct(a, b):
    dt = b[1] - a[1]
    return round(100.0 * (b[0] - a[0]) / dt, 1) if dt else None


# ------------------------------------------------------------------------------- the bench

class Bench:
    def __init__(self, args):
        self.args = args
        sock = args.docker_socket
        self.docker = Client(lambda: UnixHTTPConnection(sock, args.http_timeout))
        _, version = self.docker.request("GET", "/version")
        self.engine = {"version": version.get("Version"), "api": version.get("ApiVersion")}
        self.docker.prefix = "/v" + version["ApiVersion"]
        host, port = args.sandboxd.rsplit(":", 1)
        self.sd = Client(lambda: http.client.HTTPConnection(host, int(port), timeout=args.http_timeout))
        self.user = args.user
        self.uid, self.gid = (int(x) for x in args.user.split(":"))
        self.spec_check = None
        self.samples = {"direct": [], "sandboxd": []}

    # ---- shared waits and event log

    def wait_init_ready(self, name):
        """Untimed: poll /top until PID 1's trap is installed (bounded)."""
        deadline = time.monotonic() + self.args.ready_timeout
        q = urllib.parse.urlencode({"ps_args": "-o pid,args"})
        while time.monotonic() < deadline:
            st, top = self.docker.request("GET", f"/containers/{name}/top?{q}", ok=(200, 404, 409, 500))
            if st == 200 and any(READY_MARK in " ".join(p) for p in top.get("Processes") or []):
                return True
            time.sleep(0.01)
        raise RuntimeError(f"{name}: init not ready after {self.args.ready_timeout}s")

    def events(self, since_ns, until_ns):
        """Container events of the Engine between two wall-clock times (past only)."""
        q = urllib.parse.urlencode({
            "since": f"{since_ns // 10**9}.{since_ns % 10**9:09d}",
            "until": f"{until_ns // 10**9}.{until_ns % 10**9:09d}",
            "filters": json.dumps({"type": ["container"]}),
        })
        conn = UnixHTTPConnection(self.args.docker_socket, self.args.http_timeout)
        try:
            conn.request("GET", f"{self.docker.prefix}/events?{q}")
            raw = conn.getresponse().read()
        finally:
            conn.close()
        out = []
        dec = json.JSONDecoder()
        text = raw.decode(errors="replace")
        i = 0
        while i < len(text):
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text):
                break
            obj, i = dec.raw_decode(text, i)
            out.append(obj)
        return out

    def milestones(self, name, t0_wall, t1_wall, with_skeleton):
        """Offsets (ms from the call) of the container's events, plus the skeleton probe's."""
        time.sleep(0.005)  # let the Engine publish the last event
        evs = self.events(t0_wall - 5 * 10**6, time.time_ns())
        marks = {}
        skel = {}
        for e in evs:
            attrs = (e.get("Actor") or {}).get("Attributes") or {}
            at = e.get("timeNano", 0)
            if at < t0_wall or at > t1_wall + 5 * 10**6:
                continue
            action = e.get("Action") or e.get("status")
            off = round((at - t0_wall) / 1e6, 2)
            if attrs.get("name") == name:
                marks.setdefault(action, off)
            elif with_skeleton and attrs.get("sandboxd.skeleton") == "true" \
                    and attrs.get("image") == self.args.image:
                skel.setdefault(e["Actor"]["ID"], {}).setdefault(action, off)
        if with_skeleton:
            if len(skel) == 1:
                for action, off in next(iter(skel.values())).items():
                    marks["skeleton." + action] = off
            elif len(skel) > 1:
                marks["skeleton.ambiguous"] = len(skel)
        marks["return"] = round((t1_wall - t0_wall) / 1e6, 2)
        return marks

    def timed(self, fn):
        w0, p0 = time.time_ns(), time.perf_counter_ns()
        result = fn()
        ms = ms_since(p0)
        return ms, result, w0, w0 + int(ms * 1e6)

    # ---- direct path

    def direct_spec(self, sid, workspace, rundir):
        a = self.args
        return {
            "Image": a.image,
            "Hostname": "s-" + sid.lower(),
            "User": self.user,
            "Env": [
                "HOME=/home/sandbox",
                "SANDBOX_ID=" + sid,
                "SANDBOX_PREVIEW_HOST=s-" + sid.lower() + "-{port}.preview.localhost",
            ],
            "WorkingDir": "/home/sandbox/workspace",
            "Labels": {"sandboxd.managed": "true", "sandboxd.id": sid,
                       "sandboxd.instance": "bench-direct", "sandboxd.bench": a.tag},
            "StopSignal": "SIGTERM",
            "StopTimeout": a.grace,
            "HostConfig": {
                "Binds": [workspace + ":/home/sandbox:rw", rundir + ":/run/sandboxd:rw"],
                "CapDrop": ["ALL"],
                "SecurityOpt": ["no-new-privileges"],
                "ReadonlyRootfs": True,
                "Tmpfs": {"/tmp": f"rw,exec,nosuid,nodev,size={a.tmpfs_size}"},
                "Memory": a.memory,
                "MemorySwap": a.memory,
                "PidsLimit": a.pids,
                "Ulimits": [{"Name": "nofile", "Soft": a.nofile, "Hard": a.nofile}],
                "NetworkMode": a.network,
                "Init": False,
                "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "2"}},
            },
            "NetworkingConfig": {"EndpointsConfig": {a.network: {}}},
        }

    def prepare_workspace(self, sid):
        """Untimed: the workspace and run directory the direct container binds, seeded like
        the test image's /opt/sandbox-skel, owned by the sandbox user."""
        ws = os.path.join(self.args.workdir, "workspaces", sid)
        run = os.path.join(self.args.workdir, "run", sid)
        os.makedirs(os.path.join(ws, "workspace"), mode=0o755)
        with open(os.path.join(ws, "README.md"), "w") as f:
            f.write("# Workspace\n")
        open(os.path.join(ws, "workspace", ".keep"), "w").close()
        os.makedirs(run, mode=0o700)
        if os.geteuid() == 0:
            for d in (ws, os.path.join(ws, "workspace"), run):
                os.chown(d, self.uid, self.gid)
            for f in (os.path.join(ws, "README.md"), os.path.join(ws, "workspace", ".keep")):
                os.chown(f, self.uid, self.gid)
        return ws, run

    def inspect_ip(self, ref):
        _, info = self.docker.request("GET", f"/containers/{ref}/json")
        ip = (((info.get("NetworkSettings") or {}).get("Networks") or {})
              .get(self.args.network) or {}).get("IPAddress")
        if not info["State"]["Running"] or not ip:
            raise RuntimeError(f"{ref}: not running with an IP after start")
        return info

    def round_direct(self, check_spec=False):
        sid = new_ulid()
        name = "s-" + sid
        ws, run = self.prepare_workspace(sid)
        spec = self.direct_spec(sid, ws, run)
        s = {}
        cid = None

        def create_running():
            nonlocal cid
            p = time.perf_counter_ns()
            _, made = self.docker.request("POST", "/containers/create?name=" + name, spec, ok=(201,))
            cid = made["Id"]
            s["create_call_ms"] = ms_since(p)
            p = time.perf_counter_ns()
            self.docker.request("POST", f"/containers/{cid}/start", ok=(204,))
            s["start_call_ms"] = ms_since(p)
            return self.inspect_ip(cid)

        try:
            s["create"], info, w0, w1 = self.timed(create_running)
            s["create_events"] = self.milestones(name, w0, w1, False)
            if check_spec:
                self.direct_info = info
            self.wait_init_ready(cid)
            s["stop"], _, w0, w1 = self.timed(
                lambda: self.docker.request("POST", f"/containers/{cid}/stop?t={self.args.grace}", ok=(204,)))
            s["stop_events"] = self.milestones(name, w0, w1, False)

            def start_running():
                self.docker.request("POST", f"/containers/{cid}/start", ok=(204,))
                return self.inspect_ip(cid)

            s["start"], _, w0, w1 = self.timed(start_running)
            s["start_events"] = self.milestones(name, w0, w1, False)
            self.wait_init_ready(cid)

            def remove():
                self.docker.request("DELETE", f"/containers/{cid}?force=1", ok=(204,))
                shutil.rmtree(ws)
                shutil.rmtree(run)

            s["remove"], _, _, _ = self.timed(remove)
            cid = None
        finally:
            if cid:
                self.docker.request("DELETE", f"/containers/{cid}?force=1", ok=(204, 404))
            shutil.rmtree(ws, ignore_errors=True)
            shutil.rmtree(run, ignore_errors=True)
        return s

    # ---- through sandboxd

    def round_sandboxd(self, n, check_spec=False):
        s = {}
        sid = None
        body = {"project": {"id": f"bench-{self.args.tag}-{n}", "user_id": "bench"}}
        try:
            def create():
                st, obj = self.sd.request("POST", "/v1/sandboxes?wait=true", body, ok=(201,))
                if obj.get("status") != "running":
                    raise RuntimeError(f"create answered status {obj.get('status')}")
                return obj

            s["create"], obj, w0, w1 = self.timed(create)
            sid = obj["id"]
            name = "s-" + sid
            s["create_events"] = self.milestones(name, w0, w1, True)
            if check_spec:
                _, self.sandboxd_info = self.docker.request("GET", f"/containers/{name}/json")
            self.wait_init_ready(name)

            def stop():
                _, o = self.sd.request("POST", f"/v1/sandboxes/{sid}/stop",
                                       {"timeout_s": self.args.grace})
                if o.get("status") != "stopped":
                    raise RuntimeError(f"stop answered status {o.get('status')}")

            s["stop"], _, w0, w1 = self.timed(stop)
            s["stop_events"] = self.milestones(name, w0, w1, False)

            def start():
                _, o = self.sd.request("POST", f"/v1/sandboxes/{sid}/start")
                if o.get("status") != "running":
                    raise RuntimeError(f"start answered status {o.get('status')}")

            s["start"], _, w0, w1 = self.timed(start)
            s["start_events"] = self.milestones(name, w0, w1, False)
            self.wait_init_ready(name)
            s["remove"], _, _, _ = self.timed(
                lambda: self.sd.request("DELETE", f"/v1/sandboxes/{sid}", ok=(204,)))
            sid = None
        finally:
            if sid:
                try:
                    self.sd.request("DELETE", f"/v1/sandboxes/{sid}", ok=(204,))
                except Exception as e:  # report, keep the original error
                    print(f"cleanup of sandbox {sid} failed: {e}", file=sys.stderr)
        return s

    # ---- fairness check: the two containers must carry the same hardening

    def compare_specs(self):
        def pick(info):
            c, h = info["Config"], info["HostConfig"]
            return {
                "User": c.get("User"), "WorkingDir": c.get("WorkingDir"),
                "StopSignal": c.get("StopSignal"), "StopTimeout": c.get("StopTimeout"),
                "Env names": sorted(e.split("=", 1)[0] for e in c.get("Env") or []),
                "Label keys": sorted((c.get("Labels") or {}).keys()),
                "Bind targets": sorted(b.split(":")[1] for b in h.get("Binds") or []),
                **{k: h.get(k) for k in (
                    "CapDrop", "CapAdd", "SecurityOpt", "ReadonlyRootfs", "Tmpfs", "Memory",
                    "MemorySwap", "PidsLimit", "Ulimits", "NanoCpus", "Init", "NetworkMode",
                    "RestartPolicy", "LogConfig", "Privileged", "Runtime")},
            }
        d, s = pick(self.direct_info), pick(self.sandboxd_info)
        # The direct containers carry one extra label (sandboxd.bench) to be found by cleanup.
        d["Label keys"] = [k for k in d["Label keys"] if k != "sandboxd.bench"]
        diffs = {k: {"direct": d[k], "sandboxd": s[k]} for k in d if d[k] != s[k]}
        self.spec_check = {"identical": not diffs, "differences": diffs}

    # ---- driver

    def run(self):
        a = self.args
        self.fsync_ms = fsync_probe(a.workdir)
        started = time.monotonic()
        cpu0 = cpu_busy_sample()
        load0 = os.getloadavg()
        for w in range(a.warmup):
            self.round_sandboxd(f"warm{w}", check_spec=(w == 0))
            self.round_direct(check_spec=(w == 0))
        if a.warmup:
            self.compare_specs()
            if not self.spec_check["identical"]:
                print("WARNING: container specs differ: " + json.dumps(self.spec_check["differences"]),
                      file=sys.stderr)
        done = 0
        for n in range(a.rounds):
            if time.monotonic() - started > a.max_seconds:
                print(f"time bound of {a.max_seconds}s reached after {done} rounds", file=sys.stderr)
                break
            order = ("direct", "sandboxd") if n % 2 == 0 else ("sandboxd", "direct")
            for path in order:
                s = self.round_direct() if path == "direct" else self.round_sandboxd(n)
                s["round"] = n
                self.samples[path].append(s)
            done += 1
            d, sd = self.samples["direct"][-1], self.samples["sandboxd"][-1]
            print(f"round {n + 1}/{a.rounds}: create {d['create']:.1f} / {sd['create']:.1f} ms, "
                  f"stop {d['stop']:.1f} / {sd['stop']:.1f} ms, start {d['start']:.1f} / "
                  f"{sd['start']:.1f} ms (direct / sandboxd)", file=sys.stderr)
        self.elapsed = time.monotonic() - started
        self.cpu_busy = busy_pct(cpu0, cpu_busy_sample())
        self.load = (load0, os.getloadavg())
        return done


# ------------------------------------------------------------------------------- report

OPS = [  # key, label, judged against the goal
    ("create", "create→running", True),
    ("start", "stop→start (start call)", True),
    ("stop", "stop (grace same for both)", False),
    ("remove", "remove / purge", False),
]


def verdict(direct_med, sd_med, pct, floor_ms):
    added = sd_med - direct_med
    allowed = max(direct_med * pct / 100.0, floor_ms)
    return added, allowed, added <= allowed


def summarize(bench):
    a = bench.args
    rows = []
    for key, label, judged in OPS:
        d = [s[key] for s in bench.samples["direct"]]
        s = [x[key] for x in bench.samples["sandboxd"]]
        if not d or not s:
            continue
        dm, sm = percentile(d, 50), percentile(s, 50)
        added, allowed, ok = verdict(dm, sm, a.goal_pct, a.goal_ms)
        rows.append({
            "op": key, "label": label, "judged": judged, "n": min(len(d), len(s)),
            "direct_median_ms": round(dm, 1), "direct_p90_ms": round(percentile(d, 90), 1),
            "sandboxd_median_ms": round(sm, 1), "sandboxd_p90_ms": round(percentile(s, 90), 1),
            "ratio": round(sm / dm, 3) if dm else None,
            "added_ms": round(added, 1), "allowed_ms": round(allowed, 1),
            "verdict": ("PASS" if ok else "FAIL") if judged else ("info: within" if ok else "info: over"),
        })
    return rows


def breakdown(bench, op):
    """Per path: the median offset (ms from the call) of each Engine event, and the median of
    each phase between consecutive events of a round (call → first event → ... → return)."""
    out = {}
    for path in ("direct", "sandboxd"):
        marks, phases, order = {}, {}, {}
        for s in bench.samples[path]:
            ev = {k: v for k, v in (s.get(op + "_events") or {}).items() if k != "skeleton.ambiguous"}
            prev, prev_t = "call", 0.0
            for i, (k, v) in enumerate(sorted(ev.items(), key=lambda kv: kv[1])):
                marks.setdefault(k, []).append(v)
                name = f"{prev}→{k}"
                phases.setdefault(name, []).append(v - prev_t)
                order.setdefault(name, []).append(i)
                prev, prev_t = k, v
        med = lambda v: round(percentile(v, 50), 1)
        out[path] = {
            "events": {k: {"median_ms": med(v), "n": len(v)}
                       for k, v in sorted(marks.items(), key=lambda kv: percentile(kv[1], 50))},
            # A phase seen in fewer rounds than the others means the events came in another
            # order in those rounds; n says how often.
            "phases": {k: {"median_ms": med(v), "n": len(v)}
                       for k, v in sorted(phases.items(), key=lambda kv: percentile(order[kv[0]], 50))},
        }
    return out


def direct_calls(bench):
    c = [s["create_call_ms"] for s in bench.samples["direct"]]
    st = [s["start_call_ms"] for s in bench.samples["direct"]]
    return {"create_call_median_ms": round(percentile(c, 50), 1) if c else None,
            "start_call_median_ms": round(percentile(st, 50), 1) if st else None}


def markdown(rows, bd, bench):
    a = bench.args
    lines = [
        f"Lifecycle latency, {rows[0]['n'] if rows else 0} interleaved rounds; goal: sandboxd adds "
        f"≤ {a.goal_pct:g} % or ≤ {a.goal_ms:g} ms, whichever is larger.",
        "",
        "| operation | direct median | direct p90 | sandboxd median | sandboxd p90 | ratio | added | allowed | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['direct_median_ms']:.1f} | {r['direct_p90_ms']:.1f} | "
            f"{r['sandboxd_median_ms']:.1f} | {r['sandboxd_p90_ms']:.1f} | {r['ratio']:.2f} | "
            f"{r['added_ms']:+.1f} | {r['allowed_ms']:.1f} | {r['verdict']} |")
    lines.append("")
    lines.append("Times in ms. Where the time goes: median ms between the call, the Engine's "
                 "container events (its event log) and the return:")
    lines.append("")
    for op, label in (("create", "create→running"), ("start", "stop→start"), ("stop", "stop")):
        for path in ("direct", "sandboxd"):
            n = max((v["n"] for v in bd[op][path]["phases"].values()), default=0)
            seq = ", ".join(f"{k} {v['median_ms']:.1f}" + ("" if v["n"] == n else f" (n={v['n']})")
                            for k, v in bd[op][path]["phases"].items())
            lines.append(f"- {label}, {path}: {seq}")
    lines.append("")
    lines.append(f"Context: both cores {bench.cpu_busy} % busy during the run (all tenants); "
                 f"one 4 KiB write+fsync in the data dir: {bench.fsync_ms} ms median.")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sandboxd", required=True, help="control address host:port (loopback)")
    p.add_argument("--docker-socket", default=None, help="default: $DOCKER_HOST (unix://)")
    p.add_argument("--image", default="sandboxd-test:latest")
    p.add_argument("--network", required=True, help="sandboxd's docker.network")
    p.add_argument("--workdir", required=True, help="where the direct path's workspaces go")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds per path first")
    p.add_argument("--max-seconds", type=float, default=600, help="stop starting rounds after this")
    p.add_argument("--grace", type=int, default=10, help="stop grace (s), both paths")
    p.add_argument("--user", default="1000:1000")
    p.add_argument("--memory", type=int, default=2 * 1024**3)
    p.add_argument("--pids", type=int, default=1024)
    p.add_argument("--nofile", type=int, default=4096)
    p.add_argument("--tmpfs-size", type=int, default=512 * 1024**2)
    p.add_argument("--goal-pct", type=float, default=10.0)
    p.add_argument("--goal-ms", type=float, default=20.0)
    p.add_argument("--ready-timeout", type=float, default=10.0)
    p.add_argument("--http-timeout", type=float, default=60.0)
    p.add_argument("--tag", default=None, help="label value of the direct containers")
    p.add_argument("--out", help="write JSON results here")
    a = p.parse_args()
    if a.docker_socket is None:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        if not host.startswith("unix://"):
            p.error("DOCKER_HOST must be unix://")
        a.docker_socket = host[len("unix://"):]
    if not 1 <= a.rounds <= 200:
        p.error("--rounds must be 1..200")
    a.tag = a.tag or f"{os.getpid()}"

    bench = Bench(a)
    done = bench.run()
    if a.warmup == 0:
        bench.spec_check = {"identical": None, "note": "no warm-up round, specs not compared"}
    rows = summarize(bench)
    bd = {op: breakdown(bench, op) for op in ("create", "start", "stop")}
    table = markdown(rows, bd, bench)
    print(table)
    if a.out:
        result = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cores": os.cpu_count(), "kernel": platform.release(),
                        "python": platform.python_version()},
            "engine": bench.engine,
            "params": {k: v for k, v in vars(a).items() if k != "out"},
            "rounds_done": done,
            "elapsed_s": round(bench.elapsed, 1),
            "cpu_busy_pct_during_run": bench.cpu_busy,
            "fsync_4k_median_ms": bench.fsync_ms,
            "loadavg_before_after": bench.load,
            "spec_check": bench.spec_check,
            "results": rows,
            "direct_calls": direct_calls(bench),
            "breakdown": bd,
            "samples": bench.samples,
            "markdown": table,
        }
        with open(a.out, "w") as f:
            json.dump(result, f, indent=2)
    judged = [r for r in rows if r["judged"]]
    return 0 if judged and all(r["verdict"] == "PASS" for r in judged) and done == a.rounds else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # exit 1 means "goal missed"; errors are 2
        import traceback
        traceback.print_exc()
        print(f"lifecycle.py: {e}", file=sys.stderr)
        sys.exit(2)
