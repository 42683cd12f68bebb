//! When each cluster is prechecked: spread, bounded, backed off.
//!
//! Every cluster is prechecked once at start, then on its own slot every `interval`. A cluster's
//! slot is a fixed phase within the interval derived from a hash of its name, so 1,000 clusters
//! never fire at once and a restart keeps each cluster's rhythm. A semaphore caps the prechecks in
//! flight across all clusters; a per-cluster lock means there is never more than one precheck per
//! cluster (periodic or the gate's fresh one), and a hanging cluster only holds its own permit,
//! until the timeout. After a 429 the cluster waits for `Retry-After` (or an exponential back-off)
//! before its next slot. The gate's `?fresh=1` goes through the same [`Runner`], which shares one
//! upstream call among concurrent callers and rate-limits fresh calls per cluster.
//! Time is tokio's, so tests drive all of this with a paused clock.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::{Mutex, Semaphore, SemaphorePermit, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use crate::config::Cluster;
use crate::ncp::cdss::{CdssClient, Precheck, SharedClients, failed};
use crate::outcome::{CLOCK_SKEW_WARN_SECONDS, FailureReason, Outcome, clock_skew};
use crate::state::State;

/// Longest back-off after repeated 429s without `Retry-After`.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Something that can precheck a cluster (the real client, or a fake in tests).
pub trait Prechecker: Send + Sync + 'static {
    /// One precheck; never fails, every failure is an `Outcome`.
    fn precheck(&self, cluster: &Arc<Cluster>) -> impl Future<Output = Precheck> + Send;
}

impl<P: Prechecker> Prechecker for Arc<P> {
    fn precheck(&self, cluster: &Arc<Cluster>) -> impl Future<Output = Precheck> + Send {
        P::precheck(self, cluster)
    }
}

impl Prechecker for CdssClient {
    fn precheck(&self, cluster: &Arc<Cluster>) -> impl Future<Output = Precheck> + Send {
        CdssClient::precheck(
            self,
            &cluster.precheck_url,
            cluster.service_group_instance_no,
        )
    }
}

impl Prechecker for SharedClients {
    fn precheck(&self, cluster: &Arc<Cluster>) -> impl Future<Output = Precheck> + Send {
        let clients = self.current();
        let cluster = cluster.clone();
        async move {
            match clients.get(&cluster.account) {
                Some(client) => {
                    client
                        .precheck(&cluster.precheck_url, cluster.service_group_instance_no)
                        .await
                }
                None => failed(Outcome::ConnectionError {
                    detail: format!("no credentials for account {:?}", cluster.account),
                }),
            }
        }
    }
}

/// What the scheduler needs from the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Time between two prechecks of one cluster.
    pub interval: Duration,
    /// Prechecks in flight at once.
    pub concurrency: usize,
}

/// Phases are whole multiples of this (or of a twentieth of the interval, if that is shorter), so
/// clusters whose slots fall close together are prechecked in one burst, on one timer wake-up.
/// What a precheck costs in CPU is dominated by waking the process from idle (threads, caches),
/// so bursts matter: at 1,000 clusters every 10 s, one cluster per wake-up cost ~0.12 ms per
/// precheck, a 100 ms quantum (~10 per wake-up) ~0.085 ms, and this 500 ms quantum (~50 per
/// wake-up) ~0.045 ms (BENCHMARKS.md). The bursts stay bounded by `concurrency`, and with at least
/// 20 slots per interval (120 at 60 s) start times stay even at the 1 s resolution a dashboard
/// shows.
pub const SLOT_QUANTUM: Duration = Duration::from_millis(500);

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
    let quantum = SLOT_QUANTUM.min(interval / 20).as_nanos().max(1);
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

