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

cpu_ms() { cat /proc/"$pid"/task/*/schedstat | awk '{ s += $1 } END { printf "%.3f", s / 1e6 }'; }
threads() { ls /proc/"$pid"/task | sort | tr '\n' ' '; }
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

t_before=$(threads)
q0=$EPOCHREALTIME c0=$(cpu_ms)
sleep "$quiet"
c1=$(cpu_ms) q1=$EPOCHREALTIME
s0=$EPOCHREALTIME c2=$(cpu_ms)
res=$(scrapes "$n" "$@")
c3=$(cpu_ms) s1=$EPOCHREALTIME
[[ ${res%|*} == "" ]] || { echo "scrape-cpu: scrapes answered ${res%|*}" >&2; exit 1; }
[[ $(threads) == "$t_before" ]] || echo "scrape-cpu: warning: pid $pid's threads changed during the windows; CPU may be under-counted" >&2

quiet_s=$(calc '%.3f' "$q1 - $q0") quiet_ms=$(calc '%.3f' "$c1 - $c0")
wall_s=$(calc '%.3f' "$s1 - $s0") cpu=$(calc '%.3f' "$c3 - $c2")
bg=$(calc '%.3f' "$quiet_ms / $quiet_s * $wall_s")
echo "per_scrape_ms=$(calc '%.3f' "($cpu - $bg) / $n") scrapes=$n wall_s=$wall_s cpu_ms=$cpu background_ms=$bg quiet_s=$quiet_s quiet_ms=$quiet_ms body_bytes=${res#*|}"
