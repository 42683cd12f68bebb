//! The simulator's `getClusterStatus`: per-node states that follow each cluster's behaviour.
//!
//! A ready cluster's nodes are all green; a not-ready one has one red broker (2 of 3 up); a
//! cluster that fails its precheck (5xx, bad JSON, slow, dropped) fails this call the same way,
//! and an unknown number is code 3. Tests can make the status call alone fail
//! (`SimGateway::set_status_failure`). During a restart (`restart`) the broker that is down is
//! `orange`, and so is `brokerStatus`. `rollingRestartProgressCheck` answers the same nodes
//! (NCP documents the same shape), restart or not; it is counted apart and never fails on
//! purpose unless the cluster's behaviour does.

use serde_json::{Value, json};

use super::answer::{Dropped, Resp, cdss, jitter, respond};
use super::restart::{self, Phase};
use super::{Behaviour, Shared, lock};
use hyper::StatusCode;

/// Regional paths of `getClusterStatus`, without the cluster number.
pub const STATUS_PATHS: [&str; 4] = [
    "/api/v1/cluster/getClusterStatus/",
    "/api/sgn-v1/cluster/getClusterStatus/",
    "/api/jpn-v1/cluster/getClusterStatus/",
    "/api/krs-v1/cluster/getClusterStatus/",
];

/// The cluster number of a `getClusterStatus` path; `None` for any other path.
pub fn instance_no(path: &str) -> Option<Option<u64>> {
    let rest = STATUS_PATHS.iter().find_map(|p| path.strip_prefix(p))?;
    Some(rest.parse::<u64>().ok().filter(|n| *n > 0))
}

/// How many brokers (and ZooKeeper nodes) each simulated cluster has.
pub(super) const BROKERS: u64 = 3;

/// The `result` for a cluster whose precheck answers `ready` (all green) or not (one red
/// broker), with broker `down` (1-based) `orange` during a restart.
pub fn result(instance_no: u64, ready: bool, down: Option<u64>) -> Value {
    let colour = |i: u64| match (down == Some(i), !ready && i == 2) {
        (true, _) => "orange",
        (false, true) => "red",
        (false, false) => "green",
    };
    let brokers: Vec<Value> = (1..=BROKERS)
        .map(|i| json!({"hostname": format!("kafka-{i}"), "status": colour(i)}))
        .collect();
    let up = (1..=BROKERS).filter(|i| colour(*i) == "green").count();
    let zk: Vec<Value> = (1..=BROKERS)
        .map(|i| json!({"hostname": format!("zk-{i}"), "status": "green"}))
        .collect();
    let status = match (down, ready) {
        (Some(_), _) => "orange",
        (None, false) => "red",
        (None, true) => "green",
    };
    json!({
        "clusterName": format!("cluster-{instance_no}"),
        "brokerNodeTotalNumber": BROKERS,
        "brokerNumber": up,
        "brokerStatus": status,
        "brokerStatusPerNode": brokers,
        "zookeeperTotalNumber": BROKERS,
        "zookeeperNumber": BROKERS,
        "zookeeperStatus": "green",
        "zookeeperStatusPerNode": zk,
        "cmakStatus": "green",
    })
}

/// Whether a precheck behaviour is a CDSS answer (ready or not) after any delays; `None` for a
/// failure, which the status call repeats.
pub fn answers(behaviour: &Behaviour) -> Option<bool> {
    match behaviour {
        Behaviour::Ready => Some(true),
        Behaviour::NotReady => Some(false),
        Behaviour::Slow(_, inner) | Behaviour::Jittered(_, _, inner) => answers(inner),
        _ => None,
    }
}

