"""Passive permessage-deflate check: real Python `websockets` and Node `ws` traffic captured on
loopback, analysed by `wscope inspect`, must give back every message as the peers sent it.

Usage: deflate_capture.py WSCOPE_BINARY TCPDUMP WORKDIR [python|node ...]

For each peer library (default: both) and each parameter combination (context takeover on/off
each way, reduced window bits), a client and a server of that library exchange compressible
messages both ways while tcpdump records loopback.

The capture is the test's input, so it is checked before wscope sees it. tcpdump is stopped
only once the file holds both directions' FIN (a SIGINT while packets still sit in the kernel's
buffer, on a loaded machine, lost them: 7 of 38 packets). Then the TCP streams must be whole:
every byte from SYN to FIN of each direction is in the file and tcpdump reports no drop. An
incomplete capture is an environment failure, never a wscope result: the exchange is captured
again (up to CAPTURE_ATTEMPTS times), and if it never comes whole the check fails saying so. `wscope inspect --events - --digest` must report,
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
import re
import signal
import socket
import struct
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
    env = f", {ENV_FAILED} not checked (incomplete captures)" if ENV_FAILED else ""
    print(f"deflate capture ({', '.join(peers)}): {PASSED} passed, {FAILED} failed{env}")
    return 1 if FAILED or ENV_FAILED else 0


CAPTURE_ATTEMPTS = 5
ENV_FAILED = 0


def pcap_tcp_segments(path):
    """The TCP segments of a classic pcap file as (src port, dst port, seq, flags, payload len),
    reading only whole records (the file may still be growing). Link types: Ethernet, Linux
    cooked v1 and v2, BSD loopback."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    if len(data) < 24:
        return []
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap file")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    out, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8 : off + 12])[0]
        if off + 16 + incl > len(data):
            break
        pkt = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        if linktype == 1:
            l3, ethertype = pkt[14:], pkt[12:14]
        elif linktype == 113:
            l3, ethertype = pkt[16:], pkt[14:16]
        elif linktype == 276:
            l3, ethertype = pkt[20:], pkt[0:2]
        elif linktype in (0, 108):
            l3, ethertype = pkt[4:], b"\x08\x00" if pkt[4:5] and pkt[4] >> 4 == 4 else b"\x86\xdd"
        else:
            raise ValueError(f"{path}: link type {linktype} not handled")
        if ethertype == b"\x08\x00" and len(l3) >= 20 and l3[9] == 6:
            ihl = (l3[0] & 0x0F) * 4
            total = struct.unpack(">H", l3[2:4])[0]
            tcp, ip_payload = l3[ihl:], total - ihl
        elif ethertype == b"\x86\xdd" and len(l3) >= 40 and l3[6] == 6:
            tcp, ip_payload = l3[40:], struct.unpack(">H", l3[4:6])[0]
        else:
            continue
        if len(tcp) < 20:
            continue
        sport, dport, seq = struct.unpack(">HHI", tcp[:8])
        doff = (tcp[12] >> 4) * 4
        out.append((sport, dport, seq, tcp[13], ip_payload - doff))
    return out


def stream_gaps(segments, port):
    """What is missing from the capture of the one connection to `port`: a list of problems
    (no SYN, no FIN, or a hole in the bytes between them), empty when both directions are whole."""
    problems = []
    for name, to_server in (("client", True), ("server", False)):
        segs = [s for s in segments if (s[1] == port) == to_server and port in s[:2]]
        syn = [s for s in segs if s[3] & 0x02]
        fin = [s for s in segs if s[3] & 0x01]
        if not syn or not fin:
            problems.append(f"{name}: {'no SYN' if not syn else 'no FIN'} ({len(segs)} segments)")
            continue
        isn = syn[0][2]
        end = (fin[-1][2] - isn - 1 + fin[-1][4]) % 2**32
        covered = sorted(((s[2] - isn - 1) % 2**32, (s[2] - isn - 1) % 2**32 + s[4])
                         for s in segs if s[4] > 0)
        reach = 0
        for lo, hi in covered:
            if lo > reach:
                problems.append(f"{name}: bytes {reach}..{lo} missing")
                break
            reach = max(reach, hi)
        else:
            if reach < end:
                problems.append(f"{name}: bytes {reach}..{end} missing")
    return problems


def both_fins(path, port):
    segs = pcap_tcp_segments(path)
    return {s[1] == port for s in segs if s[3] & 0x01 and port in s[:2]} == {True, False}


def capture_exchange(cmd, cap, peer, combo, port):
    """Starts tcpdump, runs one exchange with `peer`, stops tcpdump once the file holds the end
    of the connection; returns what the exchange sent and tcpdump's drop report."""
    capture = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # tcpdump says "listening on lo" once its filter is attached and it is capturing.
    started = time.monotonic()
    while time.monotonic() - started < 15:
        line = capture.stderr.readline().decode(errors="replace")
        if not line or "listening" in line.lower():
            break
    try:
        if peer == "node":
            return exchange_node(combo, port), None
        return asyncio.run(exchange_python(combo, port)), None
    finally:
        # Both FINs in the file mean tcpdump has read the whole connection from the kernel.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not both_fins(cap, port):
            time.sleep(0.05)
        capture.send_signal(signal.SIGINT)
        try:
            _, err = capture.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            capture.kill()
            _, err = capture.communicate()
        capture_exchange.report = err.decode(errors="replace")


def dropped(report):
    """Packets tcpdump says it lost ("N packets dropped by kernel/interface")."""
    return sum(int(n) for n in re.findall(r"(\d+) packets? dropped by", report or ""))


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
        # --immediate-mode: packets leave the kernel buffer at once; -B: 64 MiB of it.
        cmd = [tool, "-i", "lo", "--immediate-mode", "-B", "65536", "-U", "-Z", "root",
               "-w", cap, f"tcp port {port}"]
        name = "{}: snct={} cnct={} sbits={} cbits={}".format(peer, *combo)
        for attempt in range(1, CAPTURE_ATTEMPTS + 1):
            sent, _ = capture_exchange(cmd, cap, peer, combo, port)
            problems = stream_gaps(pcap_tcp_segments(cap), port)
            lost = dropped(capture_exchange.report)
            if lost:
                problems.append(f"tcpdump dropped {lost} packets")
            if not problems:
                break
            print(f"     {name}: the capture is incomplete ({'; '.join(problems)}), "
                  f"attempt {attempt} of {CAPTURE_ATTEMPTS}: an environment problem, captured again")
            port = free_port()
            cmd[-1] = f"tcp port {port}"
        else:
            global ENV_FAILED
            ENV_FAILED += 1
            print(f"FAIL {name}: ENVIRONMENT, not wscope: no complete capture in "
                  f"{CAPTURE_ATTEMPTS} attempts")
            continue
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
        # The names of what the core's deflate message layer reports (ProtocolError::name).
        inflate_problems = [
            a for a in anomalies if a in ("inflate_failed", "message_too_large", "invalid_utf8")
        ]
        check(not inflate_problems, f"{name}: no inflate anomaly {inflate_problems}")


if __name__ == "__main__":
    sys.exit(main())
