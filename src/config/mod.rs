//! The exporter's YAML configuration → a validated [`Config`].
//!
//! Owns the file format (every key, its default, its limits) and its errors: [`raw`] is the file
//! as written, [`validate`] turns it into a `Config` one section at a time, [`yaml`] locates
//! problems (file, line, column, field; shared with the web config). Nothing here reads secrets:
//! the config only says *where* credentials are (`credentials::CredentialSource`). Loading reads
//! the file, `NCLOUD_API_GW` (the gateway when the file sets no `api_gateway`, as NCP's tools
//! honour it) and checks that `ca_file` holds certificates; parsing is pure.

mod raw;
mod validate;
pub(crate) mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub(crate) use self::yaml::ConfigError;
use crate::credentials::CredentialSource;
use crate::model::Cluster;
use crate::ncp::region::{Endpoint, Region};

/// Env var NCP's SDKs and Terraform provider read the API gateway from; used when the config
/// sets no `api_gateway` (the region's path is still appended).
pub(crate) const API_GW_ENV: &str = "NCLOUD_API_GW";
/// How often each cluster is prechecked when the config does not say.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Per-request timeout when the config does not say.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Prechecks in flight at once, across all clusters, when the config does not say.
pub(crate) const DEFAULT_CONCURRENCY: usize = 4;
/// Largest response body read from NCP when the config does not say (1 MiB).
pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: u64 = 1024 * 1024;
/// Shortest accepted interval: faster than this only spends the user's API quota.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Upper bound on `concurrency`.
pub(crate) const MAX_CONCURRENCY: usize = 1024;
/// `gate.min_fresh_interval` when the config does not say.
pub(crate) const DEFAULT_MIN_FRESH_INTERVAL: Duration = Duration::from_secs(10);
/// How often a discovery block lists clusters when the config does not say.
pub(crate) const DEFAULT_REFRESH: Duration = Duration::from_secs(600);
/// Shortest accepted discovery refresh.
pub(crate) const MIN_REFRESH: Duration = Duration::from_secs(1);
/// Clusters per `getClusterInfoList` page when the config does not say.
pub(crate) const DEFAULT_PAGE_SIZE: u32 = 20;
/// Statuses discovery keeps when the config does not say: all but deleting and return.
pub(crate) const DEFAULT_STATUSES: [&str; 4] = ["creating", "changing", "running", "error"];

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
    /// When `getClusterStatus` is read.
    pub diagnosis: DiagnosisConfig,
    /// Extra CA certificates (PEM) trusted for the gateway's TLS, besides the system's: for a
    /// TLS-intercepting proxy or a private gateway. Relative to the working directory.
    pub ca_file: Option<PathBuf>,
}

/// `diagnosis:`: when `getClusterStatus` says why a cluster is not ready (read as written).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiagnosisConfig {
    /// Read it after every precheck that got an answer, for node-level dashboards; by default
    /// only after one that says no (at most once per interval per cluster either way).
    pub every_round: bool,
}

/// Settings of the readiness gate (`GET /gate/{cluster}`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GateConfig {
    /// A ready result older than this no longer opens the gate ("stale"). Default: 2 × interval.
    pub max_age: Duration,
    /// `?fresh=1` calls NCP at most once per cluster within this window; callers inside it get the
    /// latest result, marked as such.
    pub min_fresh_interval: Duration,
    /// All `?fresh=1` calls together, across clusters, draw from this budget; over it, callers
    /// get the latest result, marked as such, with a retry hint.
    pub fresh_budget: FreshBudget,
}

/// A token bucket for the gate's fresh prechecks: `burst` at once, refilled at `per_second`
/// (`gate.fresh_budget`, read as written; `validate` checks the limits).
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FreshBudget {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens held (and so fresh prechecks at once).
    pub burst: u32,
}

