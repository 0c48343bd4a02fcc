//! Logging notifications to MCP clients about the extension link: when it drops and
//! when it returns, to every client that enabled logging at a level that includes them.
//!
//! Each client is a [`LogListener`]: a bounded queue drained by the listener's own task,
//! which gives every send a deadline. The fan-out only ever offers to queues, so a client
//! that stops reading (a stalled GET stream) loses its own messages and delays nobody else.
//!
//! How whoever keeps the listeners (by session key) uses them:
//! - `LogListener::spawn(peer: Peer<RoleServer>, level: Arc<Mutex<LoggingLevel>>) ->
//!   LogListener` once the client is initialized (inside a Tokio runtime). `level` is the
//!   session's `logging/setLevel` threshold, read at every offer.
//! - `listener.offer(level: LoggingLevel, data: &Value) -> Offer` never waits: a message
//!   below the threshold is skipped, one that does not fit the queue is dropped for that
//!   client only (counted, warned about once).
//! - A client whose send failed or missed its deadline gets nothing more: `offer` then
//!   answers [`Offer::Closed`] and `listener.is_closed()` is true; drop such a listener.
//!   [`fan_out`] offers to a whole map and removes those.
//! - Dropping a listener ends its task at once, even in the middle of a send.
//!
//! It must not change the link; it only reports it. It must never await a client outside
//! that client's own task.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::{Peer, RoleServer};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use super::McpShared;
use crate::bridge::LinkEvent;

/// Messages one client may have waiting; link changes are rare, so a full queue means the
/// client stopped reading.
const QUEUE_CAPACITY: usize = 16;

/// How long one message may take to reach a client before it is given up on.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// A client's transport refused a message.
#[derive(Debug, thiserror::Error)]
#[error("the client's transport refused the message: {0}")]
pub(super) struct SinkClosed(String);

/// Where a listener's messages go: an MCP peer, or a stand-in in tests.
pub(super) trait LogSink: Send + Sync + 'static {
    /// Who this is, for logs.
    fn label(&self) -> String;

    fn deliver(
        &self,
        level: LoggingLevel,
        data: Value,
    ) -> impl Future<Output = Result<(), SinkClosed>> + Send + '_;
}

impl LogSink for Peer<RoleServer> {
    fn label(&self) -> String {
        self.peer_info().map_or_else(
            || "an MCP client".to_string(),
            |info| format!("{}/{}", info.client_info.name, info.client_info.version),
        )
    }

    async fn deliver(&self, level: LoggingLevel, data: Value) -> Result<(), SinkClosed> {
        let param = LoggingMessageNotificationParam::new(level, data).with_logger("domshell");
        self.notify_logging_message(param)
            .await
            .map_err(|e| SinkClosed(e.to_string()))
    }
}

/// What became of one offered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Offer {
    Queued,
    /// Below the level the client asked for.
    BelowLevel,
    /// The client's queue is full: this message is lost for this client.
    Dropped,
    /// The client is gone or too slow; it gets nothing more.
    Closed,
}

/// A connected client that wants log notifications at its level or above.
pub(super) struct LogListener {
    queue: mpsc::Sender<(LoggingLevel, Value)>,
    level: Arc<Mutex<LoggingLevel>>,
    dropped: AtomicU64,
    client: String,
    /// Aborting on drop ends a send that is still waiting for the client.
    _drain: AbortOnDropHandle<()>,
}

impl LogListener {
    /// A listener for `peer` with its own queue and sending task.
    pub(super) fn spawn(peer: Peer<RoleServer>, level: Arc<Mutex<LoggingLevel>>) -> Self {
        Self::with_sink(peer, level, QUEUE_CAPACITY, SEND_TIMEOUT)
    }

    fn with_sink<S: LogSink>(
        sink: S,
        level: Arc<Mutex<LoggingLevel>>,
        capacity: usize,
        timeout: Duration,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        let client = sink.label();
        let drain = tokio::spawn(drain(sink, receiver, timeout, client.clone()));
        Self {
            queue,
            level,
            dropped: AtomicU64::new(0),
            client,
            _drain: AbortOnDropHandle::new(drain),
        }
    }

    /// Queue `data` for this client if it wants `level`; never waits.
    pub(super) fn offer(&self, level: LoggingLevel, data: &Value) -> Offer {
        if self.queue.is_closed() {
            return Offer::Closed;
        }
        let threshold = *self.level.lock().unwrap_or_else(|p| p.into_inner());
        if !level_at_least(level, threshold) {
            return Offer::BelowLevel;
        }
        match self.queue.try_send((level, data.clone())) {
            Ok(()) => Offer::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(
                        client = %self.client,
                        "an MCP client is not reading its log notifications; dropping link messages for it"
                    );
                }
                Offer::Dropped
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Closed,
        }
    }

    /// The client's task has ended: its transport failed or it was too slow.
    pub(super) fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// Messages lost because this client's queue was full.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for LogListener {
    fn drop(&mut self) {
        let dropped = self.dropped();
        if dropped > 0 {
            tracing::debug!(client = %self.client, dropped, "log listener ended");
        }
    }
}

