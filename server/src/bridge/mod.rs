//! The bridge to the browser extension: one active WebSocket link and what hangs off it.
//!
//! This module owns the active link (install, replace, remove, shutdown), the link events and
//! the shared state the other parts lock. Each concern has its own file: [`handshake`] (who
//! may become the link), [`connection`] (one socket's life), [`pending`] (requests and the
//! rule that none outlives its link), [`sessions`] (shell sessions announced per
//! connection), [`health`] (figures) and [`error`] (how a request can fail). It must not parse
//! command lines or know about MCP; callers hand it a command string and get an [`Outcome`]
//! or a [`BridgeError`].

mod connection;
mod error;
mod handshake;
mod health;
mod oversize;
mod pending;
mod sessions;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use shared_protocol::close::CloseCode;
use shared_protocol::frame::{Frame, Secret};
use shared_protocol::link::LinkState;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::task::TaskTracker;

pub use error::{BridgeError, Outcome};
pub use health::LinkHealth;
pub use pending::{ExecuteRequest, ProgressSink};

use crate::auth::{AuthThrottle, OriginPolicy};
use health::Figures;
use pending::Pending;
use sessions::{PendingAck, ShellSession};

/// Failed proofs allowed per window before further attempts are refused unchecked.
pub const THROTTLE_MAX_FAILURES: usize = 10;
/// The throttle's sliding window.
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(10);

/// Timings and limits of the bridge; production defaults come from `shared-protocol`.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    pub token: Secret,
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

// Nearly every message is a frame: boxing them would allocate for each one to save room
// only in the rare close.
#[allow(clippy::large_enum_variant)]
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

#[derive(Default)]
struct State {
    active: Option<ActiveLink>,
    pending: HashMap<String, Pending>,
    sessions: HashMap<String, ShellSession>,
    pending_acks: HashMap<String, PendingAck>,
    next_conn_id: u64,
    /// Ids of EXECUTE and SESSION_* frames: a counter, so they are unique without spending
    /// the random source (kept for nonces and tokens).
    next_message_id: u64,
    figures: Figures,
    shutting_down: bool,
    /// The lanes the active connection's extension last reported (none without one).
    lanes: Vec<shared_protocol::frame::LaneReport>,
}

/// Lanes kept from an extension's report, at most (the extension opens 32 at most).
pub const MAX_REPORTED_LANES: usize = 64;

impl State {
    fn next_message_id(&mut self, prefix: &str) -> String {
        self.next_message_id += 1;
        format!("{prefix}{}", self.next_message_id)
    }
}

struct Inner {
    config: BridgeConfig,
    epoch: Instant,
    state: Mutex<State>,
    throttle: Mutex<AuthThrottle>,
    /// Bumped whenever a link is installed or removed, so waiters can wake.
    link_changed: watch::Sender<u64>,
    link_events: broadcast::Sender<LinkEvent>,
    /// Every connection task, so shutdown can wait until their close frames are out.
    connections: TaskTracker,
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
                throttle: Mutex::new(AuthThrottle::new(
                    THROTTLE_WINDOW.as_millis() as u64,
                    THROTTLE_MAX_FAILURES,
                )),
                link_changed,
                link_events,
                connections: TaskTracker::new(),
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

    /// The future of one upgraded socket, tracked so [`Self::connections_closed`] waits
    /// for it. For `on_upgrade`, which runs the future itself.
    pub fn tracked_connection(
        &self,
        socket: axum::extract::ws::WebSocket,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.inner
            .connections
            .track_future(connection::serve_socket(self.clone(), socket))
    }

    /// After [`Self::shutdown`]: wait until every connection task has ended (its close
    /// frame written), at most `limit`. Returns whether they all ended.
    pub async fn connections_closed(&self, limit: Duration) -> bool {
        self.inner.connections.close();
        tokio::time::timeout(limit, self.inner.connections.wait())
            .await
            .is_ok()
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.state().shutting_down
    }

