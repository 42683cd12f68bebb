//! One cluster's task: wait for its slot, precheck through the runner, and wait out the back-off
//! the runner set after a 429.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::runner::{Flight, Prechecker, Runner};
use super::slot::next_slot;

/// One cluster's periodic prechecks: on its slot every interval, backed off after a 429.
pub(super) struct ClusterTask<P> {
    /// The cluster's single-flight record in the runner.
    pub(super) flight: Arc<Flight>,
    /// Its slot within the interval.
    pub(super) phase: Duration,
    /// Where prechecks run.
    pub(super) runner: Arc<Runner<P>>,
    /// Time between two slots.
    pub(super) interval: Duration,
    /// The instant slots are counted from (see [`wall_anchor`](super::slot::wall_anchor)).
    pub(super) anchor: Instant,
    /// Wait for the first slot instead of prechecking at once (a restarted task whose cluster
    /// already has a result).
    pub(super) wait_first: bool,
}

impl<P: Prechecker> ClusterTask<P> {
    pub(super) async fn run(self, mut shutdown: watch::Receiver<bool>) {
        // When the next precheck is due: at once, or on the first slot.
        let mut due = Instant::now();
        if self.wait_first {
            due = next_slot(self.anchor, self.phase, self.interval, due);
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = shutdown.changed() => return,
            }
        }
        while !*shutdown.borrow() {
            // Waiting for the cluster's lock or its budget ends at shutdown...
            let admitted = async {
                let times = self.flight.guard.lock().await;
                Some((self.flight.lanes.admit(times.lane()).await?, times))
            };
            let admitted = tokio::select! {
                a = admitted => a,
                _ = shutdown.changed() => None,
            };
            let Some((admission, mut times)) = admitted else {
                return;
            };
            // ...but a precheck in flight is not cancelled: it ends on its own, within the timeout.
            // Boxed: the precheck's state (the call, its patience timer, a status read) is large
            // and alive only during the call, while the task lives asleep for the whole run.
            Box::pin(
                self.runner
                    .precheck_locked(&self.flight, &mut times, admission, Some(due)),
            )
            .await;
            // The runner decides the back-off after a 429 (fresh prechecks wait it out too).
            due = next_slot(self.anchor, self.phase, self.interval, Instant::now());
            due = times.rate_limited_until.map_or(due, |until| due.max(until));
            drop(times);
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
