//! `rollingRestart` and `rollingRestartProgressCheck`: the two maintenance calls, used only by the
//! `restart` command (the exporter never sends a mutating call).
//!
//! Both go through [`Clients::call`] like every other, signed by the account the caller names.
//! `rollingRestart` is sent once and never retried: what its answer says about whether NCP started
//! the restart is decided here ([`Started`]), conservatively: anything that may have reached CDSS
//! without a readable answer is [`Started::Unknown`]. The progress check's `result` has the shape
//! of `getClusterStatus`'s and is read by the same decoder.

use serde_json::Value;

use crate::model::Cluster;
use crate::ncp::client::{CallMeta, Clients};
use crate::ncp::cluster_status::{Diagnosis, decode};
use crate::ncp::usage::Operation;
use crate::outcome::Outcome;

/// What the answer to `rollingRestart` says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Started {
    /// `code` 0, `result` true: NCP accepted the restart.
    Yes,
    /// It was refused, or never reached CDSS (no keys, a gateway rejection before CDSS): the
    /// restart did not start.
    No(Outcome),
    /// No answer that says (a timeout, a cut connection, an unreadable body, a gateway error that
    /// may come after CDSS got the request): NCP may have started it.
    Unknown(Outcome),
}

/// The request body both calls send.
fn body(cluster: &Cluster) -> String {
    let no = cluster.service_group_instance_no;
    format!("{{\"serviceGroupInstanceNo\":{no}}}")
}

/// Sends `rollingRestart` for `cluster`, signed with its account's keys, exactly once.
pub(crate) async fn start(clients: &Clients, cluster: &Cluster) -> (Started, CallMeta) {
    let account = &cluster.account;
    let url = &cluster.endpoint.rolling_restart;
    let accepted = |result: Value| match result {
        Value::Bool(true) => Ok(()),
        other => Err(format!("`result` is {other}, not true")),
    };
    let body = body(cluster);
    let call = clients.call(
        account,
        Operation::RollingRestart,
        url,
        Some(&body),
        accepted,
    );
    let (result, meta) = call.await;
    (started(result), meta)
}

/// Whether NCP started the restart, from the call's result.
fn started(result: Result<(), Outcome>) -> Started {
    let failure = match result {
        Ok(()) => return Started::Yes,
        Err(failure) => failure,
    };
    match &failure {
        // CDSS answered, and the answer is no (a 5xx from CDSS may come after it acted).
        Outcome::ApiError { http_status, .. } if *http_status < 500 => Started::No(failure),
        Outcome::NoCredentials { .. } => Started::No(failure),
        // The gateway refused it before CDSS: keys, permissions, quota, a bad request.
        Outcome::GatewayError { http_status, .. } if *http_status < 500 => Started::No(failure),
        _ => Started::Unknown(failure),
    }
}

/// Reads the restart's progress (the cluster's status) once, signed with its account's keys.
pub(crate) async fn progress(clients: &Clients, cluster: &Cluster) -> Result<Diagnosis, Outcome> {
    let account = &cluster.account;
    let url = &cluster.endpoint.restart_progress;
    let body = body(cluster);
    let call = clients.call(
        account,
        Operation::RestartProgress,
        url,
        Some(&body),
        decode,
    );
    call.await.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ncp::envelope::open;

    fn answer(status: u16, body: &str) -> Started {
        let decoded = open(status, None, None, body.as_bytes()).decode(|v| match v {
            Value::Bool(true) => Ok(()),
            other => Err(format!("{other}")),
        });
        started(decoded)
    }

    #[test]
    fn only_a_readable_answer_says_whether_it_started() {
        let ok = r#"{"code":0,"message":"SUCCESS","result":true,"requestId":"r"}"#;
        assert_eq!(answer(200, ok), Started::Yes);
        let refused = r#"{"code":5,"message":"not available","result":null,"requestId":"r"}"#;
        assert!(matches!(answer(200, refused), Started::No(_)));
        assert!(matches!(answer(400, refused), Started::No(_)));
        assert!(matches!(answer(500, refused), Started::Unknown(_)));
        let auth = r#"{"error":{"errorCode":"200","message":"Authentication Failed"}}"#;
        assert!(matches!(answer(401, auth), Started::No(_)));
        let limited = r#"{"error":{"errorCode":"420","message":"Rate Limited"}}"#;
        assert!(matches!(answer(429, limited), Started::No(_)));
        // After CDSS may have got it: the gateway's endpoint timeout, a proxy page, no answer.
        let late = r#"{"error":{"errorCode":"510","message":"Endpoint Timeout"}}"#;
        assert!(matches!(answer(504, late), Started::Unknown(_)));
        assert!(matches!(
            answer(502, "<html>bad gateway</html>"),
            Started::Unknown(_)
        ));
        let null = r#"{"code":0,"message":"SUCCESS","result":null,"requestId":"r"}"#;
        assert!(matches!(answer(200, null), Started::Unknown(_)));
        assert!(matches!(answer(200, "{not json"), Started::Unknown(_)));
        let lost = Err(Outcome::Timeout {
            after: std::time::Duration::from_secs(5),
        });
        assert!(matches!(started(lost), Started::Unknown(_)));
        let cut = Err(Outcome::ConnectionError {
            detail: "reset".into(),
        });
        assert!(matches!(started(cut), Started::Unknown(_)));
    }
}
