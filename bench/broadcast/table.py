#!/usr/bin/env python3
"""Markdown tables from bench/broadcast/run.sh's results.jsonl (stdlib only).

Broadcast: delivered messages per second and the server's CPU time per delivery, per
number of clients, with the ratio of each wscope row to the best anchor (axum, fastwebsockets):
the median of every round of every pass of a server (run.sh's PASSES), without each run's
first round, a warm-up (run.sh runs one more): the first messages on fresh connections cost
every library more (buffers allocated and grown), up to 1.5 times the steady cost at 10,000
clients.
Idle memory: the server's RSS growth per connection over the idle connections, and after
one message to each.
"""
import json
import statistics
import sys

ANCHORS = ("axum", "fastwebsockets")


def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    summaries = [r for r in rows if r.get("kind") == "summary"]
    idle = [r for r in summaries if r["label"].startswith("idle ")]
    bcast = merge_passes(rows)
    if bcast:
        print("\n### Broadcast: 1 message of %d bytes to every client, %d rounds (median)\n"
              % (bcast[0]["size"], bcast[0]["rounds"]))
        print("| clients | server | delivered msg/s | server CPU µs / delivery | vs best anchor (msg/s, CPU) | load |")
        print("|---:|---|---:|---:|---|---|")
        for conns in sorted({r["conns"] for r in bcast}):
            cell = [r for r in bcast if r["conns"] == conns]
            anchors = [r for r in cell if r["label"] in ANCHORS]
            best_rate = max((r["deliveries_per_s"] for r in anchors), default=None)
            best_cpu = min((r["server_us_per_delivery"] for r in anchors), default=None)
            for r in cell:
                ratio = ""
                if r["label"] not in ANCHORS and best_rate and best_cpu:
                    ratio = "%.2f×, %.2f×" % (r["deliveries_per_s"] / best_rate,
                                              best_cpu / r["server_us_per_delivery"])
                print("| %d | %s | %.0f | %.3f | %s | %s |" % (
                    conns, r["label"], r["deliveries_per_s"], r["server_us_per_delivery"],
                    ratio, r["load"]))
    if idle:
        print("\n### Server memory per connection (RSS growth / connections)\n")
        print("| connections | server | idle, bytes / conn | after one message each, bytes / conn | deflate agreed | load |")
        print("|---:|---|---:|---:|---:|---|")
        for r in idle:
            print("| %d | %s | %d | %d | %d | %s |" % (
                r["conns"], r["label"][len("idle "):], r["idle_bytes_per_conn"],
                r["after_bytes_per_conn"], r["deflate_agreed"], r["load"]))


def merge_passes(rows):
    """One row per (clients, server): the median rate and CPU of all its rounds (every
    pass), with the load of its first pass, in the order of first appearance."""
    out = {}
    for r in rows:
        if r.get("kind") != "round" or r["label"].startswith("idle ") or r["round"] == 0:
            continue
        key = (r["conns"], r["label"])
        m = out.setdefault(key, {"conns": r["conns"], "label": r["label"], "size": r["size"],
                                 "load": r["load"], "rates": [], "costs": []})
        m["rates"].append(r["deliveries_per_s"])
        m["costs"].append(r["server_us_per_delivery"])
    for m in out.values():
        m["rounds"] = len(m["rates"])
        m["deliveries_per_s"] = statistics.median(m["rates"])
        m["server_us_per_delivery"] = statistics.median(m["costs"])
    return list(out.values())


if __name__ == "__main__":
    main(sys.argv[1])
