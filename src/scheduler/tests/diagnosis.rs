//! `getClusterStatus` reads: only when they help, at most once per interval, never changing the
//! precheck's result.

use super::*;

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
