//! From parsed flags to a running exporter: load config and credentials (the setup steps of
//! `reload`, which `check` shares), bind, [`run`], and map every failure to an exit code with a
//! message that says what to fix.
//!
//! [`run`] is the wiring, and the one entry point tests use: config → inventory (the cluster set)
//! → scheduler (runner, tasks) → ncp → outcome → state → exposition / server; discovery feeds the
//! inventory, reload swaps the config in.
//!
//! Exit codes: 0 clean shutdown or valid config; 1 runtime failure (e.g. cannot bind); 2 bad
//! config or missing credentials (clap uses 2 for bad flags too). `check` has its own codes.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::credentials::{Keyring, Lookup};
use crate::exposition::{BuildInfo, Exposition, Metrics};
use crate::reload::{self, Parts, ReloadError, Reloader};
use crate::server;
use crate::web::WebConfigWatch;

pub use crate::cli::{EXIT_CONFIG, EXIT_FAILURE};

/// Runs what the flags ask for and returns the process exit code.
pub async fn main(cli: Cli) -> ExitCode {
    if let Some(code) = crate::completions::dispatch(&cli) {
        return code;
    }
    if let Some(Command::Check(args)) = &cli.command {
        return ExitCode::from(crate::check::main(&cli.config_file, cli.demo, args).await);
    }
    if let Some(Command::Restart(args)) = &cli.command {
        return ExitCode::from(crate::restart::main(&cli.config_file, cli.demo, args).await);
    }
    if let Some(Command::Healthcheck(args)) = &cli.command {
        return crate::healthcheck::main(args).await;
    }
    match serve(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, e)) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

/// `--demo`, or `--config.file`: the config, the web config, then `--config.check`'s report or
/// the keys and the exporter until a signal. `Err` has the exit code: 2 for what the exporter
/// was given (config, web config, keys), 1 for a failure to run.
async fn serve(cli: &Cli) -> Result<(), (u8, anyhow::Error)> {
    let given = |e: String| (EXIT_CONFIG, anyhow::anyhow!(e));
    let failed = |e: anyhow::Error| (EXIT_FAILURE, e);
    let web = || {
        let load = |path| WebConfigWatch::load(path).map(Arc::new);
        (cli.web_config_file.as_deref().map(load).transpose())
            .map_err(|e| given(format!("invalid web configuration: {e}")))
    };
    // The demo's gateway runs as long as the exporter.
    let (mut options, _sim, web) = if cli.demo {
        let web = web()?;
        let (sim, config, credentials) = crate::demo::start()
            .await
            .map_err(|e| failed(e.context("starting the demo gateway")))?;
        tracing::info!(gateway = %sim.url(), "demo mode: simulated NCP gateway with demo clusters and credentials");
        (Options::new(config, credentials), Some(sim), web)
    } else {
        let config = reload::load_config(&cli.config_file)
            .await
            .map_err(|e| given(e.at_start()))?;
        let web = web()?;
        if cli.config_check {
            config_check(cli, &config, web.as_deref()).await;
            return Ok(());
        }
        let lookup = Lookup::from_process();
        let keyring = Keyring::load(&config.accounts, &lookup)
            .await
            .map_err(|e| given(ReloadError::from(e).at_start()))?;
        let reload = ReloadOptions {
            config_file: cli.config_file.clone(),
            auto_reload_interval: cli.auto_reload_interval.filter(|d| !d.is_zero()),
        };
        let options = Options {
            reload: Some(reload),
            lookup,
            ..Options::new(config, keyring)
        };
        (options, None, web)
    };
    options.web = web;
    let listener = bind(&cli.listen_address).await.map_err(failed)?;
    let addr = (listener.local_addr())
        .context("reading the bound address")
        .map_err(failed)?;
    let tls = (options.web.as_ref()).is_some_and(|w| w.current().tls().is_some());
    let config = &options.config;
    tracing::info!(address = %addr, tls, clusters = config.clusters.len(), discovery = config.discovery.len(), interval = %humantime::format_duration(config.interval), "listening");
    run(listener, options, crate::shutdown::signal())
        .await
        .map_err(failed)
}

/// `--config.check` on a valid config: what it holds, what the web config enables, and where
/// each account's keys are.
async fn config_check(cli: &Cli, config: &Config, web: Option<&WebConfigWatch>) {
    println!(
        "{}: OK ({} static clusters, {} discovery blocks, {} accounts, every {})",
        cli.config_file.display(),
        config.clusters.len(),
        config.discovery.len(),
        config.accounts.len(),
        humantime::format_duration(config.interval)
    );
    if let (Some(path), Some(web)) = (&cli.web_config_file, web) {
        let web = web.current();
        println!(
            "{}: OK (TLS {}, basic auth {})",
            path.display(),
            if web.tls().is_some() { "on" } else { "off" },
            if web.requires_auth() { "on" } else { "off" }
        );
    }
    // Where each account's keys were found (never a key byte); missing keys are a warning here.
    let lookup = Lookup::from_process();
    for (account, found) in crate::credentials::probe(&config.accounts, &lookup).await {
        match found {
            Ok(origin) => println!("account {account:?}: keys from {origin}"),
            Err(e) => {
                eprintln!("warning: credentials are not available here: account {account:?}: {e}")
            }
        }
    }
}

