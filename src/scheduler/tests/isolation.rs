//! Isolation: a failing cluster or gateway never costs another its freshness; fresh prechecks
//! share one budget.

use super::*;

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
    // From the second interval on (the first round's backlog is behind), hanging clusters wait
    // in their own lane: a healthy cluster's precheck starts at its slot, behind healthy answers
    // only (20-80 ms), never behind a hanging one, which would hold a permit for its patience
    // (at least SUSPECT_AFTER).
    let mut worst = (Duration::ZERO, String::new());
    for c in &healthy {
        let ph = phase(&c.name, schedule.interval);
        for call in calls_of(&fake, &c.name) {
            let since = call - start;
            let k = since.saturating_sub(ph).as_nanos() / schedule.interval.as_nanos();
            if k == 0 {
                continue;
            }
            let lag = since - (ph + schedule.interval * k as u32);
            if lag > worst.0 {
                worst = (lag, c.name.clone());
            }
        }
    }
    assert!(
        worst.0 < budget::SUSPECT_AFTER,
        "{} started {:?} after its slot",
        worst.1,
        worst.0
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
    // The burst of 10, then 1 per second for the 20 s: exactly that, never more.
    assert_eq!(upstream, 10 + 20, "upstream calls");
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
