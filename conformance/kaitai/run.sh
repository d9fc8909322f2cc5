#!/usr/bin/env bash
# Differential test of `wscope parse --json` against the Kaitai Struct parser of seed 002.
#
#   bash conformance/kaitai/run.sh [--cases N] [--seed S] [--keep DIR]
#
# 1. builds `wscope` (CARGO_TARGET_DIR / WSCOPE_PROFILE / SKIP_BUILD as in conformance/lib.sh);
# 2. creates conformance/kaitai/.venv (gitignored) with the pinned kaitaistruct;
# 3. extracts the generated Python parser from ../shared/seeds/002_*.txt into
#    conformance/kaitai/work/ (gitignored; the parser is never committed) and checks its shape;
# 4. runs diff.py: generated frame files (deterministic seed) parsed by both, compared field by
#    field where the Kaitai spec is right, and the documented differences asserted where it is
#    wrong (docs/kaitai-differences.md).
# KAITAI_SEED_FILE overrides the seed path.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

HERE=$ROOT/conformance/kaitai
KVENV=$HERE/.venv
KPY=$KVENV/bin/python
WORK=$HERE/work

seed=${KAITAI_SEED_FILE:-}
if [[ -z $seed ]]; then
  for f in "$ROOT"/../shared/seeds/002_*.txt; do seed=$f; break; done
fi
if [[ -z $seed || ! -f $seed ]]; then
  echo "kaitai: seed 002 not found (expected ../shared/seeds/002_*.txt beside the repository)" >&2
  exit 1
fi

cargo_build -p wscope-cli --bin wscope

if [[ ! -x $KPY ]]; then
  log "creating $KVENV"
  python3 -m venv "$KVENV"
fi
stamp=$KVENV/.requirements.installed
if [[ "${SKIP_INSTALL:-0}" != 1 ]] && { [[ ! -f $stamp ]] || ! cmp -s "$HERE/requirements.txt" "$stamp"; }; then
  log "pip install -r conformance/kaitai/requirements.txt"
  "$KPY" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  cp "$HERE/requirements.txt" "$stamp"
fi

mkdir -p "$WORK"
log "extracting the Kaitai parser from $(basename "$seed")"
"$KPY" "$HERE/extract.py" "$seed" "$WORK/websocket_seed.py"

log "differential run"
"$KPY" "$HERE/diff.py" "$WORK/websocket_seed.py" "$PROFILE_DIR/wscope" "$@"
