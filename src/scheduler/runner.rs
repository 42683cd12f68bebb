//! The runner: the one place a precheck starts, whether by the schedule, by the gate's
//! `?fresh=1` (`fresh`) or by `check`.
//!
//! It owns admission and the single flight: at most one precheck per cluster (a lock held for
//! the whole precheck, periodic, fresh or `check`), then a permit from the cluster's budget
//! (`budget`: per account and gateway, an answering and a suspect lane, a hard cap per account),
//! taken after the cluster's lock so a waiting cluster never holds one. It alone records
//! outcomes (and how late a periodic precheck started against its slot) in the state, and
//! decides the back-off after a 429 that the cluster's task and fresh prechecks both wait out.
//! What follows a precheck is elsewhere: the `getClusterStatus` read in `diagnosis`, the log
//! lines in `report`. How prechecks run (what asks NCP, the timeout, the interval, the
//! diagnosis policy) is one [`Settings`] value, swapped whole when the plan or the clients
//! change. What asks NCP is a [`Prechecker`]: the real clients, or a fake in tests.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::budget::{Admission, Budgets, LaneKind, Lanes};
use super::diagnosis::StatusRead;
use super::fresh::TokenBucket;
use super::report::{self, SkewWarning};
use super::slot::backoff;
use crate::model::Cluster;
use crate::ncp::client::Clients;
use crate::ncp::cluster_status::{Diagnosis, cluster_status};
use crate::ncp::precheck::{Precheck, precheck};
use crate::outcome::Outcome;
use crate::plan::Schedule;
use crate::state::State;

/// Something that can precheck a cluster and read its status (the real clients, or a fake in
/// tests).
pub(crate) trait Prechecker: Send + Sync + std::fmt::Debug + 'static {
    /// One precheck; never fails, every failure is an `Outcome`.
    fn precheck(&self, cluster: &Arc<Cluster>) -> impl Future<Output = Precheck> + Send;
    /// One `getClusterStatus`; `Err` is the outcome of a call without a usable answer.
    fn cluster_status(
        &self,
        cluster: &Arc<Cluster>,
    ) -> impl Future<Output = Result<Diagnosis, Outcome>> + Send;
}

impl Prechecker for Clients {
    async fn precheck(&self, cluster: &Arc<Cluster>) -> Precheck {
        precheck(self, cluster).await
    }
    async fn cluster_status(&self, cluster: &Arc<Cluster>) -> Result<Diagnosis, Outcome> {
        cluster_status(self, cluster).await
    }
}

/// How prechecks run: what a plan or a reload changes, one value swapped whole (a precheck
/// reads it once).
#[derive(Debug)]
pub(super) struct Settings<P> {
    /// What asks NCP (a reload brings new clients).
    pub(super) prechecker: Arc<P>,
    /// The timeout (a precheck never holds an answering permit longer), the interval (the unit
    /// of the back-off after a 429 without `Retry-After`) and when to read `getClusterStatus`.
    pub(super) schedule: Schedule,
}

/// Runs prechecks: see the module header. Its cluster set follows the scheduler's
/// [`Plan`](crate::plan::Plan).
#[derive(Debug)]
pub(crate) struct Runner<P> {
    /// How prechecks run; swapped whole.
    settings: RwLock<Arc<Settings<P>>>,
    /// Where results go.
    pub(super) state: Arc<State>,
    /// Caps prechecks in flight, per account and gateway and lane.
    budgets: Budgets,
    /// One flight record per cluster, by name.
    flights: RwLock<HashMap<String, Arc<Flight>>>,
    /// Every fresh precheck, across all clusters, draws a token from here.
    pub(super) fresh_tokens: std::sync::Mutex<TokenBucket>,
    /// When the clock-skew warning was last logged.
    skew_warning: SkewWarning,
    /// The wall clock slots are anchored to (`SystemTime::now`; tests pin it).
    pub(super) wall_clock: fn() -> SystemTime,
    /// Log each result and the clock-skew warning (off for `check`, which reports them itself).
    pub(super) logs: bool,
}

/// One cluster's single-flight record.
#[derive(Debug)]
pub(super) struct Flight {
    /// The cluster, as planned.
    pub(super) cluster: Arc<Cluster>,
    /// Held for the whole precheck, periodic or fresh; guards the timestamps below.
    pub(super) guard: Arc<Mutex<FlightTimes>>,
    /// The budget its prechecks draw from (its account at its gateway), found once.
    pub(super) lanes: Arc<Lanes>,
}

