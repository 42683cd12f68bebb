//! `GET /gate/{cluster}` over loopback: every status and reason, staleness, `?fresh=1` sharing one
//! upstream call among concurrent callers, and its rate limit.

use std::time::{Duration, Instant};

use crate::support::{Harness, Spec, clear_of_slot, clear_of_slots, raw_get_status, value};
use cdss_precheck_exporter::sim::Behaviour;
use serde_json::Value;

async fn gate(h: &Harness, path: &str) -> (u16, Value) {
    let r = h.http.get(h.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    assert_eq!(
        r.headers().get("content-type").unwrap(),
        "application/json",
        "{path}"
    );
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap(),
    )
}

#[tokio::test]
async fn statuses_and_reasons() {
    let clusters: Vec<Spec> = vec![
        ("orders", "KR", 1, Some(Behaviour::Ready)),
        ("payments", "SGN", 2, Some(Behaviour::NotReady)),
        ("legacy", "KR", 9_000_001, None),
        (
            "hangs",
            "JPN",
            3,
            Some(Behaviour::Slow(
                Duration::from_secs(60),
                Box::new(Behaviour::Ready),
            )),
        ),
    ];
    // "hangs" stays in flight for the whole test (timeout 10 s; the checks take well under a
    // second). Stopping waits for it, as the README says. The test counts requests, so no
    // scheduled slot may fall inside it: slots are anchored to the wall clock.
    let quick = ["orders", "payments", "legacy"];
    clear_of_slots(&quick, Duration::from_secs(3600), Duration::from_secs(20)).await;
    let h = Harness::start("interval: 1h\ntimeout: 10s", &clusters).await;
    // Wait until the three quick ones are in, and the not-ready one's status was read; "hangs"
    // is still in flight.
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let m = h.metrics().await;
        if quick
            .iter()
            .all(|c| value(&m, "cdss_precheck_runs_total", c) == Some(1.0))
            && h.sim.status_calls(2) >= 1
        {
            break;
        }
        assert!(Instant::now() < deadline, "{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (status, v) = gate(&h, "/gate/orders").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["ready"], true);
    assert_eq!(v["cluster"], "orders");
    assert_eq!(v["region"], "KR");
    assert_eq!(v["code"], 0);
    assert_eq!(v["source"], "latest");
    assert!(v["reason"].is_null());
    assert!(v["request_id"].as_str().unwrap().starts_with("sim-"));
    assert!(v["checked_at"].as_str().unwrap().ends_with('Z'));
    assert!(v["age_seconds"].as_f64().unwrap() < 5.0);

    let (status, v) = gate(&h, "/gate/payments").await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (503, Some("not_ready")),
        "{v}"
    );
    assert_eq!(v["code"], 0);
    let (status, v) = gate(&h, "/gate/legacy").await;
    assert_eq!((status, v["reason"].as_str()), (503, Some("error")), "{v}");
    assert_eq!(v["code"], 3);
    assert_eq!(v["verdict"], "api_error");
    let (status, v) = gate(&h, "/gate/hangs").await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (503, Some("never_checked")),
        "{v}"
    );
    assert!(v["code"].is_null());

    // Not in the config, or not a name at all: 404, and nothing is sent to NCP.
    let before = h.sim.total_requests();
    let long = format!("/gate/{}", "a".repeat(5000));
    for path in [
        "/gate/unknown",
        "/gate/..",
        "/gate/../metrics",
        "/gate/orders/extra",
        "/gate/orders%2F..",
        "/gate/",
        long.as_str(),
        "/gate/3432149?fresh=1",
        "/gate/unknown?fresh=1",
    ] {
        assert_eq!(
            raw_get_status(h.addr, path).await,
            404,
            "{}",
            &path[..path.len().min(40)]
        );
    }
    assert_eq!(
        h.sim.total_requests(),
        before,
        "a 404 must never reach the gateway"
    );
    let r = h.http.post(h.url("/gate/orders")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);

    let (_, page) = h.get("/").await;
    assert!(
        page.contains("href=\"gate/orders\""),
        "landing page links the gates"
    );
    h.stop().await;
}

