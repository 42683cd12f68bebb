//! What the exporter spends: every NCP call, counted by account, operation and result, for
//! `cdss_exporter_api_requests_total` (users match it against their quota and bill).
//!
//! Written only by the call path ([`super::client::Clients::call`]); read by the exposition.
//! Survives reloads: the shared clients hand the same counters to every new set of clients.

use std::collections::BTreeMap;
use std::sync::Mutex;

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
}

impl Operation {
    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Precheck => "precheck",
            Operation::ClusterList => "cluster_list",
            Operation::ClusterStatus => "cluster_status",
        }
    }
}

/// Calls made, by (account, operation, result); `result` is `ok` or a failure reason.
#[derive(Debug, Default)]
pub(crate) struct ApiUsage {
    /// A lock held only to count one call, or to read them all at a scrape.
    counts: Mutex<BTreeMap<(String, Operation, &'static str), u64>>,
}

impl ApiUsage {
    /// Counts one call of `account`'s that ended `ok` (`None`) or for this reason.
    pub(crate) fn record(
        &self,
        account: &str,
        operation: Operation,
        failure: Option<FailureReason>,
    ) {
        let result = failure.map_or("ok", FailureReason::as_str);
        let mut counts = crate::lock::lock(&self.counts);
        *counts
            .entry((account.to_string(), operation, result))
            .or_default() += 1;
    }

    /// Counts one call; `result` is `ok` or a failure reason's label.
    #[cfg(test)]
    pub(crate) fn count(&self, account: &str, operation: Operation, result: &str) {
        let failure = FailureReason::ALL
            .into_iter()
            .find(|r| r.as_str() == result);
        self.record(account, operation, failure);
    }

    /// Every count, by account, operation and result (the registry sorts them).
    pub(crate) fn snapshot(&self) -> Vec<(String, Operation, &'static str, u64)> {
        let counts = crate::lock::lock(&self.counts);
        counts
            .iter()
            .map(|((a, o, r), n)| (a.clone(), *o, *r, *n))
            .collect()
    }
}
