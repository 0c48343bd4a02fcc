//! The MCP face of domshell: an rmcp `ServerHandler` per MCP session that dispatches to
//! the two tools, and the state every session shares.
//!
//! It owns what an MCP client sees, split by concern: [`tools`] (definitions and
//! `domshell_execute`), [`results`] (outcomes as tool results), [`progress`],
//! [`sessions`] (shell session keys and their lifetime), [`notifications`] (link events as
//! log messages), [`status`] (the status document) and [`transport`] (stdio and streamable
//! HTTP). It must not talk to sockets itself or decide policy: every command goes through
//! the [`Pipeline`].

// MCP logging (notifications/message, logging/setLevel) is deprecated from protocol 2026-07-28
// on, but 2025-11-25 clients (the ones with sessions) still rely on it to hear about the link.
#![allow(deprecated)]

mod notifications;
mod progress;
mod results;
mod sessions;
mod status;
mod tools;
pub mod transport;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestMethod,
    CompleteRequestParams, CompleteResult, ContentBlock, Implementation, InitializeRequestParams,
    InitializeResult, ListPromptsRequestMethod, ListPromptsResult,
    ListResourceTemplatesRequestMethod, ListResourceTemplatesResult, ListResourcesRequestMethod,
    ListResourcesResult, ListToolsResult, LoggingLevel, PaginatedRequestParams, ServerCapabilities,
    ServerConfig, SetLevelRequestParams, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::Value;

use self::notifications::{forward_link_events, LogListener};
use self::results::error_result;
use self::sessions::{reap_idle_stateless_sessions, SessionGuard, SessionTable};
use self::tools::{
    execute_tool, granular_arguments, granular_tool, status_tool, ExecuteArgs, INSTRUCTIONS,
};
use crate::bridge::Bridge;
use crate::pipeline::{Failure, Pipeline, Rails};
use crate::policy::audit::AuditLog;
use crate::policy::Policy;
use crate::relay_door::RelayGrant;

/// Settings of the MCP layer that are not the bridge's.
#[derive(Debug, Clone)]
pub struct McpConfig {
    /// The whole `domshell_execute` call must finish within this (below clients' 60 s).
    pub call_budget: Duration,
    /// How often progress is reported while a command runs (when the client asked for it).
    pub progress_interval: Duration,
    /// Shell sessions of stateless clients idle this long are ended.
    pub session_idle_ttl: Duration,
    pub transport: &'static str,
    pub bridge_port: u16,
}

/// Where the owner is in its life, as `/health` reports it to contenders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// Listening, but not yet serving everything: contenders wait instead of judging it.
    Starting,
    Ready,
    /// Shutting down: the port is about to be free.
    Draining,
}

impl OwnerState {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerState::Starting => "starting",
            OwnerState::Ready => "ready",
            OwnerState::Draining => "draining",
        }
    }
}

/// State shared by every MCP session of this process.
pub struct McpShared {
    /// The one path commands take to the extension (bridge, policy, audit).
    pub pipeline: Pipeline,
    pub config: McpConfig,
    pub started_at: Instant,
    /// Wall-clock start, for `/health`.
    pub started_at_wall: std::time::SystemTime,
    state: Mutex<OwnerState>,
    /// Every per-session map (listing, log listeners, stateless clients), bounded.
    pub(super) sessions: SessionTable,
    /// Link events, until [`Self::spawn_background`] takes them.
    link_events: Mutex<Option<tokio::sync::broadcast::Receiver<crate::bridge::LinkEvent>>>,
}

impl McpShared {
    pub fn new(
        bridge: Bridge,
        policy: Policy,
        audit: Option<AuditLog>,
        config: McpConfig,
    ) -> Arc<Self> {
        let link_events = bridge.subscribe_link_events();
        Arc::new(Self {
            pipeline: Pipeline {
                bridge,
                policy,
                audit: audit.map(Arc::new),
            },
            config,
            started_at: Instant::now(),
            started_at_wall: std::time::SystemTime::now(),
            state: Mutex::new(OwnerState::Starting),
            sessions: SessionTable::default(),
            link_events: Mutex::new(Some(link_events)),
        })
    }

    /// Start the background tasks (link changes to clients, the idle-session reaper) on
    /// `tracker`; they end when `stop` fires or this state is dropped.
    pub fn spawn_background(
        self: &Arc<Self>,
        tracker: &tokio_util::task::TaskTracker,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let taken = self
            .link_events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(events) = taken {
            let (shared, stop) = (Arc::downgrade(self), stop.clone());
            tracker.spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = forward_link_events(shared, events) => {}
                }
            });
        }
        let shared = Arc::downgrade(self);
        tracker.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = reap_idle_stateless_sessions(shared) => {}
            }
        });
    }

    pub fn state(&self) -> OwnerState {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_state(&self, state: OwnerState) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    pub fn mcp_sessions(&self) -> usize {
        self.sessions.active()
    }
}

/// One MCP session's handler. Cheap to clone; clones share the session.
#[derive(Clone)]
pub struct DomshellMcp {
    shared: Arc<McpShared>,
    session: Arc<SessionGuard>,
    log_level: Arc<Mutex<LoggingLevel>>,
    /// The rails of an admitted relay's host; `None`: this server's own.
    rails: Arc<Mutex<Option<Arc<Rails>>>>,
    /// A grant made by this process itself (the relay's in-process backend after a
    /// takeover), adopted at `initialize` instead of one from the admission layer.
    preset_grant: Option<RelayGrant>,
}

