#!/usr/bin/env python3
"""Writes the hand-made seed files under fuzz/seeds/<target>/, one small file per case.

Deterministic: run it again and `git diff` shows nothing. Each file is named by its content.
The control bytes in front of decoder streams are documented in
crates/wscope-proto/src/fuzzing.rs:

  frame_decoder, message  byte 0: bits 0-1 mask rule (0 required, 1 forbidden, 2 any),
                                  bit 2 report mode, bit 3 non-minimal lengths allowed,
                                  bit 4 a 1000-byte frame limit, bits 5-7 read size index
                                  into [1, 2, 3, 5, 7, 13, 64, 4096]
  message                 byte 1: bit 0 control chunks, bit 1 UTF-8 checked, bit 2 RSV1
                                  allowed (permessage-deflate), bit 3 a 300-byte message limit
  dissect                 byte 0 as for frame_decoder (only the mask rule and the read size
                                  count); its seeds are the frame_decoder and message streams
  utf8                    byte 0: reads alternate 1 + (b & 0xf) and 1 + 3 * (b >> 4) bytes
  partial_receive         byte 0: bits 0-2 buffer size index into [1, 2, 3, 7, 16, 64, 125,
                                  1000], bit 3 permessage-deflate, bit 4 limits of 1000-byte
                                  frames and 3000-byte messages, bits 5-7 read size index into
                                  [1, 2, 5, 13, 64, 300, 4096, all]; the stream is a server's
  direct_reads            byte 0: bits 0-2 read size index into [7, 100, 1000, 4096, 16384,
                                  40000, 65536, all]; then 3 bytes per client frame: fin (bit
                                  7), rsv (4-6) and opcode; length (b1 bit 7: (b1 & 0x7f) *
                                  2048 + b2, else b1 + b2 % 126); payload and key follow
  segments                byte 0: bits 0-1 segment size index into [1, 3, 64, 1460], bit 2
                                  inflate, bit 3 the server accepts permessage-deflate, bit 4
                                  digests, bits 5-7 frame_data chunk size (x5; 0: 4096); byte
                                  1: how many of the following bytes are the client's (masked
                                  frames), the rest are the server's
  connection              byte 0: bit 0 client (else server), bit 1 permessage-deflate, bit 2
                                  no context takeover, bit 3 limits of 1000-byte frames and
                                  3000-byte messages, bit 4 auto pong/close off, bits 5-7 read
                                  size index

Usage: python3 fuzz/make_seeds.py   (from anywhere)
"""

import pathlib
import struct
import zlib

SEEDS = pathlib.Path(__file__).resolve().parent / "seeds"

REQUIRED, FORBIDDEN, ANY = 0, 1, 2
REPORT, NON_MINIMAL_OK, LIMIT_1000 = 4, 8, 16
CONTROL_CHUNKS, UTF8, RSV1_OK, LIMIT_300 = 1, 2, 4, 8
KEY = bytes([0x37, 0xFA, 0x21, 0x3D])  # RFC 6455 section 5.7


def ctl(rule, *flags, split=0):
    value = rule | (split << 5)
    for f in flags:
        value |= f
    return bytes([value])


