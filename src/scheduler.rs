//! When each cluster is prechecked: spread, bounded, backed off.
//!
//! Every cluster is prechecked once at start, then on its own slot every `interval`. A cluster's
//! slot is a fixed phase within the interval derived from a hash of its name, so 1,000 clusters
//! never fire at once and a restart keeps each cluster's rhythm. A semaphore caps the prechecks in
//! flight across all clusters; each cluster has its own task, so there is never more than one
//! precheck per cluster and a hanging cluster only holds its own permit, until the timeout. After a
//! 429 the cluster waits for `Retry-After` (or an exponential back-off) before its next slot.
//! Time is tokio's, so tests drive all of this with a paused clock.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::Cluster;
use crate::ncp::cdss::{CdssClient, Precheck};
use crate::state::State;

/// Longest back-off after repeated 429s without `Retry-After`.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Something that can precheck a cluster (the real client, or a fake in tests).
pub trait Prechecker: Send + Sync + 'static {
    /// One precheck; never fails, every failure is an `Outcome`.
    fn precheck(&self, cluster: &Cluster) -> impl Future<Output = Precheck> + Send;
}

impl Prechecker for CdssClient {
    fn precheck(&self, cluster: &Cluster) -> impl Future<Output = Precheck> + Send {
        CdssClient::precheck(
            self,
            &cluster.precheck_url,
            cluster.service_group_instance_no,
        )
    }
}

/// What the scheduler needs from the config.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// Time between two prechecks of one cluster.
    pub interval: Duration,
    /// Prechecks in flight at once.
    pub concurrency: usize,
}

/// Phases are whole multiples of this (or of a hundredth of the interval, if that is shorter), so
/// clusters whose slots fall close together are prechecked on one timer wake-up: at 1,000 clusters
/// every 10 s that is ~10 prechecks per wake-up instead of one, which cut the process's CPU time per
/// precheck by about a third (BENCHMARKS.md). Still 100+ distinct slots per interval: the spread
/// stays even at any scale a dashboard shows.
pub const SLOT_QUANTUM: Duration = Duration::from_millis(100);

/// A cluster's fixed phase within the interval: FNV-1a of its name, finished with MurmurHash3's
/// 64-bit mixer (FNV alone leaves the high bits of similar names clustered), scaled to the interval
/// and rounded down to the slot quantum (see [`SLOT_QUANTUM`]).
/// Deterministic across runs and versions (unlike `std`'s hasher, which may change).
pub fn phase(name: &str, interval: Duration) -> Duration {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    let nanos = (u128::from(h) * interval.as_nanos()) >> 64;
    let quantum = SLOT_QUANTUM.min(interval / 100).as_nanos().max(1);
    Duration::from_nanos((nanos / quantum * quantum) as u64)
}

/// The first slot `anchor + phase + k·interval` (k ≥ 0) strictly after `now`.
pub fn next_slot(anchor: Instant, phase: Duration, interval: Duration, now: Instant) -> Instant {
    let first = anchor + phase;
    if now < first {
        return first;
    }
    let behind = (now - first).as_nanos();
    let k = behind / interval.as_nanos() + 1;
    first + Duration::from_nanos((k * interval.as_nanos()) as u64)
}

/// The back-off after the `streak`-th 429 in a row: `Retry-After` when given, else
/// `interval · 2^streak`, capped at [`MAX_BACKOFF`].
pub fn backoff(retry_after: Option<Duration>, interval: Duration, streak: u32) -> Duration {
    retry_after
        .unwrap_or_else(|| interval.saturating_mul(2u32.saturating_pow(streak.min(16))))
        .min(MAX_BACKOFF)
}

