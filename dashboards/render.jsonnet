// The files generated from the mixin, by name: `scripts/mixin.sh` writes them where they live
// (dashboards/alerts.yaml, dashboards/cdss-precheck.json, deploy/kubernetes/prometheusrule.yaml).
// `config` overrides `_config`, e.g. --tla-code config='{selector: "job=\"kafka-precheck\""}'.
function(config={})
  local mixin = (import 'mixin.libsonnet') + { _config+:: config };
  local yaml(v) = std.manifestYamlDoc(v, indent_array_in_object=true, quote_keys=false) + '\n';
  local generated = 'GENERATED from the mixin in dashboards/ (*.libsonnet) by scripts/mixin.sh: do not edit.';
  {
    'alerts.yaml': |||
      # Prometheus alerting rules for cdss-precheck-exporter. %s
      # Load with `rule_files: [alerts.yaml]`; check with `promtool check rules` and
      # `promtool test rules alerts.test.yaml`. The rules select the exporter's series with %s;
      # for another job name, set `selector` in the mixin's _config (see the README's "Alerts").
    ||| % [generated, mixin._config.selector] + yaml(mixin.prometheusAlerts),
    'cdss-precheck.json': std.manifestJsonEx(mixin.grafanaDashboards['cdss-precheck.json'], '  ') + '\n',
    'prometheusrule.yaml': '# %s\n' % generated + yaml({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: {
        name: 'cdss-precheck-exporter',
        labels: {
          'app.kubernetes.io/name': 'cdss-precheck-exporter',
          'app.kubernetes.io/component': 'alerting-rules',
        },
      },
      spec: mixin.prometheusAlerts,
    }),
  }
