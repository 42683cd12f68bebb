//! The exporter sees maintenance: a restart started elsewhere (NCP's console) and a cluster the
//! listing reports `changing` show as `cdss_cluster_changing`, close the gate with reason
//! `changing`, and show on the landing page; the daemon never sends a mutating call.

use std::time::Duration;

use crate::support::{FileHarness, Harness, Spec, metrics_until, start_sim, unix_now, value};
use cdss_precheck_exporter::ncp::region::Region;
use cdss_precheck_exporter::sim::{Behaviour, RestartPlan, SimCluster};
use serde_json::Value;

const CHANGING: &str = "cdss_cluster_changing";
const SINCE: &str = "cdss_cluster_changing_since_timestamp_seconds";

async fn gate(h: &Harness, cluster: &str) -> (u16, Value) {
    let (status, body) = h.get(&format!("/gate/{cluster}")).await;
    (status, serde_json::from_str(&body).unwrap())
}

/// README, "When NCP is changing the cluster": through a whole restart started from NCP's
/// console, as the daemon sees it with its usual calls only.
#[tokio::test]
async fn the_daemon_through_a_restart_started_elsewhere() {
    let clusters: Vec<Spec> = vec![
        ("orders", "KR", 1, Some(Behaviour::Ready)),
        ("payments", "KR", 2, Some(Behaviour::Ready)),
    ];
    let h = Harness::start("interval: 1s\ntimeout: 900ms", &clusters).await;
    h.wait_ready(Duration::from_secs(10)).await;
    let m = h.metrics().await;
    assert_eq!(value(&m, CHANGING, "orders"), Some(0.0), "{m}");
    assert_eq!(value(&m, SINCE, "orders"), None, "{m}");
    assert_eq!(gate(&h, "orders").await.0, 200);

    // Each of the three brokers down for 1.2 s: the 1 s schedule sees it.
    let plan = RestartPlan {
        step: Duration::from_millis(1200),
        ..RestartPlan::default()
    };
    h.sim.set_restart_plan(1, plan);
    let started = unix_now();
    assert!(h.sim.start_restart(1), "the simulator refused the restart");
    let what = "orders changing";
    let m = metrics_until(&h, Duration::from_secs(5), what, |m| {
        value(m, CHANGING, "orders") == Some(1.0)
    })
    .await;
    let since = value(&m, SINCE, "orders").expect("a start while changing");
    assert!(
        since >= started - 1.0 && since <= unix_now(),
        "{since} vs {started}"
    );
    assert_eq!(value(&m, CHANGING, "payments"), Some(0.0), "{m}");
    assert_eq!(value(&m, SINCE, "payments"), None, "{m}");

    let (status, v) = gate(&h, "orders").await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (503, Some("changing")),
        "{v}"
    );
    assert!(v["changing_since"].as_str().unwrap().ends_with('Z'), "{v}");
    assert_eq!(v["diagnosis"]["broker_status"], "orange", "{v}");
    assert_eq!(gate(&h, "payments").await.0, 200);
    let (_, page) = h.get("/").await;
    assert_eq!(page.matches("changing since").count(), 1, "{page}");

    // Later prechecks and reads of the same change keep its start.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m = h.metrics().await;
    if value(&m, CHANGING, "orders") == Some(1.0) {
        assert_eq!(value(&m, SINCE, "orders"), Some(since), "{m}");
    }

    let m = metrics_until(&h, Duration::from_secs(10), "the change over", |m| {
        value(m, CHANGING, "orders") == Some(0.0)
    })
    .await;
    assert_eq!(value(&m, SINCE, "orders"), None, "{m}");
    assert_eq!(value(&m, "cdss_precheck_ok", "orders"), Some(1.0), "{m}");
    assert_eq!(gate(&h, "orders").await.0, 200);

    let sim = h.stop_keeping_sim().await;
    let requests = sim.requests();
    assert!(
        requests.iter().any(|r| r.operation == "getClusterStatus"),
        "the daemon read the status during the restart: {requests:?}"
    );
    let mutating: Vec<_> = requests.iter().filter(|r| r.is_mutating()).collect();
    assert!(mutating.is_empty(), "the daemon sent {mutating:?}");
    assert_eq!(sim.restart_calls(1), 0);
}

/// A discovered cluster whose listing says `changing` is changing even while its precheck says
/// ready, until a listing says otherwise.
#[tokio::test]
async fn a_cluster_listed_changing() {
    let sim = start_sim(&[]).await;
    let listed = |status: &str| SimCluster {
        status: status.into(),
        ..SimCluster::running("moving-kafka", Region::Kr)
    };
    sim.add_cluster(800, listed("changing"));
    let yaml = "interval: 1s\ntimeout: 900ms\ncredentials:\n  access_key_file: '{dir}/ak'\n  secret_key_file: '{dir}/sk'\napi_gateway: '{gateway}'\ndiscovery:\n  - region: KR\n    refresh: 1s\n";
    let h = FileHarness::start(sim, yaml, None).await;
    let h = &h.inner;
    h.wait_ready(Duration::from_secs(10)).await;
    let m = h.metrics().await;
    assert_eq!(
        value(&m, "cdss_precheck_ok", "moving-kafka"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(value(&m, CHANGING, "moving-kafka"), Some(1.0), "{m}");
    assert!(value(&m, SINCE, "moving-kafka").is_some(), "{m}");
    let (status, v) = gate(h, "moving-kafka").await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (503, Some("changing")),
        "{v}"
    );
    assert_eq!(v["verdict"], "ready", "{v}");

    h.sim.add_cluster(800, listed("running"));
    let m = metrics_until(h, Duration::from_secs(5), "listed running", |m| {
        value(m, CHANGING, "moving-kafka") == Some(0.0)
    })
    .await;
    assert_eq!(value(&m, SINCE, "moving-kafka"), None, "{m}");
    assert_eq!(gate(h, "moving-kafka").await.0, 200);
}
