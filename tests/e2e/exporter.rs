//! End-to-end: the exporter's library entry point against the simulated gateway, over loopback,
//! asserting on what a user sees: `/metrics` lines and HTTP statuses.

use std::time::{Duration, Instant};

use crate::support::{Harness, SECRET_KEY, Spec, value, value_with};
use cdss_precheck_exporter::sim::Behaviour;

const FAST: &str = "interval: 2s\ntimeout: 1s\nconcurrency: 4";

#[tokio::test]
async fn every_behaviour_maps_to_ok_code_and_reason() {
    let clusters: Vec<Spec> = vec![
        ("ready", "KR", 100, Some(Behaviour::Ready)),
        ("not-ready", "SGN", 101, Some(Behaviour::NotReady)),
        ("unknown-200", "JPN", 9_000_002, None),
        ("unknown-400", "KR", 9_000_003, None),
        ("html-500", "KR", 102, Some(Behaviour::Http500Html)),
        ("malformed", "GOV", 103, Some(Behaviour::MalformedJson)),
        ("dropped", "FIN", 104, Some(Behaviour::DropConnection)),
        (
            "oversized",
            "KR",
            105,
            Some(Behaviour::Oversized(2 * 1024 * 1024)),
        ),
        (
            "slow",
            "KR",
            106,
            Some(Behaviour::Slow(
                Duration::from_secs(5),
                Box::new(Behaviour::Ready),
            )),
        ),
        (
            "rate-limited",
            "SGN",
            107,
            Some(Behaviour::RateLimited(Some(60))),
        ),
    ];
    let h = Harness::start(FAST, &clusters).await;
    h.wait_ready(Duration::from_secs(10)).await;
    let m = h.metrics().await;

    let expect = |name: &str, ok: f64, code: f64, reason: Option<&str>| {
        assert_eq!(
            value(&m, "cdss_precheck_ok", name),
            Some(ok),
            "{name} ok\n{m}"
        );
        assert_eq!(
            value(&m, "cdss_precheck_last_error_code", name),
            Some(code),
            "{name} code\n{m}"
        );
        assert_eq!(
            value(&m, "cdss_precheck_runs_total", name).map(|v| v >= 1.0),
            Some(true),
            "{name} runs"
        );
        if let Some(reason) = reason {
            let labels = format!("cluster=\"{name}\",region=");
            let line = m.lines().find(|l| {
                l.starts_with("cdss_precheck_failures_total{")
                    && l.contains(&labels)
                    && l.contains(&format!("reason=\"{reason}\""))
            });
            assert!(
                line.is_some(),
                "{name}: no failures_total with reason {reason}\n{m}"
            );
        }
    };
    expect("ready", 1.0, 0.0, None);
    expect("not-ready", 0.0, 0.0, None);
    expect("unknown-200", 0.0, 3.0, Some("api_error"));
    expect("unknown-400", 0.0, 3.0, Some("api_error"));
    expect("html-500", 0.0, -1.0, Some("http_error"));
    expect("malformed", 0.0, -1.0, Some("invalid_response"));
    expect("dropped", 0.0, -1.0, Some("connection_error"));
    expect("oversized", 0.0, -1.0, Some("body_too_large"));
    expect("slow", 0.0, -1.0, Some("timeout"));
    expect("rate-limited", 0.0, 420.0, Some("rate_limited"));

    // Labels carry the configured region, upper-case.
    assert!(
        m.contains("cdss_precheck_ok{cluster=\"not-ready\",region=\"SGN\"} 0"),
        "{m}"
    );
    // A ready and a not-ready answer are successes of the call; the others are not.
    assert!(
        value(
            &m,
            "cdss_precheck_last_success_timestamp_seconds",
            "not-ready"
        )
        .is_some()
    );
    assert!(
        value(
            &m,
            "cdss_precheck_last_success_timestamp_seconds",
            "html-500"
        )
        .is_none()
    );
    // The timed-out precheck reports the time it took: about the timeout, not the 5 s delay.
    let slow = value(&m, "cdss_precheck_duration_seconds", "slow").unwrap();
    assert!((0.9..3.0).contains(&slow), "slow duration {slow}");
    assert!(value_with(&m, "cdss_exporter_build_info", "version=\"").is_some());
    assert!(!m.contains(SECRET_KEY));
    h.stop().await;
}

