//! `getClusterStatus`: why a cluster is not ready, node by node.
//!
//! `GET {base}/cluster/getClusterStatus/{serviceGroupInstanceNo}`, no body, signed like every call
//! (the path with the number), through [`Clients::call`]: the same keys, timeout, body cap,
//! redirect policy and envelope as the precheck. This module builds the URL and decodes `result`
//! (`ncp-api.md`, "getClusterStatus"): counts are integers, everything else a string, and any
//! field may be missing. A missing field stays absent (never 0), an unknown colour or node status
//! is kept as it came, a node listed without a hostname is kept as a node without a name (it
//! still counts, and may be the failing one), and a malformed node entry (not an object) is
//! skipped, never a failure of the whole answer.

use serde_json::Value;

use crate::model::Cluster;
use crate::ncp::client::Clients;
use crate::ncp::envelope::{clean, number};
use crate::ncp::usage::Operation;
use crate::outcome::{NodeHealth, Outcome};

/// Most nodes kept per role: hostnames become label values, so their number is bounded.
pub(crate) const MAX_NODES: usize = 64;
/// Longest hostname kept (a DNS name); longer ones are cut.
pub(crate) const MAX_HOSTNAME: usize = 253;
/// Longest colour or status kept; longer ones are cut (they become label values too).
pub(crate) const MAX_STATUS: usize = 64;

/// One node of a role, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NodeStatus {
    /// `hostname`; `None` when the entry had none (such a node has no series of its own: it
    /// could not be told apart from another one without a name).
    pub hostname: Option<String>,
    /// `status`, as it came (its values are not documented); `None` when it was missing.
    pub status: Option<String>,
}

impl NodeStatus {
    /// How people name the node: its hostname, or "without a hostname".
    fn named(&self) -> &str {
        self.hostname.as_deref().unwrap_or("(no hostname)")
    }
}

/// Brokers or ZooKeeper nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RoleStatus {
    /// Nodes up (`brokerNumber`, `zookeeperNumber`).
    pub up: Option<i64>,
    /// Nodes in all (`brokerNodeTotalNumber`, `zookeeperTotalNumber`).
    pub total: Option<i64>,
    /// The role's colour (`green`, `yellow`, `orange`, `red`, `gray`, or whatever comes).
    pub colour: Option<String>,
    /// Per-node status, in the order listed.
    pub nodes: Vec<NodeStatus>,
}

impl RoleStatus {
    /// Whether `node` (one of this role's) counts as failing: its status says so, or it is
    /// missing or a word we do not know while the role itself does not say every node is up
    /// (by its counts, or without both counts by its colour). Per-node values are not
    /// documented, so an unknown word never blames a node of a role that says all is well.
    fn is_failing(&self, node: &NodeStatus) -> bool {
        let green = |c: &String| c.eq_ignore_ascii_case("green");
        match NodeHealth::of(node.status.as_deref()) {
            NodeHealth::Fine => false,
            NodeHealth::Failing => true,
            NodeHealth::Unknown => match (self.up, self.total) {
                (Some(up), Some(total)) => total <= 0 || up < total,
                _ => !self.colour.as_ref().is_some_and(green),
            },
        }
    }
}

/// What `getClusterStatus` says about a cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Diagnosis {
    /// The brokers.
    pub brokers: RoleStatus,
    /// The ZooKeeper nodes.
    pub zookeeper: RoleStatus,
    /// `cmakStatus`, as it came.
    pub cmak: Option<String>,
}