/// Runs the schedule until `shutdown` turns true; returns once in-flight prechecks have ended.
pub async fn run<P: Prechecker>(
    clusters: Vec<Cluster>,
    prechecker: Arc<P>,
    state: Arc<State>,
    schedule: Schedule,
    shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(schedule.concurrency));
    let anchor = Instant::now();
    let mut tasks = JoinSet::new();
    for cluster in clusters {
        let ctx = ClusterTask {
            phase: phase(&cluster.name, schedule.interval),
            cluster,
            prechecker: prechecker.clone(),
            state: state.clone(),
            permits: permits.clone(),
            interval: schedule.interval,
            anchor,
        };
        tasks.spawn(ctx.run(shutdown.clone()));
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, "a cluster's precheck task ended abnormally");
        }
    }
}

struct ClusterTask<P> {
    cluster: Cluster,
    phase: Duration,
    prechecker: Arc<P>,
    state: Arc<State>,
    permits: Arc<Semaphore>,
    interval: Duration,
    anchor: Instant,
}

impl<P: Prechecker> ClusterTask<P> {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut rate_limited_streak = 0u32;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let permit = tokio::select! {
                p = self.permits.acquire() => match p { Ok(p) => p, Err(_) => return },
                _ = shutdown.changed() => return,
            };
            // Not cancelled by shutdown: an in-flight precheck ends on its own, within the timeout.
            // Boxed: the HTTP call's state is large and only alive during the call, while this
            // task lives (asleep) for the whole run; inline, it would cost every cluster ~1 KiB.
            let precheck = Box::pin(self.prechecker.precheck(&self.cluster)).await;
            drop(permit);
            let now = Instant::now();
            self.log(&precheck);
            self.state
                .record(&self.cluster.name, &precheck, now, SystemTime::now());

