//! Cluster discovery: list every page of `getClusterInfoList` for each `discovery:` block on its
//! `refresh`, filter, and hand the result to the inventory.
//!
//! A failed listing (any page) keeps the last known set, counts a failure, and is retried at the
//! next refresh; it never empties the set. Malformed items are logged by index and skipped; the
//! good ones are kept. The [`Supervisor`] starts, keeps or stops one task per block as reloads
//! change the config. Discovery writes only what it owns in the state (which blocks are expected,
//! what each last listed); the cluster set changes through the inventory.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use crate::config::Discovery;
use crate::inventory::Inventory;
use crate::model::{Cluster, ClusterInfo};
use crate::ncp::client::{Clients, SharedClients};
use crate::ncp::cluster_list::{self, ListError, ListRequest};
use crate::state::State;

/// Most pages read in one listing: a guard against a gateway that never says "last page".
pub(crate) const MAX_PAGES: u32 = 10_000;

/// Lists every page and returns the filtered clusters (each cluster number once).
pub(crate) async fn list(
    clients: &Clients,
    block: &Discovery,
) -> Result<Vec<Arc<Cluster>>, ListError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for page_no in 1..=MAX_PAGES {
        let request = ListRequest {
            vpc_name: block.vpc_name.as_deref(),
            page_no,
            page_size: block.page_size,
        };
        let page = cluster_list::page(clients, &block.account, &block.endpoint, &request).await?;
        for problem in &page.malformed {
            tracing::warn!(discovery = %block.label(), page = page_no, "skipping a malformed cluster: {problem}");
        }
        let empty = page.clusters.is_empty() && page.malformed.is_empty();
        for c in page.clusters {
            let accepted = block.accepts(&c.cluster_name, &c.server_status, &c.vpc_name);
            if !seen.insert(c.service_group_instance_no) || !accepted {
                continue;
            }
            out.push(Arc::new(Cluster {
                name: c.cluster_name,
                region: block.region,
                service_group_instance_no: c.service_group_instance_no,
                endpoint: block.endpoint.clone(),
                account: block.account.clone(),
                info: Some(ClusterInfo {
                    kafka_version: c.kafka_version,
                    status: c.server_status,
                    vpc_name: c.vpc_name,
                }),
            }));
        }
        // Stop on isLast, on totalPage, or on an empty page (a gateway that never says "last").
        if page.is_last == Some(true)
            || page.total_page.is_some_and(|t| u64::from(page_no) >= t)
            || empty
        {
            break;
        }
    }
    Ok(out)
}

/// Lists `block` every `refresh` (through the supervisor's clients, into its inventory and
/// state) until the task is aborted.
async fn run_block(block: Discovery, supervisor: Arc<Supervisor>) {
    let label = block.label();
    loop {
        let listed = (list(&supervisor.clients.current(), &block).await)
            .inspect_err(|e| tracing::warn!(discovery = %label, error = %e, "discovery failed; keeping the last known clusters"))
            .map(|clusters| {
                let n = clusters.len();
                tracing::info!(discovery = %label, clusters = n, "discovery listed clusters");
                // Inventory first: the state must know the new clusters before the readiness
                // latch hears that this block has reported.
                supervisor.inventory.set_discovered(&block, clusters);
                n
            })
            .map_err(|_| ());
        supervisor
            .state
            .record_discovery(&label, block.region, listed);
        tokio::time::sleep(block.refresh).await;
    }
}

/// One discovery task per configured block.
#[derive(Debug)]
pub(crate) struct Supervisor {
    clients: SharedClients,
    inventory: Arc<Inventory>,
    state: Arc<State>,
    tasks: Mutex<HashMap<Discovery, JoinHandle<()>>>,
}

impl Supervisor {
    /// A supervisor with no blocks running yet; the state's readiness waits for each of
    /// `blocks` to report once.
    pub(crate) fn new(
        blocks: &[Discovery],
        clients: SharedClients,
        inventory: Arc<Inventory>,
        state: Arc<State>,
    ) -> Self {
        state.expect_discovery(blocks.iter().map(Discovery::label).collect());
        Self {
            clients,
            inventory,
            state,
            tasks: Mutex::default(),
        }
    }

    /// Runs exactly `blocks`: unchanged blocks keep running, removed ones stop, new ones start
    /// (and list at once).
    pub(crate) fn set_blocks(self: &Arc<Self>, blocks: &[Discovery]) {
        let mut tasks = crate::lock::lock(&self.tasks);
        tasks.retain(|b, handle| {
            let keep = blocks.contains(b);
            if !keep {
                handle.abort();
            }
            keep
        });
        for b in blocks {
            let run = || tokio::spawn(run_block(b.clone(), self.clone()));
            tasks.entry(b.clone()).or_insert_with(run);
        }
        self.state
            .retain_discovery(&blocks.iter().map(Discovery::label).collect::<Vec<_>>());
    }

    /// Stops every block.
    pub(crate) fn stop(&self) {
        (crate::lock::lock(&self.tasks).drain()).for_each(|(_, handle)| handle.abort());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::ncp::cluster_list::ListedCluster;
    use std::path::Path;

    fn block(extra: &str) -> Discovery {
        Config::parse(
            &format!("discovery:\n  - region: KR\n{extra}"),
            Path::new("t"),
        )
        .unwrap()
        .discovery
        .remove(0)
    }

    fn keep(block: &Discovery, c: &ListedCluster) -> bool {
        block.accepts(&c.cluster_name, &c.server_status, &c.vpc_name)
    }

    fn listed(name: &str, status: &str) -> ListedCluster {
        ListedCluster {
            service_group_instance_no: 1,
            cluster_name: name.into(),
            server_status: status.into(),
            kafka_version: "3.5.1".into(),
            vpc_name: "prod-vpc".into(),
        }
    }

    #[test]
    fn filters() {
        let b = block("    name_regex: '^orders-'\n    exclude_regex: '-tmp$'\n");
        assert!(keep(&b, &listed("orders-kafka", "running")));
        assert!(!keep(&b, &listed("payments-kafka", "running")));
        assert!(!keep(&b, &listed("orders-tmp", "running")));
        assert!(
            !keep(&b, &listed("orders-kafka", "deleting")),
            "default statuses drop deleting"
        );
        assert!(!keep(&b, &listed("orders-kafka", "return")));
        assert!(keep(&b, &listed("orders-kafka", "changing")));
        let b = block("    statuses: [running]\n    vpc_name: other-vpc\n");
        assert!(!keep(&b, &listed("x", "running")), "vpc must match");
        let b = block("    statuses: [Running]\n");
        assert!(keep(&b, &listed("x", "running")));
        assert!(!keep(&b, &listed("x", "error")));
    }
}
