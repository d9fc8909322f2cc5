#!/usr/bin/env python3
"""Interop peer on PyPI `websockets` (pinned in conformance/requirements.txt).

  py_peer.py serve PORT [--cert F --key F]
      Echo server on 127.0.0.1:PORT (wss:// with --cert/--key): echoes text as
      text and binary as binary, answers pings and the closing handshake (the
      library does), 64 MiB messages, no compression. Text commands (see
      conformance/interop/README.md):
        cmd:close:CODE:REASON  the server closes with CODE and REASON
        cmd:frag:N:TEXT        the server sends TEXT as one text message in N fragments
        cmd:ping:PAYLOAD       the server pings with PAYLOAD; once the pong with that
                               payload is back it sends the text "pong-ok:PAYLOAD"

  py_peer.py client URL [--cafile F] [--close-reason-echo] [--label L]
      Runs the interop battery against the echo server at URL (ours):
      text, empty, binary, fragmented text and binary, 200 pipelined messages,
      ping/pong, 16 MiB binary and 4 MiB multi-byte text (sha256 compared),
      closing handshakes with exact code (and reason when --close-reason-echo)
      checked. Prints "ok NAME" / "FAIL NAME: why" per test and a closing
      "interop-py-client: N passed, M failed" line; exit 1 on any failure.
"""

import argparse
import asyncio
import hashlib
import os
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

MAX = 64 << 20
TIMEOUT = 60


