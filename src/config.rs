//! YAML configuration → validated [`Config`].
//!
//! Owns the file format (every key, its default, its limits) and its errors. Errors name the file,
//! the line and column when the YAML parser knows them, and the field. Nothing here reads secrets:
//! the config only says *where* credentials are (`credentials::CredentialSource`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::credentials::{
    CredentialSource, DEFAULT_ACCESS_KEY_ENV, DEFAULT_SECRET_KEY_ENV, KeySource,
};
use crate::ncp::region::Region;

/// How often each cluster is prechecked when the config does not say.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Per-request timeout when the config does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Prechecks in flight at once, across all clusters, when the config does not say.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Largest response body read from NCP when the config does not say (1 MiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 1024 * 1024;
/// Shortest accepted interval: faster than this only spends the user's API quota.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Upper bound on `concurrency`.
pub const MAX_CONCURRENCY: usize = 1024;
/// Longest accepted cluster name (it becomes a label value and a URL path segment).
pub const MAX_NAME_LEN: usize = 128;
/// `gate.min_fresh_interval` when the config does not say.
pub const DEFAULT_MIN_FRESH_INTERVAL: Duration = Duration::from_secs(10);
/// Path of the precheck operation below a region's base path.
pub const PRECHECK_PATH: &str = "/cluster/rollingRestartPreCheck";
/// Path of the cluster list operation below a region's base path.
pub const CLUSTER_LIST_PATH: &str = "/cluster/getClusterInfoList";
/// The account that `credentials:` (or the NCLOUD_* env vars) define.
pub const DEFAULT_ACCOUNT: &str = "default";
/// How often a discovery block lists clusters when the config does not say.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(600);
/// Shortest accepted discovery refresh.
pub const MIN_REFRESH: Duration = Duration::from_secs(1);
/// Clusters per `getClusterInfoList` page when the config does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// `serverStatus` values NCP documents.
pub const KNOWN_STATUSES: [&str; 6] = [
    "creating", "changing", "running", "error", "deleting", "return",
];
/// Statuses discovery keeps when the config does not say: all but deleting and return.
pub const DEFAULT_STATUSES: [&str; 4] = ["creating", "changing", "running", "error"];

/// A validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// How often each cluster is prechecked.
    pub interval: Duration,
    /// Per-request timeout, covering connect, headers and body; always below `interval`.
    pub timeout: Duration,
    /// Prechecks in flight at once, across all clusters.
    pub concurrency: usize,
    /// Response bodies larger than this are not read (a misbehaving proxy must not eat memory).
    pub max_response_bytes: u64,
    /// Where each account's API keys come from; [`DEFAULT_ACCOUNT`] is `credentials:`.
    pub accounts: BTreeMap<String, CredentialSource>,
    /// The static clusters, in config order; names are unique. Shared (`Arc`) with the inventory,
    /// the scheduler and the state, so 10,000 clusters are held once, not once per component.
    pub clusters: Vec<Arc<Cluster>>,
    /// Discovery blocks: clusters listed through the API on a schedule.
    pub discovery: Vec<Discovery>,
    /// Settings of `GET /gate/{cluster}`.
    pub gate: GateConfig,
    /// Extra CA certificates (PEM) trusted for the gateway's TLS, besides the system's: for a
    /// TLS-intercepting proxy or a private gateway. Relative to the working directory.
    pub ca_file: Option<PathBuf>,
}

/// Settings of the readiness gate (`GET /gate/{cluster}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GateConfig {
    /// A ready result older than this no longer opens the gate ("stale"). Default: 2 × interval.
    pub max_age: Duration,
    /// `?fresh=1` calls NCP at most once per cluster within this window; callers inside it get the
    /// latest result, marked as such.
    pub min_fresh_interval: Duration,
}

/// One cluster to precheck.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// The `cluster` label; unique in the config.
    pub name: String,
    /// The `region` label, and which regional API path is used.
    pub region: Region,
    /// CDSS `serviceGroupInstanceNo` (the cluster number).
    pub service_group_instance_no: u64,
    /// Full precheck URL: gateway (default or override) + region path + operation path.
    pub precheck_url: Url,
    /// Whose API keys sign its prechecks.
    pub account: String,
    /// What discovery reported about it (`None` for static clusters).
    pub info: Option<ClusterInfo>,
}

