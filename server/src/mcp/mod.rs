//! The MCP face of domshell: the `domshell_execute` and `domshell_status` tools, logging
//! notifications about the extension link, progress while commands run, and the mapping of
//! bridge outcomes to tool results.
//!
//! It owns what an MCP client sees. It must not talk to sockets itself (the [`Bridge`] does)
//! or decide policy (the [`Policy`] does); transports (stdio, streamable HTTP) live in
//! [`transport`].

// MCP logging (notifications/message, logging/setLevel) is deprecated from protocol 2026-07-28
// on, but 2025-11-25 clients (the ones with sessions) still rely on it to hear about the link.
#![allow(deprecated)]

pub mod transport;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestMethod,
    CompleteRequestParams, CompleteResult, ContentBlock, Implementation, ListPromptsRequestMethod,
    ListPromptsResult, ListResourceTemplatesRequestMethod, ListResourceTemplatesResult,
    ListResourcesRequestMethod, ListResourcesResult, ListToolsResult, LoggingLevel,
    LoggingMessageNotificationParam, PaginatedRequestParams, ProgressNotificationParam,
    ServerCapabilities, ServerConfig, SetLevelRequestParams, Tool, ToolAnnotations,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData as McpError, Peer, RoleServer, ServerHandler};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::bridge::{Bridge, BridgeError, ExecuteRequest, LinkEvent};
use crate::policy::audit::{AuditEntry, AuditLog};
use crate::policy::Policy;

/// Marker the extension puts in front of a base64 PNG; turned into an image block.
const SCREENSHOT_MARKER: &str = "__SCREENSHOT_BASE64__";

const INSTRUCTIONS: &str =
    "domshell lets you drive the user's real Chrome browser as if it were a filesystem.\n\
Windows and tabs are directories (~/tabs/<id>); inside a tab, the accessibility tree is a tree of \
directories (landmarks, lists, forms) and files (links, buttons, inputs).\n\n\
Use the one tool `domshell_execute` with shell commands, one per line; they run in order in your \
own session, which keeps its current directory between calls. Start with `tabs`, then \
`cd ~/tabs/<id>`, `ls`, `find --type link`, `text main`, `click <name>`. Run `help` for the full \
command list and `<command> --help` for details. Pipes `| grep <pattern>` and `| head -n N` filter \
output.\n\n\
Commands that navigate, click/type or read cookies need the server to be started with \
--allow-write / --allow-sensitive; a refused command says which flag enables it.\n\n\
Every reply ends with `[lane: <id>]`. Failures come back as errors with a reason and a hint; \
`retryable: true` means the same command may simply be sent again. `domshell_status` reports \
whether the browser is connected, without touching it.";

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

/// State shared by every MCP session of this process.
pub struct McpShared {
    pub bridge: Bridge,
    pub policy: Policy,
    pub audit: Option<AuditLog>,
    pub config: McpConfig,
    pub started_at: Instant,
    sessions: AtomicUsize,
    /// Shell sessions of stateless (2026-07-28) clients, keyed by client identity, with the
    /// time of their last call; ended by the idle reaper.
    stateless: Mutex<std::collections::HashMap<String, Instant>>,
    /// Clients to tell about link changes, by session key.
    listeners: Mutex<std::collections::HashMap<String, LogListener>>,
}

/// A connected client that wants log notifications at `level` or above.
struct LogListener {
    peer: Peer<RoleServer>,
    level: Arc<Mutex<LoggingLevel>>,
}

impl McpShared {
    pub fn new(
        bridge: Bridge,
        policy: Policy,
        audit: Option<AuditLog>,
        config: McpConfig,
    ) -> Arc<Self> {
        let shared = Arc::new(Self {
            bridge,
            policy,
            audit,
            config,
            started_at: Instant::now(),
            sessions: AtomicUsize::new(0),
            stateless: Mutex::new(Default::default()),
            listeners: Mutex::new(Default::default()),
        });
        tokio::spawn(forward_link_events(
            Arc::downgrade(&shared),
            shared.bridge.subscribe_link_events(),
        ));
        tokio::spawn(reap_idle_stateless_sessions(Arc::downgrade(&shared)));
        shared
    }

