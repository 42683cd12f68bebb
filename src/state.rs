//! The latest precheck result per cluster: what the server and the metrics read.
//!
//! Owns the per-cluster record (last `Outcome`, timestamps, counters) and the readiness latch
//! ("the first round has finished"). Writers are the scheduler only; readers never wait on I/O.
//! A generation number changes on every write, so readers can cache what they derive.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::config::Cluster;
use crate::ncp::cdss::Precheck;
use crate::ncp::region::Region;
use crate::outcome::{FailureReason, Outcome};

/// The last precheck of one cluster.
#[derive(Clone, Debug)]
pub struct LastPrecheck {
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took, send to last body byte (or to the timeout).
    pub latency: Duration,
    /// When it finished, on the (pausable) tokio clock: used for ages.
    pub at: Instant,
    /// When it finished, wall clock: used for timestamps people read.
    pub at_wall: SystemTime,
    /// `requestId` from the body or `x-ncp-apigw-request-id`, for NCP support tickets.
    pub request_id: Option<String>,
}

/// Everything known about one cluster.
#[derive(Clone, Debug)]
pub struct ClusterStatus {
    /// The `cluster` label.
    pub name: String,
    /// The `region` label.
    pub region: Region,
    /// The cluster number the precheck asks about.
    pub service_group_instance_no: u64,
    /// `None` until the first precheck finishes: "never checked", which never reads as ok.
    pub last: Option<LastPrecheck>,
    /// Wall time of the last precheck that got an answer from CDSS (ready or not ready).
    pub last_success: Option<SystemTime>,
    /// Prechecks finished.
    pub runs_total: u64,
    /// Prechecks that got no answer from CDSS, by reason (indexed by `FailureReason::index`).
    pub failures: [u64; FailureReason::ALL.len()],
}

impl ClusterStatus {
    fn new(c: &Cluster) -> Self {
        Self {
            name: c.name.clone(),
            region: c.region,
            service_group_instance_no: c.service_group_instance_no,
            last: None,
            last_success: None,
            runs_total: 0,
            failures: [0; FailureReason::ALL.len()],
        }
    }
}

/// Shared state: one `ClusterStatus` per configured cluster.
#[derive(Debug)]
pub struct State {
    /// Sorted by name so the exposition and the landing page are stable.
    clusters: RwLock<BTreeMap<String, ClusterStatus>>,
    /// Bumped on every change; lets readers cache derived output.
    generation: AtomicU64,
    /// Latch: flips to true once every cluster configured at start has finished one precheck.
    ready: AtomicBool,
}

impl State {
    /// State for these clusters, none of them checked yet.
    pub fn new(clusters: &[Cluster]) -> Self {
        let map = clusters
            .iter()
            .map(|c| (c.name.clone(), ClusterStatus::new(c)))
            .collect();
        let s = Self {
            clusters: RwLock::new(map),
            generation: AtomicU64::new(0),
            ready: AtomicBool::new(false),
        };
        s.update_ready();
        s
    }

    /// Records a finished precheck; returns false if the cluster is not (or no longer) configured.
    pub fn record(
        &self,
        name: &str,
        precheck: &Precheck,
        at: Instant,
        at_wall: SystemTime,
    ) -> bool {
        {
            let mut map = self
                .clusters
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let Some(status) = map.get_mut(name) else {
                return false;
            };
            status.runs_total += 1;
            match precheck.outcome.failure_reason() {
                None => status.last_success = Some(at_wall),
                Some(reason) => status.failures[reason.index()] += 1,
            }
            status.last = Some(LastPrecheck {
                outcome: precheck.outcome.clone(),
                latency: precheck.latency,
                at,
                at_wall,
                request_id: precheck.request_id.clone(),
            });
        }
        self.generation.fetch_add(1, Ordering::Release);
        self.update_ready();
        true
    }

    fn update_ready(&self) {
        if self.ready.load(Ordering::Acquire) {
            return;
        }
        let map = self.clusters.read().unwrap_or_else(PoisonError::into_inner);
        if map.values().all(|s| s.last.is_some()) {
            self.ready.store(true, Ordering::Release);
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// True once the first round of prechecks has finished (and forever after).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Changes whenever anything readable here changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Runs `f` over every cluster in name order, under a read lock (keep `f` cheap, no I/O).
    pub fn for_each(&self, mut f: impl FnMut(&ClusterStatus)) {
        let map = self.clusters.read().unwrap_or_else(PoisonError::into_inner);
        map.values().for_each(&mut f);
    }

    /// A copy of one cluster's status.
    pub fn get(&self, name: &str) -> Option<ClusterStatus> {
        self.clusters
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Number of clusters.
    pub fn len(&self) -> usize {
        self.clusters
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// True when no cluster is configured.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn clusters() -> Vec<Cluster> {
        Config::parse(
            "clusters:\n  - {name: b, region: KR, service_group_instance_no: 2}\n  - {name: a, region: SGN, service_group_instance_no: 1}\n",
            Path::new("t"),
        )
        .unwrap()
        .clusters
    }

    fn precheck(outcome: Outcome) -> Precheck {
        Precheck {
            outcome,
            latency: Duration::from_millis(5),
            request_id: None,
            retry_after: None,
            server_date: None,
        }
    }

    #[tokio::test]
    async fn ready_latch_waits_for_every_cluster() {
        let s = State::new(&clusters());
        assert!(!s.is_ready());
        let g0 = s.generation();
        assert!(s.record(
            "a",
            &precheck(Outcome::NotReady),
            Instant::now(),
            SystemTime::now()
        ));
        assert!(!s.is_ready());
        assert!(s.generation() > g0);
        assert!(s.record(
            "b",
            &precheck(Outcome::Timeout {
                after: Duration::from_secs(1)
            }),
            Instant::now(),
            SystemTime::now()
        ));
        assert!(s.is_ready());
        assert!(!s.record(
            "zzz",
            &precheck(Outcome::Ready),
            Instant::now(),
            SystemTime::now()
        ));
    }

    #[tokio::test]
    async fn counters_and_success_time() {
        let s = State::new(&clusters());
        s.record(
            "a",
            &precheck(Outcome::Ready),
            Instant::now(),
            SystemTime::now(),
        );
        s.record(
            "a",
            &precheck(Outcome::Timeout {
                after: Duration::from_secs(1),
            }),
            Instant::now(),
            SystemTime::now(),
        );
        let a = s.get("a").unwrap();
        assert_eq!(a.runs_total, 2);
        assert_eq!(a.failures[FailureReason::Timeout.index()], 1);
        assert!(a.last_success.is_some());
        let mut names = vec![];
        s.for_each(|c| names.push(c.name.clone()));
        assert_eq!(names, ["a", "b"]);
    }
}
