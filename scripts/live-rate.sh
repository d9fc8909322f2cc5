#!/usr/bin/env bash
# scripts/live-rate.sh - how much traffic `wscope inspect -i` keeps up with, with no kernel drop.
#
# Usage: bash scripts/live-rate.sh          (root; not part of scripts/test-all.sh)
#
# The project's load generator (../shared/bench, `loadgen`, see BENCHMARKS.md "Echo matrix")
# drives `wscope serve --echo` across the veth pair of conformance/live/net.sh, cell by cell;
# `wscope inspect -i` (release build, feature `live`) captures the mirrored copy of both
# directions on the sensor's veth and analyses it (`-o`, the Zeek logs). Each cell runs twice:
# without the capture (the generator's own ceiling on this machine) and with it. Per cell it
# prints the generator's echo rate, the packets and bytes the capture analysed per second, and
# the kernel's received/dropped counts from the capture's summary.
#
# Placement on the 2 CPUs: the server on CPU 0, the generator on CPU 1 (as in the echo matrix),
# the capture wherever the scheduler puts it, so it competes with both, as a sensor on a busy
# host would.
#
# Environment: LOADGEN (default ../shared/bench/anchors/target/release/loadgen), DURATION
# seconds per run (default 5), CELLS (names below), LIVE_RATE_OUT (default
# target/live-rate), SKIP_BUILD=1.
set -euo pipefail
WSCOPE_PROFILE=release
source "$(dirname "$0")/../conformance/lib.sh"
source "$(dirname "$0")/../conformance/live/net.sh"

LOADGEN=${LOADGEN:-$ROOT/../shared/bench/anchors/target/release/loadgen}
DURATION=${DURATION:-5}
OUT=${LIVE_RATE_OUT:-$TARGET_DIR/live-rate}
CELLS=${CELLS:-"fan1k pipe16 bin64k bin1m"}
declare -A CELL=(
  [fan1k]="--conns 64 --size 1K --window 1"
  [pipe16]="--conns 1 --size 16 --window 256"
  [bin64k]="--conns 4 --size 64K --window 2"
  [bin1m]="--conns 4 --size 1M --window 2"
)
[[ -x $LOADGEN ]] || { echo "live-rate: no load generator at $LOADGEN (build ../shared/bench/anchors)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "live-rate: needs root" >&2; exit 1; }

cargo_build -p wscope-cli --features live
B=$PROFILE_DIR/wscope
rm -rf "$OUT"; mkdir -p "$OUT"
SERVER=
trap 'stop_pid "$SERVER"; live_net_down' EXIT INT TERM
live_net_up
ip netns exec "$NS_S" taskset -c 0 "$B" serve --echo --host "$ADDR_S" --port 9001 > "$OUT/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
  ip netns exec "$NS_C" bash -c "exec 3<>/dev/tcp/$ADDR_S/9001" 2>/dev/null && break
  sleep 0.05
done

loadgen() { # CELL LABEL -> one JSON line
  # shellcheck disable=SC2086 # the cell's flags are several words
  ip netns exec "$NS_C" taskset -c 1 "$LOADGEN" --addr "$ADDR_S:9001" ${CELL[$1]} \
    --duration "$DURATION" --warmup 0.5 --label "$2"
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

printf '%-8s %12s %12s | %12s %12s %10s %10s %12s %9s\n' cell "alone msg/s" "captured msg/s" \
  "pkts/s" "MB/s wire" "received" "dropped" "if_dropped" "sessions"
for cell in $CELLS; do
  alone=$(loadgen "$cell" "$cell-alone")
  d=$OUT/$cell
  mkdir -p "$d"
  # shellcheck disable=SC2086 # CAPTURE_ARGS: extra flags, several words
  ip netns exec "$NS_T" "$B" inspect -i "$IF_T" -q -o "$d/logs" ${CAPTURE_ARGS:-} > "$d/summary" 2> "$d/stderr" &
  cap=$!
  for _ in $(seq 1 100); do grep -q 'listening on' "$d/stderr" && break; sleep 0.05; done
  with=$(loadgen "$cell" "$cell-captured")
  sleep 1.5
  kill -TERM "$cap"; wait "$cap" || true
  echo "$alone" > "$d/loadgen-alone.json"; echo "$with" > "$d/loadgen-captured.json"
  python3 - "$cell" "$alone" "$with" "$d/summary" "$DURATION" <<'PY'
import json, re, sys
cell, alone, with_, summary, duration = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), open(sys.argv[4]).read(), float(sys.argv[5])
pk = re.search(r"packets\s+(\d+) \((\d+) bytes read\)", summary)
span = float(re.search(r"capture spans ([\d.]+) s", summary).group(1)) or 1.0
k = re.search(r"kernel\s+\S+: (\d+) packets received, (\d+) dropped \(buffer full\), (\d+) dropped by", summary)
sessions = re.search(r"WebSocket sessions (\d+)", summary).group(1)
packets, nbytes = int(pk.group(1)), int(pk.group(2))
print(f"{cell:<8} {alone['msgs_per_s']:>12,.0f} {with_['msgs_per_s']:>12,.0f} | {packets/span:>12,.0f} "
      f"{nbytes/span/1e6:>12,.1f} {int(k.group(1)):>10,} {int(k.group(2)):>10,} {int(k.group(3)):>12,} {sessions:>9}")
PY
done