/// What `getClusterInfoList` says about a discovered cluster, for `cdss_cluster_info`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClusterInfo {
    /// `kafkaVersion`.
    pub kafka_version: String,
    /// `serverStatus`.
    pub status: String,
    /// `vpcName`.
    pub vpc_name: String,
}

impl Cluster {
    /// True when `other` prechecks the same thing under the same labels: a change of anything
    /// here makes it a different cluster (new series); a change of `info` alone does not.
    pub fn same_target(&self, other: &Cluster) -> bool {
        self.name == other.name
            && self.region == other.region
            && self.service_group_instance_no == other.service_group_instance_no
            && self.precheck_url == other.precheck_url
            && self.account == other.account
    }
}

/// One `discovery:` block: list clusters of one region (and account) through the API.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Discovery {
    /// Region listed; discovered clusters get it as their `region` label.
    pub region: Region,
    /// Whose API keys sign the calls (and the discovered clusters' prechecks).
    pub account: String,
    /// Time between two listings.
    pub refresh: Duration,
    /// Keep only cluster names matching this.
    pub name_regex: Option<Pattern>,
    /// Drop cluster names matching this.
    pub exclude_regex: Option<Pattern>,
    /// Sent as `vpcName` (exact match, done by NCP).
    pub vpc_name: Option<String>,
    /// Keep only clusters whose `serverStatus` is one of these.
    pub statuses: Vec<String>,
    /// `pageSize` of each `getClusterInfoList` call.
    pub page_size: u32,
    /// `getClusterInfoList` URL: gateway (default or override) + region path + operation path.
    pub list_url: Url,
    /// Precheck URL for the clusters this block discovers.
    pub precheck_url: Url,
}

impl Discovery {
    /// Whether a cluster with this name, `serverStatus` and VPC passes the block's filters.
    pub fn accepts(&self, name: &str, status: &str, vpc_name: &str) -> bool {
        self.statuses.iter().any(|s| s == status)
            && self.name_regex.as_ref().is_none_or(|r| r.0.is_match(name))
            && !self
                .exclude_regex
                .as_ref()
                .is_some_and(|r| r.0.is_match(name))
            && self.vpc_name.as_ref().is_none_or(|v| v == vpc_name)
    }

    /// True when `other` lists the same clusters from the same place (only filters or refresh
    /// differ), so its last listing can stand in for this block's until it lists itself.
    pub fn same_source(&self, other: &Discovery) -> bool {
        self.region == other.region
            && self.account == other.account
            && self.list_url == other.list_url
            && self.precheck_url == other.precheck_url
    }

    /// A short label for logs: `KR/prod`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.region, self.account)
    }
}

/// A compiled regular expression that compares by its source text.
#[derive(Clone, Debug)]
pub struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}
impl Eq for Pattern {}
impl std::hash::Hash for Pattern {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_str().hash(state);
    }
}

/// A configuration error, located as precisely as the parser allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The config file (or `<inline>` for strings).
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub location: Option<(usize, usize)>,
    /// What is wrong, starting with the field path (`clusters[1].region: ...`).
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.file.display(), self.message)
            }
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl Config {
    /// Reads and validates a config file, and checks that `ca_file` holds certificates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            location: None,
            message: format!("cannot read config file: {e}"),
        })?;
        let config = Self::parse(&text, path)?;
        if let Some(ca_file) = &config.ca_file {
            crate::ncp::cdss::read_ca_file(ca_file).map_err(|e| ConfigError {
                file: path.to_path_buf(),
                location: top_level_line(&text, "ca_file"),
                message: format!("ca_file: {e}"),
            })?;
        }
        Ok(config)
    }

    /// Parses and validates YAML text; `file` is only used in error messages.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = yaml_serde::from_str(text).map_err(|e| yaml_error(file, &e))?;
        raw.validate(text, file)
    }
}

