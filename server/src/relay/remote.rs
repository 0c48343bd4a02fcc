//! The attach backend: the relay's messages go to the owner's streamable HTTP `/mcp` on
//! loopback, and everything the owner sends back (responses, progress, log messages, list
//! changes) comes out of it.
//!
//! It owns the HTTP side of one MCP session with the owner: the `Mcp-Session-Id` and
//! protocol-version headers, the relay's claim in the host's `initialize` (the owner proved
//! the relay key before this backend was made; no bearer token is ever sent), JSON and SSE
//! response bodies, and the GET stream for server-initiated messages. Messages are POSTed by
//! one writer task, in the order they were given, from a bounded queue ([`WRITER_QUEUE`]);
//! response bodies are read by tasks of their own, so a long SSE reply holds up nothing.
//! Everything it runs stops when it is dropped.
//!
//! It reports the owner as lost when a request cannot reach it, is not taken within
//! [`HEADERS_TIMEOUT`], or the GET stream ends, and the session as expired when the owner no
//! longer knows it (404): it must not retry or re-initialize by itself — the relay decides
//! that.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::core::{Event, Gen};
use super::sse::SseParser;
use super::Inbox;
use crate::relay_door::{HostClaim, HOST_META_KEY};

/// Messages queued for the owner before the relay is told the queue is full.
pub const WRITER_QUEUE: usize = 256;
/// Longest the owner may take to accept one POST (answer its headers). rmcp answers them
/// once the message is in the session's queue — before the handler runs — so only an owner
/// that stopped serving takes this long.
pub const HEADERS_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest non-SSE response body read (error bodies, JSON replies); the SSE parser has its
/// own cap per event.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How the relay reaches an owner.
#[derive(Clone)]
pub struct Target {
    pub url: String,
    /// Sent as `X-Domshell-Client` so the owner can tell its proxies apart.
    pub client_id: String,
}

struct Session {
    id: Option<String>,
    protocol: Option<String>,
    stream_open: bool,
}

pub struct Remote {
    gen: Gen,
    queue: mpsc::Sender<Value>,
    /// Stops the writer, the body readers and the GET stream when this backend is dropped.
    _stop: DropGuard,
}

impl Remote {
    pub fn new(gen: Gen, target: Target, claim: HostClaim, inbox: Inbox) -> Self {
        // No proxies (loopback only) and no overall timeout: an SSE reply lasts as long as
        // the command; the owner's own call budget bounds it.
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let stop = CancellationToken::new();
        let (queue, messages) = mpsc::channel(WRITER_QUEUE);
        let ctx = Ctx {
            gen,
            target,
            http,
            session: Arc::new(Mutex::new(Session {
                id: None,
                protocol: None,
                stream_open: false,
            })),
            inbox,
            stop: stop.clone(),
        };
        tokio::spawn(ctx.write_in_order(messages, claim));
        Self {
            gen,
            queue,
            _stop: stop.drop_guard(),
        }
    }

    pub fn gen(&self) -> Gen {
        self.gen
    }

    /// Queue one message for the owner; what comes back is delivered as
    /// [`Event::FromBackend`]. Never waits: a full queue is the caller's to report.
    pub fn send(&self, message: Value) -> Result<(), TrySendError<Value>> {
        self.queue.try_send(message)
    }
}

/// Put `claim` in the `_meta` of an `initialize` (what the host sent there stays).
fn present(initialize: &mut Value, claim: &HostClaim) {
    let Some(params) = initialize.get_mut("params").and_then(Value::as_object_mut) else {
        return;
    };
    let meta = params
        .entry("_meta")
        .or_insert_with(|| serde_json::json!({}));
    if let (Some(meta), Ok(claim)) = (meta.as_object_mut(), serde_json::to_value(claim)) {
        meta.insert(HOST_META_KEY.to_string(), claim);
    }
}

fn method(message: &Value) -> Option<&str> {
    message.get("method").and_then(Value::as_str)
}

#[derive(Clone)]
struct Ctx {
    gen: Gen,
    target: Target,
    http: reqwest::Client,
    session: Arc<Mutex<Session>>,
    inbox: Inbox,
    stop: CancellationToken,
}

impl Ctx {
    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn report(&self, event: Event<tokio::net::TcpListener, HostClaim>) {
        let _ = self.inbox.send(event).await;
    }

    async fn lost(&self, why: String) {
        self.report(Event::BackendLost(self.gen, why)).await;
    }

    async fn deliver(&self, message: Value) {
        self.report(Event::FromBackend(self.gen, message)).await;
    }

    fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        let (id, protocol) = {
            let s = self.session();
            (s.id.clone(), s.protocol.clone())
        };
        let mut request = self
            .http
            .request(method, &self.target.url)
            .header("Accept", "application/json, text/event-stream")
            .header("X-Domshell-Client", &self.target.client_id);
        if let Some(id) = id {
            request = request.header("Mcp-Session-Id", id);
        }
        if let Some(protocol) = protocol {
            request = request.header("MCP-Protocol-Version", protocol);
        }
        request
    }

    /// Run `work` until it ends or this backend is dropped.
    fn spawn_until_stopped(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let stop = self.stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = work => {}
            }
        });
    }

    /// The one writer: POST each message after the previous one was taken. Order holds
    /// because the next POST starts only once the owner answered the headers of the last,
    /// and rmcp answers them only after it put the message in the session's queue; the body
    /// (an SSE stream that lasts as long as the command) is read by a task of its own, so a
    /// long call does not hold up a `notifications/cancelled` for it. One connection per
    /// message in flight, rather than HTTP pipelining, which reqwest does not offer.
    async fn write_in_order(self, mut messages: mpsc::Receiver<Value>, claim: HostClaim) {
        let mut claim = Some(claim);
        loop {
            let mut message = tokio::select! {
                _ = self.stop.cancelled() => return,
                next = messages.recv() => match next {
                    Some(message) => message,
                    None => return,
                },
            };
            if method(&message) == Some("initialize") {
                // The claim is valid once: presented with the first initialize only.
                if let Some(claim) = claim.take() {
                    present(&mut message, &claim);
                }
            }
            let sent = tokio::select! {
                _ = self.stop.cancelled() => return,
                sent = self.post(message) => sent,
            };
            if sent.is_break() {
                return;
            }
        }
    }

    /// POST one message and hand its response to a reader; `Break` when this backend is
    /// done for (lost, or its session expired).
    async fn post(&self, message: Value) -> ControlFlow<()> {
        let is_initialize = method(&message) == Some("initialize");
        let is_initialized = method(&message) == Some("notifications/initialized");
        let had_session = self.session().id.is_some();
        let sending = self
            .request(reqwest::Method::POST)
            .header("Content-Type", "application/json")
            .body(message.to_string())
            .send();
        let response = match tokio::time::timeout(HEADERS_TIMEOUT, sending).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                self.lost(format!("the owner's /mcp cannot be reached: {e}"))
                    .await;
                return ControlFlow::Break(());
            }
            Err(_) => {
                self.lost(format!(
                    "the owner did not take a message within {} s",
                    HEADERS_TIMEOUT.as_secs()
                ))
                .await;
                return ControlFlow::Break(());
            }
        };
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND && had_session && !is_initialize {
            // The owner does not know our session: it is not the owner we initialized with.
            self.report(Event::SessionExpired(self.gen)).await;
            return ControlFlow::Break(());
        }
        if is_initialize {
            if let Some(id) = response
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
            {
                self.session().id = Some(id.to_string());
            }
        }
        let ctx = self.clone();
        if !status.is_success() {
            let id = message.get("id").cloned();
            self.spawn_until_stopped(async move { ctx.read_refusal(response, id).await });
            return ControlFlow::Continue(());
        }
        let is_sse = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if is_sse {
            self.spawn_until_stopped(async move {
                ctx.read_sse(response, is_initialize).await;
            });
        } else if status != reqwest::StatusCode::ACCEPTED {
            self.spawn_until_stopped(async move { ctx.read_json(response, is_initialize).await });
        }
        if is_initialized {
            self.open_stream();
        }
        ControlFlow::Continue(())
    }

    /// A non-success answer: a JSON-RPC error body is forwarded as it is; anything else
    /// becomes one for the request it answers.
    async fn read_refusal(&self, response: reqwest::Response, id: Option<Value>) {
        let status = response.status();
        let text = read_capped(response)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        match serde_json::from_str::<Value>(&text) {
            Ok(body) if body.get("jsonrpc").is_some() => self.deliver(body).await,
            _ => {
                if let Some(id) = id {
                    self.deliver(serde_json::json!({
                        "jsonrpc": "2.0", "id": id,
                        "error": {"code": -32603, "message": format!("the owner answered HTTP {status}: {}", text.chars().take(200).collect::<String>())}
                    }))
                    .await;
                }
            }
        }
    }

    async fn read_json(&self, response: reqwest::Response, is_initialize: bool) {
        match read_capped(response).await {
            Ok(bytes) if bytes.is_empty() => {}
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(body) => self.on_message(body, is_initialize).await,
                Err(e) => tracing::warn!("owner sent a body that is not JSON: {e}"),
            },
            Err(e) => {
                self.lost(format!("reading the owner's answer failed: {e}"))
                    .await
            }
        }
    }

    async fn on_message(&self, message: Value, is_initialize: bool) {
        if is_initialize {
            if let Some(version) = message
                .pointer("/result/protocolVersion")
                .and_then(Value::as_str)
            {
                self.session().protocol = Some(version.to_string());
            }
        }
        self.deliver(message).await;
    }

    /// Relay every event of an SSE body; whether the stream ended cleanly.
    async fn read_sse(&self, response: reqwest::Response, is_initialize: bool) -> bool {
        let mut parser = SseParser::default();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    self.lost(format!("the owner's event stream broke: {e}"))
                        .await;
                    return false;
                }
            };
            for data in parser.feed(&chunk) {
                match serde_json::from_str::<Value>(&data) {
                    Ok(message) => self.on_message(message, is_initialize).await,
                    // Priming events carry no data worth relaying.
                    Err(_) => tracing::trace!("non-JSON SSE data ignored"),
                }
            }
        }
        true
    }

    /// The GET stream carries what the owner sends unasked (log messages, list changes).
    fn open_stream(&self) {
        {
            let mut s = self.session();
            if s.stream_open || s.id.is_none() {
                return;
            }
            s.stream_open = true;
        }
        let ctx = self.clone();
        self.spawn_until_stopped(async move {
            let response = match ctx
                .request(reqwest::Method::GET)
                .header("Accept", "text/event-stream")
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    return ctx
                        .lost(format!("the owner's event stream cannot be opened: {e}"))
                        .await
                }
            };
            if response.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED {
                return;
            }
            if !response.status().is_success() {
                tracing::debug!(status = %response.status(), "owner refused the GET stream");
                return;
            }
            if ctx.read_sse(response, false).await {
                ctx.stream_ended().await;
            }
        });
    }

    /// The owner ended the GET stream: it either went away or ended our session (an idle
    /// session expired, the owner restarted it). A ping on the session tells which.
    async fn stream_ended(&self) {
        let ping = serde_json::json!({"jsonrpc": "2.0", "id": "domshell-relay-session-check", "method": "ping"});
        match self
            .request(reqwest::Method::POST)
            .header("Content-Type", "application/json")
            .body(ping.to_string())
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => {
                self.report(Event::SessionExpired(self.gen)).await;
            }
            _ => self.lost("the owner closed its event stream".into()).await,
        }
    }
}

