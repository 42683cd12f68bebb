#!/usr/bin/env bash
# CPU per /metrics scrape of a running exporter, prechecks and all: the CPU of all of PID's threads
# (/proc/PID/task/*/schedstat) across SCRAPES sequential scrapes, less what the process spent over a
# quiet window of the same length right before (no scrapes: its prechecks), divided by SCRAPES.
# The scrapes come from one curl on one connection, SCRAPE_RATE a second (10 by default: each
# scrape then sees a state that prechecks have changed since the last one, as Prometheus's do;
# 0 sends them back to back). A warm-up of up to 20 scrapes at the same rate goes first.
#
# Usage: scripts/bench/scrape-cpu.sh PID URL [CURL_ARGS...]
#   e.g. scripts/bench/scrape-cpu.sh "$PID" http://127.0.0.1:9977/metrics -H 'Accept-Encoding: gzip'
# Knobs: SCRAPES (100), SCRAPE_RATE (10)
# Prints one line of key=value fields:
#   per_scrape_ms  CPU per scrape, background subtracted
#   scrapes wall_s cpu_ms      the scrapes, their wall time and the process's CPU over it
#   background_ms  the part of cpu_ms charged to prechecks (quiet window's CPU rate × wall_s)
#   quiet_s quiet_ms           the quiet window and the CPU in it
#   body_bytes     bytes of the last body as sent (compressed when asked for gzip)
# and warnings, if any, on stderr. Exits non-zero if a scrape is not answered 200.
set -euo pipefail
export LC_ALL=C
(($# >= 2)) || { echo "usage: $0 PID URL [CURL_ARGS...]" >&2; exit 2; }
pid=$1 url=$2
shift 2
n=${SCRAPES:-100} rate=${SCRAPE_RATE:-10}
((n > 0)) || { echo "SCRAPES must be positive" >&2; exit 2; }

# snap: one "TID NANOSECONDS" line per live thread. cpu_between SNAP0 SNAP1: the ms of CPU between
# them, thread by thread; a thread that exits in between loses only what it ran after SNAP0 (tokio's
# idle blocking threads exit after 10 s without work: nothing), instead of its whole life as a sum
# over the live threads would, and a new thread counts from its start.
snap() {
  local f ns rest
  for f in /proc/"$pid"/task/*/schedstat; do
    { read -r ns rest <"$f"; } 2>/dev/null && f=${f%/schedstat} && echo "${f##*/} $ns"
  done
  true
}
cpu_between() {
  awk 'FNR == NR { a[$1] = $2; next } { d += $2 - (($1 in a) ? a[$1] : 0); seen[$1] = 1 }
    END { for (t in a) if (!(t in seen)) gone++; printf "%.3f %d\n", d / 1e6, gone }' <(echo "$1") <(echo "$2")
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
rate_args=()
((rate > 0)) && rate_args=(--rate "${rate}/s")
cfg=$(mktemp)
trap 'rm -f "$cfg"' EXIT

# scrapes COUNT: COUNT sequential GETs of url on one connection; prints "CODES BYTES", the
# distinct status codes other than 200 (empty when all were 200) and the last body's size.
scrapes() {
  local i
  : >"$cfg"
  for ((i = 0; i < $1; i++)); do printf 'url = "%s"\noutput = "/dev/null"\n' "$url" >>"$cfg"; done
  curl -s "${rate_args[@]}" -K "$cfg" -w '%{http_code} %{size_download}\n' "${@:2}" |
    awk '$1 != 200 && !seen[$1]++ { bad = bad $1 " " } { b = $2 } END { printf "%s|%s\n", bad, b }'
}

warm=$((n < 20 ? n : 20))
t0=$EPOCHREALTIME
res=$(scrapes "$warm" "$@")
t1=$EPOCHREALTIME
[[ ${res%|*} == "" ]] || { echo "scrape-cpu: warm-up scrapes answered ${res%|*}" >&2; exit 1; }
if ((rate > 0)); then
  quiet=$(calc '%.3f' "$n / $rate")
else
  quiet=$(calc '%.3f' "(($t1 - $t0) * $n / $warm < 1) ? 1 : ($t1 - $t0) * $n / $warm")
fi

q0=$EPOCHREALTIME c0=$(snap)
sleep "$quiet"
c1=$(snap) q1=$EPOCHREALTIME
s0=$EPOCHREALTIME c2=$(snap)
res=$(scrapes "$n" "$@")
c3=$(snap) s1=$EPOCHREALTIME
[[ ${res%|*} == "" ]] || { echo "scrape-cpu: scrapes answered ${res%|*}" >&2; exit 1; }

read -r quiet_ms gone_q < <(cpu_between "$c0" "$c1")
read -r cpu gone_s < <(cpu_between "$c2" "$c3")
quiet_s=$(calc '%.3f' "$q1 - $q0") wall_s=$(calc '%.3f' "$s1 - $s0")
bg=$(calc '%.3f' "$quiet_ms / $quiet_s * $wall_s")
echo "per_scrape_ms=$(calc '%.3f' "($cpu - $bg) / $n") scrapes=$n wall_s=$wall_s cpu_ms=$cpu background_ms=$bg quiet_s=$quiet_s quiet_ms=$quiet_ms body_bytes=${res#*|} threads_gone=$((gone_q + gone_s))"
