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

pub mod budget;
mod diagnosis;
mod fresh;
mod report;
pub mod runner;
pub mod slot;
mod task;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

pub use self::fresh::{FreshFuture, FreshPolicy, FreshPrecheck, FreshSource};
use self::runner::Flight;
pub use self::runner::{Prechecker, Runner};
use self::slot::{phase, wall_anchor};
use self::task::ClusterTask;
use crate::model::Cluster;
use crate::plan::{Plan, Schedule};

/// Cluster tasks spawned at start between two yields to the runtime.
const SPAWN_BATCH: usize = 500;

/// The schedule running on its own thread: see [`spawn`].
#[derive(Debug)]
pub struct Collector {
    done: oneshot::Receiver<()>,
}

/// The collector thread ended without finishing [`run_plan`] (something in it panicked).
#[derive(Debug, thiserror::Error)]
#[error("the collector thread stopped before its prechecks had ended (it panicked; see the log)")]
pub struct CollectorLost;

impl Collector {
    /// Waits until [`run_plan`] has returned: after `shutdown`, once in-flight prechecks ended.
    pub async fn join(self) -> Result<(), CollectorLost> {
        self.done.await.map_err(|_| CollectorLost)
    }
}

/// Starts [`run_plan`] on a thread of its own ("collector"), with a single-threaded tokio
/// runtime. Prechecks are many small waits (a timer, then one answer at a time), and on a
/// multi-threaded runtime each answer also woke a second worker to steal the work: one thread
/// that owns every cluster task and its connections wakes once per answer, about a quarter less
/// CPU per precheck (BENCHMARKS.md, "The collector thread"). The server keeps the multi-threaded
/// runtime, so scrapes never wait behind the schedule; the gate's fresh prechecks run on the
/// caller's runtime through the same clients and budgets.
pub fn spawn<P: Prechecker>(
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
pub async fn run<P: Prechecker>(
    runner: Arc<Runner<P>>,
    schedule: Schedule,
    shutdown: watch::Receiver<bool>,
) {
    let clusters: Vec<Arc<Cluster>> = runner.flights().iter().map(|f| f.cluster.clone()).collect();
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
    let mut tasks = JoinSet::new();
    let mut handles: HashMap<String, AbortHandle> = HashMap::new();
    let first = plan.borrow_and_update().clone();
    let mut schedule = first.schedule;
    let anchor = |interval| wall_anchor(Instant::now(), (runner.wall_clock)(), interval);
    let mut slots_from = anchor(schedule.interval);
    runner.set_schedule(&schedule);
    runner.apply(&first.clusters);
    let task_shutdown = shutdown.clone();
    let spawn = |tasks: &mut JoinSet<()>,
                 flight: Arc<Flight>,
                 schedule: Schedule,
                 anchor: Instant,
                 wait_first: bool| {
        let task = ClusterTask {
            phase: phase(&flight.cluster.name, schedule.interval),
            flight,
            runner: runner.clone(),
            interval: schedule.interval,
            anchor,
            wait_first,
        };
        tasks.spawn(task.run(task_shutdown.clone()))
    };
    for (i, flight) in runner.flights().into_iter().enumerate() {
        if i % SPAWN_BATCH == SPAWN_BATCH - 1 {
            // 10,000 clusters take milliseconds to spawn: let the server answer meanwhile.
            tokio::task::yield_now().await;
        }
        handles.insert(
            flight.cluster.name.clone(),
            spawn(&mut tasks, flight, schedule, slots_from, false),
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
                runner.set_schedule(&next.schedule);
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
                    slots_from = anchor(next.schedule.interval);
                    for flight in runner.flights() {
                        let checked = runner.state.get(&flight.cluster.name).is_some_and(|s| s.last.is_some());
                        handles.insert(flight.cluster.name.clone(), spawn(&mut tasks, flight, next.schedule, slots_from, checked));
                    }
                } else {
                    for flight in added {
                        handles.insert(flight.cluster.name.clone(), spawn(&mut tasks, flight, next.schedule, slots_from, false));
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

#[cfg(test)]
mod tests;
