//! What the exporter spends: every NCP call, counted by account, operation and result, for
//! `cdss_exporter_api_requests_total` (users match it against their quota and bill).
//!
//! Written only by the call path ([`super::client::Clients::call`]); read by the exposition.
//! Survives reloads: the shared clients hand the same counters to every new set of clients.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::outcome::FailureReason;

/// An NCP operation, the `operation` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Operation {
    /// `rollingRestartPreCheck`.
    Precheck,
    /// `getClusterInfoList`.
    ClusterList,
    /// `getClusterStatus`.
    ClusterStatus,
    /// `rollingRestart` (the `restart` command only).
    RollingRestart,
    /// `rollingRestartProgressCheck` (the `restart` command only).
    RestartProgress,
}

impl Operation {
    /// Every operation, in label order.
    pub(crate) const ALL: [Operation; 5] = [
        Operation::Precheck,
        Operation::ClusterList,
        Operation::ClusterStatus,
        Operation::RollingRestart,
        Operation::RestartProgress,
    ];

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Precheck => "precheck",
            Operation::ClusterList => "cluster_list",
            Operation::ClusterStatus => "cluster_status",
            Operation::RollingRestart => "rolling_restart",
            Operation::RestartProgress => "restart_progress",
        }
    }
}

/// Results a call is counted under: `ok`, then every failure reason.
const RESULTS: usize = FailureReason::ALL.len() + 1;

/// One account's calls, by operation and result: counted without a lock.
#[derive(Debug, Default)]
pub(crate) struct AccountUsage {
    counts: [[AtomicU64; RESULTS]; Operation::ALL.len()],
}

impl AccountUsage {
    /// Counts one call that ended `ok` (`None`) or for this reason.
    pub(crate) fn count(&self, operation: Operation, failure: Option<FailureReason>) {
        let result = failure.map_or(0, |r| r.index() + 1);
        self.counts[operation as usize][result].fetch_add(1, Ordering::Relaxed);
    }
}

/// Calls made, by (account, operation, result); `result` is `ok` or a failure reason.
#[derive(Debug, Default)]
pub(crate) struct ApiUsage {
    /// By account (a lock only to find an account's counters, when clients are built, and to
    /// read them all at a scrape).
    accounts: Mutex<BTreeMap<String, Arc<AccountUsage>>>,
}

impl ApiUsage {
    /// `account`'s counters, made on first use.
    pub(crate) fn account(&self, account: &str) -> Arc<AccountUsage> {
        let mut accounts = crate::lock::lock(&self.accounts);
        accounts.entry(account.to_string()).or_default().clone()
    }

    /// Counts one call; `result` is `ok` or a failure reason's label.
    #[cfg(test)]
    pub(crate) fn count(&self, account: &str, operation: Operation, result: &str) {
        let failure = FailureReason::ALL
            .into_iter()
            .find(|r| r.as_str() == result);
        self.account(account).count(operation, failure);
    }

    /// Every count above zero, by account, operation and result (the registry sorts them).
    pub(crate) fn snapshot(&self) -> Vec<(String, Operation, &'static str, u64)> {
        let accounts = crate::lock::lock(&self.accounts);
        let mut all = Vec::new();
        for (account, usage) in accounts.iter() {
            for operation in Operation::ALL {
                for (i, n) in usage.counts[operation as usize].iter().enumerate() {
                    let n = n.load(Ordering::Relaxed);
                    let result = match i {
                        0 => "ok",
                        i => FailureReason::ALL[i - 1].as_str(),
                    };
                    if n > 0 {
                        all.push((account.clone(), operation, result, n));
                    }
                }
            }
        }
        all
    }
}
