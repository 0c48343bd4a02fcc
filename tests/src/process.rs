//! Server processes for the benchmarks and what is read about them: a guard that kills its child
//! when dropped and keeps the tail of its stderr, free loopback ports, resident memory and CPU
//! time from /proc, and the readiness probe that times "process start → serving".
//!
//! It must not wait on anything without a bound and must not leave a child running: the guard
//! SIGKILLs and reaps it on drop, whatever happened before.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::mcp_client::PROTOCOL_VERSION;

/// Lines of a child's stderr kept for error messages.
const STDERR_LINES: usize = 60;
/// How often the readiness probe retries while nothing listens yet. Short, because the
/// interval is the resolution of the start-up figure.
const PROBE_INTERVAL: Duration = Duration::from_millis(2);

type Tail = Arc<Mutex<VecDeque<String>>>;

/// A running child process; dropping it SIGKILLs and reaps it.
pub struct Child {
    child: std::process::Child,
    name: String,
    stderr: Tail,
}

impl Child {
    /// Spawn `cmd` with stderr captured (stdin/stdout as the caller set them).
    pub fn spawn(mut cmd: Command, name: &str) -> Result<Child> {
        cmd.stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("spawning {name}"))?;
        let stderr: Tail = Arc::default();
        if let Some(stream) = child.stderr.take() {
            let into = stderr.clone();
            // A thread, not a task: the pipe must be drained even while the runtime is busy
            // with load, or a chatty server would block on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let mut tail = into.lock().unwrap_or_else(|p| p.into_inner());
                    if tail.len() == STDERR_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            });
        }
        Ok(Child {
            child,
            name: name.to_string(),
            stderr,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdout and stdin as async pipes (for MCP over stdio).
    pub fn take_stdio(
        &mut self,
    ) -> Result<(tokio::process::ChildStdout, tokio::process::ChildStdin)> {
        let stdout = self.child.stdout.take().context("stdout was not piped")?;
        let stdin = self.child.stdin.take().context("stdin was not piped")?;
        Ok((
            tokio::process::ChildStdout::from_std(stdout).context("async stdout")?,
            tokio::process::ChildStdin::from_std(stdin).context("async stdin")?,
        ))
    }

    /// The exit status if the child has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines the child wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        let tail = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// An error naming the child, with its stderr tail (and exit status if it ended).
    pub fn failure(&mut self, what: &str) -> anyhow::Error {
        let status = self
            .exited()
            .map(|s| format!(" (it exited: {s})"))
            .unwrap_or_default();
        anyhow::anyhow!(
            "{}: {what}{status}; its stderr (tail):\n{}",
            self.name,
            self.stderr_tail()
        )
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now. The listener is closed before the server binds it, so
/// another program could take it in between; callers retry with a fresh port when the server
/// exits early.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).context("binding 127.0.0.1:0")?;
    Ok(listener
        .local_addr()
        .context("reading the bound port")?
        .port())
}

/// Two distinct free ports (held together while chosen, so they differ).
pub fn free_ports() -> Result<(u16, u16)> {
    let a = std::net::TcpListener::bind(("127.0.0.1", 0)).context("binding 127.0.0.1:0")?;
    let b = std::net::TcpListener::bind(("127.0.0.1", 0)).context("binding 127.0.0.1:0")?;
    Ok((
        a.local_addr().context("reading the bound port")?.port(),
        b.local_addr().context("reading the bound port")?.port(),
    ))
}

/// A `kB` field of /proc/<pid>/status (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// User + system CPU time the process has used so far (/proc/<pid>/stat, clock ticks).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state …": comm may hold spaces, so count fields after the last ')'. utime
    // and stime are fields 14 and 15 of the whole line, i.e. 12 and 13 after the comm.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    Some(Duration::from_nanos((utime + stime) * 1_000_000_000 / hz))
}

/// The raw `initialize` a readiness probe sends: the same protocol version as the benchmark's
/// MCP client, so "serving" means "ready for this client".
fn initialize_body() -> serde_json::Value {
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "domshell-bench-probe", "version": "0"}
        }
    })
}

/// One `initialize` POST; `Ok(session id)` when it was answered with an initialize result.
async fn probe_once(http: &reqwest::Client, url: &str, token: &str) -> Result<Option<String>> {
    let response = http
        .post(url)
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .json(&initialize_body())
        .timeout(Duration::from_secs(2))
        .send()
        .await?;
    let status = response.status();
    let session = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.text().await?;
    // The reply is JSON or one SSE event carrying JSON; either way it names the version.
    if !status.is_success() || !body.contains("\"protocolVersion\"") {
        bail!("initialize answered {status}: {body:.200}");
    }
    Ok(session)
}

/// Poll `url` with `initialize` until one is answered; returns the time since `started` (the
/// instant just before the spawn). The probe's session is deleted again. Fails when the child
/// exits first or `bound` passes.
pub async fn time_to_serving(
    child: &mut Child,
    http: &reqwest::Client,
    url: &str,
    token: &str,
    started: Instant,
    bound: Duration,
) -> Result<Duration> {
    loop {
        let last = match probe_once(http, url, token).await {
            Ok(session) => {
                let elapsed = started.elapsed();
                if let Some(session) = session {
                    // Both servers keep sessions until told otherwise; do not leave one behind.
                    let _ = http
                        .delete(url)
                        .bearer_auth(token)
                        .header("mcp-session-id", session)
                        .header("mcp-protocol-version", PROTOCOL_VERSION)
                        .timeout(Duration::from_secs(2))
                        .send()
                        .await;
                }
                return Ok(elapsed);
            }
            Err(e) => format!("{e:#}"),
        };
        if child.exited().is_some() {
            return Err(child.failure("exited before serving MCP"));
        }
        if started.elapsed() > bound {
            return Err(child.failure(&format!(
                "did not answer initialize on {url} within {bound:?} (last: {last})"
            )));
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

/// Resolves on SIGINT or SIGTERM, so a benchmark can drop its guards (stopping every process
/// it started) instead of dying with them running.
pub async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