pub(crate) fn yaml_error(file: &Path, e: &yaml_serde::Error) -> ConfigError {
    let location = e.location().map(|l| (l.line(), l.column()));
    let mut message = e.to_string();
    if let Some((line, col)) = location {
        // The parser appends its own " at line L column C"; we print the location up front instead.
        for suffix in [
            format!(" at line {line} column {col}"),
            format!(" at position {}", e.location().map_or(0, |l| l.index())),
        ] {
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
    }
    if text_is_empty_document(&message) {
        message = "the file is empty; it needs at least a `clusters:` list".into();
    }
    ConfigError {
        file: file.to_path_buf(),
        location,
        message,
    }
}

fn text_is_empty_document(message: &str) -> bool {
    message.contains("EOF while parsing")
}

/// The file as written, before defaults and cross-field checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default, deserialize_with = "de_interval")]
    interval: Option<Duration>,
    #[serde(default, deserialize_with = "de_timeout")]
    timeout: Option<Duration>,
    concurrency: Option<usize>,
    max_response_bytes: Option<u64>,
    api_gateway: Option<Gateway>,
    credentials: Option<RawCredentials>,
    #[serde(default)]
    accounts: BTreeMap<AccountName, RawCredentials>,
    gate: Option<RawGate>,
    #[serde(default)]
    clusters: Clusters,
    #[serde(default)]
    discovery: Vec<RawDiscovery>,
    ca_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscovery {
    region: Region,
    account: Option<AccountName>,
    #[serde(default, deserialize_with = "de_refresh")]
    refresh: Option<Duration>,
    name_regex: Option<RegexField>,
    exclude_regex: Option<RegexField>,
    vpc_name: Option<String>,
    statuses: Option<Vec<Status>>,
    page_size: Option<u32>,
    api_gateway: Option<Gateway>,
}

/// An account name: a map key and a reference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct AccountName(String);

impl<'de> Deserialize<'de> for AccountName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "an account name", |s| {
            if s.is_empty()
                || s.len() > 64
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
            {
                return Err(format!(
                    "account name {s:?}: use 1 to 64 letters, digits, '_' and '-'"
                ));
            }
            Ok(AccountName(s.to_string()))
        })
    }
}

struct RegexField(Pattern);

impl<'de> Deserialize<'de> for RegexField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a regular expression", |s| {
            regex::Regex::new(s)
                .map(|r| RegexField(Pattern(r)))
                .map_err(|e| format!("not a valid regular expression: {e}"))
        })
    }
}

struct Status(String);

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a cluster status", |s| {
            let lower = s.trim().to_ascii_lowercase();
            if KNOWN_STATUSES.contains(&lower.as_str()) {
                Ok(Status(lower))
            } else {
                Err(format!(
                    "unknown status {s:?} (expected one of {})",
                    KNOWN_STATUSES.join(", ")
                ))
            }
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGate {
    #[serde(default, deserialize_with = "de_max_age")]
    max_age: Option<Duration>,
    #[serde(default, deserialize_with = "de_min_fresh_interval")]
    min_fresh_interval: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredentials {
    access_key_env: Option<String>,
    access_key_file: Option<PathBuf>,
    secret_key_env: Option<String>,
    secret_key_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    name: ClusterName,
    region: Region,
    service_group_instance_no: InstanceNo,
    api_gateway: Option<Gateway>,
    account: Option<AccountName>,
}

/// `api_gateway`: scheme and host (and port) only; the region path is appended to it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Gateway(String);

impl<'de> Deserialize<'de> for Gateway {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a URL like https://host:port", |s| {
            parse_gateway(s).map(Gateway)
        })
    }
}

/// Parses a string scalar with `parse`. The error is raised while the parser is still on the
/// scalar, so it carries the scalar's own line and column (an error raised after
/// `String::deserialize` returns is only located at the enclosing mapping).
pub(crate) fn parse_scalar<'de, D, T, F>(
    d: D,
    expecting: &'static str,
    parse: F,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    F: FnOnce(&str) -> Result<T, String>,
{
    struct V<F>(F, &'static str);
    impl<'de, T, F: FnOnce(&str) -> Result<T, String>> Visitor<'de> for V<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.1)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.0)(v).map_err(E::custom)
        }
    }
    d.deserialize_str(V(parse, expecting))
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a region (KR, SGN, JPN, GOV, FIN)", |s| {
            s.parse::<Region>().map_err(|e| e.to_string())
        })
    }
}

