// The Grafana dashboard, in plain jsonnet (no grafonnet: the mixin builds with `jsonnet` alone).
// Rendered to dashboards/cdss-precheck.json by scripts/mixin.sh. Every panel queries the
// `${datasource}` variable and filters on $job (whose values come from `_config.selector`), and
// the per-cluster panels on $region and $cluster too.
local ds = { type: 'prometheus', uid: '${datasource}' };

// The label filters of the dashboard's variables.
local byJob = 'job=~"$job"';
local byRegion = 'job=~"$job",region=~"$region"';
local byCluster = 'job=~"$job",region=~"$region",cluster=~"$cluster"';

local target(expr, legend='', refId='A', instant=true, table=false) = {
  refId: refId,
  datasource: ds,
  expr: expr,
  legendFormat: legend,
  instant: instant,
  range: !instant,
} + (if table then { format: 'table' } else {});

// Value mappings: [[value, text, color], ...] in the order Grafana lists them.
local valueMap(entries) = {
  type: 'value',
  options: {
    [e[0]]: { text: e[1], color: e[2], index: i }
    for i in std.range(0, std.length(entries) - 1)
    for e in [entries[i]]
  },
};
local readyMap = [valueMap([['1', 'READY', 'green'], ['0', 'NOT READY', 'red']])];
local changingMap = [valueMap([['1', 'CHANGING', 'orange'], ['0', 'not changing', 'green']])];
local steps(list) = { mode: 'absolute', steps: [{ color: s[0], value: s[1] } for s in list] };
local green = steps([['green', null]]);
local redToGreen = steps([['red', null], ['green', 1]]);

local panel(type, title, description, pos, unit, targets, thresholds=green, mappings=[], colorMode='thresholds', custom=null, overrides=[]) = {
  type: type,
  title: title,
  description: description,
  datasource: ds,
  gridPos: { x: pos[0], y: pos[1], w: pos[2], h: pos[3] },
  fieldConfig: {
    defaults: {
      unit: unit,
      mappings: mappings,
      thresholds: thresholds,
      color: { mode: colorMode },
    } + (if custom == null then {} else { custom: custom }),
    overrides: overrides,
  },
  targets: targets,
};

local stat(title, description, pos, unit, targets, thresholds=green, mappings=[], colorMode='background', overrides=[]) =
  panel('stat', title, description, pos, unit, targets, thresholds, mappings, overrides=overrides) + {
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: colorMode,
      graphMode: 'none',
      textMode: 'value_and_name',
      orientation: 'auto',
      justifyMode: 'auto',
      wideLayout: true,
    },
  };

