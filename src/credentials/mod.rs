//! Where the NCP API keys come from, keeping them fresh, and who reads them.
//!
//! - [`source`]: what the config says (the SDK chain, a server role, or an env var / file per
//!   key). Written by `config::validate` only.
//! - [`env`]: what the process gives the lookup ([`Lookup`]: env vars, `$HOME`, the metadata
//!   API's address, refresh timing) and the chain's env step.
//! - [`file`]: key files and `$HOME/.ncloud/configure`, and the watcher that re-reads them when
//!   they change.
//! - [`role`]: the server role from the metadata API, and the refresher that replaces its keys
//!   before they expire (back-off on failure, one early refresh on a 401, never a loop).
//! - [`chain`]: the SDKs' order, and what it looked at when it found nothing.
//! - [`keyring`]: every account's [`AccountKeys`] (the one shared, swappable holder of its
//!   current keys, which the call path reads at call time) and the [`StatusBoard`] the
//!   exposition reads. Only the loaders, the watcher and the refresher write a holder.
//!
//! The secret key is a [`Secret`] from the moment it is read, and the access key id is never
//! printed either: `Debug` shows neither, and errors name env vars, files and addresses, never
//! a value. The metadata API is called only when the chain gets to it.

pub(crate) mod chain;
pub(crate) mod env;
pub(crate) mod file;
pub(crate) mod keyring;
pub(crate) mod role;
pub(crate) mod source;

use std::fmt;
use std::path::PathBuf;

pub use self::env::Lookup;
pub(crate) use self::keyring::AccountKeys;
pub use self::keyring::{Keyring, StatusBoard, probe};
pub(crate) use self::role::RoleError;
pub use self::source::{CredentialSource, KeySource};
pub(crate) use self::source::{DEFAULT_ACCESS_KEY_ENV, DEFAULT_SECRET_KEY_ENV, KeyPair};
use crate::secret::Secret;

/// Loaded API keys. `Debug` shows neither key.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id, sent in `x-ncp-iam-access-key`.
    pub access_key: String,
    /// The secret key; only the signer reads it.
    pub secret_key: Secret,
}

impl Credentials {
    /// The pair; the secret is a [`Secret`] from here on.
    pub(crate) fn new(access_key: String, secret_key: String) -> Self {
        let secret_key = Secret::new(secret_key);
        Self {
            access_key,
            secret_key,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials { access_key: <redacted>, secret_key: <redacted> }")
    }
}

/// Where a pair of keys was found: shown by `--config.check` and the logs, never a key byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The chain's env step, with the variables that were set.
    Env {
        /// The access key's variable.
        access: &'static str,
        /// The secret key's variable.
        secret: &'static str,
    },
    /// `$HOME/.ncloud/configure`.
    Configure(PathBuf),
    /// A configured env var or file per key.
    Keys(KeyPair),
    /// A server role, from the metadata API at `endpoint`.
    Role {
        /// The role's name.
        name: String,
        /// The metadata API.
        endpoint: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env { access, secret } => write!(f, "env {access} and {secret}"),
            Origin::Configure(path) => write!(f, "file {}", path.display()),
            Origin::Keys(pair) => write!(f, "{} and {}", pair.access_key, pair.secret_key),
            Origin::Role { name, endpoint } => {
                write!(f, "server role {name:?} (metadata API {endpoint})")
            }
        }
    }
}

impl Origin {
    /// The `source` label: `env`, `configure`, `keys` or `server_role`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Origin::Env { .. } => "env",
            Origin::Configure(_) => "configure",
            Origin::Keys(_) => "keys",
            Origin::Role { .. } => "server_role",
        }
    }

    /// The files the keys come from (watched for changes); none for env and role keys.
    pub(crate) fn files(&self) -> Vec<PathBuf> {
        match self {
            Origin::Configure(path) => vec![path.clone()],
            Origin::Keys(pair) => [&pair.access_key, &pair.secret_key]
                .into_iter()
                .filter_map(|k| match k {
                    KeySource::File(p) => Some(p.clone()),
                    KeySource::Env(_) => None,
                })
                .collect(),
            Origin::Env { .. } | Origin::Role { .. } => Vec::new(),
        }
    }
}

/// Keys that were found, with where and until when.
#[derive(Clone, Debug)]
pub(crate) struct Found {
    /// The keys.
    pub credentials: Credentials,
    /// When they stop working (role keys); `None`: they do not expire.
    pub expires: Option<std::time::SystemTime>,
    /// Where they came from.
    pub origin: Origin,
}

impl Found {
    /// `credentials` from `origin` that do not expire.
    pub(crate) fn fixed(credentials: Credentials, origin: Origin) -> Self {
        let expires = None;
        Self {
            credentials,
            expires,
            origin,
        }
    }
}

/// Keys this close to their `Expiration` are no longer used: a request signed with them could
/// reach the gateway after they expire, and be refused as a 401.
pub(crate) const EXPIRY_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

/// True when keys that expire at `expires` must no longer be used at `now` (past their
/// `Expiration`, or within [`EXPIRY_MARGIN`] of it). The one rule for handing keys out and for
/// accepting freshly fetched ones.
pub(crate) fn too_late(expires: Option<std::time::SystemTime>, now: std::time::SystemTime) -> bool {
    expires.is_some_and(|e| e <= now + EXPIRY_MARGIN)
}

/// `s` trimmed, unless that leaves nothing.
pub(crate) fn nonblank(s: &str) -> Option<String> {
    Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_string)
}

/// Runs `f` on a blocking thread (file reads and checks); a panic there is resumed here. (Only a
/// runtime that shuts down cancels it, and then the caller is cancelled with it.)
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let done = tokio::task::spawn_blocking(f).await;
    done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Keys that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A configured env var is unset or empty.
    #[error(
        "missing {what}: env var {var} is not set or empty (set it, or point credentials.{key}_file at a file)"
    )]
    EnvMissing {
        /// "access key" or "secret key".
        what: &'static str,
        /// The env var that was read.
        var: String,
        /// The config key prefix, `access_key` or `secret_key`.
        key: &'static str,
    },
    /// A file could not be read.
    #[error("missing {what}: cannot read file {path}: {source}")]
    FileUnreadable {
        /// "access key" or "secret key".
        what: &'static str,
        /// The file that was read.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is empty.
    #[error("missing {what}: file {path} is empty")]
    FileEmpty {
        /// "access key" or "secret key".
        what: &'static str,
        /// The file that was read.
        path: PathBuf,
    },
    /// The chain found no keys; what each step looked at.
    #[error("no keys found; looked at: {}", .looked_at.join("; "))]
    NotFound {
        /// One entry per step, in order.
        looked_at: Vec<String>,
    },
    /// The server role (asked for by name, not through the chain) gave no keys.
    #[error("{0}")]
    Role(#[from] RoleError),
}

/// An account whose keys could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("account {account:?}: {source}")]
pub struct AccountError {
    /// The account name from the config.
    pub account: String,
    /// What went wrong.
    pub source: CredentialsError,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_key() {
        let c = Credentials {
            access_key: "AKID-visible-nowhere".into(),
            secret_key: Secret::new("s3cr3t-value"),
        };
        let text = format!("{c:?} {:?}", Some(&c));
        assert!(!text.contains("AKID"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }
}
