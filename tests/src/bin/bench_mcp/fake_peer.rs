//! A stand-in for DOMShell's extension that speaks its wire protocol (peer spec §4:
//! `ws://127.0.0.1:<port>?token=<token>`, `HELLO`, `EXECUTE` → `RESULT`) and answers at once,
//! so `bench-mcp` measures DOMShell's server alone.
//!
//! It owns its socket (dropped with it) and must not reach anything but 127.0.0.1.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::Message;

/// What the lane-era extension (1.3.5, the newest the 2.0.10 server knows) announces.
const FAKE_HELLO: &str = r#"{"type":"HELLO","version":"1.3.5","capabilities":["grouping"]}"#;

/// What DOMShell sent the fake extension.
#[derive(Default)]
pub struct FakeStats {
    pub executes: AtomicU64,
    pub session_starts: AtomicU64,
    pub session_ends: AtomicU64,
    pub other: AtomicU64,
    pub ended: Mutex<Option<String>>,
}

/// A stand-in for DOMShell's extension (1.3.5): dials with `?token=`, says `HELLO`, answers
/// every `EXECUTE` at once with `RESULT {id, result: "~", groupId: null}`, ignores the rest.
/// Dropping it drops the socket.
pub struct Fake {
    pub stats: Arc<FakeStats>,
    task: AbortHandle,
}

impl Fake {
    pub async fn connect(ws_port: u16, token: &str) -> Result<Fake> {
        let url = format!("ws://127.0.0.1:{ws_port}/?token={token}");
        let (mut ws, _) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await
        .context("dialing DOMShell's extension socket timed out")?
        .context("dialing DOMShell's extension socket")?;
        ws.send(Message::Text(FAKE_HELLO.into()))
            .await
            .context("sending HELLO")?;
        let stats = Arc::new(FakeStats::default());
        let task = tokio::spawn(answer(ws, stats.clone())).abort_handle();
        Ok(Fake { stats, task })
    }

    /// Why the socket ended, if it did (e.g. close 4001 for a wrong token).
    pub fn ended(&self) -> Option<String> {
        self.stats
            .ended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    mut ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    stats: Arc<FakeStats>,
) {
    let end = |why: String| {
        *stats.ended.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    };
    while let Some(message) = ws.next().await {
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(frame)) => {
                end(format!("closed by DOMShell: {frame:?}"));
                return;
            }
            Ok(_) => continue,
            Err(e) => {
                end(format!("socket error: {e}"));
                return;
            }
        };
        let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
            stats.other.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        match frame["type"].as_str() {
            Some("EXECUTE") => {
                stats.executes.fetch_add(1, Ordering::Relaxed);
                // Answered inline, before the next frame is read: "at once".
                let reply =
                    json!({"type": "RESULT", "id": frame["id"], "result": "~", "groupId": null});
                if ws
                    .send(Message::Text(reply.to_string().into()))
                    .await
                    .is_err()
                {
                    end("socket closed while answering".into());
                    return;
                }
            }
            Some("SESSION_START") => {
                stats.session_starts.fetch_add(1, Ordering::Relaxed);
            }
            Some("SESSION_END") => {
                stats.session_ends.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                stats.other.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    end("socket ended".into());
}
