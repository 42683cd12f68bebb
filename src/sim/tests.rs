//! The gateway's maintenance model over loopback, under tokio's paused clock: the phases of a
//! restart as the precheck, `getClusterStatus`, the progress check and the listing show them;
//! a stuck restart; refusals; a lost answer; the request log.
//!
//! Requests are written by hand on a raw socket (no client timers), so the paused clock moves
//! only when a test advances it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::ncp::sign;

const AK: &str = "SIM-TEST-AK";
const SK: &str = "sim-test-secret";
const READY: u64 = 1001;
const BASE: &str = "/api/v1/cluster";

async fn gateway(clusters: &[(u64, Behaviour)]) -> SimGateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = SimGateway::start(
        listener,
        SimConfig {
            access_key: AK.into(),
            secret_key: Secret::new(SK),
            clusters: clusters.iter().cloned().collect(),
        },
    )
    .unwrap();
    sim.add_cluster(
        READY,
        SimCluster::running("orders", crate::ncp::region::Region::Kr),
    );
    sim
}

/// One signed request (unsigned when `signed` is false); (HTTP status, JSON body). Status 0:
/// the connection closed without an answer.
async fn send(sim: &SimGateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    send_as(sim, method, path, body, true).await
}

async fn send_as(
    sim: &SimGateway,
    method: &str,
    path: &str,
    body: Option<Value>,
    signed: bool,
) -> (u16, Value) {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let sig = sign::sign(SK, method, path, ts, AK);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: sim\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    if signed {
        head.push_str(&format!(
            "{}: {ts}\r\n{}: {AK}\r\n{}: {sig}\r\n",
            sign::HEADER_TIMESTAMP,
            sign::HEADER_ACCESS_KEY,
            sign::HEADER_SIGNATURE
        ));
    }
    let mut sock = TcpStream::connect(sim.addr()).await.unwrap();
    sock.write_all(format!("{head}\r\n{body}").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = sock.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    let Some((head, body)) = answer.split_once("\r\n\r\n") else {
        return (0, Value::Null);
    };
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn no(n: u64) -> Option<Value> {
    Some(json!({"serviceGroupInstanceNo": n}))
}

/// What each read shows for `READY`: (precheck result, status `brokerStatus`, brokers up,
/// per-broker colours, progress `brokerStatus`, listed `serverStatus`).
async fn reads(sim: &SimGateway) -> (Value, String, Value, Vec<String>, String, String) {
    let (_, pre) = send(
        sim,
        "POST",
        &format!("{BASE}/rollingRestartPreCheck"),
        no(READY),
    )
    .await;
    let (_, st) = send(
        sim,
        "GET",
        &format!("{BASE}/getClusterStatus/{READY}"),
        None,
    )
    .await;
    let (_, pr) = send(
        sim,
        "POST",
        &format!("{BASE}/rollingRestartProgressCheck"),
        no(READY),
    )
    .await;
    let (_, list) = send(
        sim,
        "POST",
        &format!("{BASE}/getClusterInfoList"),
        Some(json!({})),
    )
    .await;
    let st = &st["result"];
    assert_eq!(st["zookeeperStatus"], "green");
    assert_eq!(st["brokerNodeTotalNumber"], 3);
    assert_eq!(*st, pr["result"], "the progress check shows the status");
    let colour = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        pre["result"].clone(),
        colour(&st["brokerStatus"]),
        st["brokerNumber"].clone(),
        (st["brokerStatusPerNode"].as_array().unwrap().iter())
            .map(|n| colour(&n["status"]))
            .collect(),
        colour(&pr["result"]["brokerStatus"]),
        colour(&list["result"]["allowedClusters"][0]["serverStatus"]),
    )
}

fn green() -> Vec<String> {
    vec!["green".into(); 3]
}

fn down(broker: usize) -> Vec<String> {
    let mut v = green();
    v[broker - 1] = "orange".into();
    v
}

#[tokio::test(start_paused = true)]
async fn a_restart_goes_through_its_phases_and_ends_ready() {
    let sim = gateway(&[(READY, Behaviour::Ready)]).await;
    let plan = RestartPlan {
        start_delay: Duration::from_secs(3),
        step: Duration::from_secs(5),
        ..RestartPlan::default()
    };
    sim.set_restart_plan(READY, plan);
    let before = reads(&sim).await;
    assert_eq!(
        before,
        (
            true.into(),
            "green".into(),
            3.into(),
            green(),
            "green".into(),
            "running".into()
        )
    );

    let (status, answer) = send(&sim, "POST", &format!("{BASE}/rollingRestart"), no(READY)).await;
    assert_eq!(
        (status, &answer["code"], &answer["result"]),
        (200, &json!(0), &json!(true))
    );
    // The start delay: all green and ready, but listed as changing.
    let starting = reads(&sim).await;
    assert_eq!(
        starting,
        (
            true.into(),
            "green".into(),
            3.into(),
            green(),
            "green".into(),
            "changing".into()
        )
    );
    for broker in 1..=3 {
        tokio::time::advance(if broker == 1 {
            plan.start_delay
        } else {
            plan.step
        })
        .await;
        let r = reads(&sim).await;
        let expected = (
            false.into(),
            "orange".into(),
            2.into(),
            down(broker),
            "orange".into(),
            "changing".into(),
        );
        assert_eq!(r, expected, "broker {broker}");
    }
    tokio::time::advance(plan.step).await;
    assert_eq!(reads(&sim).await, before, "over: as before");
    assert_eq!(sim.restart_calls(READY), 1);
    assert_eq!(sim.progress_calls(READY), 6);
    assert_eq!(sim.status_calls(READY), 6);
    // Over: a new restart is accepted.
    assert!(sim.start_restart(READY));
}

#[tokio::test(start_paused = true)]
async fn a_stuck_restart_never_ends_and_a_second_one_is_refused() {
    let sim = gateway(&[(READY, Behaviour::Ready)]).await;
    sim.set_restart_plan(
        READY,
        RestartPlan {
            stuck: true,
            ..RestartPlan::default()
        },
    );
    assert!(sim.start_restart(READY), "started from the console");
    assert!(!sim.start_restart(READY), "already running");
    tokio::time::advance(Duration::from_secs(24 * 3600)).await;
    let r = reads(&sim).await;
    assert_eq!(
        r,
        (
            false.into(),
            "orange".into(),
            2.into(),
            down(1),
            "orange".into(),
            "changing".into()
        )
    );
    let (status, answer) = send(&sim, "POST", &format!("{BASE}/rollingRestart"), no(READY)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["code"], RESTART_REFUSED_CODE);
    assert_eq!(answer["result"], Value::Null);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("already in progress"),
        "{answer}"
    );
    assert_eq!(sim.restart_calls(READY), 1);
}

