//! Keys in files: one file per key (`access_key_file`, `secret_key_file`, or env vars for either),
//! and NCP's `$HOME/.ncloud/configure`; and the watcher that re-reads them when they change.
//!
//! Owns reading and parsing those files and the change check (modification time, size, inode;
//! checked every `Lookup::watch_every`, never per request). The watcher is the only writer of a
//! file account's [`AccountKeys`] after start-up: a change that reads cleanly replaces the keys,
//! one that does not keeps the old ones and counts a refresh failure. Never logs a file's content.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    AccountKeys, Credentials, CredentialsError, Found, KeyPair, KeySource, Lookup, Origin,
    blocking, nonblank,
};
use crate::stamp::Stamp;

/// The configure file below `$HOME`.
pub(crate) const CONFIGURE_FILE: &str = ".ncloud/configure";
/// The configure file's key for the access key id.
pub(crate) const CONFIGURE_ACCESS_KEY: &str = "ncloud_access_key_id";
/// The configure file's key for the secret key.
pub(crate) const CONFIGURE_SECRET_KEY: &str = "ncloud_secret_access_key";

/// Loads a configured pair (an env var or a file per key).
pub(super) fn load_pair(pair: &KeyPair, lookup: &Lookup) -> Result<Found, CredentialsError> {
    let access_key = load_key("access key", "access_key", &pair.access_key, lookup)?;
    let secret_key = load_key("secret key", "secret_key", &pair.secret_key, lookup)?;
    let credentials = Credentials::new(access_key, secret_key);
    Ok(Found::fixed(credentials, Origin::Keys(pair.clone())))
}

fn load_key(
    what: &'static str,
    key: &'static str,
    source: &KeySource,
    lookup: &Lookup,
) -> Result<String, CredentialsError> {
    match source {
        KeySource::Env(var) => lookup.var(var).ok_or_else(|| CredentialsError::EnvMissing {
            what,
            var: var.clone(),
            key,
        }),
        KeySource::File(path) => {
            if key == "secret_key" {
                warn_if_readable_by_others(path, "the secret key file");
            }
            let text = std::fs::read_to_string(path).map_err(|source| {
                let path = path.to_path_buf();
                CredentialsError::FileUnreadable { what, path, source }
            })?;
            let path = path.to_path_buf();
            nonblank(&text).ok_or(CredentialsError::FileEmpty { what, path })
        }
    }
}

/// The chain's second step, `$HOME/.ncloud/configure`. `Err` says what was looked at.
pub(super) fn from_configure(lookup: &Lookup) -> Result<Found, String> {
    match &lookup.home {
        Some(home) => read_configure(&home.join(CONFIGURE_FILE)),
        None => Err("$HOME/.ncloud/configure (HOME is not set)".into()),
    }
}

/// Reads and parses a configure file; `Err` names the file and why it gave no keys (never a
/// value).
pub(super) fn read_configure(path: &Path) -> Result<Found, String> {
    let why = |why: &str| format!("file {} ({why})", path.display());
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(why("not found")),
        Err(e) => return Err(why(&format!("cannot read it: {e}"))),
    };
    warn_if_readable_by_others(path, "the configure file");
    let origin = Origin::Configure(path.to_path_buf());
    match parse_configure(&text) {
        (Some(access), Some(secret)) => Ok(Found::fixed(Credentials::new(access, secret), origin)),
        (None, _) => Err(why(&format!("no {CONFIGURE_ACCESS_KEY}"))),
        (Some(_), None) => Err(why(&format!("no {CONFIGURE_SECRET_KEY}"))),
    }
}

/// The access key id and the secret key of a configure file: `key = value` lines, split on the
/// first `=`, trimmed; other lines (such as `[DEFAULT]`) are ignored; the last value wins.
fn parse_configure(text: &str) -> (Option<String>, Option<String>) {
    let (mut access, mut secret) = (None, None);
    for (key, value) in text.lines().filter_map(|line| line.split_once('=')) {
        match (key.trim(), nonblank(value)) {
            (CONFIGURE_ACCESS_KEY, Some(value)) => access = Some(value),
            (CONFIGURE_SECRET_KEY, Some(value)) => secret = Some(value),
            _ => {}
        }
    }
    (access, secret)
}

