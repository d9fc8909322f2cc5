#!/usr/bin/env bash
# Passive WebSocket over HTTP/2 (RFC 8441): Node's `http2` server (enableConnectProtocol) and
# client (`:protocol: websocket`, WebSocket framing by conformance/interop/h2_exchange.js) run
# three WebSocket streams on one connection, cleartext (h2c) and over TLS (ALPN h2, key log by
# node --tls-keylog), while tcpdump records loopback. `wscope inspect` must report each stream
# as its own session (uid, stream_id, http2, uri/host from :path/:authority) with every message
# matching by SHA-256, and no anomaly. See conformance/interop/h2_capture.py. (scripts/h2-capture.sh, of the endpoints, writes captures of our own client and server.) tcpdump comes
# from scripts/setup.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../conformance/lib.sh
source "$ROOT/conformance/lib.sh"
IDIR=$ROOT/conformance/interop

setup_venv
setup_node
cargo_build -p wscope-cli
BIN=$PROFILE_DIR/wscope

CAPTURE=$(command -v tcpdump || true)
if [[ -z $CAPTURE ]]; then
  log "FAIL: tcpdump is needed for the passive HTTP/2 check (bash scripts/setup.sh installs it)"
  exit 1
fi
cd "$IDIR"
"$PY" h2_capture.py "$BIN" "$CAPTURE" "$TARGET_DIR/h2-capture"
