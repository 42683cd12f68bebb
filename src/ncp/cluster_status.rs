//! `getClusterStatus`: why a cluster is not ready, node by node.
//!
//! `GET {base}/cluster/getClusterStatus/{serviceGroupInstanceNo}`, no body, signed like every call
//! (the path with the number), through [`Clients::call`]: the same keys, timeout, body cap,
//! redirect policy and envelope as the precheck. This module builds the URL and decodes `result`
//! (`ncp-api.md`, "getClusterStatus"): counts are integers, everything else a string, and any
//! field may be missing. A missing field stays absent (never 0), an unknown colour or node status
//! is kept as it came, and a malformed node entry is skipped, never a failure of the whole answer.

use reqwest::{Method, Url};
use serde_json::Value;

use crate::model::Cluster;
use crate::ncp::client::{Clients, Request};
use crate::ncp::envelope::{self, Opened};
use crate::ncp::usage::Operation;
use crate::outcome::Outcome;

/// Path of the operation below a region's base path (the cluster number follows).
pub const CLUSTER_STATUS_PATH: &str = "/cluster/getClusterStatus/";
/// Most nodes kept per role: hostnames become label values, so their number is bounded.
pub const MAX_NODES: usize = 64;
/// Longest hostname kept (a DNS name); longer ones are cut.
pub const MAX_HOSTNAME: usize = 253;

/// One node of a role, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// `hostname`.
    pub hostname: String,
    /// `status`, as it came (its values are not documented).
    pub status: String,
}

impl NodeStatus {
    /// True unless the status says the node is fine. The values are not documented; the
    /// colours' healthy one (`green`) and the usual words for a running node count as fine, and
    /// anything else, unknown words included, is shown as failing.
    pub fn is_failing(&self) -> bool {
        !matches!(
            self.status.to_ascii_lowercase().as_str(),
            "green" | "running" | "normal" | "ok" | "up" | "healthy"
        )
    }
}

/// Brokers or ZooKeeper nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleStatus {
    /// Nodes up (`brokerNumber`, `zookeeperNumber`).
    pub up: Option<i64>,
    /// Nodes in all (`brokerNodeTotalNumber`, `zookeeperTotalNumber`).
    pub total: Option<i64>,
    /// The role's colour (`green`, `yellow`, `orange`, `red`, `gray`, or whatever comes).
    pub colour: Option<String>,
    /// Per-node status, in the order listed.
    pub nodes: Vec<NodeStatus>,
}

/// What `getClusterStatus` says about a cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnosis {
    /// The brokers.
    pub brokers: RoleStatus,
    /// The ZooKeeper nodes.
    pub zookeeper: RoleStatus,
    /// `cmakStatus`, as it came.
    pub cmak: Option<String>,
}

/// A role's label value.
pub const ROLES: [&str; 2] = ["broker", "zookeeper"];

impl Diagnosis {
    /// (role label, role) for both roles.
    pub fn roles(&self) -> [(&'static str, &RoleStatus); 2] {
        [(ROLES[0], &self.brokers), (ROLES[1], &self.zookeeper)]
    }

    /// Every failing node, with its role.
    pub fn failing_nodes(&self) -> impl Iterator<Item = (&'static str, &NodeStatus)> {
        self.roles()
            .into_iter()
            .flat_map(|(role, r)| r.nodes.iter().map(move |n| (role, n)))
            .filter(|(_, n)| n.is_failing())
    }

    /// One line for people: the failing nodes, then the counts, e.g. "broker kafka-2 is red;
    /// 2 of 3 brokers up; 3 of 3 zookeepers up".
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .failing_nodes()
            .map(|(role, n)| format!("{role} {} is {}", n.hostname, n.status))
            .collect();
        for (role, r) in self.roles() {
            match (r.up, r.total) {
                (Some(up), Some(total)) => parts.push(format!("{up} of {total} {role}s up")),
                (None, None) => {}
                (up, total) => parts.push(format!(
                    "{} of {} {role}s up",
                    up.map_or("?".into(), |n| n.to_string()),
                    total.map_or("?".into(), |n| n.to_string())
                )),
            }
        }
        if let Some(cmak) = &self.cmak {
            parts.push(format!("CMAK {cmak}"));
        }
        if parts.is_empty() {
            "getClusterStatus said nothing about the nodes".into()
        } else {
            parts.join("; ")
        }
    }
}

