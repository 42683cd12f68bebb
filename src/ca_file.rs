//! `ca_file`: extra CA certificates (PEM) trusted for the gateway's TLS, besides the system's;
//! and [`read_pem_certs`], the one reader of PEM certificate files (the web config's
//! `cert_file` and `client_ca_file` use it too).
//!
//! Read at config load (so a bad file is a config error with its line) and again when the HTTP
//! clients are built. A file with no PEM certificate is an error: it would otherwise silently
//! trust nothing extra.

use std::path::{Path, PathBuf};

use reqwest::Certificate;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::{self, PemObject};

/// Why `ca_file` cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CaFileError {
    /// The file cannot be read.
    #[error("cannot read {}: {}", .0.display(), .1)]
    Unreadable(PathBuf, #[source] std::io::Error),
    /// The file is not a PEM bundle (with the parser's complaint).
    #[error("{}: not PEM certificates: {}", .0.display(), .1)]
    NotPem(PathBuf, String),
    /// The file has no certificate in it.
    #[error("{}: no PEM certificate (-----BEGIN CERTIFICATE-----) found", .0.display())]
    Empty(PathBuf),
}

/// Why a PEM certificate file gave no certificates (the caller adds the file's name).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PemError {
    /// The file cannot be read, or a PEM section in it is malformed.
    #[error("{0}")]
    Read(pem::Error),
    /// No `-----BEGIN CERTIFICATE-----` section.
    #[error("no PEM certificate found")]
    Empty,
}

/// The certificates of the PEM file `path`, in file order; at least one. Other PEM sections
/// (keys, parameters) are skipped.
pub(crate) fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(PemError::Read)?;
    if certs.is_empty() {
        return Err(PemError::Empty);
    }
    Ok(certs)
}

/// Reads the PEM certificates of `path`; at least one.
pub(crate) fn read(path: &Path) -> Result<Vec<Certificate>, CaFileError> {
    let file = || path.to_path_buf();
    read_pem_certs(path)
        .map_err(|e| match e {
            PemError::Read(pem::Error::Io(source)) => CaFileError::Unreadable(file(), source),
            PemError::Read(e) => CaFileError::NotPem(file(), e.to_string()),
            PemError::Empty => CaFileError::Empty(file()),
        })?
        .iter()
        .map(|der| Certificate::from_der(der))
        .collect::<Result<_, _>>()
        .map_err(|e| CaFileError::NotPem(file(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_bad_file_says_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let absent = dir.path().join("absent.pem");
        let e = read(&absent).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("cannot read {}: ", absent.display())),
            "{e}"
        );
        let empty = write("empty.pem", "hello\n");
        let e = read(&empty).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) found",
                empty.display()
            )
        );
        let cut = write("cut.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
        let e = read(&cut).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: not PEM certificates: ", cut.display())),
            "{e}"
        );
        // The shared reader says the same things without the file name.
        assert_eq!(
            read_pem_certs(&empty).unwrap_err().to_string(),
            "no PEM certificate found"
        );
        assert!(matches!(
            read_pem_certs(&absent),
            Err(PemError::Read(pem::Error::Io(_)))
        ));
    }

    #[test]
    fn a_bundle_gives_every_certificate_and_skips_keys() {
        let dir = tempfile::tempdir().unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["a.test".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b.test".into()]).unwrap();
        let path = dir.path().join("bundle.pem");
        let text = format!(
            "{}{}{}",
            a.cert.pem(),
            a.signing_key.serialize_pem(),
            b.cert.pem()
        );
        std::fs::write(&path, text).unwrap();
        let certs = read_pem_certs(&path).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].as_ref(), a.cert.der().as_ref());
        assert_eq!(certs[1].as_ref(), b.cert.der().as_ref());
        assert_eq!(read(&path).unwrap().len(), 2);
    }
}
