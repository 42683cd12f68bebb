//! Live reload: re-read the config file, validate it fully, then apply it without a gap.
//!
//! Triggered by SIGHUP, `POST /-/reload` and (when set) `--config.auto-reload-interval`. Nothing
//! changes until the new file has parsed, validated and every account's keys have loaded; a bad
//! config leaves the running one in place and sets `cdss_exporter_config_last_reload_successful`
//! to 0. On success, clients, static clusters, schedule, discovery blocks and gate settings are
//! swapped; unchanged clusters keep their state and rhythm (see `scheduler::run_plan`).

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::config::{Config, GateConfig};
use crate::credentials::Keyring;
use crate::discovery::Supervisor;
use crate::inventory::Inventory;
use crate::ncp::cdss::{ClientSettings, Clients, SharedClients};
use crate::scheduler::Schedule;
use crate::state::State;

/// Settings the endpoints read that a reload may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Live {
    /// Precheck interval (landing page).
    pub interval: Duration,
    /// Gate settings.
    pub gate: GateConfig,
}

impl Live {
    /// The live settings of `config`.
    pub fn of(config: &Config) -> Self {
        Self {
            interval: config.interval,
            gate: config.gate,
        }
    }
}

/// Shared, swappable [`Live`] settings.
#[derive(Clone, Debug)]
pub struct LiveSettings(Arc<RwLock<Live>>);

impl LiveSettings {
    /// Shares `live`.
    pub fn new(live: Live) -> Self {
        Self(Arc::new(RwLock::new(live)))
    }

    /// The current settings.
    pub fn get(&self) -> Live {
        *self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, live: Live) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = live;
    }
}

/// The client settings a config asks for.
pub fn client_settings(config: &Config) -> ClientSettings {
    ClientSettings {
        timeout: config.timeout,
        max_response_bytes: config.max_response_bytes,
        ca_file: config.ca_file.clone(),
    }
}

/// The schedule a config asks for.
pub fn schedule(config: &Config) -> Schedule {
    Schedule {
        interval: config.interval,
        concurrency: config.concurrency,
    }
}

/// Applies new configs to the running exporter.
pub struct Reloader {
    /// The file to re-read.
    pub path: PathBuf,
    /// Swapped on success.
    pub clients: SharedClients,
    /// Gets the new static clusters, schedule and blocks.
    pub inventory: Arc<Inventory>,
    /// Gets the new discovery blocks.
    pub discovery: Arc<Supervisor>,
    /// Gets the reload result.
    pub state: Arc<State>,
    /// Gets the new gate settings and interval.
    pub live: LiveSettings,
    /// Serialises reloads (SIGHUP and HTTP may race).
    pub lock: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// Reloads the file. `Err` carries the message for the log and the HTTP 500 body.
    pub async fn reload(&self) -> Result<(), String> {
        let _one_at_a_time = self.lock.lock().await;
        let result = self.try_reload();
        self.state.record_reload(result.is_ok());
        match &result {
            Ok(()) => tracing::info!(file = %self.path.display(), "configuration reloaded"),
            Err(e) => {
                tracing::error!(file = %self.path.display(), "configuration reload failed, keeping the running one: {e}")
            }
        }
        result
    }

    fn try_reload(&self) -> Result<(), String> {
        let config = Config::load(&self.path).map_err(|e| e.to_string())?;
        let keyring = Keyring::resolve(&config.accounts)
            .map_err(|e| format!("cannot load credentials: {e}"))?;
        let clients =
            Clients::new(&keyring, &client_settings(&config)).map_err(|e| e.to_string())?;
        // Everything is valid: apply.
        self.clients.replace(clients);
        self.inventory.set_config(
            config.clusters.clone(),
            schedule(&config),
            &config.discovery,
        );
        self.discovery.set_blocks(&config.discovery);
        self.live.set(Live::of(&config));
        Ok(())
    }

    /// Reloads on every SIGHUP until the task is aborted.
    pub async fn on_sighup(self: Arc<Self>) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hup = match signal(SignalKind::hangup()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGHUP; reload with POST /-/reload");
                    return;
                }
            };
            while hup.recv().await.is_some() {
                tracing::info!("received SIGHUP, reloading the configuration");
                let _ = self.reload().await;
            }
        }
    }

    /// Reloads whenever the file's content changes, checking every `every`. A content that
    /// failed to load is not retried until it changes again.
    pub async fn watch_file(self: Arc<Self>, every: Duration) {
        let mut last = std::fs::read(&self.path).ok();
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let now = std::fs::read(&self.path).ok();
            if now.is_some() && now != last {
                tracing::info!(file = %self.path.display(), "configuration file changed, reloading");
                let _ = self.reload().await;
                last = now;
            }
        }
    }
}
