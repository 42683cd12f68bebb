//! `--web.config.file`: TLS and basic auth for the exporter's own endpoints, in the file format of
//! the Prometheus exporter-toolkit (`tls_server_config`, `basic_auth_users`).
//!
//! Owns the file: parsing and validation (errors with file:line:column, like `config`), loading
//! the certificate, key and client CAs into a rustls `ServerConfig`, noticing that the file or a
//! file it names changed ([`WebConfigWatch::current`]), and the basic-auth decision with its
//! cache ([`WebConfigWatch::authorize`]). It serves nothing: `server` does the handshake and
//! sends the 401. It never logs or prints a password, an `Authorization` header or a hash.
//!
//! Where it differs from exporter-toolkit: TLS 1.2 and 1.3 only (rustls); the two verifying
//! `client_auth_type`s need `client_ca_file` (Go would fall back to the system roots); whether
//! the port speaks TLS is fixed at start-up (a re-read that switches it is refused); and the
//! toolkit's other settings (`cert`/`key`/`client_ca` inline, `cipher_suites`, `curve_preferences`,
//! `prefer_server_cipher_suites`, `client_allowed_sans`, `http_server_config`, `rate_limit`) are
//! rejected as unsupported rather than silently ignored.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, TryLockError};
use std::time::SystemTime;

use base64::Engine as _;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio_rustls::TlsAcceptor;

use crate::config::{ConfigError, parse_scalar, yaml_error};

/// The realm in `WWW-Authenticate: Basic realm="..."`.
pub const REALM: &str = "cdss-precheck-exporter";

/// Checked instead of a real hash when the user name is unknown, so that an unknown user costs
/// as much time as a wrong password and user names cannot be probed by timing. Cost 10, as
/// exporter-toolkit's docs suggest; the password behind it is random and was thrown away.
const UNKNOWN_USER_HASH: &str = "$2b$10$18AwjZ8kc3w0cB/BmY..wuyzFm0cC7OYyq6nu7.srBfe8OggxnAda";

/// A validated web config with its certificates loaded.
pub struct WebConfig {
    /// Handshakes for the listener; `None`: plain HTTP.
    tls: Option<TlsAcceptor>,
    /// User name → bcrypt hash; empty: no basic auth.
    users: HashMap<String, String>,
    /// The files it was loaded from, as they were then, to notice a change.
    stamp: Stamp,
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
    /// `path`'s directory, as in exporter-toolkit).
    pub fn load(path: &Path) -> Result<WebConfig, ConfigError> {
        Self::load_stamped(path, &mut Stamp::default())
    }

    /// [`load`](Self::load), recording in `stamp` every file it looked at (also when it fails,
    /// so a failed version is not retried until one of them changes).
    fn load_stamped(path: &Path, stamp: &mut Stamp) -> Result<WebConfig, ConfigError> {
        stamp.add(path);
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            location: None,
            message: format!("cannot read web config file: {e}"),
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut config = Self::parse_in(&text, path, dir, stamp)?;
        config.stamp = stamp.clone();
        Ok(config)
    }

    /// Parses and validates YAML text, loading the files it names from `dir` (when relative).
    /// `file` is only used in error messages.
    pub fn parse(text: &str, file: &Path, dir: &Path) -> Result<WebConfig, ConfigError> {
        Self::parse_in(text, file, dir, &mut Stamp::default())
    }

    fn parse_in(
        text: &str,
        file: &Path,
        dir: &Path,
        stamp: &mut Stamp,
    ) -> Result<WebConfig, ConfigError> {
        // An empty file (or one with only comments) enables nothing, as in exporter-toolkit.
        let raw: RawWebConfig = if is_empty_document(text) {
            RawWebConfig::default()
        } else {
            yaml_serde::from_str(text).map_err(|e| yaml_error(file, &e))?
        };
        let err = |key: &str, message: String| ConfigError {
            file: file.to_path_buf(),
            location: key_location(text, key),
            message,
        };
        let tls = match raw.tls_server_config {
            None => None,
            Some(t) => build_tls(t, dir, stamp, &err)?,
        };
        let users = raw
            .basic_auth_users
            .unwrap_or_default()
            .into_iter()
            .map(|(user, hash)| (user.0, hash.0))
            .collect();
        Ok(WebConfig {
            tls,
            users,
            stamp: Stamp::default(),
        })
    }

    /// The TLS handshake for new connections; `None` when the port speaks plain HTTP.
    pub fn tls(&self) -> Option<&TlsAcceptor> {
        self.tls.as_ref()
    }

    /// True when requests need a user name and password.
    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }
}

fn is_empty_document(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    })
}