    /// Note a call in a stateless client's shell session.
    fn touch_stateless(&self, key: &str) {
        self.stateless
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), Instant::now());
    }

    pub fn mcp_sessions(&self) -> usize {
        self.sessions.load(Ordering::SeqCst)
    }

    fn listeners(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, LogListener>> {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The status document: the same object `GET /health` serves.
    pub fn status(&self) -> Value {
        let link = self.bridge.health();
        let remediation = remediation(&link, self.config.bridge_port);
        let connected_since = link.connected_for_ms.map(|ms| {
            crate::policy::audit::rfc3339_utc(
                std::time::SystemTime::now() - Duration::from_millis(ms),
            )
        });
        json!({
            "name": "domshell",
            "server_version": env!("CARGO_PKG_VERSION"),
            "protocol": shared_protocol::PROTOCOL_VERSION,
            "pid": std::process::id(),
            "role": "owner",
            "transport": self.config.transport,
            "uptime_ms": self.started_at.elapsed().as_millis() as u64,
            "bridge_port": self.config.bridge_port,
            "link": link,
            "connected_since": connected_since,
            "mcp_sessions": self.mcp_sessions(),
            "policy": self.policy.describe(),
            "remediation": remediation,
        })
    }
}

/// One line a person can act on, or `None` when all is well.
fn remediation(link: &crate::bridge::LinkHealth, port: u16) -> Option<String> {
    use shared_protocol::link::LinkState;
    match link.state {
        LinkState::Connected => None,
        LinkState::Silent => Some(format!(
            "The extension has been quiet for {} ms; the link is being verified and is replaced automatically if it is dead.",
            link.last_inbound_age_ms.unwrap_or(0)
        )),
        _ if link.rejected_tokens > 0 && link.reconnect_count == 0 && link.last_disconnect_reason.is_none() => Some(
            "An extension tried to connect with a wrong token: run `domshell token` and paste the output into the extension's options.".into(),
        ),
        _ => match &link.last_disconnect_reason {
            Some(reason) => Some(format!(
                "The extension disconnected ({reason}); it normally reconnects within seconds. If not, check that Chrome is running and the domshell extension is enabled."
            )),
            None => Some(format!(
                "No browser extension has connected yet: load the domshell extension in Chrome (chrome://extensions → Load unpacked), open its options, paste the token from `domshell token` and set port {port}."
            )),
        },
    }
}

/// End the shell sessions of stateless clients that stopped calling, so nothing accumulates
/// in the extension.
async fn reap_idle_stateless_sessions(shared: std::sync::Weak<McpShared>) {
    let period = match shared.upgrade() {
        Some(s) => (s.config.session_idle_ttl / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(60)),
        None => return,
    };
    loop {
        tokio::time::sleep(period).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let ttl = shared.config.session_idle_ttl;
        let idle: Vec<String> = {
            let mut map = shared.stateless.lock().unwrap_or_else(|p| p.into_inner());
            let idle: Vec<String> = map
                .iter()
                .filter(|(_, last)| last.elapsed() >= ttl)
                .map(|(k, _)| k.clone())
                .collect();
            for key in &idle {
                map.remove(key);
            }
            idle
        };
        for key in idle {
            tracing::info!(session = %key, "ending idle shell session");
            shared.bridge.close_session(&key, Duration::ZERO).await;
        }
    }
}

/// Send link changes to every client that asked for log messages.
async fn forward_link_events(
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
        let targets: Vec<(String, Peer<RoleServer>)> = shared
            .listeners()
            .iter()
            .filter(|(_, l)| {
                level_at_least(level, *l.level.lock().unwrap_or_else(|p| p.into_inner()))
            })
            .map(|(key, l)| (key.clone(), l.peer.clone()))
            .collect();
        for (key, peer) in targets {
            let param =
                LoggingMessageNotificationParam::new(level, data.clone()).with_logger("domshell");
            if peer.notify_logging_message(param).await.is_err() {
                // Closed transport: forget it.
                shared.listeners().remove(&key);
            }
        }
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

/// Ends the shell session in the extension when the last handle of an MCP session goes.
struct SessionGuard {
    key: String,
    shared: Arc<McpShared>,
    counted: AtomicBool,
    /// A command ran in this session's own shell session, so the extension has state to drop.
    /// Handlers of stateless requests (one per request) never do.
    used: AtomicBool,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.counted.load(Ordering::SeqCst) {
            self.shared.sessions.fetch_sub(1, Ordering::SeqCst);
        }
        let bridge = self.shared.bridge.clone();
        let key = std::mem::take(&mut self.key);
        self.shared.listeners().remove(&key);
        if !self.used.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { bridge.close_session(&key, Duration::ZERO).await });
        }
    }
}