/// When a cluster's prechecks last ran, and which lane the next one waits in.
#[derive(Debug, Default)]
pub(super) struct FlightTimes {
    /// The lane the next precheck waits in: suspect after a timeout or a refused connection,
    /// answering again after an answer.
    pub(super) lane: LaneKind,
    /// The precheck that last asked for `getClusterStatus` (cleared when the diagnosis goes).
    pub(super) last_status: Option<StatusRead>,
    /// When the last precheck of this cluster (periodic or fresh) finished.
    pub(super) last_finished: Option<Instant>,
    /// When the last fresh (gate-triggered) precheck started, for `gate.min_fresh_interval`.
    pub(super) last_fresh_started: Option<Instant>,
    /// 429s in a row, for the back-off without `Retry-After`.
    rate_limited_streak: u32,
    /// After a 429: no precheck of this cluster, periodic or fresh, before this instant.
    pub(super) rate_limited_until: Option<Instant>,
}

impl FlightTimes {
    /// Notes a finished precheck. After a 429 the cluster waits for `Retry-After` (or
    /// `interval · 2^n` without one) before any precheck, periodic or fresh; any other outcome
    /// ends the back-off. Returns the back-off it set. Only `check`, a one-shot command the
    /// user runs on purpose, is not held (its `--wait` honours `Retry-After` itself).
    fn finished(&mut self, p: &Precheck, interval: Duration, now: Instant) -> Option<Duration> {
        self.last_finished = Some(now);
        self.lane = LaneKind::after(&p.outcome);
        if !p.outcome.is_rate_limited() {
            self.rate_limited_streak = 0;
            self.rate_limited_until = None;
            return None;
        }
        self.rate_limited_streak = self.rate_limited_streak.saturating_add(1);
        let wait = backoff(p.meta.retry_after, interval, self.rate_limited_streak);
        self.rate_limited_until = Some(now + wait);
        Some(wait)
    }
}

impl<P: Prechecker> Runner<P> {
    /// A runner for `clusters` (which `state` must already hold), recording into `state`.
    pub(crate) fn new(
        clusters: Vec<Arc<Cluster>>,
        prechecker: P,
        state: Arc<State>,
        concurrency: usize,
    ) -> Self {
        let schedule = Schedule {
            interval: crate::config::DEFAULT_INTERVAL,
            concurrency,
            timeout: crate::config::DEFAULT_TIMEOUT,
            diagnose_every_round: false,
        };
        let prechecker = Arc::new(prechecker);
        let runner = Self {
            settings: RwLock::new(Arc::new(Settings {
                prechecker,
                schedule,
            })),
            state,
            budgets: Budgets::new(concurrency),
            flights: RwLock::default(),
            fresh_tokens: std::sync::Mutex::default(),
            skew_warning: SkewWarning::new(),
            wall_clock: SystemTime::now,
            logs: true,
        };
        runner.apply(&clusters);
        runner
    }

    /// The same runner without its own log lines, for a caller that reports every result.
    pub(crate) fn without_logs(mut self) -> Self {
        self.logs = false;
        self
    }

    /// The same runner with slots anchored to `wall_clock` instead of the system's (tests).
    #[cfg(test)]
    pub(crate) fn with_wall_clock(mut self, wall_clock: fn() -> SystemTime) -> Self {
        self.wall_clock = wall_clock;
        self
    }

    /// Where the runner records.
    pub(crate) fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// The settings now in force.
    pub(super) fn settings(&self) -> Arc<Settings<P>> {
        crate::lock::read(&self.settings).clone()
    }

    /// Follows a new schedule: lane sizes from `concurrency`, the timeout, the interval and the
    /// diagnosis policy. Shrinking lanes takes effect as running prechecks finish.
    pub(super) fn set_schedule(&self, schedule: &Schedule) {
        self.budgets.set_concurrency(schedule.concurrency);
        let mut settings = crate::lock::write(&self.settings);
        *settings = Arc::new(Settings {
            prechecker: settings.prechecker.clone(),
            schedule: *schedule,
        });
    }

    /// Asks NCP through `prechecker` from now on (a reload's new clients); calls in flight
    /// finish with the old one.
    pub(crate) fn set_prechecker(&self, prechecker: Arc<P>) {
        let mut settings = crate::lock::write(&self.settings);
        *settings = Arc::new(Settings {
            prechecker,
            schedule: settings.schedule,
        });
    }