/// `getClusterStatus` for `instance_no` (`None`: not a number in the path).
pub(super) async fn cluster_status(
    shared: &Shared,
    instance_no: Option<u64>,
    n: u64,
) -> Result<Resp, Dropped> {
    let Some(instance_no) = instance_no else {
        return Ok(cdss(
            StatusCode::BAD_REQUEST,
            1,
            "serviceGroupInstanceNo must be a number in the path",
            serde_json::Value::Null,
            n,
        ));
    };
    *lock(&shared.status_calls).entry(instance_no).or_default() += 1;
    let failure = lock(&shared.status_failures).get(&instance_no).cloned();
    if let Some(failure) = failure {
        return respond(failure, n).await;
    }
    let behaviour = lock(&shared.behaviours).get(&instance_no).cloned();
    current(
        shared,
        instance_no,
        behaviour.unwrap_or(Behaviour::UnknownNumber(400)),
        n,
    )
    .await
}

/// `rollingRestartProgressCheck` for `instance_no`: the current status, restart or not.
pub(super) async fn progress(shared: &Shared, instance_no: u64, n: u64) -> Result<Resp, Dropped> {
    *lock(&shared.progress_calls).entry(instance_no).or_default() += 1;
    let behaviour = lock(&shared.behaviours).get(&instance_no).cloned();
    let behaviour = behaviour.unwrap_or_else(|| restart::unknown(instance_no));
    current(shared, instance_no, behaviour, n).await
}

/// The nodes of a cluster with `behaviour` now, after its delays (restart phase included); a
/// behaviour that fails fails the same way.
async fn current(
    shared: &Shared,
    instance_no: u64,
    behaviour: Behaviour,
    n: u64,
) -> Result<Resp, Dropped> {
    let Some(ready) = answers(&behaviour) else {
        return respond(behaviour, n).await;
    };
    // The same delays as the precheck, then the nodes as they are at the end of them.
    let mut b = &behaviour;
    loop {
        match b {
            Behaviour::Slow(d, inner) => {
                tokio::time::sleep(*d).await;
                b = inner;
            }
            Behaviour::Jittered(min, max, inner) => {
                tokio::time::sleep(jitter(*min, *max, n)).await;
                b = inner;
            }
            _ => break,
        }
    }
    let down = match restart::phase(shared, instance_no) {
        Phase::Down(broker) => Some(broker),
        Phase::Idle | Phase::Starting => None,
    };
    let result = result(instance_no, ready, down);
    Ok(cdss(StatusCode::OK, 0, "SUCCESS", result, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_states() {
        assert_eq!(
            instance_no("/api/sgn-v1/cluster/getClusterStatus/42"),
            Some(Some(42))
        );
        assert_eq!(
            instance_no("/api/v1/cluster/getClusterStatus/x"),
            Some(None)
        );
        assert_eq!(instance_no("/api/v1/cluster/rollingRestartPreCheck"), None);
        // Every region's URLs, as the exporter builds them, are served.
        for region in crate::ncp::region::ALL_REGIONS {
            let e = crate::ncp::region::Endpoint::new(Some("http://127.0.0.1:1"), region).unwrap();
            let status = e.cluster_status(42).unwrap();
            assert_eq!(instance_no(status.path()), Some(Some(42)), "{region}");
            assert!(
                super::super::PRECHECK_PATHS.contains(&e.precheck.path()),
                "{region}"
            );
            assert!(
                super::super::LIST_PATHS.contains(&e.cluster_list.path()),
                "{region}"
            );
        }
        let r = result(7, false, None);
        assert_eq!(r["brokerNumber"], 2);
        assert_eq!(r["brokerStatusPerNode"][1]["status"], "red");
        assert_eq!(result(7, true, None)["brokerStatus"], "green");
        let r = result(7, true, Some(3));
        assert_eq!(r["brokerNumber"], 2);
        assert_eq!(r["brokerStatus"], "orange");
        assert_eq!(r["brokerStatusPerNode"][2]["status"], "orange");
        assert_eq!(r["brokerStatusPerNode"][0]["status"], "green");
        assert_eq!(
            answers(&Behaviour::Slow(
                std::time::Duration::ZERO,
                Box::new(Behaviour::NotReady)
            )),
            Some(false)
        );
        assert_eq!(answers(&Behaviour::Http500Html), None);
    }
}
