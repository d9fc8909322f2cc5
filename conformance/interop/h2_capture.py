"""Passive WebSocket over HTTP/2 (RFC 8441): Node's own `http2` server and client (extended
CONNECT, WebSocket framing by h2_exchange.js) talk on loopback, cleartext (h2c, prior
knowledge) and over TLS (ALPN h2, key log from `node --tls-keylog`), three WebSocket streams on
one HTTP/2 connection, while tcpdump records. `wscope inspect --events - --digest` (with
`--keylog` for TLS) must report, per stream:

- one `established` event with `http2: true`, its `stream_id`, `uri` = the stream's `:path`,
  `host` = `:authority`, a uid of its own;
- per direction and in order, exactly the messages the peers sent (opcode, length, SHA-256);
- one `connection_end`; and no anomaly anywhere.

tshark decodes HTTP/2 but not WebSocket inside it (RFC 8441 is not in its WebSocket
dissector), so there is no tshark comparison. Captures are taken and checked for
completeness as tls_capture.py does. Prints one line per check and "N passed, N failed";
exit status 1 on failure.

Usage: h2_capture.py WSCOPE_BINARY TCPDUMP WORKDIR
"""

import json
import os
import subprocess
import sys

import deflate_capture as dc
import tls_capture as tc

HERE = os.path.dirname(os.path.abspath(__file__))
check = dc.check


def exchange(port, mode, cert, key, keys):
    args = ["node"]
    if mode == "tls":
        args.append(f"--tls-keylog={keys}")
    args += [os.path.join(HERE, "h2_exchange.js"), str(port), mode]
    if mode == "tls":
        args += [cert, key]
    out = subprocess.run(args, cwd=HERE, capture_output=True, text=True, timeout=120,
                         check=True)
    return json.loads(out.stdout)["streams"]


def main():
    binary, tool, work = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(work, exist_ok=True)
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         "/CN=example.test", "-addext", "subjectAltName=DNS:example.test", "-keyout", key,
         "-out", cert], check=True, capture_output=True,
    )
    env_failed = 0
    for mode in ("h2c", "tls"):
        name = f"node http2 {mode}"
        cap = os.path.join(work, f"h2-{mode}.pcap")
        keys = os.path.join(work, f"h2-{mode}.keys")
        for attempt in range(1, dc.CAPTURE_ATTEMPTS + 1):
            if os.path.exists(keys):
                os.remove(keys)
            port = dc.free_port()
            sent = tc.capture(tool, cap, port, lambda: exchange(port, mode, cert, key, keys))
            problems = tc.gaps(cap, port)
            lost = dc.dropped(tc.capture.report)
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
        events, err = tc.inspect(binary, cap, keys if mode == "tls" else None)
        est = [e for e in events if e["event"] == "established"]
        by_uid = {e["uid"]: e for e in est}
        ok = len(est) == len(sent) == len(by_uid) and all(e.get("http2") for e in est)
        check(ok, f"{name}: {len(est)} established events with http2, one uid each "
              f"(streams sent: {len(sent)})" + ("" if ok else f" {err.strip()[:300]}"))
        check(len({e.get("stream_id") for e in est}) == len(est)
              and all(e.get("host") == "example.test" for e in est),
              f"{name}: distinct stream ids, host from :authority")
        for e in est:
            path = e.get("uri")
            want = sent.get(path)
            got = {True: [], False: []}
            ends = 0
            for ev in events:
                if ev["uid"] != e["uid"]:
                    continue
                check_sid = ev.get("stream_id") == e.get("stream_id")
                if not check_sid:
                    check(False, f"{name}: {path}: event without the stream's stream_id: {ev}")
                if ev["event"] == "message" and ev["opcode"] in (1, 2):
                    got[ev["is_orig"]].append([ev["opcode"], ev["len"], ev.get("sha256")])
                ends += ev["event"] == "connection_end"
            if want is None:
                check(False, f"{name}: established for unknown path {path}")
                continue
            for is_orig, who in ((True, "client"), (False, "server")):
                check(got[is_orig] == want[who],
                      f"{name}: {path} (stream {e.get('stream_id')}): {who} messages by SHA-256 "
                      f"({sum(a == b for a, b in zip(got[is_orig], want[who]))}/"
                      f"{len(want[who])} match)")
            check(ends == 1, f"{name}: {path}: one connection_end ({ends})")
        anomalies = [(e["name"], e["detail"]) for e in events if e["event"] == "anomaly"]
        check(not anomalies, f"{name}: no anomaly {anomalies[:3]}")
        if mode == "tls":
            tls = [e for e in events if e["event"] == "tls"]
            check(len(tls) == 1 and tls[0].get("alpn") == "h2",
                  f"{name}: one tls event with alpn h2")
    print(f"{dc.PASSED} passed, {dc.FAILED + env_failed} failed")
    return 1 if dc.FAILED or env_failed else 0


if __name__ == "__main__":
    sys.exit(main())
