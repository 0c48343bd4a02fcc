//! Playwright MCP (`@playwright/mcp`), the tool agents most often pick instead of domshell, as
//! a point of comparison for the task benchmark: installed from npm at bench time into a temp
//! dir, started over stdio on the machine's Chromium (`--executable-path`, headless, an
//! in-memory profile), and driven through the same rmcp client as the other servers.
//!
//! It owns that install (removed with the temp dir) and the server process (killed when the
//! [`Server`] drops). It must not change Playwright MCP (no patching) and must not reach
//! anything but the npm registry, and 127.0.0.1 through the pages the benchmark serves.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use rmcp::ServiceExt;
use serde_json::Value;

use crate::mcp_client::{client_config, Client};
use crate::process::Child;

pub const PACKAGE: &str = "@playwright/mcp";
/// The release the figures are for; its `playwright` dependency is what npm resolves for it.
pub const VERSION: &str = "0.0.86";
/// Bound on the stdio session's `initialize` (Node starts, Playwright loads).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// An installed Playwright MCP.
pub struct Install {
    dir: PathBuf,
    node: PathBuf,
    _temp: tempfile::TempDir,
}

impl Install {
    /// `npm install @playwright/mcp@VERSION` into a fresh temp dir, without install scripts
    /// (no browser is downloaded: the machine's Chromium is used).
    pub async fn get() -> Result<Install> {
        let node = crate::npm::on_path("node")
            .context("node is not on PATH: Playwright MCP needs Node")?;
        let npm = crate::npm::on_path("npm")
            .context("npm is not on PATH: Playwright MCP is installed with npm")?;
        let temp = tempfile::Builder::new()
            .prefix("domshell-playwright-")
            .tempdir()
            .context("creating a temp dir for Playwright MCP")?;
        let dir = temp.path().to_path_buf();
        let took = crate::npm::install(&npm, &dir, &format!("{PACKAGE}@{VERSION}")).await?;
        eprintln!(
            "installed {PACKAGE}@{VERSION} in {:.1} s",
            took.as_secs_f64()
        );
        Ok(Install {
            dir,
            node,
            _temp: temp,
        })
    }

    /// The version of a package npm resolved in this install.
    pub fn version_of(&self, name: &str) -> Option<String> {
        let manifest = self
            .dir
            .join("node_modules")
            .join(name)
            .join("package.json");
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(manifest).ok()?).ok()?;
        doc["version"].as_str().map(str::to_string)
    }

    fn cli(&self) -> PathBuf {
        self.dir.join("node_modules").join(PACKAGE).join("cli.js")
    }
}

/// A running Playwright MCP and the MCP session on its stdio. Field order is drop order: the
/// session closes, then the process is killed (its browser goes with it).
pub struct Server {
    pub client: Client,
    _child: Child,
}

impl Server {
    /// Starts it on `chromium` (headless, in-memory profile, no sandbox as the browser tests
    /// run it) and opens the MCP session.
    pub async fn start(install: &Install, chromium: &Path) -> Result<Server> {
        let mut cmd = Command::new(&install.node);
        cmd.arg(install.cli())
            .args([
                "--headless",
                "--isolated",
                "--no-sandbox",
                "--browser",
                "chromium",
            ])
            .arg("--executable-path")
            .arg(chromium)
            .current_dir(&install.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        cmd.env_remove("NODE_OPTIONS");
        let mut child = Child::spawn(cmd, "Playwright MCP")?;
        let (stdout, stdin) = child.take_stdio()?;
        let client =
            match tokio::time::timeout(START_TIMEOUT, client_config().serve((stdout, stdin))).await
            {
                Ok(Ok(client)) => client,
                Ok(Err(e)) => return Err(child.failure(&format!("initialize over stdio: {e}"))),
                Err(_) => return Err(child.failure("initialize timed out")),
            };
        Ok(Server {
            client,
            _child: child,
        })
    }
}
