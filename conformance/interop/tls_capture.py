"""Passive wss:// check: real Python `websockets` and Node `ws` traffic over TLS 1.2 and 1.3,
captured on loopback, decrypted by `wscope inspect --keylog` with the key log the peers wrote
(Python through SSLKEYLOGFILE, Node through --tls-keylog), must give back every message as
the peers sent it, and agree with tshark's decryption of the same file with the same keys.

Usage: tls_capture.py WSCOPE_BINARY TCPDUMP WORKDIR [python|node|wscope ...]

Our own endpoints too: `wscope connect --keylog` against `wscope serve --tls-cert ... --keylog`
(each side's key log must decrypt the capture). For each peer library (default: all), one
exchange per cipher suite (the three TLS 1.3
suites; ECDHE-RSA with AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305 in TLS 1.2; Python's
ssl module cannot pick a TLS 1.3 suite, so its TLS 1.3 run takes OpenSSL's choice),
permessage-deflate on and off in turn, with a 1 MiB message each way (many records), and (Node)
a ping between the fragments of a message. Per capture:

- `wscope inspect --keylog KEYS --events - --digest` reports, per direction and in order,
  exactly the messages sent (opcode, length, SHA-256), a `tls` event with the negotiated
  version and suite, TLS in the `established` event, and no anomaly;
- tshark (`-o tls.keylog_file:KEYS`, the port decoded as TLS carrying HTTP) sees the same WebSocket frames
  (direction, opcode, payload length) as wscope's `frame` events;
- without the key log the connection is one `tls_undecrypted` event and no session.

The first capture is also turned into a pcapng with the keys in a Decryption Secrets Block
(`editcap --inject-secrets tls,KEYS`), which must decode the same with no --keylog.

Captures are taken as deflate_capture.py takes them (whole streams or taken again; an
incomplete capture is an environment failure, never a wscope result). Prints one line per
check and "N passed, N failed"; exit status 1 on failure.
"""

import asyncio
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import time

import deflate_capture as dc

HERE = os.path.dirname(os.path.abspath(__file__))

# (peer, TLS version, cipher suite (None: the library's choice), deflate)
RUNS = [
    ("node", "TLSv1.3", "TLS_AES_128_GCM_SHA256", False),
    ("node", "TLSv1.3", "TLS_AES_256_GCM_SHA384", True),
    ("node", "TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256", False),
    ("node", "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", True),
    ("node", "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", False),
    ("node", "TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305", True),
    ("python", "TLSv1.3", None, True),
    ("python", "TLSv1.3", None, False),
    ("python", "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", False),
    ("python", "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", True),
    ("python", "TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305", False),
    # Our own endpoints: `wscope connect --keylog` against `wscope serve --tls-cert --keylog`.
    ("wscope", "TLSv1.3", None, False),
    ("wscope", "TLSv1.3", None, True),
]

# OpenSSL names → IANA names (what wscope and Node's standardName report).
IANA = {
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}

# One tally with the deflate capture check (its `check` counts into `dc.PASSED`/`dc.FAILED`).
check = dc.check


def digest(op, data):
    data = data.encode() if isinstance(data, str) else data
    return (op, len(data), hashlib.sha256(data).hexdigest())


def big(seed):
    return bytes((i * 31 + (i >> 8) + seed) & 0xFF for i in range(1 << 20))


