//! What the runner says in the log about a precheck: one line per result (debug when CDSS
//! answered, a warning otherwise), the back-off after a 429, and a warning when the gateway's
//! clock is more than a minute off ours (at most every [`SKEW_WARNING_EVERY`]). `check` turns
//! these off and reports every result itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::model::Cluster;
use crate::ncp::client::CallMeta;
use crate::ncp::precheck::Precheck;
use crate::outcome::{CLOCK_SKEW_WARN_SECONDS, clock_skew_hint};

/// How often the clock-skew warning may repeat.
pub(crate) const SKEW_WARNING_EVERY: Duration = Duration::from_secs(600);

/// Logs one precheck's result.
pub(super) fn precheck(c: &Cluster, p: &Precheck) {
    let request_id = p.meta.request_id.as_deref().unwrap_or("");
    let latency_ms = p.meta.latency.as_secs_f64() * 1e3;
    let (verdict, code) = (p.outcome.verdict(), p.outcome.error_code());
    if p.outcome.failure_reason().is_none() {
        tracing::debug!(cluster = %c.name, region = %c.region, verdict, code, request_id, latency_ms, "precheck done");
        return;
    }
    let hint = clock_skew_hint(&p.outcome, p.meta.clock_skew)
        .map(|h| format!("; {h}"))
        .unwrap_or_default();
    tracing::warn!(
        cluster = %c.name, region = %c.region, verdict, code, request_id, latency_ms,
        "precheck failed: {}{hint}", p.outcome.message()
    );
}

/// Logs the back-off after a 429.
pub(super) fn backing_off(c: &Cluster, wait: Duration) {
    tracing::warn!(
        cluster = %c.name,
        backoff = %humantime::format_duration(wait),
        "rate limited by the API gateway; backing off"
    );
}

/// The clock-skew warning's rhythm: when it was last logged, as milliseconds after `since`
/// (0: never), so the check is one atomic, not a lock.
#[derive(Debug)]
pub(super) struct SkewWarning {
    since: Instant,
    last_ms: AtomicU64,
}

impl SkewWarning {
    pub(super) fn new() -> Self {
        Self {
            since: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Logs a warning when the gateway's clock is more than a minute off ours, at most every
    /// [`SKEW_WARNING_EVERY`].
    pub(super) fn check(&self, meta: &CallMeta) {
        let Some(skew) = meta
            .clock_skew
            .filter(|s| s.abs() > CLOCK_SKEW_WARN_SECONDS)
        else {
            return;
        };
        // +1: 0 means "never", and the first answer may come in the runner's first millisecond.
        let now = self.since.elapsed().as_millis() as u64 + 1;
        let every = SKEW_WARNING_EVERY.as_millis() as u64;
        let due = |last: u64| (last == 0 || now.saturating_sub(last) >= every).then_some(now);
        if self
            .last_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, due)
            .is_err()
        {
            return;
        }
        tracing::warn!(
            skew_seconds = skew,
            "this host's clock is {:.0} s {} the API gateway's; NCP rejects requests more than 300 s off: check NTP",
            skew.abs(),
            if skew > 0.0 { "behind" } else { "ahead of" }
        );
    }
}
