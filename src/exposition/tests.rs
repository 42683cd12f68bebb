//! The exposition as a scraper reads it: every family, its labels and values, gzip.

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::proto::MetricType;
use tokio::time::Instant;

use super::families::*;
use super::*;
use crate::config::Config;
use crate::credentials::{Credentials, Found, Keyring, Origin, StatusBoard};
use crate::ncp::precheck::Precheck;
use crate::ncp::region::Region;
use crate::ncp::usage::{ApiUsage, Operation};
use crate::outcome::Outcome;
use crate::reload::Live;
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
        meta: crate::ncp::client::CallMeta {
            latency,
            request_id: None,
            retry_after: None,
            clock_skew: None,
            ..Default::default()
        },
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
        meta: crate::ncp::client::CallMeta {
            latency: Duration::from_millis(42),
            request_id: None,
            retry_after: None,
            clock_skew: Some(-1.5),
            ..Default::default()
        },
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
        diagnosis(r#"{"code":0,"result":{"zookeeperNumber":2,"brokerStatus":"Orange"}}"#),
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

/// A registry of `metrics`, scraped once as text.
async fn scrape(metrics: Metrics) -> String {
    let e = Exposition::new(metrics).unwrap();
    let (body, encoding) = e.encode(Encoding::Identity).await.unwrap();
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
    let live = Arc::new(std::sync::RwLock::new(Live {
        interval,
        gate: crate::config::GateConfig {
            max_age: interval * 2,
            min_fresh_interval: interval,
            fresh_budget: crate::config::FreshBudget::default(),
        },
    }));
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

#[tokio::test]
async fn every_family_with_its_help_type_labels_and_values() {
    let s = Arc::new(every_family_state());
    let (metrics, _, _) = every_family_metrics(s);
    let text = scrape(metrics).await;
    for f in ALL {
        let kind = format!("{:?}", f.kind).to_lowercase();
        assert!(
            text.contains(&format!("# TYPE {} {kind}\n", f.name)),
            "{} is not covered",
            f.name
        );
        assert!(text.contains(&format!("# HELP {} {}\n", f.name, f.help)));
        assert_eq!(
            f.kind == MetricType::COUNTER,
            f.name.ends_with("_total"),
            "{}",
            f.name
        );
    }
    for line in [
        "cdss_precheck_failures_total{cluster=\"c-000\",region=\"KR\",reason=\"timeout\"} 1",
        "cdss_precheck_ok{cluster=\"c-011\",region=\"SGN\"} 0",
        "cdss_precheck_runs_total{cluster=\"c-011\",region=\"SGN\"} 0",
        "cdss_precheck_duration_seconds{cluster=\"c-000\",region=\"KR\"} 0.001234",
        "cdss_precheck_last_error_code{cluster=\"c-005\",region=\"KR\"} -1",
        "cdss_precheck_last_run_timestamp_seconds{cluster=\"c-005\",region=\"KR\"} 1754000000.158",
        "cdss_precheck_schedule_lag_seconds{cluster=\"c-003\",region=\"GOV\"} 1.25",
        "cdss_cluster_info{cluster=\"c-000\",region=\"KR\",service_group_instance_no=\"1\"} 1",
        "cdss_cluster_brokers{cluster=\"c-001\",region=\"SGN\"} 3",
        "cdss_cluster_role_status{cluster=\"c-001\",region=\"SGN\",role=\"cmak\",status=\"purple\"} 1",
        "cdss_cluster_node_status{cluster=\"c-001\",region=\"SGN\",role=\"broker\",hostname=\"kafka-\\\"2\\\"\",status=\"red\",failing=\"true\"} 1",
        "cdss_cluster_node_status{cluster=\"c-001\",region=\"SGN\",role=\"broker\",hostname=\"kafka-3\",status=\"\",failing=\"true\"} 1",
        "cdss_cluster_status_last_read_timestamp_seconds{cluster=\"c-001\",region=\"SGN\"} 1754000000.5",
        "cdss_cluster_zookeepers_up{cluster=\"c-002\",region=\"JPN\"} 2",
        "cdss_cluster_changing{cluster=\"c-002\",region=\"JPN\"} 1",
        "cdss_cluster_changing_since_timestamp_seconds{cluster=\"c-002\",region=\"JPN\"} 1754000001",
        "cdss_cluster_changing{cluster=\"c-001\",region=\"SGN\"} 0",
        "cdss_cluster_changing{cluster=\"c-011\",region=\"SGN\"} 0",
        "cdss_discovery_clusters{region=\"KR\"} 5",
        "cdss_discovery_failures_total{region=\"SGN\"} 1",
        "cdss_exporter_api_requests_total{account=\"default\",operation=\"precheck\",result=\"ok\"} 2",
        "cdss_exporter_api_requests_total{account=\"prod-1\",operation=\"cluster_list\",result=\"auth_error\"} 1",
        "cdss_exporter_credentials_expiry_timestamp_seconds{account=\"prod\"} 1796180400.25",
        "cdss_exporter_credentials_refresh_failures_total{account=\"prod\"} 0",
        "cdss_exporter_clock_skew_seconds -1.5",
        "cdss_exporter_clusters 12",
        "cdss_exporter_first_round_complete 0",
        "cdss_exporter_config_last_reload_successful 1",
        "cdss_exporter_precheck_interval_seconds 20",
        "cdss_exporter_build_info{revision=\"odd \\\"rev\\\\ision\\\"\\nline\",version=\"1.2.3\"} 1",
    ] {
        assert!(
            text.contains(&format!("\n{line}\n")),
            "{line} missing from\n{text}"
        );
    }
    // c-001 lists four brokers, one without a hostname: no series for it (two would be one).
    let brokers = text
        .matches("cdss_cluster_node_status{cluster=\"c-001\",region=\"SGN\",role=\"broker\"")
        .count();
    assert_eq!(brokers, 3);
    // SGN's discovery never listed: its failures show, but no count (never listed is not 0).
    assert!(!text.contains("cdss_discovery_clusters{region=\"SGN\"}"));
    assert!(!text.contains("cdss_discovery_last_success_timestamp_seconds{region=\"SGN\"}"));
    // Only the changing cluster has a start; a red role (c-001) is not a change.
    assert_eq!(
        text.matches("\ncdss_cluster_changing_since_timestamp_seconds{")
            .count(),
        1
    );
}

/// The families names in an exposition, without the process collector's.
fn family_names(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .filter(|n| !n.starts_with("process_"))
        .collect()
}

#[tokio::test]
async fn families_without_samples_are_left_out() {
    let text = scrape(Metrics::new(Arc::new(state(0)), BuildInfo::current())).await;
    assert_eq!(
        family_names(&text),
        [
            "cdss_exporter_build_info",
            "cdss_exporter_clusters",
            "cdss_exporter_config_last_reload_success_timestamp_seconds",
            "cdss_exporter_config_last_reload_successful",
            "cdss_exporter_first_round_complete",
        ]
    );
    assert!(text.contains("\ncdss_exporter_clusters 0\n"));
    // Never checked: only ok 0 and runs 0, and the cluster's info.
    let text = scrape(Metrics::new(Arc::new(state(1)), BuildInfo::current())).await;
    assert_eq!(
        family_names(&text)
            .into_iter()
            .filter(|n| !n.starts_with("cdss_exporter_"))
            .collect::<Vec<_>>(),
        [
            "cdss_cluster_changing",
            "cdss_cluster_info",
            "cdss_precheck_ok",
            "cdss_precheck_runs_total"
        ]
    );
    assert!(text.contains("\ncdss_cluster_changing{cluster=\"c-000\",region=\"KR\"} 0\n"));
    assert!(text.contains("\ncdss_precheck_ok{cluster=\"c-000\",region=\"KR\"} 0\n"));
}

#[tokio::test(start_paused = true)]
async fn gzip_is_the_same_text_and_a_change_shows_at_once() {
    let s = Arc::new(varied_state());
    let e = Exposition::new(Metrics::new(s.clone(), BuildInfo::current())).unwrap();
    let (plain, _) = e.encode(Encoding::Identity).await.unwrap();
    let (gz, encoding) = e.encode(Encoding::Gzip).await.unwrap();
    assert_eq!(encoding, Encoding::Gzip);
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    let plain = String::from_utf8(plain.to_vec()).unwrap();
    // The process collector's values may move between two scrapes; the rest may not.
    assert_eq!(sorted_lines(&unzipped), sorted_lines(&plain));
    assert!(
        gz.len() * 4 < plain.len(),
        "{} vs {}",
        gz.len(),
        plain.len()
    );

    assert!(plain.contains("\ncdss_precheck_ok{cluster=\"c-005\",region=\"KR\"} 0\n"));
    record(&s, "c-005", Outcome::Ready, Duration::from_millis(3), 5);
    // A scrape after the change gets a render that began after it arrived.
    let (after, _) = e.encode(Encoding::Identity).await.unwrap();
    let after = String::from_utf8(after.to_vec()).unwrap();
    assert!(after.contains("\ncdss_precheck_ok{cluster=\"c-005\",region=\"KR\"} 1\n"));
}

#[tokio::test]
#[cfg(target_os = "linux")]
async fn the_process_families_are_on_the_same_registry() {
    // Two registries side by side: nothing is global.
    let _other = Exposition::new(Metrics::new(Arc::new(state(1)), BuildInfo::current())).unwrap();
    let text = scrape(Metrics::new(Arc::new(state(1)), BuildInfo::current())).await;
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            text.contains(&format!("\n{name} ")),
            "{name} missing from\n{text}"
        );
    }
}
