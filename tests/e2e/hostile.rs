//! Hostile clients of our own endpoints, driven with raw TCP against the real binary (`--demo`):
//! slowloris, oversized heads, a flood of idle connections, odd methods and paths. The exporter
//! must cut them off and keep serving everyone else.

use std::io::{Read, Write};

use crate::support::{Process, exporter_command};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Exporter {
    process: Process,
    addr: String,
}

impl Exporter {
    fn start() -> Self {
        let process = Process::spawn(exporter_command(&[
            "--demo",
            "--web.listen-address",
            "127.0.0.1:0",
        ]));
        let addr = process.addr.clone();
        Self { process, addr }
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.process.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn get(&self, path: &str) -> (u16, String) {
        raw(
            &self.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
    }
}

/// Sends `request` as is; returns the status (0 when the server closed without one) and body.
fn raw(addr: &str, request: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    if s.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn slowloris_is_cut_off_and_others_are_served_meanwhile() {
    let e = Exporter::start();
    let mut slow = TcpStream::connect(&e.addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    // Others are served while the slow client dawdles.
    assert_eq!(e.get("/-/healthy").0, 200);
    slow.set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    let mut buf = Vec::new();
    let read = slow.read_to_end(&mut buf);
    let waited = started.elapsed();
    // The header read timeout is 10 s; the upper bound leaves room for a loaded machine and
    // stays well below the 40 s at which the client would give up by itself.
    assert!(
        waited >= Duration::from_secs(9) && waited < Duration::from_secs(30),
        "cut off after {waited:?}"
    );
    // Cut off: the server closes the connection without an answer (hyper sends no 408).
    assert!(read.is_ok(), "closed, not timed out on our side: {read:?}");
    let text = String::from_utf8_lossy(&buf);
    assert!(buf.is_empty(), "{text}");
}

#[test]
fn oversized_heads_and_odd_requests_are_refused() {
    let e = Exporter::start();
    let huge_header = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100_000)
    );
    let (status, _) = raw(&e.addr, &huge_header);
    assert_eq!(status, 431, "a 100 kB header");
    let huge_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000));
    let (status, _) = raw(&e.addr, &huge_uri);
    // hyper counts the request line into the same head limit.
    assert_eq!(status, 431, "a 100 kB URI");
    assert_eq!(
        raw(
            &e.addr,
            "BREW /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .0,
        405
    );
    assert_eq!(
        raw(
            &e.addr,
            "DELETE /-/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .0,
        405
    );
    assert_eq!(
        raw(
            &e.addr,
            "GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .0,
        404
    );
    assert_eq!(raw(&e.addr, "GET /gate/orders-kafka%2F..%2F..%2Fmetrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").0, 404);
    assert_eq!(
        raw(
            &e.addr,
            "GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .0,
        404
    );
    assert_eq!(raw(&e.addr, "this is not http\r\n\r\n").0, 400);
    // Still healthy after all that.
    assert_eq!(e.get("/-/healthy").0, 200);
}

#[test]
fn a_flood_of_idle_connections_is_capped_and_drained() {
    let e = Exporter::start();
    let before = e.fds();
    let idle: Vec<TcpStream> = (0..600)
        .filter_map(|_| TcpStream::connect(&e.addr).ok())
        .collect();
    assert!(idle.len() >= 590, "only {} connections opened", idle.len());
    // Wait until the exporter has accepted up to its cap (an event: its fd count), so the cap
    // is really exercised, then give it time to accept more if it would.
    let deadline = Instant::now() + Duration::from_secs(30);
    while e.fds() < before + 500 {
        assert!(
            Instant::now() < deadline,
            "the exporter accepted only {} of 600 (fds {} → {})",
            e.fds() - before,
            before,
            e.fds()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let during = e.fds();
    // At most MAX_CONNECTIONS (512) are accepted; the rest wait in the kernel's queue.
    assert!(
        during <= before + 512 + 32, // the demo's own prechecks hold a few sockets (both ends)
        "{during} fds with 600 idle connections (was {before})"
    );
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(30);
    while e.fds() > before + 32 {
        assert!(
            Instant::now() < deadline,
            "connections were not released: {} fds",
            e.fds()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(e.get("/metrics").0, 200);
}
