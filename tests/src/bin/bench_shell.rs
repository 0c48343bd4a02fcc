//! `cargo xtask bench-shell [--trials N]`: how long shell commands take end to end, measured
//! with the release server and real headless Chromium running the built extension.
//!
//! Pages of about 1k, 10k and 50k DOM nodes are generated here and served on 127.0.0.1.
//! Commands go through the server's debug route (`POST /debug/execute`), so each figure is
//! the whole path: HTTP → server → WebSocket → worker (WASM) → CDP → Chromium and back.
//! Per page and trial it times entering the tab (`open`: attach and read the tree), `ls`,
//! `find --type link`, `text main`, and `click` on a button that adds a row followed by the
//! next `ls` (which re-reads the changed page). It also prints the size of the extension's
//! WASM, raw and gzipped. It prints median/min/max; it asserts nothing about speed.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use domshell_tests::{
    eventually, workspace_root, Chromium, ServerOptions, ServerProcess, TEST_TOKEN,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const DEFAULT_TRIALS: usize = 5;
/// Target sizes in DOM nodes (elements and text nodes).
const PAGE_SIZES: [usize; 3] = [1_000, 10_000, 50_000];
/// DOM nodes per list item: `li`, `a`, its text, a space, `button`, its text.
const NODES_PER_ITEM: usize = 6;
const COMMAND_TIMEOUT_MS: u64 = 60_000;

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

struct Rig {
    server: ServerProcess,
    // Held so the browser lives as long as the benchmark; dropping it stops Chromium.
    _chromium: Chromium,
}

impl Rig {
    async fn start() -> Result<Rig> {
        let server = ServerProcess::start(ServerOptions {
            extra_args: vec![
                "--allow-write".into(),
                "--domains".into(),
                "127.0.0.1".into(),
            ],
            connect_grace_ms: Some(10_000),
            // Mapping a 50k-node page keeps the worker busy (no pings answered meanwhile).
            silence_limit_ms: 60_000,
            command_timeout_ms: Some(COMMAND_TIMEOUT_MS),
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
            "bridge_alarm_period_ms": 1_000,
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
        Ok(Rig {
            server,
            _chromium: chromium,
        })
    }

    /// Runs a command through the debug route; returns its output and how long it took.
    async fn run(&self, command: &str) -> Result<(String, Duration)> {
        let started = Instant::now();
        let (status, body) = self
            .server
            .execute(command, Some(COMMAND_TIMEOUT_MS))
            .await
            .with_context(|| format!("running `{command}`"))?;
        let took = started.elapsed();
        let output = body["output"].as_str().unwrap_or_default().to_string();
        if status != 200 || body["ok"].as_bool() != Some(true) {
            bail!("`{command}` failed (HTTP {status}): {body}");
        }
        Ok((output, took))
    }
}

#[derive(Default)]
struct Samples {
    enter: Vec<Duration>,
    ls: Vec<Duration>,
    find_links: Vec<Duration>,
    text_main: Vec<Duration>,
    click: Vec<Duration>,
    ls_after_click: Vec<Duration>,
}

fn tab_id_from(opened: &str) -> Result<i64> {
    opened
        .lines()
        .find_map(|l| l.trim().strip_prefix("✓ Opened new tab "))
        .and_then(|rest| rest.trim().parse().ok())
        .with_context(|| format!("no tab id in the output of open: {opened:?}"))
}

fn ax_nodes_from(entered: &str) -> Option<usize> {
    entered
        .lines()
        .find_map(|l| l.trim().strip_prefix("AX Nodes: "))
        .and_then(|n| n.trim().parse().ok())
}

/// The path of the first `find` result line (`[x] main/add_a_row_btn (button) …`).
fn first_path(found: &str) -> Result<String> {
    found
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .map(|p| p.trim_end_matches('/').to_string())
        .with_context(|| format!("no result in {found:?}"))
}

async fn trial(rig: &Rig, url: &str, samples: &mut Samples) -> Result<Option<usize>> {
    let (opened, enter) = rig.run(&format!("open {url}")).await?;
    let tab = tab_id_from(&opened)?;
    samples.enter.push(enter);
    let (_, ls) = rig.run("ls").await?;
    samples.ls.push(ls);
    let (_, find) = rig.run("find --type link").await?;
    samples.find_links.push(find);
    let (_, text) = rig.run("text main").await?;
    samples.text_main.push(text);
    let (found, _) = rig.run("find \"Add a row\" --type button").await?;
    let button = first_path(&found)?;
    let (_, click) = rig.run(&format!("click {button}")).await?;
    samples.click.push(click);
    let (_, after) = rig.run("ls").await?;
    samples.ls_after_click.push(after);
    rig.run(&format!("close {tab}")).await?;
    Ok(ax_nodes_from(&opened))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print_row(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let median = samples.get(samples.len() / 2).copied().unwrap_or_default();
    let min = samples.first().copied().unwrap_or_default();
    let max = samples.last().copied().unwrap_or_default();
    println!(
        "  {what:<24} median {:>9.1} ms   min {:>9.1} ms   max {:>9.1} ms",
        ms(median),
        ms(min),
        ms(max)
    );
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

fn parse_trials() -> Result<usize> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(DEFAULT_TRIALS),
        [flag, n] if flag == "--trials" => {
            let n: usize = n
                .parse()
                .with_context(|| format!("--trials {n}: not a number"))?;
            anyhow::ensure!(n > 0, "--trials must be at least 1");
            Ok(n)
        }
        _ => bail!("usage: bench-shell [--trials N]"),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let trials = parse_trials()?;
    let generated: Vec<(String, usize)> = PAGE_SIZES.iter().map(|&n| generate_page(n)).collect();
    let pages = Arc::new(generated.iter().map(|(html, _)| html.clone()).collect());
    let addr = serve_pages(pages).await?;
    let rig = Rig::start().await?;
    println!(
        "bench-shell: {trials} trial(s) per page, release server, headless Chromium with the built extension"
    );
    print_wasm_size()?;
    for (i, (html, dom_nodes)) in generated.iter().enumerate() {
        let url = format!("http://{addr}/page-{i}.html");
        let mut samples = Samples::default();
        let mut ax_nodes = None;
        for _ in 0..trials {
            ax_nodes = trial(&rig, &url, &mut samples).await?;
        }
        println!(
            "page of {dom_nodes} DOM nodes ({} KiB HTML, {} AX nodes):",
            html.len() / 1024,
            ax_nodes.map_or_else(|| "?".to_string(), |n| n.to_string())
        );
        print_row("open (attach + tree)", &mut samples.enter);
        print_row("ls", &mut samples.ls);
        print_row("find --type link", &mut samples.find_links);
        print_row("text main", &mut samples.text_main);
        print_row("click (adds a row)", &mut samples.click);
        print_row("ls after the click", &mut samples.ls_after_click);
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
}