/// One MCP session's handler. Cheap to clone; clones share the session.
#[derive(Clone)]
pub struct DomshellMcp {
    shared: Arc<McpShared>,
    session: Arc<SessionGuard>,
    log_level: Arc<Mutex<LoggingLevel>>,
}

impl DomshellMcp {
    pub fn new(shared: Arc<McpShared>) -> Self {
        let key =
            crate::auth::random_hex(12).unwrap_or_else(|_| format!("s{}", std::process::id()));
        Self {
            session: Arc::new(SessionGuard {
                key,
                shared: shared.clone(),
                counted: AtomicBool::new(false),
                used: AtomicBool::new(false),
            }),
            shared,
            log_level: Arc::new(Mutex::new(LoggingLevel::Info)),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteArgs {
    command: String,
    #[serde(default)]
    group_id: Option<String>,
    #[serde(default)]
    initial_url: Option<String>,
    #[serde(default)]
    group_name: Option<String>,
}

/// A JSON Schema object for a tool's input (the literals passed here are always objects).
fn object_schema(schema: Value) -> Arc<rmcp::model::JsonObject> {
    match schema {
        Value::Object(map) => Arc::new(map),
        _ => Arc::default(),
    }
}

fn execute_tool() -> Tool {
    let schema = json!({
        "type": "object",
        "properties": {
            "command": {
                "type": "string",
                "description": "One shell command, or several separated by newlines (run in order; a failing line does not stop the next). Examples: `tabs`, `cd ~/tabs/123`, `ls`, `find --type link`, `text main`, `click submit_btn`. Run `help` for all commands."
            },
            "group_id": {
                "type": "string",
                "description": "Lane (tab group) to run in: \"new\" to create one, a lane id to join it, \"shared\" or omitted for your session's default."
            },
            "initial_url": {
                "type": "string",
                "description": "With group_id \"new\": the URL the new lane opens (needs navigation permission)."
            },
            "group_name": {
                "type": "string",
                "description": "With group_id \"new\": a name for the new lane."
            }
        },
        "required": ["command"],
        "additionalProperties": false
    });
    Tool::new(
        "domshell_execute",
        "Run domshell commands in the user's browser, which behaves like a filesystem built from each tab's accessibility tree. Replies end with `[lane: <id>]`; failures are errors with a reason and a hint.",
        object_schema(schema),
    )
    .with_title("Run browser shell commands")
    .annotate(
        ToolAnnotations::with_title("Run browser shell commands")
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true),
    )
}

fn status_tool() -> Tool {
    Tool::new(
        "domshell_status",
        "Report whether the browser extension is connected and healthy (link state, last heard, heartbeat round trip, reconnects, pending commands, sessions, versions) and what to do when it is not. Never touches the browser.",
        object_schema(json!({"type": "object", "properties": {}, "additionalProperties": false})),
    )
    .with_title("domshell status")
    .annotate(
        ToolAnnotations::with_title("domshell status")
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
    )
}

/// Outcome of one line of a `domshell_execute` call.
struct LineResult {
    line: String,
    ok: bool,
    output: String,
    /// Set when the line failed for a reason other than the command's own error.
    failure: Option<Failure>,
}

#[derive(Clone)]
struct Failure {
    reason: String,
    retryable: bool,
    hint: String,
}

impl Failure {
    fn from_bridge(err: &BridgeError) -> Self {
        Self {
            reason: err.reason().into(),
            retryable: err.retryable(),
            hint: err.hint().into(),
        }
    }
}

impl DomshellMcp {
    async fn run_execute(
        &self,
        args: ExecuteArgs,
        context: &RequestContext<RoleServer>,
    ) -> CallToolResult {
        let started = Instant::now();
        let deadline = started + self.shared.config.call_budget;
        let lines = shared_protocol::grammar::split_lines(&args.command);
        if lines.is_empty() {
            return error_result(
                "Error: empty command. Send one command per line, e.g. `tabs`; run `help` for the list.",
                Failure {
                    reason: "empty_command".into(),
                    retryable: false,
                    hint: "Send at least one command.".into(),
                },
                None,
            );
        }
        let session = self.session_key(context);
        let progress =
            ProgressReporter::start(context, lines.len(), self.shared.config.progress_interval);
        let cancel = context.ct.clone();
        let mut results: Vec<LineResult> = Vec::with_capacity(lines.len());
        let mut lane: Option<String> = None;
        let mut stop: Option<Failure> = None;
        for (index, line) in lines.iter().enumerate() {
            progress.line(index, line);
            let first = index == 0;
            if let Some(failure) = &stop {
                results.push(LineResult {
                    line: line.clone(),
                    ok: false,
                    output: format!(
                        "Error: not run: an earlier line failed with {}.",
                        failure.reason
                    ),
                    failure: Some(failure.clone()),
                });
                continue;
            }
            let line_started = Instant::now();
            let initial_url = if first {
                args.initial_url.as_deref()
            } else {
                None
            };
            let tier = match self.shared.policy.check(line, initial_url) {
                Ok(classification) => classification.tier_label(),
                Err(denial) => {
                    self.audit(
                        line,
                        denial.tier_label(),
                        "denied",
                        line_started,
                        Some(denial.message.clone()),
                    );
                    results.push(LineResult {
                        line: line.clone(),
                        ok: false,
                        output: format!("Error: {}", denial.message),
                        failure: Some(Failure {
                            reason: denial.reason.to_string(),
                            retryable: false,
                            hint: denial.hint.clone(),
                        }),
                    });
                    continue;
                }
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let failure = Failure {
                    reason: "call_budget_exhausted".into(),
                    retryable: true,
                    hint: "Send the remaining lines in another call.".into(),
                };
                results.push(LineResult {
                    line: line.clone(),
                    ok: false,
                    output: format!(
                        "Error: not run: the call used its {} ms budget.",
                        self.shared.config.call_budget.as_millis()
                    ),
                    failure: Some(failure.clone()),
                });
                stop = Some(failure);
                continue;
            }
            let request = ExecuteRequest {
                session: session.clone(),
                command: line.clone(),
                group_id: args.group_id.clone().filter(|g| g != "shared"),
                initial_url: initial_url.map(str::to_string),
                group_name: if first { args.group_name.clone() } else { None },
                timeout: Some(remaining),
                allowed_domains: self.shared.policy.domains().to_vec(),
            };
            match self.shared.bridge.execute(request, &cancel).await {
                Ok(outcome) => {
                    if lane.is_none() {
                        lane = outcome.lane.clone();
                    }
                    self.audit(
                        line,
                        tier,
                        if outcome.ok { "ok" } else { "error" },
                        line_started,
                        None,
                    );
                    results.push(LineResult {
                        line: line.clone(),
                        ok: outcome.ok,
                        output: outcome.output,
                        failure: None,
                    });
                }
                Err(err) => {
                    self.audit(
                        line,
                        tier,
                        err.reason(),
                        line_started,
                        Some(err.to_string()),
                    );
                    let failure = Failure::from_bridge(&err);
                    results.push(LineResult {
                        line: line.clone(),
                        ok: false,
                        output: format!("Error: {err}. {}", err.hint()),
                        failure: Some(failure.clone()),
                    });
                    // The link is gone or the client gave up: later lines must not run blind
                    // (a later click may depend on an earlier one that may not have happened).
                    stop = Some(failure);
                }
            }
        }
        progress.finish();
        let lane = lane
            .or_else(|| args.group_id.clone().filter(|g| g != "new"))
            .unwrap_or_else(|| "shared".into());
        compose(results, &lane)
    }

    /// The shell session a call runs in: this MCP session's, or for stateless (2026-07-28)
    /// requests, which have no session, one per client identity.
    fn session_key(&self, context: &RequestContext<RoleServer>) -> String {
        // From 2026-07-28 on there is no initialize and no session: each request says its own
        // protocol version in `_meta`.
        let stateless = context
            .meta
            .protocol_version()
            .is_some_and(|version| !version.has_initialize());
        if !stateless {
            self.session.used.store(true, Ordering::SeqCst);
            return self.session.key.clone();
        }
        let client = context
            .client_info()
            .map(|info| format!("{}/{}", info.name, info.version))
            .unwrap_or_else(|| "anonymous".into());
        let key = format!("client:{client}");
        self.shared.touch_stateless(&key);
        key
    }

    fn audit(
        &self,
        line: &str,
        tier: &str,
        outcome: &str,
        started: Instant,
        detail: Option<String>,
    ) {
        if let Some(audit) = &self.shared.audit {
            audit.record(AuditEntry {
                session: self.session.key.clone(),
                tier: tier.to_string(),
                command: line.to_string(),
                outcome: outcome.to_string(),
                duration_ms: started.elapsed().as_millis() as u64,
                detail,
            });
        }
    }
}

/// Which line of how many is running, shared with the progress ticker.
type CurrentLine = Arc<Mutex<(usize, String)>>;

/// Sends `notifications/progress` while a call runs, when the client supplied a token.
struct ProgressReporter {
    state: Option<(CurrentLine, CancellationToken)>,
}

impl ProgressReporter {
    fn start(context: &RequestContext<RoleServer>, total: usize, interval: Duration) -> Self {
        let Some(token) = context.meta.get_progress_token() else {
            return Self { state: None };
        };
        let current = Arc::new(Mutex::new((0usize, String::new())));
        let stop = CancellationToken::new();
        let peer = context.peer.clone();
        let (current2, stop2) = (current.clone(), stop.clone());
        let started = Instant::now();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = stop2.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                let (index, line) = current2.lock().map(|g| g.clone()).unwrap_or_default();
                let param = ProgressNotificationParam::new(token.clone(), index as f64)
                    .with_total(total as f64)
                    .with_message(format!(
                        "running line {} of {total} ({:.1} s): {line}",
                        index + 1,
                        started.elapsed().as_secs_f64()
                    ));
                if peer.notify_progress(param).await.is_err() {
                    return;
                }
            }
        });
        Self {
            state: Some((current, stop)),
        }
    }

    fn line(&self, index: usize, line: &str) {
        if let Some((current, _)) = &self.state {
            if let Ok(mut guard) = current.lock() {
                *guard = (index, line.chars().take(80).collect());
            }
        }
    }

    fn finish(&self) {
        if let Some((_, stop)) = &self.state {
            stop.cancel();
        }
    }
}

