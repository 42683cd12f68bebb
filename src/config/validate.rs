//! From the file as written ([`RawConfig`]) to a [`Config`]: defaults, limits and cross-field
//! checks, one function per section. Errors name the field and, where the text shows it, the
//! line of its section.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::raw::{
    AccountName, Gateway, RawConfig, RawCredentials, RawDiscovery, RawGate, SourceKind,
};
use super::yaml::{ConfigError, top_level_line};
use super::*;
use crate::credentials::{
    CredentialSource, DEFAULT_ACCESS_KEY_ENV, DEFAULT_SECRET_KEY_ENV, KeyPair, KeySource,
};
use crate::model::{Cluster, DEFAULT_ACCOUNT};
use crate::ncp::region::{Endpoint, Region};

/// Builds errors located at a top-level section of `text`.
struct At<'a> {
    text: &'a str,
    file: &'a Path,
}

impl At<'_> {
    fn err(&self, section: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            location: top_level_line(self.text, section),
            message,
        }
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
}

/// A duration as the config writes it (`1m 30s`).
fn human(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

/// Every gateway + region pair's [`Endpoint`], parsed once and shared by the clusters and blocks
/// that use it (most of 10,000 clusters share a handful).
struct Endpoints {
    global: Option<Gateway>,
    parsed: HashMap<(Option<String>, Region), Arc<Endpoint>>,
}

impl Endpoints {
    fn get(&mut self, own: Option<Gateway>, region: Region) -> Result<Arc<Endpoint>, String> {
        let gateway = own.or_else(|| self.global.clone()).map(|g| g.0);
        if let Some(e) = self.parsed.get(&(gateway.clone(), region)) {
            return Ok(e.clone());
        }
        let endpoint = Arc::new(
            Endpoint::new(gateway.as_deref(), region).map_err(|e| format!("bad URL: {e}"))?,
        );
        self.parsed.insert((gateway, region), endpoint.clone());
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
    let at = At { text, file };
    let env_gateway = env_gateway
        .map(str::trim)
        .filter(|g| !g.is_empty())
        // NCP's tools accept a bare host there.
        .map(|g| match g.contains("://") {
            true => cdss_host(g),
            false => cdss_host(&format!("https://{g}")),
        })
        .map(|url| super::raw::parse_gateway(&url).map(Gateway))
        .transpose()
        .map_err(|m| {
            let m = m.replace("api_gateway ", "");
            ConfigError::file(file, format!("env {API_GW_ENV}: {m}"))
        })?;
    let (interval, timeout) = timing(raw.interval, raw.timeout, &at)?;
    let concurrency = raw.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
    at.check(
        (1..=MAX_CONCURRENCY).contains(&concurrency),
        "concurrency",
        || format!("concurrency: must be between 1 and {MAX_CONCURRENCY}, got {concurrency}"),
    )?;
    let max_response_bytes = raw.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
    at.check(max_response_bytes >= 1024, "max_response_bytes", || {
        format!("max_response_bytes: must be at least 1024, got {max_response_bytes}")
    })?;
    let accounts = accounts(raw.credentials, raw.accounts, &at)?;
    let some_cluster = !raw.clusters.0.is_empty() || !raw.discovery.is_empty();
    at.check(some_cluster, "clusters", || {
        "clusters: at least one cluster (or a discovery block) is required".into()
    })?;
    let mut endpoints = Endpoints {
        global: raw.api_gateway.or(env_gateway),
        parsed: HashMap::new(),
    };
    let clusters = clusters(raw.clusters, &accounts, &mut endpoints, &at)?;
    let discovery = discovery(raw.discovery, &accounts, &mut endpoints, &at)?;
    let gate = gate(raw.gate.unwrap_or_default(), interval, &at)?;
    let empty_ca = raw
        .ca_file
        .as_ref()
        .is_some_and(|p| p.as_os_str().is_empty());
    at.check(!empty_ca, "ca_file", || "ca_file: must not be empty".into())?;
    Ok(Config {
        interval,
        timeout,
        concurrency,
        max_response_bytes,
        accounts,
        clusters,
        discovery,
        gate,
        diagnosis: raw.diagnosis.unwrap_or_default(),
        ca_file: raw.ca_file,
    })
}

/// `interval` and `timeout`: the timeout must fit inside the interval.
fn timing(
    interval: Option<Duration>,
    timeout: Option<Duration>,
    at: &At,
) -> Result<(Duration, Duration), ConfigError> {
    let interval = interval.unwrap_or(DEFAULT_INTERVAL);
    let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
    at.check(interval >= MIN_INTERVAL, "interval", || {
        format!("interval: must be at least {}", human(MIN_INTERVAL))
    })?;
    at.check(!timeout.is_zero(), "timeout", || {
        "timeout: must be greater than zero".into()
    })?;
    at.check(timeout < interval, "timeout", || {
        let (t, i) = (human(timeout), human(interval));
        format!("timeout: {t} must be shorter than interval {i}")
    })?;
    Ok((interval, timeout))
}

/// `credentials:` (the default account) and `accounts:`.
fn accounts(
    credentials: Option<RawCredentials>,
    raw: BTreeMap<AccountName, RawCredentials>,
    at: &At,
) -> Result<BTreeMap<String, CredentialSource>, ConfigError> {
    let default = match credentials {
        None => CredentialSource::default(),
        Some(raw) => credential_source(raw, "credentials").map_err(|m| at.err("credentials", m))?,
    };
    let mut accounts = BTreeMap::from([(DEFAULT_ACCOUNT.to_string(), default)]);
    for (name, raw) in raw {
        at.check(name.0 != DEFAULT_ACCOUNT, "accounts", || {
            format!("accounts.{DEFAULT_ACCOUNT}: reserved; the default account is `credentials:`")
        })?;
        let source = credential_source(raw, &format!("accounts.{}", name.0))
            .map_err(|m| at.err("accounts", m))?;
        accounts.insert(name.0, source);
    }
    Ok(accounts)
}

/// The account an entry names (default: [`DEFAULT_ACCOUNT`]), which must be configured.
/// `entry` names the entry in an error; it is made only when there is one.
fn account(
    named: Option<AccountName>,
    accounts: &BTreeMap<String, CredentialSource>,
    entry: &dyn Fn() -> String,
    at: &At,
) -> Result<String, ConfigError> {
    let name = named.map_or_else(|| DEFAULT_ACCOUNT.to_string(), |a| a.0);
    if accounts.contains_key(&name) {
        return Ok(name);
    }
    let entry = entry();
    let known = accounts.keys().cloned().collect::<Vec<_>>().join(", ");
    Err(at.err(
        entry.split(['[', '.']).next().unwrap_or(&entry),
        format!("{entry}.account: unknown account {name:?} (configured: {known})"),
    ))
}

fn clusters(
    raw: super::raw::Clusters,
    accounts: &BTreeMap<String, CredentialSource>,
    endpoints: &mut Endpoints,
    at: &At,
) -> Result<Vec<Arc<Cluster>>, ConfigError> {
    let mut clusters = Vec::with_capacity(raw.0.len());
    for (i, c) in raw.0.into_iter().enumerate() {
        let endpoint = endpoints
            .get(c.api_gateway, c.region)
            .map_err(|e| at.err("clusters", format!("clusters[{i}]: {e}")))?;
        clusters.push(Arc::new(Cluster {
            account: account(c.account, accounts, &|| format!("clusters[{i}]"), at)?,
            name: c.name.0,
            region: c.region,
            service_group_instance_no: c.service_group_instance_no.0,
            endpoint,
            info: None,
        }));
    }
    Ok(clusters)
}

fn discovery(
    raw: Vec<RawDiscovery>,
    accounts: &BTreeMap<String, CredentialSource>,
    endpoints: &mut Endpoints,
    at: &At,
) -> Result<Vec<Discovery>, ConfigError> {
    let mut blocks = Vec::with_capacity(raw.len());
    for (i, d) in raw.into_iter().enumerate() {
        let entry = format!("discovery[{i}]");
        let refresh = d.refresh.unwrap_or(DEFAULT_REFRESH);
        at.check(refresh >= MIN_REFRESH, "discovery", || {
            format!("{entry}.refresh: must be at least {}", human(MIN_REFRESH))
        })?;
        let page_size = d.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        at.check((1..=100).contains(&page_size), "discovery", || {
            format!("{entry}.page_size: must be between 1 and 100, got {page_size}")
        })?;
        let block = Discovery {
            account: account(d.account, accounts, &|| entry.clone(), at)?,
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
            endpoint: endpoints
                .get(d.api_gateway, d.region)
                .map_err(|e| at.err("discovery", format!("{entry}: {e}")))?,
        };
        at.check(!blocks.contains(&block), "discovery", || {
            format!("{entry}: the same block appears twice")
        })?;
        blocks.push(block);
    }
    Ok(blocks)
}

/// `gate:`; `max_age` defaults to twice the interval and may not be shorter than it.
fn gate(raw: RawGate, interval: Duration, at: &At) -> Result<GateConfig, ConfigError> {
    let budget = raw.fresh_budget.unwrap_or_default();
    let FreshBudget { per_second, burst } = budget;
    at.check(per_second > 0.0 && per_second <= 1000.0, "gate", || {
        format!("gate.fresh_budget.per_second: must be above 0 and at most 1000, got {per_second}")
    })?;
    at.check((1..=10_000).contains(&burst), "gate", || {
        format!("gate.fresh_budget.burst: must be between 1 and 10000, got {burst}")
    })?;
    let gate = GateConfig {
        max_age: raw.max_age.unwrap_or(interval.saturating_mul(2)),
        min_fresh_interval: raw.min_fresh_interval.unwrap_or(DEFAULT_MIN_FRESH_INTERVAL),
        fresh_budget: budget,
    };
    at.check(gate.max_age >= interval, "gate", || {
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

/// The CDSS gateway behind an `NCLOUD_API_GW` value, as NCP's SDK (`services/vcdss`) finds it:
/// the general API host `https://ncloud.…` (and the financial cloud's `https://fin-ncloud.…`)
/// becomes CDSS's own (`https://clouddatastreamingservice.…`); any other value is used as it is.
fn cdss_host(gateway: &str) -> String {
    for (general, cdss) in [
        ("https://ncloud.", "https://clouddatastreamingservice."),
        (
            "https://fin-ncloud.",
            "https://fin-clouddatastreamingservice.",
        ),
    ] {
        if let Some(rest) = gateway.strip_prefix(general) {
            return format!("{cdss}{rest}");
        }
    }
    gateway.to_string()
}
