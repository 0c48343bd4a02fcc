//! The bridge to the browser extension: one active WebSocket link, the table of requests
//! waiting for a `RESULT`, and the link's health figures.
//!
//! This module owns request/response correlation and the rule that no request outlives its
//! link: when a link dies, is replaced or the server shuts down, every pending request on it
//! is answered with a structured error at once. It must not parse command lines or know about
//! MCP; callers hand it a command string and get an [`Outcome`] or a [`BridgeError`].

mod connection;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use shared_protocol::close::CloseCode;
use shared_protocol::frame::Frame;
use shared_protocol::link::LinkState;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

pub use connection::serve_socket;

use crate::auth::{AuthThrottle, OriginPolicy};

/// Timings and limits of the bridge; production defaults come from `shared-protocol`.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    pub token: String,
    pub ping_interval: Duration,
    pub silence_limit: Duration,
    /// How long a request waits for an extension that is not connected (a service worker
    /// waking up needs a moment) before failing.
    pub connect_grace: Duration,
    /// Default time a command may take before it is cancelled.
    pub command_timeout: Duration,
    pub max_frame_bytes: usize,
    pub hello_timeout: Duration,
    pub origins: OriginPolicy,
}

/// Heartbeat round trips kept for the p95 figure.
const RTT_WINDOW: usize = 100;

fn percentile(values: &std::collections::VecDeque<u64>, pct: usize) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted: Vec<u64> = values.iter().copied().collect();
    sorted.sort_unstable();
    let rank = (pct * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// A successful `RESULT` (which may still report a command failure with `ok: false`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub ok: bool,
    pub output: String,
    pub lane: Option<String>,
}

/// Why a request got no `RESULT`. Each variant says whether retrying can help and what the
/// person or agent should do.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum BridgeError {
    #[error("the browser extension is not connected (waited {waited_ms} ms)")]
    NotConnected { waited_ms: u64 },
    #[error("the link to the browser extension was lost: {reason}")]
    LinkLost { reason: String },
    #[error("the command did not finish within {after_ms} ms and was cancelled")]
    Timeout { after_ms: u64 },
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("the command was cancelled by the client")]
    Cancelled,
}

impl BridgeError {
    /// Stable machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotConnected { .. } => "extension_not_connected",
            Self::LinkLost { .. } => "extension_link_lost",
            Self::Timeout { .. } => "command_timeout",
            Self::ShuttingDown => "server_shutting_down",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn retryable(&self) -> bool {
        !matches!(self, Self::Timeout { .. } | Self::Cancelled)
    }

    pub fn hint(&self) -> &'static str {
        match self {
            Self::NotConnected { .. } => {
                "Open Chrome with the domshell extension enabled, and check that the token in its options matches `domshell token`."
            }
            Self::LinkLost { .. } => {
                "The extension reconnects by itself within seconds; retry the command. A browser action may or may not have happened: check the page before repeating it."
            }
            Self::Timeout { .. } => {
                "The page may be slow or the command too broad; narrow it (e.g. a path or --limit) or raise --command-timeout-ms."
            }
            Self::ShuttingDown => "Start the server again; the extension reconnects by itself.",
            Self::Cancelled => "The extension was told to stop the command.",
        }
    }
}

/// One command to run in the extension.
#[derive(Debug, Clone, Default)]
pub struct ExecuteRequest {
    pub session: String,
    pub command: String,
    pub group_id: Option<String>,
    pub initial_url: Option<String>,
    pub group_name: Option<String>,
    /// Overrides [`BridgeConfig::command_timeout`].
    pub timeout: Option<Duration>,
    /// Domain allowlist for the extension to apply to the page the command acts on.
    pub allowed_domains: Vec<String>,
}

/// A change of the extension link, for MCP clients' log notifications.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    Up {
        extension_version: String,
        reconnects: u64,
    },
    Down {
        reason: String,
    },
}

/// Link figures for `/health` and the status tool.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LinkHealth {
    pub state: LinkState,
    pub connected_for_ms: Option<u64>,
    pub last_inbound_age_ms: Option<u64>,
    pub last_rtt_ms: Option<u64>,
    /// Successful connections after the first one.
    pub reconnect_count: u64,
    pub extension_version: Option<String>,
    pub last_disconnect_reason: Option<String>,
    pub pending_requests: usize,
    pub malformed_frames: u64,
    /// Connection attempts refused for a wrong token since start.
    pub rejected_tokens: u64,
    /// 95th percentile of the recent heartbeat round trips.
    pub rtt_p95_ms: Option<u64>,
    /// Shell sessions (one per MCP session) known to the bridge.
    pub shell_sessions: usize,
    pub ping_interval_ms: u64,
    pub silence_limit_ms: u64,
}

