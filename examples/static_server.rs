//! The "limit" for `/metrics` throughput: a minimal hyper server that answers every request with
//! the same bytes from memory, on the same stack as the exporter (tokio multi-thread runtime,
//! hyper HTTP/1.1, one task per connection). `scripts/bench/bench.sh` feeds it a body saved from the
//! exporter's `/metrics` and compares the two under the same wrk load.
//!
//! An example rather than a `src/bin`: it is a measuring tool, not something we ship, yet
//! `cargo clippy --all-targets` keeps it compiling. Build: `cargo build --release --example
//! static_server`. Run: `static_server ADDR FILE`.
#![forbid(unsafe_code)]

use std::convert::Infallible;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(file)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: static_server ADDR FILE");
    };
    let body = Bytes::from(std::fs::read(&file).with_context(|| format!("reading {file}"))?);
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    println!("serving {} bytes on http://{addr}", body.len());
    loop {
        let (stream, _) = listener.accept().await?;
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                let mut r = Response::new(Full::new(body.clone()));
                r.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
