//! The secret key never shows: the real binary runs at trace level (ours, then everything with
//! RUST_LOG=trace) through the fault matrix, a failing reload, `check` and `--config.check`;
//! every byte it prints or serves is searched for the secret and its base64 forms.

use crate::support::secret_forms;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{ACCESS_KEY, Process, SECRET_KEY, Spec, start_sim};
use cdss_precheck_exporter::secret::Secret;
use cdss_precheck_exporter::sim::faults::{FaultServer, TcpFault};
use cdss_precheck_exporter::sim::{Behaviour, RawResponse};

const BIN: &str = env!("CARGO_BIN_EXE_cdss-precheck-exporter");
const OTHER_SECRET: &str = "second-account-secret-Qm9vbQ-never-print";
const OTHER_ACCESS_KEY: &str = "SECOND-ACCOUNT-ACCESS-KEY";

fn assert_clean(what: &str, text: &str) {
    // The access keys too (README: no key byte, access key or secret): the simulator repeats
    // the access key of a request whose signature is wrong, in the 401's `details`.
    for access_key in [ACCESS_KEY, OTHER_ACCESS_KEY] {
        assert!(!text.contains(access_key), "{what} contains an access key");
    }
    for secret in [SECRET_KEY, OTHER_SECRET] {
        for form in secret_forms(secret) {
            assert!(
                !text.contains(&form),
                "{what} contains the secret (as {form:?})"
            );
        }
    }
}

