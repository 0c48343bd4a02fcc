//! The in-process backend: after this process won the port, the relay talks to its own MCP
//! handler over an in-memory pipe, so the host that was attached through it keeps the same
//! stdio conversation while its server changed from proxy to owner.
//!
//! It owns the pipe, its one writer (fed by a bounded queue, [`WRITER_QUEUE`], in order) and
//! its reader; dropping it ends the handler's session. It must not own the services it talks
//! to; [`super::OwnerStarter`] started them.

use std::sync::Arc;

use rmcp::ServiceExt;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::core::{Event, Gen};
use super::Inbox;
use crate::mcp::{DomshellMcp, McpShared};
use crate::relay_door::RelayGrant;

/// Largest JSON-RPC line buffered in the pipe before the writer waits.
const PIPE_BYTES: usize = 1 << 20;
/// Messages queued for the in-process handler before the relay is told the queue is full.
pub const WRITER_QUEUE: usize = 256;

pub struct Local {
    gen: Gen,
    queue: mpsc::Sender<Value>,
    _stop: DropGuard,
}

impl Local {
    pub fn start(
        gen: Gen,
        shared: Arc<McpShared>,
        grant: RelayGrant,
        inbox: Inbox,
        shutdown: CancellationToken,
    ) -> Self {
        let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
        let (server_read, server_write) = tokio::io::split(theirs);
        let (our_read, mut our_write) = tokio::io::split(ours);
        let server_inbox = inbox.clone();
        let session = shutdown.clone();
        tokio::spawn(async move {
            // The host keeps its shell session (`host:<identity>`) and its rails here too.
            let handler = DomshellMcp::for_own_host(shared, grant);
            match handler
                .serve_with_ct((server_read, server_write), session)
                .await
            {
                Ok(service) => {
                    let _ = service.waiting().await;
                }
                Err(e) => {
                    let _ = server_inbox
                        .send(Event::BackendLost(
                            gen,
                            format!("the in-process MCP service did not start: {e}"),
                        ))
                        .await;
                }
            }
        });
        let (queue, mut messages) = mpsc::channel::<Value>(WRITER_QUEUE);
        let writer_stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    _ = writer_stop.cancelled() => return,
                    next = messages.recv() => match next {
                        Some(message) => message,
                        None => return,
                    },
                };
                let mut line = message.to_string();
                line.push('\n');
                if our_write.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        let reader_stop = shutdown.clone();
        tokio::spawn(async move {
            let read = async move {
                let mut lines = BufReader::new(our_read).lines();
                loop {
                    match lines.next_line().await {
                        Ok(Some(line)) => match serde_json::from_str::<Value>(&line) {
                            Ok(message) => {
                                let _ = inbox.send(Event::FromBackend(gen, message)).await;
                            }
                            Err(e) => tracing::warn!("in-process MCP wrote a non-JSON line: {e}"),
                        },
                        Ok(None) | Err(_) => {
                            let _ = inbox
                                .send(Event::BackendLost(
                                    gen,
                                    "the in-process MCP service ended".into(),
                                ))
                                .await;
                            return;
                        }
                    }
                }
            };
            tokio::select! {
                _ = reader_stop.cancelled() => {}
                _ = read => {}
            }
        });
        Self {
            gen,
            queue,
            _stop: shutdown.drop_guard(),
        }
    }

    pub fn gen(&self) -> Gen {
        self.gen
    }

    /// Queue one message for the handler; never waits: a full queue is the caller's to report.
    pub fn send(&self, message: Value) -> Result<(), TrySendError<Value>> {
        self.queue.try_send(message)
    }
}
