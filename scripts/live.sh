#!/usr/bin/env bash
# scripts/live.sh - live capture (`wscope inspect -i`) on real traffic, checked against tcpdump.
#
# Usage: scripts/live.sh            (as root: network namespaces, packet sockets)
#
# Builds wscope-cli with the cargo feature `live` (libpcap; scripts/setup.sh installs
# libpcap-dev), installs the Python `websockets` and Node `ws` peers as scripts/interop.sh does,
# and makes three network namespaces: a client, a server, and a sensor. The server's veth is
# mirrored (tc mirred, like a switch's SPAN port) onto a veth pair whose far end, in the sensor
# namespace, is where `wscope inspect -i` and tcpdump capture. Then:
#
#  1. equality: Python websockets, Node ws and `wscope connect` clients talk to a `wscope serve
#     --echo --compress`, a Python and a Node echo server (permessage-deflate, a text message in
#     two fragments with a ping between them, binary, 100 concurrent sessions) while `wscope
#     inspect -i` writes websocket.log and `--events -` and tcpdump writes the same traffic to a
#     file. While the capture still runs, the logs on disk already hold every session (flushed
#     once a second). After SIGTERM, its events and websocket.log equal those of `wscope
#     inspect` on tcpdump's file, after normalising uids (timestamps within 200 us: the kernel
#     stamps each packet socket's copy separately). capture_stats events and the summary report
#     the kernel's counters, with no drop.
#     This run has one worker (`--workers 1`), so the event streams can be compared whole.
#  1b. workers: the same conversations with `--workers 2` (two captures of the interface in one
#     PACKET_FANOUT group, one thread each): events equal the file's per connection (the order
#     across connections is not kept), websocket.log rows the same set, the same messages
#     extracted (--extract), whole lines.
#  1c. wss:// with a key log written as the capture runs: `--keylog FILE` names a file that
#     does not exist yet; Python websockets, Node ws and `wscope connect` clients
#     (SSLKEYLOGFILE, --tls-keylog, --keylog) append their secrets to it as they talk to a
#     `wscope serve --tls-cert` echo server, 20 sessions at once among them. Every session is decrypted live (two workers,
#     each following the file), and the events and websocket.log rows equal those of the file
#     analysis of tcpdump's capture with the complete key log. A second `--keylog` that
#     appears as a directory during the run cannot be read: named once at the end.
#  2. SIGTERM mid-run, under traffic: the process ends cleanly within seconds, every line of
#     the logs and events is whole, websocket.log ends with #close, and every session that
#     began half a second before the signal is in it.
#  3. fanout (docs/deployment.md): two `wscope inspect -i --fanout-group` processes (one worker,
#     two workers), each with its own output directory, together log every one of 100 sessions
#     exactly once.
#  4. --rotate 1: Zeek-named rotated logs (websocket.YYYY-MM-DD-HH-MM-SS.log), each whole,
#     together holding every session.
#  5. without privilege (setpriv to nobody, no capabilities): exit status 2 and a message
#     naming CAP_NET_RAW, no panic; a filter that does not compile and a missing interface
#     are named the same way.
#
# Prints "ok ..." / "FAIL ..." per check and ends with "live: N passed, M failed"; exit 1 on
# any failure. Environment: LIVE_OUT (default TARGET_DIR/live), plus CARGO_TARGET_DIR,
# WSCOPE_PROFILE, SKIP_BUILD, SKIP_INSTALL (conformance/lib.sh).
set -euo pipefail
source "$(dirname "$0")/../conformance/lib.sh"
source "$(dirname "$0")/../conformance/live/net.sh"

OUT=${LIVE_OUT:-$TARGET_DIR/live}
LDIR=$ROOT/conformance/live
IDIR=$ROOT/conformance/interop
rm -rf "$OUT"; mkdir -p "$OUT"

PASSED=0
FAILED=0
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  PIDS=()
  live_net_down
}
trap cleanup EXIT INT TERM

