//! The one route table, and what each route answers.
//!
//! [`ROUTES`] lists every path with its methods; [`handle`] matches a request against it (404
//! for other paths, 405 with `Allow` for other methods, `HEAD` wherever `GET` is) and answers
//! from the state. Nothing here calls NCP, except the gate's `?fresh=1`, which asks the runner.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT_ENCODING, ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue,
    VARY, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use tokio::time::Instant;

use super::App;
use crate::exposition::{self, Encoding};
use crate::gate;
use crate::scheduler::FreshPolicy;

type Resp = Response<Full<Bytes>>;

/// `Content-Type` of every text answer.
const TEXT: &str = "text/plain; charset=utf-8";
/// The liveness path, which `rate_limit` never refuses.
pub(super) const HEALTHY: &str = "/-/healthy";
/// `Allow` of the routes that read.
const GET: &str = "GET, HEAD";

/// What a route serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    /// `/`: the landing page.
    Landing,
    /// `/metrics`: the exposition.
    Metrics,
    /// `/-/healthy`: 200 while the process is up.
    Healthy,
    /// `/-/ready`: 503 until the first round has finished.
    Ready,
    /// `/-/reload`: reload the config file.
    Reload,
    /// `/gate/{cluster}`: go / no-go for one cluster.
    Gate,
}

/// The one route table: what `path` serves, and the methods it takes as `Allow` lists them.
fn route(path: &str) -> Option<(Endpoint, &'static str)> {
    let endpoint = match path {
        "/" => Endpoint::Landing,
        "/metrics" => Endpoint::Metrics,
        HEALTHY => Endpoint::Healthy,
        "/-/ready" => Endpoint::Ready,
        "/-/reload" => return Some((Endpoint::Reload, "POST")),
        _ if path.starts_with("/gate/") => Endpoint::Gate,
        _ => return None,
    };
    Some((endpoint, GET))
}

/// True when `allow` lists `method` (`HEAD` wherever `GET` is).
fn allows(allow: &str, method: &Method) -> bool {
    allow.split(", ").any(|m| m == method.as_str())
}

/// Answers one request.
pub(crate) async fn handle(app: &App, req: Request<Incoming>) -> Resp {
    let (path, method) = (req.uri().path(), req.method());
    let Some((endpoint, allow)) = route(path) else {
        return text(StatusCode::NOT_FOUND, "404 page not found\n");
    };
    if !allows(allow, method) {
        let body = if endpoint == Endpoint::Reload {
            "405 method not allowed: use POST\n"
        } else {
            "405 method not allowed\n"
        };
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, body);
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
        return r;
    }
    let resp = match endpoint {
        Endpoint::Reload => return reload_response(app).await,
        Endpoint::Gate => gate_response(app, path, req.uri().query()).await,
        Endpoint::Metrics => metrics_response(app, req.headers()).await,
        Endpoint::Healthy => text(StatusCode::OK, "Healthy.\n"),
        Endpoint::Ready if app.state.is_ready() => text(StatusCode::OK, "Ready.\n"),
        Endpoint::Ready => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready: the first round of prechecks has not finished.\n",
        ),
        Endpoint::Landing => {
            let page = super::landing::page(app);
            respond(StatusCode::OK, "text/html; charset=utf-8", page)
        }
    };
    uncached(resp, method)
}

/// `Cache-Control: no-store`, and no body for `HEAD`.
fn uncached(mut resp: Resp, method: &Method) -> Resp {
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if method == Method::HEAD {
        *resp.body_mut() = Full::new(Bytes::new());
    }
    resp
}

async fn metrics_response(app: &App, headers: &HeaderMap) -> Resp {
    let wanted = if accepts_gzip(headers) {
        Encoding::Gzip
    } else {
        Encoding::Identity
    };
    let (body, encoding) = match app.exposition.encode(wanted).await {
        Ok(encoded) => encoded,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the metrics");
            let body = "cannot encode the metrics\n";
            return text(StatusCode::INTERNAL_SERVER_ERROR, body);
        }
    };
    let mut r = respond(StatusCode::OK, exposition::CONTENT_TYPE, body);
    let headers = r.headers_mut();
    headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    if encoding == Encoding::Gzip {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

/// 401 with the Basic challenge, for every path when users are configured.
pub(super) fn unauthorized(method: &Method) -> Resp {
    let mut r = text(StatusCode::UNAUTHORIZED, "401 Unauthorized\n");
    let challenge = format!("Basic realm=\"{}\", charset=\"UTF-8\"", crate::web::REALM);
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    uncached(r, method)
}

/// 429 when `rate_limit` has no token left (what exporter-toolkit answers).
pub(super) fn too_many_requests(method: &Method) -> Resp {
    uncached(
        text(StatusCode::TOO_MANY_REQUESTS, "429 Too Many Requests\n"),
        method,
    )
}

async fn reload_response(app: &App) -> Resp {
    let Some(reloader) = &app.reloader else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reload is not available: the exporter was not started from a config file (--demo?)\n",
        );
    };
    match reloader.reload().await {
        Ok(()) => text(StatusCode::OK, "configuration reloaded\n"),
        Err(e) => {
            let body = format!("failed to reload config: {e}\n");
            respond(StatusCode::INTERNAL_SERVER_ERROR, TEXT, body)
        }
    }
}

async fn gate_response(app: &App, path: &str, query: Option<&str>) -> Resp {
    let not_found = || {
        let body = serde_json::json!({"error": "no such cluster in the config", "ready": false});
        respond(StatusCode::NOT_FOUND, JSON, body.to_string())
    };
    // Only clusters in the config, before anything is spent on a fresh precheck.
    let Some((name, wants_fresh)) = gate::parse_request(path, query) else {
        return not_found();
    };
    if app.state.get(name).is_none() {
        return not_found();
    }
    let gate = crate::lock::read(&app.live).gate;
    let policy = FreshPolicy {
        min_interval: gate.min_fresh_interval,
        budget: gate.fresh_budget,
    };
    let fresh = match wants_fresh {
        true => app.fresh.clone().fresh(name, policy).await,
        false => None,
    };
    let Some(status) = app.state.get(name) else {
        return not_found();
    };
    let answer = gate::evaluate(&status, Instant::now(), gate.max_age, fresh);
    let code = match answer.ready {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    match serde_json::to_string(&answer) {
        Ok(body) => respond(code, JSON, body),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode the gate answer");
            let body = "cannot encode the gate answer\n";
            text(StatusCode::INTERNAL_SERVER_ERROR, body)
        }
    }
}

/// `Content-Type` of the gate's answers.
const JSON: &str = "application/json";

/// An answer of `status` with `body` of `content_type`.
fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn text(status: StatusCode, body: &'static str) -> Resp {
    respond(status, TEXT, body)
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
    fn one_table_for_paths_and_methods() {
        assert_eq!(route("/").map(|r| r.0), Some(Endpoint::Landing));
        assert_eq!(route("/gate/orders").map(|r| r.0), Some(Endpoint::Gate));
        assert!(route("/metricsx").is_none());
        assert!(route("").is_none());
        let (_, reload) = route("/-/reload").unwrap();
        assert!(allows(reload, &Method::POST) && !allows(reload, &Method::GET));
        let (_, metrics) = route("/metrics").unwrap();
        assert!(allows(metrics, &Method::HEAD) && !allows(metrics, &Method::POST));
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