/// Where `key:` is written (line, column of its value, 1-based), for errors found after parsing.
fn key_location(text: &str, key: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(i, line)| {
        let start = line.len() - line.trim_start().len();
        let rest = line[start..].strip_prefix(key)?.strip_prefix(':')?;
        let value_at = line.len() - rest.trim_start().len();
        Some((
            i + 1,
            if rest.trim().is_empty() {
                start
            } else {
                value_at
            } + 1,
        ))
    })
}

/// The file as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<RawTls>,
    basic_auth_users: Option<HashMap<UserName, BcryptHash>>,
    #[allow(dead_code)] // parsed only to be refused
    http_server_config: Option<Unsupported>,
    #[allow(dead_code)] // parsed only to be refused
    rate_limit: Option<Unsupported>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<FileName>,
    key_file: Option<FileName>,
    client_ca_file: Option<FileName>,
    client_auth_type: Option<ClientAuth>,
    min_version: Option<TlsVersion>,
    max_version: Option<TlsVersion>,
    #[allow(dead_code)] // parsed only to be refused
    cert: Option<Unsupported>,
    #[allow(dead_code)] // parsed only to be refused
    key: Option<Unsupported>,
    #[allow(dead_code)] // parsed only to be refused
    client_ca: Option<Unsupported>,
    #[allow(dead_code)] // parsed only to be refused
    cipher_suites: Option<Unsupported>,
    #[allow(dead_code)] // parsed only to be refused
    prefer_server_cipher_suites: Option<Unsupported>,
    #[allow(dead_code)] // parsed only to be refused
    curve_preferences: Option<Unsupported>,
    #[allow(dead_code)] // parsed only to be refused
    client_allowed_sans: Option<Unsupported>,
}

/// An exporter-toolkit setting this exporter does not implement: an error, never ignored.
struct Unsupported;

impl<'de> Deserialize<'de> for Unsupported {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const WHY: &str = "an exporter-toolkit setting cdss-precheck-exporter does not support; remove it (see README, \"TLS and basic auth\")";
        impl<'de> Visitor<'de> for V {
            type Value = Unsupported;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(WHY)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Unsupported, E> {
                Err(E::custom(WHY))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Unsupported, E> {
                Err(E::custom(WHY))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Unsupported, E> {
                Err(E::custom(WHY))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Unsupported, E> {
                Err(E::custom(WHY))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Unsupported, E> {
                Err(E::custom(WHY))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Unsupported, E> {
                Err(E::custom(WHY))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Unsupported, A::Error> {
                Err(de::Error::custom(WHY))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Unsupported, A::Error> {
                Err(de::Error::custom(WHY))
            }
        }
        d.deserialize_any(V)
    }
}

/// A non-empty path.
struct FileName(PathBuf);

impl<'de> Deserialize<'de> for FileName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a file name", |s| {
            if s.trim().is_empty() {
                Err("must not be empty".into())
            } else {
                Ok(FileName(PathBuf::from(s)))
            }
        })
    }
}

/// A basic-auth user name: not empty, and no `:` (Basic auth could not send it).
#[derive(PartialEq, Eq, Hash)]
struct UserName(String);

impl<'de> Deserialize<'de> for UserName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a user name", |s| {
            if s.is_empty() || s.contains(':') {
                Err(format!(
                    "user name {s:?}: must be non-empty and without ':'"
                ))
            } else {
                Ok(UserName(s.to_string()))
            }
        })
    }
}

/// A bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`), checked for form, never echoed.
struct BcryptHash(String);

impl<'de> Deserialize<'de> for BcryptHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a bcrypt hash", |s| {
            let s = s.trim();
            s.parse::<bcrypt::HashParts>()
                .map(|_| BcryptHash(s.to_string()))
                .map_err(|_| {
                    "not a bcrypt hash (like $2y$10$ followed by 53 characters; make one with `htpasswd -nbBC 10 USER PASSWORD`)".to_string()
                })
        })
    }
}

/// `client_auth_type`, named as Go's `tls.ClientAuthType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for (the default).
    NoClientCert,
    /// One is asked for but not required, and not verified.
    RequestClientCert,
    /// One is required but not verified against a CA (only proof of its key).
    RequireAnyClientCert,
    /// One is optional, but verified against `client_ca_file` when sent.
    VerifyClientCertIfGiven,
    /// One is required and verified against `client_ca_file`: real client authentication.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    const ALL: [(&'static str, ClientAuth); 5] = [
        ("NoClientCert", ClientAuth::NoClientCert),
        ("RequestClientCert", ClientAuth::RequestClientCert),
        ("RequireAnyClientCert", ClientAuth::RequireAnyClientCert),
        (
            "VerifyClientCertIfGiven",
            ClientAuth::VerifyClientCertIfGiven,
        ),
        (
            "RequireAndVerifyClientCert",
            ClientAuth::RequireAndVerifyClientCert,
        ),
    ];

    fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

