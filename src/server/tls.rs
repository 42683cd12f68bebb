//! The TLS side of a connection: a plain-HTTP client on the TLS port gets a 400 that says so
//! (what Go's servers send), anything else a handshake bounded by a timeout.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::TLS_HANDSHAKE_TIMEOUT;

/// How long a plain-HTTP client on the TLS port may keep sending before it is cut off.
const PLAIN_HTTP_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);
/// The answer to a plain-HTTP request on the TLS port (what Go's servers send).
const PLAIN_HTTP_ON_TLS_PORT: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// The TLS handshake, bounded by [`TLS_HANDSHAKE_TIMEOUT`]. A client that speaks plain HTTP
/// instead gets a 400 that says so, then the connection is closed.
pub(super) async fn handshake(
    mut stream: TcpStream,
    acceptor: TlsAcceptor,
) -> Result<TlsStream<TcpStream>, String> {
    let handshake = async move {
        let mut first = [0u8; 1];
        if stream.peek(&mut first).await.map_err(|e| e.to_string())? == 0 {
            return Err("closed before the TLS handshake".to_string());
        }
        // 0x16 starts a TLS handshake record; a letter starts an HTTP method.
        if first[0].is_ascii_alphabetic() {
            let _ = stream.write_all(PLAIN_HTTP_ON_TLS_PORT).await;
            let _ = stream.shutdown().await;
            // Read what the client is still sending, so closing does not reset the connection
            // before it has read the answer.
            let mut sink = [0u8; 4096];
            let _ = tokio::time::timeout(PLAIN_HTTP_DRAIN, async {
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
            return Err("plain HTTP request on the TLS port".to_string());
        }
        acceptor.accept(stream).await.map_err(|e| e.to_string())
    };
    tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| "timed out".to_string())?
}
