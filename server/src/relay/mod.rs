//! The stdio side of a server that did not win the bridge port: a JSON-RPC relay between its
//! MCP host (stdin/stdout) and a backend that can change under it without the host noticing.
//!
//! Backends: the owner's `/mcp` over loopback HTTP ([`remote`]), this process's own MCP
//! handler after it took the port over ([`local`]), or the [`degraded`] responder that
//! explains why neither is possible. When the backend is lost (the owner died, its session
//! vanished) every request in flight is answered at once with a retryable error, the relay
//! races for the port (exactly one contender binds it and becomes the owner in-process), the
//! others attach to the winner, and the host's cached `initialize` is replayed so its session
//! continues. While degraded, it keeps trying in the background and heals in place, telling
//! the host that the tool list changed.
//!
//! Every decision is made by [`core::RelayCore`], a machine without I/O; this module is its
//! driver: it feeds it events (host lines, backend messages, results of background tasks,
//! timer ticks) and carries out its actions. A try for the port (bind, probe, attach) and the
//! start of the owner's services run as tasks of their own, so the relay keeps answering its
//! host while they run.
//!
//! Rules and bounds:
//! - **While there is no backend** (an election runs) or the new one has not yet answered
//!   the replayed `initialize`, host messages are held, in order, up to
//!   [`held::MAX_HELD`] (64); a request past that is answered at once with a retryable
//!   `relay_overloaded` error. A held request is answered with a retryable `owner_lost`
//!   error (nothing ran) once held [`held::HOLD_MS`] (10 s), so held time plus the owner's
//!   call budget (45 s) stays below the host's 60 s timeout; the host's own `initialize` is
//!   answered instead as the degraded responder would, so the host gets a session and
//!   later a `tools/list_changed`. A replayed `initialize` unanswered after 10 s counts as
//!   a lost backend.
//! - **In flight**: at most [`in_flight::MAX_IN_FLIGHT`] (1024) requests; past that the
//!   oldest is answered with `relay_overloaded`. A request the host cancelled is forgotten
//!   when its answer comes or after [`in_flight::CANCELLED_TTL_MS`] (30 s), and gets no
//!   `owner_lost` answer if its backend goes.
//! - **To a backend**: one writer per backend, in order, from a queue of
//!   [`remote::WRITER_QUEUE`] / [`local::WRITER_QUEUE`] (256) messages; the driver never
//!   waits for it: a request that does not fit is answered with `relay_overloaded`.
//! - **To the host**: stdout is written by one task from a queue of [`STDOUT_QUEUE`] (1024)
//!   messages. When it is full the host is not reading its own pipe, and the driver waits
//!   for room before it carries out the next action (nothing is dropped; the core's state is
//!   already decided and its timers fire once the host reads again).
//! - **From the host and backends**: one inbox of [`INBOX`] (256) events; stdin and the
//!   backends' readers wait when it is full.
//!
//! It owns the tasks and sockets of the relay. It must not decide anything itself (the core
//! does), interpret tool calls (the backend does) or start the owner's services itself (the
//! [`OwnerStarter`] from `main` does).

mod attach;
mod audit;
mod core;
mod degraded;
mod held;
mod in_flight;
mod local;
mod remote;
mod replies;
mod sse;
mod tries;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use shared_protocol::frame::Secret;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use self::attach::RelayIdentity;
use self::audit::HostAudit;
use self::core::{Action, Audit, CoreConfig, Event, Found, Gen, Link, RelayCore, TryHow, TryId};
pub use self::degraded::Conflict;
use self::local::Local;
use self::remote::{Remote, Target};
pub use self::tries::inspect;
use self::tries::{attach_to, try_for_port, Attempt};
use crate::election::Holder;
use crate::mcp::McpShared;
use crate::policy::audit::AuditLog;
use crate::relay_door::{HostClaim, RelayGrant};

/// Messages waiting to be written to the host's stdout.
pub const STDOUT_QUEUE: usize = 1024;
/// Events from stdin and the backends waiting for the driver.
pub const INBOX: usize = 256;

