//! The degraded MCP responder: what a stdio host talks to while the bridge port is held by
//! something this process cannot attach to. It completes `initialize`, answers `ping`, lists
//! one diagnostic tool whose description states the problem, and answers every tool call
//! with `isError` and a structured explanation with ordered remediations, so the agent (and
//! the person behind it) learns what is wrong instead of seeing a bare failure.
//!
//! To the host it is one more backend behind the relay, so it answers `initialize` as the
//! owner's rmcp handler does: the same capabilities (tools with `listChanged`, logging) and
//! the same protocol negotiation ([`negotiate_protocol`]); a method it does not serve is
//! "method not found" (-32601), and notifications get no reply.
//!
//! It is pure: [`Conflict::answer`] maps a JSON-RPC message to the replies to send. It must
//! not retry anything itself; the relay heals in place when the port frees up.

use rmcp::model::{ErrorCode, ProtocolVersion};
use serde_json::{json, Value};

use crate::election::{Holder, OwnerInfo};

/// The protocol revision to answer an `initialize` asking for `requested` with, chosen as
/// rmcp's server chooses it for the owner (a handler that keeps rmcp's defaults): the
/// requested revision when rmcp knows it and it still has an `initialize` handshake, else
/// the handler's default revision if that has one, else the newest known revision that
/// does.
fn negotiate_protocol(requested: Option<&str>) -> ProtocolVersion {
    let known = ProtocolVersion::KNOWN_VERSIONS;
    if let Some(version) = known
        .iter()
        .find(|v| Some(v.as_str()) == requested && v.has_initialize())
    {
        return version.clone();
    }
    let preferred = ProtocolVersion::default();
    if preferred.has_initialize() {
        return preferred;
    }
    known
        .iter()
        .filter(|v| v.has_initialize())
        .max_by(|a, b| a.as_str().cmp(b.as_str()))
        .cloned()
        .unwrap_or(ProtocolVersion::LATEST_WITH_INITIALIZE)
}

/// Why this process can neither own the port nor attach to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// `port_in_use_foreign`, `owner_unresponsive`, `version_mismatch`,
    /// `port_held_unproven` or `owner_electing`.
    pub reason: &'static str,
    pub port: u16,
    pub holder_pid: Option<u64>,
    pub holder_version: Option<String>,
    /// One sentence: what is wrong.
    pub summary: String,
    /// What to do, in order.
    pub remediations: Vec<String>,
}

impl Conflict {
    /// The explanation for a holder that is not an owner this process can attach to.
    pub fn from_holder(holder: &Holder, port: u16) -> Self {
        let ours = env!("CARGO_PKG_VERSION");
        let info = |i: &OwnerInfo| (i.pid, i.version.clone());
        let other_port = "Or run this server on another port (--ws-port N, env DOMSHELL_WS_PORT) and set the same port in the extension options.".to_string();
        match holder {
            Holder::Incompatible(i) => {
                let (pid, version) = info(i);
                Self {
                    reason: "version_mismatch",
                    port,
                    holder_pid: pid,
                    holder_version: version.clone(),
                    summary: format!(
                        "Port {port} is held by domshell {} (pid {}) speaking protocol {}, which this domshell {ours} (protocol {}) cannot attach to.",
                        version.as_deref().unwrap_or("?"),
                        pid.map_or("?".into(), |p| p.to_string()),
                        i.protocol.map_or("?".into(), |p| p.to_string()),
                        shared_protocol::PROTOCOL_VERSION
                    ),
                    remediations: vec![
                        format!("Update the older of the two domshell installations (this one is {ours})."),
                        format!(
                            "Or stop the other server{} so this one can take over the port; it does so by itself within seconds.",
                            pid.map_or(String::new(), |p| format!(" (pid {p})"))
                        ),
                        other_port,
                    ],
                }
            }
            Holder::Unresponsive | Holder::Starting(_) => {
                let (pid, version) = match holder {
                    Holder::Starting(i) => info(i),
                    _ => (None, None),
                };
                Self {
                    reason: "owner_unresponsive",
                    port,
                    holder_pid: pid,
                    holder_version: version,
                    summary: format!(
                        "Port {port} accepts connections but its holder does not answer GET /health in time; it may be a stalled domshell."
                    ),
                    remediations: vec![
                        "Wait a few seconds: this server keeps checking and attaches or takes over as soon as it can.".into(),
                        format!("If it stays like this, stop the process that listens on port {port} (`ss -ltnp 'sport = :{port}'` shows it)."),
                        other_port,
                    ],
                }
            }
            Holder::Foreign { detail } => {
                Self {
                    reason: "port_in_use_foreign",
                    port,
                    holder_pid: None,
                    holder_version: None,
                    summary: format!(
                        "Port {port} is held by another program, not domshell ({detail})."
                    ),
                    remediations: vec![
                        format!("Stop the program that listens on port {port} (`ss -ltnp 'sport = :{port}'` shows it); this server takes the port over by itself within seconds."),
                        other_port,
                    ],
                }
            }
            Holder::Unproven { detail } => Self {
                reason: "port_held_unproven",
                port,
                holder_pid: None,
                holder_version: None,
                summary: format!(
                    "Port {port} is held by something that could not prove it is domshell: {detail}. Nothing was sent to it."
                ),
                remediations: vec![
                    format!("Find what listens on port {port} (`ss -ltnp 'sport = :{port}'`). If it is not domshell, stop it: this server takes the port over by itself within seconds."),
                    "If it is a domshell of another user or in a container, it cannot prove this user's relay key (the relay-key file next to the token): run the MCP host against it over HTTP with its MCP token instead, or give it this user's relay key file.".into(),
                    other_port.clone(),
                ],
            },
            Holder::Owner(_) | Holder::Gone => Self {
                reason: "owner_unresponsive",
                port,
                holder_pid: None,
                holder_version: None,
                summary: format!("Port {port} changed hands while this server was checking it."),
                remediations: vec![
                    "Wait a few seconds: this server keeps checking and attaches or takes over as soon as it can.".into(),
                ],
            },
        }
    }

