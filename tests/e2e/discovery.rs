//! Discovery, several accounts and live reload, over loopback against the simulated gateway:
//! every page is read, filters apply, deleted clusters lose every series, an outage keeps the
//! set, and reloads (HTTP, SIGHUP, file change) apply good configs and refuse bad ones.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{
    ACCESS_KEY, FileHarness, Process, SECRET_KEY, exporter_command, metrics_until, series_of,
    start_sim, unix_now, value, value_plain, value_with,
};
use cdss_precheck_exporter::ncp::region::Region;
use cdss_precheck_exporter::secret::Secret;
use cdss_precheck_exporter::sim::{Behaviour, SimCluster, SimGateway};

const HEAD: &str = "interval: 2s\ntimeout: 1s\ncredentials:\n  access_key_file: '{dir}/ak'\n  secret_key_file: '{dir}/sk'\napi_gateway: '{gateway}'\n";

async fn sim_with(clusters: &[(u64, &str, Region, &str)]) -> SimGateway {
    let sim = start_sim(&[]).await;
    for (no, name, region, status) in clusters {
        let mut c = SimCluster::running(name, *region);
        c.status = status.to_string();
        sim.add_cluster(*no, c);
    }
    sim
}

fn ok_count(m: &str) -> usize {
    m.lines()
        .filter(|l| l.starts_with("cdss_precheck_ok{"))
        .count()
}

#[tokio::test]
async fn discovery_reads_every_page_once() {
    let names: Vec<String> = (1..=7).map(|i| format!("kafka-{i}")).collect();
    let mut specs: Vec<(u64, &str, Region, &str)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (100 + i as u64, n.as_str(), Region::Kr, "running"))
        .collect();
    specs.push((200, "singapore-1", Region::Sgn, "running"));
    let sim = sim_with(&specs).await;
    let yaml = format!("{HEAD}discovery:\n  - region: KR\n    refresh: 1m\n    page_size: 2\n");
    let h = FileHarness::start(sim, &yaml, None).await;
    h.inner.wait_ready(Duration::from_secs(10)).await;
    let m = h.inner.metrics().await;
    for n in &names {
        let lines: Vec<&str> = m
            .lines()
            .filter(|l| l.starts_with(&format!("cdss_precheck_ok{{cluster=\"{n}\",")))
            .collect();
        assert_eq!(
            lines,
            [format!(
                "cdss_precheck_ok{{cluster=\"{n}\",region=\"KR\"}} 1"
            )],
            "{n}\n{m}"
        );
    }
    assert_eq!(
        ok_count(&m),
        7,
        "the SGN cluster is not listed by a KR block\n{m}"
    );
    assert_eq!(
        h.inner.sim.list_calls(),
        4,
        "7 clusters at 2 per page is 4 pages"
    );
    assert_eq!(
        value_with(&m, "cdss_discovery_clusters", "region=\"KR\""),
        Some(7.0),
        "{m}"
    );
    assert!(
        value_with(
            &m,
            "cdss_discovery_last_success_timestamp_seconds",
            "region=\"KR\""
        )
        .is_some()
    );
    assert!(
        m.contains("cdss_cluster_info{cluster=\"kafka-1\",region=\"KR\",service_group_instance_no=\"100\",kafka_version=\"3.5.1\",status=\"running\",vpc_name=\"prod-vpc\"} 1"),
        "{m}"
    );
    h.inner.stop().await;
}

