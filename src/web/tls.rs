//! `tls_server_config`: certificate, key and client CAs into a rustls `ServerConfig`, TLS 1.2
//! and 1.3 only, HTTP/1.1 by ALPN, exporter-toolkit's client auth types, cipher suites and
//! curves (by Go's names), and `client_allowed_sans` (checked by `san`).
//!
//! The section's settings are checked against each other before any file is read; then the files
//! it names are read (certificates through `ca_file::read_pem_certs`, shared with the gateway's
//! `ca_file`) and rustls is built.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedCipherSuite, SupportedProtocolVersion,
};
use tokio_rustls::TlsAcceptor;

use super::ErrorAt;
use super::file::{CipherName, ClientAuth, Curve, RawTls, TlsVersion};
use super::san::AllowedSans;
use crate::ca_file::read_pem_certs;
use crate::config::yaml::ConfigError;
use crate::stamp::Stamp;

/// The rustls server config of a `tls_server_config:` section (`None`: TLS off), recording the
/// files it reads in `stamp`. The section's settings are checked against each other first (both
/// of `cert_file` and `key_file`, versions in order, a client auth type that agrees with
/// `client_ca_file`); then the certificate, the key and the client CAs are read, in that order.
pub(super) fn build(
    raw: RawTls,
    dir: &Path,
    stamp: &mut Stamp,
    err: ErrorAt<'_>,
) -> Result<Option<TlsAcceptor>, ConfigError> {
    let required = |key: &str| {
        let message = format!("tls_server_config.{key}: required when TLS is configured");
        err("tls_server_config", message)
    };
    let (cert_file, key_file) = match (raw.cert_file, raw.key_file) {
        (Some(c), Some(k)) => (dir.join(c.0), dir.join(k.0)),
        (None, None)
            if raw.client_ca_file.is_none()
                && raw.client_auth_type.is_none()
                && raw.min_version.is_none()
                && raw.max_version.is_none()
                && raw.client_allowed_sans.is_none() =>
        {
            // `tls_server_config: {}`: TLS off, as in exporter-toolkit.
            return Ok(None);
        }
        (_, None) => return Err(required("key_file")),
        (None, Some(_)) => return Err(required("cert_file")),
    };
    let versions = versions(raw.min_version, raw.max_version, err)?;
    let auth = raw.client_auth_type.unwrap_or(ClientAuth::NoClientCert);
    let ca_file = raw.client_ca_file.map(|f| dir.join(f.0));
    // A CA file goes with the verifying types only, and they need one (Go would fall back to the
    // system roots; we refuse rather than trust every public CA).
    if auth.verifies() != ca_file.is_some() {
        let (key, message) = match auth.verifies() {
            false => (
                "client_ca_file",
                format!(
                    "only used with client_auth_type VerifyClientCertIfGiven or RequireAndVerifyClientCert, not {auth:?}"
                ),
            ),
            true => ("client_auth_type", format!("{auth:?} needs client_ca_file")),
        };
        return Err(err(key, format!("tls_server_config.{key}: {message}")));
    }
    let sans = allowed_sans(raw.client_allowed_sans, auth, err)?;
    stamp.add(&cert_file);
    let certs =
        read_pem_certs(&cert_file).map_err(|e| file_error(err, "cert_file", &cert_file, e))?;
    stamp.add(&key_file);
    let key = PrivateKeyDer::from_pem_file(&key_file)
        .map_err(|e| file_error(err, "key_file", &key_file, e))?;
    let provider = provider(raw.cipher_suites, raw.curve_preferences, &versions, err)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| err("tls_server_config", format!("tls_server_config: {e}")))?;
    let mut verifier = client_verifier(auth, ca_file, &provider, stamp, err)?;
    if let Some(allowed) = sans {
        verifier = Arc::new(AllowedSans {
            inner: verifier,
            allowed,
        });
    }
    let builder = builder.with_client_cert_verifier(verifier);
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

