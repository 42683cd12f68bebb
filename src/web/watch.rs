//! Noticing that the web config changed: its file, or a certificate, key or CA file it names
//! (a rotated certificate is picked up without a restart). A watcher task looks every
//! [`WATCH_EVERY`](super::WATCH_EVERY), off the request path, as the config's auto-reload does.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::WebConfig;
use super::auth::Verified;
use crate::config::yaml::ConfigError;
use crate::stamp::Stamp;

/// The web config in force, re-read by a watcher when its file (or a certificate, key or CA file
/// it names) changes, and the basic-auth cache (the check is in [`auth`](super::auth)).
pub struct WebConfigWatch {
    /// The `--web.config.file`.
    path: PathBuf,
    /// The config in force.
    current: RwLock<Arc<WebConfig>>,
    /// The files of the last version that failed to load (or was refused), so it is reported
    /// once and not re-read on every look.
    failed: Mutex<Option<Stamp>>,
    /// Successful basic-auth verifications by user name. bcrypt is slow on purpose; without this
    /// every scrape would pay for it. Bounded by the number of configured users.
    pub(super) verified: Mutex<HashMap<String, Verified>>,
    /// One bcrypt at a time, off the async threads: a flood of wrong passwords takes one core,
    /// not all of them (exporter-toolkit also serialises bcrypt).
    pub(super) bcrypt: tokio::sync::Semaphore,
}

impl fmt::Debug for WebConfigWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfigWatch")
            .field("path", &self.path)
            .field("current", &*self.current())
            .finish_non_exhaustive()
    }
}

impl WebConfigWatch {
    /// Loads `path`; an error here is a start-up error (exit 2).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let config = WebConfig::load(path, &mut Stamp::default())?;
        Ok(Self {
            path: path.to_path_buf(),
            current: RwLock::new(Arc::new(config)),
            failed: Mutex::new(None),
            verified: Mutex::default(),
            bcrypt: tokio::sync::Semaphore::new(1),
        })
    }

    /// The config in force (what the last [`refresh`](Self::refresh) found).
    pub(crate) fn current(&self) -> Arc<WebConfig> {
        crate::lock::read(&self.current).clone()
    }

    /// Looks at the files the config was loaded from (one `stat` each); when one changed, the
    /// file is re-read and, if valid, replaces the running config (logged either way). A bad new
    /// version keeps the running one and is not re-read until its files change again. Blocking,
    /// and called only by [`watch`](Self::watch), off the async threads.
    fn refresh(&self) {
        let current = self.current();
        let mut failed = crate::lock::lock(&self.failed);
        if current.stamp.unchanged() || failed.as_ref().is_some_and(Stamp::unchanged) {
            return;
        }
        let mut stamp = Stamp::default();
        match WebConfig::load(&self.path, &mut stamp) {
            Ok(new) if new.tls().is_some() != current.tls().is_some() => tracing::error!(
                file = %self.path.display(),
                "web config changed TLS on or off; that needs a restart, keeping the running web config"
            ),
            Ok(mut new) => {
                new.keep_bucket(&current);
                tracing::info!(file = %self.path.display(), tls = new.tls().is_some(), users = new.users.len(), "web config reloaded");
                *crate::lock::write(&self.current) = Arc::new(new);
                *failed = None;
                return;
            }
            Err(e) => {
                tracing::error!("web config reload failed, keeping the running web config: {e}")
            }
        }
        *failed = Some(stamp);
    }

    /// Refreshes every `every` until the task is aborted.
    pub(crate) async fn watch(self: Arc<Self>, every: Duration) {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let this = self.clone();
            if tokio::task::spawn_blocking(move || this.refresh())
                .await
                .is_err()
            {
                tracing::error!("the web config watcher failed");
            }
        }
    }
}
