#!/usr/bin/env bash
# scripts/autobahn.sh - Autobahn TestSuite conformance of wscope, with the PyPI
# runner kosoku (pinned in conformance/requirements.txt, installed into
# conformance/.venv by this script).
#
# Usage: scripts/autobahn.sh [server|client|all]      (default: all)
#
#   server  start `wscope serve --echo` on a free port and run
#           `kosoku -m fuzzingclient` against it
#   client  run `kosoku -m fuzzingserver` and the wscope Autobahn client
#           (crates/wscope/examples/autobahn_client.rs, on the tokio client:
#           getCaseCount, runCase echoing every message with its type,
#           updateReports; agent "wscope")
#
# Each mode summarises the report (conformance/autobahn/check.py), fails on any
# FAILED / UNIMPLEMENTED / ERROR case or closing-handshake verdict that is not
# OK/INFORMATIONAL, and diffs the verdicts against the committed
# conformance/autobahn/expected-{server,client}.json. Exit status 0 only if
# every selected mode passes.
#
# Environment:
#   AUTOBAHN_COMPRESSION=1      include 12.* and 13.* (permessage-deflate);
#                               excluded by default
#   AUTOBAHN_CASES="1.* 9.1.1"  run only these cases (kosoku -i; a partial run
#                               does not report expected cases as missing)
#   AUTOBAHN_UPDATE_EXPECTED=1  rewrite the expected files from this run
#   AUTOBAHN_SERVER_CMD="..."   server under test, the port is appended
#   AUTOBAHN_IO_URING=1         server mode runs `wscope serve --echo --io-uring`
#   AUTOBAHN_AXUM=1             server mode runs the axum-hosted echo instead
#                               (crates/wscope/examples/axum_echo.rs, the
#                               `wscope::axum::WebSocketUpgrade` extractor; --compress
#                               with AUTOBAHN_COMPRESSION=1), against the same
#                               expected-server.json
#                               (default: PROFILE_DIR/wscope serve --echo --port)
#   AUTOBAHN_CLIENT_CMD="..."   client under test, the fuzzing server URL is
#                               appended (default: PROFILE_DIR/examples/autobahn_client)
#   AUTOBAHN_EXPECTED_DIR=dir   where expected-{server,client}.json are
#                               (default conformance/autobahn)
#   AUTOBAHN_OUT=dir            reports (default TARGET_DIR/autobahn)
#   AUTOBAHN_TIMEOUT=600        seconds allowed for one kosoku run
#   PARALLEL=1                  kosoku -p (server mode)
#   AUTOBAHN_SEQUENTIAL=1       `all`: run the two modes one after the other (default: side by
#                               side, one kosoku per core)
#   plus CARGO_TARGET_DIR, WSCOPE_PROFILE (dev|release), SKIP_BUILD, SKIP_INSTALL
#   (see conformance/lib.sh)
set -euo pipefail
source "$(dirname "$0")/../conformance/lib.sh"

MODE=${1:-all}
case "$MODE" in server|client|all) ;; -h|--help) sed -n "2,$(( $(grep -n '^set -euo pipefail' "$0" | cut -d: -f1) - 1 ))p" "$0"; exit 0 ;;
  *) echo "usage: $0 [server|client|all]" >&2; exit 2 ;; esac

OUT=${AUTOBAHN_OUT:-$TARGET_DIR/autobahn}
KOSOKU=$VENV/bin/kosoku
TIMEOUT=${AUTOBAHN_TIMEOUT:-600}
EXPECTED_DIR=${AUTOBAHN_EXPECTED_DIR:-$ROOT/conformance/autobahn}
CHECK=$ROOT/conformance/autobahn/check.py

SEL=()
CHECK_ARGS=()
if [[ "${AUTOBAHN_COMPRESSION:-0}" == 1 ]]; then
  CHECK_ARGS+=(--compression)
