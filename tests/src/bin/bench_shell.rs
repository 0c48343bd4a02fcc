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
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use domshell_tests::domshell_peer as peer;
use domshell_tests::mcp_client;
use domshell_tests::shell_rig::{self, Rig, ServerHandle};
use domshell_tests::workspace_root;

const DEFAULT_TRIALS: usize = 5;
/// Target sizes in DOM nodes (elements and text nodes).
const PAGE_SIZES: [usize; 3] = [1_000, 10_000, 50_000];
/// DOM nodes per list item: `li`, `a`, its text, a space, `button`, its text.
const NODES_PER_ITEM: usize = 6;

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
    domshell_tests::html_server::serve("127.0.0.1", move |target| {
        target
            .strip_prefix("/page-")
            .and_then(|rest| rest.strip_suffix(".html"))
            .and_then(|i| i.parse::<usize>().ok())
            .and_then(|i| pages.get(i))
            .map(|body| body.clone().into_bytes())
    })
    .await
}

/// The worker's account of its last tree read (domshell's worker publishes one).
async fn last_tree_read(rig: &Rig) -> Option<TreeRead> {
    if !rig.reports_tree_reads {
        return None;
    }
    let value = rig
        .chromium
        .evaluate_in_worker("globalThis.domshell && globalThis.domshell.lastTreeRead")
        .await
        .ok()?;
    serde_json::from_value(value).ok()
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

async fn trial(rig: &Rig, url: &str, samples: &mut Samples) -> Result<()> {
    let mut timed = Vec::new();
    let (opened, took) = rig.run(&format!("open {url}")).await?;
    timed.push((Step::Enter, took));
    samples.ax_nodes = ax_nodes_from(&opened).or(samples.ax_nodes);
    let read_on_enter = last_tree_read(rig).await;
    let mut read_whole = None;
    let result = async {
        let (listing, took) = rig.run("ls").await?;
        timed.push((Step::Ls, took));
        let entered = timed[0].1 + took;
        timed.push((Step::EnterAndList, entered));
        let main = shell_rig::main_dir(&listing)?;
        let (links, took) = rig.run("find --type link").await?;
        read_whole = last_tree_read(rig).await;
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
        let button = shell_rig::first_path(&found, "[x]")?;
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
    if let Some(read) = last_tree_read(rig).await {
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
    let mut peer = shell_rig::PeerArgs::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if peer.take(&arg, &mut args)? {
            continue;
        }
        match arg.as_str() {
            "--trials" => {
                let n = args.next().context("--trials needs a number")?;
                trials = n
                    .parse()
                    .with_context(|| format!("--trials {n}: not a number"))?;
                anyhow::ensure!(trials > 0, "--trials must be at least 1");
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    let (peer_extension, peer_missing) = peer.extension()?;
    Ok(Options {
        trials,
        peer_extension,
        peer_dir: peer.dir,
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
    use domshell_tests::strip_ansi;

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
