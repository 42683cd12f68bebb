//! Live reload: re-read the config file, validate it fully, then apply it without a gap.
//!
//! Triggered by SIGHUP, `POST /-/reload` and (when set) `--config.auto-reload-interval`. Nothing
//! changes until the new file has parsed, validated and every account's keys have loaded; a bad
//! config leaves the running one in place and sets `cdss_exporter_config_last_reload_successful`
//! to 0. On success, clients, static clusters, schedule, discovery blocks and gate settings are
//! swapped; unchanged clusters keep their state and rhythm (see `scheduler::run_plan`). The new
//! keyring (its role refreshers and key file watchers) replaces the old one, whose tasks stop
//! when the old clients are done with it. Files and CA certificates are read on a blocking
//! thread, off the async runtime. Reload writes
//! only its own result into the state; the cluster set changes through the inventory.
//!
//! The setup a reload does (config → keys → clients, [`load`]) is the one the exporter does at
//! start (its steps: `app` reads the config and keys, `app::run` builds the clients) and the one
//! `check` does: written here once, with its error texts. A loaded config reaches the running
//! parts through [`Parts::apply`], at start as on every reload.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{Config, ConfigError, GateConfig};
use crate::credentials::{AccountError, Keyring, Lookup, StatusBoard};
use crate::discovery::Supervisor;
use crate::inventory::Inventory;
use crate::ncp::client::{BuildError, ClientSettings, Clients, SharedClients};
use crate::plan::Plan;
use crate::scheduler::Runner;
use crate::state::State;

/// Why a reload changed nothing; at start, why the exporter or `check` cannot begin.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReloadError {
    /// The file does not parse or validate.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// An account's keys cannot be loaded.
    #[error("cannot load credentials: {0}")]
    Credentials(#[from] AccountError),
    /// The HTTP clients cannot be built (the CA file, TLS setup).
    #[error(transparent)]
    Clients(#[from] BuildError),
    /// The blocking reader thread failed.
    #[error("the reload task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl ReloadError {
    /// The text at start (the exporter's and `check`'s): there a config error says what it is,
    /// where a reload's log line and HTTP body already do.
    pub(crate) fn at_start(&self) -> String {
        match self {
            ReloadError::Config(e) => format!("invalid configuration: {e}"),
            e => e.to_string(),
        }
    }
}

/// Settings the endpoints read that a reload may change.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Live {
    /// Precheck interval (landing page).
    pub interval: Duration,
    /// Gate settings.
    pub gate: GateConfig,
}

impl Live {
    /// The live settings of `config`.
    pub(crate) fn of(config: &Config) -> Self {
        Self {
            interval: config.interval,
            gate: config.gate,
        }
    }
}

/// Shared, swappable [`Live`] settings (read and written whole, through `crate::lock`).
pub(crate) type LiveSettings = Arc<RwLock<Live>>;

/// What a running exporter is wired from (`app::run` makes it): the clients (empty until
/// built), the state, the inventory, the runner, discovery, the live settings and what
/// `/metrics` says about the keys. [`Parts::apply`] hands a config to each part, at start and
/// on every reload.
#[derive(Clone, Debug)]
pub(crate) struct Parts {
    pub(crate) clients: SharedClients,
    pub(crate) state: Arc<State>,
    pub(crate) inventory: Arc<Inventory>,
    pub(crate) runner: Arc<Runner<Clients>>,
    pub(crate) discovery: Arc<Supervisor>,
    pub(crate) live: LiveSettings,
    pub(crate) credentials: StatusBoard,
}

impl Parts {
    /// The parts for `config`, and the inventory's plan for the scheduler. Nothing prechecks or
    /// lists before [`apply`](Self::apply) gives them clients.
    pub(crate) fn new(config: &Config) -> (Self, watch::Receiver<Plan>) {
        // The state starts with the static clusters, as the inventory's first plan has them.
        let state = Arc::new(State::new(&config.clusters));
        let (inventory, plan) = Inventory::new(config, state.clone());
        let inventory = Arc::new(inventory);
        let clients = SharedClients::new(Clients::default());
        let parts = Self {
            runner: Arc::new(Runner::new(
                config.clusters.clone(),
                Clients::default(),
                state.clone(),
                config.concurrency,
            )),
            discovery: Arc::new(Supervisor::new(
                &config.discovery,
                clients.clone(),
                inventory.clone(),
                state.clone(),
            )),
            clients,
            state,
            inventory,
            live: Arc::new(RwLock::new(Live::of(config))),
            credentials: StatusBoard::default(),
        };
        (parts, plan)
    }