/// The operation's URL for cluster number `no` below a precheck URL's region base.
pub fn url(precheck: &Url, no: u64) -> Option<Url> {
    let base = precheck
        .as_str()
        .strip_suffix(crate::ncp::region::PRECHECK_PATH)?;
    Url::parse(&format!("{base}{CLUSTER_STATUS_PATH}{no}")).ok()
}

/// Reads `cluster`'s status now. `Err` is the outcome of a call that got no usable answer.
pub async fn cluster_status(clients: &Clients, cluster: &Cluster) -> Result<Diagnosis, Outcome> {
    let Some(url) = url(
        &cluster.endpoint.precheck,
        cluster.service_group_instance_no,
    ) else {
        return Err(Outcome::InvalidResponse {
            http_status: 0,
            detail: format!(
                "no getClusterStatus URL below {}",
                cluster.endpoint.precheck
            ),
        });
    };
    let request = Request {
        operation: Operation::ClusterStatus,
        method: &Method::GET,
        url: &url,
        body: None,
    };
    decode(clients.call(&cluster.account, request).await.opened)
}

/// Decodes a complete answer (status and body, no `Content-Type`).
pub fn decode_answer(http_status: u16, body: &[u8]) -> Result<Diagnosis, Outcome> {
    decode(envelope::open(http_status, None, None, body))
}

fn decode(opened: Opened) -> Result<Diagnosis, Outcome> {
    let http_status = opened.http_status;
    let value = opened.result?;
    let Some(result) = value.as_object() else {
        return Err(Outcome::InvalidResponse {
            http_status,
            detail: "`result` is not a cluster status".into(),
        });
    };
    let text = |key: &str| result.get(key).and_then(Value::as_str).map(str::to_owned);
    let count = |key: &str| result.get(key).and_then(number);
    let nodes = |key: &str| match result.get(key) {
        Some(Value::Array(items)) => {
            // One series per hostname: a name listed twice keeps its first entry.
            let mut seen = std::collections::HashSet::new();
            items
                .iter()
                .filter_map(node)
                .filter(|n| seen.insert(n.hostname.clone()))
                .take(MAX_NODES)
                .collect()
        }
        _ => Vec::new(),
    };
    Ok(Diagnosis {
        brokers: RoleStatus {
            up: count("brokerNumber"),
            total: count("brokerNodeTotalNumber"),
            colour: text("brokerStatus"),
            nodes: nodes("brokerStatusPerNode"),
        },
        zookeeper: RoleStatus {
            up: count("zookeeperNumber"),
            total: count("zookeeperTotalNumber"),
            colour: text("zookeeperStatus"),
            nodes: nodes("zookeeperStatusPerNode"),
        },
        cmak: text("cmakStatus"),
    })
}

