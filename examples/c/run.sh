#!/usr/bin/env bash
# Builds examples/c/websock_echo.c with `cc` against include/websock.h and the static library
# libwscope_ffi.a, then runs it against `wscope serve --echo`: plain (secured 0), TLS without
# verification (1) and TLS verified against a CA made here (2); then the same three under
# valgrind memcheck (no leaks, no errors) unless NO_VALGRIND=1. Also checks that the header
# compiles as C99 and C++ with warnings as errors.
#
# Then the C API's threads and deadlines, as C programs (each under `timeout`, so that a
# regression fails instead of hanging): websock_threads.c (one thread in websock_recv, another
# sending 8 and 16 MiB to the echo server, plain and TLS) and websock_deadlines.c against the
# hostile servers of hostile_server.py (no answer to the upgrade: websock_open within
# time_out; a ping flood, read or not: websock_recv within its timeout, websock_close within
# WEBSOCK_CLOSE_TIMEOUT, also in callback mode; a send to a server that never reads fails
# within the write timeout). Under valgrind too, smaller and with more
# slack.
#
#   bash examples/c/run.sh
#
# CARGO_TARGET_DIR / WSCOPE_PROFILE / SKIP_BUILD as in conformance/lib.sh.
set -euo pipefail
# shellcheck source=../../conformance/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../conformance/lib.sh"

