//! The exporter's HTTP endpoints (hyper, HTTP/1.1).
//!
//! - `GET /metrics`: the exposition, from the last results; never calls NCP. Gzipped when the
//!   scraper sends `Accept-Encoding: gzip` (Prometheus does).
//! - `GET /`: landing page: version, each cluster's state and age, links.
//! - `GET /-/healthy`: 200 while the process is up.
//! - `GET /-/ready`: 503 until the first round of prechecks has finished, then 200.
//! - `GET /gate/{cluster}`: 200 if the cluster's last precheck was ready and younger than
//!   `gate.max_age`, else 503; JSON either way; 404 for a cluster not in the config.
//!   `?fresh=1` asks the scheduler's runner for a precheck now (shared, rate-limited).
//!
//! - `POST /-/reload`: reload the config file (500 with the error if it is bad; nothing changes).
//!
//! `HEAD` is accepted wherever `GET` is. Other methods get 405 with `Allow`; other paths 404.
//! Connections are capped and slow header senders are cut off. This module reads `state`; it never
//! writes it and never talks to NCP itself: the gate's fresh path goes through the runner, and
//! only for clusters in the config.
//!
//! With `--web.config.file` ([`crate::web_config`]): the TLS handshake runs per connection with a
//! timeout (a plain-HTTP request on the TLS port gets a 400 and the connection is closed), and
//! when users are configured every path, `/-/healthy` included, needs Basic auth (401 otherwise),
//! as with exporter-toolkit.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE,
    HeaderMap, HeaderValue, VARY, WWW_AUTHENTICATE,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::chunks::Stream;
use crate::gate;
use crate::metrics::{self, Encoding, Exposition};
use crate::reload::{LiveSettings, Reloader};
use crate::scheduler::FreshPrecheck;
use crate::state::State;
use crate::web_config::{self, WebConfigWatch};

/// Connections served at once; more wait in the accept queue.
pub const MAX_CONNECTIONS: usize = 512;
/// A client must send its request headers within this time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head we buffer (hyper requires at least 8 KiB).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How long open connections get to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// A TLS client must finish its handshake within this time.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a plain-HTTP client on the TLS port may keep sending before it is cut off.
const PLAIN_HTTP_DRAIN: Duration = Duration::from_secs(1);
/// The answer to a plain-HTTP request on the TLS port (what Go's servers send).
const PLAIN_HTTP_ON_TLS_PORT: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// What the endpoints read.
pub struct App {
    /// Latest results.
    pub state: Arc<State>,
    /// Cached exposition.
    pub exposition: Exposition,
    /// Interval and gate settings; a reload may change them.
    pub live: LiveSettings,
    /// Runs the gate's fresh prechecks (the scheduler's runner).
    pub fresh: Arc<dyn FreshPrecheck>,
    /// Reloads the config file; `None` when there is none (e.g. `--demo`).
    pub reloader: Option<Arc<Reloader>>,
}

type Resp = Response<Stream>;

/// Serves until `shutdown` turns true, then gives open connections [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: watch::Receiver<bool>) {
    serve_with(listener, app, None, shutdown).await;
}