/// Runs prechecks: the one place a precheck is started, whether by the schedule or by the gate's
/// `?fresh=1`. It keeps the invariants: at most one precheck per cluster (a per-cluster lock), at
/// most `concurrency` in flight (a semaphore, taken after the cluster lock so a waiting cluster
/// never holds a permit), and every result recorded in `state`. Its cluster set follows the
/// scheduler's [`Plan`].
pub struct Runner<P> {
    /// What actually asks NCP.
    prechecker: P,
    /// Where results go.
    state: Arc<State>,
    /// Caps prechecks in flight across all clusters.
    permits: Arc<Semaphore>,
    /// The semaphore's intended size (it changes on reload).
    concurrency: StdMutex<usize>,
    /// One slot per cluster, by name.
    slots: RwLock<HashMap<String, Arc<Slot>>>,
    /// When the clock-skew warning was last logged.
    last_skew_warning: StdMutex<Option<Instant>>,
}

/// Cluster tasks spawned at start between two yields to the runtime.
const SPAWN_BATCH: usize = 500;

/// How often the clock-skew warning may repeat.
pub const SKEW_WARNING_EVERY: Duration = Duration::from_secs(600);

struct Slot {
    cluster: Arc<Cluster>,
    /// Held for the whole precheck; guards the timestamps below.
    guard: Arc<Mutex<SlotTimes>>,
}

#[derive(Default)]
struct SlotTimes {
    /// When the last precheck of this cluster (periodic or fresh) finished.
    last_finished: Option<Instant>,
    /// When the last fresh (gate-triggered) precheck started, for `gate.min_fresh_interval`.
    last_fresh_started: Option<Instant>,
}

/// Where a `?fresh=1` answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreshSource {
    /// A precheck that finished after the request arrived (this request's, or one it shared).
    Fresh,
    /// Inside `min_fresh_interval` of the last fresh precheck: the latest result, not a new one.
    Recent {
        /// How long until a fresh precheck would be made again.
        retry_in: Duration,
    },
}

/// The gate's view of the runner: fresh prechecks by cluster name, without the generic.
pub trait FreshPrecheck: Send + Sync {
    /// Runs (or joins, or declines within `min_interval`) a fresh precheck; `None` for an unknown
    /// cluster. Recorded in the state like any precheck.
    fn fresh(self: Arc<Self>, name: &str, min_interval: Duration) -> FreshFuture;
}

/// What [`FreshPrecheck::fresh`] returns.
pub type FreshFuture = Pin<Box<dyn Future<Output = Option<FreshSource>> + Send>>;

/// What the scheduler should be doing: which clusters, how often, how many at once.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Every cluster to precheck (static and discovered), names unique.
    pub clusters: Vec<Arc<Cluster>>,
    /// Interval and concurrency.
    pub schedule: Schedule,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

impl<P: Prechecker> Runner<P> {
    /// A runner for `clusters` (which `state` must already hold), recording into `state`.
    pub fn new(
        clusters: Vec<Arc<Cluster>>,
        prechecker: P,
        state: Arc<State>,
        concurrency: usize,
    ) -> Self {
        let slots = clusters
            .into_iter()
            .map(|c| {
                (
                    c.name.clone(),
                    Arc::new(Slot {
                        cluster: c,
                        guard: Arc::default(),
                    }),
                )
            })
            .collect();
        Self {
            prechecker,
            state,
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency: StdMutex::new(concurrency),
            slots: RwLock::new(slots),
            last_skew_warning: StdMutex::new(None),
        }
    }

    /// Names of the clusters this runner knows.
    pub fn cluster_names(&self) -> Vec<String> {
        read(&self.slots).keys().cloned().collect()
    }

