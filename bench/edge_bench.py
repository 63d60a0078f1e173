#!/usr/bin/env python3
"""Helpers of bench/run-edge.sh (the edge benchmark). Python 3 standard library only.

  edge_bench.py free-ports N
      N distinct free TCP ports on 127.0.0.1, one per line.
  edge_bench.py create --control H:P --project ID --ports 3000,8000
      POST /v1/sandboxes?wait=true; prints the sandbox id.
  edge_bench.py inspect --docker-socket S --container NAME --network NET
      prints "<State.Pid> <IP on NET>" from the Engine API.
  edge_bench.py idle --port P --host H --path /64b --n N --pids "1 2" [--target T --tsv F]
      RSS of the pids, then N keep-alive connections that each make one request and stay
      open and idle, RSS again once it settles; prints one JSON line, then closes them.
  edge_bench.py wake --control H:P --edge H:P --docker-socket S --id ID --network NET
                     --port 3000 --reps N --tag T --out FILE.tsv
      stopped sandbox -> first byte through the edge, next to a raw Engine API start -> port
      open of a twin container (label sandboxd.bench=edge-T); one TSV row per sample.
  edge_bench.py logfilter --out FILE [--count-file F]
      copies stdin to FILE without the edge's JSON access lines (counted into F).
  edge_bench.py report DIR
      the summary table of DIR (raw.tsv, idle.tsv, wake.tsv, env.txt) in Markdown.

Traffic: loopback, the Docker unix socket, and the benchmark sandbox's own container IP.
Every loop has a count bound and a time bound.
"""

import argparse
import http.client
import json
import os
import resource
import socket
import statistics
import sys
import time
import urllib.parse


# ----------------------------------------------------------------------------- small helpers

def die(msg):
    print(f"edge_bench: {msg}", file=sys.stderr)
    sys.exit(2)


def split_hostport(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def percentile(values, p):
    """Linear interpolation between closest ranks (numpy's default)."""
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.path_ = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path_)
        self.sock = s


class Api:
    """One keep-alive connection to an HTTP API; reconnects when the peer closed it."""

    def __init__(self, factory):
        self.factory = factory
        self.conn = None

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = self.factory()
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        obj = None
        if raw and (resp.getheader("Content-Type") or "").startswith("application/json"):
            obj = json.loads(raw)
        return resp.status, obj, raw


def control_api(hostport):
    host, port = split_hostport(hostport)
    return Api(lambda: http.client.HTTPConnection(host, port, timeout=60))


def docker_api(sock):
    api = Api(lambda: UnixHTTPConnection(sock, 60))
    st, v, _ = api.call("GET", "/version")
    if st != 200:
        die(f"Engine /version answered {st}")
    api.prefix = "/v" + v["ApiVersion"]
    return api


def container_ip(info, network):
    nets = (info.get("NetworkSettings") or {}).get("Networks") or {}
    return (nets.get(network) or {}).get("IPAddress") or ""


# ----------------------------------------------------------------------------- free-ports

