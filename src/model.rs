//! The words every module shares: cluster and account names, the [`Cluster`] record, and what
//! discovery says about a cluster.
//!
//! The bottom of the crate, with the region table ([`crate::ncp::region`], also pure): config,
//! credentials, ncp, the plan, the scheduler and the state all speak these words, and none of
//! them is imported here. Owns the name rules (a cluster name is a label value and a URL path
//! segment; an account name is a map key). No I/O.

use std::sync::Arc;

use crate::ncp::region::{Endpoint, Region};

/// Longest accepted cluster name (it becomes a label value and a URL path segment).
pub(crate) const MAX_NAME_LEN: usize = 128;
/// Longest accepted account name.
pub(crate) const MAX_ACCOUNT_LEN: usize = 64;
/// The account that `credentials:` (or the NCLOUD_* env vars) define.
pub const DEFAULT_ACCOUNT: &str = "default";

/// Checks a cluster name: 1 to 128 characters from `A-Z a-z 0-9 . _ -`, starting with a letter
/// or digit.
pub(crate) fn validate_name(s: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if s.is_empty() || s.len() > MAX_NAME_LEN {
        let n = s.len();
        Err(format!(
            "cluster name must be 1 to {MAX_NAME_LEN} characters, got {n}"
        ))
    } else if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        Err(format!(
            "cluster name {s:?} must start with a letter or digit"
        ))
    } else if let Some(c) = s.chars().find(|c| !allowed(*c)) {
        Err(format!(
            "cluster name {s:?} has {c:?}; use letters, digits, '.', '_' and '-'"
        ))
    } else {
        Ok(())
    }
}

/// Checks an account name: 1 to 64 letters, digits, `_` and `-`.
pub(crate) fn validate_account(s: &str) -> Result<(), String> {
    if s.is_empty()
        || s.len() > MAX_ACCOUNT_LEN
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        return Err(format!(
            "account name {s:?}: use 1 to {MAX_ACCOUNT_LEN} letters, digits, '_' and '-'"
        ));
    }
    Ok(())
}

/// One cluster to precheck, static or discovered. Held once (`Arc`) and shared by the config,
/// the plan, the runner and the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// The `cluster` label; unique among the clusters being prechecked.
    pub name: String,
    /// The `region` label, and which regional API it is asked through.
    pub region: Region,
    /// CDSS `serviceGroupInstanceNo` (the cluster number).
    pub service_group_instance_no: u64,
    /// The regional API at the configured gateway: every operation's URL, parsed once and
    /// shared by the clusters behind the same gateway and region.
    pub endpoint: Arc<Endpoint>,
    /// Whose API keys sign its calls.
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
    pub(crate) fn same_target(&self, other: &Cluster) -> bool {
        self.name == other.name
            && self.region == other.region
            && self.service_group_instance_no == other.service_group_instance_no
            && self.endpoint == other.endpoint
            && self.account == other.account
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        assert!(validate_name("orders-kafka.v2_1").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("-x").is_err());
        assert!(validate_name("a/b").is_err());
        assert!(validate_name(&"a".repeat(MAX_NAME_LEN)).is_ok());
        assert!(validate_name(&"a".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(validate_account("prod_1-a").is_ok());
        assert!(validate_account("bad name").is_err());
        assert!(validate_account(&"a".repeat(MAX_ACCOUNT_LEN + 1)).is_err());
    }
}
