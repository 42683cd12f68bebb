//! `--web.config.file`: TLS and basic auth for the exporter's own endpoints, in the file format of
//! the Prometheus exporter-toolkit (`tls_server_config`, `basic_auth_users`).
//!
//! Owns the file, in parts: `file` (the format, every setting checked while parsing; errors with
//! file:line:column, like `config`), `tls` (certificate, key and client CAs into a rustls
//! `ServerConfig`), [`auth`] (the basic-auth decision), and [`watch`] (the config in force and the
//! basic-auth cache; noticing that the file or a file it names changed: a watcher task, off the
//! request path). It serves nothing: `server` does the handshake and sends the 401. It never logs
//! or prints a password, an `Authorization` header or a hash.
//!
//! Where it differs from exporter-toolkit: TLS 1.2 and 1.3 only (rustls); the two verifying
//! `client_auth_type`s need `client_ca_file` (Go would fall back to the system roots); whether
//! the port speaks TLS is fixed at start-up (a re-read that switches it is refused); and the
//! toolkit's other settings (`cert`/`key`/`client_ca` inline, `cipher_suites`, `curve_preferences`,
//! `prefer_server_cipher_suites`, `client_allowed_sans`, `http_server_config`, `rate_limit`) are
//! rejected as unsupported rather than silently ignored.

pub(crate) mod auth;
mod file;
mod tls;
pub(crate) mod watch;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;

use self::file::RawWebConfig;
pub use self::watch::WebConfigWatch;
use crate::config::yaml::{ConfigError, key_location, yaml_error};
use crate::stamp::Stamp;

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
        Self::parse_in(&text, path, dir, stamp)
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
        Ok(WebConfig {
            tls,
            users,
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
        let e = parse("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n").unwrap_err();
        assert!(e.message.contains("cipher_suites"), "{e}");
        assert!(e.message.contains("does not support"), "{e}");
        assert_eq!(e.location.map(|l| l.0), Some(4), "{e}");
        let e = parse("rate_limit:\n  interval: 1s\n  burst: 20\n").unwrap_err();
        assert!(e.message.contains("rate_limit"), "{e}");
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
