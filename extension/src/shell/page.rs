//! The page tree of each attached tab: fetching it (main frame, same-process and
//! out-of-process child frames, stitched under their `Iframe`) through the
//! [`Browser`] port, keeping it between commands, and knowing when it went stale.
//!
//! A tree is kept per tab in a [`PageCache`] the glue holds for the worker's lifetime. It is
//! refetched only when something changed: the tab loaded again (its load mark moved), the
//! document is a new one, a command interacted with the page ([`PageCache::invalidate`]), or
//! a page-side mutation counter moved. The counter is a `MutationObserver` installed by the
//! first probe and read with one `Runtime.evaluate` per command, so script-inserted content
//! (single-page apps) shows without refetching the whole tree on every command.
//!
//! It also owns the DOM helpers that page commands share (resolving an entry to a JS object,
//! calling a function on it). It must not format command output beyond the notices of
//! [`Fresh`], and must not call `chrome.*` directly.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::browser::{Browser, LoadMark};
use crate::ax::{AxNode, ChildFrame, Entry, FrameNodes, PageSnapshot, Vfs};

/// Installs (once per document) a mutation counter and returns `{doc, n}`: a token of this
/// document and how many DOM changes it has seen. Attributes are limited to those that
/// change what the accessibility tree shows, so animations do not force refetches.
const PROBE: &str = r#"(() => {
  const key = Symbol.for('domshell.mutations');
  let state = window[key];
  if (!state) {
    state = { doc: Math.random().toString(36).slice(2) + Date.now().toString(36), n: 0 };
    try {
      new MutationObserver((records) => { state.n += records.length; }).observe(document, {
        subtree: true, childList: true, characterData: true, attributes: true,
        attributeFilter: ['hidden', 'aria-hidden', 'aria-label', 'aria-expanded', 'aria-checked',
          'aria-selected', 'disabled', 'open', 'href', 'role', 'style', 'class', 'value', 'alt', 'title'],
      });
    } catch (e) { state.n = -1; }
    Object.defineProperty(window, key, { value: state });
  }
  return { doc: state.doc, n: state.n };
})()"#;

/// Bound on child frames read per page (ad-heavy pages can have hundreds).
const MAX_FRAMES: usize = 50;
/// Trees kept at once; the least recently used beyond this are dropped (a worker runs for
/// days, and closed tabs are not reported to the cache).
pub const MAX_KEPT_PAGES: usize = 8;

/// How a page's document looked when its tree was read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Probe {
    doc: String,
    mutations: i64,
}

#[derive(Debug)]
struct CachedPage {
    vfs: Rc<Vfs>,
    load_mark: LoadMark,
    probe: Option<Probe>,
    stale: bool,
    /// Child frames seen in the frame tree whose nodes could not be read from this target.
    unreadable_frames: usize,
    /// When it was last used, in [`PageCache`] ticks.
    used: u64,
}

/// Trees of attached tabs, shared by all sessions of the worker (a tab's tree does not
/// depend on who reads it). Cheap to clone: clones share the cache.
#[derive(Debug, Clone, Default)]
pub struct PageCache {
    pages: Rc<RefCell<HashMap<i64, CachedPage>>>,
    clock: Rc<std::cell::Cell<u64>>,
    last_read: Rc<RefCell<Option<TreeRead>>>,
}

/// What [`PageCache::tree`] did to get a current tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fresh {
    /// The kept tree is current.
    Kept,
    /// There was no tree yet for this tab.
    Loaded,
    /// A kept tree was out of date and was read again.
    Refreshed,
}

/// A current tree and how it was obtained.
#[derive(Debug, Clone)]
pub struct PageTree {
    pub vfs: Rc<Vfs>,
    pub fresh: Fresh,
    /// Frames counted in the page (stitched or not).
    pub frames: usize,
}

