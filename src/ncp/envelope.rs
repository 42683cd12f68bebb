//! The envelope every NCP answer comes in, opened once for every operation.
//!
//! Owns what is common to all CDSS answers (`ncp-api.md`, "Response envelope and errors"): a
//! redirect is never followed, a 2xx that says it is not JSON is not trusted, the gateway's
//! `{"error":{..}}` shape, CDSS's `code` (non-zero is an API error whatever the HTTP status), and a
//! success envelope on a failing status, which is contradictory and so no decision. What is left
//! is the `result` field, which each operation decodes itself. Pure: a status, two headers and
//! the body bytes in; never a socket.

use serde_json::{Map, Value};

use crate::outcome::Outcome;

/// What an answer's envelope says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Opened {
    /// The HTTP status (0 when no answer came).
    pub http_status: u16,
    /// `Ok`: `code` 0 on a 2xx, with the `result` field (`Null` when absent). `Err`: the outcome
    /// of an answer that is no success (or cannot be read).
    pub result: Result<Value, Outcome>,
    /// The CDSS `requestId`, when the body had one.
    pub request_id: Option<String>,
}

impl Opened {
    /// For an answer that is no success, or for no answer at all (`http_status` 0).
    pub(crate) fn failed(http_status: u16, outcome: Outcome) -> Self {
        Self {
            http_status,
            result: Err(outcome),
            request_id: None,
        }
    }

    /// Has `decode` read `result`: its `Err` (a `result` of the wrong shape) is an
    /// `invalid_response`.
    pub(crate) fn decode<T>(
        self,
        decode: impl FnOnce(Value) -> Result<T, String>,
    ) -> Result<T, Outcome> {
        let http_status = self.http_status;
        // `result` is `Ok` on a 2xx only, so this is an `invalid_response`.
        decode(self.result?).map_err(|detail| invalid(http_status, detail))
    }
}

/// A 2xx answer that says it is not JSON (an HTML login page, a proxy's text) is not trusted,
/// whatever its body looks like. A missing `Content-Type` is tolerated.
pub(crate) fn unexpected_content_type(
    http_status: u16,
    content_type: Option<&str>,
) -> Option<Outcome> {
    let ct = content_type?.trim().to_ascii_lowercase();
    let media = ct.split(';').next().unwrap_or_default();
    let json = ct.starts_with("application/json") || media.trim().ends_with("+json");
    (success(http_status) && !json).then(|| Outcome::InvalidResponse {
        http_status,
        detail: format!("content type {ct:?}, expected application/json"),
    })
}

/// Longest excerpt of a foreign body kept in an error message.
const EXCERPT_CHARS: usize = 120;

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// Whether `http_status` is a 2xx.
fn success(http_status: u16) -> bool {
    (200..300).contains(&http_status)
}

