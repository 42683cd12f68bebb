//! What the process gives the key lookup: its environment, `$HOME`, the metadata API's address,
//! and how often key files are checked ([`Lookup`]); and the chain's first step, the NCP env vars.
//!
//! [`Lookup::from_process`] is the one place the process environment is read for keys (the
//! binary's `app::main` uses it); tests pass their own variables, home and metadata address
//! ([`Lookup::from_map`]), and a lookup that was given no metadata address has no role step at
//! all, so a test that forgets one can never reach the real metadata API. Owned here, read by
//! the rest of `credentials`; nothing else changes it.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Credentials, Found, Origin, nonblank};

/// Access key env vars the chain reads, in the SDKs' order.
pub(crate) const ACCESS_KEY_ENVS: [&str; 2] = ["NCLOUD_ACCESS_KEY_ID", "NCLOUD_ACCESS_KEY"];
/// Secret key env vars the chain reads, in the Go SDK's order.
pub(crate) const SECRET_KEY_ENVS: [&str; 2] = ["NCLOUD_SECRET_ACCESS_KEY", "NCLOUD_SECRET_KEY"];
/// Env var that replaces the metadata API's address (as in NCP's Go and Java SDKs).
pub(crate) const METADATA_ENDPOINT_ENV: &str = "NCLOUD_METADATA_API_ENDPOINT";
/// The Python SDK's spelling of [`METADATA_ENDPOINT_ENV`], read when that one is not set, so a
/// server set up for NCP's Python tools points the exporter at the same address.
pub(crate) const METADATA_ENDPOINT_ENV_PYTHON: &str = "NCLOUD_METADATA_ENDPOINT";
/// The metadata API of an NCP server.
pub(crate) const DEFAULT_METADATA_ENDPOINT: &str = "http://169.254.169.254";
/// How often key files and the configure file are checked for changes.
pub(crate) const DEFAULT_WATCH_EVERY: Duration = Duration::from_secs(5);

/// Reads an env var (the process's, or a test's map). `Debug` shows no value.
#[derive(Clone)]
struct Vars(Arc<VarFn>);

type VarFn = dyn Fn(&str) -> Option<String> + Send + Sync;

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vars(..)")
    }
}

/// Where and how keys are looked up.
#[derive(Clone, Debug)]
pub struct Lookup {
    /// The environment it reads.
    vars: Vars,
    /// `$HOME`, for `.ncloud/configure`; `None`: that step is skipped.
    pub home: Option<PathBuf>,
    /// Scheme, host and port of the metadata API (redirects are never followed); `None`: this
    /// lookup has no metadata API, and the role step finds nothing.
    pub metadata_endpoint: Option<String>,
    /// How often watched key files are checked for a change.
    pub watch_every: Duration,
}

impl Lookup {
    /// The process's environment, `$HOME`, and `NCLOUD_METADATA_API_ENDPOINT` (else the Python
    /// SDK's `NCLOUD_METADATA_ENDPOINT`; default: the server's own metadata API,
    /// [`DEFAULT_METADATA_ENDPOINT`]).
    pub(crate) fn from_process() -> Self {
        Self::with_vars(
            Vars(Arc::new(|name| std::env::var(name).ok())),
            Some(DEFAULT_METADATA_ENDPOINT),
        )
    }

