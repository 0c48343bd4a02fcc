//! Command-line flags and environment variables, and turning them into runtime configuration.
//! Every timing has a production default from `shared-protocol` and a flag for tests.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use shared_protocol as proto;

use crate::auth::{self, OriginPolicy, TokenOrigin};
use crate::bridge::BridgeConfig;

#[derive(Debug, Parser)]
#[command(
    name = "domshell",
    version,
    about = "Let AI agents drive a real browser through MCP: the server half of domshell."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: MCP over stdio (default) or streamable HTTP at /mcp, and the bridge the
    /// extension connects to. Claude Desktop: {"command": "domshell", "args": ["serve"]}.
    Serve(Box<ServeArgs>),
    /// Print the token the extension must be given (generating it on first use).
    Token(TokenArgs),
    /// Check a running server: exit 0 when GET /health answers 200, 1 otherwise (the
    /// container image's health check).
    Health(crate::health::HealthArgs),
    /// Add domshell to an MCP host's configuration (Claude Desktop by default), then print
    /// the steps left in the browser.
    Init(crate::init::InitArgs),
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[arg(long, env = "DOMSHELL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long, env = "DOMSHELL_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

/// How MCP clients reach this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// MCP on stdin/stdout (what Claude Desktop spawns); `/mcp` is served on the bridge port too.
    Stdio,
    /// Streamable HTTP only, at `/mcp` on the bridge port (and on --mcp-port when given).
    #[value(alias = "streamable-http", alias = "streamable_http")]
    Http,
}

impl Transport {
    pub fn label(self) -> &'static str {
        match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// MCP transport.
    #[arg(
        long,
        env = "MCP_TRANSPORT",
        value_enum,
        default_value = "stdio",
        ignore_case = true
    )]
    pub transport: Transport,

    /// Also serve `/mcp` and `/health` on this port (hosts that assign a port, e.g. ToolHive).
    #[arg(long, env = "MCP_PORT")]
    pub mcp_port: Option<u16>,

    /// Address to bind. Keep the loopback default unless the server runs in a container.
    #[arg(long, env = "DOMSHELL_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port of the bridge listener (WebSocket for the extension, /health). 0 picks a free port.
    #[arg(long, env = "DOMSHELL_WS_PORT", default_value_t = proto::DEFAULT_BRIDGE_PORT)]
    pub ws_port: u16,

    /// Token the extension must present. Default: generated once and kept in --token-file.
    #[arg(long, env = "DOMSHELL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Where the generated token is kept (mode 0600). Default: $XDG_CONFIG_HOME/domshell/token.
    #[arg(long, env = "DOMSHELL_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// Interval between heartbeat PINGs to the extension.
    #[arg(long, env = "DOMSHELL_PING_INTERVAL_MS", default_value_t = proto::DEFAULT_PING_INTERVAL_MS)]
    pub ping_interval_ms: u64,

    /// Silence after which the extension link is declared dead and dropped.
    #[arg(long, env = "DOMSHELL_SILENCE_LIMIT_MS", default_value_t = proto::DEFAULT_SILENCE_LIMIT_MS)]
    pub silence_limit_ms: u64,

    /// How long a command waits for a disconnected extension before failing.
    #[arg(long, env = "DOMSHELL_CONNECT_GRACE_MS", default_value_t = 3_000)]
    pub connect_grace_ms: u64,

    /// Longest a `domshell_execute` call may run (all its lines); kept below MCP clients' 60 s
    /// request timeout.
    #[arg(long, env = "DOMSHELL_COMMAND_TIMEOUT_MS", default_value_t = 45_000)]
    pub command_timeout_ms: u64,

    /// Largest WebSocket frame accepted from the extension.
    #[arg(long, default_value_t = proto::MAX_FRAME_BYTES)]
    pub max_frame_bytes: usize,

    /// Extra extension ids allowed to connect (the pinned id of the repository's manifest is
    /// always allowed).
    #[arg(long = "allowed-extension-id", value_name = "ID")]
    pub allowed_extension_ids: Vec<String>,

    /// Enable commands that navigate and interact (click, type, open, …).
    #[arg(long)]
    pub allow_write: bool,

    /// Enable commands that read sensitive data (whoami; with --allow-write also js/eval/call).
    #[arg(long)]
    pub allow_sensitive: bool,

    /// Same as --allow-write --allow-sensitive.
    #[arg(long)]
    pub allow_all: bool,

    /// Only these domains (and their subdomains) may be opened or used, comma-separated.
    #[arg(long, env = "DOMSHELL_DOMAINS", value_delimiter = ',')]
    pub domains: Vec<String>,

    /// Audit log (JSON lines, typed text redacted). Default: $XDG_STATE_HOME/domshell/audit.log.
    #[arg(long, env = "DOMSHELL_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,

    /// Rotate the audit log when it exceeds this size.
    #[arg(long, default_value_t = crate::policy::audit::DEFAULT_MAX_BYTES)]
    pub audit_max_bytes: u64,

    /// Do not write an audit log.
    #[arg(long)]
    pub no_audit: bool,

    /// Host header values accepted on /mcp (repeatable). Default: loopback names when bound to
    /// loopback; any when bound elsewhere (e.g. 0.0.0.0 in a container).
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,

    /// Browser origins accepted on /mcp (repeatable). Default: loopback origins only
    /// (http://localhost, 127.0.0.1, [::1], any port), so a web page elsewhere cannot use a
    /// DNS-rebinding trick; tool calls need the token anyway.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,

    /// Close an HTTP MCP session (and its shell state) after this much inactivity.
    #[arg(long, env = "DOMSHELL_SESSION_IDLE_TTL_MS", default_value_t = 30 * 60 * 1000)]
    pub session_idle_ttl_ms: u64,

    /// Interval of progress notifications while a command runs (when the client asks).
    #[arg(long, default_value_t = 2_000)]
    pub progress_interval_ms: u64,

    /// Serve POST /debug/execute {command} (token as Bearer) for troubleshooting and tests.
    #[arg(long)]
    pub debug_api: bool,

    /// Write {"bridge_port": N, "pid": N} to this file once listening (for supervisors and tests).
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
}

