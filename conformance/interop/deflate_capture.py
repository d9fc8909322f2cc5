"""Passive permessage-deflate check: real Python `websockets` and Node `ws` traffic captured on
loopback, analysed by `wscope inspect`, must give back every message as the peers sent it.

Usage: deflate_capture.py WSCOPE_BINARY CAPTURE_TOOL WORKDIR [python|node ...]

For each peer library (default: both) and each parameter combination (context takeover on/off
each way, reduced window bits), a client and a server of that library exchange compressible
messages both ways while CAPTURE_TOOL
(`tcpdump` or `dumpcap`) records loopback. `wscope inspect --events - --digest` must report,
per direction and in order, exactly the messages that were sent (opcode, inflated length,
SHA-256), and no inflate anomaly. The Node exchange is `deflate_exchange.js` beside this file
(run with the `ws` installed in `node_modules/` here). Without context takeover handled right, the later messages
of a direction do not inflate.

Prints one line per check and "N passed, N failed"; exit status 1 on failure.
"""

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

COMBOS = [
    (False, False, None, None),
    (True, False, None, None),
    (False, True, None, None),
    (True, True, 9, 12),
    (False, False, 10, 9),
]

PASSED = 0
FAILED = 0


def check(ok, what):
    global PASSED, FAILED
    PASSED += bool(ok)
    FAILED += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {what}")


def messages(side):
    out = []
    for i in range(12):
        if i % 3 == 2:
            out.append(bytes((i * 7 + k) % 251 for k in range(3000)) * 4)
        else:
            out.append(f"{side} message {i}: " + "the same words compress well " * (5 + i))
    return out


def digest(m):
    data = m.encode() if isinstance(m, str) else m
    return (1 if isinstance(m, str) else 2, len(data), hashlib.sha256(data).hexdigest())


async def exchange_python(combo, port):
    snct, cnct, sbits, cbits = combo
    sent = {True: [], False: []}
    server_msgs = messages("server")

    async def handler(ws):
        for m in server_msgs:
            await ws.send(m)
            sent[False].append(digest(m))
        async for _ in ws:
            pass

    sfactory = ServerPerMessageDeflateFactory(
        server_no_context_takeover=snct,
        client_no_context_takeover=cnct,
        server_max_window_bits=sbits,
        client_max_window_bits=cbits,
    )
    cfactory = ClientPerMessageDeflateFactory(client_max_window_bits=True)
    async with serve(handler, "127.0.0.1", port, extensions=[sfactory], compression=None):
        async with connect(
            f"ws://127.0.0.1:{port}/", extensions=[cfactory], compression=None
        ) as ws:
            for m in messages("client"):
                await ws.send(m)
                sent[True].append(digest(m))
            for _ in server_msgs:
                await ws.recv()
            await ws.close()
    return sent


def exchange_node(combo, port):
    """Runs deflate_exchange.js (a ws client and server) and returns what each side sent."""
    here = os.path.dirname(os.path.abspath(__file__))
    args = [str(port), str(int(combo[0])), str(int(combo[1]))]
    args += ["-" if b is None else str(b) for b in combo[2:]]
    out = subprocess.run(
        ["node", os.path.join(here, "deflate_exchange.js"), *args],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    got = json.loads(out.stdout)
    if not got["negotiated"].startswith("permessage-deflate"):
        raise RuntimeError(f"node peers did not negotiate compression: {got['negotiated']!r}")
    print(f"     node negotiated: {got['negotiated']}")
    return {
        True: [tuple(d) for d in got["client"]],
        False: [tuple(d) for d in got["server"]],
    }


def main():
    binary, tool, work = sys.argv[1], sys.argv[2], sys.argv[3]
    peers = sys.argv[4:] or ["python", "node"]
    os.makedirs(work, exist_ok=True)
    for peer in peers:
        run_peer(binary, tool, work, peer)
    print(f"deflate capture ({', '.join(peers)}): {PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


# A pcap file with no packet is its 24-byte global header only.
PCAP_HEADER_LEN = 24


def capture_exchange(cmd, peer, combo, port):
    """Starts the capture `cmd`, runs one exchange with `peer`, stops the capture; returns what
    the exchange sent."""
    capture = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Both tools say "listening"/"Capturing" on stderr once the capture runs.
    started = time.monotonic()
    while time.monotonic() - started < 15:
        line = capture.stderr.readline().decode(errors="replace")
        if not line or "listening" in line.lower() or "capturing" in line.lower():
            break
    time.sleep(0.5)
    try:
        if peer == "node":
            return exchange_node(combo, port)
        return asyncio.run(exchange_python(combo, port))
    finally:
        time.sleep(0.5)
        capture.send_signal(signal.SIGINT)
        capture.wait(10)


def free_port():
    """A port nothing listens on or connects from now (the kernel's pick, as conformance/lib.sh
    does): fixed ports in the ephemeral range collided with clients of earlier steps."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_peer(binary, tool, work, peer):
    """Captures and checks every parameter combination with one peer library."""
    for n, combo in enumerate(COMBOS):
        port = free_port()
        cap = os.path.join(work, f"deflate-{peer}-{n}.pcap")
        if tool.endswith("dumpcap"):
            cmd = [tool, "-i", "lo", "-f", f"tcp port {port}", "-w", cap, "-P"]
        else:
            cmd = [tool, "-i", "lo", "-U", "-Z", "root", "-w", cap, f"tcp port {port}"]
        # An empty capture (the tool wrote only the file header: it saw no packet, which
        # happened once on a loaded CI machine) tests nothing of wscope: the exchange is run
        # again with a new capture, at most twice.
        for attempt in range(3):
            sent = capture_exchange(cmd, peer, combo, port)
            if os.path.getsize(cap) > PCAP_HEADER_LEN:
                break
            print(f"     {peer} combo {n}: the capture is empty (attempt {attempt + 1} of 3)")
        name = "{}: snct={} cnct={} sbits={} cbits={}".format(peer, *combo)
        result = subprocess.run(
            [binary, "inspect", "--events", "-", "--digest", cap],
            capture_output=True,
            text=True,
            check=False,
        )
        seen = {True: [], False: []}
        anomalies = []
        for line in result.stdout.splitlines():
            ev = json.loads(line)
            if ev["event"] == "message" and ev["opcode"] in (1, 2):
                seen[ev["is_orig"]].append((ev["opcode"], ev["len"], ev.get("sha256")))
            elif ev["event"] == "anomaly":
                anomalies.append(ev["name"])
        for is_orig, who in ((True, "client"), (False, "server")):
            check(
                seen[is_orig] == sent[is_orig],
                f"{name}: {who} messages inflated passively "
                f"({sum(a == b for a, b in zip(seen[is_orig], sent[is_orig]))}/{len(sent[is_orig])} match)",
            )
        inflate_problems = [a for a in anomalies if "inflate" in a]
        check(not inflate_problems, f"{name}: no inflate anomaly {inflate_problems}")


if __name__ == "__main__":
    sys.exit(main())