/// The aws-lc-rs provider (the one reqwest uses too, so only one is built in), narrowed to the
/// listed TLS 1.2 suites and curves. An empty list changes nothing (as in Go).
fn provider(
    suites: Option<Vec<CipherName>>,
    curves: Option<Vec<Curve>>,
    versions: &[&'static SupportedProtocolVersion],
    err: ErrorAt<'_>,
) -> Result<Arc<CryptoProvider>, ConfigError> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(listed) = suites.filter(|l| !l.is_empty()) {
        let listed: Vec<_> = listed.iter().map(|c| c.0.suite()).collect();
        let tls13 = |s: &SupportedCipherSuite| s.version() == &rustls::version::TLS13;
        (provider.cipher_suites).retain(|s| tls13(s) || listed.contains(&s.suite()));
        if versions.contains(&&rustls::version::TLS12) && provider.cipher_suites.iter().all(tls13) {
            let message = "tls_server_config.cipher_suites: no TLS 1.2 suite listed; TLS 1.2 needs one (or set min_version: TLS13)";
            return Err(err("cipher_suites", message.into()));
        }
    }
    if let Some(curves) = curves.filter(|c| !c.is_empty()) {
        provider.kx_groups = curves.into_iter().map(|c| c.0).collect();
    }
    Ok(Arc::new(provider))
}

/// The protocol versions from `min` to `max` (default TLS 1.2 to 1.3).
fn versions(
    min: Option<TlsVersion>,
    max: Option<TlsVersion>,
    err: ErrorAt<'_>,
) -> Result<Vec<&'static SupportedProtocolVersion>, ConfigError> {
    use TlsVersion::{Tls12, Tls13};
    use rustls::version::{TLS12, TLS13};
    match (min.unwrap_or(Tls12), max.unwrap_or(Tls13)) {
        (Tls13, Tls12) => Err(err(
            "min_version",
            "tls_server_config.min_version: above max_version".into(),
        )),
        (Tls12, Tls12) => Ok(vec![&TLS12]),
        (Tls13, Tls13) => Ok(vec![&TLS13]),
        (Tls12, Tls13) => Ok(vec![&TLS12, &TLS13]),
    }
}

/// `client_allowed_sans`, which needs a client auth type that always gets a certificate (the
/// others let a client in without one, with no SAN to compare; exporter-toolkit refuses them too).
fn allowed_sans(
    sans: Option<Vec<String>>,
    auth: ClientAuth,
    err: ErrorAt<'_>,
) -> Result<Option<Vec<String>>, ConfigError> {
    let problem = match &sans {
        None => return Ok(None),
        Some(list) if list.is_empty() => "an empty list would refuse every client".to_string(),
        Some(_) if auth.requires_cert() => return Ok(sans),
        Some(_) => format!(
            "needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert, not {auth:?}"
        ),
    };
    let key = "client_allowed_sans";
    Err(err(key, format!("tls_server_config.{key}: {problem}")))
}

/// The verifier for `auth` (for `NoClientCert`: none asked for), reading `ca_file`, which `build`
/// has checked is there exactly for the verifying types.
fn client_verifier(
    auth: ClientAuth,
    ca_file: Option<PathBuf>,
    provider: &Arc<CryptoProvider>,
    stamp: &mut Stamp,
    err: ErrorAt<'_>,
) -> Result<Arc<dyn ClientCertVerifier>, ConfigError> {
    let Some(ca_file) = ca_file else {
        return Ok(match auth {
            ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
            _ => Arc::new(AnyClientCert {
                mandatory: auth == ClientAuth::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            }),
        });
    };
    stamp.add(&ca_file);
    let ca_err = |e: &dyn Display| file_error(err, "client_ca_file", &ca_file, e);
    let mut roots = RootCertStore::empty();
    for cert in read_pem_certs(&ca_file).map_err(|e| ca_err(&e))? {
        roots.add(cert).map_err(|e| ca_err(&e))?;
    }
    let mut verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if auth == ClientAuth::VerifyClientCertIfGiven {
        verifier = verifier.allow_unauthenticated();
    }
    verifier.build().map_err(|e| ca_err(&e))
}