/// Send what a listener's queue holds, one message at a time, each within `timeout`; the
/// first failure or miss ends the listener.
async fn drain<S: LogSink>(
    sink: S,
    mut queue: mpsc::Receiver<(LoggingLevel, Value)>,
    timeout: Duration,
    client: String,
) {
    while let Some((level, data)) = queue.recv().await {
        match tokio::time::timeout(timeout, sink.deliver(level, data)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(%client, "no more log notifications for this client: {e}");
                return;
            }
            Err(_) => {
                tracing::warn!(
                    %client,
                    timeout_ms = timeout.as_millis() as u64,
                    "an MCP client did not take a log notification in time; it gets no more"
                );
                return;
            }
        }
    }
}

/// Offer one message to every listener in `listeners` (`listener` finds it in an entry) and
/// forget those that are closed.
pub(super) fn fan_out<V>(
    listeners: &mut HashMap<String, V>,
    listener: impl Fn(&V) -> &LogListener,
    level: LoggingLevel,
    data: &Value,
) {
    listeners.retain(|_, entry| {
        let listener = listener(entry);
        listener.offer(level, data);
        // Its task may have ended meanwhile, whatever the offer found: a closed one goes.
        !listener.is_closed()
    });
}

/// Send link changes to every client that asked for log messages.
pub(super) async fn forward_link_events(
    shared: std::sync::Weak<McpShared>,
    mut events: tokio::sync::broadcast::Receiver<LinkEvent>,
) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let (level, data) = match event {
            LinkEvent::Up {
                extension_version,
                reconnects,
            } => (
                LoggingLevel::Info,
                json!({"event": "extension_connected", "extension_version": extension_version, "reconnects": reconnects}),
            ),
            LinkEvent::Down { reason } => (
                LoggingLevel::Warning,
                json!({"event": "extension_disconnected", "reason": reason,
                       "hint": "The extension reconnects by itself; commands wait briefly for it."}),
            ),
        };
        fan_out(
            &mut shared.sessions.listeners(),
            |(_, listener)| listener,
            level,
            &data,
        );
    }
}

fn level_rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

fn level_at_least(level: LoggingLevel, threshold: LoggingLevel) -> bool {
    level_rank(level) >= level_rank(threshold)
}

