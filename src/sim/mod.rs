//! The simulated NCP API gateway with CDSS behind it: used by the tests and by `--demo`.
//!
//! It checks what NCP checks, as `ncp-api.md` describes: the regional precheck paths, signature v2,
//! the access key, the ±5-minute timestamp window, and the JSON body. Anything wrong with the
//! authentication gets 401 `{"error":{"errorCode":"200","message":"Authentication Failed",...}}`.
//! Each cluster number has a [`Behaviour`] that tests can change while it runs; numbers not in the
//! table get CDSS error code 3, with HTTP 200 for even numbers and HTTP 400 for odd ones (both are
//! seen in the wild). It counts calls per cluster number. It also serves `getClusterInfoList`
//! with real paging over a cluster set tests change at runtime, can fail it on purpose, and
//! accepts more than one account, and key pairs that rotate ([`metadata::RotatingKeys`], the
//! schedule [`metadata::SimMetadata`] hands out as server role keys), each only while it is
//! valid; and `getClusterStatus` (GET, the number in the path) with per-node states that follow
//! each cluster's behaviour (`status`); and a rolling restart that takes time, with each
//! broker in turn down and `orange` (`restart`). `start_tls` serves HTTPS, for the client's certificate
//! checks. It never talks to anything but its own listener.
//!
//! Its parts: `answer` (the behaviours, as HTTP answers), `auth` (signature, key and timestamp
//! checks), `faults` (the misbehaviour cycle), `listing` (`getClusterInfoList`), `status`
//! (`getClusterStatus`), `restart` (`rollingRestart`, its progress check, and the restart each
//! cluster may be in), `requests` (the log of every request received) and [`metadata`] (the
//! server role keys).

use crate::lock::lock;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, DATE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

mod answer;
mod auth;
pub mod faults;
mod listing;
pub mod metadata;
mod requests;
mod restart;
mod status;
#[cfg(test)]
mod tests;
use self::answer::{Dropped, Resp, cdss, gateway_error, respond};
use self::metadata::RotatingKeys;
use self::requests::RequestLog;
use crate::secret::Secret;
pub use listing::{LIST_PATHS, SimCluster};
pub use requests::SimRequest;
pub use restart::{RESTART_REFUSED_CODE, RestartPlan};
pub use status::STATUS_PATHS;

/// The gateway's allowed distance between a request's timestamp and its own clock.
pub const TIMESTAMP_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Regional precheck paths the gateway serves.
pub const PRECHECK_PATHS: [&str; 4] = [
    "/api/v1/cluster/rollingRestartPreCheck",
    "/api/sgn-v1/cluster/rollingRestartPreCheck",
    "/api/jpn-v1/cluster/rollingRestartPreCheck",
    "/api/krs-v1/cluster/rollingRestartPreCheck",
];
/// Largest request body the gateway reads.
const MAX_REQUEST_BODY: usize = 64 * 1024;

/// How the simulated CDSS answers for one cluster number.
#[derive(Clone, Debug, PartialEq)]
pub enum Behaviour {
    /// `code` 0, `result` true.
    Ready,
    /// `code` 0, `result` false.
    NotReady,
    /// Waits, then answers as the inner behaviour.
    Slow(Duration, Box<Behaviour>),
    /// Waits between the two durations, a different time for each request (spread evenly, from
    /// the request count), then answers as the inner behaviour: NCP's answers do not all take
    /// the same time, so they do not arrive together either.
    Jittered(Duration, Duration, Box<Behaviour>),
    /// HTTP 500 with an HTML page.
    Http500Html,
    /// HTTP 429 with gateway error 420 and, when given, `Retry-After` in seconds.
    RateLimited(Option<u64>),
    /// HTTP 200 with a body that is not valid JSON.
    MalformedJson,
    /// Closes the connection without answering.
    DropConnection,
    /// HTTP 200 with a body of this many bytes.
    Oversized(usize),
    /// CDSS error code 3 "Invalid Service Group Instance No" with this HTTP status.
    UnknownNumber(u16),
    /// Exactly this status, headers and body (5xx pages, redirects, wrong types, gzip bombs...).
    Raw(RawResponse),
}

