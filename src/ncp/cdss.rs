//! The CDSS API client: one signed `rollingRestartPreCheck` call → one [`Precheck`].
//!
//! Owns the HTTP details of the call: headers, signing, the body cap, the timeout, never following
//! redirects. It never retries and never decides what an answer means beyond handing the bytes to
//! `outcome::classify`. It keeps no state between calls apart from reqwest's connection pool.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, DATE, HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Certificate, Client, Url};
use tokio::time::Instant;

use crate::credentials::{Credentials, Keyring};
use crate::ncp::cluster_list::{self, ClusterPage, ListError, ListRequest};
use crate::ncp::sign;
use crate::outcome::{Outcome, classify, unexpected_content_type};

/// `User-Agent` on every request.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));
/// Header NCP's gateway puts its request id in.
pub const HEADER_REQUEST_ID: &str = "x-ncp-apigw-request-id";
/// Longest `Retry-After` we honour; a larger one is clamped so a bad header cannot park a cluster.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// How long an idle pooled connection to the gateway is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The result of one precheck call.
#[derive(Clone, Debug)]
pub struct Precheck {
    /// The one classification of the answer.
    pub outcome: Outcome,
    /// Time from sending to the last body byte (or to the timeout).
    pub latency: Duration,
    /// `requestId` from the body, else `x-ncp-apigw-request-id`.
    pub request_id: Option<String>,
    /// `Retry-After` of a 429, clamped to [`MAX_RETRY_AFTER`].
    pub retry_after: Option<Duration>,
    /// The gateway's `Date` header, for clock-skew diagnosis.
    pub server_date: Option<SystemTime>,
}

/// What the client needs to know; everything else comes per call.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Whole-call timeout: connect, headers and body.
    pub timeout: Duration,
    /// Response bodies larger than this are not read.
    pub max_response_bytes: u64,
    /// PEM file of extra CA certificates trusted for the gateway, besides the system's.
    pub ca_file: Option<PathBuf>,
}

/// Signs and sends prechecks.
#[derive(Clone, Debug)]
pub struct CdssClient {
    /// Pooled HTTP client; redirects off.
    http: Client,
    /// The API keys.
    credentials: Credentials,
    /// Timeout and body cap.
    settings: ClientSettings,
}

/// The client could not be built (TLS setup).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// reqwest refused the settings.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// `ca_file` could not be read or holds no certificate.
    #[error("ca_file: {0}")]
    CaFile(String),
}

/// Reads the PEM certificates of `ca_file`; an error when there is none (a file with no PEM
/// block would otherwise silently trust nothing extra).
pub fn read_ca_file(path: &Path) -> Result<Vec<Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) found",
            path.display()
        ));
    }
    Ok(certs)
}

