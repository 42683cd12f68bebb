//! `cdss-precheck-exporter check`, run as a subprocess as a pipeline would, against the simulated
//! gateway: every exit code, --json, --wait, Ctrl-C.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{ACCESS_KEY, SECRET_KEY, Spec, config_yaml, start_sim};
use cdss_precheck_exporter::ncp::region::Region;
use cdss_precheck_exporter::sim::{Behaviour, SimCluster, SimGateway};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cdss-precheck-exporter");

fn specs() -> Vec<Spec> {
    vec![
        ("orders", "KR", 10, Some(Behaviour::Ready)),
        ("payments", "SGN", 11, Some(Behaviour::NotReady)),
        ("legacy", "KR", 9_000_001, None),
        ("busy", "JPN", 12, Some(Behaviour::RateLimited(Some(1)))),
        ("analytics", "KR", 13, Some(Behaviour::Ready)),
    ]
}

struct Setup {
    sim: SimGateway,
    _dir: tempfile::TempDir,
    config: PathBuf,
}

async fn setup() -> Setup {
    let sim = start_sim(&specs()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        config_yaml(&sim.url(), "interval: 60s\ntimeout: 2s", &specs()),
    )
    .unwrap();
    Setup {
        sim,
        _dir: dir,
        config,
    }
}

fn command(config: &PathBuf, secret: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("check")
        .arg("--config.file")
        .arg(config)
        .args(args)
        .env("NCLOUD_ACCESS_KEY", ACCESS_KEY)
        .env("NCLOUD_SECRET_KEY", secret)
        .env_remove("RUST_LOG")
        // The key chain stays on this machine (no metadata API, no ~/.ncloud/configure).
        .env("NCLOUD_METADATA_API_ENDPOINT", "http://127.0.0.1:9")
        .env("HOME", "/nonexistent-home-for-tests")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

async fn check(s: &Setup, args: &[&str]) -> (i32, String, String) {
    let out = command(&s.config, SECRET_KEY, args).output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The table's rows as columns (split on white space; the message column is left joined), and
/// its last line, the verdict.
fn table(stdout: &str) -> (Vec<Vec<String>>, String) {
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 3, "{stdout}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "CLUSTER", "REGION", "VERDICT", "CODE", "LATENCY", "REQUEST", "ID", "MESSAGE"
        ],
        "{stdout}"
    );
    let rows = lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    (rows, lines[lines.len() - 1].to_string())
}

/// Cluster, region, verdict and code of each row.
fn verdicts(rows: &[Vec<String>]) -> Vec<[&str; 4]> {
    rows.iter()
        .map(|r| [r[0].as_str(), r[1].as_str(), r[2].as_str(), r[3].as_str()])
        .collect()
}

const GO: &str = "GO: every cluster is ready for a rolling restart";
const NO_GO: &str = "NO-GO: at least one cluster is not ready";
const UNKNOWN: &str = "UNKNOWN: no decision could be made (see messages)";

