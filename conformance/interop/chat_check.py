#!/usr/bin/env python3
"""Two-client check of crates/wscope/examples/axum_chat.rs with PyPI `websockets`.

  chat_check.py ws://127.0.0.1:PORT

Two clients join room "alpha", one joins room "beta" (subprotocol "chat",
permessage-deflate offered as websockets does by default). A message sent in
alpha reaches both alpha clients with the sender's number in front and never
reaches beta; the server chose "chat" and agreed to permessage-deflate.
Prints "ok NAME" / "FAIL NAME: why" and "chat-check: N passed, M failed";
exit 1 on any failure.
"""

import asyncio
import sys

from websockets.asyncio.client import connect

TIMEOUT = 10
results = []


def check(name, cond, why=""):
    results.append(cond)
    print(f"ok {name}" if cond else f"FAIL {name}: {why}", flush=True)


async def until(ws, predicate):
    """The first message that satisfies predicate (joins and others are skipped)."""
    while True:
        msg = await asyncio.wait_for(ws.recv(), TIMEOUT)
        if predicate(msg):
            return msg


async def main(base):
    a = await connect(f"{base}/ws/alpha", subprotocols=["chat"])
    b = await connect(f"{base}/ws/alpha", subprotocols=["chat"])
    c = await connect(f"{base}/ws/beta", subprotocols=["chat"])
    check("axum-chat subprotocol chat chosen", a.subprotocol == "chat", repr(a.subprotocol))
    ext = a.response.headers.get("Sec-WebSocket-Extensions", "")
    check("axum-chat permessage-deflate agreed", ext.startswith("permessage-deflate"), repr(ext))
    text = "hello room ✓ " * 50
    await a.send(text)
    for name, ws in (("sender", a), ("other member", b)):
        try:
            got = await until(ws, lambda m: m.endswith(text))
            check(f"axum-chat broadcast reaches the {name}", "@alpha: " in got, got[:60])
        except asyncio.TimeoutError:
            check(f"axum-chat broadcast reaches the {name}", False, "nothing within 10 s")
    # Everything beta received up to its own message, which was sent after alpha's.
    await c.send("in beta")
    seen = []
    try:
        await until(c, lambda m: seen.append(m) or m.endswith("in beta"))
        leaked = [m for m in seen if text in m]
        check("axum-chat rooms are separate", not leaked, f"beta got {leaked[:1]!r}")
    except asyncio.TimeoutError:
        check("axum-chat rooms are separate", False, "beta's own message did not come back")
    for ws in (a, b, c):
        await ws.close()
    passed = sum(results)
    failed = len(results) - passed
    print(f"chat-check: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1].rstrip("/"))))
