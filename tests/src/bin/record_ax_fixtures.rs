//! `record-ax-fixtures`: records the accessibility trees the filesystem mapping is tested on.
//!
//! It serves `tests/fixtures/pages/` on two loopback listeners (ephemeral ports; the second
//! one is reached as `localhost`, a different site, so its frame runs out of process), opens
//! each page in headless Chromium with a fresh profile, and writes one JSON page snapshot per
//! page to `extension/tests/fixtures/ax/`: the main frame's `Accessibility.getFullAXTree`
//! plus one node list per child frame, tagged with the owning `<iframe>`'s backend node id.
//! Out-of-process frames are read through their own session, found with
//! `Target.setAutoAttach {flatten: true}` the way the extension finds them. Nodes are trimmed
//! to the fields the mapping reads. Everything it starts (servers, browser) stops at exit.
//!
//! Run it with `cargo run -p domshell-tests --bin record-ax-fixtures` after changing a page.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use domshell_tests::{workspace_root, CdpClient, Chromium};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// `(fixture name, page file)`. Pages recorded twice (fresh tab each time) feed the
/// name-stability tests.
const RECORDINGS: &[(&str, &str)] = &[
    ("form", "form.html"),
    ("table", "table.html"),
    ("landmarks", "landmarks.html"),
    ("landmarks_again", "landmarks.html"),
    ("frame_same_origin", "frame_same.html"),
    ("frame_cross_site", "frame_cross.html"),
    ("i18n", "i18n.html"),
    ("big", "big.html"),
    ("big_again", "big.html"),
    ("article", "article.html"),
];

/// Snapshots larger than this are written gzip-compressed.
const GZIP_ABOVE_BYTES: usize = 1024 * 1024;
const PAGE_LOAD_TIMEOUT: Duration = Duration::from_secs(20);
const OOPIF_ATTACH_TIMEOUT: Duration = Duration::from_secs(5);
/// AX properties the mapping (or a listing) may show; the rest are dropped from fixtures.
const KEPT_PROPERTIES: &[&str] = &[
    "checked", "selected", "expanded", "disabled", "level", "url", "pressed",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = workspace_root();
    let pages = root.join("tests/fixtures/pages");
    let out_dir = root.join("extension/tests/fixtures/ax");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    let (other_site, other_task) = serve(pages.clone(), String::new()).await?;
    let cross_origin = format!("http://localhost:{other_site}");
    let (main_port, main_task) = serve(pages, cross_origin).await?;

    // Chromium's harness loads an unpacked extension; a manifest-only one keeps it inert.
    let inert = tempfile::tempdir().context("creating the inert extension dir")?;
    std::fs::write(
        inert.path().join("manifest.json"),
        r#"{"manifest_version": 3, "name": "inert", "version": "1"}"#,
    )
    .context("writing the inert extension's manifest")?;
    let chromium = Chromium::launch_with_args(inert.path(), &[]).await?;
    let mut browser = chromium.browser_cdp().await?;
    browser.call_timeout = Duration::from_secs(30);

    let result = record_all(&mut browser, main_port, &out_dir).await;
    drop(browser);
    drop(chromium);
    main_task.abort();
    other_task.abort();
    result
}

async fn record_all(browser: &mut CdpClient, port: u16, out_dir: &Path) -> anyhow::Result<()> {
    for (fixture, page) in RECORDINGS {
        let url = format!("http://127.0.0.1:{port}/{page}");
        let started = Instant::now();
        let snapshot = record_page(browser, &url)
            .await
            .with_context(|| format!("recording {url}"))?;
        let path = write_snapshot(out_dir, fixture, &snapshot)?;
        let nodes: usize = std::iter::once(&snapshot["main"])
            .chain(snapshot["frames"].as_array().into_iter().flatten())
            .map(|f| f["nodes"].as_array().map_or(0, Vec::len))
            .sum();
        eprintln!(
            "{fixture}: {nodes} nodes, {} child frame(s) -> {} ({} ms)",
            snapshot["frames"].as_array().map_or(0, Vec::len),
            path.display(),
            started.elapsed().as_millis()
        );
    }
    Ok(())
}