fn specs() -> Vec<Spec> {
    let raw = |status, ct: &str, body: &str| {
        Some(Behaviour::Raw(RawResponse::new(
            status,
            ct,
            body.as_bytes().to_vec(),
        )))
    };
    vec![
        ("ready", "KR", 1, Some(Behaviour::Ready)),
        ("not-ready", "SGN", 2, Some(Behaviour::NotReady)),
        ("unknown", "KR", 9_000_001, None),
        ("html-500", "KR", 3, Some(Behaviour::Http500Html)),
        ("malformed", "KR", 4, Some(Behaviour::MalformedJson)),
        ("dropped", "KR", 5, Some(Behaviour::DropConnection)),
        ("oversized", "KR", 6, Some(Behaviour::Oversized(2 << 20))),
        (
            "rate-limited",
            "KR",
            7,
            Some(Behaviour::RateLimited(Some(1))),
        ),
        (
            "slow",
            "KR",
            8,
            Some(Behaviour::Slow(
                Duration::from_secs(5),
                Box::new(Behaviour::Ready),
            )),
        ),
        (
            "redirect",
            "KR",
            9,
            Some(Behaviour::Raw(
                RawResponse::new(302, "text/plain", b"".to_vec())
                    .header("location", "http://127.0.0.1:9/x"),
            )),
        ),
        (
            "wrong-types",
            "KR",
            10,
            raw(200, "application/json", r#"{"code":"0","result":1}"#),
        ),
        (
            "gw-503",
            "KR",
            11,
            raw(
                503,
                "application/json",
                r#"{"error":{"errorCode":"500","message":"Endpoint Error"}}"#,
            ),
        ),
    ]
}

fn config(dir: &Path, gateway: &str, faults: &str) -> String {
    let d = dir.display();
    let mut yaml = format!(
        "interval: 2s\ntimeout: 1s\nconcurrency: 8\napi_gateway: {gateway}\ncredentials:\n  access_key_env: NCLOUD_ACCESS_KEY\n  secret_key_file: '{d}/sk'\naccounts:\n  other: {{access_key_env: OTHER_AK, secret_key_env: OTHER_SK}}\nclusters:\n"
    );
    for (name, region, no, _) in specs() {
        yaml.push_str(&format!(
            "  - {{name: {name}, region: {region}, service_group_instance_no: {no}}}\n"
        ));
    }
    yaml.push_str(
        "  - {name: wrong-secret, region: KR, service_group_instance_no: 1, account: other}\n",
    );
    for (i, name) in [
        "reset",
        "trickle",
        "endless-headers",
        "huge-length",
        "endless-chunks",
    ]
    .iter()
    .enumerate()
    {
        yaml.push_str(&format!("  - {{name: {name}, region: KR, service_group_instance_no: {}, api_gateway: '{faults}'}}\n", 100 + i));
    }
    yaml
}

fn command(args: &[&str], rust_log: Option<&str>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("NCLOUD_ACCESS_KEY", ACCESS_KEY)
        .env_remove("NCLOUD_SECRET_KEY")
        .env("OTHER_AK", OTHER_ACCESS_KEY)
        .env("OTHER_SK", OTHER_SECRET)
        // The key chain stays on this machine (no metadata API, no ~/.ncloud/configure).
        .env("NCLOUD_METADATA_API_ENDPOINT", "http://127.0.0.1:9")
        .env("HOME", "/nonexistent-home-for-tests")
        .stdin(Stdio::null());
    match rust_log {
        Some(v) => cmd.env("RUST_LOG", v),
        None => cmd.env_remove("RUST_LOG"),
    };
    cmd
}

async fn scrape(http: &reqwest::Client, url: String) -> String {
    match http.get(url).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_never_appears_anywhere() {
    let sim = start_sim(&specs()).await;
    sim.add_account(
        OTHER_ACCESS_KEY,
        Secret::new("what-the-gateway-expects-instead"),
    );
    let faults =
        FaultServer::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).unwrap();
    for (i, f) in [
        TcpFault::ResetMidBody,
        TcpFault::Trickle,
        TcpFault::HeadersNeverEnd,
        TcpFault::HugeContentLength,
        TcpFault::ChunkedForever,
    ]
    .into_iter()
    .enumerate()
    {
        faults.set(100 + i as u64, f);
    }
    let dir = tempfile::tempdir().unwrap();
    let sk = dir.path().join("sk");
    std::fs::write(&sk, format!("{SECRET_KEY}\n")).unwrap();
    // Readable by others on purpose: the exporter must warn (without printing the secret).
    Command::new("chmod").arg("644").arg(&sk).status().unwrap();
    let config_path = dir.path().join("config.yaml");
    std::fs::write(&config_path, config(dir.path(), &sim.url(), &faults.url())).unwrap();
    let cfg = config_path.to_str().unwrap();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    for rust_log in [None, Some("trace")] {
        let p = Process::spawn(command(
            &[
                "--config.file",
                cfg,
                "--web.listen-address",
                "127.0.0.1:0",
                "--log.level",
                "trace",
            ],
            rust_log,
        ));
        let addr = p.addr.clone();
        // Two rounds of every fault: wait until every cluster has run twice (an event, not a
        // fixed sleep), with room for a loaded machine.
        let clusters = specs().len() + 6;
        let mut served = p
            .metrics_until(
                Duration::from_secs(60),
                "two rounds of every cluster",
                |m| {
                    m.lines()
                        .filter(|l| l.starts_with("cdss_precheck_runs_total{"))
                        .filter(|l| {
                            l.rsplit(' ')
                                .next()
                                .and_then(|v| v.parse::<f64>().ok())
                                .is_some_and(|v| v >= 2.0)
                        })
                        .count()
                        == clusters
                },
            )
            .await;
        for path in [
            "/metrics",
            "/",
            "/gate/wrong-secret",
            "/gate/ready?fresh=1",
            "/-/ready",
        ] {
            served.push_str(&scrape(&http, format!("http://{addr}{path}")).await);
        }
        // A failing reload: its error text is served.
        std::fs::write(&config_path, "clusters: [oops\n").unwrap();
        let r = http
            .post(format!("http://{addr}/-/reload"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 500);
        served.push_str(&r.text().await.unwrap());
        std::fs::write(&config_path, config(dir.path(), &sim.url(), &faults.url())).unwrap();
        served.push_str(&scrape(&http, format!("http://{addr}/metrics")).await);
        let (code, logs) = p.terminate();
        assert_eq!(code, Some(0));
        assert!(
            served.contains("reason=\"auth_error\""),
            "the wrong-secret account failed auth:\n{served}"
        );
        assert!(
            served.contains("reason=\"timeout\"") && served.contains("reason=\"body_too_large\""),
            "{served}"
        );
        assert!(
            logs.contains("readable by other users"),
            "no warning about the 0644 secret file"
        );
        // The secret came from the file and was used: the gateway checks every signature
        // against it, and only a good one reads as ready.
        assert!(
            served
                .lines()
                .any(|l| l == "cdss_precheck_ok{cluster=\"ready\",region=\"KR\"} 1"),
            "the file-loaded secret signed no accepted precheck:\n{served}"
        );
        // The logs are as verbose as asked: our debug lines (the most detailed we log) with
        // --log.level trace, and the libraries' trace lines with RUST_LOG=trace.
        let level = |lvl: &str| {
            logs.lines()
                .filter(|l| l.contains(&format!(" level={lvl} ")))
                .count()
        };
        assert!(
            logs.lines().any(|l| l.contains(" level=debug ")
                && l.contains("precheck done")
                && l.contains("cluster=ready ")),
            "no debug line for the ready cluster (RUST_LOG={rust_log:?})"
        );
        if rust_log.is_some() {
            assert!(
                level("trace") > 0,
                "RUST_LOG=trace gave no trace-level line"
            );
        }
        assert_clean(&format!("logs (RUST_LOG={rust_log:?})"), &logs);
        assert_clean("served pages", &served);
    }

    // `check` at trace level, and `--config.check`.
    let out = command(
        &[
            "check",
            "--all",
            "--config.file",
            cfg,
            "--log.level",
            "trace",
            "--json",
        ],
        Some("trace"),
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_clean(
        "check output",
        &(String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)),
    );
    let out = command(&["--config.check", "--config.file", cfg], None)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_clean(
        "--config.check output",
        &(String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)),
    );
}
