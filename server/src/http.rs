//! The bridge listener's HTTP routes: the extension's WebSocket upgrade (`/bridge`), `/health`,
//! and the optional debug request route.
//!
//! It owns the extension's admission to the upgrade (its Origin rule) and the JSON shapes of
//! these routes; it must not hold link state of its own: everything comes from the [`Bridge`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use shared_protocol::BRIDGE_PATH;

use crate::auth::tokens_match;
use crate::bridge::{Bridge, ExecuteRequest};
use crate::mcp::transport::{BearerGate, BearerVerdict, BEARER_MAX_FAILURES, BEARER_WINDOW};

#[derive(Clone)]
pub struct AppState {
    pub bridge: Bridge,
    pub shared: std::sync::Arc<crate::mcp::McpShared>,
    /// Serve `POST /debug/execute` (a test and troubleshooting hook, token-protected).
    pub debug_api: bool,
}

/// Only `/health`, for a second (MCP) listener.
pub fn health_router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(state)
}

pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route(BRIDGE_PATH, get(upgrade))
        .route("/health", get(health));
    if state.debug_api {
        // Wrong bearer tokens are throttled before the route checks the token itself.
        let gate = Arc::new(BearerGate::new(
            state.bridge.config().token.clone(),
            BEARER_WINDOW,
            BEARER_MAX_FAILURES,
        ));
        router = router.route(
            "/debug/execute",
            post(debug_execute).layer(middleware::from_fn_with_state(gate, throttle_bearer)),
        );
    }
    router.with_state(state)
}

/// Count a bearer guess on the debug route against its budget; refuse unchecked once spent.
async fn throttle_bearer(
    State(gate): State<Arc<BearerGate>>,
    request: Request,
    next: Next,
) -> Response {
    match gate.check(request.headers(), None) {
        BearerVerdict::Allowed => next.run(request).await,
        BearerVerdict::WrongToken => refuse(
            StatusCode::UNAUTHORIZED,
            "send the server token as `Authorization: Bearer <token>`".into(),
        ),
        BearerVerdict::Throttled { retry_after_ms } => {
            let seconds = retry_after_ms.div_ceil(1000).max(1);
            let mut response = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many wrong tokens recently; retry in {seconds} s"),
            );
            if let Ok(value) = seconds.to_string().parse() {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
            response
        }
    }
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn upgrade(
    State(app): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let origin = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    if let Err(why) = app.bridge.config().origins.check(origin) {
        tracing::warn!(origin, "bridge upgrade refused: {why}");
        return refuse(StatusCode::FORBIDDEN, why);
    }
    // No throttle here: the guess is counted when the proof inside HELLO is evaluated, and
    // a returning extension (resume ticket) must get that far even during a flood.
    let max = app.bridge.config().max_frame_bytes;
    let bridge = app.bridge.clone();
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| bridge.tracked_connection(socket))
}

/// `/health`: the same document the `domshell_status` tool returns.
async fn health(State(app): State<AppState>) -> Json<serde_json::Value> {
    Json(app.shared.status())
}

#[derive(Debug, Deserialize)]
struct DebugExecute {
    #[serde(default = "default_session")]
    session: String,
    command: String,
    timeout_ms: Option<u64>,
}

fn default_session() -> String {
    "debug".into()
}

async fn debug_execute(
    State(app): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<DebugExecute>,
) -> Response {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !tokens_match(&app.bridge.config().token, presented) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "send the server token as `Authorization: Bearer <token>`".into(),
        );
    }
    // The debug route obeys the same policy as MCP: it is a troubleshooting aid, not a bypass.
    if let Err(denial) = app.shared.policy.check(&body.command, None) {
        return refuse(
            StatusCode::FORBIDDEN,
            format!("{} ({}) {}", denial.message, denial.reason, denial.hint),
        );
    }
    let started = Instant::now();
    let result = app
        .bridge
        .execute(
            ExecuteRequest {
                session: body.session,
                command: body.command,
                timeout: body.timeout_ms.map(Duration::from_millis),
                ..Default::default()
            },
            &tokio_util::sync::CancellationToken::new(),
        )
        .await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(outcome) => Json(serde_json::json!({
            "ok": outcome.ok,
            "output": outcome.output,
            "lane": outcome.lane,
            "elapsed_ms": elapsed_ms,
        }))
        .into_response(),
        Err(err) => {
            let status = match err {
                crate::bridge::BridgeError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            (
                status,
                Json(serde_json::json!({
                    "error": {
                        "reason": err.reason(),
                        "message": err.to_string(),
                        "retryable": err.retryable(),
                        "hint": err.hint(),
                    },
                    "elapsed_ms": elapsed_ms,
                })),
            )
                .into_response()
        }
    }
}