    /// Makes the cluster set exactly `clusters` (state included). Returns the new slots and the
    /// names removed; kept clusters keep their slot, state and rhythm.
    fn apply(&self, clusters: &[Arc<Cluster>]) -> (Vec<Arc<Slot>>, Vec<String>) {
        self.state.sync(clusters);
        let mut slots = write(&self.slots);
        let removed = crate::inventory::dropped(slots.values().map(|s| &*s.cluster), clusters);
        for name in &removed {
            slots.remove(name);
        }
        let mut added = Vec::new();
        for c in clusters {
            if !slots.contains_key(&c.name) {
                let slot = Arc::new(Slot {
                    cluster: c.clone(),
                    guard: Arc::default(),
                });
                slots.insert(c.name.clone(), slot.clone());
                added.push(slot);
            }
        }
        (added, removed)
    }

    /// Resizes the in-flight cap. Shrinking takes effect as running prechecks finish.
    fn set_concurrency(&self, n: usize) {
        let mut current = self
            .concurrency
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if n > *current {
            self.permits.add_permits(n - *current);
        } else if n < *current {
            let surplus = (*current - n) as u32;
            let permits = self.permits.clone();
            tokio::spawn(async move {
                if let Ok(p) = permits.acquire_many_owned(surplus).await {
                    p.forget();
                }
            });
        }
        *current = n;
    }

    /// Logs a warning when the gateway's clock is more than a minute off ours, at most every
    /// [`SKEW_WARNING_EVERY`].
    fn warn_about_clock(&self, p: &Precheck, wall: SystemTime) {
        let Some(skew) =
            clock_skew(p.server_date, wall).filter(|s| s.abs() > CLOCK_SKEW_WARN_SECONDS)
        else {
            return;
        };
        let mut last = self
            .last_skew_warning
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < SKEW_WARNING_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        tracing::warn!(
            skew_seconds = skew,
            "this host's clock is {:.0} s {} the API gateway's; NCP rejects requests more than 300 s off: check NTP",
            skew.abs(),
            if skew > 0.0 { "behind" } else { "ahead of" }
        );
    }

    fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        read(&self.slots).get(name).cloned()
    }

    /// Runs one precheck now; the caller holds the cluster's lock (`times`) and a permit.
    /// Records and logs the result.
    async fn precheck_locked(
        &self,
        slot: &Slot,
        times: &mut SlotTimes,
        permit: SemaphorePermit<'_>,
    ) -> Precheck {
        // Boxed: the HTTP call's state is large and only alive during the call, while a cluster's
        // task lives (asleep) for the whole run; inline, it would cost every cluster ~1 KiB.
        let precheck = Box::pin(self.prechecker.precheck(&slot.cluster)).await;
        drop(permit);
        let now = Instant::now();
        times.last_finished = Some(now);
        let wall = SystemTime::now();
        log(&slot.cluster, &precheck, wall);
        self.warn_about_clock(&precheck, wall);
        self.state.record(&slot.cluster.name, &precheck, now, wall);
        precheck
    }

    async fn fresh_inner(
        self: Arc<Self>,
        name: String,
        min_interval: Duration,
    ) -> Option<FreshSource> {
        let slot = self.slot(&name)?;
        let arrived = Instant::now();
        let mut times = slot.guard.clone().lock_owned().await;
        if times.last_finished.is_some_and(|t| t >= arrived) {
            // A precheck finished while we waited for the lock: share it.
            return Some(FreshSource::Fresh);
        }
        if let Some(started) = times.last_fresh_started {
            let since = arrived.saturating_duration_since(started);
            if since < min_interval {
                return Some(FreshSource::Recent {
                    retry_in: min_interval - since,
                });
            }
        }
        times.last_fresh_started = Some(arrived);
        // In its own task, so a caller that hangs up does not cancel the call others are waiting on.
        let runner = self.clone();
        let call = tokio::spawn(async move {
            let mut times = times;
            // The semaphore is never closed, so acquire cannot fail.
            if let Ok(permit) = runner.permits.acquire().await {
                runner.precheck_locked(&slot, &mut times, permit).await;
            }
        });
        match call.await {
            Ok(()) => Some(FreshSource::Fresh),
            Err(e) => {
                tracing::error!(cluster = %name, error = %e, "fresh precheck task failed");
                None
            }
        }
    }
}

