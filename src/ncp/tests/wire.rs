//! What goes over the wire, byte for byte: a raw TCP listener captures the request the client
//! sends, and redirects are shown never to be followed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::ncp_signature;
use crate::credentials::{Credentials, Keyring};
use crate::model::{Cluster, DEFAULT_ACCOUNT};
use crate::ncp::client::{ClientSettings, Clients};
use crate::ncp::precheck::{Precheck, precheck};
use crate::ncp::region::{Endpoint, Region};
use crate::ncp::sign;
use crate::outcome::{FailureReason, Outcome};
use crate::secret::Secret;

fn client() -> Clients {
    Clients::new(
        &Keyring::from(Credentials {
            access_key: "AK-WIRE".into(),
            secret_key: Secret::new("SK-wire-secret"),
        }),
        &ClientSettings {
            timeout: Duration::from_secs(3),
            max_response_bytes: 1 << 20,
            ca_file: None,
        },
    )
    .unwrap()
}

/// Prechecks cluster number `no` at exactly `url`, through the one call path.
async fn precheck_at(clients: &Clients, url: &Url, no: u64) -> Precheck {
    let cluster = Cluster {
        name: "wire".into(),
        region: Region::Kr,
        service_group_instance_no: no,
        endpoint: std::sync::Arc::new(Endpoint {
            region: Region::Kr,
            precheck: url.clone(),
            cluster_list: url.clone(),
            cluster_status_base: url.to_string(),
            rolling_restart: url.clone(),
            restart_progress: url.clone(),
        }),
        account: DEFAULT_ACCOUNT.into(),
        info: None,
    };
    precheck(clients, &cluster).await
}

/// Accepts one connection, returns the raw request (head and body) and answers with `response`.
async fn capture_one(listener: TcpListener, response: String) -> String {
    let (mut sock, _) = listener.accept().await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.unwrap();
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + len {
                break;
            }
        }
        if n == 0 {
            break;
        }
    }
    sock.write_all(response.as_bytes()).await.unwrap();
    sock.shutdown().await.ok();
    String::from_utf8(buf).unwrap()
}

fn http_response(status: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn request_is_signed_exactly_as_ncp_api_md_says() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = r#"{"code":0,"message":"SUCCESS","result":true,"requestId":"req-1"}"#;
    let server = tokio::spawn(capture_one(
        listener,
        http_response("200 OK", "content-type: application/json\r\n", body),
    ));
    // Region SGN with an api_gateway override: the region path is still appended.
    let url = Url::parse(&format!(
        "http://{addr}/api/sgn-v1/cluster/rollingRestartPreCheck"
    ))
    .unwrap();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let p = precheck_at(&client(), &url, 3432149).await;
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let raw = server.await.unwrap();
    assert_eq!(p.outcome, Outcome::Ready);
    assert_eq!(p.meta.request_id.as_deref(), Some("req-1"));

    let (head, sent_body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    assert_eq!(
        lines.next().unwrap(),
        "POST /api/sgn-v1/cluster/rollingRestartPreCheck HTTP/1.1"
    );
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} header in\n{head}"))
    };
    let ts: u64 = get("x-ncp-apigw-timestamp").parse().unwrap();
    assert!(
        ts >= before && ts <= after,
        "timestamp {ts} is not milliseconds now"
    );
    assert_eq!(get("x-ncp-iam-access-key"), "AK-WIRE");
    assert_eq!(get("content-type"), "application/json");
    assert!(get("user-agent").starts_with("cdss-precheck-exporter/"));
    let expected = sign::sign(
        "SK-wire-secret",
        "POST",
        "/api/sgn-v1/cluster/rollingRestartPreCheck",
        ts,
        "AK-WIRE",
    );
    assert_eq!(get("x-ncp-apigw-signature-v2"), expected);
    // The same, from an implementation of the string to sign that shares no code with `sign`.
    assert_eq!(
        get("x-ncp-apigw-signature-v2"),
        ncp_signature(
            "SK-wire-secret",
            "POST",
            "/api/sgn-v1/cluster/rollingRestartPreCheck",
            ts,
            "AK-WIRE"
        )
    );
    assert_eq!(sent_body, r#"{"serviceGroupInstanceNo":3432149}"#);
    assert!(
        !raw.contains("SK-wire-secret"),
        "the secret itself never goes on the wire"
    );
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let elsewhere = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere_addr = elsewhere.local_addr().unwrap();
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "307 Temporary Redirect",
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let location = format!("location: http://{elsewhere_addr}/steal\r\n");
        let server = tokio::spawn(capture_one(listener, http_response(status, &location, "")));
        let url = Url::parse(&format!(
            "http://{addr}/api/v1/cluster/rollingRestartPreCheck"
        ))
        .unwrap();
        let p = precheck_at(&client(), &url, 1).await;
        server.await.unwrap();
        assert_eq!(
            p.outcome.failure_reason(),
            Some(FailureReason::HttpError),
            "{status}: {:?}",
            p.outcome
        );
        assert!(
            p.outcome.message().contains("not followed"),
            "{}",
            p.outcome.message()
        );
        assert_eq!(p.outcome.error_code(), -1);
    }
    // Nobody ever connected to the redirect target.
    let connected = tokio::time::timeout(Duration::from_millis(200), elsewhere.accept()).await;
    assert!(
        connected.is_err(),
        "the client followed a redirect to another host"
    );
}

#[tokio::test]
async fn gateway_request_id_header_is_kept_when_the_body_has_none() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(capture_one(
        listener,
        http_response(
            "503 Service Unavailable",
            "x-ncp-apigw-request-id: gw-42\r\n",
            "<html>down</html>",
        ),
    ));
    let url = Url::parse(&format!(
        "http://{addr}/api/v1/cluster/rollingRestartPreCheck"
    ))
    .unwrap();
    let p = precheck_at(&client(), &url, 1).await;
    server.await.unwrap();
    assert_eq!(p.meta.request_id.as_deref(), Some("gw-42"));
    assert_eq!(p.outcome.failure_reason(), Some(FailureReason::HttpError));
}

#[tokio::test]
async fn connection_refused_is_a_connection_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = Url::parse(&format!(
        "http://{addr}/api/v1/cluster/rollingRestartPreCheck"
    ))
    .unwrap();
    let p = precheck_at(&client(), &url, 1).await;
    assert_eq!(
        p.outcome.failure_reason(),
        Some(FailureReason::ConnectionError),
        "{:?}",
        p.outcome
    );
}
