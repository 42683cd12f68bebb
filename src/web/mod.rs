//! `--web.config.file`: TLS, basic auth, a rate limit and response headers for the exporter's own
//! endpoints, in the file format of the Prometheus exporter-toolkit (`tls_server_config`,
//! `basic_auth_users`, `http_server_config`, `rate_limit`).
//!
//! Owns the file, in parts: `file` (the format, every setting checked while parsing; errors with
//! file:line:column, like `config`), `tls` (certificate, key and client CAs into a rustls
//! `ServerConfig`), `san` (`client_allowed_sans`), `limit` (the `rate_limit` bucket), [`auth`]
//! (the basic-auth decision), and [`watch`] (the config in force and the basic-auth cache;
//! noticing that the file or a file it names changed: a watcher task, off the request path). It
//! serves nothing: `server` does the handshake and sends the 401, the 429 and the headers. It
//! never logs or prints a password, an `Authorization` header or a hash.
//!
//! Where it differs from exporter-toolkit: TLS 1.2 and 1.3 only (rustls); HTTP/1.1 only
//! (`http2: true` is accepted and logged as having no effect); the two verifying
//! `client_auth_type`s need `client_ca_file` (Go would fall back to the system roots); whether
//! the port speaks TLS is fixed at start-up (a re-read that switches it is refused); the
//! configured headers also go on 429s; `cipher_suites` and `curve_preferences` take only what
//! rustls implements; and inline `cert`/`key`/`client_ca` are rejected as unsupported rather
//! than silently ignored.

pub(crate) mod auth;
mod file;
mod limit;
mod san;
mod tls;
pub(crate) mod watch;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};
use tokio_rustls::TlsAcceptor;

use self::file::{RawHttp, RawRateLimit, RawWebConfig};
use self::limit::RateLimit;
pub use self::watch::WebConfigWatch;
use crate::config::yaml::{ConfigError, key_location, yaml_error};
use crate::stamp::Stamp;

/// Makes a located error: the key to point at, and the message.
type ErrorAt<'a> = &'a dyn Fn(&str, String) -> ConfigError;

/// The realm in `WWW-Authenticate: Basic realm="..."`.
pub(crate) const REALM: &str = "cdss-precheck-exporter";

/// How often the watcher looks at the web config's files for a change (one `stat` per file).
pub(crate) const WATCH_EVERY: Duration = Duration::from_secs(1);

/// A validated web config with its certificates loaded.
pub(crate) struct WebConfig {
    /// Handshakes for the listener; `None`: plain HTTP.
    tls: Option<TlsAcceptor>,
    /// User name → bcrypt hash; empty: no basic auth.
    pub(crate) users: HashMap<String, String>,
    /// `http_server_config.headers`, added to every response.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// `rate_limit`; `None`: no limit.
    rate_limit: Option<Arc<RateLimit>>,
    /// `http_server_config.http2: true` was written (this exporter serves HTTP/1.1; logged).
    http2_asked: bool,
    /// The files it was loaded from, as they were then, to notice a change.
    pub(crate) stamp: Stamp,
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hashes stay out of Debug: each one allows an offline guessing attack on a password.
        let mut users: Vec<&str> = self.users.keys().map(String::as_str).collect();
        users.sort_unstable();
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &users)
            .field("headers", &self.headers)
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

impl WebConfig {
    /// Reads and validates `path` and loads the files it names (relative paths are relative to
    /// `path`'s directory, as in exporter-toolkit), recording in `stamp` every file it looked at
    /// (also when it fails, so a failed version is not retried until one of them changes).
    pub(crate) fn load(path: &Path, stamp: &mut Stamp) -> Result<WebConfig, ConfigError> {
        stamp.add(path);
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(path, None, format!("cannot read web config file: {e}"))
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let config = Self::parse_in(&text, path, dir, stamp)?;
        if config.http2_asked {
            // HTTP/1.1 is what scrapers use; see the README ("TLS and basic auth") for why.
            tracing::info!(file = %path.display(), "http_server_config.http2: this exporter serves HTTP/1.1 only; the setting has no effect");
        }
        Ok(config)
    }

    /// Parses and validates YAML text, loading the files it names from `dir` (when relative).
    /// `file` is only used in error messages.
    #[cfg(test)]
    pub(crate) fn parse(text: &str, file: &Path, dir: &Path) -> Result<WebConfig, ConfigError> {
        Self::parse_in(text, file, dir, &mut Stamp::default())
    }

