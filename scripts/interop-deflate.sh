#!/usr/bin/env bash
# permessage-deflate (RFC 7692) interop with Python `websockets` and Node `ws` (pinned in
# conformance/requirements.txt and conformance/interop/package-lock.json), both ways:
# their clients offering each parameter combination to `wscope serve --echo --compress`, and
# `wscope connect --compress` against their compressing servers configured with each
# combination (context takeover on/off, reduced window bits). See
# conformance/interop/deflate_interop.{py,js}. Then the passive side: traffic between two
# Python peers and between two Node peers, captured on loopback (tcpdump or dumpcap; tcpdump
# is installed from Debian when neither is present) and analysed by `wscope inspect`, which
# must inflate every message of each parameter combination
# (conformance/interop/deflate_capture.py, conformance/interop/deflate_exchange.js).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../conformance/lib.sh
source "$ROOT/conformance/lib.sh"
IDIR=$ROOT/conformance/interop

setup_venv
if [[ ! -d $IDIR/node_modules/ws ]]; then
  log "npm ci (conformance/interop)"
  (cd "$IDIR" && npm ci --no-audit --no-fund --silent)
fi
cargo_build -p wscope-cli
BIN=$PROFILE_DIR/wscope

CAPTURE=$(command -v tcpdump || command -v dumpcap || true)
if [[ -z $CAPTURE && $(id -u) == 0 ]] && command -v apt-get > /dev/null; then
  log "installing tcpdump (Debian) for the passive deflate check"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcpdump > /dev/null
  CAPTURE=$(command -v tcpdump || true)
fi

rc=0
"$PY" "$IDIR/deflate_interop.py" "$BIN" 2>/dev/null | grep -E '^(ok|FAIL)|passed' || rc=1
(cd "$IDIR" && node deflate_interop.js "$BIN") || rc=1
if [[ -n $CAPTURE ]]; then
  "$PY" "$IDIR/deflate_capture.py" "$BIN" "$CAPTURE" "$TARGET_DIR/deflate-capture" || rc=1
else
  log "FAIL: no packet capture tool (tcpdump/dumpcap) for the passive deflate check"
  rc=1
fi
exit $rc
