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

/// What a route serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
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

/// One entry of the route table.
#[derive(Debug)]
pub(crate) struct Route {
    /// The path, or its prefix when `prefix` is set.
    pub path: &'static str,
    /// True when `path` is a prefix (`/gate/` + the cluster name).
    pub prefix: bool,
    /// The methods it takes, as the `Allow` header lists them.
    pub allow: &'static str,
    /// What it serves.
    pub endpoint: Endpoint,
}

/// Every path the exporter serves.
pub(crate) const ROUTES: [Route; 6] = [
    Route {
        path: "/",
        prefix: false,
        allow: "GET, HEAD",
        endpoint: Endpoint::Landing,
    },
    Route {
        path: "/metrics",
        prefix: false,
        allow: "GET, HEAD",
        endpoint: Endpoint::Metrics,
    },
    Route {
        path: "/-/healthy",
        prefix: false,
        allow: "GET, HEAD",
        endpoint: Endpoint::Healthy,
    },
    Route {
        path: "/-/ready",
        prefix: false,
        allow: "GET, HEAD",
        endpoint: Endpoint::Ready,
    },
    Route {
        path: "/-/reload",
        prefix: false,
        allow: "POST",
        endpoint: Endpoint::Reload,
    },
    Route {
        path: "/gate/",
        prefix: true,
        allow: "GET, HEAD",
        endpoint: Endpoint::Gate,
    },
];

/// The route for `path`, if any.
pub(crate) fn route(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| {
        if r.prefix {
            path.starts_with(r.path)
        } else {
            path == r.path
        }
    })
}

impl Route {
    /// True when the route takes `method` (`HEAD` wherever `GET` is).
    pub(crate) fn allows(&self, method: &Method) -> bool {
        self.allow.split(", ").any(|m| m == method.as_str())
    }
}

/// Answers one request.
pub(crate) async fn handle(app: &App, req: Request<Incoming>) -> Resp {
    let path = req.uri().path();
    let Some(route) = route(path) else {
        return text(StatusCode::NOT_FOUND, "404 page not found\n");
    };
    let method = req.method();
    if !route.allows(method) {
        let body = if route.endpoint == Endpoint::Reload {
            "405 method not allowed: use POST\n"
        } else {
            "405 method not allowed\n"
        };
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, body);
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(route.allow));
        return r;
    }
    let mut resp = match route.endpoint {
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
            let mut r = Response::new(Full::new(Bytes::from(super::landing::page(app))));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
    };
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
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode the metrics\n",
            );
        }
    };
    let mut r = Response::new(Full::new(body));
    let headers = r.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(exposition::CONTENT_TYPE),
    );
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
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if method == Method::HEAD {
        *r.body_mut() = Full::new(Bytes::new());
    }
    r
}

async fn reload_response(app: &App) -> Resp {
    let Some(reloader) = &app.reloader else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "reload is not available: the exporter was not started from a config file (--demo?)\n",
        );
    };
    let mut r = match reloader.reload().await {
        Ok(()) => Response::new(Full::new(Bytes::from_static(b"configuration reloaded\n"))),
        Err(e) => {
            let mut r = Response::new(Full::new(Bytes::from(format!(
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
    let mut r = Response::new(Full::new(Bytes::from(body)));
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
    let gate = app.live.get().gate;
    let fresh = if wants_fresh {
        app.fresh
            .clone()
            .fresh(
                name,
                FreshPolicy {
                    min_interval: gate.min_fresh_interval,
                    budget: gate.fresh_budget,
                },
            )
            .await
    } else {
        None
    };
    let Some(status) = app.state.get(name) else {
        return not_found();
    };
    let answer = gate::evaluate(&status, Instant::now(), gate.max_age, fresh);
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
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
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
        assert_eq!(route("/").map(|r| r.endpoint), Some(Endpoint::Landing));
        assert_eq!(
            route("/gate/orders").map(|r| r.endpoint),
            Some(Endpoint::Gate)
        );
        assert!(route("/metricsx").is_none());
        assert!(route("").is_none());
        let reload = route("/-/reload").unwrap();
        assert!(reload.allows(&Method::POST) && !reload.allows(&Method::GET));
        let metrics = route("/metrics").unwrap();
        assert!(metrics.allows(&Method::HEAD) && !metrics.allows(&Method::POST));
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
