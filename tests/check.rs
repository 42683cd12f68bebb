//! `cdss-precheck-exporter check`, run as a subprocess as a pipeline would, against the simulated
//! gateway: every exit code, --json, --wait, Ctrl-C.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cdss_precheck_exporter::sim::{Behaviour, SimGateway};
use common::{ACCESS_KEY, SECRET_KEY, Spec, config_yaml, start_sim};
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

#[tokio::test]
async fn exit_codes_tell_no_from_could_not_ask() {
    let s = setup().await;
    let (code, stdout, stderr) = check(&s, &["--cluster", "orders"]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("orders") && stdout.contains("ready") && stdout.starts_with("CLUSTER"),
        "{stdout}"
    );
    assert!(stdout.contains("GO"), "{stdout}");

    let (code, stdout, _) = check(&s, &["--cluster", "payments"]).await;
    assert_eq!(code, 1, "not ready → 1\n{stdout}");
    assert!(stdout.contains("not_ready"), "{stdout}");

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
    assert!(String::from_utf8_lossy(&out.stdout).contains("auth_error"));
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
    assert!(String::from_utf8_lossy(&out.stdout).contains("connection_error"));
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

    let out = command(&s.config, SECRET_KEY, &["--cluster", "orders"])
        .env_remove("NCLOUD_SECRET_KEY")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NCLOUD_SECRET_KEY"));

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
    let started = Instant::now();
    let child = command(
        &s.config,
        SECRET_KEY,
        &["--cluster", "payments", "--wait", "30s", "--every", "1s"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(s.sim.calls(11) >= 2, "polled {} times", s.sim.calls(11));
    s.sim.set_behaviour(11, Behaviour::Ready);
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        stderr.contains("waiting on payments not_ready"),
        "progress goes to stderr: {stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("GO"));
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
            "3s",
            "--every",
            "1s",
            "--json",
        ],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(code, 1);
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(8),
        "{took:?}"
    );
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
    // 5 s with --every 1s would be 5-6 calls; Retry-After: 3 allows 2.
    assert!(
        s.sim.calls(12) <= 2,
        "{} calls despite Retry-After: {stderr}",
        s.sim.calls(12)
    );
}

#[tokio::test]
async fn ctrl_c_ends_promptly_with_130() {
    let s = setup().await;
    let mut child = command(
        &s.config,
        SECRET_KEY,
        &["--cluster", "payments", "--wait", "60s", "--every", "1s"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = child.id().unwrap().to_string();
    let started = Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn auth_failure_with_a_skewed_clock_names_the_clock() {
    let s = setup().await;
    s.sim.set_clock_offset(-10 * 60 * 1000);
    let (code, stdout, stderr) = check(&s, &["--cluster", "orders"]).await;
    assert_eq!(code, 2, "{stdout}");
    assert!(stdout.contains("auth_error"), "{stdout}");
    assert!(
        stderr.contains("clock skew is the likely cause"),
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
