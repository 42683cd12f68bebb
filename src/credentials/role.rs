//! The server role: keys from the metadata API of the NCP server the exporter runs on, and the
//! refresher that replaces them before they expire.
//!
//! Owns the metadata API's paths, its 3 s timeout (no proxy, redirects never followed, a small
//! body cap), the parsing of its answer and `Expiration`, and the refresh schedule: at
//! `Expiration - min(REFRESH_BEFORE, half the remaining life)`, then with back-off
//! ([`RETRY_MIN`] doubling to [`RETRY_MAX`]) while it fails. A failed refresh keeps the old keys
//! (the call path stops using them at `Expiration`) and counts a refresh failure. A 401 with the
//! current keys asks for one early refresh per key pair ([`AccountKeys::on_auth_failure`]):
//! never a loop. The refresher is the only writer of a role account's [`AccountKeys`] after
//! start-up. It is called only when the config or the chain gets to the role.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt as _, Limited};
use serde::Deserialize;

use super::source::validate_role_name;
use super::{AccountKeys, Credentials, Found, Origin, nonblank, too_late};

/// The metadata API's list of roles (one a line), and the prefix of each role's keys.
pub(crate) const ROLES_PATH: &str = "/latest/meta-data/iam/security-credentials/";
/// Whole-call timeout of a metadata API call, as NCP's SDKs use.
pub(crate) const METADATA_TIMEOUT: Duration = Duration::from_secs(3);
/// First retry after a failed refresh; doubled after each further failure.
pub(crate) const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest wait between two refresh attempts while refreshing fails.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(60);
/// Shortest time between two refreshes, whatever `Expiration` or 401s say.
pub(crate) const MIN_REFRESH_GAP: Duration = Duration::from_secs(1);
/// Role keys are refreshed this long before they expire (or halfway, for shorter lives).
pub(crate) const REFRESH_BEFORE: Duration = Duration::from_secs(5 * 60);
/// Largest metadata answer read (a role's keys are a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

/// The metadata API gave no usable keys. Never holds a key byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metadata API {url}: {problem}")]
pub struct RoleError {
    /// What was asked (the endpoint and path; no key is in it).
    pub url: String,
    /// What went wrong.
    pub problem: String,
}

impl RoleError {
    pub(super) fn new(url: impl Into<String>, problem: impl Into<String>) -> Self {
        let (url, problem) = (url.into(), problem.into());
        Self { url, problem }
    }
}

/// Talks to the metadata API.
#[derive(Clone, Debug)]
pub(crate) struct MetadataClient {
    /// No proxy, no redirects, [`METADATA_TIMEOUT`].
    http: reqwest::Client,
    /// Scheme, host and port, e.g. `http://169.254.169.254`.
    endpoint: String,
}

impl MetadataClient {
    /// A client for the metadata API at `endpoint`.
    pub(crate) fn new(endpoint: &str) -> Result<Self, RoleError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(METADATA_TIMEOUT)
            .connect_timeout(METADATA_TIMEOUT)
            .user_agent(crate::ncp::client::USER_AGENT)
            .build()
            .map_err(|e| RoleError::new(endpoint, format!("cannot build the HTTP client: {e}")))?;
        let endpoint = endpoint.to_string();
        Ok(Self { http, endpoint })
    }

    /// The address of `role`'s keys (`""`: of the list of roles).
    fn url(&self, role: &str) -> String {
        format!("{}{ROLES_PATH}{role}", self.endpoint)
    }

    /// `wanted`, or the first role the metadata API lists.
    pub(crate) async fn role(&self, wanted: Option<&str>) -> Result<String, RoleError> {
        if let Some(name) = wanted {
            return Ok(name.to_string());
        }
        let url = self.url("");
        let body = self.get(&url).await?;
        let first = String::from_utf8_lossy(&body).lines().find_map(nonblank);
        let Some(name) = first else {
            let problem = "lists no server role (give the server one, or set keys)";
            return Err(RoleError::new(url, problem));
        };
        // Not quoted: a misbehaving endpoint could answer this path with anything, keys included.
        validate_role_name(&name).map_err(|_| {
            let n = name.chars().count();
            RoleError::new(url, format!("its first line ({n} characters) is not a server role name (letters, digits and - _ . + = , @)"))
        })?;
        Ok(name)
    }

    /// The role's current keys and when they expire.
    pub(crate) async fn fetch(&self, role: &str) -> Result<Found, RoleError> {
        let url = self.url(role);
        let body = self.get(&url).await?;
        let (credentials, expires) =
            parse_role_keys(&body).map_err(|problem| RoleError { url, problem })?;
        let (name, endpoint) = (role.to_string(), self.endpoint.clone());
        let mut found = Found::fixed(credentials, Origin::Role { name, endpoint });
        found.expires = Some(expires);
        Ok(found)
    }

    async fn get(&self, url: &str) -> Result<bytes::Bytes, RoleError> {
        let err = |problem: String| RoleError::new(url, problem);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| err(format!("unreachable: {}", reqwest_detail(e))))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(err(format!("HTTP {status} (redirects are not followed)")));
        }
        if !status.is_success() {
            return Err(err(format!("HTTP {status}")));
        }
        let body = Limited::new(reqwest::Body::from(response), MAX_BODY)
            .collect()
            .await;
        let body = body.map_err(|e| match e.downcast::<reqwest::Error>() {
            Ok(e) => err(format!("reading the answer: {}", reqwest_detail(*e))),
            Err(_) => err(format!("answer larger than {MAX_BODY} bytes")),
        })?;
        Ok(body.to_bytes())
    }
}