/// Five ways to fail, for "a share of the clusters misbehave" (`cdss-sim --misbehave-every`,
/// soak tests): HTTP 500, malformed JSON, a 60 s hang, 429 with `Retry-After: 30`, and a
/// dropped connection.
pub fn fault_cycle() -> [Behaviour; 5] {
    [
        Behaviour::Http500Html,
        Behaviour::MalformedJson,
        Behaviour::Slow(Duration::from_secs(60), Box::new(Behaviour::Ready)),
        Behaviour::RateLimited(Some(30)),
        Behaviour::DropConnection,
    ]
}

/// A response written as given, for faults the named behaviours do not cover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers, in order (e.g. `Content-Type`, `Location`, `Content-Encoding`, `Retry-After`).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A response with one `Content-Type` header.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Settings for a simulated gateway.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The only access key accepted.
    pub access_key: String,
    /// The secret key signatures are checked with.
    pub secret_key: Secret,
    /// Behaviour per `serviceGroupInstanceNo`.
    pub clusters: HashMap<u64, Behaviour>,
}

struct Shared {
    access_key: String,
    secret_key: Secret,
    /// More accounts (access key → secret key), for multi-account tests.
    extra_accounts: Mutex<HashMap<String, Secret>>,
    /// Key schedules whose pairs are accepted only while valid (server role keys).
    rotating: Mutex<Vec<RotatingKeys>>,
    /// Every access key that authenticated at least once.
    authenticated: Mutex<BTreeSet<String>>,
    /// Access keys refused from now on, valid or not (a key revoked before its expiry).
    revoked: Mutex<BTreeSet<String>>,
    /// What `getClusterInfoList` lists, by cluster number.
    inventory: Mutex<BTreeMap<u64, SimCluster>>,
    /// When set, `getClusterInfoList` answers like this instead (a discovery outage).
    list_failure: Mutex<Option<Behaviour>>,
    /// Authenticated `getClusterInfoList` calls.
    list_calls: AtomicU64,
    /// Authenticated `getClusterStatus` calls, by cluster number.
    status_calls: Mutex<HashMap<u64, u64>>,
    /// When set for a number, its `getClusterStatus` answers like this instead.
    status_failures: Mutex<HashMap<u64, Behaviour>>,
    behaviours: Mutex<HashMap<u64, Behaviour>>,
    calls: Mutex<HashMap<u64, u64>>,
    total_requests: AtomicU64,
    auth_failures: AtomicU64,
    /// Added to the gateway's clock, in ms (for clock-skew tests).
    clock_offset_ms: AtomicI64,
    /// How each cluster's next restart goes (the default plan when unset).
    restart_plans: Mutex<HashMap<u64, RestartPlan>>,
    /// The last restart accepted per cluster (running or over; `restart` tells which).
    restarts: Mutex<HashMap<u64, restart::Restart>>,
    /// Authenticated `rollingRestart` calls, by cluster number.
    restart_calls: Mutex<HashMap<u64, u64>>,
    /// Authenticated `rollingRestartProgressCheck` calls, by cluster number.
    progress_calls: Mutex<HashMap<u64, u64>>,
    /// Every request received, in order (bounded).
    requests: Mutex<RequestLog>,
}

