//! `getClusterStatus` reads: only when they help, at most once per interval, never changing the
//! precheck's result.

use super::*;

#[tokio::test(start_paused = true)]
async fn status_is_read_only_for_failing_clusters_once_per_interval() {
    let cs = clusters(3);
    // c1's answers take 900 ms, then 10 ms, and so on: a read stamped when its precheck ended
    // would skip every round whose precheck was quicker than the last one.
    let fake = Arc::new(Fake {
        not_ready: ["c1".to_string()].into(),
        delay_cycle: [(
            "c1".to_string(),
            vec![Duration::from_millis(900), Duration::from_millis(10)],
        )]
        .into(),
        ..Fake::default()
    });
    let schedule = Schedule {
        interval: Duration::from_secs(10),
        concurrency: 4,
        timeout: Duration::from_secs(5),
        diagnose_every_round: false,
    };
    let run_time = Duration::from_secs(65);
    let start = Instant::now();
    let state = run_for(fake.clone(), cs, schedule, run_time).await;
    let calls = fake.status_calls.lock().unwrap().clone();
    // c0 and c2 are ready: never read.
    assert!(calls.iter().all(|c| c == "c1"), "{calls:?}");
    // c1 is prechecked at start (900 ms, then its 10 ms read), then on every slot
    // `phase + k·interval` after that. Reads are spaced by those slots: the start-up precheck
    // (due at 0) reads, a slot less than an interval after it does not, and every later slot
    // reads (its last read was due exactly an interval before).
    let startup_done = Duration::from_millis(910);
    let ph = phase("c1", schedule.interval);
    let slots: Vec<Duration> = (0..10)
        .map(|k| ph + schedule.interval * k)
        .filter(|t| *t > startup_done && *t < run_time)
        .collect();
    let c1 = calls_of(&fake, "c1");
    let at: Vec<Duration> = c1.iter().map(|t| *t - start).collect();
    assert_eq!(at.len(), 1 + slots.len(), "c1 at {at:?}, phase {ph:?}");
    assert_eq!(&at[1..], &slots[..], "c1 on its slots");
    let reads = 1 + slots.iter().filter(|s| **s >= schedule.interval).count();
    assert_eq!(
        calls.len(),
        reads,
        "{} status calls for {} prechecks (phase {ph:?})",
        calls.len(),
        at.len()
    );
    assert!(state.get("c1").unwrap().diagnosis.is_some());
    assert!(state.get("c0").unwrap().diagnosis.is_none());
}

/// A runner and its schedule for one not-ready cluster, running until `tx` is sent.
async fn running(
    fake: Arc<Fake>,
    every_round: bool,
) -> (
    Arc<Runner<Arc<Fake>>>,
    Arc<State>,
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let cs = clusters(1);
    let state = Arc::new(State::new(&cs));
    let schedule = Schedule {
        interval: Duration::from_secs(10),
        concurrency: 4,
        timeout: Duration::from_secs(5),
        diagnose_every_round: every_round,
    };
    let runner = runner(cs, fake, state.clone(), schedule.concurrency);
    let (tx, rx) = watch::channel(false);
    let handle = tokio::spawn(run(runner.clone(), schedule, rx));
    (runner, state, tx, handle)
}

/// A fresh precheck of c0 a little later (one that arrives as the last one ends shares it).
async fn fresh(runner: &Arc<Runner<Arc<Fake>>>) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let source = runner.clone().fresh("c0", unlimited(Duration::ZERO)).await;
    assert_eq!(source, Some(FreshSource::Fresh));
}

#[tokio::test(start_paused = true)]
async fn a_fresh_precheck_between_rounds_reads_no_status_again() {
    let fake = Arc::new(Fake {
        not_ready: ["c0".to_string()].into(),
        ..Fake::default()
    });
    let (runner, _state, tx, handle) = running(fake.clone(), false).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.status_calls.lock().unwrap().len(), 1, "read at start");
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let fresh = runner.clone().fresh("c0", unlimited(Duration::ZERO)).await;
        assert_eq!(fresh, Some(FreshSource::Fresh));
    }
    assert!(calls_of(&fake, "c0").len() >= 4);
    assert_eq!(
        fake.status_calls.lock().unwrap().len(),
        1,
        "fresh prechecks within the interval read no status"
    );
    tx.send(true).unwrap();
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_diagnosis_goes_when_the_cluster_is_ready_again_or_gone() {
    for (then, gone) in [
        (Outcome::Ready, "ready again"),
        (
            Outcome::ApiError {
                http_status: 200,
                code: 3,
                message: "Invalid Service Group Instance No".into(),
            },
            "no such cluster",
        ),
    ] {
        let fake = Arc::new(Fake {
            not_ready: ["c0".to_string()].into(),
            ..Fake::default()
        });
        let (runner, state, tx, handle) = running(fake.clone(), false).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(state.get("c0").unwrap().diagnosis.is_some(), "{gone}");
        fake.answers.lock().unwrap().insert("c0".into(), then);
        fresh(&runner).await;
        assert!(state.get("c0").unwrap().diagnosis.is_none(), "{gone}");
        // Not ready again: read at once, not an interval later.
        fake.answers.lock().unwrap().remove("c0");
        fresh(&runner).await;
        assert!(state.get("c0").unwrap().diagnosis.is_some(), "{gone}");
        assert_eq!(fake.status_calls.lock().unwrap().len(), 2, "{gone}");
        tx.send(true).unwrap();
        handle.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn read_every_round_a_new_verdict_is_read_at_once() {
    let fake = Arc::new(Fake::default());
    let (runner, state, tx, handle) = running(fake.clone(), true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fake.status_calls.lock().unwrap().len(), 1);
    // Still ready: within the interval, no new read.
    fresh(&runner).await;
    assert_eq!(fake.status_calls.lock().unwrap().len(), 1);
    // Not ready now: the diagnosis read while it was ready would describe the other verdict.
    fake.answers
        .lock()
        .unwrap()
        .insert("c0".into(), Outcome::NotReady);
    fresh(&runner).await;
    assert_eq!(fake.status_calls.lock().unwrap().len(), 2);
    assert!(state.get("c0").unwrap().diagnosis.is_some());
    tx.send(true).unwrap();
    handle.await.unwrap();
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
    let run_time = Duration::from_secs(25);
    let state = run_for(fake.clone(), cs, schedule, run_time).await;
    let calls = fake.status_calls.lock().unwrap().clone();
    // Each cluster: read at start, then on every slot an interval or more after that (the
    // prechecks take 10 ms, their reads 10 ms).
    for name in ["c0", "c1"] {
        let ph = phase(name, schedule.interval);
        let reads = 1
            + (0..3)
                .map(|k| ph + schedule.interval * k)
                .filter(|t| *t >= schedule.interval && *t < run_time)
                .count();
        assert_eq!(
            calls.iter().filter(|c| *c == name).count(),
            reads,
            "{name}, phase {ph:?}: {calls:?}"
        );
    }
    assert!(
        state.get("c0").unwrap().diagnosis.is_some(),
        "kept while ready"
    );
}
