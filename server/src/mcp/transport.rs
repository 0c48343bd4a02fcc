//! MCP transports: stdio (one session for the life of the process, what Claude Desktop
//! spawns) and streamable HTTP at `/mcp` (sessions with an idle TTL, Host/Origin checks
//! against DNS rebinding, and the bearer token required for `tools/call`).
//!
//! It owns wiring and admission only; every MCP behaviour lives in [`super::DomshellMcp`].

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::ServiceExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::{DomshellMcp, McpShared};
use crate::auth::tokens_match;

/// Largest JSON-RPC body accepted on `/mcp`; larger ones get a JSON-RPC error, not HTML.
pub const MAX_MCP_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Serve MCP on stdin/stdout until the client closes it or `shutdown` fires.
pub async fn serve_stdio(
    shared: Arc<McpShared>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let handler = DomshellMcp::new(shared);
    let service = handler
        .serve_with_ct(rmcp::transport::stdio(), shutdown.child_token())
        .await
        .map_err(|e| anyhow::anyhow!("MCP over stdio failed to start: {e}"))?;
    let reason = service.waiting().await;
    tracing::info!(?reason, "MCP stdio session ended");
    Ok(())
}

#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `Host` values accepted (DNS-rebinding protection); empty accepts any.
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted; requests carrying any other `Origin` are refused.
    pub allowed_origins: Vec<String>,
    /// An HTTP session unused this long is closed (and its shell state dropped).
    pub session_idle_ttl: Duration,
    pub token: String,
}

/// `/mcp` as an axum router, ready to merge into a listener's router.
pub fn router(
    shared: Arc<McpShared>,
    options: &HttpOptions,
    shutdown: CancellationToken,
) -> Router {
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(options.session_idle_ttl);
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(options.allowed_hosts.clone())
        .with_max_request_body_bytes(MAX_MCP_BODY_BYTES)
        .with_cancellation_token(shutdown);
    // Non-browser MCP clients send no Origin; a page from an origin not listed is refused.
    config = config
        .with_allowed_origins(options.allowed_origins.clone())
        .enforce_origin_validation();
    let service = StreamableHttpService::new(
        move || Ok(DomshellMcp::new(shared.clone())),
        Arc::new(sessions),
        config,
    );
    Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(
            Arc::new(options.token.clone()),
            require_token_for_tool_calls,
        ))
}

fn jsonrpc_error(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
            .to_string(),
    )
        .into_response()
}

/// The id of the first `tools/call` request in a JSON-RPC body (single or batch), if any.
fn tool_call_id(body: &[u8]) -> Option<Value> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let is_call = |v: &Value| v.get("method").and_then(Value::as_str) == Some("tools/call");
    match &value {
        Value::Array(items) => items.iter().find(|v| is_call(v)).map(|v| v["id"].clone()),
        v if is_call(v) => Some(v["id"].clone()),
        _ => None,
    }
}

fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, value) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(value.trim())
        })
        .is_some_and(|presented| tokens_match(token, presented))
}

/// Discovery (`initialize`, `tools/list`, `ping`) stays open so hosts can list the tools;
/// running one needs the token, because a tool call drives the user's browser.
async fn require_token_for_tool_calls(
    State(token): State<Arc<String>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_MCP_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return jsonrpc_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                Value::Null,
                -32600,
                &format!("request body over {MAX_MCP_BODY_BYTES} bytes; send shorter commands"),
            )
        }
    };
    if let Some(id) = tool_call_id(&bytes) {
        if !bearer_matches(&parts.headers, &token) {
            let mut response = jsonrpc_error(
                StatusCode::UNAUTHORIZED,
                id,
                -32001,
                "tools/call needs the server token: send `Authorization: Bearer <token>` (run `domshell token` to print it)",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return response;
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_are_found_in_single_and_batch_bodies() {
        assert_eq!(
            tool_call_id(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{}}"#),
            Some(json!(7))
        );
        assert_eq!(
            tool_call_id(br#"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"a","method":"tools/call"}]"#),
            Some(json!("a"))
        );
        assert_eq!(
            tool_call_id(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            None
        );
        assert_eq!(tool_call_id(b"not json"), None);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_token_exact() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert!(bearer_matches(&headers, "abc"));
        headers.insert(header::AUTHORIZATION, "Bearer abcd".parse().unwrap());
        assert!(!bearer_matches(&headers, "abc"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(!bearer_matches(&headers, "abc"));
        assert!(!bearer_matches(&HeaderMap::new(), "abc"));
    }
}