else
  SEL+=(-x '12.*' -x '13.*')
fi
if [[ -n "${AUTOBAHN_CASES:-}" ]]; then
  for c in $AUTOBAHN_CASES; do SEL+=(-i "$c"); done
  CHECK_ARGS+=(--partial)
fi
if [[ "${AUTOBAHN_UPDATE_EXPECTED:-0}" == 1 ]]; then CHECK_ARGS+=(--update); fi

PIDS=()
cleanup() { local p; for p in "${PIDS[@]}"; do stop_pid "$p"; done; PIDS=(); }
trap cleanup EXIT INT TERM

# The case groups, one kosoku run each, so that progress shows as each group ends (kosoku
# itself prints nothing until the whole run is over). AUTOBAHN_CASES runs as one group.
if [[ -n "${AUTOBAHN_CASES:-}" ]]; then
  GROUPS_TO_RUN=(selected)
else
  # The long groups by sub-group: 9.* (limits and performance) and the deflate cases.
  GROUPS_TO_RUN=(1 2 3 4 5 6 7 9.1 9.2 9.3 9.4 9.5 9.6 9.7 9.8 10)
  if [[ "${AUTOBAHN_COMPRESSION:-0}" == 1 ]]; then
    GROUPS_TO_RUN+=(12.1 12.2 12.3 12.4 12.5 13.1 13.2 13.3 13.4 13.5 13.6 13.7)
  fi
fi

# group_dir GROUP: the sub-directory of a mode's report for one group.
group_dir() { echo "group-$1"; }

# group_sel GROUP: sets GSEL to the kosoku selection arguments for one group.
group_sel() {
  if [[ $1 == selected ]]; then GSEL=("${SEL[@]}"); else GSEL=(-i "$1.*"); fi
}

# progress MODE GROUP DIR SECONDS STATUS: one line as a group ends.
progress() {
  local summary what="$2.*"
  [[ $2 != selected ]] || what=${AUTOBAHN_CASES:-}
  summary=$(python3 "$CHECK" --brief "$3" 2>/dev/null || echo "no report")
  log "autobahn $1 $what: $summary (${4} s$([[ $5 == 0 ]] || echo ", kosoku exit $5"))"
}

# run_client_group DIR GROUP CLIENT-CMD...: a kosoku fuzzingserver for one group, and the
# client under test against it.
run_client_group() {
  local gdir=$1 group=$2; shift 2
  local port; port=$(free_port)
  local GSEL; group_sel "$group"
  "$KOSOKU" -m fuzzingserver -o "$gdir" "${GSEL[@]}" "127.0.0.1:$port" \
    > "$gdir/kosoku.log" 2>&1 &
  local fs=$!
  PIDS+=("$fs")
  # Ready when it says so on stderr: no probe connection, which the fuzzing server would count
  # as a client of its own (under load, runs that had been probed hung or refused the client).
  local i ready=0
  for i in $(seq 1 600); do
    if grep -q 'fuzzingserver listening' "$gdir/kosoku.log" 2>/dev/null; then ready=1; break; fi
    kill -0 "$fs" 2>/dev/null || break
    sleep 0.05
  done
  if [[ $ready == 0 ]]; then
    log "kosoku fuzzingserver did not start; $gdir/kosoku.log:"; tail -n 20 "$gdir/kosoku.log" >&2
    return 1
  fi
  local rc=0
  timeout "$TIMEOUT" "$@" "ws://127.0.0.1:$port" > "$gdir/client.log" 2>&1 || rc=$?
  # kosoku exits by itself once updateReports has been served and the reports are written.
  local i
  for i in $(seq 1 300); do kill -0 "$fs" 2>/dev/null || break; sleep 0.1; done
  stop_pid "$fs"
  if [[ $rc != 0 ]]; then
    log "the client exited with status $rc; last lines of $gdir/client.log:"
    tail -n 3 "$gdir/client.log" >&2
  fi
  return $rc
}

