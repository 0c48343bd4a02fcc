//! A scriptable stand-in for the browser extension: dials the bridge like the service worker
//! does (Origin header, waits for `CHALLENGE`, answers `HELLO` with its proof, checks the
//! server's proof in `WELCOME`), answers `PING`/`EXECUTE`/sessions, and records everything
//! the server sent.
//!
//! It owns one WebSocket client and its background tasks. It must not assert anything itself
//! (tests decide what is right) and must not run real browser commands: the answers come from
//! a handler the test supplies.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use shared_protocol::frame::Frame;
use shared_protocol::handshake::{prove, verify, Nonce, ResumeTicket, Role, NONCE_BYTES};
use shared_protocol::{extension_origin, EXTENSION_ID, MAX_FRAME_BYTES, PROTOCOL_VERSION};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a WebSocket dial failed: refused at the HTTP level (with the status), or anything else.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("upgrade refused with HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("websocket dial failed: {0}")]
    Other(tungstenite::Error),
}

impl ConnectError {
    /// The HTTP status of a refused upgrade.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            Self::Other(_) => None,
        }
    }
}

/// Dial `url` with the given `Origin` header (or none), without any protocol handshake.
pub async fn connect_raw(url: &str, origin: Option<&str>) -> Result<WsStream, ConnectError> {
    let mut request = url.into_client_request().map_err(ConnectError::Other)?;
    if let Some(origin) = origin {
        let value = HeaderValue::from_str(origin)
            .map_err(|e| ConnectError::Other(tungstenite::Error::HttpFormat(e.into())))?;
        request.headers_mut().insert("Origin", value);
    }
    let mut config = tungstenite::protocol::WebSocketConfig::default();
    config.max_message_size = Some(MAX_FRAME_BYTES * 2);
    config.max_frame_size = Some(MAX_FRAME_BYTES * 2);
    match tokio_tungstenite::connect_async_with_config(request, Some(config), false).await {
        Ok((stream, _)) => Ok(stream),
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err(ConnectError::Refused { status, body })
        }
        Err(e) => Err(ConnectError::Other(e)),
    }
}

/// One `EXECUTE` as the handler sees it.
#[derive(Debug, Clone)]
pub struct ExecuteCall {
    pub id: String,
    pub session: String,
    pub command: String,
    pub deadline_ms: Option<u64>,
    pub group_id: Option<String>,
}

/// What the handler answers; `None` from a handler means "never answer".
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub ok: bool,
    pub output: String,
    pub lane: Option<String>,
}

impl Reply {
    pub fn ok(output: impl Into<String>) -> Self {
        Self {
            ok: true,
            output: output.into(),
            lane: None,
        }
    }

    pub fn err(output: impl Into<String>) -> Self {
        Self {
            ok: false,
            output: output.into(),
            lane: None,
        }
    }
}

pub type HandlerFuture = Pin<Box<dyn Future<Output = Option<Reply>> + Send>>;
pub type Handler = Arc<dyn Fn(ExecuteCall) -> HandlerFuture + Send + Sync>;

/// The default handler: `pwd` → `~`, `echo X` → `X`, `sleep N` → waits N ms then `slept`
/// (milliseconds, unlike the real `sleep`: tests want short waits), anything else →
/// `ok: false`, `command not found` (a real command the fake lacks, such as `refresh`, is
/// how tests make a command fail in the extension: the server refuses a word that is no
/// command before it is sent).
pub fn default_handler() -> Handler {
    Arc::new(|call: ExecuteCall| {
        Box::pin(async move {
            let command = call.command.trim();
            let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
            Some(match name {
                "pwd" => Reply::ok("~"),
                "echo" => Reply::ok(rest),
                "sleep" => match rest.trim().parse::<u64>() {
                    Ok(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        Reply::ok("slept")
                    }
                    Err(_) => Reply::err(format!("sleep: invalid duration {rest:?}")),
                },
                _ => Reply::err(format!("{name}: command not found")),
            })
        }) as HandlerFuture
    })
}

