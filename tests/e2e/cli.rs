//! The binary as a user runs it: exit codes, messages on stderr, signals.

use crate::support::{Process, exporter_command, run_exporter};
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
    assert!(stdout.contains("OK"), "{stdout}");
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
    assert!(stderr.contains("NCLOUD_ACCESS_KEY"), "{stderr}");
}

#[test]
fn bad_flags_exit_2() {
    let (code, _, stderr) = run_exporter(&["--log.level", "loud"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run_exporter(&["--demo", "--web.listen-address", ":notaport"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("notaport"), "{stderr}");
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
