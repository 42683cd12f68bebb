//! Which clusters to precheck: the static ones from the config plus what each discovery block
//! found, merged into one [`Plan`] for the scheduler.
//!
//! Static entries win a name clash with discovered ones (and a warning is logged); among
//! discovery blocks, the first in config order wins. A block that has not listed successfully
//! yet contributes nothing; a block whose listing fails keeps its last set (discovery simply does
//! not call `set_discovered`). Owns no I/O: discovery and reload call in, the scheduler watches.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::config::{Cluster, Discovery};
use crate::scheduler::{Plan, Schedule};
use crate::state::State;

/// The merged cluster set, published to the scheduler on every change.
pub struct Inventory {
    inner: Mutex<Inner>,
    plan: watch::Sender<Plan>,
    /// Synced before each plan is published, so readiness and `/metrics` see new clusters (as
    /// never checked) before discovery reports that it has listed them.
    state: Arc<State>,
}

struct Inner {
    statics: Vec<Arc<Cluster>>,
    schedule: Schedule,
    /// Discovery blocks in config order, with their last good listing (if any).
    discovered: Vec<(Discovery, Option<Vec<Arc<Cluster>>>)>,
}

impl Inventory {
    /// An inventory of the static `statics`, with `blocks` still to report.
    pub fn new(
        statics: Vec<Arc<Cluster>>,
        schedule: Schedule,
        blocks: &[Discovery],
        state: Arc<State>,
    ) -> (Self, watch::Receiver<Plan>) {
        let inner = Inner {
            statics,
            schedule,
            discovered: blocks.iter().map(|b| (b.clone(), None)).collect(),
        };
        let (plan, rx) = watch::channel(inner.plan());
        (
            Self {
                inner: Mutex::new(inner),
                plan,
                state,
            },
            rx,
        )
    }

    fn update(&self, f: impl FnOnce(&mut Inner)) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut inner);
        let plan = inner.plan();
        self.state.sync(&plan.clusters);
        self.plan.send_if_modified(|current| {
            if *current == plan {
                false
            } else {
                *current = plan;
                true
            }
        });
    }

    /// After a reload: new static clusters, schedule and discovery blocks. Blocks that are still
    /// configured keep their last listing; removed blocks' clusters go.
    pub fn set_config(&self, statics: Vec<Arc<Cluster>>, schedule: Schedule, blocks: &[Discovery]) {
        self.update(|inner| {
            inner.statics = statics;
            inner.schedule = schedule;
            let old = std::mem::take(&mut inner.discovered);
            inner.discovered = blocks
                .iter()
                .map(|b| {
                    let kept = old
                        .iter()
                        .find(|(o, _)| o == b)
                        .and_then(|(_, c)| c.clone());
                    // A block whose filters (or refresh) changed starts from the old block's
                    // listing, filtered anew, so its unchanged clusters see no gap.
                    let inherited = || {
                        let (_, listing) =
                            old.iter().find(|(o, c)| c.is_some() && o.same_source(b))?;
                        let listing = listing.as_ref()?;
                        let accepted = |c: &&Arc<Cluster>| {
                            c.info
                                .as_ref()
                                .is_some_and(|i| b.accepts(&c.name, &i.status, &i.vpc_name))
                        };
                        Some(listing.iter().filter(accepted).cloned().collect())
                    };
                    (b.clone(), kept.or_else(inherited))
                })
                .collect();
        });
    }

    /// A block's new listing.
    pub fn set_discovered(&self, block: &Discovery, clusters: Vec<Arc<Cluster>>) {
        self.update(|inner| {
            if let Some(entry) = inner.discovered.iter_mut().find(|(b, _)| b == block) {
                entry.1 = Some(clusters);
            }
        });
    }

    /// The plan as it stands.
    pub fn plan(&self) -> Plan {
        self.plan.borrow().clone()
    }
}

impl Inner {
    fn plan(&self) -> Plan {
        let found = self
            .discovered
            .iter()
            .map(|(b, c)| (b, c.as_deref().unwrap_or_default()));
        Plan {
            clusters: merge(&self.statics, found),
            schedule: self.schedule,
        }
    }
}

