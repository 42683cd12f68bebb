//! In-flight budgets: how many prechecks may be waiting on NCP at once, and who waits for whom.
//!
//! A slow or hanging cluster must cost only its own freshness, so the budget is split where
//! failures stay together:
//! - per account and gateway (scheme, host and port): a gateway that hangs or refuses
//!   connections, or an account that is rate limited, drains only its own budget;
//! - in each, two lanes of `concurrency` permits: [`LaneKind::Answering`] for clusters whose last
//!   precheck got an answer (or that were never checked), [`LaneKind::Suspect`] for clusters
//!   whose last precheck timed out or could not connect. Hanging clusters wait for each other,
//!   never for a healthy one, and a healthy one never waits for them;
//! - a precheck in the answering lane that has no answer long after its gateway usually answers
//!   ([`Latency::patience`]: four times the recent answers' latency, at least
//!   [`SUSPECT_AFTER`], at most the timeout) gives its permit back and goes on under the
//!   account's hard cap alone, so even in the first round, before anyone knows which clusters
//!   hang, hanging requests cannot hold the answering lane. A gateway that is slow for everyone
//!   keeps `concurrency` as the cap: its answers set the patience;
//! - per account, a hard cap ([`HARD_CAP_FACTOR`] × `concurrency`) on requests in flight,
//!   whatever their lane: NCP never sees more from one account at once.
//!
//! Lanes are made on first use, kept by each cluster's flight, and resized in place when
//! `concurrency` changes. No I/O; tokio's
//! semaphores and clock, so tests run on the paused clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::model::Cluster;
use crate::outcome::Outcome;

/// Requests in flight per account, at most, as a multiple of `concurrency`.
pub(crate) const HARD_CAP_FACTOR: usize = 16;
/// The shortest patience: a few times what a healthy NCP answer takes (tens of milliseconds),
/// and short enough that a first round with many hanging clusters still fits in an interval.
pub(crate) const SUSPECT_AFTER: Duration = Duration::from_millis(250);
/// Patience is this many times the recent answers' latency.
const PATIENCE_FACTOR: u32 = 4;

/// How quickly one gateway answers, as a moving average of its answers' latency (no answer yet:
/// unknown, and a precheck keeps its permit up to the timeout).
#[derive(Debug, Default)]
pub(crate) struct Latency {
    /// Exponentially weighted mean in microseconds; 0 before the first answer.
    mean_us: std::sync::atomic::AtomicU64,
}

impl Latency {
    /// Takes an answer's latency into the mean (weight 1/8).
    pub(crate) fn observe(&self, latency: Duration) {
        use std::sync::atomic::Ordering;
        let sample = latency.as_micros().clamp(1, u128::from(u64::MAX)) as u64;
        let old = self.mean_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.mean_us.store(new.max(1), Ordering::Relaxed);
    }

    /// How long a precheck may hold an answering permit without an answer: four times the
    /// mean, at least [`SUSPECT_AFTER`], at most `timeout` (the whole call).
    pub(crate) fn patience(&self, timeout: Duration) -> Duration {
        let mean = self.mean_us.load(std::sync::atomic::Ordering::Relaxed);
        if mean == 0 {
            return timeout;
        }
        (Duration::from_micros(mean) * PATIENCE_FACTOR)
            .max(SUSPECT_AFTER)
            .min(timeout)
    }
}

/// Which lane a cluster's next precheck waits in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) enum LaneKind {
    /// The last precheck got an answer, or there was none yet.
    #[default]
    Answering,
    /// The last precheck timed out or could not connect.
    Suspect,
}

impl LaneKind {
    /// The lane after a precheck that ended with `outcome`.
    pub(crate) fn after(outcome: &Outcome) -> Self {
        if outcome.is_suspect() {
            LaneKind::Suspect
        } else {
            LaneKind::Answering
        }
    }
}

