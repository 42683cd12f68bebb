//! The readiness gate's answer for one cluster: open (200) or closed (503), with a JSON body a
//! maintenance pipeline can log.
//!
//! Pure: from a cluster's status, the clock and the gate settings to an answer. It decides
//! nothing about the precheck itself (that is `Outcome`), only whether that outcome, at its age,
//! opens the gate, and shows what `getClusterStatus` said about the nodes (a `diagnosis`). It
//! never starts a precheck; the server asks the scheduler's runner for that.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::ncp::cluster_status::Diagnosis;
use crate::scheduler::FreshSource;
use crate::state::ClusterStatus;

/// Why the gate is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ClosedReason {
    /// NCP reports the cluster changing (a restart or another change is running); this wins
    /// over every other reason, and over a ready answer.
    Changing,
    /// CDSS answered: not every node is available.
    NotReady,
    /// The last precheck got no usable "ready" answer (API error, auth, rate limit, network...).
    Error,
    /// The last ready answer is older than `gate.max_age`.
    Stale,
    /// No precheck has finished yet.
    NeverChecked,
}

/// Where the answer's result came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    /// The last periodic (or earlier fresh) result; no fresh precheck was asked for.
    Latest,
    /// A precheck that finished after this request arrived.
    Fresh,
    /// `?fresh=1` inside `gate.min_fresh_interval`, or over `gate.fresh_budget`: the latest
    /// result, not a new one.
    FreshRateLimited,
}

/// The JSON body of `/gate/{cluster}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct GateAnswer {
    /// The `cluster` label.
    pub cluster: String,
    /// The `region` label.
    pub region: String,
    /// The cluster number that was prechecked.
    pub service_group_instance_no: u64,
    /// True only when the gate is open (HTTP 200).
    pub ready: bool,
    /// Why the gate is closed; absent when open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ClosedReason>,
    /// With `changing`: when the exporter first saw this change (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changing_since: Option<String>,
    /// The precheck's verdict (`ready`, `not_ready`, `api_error`, `timeout`, ...), null if never checked.
    pub verdict: Option<&'static str>,
    /// `cdss_precheck_last_error_code` of that precheck, null if never checked.
    pub code: Option<i64>,
    /// The CDSS or gateway message, or what went wrong.
    pub message: String,
    /// When that precheck finished (RFC 3339, UTC), null if never checked.
    pub checked_at: Option<String>,
    /// Its age in seconds at the time of this answer.
    pub age_seconds: Option<f64>,
    /// NCP's request id, for support tickets.
    pub request_id: Option<String>,
    /// Where the result came from.
    pub source: Source,
    /// With `fresh_rate_limited`: seconds until `?fresh=1` calls NCP again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fresh_retry_in_seconds: Option<f64>,
    /// `gate.max_age`, so a reader knows what "stale" means here.
    pub max_age_seconds: f64,
    /// Why the cluster is not ready, node by node, when `getClusterStatus` was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<DiagnosisView>,
}

/// What `getClusterStatus` said, as the gate and `check --json` show it. Missing counts and
/// colours are absent, never 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct DiagnosisView {
    /// Brokers up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers_up: Option<i64>,
    /// Brokers in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers: Option<i64>,
    /// ZooKeeper nodes up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zookeepers_up: Option<i64>,
    /// ZooKeeper nodes in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zookeepers: Option<i64>,
    /// The brokers' colour, as it came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker_status: Option<String>,
    /// ZooKeeper's colour, as it came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zookeeper_status: Option<String>,
    /// CMAK's status, as it came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmak_status: Option<String>,
    /// Every node whose status is not a healthy one.
    pub failing_nodes: Vec<FailingNode>,
    /// One line, as the landing page and the alert say it.
    pub summary: String,
    /// When it was read (RFC 3339, UTC).
    pub read_at: String,
}

/// One failing node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct FailingNode {
    /// `broker` or `zookeeper`.
    pub role: &'static str,
    /// As listed; `null` when the node was listed without one.
    pub hostname: Option<String>,
    /// As listed; `null` when it was missing.
    pub status: Option<String>,
}

impl DiagnosisView {
    /// The view of a diagnosis read at `read_at`.
    pub(crate) fn of((d, read_at): &(Diagnosis, std::time::SystemTime)) -> Self {
        Self {
            brokers_up: d.brokers.up,
            brokers: d.brokers.total,
            zookeepers_up: d.zookeeper.up,
            zookeepers: d.zookeeper.total,
            broker_status: d.brokers.colour.clone(),
            zookeeper_status: d.zookeeper.colour.clone(),
            cmak_status: d.cmak.clone(),
            failing_nodes: d
                .failing_nodes()
                .map(|(role, n)| FailingNode {
                    role,
                    hostname: n.hostname.clone(),
                    status: n.status.clone(),
                })
                .collect(),
            summary: d.summary(),
            read_at: humantime::format_rfc3339_millis(*read_at).to_string(),
        }
    }
}