impl Diagnosis {
    /// (role label, role) for both roles.
    pub(crate) fn roles(&self) -> [(&'static str, &RoleStatus); 2] {
        [("broker", &self.brokers), ("zookeeper", &self.zookeeper)]
    }

    /// Every node with its role and whether it counts as failing.
    pub(crate) fn nodes(&self) -> impl Iterator<Item = (&'static str, &NodeStatus, bool)> {
        self.roles()
            .into_iter()
            .flat_map(|(role, r)| r.nodes.iter().map(move |n| (role, n, r.is_failing(n))))
    }

    /// Every failing node, with its role.
    pub(crate) fn failing_nodes(&self) -> impl Iterator<Item = (&'static str, &NodeStatus)> {
        self.nodes()
            .filter(|(_, _, failing)| *failing)
            .map(|(role, n, _)| (role, n))
    }

    /// One line for people: the failing nodes, then the counts, e.g. "broker kafka-2 is red;
    /// 2 of 3 brokers up; 3 of 3 zookeepers up".
    pub(crate) fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .failing_nodes()
            .map(|(role, n)| match &n.status {
                Some(s) => format!("{role} {} is {s}", n.named()),
                None => format!("{role} {} status unknown", n.named()),
            })
            .collect();
        let count = |n: Option<i64>| n.map_or("?".into(), |n| n.to_string());
        for (role, r) in self.roles() {
            if r.up.is_some() || r.total.is_some() {
                parts.push(format!("{} of {} {role}s up", count(r.up), count(r.total)));
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

/// Reads `cluster`'s status now. `Err` is the outcome of a call that got no usable answer.
pub(crate) async fn cluster_status(
    clients: &Clients,
    cluster: &Cluster,
) -> Result<Diagnosis, Outcome> {
    let url = cluster
        .endpoint
        .cluster_status(cluster.service_group_instance_no)
        .map_err(|e| Outcome::no_url("getClusterStatus", cluster.endpoint.precheck.as_str(), e))?;
    let account = &cluster.account;
    let call = clients.call(account, Operation::ClusterStatus, &url, None, decode);
    call.await.0
}

/// Decodes a complete answer (status and body, no `Content-Type`).
#[cfg(test)]
pub(crate) fn decode_answer(http_status: u16, body: &[u8]) -> Result<Diagnosis, Outcome> {
    crate::ncp::envelope::open(http_status, None, None, body).decode(decode)
}

/// The fields of `result` this module reads; an answer with none of them says nothing.
const FIELDS: [&str; 9] = [
    "brokerNumber",
    "brokerNodeTotalNumber",
    "brokerStatus",
    "brokerStatusPerNode",
    "zookeeperNumber",
    "zookeeperTotalNumber",
    "zookeeperStatus",
    "zookeeperStatusPerNode",
    "cmakStatus",
];

/// Reads `result`; `Err` when it is no cluster status.
pub(crate) fn decode(value: Value) -> Result<Diagnosis, String> {
    let result = value
        .as_object()
        .ok_or("`result` is not a cluster status")?;
    if !FIELDS.iter().any(|f| result.contains_key(*f)) {
        // Not a status at all: keep the last diagnosis rather than replace it with nothing.
        return Err("`result` has none of the cluster status fields".into());
    }
    let text = |key: &str| Some(clean(result.get(key)?.as_str()?, MAX_STATUS));
    // Counts are typed int32 in the SDK, but NCP's JSON types vary elsewhere.
    let count = |key: &str| result.get(key).and_then(number);
    let nodes = |key: &str| match result.get(key) {
        Some(Value::Array(items)) => {
            // One series per hostname: a name listed twice keeps its first entry.
            let mut seen = std::collections::HashSet::new();
            items
                .iter()
                .filter_map(node)
                .filter(|n| n.hostname.as_ref().is_none_or(|h| seen.insert(h.clone())))
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

fn node(v: &Value) -> Option<NodeStatus> {
    let obj = v.as_object()?;
    let text = |key, max| {
        let text = obj.get(key).and_then(Value::as_str).map(|s| clean(s, max));
        text.filter(|s| !s.is_empty())
    };
    Some(NodeStatus {
        hostname: text("hostname", MAX_HOSTNAME),
        status: text("status", MAX_STATUS),
    })
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
        let failing: Vec<_> = d.failing_nodes().map(|(r, n)| (r, n.named())).collect();
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
        // The number is skipped; the entry without a hostname is a node without a name; a name
        // listed twice keeps its first entry; the rest is kept as it came.
        assert_eq!(
            d.brokers.nodes,
            [
                NodeStatus {
                    hostname: Some("k1".into()),
                    status: Some("rebalancing".into())
                },
                NodeStatus {
                    hostname: None,
                    status: Some("red".into())
                },
                NodeStatus {
                    hostname: Some("k3".into()),
                    status: None
                }
            ]
        );
        // Nothing says the brokers are all up, so the unknown word and the missing status are
        // shown to the on-call, and so is the red node without a name.
        assert_eq!(d.failing_nodes().count(), 3);
        assert_eq!(
            d.summary(),
            "broker k1 is rebalancing; broker (no hostname) is red; broker k3 status unknown"
        );
    }

    #[test]
    fn unknown_words_never_blame_a_node_of_a_role_that_is_all_up() {
        let body = br#"{"code":0,"result":{"brokerNodeTotalNumber":3,"brokerNumber":3,"brokerStatusPerNode":[{"hostname":"k1","status":"RUN"},{"hostname":"k2"},{"hostname":"k3","status":"red"}],
            "zookeeperStatus":"green","zookeeperStatusPerNode":[{"hostname":"zk1","status":"ACTIVE_SYNC"}]}}"#;
        let d = decode_answer(200, body).unwrap();
        let failing: Vec<_> = d.failing_nodes().map(|(_, n)| n.named()).collect();
        // A word that says "failing" still counts, whatever the counts say.
        assert_eq!(failing, ["k3"]);
        // The same unknown word with one broker down is shown.
        let body = br#"{"code":0,"result":{"brokerNodeTotalNumber":3,"brokerNumber":2,"brokerStatusPerNode":[{"hostname":"k1","status":"RUN"}]}}"#;
        let d = decode_answer(200, body).unwrap();
        assert_eq!(d.failing_nodes().count(), 1);
    }

    #[test]
    fn nodes_without_a_hostname_count_and_are_never_merged() {
        let body = br#"{"code":0,"result":{"brokerNodeTotalNumber":3,"brokerNumber":1,"brokerStatusPerNode":[{"hostname":"kafka-1","status":"green"},{"status":"red"},{"hostname":"","status":"red"},{"hostname":null,"status":"red"}]}}"#;
        let d = decode_answer(200, body).unwrap();
        assert_eq!(d.brokers.nodes.len(), 4);
        assert_eq!(d.failing_nodes().count(), 3);
        assert_eq!(
            d.summary(),
            "broker (no hostname) is red; broker (no hostname) is red; broker (no hostname) is red; 1 of 3 brokers up"
        );
    }

    #[test]
    fn a_result_with_no_status_field_is_no_answer() {
        for body in [
            &br#"{"code":0,"result":{}}"#[..],
            br#"{"code":0,"result":{"clusterName":"x"}}"#,
        ] {
            let e = decode_answer(200, body).unwrap_err();
            assert_eq!(e.failure_reason(), Some(FailureReason::InvalidResponse));
        }
    }

    #[test]
    fn strings_are_cut_and_lose_control_characters() {
        let long = "x".repeat(5000);
        let body = format!(
            r#"{{"code":0,"result":{{"brokerStatus":"{long}","cmakStatus":"ok\u001b[2J","brokerStatusPerNode":[{{"hostname":"k\n1","status":"{long}"}}]}}}}"#
        );
        let d = decode_answer(200, body.as_bytes()).unwrap();
        assert_eq!(d.brokers.colour.as_deref().map(str::len), Some(MAX_STATUS));
        assert_eq!(d.cmak.as_deref(), Some("ok[2J"));
        assert_eq!(d.brokers.nodes[0].hostname.as_deref(), Some("k1"));
        assert_eq!(
            d.brokers.nodes[0].status.as_deref().map(str::len),
            Some(MAX_STATUS)
        );
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
}
