//! The one path every NCP call takes: pick the account's keys, sign, send, read the answer
//! under the body cap and the timeout, and open its envelope.
//!
//! [`Clients::call`] is that path, for every operation (the schedule's and the gate's prechecks,
//! `check`, discovery's listings). It owns the HTTP details: headers, signing (`sign`), the body
//! cap, one timeout for the whole call, never following a redirect, the `Retry-After` and `Date`
//! headers, and the clock skew they show. It never retries and never decides what an answer
//! means beyond `envelope`; each operation decodes its own `result`. It keeps no state between
//! calls apart from reqwest's connection pool. Keys are read from the account's
//! `credentials::AccountKeys` at each call (expired keys: `no_credentials`, nothing is sent), and
//! a 401 is reported back to it (role keys get one early refresh); only `credentials` writes them.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, DATE, LOCATION, RETRY_AFTER};
use reqwest::{Body, Client, Method, Url};
use serde_json::Value;
use tokio::time::Instant;

use crate::ca_file::CaFileError;
use crate::config::Config;
use crate::credentials::{AccountKeys, Credentials, Keyring};
use crate::ncp::envelope::{self, Opened};
use crate::ncp::sign;
use crate::ncp::usage::{AccountUsage, ApiUsage, Operation};
use crate::outcome::Outcome;

/// `User-Agent` on every request.
pub(crate) const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));
/// Header NCP's gateway puts its request id in.
pub(crate) const HEADER_REQUEST_ID: &str = "x-ncp-apigw-request-id";
/// Longest `Retry-After` we honour; a larger one is clamped so a bad header cannot park a cluster.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How long an idle pooled connection to the gateway is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// What the clients need to know; everything else comes per call.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientSettings {
    /// Whole-call timeout: connect, headers and body.
    pub timeout: Duration,
    /// Response bodies larger than this are not read.
    pub max_response_bytes: u64,
    /// PEM file of extra CA certificates trusted for the gateway, besides the system's.
    pub ca_file: Option<PathBuf>,
}

impl ClientSettings {
    /// The settings `config` asks for.
    pub(crate) fn of(config: &Config) -> Self {
        Self {
            timeout: config.timeout,
            max_response_bytes: config.max_response_bytes,
            ca_file: config.ca_file.clone(),
        }
    }
}

/// What every call brings back besides its answer: the one record of a call's metadata, from
/// here to the state (the precheck, the last precheck, `check`'s report all carry it whole).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallMeta {
    /// HTTP status of the answer; `None` when no answer came (timeout, connection, no keys).
    pub http_status: Option<u16>,
    /// Time from sending to the last body byte (or to the timeout).
    pub latency: Duration,
    /// `requestId` from the body, else `x-ncp-apigw-request-id`.
    pub request_id: Option<String>,
    /// `Retry-After` (seconds or a date), clamped to [`MAX_RETRY_AFTER`].
    pub retry_after: Option<Duration>,
    /// The gateway's clock minus ours, in seconds (positive: the gateway is ahead), from
    /// its `Date` header when the answer arrived. `Date` has one-second resolution.
    pub clock_skew: Option<f64>,
}

/// The clients could not be built (TLS setup).
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    /// reqwest refused the settings.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// `ca_file` could not be read or holds no certificate.
    #[error("ca_file: {0}")]
    CaFile(#[from] CaFileError),
}

/// Signs each call with its account's keys, and sends it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Clients {
    /// Pooled HTTP client, redirects off, for every account (each request is signed on its own);
    /// `None` only in the default, which has no account.
    http: Option<Client>,
    /// Every account's keys, read at each call (rotated keys need no new client); only
    /// `credentials` writes them. Holding it keeps its refreshers alive.
    keyring: Keyring,
    /// Timeout and body cap.
    settings: ClientSettings,
    /// Every call is counted here.
    usage: Arc<ApiUsage>,
    /// Each account's counters in `usage`, in the keyring's order: found once, when the clients
    /// are built, so counting a call takes no lock.
    counters: Vec<Arc<AccountUsage>>,
}

