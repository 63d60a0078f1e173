#!/usr/bin/env python3
"""Summary of a bench/run-tls.sh results directory, as Markdown on stdout.

    python3 bench/tls_report.py bench/results/tls-<time>/

Reads env.txt, raw.tsv (one row per wrk run) and issuance.md (written by acme_issuance_bench,
when the issuance part ran). Every figure is a median over the rounds. Both ratios read the
same way: above 1.0 means sandboxd does better than nginx.
  - hs/s ratio        sandboxd handshakes/s / nginx handshakes/s
  - capacity ratio    nginx server µs per handshake / sandboxd's: handshakes per CPU-second
                      of the server, the figure that holds when the machine is shared
"""
import csv
import os
import statistics
import sys


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def num(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def fmt(v, digits=0, thousands=True):
    if v is None:
        return "—"
    return f"{v:,.{digits}f}" if thousands else f"{v:.{digits}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tls_report.py RESULTS_DIR")
    out = sys.argv[1]
    lines = ["# TLS: sandboxd vs nginx (handshakes) and vs lego (issuance)", ""]
    env = os.path.join(out, "env.txt")
    if os.path.exists(env):
        with open(env) as f:
            lines += [f"    {line.rstrip()}" for line in f if line.strip()]
        lines.append("")

    issuance = os.path.join(out, "issuance.md")
    lines += ["## Issuance time: `*.preview.test` + `preview.test`, DNS-01 (rfc2136), "
              "pebble + BIND9", ""]
    if os.path.exists(issuance):
        with open(issuance) as f:
            lines += [f.read().rstrip(), ""]
    else:
        lines += ["(not run)", ""]

    raw = os.path.join(out, "raw.tsv")
    lines += ["## TLS handshakes per second: one new TLS connection per request", ""]
    if not os.path.exists(raw):
        lines.append("(no raw.tsv)")
        print("\n".join(lines))
        return
    with open(raw) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))

    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    targets = list(dict.fromkeys(r["target"] for r in rows))
    by = {}
    for r in rows:
        by.setdefault((r["scenario"], r["target"]), []).append(r)

    lines += [
        "| scenario | target | runs | handshakes/s | vs nginx | server CPU % | server µs/handshake "
        "| handshakes per server CPU-s | vs nginx | wrk CPU % | p50 ms | p99 ms | errors / non-2xx | foreign % |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    summary = {}
    for s in scenarios:
        stats = {}
        for t in targets:
            rs = by.get((s, t), [])
            us = med(num(r["server_us_per_hs"]) for r in rs)
            stats[t] = {
                "runs": len(rs),
                "hs": med(num(r["hs_per_s"]) for r in rs),
                "cpu": med(num(r["server_cpu_pct"]) for r in rs),
                "us": us,
                "cap": 1e6 / us if us else None,
                "wrk": med(num(r["wrk_cpu_pct"]) for r in rs),
                "p50": med(num(r["p50_us"]) for r in rs),
                "p99": med(num(r["p99_us"]) for r in rs),
                "err": sum(int(r["errors"]) for r in rs),
                "non2xx": sum(int(r["non2xx"]) for r in rs),
                "foreign": med(num(r["foreign_pct"]) for r in rs),
            }
        base = stats.get("nginx")
        for t in targets:
            st = stats[t]
            hs_ratio = ratio(st["hs"], base["hs"]) if base else None
            cap_ratio = ratio(st["cap"], base["cap"]) if base else None
            bold = "**" if t == "sandboxd" else ""
            lines.append(
                f"| {s} | {bold}{t}{bold} | {st['runs']} | {fmt(st['hs'])} | {bold}{fmt(hs_ratio, 2)}{bold} "
                f"| {fmt(st['cpu'], 1)} | {fmt(st['us'], 1)} | {fmt(st['cap'])} | {bold}{fmt(cap_ratio, 2)}{bold} "
                f"| {fmt(st['wrk'], 1)} | {fmt(st['p50'] / 1000 if st['p50'] else None, 2)} "
                f"| {fmt(st['p99'] / 1000 if st['p99'] else None, 2)} | {st['err']} / {st['non2xx']} "
                f"| {fmt(st['foreign'], 0)} |")
        summary[s] = stats
    lines.append("")

    # Ratios of each round's pair: the targets of one round ran seconds apart, so a pair shares
    # the machine's load of that moment better than the medians of the whole run do.
    if "sandboxd" in targets and "nginx" in targets:
        for s in scenarios:
            pairs = {}
            for r in by.get((s, "sandboxd"), []) + by.get((s, "nginx"), []):
                pairs.setdefault(r["round"], {})[r["target"]] = r
            hs, cap = [], []
            for rnd in sorted(pairs, key=int):
                p = pairs[rnd]
                if "sandboxd" in p and "nginx" in p:
                    hs.append(ratio(num(p["sandboxd"]["hs_per_s"]), num(p["nginx"]["hs_per_s"])))
                    cap.append(ratio(num(p["nginx"]["server_us_per_hs"]), num(p["sandboxd"]["server_us_per_hs"])))
            if hs:
                lines.append(
                    f"- {s}: per-round sandboxd/nginx handshakes/s "
                    f"{', '.join(fmt(v, 2) for v in hs)} (median {fmt(med(hs), 2)}); "
                    f"capacity {', '.join(fmt(v, 2) for v in cap)} (median {fmt(med(cap), 2)})")
        lines.append("")

    # A server below ~90 % of its core was not what limited the run: it waited for wrk, or
    # for its share of a core that other tenants used too (foreign %). Its handshakes/s then
    # say more about those than about the server; the CPU figures still compare the servers.
    for s, stats in summary.items():
        slow = [t for t, st in stats.items() if st["cpu"] is not None and st["cpu"] < 90]
        if slow:
            lines.append(
                f"- {s}: {', '.join(slow)} used less than 90 % of its core (median), so "
                f"handshakes/s is not its capacity: it waited for wrk or for a CPU shared with "
                f"other load (foreign %). Compare handshakes per server CPU-second.")
    lines.append("")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
