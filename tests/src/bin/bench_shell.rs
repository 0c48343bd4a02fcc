//! `cargo xtask bench-shell [--trials N] [--peer-extension DIR | --no-peer] [--peer-dir DIR]`:
//! how long shell commands take end to end, measured with the release server and real headless
//! Chromium running the built extension, next to DOMShell 2.0.10 (its npm server and its own
//! built extension) driven the same way in the same run.
//!
//! Pages of about 1k, 10k and 50k DOM nodes are generated here and served on 127.0.0.1. Every
//! command is a `tools/call domshell_execute` from an rmcp client over streamable HTTP, so each
//! figure is the whole path an MCP host sees: HTTP → server → WebSocket → extension → CDP →
//! Chromium and back. Per page and trial it times entering the tab (`open`: attach and read the
//! tree), `ls`, `find --type link`, `text` of the main landmark, and `click` on a button that
//! adds a row followed by the next `ls` (which re-reads the changed page). For domshell it also
//! reads the worker's own account of each tree read (`domshell.lastTreeRead`: CDP, decoding,
//! mapping in WebAssembly) and prints the size of the extension's WASM, raw and gzipped.
//!
//! DOMShell runs when its built extension is found (`--peer-extension`, else a sibling
//! checkout's `shared/peers/domshell/extension`); its server is installed from npm into a temp
//! dir. The two browsers run one after the other, never at once, so neither slows the other.
//! It prints median/min/max and the ratios; it asserts nothing about speed and fails only when
//! domshell breaks. A DOMShell command that fails is counted and shown, not fatal: that is a
//! finding. It must not talk to anything but 127.0.0.1 (the npm install aside), and every
//! process it starts stops with it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use domshell_tests::domshell_peer as peer;
use domshell_tests::mcp_client::{self, Client};
use domshell_tests::{
    eventually, strip_ansi, workspace_root, Chromium, ServerOptions, ServerProcess, TEST_TOKEN,
};
use rmcp::model::JsonObject;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const DEFAULT_TRIALS: usize = 5;
/// Target sizes in DOM nodes (elements and text nodes).
const PAGE_SIZES: [usize; 3] = [1_000, 10_000, 50_000];
/// DOM nodes per list item: `li`, `a`, its text, a space, `button`, its text.
const NODES_PER_ITEM: usize = 6;
/// The server's budget for one command (a 50k-node page takes seconds to read).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on one tool call as the client sees it: above both servers' own budgets.
const CALL_BOUND: Duration = Duration::from_secs(180);
/// Bound on opening an MCP session.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Where DOMShell's built extension is looked for when no `--peer-extension` is given,
/// relative to the workspace.
const PEER_EXTENSION_SIBLING: &str = "../shared/peers/domshell/extension";

/// A page of `items` list items (a link and a button each) under a heading, and one button
/// that appends a row so a click changes the tree. Returns the HTML and its DOM node count.
fn generate_page(target_nodes: usize) -> (String, usize) {
    let items = target_nodes / NODES_PER_ITEM;
    let mut html = String::with_capacity(items * 80 + 1024);
    html.push_str(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Bench</title></head><body><main><h1>Catalogue</h1><button id=\"add\" onclick=\"const li = document.createElement('li'); li.textContent = 'Added row'; document.getElementById('items').append(li);\">Add a row</button><ul id=\"items\" aria-label=\"Items\">",
    );
    for i in 1..=items {
        html.push_str(&format!(
            "<li><a href=\"/item/{i}\">Item {i}</a> <button>Add {i}</button></li>"
        ));
    }
    html.push_str("</ul></main></body></html>\n");
    // html, head, meta, title + text, body, main, h1 + text, button + text, ul, the items.
    let nodes = 12 + items * NODES_PER_ITEM;
    (html, nodes)
}

