//! State → Prometheus text exposition (plain and gzipped). No I/O, no HTTP, no global registry.
//!
//! Every value is derived from the `Outcome` in `state`; nothing is re-decided here. Before a
//! cluster's first precheck finishes it exposes only `cdss_precheck_ok 0` and
//! `cdss_precheck_runs_total 0`: "never checked" never reads as ok.
//!
//! The text is written directly, from a snapshot of the state, rather than through the `prometheus`
//! crate's proto structs and `TextEncoder`: building a `MetricFamily` allocates a `String` per
//! label per sample, which made a 1,000-cluster render cost ~3 ms. The output is the same bytes
//! the encoder writes (a unit test compares the two). The body is cached and rebuilt only when the
//! state's generation changes (and no more often than a cool-down proportional to the render's
//! cost), so a scrape usually costs one reference-count increment; the gzipped body is made at
//! most once per rendered body, on the first scrape that asks for it. Bodies are kept in 64 KiB
//! pieces ([`crate::chunks`]) and the render's scratch buffers are reused, so a render makes no
//! large allocation: peak memory stays flat however often the state changes.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::ops::Range;
use std::sync::{Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::chunks::{Body, Chunks};
use crate::ncp::region::Region;
use crate::outcome::FailureReason;
use crate::reload::LiveSettings;
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
    /// The running config's interval, for `cdss_exporter_precheck_interval_seconds` (alert rules
    /// count "no answer for 3 intervals" without hard-coding it). A reload bumps the state's
    /// generation, so the cached body shows an old interval for at most the render cool-down.
    live: Option<LiveSettings>,
    /// The last rendered body; replaced when the state's generation moves.
    cache: Mutex<Option<Cached>>,
    /// Held while rendering or compressing, so scrapes that arrive together after a change wait
    /// for one render instead of each doing their own; it guards the render's scratch buffers.
    /// `cache` is only ever held for a clone.
    render: Mutex<Scratch>,
}

/// Buffers a render fills and the next render reuses (cleared, capacity kept).
#[derive(Debug, Default)]
struct Scratch {
    /// Every cluster's `{cluster="..",region=".."` (unclosed), back to back.
    labels: String,
    /// Every cluster's extra `cdss_cluster_info` labels, back to back.
    info: String,
    /// One per cluster, in name order.
    rows: Vec<Row>,
}

/// One rendered generation.
#[derive(Debug)]
struct Cached {
    /// `State::generation` it was rendered from.
    generation: u64,
    /// The text exposition.
    plain: Body,
    /// `plain` gzipped; made on the first scrape that asks for gzip.
    gzip: Option<Body>,
    /// Until then this body is served even if the state has changed: see [`RENDER_COOL_DOWN`].
    fresh_until: Instant,
}

/// Which encoding of the body a scraper gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// The text as is.
    Identity,
    /// `Content-Encoding: gzip`.
    Gzip,
}

/// After a render that took `t`, the body is served for `RENDER_COOL_DOWN · t` more even if the
/// state changes, so rendering takes at most about a tenth of one core however often the state
/// changes and however many scrapers ask. With few clusters this is microseconds; at 10,000
/// clusters (a ~4 ms render) a body is at most ~50 ms older than the state. It also bounds how
/// many different bodies scrapes in flight hold at once, which is what peak memory depends on.
const RENDER_COOL_DOWN: u32 = 10;

/// gzip level: the fastest. Exposition text is so repetitive that level 1 already shrinks it
/// ~15×, and higher levels cost several times the CPU for a few percent more.
const GZIP_LEVEL: u32 = 1;

struct Family {
    name: &'static str,
    help: &'static str,
    /// `gauge` or `counter`, as written on the `# TYPE` line.
    kind: &'static str,
}