async def exchange_python(port, cert, key, version, cipher, deflate, keys):
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve

    v = ssl.TLSVersion.TLSv1_3 if version == "TLSv1.3" else ssl.TLSVersion.TLSv1_2
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)
    sctx.minimum_version = sctx.maximum_version = v
    if cipher:
        sctx.set_ciphers(cipher)
    # The client's key log comes from SSLKEYLOGFILE, as a user's would.
    os.environ["SSLKEYLOGFILE"] = keys
    cctx = ssl.create_default_context()
    del os.environ["SSLKEYLOGFILE"]
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    cctx.minimum_version = cctx.maximum_version = v
    sent = {True: [], False: [], "info": {}}
    compression = "deflate" if deflate else None
    server_big = big(5)

    async def handler(ws):
        await ws.send("hello from the python server")
        sent[False].append(digest(1, "hello from the python server"))
        await ws.send(server_big)
        sent[False].append(digest(2, server_big))
        async for _ in ws:
            pass

    async with serve(handler, "127.0.0.1", port, ssl=sctx, compression=compression,
                     max_size=None):
        async with connect(f"wss://127.0.0.1:{port}/", ssl=cctx,
                           server_hostname="example.test", compression=compression,
                           max_size=None) as ws:
            tls = ws.transport.get_extra_info("ssl_object")
            sent["info"] = {"version": tls.version(), "cipher": tls.cipher()[0]}
            await ws.send("hello from the python client")
            sent[True].append(digest(1, "hello from the python client"))
            b = big(9)
            await ws.send(b)
            sent[True].append(digest(2, b))
            await ws.send(["frag", "men", "ted"])
            sent[True].append(digest(1, "fragmented"))
            await ws.recv()
            await ws.recv()
            await ws.close()
    return sent


def exchange_node(port, cert, key, version, cipher, deflate, keys):
    out = subprocess.run(
        ["node", f"--tls-keylog={keys}", os.path.join(HERE, "tls_exchange.js"), str(port),
         cert, key, version, cipher, "1" if deflate else "0"],
        cwd=HERE, capture_output=True, text=True, timeout=120, check=True,
    )
    got = json.loads(out.stdout)
    return {
        True: [tuple(d) for d in got["client"]],
        False: [tuple(d) for d in got["server"]],
        "info": {"version": got["version"], "cipher": got["cipher"]},
    }


