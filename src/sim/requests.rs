//! The gateway's log of every request it received, in order, so tests can prove who called
//! what (the daemon never a mutating operation). Bounded: it keeps the last
//! [`MAX_LOGGED_REQUESTS`], so a long `--demo` does not grow without end.

use std::collections::VecDeque;

/// How many requests the log keeps (the oldest go first).
const MAX_LOGGED_REQUESTS: usize = 100_000;

/// Operations that only read: every other one (unknown paths too) counts as mutating.
const READ_ONLY: [&str; 6] = [
    "rollingRestartPreCheck",
    "getClusterStatus",
    "getClusterInfoList",
    "rollingRestartProgressCheck",
    "rollingUpgradePreCheck",
    "rollingUpgradeProgressCheck",
];

/// One request the gateway received.
#[derive(Clone, PartialEq, Eq)]
pub struct SimRequest {
    /// HTTP method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The operation the path names (`rollingRestart`, `getClusterStatus`...), or its last
    /// segment when the gateway does not know it.
    pub operation: String,
    /// The `x-ncp-iam-access-key` header, when sent (who called).
    pub access_key: Option<String>,
    /// The cluster number, when the path or a readable body named one.
    pub instance_no: Option<u64>,
}

impl SimRequest {
    /// Whether the operation may change something at NCP: anything not known to only read.
    pub fn is_mutating(&self) -> bool {
        !READ_ONLY.contains(&self.operation.as_str())
    }
}

impl std::fmt::Debug for SimRequest {
    // The access key is left out: no key byte in Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("operation", &self.operation)
            .field("access_key", &self.access_key.as_ref().map(|_| "<set>"))
            .field("instance_no", &self.instance_no)
            .finish()
    }
}

/// The operation a path names: the known operations by name, else the last segment.
pub(super) fn operation(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        [.., "cluster", "getClusterStatus", _] => "getClusterStatus".into(),
        [.., last] => (*last).into(),
        [] => String::new(),
    }
}

/// The last requests, oldest first, with the sequence number of the first one kept.
#[derive(Debug, Default)]
pub(super) struct RequestLog {
    dropped: u64,
    entries: VecDeque<SimRequest>,
}

impl RequestLog {
    /// Appends a request; returns its sequence number (for [`RequestLog::set_instance`]).
    pub(super) fn push(&mut self, request: SimRequest) -> u64 {
        if self.entries.len() == MAX_LOGGED_REQUESTS {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.entries.push_back(request);
        self.dropped + self.entries.len() as u64 - 1
    }

    /// Records the cluster number of request `seq` once its body is read (if still kept).
    pub(super) fn set_instance(&mut self, seq: u64, instance_no: u64) {
        if let Some(i) = seq.checked_sub(self.dropped) {
            if let Some(r) = self.entries.get_mut(i as usize) {
                r.instance_no = Some(instance_no);
            }
        }
    }

    /// The kept requests, oldest first.
    pub(super) fn all(&self) -> Vec<SimRequest> {
        self.entries.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str) -> SimRequest {
        SimRequest {
            method: "POST".into(),
            path: path.into(),
            operation: operation(path),
            access_key: Some("AK-SECRETISH".into()),
            instance_no: None,
        }
    }

    #[test]
    fn operations_and_what_mutates() {
        let op = |p: &str| request(p).operation;
        assert_eq!(op("/api/v1/cluster/rollingRestart"), "rollingRestart");
        assert_eq!(
            op("/api/v1/cluster/getClusterStatus/42"),
            "getClusterStatus"
        );
        assert_eq!(
            op("/api/sgn-v1/cluster/getClusterInfoList"),
            "getClusterInfoList"
        );
        assert_eq!(op("/api/v1/cluster/deleteCluster"), "deleteCluster");
        assert_eq!(op("/"), "");
        for p in [
            "/api/v1/cluster/rollingRestartPreCheck",
            "/api/v1/cluster/getClusterStatus/42",
            "/api/krs-v1/cluster/getClusterInfoList",
            "/api/v1/cluster/rollingRestartProgressCheck",
            "/api/v1/cluster/rollingUpgradePreCheck",
        ] {
            assert!(!request(p).is_mutating(), "{p}");
        }
        for p in [
            "/api/v1/cluster/rollingRestart",
            "/api/v1/cluster/rollingUpgrade",
            "/api/v1/cluster/deleteCluster",
            "/",
        ] {
            assert!(request(p).is_mutating(), "{p}");
        }
        let debug = format!("{:?}", request("/x"));
        assert!(!debug.contains("AK-SECRETISH"), "{debug}");
    }

    #[test]
    fn the_log_keeps_the_last_requests_in_order() {
        let mut log = RequestLog::default();
        for i in 0..MAX_LOGGED_REQUESTS + 5 {
            let seq = log.push(request(&format!("/p/{i}")));
            assert_eq!(seq, i as u64);
        }
        // Request 3 is gone; 7 is kept and gets its number.
        log.set_instance(3, 33);
        log.set_instance(7, 77);
        let all = log.all();
        assert_eq!(all.len(), MAX_LOGGED_REQUESTS);
        assert_eq!(all[0].path, "/p/5");
        assert_eq!(all[2].instance_no, Some(77));
        assert!(
            all.iter()
                .all(|r| r.path == "/p/7" || r.instance_no.is_none())
        );
        assert_eq!(all.last().map(|r| r.path.as_str()), Some("/p/100004"));
    }
}