/// Serves each generated page at `/page-<i>.html`; anything else is a 404.
async fn serve_pages(pages: Arc<Vec<String>>) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the page server on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let pages = pages.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut len = 0;
                while len < buf.len() {
                    match socket.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let request = String::from_utf8_lossy(&buf[..len]);
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let page = path
                    .strip_prefix("/page-")
                    .and_then(|rest| rest.strip_suffix(".html"))
                    .and_then(|i| i.parse::<usize>().ok())
                    .and_then(|i| pages.get(i));
                let response = match page {
                    Some(body) => {
                        let mut head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        head.extend_from_slice(body.as_bytes());
                        head
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Ok(addr)
}

/// The server behind a rig, kept so it lives as long as the rig.
enum ServerHandle {
    Ours { process: Box<ServerProcess> },
    Peer { _process: peer::Server },
}

/// One side of the comparison: an MCP session on a server whose extension runs in its own
/// Chromium. Field order is drop order: the session closes, then the browser, then the server.
struct Rig {
    name: &'static str,
    client: Client,
    /// DOMShell's server treats its extension as a legacy client and wants an explicit lane.
    group_id: Option<&'static str>,
    /// Its worker publishes `domshell.lastTreeRead`.
    reports_tree_reads: bool,
    chromium: Chromium,
    _server: ServerHandle,
}

impl Rig {
    async fn ours() -> Result<Rig> {
        // Production timings: the benchmark measures what users get.
        Rig::ours_pinging(20_000).await
    }

    /// Our rig with heartbeats every `ping_interval_ms`.
    async fn ours_pinging(ping_interval_ms: u64) -> Result<Rig> {
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

    async fn peer(install: &peer::Install, extension: &Path, run_dir: &Path) -> Result<Rig> {
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
    async fn run(&self, command: &str) -> Result<(String, Duration)> {
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

    /// The worker's account of its last tree read (domshell's worker publishes one).
    async fn last_tree_read(&self) -> Option<TreeRead> {
        if !self.reports_tree_reads {
            return None;
        }
        let value = self
            .chromium
            .evaluate_in_worker("globalThis.domshell && globalThis.domshell.lastTreeRead")
            .await
            .ok()?;
        serde_json::from_value(value).ok()
    }
}

/// `domshell.lastTreeRead` as the worker publishes it.
#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct TreeRead {
    partial: bool,
    /// Read a directory at a time (`getRootAXNode`/`getChildAXNodes`).
    #[serde(default)]
    lazy: bool,
    /// DevTools calls that returned nodes.
    #[serde(default)]
    calls: usize,
    ax_nodes: usize,
    bytes: usize,
    fetch_ms: f64,
    decode_ms: f64,
    map_ms: f64,
}

/// What one trial measures, in the order it runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Enter,
    Ls,
    EnterAndList,
    FindLinks,
    TextMain,
    Click,
    LsAfterClick,
}

const STEPS: [(Step, &str); 7] = [
    (Step::Enter, "`open <url>` (attach + tree)"),
    (Step::Ls, "`ls`"),
    (
        Step::EnterAndList,
        "enter the tab and list its root (`open` + `ls`)",
    ),
    (Step::FindLinks, "`find --type link`"),
    (Step::TextMain, "`text` of the main landmark"),
    (Step::Click, "`click` on a button that adds a row"),
    (
        Step::LsAfterClick,
        "the next `ls` (re-reads the changed page)",
    ),
];

/// One rig's figures on one page.
#[derive(Default)]
struct Samples {
    steps: Vec<(Step, Duration)>,
    failures: Vec<String>,
    ax_nodes: Option<usize>,
    reads_on_enter: Vec<TreeRead>,
    reads_whole: Vec<TreeRead>,
    reads_after_click: Vec<TreeRead>,
}

impl Samples {
    fn of(&self, step: Step) -> Vec<Duration> {
        let mut v: Vec<Duration> = self
            .steps
            .iter()
            .filter(|(s, _)| *s == step)
            .map(|(_, d)| *d)
            .collect();
        v.sort();
        v
    }
}

fn ax_nodes_from(entered: &str) -> Option<usize> {
    entered
        .lines()
        .find_map(|l| l.trim().strip_prefix("AX Nodes: "))
        .and_then(|n| n.trim().parse().ok())
}

/// The main landmark's directory in an `ls` of the tab root: `main` here, `main_<AX id>` in
/// DOMShell (it names unnamed containers by node id).
fn main_dir(listing: &str) -> Result<String> {
    listing
        .lines()
        .map(|l| l.trim().trim_start_matches("[d]").trim())
        .find(|name| name.starts_with("main") && name.ends_with('/'))
        .map(|name| name.trim_end_matches('/').to_string())
        .with_context(|| format!("no main landmark in the listing {listing:.300}"))
}

/// The path of the first `find` result line (`[x] main/add_a_row_btn (button) …`).
fn first_path(found: &str) -> Result<String> {
    found
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("[x]"))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(|p| p.trim_end_matches('/').to_string())
        .with_context(|| format!("no result in {found:.300}"))
}

async fn trial(rig: &Rig, url: &str, samples: &mut Samples) -> Result<()> {
    let mut timed = Vec::new();
    let (opened, took) = rig.run(&format!("open {url}")).await?;
    timed.push((Step::Enter, took));
    samples.ax_nodes = ax_nodes_from(&opened).or(samples.ax_nodes);
    let read_on_enter = rig.last_tree_read().await;
    let mut read_whole = None;
    let result = async {
        let (listing, took) = rig.run("ls").await?;
        timed.push((Step::Ls, took));
        let entered = timed[0].1 + took;
        timed.push((Step::EnterAndList, entered));
        let main = main_dir(&listing)?;
        let (links, took) = rig.run("find --type link").await?;
        read_whole = rig.last_tree_read().await;
        anyhow::ensure!(
            links.to_lowercase().contains("item_1_link"),
            "`find --type link` did not list item 1: {links:.300}"
        );
        timed.push((Step::FindLinks, took));
        let (text, took) = rig.run(&format!("text {main}")).await?;
        anyhow::ensure!(
            text.contains("Item 1"),
            "`text {main}` does not hold the list: {text:.300}"
        );
        timed.push((Step::TextMain, took));
        let (found, _) = rig.run("find add_a_row --type button").await?;
        let button = first_path(&found)?;
        let (_, took) = rig.run(&format!("click {button}")).await?;
        timed.push((Step::Click, took));
        let (_, took) = rig.run("ls").await?;
        timed.push((Step::LsAfterClick, took));
        Ok::<_, anyhow::Error>(())
    }
    .await;
    // The tab is closed whatever happened, so the next trial starts from the same state.
    let closed = rig.run("close").await;
    result?;
    closed?;
    // Only whole trials count: a partial one would skew the medians towards the fast steps.
    samples.steps.extend(timed);
    if let Some(read) = read_on_enter {
        samples.reads_on_enter.push(read);
    }
    if let Some(read) = read_whole {
        samples.reads_whole.push(read);
    }
    // `close` reads no tree: the last read is still the one after the click.
    if let Some(read) = rig.last_tree_read().await {
        samples.reads_after_click.push(read);
    }
    Ok(())
}

/// All trials of every page on one rig. domshell failing is an error; DOMShell failing is
/// recorded.
async fn bench_rig(rig: &Rig, urls: &[String], trials: usize, fatal: bool) -> Result<Vec<Samples>> {
    let mut all = Vec::new();
    for url in urls {
        let mut samples = Samples::default();
        for t in 0..trials {
            eprintln!(
                "bench-shell: {} on {url}, trial {}/{trials}…",
                rig.name,
                t + 1
            );
            match trial(rig, url, &mut samples).await {
                Ok(()) => {}
                Err(e) if !fatal => {
                    eprintln!("bench-shell: {} failed: {e:#}", rig.name);
                    samples.failures.push(format!("{e:#}"));
                }
                Err(e) => return Err(e),
            }
        }
        all.push(samples);
    }
    Ok(all)
}

/// Heartbeat interval while the PONG delay is measured.
const PONG_PING_MS: u64 = 200;

/// How long PONGs wait while the worker reads the whole page at `url` (`find` on the root):
/// the server's last heartbeat round trip, sampled every 50 ms during the command. Returns
/// the samples (ms, sorted) and how long `find` took.
async fn pong_delay(url: &str) -> Result<(Vec<u64>, Duration)> {
    let rig = Rig::ours_pinging(PONG_PING_MS).await?;
    let ServerHandle::Ours { process } = &rig._server else {
        bail!("the PONG delay is measured on domshell only");
    };
    rig.run(&format!("open {url}")).await?;
    let find = rig.run("find --type link");
    tokio::pin!(find);
    let mut rtts = Vec::new();
    let took = loop {
        tokio::select! {
            done = &mut find => break done?.1,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                if let Some(rtt) = process.health().await.ok().and_then(|h| h["link"]["last_rtt_ms"].as_u64()) {
                    rtts.push(rtt);
                }
            }
        }
    };
    rig.run("close").await?;
    rtts.sort_unstable();
    Ok((rtts, took))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(sorted: &[Duration]) -> Option<Duration> {
    sorted.get(sorted.len() / 2).copied()
}

/// The 95th percentile of sorted samples (nearest rank).
fn p95(sorted: &[Duration]) -> Option<Duration> {
    let rank = (sorted.len() * 95).div_ceil(100);
    sorted.get(rank.saturating_sub(1)).copied()
}

/// `median (min–max)`, or why there is nothing.
fn cell(sorted: &[Duration]) -> String {
    match (median(sorted), sorted.first(), sorted.last()) {
        (Some(m), Some(lo), Some(hi)) if sorted.len() > 1 => {
            format!("{} ({}–{})", fmt_ms(m), fmt_ms(*lo), fmt_ms(*hi))
        }
        (Some(m), _, _) => fmt_ms(m),
        _ => "—".into(),
    }
}

fn fmt_ms(d: Duration) -> String {
    let v = ms(d);
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn ratio(ours: &[Duration], theirs: &[Duration]) -> String {
    match (median(ours), median(theirs)) {
        (Some(a), Some(b)) if !b.is_zero() => {
            let r = ms(a) / ms(b);
            if r >= 0.1 {
                format!("{r:.2}×")
            } else {
                format!("{r:.3}×")
            }
        }
        _ => "—".into(),
    }
}

fn median_f64(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn describe_reads(what: &str, reads: &[TreeRead]) {
    if reads.is_empty() {
        return;
    }
    let how = if reads.iter().all(|r| r.lazy) {
        "read by parts (getRootAXNode + getChildAXNodes)"
    } else if reads.iter().all(|r| r.partial) {
        "re-read in part"
    } else if reads.iter().any(|r| r.partial) {
        "read whole or in part"
    } else {
        "read whole"
    };
    println!(
        "  domshell tree {how} {what} (median of {}): CDP {:.0} ms, decode {:.0} ms, mapping in WASM {:.1} ms; {} AX nodes in {} call(s), {:.2} MB of JSON",
        reads.len(),
        median_f64(reads.iter().map(|r| r.fetch_ms).collect()),
        median_f64(reads.iter().map(|r| r.decode_ms).collect()),
        median_f64(reads.iter().map(|r| r.map_ms).collect()),
        reads[0].ax_nodes,
        reads[0].calls,
        reads[0].bytes as f64 / 1e6,
    );
}

/// One table per page: each step for both, and the ratio of the medians.
fn print_page(title: &str, ours: &Samples, theirs: Option<&Samples>) {
    println!();
    println!("{title}");
    println!();
    match theirs {
        Some(_) => {
            println!("| command | domshell | DOMShell 2.0.10 | domshell ÷ DOMShell |");
            println!("| --- | ---: | ---: | ---: |");
        }
        None => {
            println!("| command | domshell |");
            println!("| --- | ---: |");
        }
    }
    for (step, label) in STEPS {
        let a = ours.of(step);
        match theirs {
            Some(t) => {
                let b = t.of(step);
                println!(
                    "| {label} | {} | {} | {} |",
                    cell(&a),
                    cell(&b),
                    ratio(&a, &b)
                );
            }
            None => println!("| {label} | {} |", cell(&a)),
        }
    }
    describe_reads("on `open`", &ours.reads_on_enter);
    describe_reads("for `find` (the whole page)", &ours.reads_whole);
    let clicks = ours.of(Step::Click);
    let their_clicks = theirs.map(|t| t.of(Step::Click)).unwrap_or_default();
    println!(
        "  `click` median / p95: domshell {} / {}; DOMShell {} / {}",
        median(&clicks).map_or("—".into(), fmt_ms),
        p95(&clicks).map_or("—".into(), fmt_ms),
        median(&their_clicks).map_or("—".into(), fmt_ms),
        p95(&their_clicks).map_or("—".into(), fmt_ms),
    );
    describe_reads("after the click", &ours.reads_after_click);
    if let Some(t) = theirs {
        if let Some(n) = t.ax_nodes {
            println!("  DOMShell counted {n} AX nodes on this page.");
        }
        if !t.failures.is_empty() {
            println!(
                "  DOMShell failed {} trial(s); first failure: {}",
                t.failures.len(),
                t.failures[0]
            );
        }
    }
}

fn print_wasm_size() -> Result<()> {
    let path = workspace_root().join("extension/pkg/domshell_extension_bg.wasm");
    let raw = std::fs::read(&path).with_context(|| {
        format!(
            "reading {} (run `cargo xtask build-extension`)",
            path.display()
        )
    })?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&raw)?;
    let gzipped = gz.finish()?;
    println!(
        "extension WASM: {:.0} KiB raw, {:.0} KiB gzipped (level 9)",
        raw.len() as f64 / 1024.0,
        gzipped.len() as f64 / 1024.0
    );
    Ok(())
}

struct Options {
    trials: usize,
    /// DOMShell's built extension, when it is to run.
    peer_extension: Option<PathBuf>,
    /// An npm prefix holding DOMShell already (skips the install).
    peer_dir: Option<PathBuf>,
    /// Where the extension was looked for when none was found (for the message).
    peer_missing: Option<String>,
}

const USAGE: &str =
    "usage: bench-shell [--trials N] [--peer-extension DIR | --no-peer] [--peer-dir NPM_PREFIX]";

fn parse_args() -> Result<Options> {
    let mut trials = DEFAULT_TRIALS;
    let mut peer_extension = None;
    let mut peer_dir = None;
    let mut no_peer = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--trials" => {
                let n = args.next().context("--trials needs a number")?;
                trials = n
                    .parse()
                    .with_context(|| format!("--trials {n}: not a number"))?;
                anyhow::ensure!(trials > 0, "--trials must be at least 1");
            }
            "--peer-extension" => {
                peer_extension = Some(PathBuf::from(
                    args.next().context("--peer-extension needs a directory")?,
                ))
            }
            "--peer-dir" => {
                peer_dir = Some(PathBuf::from(
                    args.next().context("--peer-dir needs a directory")?,
                ))
            }
            "--no-peer" => no_peer = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    let mut peer_missing = None;
    if no_peer {
        peer_extension = None;
    } else if let Some(dir) = &peer_extension {
        anyhow::ensure!(
            dir.join("manifest.json").is_file(),
            "--peer-extension {}: no manifest.json there",
            dir.display()
        );
    } else {
        let sibling = workspace_root().join(PEER_EXTENSION_SIBLING);
        if sibling.join("manifest.json").is_file() {
            peer_extension = Some(sibling);
        } else {
            peer_missing = Some(PEER_EXTENSION_SIBLING.to_string());
        }
    }
    Ok(Options {
        trials,
        peer_extension,
        peer_dir,
        peer_missing,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    // On Ctrl-C the benchmark future is dropped, so every guard still stops its process.
    tokio::select! {
        result = bench() => result,
        _ = domshell_tests::process::interrupted() => bail!("interrupted; every process started was stopped"),
    }
}

async fn bench() -> Result<()> {
    let opts = parse_args()?;
    let generated: Vec<(String, usize)> = PAGE_SIZES.iter().map(|&n| generate_page(n)).collect();
    let pages = Arc::new(generated.iter().map(|(html, _)| html.clone()).collect());
    let addr = serve_pages(pages).await?;
    let urls: Vec<String> = (0..generated.len())
        .map(|i| format!("http://{addr}/page-{i}.html"))
        .collect();
    // Installed before anything is measured, so a failing npm costs no browser time.
    let install = match &opts.peer_extension {
        Some(_) => Some(peer::Install::get(opts.peer_dir.clone()).await?),
        None => None,
    };

    let ours = {
        let rig = Rig::ours().await?;
        bench_rig(&rig, &urls, opts.trials, true).await?
    };
    let biggest = urls.last().context("no generated page")?;
    eprintln!("bench-shell: PONG delay while reading {biggest} whole…");
    let pong = pong_delay(biggest).await?;
    let theirs = match (&opts.peer_extension, &install) {
        (Some(extension), Some(install)) => {
            let run_dir = tempfile::Builder::new()
                .prefix("domshell-bench-shell-")
                .tempdir()
                .context("creating a temp dir for DOMShell's audit log")?;
            let rig = Rig::peer(install, extension, run_dir.path()).await?;
            Some(bench_rig(&rig, &urls, opts.trials, false).await?)
        }
        _ => None,
    };

    println!();
    println!(
        "bench-shell: {} trial(s) per page; release server; headless Chromium; every command a tools/call over streamable HTTP (rmcp, protocol {})",
        opts.trials,
        mcp_client::PROTOCOL_VERSION
    );
    print_wasm_size()?;
    let (rtts, find_took) = &pong;
    let nearest = |q: usize| rtts.get((rtts.len() * q).div_ceil(100).saturating_sub(1));
    println!(
        "PONG delay (heartbeat round trip, pings every {PONG_PING_MS} ms) while `find` reads the {} DOM-node page whole ({}): median {} ms, p95 {} ms, max {} ms over {} samples",
        generated.last().map_or(0, |(_, n)| *n),
        fmt_ms(*find_took),
        nearest(50).map_or("—".into(), u64::to_string),
        nearest(95).map_or("—".into(), u64::to_string),
        rtts.last().map_or("—".into(), u64::to_string),
        rtts.len()
    );
    match (&install, &opts.peer_missing) {
        (Some(install), _) => println!(
            "DOMShell: server {} {} from npm (node {}), its extension from {}",
            peer::PACKAGE,
            peer::VERSION,
            install.node_version,
            opts.peer_extension
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
        (None, Some(looked)) => println!(
            "DOMShell: not run (no built extension at {looked} next to the workspace; pass --peer-extension DIR)"
        ),
        (None, None) => println!("DOMShell: not run (--no-peer)"),
    }
    for (i, (html, dom_nodes)) in generated.iter().enumerate() {
        let title = format!(
            "page of {dom_nodes} DOM nodes ({} KiB of HTML, {} AX nodes):",
            html.len() / 1024,
            ours[i]
                .reads_whole
                .first()
                .map(|r| r.ax_nodes)
                .or(ours[i].ax_nodes)
                .map_or_else(|| "?".to_string(), |n| n.to_string())
        );
        print_page(&title, &ours[i], theirs.as_ref().map(|t| &t[i]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pages_have_about_the_asked_size() {
        for target in PAGE_SIZES {
            let (html, nodes) = generate_page(target);
            assert!(nodes.abs_diff(target) < NODES_PER_ITEM + 12, "{nodes}");
            assert_eq!(
                html.matches("<li>").count(),
                target / NODES_PER_ITEM,
                "one list item per {NODES_PER_ITEM} nodes"
            );
            assert!(html.contains(">Add a row</button>"));
        }
    }

    #[test]
    fn outputs_of_both_shells_are_parsed() {
        assert_eq!(
            strip_ansi("\u{1b}[32m✓ Opened new tab\u{1b}[0m\r\n  AX Nodes: 12"),
            "✓ Opened new tab\r\n  AX Nodes: 12"
        );
        assert_eq!(
            ax_nodes_from("✓ Opened new tab 7\r\n  AX Nodes: 1505\r\n"),
            Some(1505)
        );
        assert_eq!(main_dir("[d] main/\n[x] skip_link").unwrap(), "main");
        assert_eq!(main_dir("  banner/\n  main_13/\n").unwrap(), "main_13");
        assert!(main_dir("(empty directory)").is_err());
        assert_eq!(
            first_path("[x] main_13/add_a_row_btn (button)  \"Add a row\"").unwrap(),
            "main_13/add_a_row_btn"
        );
        assert!(first_path("No matches for 'x'").is_err());
    }

    #[test]
    fn ratios_and_cells_read_well() {
        let ms = Duration::from_millis;
        assert_eq!(ratio(&[ms(5)], &[ms(10)]), "0.50×");
        assert_eq!(ratio(&[ms(1)], &[ms(100)]), "0.010×");
        assert_eq!(ratio(&[ms(1)], &[]), "—");
        assert_eq!(cell(&[ms(2), ms(3), ms(250)]), "3.0 ms (2.0 ms–250 ms)");
        assert_eq!(cell(&[]), "—");
    }
}
