// The alerting rules. Rendered to dashboards/alerts.yaml and deploy/kubernetes/prometheusrule.yaml
// by scripts/mixin.sh; promtool tests in dashboards/alerts.test.yaml.
//
// Every per-cluster alert has the value of cdss_precheck_last_error_code (the `and` keeps the
// left-hand side), so descriptions can quote the error code. Thresholds: one failed precheck (a
// "blip") never fires anything; see the README's "Alerts".

// '15m' -> '15 minutes', '2h' -> '2 hours': durations as the descriptions say them.
local words(d) =
  local n = std.parseInt(std.substr(d, 0, std.length(d) - 1));
  local unit = { m: 'minute', h: 'hour' }[d[std.length(d) - 1]];
  '%d %s%s' % [n, unit, if n == 1 then '' else 's'];
local secondsWords(s) = if s % 3600 == 0 then words('%dh' % (s / 3600)) else words('%dm' % (s / 60));

// A YAML `>-` block: the lines of a text block joined by single spaces.
local fold(text) = std.join(' ', std.split(std.rstripChars(text, '\n'), '\n'));

// "2 of 3 brokers up." from the cluster's last status read, when there was one; `{{-` trims the
// space before it, so nothing shows without a read.
local brokersUp = fold(|||
  {{- with printf `cdss_cluster_brokers_up{job="%s",instance="%s",cluster="%s"} and on () cdss_cluster_brokers{job="%s",instance="%s",cluster="%s"}` $labels.job $labels.instance $labels.cluster $labels.job $labels.instance $labels.cluster | query }} {{ . | first | value | printf "%.0f" }}{{ end }}
  {{- with printf `cdss_cluster_brokers{job="%s",instance="%s",cluster="%s"} and on () cdss_cluster_brokers_up{job="%s",instance="%s",cluster="%s"}` $labels.job $labels.instance $labels.cluster $labels.job $labels.instance $labels.cluster | query }} of {{ . | first | value | printf "%.0f" }} brokers up.{{ end }}
|||);