    /// Make a freshly authenticated connection the active link, replacing (and closing) any
    /// older one. Returns the new connection's id, or `None` when the server is shutting
    /// down (the caller closes with 4006).
    pub(crate) fn install(
        &self,
        outbound: mpsc::UnboundedSender<Outbound>,
        extension_version: String,
    ) -> Option<u64> {
        let mut state = self.state();
        if state.shutting_down {
            return None;
        }
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
            state
                .pending_acks
                .retain(|_, ack| ack.conn_id != old.conn_id);
        }
        state.figures.connections += 1;
        state.lanes.clear();
        // The new connection may be a new worker that knows no session: announce them all.
        Self::announce_sessions_locked(&mut state, conn_id, &outbound);
        let reconnects = state.figures.reconnects();
        state.active = Some(ActiveLink {
            conn_id,
            outbound,
            connected_at: Instant::now(),
            extension_version: extension_version.clone(),
        });
        state.figures.last_inbound_at = Some(Instant::now());
        state.figures.quiet = false;
        drop(state);
        self.inner.link_changed.send_modify(|n| *n += 1);
        let _ = self.inner.link_events.send(LinkEvent::Up {
            extension_version,
            reconnects,
        });
        Some(conn_id)
    }

    /// The extension of connection `conn_id` reported its lanes; kept if it is the active
    /// one, at most [`MAX_REPORTED_LANES`] of them, their text capped like every label.
    pub(crate) fn set_lanes(
        &self,
        conn_id: u64,
        mut lanes: Vec<shared_protocol::frame::LaneReport>,
    ) {
        use crate::labels::{sanitize, MAX_LABEL_CHARS};
        let mut state = self.state();
        if state.active.as_ref().map(|a| a.conn_id) != Some(conn_id) {
            return;
        }
        lanes.truncate(MAX_REPORTED_LANES);
        for lane in &mut lanes {
            lane.id = sanitize(&lane.id, 24);
            lane.name = sanitize(&lane.name, MAX_LABEL_CHARS);
            lane.owner = sanitize(&lane.owner, 2 * MAX_LABEL_CHARS);
            lane.agent = sanitize(&lane.agent, 2 * MAX_LABEL_CHARS);
            lane.last_command = sanitize(&lane.last_command, 2 * MAX_LABEL_CHARS);
        }
        state.lanes = lanes;
    }

    /// The lanes open in the browser, as its extension last reported them.
    pub fn lanes(&self) -> Vec<shared_protocol::frame::LaneReport> {
        self.state().lanes.clone()
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
            state.lanes.clear();
            state.figures.last_disconnect_reason = Some(reason.to_string());
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
        // Dropping the ACK senders wakes anyone waiting for a session handshake on it.
        state.pending_acks.retain(|_, ack| ack.conn_id != conn_id);
        drop(state);
        if was_active {
            self.inner.link_changed.send_modify(|n| *n += 1);
            let _ = self.inner.link_events.send(LinkEvent::Down {
                reason: reason.to_string(),
            });
        }
    }

    pub(crate) fn record_inbound(&self, conn_id: u64) {
        let mut state = self.state();
        if state.active.as_ref().map(|a| a.conn_id) == Some(conn_id) {
            state.figures.last_inbound_at = Some(Instant::now());
            state.figures.quiet = false;
        }
    }

    pub(crate) fn record_rtt(&self, rtt_ms: u64) {
        self.state().figures.record_rtt(rtt_ms);
    }

    pub(crate) fn record_rejected_token(&self) {
        self.state().figures.rejected_tokens += 1;
    }

    pub(crate) fn record_throttled(&self) {
        self.state().figures.throttled_handshakes += 1;
    }

    pub(crate) fn record_quiet(&self, conn_id: u64, quiet: bool) {
        let mut state = self.state();
        if state.active.as_ref().map(|a| a.conn_id) == Some(conn_id) {
            state.figures.quiet = quiet;
        }
    }

    pub(crate) fn record_malformed(&self) {
        self.state().figures.malformed_frames += 1;
    }

    pub fn health(&self) -> LinkHealth {
        let state = self.state();
        let figures = &state.figures;
        let link_state = match &state.active {
            None => LinkState::Waiting,
            Some(_) if figures.quiet => LinkState::Silent,
            Some(_) => LinkState::Connected,
        };
        LinkHealth {
            state: link_state,
            connected_for_ms: state
                .active
                .as_ref()
                .map(|a| a.connected_at.elapsed().as_millis() as u64),
            last_inbound_age_ms: figures
                .last_inbound_at
                .map(|t| t.elapsed().as_millis() as u64),
            last_rtt_ms: figures.last_rtt_ms,
            reconnect_count: figures.reconnects(),
            extension_version: state.active.as_ref().map(|a| a.extension_version.clone()),
            last_disconnect_reason: figures.last_disconnect_reason.clone(),
            pending_requests: state.pending.len(),
            malformed_frames: figures.malformed_frames,
            rejected_tokens: figures.rejected_tokens,
            throttled_handshakes: figures.throttled_handshakes,
            rtt_p95_ms: figures.rtt_p95_ms(),
            shell_sessions: state.sessions.len(),
            ping_interval_ms: self.inner.config.ping_interval.as_millis() as u64,
            silence_limit_ms: self.inner.config.silence_limit.as_millis() as u64,
        }
    }

    /// Refuse new requests, close the active link with a reason and fail what is pending.
    /// [`Self::connections_closed`] then waits until the close frame is on the wire.
    pub fn shutdown(&self) {
        let mut state = self.state();
        state.shutting_down = true;
        if let Some((conn_id, outbound)) = state
            .active
            .as_ref()
            .map(|a| (a.conn_id, a.outbound.clone()))
        {
            Self::end_all_sessions_locked(&mut state, conn_id, &outbound);
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
mod tests;
