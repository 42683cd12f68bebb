//! Where the NCP API keys come from, and loading them.
//!
//! Owns `CredentialSource` (what the config says: an env var or a file for each key),
//! `Credentials` (the loaded keys) and `Keyring` (loaded keys per account). The secret key is held as a [`Secret`] from the moment it is
//! read. Errors name the env vars and files that were tried, never their contents.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::secret::Secret;

/// Env var NCP's own tools read the access key from.
pub const DEFAULT_ACCESS_KEY_ENV: &str = "NCLOUD_ACCESS_KEY";
/// Env var NCP's own tools read the secret key from.
pub const DEFAULT_SECRET_KEY_ENV: &str = "NCLOUD_SECRET_KEY";

/// Where one key is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// An environment variable, by name.
    Env(String),
    /// A file (for example a mounted Kubernetes secret); surrounding white space is trimmed.
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env(name) => write!(f, "env var {name}"),
            KeySource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// Where both keys are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialSource {
    /// The access key id.
    pub access_key: KeySource,
    /// The secret key.
    pub secret_key: KeySource,
}

impl Default for CredentialSource {
    fn default() -> Self {
        Self {
            access_key: KeySource::Env(DEFAULT_ACCESS_KEY_ENV.into()),
            secret_key: KeySource::Env(DEFAULT_SECRET_KEY_ENV.into()),
        }
    }
}

/// Loaded API keys. `Debug` shows the access key id but never the secret.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The access key id, sent in `x-ncp-iam-access-key`.
    pub access_key: String,
    /// The secret key; only the signer reads it.
    pub secret_key: Secret,
}

/// A key that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The env var is unset or empty.
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
    /// The file could not be read.
    #[error("missing {what}: cannot read file {path}: {source}")]
    FileUnreadable {
        /// "access key" or "secret key".
        what: &'static str,
        /// The file that was read.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("missing {what}: file {path} is empty")]
    FileEmpty {
        /// "access key" or "secret key".
        what: &'static str,
        /// The file that was read.
        path: PathBuf,
    },
}

impl Credentials {
    /// Loads both keys from the process environment or files.
    pub fn resolve(source: &CredentialSource) -> Result<Self, CredentialsError> {
        Self::resolve_with(source, |name| std::env::var(name).ok())
    }

    /// Loads both keys, reading env vars through `env` (tests pass a map instead of the process env).
    pub fn resolve_with(
        source: &CredentialSource,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CredentialsError> {
        let access_key = load("access key", "access_key", &source.access_key, &env)?;
        let secret_key = load("secret key", "secret_key", &source.secret_key, &env)?;
        Ok(Self {
            access_key,
            secret_key: Secret::new(secret_key),
        })
    }
}

/// Loaded keys for every account, by account name.
#[derive(Clone, Debug, Default)]
pub struct Keyring(pub BTreeMap<String, Credentials>);

/// An account whose keys could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("account {account:?}: {source}")]
pub struct AccountError {
    /// The account name from the config.
    pub account: String,
    /// What went wrong.
    pub source: CredentialsError,
}

impl Keyring {
    /// Loads every account's keys from the process environment or files.
    pub fn resolve(accounts: &BTreeMap<String, CredentialSource>) -> Result<Self, AccountError> {
        accounts
            .iter()
            .map(|(name, source)| {
                Credentials::resolve(source)
                    .map(|c| (name.clone(), c))
                    .map_err(|source| AccountError {
                        account: name.clone(),
                        source,
                    })
            })
            .collect::<Result<_, _>>()
            .map(Keyring)
    }
}

impl From<Credentials> for Keyring {
    /// A keyring with one account, the default one.
    fn from(c: Credentials) -> Self {
        Keyring(BTreeMap::from([(
            crate::model::DEFAULT_ACCOUNT.to_string(),
            c,
        )]))
    }
}

fn load(
    what: &'static str,
    key: &'static str,
    source: &KeySource,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String, CredentialsError> {
    match source {
        KeySource::Env(var) => env(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| CredentialsError::EnvMissing {
                what,
                var: var.clone(),
                key,
            }),
        KeySource::File(path) => {
            if key == "secret_key" {
                warn_if_readable_by_others(path);
            }
            read_key_file(what, path)
        }
    }
}

/// Logs a warning when a secret file can be read by users other than its owner and group.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o004 != 0 {
                tracing::warn!(
                    file = %path.display(),
                    mode = %format!("{mode:o}"),
                    "the secret key file is readable by other users; restrict it (chmod 600)"
                );
            }
        }
    }
}

fn read_key_file(what: &'static str, path: &Path) -> Result<String, CredentialsError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| CredentialsError::FileUnreadable {
            what,
            path: path.to_path_buf(),
            source,
        })?;
    let value = text.trim();
    if value.is_empty() {
        return Err(CredentialsError::FileEmpty {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_source_names_the_variable_when_missing() {
        let err = Credentials::resolve_with(&CredentialSource::default(), |_| None).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("NCLOUD_ACCESS_KEY"), "{msg}");
        let err = Credentials::resolve_with(&CredentialSource::default(), |n| {
            (n == DEFAULT_ACCESS_KEY_ENV).then(|| "AK".to_string())
        })
        .unwrap_err();
        assert!(err.to_string().contains("NCLOUD_SECRET_KEY"));
    }

    #[test]
    fn files_are_trimmed_and_secret_is_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let ak = dir.path().join("ak");
        let sk = dir.path().join("sk");
        std::fs::write(&ak, "AKID\n").unwrap();
        std::fs::write(&sk, "  s3cr3t-value\n").unwrap();
        let src = CredentialSource {
            access_key: KeySource::File(ak),
            secret_key: KeySource::File(sk.clone()),
        };
        let c = Credentials::resolve_with(&src, |_| None).unwrap();
        assert_eq!(c.access_key, "AKID");
        assert_eq!(c.secret_key.expose(), "s3cr3t-value");
        assert!(!format!("{c:?}").contains("s3cr3t"));

        std::fs::write(&sk, "\n").unwrap();
        let err = Credentials::resolve_with(&src, |_| None).unwrap_err();
        assert!(err.to_string().contains(&sk.display().to_string()));
        let missing = CredentialSource {
            access_key: KeySource::File(dir.path().join("nope")),
            secret_key: KeySource::Env("X".into()),
        };
        assert!(
            Credentials::resolve_with(&missing, |_| None)
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
    }
}