impl<P: Prechecker> FreshPrecheck for Runner<P> {
    fn fresh(self: Arc<Self>, name: &str, min_interval: Duration) -> FreshFuture {
        Box::pin(self.fresh_inner(name.to_string(), min_interval))
    }
}

/// Runs a fixed schedule for the runner's clusters until `shutdown` turns true.
pub async fn run<P: Prechecker>(
    runner: Arc<Runner<P>>,
    schedule: Schedule,
    shutdown: watch::Receiver<bool>,
) {
    let clusters: Vec<Arc<Cluster>> = read(&runner.slots)
        .values()
        .map(|s| s.cluster.clone())
        .collect();
    let (_keep, plan) = watch::channel(Plan { clusters, schedule });
    run_plan(runner, plan, shutdown).await;
}

/// Runs the schedule, following every new [`Plan`] (clusters added start at once, removed ones
/// stop at once, kept ones keep their rhythm), until `shutdown` turns true; then returns once
/// in-flight prechecks have ended.
pub async fn run_plan<P: Prechecker>(
    runner: Arc<Runner<P>>,
    mut plan: watch::Receiver<Plan>,
    mut shutdown: watch::Receiver<bool>,
) {
    let anchor = Instant::now();
    let mut tasks = JoinSet::new();
    let mut handles: HashMap<String, AbortHandle> = HashMap::new();
    let first = plan.borrow_and_update().clone();
    let mut schedule = first.schedule;
    runner.set_concurrency(schedule.concurrency);
    runner.apply(&first.clusters);
    let task_shutdown = shutdown.clone();
    let spawn = |tasks: &mut JoinSet<()>, slot: Arc<Slot>, schedule: Schedule, wait_first: bool| {
        let task = ClusterTask {
            phase: phase(&slot.cluster.name, schedule.interval),
            slot,
            runner: runner.clone(),
            interval: schedule.interval,
            anchor,
            wait_first,
        };
        tasks.spawn(task.run(task_shutdown.clone()))
    };
    let slots: Vec<Arc<Slot>> = read(&runner.slots).values().cloned().collect();
    for (i, slot) in slots.into_iter().enumerate() {
        if i % SPAWN_BATCH == SPAWN_BATCH - 1 {
            // 10,000 clusters take milliseconds to spawn: let the server answer meanwhile.
            tokio::task::yield_now().await;
        }
        handles.insert(
            slot.cluster.name.clone(),
            spawn(&mut tasks, slot, schedule, false),
        );
    }
    let mut watching = true;
    loop {
        tokio::select! {
            changed = plan.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                    continue;
                }
                let next = plan.borrow_and_update().clone();
                runner.set_concurrency(next.schedule.concurrency);
                let (added, removed) = runner.apply(&next.clusters);
                for name in &removed {
                    if let Some(h) = handles.remove(name) {
                        h.abort();
                    }
                }
                if next.schedule.interval != schedule.interval {
                    // A new interval moves every slot: restart every task, each waiting for its
                    // next slot (clusters never checked yet go at once).
                    for h in handles.values() {
                        h.abort();
                    }
                    handles.clear();
                    for slot in read(&runner.slots).values() {
                        let checked = runner.state.get(&slot.cluster.name).is_some_and(|s| s.last.is_some());
                        handles.insert(slot.cluster.name.clone(), spawn(&mut tasks, slot.clone(), next.schedule, checked));
                    }
                } else {
                    for slot in added {
                        handles.insert(slot.cluster.name.clone(), spawn(&mut tasks, slot, next.schedule, false));
                    }
                }
                if !removed.is_empty() || next.clusters.len() != handles.len() {
                    tracing::info!(clusters = handles.len(), removed = removed.len(), "cluster set updated");
                }
                schedule = next.schedule;
            }
            Some(joined) = tasks.join_next() => {
                if let Err(e) = joined.map_err(|e| (e.is_cancelled(), e)) {
                    if !e.0 {
                        tracing::error!(error = %e.1, "a cluster's precheck task ended abnormally");
                    }
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            if !e.is_cancelled() {
                tracing::error!(error = %e, "a cluster's precheck task ended abnormally");
            }
        }
    }
}

