#!/usr/bin/env python3
"""Ratios of our echo server to the best anchor per cell, from run_anchors.sh results.

Usage: bench/bench_ratios.py OURS_NAME results.jsonl [results.jsonl ...]

Servers whose name begins like OURS_NAME up to its first "-" (wscope, wscope-uring) are ours
and never count as anchors, so one run can hold several of our variants.

Reads the JSON lines that ../shared/bench/run_anchors.sh writes (one or several passes;
medians are taken per server and cell), and prints markdown tables (stdlib only):
  - messages/s: ours, the best anchor (highest median msgs/s; the *-flusheach variants
    are handicapped modes of tungstenite / tokio-websockets and are not counted as
    anchors), ratio ours / best;
  - server CPU ns per echoed message: ours, that best anchor's, ratio, and the lowest
    ns/msg of any anchor;
  - CPU use of server and load generator (to spot client-bound cells), latency p50/p99.
"""

import json
import statistics
import sys

CELLS = {
    "lat16": "1 conn x 16 B, W=1, same core",
    "pipe16": "1 conn x 16 B, W=256",
    "fan1k": "64 conns x 1 KiB, W=1",
    "bin1m": "4 conns x 1 MiB binary, W=2",
    "txt1m": "4 conns x 1 MiB text, W=2",
    "bin16m": "1 conn x 16 MiB, W=1",
}


def load(paths):
    cells = {}
    for p in paths:
        with open(p, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    cells.setdefault((r["server"], r["cell"]), []).append(r)
    return cells


def med(rs, key):
    vals = [r[key] for r in rs if r.get("ok") and r.get(key) is not None and r[key] >= 0]
    return statistics.median(vals) if vals else None


def spread(rs, key):
    vals = [r[key] for r in rs if r.get("ok") and r.get(key) is not None]
    if len(vals) < 2:
        return ""
    return f" [{min(vals):,.0f}-{max(vals):,.0f}]"


def fmt_ns(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:.2f} ms"
    if v >= 1e4:
        return f"{v / 1e3:,.0f} us"
    return f"{v:,.0f} ns"


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    ours, paths = argv[0], argv[1:]
    cells = load(paths)
    servers = sorted({s for s, _ in cells})
    # Our own servers (every name that starts like ours: wscope, wscope-uring, ...) are never
    # anchors.
    own = ours.split("-")[0]
    anchors = [
        s
        for s in servers
        if s.split("-")[0] != own and not s.endswith("-flusheach")
    ]
    n_runs = max((len(v) for v in cells.values()), default=0)
    print(f"Medians over {n_runs} pass(es); [min-max] where there are several.\n")
    print("| cell | wscope msg/s | best anchor | anchor msg/s | ratio | wscope CPU/msg | anchor CPU/msg | CPU ratio | lowest anchor CPU/msg | server % / loadgen % (wscope) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for c, title in CELLS.items():
        mine = cells.get((ours, c), [])
        if not mine:
            continue
        ok_all = all(r.get("ok") for r in mine)
        m = med(mine, "msgs_per_s")
        best, best_v = None, -1.0
        for a in anchors:
            v = med(cells.get((a, c), []), "msgs_per_s")
            if v is not None and v > best_v:
                best, best_v = a, v
        ns = med(mine, "server_cpu_ns_per_msg")
        ans = med(cells.get((best, c), []), "server_cpu_ns_per_msg") if best else None
        lows = [(med(cells.get((a, c), []), "server_cpu_ns_per_msg"), a) for a in anchors]
        lows = [x for x in lows if x[0] is not None]
        low = min(lows) if lows else (None, "-")
        ratio = f"{m / best_v:.2f}x" if m and best_v > 0 else "-"
        cratio = f"{ns / ans:.2f}x" if ns and ans else "-"
        cpu = f"{med(mine, 'server_cpu_pct'):.0f} / {med(mine, 'client_cpu_pct'):.0f}"
        flag = "" if ok_all else " (errors!)"
        print(f"| {c}: {title} | {m:,.0f}{spread(mine, 'msgs_per_s')}{flag} | {best} | {best_v:,.0f} | {ratio} | "
              f"{fmt_ns(ns)} | {fmt_ns(ans)} | {cratio} | {fmt_ns(low[0])} ({low[1]}) | {cpu} |")
    print()
    print("Latency p50 / p99 (us), wscope vs the best anchor of the cell:\n")
    print("| cell | wscope p50 / p99 | best anchor p50 / p99 |")
    print("|---|---:|---:|")
    for c in CELLS:
        mine = cells.get((ours, c), [])
        if not mine:
            continue
        best, best_v = None, -1.0
        for a in anchors:
            v = med(cells.get((a, c), []), "msgs_per_s")
            if v is not None and v > best_v:
                best, best_v = a, v
        b = cells.get((best, c), [])
        print(f"| {c} | {med(mine, 'p50_us'):,.0f} / {med(mine, 'p99_us'):,.0f} | "
              f"{med(b, 'p50_us'):,.0f} / {med(b, 'p99_us'):,.0f} ({best}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