/// Logs a warning when a file with a secret in it can be read by users other than its owner and
/// group.
fn warn_if_readable_by_others(path: &Path, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).map_or(0, |meta| meta.permissions().mode() & 0o777);
        if mode & 0o004 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = %format!("{mode:o}"),
                "{what} is readable by other users; restrict it (chmod 600)"
            );
        }
    }
}

/// Re-reads `origin`'s files whenever one changes, until the task is aborted (its keyring is
/// dropped). A failed read keeps the old keys and counts a refresh failure.
pub(super) async fn watch(keys: Arc<AccountKeys>, origin: Origin, lookup: Lookup) {
    let paths = origin.files();
    if paths.is_empty() {
        return;
    }
    let stamp = |paths: Vec<PathBuf>| blocking(move || Stamp::of(&paths));
    let mut last = stamp(paths.clone()).await;
    loop {
        tokio::time::sleep(lookup.watch_every).await;
        let now = stamp(paths.clone()).await;
        if now == last {
            continue;
        }
        last = now;
        let (origin, lookup) = (origin.clone(), lookup.clone());
        let read = blocking(move || match &origin {
            Origin::Configure(path) => read_configure(path),
            Origin::Keys(pair) => load_pair(pair, &lookup).map_err(|e| e.to_string()),
            _ => Err("not a file source".to_string()),
        });
        match read.await {
            Ok(found) => {
                tracing::info!(account = %keys.account(), source = %found.origin, "key file changed, keys re-read");
                keys.install(found);
            }
            Err(why) => {
                keys.count_failure();
                tracing::warn!(account = %keys.account(), "key file changed but cannot be read, keeping the old keys: {why}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_splits_on_the_first_equals_and_ignores_other_lines() {
        let text = "[DEFAULT]\nncloud_access_key_id = AKID\n# comment\nncloud_secret_access_key= s3cr=et==\nncloud_api_url = https://x\n";
        let (a, s) = parse_configure(text);
        assert_eq!(a.as_deref(), Some("AKID"));
        assert_eq!(s.as_deref(), Some("s3cr=et=="));
        assert_eq!(parse_configure("ncloud_access_key_id\n"), (None, None));
        assert_eq!(parse_configure("ncloud_access_key_id =  \n"), (None, None));
    }

    #[test]
    fn configure_file_found_missing_or_half() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("configure");
        let shown = path.display();
        let err = read_configure(&path).unwrap_err();
        assert_eq!(err, format!("file {shown} (not found)"));
        std::fs::write(&path, "ncloud_access_key_id = AK\n").unwrap();
        let err = read_configure(&path).unwrap_err();
        assert_eq!(err, format!("file {shown} (no ncloud_secret_access_key)"));
        std::fs::write(
            &path,
            "ncloud_access_key_id=AK\nncloud_secret_access_key=SK\n",
        )
        .unwrap();
        let found = read_configure(&path).unwrap();
        assert_eq!(found.credentials.access_key, "AK");
        assert_eq!(found.origin, Origin::Configure(path));
    }

    #[test]
    fn key_files_are_trimmed_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (ak, sk) = (dir.path().join("ak"), dir.path().join("sk"));
        std::fs::write(&ak, "AKID\n").unwrap();
        std::fs::write(&sk, "  s3cr3t-value\n").unwrap();
        let pair = KeyPair {
            access_key: KeySource::File(ak),
            secret_key: KeySource::File(sk.clone()),
        };
        let lookup = Lookup::from_map(Default::default());
        let found = load_pair(&pair, &lookup).unwrap();
        assert_eq!(found.credentials.access_key, "AKID");
        assert_eq!(found.credentials.secret_key.expose(), "s3cr3t-value");
        std::fs::write(&sk, "\n").unwrap();
        let err = load_pair(&pair, &lookup).unwrap_err().to_string();
        assert!(err.contains(&sk.display().to_string()), "{err}");
        let err = load_pair(&KeyPair::default(), &lookup)
            .unwrap_err()
            .to_string();
        assert!(err.contains("NCLOUD_ACCESS_KEY"), "{err}");
    }
}