struct ClusterTask<P> {
    slot: Arc<Slot>,
    phase: Duration,
    runner: Arc<Runner<P>>,
    interval: Duration,
    anchor: Instant,
    /// Wait for the first slot instead of prechecking at once (a restarted task whose cluster
    /// already has a result).
    wait_first: bool,
}

impl<P: Prechecker> ClusterTask<P> {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut rate_limited_streak = 0u32;
        let name = &self.slot.cluster.name;
        if self.wait_first {
            let first = next_slot(self.anchor, self.phase, self.interval, Instant::now());
            tokio::select! {
                _ = tokio::time::sleep_until(first) => {}
                _ = shutdown.changed() => return,
            }
        }
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Waiting for the cluster's lock or a permit ends at shutdown...
            let mut times = tokio::select! {
                t = self.slot.guard.lock() => t,
                _ = shutdown.changed() => return,
            };
            let permit = tokio::select! {
                p = self.runner.permits.acquire() => match p { Ok(p) => p, Err(_) => return },
                _ = shutdown.changed() => return,
            };
            // ...but a precheck in flight is not cancelled: it ends on its own, within the timeout.
            let precheck = self
                .runner
                .precheck_locked(&self.slot, &mut times, permit)
                .await;
            drop(times);
            let now = Instant::now();
            let mut next = next_slot(self.anchor, self.phase, self.interval, now);
            if precheck.outcome.is_rate_limited() {
                rate_limited_streak = rate_limited_streak.saturating_add(1);
                let wait = backoff(precheck.retry_after, self.interval, rate_limited_streak);
                next = next.max(now + wait);
                tracing::warn!(
                    cluster = %name,
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
}

fn log(c: &Cluster, p: &Precheck, wall: SystemTime) {
    let request_id = p.request_id.as_deref().unwrap_or("");
    let latency_ms = p.latency.as_secs_f64() * 1e3;
    let Some(reason) = p.outcome.failure_reason() else {
        tracing::debug!(
            cluster = %c.name, region = %c.region, verdict = p.outcome.verdict(),
            code = p.outcome.error_code(), request_id, latency_ms,
            "precheck done"
        );
        return;
    };
    let skew = clock_skew(p.server_date, wall).filter(|s| s.abs() > CLOCK_SKEW_WARN_SECONDS);
    let hint = match (reason, skew) {
        (FailureReason::AuthError, Some(s)) => format!(
            "; this host's clock is {:.0} s off the gateway's, which is the likely cause (NCP rejects timestamps more than 300 s off)",
            s.abs()
        ),
        _ => String::new(),
    };
    tracing::warn!(
        cluster = %c.name, region = %c.region, verdict = p.outcome.verdict(),
        code = p.outcome.error_code(), request_id, latency_ms,
        "precheck failed: {}{hint}", p.outcome.message()
    );
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
        async fn precheck(&self, c: &Arc<Cluster>) -> Precheck {
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

    fn clusters(n: usize) -> Vec<Arc<Cluster>> {
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
        cs: Vec<Arc<Cluster>>,
        schedule: Schedule,
        dur: Duration,
    ) -> Arc<State> {
        let state = Arc::new(State::new(&cs));
        let (tx, rx) = watch::channel(false);
        let runner = Arc::new(Runner::new(cs, fake, state.clone(), schedule.concurrency));
        let handle = tokio::spawn(run(runner, schedule, rx));
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
        // 60 s / 500 ms = 120 slots, nearly all of them used by 1,000 names.
        assert!(distinct.len() > 110, "{} distinct slots", distinct.len());
        // Short intervals get a finer quantum: a twentieth of the interval.
        let short = Duration::from_secs(2);
        let p = phase("orders", short);
        assert_eq!(p.as_nanos() % (short / 20).as_nanos(), 0);
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
            // A slot at 0 (phase 0) is the start-up precheck itself.
            let ph = phase(&c.name, schedule.interval);
            let slots: Vec<Duration> = (0..10)
                .map(|k| ph + schedule.interval * k)
                .filter(|t| !t.is_zero() && *t < run_time)
                .collect();
            assert_eq!(
                calls.len(),
                1 + slots.len(),
                "{}: {} calls, phase {ph:?}",
                c.name,
                calls.len()
            );
            for (k, (t, slot)) in calls[1..].iter().zip(&slots).enumerate() {
                let slot = start + *slot;
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
        let runner = Arc::new(Runner::new(
            cs,
            fake.clone(),
            state.clone(),
            schedule.concurrency,
        ));
        let handle = tokio::spawn(run(runner, schedule, rx));
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

    #[tokio::test(start_paused = true)]
    async fn fresh_calls_are_shared_and_rate_limited() {
        let mut fake = Fake::default();
        fake.delay.insert("c0".into(), Duration::from_millis(500));
        let fake = Arc::new(fake);
        let cs = clusters(1);
        let state = Arc::new(State::new(&cs));
        let runner = Arc::new(Runner::new(cs, fake.clone(), state.clone(), 4));
        let min = Duration::from_secs(10);
        let mut callers = JoinSet::new();
        for _ in 0..20 {
            let r = runner.clone();
            callers.spawn(async move { r.fresh("c0", min).await });
        }
        let answers = callers.join_all().await;
        assert!(
            answers.iter().all(|a| *a == Some(FreshSource::Fresh)),
            "{answers:?}"
        );
        assert_eq!(
            calls_of(&fake, "c0").len(),
            1,
            "20 concurrent callers share one upstream call"
        );
        assert_eq!(
            state.get("c0").unwrap().runs_total,
            1,
            "the fresh result is recorded"
        );

        tokio::time::sleep(Duration::from_secs(3)).await;
        match runner.clone().fresh("c0", min).await {
            Some(FreshSource::Recent { retry_in }) => {
                assert!(retry_in <= Duration::from_secs(7), "{retry_in:?}")
            }
            other => panic!("inside the window: {other:?}"),
        }
        assert_eq!(calls_of(&fake, "c0").len(), 1);
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert_eq!(
            runner.clone().fresh("c0", min).await,
            Some(FreshSource::Fresh)
        );
        assert_eq!(calls_of(&fake, "c0").len(), 2);
        assert_eq!(
            runner.clone().fresh("nope", min).await,
            None,
            "only configured clusters"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_and_periodic_prechecks_never_overlap_for_one_cluster() {
        let mut fake = Fake::default();
        fake.delay.insert("c0".into(), Duration::from_secs(2));
        let fake = Arc::new(fake);
        let cs = clusters(1);
        let state = Arc::new(State::new(&cs));
        let runner = Arc::new(Runner::new(cs, fake.clone(), state.clone(), 4));
        let (tx, rx) = watch::channel(false);
        let schedule = Schedule {
            interval: Duration::from_secs(5),
            concurrency: 4,
        };
        let sched = tokio::spawn(run(runner.clone(), schedule, rx));
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(700)).await;
            let _ = runner.clone().fresh("c0", Duration::ZERO).await;
        }
        tx.send(true).unwrap();
        sched.await.unwrap();
        assert_eq!(
            fake.in_flight.lock().unwrap().1,
            1,
            "two prechecks of one cluster overlapped"
        );
        // Every precheck, periodic or fresh, was recorded.
        assert_eq!(
            state.get("c0").unwrap().runs_total as usize,
            calls_of(&fake, "c0").len()
        );
    }
}
