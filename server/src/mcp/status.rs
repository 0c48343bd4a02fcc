//! The status document: what `domshell_status` returns and `GET /health` serves — link
//! state and figures, sessions, versions, policy, and one line a person can act on when
//! something is wrong.
//!
//! It must never touch the browser: it reads the bridge's figures only.

use std::time::Duration;

use serde_json::{json, Value};

use super::McpShared;

impl McpShared {
    /// The status document: `/health`'s, plus every listed session.
    pub fn status(&self) -> Value {
        let mut status = self.health();
        if let Some(object) = status.as_object_mut() {
            object.insert("sessions".into(), Value::Object(self.sessions.listing()));
        }
        status
    }

    /// What `GET /health` serves: identity, state, link and policy — small by construction
    /// (no per-session data), so what clients send cannot make it large.
    pub fn health(&self) -> Value {
        let link = self.pipeline.bridge.health();
        let remediation = remediation(&link, self.config.bridge_port);
        let connected_since = link.connected_for_ms.map(|ms| {
            crate::policy::audit::rfc3339_utc(
                std::time::SystemTime::now() - Duration::from_millis(ms),
            )
        });
        json!({
            "name": "domshell",
            "server_version": env!("CARGO_PKG_VERSION"),
            "protocol": shared_protocol::PROTOCOL_VERSION,
            "relay_protocol": shared_protocol::RELAY_PROTOCOL_VERSION,
            "pid": std::process::id(),
            "role": "owner",
            "state": self.state().as_str(),
            "started_at": crate::policy::audit::rfc3339_utc(self.started_at_wall),
            "transport": self.config.transport,
            "uptime_ms": self.started_at.elapsed().as_millis() as u64,
            "bridge_port": self.config.bridge_port,
            "link": link,
            "connected_since": connected_since,
            "mcp_sessions": self.mcp_sessions(),
            "policy": self.pipeline.policy.describe(),
            "remediation": remediation,
        })
    }
}

/// One line a person can act on, or `None` when all is well.
fn remediation(link: &crate::bridge::LinkHealth, port: u16) -> Option<String> {
    use shared_protocol::link::LinkState;
    match link.state {
        LinkState::Connected => None,
        LinkState::Silent => Some(format!(
            "The extension has been quiet for {} ms; the link is being verified and is replaced automatically if it is dead.",
            link.last_inbound_age_ms.unwrap_or(0)
        )),
        _ if link.rejected_tokens > 0 && link.reconnect_count == 0 && link.last_disconnect_reason.is_none() => Some(
            "An extension tried to connect with a wrong token: run `domshell token` and paste the output into the extension's options.".into(),
        ),
        _ => match &link.last_disconnect_reason {
            Some(reason) => Some(format!(
                "The extension disconnected ({reason}); it normally reconnects within seconds. If not, check that Chrome is running and the domshell extension is enabled."
            )),
            None => Some(format!(
                "No browser extension has connected yet: load the domshell extension in Chrome (chrome://extensions → Load unpacked), open its options, paste the token from `domshell token` and set port {port}."
            )),
        },
    }
}
