//! The dashboard and the alert rules against a real Prometheus server scraping the real exporter.
//!
//! Two exporters run the library entry point against the demo's simulated gateway: one with the
//! demo credentials, one with a wrong secret key (so the auth alert has something to see). A
//! third target is a closed port (so the exporter-down alert does). A real `prometheus` process
//! scrapes all three every second and evaluates `dashboards/alerts.yaml` (as the mixin renders
//! it) itself, unmodified: all
//! on 127.0.0.1, random ports, a temporary data directory. The test then runs every dashboard
//! query (variables substituted as Grafana would) and every alert expression through the HTTP
//! query API, and reads `/api/v1/alerts`. `promtool check metrics` lints a live scrape.
//!
//! The Prometheus child is killed when its guard drops, also when the test panics.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::{
    alert_rules, builtin_values, dashboard, dashboard_queries, parse_label_values, repo_path,
    substitute, tool, variable_queries,
};
use cdss_precheck_exporter::config::Config;
use cdss_precheck_exporter::credentials::Credentials;
use cdss_precheck_exporter::demo;
use cdss_precheck_exporter::secret::Secret;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Prometheus's job name: the one the alert rules and the README's scrape config use.
const JOB: &str = "cdss-precheck";
/// How long the test waits for Prometheus to see what it expects.
const PATIENCE: Duration = Duration::from_secs(90);
/// Panels that show only clusters NCP is changing at the moment of the query: their queries must
/// be valid, but the demo's clusters may all be still then.
const ONLY_WHILE_CHANGING: &[&str] = &["Clusters changing now"];