#[tokio::test(start_paused = true)]
async fn restarts_of_clusters_that_are_not_ready_or_unknown_are_refused() {
    let sim = gateway(&[
        (READY, Behaviour::Ready),
        (2001, Behaviour::NotReady),
        (2002, Behaviour::Http500Html),
        (
            2003,
            Behaviour::Slow(Duration::from_secs(1), Box::new(Behaviour::NotReady)),
        ),
    ])
    .await;
    for n in [2001, 2002, 2003] {
        let (status, answer) = send(&sim, "POST", &format!("{BASE}/rollingRestart"), no(n)).await;
        assert_eq!(status, 200, "{n}");
        assert_eq!(answer["code"], RESTART_REFUSED_CODE, "{n}");
        assert_eq!(answer["result"], Value::Null, "{n}");
        assert!(
            answer["message"].as_str().unwrap().contains("not ready"),
            "{n}: {answer}"
        );
        assert_eq!(sim.restart_calls(n), 1);
    }
    assert!(!sim.start_restart(2001));
    // Unknown numbers: code 3, as the precheck.
    let (status, answer) = send(&sim, "POST", &format!("{BASE}/rollingRestart"), no(9)).await;
    assert_eq!((status, &answer["code"]), (400, &json!(3)));
    assert!(!sim.start_restart(9));
    // Nothing started: the not-ready cluster's status still shows its red broker.
    let (_, st) = send(
        &sim,
        "POST",
        &format!("{BASE}/rollingRestartProgressCheck"),
        no(2001),
    )
    .await;
    assert_eq!(st["result"]["brokerStatus"], "red");
    // A failing cluster's progress check fails the same way; a GET has no route.
    let (status, _) = send(
        &sim,
        "POST",
        &format!("{BASE}/rollingRestartProgressCheck"),
        no(2002),
    )
    .await;
    assert_eq!(status, 500);
    let (status, answer) = send(&sim, "GET", &format!("{BASE}/rollingRestart"), None).await;
    assert_eq!(
        (status, &answer["error"]["errorCode"]),
        (404, &json!("300"))
    );
    assert_eq!(reads(&sim).await.5, "running");
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_still_starts_the_restart() {
    let sim = gateway(&[(READY, Behaviour::Ready)]).await;
    sim.set_restart_plan(
        READY,
        RestartPlan {
            lose_answer: true,
            ..RestartPlan::default()
        },
    );
    let (status, _) = send(&sim, "POST", &format!("{BASE}/rollingRestart"), no(READY)).await;
    assert_eq!(status, 0, "no answer");
    assert_eq!(sim.restart_calls(READY), 1);
    let r = reads(&sim).await;
    assert_eq!(
        r,
        (
            false.into(),
            "orange".into(),
            2.into(),
            down(1),
            "orange".into(),
            "changing".into()
        )
    );
}

#[tokio::test(start_paused = true)]
async fn every_request_is_logged_in_order() {
    let sim = gateway(&[(READY, Behaviour::Ready)]).await;
    send(
        &sim,
        "POST",
        &format!("{BASE}/rollingRestartPreCheck"),
        no(READY),
    )
    .await;
    send(
        &sim,
        "GET",
        &format!("{BASE}/getClusterStatus/{READY}"),
        None,
    )
    .await;
    send_as(
        &sim,
        "POST",
        &format!("{BASE}/rollingRestart"),
        no(READY),
        false,
    )
    .await;
    send(
        &sim,
        "POST",
        "/api/sgn-v1/cluster/rollingRestart",
        no(READY),
    )
    .await;
    send(&sim, "POST", "/api/v1/cluster/deleteCluster", no(READY)).await;
    let log = sim.requests();
    let seen: Vec<(&str, &str, Option<u64>, bool, bool)> = log
        .iter()
        .map(|r| {
            let signed = r.access_key.as_deref() == Some(AK);
            (
                r.method.as_str(),
                r.operation.as_str(),
                r.instance_no,
                signed,
                r.is_mutating(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("POST", "rollingRestartPreCheck", Some(READY), true, false),
            ("GET", "getClusterStatus", Some(READY), true, false),
            // Refused with 401: the body is never read.
            ("POST", "rollingRestart", None, false, true),
            ("POST", "rollingRestart", Some(READY), true, true),
            // Unknown: 404, counted as mutating to be safe.
            ("POST", "deleteCluster", None, true, true),
        ]
    );
    assert_eq!(log[3].path, "/api/sgn-v1/cluster/rollingRestart");
    assert_eq!(
        sim.restart_calls(READY),
        1,
        "only the authenticated call counts"
    );
    assert_eq!(sim.total_requests(), 5);
}