#[tokio::test]
async fn wrong_secret_is_auth_error_code_200() {
    let clusters: Vec<Spec> = vec![("orders", "KR", 3432149, Some(Behaviour::Ready))];
    let h = Harness::start_with_secret(FAST, &clusters, "not-the-right-secret").await;
    h.wait_ready(Duration::from_secs(5)).await;
    let m = h.metrics().await;
    assert_eq!(value(&m, "cdss_precheck_ok", "orders"), Some(0.0));
    assert_eq!(
        value(&m, "cdss_precheck_last_error_code", "orders"),
        Some(200.0)
    );
    assert!(m.contains("reason=\"auth_error\""), "{m}");
    assert!(h.sim.auth_failures() >= 1);
    assert_eq!(
        h.sim.calls(3432149),
        0,
        "an unauthenticated call never reaches CDSS"
    );
    h.stop().await;
}

#[tokio::test]
async fn rate_limited_cluster_backs_off_while_others_keep_their_rhythm() {
    let clusters: Vec<Spec> = vec![
        ("busy", "KR", 1, Some(Behaviour::RateLimited(Some(60)))),
        ("calm", "KR", 2, Some(Behaviour::Ready)),
    ];
    let h = Harness::start("interval: 1s\ntimeout: 500ms", &clusters).await;
    h.wait_ready(Duration::from_secs(5)).await;
    // Wait for the calm cluster's rhythm (an event: four of its calls, at 1 s each), with room
    // for a loaded machine but far inside busy's 60 s Retry-After.
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.sim.calls(2) < 4 {
        assert!(
            Instant::now() < deadline,
            "the calm cluster was checked {} times",
            h.sim.calls(2)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        h.sim.calls(1),
        1,
        "Retry-After: 60 must hold the next call back"
    );
    let m = h.metrics().await;
    assert_eq!(
        value(&m, "cdss_precheck_last_error_code", "busy"),
        Some(420.0)
    );
    h.stop().await;
}

#[tokio::test]
async fn recovery_flips_ok_back_to_one() {
    let clusters: Vec<Spec> = vec![("flappy", "KR", 7, Some(Behaviour::Http500Html))];
    let h = Harness::start("interval: 1s\ntimeout: 500ms", &clusters).await;
    h.wait_ready(Duration::from_secs(5)).await;
    assert_eq!(
        value(&h.metrics().await, "cdss_precheck_ok", "flappy"),
        Some(0.0)
    );
    h.sim.set_behaviour(7, Behaviour::Ready);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = h.metrics().await;
        if value(&m, "cdss_precheck_ok", "flappy") == Some(1.0) {
            assert_eq!(
                value(&m, "cdss_precheck_last_error_code", "flappy"),
                Some(0.0)
            );
            // The earlier failure stays counted.
            assert!(m.contains("reason=\"http_error\""));
            break;
        }
        assert!(Instant::now() < deadline, "never recovered:\n{m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.stop().await;
}

#[tokio::test]
async fn metrics_answer_at_once_while_a_cluster_hangs_and_ready_waits_for_it() {
    let clusters: Vec<Spec> = vec![
        (
            "hangs",
            "KR",
            1,
            Some(Behaviour::Slow(
                Duration::from_secs(60),
                Box::new(Behaviour::Ready),
            )),
        ),
        ("fine", "KR", 2, Some(Behaviour::Ready)),
    ];
    // "hangs" stays in flight for 20 s: long enough for the checks below on a loaded machine.
    let h = Harness::start("interval: 60s\ntimeout: 20s", &clusters).await;
    // Let "fine" finish while "hangs" is still in flight.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !value(&h.metrics().await, "cdss_precheck_runs_total", "fine").is_some_and(|v| v >= 1.0) {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let m = h.metrics().await;
    let took = started.elapsed();
    // What shows /metrics did not wait is "hangs" still at runs 0 below; the bound only keeps
    // it from waiting on anything slow, with room for a loaded machine.
    assert!(
        took < Duration::from_secs(2),
        "/metrics took {took:?} while a precheck hangs"
    );
    assert_eq!(value(&m, "cdss_precheck_ok", "fine"), Some(1.0));
    // Never checked yet: ok 0, runs 0, and no error code (it has none yet).
    assert_eq!(value(&m, "cdss_precheck_ok", "hangs"), Some(0.0));
    assert_eq!(value(&m, "cdss_precheck_runs_total", "hangs"), Some(0.0));
    assert_eq!(value(&m, "cdss_precheck_last_error_code", "hangs"), None);
    assert!(m.contains("cdss_exporter_first_round_complete 0"), "{m}");
    assert_eq!(h.get("/-/ready").await.0, 503);
    assert_eq!(h.get("/-/healthy").await.0, 200);
    // After the timeout the first round is complete.
    h.wait_ready(Duration::from_secs(40)).await;
    let m = h.metrics().await;
    assert_eq!(
        value(&m, "cdss_precheck_last_error_code", "hangs"),
        Some(-1.0)
    );
    assert!(m.contains("cdss_exporter_first_round_complete 1"));
    h.stop().await;
}

#[tokio::test]
async fn endpoints_statuses_and_landing_page() {
    let clusters: Vec<Spec> = vec![
        ("orders", "KR", 1, Some(Behaviour::Ready)),
        ("legacy", "SGN", 3, None),
    ];
    let h = Harness::start(FAST, &clusters).await;
    h.wait_ready(Duration::from_secs(5)).await;
    let (status, page) = h.get("/").await;
    assert_eq!(status, 200);
    for needle in [
        "orders",
        "legacy",
        "href=\"metrics\"",
        "href=\"-/healthy\"",
        "href=\"-/ready\"",
        env!("CARGO_PKG_VERSION"),
        "Invalid Service Group Instance No",
    ] {
        assert!(page.contains(needle), "landing page lacks {needle:?}");
    }
    assert!(!page.contains(SECRET_KEY));
    assert_eq!(h.get("/nope").await.0, 404);
    assert_eq!(h.get("/metrics/extra").await.0, 404);
    let r = h.http.post(h.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers().get("allow").unwrap(), "GET, HEAD");
    let r = h.http.head(h.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = h.http.get(h.url("/metrics")).send().await.unwrap();
    assert_eq!(
        r.headers().get("content-type").unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    h.stop().await;
}

#[tokio::test]
async fn metrics_are_gzipped_when_the_scraper_asks() {
    use std::io::Read as _;
    let clusters: Vec<Spec> = vec![
        ("orders", "KR", 1, Some(Behaviour::Ready)),
        ("legacy", "SGN", 3, None),
    ];
    // A long interval: after the first round nothing changes, so both scrapes see one state.
    let h = Harness::start("interval: 1h\ntimeout: 2s", &clusters).await;
    h.wait_ready(Duration::from_secs(5)).await;

    let r = h
        .http
        .get(h.url("/metrics"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers().get("content-encoding").unwrap(), "gzip");
    assert_eq!(r.headers().get("vary").unwrap(), "Accept-Encoding");
    assert_eq!(
        r.headers().get("content-type").unwrap(),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let compressed = r.bytes().await.unwrap();
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut unzipped)
        .expect("a valid gzip stream");

    let r = h.http.get(h.url("/metrics")).send().await.unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(r.headers().get("vary").unwrap(), "Accept-Encoding");
    let plain = r.text().await.unwrap();
    // The process collector's values (CPU, memory, fds) move between two scrapes; nothing else.
    assert_eq!(without_process(&unzipped), without_process(&plain));
    assert_eq!(value(&plain, "cdss_precheck_ok", "orders"), Some(1.0));
    #[cfg(target_os = "linux")]
    for family in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            plain.contains(&format!("\n{family} ")),
            "{family} missing:\n{plain}"
        );
    }

    // A scraper that refuses gzip gets the text.
    let r = h
        .http
        .get(h.url("/metrics"))
        .header("accept-encoding", "gzip;q=0, identity")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    assert_eq!(
        without_process(&r.text().await.unwrap()),
        without_process(&plain)
    );
    h.stop().await;
}

/// An exposition without the process collector's families (`process_*`).
fn without_process(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("process_") && !l.starts_with("# HELP process_"))
        .filter(|l| !l.starts_with("# TYPE process_"))
        .map(|l| format!("{l}\n"))
        .collect()
}
