//! The fault matrix: every way NCP, a proxy or the network can misbehave. For each, the exporter
//! stays up, `/metrics` keeps answering, the cluster shows ok 0 with the documented code and
//! reason, and the next healthy answer recovers it. Plus clock skew.

use std::io::Write as _;
use std::time::Duration;

use crate::support::{Harness, Spec, metrics_until, value, value_plain};
use cdss_precheck_exporter::sim::faults::{FaultServer, TcpFault};
use cdss_precheck_exporter::sim::{Behaviour, RawResponse};

/// The body cap the fault matrix runs with (`max_response_bytes`).
const BODY_CAP: usize = 65536;

/// 16 MiB of zeros, gzipped to about 16 kB: the compressed body is a quarter of the body cap
/// (so it is not cut off as too large), the inflated one 256 times it. The exporter does not
/// inflate, so it reads gzip bytes where JSON should be: an invalid response.
fn gzip_bomb() -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..16 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() * 3 < BODY_CAP, "{} bytes", bomb.len());
    bomb
}

fn gateway_json(code: &str, message: &str) -> Vec<u8> {
    format!(r#"{{"error":{{"errorCode":"{code}","message":"{message}"}}}}"#).into_bytes()
}

/// (cluster name, behaviour, expected code, expected reason).
fn http_faults() -> Vec<(&'static str, Behaviour, i64, &'static str)> {
    let raw = |status, ct: &str, body: Vec<u8>| Behaviour::Raw(RawResponse::new(status, ct, body));
    let html = |status| {
        raw(
            status,
            "text/html",
            b"<html><body>oops</body></html>".to_vec(),
        )
    };
    vec![
        (
            "gzip-bomb",
            Behaviour::Raw(
                RawResponse::new(200, "application/json", gzip_bomb())
                    .header("content-encoding", "gzip"),
            ),
            -1,
            "invalid_response",
        ),
        (
            "wrong-content-type",
            raw(
                200,
                "text/html",
                br#"{"code":0,"message":"SUCCESS","result":true}"#.to_vec(),
            ),
            -1,
            "invalid_response",
        ),
        (
            // README: only a 2xx with code 0 and result true is ready; a success envelope on an
            // error status is contradictory and not trusted.
            "success-envelope-on-503",
            raw(
                503,
                "application/json",
                br#"{"code":0,"message":"SUCCESS","result":true}"#.to_vec(),
            ),
            -1,
            "invalid_response",
        ),
        (
            "redirect-301",
            Behaviour::Raw(
                RawResponse::new(301, "text/html", b"moved".to_vec())
                    .header("location", "http://127.0.0.1:9/steal"),
            ),
            -1,
            "http_error",
        ),
        (
            "redirect-302",
            Behaviour::Raw(
                RawResponse::new(302, "text/html", b"".to_vec())
                    .header("location", "http://127.0.0.1:9/steal"),
            ),
            -1,
            "http_error",
        ),
        (
            "redirect-307",
            Behaviour::Raw(
                RawResponse::new(307, "text/html", b"".to_vec())
                    .header("location", "http://127.0.0.1:9/steal"),
            ),
            -1,
            "http_error",
        ),
        ("html-500", html(500), -1, "http_error"),
        ("html-502", html(502), -1, "http_error"),
        ("html-503", html(503), -1, "http_error"),
        ("html-504", html(504), -1, "http_error"),
        (
            "json-500",
            raw(
                500,
                "application/json",
                gateway_json("900", "Unexpected Error"),
            ),
            900,
            "gateway_error",
        ),
        (
            "forbidden-403",
            raw(403, "application/json", gateway_json("230", "Forbidden")),
            230,
            "auth_error",
        ),
        (
            "permission-denied-401",
            raw(
                401,
                "application/json",
                gateway_json("210", "Permission Denied"),
            ),
            210,
            "auth_error",
        ),
        (
            "json-502",
            raw(
                502,
                "application/json",
                gateway_json("500", "Endpoint Error"),
            ),
            500,
            "gateway_error",
        ),
        (
            "json-503",
            raw(
                503,
                "application/json",
                gateway_json("500", "Endpoint Error"),
            ),
            500,
            "gateway_error",
        ),
        (
            "json-504",
            raw(
                504,
                "application/json",
                gateway_json("510", "Endpoint Timeout"),
            ),
            510,
            "gateway_error",
        ),
        (
            "429-retry-after",
            Behaviour::RateLimited(Some(1)),
            420,
            "rate_limited",
        ),
        (
            "429-no-retry-after",
            Behaviour::RateLimited(None),
            420,
            "rate_limited",
        ),
        (
            "429-huge-retry-after",
            Behaviour::RateLimited(Some(999_999_999)),
            420,
            "rate_limited",
        ),
        (
            "code-as-string",
            raw(
                200,
                "application/json",
                br#"{"code":"0","message":"SUCCESS","result":true}"#.to_vec(),
            ),
            -1,
            "invalid_response",
        ),
        (
            "result-as-number",
            raw(
                200,
                "application/json",
                br#"{"code":0,"message":"SUCCESS","result":1}"#.to_vec(),
            ),
            -1,
            "invalid_response",
        ),
        (
            "empty-body",
            raw(200, "application/json", Vec::new()),
            -1,
            "invalid_response",
        ),
    ]
}

fn tcp_faults() -> Vec<(&'static str, TcpFault, &'static str)> {
    vec![
        ("reset-mid-body", TcpFault::ResetMidBody, "connection_error"),
        ("trickle", TcpFault::Trickle, "timeout"),
        ("headers-never-end", TcpFault::HeadersNeverEnd, "timeout"),
        (
            "content-length-2gb",
            TcpFault::HugeContentLength,
            "body_too_large",
        ),
        (
            "chunked-forever",
            TcpFault::ChunkedForever,
            "body_too_large",
        ),
    ]
}

fn has_reason(m: &str, cluster: &str, reason: &str) -> bool {
    m.lines().any(|l| {
        l.starts_with("cdss_precheck_failures_total{")
            && l.contains(&format!("cluster=\"{cluster}\""))
            && l.contains(&format!("reason=\"{reason}\""))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_shows_ok_0_with_its_code_and_reason_then_recovers() {
    let http = http_faults();
    let tcp = tcp_faults();
    let faults =
        FaultServer::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut specs: Vec<Spec> = http
        .iter()
        .enumerate()
        .map(|(i, (name, b, _, _))| (*name, "KR", 1000 + i as u64, Some(b.clone())))
        .collect();
    specs.push(("healthy", "KR", 1, Some(Behaviour::Ready)));
    let mut yaml_extra = String::new();
    for (i, (name, fault, _)) in tcp.iter().enumerate() {
        let no = 2000 + i as u64;
        faults.set(no, *fault);
        yaml_extra.push_str(&format!("  - {{name: {name}, region: KR, service_group_instance_no: {no}, api_gateway: '{}'}}\n", faults.url()));
    }
    yaml_extra.push_str(&format!("  - {{name: connection-refused, region: KR, service_group_instance_no: 3000, api_gateway: '{closed}'}}\n"));
    let h = Harness::start_with_extra(
        &format!("interval: 3s\ntimeout: 2s\nconcurrency: 16\nmax_response_bytes: {BODY_CAP}"),
        &specs,
        &yaml_extra,
    )
    .await;
    h.wait_ready(Duration::from_secs(10)).await;
    let m = h.metrics().await;

    let mut expected: Vec<(&str, i64, &str)> =
        http.iter().map(|(n, _, c, r)| (*n, *c, *r)).collect();
    expected.extend(tcp.iter().map(|(n, _, r)| (*n, -1, *r)));
    expected.push(("connection-refused", -1, "connection_error"));
    for (name, code, reason) in &expected {
        assert_eq!(
            value(&m, "cdss_precheck_ok", name),
            Some(0.0),
            "{name}: ok\n{m}"
        );
        assert_eq!(
            value(&m, "cdss_precheck_last_error_code", name),
            Some(*code as f64),
            "{name}: code\n{m}"
        );
        assert!(has_reason(&m, name, reason), "{name}: reason {reason}\n{m}");
    }
    assert_eq!(value(&m, "cdss_precheck_ok", "healthy"), Some(1.0));
    // The trickle must end at the timeout, not after its 60 s body.
    let trickle = value(&m, "cdss_precheck_duration_seconds", "trickle").unwrap();
    assert!(trickle < 3.0, "trickle took {trickle}s");
    // Redirects were never followed: nobody listens on port 9, and the reason is the redirect.
    for (name, status) in [
        ("redirect-301", 301),
        ("redirect-302", 302),
        ("redirect-307", 307),
    ] {
        let (code, body) = h.get(&format!("/gate/{name}")).await;
        assert_eq!(code, 503, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["reason"], "error", "{body}");
        assert_eq!(v["verdict"], "http_error", "{body}");
        assert_eq!(
            v["message"],
            format!(
                "HTTP {status}: redirect to http://127.0.0.1:9/steal not followed (a signed request is never resent)"
            ),
            "{body}"
        );
    }

    // Heal everything; each cluster recovers on its next precheck.
    for (i, (name, _, _, _)) in http.iter().enumerate() {
        if !name.starts_with("429") {
            h.sim.set_behaviour(1000 + i as u64, Behaviour::Ready);
        }
    }
    for i in 0..tcp.len() {
        faults.set(2000 + i as u64, TcpFault::Healthy);
    }
    let recovered = |m: &str| {
        expected
            .iter()
            .filter(|(n, _, _)| !n.starts_with("429") && *n != "connection-refused")
            .all(|(n, _, _)| value(m, "cdss_precheck_ok", n) == Some(1.0))
    };
    let m = metrics_until(
        &h,
        Duration::from_secs(15),
        "every fault to recover",
        recovered,
    )
    .await;
    assert_eq!(
        value(&m, "cdss_precheck_last_error_code", "chunked-forever"),
        Some(0.0)
    );
    h.stop().await;
}

#[tokio::test]
async fn clock_skew_is_exposed_and_named_as_the_likely_cause() {
    let specs: Vec<Spec> = vec![("orders", "KR", 1, Some(Behaviour::Ready))];
    let h = Harness::start("interval: 1s\ntimeout: 900ms", &specs).await;
    h.wait_ready(Duration::from_secs(5)).await;
    let m = h.metrics().await;
    let skew = value_plain(&m, "cdss_exporter_clock_skew_seconds").unwrap();
    assert!(skew.abs() <= 2.0, "skew {skew} with an honest clock");

    // The gateway's clock runs 10 minutes ahead: it rejects our timestamps (401, code 200).
    h.sim.set_clock_offset(600_000);
    let m = metrics_until(&h, Duration::from_secs(5), "auth failures from skew", |m| {
        value(m, "cdss_precheck_last_error_code", "orders") == Some(200.0)
    })
    .await;
    let skew = value_plain(&m, "cdss_exporter_clock_skew_seconds").unwrap();
    assert!((598.0..=602.0).contains(&skew), "skew {skew}");
    h.stop().await;
}

#[tokio::test]
async fn the_exporter_log_names_the_clock_on_auth_failures() {
    let specs: Vec<Spec> = vec![("orders", "KR", 1, Some(Behaviour::Ready))];
    let sim = crate::support::start_sim(&specs).await;
    sim.set_clock_offset(10 * 60 * 1000);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        crate::support::config_yaml(&sim.url(), "interval: 2s\ntimeout: 1s", &specs),
    )
    .unwrap();
    let p = crate::support::Process::spawn(crate::support::exporter_command(&[
        "--config.file",
        config.to_str().unwrap(),
        "--web.listen-address",
        "127.0.0.1:0",
    ]));
    p.metrics_until(Duration::from_secs(5), "an auth failure", |m| {
        value(m, "cdss_precheck_last_error_code", "orders") == Some(200.0)
    })
    .await;
    let (code, logs) = p.terminate();
    assert_eq!(code, Some(0));
    assert!(logs.contains("which is the likely cause"), "{logs}");
    assert!(logs.contains("check NTP"), "the skew warning: {logs}");
}