/// Evaluates the gate for `status` at `now`.
pub(crate) fn evaluate(
    status: &ClusterStatus,
    now: Instant,
    max_age: Duration,
    fresh: Option<FreshSource>,
) -> GateAnswer {
    // The answer's source for a fresh call's outcome (`None`: no fresh call was asked for).
    let (source, retry_in) = match fresh {
        None => (Source::Latest, None),
        Some(FreshSource::Fresh) => (Source::Fresh, None),
        Some(FreshSource::Recent { retry_in }) => (Source::FreshRateLimited, Some(retry_in)),
    };
    let last = status.last.as_ref();
    let age = last.map(|l| now.saturating_duration_since(l.at));
    let reason = match last {
        _ if status.is_changing() => Some(ClosedReason::Changing),
        None => Some(ClosedReason::NeverChecked),
        Some(l) if l.outcome.is_ready() => (age > Some(max_age)).then_some(ClosedReason::Stale),
        Some(l) if l.outcome.failure_reason().is_none() => Some(ClosedReason::NotReady),
        Some(_) => Some(ClosedReason::Error),
    };
    let since = (status.changing_since).map(|t| humantime::format_rfc3339_millis(t).to_string());
    let message = match (last, age) {
        _ if let Some(since) = &since => {
            let last = last.map_or("no precheck has finished yet".into(), |l| {
                l.outcome.message()
            });
            format!(
                "NCP reports the cluster changing (a restart or another change) since {since}; last precheck: {last}"
            )
        }
        (Some(_), Some(age)) if reason == Some(ClosedReason::Stale) => format!(
            "last ready answer is {}s old, older than gate.max_age {}s",
            age.as_secs(),
            max_age.as_secs()
        ),
        (Some(l), _) => l.outcome.message(),
        (None, _) => "no precheck has finished yet".into(),
    };
    GateAnswer {
        cluster: status.cluster.name.clone(),
        region: status.cluster.region.to_string(),
        service_group_instance_no: status.cluster.service_group_instance_no,
        ready: reason.is_none(),
        reason,
        changing_since: since,
        verdict: last.map(|l| l.outcome.verdict()),
        code: last.map(|l| l.outcome.error_code()),
        message,
        checked_at: last.map(|l| humantime::format_rfc3339_millis(l.at_wall).to_string()),
        // Rounded up to the millisecond, so a stale answer never shows an age equal to max_age.
        age_seconds: age.map(|age| (age.as_secs_f64() * 1000.0).ceil() / 1000.0),
        request_id: last.and_then(|l| l.meta.request_id.clone()),
        source,
        fresh_retry_in_seconds: retry_in.map(|d| d.as_secs_f64()),
        max_age_seconds: max_age.as_secs_f64(),
        diagnosis: status.diagnosis.as_deref().map(DiagnosisView::of),
    }
}