impl CdssClient {
    /// A client that signs with `credentials`.
    pub fn new(credentials: Credentials, settings: ClientSettings) -> Result<Self, BuildError> {
        let mut builder = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .connect_timeout(settings.timeout)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT);
        if let Some(ca_file) = &settings.ca_file {
            builder = builder.tls_certs_merge(read_ca_file(ca_file).map_err(BuildError::CaFile)?);
        }
        let http = builder.build()?;
        Ok(Self {
            http,
            credentials,
            settings,
        })
    }

    /// Runs one precheck of `service_group_instance_no` at `url`. Never fails: every failure is an
    /// `Outcome`.
    pub async fn precheck(&self, url: &Url, service_group_instance_no: u64) -> Precheck {
        let started = Instant::now();
        let call = self.call(url, service_group_instance_no);
        let mut precheck = match tokio::time::timeout(self.settings.timeout, call).await {
            Ok(p) => p,
            Err(_) => Precheck {
                outcome: Outcome::Timeout {
                    after: self.settings.timeout,
                },
                latency: Duration::ZERO,
                request_id: None,
                retry_after: None,
                server_date: None,
            },
        };
        precheck.latency = started.elapsed();
        precheck
    }

    async fn call(&self, url: &Url, service_group_instance_no: u64) -> Precheck {
        let body = format!("{{\"serviceGroupInstanceNo\":{service_group_instance_no}}}");
        let answer = match self.post(url, body).await {
            Ok(a) => a,
            Err(outcome) => return failed(outcome),
        };
        let content_type_problem =
            unexpected_content_type(answer.status, answer.content_type.as_deref());
        let (outcome, request_id) = match (answer.body, content_type_problem) {
            (Ok(_), Some(problem)) => (problem, answer.request_id),
            (Ok(body), None) => {
                let (outcome, decoded) = classify(answer.status, answer.location.as_deref(), &body);
                (outcome, decoded.request_id.or(answer.request_id))
            }
            (Err(outcome), _) => (outcome, answer.request_id),
        };
        Precheck {
            outcome,
            latency: Duration::ZERO,
            request_id,
            retry_after: answer.retry_after,
            server_date: answer.server_date,
        }
    }

    /// One `getClusterInfoList` page. The whole call, body included, is bounded by the timeout.
    pub async fn cluster_list_page(
        &self,
        url: &Url,
        request: &ListRequest<'_>,
    ) -> Result<ClusterPage, ListError> {
        let body = serde_json::to_string(request).map_err(|e| ListError::Request(e.to_string()))?;
        let answer = tokio::time::timeout(self.settings.timeout, async {
            let answer = self.post(url, body).await.map_err(ListError::Transport)?;
            let body = answer.body.map_err(ListError::Transport)?;
            Ok::<_, ListError>((answer.status, body))
        })
        .await
        .map_err(|_| {
            ListError::Transport(Outcome::Timeout {
                after: self.settings.timeout,
            })
        })??;
        cluster_list::decode_page(answer.0, &answer.1)
    }

    /// Signs and sends one POST with a JSON body; reads the answer up to the body cap.
    /// `Err` when no answer came at all.
    async fn post(&self, url: &Url, body: String) -> Result<Answer, Outcome> {
        let timestamp_ms = now_ms();
        let uri = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let access_key = &self.credentials.access_key;
        let signature = sign::sign(
            self.credentials.secret_key.expose(),
            "POST",
            &uri,
            timestamp_ms,
            access_key,
        );
        let sent = self
            .http
            .post(url.clone())
            .header(sign::HEADER_TIMESTAMP, timestamp_ms.to_string())
            .header(sign::HEADER_ACCESS_KEY, access_key.as_str())
            .header(sign::HEADER_SIGNATURE, signature)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let mut response = sent.map_err(|e| Outcome::ConnectionError {
            detail: error_chain(&e),
        })?;
        let status = response.status().as_u16();
        let headers = response.headers();
        let mut answer = Answer {
            status,
            location: header_str(headers, LOCATION.as_str()).map(str::to_owned),
            content_type: header_str(headers, CONTENT_TYPE.as_str()).map(str::to_owned),
            request_id: header_str(headers, HEADER_REQUEST_ID).map(str::to_owned),
            retry_after: header_str(headers, RETRY_AFTER.as_str()).and_then(parse_retry_after),
            server_date: header_str(headers, DATE.as_str())
                .and_then(|d| httpdate::parse_http_date(d).ok()),
            body: Ok(Vec::new()),
        };
        let limit = self.settings.max_response_bytes;
        let declared =
            header_str(headers, CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            answer.body = Err(Outcome::BodyTooLarge { limit });
            return Ok(answer);
        }
        let mut body = Vec::with_capacity(declared.unwrap_or(256).min(limit) as usize);
        answer.body = loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() as u64 + chunk.len() as u64 > limit {
                        break Err(Outcome::BodyTooLarge { limit });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break Ok(body),
                Err(e) => {
                    break Err(Outcome::ConnectionError {
                        detail: format!(
                            "reading the body after HTTP {status}: {}",
                            error_chain(&e)
                        ),
                    });
                }
            }
        };
        Ok(answer)
    }
}

/// A signed POST's answer: status, the headers we use, and the body (or why it was not read).
struct Answer {
    status: u16,
    location: Option<String>,
    content_type: Option<String>,
    request_id: Option<String>,
    retry_after: Option<Duration>,
    server_date: Option<SystemTime>,
    body: Result<Vec<u8>, Outcome>,
}

/// One client per account, so each cluster's prechecks are signed with its account's keys.
#[derive(Clone, Debug, Default)]
pub struct Clients(HashMap<String, CdssClient>);

impl Clients {
    /// A client for every account in `keyring`.
    pub fn new(keyring: &Keyring, settings: &ClientSettings) -> Result<Self, BuildError> {
        keyring
            .0
            .iter()
            .map(|(account, creds)| {
                Ok((
                    account.clone(),
                    CdssClient::new(creds.clone(), settings.clone())?,
                ))
            })
            .collect::<Result<_, BuildError>>()
            .map(Clients)
    }

    /// The client for `account`, if the config defines it.
    pub fn get(&self, account: &str) -> Option<&CdssClient> {
        self.0.get(account)
    }
}

/// The current [`Clients`], replaceable at reload while prechecks and discovery keep reading it.
#[derive(Clone, Debug, Default)]
pub struct SharedClients(Arc<RwLock<Arc<Clients>>>);

impl SharedClients {
    /// Shares `clients`.
    pub fn new(clients: Clients) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(clients))))
    }

    /// The clients now in use.
    pub fn current(&self) -> Arc<Clients> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Swaps in new clients (after a reload); calls in flight finish with the old ones.
    pub fn replace(&self, clients: Clients) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(clients);
    }
}

/// A `Precheck` for a call that never went out.
pub fn failed(outcome: Outcome) -> Precheck {
    Precheck {
        outcome,
        latency: Duration::ZERO,
        request_id: None,
        retry_after: None,
        server_date: None,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `Retry-After` as seconds or an HTTP date, clamped to [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let d = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// The error and its sources on one line (reqwest's top-level message alone says little).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
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
    fn user_agent_has_name_and_version() {
        assert!(USER_AGENT.starts_with("cdss-precheck-exporter/"));
        assert!(USER_AGENT.len() > "cdss-precheck-exporter/".len());
    }
}
