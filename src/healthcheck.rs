//! The `healthcheck` command: probes this exporter's own `GET /-/healthy` over loopback, so a
//! container image without a shell or curl can have a `HEALTHCHECK` (Docker, podman, Compose,
//! Nomad). Exit 0 healthy; 1 otherwise, with one line on stderr that says why.
//!
//! It speaks as the exporter listens: `--web.listen-address` (`:PORT` and `0.0.0.0:PORT` are
//! probed on 127.0.0.1, `[::]:PORT` on `[::1]`), and TLS and basic auth as `--web.config.file`
//! (read with `web`, so a web config the exporter would refuse is unhealthy too). The file holds
//! bcrypt hashes, so a password comes from `--password-file`. The certificate is not verified:
//! the address is the exporter's own, the connection never leaves the host, and the certificate
//! may name only the host's public names. A client certificate is never sent, so a web config
//! that requires one cannot be probed. It reads nothing else and never prints the password.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::{EXIT_FAILURE, HealthcheckArgs};
use crate::stamp::Stamp;
use crate::web::WebConfig;

/// The whole probe's limit: a live exporter answers `/-/healthy` in milliseconds, and a health
/// check's own timeout (Docker's default 30 s, the image's 5 s) must not be the one that fires.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Runs the probe; prints why it failed.
pub(crate) async fn main(args: &HealthcheckArgs) -> ExitCode {
    match probe(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("unhealthy: {why}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `Ok` when `/-/healthy` answered 200; else why not.
async fn probe(args: &HealthcheckArgs) -> Result<(), String> {
    let (tls, needs_auth) = match &args.web_config_file {
        Some(path) => {
            let web = WebConfig::load(path, &mut Stamp::default())
                .map_err(|e| format!("invalid web configuration: {e}"))?;
            (web.tls().is_some(), web.requires_auth())
        }
        None => (false, false),
    };
    let credentials = match (&args.username, &args.password_file) {
        (Some(user), Some(file)) => Some((user, read_password(file)?)),
        _ if needs_auth => {
            return Err(format!(
                "{} requires basic auth: give --username and --password-file (or CDSS_HEALTHCHECK_USERNAME and CDSS_HEALTHCHECK_PASSWORD_FILE)",
                args.web_config_file
                    .as_deref()
                    .unwrap_or(Path::new(""))
                    .display()
            ));
        }
        _ => None,
    };
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        // Its own certificate, on its own address (see the module header).
        .tls_danger_accept_invalid_certs(true)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let scheme = if tls { "https" } else { "http" };
    let mut failures = Vec::new();
    for host in loopback(&args.listen_address) {
        let url = format!("{scheme}://{host}/-/healthy");
        let mut request = http.get(&url);
        if let Some((user, password)) = &credentials {
            request = request.basic_auth(user, Some(password));
        }
        match request.send().await {
            Ok(r) if r.status() == reqwest::StatusCode::OK => return Ok(()),
            Ok(r) if r.status() == reqwest::StatusCode::UNAUTHORIZED => {
                return Err(format!(
                    "{url}: 401: wrong or missing user name or password"
                ));
            }
            Ok(r) => return Err(format!("{url}: HTTP {}", r.status())),
            Err(e) => {
                let connect = e.is_connect();
                failures.push(format!(
                    "{url}: {}",
                    crate::error_text::chain(&e.without_url())
                ));
                // Refused on one loopback address: the other may be the one it listens on.
                if !connect {
                    break;
                }
            }
        }
    }
    Err(failures.join("; "))
}

/// Where to reach an exporter that listens on `address` (checked by the flag's parser): every
/// interface becomes loopback, IPv4 first for `:PORT` (an exporter on `::` takes IPv4 too unless
/// the host makes IPv6 sockets IPv6-only, hence `[::1]` next).
fn loopback(address: &str) -> Vec<String> {
    let (host, port) = address.rsplit_once(':').unwrap_or((address, ""));
    match host {
        "" => vec![format!("127.0.0.1:{port}"), format!("[::1]:{port}")],
        "0.0.0.0" => vec![format!("127.0.0.1:{port}")],
        "[::]" => vec![format!("[::1]:{port}"), format!("127.0.0.1:{port}")],
        _ => vec![address.to_string()],
    }
}

/// The password in `path`, without the line end editors add.
fn read_password(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--password-file {}: {e}", path.display()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_is_probed_on_loopback() {
        assert_eq!(loopback(":9787"), ["127.0.0.1:9787", "[::1]:9787"]);
        assert_eq!(loopback("0.0.0.0:1"), ["127.0.0.1:1"]);
        assert_eq!(loopback("[::]:2"), ["[::1]:2", "127.0.0.1:2"]);
        assert_eq!(loopback("10.1.2.3:3"), ["10.1.2.3:3"]);
        assert_eq!(loopback("[::1]:4"), ["[::1]:4"]);
        assert_eq!(loopback("localhost:5"), ["localhost:5"]);
    }

    #[test]
    fn password_file_loses_only_its_line_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, " s3cret \r\n").unwrap();
        assert_eq!(read_password(&path).unwrap(), " s3cret ");
        let e = read_password(&dir.path().join("missing")).unwrap_err();
        assert!(
            e.starts_with("--password-file ") && e.contains("missing"),
            "{e}"
        );
    }
}
