//! `Outcome`: how a call to NCP ended, and every view of it.
//!
//! Every answer (or failure to get one) becomes exactly one `Outcome`; `ncp` reads the wire and
//! picks the variant, and this module decides what each variant means: `ok`, the decision (go,
//! no-go, unknown), the error code, the failure reason, the message. Metrics, the landing page,
//! the gate and `check` derive everything from it and decide nothing themselves. Pure.

use std::time::Duration;

/// How a precheck ended.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Outcome {
    /// `code` 0 and `result` true: every node is available for a rolling restart.
    #[error("ready for a rolling restart")]
    Ready,
    /// `code` 0 and `result` false or null: CDSS answered, and the answer is no.
    #[error("not every node is available for a rolling restart")]
    NotReady,
    /// A CDSS envelope with `code` != 0, whatever the HTTP status.
    #[error("CDSS error code {code} (HTTP {http_status}): {message}")]
    ApiError {
        /// HTTP status the envelope came with (200, 400 and 500 are all seen).
        http_status: u16,
        /// The CDSS `code`.
        code: i64,
        /// The CDSS `message`: the cause, per NCP docs.
        message: String,
    },
    /// The API Gateway's `{"error":{"errorCode":..}}` shape: the request never reached CDSS.
    #[error("API gateway error {}(HTTP {http_status}): {message}", code.map(|c| format!("{c} ")).unwrap_or_default())]
    GatewayError {
        /// HTTP status; 401 means authentication, 429 rate limiting.
        http_status: u16,
        /// `errorCode` as a number, when it is one (it arrives as a string or a number).
        code: Option<i64>,
        /// The gateway's `message`, with `details` appended when present.
        message: String,
    },
    /// A response that is not JSON: an HTML error page, a redirect (never followed), and so on.
    #[error("HTTP {http_status}: {detail}")]
    HttpError {
        /// HTTP status.
        http_status: u16,
        /// What was wrong, for logs and the landing page.
        detail: String,
    },
    /// A body that is not a CDSS answer we can trust: not an envelope on a 2xx, or a success
    /// envelope on a status that says the call failed.
    #[error("undecodable response (HTTP {http_status}): {detail}")]
    InvalidResponse {
        /// HTTP status.
        http_status: u16,
        /// What was wrong with the body.
        detail: String,
    },
    /// The body was larger than the configured cap; it was not read to the end.
    #[error("response body larger than {limit} bytes")]
    BodyTooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// No complete answer within the timeout.
    #[error("no answer within {}", humantime::format_duration(*after))]
    Timeout {
        /// The timeout that ran out.
        after: Duration,
    },
    /// Connecting, TLS, or the connection itself failed.
    #[error("connection error: {detail}")]
    ConnectionError {
        /// The transport's error chain.
        detail: String,
    },
    /// The cluster's account has no usable keys (none loaded, or server role keys past their
    /// `Expiration` that could not be refreshed): nothing was sent.
    #[error(
        "no usable API keys for account {account:?} (none loaded, or expired and not refreshed); nothing was sent"
    )]
    NoCredentials {
        /// The account name from the config.
        account: String,
    },
}

/// Why a precheck did not produce an answer from CDSS: the `reason` label of
/// `cdss_precheck_failures_total`. A fixed set, one per failing `Outcome` kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum FailureReason {
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
    /// The account has no keys: nothing was sent.
    NoCredentials,
}

impl FailureReason {
    /// Every reason, in a stable order (for exposition and docs).
    pub(crate) const ALL: [FailureReason; 10] = [
        FailureReason::ApiError,
        FailureReason::AuthError,
        FailureReason::RateLimited,
        FailureReason::GatewayError,
        FailureReason::HttpError,
        FailureReason::InvalidResponse,
        FailureReason::BodyTooLarge,
        FailureReason::Timeout,
        FailureReason::ConnectionError,
        FailureReason::NoCredentials,
    ];

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
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
            FailureReason::NoCredentials => "no_credentials",
        }
    }

    /// Index into per-reason counters.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What an answer means for someone who wants to start a rolling restart now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Decision {
    /// CDSS said ready: go.
    Go,
    /// CDSS said no: `result` false, or a CDSS API error (e.g. code 3, no such cluster).
    NoGo,
    /// No decision could be made: auth, rate limit, gateway, network, timeout, unreadable answer.
    Unknown,
    /// NCP reports the cluster changing (a restart or another change is running): not now,
    /// whatever the precheck said.
    Changing,
}