pub(crate) enum Outbound {
    Frame(Frame),
    /// Send a close frame with this code and reason, then stop writing.
    Close(u16, String),
}

impl Outbound {
    pub(crate) fn close(code: CloseCode) -> Self {
        Self::Close(code.code(), code.reason().to_string())
    }
}

struct ActiveLink {
    conn_id: u64,
    outbound: mpsc::UnboundedSender<Outbound>,
    connected_at: Instant,
    extension_version: String,
}

struct Pending {
    conn_id: u64,
    reply: oneshot::Sender<Result<Outcome, BridgeError>>,
}

/// A shell session the extension must know about; `started_on` is the connection on which
/// its `SESSION_START` was acknowledged (a new connection needs it again).
struct ShellSession {
    started_on: Option<u64>,
}

struct PendingAck {
    conn_id: u64,
    session: String,
    starts: bool,
    reply: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct State {
    active: Option<ActiveLink>,
    pending: HashMap<String, Pending>,
    sessions: HashMap<String, ShellSession>,
    pending_acks: HashMap<String, PendingAck>,
    next_conn_id: u64,
    connections: u64,
    last_inbound_at: Option<Instant>,
    last_rtt_ms: Option<u64>,
    quiet: bool,
    malformed_frames: u64,
    rejected_tokens: u64,
    recent_rtts: std::collections::VecDeque<u64>,
    last_disconnect_reason: Option<String>,
    shutting_down: bool,
}

struct Inner {
    config: BridgeConfig,
    epoch: Instant,
    state: Mutex<State>,
    throttle: Mutex<AuthThrottle>,
    /// Bumped whenever a link is installed or removed, so waiters can wake.
    link_changed: watch::Sender<u64>,
    link_events: broadcast::Sender<LinkEvent>,
}

/// Cheap to clone; all clones share one bridge.
#[derive(Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
}

impl Bridge {
    pub fn new(config: BridgeConfig) -> Self {
        let (link_changed, _) = watch::channel(0);
        let (link_events, _) = broadcast::channel(16);
        Self {
            inner: Arc::new(Inner {
                config,
                epoch: Instant::now(),
                state: Mutex::new(State::default()),
                throttle: Mutex::new(AuthThrottle::new(10_000, 10)),
                link_changed,
                link_events,
            }),
        }
    }

    pub fn config(&self) -> &BridgeConfig {
        &self.inner.config
    }