/// One exporter, run through the library entry point on 127.0.0.1:0.
struct Exporter {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Exporter {
    async fn start(config: Config, credentials: Credentials) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(cdss_precheck_exporter::app::run(
            listener,
            cdss_precheck_exporter::app::Options::new(config, credentials),
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

/// A child process that is killed and reaped when this guard drops, also during a panic.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `prometheus` server.
struct Prometheus {
    /// Declared first, so the process is gone before its data directory is removed.
    child: KillOnDrop,
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// Its stdout and stderr, shown when something fails.
    log: PathBuf,
    /// Config, TSDB and log; removed on drop.
    _dir: tempfile::TempDir,
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` and evaluating `rule_file`, both every second, and
    /// returns once `/-/ready` answers 200. A port taken between choosing and binding it is
    /// retried with another.
    async fn start(
        binary: &Path,
        targets: &[SocketAddr],
        rule_file: &Path,
        http: &reqwest::Client,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let targets: Vec<String> = targets.iter().map(|a| format!("'{a}'")).collect();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - '{}'\n\
                 scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: [{}]\n",
                rule_file.display(),
                targets.join(", ")
            ),
        )
        .unwrap();
        let log = dir.path().join("prometheus.log");
        for _attempt in 0..3 {
            let port = free_port();
            let log_file = std::fs::File::create(&log).unwrap();
            let mut child = KillOnDrop(
                Command::new(binary)
                    .arg(format!("--config.file={}", config.display()))
                    .arg(format!(
                        "--storage.tsdb.path={}",
                        dir.path().join("data").display()
                    ))
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                    .stdin(Stdio::null())
                    .stdout(log_file.try_clone().unwrap())
                    .stderr(log_file)
                    .spawn()
                    .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display())),
            );
            let base = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(status)) = child.0.try_wait() {
                    eprintln!(
                        "prometheus exited ({status}), trying another port:\n{}",
                        read_log(&log)
                    );
                    break;
                }
                if let Ok(r) = http.get(format!("{base}/-/ready")).send().await {
                    if r.status().is_success() {
                        return Prometheus {
                            child,
                            base,
                            log,
                            _dir: dir,
                        };
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "prometheus not ready within 60 s:\n{}",
                    read_log(&log)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!(
            "prometheus did not start in 3 attempts:\n{}",
            read_log(&log)
        );
    }

    fn log_text(&self) -> String {
        read_log(&self.log)
    }

    /// The `data` of a successful API answer, or Prometheus's error text.
    async fn api(
        &self,
        http: &reqwest::Client,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<Value, String> {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.base), params)
            .map_err(|e| e.to_string())?;
        let r = http.get(url).send().await.map_err(|e| e.to_string())?;
        let text = r.text().await.map_err(|e| e.to_string())?;
        let body: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        if body["status"] == "success" {
            Ok(body["data"].clone())
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }

    /// An instant query's result vector.
    async fn query(&self, http: &reqwest::Client, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api(http, "/api/v1/query", &[("query", expr)]).await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// A range query over the last `range`, one point a second.
    async fn query_range(
        &self,
        http: &reqwest::Client,
        expr: &str,
        range: Duration,
    ) -> Result<Vec<Value>, String> {
        let end = unix_now();
        let (start, end) = (
            format!("{:.3}", end - range.as_secs_f64()),
            format!("{end:.3}"),
        );
        let data = self
            .api(
                http,
                "/api/v1/query_range",
                &[
                    ("query", expr),
                    ("start", &start),
                    ("end", &end),
                    ("step", "1"),
                ],
            )
            .await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Pending and firing alerts.
    async fn alerts(&self, http: &reqwest::Client) -> Vec<Alert> {
        let data = self
            .api(http, "/api/v1/alerts", &[])
            .await
            .unwrap_or_else(|e| panic!("/api/v1/alerts: {e}"));
        data["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(Alert::from_api)
            .collect()
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One alert from `/api/v1/alerts`.
#[derive(Debug, Clone)]
struct Alert {
    name: String,
    state: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

impl Alert {
    fn from_api(v: &Value) -> Self {
        let labels = string_map(&v["labels"]);
        Alert {
            name: labels.get("alertname").cloned().unwrap_or_default(),
            state: v["state"].as_str().unwrap_or_default().to_string(),
            labels,
            annotations: string_map(&v["annotations"]),
        }
    }

    fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// The value of a sample in an instant-query result.
fn sample_value(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// (instance, cluster) → value, for an instant-query result.
fn by_instance_and_cluster(result: &[Value]) -> BTreeMap<(String, String), f64> {
    result
        .iter()
        .map(|s| {
            let m = &s["metric"];
            (
                (
                    m["instance"].as_str().unwrap_or_default().to_string(),
                    m["cluster"].as_str().unwrap_or_default().to_string(),
                ),
                sample_value(s),
            )
        })
        .collect()
}

/// Polls the exporter's `/-/ready` until its first round of prechecks is done.
async fn wait_ready(http: &reqwest::Client, addr: SocketAddr) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(r) = http.get(format!("http://{addr}/-/ready")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "exporter {addr} not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `promtool check metrics` on an exposition: (success, everything it printed).
fn promtool_check_metrics(promtool: &Path, exposition: &str) -> (bool, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_string())
}

/// Runs `expr` until its result satisfies `done`, for at most `PATIENCE`; an invalid query
/// fails at once.
async fn eventually(
    prom: &Prometheus,
    http: &reqwest::Client,
    expr: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let result = prom
            .query(http, expr)
            .await
            .unwrap_or_else(|e| panic!("{what}: invalid query {expr}: {e}"));
        if done(&result) {
            return result;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {expr} gave {result:?} after {PATIENCE:?}\nprometheus log:\n{}",
            prom.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The cluster the first exporter finds through discovery, and its number.
/// Values for the dashboard's variables, as Grafana substitutes them.
fn variables<'a>(job: &'a str, region: &'a str, cluster: &'a str) -> BTreeMap<&'a str, &'a str> {
    let mut v = builtin_values();
    v.insert("job", job);
    v.insert("region", region);
    v.insert("cluster", cluster);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_queries_and_alert_rules_work_against_a_real_prometheus() {
    let prometheus_bin = tool("prometheus");
    let promtool = tool("promtool");
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // The demo gateway and clusters, prechecked every 4 s instead of the demo's 15 s, so that
    // "no answer for 3 intervals" happens within the test; the timeout stays above the 2 s the
    // demo's slow cluster takes.
    let (sim, _, credentials) = demo::start().await.unwrap();
    let mut config = demo::config(&sim.url()).unwrap();
    config.interval = Duration::from_secs(4);
    config.timeout = Duration::from_secs(3);
    // The first exporter runs the demo as shipped (its discovery block finds the demo's two
    // listed clusters), only faster.
    let good = Exporter::start(config.clone(), credentials).await;
    // Same gateway and clusters, wrong secret key: every precheck gets gateway error 200.
    let bad = Exporter::start(
        config,
        Credentials {
            access_key: demo::DEMO_ACCESS_KEY.into(),
            secret_key: Secret::new("not-the-demo-secret-key"),
        },
    )
    .await;
    // A port nobody listens on: a target that is down.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (good_i, bad_i, dead_i) = (
        good.addr.to_string(),
        bad.addr.to_string(),
        dead.to_string(),
    );

    // promtool's linter on a live scrape, after the first round, when every family has series.
    wait_ready(&http, good.addr).await;
    wait_ready(&http, bad.addr).await;
    let exposition = http
        .get(format!("http://{}/metrics", good.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        exposition.contains("cdss_precheck_failures_total{"),
        "{exposition}"
    );
    assert!(
        exposition.contains("\ncdss_exporter_precheck_interval_seconds 4\n"),
        "{exposition}"
    );
    let (lint_ok, lint) = promtool_check_metrics(&promtool, &exposition);
    assert!(
        lint_ok && lint.is_empty(),
        "promtool check metrics found problems:\n{lint}"
    );

    let prom = Prometheus::start(
        &prometheus_bin,
        &[good.addr, bad.addr, dead],
        &repo_path("dashboards/alerts.yaml"),
        &http,
    )
    .await;
    let pid = prom.child.0.id();

    // Scraped: both exporters after their first round, the dead target tried, 3+ samples each.
    eventually(
        &prom,
        &http,
        &format!("count_over_time(up{{job=\"{JOB}\"}}[1m]) >= 3"),
        "three scrapes of each target",
        |r| r.len() == 3,
    )
    .await;
    eventually(
        &prom,
        &http,
        "cdss_exporter_first_round_complete == 1",
        "both exporters scraped after their first round",
        |r| r.len() == 2,
    )
    .await;

    // Every alert expression is valid PromQL for this Prometheus.
    let rules = alert_rules();
    for rule in &rules {
        let expr = rule["expr"].as_str().expect("expr");
        prom.query(&http, expr)
            .await
            .unwrap_or_else(|e| panic!("alert {}: invalid expression {expr}: {e}", rule["alert"]));
    }

    // The variables' label_values queries find the demo's jobs, regions and clusters.
    let d = dashboard();
    let any = variables(".*", ".*", ".*");
    let now = unix_now();
    let (start, end) = (format!("{:.0}", now - 300.0), format!("{now:.0}"));
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, q) in variable_queries(&d) {
        let (selector, label) = parse_label_values(&q);
        let selector = substitute(&selector, &any);
        let series = prom
            .api(
                &http,
                "/api/v1/series",
                &[("match[]", &selector), ("start", &start), ("end", &end)],
            )
            .await
            .unwrap_or_else(|e| panic!("variable {name}: {selector}: {e}"));
        let values: BTreeSet<String> = series
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s[&label].as_str().map(str::to_string))
            .collect();
        found.insert(name, values);
    }
    let demo_clusters: BTreeSet<String> = demo::clusters()
        .iter()
        .map(|(name, ..)| name.to_string())
        .collect();
    let mut all_clusters = demo_clusters.clone();
    all_clusters.extend(demo::DISCOVERED.iter().map(|(name, _)| name.to_string()));
    assert_eq!(found["job"], BTreeSet::from([JOB.to_string()]));
    assert_eq!(
        found["region"],
        ["GOV", "JPN", "KR", "SGN"].map(String::from).into()
    );
    assert_eq!(found["cluster"], all_clusters);

    // Every dashboard query, with "All" selected and with a pick of two regions and clusters,
    // is valid and returns data, as an instant query and as a range query.
    let queries = dashboard_queries(&d);
    // "All": Grafana joins the job variable's values into a regex (it has no allValue), and
    // uses `.*` for region and cluster.
    let job_all = format!(
        "({})",
        found["job"].iter().cloned().collect::<Vec<_>>().join("|")
    );
    let all = variables(&job_all, ".*", ".*");
    let picked = variables(JOB, "(KR|SGN)", "(payments-kafka|search-kafka)");
    // An exporter without cdss_cluster_changing (issue 24 adds it) leaves the maintenance
    // panels empty: then their queries are only checked to be valid.
    let exports_changing = exposition.contains("\ncdss_cluster_changing{");
    if !exports_changing {
        eprintln!("the exporter has no cdss_cluster_changing: maintenance panels only parsed");
    }
    for (selection, values) in [("All", &all), ("picked", &picked)] {
        for (title, expr) in &queries {
            let q = substitute(expr, values);
            let what = format!("panel {title:?} ({selection})");
            if ONLY_WHILE_CHANGING.contains(&title.as_str())
                || (!exports_changing && expr.contains("cdss_cluster_changing"))
            {
                prom.query(&http, &q)
                    .await
                    .unwrap_or_else(|e| panic!("{what}: invalid query {q}: {e}"));
                continue;
            }
            eventually(&prom, &http, &q, &what, |r| !r.is_empty()).await;
            let range = prom
                .query_range(&http, &q, Duration::from_secs(30))
                .await
                .unwrap_or_else(|e| panic!("{what}: range query {q}: {e}"));
            assert!(
                !range.is_empty(),
                "{what}: range query {q} returned nothing"
            );
        }
    }

    // What some panels show for the demo, beyond "there is data".
    let panel_query = |title: &str| -> String {
        let (_, expr) = queries
            .iter()
            .find(|(t, _)| t == title)
            .unwrap_or_else(|| panic!("no panel {title:?}"));
        substitute(expr, &all)
    };
    let ready = by_instance_and_cluster(
        &prom
            .query(&http, &panel_query("Readiness per cluster"))
            .await
            .unwrap(),
    );
    for (cluster, expected) in [
        ("orders-kafka", 1.0),
        ("analytics-kafka", 1.0),
        ("payments-kafka", 0.0),
        ("legacy-kafka", 0.0),
        ("search-kafka", 0.0),
        ("events-kafka", 0.0),
    ] {
        assert_eq!(
            ready[&(good_i.clone(), cluster.into())],
            expected,
            "{cluster}"
        );
        assert_eq!(
            ready[&(bad_i.clone(), cluster.into())],
            0.0,
            "{cluster}, bad key"
        );
    }
    let codes = by_instance_and_cluster(
        &prom
            .query(&http, &panel_query("Last error code"))
            .await
            .unwrap(),
    );
    for (cluster, code) in [
        ("orders-kafka", 0.0),
        ("payments-kafka", 0.0),
        ("legacy-kafka", 3.0),
        ("search-kafka", -1.0),
        ("events-kafka", 420.0),
    ] {
        assert_eq!(codes[&(good_i.clone(), cluster.into())], code, "{cluster}");
        assert_eq!(
            codes[&(bad_i.clone(), cluster.into())],
            200.0,
            "{cluster}, bad key"
        );
    }
    // Never answered shows as -1 ("never"); answered shows a small age.
    let age = by_instance_and_cluster(
        &prom
            .query(&http, &panel_query("Time since last answer from CDSS"))
            .await
            .unwrap(),
    );
    for cluster in ["legacy-kafka", "search-kafka", "events-kafka"] {
        assert_eq!(age[&(good_i.clone(), cluster.into())], -1.0, "{cluster}");
    }
    for cluster in ["orders-kafka", "payments-kafka", "analytics-kafka"] {
        let a = age[&(good_i.clone(), cluster.into())];
        assert!((0.0..60.0).contains(&a), "{cluster}: last answer {a} s ago");
    }
    let up = by_instance_and_cluster(
        &prom
            .query(&http, &panel_query("Exporter up"))
            .await
            .unwrap(),
    );
    assert_eq!(
        up,
        BTreeMap::from([
            ((good_i.clone(), String::new()), 1.0),
            ((bad_i.clone(), String::new()), 1.0),
            ((dead_i.clone(), String::new()), 0.0),
        ])
    );
    // Both exporters have the demo's KR discovery block; with good keys it finds the demo's two
    // listed clusters. With wrong keys its listing fails, so it has no count at all (never
    // listed is not 0 clusters).
    let discovered = prom
        .query(&http, &panel_query("Discovered clusters"))
        .await
        .unwrap();
    assert_eq!(discovered.len(), 1, "{discovered:?}");
    assert_eq!(discovered[0]["metric"]["region"], "KR", "{discovered:?}");
    assert_eq!(
        discovered[0]["metric"]["instance"],
        good_i.as_str(),
        "{discovered:?}"
    );
    assert_eq!(
        sample_value(&discovered[0]),
        demo::DISCOVERED.len() as f64,
        "{discovered:?}"
    );
    // The not-ready cluster's node status, from getClusterStatus: kafka-2 is red. (The demo's
    // changing cluster has an orange broker or none, depending on when its restart is.)
    let nodes = prom
        .query(&http, &panel_query("Node status (getClusterStatus)"))
        .await
        .unwrap();
    let red: Vec<_> = nodes
        .iter()
        .filter(|n| n["metric"]["failing"] == "true")
        .filter(|n| n["metric"]["cluster"] != demo::CHANGING.0)
        .map(|n| {
            (
                n["metric"]["instance"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                n["metric"]["cluster"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                n["metric"]["hostname"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                n["metric"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        red,
        [(
            good_i.clone(),
            "payments-kafka".to_string(),
            "kafka-2".to_string(),
            "red".to_string()
        )],
        "{nodes:?}"
    );
    // The reload panel: 1 while no reload failed, for both live exporters (this version always
    // exposes the metric; the panel's "-1 without it" branch is for older versions). The dead
    // target has no series at all. Expected values are fixed here, not read from the exporter.
    assert!(
        exposition
            .lines()
            .any(|l| l == "cdss_exporter_config_last_reload_successful 1"),
        "{exposition}"
    );
    let reload = by_instance_and_cluster(
        &prom
            .query(&http, &panel_query("Config reload"))
            .await
            .unwrap(),
    );
    assert_eq!(
        reload,
        BTreeMap::from([
            ((good_i.clone(), String::new()), 1.0),
            ((bad_i.clone(), String::new()), 1.0),
        ]),
        "no reload was tried"
    );

    // The alerts the demo should raise show up, pending (long `for:`) or firing.
    let mut expected: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut expect = |alert: &str, instance: &str, cluster: &str| {
        expected.insert((alert.into(), instance.into(), cluster.into()));
    };
    for c in [
        "payments-kafka",
        "legacy-kafka",
        "search-kafka",
        "events-kafka",
    ] {
        expect("CdssPrecheckNotReady", &good_i, c);
    }
    // Never answered, 4+ prechecks (events-kafka backs off 30 s after each 429: too slow here).
    for c in ["legacy-kafka", "search-kafka"] {
        expect("CdssPrecheckStale", &good_i, c);
    }
    expect("CdssPrecheckRateLimited", &good_i, "events-kafka");
    for c in &demo_clusters {
        expect("CdssPrecheckAuthFailing", &bad_i, c);
    }
    expect("CdssExporterDown", &dead_i, "");
    let deadline = Instant::now() + PATIENCE;
    let alerts = loop {
        let alerts = prom.alerts(&http).await;
        let seen: BTreeSet<(String, String, String)> = alerts
            .iter()
            .filter(|a| a.state == "pending" || a.state == "firing")
            .map(|a| {
                (
                    a.name.clone(),
                    a.label("instance").to_string(),
                    a.label("cluster").to_string(),
                )
            })
            .collect();
        let missing: Vec<_> = expected.difference(&seen).collect();
        if missing.is_empty() {
            break alerts;
        }
        assert!(
            Instant::now() < deadline,
            "alerts missing after {PATIENCE:?}: {missing:?}\nall alerts: {alerts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for a in &alerts {
        let (instance, cluster) = (a.label("instance"), a.label("cluster"));
        assert!(
            !(instance == good_i
                && [
                    "orders-kafka",
                    "analytics-kafka",
                    "stream-kafka",
                    "metrics-kafka"
                ]
                .contains(&cluster)),
            "an alert for a healthy cluster: {a:#?}"
        );
        assert!(
            !(a.name == "CdssPrecheckAuthFailing" && instance == good_i),
            "auth alert with good keys: {a:#?}"
        );
        assert!(
            !(a.name == "CdssExporterDown" && instance != dead_i),
            "only the dead target is down: {a:#?}"
        );
        assert_ne!(a.name, "CdssExporterConfigReloadFailed", "{a:#?}");
        let runbook = a.annotations.get("runbook_url").map_or("", String::as_str);
        assert!(
            runbook.starts_with("https://")
                && runbook.ends_with(&format!("/README.md#{}", a.name.to_lowercase())),
            "{a:#?}"
        );
        // `for:` of 5m and more: still pending here. The stale alert has no `for:`.
        let want = if a.name == "CdssPrecheckStale" {
            "firing"
        } else {
            "pending"
        };
        assert_eq!(a.state, want, "{a:#?}");
        assert!(!a.label("severity").is_empty(), "{a:#?}");
    }
    // Descriptions quote the cluster, region and error code of the live data.
    let description = |alert: &str, instance: &str, cluster: &str| -> String {
        alerts
            .iter()
            .find(|a| {
                a.name == alert && a.label("instance") == instance && a.label("cluster") == cluster
            })
            .and_then(|a| a.annotations.get("description").cloned())
            .unwrap_or_default()
    };
    for (cluster, region, code) in [
        ("payments-kafka", "SGN", "0"),
        ("legacy-kafka", "KR", "3"),
        ("search-kafka", "KR", "-1"),
        ("events-kafka", "GOV", "420"),
    ] {
        let text = description("CdssPrecheckNotReady", &good_i, cluster);
        assert!(
            text.contains(&format!("{cluster} in region {region}"))
                && text.contains(&format!("last error code {code} ")),
            "{cluster}: {text}"
        );
    }
    let payments = description("CdssPrecheckNotReady", &good_i, "payments-kafka");
    assert!(
        payments.contains("broker kafka-2 is red; 2 of 3 brokers up."),
        "the NotReady description names the failing node: {payments}"
    );
    let auth = description("CdssPrecheckAuthFailing", &bad_i, "orders-kafka");
    assert!(
        auth.contains("credentials problem, not a cluster problem")
            && auth.contains("error code 200"),
        "{auth}"
    );
    eprintln!(
        "checked {} dashboard queries x 2 selections (instant and range), {} variables, {} alert \
         expressions, {} alerts",
        queries.len(),
        found.len(),
        rules.len(),
        alerts.len()
    );

    // Teardown: nothing left running.
    drop(prom);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "prometheus (pid {pid}) is still there"
    );
    good.stop().await;
    bad.stop().await;
    drop(sim);
}
