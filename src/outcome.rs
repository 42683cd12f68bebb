//! `Outcome`: the one classification of a precheck answer.
//!
//! Every answer (or failure to get one) becomes exactly one `Outcome`, here and nowhere else.
//! Metrics, the landing page and (later) the gate derive everything from it: `ok`, the error code,
//! the failure reason. This module is pure: it sees bytes and a status, never a socket.

use std::time::Duration;

use serde_json::Value;

/// How a precheck ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// `code` 0 and `result` true: every node is available for a rolling restart.
    Ready,
    /// `code` 0 and `result` false or null: CDSS answered, and the answer is no.
    NotReady,
    /// A CDSS envelope with `code` != 0, whatever the HTTP status.
    ApiError {
        /// HTTP status the envelope came with (200, 400 and 500 are all seen).
        http_status: u16,
        /// The CDSS `code`.
        code: i64,
        /// The CDSS `message`: the cause, per NCP docs.
        message: String,
    },
    /// The API Gateway's `{"error":{"errorCode":..}}` shape: the request never reached CDSS.
    GatewayError {
        /// HTTP status; 401 means authentication, 429 rate limiting.
        http_status: u16,
        /// `errorCode` as a number, when it is one (it arrives as a string or a number).
        code: Option<i64>,
        /// The gateway's `message`, with `details` appended when present.
        message: String,
    },
    /// A response that is not JSON: an HTML error page, a redirect (never followed), and so on.
    HttpError {
        /// HTTP status.
        http_status: u16,
        /// What was wrong, for logs and the landing page.
        detail: String,
    },
    /// A 2xx response whose body is not a CDSS envelope we can read.
    InvalidResponse {
        /// HTTP status.
        http_status: u16,
        /// What was wrong with the body.
        detail: String,
    },
    /// The body was larger than the configured cap; it was not read to the end.
    BodyTooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// No complete answer within the timeout.
    Timeout {
        /// The timeout that ran out.
        after: Duration,
    },
    /// Connecting, TLS, or the connection itself failed.
    ConnectionError {
        /// The transport's error chain.
        detail: String,
    },
}

/// Why a precheck did not produce an answer from CDSS: the `reason` label of
/// `cdss_precheck_failures_total`. A fixed set, one per failing `Outcome` kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureReason {
    /// CDSS answered with `code` != 0.
    ApiError,
    /// The gateway rejected the credentials or the signature (HTTP 401/403).
    AuthError,
    /// HTTP 429.
    RateLimited,
    /// Any other gateway error.
    GatewayError,
    /// A non-JSON answer or a redirect.
    HttpError,
    /// A 2xx answer we could not decode.
    InvalidResponse,
    /// The body exceeded the cap.
    BodyTooLarge,
    /// The timeout ran out.
    Timeout,
    /// The connection failed.
    ConnectionError,
}

impl FailureReason {
    /// Every reason, in a stable order (for exposition and docs).
    pub const ALL: [FailureReason; 9] = [
        FailureReason::ApiError,
        FailureReason::AuthError,
        FailureReason::RateLimited,
        FailureReason::GatewayError,
        FailureReason::HttpError,
        FailureReason::InvalidResponse,
        FailureReason::BodyTooLarge,
        FailureReason::Timeout,
        FailureReason::ConnectionError,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::ApiError => "api_error",
            FailureReason::AuthError => "auth_error",
            FailureReason::RateLimited => "rate_limited",
            FailureReason::GatewayError => "gateway_error",
            FailureReason::HttpError => "http_error",
            FailureReason::InvalidResponse => "invalid_response",
            FailureReason::BodyTooLarge => "body_too_large",
            FailureReason::Timeout => "timeout",
            FailureReason::ConnectionError => "connection_error",
        }
    }

    /// Index into per-reason counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What an answer means for someone who wants to start a rolling restart now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// CDSS said ready: go.
    Go,
    /// CDSS said no: `result` false, or a CDSS API error (e.g. code 3, no such cluster).
    NoGo,
    /// No decision could be made: auth, rate limit, gateway, network, timeout, unreadable answer.
    Unknown,
}

/// `cdss_precheck_last_error_code` when no usable answer came.
pub const NO_ANSWER_CODE: i64 = -1;

impl Outcome {
    /// True only for `Ready`: the one value that may read as "go".
    pub fn is_ready(&self) -> bool {
        matches!(self, Outcome::Ready)
    }

    /// Go, no-go, or "couldn't ask": what a maintenance pipeline branches on.
    pub fn decision(&self) -> Decision {
        match self {
            Outcome::Ready => Decision::Go,
            Outcome::NotReady | Outcome::ApiError { .. } => Decision::NoGo,
            _ => Decision::Unknown,
        }
    }

