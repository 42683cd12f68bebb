//! When the runner reads `getClusterStatus` after a precheck, and what it does with the answer.
//!
//! A read follows a precheck when it helps (CDSS said no, or answered with an error other than
//! "no such cluster": `Outcome::worth_diagnosing`), or after every precheck that got an answer
//! when `diagnosis.every_round` asks for it; at most once per interval per cluster, within the
//! cluster's budget like the precheck. Reads are spaced by the prechecks that asked for them
//! (their slot, or their start for fresh and `check` prechecks), so every scheduled round may
//! read, and a fresh precheck between two rounds does not read again. A verdict that changed
//! since the last read is read at once, so a diagnosis never describes the other verdict. A
//! failed read leaves the precheck's result and the last diagnosis as they are (the call is
//! counted with the others). The diagnosis goes when the cluster is ready again (unless it is
//! read every round) and when CDSS says there is no such cluster.

use std::time::SystemTime;

use tokio::time::Instant;

use super::runner::{Flight, FlightTimes, Prechecker, Runner, Settings, patiently};
use crate::outcome::Outcome;
use crate::plan::Schedule;

/// The precheck that led to a `getClusterStatus` read.
#[derive(Clone, Copy, Debug)]
pub(super) struct StatusRead {
    /// When it was due (its slot) or started.
    due: Instant,
    /// Whether it said ready.
    ready: bool,
}

/// What follows a precheck.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Nothing: no read wanted, or one was made recently for the same verdict.
    Nothing,
    /// The cluster's diagnosis goes (ready again, or no such cluster).
    Forget,
    /// Read `getClusterStatus` now.
    Read,
}

/// Decides what follows a precheck that ended with `outcome` and was due at `due`, given the
/// last read; notes a read in `last`.
fn next(policy: &Schedule, last: &mut Option<StatusRead>, outcome: &Outcome, due: Instant) -> Next {
    let answered = outcome.failure_reason().is_none();
    let ready = outcome.is_ready();
    if !(outcome.worth_diagnosing() || (policy.diagnose_every_round && answered)) {
        // Only a cluster that was read can have a diagnosis, so a healthy cluster's precheck
        // costs no lookup.
        let gone = outcome.is_no_such_cluster() || (ready && !policy.diagnose_every_round);
        return if gone && last.take().is_some() {
            Next::Forget
        } else {
            Next::Nothing
        };
    }
    if let Some(l) = last
        && l.ready == ready
        && due.saturating_duration_since(l.due) < policy.interval
    {
        return Next::Nothing;
    }
    *last = Some(StatusRead { due, ready });
    Next::Read
}

impl<P: Prechecker> Runner<P> {
    /// Reads `getClusterStatus` after a precheck when [`next`] says so, and records it.
    pub(super) async fn diagnose(
        &self,
        flight: &Flight,
        times: &mut FlightTimes,
        settings: &Settings<P>,
        outcome: &Outcome,
        due: Instant,
    ) {
        let name = &flight.cluster.name;
        match next(&settings.schedule, &mut times.last_status, outcome, due) {
            Next::Nothing => return,
            Next::Forget => return self.state.clear_diagnosis(name),
            Next::Read => {}
        }
        let Some(mut admission) = flight.lanes.admit(times.lane).await else {
            return;
        };
        let call = Box::pin(settings.prechecker.cluster_status(&flight.cluster));
        let read = patiently(&mut admission, settings.schedule.timeout, call).await;
        drop(admission);
        let region = flight.cluster.region;
        match read {
            Ok(diagnosis) => {
                if self.logs {
                    tracing::info!(cluster = %name, %region, "cluster status: {}", diagnosis.summary());
                }
                self.state
                    .record_diagnosis(name, diagnosis, SystemTime::now());
            }
            Err(failure) if self.logs => {
                tracing::warn!(cluster = %name, %region, verdict = failure.verdict(), "getClusterStatus failed: {}", failure.message());
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const POLICY: Schedule = Schedule {
        interval: Duration::from_secs(60),
        concurrency: 4,
        timeout: Duration::from_secs(10),
        diagnose_every_round: false,
    };

    fn api_error(code: i64) -> Outcome {
        Outcome::ApiError {
            http_status: 200,
            code,
            message: "m".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reads_failing_clusters_once_per_window_and_a_changed_verdict_at_once() {
        let t0 = Instant::now();
        let mut last = None;
        assert_eq!(next(&POLICY, &mut last, &Outcome::Ready, t0), Next::Nothing);
        assert_eq!(next(&POLICY, &mut last, &Outcome::NotReady, t0), Next::Read);
        let t1 = t0 + Duration::from_secs(59);
        assert_eq!(
            next(&POLICY, &mut last, &Outcome::NotReady, t1),
            Next::Nothing
        );
        assert_eq!(
            next(&POLICY, &mut last, &api_error(5), t1),
            Next::Nothing,
            "still a no"
        );
        let t2 = t0 + Duration::from_secs(60);
        assert_eq!(next(&POLICY, &mut last, &Outcome::NotReady, t2), Next::Read);
        assert_eq!(next(&POLICY, &mut last, &Outcome::Ready, t2), Next::Forget);
        assert_eq!(
            next(&POLICY, &mut last, &Outcome::Ready, t2),
            Next::Nothing,
            "forgotten once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_such_cluster_forgets_and_failures_without_an_answer_keep() {
        let t0 = Instant::now();
        let mut last = None;
        assert_eq!(next(&POLICY, &mut last, &Outcome::NotReady, t0), Next::Read);
        let timeout = Outcome::Timeout {
            after: Duration::from_secs(1),
        };
        assert_eq!(next(&POLICY, &mut last, &timeout, t0), Next::Nothing);
        assert!(last.is_some(), "a timeout says nothing about the nodes");
        assert_eq!(next(&POLICY, &mut last, &api_error(3), t0), Next::Forget);
        assert_eq!(next(&POLICY, &mut last, &api_error(3), t0), Next::Nothing);
    }

    #[tokio::test(start_paused = true)]
    async fn every_round_reads_answers_and_keeps_the_diagnosis_when_ready() {
        let policy = &Schedule {
            diagnose_every_round: true,
            ..POLICY
        };
        let t0 = Instant::now();
        let mut last = None;
        assert_eq!(next(policy, &mut last, &Outcome::Ready, t0), Next::Read);
        assert_eq!(next(policy, &mut last, &Outcome::Ready, t0), Next::Nothing);
        assert_eq!(
            next(policy, &mut last, &Outcome::NotReady, t0),
            Next::Read,
            "new verdict"
        );
        let no_keys = Outcome::NoCredentials {
            account: "a".into(),
        };
        assert_eq!(next(policy, &mut last, &no_keys, t0), Next::Nothing);
    }
}
