//! From the file as written ([`RawConfig`]) to a [`Config`]: defaults, limits and cross-field
//! checks, one function per section. Errors name the field and, where the text shows it, the
//! line of its section.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::raw::{
    AccountName, Gateway, RawConfig, RawCredentials, RawDiscovery, RawGate, SourceKind,
    parse_gateway,
};
use super::yaml::{ConfigError, top_level_line};
use super::*;
use crate::credentials::{
    CredentialSource, DEFAULT_ACCESS_KEY_ENV, DEFAULT_SECRET_KEY_ENV, KeyPair, KeySource,
};
use crate::model::{Cluster, DEFAULT_ACCOUNT};
use crate::ncp::region::{Endpoint, Region};
use humantime::format_duration as human;

/// What validating a section needs: the text and file (to locate errors), and what earlier
/// sections settled (the accounts, the gateways).
struct Cx<'a> {
    text: &'a str,
    file: &'a Path,
    /// Every configured account (set once `credentials:` and `accounts:` are read).
    accounts: BTreeMap<String, CredentialSource>,
    /// The file's `api_gateway` (else `NCLOUD_API_GW`), for entries that set none.
    gateway: Option<Gateway>,
    /// Every gateway + region pair's [`Endpoint`], parsed once and shared by the clusters and
    /// blocks that use it (most of 10,000 clusters share a handful).
    endpoints: HashMap<(Option<String>, Region), Arc<Endpoint>>,
}

impl Cx<'_> {
    /// An error located at the top-level section `section` of the text.
    fn err(&self, section: &str, message: String) -> ConfigError {
        ConfigError::new(self.file, top_level_line(self.text, section), message)
    }

    /// `Ok` when `ok`, else the error `message()` located at `section`.
    fn check(
        &self,
        ok: bool,
        section: &str,
        message: impl FnOnce() -> String,
    ) -> Result<(), ConfigError> {
        ok.then_some(()).ok_or_else(|| self.err(section, message()))
    }

    /// An error about `entry` (`clusters[3]`), located at its section.
    fn entry_err(&self, entry: &str, message: String) -> ConfigError {
        self.err(entry.split(['[', '.']).next().unwrap_or(entry), message)
    }

    /// The account an entry names (default: [`DEFAULT_ACCOUNT`]), which must be configured.
    /// `entry` names the entry in an error; it is made only when there is one.
    fn account(
        &self,
        named: Option<AccountName>,
        entry: &dyn Fn() -> String,
    ) -> Result<String, ConfigError> {
        let name = named.map_or_else(|| DEFAULT_ACCOUNT.to_string(), |a| a.0);
        if self.accounts.contains_key(&name) {
            return Ok(name);
        }
        let (entry, known) = (entry(), self.accounts.keys().cloned().collect::<Vec<_>>());
        let message = format!(
            "{entry}.account: unknown account {name:?} (configured: {})",
            known.join(", ")
        );
        Err(self.entry_err(&entry, message))
    }

    /// The endpoint of an entry's own gateway, else the file's, in `region`.
    fn endpoint(
        &mut self,
        own: Option<Gateway>,
        region: Region,
        entry: &dyn Fn() -> String,
    ) -> Result<Arc<Endpoint>, ConfigError> {
        let gateway = own.or_else(|| self.gateway.clone()).map(|g| g.0);
        if let Some(e) = self.endpoints.get(&(gateway.clone(), region)) {
            return Ok(e.clone());
        }
        let endpoint = Endpoint::new(gateway.as_deref(), region)
            .map_err(|e| self.entry_err(&entry(), format!("{}: bad URL: {e}", entry())))?;
        let endpoint = Arc::new(endpoint);
        self.endpoints.insert((gateway, region), endpoint.clone());
        Ok(endpoint)
    }
}

