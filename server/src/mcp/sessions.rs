//! Shell sessions of MCP clients: one per MCP session, ended in the extension when the
//! session goes; for stateless (2026-07-28) clients, which have no session, one per client
//! identity, ended after an idle time.
//!
//! It owns the session keys the bridge runs commands under. It must not run commands.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rmcp::service::RequestContext;
use rmcp::RoleServer;

use super::{DomshellMcp, McpShared};

/// End the shell sessions of stateless clients that stopped calling, so nothing accumulates
/// in the extension.
pub(super) async fn reap_idle_stateless_sessions(shared: std::sync::Weak<McpShared>) {
    let period = match shared.upgrade() {
        Some(s) => (s.config.session_idle_ttl / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(60)),
        None => return,
    };
    loop {
        tokio::time::sleep(period).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let ttl = shared.config.session_idle_ttl;
        let idle: Vec<String> = {
            let mut map = shared.stateless.lock().unwrap_or_else(|p| p.into_inner());
            let idle: Vec<String> = map
                .iter()
                .filter(|(_, last)| last.elapsed() >= ttl)
                .map(|(k, _)| k.clone())
                .collect();
            for key in &idle {
                map.remove(key);
            }
            idle
        };
        for key in idle {
            tracing::info!(session = %key, "ending idle shell session");
            shared
                .pipeline
                .bridge
                .close_session(&key, Duration::ZERO)
                .await;
        }
    }
}

/// Ends the shell session in the extension when the last handle of an MCP session goes.
pub(super) struct SessionGuard {
    pub(super) key: String,
    pub(super) shared: Arc<McpShared>,
    pub(super) counted: AtomicBool,
    /// A command ran in this session's own shell session, so the extension has state to drop.
    /// Handlers of stateless requests (one per request) never do.
    pub(super) used: AtomicBool,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.counted.load(Ordering::SeqCst) {
            self.shared.sessions.fetch_sub(1, Ordering::SeqCst);
        }
        let bridge = self.shared.pipeline.bridge.clone();
        let key = std::mem::take(&mut self.key);
        self.shared.listeners().remove(&key);
        if !self.used.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { bridge.close_session(&key, Duration::ZERO).await });
        }
    }
}

impl DomshellMcp {
    /// The shell session a call runs in: this MCP session's, or for stateless (2026-07-28)
    /// requests, which have no session, one per client identity.
    pub(super) fn session_key(&self, context: &RequestContext<RoleServer>) -> String {
        // From 2026-07-28 on there is no initialize and no session: each request says its own
        // protocol version in `_meta`.
        let stateless = context
            .meta
            .protocol_version()
            .is_some_and(|version| !version.has_initialize());
        if !stateless {
            self.session.used.store(true, Ordering::SeqCst);
            return self.session.key.clone();
        }
        let client = context
            .client_info()
            .map(|info| format!("{}/{}", info.name, info.version))
            .unwrap_or_else(|| "anonymous".into());
        let key = format!("client:{client}");
        self.shared.touch_stateless(&key);
        key
    }
}