local timeseries(title, description, pos, unit, targets, custom={}) =
  panel('timeseries', title, description, pos, unit, targets, colorMode='palette-classic', custom={
    drawStyle: 'line',
    lineWidth: 1,
    fillOpacity: 0,
    showPoints: 'never',
    spanNulls: false,
  } + custom) + {
    options: {
      legend: { displayMode: 'table', placement: 'right', calcs: ['lastNotNull', 'max'], showLegend: true },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
  };

local timeline(title, description, pos, targets, mappings) =
  panel('state-timeline', title, description, pos, 'none', targets, redToGreen, mappings, custom={ fillOpacity: 80, lineWidth: 0 }) + {
    options: {
      mergeValues: true,
      showValue: 'auto',
      alignValue: 'left',
      rowHeight: 0.9,
      legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
      tooltip: { mode: 'single', sort: 'none' },
    },
  };

// A table of instant queries; `organize` is Grafana's "organize fields" transformation.
local table(title, description, pos, targets, organize, overrides=[], sortBy=null, merge=false) =
  panel('table', title, description, pos, 'none', targets, overrides=overrides) + {
    options: {
      showHeader: true,
      cellHeight: 'sm',
      footer: { show: false, reducer: ['sum'], fields: '' },
    } + (if sortBy == null then {} else { sortBy: sortBy }),
    transformations: (if merge then [{ id: 'merge', options: {} }] else []) + [{
      id: 'organize',
      options: { excludeByName: { Time: true, Value: true, __name__: true } } + organize + { renameByName+: {} },
    }],
  };

local row(title, y) = {
  type: 'row',
  title: title,
  collapsed: false,
  gridPos: { x: 0, y: y, w: 24, h: 1 },
  panels: [],
};

local columnOverride(name, properties) = {
  matcher: { id: 'byName', options: name },
  properties: [{ id: p[0], value: p[1] } for p in properties],
};

{
  local cfg = $._config,

  local panels = [
    stat(
      'Readiness per cluster',
      'cdss_precheck_ok per cluster: READY when the last periodic rollingRestartPreCheck said every node is available (code 0, result true); NOT READY otherwise, including errors and clusters not checked yet. A rolling restart is only safe on READY.',
      [0, 0, 24, 5],
      'none',
      [target('cdss_precheck_ok{%s}' % byCluster, '{{cluster}} ({{region}})')],
      redToGreen,
      readyMap,
    ),
    timeline(
      'Readiness over time',
      'cdss_precheck_ok over time, one row per cluster. Gaps mean Prometheus had no sample (exporter down or not scraped).',
      [0, 5, 24, 8],
      [target('cdss_precheck_ok{%s}' % byCluster, '{{cluster}} ({{region}})', instant=false)],
      readyMap,
    ),

    row('Maintenance: clusters NCP is changing', 13),
    table(
      'Clusters changing now',
      'Clusters NCP reports changing (a rolling restart, scale-out or another change: serverStatus changing, or a role coloured orange), since when, for how long, and their brokers up of total. CdssPrecheckNotReady stays silent for them; CdssClusterChangingTooLong warns after %d s. Empty while no cluster is changing.' % cfg.clusterChangingTooLongSeconds,
      [0, 14, 12, 7],
      [
        target('cdss_cluster_changing_since_timestamp_seconds{%s} * 1000' % byCluster, refId='A', table=true),
        target('time() - cdss_cluster_changing_since_timestamp_seconds{%s}' % byCluster, refId='B', table=true),
        target('cdss_cluster_brokers_up{%s} and on (job, instance, cluster, region) cdss_cluster_changing{%s} == 1' % [byCluster, byCluster], refId='C', table=true),
        target('cdss_cluster_brokers{%s} and on (job, instance, cluster, region) cdss_cluster_changing{%s} == 1' % [byCluster, byCluster], refId='D', table=true),
      ],
      {
        excludeByName+: { job: true },
        indexByName: { cluster: 0, region: 1, 'Value #A': 2, 'Value #B': 3, 'Value #C': 4, 'Value #D': 5, instance: 6 },
        renameByName: { 'Value #A': 'since', 'Value #B': 'changing for', 'Value #C': 'brokers up', 'Value #D': 'brokers' },
      },
      overrides=[
        columnOverride('since', [['unit', 'dateTimeAsIso']]),
        columnOverride('changing for', [
          ['unit', 's'],
          ['thresholds', steps([['text', null], ['orange', cfg.clusterChangingTooLongSeconds]])],
          ['custom.cellOptions', { type: 'color-text' }],
        ]),
      ],
      merge=true,
    ),
    timeline(
      'Changing over time',
      'cdss_cluster_changing over time, one row per cluster: CHANGING while NCP reports the cluster changing (a rolling restart, scale-out or another change), so the start and end of each maintenance show here.',
      [12, 14, 12, 7],
      [target('cdss_cluster_changing{%s}' % byCluster, '{{cluster}} ({{region}})', instant=false)],
      changingMap,
    ) + { fieldConfig+: { defaults+: { thresholds: steps([['green', null], ['orange', 1]]) } } },

    row('Precheck answers', 21),
    stat(
      'Last error code',
      "cdss_precheck_last_error_code of the last precheck, with the meaning the README's table gives: 0 is an answer from CDSS (ready or not ready); 3 and other positive codes below 100 come from CDSS; 200-900 come from the NCP API gateway (200/210 are credentials problems, 400/410/420 rate limiting); -1 means no usable answer (timeout, connection error, HTML error page).",
      [0, 22, 12, 8],
      'none',
      [target('cdss_precheck_last_error_code{%s}' % byCluster, '{{cluster}} ({{region}})')],
      mappings=[
        valueMap([
          ['0', '0 OK', 'green'],
          ['3', '3 invalid instance number', 'red'],
          ['200', '200 authentication failed', 'purple'],
          ['210', '210 permission denied', 'purple'],
          ['230', '230 forbidden', 'purple'],
          ['300', '300 not found', 'red'],
          ['400', '400 quota exceeded', 'orange'],
          ['410', '410 throttle limited', 'orange'],
          ['420', '420 rate limited', 'orange'],
          ['500', '500 endpoint error', 'red'],
          ['510', '510 endpoint timeout', 'red'],
          ['900', '900 unexpected error', 'red'],
          ['-1', '-1 no usable answer', 'red'],
        ]),
        {
          type: 'range',
          options: { from: 1, to: 1e12, result: { text: 'other CDSS error (see landing page)', color: 'red', index: 13 } },
        },
      ],
    ),
    stat(
      'Time since last answer from CDSS',
      "time() - cdss_precheck_last_success_timestamp_seconds: how old the answer behind cdss_precheck_ok is. 'never' means no answer from CDSS since the exporter started (the series does not exist yet). Orange after 2, red after 3 intervals of the default 60 s; CdssPrecheckStale uses the configured interval.",
      [12, 22, 12, 8],
      's',
      [target('(time() - cdss_precheck_last_success_timestamp_seconds{%s}) or on (job, instance, cluster, region) (cdss_precheck_last_error_code{%s} * 0 - 1)' % [byCluster, byCluster], '{{cluster}} ({{region}})')],
      steps([['green', null], ['orange', 120], ['red', 180]]),
      [valueMap([['-1', 'never', 'red']])],
    ),
    timeseries(
      'Precheck latency',
      "cdss_precheck_duration_seconds: latency of each cluster's last precheck, from sending the request to the last byte, or to the timeout.",
      [0, 30, 12, 8],
      's',
      [target('cdss_precheck_duration_seconds{%s}' % byCluster, '{{cluster}} ({{region}})', instant=false)],
    ),
    timeseries(
      'Failures by reason',
      'rate(cdss_precheck_failures_total[$__rate_interval]): prechecks per second that got no answer from CDSS, by cluster and reason (api_error, auth_error, rate_limited, gateway_error, http_error, invalid_response, body_too_large, timeout, connection_error, no_credentials). A series appears with its first failure.',
      [12, 30, 12, 8],
      'reqps',
      [target('sum by (cluster, region, reason) (rate(cdss_precheck_failures_total{%s}[$__rate_interval]))' % byCluster, '{{cluster}} ({{region}}) {{reason}}', instant=false)],
      { drawStyle: 'bars', fillOpacity: 60, stacking: { mode: 'normal', group: 'A' } },
    ),
    timeseries(
      'Schedule lag',
      "cdss_precheck_schedule_lag_seconds: how late each cluster's last periodic precheck started against its slot. Near 0 when the schedule keeps up; clusters that hang wait in their own lane and may show more (CdssPrecheckScheduleBehind leaves them out).",
      [0, 38, 24, 6],
      's',
      [target('cdss_precheck_schedule_lag_seconds{%s}' % byCluster, '{{cluster}} ({{region}})', instant=false)],
    ),

    row('Exporter', 44),
    stat(
      'Exporter up',
      'up: whether Prometheus could scrape each exporter instance. DOWN means every cluster that exporter prechecks has no current data (alert CdssExporterDown).',
      [0, 45, 6, 5],
      'none',
      [target('up{%s}' % byJob, '{{instance}}')],
      redToGreen,
      [valueMap([['1', 'UP', 'green'], ['0', 'DOWN', 'red']])],
    ),
    stat(
      'Config reload',
      "cdss_exporter_config_last_reload_successful: OK when the last config reload worked, FAILED when the exporter still runs its previous config (alert CdssExporterConfigReloadFailed). 'n/a' for exporter versions without config reload: they do not expose the metric, so the panel falls back to cdss_exporter_build_info.",
      [6, 45, 6, 5],
      'none',
      [target('max by (job, instance) (cdss_exporter_config_last_reload_successful{%s}) or on (job, instance) (max by (job, instance) (cdss_exporter_build_info{%s}) * 0 - 1)' % [byJob, byJob], '{{instance}}')],
      mappings=[valueMap([['1', 'OK', 'green'], ['0', 'FAILED', 'red'], ['-1', 'n/a', 'text']])],
    ),
    stat(
      'Clusters and interval',
      'cdss_exporter_clusters: clusters each exporter prechecks; cdss_exporter_precheck_interval_seconds: how often each one is prechecked (one API call each).',
      [12, 45, 12, 5],
      'none',
      [
        target('cdss_exporter_clusters{%s}' % byJob, '{{instance}} clusters'),
        target('cdss_exporter_precheck_interval_seconds{%s}' % byJob, '{{instance}} interval', refId='B'),
      ],
      steps([['text', null]]),
      colorMode='none',
      overrides=[{ matcher: { id: 'byFrameRefID', options: 'B' }, properties: [{ id: 'unit', value: 's' }] }],
    ),
    table(
      'Build info',
      'cdss_exporter_build_info: version and git revision of each exporter instance.',
      [0, 50, 12, 6],
      [target('cdss_exporter_build_info{%s}' % byJob, table=true)],
      { indexByName: { job: 0, instance: 1, version: 2, revision: 3 } },
    ),
    timeseries(
      'API calls',
      'rate(cdss_exporter_api_requests_total[$__rate_interval]) per exporter instance, operation and result: calls per second sent to the NCP API (prechecks, listings, status reads). API calls cost quota; a jump here without a config change is worth a look.',
      [12, 50, 12, 6],
      'reqps',
      [target('sum by (job, instance, operation, result) (rate(cdss_exporter_api_requests_total{%s}[$__rate_interval]))' % byJob, '{{instance}} {{operation}} {{result}}', instant=false)],
    ),
    stat(
      'Clock skew to NCP',
      "cdss_exporter_clock_skew_seconds: the API gateway's clock (its Date header, 1 s resolution) minus the exporter host's. NCP rejects signed requests more than 300 s off (error code 200, alert CdssPrecheckAuthFailing): orange from 60 s, red from 300 s either way.",
      [0, 56, 6, 5],
      's',
      [target('cdss_exporter_clock_skew_seconds{%s}' % byJob, '{{instance}}')],
      steps([['red', null], ['orange', -300], ['green', -60], ['orange', 60], ['red', 300]]),
    ),
    table(
      'Clusters',
      'cdss_cluster_info: every prechecked cluster with its instance number and, for discovered clusters, the Kafka version, server status and VPC that discovery reported (empty for static clusters).',
      [6, 56, 18, 5],
      [target('cdss_cluster_info{%s}' % byCluster, table=true)],
      {
        excludeByName+: { job: true },
        indexByName: { cluster: 0, region: 1, service_group_instance_no: 2, status: 3, kafka_version: 4, vpc_name: 5, instance: 6 },
      },
    ),

    row('Discovery and diagnosis', 61),
    stat(
      'Discovered clusters',
      "cdss_discovery_clusters: clusters each region's discovery found on its last successful getClusterInfoList listing; no series for a region that has not listed successfully yet (see Discovery failures). Empty unless the exporter has `discovery:` blocks (--demo has one, for KR).",
      [0, 62, 8, 5],
      'none',
      [target('cdss_discovery_clusters{%s}' % byRegion, '{{instance}} {{region}}')],
      steps([['text', null]]),
      colorMode='none',
    ),
    stat(
      'Time since last discovery listing',
      "time() - cdss_discovery_last_success_timestamp_seconds: age of the cluster list each region's discovery works from. A failed listing keeps the last known set. Empty unless the exporter has `discovery:` blocks (--demo has one, for KR).",
      [8, 62, 8, 5],
      's',
      [target('time() - cdss_discovery_last_success_timestamp_seconds{%s}' % byRegion, '{{instance}} {{region}}')],
      steps([['green', null], ['orange', 1800], ['red', 3600]]),
    ),
    timeseries(
      'Discovery failures',
      'rate(cdss_discovery_failures_total[$__rate_interval]): getClusterInfoList listings per second that failed, by region; the last known cluster set is kept and the listing is retried at the next refresh. Empty unless the exporter has `discovery:` blocks (--demo has one, for KR).',
      [16, 62, 8, 5],
      'reqps',
      [target('sum by (job, instance, region) (rate(cdss_discovery_failures_total{%s}[$__rate_interval]))' % byRegion, '{{instance}} {{region}}', instant=false)],
    ),
    table(
      'Node status (getClusterStatus)',
      'cdss_cluster_node_status: every broker and ZooKeeper node that getClusterStatus listed, with its status as it came and whether the exporter counts it as failing (failing nodes first), for clusters whose precheck said no (or every cluster with diagnosis.every_round). Empty while every cluster is ready: healthy clusters cost no extra call.',
      [0, 67, 16, 6],
      [target('cdss_cluster_node_status{%s}' % byCluster, table=true)],
      {
        excludeByName+: { job: true },
        indexByName: { cluster: 0, region: 1, role: 2, hostname: 3, status: 4, failing: 5, instance: 6 },
        renameByName: { failing: 'verdict' },
      },
      overrides=[columnOverride('failing', [
        ['mappings', [valueMap([['true', 'failing', 'red'], ['false', 'ok', 'green']])]],
        ['custom.cellOptions', { type: 'color-text' }],
      ])],
      sortBy=[{ displayName: 'verdict', desc: true }],
    ),
    stat(
      'Brokers up',
      'cdss_cluster_brokers_up and cdss_cluster_brokers: broker nodes up and in all, from getClusterStatus, per cluster whose status was read.',
      [16, 67, 8, 6],
      'none',
      [
        target('cdss_cluster_brokers_up{%s}' % byCluster, '{{cluster}} ({{region}}) up'),
        target('cdss_cluster_brokers{%s}' % byCluster, '{{cluster}} ({{region}}) in all', refId='B'),
      ],
      steps([['text', null]]),
      colorMode='none',
    ),
  ],

  grafanaDashboards+:: {
    'cdss-precheck.json': {
      id: null,
      uid: cfg.dashboardUID,
      title: cfg.dashboardTitle,
      description: "NAVER Cloud CDSS rollingRestartPreCheck results from cdss-precheck-exporter: which Kafka clusters may be rolling-restarted now, which ones NCP is changing, and the exporter's own health.",
      tags: cfg.dashboardTags,
      timezone: 'browser',
      editable: true,
      graphTooltip: 1,
      schemaVersion: 39,
      version: 1,
      refresh: cfg.dashboardRefresh,
      time: { from: 'now-6h', to: 'now' },
      timepicker: {},
      fiscalYearStartMonth: 0,
      liveNow: false,
      annotations: {
        list: [{
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        }],
      },
      links: [],
      templating: {
        list: [
          {
            name: 'datasource',
            label: 'Data source',
            type: 'datasource',
            query: 'prometheus',
            hide: 0,
            includeAll: false,
            multi: false,
            options: [],
            refresh: 1,
            regex: '',
            skipUrlSync: false,
          },
          {
            name: 'job',
            label: 'Job',
            type: 'query',
            datasource: ds,
            query: 'label_values(cdss_exporter_build_info{%s}, job)' % cfg.selector,
            refresh: 2,
            sort: 1,
            includeAll: true,
            multi: false,
            current: { selected: true, text: 'All', value: '$__all' },
            options: [],
            hide: 0,
            regex: '',
            skipUrlSync: false,
          },
        ] + [
          {
            name: v[0],
            label: v[1],
            type: 'query',
            datasource: ds,
            query: 'label_values(cdss_precheck_ok{%s}, %s)' % [v[2], v[0]],
            refresh: 2,
            sort: 1,
            includeAll: true,
            multi: true,
            current: { selected: true, text: ['All'], value: ['$__all'] },
            options: [],
            hide: 0,
            regex: '',
            skipUrlSync: false,
            allValue: '.*',
          }
          for v in [['region', 'Region', byJob], ['cluster', 'Cluster', byRegion]]
        ],
      },
      // Panel ids in order, from 1.
      panels: std.mapWithIndex(function(i, p) p { id: i + 1 }, panels),
    },
  },
}