/// A running simulated gateway.
pub struct SimGateway {
    addr: SocketAddr,
    /// `https` when started with [`SimGateway::start_tls`].
    scheme: &'static str,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for SimGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimGateway")
            .field("addr", &self.addr)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl SimGateway {
    /// Serves on `listener` until dropped.
    pub fn start(listener: TcpListener, config: SimConfig) -> std::io::Result<Self> {
        Self::start_with(listener, config, None)
    }

    /// Serves HTTPS on `listener` with `tls` (tests of the client's certificate checks).
    pub fn start_tls(
        listener: TcpListener,
        config: SimConfig,
        tls: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<Self> {
        Self::start_with(listener, config, Some(TlsAcceptor::from(tls)))
    }

    fn start_with(
        listener: TcpListener,
        config: SimConfig,
        tls: Option<TlsAcceptor>,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            access_key: config.access_key,
            secret_key: config.secret_key,
            extra_accounts: Mutex::default(),
            rotating: Mutex::default(),
            authenticated: Mutex::default(),
            revoked: Mutex::default(),
            inventory: Mutex::default(),
            list_failure: Mutex::default(),
            list_calls: AtomicU64::new(0),
            status_calls: Mutex::default(),
            status_failures: Mutex::default(),
            behaviours: Mutex::new(config.clusters),
            calls: Mutex::new(HashMap::new()),
            total_requests: AtomicU64::new(0),
            auth_failures: AtomicU64::new(0),
            clock_offset_ms: AtomicI64::new(0),
            restart_plans: Mutex::default(),
            restarts: Mutex::default(),
            restart_calls: Mutex::default(),
            progress_calls: Mutex::default(),
            requests: Mutex::default(),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone(), tls));
        Ok(Self {
            addr,
            scheme,
            shared,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS): what goes into `api_gateway`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Changes (or adds) a cluster's behaviour while running.
    pub fn set_behaviour(&self, instance_no: u64, behaviour: Behaviour) {
        lock(&self.shared.behaviours).insert(instance_no, behaviour);
    }

    /// Authenticated precheck calls received for this cluster number.
    pub fn calls(&self, instance_no: u64) -> u64 {
        lock(&self.shared.calls)
            .get(&instance_no)
            .copied()
            .unwrap_or(0)
    }

    /// Every request received, authenticated or not.
    pub fn total_requests(&self) -> u64 {
        self.shared.total_requests.load(Ordering::Relaxed)
    }

    /// Requests rejected with 401.
    pub fn auth_failures(&self) -> u64 {
        self.shared.auth_failures.load(Ordering::Relaxed)
    }

    /// Accepts another access key with its own secret.
    pub fn add_account(&self, access_key: &str, secret_key: Secret) {
        lock(&self.shared.extra_accounts).insert(access_key.to_string(), secret_key);
    }

    /// Accepts the pairs of `keys`, each only while it is valid (role keys that rotate).
    pub fn accept_rotating(&self, keys: RotatingKeys) {
        lock(&self.shared.rotating).push(keys);
    }

    /// Refuses `access_key` from now on, as NCP does with a key revoked before it expires.
    pub fn revoke(&self, access_key: &str) {
        lock(&self.shared.revoked).insert(access_key.to_string());
    }

    /// The distinct access keys that have authenticated so far.
    pub fn authenticated_keys(&self) -> Vec<String> {
        lock(&self.shared.authenticated).iter().cloned().collect()
    }

    /// Adds (or replaces) a cluster in what `getClusterInfoList` lists; its precheck answers
    /// "ready" unless a behaviour was set for its number.
    pub fn add_cluster(&self, instance_no: u64, cluster: SimCluster) {
        lock(&self.shared.inventory).insert(instance_no, cluster);
        lock(&self.shared.behaviours)
            .entry(instance_no)
            .or_insert(Behaviour::Ready);
    }

    /// Deletes a cluster: it is no longer listed, and its precheck answers code 3.
    pub fn remove_cluster(&self, instance_no: u64) {
        lock(&self.shared.inventory).remove(&instance_no);
        lock(&self.shared.behaviours).remove(&instance_no);
    }

    /// Makes `getClusterInfoList` fail like `behaviour` (`None`: answer normally again).
    pub fn set_list_failure(&self, behaviour: Option<Behaviour>) {
        *lock(&self.shared.list_failure) = behaviour;
    }

    /// Authenticated `getClusterStatus` calls received for this cluster number.
    pub fn status_calls(&self, instance_no: u64) -> u64 {
        lock(&self.shared.status_calls)
            .get(&instance_no)
            .copied()
            .unwrap_or(0)
    }

    /// Makes `getClusterStatus` of this number answer like `behaviour` (`None`: follow the
    /// precheck's behaviour again).
    pub fn set_status_failure(&self, instance_no: u64, behaviour: Option<Behaviour>) {
        let mut failures = lock(&self.shared.status_failures);
        match behaviour {
            Some(b) => failures.insert(instance_no, b),
            None => failures.remove(&instance_no),
        };
    }

    /// Authenticated `getClusterInfoList` calls received.
    pub fn list_calls(&self) -> u64 {
        self.shared.list_calls.load(Ordering::Relaxed)
    }

    /// Moves the gateway's clock (positive: the gateway is ahead of real time).
    pub fn set_clock_offset(&self, offset_ms: i64) {
        self.shared
            .clock_offset_ms
            .store(offset_ms, Ordering::Relaxed);
    }
}

impl SimGateway {
    /// Sets how the next restarts of this cluster go (one already running keeps its plan).
    pub fn set_restart_plan(&self, instance_no: u64, plan: RestartPlan) {
        lock(&self.shared.restart_plans).insert(instance_no, plan);
    }

    /// Starts a restart as NCP's console would, refused on the same terms as `rollingRestart`
    /// (unknown number, not ready, already restarting); `true` when it started.
    pub fn start_restart(&self, instance_no: u64) -> bool {
        restart::begin(&self.shared, instance_no, None).is_ok()
    }

    /// Starts a restart that begins again `pause` after each end, forever (a cluster NCP keeps
    /// changing, for `--demo`); `true` when it started.
    pub(crate) fn start_restart_loop(&self, instance_no: u64, pause: Duration) -> bool {
        restart::begin(&self.shared, instance_no, Some(pause)).is_ok()
    }

    /// Authenticated `rollingRestart` calls received for this cluster number.
    pub fn restart_calls(&self, instance_no: u64) -> u64 {
        lock(&self.shared.restart_calls)
            .get(&instance_no)
            .copied()
            .unwrap_or(0)
    }

    /// Authenticated `rollingRestartProgressCheck` calls received for this cluster number.
    pub fn progress_calls(&self, instance_no: u64) -> u64 {
        lock(&self.shared.progress_calls)
            .get(&instance_no)
            .copied()
            .unwrap_or(0)
    }

    /// Every request received, authenticated or not, in order (the last 100,000).
    pub fn requests(&self) -> Vec<SimRequest> {
        lock(&self.shared.requests).all()
    }
}

impl Drop for SimGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tls: Option<TlsAcceptor>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move {
                    let mut resp = handle(&shared, req).await?;
                    // The gateway's own clock, offset in clock-skew tests.
                    let offset = shared.clock_offset_ms.load(Ordering::Relaxed);
                    let now = if offset >= 0 {
                        SystemTime::now() + Duration::from_millis(offset as u64)
                    } else {
                        SystemTime::now() - Duration::from_millis(offset.unsigned_abs())
                    };
                    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
                        resp.headers_mut().insert(DATE, v);
                    }
                    Ok::<_, Dropped>(resp)
                }
            });
            let http = http1::Builder::new();
            // An error here is how `DropConnection` closes the socket (or a client refused our
            // certificate); nothing to report.
            match tls {
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
                Some(tls) => {
                    if let Ok(stream) = tls.accept(stream).await {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            }
        });
    }
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// What a request's path asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Precheck,
    List,
    /// `getClusterStatus`, with the number from the path (`None`: not a number).
    Status(Option<u64>),
    Restart,
    Progress,
}