impl<'de> Deserialize<'de> for ClientAuth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a client auth type", |s| {
            ClientAuth::ALL
                .iter()
                .find(|(name, _)| *name == s.trim())
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    let names: Vec<&str> = ClientAuth::ALL.iter().map(|(n, _)| *n).collect();
                    format!(
                        "unknown client auth type {s:?} (expected one of {})",
                        names.join(", ")
                    )
                })
        })
    }
}

/// `min_version` / `max_version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TlsVersion {
    Tls12,
    Tls13,
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a TLS version", |s| match s.trim() {
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            "TLS10" | "TLS11" => Err(format!(
                "{s}: TLS 1.0 and 1.1 are not supported; use TLS12 or TLS13"
            )),
            _ => Err(format!(
                "unknown TLS version {s:?} (expected TLS12 or TLS13)"
            )),
        })
    }
}

/// The crypto provider reqwest uses too (aws-lc-rs), so only one is built in.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn build_tls(
    raw: RawTls,
    dir: &Path,
    stamp: &mut Stamp,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<TlsAcceptor>, ConfigError> {
    let client_auth = raw.client_auth_type.unwrap_or(ClientAuth::NoClientCert);
    let (cert_file, key_file) = match (raw.cert_file, raw.key_file) {
        (Some(c), Some(k)) => (dir.join(c.0), dir.join(k.0)),
        (None, None)
            if raw.client_ca_file.is_none()
                && raw.client_auth_type.is_none()
                && raw.min_version.is_none()
                && raw.max_version.is_none() =>
        {
            // `tls_server_config: {}`: TLS off, as in exporter-toolkit.
            return Ok(None);
        }
        (_, None) => {
            return Err(err(
                "tls_server_config",
                "tls_server_config.key_file: required when TLS is configured".into(),
            ));
        }
        (None, _) => {
            return Err(err(
                "tls_server_config",
                "tls_server_config.cert_file: required when TLS is configured".into(),
            ));
        }
    };
    let min = raw.min_version.unwrap_or(TlsVersion::Tls12);
    let max = raw.max_version.unwrap_or(TlsVersion::Tls13);
    if min > max {
        return Err(err(
            "min_version",
            "tls_server_config.min_version: above max_version".into(),
        ));
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (min..=max).contains(v))
    .map(|(_, p)| p)
    .collect();

    stamp.add(&cert_file);
    let certs = CertificateDer::pem_file_iter(&cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            err(
                "cert_file",
                format!("tls_server_config.cert_file: {}: {e}", cert_file.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(err(
            "cert_file",
            format!(
                "tls_server_config.cert_file: {}: no PEM certificate found",
                cert_file.display()
            ),
        ));
    }
    stamp.add(&key_file);
    let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|e| {
        err(
            "key_file",
            format!("tls_server_config.key_file: {}: {e}", key_file.display()),
        )
    })?;

    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| err("tls_server_config", format!("tls_server_config: {e}")))?;
    let builder = match (client_auth, raw.client_ca_file) {
        (ClientAuth::NoClientCert, None) => builder.with_no_client_auth(),
        (ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert, None) => builder
            .with_client_cert_verifier(Arc::new(AnyClientCert {
                mandatory: client_auth == ClientAuth::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            })),
        (auth, Some(_)) if !auth.verifies() => {
            return Err(err(
                "client_ca_file",
                format!(
                    "tls_server_config.client_ca_file: only used with client_auth_type VerifyClientCertIfGiven or RequireAndVerifyClientCert, not {auth:?}"
                ),
            ));
        }
        (auth, None) => {
            return Err(err(
                "client_auth_type",
                format!("tls_server_config.client_auth_type: {auth:?} needs client_ca_file"),
            ));
        }
        (auth, Some(ca)) => {
            let ca_file = dir.join(ca.0);
            stamp.add(&ca_file);
            let ca_err = |m: String| {
                err(
                    "client_ca_file",
                    format!(
                        "tls_server_config.client_ca_file: {}: {m}",
                        ca_file.display()
                    ),
                )
            };
            let mut roots = RootCertStore::empty();
            for cert in
                CertificateDer::pem_file_iter(&ca_file).map_err(|e| ca_err(e.to_string()))?
            {
                let cert = cert.map_err(|e| ca_err(e.to_string()))?;
                roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(ca_err("no PEM certificate found".into()));
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = if auth == ClientAuth::VerifyClientCertIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| ca_err(e.to_string()))?)
        }
    };
    let mut server = builder.with_single_cert(certs, key).map_err(|e| {
        err(
            "key_file",
            format!("tls_server_config: certificate and key do not work together: {e}"),
        )
    })?;
    // The endpoints speak HTTP/1.1 only.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