/// A whole response body, refused past [`MAX_BODY_BYTES`].
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!("its answer is larger than {MAX_BODY_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyConfig;
    use serde_json::json;
    use shared_protocol::handshake::Proof;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    fn claim() -> HostClaim {
        HostClaim {
            challenge: "00".repeat(16),
            proof: Proof([0; 32]),
            client_id: "stdio-proxy/1".into(),
            policy: PolicyConfig::default(),
        }
    }

    /// One HTTP request's body, read whole.
    async fn read_body(stream: &mut TcpStream) -> Option<Value> {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            bytes.extend_from_slice(&buf[..n]);
            let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return serde_json::from_slice(&bytes[end + 4..end + 4 + length]).ok();
            }
        }
    }

    /// An owner's `/mcp` that notes each message as it takes it, then answers a request with
    /// an SSE stream it never ends (a long command) and a notification with 202.
    async fn slow_owner() -> (String, mpsc::UnboundedReceiver<Value>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let (seen, taken) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    while let Some(body) = read_body(&mut stream).await {
                        let is_request = body.get("id").is_some();
                        let _ = seen.send(body);
                        if is_request {
                            let _ = stream
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
                                .await;
                            // Held open, as a command that runs for a long time.
                            std::future::pending::<()>().await;
                        }
                        let _ = stream
                            .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                            .await;
                    }
                });
            }
        });
        (url, taken)
    }

    fn target(url: String) -> Target {
        Target {
            url,
            client_id: "stdio-proxy/1".into(),
        }
    }

    // Several workers, as the relay runs: tasks of one message each would race there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn messages_reach_the_owner_in_order_even_behind_a_long_call() {
        let (url, mut taken) = slow_owner().await;
        let (inbox, _events) = mpsc::channel(64);
        let remote = Remote::new(1, target(url), claim(), inbox);
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                          "params": {"name": "domshell_execute", "arguments": {"command": "sleep 9000"}}});
        let mut sent = vec![call];
        sent.push(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                         "params": {"requestId": 1}}),
        );
        for n in 0..100 {
            sent.push(json!({"jsonrpc": "2.0", "method": "notifications/progress",
                             "params": {"n": n}}));
        }
        for message in &sent {
            remote.send(message.clone()).unwrap();
        }
        let mut received = Vec::new();
        while received.len() < sent.len() {
            let next = tokio::time::timeout(Duration::from_secs(10), taken.recv())
                .await
                .expect("the owner keeps taking messages while the call runs")
                .unwrap();
            received.push(next);
        }
        assert_eq!(received, sent);
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once() {
        // An owner that takes the connection and never answers: the writer waits on the
        // first message's headers, and the rest queue up to the bound.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let (seen, mut first) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = read_body(&mut stream).await;
                let _ = seen.send(());
                held.push(stream);
            }
        });
        let (inbox, _events) = mpsc::channel(64);
        let remote = Remote::new(1, target(url), claim(), inbox);
        let ping = |id: usize| json!({"jsonrpc": "2.0", "id": id, "method": "ping"});
        remote.send(ping(0)).unwrap();
        first.recv().await.unwrap();
        for id in 1..=WRITER_QUEUE {
            remote.send(ping(id)).unwrap();
        }
        assert!(matches!(
            remote.send(ping(WRITER_QUEUE + 1)),
            Err(TrySendError::Full(m)) if m == ping(WRITER_QUEUE + 1)
        ));
    }
}
