//! The exposition as a scraper reads it: every family, its labels and values, gzip.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};
use tokio::time::Instant;

use super::families::*;
use super::*;
use crate::config::Config;
use crate::credentials::keyring::AccountStatus;
use crate::credentials::{Credentials, Found, Keyring, Origin, StatusBoard};
use crate::ncp::precheck::Precheck;
use crate::ncp::region::Region;
use crate::ncp::usage::{ApiUsage, Operation};
use crate::outcome::{FailureReason, Outcome};
use crate::reload::{Live, LiveSettings};
use crate::state::State;

fn state(n: usize) -> State {
    if n == 0 {
        return State::new(&[]);
    }
    let mut yaml = String::from("clusters:\n");
    let regions = ["KR", "SGN", "JPN", "GOV", "FIN"];
    for i in 0..n {
        yaml.push_str(&format!(
            "  - {{name: c-{i:03}, region: {}, service_group_instance_no: {}}}\n",
            regions[i % 5],
            i + 1
        ));
    }
    State::new(&Config::parse(&yaml, Path::new("t")).unwrap().clusters)
}

fn record(s: &State, name: &str, outcome: Outcome, latency: Duration, wall_ms: u64) {
    let p = Precheck {
        outcome,
        latency,
        request_id: None,
        retry_after: None,
        clock_skew: None,
    };
    let wall = UNIX_EPOCH + Duration::from_millis(wall_ms);
    assert!(s.record(name, &p, Instant::now(), wall));
}

/// Every kind of outcome, several failure reasons on one cluster, and a never-checked one.
fn varied_state() -> State {
    let s = state(12);
    let outcomes = [
        Outcome::Ready,
        Outcome::NotReady,
        Outcome::ApiError {
            http_status: 400,
            code: 3,
            message: "Invalid".into(),
        },
        Outcome::GatewayError {
            http_status: 401,
            code: Some(200),
            message: "Authentication Failed".into(),
        },
        Outcome::GatewayError {
            http_status: 429,
            code: Some(420),
            message: "Rate Limited".into(),
        },
        Outcome::GatewayError {
            http_status: 503,
            code: None,
            message: "?".into(),
        },
        Outcome::HttpError {
            http_status: 500,
            detail: "html".into(),
        },
        Outcome::InvalidResponse {
            http_status: 200,
            detail: "x".into(),
        },
        Outcome::BodyTooLarge { limit: 1 },
        Outcome::Timeout {
            after: Duration::from_secs(10),
        },
        Outcome::ConnectionError {
            detail: "refused".into(),
        },
    ];
    for (i, o) in outcomes.into_iter().enumerate() {
        let latency = Duration::from_nanos(1 + 987_654_321 * i as u64);
        record(
            &s,
            &format!("c-{i:03}"),
            o,
            latency,
            1_754_000_000_123 + 7 * i as u64,
        );
    }
    // c-000 fails twice more, in two ways, and then is ready again.
    record(
        &s,
        "c-000",
        Outcome::BodyTooLarge { limit: 1 },
        Duration::ZERO,
        1,
    );
    let timeout = Outcome::Timeout {
        after: Duration::from_millis(1500),
    };
    record(&s, "c-000", timeout, Duration::from_millis(1500), 2);
    record(
        &s,
        "c-000",
        Outcome::Ready,
        Duration::from_micros(1234),
        1_754_000_001_999,
    );
    s
}