impl Default for FreshBudget {
    /// `gate.fresh_budget` when the config does not say: 1 per second, a burst of 10.
    fn default() -> Self {
        let (per_second, burst) = (1.0, 10);
        Self { per_second, burst }
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
    /// The regional API it lists through (and its clusters are prechecked through).
    pub endpoint: Arc<Endpoint>,
}

impl Discovery {
    /// Whether a cluster with this name, `serverStatus` and VPC passes the block's filters.
    pub(crate) fn accepts(&self, name: &str, status: &str, vpc_name: &str) -> bool {
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
    pub(crate) fn same_source(&self, other: &Discovery) -> bool {
        self.region == other.region
            && self.account == other.account
            && self.endpoint == other.endpoint
    }

    /// A short label for logs: `KR/prod`.
    pub(crate) fn label(&self) -> String {
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

impl Config {
    /// Reads and validates a config file (with `NCLOUD_API_GW` from the process environment),
    /// and checks that `ca_file` holds certificates.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, None, format!("cannot read config file: {e}")))?;
        let env_gateway = std::env::var(API_GW_ENV).ok();
        let config = Self::parse_with(&text, path, env_gateway.as_deref())?;
        if let Some(ca_file) = &config.ca_file {
            crate::ca_file::read(ca_file).map_err(|e| {
                let location = yaml::top_level_line(&text, "ca_file");
                ConfigError::new(path, location, format!("ca_file: {e}"))
            })?;
        }
        Ok(config)
    }

    /// Parses and validates YAML text; `file` is only used in error messages.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        Self::parse_with(text, file, None)
    }

    /// `parse`, with `env_gateway` (`NCLOUD_API_GW`) as the gateway where the file sets none.
    pub(crate) fn parse_with(
        text: &str,
        file: &Path,
        env_gateway: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig =
            yaml_serde::from_str(text).map_err(|e| yaml::yaml_error(file, &e))?;
        validate::config(raw, text, file, env_gateway)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::{KeyPair, KeySource};
    use crate::model::DEFAULT_ACCOUNT;

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
            c.clusters[0].endpoint.precheck.as_str(),
            "https://clouddatastreamingservice.apigw.ntruss.com/api/v1/cluster/rollingRestartPreCheck"
        );
    }

    #[test]
    fn diagnosis_every_round_is_read_and_typos_are_refused() {
        assert!(!parse(MINIMAL).unwrap().diagnosis.every_round);
        let on = format!("diagnosis: {{every_round: true}}\n{MINIMAL}");
        assert!(parse(&on).unwrap().diagnosis.every_round);
        let typo = format!("diagnosis: {{every_rounds: true}}\n{MINIMAL}");
        let e = parse(&typo).unwrap_err().to_string();
        assert!(e.contains("every_rounds"), "{e}");
        let not_bool = format!("diagnosis: {{every_round: often}}\n{MINIMAL}");
        assert!(parse(&not_bool).is_err());
    }