    /// Follows a plan's cluster set (the state already holds it: the inventory synced it).
    /// Returns the new flights and the names removed; kept clusters keep their flight and rhythm.
    pub(super) fn apply(&self, clusters: &[Arc<Cluster>]) -> (Vec<Arc<Flight>>, Vec<String>) {
        let mut flights = crate::lock::write(&self.flights);
        let removed = crate::plan::dropped(flights.values().map(|f| &*f.cluster), clusters);
        for name in &removed {
            flights.remove(name);
        }
        let mut added = Vec::new();
        for c in clusters {
            if !flights.contains_key(&c.name) {
                let flight = Flight::new(c.clone(), &self.budgets);
                flights.insert(c.name.clone(), flight.clone());
                added.push(flight);
            }
        }
        (added, removed)
    }

    /// Every cluster's flight record.
    pub(super) fn flights(&self) -> Vec<Arc<Flight>> {
        let flights = crate::lock::read(&self.flights);
        flights.values().cloned().collect()
    }

    /// One cluster's flight record, by name.
    pub(super) fn flight(&self, name: &str) -> Option<Arc<Flight>> {
        let flights = crate::lock::read(&self.flights);
        flights.get(name).cloned()
    }

    /// Prechecks one cluster now, waiting for its lock and a permit like a periodic precheck,
    /// and records the result (`check` runs every precheck this way). `None` for a cluster the
    /// runner does not know.
    pub(crate) async fn precheck_now(&self, name: &str) -> Option<Precheck> {
        let flight = self.flight(name)?;
        let mut times = flight.guard.lock().await;
        let admission = flight.lanes.admit(times.lane).await?;
        Some(
            self.precheck_locked(&flight, &mut times, admission, None)
                .await,
        )
    }

    /// Runs one precheck now; the caller holds the cluster's lock (`times`) and its admission.
    /// `slot` is when a periodic precheck was due (how late it starts is recorded). Records and
    /// logs the result, then reads the cluster's status when `diagnosis` says so.
    pub(super) async fn precheck_locked(
        &self,
        flight: &Flight,
        times: &mut FlightTimes,
        mut admission: Admission,
        slot: Option<Instant>,
    ) -> Precheck {
        let settings = self.settings();
        let started = Instant::now();
        // Boxed: the HTTP call's state is large and only alive during the call, while a cluster's
        // task lives (asleep) for the whole run; inline, every cluster's sleeping task would carry it.
        let call = Box::pin(settings.prechecker.precheck(&flight.cluster));
        let precheck = patiently(&mut admission, settings.schedule.timeout, call).await;
        let sent = !matches!(precheck.outcome, Outcome::NoCredentials { .. });
        if sent && !precheck.outcome.is_suspect() {
            // An answer (any answer): how quickly this gateway answers.
            admission.latency.observe(precheck.meta.latency);
        }
        drop(admission);
        let now = Instant::now();
        let hold = times.finished(&precheck, settings.schedule.interval, now);
        if self.logs {
            report::precheck(&flight.cluster, &precheck);
            if let Some(wait) = hold {
                report::backing_off(&flight.cluster, wait);
            }
            self.skew_warning.check(&precheck.meta);
        }
        let lag = slot.map(|due| started.saturating_duration_since(due));
        self.state
            .record_run(&flight.cluster.name, &precheck, now, SystemTime::now(), lag);
        let due = slot.unwrap_or(started);
        self.diagnose(flight, times, &settings, &precheck.outcome, due)
            .await;
        precheck
    }
}

impl Flight {
    fn new(cluster: Arc<Cluster>, budgets: &Budgets) -> Arc<Self> {
        let lanes = budgets.lanes(&cluster);
        Arc::new(Self {
            cluster,
            guard: Arc::default(),
            lanes,
        })
    }
}

/// Awaits `call` with `admission` held. In the answering lane, a call that has had no answer
/// within the gateway's patience gives the lane back and goes on under the hard cap, so a slow
/// gateway never keeps answering clusters waiting.
pub(super) async fn patiently<T>(
    admission: &mut Admission,
    timeout: Duration,
    mut call: Pin<Box<impl Future<Output = T>>>,
) -> T {
    if admission.kind != LaneKind::Answering {
        return call.await;
    }
    let patience = admission.latency.patience(timeout);
    tokio::select! {
        answer = &mut call => answer,
        () = tokio::time::sleep(patience) => {
            admission.leave_lane();
            call.await
        }
    }
}
