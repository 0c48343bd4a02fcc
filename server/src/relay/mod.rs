//! The stdio side of a server that did not win the bridge port: a JSON-RPC relay between its
//! MCP host (stdin/stdout) and a backend that can change under it without the host noticing.
//!
//! Backends: the owner's `/mcp` over loopback HTTP ([`remote`]), this process's own MCP
//! handler after it took the port over ([`local`]), or the [`degraded`] responder that
//! explains why neither is possible. When the backend is lost (the owner died, its session
//! vanished) every request in flight is answered at once with a retryable error, the relay
//! races for the port (exactly one contender binds it and becomes the owner in-process), the
//! others attach to the winner, and the host's cached `initialize` is replayed so its session
//! continues. While degraded, it keeps trying in the background (its replies never wait for
//! a probe) and heals in place, telling the host that the tool list changed.
//!
//! It owns message routing, the in-flight table and the re-election loop. It must not
//! interpret tool calls (the backend does) or start the owner's services itself (the
//! [`OwnerStarter`] from `main` does).

mod attach;
mod audit;
mod degraded;
mod local;
mod remote;
mod sse;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use shared_protocol::frame::Secret;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use self::attach::RelayIdentity;
use self::attach::{authenticate, AttachError};
use self::audit::HostAudit;
pub use self::degraded::Conflict;
use self::local::Local;
use self::remote::{Remote, Target};
use crate::election::{probe, Holder};
use crate::mcp::McpShared;
use crate::policy::audit::AuditLog;
use crate::relay_door::{HostClaim, RelayGrant};

/// Backend generation: events of a replaced backend are ignored.
pub type Gen = u64;

/// Everything the relay loop reacts to.
pub enum Event {
    FromHost(Value),
    HostClosed,
    FromBackend(Gen, Value),
    BackendLost(Gen, String),
    /// The owner no longer knows the host's MCP session (it restarted or expired it).
    SessionExpired(Gen),
    /// A try for the port, made in the background while degraded, has its answer.
    HealTried(Attempt),
}

/// What one try for the port found.
pub enum Attempt {
    /// The port was free and is now ours.
    Bound(TcpListener),
    /// A domshell owner holds it and proved the relay key: the claim for `initialize`.
    Attached(HostClaim),
    /// Someone else holds it.
    Held(Holder),
}

/// The host's MCP session as this relay sees it, across owners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// A backend was chosen; the host's `initialize` is being replayed to it.
    Connecting,
    /// The backend holds a session for the host.
    Active,
    /// The backend was lost; electing or attaching again.
    Reconnecting,
    /// The owner did not resume the session; a new one is being made.
    Expired,
}

impl SessionState {
    pub fn label(self) -> &'static str {
        match self {
            SessionState::Connecting => "connecting",
            SessionState::Active => "active",
            SessionState::Reconnecting => "reconnecting",
            SessionState::Expired => "expired",
        }
    }
}

/// MCP log levels in order of severity (RFC 5424 names, as MCP uses them).
const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

fn log_rank(level: &str) -> usize {
    LOG_LEVELS.iter().position(|l| *l == level).unwrap_or(0)
}

/// Services this process started after winning the port.
pub struct Owned {
    pub shared: Arc<McpShared>,
    /// Ends the sessions, closes the extension link with its shutdown code and the
    /// listeners; awaited when the host goes.
    pub stop: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// Starts the owner's services on a listener this process just bound.
pub type OwnerStarter = Arc<
    dyn Fn(TcpListener) -> Pin<Box<dyn Future<Output = anyhow::Result<Owned>> + Send>>
        + Send
        + Sync,
>;

#[derive(Clone)]
pub struct RelayConfig {
    pub host: String,
    pub port: u16,
    /// The key this user's servers share; `Err`: why this server has none (it then cannot
    /// attach, and says so).
    pub relay_key: Result<Secret, String>,
    /// How often a degraded relay tries again.
    pub heal_interval: Duration,
    /// This host's identity (stable shell session) and rails, carried to every owner.
    pub me: RelayIdentity,
    /// This host's audit log, written here while another process owns the port.
    pub audit: Option<Arc<AuditLog>>,
}

impl RelayConfig {
    fn target(&self) -> Target {
        Target {
            url: format!("http://{}:{}/mcp", self.host, self.port),
            client_id: self.me.client_id.clone(),
        }
    }

