//! The runner: the one place a precheck is started, with its budgets.
//!
//! Owns the per-cluster single flight (a lock held for the whole precheck, so a cluster never has
//! two at once, periodic, fresh or `check`), the cap on prechecks in flight (a semaphore), the
//! gate's fresh prechecks (shared among concurrent callers, at most one per cluster per
//! `min_fresh_interval`), logging each result and the clock-skew warning. It alone records
//! outcomes in the state. What asks NCP is a [`Prechecker`]: the real clients, or a fake in
//! tests.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::{Mutex, Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::model::Cluster;
use crate::ncp::client::{Clients, SharedClients};
use crate::ncp::precheck::{Precheck, precheck};
use crate::outcome::{CLOCK_SKEW_WARN_SECONDS, FailureReason};
use crate::state::State;

/// Something that can precheck a cluster (the real clients, or a fake in tests).
pub trait Prechecker: Send + Sync + std::fmt::Debug + 'static {
    /// One precheck; never fails, every failure is an `Outcome`.
    fn precheck(&self, cluster: &Arc<Cluster>) -> impl Future<Output = Precheck> + Send;
}

impl<P: Prechecker> Prechecker for Arc<P> {
    fn precheck(&self, cluster: &Arc<Cluster>) -> impl Future<Output = Precheck> + Send {
        P::precheck(self, cluster)
    }
}

impl Prechecker for SharedClients {
    fn precheck(&self, cluster: &Arc<Cluster>) -> impl Future<Output = Precheck> + Send {
        let clients = self.current();
        let cluster = cluster.clone();
        async move { precheck(&clients, &cluster).await }
    }
}

impl Prechecker for Clients {
    fn precheck(&self, cluster: &Arc<Cluster>) -> impl Future<Output = Precheck> + Send {
        precheck(self, cluster)
    }
}

/// Runs prechecks: the one place a precheck is started, whether by the schedule, by the gate's
/// `?fresh=1` or by `check`. It keeps the invariants: at most one precheck per cluster (a
/// per-cluster lock), at most `concurrency` in flight (a semaphore, taken after the cluster lock
/// so a waiting cluster never holds a permit), and every result recorded in `state`. Its cluster
/// set follows the scheduler's [`Plan`](crate::plan::Plan).
#[derive(Debug)]
pub struct Runner<P> {
    /// What actually asks NCP.
    prechecker: P,
    /// Where results go.
    pub(super) state: Arc<State>,
    /// Caps prechecks in flight across all clusters.
    pub(super) permits: Arc<Semaphore>,
    /// The semaphore's intended size (it changes on reload).
    concurrency: StdMutex<usize>,
    /// One flight record per cluster, by name.
    flights: RwLock<HashMap<String, Arc<Flight>>>,
    /// When the clock-skew warning was last logged.
    last_skew_warning: StdMutex<Option<Instant>>,
    /// The wall clock slots are anchored to (`SystemTime::now`; tests pin it).
    pub(super) wall_clock: fn() -> SystemTime,
    /// Log each result and the clock-skew warning (off for `check`, which reports them itself).
    logs: bool,
}

/// How often the clock-skew warning may repeat.
pub const SKEW_WARNING_EVERY: Duration = Duration::from_secs(600);

/// One cluster's single-flight record.
#[derive(Debug)]
pub(super) struct Flight {
    /// The cluster, as planned.
    pub(super) cluster: Arc<Cluster>,
    /// Held for the whole precheck, periodic or fresh; guards the timestamps below.
    pub(super) guard: Arc<Mutex<FlightTimes>>,
}

impl Flight {
    fn new(cluster: Arc<Cluster>) -> Arc<Self> {
        Arc::new(Self {
            cluster,
            guard: Arc::default(),
        })
    }
}

