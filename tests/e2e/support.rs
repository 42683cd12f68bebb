//! Shared test harness: a simulated gateway plus the exporter's library entry point, both on
//! 127.0.0.1:0, and helpers to read `/metrics` as a user would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use cdss_precheck_exporter::config::Config;
use cdss_precheck_exporter::credentials::Credentials;
use cdss_precheck_exporter::secret::Secret;
use cdss_precheck_exporter::sim::{Behaviour, SimConfig, SimGateway};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ACCESS_KEY: &str = "TEST-ACCESS-KEY";
pub const SECRET_KEY: &str = "test-secret-key-Zm9vYmFy-do-not-leak";

/// A running exporter and the simulated gateway it talks to.
pub struct Harness {
    pub sim: SimGateway,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// One cluster: name, region, instance number, and the simulator's behaviour for it (`None`:
/// not in the simulator's table, so it answers code 3).
pub type Spec = (&'static str, &'static str, u64, Option<Behaviour>);

pub async fn start_sim(clusters: &[Spec]) -> SimGateway {
    let table: HashMap<u64, Behaviour> = clusters
        .iter()
        .filter_map(|(_, _, no, b)| b.clone().map(|b| (*no, b)))
        .collect();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    SimGateway::start(
        listener,
        SimConfig {
            access_key: ACCESS_KEY.into(),
            secret_key: Secret::new(SECRET_KEY),
            clusters: table,
        },
    )
    .unwrap()
}

/// Waits, if need be, until `name`'s next scheduled slot at `interval` is more than `clear`
/// away, so that a test counting upstream calls over the next `clear` is not joined by a
/// scheduled precheck. Slots are anchored to the wall clock (`scheduler::slot`), so without this
/// a slot lands inside a test's window by chance (a CI run saw 3 calls where 2 were due).
pub async fn clear_of_slot(name: &str, interval: Duration, clear: Duration) {
    clear_of_slots(&[name], interval, clear).await;
}

/// [`clear_of_slot`] for several clusters at once: waits until none of their next slots is
/// within `clear` (or, where no such moment comes before the last of their next slots, until just
/// past that one).
pub async fn clear_of_slots(names: &[&str], interval: Duration, clear: Duration) {
    use cdss_precheck_exporter::scheduler::slot::{next_slot, phase, wall_anchor};
    let now = tokio::time::Instant::now();
    let anchor = wall_anchor(now, std::time::SystemTime::now(), interval);
    let next = |at| -> Vec<tokio::time::Instant> {
        names
            .iter()
            .map(|name| next_slot(anchor, phase(name, interval), interval, at))
            .collect()
    };
    // Just past a slot, with a little room for the precheck it starts.
    let room = (interval / 10).min(Duration::from_secs(1));
    let mut candidates: Vec<_> = next(now).into_iter().map(|slot| slot + room).collect();
    candidates.sort();
    candidates.insert(0, now);
    let start = candidates
        .iter()
        .copied()
        .find(|&at| next(at).iter().all(|&slot| slot - at > clear))
        .unwrap_or(*candidates.last().expect("now is a candidate"));
    tokio::time::sleep_until(start).await;
}

pub fn config_yaml(gateway: &str, head: &str, clusters: &[Spec]) -> String {
    let mut yaml = format!("{head}\napi_gateway: {gateway}\nclusters:\n");
    for (name, region, no, _) in clusters {
        yaml.push_str(&format!(
            "  - {{name: {name}, region: {region}, service_group_instance_no: {no}}}\n"
        ));
    }
    yaml
}

impl Harness {
    /// Starts the gateway and the exporter. `head` holds top-level keys (interval, timeout, ...).
    pub async fn start(head: &str, clusters: &[Spec]) -> Self {
        Self::start_with_secret(head, clusters, SECRET_KEY).await
    }

    /// Like `start`, but the exporter signs with `secret` (a wrong one tests auth failures).
    pub async fn start_with_secret(head: &str, clusters: &[Spec], secret: &str) -> Self {
        Self::start_full(head, clusters, "", secret).await
    }

    /// Like `start`, with more cluster lines (YAML list items) appended to `clusters:`.
    pub async fn start_with_extra(head: &str, clusters: &[Spec], extra: &str) -> Self {
        Self::start_full(head, clusters, extra, SECRET_KEY).await
    }