impl Clients {
    /// The clients for every account in `keyring`. Reads `ca_file` (blocking: call it off the
    /// async runtime, as start-up and reload do).
    pub(crate) fn new(keyring: &Keyring, settings: &ClientSettings) -> Result<Self, BuildError> {
        let mut builder = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .connect_timeout(settings.timeout)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT);
        if let Some(path) = &settings.ca_file {
            builder = builder.tls_certs_merge(crate::ca_file::read(path)?);
        }
        let clients = Self {
            http: Some(builder.build()?),
            keyring: keyring.clone(),
            settings: settings.clone(),
            ..Self::default()
        };
        Ok(clients.count_into(Arc::default()))
    }

    /// Every call these clients made, by account, operation and result (`restart`'s report).
    pub(crate) fn spent(&self) -> Vec<(String, Operation, &'static str, u64)> {
        self.usage.snapshot()
    }

    /// These clients, counting their calls into `usage`.
    fn count_into(mut self, usage: Arc<ApiUsage>) -> Self {
        self.counters = self.keyring.iter().map(|(a, _)| usage.account(a)).collect();
        self.usage = usage;
        self
    }

    /// Makes one call signed with `account`'s keys (a `POST` of `body`, or a `GET` without one)
    /// and has `decode` read the envelope's `result`: the one path of every NCP call. Never
    /// fails: a missing account, a timeout, a refused connection or a `result` `decode` cannot
    /// read is an `Outcome`, and it is counted as what it is (a success envelope of the wrong
    /// shape is an `invalid_response`, not an `ok`).
    pub(crate) async fn call<T>(
        &self,
        account: &str,
        operation: Operation,
        url: &Url,
        body: Option<&str>,
        decode: impl FnOnce(Value) -> Result<T, String>,
    ) -> (Result<T, Outcome>, CallMeta) {
        let mut accounts = self.keyring.iter().zip(&self.counters);
        let found = accounts.find(|((name, _), _)| *name == account);
        let (Some(http), Some(((_, keys), counters))) = (&self.http, found) else {
            // Nothing is sent, so nothing is counted.
            let account = account.to_string();
            return (Err(Outcome::NoCredentials { account }), CallMeta::default());
        };
        let (result, meta) = self.signed(http, keys, url, body, decode).await;
        let failure = result.as_ref().err().and_then(Outcome::failure_reason);
        counters.count(operation, failure);
        (result, meta)
    }

    /// Signs with the account's current keys, sends, and has `decode` read the answer.
    async fn signed<T>(
        &self,
        http: &Client,
        keys: &AccountKeys,
        url: &Url,
        body: Option<&str>,
        decode: impl FnOnce(Value) -> Result<T, String>,
    ) -> (Result<T, Outcome>, CallMeta) {
        let Some((credentials, generation)) = keys.keys() else {
            let account = keys.account().to_string();
            return (Err(Outcome::NoCredentials { account }), CallMeta::default());
        };
        let started = Instant::now();
        let timeout = self.settings.timeout;
        let sent = tokio::time::timeout(timeout, self.exchange(http, &credentials, url, body));
        let sent = sent
            .await
            .unwrap_or(Err(Outcome::Timeout { after: timeout }));
        let (opened, mut meta) = match sent {
            Ok((meta, [location, content_type], body)) => {
                let status = meta.http_status.unwrap_or_default();
                let opened = match body {
                    Ok(body) => {
                        envelope::open(status, location.as_deref(), content_type.as_deref(), &body)
                    }
                    Err(outcome) => Opened::failed(status, outcome),
                };
                (opened, meta)
            }
            Err(outcome) => (Opened::failed(0, outcome), CallMeta::default()),
        };
        meta.latency = started.elapsed();
        if opened.http_status == 401 {
            // Role keys may have been rotated early: one early refresh per key pair.
            keys.on_auth_failure(generation);
        }
        if opened.request_id.is_some() {
            meta.request_id.clone_from(&opened.request_id);
        }
        let mut result = opened.decode(decode);
        // What an answer says is shown in logs, pages and `check`: never our keys, even when
        // the gateway repeats them (say, in an error's `details`).
        let keys = [
            credentials.access_key.as_str(),
            credentials.secret_key.expose(),
        ];
        if let Err(outcome) = &mut result {
            outcome.redact(&keys);
        }
        if let Some(id) = &mut meta.request_id {
            crate::outcome::redact(id, &keys);
        }
        (result, meta)
    }

    /// Signs and sends one request; reads the answer's headers (those the envelope needs:
    /// `Location` and `Content-Type`), then its body up to the body cap. `Err` when no answer
    /// came at all.
    async fn exchange(
        &self,
        http: &Client,
        credentials: &Credentials,
        url: &Url,
        body: Option<&str>,
    ) -> Result<(CallMeta, [Option<String>; 2], Result<Bytes, Outcome>), Outcome> {
        let method = body.map_or(Method::GET, |_| Method::POST);
        // The path and the query, still percent-encoded, are signed.
        let uri = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
        let timestamp_ms = since_epoch.map_or(0, |d| d.as_millis() as u64);
        let (access_key, secret) = (&credentials.access_key, credentials.secret_key.expose());
        let signature = sign::sign(secret, method.as_str(), uri, timestamp_ms, access_key);
        let mut builder = http
            .request(method, url.clone())
            .header(sign::HEADER_TIMESTAMP, timestamp_ms.to_string())
            .header(sign::HEADER_ACCESS_KEY, access_key.as_str())
            .header(sign::HEADER_SIGNATURE, signature);
        if let Some(body) = body {
            builder = builder
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_owned());
        }
        let response = builder.send().await.map_err(|e| Outcome::ConnectionError {
            detail: crate::error_text::chain(&e),
        })?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name)?.to_str().ok().map(str::trim);
        let server_date = header(DATE.as_str()).and_then(|d| httpdate::parse_http_date(d).ok());
        let meta = CallMeta {
            http_status: Some(status),
            latency: Duration::ZERO,
            request_id: header(HEADER_REQUEST_ID).map(str::to_owned),
            retry_after: header(RETRY_AFTER.as_str()).and_then(parse_retry_after),
            clock_skew: server_date.map(|server| skew(server, SystemTime::now())),
        };
        let declared = header(CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok());
        let kept = [LOCATION, CONTENT_TYPE].map(|name| header(name.as_str()).map(str::to_owned));
        let limit = self.settings.max_response_bytes;
        if declared.is_some_and(|n| n > limit) {
            return Ok((meta, kept, Err(Outcome::BodyTooLarge { limit })));
        }
        let body = match Limited::new(Body::from(response), limit as usize)
            .collect()
            .await
        {
            Ok(body) => Ok(body.to_bytes()),
            Err(e) if e.is::<LengthLimitError>() => Err(Outcome::BodyTooLarge { limit }),
            Err(e) => {
                let e = crate::error_text::chain(&*e);
                let detail = format!("reading the body after HTTP {status}: {e}");
                Err(Outcome::ConnectionError { detail })
            }
        };
        Ok((meta, kept, body))
    }
}