pass() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

need() {
  command -v "$1" > /dev/null && return 0
  echo "live: $1 is needed (Debian package $2; bash scripts/setup.sh installs it)" >&2
  exit 1
}

if [[ $(id -u) != 0 ]]; then
  echo "live: needs root (network namespaces and packet sockets)" >&2
  exit 1
fi
need tcpdump tcpdump; need openssl openssl; need ip iproute2; need tc iproute2; need setpriv util-linux; need taskset util-linux
need node nodejs; need npm npm; need python3 python3-venv

cargo_build -p wscope-cli --features live
B=$PROFILE_DIR/wscope
setup_venv
setup_node
export NODE_PATH=$IDIR/node_modules

# (Background processes are started with `ip netns exec` itself, which execs the command, so
# that $! is the command's own pid and signals reach it.)
#
# Every peer runs on CPU 0: a packet is mirrored, and queued for the sensor, on the CPU that
# sent it, and two CPUs' queues can reach two packet sockets (ours and tcpdump's) in different
# interleavings. On one CPU both see one order, so the event streams can be compared whole.
in_c() { ip netns exec "$NS_C" taskset -c 0 "$@"; }
in_s() { ip netns exec "$NS_S" "$@"; }
in_t() { ip netns exec "$NS_T" "$@"; }

# --- the network: client <-> server over a veth pair, the server side mirrored to the sensor --
live_net_up

# --- servers ---------------------------------------------------------------------------------
ip netns exec "$NS_S" taskset -c 0 "$B" serve --echo --compress --host "$ADDR_S" --port 9001 --threads 1 > "$OUT/serve-wscope.log" 2>&1 &
PIDS+=($!)
ip netns exec "$NS_S" taskset -c 0 "$PY" "$LDIR/peers.py" serve "$ADDR_S" 9002 > "$OUT/serve-python.log" 2>&1 &
PIDS+=($!)
ip netns exec "$NS_S" taskset -c 0 node "$LDIR/peers.js" serve "$ADDR_S" 9003 > "$OUT/serve-node.log" 2>&1 &
PIDS+=($!)
# wss:// (section 1c): a self-signed certificate for the server's address.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$ADDR_S" \
  -keyout "$OUT/tls-key.pem" -out "$OUT/tls-cert.pem" 2> /dev/null
ip netns exec "$NS_S" taskset -c 0 "$B" serve --echo --compress --host "$ADDR_S" --port 9443 --threads 1 \
  --tls-cert "$OUT/tls-cert.pem" --tls-key "$OUT/tls-key.pem" > "$OUT/serve-wscope-tls.log" 2>&1 &
PIDS+=($!)
for port in 9001 9002 9003 9443; do
  for _ in $(seq 1 200); do
    in_c bash -c "exec 3<>/dev/tcp/$ADDR_S/$port" 2>/dev/null && break
    sleep 0.05
  done
done
# Let the handshake probes above end before any capture starts.
sleep 0.5

# start_capture DIR ARGS...: `wscope inspect -i` on the sensor into DIR (stdout, stderr there);
# returns when it is listening. Sets CAP_PID.
start_capture() {
  local dir=$1; shift
  mkdir -p "$dir"
  ip netns exec "$NS_T" "$B" inspect -i "$IF_T" --uid-seed 11 "$@" > "$dir/stdout" 2> "$dir/stderr" &
  CAP_PID=$!
  PIDS+=("$CAP_PID")
  for _ in $(seq 1 200); do
    grep -q 'listening on' "$dir/stderr" 2>/dev/null && return 0
    kill -0 "$CAP_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "live: wscope inspect -i did not start:" >&2
  cat "$dir/stderr" >&2
  return 1
}