/// Binds `--web.listen-address`. `:PORT` means every interface: IPv6 and IPv4 where the host
/// allows, IPv4 only otherwise.
pub(crate) async fn bind(address: &str) -> anyhow::Result<TcpListener> {
    // `--web.listen-address` has been checked: a `:` prefix is followed by a port number.
    let listened = match address.strip_prefix(':').map(str::parse::<u16>) {
        Some(Ok(port)) => match TcpListener::bind(("::", port)).await {
            Ok(l) => Ok(l),
            Err(_) => TcpListener::bind(("0.0.0.0", port)).await,
        },
        _ => TcpListener::bind(address).await,
    };
    listened.with_context(|| format!("cannot listen on --web.listen-address {address:?}"))
}

/// Where the config came from, so it can be reloaded.
#[derive(Clone, Debug)]
pub struct ReloadOptions {
    /// The file SIGHUP, `POST /-/reload` and auto-reload re-read.
    pub config_file: PathBuf,
    /// Re-read the file this often and reload when its content changed (`None`: off).
    pub auto_reload_interval: Option<Duration>,
}

/// What [`run`] runs.
#[derive(Debug)]
pub struct Options {
    /// The validated config.
    pub config: Config,
    /// Every account's keys.
    pub keyring: Keyring,
    /// Live reload from a file (SIGHUP, `POST /-/reload`, auto-reload); `None`: off.
    pub reload: Option<ReloadOptions>,
    /// TLS and basic auth on the endpoints (`--web.config.file`); `None`: plain HTTP, no auth.
    pub web: Option<Arc<WebConfigWatch>>,
    /// Where a reload looks keys up: `main` uses the process environment; [`Options::new`]
    /// starts from [`Lookup::isolated`] (configured key files only), so an embedding or a test
    /// never reaches a metadata API it did not name.
    pub lookup: Lookup,
}

impl Options {
    /// `config` with `keyring` (a single `Credentials` converts into the default account), no
    /// reload, no web config, and an isolated lookup for reloads.
    pub fn new(config: Config, keyring: impl Into<Keyring>) -> Self {
        Self {
            config,
            keyring: keyring.into(),
            reload: None,
            web: None,
            lookup: Lookup::isolated(),
        }
    }
}

/// Runs the exporter on an already-bound `listener` until `shutdown` resolves: prechecks on the
/// schedule, discovery, reload, endpoints on the listener. Returns after in-flight prechecks
/// have ended.
pub async fn run(
    listener: TcpListener,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = &options.config;
    // Building the HTTP clients reads the system's CA certificates (milliseconds): on a blocking
    // thread while the state, inventory and runner are set up. Nothing can precheck before
    // `apply` below: the scheduler, discovery and the server start after it.
    let building = reload::build_clients(config, options.keyring.clone());
    let (parts, plan) = Parts::new(config);
    let clients = building.await.context("starting the CDSS clients")?;
    parts.apply(config, &options.keyring, clients);
    let reloader = options.reload.as_ref().map(|r| {
        Arc::new(Reloader {
            path: r.config_file.clone(),
            parts: parts.clone(),
            lock: tokio::sync::Mutex::new(()),
            lookup: options.lookup,
        })
    });
    let metrics = Metrics::new(parts.state.clone(), BuildInfo::current())
        .with_live(parts.live.clone())
        .with_usage(parts.clients.usage())
        .with_credentials(parts.credentials.clone());
    let app = Arc::new(server::App {
        state: parts.state.clone(),
        exposition: Exposition::new(metrics).context("registering the metrics")?,
        live: parts.live.clone(),
        fresh: parts.runner.clone(),
        reloader: reloader.clone(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    // What changes the running exporter: the web config's watcher, SIGHUP, auto-reload.
    let mut triggers = tokio::task::JoinSet::new();
    if let Some(web) = &options.web {
        triggers.spawn(web.clone().watch(crate::web::WATCH_EVERY));
    }
    let server = tokio::spawn(server::serve(listener, app, options.web, stop_rx.clone()));
    let collector = crate::scheduler::spawn(parts.runner, plan, stop_rx)
        .context("starting the collector thread")?;
    if let Some(r) = &reloader {
        triggers.spawn(r.clone().on_sighup());
        if let Some(every) = options.reload.and_then(|o| o.auto_reload_interval) {
            triggers.spawn(r.clone().watch_file(every));
        }
    }

    shutdown.await;
    tracing::info!("stopping: no new prechecks; waiting for in-flight ones");
    triggers.abort_all();
    parts.discovery.stop();
    // The receivers live in the tasks, so this cannot fail while they run.
    let _ = stop_tx.send(true);
    collector.join().await.context("scheduler")?;
    server.await.context("server task")?;
    Ok(())
}
