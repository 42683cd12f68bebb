//! [`Metrics`]: the state → metric families, at every scrape. Every value is derived from the
//! `Outcome` in the state; nothing is re-decided here. Before a cluster's first precheck
//! finishes it has only `cdss_precheck_ok 0` and `cdss_precheck_runs_total 0`: "never checked"
//! never reads as ok. A family without samples is left out (the registry drops it). Labels are
//! written in the order given here; the registry sorts families by name and samples by labels.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

use super::BuildInfo;
use super::families::*;
use crate::credentials::StatusBoard;
use crate::ncp::cluster_status::Diagnosis;
use crate::ncp::region::Region;
use crate::ncp::usage::ApiUsage;
use crate::outcome::FailureReason;
use crate::reload::LiveSettings;
use crate::state::{ClusterStatus, State};

/// The exporter's own families, read when the registry gathers from the state, the API call
/// counts, the keys' status and the running config: no copy of them is kept here.
#[derive(Debug)]
pub struct Metrics {
    /// The latest results.
    state: Arc<State>,
    /// Static labels of `cdss_exporter_build_info`.
    build: BuildInfo,
    /// The running config's interval, for `cdss_exporter_precheck_interval_seconds` (alert rules
    /// count "no answer for 3 intervals" without hard-coding it).
    live: Option<LiveSettings>,
    /// The NCP calls made, for `cdss_exporter_api_requests_total`.
    usage: Option<Arc<ApiUsage>>,
    /// What the keyring in use says about its keys (expiry, refresh failures).
    credentials: Option<StatusBoard>,
    /// One per family of the catalogue, for the registry's check that names are unique.
    descs: Vec<Desc>,
}

impl Metrics {
    /// The families of `state` and this build.
    pub fn new(state: Arc<State>, build: BuildInfo) -> Self {
        Self {
            state,
            build,
            live: None,
            usage: None,
            credentials: None,
            descs: Vec::new(),
        }
    }

    /// Also exposes the interval of the running config.
    pub(crate) fn with_live(mut self, live: LiveSettings) -> Self {
        self.live = Some(live);
        self
    }

    /// Also exposes the API calls counted in `usage`.
    pub(crate) fn with_usage(mut self, usage: Arc<ApiUsage>) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Also exposes the keys' expiry and refresh failures.
    pub(crate) fn with_credentials(mut self, board: StatusBoard) -> Self {
        self.credentials = Some(board);
        self
    }

    /// With the descriptors of the catalogue, for registering.
    pub(super) fn with_descs(mut self) -> prometheus::Result<Self> {
        self.descs = ALL
            .iter()
            .map(|f| Desc::new(f.name.into(), f.help.into(), Vec::new(), HashMap::new()))
            .collect::<prometheus::Result<_>>()?;
        Ok(self)
    }

    /// The exporter-wide families: reload, clock skew, interval, build.
    fn exporter(&self) -> Vec<MetricFamily> {
        let reload = self.state.reload();
        let mut out = vec![
            single(&RELOAD_OK, &[], bool01(reload.successful)),
            single(&RELOAD_TIME, &[], unix(reload.last_success)),
        ];
        if let Some(skew) = self.state.clock_skew() {
            out.push(single(&CLOCK_SKEW, &[], skew));
        }
        if let Some(live) = &self.live {
            let interval = crate::lock::read(live).interval.as_secs_f64();
            out.push(single(&INTERVAL, &[], interval));
        }
        let build = [
            ("revision", self.build.revision),
            ("version", self.build.version),
        ];
        out.push(single(&BUILD_INFO, &build, 1.0));
        out
    }
}

impl Collector for Metrics {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut out = clusters(&self.state);
        out.extend(discovery(&self.state));
        if let Some(usage) = &self.usage {
            out.push(api_requests(usage));
        }
        if let Some(board) = &self.credentials {
            out.extend(credentials(board));
        }
        out.extend(self.exporter());
        out
    }
}

/// An empty family.
fn family(f: &Family) -> MetricFamily {
    let mut mf = MetricFamily::default();
    mf.set_name(f.name.into());
    mf.set_help(f.help.into());
    mf.set_field_type(f.kind);
    mf
}