/// The error and its sources on one line, without the URL (the caller names it).
fn reqwest_detail(e: reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s", METADATA_TIMEOUT.as_secs());
    }
    crate::error_text::chain(&e.without_url())
}

/// A role's keys as the metadata API answers them. No `Debug`: it holds the secret.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleAnswer {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    expiration: Option<String>,
    code: Option<String>,
    message: Option<String>,
}

/// The keys and `Expiration` of a metadata answer. `Err` never quotes the answer's keys.
fn parse_role_keys(body: &[u8]) -> Result<(Credentials, SystemTime), String> {
    let answer: RoleAnswer = serde_json::from_slice(body).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        format!("not the expected JSON object (line {line}, column {column})")
    })?;
    let refused = answer.code.as_deref();
    if let Some(code) = refused.filter(|c| !c.eq_ignore_ascii_case("success")) {
        let message = answer.message.unwrap_or_default();
        let mut message: String = message.chars().take(200).collect();
        // Keys that came with a refusal are not quoted either.
        let keys = [answer.access_key_id, answer.secret_access_key];
        let keys: Vec<&str> = keys.iter().flatten().map(|k| k.trim()).collect();
        crate::outcome::redact(&mut message, &keys);
        return Err(format!("Code {code:?}: {message}"));
    }
    let present = |v: Option<String>| v.as_deref().and_then(nonblank);
    let access_key = present(answer.access_key_id).ok_or("no AccessKeyId in the answer")?;
    let secret_key = present(answer.secret_access_key).ok_or("no SecretAccessKey in the answer")?;
    let expiration = present(answer.expiration).ok_or("no Expiration in the answer")?;
    let expires = parse_expiration(&expiration)?;
    Ok((Credentials::new(access_key, secret_key), expires))
}

/// An RFC 3339 time: `2026-12-02T03:00:00Z`, with fractional seconds, or with a `+09:00` offset.
fn parse_expiration(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    let bad = || format!("Expiration {text:?} is not an RFC 3339 time");
    if let Ok(t) = humantime::parse_rfc3339(text) {
        return Ok(t);
    }
    // humantime reads only `Z`; an offset `±HH:MM` is applied here.
    let split = text.len().checked_sub(6).ok_or_else(bad)?;
    let (time, offset) = (text.get(..split).ok_or_else(bad)?, &text[split..]);
    let b = offset.as_bytes();
    if !(matches!(b[0], b'+' | b'-') && b[3] == b':') {
        return Err(bad());
    }
    let hours: u64 = offset[1..3].parse().map_err(|_| bad())?;
    let minutes: u64 = offset[4..6].parse().map_err(|_| bad())?;
    let utc = humantime::parse_rfc3339(&format!("{time}Z")).map_err(|_| bad())?;
    let shift = Duration::from_secs(hours * 3600 + minutes * 60);
    // 12:00+09:00 is 03:00Z: a positive offset is subtracted.
    if b[0] == b'+' {
        utc.checked_sub(shift).ok_or_else(bad)
    } else {
        utc.checked_add(shift).ok_or_else(bad)
    }
}

/// How long to wait before refreshing keys with `remaining` life left.
fn refresh_delay(remaining: Duration, refresh_before: Duration) -> Duration {
    remaining.saturating_sub(refresh_before.min(remaining / 2))
}

/// The wait after `failures` refreshes in a row have failed (1 → [`RETRY_MIN`]).
pub(crate) fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    RETRY_MIN.saturating_mul(1 << doublings).min(RETRY_MAX)
}