run_server_mode() {
  local dir=$OUT/server
  rm -rf "$dir"; mkdir -p "$dir"
  local cmd
  if [[ -n "${AUTOBAHN_SERVER_CMD:-}" ]]; then
    read -r -a cmd <<< "$AUTOBAHN_SERVER_CMD"
  elif [[ "${AUTOBAHN_AXUM:-0}" == 1 ]]; then
    cargo_build -p wscope --features axum --example axum_echo
    cmd=("$PROFILE_DIR/examples/axum_echo")
    if [[ "${AUTOBAHN_COMPRESSION:-0}" == 1 ]]; then cmd+=(--compress); fi
    cmd+=(--port)
  else
    cargo_build -p wscope-cli
    cmd=("$PROFILE_DIR/wscope" serve --echo)
    if [[ "${AUTOBAHN_COMPRESSION:-0}" == 1 ]]; then cmd+=(--compress); fi
    if [[ "${AUTOBAHN_IO_URING:-0}" == 1 ]]; then cmd+=(--io-uring); fi
    cmd+=(--port)
  fi
  local port; port=$(free_port)
  log "server mode: ${cmd[*]} $port"
  "${cmd[@]}" "$port" > "$dir/server.log" 2>&1 &
  local srv=$!
  PIDS+=("$srv")
  if ! wait_port "$port" "$srv"; then
    log "server did not start; $dir/server.log:"; tail -n 20 "$dir/server.log" >&2
    return 1
  fi
  local t0=$SECONDS rc=0 group
  for group in "${GROUPS_TO_RUN[@]}"; do
    local g0=$SECONDS gdir=$dir/$(group_dir "$group") grc=0 GSEL
    mkdir -p "$gdir"
    group_sel "$group"
    timeout "$TIMEOUT" "$KOSOKU" -m fuzzingclient -p "${PARALLEL:-1}" -o "$gdir" \
      "${GSEL[@]}" "127.0.0.1:$port" > "$gdir/kosoku.log" 2>&1 || grc=$?
    [[ $grc == 0 ]] || rc=$grc
    progress server "$group" "$gdir" $((SECONDS - g0)) "$grc"
    kill -0 "$srv" 2>/dev/null || break
  done
  local secs=$((SECONDS - t0)) alive=1
  kill -0 "$srv" 2>/dev/null || alive=0
  stop_pid "$srv"
  log "kosoku fuzzingclient exit $rc after ${secs} s"
  local fail=0
  if [[ $alive == 0 ]]; then
    log "FAIL: the server exited during the run; $dir/server.log:"; tail -n 20 "$dir/server.log" >&2; fail=1
  fi
  if grep -q 'panicked' "$dir/server.log"; then
    log "FAIL: the server panicked:"; grep -m5 -A3 'panicked' "$dir/server.log" >&2; fail=1
  fi
  if ! find "$dir" -name index.json | grep -q .; then
    log "FAIL: kosoku wrote no report; $dir/*/kosoku.log:"; tail -n 20 "$dir"/*/kosoku.log >&2
    return 1
  fi
  python3 "$CHECK" "$dir" "$EXPECTED_DIR/expected-server.json" \
    --label "server mode (${cmd[0]##*/}), ${secs} s" "${CHECK_ARGS[@]}" || fail=1
  find "$dir" -name '*.html' ! -name 'index.html' -delete 2>/dev/null || true
  return $fail
}

