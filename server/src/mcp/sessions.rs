//! Shell sessions of MCP clients: one per MCP session, ended in the extension when the
//! session goes; for stateless (2026-07-28) clients, which have no session, one per client
//! identity, ended after an idle time.
//!
//! It owns the session keys the bridge runs commands under. It must not run commands.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rmcp::service::RequestContext;
use rmcp::RoleServer;
use serde::{Deserialize, Serialize};

use super::{DomshellMcp, McpShared};
use crate::policy::PolicyConfig;

/// `_meta` key of `initialize` under which an attaching domshell describes its host.
pub const HOST_META_KEY: &str = "dev.domshell/host";

/// What an attached host brings to its session on the owner: one shell-session key that
/// stays the same across owners (so cwd, tab and history survive a change of owner), the
/// rails its operator chose, and its audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMeta {
    pub shell_session: String,
    pub client_id: String,
    pub policy: PolicyConfig,
    #[serde(default)]
    pub audit_log: Option<PathBuf>,
}

impl HostMeta {
    /// The shell-session key: namespaced, and only characters that are safe in logs.
    pub fn session_key(&self) -> Option<String> {
        let ok = !self.shell_session.is_empty()
            && self.shell_session.len() <= 96
            && self
                .shell_session
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        ok.then(|| format!("host:{}", self.shell_session))
    }
}

/// One MCP session as the status document lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    pub client: String,
    /// `connecting` until the client confirmed initialization, then `active`.
    pub state: &'static str,
    pub since: String,
    /// The session's own rails when its host brought them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
}

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
    /// The shell-session key; an attached host may replace it with its stable one at
    /// `initialize`.
    pub(super) key: Mutex<String>,
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
        let key = std::mem::take(&mut *self.key.lock().unwrap_or_else(|p| p.into_inner()));
        self.shared.listeners().remove(&key);
        self.shared.registry().remove(&key);
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
            return self.session.key();
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

impl SessionGuard {
    pub(super) fn key(&self) -> String {
        self.key.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl DomshellMcp {
    /// At `initialize`: adopt what an attaching domshell says about its host (stable shell
    /// key, its rails) and list the session.
    pub(super) fn adopt_host(&self, context: &RequestContext<RoleServer>, client: String) {
        let host = context
            .meta
            .0
             .0
            .get(HOST_META_KEY)
            .and_then(|v| serde_json::from_value::<HostMeta>(v.clone()).ok());
        let mut policy = None;
        let mut client = client;
        if let Some(host) = host {
            if let Some(key) = host.session_key() {
                *self.session.key.lock().unwrap_or_else(|p| p.into_inner()) = key;
            }
            client = host.client_id.clone();
            let rails = self.shared.rails_for(&host);
            policy = Some(rails.policy.describe());
            *self.rails.lock().unwrap_or_else(|p| p.into_inner()) = Some(rails);
        }
        let key = self.session.key();
        self.shared.registry().insert(
            key,
            SessionInfo {
                client,
                state: "connecting",
                since: crate::policy::audit::rfc3339_utc(SystemTime::now()),
                policy,
            },
        );
    }

    pub(super) fn mark_active(&self) {
        if let Some(info) = self.shared.registry().get_mut(&self.session.key()) {
            info.state = "active";
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_session_keys_are_namespaced_and_clean() {
        let mut meta = HostMeta {
            shell_session: "stdio-4242-ab12".into(),
            client_id: "stdio-proxy/4242".into(),
            policy: PolicyConfig::default(),
            audit_log: None,
        };
        assert_eq!(meta.session_key().as_deref(), Some("host:stdio-4242-ab12"));
        for bad in ["", "a b", "x\ny", &"k".repeat(200)] {
            meta.shell_session = bad.to_string();
            assert_eq!(meta.session_key(), None, "{bad:?}");
        }
    }
}
