#!/usr/bin/env bash
# The flakiness check: the steps that depend on timing (interop with the Python and Node peers,
# the passive permessage-deflate capture) run N times in a row (default 10) while a CPU hog
# keeps every core busy, as on a loaded CI machine. Any failed round fails the check.
#
#   bash scripts/flaky-check.sh [N] [STEP...]     (default steps: interop)
#
# The hog is `stress-ng --cpu NPROC` when stress-ng is installed (Debian package stress-ng),
# otherwise one busy shell loop per core. Rounds reuse the release build (SKIP_BUILD after the
# first) and the installed peers; the binaries are those of the test command (dev profile). Logs: target/flaky-check/round-K.log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${1:-10}
shift || true
STEPS=("$@")
[[ ${#STEPS[@]} -gt 0 ]] || STEPS=(interop)
LOGS=target/flaky-check
mkdir -p "$LOGS"

HOG=()
cleanup() { local p; for p in "${HOG[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM
cores=$(nproc)
if command -v stress-ng > /dev/null; then
  stress-ng --cpu "$cores" --quiet & HOG+=($!)
else
  for _ in $(seq 1 "$cores"); do (while :; do :; done) & HOG+=($!); done
fi
echo "flaky-check: ${STEPS[*]} x $ROUNDS with $cores cores kept busy"

export SKIP_SETUP=1
passed=0
for k in $(seq 1 "$ROUNDS"); do
  start=$SECONDS
  if bash scripts/test-all.sh "${STEPS[@]}" > "$LOGS/round-$k.log" 2>&1; then
    passed=$((passed + 1))
    echo "round $k: ok ($((SECONDS - start)) s)"
  else
    echo "round $k: FAILED ($((SECONDS - start)) s): $LOGS/round-$k.log"
    grep -E '^(FAIL|     .*incomplete)|FAILED' "$LOGS/round-$k.log" | head -n 20 || true
  fi
  export SKIP_BUILD=1
done
echo "flaky-check: $passed of $ROUNDS rounds passed"
[[ $passed == "$ROUNDS" ]]