/// Appends a sample with `labels`, in that order.
fn add(mf: &mut MetricFamily, labels: &[(&str, &str)], value: f64) {
    let pairs = labels.iter().map(|(name, value)| {
        let mut l = LabelPair::default();
        l.set_name((*name).into());
        l.set_value((*value).into());
        l
    });
    let mut m = Metric::from_label(pairs.collect());
    if mf.get_field_type() == MetricType::COUNTER {
        let mut c = Counter::default();
        c.set_value(value);
        m.set_counter(c);
    } else {
        let mut g = Gauge::default();
        g.set_value(value);
        m.set_gauge(g);
    }
    mf.mut_metric().push(m);
}

/// A family of one sample.
fn single(f: &Family, labels: &[(&str, &str)], value: f64) -> MetricFamily {
    let mut mf = family(f);
    add(&mut mf, labels, value);
    mf
}

fn bool01(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Seconds since the Unix epoch.
fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One cluster's value in a family, or `None` where the cluster has no sample.
type Value = fn(&ClusterStatus) -> Option<f64>;

/// The families with at most one sample per cluster, labelled with cluster and region only. A
/// count `getClusterStatus` did not give has no sample (never 0).
const PER_CLUSTER: [(&Family, Value); 14] = [
    (&OK, |s| {
        Some(bool01(
            s.last.as_ref().is_some_and(|l| l.outcome.is_ready()),
        ))
    }),
    (&DURATION, |s| {
        s.last.as_ref().map(|l| l.meta.latency.as_secs_f64())
    }),
    (&ERROR_CODE, |s| {
        s.last.as_ref().map(|l| l.outcome.error_code() as f64)
    }),
    (&LAST_RUN, |s| s.last.as_ref().map(|l| unix(l.at_wall))),
    (&LAST_SUCCESS, |s| s.last_success.map(unix)),
    (&RUNS, |s| Some(s.runs_total as f64)),
    (&SCHEDULE_LAG, |s| s.schedule_lag.map(|d| d.as_secs_f64())),
    (&BROKERS_UP, |s| Some(diagnosis(s)?.brokers.up? as f64)),
    (&BROKERS, |s| Some(diagnosis(s)?.brokers.total? as f64)),
    (&ZOOKEEPERS_UP, |s| Some(diagnosis(s)?.zookeeper.up? as f64)),
    (&ZOOKEEPERS, |s| Some(diagnosis(s)?.zookeeper.total? as f64)),
    (&CHANGING, |s| Some(bool01(s.is_changing()))),
    (&CHANGING_SINCE, |s| s.changing_since.map(unix)),
    (&STATUS_READ, |s| {
        s.diagnosis.as_deref().map(|(_, at)| unix(*at))
    }),
];

fn diagnosis(s: &ClusterStatus) -> Option<&Diagnosis> {
    s.diagnosis.as_deref().map(|(d, _)| d)
}

/// Every per-cluster family, from one pass over the state (a consistent snapshot).
fn clusters(state: &State) -> Vec<MetricFamily> {
    // Room for a sample per cluster up front: growing a family copies every sample so far.
    let n = state.len();
    let mut out: Vec<MetricFamily> = PER_CLUSTER.iter().map(|(f, _)| family(f)).collect();
    let [mut failures, mut info, mut roles, mut nodes] =
        [&FAILURES, &CLUSTER_INFO, &ROLE_STATUS, &NODE_STATUS].map(family);
    for mf in out.iter_mut().chain([&mut info]) {
        mf.mut_metric().reserve(n);
    }
    let mut count = 0u32;
    state.for_each(|s| {
        count += 1;
        let at = [
            ("cluster", s.cluster.name.as_str()),
            ("region", s.cluster.region.as_str()),
        ];
        for ((_, value), mf) in PER_CLUSTER.iter().zip(&mut out) {
            if let Some(v) = value(s) {
                add(mf, &at, v);
            }
        }
        for reason in FailureReason::ALL {
            let n = s.failures[reason.index()];
            if n > 0 {
                add(
                    &mut failures,
                    &[at[0], at[1], ("reason", reason.as_str())],
                    n as f64,
                );
            }
        }
        cluster_info(&mut info, s, &at);
        if let Some(d) = diagnosis(s) {
            statuses(&mut roles, &mut nodes, d, &at);
        }
    });
    out.extend([failures, info, roles, nodes]);
    out.push(single(&CLUSTERS, &[], f64::from(count)));
    out.push(single(&READY, &[], bool01(state.is_ready())));
    out
}

/// `cdss_cluster_info`: what discovery reported. Static clusters have none, and an empty label
/// is the same as no label to Prometheus, so those are left out.
fn cluster_info(info: &mut MetricFamily, s: &ClusterStatus, at: &[(&str, &str); 2]) {
    let number = s.cluster.service_group_instance_no.to_string();
    let mut labels = vec![at[0], at[1], ("service_group_instance_no", number.as_str())];
    if let Some(d) = &s.cluster.info {
        let found = [
            ("kafka_version", d.kafka_version.as_str()),
            ("status", d.status.as_str()),
            ("vpc_name", d.vpc_name.as_str()),
        ];
        labels.extend(found.into_iter().filter(|(_, v)| !v.is_empty()));
    }
    add(info, &labels, 1.0);
}

/// The role and node colours of one cluster's `getClusterStatus`, kept as they came.
fn statuses(
    roles: &mut MetricFamily,
    nodes: &mut MetricFamily,
    d: &Diagnosis,
    at: &[(&str, &str); 2],
) {
    let colours = [
        ("broker", &d.brokers.colour),
        ("zookeeper", &d.zookeeper.colour),
        ("cmak", &d.cmak),
    ];
    for (role, colour) in colours {
        if let Some(colour) = colour {
            add(
                roles,
                &[at[0], at[1], ("role", role), ("status", colour)],
                1.0,
            );
        }
    }
    for (role, n, failing) in d.nodes() {
        // A node without a hostname has no series: two of them would be one series.
        let Some(hostname) = &n.hostname else {
            continue;
        };
        let labels = [
            at[0],
            at[1],
            ("role", role),
            ("hostname", hostname),
            ("status", n.status.as_deref().unwrap_or("")),
            ("failing", if failing { "true" } else { "false" }),
        ];
        add(nodes, &labels, 1.0);
    }
}

/// Discovery families, one sample per region (blocks of one region, e.g. for two accounts, add
/// up). A region whose discovery never listed has no count: "never listed" is not 0 clusters.
fn discovery(state: &State) -> [MetricFamily; 3] {
    let mut by_region: BTreeMap<Region, (usize, Option<SystemTime>, u64)> = BTreeMap::new();
    for d in state.discovery() {
        let e = by_region.entry(d.region).or_default();
        e.0 += d.clusters;
        e.1 = e.1.max(d.last_success);
        e.2 += d.failures;
    }
    let [mut clusters, mut last_success, mut failures] = [
        &DISCOVERY_CLUSTERS,
        &DISCOVERY_LAST_SUCCESS,
        &DISCOVERY_FAILURES,
    ]
    .map(family);
    for (region, (n, listed, failed)) in by_region {
        let at = [("region", region.as_str())];
        if let Some(t) = listed {
            add(&mut clusters, &at, n as f64);
            add(&mut last_success, &at, unix(t));
        }
        add(&mut failures, &at, failed as f64);
    }
    [clusters, last_success, failures]
}

/// `cdss_exporter_api_requests_total`: one sample per account, operation and result seen.
fn api_requests(usage: &ApiUsage) -> MetricFamily {
    let mut mf = family(&API_REQUESTS);
    for (account, operation, result, n) in usage.snapshot() {
        let labels = [
            ("account", account.as_str()),
            ("operation", operation.as_str()),
            ("result", result),
        ];
        add(&mut mf, &labels, n as f64);
    }
    mf
}

/// Key expiry and refresh failures, one sample per account that has them.
fn credentials(board: &StatusBoard) -> [MetricFamily; 2] {
    let [mut expiry, mut failures] =
        [&CREDENTIALS_EXPIRY, &CREDENTIALS_REFRESH_FAILURES].map(family);
    for a in board.accounts() {
        let at = [("account", a.account.as_str())];
        if let Some(t) = a.expires {
            add(&mut expiry, &at, unix(t));
        }
        if let Some(n) = a.refresh_failures {
            add(&mut failures, &at, n as f64);
        }
    }
    [expiry, failures]
}
