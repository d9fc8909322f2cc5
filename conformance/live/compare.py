"""Checks for scripts/live.sh: live output against the same traffic read from tcpdump's file.

    compare.py events LIVE.jsonl FILE.jsonl   equal after normalising uids (ts within 200 us)
    compare.py flows LIVE.jsonl FILE.jsonl    the same per connection, in any interleaving
                                              (several workers: the order is per connection)
    compare.py rows LIVE.log FILE.log         websocket.log/weird.log rows, the same way
    compare.py rowset LIVE.log FILE.log       the same rows in any order
    compare.py whole PATH...                  every line complete: JSON events parse, Zeek
                                              logs have a header, whole rows and #close
    compare.py tuples LOG...                  prints the connections (4-tuples) of websocket.logs

Timestamps may differ by a microsecond or so: the kernel stamps a packet for each packet
socket separately when the packet carries no timestamp of its own, so tcpdump's copy and
ours can be a tick apart. Everything else must be identical, in the same order.
"""

import json
import sys

TS_TOLERANCE = 0.0002


def uid_map():
    seen = {}

    def norm(uid):
        if uid is None:
            return None
        return seen.setdefault(uid, f"U{len(seen)}")

    return norm


def load_events(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            ev = json.loads(line)
            if ev.get("event") == "capture_stats":
                continue
            out.append(ev)
    return out


def compare_events(live_path, file_path):
    live, file = load_events(live_path), load_events(file_path)
    nl, nf = uid_map(), uid_map()
    if len(live) != len(file):
        return f"{len(live)} live events, {len(file)} from the file"
    for i, (a, b) in enumerate(zip(live, file)):
        ta, tb = a.pop("ts", None), b.pop("ts", None)
        if (ta is None) != (tb is None) or (ta is not None and abs(ta - tb) > TS_TOLERANCE):
            return f"event {i}: ts {ta} live, {tb} file"
        a["uid"], b["uid"] = nl(a.get("uid")), nf(b.get("uid"))
        if a != b:
            return f"event {i} differs:\n  live {a}\n  file {b}"
    return None


def flow_key(ev):
    i = ev.get("id", {})
    return (i.get("orig_h"), i.get("orig_p"), i.get("resp_h"), i.get("resp_p"), ev.get("stream_id"))


def by_flow(events):
    flows = {}
    for ev in events:
        flows.setdefault(flow_key(ev), []).append(ev)
    return flows


def compare_flows(live_path, file_path):
    """Each connection's events (uid left out) equal, in order, whatever the interleaving
    of connections; every event belongs to a connection."""
    live, file = by_flow(load_events(live_path)), by_flow(load_events(file_path))
    if set(live) != set(file):
        only = sorted(map(str, set(live) ^ set(file)))[:3]
        return f"{len(live)} live connections, {len(file)} from the file; differing: {only}"
    for key in sorted(live, key=str):
        a, b = live[key], file[key]
        if len(a) != len(b):
            return f"{key}: {len(a)} live events, {len(b)} from the file"
        uids_a = {e.get("uid") for e in a}
        if len(uids_a) != len({e.get("uid") for e in b}):
            return f"{key}: {len(uids_a)} live uids"
        for i, (x, y) in enumerate(zip(a, b)):
            tx, ty = x.pop("ts", None), y.pop("ts", None)
            if (tx is None) != (ty is None) or (tx is not None and abs(tx - ty) > TS_TOLERANCE):
                return f"{key} event {i}: ts {tx} live, {ty} file"
            x.pop("uid", None)
            y.pop("uid", None)
            if x != y:
                return f"{key} event {i} differs:\n  live {x}\n  file {y}"
    return None


def compare_rowset(live_path, file_path):
    def keyed(path):
        out = []
        for r in rows(path):
            out.append((tuple(r[2:]), float(r[0])))
        return sorted(out)

    live, file = keyed(live_path), keyed(file_path)
    if len(live) != len(file):
        return f"{len(live)} live rows, {len(file)} from the file"
    for (ra, ta), (rb, tb) in zip(live, file):
        if ra != rb or abs(ta - tb) > TS_TOLERANCE:
            return f"rows differ:\n  live {ta} {ra}\n  file {tb} {rb}"
    return None


def rows(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if not line.startswith("#")]


def compare_rows(live_path, file_path):
    live, file = rows(live_path), rows(file_path)
    nl, nf = uid_map(), uid_map()
    if len(live) != len(file):
        return f"{len(live)} live rows, {len(file)} from the file"
    for i, (a, b) in enumerate(zip(live, file)):
        if abs(float(a[0]) - float(b[0])) > TS_TOLERANCE:
            return f"row {i}: ts {a[0]} live, {b[0]} file"
        a[1], b[1] = nl(a[1]), nf(b[1])
        if a[1:] != b[1:]:
            return f"row {i} differs:\n  live {a}\n  file {b}"
    return None


def check_whole(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        return f"{path}: the last line is cut"
    lines = text.splitlines()
    if path.endswith(".json") or path.endswith(".jsonl"):
        for i, line in enumerate(lines):
            try:
                json.loads(line)
            except ValueError:
                return f"{path}: line {i + 1} is not whole JSON: {line[:80]!r}"
        return None
    if not lines:
        return None
    if not lines[0].startswith("#separator"):
        return f"{path}: no Zeek header"
    if not lines[-1].startswith("#close\t"):
        return f"{path}: no #close line at the end"
    fields = next((len(l.split("\t")) - 1 for l in lines if l.startswith("#fields\t")), None)
    for i, line in enumerate(lines):
        if not line.startswith("#") and len(line.split("\t")) != fields:
            return f"{path}: row {i + 1} has {len(line.split(chr(9)))} fields, not {fields}"
    return None


def tuples(paths):
    for p in paths:
        for r in rows(p):
            print(" ".join(r[2:6]))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "events":
        err = compare_events(*args)
    elif cmd == "flows":
        err = compare_flows(*args)
    elif cmd == "rows":
        err = compare_rows(*args)
    elif cmd == "rowset":
        err = compare_rowset(*args)
    elif cmd == "whole":
        err = next((e for e in map(check_whole, args) if e), None)
    elif cmd == "tuples":
        tuples(args)
        err = None
    else:
        sys.exit(__doc__)
    if err:
        print(err, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
