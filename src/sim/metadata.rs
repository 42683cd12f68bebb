//! A simulated NCP metadata API on loopback: server roles whose keys rotate on a fixed period,
//! for the tests and the demo.
//!
//! [`RotatingKeys`] is the key schedule: pair `n` is issued at `epoch + n·period` and works until
//! `issued + lifetime`, its `Expiration`. [`SimMetadata`] serves the paths `credentials::role`
//! reads (the role list, then one role's keys, answered with the pair issued last) and can be
//! made to fail; the simulated gateway accepts a pair of the same schedule only while it is
//! valid (`SimGateway::accept_rotating`). It never talks to anything but its own listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::credentials::role::ROLES_PATH;
use crate::secret::Secret;

/// A schedule of key pairs, each valid for `lifetime` from its issue; a new one every `period`.
#[derive(Clone, Debug)]
pub struct RotatingKeys {
    /// When pair 0 was issued.
    epoch: SystemTime,
    /// Time between two issues.
    period: Duration,
    /// How long each pair works.
    lifetime: Duration,
    /// Starts every access key, so two schedules never share one.
    prefix: String,
}

impl RotatingKeys {
    /// A schedule whose pair 0 is issued now.
    pub fn new(prefix: &str, period: Duration, lifetime: Duration) -> Self {
        Self {
            epoch: SystemTime::now(),
            period: period.max(Duration::from_millis(1)),
            lifetime,
            prefix: prefix.to_string(),
        }
    }

    /// The pair issued last at `t`.
    pub fn index_at(&self, t: SystemTime) -> u64 {
        let since = t.duration_since(self.epoch).unwrap_or_default();
        (since.as_nanos() / self.period.as_nanos()) as u64
    }

    /// Pair `n`: access key and secret key.
    pub fn pair(&self, n: u64) -> (String, Secret) {
        (
            format!("{}-AK-{n}", self.prefix),
            Secret::new(format!("{}-role-secret-{n}-Um9sZUtleQ", self.prefix)),
        )
    }

    /// When pair `n` is issued.
    pub fn issued(&self, n: u64) -> SystemTime {
        self.epoch
            + self
                .period
                .saturating_mul(n.min(u64::from(u32::MAX)) as u32)
    }

    /// When pair `n` stops working (its `Expiration`).
    pub fn expiration(&self, n: u64) -> SystemTime {
        self.issued(n) + self.lifetime
    }

    /// The secret of `access_key` if it is one of this schedule's pairs and valid at `now`.
    pub fn valid_secret(&self, access_key: &str, now: SystemTime) -> Option<Secret> {
        let n: u64 = access_key
            .strip_prefix(&self.prefix)?
            .strip_prefix("-AK-")?
            .parse()
            .ok()?;
        (self.issued(n) <= now && now < self.expiration(n)).then(|| self.pair(n).1)
    }

    /// True when `access_key` is one of this schedule's pairs, valid or not.
    pub fn owns(&self, access_key: &str) -> bool {
        access_key
            .strip_prefix(&self.prefix)
            .is_some_and(|r| r.starts_with("-AK-"))
    }
}

struct Shared {
    roles: Vec<String>,
    keys: RotatingKeys,
    failing: AtomicBool,
    requests: AtomicU64,
    key_requests: AtomicU64,
}

/// A running simulated metadata API.
pub struct SimMetadata {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for SimMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimMetadata")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimMetadata {
    /// Serves `roles` (the first is listed first), each answering with `keys`, until dropped.
    pub fn start(
        listener: TcpListener,
        roles: &[&str],
        keys: RotatingKeys,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            keys,
            failing: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            key_requests: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self { addr, shared, task })
    }

    /// `http://127.0.0.1:PORT`: what goes into `NCLOUD_METADATA_API_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes every answer an HTTP 500 (`true`) or normal again.
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::Relaxed);
    }

    /// Requests received, of any kind.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Requests for a role's keys that were answered with keys.
    pub fn key_requests(&self) -> u64 {
        self.shared.key_requests.load(Ordering::Relaxed)
    }
}

impl Drop for SimMetadata {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&shared, &req)) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn handle(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    if shared.failing.load(Ordering::Relaxed) {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "metadata service unavailable".into(),
        );
    }
    let Some(rest) = req.uri().path().strip_prefix(ROLES_PATH) else {
        return text(StatusCode::NOT_FOUND, "text/plain", "not found".into());
    };
    if rest.is_empty() {
        return text(StatusCode::OK, "text/plain", shared.roles.join("\n"));
    }
    if !shared.roles.iter().any(|r| r == rest) {
        return text(StatusCode::NOT_FOUND, "text/plain", "no such role".into());
    }
    let keys = &shared.keys;
    let n = keys.index_at(SystemTime::now());
    let (access_key, secret_key) = keys.pair(n);
    shared.key_requests.fetch_add(1, Ordering::Relaxed);
    let body = serde_json::json!({
        "AccessKeyId": access_key,
        "SecretAccessKey": secret_key.expose(),
        "Expiration": humantime::format_rfc3339_millis(keys.expiration(n)).to_string(),
        "Code": "Success",
        "Message": "",
    });
    text(StatusCode::OK, "application/json", body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_valid_from_its_issue_until_its_expiration() {
        let k = RotatingKeys::new("T", Duration::from_secs(2), Duration::from_secs(5));
        let (ak, sk) = k.pair(3);
        assert_eq!(k.index_at(k.issued(3)), 3);
        assert!(k.valid_secret(&ak, k.issued(3)).is_some_and(|s| s == sk));
        assert!(
            k.valid_secret(&ak, k.issued(3) - Duration::from_millis(1))
                .is_none()
        );
        assert!(k.valid_secret(&ak, k.expiration(3)).is_none());
        assert!(k.valid_secret("T-AK-x", k.issued(3)).is_none());
        assert!(k.valid_secret("U-AK-3", k.issued(3)).is_none());
        assert!(k.owns(&ak) && !k.owns("OTHER"));
    }
}