const OK: Family = Family {
    name: "cdss_precheck_ok",
    help: "1 if the last periodic rollingRestartPreCheck said every node is ready (code 0, result true), else 0. 0 before the first precheck.",
    kind: "gauge",
};
const DURATION: Family = Family {
    name: "cdss_precheck_duration_seconds",
    help: "Latency of the last periodic precheck, from sending the request to the last byte or the timeout.",
    kind: "gauge",
};
const ERROR_CODE: Family = Family {
    name: "cdss_precheck_last_error_code",
    help: "Code of the last periodic precheck: the CDSS code (0 on ready and not ready), the API gateway errorCode (e.g. 200 auth, 420 rate limited), or -1 when no usable answer came.",
    kind: "gauge",
};
const LAST_RUN: Family = Family {
    name: "cdss_precheck_last_run_timestamp_seconds",
    help: "Unix time the last periodic precheck finished, whatever its outcome.",
    kind: "gauge",
};
const LAST_SUCCESS: Family = Family {
    name: "cdss_precheck_last_success_timestamp_seconds",
    help: "Unix time of the last periodic precheck that got an answer from CDSS (ready or not ready).",
    kind: "gauge",
};
const RUNS: Family = Family {
    name: "cdss_precheck_runs_total",
    help: "Prechecks finished (each one is one API call).",
    kind: "counter",
};
const FAILURES: Family = Family {
    name: "cdss_precheck_failures_total",
    help: "Prechecks that got no answer from CDSS, by reason.",
    kind: "counter",
};
const CLUSTER_INFO: Family = Family {
    name: "cdss_cluster_info",
    help: "Always 1, one per prechecked cluster, labelled with what discovery reported (Kafka version, status, VPC; absent for static clusters); join on cluster and region.",
    kind: "gauge",
};
const DISCOVERY_CLUSTERS: Family = Family {
    name: "cdss_discovery_clusters",
    help: "Clusters the discovery blocks of a region found on their last successful listing, after filters.",
    kind: "gauge",
};
const DISCOVERY_LAST_SUCCESS: Family = Family {
    name: "cdss_discovery_last_success_timestamp_seconds",
    help: "Unix time of the last successful discovery listing in a region.",
    kind: "gauge",
};
const DISCOVERY_FAILURES: Family = Family {
    name: "cdss_discovery_failures_total",
    help: "Discovery listings that failed in a region (the last known clusters were kept).",
    kind: "counter",
};
const RELOAD_OK: Family = Family {
    name: "cdss_exporter_config_last_reload_successful",
    help: "1 if the last configuration reload succeeded (or none was tried), 0 if it failed and the previous configuration is still running.",
    kind: "gauge",
};
const RELOAD_TIME: Family = Family {
    name: "cdss_exporter_config_last_reload_success_timestamp_seconds",
    help: "Unix time of the last successful configuration load (start-up counts).",
    kind: "gauge",
};
const CLOCK_SKEW: Family = Family {
    name: "cdss_exporter_clock_skew_seconds",
    help: "The API gateway's clock (its Date header, 1 s resolution) minus this host's, from the last answer. NCP rejects requests more than 300 s off.",
    kind: "gauge",
};
const CLUSTERS: Family = Family {
    name: "cdss_exporter_clusters",
    help: "Clusters this exporter prechecks.",
    kind: "gauge",
};
const READY: Family = Family {
    name: "cdss_exporter_first_round_complete",
    help: "1 once every configured cluster has been prechecked at least once since start.",
    kind: "gauge",
};
const INTERVAL: Family = Family {
    name: "cdss_exporter_precheck_interval_seconds",
    help: "Configured interval between two periodic prechecks of one cluster.",
    kind: "gauge",
};
const BUILD_INFO: Family = Family {
    name: "cdss_exporter_build_info",
    help: "A metric with a constant '1' value labeled by version and revision of cdss-precheck-exporter.",
    kind: "gauge",
};

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Exposition {
    /// An empty cache for this build.
    pub fn new(build: BuildInfo) -> Self {
        Self {
            build,
            live: None,
            cache: Mutex::new(None),
            render: Mutex::default(),
        }
    }

    /// Also exposes the interval of the running config.
    pub fn with_live(mut self, live: LiveSettings) -> Self {
        self.live = Some(live);
        self
    }

    /// The current text exposition; rendered again only if the state changed since the last call.
    pub fn body(&self, state: &State) -> Body {
        self.encoded(state, Encoding::Identity).0
    }

    /// The current exposition in `wanted` encoding, and the encoding it is actually in (gzip
    /// falls back to the text in the unlikely case compression fails).
    pub fn encoded(&self, state: &State, wanted: Encoding) -> (Body, Encoding) {
        self.encoded_at(state, wanted, Instant::now())
    }

    /// `encoded`, with the clock passed in.
    fn encoded_at(&self, state: &State, wanted: Encoding, now: Instant) -> (Body, Encoding) {
        if let Some(hit) = self.lookup(state.generation(), wanted, now) {
            return hit;
        }
        let mut scratch = lock(&self.render);
        // Read again: another scrape may have rendered a newer state while this one waited.
        let generation = state.generation();
        if let Some(hit) = self.lookup(generation, wanted, now) {
            return hit;
        }
        let plain = match self.lookup(generation, Encoding::Identity, now) {
            Some((plain, _)) => plain,
            None => {
                // Rendered outside the `cache` lock, so scrapes of the cached body never wait.
                // If the state moves on meanwhile, the body is filed under the older generation
                // and rendered again once the cool-down is over.
                let started = Instant::now();
                let plain = self.render_with(&mut scratch, state);
                let finished = Instant::now();
                *lock(&self.cache) = Some(Cached {
                    generation,
                    plain: plain.clone(),
                    gzip: None,
                    fresh_until: finished + (finished - started) * RENDER_COOL_DOWN,
                });
                plain
            }
        };
        if wanted == Encoding::Identity {
            return (plain, Encoding::Identity);
        }
        let Some(gz) = gzip(&plain) else {
            return (plain, Encoding::Identity);
        };
        if let Some(c) = lock(&self.cache).as_mut() {
            if c.plain.same(&plain) {
                c.gzip = Some(gz.clone());
            }
        }
        (gz, Encoding::Gzip)
    }

    /// The cached body if it is of `generation`, or still within its cool-down.
    fn lookup(&self, generation: u64, wanted: Encoding, now: Instant) -> Option<(Body, Encoding)> {
        let cache = lock(&self.cache);
        let c = cache
            .as_ref()
            .filter(|c| c.generation == generation || now < c.fresh_until)?;
        match wanted {
            Encoding::Identity => Some((c.plain.clone(), Encoding::Identity)),
            Encoding::Gzip => c.gzip.clone().map(|g| (g, Encoding::Gzip)),
        }
    }

    /// Renders the text exposition from scratch (not cached).
    pub fn render(&self, state: &State) -> Body {
        self.render_with(&mut lock(&self.render), state)
    }

    fn render_with(&self, scratch: &mut Scratch, state: &State) -> Body {
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
        render_discovery(&mut out, state);
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
        if let Some(skew) = state.clock_skew() {
            header(&mut out, &CLOCK_SKEW);
            sample(&mut out, &CLOCK_SKEW, "", "", Value::Float(skew));
        }
        header(&mut out, &CLUSTERS);
        sample(&mut out, &CLUSTERS, "", "", Value::Uint(rows.len() as u64));
        header(&mut out, &READY);
        sample(&mut out, &READY, "", "", Value::Int(i64::from(ready)));
        if let Some(live) = &self.live {
            header(&mut out, &INTERVAL);
            let secs = live.get().interval.as_secs_f64();
            sample(&mut out, &INTERVAL, "", "", Value::Float(secs));
        }
        header(&mut out, &BUILD_INFO);
        let mut build = String::from("{revision=\"");
        escape_label_value(&mut build, self.build.revision);
        build.push_str("\",version=\"");
        escape_label_value(&mut build, self.build.version);
        build.push('"');
        sample(&mut out, &BUILD_INFO, &build, "", Value::Int(1));
        out.finish()
    }
}

