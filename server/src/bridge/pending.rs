//! Requests waiting for a `RESULT`: [`Bridge::execute`], the pending table, and the rule that
//! no request outlives its link.
//!
//! A request is entered in the table, under the state lock, only while the connection it is
//! sent on is still the active one; a connection that ends fails every request entered on it
//! before its socket is torn down. A request holds no sender of its connection while it
//! waits, so nothing it does can keep a dead connection's writer alive. This module must not
//! parse command lines or know about MCP.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shared_protocol::frame::Frame;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{Bridge, BridgeError, Outbound, Outcome, State};

/// One command to run in the extension.
#[derive(Debug, Clone, Default)]
pub struct ExecuteRequest {
    pub session: String,
    pub command: String,
    pub group_id: Option<String>,
    pub initial_url: Option<String>,
    pub group_name: Option<String>,
    pub window_id: Option<i64>,
    /// Overrides [`super::BridgeConfig::command_timeout`].
    pub timeout: Option<Duration>,
    /// Domain allowlist for the extension to apply to the page the command acts on.
    pub allowed_domains: Vec<String>,
    /// The MCP client's label, for the person watching lanes (see `Frame::Execute`).
    pub agent: Option<String>,
    /// Where `PROGRESS` reports of this command go (`None`: nobody listens).
    pub progress: Option<ProgressSink>,
    /// For `upload`: the files read for it.
    pub files: Vec<shared_protocol::frame::UploadFile>,
}

/// Receives a running command's `PROGRESS` reports: items done, of how many, and what.
#[derive(Clone)]
pub struct ProgressSink(Arc<ReportFn>);

/// Items done (from 0), of how many, and what.
type ReportFn = dyn Fn(u64, Option<u64>, &str) + Send + Sync;

impl ProgressSink {
    pub fn new(report: impl Fn(u64, Option<u64>, &str) + Send + Sync + 'static) -> Self {
        Self(Arc::new(report))
    }

    fn report(&self, done: u64, total: Option<u64>, message: &str) {
        (self.0)(done, total, message)
    }
}

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

pub(super) struct Pending {
    conn_id: u64,
    reply: oneshot::Sender<Result<Outcome, BridgeError>>,
    progress: Option<ProgressSink>,
}

impl Bridge {
    /// Run one command in the extension and wait for its result, its deadline, or the end of
    /// its link, whichever comes first.
    pub async fn execute(
        &self,
        request: ExecuteRequest,
        cancel: &CancellationToken,
    ) -> Result<Outcome, BridgeError> {
        let conn_id = tokio::select! {
            link = self.wait_for_link() => link?,
            _ = cancel.cancelled() => return Err(BridgeError::Cancelled),
        };
        tokio::select! {
            _ = self.ensure_session(conn_id, &request.session) => {}
            _ = cancel.cancelled() => return Err(BridgeError::Cancelled),
        }
        let timeout = request.timeout.unwrap_or(self.inner.config.command_timeout);
        let (reply, response) = oneshot::channel();
        let progress = request.progress;
        let id = {
            let mut state = self.state();
            let Some(outbound) = state
                .active
                .as_ref()
                .filter(|a| a.conn_id == conn_id)
                .map(|a| a.outbound.clone())
            else {
                return Err(Self::lost_before_sending(&state));
            };
            let id = state.next_message_id("r");
            let frame = Frame::Execute {
                id: id.clone(),
                session: request.session,
                command: request.command,
                group_id: request.group_id,
                initial_url: request.initial_url,
                group_name: request.group_name,
                window_id: request.window_id,
                deadline_ms: Some(timeout.as_millis() as u64),
                allowed_domains: request.allowed_domains,
                agent: request.agent,
                files: request.files,
            };
            if outbound.send(Outbound::Frame(frame)).is_err() {
                return Err(BridgeError::LinkLost {
                    reason: "the connection closed before the command was sent".into(),
                });
            }
            state.pending.insert(
                id.clone(),
                Pending {
                    conn_id,
                    reply,
                    progress,
                },
            );
            id
        };
        let outcome = tokio::select! {
            answer = tokio::time::timeout(timeout, response) => answer,
            _ = cancel.cancelled() => {
                self.abandon_request(conn_id, &id);
                return Err(BridgeError::Cancelled);
            }
        };
        match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(BridgeError::LinkLost {
                reason: "the connection task ended".into(),
            }),
            Err(_) => {
                self.abandon_request(conn_id, &id);
                Err(BridgeError::Timeout {
                    after_ms: timeout.as_millis() as u64,
                })
            }
        }
    }

    /// The error for a request whose connection went away before it could be sent.
    fn lost_before_sending(state: &State) -> BridgeError {
        if state.shutting_down {
            return BridgeError::ShuttingDown;
        }
        BridgeError::LinkLost {
            reason: state
                .figures
                .last_disconnect_reason
                .clone()
                .unwrap_or_else(|| "the connection ended before the command was sent".into()),
        }
    }

    /// Stop waiting for request `id` and tell the extension, if its connection is still the
    /// active one, to stop working on it.
    fn abandon_request(&self, conn_id: u64, id: &str) {
        let mut state = self.state();
        state.pending.remove(id);
        if let Some(active) = state.active.as_ref().filter(|a| a.conn_id == conn_id) {
            let _ = active
                .outbound
                .send(Outbound::Frame(Frame::Cancel { id: id.to_string() }));
        }
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

    /// A `PROGRESS` report arrived on `conn_id`: passed to whoever waits for request `id`
    /// (outside the state lock), or dropped when nobody does.
    pub(crate) fn progress(
        &self,
        conn_id: u64,
        id: &str,
        done: u64,
        total: Option<u64>,
        message: &str,
    ) {
        let sink = {
            let state = self.state();
            state
                .pending
                .get(id)
                .filter(|p| p.conn_id == conn_id)
                .and_then(|p| p.progress.clone())
        };
        if let Some(sink) = sink {
            sink.report(done, total, message);
        }
    }

    /// Request `id` on `conn_id` gets `err` instead of a `RESULT` (one that could not be
    /// read); every other request, and the link, carry on.
    pub(crate) fn fail_request(&self, conn_id: u64, id: &str, err: BridgeError) {
        let mut state = self.state();
        match state.pending.get(id) {
            Some(p) if p.conn_id == conn_id => {
                if let Some(p) = state.pending.remove(id) {
                    let _ = p.reply.send(Err(err));
                }
            }
            Some(_) => tracing::warn!(id, "oversized RESULT on a different connection; ignored"),
            None => tracing::debug!(id, "oversized RESULT for a request nobody waits for"),
        }
    }

    pub(super) fn fail_pending_locked(state: &mut State, conn_id: u64, err: &BridgeError) {
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

    /// Wait up to the connect grace for an active link; returns its connection id.
    async fn wait_for_link(&self) -> Result<u64, BridgeError> {
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
                    return Ok(active.conn_id);
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
}
