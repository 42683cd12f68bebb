//! cdss-precheck-exporter: NAVER Cloud CDSS `rollingRestartPreCheck` results as Prometheus metrics.
//!
//! Data flows one way: `config` (+ `discovery` → `inventory`) → `scheduler` → `ncp::cdss` (signed
//! by `ncp::sign`) → `outcome` → `state` → `metrics` / `server`. `reload` swaps the config in.
//!
//! - [`cli`]: flags. [`app`]: flags → running exporter, exit codes. [`check`]: the `check` command.
//! - [`config`]: YAML → validated `Config`. [`credentials`], [`secret`]: API keys, never printed.
//! - [`ncp`]: signing, regions, the CDSS client.
//! - [`outcome`]: the one classification of an answer.
//! - [`discovery`]: clusters listed through the API. [`inventory`]: static + discovered → plan.
//! - [`scheduler`]: when each cluster is checked. [`state`]: latest results. [`reload`]: live reload.
//! - [`metrics`]: exposition (no I/O); [`chunks`]: bodies in 64 KiB pieces. [`gate`]: the readiness gate's answer. [`server`]: HTTP endpoints.
//! - [`sim`]: the simulated NCP gateway (tests, `--demo`). [`demo`]: the demo setup.
//! - [`logging`], [`shutdown`]: process plumbing. [`web_config`]: TLS and basic auth (`--web.config.file`).
#![forbid(unsafe_code)]

pub mod app;
pub mod check;
pub mod chunks;
pub mod cli;
pub mod completions;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod discovery;
pub mod gate;
pub mod inventory;
pub mod logging;
pub mod metrics;
pub mod ncp;
pub mod outcome;
pub mod reload;
pub mod scheduler;
pub mod secret;
pub mod server;
pub mod shutdown;
pub mod sim;
pub mod state;
pub mod web_config;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::credentials::Keyring;
use crate::discovery::Supervisor;
use crate::inventory::Inventory;
use crate::metrics::{BuildInfo, Exposition};
use crate::ncp::cdss::{Clients, SharedClients};
use crate::reload::{Live, LiveSettings, Reloader, client_settings, schedule};
use crate::scheduler::Runner;
use crate::state::State;
use crate::web_config::WebConfigWatch;

/// Where the config came from, so it can be reloaded.
#[derive(Clone, Debug)]
pub struct ReloadOptions {
    /// The file SIGHUP, `POST /-/reload` and auto-reload re-read.
    pub config_file: PathBuf,
    /// Re-read the file this often and reload when its content changed (`None`: off).
    pub auto_reload_interval: Option<Duration>,
}

/// Runs the exporter on an already-bound `listener` until `shutdown` resolves: prechecks on the
/// schedule, discovery, endpoints on the listener. Returns after in-flight prechecks have ended.
/// `keyring` holds every account's keys (a single `Credentials` converts into the default one).
pub async fn run(
    listener: TcpListener,
    config: Config,
    keyring: impl Into<Keyring>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_with(listener, config, keyring.into(), None, shutdown).await
}

/// [`run`], plus live reload from `reload.config_file` (SIGHUP, `POST /-/reload`, auto-reload).
pub async fn run_with(
    listener: TcpListener,
    config: Config,
    keyring: Keyring,
    reload: Option<ReloadOptions>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_secured(listener, config, keyring, reload, None, shutdown).await
}

/// [`run_with`], with TLS and basic auth on the endpoints from `--web.config.file` (`web`).
pub async fn run_secured(
    listener: TcpListener,
    config: Config,
    keyring: Keyring,
    reload: Option<ReloadOptions>,
    web: Option<Arc<WebConfigWatch>>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // Building the HTTP clients reads the system's CA certificates (milliseconds): on a blocking
    // thread while the state, inventory and runner are set up. Nothing can precheck before
    // `replace` below: the scheduler, discovery and the server start after it.
    let settings = client_settings(&config);
    let building = tokio::task::spawn_blocking(move || Clients::new(&keyring, &settings));
    let clients = SharedClients::new(Clients::default());
    let state = Arc::new(State::new(&config.clusters));
    state.expect_discovery(config.discovery.iter().map(|d| d.label()).collect());
    let (inventory, plan) = Inventory::new(
        config.clusters.clone(),
        schedule(&config),
        &config.discovery,
        state.clone(),
    );
    let inventory = Arc::new(inventory);
    let runner = Arc::new(Runner::new(
        config.clusters.clone(),
        clients.clone(),
        state.clone(),
        config.concurrency,
    ));
    let discovery = Arc::new(Supervisor::new(
        clients.clone(),
        inventory.clone(),
        state.clone(),
    ));
    clients.replace(
        building
            .await
            .context("starting the CDSS clients")?
            .context("starting the CDSS clients")?,
    );
    discovery.set_blocks(&config.discovery);
    let live = LiveSettings::new(Live::of(&config));
    let reloader = reload.as_ref().map(|r| {
        Arc::new(Reloader {
            path: r.config_file.clone(),
            clients: clients.clone(),
            inventory: inventory.clone(),
            discovery: discovery.clone(),
            state: state.clone(),
            live: live.clone(),
            lock: tokio::sync::Mutex::new(()),
        })
    });
    let app = Arc::new(server::App {
        state: state.clone(),
        exposition: Exposition::new(BuildInfo::current()).with_live(live.clone()),
        live,
        fresh: runner.clone(),
        reloader: reloader.clone(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve_with(listener, app, web, stop_rx.clone()));
    let scheduler = tokio::spawn(scheduler::run_plan(runner, plan, stop_rx));
    let mut triggers = Vec::new();
    if let Some(r) = &reloader {
        triggers.push(tokio::spawn(r.clone().on_sighup()));
        if let Some(every) = reload.as_ref().and_then(|o| o.auto_reload_interval) {
            triggers.push(tokio::spawn(r.clone().watch_file(every)));
        }
    }

    shutdown.await;
    tracing::info!("stopping: no new prechecks; waiting for in-flight ones");
    for t in &triggers {
        t.abort();
    }
    discovery.stop();
    // The receivers live in the tasks, so this cannot fail while they run.
    let _ = stop_tx.send(true);
    scheduler.await.context("scheduler task")?;
    server.await.context("server task")?;
    Ok(())
}