/// An integer, or a string holding one (tolerated: the SDK types them int32, but NCP's JSON types
/// vary elsewhere).
fn number(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn node(v: &Value) -> Option<NodeStatus> {
    let obj = v.as_object()?;
    let hostname: String = obj
        .get("hostname")
        .and_then(Value::as_str)
        .filter(|h| !h.trim().is_empty())?
        .chars()
        .take(MAX_HOSTNAME)
        .collect();
    let status = obj
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Some(NodeStatus { hostname, status })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::FailureReason;

    const SDK_SHAPED: &str = r#"{"code":0,"message":"SUCCESS","requestId":"r","result":{
        "clusterName":"orders-kafka",
        "brokerNodeTotalNumber":3,"brokerNumber":2,"brokerStatus":"red",
        "brokerStatusPerNode":[{"hostname":"kafka-1","status":"green"},{"hostname":"kafka-2","status":"red"},{"hostname":"kafka-3","status":"green"}],
        "zookeeperTotalNumber":3,"zookeeperNumber":3,"zookeeperStatus":"green",
        "zookeeperStatusPerNode":[{"hostname":"zk-1","status":"green"}],
        "cmakStatus":"running"}}"#;

    #[test]
    fn decodes_the_sdk_shape() {
        let d = decode_answer(200, SDK_SHAPED.as_bytes()).unwrap();
        assert_eq!(d.brokers.up, Some(2));
        assert_eq!(d.brokers.total, Some(3));
        assert_eq!(d.brokers.colour.as_deref(), Some("red"));
        assert_eq!(d.brokers.nodes.len(), 3);
        assert_eq!(d.zookeeper.up, Some(3));
        assert_eq!(d.cmak.as_deref(), Some("running"));
        let failing: Vec<_> = d
            .failing_nodes()
            .map(|(r, n)| (r, n.hostname.as_str()))
            .collect();
        assert_eq!(failing, [("broker", "kafka-2")]);
        assert_eq!(
            d.summary(),
            "broker kafka-2 is red; 2 of 3 brokers up; 3 of 3 zookeepers up; CMAK running"
        );
    }

    #[test]
    fn missing_is_absent_and_unknown_is_kept() {
        let body = br#"{"code":0,"result":{"brokerStatus":"purple","brokerStatusPerNode":[{"hostname":"k1","status":"rebalancing"},{"status":"red"},7,{"hostname":"k3"},{"hostname":"k1","status":"green"}]}}"#;
        let d = decode_answer(200, body).unwrap();
        assert_eq!(d.brokers.up, None, "missing is absent, not 0");
        assert_eq!(d.brokers.total, None);
        assert_eq!(d.zookeeper, RoleStatus::default());
        assert_eq!(d.brokers.colour.as_deref(), Some("purple"));
        // The entry without a hostname and the number are skipped; the rest kept as they came.
        assert_eq!(
            d.brokers.nodes,
            [
                NodeStatus {
                    hostname: "k1".into(),
                    status: "rebalancing".into()
                },
                NodeStatus {
                    hostname: "k3".into(),
                    status: "".into()
                }
            ]
        );
        assert!(d.brokers.nodes.iter().all(NodeStatus::is_failing));
    }

    #[test]
    fn errors_are_classified_like_a_precheck() {
        let e = decode_answer(
            401,
            br#"{"error":{"errorCode":"200","message":"Authentication Failed"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.failure_reason(), Some(FailureReason::AuthError));
        let e = decode_answer(500, b"<html>oops</html>").unwrap_err();
        assert_eq!(e.failure_reason(), Some(FailureReason::HttpError));
        let e = decode_answer(200, b"{\"code\":0,\"result\":tru").unwrap_err();
        assert_eq!(e.failure_reason(), Some(FailureReason::InvalidResponse));
        let e = decode_answer(200, br#"{"code":0,"result":true}"#).unwrap_err();
        assert_eq!(e.failure_reason(), Some(FailureReason::InvalidResponse));
    }

    #[test]
    fn nodes_are_bounded() {
        let nodes: Vec<String> = (0..200)
            .map(|i| format!(r#"{{"hostname":"k{i}","status":"red"}}"#))
            .collect();
        let body = format!(
            r#"{{"code":0,"result":{{"brokerStatusPerNode":[{}]}}}}"#,
            nodes.join(",")
        );
        let d = decode_answer(200, body.as_bytes()).unwrap();
        assert_eq!(d.brokers.nodes.len(), MAX_NODES);
    }

    #[test]
    fn url_has_the_number_in_the_path() {
        let p = Url::parse("https://gw.example/api/sgn-v1/cluster/rollingRestartPreCheck").unwrap();
        assert_eq!(
            url(&p, 3432149).unwrap().as_str(),
            "https://gw.example/api/sgn-v1/cluster/getClusterStatus/3432149"
        );
    }
}