/// When a cluster's prechecks last ran.
#[derive(Debug, Default)]
pub(super) struct FlightTimes {
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
pub trait FreshPrecheck: Send + Sync + std::fmt::Debug {
    /// Runs (or joins, or declines within `min_interval`) a fresh precheck; `None` for an unknown
    /// cluster. Recorded in the state like any precheck.
    fn fresh(self: Arc<Self>, name: &str, min_interval: Duration) -> FreshFuture;
}

/// What [`FreshPrecheck::fresh`] returns.
pub type FreshFuture = Pin<Box<dyn Future<Output = Option<FreshSource>> + Send>>;

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
        let flights = clusters
            .into_iter()
            .map(|c| (c.name.clone(), Flight::new(c)))
            .collect();
        Self {
            prechecker,
            state,
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency: StdMutex::new(concurrency),
            flights: RwLock::new(flights),
            last_skew_warning: StdMutex::new(None),
            wall_clock: SystemTime::now,
            logs: true,
        }
    }

    /// The same runner without its own log lines, for a caller that reports every result.
    pub fn without_logs(mut self) -> Self {
        self.logs = false;
        self
    }

    /// The same runner with slots anchored to `wall_clock` instead of the system's (tests).
    pub fn with_wall_clock(mut self, wall_clock: fn() -> SystemTime) -> Self {
        self.wall_clock = wall_clock;
        self
    }

    /// Follows a plan's cluster set (the state already holds it: the inventory synced it).
    /// Returns the new flights and the names removed; kept clusters keep their flight and rhythm.
    pub(super) fn apply(&self, clusters: &[Arc<Cluster>]) -> (Vec<Arc<Flight>>, Vec<String>) {
        let mut flights = write(&self.flights);
        let removed = crate::plan::dropped(flights.values().map(|f| &*f.cluster), clusters);
        for name in &removed {
            flights.remove(name);
        }
        let mut added = Vec::new();
        for c in clusters {
            if !flights.contains_key(&c.name) {
                let flight = Flight::new(c.clone());
                flights.insert(c.name.clone(), flight.clone());
                added.push(flight);
            }
        }
        (added, removed)
    }

    /// Every cluster's flight record.
    pub(super) fn flights(&self) -> Vec<Arc<Flight>> {
        read(&self.flights).values().cloned().collect()
    }

    /// Resizes the in-flight cap. Shrinking takes effect as running prechecks finish.
    pub(super) fn set_concurrency(&self, n: usize) {
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
    fn warn_about_clock(&self, p: &Precheck) {
        let Some(skew) = p.clock_skew.filter(|s| s.abs() > CLOCK_SKEW_WARN_SECONDS) else {
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

    fn flight(&self, name: &str) -> Option<Arc<Flight>> {
        read(&self.flights).get(name).cloned()
    }

    /// Prechecks one cluster now, waiting for its lock and a permit like a periodic precheck,
    /// and records the result (`check` runs every precheck this way). `None` for a cluster the
    /// runner does not know.
    pub async fn precheck_now(&self, name: &str) -> Option<Precheck> {
        let flight = self.flight(name)?;
        let mut times = flight.guard.lock().await;
        // The semaphore is never closed, so acquire cannot fail.
        let permit = self.permits.acquire().await.ok()?;
        Some(self.precheck_locked(&flight, &mut times, permit).await)
    }

    /// Runs one precheck now; the caller holds the cluster's lock (`times`) and a permit.
    /// Records and logs the result.
    pub(super) async fn precheck_locked(
        &self,
        flight: &Flight,
        times: &mut FlightTimes,
        permit: SemaphorePermit<'_>,
    ) -> Precheck {
        // Boxed: the HTTP call's state is large and only alive during the call, while a cluster's
        // task lives (asleep) for the whole run; inline, it would cost every cluster ~1 KiB.
        let precheck = Box::pin(self.prechecker.precheck(&flight.cluster)).await;
        drop(permit);
        let now = Instant::now();
        times.last_finished = Some(now);
        if self.logs {
            log(&flight.cluster, &precheck);
            self.warn_about_clock(&precheck);
        }
        self.state
            .record(&flight.cluster.name, &precheck, now, SystemTime::now());
        precheck
    }

    async fn fresh_inner(
        self: Arc<Self>,
        name: String,
        min_interval: Duration,
    ) -> Option<FreshSource> {
        let flight = self.flight(&name)?;
        let arrived = Instant::now();
        let mut times = flight.guard.clone().lock_owned().await;
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
                runner.precheck_locked(&flight, &mut times, permit).await;
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

fn log(c: &Cluster, p: &Precheck) {
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
    let skew = p.clock_skew.filter(|s| s.abs() > CLOCK_SKEW_WARN_SECONDS);
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
