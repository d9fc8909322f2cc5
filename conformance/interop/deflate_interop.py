"""permessage-deflate interop between wscope and Python `websockets` (RFC 7692), both ways.

Usage: deflate_interop.py WSCOPE_BINARY

1. Their client -> `wscope serve --echo --compress`: for each parameter combination the client
   offers, the negotiated response is checked and compressible text, binary and a 1 MiB message
   are echoed (many messages per connection, so context takeover is exercised).
2. `wscope connect --compress` -> their compressing echo server, configured with each
   combination: every stdin line must come back, and the server must have negotiated deflate.

Prints one line per check and a closing "N passed, N failed" line; exit status 1 on failure.
"""

import asyncio
import os
import socket
import subprocess
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)

# (server_no_context_takeover, client_no_context_takeover, server_max_window_bits,
#  client_max_window_bits)
COMBOS = [
    (False, False, None, None),
    (True, False, None, None),
    (False, True, None, None),
    (True, True, None, None),
    (False, False, 10, None),
    (False, False, None, 9),
    (True, True, 9, 12),
    (False, False, 15, 15),
]

PASSED = 0
FAILED = 0


def check(ok, what):
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"ok   {what}")
    else:
        FAILED += 1
        print(f"FAIL {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def describe(c):
    snct, cnct, sbits, cbits = c
    return f"snct={int(snct)} cnct={int(cnct)} sbits={sbits} cbits={cbits}"


async def their_client_to_our_server(binary):
    port = free_port()
    server = subprocess.Popen(
        [binary, "serve", "--echo", "--compress", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.1).close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        text = "interop compresses this sentence again and again; " * 40
        big = os.urandom(256) * 4096  # 1 MiB, compressible by repetition
        for combo in COMBOS:
            snct, cnct, sbits, cbits = combo
            factory = ClientPerMessageDeflateFactory(
                server_no_context_takeover=snct,
                client_no_context_takeover=cnct,
                server_max_window_bits=sbits,
                client_max_window_bits=cbits if cbits is not None else True,
            )
            name = f"python client -> wscope server, {describe(combo)}"
            try:
                async with connect(
                    f"ws://127.0.0.1:{port}/",
                    extensions=[factory],
                    compression=None,
                    max_size=64 << 20,
                ) as ws:
                    agreed = ws.response.headers.get("Sec-WebSocket-Extensions", "")
                    ok = agreed.startswith("permessage-deflate")
                    ok &= ("server_no_context_takeover" in agreed) == snct
                    if sbits is not None:
                        ok &= f"server_max_window_bits={sbits}" in agreed
                    check(ok, f"{name}: negotiated '{agreed}'")
                    echoes = True
                    for i in range(20):
                        msg = f"{i}: {text}"
                        await ws.send(msg)
                        echoes &= (await ws.recv()) == msg
                    await ws.send(big)
                    echoes &= (await ws.recv()) == big
                    await ws.send([b"frag", b"mented ", b"binary"])
                    echoes &= (await ws.recv()) == b"fragmented binary"
                    check(echoes, f"{name}: 20 texts, 1 MiB binary, a fragmented message echoed")
                    await ws.close(1000, "bye")
                    check(ws.close_code == 1000, f"{name}: clean close 1000")
            except Exception as e:  # noqa: BLE001 - report any failure as a failed check
                check(False, f"{name}: {type(e).__name__}: {e}")
    finally:
        server.terminate()
        server.wait()


async def our_client_to_their_server(binary):
    lines = [f"line {i} " + "repeat me please " * (i % 7 + 1) for i in range(30)]
    for combo in COMBOS:
        snct, cnct, sbits, cbits = combo
        negotiated = []

        async def echo(ws):
            negotiated.append(ws.response.headers.get("Sec-WebSocket-Extensions", ""))
            async for m in ws:
                await ws.send(m)

        factory = ServerPerMessageDeflateFactory(
            server_no_context_takeover=snct,
            client_no_context_takeover=cnct,
            server_max_window_bits=sbits,
            client_max_window_bits=cbits,
        )
        name = f"wscope client -> python server, {describe(combo)}"
        async with serve(echo, "127.0.0.1", 0, extensions=[factory], compression=None) as srv:
            port = srv.sockets[0].getsockname()[1]
            proc = await asyncio.create_subprocess_exec(
                binary,
                "connect",
                "--compress",
                f"ws://127.0.0.1:{port}/",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            # Keep stdin open until every echo is back: `wscope connect` closes at stdin EOF.
            got_raw = []

            async def talk():
                proc.stdin.write(("\n".join(lines) + "\n").encode())
                await proc.stdin.drain()
                while len(got_raw) < len(lines):
                    line = await proc.stdout.readline()
                    if not line:
                        break
                    got_raw.append(line.rstrip(b"\n"))
                proc.stdin.close()
                return await proc.stderr.read()

            try:
                err = await asyncio.wait_for(talk(), 30)
                await asyncio.wait_for(proc.wait(), 15)
            except asyncio.TimeoutError:
                proc.kill()
                err = b"timeout"
            out = b"\n".join(got_raw)
            got = out.decode(errors="replace").splitlines()
            agreed = negotiated[0] if negotiated else ""
            check(
                agreed.startswith("permessage-deflate"),
                f"{name}: negotiated '{agreed}'",
            )
            check(
                got == lines and proc.returncode == 0,
                f"{name}: {len(got)}/{len(lines)} lines echoed, exit {proc.returncode}"
                + (f" ({err.decode(errors='replace').strip()[:200]})" if got != lines else ""),
            )


async def main():
    binary = sys.argv[1]
    await their_client_to_our_server(binary)
    await our_client_to_their_server(binary)
    print(f"deflate interop (python): {PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
