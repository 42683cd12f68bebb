//! `getClusterInfoList`: the request for one page, and the decoding of its `result`.
//!
//! The call goes through [`Clients::call`] like every other, and its envelope is opened by
//! `envelope`, like a precheck's (gateway errors, CDSS `code` != 0, HTML pages). A malformed
//! item (say, a `serviceGroupInstanceNo` that is not a number) is reported by index and skipped;
//! the good items of the page are kept.

use serde::Serialize;
use serde_json::Value;

use crate::model::validate_name;
use crate::ncp::client::Clients;
use crate::ncp::envelope::{self, clean};
use crate::ncp::region::Endpoint;
use crate::ncp::usage::Operation;
use crate::outcome::Outcome;

/// Longest `serverStatus`, `kafkaVersion` or `vpcName` kept; longer ones are cut.
pub(crate) const MAX_TEXT: usize = 64;

/// The request body. `inputText` is not sent: name filtering is done locally with a regex.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListRequest<'a> {
    /// Exact VPC name filter, done by NCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpc_name: Option<&'a str>,
    /// 1-based page number.
    pub page_no: u32,
    /// Items per page.
    pub page_size: u32,
}

/// One cluster as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedCluster {
    /// The cluster number (a string in this API, parsed here).
    pub service_group_instance_no: u64,
    /// `clusterName`: becomes the `cluster` label.
    pub cluster_name: String,
    /// `serverStatus`: creating, changing, running, error, deleting, return.
    pub server_status: String,
    /// `kafkaVersion`, for `cdss_cluster_info`.
    pub kafka_version: String,
    /// `vpcName`, for `cdss_cluster_info`.
    pub vpc_name: String,
}

/// One decoded page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterPage {
    /// `currentPage` (when present).
    pub current_page: Option<u64>,
    /// `isLast` (when present).
    pub is_last: Option<bool>,
    /// `totalPage` (when present).
    pub total_page: Option<u64>,
    /// The good items of `allowedClusters`.
    pub clusters: Vec<ListedCluster>,
    /// One message per malformed item, naming its index.
    pub malformed: Vec<String>,
}

/// Why a page could not be had: no answer, or one that is not a list. Its outcome is the same
/// classification a precheck's failure gets.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .0.message())]
pub struct ListError(pub Outcome);

/// Reads one page through `endpoint`, signed with `account`'s keys.
pub(crate) async fn page(
    clients: &Clients,
    account: &str,
    endpoint: &Endpoint,
    request: &ListRequest<'_>,
) -> Result<ClusterPage, ListError> {
    // Serialising this struct of strings and numbers cannot fail.
    let body = serde_json::to_string(request).unwrap_or_default();
    let url = &endpoint.cluster_list;
    let call = clients.call(account, Operation::ClusterList, url, Some(&body), decode);
    call.await.0.map_err(ListError)
}

/// One item of `allowedClusters`; `Err` says what is wrong with it.
fn item(v: &Value) -> Result<ListedCluster, String> {
    let obj = v.as_object().ok_or("not an object")?;
    let raw_no = match obj.get("serviceGroupInstanceNo") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("serviceGroupInstanceNo is missing".into()),
    };
    let no = raw_no.trim().parse::<u64>().ok().filter(|n| *n > 0);
    let service_group_instance_no =
        no.ok_or_else(|| format!("serviceGroupInstanceNo {raw_no:?} is not a positive integer"))?;
    let cluster_name = obj.get("clusterName").and_then(Value::as_str);
    let cluster_name = cluster_name.ok_or("clusterName is missing")?.to_string();
    validate_name(&cluster_name)?;
    // These become label values (`cdss_cluster_info`) and filter inputs: bounded, one line.
    let text = |key: &str| Some(clean(obj.get(key)?.as_str()?, MAX_TEXT));
    Ok(ListedCluster {
        service_group_instance_no,
        cluster_name,
        server_status: text("serverStatus")
            .unwrap_or_default()
            .to_ascii_lowercase(),
        kafka_version: text("kafkaVersion").unwrap_or_default(),
        vpc_name: text("vpcName").unwrap_or_default(),
    })
}

/// Decodes one answer of `getClusterInfoList` (status and body, no `Content-Type`).
pub fn decode_page(http_status: u16, body: &[u8]) -> Result<ClusterPage, ListError> {
    let opened = envelope::open(http_status, None, None, body);
    opened.decode(decode).map_err(ListError)
}

