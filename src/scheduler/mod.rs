//! When each cluster is prechecked: spread, bounded, backed off, following the plan.
//!
//! - [`slot`]: slot math (a cluster's phase, its next slot, the back-off), pure;
//! - [`budget`]: the in-flight budgets (per account and gateway, an answering and a suspect
//!   lane, a hard cap per account) and how patient to be with each gateway;
//! - [`runner`]: the one place a precheck starts (single flight, the in-flight cap, fresh
//!   prechecks), and the only writer of outcomes into the state;
//! - [`task`]: one cluster's loop;
//! - here: [`run_plan`], which follows the inventory's plans: clusters added start at once,
//!   removed ones stop at once, kept ones keep their rhythm; and [`spawn`], which runs it on a
//!   thread of its own.
//!
//! Every cluster is prechecked once at start, then on its own slot every `interval`. A hanging
//! cluster only holds its own permit, until the timeout. After a 429 the cluster waits for
//! `Retry-After` (or an exponential back-off) before its next slot. Time is tokio's, so tests
//! drive all of this with a paused clock (and pin the wall clock slots are anchored to).

pub(crate) mod budget;
mod diagnosis;
mod fresh;
mod report;
pub(crate) mod runner;
pub mod slot;
mod task;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

pub(crate) use self::fresh::{FreshPolicy, FreshPrecheck, FreshSource};
use self::runner::Flight;
pub(crate) use self::runner::{Prechecker, Runner};
use self::slot::wall_anchor;
use crate::plan::Plan;

/// Cluster tasks spawned at start between two yields to the runtime.
const SPAWN_BATCH: usize = 500;

/// The schedule running on its own thread: see [`spawn`].
#[derive(Debug)]
pub(crate) struct Collector {
    done: oneshot::Receiver<()>,
}

/// The collector thread ended without finishing [`run_plan`] (something in it panicked).
#[derive(Debug, thiserror::Error)]
#[error("the collector thread stopped before its prechecks had ended (it panicked; see the log)")]
pub(crate) struct CollectorLost;

impl Collector {
    /// Waits until [`run_plan`] has returned: after `shutdown`, once in-flight prechecks ended.
    pub(crate) async fn join(self) -> Result<(), CollectorLost> {
        self.done.await.map_err(|_| CollectorLost)
    }
}

/// Starts [`run_plan`] on a thread of its own ("collector"), with a single-threaded tokio
/// runtime. Prechecks are many small waits (a timer, then one answer at a time), and on a
/// multi-threaded runtime each answer also woke a second worker to steal the work: one thread
/// that owns every cluster task and its connections wakes once per answer, which costs less CPU
/// per precheck (figures: BENCHMARKS.md, "The collector thread"). The server keeps the multi-threaded
/// runtime, so scrapes never wait behind the schedule; the gate's fresh prechecks run on the
/// caller's runtime through the same clients and budgets.
pub(crate) fn spawn<P: Prechecker>(
    runner: Arc<Runner<P>>,
    plan: watch::Receiver<Plan>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<Collector> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (tx, done) = oneshot::channel();
    std::thread::Builder::new()
        .name("collector".into())
        .spawn(move || {
            runtime.block_on(run_plan(runner, plan, shutdown));
            // Idle pooled connections' tasks end with the runtime, before `join` returns.
            drop(runtime);
            let _ = tx.send(());
        })?;
    Ok(Collector { done })
}

/// Runs a fixed schedule for the runner's clusters until `shutdown` turns true.
#[cfg(test)]
pub(crate) async fn run<P: Prechecker>(
    runner: Arc<Runner<P>>,
    schedule: crate::plan::Schedule,
    shutdown: watch::Receiver<bool>,
) {
    let clusters: Vec<Arc<crate::model::Cluster>> =
        runner.flights().iter().map(|f| f.cluster.clone()).collect();
    let (_keep, plan) = watch::channel(Plan { clusters, schedule });
    run_plan(runner, plan, shutdown).await;
}

