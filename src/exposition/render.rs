//! State → the text exposition: a consistent snapshot of every cluster's numbers, then family
//! after family. Every value is derived from the `Outcome` in the state; nothing is re-decided
//! here. Before a cluster's first precheck finishes it exposes only `cdss_precheck_ok 0` and
//! `cdss_precheck_runs_total 0`: "never checked" never reads as ok. Families without samples are
//! left out.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::BuildInfo;
use super::body::{Body, Chunks};
use super::families::*;
use super::text::{Value, escape_label_value, header, sample};
use crate::credentials::StatusBoard;
use crate::ncp::cluster_status::Diagnosis;
use crate::ncp::region::Region;
use crate::ncp::usage::ApiUsage;
use crate::outcome::FailureReason;
use crate::state::{ClusterStatus, State};

/// Buffers a render fills and the next render reuses (cleared, capacity kept).
#[derive(Debug, Default)]
pub(super) struct Scratch {
    /// Every cluster's `{cluster="..",region=".."` (unclosed), back to back.
    labels: String,
    /// Every cluster's extra `cdss_cluster_info` labels, back to back.
    info: String,
    /// One per cluster, in name order.
    rows: Vec<Row>,
}

/// Seconds since the Unix epoch.
pub(super) fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Renders the whole exposition of `state` into a new body, reusing `scratch`'s buffers.
pub(super) fn render(
    scratch: &mut Scratch,
    state: &State,
    build: &BuildInfo,
    interval: Option<Duration>,
    usage: Option<&ApiUsage>,
    credentials: Option<&StatusBoard>,
) -> Body {
    // Copy the numbers out under the state's read lock (a consistent snapshot, and the
    // scheduler never waits on the formatting), then write family after family.
    let Scratch { labels, info, rows } = scratch;
    labels.clear();
    info.clear();
    rows.clear();
    state.for_each(|s| rows.push(Row::new(s, labels, info)));
    let ready = state.is_ready();

    let mut out = Chunks::new();
    let rows: &[Row] = rows;
    let (labels, info): (&str, &str) = (labels, info);
    let family = |out: &mut Chunks, f: &Family, value: &dyn Fn(&Row) -> Option<Value>| {
        let mut wrote_header = false;
        for r in rows {
            if let Some(v) = value(r) {
                if !wrote_header {
                    // Families without samples are left out: Prometheus accepts empty
                    // ones, but promtool's linter and humans read better without them.
                    header(out, f);
                    wrote_header = true;
                }
                sample(out, f, &labels[r.labels.clone()], "", v);
            }
        }
    };
    family(&mut out, &OK, &|r| Some(Value::Int(i64::from(r.ok))));
    family(&mut out, &DURATION, &|r| r.last.map(|l| Value::Float(l.0)));
    family(&mut out, &ERROR_CODE, &|r| r.last.map(|l| Value::Int(l.1)));
    family(&mut out, &LAST_RUN, &|r| r.last.map(|l| Value::Float(l.2)));
    family(&mut out, &LAST_SUCCESS, &|r| {
        r.last_success.map(Value::Float)
    });
    family(&mut out, &RUNS, &|r| Some(Value::Uint(r.runs)));
    family(&mut out, &SCHEDULE_LAG, &|r| {
        r.schedule_lag.map(Value::Float)
    });
    if rows.iter().any(|r| r.failures.iter().any(|&n| n > 0)) {
        header(&mut out, &FAILURES);
        for r in rows {
            let l = &labels[r.labels.clone()];
            for reason in FailureReason::ALL {
                let n = r.failures[reason.index()];
                if n > 0 {
                    // Reason values are fixed identifiers: nothing to escape.
                    let extra = [",reason=\"", reason.as_str(), "\""].concat();
                    sample(&mut out, &FAILURES, l, &extra, Value::Uint(n));
                }
            }
        }
    }
    if !rows.is_empty() {
        header(&mut out, &CLUSTER_INFO);
        for r in rows {
            let (l, i) = (&labels[r.labels.clone()], &info[r.info.clone()]);
            sample(&mut out, &CLUSTER_INFO, l, i, Value::Int(1));
        }
    }
    render_diagnoses(&mut out, rows, labels);
    render_discovery(&mut out, state);
    if let Some(usage) = usage {
        render_usage(&mut out, usage);
    }
    let reload = state.reload();
    header(&mut out, &RELOAD_OK);
    sample(
        &mut out,
        &RELOAD_OK,
        "",
        "",
        Value::Int(i64::from(reload.successful)),
    );
    header(&mut out, &RELOAD_TIME);
    sample(
        &mut out,
        &RELOAD_TIME,
        "",
        "",
        Value::Float(unix(reload.last_success)),
    );
    if let Some(board) = credentials {
        render_credentials(&mut out, board);
    }
    if let Some(skew) = state.clock_skew() {
        header(&mut out, &CLOCK_SKEW);
        sample(&mut out, &CLOCK_SKEW, "", "", Value::Float(skew));
    }
    header(&mut out, &CLUSTERS);
    sample(&mut out, &CLUSTERS, "", "", Value::Uint(rows.len() as u64));
    header(&mut out, &READY);
    sample(&mut out, &READY, "", "", Value::Int(i64::from(ready)));
    if let Some(interval) = interval {
        header(&mut out, &INTERVAL);
        let secs = interval.as_secs_f64();
        sample(&mut out, &INTERVAL, "", "", Value::Float(secs));
    }
    header(&mut out, &BUILD_INFO);
    let mut build_labels = String::from("{revision=\"");
    escape_label_value(&mut build_labels, build.revision);
    build_labels.push_str("\",version=\"");
    escape_label_value(&mut build_labels, build.version);
    build_labels.push('"');
    sample(&mut out, &BUILD_INFO, &build_labels, "", Value::Int(1));
    out.finish()
}

