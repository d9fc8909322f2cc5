"""Python `websockets` peers for the live capture test (scripts/live.sh).

    peers.py serve HOST PORT          echo server (permessage-deflate offered and accepted)
    peers.py client URL               one scripted conversation, then a clean close
    peers.py many URL N [SECONDS]     N concurrent sessions; each echoes two messages, or
                                      (with SECONDS) keeps sending for that long, then closes

A wss:// URL is opened without verifying the server's certificate (the test's self-signed
one); Python's ssl module appends the TLS secrets to the file SSLKEYLOGFILE names, if set.

Every echo is checked; exit status 0 only when every conversation went as scripted.
"""

import asyncio
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve


async def echo(ws):
    async for msg in ws:
        await ws.send(msg)


async def run_server(host, port):
    async with serve(echo, host, int(port), max_size=None):
        await asyncio.Future()


def tls(url):
    """An unverifying TLS context for a wss:// URL (None for ws://). create_default_context()
    writes the key log that SSLKEYLOGFILE names."""
    if not url.startswith("wss://"):
        return None
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def expect_echo(ws, msg):
    await ws.send(msg)
    got = await ws.recv()
    if got != msg:
        raise SystemExit(f"echo mismatch: sent {len(msg)} bytes, got {len(got)}")


async def run_client(url):
    async with connect(url, max_size=None, ssl=tls(url)) as ws:
        await expect_echo(ws, "hello from python")
        await expect_echo(ws, bytes(range(256)) * 4)
        # Compressible: permessage-deflate shrinks it on the wire.
        await expect_echo(ws, "the same words again and again " * 2000)
        await ws.ping(b"py-ping")
        await ws.close(1000, "python done")


async def one_session(url, i, seconds):
    async with connect(url, compression=None, ssl=tls(url)) as ws:
        if seconds is None:
            await expect_echo(ws, f"session {i} first")
            await expect_echo(ws, f"session {i} second".encode())
        else:
            loop = asyncio.get_running_loop()
            end = loop.time() + seconds
            n = 0
            while loop.time() < end:
                await expect_echo(ws, f"session {i} message {n}")
                n += 1
                await asyncio.sleep(0.05)
        await ws.close()


async def run_many(url, n, seconds):
    await asyncio.gather(*(one_session(url, i, seconds) for i in range(n)))


def main():
    args = sys.argv[1:]
    if args[:1] == ["serve"] and len(args) == 3:
        asyncio.run(run_server(args[1], args[2]))
    elif args[:1] == ["client"] and len(args) == 2:
        asyncio.run(run_client(args[1]))
    elif args[:1] == ["many"] and len(args) in (3, 4):
        seconds = float(args[3]) if len(args) == 4 else None
        asyncio.run(run_many(args[1], int(args[2]), seconds))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
