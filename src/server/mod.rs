//! The exporter's HTTP endpoints (hyper, HTTP/1.1): the accept loop, connection limits and
//! timeouts, TLS and basic auth in front of the routes. [`routes`] is the one table of paths and
//! methods; `tls` tells TLS from plain HTTP; [`landing`] is the landing page.
//!
//! - `GET /metrics`: the exposition, from the last results; never calls NCP. Gzipped when the
//!   scraper sends `Accept-Encoding: gzip` (Prometheus does).
//! - `GET /`: landing page: version, each cluster's state and age, links.
//! - `GET /-/healthy`: 200 while the process is up.
//! - `GET /-/ready`: 503 until the first round of prechecks has finished, then 200.
//! - `GET /gate/{cluster}`: 200 if the cluster's last precheck was ready and younger than
//!   `gate.max_age`, else 503; JSON either way; 404 for a cluster the exporter does not
//!   precheck (configured or discovered).
//!   `?fresh=1` asks the scheduler's runner for a precheck now (shared, rate-limited).
//!
//! - `POST /-/reload`: reload the config file (500 with the error if it is bad; nothing changes).
//!
//! `HEAD` is accepted wherever `GET` is. Other methods get 405 with `Allow`; other paths 404.
//! Connections are capped and slow header senders are cut off. This module reads `state`; it never
//! writes it and never talks to NCP itself: the gate's fresh path goes through the runner, and
//! only for clusters in the config.
//!
//! With `--web.config.file` ([`crate::web`]): the TLS handshake runs per connection with a
//! timeout (a plain-HTTP request on the TLS port gets a 400 and the connection is closed); a
//! `rate_limit` answers 429 when its bucket is empty (every path but `/-/healthy`); when users
//! are configured every path, `/-/healthy` included, needs Basic auth (401 otherwise), as with
//! exporter-toolkit; and the configured `headers` go on every answer, errors included. HTTP/1.1
//! only, whatever `http2` says (see the README).

mod landing;
mod routes;
mod tls;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::exposition::Exposition;
use crate::reload::{LiveSettings, Reloader};
use crate::scheduler::FreshPrecheck;
use crate::state::State;
use crate::web::WebConfigWatch;

/// Connections served at once; more wait in the accept queue.
pub(crate) const MAX_CONNECTIONS: usize = 512;
/// A client must send its request headers within this time.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head we buffer (hyper requires at least 8 KiB).
pub(crate) const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How long open connections get to finish at shutdown.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// A TLS client must finish its handshake within this time.
pub(crate) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// What the endpoints read.
#[derive(Debug)]
pub(crate) struct App {
    /// Latest results.
    pub state: Arc<State>,
    /// The registry `/metrics` serves, read at every scrape.
    pub exposition: Exposition,
    /// Interval and gate settings; a reload may change them.
    pub live: LiveSettings,
    /// Runs the gate's fresh prechecks (the scheduler's runner).
    pub fresh: Arc<dyn FreshPrecheck>,
    /// Reloads the config file; `None` when there is none (e.g. `--demo`).
    pub reloader: Option<Arc<Reloader>>,
}

/// Serves until `shutdown` turns true, then gives open connections [`SHUTDOWN_GRACE`] to finish.
/// With `web` (`--web.config.file`): TLS and basic auth, as the web config currently says.
pub(crate) async fn serve(
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
                        h = tls::handshake(stream, acceptor) => h,
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

/// HTTP/1.1 on an accepted (and maybe TLS) connection; with `web`, its rate limit and Basic auth
/// in front of [`routes::handle`] and its headers on every answer.
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
            let Some(web) = web else {
                return Ok::<_, Infallible>(routes::handle(&app, req).await);
            };
            // Per request, so a changed password or limit applies to kept-alive connections too.
            let config = web.current();
            let header = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
            // As in exporter-toolkit the limit comes before auth, but liveness is never limited.
            let mut resp = if req.uri().path() != routes::HEALTHY && config.rate_limited() {
                routes::too_many_requests(req.method())
            } else if !web.authorize(&config, header).await {
                routes::unauthorized(req.method())
            } else {
                routes::handle(&app, req).await
            };
            for (name, value) in config.headers() {
                resp.headers_mut().insert(name, value.clone());
            }
            Ok(resp)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(io), service);
    watcher.watch(conn).await
}