impl Decision {
    /// The decision for a cluster whose last precheck decided `self`: a change NCP reports
    /// overrides it, even a go.
    pub(crate) fn unless_changing(self, changing: bool) -> Decision {
        if changing { Decision::Changing } else { self }
    }
}

/// Whether NCP reports a cluster changing: the listing's `serverStatus` is `changing`, or the
/// last precheck was not ready and a role's colour in the last `getClusterStatus` read is
/// `orange` (NCP's colour for "changing"; red is "abnormal"). Words compare case-insensitively.
pub(crate) fn is_changing<'a>(
    server_status: Option<&str>,
    last: Option<&Outcome>,
    colours: impl IntoIterator<Item = Option<&'a str>>,
) -> bool {
    let not_ready = last.is_some_and(|o| !o.is_ready());
    listed_changing(server_status) || (not_ready && colours.into_iter().any(is_orange))
}

/// Whether a listed `serverStatus` is `changing` (any case).
pub(crate) fn listed_changing(server_status: Option<&str>) -> bool {
    server_status.is_some_and(|s| s.eq_ignore_ascii_case("changing"))
}

/// Whether a role's colour is `orange`, NCP's colour for "changing" (any case).
pub(crate) fn is_orange(colour: Option<&str>) -> bool {
    colour.is_some_and(|c| c.eq_ignore_ascii_case("orange"))
}

/// `cdss_precheck_last_error_code` when no usable answer came.
pub(crate) const NO_ANSWER_CODE: i64 = -1;

/// What replaces a key that an answer's text repeats.
pub(crate) const REDACTED: &str = "<redacted>";

/// `text` with every occurrence of a non-empty `key` replaced by [`REDACTED`].
pub(crate) fn redact(text: &mut String, keys: &[&str]) {
    for key in keys.iter().filter(|k| !k.is_empty()) {
        if text.contains(key) {
            *text = text.replace(key, REDACTED);
        }
    }
}

impl Outcome {
    /// The same outcome with `keys` removed from the text it carries: a gateway that repeats
    /// the access key (for example in `details`) must not put it into our logs and pages.
    pub(crate) fn redact(&mut self, keys: &[&str]) {
        match self {
            Outcome::ApiError { message, .. } | Outcome::GatewayError { message, .. } => {
                redact(message, keys)
            }
            Outcome::HttpError { detail, .. }
            | Outcome::InvalidResponse { detail, .. }
            | Outcome::ConnectionError { detail } => redact(detail, keys),
            Outcome::Ready
            | Outcome::NotReady
            | Outcome::BodyTooLarge { .. }
            | Outcome::Timeout { .. }
            | Outcome::NoCredentials { .. } => {}
        }
    }

    /// True only for `Ready`: the one value that may read as "go".
    pub(crate) fn is_ready(&self) -> bool {
        matches!(self, Outcome::Ready)
    }

    /// Go, no-go, or "couldn't ask": what a maintenance pipeline branches on.
    pub(crate) fn decision(&self) -> Decision {
        match self {
            Outcome::Ready => Decision::Go,
            Outcome::NotReady | Outcome::ApiError { .. } => Decision::NoGo,
            _ => Decision::Unknown,
        }
    }

