#!/usr/bin/env bash
# Writes an exporter config with N clusters (numbers 1..N, regions rotating) pointed at GATEWAY.
# Usage: scripts/bench/gen-config.sh N GATEWAY [INTERVAL] [CONCURRENCY] > config.yaml
set -euo pipefail
n=${1:?N}; gw=${2:?GATEWAY}; interval=${3:-60s}; conc=${4:-16}
regions=(KR SGN JPN GOV FIN)
printf 'interval: %s\ntimeout: 10s\nconcurrency: %s\napi_gateway: %s\nclusters:\n' "$interval" "$conc" "$gw"
for ((i = 1; i <= n; i++)); do
  printf '  - {name: cluster-%05d, region: %s, service_group_instance_no: %d}\n' "$i" "${regions[i % 5]}" "$i"
done
