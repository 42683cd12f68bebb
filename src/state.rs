//! The latest results: what the server, the gate and the exposition read.
//!
//! Holds the per-cluster record (last `Outcome`, timestamps, counters), the readiness latch
//! ("the first round has finished"), and the status of discovery and of config reloads. Each
//! fact has one writer, and everyone else only reads:
//! - the set of clusters: the inventory ([`State::sync`]); a removed cluster's record goes at
//!   once, so all its series vanish together; a kept one keeps its record;
//! - precheck results (periodic, fresh and `check`'s alike), the clock skew they show, and what
//!   `getClusterStatus` said: the scheduler's runner ([`State::record_run`],
//!   [`State::record_diagnosis`], [`State::clear_diagnosis`]);
//! - discovery listings: discovery ([`State::expect_discovery`], [`State::record_discovery`],
//!   [`State::retain_discovery`]);
//! - reload results: reload ([`State::record_reload`]).
//!
//! Whether NCP reports a cluster changing, and since when, is derived here from the three
//! inputs above (the listing's status, the last precheck, the last diagnosis) whenever one of
//! them is written, under the same lock: nobody else sets it.
//!
//! Readers never wait on I/O.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use crate::model::Cluster;
use crate::ncp::client::CallMeta;
use crate::ncp::cluster_status::Diagnosis;
use crate::ncp::precheck::Precheck;
use crate::ncp::region::Region;
use crate::outcome::{FailureReason, Outcome};

/// The last precheck of one cluster.
#[derive(Clone, Debug)]
pub(crate) struct LastPrecheck {
    /// How it ended.
    pub outcome: Outcome,
    /// How the call went: latency, request id (for NCP support tickets), the gateway's clock.
    pub meta: CallMeta,
    /// When it finished, on the (pausable) tokio clock: used for ages.
    pub at: Instant,
    /// When it finished, wall clock: used for timestamps people read.
    pub at_wall: SystemTime,
}

/// Everything known about one cluster.
#[derive(Clone, Debug)]
pub(crate) struct ClusterStatus {
    /// The cluster as planned: labels, number, target, and what discovery says about it (for
    /// `cdss_cluster_info`). Shared with the inventory and the scheduler, never copied.
    pub cluster: Arc<Cluster>,
    /// `None` until the first precheck finishes: "never checked", which never reads as ok.
    pub last: Option<LastPrecheck>,
    /// Wall time of the last precheck that got an answer from CDSS (ready or not ready).
    pub last_success: Option<SystemTime>,
    /// Prechecks finished.
    pub runs_total: u64,
    /// Prechecks that got no answer from CDSS, by reason (indexed by `FailureReason::index`).
    pub failures: [u64; FailureReason::ALL.len()],
    /// How late the last periodic precheck started against its slot (`None` before the first).
    pub schedule_lag: Option<Duration>,
    /// What `getClusterStatus` last said, and when (`None`: not read, or ready again since).
    /// Boxed: most clusters never have one, and 10,000 records stay small.
    pub diagnosis: Option<Box<(Diagnosis, SystemTime)>>,
    /// While NCP reports the cluster changing ([`crate::outcome::is_changing`]): the wall time
    /// the exporter first saw this change. `None` when it is not changing.
    pub changing_since: Option<SystemTime>,
}

impl ClusterStatus {
    /// A never-checked record for `c`.
    pub(crate) fn new(c: &Arc<Cluster>) -> Self {
        Self {
            cluster: c.clone(),
            last: None,
            last_success: None,
            runs_total: 0,
            failures: [0; FailureReason::ALL.len()],
            schedule_lag: None,
            diagnosis: None,
            changing_since: None,
        }
        .changed(SystemTime::now())
    }

    /// Whether NCP reports the cluster changing.
    pub(crate) fn is_changing(&self) -> bool {
        self.changing_since.is_some()
    }

    /// Recomputes `changing_since` after an input changed at `now`: a change already seen
    /// keeps its start, a new one starts now, and an ended one is forgotten.
    fn update_changing(&mut self, now: SystemTime) {
        let colours = self.diagnosis.as_deref().map(|(d, _)| {
            let [(_, b), (_, z)] = d.roles();
            [b.colour.as_deref(), z.colour.as_deref()]
        });
        let changing = crate::outcome::is_changing(
            self.cluster.info.as_ref().map(|i| i.status.as_str()),
            self.last.as_ref().map(|l| &l.outcome),
            colours.into_iter().flatten(),
        );
        self.changing_since = changing.then(|| self.changing_since.unwrap_or(now));
    }

