//! README, "Why a cluster is not ready": getClusterStatus after a failing precheck, against the
//! simulator on loopback.

use std::time::Duration;

use cdss_precheck_exporter::sim::{Behaviour, RawResponse};

use crate::support::{Harness, Spec, metrics_until, poll_until, value, value_with};

const HEAD: &str = "interval: 2s\ntimeout: 1s\n";

const CLUSTERS: [Spec; 2] = [
    ("orders", "KR", 11, Some(Behaviour::Ready)),
    ("payments", "SGN", 12, Some(Behaviour::NotReady)),
];

#[tokio::test]
async fn a_not_ready_cluster_says_which_node_and_a_healthy_one_costs_nothing() {
    let h = Harness::start(HEAD, &CLUSTERS).await;
    let m = metrics_until(&h, Duration::from_secs(20), "payments' node status", |m| {
        value(m, "cdss_cluster_brokers_up", "payments").is_some()
    })
    .await;
    assert_eq!(value(&m, "cdss_cluster_brokers_up", "payments"), Some(2.0));
    assert_eq!(value(&m, "cdss_cluster_brokers", "payments"), Some(3.0));
    assert_eq!(
        value(&m, "cdss_cluster_zookeepers_up", "payments"),
        Some(3.0)
    );
    assert_eq!(
        value_with(
            &m,
            "cdss_cluster_node_status",
            "cluster=\"payments\",region=\"SGN\",role=\"broker\",hostname=\"kafka-2\",status=\"red\",failing=\"true\""
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value_with(
            &m,
            "cdss_cluster_node_status",
            "cluster=\"payments\",region=\"SGN\",role=\"broker\",hostname=\"kafka-1\",status=\"green\",failing=\"false\""
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value_with(
            &m,
            "cdss_cluster_role_status",
            "cluster=\"payments\",region=\"SGN\",role=\"broker\",status=\"red\""
        ),
        Some(1.0),
        "{m}"
    );
    assert!(
        value(
            &m,
            "cdss_cluster_status_last_read_timestamp_seconds",
            "payments"
        )
        .is_some()
    );
    // The ready cluster has no status series, and made no status call.
    assert_eq!(value(&m, "cdss_cluster_brokers_up", "orders"), None, "{m}");

    // The gate names the failing node.
    let (status, body) = h.get("/gate/payments").await;
    assert_eq!(status, 503, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let d = &v["diagnosis"];
    assert_eq!(d["brokers_up"], 2, "{body}");
    assert_eq!(d["brokers"], 3, "{body}");
    assert_eq!(d["broker_status"], "red", "{body}");
    assert_eq!(
        d["failing_nodes"],
        serde_json::json!([{"role": "broker", "hostname": "kafka-2", "status": "red"}]),
        "{body}"
    );
    assert_eq!(
        d["summary"],
        "broker kafka-2 is red; 2 of 3 brokers up; 3 of 3 zookeepers up; CMAK green"
    );
    let (_, ready) = h.get("/gate/orders").await;
    assert!(!ready.contains("diagnosis"), "{ready}");
    // And so does the landing page, next to the verdict.
    let (_, page) = h.get("/").await;
    assert!(
        page.contains("broker kafka-2 is red; 2 of 3 brokers up"),
        "{page}"
    );

    // Scheduled rounds read again (an event, with room for a loaded machine): the start-up
    // read and at least one more, an interval or more after it.
    poll_until(
        Duration::from_secs(20),
        "a second status read",
        || async { h.sim.status_calls(12).to_string() },
        |n| n.parse::<u64>().unwrap_or_default() >= 2,
    )
    .await;
    // Every status call is counted (polled: one may be in flight at the moment of a scrape).
    metrics_until(&h, Duration::from_secs(10), "status calls counted", |m| {
        value_with(
            m,
            "cdss_exporter_api_requests_total",
            "operation=\"cluster_status\",result=\"ok\"",
        ) == Some(h.sim.status_calls(12) as f64)
    })
    .await;
    // Stopped, nothing is in flight, and the counts are final. Reads are spaced by the slots of
    // the prechecks that asked for them, an interval apart: the start-up precheck reads, the
    // first scheduled round (its slot less than an interval after the start-up precheck's) does
    // not, unless the start-up precheck took so long that its slot is an interval away; every
    // later round reads. (Exactly which, on a paused clock: scheduler::tests::diagnosis.)
    let sim = h.stop_keeping_sim().await;
    assert_eq!(
        sim.status_calls(11),
        0,
        "a ready cluster costs no status call"
    );
    let (prechecks, reads) = (sim.calls(12), sim.status_calls(12));
    assert!(
        reads >= 2 && (prechecks - 1..=prechecks).contains(&reads),
        "{reads} status calls for {prechecks} prechecks"
    );
}

/// README: reads are "at most once per interval per cluster ... `?fresh=1` ... in between does not
/// read again. A verdict that changed since the last read (ready, then not) is read at once".
#[tokio::test]
async fn fresh_prechecks_between_rounds_read_nothing_but_a_new_verdict_is_read_at_once() {
    // A 60 s interval: payments' first scheduled round, if it comes during the test, is less
    // than an interval after the start-up read and reads nothing either, so every count is exact.
    let h = Harness::start(
        "interval: 60s\ntimeout: 5s\ngate:\n  min_fresh_interval: 0s\n",
        &CLUSTERS,
    )
    .await;
    metrics_until(&h, Duration::from_secs(20), "payments' node status", |m| {
        value(m, "cdss_cluster_brokers_up", "payments").is_some()
    })
    .await;
    assert_eq!(h.sim.status_calls(12), 1, "read at start");
    let fresh = || async {
        let (status, body) = h.get("/gate/payments?fresh=1").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["source"], "fresh", "{body}");
        (status, v)
    };
    let before = h.sim.calls(12);
    for _ in 0..3 {
        let (status, v) = fresh().await;
        assert_eq!(status, 503, "{v}");
        assert_eq!(v["diagnosis"]["brokers_up"], 2, "{v}");
    }
    assert!(h.sim.calls(12) >= before + 3, "three fresh prechecks");
    assert_eq!(
        h.sim.status_calls(12),
        1,
        "fresh prechecks within the interval read no status"
    );
    // Ready: the diagnosis goes, and nothing is read.
    h.sim.set_behaviour(12, Behaviour::Ready);
    let (status, v) = fresh().await;
    assert_eq!(status, 200, "{v}");
    assert!(v.get("diagnosis").is_none(), "{v}");
    assert_eq!(
        value(&h.metrics().await, "cdss_cluster_brokers_up", "payments"),
        None
    );
    assert_eq!(h.sim.status_calls(12), 1, "a ready answer reads nothing");
    // Not ready again: read at once, not an interval later.
    h.sim.set_behaviour(12, Behaviour::NotReady);
    let (status, v) = fresh().await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["diagnosis"]["brokers_up"], 2, "{v}");
    assert_eq!(
        h.sim.status_calls(12),
        2,
        "the new verdict was read at once"
    );
    assert_eq!(h.sim.status_calls(11), 0, "orders is ready: never read");
    h.stop().await;
}

#[tokio::test]
async fn a_failing_status_call_leaves_the_precheck_alone_and_is_counted() {
    let failures: [(&str, Behaviour, &str); 5] = [
        (
            "401",
            Behaviour::Raw(RawResponse::new(
                401,
                "application/json",
                r#"{"error":{"errorCode":"200","message":"Authentication Failed"}}"#,
            )),
            "auth_error",
        ),
        ("500", Behaviour::Http500Html, "http_error"),
        ("bad JSON", Behaviour::MalformedJson, "invalid_response"),
        (
            "a success envelope that is no status",
            Behaviour::Raw(RawResponse::new(
                200,
                "application/json",
                r#"{"code":0,"message":"SUCCESS","result":true}"#,
            )),
            "invalid_response",
        ),
        (
            "timeout",
            Behaviour::Slow(Duration::from_secs(3), Box::new(Behaviour::Ready)),
            "timeout",
        ),
    ];
    for (what, failure, reason) in failures {
        let h = Harness::start(HEAD, &CLUSTERS).await;
        h.sim.set_status_failure(12, Some(failure));
        let selector = format!("operation=\"cluster_status\",result=\"{reason}\"");
        let m = metrics_until(&h, Duration::from_secs(20), what, |m| {
            value_with(m, "cdss_exporter_api_requests_total", &selector).is_some()
        })
        .await;
        // The precheck's answer stands: not ready, code 0, no failure counted.
        assert_eq!(
            value(&m, "cdss_precheck_ok", "payments"),
            Some(0.0),
            "{what}"
        );
        assert_eq!(
            value(&m, "cdss_precheck_last_error_code", "payments"),
            Some(0.0),
            "{what}"
        );
        assert!(
            !m.contains("cdss_precheck_failures_total{cluster=\"payments\""),
            "{what}: {m}"
        );
        assert_eq!(
            value(&m, "cdss_cluster_brokers_up", "payments"),
            None,
            "{what}: {m}"
        );
        let (status, body) = h.get("/gate/payments").await;
        assert_eq!(status, 503, "{what}");
        assert!(body.contains("\"reason\":\"not_ready\""), "{what}: {body}");
        h.stop().await;
    }
}

#[tokio::test]
async fn an_unknown_colour_is_shown_as_it_came() {
    let h = Harness::start(HEAD, &CLUSTERS).await;
    h.sim.set_status_failure(
        12,
        Some(Behaviour::Raw(RawResponse::new(
            200,
            "application/json",
            r#"{"code":0,"message":"SUCCESS","result":{"brokerStatus":"ultraviolet","brokerStatusPerNode":[{"hostname":"kafka-9","status":"rebalancing"}]}}"#,
        ))),
    );
    let m = metrics_until(&h, Duration::from_secs(20), "the odd colour", |m| {
        m.contains("status=\"ultraviolet\"")
    })
    .await;
    // The node's one series, parsed: every label as it came, and the value.
    let nodes: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("cdss_cluster_node_status{"))
        .collect();
    assert_eq!(
        nodes,
        [
            "cdss_cluster_node_status{cluster=\"payments\",region=\"SGN\",role=\"broker\",hostname=\"kafka-9\",status=\"rebalancing\",failing=\"true\"} 1"
        ],
        "{m}"
    );
    assert_eq!(
        value_with(
            &m,
            "cdss_cluster_role_status",
            "cluster=\"payments\",region=\"SGN\",role=\"broker\",status=\"ultraviolet\""
        ),
        Some(1.0),
        "{m}"
    );
    // Counts it did not send are absent, not 0.
    assert_eq!(
        value(&m, "cdss_cluster_brokers_up", "payments"),
        None,
        "{m}"
    );
    let (_, body) = h.get("/gate/payments").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let d = &v["diagnosis"];
    assert_eq!(d["broker_status"], "ultraviolet", "{body}");
    assert_eq!(
        d["failing_nodes"],
        serde_json::json!([{"role": "broker", "hostname": "kafka-9", "status": "rebalancing"}]),
        "{body}"
    );
    assert!(d.get("brokers_up").is_none(), "{body}");
    assert!(!body.contains("brokers_up"), "{body}");
    h.stop().await;
}