def mask(payload, key):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def frame(opcode, payload=b"", fin=True, key=None, rsv=0, form=None):
    """One frame; `form` forces a length form ("16" or "64") even when not minimal."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mbit = 0x80 if key is not None else 0
    if form is None:
        form = "7" if n <= 125 else "16" if n <= 0xFFFF else "64"
    if form == "7":
        head = bytes([b0, mbit | n])
    elif form == "16":
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if key is not None:
        return head + key + mask(payload, key)
    return head + payload


def close(code, reason=b""):
    return struct.pack(">H", code) + reason


RFC_UNMASKED_HELLO = bytes([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
RFC_MASKED_HELLO = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
RFC_FRAGMENTED = bytes([0x01, 0x03, 0x48, 0x65, 0x6C, 0x80, 0x02, 0x6C, 0x6F])
RFC_PING = bytes([0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
RFC_MASKED_PONG = bytes([0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])

FRAME_DECODER = {
    "rfc-masked-text-hello-client-1byte-reads": ctl(REQUIRED) + RFC_MASKED_HELLO,
    "rfc-unmasked-text-hello-server-13byte-reads": ctl(FORBIDDEN, split=5) + RFC_UNMASKED_HELLO,
    "rfc-fragmented-hel-lo-any-report": ctl(ANY, REPORT, split=2) + RFC_FRAGMENTED,
    "rfc-ping-then-masked-pong-any": ctl(ANY, split=1) + RFC_PING + RFC_MASKED_PONG,
    "binary-300-16bit-length-masked": ctl(REQUIRED, split=6) + frame(2, bytes(range(256)) + bytes(44), key=KEY),
    "binary-5-in-64bit-form-non-minimal-allowed": ctl(FORBIDDEN, NON_MINIMAL_OK, split=3) + frame(2, b"abcde", form="64"),
    "binary-5-in-16bit-form-non-minimal-reported": ctl(FORBIDDEN, REPORT, split=4) + frame(2, b"abcde", form="16"),
    "binary-5-in-16bit-form-non-minimal-refused": ctl(FORBIDDEN) + frame(2, b"abcde", form="16"),
    "binary-64k-declared-truncated": ctl(ANY, split=7) + frame(2, bytes(65536))[:40],
    "length-msb-set-report": ctl(ANY, REPORT) + bytes([0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1]),
    "length-2pow32-declared": ctl(ANY, split=2) + bytes([0x82, 0x7F, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3]),
    "unmasked-client-frame-report": ctl(REQUIRED, REPORT, split=1) + RFC_UNMASKED_HELLO,
    "unmasked-client-frame-enforce": ctl(REQUIRED, split=1) + RFC_UNMASKED_HELLO,
    "masked-server-frame-report": ctl(FORBIDDEN, REPORT, split=1) + RFC_MASKED_HELLO,
    "frame-over-1000-limit-report-three-violations": ctl(REQUIRED, REPORT, LIMIT_1000, split=3)
    + frame(2, bytes(1200), form="64"),
    "zero-length-frames-close-ping-pong": ctl(ANY, split=0) + frame(8) + frame(9) + frame(10, key=KEY),
    "reserved-opcodes-and-rsv-bits": ctl(ANY, REPORT, split=1) + frame(3, b"x", rsv=7) + frame(0xB, b"y", key=KEY),
}

MESSAGE = {
    "fragmented-text-ping-between-enforce": ctl(FORBIDDEN, split=1) + bytes([CONTROL_CHUNKS | UTF8])
    + frame(1, b"Hel", fin=False) + frame(9, b"are you there?") + frame(0, b"lo"),
    "fragmented-text-ping-between-no-control-chunks": ctl(REQUIRED, split=2) + bytes([UTF8])
    + frame(1, b"Hel", fin=False, key=KEY) + frame(9, b"ping", key=KEY) + frame(0, b"lo", key=KEY),
    "text-e-acute-split-across-frames": ctl(ANY, split=0) + bytes([CONTROL_CHUNKS | UTF8])
    + frame(1, "é".encode()[:1], fin=False) + frame(0, "é".encode()[1:]),
    "invalid-utf8-in-first-fragment-report": ctl(FORBIDDEN, REPORT, split=1) + bytes([CONTROL_CHUNKS | UTF8])
    + frame(1, b"ok\xf8x", fin=False) + frame(0, b"more"),
    "invalid-utf8-in-first-fragment-enforce": ctl(FORBIDDEN, split=3) + bytes([UTF8])
    + frame(1, b"ok\xf8x", fin=False) + frame(0, b"more"),
    "invalid-utf8-not-checked": ctl(FORBIDDEN) + bytes([CONTROL_CHUNKS]) + frame(1, b"\xc0\xaf"),
    "close-1000-bye-masked": ctl(REQUIRED, split=1) + bytes([CONTROL_CHUNKS | UTF8]) + frame(8, close(1000, b"bye"), key=KEY),
    "close-one-byte-payload-report": ctl(FORBIDDEN, REPORT) + bytes([CONTROL_CHUNKS | UTF8]) + frame(8, b"\x03"),
    "close-code-1005-on-wire-enforce": ctl(FORBIDDEN) + bytes([UTF8]) + frame(8, close(1005)),
    "close-reason-invalid-utf8-report": ctl(FORBIDDEN, REPORT, split=2) + bytes([CONTROL_CHUNKS]) + frame(8, close(1000, b"\xff")),
    "ping-126-bytes-control-too-long-report": ctl(FORBIDDEN, REPORT, split=6) + bytes([CONTROL_CHUNKS])
    + frame(9, bytes(126)) + frame(1, b"after"),
    "close-200-bytes-no-control-chunks-report": ctl(FORBIDDEN, REPORT, split=5) + bytes([0])
    + frame(8, close(1000, b"r" * 198)),
    "fragmented-ping-report": ctl(FORBIDDEN, REPORT) + bytes([CONTROL_CHUNKS]) + frame(9, b"p", fin=False),
    "unexpected-continuation-report": ctl(FORBIDDEN, REPORT, split=1) + bytes([CONTROL_CHUNKS | UTF8])
    + frame(0, b"orphan") + frame(1, b"x"),
    "expected-continuation-enforce": ctl(FORBIDDEN) + bytes([UTF8]) + frame(1, b"a", fin=False) + frame(1, b"b"),
    "expected-continuation-report": ctl(FORBIDDEN, REPORT, split=2) + bytes([CONTROL_CHUNKS | UTF8])
    + frame(1, b"a", fin=False) + frame(2, b"b") ,
    "rsv1-compressed-first-frame-deflate": ctl(FORBIDDEN, split=2) + bytes([CONTROL_CHUNKS | UTF8 | RSV1_OK])
    + frame(1, b"\xf2\x48\xcd", fin=False, rsv=4) + frame(0, b"\xc9\xc9\x07\x00"),
    "rsv1-on-continuation-report": ctl(FORBIDDEN, REPORT) + bytes([CONTROL_CHUNKS | RSV1_OK])
    + frame(2, b"a", fin=False) + frame(0, b"b", rsv=4),
    "rsv1-without-extension-report": ctl(FORBIDDEN, REPORT) + bytes([CONTROL_CHUNKS]) + frame(2, b"a", rsv=4),
    "message-over-300-limit-report": ctl(FORBIDDEN, REPORT, split=6) + bytes([CONTROL_CHUNKS | LIMIT_300])
    + frame(2, bytes(200), fin=False) + frame(0, bytes(200)),
    "reserved-data-opcode-3-report": ctl(ANY, REPORT, split=1) + bytes([CONTROL_CHUNKS | UTF8]) + frame(3, b"r"),
    "empty-text-binary-and-close": ctl(ANY) + bytes([CONTROL_CHUNKS | UTF8]) + frame(1) + frame(2, fin=False) + frame(0) + frame(8),
    "length-msb-set-after-text": ctl(ANY, REPORT, split=1) + bytes([UTF8])
    + frame(1, b"hi") + bytes([0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1]),
}

CLOSE_PAYLOAD = {
    "empty-no-status": b"",
    "one-byte": b"\x03",
    "1000-bye": close(1000, b"bye"),
    "1001-reason-123-bytes": close(1001, b"g" * 123),
    "1000-reason-124-bytes-too-long": close(1000, b"g" * 124),
    "1005-no-status-on-wire": close(1005),
    "1006-abnormal-on-wire": close(1006),
    "1015-tls-on-wire": close(1015),
    "999-below-range": close(999),
    "2999-unassigned": close(2999),
    "4999-private-with-utf8-reason": close(4999, "κόσμε".encode()),
    "5000-above-range": close(5000),
    "1000-reason-invalid-utf8": close(1000, b"\xc0\xaf"),
    "1000-reason-truncated-code-point": close(1000, "é".encode()[:1]),
    "1001-reason-emoji-40": close(1001, ("😀" * 30).encode()),
}

FRAMES_ITER = {
    "rfc-all-examples": RFC_UNMASKED_HELLO + RFC_MASKED_HELLO + RFC_FRAGMENTED + RFC_PING + RFC_MASKED_PONG
    + frame(2, bytes(range(256)))[:20],
    "masked-text-then-truncated-header": frame(1, b"ok", key=bytes([1, 2, 3, 4])) + b"\x81",
    "length-msb-set": bytes([0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]),
    "length-2pow32-truncated": bytes([0x82, 0x7F, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3]),
    "non-minimal-forms": frame(2, b"abc", form="16") + frame(2, b"def", form="64", key=KEY),
    "reserved-opcode-rsv-bits": frame(0xF, b"", rsv=7) + frame(4, b"z"),
}

UTF8_SEEDS = {
    "ascii-1byte-reads": b"\x00" + b"plain ascii text",
    "greek-kosme-2-4-reads": b"\x11" + "κόσμε".encode(),
    "mixed-with-emoji": b"\x52" + "Hello-µ@ßöäüàá-UTF-8!! 😀".encode(),
    "surrogate-ed-a0-80": b"\x01" + "κό".encode() + b"\xed\xa0\x80",
    "overlong-c0-af": b"\x00" + b"\xc0\xaf",
    "beyond-u10ffff-f4-90": b"\x00" + "κόσμε".encode() + b"\xf4\x90\x80\x80",
    "truncated-at-end-e2-82": b"\x0f" + b"euro \xe2\x82",
    "lone-continuation": b"\x03" + b"ab\x80cd",
    "five-byte-form-f8": b"\x00" + b"\xf8\x88\x80\x80\x80",
    "noncharacters-fffe-ffff": b"\x21" + "\ufffe\uffff".encode(),
    "max-code-point-f4-8f-bf-bf": b"\x00" + b"\xf4\x8f\xbf\xbf",
    "e2-28-a1-bad-second-byte": b"\x00" + b"\xe2\x28\xa1",
}

CLIENT, DEFLATE, NO_TAKEOVER, SMALL, NO_AUTO = 1, 2, 4, 8, 16


def conn_ctl(*flags, split=0):
    return ctl(0, *flags, split=split)


class Compressor:
    """permessage-deflate's sender: raw DEFLATE, sync flush, the 00 00 ff ff tail removed."""

    def __init__(self, takeover=True):
        self.takeover = takeover
        self.c = zlib.compressobj(6, zlib.DEFLATED, -15)

    def message(self, data):
        if not self.takeover:
            self.c = zlib.compressobj(6, zlib.DEFLATED, -15)
        out = self.c.compress(data) + self.c.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]


