// The files generated from the mixin; `scripts/mixin.sh` writes them where they live. `config`
// overrides `_config`, e.g. --tla-code config='{selector: "job=\"kafka-precheck\""}'.
//   jsonnet -J dashboards -S -m OUT dashboards/render.jsonnet
//     alerts.yaml and prometheusrule.yaml (deploy/kubernetes/), by name;
//   jsonnet -J dashboards --tla-code dashboard=true dashboards/render.jsonnet
//     the dashboard (cdss-precheck.json), manifested by jsonnet itself.
// jsonnet 0.18's std.manifestYamlDoc and std.manifestJsonEx escape strings one character at a
// time in jsonnet: 20-50 s for these files. So long strings go out as YAML block scalars, which
// need no escaping, and the dashboard as jsonnet's own JSON output: under a second each.
function(config={}, dashboard=false)
  local mixin = (import 'mixin.libsonnet') + { _config+:: config };

  // YAML for the rules: keys plain (ours need no quotes), short strings JSON-quoted, multi-line
  // and long ones as `|` / `|-` blocks, arrays indented under their key.
  local block(s) = std.length(s) > 40;
  local emit = {
    value(v, ind)::
      if std.isObject(v) then (if std.length(v) == 0 then ' {}' else '\n' + self.fields(v, ind + '  '))
      else if std.isArray(v) then (if std.length(v) == 0 then ' []' else '\n' + self.items(v, ind + '  '))
      else if std.isString(v) && block(v) && v[0] != ' ' then
        local chomp = std.endsWith(v, '\n');
        ' |' + (if chomp then '' else '-') + '\n' + std.join('\n', [
          if line == '' then '' else ind + '  ' + line
          for line in std.split(if chomp then std.substr(v, 0, std.length(v) - 1) else v, '\n')
        ])
      else ' ' + std.manifestJson(v),
    fields(o, ind):: std.join('\n', [ind + k + ':' + self.value(o[k], ind) for k in std.objectFields(o)]),
    items(a, ind):: std.join('\n', [
      if std.isObject(e) && std.length(e) > 0 then
        local f = self.fields(e, ind + '  ');
        ind + '- ' + std.substr(f, std.length(ind) + 2, std.length(f))
      else ind + '-' + self.value(e, ind)
      for e in a
    ]),
  };
  local yaml(v) = emit.fields(v, '') + '\n';

  local generated = 'GENERATED from the mixin in dashboards/ (*.libsonnet) by scripts/mixin.sh: do not edit.';
  if dashboard then mixin.grafanaDashboards['cdss-precheck.json'] else {
    'alerts.yaml': |||
      # Prometheus alerting rules for cdss-precheck-exporter. %s
      # Load with `rule_files: [alerts.yaml]`; check with `promtool check rules` and
      # `promtool test rules alerts.test.yaml`. The rules select the exporter's series with %s;
      # for another job name, set `selector` in the mixin's _config (see the README's "Alerts").
    ||| % [generated, mixin._config.selector] + yaml(mixin.prometheusAlerts),
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
