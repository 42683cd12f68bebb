//! `--demo`: the simulated gateway in-process, a handful of clusters that show every kind of
//! answer (the not-ready one with its node status), a discovery block that finds three more
//! (one of them, `billing-kafka`, under a rolling restart NCP runs again and again), and demo
//! credentials. A new user sees every feature without an NCP account. Every demo cluster
//! restarts quickly ([`RESTART`]), so `restart --demo --cluster orders-kafka` ends in seconds.

use std::path::Path;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::{Config, ConfigError};
use crate::credentials::Credentials;
use crate::ncp::region::Region;
use crate::secret::Secret;
use crate::sim::{Behaviour, RestartPlan, SimCluster, SimConfig, SimGateway};

/// Access key the demo gateway accepts.
pub const DEMO_ACCESS_KEY: &str = "DEMO-ACCESS-KEY";
/// Secret key the demo gateway checks signatures with (only ever used on loopback).
pub const DEMO_SECRET_KEY: &str = "demo-secret-key-for-the-simulated-gateway";

/// The demo clusters: (name, region, instance number, behaviour or `None` for "unknown number").
pub fn clusters() -> Vec<(&'static str, &'static str, u64, Option<Behaviour>)> {
    let slow_but_ready = Behaviour::Slow(Duration::from_secs(2), Box::new(Behaviour::Ready));
    vec![
        ("orders-kafka", "KR", 3432149, Some(Behaviour::Ready)),
        ("payments-kafka", "SGN", 3432150, Some(Behaviour::NotReady)),
        ("legacy-kafka", "KR", 999_001, None),
        ("analytics-kafka", "JPN", 3432151, Some(slow_but_ready)),
        ("search-kafka", "KR", 3432152, Some(Behaviour::Http500Html)),
        (
            "events-kafka",
            "GOV",
            3432153,
            Some(Behaviour::RateLimited(Some(30))),
        ),
    ]
}

/// The clusters the demo's discovery block finds in KR: (name, instance number). All answer
/// ready, but the last, [`CHANGING`], is under a restart most of the time.
pub const DISCOVERED: [(&str, u64); 3] = [
    ("stream-kafka", 3432160),
    ("metrics-kafka", 3432161),
    CHANGING,
];

/// The cluster whose rolling restart NCP is running: it starts with the demo and, after a
/// minute of health ([`CHANGING_PAUSE`]), starts again, forever ([`CHANGING_RESTART`]).
pub const CHANGING: (&str, u64) = ("billing-kafka", 3432162);

/// How every other demo cluster restarts: 3 s after acceptance, then 5 s per broker (18 s).
pub const RESTART: RestartPlan = RestartPlan {
    start_delay: Duration::from_secs(3),
    step: Duration::from_secs(5),
    stuck: false,
    lose_answer: false,
};

/// How [`CHANGING`] restarts: slower, so it is seen changing (65 s of every 125 s).
const CHANGING_RESTART: RestartPlan = RestartPlan {
    start_delay: Duration::from_secs(5),
    step: Duration::from_secs(20),
    stuck: false,
    lose_answer: false,
};

/// The healthy minute between two restarts of [`CHANGING`].
const CHANGING_PAUSE: Duration = Duration::from_secs(60);

/// The demo config, pointed at a gateway at `gateway_url`.
pub fn config(gateway_url: &str) -> Result<Config, ConfigError> {
    let mut yaml = format!(
        "interval: 15s\ntimeout: 5s\nconcurrency: 4\napi_gateway: {gateway_url}\nclusters:\n"
    );
    for (name, region, no, _) in clusters() {
        yaml.push_str(&format!(
            "  - {{name: {name}, region: {region}, service_group_instance_no: {no}}}\n"
        ));
    }
    yaml.push_str("discovery:\n  - {region: KR, refresh: 1m}\n");
    Config::parse(&yaml, Path::new("<demo>"))
}

/// Starts the demo gateway on 127.0.0.1 (random port) and returns it with its config.
pub async fn start() -> anyhow::Result<(SimGateway, Config, Credentials)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let sim = SimGateway::start(
        listener,
        SimConfig {
            access_key: DEMO_ACCESS_KEY.into(),
            secret_key: Secret::new(DEMO_SECRET_KEY),
            clusters: (clusters().into_iter())
                .filter_map(|(_, _, no, b)| b.map(|b| (no, b)))
                .collect(),
        },
    )?;
    for (name, no) in DISCOVERED {
        sim.add_cluster(no, SimCluster::running(name, Region::Kr));
    }
    for (_, _, no, _) in clusters() {
        sim.set_restart_plan(no, RESTART);
    }
    for (_, no) in DISCOVERED {
        sim.set_restart_plan(no, RESTART);
    }
    sim.set_restart_plan(CHANGING.1, CHANGING_RESTART);
    if !sim.start_restart_loop(CHANGING.1, CHANGING_PAUSE) {
        anyhow::bail!("the demo could not start {}'s restart", CHANGING.0);
    }
    let config = config(&sim.url())?;
    let credentials = Credentials::new(DEMO_ACCESS_KEY.into(), DEMO_SECRET_KEY.into());
    Ok((sim, config, credentials))
}
