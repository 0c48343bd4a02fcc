//! MCP transports: stdio (one session for the life of the process, what Claude Desktop
//! spawns) and streamable HTTP at `/mcp` (sessions with an idle TTL, and the bearer token
//! required for `tools/call`, with failed guesses throttled).
//!
//! It owns wiring and admission only; every MCP behaviour lives in [`super::DomshellMcp`].
//! Host/Origin checks (DNS rebinding) are not here: `crate::host_check` guards every route
//! of the listener, `/mcp` included.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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
use shared_protocol::frame::Secret;

use crate::auth::{tokens_match, Attempt, AuthThrottle};

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
    /// `Host` values accepted (DNS-rebinding protection, applied by `crate::host_check`);
    /// empty accepts any.
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted; requests carrying any other `Origin` are refused.
    pub allowed_origins: Vec<String>,
    /// An HTTP session unused this long is closed (and its shell state dropped).
    pub session_idle_ttl: Duration,
    pub token: Secret,
}

/// Wrong bearer tokens allowed per window on `/mcp` before further guesses are refused.
pub const BEARER_MAX_FAILURES: usize = 10;
/// The bearer throttle's sliding window.
pub const BEARER_WINDOW: Duration = Duration::from_secs(10);
/// MCP sessions remembered as authenticated (oldest forgotten first).
const TRUSTED_SESSIONS_MAX: usize = 4096;

/// The bearer check of `tools/call` (and of `/debug/execute`): the token, the throttle of wrong guesses, and the MCP
/// sessions that already presented the right token. Those stay exempt from the throttle, so
/// a flood of wrong guesses from elsewhere cannot lock a working client out.
pub(crate) struct BearerGate {
    token: Secret,
    epoch: Instant,
    throttle: Mutex<AuthThrottle>,
    trusted: Mutex<(HashSet<String>, VecDeque<String>)>,
}

/// What the gate decided about one `tools/call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BearerVerdict {
    Allowed,
    WrongToken,
    Throttled { retry_after_ms: u64 },
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl BearerGate {
    pub(crate) fn new(token: Secret, window: Duration, max_failures: usize) -> Self {
        Self {
            token,
            epoch: Instant::now(),
            throttle: Mutex::new(AuthThrottle::new(window.as_millis() as u64, max_failures)),
            trusted: Mutex::new(Default::default()),
        }
    }

    fn is_trusted(&self, session: Option<&str>) -> bool {
        session.is_some_and(|s| lock(&self.trusted).0.contains(s))
    }

    fn trust(&self, session: &str) {
        let mut trusted = lock(&self.trusted);
        if trusted.0.insert(session.to_string()) {
            trusted.1.push_back(session.to_string());
            if trusted.1.len() > TRUSTED_SESSIONS_MAX {
                if let Some(oldest) = trusted.1.pop_front() {
                    trusted.0.remove(&oldest);
                }
            }
        }
    }

    /// Check the bearer of one `tools/call` in MCP session `session` (if any); the guess is
    /// counted in the same step that evaluates it.
    pub(crate) fn check(&self, headers: &HeaderMap, session: Option<&str>) -> BearerVerdict {
        let exempt = self.is_trusted(session);
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        let attempt =
            lock(&self.throttle).attempt(now_ms, exempt, || bearer_matches(headers, &self.token));
        match attempt {
            Attempt::Accepted => {
                if let Some(session) = session {
                    self.trust(session);
                }
                BearerVerdict::Allowed
            }
            Attempt::Rejected => BearerVerdict::WrongToken,
            Attempt::Throttled { retry_after_ms } => BearerVerdict::Throttled { retry_after_ms },
        }
    }
}

/// `/mcp` as an axum router, ready to merge into a listener's router.
pub fn router(
    shared: Arc<McpShared>,
    options: &HttpOptions,
    shutdown: CancellationToken,
) -> Router {
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(options.session_idle_ttl);
    // Host and Origin are checked once, for every route, by `crate::host_check`.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_max_request_body_bytes(MAX_MCP_BODY_BYTES)
        .with_cancellation_token(shutdown);
    let service = StreamableHttpService::new(
        move || Ok(DomshellMcp::new(shared.clone())),
        Arc::new(sessions),
        config,
    );
    let gate = BearerGate::new(options.token.clone(), BEARER_WINDOW, BEARER_MAX_FAILURES);
    guard_tool_calls(Router::new().nest_service("/mcp", service), Arc::new(gate))
}