def compressed_exchange(takeover, key):
    """Two compressed texts sharing a context (or not), a ping, a compressed binary in two
    fragments, an uncompressed text, a close."""
    c = Compressor(takeover)
    one = c.message(b"hello hello hello, permessage-deflate")
    two = c.message(b"hello hello hello again")
    blob = c.message(bytes(range(64)) * 8)
    half = len(blob) // 2
    return (frame(1, one, rsv=4, key=key) + frame(1, two, rsv=4, key=key) + frame(9, b"still?", key=key)
            + frame(2, blob[:half], fin=False, rsv=4, key=key) + frame(0, blob[half:], key=key)
            + frame(1, b"plain", key=key) + frame(8, close(1000, b"done"), key=key))


CONNECTION = {
    "server-rfc-hello-ping-close": conn_ctl(split=1) + RFC_MASKED_HELLO
    + frame(9, b"ping", key=KEY) + frame(8, close(1000, b"bye"), key=KEY),
    "server-fragmented-text-ping-between-13byte-reads": conn_ctl(split=5)
    + frame(1, "κό".encode(), fin=False, key=KEY) + frame(9, b"p", key=KEY)
    + frame(0, "σμε".encode(), key=KEY) + frame(8, close(4000), key=KEY),
    "client-unmasked-input-pings-no-auto": conn_ctl(CLIENT, NO_AUTO, split=2) + RFC_PING
    + RFC_UNMASKED_HELLO + frame(8, b""),
    "server-deflate-context-takeover": conn_ctl(DEFLATE, split=3) + compressed_exchange(True, KEY),
    "server-deflate-no-context-takeover-1byte-reads": conn_ctl(DEFLATE, NO_TAKEOVER, split=0)
    + compressed_exchange(False, KEY),
    "client-deflate-context-takeover": conn_ctl(CLIENT, DEFLATE, split=6) + compressed_exchange(True, None),
    "server-deflate-bomb-over-3000-limit": conn_ctl(DEFLATE, SMALL, split=6)
    + frame(2, Compressor().message(bytes(100_000)), rsv=4, key=KEY),
    "server-deflate-corrupt-data": conn_ctl(DEFLATE, split=2) + frame(2, b"\xff\xfe\xfd\xfc", rsv=4, key=KEY),
    "server-deflate-invalid-utf8-inflated": conn_ctl(DEFLATE, split=4)
    + frame(1, Compressor().message(b"ok \xc0\xaf"), rsv=4, key=KEY),
    "server-deflate-invalid-utf8-then-bomb-1byte-reads": conn_ctl(DEFLATE, SMALL, split=0)
    + frame(1, Compressor().message(b"\xff" + bytes(100_000)), rsv=4, key=KEY),
    "server-rsv1-without-deflate": conn_ctl(split=1) + frame(1, b"x", rsv=4, key=KEY),
    "server-unmasked-frame": conn_ctl() + RFC_UNMASKED_HELLO,
    "client-masked-frame": conn_ctl(CLIENT) + RFC_MASKED_HELLO,
    "server-frame-over-1000-limit": conn_ctl(SMALL, split=6) + frame(2, bytes(1200), key=KEY),
    "server-message-over-3000-limit-in-fragments": conn_ctl(SMALL, split=7)
    + frame(2, bytes(900), fin=False, key=KEY) + frame(0, bytes(900), fin=False, key=KEY)
    + frame(0, bytes(900), fin=False, key=KEY) + frame(0, bytes(900), key=KEY),
    "server-close-invalid-code-then-data": conn_ctl(split=3) + frame(8, close(1005), key=KEY) + RFC_MASKED_HELLO,
    "server-data-after-close-ignored": conn_ctl(split=1) + frame(8, close(1001), key=KEY) + RFC_MASKED_HELLO,
}


