// The mixin's settings: override any of them with
//   (import 'mixin.libsonnet') + { _config+:: { selector: 'job="kafka-precheck"' } }
// or, with the files rendered as this repository renders them,
//   jsonnet -S -m OUT --tla-code config='{selector: "job=\"kafka-precheck\""}' dashboards/render.jsonnet
{
  _config+:: {
    // Selects the exporter's series in every alert and in the dashboard's job variable. The
    // README's scrape config calls the job `cdss-precheck`.
    selector: 'job="cdss-precheck"',

    // Where each alert's runbook_url points; %s is the alert's name in lower case (the anchor
    // GitHub gives the README's "### CdssPrecheckNotReady" heading).
    runbookURLPattern: 'https://github.com/cdss-precheck-exporter/cdss-precheck-exporter/blob/main/README.md#%s',

    // How long a condition lasts before its alert fires (Prometheus durations, `Nm` or `Nh`), so
    // that one failed precheck or scrape (a "blip") never pages.
    notReadyFor: '15m',
    authFailingFor: '5m',
    rateLimitedFor: '15m',
    scheduleBehindFor: '15m',
    exporterDownFor: '5m',
    configReloadFailedFor: '5m',

    // CdssPrecheckStale: no answer from CDSS for more than this many precheck intervals (a
    // cluster that never answered: after this many + 1 prechecks, the start-up one included).
    staleIntervals: 3,
    // CdssPrecheckScheduleBehind: prechecks start more than this fraction of an interval late.
    scheduleBehindFraction: 0.25,
    // CdssExporterCredentialsExpiring: keys expire within `credentialsExpiringSeconds` while a
    // refresh failed in the last `credentialsRefreshWindow`, or within
    // `credentialsLastSeconds` whatever the failures.
    credentialsExpiringSeconds: 600,
    credentialsRefreshWindow: '15m',
    credentialsLastSeconds: 60,
    // CdssClusterChangingTooLong: NCP has reported a cluster changing for longer than this (a
    // rolling restart of a large cluster takes tens of minutes; one that never ends needs a look).
    clusterChangingTooLongSeconds: 2 * 3600,

    // The dashboard.
    dashboardUID: 'cdss-precheck',
    dashboardTitle: 'CDSS rolling-restart precheck',
    dashboardTags: ['cdss', 'kafka', 'ncp', 'cdss-precheck-exporter'],
    dashboardRefresh: '30s',
  },
}
