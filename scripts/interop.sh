#!/usr/bin/env bash
# scripts/interop.sh - interoperability of wscope with Python `websockets` and Node `ws`,
# both ways, plain and over TLS with a certificate generated at test time.
#
# Usage: scripts/interop.sh
#
# Installs the peers itself: PyPI websockets (pinned in conformance/requirements.txt) into
# conformance/.venv, npm ws (pinned in conformance/interop/package.json + lock) with
# `npm ci` into conformance/interop/node_modules. Generates a throw-away CA and a server
# certificate for localhost / 127.0.0.1 with openssl.
#
#  1. their clients -> our server: py_peer.py client and node_peer.js client against
#     `wscope serve --echo` (ws:// and wss://; tokio and, where the kernel allows it,
#     io_uring `--io-uring`): text, empty, binary, fragmented text and
#     binary, 200 pipelined, ping/pong, 16 MiB binary and 4 MiB multi-byte text compared
#     by sha256, close 4000 with a reason and 1001 without (exact code and reason checked).
#     Then the same batteries against the axum-hosted echo (crates/wscope/examples/axum_echo.rs,
#     the `wscope::axum::WebSocketUpgrade` extractor), plain and with --compress (both
#     peers' clients offer permessage-deflate by default), and a two-client exchange in one
#     room of examples/axum_chat.rs (conformance/interop/chat_check.py).
#  2. our client -> their servers: examples/interop_client (blocking API) against the
#     py_peer.py / node_peer.js echo servers (ws:// and wss://): the same plus fragmented
#     receive, server-initiated ping, client close 4001 with reason, server close 4002
#     with reason, every payload compared byte for byte.
#  3. `wscope connect` (the CLI) against both servers: stdin lines -> messages, output
#     compared exactly, a 16 MiB line compared by sha256, the server's close code and
#     reason as printed, --binary, and wss:// without --ca must fail verification.
#
# Prints "ok ..." / "FAIL ..." per check and closes with "interop: N passed, M failed";
# exit 1 on any failure. Environment: INTEROP_OUT (default TARGET_DIR/interop), plus
# CARGO_TARGET_DIR, WSCOPE_PROFILE, SKIP_BUILD, SKIP_INSTALL (conformance/lib.sh).
set -euo pipefail
source "$(dirname "$0")/../conformance/lib.sh"

OUT=${INTEROP_OUT:-$TARGET_DIR/interop}
IDIR=$ROOT/conformance/interop
rm -rf "$OUT"; mkdir -p "$OUT"

PASSED=0
FAILED=0
FAILURES=()
PIDS=()
cleanup() { local p; for p in "${PIDS[@]}"; do stop_pid "$p"; done; PIDS=(); }
trap cleanup EXIT INT TERM

pass() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); FAILURES+=("$*"); echo "FAIL $*"; }

# need CMD DEBIAN-PACKAGE: fails with a clear message when CMD is missing (scripts/setup.sh,
# which the test command runs first, installs the system packages).
need() {
  command -v "$1" > /dev/null && return 0
  echo "interop: $1 is needed (Debian package $2; bash scripts/setup.sh installs it)" >&2
  exit 1
}

gen_certs() {
  local d=$OUT/tls
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$d/ca.key" -out "$d/ca.pem" -subj "/CN=wscope interop test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2> "$d/log"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost" 2>> "$d/log"
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" > "$d/ext.cnf"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -extfile "$d/ext.cnf" -out "$d/server.pem" 2>> "$d/log"
  CA=$d/ca.pem CERT=$d/server.pem KEY=$d/server.key
}

# start NAME CMD... : runs CMD PORT [TLS args appended by the caller], sets PORT_<NAME>.
start_server() {
  local name=$1; shift
  local port; port=$(free_port)
  "$@" "$port" > "$OUT/server-$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  if ! wait_port "$port" "$pid"; then
    fail "server $name did not start (see $OUT/server-$name.log)"
    tail -n 5 "$OUT/server-$name.log" >&2 || true
    printf -v "PORT_${name//-/_}" '%s' 0
    return 0
  fi
  printf -v "PORT_${name//-/_}" '%s' "$port"
}