def partial_ctl(buf, *flags, read=7):
    value = buf | (read << 5)
    for f in flags:
        value |= f
    return bytes([value])


P_DEFLATE, P_SMALL = 8, 16

PARTIAL_RECEIVE = {
    "text-binary-ping-close-buf7-reads13": partial_ctl(3, read=3) + frame(1, "κόσμε, hello".encode())
    + frame(2, bytes(range(40))) + frame(9, b"are you there") + frame(8, close(1000, b"bye")),
    "big-binary-buf64-reads300": partial_ctl(5, read=5) + frame(2, bytes(range(256)) * 12),
    "fragmented-text-ping-between-buf1": partial_ctl(0, read=4) + frame(1, b"Hel", fin=False)
    + frame(9, b"p") + frame(0, b"lo, ", fin=False) + frame(0, "wörld".encode()),
    "empty-frames-and-close-without-status-buf2": partial_ctl(1, read=0) + frame(1) + frame(2, fin=False)
    + frame(0) + frame(10) + frame(8),
    "close-reason-longer-than-buffer-buf16": partial_ctl(4, read=2) + frame(8, close(4000, b"r" * 100)),
    "deflate-bigger-inflated-than-buffer-buf16": partial_ctl(4, P_DEFLATE, read=7)
    + frame(1, Compressor().message(b"a fairly compressible sentence, repeated. " * 100), rsv=4),
    "deflate-context-takeover-fragmented-buf125": partial_ctl(6, P_DEFLATE, read=4) + compressed_exchange(True, None),
    "deflate-bomb-small-limits-buf1000": partial_ctl(7, P_DEFLATE, P_SMALL, read=6)
    + frame(2, Compressor().message(bytes(100_000)), rsv=4),
    "invalid-utf8-text-buf3": partial_ctl(2, read=1) + frame(1, b"ok \xc0\xaf more"),
    "masked-server-frame-buf7": partial_ctl(3) + RFC_MASKED_HELLO,
    "frame-over-1000-limit-buf64": partial_ctl(5, P_SMALL, read=5) + frame(2, bytes(1200)),
}


