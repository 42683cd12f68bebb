//! The rest of exporter-toolkit's web.yml, over loopback: `http_server_config` (`headers` on
//! every answer, `http2`), `rate_limit` (429 after the burst, `/-/healthy` never limited, a new
//! limit applied without a restart), `client_allowed_sans` (after the chain, by DNS name, IP or
//! URI), and a shared fleet file through the real binary; unknown keys still stop it with the
//! file, line and key. The certificate helpers are the `tls` module's.

use std::sync::Arc;
use std::time::Duration;

use crate::support::{Process, exporter_command, run_exporter};
use crate::tls::{Ca, Exporter, get, hash, replace, status, tls_client, web_dir};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, SanType};

const TLS: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
const HEADERS: &str = "http_server_config:\n  http2: true\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n    Content-Security-Policy: \"default-src 'none'\"\n";

/// A client certificate from `ca` with exactly these SANs.
fn client_cert(ca: &Ca, sans: Vec<SanType>) -> (String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "client");
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn dns(name: &str) -> SanType {
    SanType::DnsName(name.try_into().unwrap())
}

/// Asserts the configured headers are on `r` (what: which answer).
fn assert_headers(r: &reqwest::Response, what: &str) {
    let h = r.headers();
    assert_eq!(h["x-frame-options"], "deny", "{what}");
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["content-security-policy"], "default-src 'none'", "{what}");
    assert!(h.get("strict-transport-security").is_none(), "{what}");
}

#[tokio::test]
async fn headers_on_every_answer_and_rate_limit_with_reload() {
    let ca = Ca::new("test server CA");
    let limit = "rate_limit:\n  interval: 1h\n  burst: 4\n";
    let users = format!("basic_auth_users:\n  alice: {}\n", hash("s3cret"));
    let (_dir, web) = web_dir(&ca, &format!("{TLS}{HEADERS}{limit}{users}"));
    let exporter = Exporter::start(&web).await;
    let client = tls_client(&ca.pem, None);
    let alice = Some(("alice", "s3cret"));

    // Four tokens: a scrape, a 404, a 401 (the limit comes before auth, as in the toolkit) and a
    // 405 each take one, and carry the headers.
    for (path, auth, code) in [
        ("/metrics", alice, 200),
        ("/nope", alice, 404),
        ("/metrics", None, 401),
    ] {
        let r = get(&client, &exporter.https(path), auth).await.unwrap();
        assert_eq!(r.status(), code, "{path}");
        assert_headers(&r, &format!("{code} on {path}"));
    }
    let r = client
        .post(exporter.https("/metrics"))
        .basic_auth("alice", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_headers(&r, "405");
    // The bucket is empty: every path but /-/healthy gets 429, with the headers.
    for path in ["/metrics", "/", "/-/ready", "/gate/orders", "/nope"] {
        let r = get(&client, &exporter.https(path), alice).await.unwrap();
        assert_eq!(r.status(), 429, "{path}");
        assert_headers(&r, &format!("429 on {path}"));
    }
    for _ in 0..20 {
        let r = get(&client, &exporter.https("/-/healthy"), alice)
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "liveness is never limited");
        assert_headers(&r, "/-/healthy");
    }
    // Liveness still needs the password when users are configured.
    assert_eq!(
        status(&client, &exporter.https("/-/healthy"), None).await,
        401
    );

    // A new file without the limit and with another header applies without a restart.
    let headers = "http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=600\n";
    replace(&web, &format!("{TLS}{headers}{users}"));
    let metrics = exporter.https("/metrics");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while status(&client, &metrics, alice).await != 200 {
        assert!(tokio::time::Instant::now() < deadline, "the limit stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..10 {
        let r = get(&client, &metrics, alice).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["strict-transport-security"], "max-age=600");
        assert!(r.headers().get("x-frame-options").is_none());
    }
    exporter.stop().await;
}