# battery LABEL CMD... : runs a peer battery, counts its ok/FAIL lines.
battery() {
  local label=$1; shift
  local log=$OUT/battery-$label.log rc=0
  timeout 300 "$@" > "$log" 2>&1 || rc=$?
  local ok bad
  ok=$(grep -c '^ok ' "$log" || true)
  bad=$(grep -c '^FAIL ' "$log" || true)
  PASSED=$((PASSED + ok))
  FAILED=$((FAILED + bad))
  grep -E '^(ok|FAIL) ' "$log" || true
  grep '^FAIL ' "$log" >> "$OUT/failures.txt" || true
  if [[ $rc != 0 && $bad == 0 ]]; then
    fail "$label: exit $rc without a reported failure (see $log)"
    tail -n 10 "$log" >&2
  elif [[ $ok == 0 && $bad == 0 ]]; then
    fail "$label: ran no test (see $log)"
  fi
}

sha() { sha256sum | cut -d' ' -f1; }

# connect_held OUT ERR INPUT ARGS... : `wscope connect ARGS` with INPUT on stdin, stdin held
# open afterwards (up to HOLD_S s) so that the peer's close, not our stdin EOF, ends the
# session (`wscope connect` closes at EOF, and a peer stops echoing once it has seen a
# close). Sets CONNECT_MS: how long `wscope connect` ran.
HOLD_S=8
connect_held() {
  local out=$1 err=$2 input=$3; shift 3
  local fifo=$OUT/stdin.fifo rc=0
  rm -f "$fifo"; mkfifo "$fifo"
  ( cat "$input"; exec sleep "$HOLD_S" ) > "$fifo" &
  local holder=$!
  local t_start; t_start=$(date +%s%N)
  timeout 60 "$PROFILE_DIR/wscope" connect "$@" < "$fifo" > "$out" 2> "$err" || rc=$?
  CONNECT_MS=$(( ($(date +%s%N) - t_start) / 1000000 ))
  kill "$holder" 2>/dev/null || true
  wait "$holder" 2>/dev/null || true
  rm -f "$fifo"
  return $rc
}

# CLI checks: `wscope connect` against a peer echo server at URL.
cli_checks() {
  local label=$1 url=$2; shift 2
  local extra=("$@") w=$PROFILE_DIR/wscope
  local exp=$OUT/cli-$label.expected out=$OUT/cli-$label.out err=$OUT/cli-$label.err rc=0
  # 1. text lines, a fragmented message from the server, a server ping, the server's close.
  printf '%s\n' "hello" "unicode ✓ é ж 漢 😀" "cmd:frag:3:abcdefghijkl" "cmd:ping:cli-ping" \
    "cmd:close:4003:cli bye ✓" > "$OUT/cli-$label.in"
  printf '%s\n' "hello" "unicode ✓ é ж 漢 😀" "abcdefghijkl" "pong-ok:cli-ping" > "$exp"
  connect_held "$out" "$err" "$OUT/cli-$label.in" "${extra[@]}" "$url" || rc=$?
  if [[ $rc == 0 ]] && cmp -s "$exp" "$out" && grep -qF "closed 4003 cli bye ✓" "$err"; then
    pass "$label wscope-connect text/fragmented/ping/server-close-4003"
  else
    fail "$label wscope-connect text/fragmented/ping/server-close-4003 (exit $rc; $out, $err)"
    diff "$exp" "$out" | head -n 5 >&2 || true; tail -n 3 "$err" >&2
  fi
  # The session is over once the server has closed: the command must end then, not wait
  # for the next stdin line (stdin is still open here for ${HOLD_S} s).
  if (( CONNECT_MS < 4000 )); then
    pass "$label wscope-connect exits after the server's close with stdin still open (${CONNECT_MS} ms)"
  else
    fail "$label wscope-connect exits after the server's close with stdin still open: took ${CONNECT_MS} ms (stdin held ${HOLD_S} s)"
  fi
  # 2. one 16 MiB text line, echoed, then the server closes (4004).
  local big=$OUT/big-line.txt
  if [[ ! -f $big ]]; then
    python3 -c 'import base64, hashlib, sys
n = 16 << 20; out = bytearray(); i = 0
while len(out) < n * 3 // 4 + 3:
    out += hashlib.sha256(b"line:%d" % i).digest() * 32; i += 1
sys.stdout.write(base64.b64encode(bytes(out)).decode()[:n] + "\n")' > "$big"
  fi
  rc=0
  if [[ ! -f $big.in ]]; then { cat "$big"; echo "cmd:close:4004:big done"; } > "$big.in"; fi
  connect_held "$out" "$err" "$big.in" "${extra[@]}" "$url" || rc=$?
  local want got
  want=$(sha < "$big"); got=$(sha < "$out")
  if [[ $rc == 0 && $want == "$got" ]] && grep -qF "closed 4004 big done" "$err"; then
    pass "$label wscope-connect 16MiB-line-sha256"
  else
    fail "$label wscope-connect 16MiB-line-sha256 (exit $rc, sha256 $got != $want, $(wc -c < "$out") bytes)"
    tail -n 3 "$err" >&2
  fi
  # 3. --binary: lines become binary messages, printed back raw. No command can be sent in
  #    binary mode, so stdin stays open a moment for the echoes to arrive before our close.
  rc=0
  { printf 'bin-1\nbin-2 \xe2\x9c\x93\n'; sleep 1; } | timeout 30 "$w" connect --binary "${extra[@]}" "$url" > "$out" 2> "$err" || rc=$?
  if [[ $rc == 0 && "$(od -An -tx1 < "$out" | tr -d ' \n')" == "62696e2d310a62696e2d3220e29c930a" ]]; then
    pass "$label wscope-connect --binary"
  else
    fail "$label wscope-connect --binary (exit $rc; $(od -An -c < "$out" | head -n 2))"
  fi
}