/// The cluster name a `/gate/...` path asks about, and whether `?fresh=1` was asked for. `None`
/// for anything that cannot be a configured cluster's name (slashes, encoded characters, `..`,
/// overlong): the gate never looks further than the config.
pub fn parse_request<'a>(path: &'a str, query: Option<&str>) -> Option<(&'a str, bool)> {
    let name = path.strip_prefix("/gate/")?;
    crate::model::validate_name(name).ok()?;
    let fresh = query.is_some_and(|q| {
        q.split('&')
            .any(|kv| matches!(kv, "fresh" | "fresh=1" | "fresh=true" | "fresh=yes"))
    });
    Some((name, fresh))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::state::LastPrecheck;
    use std::time::SystemTime;

    fn status(outcome: Option<Outcome>, at: Instant) -> ClusterStatus {
        let config = crate::config::Config::parse(
            "clusters:\n  - {name: orders, region: KR, service_group_instance_no: 42}\n",
            std::path::Path::new("t"),
        )
        .unwrap();
        let mut status = ClusterStatus::new(&config.clusters[0]);
        status.last = outcome.map(|outcome| LastPrecheck {
            outcome,
            meta: crate::ncp::client::CallMeta {
                latency: Duration::from_millis(3),
                request_id: Some("rid".into()),
                ..Default::default()
            },
            at,
            at_wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        });
        status
    }

    #[tokio::test(start_paused = true)]
    async fn open_only_when_ready_and_young() {
        let t0 = Instant::now();
        let max_age = Duration::from_secs(120);
        let a = evaluate(
            &status(Some(Outcome::Ready), t0),
            t0 + Duration::from_secs(5),
            max_age,
            None,
        );
        assert!(a.ready);
        assert_eq!(a.reason, None);
        assert_eq!(a.code, Some(0));
        assert_eq!(a.age_seconds, Some(5.0));
        assert_eq!(a.checked_at.as_deref(), Some("2023-11-14T22:13:20.000Z"));
        assert_eq!(a.request_id.as_deref(), Some("rid"));
        assert_eq!(a.source, Source::Latest);

        // Just past max_age: stale, and the age shown is above max_age, not rounded down to it.
        let a = evaluate(
            &status(Some(Outcome::Ready), t0),
            t0 + max_age + Duration::from_micros(400),
            max_age,
            None,
        );
        assert_eq!(a.reason, Some(ClosedReason::Stale));
        assert!(
            a.age_seconds.unwrap() > a.max_age_seconds,
            "{:?}",
            a.age_seconds
        );

        let a = evaluate(
            &status(Some(Outcome::Ready), t0),
            t0 + Duration::from_secs(121),
            max_age,
            None,
        );
        assert!(!a.ready);
        assert_eq!(a.reason, Some(ClosedReason::Stale));
    }

    #[tokio::test(start_paused = true)]
    async fn closed_reasons() {
        let t0 = Instant::now();
        let max_age = Duration::from_secs(120);
        let reason = |o: Option<Outcome>| evaluate(&status(o, t0), t0, max_age, None).reason;
        assert_eq!(reason(None), Some(ClosedReason::NeverChecked));
        assert_eq!(
            reason(Some(Outcome::NotReady)),
            Some(ClosedReason::NotReady)
        );
        let api = Outcome::ApiError {
            http_status: 400,
            code: 3,
            message: "Invalid Service Group Instance No".into(),
        };
        assert_eq!(reason(Some(api)), Some(ClosedReason::Error));
        assert_eq!(
            reason(Some(Outcome::Timeout {
                after: Duration::from_secs(1)
            })),
            Some(ClosedReason::Error)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn changing_closes_the_gate_before_every_other_reason() {
        let t0 = Instant::now();
        let max_age = Duration::from_secs(120);
        let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        for outcome in [None, Some(Outcome::Ready), Some(Outcome::NotReady)] {
            let mut s = status(outcome.clone(), t0);
            s.changing_since = Some(since);
            let a = evaluate(&s, t0 + Duration::from_secs(500), max_age, None);
            assert!(!a.ready, "{outcome:?}");
            assert_eq!(a.reason, Some(ClosedReason::Changing), "{outcome:?}");
            let v = serde_json::to_value(&a).unwrap();
            assert_eq!(v["reason"], "changing");
            assert_eq!(v["changing_since"], "2023-11-14T22:15:00.000Z");
            assert!(a.message.contains("changing"), "{}", a.message);
        }
        // Not changing: no such field, and the reasons are as before.
        let a = evaluate(&status(Some(Outcome::Ready), t0), t0, max_age, None);
        assert!(a.ready);
        let v = serde_json::to_value(&a).unwrap();
        assert!(v.get("changing_since").is_none(), "{v}");
    }

    #[tokio::test(start_paused = true)]
    async fn json_shape() {
        let t0 = Instant::now();
        let fresh = Some(FreshSource::Recent {
            retry_in: Duration::from_secs(4),
        });
        let a = evaluate(
            &status(Some(Outcome::NotReady), t0),
            t0,
            Duration::from_secs(60),
            fresh,
        );
        let v: serde_json::Value = serde_json::to_value(&a).unwrap();
        assert_eq!(v["cluster"], "orders");
        assert_eq!(v["region"], "KR");
        assert_eq!(v["ready"], false);
        assert_eq!(v["reason"], "not_ready");
        assert_eq!(v["source"], "fresh_rate_limited");
        assert_eq!(v["fresh_retry_in_seconds"], 4.0);
        for key in ["code", "message", "checked_at", "age_seconds", "request_id"] {
            assert!(v.get(key).is_some(), "{key} missing");
        }
    }

    /// Any request path and query: a name comes out only when it is a plain configured-name
    /// candidate (the fuzz target `gate_path` runs the same check).
    mod properties {
        use super::parse_request;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

            #[test]
            fn gate_paths_only_ever_name_plain_names(path in prop_oneof![".{0,200}", "/gate/[a-zA-Z0-9._%/-]{0,140}"], query in proptest::option::of(".{0,40}")) {
                if let Some((name, _)) = parse_request(&path, query.as_deref()) {
                    prop_assert!(!name.is_empty() && name.len() <= 128);
                    prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')));
                    prop_assert!(!name.starts_with('.'), "no dot-names like ..");
                }
            }
        }
    }
}