    /// `None` when CDSS gave an answer (ready or not ready); otherwise why not.
    pub fn failure_reason(&self) -> Option<FailureReason> {
        Some(match self {
            Outcome::Ready | Outcome::NotReady => return None,
            Outcome::ApiError { .. } => FailureReason::ApiError,
            Outcome::GatewayError {
                http_status: 401 | 403,
                ..
            } => FailureReason::AuthError,
            Outcome::GatewayError {
                http_status: 429, ..
            }
            | Outcome::HttpError {
                http_status: 429, ..
            } => FailureReason::RateLimited,
            Outcome::GatewayError { .. } => FailureReason::GatewayError,
            Outcome::HttpError { .. } => FailureReason::HttpError,
            Outcome::InvalidResponse { .. } => FailureReason::InvalidResponse,
            Outcome::BodyTooLarge { .. } => FailureReason::BodyTooLarge,
            Outcome::Timeout { .. } => FailureReason::Timeout,
            Outcome::ConnectionError { .. } => FailureReason::ConnectionError,
        })
    }

    /// True when the answer asks us to slow down (HTTP 429 in any shape).
    pub fn is_rate_limited(&self) -> bool {
        self.failure_reason() == Some(FailureReason::RateLimited)
    }

    /// The value of `cdss_precheck_last_error_code`: the CDSS code for CDSS answers (0 on ready and
    /// not ready), the gateway's errorCode for gateway errors, and -1 when no usable answer came.
    pub fn error_code(&self) -> i64 {
        match self {
            Outcome::Ready | Outcome::NotReady => 0,
            Outcome::ApiError { code, .. } => *code,
            Outcome::GatewayError { code, .. } => code.unwrap_or(NO_ANSWER_CODE),
            _ => NO_ANSWER_CODE,
        }
    }

    /// A short verdict word for tables and logs.
    pub fn verdict(&self) -> &'static str {
        match self {
            Outcome::Ready => "ready",
            Outcome::NotReady => "not_ready",
            other => other
                .failure_reason()
                .map_or("error", FailureReason::as_str),
        }
    }

    /// A one-line human description (the CDSS or gateway message, or what went wrong).
    pub fn message(&self) -> String {
        match self {
            Outcome::Ready => "ready for a rolling restart".into(),
            Outcome::NotReady => "not every node is available for a rolling restart".into(),
            Outcome::ApiError {
                http_status,
                code,
                message,
            } => {
                format!("CDSS error code {code} (HTTP {http_status}): {message}")
            }
            Outcome::GatewayError {
                http_status,
                code,
                message,
            } => match code {
                Some(c) => format!("API gateway error {c} (HTTP {http_status}): {message}"),
                None => format!("API gateway error (HTTP {http_status}): {message}"),
            },
            Outcome::HttpError {
                http_status,
                detail,
            } => format!("HTTP {http_status}: {detail}"),
            Outcome::InvalidResponse {
                http_status,
                detail,
            } => {
                format!("undecodable response (HTTP {http_status}): {detail}")
            }
            Outcome::BodyTooLarge { limit } => format!("response body larger than {limit} bytes"),
            Outcome::Timeout { after } => {
                format!("no answer within {}", humantime::format_duration(*after))
            }
            Outcome::ConnectionError { detail } => format!("connection error: {detail}"),
        }
    }
}

/// What a decoded body says besides the outcome.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decoded {
    /// The CDSS `requestId`, when the body had one.
    pub request_id: Option<String>,
}

/// A 2xx answer that says it is not JSON (an HTML login page, a proxy's text) is not trusted,
/// whatever its body looks like. A missing `Content-Type` is tolerated.
pub fn unexpected_content_type(http_status: u16, content_type: Option<&str>) -> Option<Outcome> {
    let ct = content_type?.trim().to_ascii_lowercase();
    let json = ct.starts_with("application/json")
        || ct
            .split(';')
            .next()
            .is_some_and(|m| m.trim().ends_with("+json"));
    ((200..300).contains(&http_status) && !json).then(|| Outcome::InvalidResponse {
        http_status,
        detail: format!("content type {ct:?}, expected application/json"),
    })
}

/// Local clock minus the gateway's `Date`, in seconds, past which a warning is logged.
pub const CLOCK_SKEW_WARN_SECONDS: f64 = 60.0;

/// The gateway's clock minus ours, in seconds (positive: the gateway is ahead), from its `Date`
/// header and the local time the answer arrived. `Date` has one-second resolution.
pub fn clock_skew(
    server_date: Option<std::time::SystemTime>,
    local: std::time::SystemTime,
) -> Option<f64> {
    let server = server_date?;
    Some(match server.duration_since(local) {
        Ok(ahead) => ahead.as_secs_f64(),
        Err(behind) => -behind.duration().as_secs_f64(),
    })
}

/// Longest excerpt of a foreign body kept in an error message.
const EXCERPT_CHARS: usize = 120;

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(EXCERPT_CHARS).collect();
    if one_line.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

