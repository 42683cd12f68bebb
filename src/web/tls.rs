//! `tls_server_config`: certificate, key and client CAs into a rustls `ServerConfig`, TLS 1.2
//! and 1.3 only, HTTP/1.1 by ALPN, and exporter-toolkit's client auth types.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};
use tokio_rustls::TlsAcceptor;

use super::file::{ClientAuth, RawTls, TlsVersion};
use super::watch::Stamp;
use crate::config::yaml::ConfigError;

/// The crypto provider reqwest uses too (aws-lc-rs), so only one is built in.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The rustls server config of a `tls_server_config:` section (`None`: TLS off), recording the
/// files it reads in `stamp`.
pub(super) fn build(
    raw: RawTls,
    dir: &Path,
    stamp: &mut Stamp,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<TlsAcceptor>, ConfigError> {
    let client_auth = raw.client_auth_type.unwrap_or(ClientAuth::NoClientCert);
    let (cert_file, key_file) = match (raw.cert_file, raw.key_file) {
        (Some(c), Some(k)) => (dir.join(c.0), dir.join(k.0)),
        (None, None)
            if raw.client_ca_file.is_none()
                && raw.client_auth_type.is_none()
                && raw.min_version.is_none()
                && raw.max_version.is_none() =>
        {
            // `tls_server_config: {}`: TLS off, as in exporter-toolkit.
            return Ok(None);
        }
        (_, None) => {
            return Err(err(
                "tls_server_config",
                "tls_server_config.key_file: required when TLS is configured".into(),
            ));
        }
        (None, _) => {
            return Err(err(
                "tls_server_config",
                "tls_server_config.cert_file: required when TLS is configured".into(),
            ));
        }
    };
    let min = raw.min_version.unwrap_or(TlsVersion::Tls12);
    let max = raw.max_version.unwrap_or(TlsVersion::Tls13);
    if min > max {
        return Err(err(
            "min_version",
            "tls_server_config.min_version: above max_version".into(),
        ));
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (min..=max).contains(v))
    .map(|(_, p)| p)
    .collect();

    stamp.add(&cert_file);
    let certs = CertificateDer::pem_file_iter(&cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            err(
                "cert_file",
                format!("tls_server_config.cert_file: {}: {e}", cert_file.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(err(
            "cert_file",
            format!(
                "tls_server_config.cert_file: {}: no PEM certificate found",
                cert_file.display()
            ),
        ));
    }
    stamp.add(&key_file);
    let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|e| {
        err(
            "key_file",
            format!("tls_server_config.key_file: {}: {e}", key_file.display()),
        )
    })?;

    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| err("tls_server_config", format!("tls_server_config: {e}")))?;
    let builder = match (client_auth, raw.client_ca_file) {
        (ClientAuth::NoClientCert, None) => builder.with_no_client_auth(),
        (ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert, None) => builder
            .with_client_cert_verifier(Arc::new(AnyClientCert {
                mandatory: client_auth == ClientAuth::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            })),
        (auth, Some(_)) if !auth.verifies() => {
            return Err(err(
                "client_ca_file",
                format!(
                    "tls_server_config.client_ca_file: only used with client_auth_type VerifyClientCertIfGiven or RequireAndVerifyClientCert, not {auth:?}"
                ),
            ));
        }
        (auth, None) => {
            return Err(err(
                "client_auth_type",
                format!("tls_server_config.client_auth_type: {auth:?} needs client_ca_file"),
            ));
        }
        (auth, Some(ca)) => {
            let ca_file = dir.join(ca.0);
            stamp.add(&ca_file);
            let ca_err = |m: String| {
                err(
                    "client_ca_file",
                    format!(
                        "tls_server_config.client_ca_file: {}: {m}",
                        ca_file.display()
                    ),
                )
            };
            let mut roots = RootCertStore::empty();
            for cert in
                CertificateDer::pem_file_iter(&ca_file).map_err(|e| ca_err(e.to_string()))?
            {
                let cert = cert.map_err(|e| ca_err(e.to_string()))?;
                roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(ca_err("no PEM certificate found".into()));
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = if auth == ClientAuth::VerifyClientCertIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| ca_err(e.to_string()))?)
        }
    };
    let mut server = builder.with_single_cert(certs, key).map_err(|e| {
        err(
            "key_file",
            format!("tls_server_config: certificate and key do not work together: {e}"),
        )
    })?;
    // The endpoints speak HTTP/1.1 only.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

/// `RequestClientCert` / `RequireAnyClientCert`: a client certificate is asked for and the
/// client must prove it holds its key, but it is not checked against any CA (as in Go).
#[derive(Debug)]
struct AnyClientCert {
    /// `RequireAnyClientCert`.
    mandatory: bool,
    /// For the proof-of-key signature.
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