/// The validated config of `raw`; `text` and `file` locate errors.
/// `env_gateway` is `NCLOUD_API_GW`, used when the file sets no `api_gateway`.
pub(super) fn config(
    raw: RawConfig,
    text: &str,
    file: &Path,
    env_gateway: Option<&str>,
) -> Result<Config, ConfigError> {
    let env_gateway = env_gateway
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(cdss_gateway)
        .transpose()
        .map_err(|m| {
            let m = m.replace("api_gateway ", "");
            ConfigError::new(file, None, format!("env {API_GW_ENV}: {m}"))
        })?;
    let mut cx = Cx {
        text,
        file,
        accounts: BTreeMap::new(),
        gateway: raw.api_gateway.or(env_gateway),
        endpoints: HashMap::new(),
    };
    let interval = raw.interval.unwrap_or(DEFAULT_INTERVAL);
    cx.check(interval >= MIN_INTERVAL, "interval", || {
        format!("interval: must be at least {}", human(MIN_INTERVAL))
    })?;
    // The timeout must fit inside the interval.
    let timeout = raw.timeout.unwrap_or(DEFAULT_TIMEOUT);
    cx.check(!timeout.is_zero(), "timeout", || {
        "timeout: must be greater than zero".into()
    })?;
    cx.check(timeout < interval, "timeout", || {
        let (t, i) = (human(timeout), human(interval));
        format!("timeout: {t} must be shorter than interval {i}")
    })?;
    let concurrency = raw.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    cx.check(
        (1..=MAX_CONCURRENCY).contains(&concurrency),
        "concurrency",
        || format!("concurrency: must be between 1 and {MAX_CONCURRENCY}, got {concurrency}"),
    )?;
    let max_response_bytes = raw.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
    cx.check(max_response_bytes >= 1024, "max_response_bytes", || {
        format!("max_response_bytes: must be at least 1024, got {max_response_bytes}")
    })?;
    cx.accounts = accounts(raw.credentials, raw.accounts, &cx)?;
    let some_cluster = !raw.clusters.0.is_empty() || !raw.discovery.is_empty();
    cx.check(some_cluster, "clusters", || {
        "clusters: at least one cluster (or a discovery block) is required".into()
    })?;
    let clusters = clusters(raw.clusters, &mut cx)?;
    let discovery = discovery(raw.discovery, &mut cx)?;
    let gate = gate(raw.gate.unwrap_or_default(), interval, &cx)?;
    Ok(Config {
        interval,
        timeout,
        concurrency,
        max_response_bytes,
        accounts: cx.accounts,
        clusters,
        discovery,
        gate,
        diagnosis: raw.diagnosis.unwrap_or_default(),
        ca_file: raw.ca_file.map(|f| f.0),
    })
}

/// `credentials:` (the default account) and `accounts:`.
fn accounts(
    credentials: Option<RawCredentials>,
    raw: BTreeMap<AccountName, RawCredentials>,
    cx: &Cx,
) -> Result<BTreeMap<String, CredentialSource>, ConfigError> {
    // No `credentials:` reads as an empty one: the chain.
    let default = credential_source(credentials.unwrap_or_default(), "credentials")
        .map_err(|m| cx.err("credentials", m))?;
    let mut accounts = BTreeMap::from([(DEFAULT_ACCOUNT.to_string(), default)]);
    for (name, raw) in raw {
        cx.check(name.0 != DEFAULT_ACCOUNT, "accounts", || {
            format!("accounts.{DEFAULT_ACCOUNT}: reserved; the default account is `credentials:`")
        })?;
        let source = credential_source(raw, &format!("accounts.{}", name.0))
            .map_err(|m| cx.err("accounts", m))?;
        accounts.insert(name.0, source);
    }
    Ok(accounts)
}

fn clusters(raw: super::raw::Clusters, cx: &mut Cx) -> Result<Vec<Arc<Cluster>>, ConfigError> {
    let mut clusters = Vec::with_capacity(raw.0.len());
    for (i, c) in raw.0.into_iter().enumerate() {
        let entry = || format!("clusters[{i}]");
        clusters.push(Arc::new(Cluster {
            endpoint: cx.endpoint(c.api_gateway, c.region, &entry)?,
            account: cx.account(c.account, &entry)?,
            name: c.name.0,
            region: c.region,
            service_group_instance_no: c.service_group_instance_no.0,
            info: None,
        }));
    }
    Ok(clusters)
}

fn discovery(raw: Vec<RawDiscovery>, cx: &mut Cx) -> Result<Vec<Discovery>, ConfigError> {
    let mut blocks = Vec::with_capacity(raw.len());
    for (i, d) in raw.into_iter().enumerate() {
        let entry = format!("discovery[{i}]");
        let refresh = d.refresh.unwrap_or(DEFAULT_REFRESH);
        cx.check(refresh >= MIN_REFRESH, "discovery", || {
            format!("{entry}.refresh: must be at least {}", human(MIN_REFRESH))
        })?;
        let page_size = d.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        cx.check((1..=100).contains(&page_size), "discovery", || {
            format!("{entry}.page_size: must be between 1 and 100, got {page_size}")
        })?;
        let block = Discovery {
            account: cx.account(d.account, &|| entry.clone())?,
            region: d.region,
            refresh,
            name_regex: d.name_regex,
            exclude_regex: d.exclude_regex,
            vpc_name: d.vpc_name.filter(|v| !v.is_empty()),
            statuses: d.statuses.map_or_else(
                || DEFAULT_STATUSES.iter().map(|s| s.to_string()).collect(),
                |v| v.into_iter().map(|s| s.0).collect(),
            ),
            page_size,
            endpoint: cx.endpoint(d.api_gateway, d.region, &|| entry.clone())?,
        };
        cx.check(!blocks.contains(&block), "discovery", || {
            format!("{entry}: the same block appears twice")
        })?;
        blocks.push(block);
    }
    Ok(blocks)
}