impl Drop for ProgressReporter {
    fn drop(&mut self) {
        self.finish();
    }
}

fn error_result(text: &str, failure: Failure, lane: Option<&str>) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.structured_content = Some(json!({
        "reason": failure.reason,
        "retryable": failure.retryable,
        "hint": failure.hint,
        "lane": lane,
    }));
    result
}

/// Turn line results into one tool result: `$ line` headers when there are several, images
/// for screenshots, the lane trailer, and `isError` with structured details on failure.
fn compose(results: Vec<LineResult>, lane: &str) -> CallToolResult {
    let multi = results.len() > 1;
    let mut blocks: Vec<ContentBlock> = Vec::new();
    let mut text = String::new();
    for result in &results {
        if multi {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str("$ ");
            text.push_str(&result.line);
            text.push('\n');
        }
        match result.output.strip_prefix(SCREENSHOT_MARKER) {
            Some(data) if result.ok => {
                if !text.is_empty() {
                    blocks.push(ContentBlock::text(std::mem::take(&mut text)));
                }
                blocks.push(ContentBlock::image(data.trim().to_string(), "image/png"));
            }
            _ => text.push_str(result.output.trim_end_matches(['\r', '\n'])),
        }
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("[lane: {lane}]"));
    blocks.push(ContentBlock::text(text));

    let failed: Vec<&LineResult> = results.iter().filter(|r| !r.ok).collect();
    if failed.is_empty() {
        return CallToolResult::success(blocks);
    }
    let first = failed[0];
    let failure = first.failure.clone().unwrap_or(Failure {
        reason: "command_failed".into(),
        retryable: false,
        hint: "Read the error above; `<command> --help` shows usage.".into(),
    });
    let mut result = CallToolResult::error(blocks);
    result.structured_content = Some(json!({
        "reason": failure.reason,
        "retryable": failure.retryable && failed.iter().all(|r| r.failure.as_ref().is_some_and(|f| f.retryable)),
        "hint": failure.hint,
        "lane": lane,
        "failed_lines": failed.iter().map(|r| json!({
            "line": r.line,
            "reason": r.failure.as_ref().map_or("command_failed", |f| f.reason.as_str()),
        })).collect::<Vec<_>>(),
        "lines_run": results.len(),
    }));
    result
}

