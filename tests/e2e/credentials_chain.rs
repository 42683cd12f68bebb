//! Keys the NCP way, end to end over loopback: the SDK chain (env with the `_ID` spelling, the
//! configure file, the server role from a simulated metadata API whose keys rotate), refresh
//! before expiry, a failed refresh that keeps the old keys and is counted, the KRS region's
//! path, `--config.check`'s report, and the secret grep over role keys at trace level.
//!
//! Safety: nothing here may reach a non-loopback address. Every exporter (library or binary)
//! gets `NCLOUD_METADATA_API_ENDPOINT` on 127.0.0.1 (a simulated metadata API, or the closed
//! port 9) and a `HOME` in a temp dir, so the chain never gets to 169.254.169.254 or to the
//! developer's own `~/.ncloud/configure`.

use crate::support::secret_forms;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use cdss_precheck_exporter::app::{Options, run};
use cdss_precheck_exporter::config::Config;
use cdss_precheck_exporter::credentials::{Keyring, Lookup};
use cdss_precheck_exporter::secret::Secret;
use cdss_precheck_exporter::sim::metadata::{RotatingKeys, SimMetadata};
use cdss_precheck_exporter::sim::{Behaviour, PRECHECK_PATHS, SimConfig, SimGateway};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const BIN: &str = env!("CARGO_BIN_EXE_cdss-precheck-exporter");
/// A loopback port nothing listens on: "the metadata API is unreachable", at once.
const CLOSED: &str = "http://127.0.0.1:9";
const STATIC_AK: &str = "STATIC-AK-chain-test";
const STATIC_SK: &str = "static-secret-Q2hhaW4-never-print";
const ROLE: &str = "cdss-reader";
const NO: u64 = 4242;

async fn gateway() -> SimGateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    SimGateway::start(
        listener,
        SimConfig {
            access_key: STATIC_AK.into(),
            secret_key: Secret::new(STATIC_SK),
            clusters: HashMap::from([(NO, Behaviour::Ready)]),
        },
    )
    .unwrap()
}

async fn metadata(keys: &RotatingKeys) -> SimMetadata {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    SimMetadata::start(listener, &[ROLE, "second-role"], keys.clone()).unwrap()
}

