//! TLS everywhere it matters, over loopback, with certificates made at test time (rcgen):
//!
//! - our endpoints behind `--web.config.file`: a real TLS client (reqwest) with and without Basic
//!   credentials and client certificates, a plain-HTTP client on the TLS port, the file changing
//!   while the exporter runs, and a bad file at start-up (the binary, exit 2);
//! - `ca_file` errors are config errors.
//!
//! The gateway client's certificate checks (HTTPS to the simulated gateway, `ca_file`) drive the
//! client directly, so they are unit tests: `src/ncp/tests/tls.rs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{ACCESS_KEY, Process, SECRET_KEY, Spec, exporter_command, run_exporter};
use cdss_precheck_exporter::config::Config;
use cdss_precheck_exporter::credentials::{Credentials, Keyring};
use cdss_precheck_exporter::secret::Secret;
use cdss_precheck_exporter::sim::{Behaviour, SimGateway};
use cdss_precheck_exporter::web::WebConfigWatch;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const FAST: &str = "interval: 2s\ntimeout: 1s";
pub(crate) const CLUSTERS: [Spec; 1] = [("orders", "KR", 100, Some(Behaviour::Ready))];
/// bcrypt cost for test hashes: the minimum, so the tests stay fast.
pub(crate) const COST: u32 = 4;

