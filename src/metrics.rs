//! State → Prometheus text exposition. No I/O, no HTTP, no global registry.
//!
//! Every value is derived from the `Outcome` in `state`; nothing is re-decided here. The rendered
//! body is cached and rebuilt only when the state's generation changes, so a scrape usually costs
//! one `Bytes` clone. Before a cluster's first precheck finishes it exposes only
//! `cdss_precheck_ok 0` and `cdss_precheck_runs_total 0`: "never checked" never reads as ok.

use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use crate::outcome::FailureReason;
use crate::state::{ClusterStatus, State};

/// `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Version and git revision baked in at build time, for `cdss_exporter_build_info`.
#[derive(Clone, Debug)]
pub struct BuildInfo {
    /// Crate version.
    pub version: &'static str,
    /// Git commit the binary was built from, or "unknown".
    pub revision: &'static str,
}

impl BuildInfo {
    /// This binary's build info.
    pub fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            revision: option_env!("CDSS_BUILD_REVISION").unwrap_or("unknown"),
        }
    }
}

/// Renders and caches the exposition.
#[derive(Debug)]
pub struct Exposition {
    /// Static labels of `cdss_exporter_build_info`.
    build: BuildInfo,
    /// (state generation, rendered body); rebuilt when the generation moves.
    cache: Mutex<Option<(u64, Bytes)>>,
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
}

const OK: Family = Family {
    name: "cdss_precheck_ok",
    help: "1 if the last periodic rollingRestartPreCheck said every node is ready (code 0, result true), else 0. 0 before the first precheck.",
    kind: MetricType::GAUGE,
};
const DURATION: Family = Family {
    name: "cdss_precheck_duration_seconds",
    help: "Latency of the last periodic precheck, from sending the request to the last byte or the timeout.",
    kind: MetricType::GAUGE,
};
const ERROR_CODE: Family = Family {
    name: "cdss_precheck_last_error_code",
    help: "Code of the last periodic precheck: the CDSS code (0 on ready and not ready), the API gateway errorCode (e.g. 200 auth, 420 rate limited), or -1 when no usable answer came.",
    kind: MetricType::GAUGE,
};
const LAST_RUN: Family = Family {
    name: "cdss_precheck_last_run_timestamp_seconds",
    help: "Unix time the last periodic precheck finished, whatever its outcome.",
    kind: MetricType::GAUGE,
};
const LAST_SUCCESS: Family = Family {
    name: "cdss_precheck_last_success_timestamp_seconds",
    help: "Unix time of the last periodic precheck that got an answer from CDSS (ready or not ready).",
    kind: MetricType::GAUGE,
};
const RUNS: Family = Family {
    name: "cdss_precheck_runs_total",
    help: "Prechecks finished (each one is one API call).",
    kind: MetricType::COUNTER,
};
const FAILURES: Family = Family {
    name: "cdss_precheck_failures_total",
    help: "Prechecks that got no answer from CDSS, by reason.",
    kind: MetricType::COUNTER,
};
const CLUSTERS: Family = Family {
    name: "cdss_exporter_clusters",
    help: "Clusters this exporter prechecks.",
    kind: MetricType::GAUGE,
};
const READY: Family = Family {
    name: "cdss_exporter_first_round_complete",
    help: "1 once every configured cluster has been prechecked at least once since start.",
    kind: MetricType::GAUGE,
};
const BUILD_INFO: Family = Family {
    name: "cdss_exporter_build_info",
    help: "A metric with a constant '1' value labeled by version and revision of cdss-precheck-exporter.",
    kind: MetricType::GAUGE,
};

fn family(f: &Family, metrics: Vec<Metric>) -> MetricFamily {
    let mut mf = MetricFamily::default();
    mf.set_name(f.name.to_string());
    mf.set_help(f.help.to_string());
    mf.set_field_type(f.kind);
    mf.set_metric(metrics);
    mf
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_string());
    l.set_value(value.to_string());
    l
}

fn gauge(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::from_label(labels);
    m.set_gauge(g);
    m
}

fn counter(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut c = Counter::default();
    c.set_value(value);
    let mut m = Metric::from_label(labels);
    m.set_counter(c);
    m
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Exposition {
    /// An empty cache for this build.
    pub fn new(build: BuildInfo) -> Self {
        Self {
            build,
            cache: Mutex::new(None),
        }
    }

    /// The current exposition; rendered again only if the state changed since the last call.
    pub fn body(&self, state: &State) -> Bytes {
        let generation = state.generation();
        if let Some((g, body)) = &*self.cache.lock().unwrap_or_else(PoisonError::into_inner) {
            if *g == generation {
                return body.clone();
            }
        }
        let body = Bytes::from(self.render(state));
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((generation, body.clone()));
        body
    }

    /// Renders the exposition from scratch.
    pub fn render(&self, state: &State) -> String {
        let mut ok = Vec::new();
        let mut duration = Vec::new();
        let mut code = Vec::new();
        let mut last_run = Vec::new();
        let mut last_success = Vec::new();
        let mut runs = Vec::new();
        let mut failures = Vec::new();
        state.for_each(|s: &ClusterStatus| {
            let labels = || {
                vec![
                    label("cluster", &s.name),
                    label("region", s.region.as_str()),
                ]
            };
            let is_ready = s.last.as_ref().is_some_and(|l| l.outcome.is_ready());
            ok.push(gauge(labels(), if is_ready { 1.0 } else { 0.0 }));
            runs.push(counter(labels(), s.runs_total as f64));
            if let Some(last) = &s.last {
                duration.push(gauge(labels(), last.latency.as_secs_f64()));
                code.push(gauge(labels(), last.outcome.error_code() as f64));
                last_run.push(gauge(labels(), unix(last.at_wall)));
            }
            if let Some(t) = s.last_success {
                last_success.push(gauge(labels(), unix(t)));
            }
            for reason in FailureReason::ALL {
                let n = s.failures[reason.index()];
                if n > 0 {
                    let mut l = labels();
                    l.push(label("reason", reason.as_str()));
                    failures.push(counter(l, n as f64));
                }
            }
        });
        let clusters = ok.len() as f64;
        let mut families = vec![
            family(&OK, ok),
            family(&DURATION, duration),
            family(&ERROR_CODE, code),
            family(&LAST_RUN, last_run),
            family(&LAST_SUCCESS, last_success),
            family(&RUNS, runs),
            family(&FAILURES, failures),
            family(&CLUSTERS, vec![gauge(vec![], clusters)]),
            family(
                &READY,
                vec![gauge(vec![], if state.is_ready() { 1.0 } else { 0.0 })],
            ),
            family(
                &BUILD_INFO,
                vec![gauge(
                    vec![
                        label("revision", self.build.revision),
                        label("version", self.build.version),
                    ],
                    1.0,
                )],
            ),
        ];
        // The text encoder prints HELP/TYPE for empty families too; Prometheus accepts that, but
        // promtool's linter and humans read better without them.
        families.retain(|f| !f.get_metric().is_empty());
        let mut out =
            Vec::with_capacity(256 * families.iter().map(|f| f.get_metric().len()).sum::<usize>());
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