    /// Milliseconds on the bridge's monotonic clock, the `now` fed to the liveness machine.
    pub(crate) fn now_ms(&self) -> u64 {
        self.inner.epoch.elapsed().as_millis() as u64
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock would be a bug; the data stays consistent enough
        // (plain maps and counters) to keep serving rather than poisoning every later call.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn throttle(&self) -> MutexGuard<'_, AuthThrottle> {
        self.inner
            .throttle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Make a freshly authenticated connection the active link, replacing (and closing) any
    /// older one. Returns the new connection's id.
    pub(crate) fn install(
        &self,
        outbound: mpsc::UnboundedSender<Outbound>,
        extension_version: String,
    ) -> u64 {
        let mut state = self.state();
        state.next_conn_id += 1;
        let conn_id = state.next_conn_id;
        if let Some(old) = state.active.take() {
            tracing::info!(
                old = old.conn_id,
                new = conn_id,
                "a newer extension connection replaces the active one"
            );
            let _ = old.outbound.send(Outbound::close(CloseCode::Replaced));
            Self::fail_pending_locked(
                &mut state,
                old.conn_id,
                &BridgeError::LinkLost {
                    reason: CloseCode::Replaced.reason().into(),
                },
            );
        }
        state.connections += 1;
        // The new connection may be a new worker that knows no session: announce them all.
        let keys: Vec<String> = state.sessions.keys().cloned().collect();
        for key in keys {
            if let Some(session) = state.sessions.get_mut(&key) {
                session.started_on = None;
            }
            Self::send_session_frame_locked(&mut state, conn_id, &outbound, &key, true, None);
        }
        let reconnects = state.connections.saturating_sub(1);
        state.active = Some(ActiveLink {
            conn_id,
            outbound,
            connected_at: Instant::now(),
            extension_version: extension_version.clone(),
        });
        state.last_inbound_at = Some(Instant::now());
        state.quiet = false;
        drop(state);
        self.inner.link_changed.send_modify(|n| *n += 1);
        let _ = self.inner.link_events.send(LinkEvent::Up {
            extension_version,
            reconnects,
        });
        conn_id
    }

    /// Queue `SESSION_START`/`SESSION_END` for `session` on `conn_id` and remember the ACK
    /// it expects.
    fn send_session_frame_locked(
        state: &mut State,
        conn_id: u64,
        outbound: &mpsc::UnboundedSender<Outbound>,
        session: &str,
        starts: bool,
        reply: Option<oneshot::Sender<()>>,
    ) {
        let Ok(id) = crate::auth::random_hex(8) else {
            return;
        };
        let frame = if starts {
            Frame::SessionStart {
                id: id.clone(),
                session: session.to_string(),
            }
        } else {
            Frame::SessionEnd {
                id: id.clone(),
                session: session.to_string(),
            }
        };
        if outbound.send(Outbound::Frame(frame)).is_ok() {
            state.pending_acks.insert(
                id,
                PendingAck {
                    conn_id,
                    session: session.to_string(),
                    starts,
                    reply,
                },
            );
        }
    }

    /// An `ACK` arrived on `conn_id`.
    pub(crate) fn acknowledge(&self, conn_id: u64, id: &str) {
        let mut state = self.state();
        let Some(ack) = state.pending_acks.remove(id) else {
            tracing::debug!(id, "ACK for nothing pending");
            return;
        };
        if ack.conn_id != conn_id {
            return;
        }
        if ack.starts {
            if let Some(session) = state.sessions.get_mut(&ack.session) {
                session.started_on = Some(conn_id);
            }
        }
        if let Some(reply) = ack.reply {
            let _ = reply.send(());
        }
    }

    /// Forget a shell session and tell the extension to drop its state; waits for the ACK up
    /// to `wait` (zero: do not wait).
    pub async fn close_session(&self, session: &str, wait: Duration) {
        let (reply, acked) = oneshot::channel();
        {
            let mut state = self.state();
            if state.sessions.remove(session).is_none() {
                return;
            }
            let Some((conn_id, outbound)) = state
                .active
                .as_ref()
                .map(|a| (a.conn_id, a.outbound.clone()))
            else {
                return;
            };
            Self::send_session_frame_locked(
                &mut state,
                conn_id,
                &outbound,
                session,
                false,
                Some(reply),
            );
        }
        if !wait.is_zero() && tokio::time::timeout(wait, acked).await.is_err() {
            tracing::debug!(session, "SESSION_END not acknowledged in time");
        }
    }

    /// Make sure the extension acknowledged `SESSION_START` for `session` on `conn_id`
    /// before a command runs in it. A missing ACK is not fatal (the extension creates a
    /// session on first use), so this waits briefly and then lets the command go.
    async fn ensure_session(
        &self,
        conn_id: u64,
        outbound: &mpsc::UnboundedSender<Outbound>,
        session: &str,
    ) {
        let (reply, acked) = oneshot::channel();
        {
            let mut state = self.state();
            let entry = state
                .sessions
                .entry(session.to_string())
                .or_insert(ShellSession { started_on: None });
            if entry.started_on == Some(conn_id) {
                return;
            }
            Self::send_session_frame_locked(
                &mut state,
                conn_id,
                outbound,
                session,
                true,
                Some(reply),
            );
        }
        let wait = self.inner.config.connect_grace.min(Duration::from_secs(2));
        if tokio::time::timeout(wait, acked).await.is_err() {
            tracing::warn!(
                session,
                "SESSION_START not acknowledged in time; running anyway"
            );
        }
    }

    pub fn subscribe_link_events(&self) -> broadcast::Receiver<LinkEvent> {
        self.inner.link_events.subscribe()
    }

    /// The connection `conn_id` ended; fail its requests and, if it was the active link,
    /// forget it.
    pub(crate) fn remove(&self, conn_id: u64, reason: &str) {
        let mut state = self.state();
        let was_active = state.active.as_ref().map(|a| a.conn_id) == Some(conn_id);
        if was_active {
            state.active = None;
            state.last_disconnect_reason = Some(reason.to_string());
            tracing::warn!(conn = conn_id, reason, "extension link down");
        }
        let err = if state.shutting_down {
            BridgeError::ShuttingDown
        } else {
            BridgeError::LinkLost {
                reason: reason.to_string(),
            }
        };
        Self::fail_pending_locked(&mut state, conn_id, &err);
        state.pending_acks.retain(|_, ack| ack.conn_id != conn_id);
        drop(state);
        if was_active {
            self.inner.link_changed.send_modify(|n| *n += 1);
            let _ = self.inner.link_events.send(LinkEvent::Down {
                reason: reason.to_string(),
            });
        }
    }

    fn fail_pending_locked(state: &mut State, conn_id: u64, err: &BridgeError) {
        let ids: Vec<String> = state
            .pending
            .iter()
            .filter(|(_, p)| p.conn_id == conn_id)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(p) = state.pending.remove(&id) {
                let _ = p.reply.send(Err(err.clone()));
            }
        }
    }