/// How the fake extension introduces itself and behaves.
#[derive(Clone)]
pub struct FakeOptions {
    /// `Origin` header; `None` sends none.
    pub origin: Option<String>,
    pub token: String,
    pub protocol: u32,
    pub version: String,
    pub capabilities: Vec<String>,
    pub handler: Handler,
    pub answer_pings: bool,
    /// Acknowledge `SESSION_START`/`SESSION_END` (off: the server waits for the ACK).
    pub answer_sessions: bool,
    /// How long to wait for `CHALLENGE`, then for `WELCOME` (or a refusal).
    pub handshake_timeout: Duration,
    /// Resume ticket to claim in `HELLO` (from an earlier [`FakeExtension::resume_ticket`]).
    pub resume: Option<ResumeTicket>,
}

impl FakeOptions {
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            origin: Some(extension_origin(EXTENSION_ID)),
            token: token.into(),
            protocol: PROTOCOL_VERSION,
            version: "fake".into(),
            capabilities: Vec::new(),
            handler: default_handler(),
            answer_pings: true,
            answer_sessions: true,
            handshake_timeout: Duration::from_secs(5),
            resume: None,
        }
    }

    /// Answer `EXECUTE` with a synchronous function of the command line.
    pub fn with_sync_handler(mut self, f: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Self {
        let f = Arc::new(f);
        self.handler = Arc::new(move |call: ExecuteCall| {
            let reply = f(&call.command);
            Box::pin(async move { Some(reply) }) as HandlerFuture
        });
        self
    }

    pub fn with_handler(mut self, handler: Handler) -> Self {
        self.handler = handler;
        self
    }
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self::new(crate::server::TEST_TOKEN)
    }
}

impl std::fmt::Debug for FakeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeOptions")
            .field("origin", &self.origin)
            .field("protocol", &self.protocol)
            .field("version", &self.version)
            .field("answer_pings", &self.answer_pings)
            .finish_non_exhaustive()
    }
}

/// The `WELCOME` did not carry a valid proof of the token: the peer is not a server that
/// knows it. Reach it through `anyhow::Error::downcast_ref`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server's WELCOME does not prove it knows the token")]
pub struct ServerNotProven;

/// The server closed the socket instead of sending `WELCOME`. Reach it through
/// `anyhow::Error::downcast_ref`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server refused the handshake: close {code} {reason:?}")]
pub struct HandshakeRefused {
    pub code: u16,
    pub reason: String,
}

enum Outgoing {
    Message(Message),
    Close(u16, String),
}

#[derive(Default)]
struct Record {
    frames: Vec<Frame>,
    /// Every text message, including those that did not decode.
    texts: Vec<String>,
    close: Option<(u16, String)>,
    error: Option<String>,
}

struct Inner {
    record: Mutex<Record>,
    answer_pings: AtomicBool,
    answer_sessions: AtomicBool,
    answer_executes: AtomicBool,
    closed: watch::Sender<bool>,
    /// Bumped on every received message, so waiters wake without polling.
    received: watch::Sender<u64>,
    running: Mutex<HashMap<String, AbortHandle>>,
}

impl Inner {
    fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn running(&self) -> MutexGuard<'_, HashMap<String, AbortHandle>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A connected, welcomed fake extension. Dropping it drops the socket without a close
/// handshake (like a killed service worker).
pub struct FakeExtension {
    inner: Arc<Inner>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    welcome: Frame,
    tasks: Vec<AbortHandle>,
}

impl FakeExtension {
    /// Dial, wait for `CHALLENGE`, send `HELLO` with a proof, wait for `WELCOME` and check
    /// the server's proof. A refusal by close frame is returned as a [`HandshakeRefused`]
    /// error, a `WELCOME` without a valid proof as [`ServerNotProven`], a refused upgrade as
    /// a [`ConnectError`].
    pub async fn connect(url: &str, opts: FakeOptions) -> anyhow::Result<FakeExtension> {
        let mut ws = connect_raw(url, opts.origin.as_deref())
            .await
            .with_context(|| format!("dialing {url}"))?;
        let server_nonce = tokio::time::timeout(opts.handshake_timeout, await_challenge(&mut ws))
            .await
            .with_context(|| format!("no CHALLENGE within {:?}", opts.handshake_timeout))??;
        let mut ours = [0u8; NONCE_BYTES];
        getrandom::fill(&mut ours).map_err(|e| anyhow::anyhow!("drawing a nonce: {e}"))?;
        let ours = Nonce(ours);
        let hello = Frame::Hello {
            protocol: opts.protocol,
            version: opts.version.clone(),
            capabilities: opts.capabilities.clone(),
            nonce: ours,
            proof: prove(&opts.token, Role::Extension, &server_nonce, &ours),
            resume: opts.resume.as_ref().and_then(|t| t.claim(&server_nonce)),
        };
        ws.send(Message::Text(hello.encode()?.into()))
            .await
            .context("sending HELLO")?;
        let welcome = tokio::time::timeout(opts.handshake_timeout, await_welcome(&mut ws))
            .await
            .with_context(|| format!("no WELCOME within {:?}", opts.handshake_timeout))??;
        let Frame::Welcome { proof, .. } = &welcome else {
            unreachable!("await_welcome returns only WELCOME")
        };
        if !verify(&opts.token, Role::Server, &server_nonce, &ours, proof) {
            return Err(ServerNotProven.into());
        }
        Ok(Self::run(ws, welcome, &opts))
    }