/// Put the bearer check in front of `router`.
fn guard_tool_calls(router: Router, gate: Arc<BearerGate>) -> Router {
    router.layer(middleware::from_fn_with_state(
        gate,
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

fn bearer_matches(headers: &HeaderMap, token: &Secret) -> bool {
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
    State(gate): State<Arc<BearerGate>>,
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
        let session = parts
            .headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok());
        match gate.check(&parts.headers, session) {
            BearerVerdict::Allowed => {}
            BearerVerdict::WrongToken => {
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
            BearerVerdict::Throttled { retry_after_ms } => {
                tracing::warn!(
                    retry_after_ms,
                    "tools/call refused unchecked: too many wrong bearer tokens"
                );
                let seconds = retry_after_ms.div_ceil(1000).max(1);
                let mut response = jsonrpc_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    id,
                    -32001,
                    &format!("too many wrong tokens on this server recently; retry in {seconds} s"),
                );
                if let Ok(value) = seconds.to_string().parse() {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                return response;
            }
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
        let abc = Secret("abc".into());
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert!(bearer_matches(&headers, &abc));
        headers.insert(header::AUTHORIZATION, "Bearer abcd".parse().unwrap());
        assert!(!bearer_matches(&headers, &abc));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(!bearer_matches(&headers, &abc));
        assert!(!bearer_matches(&HeaderMap::new(), &abc));
    }

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn wrong_bearers_are_throttled_but_an_authenticated_session_keeps_working() {
        let gate = BearerGate::new(Secret(TOKEN.into()), Duration::from_secs(60), 3);
        // A real client authenticates once before the flood.
        assert_eq!(
            gate.check(&bearer(TOKEN), Some("real")),
            BearerVerdict::Allowed
        );
        for i in 0..3 {
            assert_eq!(
                gate.check(&bearer(&format!("guess-{i}")), Some("attacker")),
                BearerVerdict::WrongToken
            );
        }
        // The budget is spent: further guesses are not even evaluated, right or wrong…
        for token in ["guess-x", TOKEN] {
            assert!(matches!(
                gate.check(&bearer(token), None),
                BearerVerdict::Throttled { .. }
            ));
        }
        assert!(matches!(
            gate.check(&bearer(TOKEN), Some("attacker")),
            BearerVerdict::Throttled { .. }
        ));
        // …but the session that proved itself earlier is still served, and still checked.
        assert_eq!(
            gate.check(&bearer(TOKEN), Some("real")),
            BearerVerdict::Allowed
        );
        assert_eq!(
            gate.check(&bearer("wrong"), Some("real")),
            BearerVerdict::WrongToken
        );
    }

    #[tokio::test]
    async fn the_http_layer_answers_429_with_retry_after_when_throttled() {
        use tower::ServiceExt;
        let gate = Arc::new(BearerGate::new(
            Secret(TOKEN.into()),
            Duration::from_secs(60),
            1,
        ));
        let app = guard_tool_calls(
            Router::new().route("/mcp", axum::routing::post(|| async { "ran" })),
            gate,
        );
        let call = |token: &str| {
            Request::builder()
                .method(Method::POST)
                .uri("/mcp")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::from(
                    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
                ))
                .unwrap()
        };
        let first = app.clone().oneshot(call("wrong")).await.unwrap();
        assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
        let second = app.clone().oneshot(call(TOKEN)).await.unwrap();
        assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(second.headers().contains_key(header::RETRY_AFTER));
        // Discovery is never throttled.
        let list = Request::builder()
            .method(Method::POST)
            .uri("/mcp")
            .body(Body::from(
                r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
            ))
            .unwrap();
        assert_eq!(app.oneshot(list).await.unwrap().status(), StatusCode::OK);
    }
}