/// Regional paths of `rollingRestart` and `rollingRestartProgressCheck`: a precheck path with
/// another operation name.
fn route(path: &str) -> Option<Route> {
    if let Some(no) = status::instance_no(path) {
        return Some(Route::Status(no));
    }
    if LIST_PATHS.contains(&path) {
        return Some(Route::List);
    }
    let base = PRECHECK_PATHS
        .iter()
        .find_map(|p| path.strip_prefix(p.trim_end_matches("rollingRestartPreCheck")))?;
    match base {
        "rollingRestartPreCheck" => Some(Route::Precheck),
        "rollingRestart" => Some(Route::Restart),
        "rollingRestartProgressCheck" => Some(Route::Progress),
        _ => None,
    }
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Result<Resp, Dropped> {
    let n = shared.total_requests.fetch_add(1, Ordering::Relaxed);
    let path = req.uri().path().to_string();
    let route = route(&path);
    let seq = lock(&shared.requests).push(SimRequest {
        method: req.method().to_string(),
        path: path.clone(),
        operation: requests::operation(&path),
        access_key: header(&req, crate::ncp::sign::HEADER_ACCESS_KEY).map(str::to_string),
        instance_no: match route {
            Some(Route::Status(no)) => no,
            _ => None,
        },
    });
    let Some(route) = route else {
        return Ok(gateway_error(
            StatusCode::NOT_FOUND,
            "300",
            "Not Found",
            "No such API.",
        ));
    };
    if let Err(details) = auth::authenticate(shared, &req) {
        shared.auth_failures.fetch_add(1, Ordering::Relaxed);
        return Ok(gateway_error(
            StatusCode::UNAUTHORIZED,
            "200",
            "Authentication Failed",
            &details,
        ));
    }
    if let Route::Status(instance_no) = route {
        if req.method() != Method::GET {
            return Ok(gateway_error(
                StatusCode::NOT_FOUND,
                "300",
                "Not Found",
                "Use GET.",
            ));
        }
        return status::cluster_status(shared, instance_no, n).await;
    }
    if req.method() != Method::POST {
        return Ok(gateway_error(
            StatusCode::NOT_FOUND,
            "300",
            "Not Found",
            "Use POST.",
        ));
    }
    post(shared, route, &path, req, seq, n).await
}

/// An authenticated POST to `route` (request number `n`, logged as `seq`).
async fn post(
    shared: &Shared,
    route: Route,
    path: &str,
    req: Request<Incoming>,
    seq: u64,
    n: u64,
) -> Result<Resp, Dropped> {
    let is_json =
        header(&req, CONTENT_TYPE.as_str()).is_some_and(|v| v.starts_with("application/json"));
    let body = match Limited::new(req.into_body(), MAX_REQUEST_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(gateway_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "430",
                "Request Entity Too Large",
                "",
            ));
        }
    };
    let body = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .filter(|_| is_json);
    if route == Route::List {
        return list(shared, path, body, n).await;
    }
    let instance_no = body.as_ref().and_then(|v| {
        v.get("serviceGroupInstanceNo")
            .and_then(serde_json::Value::as_u64)
    });
    let Some(instance_no) = instance_no else {
        return Ok(cdss(
            StatusCode::BAD_REQUEST,
            1,
            "serviceGroupInstanceNo (Integer) is required in a JSON body",
            serde_json::Value::Null,
            n,
        ));
    };
    lock(&shared.requests).set_instance(seq, instance_no);
    match route {
        Route::Restart => restart::rolling_restart(shared, instance_no, n).await,
        Route::Progress => status::progress(shared, instance_no, n).await,
        _ => precheck(shared, instance_no, n).await,
    }
}