impl DomshellMcp {
    pub fn new(shared: Arc<McpShared>) -> Self {
        let key =
            crate::auth::random_hex(12).unwrap_or_else(|_| format!("s{}", std::process::id()));
        Self {
            session: Arc::new(SessionGuard {
                key: Mutex::new(key),
                gen: AtomicU64::new(0),
                shared: shared.clone(),
                counted: AtomicBool::new(false),
                used: AtomicBool::new(false),
            }),
            shared,
            log_level: Arc::new(Mutex::new(LoggingLevel::Info)),
            rails: Arc::new(Mutex::new(None)),
            preset_grant: None,
        }
    }

    /// The handler for this process's own relay host, which needs no admission: it is the
    /// same process, with the same rails.
    pub fn for_own_host(shared: Arc<McpShared>, grant: RelayGrant) -> Self {
        Self {
            preset_grant: Some(grant),
            ..Self::new(shared)
        }
    }
}

impl DomshellMcp {
    /// What `f` says of this session's policy: a relay's host's rails, or this server's.
    fn with_policy<R>(&self, f: impl FnOnce(&Policy) -> R) -> R {
        match &*self.rails.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(rails) => f(&rails.policy),
            None => f(&self.shared.pipeline.policy),
        }
    }

    /// Whether this session's rails allow reading only.
    fn reads_only(&self) -> bool {
        self.with_policy(Policy::reads_only)
    }

    /// The tools this session is offered: the two always, and with `--granular` each
    /// command family's whose tiers the rails allow.
    pub(super) fn offered_tools(&self) -> Vec<Tool> {
        let mut tools = vec![execute_tool(self.reads_only()), status_tool()];
        self.with_policy(|policy| {
            if !policy.granular() {
                return;
            }
            for def in shared_protocol::tools::tool_commands() {
                let effect = shared_protocol::tools::effect(def, |tier| policy.allows(tier));
                if effect.offered {
                    tools.push(granular_tool(def, effect));
                }
            }
        });
        tools
    }

    /// The command behind granular tool `name`, when this session has granular tools.
    fn granular_command(
        &self,
        name: &str,
    ) -> Option<&'static shared_protocol::commands::CommandDef> {
        self.with_policy(Policy::granular)
            .then(|| shared_protocol::tools::find_tool(name))
            .flatten()
    }
}

impl ServerHandler for DomshellMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            // No `listChanged`: the owner's tool list never changes. A relay in front of it
            // changes it (degraded ↔ working) and declares that to its own host.
            ServerCapabilities::builder()
                .enable_tools()
                .enable_logging()
                .build(),
        )
        .with_server_info(
            Implementation::new("domshell", env!("CARGO_PKG_VERSION"))
                .with_title("domshell — the browser as a filesystem"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.offered_tools()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.offered_tools()
            .into_iter()
            .find(|tool| tool.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        match request.name.as_ref() {
            "domshell_execute" => {
                // Bad arguments are a tool error the model can read and correct (SEP-1303),
                // not a protocol error most hosts would hide.
                let args: ExecuteArgs = match serde_json::from_value(arguments) {
                    Ok(args) => args,
                    Err(e) => {
                        return Ok(error_result(
                            &format!("Error: domshell_execute arguments: {e}."),
                            Failure {
                                reason: "invalid_arguments".into(),
                                retryable: false,
                                hint: "Send {\"command\": \"<shell command(s)>\"}, e.g. {\"command\": \"help\"}.".into(),
                            },
                            None,
                        )
                        .into())
                    }
                };
                Ok(self.run_execute(args, &context).await.into())
            }
            "domshell_status" => {
                let status = self.shared.status();
                let text = serde_json::to_string_pretty(&status).unwrap_or_default();
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = Some(status);
                Ok(result.into())
            }
            other => match self.granular_command(other) {
                // A granular tool this session is not offered still runs through the
                // pipeline, whose refusal names the flag that would allow it.
                Some(def) => match granular_arguments(def, arguments) {
                    Ok(args) => Ok(self.run_execute(args, &context).await.into()),
                    Err(problem) => Ok(error_result(
                        &format!("Error: {problem}."),
                        Failure {
                            reason: "invalid_arguments".into(),
                            retryable: false,
                            hint: format!(
                                "The tool's input schema lists its parameters; `{} --help` explains the command.",
                                def.name
                            ),
                        },
                        None,
                    )
                    .into()),
                },
                None => Err(McpError::invalid_params(
                    format!("unknown tool {other:?}; this server offers domshell_execute and domshell_status (and, started with --granular, one tool per command)"),
                    None,
                )),
            },
        }
    }

    // rmcp answers these with empty lists by default; a server that does not declare prompts,
    // resources or completions must say "method not found" instead.
    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Err(McpError::method_not_found::<ListPromptsRequestMethod>())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Err(McpError::method_not_found::<ListResourcesRequestMethod>())
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Err(McpError::method_not_found::<
            ListResourceTemplatesRequestMethod,
        >())
    }

    async fn complete(
        &self,
        _request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        Err(McpError::method_not_found::<CompleteRequestMethod>())
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if let Ok(mut level) = self.log_level.lock() {
            *level = request.level;
        }
        Ok(())
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        let client =
            crate::labels::client_label(&request.client_info.name, &request.client_info.version);
        self.adopt_host(&context, client);
        context.peer.set_peer_info(request.clone());
        self.negotiate_initialize(&request)
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if !self.session.counted.swap(true, Ordering::SeqCst) {
            self.shared.sessions.count_active(1);
        }
        self.shared.sessions.activate(
            &self.session.key(),
            self.session.gen.load(Ordering::SeqCst),
            LogListener::spawn(context.peer.clone(), self.log_level.clone()),
        );
    }
}