/// One cluster's values, copied out of the state for rendering.
#[derive(Debug)]
struct Row {
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
                    l.latency.as_secs_f64(),
                    l.outcome.error_code(),
                    unix(l.at_wall),
                )
            }),
            last_success: s.last_success.map(unix),
            failures: s.failures,
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
    header(out, &DISCOVERY_CLUSTERS);
    for (r, (n, _, _)) in &by_region {
        sample(
            out,
            &DISCOVERY_CLUSTERS,
            &label(r),
            "",
            Value::Uint(*n as u64),
        );
    }
    if by_region.values().any(|v| v.1.is_some()) {
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `body` gzipped, or `None` if the encoder failed (it writes to memory, so it should not).
fn gzip(body: &Body) -> Option<Body> {
    let mut enc = GzEncoder::new(Chunks::new(), Compression::new(GZIP_LEVEL));
    let done = body
        .parts()
        .iter()
        .try_for_each(|p| enc.write_all(p))
        .and_then(|()| enc.finish());
    match done {
        Ok(v) => Some(v.finish()),
        Err(e) => {
            tracing::error!(error = %e, "cannot gzip the exposition; serving it uncompressed");
            None
        }
    }
}

/// A sample value. Integers are written as integers, which is what the `prometheus` crate's
/// encoder writes for whole-number floats too.
#[derive(Clone, Copy)]
enum Value {
    Int(i64),
    Uint(u64),
    /// Finite here: latencies and Unix times.
    Float(f64),
}

/// Where text is appended: the body being rendered, or a scratch label buffer.
trait Out {
    fn push_str(&mut self, s: &str);
    fn push(&mut self, c: char);
}

impl Out for String {
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }

    fn push(&mut self, c: char) {
        String::push(self, c);
    }
}

