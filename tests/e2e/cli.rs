//! The binary as a user runs it: exit codes, messages on stderr, signals.

use crate::support::{Process, config_yaml, exporter_command, run_exporter, start_sim};
use cdss_precheck_exporter::sim::Behaviour;
use std::time::{Duration, Instant};

#[test]
fn bad_config_exits_2_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "interval: 30s\nclusters:\n  - name: a\n    region: Mars\n    service_group_instance_no: 1\n").unwrap();
    let p = path.to_str().unwrap();
    for args in [
        vec!["--config.file", p],
        vec!["--config.check", "--config.file", p],
    ] {
        let (code, _, stderr) = run_exporter(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{p}:4:13: clusters[0].region: unknown region")),
            "no file:line:column in {stderr}"
        );
        assert!(
            stderr.contains("region") && stderr.contains("Mars"),
            "{stderr}"
        );
    }
}

#[test]
fn unknown_key_is_reported_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.yaml");
    std::fs::write(&path, "interval: 30s\ntimout: 5s\nclusters: []\n").unwrap();
    let (code, _, stderr) =
        run_exporter(&["--config.check", "--config.file", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("typo.yaml:2:1") && stderr.contains("timout"),
        "{stderr}"
    );
}

#[test]
fn missing_config_file_exits_2() {
    let (code, _, stderr) = run_exporter(&["--config.file", "/nonexistent/config.yaml"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("/nonexistent/config.yaml") && stderr.contains("cannot read"),
        "{stderr}"
    );
}

#[test]
fn example_config_checks_ok() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let (code, stdout, stderr) = run_exporter(&["--config.check", "--config.file", example]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with(&format!("{example}: OK (")), "{stdout}");
    // Credentials are not set in this test: that is a warning for --config.check, not a failure.
    assert!(stderr.contains("NCLOUD_ACCESS_KEY"), "{stderr}");
}

#[test]
fn missing_credentials_exit_2_naming_what_was_tried() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let (code, _, stderr) = run_exporter(&[
        "--config.file",
        example,
        "--web.listen-address",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 2);
    // The last line is the error; it names every step of the key chain, in the SDKs' order,
    // and what each found.
    let error = stderr.lines().last().unwrap_or_default();
    let (head, tried) = error
        .split_once("; looked at: ")
        .unwrap_or_else(|| panic!("no list of what was tried: {stderr}"));
    assert_eq!(
        head, "error: cannot load credentials: account \"default\": no keys found",
        "{stderr}"
    );
    let tried: Vec<&str> = tried.split("; ").collect();
    assert_eq!(tried.len(), 3, "env, file, server role: {tried:#?}");
    assert_eq!(
        tried[0],
        "env NCLOUD_ACCESS_KEY_ID / NCLOUD_ACCESS_KEY (not set), \
         NCLOUD_SECRET_ACCESS_KEY / NCLOUD_SECRET_KEY (not set)"
    );
    assert_eq!(
        tried[1],
        "file /nonexistent-home-for-tests/.ncloud/configure (not found)"
    );
    assert!(
        tried[2].starts_with(
            "metadata API http://127.0.0.1:9/latest/meta-data/iam/security-credentials/: unreachable: "
        ),
        "{}",
        tried[2]
    );
}

