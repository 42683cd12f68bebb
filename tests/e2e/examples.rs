//! The README's "Gate maintenance on the precheck" examples, run for real: the shell step, the
//! Kubernetes Job's init-container command, and the GitHub Actions step, against the simulated
//! gateway. The README must show each example file verbatim, so the docs cannot drift.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{ACCESS_KEY, Harness, SECRET_KEY, Spec, clear_of_slot, config_yaml};
use cdss_precheck_exporter::sim::{Behaviour, RestartPlan, SimGateway};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_cdss-precheck-exporter");

fn example(name: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join("examples/gate").join(name)).unwrap()
}

fn specs() -> Vec<Spec> {
    vec![
        ("orders-kafka", "KR", 1, Some(Behaviour::Ready)),
        ("payments-kafka", "SGN", 2, Some(Behaviour::NotReady)),
    ]
}

/// PATH with the freshly built binary first, as if it were installed.
fn path_with_binary() -> String {
    let dir = Path::new(BIN).parent().unwrap().display().to_string();
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

fn sh(shell: &[&str], script: &str, cwd: &Path, envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(shell[0]);
    cmd.args(&shell[1..])
        .arg(script)
        .current_dir(cwd)
        .env("PATH", path_with_binary());
    cmd.env("NCLOUD_ACCESS_KEY", ACCESS_KEY)
        .env("NCLOUD_SECRET_KEY", SECRET_KEY)
        // The key chain stays on this machine (never the real metadata API).
        .env("NCLOUD_METADATA_API_ENDPOINT", "http://127.0.0.1:9")
        .env_remove("RUST_LOG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn readme_shows_every_example_verbatim() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    for name in [
        "restart-when-ready.sh",
        "k8s-job.yaml",
        "github-actions.yaml",
    ] {
        assert!(
            readme.contains(example(name).trim_end()),
            "README does not show examples/gate/{name} verbatim"
        );
    }
}

struct Workspace {
    dir: tempfile::TempDir,
    config: PathBuf,
}

fn workspace(gateway: &str) -> Workspace {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, config_yaml(gateway, "timeout: 2s", &specs())).unwrap();
    Workspace { dir, config }
}

/// A gateway whose restarts take a few seconds.
async fn quick_sim() -> SimGateway {
    let sim = crate::support::start_sim(&specs()).await;
    for no in [1, 2] {
        let plan = RestartPlan {
            start_delay: Duration::from_millis(500),
            step: Duration::from_millis(700),
            ..RestartPlan::default()
        };
        sim.set_restart_plan(no, plan);
    }
    sim
}

#[tokio::test(flavor = "multi_thread")]
async fn shell_step_restarts_only_when_ready() {
    let sim = quick_sim().await;
    let w = workspace(&sim.url());
    let script = Path::new(ROOT).join("examples/gate/restart-when-ready.sh");
    let run = |cluster: &str| {
        let config = w.config.display().to_string();
        let script = format!("{} {cluster}", script.display());
        sh(
            &["sh", "-c"],
            &script,
            w.dir.path(),
            &[("CONFIG", &config), ("WAIT", "2s"), ("EVERY", "1s")],
        )
    };
    let out = tokio::task::block_in_place(|| run("orders-kafka"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        sim.restart_calls(1),
        1,
        "restarted once, watched to the end"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("DONE: the rolling restart of orders-kafka is over"),
        "{stdout}"
    );
    let out = tokio::task::block_in_place(|| run("payments-kafka"));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        sim.restart_calls(2),
        0,
        "a not-ready cluster must not be restarted"
    );
}

fn yaml(name: &str) -> serde_json::Value {
    let v: yaml_serde::Value = yaml_serde::from_str(&example(name)).unwrap();
    serde_json::to_value(v).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn kubernetes_init_container_waits_on_the_gate() {
    // The test counts orders-kafka's upstream calls: no scheduled slot may fall inside.
    clear_of_slot(
        "orders-kafka",
        Duration::from_secs(3600),
        Duration::from_secs(60),
    )
    .await;
    let h = Harness::start(
        "interval: 1h\ntimeout: 2s\ngate:\n  min_fresh_interval: 1s",
        &specs(),
    )
    .await;
    h.wait_ready(Duration::from_secs(5)).await;
    let job = yaml("k8s-job.yaml");
    let init = &job["spec"]["template"]["spec"]["initContainers"][0];
    assert_eq!(init["command"], serde_json::json!(["sh", "-c"]));
    let command = init["args"][0]
        .as_str()
        .unwrap()
        .replace("http://cdss-precheck-exporter.monitoring:9787", &h.url(""));
    let dir = tempfile::tempdir().unwrap();

    let calls_before = h.sim.calls(1);
    let out = tokio::task::block_in_place(|| sh(&["sh", "-c"], &command, dir.path(), &[]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answer: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(answer["ready"], true, "{stdout}");
    assert_eq!(answer["cluster"], "orders-kafka", "{stdout}");
    assert_eq!(answer["source"], "fresh", "{stdout}");
    assert_eq!(h.sim.calls(1), calls_before + 1, "?fresh=1 asked NCP");

    // A cluster that is not ready keeps the init container waiting until its timeout.
    let waiting = command
        .replace("orders-kafka", "payments-kafka")
        .replace("timeout 900", "timeout 3");
    let started = Instant::now();
    let out = tokio::task::block_in_place(|| sh(&["sh", "-c"], &waiting, dir.path(), &[]));
    // `timeout` ends it (124), and what kept it waiting was the gate's 503.
    assert_eq!(
        out.status.code(),
        Some(124),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() >= Duration::from_secs(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("returned error: 503"),
        "not waiting on the gate's 503: {stderr}"
    );

    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn github_actions_step_gates_the_restart() {
    let sim = quick_sim().await;
    let w = workspace(&sim.url());
    let workflow = yaml("github-actions.yaml");
    let steps = workflow["jobs"]["rolling-restart"]["steps"]
        .as_array()
        .unwrap();
    let gate = steps
        .iter()
        .find_map(|s| {
            s["run"]
                .as_str()
                .filter(|r| r.contains("cdss-precheck-exporter check"))
        })
        .unwrap();
    let gate = gate.replace("ops/cdss-precheck.yaml", &w.config.display().to_string());
    // GitHub runs `run:` with bash -e -o pipefail, so `| tee` keeps check's exit code.
    let bash = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"];
    let out = tokio::task::block_in_place(|| sh(&bash, &gate, w.dir.path(), &[]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.dir.path().join("precheck.json")).unwrap())
            .unwrap();
    assert_eq!(report["ready"], true);
    let restart = steps
        .iter()
        .find_map(|s| {
            s["run"]
                .as_str()
                .filter(|r| r.contains("cdss-precheck-exporter restart"))
        })
        .unwrap()
        .replace("ops/cdss-precheck.yaml", &w.config.display().to_string())
        .replace("--yes", "--yes --every 1s");
    let out = tokio::task::block_in_place(|| sh(&bash, &restart, w.dir.path(), &[]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(w.dir.path().join("restart.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["result"], "done", "{report}");
    assert_eq!(sim.restart_calls(1), 1);

    let not_ready = gate
        .replace("orders-kafka", "payments-kafka")
        .replace("--wait 15m", "--wait 2s");
    let out = tokio::task::block_in_place(|| sh(&bash, &not_ready, w.dir.path(), &[]));
    assert_eq!(
        out.status.code(),
        Some(1),
        "the step fails, so the restart step never runs"
    );
}
