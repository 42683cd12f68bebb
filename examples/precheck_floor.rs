//! The "limit" for CPU per precheck: the least a tokio + hyper program can spend to send the
//! exporter's requests on the exporter's schedule, with nothing else. `scripts/bench/bench.sh`
//! runs it against the same jittered gateway as the exporter and divides its CPU time by its
//! answers, as it does for the exporter, so the exporter's figure can be read against what this
//! machine charges for one request and one answer over loopback.
//!
//! What it does: one single-threaded tokio runtime (as the exporter's collector thread);
//! `CONCURRENCY` HTTP/1.1 keep-alive connections, each owned by one task that sends its queue's
//! requests one after the other; every 500 ms (the exporter's slot quantum) the clusters whose
//! slots fall in that half second are queued, round robin. Each request is the exporter's: `POST
//! /api/v1/cluster/rollingRestartPreCheck` with the cluster's number, signed (signature v2) at
//! send time. The answer's body is read to the end; nothing is decoded, recorded or served. Every
//! second it prints the number of answers so far, one number per line.
//!
//! An example rather than a `src/bin`: a measuring tool, not shipped, kept compiling by `cargo
//! clippy --all-targets`. Build: `cargo build --release --example precheck_floor`. Run:
//! `precheck_floor ADDR CLUSTERS INTERVAL_SECONDS CONCURRENCY` with `NCLOUD_ACCESS_KEY` and
//! `NCLOUD_SECRET_KEY` set to the gateway's keys.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use cdss_precheck_exporter::ncp::sign;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const PATH: &str = "/api/v1/cluster/rollingRestartPreCheck";
const QUANTUM: Duration = Duration::from_millis(500);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, clusters, interval, concurrency] = args.as_slice() else {
        anyhow::bail!("usage: precheck_floor ADDR CLUSTERS INTERVAL_SECONDS CONCURRENCY");
    };
    let clusters: u64 = clusters.parse().context("CLUSTERS")?;
    let interval: u64 = interval.parse().context("INTERVAL_SECONDS")?;
    let concurrency: usize = concurrency.parse().context("CONCURRENCY")?;
    anyhow::ensure!(
        clusters > 0 && interval > 0 && concurrency > 0,
        "all must be > 0"
    );
    let keys = Arc::new((
        std::env::var("NCLOUD_ACCESS_KEY").context("NCLOUD_ACCESS_KEY")?,
        std::env::var("NCLOUD_SECRET_KEY").context("NCLOUD_SECRET_KEY")?,
    ));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(addr.clone(), clusters, interval, concurrency, keys))
}

async fn run(
    addr: String,
    clusters: u64,
    interval: u64,
    concurrency: usize,
    keys: Arc<(String, String)>,
) -> anyhow::Result<()> {
    let answers = Arc::new(AtomicU64::new(0));
    let mut queues = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (tx, rx) = mpsc::unbounded_channel::<u64>();
        let stream = TcpStream::connect(&addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let (host, keys, answers) = (addr.clone(), keys.clone(), answers.clone());
        tokio::spawn(async move {
            if let Err(e) = worker(sender, rx, host, keys, answers).await {
                eprintln!("precheck_floor: {e:#}");
                std::process::exit(1);
            }
        });
        queues.push(tx);
    }
    let counter = answers.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            println!("{}", counter.load(Ordering::Relaxed));
        }
    });
    // Cluster i's slot is at (i · interval / clusters) rounded down to the quantum, as the
    // exporter spreads its phases; each tick queues the clusters of its half second.
    let ticks_per_interval = (interval * 1000 / QUANTUM.as_millis() as u64).max(1);
    let mut tick = tokio::time::interval(QUANTUM);
    let mut next = 0usize;
    for t in 0u64.. {
        tick.tick().await;
        let slot = t % ticks_per_interval;
        for i in (0..clusters).filter(|i| i * ticks_per_interval / clusters == slot) {
            queues[next % concurrency]
                .send(i + 1)
                .context("a connection ended")?;
            next += 1;
        }
    }
    Ok(())
}

async fn worker(
    mut sender: http1::SendRequest<Full<Bytes>>,
    mut queue: mpsc::UnboundedReceiver<u64>,
    host: String,
    keys: Arc<(String, String)>,
    answers: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    while let Some(number) = queue.recv().await {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let (access, secret) = (&keys.0, &keys.1);
        let signature = sign::sign(secret, "POST", PATH, timestamp, access);
        let request = Request::builder()
            .method(Method::POST)
            .uri(PATH)
            .header("host", &host)
            .header("content-type", "application/json")
            .header(sign::HEADER_TIMESTAMP, timestamp.to_string())
            .header(sign::HEADER_ACCESS_KEY, access.as_str())
            .header(sign::HEADER_SIGNATURE, signature)
            .body(Full::new(Bytes::from(format!(
                "{{\"serviceGroupInstanceNo\":{number}}}"
            ))))?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        response.into_body().collect().await?;
        anyhow::ensure!(status.is_success(), "the gateway answered {status}");
        answers.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