fn config(gateway: &str, region: &str, credentials: &str) -> Config {
    let yaml = format!(
        "interval: 1s\ntimeout: 900ms\n{credentials}\napi_gateway: {gateway}\nclusters:\n  - {{name: orders, region: {region}, service_group_instance_no: {NO}}}\n"
    );
    Config::parse(&yaml, Path::new("test.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

fn lookup(home: &Path, metadata: &str, vars: &[(&str, &str)]) -> Lookup {
    let mut map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    map.insert("HOME".into(), home.display().to_string());
    map.insert("NCLOUD_METADATA_API_ENDPOINT".into(), metadata.into());
    Lookup::from_map(map)
}

/// The exporter's library entry point on 127.0.0.1:0.
struct Exporter {
    addr: std::net::SocketAddr,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Exporter {
    async fn start(config: Config, lookup: Lookup) -> Self {
        let keyring = Keyring::load(&config.accounts, &lookup)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let options = Options {
            lookup,
            ..Options::new(config, keyring)
        };
        let task = tokio::spawn(run(listener, options, async {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Self {
            addr,
            http,
            stop: Some(stop),
            task,
        }
    }

    async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.addr);
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Polls `/metrics` until `pred` holds, for at most `limit`.
    async fn metrics_until(
        &self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let text = self.metrics().await;
            if pred(&text) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

/// The value of the first sample of `name` whose labels contain `labels`.
fn value(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn runs(m: &str) -> f64 {
    value(m, "cdss_precheck_runs_total", "cluster=\"orders\"").unwrap_or(0.0)
}
fn ok(m: &str) -> bool {
    value(m, "cdss_precheck_ok", "cluster=\"orders\"") == Some(1.0)
}
fn failures(m: &str, reason: &str) -> f64 {
    value(
        m,
        "cdss_precheck_failures_total",
        &format!("reason=\"{reason}\""),
    )
    .unwrap_or(0.0)
}
fn refresh_failures(m: &str) -> Option<f64> {
    value(
        m,
        "cdss_exporter_credentials_refresh_failures_total",
        "account=\"default\"",
    )
}
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test]
async fn no_precheck_fails_authentication_across_rotations() {
    // A new pair every 2 s, each valid for 6 s; the gateway accepts a pair only while valid.
    let keys = RotatingKeys::new("ROT", Duration::from_secs(2), Duration::from_secs(6));
    let (sim, meta) = (gateway().await, metadata(&keys).await);
    sim.accept_rotating(keys.clone());
    let home = tempfile::tempdir().unwrap();
    let e = Exporter::start(
        config(&sim.url(), "KR", ""),
        lookup(home.path(), &meta.url(), &[]),
    )
    .await;
    // Four distinct pairs signed prechecks: three rotations.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while sim
        .authenticated_keys()
        .iter()
        .filter(|k| keys.owns(k))
        .count()
        < 4
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "keys did not rotate: {:?}",
            sim.authenticated_keys()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = e.metrics().await;
    assert_eq!(
        sim.auth_failures(),
        0,
        "a precheck failed authentication:\n{m}"
    );
    assert_eq!(failures(&m, "auth_error"), 0.0, "{m}");
    assert_eq!(failures(&m, "no_credentials"), 0.0, "{m}");
    assert!(ok(&m) && runs(&m) >= 4.0, "{m}");
    // The first role listed was used, and the metadata API was asked only for it.
    assert!(meta.key_requests() >= 3, "{}", meta.key_requests());
    let expiry = value(
        &m,
        "cdss_exporter_credentials_expiry_timestamp_seconds",
        "account=\"default\"",
    )
    .expect("expiry of the role keys");
    assert!(expiry > unix_now(), "keys in use have expired: {expiry}");
    assert_eq!(refresh_failures(&m), Some(0.0), "{m}");
    e.stop().await;
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_old_keys_until_they_expire_and_is_counted() {
    // Pair 0 works for 16 s and is refreshed after 8 s; pair 1 is issued at 20 s.
    let keys = RotatingKeys::new("FAIL", Duration::from_secs(20), Duration::from_secs(16));
    let (sim, meta) = (gateway().await, metadata(&keys).await);
    sim.accept_rotating(keys.clone());
    let home = tempfile::tempdir().unwrap();
    let e = Exporter::start(
        config(
            &sim.url(),
            "KR",
            &format!("credentials: {{server_role: {ROLE}}}"),
        ),
        lookup(home.path(), &meta.url(), &[]),
    )
    .await;
    e.metrics_until(Duration::from_secs(30), "a first ready precheck", ok)
        .await;
    meta.set_failing(true);
    let failed = e
        .metrics_until(Duration::from_secs(30), "a counted refresh failure", |m| {
            refresh_failures(m).is_some_and(|n| n >= 1.0)
        })
        .await;
    // The old keys still work: more prechecks pass after the failure, none is refused.
    let before = runs(&failed);
    let m = e
        .metrics_until(
            Duration::from_secs(30),
            "prechecks after the failure",
            |m| runs(m) >= before + 2.0,
        )
        .await;
    assert!(ok(&m), "{m}");
    assert_eq!(sim.auth_failures(), 0, "{m}");
    assert!(
        keys.expiration(0) > SystemTime::now() || failures(&m, "no_credentials") > 0.0,
        "the window closed before the check; the machine is very slow"
    );
    // At Expiration the keys are dropped: nothing is sent with them (no 401), the cluster says
    // no_credentials, and the retries keep being counted.
    let m = e
        .metrics_until(
            Duration::from_secs(60),
            "no_credentials after expiry",
            |m| failures(m, "no_credentials") >= 1.0,
        )
        .await;
    assert_eq!(sim.auth_failures(), 0, "expired keys were sent:\n{m}");
    assert!(refresh_failures(&m).unwrap() >= 2.0, "{m}");
    // The metadata API recovers: the next retry gets pair 1 and prechecks pass again.
    meta.set_failing(false);
    e.metrics_until(Duration::from_secs(90), "ready again with new keys", |m| {
        ok(m) && value(m, "cdss_precheck_last_error_code", "cluster=\"orders\"") == Some(0.0)
    })
    .await;
    assert!(sim.authenticated_keys().contains(&keys.pair(1).0));
    e.stop().await;
}

#[tokio::test]
async fn a_401_after_a_rotation_refreshes_early_once() {
    // Pair 0 would be refreshed after a minute; pair 1 is issued at 3 s.
    let keys = RotatingKeys::new("EARLY", Duration::from_secs(3), Duration::from_secs(120));
    let (sim, meta) = (gateway().await, metadata(&keys).await);
    sim.accept_rotating(keys.clone());
    let home = tempfile::tempdir().unwrap();
    let e = Exporter::start(
        config(&sim.url(), "KR", ""),
        lookup(home.path(), &meta.url(), &[]),
    )
    .await;
    e.metrics_until(Duration::from_secs(30), "ready with pair 0", ok)
        .await;
    assert_eq!(meta.key_requests(), 1);
    while SystemTime::now() < keys.issued(1) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The server rotated and revoked pair 0 early: the next precheck gets a 401.
    sim.revoke(&keys.pair(0).0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !sim.authenticated_keys().contains(&keys.pair(1).0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no early refresh after the 401"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(meta.key_requests(), 2, "one early refresh");
    let m = e.metrics().await;
    let refused = sim.auth_failures();
    assert!(
        (1..=3).contains(&refused),
        "{refused} refused prechecks:\n{m}"
    );
    // Then back to the schedule: more prechecks, no more metadata calls, no more 401s.
    let r = runs(&m);
    e.metrics_until(Duration::from_secs(30), "prechecks with pair 1", |m| {
        runs(m) >= r + 3.0 && ok(m)
    })
    .await;
    assert_eq!(meta.key_requests(), 2, "an early refresh loop");
    assert_eq!(sim.auth_failures(), refused);
    e.stop().await;
}

#[tokio::test]
async fn a_krs_cluster_posts_to_the_krs_path() {
    assert!(PRECHECK_PATHS.contains(&"/api/krs-v1/cluster/rollingRestartPreCheck"));
    // A loopback gateway that records request lines and answers "ready".
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}", listener.local_addr().unwrap());
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let tx = lines_tx.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let _ = tx.send(line.trim_end().to_string());
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        if h == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; len];
                    let _ = reader.read_exact(&mut body).await;
                    let answer = r#"{"code":0,"message":"SUCCESS","result":true,"requestId":"r"}"#;
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if reader.get_mut().write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let home = tempfile::tempdir().unwrap();
    let e = Exporter::start(
        config(&gateway, "krs", ""),
        lookup(
            home.path(),
            CLOSED,
            &[
                ("NCLOUD_ACCESS_KEY", STATIC_AK),
                ("NCLOUD_SECRET_KEY", STATIC_SK),
            ],
        ),
    )
    .await;
    let line = tokio::time::timeout(Duration::from_secs(30), lines.recv())
        .await
        .expect("no precheck within 30 s")
        .unwrap();
    assert_eq!(
        line,
        "POST /api/krs-v1/cluster/rollingRestartPreCheck HTTP/1.1"
    );
    let m = e
        .metrics_until(Duration::from_secs(30), "a ready KRS precheck", ok)
        .await;
    assert!(m.contains("region=\"KRS\""), "{m}");
    e.stop().await;
}

#[tokio::test]
async fn changed_key_files_are_re_read_without_a_restart() {
    let sim = gateway().await;
    const NEW_AK: &str = "ROTATED-FILE-AK";
    const NEW_SK: &str = "rotated-file-secret-RmlsZQ";
    sim.add_account(NEW_AK, Secret::new(NEW_SK));
    let dir = tempfile::tempdir().unwrap();
    let (ak, sk) = (dir.path().join("ak"), dir.path().join("sk"));
    std::fs::write(&ak, STATIC_AK).unwrap();
    std::fs::write(&sk, STATIC_SK).unwrap();
    let credentials = format!(
        "credentials: {{access_key_file: '{}', secret_key_file: '{}'}}",
        ak.display(),
        sk.display()
    );
    let mut lookup = lookup(dir.path(), CLOSED, &[]);
    lookup.watch_every = Duration::from_millis(100);
    let e = Exporter::start(config(&sim.url(), "KR", &credentials), lookup).await;
    e.metrics_until(Duration::from_secs(30), "ready with the first keys", ok)
        .await;
    // A half-written change (empty secret file) keeps the old keys and is counted.
    std::fs::write(&sk, "").unwrap();
    e.metrics_until(Duration::from_secs(30), "a counted failed re-read", |m| {
        refresh_failures(m).is_some_and(|n| n >= 1.0)
    })
    .await;
    std::fs::write(&ak, format!("{NEW_AK}\n")).unwrap();
    std::fs::write(&sk, format!("{NEW_SK}\n")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !sim.authenticated_keys().iter().any(|k| k == NEW_AK) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new key files were not read"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = e.metrics().await;
    assert_eq!(sim.auth_failures(), 0, "{m}");
    assert_eq!(
        value(&m, "cdss_exporter_credentials_expiry_timestamp_seconds", ""),
        None,
        "file keys do not expire:\n{m}"
    );
    e.stop().await;
}

#[tokio::test]
async fn a_changed_configure_file_is_re_read_without_a_restart() {
    let sim = gateway().await;
    const NEW_AK: &str = "ROTATED-CONFIGURE-AK";
    const NEW_SK: &str = "rotated-configure-secret-Q29uZg";
    sim.add_account(NEW_AK, Secret::new(NEW_SK));
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".ncloud")).unwrap();
    let configure = home.path().join(".ncloud/configure");
    let write = |ak: &str, sk: &str| {
        std::fs::write(
            &configure,
            format!("[DEFAULT]\nncloud_access_key_id = {ak}\nncloud_secret_access_key = {sk}\n"),
        )
        .unwrap();
    };
    write(STATIC_AK, STATIC_SK);
    let mut lookup = lookup(home.path(), CLOSED, &[]);
    lookup.watch_every = Duration::from_millis(100);
    // No key source named: the chain, which finds the configure file.
    let e = Exporter::start(config(&sim.url(), "KR", ""), lookup).await;
    e.metrics_until(Duration::from_secs(30), "ready with the first keys", ok)
        .await;
    write(NEW_AK, NEW_SK);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !sim.authenticated_keys().iter().any(|k| k == NEW_AK) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the changed configure file was not read"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sim.auth_failures(), 0);
    e.stop().await;
}

/// The binary, with nothing of the developer's environment that could hold keys, and the
/// metadata API at `metadata` (loopback).
fn command(home: &Path, metadata: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("HOME", home)
        .env("NCLOUD_METADATA_API_ENDPOINT", metadata)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

fn write_config(dir: &Path, gateway: &str, region: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "interval: 1s\ntimeout: 900ms\napi_gateway: {gateway}\nclusters:\n  - {{name: orders, region: {region}, service_group_instance_no: {NO}}}\n"
        ),
    )
    .unwrap();
    path
}

async fn output(mut cmd: tokio::process::Command) -> (i32, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the exporter did not finish within 60 s")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_configure_file_and_the_id_env_spelling_authenticate() {
    let sim = gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.url(), "KR");
    let config = config.to_str().unwrap();
    let home = tempfile::tempdir().unwrap();
    // Once env or the configure file has keys, the metadata API must not be asked.
    let keys = RotatingKeys::new("UNUSED", Duration::from_secs(60), Duration::from_secs(60));
    let meta = metadata(&keys).await;

    // Nothing anywhere: `check` cannot ask (2) and names every place it looked.
    let (code, stdout, stderr) = output(command(
        home.path(),
        CLOSED,
        &["--config.file", config, "check", "--cluster", "orders"],
    ))
    .await;
    assert_eq!(code, 2, "{stdout}{stderr}");
    for looked in [
        "NCLOUD_ACCESS_KEY_ID / NCLOUD_ACCESS_KEY",
        "NCLOUD_SECRET_ACCESS_KEY / NCLOUD_SECRET_KEY",
        ".ncloud/configure (not found)",
        "metadata API http://127.0.0.1:9",
    ] {
        assert!(stderr.contains(looked), "{looked:?} not in {stderr}");
    }

    // The `_ID` spellings of NCP's SDKs.
    let mut cmd = command(
        home.path(),
        &meta.url(),
        &["--config.file", config, "check", "--cluster", "orders"],
    );
    cmd.env("NCLOUD_ACCESS_KEY_ID", STATIC_AK)
        .env("NCLOUD_SECRET_ACCESS_KEY", STATIC_SK);
    let (code, stdout, stderr) = output(cmd).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l == "GO: every cluster is ready for a rolling restart"),
        "{stdout}"
    );
    assert_eq!(meta.requests(), 0, "env keys: the metadata API was asked");

    // The configure file, with a header line and `=` inside the secret's neighbours ignored.
    std::fs::create_dir(home.path().join(".ncloud")).unwrap();
    let configure = home.path().join(".ncloud/configure");
    std::fs::write(
        &configure,
        format!(
            "[DEFAULT]\nncloud_access_key_id = {STATIC_AK}\nncloud_secret_access_key = {STATIC_SK}\nncloud_api_url = https://x/?a=b\n"
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&configure, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let before = sim.calls(NO);
    let (code, stdout, stderr) = output(command(
        home.path(),
        &meta.url(),
        &["--config.file", config, "check", "--cluster", "orders"],
    ))
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(sim.calls(NO) > before);
    assert_eq!(sim.auth_failures(), 0);
    assert_eq!(
        meta.requests(),
        0,
        "configure file: the metadata API was asked"
    );
    assert!(!stderr.contains("readable by other users"), "{stderr}");

    // Readable by others: it still works, with a warning that names the file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&configure, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (code, stdout, stderr) = output(command(
            home.path(),
            &meta.url(),
            &["--config.file", config, "check", "--cluster", "orders"],
        ))
        .await;
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(
            stderr
                .contains("the configure file is readable by other users; restrict it (chmod 600)"),
            "{stderr}"
        );
        std::fs::set_permissions(&configure, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    // `--config.check` says where the keys were found, and no key byte.
    let (code, stdout, stderr) = output(command(
        home.path(),
        &meta.url(),
        &["--config.file", config, "--config.check"],
    ))
    .await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    let expected = format!(
        "account \"default\": keys from file {}",
        configure.display()
    );
    assert!(stdout.contains(&expected), "{stdout}");
    assert_eq!(
        meta.requests(),
        0,
        "--config.check: the metadata API was asked"
    );
    assert_clean(
        "--config.check",
        &format!("{stdout}{stderr}"),
        &[STATIC_AK, STATIC_SK],
    );
}

#[tokio::test]
async fn ncloud_api_gw_replaces_the_gateway_host() {
    let sim = gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    // No api_gateway: NCP's own host, unless NCLOUD_API_GW says otherwise.
    std::fs::write(
        &path,
        format!("clusters:\n  - {{name: orders, region: KR, service_group_instance_no: {NO}}}\n"),
    )
    .unwrap();
    let mut cmd = command(
        dir.path(),
        CLOSED,
        &[
            "--config.file",
            path.to_str().unwrap(),
            "check",
            "--cluster",
            "orders",
        ],
    );
    cmd.env("NCLOUD_API_GW", sim.url())
        .env("NCLOUD_ACCESS_KEY", STATIC_AK)
        .env("NCLOUD_SECRET_KEY", STATIC_SK)
        // Should the variable be ignored, the https request to NCP's host goes to this closed
        // loopback proxy instead of leaving the machine.
        .env("HTTPS_PROXY", CLOSED)
        .env("https_proxy", CLOSED);
    let (code, stdout, stderr) = output(cmd).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(sim.calls(NO), 1, "{stdout}{stderr}");
}

fn assert_clean(what: &str, text: &str, keys: &[&str]) {
    for key in keys {
        for form in secret_forms(key) {
            assert!(!text.contains(&form), "{what} contains a key (as {form:?})");
        }
    }
}

#[tokio::test]
async fn role_keys_never_show_at_trace_level() {
    let keys = RotatingKeys::new("GREP", Duration::from_secs(1), Duration::from_secs(3));
    let (sim, meta) = (gateway().await, metadata(&keys).await);
    sim.accept_rotating(keys.clone());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sim.url(), "KR");
    let config = config.to_str().unwrap();
    let home = tempfile::tempdir().unwrap();

    let mut outputs = Vec::new();
    let (_, stdout, stderr) = output(command(
        home.path(),
        &meta.url(),
        &[
            "--config.file",
            config,
            "--config.check",
            "--log.level",
            "trace",
        ],
    ))
    .await;
    assert!(
        stdout.contains("keys from server role \"cdss-reader\""),
        "{stdout}{stderr}"
    );
    outputs.push(("--config.check".to_string(), format!("{stdout}{stderr}")));
    let mut cmd = command(
        home.path(),
        &meta.url(),
        &[
            "--config.file",
            config,
            "--log.level",
            "trace",
            "check",
            "--cluster",
            "orders",
            "--json",
        ],
    );
    cmd.env("RUST_LOG", "trace");
    let (code, stdout, stderr) = output(cmd).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    outputs.push(("check".to_string(), format!("{stdout}{stderr}")));

    // The exporter itself, at trace level, through rotations and a metadata outage.
    let mut cmd = command(
        home.path(),
        &meta.url(),
        &[
            "--config.file",
            config,
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.level",
            "trace",
        ],
    );
    cmd.env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (addr_tx, addr_rx) = oneshot::channel::<String>();
    let logs = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let (mut all, mut addr_tx) = (String::new(), Some(addr_tx));
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("address=").nth(1) {
                if let Some(tx) = addr_tx.take() {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let addr = tokio::time::timeout(Duration::from_secs(60), addr_rx)
        .await
        .expect("the exporter never said where it listens")
        .expect("the exporter exited before listening");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |path: &str| {
        let (http, url) = (http.clone(), format!("http://{addr}{path}"));
        async move {
            match http.get(url).send().await {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            }
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while sim
        .authenticated_keys()
        .iter()
        .filter(|k| keys.owns(k))
        .count()
        < 3
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "keys did not rotate"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A refresh failure is logged too (warn, with the error).
    meta.set_failing(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let m = get("/metrics").await;
        if refresh_failures(&m).is_some_and(|n| n >= 1.0) {
            outputs.push(("/metrics".into(), m));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no refresh failure:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    meta.set_failing(false);
    for path in ["/", "/gate/orders", "/-/ready"] {
        outputs.push((path.to_string(), get(path).await));
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("no exit after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout).await;
    }
    outputs.push(("exporter stdout".into(), stdout));
    let logs = logs.await.unwrap();
    assert!(logs.contains("server role keys refreshed"), "{logs}");
    assert!(
        logs.contains("refreshing the server role keys failed"),
        "{logs}"
    );
    outputs.push(("exporter stderr".into(), logs));

    let last = keys.index_at(SystemTime::now()) + 1;
    let mut all_keys: Vec<String> = (0..=last)
        .flat_map(|n| {
            let (ak, sk) = keys.pair(n);
            [ak, sk.expose().to_string()]
        })
        .collect();
    all_keys.push(STATIC_SK.to_string());
    let all_keys: Vec<&str> = all_keys.iter().map(String::as_str).collect();
    for (what, text) in &outputs {
        assert_clean(what, text, &all_keys);
    }
}