run_client_mode() {
  local dir=$OUT/client
  rm -rf "$dir"; mkdir -p "$dir"
  local cmd
  if [[ -n "${AUTOBAHN_CLIENT_CMD:-}" ]]; then
    read -r -a cmd <<< "$AUTOBAHN_CLIENT_CMD"
  else
    cargo_build -p wscope --example autobahn_client
    cmd=("$PROFILE_DIR/examples/autobahn_client")
  fi
  local t0=$SECONDS rc=0 group
  log "client mode: ${cmd[*]} ws://127.0.0.1:PORT, one kosoku fuzzingserver per case group"
  for group in "${GROUPS_TO_RUN[@]}"; do
    local g0=$SECONDS gdir=$dir/$(group_dir "$group") grc=0
    mkdir -p "$gdir"
    run_client_group "$gdir" "$group" "${cmd[@]}" || grc=$?
    if [[ $grc != 0 && ! -f $gdir/index.json ]]; then
      # kosoku wrote no report: the run did not get going (seen once under heavy load: the
      # client's first connection to the fuzzing server refused). One more try of the group;
      # a failure that repeats is reported as usual.
      log "autobahn client $group.*: no report (client exit $grc); running the group again"
      rm -rf "$gdir"; mkdir -p "$gdir"; grc=0
      run_client_group "$gdir" "$group" "${cmd[@]}" || grc=$?
    fi
    [[ $grc == 0 ]] || rc=$grc
    progress client "$group" "$gdir" $((SECONDS - g0)) "$grc"
  done
  local secs=$((SECONDS - t0)) fail=0
  log "autobahn client exit $rc after ${secs} s"
  if [[ $rc != 0 ]]; then log "FAIL: the client exited with status $rc"; fail=1; fi
  if cat "$dir"/*/client.log 2>/dev/null | grep -q 'panicked'; then
    log "FAIL: the client panicked:"; cat "$dir"/*/client.log | grep -m5 -A3 'panicked' >&2; fail=1
  fi
  if ! find "$dir" -name index.json | grep -q .; then
    log "FAIL: kosoku wrote no report; $dir/*/kosoku.log:"; tail -n 20 "$dir"/*/kosoku.log >&2
    return 1
  fi
  python3 "$CHECK" "$dir" "$EXPECTED_DIR/expected-client.json" \
    --label "client mode (${cmd[0]##*/}), ${secs} s" "${CHECK_ARGS[@]}" || fail=1
  find "$dir" -name '*.html' ! -name 'index.html' -delete 2>/dev/null || true
  return $fail
}

setup_venv
status=0
if [[ $MODE == all && "${AUTOBAHN_SEQUENTIAL:-0}" != 1 ]]; then
  # kosoku is single-threaded: the two modes side by side use both cores and halve the time.
  # Build first so the two runs do not wait on cargo's lock.
  cargo_build -p wscope-cli
  cargo_build -p wscope --example autobahn_client
  if [[ "${AUTOBAHN_AXUM:-0}" == 1 ]]; then cargo_build -p wscope --features axum --example axum_echo; fi
  mkdir -p "$OUT"
  # Progress lines of both modes interleave as they come; each mode's summary follows at its end.
  # set +e: the mode's status must reach its file (as `run_server_mode || status=1` does in
  # the sequential case), not end the subshell before it is written.
  rm -f "$OUT/server-mode.rc" "$OUT/client-mode.rc"
  (set +e; run_server_mode 2>&1; echo $? > "$OUT/server-mode.rc") | sed -u 's/^/[server] /' &
  server_job=$!
  (set +e; run_client_mode 2>&1; echo $? > "$OUT/client-mode.rc") | sed -u 's/^/[client] /' &
  client_job=$!
  wait "$server_job" "$client_job" || true
  [[ $(cat "$OUT/server-mode.rc" 2>/dev/null) == 0 ]] || status=1
  [[ $(cat "$OUT/client-mode.rc" 2>/dev/null) == 0 ]] || status=1
else
  if [[ $MODE == server || $MODE == all ]]; then run_server_mode || status=1; fi
  if [[ $MODE == client || $MODE == all ]]; then run_client_mode || status=1; fi
fi
cleanup
if [[ $status == 0 ]]; then log "autobahn ($MODE): PASS"; else log "autobahn ($MODE): FAIL"; fi
exit $status
