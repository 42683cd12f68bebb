//! `cdss-precheck-exporter restart`, run as a subprocess as an operator or a pipeline would,
//! against the simulated gateway: exactly one `rollingRestart` on a ready cluster and a watch to
//! the end; none on a not-ready or changing cluster, with `--dry-run` or without confirmation; a
//! stuck restart ends at `--timeout`; a lost answer is never sent again; `--json` in every case;
//! Ctrl-C stops the watch only; `--account` signs with another account's keys.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{ACCESS_KEY, SECRET_KEY, Spec, config_yaml, start_sim};
use cdss_precheck_exporter::secret::Secret;
use cdss_precheck_exporter::sim::{Behaviour, RestartPlan, SimGateway};
use serde_json::Value;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cdss-precheck-exporter");
const READY: u64 = 20;
const NOT_READY: u64 = 21;

fn specs() -> Vec<Spec> {
    vec![
        ("orders", "KR", READY, Some(Behaviour::Ready)),
        ("payments", "SGN", NOT_READY, Some(Behaviour::NotReady)),
    ]
}

struct Setup {
    sim: SimGateway,
    _dir: tempfile::TempDir,
    config: PathBuf,
}

/// A gateway whose restarts take `plan`, and a config for it.
async fn setup(plan: RestartPlan, extra: &str) -> Setup {
    let sim = start_sim(&specs()).await;
    for no in [READY, NOT_READY] {
        sim.set_restart_plan(no, plan);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    let head = format!("interval: 60s\ntimeout: 2s\n{extra}");
    std::fs::write(&config, config_yaml(&sim.url(), &head, &specs())).unwrap();
    Setup {
        sim,
        _dir: dir,
        config,
    }
}

fn quick() -> RestartPlan {
    RestartPlan {
        start_delay: Duration::from_millis(500),
        step: Duration::from_millis(700),
        stuck: false,
        lose_answer: false,
    }
}

fn command(s: &Setup, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("restart")
        .arg("--config.file")
        .arg(&s.config)
        .args(["--every", "1s", "--start-grace", "10s", "--timeout", "60s"])
        .args(args)
        .env("NCLOUD_ACCESS_KEY", ACCESS_KEY)
        .env("NCLOUD_SECRET_KEY", SECRET_KEY)
        .env_remove("RUST_LOG")
        .env("NCLOUD_METADATA_API_ENDPOINT", "http://127.0.0.1:9")
        .env("HOME", "/nonexistent-home-for-tests")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs `restart --json` with `args`; returns the exit code, the report and stderr.
async fn restart(s: &Setup, args: &[&str]) -> (i32, Value, String) {
    let out = command(s, &[args, &["--json"]].concat())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {stdout}\nstderr: {stderr}"));
    let code = out.status.code().unwrap_or(-1);
    assert_eq!(report["exit_code"], code, "{report}");
    assert!(!stderr.contains(SECRET_KEY), "{stderr}");
    (code, report, stderr)
}

/// Mutating requests the gateway received.
fn mutating(sim: &SimGateway) -> usize {
    sim.requests().iter().filter(|r| r.is_mutating()).count()
}

#[tokio::test]
async fn a_ready_cluster_is_restarted_once_and_watched_to_the_end() {
    let s = setup(quick(), "").await;
    let (code, report, stderr) = restart(&s, &["--cluster", "orders", "--yes"]).await;
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert_eq!(s.sim.restart_calls(READY), 1);
    assert_eq!(mutating(&s.sim), 1);
    assert_eq!(report["result"], "done");
    assert_eq!(report["decision"], "go");
    assert_eq!(report["started"], true);
    assert_eq!(report["start_answer"], "accepted");
    assert_eq!(report["account"], "default");
    assert_eq!(report["final_precheck"]["verdict"], "ready");
    assert_eq!(report["api_calls"]["rolling_restart"], 1);
    assert!(report["api_calls"]["restart_progress"].as_u64().unwrap() >= 2);
    let timeline = report["timeline"].as_array().unwrap();
    // It saw the restart run (a broker down and orange) before it called it over.
    let running = timeline
        .iter()
        .position(|r| r["broker_status"] == "orange")
        .expect("seen running");
    assert!(
        timeline[running]["not_green"][0]
            .as_str()
            .unwrap()
            .contains("orange")
    );
    assert!(timeline.last().unwrap()["all_green"].as_bool().unwrap());
    assert!(
        stderr.contains("signing with account \"default\""),
        "{stderr}"
    );
    assert!(stderr.contains("brokers 2/3 orange"), "{stderr}");
    let ids = report["request_ids"].as_array().unwrap();
    assert!(
        ids.iter()
            .any(|i| i.as_str().unwrap().starts_with("rolling_restart: ")),
        "{report}"
    );
}

#[tokio::test]
async fn nothing_starts_on_a_not_ready_or_changing_cluster_or_a_dry_run() {
    let s = setup(quick(), "").await;
    let (code, report, _) = restart(&s, &["--cluster", "payments", "--yes"]).await;
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["decision"], "no_go");
    assert_eq!(report["started"], false);
    assert!(
        report["message"].as_str().unwrap().contains("not_ready"),
        "{report}"
    );

    let (code, report, stderr) = restart(&s, &["--cluster", "orders", "--dry-run"]).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["result"], "would_start");
    assert!(stderr.contains("would send POST"), "{stderr}");
    assert!(
        stderr.contains("/api/v1/cluster/rollingRestart"),
        "{stderr}"
    );

    // Without a terminal and without --yes: nothing starts.
    let (code, report, _) = restart(&s, &["--cluster", "orders"]).await;
    assert_eq!(code, 2, "{report}");
    assert!(
        report["message"].as_str().unwrap().contains("--yes"),
        "{report}"
    );

    // A restart started elsewhere (NCP's console) is running: the cluster is changing.
    s.sim.set_restart_plan(
        READY,
        RestartPlan {
            start_delay: Duration::ZERO,
            stuck: true,
            ..quick()
        },
    );
    s.sim.start_restart(READY);
    let (code, report, _) = restart(&s, &["--cluster", "orders", "--yes"]).await;
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["decision"], "changing");
    assert_eq!(report["started"], false);

    // An unknown name or account: nothing is asked.
    let (code, report, _) = restart(&s, &["--cluster", "nope", "--yes"]).await;
    assert_eq!(code, 2, "{report}");
    let (code, report, _) =
        restart(&s, &["--cluster", "orders", "--account", "nope", "--yes"]).await;
    assert_eq!(code, 2, "{report}");
    assert!(
        report["message"].as_str().unwrap().contains("\"nope\""),
        "{report}"
    );

    assert_eq!(
        s.sim.restart_calls(READY) + s.sim.restart_calls(NOT_READY),
        0
    );
    assert_eq!(mutating(&s.sim), 0);
}