/// An error about the file a key names: `tls_server_config.KEY: PATH: why`.
fn file_error(err: ErrorAt<'_>, key: &str, path: &Path, why: impl Display) -> ConfigError {
    err(
        key,
        format!("tls_server_config.{key}: {}: {why}", path.display()),
    )
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::yaml::ConfigError;
    use crate::web::WebConfig;

    fn parse(text: &str, dir: &Path) -> Result<WebConfig, ConfigError> {
        WebConfig::parse(text, Path::new("web.yml"), dir)
    }

    const SECTION: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

    #[test]
    fn client_auth_and_ca_file_must_agree_before_any_file_is_read() {
        let nowhere = Path::new("/nonexistent");
        let e = parse(&format!("{SECTION}  client_ca_file: ca.crt\n"), nowhere).unwrap_err();
        assert_eq!(
            e.message,
            "tls_server_config.client_ca_file: only used with client_auth_type VerifyClientCertIfGiven or RequireAndVerifyClientCert, not NoClientCert"
        );
        assert_eq!(e.location.map(|l| l.0), Some(4), "{e}");
        let e = parse(
            &format!("{SECTION}  client_auth_type: RequireAndVerifyClientCert\n"),
            nowhere,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "tls_server_config.client_auth_type: RequireAndVerifyClientCert needs client_ca_file"
        );
        assert_eq!(e.location.map(|l| l.0), Some(4), "{e}");
    }

    #[test]
    fn client_allowed_sans_needs_a_required_certificate() {
        let nowhere = Path::new("/nonexistent");
        let sans = "  client_allowed_sans: [prometheus]\n";
        for (auth, problem) in [
            ("", "not NoClientCert"),
            (
                "  client_auth_type: RequestClientCert\n",
                "not RequestClientCert",
            ),
            (
                "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n",
                "not VerifyClientCertIfGiven",
            ),
            (
                "  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: []\n",
                "an empty list would refuse every client",
            ),
        ] {
            let sans = if auth.contains("[]") { "" } else { sans };
            let e = parse(&format!("{SECTION}{auth}{sans}"), nowhere).unwrap_err();
            assert!(
                e.message
                    .starts_with("tls_server_config.client_allowed_sans: ")
                    && e.message.contains(problem),
                "{auth:?}: {e}"
            );
            assert!(e.location.is_some(), "{e}");
        }
        // With a type that requires a certificate, the files come next.
        let e = parse(
            &format!("{SECTION}  client_auth_type: RequireAnyClientCert\n{sans}"),
            nowhere,
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("tls_server_config.cert_file: "),
            "{e}"
        );
    }

    #[test]
    fn files_are_read_in_order_and_named_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let server = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["other".into()]).unwrap();
        let write = |name: &str, text: &str| std::fs::write(d.join(name), text).unwrap();
        let message = |text: &str| parse(text, d).unwrap_err().message;

        write("server.crt", "no certificate here\n");
        assert_eq!(
            message(SECTION),
            format!(
                "tls_server_config.cert_file: {}: no PEM certificate found",
                d.join("server.crt").display()
            )
        );
        write("server.crt", &server.cert.pem());
        assert!(
            message(SECTION).starts_with(&format!(
                "tls_server_config.key_file: {}: ",
                d.join("server.key").display()
            )),
            "the key is read after the certificate"
        );
        write("server.key", &other.signing_key.serialize_pem());
        assert!(
            message(SECTION)
                .starts_with("tls_server_config: certificate and key do not work together: ")
        );
        write("server.key", &server.signing_key.serialize_pem());
        assert!(parse(SECTION, d).unwrap().tls().is_some());

        let verified = format!(
            "{SECTION}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n"
        );
        write("ca.crt", "");
        assert_eq!(
            message(&verified),
            format!(
                "tls_server_config.client_ca_file: {}: no PEM certificate found",
                d.join("ca.crt").display()
            )
        );
        write("ca.crt", &other.cert.pem());
        assert!(parse(&verified, d).unwrap().tls().is_some());
        let any = format!("{SECTION}  client_auth_type: RequireAnyClientCert\n");
        assert!(parse(&any, d).unwrap().tls().is_some());

        // The toolkit's other TLS options, by Go's names.
        let options = format!(
            "{SECTION}  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n  curve_preferences: [X25519, CurveP256]\n  prefer_server_cipher_suites: false\n"
        );
        assert!(parse(&options, d).unwrap().tls().is_some());
        let only13 = format!("{SECTION}  cipher_suites: [TLS_AES_128_GCM_SHA256]\n");
        assert!(message(&only13).contains("no TLS 1.2 suite listed"));
        assert!(parse(&format!("{only13}  min_version: TLS13\n"), d).is_ok());
    }

    #[test]
    fn cipher_suites_and_curves_by_go_names() {
        let nowhere = Path::new("/nonexistent");
        for (option, wanted) in [
            (
                "cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]",
                "unsupported cipher suite \"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA\" (rustls implements TLS_AES_256_GCM_SHA384, ",
            ),
            (
                "cipher_suites: [TLS_BOGUS]",
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            ),
            (
                "curve_preferences: [CurveP521]",
                "unsupported curve \"CurveP521\" (supported: CurveP256, CurveP384, X25519)",
            ),
            ("curve_preferences: [P256]", "unsupported curve"),
        ] {
            let e = parse(&format!("{SECTION}  {option}\n"), nowhere).unwrap_err();
            assert!(e.message.contains(wanted), "{option}: {e}");
            assert_eq!(e.location.map(|l| l.0), Some(4), "{e}");
        }
    }
}
