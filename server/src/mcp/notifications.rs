//! Logging notifications to MCP clients about the extension link: when it drops and
//! when it returns, to every client that enabled logging at a level that includes them.
//!
//! It owns the listener registry. It must not change the link; it only reports it.

use std::sync::{Arc, Mutex};

use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::{Peer, RoleServer};
use serde_json::json;

use super::McpShared;
use crate::bridge::LinkEvent;

/// A connected client that wants log notifications at `level` or above.
pub(super) struct LogListener {
    pub(super) peer: Peer<RoleServer>,
    pub(super) level: Arc<Mutex<LoggingLevel>>,
}

/// Send link changes to every client that asked for log messages.
pub(super) async fn forward_link_events(
    shared: std::sync::Weak<McpShared>,
    mut events: tokio::sync::broadcast::Receiver<LinkEvent>,
) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let (level, data) = match event {
            LinkEvent::Up {
                extension_version,
                reconnects,
            } => (
                LoggingLevel::Info,
                json!({"event": "extension_connected", "extension_version": extension_version, "reconnects": reconnects}),
            ),
            LinkEvent::Down { reason } => (
                LoggingLevel::Warning,
                json!({"event": "extension_disconnected", "reason": reason,
                       "hint": "The extension reconnects by itself; commands wait briefly for it."}),
            ),
        };
        let targets: Vec<(String, u64, Peer<RoleServer>)> = shared
            .sessions
            .listeners()
            .iter()
            .filter(|(_, (_, l))| {
                level_at_least(level, *l.level.lock().unwrap_or_else(|p| p.into_inner()))
            })
            .map(|(key, (gen, l))| (key.clone(), *gen, l.peer.clone()))
            .collect();
        for (key, gen, peer) in targets {
            let param =
                LoggingMessageNotificationParam::new(level, data.clone()).with_logger("domshell");
            if peer.notify_logging_message(param).await.is_err() {
                // Closed transport: forget it.
                shared
                    .sessions
                    .listeners()
                    .retain(|k, (g, _)| !(k == &key && *g == gen));
            }
        }
    }
}

fn level_rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

fn level_at_least(level: LoggingLevel, threshold: LoggingLevel) -> bool {
    level_rank(level) >= level_rank(threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_are_ordered() {
        assert!(level_at_least(LoggingLevel::Warning, LoggingLevel::Info));
        assert!(!level_at_least(LoggingLevel::Info, LoggingLevel::Warning));
        assert!(level_at_least(LoggingLevel::Emergency, LoggingLevel::Debug));
    }
}
