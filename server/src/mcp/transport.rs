//! MCP transports: stdio (one session for the life of the process, what Claude Desktop
//! spawns) and streamable HTTP at `/mcp` (sessions with an idle TTL, the MCP token required
//! for `tools/call` with failed guesses throttled, and relays admitted through the
//! [`RelayDoor`] at `initialize`).
//!
//! It owns wiring and admission only; every MCP behaviour lives in [`super::DomshellMcp`].
//! Host/Origin checks (DNS rebinding) are not here: `crate::host_check` guards every route
//! of the listener, `/mcp` included.

use std::collections::{HashMap, VecDeque};
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

use crate::auth::{bearer, tokens_match, Attempt, AuthThrottle};
use crate::relay_door::{DoorError, HostClaim, RelayDoor, RelayGrant, HOST_META_KEY};

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

#[derive(Clone)]
pub struct HttpOptions {
    /// `Host` values accepted (DNS-rebinding protection, applied by `crate::host_check`);
    /// empty accepts any.
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted; requests carrying any other `Origin` are refused.
    pub allowed_origins: Vec<String>,
    /// An HTTP session unused this long is closed (and its shell state dropped).
    pub session_idle_ttl: Duration,
    /// The bearer token of `tools/call` (the MCP token, never the extension's).
    pub token: Secret,
    /// The extension's token, only to tell a client that sent it to the wrong door.
    pub bridge_token: Secret,
    /// Where relays prove themselves; `None`: this owner admits no relays.
    pub relay_door: Option<Arc<RelayDoor>>,
}

/// Wrong bearer tokens allowed per window on `/mcp` before further guesses are refused.
pub const BEARER_MAX_FAILURES: usize = 10;
/// The bearer throttle's sliding window.
pub const BEARER_WINDOW: Duration = Duration::from_secs(10);
/// MCP sessions remembered as authenticated, by bearer or as relays (oldest forgotten
/// first; a forgotten bearer session presents its token again, a forgotten relay session
/// is refused its calls and re-attaches).
const TRUSTED_SESSIONS_MAX: usize = 4096;

/// How an MCP session proved itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// It presented the MCP token once: exempt from the throttle, still checked.
    Bearer,
    /// A relay admitted at `initialize`: its calls need no bearer.
    Relay,
}

/// The bearer check of `tools/call` (and of `/debug/execute`): the token, the throttle of
/// wrong guesses, and the MCP sessions that already proved themselves. Sessions that
/// presented the right token stay exempt from the throttle, so a flood of wrong guesses from
/// elsewhere cannot lock a working client out; relay sessions need no bearer at all.
pub(crate) struct BearerGate {
    token: Secret,
    bridge_token: Option<Secret>,
    epoch: Instant,
    throttle: Mutex<AuthThrottle>,
    trusted: Mutex<(HashMap<String, Trust>, VecDeque<String>)>,
}

/// What the gate decided about one `tools/call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BearerVerdict {
    Allowed,
    WrongToken,
    /// The extension's token was presented where the MCP token belongs.
    ExtensionToken,
    Throttled {
        retry_after_ms: u64,
    },
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl BearerGate {
    pub(crate) fn new(
        token: Secret,
        bridge_token: Option<Secret>,
        window: Duration,
        max_failures: usize,
    ) -> Self {
        Self {
            token,
            bridge_token,
            epoch: Instant::now(),
            throttle: Mutex::new(AuthThrottle::new(window.as_millis() as u64, max_failures)),
            trusted: Mutex::new(Default::default()),
        }
    }

    fn trust_of(&self, session: Option<&str>) -> Option<Trust> {
        session.and_then(|s| lock(&self.trusted).0.get(s).copied())
    }

    fn trust(&self, session: &str, trust: Trust) {
        let mut trusted = lock(&self.trusted);
        let (map, order) = &mut *trusted;
        if map.insert(session.to_string(), trust).is_none() {
            order.push_back(session.to_string());
            if order.len() > TRUSTED_SESSIONS_MAX {
                if let Some(oldest) = order.pop_front() {
                    map.remove(&oldest);
                }
            }
        }
    }

    /// Check the bearer of one `tools/call` in MCP session `session` (if any); the guess is
    /// counted in the same step that evaluates it.
    pub(crate) fn check(&self, headers: &HeaderMap, session: Option<&str>) -> BearerVerdict {
        let trust = self.trust_of(session);
        if trust == Some(Trust::Relay) {
            return BearerVerdict::Allowed;
        }
        let now_ms = self.epoch.elapsed().as_millis() as u64;
        let presented = bearer(headers);
        let attempt = lock(&self.throttle).attempt(now_ms, trust.is_some(), || {
            presented.is_some_and(|p| tokens_match(&self.token, p))
        });
        match attempt {
            Attempt::Accepted => {
                if let Some(session) = session {
                    self.trust(session, Trust::Bearer);
                }
                BearerVerdict::Allowed
            }
            Attempt::Rejected
                if self
                    .bridge_token
                    .as_ref()
                    .zip(presented)
                    .is_some_and(|(bridge, p)| tokens_match(bridge, p)) =>
            {
                BearerVerdict::ExtensionToken
            }
            Attempt::Rejected => BearerVerdict::WrongToken,
            Attempt::Throttled { retry_after_ms } => BearerVerdict::Throttled { retry_after_ms },
        }
    }
}

