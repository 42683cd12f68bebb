//! The runner: the one place a precheck is started, with its budgets.
//!
//! Owns the per-cluster single flight (a lock held for the whole precheck, so a cluster never has
//! two at once, periodic, fresh or `check`), admission to the in-flight budgets (`budget`: per
//! account and gateway, a lane for answering clusters and one for suspect ones, a hard cap per
//! account), the gate's fresh prechecks (shared among concurrent callers, at most one per cluster
//! per `min_fresh_interval`, and all of them within one token bucket, `gate.fresh_budget`),
//! logging each result and the clock-skew warning. It alone records outcomes (and how late a
//! periodic precheck started against its slot) in the state. What asks NCP is a
//! [`Prechecker`]: the real clients, or a fake in tests.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex as StdMutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::budget::{Admission, BudgetKey, Budgets, LaneKind, TokenBucket};
use super::slot::backoff;
use crate::config::FreshBudget;
use crate::model::Cluster;
use crate::ncp::client::{Clients, SharedClients};
use crate::ncp::cluster_status::{Diagnosis, cluster_status};
use crate::ncp::precheck::{Precheck, precheck};
use crate::outcome::{CLOCK_SKEW_WARN_SECONDS, Outcome, clock_skew_hint};
use crate::state::State;

/// Something that can precheck a cluster and read its status (the real clients, or a fake in
/// tests).
pub trait Prechecker: Send + Sync + std::fmt::Debug + 'static {
    /// One precheck; never fails, every failure is an `Outcome`.
    fn precheck(&self, cluster: &Arc<Cluster>) -> impl Future<Output = Precheck> + Send;
    /// One `getClusterStatus`; `Err` is the outcome of a call without a usable answer.
    fn cluster_status(
        &self,
        cluster: &Arc<Cluster>,
    ) -> impl Future<Output = Result<Diagnosis, Outcome>> + Send;
}

impl<P: Prechecker> Prechecker for Arc<P> {
    fn precheck(&self, cluster: &Arc<Cluster>) -> impl Future<Output = Precheck> + Send {
        P::precheck(self, cluster)
    }
    fn cluster_status(
        &self,
        cluster: &Arc<Cluster>,
    ) -> impl Future<Output = Result<Diagnosis, Outcome>> + Send {
        P::cluster_status(self, cluster)
    }
}

impl Prechecker for SharedClients {
    fn precheck(&self, cluster: &Arc<Cluster>) -> impl Future<Output = Precheck> + Send {
        let clients = self.current();
        let cluster = cluster.clone();
        async move { precheck(&clients, &cluster).await }
    }
    fn cluster_status(
        &self,
        cluster: &Arc<Cluster>,
    ) -> impl Future<Output = Result<Diagnosis, Outcome>> + Send {
        let clients = self.current();
        let cluster = cluster.clone();
        async move { cluster_status(&clients, &cluster).await }
    }
}

impl Prechecker for Clients {
    fn precheck(&self, cluster: &Arc<Cluster>) -> impl Future<Output = Precheck> + Send {
        precheck(self, cluster)
    }
    fn cluster_status(
        &self,
        cluster: &Arc<Cluster>,
    ) -> impl Future<Output = Result<Diagnosis, Outcome>> + Send {
        cluster_status(self, cluster)
    }
}

/// Whether an outcome calls for `getClusterStatus`: CDSS said no, or answered with an error
/// other than "no such cluster" (code 3: there are no nodes to ask about).
fn worth_diagnosing(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::NotReady => true,
        Outcome::ApiError { code, .. } => *code != 3,
        _ => false,
    }
}

/// Runs prechecks: the one place a precheck is started, whether by the schedule, by the gate's
/// `?fresh=1` or by `check`. It keeps the invariants: at most one precheck per cluster (a
/// per-cluster lock), the in-flight budgets (taken after the cluster lock, so a waiting cluster
/// never holds a permit), and every result recorded in `state`. Its cluster set follows the
/// scheduler's [`Plan`](crate::plan::Plan).
#[derive(Debug)]
pub struct Runner<P> {
    /// What actually asks NCP.
    prechecker: P,
    /// Where results go.
    pub(super) state: Arc<State>,
    /// Caps prechecks in flight, per account and gateway and lane.
    budgets: Budgets,
    /// The per-request timeout: a precheck never holds an answering permit longer (it changes
    /// on reload).
    timeout: StdMutex<Duration>,
    /// The schedule's interval, the unit of the back-off after a 429 without `Retry-After`.
    interval: StdMutex<Duration>,
    /// Every fresh precheck, across all clusters, draws a token from here.
    fresh_tokens: StdMutex<TokenBucket>,
    /// When to read `getClusterStatus` (from the schedule; a reload may change it).
    diagnosis: StdMutex<DiagnosisPolicy>,
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

/// When the runner reads `getClusterStatus` after a precheck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DiagnosisPolicy {
    /// After every precheck that got an answer, not only the failing ones.
    every_round: bool,
    /// At most once per cluster in this window (the interval).
    at_most_every: Duration,
}

