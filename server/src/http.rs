//! The bridge listener's HTTP routes: the extension's WebSocket upgrade (`/bridge`), `/health`,
//! the relay door's challenge (`/relay/challenge`), and the optional debug request route.
//!
//! It owns the extension's admission to the upgrade (its Origin rule) and the JSON shapes of
//! these routes; it must not hold link state of its own: everything comes from the [`Bridge`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use shared_protocol::frame::Secret;
use shared_protocol::{BRIDGE_PATH, RELAY_CHALLENGE_PATH};

use crate::bridge::Bridge;
use crate::mcp::transport::{BearerGate, BearerVerdict, BEARER_MAX_FAILURES, BEARER_WINDOW};
use crate::pipeline::{Call, Failure};
use crate::relay_door::{ChallengeRequest, RelayDoor};

#[derive(Clone)]
pub struct AppState {
    pub bridge: Bridge,
    pub shared: std::sync::Arc<crate::mcp::McpShared>,
    /// Serve `POST /debug/execute` (a test and troubleshooting hook, MCP-token-protected).
    pub debug_api: bool,
    /// The MCP token (the debug route's bearer).
    pub mcp_token: Secret,
    /// Where relays ask for a challenge; `None`: this owner admits no relays.
    pub relay_door: Option<Arc<RelayDoor>>,
    /// Named shell sessions of the debug route, most recently used last.
    pub debug_sessions: Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
}

/// Named debug-route sessions kept at most; using one more ends the least recently used
/// one's shell session, so a caller cannot fill the extension with sessions.
pub const MAX_DEBUG_SESSIONS: usize = 16;

/// Largest body of a challenge request: a nonce and an identity.
const MAX_CHALLENGE_BODY_BYTES: usize = 1024;
/// Longest call budget the debug route accepts.
const MAX_DEBUG_TIMEOUT_MS: u64 = crate::config::MAX_TIMING_MS;

/// Only `/health`, for a second (MCP) listener.
pub fn health_router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(state)
}

pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route(BRIDGE_PATH, get(upgrade))
        .route("/health", get(health))
        .route(
            RELAY_CHALLENGE_PATH,
            post(relay_challenge).layer(DefaultBodyLimit::max(MAX_CHALLENGE_BODY_BYTES)),
        );
    if state.debug_api {
        // Every bearer guess is counted before the route runs anything.
        let gate = Arc::new(BearerGate::new(
            state.mcp_token.clone(),
            Some(state.bridge.config().token.clone()),
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
            "send the server's MCP token as `Authorization: Bearer <token>` (`domshell token mcp` prints it)".into(),
        ),
        BearerVerdict::ExtensionToken => refuse(
            StatusCode::UNAUTHORIZED,
            "that is the extension's token; this route takes the MCP token (`domshell token mcp` prints it)".into(),
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
    // Frames up to the ceiling are read so an oversized RESULT fails only its own request
    // (see `bridge::oversize`); beyond it the socket refuses the frame and closes (1009).
    let ceiling = app
        .bridge
        .config()
        .max_frame_bytes
        .saturating_mul(shared_protocol::OVERSIZE_CEILING_FACTOR);
    let bridge = app.bridge.clone();
    ws.max_message_size(ceiling)
        .max_frame_size(ceiling)
        .on_upgrade(move |socket| bridge.tracked_connection(socket))
}

/// `/health`: the owner's identity, state and link, small whatever clients send (see
/// `McpShared::health`).
async fn health(State(app): State<AppState>) -> Json<serde_json::Value> {
    Json(app.shared.health())
}

/// `POST /relay/challenge`: the owner's half of a relay's attachment (see
/// [`crate::relay_door`]).
async fn relay_challenge(State(app): State<AppState>, body: axum::body::Bytes) -> Response {
    let Some(door) = &app.relay_door else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "this domshell owner admits no relays: it has no relay key (its log says why)".into(),
        );
    };
    let request: ChallengeRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!(
                    "a challenge request is {{\"nonce\": <64 hex>, \"identity\": <name>}}: {e}"
                ),
            )
        }
    };
    match door.challenge(&request) {
        Ok(answer) => Json(answer).into_response(),
        Err(e) => refuse(StatusCode::BAD_REQUEST, format!("{e:#}")),
    }
}

#[derive(Debug, Deserialize)]
struct DebugExecute {
    /// A name for a shell session of its own (`debug:<name>`); default: the one `debug`.
    #[serde(default)]
    session: Option<String>,
    /// One or more commands, exactly as `domshell_execute` takes them.
    command: String,
    /// Budget of the whole call; default: the server's call budget.
    timeout_ms: Option<u64>,
    #[serde(default)]
    group_id: Option<String>,
    #[serde(default)]
    initial_url: Option<String>,
    #[serde(default)]
    group_name: Option<String>,
    #[serde(default)]
    window_id: Option<i64>,
}