/// An event of this relay, with the listener and claim types of the real I/O.
type RelayEvent = Event<TcpListener, HostClaim>;
/// Where stdin and the backends' tasks send what they read.
type Inbox = mpsc::Sender<RelayEvent>;

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

    fn core(&self) -> CoreConfig {
        CoreConfig {
            port: self.port,
            heal_interval_ms: u64::try_from(self.heal_interval.as_millis()).unwrap_or(u64::MAX),
            audit: self.audit.is_some(),
            pid: std::process::id(),
            client_id: self.me.client_id.clone(),
            shell_session: self.own_grant().shell_session(),
        }
    }
}

/// The backend messages go to, as I/O.
enum Backend {
    None,
    Remote(Remote),
    Local(Local),
}

impl Backend {
    fn send(&self, gen: Gen, message: Value) -> Result<(), TrySendError<Value>> {
        match self {
            Backend::Remote(remote) if remote.gen() == gen => remote.send(message),
            Backend::Local(local) if local.gen() == gen => local.send(message),
            _ => Err(TrySendError::Closed(message)),
        }
    }
}

enum Flow {
    Go,
    Stop,
}

/// Carries out the core's actions.
struct Driver {
    config: RelayConfig,
    starter: OwnerStarter,
    inbox: Inbox,
    stdout: mpsc::Sender<Value>,
    backend: Backend,
    owned: Option<Owned>,
    /// The host's audit records, kept here while a remote owner runs its calls.
    audit: Option<HostAudit>,
    trying: Option<(TryId, JoinHandle<Attempt>)>,
    starting: Option<(Gen, JoinHandle<anyhow::Result<Owned>>)>,
    shutdown: CancellationToken,
}

/// Relay stdin/stdout to the holder of `host:port` (`initial`: what it was found to be),
/// electing again whenever the backend is lost, until the host closes stdin or `shutdown`
/// fires.
pub async fn run(
    config: RelayConfig,
    starter: OwnerStarter,
    initial: Holder,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (inbox, mut events) = mpsc::channel::<RelayEvent>(INBOX);
    let stdout = spawn_stdout_writer();
    spawn_stdin_reader(inbox.clone());
    let mut core: RelayCore<TcpListener, HostClaim> = RelayCore::new(config.core());
    let audit = config.audit.clone().map(|log| {
        HostAudit::new(
            log,
            crate::policy::Policy::new(config.me.policy.clone()),
            config.own_grant().shell_session(),
        )
    });
    let mut driver = Driver {
        config,
        starter,
        inbox,
        stdout,
        backend: Backend::None,
        owned: None,
        audit,
        trying: None,
        starting: None,
        shutdown: shutdown.clone(),
    };
    let clock = Instant::now();
    let now_ms = || u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut queue: VecDeque<RelayEvent> = VecDeque::from([Event::Start(initial)]);
    'run: loop {
        while let Some(event) = queue.pop_front() {
            for action in core.handle(event, now_ms()) {
                if let Flow::Stop = driver.carry_out(action, &mut queue).await {
                    break 'run;
                }
            }
        }
        let wake = core
            .next_deadline()
            .map(|ms| tokio::time::Instant::from_std(clock + Duration::from_millis(ms)));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            event = events.recv() => queue.push_back(event.unwrap_or(Event::HostClosed)),
            (id, found) = finished(&mut driver.trying) => {
                driver.trying = None;
                let found = found.unwrap_or_else(|e| {
                    tracing::warn!("a try for the port failed: {e}");
                    Found::Held(Holder::Unresponsive)
                });
                queue.push_back(Event::Tried(id, found));
            }
            (gen, started) = finished(&mut driver.starting) => {
                driver.starting = None;
                let started = started.map_err(anyhow::Error::from).and_then(|r| r);
                queue.push_back(Event::OwnerStarted(gen, driver.owner_started(started)));
            }
            _ = sleep_until(wake) => queue.push_back(Event::Tick),
        }
    }
    // Tasks waiting to hand the driver an event are let go before anything is awaited.
    drop(events);
    driver.stop().await;
    Ok(())
}

/// The result of a task that may not exist; never ready without one.
async fn finished<K: Copy, T>(
    task: &mut Option<(K, JoinHandle<T>)>,
) -> (K, Result<T, tokio::task::JoinError>) {
    match task {
        Some((key, handle)) => (*key, handle.await),
        None => std::future::pending().await,
    }
}