def exchange_wscope(binary, port, cert, key, deflate, keys):
    """`wscope connect --keylog` sends stdin lines (one of 1 MiB) to `wscope serve --echo` on
    TLS, which echoes them; the server writes its own key log beside the client's."""
    comp = ["--compress"] if deflate else []
    server = subprocess.Popen(
        [binary, "serve", "--echo", "--host", "127.0.0.1", "--port", str(port), "--tls-cert",
         cert, "--tls-key", key, "--keylog", keys + ".server", *comp],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # It announces its address once it listens (no probe connection: it would be
        # captured too).
        server.stderr.readline()
        lines = ["hello from wscope connect", "x" * (1 << 20), "bye"]
        subprocess.run(
            [binary, "connect", f"wss://127.0.0.1:{port}/", "--insecure", "--sni", "example.test",
             "--keylog", keys,
             *comp],
            input="".join(line + "\n" for line in lines), capture_output=True, text=True,
            timeout=60, check=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    sent = [digest(1, line) for line in lines]
    return {True: sent, False: list(sent), "info": {"version": "TLSv1.3", "cipher": None}}


def gaps(cap, port):
    """What is missing from the capture of the connection to `port`: per direction, a SYN and
    every byte from it to the last one sent. (Unlike deflate_capture.stream_gaps, no FIN is
    required: our server closes its socket after the closing handshake, so the client's last
    TLS alert draws an RST and the client sends no FIN.)"""
    problems = []
    segs_all = dc.pcap_tcp_segments(cap)
    for name, to_server in (("client", True), ("server", False)):
        segs = [x for x in segs_all if (x[1] == port) == to_server and port in x[:2]]
        syn = [x for x in segs if x[3] & 0x02]
        if not syn:
            problems.append(f"{name}: no SYN ({len(segs)} segments)")
            continue
        isn = syn[0][2]
        covered = sorted(((x[2] - isn - 1) % 2**32, (x[2] - isn - 1) % 2**32 + x[4])
                         for x in segs if x[4] > 0)
        reach = 0
        for lo, hi in covered:
            if lo > reach:
                problems.append(f"{name}: bytes {reach}..{lo} missing")
                break
            reach = max(reach, hi)
    return problems


def ended(cap, port):
    """Both directions ended (FIN), or one was reset."""
    segs = [x for x in dc.pcap_tcp_segments(cap) if port in x[:2]]
    fins = {x[1] == port for x in segs if x[3] & 0x01}
    return fins == {True, False} or any(x[3] & 0x04 for x in segs)


def capture(tool, cap, port, run):
    """tcpdump around one exchange, as deflate_capture.capture_exchange does it."""
    cmd = [tool, "-i", "lo", "--immediate-mode", "-B", "65536", "-U", "-Z", "root",
           "-w", cap, f"tcp port {port}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started = time.monotonic()
    while time.monotonic() - started < 15:
        line = proc.stderr.readline().decode(errors="replace")
        if not line or "listening" in line.lower():
            break
    try:
        return run()
    finally:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not ended(cap, port):
            time.sleep(0.05)
        proc.send_signal(2)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        capture.report = err.decode(errors="replace")


def inspect(binary, cap, keys):
    args = [binary, "inspect", "--events", "-", "--digest", cap]
    if keys:
        args += ["--keylog", keys]
    out = subprocess.run(args, capture_output=True, text=True, check=False)
    return [json.loads(line) for line in out.stdout.splitlines()], out.stderr


def messages(events, opcodes):
    seen = {True: [], False: []}
    for ev in events:
        if ev["event"] == "message" and ev["opcode"] in opcodes:
            seen[ev["is_orig"]].append((ev["opcode"], ev["len"], ev.get("sha256")))
    return seen


def tshark_frames(cap, keys, port):
    """Per direction, (opcode, 7-bit payload length field) of every WebSocket frame tshark
    decrypts (its `websocket.payload_length` is that field: 126 and 127 announce the longer
    forms). Directions are compared apart: the two orders of events interleave them
    differently (tshark at a frame's last packet, wscope at its header).

    The port is decoded as TLS explicitly: both ports are the kernel's pick, and tshark gives a
    TCP port that some dissector registered (44818 EtherNet/IP, 57000 IRC, ... in the ephemeral
    range) to that dissector instead of trying TLS, which then shows no WebSocket at all."""
    out = subprocess.run(
        ["tshark", "-r", cap, "-o", f"tls.keylog_file:{keys}", "-d", f"tcp.port=={port},tls",
         "-d", f"tls.port=={port},http",
         "-Y", "websocket", "-T", "fields", "-E", "separator=;", "-e", "tcp.dstport",
         "-e", "websocket.opcode", "-e", "websocket.payload_length"],
        capture_output=True, text=True, check=False,
    )
    frames = []
    for line in out.stdout.splitlines():
        dport, ops, lens = line.split(";")
        for op, n in zip(ops.split(","), lens.split(",")):
            frames.append((int(dport) == port, int(op), int(n)))
    return {d: [f[1:] for f in frames if f[0] == d] for d in (True, False)}


def our_frames(events):
    def field(n):
        return n if n < 126 else 126 if n < 65536 else 127
    frames = [(ev["is_orig"], ev["opcode"], field(ev["payload_len"])) for ev in events
              if ev["event"] == "frame"]
    return {d: [f[1:] for f in frames if f[0] == d] for d in (True, False)}


def main():
    binary, tool, work = sys.argv[1], sys.argv[2], sys.argv[3]
    peers = sys.argv[4:] or ["python", "node", "wscope"]
    os.makedirs(work, exist_ok=True)
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         "/CN=example.test", "-addext", "subjectAltName=DNS:example.test", "-keyout", key,
         "-out", cert], check=True, capture_output=True,
    )
    have_tshark = shutil.which("tshark") is not None
    have_editcap = shutil.which("editcap") is not None
    env_failed = 0
    dsb_done = False
    for n, (peer, version, cipher, deflate) in enumerate(RUNS):
        if peer not in peers:
            continue
        name = f"{peer} {version} {cipher or '(default suite)'} deflate={'on' if deflate else 'off'}"
        cap = os.path.join(work, f"tls-{n}.pcap")
        keys = os.path.join(work, f"tls-{n}.keys")
        for attempt in range(1, dc.CAPTURE_ATTEMPTS + 1):
            for k in (keys, keys + ".server"):
                if os.path.exists(k):
                    os.remove(k)
            port = dc.free_port()
            if peer == "node":
                run = lambda: exchange_node(port, cert, key, version, cipher, deflate, keys)
            elif peer == "wscope":
                run = lambda: exchange_wscope(binary, port, cert, key, deflate, keys)
            else:
                run = lambda: asyncio.run(
                    exchange_python(port, cert, key, version, cipher, deflate, keys))
            sent = capture(tool, cap, port, run)
            problems = gaps(cap, port)
            lost = dc.dropped(capture.report)
            if lost:
                problems.append(f"tcpdump dropped {lost} packets")
            if not problems:
                break
            print(f"     {name}: the capture is incomplete ({'; '.join(problems)}), "
                  f"attempt {attempt} of {dc.CAPTURE_ATTEMPTS}: captured again")
        else:
            env_failed += 1
            print(f"FAIL {name}: ENVIRONMENT, not wscope: no complete capture")
            continue
        info = sent["info"]
        want_cipher = IANA.get(info["cipher"], info["cipher"])
        opcodes = (1, 2, 9) if peer == "node" else (1, 2)
        events, err = inspect(binary, cap, keys)
        seen = messages(events, opcodes)
        for is_orig, who in ((True, "client"), (False, "server")):
            got, want = seen[is_orig], sent[is_orig]
            check(got == want, f"{name}: {who} messages decrypted "
                  f"({sum(a == b for a, b in zip(got, want))}/{len(want)} match)")
        tls = [e for e in events if e["event"] == "tls"]
        check(len(tls) == 1 and tls[0]["version"] == info["version"]
              and want_cipher in (None, tls[0]["cipher"]),
              f"{name}: tls event {tls and (tls[0]['version'], tls[0]['cipher'])} is "
              f"{(info['version'], want_cipher)}")
        est = [e for e in events if e["event"] == "established"]
        check(len(est) == 1 and est[0].get("tls", {}).get("sni") == "example.test",
              f"{name}: one established event with tls.sni")
        anomalies = [(e["name"], e["detail"]) for e in events if e["event"] == "anomaly"]
        check(not anomalies, f"{name}: no anomaly {anomalies[:3]}")
        if have_tshark:
            theirs, ours = tshark_frames(cap, keys, port), our_frames(events)
            check(theirs == ours and ours[True] and ours[False],
                  f"{name}: tshark decrypts the same frames "
                  f"({len(ours[True])}+{len(ours[False])}; tshark "
                  f"{len(theirs[True])}+{len(theirs[False])}; port {port})")
        if peer == "wscope":
            events, _ = inspect(binary, cap, keys + ".server")
            got = messages(events, opcodes)
            check(got[True] == sent[True] and got[False] == sent[False],
                  f"{name}: the server's key log (serve --keylog) decrypts the same")
        events, _ = inspect(binary, cap, None)
        kinds = [e["event"] for e in events]
        check(kinds.count("tls_undecrypted") == 1 and "established" not in kinds,
              f"{name}: without keys: tls_undecrypted, no session")
        if have_editcap and not dsb_done:
            dsb_done = True
            ng = os.path.join(work, f"tls-{n}-dsb.pcapng")
            subprocess.run(["editcap", "--inject-secrets", f"tls,{keys}", cap, ng], check=True)
            events, _ = inspect(binary, ng, None)
            got = messages(events, opcodes)
            check(got[True] == sent[True] and got[False] == sent[False],
                  f"{name}: keys from the pcapng Decryption Secrets Block (editcap)")
    env = f", {env_failed} not checked (incomplete captures)" if env_failed else ""
    print(f"tls capture ({', '.join(peers)}): {dc.PASSED} passed, {dc.FAILED} failed{env}")
    return 1 if dc.FAILED or env_failed else 0


if __name__ == "__main__":
    sys.exit(main())
