#!/usr/bin/env bash
# Side-by-side comparison of two or more exporter binaries (A/B), run alternately in one session
# so they see the same machine. For checking one change at a time; scripts/bench/bench.sh is the full
# run against the targets and the peers.
#
# Usage: scripts/bench/ab.sh BIN_A BIN_B [BIN...]
#   e.g. git worktree add /tmp/old HEAD~1 && (cd /tmp/old && cargo build --release)
#        scripts/bench/ab.sh /tmp/old/target/release/cdss-precheck-exporter target/release/cdss-precheck-exporter
# Knobs: ROUNDS (2), WRK_SECONDS (5), CPU_SECONDS (60), STARTUP_RUNS (7), PORT_BASE (19300),
#        SCRAPES (100) and SCRAPE_RATE (10 a second) for scrape-cpu.sh,
#        TESTS (a subset of "mem tput cpu floor scrape startup", in that order by default),
#        SIM_BIN and FLOOR_BIN (cdss-sim and examples/precheck_floor binaries to use instead of
#        building this tree's)
# Per binary and round it prints:
#   mem:     VmHWM at 10,000 clusters (gateway answering in 5 ms) at start, after the first round,
#            after one plain and one gzip scrape, and after wrk -c16 on /metrics (issue 23's
#            target: at most 128 MiB);
#   tput:    /metrics req/s and p99 at 1,000 clusters every 10 s, wrk -c16, and VmHWM after it
#            (informational: Prometheus scrapes once every 15-60 s);
#   cpu:     CPU per precheck at 1,000 clusters every 10 s (all threads' schedstat, no scrapes;
#            issue 23: no worse than the previous build);
#   floor:   once a round, beside them: CPU per answer of examples/precheck_floor.rs (the same
#            requests on the same schedule with bare hyper, nothing else), the same window;
#   scrape:  CPU per /metrics scrape at 1,000 clusters every 10 s, plain and gzip, prechecks
#            running (scripts/bench/scrape-cpu.sh: sequential scrapes less a quiet window of the
#            same length; issue 23: at most 10 ms), and VmHWM after them (issue 23: at most 24 MiB);
#   startup: ms from launch to the first /metrics answer at 10,000 clusters (gateway 50 ms).
# Everything listens on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
export LC_ALL=C
(($# >= 2)) || { echo "usage: $0 BIN_A BIN_B [BIN...]" >&2; exit 2; }
ROUNDS=${ROUNDS:-2} WRK_SECONDS=${WRK_SECONDS:-5} CPU_SECONDS=${CPU_SECONDS:-60}
STARTUP_RUNS=${STARTUP_RUNS:-7} PORT_BASE=${PORT_BASE:-19300}
P_SIM=$PORT_BASE P_SIM50=$((PORT_BASE + 1)) P_EXP=$((PORT_BASE + 2))
export NCLOUD_ACCESS_KEY=DEMO-ACCESS-KEY NCLOUD_SECRET_KEY=demo-secret-key-for-the-simulated-gateway
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v curl >/dev/null || need_apt+=(curl)
if ((${#need_apt[@]})); then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
OUT=$(mktemp -d)
if [[ -z ${SIM_BIN:-} || -z ${FLOOR_BIN:-} ]]; then
  cargo build --release --locked --bin cdss-sim --example precheck_floor 2>&1 | tail -1
fi
SIM_BIN=${SIM_BIN:-target/release/cdss-sim} FLOOR_BIN=${FLOOR_BIN:-target/release/examples/precheck_floor}
"$SIM_BIN" --listen "127.0.0.1:$P_SIM" --count 10000 --delay 5ms >/dev/null 2>&1 &
SIM=$!
"$SIM_BIN" --listen "127.0.0.1:$P_SIM50" --count 10000 --delay 50ms >/dev/null 2>&1 &
SIM50=$!
trap 'kill $SIM $SIM50 ${PID:-} 2>/dev/null; rm -rf "$OUT"' EXIT
sleep 0.3
scripts/bench/gen-config.sh 10000 "http://127.0.0.1:$P_SIM" 60s 16 >"$OUT/mem.yaml"
scripts/bench/gen-config.sh 1000 "http://127.0.0.1:$P_SIM" 10s 16 | sed 's/^timeout: .*/timeout: 5s/' >"$OUT/1k.yaml"
scripts/bench/gen-config.sh 10000 "http://127.0.0.1:$P_SIM50" 60s 16 >"$OUT/startup.yaml"
URL="http://127.0.0.1:$P_EXP/metrics"

hwm() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
cpu_ms() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.3f", s / 1e6 }'; }
runs() { curl -s "$URL" | awk 'index($0, "cdss_precheck_runs_total{") == 1 { s += $NF } END { printf "%d", s }'; }
launch() { "$1" --config.file "$2" --web.listen-address "127.0.0.1:$P_EXP" >/dev/null 2>&1 & PID=$!; }
finish() { kill "$PID"; wait "$PID" 2>/dev/null || true; }
ready() { until curl -sf -o /dev/null "http://127.0.0.1:$P_EXP/-/ready"; do sleep 0.2; done; }
wrk_line() { wrk -t2 -c16 -d"${WRK_SECONDS}s" --latency "$URL" | awk '/^Requests\/sec/ { r = $2 } $1 == "99%" { p = $2 } END { printf "%s req/s, p99 %s", r, p }'; }

mem() {
  local line
  launch "$1" "$OUT/mem.yaml"
  sleep 0.2
  line="start $(hwm "$PID")"
  ready
  line+=", ready $(hwm "$PID")"
  curl -s "$URL" -o /dev/null
  curl -s -H 'Accept-Encoding: gzip' "$URL" -o /dev/null
  line+=", scraped $(hwm "$PID")"
  line+=", wrk ($(wrk_line)) $(hwm "$PID") MiB"
  finish
  echo "  mem     $1: $line"
}

tput() {
  launch "$1" "$OUT/1k.yaml"
  ready
  echo "  tput    $1: $(wrk_line), VmHWM $(hwm "$PID") MiB"
  finish
}

cpu() {
  local r0 r1 c0 c1
  launch "$1" "$OUT/1k.yaml"
  ready
  sleep 2
  r0=$(runs) c0=$(cpu_ms "$PID")
  sleep "$CPU_SECONDS"
  c1=$(cpu_ms "$PID") r1=$(runs)
  finish
  echo "  cpu     $1: $((r1 - r0)) prechecks, $(awk "BEGIN { printf \"%.4f\", ($c1 - $c0) / ($r1 - $r0) }") ms CPU each"
}

floor() {
  local f0 f1 c0 c1 fp
  "$FLOOR_BIN" "127.0.0.1:$P_SIM" 1000 10 16 >"$OUT/floor.log" 2>&1 &
  fp=$!
  sleep 4
  f0=$(tail -1 "$OUT/floor.log") c0=$(cpu_ms "$fp")
  sleep "$CPU_SECONDS"
  c1=$(cpu_ms "$fp") f1=$(tail -1 "$OUT/floor.log")
  kill "$fp"
  wait "$fp" 2>/dev/null || true
  echo "  floor   precheck_floor: $((f1 - f0)) answers, $(awk "BEGIN { printf \"%.4f\", ($c1 - $c0) / ($f1 - $f0) }") ms CPU each"
}

scrape() {
  local plain gz
  launch "$1" "$OUT/1k.yaml"
  ready
  sleep 2
  plain=$(scripts/bench/scrape-cpu.sh "$PID" "$URL")
  gz=$(scripts/bench/scrape-cpu.sh "$PID" "$URL" -H 'Accept-Encoding: gzip')
  echo "  scrape  $1: plain $(scrape_line "$plain"); gzip $(scrape_line "$gz"); VmHWM $(hwm "$PID") MiB"
  finish
}
# scrape_line "KEY=VALUE ...": scrape-cpu.sh's line, shortened.
scrape_line() {
  awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } }
    END { printf "%s ms CPU each (%d in %.1f s: %.1f ms CPU less %.1f ms of prechecks; %d bytes)",
      f["per_scrape_ms"], f["scrapes"], f["wall_s"], f["cpu_ms"], f["background_ms"], f["body_bytes"] }' <<<"$1"
}

startup() {
  local t0 t1 line sl times=()
  for ((i = 0; i < STARTUP_RUNS; i++)); do
    exec {sl}<> <(:)
    t0=$EPOCHREALTIME
    launch "$1" "$OUT/startup.yaml"
    while :; do
      if { printf 'GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n' >&3 && IFS= read -r line <&3 &&
        t1=$EPOCHREALTIME && cat <&3 >/dev/null; } 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$P_EXP"; then
        break
      fi
      read -rt 0.0005 -u "$sl" || true
    done
    exec {sl}<&-
    finish
    [[ $line == *" 200 "* ]] || { echo "first answer: $line" >&2; exit 1; }
    times+=("$(awk "BEGIN { printf \"%.1f\", ($t1 - $t0) * 1000 }")")
  done
  echo "  startup $1: median $(printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }') ms (${times[*]})"
}

echo "load: $(uptime | sed 's/.*load average/load average/')"
for ((round = 1; round <= ROUNDS; round++)); do
  echo "round $round"
  for test in ${TESTS:-mem tput cpu floor scrape startup}; do
    if [[ $test == floor ]]; then floor; else for bin in "$@"; do "$test" "$bin"; done; fi
  done
done
echo "load: $(uptime | sed 's/.*load average/load average/')"