    /// `self` after [`update_changing`](Self::update_changing).
    fn changed(mut self, now: SystemTime) -> Self {
        self.update_changing(now);
        self
    }
}

/// What one discovery block last did.
#[derive(Clone, Debug)]
pub(crate) struct DiscoveryStatus {
    /// The region it lists.
    pub region: Region,
    /// Clusters it found on its last successful listing (after filters).
    pub clusters: usize,
    /// Wall time of its last successful listing.
    pub last_success: Option<SystemTime>,
    /// Listings that failed (the last known set was kept).
    pub failures: u64,
}

/// The outcome of the last config reload.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReloadStatus {
    /// False after a failed reload, until the next successful one.
    pub successful: bool,
    /// Wall time of the last successful (re)load; start-up counts.
    pub last_success: SystemTime,
}

/// Shared state: one `ClusterStatus` per cluster being prechecked.
#[derive(Debug)]
pub struct State {
    /// Sorted by name so the exposition and the landing page are stable.
    clusters: RwLock<BTreeMap<String, ClusterStatus>>,
    /// By discovery block label (`KR/prod`).
    discovery: RwLock<BTreeMap<String, DiscoveryStatus>>,
    /// The last reload.
    reload: RwLock<ReloadStatus>,
    /// Latch: flips to true once every discovery block configured at start has reported once and
    /// every cluster known then has finished one precheck.
    ready: AtomicBool,
    /// The gateway's clock minus ours, from the last answer with a `Date` header: an `f64`'s
    /// bits, NaN before the first (an atomic, so recording a precheck takes one lock).
    clock_skew: AtomicU64,
    /// Discovery blocks that have not reported yet (for the latch).
    pending_discovery: RwLock<Vec<String>>,
}

impl State {
    /// State for these clusters, none of them checked yet.
    pub fn new(clusters: &[Arc<Cluster>]) -> Self {
        let map = clusters
            .iter()
            .map(|c| (c.name.clone(), ClusterStatus::new(c)))
            .collect();
        let s = Self {
            clusters: RwLock::new(map),
            discovery: RwLock::default(),
            reload: RwLock::new(ReloadStatus {
                successful: true,
                last_success: SystemTime::now(),
            }),
            ready: AtomicBool::new(false),
            pending_discovery: RwLock::default(),
            clock_skew: AtomicU64::new(f64::NAN.to_bits()),
        };
        s.update_ready();
        s
    }

    /// Records a finished precheck without a slot (tests and benchmarks); returns false if the
    /// cluster is not (or no longer) configured.
    pub fn record(
        &self,
        name: &str,
        precheck: &Precheck,
        at: Instant,
        at_wall: SystemTime,
    ) -> bool {
        self.record_run(name, precheck, at, at_wall, None)
    }

    /// [`record`](Self::record), with how late a periodic precheck started against its slot
    /// (`None` for fresh and `check` prechecks, which have no slot).
    pub(crate) fn record_run(
        &self,
        name: &str,
        precheck: &Precheck,
        at: Instant,
        at_wall: SystemTime,
        lag: Option<Duration>,
    ) -> bool {
        {
            let mut map = crate::lock::write(&self.clusters);
            let Some(status) = map.get_mut(name) else {
                return false;
            };
            status.runs_total += 1;
            if lag.is_some() {
                status.schedule_lag = lag;
            }
            match precheck.outcome.failure_reason() {
                None => status.last_success = Some(at_wall),
                Some(reason) => status.failures[reason.index()] += 1,
            }
            if let Some(skew) = precheck.meta.clock_skew {
                self.clock_skew.store(skew.to_bits(), Ordering::Release);
            }
            status.last = Some(LastPrecheck {
                outcome: precheck.outcome.clone(),
                meta: precheck.meta.clone(),
                at,
                at_wall,
            });
            status.update_changing(at_wall);
        }
        self.update_ready();
        true
    }

    /// Records what `getClusterStatus` said about a cluster.
    pub(crate) fn record_diagnosis(&self, name: &str, diagnosis: Diagnosis, at_wall: SystemTime) {
        if let Some(s) = crate::lock::write(&self.clusters).get_mut(name) {
            s.diagnosis = Some(Box::new((diagnosis, at_wall)));
            s.update_changing(at_wall);
        }
    }

    /// Forgets a cluster's diagnosis (it is ready again): its node series go.
    pub(crate) fn clear_diagnosis(&self, name: &str) {
        if let Some(s) = crate::lock::write(&self.clusters).get_mut(name) {
            s.diagnosis = None;
            s.update_changing(SystemTime::now());
        }
    }

