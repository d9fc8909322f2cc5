#!/usr/bin/env python3
"""Hostile WebSocket servers for the C API's deadline tests (examples/c/run.sh).

    hostile_server.py MODE

Listens on 127.0.0.1 on a port the kernel picks, prints it on the first line of stdout, and
serves every connection on a thread of its own until killed. MODE:

  silent      accepts TCP and never answers (no TLS, no HTTP upgrade): websock_open must
              give up within its time_out.
  flood       answers the upgrade, then sends empty pings as fast as the client takes them
              and never reads again: pongs pile up in the client, which must not block on
              them (websock_recv keeps its timeout, websock_close its bound).
  flood-read  as flood, but reads (and drops) what the client sends: the pongs flow, and
              websock_recv must still return by its timeout although a ping always waits.
"""

import base64
import hashlib
import socket
import sys
import threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PINGS = b"\x89\x00" * 32768  # empty unmasked pings (RFC 6455 section 5.5.2), 64 KiB


def read_head(conn):
    """Reads the request head; returns its bytes (None when the client went away)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
        if len(data) > 65536:
            return None
    return data


def upgrade(conn):
    """Answers a WebSocket upgrade with 101 (RFC 6455 section 4.2.2); False on failure."""
    head = read_head(conn)
    if head is None:
        return False
    key = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    if key is None:
        return False
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    return True


def drain(conn):
    """Reads and drops everything until the client goes away."""
    try:
        while conn.recv(65536):
            pass
    except OSError:
        pass


def serve(conn, mode):
    try:
        if mode == "silent":
            # Hold the connection open without a byte of answer until the client leaves.
            drain(conn)
            return
        if not upgrade(conn):
            return
        if mode == "flood-read":
            threading.Thread(target=drain, args=(conn,), daemon=True).start()
        while True:
            conn.sendall(PINGS)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in ("silent", "flood", "flood-read"):
        sys.exit(__doc__)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn, mode), daemon=True).start()


if __name__ == "__main__":
    main()
