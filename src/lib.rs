//! cdss-precheck-exporter: NAVER Cloud CDSS `rollingRestartPreCheck` results as Prometheus metrics.
//!
//! Data flows one way: `config` → `scheduler` → `ncp::cdss` (signed by `ncp::sign`) → `outcome` →
//! `state` → `metrics` / `server`.
//!
//! - [`cli`]: flags. [`app`]: flags → running exporter, exit codes. [`check`]: the `check` command.
//! - [`config`]: YAML → validated `Config`. [`credentials`], [`secret`]: API keys, never printed.
//! - [`ncp`]: signing, regions, the CDSS client.
//! - [`outcome`]: the one classification of an answer.
//! - [`scheduler`]: when each cluster is checked. [`state`]: latest results.
//! - [`metrics`]: exposition (no I/O). [`gate`]: the readiness gate's answer. [`server`]: HTTP endpoints.
//! - [`sim`]: the simulated NCP gateway (tests, `--demo`). [`demo`]: the demo setup.
//! - [`logging`], [`shutdown`]: process plumbing.
#![forbid(unsafe_code)]

pub mod app;
pub mod check;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod gate;
pub mod logging;
pub mod metrics;
pub mod ncp;
pub mod outcome;
pub mod scheduler;
pub mod secret;
pub mod server;
pub mod shutdown;
pub mod sim;
pub mod state;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::credentials::Credentials;
use crate::metrics::{BuildInfo, Exposition};
use crate::ncp::cdss::{CdssClient, ClientSettings};
use crate::scheduler::{Runner, Schedule};
use crate::state::State;

/// Runs the exporter on an already-bound `listener` until `shutdown` resolves: prechecks on the
/// schedule, endpoints on the listener. Returns after in-flight prechecks have ended.
pub async fn run(
    listener: TcpListener,
    config: Config,
    credentials: Credentials,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let client = CdssClient::new(
        credentials,
        ClientSettings {
            timeout: config.timeout,
            max_response_bytes: config.max_response_bytes,
        },
    )
    .context("starting the CDSS client")?;
    let state = Arc::new(State::new(&config.clusters));
    let runner = Arc::new(Runner::new(
        config.clusters,
        client,
        state.clone(),
        config.concurrency,
    ));
    let app = Arc::new(server::App {
        state: state.clone(),
        exposition: Exposition::new(BuildInfo::current()),
        interval: config.interval,
        gate: config.gate,
        fresh: runner.clone(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve(listener, app, stop_rx.clone()));
    let schedule = Schedule {
        interval: config.interval,
        concurrency: config.concurrency,
    };
    let scheduler = tokio::spawn(scheduler::run(runner, schedule, stop_rx));

    shutdown.await;
    tracing::info!("stopping: no new prechecks; waiting for in-flight ones");
    // The receivers live in the tasks, so this cannot fail while they run.
    let _ = stop_tx.send(true);
    scheduler.await.context("scheduler task")?;
    server.await.context("server task")?;
    Ok(())
}
