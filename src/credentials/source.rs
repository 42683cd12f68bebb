//! What the config says about an account's keys: the SDK chain, one server role, or an env var
//! or a file for each key.
//!
//! Owns [`CredentialSource`] and [`KeySource`], written only by `config::validate` and read by the
//! rest of `credentials`. Pure: nothing here reads the environment, a file or the network.

use std::fmt;
use std::path::PathBuf;

/// Env var the `keys` source reads the access key from when the config names none.
pub(crate) const DEFAULT_ACCESS_KEY_ENV: &str = "NCLOUD_ACCESS_KEY";
/// Env var the `keys` source reads the secret key from when the config names none.
pub(crate) const DEFAULT_SECRET_KEY_ENV: &str = "NCLOUD_SECRET_KEY";
/// Longest accepted server role name.
pub(crate) const MAX_ROLE_NAME_LEN: usize = 128;

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

/// Where both keys of a `keys` source are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPair {
    /// The access key id.
    pub access_key: KeySource,
    /// The secret key.
    pub secret_key: KeySource,
}

impl Default for KeyPair {
    fn default() -> Self {
        Self {
            access_key: KeySource::Env(DEFAULT_ACCESS_KEY_ENV.into()),
            secret_key: KeySource::Env(DEFAULT_SECRET_KEY_ENV.into()),
        }
    }
}

/// Where one account's keys come from (`credentials:` or `accounts.NAME:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// NCP's SDK order: the environment, `$HOME/.ncloud/configure`, then the server role
    /// (`server_role` names it; `None`: the first one the metadata API lists).
    Chain {
        /// The role the last step reads.
        server_role: Option<String>,
    },
    /// Only the server role of the VM, from the metadata API.
    ServerRole {
        /// The role; `None`: the first one listed.
        name: Option<String>,
    },
    /// An env var or a file for each key, as configured.
    Keys(KeyPair),
}

impl Default for CredentialSource {
    /// An account that names no source uses the chain.
    fn default() -> Self {
        CredentialSource::Chain { server_role: None }
    }
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = |name: &Option<String>| match name {
            Some(n) => format!("server role {n:?}"),
            None => "the first server role listed".to_string(),
        };
        match self {
            CredentialSource::Chain { server_role } => write!(
                f,
                "the chain (env, $HOME/.ncloud/configure, {})",
                role(server_role)
            ),
            CredentialSource::ServerRole { name } => f.write_str(&role(name)),
            CredentialSource::Keys(k) => write!(f, "{} and {}", k.access_key, k.secret_key),
        }
    }
}

/// Checks a server role name: it becomes a path segment of the metadata API's URL.
pub(crate) fn validate_role_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_ROLE_NAME_LEN {
        return Err(format!(
            "server role name must be 1 to {MAX_ROLE_NAME_LEN} characters, got {}",
            s.len()
        ));
    }
    if s == "." || s == ".." {
        return Err(format!("server role name {s:?} is not a name"));
    }
    if let Some(c) = s.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '=' | ',' | '@'))
    }) {
        return Err(format!(
            "server role name {s:?} has {c:?}; use letters, digits and - _ . + = , @"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_path_segments() {
        assert!(validate_role_name("cdss-readonly_1").is_ok());
        assert!(validate_role_name("").is_err());
        assert!(validate_role_name("a/b").unwrap_err().contains("'/'"));
        assert!(validate_role_name("a b").is_err());
        assert!(validate_role_name("..%2f").is_err());
        assert!(validate_role_name("..").is_err());
    }

    #[test]
    fn display_never_needs_a_key() {
        assert_eq!(
            CredentialSource::default().to_string(),
            "the chain (env, $HOME/.ncloud/configure, the first server role listed)"
        );
        let keys = CredentialSource::Keys(KeyPair::default());
        assert_eq!(
            keys.to_string(),
            "env var NCLOUD_ACCESS_KEY and env var NCLOUD_SECRET_KEY"
        );
    }
}
