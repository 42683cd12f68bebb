//! One account's keys, looked up where its [`CredentialSource`] says: NCP's SDK order (env, then
//! `$HOME/.ncloud/configure`, then the server role), one server role, or the configured pair.
//!
//! Owns the order and the "looked at" list a failed lookup reports. The metadata API is asked only
//! when the earlier steps found nothing. Files are read on a blocking thread. Writes nothing: the
//! keyring installs what it finds.

use super::env::METADATA_ENDPOINT_ENV;
use super::role::MetadataClient;
use super::{CredentialSource, CredentialsError, Found, Lookup, blocking, env, file};

/// What a lookup found, and, for keys from a role, the metadata API and the role (for the
/// refresher).
pub(super) type Resolved = (Found, Option<(MetadataClient, String)>);

/// Looks up the keys `source` names.
pub(super) async fn resolve(
    source: &CredentialSource,
    lookup: &Lookup,
) -> Result<Resolved, CredentialsError> {
    match source {
        CredentialSource::Keys(pair) => {
            let (pair, lookup) = (pair.clone(), lookup.clone());
            let found = blocking(move || file::load_pair(&pair, &lookup)).await?;
            Ok((found, None))
        }
        CredentialSource::ServerRole { name } => Ok(from_role(name.as_deref(), lookup).await?),
        CredentialSource::Chain { server_role } => {
            let mut looked_at = Vec::new();
            match env::from_env(lookup) {
                Ok(found) => return Ok((found, None)),
                Err(what) => looked_at.push(what),
            }
            let l = lookup.clone();
            match blocking(move || file::from_configure(&l)).await {
                Ok(found) => return Ok((found, None)),
                Err(what) => looked_at.push(what),
            }
            from_role(server_role.as_deref(), lookup)
                .await
                .map_err(|e| {
                    looked_at.push(e.to_string());
                    CredentialsError::NotFound { looked_at }
                })
        }
    }
}

async fn from_role(name: Option<&str>, lookup: &Lookup) -> Result<Resolved, super::RoleError> {
    let Some(endpoint) = lookup.metadata_endpoint.as_deref() else {
        let problem =
            format!("this lookup has no metadata API ({METADATA_ENDPOINT_ENV} not given)");
        return Err(super::RoleError::new("(none)", problem));
    };
    let client = MetadataClient::new(endpoint)?;
    let role = client.role(name).await?;
    let found = client.fetch(&role).await?;
    Ok((found, Some((client, role))))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(dir: &std::path::Path, pairs: &[(&str, &str)]) -> Lookup {
        let mut vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.insert("HOME".into(), dir.display().to_string());
        // A closed loopback port: the role step fails at once, and never leaves the host.
        vars.insert(
            env::METADATA_ENDPOINT_ENV.into(),
            "http://127.0.0.1:9".into(),
        );
        Lookup::from_map(vars)
    }

    #[tokio::test]
    async fn env_first_then_configure_then_role_and_the_miss_names_every_step() {
        let dir = tempfile::tempdir().unwrap();
        let chain = CredentialSource::default();
        let l = lookup(dir.path(), &[]);
        let err = resolve(&chain, &l).await.unwrap_err().to_string();
        for step in [
            "NCLOUD_ACCESS_KEY_ID / NCLOUD_ACCESS_KEY (not set)",
            "NCLOUD_SECRET_ACCESS_KEY / NCLOUD_SECRET_KEY (not set)",
            ".ncloud/configure (not found)",
            "metadata API http://127.0.0.1:9",
        ] {
            assert!(err.contains(step), "{step:?} missing in {err}");
        }

        std::fs::create_dir(dir.path().join(".ncloud")).unwrap();
        std::fs::write(
            dir.path().join(".ncloud/configure"),
            "[DEFAULT]\nncloud_access_key_id = CONF-AK\nncloud_secret_access_key = conf-sk\n",
        )
        .unwrap();
        let r = resolve(&chain, &l).await.unwrap();
        assert_eq!(r.0.credentials.access_key, "CONF-AK");
        assert_eq!(r.0.origin.kind(), "configure");
        assert!(r.1.is_none());

        let l = lookup(
            dir.path(),
            &[
                ("NCLOUD_ACCESS_KEY_ID", "ENV-AK"),
                ("NCLOUD_SECRET_KEY", "env-sk"),
            ],
        );
        let r = resolve(&chain, &l).await.unwrap();
        assert_eq!(r.0.credentials.access_key, "ENV-AK");
        assert_eq!(r.0.origin.kind(), "env");
    }

    #[tokio::test]
    async fn a_lookup_without_a_metadata_address_has_no_role_step() {
        let err = resolve(&CredentialSource::default(), &Lookup::isolated())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("HOME is not set"), "{err}");
        assert!(err.contains("no metadata API"), "{err}");
    }

    #[tokio::test]
    async fn an_explicit_role_skips_env_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let l = lookup(
            dir.path(),
            &[
                ("NCLOUD_ACCESS_KEY", "ENV-AK"),
                ("NCLOUD_SECRET_KEY", "env-sk"),
            ],
        );
        let source = CredentialSource::ServerRole {
            name: Some("reader".into()),
        };
        let err = resolve(&source, &l).await.unwrap_err().to_string();
        assert!(
            err.contains("http://127.0.0.1:9/latest/meta-data/iam/security-credentials/reader"),
            "{err}"
        );
    }
}