/// Keeps `keys` fresh from `role` until the task is aborted (its keyring is dropped).
pub(super) async fn refresh(keys: Arc<AccountKeys>, client: MetadataClient, role: String) {
    let mut failures = 0u32;
    let mut last_fetch = tokio::time::Instant::now();
    loop {
        let left = |e: SystemTime| e.duration_since(SystemTime::now()).unwrap_or_default();
        let wait = match failures {
            0 => refresh_delay(keys.expires().map_or(Duration::ZERO, left), REFRESH_BEFORE),
            n => backoff(n),
        };
        let early = tokio::select! {
            () = tokio::time::sleep(wait.max(MIN_REFRESH_GAP)) => false,
            () = keys.early.notified() => true,
        };
        // Even an early refresh waits for the gap since the last one.
        tokio::time::sleep_until(last_fetch + MIN_REFRESH_GAP).await;
        last_fetch = tokio::time::Instant::now();
        let result = match client.fetch(&role).await {
            Ok(found) if too_late(found.expires, SystemTime::now()) => Err(RoleError::new(
                client.url(&role),
                "the keys it gave have expired or expire within a second (is this host's clock right?)",
            )),
            fetched => fetched,
        };
        match result {
            Ok(found) => {
                failures = 0;
                let until = found
                    .expires
                    .map(|e| humantime::format_rfc3339_seconds(e).to_string());
                let rotated = keys.install(found);
                tracing::debug!(account = %keys.account(), role = %role, early, rotated, expires = until.as_deref().unwrap_or("never"), "server role keys refreshed");
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                keys.count_failure();
                let retry = backoff(failures);
                tracing::warn!(account = %keys.account(), role = %role, retry_in = %humantime::format_duration(retry), "refreshing the server role keys failed, keeping the current ones until they expire: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_parses_rfc3339_with_z_fraction_and_offset() {
        let z = parse_expiration("2026-12-02T03:00:00Z").unwrap();
        assert_eq!(
            z.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            1_796_180_400
        );
        assert_eq!(parse_expiration("2026-12-02T12:00:00+09:00").unwrap(), z);
        assert_eq!(parse_expiration("2026-12-02T02:30:00-00:30").unwrap(), z);
        assert!(parse_expiration("2026-12-02T03:00:00.250Z").unwrap() > z);
        for bad in [
            "",
            "soon",
            "2026-12-02",
            "2026-12-02T03:00:00+0900",
            "2026-13-02T03:00:00Z",
        ] {
            assert!(parse_expiration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metadata_answer_parses_and_errors_never_quote_keys() {
        let ok = br#"{"AccessKeyId":"ROLE-AK","SecretAccessKey":"role-sk-x","Expiration":"2026-12-02T03:00:00Z","Code":"Success","Message":""}"#;
        let (c, _) = parse_role_keys(ok).unwrap();
        assert_eq!(c.access_key, "ROLE-AK");
        assert_eq!(c.secret_key.expose(), "role-sk-x");
        let refused = br#"{"Code":"Fail","Message":"no role attached"}"#;
        assert_eq!(
            parse_role_keys(refused).unwrap_err(),
            "Code \"Fail\": no role attached"
        );
        let echoed = br#"{"Code":"Fail","Message":"keys ROLE-AK/role-sk-x expired","AccessKeyId":"ROLE-AK","SecretAccessKey":"role-sk-x"}"#;
        assert_eq!(
            parse_role_keys(echoed).unwrap_err(),
            "Code \"Fail\": keys <redacted>/<redacted> expired"
        );
        let no_exp = br#"{"AccessKeyId":"ROLE-AK","SecretAccessKey":"role-sk-x"}"#;
        assert!(parse_role_keys(no_exp).unwrap_err().contains("Expiration"));
        let wrong_type =
            br#"{"AccessKeyId":"ROLE-AK","SecretAccessKey":"role-sk-x","Expiration":5}"#;
        let e = parse_role_keys(wrong_type).unwrap_err();
        assert!(!e.contains("role-sk-x") && !e.contains("ROLE-AK"), "{e}");
        let e = parse_role_keys(br#"{"AccessKeyId":"ROLE-AK","SecretAccessKey":"role-sk-x""#)
            .unwrap_err();
        assert!(!e.contains("role-sk-x"), "{e}");
    }

    /// A loopback server that answers every request with `head` and counts connections.
    async fn answering(head: &'static str) -> (String, Arc<std::sync::atomic::AtomicU64>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(head.as_bytes()).await;
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn redirects_are_never_followed() {
        let (target, target_seen) =
            answering("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nrole\n").await;
        let head: &'static str = Box::leak(
            format!(
                "HTTP/1.1 302 Found\r\nlocation: {target}{ROLES_PATH}\r\ncontent-length: 0\r\n\r\n"
            )
            .into_boxed_str(),
        );
        let (endpoint, _) = answering(head).await;
        let client = MetadataClient::new(&endpoint).unwrap();
        let e = client.role(None).await.unwrap_err();
        assert!(e.problem.contains("redirects are not followed"), "{e}");
        assert_eq!(target_seen.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    #[test]
    fn refresh_schedule_and_backoff() {
        let s = Duration::from_secs;
        // Long-lived keys: 5 minutes before they expire.
        assert_eq!(refresh_delay(s(3600), s(300)), s(3300));
        // Short-lived keys: halfway.
        assert_eq!(refresh_delay(s(6), s(300)), s(3));
        assert_eq!(refresh_delay(Duration::ZERO, s(300)), Duration::ZERO);
        assert_eq!(backoff(1), RETRY_MIN);
        assert_eq!(backoff(2), s(2));
        assert_eq!(backoff(4), s(8));
        assert_eq!(backoff(40), RETRY_MAX);
    }
}