/// `http2: true` is accepted and the port keeps speaking HTTP/1.1: a client that offers h2 by
/// ALPN is answered with http/1.1.
#[tokio::test]
async fn http2_true_is_accepted_and_http11_is_negotiated() {
    let ca = Ca::new("test server CA");
    let (_dir, web) = web_dir(&ca, &format!("{TLS}{HEADERS}"));
    let exporter = Exporter::start(&web).await;
    let mut roots = rustls::RootCertStore::empty();
    let pem = rustls::pki_types::pem::PemObject::from_pem_slice(ca.pem.as_bytes()).unwrap();
    roots.add(pem).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(exporter.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    // And the ordinary HTTP/1.1 client gets its answer, headers included.
    let r = get(
        &tls_client(&ca.pem, None),
        &exporter.https("/metrics"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_headers(&r, "/metrics");
    exporter.stop().await;
}

#[tokio::test]
async fn client_allowed_sans_after_the_chain() {
    let ca = Ca::new("test server CA");
    let clients = Ca::new("test client CA");
    let stranger = Ca::new("someone else's CA");
    let sans = "  client_allowed_sans:\n    - prometheus.monitoring.svc\n    - 10.1.2.3\n    - spiffe://cluster.local/ns/monitoring/sa/prometheus\n";
    let verify = "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\n";
    let (dir, web) = web_dir(&ca, &format!("{TLS}{verify}{sans}"));
    std::fs::write(dir.path().join("clients.crt"), &clients.pem).unwrap();
    let exporter = Exporter::start(&web).await;
    let url = exporter.https("/metrics");

    let uri = SanType::URI(
        "spiffe://cluster.local/ns/monitoring/sa/prometheus"
            .try_into()
            .unwrap(),
    );
    for (what, sans) in [
        (
            "an allowed DNS name among others",
            vec![dns("x.example"), dns("prometheus.monitoring.svc")],
        ),
        (
            "an allowed IP",
            vec![SanType::IpAddress("10.1.2.3".parse().unwrap())],
        ),
        ("an allowed URI", vec![uri.clone()]),
    ] {
        let cert = client_cert(&clients, sans);
        assert_eq!(
            status(&tls_client(&ca.pem, Some(&cert)), &url, None).await,
            200,
            "{what}"
        );
    }
    for (what, issuer, sans, alert) in [
        (
            "a name not listed",
            &clients,
            vec![dns("grafana.monitoring.svc")],
            "BadCertificate",
        ),
        (
            "a near miss",
            &clients,
            vec![dns("prometheus.monitoring.svc.evil")],
            "BadCertificate",
        ),
        (
            "an IP not listed",
            &clients,
            vec![SanType::IpAddress("10.1.2.4".parse().unwrap())],
            "BadCertificate",
        ),
        ("no SAN at all", &clients, vec![], "BadCertificate"),
        (
            "an allowed name from another CA",
            &stranger,
            vec![dns("prometheus.monitoring.svc")],
            "UnknownCA",
        ),
    ] {
        let cert = client_cert(issuer, sans);
        let e = get(&tls_client(&ca.pem, Some(&cert)), &url, None)
            .await
            .map(|r| r.status())
            .expect_err(what);
        assert!(e.contains(alert), "{what}: {e}");
    }
    exporter.stop().await;

    // RequireAnyClientCert: no chain, so the SAN is the whole check.
    let any = "  client_auth_type: RequireAnyClientCert\n";
    let (_dir, web) = web_dir(&ca, &format!("{TLS}{any}{sans}"));
    let exporter = Exporter::start(&web).await;
    let url = exporter.https("/metrics");
    let allowed = client_cert(&stranger, vec![uri]);
    assert_eq!(
        status(&tls_client(&ca.pem, Some(&allowed)), &url, None).await,
        200
    );
    let other = client_cert(&stranger, vec![dns("anyone")]);
    let e = get(&tls_client(&ca.pem, Some(&other)), &url, None)
        .await
        .map(|r| r.status())
        .expect_err("a name not listed");
    assert!(e.contains("BadCertificate"), "{e}");
    exporter.stop().await;
}

/// One web.yml shared by every exporter on a host, with each key exporter-toolkit documents,
/// through the real binary: it starts, serves with the headers and the limit, and says that
/// http2 has no effect.
#[tokio::test]
async fn the_binary_takes_a_fleet_web_config() {
    let ca = Ca::new("test server CA");
    let clients = Ca::new("test client CA");
    let fleet = format!(
        "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\n  client_allowed_sans: [prometheus]\n  min_version: TLS12\n  max_version: TLS13\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n  curve_preferences: [X25519, CurveP256]\n  prefer_server_cipher_suites: true\n{HEADERS}rate_limit:\n  interval: 1h\n  burst: 2\nbasic_auth_users:\n  alice: {}\n",
        hash("s3cret")
    );
    let (dir, web) = web_dir(&ca, &fleet);
    std::fs::write(dir.path().join("clients.crt"), &clients.pem).unwrap();
    let p = Process::spawn(exporter_command(&[
        "--demo",
        "--web.listen-address",
        "127.0.0.1:0",
        "--web.config.file",
        web.to_str().unwrap(),
    ]));
    let client = tls_client(
        &ca.pem,
        Some(&client_cert(&clients, vec![dns("prometheus")])),
    );
    let url = format!("https://{}/metrics", p.addr);
    let r = get(&client, &url, Some(("alice", "s3cret"))).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_headers(&r, "the binary's /metrics");
    assert_eq!(status(&client, &url, Some(("alice", "s3cret"))).await, 200);
    assert_eq!(status(&client, &url, Some(("alice", "s3cret"))).await, 429);
    let healthy = format!("https://{}/-/healthy", p.addr);
    assert_eq!(
        status(&client, &healthy, Some(("alice", "s3cret"))).await,
        200
    );
    let (code, logs) = p.terminate();
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains("http_server_config.http2") && l.contains("serves HTTP/1.1 only")),
        "{logs}"
    );
}

#[test]
fn unknown_or_refused_keys_stop_the_binary_with_file_line_and_key() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "http_server_config:\n  http2: false\n  header:\n    X-Frame-Options: deny\n",
            ":3:3: http_server_config: unknown field `header`",
        ),
        (
            "rate_limit:\n  interval: 1s\n  bursts: 5\n",
            ":3:3: rate_limit: unknown field `bursts`",
        ),
        (
            "http_server_config:\n  headers:\n    Server: cdss\n",
            ":3:5: http_server_config.headers: header \"Server\" can not be configured",
        ),
        (
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            ":3:22: http_server_config.headers.X-Frame-Options: \"allow\" is not one of deny, sameorigin",
        ),
        (
            "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_allowed_sans: [x]\n",
            ":4:24: tls_server_config.client_allowed_sans: needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert, not NoClientCert",
        ),
        (
            "ratelimit:\n  interval: 1s\n",
            ":1:1: unknown field `ratelimit`",
        ),
    ];
    for (i, (text, expected)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("web{i}.yml"));
        std::fs::write(&path, text).unwrap();
        let p = path.to_str().unwrap();
        let (code, _, stderr) = run_exporter(&[
            "--config.check",
            "--config.file",
            example,
            "--web.config.file",
            p,
        ]);
        assert_eq!(code, 2, "{text:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{p}{expected}")),
            "expected {p}{expected} in:\n{stderr}"
        );
    }
    // And a file with them all right passes.
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        format!("{HEADERS}rate_limit:\n  interval: 100ms\n  burst: 10\n"),
    )
    .unwrap();
    let (code, stdout, stderr) = run_exporter(&[
        "--config.check",
        "--config.file",
        example,
        "--web.config.file",
        good.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("OK (TLS off, basic auth off)"), "{stdout}");
}