#[tokio::test]
async fn exit_codes_tell_no_from_could_not_ask() {
    let s = setup().await;
    let (code, stdout, stderr) = check(&s, &["--cluster", "orders"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("CLUSTER"), "{stdout}");
    let (rows, verdict) = table(&stdout);
    assert_eq!(
        verdicts(&rows),
        [["orders", "KR", "ready", "0"]],
        "{stdout}"
    );
    assert_eq!(verdict, GO, "{stdout}");

    let (code, stdout, _) = check(&s, &["--cluster", "payments"]).await;
    assert_eq!(code, 1, "not ready → 1\n{stdout}");
    let (rows, verdict) = table(&stdout);
    assert_eq!(
        verdicts(&rows),
        [["payments", "SGN", "not_ready", "0"]],
        "{stdout}"
    );
    assert_eq!(verdict, NO_GO, "{stdout}");

    let (code, stdout, _) = check(&s, &["--cluster", "legacy"]).await;
    assert_eq!(code, 1, "code 3 → 1\n{stdout}");
    assert!(
        stdout.contains("Invalid Service Group Instance No"),
        "{stdout}"
    );

    let (code, stdout, _) = check(&s, &["--cluster", "busy"]).await;
    assert_eq!(code, 2, "rate limited → 2\n{stdout}");

    // Several clusters: one not ready → 1 even if everything else is fine.
    let (code, _, _) = check(&s, &["--cluster", "orders", "--cluster", "payments"]).await;
    assert_eq!(code, 1);
    let (code, _, _) = check(&s, &["--cluster", "orders", "--cluster", "analytics"]).await;
    assert_eq!(code, 0);
    let (code, _, _) = check(&s, &["--all"]).await;
    assert_eq!(code, 1);

    // Every call was fresh: nothing is cached between runs.
    assert_eq!(s.sim.calls(10), 4);
}

#[tokio::test]
async fn wrong_secret_and_unreachable_gateway_are_2() {
    let s = setup().await;
    let out = command(&s.config, "wrong-secret", &["--cluster", "orders"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (rows, verdict) = table(&stdout);
    assert_eq!(
        verdicts(&rows),
        [["orders", "KR", "auth_error", "200"]],
        "{stdout}"
    );
    assert_eq!(verdict, UNKNOWN, "{stdout}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wrong-secret"));

    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        config_yaml(&format!("http://{addr}"), "timeout: 2s", &specs()),
    )
    .unwrap();
    let out = command(&config, SECRET_KEY, &["--cluster", "orders"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (rows, verdict) = table(&stdout);
    assert_eq!(
        verdicts(&rows),
        [["orders", "KR", "connection_error", "-1"]],
        "{stdout}"
    );
    assert_eq!(verdict, UNKNOWN, "{stdout}");
}

#[tokio::test]
async fn unknown_cluster_bad_config_and_missing_credentials_are_2() {
    let s = setup().await;
    let (code, _, stderr) = check(&s, &["--cluster", "nope"]).await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("\"nope\"") && stderr.contains("orders, payments, legacy, busy, analytics"),
        "{stderr}"
    );
    assert_eq!(
        s.sim.total_requests(),
        0,
        "an unknown name never reaches NCP"
    );
    // With --json, stdout is a report document even when nothing could be asked.
    let (code, stdout, _) = check(&s, &["--cluster", "nope", "--json"]).await;
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(v["exit_code"], 2, "{v}");
    assert_eq!(v["decision"], "unknown", "{v}");
    assert_eq!(v["ready"], false, "{v}");
    assert_eq!(v["clusters"], serde_json::json!([]), "{v}");
    assert!(v["error"].as_str().unwrap().contains("\"nope\""), "{v}");

    let out = command(&s.config, SECRET_KEY, &["--cluster", "orders"])
        .env_remove("NCLOUD_SECRET_KEY")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NCLOUD_SECRET_KEY"));
    let out = command(&s.config, SECRET_KEY, &["--cluster", "orders", "--json"])
        .env_remove("NCLOUD_SECRET_KEY")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("NCLOUD_SECRET_KEY"),
        "{v}"
    );

    let bad = s._dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "clusters:\n  - {name: a, region: XX, service_group_instance_no: 1}\n",
    )
    .unwrap();
    let out = command(&bad, SECRET_KEY, &["--all"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml:2:"));
}

#[tokio::test]
async fn json_report_parses_back() {
    let s = setup().await;
    let (code, stdout, _) = check(
        &s,
        &["--cluster", "orders", "--cluster", "legacy", "--json"],
    )
    .await;
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["ready"], false);
    assert_eq!(v["decision"], "no_go");
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["attempts"], 1);
    let clusters = v["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 2);
    assert_eq!(clusters[0]["cluster"], "orders");
    assert_eq!(clusters[0]["ready"], true);
    assert_eq!(clusters[0]["code"], 0);
    assert!(
        clusters[0]["request_id"]
            .as_str()
            .unwrap()
            .starts_with("sim-")
    );
    assert_eq!(clusters[1]["cluster"], "legacy");
    assert_eq!(clusters[1]["code"], 3);
    assert_eq!(clusters[1]["decision"], "no_go");
    assert_eq!(clusters[1]["region"], "KR");
}

#[tokio::test]
async fn wait_succeeds_when_the_cluster_turns_ready() {
    let s = setup().await;
    let child = command(
        &s.config,
        SECRET_KEY,
        &["--cluster", "payments", "--wait", "60s", "--every", "1s"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Two polls seen by the gateway (an event, with room for a loaded machine), then ready.
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.sim.calls(11) < 2 {
        assert!(
            Instant::now() < deadline,
            "polled {} times",
            s.sim.calls(11)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.sim.set_behaviour(11, Behaviour::Ready);
    let flipped = Instant::now();
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // It ends on the next polls, long before the 60 s wait would run out.
    assert!(
        flipped.elapsed() < Duration::from_secs(20),
        "{:?}",
        flipped.elapsed()
    );
    assert!(
        stderr.contains("waiting on payments not_ready"),
        "progress goes to stderr: {stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (rows, verdict) = table(&stdout);
    assert_eq!(
        verdicts(&rows),
        [["payments", "SGN", "ready", "0"]],
        "{stdout}"
    );
    assert_eq!(verdict, GO, "{stdout}");
}

#[tokio::test]
async fn wait_times_out_with_1_for_no_and_2_for_errors() {
    let s = setup().await;
    let started = Instant::now();
    let (code, _, _) = check(
        &s,
        &[
            "--cluster",
            "payments",
            "--wait",
            "4s",
            "--every",
            "1s",
            "--json",
        ],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(code, 1);
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(20),
        "{took:?}"
    );
    // Rounds at 0, 1, 2 and 3 s: at least 3, even if a loaded machine delays one.
    assert!(s.sim.calls(11) >= 3, "{}", s.sim.calls(11));

    s.sim.set_behaviour(13, Behaviour::Http500Html);
    let (code, stdout, _) = check(
        &s,
        &[
            "--cluster",
            "analytics",
            "--wait",
            "2s",
            "--every",
            "1s",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 2, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(v["attempts"].as_u64().unwrap() >= 2);
}

#[tokio::test]
async fn wait_honours_retry_after() {
    let s = setup().await;
    s.sim.set_behaviour(12, Behaviour::RateLimited(Some(3)));
    let (code, _, stderr) =
        check(&s, &["--cluster", "busy", "--wait", "5s", "--every", "1s"]).await;
    assert_eq!(code, 2);
    // 5 s with --every 1s would be 5-6 calls; Retry-After: 3 allows exactly 2: at 0 s, and at
    // 3 s, after which another 3 s would pass the deadline, so it stops there.
    assert_eq!(
        s.sim.calls(12),
        2,
        "calls with Retry-After: 3 in a 5 s wait: {stderr}"
    );
    // One pause between them, of the Retry-After, not --every.
    let waits: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("check: 0/1 ready; waiting on busy rate_limited"))
        .collect();
    assert_eq!(waits.len(), 1, "{stderr}");
    assert!(waits[0].contains("; next check in 3s, "), "{stderr}");
}

/// Starts a long `check --wait` and returns once it has reported its first "not ready" on
/// stderr: by then its signal handlers are installed (they are polled with the first attempt).
async fn waiting_check(s: &Setup) -> tokio::process::Child {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = command(
        &s.config,
        SECRET_KEY,
        &["--cluster", "payments", "--wait", "60s", "--every", "1s"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("waiting on payments not_ready") {
                return;
            }
        }
        panic!("check ended before reporting progress");
    })
    .await
    .expect("no progress line from check");
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// Sends `signal` to the child and returns its exit code and how long it took to end.
async fn signal_and_wait(
    child: &mut tokio::process::Child,
    signal: &str,
) -> (Option<i32>, Duration) {
    let pid = child.id().unwrap().to_string();
    let started = Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().await.unwrap();
    (status.code(), started.elapsed())
}

#[tokio::test]
async fn ctrl_c_ends_promptly_with_130() {
    let s = setup().await;
    let mut child = waiting_check(&s).await;
    let (code, took) = signal_and_wait(&mut child, "-INT").await;
    assert_eq!(code, Some(130));
    // Promptly: not at the next poll's end, nor at the 60 s wait's end.
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn sigterm_ends_promptly_with_143() {
    let s = setup().await;
    let mut child = waiting_check(&s).await;
    let (code, took) = signal_and_wait(&mut child, "-TERM").await;
    assert_eq!(code, Some(143));
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn auth_failure_with_a_skewed_clock_names_the_clock() {
    let s = setup().await;
    s.sim.set_clock_offset(-10 * 60 * 1000);
    let (code, stdout, stderr) = check(&s, &["--cluster", "orders"]).await;
    assert_eq!(code, 2, "{stdout}");
    assert!(stdout.contains("auth_error"), "{stdout}");
    assert!(
        stderr.contains("check: authentication failed: this host's clock is"),
        "{stderr}"
    );
    let secs: f64 = stderr
        .split(" s off")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((598.0..=602.0).contains(&secs), "{stderr}");
}

/// README: `check` takes discovered clusters by name, as the exporter would see them.
#[tokio::test]
async fn check_on_a_discovered_cluster() {
    let sim = start_sim(&[]).await;
    sim.add_cluster(500, SimCluster::running("found-kafka", Region::Kr));
    sim.add_cluster(501, SimCluster::running("other-kafka", Region::Kr));
    sim.set_behaviour(501, Behaviour::NotReady);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "interval: 60s\ntimeout: 5s\napi_gateway: {}\ndiscovery:\n  - region: KR\n",
            sim.url()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut cmd = command(&config, SECRET_KEY, args);
        async move { cmd.output().await.unwrap() }
    };
    let out = run(&["--cluster", "found-kafka"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (rows, verdict) = table(&stdout);
    assert_eq!(
        verdicts(&rows),
        [["found-kafka", "KR", "ready", "0"]],
        "{stdout}"
    );
    assert_eq!(verdict, GO);
    assert_eq!(sim.calls(500), 1, "the discovered number was prechecked");
    assert_eq!(sim.calls(501), 0, "only the named cluster");
    assert!(sim.list_calls() >= 1, "the list was read");

    let out = run(&["--cluster", "other-kafka"]).await;
    assert_eq!(out.status.code(), Some(1));
    let out = run(&["--cluster", "missing-kafka"]).await;
    assert_eq!(out.status.code(), Some(2), "not discovered → could not ask");
    assert_eq!(sim.calls(500), 1);
}

/// README, "Why a cluster is not ready": `check` names the failing node in its table and its
/// `--json`, and asks nothing more about a ready cluster.
#[tokio::test]
async fn check_says_which_node_is_not_available() {
    let s = setup().await;
    let (code, stdout, stderr) = check(&s, &["--cluster", "payments"]).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("(broker kafka-2 is red; 2 of 3 brokers up; 3 of 3 zookeepers up"),
        "the table's message names the node: {stdout}"
    );
    assert_eq!(
        s.sim.status_calls(11),
        1,
        "one status read for the failing cluster"
    );
    let (code, stdout, _) = check(&s, &["--cluster", "payments", "--json"]).await;
    assert_eq!(code, 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let d = &v["clusters"][0]["diagnosis"];
    assert_eq!(d["brokers_up"], 2, "{stdout}");
    assert_eq!(d["failing_nodes"][0]["hostname"], "kafka-2", "{stdout}");
    let (code, stdout, _) = check(&s, &["--cluster", "orders", "--json"]).await;
    assert_eq!(code, 0, "{stdout}");
    assert!(!stdout.contains("diagnosis"), "{stdout}");
    assert_eq!(
        s.sim.status_calls(10),
        0,
        "a ready cluster costs no status call"
    );
}

/// A config that discovers every cluster the simulator lists in KR.
fn discovery_config(sim: &SimGateway) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let yaml = format!(
        "interval: 60s\ntimeout: 5s\napi_gateway: {}\ndiscovery:\n  - region: KR\n",
        sim.url()
    );
    std::fs::write(&config, yaml).unwrap();
    (dir, config)
}

fn listed(name: &str, status: &str) -> SimCluster {
    SimCluster {
        status: status.into(),
        ..SimCluster::running(name, Region::Kr)
    }
}

const CHANGING: &str =
    "CHANGING: NCP is changing at least one cluster (a restart or another change is running)";

/// README, "When NCP is changing the cluster": a cluster listed `changing` is decided
/// `changing` (exit 1) even though its precheck says ready; a plain no-go still wins.
#[tokio::test]
async fn a_changing_cluster_is_its_own_decision_and_never_go() {
    let sim = start_sim(&[]).await;
    sim.add_cluster(600, listed("moving-kafka", "Changing"));
    sim.add_cluster(601, SimCluster::running("still-kafka", Region::Kr));
    sim.add_cluster(602, SimCluster::running("broken-kafka", Region::Kr));
    sim.set_behaviour(602, Behaviour::NotReady);
    let (_dir, config) = discovery_config(&sim);
    let run = |args: &[&str]| {
        let mut cmd = command(&config, SECRET_KEY, args);
        async move { cmd.output().await.unwrap() }
    };
    let out = run(&["--cluster", "moving-kafka", "--cluster", "still-kafka"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let (rows, verdict) = table(&stdout);
    assert_eq!(
        verdicts(&rows),
        [
            ["moving-kafka", "KR", "changing", "0"],
            ["still-kafka", "KR", "ready", "0"]
        ],
        "{stdout}"
    );
    assert!(
        rows[0].join(" ").contains("NCP reports it changing since"),
        "{stdout}"
    );
    assert_eq!(verdict, CHANGING, "{stdout}");

    let out = run(&["--cluster", "moving-kafka", "--json"]).await;
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "changing", "{v}");
    assert_eq!(
        (v["ready"].clone(), v["exit_code"].clone()),
        (false.into(), 1.into())
    );
    let c = &v["clusters"][0];
    assert_eq!(c["decision"], "changing", "{v}");
    assert_eq!(
        c["ready"], false,
        "a ready answer of a changing cluster is no go: {v}"
    );
    assert_eq!(c["verdict"], "ready", "{v}");
    assert!(c["changing_since"].as_str().unwrap().ends_with('Z'), "{v}");
    // Not changing: no such field.
    let out = run(&["--cluster", "still-kafka", "--json"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("changing"));

    let out = run(&["--all"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_eq!(table(&stdout).1, NO_GO, "a plain no-go wins: {stdout}");
}

/// `check --wait` keeps waiting while a cluster is changing, and ends with go once the listing
/// says the change is over (it lists again only while a listed cluster is changing).
#[tokio::test]
async fn wait_holds_while_changing_and_ends_when_the_change_does() {
    let sim = start_sim(&[]).await;
    sim.add_cluster(700, listed("moving-kafka", "changing"));
    let (_dir, config) = discovery_config(&sim);
    let started = Instant::now();
    let child = command(
        &config,
        SECRET_KEY,
        &[
            "--cluster",
            "moving-kafka",
            "--wait",
            "20s",
            "--every",
            "1s",
            "--json",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Still changing after a few rounds.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.calls(700) < 3 {
        assert!(Instant::now() < deadline, "check did not poll");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lists_while_changing = sim.list_calls();
    assert!(lists_while_changing >= 3, "listed again each round");
    sim.add_cluster(700, listed("moving-kafka", "running"));
    let out = child.wait_with_output().await.unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(started.elapsed() < Duration::from_secs(15), "{stderr}");
    assert!(
        stderr.contains("moving-kafka changing (code 0)"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["decision"], "go", "{v}");
    assert!(v["attempts"].as_u64().unwrap() >= 4, "{v}");
    assert!(v["clusters"][0].get("changing_since").is_none(), "{v}");
}

/// A restart started from NCP's console: the precheck says no, `getClusterStatus` shows the
/// broker orange, so the decision is `changing` (exit 1), not a plain no-go.
#[tokio::test]
async fn a_cluster_restarting_is_changing() {
    let s = setup().await;
    let plan = cdss_precheck_exporter::sim::RestartPlan {
        step: Duration::from_secs(10),
        ..Default::default()
    };
    s.sim.set_restart_plan(10, plan);
    assert!(s.sim.start_restart(10));
    let (code, stdout, stderr) = check(&s, &["--cluster", "orders"]).await;
    assert_eq!(code, 1, "{stdout}{stderr}");
    let (rows, verdict) = table(&stdout);
    assert_eq!(
        verdicts(&rows),
        [["orders", "KR", "changing", "0"]],
        "{stdout}"
    );
    assert_eq!(verdict, CHANGING, "{stdout}");
    assert!(stdout.contains("is orange"), "names the node: {stdout}");
    let (code, stdout, _) = check(&s, &["--cluster", "orders", "--json"]).await;
    assert_eq!(code, 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["decision"], "changing", "{v}");
    assert_eq!(v["clusters"][0]["verdict"], "not_ready", "{v}");
    assert_eq!(
        v["clusters"][0]["diagnosis"]["broker_status"], "orange",
        "{v}"
    );
    assert!(s.sim.requests().iter().all(|r| !r.is_mutating()));
}