/// Opens a complete HTTP answer. `location` is the `Location` header of a redirect.
pub(crate) fn open(
    http_status: u16,
    location: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Opened {
    let obj = match object(http_status, location, content_type, body) {
        Ok(obj) => obj,
        Err(outcome) => return Opened::failed(http_status, outcome),
    };
    let request_id = obj.get("requestId").and_then(Value::as_str);
    Opened {
        http_status,
        result: envelope(http_status, &obj, body),
        request_id: request_id.map(str::to_owned),
    }
}

/// The body's JSON object; `Err` for a redirect, a 2xx that says it is not JSON, and a body
/// that is no JSON object.
fn object(
    http_status: u16,
    location: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, Outcome> {
    if (300..400).contains(&http_status) {
        let to = location.unwrap_or("(no Location header)");
        let detail = format!("redirect to {to} not followed (a signed request is never resent)");
        return Err(Outcome::HttpError {
            http_status,
            detail,
        });
    }
    if let Some(problem) = unexpected_content_type(http_status, content_type) {
        return Err(problem);
    }
    let detail = match serde_json::from_slice(body) {
        Ok(Value::Object(obj)) => return Ok(obj),
        Ok(_) => format!("JSON is not an object: {}", excerpt(body)),
        Err(_) if body.iter().all(u8::is_ascii_whitespace) => "empty body".to_string(),
        Err(e) if success(http_status) => format!("not JSON ({e}): {}", excerpt(body)),
        Err(_) => format!("non-JSON body: {}", excerpt(body)),
    };
    Err(invalid(http_status, detail))
}

/// What the envelope says: its `result` (`Null` when absent) on a success, else why not.
fn envelope(http_status: u16, obj: &Map<String, Value>, body: &[u8]) -> Result<Value, Outcome> {
    if let Some(err) = obj.get("error").filter(|e| e.is_object()) {
        return Err(gateway_error(http_status, err));
    }
    let code = match obj.get("code") {
        Some(code) => code
            .as_i64()
            .ok_or_else(|| format!("`code` is not an integer: {code}")),
        None => Err(format!(
            "neither a CDSS envelope nor a gateway error: {}",
            excerpt(body)
        )),
    };
    let code = code.map_err(|detail| invalid(http_status, detail))?;
    if code != 0 {
        let message = obj.get("message").and_then(Value::as_str);
        let message = message.unwrap_or("(no message)").to_string();
        return Err(Outcome::ApiError {
            http_status,
            code,
            message,
        });
    }
    if !success(http_status) {
        // A success envelope on a failing status: one of the two is wrong, so neither is trusted.
        return Err(Outcome::InvalidResponse {
            http_status,
            detail: format!(
                "a success envelope (code 0) with HTTP {http_status}: contradictory, not trusted"
            ),
        });
    }
    Ok(obj.get("result").cloned().unwrap_or(Value::Null))
}

/// A body we cannot read: an `InvalidResponse` on 2xx, an `HttpError` otherwise.
fn invalid(http_status: u16, detail: String) -> Outcome {
    if success(http_status) {
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
    let code = err.get("errorCode").and_then(number);
    let text = |key| err.get(key).and_then(Value::as_str);
    let message = text("message").unwrap_or("(no message)");
    let message = match text("details").filter(|d| !d.is_empty()) {
        Some(details) => format!("{message}: {details}"),
        None => message.to_string(),
    };
    Outcome::GatewayError {
        http_status,
        code,
        message,
    }
}

/// An integer, or a string holding one (the gateway's `errorCode` comes as either).
pub(crate) fn number(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Text from an answer that becomes a label value or a log line: without control characters
/// (they would reach terminals and logs), cut to `max` characters and trimmed.
pub(crate) fn clean(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(max)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::FailureReason;

    fn reason(status: u16, body: &str) -> Option<FailureReason> {
        open(status, None, None, body.as_bytes())
            .result
            .err()
            .and_then(|o| o.failure_reason())
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
        let o = open(200, None, Some("text/html"), br#"{"code":0,"result":true}"#);
        assert_eq!(
            o.result.unwrap_err().failure_reason(),
            Some(FailureReason::InvalidResponse)
        );
    }

    #[test]
    fn success_envelope_on_a_failing_status_is_no_decision() {
        for status in [400, 404, 500, 503] {
            let o = open(
                status,
                None,
                None,
                br#"{"code":0,"result":true,"requestId":"r"}"#,
            );
            let outcome = o.result.unwrap_err();
            assert_eq!(
                outcome.failure_reason(),
                Some(FailureReason::InvalidResponse),
                "{status}"
            );
            assert_eq!(outcome.decision(), crate::outcome::Decision::Unknown);
            assert!(
                outcome.message().contains("contradictory"),
                "{}",
                outcome.message()
            );
            assert_eq!(o.request_id.as_deref(), Some("r"));
        }
        assert_eq!(reason(200, r#"{"code":0,"result":true}"#), None);
    }

    #[test]
    fn result_is_handed_over_as_it_came() {
        let o = open(
            200,
            None,
            Some("application/json"),
            br#"{"code":0,"result":{"a":1}}"#,
        );
        assert_eq!(o.result.unwrap(), serde_json::json!({"a": 1}));
        let o = open(200, None, None, br#"{"code":0}"#);
        assert_eq!(o.result.unwrap(), Value::Null);
    }

    #[test]
    fn excerpt_is_bounded_and_single_line() {
        let long = format!("<html>\n{}\n</html>", "x".repeat(1000));
        let o = open(502, None, None, long.as_bytes()).result.unwrap_err();
        assert!(o.message().len() < 300);
        assert!(!o.message().contains('\n'));
    }
}
