//! The config file as written: serde types with every key, before defaults and cross-field
//! checks. Each scalar is checked while it is parsed (names, regions, URLs, durations, numbers),
//! so its error carries its own line and column. `validate` turns these into a `Config`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::yaml::{FileName, parse_scalar, scalar};
use super::{DiagnosisConfig, FreshBudget, Pattern};
use crate::credentials::source::validate_role_name;
use crate::model::{validate_account, validate_name};
use crate::ncp::region::Region;

/// `serverStatus` values NCP documents.
pub(crate) const KNOWN_STATUSES: [&str; 6] = [
    "creating", "changing", "running", "error", "deleting", "return",
];

/// The whole file.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(deserialize_with = "duration")]
    pub interval: Option<Duration>,
    #[serde(deserialize_with = "duration")]
    pub timeout: Option<Duration>,
    pub concurrency: Option<usize>,
    pub max_response_bytes: Option<u64>,
    pub api_gateway: Option<Gateway>,
    pub credentials: Option<RawCredentials>,
    pub accounts: BTreeMap<AccountName, RawCredentials>,
    pub gate: Option<RawGate>,
    pub diagnosis: Option<DiagnosisConfig>,
    pub clusters: Clusters,
    pub discovery: Vec<RawDiscovery>,
    pub ca_file: Option<FileName>,
}

/// One `discovery:` block.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDiscovery {
    pub region: Region,
    pub account: Option<AccountName>,
    #[serde(default, deserialize_with = "duration")]
    pub refresh: Option<Duration>,
    pub name_regex: Option<Pattern>,
    pub exclude_regex: Option<Pattern>,
    pub vpc_name: Option<String>,
    pub statuses: Option<Vec<Status>>,
    pub page_size: Option<u32>,
    pub api_gateway: Option<Gateway>,
}

/// `gate:`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGate {
    #[serde(default, deserialize_with = "duration")]
    pub max_age: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub min_fresh_interval: Option<Duration>,
    pub fresh_budget: Option<FreshBudget>,
}

/// `credentials:` or one `accounts.NAME:`.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCredentials {
    pub source: Option<SourceKind>,
    pub server_role: Option<RoleName>,
    pub access_key_env: Option<String>,
    pub access_key_file: Option<PathBuf>,
    pub secret_key_env: Option<String>,
    pub secret_key_file: Option<PathBuf>,
}

/// One static cluster.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCluster {
    pub name: ClusterName,
    pub region: Region,
    pub service_group_instance_no: InstanceNo,
    pub api_gateway: Option<Gateway>,
    pub account: Option<AccountName>,
}

/// `credentials.source`: where an account's keys come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SourceKind {
    /// NCP's SDK order: env, `$HOME/.ncloud/configure`, server role.
    Chain,
    /// Only the server role.
    ServerRole,
    /// The `*_env` / `*_file` keys.
    Keys,
}

scalar!(
    SourceKind,
    "chain, server_role or keys",
    |s| match s.trim() {
        "chain" => Ok(SourceKind::Chain),
        "server_role" => Ok(SourceKind::ServerRole),
        "keys" => Ok(SourceKind::Keys),
        other => Err(format!(
            "unknown credentials source {other:?} (expected chain, server_role or keys)"
        )),
    }
);

/// A server role name, checked by the rule in `credentials::source`.
pub(super) struct RoleName(pub String);

scalar!(RoleName, "a server role name", |s| {
    validate_role_name(s.trim())?;
    Ok(RoleName(s.trim().to_string()))
});

/// An account name: a map key and a reference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct AccountName(pub String);

scalar!(AccountName, "an account name", |s| validate_account(s)
    .map(|()| AccountName(s.into())));

// A regular expression, compiled while parsing.
scalar!(Pattern, "a regular expression", |s| {
    regex::Regex::new(s)
        .map(Pattern)
        .map_err(|e| format!("not a valid regular expression: {e}"))
});

/// A `serverStatus` from [`KNOWN_STATUSES`], any case in, lower case out.
pub(super) struct Status(pub String);

scalar!(Status, "a cluster status", |s| {
    let lower = s.trim().to_ascii_lowercase();
    if KNOWN_STATUSES.contains(&lower.as_str()) {
        return Ok(Status(lower));
    }
    Err(format!(
        "unknown status {s:?} (expected one of {})",
        KNOWN_STATUSES.join(", ")
    ))
});

/// `api_gateway`: scheme and host (and port) only; the region path is appended to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Gateway(pub String);

scalar!(Gateway, "a URL like https://host:port", parse_gateway);

pub(super) fn parse_gateway(s: &str) -> Result<Gateway, String> {
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
    Ok(Gateway(url.origin().ascii_serialization()))
}

scalar!(Region, "a region (KR, SGN, JPN, GOV, KRS, FIN)", |s| s
    .parse::<Region>()
    .map_err(|e| e.to_string()));

/// A cluster name, checked by the name rule in `model`.
pub(super) struct ClusterName(pub String);

scalar!(ClusterName, "a cluster name", |s| validate_name(s)
    .map(|()| ClusterName(s.into())));

/// A positive `serviceGroupInstanceNo`.
pub(super) struct InstanceNo(pub u64);

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
pub(super) struct Clusters(pub Vec<RawCluster>);

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

/// A humantime duration (`30s`, `1m`, `1h30m`).
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    parse_scalar(d, "a duration like 30s, 1m or 1h30m", |s| {
        humantime::parse_duration(s.trim())
            .map(Some)
            .map_err(|e| format!("{s:?} is not a duration like 30s, 1m or 1h30m: {e}"))
    })
}