# Tools: cc/c++, openssl (test certificates) and valgrind, from Debian's packages if missing.
need=()
command -v "${CC:-cc}" >/dev/null || need+=(gcc)
command -v "${CXX:-c++}" >/dev/null || need+=(g++)
command -v openssl >/dev/null || need+=(openssl)
[[ ${NO_VALGRIND:-0} == 1 ]] || command -v valgrind >/dev/null || need+=(valgrind)
command -v python3 >/dev/null || need+=(python3)
if [[ ${#need[@]} -gt 0 ]]; then
  log "apt-get install ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo_build -p wscope-ffi -p wscope-cli

WORK=$(mktemp -d)
SERVER_PIDS=()
cleanup() {
  local p
  for p in "${SERVER_PIDS[@]}"; do stop_pid "$p"; done
  rm -rf "$WORK"
}
trap cleanup EXIT

CC=${CC:-cc}
CXX=${CXX:-c++}
log "header: C99 and C++ with -Werror"
printf '#include "websock.h"\nint main(void) { return WEBSOCK_MAX_HNDSHK_HDRS == 10 ? 0 : 1; }\n' >"$WORK/h.c"
"$CC" -std=c99 -Wall -Wextra -pedantic -Werror -I "$ROOT/include" -c "$WORK/h.c" -o "$WORK/h.o"
cp "$WORK/h.c" "$WORK/h.cpp"
"$CXX" -Wall -Wextra -Werror -I "$ROOT/include" -c "$WORK/h.cpp" -o "$WORK/hpp.o"

log "cc websock_echo.c + libwscope_ffi.a"
"$CC" -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -g -I "$ROOT/include" \
  "$ROOT/examples/c/websock_echo.c" "$PROFILE_DIR/libwscope_ffi.a" \
  -lpthread -ldl -lm -o "$WORK/websock_echo"
for prog in websock_threads websock_deadlines; do
  log "cc $prog.c + libwscope_ffi.a"
  "$CC" -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -g -I "$ROOT/include" \
    "$ROOT/examples/c/$prog.c" "$PROFILE_DIR/libwscope_ffi.a" \
    -lpthread -ldl -lm -o "$WORK/$prog"
done

# A CA and a server certificate for 127.0.0.1 / localhost.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=wscope test CA" \
  -keyout "$WORK/ca.key" -out "$WORK/ca.pem" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
  -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$WORK/ext.cnf"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
  -days 2 -extfile "$WORK/ext.cnf" -out "$WORK/server.pem" 2>/dev/null

start_server() { # start_server VAR [serve args...]: sets VAR to the port
  local var=$1 port pid
  shift
  port=$(free_port)
  "$PROFILE_DIR/wscope" serve --echo --port "$port" "$@" >"$WORK/serve-$port.log" 2>&1 &
  pid=$!
  SERVER_PIDS+=("$pid")
  wait_port "$port" "$pid" || { cat "$WORK/serve-$port.log" >&2; return 1; }
  printf -v "$var" '%s' "$port"
}

start_hostile() { # start_hostile VAR MODE: a hostile_server.py; sets VAR to its port
  local var=$1 mode=$2 pid port=""
  python3 "$ROOT/examples/c/hostile_server.py" "$mode" >"$WORK/hostile-$mode.port" \
    2>"$WORK/hostile-$mode.log" &
  pid=$!
  SERVER_PIDS+=("$pid")
  for _ in $(seq 100); do
    port=$(head -n 1 "$WORK/hostile-$mode.port" 2>/dev/null || true)
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { cat "$WORK/hostile-$mode.log" >&2; return 1; }
  printf -v "$var" '%s' "$port"
}

start_server PLAIN
start_server TLS --tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key"
start_hostile SILENT silent
start_hostile FLOOD flood
start_hostile FLOOD_READ flood-read

run_all() { # run_all [wrapper...]
  log "plain (secured 0) ${*:-}"
  "$@" "$WORK/websock_echo" 127.0.0.1 "$PLAIN" 0
  log "TLS without verification (secured 1) ${*:-}"
  "$@" "$WORK/websock_echo" 127.0.0.1 "$TLS" 1
  log "TLS verified (secured 2) ${*:-}"
  "$@" "$WORK/websock_echo" localhost "$TLS" 2 "$WORK/ca.pem"
}

run_all

# run_deadlines: the threads and deadline programs, each started through the command in the
# array W (empty: directly; TLS runs through WT).
W=()
WT=()
run_deadlines() {
  log "two threads on one handle, echoes of ${SIZES:-8192 16384} KiB: plain ${W[*]:-}"
  # shellcheck disable=SC2086 # SIZES: a list of sizes, split on purpose
  timeout 300 "${W[@]}" "$WORK/websock_threads" 127.0.0.1 "$PLAIN" 0 ${SIZES:-}
  log "two threads on one handle, echoes of ${SIZES:-8192 16384} KiB: TLS ${WT[*]:-}"
  # shellcheck disable=SC2086
  timeout 300 "${WT[@]}" "$WORK/websock_threads" 127.0.0.1 "$TLS" 1 ${SIZES:-}
  log "websock_open within time_out against a server that never answers"
  timeout 60 "${W[@]}" "$WORK/websock_deadlines" open 127.0.0.1 "$SILENT" 0 2
  timeout 60 "${WT[@]}" "$WORK/websock_deadlines" open 127.0.0.1 "$SILENT" 1 2
  log "websock_recv and websock_close within their bounds under a ping flood"
  timeout 60 "${W[@]}" "$WORK/websock_deadlines" flood 127.0.0.1 "$FLOOD"
  timeout 60 "${W[@]}" "$WORK/websock_deadlines" flood 127.0.0.1 "$FLOOD_READ"
  timeout 60 "${W[@]}" "$WORK/websock_deadlines" flood-callback 127.0.0.1 "$FLOOD"
  timeout 60 "${W[@]}" "$WORK/websock_deadlines" flood-callback 127.0.0.1 "$FLOOD_READ"
  # 16 MiB (more than the socket buffers hold) is too slow to prepare under valgrind.
  if [[ ${#W[@]} -eq 0 ]]; then
    log "a send to a server that never reads fails within the write timeout"
    timeout 60 "$WORK/websock_deadlines" send 127.0.0.1 "$FLOOD" 1
    timeout 60 "$WORK/websock_deadlines" send 127.0.0.1 "$FLOOD" 0
  fi
}

SIZES="" run_deadlines

if [[ ${NO_VALGRIND:-0} != 1 ]]; then
  VG=(valgrind --quiet --error-exitcode=99 --leak-check=full
    --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible
    --track-origins=yes)
  log "valgrind: plain, no suppressions"
  "${VG[@]}" "$WORK/websock_echo" 127.0.0.1 "$PLAIN" 0
  # TLS: ring's AES-GCM assembly is opaque to memcheck (see valgrind-ring.supp).
  log "valgrind: TLS (secured 1 and 2), ring GCM suppressions only"
  # The encrypted records go out through wscope's vectored `sendmsg` (MSG_NOSIGNAL). Memcheck
  # matches a Param suppression's parameter name exactly, so one entry per iovec slot that
  # rustls can fill (it writes at most 64 chunks at once).
  SUPP="$WORK/ring.supp"
  cp "$ROOT/examples/c/valgrind-ring.supp" "$SUPP"
  for i in $(seq 0 63); do
    printf '{\n   ring-gcm-tag-sendmsg-%d\n   Memcheck:Param\n   sendmsg(msg.msg_iov[%d])\n   fun:*sendmsg\n   ...\n   fun:*rustls*write_tls*\n}\n' "$i" "$i" >>"$SUPP"
  done
  "${VG[@]}" --suppressions="$SUPP" "$WORK/websock_echo" 127.0.0.1 "$TLS" 1
  "${VG[@]}" --suppressions="$SUPP" "$WORK/websock_echo" localhost "$TLS" 2 "$WORK/ca.pem"
  log "valgrind: threads (1 and 2 MiB messages) and deadlines (3 s of slack)"
  W=("${VG[@]}")
  WT=("${VG[@]}" --suppressions="$SUPP")
  SIZES="1024 2048" SLACK=3 run_deadlines
fi
log "C API example: all runs passed"
