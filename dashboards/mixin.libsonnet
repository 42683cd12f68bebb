// cdss-precheck-exporter's monitoring mixin (the monitoring-mixins convention, as node-mixin and
// YACE's mixin/): `_config` (selector, thresholds, runbook URL pattern), `prometheusAlerts` and
// `grafanaDashboards`. Use it from your own jsonnet:
//   local cdss = (import 'cdss-precheck-exporter/dashboards/mixin.libsonnet')
//                + { _config+:: { selector: 'job="kafka-precheck"' } };
//   { 'alerts.yaml': std.manifestYamlDoc(cdss.prometheusAlerts) }
// This repository's rendered files (alerts.yaml, cdss-precheck.json, the PrometheusRule) come
// from render.jsonnet via scripts/mixin.sh.
(import 'config.libsonnet') +
(import 'alerts.libsonnet') +
(import 'dashboard.libsonnet')