def cmd_free_ports(a):
    socks = []
    try:
        for _ in range(a.n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        for s in socks:
            print(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()


# ----------------------------------------------------------------------------- create / inspect

def cmd_create(a):
    api = control_api(a.control)
    ports = [int(p) for p in a.ports.split(",")]
    body = {"project": {"id": a.project, "user_id": "edge-bench"}, "ports": ports}
    st, obj, raw = api.call("POST", "/v1/sandboxes?wait=true", body)
    if st not in (200, 201) or not obj or obj.get("status") != "running":
        die(f"create answered {st}: {raw[:300]!r}")
    print(obj["id"])


def cmd_inspect(a):
    api = docker_api(a.docker_socket)
    st, info, raw = api.call("GET", f"{api.prefix}/containers/{a.container}/json")
    if st != 200:
        die(f"inspect {a.container} answered {st}: {raw[:200]!r}")
    pid = (info.get("State") or {}).get("Pid") or 0
    ip = container_ip(info, a.network)
    if not pid or not ip:
        die(f"{a.container}: no pid ({pid}) or no IP on {a.network} ({ip!r})")
    print(pid, ip)


# ----------------------------------------------------------------------------- idle connections

def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def read_response(sock, deadline):
    """Reads one Content-Length response; returns the status, or None on failure."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if time.monotonic() > deadline or len(buf) > 65536:
            return None
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(body) < length:
        if time.monotonic() > deadline:
            return None
        chunk = sock.recv(65536)
        if not chunk:
            return None
        body += chunk
    return status


def settle_rss(pids, max_s):
    """RSS once two samples 0.5 s apart agree within 1 %, or after max_s."""
    end = time.monotonic() + max_s
    last = rss_kb(pids)
    while time.monotonic() < end:
        time.sleep(0.5)
        now = rss_kb(pids)
        if abs(now - last) <= max(64, last // 100):
            return now
        last = now
    return last


def cmd_idle(a):
    pids = [int(p) for p in a.pids.split()]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, a.n + 64)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    n = min(a.n, want - 64)
    req = f"GET {a.path} HTTP/1.1\r\nHost: {a.host}\r\n\r\n".encode()
    before = settle_rss(pids, a.settle_max)
    t0 = time.monotonic()
    deadline = t0 + a.max_seconds
    socks, failed, non200 = [], 0, 0
    try:
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            s = socket.socket()
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", a.port))
                s.sendall(req)
                status = read_response(s, time.monotonic() + 5)
            except OSError:
                status = None
            if status is None:
                failed += 1
                s.close()
                continue
            if status != 200:
                non200 += 1
            socks.append(s)
        opened_s = time.monotonic() - t0
        time.sleep(a.hold)
        after = settle_rss(pids, a.settle_max)
        # Are they still open? A proxy that dropped idle connections would read as cheap.
        alive = 0
        for s in socks:
            try:
                s.setblocking(False)
                data = s.recv(1, socket.MSG_PEEK)
                if data:
                    alive += 1  # stray bytes, still open
            except BlockingIOError:
                alive += 1
            except OSError:
                pass
        per_conn = (after - before) * 1024 / len(socks) if socks else None
        result = {"target": a.target, "asked": a.n, "open": len(socks), "alive": alive,
                  "failed": failed, "non200": non200, "open_seconds": round(opened_s, 2),
                  "rss_before_kb": before, "rss_after_kb": after,
                  "bytes_per_conn": round(per_conn) if per_conn is not None else None}
        print(json.dumps(result))
        if a.tsv:
            new = not os.path.exists(a.tsv)
            with open(a.tsv, "a") as f:
                if new:
                    f.write("\t".join(result) + "\n")
                f.write("\t".join("NA" if v is None else str(v) for v in result.values()) + "\n")
    finally:
        for s in socks:
            s.close()


# ----------------------------------------------------------------------------- wake

class Wake:
    """Wake latency, two paths, same run, alternating which goes first:

    edge  the sandbox is stopped through sandboxd's API; then a request through the edge is
          timed until the first byte of its answer (held, woken, probed, forwarded).
    raw   a twin container, created here straight through the Engine API from the sandbox
          container's own Config and HostConfig (same image, hardening, mounts, network; no
          sandboxd labels, so sandboxd leaves it alone: it stops a container of its own that
          something else started), is stopped through the Engine API; then POST start ->
          inspect for the IP -> TCP connect to the port succeeds is timed (and the first
          byte of a GET on that connection, for reference).
    """

    def __init__(self, a):
        self.a = a
        self.ctl = control_api(a.control)
        self.docker = docker_api(a.docker_socket)
        self.name = "s-" + a.id
        self.twin = f"sbx-edge-raw-{a.tag}"
        self.host = f"s-{a.id}-{a.port}.{a.suffix}"

    # ---- shared

    def row_status(self):
        st, obj, raw = self.ctl.call("GET", f"/v1/sandboxes/{self.a.id}")
        if st != 200:
            raise RuntimeError(f"GET sandbox answered {st}: {raw[:200]!r}")
        return obj.get("status")

    def inspect(self, name):
        st, info, raw = self.docker.call("GET", f"{self.docker.prefix}/containers/{name}/json")
        if st != 200:
            raise RuntimeError(f"inspect {name} answered {st}: {raw[:200]!r}")
        return info

    def http_status(self, ip, timeout=1.0):
        try:
            with socket.create_connection((ip, self.a.port), timeout=timeout) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                first = s.recv(64)
            return int(first.split()[1])
        except (OSError, IndexError, ValueError):
            return None

    def until(self, what, check, limit):
        end = time.monotonic() + limit
        while time.monotonic() < end:
            v = check()
            if v:
                return v
            time.sleep(0.02)
        raise RuntimeError(f"{what}: not within {limit} s")

    def ready(self, name):
        """Untimed: the container has its IP and the app answers 200 (the test image writes
        its index.html after its SIGTERM trap is set, so a stop from now on is quick)."""
        ip = self.until(f"{name} IP", lambda: container_ip(self.inspect(name), self.a.network), 15)
        self.until(f"{name} answers 200", lambda: self.http_status(ip) == 200, 15)
        return ip

    def start_event_ns(self, name, since_ns, until_ns):
        """Untimed, afterwards: the Engine's own time of the container's `start` event (emitted
        once the container runs), which splits a wake into before and after Docker's part."""
        until_ns += 2 * 10**9
        q = urllib.parse.urlencode({
            "since": f"{since_ns // 10**9}.{since_ns % 10**9:09d}",
            "until": f"{until_ns // 10**9}.{until_ns % 10**9:09d}",
            "filters": json.dumps({"type": ["container"], "container": [name],
                                   "event": ["start"]}),
        })
        conn = UnixHTTPConnection(self.a.docker_socket, 10)
        try:
            conn.request("GET", f"{self.docker.prefix}/events?{q}")
            raw = conn.getresponse().read().decode(errors="replace")
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()
        dec = json.JSONDecoder()
        i = 0
        while i < len(raw):
            while i < len(raw) and raw[i].isspace():
                i += 1
            if i >= len(raw):
                break
            try:
                ev, i = dec.raw_decode(raw, i)
            except ValueError:
                break
            if ev.get("timeNano", 0) >= since_ns:
                return ev["timeNano"]
        return None

    def stopped(self, name):
        self.until(f"{name} stopped", lambda: not self.inspect(name)["State"]["Running"], 30)
        time.sleep(self.a.settle)

    # ---- through the edge

    def edge_prepare(self):
        if self.row_status() != "running":
            st, _, raw = self.ctl.call("POST", f"/v1/sandboxes/{self.a.id}/start")
            if st != 200:
                raise RuntimeError(f"start answered {st}: {raw[:200]!r}")
        self.ready(self.name)
        st, obj, raw = self.ctl.call("POST", f"/v1/sandboxes/{self.a.id}/stop",
                                     {"timeout_s": self.a.grace})
        if st != 200 or (obj or {}).get("status") != "stopped":
            raise RuntimeError(f"stop answered {st}: {raw[:200]!r}")
        self.stopped(self.name)

    def edge_timed(self):
        host, port = split_hostport(self.a.edge)
        req = (f"GET / HTTP/1.1\r\nHost: {self.host}\r\nConnection: close\r\n"
               f"Accept: */*\r\n\r\n").encode()
        w0 = time.time_ns()
        t0 = time.perf_counter()
        with socket.create_connection((host, port), timeout=self.a.wake_limit) as s:
            s.sendall(req)
            first = s.recv(65536)
            t_first = time.perf_counter()
            w_first = time.time_ns()
            buf = first
            end = time.monotonic() + 5
            while b"\r\n\r\n" not in buf and time.monotonic() < end and len(buf) < 65536:
                c = s.recv(65536)
                if not c:
                    break
                buf += c
        lines = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        parts = lines[0].split() if lines else []
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        note = ""
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "x-sandbox-wake":
                note = v.strip()
        ev = self.start_event_ns(self.name, w0, w_first)
        return {"first_byte_ms": (t_first - t0) * 1e3, "status": status, "note": note,
                "start_event_ms": (ev - w0) / 1e6 if ev else None,
                "after_event_ms": (w_first - ev) / 1e6 if ev else None}

    # ---- raw Engine API, on the twin

    def twin_create(self):
        info = self.inspect(self.name)
        cfg = info["Config"]
        body = {k: cfg.get(k) for k in ("Image", "Cmd", "Entrypoint", "Env", "User",
                                          "WorkingDir", "StopSignal", "StopTimeout")
                if cfg.get(k) is not None}
        body["Labels"] = {"sandboxd.bench": f"edge-{self.a.tag}"}
        body["HostConfig"] = info["HostConfig"]
        body["NetworkingConfig"] = {"EndpointsConfig": {self.a.network: {}}}
        self.docker.call("DELETE", f"{self.docker.prefix}/containers/{self.twin}?force=1")
        st, _, raw = self.docker.call("POST", f"{self.docker.prefix}/containers/create?name={self.twin}", body)
        if st != 201:
            raise RuntimeError(f"twin create answered {st}: {raw[:300]!r}")
        st, _, raw = self.docker.call("POST", f"{self.docker.prefix}/containers/{self.twin}/start")
        if st not in (204, 304):
            raise RuntimeError(f"twin start answered {st}: {raw[:200]!r}")

    def twin_remove(self):
        self.docker.call("DELETE", f"{self.docker.prefix}/containers/{self.twin}?force=1")

    def raw_prepare(self):
        if not self.inspect(self.twin)["State"]["Running"]:
            self.docker.call("POST", f"{self.docker.prefix}/containers/{self.twin}/start")
        self.ready(self.twin)
        st, _, raw = self.docker.call(
            "POST", f"{self.docker.prefix}/containers/{self.twin}/stop?t={self.a.grace}")
        if st not in (204, 304):
            raise RuntimeError(f"twin stop answered {st}: {raw[:200]!r}")
        self.stopped(self.twin)

    def raw_timed(self):
        pre = self.docker.prefix
        w0 = time.time_ns()
        t0 = time.perf_counter()
        st, _, raw = self.docker.call("POST", f"{pre}/containers/{self.twin}/start")
        t_api = time.perf_counter()
        if st not in (204, 304):
            raise RuntimeError(f"raw start answered {st}: {raw[:200]!r}")
        ip = container_ip(self.inspect(self.twin), self.a.network)
        end = time.monotonic() + self.a.wake_limit
        t_open = t_fb = None
        status = 0
        tries = 0
        while time.monotonic() < end and tries < 100000:
            tries += 1
            s = socket.socket()
            s.settimeout(0.25)
            try:
                s.connect((ip, self.a.port))
            except OSError:
                s.close()
                time.sleep(0.001)
                continue
            t_open = time.perf_counter()
            w_open = time.time_ns()
            try:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                first = s.recv(64)
                t_fb = time.perf_counter()
                status = int(first.split()[1])
            except (OSError, IndexError, ValueError):
                pass
            s.close()
            break
        if t_open is None:
            raise RuntimeError(f"raw start: {ip}:{self.a.port} never opened")
        ev = self.start_event_ns(self.twin, w0, w_open)
        return {"api_ms": (t_api - t0) * 1e3, "port_open_ms": (t_open - t0) * 1e3,
                "first_byte_ms": (t_fb - t0) * 1e3 if t_fb else None,
                "status": status, "note": f"connect_tries={tries}",
                "start_event_ms": (ev - w0) / 1e6 if ev else None,
                "after_event_ms": (w_open - ev) / 1e6 if ev else None}

    def run(self):
        cols = ["rep", "path", "first_byte_ms", "port_open_ms", "api_ms", "start_event_ms",
                "after_event_ms", "status", "note"]
        fmt = lambda v: f"{v:.1f}" if isinstance(v, float) else ("NA" if v is None else str(v))
        self.twin_create()
        try:
            with open(self.a.out, "w") as out:
                out.write("\t".join(cols) + "\n")
                for rep in range(1, self.a.reps + 1):
                    order = ("edge", "raw") if rep % 2 else ("raw", "edge")
                    for path in order:
                        if path == "edge":
                            self.edge_prepare()
                            r = self.edge_timed()
                        else:
                            self.raw_prepare()
                            r = self.raw_timed()
                        row = {"rep": rep, "path": path, **r}
                        line = "\t".join(fmt(row.get(c)) for c in cols)
                        out.write(line + "\n")
                        out.flush()
                        print(f"wake {line}", file=sys.stderr)
        finally:
            self.twin_remove()


def cmd_wake(a):
    if a.reps < 1 or a.reps > 200:
        die("--reps must be 1..200")
    Wake(a).run()


# ----------------------------------------------------------------------------- logfilter

def cmd_logfilter(a):
    """sandboxd's stderr -> a.out without the edge's JSON access lines, which are only
    counted by status class (into a.count_file, rewritten at most once a second and at the
    end). The pipe is enlarged so that a slow moment here does not block sandboxd's
    write(2)."""
    import fcntl
    try:
        with open("/proc/sys/fs/pipe-max-size") as f:
            size = min(int(f.read()), 4 << 20)
        fcntl.fcntl(0, 1031, size)  # F_SETPIPE_SZ
    except (OSError, ValueError):
        pass
    counts = {}
    rest = b""
    last = 0.0

    def summary():
        return " ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"

    def save_counts():
        if a.count_file:
            with open(a.count_file + ".tmp", "w") as f:
                f.write(summary() + "\n")
            os.replace(a.count_file + ".tmp", a.count_file)

    save_counts()
    with open(a.out, "ab", buffering=0) as out:
        while True:
            data = os.read(0, 1 << 20)
            if not data:
                break
            lines = (rest + data).split(b"\n")
            rest = lines.pop()
            keep = []
            for line in lines:
                if line.startswith(b'{"ts":'):
                    i = line.find(b'"status":')
                    key = line[i + 9:i + 10].decode() + "xx" if i >= 0 else "?"
                    counts[key] = counts.get(key, 0) + 1
                else:
                    keep.append(line + b"\n")
            if keep:
                out.write(b"".join(keep))
            if counts and time.monotonic() - last >= 1.0:
                last = time.monotonic()
                save_counts()
        if rest:
            out.write(rest + b"\n")
        out.write(f"edge_bench logfilter: access lines dropped: {summary()}\n".encode())
    save_counts()


# ----------------------------------------------------------------------------- report

def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    if not lines:
        return []
    head = lines[0]
    return [dict(zip(head, l)) for l in lines[1:]]


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def med(rows, key):
    vals = [num(r.get(key)) for r in rows]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=0):
    if v is None:
        return "—"
    return f"{v:,.{digits}f}"