    /// Dial and introduce itself as a protocol-1 extension would (`HELLO` with the token in
    /// it, sent on open without waiting); returns the close code and reason the server
    /// answers with, and every text frame it sent before.
    pub async fn connect_as_version_1(
        url: &str,
        token: &str,
    ) -> anyhow::Result<((u16, String), Vec<String>)> {
        let mut ws = connect_raw(url, Some(&extension_origin(EXTENSION_ID)))
            .await
            .with_context(|| format!("dialing {url}"))?;
        let hello = serde_json::json!({
            "type": "HELLO", "protocol": 1, "version": "0.1.0", "capabilities": ["shell"], "token": token,
        });
        ws.send(Message::Text(hello.to_string().into()))
            .await
            .context("sending a version-1 HELLO")?;
        let mut texts = Vec::new();
        let read = async {
            while let Some(message) = ws.next().await {
                match message.context("reading the answer")? {
                    Message::Text(text) => texts.push(text.to_string()),
                    Message::Close(frame) => {
                        return Ok(frame
                            .map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((1005, String::new())));
                    }
                    _ => {}
                }
            }
            anyhow::bail!("the server closed without a close frame")
        };
        let close = tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .context("no close frame within 10 s")??;
        Ok((close, texts))
    }

    /// Connect expecting the server to refuse the handshake; returns its close code/reason.
    pub async fn connect_expect_refusal(
        url: &str,
        opts: FakeOptions,
    ) -> anyhow::Result<(u16, String)> {
        match Self::connect(url, opts).await {
            Ok(fake) => anyhow::bail!("the server welcomed the connection: {:?}", fake.welcome()),
            Err(e) => match e.downcast_ref::<HandshakeRefused>() {
                Some(r) => Ok((r.code, r.reason.clone())),
                None => Err(e.context("expected a close frame refusing the handshake")),
            },
        }
    }

    fn run(ws: WsStream, welcome: Frame, opts: &FakeOptions) -> FakeExtension {
        let (closed, _) = watch::channel(false);
        let (received, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            record: Mutex::new(Record::default()),
            answer_pings: AtomicBool::new(opts.answer_pings),
            answer_sessions: AtomicBool::new(opts.answer_sessions),
            answer_executes: AtomicBool::new(true),
            closed,
            received,
            running: Mutex::new(HashMap::new()),
        });
        inner.record().frames.push(welcome.clone());
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
        let (sink, stream) = ws.split();
        let writer = tokio::spawn(write_loop(sink, outgoing_rx)).abort_handle();
        let reader = tokio::spawn(read_loop(
            stream,
            inner.clone(),
            outgoing.clone(),
            opts.handler.clone(),
        ))
        .abort_handle();
        FakeExtension {
            inner,
            outgoing,
            welcome,
            tasks: vec![writer, reader],
        }
    }

    /// The `WELCOME` the server sent.
    pub fn welcome(&self) -> &Frame {
        &self.welcome
    }

    /// The resume ticket the server's `WELCOME` handed over.
    pub fn resume_ticket(&self) -> Option<ResumeTicket> {
        match &self.welcome {
            Frame::Welcome { resume, .. } => Some(resume.clone()),
            _ => None,
        }
    }

    /// Stop (or resume) answering `PING`; everything else keeps working.
    pub fn set_answer_pings(&self, answer: bool) {
        self.inner.answer_pings.store(answer, Ordering::SeqCst);
    }

    /// Stop (or resume) answering `EXECUTE`; commands received meanwhile are never answered.
    pub fn set_answer_executes(&self, answer: bool) {
        self.inner.answer_executes.store(answer, Ordering::SeqCst);
    }