/// `RequestClientCert` / `RequireAnyClientCert`: a client certificate is asked for and the
/// client must prove it holds its key, but it is not checked against any CA (as in Go).
#[derive(Debug)]
struct AnyClientCert {
    /// `RequireAnyClientCert`.
    mandatory: bool,
    /// For the proof-of-key signature.
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The state of the files a config was loaded from (`None` for one that could not be read).
/// Comparing costs one `stat` per file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Stamp(Vec<(PathBuf, Option<FileState>)>);

/// What tells a file's versions apart without reading it: modification time and size, and on
/// Unix the inode, so a file replaced by rename (editors, config management, Kubernetes secret
/// updates) counts as changed even within the file system's timestamp granularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileState {
    modified: SystemTime,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn add(&mut self, path: &Path) {
        self.0.push((path.to_path_buf(), file_state(path)));
    }

    /// True when every file is as it was.
    fn unchanged(&self) -> bool {
        self.0
            .iter()
            .all(|(path, state)| file_state(path) == *state)
    }
}

fn file_state(path: &Path) -> Option<FileState> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some(FileState {
        modified: m.modified().ok()?,
        len: m.len(),
        inode,
    })
}

/// A successful verification: the hash it was checked against and a digest of the password.
struct Verified {
    /// The user's hash then; a new hash for the user makes the entry stale.
    hash: String,
    /// [`password_digest`] of the password, compared in constant time.
    password: [u8; 32],
}

/// The web config in force, re-read when its file (or a certificate, key or CA file it names)
/// changes, and the basic-auth check with its cache.
pub struct WebConfigWatch {
    /// The `--web.config.file`.
    path: PathBuf,
    /// The config in force.
    current: RwLock<Arc<WebConfig>>,
    /// The files of the last version that failed to load (or was refused), so it is reported
    /// once and not re-read on every connection; held while re-reading, so one caller does it.
    failed: Mutex<Option<Stamp>>,
    /// Successful verifications by user name. bcrypt is slow on purpose; without this every
    /// scrape would pay for it. Bounded by the number of configured users.
    verified: Mutex<HashMap<String, Verified>>,
    /// One bcrypt at a time, off the async threads: a flood of wrong passwords takes one core,
    /// not all of them (exporter-toolkit also serialises bcrypt).
    bcrypt: tokio::sync::Semaphore,
}

impl fmt::Debug for WebConfigWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfigWatch")
            .field("path", &self.path)
            .field("current", &*read(&self.current))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T: Clone>(l: &RwLock<T>) -> T {
    l.read().unwrap_or_else(PoisonError::into_inner).clone()
}

impl WebConfigWatch {
    /// Loads `path`; an error here is a start-up error (exit 2).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let config = WebConfig::load(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(config)),
            failed: Mutex::new(None),
            verified: Mutex::new(HashMap::new()),
            bcrypt: tokio::sync::Semaphore::new(1),
        })
    }

    /// The config in force. Costs a `stat` of each file it was loaded from; when one changed,
    /// the file is re-read and, if valid, replaces the running config (logged either way). A
    /// bad new version keeps the running one.
    pub fn current(&self) -> Arc<WebConfig> {
        let current = read(&self.current);
        if current.stamp.unchanged() {
            return current;
        }
        // One caller re-reads; the others go on with the running config meanwhile rather than
        // block an async thread.
        let mut failed = match self.failed.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return current,
        };
        // Someone else may have re-read it just before.
        let current = read(&self.current);
        if current.stamp.unchanged() || failed.as_ref().is_some_and(Stamp::unchanged) {
            return current;
        }
        let mut stamp = Stamp::default();
        match WebConfig::load_stamped(&self.path, &mut stamp) {
            Ok(new) if new.tls.is_some() != current.tls.is_some() => {
                tracing::error!(
                    file = %self.path.display(),
                    "web config changed TLS on or off; that needs a restart, keeping the running web config"
                );
                *failed = Some(stamp);
                current
            }
            Ok(new) => {
                tracing::info!(file = %self.path.display(), tls = new.tls.is_some(), users = new.users.len(), "web config reloaded");
                let new = Arc::new(new);
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = new.clone();
                *failed = None;
                new
            }
            Err(e) => {
                tracing::error!("web config reload failed, keeping the running web config: {e}");
                *failed = Some(stamp);
                current
            }
        }
    }

    /// Whether a request with this `Authorization` header value may proceed under `config`:
    /// always when no users are configured; otherwise only with `Basic` credentials of a
    /// configured user whose bcrypt hash matches the password.
    pub async fn authorize(&self, config: &WebConfig, authorization: Option<&[u8]>) -> bool {
        if config.users.is_empty() {
            return true;
        }
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return false;
        };
        let hash = config.users.get(&user);
        let against = hash.map_or(UNKNOWN_USER_HASH, String::as_str).to_string();
        let digest = password_digest(&against, &password);
        if let Some(hash) = hash {
            if let Some(v) = lock(&self.verified).get(&user) {
                if v.hash == *hash && bool::from(v.password.ct_eq(&digest)) {
                    return true;
                }
            }
        }
        let Ok(_one_at_a_time) = self.bcrypt.acquire().await else {
            return false;
        };
        let matches = tokio::task::spawn_blocking(move || {
            bcrypt::verify(&password, &against).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        match hash {
            Some(hash) if matches => {
                lock(&self.verified).insert(
                    user,
                    Verified {
                        hash: hash.clone(),
                        password: digest,
                    },
                );
                true
            }
            _ => false,
        }
    }
}