            let mut next = next_slot(self.anchor, self.phase, self.interval, now);
            if precheck.outcome.is_rate_limited() {
                rate_limited_streak = rate_limited_streak.saturating_add(1);
                let wait = backoff(precheck.retry_after, self.interval, rate_limited_streak);
                next = next.max(now + wait);
                tracing::warn!(
                    cluster = %self.cluster.name,
                    backoff = %humantime::format_duration(wait),
                    "rate limited by the API gateway; backing off"
                );
            } else {
                rate_limited_streak = 0;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    fn log(&self, p: &Precheck) {
        let c = &self.cluster;
        let request_id = p.request_id.as_deref().unwrap_or("");
        let latency_ms = p.latency.as_secs_f64() * 1e3;
        if p.outcome.failure_reason().is_some() {
            tracing::warn!(
                cluster = %c.name, region = %c.region, verdict = p.outcome.verdict(),
                code = p.outcome.error_code(), request_id, latency_ms,
                "precheck failed: {}", p.outcome.message()
            );
        } else {
            tracing::debug!(
                cluster = %c.name, region = %c.region, verdict = p.outcome.verdict(),
                code = p.outcome.error_code(), request_id, latency_ms,
                "precheck done"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::outcome::Outcome;
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::Mutex;

    /// A fake gateway: records when each cluster was asked and how many were in flight.
    #[derive(Default)]
    struct Fake {
        delay: HashMap<String, Duration>,
        rate_limit: HashMap<String, Option<Duration>>,
        calls: Mutex<Vec<(String, Instant)>>,
        in_flight: Mutex<(usize, usize)>,
    }

    impl Prechecker for Fake {
        async fn precheck(&self, c: &Cluster) -> Precheck {
            self.calls
                .lock()
                .unwrap()
                .push((c.name.clone(), Instant::now()));
            {
                let mut f = self.in_flight.lock().unwrap();
                f.0 += 1;
                f.1 = f.1.max(f.0);
            }
            let delay = self
                .delay
                .get(&c.name)
                .copied()
                .unwrap_or(Duration::from_millis(10));
            tokio::time::sleep(delay).await;
            self.in_flight.lock().unwrap().0 -= 1;
            let (outcome, retry_after) = match self.rate_limit.get(&c.name) {
                Some(ra) => (
                    Outcome::GatewayError {
                        http_status: 429,
                        code: Some(420),
                        message: "Rate Limited".into(),
                    },
                    *ra,
                ),
                None => (Outcome::Ready, None),
            };
            Precheck {
                outcome,
                latency: delay,
                request_id: None,
                retry_after,
                server_date: None,
            }
        }
    }

    fn clusters(n: usize) -> Vec<Cluster> {
        let mut yaml = String::from("clusters:\n");
        for i in 0..n {
            yaml.push_str(&format!(
                "  - {{name: c{i}, region: KR, service_group_instance_no: {}}}\n",
                i + 1
            ));
        }
        Config::parse(&yaml, Path::new("t")).unwrap().clusters
    }

    fn calls_of(fake: &Fake, name: &str) -> Vec<Instant> {
        fake.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .collect()
    }

    async fn run_for(
        fake: Arc<Fake>,
        cs: Vec<Cluster>,
        schedule: Schedule,
        dur: Duration,
    ) -> Arc<State> {
        let state = Arc::new(State::new(&cs));
        let (tx, rx) = watch::channel(false);
        let handle = tokio::spawn(run(cs, fake, state.clone(), schedule, rx));
        tokio::time::sleep(dur).await;
        tx.send(true).unwrap();
        handle.await.unwrap();
        state
    }

    #[test]
    fn phase_is_deterministic_and_inside_the_interval() {
        let i = Duration::from_secs(60);
        assert_eq!(phase("orders", i), phase("orders", i));
        assert_ne!(phase("orders", i), phase("payments", i));
        for n in 0..1000 {
            assert!(phase(&format!("c{n}"), i) < i);
        }
    }

    #[test]
    fn phases_fall_on_the_slot_quantum() {
        let i = Duration::from_secs(60);
        let mut distinct = std::collections::BTreeSet::new();
        for n in 0..1000 {
            let p = phase(&format!("cluster-{n}"), i);
            assert_eq!(p.as_nanos() % SLOT_QUANTUM.as_nanos(), 0, "{p:?}");
            distinct.insert(p);
        }
        assert!(distinct.len() > 450, "{} distinct slots", distinct.len());
        // Short intervals get a finer quantum: a hundredth of the interval.
        let short = Duration::from_secs(2);
        let p = phase("orders", short);
        assert_eq!(p.as_nanos() % (short / 100).as_nanos(), 0);
        assert!(p < short);
    }

    #[test]
    fn phases_spread_evenly() {
        // 1,000 names over 10 buckets of a 60 s interval: each bucket should hold about 100.
        let i = Duration::from_secs(60);
        let mut buckets = [0usize; 10];
        for n in 0..1000 {
            buckets[(phase(&format!("cluster-{n}"), i).as_secs() / 6) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&b| (60..=140).contains(&b)),
            "{buckets:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn next_slot_math() {
        let a = Instant::now();
        let i = Duration::from_secs(60);
        let p = Duration::from_secs(15);
        assert_eq!(next_slot(a, p, i, a), a + p);
        assert_eq!(next_slot(a, p, i, a + p), a + p + i);
        assert_eq!(
            next_slot(a, p, i, a + Duration::from_secs(200)),
            a + Duration::from_secs(255)
        );
    }

    #[test]
    fn backoff_honours_retry_after_and_caps() {
        let i = Duration::from_secs(60);
        assert_eq!(
            backoff(Some(Duration::from_secs(5)), i, 1),
            Duration::from_secs(5)
        );
        assert_eq!(backoff(None, i, 1), Duration::from_secs(120));
        assert_eq!(backoff(None, i, 3), Duration::from_secs(480));
        assert_eq!(backoff(None, i, 100), MAX_BACKOFF);
        assert_eq!(
            backoff(Some(Duration::from_secs(999_999)), i, 1),
            MAX_BACKOFF
        );
    }

    #[tokio::test(start_paused = true)]
    async fn every_cluster_at_start_then_once_per_interval_on_its_slot() {
        let fake = Arc::new(Fake::default());
        let cs = clusters(50);
        let start = Instant::now();
        let schedule = Schedule {
            interval: Duration::from_secs(60),
            concurrency: 4,
        };
        let run_time = Duration::from_secs(60 * 5 + 1);
        let state = run_for(fake.clone(), cs.clone(), schedule, run_time).await;
        assert!(state.is_ready());
        for c in &cs {
            let calls = calls_of(&fake, &c.name);
            // At start (queued behind the semaphore: 50 × 10 ms / 4 ≤ 130 ms), then on every slot
            // `phase + k·interval` that fell inside the run.
            assert!(
                calls[0] - start <= Duration::from_millis(130),
                "{}: first at {:?}",
                c.name,
                calls[0] - start
            );
            let ph = phase(&c.name, schedule.interval);
            let slots = (0..10)
                .filter(|k| ph + schedule.interval * *k < run_time)
                .count();
            assert_eq!(
                calls.len(),
                1 + slots,
                "{}: {} calls, phase {ph:?}",
                c.name,
                calls.len()
            );
            for (k, t) in calls[1..].iter().enumerate() {
                let slot = start + ph + schedule.interval * k as u32;
                assert!(
                    *t >= slot && *t - slot <= Duration::from_millis(130),
                    "{}: call {k} off its slot",
                    c.name
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_capped_and_a_hanging_cluster_does_not_delay_others() {
        let mut fake = Fake::default();
        fake.delay.insert("c0".into(), Duration::from_secs(50));
        let fake = Arc::new(fake);
        let cs = clusters(20);
        let start = Instant::now();
        let schedule = Schedule {
            interval: Duration::from_secs(60),
            concurrency: 3,
        };
        run_for(fake.clone(), cs.clone(), schedule, Duration::from_secs(10)).await;
        assert!(fake.in_flight.lock().unwrap().1 <= 3);
        for c in &cs[1..] {
            let calls = calls_of(&fake, &c.name);
            // 19 quick clusters share the 2 permits c0 leaves free: all done within 0.2 s.
            assert!(
                calls[0] - start < Duration::from_millis(200),
                "{} waited {:?}",
                c.name,
                calls[0] - start
            );
        }
        assert_eq!(
            calls_of(&fake, "c0").len(),
            1,
            "never two prechecks of one cluster at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_cluster_honours_retry_after() {
        let mut fake = Fake::default();
        fake.rate_limit
            .insert("c0".into(), Some(Duration::from_secs(300)));
        fake.rate_limit.insert("c1".into(), None);
        let fake = Arc::new(fake);
        let cs = clusters(3);
        let schedule = Schedule {
            interval: Duration::from_secs(60),
            concurrency: 4,
        };
        run_for(fake.clone(), cs, schedule, Duration::from_secs(601)).await;
        let c0 = calls_of(&fake, "c0");
        for w in c0.windows(2) {
            assert!(
                w[1] - w[0] >= Duration::from_secs(300),
                "c0 asked again after {:?}",
                w[1] - w[0]
            );
        }
        assert!(c0.len() >= 2 && c0.len() <= 3, "{}", c0.len());
        // Without Retry-After: 120 s, then 240 s, then 480 s.
        let c1 = calls_of(&fake, "c1");
        assert!(c1.len() <= 3, "{}", c1.len());
        assert!(c1[1] - c1[0] >= Duration::from_secs(120));
        // The healthy cluster is unaffected: at start plus 10 slots.
        assert_eq!(calls_of(&fake, "c2").len(), 11);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_lets_in_flight_prechecks_finish() {
        let mut fake = Fake::default();
        fake.delay.insert("c0".into(), Duration::from_secs(5));
        let fake = Arc::new(fake);
        let cs = clusters(1);
        let state = Arc::new(State::new(&cs));
        let (tx, rx) = watch::channel(false);
        let schedule = Schedule {
            interval: Duration::from_secs(60),
            concurrency: 1,
        };
        let handle = tokio::spawn(run(cs, fake.clone(), state.clone(), schedule, rx));
        tokio::time::sleep(Duration::from_secs(1)).await;
        tx.send(true).unwrap();
        handle.await.unwrap();
        assert_eq!(
            state.get("c0").unwrap().runs_total,
            1,
            "the in-flight precheck was recorded"
        );
        assert_eq!(calls_of(&fake, "c0").len(), 1, "nothing new was scheduled");
    }
}