    /// Only these variables (`HOME` and `NCLOUD_METADATA_API_ENDPOINT` among them), for tests
    /// and embedders. Without `NCLOUD_METADATA_API_ENDPOINT` there is no metadata API.
    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self::with_vars(Vars(Arc::new(move |name| vars.get(name).cloned())), None)
    }

    /// No variables, no home, no metadata API: only configured key files work.
    pub fn isolated() -> Self {
        Self::from_map(HashMap::new())
    }

    fn with_vars(vars: Vars, default_endpoint: Option<&str>) -> Self {
        let var = |name| (vars.0)(name);
        let home = var("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        let metadata_endpoint = [METADATA_ENDPOINT_ENV, METADATA_ENDPOINT_ENV_PYTHON]
            .into_iter()
            .find_map(|name| nonblank(var(name)?.trim().trim_end_matches('/')))
            .or_else(|| default_endpoint.map(str::to_string));
        Self {
            vars,
            home,
            metadata_endpoint,
            watch_every: DEFAULT_WATCH_EVERY,
        }
    }

    /// An env var's value, trimmed; `None` when unset or empty.
    pub(crate) fn var(&self, name: &str) -> Option<String> {
        (self.vars.0)(name).as_deref().and_then(nonblank)
    }

    /// The first of `names` that is set, with its name.
    fn first_of(&self, names: &[&'static str]) -> Option<(&'static str, String)> {
        names.iter().find_map(|n| self.var(n).map(|v| (*n, v)))
    }
}

/// The chain's first step. `Err` says what was looked at, for the "not found" message.
pub(super) fn from_env(lookup: &Lookup) -> Result<Found, String> {
    match (
        lookup.first_of(&ACCESS_KEY_ENVS),
        lookup.first_of(&SECRET_KEY_ENVS),
    ) {
        (Some((access, access_key)), Some((secret, secret_key))) => {
            let credentials = Credentials::new(access_key, secret_key);
            Ok(Found::fixed(credentials, Origin::Env { access, secret }))
        }
        (access, secret) => {
            let state = |v: Option<_>| if v.is_some() { "set" } else { "not set" };
            Err(format!(
                "env {} ({}), {} ({})",
                ACCESS_KEY_ENVS.join(" / "),
                state(access),
                SECRET_KEY_ENVS.join(" / "),
                state(secret),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> Lookup {
        Lookup::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn id_spelling_wins_and_both_spellings_work() {
        let l = lookup(&[
            ("NCLOUD_ACCESS_KEY_ID", "AK-ID"),
            ("NCLOUD_ACCESS_KEY", "AK-OLD"),
            ("NCLOUD_SECRET_KEY", "sk-old"),
        ]);
        let found = from_env(&l).unwrap();
        assert_eq!(found.credentials.access_key, "AK-ID");
        assert_eq!(found.credentials.secret_key.expose(), "sk-old");
        assert_eq!(
            found.origin.to_string(),
            "env NCLOUD_ACCESS_KEY_ID and NCLOUD_SECRET_KEY"
        );
    }

    #[test]
    fn half_a_pair_is_not_found_and_says_what_was_set() {
        let err = from_env(&lookup(&[("NCLOUD_ACCESS_KEY", "AK")])).unwrap_err();
        assert!(
            err.contains("NCLOUD_ACCESS_KEY_ID / NCLOUD_ACCESS_KEY (set)"),
            "{err}"
        );
        assert!(err.contains("NCLOUD_SECRET_KEY (not set)"), "{err}");
        assert!(!err.contains("AK,"), "{err}");
    }

    #[test]
    fn metadata_endpoint_and_home_come_from_the_variables() {
        let l = lookup(&[]);
        assert_eq!(l.metadata_endpoint, None, "a test map without one has none");
        assert_eq!(l.home, None);
        assert!(
            Lookup::from_process().metadata_endpoint.is_some(),
            "the process always has one"
        );
        let l = lookup(&[
            (METADATA_ENDPOINT_ENV, "http://127.0.0.1:9/"),
            ("HOME", "/h"),
        ]);
        assert_eq!(l.metadata_endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(l.home, Some(PathBuf::from("/h")));
    }

    #[test]
    fn the_python_sdk_spelling_is_read_when_the_go_one_is_not_set() {
        let python = lookup(&[(METADATA_ENDPOINT_ENV_PYTHON, " http://127.0.0.1:8/ ")]);
        assert_eq!(
            python.metadata_endpoint.as_deref(),
            Some("http://127.0.0.1:8")
        );
        let both = lookup(&[
            (METADATA_ENDPOINT_ENV, "http://127.0.0.1:9"),
            (METADATA_ENDPOINT_ENV_PYTHON, "http://127.0.0.1:8"),
        ]);
        assert_eq!(
            both.metadata_endpoint.as_deref(),
            Some("http://127.0.0.1:9"),
            "the Go and Java SDKs' spelling wins"
        );
        let empty_go = lookup(&[
            (METADATA_ENDPOINT_ENV, " "),
            (METADATA_ENDPOINT_ENV_PYTHON, "http://127.0.0.1:8"),
        ]);
        assert_eq!(
            empty_go.metadata_endpoint.as_deref(),
            Some("http://127.0.0.1:8"),
            "an empty value is not set"
        );
    }
}
