//! The relay's decisions, as a machine without I/O (like `Liveness`): [`RelayCore::handle`]
//! takes one [`Event`] and the time, and returns the [`Action`]s to carry out.
//!
//! It owns everything the relay decides: which backend the host's messages go to and when
//! they are held instead, the in-flight table and what each request is answered with when no
//! backend will answer it, the replay of the host's `initialize`, when to try for the port
//! (tries and their results are events and actions, never awaited), the host's session
//! state, role changes and tool-list changes told to the host, the host's log level, and the
//! annotation of `domshell_status`. Its timers are data: the driver sleeps until
//! [`RelayCore::next_deadline`] and feeds [`Event::Tick`].
//!
//! It must not touch sockets, files, tasks or clocks: `now_ms` is a parameter, a won
//! listener (`L`) and an owner's proof (`C`) pass through it untouched, and the degraded
//! responder it answers with is pure. The driver in `mod.rs` does all of that.

use serde_json::{json, Value};

use super::degraded::Conflict;
use super::held::{Held, HOLD_MS};
use super::in_flight::{key, Entry, InFlight};
use super::replies::{failed, Failure};
use crate::election::Holder;

/// Backend generation: events of a replaced backend are ignored.
pub type Gen = u64;
/// One try for the port; the result of a try the core no longer waits for is dropped.
pub type TryId = u64;

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

/// What the core needs to know about this process.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub port: u16,
    /// How often a degraded relay tries for the port again.
    pub heal_interval_ms: u64,
    /// The host's audit records are written by this process ([`Action::Audit`]).
    pub audit: bool,
    /// This process, as `domshell_status` answers are annotated with it.
    pub pid: u32,
    pub client_id: String,
    pub shell_session: String,
}

/// Everything the relay reacts to. `L` is a listener won by a try, `C` an owner's proof.
#[derive(Debug)]
pub enum Event<L, C> {
    /// The relay starts; what the port's holder was found to be before it did.
    Start(Holder),
    FromHost(Value),
    HostClosed,
    FromBackend(Gen, Value),
    BackendLost(Gen, String),
    /// The owner no longer knows the host's MCP session (it restarted or expired it).
    SessionExpired(Gen),
    /// The backend's queue was full: this message was not sent.
    Undelivered(Gen, Value),
    /// A try for the port has its answer.
    Tried(TryId, Found<L, C>),
    /// The owner's services started on the listener of [`Action::StartOwner`], or did not.
    OwnerStarted(Gen, Result<(), String>),
    /// A deadline given by [`RelayCore::next_deadline`] may have passed.
    Tick,
}

/// What one try for the port found.
#[derive(Debug)]
pub enum Found<L, C> {
    /// The port was free and is now ours.
    Bound(L),
    /// A domshell owner holds it and proved the relay key: the claim for `initialize`.
    Attached(C),
    /// Someone else holds it.
    Held(Holder),
}

/// How to try for the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryHow {
    /// Race to bind it; attach to, or explain, whoever holds it otherwise.
    Elect,
    /// It is known to be held by this: attach to it if it is an owner.
    Attach(Holder),
}

/// The I/O side of a new backend.
#[derive(Debug, PartialEq, Eq)]
pub enum Link<C> {
    /// The owner's `/mcp`, presenting this claim with the host's `initialize`.
    Remote(C),
    /// This process's own MCP handler (it just became the owner).
    Local,
}

/// A record for the host's audit log.
#[derive(Debug, PartialEq)]
pub enum Audit {
    /// This `tools/call` is being sent to a remote owner.
    Call(Value),
    /// This answer to a `tools/call` goes to the host.
    Answer(Value),
}

/// What the driver must do, in order.
#[derive(Debug)]
pub enum Action<L, C> {
    ToHost(Value),
    ToBackend(Gen, Value),
    Audit(Audit),
    /// Start a try for the port in the background; its result comes back as
    /// [`Event::Tried`].
    Try(TryId, TryHow),
    /// Start the owner's services on this listener; [`Event::OwnerStarted`] says how it went.
    StartOwner(Gen, L),
    /// Messages for generation `Gen` go to this backend from now on.
    Connect(Gen, Link<C>),
    /// Drop the current backend and everything it runs.
    Disconnect,
    /// Tell the person reading stderr why this server cannot reach the browser bridge.
    Explain(String),
    /// The host is gone: stop.
    Stop,
}

