//! When each cluster is prechecked: spread, bounded, backed off, following the plan.
//!
//! - [`slot`]: slot math (a cluster's phase, its next slot, the back-off), pure;
//! - [`runner`]: the one place a precheck starts (single flight, the in-flight cap, fresh
//!   prechecks), and the only writer of outcomes into the state;
//! - [`task`]: one cluster's loop;
//! - here: [`run_plan`], which follows the inventory's plans: clusters added start at once,
//!   removed ones stop at once, kept ones keep their rhythm.
//!
//! Every cluster is prechecked once at start, then on its own slot every `interval`. A hanging
//! cluster only holds its own permit, until the timeout. After a 429 the cluster waits for
//! `Retry-After` (or an exponential back-off) before its next slot. Time is tokio's, so tests
//! drive all of this with a paused clock (and pin the wall clock slots are anchored to).

pub mod budget;
pub mod runner;
pub mod slot;
mod task;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use self::runner::Flight;
pub use self::runner::{FreshFuture, FreshPolicy, FreshPrecheck, FreshSource, Prechecker, Runner};
use self::slot::{phase, wall_anchor};
use self::task::ClusterTask;
use crate::model::Cluster;
use crate::plan::{Plan, Schedule};

/// Cluster tasks spawned at start between two yields to the runtime.
const SPAWN_BATCH: usize = 500;

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
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ncp::cluster_status::Diagnosis;
    use crate::ncp::precheck::Precheck;
    use crate::outcome::Outcome;
    use crate::state::State;
    use std::path::Path;
    use std::sync::Mutex;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// A fake gateway: records when each cluster was asked and how many were in flight, in all
    /// and per cluster (now, most).
    #[derive(Debug, Default)]
    struct Fake {
        delay: HashMap<String, Duration>,
        rate_limit: HashMap<String, Option<Duration>>,
        calls: Mutex<Vec<(String, Instant)>>,
        in_flight: Mutex<(usize, usize)>,
        per_cluster: Mutex<HashMap<String, (usize, usize)>>,
        /// These clusters (or every cluster behind this gateway host) hang until the timeout.
        hang: std::collections::HashSet<String>,
        hang_host: Option<String>,
        /// These clusters answer "not ready".
        not_ready: std::collections::HashSet<String>,
        /// getClusterStatus calls, by cluster, and whether they fail.
        status_calls: Mutex<Vec<String>>,
        status_fails: bool,
    }

    /// The timeout of the isolation tests: what a hanging precheck costs.
    const HANG: Duration = Duration::from_secs(5);

    /// Fresh prechecks limited only per cluster (the shared budget is tested on its own).
    fn unlimited(min_interval: Duration) -> FreshPolicy {
        FreshPolicy {
            min_interval,
            budget: crate::config::FreshBudget {
                per_second: 1000.0,
                burst: 10_000,
            },
        }
    }

    /// Slots anchored at a whole multiple of every interval, so they fall at `start + phase`.
    fn epoch() -> SystemTime {
        UNIX_EPOCH
    }

    fn runner<P: Prechecker>(
        cs: Vec<Arc<Cluster>>,
        p: P,
        state: Arc<State>,
        concurrency: usize,
    ) -> Arc<Runner<P>> {
        Arc::new(Runner::new(cs, p, state, concurrency).with_wall_clock(epoch))
    }

    impl Prechecker for Fake {
        async fn precheck(&self, c: &Arc<Cluster>) -> Precheck {
            self.calls
                .lock()
                .unwrap()
                .push((c.name.clone(), Instant::now()));
            {
                let mut f = self.in_flight.lock().unwrap();
                f.0 += 1;
                f.1 = f.1.max(f.0);
                let mut per = self.per_cluster.lock().unwrap();
                let one = per.entry(c.name.clone()).or_default();
                one.0 += 1;
                one.1 = one.1.max(one.0);
            }
            let hangs = self.hang.contains(&c.name)
                || self.hang_host.as_deref() == c.endpoint.precheck.host_str();
            let delay = if hangs {
                HANG
            } else {
                self.delay
                    .get(&c.name)
                    .copied()
                    .unwrap_or(Duration::from_millis(10))
            };
            tokio::time::sleep(delay).await;
            self.in_flight.lock().unwrap().0 -= 1;
            self.per_cluster.lock().unwrap().get_mut(&c.name).unwrap().0 -= 1;
            let (outcome, retry_after) = match self.rate_limit.get(&c.name) {
                Some(ra) => (
                    Outcome::GatewayError {
                        http_status: 429,
                        code: Some(420),
                        message: "Rate Limited".into(),
                    },
                    *ra,
                ),
                None if hangs => (Outcome::Timeout { after: HANG }, None),
                None if self.not_ready.contains(&c.name) => (Outcome::NotReady, None),
                None => (Outcome::Ready, None),
            };
            Precheck {
                outcome,
                latency: delay,
                request_id: None,
                retry_after,
                clock_skew: None,
            }
        }

        async fn cluster_status(&self, c: &Arc<Cluster>) -> Result<Diagnosis, Outcome> {
            self.status_calls.lock().unwrap().push(c.name.clone());
            tokio::time::sleep(Duration::from_millis(10)).await;
            if self.status_fails {
                return Err(Outcome::GatewayError {
                    http_status: 401,
                    code: Some(200),
                    message: "Authentication Failed".into(),
                });
            }
            Ok(Diagnosis {
                cmak: Some("green".into()),
                ..Diagnosis::default()
            })
        }
    }

    fn clusters(n: usize) -> Vec<Arc<Cluster>> {
        let mut yaml = String::from("clusters:\n");
        for i in 0..n {
            yaml.push_str(&format!(
                "  - {{name: c{i}, region: KR, service_group_instance_no: {}}}\n",
                i + 1
            ));
        }
        Config::parse(&yaml, Path::new("t")).unwrap().clusters
    }

    fn calls_of(fake: &Fake, name: &str) -> Vec<Instant> {
        fake.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .collect()
    }

    async fn run_for(
        fake: Arc<Fake>,
        cs: Vec<Arc<Cluster>>,
        schedule: Schedule,
        dur: Duration,
    ) -> Arc<State> {
        let state = Arc::new(State::new(&cs));
        let (tx, rx) = watch::channel(false);
        let runner = runner(cs, fake, state.clone(), schedule.concurrency);
        let handle = tokio::spawn(run(runner, schedule, rx));
        tokio::time::sleep(dur).await;
        tx.send(true).unwrap();
        handle.await.unwrap();
        state
    }

    #[tokio::test(start_paused = true)]
    async fn every_cluster_at_start_then_once_per_interval_on_its_slot() {
        let fake = Arc::new(Fake::default());
        let cs = clusters(50);
        let start = Instant::now();
        let schedule = Schedule {
            interval: Duration::from_secs(60),
            concurrency: 4,
            timeout: Duration::from_secs(5),
            diagnose_every_round: false,
        };
        let run_time = Duration::from_secs(60 * 5 + 1);
        let state = run_for(fake.clone(), cs.clone(), schedule, run_time).await;
        assert!(state.is_ready());
        for c in &cs {
            let calls = calls_of(&fake, &c.name);
            // At start (queued behind the semaphore: 50 × 10 ms / 4 ≤ 130 ms), then on every slot
            // `phase + k·interval` that fell inside the run.
            assert!(
                calls[0] - start <= Duration::from_millis(130),
                "{}: first at {:?}",
                c.name,
                calls[0] - start
            );
            // A slot at 0 (phase 0) is the start-up precheck itself.
            let ph = phase(&c.name, schedule.interval);
            let slots: Vec<Duration> = (0..10)
                .map(|k| ph + schedule.interval * k)
                .filter(|t| !t.is_zero() && *t < run_time)
                .collect();
            assert_eq!(
                calls.len(),
                1 + slots.len(),
                "{}: {} calls, phase {ph:?}",
                c.name,
                calls.len()
            );
            for (k, (t, slot)) in calls[1..].iter().zip(&slots).enumerate() {
                let slot = start + *slot;
                assert!(
                    *t >= slot && *t - slot <= Duration::from_millis(130),
                    "{}: call {k} off its slot",
                    c.name
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_capped_and_a_hanging_cluster_does_not_delay_others() {
        let mut fake = Fake::default();
        fake.delay.insert("c0".into(), Duration::from_secs(50));
        let fake = Arc::new(fake);
        let cs = clusters(20);
        let start = Instant::now();
        let schedule = Schedule {
            interval: Duration::from_secs(20),
            concurrency: 3,
            timeout: Duration::from_secs(5),
            diagnose_every_round: false,
        };
        let state = Arc::new(State::new(&cs));
        let runner = runner(cs.clone(), fake.clone(), state, schedule.concurrency);
        let (tx, rx) = watch::channel(false);
        let sched = tokio::spawn(run(runner.clone(), schedule, rx));
        // While c0 hangs past its next slots, the gate asks for it too: both must wait for the
        // one precheck in flight.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let fresh = tokio::spawn(runner.clone().fresh("c0", unlimited(Duration::ZERO)));
        tokio::time::sleep(Duration::from_secs(110)).await;
        tx.send(true).unwrap();
        sched.await.unwrap();
        assert_eq!(fresh.await.unwrap(), Some(FreshSource::Fresh));
        // 3 answering prechecks at most, plus c0, which gave its answering permit back once it
        // was clearly slow (`budget::suspect_after`) and went on under the hard cap.
        assert!(fake.in_flight.lock().unwrap().1 <= 3 + 1);
        for c in &cs[1..] {
            let calls = calls_of(&fake, &c.name);
            // 19 quick clusters share the 2 permits c0 leaves free: all done within 0.2 s.
            assert!(
                calls[0] - start < Duration::from_millis(200),
                "{} waited {:?}",
                c.name,
                calls[0] - start
            );
        }
        let c0 = calls_of(&fake, "c0");
        // The fresh caller shares the hanging precheck's result (it finished after the caller
        // arrived); the schedule prechecks c0 again after it.
        assert!(
            c0.len() >= 2,
            "c0 was prechecked again after hanging: {c0:?}"
        );
        for w in c0.windows(2) {
            assert!(
                w[1] - w[0] >= Duration::from_secs(50),
                "a new precheck of c0 started {:?} after the last, while it hung",
                w[1] - w[0]
            );
        }
        assert_eq!(
            fake.per_cluster.lock().unwrap()["c0"].1,
            1,
            "never two prechecks of one cluster at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_cluster_honours_retry_after() {
        let mut fake = Fake::default();
        fake.rate_limit
            .insert("c0".into(), Some(Duration::from_secs(300)));
        fake.rate_limit.insert("c1".into(), None);
        let fake = Arc::new(fake);
        let cs = clusters(3);
        let schedule = Schedule {
            interval: Duration::from_secs(60),
            concurrency: 4,
            timeout: Duration::from_secs(5),
            diagnose_every_round: false,
        };
        run_for(fake.clone(), cs, schedule, Duration::from_secs(601)).await;
        let c0 = calls_of(&fake, "c0");
        for w in c0.windows(2) {
            assert!(
                w[1] - w[0] >= Duration::from_secs(300),
                "c0 asked again after {:?}",
                w[1] - w[0]
            );
        }
        assert!(c0.len() >= 2 && c0.len() <= 3, "{}", c0.len());
        // Without Retry-After: 120 s, then 240 s, then 480 s.
        let c1 = calls_of(&fake, "c1");
        assert!(c1.len() <= 3, "{}", c1.len());
        assert!(c1[1] - c1[0] >= Duration::from_secs(120));
        // The healthy cluster is unaffected: at start plus 10 slots.
        assert_eq!(calls_of(&fake, "c2").len(), 11);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_lets_in_flight_prechecks_finish() {
        let mut fake = Fake::default();
        fake.delay.insert("c0".into(), Duration::from_secs(5));
        let fake = Arc::new(fake);
        let cs = clusters(1);
        let state = Arc::new(State::new(&cs));
        let (tx, rx) = watch::channel(false);
        let schedule = Schedule {
            interval: Duration::from_secs(60),
            concurrency: 1,
            timeout: Duration::from_secs(5),
            diagnose_every_round: false,
        };
        let runner = runner(cs, fake.clone(), state.clone(), schedule.concurrency);
        let handle = tokio::spawn(run(runner, schedule, rx));
        tokio::time::sleep(Duration::from_secs(1)).await;
        tx.send(true).unwrap();
        handle.await.unwrap();
        assert_eq!(
            state.get("c0").unwrap().runs_total,
            1,
            "the in-flight precheck was recorded"
        );
        assert_eq!(calls_of(&fake, "c0").len(), 1, "nothing new was scheduled");
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_calls_are_shared_and_rate_limited() {
        let mut fake = Fake::default();
        fake.delay.insert("c0".into(), Duration::from_millis(500));
        let fake = Arc::new(fake);
        let cs = clusters(1);
        let state = Arc::new(State::new(&cs));
        let runner = runner(cs, fake.clone(), state.clone(), 4);
        let min = Duration::from_secs(10);
        let mut callers = JoinSet::new();
        for _ in 0..20 {
            let r = runner.clone();
            callers.spawn(async move { r.fresh("c0", unlimited(min)).await });
        }
        let answers = callers.join_all().await;
        assert!(
            answers.iter().all(|a| *a == Some(FreshSource::Fresh)),
            "{answers:?}"
        );
        assert_eq!(
            calls_of(&fake, "c0").len(),
            1,
            "20 concurrent callers share one upstream call"
        );
        assert_eq!(
            state.get("c0").unwrap().runs_total,
            1,
            "the fresh result is recorded"
        );

        tokio::time::sleep(Duration::from_secs(3)).await;
        match runner.clone().fresh("c0", unlimited(min)).await {
            Some(FreshSource::Recent { retry_in }) => {
                assert!(retry_in <= Duration::from_secs(7), "{retry_in:?}")
            }
            other => panic!("inside the window: {other:?}"),
        }
        assert_eq!(calls_of(&fake, "c0").len(), 1);
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert_eq!(
            runner.clone().fresh("c0", unlimited(min)).await,
            Some(FreshSource::Fresh)
        );
        assert_eq!(calls_of(&fake, "c0").len(), 2);
        assert_eq!(
            runner.clone().fresh("nope", unlimited(min)).await,
            None,
            "only configured clusters"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_and_periodic_prechecks_never_overlap_for_one_cluster() {
        let mut fake = Fake::default();
        fake.delay.insert("c0".into(), Duration::from_secs(2));
        let fake = Arc::new(fake);
        let cs = clusters(1);
        let state = Arc::new(State::new(&cs));
        let runner = runner(cs, fake.clone(), state.clone(), 4);
        let (tx, rx) = watch::channel(false);
        let schedule = Schedule {
            interval: Duration::from_secs(5),
            concurrency: 4,
            timeout: Duration::from_secs(5),
            diagnose_every_round: false,
        };
        let sched = tokio::spawn(run(runner.clone(), schedule, rx));
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(700)).await;
            let _ = runner.clone().fresh("c0", unlimited(Duration::ZERO)).await;
        }
        tx.send(true).unwrap();
        sched.await.unwrap();
        assert_eq!(
            fake.in_flight.lock().unwrap().1,
            1,
            "two prechecks of one cluster overlapped"
        );
        // Every precheck, periodic or fresh, was recorded.
        assert_eq!(
            state.get("c0").unwrap().runs_total as usize,
            calls_of(&fake, "c0").len()
        );
    }

    /// Clusters on two gateways (`a.example`, `b.example`), named `a0..` and `b0..`.
    fn clusters_on_two_gateways(n: usize) -> Vec<Arc<Cluster>> {
        let mut yaml = String::from("clusters:\n");
        for i in 0..n {
            for (g, off) in [("a", 0), ("b", n)] {
                yaml.push_str(&format!(
                    "  - {{name: {g}{i}, region: KR, service_group_instance_no: {}, api_gateway: 'http://{g}.example'}}\n",
                    i + off + 1
                ));
            }
        }
        Config::parse(&yaml, Path::new("t")).unwrap().clusters
    }

    /// Every healthy cluster was asked at least once per `interval` (plus `slack`) from its first
    /// answer to the end of the run, and its first answer came within `first_within`.
    fn assert_fresh(
        fake: &Fake,
        healthy: &[Arc<Cluster>],
        start: Instant,
        end: Instant,
        interval: Duration,
        slack: Duration,
        first_within: Duration,
    ) {
        let mut worst = Duration::ZERO;
        for c in healthy {
            let calls = calls_of(fake, &c.name);
            assert!(!calls.is_empty(), "{} never prechecked", c.name);
            assert!(
                calls[0] - start <= first_within,
                "{}: first precheck after {:?}",
                c.name,
                calls[0] - start
            );
            let mut gaps: Vec<Duration> = calls.windows(2).map(|w| w[1] - w[0]).collect();
            gaps.push(end - calls[calls.len() - 1]);
            let most = gaps.into_iter().max().unwrap_or_default();
            worst = worst.max(most);
            assert!(
                most <= interval + slack,
                "{}: {most:?} without a precheck (interval {interval:?})",
                c.name
            );
        }
        assert!(
            worst > interval / 2,
            "the run covered several slots: {worst:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn half_the_clusters_hanging_never_starve_the_healthy_half() {
        // 300 clusters, every other one hangs until the 5 s timeout; the healthy ones answer in
        // 20-80 ms, spread out as NCP's answers are. Concurrency 4, interval 20 s.
        let cs = clusters(300);
        let mut fake = Fake::default();
        for (i, c) in cs.iter().enumerate() {
            if i % 2 == 0 {
                fake.hang.insert(c.name.clone());
            } else {
                let ms = 20 + (i as u64 * 37) % 61;
                fake.delay.insert(c.name.clone(), Duration::from_millis(ms));
            }
        }
        let fake = Arc::new(fake);
        let schedule = Schedule {
            interval: Duration::from_secs(20),
            concurrency: 4,
            timeout: HANG,
            diagnose_every_round: false,
        };
        let start = Instant::now();
        let run_time = Duration::from_secs(200);
        run_for(fake.clone(), cs.clone(), schedule, run_time).await;
        let healthy: Vec<Arc<Cluster>> = cs.iter().skip(1).step_by(2).cloned().collect();
        // Even in the first round, before anyone knows which clusters hang, a hanging precheck
        // holds an answering permit for 0.25 s at most (150 × 0.25 s / 4 ≈ 9.4 s, plus the
        // healthy answers and the account's hard cap): the first round fits in one interval.
        let first_within = schedule.interval;
        assert_fresh(
            &fake,
            &healthy,
            start,
            start + run_time,
            schedule.interval,
            Duration::from_secs(1),
            first_within,
        );
        // The hanging ones are still asked, in their own lane, and never more than one at a time
        // per cluster.
        let hanging_calls: usize = cs
            .iter()
            .step_by(2)
            .map(|c| calls_of(&fake, &c.name).len())
            .sum();
        assert!(hanging_calls >= 150, "{hanging_calls}");
        assert!(fake.per_cluster.lock().unwrap().values().all(|v| v.1 == 1));
        // In flight: at most 4 answering + the hard cap of 16 × 4.
        assert!(
            fake.in_flight.lock().unwrap().1 <= 4 * 16,
            "{:?}",
            fake.in_flight
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_gateway_costs_only_its_own_clusters() {
        // 100 clusters behind a.example answer; all 100 behind b.example hang.
        let cs = clusters_on_two_gateways(100);
        let fake = Arc::new(Fake {
            hang_host: Some("b.example".into()),
            ..Fake::default()
        });
        let schedule = Schedule {
            interval: Duration::from_secs(20),
            concurrency: 4,
            timeout: HANG,
            diagnose_every_round: false,
        };
        let start = Instant::now();
        let run_time = Duration::from_secs(120);
        run_for(fake.clone(), cs.clone(), schedule, run_time).await;
        let healthy: Vec<Arc<Cluster>> = cs
            .iter()
            .filter(|c| c.name.starts_with('a'))
            .cloned()
            .collect();
        // b's clusters never wait in a's lanes: a's first round is as quick as on its own.
        assert_fresh(
            &fake,
            &healthy,
            start,
            start + run_time,
            schedule.interval,
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_prechecks_share_one_budget() {
        let cs = clusters(50);
        let fake = Arc::new(Fake::default());
        let state = Arc::new(State::new(&cs));
        let runner = runner(cs.clone(), fake.clone(), state, 4);
        let policy = FreshPolicy {
            min_interval: Duration::from_secs(10),
            budget: crate::config::FreshBudget {
                per_second: 1.0,
                burst: 10,
            },
        };
        // Someone hammers every cluster's gate with ?fresh=1 for 20 s, 10 times a second.
        let mut answers = Vec::new();
        for round in 0..200 {
            let c = &cs[round % cs.len()];
            answers.push(runner.clone().fresh(&c.name, policy).await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let upstream = fake.calls.lock().unwrap().len();
        // The burst of 10, then 1 per second for the ~20 s: never more.
        assert!((10..=31).contains(&upstream), "{upstream} upstream calls");
        let fresh = answers
            .iter()
            .filter(|a| **a == Some(FreshSource::Fresh))
            .count();
        let declined = answers
            .iter()
            .filter(|a| matches!(a, Some(FreshSource::Recent { .. })))
            .count();
        assert_eq!(fresh + declined, 200, "every caller got an answer");
        assert_eq!(fresh, upstream, "each fresh answer is one upstream call");
    }

    #[tokio::test(start_paused = true)]
    async fn status_is_read_only_for_failing_clusters_once_per_interval() {
        let cs = clusters(3);
        let fake = Arc::new(Fake {
            not_ready: ["c1".to_string()].into(),
            ..Fake::default()
        });
        let schedule = Schedule {
            interval: Duration::from_secs(10),
            concurrency: 4,
            timeout: Duration::from_secs(5),
            diagnose_every_round: false,
        };
        let state = run_for(fake.clone(), cs, schedule, Duration::from_secs(45)).await;
        let calls = fake.status_calls.lock().unwrap().clone();
        // c1: at start, then at most once per 10 s interval; c0 and c2 are ready: never.
        assert!(calls.iter().all(|c| c == "c1"), "{calls:?}");
        let c1_prechecks = calls_of(&fake, "c1").len();
        assert!(
            (4..=c1_prechecks).contains(&calls.len()),
            "{} status calls for {c1_prechecks} prechecks",
            calls.len()
        );
        assert!(state.get("c1").unwrap().diagnosis.is_some());
        assert!(state.get("c0").unwrap().diagnosis.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_status_read_leaves_the_precheck_alone() {
        let cs = clusters(1);
        let fake = Arc::new(Fake {
            not_ready: ["c0".to_string()].into(),
            status_fails: true,
            ..Fake::default()
        });
        let schedule = Schedule {
            interval: Duration::from_secs(10),
            concurrency: 4,
            timeout: Duration::from_secs(5),
            diagnose_every_round: false,
        };
        let state = run_for(fake.clone(), cs, schedule, Duration::from_secs(5)).await;
        let c0 = state.get("c0").unwrap();
        assert_eq!(c0.last.unwrap().outcome, Outcome::NotReady);
        assert_eq!(
            c0.failures.iter().sum::<u64>(),
            0,
            "the precheck did not fail"
        );
        assert!(c0.diagnosis.is_none());
        assert_eq!(fake.status_calls.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn every_round_reads_healthy_clusters_too() {
        let cs = clusters(2);
        let fake = Arc::new(Fake::default());
        let schedule = Schedule {
            interval: Duration::from_secs(10),
            concurrency: 4,
            timeout: Duration::from_secs(5),
            diagnose_every_round: true,
        };
        let state = run_for(fake.clone(), cs, schedule, Duration::from_secs(25)).await;
        let calls = fake.status_calls.lock().unwrap().len();
        assert!(calls >= 4, "{calls}");
        assert!(
            state.get("c0").unwrap().diagnosis.is_some(),
            "kept while ready"
        );
    }
}
