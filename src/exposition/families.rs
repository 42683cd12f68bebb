//! The catalogue: every metric family the exporter exposes, with its help text and type. The
//! README's metric table and the dashboards name these.

use prometheus::proto::MetricType;

/// One metric family: name, help and type, as the `# HELP` and `# TYPE` lines give them.
#[derive(Debug)]
pub(super) struct Family {
    /// The metric name.
    pub(super) name: &'static str,
    /// The `# HELP` text.
    pub(super) help: &'static str,
    /// Gauge or counter (whose name ends in `_total`).
    pub(super) kind: MetricType,
}

pub(super) const OK: Family = Family {
    name: "cdss_precheck_ok",
    help: "1 if the last periodic rollingRestartPreCheck said every node is ready (code 0, result true), else 0. 0 before the first precheck.",
    kind: MetricType::GAUGE,
};
pub(super) const DURATION: Family = Family {
    name: "cdss_precheck_duration_seconds",
    help: "Latency of the last periodic precheck, from sending the request to the last byte or the timeout.",
    kind: MetricType::GAUGE,
};
pub(super) const ERROR_CODE: Family = Family {
    name: "cdss_precheck_last_error_code",
    help: "Code of the last periodic precheck: the CDSS code (0 on ready and not ready), the API gateway errorCode (e.g. 200 auth, 420 rate limited), or -1 when no usable answer came.",
    kind: MetricType::GAUGE,
};
pub(super) const LAST_RUN: Family = Family {
    name: "cdss_precheck_last_run_timestamp_seconds",
    help: "Unix time the last periodic precheck finished, whatever its outcome.",
    kind: MetricType::GAUGE,
};
pub(super) const LAST_SUCCESS: Family = Family {
    name: "cdss_precheck_last_success_timestamp_seconds",
    help: "Unix time of the last periodic precheck that got an answer from CDSS (ready or not ready).",
    kind: MetricType::GAUGE,
};
pub(super) const RUNS: Family = Family {
    name: "cdss_precheck_runs_total",
    help: "Prechecks finished (each one is one API call).",
    kind: MetricType::COUNTER,
};
pub(super) const SCHEDULE_LAG: Family = Family {
    name: "cdss_precheck_schedule_lag_seconds",
    help: "How late the last periodic precheck started against its slot (waiting for a budget). Near 0 when the schedule keeps up.",
    kind: MetricType::GAUGE,
};
pub(super) const FAILURES: Family = Family {
    name: "cdss_precheck_failures_total",
    help: "Prechecks that got no answer from CDSS, by reason.",
    kind: MetricType::COUNTER,
};
pub(super) const CLUSTER_INFO: Family = Family {
    name: "cdss_cluster_info",
    help: "Always 1, one per prechecked cluster, labelled with what discovery reported (Kafka version, status, VPC; absent for static clusters); join on cluster and region.",
    kind: MetricType::GAUGE,
};
pub(super) const BROKERS_UP: Family = Family {
    name: "cdss_cluster_brokers_up",
    help: "Broker nodes up (getClusterStatus brokerNumber), when its status was read.",
    kind: MetricType::GAUGE,
};
pub(super) const BROKERS: Family = Family {
    name: "cdss_cluster_brokers",
    help: "Broker nodes in all (getClusterStatus brokerNodeTotalNumber), when its status was read.",
    kind: MetricType::GAUGE,
};
pub(super) const ZOOKEEPERS_UP: Family = Family {
    name: "cdss_cluster_zookeepers_up",
    help: "ZooKeeper nodes up (getClusterStatus zookeeperNumber), when its status was read.",
    kind: MetricType::GAUGE,
};
pub(super) const ZOOKEEPERS: Family = Family {
    name: "cdss_cluster_zookeepers",
    help: "ZooKeeper nodes in all (getClusterStatus zookeeperTotalNumber), when its status was read.",
    kind: MetricType::GAUGE,
};
pub(super) const ROLE_STATUS: Family = Family {
    name: "cdss_cluster_role_status",
    help: "Always 1: the overall status of the brokers, ZooKeeper and CMAK (green, yellow, orange, red, gray, or as it came), when the cluster's status was read.",
    kind: MetricType::GAUGE,
};
pub(super) const NODE_STATUS: Family = Family {
    name: "cdss_cluster_node_status",
    help: "Always 1: one per broker or ZooKeeper node getClusterStatus listed, with its status as it came (empty when missing) and failing=\"true\" when the exporter counts it as failing.",
    kind: MetricType::GAUGE,
};
pub(super) const STATUS_READ: Family = Family {
    name: "cdss_cluster_status_last_read_timestamp_seconds",
    help: "When getClusterStatus was last read for the cluster (only after a failing precheck, unless diagnosis.every_round).",
    kind: MetricType::GAUGE,
};
pub(super) const DISCOVERY_CLUSTERS: Family = Family {
    name: "cdss_discovery_clusters",
    help: "Clusters the discovery blocks of a region found on their last successful listing, after filters.",
    kind: MetricType::GAUGE,
};
pub(super) const DISCOVERY_LAST_SUCCESS: Family = Family {
    name: "cdss_discovery_last_success_timestamp_seconds",
    help: "Unix time of the last successful discovery listing in a region.",
    kind: MetricType::GAUGE,
};
pub(super) const DISCOVERY_FAILURES: Family = Family {
    name: "cdss_discovery_failures_total",
    help: "Discovery listings that failed in a region (the last known clusters were kept).",
    kind: MetricType::COUNTER,
};
pub(super) const API_REQUESTS: Family = Family {
    name: "cdss_exporter_api_requests_total",
    help: "Calls made to the NCP API, by account, operation and result (ok, or the failure reason).",
    kind: MetricType::COUNTER,
};
pub(super) const RELOAD_OK: Family = Family {
    name: "cdss_exporter_config_last_reload_successful",
    help: "1 if the last configuration reload succeeded (or none was tried), 0 if it failed and the previous configuration is still running.",
    kind: MetricType::GAUGE,
};
pub(super) const RELOAD_TIME: Family = Family {
    name: "cdss_exporter_config_last_reload_success_timestamp_seconds",
    help: "Unix time of the last successful configuration load (start-up counts).",
    kind: MetricType::GAUGE,
};
pub(super) const CREDENTIALS_EXPIRY: Family = Family {
    name: "cdss_exporter_credentials_expiry_timestamp_seconds",
    help: "Unix time the API keys of an account stop working (server role keys; absent for keys that do not expire). They are refreshed before then.",
    kind: MetricType::GAUGE,
};
pub(super) const CREDENTIALS_REFRESH_FAILURES: Family = Family {
    name: "cdss_exporter_credentials_refresh_failures_total",
    help: "Failed refreshes of an account's server role keys, or failed re-reads of its changed key files; the previous keys were kept.",
    kind: MetricType::COUNTER,
};
pub(super) const CLOCK_SKEW: Family = Family {
    name: "cdss_exporter_clock_skew_seconds",
    help: "The API gateway's clock (its Date header, 1 s resolution) minus this host's, from the last answer. NCP rejects requests more than 300 s off.",
    kind: MetricType::GAUGE,
};
pub(super) const CLUSTERS: Family = Family {
    name: "cdss_exporter_clusters",
    help: "Clusters this exporter prechecks.",
    kind: MetricType::GAUGE,
};
pub(super) const READY: Family = Family {
    name: "cdss_exporter_first_round_complete",
    help: "1 once every configured cluster has been prechecked at least once since start.",
    kind: MetricType::GAUGE,
};
pub(super) const INTERVAL: Family = Family {
    name: "cdss_exporter_precheck_interval_seconds",
    help: "Configured interval between two periodic prechecks of one cluster.",
    kind: MetricType::GAUGE,
};
pub(super) const BUILD_INFO: Family = Family {
    name: "cdss_exporter_build_info",
    help: "A metric with a constant '1' value labeled by version and revision of cdss-precheck-exporter.",
    kind: MetricType::GAUGE,
};

/// Every family: the collector's descriptors, which the registry checks.
pub(super) const ALL: [&Family; 29] = [
    &OK,
    &DURATION,
    &ERROR_CODE,
    &LAST_RUN,
    &LAST_SUCCESS,
    &RUNS,
    &SCHEDULE_LAG,
    &FAILURES,
    &CLUSTER_INFO,
    &BROKERS_UP,
    &BROKERS,
    &ZOOKEEPERS_UP,
    &ZOOKEEPERS,
    &ROLE_STATUS,
    &NODE_STATUS,
    &STATUS_READ,
    &DISCOVERY_CLUSTERS,
    &DISCOVERY_LAST_SUCCESS,
    &DISCOVERY_FAILURES,
    &API_REQUESTS,
    &RELOAD_OK,
    &RELOAD_TIME,
    &CREDENTIALS_EXPIRY,
    &CREDENTIALS_REFRESH_FAILURES,
    &CLOCK_SKEW,
    &CLUSTERS,
    &READY,
    &INTERVAL,
    &BUILD_INFO,
];