#[derive(Debug)]
enum Backend {
    /// None yet, or the last one was lost: a try for the port is running.
    Electing,
    Remote(Gen),
    Local(Gen),
    Degraded(Conflict),
}

impl Backend {
    fn label(&self) -> &'static str {
        match self {
            Backend::Electing => "electing",
            Backend::Remote(_) => "proxy",
            Backend::Local(_) => "owner",
            Backend::Degraded(_) => "degraded",
        }
    }
}

/// What a switch goes to (its generation is assigned by the switch).
enum Next {
    Remote,
    Local,
    Degraded(Conflict),
}

pub struct RelayCore<L, C> {
    config: CoreConfig,
    /// Backends switched to so far (the current one's generation).
    gen: Gen,
    backend: Backend,
    /// The role of the backend last switched to (an election in between does not count).
    served: Option<&'static str>,
    trying: Option<TryId>,
    next_try: TryId,
    try_started_ms: u64,
    /// The owner's services are starting for this generation.
    starting: Option<Gen>,
    next_heal_ms: Option<u64>,
    /// The host's `initialize`, replayed to every new backend.
    initialize: Option<Value>,
    host_initialized: bool,
    in_flight: InFlight,
    /// The key of our replayed `initialize` and when it was sent, while its answer is awaited.
    reinit: Option<(String, u64)>,
    held: Held,
    session_state: SessionState,
    /// The least severe log level the host asked for (`logging/setLevel`).
    host_log_level: usize,
    stopped: bool,
    out: Vec<Action<L, C>>,
}

impl<L, C> RelayCore<L, C> {
    pub fn new(config: CoreConfig) -> Self {
        Self::with_bounds(config, InFlight::default(), Held::default())
    }

    /// A core with its tables made elsewhere (smaller bounds in tests).
    pub fn with_bounds(config: CoreConfig, in_flight: InFlight, held: Held) -> Self {
        Self {
            config,
            gen: 0,
            backend: Backend::Electing,
            served: None,
            trying: None,
            next_try: 1,
            try_started_ms: 0,
            starting: None,
            next_heal_ms: None,
            initialize: None,
            host_initialized: false,
            in_flight,
            reinit: None,
            held,
            session_state: SessionState::Connecting,
            host_log_level: 0,
            stopped: false,
            out: Vec::new(),
        }
    }

    /// React to `event` at `now_ms`; what to do, in order.
    pub fn handle(&mut self, event: Event<L, C>, now_ms: u64) -> Vec<Action<L, C>> {
        if self.stopped {
            return Vec::new();
        }
        match event {
            Event::Start(initial) => {
                let how = match initial {
                    Holder::Gone => TryHow::Elect,
                    holder => TryHow::Attach(holder),
                };
                self.start_try(how, now_ms);
            }
            Event::FromHost(message) => self.on_host(message, now_ms),
            Event::HostClosed => {
                self.stopped = true;
                self.out.push(Action::Stop);
            }
            Event::FromBackend(gen, message) if self.is_live(gen) => self.on_reply(message, now_ms),
            Event::BackendLost(gen, why) if self.is_live(gen) => self.lose(&why, now_ms),
            Event::SessionExpired(gen) if self.is_live(gen) => {
                self.set_session_state(
                    SessionState::Expired,
                    "the owner no longer knows this host's MCP session; starting a new one",
                );
                self.lose("the owner did not resume this host's MCP session", now_ms);
            }
            Event::Undelivered(gen, message) if self.is_live(gen) => self.undelivered(message),
            Event::FromBackend(..)
            | Event::BackendLost(..)
            | Event::SessionExpired(_)
            | Event::Undelivered(..) => {}
            Event::Tried(id, found) => self.tried(id, found, now_ms),
            Event::OwnerStarted(gen, result) => self.owner_started(gen, result, now_ms),
            Event::Tick => self.tick(now_ms),
        }
        std::mem::take(&mut self.out)
    }