/// The current [`Clients`], replaceable at reload while prechecks and discovery keep reading it.
/// Every set of clients it holds counts into the same [`ApiUsage`].
#[derive(Clone, Debug, Default)]
pub(crate) struct SharedClients(Arc<RwLock<Arc<Clients>>>);

impl SharedClients {
    /// Shares `clients`.
    pub(crate) fn new(clients: Clients) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(clients))))
    }

    /// The clients now in use.
    pub(crate) fn current(&self) -> Arc<Clients> {
        crate::lock::read(&self.0).clone()
    }

    /// Swaps in new clients (after a reload), counting into the same usage, and returns them
    /// for the runner; calls in flight finish with the old ones.
    pub(crate) fn replace(&self, clients: Clients) -> Arc<Clients> {
        let clients = Arc::new(clients.count_into(self.usage()));
        *crate::lock::write(&self.0) = clients.clone();
        clients
    }

    /// What every set of clients has spent.
    pub(crate) fn usage(&self) -> Arc<ApiUsage> {
        self.current().usage.clone()
    }
}

/// The gateway's clock minus ours, in seconds (positive: the gateway is ahead).
fn skew(server: SystemTime, local: SystemTime) -> f64 {
    match server.duration_since(local) {
        Ok(ahead) => ahead.as_secs_f64(),
        Err(behind) => -behind.duration().as_secs_f64(),
    }
}

/// `Retry-After` as seconds or an HTTP date, clamped to [`MAX_RETRY_AFTER`].
fn parse_retry_after(value: &str) -> Option<Duration> {
    let d = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(d.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_dates_and_clamp() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("99999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn clock_skew_sign() {
        let now = SystemTime::now();
        assert_eq!(skew(now + Duration::from_secs(600), now), 600.0);
        assert_eq!(skew(now - Duration::from_secs(90), now), -90.0);
    }

    #[test]
    fn user_agent_has_name_and_version() {
        assert!(USER_AGENT.starts_with("cdss-precheck-exporter/"));
        assert!(USER_AGENT.len() > "cdss-precheck-exporter/".len());
    }
}
