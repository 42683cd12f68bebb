//! The simulated `getClusterInfoList`: a cluster set that tests change at runtime, served with
//! real paging (`pageNo`, `pageSize`, `totalPage`, `isLast`) and NCP's field names and types
//! (`serviceGroupInstanceNo` as a string). A cluster under a restart is listed `changing`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::ncp::region::Region;

/// Regional list paths the gateway serves.
pub const LIST_PATHS: [&str; 4] = [
    "/api/v1/cluster/getClusterInfoList",
    "/api/sgn-v1/cluster/getClusterInfoList",
    "/api/jpn-v1/cluster/getClusterInfoList",
    "/api/krs-v1/cluster/getClusterInfoList",
];

/// One cluster in the simulated account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimCluster {
    /// `clusterName`.
    pub name: String,
    /// Which regional path lists it.
    pub region: Region,
    /// `serverStatus`.
    pub status: String,
    /// `kafkaVersion`.
    pub kafka_version: String,
    /// `vpcName`.
    pub vpc_name: String,
}

impl SimCluster {
    /// A running cluster in `region` with Kafka 3.5.1 in `prod-vpc`.
    pub fn running(name: &str, region: Region) -> Self {
        Self {
            name: name.into(),
            region,
            status: "running".into(),
            kafka_version: "3.5.1".into(),
            vpc_name: "prod-vpc".into(),
        }
    }
}

/// Default `pageSize` when the request has none (as NCP documents).
const DEFAULT_PAGE_SIZE: u64 = 10;

/// The page `body` asks for, from `clusters` listed under `path`; `serverStatus` is `changing`
/// for the numbers `changing` says (a restart runs).
pub fn page(
    clusters: &BTreeMap<u64, SimCluster>,
    path: &str,
    body: &Value,
    changing: impl Fn(u64) -> bool,
) -> Value {
    let base = path.trim_end_matches("/cluster/getClusterInfoList");
    let page_no = body
        .get("pageNo")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .unwrap_or(1);
    let page_size = body
        .get("pageSize")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_PAGE_SIZE);
    let vpc = body.get("vpcName").and_then(Value::as_str);
    let text = body.get("inputText").and_then(Value::as_str);
    let matching: Vec<(&u64, &SimCluster)> = clusters
        .iter()
        .filter(|(_, c)| c.region.base_path() == base)
        .filter(|(_, c)| vpc.is_none_or(|v| v == c.vpc_name))
        .filter(|(_, c)| text.is_none_or(|t| c.name.contains(t)))
        .collect();
    let total = matching.len() as u64;
    let total_page = total.div_ceil(page_size).max(1);
    let items: Vec<Value> = matching
        .iter()
        .skip(((page_no - 1) * page_size) as usize)
        .take(page_size as usize)
        .map(|(no, c)| {
            json!({
                "serviceGroupInstanceNo": no.to_string(),
                "clusterName": c.name,
                "serverStatus": if changing(**no) { "changing" } else { c.status.as_str() },
                "kafkaVersion": c.kafka_version,
                "brokerNodeCount": 3,
                "vpcName": c.vpc_name,
                "createDate": "2024-01-02T03:04:05+0900",
            })
        })
        .collect();
    json!({
        "currentPage": page_no,
        "isFirst": page_no == 1,
        "isLast": page_no >= total_page,
        "pageSize": page_size,
        "totalCount": total,
        "totalPage": total_page,
        "allowedClusters": items,
        "disallowedClusters": [],
    })
}