fn parse_gateway(s: &str) -> Result<String, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("api_gateway {s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("api_gateway {s:?}: scheme must be http or https"));
    }
    if url.host_str().is_none() {
        return Err(format!("api_gateway {s:?}: no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("api_gateway {s:?}: user info is not allowed"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "api_gateway {s:?}: give scheme and host only (like https://host:port); the region path /api/... is appended"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// A cluster name: it is a label value and (later) a URL path segment, so it is kept simple.
struct ClusterName(String);

impl<'de> Deserialize<'de> for ClusterName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a cluster name", |s| {
            validate_name(s)?;
            Ok(ClusterName(s.to_string()))
        })
    }
}

/// Checks a cluster name: 1 to 128 characters from `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub fn validate_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_NAME_LEN {
        return Err(format!(
            "cluster name must be 1 to {MAX_NAME_LEN} characters, got {}",
            s.len()
        ));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "cluster name {s:?} must start with a letter or digit"
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "cluster name {s:?} has {c:?}; use letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

struct InstanceNo(u64);

impl<'de> Deserialize<'de> for InstanceNo {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = InstanceNo;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive integer (the CDSS serviceGroupInstanceNo)")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<InstanceNo, E> {
                if n == 0 {
                    return Err(E::custom("must be a positive integer, got 0"));
                }
                Ok(InstanceNo(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<InstanceNo, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom(format!("must be a positive integer, got {n}")))
                    .and_then(|n| self.visit_u64(n))
            }
        }
        d.deserialize_i64(V)
    }
}

/// The cluster list; duplicate names are rejected while parsing so the error has a line number.
#[derive(Default)]
struct Clusters(Vec<RawCluster>);

impl<'de> Deserialize<'de> for Clusters {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Clusters;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of clusters")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Clusters, E> {
                Ok(Clusters::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Clusters, A::Error> {
                let mut out: Vec<RawCluster> = Vec::new();
                let mut seen = HashSet::new();
                while let Some(c) = seq.next_element::<RawCluster>()? {
                    if !seen.insert(c.name.0.clone()) {
                        return Err(de::Error::custom(format!(
                            "duplicate cluster name {:?} at clusters[{}] (names must be unique)",
                            c.name.0,
                            out.len()
                        )));
                    }
                    out.push(c);
                }
                Ok(Clusters(out))
            }
        }
        d.deserialize_any(V)
    }
}

fn de_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d, "interval")
}

fn de_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d, "timeout")
}

fn de_refresh<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d, "refresh")
}

fn de_max_age<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d, "gate.max_age")
}

fn de_min_fresh_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de_duration(d, "gate.min_fresh_interval")
}

fn de_duration<'de, D: Deserializer<'de>>(
    d: D,
    _field: &'static str,
) -> Result<Option<Duration>, D::Error> {
    parse_scalar(d, "a duration like 30s, 1m or 1h30m", |s| {
        humantime::parse_duration(s.trim())
            .map(Some)
            .map_err(|e| format!("{s:?} is not a duration like 30s, 1m or 1h30m: {e}"))
    })
}

/// Finds `key:` at the start of a line (a top-level key) for cross-field errors.
fn top_level_line(text: &str, key: &str) -> Option<(usize, usize)> {
    text.lines()
        .position(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| (i + 1, 1))
}