/// `gate:`; `max_age` defaults to twice the interval and may not be shorter than it.
fn gate(raw: RawGate, interval: Duration, cx: &Cx) -> Result<GateConfig, ConfigError> {
    let budget = raw.fresh_budget.unwrap_or_default();
    let FreshBudget { per_second, burst } = budget;
    cx.check(per_second > 0.0 && per_second <= 1000.0, "gate", || {
        format!("gate.fresh_budget.per_second: must be above 0 and at most 1000, got {per_second}")
    })?;
    cx.check((1..=10_000).contains(&burst), "gate", || {
        format!("gate.fresh_budget.burst: must be between 1 and 10000, got {burst}")
    })?;
    let gate = GateConfig {
        max_age: raw.max_age.unwrap_or(interval.saturating_mul(2)),
        min_fresh_interval: raw.min_fresh_interval.unwrap_or(DEFAULT_MIN_FRESH_INTERVAL),
        fresh_budget: budget,
    };
    cx.check(gate.max_age >= interval, "gate", || {
        let (m, i) = (human(gate.max_age), human(interval));
        format!("gate.max_age: {m} is shorter than interval {i}: the gate would be closed most of the time")
    })?;
    Ok(gate)
}

/// One account's source: `source` (default: `keys` when a key is set, else `chain`),
/// `server_role`, and the four key settings.
fn credential_source(raw: RawCredentials, entry: &str) -> Result<CredentialSource, String> {
    let has_keys = raw.access_key_env.is_some()
        || raw.access_key_file.is_some()
        || raw.secret_key_env.is_some()
        || raw.secret_key_file.is_some();
    let role = raw.server_role.map(|r| r.0);
    let kind = raw.source.unwrap_or(match (has_keys, &role) {
        (true, _) => SourceKind::Keys,
        (false, Some(_)) => SourceKind::ServerRole,
        (false, None) => SourceKind::Chain,
    });
    match kind {
        SourceKind::Keys if role.is_some() => Err(format!(
            "{entry}.server_role: only with source chain or server_role (source is keys)"
        )),
        SourceKind::Keys => Ok(CredentialSource::Keys(KeyPair {
            access_key: key_source(raw.access_key_env, raw.access_key_file, "access_key", entry)?,
            secret_key: key_source(raw.secret_key_env, raw.secret_key_file, "secret_key", entry)?,
        })),
        _ if has_keys => {
            let name = if kind == SourceKind::Chain {
                "chain"
            } else {
                "server_role"
            };
            Err(format!(
                "{entry}.source: {name} finds the keys itself; remove the *_env / *_file keys, or set source: keys"
            ))
        }
        SourceKind::Chain => Ok(CredentialSource::Chain { server_role: role }),
        SourceKind::ServerRole => Ok(CredentialSource::ServerRole { name: role }),
    }
}

/// One key's `{key}_env` / `{key}_file` (default: [`KeyPair::default`]'s env var).
fn key_source(
    env: Option<String>,
    file: Option<std::path::PathBuf>,
    key: &str,
    entry: &str,
) -> Result<KeySource, String> {
    match (env, file) {
        (Some(_), Some(_)) => Err(format!("{entry}: set {key}_env or {key}_file, not both")),
        (Some(e), None) if e.trim().is_empty() => {
            Err(format!("{entry}.{key}_env: must not be empty"))
        }
        (Some(e), None) => Ok(KeySource::Env(e)),
        (None, Some(f)) => Ok(KeySource::File(f)),
        (None, None) if key == "access_key" => Ok(KeySource::Env(DEFAULT_ACCESS_KEY_ENV.into())),
        (None, None) => Ok(KeySource::Env(DEFAULT_SECRET_KEY_ENV.into())),
    }
}

/// The CDSS gateway behind an `NCLOUD_API_GW` value (a URL, or a bare host as NCP's tools
/// accept), as NCP's SDK (`services/vcdss`) finds it: the general API host `https://ncloud.…`
/// (and the financial cloud's `https://fin-ncloud.…`) becomes CDSS's own
/// (`https://clouddatastreamingservice.…`); any other value is used as it is.
fn cdss_gateway(value: &str) -> Result<Gateway, String> {
    let mut url = match value.contains("://") {
        true => value.to_string(),
        false => format!("https://{value}"),
    };
    if url.starts_with("https://ncloud.") || url.starts_with("https://fin-ncloud.") {
        url = url.replacen("ncloud.", "clouddatastreamingservice.", 1);
    }
    parse_gateway(&url)
}