async fn sleep_until(wake: Option<tokio::time::Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    async fn carry_out(
        &mut self,
        action: Action<TcpListener, HostClaim>,
        queue: &mut VecDeque<RelayEvent>,
    ) -> Flow {
        match action {
            Action::ToHost(message) => {
                // The host's own pipe: when it does not read, waiting is all there is to do.
                let _ = self.stdout.send(message).await;
            }
            Action::ToBackend(gen, message) => match self.backend.send(gen, message) {
                Ok(()) => {}
                Err(TrySendError::Full(message)) => {
                    queue.push_back(Event::Undelivered(gen, message))
                }
                // The backend is gone; the core hears of it from the backend itself.
                Err(TrySendError::Closed(_)) => {}
            },
            Action::Audit(record) => {
                if let Some(audit) = &mut self.audit {
                    match record {
                        Audit::Call(message) => audit.on_call(&message),
                        Audit::Answer(message) => audit.on_answer(&message),
                    }
                }
            }
            Action::Try(id, how) => {
                let config = self.config.clone();
                let task = tokio::spawn(async move {
                    match how {
                        TryHow::Elect => try_for_port(&config).await,
                        TryHow::Attach(holder) => attach_to(&config, holder).await,
                    }
                });
                if let Some((_, previous)) = self.trying.replace((id, task)) {
                    previous.abort();
                }
            }
            Action::StartOwner(gen, listener) => {
                let start = (self.starter)(listener);
                self.starting = Some((gen, tokio::spawn(start)));
            }
            Action::Connect(gen, Link::Remote(claim)) => {
                self.backend = Backend::Remote(Remote::new(
                    gen,
                    self.config.target(),
                    claim,
                    self.inbox.clone(),
                ));
            }
            Action::Connect(gen, Link::Local) => match &self.owned {
                Some(owned) => {
                    self.backend = Backend::Local(Local::start(
                        gen,
                        owned.shared.clone(),
                        self.config.own_grant(),
                        self.inbox.clone(),
                        self.shutdown.child_token(),
                    ));
                }
                None => queue.push_back(Event::BackendLost(
                    gen,
                    "this server's own services are not running".into(),
                )),
            },
            Action::Disconnect => self.backend = Backend::None,
            // The person who started this server sees why in its stderr, whatever the log
            // level.
            Action::Explain(text) => eprintln!("{text}"),
            Action::Stop => return Flow::Stop,
        }
        Flow::Go
    }

    /// Keep the services a start made; what the core is told.
    fn owner_started(&mut self, started: anyhow::Result<Owned>) -> Result<(), String> {
        let owned = started.map_err(|e| format!("{e:#}"))?;
        if let Some(previous) = self.owned.replace(owned) {
            // Only one start is ever made; should another finish, its services are stopped
            // rather than left running unused.
            tokio::spawn(previous.stop);
        }
        Ok(())
    }

    /// The host is gone: end the backend and the tasks, then stop the owner's services.
    async fn stop(mut self) {
        self.backend = Backend::None;
        if let Some((_, task)) = self.trying.take() {
            task.abort();
        }
        if let Some((_, task)) = self.starting.take() {
            // Started services must be stopped, not leaked: let the start finish first.
            if let Ok(Ok(owned)) = task.await {
                owned.stop.await;
            }
        }
        if let Some(owned) = self.owned.take() {
            owned.stop.await;
        }
    }
}

fn spawn_stdout_writer() -> mpsc::Sender<Value> {
    let (tx, mut rx) = mpsc::channel::<Value>(STDOUT_QUEUE);
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

fn spawn_stdin_reader(inbox: Inbox) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(line)) if line.trim().is_empty() => continue,
                Ok(Some(line)) => match serde_json::from_str::<Value>(&line) {
                    Ok(message) => {
                        if inbox.send(Event::FromHost(message)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!("the MCP host sent a line that is not JSON: {e}"),
                },
                Ok(None) | Err(_) => {
                    let _ = inbox.send(Event::HostClosed).await;
                    return;
                }
            }
        }
    });
}