def spec(opcode, fin=True, big=None, small=0, rsv=0):
    """One direct_reads frame: `big` KiB-ish units of 2048 bytes (+ small), or `small` bytes."""
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    if big is not None:
        return bytes([b0, 0x80 | big, small])
    return bytes([b0, small, 0])


DIRECT_READS = {
    "one-100k-binary-reads-of-4096": bytes([3]) + spec(2, big=50, small=7),
    "fragmented-text-big-parts-ping-between-reads-40000": bytes([5]) + spec(1, fin=False, big=20)
    + spec(9, small=5) + spec(0, fin=False, big=40, small=3) + spec(10) + spec(0, big=17, small=200),
    "small-and-big-frames-mixed-reads-of-1000": bytes([2]) + spec(1, small=10) + spec(2, big=16)
    + spec(2, small=0) + spec(2, big=127, small=255) + spec(1, small=125),
    "big-frame-then-close-reads-of-7": bytes([0]) + spec(2, big=17) + spec(8, small=0),
    "big-frame-reserved-opcode-reads-all": bytes([7]) + spec(2, big=30) + spec(3, big=20),
    "big-frame-rsv-set-reads-of-65536": bytes([6]) + spec(2, big=18) + spec(2, big=18, rsv=4),
    "continuation-without-start-reads-of-100": bytes([1]) + spec(0, big=16),
    "big-control-frame-refused-reads-of-16384": bytes([4]) + spec(9, big=16),
}


