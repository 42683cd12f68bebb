//! The gateway client's certificate checks, over loopback with certificates made at test time
//! (rcgen): against the simulated gateway on HTTPS, a self-signed certificate is refused unless
//! `ca_file` trusts it, and a certificate for another name is refused. (Moved from
//! `tests/e2e/tls.rs`, which keeps the TLS of our own endpoints.)

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::credentials::{Credentials, Keyring};
use crate::ncp::client::{ClientSettings, Clients};
use crate::ncp::precheck::precheck;
use crate::outcome::Outcome;
use crate::secret::Secret;
use crate::sim::{Behaviour, SimConfig, SimGateway};

const ACCESS_KEY: &str = "TEST-ACCESS-KEY";
const SECRET_KEY: &str = "test-secret-key-Zm9vYmFy-do-not-leak";

/// A rustls server config for the simulated gateway.
fn sim_tls(cert_pem: &str, key_pem: &str) -> Arc<rustls::ServerConfig> {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

/// A simulated gateway on HTTPS with a self-signed certificate for `names`; returns it and the
/// certificate's PEM.
async fn tls_sim(names: &[&str]) -> (SimGateway, String) {
    let self_signed =
        rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert = self_signed.cert.pem();
    let tls = sim_tls(&cert, &self_signed.signing_key.serialize_pem());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = SimGateway::start_tls(
        listener,
        SimConfig {
            access_key: ACCESS_KEY.into(),
            secret_key: Secret::new(SECRET_KEY),
            clusters: [(100, Behaviour::Ready)].into_iter().collect(),
        },
        tls,
    )
    .unwrap();
    assert!(sim.url().starts_with("https://127.0.0.1:"), "{}", sim.url());
    (sim, cert)
}

/// One precheck of cluster 100 through the config file `head` + the sim's gateway, as the
/// exporter does it: `Config::load` (which checks `ca_file`), the configured clients, the call.
async fn precheck_via_config(dir: &Path, sim: &SimGateway, head: &str) -> Outcome {
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "{head}\napi_gateway: {}\nclusters:\n  - {{name: orders, region: KR, service_group_instance_no: 100}}\n",
            sim.url()
        ),
    )
    .unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let keyring: Keyring = Credentials {
        access_key: ACCESS_KEY.into(),
        secret_key: Secret::new(SECRET_KEY),
    }
    .into();
    let clients = Clients::new(&keyring, &ClientSettings::of(&config)).unwrap();
    let cluster = &config.clusters[0];
    precheck(&clients, cluster).await.outcome
}

#[tokio::test]
async fn gateway_certificate_checks() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, cert) = tls_sim(&["127.0.0.1"]).await;

    // Self-signed: refused by default (not in the system's roots).
    let outcome = precheck_via_config(dir.path(), &sim, "timeout: 5s").await;
    let Outcome::ConnectionError { detail } = &outcome else {
        panic!("self-signed accepted without ca_file: {outcome:?}")
    };
    assert!(
        detail.contains("certificate") && detail.contains("UnknownIssuer"),
        "{detail}"
    );
    assert_eq!(
        outcome.failure_reason().map(|r| r.as_str()),
        Some("connection_error")
    );

    // Trusted through ca_file: ready.
    let ca_file = dir.path().join("gateway-ca.pem");
    std::fs::write(&ca_file, &cert).unwrap();
    let with_ca = format!("timeout: 5s\nca_file: {}", ca_file.display());
    assert_eq!(
        precheck_via_config(dir.path(), &sim, &with_ca).await,
        Outcome::Ready
    );
    assert_eq!(
        sim.calls(100),
        1,
        "only the trusted call reached the gateway"
    );

    // A certificate for another name, trusted through ca_file, still fails on the name.
    let (wrong_name, wrong_cert) = tls_sim(&["example.invalid"]).await;
    let wrong_ca = dir.path().join("wrong-name.pem");
    std::fs::write(&wrong_ca, &wrong_cert).unwrap();
    let outcome = precheck_via_config(
        dir.path(),
        &wrong_name,
        &format!("timeout: 5s\nca_file: {}", wrong_ca.display()),
    )
    .await;
    let Outcome::ConnectionError { detail } = &outcome else {
        panic!("a certificate for example.invalid accepted for 127.0.0.1: {outcome:?}")
    };
    assert!(
        detail.contains("certificate not valid for name \"127.0.0.1\""),
        "{detail}"
    );
    assert_eq!(wrong_name.calls(100), 0);
}
