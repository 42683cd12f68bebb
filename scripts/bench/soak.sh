#!/usr/bin/env bash
# Soak: SCRAPERS concurrent scrapers hit /metrics for DURATION at CLUSTERS clusters while a third
# of the clusters misbehave (500, malformed JSON, hangs, 429, dropped connections).
# Pass: zero failed scrapes, RSS growth under 10% after warm-up, no file-descriptor growth.
# Everything runs on 127.0.0.1. Usage: scripts/bench/soak.sh [CLUSTERS] [SCRAPERS] [DURATION_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
clusters=${1:-1000}; scrapers=${2:-200}; duration=${3:-60}; warmup=10
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bins
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
sim_port=$((20000 + RANDOM % 10000)); exp_port=$((sim_port + 1))
./target/release/cdss-sim --listen 127.0.0.1:$sim_port --count "$clusters" --misbehave-every 3 > "$work/sim.out" &
sleep 0.5
scripts/bench/gen-config.sh "$clusters" "http://127.0.0.1:$sim_port" 10s 32 | sed 's/^timeout: 10s/timeout: 2s/' > "$work/config.yaml"
export NCLOUD_ACCESS_KEY=DEMO-ACCESS-KEY NCLOUD_SECRET_KEY=demo-secret-key-for-the-simulated-gateway
./target/release/cdss-precheck-exporter --config.file "$work/config.yaml" \
  --web.listen-address 127.0.0.1:$exp_port --log.level error 2> "$work/exporter.err" &
pid=$!
for _ in $(seq 100); do curl -fs "127.0.0.1:$exp_port/-/healthy" >/dev/null && break; sleep 0.1; done
rss() { awk '/VmRSS/ {print $2}' /proc/$pid/status; }
fds() { ls /proc/$pid/fd | wc -l; }
wrk -t2 -c"$scrapers" -d"${duration}s" --latency -H 'Accept-Encoding: gzip' "http://127.0.0.1:$exp_port/metrics" > "$work/wrk.out" &
wrk_pid=$!
sleep "$warmup"
fd0=$(fds)
samples=(); rss_samples=()
while kill -0 $wrk_pid 2>/dev/null; do r=$(rss); rss_samples+=("$r"); samples+=("$r/$(fds)"); sleep 5; done
wait $wrk_pid || true
sleep 3   # let the scrapers' connections close
fd1=$(fds)
# RSS moves by about a megabyte from sample to sample (bodies in flight, allocator), so growth
# compares the peak of the first half of the samples after warm-up with the peak of the second.
half=$(( ${#rss_samples[@]} / 2 ))
rss0=$(printf '%s\n' "${rss_samples[@]:0:$half}" | sort -n | tail -1)
rss1=$(printf '%s\n' "${rss_samples[@]:$half}" | sort -n | tail -1)
cat "$work/wrk.out"
errors=$(grep -Eo 'Socket errors: .*' "$work/wrk.out" || true)
non2xx=$(grep -Eo 'Non-2xx or 3xx responses: [0-9]+' "$work/wrk.out" | grep -Eo '[0-9]+$' || echo 0)
growth=$(awk -v a="$rss0" -v b="$rss1" 'BEGIN { printf "%.1f", (b - a) * 100 / a }')
echo "clusters=$clusters scrapers=$scrapers duration=${duration}s machine: $(nproc) cores, $(uname -r), load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "RSS peak in the first half after warm-up ${rss0} kB, in the second half ${rss1} kB (growth ${growth}%); fds after warm-up ${fd0}, at end ${fd1}"
echo "samples (RSS kB/fds every 5 s): ${samples[*]}"
echo "socket errors: ${errors:-none}; non-2xx: ${non2xx}"
fail=0
[ -z "$errors" ] || { echo "FAIL: socket errors"; fail=1; }
[ "$non2xx" = 0 ] || { echo "FAIL: non-2xx responses"; fail=1; }
awk -v g="$growth" 'BEGIN { exit !(g < 10) }' || { echo "FAIL: RSS grew ${growth}%"; fail=1; }
[ "$fd1" -le "$fd0" ] || { echo "FAIL: fds grew from $fd0 to $fd1"; fail=1; }
[ $fail = 0 ] && echo "PASS"
exit $fail