    /// `None` when CDSS gave an answer (ready or not ready); otherwise why not.
    pub(crate) fn failure_reason(&self) -> Option<FailureReason> {
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
            Outcome::NoCredentials { .. } => FailureReason::NoCredentials,
        })
    }

    /// CDSS's code 3: it knows no such cluster number, so there are no nodes to ask about.
    pub(crate) fn is_no_such_cluster(&self) -> bool {
        matches!(self, Outcome::ApiError { code: 3, .. })
    }

    /// Whether this outcome calls for `getClusterStatus`: CDSS said no, or answered with an
    /// error other than "no such cluster".
    pub(crate) fn worth_diagnosing(&self) -> bool {
        match self {
            Outcome::NotReady => true,
            Outcome::ApiError { .. } => !self.is_no_such_cluster(),
            _ => false,
        }
    }

    /// The lane rule: the gateway did not answer at all (timeout, refused or broken connection),
    /// so the cluster's next precheck waits with the other suspects, never with answering ones.
    pub(crate) fn is_suspect(&self) -> bool {
        matches!(
            self,
            Outcome::Timeout { .. } | Outcome::ConnectionError { .. }
        )
    }

    /// A precheck that never ran because its task failed (a bug; the log has the panic): no
    /// answer, so it can never read as go.
    pub(crate) fn task_failed() -> Self {
        Outcome::ConnectionError {
            detail: "precheck task failed".into(),
        }
    }

    /// No request could be made: the operation's URL could not be built from `base` (a gateway
    /// URL that validation let through but the operation's path cannot extend). Nothing was
    /// sent, so there is no HTTP status (0).
    pub(crate) fn no_url(operation: &str, base: &str, error: impl std::fmt::Display) -> Self {
        Outcome::InvalidResponse {
            http_status: 0,
            detail: format!("no {operation} URL for {base}: {error}"),
        }
    }

    /// True when the answer asks us to slow down (HTTP 429 in any shape).
    pub(crate) fn is_rate_limited(&self) -> bool {
        self.failure_reason() == Some(FailureReason::RateLimited)
    }

    /// The value of `cdss_precheck_last_error_code`: the CDSS code for CDSS answers (0 on ready and
    /// not ready), the gateway's errorCode for gateway errors, and -1 when no usable answer came.
    pub(crate) fn error_code(&self) -> i64 {
        match self {
            Outcome::Ready | Outcome::NotReady => 0,
            Outcome::ApiError { code, .. } => *code,
            Outcome::GatewayError { code, .. } => code.unwrap_or(NO_ANSWER_CODE),
            _ => NO_ANSWER_CODE,
        }
    }

    /// A short verdict word for tables and logs.
    pub(crate) fn verdict(&self) -> &'static str {
        match self {
            Outcome::Ready => "ready",
            Outcome::NotReady => "not_ready",
            other => other
                .failure_reason()
                .map_or("error", FailureReason::as_str),
        }
    }

    /// A one-line human description (the CDSS or gateway message, or what went wrong).
    pub(crate) fn message(&self) -> String {
        self.to_string()
    }
}

/// What a node's status word in `getClusterStatus` says on its own (the words are not
/// documented per node, so only well-known ones decide).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeHealth {
    /// A word for a running node (`green`, `running`, ...).
    Fine,
    /// A word for a node that is not (`red`, `down`, ...).
    Failing,
    /// Missing, or a word we do not know.
    Unknown,
}

impl NodeHealth {
    /// The health a node's `status` word says.
    pub(crate) fn of(status: Option<&str>) -> Self {
        let Some(status) = status else {
            return NodeHealth::Unknown;
        };
        match status.to_ascii_lowercase().as_str() {
            "green" | "running" | "normal" | "ok" | "up" | "healthy" | "active" => NodeHealth::Fine,
            "red" | "orange" | "yellow" | "gray" | "grey" | "down" | "stopped" | "error"
            | "failed" | "abnormal" | "unhealthy" | "dead" | "inactive" => NodeHealth::Failing,
            _ => NodeHealth::Unknown,
        }
    }
}

/// A clock difference with the gateway past which a warning is logged (seconds); NCP rejects
/// timestamps more than 300 s off.
pub(crate) const CLOCK_SKEW_WARN_SECONDS: f64 = 60.0;

