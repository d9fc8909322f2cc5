#!/usr/bin/env bash
# Memory per idle connection of `wscope serve --echo`, with and without --compress, per
# compression window and memLevel, on the tokio and io_uring drivers.
#
# Usage: scripts/idle-memory.sh [CONNS]        (default 2000 connections per measurement)
# Environment:
#   WSCOPE_PROFILE  release (default) or debug: which build to measure
#   DRIVERS         default "tokio io_uring"
#   WINDOWS         default "15 12 9"   (--deflate-window-bits)
#   MEM_LEVELS      default "8 5 1"     (--deflate-mem-level; "-" passes none, for builds
#                   from before the flag)
#   AFTER_ONE       1 (default) also measures "after 1 msg"; 0 only "fresh" (with many
#                   connections the other state needs several GiB, in the client as well)
#   WSCOPE_BIN      measure this `wscope` binary instead of building one (e.g. an older
#                   build, for a before/after comparison)
#
# For each server configuration it starts `wscope serve --echo --threads 1`, reads its RSS,
# opens CONNS connections with examples/idle_conns (offering permessage-deflate, or plain
# against a server without --compress), waits a second, reads the RSS again and prints
# (RSS after - RSS before) / CONNS. Two states per configuration: "fresh" (connections that
# never sent a message) and "after 1 msg" (each exchanged one ~1 KiB compressible text
# message, so with context takeover the server holds its contexts from then on).
# Prints a markdown table. Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${1:-2000}
PROFILE=${WSCOPE_PROFILE:-release}
DRIVERS=${DRIVERS:-"tokio io_uring"}
WINDOWS=${WINDOWS:-"15 12 9"}
MEM_LEVELS=${MEM_LEVELS:-"8 5 1"}
AFTER_ONE=${AFTER_ONE:-1}

# The server and the client each hold CONNS descriptors (within the hard limit).
want=$((CONNS + 4096))
hard=$(ulimit -Hn)
[ "$hard" != unlimited ] && [ "$want" -gt "$hard" ] && want=$hard
ulimit -n "$want"
flag=()
[ "$PROFILE" = release ] && flag=(--release)
if [ -z "${WSCOPE_BIN:-}" ]; then
  cargo build -q "${flag[@]}" -p wscope-cli
fi
cargo build -q "${flag[@]}" -p wscope --example idle_conns
BIN=${WSCOPE_BIN:-target/$PROFILE/wscope}
GEN=target/$PROFILE/examples/idle_conns

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# after SERVER_ARGS... -> the "after 1 msg" figure, or "-" when not measured
after() {
  if [ "$AFTER_ONE" = 1 ]; then
    measure "$driver" 1 "$@"
  else
    echo "-"
  fi
}

# measure DRIVER SEND_ONE(0/1/nt: also asking for no context takeover) SERVER_ARGS...
#   -> bytes per connection
measure() {
  local driver=$1 send_one=$2
  shift 2
  local extra=() port srv up=0
  [ "$driver" = io_uring ] && extra=(--io-uring)
  # A random port; another one if it is taken (the server then exits at once).
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 20000))
    "$BIN" serve --echo --threads 1 --port "$port" "${extra[@]}" "$@" 2>/dev/null &
    srv=$!
    for _ in $(seq 50); do
      kill -0 "$srv" 2>/dev/null || break
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        up=1
        break
      fi
      sleep 0.1
    done
    sleep 0.3
    kill -0 "$srv" 2>/dev/null || up=0
    [ "$up" = 1 ] && break
    kill "$srv" 2>/dev/null || true
    wait "$srv" 2>/dev/null || true
  done
  if [ "$up" != 1 ]; then
    echo "failed"
    return
  fi
  local before
  before=$(rss_kib "$srv")
  local client=(--addr "127.0.0.1:$port" --conns "$CONNS" --hold 120)
  [[ " $* " == *" --compress "* ]] || client+=(--plain)
  [ "$send_one" != 0 ] && client+=(--send-one)
  [ "$send_one" = nt ] && client+=(--no-takeover)
  local fifo
  fifo=$(mktemp -u)
  mkfifo "$fifo"
  "$GEN" "${client[@]}" <"$fifo" >"$fifo.out" &
  local gen=$!
  exec 4>"$fifo"
  for _ in $(seq 600); do
    grep -q '^ready' "$fifo.out" 2>/dev/null && break
    kill -0 "$gen" 2>/dev/null || break
    sleep 0.1
  done
  sleep 1
  local after
  after=$(rss_kib "$srv")
  local ready
  ready=$(cat "$fifo.out")
  exec 4>&-
  wait "$gen" || true
  kill "$srv" 2>/dev/null || true
  wait "$srv" 2>/dev/null || true
  rm -f "$fifo" "$fifo.out"
  case "$ready" in
    ready*) echo $(((after - before) * 1024 / CONNS)) ;;
    *) echo "failed" ;;
  esac
}

echo "| driver | server | fresh (B/conn) | after 1 msg (B/conn) |"
echo "|---|---|---|---|"
for driver in $DRIVERS; do
  echo "| $driver | plain | $(measure "$driver" 0) | $(after) |"
  for w in $WINDOWS; do
    for m in $MEM_LEVELS; do
      args=(--compress --deflate-window-bits "$w")
      label="w$w"
      if [ "$m" != "-" ]; then
        args+=(--deflate-mem-level "$m")
        label="w$w m$m"
      fi
      echo "| $driver | --compress $label | $(measure "$driver" 0 "${args[@]}") | $(after "${args[@]}") |"
    done
  done
  if [ "$AFTER_ONE" = 1 ]; then
    # Clients that ask for no context takeover both ways: nothing is kept after a message.
    echo "| $driver | --compress, client asks no_context_takeover | - | $(measure "$driver" nt --compress) |"
  fi
done