def pattern(n, seed):
    """Deterministic pseudo-random bytes (sha256 counter stream)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest() * 64
        i += 1
    return bytes(out[:n])


def big_text(n_bytes):
    unit = "wscope ✓ é ж 漢 😀 "  # 1-, 2-, 3- and 4-byte UTF-8 sequences
    s = unit * (n_bytes // len(unit.encode()) + 1)
    b = s.encode()[:n_bytes]
    return b.decode("utf-8", errors="ignore")


# ---------------------------------------------------------------- server

async def handler(ws):
    try:
        async for msg in ws:
            if isinstance(msg, str) and msg.startswith("cmd:"):
                parts = msg.split(":", 3)
                if parts[1] == "close":
                    await ws.close(int(parts[2]), parts[3] if len(parts) > 3 else "")
                    return
                if parts[1] == "frag":
                    n, text = int(parts[2]), parts[3]
                    k = max(1, -(-len(text) // n))
                    await ws.send([text[i:i + k] for i in range(0, len(text), k)])
                    continue
                if parts[1] == "ping":
                    payload = msg[len("cmd:ping:"):]
                    waiter = await ws.ping(payload.encode())
                    await asyncio.wait_for(waiter, 10)
                    await ws.send("pong-ok:" + payload)
                    continue
            await ws.send(msg)
    except ConnectionClosed:
        pass


async def run_server(port, cert, key):
    ctx = None
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
    async with serve(handler, "127.0.0.1", port, ssl=ctx, max_size=MAX, compression=None,
                     ping_interval=None, close_timeout=5) as server:
        print(f"py_peer: listening on 127.0.0.1:{port}{' (TLS)' if ctx else ''}", file=sys.stderr, flush=True)
        await server.serve_forever()


# ---------------------------------------------------------------- client

class Battery:
    def __init__(self, label):
        self.label = label
        self.passed = 0
        self.failed = 0

    async def run(self, name, coro):
        try:
            await asyncio.wait_for(coro, TIMEOUT)
        except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the battery
            self.failed += 1
            print(f"FAIL {self.label} {name}: {type(e).__name__}: {e}", flush=True)
        else:
            self.passed += 1
            print(f"ok   {self.label} {name}", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def echo_one(ws, msg):
    await ws.send(msg)
    got = await ws.recv()
    check(type(got) is type(msg), f"type {type(got).__name__}, sent {type(msg).__name__}")
    return got


async def run_client(url, cafile, reason_echo, label):
    ctx = None
    if url.startswith("wss://"):
        ctx = ssl.create_default_context(cafile=cafile)
    kw = dict(ssl=ctx, max_size=MAX, compression=None, ping_interval=None, close_timeout=5)
    b = Battery(label)
    async with connect(url, **kw) as ws:
        async def t_text():
            for s in ("hello wscope", "unicode: ✓ é ж 漢 😀", ""):
                got = await echo_one(ws, s)
                check(got == s, f"echo {got!r} != {s!r}")

        async def t_binary():
            for data in (pattern(1000, "bin"), b"", bytes(range(256)) * 300):
                got = await echo_one(ws, data)
                check(got == data, f"binary echo of {len(data)} bytes differs")

        async def t_frag_text():
            parts = ["frag-one|", "frag-two ✓|", "frag-three"]
            await ws.send(parts)  # an iterable is sent as one fragmented message
            got = await ws.recv()
            check(got == "".join(parts), f"got {got!r}")

        async def t_frag_binary():
            parts = [pattern(70000, f"fb{i}") for i in range(4)]
            await ws.send(parts)
            got = await ws.recv()
            check(isinstance(got, bytes) and got == b"".join(parts), "fragmented binary echo differs")

        async def t_pipelined():
            msgs = [f"msg {i}" if i % 2 else pattern(100 + i, f"p{i}") for i in range(200)]
            for m in msgs:
                await ws.send(m)
            for i, m in enumerate(msgs):
                got = await ws.recv()
                check(got == m, f"message {i} out of order or changed")

        async def t_ping():
            for payload in (b"interop-ping", b"", pattern(125, "ping")):
                waiter = await ws.ping(payload)  # resolves only on a pong with this payload
                await asyncio.wait_for(waiter, 10)

        async def t_big_binary():
            data = pattern(16 << 20, "big")
            await ws.send(data)
            got = await ws.recv()
            check(isinstance(got, bytes), "not binary")
            h1, h2 = hashlib.sha256(data).hexdigest(), hashlib.sha256(got).hexdigest()
            check(h1 == h2, f"sha256 {h2} != {h1} ({len(got)} bytes)")

        async def t_big_text():
            s = big_text(4 << 20)
            await ws.send(s)
            got = await ws.recv()
            check(isinstance(got, str), "not text")
            h1, h2 = hashlib.sha256(s.encode()).hexdigest(), hashlib.sha256(got.encode()).hexdigest()
            check(h1 == h2, f"sha256 {h2} != {h1}")

        async def t_close():
            reason = "interop bye ✓"
            await ws.close(4000, reason)
            rcvd = ws.protocol.close_rcvd
            check(rcvd is not None, "no close frame received")
            check(rcvd.code == 4000, f"close code {rcvd.code}, expected 4000")
            want = reason if reason_echo else ""
            check(rcvd.reason == want, f"close reason {rcvd.reason!r}, expected {want!r}")

        for name, t in [("text", t_text), ("binary", t_binary), ("fragmented-text", t_frag_text),
                        ("fragmented-binary", t_frag_binary), ("pipelined-200", t_pipelined),
                        ("ping-pong", t_ping), ("16MiB-binary-sha256", t_big_binary),
                        ("4MiB-text-sha256", t_big_text), ("close-4000-with-reason", t_close)]:
            await b.run(name, t())

    async def t_close_1001():
        async with connect(url, **kw) as ws2:
            got = await echo_one(ws2, b"\x00\x01")
            check(got == b"\x00\x01", "echo")
            await ws2.close(1001, "")
            rcvd = ws2.protocol.close_rcvd
            check(rcvd is not None and rcvd.code == 1001 and rcvd.reason == "",
                  f"close frame {rcvd!r}, expected 1001 ''")

    await b.run("close-1001-no-reason", t_close_1001())
    print(f"{label}: {b.passed} passed, {b.failed} failed", flush=True)
    return 0 if b.failed == 0 else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("port", type=int)
    s.add_argument("--cert")
    s.add_argument("--key")
    c = sub.add_parser("client")
    c.add_argument("url")
    c.add_argument("--cafile")
    c.add_argument("--close-reason-echo", action="store_true",
                   help="expect the server to echo the close reason, not only the code")
    c.add_argument("--label", default="py-client")
    a = ap.parse_args()
    if a.mode == "serve":
        try:
            asyncio.run(run_server(a.port, a.cert, a.key))
        except KeyboardInterrupt:
            pass
        return 0
    return asyncio.run(run_client(a.url, a.cafile, a.close_reason_echo, a.label))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
