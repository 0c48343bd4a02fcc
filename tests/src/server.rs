//! The real `domshell` binary as a child process: start it on an ephemeral (or given) port,
//! wait until it is ready, talk to its HTTP routes, stop it.
//!
//! It owns the child process, its private temp dir (config home, ready file) and the capture
//! of its stderr/stdout. It must not build the binary (a test run must not race another
//! cargo build) and must not leave the process running: dropping the handle kills it.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

/// Token given to the server (and the fake extension) unless a test picks another.
pub const TEST_TOKEN: &str = "domshell-test-token-0123456789abcdef";
/// MCP bearer token given to the server unless a test picks another (HTTP MCP clients and
/// the debug route present it).
pub const TEST_MCP_TOKEN: &str = "domshell-test-mcp-token-0123456789abcdef";

/// How long the server may take to write its ready file.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `start_on_port` retries a port that is still held (e.g. in TIME_WAIT by a
/// process that just died, or by a server that is still shutting down).
const REBIND_RETRY: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// 0 picks a free port.
    pub ws_port: u16,
    /// `None` lets the server generate and persist its own token (read back after start).
    pub token: Option<String>,
    /// `None` lets the server generate and persist its own MCP token (read back after start).
    pub mcp_token: Option<String>,
    /// The relay key file; `None`: the server's own (generated in its config dir).
    pub relay_key_file: Option<PathBuf>,
    pub ping_interval_ms: u64,
    pub silence_limit_ms: u64,
    pub connect_grace_ms: Option<u64>,
    pub command_timeout_ms: Option<u64>,
    pub debug_api: bool,
    pub extra_args: Vec<String>,
    /// Extra environment for the child (after all inherited `DOMSHELL_*` are removed).
    pub env: Vec<(String, String)>,
    /// The binary to run; `None`: [`server_binary`].
    pub binary: Option<PathBuf>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            ws_port: 0,
            token: Some(TEST_TOKEN.to_string()),
            mcp_token: Some(TEST_MCP_TOKEN.to_string()),
            relay_key_file: None,
            ping_interval_ms: 200,
            silence_limit_ms: 1_000,
            connect_grace_ms: None,
            command_timeout_ms: None,
            debug_api: true,
            extra_args: Vec::new(),
            env: Vec::new(),
            binary: None,
        }
    }
}

type Lines = Arc<Mutex<Vec<String>>>;

/// A running server. Dropping it kills the process and removes its temp dir.
pub struct ServerProcess {
    child: Child,
    /// Held open so a server that ever reads stdin (MCP over stdio) does not see EOF.
    _stdin: Option<ChildStdin>,
    port: u16,
    token: String,
    mcp_token: String,
    opts: ServerOptions,
    stderr: Lines,
    stdout: Lines,
    http: reqwest::Client,
    // Dropped after the child is killed (field order), so the server never sees its config
    // dir vanish under it.
    dir: tempfile::TempDir,
}

/// A stdio `domshell serve <args>` as an MCP host spawns it, in the Python driver's plan
/// format: its config and state directories in `dir`, debug logs on its stderr.
pub fn stdio_transport(dir: &std::path::Path, args: &[String]) -> Value {
    let mut all = vec!["serve".to_string()];
    all.extend(args.iter().cloned());
    serde_json::json!({
        "type": "stdio",
        "command": server_binary().map(|b| b.display().to_string()).unwrap_or_default(),
        "args": all,
        "env": {
            "XDG_CONFIG_HOME": dir.display().to_string(),
            "XDG_STATE_HOME": dir.display().to_string(),
            "DOMSHELL_LOG": "debug",
        },
    })
}

/// The bridge port a server spawned with `--ready-file <ready_file>` (by an MCP host, or the
/// Python driver) announces there, once it listens; panics after 20 s without one.
pub async fn ready_bridge_port(ready_file: &std::path::Path) -> u16 {
    crate::eventually(
        Duration::from_secs(20),
        Duration::from_millis(20),
        || async {
            let text = std::fs::read_to_string(ready_file).map_err(|e| e.to_string())?;
            let doc: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            doc["bridge_port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| "no port yet".to_string())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("no bridge port in {}: {e}", ready_file.display()))
}

/// The binary under test: `$DOMSHELL_BIN`, else `debug/domshell` in cargo's target
/// directory.
pub fn server_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("DOMSHELL_BIN").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        anyhow::ensure!(
            path.is_file(),
            "DOMSHELL_BIN={} does not exist",
            path.display()
        );
        return Ok(path);
    }
    let path = crate::workspace::target_dir()?
        .join("debug")
        .join("domshell");
    anyhow::ensure!(
        path.is_file(),
        "server binary {} not found: run `cargo build -p domshell-server` first (or set DOMSHELL_BIN)",
        path.display()
    );
    Ok(path)
}

fn capture<R: Read + Send + 'static>(stream: R, into: Lines, echo: bool) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if echo {
                eprintln!("[domshell] {line}");
            }
            into.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    });
}

