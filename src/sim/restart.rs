//! The simulator's maintenance model: `rollingRestart`, `rollingRestartProgressCheck`, and the
//! restart state of each cluster that the precheck, `getClusterStatus` and the listing follow.
//!
//! A restart is accepted at an instant (tokio's clock, so paused-time tests can step through
//! it). For its plan's `start_delay` nothing shows but the listing's `serverStatus` `changing`
//! (NCP may start a little after it accepts); then each of the cluster's brokers in turn is down
//! for `step`: the precheck answers not ready, the status shows that broker `orange`. A `stuck`
//! restart stays on the first broker forever. Afterwards the cluster answers as its behaviour
//! says again. Only CDSS answers change: a cluster whose behaviour fails keeps failing.
//!
//! Refusals (NCP does not document them; **the simulator's choice**): `rollingRestart` for a
//! cluster whose behaviour does not answer ready, or that is already restarting, gets HTTP 200,
//! code [`RESTART_REFUSED_CODE`], `result` null, and a message that says why. An unknown number
//! gets code 3, as the precheck does. The restart command is started only here (and by
//! `SimGateway::start_restart`, a restart started from NCP's console); this module owns the
//! restart state, the others only read it.

use std::time::Duration;

use hyper::StatusCode;
use serde_json::Value;
use tokio::time::Instant;

use super::answer::{Dropped, Resp, cdss, respond};
use super::status::{BROKERS, answers};
use super::{Behaviour, Shared, lock};

/// The `code` of a refused `rollingRestart` (the simulator's choice: NCP documents none).
pub const RESTART_REFUSED_CODE: i64 = 10;

/// How a cluster's next restart goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPlan {
    /// From acceptance until the first broker goes down (all green meanwhile).
    pub start_delay: Duration,
    /// How long each broker is down.
    pub step: Duration,
    /// Stays on the first broker forever (a restart that never ends).
    pub stuck: bool,
    /// `rollingRestart` starts the restart, then closes the connection without an answer.
    pub lose_answer: bool,
}

impl Default for RestartPlan {
    fn default() -> Self {
        Self {
            start_delay: Duration::ZERO,
            step: Duration::from_secs(2),
            stuck: false,
            lose_answer: false,
        }
    }
}

/// One accepted restart.
#[derive(Clone, Copy, Debug)]
pub(super) struct Restart {
    accepted: Instant,
    plan: RestartPlan,
    /// When set, the restart starts again this long after each end (the demo's cluster that
    /// NCP keeps changing).
    again_after: Option<Duration>,
}

/// Where a cluster is in its restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// No restart runs (none accepted, it ended, or a loop's healthy pause).
    Idle,
    /// Accepted, no broker down yet.
    Starting,
    /// This broker (1-based) is down.
    Down(u64),
}

impl Restart {
    /// The phase at `now`.
    fn phase(&self, now: Instant) -> Phase {
        let plan = self.plan;
        let mut elapsed = now.saturating_duration_since(self.accepted);
        let running = plan.start_delay + plan.step * BROKERS as u32;
        if let Some(pause) = self.again_after.filter(|_| !plan.stuck) {
            let cycle = (running + pause).as_nanos().max(1);
            elapsed = Duration::from_nanos((elapsed.as_nanos() % cycle) as u64);
        }
        if elapsed < plan.start_delay {
            return Phase::Starting;
        }
        if plan.stuck {
            return Phase::Down(1);
        }
        let into = (elapsed - plan.start_delay).as_nanos();
        let broker = into / plan.step.as_nanos().max(1) + 1;
        if broker > u128::from(BROKERS) {
            Phase::Idle
        } else {
            Phase::Down(broker as u64)
        }
    }
}

/// Why a restart was not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    Unknown,
    NotReady,
    Running,
}

/// The restart phase of cluster `no` now.
pub(super) fn phase(shared: &Shared, no: u64) -> Phase {
    lock(&shared.restarts)
        .get(&no)
        .map_or(Phase::Idle, |r| r.phase(Instant::now()))
}

