//! One cluster's task: wait for its slot, precheck through the runner, and wait out the back-off
//! the runner set after a 429.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::runner::{Flight, Prechecker, Runner};
use super::slot::{next_slot, phase};

/// One cluster's periodic prechecks through `runner`: on its slot every `interval`, counted from
/// `anchor` (see [`wall_anchor`](super::slot::wall_anchor)), backed off after a 429; the first at
/// once, or on the first slot when `wait_first` (a restarted task whose cluster already has a
/// result). Ends at `shutdown`.
pub(super) async fn run<P: Prechecker>(
    runner: Arc<Runner<P>>,
    flight: Arc<Flight>,
    (anchor, interval): (Instant, Duration),
    wait_first: bool,
    mut shutdown: watch::Receiver<bool>,
) {
    let phase = phase(&flight.cluster.name, interval);
    // When the next precheck is due: at once, or on the first slot.
    let mut due = Instant::now();
    if wait_first {
        due = next_slot(anchor, phase, interval, due);
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = shutdown.changed() => return,
        }
    }
    while !*shutdown.borrow() {
        // Waiting for the cluster's lock or its budget ends at shutdown...
        let admitted = async {
            let times = flight.guard.lock().await;
            Some((flight.lanes.admit(times.lane).await?, times))
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
        Box::pin(runner.precheck_locked(&flight, &mut times, admission, Some(due))).await;
        // The runner decides the back-off after a 429 (fresh prechecks wait it out too).
        due = next_slot(anchor, phase, interval, Instant::now());
        due = times.rate_limited_until.map_or(due, |until| due.max(until));
        drop(times);
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = shutdown.changed() => return,
        }
    }
}