/// The gate's refusal as an HTTP response: `id` is the JSON-RPC id to answer, if any.
pub(crate) fn refusal(verdict: BearerVerdict, id: Value) -> Option<Response> {
    let mut response = match verdict {
        BearerVerdict::Allowed => return None,
        BearerVerdict::WrongToken => jsonrpc_error(
            StatusCode::UNAUTHORIZED,
            id,
            -32001,
            "tools/call needs the server's MCP token: send `Authorization: Bearer <token>` (run `domshell token mcp` to print it)",
        ),
        BearerVerdict::ExtensionToken => jsonrpc_error(
            StatusCode::UNAUTHORIZED,
            id,
            -32001,
            "that is the extension's token, which only the browser extension uses; HTTP MCP clients send the MCP token (run `domshell token mcp` to print it)",
        ),
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
            return Some(response);
        }
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    Some(response)
}

/// What stands in front of `/mcp`: the bearer gate and the relay door.
struct Admission {
    gate: BearerGate,
    door: Option<Arc<RelayDoor>>,
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
    let admission = Admission {
        gate: BearerGate::new(
            options.token.clone(),
            Some(options.bridge_token.clone()),
            BEARER_WINDOW,
            BEARER_MAX_FAILURES,
        ),
        door: options.relay_door.clone(),
    };
    guard(
        Router::new().nest_service("/mcp", service),
        Arc::new(admission),
    )
}