#[tokio::test]
async fn ready_result_goes_stale() {
    // interval 3s, timeout 2.9s, max_age 3s. After the first (ready) answer, every precheck hangs
    // until the timeout, so the ready answer ages past max_age before anything replaces it. The
    // exporter starts just after the cluster's slot (slots are anchored to the wall clock), so
    // the next slot is more than 2.5 s after the first answer, which leaves a window where the
    // answer is stale but not yet replaced by the timeout.
    let interval = Duration::from_secs(3);
    let name = "stale-a";
    clear_of_slot(name, interval, Duration::from_millis(2700)).await;
    let clusters: Vec<Spec> = vec![(name, "KR", 5, Some(Behaviour::Ready))];
    let h = Harness::start(
        "interval: 3s\ntimeout: 2900ms\ngate:\n  max_age: 3s",
        &clusters,
    )
    .await;
    h.wait_ready(Duration::from_secs(3)).await;
    h.sim.set_behaviour(
        5,
        Behaviour::Slow(Duration::from_secs(60), Box::new(Behaviour::Ready)),
    );
    let (status, _) = gate(&h, &format!("/gate/{name}")).await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let (status, v) = gate(&h, &format!("/gate/{name}")).await;
        if v["reason"] == "stale" {
            assert_eq!(status, 503);
            assert_eq!(
                v["verdict"], "ready",
                "the answer itself was ready; it is just too old"
            );
            assert!(v["age_seconds"].as_f64().unwrap() > 3.0);
            break;
        }
        assert!(Instant::now() < deadline, "never stale: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.stop().await;
}

#[tokio::test]
async fn fresh_is_shared_rate_limited_and_updates_metrics() {
    let clusters: Vec<Spec> = vec![("orders", "KR", 1, Some(Behaviour::Ready))];
    // The test counts upstream calls for about 15 s: no scheduled slot may fall inside.
    clear_of_slot("orders", Duration::from_secs(3600), Duration::from_secs(60)).await;
    let h = Harness::start(
        "interval: 1h\ntimeout: 20s\ngate:\n  min_fresh_interval: 60s",
        &clusters,
    )
    .await;
    h.wait_ready(Duration::from_secs(10)).await;
    assert_eq!(h.sim.calls(1), 1);
    // The fresh call takes 3 s upstream: all 20 callers arrive while it is in flight, even on a
    // loaded machine (they are spawned at once; 300 ms was a race).
    h.sim.set_behaviour(
        1,
        Behaviour::Slow(Duration::from_secs(3), Box::new(Behaviour::Ready)),
    );
    let runs_before = value(&h.metrics().await, "cdss_precheck_runs_total", "orders").unwrap();

    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let http = h.http.clone();
        let url = h.url("/gate/orders?fresh=1");
        callers.spawn(async move {
            let r = http.get(url).send().await.unwrap();
            (
                r.status().as_u16(),
                serde_json::from_str::<Value>(&r.text().await.unwrap()).unwrap(),
            )
        });
    }
    let answers = callers.join_all().await;
    assert_eq!(
        h.sim.calls(1),
        2,
        "20 concurrent fresh callers made exactly one upstream call"
    );
    for (status, v) in &answers {
        assert_eq!(*status, 200, "{v}");
        assert_eq!(v["source"], "fresh", "{v}");
    }
    let runs_after = value(&h.metrics().await, "cdss_precheck_runs_total", "orders").unwrap();
    assert_eq!(
        runs_after,
        runs_before + 1.0,
        "a fresh result updates /metrics"
    );

    // Inside gate.min_fresh_interval: the latest result, marked as such, and no upstream call.
    let (status, v) = gate(&h, "/gate/orders?fresh=1").await;
    assert_eq!(status, 200);
    assert_eq!(v["source"], "fresh_rate_limited", "{v}");
    let retry = v["fresh_retry_in_seconds"].as_f64().unwrap();
    assert!(retry > 30.0 && retry <= 60.0, "{retry}");
    assert_eq!(h.sim.calls(1), 2);
    h.stop().await;
}