fn joined(lines: &Lines) -> String {
    lines.lock().unwrap_or_else(|p| p.into_inner()).join("\n")
}

impl ServerProcess {
    /// Start the server and wait (bounded) until it listens.
    pub async fn start(opts: ServerOptions) -> anyhow::Result<ServerProcess> {
        Self::spawn_and_wait(opts).await
    }

    /// Start on a known port, e.g. to restart a server the extension already knows. Retries
    /// for a few seconds while the port is still held.
    pub async fn start_on_port(
        port: u16,
        mut opts: ServerOptions,
    ) -> anyhow::Result<ServerProcess> {
        opts.ws_port = port;
        let deadline = Instant::now() + REBIND_RETRY;
        loop {
            match Self::spawn_and_wait(opts.clone()).await {
                Ok(server) => return Ok(server),
                Err(e)
                    if format!("{e:#}").contains("cannot listen") && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn spawn_and_wait(opts: ServerOptions) -> anyhow::Result<ServerProcess> {
        let binary = match &opts.binary {
            Some(binary) => binary.clone(),
            None => server_binary()?,
        };
        let dir = tempfile::Builder::new()
            .prefix("domshell-server-")
            .tempdir()
            .context("creating the server's temp dir")?;
        let ready = dir.path().join("ready.json");

        let mut cmd = Command::new(&binary);
        cmd.arg("serve")
            .args(["--host", "127.0.0.1"])
            .args(["--ws-port", &opts.ws_port.to_string()])
            .args(["--ping-interval-ms", &opts.ping_interval_ms.to_string()])
            .args(["--silence-limit-ms", &opts.silence_limit_ms.to_string()])
            .arg("--ready-file")
            .arg(&ready);
        if let Some(token) = &opts.token {
            cmd.args(["--token", token]);
        }
        if let Some(token) = &opts.mcp_token {
            cmd.args(["--mcp-token", token]);
        }
        if let Some(file) = &opts.relay_key_file {
            cmd.arg("--relay-key-file").arg(file);
        }
        if let Some(ms) = opts.connect_grace_ms {
            cmd.args(["--connect-grace-ms", &ms.to_string()]);
        }
        if let Some(ms) = opts.command_timeout_ms {
            cmd.args(["--command-timeout-ms", &ms.to_string()]);
        }
        if opts.debug_api {
            cmd.arg("--debug-api");
        }
        cmd.args(&opts.extra_args);
        // The developer's own settings must not leak into a test server.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("DOMSHELL_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env("DOMSHELL_LOG", "debug")
            .env("XDG_CONFIG_HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path())
            .envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());

        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let echo = std::env::var_os("DOMSHELL_TEST_ECHO").is_some();
        let stderr: Lines = Arc::default();
        let stdout: Lines = Arc::default();
        if let Some(err) = child.stderr.take() {
            capture(err, stderr.clone(), echo);
        }
        if let Some(out) = child.stdout.take() {
            capture(out, stdout.clone(), echo);
        }
        let stdin = child.stdin.take();
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("building the HTTP client")?;
        let mut server = ServerProcess {
            child,
            _stdin: stdin,
            port: 0,
            token: opts.token.clone().unwrap_or_default(),
            mcp_token: opts.mcp_token.clone().unwrap_or_default(),
            opts,
            stderr,
            stdout,
            http,
            dir,
        };
        server.port = server.wait_ready(&ready).await?;
        if server.opts.token.is_none() {
            let path = server.dir.path().join("domshell").join("token");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading the generated token {}", path.display()))?;
            server.token = text.trim().to_string();
        }
        if server.opts.mcp_token.is_none() {
            let path = server.dir.path().join("domshell").join("mcp-token");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading the generated MCP token {}", path.display()))?;
            server.mcp_token = text.trim().to_string();
        }
        Ok(server)
    }

    async fn wait_ready(&mut self, ready: &std::path::Path) -> anyhow::Result<u16> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(ready) {
                let doc: Value = serde_json::from_str(&text)
                    .with_context(|| format!("parsing the ready file {text:?}"))?;
                let port = doc["bridge_port"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok())
                    .with_context(|| format!("ready file without bridge_port: {text}"))?;
                return Ok(port);
            }
            if let Some(status) = self.child.try_wait().context("polling the server")? {
                // Give the capture thread a moment to collect the last words.
                tokio::time::sleep(Duration::from_millis(50)).await;
                bail!(
                    "the server exited ({status}) before it was ready; stderr:\n{}",
                    self.stderr_text()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "the server did not write its ready file within {READY_TIMEOUT:?}; stderr:\n{}",
                    self.stderr_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The bridge token (what the extension proves it knows).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The MCP bearer token (what HTTP MCP clients and the debug route present).
    pub fn mcp_token(&self) -> &str {
        &self.mcp_token
    }

    /// The relay key file this server reads (relays that attach to it need the same).
    pub fn relay_key_path(&self) -> PathBuf {
        self.opts
            .relay_key_file
            .clone()
            .unwrap_or_else(|| self.dir.path().join("domshell").join("relay-key"))
    }

    pub fn options(&self) -> &ServerOptions {
        &self.opts
    }

    /// `ws://127.0.0.1:<port>/bridge`
    pub fn bridge_url(&self) -> String {
        format!(
            "ws://127.0.0.1:{}{}",
            self.port,
            shared_protocol::BRIDGE_PATH
        )
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn bridge_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Everything the server wrote to stderr so far (its log), for assertion messages.
    pub fn stderr_text(&self) -> String {
        joined(&self.stderr)
    }

    /// Everything the server wrote to stdout so far.
    pub fn stdout_text(&self) -> String {
        joined(&self.stdout)
    }

    /// The last `n` stderr lines.
    pub fn stderr_tail(&self, n: usize) -> String {
        let lines = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// `GET /health`.
    pub async fn health(&self) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(self.http_url("/health"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .context("GET /health")?;
        let status = response.status();
        let body: Value = response.json().await.context("parsing /health")?;
        anyhow::ensure!(status.is_success(), "GET /health returned {status}: {body}");
        Ok(body)
    }

    /// Poll `/health` every 20 ms until `predicate` holds; returns the matching document.
    pub async fn wait_for_health(
        &self,
        predicate: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.health().await {
                Ok(doc) if predicate(&doc) => return Ok(doc),
                Ok(doc) => doc.to_string(),
                Err(e) => format!("error: {e:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "/health did not match within {timeout:?}; last: {last}\nserver stderr (tail):\n{}",
                    self.stderr_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until `/health` reports `link.state == state`.
    pub async fn wait_for_link_state(
        &self,
        state: &str,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        self.wait_for_health(|h| h["link"]["state"] == state, timeout)
            .await
    }

    /// `POST /debug/execute` with the server's MCP token. Returns the HTTP status and JSON
    /// body whatever the status (errors are part of what tests assert).
    pub async fn execute(
        &self,
        command: &str,
        timeout_ms: Option<u64>,
    ) -> anyhow::Result<(u16, Value)> {
        self.execute_as(&self.mcp_token, command, timeout_ms).await
    }

    /// [`Self::execute`] presenting `token` instead of the server's.
    pub async fn execute_as(
        &self,
        token: &str,
        command: &str,
        timeout_ms: Option<u64>,
    ) -> anyhow::Result<(u16, Value)> {
        let grace = self.opts.connect_grace_ms.unwrap_or(3_000);
        let budget = timeout_ms.unwrap_or(self.opts.command_timeout_ms.unwrap_or(45_000));
        let http_timeout = Duration::from_millis(grace + budget + 10_000);
        let response = self
            .http
            .post(self.http_url("/debug/execute"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "command": command, "timeout_ms": timeout_ms }))
            .timeout(http_timeout)
            .send()
            .await
            .with_context(|| format!("POST /debug/execute {command:?}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.context("reading /debug/execute")?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    }

    /// `POST /debug/execute` with the server's MCP token and a body of the caller's making
    /// (to pass `group_id`, `initial_url`, `session`, …). Returns the status and JSON body.
    pub async fn execute_body(&self, body: Value) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(self.http_url("/debug/execute"))
            .bearer_auth(&self.mcp_token)
            .json(&body)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .context("POST /debug/execute")?;
        let status = response.status().as_u16();
        let text = response.text().await.context("reading /debug/execute")?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait().context("polling the server")? {
            return Ok(status);
        }
        self.child.kill().context("killing the server")?;
        self.child.wait().context("reaping the server")
    }

    /// SIGTERM, wait up to 5 s for a graceful exit, then SIGKILL.
    pub async fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        self.terminate_within(Duration::from_secs(5)).await
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL.
    pub async fn terminate_within(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait().context("polling the server")? {
            return Ok(status);
        }
        let pid = libc::pid_t::try_from(self.child.id()).context("pid out of range")?;
        // SAFETY: plain kill(2) on our own child, which has not been reaped yet (try_wait
        // above returned None), so the pid cannot have been reused.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        anyhow::ensure!(
            rc == 0,
            "SIGTERM failed: {}",
            std::io::Error::last_os_error()
        );
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().context("polling the server")? {
                return Ok(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!("server ignored SIGTERM for {grace:?}; killing it");
        self.kill()
    }
}

impl std::fmt::Debug for ServerProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerProcess")
            .field("pid", &self.child.id())
            .field("port", &self.port)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