{
  local cfg = $._config,
  local alert(name, severity, expr, summary, description, forDuration=null) = {
    alert: name,
    expr: expr,
    labels: { severity: severity },
    annotations: {
      summary: summary,
      description: description,
      runbook_url: cfg.runbookURLPattern % std.asciiLower(name),
    },
  } + (if forDuration == null then {} else { 'for': forDuration }),

  prometheusAlerts+:: {
    groups+: [{
      name: 'cdss-precheck',
      rules: [
        alert(
          'CdssPrecheckNotReady',
          'critical',
          // Not while NCP reports the cluster changing: a rolling restart (or another change) takes
          // brokers down one at a time on purpose. CdssClusterChangingTooLong covers a change that
          // does not end; when the change ends and the cluster is still not ready, `for` starts anew.
          |||
            cdss_precheck_last_error_code{%(selector)s}
              and on (job, instance, cluster, region)
            cdss_precheck_ok{%(selector)s} == 0
              unless on (job, instance, cluster, region)
            cdss_cluster_changing{%(selector)s} == 1
          ||| % cfg,
          'CDSS cluster {{ $labels.cluster }} ({{ $labels.region }}) must not be rolling-restarted',
          fold(|||
            rollingRestartPreCheck for {{ $labels.cluster }} in region {{ $labels.region }} has not
            passed for %s; last error code {{ printf "%%.0f" $value }}
            ({{ if eq $value 0.0 }}CDSS answered: not every node is available{{ else }}no usable answer from CDSS{{ end }}).
            {{- with printf `cdss_cluster_node_status{job="%%s",instance="%%s",cluster="%%s",failing="true"}` $labels.job $labels.instance $labels.cluster | query }}{{ range . }} {{ .Labels.role }} {{ .Labels.hostname }} {{ with .Labels.status }}is {{ . }}{{ else }}status unknown{{ end }};{{ end }}{{ end }}
          ||| % words(cfg.notReadyFor)) + ' ' + brokersUp + ' Do not start a rolling restart.',
          cfg.notReadyFor,
        ),

        alert(
          'CdssClusterChangingTooLong',
          'warning',
          // The since-timestamp exists only while NCP reports the cluster changing.
          |||
            time() - cdss_cluster_changing_since_timestamp_seconds{%(selector)s}
              > %(clusterChangingTooLongSeconds)d
          ||| % cfg,
          'CDSS cluster {{ $labels.cluster }} ({{ $labels.region }}) has been changing for more than %s' % secondsWords(cfg.clusterChangingTooLongSeconds),
          fold(|||
            NCP has reported {{ $labels.cluster }} in region {{ $labels.region }} as changing (a
            rolling restart, scale-out or another change) for {{ $value | humanizeDuration }},
            more than %s.
          ||| % secondsWords(cfg.clusterChangingTooLongSeconds)) + ' ' + brokersUp + ' ' + fold(|||
            A change that does not end needs a look; meanwhile CdssPrecheckNotReady stays silent
            for this cluster.
          |||),
        ),

        alert(
          'CdssPrecheckStale',
          'warning',
          // No answer from CDSS for more than `staleIntervals` precheck intervals. A cluster that
          // never got an answer since the exporter started has no last_success series: after
          // `staleIntervals` + 1 prechecks (the start-up one plus those on its schedule) that
          // counts as stale too.
          |||
            cdss_precheck_last_error_code{%(selector)s}
              and on (job, instance, cluster, region)
            (
                (time() - cdss_precheck_last_success_timestamp_seconds{%(selector)s})
                  > on (job, instance) group_left ()
                %(staleIntervals)d * cdss_exporter_precheck_interval_seconds{%(selector)s}
              or
                (
                  cdss_precheck_runs_total{%(selector)s} >= %(staleRuns)d
                    unless on (job, instance, cluster, region)
                  cdss_precheck_last_success_timestamp_seconds{%(selector)s}
                )
            )
          ||| % (cfg { staleRuns: cfg.staleIntervals + 1 }),
          'No answer from CDSS for {{ $labels.cluster }} ({{ $labels.region }}) in %d precheck intervals' % cfg.staleIntervals,
          fold(|||
            The exporter has had no answer from CDSS about {{ $labels.cluster }} in region
            {{ $labels.region }} for more than %d precheck intervals, so its cdss_precheck_ok is
            out of date; last error code {{ printf "%%.0f" $value }}.
          ||| % cfg.staleIntervals),
        ),

        alert(
          'CdssPrecheckAuthFailing',
          'critical',
          |||
            cdss_precheck_last_error_code{%(selector)s} == 200
              or
            cdss_precheck_last_error_code{%(selector)s} == 210
          ||| % cfg,
          "NCP rejects the exporter's API keys ({{ $labels.instance }})",
          fold(|||
            This is a credentials problem, not a cluster problem: the NCP API gateway rejected the
            precheck for {{ $labels.cluster }} in region {{ $labels.region }} with error code
            {{ printf "%.0f" $value }}
            ({{ if eq $value 200.0 }}authentication failed: wrong access or secret key, or the exporter host's clock is more than 5 minutes off{{ else }}permission denied: the key may not call CDSS{{ end }}).
            Every cluster prechecked with these keys is blind until the keys are fixed.
          |||),
          cfg.authFailingFor,
        ),

        alert(
          'CdssPrecheckRateLimited',
          'warning',
          // API gateway codes for HTTP 429: 400 quota exceeded, 410 throttle limited, 420 rate limited.
          |||
            cdss_precheck_last_error_code{%(selector)s} == 400
              or
            cdss_precheck_last_error_code{%(selector)s} == 410
              or
            cdss_precheck_last_error_code{%(selector)s} == 420
          ||| % cfg,
          'NCP rate-limits the prechecks of {{ $labels.cluster }} ({{ $labels.region }})',
          fold(|||
            The NCP API gateway has answered the precheck for {{ $labels.cluster }} in region
            {{ $labels.region }} with HTTP 429 (error code {{ printf "%%.0f" $value }}) for %s.
            The exporter backs off, so this cluster's status is checked less often.
          ||| % words(cfg.rateLimitedFor)),
          cfg.rateLimitedFor,
        ),

        alert(
          'CdssPrecheckScheduleBehind',
          'warning',
          // Periodic prechecks of clusters that do answer start late against their slot: the
          // budgets cannot keep up (too many clusters for concurrency and interval, or a gateway
          // that answers slowly). Clusters without an answer (code -1) are left out: they wait in
          // their own lane on purpose.
          |||
            (
                cdss_precheck_schedule_lag_seconds{%(selector)s}
                  > on (job, instance) group_left ()
                %(scheduleBehindFraction)g * cdss_exporter_precheck_interval_seconds{%(selector)s}
            )
              unless on (job, instance, cluster, region)
            cdss_precheck_last_error_code{%(selector)s} == -1
          ||| % cfg,
          'Prechecks of {{ $labels.cluster }} ({{ $labels.region }}) start late',
          fold(|||
            The last periodic precheck of {{ $labels.cluster }} in region {{ $labels.region }}
            started {{ printf "%%.0f" $value }} s after its slot, and prechecks have been this late
            for %s: the exporter cannot keep up with its schedule, so its answers are
            older than the interval says.
          ||| % words(cfg.scheduleBehindFor)),
          cfg.scheduleBehindFor,
        ),

        alert(
          'CdssExporterDown',
          'critical',
          |||
            up{%(selector)s} == 0
              or
            absent(up{%(selector)s})
          ||| % cfg,
          'cdss-precheck-exporter {{ with $labels.instance }}{{ . }} {{ end }}is down or not scraped',
          fold(|||
            Prometheus has not scraped cdss-precheck-exporter
            {{ with $labels.instance }}at {{ . }}{{ else }}(no target matching %s at all){{ end }}
            for %s. Every cluster it prechecks (all clusters and regions in its config) has
            no current data; the error codes are unknown.
          ||| % [cfg.selector, words(cfg.exporterDownFor)]),
          cfg.exporterDownFor,
        ),

        alert(
          'CdssExporterConfigReloadFailed',
          'warning',
          |||
            cdss_exporter_config_last_reload_successful{%(selector)s} == 0
          ||| % cfg,
          'cdss-precheck-exporter {{ $labels.instance }} cannot load its new config',
          fold(|||
            The last configuration reload of {{ $labels.instance }} failed %s ago or
            earlier; it still runs the previous config, so clusters added since (any cluster,
            any region) are not prechecked. No error code applies: the exporter logs the file,
            line and field.
          ||| % words(cfg.configReloadFailedFor)),
          cfg.configReloadFailedFor,
        ),

        alert(
          'CdssExporterCredentialsExpiring',
          'critical',
          // Server role keys are refreshed before they expire (5 minutes before, or halfway for
          // short-lived keys); a failed refresh keeps the old keys and is retried with back-off.
          // Little time left while refreshes fail: the account goes blind when they expire. Less
          // than `credentialsLastSeconds` left whatever the failure counter says: no refresh
          // replaced them.
          |||
            (
                (cdss_exporter_credentials_expiry_timestamp_seconds{%(selector)s} - time()) < %(credentialsExpiringSeconds)d
                  and on (job, instance, account)
                increase(cdss_exporter_credentials_refresh_failures_total{%(selector)s}[%(credentialsRefreshWindow)s]) > 0
            )
            or
            (cdss_exporter_credentials_expiry_timestamp_seconds{%(selector)s} - time()) < %(credentialsLastSeconds)d
          ||| % cfg,
          'API keys of account {{ $labels.account }} expire soon and cannot be refreshed ({{ $labels.instance }})',
          fold(|||
            The server role keys of account {{ $labels.account }} expire in
            {{ printf "%%.0f" $value }} s, and no refresh from the metadata API has replaced them
            (refreshes failed in the last %s, or none came in time). When they expire, every cluster of this account (any cluster,
            any region) is prechecked with no keys (reason no_credentials).
          ||| % words(cfg.credentialsRefreshWindow)),
        ),
      ],
    }],
  },
}