#[tokio::test]
async fn filters_apply() {
    let sim = sim_with(&[
        (1, "orders-a", Region::Kr, "running"),
        (2, "orders-tmp", Region::Kr, "running"),
        (3, "payments", Region::Kr, "running"),
        (4, "orders-b", Region::Kr, "deleting"),
        (5, "orders-c", Region::Kr, "changing"),
    ])
    .await;
    let yaml = format!(
        "{HEAD}discovery:\n  - region: KR\n    name_regex: '^orders-'\n    exclude_regex: '-tmp$'\n"
    );
    let h = FileHarness::start(sim, &yaml, None).await;
    h.inner.wait_ready(Duration::from_secs(10)).await;
    let m = h.inner.metrics().await;
    assert!(value(&m, "cdss_precheck_ok", "orders-a").is_some());
    assert!(
        value(&m, "cdss_precheck_ok", "orders-c").is_some(),
        "changing is kept by default"
    );
    for gone in ["orders-tmp", "payments", "orders-b"] {
        assert!(
            series_of(&m, gone).is_empty(),
            "{gone} should be filtered out\n{m}"
        );
    }
    // The baseline is read before the reload, and after two runs: a reset to zero followed by
    // the new series' first run would read 1, below it.
    let before = metrics_until(
        &h.inner,
        Duration::from_secs(15),
        "orders-a to have run twice",
        |m| value(m, "cdss_precheck_runs_total", "orders-a").is_some_and(|v| v >= 2.0),
    )
    .await;
    let runs_a = value(&before, "cdss_precheck_runs_total", "orders-a").unwrap();
    // statuses: [running] drops the changing one too.
    h.write_config(&format!(
        "{HEAD}discovery:\n  - region: KR\n    name_regex: '^orders-'\n    statuses: [running]\n"
    ));
    assert_eq!(h.reload().await.0, 200);
    let right_after = h.inner.metrics().await;
    assert!(
        value(&right_after, "cdss_precheck_runs_total", "orders-a").is_some_and(|v| v >= runs_a),
        "orders-a was reset by the reload (before: {runs_a})\n{right_after}"
    );
    let m = metrics_until(
        &h.inner,
        Duration::from_secs(5),
        "orders-c to go, orders-tmp to come",
        |m| {
            series_of(m, "orders-c").is_empty()
                && value(m, "cdss_precheck_ok", "orders-tmp").is_some()
        },
    )
    .await;
    // orders-a passed both filters: it kept its series, with no reset.
    assert!(
        value(&m, "cdss_precheck_runs_total", "orders-a").unwrap() >= runs_a,
        "{m}"
    );
    h.inner.stop().await;
}

#[tokio::test]
async fn deleted_cluster_loses_every_series_and_an_outage_keeps_the_set() {
    let sim = sim_with(&[
        (1, "keep", Region::Kr, "running"),
        (2, "doomed", Region::Kr, "running"),
    ])
    .await;
    sim.set_behaviour(2, Behaviour::Http500Html);
    let yaml = format!("{HEAD}discovery:\n  - region: KR\n    refresh: 1s\n");
    let h = FileHarness::start(sim, &yaml, None).await;
    h.inner.wait_ready(Duration::from_secs(10)).await;
    let m = h.inner.metrics().await;
    assert!(
        series_of(&m, "doomed").len() >= 5,
        "doomed has series, failures included:\n{m}"
    );

    h.inner.sim.remove_cluster(2);
    let m = metrics_until(&h.inner, Duration::from_secs(5), "doomed to vanish", |m| {
        series_of(m, "doomed").is_empty()
    })
    .await;
    assert_eq!(value(&m, "cdss_precheck_ok", "keep"), Some(1.0));
    assert_eq!(
        value_with(&m, "cdss_discovery_clusters", "region=\"KR\""),
        Some(1.0)
    );

    // An outage: listings fail, the set stays, failures are counted.
    h.inner.sim.set_list_failure(Some(Behaviour::Http500Html));
    let m = metrics_until(
        &h.inner,
        Duration::from_secs(5),
        "a discovery failure",
        |m| {
            value_with(m, "cdss_discovery_failures_total", "region=\"KR\"")
                .is_some_and(|v| v >= 2.0)
        },
    )
    .await;
    assert_eq!(
        value(&m, "cdss_precheck_ok", "keep"),
        Some(1.0),
        "the last known set is kept"
    );
    // Recovery picks up changes again.
    h.inner.sim.set_list_failure(None);
    h.inner
        .sim
        .add_cluster(3, SimCluster::running("newcomer", Region::Kr));
    metrics_until(&h.inner, Duration::from_secs(5), "newcomer", |m| {
        value(m, "cdss_precheck_ok", "newcomer") == Some(1.0)
    })
    .await;
    h.inner.stop().await;
}

