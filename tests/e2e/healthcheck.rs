//! `healthcheck` as the image's HEALTHCHECK runs it: the real binary against the real binary,
//! plain and behind TLS and basic auth, with flags and with the environment variables the
//! exporter reads too.

use crate::support::{Process, exporter_command, run_exporter};

/// `healthcheck` with `args` and `env`: (exit code, stderr).
fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = exporter_command(&[]);
    cmd.arg("healthcheck").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The port of `127.0.0.1:PORT`.
fn port(addr: &str) -> &str {
    addr.rsplit_once(':').unwrap().1
}

#[test]
fn plain_http_healthy_then_unhealthy_once_stopped() {
    let p = Process::spawn(exporter_command(&[
        "--demo",
        "--web.listen-address",
        "127.0.0.1:0",
    ]));
    let every_interface = format!(":{}", port(&p.addr));
    for args in [
        vec!["--web.listen-address", p.addr.as_str()],
        vec!["--web.listen-address", every_interface.as_str()],
    ] {
        let (code, stderr) = healthcheck(&args, &[]);
        assert_eq!((code, stderr.as_str()), (0, ""), "{args:?}");
    }
    let (code, stderr) = healthcheck(&[], &[("CDSS_WEB_LISTEN_ADDRESS", &every_interface)]);
    assert_eq!(code, 0, "the exporter's environment variable: {stderr}");
    let (code, logs) = p.terminate();
    assert_eq!(code, Some(0), "{logs}");

    let (code, stderr) = healthcheck(&["--web.listen-address", &every_interface], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with(&format!(
            "unhealthy: http://127.0.0.1:{}/-/healthy: ",
            port(&every_interface)
        )) && stderr.contains("[::1]")
            && stderr.contains("onnect"),
        "both loopback addresses were tried: {stderr}"
    );
}

#[test]
fn tls_and_basic_auth_from_the_web_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cert = rcgen::generate_simple_self_signed(vec!["exporter.example".into()]).unwrap();
    std::fs::write(d.join("server.crt"), cert.cert.pem()).unwrap();
    std::fs::write(d.join("server.key"), cert.signing_key.serialize_pem()).unwrap();
    let web = d.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  probe: {}\n",
            bcrypt::hash("pa55word", 4).unwrap()
        ),
    )
    .unwrap();
    let web = web.to_str().unwrap();
    let (right, wrong) = (d.join("right"), d.join("wrong"));
    std::fs::write(&right, "pa55word\n").unwrap();
    std::fs::write(&wrong, "guess\n").unwrap();
    let (right, wrong) = (right.to_str().unwrap(), wrong.to_str().unwrap());
    let p = Process::spawn(exporter_command(&[
        "--demo",
        "--web.listen-address",
        "127.0.0.1:0",
        "--web.config.file",
        web,
    ]));
    let addr = p.addr.as_str();

    let (code, stderr) = healthcheck(
        &["--web.listen-address", addr, "--web.config.file", web],
        &[
            ("CDSS_HEALTHCHECK_USERNAME", "probe"),
            ("CDSS_HEALTHCHECK_PASSWORD_FILE", right),
        ],
    );
    assert_eq!(
        (code, stderr.as_str()),
        (0, ""),
        "TLS with a self-signed certificate for another name, and the password"
    );
    let (code, stderr) = healthcheck(
        &["--username", "probe", "--password-file", right],
        &[
            ("CDSS_WEB_LISTEN_ADDRESS", addr),
            ("CDSS_WEB_CONFIG_FILE", web),
        ],
    );
    assert_eq!(code, 0, "the exporter's environment variables: {stderr}");

    let (code, stderr) = healthcheck(
        &[
            "--web.listen-address",
            addr,
            "--web.config.file",
            web,
            "--username",
            "probe",
            "--password-file",
            wrong,
        ],
        &[],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("https://{addr}/-/healthy: 401")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("guess"),
        "the password is never printed: {stderr}"
    );

    let (code, stderr) = healthcheck(
        &["--web.listen-address", addr, "--web.config.file", web],
        &[],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("requires basic auth") && stderr.contains("--password-file"),
        "{stderr}"
    );
    // Without the web config it speaks plain HTTP to a TLS port: the exporter answers 400.
    let (code, stderr) = healthcheck(&["--web.listen-address", addr], &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("HTTP 400"), "{stderr}");
    let (code, logs) = p.terminate();
    assert_eq!(code, Some(0), "{logs}");
}

#[test]
fn bad_input_is_named() {
    let (code, _, stderr) =
        run_exporter(&["healthcheck", "--web.config.file", "/nonexistent/web.yml"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.starts_with("unhealthy: invalid web configuration: /nonexistent/web.yml"),
        "{stderr}"
    );
    let (code, _, stderr) = run_exporter(&["healthcheck", "--username", "probe"]);
    assert_eq!(code, 2, "clap: --username needs --password-file: {stderr}");
    assert!(stderr.contains("--password-file"), "{stderr}");
    let (code, _, stderr) = run_exporter(&[
        "healthcheck",
        "--username",
        "probe",
        "--password-file",
        "/nonexistent/password",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.starts_with("unhealthy: --password-file /nonexistent/password: "),
        "{stderr}"
    );
}
