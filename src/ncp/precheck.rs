//! `rollingRestartPreCheck`: the request for one cluster, and what its `result` means.
//!
//! The call goes through [`Clients::call`] like every other; this module only builds the body
//! and decodes `result`: `true` is ready, `false` or null is not ready, anything else is an
//! answer we cannot read. Which `Outcome` that is, and what it means, is decided in `envelope`
//! and `outcome`.

use serde_json::Value;

use crate::model::Cluster;
use crate::ncp::client::{CallMeta, Clients};
use crate::ncp::envelope;
use crate::ncp::usage::Operation;
use crate::outcome::Outcome;

/// The result of one precheck call.
#[derive(Clone, Debug)]
pub struct Precheck {
    /// The one classification of the answer.
    pub outcome: Outcome,
    /// How the call went (latency, request id, `Retry-After`, the gateway's clock).
    pub meta: CallMeta,
}

impl Precheck {
    /// A precheck that never got an answer.
    pub(crate) fn failed(outcome: Outcome) -> Self {
        let meta = CallMeta::default();
        Self { outcome, meta }
    }
}

/// Prechecks `cluster` now, signed with its account's keys. Never fails: every failure is an
/// `Outcome`.
pub(crate) async fn precheck(clients: &Clients, cluster: &Cluster) -> Precheck {
    let no = cluster.service_group_instance_no;
    let body = format!("{{\"serviceGroupInstanceNo\":{no}}}");
    let (account, url) = (&cluster.account, &cluster.endpoint.precheck);
    let call = clients.call(account, Operation::Precheck, url, Some(&body), answer);
    let (result, meta) = call.await;
    let outcome = result.unwrap_or_else(|failure| failure);
    Precheck { outcome, meta }
}

/// What `result` means: ready or not; `Err` when it is neither.
fn answer(result: Value) -> Result<Outcome, String> {
    match result {
        Value::Bool(true) => Ok(Outcome::Ready),
        Value::Bool(false) | Value::Null => Ok(Outcome::NotReady),
        other => Err(format!("`result` is neither a boolean nor null: {other}")),
    }
}