#[tokio::test]
async fn two_accounts_with_different_secrets() {
    let sim = sim_with(&[(1, "dev-kafka", Region::Sgn, "running")]).await;
    sim.add_account("DEV-AK", Secret::new("dev-secret-entirely-different"));
    sim.set_behaviour(50, Behaviour::Ready);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dev_ak"), "DEV-AK\n").unwrap();
    std::fs::write(dir.path().join("dev_sk"), "dev-secret-entirely-different\n").unwrap();
    let d = dir.path().display();
    let yaml = format!(
        "{HEAD}accounts:\n  dev: {{access_key_file: '{d}/dev_ak', secret_key_file: '{d}/dev_sk'}}\nclusters:\n  - {{name: prod-kafka, region: KR, service_group_instance_no: 50}}\ndiscovery:\n  - {{region: SGN, account: dev}}\n"
    );
    let h = FileHarness::start(sim, &yaml, None).await;
    h.inner.wait_ready(Duration::from_secs(10)).await;
    let m = h.inner.metrics().await;
    assert_eq!(
        value(&m, "cdss_precheck_ok", "prod-kafka"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(value(&m, "cdss_precheck_ok", "dev-kafka"), Some(1.0), "{m}");
    assert_eq!(h.inner.sim.auth_failures(), 0);
    h.inner.stop().await;
}

#[tokio::test]
async fn http_reload_applies_good_configs_and_refuses_bad_ones() {
    let sim = start_sim(&[
        ("a", "KR", 1, Some(Behaviour::Ready)),
        ("b", "KR", 2, Some(Behaviour::Ready)),
    ])
    .await;
    let two = format!(
        "{HEAD}clusters:\n  - {{name: a, region: KR, service_group_instance_no: 1}}\n  - {{name: b, region: KR, service_group_instance_no: 2}}\n"
    );
    let h = FileHarness::start(sim, &two, None).await;
    h.inner.wait_ready(Duration::from_secs(5)).await;
    let m = h.inner.metrics().await;
    assert!(
        m.contains("cdss_exporter_config_last_reload_successful 1"),
        "{m}"
    );

    assert_eq!(
        h.inner
            .http
            .get(h.inner.url("/-/reload"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        405
    );

    // A broken file: 500 with the error, nothing changes, the metric says 0.
    h.write_config(&format!(
        "{HEAD}clusters:\n  - {{name: a, region: Mars, service_group_instance_no: 1}}\n"
    ));
    let (status, body) = h.reload().await;
    assert_eq!(status, 500);
    assert!(
        body.contains("config.yaml:8:") && body.contains("Mars"),
        "{body}"
    );
    // Polled: the exposition may serve its last body for a render's cool-down.
    let m = metrics_until(&h.inner, Duration::from_secs(5), "the failed reload", |m| {
        m.contains("cdss_exporter_config_last_reload_successful 0")
    })
    .await;
    let runs_b = value(&m, "cdss_precheck_runs_total", "b").unwrap();
    metrics_until(
        &h.inner,
        Duration::from_secs(5),
        "b still prechecked",
        |m| value(m, "cdss_precheck_runs_total", "b").is_some_and(|v| v > runs_b),
    )
    .await;

    // Missing credentials in the new file are refused too.
    h.write_config(&format!("{HEAD}accounts:\n  x: {{access_key_file: /nonexistent/ak, secret_key_file: /nonexistent/sk}}\nclusters:\n  - {{name: a, region: KR, service_group_instance_no: 1, account: x}}\n"));
    let (status, body) = h.reload().await;
    assert_eq!(status, 500);
    assert!(body.contains("/nonexistent/ak"), "{body}");
    assert!(
        value(&h.inner.metrics().await, "cdss_precheck_ok", "b").is_some(),
        "b is still there"
    );

    // A good file: b goes (every series at once), c comes, a keeps its counters.
    let runs_a = value(&h.inner.metrics().await, "cdss_precheck_runs_total", "a").unwrap();
    h.inner.sim.set_behaviour(3, Behaviour::Ready);
    h.write_config(&format!("{HEAD}clusters:\n  - {{name: a, region: KR, service_group_instance_no: 1}}\n  - {{name: c, region: SGN, service_group_instance_no: 3}}\n"));
    let (status, body) = h.reload().await;
    assert_eq!((status, body.as_str()), (200, "configuration reloaded\n"));
    let m = metrics_until(&h.inner, Duration::from_secs(5), "the good reload", |m| {
        m.contains("cdss_exporter_config_last_reload_successful 1") && !series_of(m, "c").is_empty()
    })
    .await;
    assert!(series_of(&m, "b").is_empty(), "b left series behind:\n{m}");
    assert!(m.contains("cdss_exporter_config_last_reload_successful 1"));
    assert!(
        value(&m, "cdss_precheck_runs_total", "a").unwrap() >= runs_a,
        "a kept its state"
    );
    metrics_until(&h.inner, Duration::from_secs(5), "c checked", |m| {
        value(m, "cdss_precheck_ok", "c") == Some(1.0)
    })
    .await;
    h.inner.stop().await;
}

#[tokio::test]
async fn auto_reload_follows_file_changes() {
    let sim = start_sim(&[
        ("a", "KR", 1, Some(Behaviour::Ready)),
        ("z", "KR", 26, Some(Behaviour::Ready)),
    ])
    .await;
    let one =
        format!("{HEAD}clusters:\n  - {{name: a, region: KR, service_group_instance_no: 1}}\n");
    let h = FileHarness::start(sim, &one, Some(Duration::from_millis(200))).await;
    h.inner.wait_ready(Duration::from_secs(5)).await;
    h.write_config(&format!(
        "{one}  - {{name: z, region: KR, service_group_instance_no: 26}}\n"
    ));
    metrics_until(
        &h.inner,
        Duration::from_secs(5),
        "z after the file changed",
        |m| value(m, "cdss_precheck_ok", "z") == Some(1.0),
    )
    .await;
    h.inner.stop().await;
}

#[tokio::test]
async fn sighup_reloads_the_real_binary() {
    let sim = start_sim(&[
        ("a", "KR", 1, Some(Behaviour::Ready)),
        ("b", "KR", 2, Some(Behaviour::Ready)),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let one = format!(
        "interval: 2s\ntimeout: 1s\napi_gateway: {}\nclusters:\n  - {{name: a, region: KR, service_group_instance_no: 1}}\n",
        sim.url()
    );
    std::fs::write(&config, &one).unwrap();
    let p = Process::spawn(exporter_command(&[
        "--config.file",
        config.to_str().unwrap(),
        "--web.listen-address",
        "127.0.0.1:0",
    ]));
    p.metrics_until(Duration::from_secs(5), "a", |m| {
        value(m, "cdss_precheck_ok", "a") == Some(1.0)
    })
    .await;
    std::fs::write(
        &config,
        format!("{one}  - {{name: b, region: KR, service_group_instance_no: 2}}\n"),
    )
    .unwrap();
    p.signal("HUP");
    let m = p
        .metrics_until(Duration::from_secs(5), "b after SIGHUP", |m| {
            value(m, "cdss_precheck_ok", "b") == Some(1.0)
        })
        .await;
    assert!(m.contains("cdss_exporter_config_last_reload_successful 1"));
    let (code, logs) = p.terminate();
    assert_eq!(code, Some(0));
    assert!(logs.contains("received SIGHUP"), "{logs}");
}

/// README, reload: unchanged clusters keep their series with no gap, a new `interval` applies,
/// removed clusters go, added ones come, the reload timestamp moves, and a key file that became
/// readable by others is warned about on reload too. The real binary, so its log is seen.
#[tokio::test]
async fn reload_keeps_unchanged_clusters_applies_interval_and_warns_on_readable_keys() {
    let sim = start_sim(&[
        ("a", "KR", 1, Some(Behaviour::Ready)),
        ("b", "KR", 2, Some(Behaviour::Ready)),
        ("c", "KR", 3, Some(Behaviour::Ready)),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::write(dir.path().join("ak"), ACCESS_KEY).unwrap();
    let sk = dir.path().join("sk");
    std::fs::write(&sk, SECRET_KEY).unwrap();
    std::process::Command::new("chmod")
        .arg("600")
        .arg(&sk)
        .status()
        .unwrap();
    let config = dir.path().join("config.yaml");
    let yaml = |interval: &str, concurrency: u32, clusters: &[(&str, u64)]| {
        let mut y = format!(
            "interval: {interval}\ntimeout: 500ms\nconcurrency: {concurrency}\napi_gateway: {}\ncredentials:\n  access_key_file: '{d}/ak'\n  secret_key_file: '{d}/sk'\nclusters:\n",
            sim.url()
        );
        for (name, no) in clusters {
            y.push_str(&format!(
                "  - {{name: {name}, region: KR, service_group_instance_no: {no}}}\n"
            ));
        }
        y
    };
    std::fs::write(&config, yaml("3s", 2, &[("a", 1), ("b", 2)])).unwrap();
    let p = Process::spawn(exporter_command(&[
        "--config.file",
        config.to_str().unwrap(),
        "--web.listen-address",
        "127.0.0.1:0",
    ]));
    let before = p
        .metrics_until(Duration::from_secs(30), "a twice, b once", |m| {
            // Two runs of a: a reset and the new series' first run would read 1, below it.
            value(m, "cdss_precheck_runs_total", "a").is_some_and(|v| v >= 2.0)
                && value(m, "cdss_precheck_ok", "b") == Some(1.0)
        })
        .await;
    assert_eq!(
        value_plain(&before, "cdss_exporter_precheck_interval_seconds"),
        Some(3.0)
    );
    let loaded = value_plain(
        &before,
        "cdss_exporter_config_last_reload_success_timestamp_seconds",
    )
    .unwrap_or_else(|| panic!("start-up counts as a load:\n{before}"));
    assert!(
        (unix_now() - loaded).abs() < 60.0,
        "start-up load at {loaded}"
    );
    let runs_a = value(&before, "cdss_precheck_runs_total", "a").unwrap();
    let last_run_a = value(&before, "cdss_precheck_last_run_timestamp_seconds", "a").unwrap();

    // Whole seconds apart, so the reload timestamp must move.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::process::Command::new("chmod")
        .arg("644")
        .arg(&sk)
        .status()
        .unwrap();
    std::fs::write(&config, yaml("1s", 1, &[("a", 1), ("c", 3)])).unwrap();
    let reload_started = unix_now();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = http
        .post(format!("http://{}/-/reload", p.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());

    // Right after the reload: a is unchanged and kept everything (no gap, no reset), b is gone.
    let m = p.get("/metrics").await;
    assert!(
        value(&m, "cdss_precheck_runs_total", "a").is_some_and(|v| v >= runs_a),
        "a was reset (runs were {runs_a})\n{m}"
    );
    assert!(
        value(&m, "cdss_precheck_last_run_timestamp_seconds", "a").is_some_and(|v| v >= last_run_a),
        "{m}"
    );
    assert_eq!(value(&m, "cdss_precheck_ok", "a"), Some(1.0), "{m}");
    assert!(series_of(&m, "b").is_empty(), "b was removed\n{m}");
    assert_eq!(
        value_plain(&m, "cdss_exporter_precheck_interval_seconds"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value_plain(&m, "cdss_exporter_config_last_reload_successful"),
        Some(1.0)
    );
    let reloaded = value_plain(
        &m,
        "cdss_exporter_config_last_reload_success_timestamp_seconds",
    )
    .unwrap();
    assert!(
        reloaded > loaded && reloaded >= reload_started.floor() - 1.0,
        "reload at {reloaded}, start-up at {loaded}, asked at {reload_started}"
    );
    let m = p
        .metrics_until(Duration::from_secs(20), "c added", |m| {
            value(m, "cdss_precheck_ok", "c") == Some(1.0)
        })
        .await;
    // The new interval in practice: four more calls for a take about 3 s at 1 s; at the old
    // 3 s they would take at least 9 s. 8 s leaves room for a loaded machine.
    let calls = sim.calls(1);
    let started = std::time::Instant::now();
    while sim.calls(1) < calls + 4 {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "a is not checked every second: {} calls in {:?}",
            sim.calls(1) - calls,
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last_run = value(&m, "cdss_precheck_last_run_timestamp_seconds", "a").unwrap();
    assert!(
        (unix_now() - last_run) < 30.0 && last_run >= last_run_a,
        "last run {last_run}"
    );
    let (code, logs) = p.terminate();
    assert_eq!(code, Some(0));
    assert!(logs.contains("configuration reloaded"), "{logs}");
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(" level=warn ") && l.contains("readable by other users"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning, from the reload (the file was 0600 at start):\n{logs}"
    );
}

/// A hand-written gateway for what the simulator cannot do. Its cluster list never says
/// `isLast`: three pages (`totalPage: 3`) of two clusters, and a trap page 4 that a lister
/// reading past `totalPage` would find. Prechecks answer ready after `delay`, and it counts how
/// many are in flight at once.
struct FakeGateway {
    url: String,
    pages: Arc<Mutex<Vec<u64>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

impl FakeGateway {
    async fn start(delay: Duration) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw = Self {
            url: format!("http://{}", listener.local_addr().unwrap()),
            pages: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
        };
        let (seen, in_flight, max) = (
            gw.pages.clone(),
            gw.in_flight.clone(),
            gw.max_in_flight.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (seen, in_flight, max) = (seen.clone(), in_flight.clone(), max.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head, body) = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).into_owned();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len: usize = head
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse().ok())?
                                })
                                .unwrap_or(0);
                            if body.len() >= len {
                                break (head.to_string(), body.to_string());
                            }
                        }
                    };
                    let answer = if head.contains("getClusterInfoList") {
                        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                        let page = v["pageNo"].as_u64().unwrap();
                        seen.lock().unwrap().push(page);
                        list_page(page)
                    } else {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(delay).await;
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        serde_json::json!({"code": 0, "message": "SUCCESS", "result": true})
                    }
                    .to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                        answer.len()
                    );
                    let _ = sock.write_all(response.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        gw
    }
}

/// Page `page` of three, without `isLast`; page 4 and on hold clusters no one should see.
fn list_page(page: u64) -> serde_json::Value {
    let clusters: Vec<serde_json::Value> = (0..2)
        .map(|i| {
            let name = if page <= 3 {
                format!("paged-{page}-{i}")
            } else {
                format!("beyond-{page}-{i}")
            };
            serde_json::json!({
                "serviceGroupInstanceNo": (page * 10 + i).to_string(),
                "clusterName": name,
                "serverStatus": "Running",
                "kafkaVersion": "3.5.1",
                "vpcName": "vpc"
            })
        })
        .collect();
    serde_json::json!({
        "code": 0,
        "message": "SUCCESS",
        "result": {
            "currentPage": page,
            "totalPage": 3,
            "totalCount": 6,
            "allowedClusters": clusters
        }
    })
}

/// README: paging stops on `totalPage` even when the gateway never sends `isLast`.
#[tokio::test]
async fn paging_ends_on_total_page_without_is_last() {
    let gw = FakeGateway::start(Duration::ZERO).await;
    let url = &gw.url;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "interval: 30s\ntimeout: 2s\napi_gateway: {url}\ndiscovery:\n  - region: KR\n    refresh: 1h\n    page_size: 2\n"
        ),
    )
    .unwrap();
    let p = Process::spawn(exporter_command(&[
        "--config.file",
        config.to_str().unwrap(),
        "--web.listen-address",
        "127.0.0.1:0",
    ]));
    let names: Vec<String> = (1..=3)
        .flat_map(|page| (0..2).map(move |i| format!("paged-{page}-{i}")))
        .collect();
    let m = p
        .metrics_until(Duration::from_secs(30), "six discovered clusters", |m| {
            names
                .iter()
                .all(|n| value(m, "cdss_precheck_ok", n) == Some(1.0))
        })
        .await;
    assert_eq!(
        value_with(&m, "cdss_discovery_clusters", "region=\"KR\""),
        Some(6.0),
        "{m}"
    );
    assert!(!m.contains("beyond-"), "read past totalPage:\n{m}");
    assert_eq!(*gw.pages.lock().unwrap(), [1, 2, 3]);
    assert_eq!(p.terminate().0, Some(0));
}

/// README, reload: a new `concurrency` applies. Four clusters whose prechecks take 1 s of a
/// 3 s interval: one at a time at `concurrency: 1`, several at once after a reload to 4. The
/// timeout (2.9 s) stays well clear of the answer time: a precheck that timed out on a loaded
/// machine would move its cluster to the suspect lane, which runs one at a time.
#[tokio::test]
async fn reload_applies_a_new_concurrency() {
    let gw = FakeGateway::start(Duration::from_secs(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let yaml = |concurrency: u32| {
        let mut y = format!(
            "interval: 3s\ntimeout: 2900ms\nconcurrency: {concurrency}\napi_gateway: {}\nclusters:\n",
            gw.url
        );
        for i in 1..=4 {
            y.push_str(&format!(
                "  - {{name: c{i}, region: KR, service_group_instance_no: {i}}}\n"
            ));
        }
        y
    };
    std::fs::write(&config, yaml(1)).unwrap();
    let p = Process::spawn(exporter_command(&[
        "--config.file",
        config.to_str().unwrap(),
        "--web.listen-address",
        "127.0.0.1:0",
    ]));
    // Several rounds' worth at concurrency 1: never two at once.
    p.metrics_until(Duration::from_secs(60), "three answers", |m| {
        (1..=4)
            .filter_map(|i| value(m, "cdss_precheck_runs_total", &format!("c{i}")))
            .sum::<f64>()
            >= 3.0
    })
    .await;
    assert_eq!(gw.max_in_flight.load(Ordering::SeqCst), 1);

    std::fs::write(&config, yaml(4)).unwrap();
    p.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while gw.max_in_flight.load(Ordering::SeqCst) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "still one precheck at a time after the reload to concurrency 4"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, logs) = p.terminate();
    assert_eq!(code, Some(0));
    assert!(logs.contains("configuration reloaded"), "{logs}");
}