    fn parse_in(
        text: &str,
        file: &Path,
        dir: &Path,
        stamp: &mut Stamp,
    ) -> Result<WebConfig, ConfigError> {
        // An empty file (or one with only comments) enables nothing, as in exporter-toolkit.
        let raw: Option<RawWebConfig> =
            yaml_serde::from_str(text).map_err(|e| yaml_error(file, &e))?;
        let raw = raw.unwrap_or_default();
        let err = |key: &str, message| ConfigError::new(file, key_location(text, key), message);
        let tls = raw
            .tls_server_config
            .map(|t| tls::build(t, dir, stamp, &err));
        let tls = tls.transpose()?.flatten();
        let users = raw
            .basic_auth_users
            .unwrap_or_default()
            .into_iter()
            .map(|(user, hash)| (user.0, hash.0))
            .collect();
        let http = raw.http_server_config.unwrap_or_default();
        Ok(WebConfig {
            tls,
            users,
            http2_asked: http.http2 == Some(true),
            headers: headers(http, &err)?,
            rate_limit: raw
                .rate_limit
                .map(|r| rate_limit(r, &err))
                .transpose()?
                .flatten(),
            stamp: stamp.clone(),
        })
    }

    /// The TLS handshake for new connections; `None` when the port speaks plain HTTP.
    pub(crate) fn tls(&self) -> Option<&TlsAcceptor> {
        self.tls.as_ref()
    }

    /// True when requests need a user name and password.
    pub(crate) fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }

    /// The headers every response gets (`http_server_config.headers`).
    pub(crate) fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// True when `rate_limit` refuses a request now (it takes a token otherwise).
    pub(crate) fn rate_limited(&self) -> bool {
        self.rate_limit.as_ref().is_some_and(|l| !l.allow())
    }

    /// Keeps `old`'s token bucket when the limit did not change, so that re-reading the file
    /// (a rotated certificate, say) hands out no fresh burst.
    pub(crate) fn keep_bucket(&mut self, old: &WebConfig) {
        if let (Some(new), Some(old)) = (&self.rate_limit, &old.rate_limit) {
            if new.same_settings(old) {
                self.rate_limit = Some(old.clone());
            }
        }
    }
}

/// `http_server_config.headers`, checked (names while parsing; values here) and ready to send.
/// A blank value leaves the header unset, as exporter-toolkit documents.
fn headers(http: RawHttp, err: ErrorAt<'_>) -> Result<Vec<(HeaderName, HeaderValue)>, ConfigError> {
    let mut out = Vec::new();
    for (header, value) in http.headers.unwrap_or_default() {
        let name = header.name;
        let at = |message| {
            err(
                name,
                format!("http_server_config.headers.{name}: {message}"),
            )
        };
        if value.is_empty() && header.values.is_empty() {
            continue;
        }
        if !header.values.is_empty() && !header.values.contains(&value.as_str()) {
            return Err(at(format!(
                "{value:?} is not one of {}",
                header.values.join(", ")
            )));
        }
        let invalid = |_| at("not a valid header value".into());
        let value = HeaderValue::from_str(&value).map_err(invalid)?;
        let name = HeaderName::try_from(name).map_err(|_| at("not a header name".into()))?;
        out.push((name, value));
    }
    out.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    Ok(out)
}