/// A state in which every family has samples.
fn every_family_state() -> State {
    let s = varied_state();
    s.expect_discovery(vec![
        "KR/default".into(),
        "KR/prod".into(),
        "SGN/default".into(),
    ]);
    s.record_discovery("KR/default", Region::Kr, Ok(3));
    s.record_discovery("KR/prod", Region::Kr, Err(()));
    s.record_discovery("KR/prod", Region::Kr, Ok(2));
    s.record_discovery("SGN/default", Region::Sgn, Err(()));
    let p = Precheck {
        outcome: Outcome::Ready,
        latency: Duration::from_millis(42),
        request_id: None,
        retry_after: None,
        clock_skew: Some(-1.5),
    };
    assert!(s.record("c-001", &p, Instant::now(), SystemTime::now()));
    record(&s, "c-002", Outcome::NotReady, Duration::from_millis(7), 9);
    let diagnosis =
        |json: &str| crate::ncp::cluster_status::decode_answer(200, json.as_bytes()).unwrap();
    s.record_diagnosis(
        "c-001",
        diagnosis(
            r#"{"code":0,"result":{"brokerNodeTotalNumber":3,"brokerNumber":2,"brokerStatus":"red","brokerStatusPerNode":[{"hostname":"kafka-1","status":"green"},{"hostname":"kafka-\"2\"","status":"red"},{"hostname":"kafka-3"},{"status":"red"}],"zookeeperTotalNumber":3,"zookeeperNumber":3,"zookeeperStatus":"green","cmakStatus":"purple"}}"#,
        ),
        UNIX_EPOCH + Duration::from_millis(1_754_000_000_500),
    );
    s.record_diagnosis(
        "c-002",
        diagnosis(r#"{"code":0,"result":{"zookeeperNumber":2}}"#),
        UNIX_EPOCH + Duration::from_secs(1_754_000_001),
    );
    let late = Duration::from_millis(1250);
    assert!(s.record_run("c-003", &p, Instant::now(), SystemTime::now(), Some(late)));
    assert!(s.record_run(
        "c-004",
        &p,
        Instant::now(),
        SystemTime::now(),
        Some(Duration::ZERO)
    ));
    s
}

/// One account with server role keys that expire, one with fixed keys.
fn role_and_fixed_keys() -> Keyring {
    let mut keyring = Keyring::from(Credentials {
        access_key: "AK".into(),
        secret_key: crate::secret::Secret::new("sk"),
    });
    let found = Found {
        credentials: Credentials {
            access_key: "ROLE-AK".into(),
            secret_key: crate::secret::Secret::new("role-sk"),
        },
        expires: Some(UNIX_EPOCH + Duration::from_millis(1_796_180_400_250)),
        origin: Origin::Role {
            name: "reader".into(),
            endpoint: "http://127.0.0.1:9".into(),
        },
    };
    keyring.insert("prod", found);
    keyring
}

/// The exposition as the `prometheus` crate's proto structs and `TextEncoder` write it, built
/// from the state without the renderer's code: every family of the catalogue.
fn reference(
    build: &BuildInfo,
    state: &State,
    interval: Option<Duration>,
    usage: Option<&ApiUsage>,
    credentials: Option<&StatusBoard>,
) -> String {
    fn label(name: &str, value: &str) -> LabelPair {
        let mut l = LabelPair::default();
        l.set_name(name.to_string());
        l.set_value(value.to_string());
        l
    }
    fn metric(f: &Family, labels: Vec<LabelPair>, value: f64) -> Metric {
        let mut m = Metric::from_label(labels);
        if f.kind == MetricType::COUNTER {
            let mut c = Counter::default();
            c.set_value(value);
            m.set_counter(c);
        } else {
            let mut g = Gauge::default();
            g.set_value(value);
            m.set_gauge(g);
        }
        m
    }
    let families = [
        &OK,
        &DURATION,
        &ERROR_CODE,
        &LAST_RUN,
        &LAST_SUCCESS,
        &RUNS,
        &SCHEDULE_LAG,
        &FAILURES,
        &CLUSTER_INFO,
    ];
    let unix = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let mut samples: Vec<Vec<Metric>> = vec![Vec::new(); families.len()];
    state.for_each(|s| {
        let labels = || {
            vec![
                label("cluster", &s.cluster.name),
                label("region", s.cluster.region.as_str()),
            ]
        };
        let ready = s.last.as_ref().is_some_and(|l| l.outcome.is_ready());
        samples[0].push(metric(&OK, labels(), if ready { 1.0 } else { 0.0 }));
        samples[5].push(metric(&RUNS, labels(), s.runs_total as f64));
        if let Some(lag) = s.schedule_lag {
            samples[6].push(metric(&SCHEDULE_LAG, labels(), lag.as_secs_f64()));
        }
        if let Some(last) = &s.last {
            let code = last.outcome.error_code() as f64;
            samples[1].push(metric(&DURATION, labels(), last.latency.as_secs_f64()));
            samples[2].push(metric(&ERROR_CODE, labels(), code));
            samples[3].push(metric(&LAST_RUN, labels(), unix(last.at_wall)));
        }
        if let Some(t) = s.last_success {
            samples[4].push(metric(&LAST_SUCCESS, labels(), unix(t)));
        }
        for reason in FailureReason::ALL {
            let n = s.failures[reason.index()];
            if n > 0 {
                let mut l = labels();
                l.push(label("reason", reason.as_str()));
                samples[7].push(metric(&FAILURES, l, n as f64));
            }
        }
        let d = s.cluster.info.clone().unwrap_or_default();
        let mut l = labels();
        l.push(label(
            "service_group_instance_no",
            &s.cluster.service_group_instance_no.to_string(),
        ));
        for (name, value) in [
            ("kafka_version", &d.kafka_version),
            ("status", &d.status),
            ("vpc_name", &d.vpc_name),
        ] {
            if !value.is_empty() {
                l.push(label(name, value));
            }
        }
        samples[8].push(metric(&CLUSTER_INFO, l, 1.0));
    });
    let clusters = samples[0].len() as f64;
    let ready = if state.is_ready() { 1.0 } else { 0.0 };
    let build_labels = vec![
        label("revision", build.revision),
        label("version", build.version),
    ];
    let mut all: Vec<(&Family, Vec<Metric>)> = families.into_iter().zip(samples).collect();
    // Discovery: one sample per region, blocks of one region added up.
    let mut regions: Vec<Region> = state.discovery().iter().map(|d| d.region).collect();
    regions.sort();
    regions.dedup();
    let per_region = |f: &Family, value: &dyn Fn(Region) -> Option<f64>| {
        regions
            .iter()
            .filter_map(|r| value(*r).map(|v| metric(f, vec![label("region", r.as_str())], v)))
            .collect::<Vec<_>>()
    };
    let blocks = |r: Region| state.discovery().into_iter().filter(move |d| d.region == r);
    all.push((
        &DISCOVERY_CLUSTERS,
        per_region(&DISCOVERY_CLUSTERS, &|r| {
            let listed = blocks(r).any(|d| d.last_success.is_some());
            listed.then(|| blocks(r).map(|d| d.clusters as f64).sum())
        }),
    ));
    all.push((
        &DISCOVERY_LAST_SUCCESS,
        per_region(&DISCOVERY_LAST_SUCCESS, &|r| {
            blocks(r).filter_map(|d| d.last_success).max().map(unix)
        }),
    ));
    all.push((
        &DISCOVERY_FAILURES,
        per_region(&DISCOVERY_FAILURES, &|r| {
            Some(blocks(r).map(|d| d.failures as f64).sum())
        }),
    ));
    // getClusterStatus, for the clusters whose status was read.
    let mut diag: Vec<Vec<Metric>> = vec![Vec::new(); 7];
    state.for_each(|s| {
        let Some((d, at)) = s.diagnosis.as_deref() else {
            return;
        };
        let labels = || {
            vec![
                label("cluster", &s.cluster.name),
                label("region", s.cluster.region.as_str()),
            ]
        };
        for (i, (f, v)) in [
            (&BROKERS_UP, d.brokers.up),
            (&BROKERS, d.brokers.total),
            (&ZOOKEEPERS_UP, d.zookeeper.up),
            (&ZOOKEEPERS, d.zookeeper.total),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(v) = v {
                diag[i].push(metric(f, labels(), v as f64));
            }
        }
        for (role, status) in [
            ("broker", &d.brokers.colour),
            ("zookeeper", &d.zookeeper.colour),
            ("cmak", &d.cmak),
        ] {
            if let Some(status) = status {
                let mut l = labels();
                l.push(label("role", role));
                l.push(label("status", status));
                diag[4].push(metric(&ROLE_STATUS, l, 1.0));
            }
        }
        for (role, r) in [("broker", &d.brokers), ("zookeeper", &d.zookeeper)] {
            for n in &r.nodes {
                let Some(hostname) = &n.hostname else {
                    continue;
                };
                let mut l = labels();
                l.push(label("role", role));
                l.push(label("hostname", hostname));
                l.push(label("status", n.status.as_deref().unwrap_or("")));
                l.push(label(
                    "failing",
                    if r.is_failing(n) { "true" } else { "false" },
                ));
                diag[5].push(metric(&NODE_STATUS, l, 1.0));
            }
        }
        diag[6].push(metric(&STATUS_READ, labels(), unix(*at)));
    });
    for f in [
        &BROKERS_UP,
        &BROKERS,
        &ZOOKEEPERS_UP,
        &ZOOKEEPERS,
        &ROLE_STATUS,
        &NODE_STATUS,
        &STATUS_READ,
    ]
    .into_iter()
    .zip(diag)
    .enumerate()
    {
        // Right after the per-cluster families, before discovery.
        all.insert(9 + f.0, (f.1.0, f.1.1));
    }
    let calls = usage.map(|u| u.snapshot()).unwrap_or_default();
    all.push((
        &API_REQUESTS,
        calls
            .iter()
            .map(|(account, op, result, n)| {
                let l = vec![
                    label("account", account),
                    label("operation", op.as_str()),
                    label("result", result),
                ];
                metric(&API_REQUESTS, l, *n as f64)
            })
            .collect(),
    ));
    let reload = state.reload();
    let reload_ok = if reload.successful { 1.0 } else { 0.0 };
    all.push((&RELOAD_OK, vec![metric(&RELOAD_OK, vec![], reload_ok)]));
    let reload_time = unix(reload.last_success);
    all.push((
        &RELOAD_TIME,
        vec![metric(&RELOAD_TIME, vec![], reload_time)],
    ));
    let accounts = credentials.map(StatusBoard::accounts).unwrap_or_default();
    let per_account = |f: &Family, value: &dyn Fn(&AccountStatus) -> Option<f64>| {
        accounts
            .iter()
            .filter_map(|a| value(a).map(|v| metric(f, vec![label("account", &a.account)], v)))
            .collect::<Vec<_>>()
    };
    all.push((
        &CREDENTIALS_EXPIRY,
        per_account(&CREDENTIALS_EXPIRY, &|a| a.expires.map(unix)),
    ));
    all.push((
        &CREDENTIALS_REFRESH_FAILURES,
        per_account(&CREDENTIALS_REFRESH_FAILURES, &|a| {
            a.refresh_failures.map(|n| n as f64)
        }),
    ));
    let skew = state.clock_skew().map(|s| metric(&CLOCK_SKEW, vec![], s));
    all.push((&CLOCK_SKEW, skew.into_iter().collect()));
    all.push((&CLUSTERS, vec![metric(&CLUSTERS, vec![], clusters)]));
    all.push((&READY, vec![metric(&READY, vec![], ready)]));
    let interval = interval.map(|i| metric(&INTERVAL, vec![], i.as_secs_f64()));
    all.push((&INTERVAL, interval.into_iter().collect()));
    all.push((&BUILD_INFO, vec![metric(&BUILD_INFO, build_labels, 1.0)]));
    let mfs: Vec<MetricFamily> = all
        .into_iter()
        .filter(|(_, m)| !m.is_empty())
        .map(|(f, m)| {
            let mut mf = MetricFamily::default();
            mf.set_name(f.name.to_string());
            mf.set_help(f.help.to_string());
            mf.set_field_type(if f.kind == MetricType::COUNTER {
                MetricType::COUNTER
            } else {
                MetricType::GAUGE
            });
            mf.set_metric(m);
            mf
        })
        .collect();
    let mut out = Vec::new();
    TextEncoder::new().encode(&mfs, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// A registry of `metrics`, scraped once as text.
fn scrape(metrics: Metrics) -> String {
    let (body, encoding) = Exposition::new(metrics)
        .unwrap()
        .encode(Encoding::Identity)
        .unwrap();
    assert_eq!(encoding, Encoding::Identity);
    String::from_utf8(body.to_vec()).unwrap()
}

/// The lines of an exposition without the process collector's, sorted (for comparing content
/// whatever the order).
fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains(" process_") && !l.starts_with("process_"))
        .collect();
    lines.sort_unstable();
    lines
}

fn odd_build() -> BuildInfo {
    BuildInfo {
        version: "1.2.3",
        revision: "odd \"rev\\ision\"\nline",
    }
}

/// Every family: the state, a running config's interval, API calls and keys.
fn every_family_metrics(state: Arc<State>) -> (Metrics, Arc<ApiUsage>, StatusBoard) {
    let interval = Duration::from_secs(20);
    let live = LiveSettings::new(Live {
        interval,
        gate: crate::config::GateConfig {
            max_age: interval * 2,
            min_fresh_interval: interval,
            fresh_budget: crate::config::FreshBudget::DEFAULT,
        },
    });
    let usage = Arc::new(ApiUsage::default());
    usage.count("default", Operation::Precheck, "ok");
    usage.count("default", Operation::Precheck, "ok");
    usage.count("default", Operation::Precheck, "timeout");
    usage.count("prod-1", Operation::ClusterList, "auth_error");
    let board = StatusBoard::default();
    board.show(&role_and_fixed_keys());
    let metrics = Metrics::new(state, odd_build())
        .with_live(live)
        .with_usage(usage.clone())
        .with_credentials(board.clone());
    (metrics, usage, board)
}

#[test]
fn same_content_as_the_hand_written_exposition() {
    let build = odd_build();
    for s in [state(0), state(3), varied_state(), state(1000)] {
        let expected = reference(&build, &s, None, None, None);
        let got = scrape(Metrics::new(Arc::new(s), build.clone()));
        assert_eq!(sorted_lines(&got), sorted_lines(&expected));
    }
    let s = Arc::new(every_family_state());
    let (metrics, usage, board) = every_family_metrics(s.clone());
    let got = scrape(metrics);
    let interval = Some(Duration::from_secs(20));
    let expected = reference(&build, &s, interval, Some(&usage), Some(&board));
    assert_eq!(sorted_lines(&got), sorted_lines(&expected));
    println!("{got}");
}