/// Put admission in front of `router`.
fn guard(router: Router, admission: Arc<Admission>) -> Router {
    router.layer(middleware::from_fn_with_state(admission, admit))
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
fn tool_call_id(body: &Value) -> Option<Value> {
    let is_call = |v: &Value| v.get("method").and_then(Value::as_str) == Some("tools/call");
    match body {
        Value::Array(items) => items.iter().find(|v| is_call(v)).map(|v| v["id"].clone()),
        v if is_call(v) => Some(v["id"].clone()),
        _ => None,
    }
}

/// A relay's claim in an `initialize` body: its id and `_meta["dev.domshell/host"]`.
fn relay_claim(body: &Value) -> Option<(Value, &Value)> {
    if body.get("method").and_then(Value::as_str) != Some("initialize") {
        return None;
    }
    let claim = body.pointer("/params/_meta")?.get(HOST_META_KEY)?;
    Some((body.get("id").cloned().unwrap_or(Value::Null), claim))
}

/// Discovery (`initialize`, `tools/list`, `ping`) stays open so hosts can list the tools;
/// running one needs the MCP token (or a relay session), because a tool call drives the
/// user's browser. An `initialize` that carries a relay claim is admitted only when the
/// claim proves the relay key: the handler then finds the [`RelayGrant`] in the request and
/// nothing else in the body is ever taken as authority.
async fn admit(State(admission): State<Arc<Admission>>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    // A grant is only ever put here by this layer.
    parts.extensions.remove::<RelayGrant>();
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
    let message: Option<Value> = serde_json::from_slice(&bytes).ok();
    if let Some((id, claim)) = message.as_ref().and_then(relay_claim) {
        let grant = match (
            &admission.door,
            serde_json::from_value::<HostClaim>(claim.clone()),
        ) {
            (None, _) => Err((
                StatusCode::FORBIDDEN,
                "this domshell owner admits no relays (it has no relay key); its log says why"
                    .to_string(),
            )),
            (Some(_), Err(e)) => Err((
                StatusCode::BAD_REQUEST,
                format!("the relay claim in _meta[\"{HOST_META_KEY}\"] is malformed: {e}"),
            )),
            (Some(door), Ok(claim)) => door.admit(&claim).map_err(|e| {
                let status = match e {
                    DoorError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                    _ => StatusCode::UNAUTHORIZED,
                };
                tracing::warn!("relay claim refused: {e}");
                (status, e.to_string())
            }),
        };
        let grant = match grant {
            Ok(grant) => grant,
            Err((status, message)) => return jsonrpc_error(status, id, -32001, &message),
        };
        tracing::info!(identity = %grant.identity, client = %grant.client_id, "relay admitted");
        parts.extensions.insert(grant);
        let response = next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
        if let Some(session) = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            admission.gate.trust(session, Trust::Relay);
        }
        return response;
    }
    if let Some(id) = message.as_ref().and_then(tool_call_id) {
        let session = parts
            .headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok());
        if let Some(refused) = refusal(admission.gate.check(&parts.headers, session), id) {
            return refused;
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call_id(body: &str) -> Option<Value> {
        tool_call_id(&serde_json::from_str(body).ok()?)
    }

    #[test]
    fn tool_calls_are_found_in_single_and_batch_bodies() {
        assert_eq!(
            call_id(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{}}"#),
            Some(json!(7))
        );
        assert_eq!(
            call_id(
                r#"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"a","method":"tools/call"}]"#
            ),
            Some(json!("a"))
        );
        assert_eq!(
            call_id(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            None
        );
        assert_eq!(call_id("not json"), None);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_token_exact() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Bearer  abcd ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abcd"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "Bearer".parse().unwrap());
        assert_eq!(bearer(&headers), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";
    const BRIDGE: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn the_extension_token_is_named_as_the_wrong_door() {
        let gate = BearerGate::new(
            Secret(TOKEN.into()),
            Some(Secret(BRIDGE.into())),
            Duration::from_secs(60),
            10,
        );
        assert_eq!(
            gate.check(&with_bearer(BRIDGE), None),
            BearerVerdict::ExtensionToken
        );
        assert_eq!(
            gate.check(&with_bearer("nope"), None),
            BearerVerdict::WrongToken
        );
        assert_eq!(
            gate.check(&with_bearer(TOKEN), None),
            BearerVerdict::Allowed
        );
    }

    fn with_bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn wrong_bearers_are_throttled_but_an_authenticated_session_keeps_working() {
        let gate = BearerGate::new(Secret(TOKEN.into()), None, Duration::from_secs(60), 3);
        // A real client authenticates once before the flood.
        assert_eq!(
            gate.check(&with_bearer(TOKEN), Some("real")),
            BearerVerdict::Allowed
        );
        for i in 0..3 {
            assert_eq!(
                gate.check(&with_bearer(&format!("guess-{i}")), Some("attacker")),
                BearerVerdict::WrongToken
            );
        }
        // The budget is spent: further guesses are not even evaluated, right or wrong…
        for token in ["guess-x", TOKEN] {
            assert!(matches!(
                gate.check(&with_bearer(token), None),
                BearerVerdict::Throttled { .. }
            ));
        }
        assert!(matches!(
            gate.check(&with_bearer(TOKEN), Some("attacker")),
            BearerVerdict::Throttled { .. }
        ));
        // …but the session that proved itself earlier is still served, and still checked.
        // (A relay session needs no bearer at all.)
        gate.trust("relay", Trust::Relay);
        assert_eq!(
            gate.check(&HeaderMap::new(), Some("relay")),
            BearerVerdict::Allowed
        );
        assert_eq!(
            gate.check(&with_bearer(TOKEN), Some("real")),
            BearerVerdict::Allowed
        );
        assert_eq!(
            gate.check(&with_bearer("wrong"), Some("real")),
            BearerVerdict::WrongToken
        );
    }

    #[tokio::test]
    async fn the_http_layer_answers_429_with_retry_after_when_throttled() {
        use tower::ServiceExt;
        let admission = Arc::new(Admission {
            gate: BearerGate::new(Secret(TOKEN.into()), None, Duration::from_secs(60), 1),
            door: None,
        });
        let app = guard(
            Router::new().route("/mcp", axum::routing::post(|| async { "ran" })),
            admission,
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