/// Open `url` in a fresh tab, read every frame's accessibility tree, close the tab.
async fn record_page(browser: &mut CdpClient, url: &str) -> anyhow::Result<Value> {
    let created = browser
        .send("Target.createTarget", json!({ "url": "about:blank" }))
        .await?;
    let target_id = str_field(&created, "targetId")?;
    let attached = browser
        .send(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        )
        .await?;
    let session = str_field(&attached, "sessionId")?;
    let result = record_in_session(browser, &session, url).await;
    browser
        .send("Target.closeTarget", json!({ "targetId": target_id }))
        .await
        .context("closing the recorded tab")?;
    result
}

async fn record_in_session(
    browser: &mut CdpClient,
    session: &str,
    url: &str,
) -> anyhow::Result<Value> {
    for method in [
        "Page.enable",
        "DOM.enable",
        "Runtime.enable",
        "Accessibility.enable",
    ] {
        browser.send_in_session(session, method, json!({})).await?;
    }
    browser
        .send_in_session(
            session,
            "Target.setAutoAttach",
            json!({ "autoAttach": true, "waitForDebuggerOnStart": false, "flatten": true }),
        )
        .await?;
    browser.take_events();
    browser
        .send_in_session(session, "Page.navigate", json!({ "url": url }))
        .await?;
    wait_loaded(browser, session, url).await?;

    let frame_tree = browser
        .send_in_session(session, "Page.getFrameTree", json!({}))
        .await?;
    let main_frame_id = frame_tree["frameTree"]["frame"]["id"]
        .as_str()
        .ok_or_else(|| anyhow!("Page.getFrameTree without a main frame: {frame_tree}"))?
        .to_string();
    let mut child_frames = Vec::new();
    collect_child_frames(&frame_tree["frameTree"], &mut child_frames);

    let expects_oopif = url.contains("frame_cross");
    let oop_sessions = iframe_sessions(browser, session, expects_oopif).await?;
    // An out-of-process frame may be missing from the parent's frame tree; its target id is
    // its frame id and its parent is the page's main frame.
    for (frame_id, _) in &oop_sessions {
        if !child_frames.iter().any(|(id, _)| id == frame_id) {
            child_frames.push((frame_id.clone(), main_frame_id.clone()));
        }
    }

    browser
        .send_in_session(session, "DOM.getDocument", json!({ "depth": 0 }))
        .await?;
    let main_nodes = browser
        .send_in_session(session, "Accessibility.getFullAXTree", json!({}))
        .await?;
    let mut frames = Vec::new();
    for (frame_id, parent_frame_id) in child_frames {
        let owner = browser
            .send_in_session(session, "DOM.getFrameOwner", json!({ "frameId": frame_id }))
            .await
            .with_context(|| format!("DOM.getFrameOwner {frame_id}"))?;
        let owner_backend_node_id = owner["backendNodeId"].as_i64();
        let oop_session = oop_sessions
            .iter()
            .find(|(id, _)| *id == frame_id)
            .map(|(_, s)| s.clone());
        let nodes = match &oop_session {
            Some(frame_session) => {
                browser
                    .send_in_session(frame_session, "Accessibility.enable", json!({}))
                    .await?;
                browser
                    .send_in_session(frame_session, "Accessibility.getFullAXTree", json!({}))
                    .await?
            }
            None => {
                browser
                    .send_in_session(
                        session,
                        "Accessibility.getFullAXTree",
                        json!({ "frameId": frame_id }),
                    )
                    .await?
            }
        };
        frames.push(json!({
            "frameId": frame_id,
            "parentFrameId": parent_frame_id,
            "ownerBackendNodeId": owner_backend_node_id,
            "outOfProcess": oop_session.is_some(),
            "nodes": trim_nodes(&nodes)?,
        }));
    }
    if expects_oopif && !frames.iter().any(|f| f["outOfProcess"] == true) {
        bail!("{url} should have an out-of-process frame, none was recorded");
    }
    if url.contains("/frame_") && frames.is_empty() {
        bail!("{url} embeds a frame, none was recorded");
    }
    Ok(json!({
        "url": url,
        "main": { "frameId": main_frame_id, "nodes": trim_nodes(&main_nodes)? },
        "frames": frames,
    }))
}

