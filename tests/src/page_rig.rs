//! A real server, headless Chromium with the built extension, and fixture pages from
//! `tests/fixtures/pages/` served on loopback: what every page-level end-to-end test starts.
//!
//! Pages are served on three origins: `base` (127.0.0.1), `other` (localhost on another
//! port, so cross-site and out of process) and `third` (127.0.0.2, a site of its own, for
//! frames nested in `other`'s). `CROSS_ORIGIN` in a page from `base` is replaced by `other`;
//! `THIRD_ORIGIN` in any page by `third`.
//! Everything is stopped when the [`PageRig`] is dropped (the fixture servers end with the
//! test's runtime). It must not talk to anything but loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;

use crate::{eventually, CdpClient, Chromium, ServerOptions, ServerProcess, TEST_TOKEN};

/// A command's budget on the debug route unless a test says otherwise.
const COMMAND_BUDGET_MS: u64 = 20_000;

/// Where fixture pages live.
pub fn pages_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/pages")
}

/// Serves `tests/fixtures/pages/<name>` (query strings ignored; `CROSS_ORIGIN` in a page
/// replaced by `cross_origin`) and answers 404 otherwise. Every connection is answered and
/// closed; the task ends with the test's runtime.
pub async fn fixture_server(cross_origin: String) -> SocketAddr {
    fixture_server_on("127.0.0.1", vec![("CROSS_ORIGIN", cross_origin)]).await
}