#[test]
fn bad_flags_exit_2() {
    let (code, _, stderr) = run_exporter(&["--log.level", "loud"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("loud"), "{stderr}");
    let (code, _, stderr) = run_exporter(&["--log.format", "xml"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("xml"), "{stderr}");
    let (code, _, stderr) = run_exporter(&["--no-such-flag"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("unexpected argument '--no-such-flag'"),
        "{stderr}"
    );
}

/// README: "`2` bad flags". A listen address that is not an address is a bad flag.
#[test]
fn unparsable_listen_address_exits_2() {
    let (code, _, stderr) = run_exporter(&["--demo", "--web.listen-address", ":notaport"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("notaport"), "{stderr}");
}

/// README: "`1` runtime failure (for example the listen address is taken)".
#[test]
fn taken_listen_address_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, stderr) = run_exporter(&["--demo", "--web.listen-address", &addr]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&addr),
        "the error names the address: {stderr}"
    );
    drop(taken);
}

#[test]
fn version_prints_name_and_version() {
    let (code, stdout, stderr) = run_exporter(&["--version"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        concat!("cdss-precheck-exporter ", env!("CARGO_PKG_VERSION"), "\n")
    );
}

/// Waits for the demo's ready cluster to have an answer, then stops the process.
async fn demo_until_answered(p: Process) -> (Option<i32>, String) {
    p.metrics_until(Duration::from_secs(30), "orders-kafka answered", |m| {
        m.contains("cdss_precheck_ok{cluster=\"orders-kafka\",region=\"KR\"} 1")
    })
    .await;
    p.terminate()
}

/// README: "`RUST_LOG`, when set, replaces `--log.level`". With `--log.level error` alone the
/// exporter would log neither its listen address (info) nor a precheck (debug).
#[tokio::test]
async fn rust_log_replaces_log_level() {
    let mut cmd = exporter_command(&[
        "--demo",
        "--web.listen-address",
        "127.0.0.1:0",
        "--log.level",
        "error",
    ]);
    cmd.env("RUST_LOG", "debug");
    let (code, logs) = demo_until_answered(Process::spawn(cmd)).await;
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        logs.lines().any(|l| l.contains(" level=debug ")
            && l.contains("message=\"precheck done\"")
            && l.contains("cluster=orders-kafka ")),
        "{logs}"
    );
}

/// `--log.format json`: every line on stderr is one JSON object with a level and a message,
/// fields at the top level (the listen address, a precheck's cluster).
#[tokio::test]
async fn json_log_format_is_one_object_per_line() {
    use std::io::BufRead as _;
    let mut child = exporter_command(&[
        "--demo",
        "--web.listen-address",
        "127.0.0.1:0",
        "--log.format",
        "json",
        "--log.level",
        "debug",
    ])
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line.clone());
            all.push(line);
        }
        all
    });
    // Runs until the ready cluster's precheck is logged (an event, not a sleep).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("no precheck logged for orders-kafka");
        if line.contains(r#""message":"precheck done""#)
            && line.contains(r#""cluster":"orders-kafka""#)
        {
            break;
        }
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let code = child.wait().unwrap().code();
    let lines = reader.join().unwrap();
    assert_eq!(code, Some(0), "{lines:#?}");
    let mut listening = false;
    let mut precheck = false;
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        let level = v["level"]
            .as_str()
            .unwrap_or_else(|| panic!("no level: {line}"));
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "{line}"
        );
        assert!(v["message"].is_string(), "no message: {line}");
        listening |= v["message"] == "listening"
            && v["address"]
                .as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:"));
        precheck |= v["message"] == "precheck done"
            && v["level"] == "DEBUG"
            && v["cluster"] == "orders-kafka"
            && v["verdict"] == "ready";
    }
    assert!(listening, "no line with the listen address: {lines:#?}");
    assert!(precheck, "no debug line for the precheck: {lines:#?}");
}

#[tokio::test]
async fn demo_serves_metrics_and_sigterm_exits_0() {
    let p = Process::spawn(exporter_command(&[
        "--demo",
        "--web.listen-address",
        "127.0.0.1:0",
        "--log.format",
        "logfmt",
    ]));
    let deadline = Instant::now() + Duration::from_secs(10);
    // The demo's clusters are prechecked concurrently at start: wait until the ready one and the
    // API-error one have both answered (one finishing says nothing about the other).
    let body = loop {
        let body = p.get("/metrics").await;
        if body.contains("cdss_precheck_last_error_code{cluster=\"legacy-kafka\"")
            && body.contains("cdss_precheck_last_error_code{cluster=\"orders-kafka\"")
        {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "demo never produced results:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        body.contains("cdss_precheck_ok{cluster=\"orders-kafka\",region=\"KR\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("cdss_precheck_last_error_code{cluster=\"legacy-kafka\",region=\"KR\"} 3"),
        "{body}"
    );

    let started = Instant::now();
    let (code, logs) = p.terminate();
    assert_eq!(code, Some(0), "SIGTERM must end the exporter cleanly");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(logs.contains("SIGTERM"), "{logs}");
}

/// README: on SIGINT the exporter lets the precheck in flight finish (bounded by `timeout`)
/// and exits 0.
#[tokio::test]
async fn sigint_with_a_precheck_in_flight_exits_0() {
    let specs = [(
        "hangs",
        "KR",
        7,
        Some(Behaviour::Slow(
            Duration::from_secs(60),
            Box::new(Behaviour::Ready),
        )),
    )];
    let sim = start_sim(&specs).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        config_yaml(&sim.url(), "interval: 30s\ntimeout: 8s", &specs),
    )
    .unwrap();
    let p = Process::spawn(exporter_command(&[
        "--config.file",
        config.to_str().unwrap(),
        "--web.listen-address",
        "127.0.0.1:0",
    ]));
    // In flight: the gateway has the call, the exporter has no result yet.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.calls(7) == 0 {
        assert!(Instant::now() < deadline, "the precheck never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m = p.get("/metrics").await;
    assert!(
        m.contains("cdss_precheck_runs_total{cluster=\"hangs\",region=\"KR\"} 0"),
        "{m}"
    );
    let started = Instant::now();
    let (code, logs) = p.stop_with("INT");
    let took = started.elapsed();
    assert_eq!(code, Some(0), "{logs}");
    assert!(logs.contains("SIGINT"), "{logs}");
    // Bounded by the 8 s timeout (long enough that the precheck is still in flight when the
    // scrape above reads it on a loaded machine), not the gateway's 60 s.
    assert!(took < Duration::from_secs(25), "{took:?}");
}