def segments_seed(seg, client, server, *flags, chunk=0):
    value = seg | (chunk << 5)
    for f in flags:
        value |= f
    assert len(client) <= 255
    return bytes([value, len(client)]) + client + server


S_INFLATE, S_DEFLATE, S_DIGEST = 4, 8, 16


def deflated_server_messages():
    c = Compressor()
    one = c.message(b"hello hello hello, compressed " * 4)
    two = c.message(bytes(range(64)) * 4)
    half = len(two) // 2
    return (frame(1, one, rsv=4) + frame(9, b"ping") + frame(2, two[:half], fin=False, rsv=4)
            + frame(0, two[half:]) + frame(1, b"plain") + frame(8, close(1000, b"done")))


SEGMENTS = {
    "plain-text-binary-close-1byte-segments": segments_seed(
        0, frame(1, b"hi there", key=KEY) + frame(8, close(1000), key=KEY),
        frame(1, "κόσμε".encode()) + frame(2, bytes(300)) + frame(8, close(1000, b"bye")), S_DIGEST, chunk=2),
    "deflate-inflated-3byte-segments": segments_seed(
        1, frame(1, Compressor().message(b"client says hi hi hi"), rsv=4, key=KEY),
        deflated_server_messages(), S_INFLATE, S_DEFLATE, S_DIGEST, chunk=1),
    "deflate-not-inflated-64byte-segments": segments_seed(
        2, b"", deflated_server_messages(), S_DEFLATE, chunk=3),
    "deflate-corrupt-then-valid-1byte-segments": segments_seed(
        0, b"", frame(1, Compressor().message(b"valid start " * 8) + b"\xff" * 20, rsv=4)
        + frame(1, b"after"), S_INFLATE, S_DEFLATE, S_DIGEST),
    "fragmented-with-control-between-1460-segments": segments_seed(
        3, frame(2, b"abc", fin=False, key=KEY) + frame(9, b"p", key=KEY) + frame(0, b"def", key=KEY),
        frame(10, b"p") + frame(1, b"x" * 2000), S_DIGEST, chunk=7),
    "protocol-errors-unmasked-client-reserved-opcode": segments_seed(
        0, RFC_UNMASKED_HELLO, frame(3, b"r") + RFC_MASKED_HELLO + frame(9, bytes(130))),
    "invalid-utf8-and-bad-close-3byte-segments": segments_seed(
        1, frame(1, b"ok \xc0\xaf", key=KEY), frame(8, close(1005)) + frame(1, b"after close")),
    "inflate-bomb-capped-64byte-segments": segments_seed(
        2, b"", frame(2, Compressor().message(bytes(1 << 18)), rsv=4), S_INFLATE, S_DEFLATE, S_DIGEST),
}