/// `getClusterInfoList`: the page asked for, restarting clusters listed as `changing`.
async fn list(
    shared: &Shared,
    path: &str,
    request: Option<serde_json::Value>,
    n: u64,
) -> Result<Resp, Dropped> {
    shared.list_calls.fetch_add(1, Ordering::Relaxed);
    let failure = lock(&shared.list_failure).clone();
    if let Some(failure) = failure {
        return respond(failure, n).await;
    }
    let Some(request) = request else {
        return Ok(cdss(
            StatusCode::BAD_REQUEST,
            1,
            "a JSON body is required",
            serde_json::Value::Null,
            n,
        ));
    };
    let changing = |no: u64| restart::phase(shared, no) != restart::Phase::Idle;
    let result = listing::page(&lock(&shared.inventory), path, &request, changing);
    Ok(cdss(StatusCode::OK, 0, "SUCCESS", result, n))
}

/// `rollingRestartPreCheck`: the cluster's behaviour, not ready while a broker is down.
async fn precheck(shared: &Shared, instance_no: u64, n: u64) -> Result<Resp, Dropped> {
    *lock(&shared.calls).entry(instance_no).or_default() += 1;
    let behaviour = lock(&shared.behaviours).get(&instance_no).cloned();
    let behaviour = behaviour.unwrap_or_else(|| restart::unknown(instance_no));
    let behaviour = match restart::phase(shared, instance_no) {
        restart::Phase::Down(_) => restart::not_ready(behaviour),
        restart::Phase::Idle | restart::Phase::Starting => behaviour,
    };
    respond(behaviour, n).await
}