/// Starts a restart of `no` with its plan, unless refused; `again_after` makes it loop.
pub(super) fn begin(
    shared: &Shared,
    no: u64,
    again_after: Option<Duration>,
) -> Result<RestartPlan, Refusal> {
    let now = Instant::now();
    let mut restarts = lock(&shared.restarts);
    let behaviour = lock(&shared.behaviours).get(&no).cloned();
    let behaviour = behaviour.ok_or(Refusal::Unknown)?;
    if restarts
        .get(&no)
        .is_some_and(|r| r.phase(now) != Phase::Idle)
    {
        return Err(Refusal::Running);
    }
    if answers(&behaviour) != Some(true) {
        return Err(Refusal::NotReady);
    }
    let plan = lock(&shared.restart_plans)
        .get(&no)
        .copied()
        .unwrap_or_default();
    let restart = Restart {
        accepted: now,
        plan,
        again_after,
    };
    restarts.insert(no, restart);
    Ok(plan)
}

/// An unknown number's answer: code 3, HTTP 200 for even numbers and 400 for odd ones.
pub(super) fn unknown(no: u64) -> Behaviour {
    Behaviour::UnknownNumber(if no % 2 == 0 { 200 } else { 400 })
}

/// `rollingRestart` for `no` (request number `n`).
pub(super) async fn rolling_restart(shared: &Shared, no: u64, n: u64) -> Result<Resp, Dropped> {
    *lock(&shared.restart_calls).entry(no).or_default() += 1;
    let why = match begin(shared, no, None) {
        Ok(plan) if plan.lose_answer => return Err(Dropped),
        Ok(_) => return Ok(cdss(StatusCode::OK, 0, "SUCCESS", true.into(), n)),
        Err(Refusal::Unknown) => return respond(unknown(no), n).await,
        Err(Refusal::NotReady) => "the cluster is not ready for a rolling restart",
        Err(Refusal::Running) => "a change of the cluster is already in progress",
    };
    Ok(cdss(
        StatusCode::OK,
        RESTART_REFUSED_CODE,
        why,
        Value::Null,
        n,
    ))
}

/// `behaviour` with its CDSS answer made "not ready" (delays and failures kept).
pub(super) fn not_ready(behaviour: Behaviour) -> Behaviour {
    match behaviour {
        Behaviour::Ready => Behaviour::NotReady,
        Behaviour::Slow(d, inner) => Behaviour::Slow(d, Box::new(not_ready(*inner))),
        Behaviour::Jittered(a, b, inner) => Behaviour::Jittered(a, b, Box::new(not_ready(*inner))),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn phases_follow_the_plan() {
        let plan = RestartPlan {
            start_delay: Duration::from_secs(3),
            step: Duration::from_secs(5),
            ..RestartPlan::default()
        };
        let t0 = Instant::now();
        let at = |r: &Restart, s: u64| r.phase(t0 + Duration::from_millis(s));
        let once = Restart {
            accepted: t0,
            plan,
            again_after: None,
        };
        assert_eq!(at(&once, 0), Phase::Starting);
        assert_eq!(at(&once, 2_999), Phase::Starting);
        assert_eq!(at(&once, 3_000), Phase::Down(1));
        assert_eq!(at(&once, 8_000), Phase::Down(2));
        assert_eq!(at(&once, 17_999), Phase::Down(3));
        assert_eq!(at(&once, 18_000), Phase::Idle);
        assert_eq!(at(&once, 1_000_000), Phase::Idle);
        let looping = Restart {
            again_after: Some(Duration::from_secs(60)),
            ..once
        };
        assert_eq!(at(&looping, 18_000), Phase::Idle);
        assert_eq!(at(&looping, 77_999), Phase::Idle);
        assert_eq!(at(&looping, 78_000), Phase::Starting);
        assert_eq!(at(&looping, 81_000), Phase::Down(1));
        let stuck = Restart {
            plan: RestartPlan {
                stuck: true,
                ..plan
            },
            ..looping
        };
        assert_eq!(at(&stuck, 1_000), Phase::Starting);
        assert_eq!(at(&stuck, 3_000), Phase::Down(1));
        assert_eq!(at(&stuck, 10_000_000), Phase::Down(1));
    }

    #[test]
    fn only_cdss_answers_turn_not_ready() {
        let slow = Behaviour::Slow(Duration::from_secs(1), Box::new(Behaviour::Ready));
        assert_eq!(
            not_ready(slow),
            Behaviour::Slow(Duration::from_secs(1), Box::new(Behaviour::NotReady))
        );
        assert_eq!(not_ready(Behaviour::Http500Html), Behaviour::Http500Html);
    }
}
