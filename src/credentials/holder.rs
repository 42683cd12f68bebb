//! One account's current keys: [`AccountKeys`], the holder the call path reads at call time.
//!
//! Written only by the credentials module (the keyring's initial lookup, the file watcher and
//! the role refresher). Readers get the keys whole, so a call never signs with half of an old
//! pair and half of a new one, and never with keys [`too_late`] for their `Expiration`. A leaf:
//! it knows the credentials vocabulary (`mod.rs`) and nothing of how keys are found.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use tokio::sync::Notify;

use super::{Credentials, Found, Origin, too_late};

/// One account's current keys. `Debug` shows no key (`Credentials` redacts both).
#[derive(Debug)]
pub(crate) struct AccountKeys {
    /// The account name (a label value; never a key).
    account: String,
    /// The keys now in use.
    current: RwLock<Current>,
    /// Refreshes or re-reads that failed (the old keys were kept).
    failures: AtomicU64,
    /// Wakes the role refresher early (a 401 with the current keys).
    early: Notify,
    /// The key generation an early refresh was last asked for: one per generation.
    early_asked: AtomicU64,
}

#[derive(Debug)]
struct Current {
    credentials: Arc<Credentials>,
    expires: Option<SystemTime>,
    origin: Origin,
    /// Bumped when the keys themselves change (not when only `Expiration` moves).
    generation: u64,
}

impl AccountKeys {
    pub(super) fn new(account: &str, found: Found) -> Self {
        Self {
            account: account.to_string(),
            current: RwLock::new(Current {
                credentials: Arc::new(found.credentials),
                expires: found.expires,
                origin: found.origin,
                generation: 1,
            }),
            failures: AtomicU64::new(0),
            early: Notify::new(),
            early_asked: AtomicU64::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        crate::lock::read(&self.current)
    }

    /// The account's name.
    pub(crate) fn account(&self) -> &str {
        &self.account
    }

    /// The keys to sign with now and their generation; `None` once it is [`too_late`] for them.
    pub(crate) fn keys(&self) -> Option<(Arc<Credentials>, u64)> {
        let c = self.read();
        (!too_late(c.expires, SystemTime::now())).then(|| (c.credentials.clone(), c.generation))
    }

    /// When the current keys expire (`None`: they do not).
    pub(crate) fn expires(&self) -> Option<SystemTime> {
        self.read().expires
    }

    /// Where the current keys came from.
    pub(crate) fn origin(&self) -> Origin {
        self.read().origin.clone()
    }

    /// Refreshes and re-reads that failed since start-up.
    pub(crate) fn refresh_failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// True when the keys are refreshed or re-read in the background (role keys, key files).
    pub(crate) fn refreshable(&self) -> bool {
        let current = self.read();
        matches!(current.origin, Origin::Role { .. }) || !current.origin.files().is_empty()
    }

    /// The gateway refused keys of `generation`: for role keys, asks the refresher for one early
    /// refresh, once per generation (a second 401 with the same keys asks nothing).
    pub(crate) fn on_auth_failure(&self, generation: u64) {
        let current = self.read();
        if current.generation != generation || !matches!(current.origin, Origin::Role { .. }) {
            return;
        }
        drop(current);
        if self.early_asked.swap(generation, Ordering::Relaxed) != generation {
            tracing::info!(account = %self.account, "the gateway refused the server role keys; refreshing them early, once");
            self.early.notify_one();
        }
    }

    /// Resolves when an early refresh was asked for.
    pub(super) async fn early_refresh_wanted(&self) {
        self.early.notified().await;
    }

    /// Replaces the keys; returns whether they changed (a rotation) or only their expiry.
    pub(super) fn install(&self, found: Found) -> bool {
        let mut c = crate::lock::write(&self.current);
        let same = c.credentials.access_key == found.credentials.access_key
            && c.credentials.secret_key == found.credentials.secret_key;
        if !same {
            c.credentials = Arc::new(found.credentials);
            c.generation += 1;
        }
        c.expires = found.expires;
        c.origin = found.origin;
        drop(c);
        !same
    }

    /// Counts a failed refresh or re-read.
    pub(super) fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
}