/// `rate_limit`; `None` when `interval` is absent or zero (no limit, as in exporter-toolkit).
fn rate_limit(raw: RawRateLimit, err: ErrorAt<'_>) -> Result<Option<Arc<RateLimit>>, ConfigError> {
    let every = raw.interval.map_or(Duration::ZERO, |d| d.0);
    match raw.burst.unwrap_or(0) {
        _ if every.is_zero() => Ok(None),
        0 => Err(err(
            "rate_limit",
            "rate_limit.burst: must be at least 1 when interval is set (0 would refuse every request)".into(),
        )),
        burst => Ok(Some(Arc::new(RateLimit::new(every, burst)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::auth::UNKNOWN_USER_HASH;

    fn parse(text: &str) -> Result<WebConfig, ConfigError> {
        WebConfig::parse(text, Path::new("web.yml"), Path::new("/nonexistent"))
    }

    #[test]
    fn empty_file_enables_nothing() {
        for text in [
            "",
            "# nothing\n",
            "---\n",
            "# only\n---\n\n",
            "tls_server_config: {}\n",
        ] {
            let c = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(c.tls().is_none() && !c.requires_auth(), "{text:?}");
        }
    }

    #[test]
    fn unknown_keys_are_errors_with_line_and_column() {
        let e = parse("basic_auth_users: {}\ntls_server_config:\n  cert_file: a\n  keyfile: b\n")
            .unwrap_err();
        assert_eq!(e.location.map(|l| l.0), Some(4), "{e}");
        assert!(e.message.contains("keyfile"), "{e}");
        assert!(e.to_string().starts_with("web.yml:4:"), "{e}");
    }

    #[test]
    fn unsupported_toolkit_settings_are_named() {
        let e = parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca: |\n    -----BEGIN CERTIFICATE-----\n").unwrap_err();
        assert!(e.message.contains("client_ca"), "{e}");
        assert!(e.message.contains("does not support"), "{e}");
        assert_eq!(e.location.map(|l| l.0), Some(4), "{e}");
    }

    #[test]
    fn http_server_config_and_rate_limit() {
        let c = parse("http_server_config:\n  http2: true\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n    X-XSS-Protection: ''\nrate_limit:\n  interval: 1.5s\n  burst: 20\n").unwrap();
        let headers: Vec<_> = c
            .headers()
            .iter()
            .map(|(n, v)| format!("{n}: {v:?}"))
            .collect();
        assert_eq!(
            headers,
            [
                "strict-transport-security: \"max-age=31536000\"",
                "x-frame-options: \"deny\""
            ],
            "a blank value sets nothing"
        );
        assert!(c.http2_asked && c.rate_limit.is_some());
        for text in [
            "http_server_config:\n  http2: false\n",
            "rate_limit:\n  interval: 0\n  burst: 0\n",
            "rate_limit:\n  burst: 5\n",
        ] {
            let c = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(!c.http2_asked && c.rate_limit.is_none(), "{text:?}");
        }
    }

    #[test]
    fn http_and_rate_limit_errors_are_located() {
        for (text, at, wanted) in [
            (
                "http_server_config:\n  headers:\n    Server: x\n",
                (3, 5),
                "header \"Server\" can not be configured (only Content-Security-Policy, ",
            ),
            (
                "http_server_config:\n  headers:\n    x-frame-options: deny\n",
                (3, 5),
                "can not be configured",
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: DENY\n",
                (3, 22),
                "http_server_config.headers.X-Frame-Options: \"DENY\" is not one of deny, sameorigin",
            ),
            (
                "http_server_config:\n  headers:\n    X-Content-Type-Options: ''\n",
                (3, 29),
                "is not one of nosniff",
            ),
            (
                "http_server_config:\n  http3: true\n",
                (2, 3),
                "unknown field `http3`",
            ),
            (
                "http_server_config:\n  http2: yes please\n",
                (2, 10),
                "invalid type",
            ),
            (
                "rate_limit:\n  interval: 1 second\n  burst: 1\n",
                (2, 13),
                "\"1 second\" is not a duration like 1s",
            ),
            (
                "rate_limit:\n  interval: 1s\n  burst: -1\n",
                (3, 10),
                "integer `-1`, expected u32",
            ),
            (
                "rate_limit:\n  interval: 1s\n",
                (1, 1),
                "rate_limit.burst: must be at least 1",
            ),
            (
                "rate_limit:\n  interval: 1s\n  brust: 3\n",
                (3, 3),
                "unknown field `brust`",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.location, Some(at), "{text:?}: {e}");
            assert!(e.message.contains(wanted), "{text:?}: {e}");
        }
    }

    #[test]
    fn go_durations() {
        use super::file::parse_go_duration as d;
        assert_eq!(d("0"), Some(Duration::ZERO));
        assert_eq!(d("1s"), Some(Duration::from_secs(1)));
        assert_eq!(d("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(d("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(d("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(d("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(d("10µs"), Some(Duration::from_micros(10)));
        for bad in ["", "1", "s", "1d", "-1s", "1 s", "1.2.3s"] {
            assert_eq!(d(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bad_values_are_located() {
        let e = parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS11\n")
            .unwrap_err();
        assert_eq!(e.location, Some((4, 16)), "{e}");
        assert!(e.message.contains("TLS 1.0 and 1.1"), "{e}");
        let e = parse("tls_server_config:\n  client_auth_type: RequireClientCert\n").unwrap_err();
        assert_eq!(e.location, Some((2, 21)), "{e}");
        assert!(e.message.contains("RequireAndVerifyClientCert"), "{e}");
        let e = parse("basic_auth_users:\n  alice: hunter2\n").unwrap_err();
        assert_eq!(e.location, Some((2, 10)), "{e}");
        assert!(e.message.contains("not a bcrypt hash"), "{e}");
        assert!(
            !e.to_string().contains("hunter2"),
            "the value is never echoed: {e}"
        );
        let e = parse(&format!(
            "basic_auth_users:\n  'a:b': {UNKNOWN_USER_HASH}\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("':'"), "{e}");
    }

    #[test]
    fn cross_field_errors() {
        let e = parse("tls_server_config:\n  cert_file: a\n").unwrap_err();
        assert!(e.message.contains("key_file: required"), "{e}");
        assert_eq!(e.location, Some((1, 1)), "{e}");
        let e = parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n").unwrap_err();
        assert!(e.message.contains("above max_version"), "{e}");
        assert_eq!(e.location.map(|l| l.0), Some(4), "{e}");
        // Files are looked at only after the cross-field checks; here cert_file is missing.
        let e = parse("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
            .unwrap_err();
        assert!(e.message.contains("/nonexistent/server.crt"), "{e}");
        assert_eq!(e.location, Some((2, 14)), "{e}");
    }

    #[test]
    fn users_parse() {
        let c = parse(&format!(
            "basic_auth_users:\n  alice: {UNKNOWN_USER_HASH}\n  bob: '{UNKNOWN_USER_HASH}'\n"
        ))
        .unwrap();
        assert!(c.requires_auth());
        let debug = format!("{c:?}");
        assert!(
            debug.contains("alice") && !debug.contains("$2b$"),
            "{debug}"
        );
    }
}
