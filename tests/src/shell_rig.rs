//! The shell benchmarks' two sides: domshell (the release server and its built extension in
//! headless Chromium) and DOMShell 2.0.10 (its npm server and its own built extension), each
//! an MCP session over streamable HTTP driven through `domshell_execute`.
//!
//! It owns those processes (stopped when the [`Rig`] drops: session, browser, server). It must
//! not talk to anything but 127.0.0.1, and it judges no figure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rmcp::model::JsonObject;
use serde_json::json;

use crate::domshell_peer as peer;
use crate::mcp_client::{self, Client};
use crate::{
    eventually, strip_ansi, workspace_root, Chromium, ServerOptions, ServerProcess, TEST_TOKEN,
};

/// The server's budget for one command (a 50k-node page takes seconds to read).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on one tool call as the client sees it: above both servers' own budgets.
pub const CALL_BOUND: Duration = Duration::from_secs(180);
/// Bound on opening an MCP session.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The server behind a rig, kept so it lives as long as the rig.
pub enum ServerHandle {
    Ours { process: Box<ServerProcess> },
    Peer { _process: peer::Server },
}

/// One side of the comparison: an MCP session on a server whose extension runs in its own
/// Chromium. Field order is drop order: the session closes, then the browser, then the server.
pub struct Rig {
    pub name: &'static str,
    pub client: Client,
    /// DOMShell's server treats its extension as a legacy client and wants an explicit lane.
    pub group_id: Option<&'static str>,
    /// Its worker publishes `domshell.lastTreeRead`.
    pub reports_tree_reads: bool,
    pub chromium: Chromium,
    pub _server: ServerHandle,
}

impl Rig {
    pub async fn ours() -> Result<Rig> {
        // Production timings: the benchmark measures what users get.
        Rig::ours_pinging(20_000).await
    }

    /// Our rig with heartbeats every `ping_interval_ms`.
    pub async fn ours_pinging(ping_interval_ms: u64) -> Result<Rig> {
        let server = ServerProcess::start(ServerOptions {
            extra_args: vec![
                "--allow-write".into(),
                "--domains".into(),
                "127.0.0.1".into(),
            ],
            connect_grace_ms: Some(10_000),
            ping_interval_ms,
            silence_limit_ms: 60_000,
            command_timeout_ms: Some(COMMAND_TIMEOUT.as_millis() as u64),
            ..Default::default()
        })
        .await
        .context("starting the server (set DOMSHELL_BIN to the release binary)")?;
        let chromium = Chromium::launch_built_extension()
            .await
            .context("Chromium with the built extension (cargo xtask build-extension)")?;
        let settings = json!({
            "bridge_enabled": true,
            "bridge_token": TEST_TOKEN,
            "bridge_port": server.port(),
        });
        eventually(Duration::from_secs(10), Duration::from_millis(100), || {
            chromium.set_storage(settings.clone())
        })
        .await
        .context("storing the extension's settings")?;
        server
            .wait_for_link_state("connected", Duration::from_secs(10))
            .await
            .context("waiting for the extension to connect")?;
        let client = mcp_client::connect_http(
            &server.http_url("/mcp"),
            server.mcp_token(),
            true,
            "domshell",
            SESSION_TIMEOUT,
        )
        .await?;
        Ok(Rig {
            name: "domshell",
            client,
            group_id: None,
            reports_tree_reads: true,
            chromium,
            _server: ServerHandle::Ours {
                process: Box::new(server),
            },
        })
    }

    pub async fn peer(install: &peer::Install, extension: &Path, run_dir: &Path) -> Result<Rig> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("building the probe's HTTP client")?;
        // `--allow-write` is what `open` and `click` need there.
        let server = peer::start(install, run_dir, TEST_TOKEN, &["--allow-write"], &http).await?;
        let chromium = Chromium::launch(extension).await.with_context(|| {
            format!("Chromium with DOMShell's extension {}", extension.display())
        })?;
        chromium
            .wait_for_any_extension_worker(Duration::from_secs(20))
            .await
            .context("DOMShell's service worker")?;
        let settings = json!({
            "ws_enabled": true,
            "ws_token": TEST_TOKEN,
            "ws_port": server.ws_port,
        });
        // Right after the worker appears, `chrome` may not be defined in it yet.
        eventually(Duration::from_secs(15), Duration::from_millis(100), || {
            chromium.set_storage(settings.clone())
        })
        .await
        .context("storing DOMShell's settings")?;
        let browser = &chromium;
        eventually(
            Duration::from_secs(20),
            Duration::from_millis(100),
            || async move {
                let stored = browser.get_storage().await?;
                anyhow::ensure!(
                    stored["ws_status"] == "connected",
                    "ws_status {}",
                    stored["ws_status"]
                );
                Ok(())
            },
        )
        .await
        .context("waiting for DOMShell's extension to connect to its server")?;
        let client = mcp_client::connect_http(
            &server.mcp_url(),
            TEST_TOKEN,
            true,
            "DOMShell 2.0.10",
            SESSION_TIMEOUT,
        )
        .await?;
        Ok(Rig {
            name: "DOMShell 2.0.10",
            client,
            group_id: Some("shared"),
            reports_tree_reads: false,
            chromium,
            _server: ServerHandle::Peer { _process: server },
        })
    }

    /// Runs a command through `domshell_execute`; returns its text and how long it took.
    pub async fn run(&self, command: &str) -> Result<(String, Duration)> {
        let mut arguments = JsonObject::new();
        arguments.insert("command".into(), command.into());
        if let Some(group) = self.group_id {
            arguments.insert("group_id".into(), group.into());
        }
        let started = Instant::now();
        let result = mcp_client::execute(&self.client, arguments, CALL_BOUND)
            .await
            .with_context(|| format!("{}: `{command}`", self.name))?;
        let took = started.elapsed();
        let text = strip_ansi(&mcp_client::text_of(&result));
        if result.is_error == Some(true) {
            bail!("{}: `{command}` failed: {text:.400}", self.name);
        }
        Ok((text, took))
    }
}