impl Out for Chunks {
    fn push_str(&mut self, s: &str) {
        Chunks::push_str(self, s);
    }

    fn push(&mut self, c: char) {
        Chunks::push(self, c);
    }
}

/// `# HELP` and `# TYPE` lines.
fn header(out: &mut Chunks, f: &Family) {
    out.push_str("# HELP ");
    out.push_str(f.name);
    out.push(' ');
    escape_help(out, f.help);
    out.push_str("\n# TYPE ");
    out.push_str(f.name);
    out.push(' ');
    out.push_str(f.kind);
    out.push('\n');
}

/// One sample line. `labels` is empty or an unclosed `{name="value"...`; `extra` more labels.
fn sample(out: &mut Chunks, f: &Family, labels: &str, extra: &str, value: Value) {
    out.push_str(f.name);
    if !labels.is_empty() {
        out.push_str(labels);
        out.push_str(extra);
        out.push('}');
    }
    out.push(' ');
    match value {
        Value::Int(v) => out.push_str(itoa::Buffer::new().format(v)),
        Value::Uint(v) => out.push_str(itoa::Buffer::new().format(v)),
        // `Display` of a finite f64: the shortest text that reads back as the same number, as
        // the `prometheus` crate writes it. Writing to `Chunks` cannot fail.
        Value::Float(v) => {
            let _ = std::fmt::Write::write_fmt(out, format_args!("{v}"));
        }
    }
    out.push('\n');
}

/// Appends a label value escaped per the text format: backslash, double quote and newline.
fn escape_label_value(out: &mut impl Out, v: &str) {
    escape(out, v, true);
}

/// Appends HELP text escaped per the text format: backslash and newline.
fn escape_help(out: &mut impl Out, v: &str) {
    escape(out, v, false);
}