impl RawConfig {
    fn validate(self, text: &str, file: &Path) -> Result<Config, ConfigError> {
        let err = |key: &str, message: String| ConfigError {
            file: file.to_path_buf(),
            location: top_level_line(text, key),
            message,
        };
        let interval = self.interval.unwrap_or(DEFAULT_INTERVAL);
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if interval < MIN_INTERVAL {
            return Err(err(
                "interval",
                format!(
                    "interval: must be at least {}",
                    humantime::format_duration(MIN_INTERVAL)
                ),
            ));
        }
        if timeout.is_zero() {
            return Err(err("timeout", "timeout: must be greater than zero".into()));
        }
        if timeout >= interval {
            return Err(err(
                "timeout",
                format!(
                    "timeout: {} must be shorter than interval {}",
                    humantime::format_duration(timeout),
                    humantime::format_duration(interval)
                ),
            ));
        }
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(err(
                "concurrency",
                format!("concurrency: must be between 1 and {MAX_CONCURRENCY}, got {concurrency}"),
            ));
        }
        let max_response_bytes = self
            .max_response_bytes
            .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
        if max_response_bytes < 1024 {
            return Err(err(
                "max_response_bytes",
                format!("max_response_bytes: must be at least 1024, got {max_response_bytes}"),
            ));
        }
        let mut accounts = BTreeMap::new();
        let default = match self.credentials {
            None => CredentialSource::default(),
            Some(raw) => {
                credential_source(raw, "credentials").map_err(|m| err("credentials", m))?
            }
        };
        accounts.insert(DEFAULT_ACCOUNT.to_string(), default);
        for (name, raw) in self.accounts {
            if name.0 == DEFAULT_ACCOUNT {
                return Err(err(
                    "accounts",
                    format!(
                        "accounts.{DEFAULT_ACCOUNT}: reserved; the default account is `credentials:`"
                    ),
                ));
            }
            let source = credential_source(raw, &format!("accounts.{}", name.0))
                .map_err(|m| err("accounts", m))?;
            accounts.insert(name.0, source);
        }
        let known_accounts = || accounts.keys().cloned().collect::<Vec<_>>().join(", ");
        // `at` names the entry in an error; made only when there is one.
        let account = |a: Option<AccountName>, at: &dyn Fn() -> String| {
            let name = a.map_or_else(|| DEFAULT_ACCOUNT.to_string(), |a| a.0);
            if accounts.contains_key(&name) {
                Ok(name)
            } else {
                let at = at();
                Err(err(
                    at.split(['[', '.']).next().unwrap_or(&at),
                    format!(
                        "{at}.account: unknown account {name:?} (configured: {})",
                        known_accounts()
                    ),
                ))
            }
        };
        if self.clusters.0.is_empty() && self.discovery.is_empty() {
            return Err(err(
                "clusters",
                "clusters: at least one cluster (or a discovery block) is required".into(),
            ));
        }
        let global_gateway = self.api_gateway;
        let gateway_for = |own: Option<Gateway>, region: Region| {
            own.or_else(|| global_gateway.clone())
                .map_or_else(|| region.default_gateway().to_string(), |g| g.0)
        };
        let mut clusters = Vec::with_capacity(self.clusters.0.len());
        // Most clusters share a few gateway + region pairs: parse each URL once.
        let mut urls: HashMap<(String, Region), Url> = HashMap::new();
        for (i, c) in self.clusters.0.into_iter().enumerate() {
            let gateway = gateway_for(c.api_gateway, c.region);
            let precheck_url = match urls.get(&(gateway.clone(), c.region)) {
                Some(url) => url.clone(),
                None => {
                    let url = format!("{gateway}{}{PRECHECK_PATH}", c.region.base_path());
                    let parsed = Url::parse(&url).map_err(|e| {
                        err("clusters", format!("clusters[{i}]: bad URL {url}: {e}"))
                    })?;
                    urls.insert((gateway, c.region), parsed.clone());
                    parsed
                }
            };
            clusters.push(Arc::new(Cluster {
                account: account(c.account, &|| format!("clusters[{i}]"))?,
                name: c.name.0,
                region: c.region,
                service_group_instance_no: c.service_group_instance_no.0,
                precheck_url,
                info: None,
            }));
        }
        let mut discovery = Vec::with_capacity(self.discovery.len());
        for (i, d) in self.discovery.into_iter().enumerate() {
            let at = format!("discovery[{i}]");
            let refresh = d.refresh.unwrap_or(DEFAULT_REFRESH);
            if refresh < MIN_REFRESH {
                return Err(err(
                    "discovery",
                    format!(
                        "{at}.refresh: must be at least {}",
                        humantime::format_duration(MIN_REFRESH)
                    ),
                ));
            }
            let page_size = d.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
            let gateway = gateway_for(d.api_gateway, d.region);
            if !(1..=100).contains(&page_size) {
                return Err(err(
                    "discovery",
                    format!("{at}.page_size: must be between 1 and 100, got {page_size}"),
                ));
            }
            let block = Discovery {
                account: account(d.account, &|| at.clone())?,
                region: d.region,
                refresh,
                name_regex: d.name_regex.map(|r| r.0),
                exclude_regex: d.exclude_regex.map(|r| r.0),
                vpc_name: d.vpc_name.filter(|v| !v.is_empty()),
                statuses: d.statuses.map_or_else(
                    || DEFAULT_STATUSES.iter().map(|s| s.to_string()).collect(),
                    |v| v.into_iter().map(|s| s.0).collect(),
                ),
                page_size,
                list_url: Url::parse(&format!(
                    "{gateway}{}{CLUSTER_LIST_PATH}",
                    d.region.base_path()
                ))
                .map_err(|e| err("discovery", format!("{at}: bad URL: {e}")))?,
                precheck_url: Url::parse(&format!(
                    "{gateway}{}{PRECHECK_PATH}",
                    d.region.base_path()
                ))
                .map_err(|e| err("discovery", format!("{at}: bad URL: {e}")))?,
            };
            if discovery.contains(&block) {
                return Err(err(
                    "discovery",
                    format!("{at}: the same block appears twice"),
                ));
            }
            discovery.push(block);
        }
        let raw_gate = self.gate.unwrap_or(RawGate {
            max_age: None,
            min_fresh_interval: None,
        });
        let gate = GateConfig {
            max_age: raw_gate.max_age.unwrap_or(interval.saturating_mul(2)),
            min_fresh_interval: raw_gate
                .min_fresh_interval
                .unwrap_or(DEFAULT_MIN_FRESH_INTERVAL),
        };
        if gate.max_age < interval {
            return Err(err(
                "gate",
                format!(
                    "gate.max_age: {} is shorter than interval {}: the gate would be closed most of the time",
                    humantime::format_duration(gate.max_age),
                    humantime::format_duration(interval)
                ),
            ));
        }
        if self
            .ca_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(err("ca_file", "ca_file: must not be empty".into()));
        }
        Ok(Config {
            interval,
            timeout,
            concurrency,
            max_response_bytes,
            accounts,
            clusters,
            discovery,
            gate,
            ca_file: self.ca_file,
        })
    }
}