/// The names among `current` that `plan` drops, or keeps under a different target (a new
/// region, number, URL or account makes it a new cluster: its series and rhythm start over).
/// The state and the scheduler both follow a new plan with it.
pub fn dropped<'a>(
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
pub fn merge<'a>(
    statics: &[Arc<Cluster>],
    discovered: impl IntoIterator<Item = (&'a Discovery, &'a [Arc<Cluster>])>,
) -> Vec<Arc<Cluster>> {
    let mut out: Vec<Arc<Cluster>> = statics.to_vec();
    let mut discovered = discovered
        .into_iter()
        .filter(|(_, c)| !c.is_empty())
        .peekable();
    if discovered.peek().is_none() {
        return out;
    }
    let static_names: HashSet<&str> = statics.iter().map(|c| c.name.as_str()).collect();
    let mut taken: HashSet<&str> = static_names.clone();
    for (block, clusters) in discovered {
        for c in clusters {
            if taken.contains(c.name.as_str()) {
                if static_names.contains(c.name.as_str()) {
                    tracing::warn!(cluster = %c.name, discovery = %block.label(), "discovered cluster has the name of a static cluster; the static entry wins");
                } else {
                    tracing::warn!(cluster = %c.name, discovery = %block.label(), "cluster name found by two discovery blocks; the first block wins");
                }
                continue;
            }
            taken.insert(&c.name);
            out.push(c.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;
    use std::time::Duration;

    fn config() -> Config {
        Config::parse(
            "clusters:\n  - {name: a, region: KR, service_group_instance_no: 1}\ndiscovery:\n  - {region: KR}\n  - {region: SGN}\n",
            Path::new("t"),
        )
        .unwrap()
    }

    fn discovered(block: &Discovery, names: &[(&str, u64)]) -> Vec<Arc<Cluster>> {
        names
            .iter()
            .map(|(n, no)| {
                Arc::new(Cluster {
                    name: n.to_string(),
                    region: block.region,
                    service_group_instance_no: *no,
                    precheck_url: block.precheck_url.clone(),
                    account: block.account.clone(),
                    info: None,
                })
            })
            .collect()
    }

    #[test]
    fn static_wins_and_first_block_wins() {
        let c = config();
        let (kr, sgn) = (&c.discovery[0], &c.discovery[1]);
        let merged = merge(
            &c.clusters,
            [
                (kr, &discovered(kr, &[("a", 9), ("b", 2)])[..]),
                (sgn, &discovered(sgn, &[("b", 3), ("c", 4)])[..]),
            ],
        );
        let names: Vec<(&str, u64)> = merged
            .iter()
            .map(|c| (c.name.as_str(), c.service_group_instance_no))
            .collect();
        assert_eq!(names, [("a", 1), ("b", 2), ("c", 4)]);
    }

    #[test]
    fn listings_update_the_plan_and_removed_blocks_drop_their_clusters() {
        let c = config();
        let schedule = Schedule {
            interval: Duration::from_secs(60),
            concurrency: 4,
        };
        let state = Arc::new(State::new(&c.clusters));
        let (inv, mut rx) =
            Inventory::new(c.clusters.clone(), schedule, &c.discovery, state.clone());
        assert_eq!(rx.borrow_and_update().clusters.len(), 1);
        inv.set_discovered(&c.discovery[1], discovered(&c.discovery[1], &[("x", 5)]));
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().clusters.len(), 2);
        assert!(
            state.get("x").is_some_and(|s| s.last.is_none()),
            "state knows x, never checked"
        );
        // The same listing again is not a change.
        inv.set_discovered(&c.discovery[1], discovered(&c.discovery[1], &[("x", 5)]));
        assert!(!rx.has_changed().unwrap());
        // A reload that drops the SGN block drops "x".
        inv.set_config(c.clusters.clone(), schedule, &c.discovery[..1]);
        assert_eq!(rx.borrow_and_update().clusters.len(), 1);
        assert!(state.get("x").is_none(), "x and its series are gone");
    }

    #[test]
    fn a_block_with_new_filters_starts_from_the_old_listing() {
        let c = config();
        let schedule = Schedule {
            interval: Duration::from_secs(60),
            concurrency: 4,
        };
        let state = Arc::new(State::new(&c.clusters));
        let (inv, _rx) = Inventory::new(
            c.clusters.clone(),
            schedule,
            &c.discovery[..1],
            state.clone(),
        );
        let kr = &c.discovery[0];
        let mut listed = discovered(kr, &[("orders-a", 10), ("orders-b", 11)]);
        for (l, status) in listed.iter_mut().zip(["running", "changing"]) {
            Arc::make_mut(l).info = Some(crate::config::ClusterInfo {
                kafka_version: "3".into(),
                status: status.into(),
                vpc_name: "v".into(),
            });
        }
        inv.set_discovered(kr, listed);
        assert_eq!(inv.plan().clusters.len(), 3);
        let narrower = Config::parse(
            "clusters:\n  - {name: a, region: KR, service_group_instance_no: 1}\ndiscovery:\n  - {region: KR, statuses: [running]}\n",
            Path::new("t"),
        )
        .unwrap();
        inv.set_config(narrower.clusters.clone(), schedule, &narrower.discovery);
        let names: Vec<String> = inv
            .plan()
            .clusters
            .into_iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(names, ["a", "orders-a"]);
        assert!(state.get("orders-a").is_some());
    }
}
