#!/usr/bin/env python3
"""Compressed echo throughput: `wscope serve --echo --compress` against the anchors that
implement permessage-deflate, Python `websockets` and Node `ws` (their echo servers in
../shared/bench/peers, started with `--compress`), in the same run.

Usage: bench/bench_deflate.py WSCOPE_BINARY LOADGEN_BINARY BENCH_DIR [OUT_DIR]

  WSCOPE_BINARY   target/release/wscope
  LOADGEN_BINARY  target/release/examples/echo_loadgen (our compressing load generator:
                  the shared one offers no permessage-deflate)
  BENCH_DIR       a ../shared/bench with its `.venv` (websockets) and `node_modules` (ws)
                  installed, as its run_anchors.sh leaves it
  OUT_DIR         default target/bench-results/deflate-<time> (git-ignored)

Environment: REPEAT (passes, default 3), DURATION (s, default 3), WARMUP (s, default 0.5),
SERVERS (default "wscope wscope-w12 python-websockets node-ws"; wscope-wN is our server with
`--deflate-window-bits N`), CELLS (subset of lat1k fan1k txt64k txt1m), space separated.

Placement follows run_anchors.sh: the server on CPU 0, the load generator on CPU 1, except in
`lat1k` where both share CPU 0. Server CPU time per echoed message comes from
/proc/PID/stat (10 ms ticks) over the whole cell, warm-up included, divided by every message
echoed. Prints markdown tables (median [min-max] over the passes) and writes the raw JSON
lines to OUT_DIR/results.jsonl. Stdlib only.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# Generated output goes below the repository's git-ignored target/ unless OUT_DIR is given.
RESULTS = os.path.join(os.path.dirname(HERE), "target", "bench-results")

CELLS = {
    # name: (conns, size, window, placement, title)
    "lat1k": (1, "1K", 1, "same", "1 conn x 1 KiB, W=1, same core"),
    "fan1k": (64, "1K", 1, "split", "64 conns x 1 KiB, W=1"),
    "txt64k": (4, "64K", 2, "split", "4 conns x 64 KiB, W=2"),
    "txt1m": (1, "1M", 1, "split", "1 conn x 1 MiB, W=1"),
}


def server_cmd(name, wscope, bench, port):
    if name == "wscope":
        return [wscope, "serve", "--echo", "--compress", "--port", str(port)]
    if name.startswith("wscope-w"):
        # Reduced windows both ways, e.g. wscope-w12 (Python websockets' server default).
        return [wscope, "serve", "--echo", "--compress", "--deflate-window-bits", name[8:],
                "--port", str(port)]
    if name == "python-websockets":
        return [os.path.join(bench, ".venv/bin/python"), os.path.join(bench, "peers/python_echo.py"),
                str(port), "--compress"]
    if name == "node-ws":
        return ["node", os.path.join(bench, "peers/node_echo.js"), str(port), "--compress"]
    raise ValueError(name)


def ticks(pid):
    """User + system CPU ticks of a process and its threads (10 ms each)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def pin(cpu):
    if (os.cpu_count() or 1) >= 2 and subprocess.run(["which", "taskset"], capture_output=True).returncode == 0:
        return ["taskset", "-c", str(cpu)]
    return []


def measure(proc, cmd, srv, cell, n):
    """Runs the load generator `cmd` (timing flags and label added) against the server
    process `proc`; returns its JSON line with the server's CPU share and CPU per echo."""
    cmd = cmd + ["--duration", os.environ.get("DURATION", "3"),
                 "--warmup", os.environ.get("WARMUP", "0.5"), "--label", f"{srv}/{cell}"]
    t0, w0 = ticks(proc.pid), time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    t1, w1 = ticks(proc.pid), time.monotonic()
    try:
        row = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        row = {"ok": False, "errors": [r.stderr.strip()[:200] or "no output"]}
    n_msgs = row.get("received_total", 0)
    row.update(server=srv, cell=cell, wall_s=w1 - w0, server_cpu_pct=(t1 - t0) / (w1 - w0),
               server_cpu_ns_per_msg=((t1 - t0) * 1e7 / n_msgs) if n_msgs else None)
    print(f"  pass {n}: {srv} {cell}: {row.get('msgs_per_s', 0):,.0f} msg/s, "
          f"{row['server_cpu_ns_per_msg'] or 0:,.0f} ns/msg, ok={row.get('ok')}",
          file=sys.stderr)
    time.sleep(0.2)
    return row