# The dissector reads the same streams: the frame decoder's as they are, the message layer's
# without their second control byte.
DISSECT = {**{name: data[:1] + data[2:] for name, data in MESSAGE.items()}, **FRAME_DECODER}


# deflate_diff: byte 0 bit 0 client_no_context_takeover, bit 1 the sender resets its context,
# bits 2-3 the cap index into [64, 1000, 100000, 16 MiB], bits 5-7 the read sizes; then per
# message: flags (bit 0 text, bit 1 compressed, bits 2-3 fragments - 1, bit 4 corrupt, bit 5
# zeros), a length byte, the payload (none for zeros: len x 1024 zero bytes), and with bit 4
# (position, xor). The frames are built by the body (wscope_proto::fuzzing::DeflateScript).
def diff_msg(flags, payload=b"", zeros=None, corrupt=None):
    out = bytes([flags | 0x20, zeros]) if zeros is not None else bytes([flags, len(payload)]) + payload
    return out + (bytes(corrupt) if corrupt else b"")


DEFLATE_DIFF = {
    "takeover-text-binary-fragments": bytes([0x2c]) + diff_msg(3, b"hello hello hello")
    + diff_msg(0x0a, b"binary binary binary binary") + diff_msg(1, b"plain text")
    + diff_msg(3, b"hello hello again"),
    "compressed-text-invalid-utf8": bytes([0x4c]) + diff_msg(3, b"fine")
    + diff_msg(7, b"caf\xc3 au lait caf\xc3"),
    "inflated-over-the-cap": bytes([0x64]) + diff_msg(3, b"small") + diff_msg(3, zeros=100),
    "corrupt-compressed-data": bytes([0x8c]) + diff_msg(2, b"first message")
    + diff_msg(0x13, b"the quick brown fox jumps over the lazy dog", corrupt=(3, 0xa7)),
    "no-takeover-agreed-sender-keeps-context": bytes([0xad])
    + diff_msg(3, b"repeat repeat repeat repeat") * 2,
    "no-takeover-both-empty-and-uncompressed": bytes([0xeb]) + diff_msg(3, b"")
    + diff_msg(0x0e, b"abc") + diff_msg(0, b"\xff\xfe") + diff_msg(3, b"x" * 200),
}


def main():
    for target, seeds in {
        "dissect": DISSECT,
        "frame_decoder": FRAME_DECODER,
        "message": MESSAGE,
        "close_payload": CLOSE_PAYLOAD,
        "frames_iter": FRAMES_ITER,
        "utf8": UTF8_SEEDS,
        "connection": CONNECTION,
        "deflate_diff": DEFLATE_DIFF,
        "partial_receive": PARTIAL_RECEIVE,
        "direct_reads": DIRECT_READS,
        "segments": SEGMENTS,
    }.items():
        folder = SEEDS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