    fn update_ready(&self) {
        if self.ready.load(Ordering::Acquire) {
            return;
        }
        if !crate::lock::read(&self.pending_discovery).is_empty() {
            return;
        }
        let map = crate::lock::read(&self.clusters);
        if map.values().all(|s| s.last.is_some()) {
            self.ready.store(true, Ordering::Release);
        }
    }

    /// Makes the cluster set exactly `clusters`: new ones start unchecked, removed ones are gone
    /// (with all their series), kept ones keep their record; a changed target (region, number,
    /// URL, account) counts as removed and added. Returns (added, removed) names.
    pub(crate) fn sync(&self, clusters: &[Arc<Cluster>]) -> (Vec<String>, Vec<String>) {
        let (added, removed) = {
            let mut map = crate::lock::write(&self.clusters);
            let removed = crate::plan::dropped(map.values().map(|s| &*s.cluster), clusters);
            for name in &removed {
                map.remove(name);
            }
            let mut added = Vec::new();
            for c in clusters {
                match map.get_mut(&c.name) {
                    // Same target; what discovery says about it may have changed.
                    Some(status) => {
                        status.cluster = c.clone();
                        status.update_changing(SystemTime::now());
                    }
                    None => {
                        map.insert(c.name.clone(), ClusterStatus::new(c));
                        added.push(c.name.clone());
                    }
                }
            }
            (added, removed)
        };
        if !added.is_empty() || !removed.is_empty() {
            self.update_ready();
        }
        (added, removed)
    }

    /// Holds the readiness latch until each of these discovery blocks has reported once.
    pub(crate) fn expect_discovery(&self, labels: Vec<String>) {
        *crate::lock::write(&self.pending_discovery) = labels;
        self.ready.store(false, Ordering::Release);
        self.update_ready();
    }

    /// Records a discovery listing: `Ok(n)` clusters found, or a failure (the set is kept).
    pub(crate) fn record_discovery(&self, label: &str, region: Region, result: Result<usize, ()>) {
        crate::lock::write(&self.pending_discovery).retain(|l| l != label);
        {
            let mut map = crate::lock::write(&self.discovery);
            let entry = map.entry(label.to_string()).or_insert(DiscoveryStatus {
                region,
                clusters: 0,
                last_success: None,
                failures: 0,
            });
            match result {
                Ok(n) => {
                    entry.clusters = n;
                    entry.last_success = Some(SystemTime::now());
                }
                Err(()) => entry.failures += 1,
            }
        }
        self.update_ready();
    }

    /// Forgets discovery blocks that are no longer configured.
    pub(crate) fn retain_discovery(&self, labels: &[String]) {
        crate::lock::write(&self.discovery).retain(|k, _| labels.contains(k));
    }

    /// A copy of every discovery block's status.
    pub(crate) fn discovery(&self) -> Vec<DiscoveryStatus> {
        crate::lock::read(&self.discovery)
            .values()
            .cloned()
            .collect()
    }

    /// The gateway's clock minus ours, in seconds, from the last answer that had a `Date`.
    pub(crate) fn clock_skew(&self) -> Option<f64> {
        let skew = f64::from_bits(self.clock_skew.load(Ordering::Acquire));
        (!skew.is_nan()).then_some(skew)
    }

    /// Records a config reload's result.
    pub(crate) fn record_reload(&self, successful: bool) {
        {
            let mut r = crate::lock::write(&self.reload);
            r.successful = successful;
            if successful {
                r.last_success = SystemTime::now();
            }
        }
    }

    /// The last reload's result.
    pub(crate) fn reload(&self) -> ReloadStatus {
        *crate::lock::read(&self.reload)
    }