    /// Every frame received so far, `WELCOME` first.
    pub fn received(&self) -> Vec<Frame> {
        self.inner.record().frames.clone()
    }

    /// Every text message received after `WELCOME`, decodable or not.
    pub fn received_texts(&self) -> Vec<String> {
        self.inner.record().texts.clone()
    }

    /// How many received frames are of `kind` (`"PING"`, `"EXECUTE"`, ...).
    pub fn count(&self, kind: &str) -> usize {
        self.inner
            .record()
            .frames
            .iter()
            .filter(|f| f.kind() == kind)
            .count()
    }

    /// Wait until a received frame satisfies `predicate` (frames already received count).
    pub async fn wait_for_frame(
        &self,
        predicate: impl Fn(&Frame) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Frame> {
        let mut changes = self.inner.received.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(f) = self.inner.record().frames.iter().find(|f| predicate(f)) {
                return Ok(f.clone());
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    let kinds: Vec<&str> = self
                        .inner
                        .record()
                        .frames
                        .iter()
                        .map(Frame::kind)
                        .collect::<Vec<_>>();
                    anyhow::bail!(
                        "no matching frame within {timeout:?}; received: {kinds:?}, closed: {:?}",
                        self.close_reason()
                    );
                }
            }
        }
    }

    /// Send a frame to the server.
    pub fn send_frame(&self, frame: Frame) -> anyhow::Result<()> {
        let text = frame.encode()?;
        self.send_raw_text(&text)
    }

    /// Send any text message, valid frame or not.
    pub fn send_raw_text(&self, text: &str) -> anyhow::Result<()> {
        self.send_message(Message::Text(text.into()))
    }

    /// Send any WebSocket message (binary, ping, ...).
    pub fn send_message(&self, message: Message) -> anyhow::Result<()> {
        self.outgoing
            .send(Outgoing::Message(message))
            .map_err(|_| anyhow::anyhow!("the connection's writer has stopped"))
    }

    /// Start a close handshake from the extension side.
    pub fn close(&self, code: u16, reason: &str) -> anyhow::Result<()> {
        self.outgoing
            .send(Outgoing::Close(code, reason.to_string()))
            .map_err(|_| anyhow::anyhow!("the connection's writer has stopped"))
    }

    /// Drop the socket at once, without a close frame (a crashed or suspended worker).
    pub fn abort(&self) {
        for task in &self.tasks {
            task.abort();
        }
        for (_, task) in self.inner.running().drain() {
            task.abort();
        }
    }

    /// Close code and reason the server sent, if it sent one.
    pub fn close_reason(&self) -> Option<(u16, String)> {
        self.inner.record().close.clone()
    }

    /// Why the read side ended when it was not a close frame (reset, EOF, protocol error).
    pub fn read_error(&self) -> Option<String> {
        self.inner.record().error.clone()
    }

    /// Whether the connection has ended (close frame, error or EOF).
    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }

    /// Wait until the connection ends; returns the server's close code/reason if it sent one.
    /// `None` also when it did not end within `timeout` (check [`Self::is_closed`]).
    pub async fn wait_closed(&self, timeout: Duration) -> Option<(u16, String)> {
        let mut closed = self.inner.closed.subscribe();
        let _ = tokio::time::timeout(timeout, closed.wait_for(|c| *c)).await;
        self.close_reason()
    }
}

impl std::fmt::Debug for FakeExtension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let record = self.inner.record();
        let kinds: Vec<&str> = record.frames.iter().map(Frame::kind).collect();
        f.debug_struct("FakeExtension")
            .field("received", &kinds)
            .field("close", &record.close)
            .field("error", &record.error)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeExtension {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Read until `CHALLENGE`; a close frame first becomes [`HandshakeRefused`].
async fn await_challenge(ws: &mut WsStream) -> anyhow::Result<Nonce> {
    while let Some(message) = ws.next().await {
        match message.context("reading the challenge")? {
            Message::Text(text) => match Frame::decode(text.as_str(), MAX_FRAME_BYTES) {
                Ok(Frame::Challenge { nonce, .. }) => return Ok(nonce),
                Ok(other) => anyhow::bail!("expected CHALLENGE, got {}", other.kind()),
                Err(e) => anyhow::bail!("expected CHALLENGE, got an undecodable frame: {e}"),
            },
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                return Err(HandshakeRefused { code, reason }.into());
            }
            _ => {}
        }
    }
    anyhow::bail!("the server closed the socket without CHALLENGE or a close frame")
}

