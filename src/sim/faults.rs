//! Faults below HTTP: a raw TCP responder for what a well-behaved HTTP server library cannot be
//! made to do (reset mid-body, trickle, headers that never end, a 2 GB `Content-Length`, a
//! chunked body that never ends). Tests point a cluster's `api_gateway` at it.
//!
//! It reads one request (head and body), picks the fault for the request's
//! `serviceGroupInstanceNo`, and misbehaves. It does not check signatures: the HTTP simulator
//! does that; this one only breaks the transport. Every loop here is bounded in time and bytes,
//! so nothing runs on once a test is over.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The longest any fault keeps a connection busy.
pub const MAX_FAULT_TIME: Duration = Duration::from_secs(30);
/// The most bytes any fault writes.
const MAX_FAULT_BYTES: usize = 64 * 1024 * 1024;

/// What the responder does for one cluster number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpFault {
    /// A correct `code 0, result true` answer (to show recovery).
    Healthy,
    /// Headers promise 300 bytes; 40 arrive, then a TCP reset.
    ResetMidBody,
    /// A 60-byte body, one byte per second.
    Trickle,
    /// A status line, then one more header line every 200 ms, never the blank line.
    HeadersNeverEnd,
    /// `Content-Length: 2000000000`, a little data, then silence.
    HugeContentLength,
    /// `Transfer-Encoding: chunked`, 64 KiB chunks, never the last chunk.
    ChunkedForever,
}

/// A running fault responder.
#[derive(Debug)]
pub struct FaultServer {
    addr: SocketAddr,
    faults: Arc<Mutex<HashMap<u64, TcpFault>>>,
    task: JoinHandle<()>,
}

impl FaultServer {
    /// Serves on `listener` until dropped; unknown cluster numbers get `Healthy`.
    pub fn start(listener: TcpListener) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let faults: Arc<Mutex<HashMap<u64, TcpFault>>> = Arc::default();
        let table = faults.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let table = table.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(MAX_FAULT_TIME, serve(sock, table)).await;
                });
            }
        });
        Ok(Self { addr, faults, task })
    }

    /// `http://127.0.0.1:PORT`, for `api_gateway`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets the fault for a cluster number.
    pub fn set(&self, instance_no: u64, fault: TcpFault) {
        crate::lock::lock(&self.faults).insert(instance_no, fault);
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request; returns its `serviceGroupInstanceNo` if the body has one.
async fn read_request(sock: &mut TcpStream) -> Option<u64> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 64 * 1024 {
            return None;
        }
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if buf.len() >= end + 4 + len {
            let body = &buf[end + 4..end + 4 + len];
            return serde_json::from_slice::<serde_json::Value>(body)
                .ok()?
                .get("serviceGroupInstanceNo")?
                .as_u64();
        }
    }
}

async fn serve(mut sock: TcpStream, table: Arc<Mutex<HashMap<u64, TcpFault>>>) {
    let Some(no) = read_request(&mut sock).await else {
        return;
    };
    let fault = crate::lock::lock(&table)
        .get(&no)
        .copied()
        .unwrap_or(TcpFault::Healthy);
    let _ = misbehave(&mut sock, fault).await;
}

async fn misbehave(sock: &mut TcpStream, fault: TcpFault) -> std::io::Result<()> {
    match fault {
        TcpFault::Healthy => {
            let body =
                r#"{"code":0,"message":"SUCCESS","result":true,"requestId":"fault-healthy"}"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(body.as_bytes()).await?;
            sock.shutdown().await
        }
        TcpFault::ResetMidBody => {
            sock.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 300\r\n\r\n",
            )
            .await?;
            sock.write_all(br#"{"code":0,"message":"SUCCESS","result":"#)
                .await?;
            sock.flush().await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
            // Linger 0: closing sends RST instead of FIN.
            sock.set_zero_linger()
        }
        TcpFault::Trickle => {
            let body = br#"{"code":0,"message":"SUCCESS","result":true,"requestId":"t"}"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            sock.write_all(head.as_bytes()).await?;
            for b in body {
                sock.write_all(&[*b]).await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok(())
        }
        TcpFault::HeadersNeverEnd => {
            sock.write_all(b"HTTP/1.1 200 OK\r\n").await?;
            loop {
                sock.write_all(b"x-still-coming: 1\r\n").await?;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        TcpFault::HugeContentLength => {
            sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2000000000\r\n\r\n").await?;
            sock.write_all(&[b' '; 1024]).await?;
            tokio::time::sleep(MAX_FAULT_TIME).await;
            Ok(())
        }
        TcpFault::ChunkedForever => {
            sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n").await?;
            let chunk = vec![b' '; 64 * 1024];
            let mut written = 0;
            while written < MAX_FAULT_BYTES {
                sock.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                sock.write_all(&chunk).await?;
                sock.write_all(b"\r\n").await?;
                written += chunk.len();
            }
            Ok(())
        }
    }
}