/// How the last tree read went: where the time went and how much came over. Diagnostics for
/// people and benchmarks (the worker shows it as `domshell.lastTreeRead`); no command depends
/// on it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TreeRead {
    pub tab: i64,
    /// Accessibility nodes read, all frames.
    pub ax_nodes: usize,
    /// JSON text received for the trees, in bytes.
    pub bytes: usize,
    /// DevTools calls, the browser building the trees included.
    pub fetch_ms: f64,
    /// Decoding the JSON text into nodes.
    pub decode_ms: f64,
    /// Mapping the nodes to the filesystem.
    pub map_ms: f64,
}

/// `Accessibility.getFullAXTree`'s reply; only the nodes are read.
#[derive(Deserialize)]
struct AxTreeReply {
    #[serde(default)]
    nodes: Vec<AxNode>,
}

impl PageCache {
    /// How the most recent tree read of any tab went (`None` before the first).
    pub fn last_read(&self) -> Option<TreeRead> {
        self.last_read.borrow().clone()
    }

    /// Forget the tree of `tab`'s page as of now: the next read refetches it. Called after
    /// every interaction and navigation.
    pub fn invalidate(&self, tab: i64) {
        if let Some(page) = self.pages.borrow_mut().get_mut(&tab) {
            page.stale = true;
        }
    }

    /// Tabs whose trees are kept.
    pub fn kept_tabs(&self) -> Vec<i64> {
        let mut tabs: Vec<i64> = self.pages.borrow().keys().copied().collect();
        tabs.sort_unstable();
        tabs
    }

    fn tick(&self) -> u64 {
        let next = self.clock.get() + 1;
        self.clock.set(next);
        next
    }

    /// The tree of `tab`, refetched only if the page changed since it was read.
    pub async fn tree<B: Browser>(&self, browser: &B, tab: i64) -> Result<PageTree, String> {
        let probe = probe(browser, tab).await;
        let load_mark = browser.load_mark(tab);
        let tick = self.tick();
        let kept = {
            let mut pages = self.pages.borrow_mut();
            pages.get_mut(&tab).map(|page| {
                page.used = tick;
                let current = !page.stale
                    && page.load_mark == load_mark
                    && probe.is_some()
                    && page.probe == probe
                    && probe.as_ref().is_some_and(|p| p.mutations >= 0);
                (
                    current,
                    page.vfs.clone(),
                    page.vfs.frame_count() + page.unreadable_frames,
                )
            })
        };
        let fresh = match kept {
            Some((true, vfs, frames)) => {
                return Ok(PageTree {
                    vfs,
                    fresh: Fresh::Kept,
                    frames,
                })
            }
            Some(_) => Fresh::Refreshed,
            None => Fresh::Loaded,
        };
        let (vfs, unreadable_frames, read) = fetch(browser, tab).await?;
        *self.last_read.borrow_mut() = Some(read);
        let vfs = Rc::new(vfs);
        let frames = vfs.frame_count() + unreadable_frames;
        let mut pages = self.pages.borrow_mut();
        pages.insert(
            tab,
            CachedPage {
                vfs: vfs.clone(),
                load_mark,
                probe,
                stale: false,
                unreadable_frames,
                used: tick,
            },
        );
        while pages.len() > MAX_KEPT_PAGES {
            let Some(oldest) = pages.iter().min_by_key(|(_, p)| p.used).map(|(t, _)| *t) else {
                break;
            };
            pages.remove(&oldest);
        }
        drop(pages);
        Ok(PageTree { vfs, fresh, frames })
    }

    /// Read the tree again whatever the cache says (`refresh`, navigation).
    pub async fn reload<B: Browser>(&self, browser: &B, tab: i64) -> Result<PageTree, String> {
        self.invalidate(tab);
        let mut tree = self.tree(browser, tab).await?;
        tree.fresh = Fresh::Refreshed;
        Ok(tree)
    }
}

