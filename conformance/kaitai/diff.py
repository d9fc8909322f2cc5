#!/usr/bin/env python3
"""Differential test: `wscope parse --json` against the seed's Kaitai Struct parser.

Usage: diff.py KAITAI_MODULE_PY WSCOPE_BINARY [--cases N] [--seed S] [--keep DIR]

* Agreement cases (where the Kaitai spec is right: lengths written in the 7- or 16-bit
  form, text frames unmasked and each valid UTF-8 on its own, no control frame inside a
  fragmented message): every frame's fin, rsv, opcode, masked, mask_key, payload_len and
  payload (raw, as on the wire; for masked frames also unmasked here with the key) and every
  message (opcode, joined payload, bytes consumed) must be equal. The input is a stream of
  messages; Kaitai parses one message per call, so it is re-run from the stream position.
* Difference cases (where the spec is wrong): Kaitai's known wrong answer is asserted, so a
  change in the seed shows up, and so is ours, the right one. Each is documented in
  docs/kaitai-differences.md under the same name.

Exits non-zero on any mismatch; prints "N passed, M failed" at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

# ----------------------------------------------------------------------------- frames


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    form: str | None = None,
) -> bytes:
    """One frame. `form`: "7", "16" or "64" (default: minimal)."""
    n = len(payload)
    if form is None:
        form = "7" if n <= 125 else "16" if n <= 0xFFFF else "64"
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask is not None else 0
    if form == "7":
        assert n <= 125
        head = bytes([b0, mbit | n])
    elif form == "16":
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask is not None:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


def unmask(data: bytes, key: int | None) -> bytes:
    if key is None:
        return data
    k = key.to_bytes(4, "big")
    return bytes(b ^ k[i % 4] for i, b in enumerate(data))


# ----------------------------------------------------------------------------- the two parsers


def load_kaitai(path: str):
    spec = importlib.util.spec_from_file_location("websocket_seed", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class KaitaiRun:
    """Kaitai's view of a stream: messages parsed one after another until EOF or an error."""

    def __init__(self, ks, data: bytes):
        from kaitaistruct import BytesIO, KaitaiStream

        self.messages: list[dict] = []
        self.error: BaseException | None = None
        io = KaitaiStream(BytesIO(data))
        while not io.is_eof():
            start = io.pos()
            try:
                root = ks.Websocket(io)
            except Exception as e:  # noqa: BLE001 - the errors are what we compare
                self.error = e
                self.error_at = start
                break
            frames = [root.initial_frame] + list(getattr(root, "trailing_frames", []))
            out = []
            for f in frames:
                h = f.header
                if hasattr(f, "payload_text"):
                    raw = f.payload_text.encode("utf-8")
                else:
                    raw = f.payload_bytes
                key = h.mask_key if h.is_masked else None
                out.append(
                    {
                        "fin": h.finished,
                        "rsv": h.reserved,
                        "opcode": h.opcode.value,
                        "masked": h.is_masked,
                        "mask_key": key,
                        "payload_len": h.len_payload,
                        "raw_payload": raw.hex(),
                        "payload": unmask(raw, key).hex(),
                    }
                )
            self.messages.append(
                {
                    "offset": start,
                    "end": io.pos(),
                    "opcode": out[0]["opcode"],
                    "frames": out,
                    "payload": "".join(f["payload"] for f in out),
                }
            )


def wscope_parse(binary: str, path: str) -> list[dict]:
    res = subprocess.run(
        [binary, "parse", "--json", path], capture_output=True, text=True, timeout=60
    )
    if res.returncode != 0:
        raise AssertionError(f"wscope parse exited {res.returncode}: {res.stderr}")
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


FRAME_FIELDS = ("fin", "rsv", "opcode", "masked", "mask_key", "payload_len", "raw_payload", "payload")


def ours_by_type(records: list[dict], kind: str) -> list[dict]:
    return [r for r in records if r["type"] == kind]


# ----------------------------------------------------------------------------- generators