def run_pass(args, servers, cells, out, n):
    wscope, loadgen, bench = args
    port = 9500 + 20 * n
    rows = []
    for srv in servers:
        port += 1
        proc = subprocess.Popen(pin(0) + server_cmd(srv, wscope, bench, port),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if not wait_port(port):
                print(f"server {srv} did not start", file=sys.stderr)
                continue
            time.sleep(0.3)
            for cell in cells:
                conns, size, window, placement, _ = CELLS[cell]
                cmd = [loadgen, "--addr", f"127.0.0.1:{port}", "--conns", str(conns),
                       "--size", size, "--window", str(window)]
                rows.append(measure(proc, pin(0 if placement == "same" else 1) + cmd, srv, cell, n))
        finally:
            proc.terminate()
            proc.wait(10)
    return append_rows(out, rows)


def append_rows(out, rows):
    """Appends a pass's rows to OUT/results.jsonl (one JSON object per line); returns them."""
    with open(os.path.join(out, "results.jsonl"), "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return rows


def med(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def table(rows, servers, cells, titles):
    by = {}
    for r in rows:
        by.setdefault((r["server"], r["cell"]), []).append(r)
    ours = [s for s in servers if s.startswith("wscope")]
    lines = ["| cell | " + " | ".join(servers) + " | "
             + " | ".join(f"{s} / best anchor: msg/s, CPU per msg" for s in ours) + " |",
             "|---|" + "---:|" * (len(servers) + len(ours))]
    for cell in cells:
        cols, best_rate, best_cpu = [], None, None
        mine = {}
        for s in servers:
            rs = by.get((s, cell), [])
            if not rs or not all(r.get("ok") for r in rs):
                cols.append("failed")
                continue
            rate = med([r["msgs_per_s"] for r in rs])
            cpu = med([r["server_cpu_ns_per_msg"] for r in rs])
            cols.append(f"{rate[0]:,.0f} [{rate[1]:,.0f}-{rate[2]:,.0f}] msg/s, "
                        f"{cpu[0] / 1000:,.1f} us CPU/msg")
            if s in ours:
                mine[s] = (rate[0], cpu[0])
            else:
                if best_rate is None or rate[0] > best_rate:
                    best_rate = rate[0]
                if best_cpu is None or cpu[0] < best_cpu:
                    best_cpu = cpu[0]
        ratios = []
        for s in ours:
            if s in mine and best_rate and best_cpu:
                ratios.append(f"{mine[s][0] / best_rate:.2f}x, {mine[s][1] / best_cpu:.2f}x")
            else:
                ratios.append("-")
        lines.append(f"| {titles[cell]} | " + " | ".join(cols + ratios) + " |")
    return "\n".join(lines)


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    args = tuple(os.path.abspath(a) for a in sys.argv[1:4])
    out = default_out(sys.argv[4] if len(sys.argv) > 4 else None, "deflate")
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "results.jsonl"), "w").close()
    servers = os.environ.get("SERVERS", "wscope wscope-w12 python-websockets node-ws").split()
    cells = os.environ.get("CELLS", " ".join(CELLS)).split()
    rows = []
    for n in range(int(os.environ.get("REPEAT", "3"))):
        rows += run_pass(args, servers, cells, out, n)
    return report(rows, servers, cells, {k: v[4] for k, v in CELLS.items()}, out)


def default_out(arg, kind):
    """OUT_DIR as given, or target/bench-results/KIND-<UTC time> in the repository."""
    if arg:
        return arg
    return os.path.join(RESULTS, f"{kind}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")


def report(rows, servers, cells, titles, out):
    """Prints the table (cells named by `titles`) and writes it to OUT/table.md; the exit
    status: 0 when every run was ok."""
    text = table(rows, servers, cells, titles)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    return 0 if all(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
