//! The in-process backend: after this process won the port, the relay talks to its own MCP
//! handler over an in-memory pipe, so the host that was attached through it keeps the same
//! stdio conversation while its server changed from proxy to owner.
//!
//! It must not own the services it talks to; [`super::OwnerStarter`] started them.

use std::sync::Arc;

use rmcp::ServiceExt;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Event, Gen};
use crate::mcp::{DomshellMcp, McpShared};
use crate::relay_door::RelayGrant;

/// Largest JSON-RPC line buffered in the pipe before the writer waits.
const PIPE_BYTES: usize = 1 << 20;

pub struct Local {
    to_server: mpsc::UnboundedSender<Value>,
}

impl Local {
    pub fn start(
        gen: Gen,
        shared: Arc<McpShared>,
        grant: RelayGrant,
        events: mpsc::UnboundedSender<Event>,
        shutdown: CancellationToken,
    ) -> Self {
        let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
        let (server_read, server_write) = tokio::io::split(theirs);
        let (our_read, mut our_write) = tokio::io::split(ours);
        let server_events = events.clone();
        tokio::spawn(async move {
            // The host keeps its shell session (`host:<identity>`) and its rails here too.
            let handler = DomshellMcp::for_own_host(shared, grant);
            match handler
                .serve_with_ct((server_read, server_write), shutdown)
                .await
            {
                Ok(service) => {
                    let _ = service.waiting().await;
                }
                Err(e) => {
                    let _ = server_events.send(Event::BackendLost(
                        gen,
                        format!("the in-process MCP service did not start: {e}"),
                    ));
                }
            }
        });
        let (to_server, mut outbox) = mpsc::unbounded_channel::<Value>();
        tokio::spawn(async move {
            while let Some(message) = outbox.recv().await {
                let mut line = message.to_string();
                line.push('\n');
                if our_write.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        tokio::spawn(async move {
            let mut lines = BufReader::new(our_read).lines();
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) => match serde_json::from_str::<Value>(&line) {
                        Ok(message) => {
                            let _ = events.send(Event::FromBackend(gen, message));
                        }
                        Err(e) => tracing::warn!("in-process MCP wrote a non-JSON line: {e}"),
                    },
                    Ok(None) | Err(_) => {
                        let _ = events.send(Event::BackendLost(
                            gen,
                            "the in-process MCP service ended".into(),
                        ));
                        return;
                    }
                }
            }
        });
        Self { to_server }
    }

    pub fn send(&self, message: Value) {
        let _ = self.to_server.send(message);
    }
}
