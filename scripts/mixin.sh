#!/usr/bin/env bash
# Renders the monitoring mixin (dashboards/*.libsonnet) into the files users load and tests read:
#   dashboards/alerts.yaml              Prometheus rule file
#   dashboards/cdss-precheck.json       Grafana dashboard
#   deploy/kubernetes/prometheusrule.yaml  the same rules as a prometheus-operator PrometheusRule
# Needs `jsonnet` and `jsonnetfmt` (Debian package jsonnet; no jsonnet-bundler, no libraries). Edit the .libsonnet
# files, run this, commit both. CI runs it and fails on any `git diff`; cargo test compares too.
# Usage: bash scripts/mixin.sh [--check]   (--check: change nothing, fail if a file is out of date)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v jsonnet >/dev/null; then
    echo "jsonnet is not installed: apt-get install -y jsonnet" >&2
    exit 1
fi
# The sources in jsonnet's own format (jsonnetfmt comes with the jsonnet package).
for f in dashboards/*.libsonnet dashboards/render.jsonnet; do
    if ! jsonnetfmt --test "$f"; then
        echo "$f is not formatted: run 'jsonnetfmt -i $f'" >&2
        exit 1
    fi
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
jsonnet -J dashboards -S -m "$out" dashboards/render.jsonnet >/dev/null
jsonnet -J dashboards --tla-code dashboard=true dashboards/render.jsonnet > "$out/cdss-precheck.json"
stale=0
for pair in alerts.yaml:dashboards/alerts.yaml \
            cdss-precheck.json:dashboards/cdss-precheck.json \
            prometheusrule.yaml:deploy/kubernetes/prometheusrule.yaml; do
    name=${pair%%:*} dest=${pair#*:}
    if [ "${1:-}" = --check ]; then
        if ! cmp -s "$out/$name" "$dest"; then
            echo "$dest is out of date: run 'bash scripts/mixin.sh'" >&2
            stale=1
        fi
    else
        cp "$out/$name" "$dest"
        echo "wrote $dest"
    fi
done
exit "$stale"