/// A semaphore of `from` permits now has `to`: it grows at once, and shrinks as permits come
/// back.
fn resize(sem: &Arc<Semaphore>, from: usize, to: usize) {
    if to > from {
        sem.add_permits(to - from);
    } else if to < from {
        let (surplus, sem) = ((from - to) as u32, sem.clone());
        tokio::spawn(async move {
            if let Ok(p) = sem.acquire_many_owned(surplus).await {
                p.forget();
            }
        });
    }
}

/// What one account's prechecks at one gateway draw from: two lanes, the account's hard cap,
/// and how quickly the gateway answers. A cluster's flight keeps its own, found once, so
/// admission takes no lock.
#[derive(Debug)]
pub(crate) struct Lanes {
    answering: Arc<Semaphore>,
    suspect: Arc<Semaphore>,
    hard_cap: Arc<Semaphore>,
    latency: Arc<Latency>,
}

impl Lanes {
    /// Waits for a permit in `kind`'s lane, then for the account's hard cap.
    pub(crate) async fn admit(&self, kind: LaneKind) -> Option<Admission> {
        let lane = match kind {
            LaneKind::Answering => &self.answering,
            LaneKind::Suspect => &self.suspect,
        };
        // The semaphores are never closed.
        let lane = lane.clone().acquire_owned().await.ok()?;
        let hard = self.hard_cap.clone().acquire_owned().await.ok()?;
        Some(Admission {
            lane: Some(lane),
            kind,
            _hard: hard,
            latency: self.latency.clone(),
        })
    }
}

/// Every budget; shared by all prechecks of one runner.
#[derive(Debug)]
pub(crate) struct Budgets(Mutex<Inner>);

/// The lane size and every budget, changed together: every lane has `concurrency` permits and
/// every hard cap [`HARD_CAP_FACTOR`] times that.
#[derive(Debug)]
struct Inner {
    concurrency: usize,
    /// Each account's hard cap, by account name.
    hard_caps: HashMap<String, Arc<Semaphore>>,
    /// By account name and gateway (`scheme://host:port`: NCP's own gateway serves several
    /// regions, so they share one budget).
    lanes: HashMap<(String, String), Arc<Lanes>>,
}

/// Permits held by one precheck in flight.
#[derive(Debug)]
pub(crate) struct Admission {
    /// The lane permit; dropped early (see [`Admission::leave_lane`]) when the precheck turns
    /// out slow.
    lane: Option<OwnedSemaphorePermit>,
    /// The lane it was admitted to.
    pub kind: LaneKind,
    /// The account's hard-cap permit, held to the end.
    _hard: OwnedSemaphorePermit,
    /// How quickly this gateway answers: the patience before leaving the lane, and what the
    /// precheck's answer teaches.
    pub latency: Arc<Latency>,
}

impl Admission {
    /// Gives the answering-lane permit back while the precheck goes on (under the hard cap).
    pub(crate) fn leave_lane(&mut self) {
        self.lane = None;
    }
}

impl Budgets {
    /// Budgets of `concurrency` permits per lane.
    pub(crate) fn new(concurrency: usize) -> Self {
        Self(Mutex::new(Inner {
            concurrency: concurrency.max(1),
            hard_caps: HashMap::new(),
            lanes: HashMap::new(),
        }))
    }

    /// Resizes every lane (and hard cap) to a new `concurrency`.
    pub(crate) fn set_concurrency(&self, n: usize) {
        let n = n.max(1);
        let mut inner = crate::lock::lock(&self.0);
        let old = std::mem::replace(&mut inner.concurrency, n);
        for cap in inner.hard_caps.values() {
            resize(cap, old * HARD_CAP_FACTOR, n * HARD_CAP_FACTOR);
        }
        for lanes in inner.lanes.values() {
            resize(&lanes.answering, old, n);
            resize(&lanes.suspect, old, n);
        }
    }

    /// The lanes `cluster` draws from (its account at its gateway), made on first use.
    pub(crate) fn lanes(&self, cluster: &Cluster) -> Arc<Lanes> {
        let gateway = &cluster.endpoint.precheck[..url::Position::BeforePath];
        self.lanes_of(&cluster.account, gateway)
    }