/// One cluster's values, copied out of the state for rendering.
#[derive(Debug)]
pub(super) struct Row {
    /// This cluster's `{cluster="..",region=".."` (unclosed) in [`Scratch::labels`].
    labels: Range<usize>,
    /// This cluster's extra `cdss_cluster_info` labels in [`Scratch::info`].
    info: Range<usize>,
    /// `cdss_precheck_ok`.
    ok: bool,
    /// `cdss_precheck_runs_total`.
    runs: u64,
    /// Latency in seconds, error code, Unix time finished: `None` before the first precheck.
    last: Option<(f64, i64, f64)>,
    /// Unix time of the last answer from CDSS.
    last_success: Option<f64>,
    /// `cdss_precheck_schedule_lag_seconds`: `None` before the first periodic precheck.
    schedule_lag: Option<f64>,
    /// What `getClusterStatus` said, and when (Unix time); boxed, as most clusters have none.
    diagnosis: Option<Box<(Diagnosis, f64)>>,
    /// `cdss_precheck_failures_total` by `FailureReason::index`.
    failures: [u64; FailureReason::ALL.len()],
}

impl Row {
    fn new(s: &ClusterStatus, labels: &mut String, info: &mut String) -> Self {
        let (labels_start, info_start) = (labels.len(), info.len());
        labels.push_str("{cluster=\"");
        let c = &s.cluster;
        escape_label_value(labels, &c.name);
        labels.push_str("\",region=\"");
        escape_label_value(labels, c.region.as_str());
        labels.push('"');
        info.push_str(",service_group_instance_no=\"");
        info.push_str(itoa::Buffer::new().format(c.service_group_instance_no));
        // What discovery reported; static clusters have none, and an empty label is the same
        // as no label to Prometheus, so those are left out.
        if let Some(d) = c.info.as_ref() {
            for (name, value) in [
                ("kafka_version", d.kafka_version.as_str()),
                ("status", d.status.as_str()),
                ("vpc_name", d.vpc_name.as_str()),
            ] {
                if !value.is_empty() {
                    info.push_str("\",");
                    info.push_str(name);
                    info.push_str("=\"");
                    escape_label_value(info, value);
                }
            }
        }
        info.push('"');
        Self {
            labels: labels_start..labels.len(),
            info: info_start..info.len(),
            ok: s.last.as_ref().is_some_and(|l| l.outcome.is_ready()),
            runs: s.runs_total,
            last: s.last.as_ref().map(|l| {
                (
                    l.meta.latency.as_secs_f64(),
                    l.outcome.error_code(),
                    unix(l.at_wall),
                )
            }),
            last_success: s.last_success.map(unix),
            failures: s.failures,
            schedule_lag: s.schedule_lag.map(|d| d.as_secs_f64()),
            diagnosis: s
                .diagnosis
                .as_deref()
                .map(|(d, at)| Box::new((d.clone(), unix(*at)))),
        }
    }
}

/// Discovery families, one sample per region (blocks of one region, e.g. for two accounts, add up).
fn render_discovery(out: &mut Chunks, state: &State) {
    let mut by_region: BTreeMap<Region, (usize, Option<SystemTime>, u64)> = BTreeMap::new();
    for d in state.discovery() {
        let e = by_region.entry(d.region).or_default();
        e.0 += d.clusters;
        e.1 = e.1.max(d.last_success);
        e.2 += d.failures;
    }
    if by_region.is_empty() {
        return;
    }
    let label = |r: &Region| format!("{{region=\"{}\"", r.as_str());
    if by_region.values().any(|v| v.1.is_some()) {
        // A region whose discovery never listed has no count: "never listed" is not 0 clusters.
        header(out, &DISCOVERY_CLUSTERS);
        for (r, (n, t, _)) in &by_region {
            if t.is_some() {
                sample(
                    out,
                    &DISCOVERY_CLUSTERS,
                    &label(r),
                    "",
                    Value::Uint(*n as u64),
                );
            }
        }
        header(out, &DISCOVERY_LAST_SUCCESS);
        for (r, (_, t, _)) in &by_region {
            if let Some(t) = t {
                sample(
                    out,
                    &DISCOVERY_LAST_SUCCESS,
                    &label(r),
                    "",
                    Value::Float(unix(*t)),
                );
            }
        }
    }
    header(out, &DISCOVERY_FAILURES);
    for (r, (_, _, f)) in &by_region {
        sample(out, &DISCOVERY_FAILURES, &label(r), "", Value::Uint(*f));
    }
}