fn str_field<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

/// Classifies a complete HTTP answer. `location` is the `Location` header of a redirect.
pub fn classify(http_status: u16, location: Option<&str>, body: &[u8]) -> (Outcome, Decoded) {
    if (300..400).contains(&http_status) {
        let to = location.unwrap_or("(no Location header)");
        let detail = format!("redirect to {to} not followed (a signed request is never resent)");
        return (
            Outcome::HttpError {
                http_status,
                detail,
            },
            Decoded::default(),
        );
    }
    let success = (200..300).contains(&http_status);
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            let outcome = if body.iter().all(u8::is_ascii_whitespace) {
                let detail = "empty body".to_string();
                if success {
                    Outcome::InvalidResponse {
                        http_status,
                        detail,
                    }
                } else {
                    Outcome::HttpError {
                        http_status,
                        detail,
                    }
                }
            } else if success {
                Outcome::InvalidResponse {
                    http_status,
                    detail: format!("not JSON ({e}): {}", excerpt(body)),
                }
            } else {
                Outcome::HttpError {
                    http_status,
                    detail: format!("non-JSON body: {}", excerpt(body)),
                }
            };
            return (outcome, Decoded::default());
        }
    };
    let Some(obj) = value.as_object() else {
        let detail = format!("JSON is not an object: {}", excerpt(body));
        return (invalid(http_status, success, detail), Decoded::default());
    };
    let decoded = Decoded {
        request_id: str_field(obj, "requestId").map(str::to_owned),
    };

    if let Some(err) = obj.get("error").filter(|e| e.is_object()) {
        return (gateway_error(http_status, err), decoded);
    }
    let Some(code) = obj.get("code") else {
        let detail = format!(
            "neither a CDSS envelope nor a gateway error: {}",
            excerpt(body)
        );
        return (invalid(http_status, success, detail), decoded);
    };
    let Some(code) = code.as_i64() else {
        let detail = format!("`code` is not an integer: {code}");
        return (invalid(http_status, success, detail), decoded);
    };
    if code != 0 {
        let message = str_field(obj, "message")
            .unwrap_or("(no message)")
            .to_string();
        return (
            Outcome::ApiError {
                http_status,
                code,
                message,
            },
            decoded,
        );
    }
    let outcome = match obj.get("result") {
        Some(Value::Bool(true)) => Outcome::Ready,
        Some(Value::Bool(false)) | Some(Value::Null) | None => Outcome::NotReady,
        Some(other) => invalid(
            http_status,
            success,
            format!("`result` is neither a boolean nor null: {other}"),
        ),
    };
    (outcome, decoded)
}

/// A body we cannot read: an `InvalidResponse` on 2xx, an `HttpError` otherwise.
fn invalid(http_status: u16, success: bool, detail: String) -> Outcome {
    if success {
        Outcome::InvalidResponse {
            http_status,
            detail,
        }
    } else {
        Outcome::HttpError {
            http_status,
            detail,
        }
    }
}

fn gateway_error(http_status: u16, err: &Value) -> Outcome {
    let code = match err.get("errorCode") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let mut message = err
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("(no message)")
        .to_string();
    if let Some(details) = err
        .get("details")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
    {
        message.push_str(": ");
        message.push_str(details);
    }
    Outcome::GatewayError {
        http_status,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            d.request_id.as_deref(),
            Some("ec3559a4-00c8-42c7-ac87-6a60ba4df08e")
        );
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
                after: Duration::from_secs(1)
            }
            .decision(),
            Decision::Unknown
        );
        assert_eq!(c(500, "<html/>").decision(), Decision::Unknown);
    }

    #[test]
    fn content_type_must_be_json_on_success() {
        assert!(unexpected_content_type(200, Some("text/html; charset=utf-8")).is_some());
        assert!(unexpected_content_type(200, Some("application/json;charset=UTF-8")).is_none());
        assert!(unexpected_content_type(200, Some("application/problem+json")).is_none());
        assert!(unexpected_content_type(200, None).is_none());
        assert!(
            unexpected_content_type(503, Some("text/html")).is_none(),
            "errors are classified by body"
        );
    }

    #[test]
    fn clock_skew_sign() {
        let now = std::time::SystemTime::now();
        assert_eq!(
            clock_skew(Some(now + Duration::from_secs(600)), now),
            Some(600.0)
        );
        assert_eq!(
            clock_skew(Some(now - Duration::from_secs(90)), now),
            Some(-90.0)
        );
        assert_eq!(clock_skew(None, now), None);
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
    fn excerpt_is_bounded_and_single_line() {
        let long = format!("<html>\n{}\n</html>", "x".repeat(1000));
        let o = c(502, &long);
        assert!(o.message().len() < 300);
        assert!(!o.message().contains('\n'));
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