    /// When the core next wants an [`Event::Tick`].
    pub fn next_deadline(&self) -> Option<u64> {
        let heal = match self.backend {
            Backend::Degraded(_) if self.trying.is_none() && self.starting.is_none() => {
                self.next_heal_ms
            }
            _ => None,
        };
        [
            self.held.next_expiry(),
            self.reinit
                .as_ref()
                .map(|(_, since)| since.saturating_add(HOLD_MS)),
            self.in_flight.next_expiry(),
            heal,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    #[cfg(test)]
    pub fn session_state(&self) -> SessionState {
        self.session_state
    }

    fn is_live(&self, gen: Gen) -> bool {
        matches!(self.backend, Backend::Remote(g) | Backend::Local(g) if g == gen)
    }

    /// Host messages wait: there is no backend, or the new one has no session for the host
    /// yet.
    fn holding(&self) -> bool {
        matches!(self.backend, Backend::Electing) || self.reinit.is_some()
    }

    fn on_host(&mut self, message: Value, now_ms: u64) {
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
            Some("notifications/cancelled") if self.cancelled(&message, now_ms) => return,
            _ => {}
        }
        if let (Some(id), Some(method)) = (message.get("id"), &method) {
            let tool = message
                .pointer("/params/name")
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(evicted) = self.in_flight.insert(id.clone(), method.clone(), tool) {
                self.evicted(evicted);
            }
        }
        if self.holding() {
            self.hold(message, now_ms);
        } else {
            self.forward(message, now_ms);
        }
    }

    /// The host cancelled a request; whether the cancellation goes no further. A request
    /// still held is simply dropped (no backend ever saw it); while holding, no backend
    /// has seen any request the host could cancel, so the cancellation is not held either.
    fn cancelled(&mut self, message: &Value, now_ms: u64) -> bool {
        let Some(id) = message.pointer("/params/requestId") else {
            return false;
        };
        let k = key(id);
        if self.held.remove_request(&k) {
            self.in_flight.remove(&k);
            return true;
        }
        self.in_flight.cancel(&k, now_ms);
        self.holding()
    }

    /// The table was full: its oldest request is answered so it stays bounded.
    fn evicted(&mut self, entry: Entry) {
        self.held.remove_request(&key(&entry.id));
        if entry.cancelled_at.is_some() {
            return;
        }
        let why = format!(
            "{} requests of this host were already waiting for an answer; the oldest is answered so the relay stays bounded",
            self.in_flight.cap()
        );
        let reply = failed(entry.id.clone(), &entry.method, Failure::Overloaded, &why);
        self.answer(reply, &entry);
    }

    fn hold(&mut self, message: Value, now_ms: u64) {
        let is_request = message.get("method").is_some() && message.get("id").is_some();
        if message.get("method").is_none() && matches!(self.backend, Backend::Electing) {
            // An answer to a request of the backend that went away: nobody will read it.
            tracing::debug!("a host answer for a lost backend is dropped");
            return;
        }
        let Err(message) = self.held.push(message, now_ms) else {
            return;
        };
        let Some(entry) = is_request
            .then(|| message.get("id").map(key))
            .flatten()
            .and_then(|k| self.in_flight.remove(&k))
        else {
            tracing::warn!(
                held = self.held.len(),
                "a host notification is dropped: too many messages wait for a backend"
            );
            return;
        };
        let why = format!(
            "{} messages of this host already wait for a backend",
            self.held.len()
        );
        let reply = failed(entry.id.clone(), &entry.method, Failure::Overloaded, &why);
        self.answer(reply, &entry);
    }

    /// Send a host message to the current backend.
    fn forward(&mut self, message: Value, now_ms: u64) {
        let gen = match &self.backend {
            Backend::Remote(gen) | Backend::Local(gen) => *gen,
            Backend::Degraded(conflict) => {
                for reply in conflict.answer(&message) {
                    self.on_reply(reply, now_ms);
                }
                return;
            }
            Backend::Electing => return self.hold(message, now_ms),
        };
        let method = message.get("method").and_then(Value::as_str);
        if let (Some(id), Some(_)) = (message.get("id"), method) {
            self.in_flight.mark_sent(&key(id), gen);
        }
        // A remote owner runs it; this host's own log is written here.
        if self.config.audit
            && method == Some("tools/call")
            && matches!(self.backend, Backend::Remote(_))
        {
            self.out.push(Action::Audit(Audit::Call(message.clone())));
        }
        self.out.push(Action::ToBackend(gen, message));
    }

    /// Send a message of the relay's own (not the host's) to the current backend.
    fn send_own(&mut self, message: Value, now_ms: u64) {
        match &self.backend {
            Backend::Remote(gen) | Backend::Local(gen) => {
                self.out.push(Action::ToBackend(*gen, message));
            }
            Backend::Degraded(conflict) => {
                for reply in conflict.answer(&message) {
                    self.on_reply(reply, now_ms);
                }
            }
            Backend::Electing => {}
        }
    }

    /// A message from the current backend (or the degraded responder) for the host.
    fn on_reply(&mut self, mut message: Value, now_ms: u64) {
        if message.get("method").is_some() {
            return self.tell_host(message);
        }
        let Some(k) = message.get("id").map(key) else {
            return self.tell_host(message);
        };
        if self.reinit.as_ref().is_some_and(|(r, _)| *r == k) {
            if message.get("error").is_some() {
                tracing::warn!("the new backend refused this host's replayed initialize");
            }
            // The new backend now holds a session for the host; release what the host sent
            // meanwhile.
            self.reinit = None;
            self.set_session_state(SessionState::Active, "session made with the new backend");
            self.send_own(
                json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                now_ms,
            );
            self.release_held(true, now_ms);
            return;
        }
        let Some(entry) = self.in_flight.remove(&k) else {
            return self.tell_host(message);
        };
        if entry.tool.as_deref() == Some("domshell_status") {
            self.annotate_status(&mut message);
        }
        if entry.method == "initialize" {
            self.session_state = SessionState::Active;
            declare_tool_list_changes(&mut message);
        }
        self.answer(message, &entry);
    }

    /// An answer to the host's request `entry`, recorded for its audit log when it is a call.
    fn answer(&mut self, reply: Value, entry: &Entry) {
        if self.config.audit && entry.method == "tools/call" {
            self.out.push(Action::Audit(Audit::Answer(reply.clone())));
        }
        self.tell_host(reply);
    }

    /// Everything to the host goes here: log messages below the host's level are dropped,
    /// whoever made them (a new owner does not know the level the host set with the last).
    fn tell_host(&mut self, message: Value) {
        if message.get("method").and_then(Value::as_str) == Some("notifications/message") {
            let level = message
                .pointer("/params/level")
                .and_then(Value::as_str)
                .unwrap_or("debug");
            if log_rank(level) < self.host_log_level {
                return;
            }
        }
        self.out.push(Action::ToHost(message));
    }

    /// Send what was held to the backend, in order. After a replayed `initialize` the relay
    /// sent its own `notifications/initialized`, so the host's (sent while it waited) is not
    /// sent a second time.
    fn release_held(&mut self, after_replay: bool, now_ms: u64) {
        for message in self.held.take_all() {
            let method = message.get("method").and_then(Value::as_str);
            if after_replay && method == Some("notifications/initialized") {
                continue;
            }
            self.forward(message, now_ms);
        }
    }

    /// `domshell_status` answered by an owner describes the owner; add what this process is.
    fn annotate_status(&self, message: &mut Value) {
        let this = json!({
            "role": self.backend.label(),
            "pid": self.config.pid,
            "client_id": self.config.client_id,
            "shell_session": self.config.shell_session,
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

    /// The backend's queue was full: a request is answered at once, a notification dropped.
    fn undelivered(&mut self, message: Value) {
        let Some(entry) = message
            .get("method")
            .and(message.get("id"))
            .map(key)
            .and_then(|k| self.in_flight.remove(&k))
        else {
            tracing::warn!("a host notification is dropped: the backend's queue is full");
            return;
        };
        if entry.cancelled_at.is_some() {
            return;
        }
        let reply = failed(
            entry.id.clone(),
            &entry.method,
            Failure::Overloaded,
            "the domshell server's queue of messages to send is full",
        );
        self.answer(reply, &entry);
    }

    /// The backend went away: answer everything sent to it, then try for the port again.
    fn lose(&mut self, why: &str, now_ms: u64) {
        tracing::warn!(role = self.backend.label(), "backend lost: {why}");
        let gen = self.gen;
        self.out.push(Action::Disconnect);
        // The host's own `initialize` is not failed: it goes to the next backend first, so
        // a host that started while an owner died still gets its session.
        if let Some(initialize) = self.initialize.clone() {
            let k = initialize.get("id").map(key);
            if let Some(k) = k.filter(|k| {
                self.in_flight
                    .get(k)
                    .is_some_and(|e| e.sent_to == Some(gen))
            }) {
                self.in_flight.mark_held(&k);
                self.held.push_front(initialize, now_ms);
            }
        }
        for entry in self.in_flight.take_sent_to(gen) {
            // The host cancelled it and expects no answer.
            if entry.cancelled_at.is_some() {
                continue;
            }
            let reply = failed(entry.id.clone(), &entry.method, Failure::OwnerLost, why);
            self.answer(reply, &entry);
        }
        self.set_session_state(SessionState::Reconnecting, why);
        self.backend = Backend::Electing;
        // Replayed-initialize state belongs to the lost backend.
        self.reinit = None;
        self.start_try(TryHow::Elect, now_ms);
    }

    fn start_try(&mut self, how: TryHow, now_ms: u64) {
        if self.trying.is_some() || self.starting.is_some() {
            return;
        }
        let id = self.next_try;
        self.next_try += 1;
        self.trying = Some(id);
        self.try_started_ms = now_ms;
        self.out.push(Action::Try(id, how));
    }

    fn tried(&mut self, id: TryId, found: Found<L, C>, now_ms: u64) {
        if self.trying != Some(id) {
            return;
        }
        self.trying = None;
        // Tries run only while electing or degraded.
        if !matches!(self.backend, Backend::Electing | Backend::Degraded(_)) {
            return;
        }
        match found {
            Found::Bound(listener) => {
                let gen = self.gen + 1;
                self.starting = Some(gen);
                self.out.push(Action::StartOwner(gen, listener));
            }
            Found::Attached(claim) => {
                if matches!(self.backend, Backend::Degraded(_)) {
                    tracing::info!(role = "proxy", "the port conflict is resolved");
                }
                self.switch(Next::Remote, Some(Link::Remote(claim)), now_ms);
            }
            Found::Held(holder) => {
                let conflict = Conflict::from_holder(&holder, self.config.port);
                self.held_by(conflict, now_ms);
            }
        }
    }

    fn owner_started(&mut self, gen: Gen, result: Result<(), String>, now_ms: u64) {
        if self.starting != Some(gen) {
            return;
        }
        self.starting = None;
        match result {
            Ok(()) => {
                tracing::info!(
                    port = self.config.port,
                    "this server took over the bridge port and is now the owner"
                );
                self.switch(Next::Local, Some(Link::Local), now_ms);
            }
            Err(why) => {
                tracing::error!("cannot start the owner's services: {why}");
                let conflict = Conflict::from_holder(&Holder::Unresponsive, self.config.port);
                self.held_by(conflict, now_ms);
            }
        }
    }

    /// The port is held by something this relay cannot use: be (or stay) degraded, and try
    /// again after the heal interval.
    fn held_by(&mut self, conflict: Conflict, now_ms: u64) {
        match &mut self.backend {
            Backend::Degraded(current) => {
                if *current != conflict {
                    self.out.push(Action::Explain(conflict.text()));
                    *current = conflict;
                }
            }
            _ => {
                self.out.push(Action::Explain(conflict.text()));
                self.switch(Next::Degraded(conflict), None, now_ms);
            }
        }
        let next = self
            .try_started_ms
            .saturating_add(self.config.heal_interval_ms);
        self.next_heal_ms = Some(next.max(now_ms));
    }

    fn switch(&mut self, next: Next, link: Option<Link<C>>, now_ms: u64) {
        let next_degraded = matches!(next, Next::Degraded(_));
        // The host learns of tools that are not the ones it was last shown.
        let tools_changed =
            self.host_initialized && self.served.map(|r| r == "degraded") != Some(next_degraded);
        let from = self.served;
        self.gen += 1;
        self.backend = match next {
            Next::Remote => Backend::Remote(self.gen),
            Next::Local => Backend::Local(self.gen),
            Next::Degraded(conflict) => Backend::Degraded(conflict),
        };
        let to = self.backend.label();
        self.served = Some(to);
        tracing::info!(role = to, gen = self.gen, "relay backend");
        if let Some(link) = link {
            self.out.push(Action::Connect(self.gen, link));
        }
        if let Some(from) = from.filter(|from| *from != to) {
            tracing::info!(from, to, "this server's role changed");
            self.notify_host(
                "notice",
                json!({"event": "role_changed", "from": from, "to": to,
                       "pid": self.config.pid, "port": self.config.port}),
            );
        }
        // The host's `initialize` still awaited is held and goes first; one answered before
        // is replayed under our own id, and the host's messages wait for its answer.
        let awaited = self
            .initialize
            .as_ref()
            .and_then(|i| i.get("id"))
            .is_some_and(|id| self.in_flight.contains(&key(id)));
        if let Some(initialize) = self.initialize.clone().filter(|_| !awaited) {
            let id = json!(format!("domshell-relay-reinit-{}", self.gen));
            let mut replay = initialize;
            replay["id"] = id.clone();
            self.reinit = Some((key(&id), now_ms));
            self.set_session_state(SessionState::Connecting, "replaying the host's initialize");
            self.send_own(replay, now_ms);
        }
        if self.reinit.is_none() {
            self.release_held(false, now_ms);
        }
        if tools_changed {
            self.tell_host(json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}));
        }
        if let Backend::Degraded(conflict) = &self.backend {
            if self.host_initialized {
                let log = conflict.log_notification();
                self.tell_host(log);
            }
        }
    }

    fn tick(&mut self, now_ms: u64) {
        for message in self.held.take_expired(now_ms) {
            self.expired(message);
        }
        if self
            .reinit
            .as_ref()
            .is_some_and(|(_, since)| now_ms >= since.saturating_add(HOLD_MS))
        {
            let why = format!(
                "the new backend did not answer this host's initialize within {} s",
                HOLD_MS / 1000
            );
            self.lose(&why, now_ms);
        }
        self.in_flight.expire(now_ms);
        let heal_due = self.next_heal_ms.is_some_and(|at| at <= now_ms);
        if matches!(self.backend, Backend::Degraded(_)) && heal_due {
            self.start_try(TryHow::Elect, now_ms);
        }
    }

    /// A request held as long as the relay holds one. The host's `initialize` is answered as
    /// the degraded responder would (the host gets its session, and is told when the tools
    /// change); anything else gets a retryable error.
    fn expired(&mut self, message: Value) {
        let Some(entry) = message
            .get("id")
            .map(key)
            .and_then(|k| self.in_flight.remove(&k))
        else {
            return;
        };
        if entry.method == "initialize" {
            for reply in Conflict::electing(self.config.port).answer(&message) {
                self.tell_host(reply);
            }
            return;
        }
        let why = format!(
            "it was held {} s while this server had no working connection to one",
            HOLD_MS / 1000
        );
        let reply = failed(entry.id.clone(), &entry.method, Failure::NotTaken, &why);
        self.answer(reply, &entry);
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

    /// A `notifications/message` of the relay's own, once the host may receive them.
    fn notify_host(&mut self, level: &str, data: Value) {
        if !self.host_initialized {
            return;
        }
        self.tell_host(json!({"jsonrpc": "2.0", "method": "notifications/message",
                            "params": {"level": level, "logger": "domshell.relay", "data": data}}));
    }
}

/// This relay tells its host when the tool list changes (on a switch between degraded and
/// working backends), whichever backend answered the host's `initialize`: say so in the
/// capabilities it was given. An owner itself sends no such change, so it does not declare it.
fn declare_tool_list_changes(initialize: &mut Value) {
    if let Some(capabilities) = initialize
        .pointer_mut("/result/capabilities")
        .and_then(Value::as_object_mut)
    {
        let tools = capabilities.entry("tools").or_insert_with(|| json!({}));
        if let Some(tools) = tools.as_object_mut() {
            tools.insert("listChanged".into(), Value::Bool(true));
        }
    }
}

#[cfg(test)]
mod tests;
