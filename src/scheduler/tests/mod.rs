//! The scheduler under tokio's paused clock, against a fake gateway: the schedule itself here,
//! isolation (hanging clusters and gateways, the fresh budget) in `isolation`, status reads in
//! `diagnosis`.

mod diagnosis;
mod isolation;

use super::*;
use crate::config::Config;
use crate::model::Cluster;
use crate::ncp::client::CallMeta;
use crate::ncp::cluster_status::Diagnosis;
use crate::ncp::precheck::Precheck;
use crate::outcome::Outcome;
use crate::plan::Schedule;
use crate::scheduler::slot::phase;
use crate::state::State;
use std::future::Future;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A fake gateway: records when each cluster was asked and how many were in flight, in all
/// and per cluster (now, most).
#[derive(Debug, Default)]
pub(super) struct Fake {
    pub(super) delay: HashMap<String, Duration>,
    pub(super) rate_limit: HashMap<String, Option<Duration>>,
    pub(super) calls: Mutex<Vec<(String, Instant)>>,
    pub(super) in_flight: Mutex<(usize, usize)>,
    pub(super) per_cluster: Mutex<HashMap<String, (usize, usize)>>,
    /// These clusters (or every cluster behind this gateway host) hang until the timeout.
    pub(super) hang: std::collections::HashSet<String>,
    pub(super) hang_host: Option<String>,
    /// These clusters answer "not ready".
    pub(super) not_ready: std::collections::HashSet<String>,
    /// These clusters' delays, one per call, in a cycle (over `delay`).
    pub(super) delay_cycle: HashMap<String, Vec<Duration>>,
    /// These clusters answer this, whatever else is set (tests change it while running).
    pub(super) answers: Mutex<HashMap<String, Outcome>>,
    /// getClusterStatus calls, by cluster, and whether they fail.
    pub(super) status_calls: Mutex<Vec<String>>,
    pub(super) status_fails: bool,
}

/// The timeout of the isolation tests: what a hanging precheck costs.
pub(super) const HANG: Duration = Duration::from_secs(5);

/// Fresh prechecks limited only per cluster (the shared budget is tested on its own).
pub(super) fn unlimited(min_interval: Duration) -> FreshPolicy {
    FreshPolicy {
        min_interval,
        budget: crate::config::FreshBudget {
            per_second: 1000.0,
            burst: 10_000,
        },
    }
}

/// Slots anchored at a whole multiple of every interval, so they fall at `start + phase`.
pub(super) fn epoch() -> SystemTime {
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
        let nth = calls_of(self, &c.name).len() - 1;
        let delay = if hangs {
            HANG
        } else if let Some(cycle) = self.delay_cycle.get(&c.name) {
            cycle[nth % cycle.len()]
        } else {
            self.delay
                .get(&c.name)
                .copied()
                .unwrap_or(Duration::from_millis(10))
        };
        tokio::time::sleep(delay).await;
        self.in_flight.lock().unwrap().0 -= 1;
        self.per_cluster.lock().unwrap().get_mut(&c.name).unwrap().0 -= 1;
        let answer = self.answers.lock().unwrap().get(&c.name).cloned();
        let (outcome, retry_after) = match self.rate_limit.get(&c.name) {
            _ if answer.is_some() => (answer.unwrap(), None),
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
            meta: CallMeta {
                latency: delay,
                request_id: None,
                retry_after,
                clock_skew: None,
                ..CallMeta::default()
            },
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

pub(super) fn clusters(n: usize) -> Vec<Arc<Cluster>> {
    let mut yaml = String::from("clusters:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  - {{name: c{i}, region: KR, service_group_instance_no: {}}}\n",
            i + 1
        ));
    }
    Config::parse(&yaml, Path::new("t")).unwrap().clusters
}

