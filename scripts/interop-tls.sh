#!/usr/bin/env bash
# Passive wss://: Python `websockets` and Node `ws` (pinned in conformance/requirements.txt and
# conformance/interop/package-lock.json) talk over TLS 1.2 and 1.3 on loopback, once per cipher
# suite (the three TLS 1.3 suites; ECDHE-RSA with AES-128-GCM, AES-256-GCM and
# ChaCha20-Poly1305), permessage-deflate on and off, a 1 MiB message each way and a ping between
# fragments, writing their key logs (SSLKEYLOGFILE, node --tls-keylog) while tcpdump records.
# `wscope inspect --keylog` must give back every message by SHA-256, see the same frames as
# tshark (-o tls.keylog_file:), report the connection as tls_undecrypted without keys, and
# read the keys of a pcapng Decryption Secrets Block made with `editcap --inject-secrets`.
# See conformance/interop/tls_capture.py. tcpdump, tshark and editcap come from
# scripts/setup.sh; without tshark/editcap those two comparisons are skipped (said so).
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
  log "FAIL: tcpdump is needed for the passive TLS check (bash scripts/setup.sh installs it)"
  exit 1
fi
command -v tshark > /dev/null || log "tshark missing: the comparison with tshark is skipped"
command -v editcap > /dev/null || log "editcap missing: the Decryption Secrets Block check is skipped"
cd "$IDIR"
"$PY" tls_capture.py "$BIN" "$CAPTURE" "$TARGET_DIR/tls-capture"
