#!/usr/bin/env bash
# The broadcast and idle-memory benchmark in one run (issue 20): one server, N connected
# clients, 1 KiB messages fanned out to all; wscope (prepared messages through its fan-out
# group, and through a channel per connection; Bytes encoded per connection) against axum's ws
# (tokio-tungstenite) and fastwebsockets, with the `raw` floor (no library after the
# handshake: the channel pattern writing encoded frames into the socket); then the server's
# RSS over 10,000 idle connections, with and without permessage-deflate (wscope only: the
# anchors have none) per window size. Prints markdown tables; raw JSON lines go to $OUT.
#
#   bench/broadcast/run.sh                    # everything (about 2 minutes on 2 cores)
#   CONNS="1000" LIBS="wscope axum" SKIP_IDLE=1 bench/broadcast/run.sh
#
# Settings: CONNS (default "1000 10000"), LIBS, ROUNDS (3, after a warm-up round that the
# tables leave out), PASSES (1: with 2 or more, the
# servers take turns, pass after pass, and the tables take the median of every round of every
# pass, so a machine whose speed drifts during the run favours no row), DELIVERIES per round
# (200000; fastwebsockets, which writes every frame with a system call of its own, a fifth),
# SIZE (1024), THREADS (server worker threads, 1), IDLE_CONNS (10000), SKIP_BROADCAST,
# PIN (1: the server on CPU 0 and the clients on CPU 1, with taskset, so that where the
# scheduler puts them does not vary between runs), SKIP_DEFLATE (no deflate rows), SKIP_IDLE, SKIP_BUILD (use the binaries in target/release
# as they are), OUT.
set -euo pipefail
# No `cd`: /work/quiet-run.sh-style wrappers pause processes by their working directory.
HERE="$(cd "$(dirname "$0")" && pwd)"
CONNS="${CONNS:-1000 10000}"
LIBS="${LIBS:-wscope wscope-chan wscope-bytes raw axum fastwebsockets}"
ROUNDS="${ROUNDS:-3}"
DELIVERIES="${DELIVERIES:-200000}"
SIZE="${SIZE:-1024}"
THREADS="${THREADS:-1}"
OUT="${OUT:-$HERE/../../target/bench-results/broadcast-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"
# 10,000 connections need 10,000 descriptors in each process (server and clients).
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt 10100 ]; then
    echo "run.sh: ulimit -n is $(ulimit -n), 10,100 or more needed" >&2
    exit 1
fi
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --manifest-path "$HERE/Cargo.toml"
BIN=$HERE/target/release
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
port=19200
PIN_SERVER="" PIN_LOAD=""
if [ -n "${PIN:-}" ]; then
    PIN_SERVER="taskset -c 0" PIN_LOAD="taskset -c 1"
fi
src=1

# one LABEL LIB CONNS MSGS ROUNDS OFFER [SERVER_FLAGS...]: one server, one client run.
one() {
    local label=$1 lib=$2 conns=$3 msgs=$4 rounds=$(($5 + 1)) offer=$6
    shift 6
    port=$((port + 2))
    src=$((src + 1))
    $PIN_SERVER "$BIN/bcast-server" "$lib" "$port" --threads "$THREADS" "$@" 2>>"$OUT/server.log" &
    local pid=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$((port + 1))") 2>/dev/null && break
        sleep 0.05
    done
    local args=()
    [ -n "$offer" ] && args=(--offer "$offer")
    # A fresh source address per run: no TIME_WAIT left by the previous one in the way.
    $PIN_LOAD "$BIN/bcast-load" --addr "127.0.0.1:$port" --pid "$pid" --conns "$conns" --msgs "$msgs" \
        --rounds "$rounds" --size "$SIZE" --src "127.0.0.$src" --label "$label" "${args[@]}" \
        | tee -a "$RESULTS" | grep '"kind":"summary"' || echo "run.sh: $label at $conns failed" >&2
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

OFFER="permessage-deflate; client_max_window_bits"

PASSES="${PASSES:-1}"
if [ -z "${SKIP_BROADCAST:-}" ]; then
    for n in $CONNS; do
      for _ in $(seq "$PASSES"); do
        msgs=$((DELIVERIES / n))
        for lib in $LIBS; do
            if [ "$lib" = fastwebsockets ]; then
                one "$lib" "$lib" "$n" "$(( (DELIVERIES / 5 + n - 1) / n ))" "$ROUNDS" ""
            else
                one "$lib" "$lib" "$n" "$msgs" "$ROUNDS" ""
            fi
        done
        [ -z "${SKIP_DEFLATE:-}" ] || continue
        # Compressed broadcast (wscope only): one shared compressed frame without the
        # server's context takeover, one compression per connection with it.
        one "wscope deflate no-takeover" wscope "$n" "$msgs" "$ROUNDS" "$OFFER" --deflate --no-takeover
        # Compressing per connection is two orders of magnitude slower: fewer deliveries.
        one "wscope deflate takeover" wscope "$n" "$(( (DELIVERIES / 10 + n - 1) / n ))" "$ROUNDS" "$OFFER" --deflate
      done
    done
fi

if [ -z "${SKIP_IDLE:-}" ]; then
    # 10,000 idle connections (RSS before the first message), then one message to each (a
    # compressing server with context takeover keeps its zlib context from then on).
    IDLE_CONNS="${IDLE_CONNS:-10000}"
    for lib in $LIBS; do
        one "idle $lib" "$lib" "$IDLE_CONNS" 1 0 ""
    done
    if [ -z "${SKIP_DEFLATE:-}" ]; then
        for w in 15 12 9; do
            one "idle wscope deflate window $w" wscope "$IDLE_CONNS" 1 0 "$OFFER" --deflate --window "$w"
        done
        one "idle wscope deflate no-takeover" wscope "$IDLE_CONNS" 1 0 "$OFFER" --deflate --no-takeover
    fi
fi

echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); raw lines: $RESULTS"
python3 "$HERE/table.py" "$RESULTS"