/// A test CA that signs server and client certificates.
pub(crate) struct Ca {
    pub(crate) pem: String,
    pub(crate) issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// (certificate PEM, key PEM) for `names`, for a server or a client.
    pub(crate) fn issue(
        &self,
        names: &[&str],
        purpose: ExtendedKeyUsagePurpose,
    ) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// Replaces `path` the way editors and config management do: write aside, then rename.
pub(crate) fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

pub(crate) fn hash(password: &str) -> String {
    bcrypt::hash(password, COST).unwrap()
}

/// The exporter with `--web.config.file` `web_file`, against a simulated gateway.
pub(crate) struct Exporter {
    pub(crate) addr: SocketAddr,
    _sim: SimGateway,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Exporter {
    pub(crate) async fn start(web_file: &Path) -> Self {
        let sim = crate::support::start_sim(&CLUSTERS).await;
        let config = Config::parse(
            &crate::support::config_yaml(&sim.url(), FAST, &CLUSTERS),
            Path::new("test.yaml"),
        )
        .unwrap();
        let web = WebConfigWatch::load(web_file).unwrap_or_else(|e| panic!("{e}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let keyring: Keyring = Credentials {
            access_key: ACCESS_KEY.into(),
            secret_key: Secret::new(SECRET_KEY),
        }
        .into();
        let task = tokio::spawn(cdss_precheck_exporter::app::run(
            listener,
            cdss_precheck_exporter::app::Options {
                web: Some(Arc::new(web)),
                ..cdss_precheck_exporter::app::Options::new(config, keyring)
            },
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            _sim: sim,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub(crate) fn https(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    pub(crate) async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

/// A TLS client that trusts only `ca_pem`, optionally with a client certificate.
pub(crate) fn tls_client(ca_pem: &str, identity: Option<&(String, String)>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()]);
    if let Some((cert, key)) = identity {
        b = b.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    b.build().unwrap()
}

/// Status of `GET url` with optional Basic credentials, or the error text if there was no answer.
pub(crate) async fn get(
    client: &reqwest::Client,
    url: &str,
    auth: Option<(&str, &str)>,
) -> Result<reqwest::Response, String> {
    let mut req = client.get(url);
    if let Some((u, p)) = auth {
        req = req.basic_auth(u, Some(p));
    }
    req.send().await.map_err(|e| format!("{e:?}"))
}

pub(crate) async fn status(client: &reqwest::Client, url: &str, auth: Option<(&str, &str)>) -> u16 {
    match get(client, url, auth).await {
        Ok(r) => r.status().as_u16(),
        Err(e) => panic!("GET {url}: no answer: {e}"),
    }
}

/// A temp dir with a server certificate for 127.0.0.1 (from `ca`) and `web.yml`.
pub(crate) fn web_dir(ca: &Ca, web_yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
    std::fs::write(dir.path().join("server.crt"), cert).unwrap();
    std::fs::write(dir.path().join("server.key"), key).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, web_yaml).unwrap();
    (dir, web)
}

#[tokio::test]
async fn basic_auth_over_tls() {
    let ca = Ca::new("test server CA");
    let (_dir, web) = web_dir(
        &ca,
        &format!(
            "# relative paths are relative to this file\ntls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS12\nbasic_auth_users:\n  alice: {}\n  bob: '{}'\n",
            hash("s3cret"),
            hash("other")
        ),
    );
    let exporter = Exporter::start(&web).await;
    let client = tls_client(&ca.pem, None);
    let metrics = exporter.https("/metrics");

    let r = get(&client, &metrics, Some(("alice", "s3cret")))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("cdss_exporter_build_info"));
    assert_eq!(status(&client, &metrics, Some(("bob", "other"))).await, 200);
    // The cached success is per user and password: it lets nothing else in.
    assert_eq!(
        status(&client, &metrics, Some(("alice", "s3cret"))).await,
        200
    );

    for (auth, what) in [
        (Some(("alice", "wrong")), "wrong password"),
        (Some(("alice", "other")), "bob's password for alice"),
        (Some(("mallory", "s3cret")), "unknown user"),
        (Some(("alice", "")), "empty password"),
        (None, "no credentials"),
    ] {
        let r = get(&client, &metrics, auth).await.unwrap();
        assert_eq!(r.status(), 401, "{what}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with("Basic realm=\"cdss-precheck-exporter\""),
            "{what}: {challenge}"
        );
        assert!(!r.text().await.unwrap().contains("cdss_"), "{what}");
    }

    // Every path is protected, liveness included (as with exporter-toolkit); 404s too.
    for path in ["/-/healthy", "/", "/-/ready", "/gate/orders", "/nope"] {
        assert_eq!(
            status(&client, &exporter.https(path), None).await,
            401,
            "{path}"
        );
    }
    assert_eq!(
        status(
            &client,
            &exporter.https("/-/healthy"),
            Some(("alice", "s3cret"))
        )
        .await,
        200
    );
    assert_eq!(
        status(&client, &exporter.https("/nope"), Some(("alice", "s3cret"))).await,
        404
    );
    exporter.stop().await;
}

#[tokio::test]
async fn client_certificate_required_and_verified() {
    let ca = Ca::new("test server CA");
    let clients_ca = Ca::new("test client CA");
    let stranger_ca = Ca::new("someone else's CA");
    let (dir, web) = web_dir(
        &ca,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\n",
    );
    std::fs::write(dir.path().join("clients.crt"), &clients_ca.pem).unwrap();
    let exporter = Exporter::start(&web).await;
    let url = exporter.https("/metrics");

    let no_cert = get(&tls_client(&ca.pem, None), &url, None)
        .await
        .map(|r| r.status())
        .expect_err("no client certificate must fail the handshake");
    assert!(no_cert.contains("CertificateRequired"), "{no_cert}");
    let stranger = stranger_ca.issue(&["prometheus"], ExtendedKeyUsagePurpose::ClientAuth);
    let wrong_ca = get(&tls_client(&ca.pem, Some(&stranger)), &url, None)
        .await
        .map(|r| r.status())
        .expect_err("a certificate from another CA must fail");
    assert!(wrong_ca.contains("UnknownCA"), "{wrong_ca}");

    let prometheus = clients_ca.issue(&["prometheus"], ExtendedKeyUsagePurpose::ClientAuth);
    let client = tls_client(&ca.pem, Some(&prometheus));
    assert_eq!(status(&client, &url, None).await, 200);
    assert_eq!(
        status(&client, &exporter.https("/-/healthy"), None).await,
        200
    );
    exporter.stop().await;
}

#[tokio::test]
async fn other_client_auth_types() {
    let ca = Ca::new("test server CA");
    let clients_ca = Ca::new("test client CA");
    let stranger =
        Ca::new("someone else's CA").issue(&["stranger"], ExtendedKeyUsagePurpose::ClientAuth);
    let known = clients_ca.issue(&["prometheus"], ExtendedKeyUsagePurpose::ClientAuth);
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

    // RequireAnyClientCert: some certificate is required, none is checked against a CA.
    let (_dir, web) = web_dir(
        &ca,
        &format!("{tls}  client_auth_type: RequireAnyClientCert\n"),
    );
    let exporter = Exporter::start(&web).await;
    let url = exporter.https("/metrics");
    let no_cert = get(&tls_client(&ca.pem, None), &url, None)
        .await
        .map(|r| r.status())
        .expect_err("RequireAnyClientCert without a certificate");
    assert!(no_cert.contains("CertificateRequired"), "{no_cert}");
    assert_eq!(
        status(&tls_client(&ca.pem, Some(&stranger)), &url, None).await,
        200
    );
    exporter.stop().await;

    // VerifyClientCertIfGiven: none is fine, but one that is sent must verify.
    let (dir, web) = web_dir(
        &ca,
        &format!(
            "{tls}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: clients.crt\n"
        ),
    );
    std::fs::write(dir.path().join("clients.crt"), &clients_ca.pem).unwrap();
    let exporter = Exporter::start(&web).await;
    let url = exporter.https("/metrics");
    assert_eq!(status(&tls_client(&ca.pem, None), &url, None).await, 200);
    let wrong_ca = get(&tls_client(&ca.pem, Some(&stranger)), &url, None)
        .await
        .map(|r| r.status())
        .expect_err("VerifyClientCertIfGiven with a stranger's certificate");
    assert!(wrong_ca.contains("UnknownCA"), "{wrong_ca}");
    assert_eq!(
        status(&tls_client(&ca.pem, Some(&known)), &url, None).await,
        200
    );
    exporter.stop().await;

    // RequestClientCert: asked for, never required nor checked.
    let (_dir, web) = web_dir(
        &ca,
        &format!("{tls}  client_auth_type: RequestClientCert\n"),
    );
    let exporter = Exporter::start(&web).await;
    let url = exporter.https("/metrics");
    assert_eq!(status(&tls_client(&ca.pem, None), &url, None).await, 200);
    assert_eq!(
        status(&tls_client(&ca.pem, Some(&stranger)), &url, None).await,
        200
    );
    exporter.stop().await;
}

#[tokio::test]
async fn plain_http_on_the_tls_port_fails_cleanly() {
    let ca = Ca::new("test server CA");
    let (_dir, web) = web_dir(
        &ca,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    );
    let exporter = Exporter::start(&web).await;

    // A client that connects and says nothing does not hold up anyone else.
    let _silent = tokio::net::TcpStream::connect(exporter.addr).await.unwrap();

    // A raw plain-HTTP request gets a 400 that says what is wrong, then the connection closes.
    let mut sock = tokio::net::TcpStream::connect(exporter.addr).await.unwrap();
    sock.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: curl\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.0 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(
        answer.ends_with("Client sent an HTTP request to an HTTPS server.\n"),
        "{answer}"
    );

    // reqwest speaking http:// to it gets the same 400, not a hang.
    let plain = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = plain
        .get(format!("http://{}/metrics", exporter.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Bytes that are neither TLS nor HTTP: the connection is closed.
    let mut sock = tokio::net::TcpStream::connect(exporter.addr).await.unwrap();
    sock.write_all(&[
        0x00, 0xff, 0x13, 0x37, 0x00, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5,
    ])
    .await
    .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "a garbage handshake is closed, not left open"
    );

    // And the exporter keeps serving TLS.
    let client = tls_client(&ca.pem, None);
    assert_eq!(
        status(&client, &exporter.https("/metrics"), None).await,
        200
    );
    exporter.stop().await;
}

/// Polls until `GET url` with `auth` answers `want`, for at most 30 s (room for a loaded
/// machine; it returns as soon as the change is seen).
async fn until_status(
    what: &str,
    client: &reqwest::Client,
    url: &str,
    auth: (&str, &str),
    want: u16,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = get(client, url, Some(auth)).await {
            if r.status().as_u16() == want {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {url} with {auth:?} never answered {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn web_config_changes_apply_without_restart() {
    let ca = Ca::new("test server CA");
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let (dir, web) = web_dir(
        &ca,
        &format!("{tls}basic_auth_users:\n  alice: {}\n", hash("first")),
    );
    let exporter = Exporter::start(&web).await;
    let url = exporter.https("/metrics");
    let client = tls_client(&ca.pem, None);
    assert_eq!(status(&client, &url, Some(("alice", "first"))).await, 200);

    // The password hash is replaced: the new password works, the old one no longer does, on
    // the same (kept-alive) client.
    replace(
        &web,
        &format!("{tls}basic_auth_users:\n  alice: {}\n", hash("second")),
    );
    until_status("new password", &client, &url, ("alice", "second"), 200).await;
    assert_eq!(status(&client, &url, Some(("alice", "first"))).await, 401);

    // A broken version is refused; the running one stays in force.
    replace(
        &web,
        &format!(
            "{tls}basic_auth_users:\n  alice: {}\nbasic_auth_user: {{}}\n",
            hash("third")
        ),
    );
    for _ in 0..3 {
        assert_eq!(status(&client, &url, Some(("alice", "second"))).await, 200);
        assert_eq!(status(&client, &url, Some(("alice", "third"))).await, 401);
    }

    // Switching TLS off needs a restart: refused, the port keeps speaking TLS.
    replace(
        &web,
        &format!("basic_auth_users:\n  alice: {}\n", hash("fourth")),
    );
    for _ in 0..3 {
        assert_eq!(status(&client, &url, Some(("alice", "second"))).await, 200);
    }

    // Back to a valid TLS config (a new password shows it is in force).
    replace(
        &web,
        &format!("{tls}basic_auth_users:\n  alice: {}\n", hash("fifth")),
    );
    until_status(
        "TLS config restored",
        &client,
        &url,
        ("alice", "fifth"),
        200,
    )
    .await;

    // Certificate rotation: a new certificate (from a new CA) in the same files is picked up
    // by new connections. Only the certificate and key change; the web config file does not.
    let web_before = std::fs::read(&web).unwrap();
    let new_ca = Ca::new("rotated server CA");
    let (cert, key) = new_ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
    replace(&dir.path().join("server.key"), &key);
    replace(&dir.path().join("server.crt"), &cert);
    let new_client = tls_client(&new_ca.pem, None);
    until_status(
        "rotated certificate",
        &new_client,
        &url,
        ("alice", "fifth"),
        200,
    )
    .await;
    assert_eq!(std::fs::read(&web).unwrap(), web_before);
    let old_trust = tls_client(&ca.pem, None);
    let e = get(&old_trust, &url, Some(("alice", "fifth")))
        .await
        .map(|r| r.status())
        .expect_err("the old certificate is no longer served");
    assert!(e.contains("UnknownIssuer"), "not a trust failure: {e}");
    exporter.stop().await;
}

/// The real binary with a valid `--web.config.file`: TLS and basic auth on its port, a clean
/// exit on SIGTERM.
#[tokio::test]
async fn the_binary_serves_tls_and_basic_auth_from_a_valid_web_config() {
    let ca = Ca::new("test server CA");
    let (_dir, web) = web_dir(
        &ca,
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  alice: {}\n",
            hash("s3cret")
        ),
    );
    let p = Process::spawn(exporter_command(&[
        "--demo",
        "--web.listen-address",
        "127.0.0.1:0",
        "--web.config.file",
        web.to_str().unwrap(),
    ]));
    let client = tls_client(&ca.pem, None);
    let url = format!("https://{}/metrics", p.addr);
    // The demo's ready cluster shows up over TLS, with the password.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = get(&client, &url, Some(("alice", "s3cret"))).await.unwrap();
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        if body
            .lines()
            .any(|l| l == "cdss_precheck_ok{cluster=\"orders-kafka\",region=\"KR\"} 1")
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status(&client, &url, None).await, 401);
    assert_eq!(status(&client, &url, Some(("alice", "wrong"))).await, 401);
    // Plain HTTP on that port is told it speaks TLS; a client that trusts another CA refuses it.
    let plain = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = plain
        .get(format!("http://{}/metrics", p.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e = get(&tls_client(&Ca::new("other").pem, None), &url, None)
        .await
        .map(|r| r.status())
        .expect_err("an untrusted server certificate");
    assert!(e.contains("UnknownIssuer"), "{e}");
    let (code, logs) = p.terminate();
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        logs.lines()
            .any(|l| l.contains("message=listening") && l.contains("tls=true")),
        "{logs}"
    );
}

#[test]
fn bad_web_config_exits_2_with_location() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "typo.yml",
            "tls_server_config:\n  cert_file: server.crt\n  keyfile: server.key\n".to_string(),
            ":3:3: tls_server_config: unknown field `keyfile`",
        ),
        (
            "missing.yml",
            "tls_server_config:\n  cert_file: nowhere.crt\n  key_file: nowhere.key\n".to_string(),
            ":2:14: tls_server_config.cert_file: ",
        ),
        (
            "hash.yml",
            "basic_auth_users:\n  alice: not-a-hash\n".to_string(),
            ":2:10: basic_auth_users.alice: not a bcrypt hash",
        ),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let p = path.to_str().unwrap();
        for args in [
            vec![
                "--config.file",
                example,
                "--web.config.file",
                p,
                "--web.listen-address",
                "127.0.0.1:0",
            ],
            vec![
                "--config.check",
                "--config.file",
                example,
                "--web.config.file",
                p,
            ],
        ] {
            let (code, _, stderr) = run_exporter(&args);
            assert_eq!(code, 2, "{name} {args:?}: {stderr}");
            assert!(
                stderr.contains("invalid web configuration")
                    && stderr.contains(&format!("{p}{expected}")),
                "{name}: expected {p}{expected} in:\n{stderr}"
            );
            assert!(
                !stderr.contains("not-a-hash"),
                "hash values are never echoed"
            );
        }
    }

    // A good one passes --config.check and says what it enables.
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        format!("basic_auth_users:\n  alice: {}\n", hash("x")),
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
    assert!(stdout.contains("OK (TLS off, basic auth on)"), "{stdout}");
}

#[test]
fn ca_file_errors_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    for (ca_file, expected) in [
        (not_pem.display().to_string(), "no PEM certificate"),
        (
            dir.path().join("absent.pem").display().to_string(),
            "cannot read",
        ),
    ] {
        let path = dir.path().join("config.yaml");
        std::fs::write(
            &path,
            format!("interval: 30s\nca_file: {ca_file}\nclusters:\n  - {{name: a, region: KR, service_group_instance_no: 1}}\n"),
        )
        .unwrap();
        let e = Config::load(&path).unwrap_err();
        assert_eq!(e.location, Some((2, 1)), "{e}");
        assert!(
            e.message.starts_with("ca_file: ") && e.message.contains(expected),
            "{e}"
        );
    }
}

#[test]
fn readme_web_config_example_loads() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## TLS and basic auth")
        .nth(1)
        .expect("README has a TLS and basic auth section");
    let example = section
        .split("```yaml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("the section starts with a YAML example");
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("README CA");
    let (cert, key) = ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
    std::fs::write(dir.path().join("server.crt"), cert).unwrap();
    std::fs::write(dir.path().join("server.key"), key).unwrap();
    std::fs::write(dir.path().join("prometheus-ca.crt"), &ca.pem).unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, example).unwrap();
    // Loaded as a user checks it: `--config.check` says what the file enables.
    let (code, stdout, stderr) = run_exporter(&[
        "--config.check",
        "--config.file",
        concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"),
        "--web.config.file",
        web.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "README example: {stderr}");
    assert!(stdout.contains("OK (TLS on, basic auth on)"), "{stdout}");
}
