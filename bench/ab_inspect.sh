#!/usr/bin/env bash
# Alternating before/after runs of the analyzer on one capture: judges a code change by
# runs interleaved in the same minutes (before, after, before, ...), never by two separate runs.
#
#   bench/ab_inspect.sh BEFORE_BIN AFTER_BIN CAPTURE [ROUNDS] [-- extra inspect args]
#
# Each round runs both binaries with `inspect -q CAPTURE` and with `inspect -o DIR CAPTURE`
# (Zeek logs written), under /usr/bin/time, and prints one line per run: label, mode, wall
# seconds, user+sys seconds, peak RSS in KiB. The last lines are the medians per label and
# mode, and after/before ratios of the median wall time. Outputs go to a temporary folder that
# is removed at the end. Stdlib tools only (bash, awk, sort).
set -euo pipefail

if [[ $# -lt 3 ]]; then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
before=$1 after=$2 capture=$3 rounds=${4:-5}
shift $(( $# >= 4 ? 4 : 3 ))
[[ ${1:-} == -- ]] && shift
extra=("$@")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() { # label bin mode
  local label=$1 bin=$2 mode=$3 args=()
  case $mode in
    q) args=(-q) ;;
    o) rm -rf "$tmp/out"; args=(-q -o "$tmp/out") ;;
  esac
  /usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$bin" inspect "${args[@]}" "${extra[@]}" \
    "$capture" > /dev/null 2> "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  read -r wall user sys rss < "$tmp/time"
  printf '%-7s %s %7.3f %7.3f %8d\n' "$label" "$mode" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}')" "$rss"
}

echo "label   mode  wall_s   cpu_s  rss_kib"
for ((i = 1; i <= rounds; i++)); do
  for mode in q o; do
    run before "$before" $mode
    run after "$after" $mode
  done
done | tee "$tmp/lines"

echo "medians (wall_s cpu_s rss_kib):"
for mode in q o; do
  for label in before after; do
    awk -v l=$label -v m=$mode '$1 == l && $2 == m' "$tmp/lines" > "$tmp/sel"
    med() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
    printf '%-7s %s %s %s %s\n' $label $mode "$(awk '{print $3}' "$tmp/sel" | med)" \
      "$(awk '{print $4}' "$tmp/sel" | med)" "$(awk '{print $5}' "$tmp/sel" | med)"
  done
done | tee "$tmp/med"
for mode in q o; do
  awk -v m=$mode '$2 == m {w[$1] = $3} END {printf "after/before wall (%s): %.3f\n", m, w["after"] / w["before"]}' "$tmp/med"
done
