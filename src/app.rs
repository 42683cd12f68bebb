//! From parsed flags to a running exporter: load config and credentials, bind, run, and map every
//! failure to an exit code with a message that says what to fix.
//!
//! Exit codes: 0 clean shutdown or valid config; 1 runtime failure (e.g. cannot bind); 2 bad
//! config or missing credentials (clap uses 2 for bad flags too). `check` has its own codes.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::check;
use crate::cli::{CheckArgs, Cli, Command};
use crate::config::Config;
use crate::credentials::Keyring;
use crate::ncp::cdss::Clients;
use crate::reload::client_settings;
use crate::web_config::WebConfigWatch;

/// Exit code for bad flags, config or credentials.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for other failures.
pub const EXIT_FAILURE: u8 = 1;

/// Runs what the flags ask for and returns the process exit code.
pub async fn main(cli: Cli) -> ExitCode {
    if let Some(code) = crate::completions::dispatch(&cli) {
        return code;
    }
    if let Some(Command::Check(args)) = &cli.command {
        return ExitCode::from(check(&cli, args).await);
    }
    if cli.demo {
        return match web_config(&cli) {
            Ok(web) => serve_demo(&cli, web).await,
            Err(code) => code,
        };
    }
    let config = match Config::load(&cli.config_file) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("invalid configuration: {e}");
            eprintln!("error: invalid configuration: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let web = match web_config(&cli) {
        Ok(web) => web,
        Err(code) => return code,
    };
    if cli.config_check {
        println!(
            "{}: OK ({} static clusters, {} discovery blocks, {} accounts, every {})",
            cli.config_file.display(),
            config.clusters.len(),
            config.discovery.len(),
            config.accounts.len(),
            humantime::format_duration(config.interval)
        );
        if let (Some(path), Some(web)) = (&cli.web_config_file, &web) {
            let web = web.current();
            println!(
                "{}: OK (TLS {}, basic auth {})",
                path.display(),
                if web.tls().is_some() { "on" } else { "off" },
                if web.requires_auth() { "on" } else { "off" }
            );
        }
        if let Err(e) = Keyring::resolve(&config.accounts) {
            eprintln!("warning: credentials are not available here: {e}");
        }
        return ExitCode::SUCCESS;
    }
    let keyring = match Keyring::resolve(&config.accounts) {
        Ok(k) => k,
        Err(e) => {
            tracing::error!("cannot load credentials: {e}");
            eprintln!("error: cannot load credentials: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let reload = crate::ReloadOptions {
        config_file: cli.config_file.clone(),
        auto_reload_interval: cli.auto_reload_interval.filter(|d| !d.is_zero()),
    };
    report(serve(&cli.listen_address, config, keyring, Some(reload), web).await)
}

/// Loads `--web.config.file`, if given. `Err` is the exit code; the error is already printed.
fn web_config(cli: &Cli) -> Result<Option<Arc<WebConfigWatch>>, ExitCode> {
    let Some(path) = &cli.web_config_file else {
        return Ok(None);
    };
    match WebConfigWatch::load(path) {
        Ok(web) => Ok(Some(Arc::new(web))),
        Err(e) => {
            tracing::error!("invalid web configuration: {e}");
            eprintln!("error: invalid web configuration: {e}");
            Err(ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// `check`: every failure to even ask is exit 2; Ctrl-C is 130, SIGTERM 143.
async fn check(cli: &Cli, args: &CheckArgs) -> u8 {
    let config = match Config::load(&cli.config_file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: invalid configuration: {e}");
            return check::EXIT_UNKNOWN;
        }
    };
    let keyring = match Keyring::resolve(&config.accounts) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: cannot load credentials: {e}");
            return check::EXIT_UNKNOWN;
        }
    };
    let clients = match Clients::new(&keyring, &client_settings(&config)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return check::EXIT_UNKNOWN;
        }
    };
    let run = async {
        let clusters = match check::select(&config, args, &clients).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return check::EXIT_UNKNOWN;
            }
        };
        let mut stdout = std::io::stdout();
        check::run(args, &clusters, &clients, config.concurrency, &mut stdout).await
    };
    tokio::select! {
        code = run => code,
        s = crate::shutdown::wait_for_signal() => {
            eprintln!("check: interrupted by {s:?}; no decision");
            s.exit_code()
        }
    }
}

async fn serve_demo(cli: &Cli, web: Option<Arc<WebConfigWatch>>) -> ExitCode {
    let result = async {
        let (sim, config, credentials) = crate::demo::start()
            .await
            .context("starting the demo gateway")?;
        tracing::info!(gateway = %sim.url(), "demo mode: simulated NCP gateway with demo clusters and credentials");
        serve(&cli.listen_address, config, credentials.into(), None, web).await
    };
    report(result.await)
}

async fn serve(
    listen_address: &str,
    config: Config,
    keyring: Keyring,
    reload: Option<crate::ReloadOptions>,
    web: Option<Arc<WebConfigWatch>>,
) -> anyhow::Result<()> {
    let listener = bind(listen_address).await?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let tls = web.as_ref().is_some_and(|w| w.current().tls().is_some());
    tracing::info!(address = %addr, tls, clusters = config.clusters.len(), discovery = config.discovery.len(), interval = %humantime::format_duration(config.interval), "listening");
    crate::run_secured(
        listener,
        config,
        keyring,
        reload,
        web,
        crate::shutdown::signal(),
    )
    .await
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Binds `--web.listen-address`. `:PORT` means every interface: IPv6 and IPv4 where the host
/// allows, IPv4 only otherwise.
pub async fn bind(address: &str) -> anyhow::Result<TcpListener> {
    if let Some(port) = address.strip_prefix(':') {
        let port: u16 = port.parse().with_context(|| {
            format!("--web.listen-address {address:?}: {port:?} is not a port number")
        })?;
        if let Ok(l) = TcpListener::bind(("::", port)).await {
            return Ok(l);
        }
        return TcpListener::bind(("0.0.0.0", port))
            .await
            .with_context(|| format!("cannot listen on --web.listen-address {address:?}"));
    }
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on --web.listen-address {address:?}"))
}
