//! Criterion benchmarks of the per-precheck and per-scrape hot paths: signing, classifying an
//! answer, recording it, and a scrape (the exposition, and its gzip) at 10, 1,000 and 10,000
//! clusters. Whole-process figures (RSS, CPU per precheck, `/metrics` under wrk) are in
//! `scripts/bench/bench.sh`; results of both are in BENCHMARKS.md.
//!
//! CI runs this in a quick mode (`cargo bench --bench hot_paths -- --quick`) only to prove it
//! still builds and runs; its timings there mean nothing.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cdss_precheck_exporter::config::Config;
use cdss_precheck_exporter::exposition::{BuildInfo, Encoding, Exposition, Metrics};
use cdss_precheck_exporter::ncp::client::CallMeta;
use cdss_precheck_exporter::ncp::precheck::{Precheck, classify};
use cdss_precheck_exporter::ncp::sign;
use cdss_precheck_exporter::outcome::Outcome;
use cdss_precheck_exporter::state::State;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::time::Instant;

const PATH: &str = "/api/v1/cluster/rollingRestartPreCheck";

/// The binary's allocator, so a scrape here costs what it costs there.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn signing(c: &mut Criterion) {
    c.bench_function("sign/precheck", |b| {
        b.iter(|| {
            sign::sign(
                black_box("demo-secret-key-for-the-simulated-gateway"),
                "POST",
                black_box(PATH),
                black_box(1_754_000_000_123),
                "DEMO-ACCESS-KEY",
            )
        })
    });
}

fn decoding(c: &mut Criterion) {
    let answers: [(&str, u16, &[u8]); 4] = [
        (
            "ready",
            200,
            br#"{"code":0,"message":"SUCCESS","result":true,"requestId":"ec3559a4-00c8-42c7-ac87-6a60ba4df08e"}"#,
        ),
        (
            "api_error",
            400,
            br#"{"code":3,"message":"Invalid Service Group Instance No","result":null,"requestId":"ec3559a4-00c8-42c7-ac87-6a60ba4df08e"}"#,
        ),
        (
            "gateway_error",
            401,
            br#"{"error":{"errorCode":"200","message":"Authentication Failed","details":"Invalid signature."}}"#,
        ),
        (
            "html",
            500,
            b"<html><head><title>500 Internal Server Error</title></head><body><h1>500 Internal Server Error</h1></body></html>",
        ),
    ];
    let mut g = c.benchmark_group("classify");
    for (name, status, body) in answers {
        g.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| classify(black_box(status), None, black_box(body)))
        });
    }
    g.finish();
}

/// A state of `n` clusters as `scripts/bench/gen-config.sh` names them, every one checked once, a tenth
/// of them with a failure, so every family has samples.
fn checked_state(n: usize) -> State {
    let regions = ["KR", "SGN", "JPN", "GOV", "FIN"];
    let mut yaml = String::from("clusters:\n");
    for i in 1..=n {
        yaml.push_str(&format!(
            "  - {{name: cluster-{i:05}, region: {}, service_group_instance_no: {i}}}\n",
            regions[i % 5]
        ));
    }
    let config = Config::parse(&yaml, Path::new("bench.yaml")).expect("generated config is valid");
    let state = State::new(&config.clusters);
    for (i, cluster) in config.clusters.iter().enumerate() {
        let outcome = if i % 10 == 9 {
            Outcome::Timeout {
                after: Duration::from_secs(10),
            }
        } else {
            Outcome::Ready
        };
        let p = precheck(outcome, i);
        let wall = UNIX_EPOCH + Duration::from_micros(1_754_000_000_000_000 + 6_000 * i as u64);
        state.record(&cluster.name, &p, Instant::now(), wall);
    }
    state
}

fn precheck(outcome: Outcome, i: usize) -> Precheck {
    Precheck {
        outcome,
        meta: CallMeta {
            latency: Duration::from_micros(1_000 + 37 * i as u64),
            request_id: Some(format!("sim-{i:08x}-0000-4000-8000-000000000000")),
            retry_after: None,
            clock_skew: None,
            ..CallMeta::default()
        },
    }
}

/// A scrape that renders: the registry gathers (our collector reads the state, the process
/// collector reads /proc), the crate's `TextEncoder` writes the text, and gzip when asked. A new
/// registry per iteration, so no scrape reuses the text of the one before.
fn scraping(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let mut g = c.benchmark_group("scrape");
    let mut scrape = |name: &str, n: usize, encoding: Encoding| {
        let state = Arc::new(checked_state(n));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter_batched(
                || exposition(state.clone()),
                |e| {
                    rt.block_on(async move { e.encode(encoding).await.map(|(body, _)| body.len()) })
                },
                BatchSize::SmallInput,
            )
        });
    };
    for n in [10, 1_000, 10_000] {
        scrape("plain", n, Encoding::Identity);
    }
    scrape("gzip", 1_000, Encoding::Gzip);
    g.finish();
}

fn exposition(state: Arc<State>) -> Exposition {
    let metrics = Metrics::new(state, BuildInfo::current());
    Exposition::new(metrics).expect("the catalogue registers")
}

fn recording(c: &mut Criterion) {
    let state = checked_state(1_000);
    let p = precheck(Outcome::Ready, 7);
    c.bench_function("state/record", |b| {
        b.iter(|| {
            state.record(
                black_box("cluster-00500"),
                &p,
                Instant::now(),
                SystemTime::now(),
            )
        })
    });
}

criterion_group!(benches, signing, decoding, recording, scraping);
criterion_main!(benches);