def rand_payload(rng: random.Random, n: int, text: bool) -> bytes:
    if not text:
        return bytes(rng.getrandbits(8) for _ in range(n))
    alphabet = "abcxyz 0123456789é€😀ß\n"
    out = ""
    while len(out.encode()) < n:
        out += rng.choice(alphabet)
    b = out.encode()
    while len(b) > n:  # trim to n bytes on a character boundary
        out = out[:-1]
        b = out.encode()
    return b


def rand_len(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.5:
        return rng.randrange(0, 126)
    if r < 0.8:
        return rng.randrange(126, 2000)
    return rng.randrange(2000, 65536)


def gen_message(rng: random.Random) -> bytes:
    """A message within Kaitai's correct domain."""
    kind = rng.random()
    if kind < 0.25:  # a control frame on its own
        op = rng.choice([8, 9, 10])
        n = rng.randrange(0, 126)
        if op == 8 and n >= 2:
            payload = struct.pack(">H", rng.choice([1000, 1001, 1003, 3000, 4999])) + rand_payload(rng, n - 2, True)
        else:
            payload = rand_payload(rng, n, False)
        mask = rng.randbytes(4) if rng.random() < 0.5 else None
        return frame(op, payload, mask=mask, form=rng.choice(["7", "16"]) if n <= 125 and rng.random() < 0.1 else None)
    text = kind < 0.6
    op = 1 if text else 2
    if not text and rng.random() < 0.1:
        op = rng.choice([3, 4, 5, 6, 7])  # reserved data opcodes: structure only
    nfrag = 1 if rng.random() < 0.5 else rng.randrange(2, 5)
    out = b""
    for i in range(nfrag):
        payload = rand_payload(rng, rand_len(rng) if nfrag == 1 else rng.randrange(0, 300), text)
        # Text frames must be unmasked for Kaitai (it decodes the masked bytes).
        mask = None if text or rng.random() < 0.5 else rng.randbytes(4)
        rsv = rng.choice([0, 0, 0, 4, 2, 1, 7])
        form = "16" if len(payload) <= 125 and rng.random() < 0.05 else None
        out += frame(op if i == 0 else 0, payload, fin=i == nfrag - 1, rsv=rsv, mask=mask, form=form)
    return out


# ----------------------------------------------------------------------------- checks


class Checker:
    def __init__(self, ks, binary: str, tmp: str, keep: str | None):
        self.ks = ks
        self.binary = binary
        self.tmp = tmp
        self.keep = keep
        self.passed = 0
        self.failed = 0
        self.frames_compared = 0
        self.messages_compared = 0
        self.n = 0

    def run_both(self, name: str, data: bytes):
        self.n += 1
        path = os.path.join(self.tmp, f"{self.n:04d}-{name}.bin")
        with open(path, "wb") as f:
            f.write(data)
        if self.keep:
            os.makedirs(self.keep, exist_ok=True)
            with open(os.path.join(self.keep, os.path.basename(path)), "wb") as f:
                f.write(data)
        return KaitaiRun(self.ks, data), wscope_parse(self.binary, path)

    def result(self, name: str, problems: list[str]) -> None:
        if problems:
            self.failed += 1
            print(f"FAIL {name}")
            for p in problems[:10]:
                print(f"     {p}")
        else:
            self.passed += 1

    def agree(self, name: str, data: bytes) -> None:
        k, ours = self.run_both(name, data)
        problems = []
        if k.error is not None:
            problems.append(f"kaitai raised {k.error!r} at {k.error_at} on an in-domain case")
        o_frames = ours_by_type(ours, "frame")
        o_msgs = ours_by_type(ours, "message")
        o_anoms = [a for a in ours_by_type(ours, "anomaly") if a["kind"] in ("truncated", "length_msb_set")]
        if o_anoms:
            problems.append(f"wscope reported {o_anoms}")
        k_frames = [f for m in k.messages for f in m["frames"]]
        if len(k_frames) != len(o_frames):
            problems.append(f"frame count kaitai {len(k_frames)} vs wscope {len(o_frames)}")
        for i, (kf, of) in enumerate(zip(k_frames, o_frames)):
            for field in FRAME_FIELDS:
                if kf[field] != of[field]:
                    problems.append(f"frame {i} {field}: kaitai {str(kf[field])[:60]} vs wscope {str(of[field])[:60]}")
            self.frames_compared += 1
        if len(k.messages) != len(o_msgs):
            problems.append(f"message count kaitai {len(k.messages)} vs wscope {len(o_msgs)}")
        for i, (km, om) in enumerate(zip(k.messages, o_msgs)):
            if km["offset"] != om["offset"]:
                problems.append(f"message {i} offset: kaitai {km['offset']} vs wscope {om['offset']}")
            if km["opcode"] != om["opcode"]:
                problems.append(f"message {i} opcode: kaitai {km['opcode']} vs wscope {om['opcode']}")
            if km["payload"] != om["payload"]:
                problems.append(f"message {i} payload differs")
            if len(km["frames"]) != om["frames"]:
                problems.append(f"message {i} frames: kaitai {len(km['frames'])} vs wscope {om['frames']}")
            if not om["complete"]:
                problems.append(f"message {i} not complete in wscope")
            self.messages_compared += 1
        # The next message starts where Kaitai stopped.
        ends = [m["end"] for m in k.messages]
        starts = [m["offset"] for m in o_msgs[1:]] + [len(data)]
        if ends != starts[: len(ends)]:
            problems.append(f"message boundaries: kaitai ends {ends[:5]} vs wscope starts {starts[:5]}")
        self.result(name, problems)

    def differ(self, name: str, data: bytes, check) -> None:
        """A case outside Kaitai's correct domain: `check(k, ours)` returns problems."""
        k, ours = self.run_both(name, data)
        try:
            problems = check(k, ours)
        except (AssertionError, KeyError, IndexError, TypeError) as e:
            problems = [f"check raised {e!r}"]
        self.result(name, problems)


def expect(cond: bool, what: str, problems: list[str]) -> None:
    if not cond:
        problems.append(what)


# ----------------------------------------------------------------------------- difference cases


def difference_cases(c: Checker) -> None:
    big = bytes((i * 7) & 0xFF for i in range(70000))

    # D1: 64-bit length, unmasked.
    data = frame(2, big, form="64") + frame(9, b"hi")

    def d1(k, ours):
        p = []
        f = ours_by_type(ours, "frame")
        expect(len(f) == 2, f"wscope frames {len(f)}", p)
        expect(f[0]["payload_len"] == 70000 and f[0]["header_len"] == 10, "wscope 64-bit length", p)
        expect(f[0]["payload"] == big.hex(), "wscope payload", p)
        expect(f[1]["offset"] == 70010 and f[1]["opcode"] == 9, "wscope frame after the big one", p)
        m = k.messages[0]
        expect(m["frames"][0]["payload_len"] == 0 and m["end"] == 6, f"kaitai: length 0, 6 bytes consumed (got {m['frames'][0]['payload_len']}, {m['end']})", p)
        return p

    c.differ("D1-64bit-length", data, d1)

    # D1b: 64-bit length, masked: the low 4 length bytes become Kaitai's mask key.
    key = bytes.fromhex("a1b2c3d4")
    data = frame(2, big, form="64", mask=key)

    def d1b(k, ours):
        p = []
        f = ours_by_type(ours, "frame")[0]
        expect(f["payload_len"] == 70000 and f["mask_key"] == 0xA1B2C3D4, "wscope masked 64-bit frame", p)
        expect(f["payload"] == big.hex(), "wscope unmasked payload", p)
        kf = k.messages[0]["frames"][0]
        expect(kf["payload_len"] == 0 and kf["mask_key"] == 70000, f"kaitai: length 0, mask_key 70000 (got {kf['payload_len']}, {kf['mask_key']})", p)
        return p

    c.differ("D1b-64bit-length-masked", data, d1b)

    # D1c: a length that only fits 64 bits is not needed to break Kaitai: 200 bytes in the
    # (non-minimal) 64-bit form.
    small = b"x" * 200
    data = frame(2, small, form="64")

    def d1c(k, ours):
        p = []
        f = ours_by_type(ours, "frame")
        expect(f[0]["payload_len"] == 200, "wscope length 200", p)
        expect(any(a["kind"] == "non_minimal_length" for a in ours_by_type(ours, "anomaly")), "wscope reports non-minimal length", p)
        expect(k.messages[0]["frames"][0]["payload_len"] == 0, "kaitai length 0", p)
        return p

    c.differ("D1c-64bit-form-small", data, d1c)

    # D2: masked text, RFC 6455 section 5.7 example.
    data = bytes.fromhex("818537fa213d7f9f4d5158")

    def d2(k, ours):
        p = []
        f = ours_by_type(ours, "frame")[0]
        expect(bytes.fromhex(f["payload"]) == b"Hello", "wscope unmasks to Hello", p)
        m = ours_by_type(ours, "message")[0]
        expect(m["utf8_valid"] is True, "wscope: valid UTF-8", p)
        expect(isinstance(k.error, UnicodeDecodeError), f"kaitai raises UnicodeDecodeError (got {k.error!r})", p)
        return p

    c.differ("D2-masked-text", data, d2)

    # D2b: masked binary: Kaitai keeps the masked bytes (right only as "raw").
    data = bytes.fromhex("828537fa213d7f9f4d5158")

    def d2b(k, ours):
        p = []
        f = ours_by_type(ours, "frame")[0]
        kf = k.messages[0]["frames"][0]
        expect(bytes.fromhex(f["payload"]) == b"Hello", "wscope unmasks", p)
        expect(kf["raw_payload"] == "7f9f4d5158" and f["raw_payload"] == kf["raw_payload"], "raw payloads equal", p)
        return p

    c.differ("D2b-masked-binary", data, d2b)

    # D3: UTF-8 code point split across fragments (legal).
    data = frame(1, "h€".encode()[:2], fin=False) + frame(0, "h€".encode()[2:])

    def d3(k, ours):
        p = []
        m = ours_by_type(ours, "message")
        expect(len(m) == 1 and m[0]["utf8_valid"] is True and bytes.fromhex(m[0]["payload"]) == "h€".encode(), "wscope joins valid text", p)
        expect(not ours_by_type(ours, "anomaly"), "wscope: no anomaly", p)
        expect(isinstance(k.error, UnicodeDecodeError), f"kaitai raises UnicodeDecodeError (got {k.error!r})", p)
        return p

    c.differ("D3-utf8-split", data, d3)

    # D3b: invalid UTF-8 (a surrogate) in a text frame: Kaitai raises, we report.
    data = frame(1, b"\xed\xa0\x80")

    def d3b(k, ours):
        p = []
        m = ours_by_type(ours, "message")
        expect(m and m[0]["utf8_valid"] is False, "wscope: message invalid UTF-8", p)
        expect(any(a["kind"] == "invalid_utf8" for a in ours_by_type(ours, "anomaly")), "wscope: invalid_utf8 anomaly", p)
        expect(isinstance(k.error, UnicodeDecodeError), "kaitai raises", p)
        return p

    c.differ("D3b-invalid-utf8", data, d3b)

    # D4: ping between fragments.
    data = frame(1, b"ab", fin=False) + frame(9, b"") + frame(0, b"cd")

    def d4(k, ours):
        p = []
        m = ours_by_type(ours, "message")
        expect([x["opcode"] for x in m] == [9, 1], f"wscope messages ping then text (got {[x['opcode'] for x in m]})", p)
        expect(m[1]["frames"] == 2 and bytes.fromhex(m[1]["payload"]) == b"abcd" and m[1]["complete"], "wscope text message whole", p)
        expect(not ours_by_type(ours, "anomaly"), "wscope: no anomaly", p)
        km = k.messages[0]
        expect(km["end"] == 6 and len(km["frames"]) == 2 and km["frames"][1]["opcode"] == 9, f"kaitai: message ends at the ping (end {km['end']})", p)
        # Kaitai then takes the real final fragment as a new message starting with a continuation.
        expect(len(k.messages) == 2 and k.messages[1]["opcode"] == 0, "kaitai: a continuation as a message", p)
        return p

    c.differ("D4-ping-between-fragments", data, d4)

    # D5: a stream of two messages: Kaitai's root parses only the first.
    data = frame(1, b"one") + frame(2, b"two")

    def d5(k, ours):
        p = []
        # One call of the root parser stops after the first message.
        from kaitaistruct import BytesIO, KaitaiStream

        io = KaitaiStream(BytesIO(data))
        c.ks.Websocket(io)
        expect(io.pos() == 5, f"kaitai root consumed {io.pos()} of {len(data)}", p)
        expect(len(ours_by_type(ours, "message")) == 2, "wscope: two messages", p)
        return p

    c.differ("D5-only-first-message", data, d5)

    # D6: no validation in Kaitai; we report the same structure plus anomalies.
    data = frame(3, b"r") + frame(0, b"c") + frame(9, b"x" * 130, form="16") + frame(1, b"a", rsv=4)

    def d6(k, ours):
        p = []
        kinds = {a["kind"] for a in ours_by_type(ours, "anomaly")}
        for want in ("reserved_opcode", "unexpected_continuation", "control_frame_size_exceeded", "reserved_bits_set"):
            expect(want in kinds, f"wscope reports {want} (got {sorted(kinds)})", p)
        expect(k.error is None and len(k.messages) == 4, "kaitai parses all four without complaint", p)
        kf = [m["frames"][0] for m in k.messages]
        of = ours_by_type(ours, "frame")
        expect([f["opcode"] for f in kf] == [f["opcode"] for f in of], "same opcodes", p)
        return p

    c.differ("D6-no-validation", data, d6)

    # D7: close payload: Kaitai keeps bytes; we also give status and reason.
    data = frame(8, b"\x03\xe8bye")

    def d7(k, ours):
        p = []
        f = ours_by_type(ours, "frame")[0]
        expect(f["close_status"] == 1000 and f["close_reason"] == "bye", "wscope close status/reason", p)
        expect(k.messages[0]["frames"][0]["raw_payload"] == "03e8627965", "kaitai raw close payload", p)
        return p

    c.differ("D7-close-payload", data, d7)

    # D8: truncated input.
    data = frame(1, b"whole") + frame(2, b"cut short")[:6]

    def d8(k, ours):
        p = []
        expect(isinstance(k.error, EOFError), f"kaitai raises EOFError (got {k.error!r})", p)
        expect(len(ours_by_type(ours, "frame")) == 1, "wscope keeps the whole frame", p)
        a = [x for x in ours_by_type(ours, "anomaly") if x["kind"] == "truncated"]
        expect(len(a) == 1 and a[0]["offset"] == 7 and a[0]["have"] == 6 and a[0]["need"] == 11, f"wscope truncation at 7: {a}", p)
        return p

    c.differ("D8-truncated", data, d8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kaitai_module")
    ap.add_argument("wscope")
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--seed", type=int, default=6455)
    ap.add_argument("--keep", help="also write every generated input file here")
    args = ap.parse_args()

    ks = load_kaitai(args.kaitai_module)
    with tempfile.TemporaryDirectory(prefix="wscope-kaitai-") as tmp:
        c = Checker(ks, args.wscope, tmp, args.keep)
        # Fixed agreement cases: the RFC 6455 section 5.7 examples inside Kaitai's domain.
        c.agree("rfc-unmasked-hello", bytes.fromhex("810548656c6c6f"))
        c.agree("rfc-fragmented-hello", bytes.fromhex("010348656c80026c6f"))
        c.agree("rfc-ping", bytes.fromhex("890548656c6c6f"))
        c.agree("rfc-masked-pong", bytes.fromhex("8a8537fa213d7f9f4d5158"))
        c.agree("rfc-256-bytes", frame(2, bytes(256)))
        c.agree("len-65535", frame(2, bytes(range(256)) * 255 + bytes(range(255))))
        c.agree("empty-frames", frame(1, b"") + frame(2, b"") + frame(8, b""))
        rng = random.Random(args.seed)
        for i in range(args.cases):
            data = b"".join(gen_message(rng) for _ in range(rng.randrange(1, 5)))
            c.agree(f"random-{i}", data)
        agreements = c.passed
        difference_cases(c)
        print(
            f"kaitai differential: {agreements} agreement case(s) "
            f"({c.frames_compared} frames, {c.messages_compared} messages compared field by field), "
            f"{c.passed - agreements} documented difference case(s) checked"
        )
        print(f"{c.passed} passed, {c.failed} failed")
        sys.exit(1 if c.failed else 0)


if __name__ == "__main__":
    main()