pub(super) fn calls_of(fake: &Fake, name: &str) -> Vec<Instant> {
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
    // was clearly slow (`budget::Latency::patience`) and went on under the hard cap.
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
    // At 0, then as each Retry-After ends (the precheck takes 10 ms): 300.01 s, 600.02 s.
    let start = c0[0];
    let ms = |t: &Instant| (*t - start).as_millis();
    assert_eq!(
        c0.iter().map(ms).collect::<Vec<_>>(),
        [0, 300_010, 600_020],
        "c0"
    );
    // Without Retry-After: 120 s, then 240 s, then 480 s (past the end).
    let c1 = calls_of(&fake, "c1");
    assert_eq!(
        c1.iter().map(ms).collect::<Vec<_>>(),
        [0, 120_010, 360_020],
        "c1"
    );
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
async fn fresh_waits_out_a_429_back_off_like_the_schedule() {
    let mut fake = Fake::default();
    fake.rate_limit
        .insert("c0".into(), Some(Duration::from_secs(120)));
    fake.rate_limit.insert("c1".into(), None);
    let fake = Arc::new(fake);
    let cs = clusters(3);
    let state = Arc::new(State::new(&cs));
    let runner = runner(cs, fake.clone(), state.clone(), 4);
    runner.set_schedule(&Schedule {
        interval: Duration::from_secs(60),
        concurrency: 4,
        timeout: Duration::from_secs(5),
        diagnose_every_round: false,
    });
    let no_window = unlimited(Duration::ZERO);
    for name in ["c0", "c1", "c2"] {
        assert_eq!(
            runner.clone().fresh(name, no_window).await,
            Some(FreshSource::Fresh)
        );
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    // c0: Retry-After 120 s, 30 s gone. c1: no Retry-After, the first back-off is 2 × 60 s.
    for name in ["c0", "c1"] {
        match runner.clone().fresh(name, no_window).await {
            Some(FreshSource::Recent { retry_in }) => assert!(
                retry_in > Duration::from_secs(89) && retry_in <= Duration::from_secs(90),
                "{name}: {retry_in:?}"
            ),
            other => panic!("{name} inside its back-off: {other:?}"),
        }
        assert_eq!(
            calls_of(&fake, name).len(),
            1,
            "{name} was asked inside its back-off"
        );
    }
    // A cluster that was not rate limited is not held.
    assert_eq!(
        runner.clone().fresh("c2", no_window).await,
        Some(FreshSource::Fresh)
    );
    assert_eq!(calls_of(&fake, "c2").len(), 2);
    // After the back-off, NCP is asked again; it says 429 again, so c0 is held again.
    tokio::time::sleep(Duration::from_secs(91)).await;
    assert_eq!(
        runner.clone().fresh("c0", no_window).await,
        Some(FreshSource::Fresh)
    );
    assert_eq!(calls_of(&fake, "c0").len(), 2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(matches!(
        runner.clone().fresh("c0", no_window).await,
        Some(FreshSource::Recent { .. })
    ));
    // Once NCP answers otherwise, the hold ends with that answer.
    fake.answers
        .lock()
        .unwrap()
        .insert("c1".into(), Outcome::Ready);
    tokio::time::sleep(Duration::from_secs(90)).await;
    assert_eq!(
        runner.clone().fresh("c1", no_window).await,
        Some(FreshSource::Fresh)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        runner.clone().fresh("c1", no_window).await,
        Some(FreshSource::Fresh)
    );
    assert_eq!(calls_of(&fake, "c1").len(), 3);
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

/// Captures what the runner logs, for the tests that check its warnings.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A gateway whose clock is 10 minutes ahead of ours.
#[derive(Debug, Default)]
struct Skewed;

impl Prechecker for Skewed {
    async fn precheck(&self, _: &Arc<Cluster>) -> Precheck {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Precheck {
            outcome: Outcome::Ready,
            meta: CallMeta {
                latency: Duration::from_millis(10),
                request_id: None,
                retry_after: None,
                clock_skew: Some(600.0),
                ..CallMeta::default()
            },
        }
    }
    async fn cluster_status(&self, _: &Arc<Cluster>) -> Result<Diagnosis, Outcome> {
        Ok(Diagnosis::default())
    }
}

#[tokio::test(start_paused = true)]
async fn the_clock_skew_warning_repeats_at_most_every_ten_minutes() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let cs = clusters(2);
    let schedule = Schedule {
        interval: Duration::from_secs(60),
        concurrency: 4,
        timeout: Duration::from_secs(5),
        diagnose_every_round: false,
    };
    // 25 minutes of prechecks (2 clusters, one a minute each: ~50 answers with a skew).
    let state = Arc::new(State::new(&cs));
    let (tx, rx) = watch::channel(false);
    let r = runner(cs, Skewed, state.clone(), schedule.concurrency);
    let handle = tokio::spawn(run(r, schedule, rx));
    tokio::time::sleep(Duration::from_secs(25 * 60)).await;
    tx.send(true).unwrap();
    handle.await.unwrap();
    assert_eq!(state.clock_skew(), Some(600.0));
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warnings = text.matches("this host's clock is 600 s behind").count();
    // At start, after 10 and after 20 minutes: three, not one per answer.
    assert_eq!(warnings, 3, "{text}");
}