t0=$SECONDS
need openssl openssl
need node nodejs
need npm npm
setup_venv
setup_node
cargo_build -p wscope-cli
cargo_build -p wscope --example interop_client
cargo_build -p wscope --features axum --example axum_echo --example axum_chat
gen_certs
log "peers: websockets $("$PY" -c 'import websockets; print(websockets.__version__)'), ws $(cd "$IDIR" && node -p "require('ws/package.json').version"), node $(node --version)"

W=$PROFILE_DIR/wscope
start_server wscope     "$W" serve --echo --port
start_server wscope-tls "$W" serve --echo --tls-cert "$CERT" --tls-key "$KEY" --port
# The io_uring driver too (plain and TLS), where the kernel allows io_uring.
URING=0
if [[ "$(uname -s)" == Linux && "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" == 0 ]]; then
  URING=1
  start_server wscope-uring     "$W" serve --echo --io-uring --port
  start_server wscope-uring-tls "$W" serve --echo --io-uring --tls-cert "$CERT" --tls-key "$KEY" --port
fi
AX=$PROFILE_DIR/examples/axum_echo
start_server axum          "$AX" --port
start_server axum-deflate  "$AX" --compress --port
start_server axum-chat     "$PROFILE_DIR/examples/axum_chat"
start_server py         "$PY" "$IDIR/py_peer.py" serve
start_server node       node "$IDIR/node_peer.js" serve
# TLS peers take the port first, then the certificate options.
start_tls_peer() {
  local name=$1; shift
  local port; port=$(free_port)
  "$@" "$port" --cert "$CERT" --key "$KEY" > "$OUT/server-$name.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  if wait_port "$port" "$pid"; then printf -v "PORT_${name//-/_}" '%s' "$port"
  else fail "server $name did not start (see $OUT/server-$name.log)"; printf -v "PORT_${name//-/_}" '%s' 0; fi
}
start_tls_peer py-tls   "$PY" "$IDIR/py_peer.py" serve
start_tls_peer node-tls node "$IDIR/node_peer.js" serve

echo "== 1. their clients -> wscope serve --echo"
battery py-client-ws    "$PY" "$IDIR/py_peer.py" client "ws://127.0.0.1:$PORT_wscope" --label py-client-ws
battery py-client-wss   "$PY" "$IDIR/py_peer.py" client "wss://localhost:$PORT_wscope_tls" --cafile "$CA" --label py-client-wss
battery node-client-ws  node "$IDIR/node_peer.js" client "ws://127.0.0.1:$PORT_wscope" --label node-client-ws
battery node-client-wss node "$IDIR/node_peer.js" client "wss://localhost:$PORT_wscope_tls" --cafile "$CA" --label node-client-wss
if [[ $URING == 1 ]]; then
  battery py-client-uring-ws    "$PY" "$IDIR/py_peer.py" client "ws://127.0.0.1:$PORT_wscope_uring" --label py-client-uring-ws
  battery py-client-uring-wss   "$PY" "$IDIR/py_peer.py" client "wss://localhost:$PORT_wscope_uring_tls" --cafile "$CA" --label py-client-uring-wss
  battery node-client-uring-ws  node "$IDIR/node_peer.js" client "ws://127.0.0.1:$PORT_wscope_uring" --label node-client-uring-ws
  battery node-client-uring-wss node "$IDIR/node_peer.js" client "wss://localhost:$PORT_wscope_uring_tls" --cafile "$CA" --label node-client-uring-wss
else
  log "io_uring is disabled on this kernel: the io_uring server's batteries are skipped"
fi

echo "== 1b. their clients -> the axum-hosted echo (wscope::axum::WebSocketUpgrade)"
battery py-client-axum-ws           "$PY" "$IDIR/py_peer.py" client "ws://127.0.0.1:$PORT_axum" --label py-client-axum-ws
battery node-client-axum-ws         node "$IDIR/node_peer.js" client "ws://127.0.0.1:$PORT_axum" --label node-client-axum-ws
battery py-client-axum-deflate-ws   "$PY" "$IDIR/py_peer.py" client "ws://127.0.0.1:$PORT_axum_deflate" --label py-client-axum-deflate-ws
battery node-client-axum-deflate-ws node "$IDIR/node_peer.js" client "ws://127.0.0.1:$PORT_axum_deflate" --label node-client-axum-deflate-ws
battery py-axum-chat                "$PY" "$IDIR/chat_check.py" "ws://127.0.0.1:$PORT_axum_chat"

echo "== 2. wscope client (examples/interop_client) -> their echo servers"
IC=$PROFILE_DIR/examples/interop_client
battery wscope-to-py-ws    "$IC" "ws://127.0.0.1:$PORT_py" --label wscope-to-py-ws
battery wscope-to-py-wss   "$IC" "wss://localhost:$PORT_py_tls" --ca "$CA" --label wscope-to-py-wss
battery wscope-to-node-ws  "$IC" "ws://127.0.0.1:$PORT_node" --label wscope-to-node-ws
battery wscope-to-node-wss "$IC" "wss://localhost:$PORT_node_tls" --ca "$CA" --label wscope-to-node-wss

echo "== 3. wscope connect (CLI) -> their echo servers"
cli_checks py-ws    "ws://127.0.0.1:$PORT_py"
cli_checks py-wss   "wss://localhost:$PORT_py_tls" --ca "$CA"
cli_checks node-ws  "ws://127.0.0.1:$PORT_node"
cli_checks node-wss "wss://localhost:$PORT_node_tls" --ca "$CA"
rc=0
echo hi | timeout 30 "$W" connect "wss://localhost:$PORT_node_tls" > /dev/null 2> "$OUT/cli-noca.err" || rc=$?
if [[ $rc != 0 ]] && grep -qi 'certificate\|UnknownIssuer' "$OUT/cli-noca.err"; then
  pass "wscope-connect wss:// without --ca is refused ($(head -c 100 "$OUT/cli-noca.err"))"
else
  fail "wscope-connect wss:// without --ca: exit $rc, expected a certificate error ($OUT/cli-noca.err)"
fi

# Our servers must still be up and must not have panicked.
for name in wscope wscope-tls axum axum-deflate axum-chat; do
  if grep -q panicked "$OUT/server-$name.log"; then fail "server $name panicked (see $OUT/server-$name.log)"; fi
done
alive=0
for p in "${PIDS[@]:0:2}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
if [[ $alive == 2 ]]; then pass "wscope servers still running after all batteries"
else fail "a wscope server exited during the run (see $OUT/server-wscope*.log)"; fi
cleanup

echo "interop took $((SECONDS - t0)) s; logs in $OUT"
echo "interop: $PASSED passed, $FAILED failed"
[[ $FAILED == 0 ]]