    /// Applies a valid `config` with its `keyring` and `clients`: every NCP call uses the new
    /// clients from now on (calls in flight finish with the old ones); static clusters,
    /// schedule, discovery blocks, gate settings and interval follow the config.
    pub(crate) fn apply(&self, config: &Config, keyring: &Keyring, clients: Clients) {
        self.runner.set_prechecker(self.clients.replace(clients));
        self.credentials.show(keyring);
        self.inventory.set_config(config);
        self.discovery.set_blocks(&config.discovery);
        *crate::lock::write(&self.live) = Live::of(config);
    }
}

/// Applies new configs to the running exporter.
#[derive(Debug)]
pub(crate) struct Reloader {
    /// The file to re-read.
    pub path: PathBuf,
    /// The running exporter's parts, which get the new config (and the state the result).
    pub(crate) parts: Parts,
    /// Serialises reloads (SIGHUP and HTTP may race).
    pub lock: tokio::sync::Mutex<()>,
    /// Where the new config's keys are looked up.
    pub lookup: Lookup,
}

impl Reloader {
    /// Reloads the file. `Err` says why nothing changed (for the log and the HTTP 500 body).
    pub(crate) async fn reload(&self) -> Result<(), ReloadError> {
        let _one_at_a_time = self.lock.lock().await;
        let result = load(&self.path, &self.lookup)
            .await
            .map(|(config, keyring, clients)| self.parts.apply(&config, &keyring, clients));
        self.parts.state.record_reload(result.is_ok());
        match &result {
            Ok(()) => tracing::info!(file = %self.path.display(), "configuration reloaded"),
            Err(e) => {
                tracing::error!(file = %self.path.display(), "configuration reload failed, keeping the running one: {e}")
            }
        }
        result
    }

    /// Reloads on every SIGHUP until the task is aborted.
    pub(crate) async fn on_sighup(self: Arc<Self>) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let installed = signal(SignalKind::hangup()).inspect_err(|e| {
                tracing::error!(error = %e, "cannot listen for SIGHUP; reload with POST /-/reload");
            });
            let Ok(mut hup) = installed else { return };
            while hup.recv().await.is_some() {
                tracing::info!("received SIGHUP, reloading the configuration");
                let _ = self.reload().await;
            }
        }
    }

    /// Reloads whenever the file's content changes, checking every `every`. A content that
    /// failed to load is not retried until it changes again.
    pub(crate) async fn watch_file(self: Arc<Self>, every: Duration) {
        let read = |path: PathBuf| async move {
            tokio::task::spawn_blocking(move || std::fs::read(path).ok())
                .await
                .ok()
                .flatten()
        };
        let mut last = read(self.path.clone()).await;
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let now = read(self.path.clone()).await;
            if now.is_some() && now != last {
                tracing::info!(file = %self.path.display(), "configuration file changed, reloading");
                let _ = self.reload().await;
                last = now;
            }
        }
    }
}

/// Reads and validates the config, loads every account's keys (starting their refreshers) and
/// builds the clients: the work of a reload, and of `check` before it asks. Files and CA
/// certificates are read on blocking threads.
pub(crate) async fn load(
    path: &Path,
    lookup: &Lookup,
) -> Result<(Config, Keyring, Clients), ReloadError> {
    let config = load_config(path).await?;
    let keyring = Keyring::load(&config.accounts, lookup).await?;
    let clients = build_clients(&config, keyring.clone()).await?;
    Ok((config, keyring, clients))
}

/// What a command (`check`, `restart`) works with: the config file's config and clients, or with
/// `--demo` the demo's and its gateway (which serves as long as it is held). `Err` says why, for
/// stderr and the report.
pub(crate) async fn load_command(
    path: &Path,
    demo: bool,
) -> Result<(Config, Clients, Option<crate::sim::SimGateway>), String> {
    if !demo {
        let (config, _, clients) =
            (load(path, &Lookup::from_process()).await).map_err(|e| e.at_start())?;
        return Ok((config, clients, None));
    }
    let started = crate::demo::start().await;
    let (sim, config, credentials) =
        started.map_err(|e| format!("starting the demo gateway: {e:#}"))?;
    let clients = build_clients(&config, Keyring::from(credentials)).await;
    Ok((config, clients.map_err(|e| e.at_start())?, Some(sim)))
}

/// Reads and validates the config file, on a blocking thread.
pub(crate) async fn load_config(path: &Path) -> Result<Config, ReloadError> {
    let path = path.to_path_buf();
    Ok(tokio::task::spawn_blocking(move || Config::load(&path)).await??)
}

/// Starts building a client per account of `keyring` on a blocking thread (it reads the system's
/// and `ca_file`'s certificates) and returns the wait for it, so the caller can set up meanwhile.
pub(crate) fn build_clients(
    config: &Config,
    keyring: Keyring,
) -> impl Future<Output = Result<Clients, ReloadError>> + Send + 'static {
    let settings = ClientSettings::of(config);
    let building = tokio::task::spawn_blocking(move || Clients::new(&keyring, &settings));
    async move { Ok(building.await??) }
}