/// Where DOMShell's built extension is looked for when none is given, relative to the
/// workspace.
pub const PEER_EXTENSION_SIBLING: &str = "../shared/peers/domshell/extension";

/// The DOMShell options both shell benchmarks take: `--peer-extension DIR`, `--peer-dir
/// NPM_PREFIX` (an install to reuse) and `--no-peer`.
#[derive(Default)]
pub struct PeerArgs {
    extension: Option<PathBuf>,
    /// An npm prefix holding DOMShell already (skips the install).
    pub dir: Option<PathBuf>,
    no_peer: bool,
}

impl PeerArgs {
    /// Takes `arg` (and its value from `rest`) when it is one of these options.
    pub fn take(&mut self, arg: &str, rest: &mut impl Iterator<Item = String>) -> Result<bool> {
        match arg {
            "--peer-extension" => {
                let dir = rest.next().context("--peer-extension needs a directory")?;
                self.extension = Some(PathBuf::from(dir));
            }
            "--peer-dir" => {
                let dir = rest.next().context("--peer-dir needs a directory")?;
                self.dir = Some(PathBuf::from(dir));
            }
            "--no-peer" => self.no_peer = true,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The extension to run, else where one was looked for ([`peer_extension`]).
    pub fn extension(&self) -> Result<(Option<PathBuf>, Option<String>)> {
        peer_extension(self.extension.clone(), self.no_peer)
    }
}

/// DOMShell's built extension to run: the one given (it must hold a manifest), else the
/// sibling checkout's, else none, with where it was looked for; none at all with `no_peer`.
pub fn peer_extension(
    given: Option<PathBuf>,
    no_peer: bool,
) -> Result<(Option<PathBuf>, Option<String>)> {
    if no_peer {
        return Ok((None, None));
    }
    if let Some(dir) = given {
        anyhow::ensure!(
            dir.join("manifest.json").is_file(),
            "--peer-extension {}: no manifest.json there",
            dir.display()
        );
        return Ok((Some(dir), None));
    }
    let sibling = workspace_root().join(PEER_EXTENSION_SIBLING);
    if sibling.join("manifest.json").is_file() {
        Ok((Some(sibling), None))
    } else {
        Ok((None, Some(PEER_EXTENSION_SIBLING.to_string())))
    }
}

/// The main landmark's directory in an `ls` of the tab root: `main` here, `main_<AX id>` in
/// DOMShell (it names unnamed containers by node id).
pub fn main_dir(listing: &str) -> Result<String> {
    listing
        .lines()
        .map(|l| l.trim().trim_start_matches("[d]").trim())
        .find(|name| name.starts_with("main") && name.ends_with('/'))
        .map(|name| name.trim_end_matches('/').to_string())
        .with_context(|| format!("no main landmark in the listing {listing:.300}"))
}

/// The path of the first `find` result line with `marker` (`[x]` interactive, `[d]`
/// directories): `[x] main/add_a_row_btn (button) …` → `main/add_a_row_btn`.
pub fn first_path(found: &str, marker: &str) -> Result<String> {
    found
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(marker))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(|p| p.trim_end_matches('/').to_string())
        .with_context(|| format!("no {marker} result in {found:.300}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_of_both_shells_are_parsed() {
        assert_eq!(main_dir("[d] main/\n[x] skip_link").unwrap(), "main");
        assert_eq!(main_dir("  banner/\n  main_13/\n").unwrap(), "main_13");
        assert!(main_dir("(empty directory)").is_err());
        assert_eq!(
            first_path("[x] main_13/add_a_row_btn (button)  \"Add a row\"", "[x]").unwrap(),
            "main_13/add_a_row_btn"
        );
        assert_eq!(
            first_path("[d] main/models/ (table)", "[d]").unwrap(),
            "main/models"
        );
        assert!(first_path("No matches for 'x'", "[x]").is_err());
    }
}