/// Why an authentication failure probably happened, when the gateway's clock says so: `Some`
/// for an auth error while the clocks are more than [`CLOCK_SKEW_WARN_SECONDS`] apart. The
/// exporter's log and `check` both say it in these words.
pub(crate) fn clock_skew_hint(outcome: &Outcome, clock_skew: Option<f64>) -> Option<String> {
    let skew = clock_skew.filter(|s| s.abs() > CLOCK_SKEW_WARN_SECONDS)?;
    (outcome.failure_reason() == Some(FailureReason::AuthError)).then(|| {
        format!(
            "this host's clock is {:.0} s off the gateway's, which is the likely cause (NCP rejects timestamps more than 300 s off)",
            skew.abs()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_every_key_and_ignores_empty_ones() {
        let mut o = Outcome::GatewayError {
            http_status: 401,
            code: Some(200),
            message: "Authentication Failed: bad signature for AK-1 (AK-1, secret s3cr3t)".into(),
        };
        o.redact(&["AK-1", "s3cr3t", ""]);
        assert_eq!(
            o.message(),
            "API gateway error 200 (HTTP 401): Authentication Failed: bad signature for <redacted> (<redacted>, secret <redacted>)"
        );
        let mut text = String::from("nothing to hide");
        redact(&mut text, &[""]);
        assert_eq!(text, "nothing to hide");
    }

    #[test]
    fn the_clock_is_blamed_only_for_auth_errors_with_skew() {
        let auth = Outcome::GatewayError {
            http_status: 401,
            code: Some(200),
            message: "Authentication Failed".into(),
        };
        assert_eq!(
            clock_skew_hint(&auth, Some(-600.4)).as_deref(),
            Some(
                "this host's clock is 600 s off the gateway's, which is the likely cause (NCP rejects timestamps more than 300 s off)"
            )
        );
        assert_eq!(clock_skew_hint(&auth, Some(30.0)), None);
        assert_eq!(clock_skew_hint(&auth, None), None);
        assert_eq!(clock_skew_hint(&Outcome::NotReady, Some(600.0)), None);
    }

    #[test]
    fn decisions_separate_no_from_could_not_ask() {
        assert_eq!(Outcome::Ready.decision(), Decision::Go);
        assert_eq!(Outcome::NotReady.decision(), Decision::NoGo);
        let api = Outcome::ApiError {
            http_status: 200,
            code: 3,
            message: "Invalid Service Group Instance No".into(),
        };
        assert_eq!(api.decision(), Decision::NoGo);
        assert_eq!(api.error_code(), 3);
        assert_eq!(
            Outcome::Timeout {
                after: Duration::from_secs(1)
            }
            .decision(),
            Decision::Unknown
        );
    }

    #[test]
    fn changing_comes_from_the_listing_or_an_orange_role_of_a_cluster_not_ready() {
        let orange = [Some("green"), Some("ORANGE")];
        let red = [Some("red"), None];
        assert!(is_changing(Some("Changing"), None, []));
        assert!(is_changing(Some("changing"), Some(&Outcome::Ready), red));
        assert!(!is_changing(Some("running"), Some(&Outcome::Ready), orange));
        assert!(is_changing(None, Some(&Outcome::NotReady), orange));
        assert!(!is_changing(None, Some(&Outcome::NotReady), red));
        assert!(!is_changing(None, None, orange), "never checked");
        let timeout = Outcome::Timeout {
            after: Duration::from_secs(1),
        };
        assert!(is_changing(None, Some(&timeout), orange));
        assert_eq!(Decision::Go.unless_changing(true), Decision::Changing);
        assert_eq!(Decision::Unknown.unless_changing(false), Decision::Unknown);
    }

    #[test]
    fn missing_keys_are_their_own_outcome() {
        let o = Outcome::NoCredentials {
            account: "prod".into(),
        };
        assert_eq!(o.failure_reason(), Some(FailureReason::NoCredentials));
        assert_eq!(o.verdict(), "no_credentials");
        assert_eq!(o.decision(), Decision::Unknown);
        assert_eq!(o.error_code(), NO_ANSWER_CODE);
        assert!(o.message().contains("\"prod\""), "{}", o.message());
    }

    #[test]
    fn every_reason_has_a_distinct_label_and_index() {
        let labels: std::collections::HashSet<_> =
            FailureReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), FailureReason::ALL.len());
        for (i, r) in FailureReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
