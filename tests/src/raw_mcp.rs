//! A minimal raw streamable-HTTP MCP client, for what SDKs hide: session headers, bodies
//! of the test's own making (`_meta` claims, oversized client names), and the HTTP status
//! of each answer.
//!
//! It must not retry or interpret answers beyond finding the JSON-RPC message in them.

use serde_json::Value;

/// One `/mcp` endpoint, with an optional bearer token sent on every request.
pub struct RawMcp {
    pub http: reqwest::Client,
    pub url: String,
    pub bearer: Option<String>,
}

impl RawMcp {
    pub fn new(url: impl Into<String>, bearer: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap_or_default(),
            url: url.into(),
            bearer: bearer.map(str::to_string),
        }
    }

    /// POST `body` in `session` (if any): the HTTP status, the session id the server gave,
    /// and the JSON-RPC message of the answer (`Null` when there is none).
    pub async fn post(
        &self,
        session: Option<&str>,
        body: Value,
    ) -> anyhow::Result<(u16, Option<String>, Value)> {
        let mut request = self
            .http
            .post(&self.url)
            .header("Accept", "application/json, text/event-stream")
            .header("Content-Type", "application/json")
            .json(&body);
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(id) = session {
            request = request
                .header("Mcp-Session-Id", id)
                .header("MCP-Protocol-Version", "2025-11-25");
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.text().await.unwrap_or_default();
        // SSE: the JSON-RPC message is on a `data:` line; plain JSON otherwise.
        let json = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .find_map(|d| serde_json::from_str(d).ok())
            .or_else(|| serde_json::from_str(&text).ok())
            .unwrap_or(Value::Null);
        Ok((status, session, json))
    }

    /// `initialize` (with `meta` as `_meta`, if any) then `notifications/initialized`: the
    /// status of the first and the session id.
    pub async fn open(
        &self,
        client_name: &str,
        meta: Option<Value>,
    ) -> anyhow::Result<(u16, Option<String>, Value)> {
        let mut params = serde_json::json!({
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": client_name, "version": "1"}});
        if let Some(meta) = meta {
            params["_meta"] = meta;
        }
        let init = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params});
        let (status, session, body) = self.post(None, init).await?;
        if let Some(id) = &session {
            self.post(
                Some(id),
                serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await?;
        }
        Ok((status, session, body))
    }

    /// `domshell_execute` with `command` in `session`: the status and the tool result.
    pub async fn execute(&self, session: &str, command: &str) -> anyhow::Result<(u16, Value)> {
        let call = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "domshell_execute", "arguments": {"command": command}}});
        let (status, _, body) = self.post(Some(session), call).await?;
        Ok((status, body))
    }
}