#[tokio::test]
async fn a_stuck_restart_ends_at_the_timeout_after_one_call() {
    let stuck = RestartPlan {
        stuck: true,
        ..quick()
    };
    let s = setup(stuck, "").await;
    let (code, report, stderr) =
        restart(&s, &["--cluster", "orders", "--yes", "--timeout", "4s"]).await;
    assert_eq!(code, 4, "{report}\n{stderr}");
    assert_eq!(report["result"], "timeout");
    assert_eq!(report["started"], true);
    assert!(
        report["message"]
            .as_str()
            .unwrap()
            .contains("may still be running at NCP"),
        "{report}"
    );
    assert_eq!(s.sim.restart_calls(READY), 1);
}

#[tokio::test]
async fn a_lost_answer_is_never_sent_again() {
    let lost = RestartPlan {
        lose_answer: true,
        ..quick()
    };
    let s = setup(lost, "").await;
    let (code, report, stderr) = restart(&s, &["--cluster", "orders", "--yes"]).await;
    // The restart did start: the watch saw it run and end.
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert_eq!(report["start_answer"], "lost");
    assert_eq!(report["started"], true);
    assert!(
        stderr.contains("cannot tell whether NCP started the restart"),
        "{stderr}"
    );
    assert_eq!(s.sim.restart_calls(READY), 1);

    // Accepted, but nothing shows within the grace: unknown, still one call.
    let late = RestartPlan {
        start_delay: Duration::from_secs(60),
        ..quick()
    };
    let s = setup(late, "").await;
    let (code, report, _) =
        restart(&s, &["--cluster", "orders", "--yes", "--start-grace", "3s"]).await;
    assert_eq!(code, 3, "{report}");
    assert_eq!(report["result"], "unknown");
    assert_eq!(s.sim.restart_calls(READY), 1);
}

