//! Every account's keys: the [`Keyring`] that owns one [`AccountKeys`] holder per account (the
//! initial lookup through `chain`) and their refresh tasks (`file::watch`, `role::refresh`), and
//! the [`StatusBoard`] the exposition reads. A keyring's tasks stop when its last clone is
//! dropped (the clients and the board that used it were replaced by a reload).
//!
//! [`AccountKeys`] is what the call path reads at call time. Only the keyring's initial lookup,
//! the file watcher and the role refresher write it. Readers get the keys whole, so a call never
//! signs with half of an old pair and half of a new one, and never with keys [`too_late`] for
//! their `Expiration`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::chain;
use super::{
    AccountError, CredentialSource, Credentials, CredentialsError, Found, Lookup, Origin, file,
    role, too_late,
};

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
    pub(super) early: Notify,
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

    /// The account's row on the status board: its source, expiry and, for keys refreshed or
    /// re-read in the background (role keys, key files), the refreshes and re-reads that failed.
    pub(crate) fn status(&self) -> AccountStatus {
        let c = self.read();
        let refreshable = matches!(c.origin, Origin::Role { .. }) || !c.origin.files().is_empty();
        AccountStatus {
            account: self.account.clone(),
            source: c.origin.kind(),
            expires: c.expires,
            refresh_failures: refreshable.then(|| self.failures.load(Ordering::Relaxed)),
        }
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

    /// Replaces the keys; returns whether they changed (a rotation) or only their expiry.
    pub(super) fn install(&self, found: Found) -> bool {
        let mut c = crate::lock::write(&self.current);
        let same = *c.credentials == found.credentials;
        if !same {
            c.credentials = Arc::new(found.credentials);
            c.generation += 1;
        }
        c.expires = found.expires;
        c.origin = found.origin;
        !same
    }

    /// Counts a failed refresh or re-read.
    pub(super) fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every account's keys, by account name, and the tasks that keep them fresh.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    accounts: BTreeMap<String, Arc<AccountKeys>>,
    /// Held only to be dropped: the last clone's drop aborts the refreshers and watchers.
    _tasks: Arc<JoinSet<()>>,
}

impl Keyring {
    /// Looks up every account's keys and starts their refreshers and watchers (which run on the
    /// current tokio runtime until the keyring is dropped).
    pub async fn load(
        accounts: &BTreeMap<String, CredentialSource>,
        lookup: &Lookup,
    ) -> Result<Self, AccountError> {
        // Tasks are kept as they start: if a later account fails, dropping them stops them.
        let (mut keys_by_name, mut tasks) = (BTreeMap::new(), JoinSet::new());
        for (name, source) in accounts {
            let account = |source| AccountError {
                account: name.clone(),
                source,
            };
            let (found, role) = chain::resolve(source, lookup).await.map_err(account)?;
            tracing::info!(account = %name, source = %found.origin, "API keys found");
            let origin = found.origin.clone();
            let keys = Arc::new(AccountKeys::new(name, found));
            keys_by_name.insert(name.clone(), keys.clone());
            match role {
                Some((client, role)) => tasks.spawn(role::refresh(keys, client, role)),
                // Ends at once for keys that are not in files.
                None => tasks.spawn(file::watch(keys, origin, lookup.clone())),
            };
        }
        Ok(Keyring {
            accounts: keys_by_name,
            _tasks: Arc::new(tasks),
        })
    }

    /// Adds (or replaces) an account with fixed `found` keys and no refresher (tests, the demo).
    #[cfg(test)]
    pub(crate) fn insert(&mut self, account: &str, found: Found) {
        let keys = Arc::new(AccountKeys::new(account, found));
        self.accounts.insert(account.to_string(), keys);
    }

    /// `account`'s keys.
    #[cfg(test)]
    pub(crate) fn get(&self, account: &str) -> Option<&Arc<AccountKeys>> {
        self.accounts.get(account)
    }

    /// Every account, by name.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Arc<AccountKeys>)> {
        self.accounts.iter()
    }
}

impl From<Credentials> for Keyring {
    /// A keyring with one account, the default one, with fixed keys.
    fn from(c: Credentials) -> Self {
        let found = Found::fixed(c, Origin::Keys(Default::default()));
        let keys = Arc::new(AccountKeys::new(crate::model::DEFAULT_ACCOUNT, found));
        Keyring {
            accounts: BTreeMap::from([(crate::model::DEFAULT_ACCOUNT.to_string(), keys)]),
            _tasks: Arc::default(),
        }
    }
}