impl ServeArgs {
    pub fn bridge_config(&self) -> anyhow::Result<BridgeConfig> {
        anyhow::ensure!(
            self.ping_interval_ms > 0,
            "--ping-interval-ms must be above 0"
        );
        anyhow::ensure!(
            self.silence_limit_ms > self.ping_interval_ms,
            "--silence-limit-ms ({}) must exceed --ping-interval-ms ({}), or every link would die between two pings",
            self.silence_limit_ms,
            self.ping_interval_ms
        );
        let (token, _) = resolve_token(self.token.as_deref(), self.token_file.as_deref())?;
        let mut ids = vec![proto::EXTENSION_ID.to_string()];
        ids.extend(self.allowed_extension_ids.iter().cloned());
        Ok(BridgeConfig {
            token,
            ping_interval: Duration::from_millis(self.ping_interval_ms),
            silence_limit: Duration::from_millis(self.silence_limit_ms),
            connect_grace: Duration::from_millis(self.connect_grace_ms),
            command_timeout: Duration::from_millis(self.command_timeout_ms),
            max_frame_bytes: self.max_frame_bytes,
            hello_timeout: Duration::from_millis(proto::HELLO_TIMEOUT_MS),
            origins: OriginPolicy::new(&ids),
        })
    }
}

/// The token from the flag/env, or the persisted one (generated on first use, with
/// instructions on stderr).
pub fn resolve_token(flag: Option<&str>, file: Option<&Path>) -> anyhow::Result<(String, PathBuf)> {
    if let Some(token) = flag.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok((token.to_string(), PathBuf::new()));
    }
    let path = match file {
        Some(p) => p.to_path_buf(),
        None => auth::default_token_path()?,
    };
    let (token, origin) = auth::load_or_create_token(&path)?;
    if origin == TokenOrigin::Generated {
        eprintln!(
            "domshell: generated a new token and saved it to {}\n\
             domshell: open the extension's options (chrome://extensions → domshell → Details → Extension options)\n\
             domshell: and paste this token: {token}",
            path.display()
        );
    }
    Ok((token, path))
}

impl ServeArgs {
    pub fn policy_config(&self) -> crate::policy::PolicyConfig {
        crate::policy::PolicyConfig {
            allow_write: self.allow_write || self.allow_all,
            allow_sensitive: self.allow_sensitive || self.allow_all,
            domains: self
                .domains
                .iter()
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty())
                .collect(),
        }
    }

    pub fn audit_path(&self) -> anyhow::Result<Option<PathBuf>> {
        if self.no_audit {
            return Ok(None);
        }
        if let Some(path) = &self.audit_log {
            return Ok(Some(path.clone()));
        }
        let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(std::env::var_os("HOME").ok_or_else(|| {
                anyhow::anyhow!("cannot place the audit log: set HOME or pass --audit-log <path> (or --no-audit)")
            })?)
            .join(".local")
            .join("state"),
        };
        Ok(Some(base.join("domshell").join("audit.log")))
    }

    /// Origins accepted on /mcp.
    pub fn mcp_allowed_origins(&self) -> Vec<String> {
        if !self.allowed_origins.is_empty() {
            return self.allowed_origins.clone();
        }
        ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
            .into_iter()
            .map(String::from)
            .collect()
    }

    /// Host names accepted on /mcp.
    pub fn mcp_allowed_hosts(&self) -> Vec<String> {
        if !self.allowed_hosts.is_empty() {
            return self.allowed_hosts.clone();
        }
        let loopback = self
            .host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(self.host == "localhost");
        if loopback {
            vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
        } else {
            Vec::new()
        }
    }
}

pub fn write_ready_file(path: &Path, port: u16) -> anyhow::Result<()> {
    let body = serde_json::json!({ "bridge_port": port, "pid": std::process::id() });
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body.to_string()).context("writing")?;
    std::fs::rename(&tmp, path).context("renaming into place")?;
    Ok(())
}