fn escape(out: &mut impl Out, v: &str, quote: bool) {
    let special = |b: &u8| *b == b'\\' || *b == b'\n' || (quote && *b == b'"');
    if !v.as_bytes().iter().any(special) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ncp::cdss::Precheck;
    use crate::outcome::Outcome;
    use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
    use prometheus::{Encoder, TextEncoder};
    use std::io::Read as _;
    use std::path::Path;
    use std::time::Duration;
    use tokio::time::Instant;

    /// The exposition as the `prometheus` crate's proto structs and `TextEncoder` write it: the
    /// way this module rendered before it wrote the text itself.
    fn reference(build: &BuildInfo, state: &State) -> String {
        fn label(name: &str, value: &str) -> LabelPair {
            let mut l = LabelPair::default();
            l.set_name(name.to_string());
            l.set_value(value.to_string());
            l
        }
        fn metric(f: &Family, labels: Vec<LabelPair>, value: f64) -> Metric {
            let mut m = Metric::from_label(labels);
            if f.kind == "counter" {
                let mut c = Counter::default();
                c.set_value(value);
                m.set_counter(c);
            } else {
                let mut g = Gauge::default();
                g.set_value(value);
                m.set_gauge(g);
            }
            m
        }
        let families = [
            &OK,
            &DURATION,
            &ERROR_CODE,
            &LAST_RUN,
            &LAST_SUCCESS,
            &RUNS,
            &FAILURES,
            &CLUSTER_INFO,
        ];
        let mut samples: Vec<Vec<Metric>> = vec![Vec::new(); families.len()];
        state.for_each(|s| {
            let labels = || {
                vec![
                    label("cluster", &s.cluster.name),
                    label("region", s.cluster.region.as_str()),
                ]
            };
            let ready = s.last.as_ref().is_some_and(|l| l.outcome.is_ready());
            samples[0].push(metric(&OK, labels(), if ready { 1.0 } else { 0.0 }));
            samples[5].push(metric(&RUNS, labels(), s.runs_total as f64));
            if let Some(last) = &s.last {
                let code = last.outcome.error_code() as f64;
                samples[1].push(metric(&DURATION, labels(), last.latency.as_secs_f64()));
                samples[2].push(metric(&ERROR_CODE, labels(), code));
                samples[3].push(metric(&LAST_RUN, labels(), unix(last.at_wall)));
            }
            if let Some(t) = s.last_success {
                samples[4].push(metric(&LAST_SUCCESS, labels(), unix(t)));
            }
            for reason in FailureReason::ALL {
                let n = s.failures[reason.index()];
                if n > 0 {
                    let mut l = labels();
                    l.push(label("reason", reason.as_str()));
                    samples[6].push(metric(&FAILURES, l, n as f64));
                }
            }
            let d = s.cluster.info.clone().unwrap_or_default();
            let mut l = labels();
            l.push(label(
                "service_group_instance_no",
                &s.cluster.service_group_instance_no.to_string(),
            ));
            for (name, value) in [
                ("kafka_version", &d.kafka_version),
                ("status", &d.status),
                ("vpc_name", &d.vpc_name),
            ] {
                if !value.is_empty() {
                    l.push(label(name, value));
                }
            }
            samples[7].push(metric(&CLUSTER_INFO, l, 1.0));
        });
        let clusters = samples[0].len() as f64;
        let ready = if state.is_ready() { 1.0 } else { 0.0 };
        let build_labels = vec![
            label("revision", build.revision),
            label("version", build.version),
        ];
        let mut all: Vec<(&Family, Vec<Metric>)> = families.into_iter().zip(samples).collect();
        let reload = state.reload();
        let reload_ok = if reload.successful { 1.0 } else { 0.0 };
        all.push((&RELOAD_OK, vec![metric(&RELOAD_OK, vec![], reload_ok)]));
        let reload_time = unix(reload.last_success);
        all.push((
            &RELOAD_TIME,
            vec![metric(&RELOAD_TIME, vec![], reload_time)],
        ));
        all.push((&CLUSTERS, vec![metric(&CLUSTERS, vec![], clusters)]));
        all.push((&READY, vec![metric(&READY, vec![], ready)]));
        all.push((&BUILD_INFO, vec![metric(&BUILD_INFO, build_labels, 1.0)]));
        let mfs: Vec<MetricFamily> = all
            .into_iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(f, m)| {
                let mut mf = MetricFamily::default();
                mf.set_name(f.name.to_string());
                mf.set_help(f.help.to_string());
                mf.set_field_type(if f.kind == "counter" {
                    MetricType::COUNTER
                } else {
                    MetricType::GAUGE
                });
                mf.set_metric(m);
                mf
            })
            .collect();
        let mut out = Vec::new();
        TextEncoder::new().encode(&mfs, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn state(n: usize) -> State {
        if n == 0 {
            return State::new(&[]);
        }
        let mut yaml = String::from("clusters:\n");
        let regions = ["KR", "SGN", "JPN", "GOV", "FIN"];
        for i in 0..n {
            yaml.push_str(&format!(
                "  - {{name: c-{i:03}, region: {}, service_group_instance_no: {}}}\n",
                regions[i % 5],
                i + 1
            ));
        }
        State::new(&Config::parse(&yaml, Path::new("t")).unwrap().clusters)
    }

    fn record(s: &State, name: &str, outcome: Outcome, latency: Duration, wall_ms: u64) {
        let p = Precheck {
            outcome,
            latency,
            request_id: None,
            retry_after: None,
            server_date: None,
        };
        let wall = UNIX_EPOCH + Duration::from_millis(wall_ms);
        assert!(s.record(name, &p, Instant::now(), wall));
    }

    /// Every kind of outcome, several failure reasons on one cluster, and a never-checked one.
    fn varied_state() -> State {
        let s = state(12);
        let outcomes = [
            Outcome::Ready,
            Outcome::NotReady,
            Outcome::ApiError {
                http_status: 400,
                code: 3,
                message: "Invalid".into(),
            },
            Outcome::GatewayError {
                http_status: 401,
                code: Some(200),
                message: "Authentication Failed".into(),
            },
            Outcome::GatewayError {
                http_status: 429,
                code: Some(420),
                message: "Rate Limited".into(),
            },
            Outcome::GatewayError {
                http_status: 503,
                code: None,
                message: "?".into(),
            },
            Outcome::HttpError {
                http_status: 500,
                detail: "html".into(),
            },
            Outcome::InvalidResponse {
                http_status: 200,
                detail: "x".into(),
            },
            Outcome::BodyTooLarge { limit: 1 },
            Outcome::Timeout {
                after: Duration::from_secs(10),
            },
            Outcome::ConnectionError {
                detail: "refused".into(),
            },
        ];
        for (i, o) in outcomes.into_iter().enumerate() {
            let latency = Duration::from_nanos(1 + 987_654_321 * i as u64);
            record(
                &s,
                &format!("c-{i:03}"),
                o,
                latency,
                1_754_000_000_123 + 7 * i as u64,
            );
        }
        // c-000 fails twice more, in two ways, and then is ready again.
        record(
            &s,
            "c-000",
            Outcome::BodyTooLarge { limit: 1 },
            Duration::ZERO,
            1,
        );
        let timeout = Outcome::Timeout {
            after: Duration::from_millis(1500),
        };
        record(&s, "c-000", timeout, Duration::from_millis(1500), 2);
        record(
            &s,
            "c-000",
            Outcome::Ready,
            Duration::from_micros(1234),
            1_754_000_001_999,
        );
        s
    }

    fn text(b: &Body) -> String {
        String::from_utf8(b.to_bytes().to_vec()).unwrap()
    }

    #[test]
    fn same_bytes_as_the_prometheus_text_encoder() {
        let build = BuildInfo {
            version: "1.2.3",
            revision: "odd \"rev\\ision\"\nline",
        };
        let e = Exposition::new(build.clone());
        // 1,000 clusters make a body of several 64 KiB pieces; rendering twice reuses the scratch.
        for s in [state(0), state(3), varied_state(), state(1000), state(3)] {
            assert_eq!(text(&e.render(&s)), reference(&build, &s));
        }
        assert!(e.render(&state(1000)).parts().len() > 2);
        let s = varied_state();
        let text = text(&e.render(&s));
        assert!(text.contains("cdss_precheck_failures_total{cluster=\"c-000\",region=\"KR\",reason=\"timeout\"} 1\n"), "{text}");
        assert!(text.contains("cdss_precheck_ok{cluster=\"c-011\",region=\"SGN\"} 0\n"));
        assert!(text.contains("revision=\"odd \\\"rev\\\\ision\\\"\\nline\""));
    }

    #[test]
    fn escapes_label_values_and_help() {
        let mut out = String::new();
        escape_label_value(&mut out, "a\\b\"c\nd é");
        assert_eq!(out, r#"a\\b\"c\nd é"#);
        out.clear();
        escape_help(&mut out, "a\\b\"c\nd");
        assert_eq!(out, r#"a\\b"c\nd"#);
    }

    #[test]
    fn cached_per_generation_and_gzipped_once() {
        let s = varied_state();
        let e = Exposition::new(BuildInfo::current());
        let before = std::time::Instant::now();
        let (a, enc) = e.encoded(&s, Encoding::Identity);
        assert_eq!(enc, Encoding::Identity);
        let (b, _) = e.encoded(&s, Encoding::Identity);
        assert!(a.same(&b), "second scrape reuses the body");
        let (gz, enc) = e.encoded(&s, Encoding::Gzip);
        assert_eq!(enc, Encoding::Gzip);
        let (gz2, _) = e.encoded(&s, Encoding::Gzip);
        assert!(gz.same(&gz2), "compressed once per generation");
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz.to_bytes()[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text.as_bytes(), &a.to_bytes()[..]);
        assert!(gz.len() * 4 < a.len(), "{} vs {}", gz.len(), a.len());

        record(&s, "c-005", Outcome::Ready, Duration::from_millis(3), 5);
        // Within the cool-down (here: a clock that has not moved since before the render) the
        // last body is still served; after it, the change is rendered.
        let (stale, _) = e.encoded_at(&s, Encoding::Identity, before);
        assert!(stale.same(&a));
        let later = std::time::Instant::now() + Duration::from_secs(3600);
        let (c, _) = e.encoded_at(&s, Encoding::Identity, later);
        assert!(!a.same(&c), "a change is rendered");
        let text = self::text(&c);
        assert!(text.contains("cdss_precheck_ok{cluster=\"c-005\",region=\"KR\"} 1\n"));
        let (gz3, _) = e.encoded_at(&s, Encoding::Gzip, later);
        assert!(!gz3.same(&gz));
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz3.to_bytes()[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(
            text.as_bytes(),
            &c.to_bytes()[..],
            "the gzip is of the new body"
        );
    }

    #[test]
    fn cool_down_is_proportional_to_the_render() {
        let s = state(3);
        let e = Exposition::new(BuildInfo::current());
        let start = std::time::Instant::now();
        e.encoded(&s, Encoding::Identity);
        let took = start.elapsed();
        let fresh_until = lock(&e.cache).as_ref().unwrap().fresh_until;
        assert!(fresh_until > start);
        assert!(fresh_until <= start + took * (RENDER_COOL_DOWN + 1));
    }
}