    /// What this process grants its own host when it owns the port itself.
    fn own_grant(&self) -> RelayGrant {
        RelayGrant {
            identity: self.me.identity.clone(),
            client_id: self.me.client_id.clone(),
            policy: self.me.policy.clone(),
        }
    }
}

/// What a contender decides about a port it could not bind, at start or after a loss.
pub async fn inspect(host: &str, port: u16) -> Holder {
    let ours = shared_protocol::PROTOCOL_VERSION;
    let mut holder = probe(
        host,
        port,
        3,
        Duration::from_secs(1),
        Duration::from_millis(500),
        ours,
    )
    .await;
    // An owner that says it is starting gets a bounded while to finish.
    for _ in 0..20 {
        if !matches!(holder, Holder::Starting(_)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        holder = probe(host, port, 1, Duration::from_secs(1), Duration::ZERO, ours).await;
    }
    holder
}

/// Bind the port, or find out who holds it; an owner must prove the relay key before this
/// relay tells it anything.
async fn try_for_port(config: &RelayConfig) -> Attempt {
    let (host, port) = (config.host.as_str(), config.port);
    // Spread simultaneous contenders a little so one binds before the others probe.
    let jitter = u64::from(std::process::id()) % 250;
    tokio::time::sleep(Duration::from_millis(jitter)).await;
    if let Ok(listener) = TcpListener::bind((host, port)).await {
        return Attempt::Bound(listener);
    }
    let holder = inspect(host, port).await;
    if holder == Holder::Gone {
        // Freed between bind and probe: one more try.
        if let Ok(listener) = TcpListener::bind((host, port)).await {
            return Attempt::Bound(listener);
        }
    }
    attach_to(config, holder).await
}

/// A holder that says it is a domshell owner is asked to prove it.
async fn attach_to(config: &RelayConfig, holder: Holder) -> Attempt {
    if !matches!(holder, Holder::Owner(_)) {
        return Attempt::Held(holder);
    }
    let key = match &config.relay_key {
        Ok(key) => key,
        Err(why) => {
            return Attempt::Held(Holder::Unproven {
                detail: format!("this server cannot prove it is this user's: {why}"),
            })
        }
    };
    match authenticate(&config.host, config.port, key, &config.me).await {
        Ok(claim) => Attempt::Attached(claim),
        Err(AttachError::Unproven(detail)) | Err(AttachError::Refused(detail)) => {
            tracing::warn!(
                "the holder of port {} is not believed: {detail}",
                config.port
            );
            Attempt::Held(Holder::Unproven { detail })
        }
        Err(AttachError::Unreachable(detail)) => {
            tracing::debug!("relay challenge of port {}: {detail}", config.port);
            Attempt::Held(Holder::Unresponsive)
        }
    }
}

enum Backend {
    Local(Local),
    Remote(Remote),
    Degraded(Conflict),
}

impl Backend {
    fn label(&self) -> &'static str {
        match self {
            Backend::Local(_) => "owner",
            Backend::Remote(_) => "proxy",
            Backend::Degraded(_) => "degraded",
        }
    }
}

struct Relay {
    config: RelayConfig,
    starter: OwnerStarter,
    events: mpsc::UnboundedSender<Event>,
    stdout: mpsc::UnboundedSender<Value>,
    gen: Gen,
    backend: Backend,
    owned: Option<Owned>,
    /// The host's `initialize`, replayed to every new backend.
    initialize: Option<Value>,
    host_initialized: bool,
    /// Requests of the host waiting for an answer: id (as JSON text) → (id, method, tool).
    in_flight: HashMap<String, (Value, String, Option<String>)>,
    /// The id of our replayed `initialize`, while its answer is awaited.
    reinit: Option<String>,
    /// Host messages held back until the replayed `initialize` is answered.
    held: VecDeque<Value>,
    session_state: SessionState,
    /// The least severe log level the host asked for (`logging/setLevel`).
    host_log_level: usize,
    /// A heal attempt is probing in the background.
    healing: bool,
    /// The host's audit records, kept here while a remote owner runs its calls.
    host_audit: Option<HostAudit>,
    shutdown: CancellationToken,
}

/// Relay stdin/stdout to the owner on `host:port` (or degraded with `conflict`), electing
/// again whenever the backend is lost, until the host closes stdin or `shutdown` fires.
pub async fn run(
    config: RelayConfig,
    starter: OwnerStarter,
    initial: Holder,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (events, mut inbox) = mpsc::unbounded_channel::<Event>();
    let stdout = spawn_stdout_writer();
    spawn_stdin_reader(events.clone());
    let mut relay = Relay {
        backend: Backend::Degraded(Conflict::from_holder(&Holder::Gone, config.port)),
        config,
        starter,
        events,
        stdout,
        gen: 0,
        owned: None,
        initialize: None,
        host_initialized: false,
        in_flight: HashMap::new(),
        reinit: None,
        held: VecDeque::new(),
        session_state: SessionState::Connecting,
        host_log_level: 0,
        healing: false,
        host_audit: None,
        shutdown: shutdown.clone(),
    };
    relay.host_audit = relay.config.audit.clone().map(|log| {
        HostAudit::new(
            log,
            crate::policy::Policy::new(relay.config.me.policy.clone()),
            relay.own_grant_session(),
        )
    });
    let first = relay.backend_for(initial).await;
    relay.switch(first);
    let mut heal = tokio::time::interval(relay.config.heal_interval);
    heal.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            event = inbox.recv() => match event {
                None | Some(Event::HostClosed) => break,
                Some(Event::FromHost(message)) => relay.on_host_message(message),
                Some(Event::FromBackend(gen, message)) if gen == relay.gen => relay.on_backend_message(message),
                Some(Event::BackendLost(gen, why)) if gen == relay.gen => relay.lost(why).await,
                Some(Event::SessionExpired(gen)) if gen == relay.gen => {
                    relay.set_session_state(SessionState::Expired, "the owner no longer knows this host's MCP session; starting a new one");
                    relay.lost("the owner did not resume this host's MCP session".into()).await;
                }
                Some(Event::HealTried(attempt)) => relay.heal_tried(attempt).await,
                Some(_) => {}
            },
            _ = heal.tick(), if matches!(relay.backend, Backend::Degraded(_)) && !relay.healing => relay.start_heal(),
        }
    }
    if let Some(owned) = relay.owned.take() {
        owned.stop.await;
    }
    Ok(())
}