    /// Why a host's `initialize` is answered before any backend took it: the relay is still
    /// electing (or waiting for a starting owner) after the longest it holds a request.
    pub fn electing(port: u16) -> Self {
        Self {
            reason: "owner_electing",
            port,
            holder_pid: None,
            holder_version: None,
            summary: format!(
                "This server is still connecting to the domshell server that owns port {port} (the previous one went away, or a new one is starting)."
            ),
            remediations: vec![
                "Wait a few seconds: this server attaches or takes over by itself, and tells the host when its tools change.".into(),
            ],
        }
    }

    /// The explanation as text: the summary and the numbered remediations.
    pub fn text(&self) -> String {
        let mut out = format!("domshell cannot reach the browser bridge: {}", self.summary);
        for (i, step) in self.remediations.iter().enumerate() {
            out.push_str(&format!("\n  {}. {step}", i + 1));
        }
        out
    }

    /// The structured explanation carried by tool results, errors and notifications.
    pub fn data(&self) -> Value {
        json!({
            "role": "degraded",
            "pid": std::process::id(),
            "reason": self.reason,
            "retryable": true,
            "port": self.port,
            "holder_pid": self.holder_pid,
            "holder_version": self.holder_version,
            "summary": self.summary,
            "remediations": self.remediations,
        })
    }

    fn tool(&self) -> Value {
        json!({
            "name": "domshell_status",
            "title": "domshell is unavailable",
            "description": format!(
                "domshell cannot reach the browser right now: {} Call this tool for the details and what to do.",
                self.summary
            ),
            "inputSchema": {"type": "object", "properties": {}, "additionalProperties": true},
            "annotations": {"readOnlyHint": true, "openWorldHint": false}
        })
    }

