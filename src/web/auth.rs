//! Basic auth against `basic_auth_users` (bcrypt hashes), with a cache of successful checks (kept
//! by [`WebConfigWatch`]) so that only a new password pays for bcrypt. An unknown user costs as
//! much as a wrong password.

use crate::lock::lock;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::{WebConfig, WebConfigWatch};

/// Checked instead of a real hash when the user name is unknown, so that an unknown user costs
/// as much time as a wrong password and user names cannot be probed by timing. Cost 10, as
/// exporter-toolkit's docs suggest; the password behind it is random and was thrown away.
pub(crate) const UNKNOWN_USER_HASH: &str =
    "$2b$10$18AwjZ8kc3w0cB/BmY..wuyzFm0cC7OYyq6nu7.srBfe8OggxnAda";

/// A successful verification: the hash it was checked against and a digest of the password.
pub(super) struct Verified {
    /// The user's hash then; a new hash for the user makes the entry stale.
    hash: String,
    /// [`password_digest`] of the password, compared in constant time.
    password: [u8; 32],
}

impl WebConfigWatch {
    /// Whether a request with this `Authorization` header value may proceed under `config`:
    /// always when no users are configured; otherwise only with `Basic` credentials of a
    /// configured user whose bcrypt hash matches the password.
    pub(crate) async fn authorize(&self, config: &WebConfig, authorization: Option<&[u8]>) -> bool {
        if config.users.is_empty() {
            return true;
        }
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return false;
        };
        let hash = config.users.get(&user);
        let against = hash.map_or(UNKNOWN_USER_HASH, String::as_str).to_string();
        let digest = password_digest(&against, &password);
        let cached = |v: &Verified| hash == Some(&v.hash) && bool::from(v.password.ct_eq(&digest));
        if lock(&self.verified).get(&user).is_some_and(cached) {
            return true;
        }
        let Ok(_one_at_a_time) = self.bcrypt.acquire().await else {
            return false;
        };
        let matches = tokio::task::spawn_blocking(move || {
            bcrypt::verify(&password, &against).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let (Some(hash), true) = (hash, matches) else {
            return false;
        };
        let verified = Verified {
            hash: hash.clone(),
            password: digest,
        };
        lock(&self.verified).insert(user, verified);
        true
    }
}

/// SHA-256 of the bcrypt hash (which holds a random salt) and the password: what the cache keeps
/// instead of the password.
fn password_digest(hash: &str, password: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(hash.as_bytes());
    h.update([0]);
    h.update(password);
    h.finalize().into()
}

/// User name and password from `Basic base64(user:password)`; `None` for anything else.
fn basic_credentials(header: &[u8]) -> Option<(String, Vec<u8>)> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_user_hash_is_well_formed_cost_10() {
        let parts: bcrypt::HashParts = UNKNOWN_USER_HASH.parse().unwrap();
        assert_eq!(parts.get_cost(), 10);
    }

    #[test]
    fn basic_credentials_parsing() {
        let h = |user_pass: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(user_pass)
            )
        };
        assert_eq!(
            basic_credentials(h("alice:pa:ss").as_bytes()),
            Some(("alice".into(), b"pa:ss".to_vec()))
        );
        assert_eq!(
            basic_credentials(format!("basic  {}", &h("a:")[6..]).as_bytes()),
            Some(("a".into(), Vec::new()))
        );
        assert_eq!(basic_credentials(h("no-colon").as_bytes()), None);
        assert_eq!(basic_credentials(b"Bearer abc"), None);
        assert_eq!(basic_credentials(b"Basic !!!"), None);
        assert_eq!(basic_credentials(b"Basic"), None);
    }

    #[tokio::test]
    async fn authorize_checks_and_caches() {
        let hash = bcrypt::hash("right", 4).unwrap();
        let watch_dir = tempfile::tempdir().unwrap();
        let path = watch_dir.path().join("web.yml");
        std::fs::write(&path, format!("basic_auth_users:\n  alice: {hash}\n")).unwrap();
        let w = WebConfigWatch::load(&path).unwrap();
        let c = w.current();
        let basic = |up: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(up)
            )
        };
        assert!(!w.authorize(&c, None).await);
        assert!(!w.authorize(&c, Some(basic("alice:wrong").as_bytes())).await);
        assert!(
            !w.authorize(&c, Some(basic("mallory:right").as_bytes()))
                .await
        );
        assert!(lock(&w.verified).is_empty(), "failures are not cached");
        assert!(w.authorize(&c, Some(basic("alice:right").as_bytes())).await);
        assert_eq!(lock(&w.verified).len(), 1);
        assert!(w.authorize(&c, Some(basic("alice:right").as_bytes())).await);
        assert!(
            !w.authorize(&c, Some(basic("alice:wrong").as_bytes())).await,
            "a cached success does not let another password in"
        );
    }
}
