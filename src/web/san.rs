//! `client_allowed_sans`: a client certificate is accepted only if one of its subject
//! alternative names is in the list, compared as exporter-toolkit compares them (exact strings;
//! DNS names, e-mail addresses, IP addresses as text, URIs). The check runs after the wrapped
//! verifier's own (the chain, for `RequireAndVerifyClientCert`), on the leaf certificate.
//!
//! The names are read with `x509-parser`; a certificate it cannot read is refused.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use x509_parser::extensions::GeneralName;

/// A client certificate verifier that also requires an allowed SAN.
#[derive(Debug)]
pub(super) struct AllowedSans {
    /// The verifier of the configured `client_auth_type`, which runs first.
    pub inner: Arc<dyn ClientCertVerifier>,
    /// `client_allowed_sans`, as written.
    pub allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let names = subject_alt_names(end_entity).unwrap_or_default();
        match names.iter().any(|n| self.allowed.contains(n)) {
            true => Ok(verified),
            // Go's server answers this with a bad_certificate alert too.
            false => Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The DNS names, e-mail addresses, IP addresses and URIs in the certificate's
/// subjectAltName extension, as text (IPs as Go prints them); `None` if it cannot be read.
pub(super) fn subject_alt_names(cert: &[u8]) -> Option<Vec<String>> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert).ok()?;
    let Some(san) = cert.subject_alternative_name().ok()? else {
        return Some(Vec::new());
    };
    Some(
        san.value
            .general_names
            .iter()
            .filter_map(general_name)
            .collect(),
    )
}

/// A GeneralName as text, for the four kinds exporter-toolkit compares.
fn general_name(name: &GeneralName) -> Option<String> {
    let ip = |bytes: &[u8]| match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    };
    match name {
        GeneralName::RFC822Name(s) | GeneralName::DNSName(s) | GeneralName::URI(s) => {
            Some(s.to_string())
        }
        // Go prints an IPv4-mapped IPv6 address as IPv4.
        GeneralName::IPAddress(bytes) => ip(bytes).map(|ip| ip.to_canonical().to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, SanType};

    #[test]
    fn names_of_every_kind_are_read() {
        let mut params = CertificateParams::new(vec!["prometheus.example".to_string()]).unwrap();
        params.subject_alt_names.extend([
            SanType::Rfc822Name("ops@example.com".try_into().unwrap()),
            SanType::IpAddress("10.0.0.7".parse().unwrap()),
            SanType::IpAddress("2001:db8::1".parse().unwrap()),
            SanType::IpAddress("::ffff:192.0.2.1".parse().unwrap()),
            SanType::URI(
                "spiffe://cluster/ns/monitoring/sa/prometheus"
                    .try_into()
                    .unwrap(),
            ),
        ]);
        let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
        assert_eq!(
            subject_alt_names(cert.der()).unwrap(),
            [
                "prometheus.example",
                "ops@example.com",
                "10.0.0.7",
                "2001:db8::1",
                "192.0.2.1",
                "spiffe://cluster/ns/monitoring/sa/prometheus"
            ]
        );
        let none = CertificateParams::new(Vec::<String>::new()).unwrap();
        let none = none.self_signed(&KeyPair::generate().unwrap()).unwrap();
        assert_eq!(subject_alt_names(none.der()), Some(vec![]));
    }

    #[test]
    fn unreadable_input_is_none_never_a_panic() {
        let cert = CertificateParams::new(vec!["a.example".to_string()]).unwrap();
        let der = cert
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .to_vec();
        for cut in 0..der.len() {
            // Truncated anywhere: no panic, and never a name that was not there.
            let names = subject_alt_names(&der[..cut]).unwrap_or_default();
            assert!(names.iter().all(|n| n == "a.example"), "{names:?}");
        }
        assert_eq!(subject_alt_names(&[0x30, 0x89, 0xff]), None);
        assert_eq!(subject_alt_names(b""), None);
    }
}