/// Runs the schedule, following every new [`Plan`] (clusters added start at once, removed ones
/// stop at once, kept ones keep their rhythm), until `shutdown` turns true; then returns once
/// in-flight prechecks have ended.
pub(crate) async fn run_plan<P: Prechecker>(
    runner: Arc<Runner<P>>,
    mut plan: watch::Receiver<Plan>,
    mut shutdown: watch::Receiver<bool>,
) {
    let first = plan.borrow_and_update().clone();
    runner.set_schedule(&first.schedule);
    runner.apply(&first.clusters);
    let mut tasks = Tasks {
        runner,
        set: JoinSet::new(),
        handles: HashMap::new(),
        interval: first.schedule.interval,
        slots_from: Instant::now(),
        shutdown: shutdown.clone(),
    };
    tasks.restart_all(true).await;
    loop {
        tokio::select! {
            // Once the inventory is gone, the plan stays as it is.
            Ok(()) = plan.changed() => {
                let next = plan.borrow_and_update().clone();
                tasks.follow(&next).await;
            }
            Some(joined) = tasks.set.join_next() => report_abnormal(joined),
            _ = shutdown.changed() => break,
        }
    }
    while let Some(joined) = tasks.set.join_next().await {
        report_abnormal(joined);
    }
}

/// Every cluster's task, by name, and what they were started with.
struct Tasks<P> {
    runner: Arc<Runner<P>>,
    set: JoinSet<()>,
    handles: HashMap<String, AbortHandle>,
    interval: Duration,
    /// The instant slots are counted from (moves when the interval changes).
    slots_from: Instant,
    shutdown: watch::Receiver<bool>,
}

impl<P: Prechecker> Tasks<P> {
    fn spawn(&mut self, flight: Arc<Flight>, wait_first: bool) {
        let (name, slots) = (
            flight.cluster.name.clone(),
            (self.slots_from, self.interval),
        );
        let task = task::run(
            self.runner.clone(),
            flight,
            slots,
            wait_first,
            self.shutdown.clone(),
        );
        self.handles.insert(name, self.set.spawn(task));
    }

    /// Follows a new plan: its schedule, and its cluster set.
    async fn follow(&mut self, next: &Plan) {
        self.runner.set_schedule(&next.schedule);
        let (added, removed) = self.runner.apply(&next.clusters);
        for name in &removed {
            if let Some(h) = self.handles.remove(name) {
                h.abort();
            }
        }
        if next.schedule.interval != self.interval {
            self.interval = next.schedule.interval;
            self.restart_all(false).await;
        } else {
            for flight in added {
                self.spawn(flight, false);
            }
        }
        if !removed.is_empty() || next.clusters.len() != self.handles.len() {
            tracing::info!(
                clusters = self.handles.len(),
                removed = removed.len(),
                "cluster set updated"
            );
        }
    }

    /// Starts every cluster's task with slots anchored anew: at start each prechecks at once; a
    /// new interval moves every slot, so each restarted task waits for its next one (clusters
    /// never checked yet go at once).
    async fn restart_all(&mut self, at_start: bool) {
        for (_, h) in self.handles.drain() {
            h.abort();
        }
        let wall = (self.runner.wall_clock)();
        self.slots_from = wall_anchor(Instant::now(), wall, self.interval);
        for (i, flight) in self.runner.flights().into_iter().enumerate() {
            if i % SPAWN_BATCH == SPAWN_BATCH - 1 {
                // 10,000 clusters take milliseconds to spawn: let the server answer meanwhile.
                tokio::task::yield_now().await;
            }
            let state = || self.runner.state.get(&flight.cluster.name);
            let checked = !at_start && state().is_some_and(|s| s.last.is_some());
            self.spawn(flight, checked);
        }
    }
}

/// Logs a cluster task that ended other than by being stopped (it panicked).
fn report_abnormal(joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined
        && !e.is_cancelled()
    {
        tracing::error!(error = %e, "a cluster's precheck task ended abnormally");
    }
}

#[cfg(test)]
mod tests;
