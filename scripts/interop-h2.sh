#!/usr/bin/env bash
# WebSocket over HTTP/2 (RFC 8441) interop with an independent HTTP/2 implementation: Node's
# built-in `http2` module (no npm package; the WebSocket framing is a small script,
# conformance/interop/h2_peer.js), both ways, cleartext h2c and TLS with ALPN h2:
#
#   1. Node server (enableConnectProtocol) <- our client: `examples/h2_echo` opens 20
#      WebSocket streams on one connection and checks every echo (text, 200 B and 100 KiB
#      messages) and every close reply; `wscope connect --http2` sends stdin lines.
#   2. Node client -> `wscope serve --echo --http2`: 5 streams on one connection, each with a
#      fragmented message and a ping between the fragments, a 100 KiB binary message and a
#      close; then the refusals (unknown :protocol 501, no version 400, version 8 400).
#
# Needs node (>= 18) and, for TLS, openssl.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../conformance/lib.sh
source "$ROOT/conformance/lib.sh"
PEER=$ROOT/conformance/interop/h2_peer.js

command -v node > /dev/null || { log "FAIL: node is needed (scripts/setup.sh installs it)"; exit 1; }
cargo_build -p wscope-cli
cargo_build -p wscope --features http2 --example h2_echo
BIN=$PROFILE_DIR/wscope
CLIENT=$PROFILE_DIR/examples/h2_echo

WORK=$TARGET_DIR/interop-h2
mkdir -p "$WORK"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do stop_pid "$p"; done; }
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 3650 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost 2> /dev/null

failed=0
check() { # NAME COMMAND...: runs, logs ok/FAIL.
  local name=$1
  shift
  if "$@" > "$WORK/$name.log" 2>&1; then
    log "ok: $name"
  else
    log "FAIL: $name (log: $WORK/$name.log)"
    sed 's/^/    /' "$WORK/$name.log" >&2
    failed=1
  fi
}

# 1. Node servers, our clients.
for tls in plain tls; do
  port=$(free_port)
  tls_args=()
  client_args=()
  url=ws://127.0.0.1:$port/echo
  if [[ $tls == tls ]]; then
    tls_args=(--tls "$WORK/cert.pem" "$WORK/key.pem")
    client_args=(--tls-ca "$WORK/cert.pem" --host localhost)
    url=wss://localhost:$port/echo
  fi
  node "$PEER" server "$port" "${tls_args[@]}" > "$WORK/node-server-$tls.log" 2>&1 &
  PIDS+=($!)
  wait_port "$port" "${PIDS[-1]}" || { log "FAIL: the Node server did not start"; cat "$WORK/node-server-$tls.log" >&2; exit 1; }
  check "our-client-node-server-$tls-small" \
    "$CLIENT" --addr "127.0.0.1:$port" "${client_args[@]}" --streams 20 --messages 5 --size 200
  check "our-client-node-server-$tls-big" \
    "$CLIENT" --addr "127.0.0.1:$port" "${client_args[@]}" --streams 3 --messages 2 --size 100K
  ca_args=()
  [[ $tls == tls ]] && ca_args=(--ca "$WORK/cert.pem")
  expect_lines() { # the connect output must be the two lines sent
    local out
    out=$(printf 'one\ntwo\n' | timeout 20 "$BIN" connect --http2 "${ca_args[@]}" "$url")
    [[ $out == $'one\ntwo' ]] || { echo "got: $out"; return 1; }
  }
  check "wscope-connect-http2-node-server-$tls" expect_lines
done

# 2. Node clients, our server.
for tls in plain tls; do
  port=$(free_port)
  serve_args=()
  peer_args=()
  if [[ $tls == tls ]]; then
    serve_args=(--tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem")
    peer_args=(--tls "$WORK/cert.pem")
  fi
  "$BIN" serve --echo --http2 --port "$port" "${serve_args[@]}" 2> "$WORK/wscope-serve-$tls.log" &
  PIDS+=($!)
  wait_port "$port" "${PIDS[-1]}" || { log "FAIL: wscope serve did not start"; exit 1; }
  check "node-client-our-server-$tls" timeout 60 node "$PEER" client "$port" "${peer_args[@]}"
done

if [[ $failed == 1 ]]; then
  log "interop-h2: FAILED"
  exit 1
fi
log "interop-h2: all passed (Node http2 both ways, h2c and TLS)"
