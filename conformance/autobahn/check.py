#!/usr/bin/env python3
"""Summarise an Autobahn (kosoku) report and diff it against committed expected results.

Stdlib only. Usage:

  check.py REPORT EXPECTED_JSON [--label NAME] [--compression] [--partial] [--update]
  check.py --brief REPORT

REPORT is the index.json that `kosoku -o DIR` writes
({agent: {case id: {behavior, behaviorClose, duration, ...}}}), or a directory: then every
index.json below it is read and merged (scripts/autobahn.sh runs kosoku once per case group,
each into its own sub-directory, so that progress shows group by group).
EXPECTED_JSON maps case id -> {"behavior": ..., "behaviorClose": ...}
(durations and report file names are ignored, as in tungstenite's
autobahn/expected-results.json).

Selection: without --compression, cases 12.* and 13.* (permessage-deflate)
are left out of both sides. With --partial (a run limited to some cases),
expected cases that the report does not contain are not reported as missing.

Exit status 1 when
  - any counted case has behavior FAILED, UNIMPLEMENTED or ERROR, or a
    closing-handshake verdict (behaviorClose) other than OK / INFORMATIONAL;
  - or the report differs from the expected file (a changed verdict, an
    expected case missing from the report, a case not in the expected file).
An improvement (e.g. NON-STRICT -> OK) is a difference too: re-run with
--update (AUTOBAHN_UPDATE_EXPECTED=1 in scripts/autobahn.sh) and commit the
new expected file.
With --update the expected file is rewritten from the report (selected
cases only; other entries are kept) and the exit status only reflects the
FAILED/UNIMPLEMENTED rule.
"""

import argparse
import json
import os
import sys
from collections import Counter

BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "ERROR"]
BAD_BEHAVIOR = {"FAILED", "UNIMPLEMENTED", "ERROR"}
CLOSE_OK = {"OK", "INFORMATIONAL"}
COMPRESSION = ("12", "13")


def case_key(cid):
    return tuple(int(p) if p.isdigit() else p for p in cid.split("."))


def selected(cid, compression):
    return compression or cid.split(".")[0] not in COMPRESSION


def report_files(path):
    """The index.json files of a report: the file itself, or every one below a directory."""
    if not os.path.isdir(path):
        return [path]
    found = []
    for top, _dirs, files in os.walk(path):
        if "index.json" in files:
            found.append(os.path.join(top, "index.json"))
    return sorted(found)


def load_report(path, compression):
    cases = {}
    for file in report_files(path):
        with open(file, encoding="utf-8") as f:
            data = json.load(f)
        for _agent, per_case in data.items():
            for cid, c in per_case.items():
                if selected(cid, compression):
                    cases[cid] = {"behavior": c.get("behavior"), "behaviorClose": c.get("behaviorClose"),
                                  "duration": c.get("duration"), "remoteCloseCode": c.get("remoteCloseCode")}
    return dict(sorted(cases.items(), key=lambda kv: case_key(kv[0])))


def brief(path):
    """One progress line for a finished case group: how many cases, with which verdicts."""
    cases = load_report(path, True)
    counts = Counter(c["behavior"] for c in cases.values())
    verdicts = " ".join(f"{b}={counts[b]}" for b in BEHAVIORS if counts.get(b))
    print(f"{len(cases)} cases {verdicts}".rstrip())
    return 0