/// [`serve`], with TLS and basic auth from `web` (`--web.config.file`), re-read when it changes.
pub async fn serve_with(
    listener: TcpListener,
    app: Arc<App>,
    web: Option<Arc<WebConfigWatch>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let (app, web, watcher) = (app.clone(), web.clone(), graceful.watcher());
        let mut stopping = shutdown.clone();
        tokio::spawn(async move {
            let tls = web.as_ref().and_then(|w| w.current().tls().cloned());
            let served = match tls {
                None => serve_http(stream, app, web, watcher).await,
                Some(acceptor) => {
                    // A handshake still running at shutdown is dropped, not waited for.
                    let handshake = tokio::select! {
                        h = tls_handshake(stream, acceptor) => h,
                        _ = stopping.wait_for(|stop| *stop) => Err("shutting down".to_string()),
                    };
                    match handshake {
                        Ok(stream) => serve_http(stream, app, web, watcher).await,
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("some HTTP connections were still open at shutdown");
    }
}

/// HTTP/1.1 on an accepted (and maybe TLS) connection, with Basic auth in front of [`handle`]
/// when `web` configures users.
async fn serve_http<S>(
    io: S,
    app: Arc<App>,
    web: Option<Arc<WebConfigWatch>>,
    watcher: Watcher,
) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let (app, web) = (app.clone(), web.clone());
        async move {
            if let Some(web) = web {
                // Per request, so a changed password applies to kept-alive connections too.
                let config = web.current();
                let header = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
                if !web.authorize(&config, header).await {
                    return Ok(unauthorized(req.method()));
                }
            }
            Ok::<_, Infallible>(handle(&app, req).await)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(io), service);
    watcher.watch(conn).await
}

/// The TLS handshake, bounded by [`TLS_HANDSHAKE_TIMEOUT`]. A client that speaks plain HTTP
/// instead gets a 400 that says so, then the connection is closed.
async fn tls_handshake(
    mut stream: TcpStream,
    acceptor: TlsAcceptor,
) -> Result<TlsStream<TcpStream>, String> {
    let handshake = async move {
        let mut first = [0u8; 1];
        if stream.peek(&mut first).await.map_err(|e| e.to_string())? == 0 {
            return Err("closed before the TLS handshake".to_string());
        }
        // 0x16 starts a TLS handshake record; a letter starts an HTTP method.
        if first[0].is_ascii_alphabetic() {
            let _ = stream.write_all(PLAIN_HTTP_ON_TLS_PORT).await;
            let _ = stream.shutdown().await;
            // Read what the client is still sending, so closing does not reset the connection
            // before it has read the answer.
            let mut sink = [0u8; 4096];
            let _ = tokio::time::timeout(PLAIN_HTTP_DRAIN, async {
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
            return Err("plain HTTP request on the TLS port".to_string());
        }
        acceptor.accept(stream).await.map_err(|e| e.to_string())
    };
    tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// 401 with the Basic challenge, for every path when users are configured.
fn unauthorized(method: &Method) -> Resp {
    let mut r = text(StatusCode::UNAUTHORIZED, "401 Unauthorized\n");
    let challenge = format!("Basic realm=\"{}\", charset=\"UTF-8\"", web_config::REALM);
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if method == Method::HEAD {
        *r.body_mut() = Stream::from(Bytes::new());
    }
    r
}

async fn handle(app: &App, req: Request<Incoming>) -> Resp {
    let path = req.uri().path();
    let allowed = match path {
        "/" | "/metrics" | "/-/healthy" | "/-/ready" => "GET, HEAD",
        p if p.starts_with("/gate/") => "GET, HEAD",
        "/-/reload" => "POST",
        _ => return text(StatusCode::NOT_FOUND, "404 page not found\n"),
    };
    if path == "/-/reload" {
        return reload_response(app, req.method()).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allowed));
        return r;
    }
    let mut resp = match path {
        p if p.starts_with("/gate/") => gate_response(app, p, req.uri().query()).await,
        "/metrics" => {
            let wanted = if accepts_gzip(req.headers()) {
                Encoding::Gzip
            } else {
                Encoding::Identity
            };
            let (body, encoding) = app.exposition.encoded(&app.state, wanted);
            let mut r = Response::new(body.stream());
            let headers = r.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static(metrics::CONTENT_TYPE),
            );
            headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
            if encoding == Encoding::Gzip {
                headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            r
        }
        "/-/healthy" => text(StatusCode::OK, "Healthy.\n"),
        "/-/ready" if app.state.is_ready() => text(StatusCode::OK, "Ready.\n"),
        "/-/ready" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: the first round of prechecks has not finished.\n",
        ),
        _ => {
            let mut r = Response::new(Stream::from(Bytes::from(landing_page(app))));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
    };
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if req.method() == Method::HEAD {
        *resp.body_mut() = Stream::from(Bytes::new());
    }
    resp
}

async fn reload_response(app: &App, method: &Method) -> Resp {
    if method != Method::POST {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "405 method not allowed: use POST\n",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let Some(reloader) = &app.reloader else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reload is not available: the exporter was not started from a config file (--demo?)\n",
        );
    };
    let mut r = match reloader.reload().await {
        Ok(()) => Response::new(Stream::from(Bytes::from_static(
            b"configuration reloaded\n",
        ))),
        Err(e) => {
            let mut r = Response::new(Stream::from(Bytes::from(format!(
                "failed to reload config: {e}\n"
            ))));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    };
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json(status: StatusCode, body: String) -> Resp {
    let mut r = Response::new(Stream::from(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

async fn gate_response(app: &App, path: &str, query: Option<&str>) -> Resp {
    let not_found = || {
        let body = serde_json::json!({"error": "no such cluster in the config", "ready": false});
        json(StatusCode::NOT_FOUND, body.to_string())
    };
    let Some((name, wants_fresh)) = gate::parse_request(path, query) else {
        return not_found();
    };
    if app.state.get(name).is_none() {
        return not_found();
    }
    let fresh = if wants_fresh {
        app.fresh
            .clone()
            .fresh(name, app.live.get().gate.min_fresh_interval)
            .await
    } else {
        None
    };
    let Some(status) = app.state.get(name) else {
        return not_found();
    };
    let answer = gate::evaluate(&status, Instant::now(), app.live.get().gate.max_age, fresh);
    let code = if answer.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    match serde_json::to_string(&answer) {
        Ok(body) => json(code, body),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the gate answer");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode the gate answer\n",
            )
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Resp {
    let mut r = Response::new(Stream::from(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// True when `Accept-Encoding` allows gzip: `gzip` (or `x-gzip`) with a q-value above 0, or
/// else `*` with a q-value above 0. An unreadable q-value counts as 0: the text is always safe.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut gzip, mut any) = (None, None);
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let q = parts
                .filter_map(|p| p.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(q > 0.0);
            } else if coding == "*" {
                any = Some(q > 0.0);
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// Minimal HTML escaping for text we did not write (cluster names are restricted, messages are not).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn landing_page(app: &App) -> String {
    let version = env!("CARGO_PKG_VERSION");
    let now = Instant::now();
    let mut rows = String::new();
    app.state.for_each(|s| {
        let (verdict, class, code, message, age) = match &s.last {
            None => ("never checked".to_string(), "unknown", String::new(), String::new(), "-".to_string()),
            Some(l) => (
                l.outcome.verdict().replace('_', " "),
                if l.outcome.is_ready() { "ok" } else { "bad" },
                l.outcome.error_code().to_string(),
                l.outcome.message(),
                format!("{}s", now.saturating_duration_since(l.at).as_secs()),
            ),
        };
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"gate/{name}\">gate</a></td></tr>",
            esc(&s.cluster.name),
            s.cluster.region,
            s.cluster.service_group_instance_no,
            esc(&verdict),
            esc(&code),
            age,
            esc(&message),
            name = esc(&s.cluster.name),
        );
    });
    let ready = if app.state.is_ready() {
        "ready"
    } else {
        "starting: first round of prechecks not finished"
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>CDSS precheck exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.ok{{color:#1a7f37;font-weight:bold}}.bad{{color:#cf222e;font-weight:bold}}.unknown{{color:#6e7781}}</style>
</head><body>
<h1>CDSS precheck exporter</h1>
<p>Version {version}. Status: {ready}. Each cluster is prechecked every {interval}; values below are from the last periodic run.</p>
<ul>
<li><a href="metrics">Metrics</a></li>
<li><a href="-/healthy">Health</a></li>
<li><a href="-/ready">Readiness</a></li>
</ul>
<table>
<thead><tr><th>Cluster</th><th>Region</th><th>Instance no.</th><th>Verdict</th><th>Code</th><th>Age</th><th>Message</th><th>Gate</th></tr></thead>
<tbody>
{rows}</tbody></table>
</body></html>
"#,
        interval = humantime::format_duration(app.live.get().interval),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(values: &[&str]) -> bool {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        accepts_gzip(&h)
    }

    #[test]
    fn accept_encoding_negotiation() {
        // What Prometheus sends.
        assert!(gz(&["gzip"]));
        assert!(gz(&["deflate, GZIP;q=0.5"]));
        assert!(gz(&["identity", "x-gzip"]));
        assert!(gz(&["*"]));
        assert!(gz(&["br;q=1.0, gzip ; Q=0.001"]));
        assert!(!gz(&[]));
        assert!(!gz(&["identity"]));
        assert!(!gz(&["br, deflate"]));
        assert!(!gz(&["gzip;q=0"]));
        assert!(!gz(&["gzip;q=0.0, *"]), "an explicit refusal beats *");
        assert!(!gz(&["*;q=0"]));
        assert!(!gz(&["gzip;q=lots"]));
        assert!(!gz(&["gzipped"]));
    }
}