# start_tcpdump FILE: tcpdump of the same interface; returns when it is listening.
start_tcpdump() {
  ip netns exec "$NS_T" tcpdump -i "$IF_T" -s 262144 -U -w "$1" 2> "$1.stderr" &
  TCP_PID=$!
  PIDS+=("$TCP_PID")
  for _ in $(seq 1 200); do
    grep -q 'listening on' "$1.stderr" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# stop PID SIGNAL: sends SIGNAL and waits for the exit; sets RC.
stop() {
  kill "-$2" "$1"
  set +e
  wait "$1"
  RC=$?
  set -e
}

file_analysis() { # PCAP DIR: the file analysis with the same uid seed
  mkdir -p "$2"
  "$B" inspect "$1" --uid-seed 11 -q -o "$2/logs" --events "$2/events.json" > "$2/stdout"
}

rows_of() { grep -vc '^#' "$1" 2>/dev/null || true; }

# --- 1. live equals file ------------------------------------------------------------------
D=$OUT/equality
start_capture "$D" --workers 1 -o "$D/logs" --events - --stats-interval 1
start_tcpdump "$D/tcpdump.pcap"
url() { echo "ws://$ADDR_S:$1/"; }
CLIENT_FAIL=0
run_client() { if ! "$@" >> "$D/clients.log" 2>&1; then CLIENT_FAIL=1; echo "client failed: $*" >> "$D/clients.log"; fi; }
for port in 9001 9002 9003; do
  run_client in_c "$PY" "$LDIR/peers.py" client "$(url $port)"
  run_client in_c node "$LDIR/peers.js" client "$(url $port)"
done
run_client in_c "$B" connect --compress "$(url 9001)" <<< $'one\ntwo'
run_client in_c "$B" connect "$(url 9002)" <<< 'plain'
run_client in_c "$B" connect --compress "$(url 9003)" <<< 'deflated'
run_client in_c "$PY" "$LDIR/peers.py" many "$(url 9001)" 100
check "every client conversation went as scripted" test "$CLIENT_FAIL" = 0
# Still capturing: the logs on disk already hold every session (flushed at least once a second).
sleep 1.5
check "while capturing, websocket.log on disk has all 109 sessions" \
  test "$(rows_of "$D/logs/websocket.log")" = 109
check "while capturing, --events - has flushed all 109 established events" \
  test "$(grep -c '"event":"established"' "$D/stdout")" = 109
sleep 1.5
stop "$CAP_PID" TERM
check "SIGTERM ends the capture with status 0" test "$RC" = 0
stop "$TCP_PID" INT
file_analysis "$D/tcpdump.pcap" "$D/file"
check "live events equal the file's (uids normalised)" \
  python3 "$LDIR/compare.py" events "$D/stdout" "$D/file/events.json"
check "live websocket.log rows equal the file's" \
  python3 "$LDIR/compare.py" rows "$D/logs/websocket.log" "$D/file/logs/websocket.log"
check "the file has permessage-deflate frames (rsv1)" grep -q '"rsv":4' "$D/file/events.json"
check "the file has a ping between two fragments of a message" \
  python3 -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
frames = {}
for e in ev:
    if e["event"] == "frame":
        frames.setdefault((e["uid"], e["is_orig"]), []).append((e["opcode"], e["fin"]))
ok = any(f[i] == (1, False) and f[i + 1][0] == 9 and f[i + 2] == (0, True)
         for f in frames.values() for i in range(len(f) - 2))
sys.exit(0 if ok else 1)' "$D/file/events.json"
check "capture_stats events report the kernel counters" \
  grep -q '"event":"capture_stats","interface":"'"$IF_T"'".*"dropped":0' "$D/stdout"
check "the summary names the kernel's drop count" \
  grep -q "kernel       $IF_T: .* received, 0 dropped" "$D/stderr"

# --- 1b. two workers in one process ----------------------------------------------------------
D=$OUT/workers
start_capture "$D" --workers 2 -q -o "$D/logs" --events "$D/events.json" --stats-interval 1 \
  --extract "$D/extract"
start_tcpdump "$D/tcpdump.pcap"
CLIENT_FAIL=0
for port in 9001 9002 9003; do
  run_client in_c "$PY" "$LDIR/peers.py" client "$(url $port)"
  run_client in_c node "$LDIR/peers.js" client "$(url $port)"
done
run_client in_c "$B" connect --compress "$(url 9001)" <<< $'one\ntwo'
run_client in_c "$PY" "$LDIR/peers.py" many "$(url 9001)" 100
check "workers: every client conversation went as scripted" test "$CLIENT_FAIL" = 0
sleep 1.5
check "workers: while capturing, websocket.log on disk has all 107 sessions" \
  test "$(rows_of "$D/logs/websocket.log")" = 107
sleep 1
stop "$CAP_PID" TERM
check "workers: SIGTERM ends the capture with status 0" test "$RC" = 0
stop "$TCP_PID" INT
file_analysis "$D/tcpdump.pcap" "$D/file"
"$B" inspect "$D/tcpdump.pcap" -q --extract "$D/file/extract" > /dev/null
# Extracted messages are named <uid>-<c|s>-<n>: the uids differ between the two runs, so
# compare the contents, and the names without their uid (each connection numbers its own
# messages, whichever worker had it).
check "workers: the same messages extracted as from the file ($(find "$D/extract" -type f | wc -l) files)" \
  bash -c "test -n \"\$(ls '$D/extract')\" && diff <(cd '$D/extract' && find . -type f -exec sha256sum {} + | cut -d' ' -f1 | sort) <(cd '$D/file/extract' && find . -type f -exec sha256sum {} + | cut -d' ' -f1 | sort) > /dev/null"
check "workers: each connection numbers its extracted messages from 1" \
  bash -c "diff <(ls '$D/extract' | sed 's/^[^-]*-//' | sort) <(ls '$D/file/extract' | sed 's/^[^-]*-//' | sort) > /dev/null"
check "workers: every line whole" python3 "$LDIR/compare.py" whole "$D/events.json" "$D/logs/websocket.log"
check "workers: live events equal the file's, connection by connection" \
  python3 "$LDIR/compare.py" flows "$D/events.json" "$D/file/events.json"
check "workers: websocket.log rows equal the file's (in any order)" \
  python3 "$LDIR/compare.py" rowset "$D/logs/websocket.log" "$D/file/logs/websocket.log"
check "workers: one capture_stats line per interval, the sockets' counters summed, no drop" \
  grep -q '"event":"capture_stats","interface":"'"$IF_T"'".*"dropped":0' "$D/events.json"
check "workers: the summary names the kernel's drop count" \
  grep -q "kernel       $IF_T: .* received, 0 dropped" "$D/stdout"
check "workers: the kernel gave each worker a share of the connections ($(grep '^workers' "$D/stdout"))" \
  grep -Eq '^workers +2: packets [1-9][0-9]* \+ [1-9][0-9]*, connections [1-9][0-9]* \+ [1-9][0-9]*$' "$D/stdout"

# --- 1c. wss:// with a key log written while capturing --------------------------------------
D=$OUT/keylog
mkdir -p "$D"
KEYS=$D/keys.log
rm -rf "$KEYS" "$D/unreadable"
# A second key log that appears during the capture and cannot be read (a directory): named
# once at the end, whatever the number of workers; the first one's secrets still decrypt all.
start_capture "$D" --workers 2 -q -o "$D/logs" --events "$D/events.json" --keylog "$KEYS" \
  --keylog "$D/unreadable"
mkdir "$D/unreadable"
start_tcpdump "$D/tcpdump.pcap"
CLIENT_FAIL=0
wss="wss://$ADDR_S:9443/"
run_client in_c env SSLKEYLOGFILE="$KEYS" "$PY" "$LDIR/peers.py" client "$wss"
run_client in_c node --tls-keylog="$KEYS" "$LDIR/peers.js" client "$wss"
run_client in_c "$B" connect --insecure --keylog "$KEYS" --compress "$wss" <<< $'one\ntwo'
run_client in_c env SSLKEYLOGFILE="$KEYS" "$PY" "$LDIR/peers.py" many "$wss" 20
check "keylog: every wss:// conversation went as scripted" test "$CLIENT_FAIL" = 0
sleep 1.5
stop "$CAP_PID" TERM
check "keylog: SIGTERM ends the capture with status 0" test "$RC" = 0
stop "$TCP_PID" INT
check "keylog: the key log did not exist when the capture started" \
  grep -q "keys.log does not exist yet" "$D/stderr"
check "keylog: a key log that could not be read at the end is named once" \
  test "$(grep -c "unreadable: cannot read the key log: .*still at the end" "$D/stderr")" = 1
mkdir -p "$D/file"
"$B" inspect "$D/tcpdump.pcap" --uid-seed 11 -q --keylog "$KEYS" -o "$D/file/logs" \
  --events "$D/file/events.json" > "$D/file/stdout"
check "keylog: the file analysis decrypts all 23 sessions" \
  grep -q "^TLS          23 connections: 23 decrypted" "$D/file/stdout"
check "keylog: live, all 23 connections decrypted as the key log grew ($(grep '^TLS' "$D/stdout"))" \
  grep -q "^TLS          23 connections: 23 decrypted" "$D/stdout"
check "keylog: websocket.log has all 23 sessions" test "$(rows_of "$D/logs/websocket.log")" = 23
check "keylog: live events equal the file's, connection by connection" \
  python3 "$LDIR/compare.py" flows "$D/events.json" "$D/file/events.json"
check "keylog: websocket.log rows equal the file's (in any order)" \
  python3 "$LDIR/compare.py" rowset "$D/logs/websocket.log" "$D/file/logs/websocket.log"

# --- 2. SIGTERM mid-run --------------------------------------------------------------------
D=$OUT/sigterm
start_capture "$D" -q -o "$D/logs" --events "$D/events.json"
start_tcpdump "$D/tcpdump.pcap"
ip netns exec "$NS_C" taskset -c 0 "$PY" "$LDIR/peers.py" many "$(url 9001)" 40 4 > "$D/clients.log" 2>&1 &
LOAD=$!
PIDS+=("$LOAD")
sleep 2
SIG_AT=$(date +%s.%N)
stop "$CAP_PID" TERM
check "SIGTERM under traffic: status 0" test "$RC" = 0
wait "$LOAD" || true
sleep 1
stop "$TCP_PID" INT
check "SIGTERM under traffic: no torn line in events or logs" \
  python3 "$LDIR/compare.py" whole "$D/events.json" "$D/logs/websocket.log"
file_analysis "$D/tcpdump.pcap" "$D/file"
check "SIGTERM under traffic: every session begun 0.5 s before the signal is logged" \
  python3 -c '
import sys
sig = float(sys.argv[1]) - 0.5
def rows(p):
    return [l.split("\t") for l in open(p) if not l.startswith("#")]
live = {tuple(r[2:6]) for r in rows(sys.argv[2])}
want = {tuple(r[2:6]) for r in rows(sys.argv[3]) if float(r[0]) < sig}
missing = want - live
print(f"{len(want)} sessions before the signal, {len(missing)} missing", file=sys.stderr)
sys.exit(1 if missing or not want else 0)' "$SIG_AT" "$D/logs/websocket.log" "$D/file/logs/websocket.log"

# --- 3. fanout: two processes share the interface ------------------------------------------
D=$OUT/fanout
# The example of docs/deployment.md: one output directory each, `-o` and `--events`; the second
# process with two workers (its two sockets are members of the group too).
start_capture "$D/a" -f tcp --fanout-group 4242 --workers 1 -q -o "$D/a/logs" --events "$D/a/events.json"
PID_A=$CAP_PID
start_capture "$D/b" -f tcp --fanout-group 4242 --workers 2 -q -o "$D/b/logs" --events "$D/b/events.json"
PID_B=$CAP_PID
start_tcpdump "$D/tcpdump.pcap"
in_c "$PY" "$LDIR/peers.py" many "$(url 9001)" 100 > "$D/clients.log" 2>&1
sleep 2
stop "$PID_A" TERM; RC_A=$RC
stop "$PID_B" TERM; RC_B=$RC
stop "$TCP_PID" INT
check "fanout: both processes end with status 0" test "$RC_A$RC_B" = 00
file_analysis "$D/tcpdump.pcap" "$D/file"
python3 "$LDIR/compare.py" tuples "$D/a/logs/websocket.log" 2>/dev/null | sort > "$D/a.tuples" || true
python3 "$LDIR/compare.py" tuples "$D/b/logs/websocket.log" 2>/dev/null | sort > "$D/b.tuples" || true
python3 "$LDIR/compare.py" tuples "$D/file/logs/websocket.log" | sort > "$D/file.tuples"
check "fanout: each process got a share ($(wc -l < "$D/a.tuples") + $(wc -l < "$D/b.tuples"))" \
  test -s "$D/a.tuples" -a -s "$D/b.tuples"
check "fanout: no session logged twice" test -z "$(comm -12 "$D/a.tuples" "$D/b.tuples")"
check "fanout: together every one of the 100 sessions" \
  bash -c "test \"\$(sort -m '$D/a.tuples' '$D/b.tuples')\" = \"\$(cat '$D/file.tuples')\" && test \$(wc -l < '$D/file.tuples') = 100"

# --- 4. rotation ---------------------------------------------------------------------------
D=$OUT/rotate
start_capture "$D" -q -o "$D/logs" --rotate 1
for wave in 1 2 3; do
  in_c "$PY" "$LDIR/peers.py" many "$(url 9001)" 5 >> "$D/clients.log" 2>&1
  sleep 1.2
done
stop "$CAP_PID" TERM
shopt -s nullglob
ROTATED=("$D"/logs/websocket.????-??-??-??-??-??.log)
shopt -u nullglob
check "rotate: at least 3 rotated websocket logs (${#ROTATED[@]})" test "${#ROTATED[@]}" -ge 3
check "rotate: no unrotated websocket.log left at exit" test ! -e "$D/logs/websocket.log"
check "rotate: each rotated log is whole (header, rows, #close)" \
  python3 "$LDIR/compare.py" whole "${ROTATED[@]}"
check "rotate: together they hold all 15 sessions" \
  test "$(cat "${ROTATED[@]}" | grep -vc '^#')" = 15

# --- 5. without privilege ------------------------------------------------------------------
D=$OUT/unprivileged
mkdir -p "$D"
set +e
in_t setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
  "$B" inspect -i "$IF_T" --duration 1 > "$D/stdout" 2> "$D/stderr"
RC=$?
set -e
check "unprivileged: exit status 2" test "$RC" = 2
check "unprivileged: the error names CAP_NET_RAW" grep -q 'CAP_NET_RAW' "$D/stderr"
check "unprivileged: no panic" bash -c "! grep -q panicked '$D/stderr'"

set +e
in_t "$B" inspect -i "$IF_T" -f 'tcp port' --duration 1 > "$D/stdout" 2> "$D/filter.stderr"
RC=$?
in_t "$B" inspect -i nosuch0 --duration 1 > "$D/stdout" 2> "$D/iface.stderr"
RC2=$?
set -e
check "a filter that does not compile: status 2, named" \
  bash -c "test $RC = 2 && grep -q 'bad capture filter \"tcp port\"' '$D/filter.stderr'"
check "a missing interface: status 2, named" \
  bash -c "test $RC2 = 2 && grep -q 'nosuch0: no such network interface' '$D/iface.stderr'"

echo "live: $PASSED passed, $FAILED failed"
[[ $FAILED == 0 ]]
