#!/usr/bin/env bash
# Parallel analysis: alternating runs of `wscope inspect` with several worker counts on one
# capture, optionally against tshark in the same minutes (issue 18's two speed goals).
#
#   bench/workers.sh BIN CAPTURE [ROUNDS] [WORKERS ...] [-- extra inspect args]
#
# Each round runs BIN with `inspect -q --uid-seed 1 --workers N -o DIR CAPTURE` for every N
# (default: 1 2), in turn, under /usr/bin/time, and prints one line per run: workers, wall
# seconds, user+sys seconds, peak RSS in KiB. Then the medians per worker count and each
# count's speedup over the first count's median wall time.
#
#   EVENTS=1   the full job: `-o DIR --events FILE` (the events file in the temporary folder,
#              so on the same file system as $TMPDIR)
#   TSHARK=1   tshark -r CAPTURE -Y websocket -T fields (time, opcode, payload length) into a
#              file, once before the rounds and once after; the speedups over its median too
#   WARM=1     each timed run follows an untimed run of the same worker count (for EVENTS=1
#              on a VM with free page reporting: a run whose output's page cache is allocated
#              right after another configuration's output was freed can pay several times the
#              kernel time for its writes; see BENCHMARKS.md, "Parallel analysis")
#
# Outputs go to a temporary folder that is removed at the end. Stdlib tools only (bash, awk,
# sort) and tshark for TSHARK=1. See BENCHMARKS.md, "Parallel analysis", for the method: a
# quiet machine, the capture in the page cache, and medians of several rounds.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  sed -n '2,23p' "$0" >&2
  exit 2
fi
bin=$1 capture=$2
shift 2
rounds=5
if [[ $# -gt 0 && $1 != -- ]]; then rounds=$1; shift; fi
workers=()
while [[ $# -gt 0 && $1 != -- ]]; do workers+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
extra=("$@")
[[ ${#workers[@]} -gt 0 ]] || workers=(1 2)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cpu() { awk -v u="$1" -v s="$2" 'BEGIN{print u + s}'; }

run() { # workers [quiet]
  local n=$1 args=(-q --uid-seed 1 --workers "$1" -o "$tmp/out")
  rm -rf "$tmp/out" "$tmp/events.json"
  if [[ ${EVENTS:-0} == 1 ]]; then args+=(--events "$tmp/events.json"); fi
  /usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$bin" inspect "${args[@]}" "${extra[@]}" \
    "$capture" > /dev/null 2> "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  read -r wall user sys rss < "$tmp/time"
  [[ -n ${2:-} ]] && return
  printf 'workers=%-3s %7.3f %7.3f %8d\n' "$n" "$wall" "$(cpu "$user" "$sys")" "$rss"
}

tshark_run() {
  /usr/bin/time -f '%e %U %S %M' -o "$tmp/time" tshark -r "$capture" -Y websocket -T fields \
    -e frame.time_epoch -e websocket.opcode -e websocket.payload_length > "$tmp/tshark.out" \
    2> "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  rm -f "$tmp/tshark.out"
  read -r wall user sys rss < "$tmp/time"
  printf 'tshark      %7.3f %7.3f %8d\n' "$wall" "$(cpu "$user" "$sys")" "$rss"
}

echo "run         wall_s   cpu_s  rss_kib"
{
  if [[ ${TSHARK:-0} == 1 ]]; then tshark_run; fi
  for ((i = 1; i <= rounds; i++)); do
    for n in "${workers[@]}"; do
      if [[ ${WARM:-0} == 1 ]]; then run "$n" quiet; fi
      run "$n"
    done
  done
  if [[ ${TSHARK:-0} == 1 ]]; then tshark_run; fi
} | tee "$tmp/lines"

med() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "medians (wall_s cpu_s rss_kib):"
labels=()
for n in "${workers[@]}"; do labels+=("workers=$n"); done
if [[ ${TSHARK:-0} == 1 ]]; then labels+=(tshark); fi
for label in "${labels[@]}"; do
  awk -v l="$label" '$1 == l' "$tmp/lines" > "$tmp/sel"
  printf '%-11s %s %s %s\n' "$label" "$(awk '{print $2}' "$tmp/sel" | med)" \
    "$(awk '{print $3}' "$tmp/sel" | med)" "$(awk '{print $4}' "$tmp/sel" | med)"
done | tee "$tmp/med"
awk -v first="workers=${workers[0]}" '
  { w[$1] = $2; order[NR] = $1 }
  END {
    for (i = 1; i <= NR; i++) {
      l = order[i]
      if (l == "tshark") continue
      if (l != first && w[l] > 0) printf "%s: %.2fx as fast as %s\n", l, w[first] / w[l], first
      if (w[l] <= 0) continue
      if ("tshark" in w) printf "%s: %.1fx faster than tshark (medians)\n", l, w["tshark"] / w[l]
    }
  }' "$tmp/med"