    /// True once the first round of prechecks has finished (and forever after).
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Runs `f` over every cluster in name order, under a read lock (keep `f` cheap, no I/O).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&ClusterStatus)) {
        let map = crate::lock::read(&self.clusters);
        map.values().for_each(&mut f);
    }

    /// How many clusters there are.
    pub(crate) fn len(&self) -> usize {
        crate::lock::read(&self.clusters).len()
    }

    /// A copy of one cluster's status.
    pub(crate) fn get(&self, name: &str) -> Option<ClusterStatus> {
        crate::lock::read(&self.clusters).get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn clusters() -> Vec<Arc<Cluster>> {
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
            meta: CallMeta {
                latency: Duration::from_millis(5),
                request_id: None,
                retry_after: None,
                clock_skew: None,
                ..CallMeta::default()
            },
        }
    }

    #[tokio::test]
    async fn ready_latch_waits_for_every_cluster() {
        let s = State::new(&clusters());
        assert!(!s.is_ready());
        assert!(s.record(
            "a",
            &precheck(Outcome::NotReady),
            Instant::now(),
            SystemTime::now()
        ));
        assert!(!s.is_ready());
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

    #[test]
    fn sync_changes_only_what_changed() {
        let cs = clusters();
        let s = State::new(&cs);
        assert_eq!(s.sync(&cs), (vec![], vec![]));

        // What discovery says about "a" changed: same target, new record content.
        let mut a = (*cs[1]).clone();
        a.info = Some(crate::model::ClusterInfo {
            kafka_version: "3.5.1".into(),
            status: "running".into(),
            vpc_name: "v".into(),
        });
        let changed = vec![cs[0].clone(), Arc::new(a)];
        assert_eq!(s.sync(&changed), (vec![], vec![]));
        let info = s.get("a").unwrap().cluster.info.clone().unwrap();
        assert_eq!(info.kafka_version, "3.5.1");

        // "b" dropped, "c" added.
        let mut c = (*cs[0]).clone();
        c.name = "c".into();
        let next = vec![changed[1].clone(), Arc::new(c)];
        assert_eq!(
            s.sync(&next),
            (vec!["c".to_string()], vec!["b".to_string()])
        );
        assert!(s.get("b").is_none() && s.get("c").is_some());
    }

    fn diagnosis(broker: &str, zookeeper: &str) -> Diagnosis {
        let json = format!(
            r#"{{"code":0,"result":{{"brokerStatus":"{broker}","zookeeperStatus":"{zookeeper}"}}}}"#
        );
        crate::ncp::cluster_status::decode_answer(200, json.as_bytes()).unwrap()
    }

    fn listed(c: &Arc<Cluster>, status: &str) -> Arc<Cluster> {
        let mut c = (**c).clone();
        c.info = Some(crate::model::ClusterInfo {
            status: status.into(),
            ..Default::default()
        });
        Arc::new(c)
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn since(s: &State) -> Option<SystemTime> {
        s.get("a").unwrap().changing_since
    }

    #[tokio::test]
    async fn changing_from_an_orange_role_of_a_cluster_not_ready() {
        let s = State::new(&clusters());
        let now = Instant::now();
        assert_eq!(since(&s), None);
        s.record("a", &precheck(Outcome::NotReady), now, at(10));
        assert_eq!(since(&s), None, "not ready alone is no change");
        s.record_diagnosis("a", diagnosis("green", "ORANGE"), at(11));
        assert_eq!(since(&s), Some(at(11)));
        // Still changing: the start is kept across prechecks and reads.
        s.record("a", &precheck(Outcome::NotReady), now, at(20));
        s.record_diagnosis("a", diagnosis("orange", "green"), at(21));
        assert_eq!(since(&s), Some(at(11)));
        assert!(s.get("a").unwrap().is_changing());
        // A ready answer ends it, even before the diagnosis goes.
        s.record("a", &precheck(Outcome::Ready), now, at(30));
        assert_eq!(since(&s), None);
        s.clear_diagnosis("a");
        assert_eq!(since(&s), None);
        // A red role is a failure, not a change.
        s.record("a", &precheck(Outcome::NotReady), now, at(40));
        s.record_diagnosis("a", diagnosis("red", "green"), at(41));
        assert_eq!(since(&s), None);
        // Orange again: a new change, with its own start; it ends when the diagnosis goes.
        s.record_diagnosis("a", diagnosis("orange", "green"), at(50));
        assert_eq!(since(&s), Some(at(50)));
        s.clear_diagnosis("a");
        assert_eq!(since(&s), None);
        assert_eq!(s.get("b").unwrap().changing_since, None, "one cluster only");
    }

    #[tokio::test]
    async fn changing_from_the_listing() {
        let cs = clusters();
        let s = State::new(&[cs[0].clone(), listed(&cs[1], "Changing")]);
        let first = since(&s).expect("listed changing from the start");
        // A precheck, ready or not, does not end what the listing says.
        s.record("a", &precheck(Outcome::Ready), Instant::now(), at(10));
        assert_eq!(since(&s), Some(first));
        s.sync(&[cs[0].clone(), listed(&cs[1], "changing")]);
        assert_eq!(since(&s), Some(first), "the same change");
        s.sync(&[cs[0].clone(), listed(&cs[1], "running")]);
        assert_eq!(since(&s), None);
        // Listed changing again, while ready: changing; a static cluster never is by listing.
        s.sync(&[cs[0].clone(), listed(&cs[1], "changing")]);
        assert!(since(&s).is_some());
        s.sync(&cs);
        assert_eq!(since(&s), None);
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
        s.for_each(|c| names.push(c.cluster.name.clone()));
        assert_eq!(names, ["a", "b"]);
    }
}