fn credential_source(raw: RawCredentials, at: &str) -> Result<CredentialSource, String> {
    Ok(CredentialSource {
        access_key: key_source(
            raw.access_key_env,
            raw.access_key_file,
            "access_key",
            DEFAULT_ACCESS_KEY_ENV,
        )
        .map_err(|m| m.replace("credentials", at))?,
        secret_key: key_source(
            raw.secret_key_env,
            raw.secret_key_file,
            "secret_key",
            DEFAULT_SECRET_KEY_ENV,
        )
        .map_err(|m| m.replace("credentials", at))?,
    })
}

fn key_source(
    env: Option<String>,
    file: Option<PathBuf>,
    key: &str,
    default_env: &str,
) -> Result<KeySource, String> {
    match (env, file) {
        (Some(_), Some(_)) => Err(format!(
            "credentials: set {key}_env or {key}_file, not both"
        )),
        (Some(e), None) if e.trim().is_empty() => {
            Err(format!("credentials.{key}_env: must not be empty"))
        }
        (Some(e), None) => Ok(KeySource::Env(e)),
        (None, Some(f)) => Ok(KeySource::File(f)),
        (None, None) => Ok(KeySource::Env(default_env.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.yaml"))
    }

    const MINIMAL: &str =
        "clusters:\n  - name: orders\n    region: kr\n    service_group_instance_no: 3432149\n";

    #[test]
    fn defaults_apply() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.interval, DEFAULT_INTERVAL);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(c.max_response_bytes, 1 << 20);
        assert_eq!(c.accounts[DEFAULT_ACCOUNT], CredentialSource::default());
        assert_eq!(c.clusters[0].account, DEFAULT_ACCOUNT);
        assert_eq!(c.clusters[0].region, Region::Kr);
        assert_eq!(
            c.clusters[0].precheck_url.as_str(),
            "https://clouddatastreamingservice.apigw.ntruss.com/api/v1/cluster/rollingRestartPreCheck"
        );
    }

    #[test]
    fn api_gateway_replaces_scheme_and_host_only() {
        let c = parse(
            "api_gateway: http://127.0.0.1:18080\nclusters:\n  - {name: a, region: SGN, service_group_instance_no: 1}\n  - {name: b, region: jpn, service_group_instance_no: 2, api_gateway: 'https://beta.example:8443/'}\n",
        )
        .unwrap();
        assert_eq!(
            c.clusters[0].precheck_url.as_str(),
            "http://127.0.0.1:18080/api/sgn-v1/cluster/rollingRestartPreCheck"
        );
        assert_eq!(
            c.clusters[1].precheck_url.as_str(),
            "https://beta.example:8443/api/jpn-v1/cluster/rollingRestartPreCheck"
        );
    }

    #[test]
    fn gateway_with_a_path_is_rejected_with_location() {
        let e = parse("api_gateway: http://h/api/v1\nclusters: []\n").unwrap_err();
        assert_eq!(e.location, Some((1, 14)), "{e}");
        assert!(e.message.contains("scheme and host only"), "{e}");
    }

    #[test]
    fn unknown_key_is_rejected_with_line_and_column() {
        let e = parse("interval: 30s\nintervall: 10s\nclusters: []\n").unwrap_err();
        assert_eq!(e.location.map(|l| l.0), Some(2), "{e}");
        assert!(e.message.contains("intervall"), "{e}");
        assert!(e.to_string().starts_with("test.yaml:2:"), "{e}");
    }

    #[test]
    fn unknown_cluster_key_names_the_field_path() {
        let e = parse("clusters:\n  - name: a\n    region: KR\n    service_group_instance_no: 1\n    regoin: KR\n").unwrap_err();
        assert!(e.message.contains("clusters[0]"), "{e}");
        assert!(e.message.contains("regoin"), "{e}");
        assert_eq!(e.location.map(|l| l.0), Some(5), "{e}");
    }

    #[test]
    fn bad_region_and_duration_and_number() {
        let e = parse("clusters:\n  - {name: a, region: EU, service_group_instance_no: 1}\n")
            .unwrap_err();
        assert!(
            e.message
                .contains("clusters[0].region: unknown region \"EU\""),
            "{e}"
        );
        assert_eq!(e.location, Some((2, 23)), "{e}");
        let e = parse("interval: soon\nclusters: []\n").unwrap_err();
        assert!(
            e.message
                .starts_with("interval: \"soon\" is not a duration"),
            "{e}"
        );
        assert_eq!(e.location, Some((1, 11)), "{e}");
        let e = parse("clusters:\n  - {name: a, region: KR, service_group_instance_no: -4}\n")
            .unwrap_err();
        assert!(
            e.message
                .contains("clusters[0].service_group_instance_no: must be a positive"),
            "{e}"
        );
        let e = parse("clusters:\n  - {name: 'a b', region: KR, service_group_instance_no: 4}\n")
            .unwrap_err();
        assert!(e.message.contains("clusters[0].name: cluster name"), "{e}");
    }

    #[test]
    fn duplicate_names_are_rejected_with_a_line() {
        let e = parse(
            "clusters:\n  - {name: a, region: KR, service_group_instance_no: 1}\n  - {name: a, region: SGN, service_group_instance_no: 2}\n",
        )
        .unwrap_err();
        assert!(e.message.contains("duplicate cluster name \"a\""), "{e}");
        assert!(e.location.is_some(), "{e}");
    }

    #[test]
    fn timeout_must_be_below_interval() {
        let e = parse(&format!("interval: 10s\ntimeout: 10s\n{MINIMAL}")).unwrap_err();
        assert!(e.message.starts_with("timeout:"), "{e}");
        assert_eq!(e.location, Some((2, 1)));
    }

    #[test]
    fn gate_defaults_and_limits() {
        let c = parse(&format!("interval: 30s\n{MINIMAL}")).unwrap();
        assert_eq!(c.gate.max_age, Duration::from_secs(60));
        assert_eq!(c.gate.min_fresh_interval, DEFAULT_MIN_FRESH_INTERVAL);
        let c = parse(&format!(
            "gate:\n  max_age: 5m\n  min_fresh_interval: 1s\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(c.gate.max_age, Duration::from_secs(300));
        assert_eq!(c.gate.min_fresh_interval, Duration::from_secs(1));
        let e = parse(&format!("gate:\n  max_age: 10s\n{MINIMAL}")).unwrap_err();
        assert!(e.message.starts_with("gate.max_age:"), "{e}");
        let e = parse(&format!("gate:\n  max_age: often\n{MINIMAL}")).unwrap_err();
        assert_eq!(e.location, Some((2, 12)), "{e}");
    }

    #[test]
    fn credentials_env_or_file_not_both() {
        let c = parse(&format!(
            "credentials:\n  access_key_file: /run/ak\n  secret_key_env: SK\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(
            c.accounts[DEFAULT_ACCOUNT].access_key,
            KeySource::File("/run/ak".into())
        );
        assert_eq!(
            c.accounts[DEFAULT_ACCOUNT].secret_key,
            KeySource::Env("SK".into())
        );
        let e = parse(&format!(
            "credentials:\n  access_key_file: /a\n  access_key_env: A\n{MINIMAL}"
        ))
        .unwrap_err();
        assert!(e.message.contains("not both"), "{e}");
    }

    #[test]
    fn empty_and_clusterless_configs_are_errors() {
        assert!(parse("").unwrap_err().message.contains("clusters"));
        assert!(
            parse("interval: 1m\n")
                .unwrap_err()
                .message
                .contains("at least one cluster")
        );
        assert!(parse("concurrency: 0\n").is_err());
    }

    #[test]
    fn example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml");
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.clusters.len() >= 2);
    }

    #[test]
    fn accounts_and_discovery() {
        let c = parse(
            "accounts:\n  prod: {access_key_env: P_AK, secret_key_file: /p/sk}\nclusters:\n  - {name: a, region: KR, service_group_instance_no: 1, account: prod}\ndiscovery:\n  - {region: sgn, account: prod, refresh: 5m, name_regex: '^o', statuses: [Running], page_size: 7}\n",
        )
        .unwrap();
        assert_eq!(c.accounts.len(), 2);
        assert_eq!(c.accounts["prod"].access_key, KeySource::Env("P_AK".into()));
        assert_eq!(c.clusters[0].account, "prod");
        let d = &c.discovery[0];
        assert_eq!(
            (d.region, d.account.as_str(), d.refresh, d.page_size),
            (Region::Sgn, "prod", Duration::from_secs(300), 7)
        );
        assert_eq!(d.statuses, ["running"]);
        assert_eq!(
            d.list_url.as_str(),
            "https://clouddatastreamingservice.apigw.ntruss.com/api/sgn-v1/cluster/getClusterInfoList"
        );
        assert!(d.accepts("orders", "running", "any"));
        assert!(!d.accepts("orders", "error", "any"));

        // Discovery alone is enough; default statuses leave out deleting and return.
        let c = parse("discovery:\n  - region: KR\n").unwrap();
        assert!(c.clusters.is_empty());
        assert_eq!(c.discovery[0].statuses, DEFAULT_STATUSES);
    }

    #[test]
    fn account_and_discovery_errors() {
        let e = parse(
            "clusters:\n  - {name: a, region: KR, service_group_instance_no: 1, account: nope}\n",
        )
        .unwrap_err();
        assert!(
            e.message
                .contains("clusters[0].account: unknown account \"nope\" (configured: default)"),
            "{e}"
        );
        let e = parse("accounts:\n  default: {access_key_env: A}\ndiscovery:\n  - region: KR\n")
            .unwrap_err();
        assert!(e.message.contains("reserved"), "{e}");
        let e = parse("discovery:\n  - region: KR\n    name_regex: '(unclosed'\n").unwrap_err();
        assert_eq!(e.location.map(|l| l.0), Some(3), "{e}");
        assert!(e.message.contains("discovery[0].name_regex"), "{e}");
        let e = parse("discovery:\n  - region: KR\n    statuses: [runing]\n").unwrap_err();
        assert!(e.message.contains("unknown status \"runing\""), "{e}");
        let e = parse("discovery:\n  - region: KR\n    page_size: 0\n").unwrap_err();
        assert!(e.message.contains("page_size"), "{e}");
        let e = parse("discovery:\n  - region: KR\n    refresh: 10ms\n").unwrap_err();
        assert!(e.message.contains("refresh"), "{e}");
        let e = parse("accounts:\n  'bad name': {access_key_env: A}\ndiscovery:\n  - region: KR\n")
            .unwrap_err();
        assert!(e.message.contains("account name"), "{e}");
    }
}