def load_expected(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def group_ids(ids, universe=None):
    """Joins case ids; with `universe` (all case ids of the run), a whole group X.Y that
    is in `ids` is written X.Y.* (so 216 deflate cases do not flood the log)."""
    if not ids:
        return "none"
    if universe is None:
        return ", ".join(ids)
    prefix = lambda cid: ".".join(cid.split(".")[:2])  # noqa: E731
    chosen = set(ids)
    whole = {prefix(c) for c in ids
             if all(u in chosen for u in universe if prefix(u) == prefix(c)) and len(c.split(".")) > 2}
    out, seen = [], set()
    for cid in ids:
        p = prefix(cid)
        if p in whole:
            if p not in seen:
                seen.add(p)
                out.append(p + ".*")
        else:
            out.append(cid)
    return ", ".join(out)


def main(argv):
    if len(argv) == 2 and argv[0] == "--brief":
        return brief(argv[1])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report")
    ap.add_argument("expected")
    ap.add_argument("--label", default=None)
    ap.add_argument("--compression", action="store_true", help="count 12.* and 13.* too")
    ap.add_argument("--partial", action="store_true", help="only some cases were run")
    ap.add_argument("--update", action="store_true", help="rewrite the expected file from the report")
    args = ap.parse_args(argv)

    cases = load_report(args.report, args.compression)
    label = args.label or args.report
    counts = Counter(c["behavior"] for c in cases.values())
    bad = [cid for cid, c in cases.items()
           if c["behavior"] in BAD_BEHAVIOR
           or (c["behavior"] != "UNIMPLEMENTED" and c["behaviorClose"] not in CLOSE_OK)]
    scope = "all cases" if args.compression else "without 12.*/13.* (permessage-deflate)"
    print(f"== Autobahn {label}: {len(cases)} cases, {scope}")
    print("   " + "  ".join(f"{b}={counts.get(b, 0)}" for b in BEHAVIORS))
    for b in ("NON-STRICT", "INFORMATIONAL"):
        ids = [cid for cid, c in cases.items() if c["behavior"] == b]
        if ids:
            print(f"   {b}: {group_ids(ids)}")
    if bad:
        by_verdict = {}
        for cid in bad:
            by_verdict.setdefault(f"{cases[cid]['behavior']}/{cases[cid]['behaviorClose']}", []).append(cid)
        for verdict, ids in by_verdict.items():
            print(f"   NOT PASSING {verdict} ({len(ids)}): {group_ids(ids, list(cases))}")
    slow = sorted(((c["duration"] or 0, cid) for cid, c in cases.items()), reverse=True)[:5]
    total_ms = sum(c["duration"] or 0 for c in cases.values())
    ms9 = sum(c["duration"] or 0 for cid, c in cases.items() if cid.startswith("9."))
    print(f"   case time: {total_ms} ms in all, 9.* {ms9} ms; slowest: "
          + ", ".join(f"{cid} {d} ms" for d, cid in slow))

    if not cases:
        print("   ERROR: the report holds no (selected) case")
        return 1

    if args.update:
        old = load_expected(args.expected) or {}
        if not args.partial:
            old = {cid: v for cid, v in old.items() if not selected(cid, args.compression)}
        for cid, c in cases.items():
            old[cid] = {"behavior": c["behavior"], "behaviorClose": c["behaviorClose"]}
        out = dict(sorted(old.items(), key=lambda kv: case_key(kv[0])))
        with open(args.expected, "w", encoding="utf-8") as f:
            lines = [f"  {json.dumps(cid)}: {json.dumps(v, sort_keys=True)}" for cid, v in out.items()]
            f.write("{\n" + ",\n".join(lines) + "\n}\n")
        print(f"   expected results written: {args.expected} ({len(out)} cases)")
        return 1 if bad else 0

    expected = load_expected(args.expected)
    diffs = []
    if expected is None:
        diffs.append(f"no expected file {args.expected} (create it with AUTOBAHN_UPDATE_EXPECTED=1)")
    else:
        exp = {cid: v for cid, v in expected.items() if selected(cid, args.compression)}
        if args.compression and not any(cid.split(".")[0] in COMPRESSION for cid in exp):
            print("   note: the expected file has no 12.*/13.* entries; those cases are only checked for FAILED")
            exp_ids = set(exp) | {cid for cid in cases if cid.split(".")[0] in COMPRESSION}
            exp.update({cid: {"behavior": cases[cid]["behavior"], "behaviorClose": cases[cid]["behaviorClose"]}
                        for cid in cases if cid.split(".")[0] in COMPRESSION})
        else:
            exp_ids = set(exp)
        for cid in sorted(exp_ids | set(cases), key=case_key):
            e, g = exp.get(cid), cases.get(cid)
            if g is None:
                if not args.partial:
                    diffs.append(f"{cid}: expected {e['behavior']}/{e['behaviorClose']}, not in the report")
            elif e is None:
                diffs.append(f"{cid}: got {g['behavior']}/{g['behaviorClose']}, not in the expected file")
            elif (e.get("behavior"), e.get("behaviorClose")) != (g["behavior"], g["behaviorClose"]):
                diffs.append(f"{cid}: expected {e.get('behavior')}/{e.get('behaviorClose')}, "
                             f"got {g['behavior']}/{g['behaviorClose']}")
    if diffs:
        print(f"   DIFFERENCES from {args.expected} ({len(diffs)}):")
        for d in diffs:
            print(f"     {d}")
        print("   (if the new verdicts are right, re-run with AUTOBAHN_UPDATE_EXPECTED=1 and commit)")
    else:
        print(f"   matches {args.expected}")
    ok = not bad and not diffs
    print(f"   result: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