/// The shell session of a debug call: `debug`, or `debug:<name>` for a valid name, the
/// least recently used of [`MAX_DEBUG_SESSIONS`] names ended when a new one comes.
async fn debug_session(app: &AppState, name: Option<&str>) -> Result<String, String> {
    let Some(name) = name.filter(|n| *n != "debug") else {
        return Ok("debug".into());
    };
    if !crate::relay_door::valid_identity(name) || name.len() > 64 {
        return Err("session names are 1–64 characters of letters, digits, '-', '_' or '.'".into());
    }
    let key = format!("debug:{name}");
    let evicted = {
        let mut recent = app.debug_sessions.lock().unwrap_or_else(|p| p.into_inner());
        recent.retain(|k| k != &key);
        recent.push_back(key.clone());
        if recent.len() > MAX_DEBUG_SESSIONS {
            recent.pop_front()
        } else {
            None
        }
    };
    if let Some(evicted) = evicted {
        app.bridge.close_session(&evicted, Duration::ZERO).await;
    }
    Ok(key)
}

/// `POST /debug/execute`: the same pipeline as `domshell_execute` (split, check, audit,
/// execute), answered as JSON. `ok`/`output` describe the call as a whole; `lines` has
/// each line's own result.
async fn debug_execute(State(app): State<AppState>, Json(body): Json<DebugExecute>) -> Response {
    // The bearer was checked (and counted) by the layer in front of this route.
    if let Some(ms) = body.timeout_ms.filter(|ms| *ms > MAX_DEBUG_TIMEOUT_MS) {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("timeout_ms {ms} is too long: at most {MAX_DEBUG_TIMEOUT_MS} is accepted"),
        );
    }
    let session = match debug_session(&app, body.session.as_deref()).await {
        Ok(session) => session,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    let started = Instant::now();
    let call = Call {
        rails: None,
        session,
        input: body.command,
        group_id: body.group_id,
        initial_url: body.initial_url,
        group_name: body.group_name,
        window_id: body.window_id,
        agent: Some("debug-api".into()),
        progress: None,
        budget: body
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(app.shared.config.call_budget),
    };
    let outcome = app
        .shared
        .pipeline
        .run(
            call,
            &tokio_util::sync::CancellationToken::new(),
            &|_, _| {},
        )
        .await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(failure) => {
            return failure_response(
                StatusCode::BAD_REQUEST,
                &failure,
                "empty command",
                elapsed_ms,
            )
            .into_response()
        }
    };
    let lines: Vec<serde_json::Value> = outcome
        .lines
        .iter()
        .map(|l| {
            serde_json::json!({
                "line": l.line,
                "ok": l.ok,
                "output": l.output,
                "reason": l.failure.as_ref().map(|f| f.reason.as_str()),
            })
        })
        .collect();
    if let Some((line, failure)) = outcome
        .lines
        .iter()
        .find_map(|l| l.failure.as_ref().map(|f| (l, f)))
    {
        let status = match failure.reason.as_str() {
            "tier_denied" | "domain_denied" | "parse_error" | "unknown_command"
            | "upload_refused" => StatusCode::FORBIDDEN,
            "command_timeout" => StatusCode::GATEWAY_TIMEOUT,
            "reply_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        let mut response = failure_response(status, failure, &line.output, elapsed_ms);
        if let Some(object) = response.1.as_object_mut() {
            object.insert("lines".into(), lines.into());
            object.insert("lane".into(), outcome.lane.clone().into());
        }
        return response.into_response();
    }
    let output = match outcome.lines.as_slice() {
        [only] => only.output.clone(),
        many => many
            .iter()
            .map(|l| format!("$ {}\n{}", l.line, l.output))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    Json(serde_json::json!({
        "ok": outcome.all_ok(),
        "output": output,
        "lane": outcome.lane,
        "lines": lines,
        "elapsed_ms": elapsed_ms,
    }))
    .into_response()
}

fn failure_response(
    status: StatusCode,
    failure: &Failure,
    message: &str,
    elapsed_ms: u64,
) -> (StatusCode, Json<serde_json::Value>) {
    (
        status,
        Json(serde_json::json!({
            "error": {
                "reason": failure.reason,
                "message": message,
                "retryable": failure.retryable,
                "hint": failure.hint,
            },
            "elapsed_ms": elapsed_ms,
        })),
    )
}