/// `(frame id, parent frame id)` of every frame below `tree`, depth first.
fn collect_child_frames(tree: &Value, out: &mut Vec<(String, String)>) {
    let parent = tree["frame"]["id"].as_str().unwrap_or_default().to_string();
    for child in tree["childFrames"].as_array().into_iter().flatten() {
        if let Some(id) = child["frame"]["id"].as_str() {
            out.push((id.to_string(), parent.clone()));
        }
        collect_child_frames(child, out);
    }
}

/// `(frame id, session id)` of the out-of-process frames auto-attached under `session`.
/// When one is expected, waits (bounded) for its `Target.attachedToTarget`.
async fn iframe_sessions(
    browser: &mut CdpClient,
    session: &str,
    expect_one: bool,
) -> anyhow::Result<Vec<(String, String)>> {
    let deadline = Instant::now() + OOPIF_ATTACH_TIMEOUT;
    let mut found = Vec::new();
    loop {
        for event in browser.take_events() {
            if event["method"] == "Target.attachedToTarget"
                && event["sessionId"] == session
                && event["params"]["targetInfo"]["type"] == "iframe"
            {
                let frame_id = event["params"]["targetInfo"]["targetId"].as_str();
                let frame_session = event["params"]["sessionId"].as_str();
                if let (Some(f), Some(s)) = (frame_id, frame_session) {
                    found.push((f.to_string(), s.to_string()));
                }
            }
        }
        if !expect_one || !found.is_empty() {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            bail!("no out-of-process frame attached within {OOPIF_ATTACH_TIMEOUT:?}");
        }
        // Any round trip pumps the socket, so pending events get read.
        tokio::time::sleep(Duration::from_millis(100)).await;
        browser
            .send_in_session(session, "Runtime.evaluate", json!({ "expression": "1" }))
            .await?;
    }
}