#[cfg(test)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;

    enum Behaviour {
        /// Takes every message at once and hands it to the test.
        Record(mpsc::UnboundedSender<Value>),
        /// Never finishes a send; says when one started, and is dropped with its task.
        Hang {
            entered: mpsc::UnboundedSender<()>,
            _alive: oneshot::Sender<()>,
        },
        Fail,
    }

    struct TestSink(Behaviour);

    impl LogSink for TestSink {
        fn label(&self) -> String {
            "test client".into()
        }

        async fn deliver(&self, _level: LoggingLevel, data: Value) -> Result<(), SinkClosed> {
            match &self.0 {
                Behaviour::Record(out) => {
                    let _ = out.send(data);
                    Ok(())
                }
                Behaviour::Hang { entered, .. } => {
                    let _ = entered.send(());
                    std::future::pending().await
                }
                Behaviour::Fail => Err(SinkClosed("gone".into())),
            }
        }
    }

    fn level(level: LoggingLevel) -> Arc<Mutex<LoggingLevel>> {
        Arc::new(Mutex::new(level))
    }

    fn recording(capacity: usize) -> (LogListener, mpsc::UnboundedReceiver<Value>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let listener = LogListener::with_sink(
            TestSink(Behaviour::Record(tx)),
            level(LoggingLevel::Info),
            capacity,
            SEND_TIMEOUT,
        );
        (listener, rx)
    }

    struct Hanging {
        listener: LogListener,
        entered: mpsc::UnboundedReceiver<()>,
        alive: oneshot::Receiver<()>,
    }

    fn hanging(capacity: usize, timeout: Duration) -> Hanging {
        let (entered_tx, entered) = mpsc::unbounded_channel();
        let (alive_tx, alive) = oneshot::channel();
        let listener = LogListener::with_sink(
            TestSink(Behaviour::Hang {
                entered: entered_tx,
                _alive: alive_tx,
            }),
            level(LoggingLevel::Debug),
            capacity,
            timeout,
        );
        Hanging {
            listener,
            entered,
            alive,
        }
    }

    async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(5), future)
            .await
            .unwrap_or_else(|_| panic!("{what} did not happen"))
    }

    async fn until_closed(listener: &LogListener) {
        within("closing", async {
            while !listener.is_closed() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }

    #[test]
    fn log_levels_are_ordered() {
        assert!(level_at_least(LoggingLevel::Warning, LoggingLevel::Info));
        assert!(!level_at_least(LoggingLevel::Info, LoggingLevel::Warning));
        assert!(level_at_least(LoggingLevel::Emergency, LoggingLevel::Debug));
    }

    #[tokio::test]
    async fn a_stuck_client_does_not_hold_up_another() {
        let mut stuck = hanging(QUEUE_CAPACITY, Duration::from_secs(600));
        let (reader, mut received) = recording(QUEUE_CAPACITY);
        let mut listeners = HashMap::from([
            ("stuck".to_string(), stuck.listener),
            ("reader".to_string(), reader),
        ]);
        for n in 0..QUEUE_CAPACITY * 3 {
            fan_out(
                &mut listeners,
                |l| l,
                LoggingLevel::Warning,
                &json!({"n": n}),
            );
            assert_eq!(
                within("a message to the reader", received.recv()).await,
                Some(json!({"n": n}))
            );
        }
        within("the stuck send", stuck.entered.recv()).await;
        assert_eq!(listeners.len(), 2, "a slow client is not a closed one");
        assert!(listeners["stuck"].dropped() > 0);
        assert_eq!(listeners["reader"].dropped(), 0);
    }

    #[tokio::test]
    async fn the_queue_holds_at_most_its_bound() {
        let mut stuck = hanging(4, Duration::from_secs(600));
        assert_eq!(
            stuck.listener.offer(LoggingLevel::Info, &json!(0)),
            Offer::Queued
        );
        // The first message is out of the queue, in the send that never finishes.
        within("the stuck send", stuck.entered.recv()).await;
        let offers: Vec<Offer> = (1..=7)
            .map(|n| stuck.listener.offer(LoggingLevel::Info, &json!(n)))
            .collect();
        assert_eq!(offers[..4], [Offer::Queued; 4]);
        assert_eq!(offers[4..], [Offer::Dropped; 3]);
        assert_eq!(stuck.listener.dropped(), 3);
        assert!(!stuck.listener.is_closed());
    }

    #[tokio::test]
    async fn messages_below_the_clients_level_are_not_sent() {
        let (reader, mut received) = recording(4);
        *reader.level.lock().unwrap() = LoggingLevel::Warning;
        assert_eq!(
            reader.offer(LoggingLevel::Info, &json!("info")),
            Offer::BelowLevel
        );
        assert_eq!(
            reader.offer(LoggingLevel::Error, &json!("error")),
            Offer::Queued
        );
        assert_eq!(
            within("the error", received.recv()).await,
            Some(json!("error"))
        );
        assert!(received.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_failed_send_closes_the_listener_and_the_fan_out_forgets_it() {
        let failing = LogListener::with_sink(
            TestSink(Behaviour::Fail),
            level(LoggingLevel::Info),
            4,
            SEND_TIMEOUT,
        );
        assert_eq!(failing.offer(LoggingLevel::Info, &json!(1)), Offer::Queued);
        until_closed(&failing).await;
        assert_eq!(failing.offer(LoggingLevel::Info, &json!(2)), Offer::Closed);
        let (reader, _received) = recording(4);
        let mut listeners = HashMap::from([
            ("failing".to_string(), failing),
            ("reader".to_string(), reader),
        ]);
        fan_out(&mut listeners, |l| l, LoggingLevel::Info, &json!(3));
        assert_eq!(listeners.keys().collect::<Vec<_>>(), ["reader"]);
    }

    #[tokio::test]
    async fn a_send_past_its_deadline_closes_the_listener_and_ends_its_task() {
        let stuck = hanging(4, Duration::from_millis(50));
        assert_eq!(
            stuck.listener.offer(LoggingLevel::Info, &json!(1)),
            Offer::Queued
        );
        until_closed(&stuck.listener).await;
        assert!(within("the task's end", stuck.alive).await.is_err());
        assert_eq!(
            stuck.listener.offer(LoggingLevel::Info, &json!(2)),
            Offer::Closed
        );
    }

    #[tokio::test]
    async fn dropping_the_listener_ends_its_task_even_mid_send() {
        let mut stuck = hanging(4, Duration::from_secs(600));
        assert_eq!(
            stuck.listener.offer(LoggingLevel::Info, &json!(1)),
            Offer::Queued
        );
        within("the stuck send", stuck.entered.recv()).await;
        drop(stuck.listener);
        assert!(within("the task's end", stuck.alive).await.is_err());

        let idle = hanging(4, Duration::from_secs(600));
        drop(idle.listener);
        assert!(within("the idle task's end", idle.alive).await.is_err());
    }
}