impl ServerHandler for DomshellMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
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
        Ok(ListToolsResult::with_all_items(vec![
            execute_tool(),
            status_tool(),
        ]))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        match name {
            "domshell_execute" => Some(execute_tool()),
            "domshell_status" => Some(status_tool()),
            _ => None,
        }
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
            other => Err(McpError::invalid_params(
                format!("unknown tool {other:?}; this server offers domshell_execute and domshell_status"),
                None,
            )),
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

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if !self.session.counted.swap(true, Ordering::SeqCst) {
            self.shared.sessions.fetch_add(1, Ordering::SeqCst);
        }
        self.shared.listeners().insert(
            self.session.key.clone(),
            LogListener {
                peer: context.peer.clone(),
                level: self.log_level.clone(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(line: &str, ok: bool, output: &str, failure: Option<Failure>) -> LineResult {
        LineResult {
            line: line.into(),
            ok,
            output: output.into(),
            failure,
        }
    }

    fn text_of(result: &CallToolResult) -> String {
        result
            .content
            .iter()
            .filter_map(|b| b.as_text().map(|t| t.text.clone()))
            .collect::<Vec<_>>()
            .join("")
    }

    #[test]
    fn single_line_success_has_output_and_lane() {
        let r = compose(vec![line("pwd", true, "~", None)], "shared");
        assert_eq!(r.is_error, Some(false));
        assert_eq!(text_of(&r), "~\n[lane: shared]");
        assert!(
            r.structured_content.is_none(),
            "success carries no structuredContent"
        );
    }

    #[test]
    fn several_lines_get_headers_and_a_failure_marks_the_call() {
        let r = compose(
            vec![
                line("pwd", true, "~", None),
                line("bogus", false, "domshell: bogus: command not found", None),
                line("tabs", true, "(no tabs)\r\n", None),
            ],
            "42",
        );
        assert_eq!(
            text_of(&r),
            "$ pwd\n~\n$ bogus\ndomshell: bogus: command not found\n$ tabs\n(no tabs)\n[lane: 42]"
        );
        assert_eq!(r.is_error, Some(true));
        let s = r.structured_content.unwrap();
        assert_eq!(s["reason"], "command_failed");
        assert_eq!(s["failed_lines"][0]["line"], "bogus");
        assert_eq!(s["lane"], "42");
    }

    #[test]
    fn screenshots_become_image_blocks() {
        let r = compose(
            vec![line(
                "screenshot",
                true,
                "__SCREENSHOT_BASE64__iVBORw0KGgo=",
                None,
            )],
            "shared",
        );
        assert_eq!(r.content.len(), 2);
        let image = r.content[0].as_image().expect("an image block");
        assert_eq!(image.mime_type, "image/png");
        assert_eq!(image.data, "iVBORw0KGgo=");
        assert_eq!(text_of(&r), "[lane: shared]");
    }

    #[test]
    fn retryable_only_when_every_failure_is() {
        let link = Failure {
            reason: "extension_link_lost".into(),
            retryable: true,
            hint: "retry".into(),
        };
        let r = compose(
            vec![line("pwd", false, "Error: lost", Some(link.clone()))],
            "shared",
        );
        assert_eq!(r.structured_content.as_ref().unwrap()["retryable"], true);
        let r = compose(
            vec![
                line("pwd", false, "Error: lost", Some(link)),
                line("x", false, "nope", None),
            ],
            "shared",
        );
        assert_eq!(r.structured_content.as_ref().unwrap()["retryable"], false);
    }

    #[test]
    fn instructions_stay_short() {
        assert!(INSTRUCTIONS.len() < 4_000, "{} chars", INSTRUCTIONS.len());
        assert!(INSTRUCTIONS.contains("help"));
    }

    #[test]
    fn log_levels_are_ordered() {
        assert!(level_at_least(LoggingLevel::Warning, LoggingLevel::Info));
        assert!(!level_at_least(LoggingLevel::Info, LoggingLevel::Warning));
        assert!(level_at_least(LoggingLevel::Emergency, LoggingLevel::Debug));
    }
}
