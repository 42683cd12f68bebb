//! What the scheduler should be doing, and how two versions of that differ.
//!
//! A [`Plan`] is every cluster to precheck (static and discovered, names unique) and the
//! [`Schedule`] (interval, concurrency). [`merge`] builds the cluster list from the static
//! clusters and the discovery listings; [`dropped`] says which clusters a new plan drops. The
//! inventory makes plans and syncs the state to them; the scheduler's runner follows them. Pure:
//! below all three, it imports only `model` and the config (its blocks and schedule settings).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, Discovery};
use crate::model::Cluster;

/// Interval and concurrency, as the config asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// Time between two prechecks of one cluster.
    pub interval: Duration,
    /// Answering prechecks in flight at once, per account and gateway.
    pub concurrency: usize,
    /// Per-request timeout: a precheck this slow is not a healthy one (see `scheduler::budget`).
    pub timeout: Duration,
    /// Read `getClusterStatus` after every precheck that got an answer, not only failing ones.
    pub diagnose_every_round: bool,
}

impl Schedule {
    /// The schedule `config` asks for.
    pub(crate) fn of(config: &Config) -> Self {
        Self {
            interval: config.interval,
            concurrency: config.concurrency,
            timeout: config.timeout,
            diagnose_every_round: config.diagnosis.every_round,
        }
    }
}

/// What the scheduler should be doing: which clusters, how often, how many at once.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Plan {
    /// Every cluster to precheck (static and discovered), names unique.
    pub clusters: Vec<Arc<Cluster>>,
    /// Interval and concurrency.
    pub schedule: Schedule,
}

/// The names among `current` that `plan` drops, or keeps under a different target (a new
/// region, number, URL or account makes it a new cluster: its series and rhythm start over).
/// The state and the runner both follow a new plan with it.
pub(crate) fn dropped<'a>(
    current: impl IntoIterator<Item = &'a Cluster>,
    plan: &[Arc<Cluster>],
) -> Vec<String> {
    let wanted: HashMap<&str, &Cluster> = plan.iter().map(|c| (c.name.as_str(), &**c)).collect();
    current
        .into_iter()
        .filter(|c| {
            !wanted
                .get(c.name.as_str())
                .is_some_and(|w| c.same_target(w))
        })
        .map(|c| c.name.clone())
        .collect()
}

/// Static clusters first, then discovered ones whose names are not taken yet.
pub(crate) fn merge<'a>(
    statics: &[Arc<Cluster>],
    discovered: impl IntoIterator<Item = (&'a Discovery, &'a [Arc<Cluster>])>,
) -> Vec<Arc<Cluster>> {
    let mut out: Vec<Arc<Cluster>> = statics.to_vec();
    let static_names: HashSet<&str> = statics.iter().map(|c| c.name.as_str()).collect();
    // The last block that listed each name.
    let mut listed_by: HashMap<&str, &Discovery> = HashMap::new();
    for (block, clusters) in discovered {
        for c in clusters {
            let why = match listed_by.insert(&c.name, block) {
                _ if static_names.contains(c.name.as_str()) => {
                    "discovered cluster has the name of a static cluster; the static entry wins"
                }
                None => {
                    out.push(c.clone());
                    continue;
                }
                Some(last) if std::ptr::eq(last, block) => {
                    "cluster name listed twice by one discovery block; the first entry wins"
                }
                Some(_) => "cluster name found by two discovery blocks; the first block wins",
            };
            tracing::warn!(cluster = %c.name, discovery = %block.label(), "{why}");
        }
    }
    out
}