/// Looks up every account's keys once, without keeping them or starting anything: where each
/// account's keys were found, or what was looked at (`--config.check`).
pub async fn probe(
    accounts: &BTreeMap<String, CredentialSource>,
    lookup: &Lookup,
) -> Vec<(String, Result<Origin, CredentialsError>)> {
    let mut out = Vec::new();
    for (name, source) in accounts {
        let origin = chain::resolve(source, lookup)
            .await
            .map(|(found, _)| found.origin);
        out.push((name.clone(), origin));
    }
    out
}

/// The keyring in use, for the exposition: expiry and refresh failures per account.
#[derive(Clone, Debug, Default)]
pub struct StatusBoard(Arc<RwLock<Keyring>>);

/// One account's row on the board.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AccountStatus {
    /// The account name.
    pub account: String,
    /// `source` label: env, configure, keys or server_role.
    pub source: &'static str,
    /// When the keys expire, if they do.
    pub expires: Option<SystemTime>,
    /// Failed refreshes, for accounts that are refreshed; `None` for fixed keys.
    pub refresh_failures: Option<u64>,
}

impl StatusBoard {
    /// Shows `keyring` from now on (at start-up and after each reload).
    pub(crate) fn show(&self, keyring: &Keyring) {
        *crate::lock::write(&self.0) = keyring.clone();
    }

    /// Every account's status, by name.
    pub(crate) fn accounts(&self) -> Vec<AccountStatus> {
        let keyring = crate::lock::read(&self.0);
        keyring.accounts.values().map(|k| k.status()).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::secret::Secret;

    fn role_keys(ak: &str, expires: SystemTime) -> Found {
        Found {
            credentials: Credentials {
                access_key: ak.into(),
                secret_key: Secret::new(format!("{ak}-secret")),
            },
            expires: Some(expires),
            origin: Origin::Role {
                name: "r".into(),
                endpoint: "http://127.0.0.1:9".into(),
            },
        }
    }

    #[test]
    fn expired_keys_are_not_handed_out_and_rotation_bumps_the_generation() {
        let now = SystemTime::now();
        let k = AccountKeys::new("a", role_keys("AK1", now + Duration::from_secs(60)));
        let (c, g1) = k.keys().unwrap();
        assert_eq!((c.access_key.as_str(), g1), ("AK1", 1));
        assert!(!k.install(role_keys("AK1", now + Duration::from_secs(120))));
        assert_eq!(k.keys().unwrap().1, 1);
        assert!(k.install(role_keys("AK2", now - Duration::from_secs(1))));
        assert!(k.keys().is_none(), "expired keys must not be used");
        // Keys about to expire would reach the gateway after their Expiration.
        use crate::credentials::EXPIRY_MARGIN;
        assert!(k.install(role_keys("AK3", now + EXPIRY_MARGIN / 2)));
        assert!(
            k.keys().is_none(),
            "keys inside the margin must not be used"
        );
        assert!(k.install(role_keys("AK4", now + EXPIRY_MARGIN * 3)));
        assert_eq!(k.keys().unwrap().0.access_key, "AK4");
        assert!(k.status().refresh_failures.is_some(), "refreshed");
        assert!(!format!("{k:?}").contains("AK2-secret"));
    }

    #[tokio::test]
    async fn a_401_asks_for_one_early_refresh_per_generation() {
        let now = SystemTime::now();
        let k = AccountKeys::new("a", role_keys("AK1", now + Duration::from_secs(60)));
        k.on_auth_failure(1);
        k.on_auth_failure(1);
        k.on_auth_failure(7); // an old generation's 401: nothing.
        let woke = tokio::time::timeout(Duration::from_secs(5), k.early.notified()).await;
        assert!(woke.is_ok());
        // The second 401 of generation 1 stored no second wake-up.
        let again = tokio::time::timeout(Duration::from_millis(50), k.early.notified()).await;
        assert!(again.is_err(), "a second early refresh for the same keys");
        k.install(role_keys("AK2", now + Duration::from_secs(60)));
        k.on_auth_failure(2);
        let woke = tokio::time::timeout(Duration::from_secs(5), k.early.notified()).await;
        assert!(woke.is_ok());
    }

    #[test]
    fn fixed_keys_never_ask_for_a_refresh() {
        let k = Keyring::from(Credentials {
            access_key: "AK".into(),
            secret_key: Secret::new("sk"),
        });
        let keys = k.get(crate::model::DEFAULT_ACCOUNT).unwrap();
        assert!(keys.status().refresh_failures.is_none(), "not refreshed");
        keys.on_auth_failure(1);
        let board = StatusBoard::default();
        board.show(&k);
        let rows = board.accounts();
        assert_eq!(rows[0].refresh_failures, None);
        assert_eq!(rows[0].expires, None);
    }
}