#[tokio::test]
async fn ctrl_c_stops_the_watch_only() {
    use tokio::io::AsyncBufReadExt as _;
    let stuck = RestartPlan {
        stuck: true,
        ..quick()
    };
    let s = setup(stuck, "").await;
    let mut child = command(&s, &["--cluster", "orders", "--yes", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line.clone());
            if line.contains("orange") {
                return;
            }
        }
        panic!("restart ended before the watch showed the restart: {seen:?}");
    })
    .await
    .expect("no progress line");
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut rest = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(130), "{rest}");
    assert!(
        rest.contains("goes on") && rest.contains("--watch-only --cluster orders"),
        "{rest}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["result"], "interrupted");
    assert_eq!(report["started"], true);
    assert_eq!(s.sim.restart_calls(READY), 1);
}

#[tokio::test]
async fn watch_only_and_another_account() {
    const OPS_KEY: &str = "OPS-WRITE-ACCESS-KEY";
    const OPS_SECRET: &str = "ops-write-secret-do-not-leak";
    let dir = tempfile::tempdir().unwrap();
    let (ak, sk) = (dir.path().join("ak"), dir.path().join("sk"));
    std::fs::write(&ak, OPS_KEY).unwrap();
    std::fs::write(&sk, OPS_SECRET).unwrap();
    let extra = format!(
        "accounts:\n  maintenance: {{access_key_file: {}, secret_key_file: {}}}\n",
        ak.display(),
        sk.display()
    );
    let s = setup(quick(), &extra).await;
    s.sim.add_account(OPS_KEY, Secret::new(OPS_SECRET));
    let (code, report, stderr) = restart(
        &s,
        &["--cluster", "orders", "--yes", "--account", "maintenance"],
    )
    .await;
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert!(
        stderr.contains("signing with account \"maintenance\""),
        "{stderr}"
    );
    assert!(!stderr.contains(OPS_SECRET) && !report.to_string().contains(OPS_SECRET));
    let restarts: Vec<_> = (s.sim.requests().into_iter())
        .filter(|r| r.is_mutating())
        .collect();
    assert_eq!(restarts.len(), 1);
    assert_eq!(restarts[0].access_key.as_deref(), Some(OPS_KEY));

    // A restart started elsewhere, watched to its end without sending anything.
    s.sim.start_restart(READY);
    let (code, report, stderr) = restart(&s, &["--cluster", "orders", "--watch-only"]).await;
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert_eq!(report["result"], "done");
    assert!(report.get("decision").is_none(), "{report}");
    assert_eq!(s.sim.restart_calls(READY), 1, "only the first run's");
}

#[tokio::test]
async fn on_a_terminal_it_asks_and_starts_only_on_yes() {
    let s = setup(quick(), "").await;
    // `script` (util-linux) gives the command a terminal; the answer comes through it.
    let asked = |answer: &'static str| {
        let line = format!(
            "{BIN} restart --config.file {} --cluster orders --every 1s",
            s.config.display()
        );
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"])
            .env("NCLOUD_ACCESS_KEY", ACCESS_KEY)
            .env("NCLOUD_SECRET_KEY", SECRET_KEY)
            .env("NCLOUD_METADATA_API_ENDPOINT", "http://127.0.0.1:9")
            .env("HOME", "/nonexistent-home-for-tests")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        async move {
            use tokio::io::AsyncWriteExt as _;
            let mut child = cmd.spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(answer.as_bytes()).await.unwrap();
            let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output());
            let out = out.await.expect("restart on a terminal hung").unwrap();
            drop(stdin);
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).replace('\r', ""),
            )
        }
    };
    let (code, out) = asked("n\n").await;
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains(
            "Start a rolling restart of orders (KR, no. 20), signed with account \"default\"?"
        ),
        "{out}"
    );
    assert!(out.contains("The precheck says ready"), "{out}");
    assert!(out.contains("not confirmed; nothing started"), "{out}");
    assert_eq!(s.sim.restart_calls(READY), 0);
    let (code, out) = asked("y\n").await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("DONE: the rolling restart of orders is over"),
        "{out}"
    );
    assert_eq!(s.sim.restart_calls(READY), 1);
}