    fn lanes_of(&self, account: &str, gateway: &str) -> Arc<Lanes> {
        let mut inner = crate::lock::lock(&self.0);
        let n = inner.concurrency;
        let sem = |n| Arc::new(Semaphore::new(n));
        let hard_cap = inner.hard_caps.entry(account.to_string());
        let hard_cap = hard_cap.or_insert_with(|| sem(n * HARD_CAP_FACTOR)).clone();
        let key = (account.to_string(), gateway.to_string());
        let lanes = inner.lanes.entry(key).or_insert_with(|| {
            let (answering, suspect, latency) = (sem(n), sem(n), Arc::default());
            Arc::new(Lanes {
                answering,
                suspect,
                hard_cap,
                latency,
            })
        });
        lanes.clone()
    }

    /// Waits for a permit in `kind`'s lane of `key` (account, gateway), then for the account's
    /// hard cap.
    #[cfg(test)]
    pub(crate) async fn admit(&self, key: (&str, &str), kind: LaneKind) -> Option<Admission> {
        self.lanes_of(key.0, key.1).admit(kind).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(gateway: &str) -> String {
        gateway.to_string()
    }

    fn key<'a>(account: &'a str, gateway: &'a str) -> (&'a str, &'a str) {
        (account, gateway)
    }

    #[tokio::test(start_paused = true)]
    async fn lanes_and_gateways_do_not_share_permits() {
        let b = Budgets::new(2);
        let (ea, eb) = (endpoint("http://a"), endpoint("http://b"));
        let a = key("default", &ea);
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(b.admit(a, LaneKind::Suspect).await.unwrap());
        }
        // The suspect lane of `a` is full; its answering lane and another gateway are not.
        let wait = tokio::time::timeout(Duration::from_secs(1), b.admit(a, LaneKind::Suspect));
        assert!(wait.await.is_err(), "a third suspect waits");
        assert!(b.admit(a, LaneKind::Answering).await.is_some());
        let other = key("default", &eb);
        assert!(b.admit(other, LaneKind::Suspect).await.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn leaving_the_lane_frees_it_but_the_hard_cap_holds() {
        let b = Budgets::new(1);
        let (ea, eb) = (endpoint("http://a"), endpoint("http://b"));
        let a = key("default", &ea);
        let mut slow = Vec::new();
        for _ in 0..HARD_CAP_FACTOR {
            let mut adm = b.admit(a, LaneKind::Answering).await.unwrap();
            adm.leave_lane();
            slow.push(adm);
        }
        // 16 requests in flight for the account: the next one waits, in any lane, any gateway.
        let other = key("default", &eb);
        let wait =
            tokio::time::timeout(Duration::from_secs(1), b.admit(other, LaneKind::Answering));
        assert!(wait.await.is_err(), "the account's hard cap is reached");
        // Another account has its own.
        assert!(
            b.admit(key("prod", &eb), LaneKind::Answering)
                .await
                .is_some()
        );
        slow.pop();
        assert!(b.admit(other, LaneKind::Answering).await.is_some());
    }

    /// Takes permits of `kind`'s lane of `key` until the next one waits (a second on the paused
    /// clock), leaving each lane at once when `leave` (so only the hard cap counts), and returns
    /// them all: the count is how many the budget lets in.
    async fn fill(b: &Budgets, key: (&str, &str), kind: LaneKind, leave: bool) -> Vec<Admission> {
        let mut held = Vec::new();
        while let Ok(Some(mut adm)) =
            tokio::time::timeout(Duration::from_secs(1), b.admit(key, kind)).await
        {
            if leave {
                adm.leave_lane();
            }
            held.push(adm);
            assert!(held.len() <= 1000, "no cap at all");
        }
        held
    }

    /// How many permits each lane and the hard cap of `key` let in, each counted on its own.
    async fn sizes(b: &Budgets, key: (&str, &str)) -> [usize; 3] {
        // A shrink takes its surplus permits in a task of its own: let it run first.
        tokio::task::yield_now().await;
        // One at a time: each count's permits come back before the next.
        let answering = fill(b, key, LaneKind::Answering, false).await.len();
        let suspect = fill(b, key, LaneKind::Suspect, false).await.len();
        let hard_cap = fill(b, key, LaneKind::Answering, true).await.len();
        [answering, suspect, hard_cap]
    }

    #[tokio::test(start_paused = true)]
    async fn resizing_changes_every_lane() {
        let b = Budgets::new(1);
        let (ea, eb) = (endpoint("http://a"), endpoint("http://b"));
        let a = key("default", &ea);
        let hard = |n: usize| n * HARD_CAP_FACTOR;
        assert_eq!(sizes(&b, a).await, [1, 1, hard(1)], "as made");

        // Growing: every lane and the hard cap at once, also with a permit out.
        let first = b.admit(a, LaneKind::Answering).await.unwrap();
        b.set_concurrency(3);
        let held = fill(&b, a, LaneKind::Answering, false).await;
        assert_eq!(held.len(), 2, "3 answering permits, one of them out");
        drop((first, held));
        assert_eq!(sizes(&b, a).await, [3, 3, hard(3)], "grown");

        // Shrinking: every lane and the hard cap, and a lane made after the change is as small.
        b.set_concurrency(2);
        assert_eq!(sizes(&b, a).await, [2, 2, hard(2)], "shrunk");
        assert_eq!(
            sizes(&b, key("default", &eb)).await,
            [2, 2, hard(2)],
            "a gateway first used after the change"
        );
        assert_eq!(
            sizes(&b, key("prod", &ea)).await,
            [2, 2, hard(2)],
            "an account first used after the change"
        );

        // Shrinking while permits are out: the surplus is taken as they come back.
        let out = fill(&b, a, LaneKind::Suspect, false).await;
        assert_eq!(out.len(), 2);
        b.set_concurrency(1);
        let mut out = out.into_iter();
        drop(out.next());
        tokio::task::yield_now().await;
        let wait = tokio::time::timeout(Duration::from_secs(1), b.admit(a, LaneKind::Suspect));
        assert!(
            wait.await.is_err(),
            "one suspect permit is still out of one"
        );
        drop(out);
        assert_eq!(
            sizes(&b, a).await,
            [1, 1, hard(1)],
            "shrunk with permits out"
        );

        // 0 is taken as 1: a lane never closes.
        b.set_concurrency(0);
        assert_eq!(sizes(&b, a).await, [1, 1, hard(1)], "at least 1");
    }

    #[test]
    fn patience_follows_the_gateways_answers() {
        let timeout = Duration::from_secs(5);
        let l = Latency::default();
        assert_eq!(
            l.patience(timeout),
            timeout,
            "no answer yet: up to the timeout"
        );
        l.observe(Duration::from_millis(40));
        assert_eq!(
            l.patience(timeout),
            SUSPECT_AFTER,
            "4 x 40 ms is below the floor"
        );
        for _ in 0..50 {
            l.observe(Duration::from_millis(900));
        }
        let p = l.patience(timeout);
        assert!(
            p > Duration::from_millis(3000) && p <= Duration::from_millis(3600),
            "{p:?}"
        );
        for _ in 0..50 {
            l.observe(Duration::from_secs(4));
        }
        assert_eq!(l.patience(timeout), timeout, "never past the timeout");
    }

    #[test]
    fn lane_after_an_outcome() {
        assert_eq!(
            LaneKind::after(&Outcome::Timeout {
                after: Duration::from_secs(1)
            }),
            LaneKind::Suspect
        );
        assert_eq!(
            LaneKind::after(&Outcome::ConnectionError {
                detail: "refused".into()
            }),
            LaneKind::Suspect
        );
        assert_eq!(LaneKind::after(&Outcome::NotReady), LaneKind::Answering);
    }
}