impl Relay {
    fn write(&self, message: Value) {
        let _ = self.stdout.send(message);
    }

    fn on_host_message(&mut self, message: Value) {
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_string);
        match method.as_deref() {
            Some("initialize") => self.initialize = Some(message.clone()),
            Some("notifications/initialized") => self.host_initialized = true,
            Some("logging/setLevel") => {
                if let Some(level) = message.pointer("/params/level").and_then(Value::as_str) {
                    self.host_log_level = log_rank(level);
                }
            }
            _ => {}
        }
        if let (Some(id), Some(method)) = (message.get("id"), &method) {
            let tool = message
                .pointer("/params/name")
                .and_then(Value::as_str)
                .map(str::to_string);
            self.in_flight
                .insert(id.to_string(), (id.clone(), method.clone(), tool));
        }
        if self.reinit.is_some() {
            self.held.push_back(message);
            return;
        }
        self.dispatch(message);
    }

    fn own_grant_session(&self) -> String {
        self.config.own_grant().shell_session()
    }

    fn dispatch(&mut self, message: Value) {
        match &self.backend {
            Backend::Local(local) => local.send(message),
            Backend::Remote(remote) => {
                // The owner runs it; this host's own log is written here.
                if message.get("method").and_then(Value::as_str) == Some("tools/call") {
                    if let Some(audit) = &mut self.host_audit {
                        audit.on_call(&message);
                    }
                }
                remote.send(message)
            }
            Backend::Degraded(conflict) => {
                for reply in conflict.answer(&message) {
                    self.on_backend_message(reply);
                }
            }
        }
    }

    fn on_backend_message(&mut self, mut message: Value) {
        let is_response = message.get("method").is_none();
        if is_response {
            if let Some(audit) = &mut self.host_audit {
                audit.on_answer(&message);
            }
            if let Some(id) = message.get("id") {
                let key = id.to_string();
                if self.reinit.as_deref() == Some(key.as_str()) {
                    // Our replayed initialize was answered: the new backend now holds a
                    // session for the host; release what the host sent meanwhile.
                    self.reinit = None;
                    self.set_session_state(
                        SessionState::Active,
                        "session made with the new backend",
                    );
                    self.dispatch(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
                    while let Some(held) = self.held.pop_front() {
                        self.dispatch(held);
                    }
                    return;
                }
                match self.in_flight.remove(&key) {
                    Some((_, _, Some(tool))) if tool == "domshell_status" => {
                        self.annotate_status(&mut message);
                    }
                    Some((_, method, _)) if method == "initialize" => {
                        self.session_state = SessionState::Active;
                    }
                    _ => {}
                }
            }
        }
        self.write(message);
    }

    /// `domshell_status` answered by an owner describes the owner; add what this process is.
    fn annotate_status(&self, message: &mut Value) {
        let this = json!({
            "role": self.backend.label(),
            "pid": std::process::id(),
            "client_id": self.config.me.client_id,
            "shell_session": self.own_grant_session(),
            "owner_changes": self.gen.saturating_sub(1),
            "session_state": self.session_state.label(),
        });
        if let Some(structured) = message
            .pointer_mut("/result/structuredContent")
            .and_then(Value::as_object_mut)
        {
            structured.insert("this_process".into(), this);
        }
    }

    /// Answer everything in flight: the backend that would have answered is gone.
    fn fail_in_flight(&mut self, why: &str) {
        let hint = "The domshell server this one was attached to went away; this server has already re-connected or taken over. Send the request again; a browser action may or may not have happened, so check the page before repeating it.";
        // The host's own `initialize` is not failed: it is sent again to the next backend
        // (see `switch`), so a host that started while an owner died still gets its session.
        let lost: Vec<(Value, String)> = self
            .in_flight
            .values()
            .filter(|(_, method, _)| method != "initialize")
            .map(|(id, method, _)| (id.clone(), method.clone()))
            .collect();
        self.in_flight
            .retain(|_, (_, method, _)| method == "initialize");
        for (id, method) in lost {
            let data =
                json!({"reason": "owner_lost", "retryable": true, "hint": hint, "detail": why});
            let reply = if method == "tools/call" {
                json!({"jsonrpc": "2.0", "id": id, "result": {
                    "content": [{"type": "text", "text": format!("Error: the domshell server answering this call went away ({why}). {hint}")}],
                    "structuredContent": data,
                    "isError": true,
                }})
            } else {
                json!({"jsonrpc": "2.0", "id": id, "error": {
                    "code": -32000,
                    "message": format!("the domshell server answering this request went away ({why}); send it again"),
                    "data": data,
                }})
            };
            let _ = self.stdout.send(reply);
        }
    }

    async fn lost(&mut self, why: String) {
        tracing::warn!(role = self.backend.label(), "backend lost: {why}");
        self.fail_in_flight(&why);
        self.set_session_state(SessionState::Reconnecting, &why);
        // Replayed-initialize state belongs to the lost backend.
        self.reinit = None;
        let held: Vec<Value> = self.held.drain(..).collect();
        let next = self.elect().await;
        self.switch(next);
        for message in held {
            self.on_host_message(message);
        }
    }

    /// Try for the port in the background: probing a holder that does not answer takes
    /// seconds, and the degraded replies must not wait for it.
    fn start_heal(&mut self) {
        self.healing = true;
        let config = self.config.clone();
        let events = self.events.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return,
                attempt = try_for_port(&config) => attempt,
            };
            let _ = events.send(Event::HealTried(attempt));
        });
    }

    async fn heal_tried(&mut self, attempt: Attempt) {
        self.healing = false;
        // The backend changed meanwhile (e.g. a re-election): a listener won is dropped.
        if !matches!(self.backend, Backend::Degraded(_)) {
            return;
        }
        let next = self.backend_from(attempt).await;
        if !matches!(next, Backend::Degraded(_)) {
            tracing::info!(role = next.label(), "the port conflict is resolved");
            self.switch(next);
        } else if let Backend::Degraded(conflict) = next {
            self.backend = Backend::Degraded(conflict);
        }
    }

    /// Race for the port; attach to whoever won otherwise.
    async fn elect(&mut self) -> Backend {
        let attempt = try_for_port(&self.config).await;
        self.backend_from(attempt).await
    }

    async fn backend_for(&mut self, initial: Holder) -> Backend {
        match initial {
            Holder::Gone => self.elect().await,
            holder => {
                let attempt = attach_to(&self.config, holder).await;
                self.backend_from(attempt).await
            }
        }
    }

    async fn backend_from(&mut self, attempt: Attempt) -> Backend {
        match attempt {
            Attempt::Bound(listener) => self.become_owner(listener).await,
            Attempt::Attached(claim) => Backend::Remote(Remote::new(
                self.gen + 1,
                self.config.target(),
                claim,
                self.events.clone(),
            )),
            Attempt::Held(holder) => {
                let conflict = Conflict::from_holder(&holder, self.config.port);
                eprintln!("{}", conflict.text());
                Backend::Degraded(conflict)
            }
        }
    }

    async fn become_owner(&mut self, listener: TcpListener) -> Backend {
        match (self.starter)(listener).await {
            Ok(owned) => {
                tracing::info!(
                    port = self.config.port,
                    "this server took over the bridge port and is now the owner"
                );
                let backend = Backend::Local(Local::start(
                    self.gen + 1,
                    owned.shared.clone(),
                    self.config.own_grant(),
                    self.events.clone(),
                    self.shutdown.child_token(),
                ));
                self.owned = Some(owned);
                backend
            }
            Err(e) => {
                tracing::error!("cannot start the owner's services: {e:#}");
                Backend::Degraded(Conflict::from_holder(
                    &Holder::Unresponsive,
                    self.config.port,
                ))
            }
        }
    }

    /// Whether the host's `initialize` is still unanswered.
    fn host_awaits(&self, initialize: &Value) -> bool {
        initialize
            .get("id")
            .is_some_and(|id| self.in_flight.contains_key(&id.to_string()))
    }

    /// Log a change of the host's session state and tell the host.
    fn set_session_state(&mut self, state: SessionState, detail: &str) {
        if self.session_state == state {
            return;
        }
        self.session_state = state;
        tracing::info!(state = state.label(), "MCP session: {detail}");
        let level = match state {
            SessionState::Active | SessionState::Connecting => "info",
            SessionState::Reconnecting | SessionState::Expired => "warning",
        };
        self.notify_host(
            level,
            json!({"event": "session_state", "state": state.label(),
                   "role": self.backend.label(), "detail": detail}),
        );
    }

    /// A `notifications/message` to the host, once it may receive them and wants this level.
    fn notify_host(&self, level: &str, data: Value) {
        if !self.host_initialized || log_rank(level) < self.host_log_level {
            return;
        }
        self.write(json!({"jsonrpc": "2.0", "method": "notifications/message",
                          "params": {"level": level, "logger": "domshell.relay", "data": data}}));
    }

    fn switch(&mut self, next: Backend) {
        let tools_changed =
            matches!(self.backend, Backend::Degraded(_)) != matches!(next, Backend::Degraded(_));
        let from = self.backend.label();
        self.gen += 1;
        tracing::info!(role = next.label(), gen = self.gen, "relay backend");
        self.backend = next;
        if self.gen > 1 && from != self.backend.label() {
            let to = self.backend.label();
            tracing::info!(from, to, "this server's role changed");
            self.notify_host(
                "notice",
                json!({"event": "role_changed", "from": from, "to": to, "pid": std::process::id(),
                       "port": self.config.port}),
            );
        }
        if let Some(initialize) = self.initialize.clone().filter(|i| self.host_awaits(i)) {
            // The host still waits for its own `initialize`: the new backend answers it.
            self.dispatch(initialize);
        } else if let Some(initialize) = self.initialize.clone() {
            let id = json!(format!("domshell-relay-reinit-{}", self.gen));
            let mut replay = initialize;
            replay["id"] = id.clone();
            self.reinit = Some(id.to_string());
            self.set_session_state(SessionState::Connecting, "replaying the host's initialize");
            self.dispatch(replay);
        }
        if tools_changed && self.host_initialized {
            self.write(json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}));
        }
        if let Backend::Degraded(conflict) = &self.backend {
            if self.host_initialized {
                self.write(conflict.log_notification());
            }
        }
    }
}

fn spawn_stdout_writer() -> mpsc::UnboundedSender<Value> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(message) = rx.recv().await {
            let mut line = message.to_string();
            line.push('\n');
            if stdout.write_all(line.as_bytes()).await.is_err() || stdout.flush().await.is_err() {
                return;
            }
        }
    });
    tx
}

fn spawn_stdin_reader(events: mpsc::UnboundedSender<Event>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(line)) if line.trim().is_empty() => continue,
                Ok(Some(line)) => match serde_json::from_str::<Value>(&line) {
                    Ok(message) => {
                        if events.send(Event::FromHost(message)).is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!("the MCP host sent a line that is not JSON: {e}"),
                },
                Ok(None) | Err(_) => {
                    let _ = events.send(Event::HostClosed);
                    return;
                }
            }
        }
    });
}
