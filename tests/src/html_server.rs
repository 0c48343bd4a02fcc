//! A minimal HTTP server for pages the tests and benchmarks make: it answers each GET with
//! what a function gives for the request's path and query (HTML), or a 404, and closes the
//! connection.
//!
//! It owns nothing but its listener and per-connection tasks (they end with the runtime). It
//! must bind loopback addresses only, and it parses no more of a request than its target.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The most of a request's head that is read.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Serves `page(target)` (the request's path and query) on `ip` (a loopback address), on an
/// ephemeral port.
pub async fn serve<F>(ip: &str, page: F) -> Result<SocketAddr>
where
    F: Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static,
{
    let listener = TcpListener::bind((ip, 0))
        .await
        .with_context(|| format!("binding a page server on {ip}"))?;
    let addr = listener.local_addr()?;
    let page = Arc::new(page);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let page = page.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; MAX_HEAD_BYTES];
                let mut len = 0;
                while len < buf.len() {
                    match socket.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let request = String::from_utf8_lossy(&buf[..len]);
                let target = request.split_whitespace().nth(1).unwrap_or("/");
                let response = match page(target) {
                    Some(body) => {
                        let mut head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        head.extend(body);
                        head
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Ok(addr)
}
