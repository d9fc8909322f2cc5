# conformance/lib.sh - helpers shared by scripts/autobahn.sh and scripts/interop.sh.
# Sourced, not run. Sets ROOT, TARGET_DIR, PROFILE_DIR, VENV, PY.
#
# Environment:
#   CARGO_TARGET_DIR   where cargo builds (default ROOT/target)
#   WSCOPE_PROFILE     cargo profile for the binaries under test: dev (default;
#                      debug assertions and overflow checks on) or release
#   SKIP_BUILD=1       use the binaries already built
#   SKIP_INSTALL=1     do not run pip / npm (use what is installed)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "${WSCOPE_PROFILE:-dev}" in
  dev|debug) CARGO_PROFILE_ARGS=(); PROFILE_DIR=$TARGET_DIR/debug ;;
  release)   CARGO_PROFILE_ARGS=(--release); PROFILE_DIR=$TARGET_DIR/release ;;
  *) echo "WSCOPE_PROFILE must be dev or release" >&2; exit 2 ;;
esac
VENV=$ROOT/conformance/.venv
PY=$VENV/bin/python

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# Python venv with the pinned peers (kosoku, websockets).
setup_venv() {
  if [[ "${SKIP_INSTALL:-0}" == 1 && -x $PY ]]; then return 0; fi
  if [[ ! -x $PY ]]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
  fi
  local req=$ROOT/conformance/requirements.txt stamp=$VENV/.requirements.installed
  if [[ ! -f $stamp ]] || ! cmp -s "$req" "$stamp"; then
    log "pip install -r conformance/requirements.txt"
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
  fi
}

# The Node peers (ws, pinned in conformance/interop/package-lock.json) in
# conformance/interop/node_modules, installed again when the lock file changes.
setup_node() {
  local idir=$ROOT/conformance/interop
  if [[ "${SKIP_INSTALL:-0}" == 1 && -d $idir/node_modules/ws ]]; then return 0; fi
  local stamp=$idir/node_modules/.package-lock.installed
  if [[ ! -f $stamp ]] || ! cmp -s "$idir/package-lock.json" "$stamp"; then
    log "npm ci (conformance/interop)"
    (cd "$idir" && npm ci --no-audit --no-fund --silent)
    cp "$idir/package-lock.json" "$stamp"
  fi
}

# cargo build PACKAGE-ARGS... with the selected profile.
cargo_build() {
  if [[ "${SKIP_BUILD:-0}" == 1 ]]; then return 0; fi
  log "cargo build ${CARGO_PROFILE_ARGS[*]} $*"
  (cd "$ROOT" && CARGO_TARGET_DIR=$TARGET_DIR cargo build --quiet "${CARGO_PROFILE_ARGS[@]}" "$@")
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT [PID]: until 127.0.0.1:PORT accepts (10 s); fails early if PID died.
wait_port() {
  local port=$1 pid=${2:-} i
  for i in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.05
  done
  return 1
}

# stop_pid PID: TERM, wait up to 5 s, then KILL.
stop_pid() {
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