    #[test]
    fn api_gateway_replaces_scheme_and_host_only() {
        let c = parse(
            "api_gateway: http://127.0.0.1:18080\nclusters:\n  - {name: a, region: SGN, service_group_instance_no: 1}\n  - {name: b, region: jpn, service_group_instance_no: 2, api_gateway: 'https://beta.example:8443/'}\n",
        )
        .unwrap();
        assert_eq!(
            c.clusters[0].endpoint.precheck.as_str(),
            "http://127.0.0.1:18080/api/sgn-v1/cluster/rollingRestartPreCheck"
        );
        assert_eq!(
            c.clusters[1].endpoint.precheck.as_str(),
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
    fn empty_ca_file_is_refused_where_written() {
        let e = parse(&format!("ca_file: ''\n{MINIMAL}")).unwrap_err();
        assert_eq!(e.message, "ca_file: must not be empty", "{e}");
        assert_eq!(e.location.map(|l| l.0), Some(1), "{e}");
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
            c.accounts[DEFAULT_ACCOUNT],
            CredentialSource::Keys(KeyPair {
                access_key: KeySource::File("/run/ak".into()),
                secret_key: KeySource::Env("SK".into()),
            })
        );
        let e = parse(&format!(
            "credentials:\n  access_key_file: /a\n  access_key_env: A\n{MINIMAL}"
        ))
        .unwrap_err();
        assert!(e.message.contains("not both"), "{e}");
    }

    #[test]
    fn credential_sources_chain_role_and_keys() {
        let source = |yaml: &str| {
            parse(&format!("{yaml}{MINIMAL}")).map(|c| c.accounts[DEFAULT_ACCOUNT].clone())
        };
        assert_eq!(source("").unwrap(), CredentialSource::default());
        assert_eq!(
            source("credentials: {source: chain, server_role: cdss-reader}\n").unwrap(),
            CredentialSource::Chain {
                server_role: Some("cdss-reader".into())
            }
        );
        assert_eq!(
            source("credentials: {server_role: cdss-reader}\n").unwrap(),
            CredentialSource::ServerRole {
                name: Some("cdss-reader".into())
            }
        );
        assert_eq!(
            source("credentials: {source: server_role}\n").unwrap(),
            CredentialSource::ServerRole { name: None }
        );
        assert_eq!(
            source("credentials: {source: keys}\n").unwrap(),
            CredentialSource::Keys(KeyPair::default())
        );
        let e = source("credentials:\n  source: chain\n  access_key_env: A\n").unwrap_err();
        assert!(
            e.message.starts_with("credentials.source: chain finds"),
            "{e}"
        );
        assert_eq!(e.location.map(|l| l.0), Some(1), "{e}");
        let e = source("credentials:\n  source: keys\n  server_role: r\n").unwrap_err();
        assert!(e.message.contains("credentials.server_role"), "{e}");
        let e = source("credentials:\n  source: sdk\n").unwrap_err();
        assert_eq!(e.location, Some((2, 11)), "{e}");
        assert!(
            e.message.contains("unknown credentials source \"sdk\""),
            "{e}"
        );
        let e = source("credentials:\n  server_role: 'a/b'\n").unwrap_err();
        assert_eq!(e.location.map(|l| l.0), Some(2), "{e}");
        let e = parse(&format!(
            "accounts:\n  prod: {{source: server_role, access_key_file: /x}}\n{MINIMAL}"
        ))
        .unwrap_err();
        assert!(
            e.message
                .starts_with("accounts.prod.source: server_role finds"),
            "{e}"
        );
    }

    #[test]
    fn ncloud_api_gw_applies_only_where_the_file_sets_no_gateway() {
        let yaml = "clusters:\n  - {name: a, region: KRS, service_group_instance_no: 1}\n  - {name: b, region: KR, service_group_instance_no: 2, api_gateway: 'http://own:1'}\n";
        let c = Config::parse_with(yaml, Path::new("t.yaml"), Some("gw.example:8443")).unwrap();
        assert_eq!(
            c.clusters[0].endpoint.precheck.as_str(),
            "https://gw.example:8443/api/krs-v1/cluster/rollingRestartPreCheck"
        );
        assert_eq!(
            c.clusters[1].endpoint.precheck.as_str(),
            "http://own:1/api/v1/cluster/rollingRestartPreCheck"
        );
        let top = format!("api_gateway: http://top:2\n{yaml}");
        let c = Config::parse_with(&top, Path::new("t.yaml"), Some("http://env:3")).unwrap();
        assert!(
            c.clusters[0]
                .endpoint
                .precheck
                .as_str()
                .starts_with("http://top:2/")
        );
        let e = Config::parse_with(yaml, Path::new("t.yaml"), Some("http://h/api/v1")).unwrap_err();
        assert!(e.message.starts_with("env NCLOUD_API_GW:"), "{e}");
        // The general API host, as Terraform sets it per site, means CDSS's host on that site,
        // as NCP's SDK reads it.
        for (env, host) in [
            (
                "https://ncloud.apigw.gov-ntruss.com",
                "https://clouddatastreamingservice.apigw.gov-ntruss.com/api/krs-v1/",
            ),
            (
                "ncloud.apigw.ntruss.com",
                "https://clouddatastreamingservice.apigw.ntruss.com/api/krs-v1/",
            ),
            (
                "https://fin-ncloud.apigw.fin-ntruss.com",
                "https://fin-clouddatastreamingservice.apigw.fin-ntruss.com/api/krs-v1/",
            ),
        ] {
            let c = Config::parse_with(yaml, Path::new("t.yaml"), Some(env)).unwrap();
            let url = c.clusters[0].endpoint.precheck.as_str();
            assert!(url.starts_with(host), "{env}: {url}");
        }
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
        let CredentialSource::Keys(prod) = &c.accounts["prod"] else {
            panic!("{:?}", c.accounts["prod"]);
        };
        assert_eq!(prod.access_key, KeySource::Env("P_AK".into()));
        assert_eq!(c.clusters[0].account, "prod");
        let d = &c.discovery[0];
        assert_eq!(
            (d.region, d.account.as_str(), d.refresh, d.page_size),
            (Region::Sgn, "prod", Duration::from_secs(300), 7)
        );
        assert_eq!(d.statuses, ["running"]);
        assert_eq!(
            d.endpoint.cluster_list.as_str(),
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