/// The page's document token and mutation count; `None` when it cannot be read (then the
/// tree is treated as changed).
async fn probe<B: Browser>(browser: &B, tab: i64) -> Option<Probe> {
    let reply = browser
        .cdp(
            tab,
            "Runtime.evaluate",
            json!({ "expression": PROBE, "returnByValue": true, "silent": true }),
        )
        .await
        .ok()?;
    let value = &reply["result"]["value"];
    Some(Probe {
        doc: value["doc"].as_str()?.to_string(),
        mutations: value["n"].as_i64()?,
    })
}

/// Reads the main frame's tree and every child frame (same-process ones through the tab,
/// out-of-process ones through their sessions), and maps them.
/// Returns the mapped page, how many child frames could not be read here, and how the read
/// went.
async fn fetch<B: Browser>(browser: &B, tab: i64) -> Result<(Vfs, usize, TreeRead), String> {
    let mut read = TreeRead {
        tab,
        ..TreeRead::default()
    };
    let call = |method: &'static str, params: Value| async move {
        browser.cdp(tab, method, params).await.map_err(|e| {
            format!("reading the page failed at {method}: {e}. Run `refresh` to retry.")
        })
    };
    let frame_tree = call("Page.getFrameTree", json!({})).await?;
    let main_frame = frame_tree["frameTree"]["frame"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let url = frame_tree["frameTree"]["frame"]["url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let main_nodes = read_ax_tree(browser, tab, None, json!({}), &mut read)
        .await
        .map_err(|e| format!("reading the page failed at Accessibility.getFullAXTree: {e}. Run `refresh` to retry."))?;

    let mut children = Vec::new();
    collect_child_frames(&frame_tree["frameTree"], &main_frame, &mut children);
    // Out-of-process frames come with their own sessions once auto-attach is on (the glue
    // records them from `Target.attachedToTarget`). Asking again is harmless.
    let _ = browser
        .cdp(
            tab,
            "Target.setAutoAttach",
            json!({ "autoAttach": true, "waitForDebuggerOnStart": false, "flatten": true }),
        )
        .await;
    let sessions = browser.frame_sessions(tab);
    // An out-of-process frame may be missing from the parent's frame tree; its target id is
    // its frame id and its parent is then taken to be the main frame.
    for session in &sessions {
        if !children.iter().any(|(id, _)| *id == session.frame_id) {
            children.push((session.frame_id.clone(), main_frame.clone()));
        }
    }
    let mut frames = Vec::new();
    let mut unreadable = 0usize;
    if !children.is_empty() {
        // DOM.getFrameOwner answers only once the DOM agent has a document.
        let _ = browser
            .cdp(tab, "DOM.getDocument", json!({ "depth": 0 }))
            .await;
    }
    for (frame_id, parent) in children.into_iter().take(MAX_FRAMES) {
        let owner = browser
            .cdp(tab, "DOM.getFrameOwner", json!({ "frameId": frame_id }))
            .await
            .ok()
            .and_then(|o| o["backendNodeId"].as_i64());
        let session = sessions.iter().find(|s| s.frame_id == frame_id);
        let (session_id, params) = match session {
            Some(s) => (Some(s.session_id.as_str()), json!({})),
            None => (None, json!({ "frameId": frame_id })),
        };
        let nodes = read_ax_tree(browser, tab, session_id, params, &mut read)
            .await
            .ok();
        match nodes {
            Some(nodes) => frames.push(ChildFrame {
                frame_id,
                parent_frame_id: Some(parent),
                owner_backend_node_id: owner,
                out_of_process: session.is_some(),
                nodes,
            }),
            None => unreadable += 1,
        }
    }
    read.ax_nodes = main_nodes.len() + frames.iter().map(|f| f.nodes.len()).sum::<usize>();
    let mapping = browser.monotonic_ms();
    let vfs = Vfs::from_page(PageSnapshot {
        url,
        main: FrameNodes {
            frame_id: main_frame,
            nodes: main_nodes,
        },
        frames,
    })
    .map_err(|e| format!("mapping the page failed: {e}"))?;
    read.map_ms = browser.monotonic_ms() - mapping;
    Ok((vfs, unreadable, read))
}

/// One frame's `Accessibility.getFullAXTree`, received as text and decoded straight into
/// nodes; adds its size and timings to `read`.
async fn read_ax_tree<B: Browser>(
    browser: &B,
    tab: i64,
    session: Option<&str>,
    params: Value,
    read: &mut TreeRead,
) -> Result<Vec<AxNode>, String> {
    let started = browser.monotonic_ms();
    let text = browser
        .cdp_text(tab, session, "Accessibility.getFullAXTree", params)
        .await
        .map_err(|e| e.to_string())?;
    let received = browser.monotonic_ms();
    read.fetch_ms += received - started;
    read.bytes += text.len();
    let reply: AxTreeReply = serde_json::from_str(&text)
        .map_err(|e| format!("the accessibility tree is unreadable: {e}"))?;
    read.decode_ms += browser.monotonic_ms() - received;
    Ok(reply.nodes)
}

/// `(frame id, parent frame id)` of every frame below `node` of `Page.getFrameTree`.
fn collect_child_frames(node: &Value, parent: &str, out: &mut Vec<(String, String)>) {
    for child in node["childFrames"].as_array().into_iter().flatten() {
        if let Some(id) = child["frame"]["id"].as_str() {
            out.push((id.to_string(), parent.to_string()));
            collect_child_frames(child, id, out);
        }
    }
}

/// The remote object id of an entry's DOM node, for `Runtime.callFunctionOn`.
pub async fn resolve_object<B: Browser>(
    browser: &B,
    tab: i64,
    entry: &Entry,
) -> Result<String, String> {
    let backend = entry.backend_node_id.ok_or_else(|| {
        format!(
            "{} has no DOM node (it is generated by the browser); pick another entry",
            entry.name
        )
    })?;
    let reply = browser
        .cdp(tab, "DOM.resolveNode", json!({ "backendNodeId": backend }))
        .await
        .map_err(|e| {
            format!(
                "{}: its DOM node is gone ({e}); the page changed, run `ls` to see it now",
                entry.name
            )
        })?;
    reply["object"]["objectId"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{}: its DOM node could not be resolved", entry.name))
}

/// Calls `function` (JS source taking the element as `this`, then `args`) on an entry's DOM
/// node and returns its value.
pub async fn call_on<B: Browser>(
    browser: &B,
    tab: i64,
    entry: &Entry,
    function: &str,
    args: &[Value],
) -> Result<Value, String> {
    let object = resolve_object(browser, tab, entry).await?;
    let arguments: Vec<Value> = args.iter().map(|a| json!({ "value": a })).collect();
    let reply = browser
        .cdp(
            tab,
            "Runtime.callFunctionOn",
            json!({
                "objectId": object,
                "functionDeclaration": function,
                "arguments": arguments,
                "returnByValue": true,
                "awaitPromise": true,
            }),
        )
        .await
        .map_err(|e| format!("{}: {e}", entry.name))?;
    if let Some(details) = reply.get("exceptionDetails") {
        let text = details["exception"]["description"]
            .as_str()
            .or_else(|| details["text"].as_str())
            .unwrap_or("script error");
        return Err(format!("{}: {text}", entry.name));
    }
    Ok(reply["result"]["value"].clone())
}

/// Evaluates an expression in the page's main frame and returns its value.
pub async fn evaluate<B: Browser>(
    browser: &B,
    tab: i64,
    expression: &str,
) -> Result<Value, String> {
    let reply = browser
        .cdp(
            tab,
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        )
        .await
        .map_err(|e| e.to_string())?;
    if let Some(details) = reply.get("exceptionDetails") {
        return Err(details["text"]
            .as_str()
            .unwrap_or("script error")
            .to_string());
    }
    Ok(reply["result"]["value"].clone())
}
