//! Shell-session bookkeeping: which MCP sessions the extension must know about, the
//! `SESSION_START`/`SESSION_END` frames that tell it, and the `ACK`s that confirm them.
//!
//! A session is announced once per connection (a new connection may be a fresh service
//! worker that knows none). This module must not run commands; `pending` does, after
//! [`Bridge::ensure_session`].

use std::time::Duration;

use shared_protocol::frame::Frame;
use tokio::sync::{mpsc, oneshot};

use super::{Bridge, Outbound, State};

/// A shell session the extension must know about; `started_on` is the connection on which
/// its `SESSION_START` was acknowledged (a new connection needs it again).
pub(super) struct ShellSession {
    pub(super) started_on: Option<u64>,
}

/// `SESSION_START`/`SESSION_END` frames waiting for their `ACK` at most. Past it the oldest
/// is forgotten: its waiter goes on as if the connection had ended (a command then runs
/// without the confirmation, which the extension does not need: it makes a session on first
/// use), so an extension that never acknowledges cannot grow the table.
pub const MAX_PENDING_ACKS: usize = 1024;

/// A `SESSION_START`/`SESSION_END` waiting for its `ACK`.
pub(super) struct PendingAck {
    pub(super) conn_id: u64,
    /// Order of sending, to forget the oldest first.
    seq: u64,
    session: String,
    starts: bool,
    /// Dropped unanswered when the connection ends, which wakes the waiter at once.
    reply: Option<oneshot::Sender<()>>,
}

impl Bridge {
    /// Queue `SESSION_START`/`SESSION_END` for `session` on `conn_id` and remember the ACK
    /// it expects.
    pub(super) fn send_session_frame_locked(
        state: &mut State,
        conn_id: u64,
        outbound: &mpsc::UnboundedSender<Outbound>,
        session: &str,
        starts: bool,
        reply: Option<oneshot::Sender<()>>,
    ) {
        let id = state.next_message_id("s");
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
            if state.pending_acks.len() >= MAX_PENDING_ACKS {
                let oldest = state
                    .pending_acks
                    .iter()
                    .min_by_key(|(_, ack)| ack.seq)
                    .map(|(id, _)| id.clone());
                if let Some(oldest) = oldest {
                    tracing::warn!(id = %oldest, "the extension left {MAX_PENDING_ACKS} session frames unacknowledged; forgetting the oldest");
                    state.pending_acks.remove(&oldest);
                }
            }
            let seq = state.next_message_id;
            state.pending_acks.insert(
                id,
                PendingAck {
                    conn_id,
                    seq,
                    session: session.to_string(),
                    starts,
                    reply,
                },
            );
        }
    }

    /// Announce every known session on a new connection, without waiting for the ACKs.
    pub(super) fn announce_sessions_locked(
        state: &mut State,
        conn_id: u64,
        outbound: &mpsc::UnboundedSender<Outbound>,
    ) {
        let keys: Vec<String> = state.sessions.keys().cloned().collect();
        for key in keys {
            if let Some(session) = state.sessions.get_mut(&key) {
                session.started_on = None;
            }
            Self::send_session_frame_locked(state, conn_id, outbound, &key, true, None);
        }
    }

    /// Tell the extension to drop every session (shutdown); forgets them all.
    pub(super) fn end_all_sessions_locked(
        state: &mut State,
        conn_id: u64,
        outbound: &mpsc::UnboundedSender<Outbound>,
    ) {
        let keys: Vec<String> = state.sessions.drain().map(|(k, _)| k).collect();
        for key in keys {
            Self::send_session_frame_locked(state, conn_id, outbound, &key, false, None);
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
    /// session on first use), so this waits briefly and then lets the command go. It
    /// returns at once when the connection ends meanwhile (its pending ACKs are dropped).
    pub(super) async fn ensure_session(&self, conn_id: u64, session: &str) {
        let (reply, acked) = oneshot::channel();
        {
            let mut state = self.state();
            let Some(outbound) = state
                .active
                .as_ref()
                .filter(|a| a.conn_id == conn_id)
                .map(|a| a.outbound.clone())
            else {
                return;
            };
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
                &outbound,
                session,
                true,
                Some(reply),
            );
        }
        let wait = self.inner.config.connect_grace.min(Duration::from_secs(2));
        match tokio::time::timeout(wait, acked).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => tracing::debug!(session, "connection ended before SESSION_START's ACK"),
            Err(_) => tracing::warn!(
                session,
                "SESSION_START not acknowledged in time; running anyway"
            ),
        }
    }
}