    /// The replies to one message from the host (none for notifications).
    pub fn answer(&self, message: &Value) -> Vec<Value> {
        let Some(method) = message.get("method").and_then(Value::as_str) else {
            // A response to a request of ours: we send none.
            return Vec::new();
        };
        let Some(id) = message.get("id").cloned() else {
            return match method {
                // Tell the host at once, in the log it shows, what is wrong.
                "notifications/initialized" => vec![self.log_notification()],
                _ => Vec::new(),
            };
        };
        let result = match method {
            "initialize" => {
                let requested = message
                    .pointer("/params/protocolVersion")
                    .and_then(Value::as_str);
                json!({
                    "protocolVersion": negotiate_protocol(requested).as_str(),
                    "capabilities": {"tools": {"listChanged": true}, "logging": {}},
                    "serverInfo": {"name": "domshell", "version": env!("CARGO_PKG_VERSION")},
                    "instructions": self.text(),
                })
            }
            "ping" | "logging/setLevel" => json!({}),
            "tools/list" => json!({"tools": [self.tool()]}),
            "tools/call" => json!({
                "content": [{"type": "text", "text": self.text()}],
                "structuredContent": self.data(),
                "isError": true,
            }),
            _ => {
                return vec![json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "error": {
                        "code": ErrorCode::METHOD_NOT_FOUND.0,
                        "message": format!("method not found: {method} (domshell is degraded: {})", self.summary),
                        "data": self.data(),
                    },
                })]
            }
        };
        vec![json!({"jsonrpc": "2.0", "id": id, "result": result})]
    }

    pub fn log_notification(&self) -> Value {
        json!({
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": {"level": "error", "logger": "domshell", "data": self.data()},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn foreign() -> Conflict {
        Conflict::from_holder(
            &Holder::Foreign {
                detail: "it does not speak HTTP".into(),
            },
            9876,
        )
    }

    #[test]
    fn initialize_ping_and_tools_are_answered_with_the_explanation() {
        let c = foreign();
        assert_eq!(c.reason, "port_in_use_foreign");
        let init = c.answer(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}));
        assert_eq!(init[0]["result"]["protocolVersion"], "2025-06-18");
        assert!(init[0]["result"]["instructions"]
            .as_str()
            .unwrap()
            .contains("port 9876"));
        let log = c.answer(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        assert_eq!(log[0]["params"]["level"], "error");
        assert_eq!(log[0]["params"]["data"]["reason"], "port_in_use_foreign");
        assert_eq!(
            c.answer(&json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}))[0]["result"],
            json!({})
        );
        let tools = c.answer(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}));
        let description = tools[0]["result"]["tools"][0]["description"]
            .as_str()
            .unwrap();
        assert!(description.contains("another program"), "{description}");
        let call = c.answer(&json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
            "params": {"name": "domshell_execute", "arguments": {"command": "tabs"}}}));
        assert_eq!(call[0]["result"]["isError"], true);
        let data = &call[0]["result"]["structuredContent"];
        assert_eq!(data["reason"], "port_in_use_foreign");
        assert_eq!(data["port"], 9876);
        assert!(data["remediations"].as_array().unwrap().len() >= 2);
        let other = c.answer(&json!({"jsonrpc": "2.0", "id": 5, "method": "resources/list"}));
        assert_eq!(other[0]["error"]["data"]["reason"], "port_in_use_foreign");
        assert!(c
            .answer(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled"}))
            .is_empty());
        assert_eq!(
            c.answer(
                &json!({"jsonrpc": "2.0", "id": 6, "method": "logging/setLevel",
                "params": {"level": "debug"}})
            )[0]["result"],
            json!({})
        );
    }

    #[test]
    fn initialize_negotiates_the_protocol_revision_as_rmcp_does() {
        let newest = ProtocolVersion::LATEST_WITH_INITIALIZE;
        let newest = newest.as_str();
        let table: &[(Option<Value>, &str)] = &[
            (Some(json!("2024-11-05")), "2024-11-05"),
            (Some(json!("2025-03-26")), "2025-03-26"),
            (Some(json!("2025-06-18")), "2025-06-18"),
            (Some(json!("2025-11-25")), "2025-11-25"),
            // Known, but without a handshake: there is nothing to agree to over initialize.
            (Some(json!("2026-07-28")), newest),
            (Some(json!("2099-01-01")), newest),
            (Some(json!("2023-01-01")), newest),
            (Some(json!("draft")), newest),
            (Some(json!(20250618)), newest),
            (None, newest),
        ];
        let c = foreign();
        for (requested, expected) in table {
            let mut params =
                json!({"capabilities": {}, "clientInfo": {"name": "t", "version": "1"}});
            if let Some(requested) = requested {
                params["protocolVersion"] = requested.clone();
            }
            let reply = c.answer(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}),
            );
            assert_eq!(
                reply[0]["result"]["protocolVersion"], *expected,
                "{requested:?}"
            );
        }
        // Every revision rmcp knows and can agree to over initialize is echoed.
        for version in ProtocolVersion::KNOWN_VERSIONS {
            let negotiated = negotiate_protocol(Some(version.as_str()));
            assert_eq!(
                negotiated == *version,
                version.has_initialize(),
                "{version}"
            );
            assert!(negotiated.has_initialize());
        }
    }

    #[test]
    fn unknown_requests_are_method_not_found_and_notifications_unanswered() {
        let c = foreign();
        for method in [
            "resources/list",
            "prompts/get",
            "completion/complete",
            "tasks/list",
            "x/y",
        ] {
            let reply = c.answer(&json!({"jsonrpc": "2.0", "id": "r", "method": method}));
            assert_eq!(reply.len(), 1, "{method}");
            assert_eq!(reply[0]["id"], "r");
            assert_eq!(reply[0]["error"]["code"], -32601, "{method}");
            assert!(reply[0]["error"]["message"]
                .as_str()
                .unwrap()
                .contains(method));
            assert!(reply[0].get("result").is_none());
        }
        for method in [
            "notifications/cancelled",
            "notifications/progress",
            "notifications/roots/list_changed",
            "notifications/whatever",
        ] {
            assert!(
                c.answer(&json!({"jsonrpc": "2.0", "method": method}))
                    .is_empty(),
                "{method}"
            );
        }
        // A response to a request of ours gets no reply either.
        assert!(c
            .answer(&json!({"jsonrpc": "2.0", "id": 9, "result": {}}))
            .is_empty());
    }

    #[test]
    fn an_incompatible_owner_is_a_version_mismatch_naming_it() {
        let c = Conflict::from_holder(
            &Holder::Incompatible(OwnerInfo {
                pid: Some(77),
                version: Some("9.9.9".into()),
                protocol: Some(99),
                state: Some("ready".into()),
            }),
            4000,
        );
        assert_eq!(c.reason, "version_mismatch");
        assert_eq!(c.holder_pid, Some(77));
        assert!(
            c.text().contains("9.9.9") && c.text().contains("pid 77"),
            "{}",
            c.text()
        );
        assert!(c.remediations[0].contains("Update"));
    }
}