/// When a cluster's prechecks last ran, and which lane the next one waits in.
#[derive(Debug, Default)]
pub(super) struct FlightTimes {
    /// Suspect after a timeout or a refused connection; answering again after an answer.
    lane: Option<LaneKind>,
    /// The precheck that last asked for `getClusterStatus` (cleared when the diagnosis goes).
    last_status: Option<StatusRead>,
    /// When the last precheck of this cluster (periodic or fresh) finished.
    last_finished: Option<Instant>,
    /// When the last fresh (gate-triggered) precheck started, for `gate.min_fresh_interval`.
    last_fresh_started: Option<Instant>,
    /// 429s in a row, for the back-off without `Retry-After`.
    rate_limited_streak: u32,
    /// After a 429: no precheck of this cluster, periodic or fresh, before this instant.
    pub(super) rate_limited_until: Option<Instant>,
}

/// The precheck that led to a `getClusterStatus` read.
#[derive(Clone, Copy, Debug)]
pub(super) struct StatusRead {
    /// When it was due (its slot) or started.
    due: Instant,
    /// Whether it said ready.
    ready: bool,
}

/// Where a `?fresh=1` answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreshSource {
    /// A precheck that finished after the request arrived (this request's, or one it shared).
    Fresh,
    /// Inside `min_fresh_interval` of the last fresh precheck, or over the fresh budget: the
    /// latest result, not a new one.
    Recent {
        /// How long until a fresh precheck would be made again.
        retry_in: Duration,
    },
}

/// The gate's view of the runner: fresh prechecks by cluster name, without the generic.
pub trait FreshPrecheck: Send + Sync + std::fmt::Debug {
    /// Runs (or joins, or declines within `min_interval` or over `budget`) a fresh precheck;
    /// `None` for an unknown cluster. Recorded in the state like any precheck.
    fn fresh(self: Arc<Self>, name: &str, policy: FreshPolicy) -> FreshFuture;
}