/// Reads `result`; `Err` when it is not a list at all.
fn decode(value: Value) -> Result<ClusterPage, String> {
    // A well-formed "code 0" answer without a result object still is not a list.
    let result = value.as_object().ok_or("`result` is not a cluster list")?;
    let number = |key: &str| result.get(key).and_then(Value::as_u64);
    let mut page = ClusterPage {
        current_page: number("currentPage"),
        is_last: result.get("isLast").and_then(Value::as_bool),
        total_page: number("totalPage"),
        ..ClusterPage::default()
    };
    match result.get("allowedClusters") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                match item(v) {
                    Ok(c) => page.clusters.push(c),
                    Err(e) => page.malformed.push(format!("allowedClusters[{i}]: {e}")),
                }
            }
        }
        Some(other) => page
            .malformed
            .push(format!("allowedClusters is not a list: {other}")),
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::FailureReason;

    #[test]
    fn label_texts_are_one_bounded_line() {
        let long = "v".repeat(300);
        let body = format!(
            r#"{{"code":0,"result":{{"allowedClusters":[{{"serviceGroupInstanceNo":"1","clusterName":"a","serverStatus":"running","kafkaVersion":"{long}","vpcName":"prod\nvpc\u0007"}}]}}}}"#
        );
        let page = decode_page(200, body.as_bytes()).unwrap();
        assert_eq!(page.clusters[0].kafka_version.len(), MAX_TEXT);
        assert_eq!(page.clusters[0].vpc_name, "prodvpc");
    }

    #[test]
    fn decodes_a_page_and_keeps_good_items_when_some_are_malformed() {
        let body = br#"{"code":0,"message":"SUCCESS","requestId":"r","result":{
            "currentPage":2,"isFirst":false,"isLast":false,"pageSize":3,"totalCount":7,"totalPage":3,
            "allowedClusters":[
              {"serviceGroupInstanceNo":"3432149","clusterName":"orders-kafka","serverStatus":"running","kafkaVersion":"3.5.1","vpcName":"prod-vpc","brokerNodeCount":3},
              {"serviceGroupInstanceNo":"abc","clusterName":"broken","serverStatus":"running"},
              {"serviceGroupInstanceNo":42,"clusterName":"numeric-no","serverStatus":"Changing"},
              {"serviceGroupInstanceNo":"7","clusterName":"bad name!","serverStatus":"running"}
            ],"disallowedClusters":[]}}"#;
        let page = decode_page(200, body).unwrap();
        assert_eq!(page.current_page, Some(2));
        assert_eq!(page.is_last, Some(false));
        assert_eq!(page.total_page, Some(3));
        assert_eq!(page.clusters.len(), 2);
        assert_eq!(page.clusters[0].service_group_instance_no, 3432149);
        assert_eq!(page.clusters[0].kafka_version, "3.5.1");
        assert_eq!(page.clusters[1].server_status, "changing");
        assert_eq!(page.malformed.len(), 2);
        assert!(
            page.malformed[0].starts_with("allowedClusters[1]: serviceGroupInstanceNo \"abc\""),
            "{:?}",
            page.malformed
        );
        assert!(
            page.malformed[1].starts_with("allowedClusters[3]:"),
            "{:?}",
            page.malformed
        );
    }

    #[test]
    fn errors_are_classified() {
        let e = decode_page(
            401,
            br#"{"error":{"errorCode":"200","message":"Authentication Failed"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.0.failure_reason(), Some(FailureReason::AuthError));
        let e = decode_page(500, b"<html>oops</html>").unwrap_err();
        assert_eq!(e.0.failure_reason(), Some(FailureReason::HttpError));
        let e = decode_page(200, br#"{"code":0,"result":true}"#).unwrap_err();
        assert_eq!(e.0.failure_reason(), Some(FailureReason::InvalidResponse));
        let e = decode_page(200, br#"{"code":11,"message":"nope","result":null}"#).unwrap_err();
        assert_eq!(e.0.error_code(), 11);
    }

    #[test]
    fn request_body_uses_ncp_names() {
        let r = ListRequest {
            vpc_name: Some("prod-vpc"),
            page_no: 2,
            page_size: 10,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"vpcName":"prod-vpc","pageNo":2,"pageSize":10}"#
        );
        let r = ListRequest {
            vpc_name: None,
            page_no: 1,
            page_size: 10,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"pageNo":1,"pageSize":10}"#
        );
    }
}
