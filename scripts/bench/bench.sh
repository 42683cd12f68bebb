#!/usr/bin/env bash
# Whole-process benchmarks of the release build, side by side in one run (issue 6's targets, with
# issue 23's for /metrics and memory):
#   1. the simulated gateway's own headroom (wrk with signed POSTs straight at cdss-sim);
#   2. start-up to the first /metrics answer, at 1,000 and 10,000 clusters;
#   3. 1,000 clusters every 10 s: CPU per /metrics scrape, plain and gzip, while prechecks run
#      (scripts/bench/scrape-cpu.sh: sequential scrapes less a quiet window of the same length),
#      /metrics under wrk -c16 against the "limit" (examples/static_server.rs serving the same
#      bytes; informational), CPU per precheck against its floor (examples/precheck_floor.rs: the
#      same requests on the same schedule, nothing else), peak RSS;
#   4. the Python peer (scripts/bench/python_peer.py) in the same setup, when python3 has
#      prometheus_client and requests;
#   5. blackbox_exporter's HTTP POST probe, when prometheus-blackbox-exporter is installed;
#   6. scale: 10,000 clusters every 60 s against a gateway answering in 50 ms: every cluster
#      checked every round, spread of start times, no round missed, peak RSS, gateway CPU;
#   7. degraded: 300 clusters every 20 s, concurrency 4, a third hang until the 5 s timeout: how
#      fresh the healthy clusters stay, and the request rate to the gateway.
# The gateway of 1, 3, 4, 5 and 7 answers in 20-80 ms, a different time for each request, as NCP's
# would (cdss-sim --delay 20ms --jitter 60ms): answers that all arrive at once from loopback would
# flatter the CPU figure. Section 1 measures a gateway without delay.
# Everything listens on 127.0.0.1 only. Results: $OUT/results.md (a table) and $OUT/*.log.
#
# Usage: scripts/bench/bench.sh            (about 10 minutes)
#        QUICK=1 scripts/bench/bench.sh    (shorter windows, for trying the script out; noisier)
# Knobs: WRK_SECONDS CPU_SECONDS SCALE_WINDOW STARTUP_RUNS PORT_BASE OUT, and SCRAPES SCRAPE_RATE
# for scrape-cpu.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export LC_ALL=C

if [[ -n "${QUICK:-}" ]]; then
  : "${WRK_SECONDS:=5}" "${CPU_SECONDS:=20}" "${SCALE_WINDOW:=60}" "${STARTUP_RUNS:=3}"
fi
WRK_SECONDS=${WRK_SECONDS:-10}     # each wrk run
CPU_SECONDS=${CPU_SECONDS:-60}     # window for CPU per precheck (no scrapes inside it)
SCALE_WINDOW=${SCALE_WINDOW:-120}  # scale test: window after warm-up, a whole number of intervals
STARTUP_RUNS=${STARTUP_RUNS:-5}
PORT_BASE=${PORT_BASE:-19100}
OUT=${OUT:-target/bench}
N_SMALL=1000 N_LARGE=10000
SMALL_INTERVAL=10 LARGE_INTERVAL=60
mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/results.md

P_SIM=$PORT_BASE P_SIM50=$((PORT_BASE + 1)) P_EXP=$((PORT_BASE + 2)) P_STATIC=$((PORT_BASE + 3))
P_PY=$((PORT_BASE + 4)) P_BB=$((PORT_BASE + 5)) P_SIM0=$((PORT_BASE + 6))
P_DEG=$((PORT_BASE + 7)) P_EXPD=$((PORT_BASE + 8))
DEG_WINDOW=${DEG_WINDOW:-120}  # degraded scenario: window after one interval of warm-up
AK=DEMO-ACCESS-KEY
SK=demo-secret-key-for-the-simulated-gateway
export NCLOUD_ACCESS_KEY=$AK NCLOUD_SECRET_KEY=$SK
EXPORTER=target/release/cdss-precheck-exporter
SIM=target/release/cdss-sim
STATIC=target/release/examples/static_server
FLOOR=target/release/examples/precheck_floor