/// What limits the gate's fresh prechecks (from `gate:`; a reload may change it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FreshPolicy {
    /// At most one fresh precheck per cluster in this window.
    pub min_interval: Duration,
    /// All fresh prechecks together, across clusters.
    pub budget: FreshBudget,
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
            budgets: Budgets::new(concurrency),
            timeout: StdMutex::new(crate::config::DEFAULT_TIMEOUT),
            interval: StdMutex::new(crate::config::DEFAULT_INTERVAL),
            fresh_tokens: StdMutex::default(),
            diagnosis: StdMutex::new(DiagnosisPolicy {
                every_round: false,
                at_most_every: crate::config::DEFAULT_INTERVAL,
            }),
            flights: RwLock::new(flights),
            last_skew_warning: StdMutex::new(None),
            wall_clock: SystemTime::now,
            logs: true,
        }
    }

    /// Where the runner records.
    pub fn state(&self) -> &Arc<State> {
        &self.state
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

    /// Follows a new schedule: lane sizes from `concurrency`, the longest a precheck may hold an
    /// answering permit from `timeout`. Shrinking takes effect as running prechecks finish.
    pub(super) fn set_schedule(&self, schedule: &crate::plan::Schedule) {
        self.budgets.set_concurrency(schedule.concurrency);
        *self.timeout.lock().unwrap_or_else(PoisonError::into_inner) = schedule.timeout;
        *self.interval.lock().unwrap_or_else(PoisonError::into_inner) = schedule.interval;
        *self
            .diagnosis
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = DiagnosisPolicy {
            every_round: schedule.diagnose_every_round,
            at_most_every: schedule.interval,
        };
    }

    /// Logs a warning when the gateway's clock is more than a minute off ours, at most every
    /// [`SKEW_WARNING_EVERY`].
    fn warn_about_clock(&self, p: &Precheck) {
        let Some(skew) = p
            .meta
            .clock_skew
            .filter(|s| s.abs() > CLOCK_SKEW_WARN_SECONDS)
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

    fn flight(&self, name: &str) -> Option<Arc<Flight>> {
        read(&self.flights).get(name).cloned()
    }

    /// Prechecks one cluster now, waiting for its lock and a permit like a periodic precheck,
    /// and records the result (`check` runs every precheck this way). `None` for a cluster the
    /// runner does not know.
    pub async fn precheck_now(&self, name: &str) -> Option<Precheck> {
        let flight = self.flight(name)?;
        let mut times = flight.guard.lock().await;
        let admission = self.admit(&flight, &times).await?;
        Some(
            self.precheck_locked(&flight, &mut times, admission, None)
                .await,
        )
    }

    /// Waits for the cluster's budget (the caller holds its lock, `times`). `None` only if the
    /// budgets were closed, which they never are.
    pub(super) async fn admit(&self, flight: &Flight, times: &FlightTimes) -> Option<Admission> {
        let lane = times.lane.unwrap_or(LaneKind::Answering);
        self.budgets
            .admit(BudgetKey::of(&flight.cluster), lane)
            .await
    }

    /// Runs one precheck now; the caller holds the cluster's lock (`times`) and its admission.
    /// `slot` is when a periodic precheck was due (how late it starts is recorded). Records and
    /// logs the result.
    pub(super) async fn precheck_locked(
        &self,
        flight: &Flight,
        times: &mut FlightTimes,
        mut admission: Admission,
        slot: Option<Instant>,
    ) -> Precheck {
        let started = Instant::now();
        // Boxed: the HTTP call's state is large and only alive during the call, while a cluster's
        // task lives (asleep) for the whole run; inline, every cluster's sleeping task would carry it (BENCHMARKS.md).
        let call = Box::pin(self.prechecker.precheck(&flight.cluster));
        let precheck = self.patiently(&mut admission, call).await;
        let sent = !matches!(precheck.outcome, Outcome::NoCredentials { .. });
        if sent && LaneKind::after(&precheck.outcome) == LaneKind::Answering {
            // An answer (any answer): how quickly this gateway answers.
            admission.latency.observe(precheck.meta.latency);
        }
        drop(admission);
        let now = Instant::now();
        times.last_finished = Some(now);
        times.lane = Some(LaneKind::after(&precheck.outcome));
        self.hold_after(&flight.cluster, times, &precheck, now);
        if self.logs {
            log(&flight.cluster, &precheck);
            self.warn_about_clock(&precheck);
        }
        let lag = slot.map(|due| started.saturating_duration_since(due));
        self.state
            .record_run(&flight.cluster.name, &precheck, now, SystemTime::now(), lag);
        self.diagnose(flight, times, &precheck.outcome, slot.unwrap_or(started))
            .await;
        precheck
    }

    /// After a 429 the cluster waits for `Retry-After` (or `interval · 2^n` without one) before
    /// any precheck, periodic or fresh; any other outcome ends the back-off. Only `check`, a
    /// one-shot command the user runs on purpose, is not held (its `--wait` honours
    /// `Retry-After` itself).
    fn hold_after(&self, cluster: &Cluster, times: &mut FlightTimes, p: &Precheck, now: Instant) {
        if !p.outcome.is_rate_limited() {
            times.rate_limited_streak = 0;
            times.rate_limited_until = None;
            return;
        }
        times.rate_limited_streak = times.rate_limited_streak.saturating_add(1);
        let interval = *self.interval.lock().unwrap_or_else(PoisonError::into_inner);
        let wait = backoff(p.meta.retry_after, interval, times.rate_limited_streak);
        times.rate_limited_until = Some(now + wait);
        if self.logs {
            tracing::warn!(
                cluster = %cluster.name,
                backoff = %humantime::format_duration(wait),
                "rate limited by the API gateway; backing off"
            );
        }
    }

    /// Awaits `call` with `admission` held. In the answering lane, a call that has had no answer
    /// within the gateway's patience gives the lane back and goes on under the hard cap, so a
    /// slow gateway never keeps answering clusters waiting.
    async fn patiently<T>(
        &self,
        admission: &mut Admission,
        call: Pin<Box<impl Future<Output = T>>>,
    ) -> T {
        let mut call = call;
        if admission.kind != LaneKind::Answering {
            return call.await;
        }
        let timeout = *self.timeout.lock().unwrap_or_else(PoisonError::into_inner);
        let patience = admission.latency.patience(timeout);
        tokio::select! {
            answer = &mut call => answer,
            () = tokio::time::sleep(patience) => {
                admission.leave_lane();
                call.await
            }
        }
    }

    /// Reads `getClusterStatus` after a precheck when it helps (or every round, if asked), at
    /// most once per interval per cluster, within the cluster's budget like the precheck. `due`
    /// is when the precheck was due (its slot) or started: reads are spaced by the prechecks
    /// that asked for them, so every scheduled round may read, and a fresh precheck between two
    /// rounds does not read again. A verdict that changed since the last read is read at once,
    /// so a diagnosis never describes the other verdict. A failed read leaves the precheck's
    /// result and the last diagnosis as they are (the call is counted with the others). The
    /// diagnosis goes when the cluster is ready again (unless it is read every round) and when
    /// CDSS says there is no such cluster.
    async fn diagnose(
        &self,
        flight: &Flight,
        times: &mut FlightTimes,
        outcome: &Outcome,
        due: Instant,
    ) {
        let policy = *self
            .diagnosis
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let answered = outcome.failure_reason().is_none();
        let wanted = worth_diagnosing(outcome) || (policy.every_round && answered);
        let name = &flight.cluster.name;
        if !wanted {
            // Only a cluster that was read can have a diagnosis, so a healthy cluster's precheck
            // costs no lookup; a new failure is read at once.
            let no_such_cluster = matches!(outcome, Outcome::ApiError { code: 3, .. });
            let gone = no_such_cluster || (outcome.is_ready() && !policy.every_round);
            if gone && times.last_status.take().is_some() {
                self.state.clear_diagnosis(name);
            }
            return;
        }
        let ready = outcome.is_ready();
        if let Some(last) = times.last_status
            && last.ready == ready
            && due.saturating_duration_since(last.due) < policy.at_most_every
        {
            return;
        }
        times.last_status = Some(StatusRead { due, ready });
        let Some(mut admission) = self.admit(flight, times).await else {
            return;
        };
        let call = Box::pin(self.prechecker.cluster_status(&flight.cluster));
        let read = self.patiently(&mut admission, call).await;
        drop(admission);
        match read {
            Ok(diagnosis) => {
                if self.logs {
                    tracing::info!(cluster = %name, region = %flight.cluster.region, "cluster status: {}", diagnosis.summary());
                }
                self.state
                    .record_diagnosis(name, diagnosis, SystemTime::now());
            }
            Err(failure) => {
                if self.logs {
                    tracing::warn!(cluster = %name, region = %flight.cluster.region, verdict = failure.verdict(), "getClusterStatus failed: {}", failure.message());
                }
            }
        }
    }

    async fn fresh_inner(
        self: Arc<Self>,
        name: String,
        policy: FreshPolicy,
    ) -> Option<FreshSource> {
        let min_interval = policy.min_interval;
        let flight = self.flight(&name)?;
        let arrived = Instant::now();
        let mut times = flight.guard.clone().lock_owned().await;
        if times.last_finished.is_some_and(|t| t >= arrived) {
            // A precheck finished while we waited for the lock: share it.
            return Some(FreshSource::Fresh);
        }
        if let Some(until) = times.rate_limited_until
            && until > arrived
        {
            // NCP said 429: a fresh precheck would spend quota it asked us not to.
            return Some(FreshSource::Recent {
                retry_in: until - arrived,
            });
        }
        if let Some(started) = times.last_fresh_started {
            let since = arrived.saturating_duration_since(started);
            if since < min_interval {
                return Some(FreshSource::Recent {
                    retry_in: min_interval - since,
                });
            }
        }
        let over_budget = self
            .fresh_tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(policy.budget, Instant::now());
        if let Err(retry_in) = over_budget {
            return Some(FreshSource::Recent { retry_in });
        }
        times.last_fresh_started = Some(arrived);
        // In its own task, so a caller that hangs up does not cancel the call others are waiting on.
        let runner = self.clone();
        let call = tokio::spawn(async move {
            let mut times = times;
            if let Some(admission) = runner.admit(&flight, &times).await {
                runner
                    .precheck_locked(&flight, &mut times, admission, None)
                    .await;
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
    fn fresh(self: Arc<Self>, name: &str, policy: FreshPolicy) -> FreshFuture {
        Box::pin(self.fresh_inner(name.to_string(), policy))
    }
}

fn log(c: &Cluster, p: &Precheck) {
    let request_id = p.meta.request_id.as_deref().unwrap_or("");
    let latency_ms = p.meta.latency.as_secs_f64() * 1e3;
    if p.outcome.failure_reason().is_none() {
        tracing::debug!(
            cluster = %c.name, region = %c.region, verdict = p.outcome.verdict(),
            code = p.outcome.error_code(), request_id, latency_ms,
            "precheck done"
        );
        return;
    }
    let hint = clock_skew_hint(&p.outcome, p.meta.clock_skew)
        .map(|h| format!("; {h}"))
        .unwrap_or_default();
    tracing::warn!(
        cluster = %c.name, region = %c.region, verdict = p.outcome.verdict(),
        code = p.outcome.error_code(), request_id, latency_ms,
        "precheck failed: {}{hint}", p.outcome.message()
    );
}