/// SHA-256 of the bcrypt hash (which holds a random salt) and the password: what the cache keeps
/// instead of the password.
fn password_digest(hash: &str, password: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(hash.as_bytes());
    h.update([0]);
    h.update(password);
    h.finalize().into()
}

/// User name and password from `Basic base64(user:password)`; `None` for anything else.
fn basic_credentials(header: &[u8]) -> Option<(String, Vec<u8>)> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WebConfig, ConfigError> {
        WebConfig::parse(text, Path::new("web.yml"), Path::new("/nonexistent"))
    }

    #[test]
    fn unknown_user_hash_is_well_formed_cost_10() {
        let parts: bcrypt::HashParts = UNKNOWN_USER_HASH.parse().unwrap();
        assert_eq!(parts.get_cost(), 10);
    }

    #[test]
    fn empty_file_enables_nothing() {
        for text in ["", "# nothing\n", "---\n", "tls_server_config: {}\n"] {
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

    #[test]
    fn basic_credentials_parsing() {
        let h = |user_pass: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(user_pass)
            )
        };
        assert_eq!(
            basic_credentials(h("alice:pa:ss").as_bytes()),
            Some(("alice".into(), b"pa:ss".to_vec()))
        );
        assert_eq!(
            basic_credentials(format!("basic  {}", &h("a:")[6..]).as_bytes()),
            Some(("a".into(), Vec::new()))
        );
        assert_eq!(basic_credentials(h("no-colon").as_bytes()), None);
        assert_eq!(basic_credentials(b"Bearer abc"), None);
        assert_eq!(basic_credentials(b"Basic !!!"), None);
        assert_eq!(basic_credentials(b"Basic"), None);
    }

    #[test]
    fn key_location_points_at_the_value() {
        let text = "a: 1\ntls_server_config:\n  cert_file:   x.pem\n  key_file:\n";
        assert_eq!(key_location(text, "cert_file"), Some((3, 16)));
        assert_eq!(key_location(text, "key_file"), Some((4, 3)));
        assert_eq!(key_location(text, "tls_server_config"), Some((2, 1)));
        assert_eq!(key_location(text, "nope"), None);
    }

    #[tokio::test]
    async fn authorize_checks_and_caches() {
        let hash = bcrypt::hash("right", 4).unwrap();
        let watch_dir = tempfile::tempdir().unwrap();
        let path = watch_dir.path().join("web.yml");
        std::fs::write(&path, format!("basic_auth_users:\n  alice: {hash}\n")).unwrap();
        let w = WebConfigWatch::load(&path).unwrap();
        let c = w.current();
        let basic = |up: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(up)
            )
        };
        assert!(!w.authorize(&c, None).await);
        assert!(!w.authorize(&c, Some(basic("alice:wrong").as_bytes())).await);
        assert!(
            !w.authorize(&c, Some(basic("mallory:right").as_bytes()))
                .await
        );
        assert!(lock(&w.verified).is_empty(), "failures are not cached");
        assert!(w.authorize(&c, Some(basic("alice:right").as_bytes())).await);
        assert_eq!(lock(&w.verified).len(), 1);
        assert!(w.authorize(&c, Some(basic("alice:right").as_bytes())).await);
        assert!(
            !w.authorize(&c, Some(basic("alice:wrong").as_bytes())).await,
            "a cached success does not let another password in"
        );
    }
}
