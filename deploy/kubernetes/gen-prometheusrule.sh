#!/usr/bin/env bash
# Prints the PrometheusRule (prometheus-operator) made from dashboards/alerts.yaml, so the two
# never drift. After editing alerts.yaml:
#   bash deploy/kubernetes/gen-prometheusrule.sh > deploy/kubernetes/prometheusrule.yaml
# `cargo test` fails while the committed file differs from this script's output.
# alerts.yaml's top level (`groups:`) is exactly a PrometheusRule's `spec`, so the rule file is
# copied verbatim, indented under `spec:` (empty lines stay empty, so block scalars keep their text).
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)/dashboards/alerts.yaml"
cat <<'HEADER'
# GENERATED from dashboards/alerts.yaml by deploy/kubernetes/gen-prometheusrule.sh: do not edit.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: cdss-precheck-exporter
  labels:
    app.kubernetes.io/name: cdss-precheck-exporter
    app.kubernetes.io/component: alerting-rules
spec:
HEADER
sed -e 's/^\(.\)/  \1/' "$src"