async fn wait_loaded(browser: &mut CdpClient, session: &str, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + PAGE_LOAD_TIMEOUT;
    loop {
        let state = browser
            .send_in_session(
                session,
                "Runtime.evaluate",
                json!({ "expression": "[document.readyState, location.href]", "returnByValue": true }),
            )
            .await?;
        let value = &state["result"]["value"];
        if value[0] == "complete" && value[1] == url {
            // Layout and the accessibility tree settle right after load.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{url} did not load within {PAGE_LOAD_TIMEOUT:?}; last state {value}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `nodes` of a `getFullAXTree` reply, each reduced to the fields the mapping reads.
fn trim_nodes(reply: &Value) -> anyhow::Result<Vec<Value>> {
    let nodes = reply["nodes"]
        .as_array()
        .ok_or_else(|| anyhow!("getFullAXTree reply without nodes"))?;
    Ok(nodes.iter().map(trim_node).collect())
}

fn trim_node(node: &Value) -> Value {
    let mut out = Map::new();
    let mut copy = |key: &str, value: Option<Value>| {
        if let Some(value) = value.filter(|v| !v.is_null()) {
            out.insert(key.to_string(), value);
        }
    };
    copy("nodeId", node.get("nodeId").cloned());
    if node["ignored"] == true {
        copy("ignored", Some(Value::Bool(true)));
    }
    for key in ["role", "name", "description", "value"] {
        copy(key, ax_value(&node[key]));
    }
    let properties: Vec<Value> = node["properties"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["name"]
                .as_str()
                .is_some_and(|n| KEPT_PROPERTIES.contains(&n))
        })
        .filter_map(|p| Some(json!({ "name": p["name"], "value": ax_value(&p["value"])? })))
        .collect();
    if !properties.is_empty() {
        copy("properties", Some(Value::Array(properties)));
    }
    if node["childIds"].as_array().is_some_and(|c| !c.is_empty()) {
        copy("childIds", node.get("childIds").cloned());
    }
    for key in ["parentId", "backendDOMNodeId", "frameId"] {
        copy(key, node.get(key).cloned());
    }
    Value::Object(out)
}

/// An `AXValue` reduced to `{type, value}`, or `None` when it carries no value.
fn ax_value(value: &Value) -> Option<Value> {
    let inner = value.get("value")?;
    if inner.is_null() || inner.as_str() == Some("") {
        return None;
    }
    Some(json!({ "type": value["type"], "value": inner }))
}

/// Write the snapshot with one node per line (readable diffs), gzipped when large.
fn write_snapshot(out_dir: &Path, fixture: &str, snapshot: &Value) -> anyhow::Result<PathBuf> {
    let text = render(snapshot)?;
    if text.len() > GZIP_ABOVE_BYTES {
        let path = out_dir.join(format!("{fixture}.json.gz"));
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::best());
        encoder
            .write_all(text.as_bytes())
            .and_then(|()| encoder.finish().map(drop))
            .with_context(|| format!("writing {}", path.display()))?;
        let _ = std::fs::remove_file(out_dir.join(format!("{fixture}.json")));
        Ok(path)
    } else {
        let path = out_dir.join(format!("{fixture}.json"));
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        let _ = std::fs::remove_file(out_dir.join(format!("{fixture}.json.gz")));
        Ok(path)
    }
}

fn render(snapshot: &Value) -> anyhow::Result<String> {
    let frame = |f: &Value, extra: &[&str]| -> anyhow::Result<String> {
        let mut head = Map::new();
        head.insert("frameId".into(), f["frameId"].clone());
        for key in extra {
            head.insert((*key).into(), f[*key].clone());
        }
        let head = serde_json::to_string(&head)?;
        let nodes: Vec<String> = f["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()?;
        Ok(format!(
            "{},\n \"nodes\": [\n  {}\n ]}}",
            head.trim_end_matches('}'),
            nodes.join(",\n  ")
        ))
    };
    let mut frames = Vec::new();
    for f in snapshot["frames"].as_array().into_iter().flatten() {
        frames.push(frame(
            f,
            &["parentFrameId", "ownerBackendNodeId", "outOfProcess"],
        )?);
    }
    Ok(format!(
        "{{\"url\": {},\n\"main\": {},\n\"frames\": [{}]}}\n",
        snapshot["url"],
        frame(&snapshot["main"], &[])?,
        frames.join(",\n")
    ))
}

fn str_field(value: &Value, key: &str) -> anyhow::Result<String> {
    value[key]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("expected {key} in {value}"))
}

/// A static file server for `dir` on 127.0.0.1 (ephemeral port). `CROSS_ORIGIN` in a page is
/// replaced by `cross_origin`. Returns the port and the accept task.
async fn serve(
    dir: PathBuf,
    cross_origin: String,
) -> anyhow::Result<(u16, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a fixture server on 127.0.0.1")?;
    let port = listener.local_addr()?.port();
    let shared = Arc::new((dir, cross_origin));
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let mut request = vec![0u8; 8192];
                let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(5), stream.read(&mut request)).await
                else {
                    return;
                };
                let (status, body) = respond(&shared.0, &shared.1, &request[..n]);
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok((port, task))
}

fn respond(dir: &Path, cross_origin: &str, request: &[u8]) -> (&'static str, Vec<u8>) {
    let line = String::from_utf8_lossy(request);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let name = path.trim_start_matches('/').split('?').next().unwrap_or("");
    let safe = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && !name.contains("..");
    match safe.then(|| std::fs::read_to_string(dir.join(name))) {
        Some(Ok(text)) => (
            "200 OK",
            text.replace("CROSS_ORIGIN", cross_origin).into_bytes(),
        ),
        _ => (
            "404 Not Found",
            b"<!doctype html><title>404</title>not found".to_vec(),
        ),
    }
}