# ---------------------------------------------------------------- tools and build
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
[[ -x /usr/bin/time ]] || need_apt+=(time)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
if ((${#need_apt[@]})); then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
cargo build --release --locked --bins --example static_server --example precheck_floor 2>&1 | tail -1

# ---------------------------------------------------------------- helpers
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

say() { printf '%s\n' "$*" >&2; }
row() { printf '%s\n' "$*" >>"$OUT/results.md"; }
now() { printf '%s' "$EPOCHREALTIME"; }
calc() { awk "BEGIN { printf \"$1\n\", $2 }"; }

# start NAME CMD...: background process, output to $OUT/NAME.log; its pid in $LAST_PID.
start() {
  local name=$1
  shift
  "$@" >"$OUT/$name.log" 2>&1 &
  LAST_PID=$!
  pids+=("$LAST_PID")
}

# timed NAME CMD...: like start, under /usr/bin/time -v; $LAST_PID is the measured process.
timed() {
  local name=$1 tp i
  shift
  /usr/bin/time -v -o "$OUT/$name.time" "$@" >"$OUT/$name.log" 2>&1 &
  tp=$!
  pids+=("$tp")
  for ((i = 0; i < 200; i++)); do
    LAST_PID=$(pgrep -P "$tp" | head -1) && [[ -n $LAST_PID ]] && break
    sleep 0.01
  done
  pids+=("$LAST_PID")
}

# stop PID: SIGTERM and wait (so /usr/bin/time writes its report).
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  while kill -0 "$1" 2>/dev/null; do sleep 0.05; done
  sleep 0.2
}

wait_http() {
  local i
  for ((i = 0; i < 600; i++)); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.05
  done
  say "no answer from $1"
  return 1
}

# cpu_ms PID: CPU time of every thread of PID in ms, from /proc/PID/task/*/schedstat (nanoseconds;
# utime+stime in /proc/PID/stat count 10 ms ticks, too coarse for a 60 s window of ~0.1 ms
# prechecks). Threads that exit between two readings would be missed: cpu_window warns then.
cpu_ms() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%.3f\n", s / 1e6 }'; }
threads() { ls /proc/"$1"/task | sort | tr '\n' ' '; }
# cpu_per_precheck URL PID SECONDS: CPU per precheck of PID (ms) over a window of SECONDS, from the
# rise of sum(cdss_precheck_runs_total) at URL. Sets PER_PRECHECK and PRECHECKS; logs both.
cpu_per_precheck() {
  local r0 r1
  r0=$(metric_sum "$1" cdss_precheck_runs_total)
  cpu_begin "$2"
  sleep "$3"
  cpu_end "$2"
  r1=$(metric_sum "$1" cdss_precheck_runs_total)
  PRECHECKS=$((r1 - r0))
  PER_PRECHECK=$(calc '%.4f' "$CPU_MS / $PRECHECKS")
  say "  $PRECHECKS prechecks, $CPU_MS ms CPU: $PER_PRECHECK ms each"
}
# cpu_begin PID / cpu_end PID: sets CPU_MS, the CPU used in between.
cpu_begin() { CPU_T0=$(threads "$1") CPU_C0=$(cpu_ms "$1"); }
cpu_end() {
  local c1
  c1=$(cpu_ms "$1")
  CPU_MS=$(calc '%.3f' "$c1 - $CPU_C0")
  [[ $(threads "$1") == "$CPU_T0" ]] || say "  warning: pid $1's threads changed during the CPU window; CPU may be under-counted"
}
hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
time_rss_kb() { awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"; }
mib() { calc '%.1f' "$1 / 1024"; }

# metric_sum URL NAME: sum of every sample of NAME (e.g. runs over all clusters).
metric_sum() {
  curl -s "$1" | awk -v n="$2" 'index($0, n "{") == 1 { s += $NF } END { printf "%d\n", s }'
}

wait_runs() { # URL TARGET: until the sum of runs_total reaches TARGET
  local i
  for ((i = 0; i < 1200; i++)); do
    (($(metric_sum "$1" cdss_precheck_runs_total) >= $2)) && return 0
    sleep 0.25
  done
  say "runs_total at $1 never reached $2"
  return 1
}

# wrk_run NAME URL [ARGS...]: sets RPS, P99 (ms), REQS, ERRS; log in $OUT/wrk-NAME.log.
wrk_run() {
  local name=$1 url=$2
  shift 2
  wrk -t2 -c16 -d"${WRK_SECONDS}s" --timeout 10s --latency "$@" "$url" >"$OUT/wrk-$name.log" 2>&1
  RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$OUT/wrk-$name.log")
  REQS=$(awk '/requests in/ { print $1 }' "$OUT/wrk-$name.log")
  P99=$(awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
         m = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v; printf "%.2f", m }' "$OUT/wrk-$name.log")
  ERRS=$(awk '/Non-2xx|Socket errors/ { printf "%s; ", $0 }' "$OUT/wrk-$name.log")
  say "  wrk $name: $RPS req/s, p99 $P99 ms ${ERRS:+($ERRS)}"
}

# signed_headers PATH: the three NCP auth headers for now, one "Name: value" per line.
# A signature stays valid for the gateway's ±5 minute window: long enough for one wrk run.
signed_headers() {
  local ts sig
  ts=$(($(date +%s%N) / 1000000))
  sig=$(printf 'POST %s\n%s\n%s' "$1" "$ts" "$AK" | openssl dgst -sha256 -hmac "$SK" -binary | base64)
  printf 'x-ncp-apigw-timestamp: %s\nx-ncp-iam-access-key: %s\nx-ncp-apigw-signature-v2: %s\n' "$ts" "$AK" "$sig"
}

# startup CONFIG: sets STARTUP_MS, the ms from launching the exporter to the status line of its
# first /metrics answer, and FIRST_RUNS, the prechecks finished according to that answer. Polls with bash's
# /dev/tcp so no process start sits in the measured path.
startup() {
  local t0 t1 line body pid sl deadline
  exec {sl}<> <(:)
  t0=$(now)
  "$EXPORTER" --config.file "$1" --web.listen-address "127.0.0.1:$P_EXP" >>"$OUT/startup.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  deadline=$((${t0%.*} + 10))
  while :; do
    if { printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && IFS= read -r line <&3 &&
      t1=$(now) && body=$(cat <&3); } 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$P_EXP"; then
      break
    fi
    kill -0 "$pid" 2>/dev/null || { say "exporter died at start-up"; return 1; }
    ((${EPOCHREALTIME%.*} < deadline)) || { say "no answer within 10 s"; return 1; }
    read -rt 0.0005 -u "$sl" || true
  done
  exec {sl}<&-
  [[ $line == *" 200 "* ]] || { say "first answer: $line"; return 1; }
  FIRST_RUNS=$(awk 'index($0, "cdss_precheck_runs_total{") == 1 { s += $NF } END { printf "%d", s }' <<<"$body")
  stop "$pid"
  STARTUP_MS=$(calc '%.1f' "($t1 - $t0) * 1000")
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# ---------------------------------------------------------------- the machine
{
  echo "# bench.sh results ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
  echo
  echo "- machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
  echo "- load before: $(uptime | sed 's/.*load average/load average/')"
  echo "- windows: wrk ${WRK_SECONDS}s (-t2 -c16), CPU ${CPU_SECONDS}s, scale ${SCALE_WINDOW}s after warm-up"
  echo
  echo "| Target | Measured | Compared |"
  echo "|---|---|---|"
} >"$OUT/results.md"

say "--- gateways"
start sim "$SIM" --listen "127.0.0.1:$P_SIM" --count "$N_LARGE" --delay 20ms --jitter 60ms
SIM_PID=$LAST_PID
start sim0 "$SIM" --listen "127.0.0.1:$P_SIM0" --count "$N_LARGE"
SIM0_PID=$LAST_PID
start sim50 "$SIM" --listen "127.0.0.1:$P_SIM50" --count "$N_LARGE" --delay 50ms
SIM50_PID=$LAST_PID
sleep 0.3
scripts/bench/gen-config.sh "$N_SMALL" "http://127.0.0.1:$P_SIM" "${SMALL_INTERVAL}s" 16 >"$OUT/small.yaml"
scripts/bench/gen-config.sh "$N_SMALL" "http://127.0.0.1:$P_SIM50" "${SMALL_INTERVAL}s" 16 >"$OUT/small50.yaml"
scripts/bench/gen-config.sh "$N_LARGE" "http://127.0.0.1:$P_SIM50" "${LARGE_INTERVAL}s" 16 >"$OUT/large50.yaml"
# The timeout must be shorter than the interval.
sed -i 's/^timeout: .*/timeout: 5s/' "$OUT/small.yaml" "$OUT/small50.yaml"

say "--- 1. gateway headroom (signed POSTs straight at cdss-sim)"
PRE=/api/v1/cluster/rollingRestartPreCheck
mapfile -t H < <(signed_headers "$PRE")
check=$(curl -s -X POST "http://127.0.0.1:$P_SIM0$PRE" -H "${H[0]}" -H "${H[1]}" -H "${H[2]}" \
  -H 'Content-Type: application/json' -d '{"serviceGroupInstanceNo":1}')
[[ $check == *'"result":true'* ]] || { say "the simulator did not accept the signed request: $check"; exit 1; }
cat >"$OUT/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"serviceGroupInstanceNo":1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-ncp-apigw-timestamp"] = "${H[0]#*: }"
wrk.headers["x-ncp-iam-access-key"] = "${H[1]#*: }"
wrk.headers["x-ncp-apigw-signature-v2"] = "${H[2]#*: }"
EOF
wrk_run sim "http://127.0.0.1:$P_SIM0$PRE" -s "$OUT/post.lua"
stop "$SIM0_PID"
SIM_RPS=$RPS
row "| Simulated gateway headroom (wrk -c16, signed POST, no delay) | $SIM_RPS answers/s, p99 $P99 ms${ERRS:+ ($ERRS)} | $(calc '%.0f' "$SIM_RPS / ($N_LARGE / $LARGE_INTERVAL)")× the 10k/60 s scale load, $(calc '%.0f' "$SIM_RPS / ($N_SMALL / $SMALL_INTERVAL)")× the 1k/10 s load |"

say "--- 2. start-up to first /metrics answer (gateway answering in 50 ms)"
for n in small50 large50; do
  times=()
  runs_seen=0
  for ((i = 0; i < STARTUP_RUNS; i++)); do
    startup "$OUT/$n.yaml"
    times+=("$STARTUP_MS")
    runs_seen=$((runs_seen + FIRST_RUNS))
  done
  clusters=$([[ $n == small50 ]] && echo "$N_SMALL" || echo "$N_LARGE")
  say "  $clusters clusters: ${times[*]} ms"
  row "| Start-up to first /metrics answer, $clusters clusters (< 50 ms) | median $(printf '%s\n' "${times[@]}" | median) ms, max $(printf '%s\n' "${times[@]}" | sort -n | tail -1) ms over $STARTUP_RUNS runs; prechecks finished in those answers: $runs_seen | process start, config load, bind, first answer |"
done

say "--- 3. exporter, $N_SMALL clusters every ${SMALL_INTERVAL}s"
timed exporter1k "$EXPORTER" --config.file "$OUT/small.yaml" --web.listen-address "127.0.0.1:$P_EXP"
EXP_PID=$LAST_PID
URL="http://127.0.0.1:$P_EXP/metrics"
wait_http "http://127.0.0.1:$P_EXP/-/ready"
sleep 2
say "  CPU per scrape, plain and gzip (scripts/bench/scrape-cpu.sh)"
SCRAPE_PLAIN=$(scripts/bench/scrape-cpu.sh "$EXP_PID" "$URL")
SCRAPE_GZ=$(scripts/bench/scrape-cpu.sh "$EXP_PID" "$URL" -H 'Accept-Encoding: gzip')
say "  plain: $SCRAPE_PLAIN"
say "  gzip:  $SCRAPE_GZ"
SCRAPE_HWM=$(hwm_kb "$EXP_PID")
field() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) print substr($i, length(k) + 2) }' <<<"$2"; }
row "| CPU per /metrics scrape, $N_SMALL clusters, prechecks running (≤ 10 ms) | plain **$(field per_scrape_ms "$SCRAPE_PLAIN") ms**, gzip **$(field per_scrape_ms "$SCRAPE_GZ") ms** ($(field scrapes "$SCRAPE_PLAIN") sequential scrapes each, $( ((${SCRAPE_RATE:-10} > 0)) && echo "${SCRAPE_RATE:-10} a second" || echo "back to back"), on one connection; CPU of all threads from schedstat, less the prechecks' CPU over a quiet window of the same length: plain $(field cpu_ms "$SCRAPE_PLAIN") − $(field background_ms "$SCRAPE_PLAIN") ms, gzip $(field cpu_ms "$SCRAPE_GZ") − $(field background_ms "$SCRAPE_GZ") ms) | body $(field body_bytes "$SCRAPE_PLAIN") bytes, gzip $(field body_bytes "$SCRAPE_GZ") bytes |"
runs0=$(metric_sum "$URL" cdss_precheck_runs_total)
wrk_run exporter "$URL"
EXP_RPS=$RPS EXP_P99=$P99 EXP_ERRS=$ERRS
runs1=$(metric_sum "$URL" cdss_precheck_runs_total)
during=$(calc '%.0f' "($runs1 - $runs0) / $WRK_SECONDS")
curl -s "$URL" -o "$OUT/body-1k.txt"
start static "$STATIC" "127.0.0.1:$P_STATIC" "$OUT/body-1k.txt"
STATIC_PID=$LAST_PID
wait_http "http://127.0.0.1:$P_STATIC/metrics"
wrk_run static "http://127.0.0.1:$P_STATIC/metrics"
STATIC_RPS=$RPS STATIC_P99=$P99
stop "$STATIC_PID"
wrk_run exporter-gzip "$URL" -H 'Accept-Encoding: gzip'
GZ_RPS=$RPS GZ_P99=$P99
gz_size=$(curl -s -H 'Accept-Encoding: gzip' "$URL" | wc -c)
row "| /metrics req/s, $N_SMALL clusters, wrk -c16, prechecks running (informational) | $EXP_RPS req/s (${during} prechecks/s during the run)${EXP_ERRS:+ $EXP_ERRS} | limit $STATIC_RPS req/s: **$(calc '%.0f' "100 * $EXP_RPS / $STATIC_RPS")%** |"
row "| /metrics p99, same run (informational) | $EXP_P99 ms | limit $STATIC_P99 ms |"
row "| /metrics with Accept-Encoding: gzip, same setup | $GZ_RPS req/s, p99 $GZ_P99 ms; body $(wc -c <"$OUT/body-1k.txt") → $gz_size bytes | |"

say "  CPU per precheck: ${CPU_SECONDS}s without scrapes"
cpu_per_precheck "$URL" "$EXP_PID" "$CPU_SECONDS"
EXP_CPU=$PER_PRECHECK
EXP_HWM=$(hwm_kb "$EXP_PID")
stop "$EXP_PID"
EXP_TIME_RSS=$(time_rss_kb "$OUT/exporter1k.time")

say "  the floor: examples/precheck_floor.rs, the same requests on the same schedule, nothing else"
start floor "$FLOOR" "127.0.0.1:$P_SIM" "$N_SMALL" "$SMALL_INTERVAL" 16
FLOOR_PID=$LAST_PID
sleep 4
floor0=$(tail -1 "$OUT/floor.log")
cpu_begin "$FLOOR_PID"
sleep "$CPU_SECONDS"
cpu_end "$FLOOR_PID"
floor1=$(tail -1 "$OUT/floor.log")
stop "$FLOOR_PID"
FLOOR_CPU=$(calc '%.4f' "$CPU_MS / ($floor1 - $floor0)")
say "  $((floor1 - floor0)) answers, $CPU_MS ms CPU: $FLOOR_CPU ms each"

say "  CPU per precheck at 10× the rate: $N_SMALL clusters every 1 s"
sed 's/^interval: .*/interval: 1s/; s/^timeout: .*/timeout: 900ms/' "$OUT/small.yaml" >"$OUT/small-1s.yaml"
start exporter1k-1s "$EXPORTER" --config.file "$OUT/small-1s.yaml" --web.listen-address "127.0.0.1:$P_EXP"
EXP_PID=$LAST_PID
wait_http "http://127.0.0.1:$P_EXP/-/ready"
sleep 2
cpu_per_precheck "$URL" "$EXP_PID" "$((CPU_SECONDS / 2))"
EXP_CPU_FAST=$PER_PRECHECK
FAST_RATE=$(calc '%.0f' "$PRECHECKS / ($CPU_SECONDS / 2)")
stop "$EXP_PID"

say "--- 4. Python peer, $N_SMALL clusters every ${SMALL_INTERVAL}s"
PY_NOTE="not run: python3 with prometheus_client and requests not found"
if command -v python3 >/dev/null && python3 -c 'import prometheus_client, requests' 2>/dev/null; then
  timed python python3 scripts/bench/python_peer.py --clusters "$N_SMALL" --gateway "http://127.0.0.1:$P_SIM" \
    --port "$P_PY" --interval "$SMALL_INTERVAL"
  PY_PID=$LAST_PID
  PURL="http://127.0.0.1:$P_PY/metrics"
  wait_http "$PURL"
  wait_runs "$PURL" "$N_SMALL"
  wrk_run python "$PURL"
  PY_RPS=$RPS PY_P99=$P99 PY_ERRS=$ERRS
  cpu_per_precheck "$PURL" "$PY_PID" "$CPU_SECONDS"
  PY_CPU=$PER_PRECHECK
  PY_HWM=$(hwm_kb "$PY_PID")
  stop "$PY_PID"
  PY_NOTE="python $(python3 -c 'import platform, prometheus_client as p, requests as r; print(platform.python_version(), "prometheus_client", __import__("importlib.metadata").metadata.version("prometheus_client"), "requests", r.__version__)' 2>/dev/null)"
fi

say "--- 5. blackbox_exporter, HTTP POST probe"
BB_NOTE="not run: prometheus-blackbox-exporter not installed (Debian: apt-get install prometheus-blackbox-exporter)"
BB=$(command -v prometheus-blackbox-exporter || command -v blackbox_exporter || true)
if [[ -n $BB ]]; then
  mapfile -t H < <(signed_headers "$PRE")
  cat >"$OUT/blackbox.yml" <<EOF
modules:
  cdss:
    prober: http
    timeout: 5s
    http:
      method: POST
      headers:
        Content-Type: application/json
        x-ncp-apigw-timestamp: "${H[0]#*: }"
        x-ncp-iam-access-key: "${H[1]#*: }"
        x-ncp-apigw-signature-v2: "${H[2]#*: }"
      body: '{"serviceGroupInstanceNo":1}'
      fail_if_body_not_matches_regexp: ['"result":true']
EOF
  timed blackbox "$BB" --config.file "$OUT/blackbox.yml" --web.listen-address "127.0.0.1:$P_BB"
  BB_PID=$LAST_PID
  BURL="http://127.0.0.1:$P_BB/probe?module=cdss&target=http://127.0.0.1:$P_SIM$PRE"
  wait_http "http://127.0.0.1:$P_BB/-/healthy"
  curl -s "$BURL" | grep -q '^probe_success 1' || { say "blackbox probe does not succeed"; curl -s "$BURL" >&2; exit 1; }
  cpu_begin "$BB_PID"
  wrk_run blackbox "$BURL"
  cpu_end "$BB_PID"
  BB_RPS=$RPS
  BB_CPU_MAX=$(calc '%.4f' "$CPU_MS / $REQS")
  # About the exporter's rate of prechecks: 16 connections, each waiting ~50 ms for the gateway,
  # then pausing 110 ms.
  printf 'function delay()\n  return 110\nend\n' >"$OUT/paced.lua"
  cpu_begin "$BB_PID"
  WRK_SECONDS=$CPU_SECONDS wrk_run blackbox-paced "$BURL" -s "$OUT/paced.lua"
  cpu_end "$BB_PID"
  BB_CPU=$(calc '%.4f' "$CPU_MS / $REQS")
  BB_PACED_RPS=$RPS
  BB_HWM=$(hwm_kb "$BB_PID")
  stop "$BB_PID"
  BB_NOTE="$("$BB" --version 2>&1 | head -1)"
  say "  $BB_RPS probes/s, $BB_CPU_MAX ms CPU per probe at full speed, $BB_CPU ms at $BB_PACED_RPS probes/s"
fi

row "| CPU per precheck, $N_SMALL clusters every ${SMALL_INTERVAL}s (no worse than the previous build: scripts/bench/ab.sh; issue 6: ≤ 0.1 ms, ≥ 8× below blackbox) | $EXP_CPU ms (CPU time of all threads from /proc/PID/task/*/schedstat / prechecks, over ${CPU_SECONDS}s) | floor (precheck_floor) $FLOOR_CPU ms: the exporter at **$(calc '%.2f' "$EXP_CPU / $FLOOR_CPU")×** the floor; Python peer ${PY_CPU:-n/a} ms$([[ -n ${PY_CPU:-} ]] && echo " (**$(calc '%.1f' "$PY_CPU / $EXP_CPU")×**)"); blackbox ${BB_CPU:-n/a} ms per probe at ${BB_PACED_RPS:-?} probes/s$([[ -n ${BB_CPU:-} ]] && echo " (**$(calc '%.1f' "$BB_CPU / $EXP_CPU")×**)") |"
row "| CPU per precheck at $FAST_RATE prechecks/s ($N_SMALL clusters every 1 s) | $EXP_CPU_FAST ms | blackbox at full speed (${BB_RPS:-?} probes/s): ${BB_CPU_MAX:-n/a} ms per probe$([[ -n ${BB_CPU_MAX:-} ]] && echo " (**$(calc '%.1f' "$BB_CPU_MAX / $EXP_CPU_FAST")×**)") |"
row "| Peak RSS, $N_SMALL clusters (≤ 24 MiB) | VmHWM $(mib "$EXP_HWM") MiB; /usr/bin/time max RSS $(mib "$EXP_TIME_RSS") MiB (after the scrapes, ${WRK_SECONDS}s of wrk -c16 plain and gzip, and the CPU window); after the sequential scrapes alone $(mib "$SCRAPE_HWM") MiB | Python peer ${PY_HWM:+$(mib "$PY_HWM") MiB}; blackbox ${BB_HWM:+$(mib "$BB_HWM") MiB} |"
[[ -n ${PY_RPS:-} ]] && row "| Python peer /metrics, $N_SMALL clusters, wrk -c16 | $PY_RPS req/s, p99 $PY_P99 ms${PY_ERRS:+ $PY_ERRS} | exporter **$(calc '%.0f' "$EXP_RPS / $PY_RPS")×** the req/s |"
[[ -n ${BB_RPS:-} ]] && row "| blackbox_exporter probes/s, wrk -c16 on /probe | $BB_RPS probes/s | |"

say "--- 6. scale: $N_LARGE clusters every ${LARGE_INTERVAL}s, gateway answering in 50 ms"
timed exporter10k "$EXPORTER" --config.file "$OUT/large50.yaml" --web.listen-address "127.0.0.1:$P_EXP"
EXP_PID=$LAST_PID
t_start=$(now)
wait_http "http://127.0.0.1:$P_EXP/" >/dev/null
until curl -sf -o /dev/null "http://127.0.0.1:$P_EXP/-/ready"; do sleep 0.5; done
t_ready=$(now)
say "  first round complete after $(calc '%.1f' "$t_ready - $t_start") s"
# From ready on, no cluster's last precheck may be older than one interval (plus the 50 ms
# answer); scraped every 5 s.
max_age=0 scrapes=0
scrape() { # FILE: saves a scrape, returns its time in SCRAPE_T and the oldest age in AGE
  curl -s "$URL" -o "$1"
  SCRAPE_T=$(now)
  AGE=$(awk -v now="$SCRAPE_T" 'index($0, "cdss_precheck_last_run_timestamp_seconds{") == 1 {
          if (min == "" || $NF < min) min = $NF } END { printf "%.3f", now - min }' "$1")
  max_age=$(calc '%.3f' "($AGE > $max_age) ? $AGE : $max_age")
  scrapes=$((scrapes + 1))
}
# Slots that fall during the start-up round queue behind it and run late, once; two intervals
# after the first round every cluster's last precheck is on its own slot.
t_a=$(calc '%.3f' "$t_ready + 2 * $LARGE_INTERVAL + 5")
while (($(calc '%d' "$(now) < $t_a"))); do scrape "$OUT/scrape.txt"; sleep 5; done
scrape "$OUT/scrape-a.txt"
ta=$SCRAPE_T
sim_c0=$(cpu_ms "$SIM50_PID") exp_c0=$(cpu_ms "$EXP_PID")
t_b=$(calc '%.3f' "$ta + $SCALE_WINDOW")
while (($(calc '%d' "$(now) + 5 < $t_b"))); do
  sleep 5
  scrape "$OUT/scrape.txt"
  curl -s -H 'Accept-Encoding: gzip' "$URL" -o /dev/null
done
sleep "$(calc '%.3f' "$t_b - $(now)")"
scrape "$OUT/scrape-b.txt"
tb=$SCRAPE_T
sim_c1=$(cpu_ms "$SIM50_PID") exp_c1=$(cpu_ms "$EXP_PID")
# Per cluster: prechecks inside the window (a whole number of intervals: that many each, give or
# take one for a cluster whose slot falls within a precheck's 50 ms of the window's edges), and
# the mean gap between its prechecks (last-run time moved / prechecks done): one interval when
# no round was missed.
per_round=$(awk -v rounds="$((SCALE_WINDOW / LARGE_INTERVAL))" '
  index($0, "cdss_precheck_runs_total{") == 1 { split($0, p, "\""); k = "r" p[2] }
  index($0, "cdss_precheck_last_run_timestamp_seconds{") == 1 { split($0, p, "\""); k = "t" p[2] }
  index($0, "cdss_precheck_runs_total{") != 1 && index($0, "cdss_precheck_last_run_timestamp_seconds{") != 1 { next }
  FNR == NR { a[k] = $NF; next }
  { b[k] = $NF }
  END {
    for (k in b) {
      if (substr(k, 1, 1) != "r") continue
      c = substr(k, 2); d = b[k] - a[k]; hist[d]++; n++
      if (d > 0) { g = (b["t" c] - a["t" c]) / d; if (min == "" || g < min) min = g; if (g > max) max = g }
    }
    for (d in hist) printf "%s×%d ", hist[d], d
    printf "(of %d clusters; %d each expected); mean gap between a cluster'"'"'s prechecks: %.3f to %.3f s",
      n, rounds, min, max }' "$OUT/scrape-a.txt" "$OUT/scrape-b.txt")
# Spread: start times (finish - duration) modulo the interval, in 1 s buckets.
spread=$(awk -v iv="$LARGE_INTERVAL" '
  index($0, "cdss_precheck_last_run_timestamp_seconds{") == 1 { split($0, p, "\""); fin[p[2]] = $NF }
  index($0, "cdss_precheck_duration_seconds{") == 1 { split($0, p, "\""); dur[p[2]] = $NF }
  END {
    for (c in fin) { s = fin[c] - dur[c]; b = int(s - iv * int(s / iv)); h[b]++; n++ }
    mean = n / iv; min = n; max = 0; ss = 0
    for (b = 0; b < iv; b++) { v = h[b] + 0; if (v < min) min = v; if (v > max) max = v; ss += (v - mean) ^ 2 }
    printf "per 1 s bucket: mean %.1f, min %d, max %d, CV %.1f%% (uniform random placement: %.1f%%)",
      mean, min, max, 100 * sqrt(ss / iv) / mean, 100 / sqrt(mean) }' "$OUT/scrape-b.txt")
window_rate=$(calc '%.1f' "($(awk 'index($0, "cdss_precheck_runs_total{") == 1 { s += $NF } END { print s }' "$OUT/scrape-b.txt") - $(awk 'index($0, "cdss_precheck_runs_total{") == 1 { s += $NF } END { print s }' "$OUT/scrape-a.txt")) / ($tb - $ta)")
sim_cpu=$(calc '%.1f' "($sim_c1 - $sim_c0) / 10 / ($tb - $ta)")
exp_cpu=$(calc '%.1f' "($exp_c1 - $exp_c0) / 10 / ($tb - $ta)")
say "  per cluster: $per_round; $spread; max age $max_age s over $scrapes scrapes"
wrk_run exporter10k "$URL"
L_RPS=$RPS L_P99=$P99
curl -s -H 'Accept-Encoding: gzip' "$URL" -o /dev/null
L_HWM=$(hwm_kb "$EXP_PID")
curl -s "$URL" -o "$OUT/body-10k.txt"
stop "$EXP_PID"
L_TIME_RSS=$(time_rss_kb "$OUT/exporter10k.time")
start static10k "$STATIC" "127.0.0.1:$P_STATIC" "$OUT/body-10k.txt"
STATIC_PID=$LAST_PID
wait_http "http://127.0.0.1:$P_STATIC/metrics"
wrk_run static10k "http://127.0.0.1:$P_STATIC/metrics"
stop "$STATIC_PID"
row "| Scale, $N_LARGE clusters every ${LARGE_INTERVAL}s, gateway 50 ms: every cluster every round | prechecks per cluster in a ${SCALE_WINDOW}s window: $per_round; $window_rate prechecks/s (ideal $(calc '%.1f' "$N_LARGE / $LARGE_INTERVAL")) | first round (all $N_LARGE at start, concurrency 16) took $(calc '%.1f' "$t_ready - $t_start") s |"
row "| Scale: spread of start times even | $spread | |"
row "| Scale: no round missed | oldest last precheck over $scrapes scrapes from ready on: $max_age s (interval $LARGE_INTERVAL s) | |"
row "| Scale: CPU in the window | exporter $exp_cpu% of one core (incl. a scrape every 5 s); simulated gateway $sim_cpu% of one core | |"
row "| /metrics, $N_LARGE clusters, wrk -c16, prechecks running (informational) | $L_RPS req/s, p99 $L_P99 ms; body $(wc -c <"$OUT/body-10k.txt") bytes | limit $RPS req/s, p99 $P99 ms: **$(calc '%.0f' "100 * $L_RPS / $RPS")%** |"
row "| Peak RSS, $N_LARGE clusters (≤ 128 MiB) | VmHWM $(mib "$L_HWM") MiB; /usr/bin/time max RSS $(mib "$L_TIME_RSS") MiB (after scrapes, gzip and ${WRK_SECONDS}s of wrk at $L_RPS req/s) | |"
say "--- 7. degraded: 300 clusters every 20 s, concurrency 4, a third hang until the 5 s timeout"
start simdeg "$SIM" --listen "127.0.0.1:$P_DEG" --count 300 --delay 20ms --jitter 60ms --hang-every 3
SIMD_PID=$LAST_PID
sleep 0.3
scripts/bench/gen-config.sh 300 "http://127.0.0.1:$P_DEG" 20s 4 | sed 's/^timeout: .*/timeout: 5s/; s/region: [A-Z]*/region: KR/' >"$OUT/degraded.yaml"
start exporterdeg "$EXPORTER" --config.file "$OUT/degraded.yaml" --web.listen-address "127.0.0.1:$P_EXPD"
EXPD_PID=$LAST_PID
DURL="http://127.0.0.1:$P_EXPD/metrics"
t_start=$(now)
wait_http "http://127.0.0.1:$P_EXPD/-/ready"
first_round=$(calc '%.1f' "$(now) - $t_start")
sleep 20
calls0=$(metric_sum "$DURL" cdss_exporter_api_requests_total)
t0=$(now)
deg_max=0 deg_scrapes=0 healthy=0
while (($(calc '%d' "$(now) - $t0 < $DEG_WINDOW"))); do
  # Oldest last precheck among clusters that answer (code 0); the hanging ones have code -1.
  read -r age n < <(curl -s "$DURL" | awk -v now="$(now)" '
    /^cdss_precheck_last_error_code\{/ { split($1, a, "}"); code[a[1]] = $2 }
    /^cdss_precheck_last_run_timestamp_seconds\{/ { split($1, a, "}"); run[a[1]] = $2 }
    END {
      m = 0; n = 0
      for (k in code) {
        sub(/^cdss_precheck_last_error_code/, "", k)
        if (code["cdss_precheck_last_error_code" k] == 0) {
          n++; age = now - run["cdss_precheck_last_run_timestamp_seconds" k]; if (age > m) m = age
        }
      }
      printf "%.2f %d\n", m, n
    }')
  deg_scrapes=$((deg_scrapes + 1)) healthy=$n
  deg_max=$(calc '%.2f' "($age > $deg_max) ? $age : $deg_max")
  sleep 2
done
t1=$(now)
calls1=$(metric_sum "$DURL" cdss_exporter_api_requests_total)
deg_rate=$(calc '%.2f' "($calls1 - $calls0) / ($t1 - $t0)")
curl -s "$DURL" | grep -E '^cdss_exporter_api_requests_total' >"$OUT/degraded-requests.txt" || true
stop "$EXPD_PID"
stop "$SIMD_PID"
row "| Degraded: 300 clusters every 20 s, concurrency 4, a third hang until the 5 s timeout: healthy clusters stay fresh | oldest answer of the $healthy answering clusters over $deg_scrapes scrapes in ${DEG_WINDOW}s: $deg_max s (interval 20 s, gate max_age 40 s); first round (to /-/ready) $first_round s | gateway requests $deg_rate/s (the schedule needs 300 / 20 s = 15/s; hanging clusters are retried in their own lane) |"
row ""
row "- load after: $(uptime | sed 's/.*load average/load average/')"
row "- peers: ${PY_NOTE}; ${BB_NOTE}"

stop "$SIM50_PID"
stop "$SIM_PID"
say "--- results ($OUT/results.md)"
cat "$OUT/results.md"