    pub(crate) fn record_inbound(&self, conn_id: u64) {
        let mut state = self.state();
        if state.active.as_ref().map(|a| a.conn_id) == Some(conn_id) {
            state.last_inbound_at = Some(Instant::now());
            state.quiet = false;
        }
    }

    pub(crate) fn record_rtt(&self, rtt_ms: u64) {
        let mut state = self.state();
        state.last_rtt_ms = Some(rtt_ms);
        if state.recent_rtts.len() == RTT_WINDOW {
            state.recent_rtts.pop_front();
        }
        state.recent_rtts.push_back(rtt_ms);
    }

    pub(crate) fn record_rejected_token(&self) {
        self.state().rejected_tokens += 1;
    }

    pub(crate) fn record_quiet(&self, conn_id: u64, quiet: bool) {
        let mut state = self.state();
        if state.active.as_ref().map(|a| a.conn_id) == Some(conn_id) {
            state.quiet = quiet;
        }
    }

    pub(crate) fn record_malformed(&self) {
        self.state().malformed_frames += 1;
    }

    /// A `RESULT` arrived on `conn_id`.
    pub(crate) fn complete(&self, conn_id: u64, id: &str, outcome: Outcome) {
        let mut state = self.state();
        match state.pending.get(id) {
            Some(p) if p.conn_id == conn_id => {
                if let Some(p) = state.pending.remove(id) {
                    let _ = p.reply.send(Ok(outcome));
                }
            }
            Some(_) => tracing::warn!(id, "RESULT arrived on a different connection; ignored"),
            None => tracing::debug!(
                id,
                "RESULT for a request nobody waits for (late or cancelled)"
            ),
        }
    }

