//! Which clusters to precheck: the static ones from the config plus what each discovery block
//! found, merged into one [`Plan`] for the scheduler.
//!
//! The only writer of the cluster set: a new plan is synced into the state (so `/metrics` and
//! readiness see new clusters, never checked, and removed ones vanish with all their series)
//! and then published to the scheduler, which follows it. Nobody else adds or removes a cluster.
//! Static entries win a name clash with discovered ones (and a warning is logged); among
//! discovery blocks, the first in config order wins. A block that has not listed successfully
//! yet contributes nothing; a block whose listing fails keeps its last set (discovery simply does
//! not call `set_discovered`). Owns no I/O: discovery and reload call in, the scheduler watches.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::config::{Config, Discovery};
use crate::model::Cluster;
use crate::plan::{Plan, Schedule, merge};
use crate::state::State;

/// The merged cluster set, published to the scheduler on every change.
#[derive(Debug)]
pub(crate) struct Inventory {
    inner: Mutex<Inner>,
    plan: watch::Sender<Plan>,
    /// Synced before each plan is published, so readiness and `/metrics` see new clusters (as
    /// never checked) before discovery reports that it has listed them.
    state: Arc<State>,
}

#[derive(Debug)]
struct Inner {
    statics: Vec<Arc<Cluster>>,
    schedule: Schedule,
    /// Discovery blocks in config order, with their last good listing (if any).
    discovered: Vec<(Discovery, Option<Vec<Arc<Cluster>>>)>,
}

impl Inventory {
    /// An inventory of `config`'s static clusters, with its discovery blocks still to report.
    pub(crate) fn new(config: &Config, state: Arc<State>) -> (Self, watch::Receiver<Plan>) {
        let inner = Inner {
            statics: config.clusters.clone(),
            schedule: Schedule::of(config),
            discovered: config.discovery.iter().map(|b| (b.clone(), None)).collect(),
        };
        let (plan, rx) = watch::channel(inner.plan());
        let inner = Mutex::new(inner);
        (Self { inner, plan, state }, rx)
    }

    fn update(&self, f: impl FnOnce(&mut Inner)) {
        let mut inner = crate::lock::lock(&self.inner);
        f(&mut inner);
        let plan = inner.plan();
        if *self.plan.borrow() == plan {
            // An unchanged listing or reload: nothing to sync, nothing to publish.
            return;
        }
        // The state first: the runner records only clusters the state holds.
        self.state.sync(&plan.clusters);
        self.plan.send_replace(plan);
    }

    /// After a reload: new static clusters, schedule and discovery blocks. Blocks that are still
    /// configured keep their last listing; removed blocks' clusters go.
    pub(crate) fn set_config(&self, config: &Config) {
        self.update(|inner| {
            inner.statics = config.clusters.clone();
            inner.schedule = Schedule::of(config);
            let old = std::mem::take(&mut inner.discovered);
            inner.discovered = (config.discovery.iter())
                .map(|b| {
                    // A block keeps its last listing; one whose filters (or refresh) changed
                    // starts from the old block's listing, filtered anew, so its unchanged
                    // clusters see no gap. (Filtering a kept listing again changes nothing.)
                    let accepted = |c: &&Arc<Cluster>| {
                        (c.info.as_ref())
                            .is_some_and(|i| b.accepts(&c.name, &i.status, &i.vpc_name))
                    };
                    let listing = (old.iter())
                        .filter_map(|(o, c)| Some((o, c.as_ref()?)).filter(|_| o.same_source(b)))
                        .min_by_key(|(o, _)| *o != b)
                        .map(|(_, c)| c.iter().filter(accepted).cloned().collect());
                    (b.clone(), listing)
                })
                .collect();
        });
    }

    /// A block's new listing.
    pub(crate) fn set_discovered(&self, block: &Discovery, clusters: Vec<Arc<Cluster>>) {
        self.update(|inner| {
            if let Some(entry) = inner.discovered.iter_mut().find(|(b, _)| b == block) {
                entry.1 = Some(clusters);
            }
        });
    }

    /// The plan as it stands.
    #[cfg(test)]
    fn plan(&self) -> Plan {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::merge;
    use std::path::Path;

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
                    endpoint: block.endpoint.clone(),
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
        let state = Arc::new(State::new(&c.clusters));
        let (inv, mut rx) = Inventory::new(&c, state.clone());
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
        let mut kr_only = c.clone();
        kr_only.discovery.truncate(1);
        inv.set_config(&kr_only);
        assert_eq!(rx.borrow_and_update().clusters.len(), 1);
        assert!(state.get("x").is_none(), "x and its series are gone");
    }

    #[test]
    fn a_block_with_new_filters_starts_from_the_old_listing() {
        let mut c = config();
        c.discovery.truncate(1);
        let state = Arc::new(State::new(&c.clusters));
        let (inv, _rx) = Inventory::new(&c, state.clone());
        let kr = &c.discovery[0];
        let mut listed = discovered(kr, &[("orders-a", 10), ("orders-b", 11)]);
        for (l, status) in listed.iter_mut().zip(["running", "changing"]) {
            Arc::make_mut(l).info = Some(crate::model::ClusterInfo {
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
        inv.set_config(&narrower);
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