def ratio(v, ref):
    if v is None or not ref:
        return "—"
    return f"{v / ref:.2f}"


SCEN_TITLE = {
    "ka64": "keep-alive, 64 B body",
    "1m": "keep-alive, 1 MiB body",
    "close": "Connection: close (new connection per request), 64 B body",
}


def cmd_report(a):
    d = a.dir
    raw = read_tsv(os.path.join(d, "raw.tsv"))
    idle = read_tsv(os.path.join(d, "idle.tsv"))
    wake = read_tsv(os.path.join(d, "wake.tsv"))
    ref = a.ref
    out = []
    if os.path.exists(os.path.join(d, "env.txt")):
        with open(os.path.join(d, "env.txt")) as f:
            env = dict(l.rstrip("\n").split(": ", 1) for l in f if ": " in l)
        out.append(f"{env.get('date', '?')} · {env.get('host', '?')} · {env.get('run', '')}")
        out.append("")
        out.append(f"sandboxd: {env.get('sandboxd', '?')} · {env.get('versions', '')} · "
                   f"Docker {env.get('docker', '?')}")
        if "aborted" in env:
            out.append("")
            out.append(f"**Incomplete run**: {env['aborted']}.")
        acc = env.get("edge access lines on sandboxd's stderr", "unknown")
        if acc not in ("none", "unknown"):
            out.append("")
            out.append(f"Note: this sandboxd wrote edge access-log lines to stderr during the run "
                       f"({acc}); its figures include that cost.")
        out.append("")
    targets = []
    for r in raw:
        if r["target"] not in targets:
            targets.append(r["target"])
    scens = []
    for r in raw:
        if r["scenario"] not in scens:
            scens.append(r["scenario"])
    if raw:
        out.append(f"Medians over rounds; ratios are target / {ref} (rps: higher is better; "
                   "CPU µs/req and RSS: lower is better). Proxy CPU = utime+stime of the proxy's "
                   "process tree during the run / requests. Peak RSS = VmHWM of the tree, reset "
                   "before each run. Foreign = CPU (% of one core) used by other tenants.")
        for s in scens:
            rows = [r for r in raw if r["scenario"] == s]
            refrows = [r for r in rows if r["target"] == ref]
            ref_rps, ref_cpu = med(refrows, "rps"), med(refrows, "proxy_us_per_req")
            ref_rss = med(refrows, "peak_rss_kb")
            out.append("")
            out.append(f"**{s}** — {SCEN_TITLE.get(s, s)}")
            out.append("")
            out.append("| target | n | req/s | vs nginx | p50 ms | p99 ms | CPU µs/req | vs nginx "
                       "| peak RSS MiB | vs nginx | errors | non-2xx | foreign % |")
            out.append("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
            for t in targets:
                tr = [r for r in rows if r["target"] == t]
                if not tr:
                    continue
                rps, cpu, rss = med(tr, "rps"), med(tr, "proxy_us_per_req"), med(tr, "peak_rss_kb")
                p50, p99 = med(tr, "p50_us"), med(tr, "p99_us")
                errs = sum(int(num(r["errors"]) or 0) for r in tr)
                non2 = sum(int(num(r["non2xx"]) or 0) for r in tr)
                out.append(
                    f"| {t} | {len(tr)} | {fmt(rps)} | {ratio(rps, ref_rps)} "
                    f"| {fmt(p50 / 1e3 if p50 is not None else None, 2)} "
                    f"| {fmt(p99 / 1e3 if p99 is not None else None, 2)} "
                    f"| {fmt(cpu, 1)} | {ratio(cpu, ref_cpu) if t != 'direct' else '—'} "
                    f"| {fmt(rss / 1024 if rss is not None else None, 1)} "
                    f"| {ratio(rss, ref_rss) if t != 'direct' else '—'} "
                    f"| {errs} | {non2} | {fmt(med(tr, 'foreign_pct'))} |")
    if wake:
        out.append("")
        out.append("**Wake** — stopped → first byte, ms (the sandbox through the edge; its twin "
                   "container, made from the same spec, through the Engine API; same run, "
                   "order alternating)")
        out.append("")
        out.append("| path | n | p50 | p90 | min | max |")
        out.append("|---|--:|--:|--:|--:|--:|")
        series = {
            "through the edge: request → first byte of the answer": [
                num(r["first_byte_ms"]) for r in wake if r["path"] == "edge"],
            "raw Engine API (twin container): POST start → TCP port open": [
                num(r["port_open_ms"]) for r in wake if r["path"] == "raw"],
            "raw Engine API (twin container): POST start → first byte of a GET": [
                num(r["first_byte_ms"]) for r in wake if r["path"] == "raw"],
            "raw: POST start call alone": [num(r["api_ms"]) for r in wake if r["path"] == "raw"],
            "edge: request → Docker's `start` event": [
                num(r.get("start_event_ms")) for r in wake if r["path"] == "edge"],
            "edge: `start` event → first byte": [
                num(r.get("after_event_ms")) for r in wake if r["path"] == "edge"],
            "raw: POST start → `start` event": [
                num(r.get("start_event_ms")) for r in wake if r["path"] == "raw"],
            "raw: `start` event → port open": [
                num(r.get("after_event_ms")) for r in wake if r["path"] == "raw"],
        }
        p50s = {}
        for name, vals in series.items():
            vals = [v for v in vals if v is not None]
            if not vals:
                continue
            p50s[name] = percentile(vals, 50)
            out.append(f"| {name} | {len(vals)} | {fmt(percentile(vals, 50), 1)} "
                       f"| {fmt(percentile(vals, 90), 1)} | {fmt(min(vals), 1)} "
                       f"| {fmt(max(vals), 1)} |")
        keys = list(series)
        if keys[0] in p50s and keys[1] in p50s:
            diff = p50s[keys[0]] - p50s[keys[1]]
            out.append("")
            out.append(f"Edge wake p50 − raw start→port-open p50 = **{diff:+.1f} ms** "
                       f"(ratio {p50s[keys[0]] / p50s[keys[1]]:.2f}).")
        bad = [r for r in wake if r["path"] == "edge" and r["status"] != "200"]
        if bad:
            out.append(f"Edge wake answers other than 200: {len(bad)} "
                       f"({', '.join(sorted(set(r['status'] for r in bad)))}).")
    if idle:
        out.append("")
        out.append("**Idle keep-alive connections** — RSS of the proxy's process tree before "
                   "and after opening them (each made one request first)")
        out.append("")
        out.append("| target | open / asked | still open | RSS before MiB | RSS after MiB "
                   "| bytes per connection | vs nginx |")
        out.append("|---|--:|--:|--:|--:|--:|--:|")
        refb = next((num(r["bytes_per_conn"]) for r in idle if r["target"] == ref), None)
        for r in idle:
            b = num(r["bytes_per_conn"])
            out.append(f"| {r['target']} | {r['open']} / {r['asked']} | {r['alive']} "
                       f"| {fmt(num(r['rss_before_kb']) / 1024, 1)} "
                       f"| {fmt(num(r['rss_after_kb']) / 1024, 1)} | {fmt(b)} "
                       f"| {ratio(b, refb)} |")
    print("\n".join(out))


# ----------------------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("free-ports")
    s.add_argument("n", type=int)
    s.set_defaults(fn=cmd_free_ports)

    s = sub.add_parser("create")
    s.add_argument("--control", required=True)
    s.add_argument("--project", required=True)
    s.add_argument("--ports", default="3000,8000")
    s.set_defaults(fn=cmd_create)

    s = sub.add_parser("inspect")
    s.add_argument("--docker-socket", required=True)
    s.add_argument("--container", required=True)
    s.add_argument("--network", required=True)
    s.set_defaults(fn=cmd_inspect)

    s = sub.add_parser("idle")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--host", required=True)
    s.add_argument("--path", default="/64b")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--pids", required=True)
    s.add_argument("--hold", type=float, default=1.0)
    s.add_argument("--settle-max", type=float, default=5.0)
    s.add_argument("--max-seconds", type=float, default=120.0)
    s.add_argument("--target", default="")
    s.add_argument("--tsv", default="")
    s.set_defaults(fn=cmd_idle)

    s = sub.add_parser("wake")
    s.add_argument("--control", required=True)
    s.add_argument("--edge", required=True)
    s.add_argument("--docker-socket", required=True)
    s.add_argument("--id", required=True)
    s.add_argument("--network", required=True)
    s.add_argument("--port", type=int, default=3000)
    s.add_argument("--suffix", default="preview.localhost")
    s.add_argument("--reps", type=int, default=10)
    s.add_argument("--grace", type=int, default=10)
    s.add_argument("--settle", type=float, default=0.3)
    s.add_argument("--wake-limit", type=float, default=30.0)
    s.add_argument("--tag", default=str(os.getpid()))
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_wake)

    s = sub.add_parser("logfilter")
    s.add_argument("--out", required=True)
    s.add_argument("--count-file", default="")
    s.set_defaults(fn=cmd_logfilter)

    s = sub.add_parser("report")
    s.add_argument("dir")
    s.add_argument("--ref", default="nginx")
    s.set_defaults(fn=cmd_report)

    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