/// Read until `WELCOME`; a close frame first becomes [`HandshakeRefused`].
async fn await_welcome(ws: &mut WsStream) -> anyhow::Result<Frame> {
    while let Some(message) = ws.next().await {
        match message.context("reading the handshake reply")? {
            Message::Text(text) => match Frame::decode(text.as_str(), MAX_FRAME_BYTES) {
                Ok(frame @ Frame::Welcome { .. }) => return Ok(frame),
                Ok(other) => anyhow::bail!("expected WELCOME, got {}", other.kind()),
                Err(e) => anyhow::bail!("expected WELCOME, got an undecodable frame: {e}"),
            },
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                return Err(HandshakeRefused { code, reason }.into());
            }
            _ => {}
        }
    }
    anyhow::bail!("the server closed the socket without WELCOME or a close frame")
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WsStream, Message>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(item) = rx.recv().await {
        let result = match item {
            Outgoing::Message(message) => sink.send(message).await,
            Outgoing::Close(code, reason) => {
                let frame = CloseFrame {
                    code: WsCloseCode::from(code),
                    reason: reason.into(),
                };
                sink.send(Message::Close(Some(frame))).await
            }
        };
        if result.is_err() {
            return;
        }
    }
}

async fn read_loop(
    mut stream: futures_util::stream::SplitStream<WsStream>,
    inner: Arc<Inner>,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    handler: Handler,
) {
    let send = |frame: Frame| {
        if let Ok(text) = frame.encode() {
            let _ = outgoing.send(Outgoing::Message(Message::Text(text.into())));
        }
    };
    loop {
        let message = match stream.next().await {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                inner.record().error = Some(e.to_string());
                break;
            }
            None => {
                let mut record = inner.record();
                if record.close.is_none() {
                    record.error = Some("connection closed without a close frame".into());
                }
                break;
            }
        };
        match message {
            Message::Text(text) => {
                let decoded = Frame::decode(text.as_str(), MAX_FRAME_BYTES);
                {
                    let mut record = inner.record();
                    record.texts.push(text.to_string());
                    if let Ok(frame) = &decoded {
                        record.frames.push(frame.clone());
                    }
                }
                inner.received.send_modify(|n| *n += 1);
                match decoded {
                    Ok(Frame::Ping { id, .. }) if inner.answer_pings.load(Ordering::SeqCst) => {
                        send(Frame::Pong { id });
                    }
                    Ok(Frame::SessionStart { id, .. } | Frame::SessionEnd { id, .. })
                        if inner.answer_sessions.load(Ordering::SeqCst) =>
                    {
                        send(Frame::Ack { id });
                    }
                    Ok(Frame::Execute {
                        id,
                        session,
                        command,
                        group_id,
                        deadline_ms,
                        ..
                    }) => {
                        if !inner.answer_executes.load(Ordering::SeqCst) {
                            continue;
                        }
                        let call = ExecuteCall {
                            id: id.clone(),
                            session,
                            command,
                            deadline_ms,
                            group_id,
                        };
                        let future = handler(call);
                        let outgoing = outgoing.clone();
                        let inner2 = inner.clone();
                        let result_id = id.clone();
                        // Lock before spawning so the task's own removal runs after the insert.
                        let mut running = inner.running();
                        let task = tokio::spawn(async move {
                            if let Some(reply) = future.await {
                                let frame = Frame::Result {
                                    id: result_id.clone(),
                                    ok: reply.ok,
                                    output: reply.output,
                                    lane: reply.lane,
                                };
                                if let Ok(text) = frame.encode() {
                                    let _ = outgoing
                                        .send(Outgoing::Message(Message::Text(text.into())));
                                }
                            }
                            inner2.running().remove(&result_id);
                        });
                        running.insert(id, task.abort_handle());
                    }
                    Ok(Frame::Cancel { id }) => {
                        if let Some(task) = inner.running().remove(&id) {
                            task.abort();
                        }
                    }
                    _ => {}
                }
            }
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                inner.record().close = Some((code, reason));
                inner.received.send_modify(|n| *n += 1);
                // Keep reading: tungstenite answers the close and then ends the stream.
            }
            _ => {}
        }
    }
    for (_, task) in inner.running().drain() {
        task.abort();
    }
    inner.closed.send_replace(true);
}
