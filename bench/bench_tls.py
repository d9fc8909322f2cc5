#!/usr/bin/env python3
"""Echo throughput over TLS (wss://): `wscope serve --echo` on the tokio and the io_uring
driver against wss:// echo servers on the anchors' libraries, in the same run: the Rust
anchors of ../shared/bench (tokio-tungstenite, tokio-websockets, fastwebsockets) with
tokio-rustls under them (bench/tls-anchors, built by this script when missing), and
Python `websockets` and Node `ws` (the interop peers in conformance/interop, which serve
wss:// with --cert/--key). The shared load generator and the shared anchors speak no TLS.

Usage: bench/bench_tls.py WSCOPE_BINARY LOADGEN_BINARY [OUT_DIR]

  WSCOPE_BINARY   target/release/wscope
  LOADGEN_BINARY  target/release/examples/echo_loadgen (run with --plain --tls-ca)
  OUT_DIR         default target/bench-results/tls-<time> (git-ignored; it receives the
                  throw-away CA and server key, so keep it out of the tree)

Needs openssl (a throw-away CA and a certificate for localhost are made in OUT_DIR), cargo
(for bench/tls-anchors), and the interop peers installed as scripts/interop.sh leaves
them (conformance/.venv with websockets, conformance/interop/node_modules with ws).

Environment: REPEAT (passes, default 3), DURATION (s, default 3), WARMUP (s, default 0.5),
SERVERS (default "wscope wscope-uring tungstenite tokio-websockets fastwebsockets
python-websockets node-ws"), CELLS (subset of lat1k fan1k bin1m), space separated.

Placement and CPU accounting as in bench_deflate.py: server on CPU 0, load generator on
CPU 1 (both on CPU 0 in lat1k); server CPU per echoed message from /proc/PID/stat over the
whole cell. Prints markdown tables (median [min-max]); raw JSON lines in OUT_DIR/results.jsonl.
"""

import os
import subprocess
import sys
import time

import bench_deflate as common

HERE = os.path.dirname(os.path.abspath(__file__))
# The interop peers and their venv / node_modules, as scripts/interop.sh installs them.
CONFORMANCE = os.path.join(os.path.dirname(HERE), "conformance")

CELLS = {
    # name: (conns, size, window, placement, binary, title)
    "lat1k": (1, "1K", 1, "same", False, "1 conn x 1 KiB text, W=1, same core"),
    "fan1k": (64, "1K", 1, "split", False, "64 conns x 1 KiB text, W=1"),
    "bin1m": (4, "1M", 2, "split", True, "4 conns x 1 MiB binary, W=2"),
}


def certificates(out):
    """A CA and a localhost certificate signed by it: (ca, cert, key) paths."""
    d = os.path.join(out, "tls")
    os.makedirs(d, exist_ok=True)
    p = lambda name: os.path.join(d, name)  # noqa: E731
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-keyout", p("ca.key"), "-out", p("ca.pem"),
        "-subj", "/CN=wscope bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", p("server.key"), "-out", p("server.csr"), "-subj", "/CN=localhost")
    with open(p("ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
        "-CAcreateserial", "-days", "2", "-extfile", p("ext.cnf"), "-out", p("server.pem"))
    return p("ca.pem"), p("server.pem"), p("server.key")


RUST_ANCHORS = ("tungstenite", "tokio-websockets", "fastwebsockets")
TLS_ANCHORS = os.path.join(HERE, "tls-anchors")
TLS_ANCHOR_BIN = os.path.join(TLS_ANCHORS, "target/release/tls-anchor-echo")


def build_rust_anchors():
    """Builds bench/tls-anchors (its own workspace, release) unless it is built."""
    if not os.path.exists(TLS_ANCHOR_BIN):
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=TLS_ANCHORS, check=True)


def server_cmd(name, wscope, cert, key, port):
    tls = ["--tls-cert", cert, "--tls-key", key]
    if name in RUST_ANCHORS:
        return [TLS_ANCHOR_BIN, name, str(port), cert, key]
    if name == "wscope":
        return [wscope, "serve", "--echo", *tls, "--port", str(port)]
    if name == "wscope-uring":
        return [wscope, "serve", "--echo", "--io-uring", *tls, "--port", str(port)]
    if name == "python-websockets":
        return [os.path.join(CONFORMANCE, ".venv/bin/python"),
                os.path.join(CONFORMANCE, "interop/py_peer.py"),
                "serve", str(port), "--cert", cert, "--key", key]
    if name == "node-ws":
        return ["node", os.path.join(CONFORMANCE, "interop/node_peer.js"), "serve", str(port),
                "--cert", cert, "--key", key]
    raise ValueError(name)


def run_pass(wscope, loadgen, tls, servers, cells, out, n):
    ca, cert, key = tls
    port = 9600 + 20 * n
    rows = []
    for srv in servers:
        port += 1
        proc = subprocess.Popen(common.pin(0) + server_cmd(srv, wscope, cert, key, port),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if not common.wait_port(port):
                print(f"server {srv} did not start", file=sys.stderr)
                continue
            time.sleep(0.3)
            for cell in cells:
                conns, size, window, placement, binary, _ = CELLS[cell]
                cmd = [loadgen, "--addr", f"127.0.0.1:{port}", "--conns", str(conns),
                       "--size", size, "--window", str(window), "--plain", "--tls-ca", ca]
                cmd = common.pin(0 if placement == "same" else 1) + cmd
                rows.append(common.measure(proc, cmd + (["--binary"] if binary else []), srv, cell, n))
        finally:
            proc.terminate()
            proc.wait(10)
    return common.append_rows(out, rows)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    wscope, loadgen = (os.path.abspath(a) for a in sys.argv[1:3])
    out = common.default_out(sys.argv[3] if len(sys.argv) > 3 else None, "tls")
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "results.jsonl"), "w").close()
    tls = certificates(out)
    servers = os.environ.get("SERVERS", "wscope wscope-uring " + " ".join(RUST_ANCHORS)
                             + " python-websockets node-ws").split()
    if any(s in RUST_ANCHORS for s in servers):
        build_rust_anchors()
    cells = os.environ.get("CELLS", " ".join(CELLS)).split()
    rows = []
    for n in range(int(os.environ.get("REPEAT", "3"))):
        rows += run_pass(wscope, loadgen, tls, servers, cells, out, n)
    return common.report(rows, servers, cells, {k: v[5] for k, v in CELLS.items()}, out)


if __name__ == "__main__":
    sys.exit(main())
