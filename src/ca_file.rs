//! `ca_file`: extra CA certificates (PEM) trusted for the gateway's TLS, besides the system's.
//!
//! Read at config load (so a bad file is a config error with its line) and again when the HTTP
//! clients are built. A file with no PEM certificate is an error: it would otherwise silently
//! trust nothing extra.

use std::path::{Path, PathBuf};

use reqwest::Certificate;

/// Why `ca_file` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaFileError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a PEM bundle.
    #[error("{}: not PEM certificates: {detail}", path.display())]
    NotPem {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        detail: String,
    },
    /// The file has no certificate in it.
    #[error("{}: no PEM certificate (-----BEGIN CERTIFICATE-----) found", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Reads the PEM certificates of `path`; at least one.
pub fn read(path: &Path) -> Result<Vec<Certificate>, CaFileError> {
    let pem = std::fs::read(path).map_err(|source| CaFileError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let certs = Certificate::from_pem_bundle(&pem).map_err(|e| CaFileError::NotPem {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(CaFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}
