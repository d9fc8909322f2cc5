#!/usr/bin/env bash
# permessage-deflate (RFC 7692) interop with Python `websockets` and Node `ws` (pinned in
# conformance/requirements.txt and conformance/interop/package-lock.json), both ways:
# their clients offering each parameter combination to `wscope serve --echo --compress`, and
# `wscope connect --compress` against their compressing servers configured with each
# combination (context takeover on/off, reduced window bits). See
# conformance/interop/deflate_interop.{py,js}. Then the passive side: traffic between two
# Python peers and between two Node peers, captured on loopback with tcpdump (installed by
# scripts/setup.sh) and analysed by `wscope inspect`, which must inflate every message of each
# parameter combination (conformance/interop/deflate_capture.py,
# conformance/interop/deflate_exchange.js). A capture that comes out incomplete is taken again
# and never counted against wscope (see deflate_capture.py).
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

rc=0
"$PY" "$IDIR/deflate_interop.py" "$BIN" 2>/dev/null | grep -E '^(ok|FAIL)|passed' || rc=1
(cd "$IDIR" && node deflate_interop.js "$BIN") || rc=1
if [[ -n $CAPTURE ]]; then
  "$PY" "$IDIR/deflate_capture.py" "$BIN" "$CAPTURE" "$TARGET_DIR/deflate-capture" || rc=1
else
  log "FAIL: tcpdump is needed for the passive deflate check (bash scripts/setup.sh installs it)"
  rc=1
fi
exit $rc
