//! What the exporter spends: every NCP call, counted by account, operation and result, for
//! `cdss_exporter_api_requests_total` (users match it against their quota and bill).
//!
//! Written only by the call path ([`super::client::Clients::call`]); read by the exposition.
//! Survives reloads: the shared clients hand the same counters to every new set of clients.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// An NCP operation, the `operation` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// `rollingRestartPreCheck`.
    Precheck,
    /// `getClusterInfoList`.
    ClusterList,
    /// `getClusterStatus`.
    ClusterStatus,
}

impl Operation {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Precheck => "precheck",
            Operation::ClusterList => "cluster_list",
            Operation::ClusterStatus => "cluster_status",
        }
    }
}

/// One account's calls, by (operation, result).
type ByCall = BTreeMap<(Operation, &'static str), u64>;

/// Calls made, by (account, operation, result); `result` is `ok` or a failure reason.
#[derive(Debug, Default)]
pub struct ApiUsage {
    /// By account, then by (operation, result): an account's name is copied once, not per call.
    counts: Mutex<BTreeMap<String, ByCall>>,
    /// Bumped on every call, so the exposition's cache sees the change.
    generation: AtomicU64,
}

impl ApiUsage {
    /// Counts one call.
    pub fn count(&self, account: &str, operation: Operation, result: &'static str) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if !counts.contains_key(account) {
            counts.insert(account.to_string(), BTreeMap::new());
        }
        if let Some(by_call) = counts.get_mut(account) {
            *by_call.entry((operation, result)).or_default() += 1;
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Every count, sorted by account, operation, result.
    pub fn snapshot(&self) -> Vec<(String, Operation, &'static str, u64)> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .flat_map(|(a, by_call)| by_call.iter().map(|((o, r), n)| (a.clone(), *o, *r, *n)))
            .collect()
    }

    /// Changes on every call.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}