    /// Wait up to the connect grace for an active link.
    async fn wait_for_link(&self) -> Result<(u64, mpsc::UnboundedSender<Outbound>), BridgeError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.inner.config.connect_grace;
        let mut changes = self.inner.link_changed.subscribe();
        loop {
            {
                let state = self.state();
                if state.shutting_down {
                    return Err(BridgeError::ShuttingDown);
                }
                if let Some(active) = &state.active {
                    return Ok((active.conn_id, active.outbound.clone()));
                }
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                _ => {
                    return Err(BridgeError::NotConnected {
                        waited_ms: started.elapsed().as_millis() as u64,
                    })
                }
            }
        }
    }

    /// Run one command in the extension and wait for its result, its deadline, or the end of
    /// its link, whichever comes first.
    pub async fn execute(
        &self,
        request: ExecuteRequest,
        cancel: &CancellationToken,
    ) -> Result<Outcome, BridgeError> {
        let (conn_id, outbound) = tokio::select! {
            link = self.wait_for_link() => link?,
            _ = cancel.cancelled() => return Err(BridgeError::Cancelled),
        };
        self.ensure_session(conn_id, &outbound, &request.session)
            .await;
        let timeout = request.timeout.unwrap_or(self.inner.config.command_timeout);
        let id = crate::auth::random_hex(8).map_err(|e| BridgeError::LinkLost {
            reason: e.to_string(),
        })?;
        let (reply, response) = oneshot::channel();
        self.state()
            .pending
            .insert(id.clone(), Pending { conn_id, reply });
        let frame = Frame::Execute {
            id: id.clone(),
            session: request.session,
            command: request.command,
            group_id: request.group_id,
            initial_url: request.initial_url,
            group_name: request.group_name,
            deadline_ms: Some(timeout.as_millis() as u64),
            allowed_domains: request.allowed_domains,
        };
        if outbound.send(Outbound::Frame(frame)).is_err() {
            self.state().pending.remove(&id);
            return Err(BridgeError::LinkLost {
                reason: "the connection closed before the command was sent".into(),
            });
        }
        let outcome = tokio::select! {
            answer = tokio::time::timeout(timeout, response) => answer,
            _ = cancel.cancelled() => {
                self.state().pending.remove(&id);
                let _ = outbound.send(Outbound::Frame(Frame::Cancel { id }));
                return Err(BridgeError::Cancelled);
            }
        };
        match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(BridgeError::LinkLost {
                reason: "the connection task ended".into(),
            }),
            Err(_) => {
                self.state().pending.remove(&id);
                let _ = outbound.send(Outbound::Frame(Frame::Cancel { id }));
                Err(BridgeError::Timeout {
                    after_ms: timeout.as_millis() as u64,
                })
            }
        }
    }

    pub fn health(&self) -> LinkHealth {
        let state = self.state();
        let link_state = match &state.active {
            None => LinkState::Waiting,
            Some(_) if state.quiet => LinkState::Silent,
            Some(_) => LinkState::Connected,
        };
        LinkHealth {
            state: link_state,
            connected_for_ms: state
                .active
                .as_ref()
                .map(|a| a.connected_at.elapsed().as_millis() as u64),
            last_inbound_age_ms: state
                .last_inbound_at
                .map(|t| t.elapsed().as_millis() as u64),
            last_rtt_ms: state.last_rtt_ms,
            reconnect_count: state.connections.saturating_sub(1),
            extension_version: state.active.as_ref().map(|a| a.extension_version.clone()),
            last_disconnect_reason: state.last_disconnect_reason.clone(),
            pending_requests: state.pending.len(),
            malformed_frames: state.malformed_frames,
            rejected_tokens: state.rejected_tokens,
            rtt_p95_ms: percentile(&state.recent_rtts, 95),
            shell_sessions: state.sessions.len(),
            ping_interval_ms: self.inner.config.ping_interval.as_millis() as u64,
            silence_limit_ms: self.inner.config.silence_limit.as_millis() as u64,
        }
    }

    /// Refuse new requests, close the active link with a reason and fail what is pending.
    pub fn shutdown(&self) {
        let mut state = self.state();
        state.shutting_down = true;
        if let Some((conn_id, outbound)) = state
            .active
            .as_ref()
            .map(|a| (a.conn_id, a.outbound.clone()))
        {
            let keys: Vec<String> = state.sessions.drain().map(|(k, _)| k).collect();
            for key in keys {
                Self::send_session_frame_locked(&mut state, conn_id, &outbound, &key, false, None);
            }
        }
        if let Some(active) = state.active.take() {
            let _ = active
                .outbound
                .send(Outbound::close(CloseCode::ServerShutdown));
            Self::fail_pending_locked(&mut state, active.conn_id, &BridgeError::ShuttingDown);
        }
        drop(state);
        self.inner.link_changed.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridge(grace_ms: u64, timeout_ms: u64) -> Bridge {
        Bridge::new(BridgeConfig {
            token: "t".into(),
            ping_interval: Duration::from_millis(100),
            silence_limit: Duration::from_millis(300),
            connect_grace: Duration::from_millis(grace_ms),
            command_timeout: Duration::from_millis(timeout_ms),
            max_frame_bytes: 1024,
            hello_timeout: Duration::from_millis(100),
            origins: OriginPolicy::new(&[]),
        })
    }

    impl Bridge {
        async fn execute_test(&self, request: ExecuteRequest) -> Result<Outcome, BridgeError> {
            self.execute(request, &CancellationToken::new()).await
        }
    }

    fn request(command: &str) -> ExecuteRequest {
        ExecuteRequest {
            session: "s".into(),
            command: command.into(),
            ..Default::default()
        }
    }

    /// Play the extension's part for session frames: acknowledge them, and return the next
    /// other frame.
    async fn next_frame(
        b: &Bridge,
        conn: u64,
        rx: &mut mpsc::UnboundedReceiver<Outbound>,
    ) -> Option<Outbound> {
        loop {
            match rx.recv().await? {
                Outbound::Frame(Frame::SessionStart { id, .. } | Frame::SessionEnd { id, .. }) => {
                    b.acknowledge(conn, &id)
                }
                other => return Some(other),
            }
        }
    }

    #[test]
    fn p95_of_round_trips() {
        let values: std::collections::VecDeque<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 95), Some(95));
        assert_eq!(percentile(&[7].into_iter().collect(), 95), Some(7));
        assert_eq!(percentile(&Default::default(), 95), None);
    }

    #[tokio::test]
    async fn no_link_fails_after_the_grace_with_a_hint() {
        let b = bridge(50, 1_000);
        let err = b.execute_test(request("pwd")).await.unwrap_err();
        assert!(matches!(err, BridgeError::NotConnected { waited_ms } if waited_ms >= 50));
        assert!(err.retryable());
        assert!(err.hint().contains("token"));
    }

    #[tokio::test]
    async fn a_link_arriving_within_the_grace_is_used() {
        let b = bridge(2_000, 1_000);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let b2 = b.clone();
        let call = tokio::spawn(async move { b2.execute_test(request("pwd")).await });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let conn = b.install(tx, "test".into());
        let Some(Outbound::Frame(Frame::Execute { id, command, .. })) =
            next_frame(&b, conn, &mut rx).await
        else {
            panic!("expected EXECUTE")
        };
        assert_eq!(command, "pwd");
        b.complete(
            conn,
            &id,
            Outcome {
                ok: true,
                output: "~".into(),
                lane: None,
            },
        );
        assert_eq!(call.await.unwrap().unwrap().output, "~");
        assert_eq!(b.health().pending_requests, 0);
    }

    #[tokio::test]
    async fn sessions_are_started_once_per_connection_and_again_after_a_reconnect() {
        let b = bridge(1_000, 1_000);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let conn = b.install(tx, "test".into());
        for _ in 0..2 {
            let b2 = b.clone();
            let call = tokio::spawn(async move { b2.execute_test(request("pwd")).await });
            // The first command of the session is preceded by SESSION_START, the second not.
            let mut starts = 0;
            let id = loop {
                match rx.recv().await.unwrap() {
                    Outbound::Frame(Frame::SessionStart { id, session }) => {
                        assert_eq!(session, "s");
                        starts += 1;
                        b.acknowledge(conn, &id);
                    }
                    Outbound::Frame(Frame::Execute { id, .. }) => break id,
                    _ => panic!("unexpected frame"),
                }
            };
            b.complete(
                conn,
                &id,
                Outcome {
                    ok: true,
                    output: String::new(),
                    lane: None,
                },
            );
            call.await.unwrap().unwrap();
            assert!(starts <= 1);
        }
        assert_eq!(b.health().shell_sessions, 1);
        // A new connection is told about every known session without being asked.
        let (tx2, mut rx2) = mpsc::unbounded_channel();
        b.install(tx2, "test".into());
        assert!(matches!(
            rx2.recv().await,
            Some(Outbound::Frame(Frame::SessionStart { session, .. })) if session == "s"
        ));
    }

    #[tokio::test]
    async fn closing_a_session_sends_session_end_and_waits_for_its_ack() {
        let b = bridge(1_000, 1_000);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let conn = b.install(tx, "test".into());
        b.state().sessions.insert(
            "s1".into(),
            ShellSession {
                started_on: Some(conn),
            },
        );
        let b2 = b.clone();
        let closing =
            tokio::spawn(async move { b2.close_session("s1", Duration::from_secs(5)).await });
        let Some(Outbound::Frame(Frame::SessionEnd { id, session })) = rx.recv().await else {
            panic!("expected SESSION_END")
        };
        assert_eq!(session, "s1");
        assert!(!closing.is_finished());
        b.acknowledge(conn, &id);
        closing.await.unwrap();
        assert_eq!(b.health().shell_sessions, 0);
    }

    #[tokio::test]
    async fn removing_the_link_fails_pending_requests_at_once() {
        let b = bridge(10, 60_000);
        let (tx, _rx) = mpsc::unbounded_channel();
        let conn = b.install(tx, "test".into());
        let calls: Vec<_> = (0..5)
            .map(|i| {
                let b = b.clone();
                tokio::spawn(async move { b.execute_test(request(&format!("cmd{i}"))).await })
            })
            .collect();
        while b.health().pending_requests < 5 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut events = b.subscribe_link_events();
        let started = Instant::now();
        b.remove(conn, "silence limit");
        for call in calls {
            let err = call.await.unwrap().unwrap_err();
            assert_eq!(err.reason(), "extension_link_lost");
        }
        assert!(started.elapsed() < Duration::from_millis(100));
        assert_eq!(b.health().state, LinkState::Waiting);
        assert_eq!(
            b.health().last_disconnect_reason.as_deref(),
            Some("silence limit")
        );
        assert_eq!(
            events.recv().await.unwrap(),
            LinkEvent::Down {
                reason: "silence limit".into()
            }
        );
    }

    #[tokio::test]
    async fn replacement_closes_the_old_link_and_fails_its_requests() {
        let b = bridge(10, 60_000);
        let (old_tx, mut old_rx) = mpsc::unbounded_channel();
        let old = b.install(old_tx, "old".into());
        let b2 = b.clone();
        let call = tokio::spawn(async move { b2.execute_test(request("pwd")).await });
        assert!(matches!(
            next_frame(&b, old, &mut old_rx).await,
            Some(Outbound::Frame(_))
        ));
        let (new_tx, _new_rx) = mpsc::unbounded_channel();
        b.install(new_tx, "new".into());
        assert!(matches!(
            old_rx.recv().await,
            Some(Outbound::Close(4003, _))
        ));
        assert_eq!(
            call.await.unwrap().unwrap_err().reason(),
            "extension_link_lost"
        );
        let health = b.health();
        assert_eq!(health.reconnect_count, 1);
        assert_eq!(health.extension_version.as_deref(), Some("new"));
    }

    #[tokio::test]
    async fn timeout_cancels_in_the_extension() {
        let b = bridge(10, 50);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let conn = b.install(tx, "test".into());
        b.state().sessions.insert(
            "s".into(),
            ShellSession {
                started_on: Some(conn),
            },
        );
        let err = b.execute_test(request("wait")).await.unwrap_err();
        assert_eq!(err, BridgeError::Timeout { after_ms: 50 });
        assert!(!err.retryable());
        let Some(Outbound::Frame(Frame::Execute { id, .. })) = rx.recv().await else {
            panic!("expected EXECUTE")
        };
        assert!(
            matches!(rx.recv().await, Some(Outbound::Frame(Frame::Cancel { id: c })) if c == id)
        );
        assert_eq!(b.health().pending_requests, 0);
    }

    #[tokio::test]
    async fn client_cancellation_stops_waiting_and_tells_the_extension() {
        let b = bridge(10, 60_000);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let conn = b.install(tx, "test".into());
        let cancel = CancellationToken::new();
        let b2 = b.clone();
        let token = cancel.clone();
        let call = tokio::spawn(async move { b2.execute(request("wait"), &token).await });
        let Some(Outbound::Frame(Frame::Execute { id, .. })) = next_frame(&b, conn, &mut rx).await
        else {
            panic!("expected EXECUTE")
        };
        cancel.cancel();
        assert_eq!(call.await.unwrap().unwrap_err(), BridgeError::Cancelled);
        assert!(
            matches!(rx.recv().await, Some(Outbound::Frame(Frame::Cancel { id: c })) if c == id)
        );
        assert_eq!(b.health().pending_requests, 0);
    }

    #[tokio::test]
    async fn shutdown_answers_everyone() {
        let b = bridge(10, 60_000);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let conn = b.install(tx, "test".into());
        let b2 = b.clone();
        let call = tokio::spawn(async move { b2.execute_test(request("pwd")).await });
        assert!(matches!(
            next_frame(&b, conn, &mut rx).await,
            Some(Outbound::Frame(_))
        ));
        b.shutdown();
        assert_eq!(call.await.unwrap().unwrap_err(), BridgeError::ShuttingDown);
        // Sessions are ended before the close frame.
        assert!(matches!(
            rx.recv().await,
            Some(Outbound::Frame(Frame::SessionEnd { .. }))
        ));
        assert!(matches!(rx.recv().await, Some(Outbound::Close(4006, _))));
        assert_eq!(
            b.execute_test(request("pwd")).await.unwrap_err(),
            BridgeError::ShuttingDown
        );
    }
}