/// `cdss_exporter_api_requests_total`: one sample per account, operation and result seen.
fn render_usage(out: &mut Chunks, usage: &ApiUsage) {
    let counts = usage.snapshot();
    if counts.is_empty() {
        return;
    }
    header(out, &API_REQUESTS);
    let mut labels = String::new();
    for (account, operation, result, n) in counts {
        labels.clear();
        labels.push_str("{account=\"");
        // Account names are restricted to letters, digits, `_` and `-`; escaped all the same.
        escape_label_value(&mut labels, &account);
        labels.push_str("\",operation=\"");
        labels.push_str(operation.as_str());
        labels.push_str("\",result=\"");
        labels.push_str(result);
        labels.push('"');
        sample(out, &API_REQUESTS, &labels, "", Value::Uint(n));
    }
}

/// The families from `getClusterStatus`, for the clusters whose status was read. A missing count
/// or colour has no sample (never 0); node and colour values are kept as they came.
fn render_diagnoses(out: &mut Chunks, rows: &[Row], labels: &str) {
    let read: Vec<(&str, &Diagnosis, f64)> = rows
        .iter()
        .filter_map(|r| {
            let (d, at) = r.diagnosis.as_deref()?;
            Some((&labels[r.labels.clone()], d, *at))
        })
        .collect();
    if read.is_empty() {
        return;
    }
    type Count = (&'static Family, fn(&Diagnosis) -> Option<i64>);
    let counts: [Count; 4] = [
        (&BROKERS_UP, |d| d.brokers.up),
        (&BROKERS, |d| d.brokers.total),
        (&ZOOKEEPERS_UP, |d| d.zookeeper.up),
        (&ZOOKEEPERS, |d| d.zookeeper.total),
    ];
    for (f, value) in counts {
        if read.iter().any(|(_, d, _)| value(d).is_some()) {
            header(out, f);
            for (l, d, _) in &read {
                if let Some(v) = value(d) {
                    sample(out, f, l, "", Value::Int(v));
                }
            }
        }
    }
    let mut extra = String::new();
    let roles = |d: &Diagnosis| {
        [
            ("broker", d.brokers.colour.clone()),
            ("zookeeper", d.zookeeper.colour.clone()),
            ("cmak", d.cmak.clone()),
        ]
    };
    if read
        .iter()
        .any(|(_, d, _)| roles(d).iter().any(|(_, s)| s.is_some()))
    {
        header(out, &ROLE_STATUS);
        for (l, d, _) in &read {
            for (role, status) in roles(d) {
                if let Some(status) = status {
                    extra.clear();
                    extra.push_str(",role=\"");
                    extra.push_str(role);
                    extra.push_str("\",status=\"");
                    escape_label_value(&mut extra, &status);
                    extra.push('"');
                    sample(out, &ROLE_STATUS, l, &extra, Value::Int(1));
                }
            }
        }
    }
    if read
        .iter()
        .any(|(_, d, _)| d.nodes().any(|(_, n, _)| n.hostname.is_some()))
    {
        header(out, &NODE_STATUS);
        for (l, d, _) in &read {
            for (role, n, failing) in d.nodes() {
                // A node without a hostname has no series: two of them would be one series.
                let Some(hostname) = &n.hostname else {
                    continue;
                };
                extra.clear();
                extra.push_str(",role=\"");
                extra.push_str(role);
                extra.push_str("\",hostname=\"");
                escape_label_value(&mut extra, hostname);
                extra.push_str("\",status=\"");
                escape_label_value(&mut extra, n.status.as_deref().unwrap_or(""));
                extra.push_str("\",failing=\"");
                extra.push_str(if failing { "true" } else { "false" });
                extra.push('"');
                sample(out, &NODE_STATUS, l, &extra, Value::Int(1));
            }
        }
    }
    header(out, &STATUS_READ);
    for (l, _, at) in &read {
        sample(out, &STATUS_READ, l, "", Value::Float(*at));
    }
}

/// Key expiry and refresh failures, one sample per account that has them.
fn render_credentials(out: &mut Chunks, board: &StatusBoard) {
    let accounts = board.accounts();
    let label = |account: &str| {
        let mut l = String::from("{account=\"");
        escape_label_value(&mut l, account);
        l.push('"');
        l
    };
    if accounts.iter().any(|a| a.expires.is_some()) {
        header(out, &CREDENTIALS_EXPIRY);
        for a in &accounts {
            if let Some(t) = a.expires {
                let l = label(&a.account);
                sample(out, &CREDENTIALS_EXPIRY, &l, "", Value::Float(unix(t)));
            }
        }
    }
    if accounts.iter().any(|a| a.refresh_failures.is_some()) {
        header(out, &CREDENTIALS_REFRESH_FAILURES);
        for a in &accounts {
            if let Some(n) = a.refresh_failures {
                let l = label(&a.account);
                sample(out, &CREDENTIALS_REFRESH_FAILURES, &l, "", Value::Uint(n));
            }
        }
    }
}