/// Classifies a complete precheck answer (status, `Location`, body) as the client does, with no
/// `Content-Type`; returns the outcome and the body's `requestId`.
pub fn classify(
    http_status: u16,
    location: Option<&str>,
    body: &[u8],
) -> (Outcome, Option<String>) {
    let opened = envelope::open(http_status, location, None, body);
    let request_id = opened.request_id.clone();
    (
        opened.decode(answer).unwrap_or_else(|failure| failure),
        request_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Decision, FailureReason};

    fn c(status: u16, body: &str) -> Outcome {
        classify(status, None, body.as_bytes()).0
    }

    #[test]
    fn documented_success_is_ready_with_request_id() {
        let body = r#"{"code":0,"message":"SUCCESS","result":true,"requestId":"ec3559a4-00c8-42c7-ac87-6a60ba4df08e"}"#;
        let (o, d) = classify(200, None, body.as_bytes());
        assert_eq!(o, Outcome::Ready);
        assert_eq!(o.error_code(), 0);
        assert_eq!(o.failure_reason(), None);
        assert_eq!(d.as_deref(), Some("ec3559a4-00c8-42c7-ac87-6a60ba4df08e"));
    }

    #[test]
    fn result_false_or_null_or_missing_is_not_ready() {
        for body in [
            r#"{"code":0,"result":false}"#,
            r#"{"code":0,"result":null}"#,
            r#"{"code":0,"message":"SUCCESS"}"#,
        ] {
            let o = c(200, body);
            assert_eq!(o, Outcome::NotReady, "{body}");
            assert!(!o.is_ready());
            assert_eq!(o.error_code(), 0);
        }
    }

    #[test]
    fn api_error_whatever_the_status() {
        for status in [200, 400, 500] {
            let o = c(
                status,
                r#"{"code":3,"message":"Invalid Service Group Instance No","result":null,"requestId":"r"}"#,
            );
            assert_eq!(
                o,
                Outcome::ApiError {
                    http_status: status,
                    code: 3,
                    message: "Invalid Service Group Instance No".into()
                }
            );
            assert_eq!(o.error_code(), 3);
            assert_eq!(o.failure_reason(), Some(FailureReason::ApiError));
        }
    }

    #[test]
    fn gateway_error_code_as_string_or_number() {
        let o = c(
            401,
            r#"{"error":{"errorCode":"200","message":"Authentication Failed","details":"Invalid authentication information."}}"#,
        );
        assert_eq!(o.error_code(), 200);
        assert_eq!(o.failure_reason(), Some(FailureReason::AuthError));
        assert!(
            o.message()
                .contains("Authentication Failed: Invalid authentication information.")
        );
        let o = c(
            429,
            r#"{"error":{"errorCode":420,"message":"Rate Limited"}}"#,
        );
        assert_eq!(o.error_code(), 420);
        assert!(o.is_rate_limited());
        let o = c(
            503,
            r#"{"error":{"errorCode":"abc","message":"Endpoint Error"}}"#,
        );
        assert_eq!(o.error_code(), -1);
        assert_eq!(o.failure_reason(), Some(FailureReason::GatewayError));
    }

    #[test]
    fn decisions_separate_no_from_could_not_ask() {
        assert_eq!(Outcome::Ready.decision(), Decision::Go);
        assert_eq!(Outcome::NotReady.decision(), Decision::NoGo);
        assert_eq!(
            c(
                200,
                r#"{"code":3,"message":"Invalid Service Group Instance No"}"#
            )
            .decision(),
            Decision::NoGo
        );
        assert_eq!(
            c(
                401,
                r#"{"error":{"errorCode":"200","message":"Authentication Failed"}}"#
            )
            .decision(),
            Decision::Unknown
        );
        assert_eq!(
            c(
                429,
                r#"{"error":{"errorCode":"420","message":"Rate Limited"}}"#
            )
            .decision(),
            Decision::Unknown
        );
        assert_eq!(
            Outcome::Timeout {
                after: std::time::Duration::from_secs(1)
            }
            .decision(),
            Decision::Unknown
        );
        assert_eq!(c(500, "<html/>").decision(), Decision::Unknown);
    }

    #[test]
    fn html_error_page_is_http_error() {
        let o = c(
            500,
            "<html><body><h1>500 Internal Server Error</h1></body></html>",
        );
        assert_eq!(o.failure_reason(), Some(FailureReason::HttpError));
        assert_eq!(o.error_code(), -1);
        assert!(o.message().contains("500 Internal Server Error"));
    }

    #[test]
    fn html_429_still_counts_as_rate_limited() {
        assert!(c(429, "<html>slow down</html>").is_rate_limited());
    }

    #[test]
    fn malformed_and_wrong_types_are_invalid() {
        for body in [
            r#"{"code":0,"result":tru"#,
            r#"{"code":"0","result":true}"#,
            r#"{"code":0,"result":1}"#,
            r#"[1,2]"#,
            r#"{"hello":"world"}"#,
            "",
        ] {
            let o = c(200, body);
            assert_eq!(
                o.failure_reason(),
                Some(FailureReason::InvalidResponse),
                "{body:?}"
            );
            assert_eq!(o.error_code(), -1);
        }
    }

    #[test]
    fn redirect_is_an_http_error_naming_the_target() {
        let (o, _) = classify(302, Some("https://elsewhere.example/"), b"");
        assert_eq!(o.failure_reason(), Some(FailureReason::HttpError));
        assert!(o.message().contains("elsewhere.example"));
    }

    #[test]
    fn any_bytes_classify_without_panicking() {
        let samples: [&[u8]; 5] = [
            b"\xff\xfe\x00",
            b"{",
            b"null",
            b"{\"error\":null}",
            b"{\"code\":1e400}",
        ];
        for body in samples {
            for status in [0, 200, 301, 404, 500, 999] {
                let _ = classify(status, None, body);
            }
        }
    }
}