/// [`fixture_server`] on loopback address `ip`, each placeholder of `replace` replaced by
/// its text in every page served.
pub async fn fixture_server_on(ip: &str, replace: Vec<(&'static str, String)>) -> SocketAddr {
    crate::html_server::serve(ip, move |target| {
        let name = target
            .split('?')
            .next()
            .unwrap_or("")
            .trim_start_matches('/');
        (!name.contains("..") && !name.is_empty())
            .then(|| std::fs::read_to_string(pages_dir().join(name)).ok())
            .flatten()
            .map(|page| {
                replace
                    .iter()
                    .fold(page, |page, (from, to)| page.replace(from, to))
                    .into_bytes()
            })
    })
    .await
    .expect("a loopback port for fixture pages")
}

/// The server, the browser and the two fixture origins.
pub struct PageRig {
    pub server: ServerProcess,
    pub chromium: Chromium,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// `http://localhost:<port>`: another site.
    pub other: String,
    /// `http://127.0.0.2:<port>`: a third site.
    pub third: String,
}

impl PageRig {
    pub async fn start() -> PageRig {
        PageRig::start_with(ServerOptions::default().silence_limit_ms).await
    }

    /// `silence_limit_ms`: mapping a very large tree keeps the worker busy for a while; the
    /// server's default limit is a minute.
    pub async fn start_with(silence_limit_ms: u64) -> PageRig {
        PageRig::start_with_args(silence_limit_ms, &[]).await
    }

    /// [`PageRig::start_with`] with more server arguments (`--transport http` for tests that
    /// drive it through MCP clients).
    pub async fn start_with_args(silence_limit_ms: u64, extra: &[&str]) -> PageRig {
        PageRig::start_configured(silence_limit_ms, &["--allow-all"], extra, true).await
    }

    /// [`PageRig::start_with_args`] with these tiers (`--allow-write` …) instead of all.
    pub async fn start_with_rails(rails: &[&str], extra: &[&str]) -> PageRig {
        PageRig::start_configured(5_000, rails, extra, true).await
    }

    /// [`PageRig::start_with_args`] without the domain allowlist (`--domains`), for what the
    /// server refuses under one (`script run`, whose targets it cannot see).
    pub async fn start_without_allowlist(silence_limit_ms: u64, extra: &[&str]) -> PageRig {
        PageRig::start_configured(silence_limit_ms, &["--allow-all"], extra, false).await
    }

    async fn start_configured(
        silence_limit_ms: u64,
        rails: &[&str],
        extra: &[&str],
        allowlist: bool,
    ) -> PageRig {
        let mut extra_args: Vec<String> = rails.iter().map(|r| r.to_string()).collect();
        if allowlist {
            extra_args.extend(["--domains".into(), "127.0.0.1".into()]);
        }
        extra_args.extend(extra.iter().map(|s| s.to_string()));
        let server = ServerProcess::start(ServerOptions {
            extra_args,
            connect_grace_ms: Some(10_000),
            silence_limit_ms,
            ..Default::default()
        })
        .await
        .expect("the server starts");
        let chromium = Chromium::launch_built_extension().await.expect(
            "Chromium with the built extension (apt-get install -y chromium; cargo xtask dist)",
        );
        let settings = json!({
            "bridge_enabled": true,
            "bridge_token": TEST_TOKEN,
            "bridge_port": server.port(),
            "bridge_alarm_period_ms": 1_000,
        });
        eventually(Duration::from_secs(10), Duration::from_millis(100), || {
            chromium.set_storage(settings.clone())
        })
        .await
        .expect("extension settings stored");
        server
            .wait_for_link_state("connected", Duration::from_secs(10))
            .await
            .expect("the extension connects");
        let nested = fixture_server_on("127.0.0.2", vec![("CROSS_ORIGIN", String::new())]).await;
        let third = format!("http://127.0.0.2:{}", nested.port());
        let frames = fixture_server_on(
            "127.0.0.1",
            vec![
                ("CROSS_ORIGIN", String::new()),
                ("THIRD_ORIGIN", third.clone()),
            ],
        )
        .await;
        let other = format!("http://localhost:{}", frames.port());
        let pages = fixture_server_on(
            "127.0.0.1",
            vec![
                ("CROSS_ORIGIN", other.clone()),
                ("THIRD_ORIGIN", third.clone()),
            ],
        )
        .await;
        PageRig {
            server,
            chromium,
            base: format!("http://127.0.0.1:{}", pages.port()),
            other,
            third,
        }
    }

    /// Runs a command in the debug route's default session; returns (ok, output) and prints
    /// it for the record.
    pub async fn run(&self, command: &str) -> (bool, String) {
        let (ok, output, _) = self.run_timed(command, COMMAND_BUDGET_MS).await;
        (ok, output)
    }

    /// [`PageRig::run`] with the call's budget given, also saying how long it took.
    pub async fn run_timed(&self, command: &str, budget_ms: u64) -> (bool, String, Duration) {
        let started = std::time::Instant::now();
        let (status, body) = self
            .server
            .execute(command, Some(budget_ms))
            .await
            .expect("the debug route answers");
        let took = started.elapsed();
        assert_eq!(status, 200, "{command}: {body}");
        let ok = body["ok"].as_bool().unwrap_or(false);
        let output = body["output"].as_str().unwrap_or_default().to_string();
        eprintln!(
            "$ {command}  [{:.0} ms, ok={ok}, {} chars]\n{}\n",
            took.as_secs_f64() * 1000.0,
            output.chars().count(),
            output.chars().take(600).collect::<String>()
        );
        (ok, output, took)
    }

    /// Runs a command that must succeed.
    pub async fn ok(&self, command: &str) -> String {
        let (ok, out) = self.run(command).await;
        assert!(ok, "`{command}` failed: {out}");
        out
    }

    /// Runs a command that must fail.
    pub async fn err(&self, command: &str) -> String {
        let (ok, out) = self.run(command).await;
        assert!(!ok, "`{command}` should fail: {out}");
        out
    }

    /// Opens `page` (a fixture name) from `base` and enters it; returns the tab id.
    pub async fn open_fixture(&self, page: &str) -> i64 {
        let opened = self.ok(&format!("open {}/{page}", self.base)).await;
        tab_id_from(&opened)
    }

    /// Evaluates `expression` in the page whose URL ends with `url_suffix`, through the
    /// test's own CDP connection (not the extension's).
    pub async fn page_value(&self, url_suffix: &str, expression: &str) -> serde_json::Value {
        let target = self
            .chromium
            .targets()
            .await
            .expect("Chromium lists its targets")
            .into_iter()
            .find(|t| t.kind == "page" && t.url.ends_with(url_suffix))
            .unwrap_or_else(|| panic!("no page target at {url_suffix}"));
        let mut page = CdpClient::connect(&target.ws_url)
            .await
            .expect("a CDP connection to the page");
        let reply = page
            .send(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await
            .expect("the page evaluates the expression");
        reply["result"]["value"].clone()
    }
}

/// The path in the first line of a `find` answer (`[x] main/count_btn (button)` →
/// `main/count_btn`), without a directory's trailing `/`.
pub fn first_path(found: &str) -> String {
    found
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("no result in {found:?}"))
        .trim_end_matches('/')
        .to_string()
}

/// The tab id in `open`'s reply (`✓ Opened new tab 123`).
pub fn tab_id_from(opened: &str) -> i64 {
    opened
        .lines()
        .find_map(|l| l.trim().strip_prefix("✓ Opened new tab "))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("no tab id in {opened:?}"))
}
