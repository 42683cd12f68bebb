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

/// One constant per family, and [`ALL`], every family in the order written here.
macro_rules! catalogue {
    ($($id:ident: $kind:ident $name:literal, $help:literal;)*) => {
        $(pub(super) const $id: Family = Family {
            name: $name,
            help: $help,
            kind: MetricType::$kind,
        };)*
        /// Every family.
        pub(super) const ALL: &[&Family] = &[$(&$id),*];
    };
}

catalogue! {
    OK: GAUGE "cdss_precheck_ok",
        "1 if the last periodic rollingRestartPreCheck said every node is ready (code 0, result true), else 0. 0 before the first precheck.";
    DURATION: GAUGE "cdss_precheck_duration_seconds",
        "Latency of the last periodic precheck, from sending the request to the last byte or the timeout.";
    ERROR_CODE: GAUGE "cdss_precheck_last_error_code",
        "Code of the last periodic precheck: the CDSS code (0 on ready and not ready), the API gateway errorCode (e.g. 200 auth, 420 rate limited), or -1 when no usable answer came.";
    LAST_RUN: GAUGE "cdss_precheck_last_run_timestamp_seconds",
        "Unix time the last periodic precheck finished, whatever its outcome.";
    LAST_SUCCESS: GAUGE "cdss_precheck_last_success_timestamp_seconds",
        "Unix time of the last periodic precheck that got an answer from CDSS (ready or not ready).";
    RUNS: COUNTER "cdss_precheck_runs_total",
        "Prechecks finished (each one is one API call).";
    SCHEDULE_LAG: GAUGE "cdss_precheck_schedule_lag_seconds",
        "How late the last periodic precheck started against its slot (waiting for a budget). Near 0 when the schedule keeps up.";
    FAILURES: COUNTER "cdss_precheck_failures_total",
        "Prechecks that got no answer from CDSS, by reason.";
    CLUSTER_INFO: GAUGE "cdss_cluster_info",
        "Always 1, one per prechecked cluster, labelled with what discovery reported (Kafka version, status, VPC; absent for static clusters); join on cluster and region.";
    BROKERS_UP: GAUGE "cdss_cluster_brokers_up",
        "Broker nodes up (getClusterStatus brokerNumber), when its status was read.";
    BROKERS: GAUGE "cdss_cluster_brokers",
        "Broker nodes in all (getClusterStatus brokerNodeTotalNumber), when its status was read.";
    ZOOKEEPERS_UP: GAUGE "cdss_cluster_zookeepers_up",
        "ZooKeeper nodes up (getClusterStatus zookeeperNumber), when its status was read.";
    ZOOKEEPERS: GAUGE "cdss_cluster_zookeepers",
        "ZooKeeper nodes in all (getClusterStatus zookeeperTotalNumber), when its status was read.";
    ROLE_STATUS: GAUGE "cdss_cluster_role_status",
        "Always 1: the overall status of the brokers, ZooKeeper and CMAK (green, yellow, orange, red, gray, or as it came), when the cluster's status was read.";
    NODE_STATUS: GAUGE "cdss_cluster_node_status",
        "Always 1: one per broker or ZooKeeper node getClusterStatus listed, with its status as it came (empty when missing) and failing=\"true\" when the exporter counts it as failing.";
    CHANGING: GAUGE "cdss_cluster_changing",
        "1 while NCP reports the cluster changing (a restart or another change: the listing's serverStatus is changing, or the precheck says no and getClusterStatus shows a role orange), else 0.";
    CHANGING_SINCE: GAUGE "cdss_cluster_changing_since_timestamp_seconds",
        "Unix time the exporter first saw the cluster's current change; present only while cdss_cluster_changing is 1.";
    STATUS_READ: GAUGE "cdss_cluster_status_last_read_timestamp_seconds",
        "When getClusterStatus was last read for the cluster (only after a failing precheck, unless diagnosis.every_round).";
    DISCOVERY_CLUSTERS: GAUGE "cdss_discovery_clusters",
        "Clusters the discovery blocks of a region found on their last successful listing, after filters.";
    DISCOVERY_LAST_SUCCESS: GAUGE "cdss_discovery_last_success_timestamp_seconds",
        "Unix time of the last successful discovery listing in a region.";
    DISCOVERY_FAILURES: COUNTER "cdss_discovery_failures_total",
        "Discovery listings that failed in a region (the last known clusters were kept).";
    API_REQUESTS: COUNTER "cdss_exporter_api_requests_total",
        "Calls made to the NCP API, by account, operation and result (ok, or the failure reason).";
    RELOAD_OK: GAUGE "cdss_exporter_config_last_reload_successful",
        "1 if the last configuration reload succeeded (or none was tried), 0 if it failed and the previous configuration is still running.";
    RELOAD_TIME: GAUGE "cdss_exporter_config_last_reload_success_timestamp_seconds",
        "Unix time of the last successful configuration load (start-up counts).";
    CREDENTIALS_EXPIRY: GAUGE "cdss_exporter_credentials_expiry_timestamp_seconds",
        "Unix time the API keys of an account stop working (server role keys; absent for keys that do not expire). They are refreshed before then.";
    CREDENTIALS_REFRESH_FAILURES: COUNTER "cdss_exporter_credentials_refresh_failures_total",
        "Failed refreshes of an account's server role keys, or failed re-reads of its changed key files; the previous keys were kept.";
    CLOCK_SKEW: GAUGE "cdss_exporter_clock_skew_seconds",
        "The API gateway's clock (its Date header, 1 s resolution) minus this host's, from the last answer. NCP rejects requests more than 300 s off.";
    CLUSTERS: GAUGE "cdss_exporter_clusters",
        "Clusters this exporter prechecks.";
    READY: GAUGE "cdss_exporter_first_round_complete",
        "1 once every configured cluster has been prechecked at least once since start.";
    INTERVAL: GAUGE "cdss_exporter_precheck_interval_seconds",
        "Configured interval between two periodic prechecks of one cluster.";
    BUILD_INFO: GAUGE "cdss_exporter_build_info",
        "A metric with a constant '1' value labeled by version and revision of cdss-precheck-exporter.";
}