    async fn start_full(head: &str, clusters: &[Spec], extra: &str, secret: &str) -> Self {
        let sim = start_sim(clusters).await;
        let yaml = config_yaml(&sim.url(), head, clusters) + extra;
        let config = Config::parse(&yaml, Path::new("test.yaml")).unwrap_or_else(|e| panic!("{e}"));
        let creds = Credentials {
            access_key: ACCESS_KEY.into(),
            secret_key: Secret::new(secret),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(cdss_precheck_exporter::app::run(
            listener,
            cdss_precheck_exporter::app::Options::new(config, creds),
            async {
                let _ = stopped.await;
            },
        ));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Self {
            sim,
            addr,
            http,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    pub async fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200);
        body
    }

    /// Polls `/-/ready` until 200 (the first round is done), for at most `limit`.
    pub async fn wait_ready(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.get("/-/ready").await.0 == 200 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "exporter not ready within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops the exporter and waits for `run` to return.
    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    /// Stops the exporter like [`stop`](Self::stop) and hands back the gateway, whose counts
    /// are then final (in-flight prechecks end before `run` returns).
    pub async fn stop_keeping_sim(mut self) -> SimGateway {
        self.shut_down().await;
        self.sim
    }

    async fn shut_down(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

/// The value of `name{cluster="C",region="R"...}` in an exposition, if present.
pub fn value(metrics: &str, name: &str, cluster: &str) -> Option<f64> {
    value_with(metrics, name, &format!("cluster=\"{cluster}\""))
}

/// The value of `name` where it has no labels.
pub fn value_plain(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The value of the first sample of `name` whose label set contains `labels_fragment`.
pub fn value_with(metrics: &str, name: &str, labels_fragment: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels_fragment))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Sends `GET {path}` exactly as written (no client-side normalisation of `..` or `%2F`) and
/// returns the status code.
pub async fn raw_get_status(addr: SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    sock.read_to_end(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf);
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// An exporter started from a config *file* (so it can be reloaded), with credentials in files.
pub struct FileHarness {
    pub inner: Harness,
    pub dir: tempfile::TempDir,
    pub config: std::path::PathBuf,
}

impl FileHarness {
    /// Writes `yaml` (which may refer to `{dir}`, replaced by the temp dir) and the default
    /// account's key files (`{dir}/ak`, `{dir}/sk`), then starts the exporter with reload on.
    pub async fn start(sim: SimGateway, yaml: &str, auto_reload: Option<Duration>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ak"), ACCESS_KEY).unwrap();
        std::fs::write(dir.path().join("sk"), SECRET_KEY).unwrap();
        let config_path = dir.path().join("config.yaml");
        let yaml = yaml
            .replace("{dir}", &dir.path().display().to_string())
            .replace("{gateway}", &sim.url());
        std::fs::write(&config_path, &yaml).unwrap();
        let config = Config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
        let keyring = cdss_precheck_exporter::credentials::Keyring::load(
            &config.accounts,
            &cdss_precheck_exporter::credentials::Lookup::isolated(),
        )
        .await
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let reload = cdss_precheck_exporter::app::ReloadOptions {
            config_file: config_path.clone(),
            auto_reload_interval: auto_reload,
        };
        let task = tokio::spawn(cdss_precheck_exporter::app::run(
            listener,
            cdss_precheck_exporter::app::Options {
                reload: Some(reload),
                ..cdss_precheck_exporter::app::Options::new(config, keyring)
            },
            async {
                let _ = stopped.await;
            },
        ));
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let inner = Harness {
            sim,
            addr,
            http,
            stop: Some(stop),
            task: Some(task),
        };
        Self {
            inner,
            dir,
            config: config_path,
        }
    }

    /// Replaces the config file (same `{dir}`/`{gateway}` substitutions).
    pub fn write_config(&self, yaml: &str) {
        let yaml = yaml
            .replace("{dir}", &self.dir.path().display().to_string())
            .replace("{gateway}", &self.inner.sim.url());
        std::fs::write(&self.config, yaml).unwrap();
    }

    /// `POST /-/reload`: (status, body).
    pub async fn reload(&self) -> (u16, String) {
        let r = self
            .inner
            .http
            .post(self.inner.url("/-/reload"))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }
}

/// Polls `/metrics` until `pred` holds, for at most `limit`; returns that exposition.
pub async fn metrics_until(
    h: &Harness,
    limit: Duration,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    poll_until(limit, what, || h.metrics(), pred).await
}

/// Calls `fetch` every 50 ms until its text satisfies `pred`, for at most `limit`.
pub async fn poll_until<F, Fut>(
    limit: Duration,
    what: &str,
    fetch: F,
    pred: impl Fn(&str) -> bool,
) -> String
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let text = fetch().await;
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

/// Every sample line that mentions `cluster="NAME"`.
pub fn series_of<'a>(metrics: &'a str, cluster: &str) -> Vec<&'a str> {
    let needle = format!("cluster=\"{cluster}\"");
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(&needle))
        .collect()
}

/// The real binary, running as a subprocess with stderr piped; its listening address is read
/// from its `listening` log line (so it must log at `info` or more).
pub struct Process {
    pub child: std::process::Child,
    pub addr: String,
    logs: Option<std::thread::JoinHandle<String>>,
}

impl Process {
    /// Spawns `cmd` (which must listen on `127.0.0.1:0`) and waits until it listens.
    pub fn spawn(mut cmd: std::process::Command) -> Self {
        use std::io::BufRead as _;
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        // Reads every line (so the child never blocks on a full pipe) and keeps them all.
        let logs = std::thread::spawn(move || {
            let mut all = String::new();
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let addr = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("the exporter exited or never said where it listens");
            if let Some(rest) = line.split("address=").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        Self {
            child,
            addr,
            logs: Some(logs),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `HUP`, `INT`).
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// `GET http://ADDR{path}` body ("" when the request fails).
    pub async fn get(&self, path: &str) -> String {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        match http.get(format!("http://{}{path}", self.addr)).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Polls its `/metrics` until `pred` holds, for at most `limit`.
    pub async fn metrics_until(
        &self,
        limit: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        poll_until(limit, what, || self.get("/metrics"), pred).await
    }

    /// SIGTERM, wait; returns the exit code and everything it logged.
    pub fn terminate(self) -> (Option<i32>, String) {
        self.stop_with("TERM")
    }

    /// Sends `signal` (a name as `kill -NAME` takes it), waits; returns the exit code and the logs.
    pub fn stop_with(mut self, signal: &str) -> (Option<i32>, String) {
        self.signal(signal);
        let code = self.child.wait().unwrap().code();
        let logs = self
            .logs
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        (code, logs)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The exporter binary with the test credentials in its environment and no RUST_LOG.
pub fn exporter_command(args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cdss-precheck-exporter"));
    cmd.args(args)
        .env("NCLOUD_ACCESS_KEY", ACCESS_KEY)
        .env("NCLOUD_SECRET_KEY", SECRET_KEY)
        .env_remove("RUST_LOG");
    no_key_chain(&mut cmd);
    cmd
}

/// Keeps the key chain on this machine: the metadata API on a closed loopback port, and a
/// `HOME` without `.ncloud/configure` (never the developer's own).
pub fn no_key_chain(cmd: &mut std::process::Command) {
    cmd.env("NCLOUD_METADATA_API_ENDPOINT", "http://127.0.0.1:9")
        .env("HOME", "/nonexistent-home-for-tests")
        .env_remove("NCLOUD_ACCESS_KEY_ID")
        .env_remove("NCLOUD_SECRET_ACCESS_KEY")
        .env_remove("NCLOUD_API_GW");
}

/// Runs the exporter binary to completion with no credentials in its environment:
/// (exit code, stdout, stderr).
pub fn run_exporter(args: &[&str]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cdss-precheck-exporter"));
    cmd.args(args)
        .env_remove("NCLOUD_ACCESS_KEY")
        .env_remove("NCLOUD_SECRET_KEY")
        .env_remove("RUST_LOG");
    no_key_chain(&mut cmd);
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A secret as it could leak: plain, and in every base64 form.
pub fn secret_forms(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let b = secret.as_bytes();
    vec![
        secret.to_string(),
        STANDARD.encode(b),
        STANDARD_NO_PAD.encode(b),
        URL_SAFE.encode(b),
        URL_SAFE_NO_PAD.encode(b),
    ]
}
