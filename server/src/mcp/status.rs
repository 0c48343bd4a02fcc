//! The status document: what `domshell_status` returns and `GET /health` serves — link
//! state and figures, sessions, versions, policy, and one line a person can act on when
//! something is wrong.
//!
//! It also owns [`status_schema`], the JSON Schema `domshell_status` declares as its
//! `outputSchema`: clients may check the document against it, so the two change together.
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
            // With who owns each and what it ran last: MCP callers hold the token.
            let lanes = self.pipeline.bridge.lanes();
            object.insert("lanes".into(), json!(lanes));
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
            // Counts only: `/health` answers anyone on loopback.
            "lanes": self.pipeline.bridge.lanes().iter().map(|l| json!({
                "id": l.id,
                "name": l.name,
                "sessions": l.sessions,
                "tabs": l.tabs,
                "age_ms": l.age_ms,
            })).collect::<Vec<_>>(),
            "policy": self.pipeline.policy.describe(),
            "remediation": remediation,
        })
    }
}

/// The JSON Schema of the status document. Objects stay open (no `additionalProperties:
/// false`) so fields can be added without breaking clients, and a relaying domshell adds
/// `this_process`.
pub(super) fn status_schema() -> Value {
    let string = json!({"type": "string"});
    let integer = json!({"type": "integer", "minimum": 0});
    let nullable =
        |kind: &str, description: &str| json!({"type": [kind, "null"], "description": description});
    let policy = json!({
        "type": "object",
        "description": "The rails: which tiers are allowed and where navigation may go (empty domains: anywhere).",
        "properties": {
            "allow_write": {"type": "boolean"},
            "allow_sensitive": {"type": "boolean"},
            "domains": {"type": "array", "items": string},
        },
        "required": ["allow_write", "allow_sensitive", "domains"],
    });
    json!({
        "type": "object",
        "properties": {
            "name": string,
            "server_version": string,
            "protocol": {"type": "integer", "minimum": 0, "description": "Version of the server-extension protocol."},
            "relay_protocol": {"type": "integer", "minimum": 0, "description": "Version of the handshake by which other domshell servers of this user attach as relays."},
            "pid": integer,
            "role": {"type": "string", "description": "What the answering process is: `owner` of the bridge port."},
            "state": {"type": "string", "description": "`starting`, `ready` or `draining`."},
            "started_at": {"type": "string", "description": "RFC 3339, UTC."},
            "transport": string,
            "uptime_ms": integer,
            "bridge_port": integer,
            "link": {
                "type": "object",
                "description": "The extension link and its figures.",
                "properties": {
                    "state": {"type": "string", "description": "`connected`, `silent`, `waiting`, …"},
                    "connected_for_ms": nullable("integer", "Age of the current connection."),
                    "last_inbound_age_ms": nullable("integer", "Time since the extension was last heard."),
                    "last_rtt_ms": nullable("integer", "Last heartbeat round trip."),
                    "reconnect_count": integer,
                    "extension_version": nullable("string", "Version of the connected extension."),
                    "last_disconnect_reason": nullable("string", "Why the last connection ended."),
                    "pending_requests": integer,
                    "malformed_frames": integer,
                    "rejected_tokens": integer,
                    "throttled_handshakes": integer,
                    "rtt_p95_ms": nullable("integer", "95th percentile of recent heartbeat round trips."),
                    "shell_sessions": integer,
                    "ping_interval_ms": integer,
                    "silence_limit_ms": integer,
                },
                "required": [
                    "state", "connected_for_ms", "last_inbound_age_ms", "last_rtt_ms",
                    "reconnect_count", "extension_version", "last_disconnect_reason",
                    "pending_requests", "malformed_frames", "rejected_tokens",
                    "throttled_handshakes", "rtt_p95_ms", "shell_sessions",
                    "ping_interval_ms", "silence_limit_ms",
                ],
            },
            "connected_since": nullable("string", "RFC 3339 start of the current connection."),
            "mcp_sessions": integer,
            "sessions": {
                "type": "object",
                "description": "MCP sessions by session key.",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "client": string,
                        "state": {"type": "string", "description": "`connecting` or `active`."},
                        "since": string,
                        "policy": policy,
                    },
                    "required": ["client", "state", "since"],
                },
            },
            "lanes": {
                "type": "array",
                "description": "Agents' lanes (tab groups) open in the browser, as the extension last reported them; empty without an extension. `/health` leaves out `owner`, `agent` and `last_command`.",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "description": "The lane id agents pass as `group_id`."},
                        "name": string,
                        "owner": {"type": "string", "description": "Session key of the session that made it (see `sessions`)."},
                        "agent": {"type": "string", "description": "The MCP client (`name/version`) that made it; `person` for a lane made from the browser's side panel."},
                        "sessions": integer,
                        "tabs": integer,
                        "age_ms": integer,
                        "last_command": {"type": "string", "description": "The name of the last command run in it, without its arguments."},
                    },
                    "required": ["id", "name", "sessions", "tabs", "age_ms"],
                },
            },
            "policy": policy,
            "remediation": nullable("string", "What a person should do, when something is wrong."),
            "this_process": {
                "type": "object",
                "description": "Added by a relaying domshell: the process that relayed the answer.",
            },
        },
        "required": [
            "name", "server_version", "protocol", "relay_protocol", "pid", "role", "state", "started_at",
            "transport", "uptime_ms", "bridge_port", "link", "connected_since",
            "mcp_sessions", "sessions", "lanes", "policy", "remediation",
        ],
    })
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

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;

    use shared_protocol::frame::Secret;
    use shared_protocol::link::LinkState;

    use super::*;
    use crate::bridge::{Bridge, BridgeConfig, LinkHealth};
    use crate::mcp::sessions::SessionInfo;
    use crate::mcp::McpConfig;
    use crate::policy::{Policy, PolicyConfig};

    /// State shared by MCP sessions, over a bridge no extension connects to. Needs a runtime.
    pub(in crate::mcp) fn test_shared(policy: PolicyConfig) -> Arc<McpShared> {
        let bridge = Bridge::new(BridgeConfig {
            token: Secret("0123456789abcdef0123456789abcdef".into()),
            ping_interval: Duration::from_millis(100),
            silence_limit: Duration::from_millis(300),
            connect_grace: Duration::from_millis(50),
            command_timeout: Duration::from_millis(500),
            max_frame_bytes: 1024,
            hello_timeout: Duration::from_millis(100),
            origins: crate::auth::OriginPolicy::new(&[]),
        });
        McpShared::new(
            bridge,
            Policy::new(policy),
            None,
            McpConfig {
                call_budget: Duration::from_secs(1),
                progress_interval: Duration::from_millis(100),
                session_idle_ttl: Duration::from_secs(60),
                transport: "stdio",
                bridge_port: 9876,
            },
        )
    }

    fn type_matches(kind: &str, value: &Value) -> bool {
        match kind {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64(),
            other => panic!("unknown JSON Schema type {other:?}"),
        }
    }

    /// Where `value` breaks `schema`, for the subset of JSON Schema the status schema uses;
    /// any other keyword fails the test rather than being ignored.
    fn violations(schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
        let Some(schema) = schema.as_object() else {
            panic!("{at}: a schema must be an object");
        };
        for keyword in schema.keys() {
            assert!(
                [
                    "type",
                    "description",
                    "minimum",
                    "properties",
                    "required",
                    "additionalProperties",
                    "items"
                ]
                .contains(&keyword.as_str()),
                "{at}: the test validator does not know {keyword:?}"
            );
        }
        if let Some(kind) = schema.get("type") {
            let kinds: Vec<&str> = match kind {
                Value::String(kind) => vec![kind.as_str()],
                Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
                other => panic!("{at}: bad type {other}"),
            };
            if !kinds.iter().any(|kind| type_matches(kind, value)) {
                out.push(format!("{at}: {value} is not {kinds:?}"));
                return;
            }
        }
        if let (Some(minimum), Some(number)) = (
            schema.get("minimum").and_then(Value::as_f64),
            value.as_f64(),
        ) {
            if number < minimum {
                out.push(format!("{at}: {number} is below {minimum}"));
            }
        }
        if let Some(object) = value.as_object() {
            for key in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !object.contains_key(key) {
                    out.push(format!("{at}: {key:?} is missing"));
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            for (key, item) in object {
                let at = format!("{at}.{key}");
                match (
                    properties.and_then(|p| p.get(key)),
                    schema.get("additionalProperties"),
                ) {
                    (Some(sub), _) => violations(sub, item, &at, out),
                    (None, Some(Value::Bool(false))) => out.push(format!("{at}: not allowed")),
                    (None, Some(sub @ Value::Object(_))) => violations(sub, item, &at, out),
                    (None, _) => {}
                }
            }
        }
        if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
            for (i, item) in array.iter().enumerate() {
                violations(items, item, &format!("{at}[{i}]"), out);
            }
        }
    }

    fn check(value: &Value) -> Vec<String> {
        let mut out = Vec::new();
        violations(&status_schema(), value, "$", &mut out);
        out
    }

    /// Keys of `value` the schema does not describe: open objects would let them through
    /// unchecked, so a field added to the document must be added to the schema too. An
    /// object schema with neither `properties` nor `additionalProperties` is opaque on
    /// purpose (`this_process` belongs to the relay).
    fn undescribed(schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
        let Some(object) = value.as_object() else {
            return;
        };
        if schema.get("properties").is_none() && schema.get("additionalProperties").is_none() {
            return;
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, item) in object {
            let at = format!("{at}.{key}");
            match (
                properties.and_then(|p| p.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(sub), _) => undescribed(sub, item, &at, out),
                (None, Some(sub @ Value::Object(_))) => undescribed(sub, item, &at, out),
                (None, _) => out.push(at),
            }
        }
    }

    fn full_link() -> LinkHealth {
        LinkHealth {
            state: LinkState::Connected,
            connected_for_ms: Some(1_500),
            last_inbound_age_ms: Some(20),
            last_rtt_ms: Some(3),
            reconnect_count: 2,
            extension_version: Some("0.1.0".into()),
            last_disconnect_reason: Some("socket closed".into()),
            pending_requests: 1,
            malformed_frames: 0,
            rejected_tokens: 4,
            throttled_handshakes: 0,
            rtt_p95_ms: Some(7),
            shell_sessions: 3,
            ping_interval_ms: 100,
            silence_limit_ms: 300,
        }
    }

    #[tokio::test]
    async fn the_status_document_matches_its_schema() {
        let shared = test_shared(PolicyConfig {
            allow_write: true,
            allow_sensitive: false,
            domains: vec!["example.com".into()],
            ..Default::default()
        });
        let fresh = shared.status();
        assert_eq!(check(&fresh), Vec::<String>::new(), "{fresh:#}");
        assert!(fresh["connected_since"].is_null() && fresh["remediation"].is_string());

        // Every nullable field filled in, sessions with and without their own rails, and
        // what a relay adds.
        shared.sessions.register(
            "host:a",
            SessionInfo {
                client: "stdio-proxy/1".into(),
                state: "active",
                since: "2026-01-01T00:00:00Z".into(),
                policy: Some(Policy::new(PolicyConfig::default()).describe()),
            },
            true,
        );
        shared.sessions.register(
            "b",
            SessionInfo {
                client: "inspector/2".into(),
                state: "connecting",
                since: "2026-01-01T00:00:01Z".into(),
                policy: None,
            },
            false,
        );
        let mut full = shared.status();
        full["link"] = serde_json::to_value(full_link()).unwrap();
        full["connected_since"] = json!("2026-01-01T00:00:00Z");
        full["remediation"] = Value::Null;
        full["this_process"] = json!({"role": "proxy", "pid": 1});
        assert_eq!(check(&full), Vec::<String>::new(), "{full:#}");

        let mut extra = Vec::new();
        undescribed(&status_schema(), &full, "$", &mut extra);
        assert_eq!(extra, Vec::<String>::new());
    }

    #[tokio::test]
    async fn the_schema_check_catches_wrong_documents() {
        let document = test_shared(PolicyConfig::default()).status();
        let broken = |edit: &dyn Fn(&mut Value)| {
            let mut d = document.clone();
            edit(&mut d);
            check(&d)
        };
        assert!(!broken(&|d| d["pid"] = json!("1")).is_empty());
        assert!(!broken(&|d| d["uptime_ms"] = json!(-1)).is_empty());
        assert!(!broken(&|d| d["connected_since"] = json!(5)).is_empty());
        assert!(!broken(&|d| d["link"]["rtt_p95_ms"] = json!("fast")).is_empty());
        assert!(!broken(&|d| d["policy"]["domains"] = json!([1])).is_empty());
        assert!(!broken(&|d| d["sessions"] = json!({"k": {"client": "c"}})).is_empty());
        assert!(!broken(&|d| {
            d.as_object_mut().unwrap().remove("link");
        })
        .is_empty());
    }
}
