//! The page tree of each attached tab: fetching it (main frame, same-process and
//! out-of-process child frames, stitched under their `Iframe`) through the
//! [`Browser`] port, keeping it between commands, and knowing when and where it went stale.
//!
//! A tree is kept per tab in a [`PageCache`] the glue holds for the worker's lifetime. A
//! page-side tracker (a `MutationObserver` plus `input`/`change` listeners, installed by the
//! first probe and read with one `Runtime.evaluate` per command) counts changes and
//! remembers the changed elements. The tree is kept while nothing changed; after a change or
//! an interaction ([`PageCache::touched`]) only what changed is read again (the changed
//! subtrees, the parents whose child lists changed, the ancestors named after their content,
//! the fields a changed label names) and applied with [`Vfs::apply_update`]; after a load, a
//! new document, too many changes, a change in a background tab, or an update that does not
//! fit, the page is read whole. So script-inserted content (single-page apps) shows without
//! refetching the whole tree on every command.
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
use crate::ax::{AxNode, ChildFrame, Entry, FrameNodes, NameBook, PageSnapshot, Update, Vfs};

mod lazy;

/// The page-side state's key (`window[Symbol.for(KEY)]`), shared with the commands that
/// wait for changes.
pub(crate) const PAGE_STATE_KEY: &str = "domshell.page.v2";

/// Installs (once per document) the page-side change tracker and returns `{doc, n, over,
/// hidden}`: a token of this document, how many changes it has seen, whether they were too
/// many to track one by one, and whether the tab is in the background. Changed elements are remembered (at most 64, then `over`): the parents
/// whose child lists changed (`lists`), and the elements whose subtree must be read again
/// (`sub`: added elements, parents of changed text, elements whose attributes or form state
/// changed). Attributes are limited to those that change what the accessibility tree shows.
const PROBE: &str = r#"(() => {
  const key = Symbol.for('__KEY__');
  let s = window[key];
  if (!s) {
    s = { doc: Math.random().toString(36).slice(2) + Date.now().toString(36), n: 0,
      sub: new Set(), lists: new Set(), over: false };
    const note = (set, node) => {
      if (s.over || !node) return;
      const el = node.nodeType === 1 ? node : node.parentElement;
      if (!el || s.sub.size + s.lists.size >= 64) { s.over = true; s.sub.clear(); s.lists.clear(); return; }
      set.add(el);
    };
    try {
      new MutationObserver((records) => {
        s.n += records.length;
        for (const r of records) {
          if (r.type !== 'childList') { note(s.sub, r.target); continue; }
          note(s.lists, r.target);
          for (const added of r.addedNodes) note(s.sub, added.nodeType === 1 ? added : r.target);
        }
      }).observe(document, {
        subtree: true, childList: true, characterData: true, attributes: true,
        attributeFilter: ['hidden', 'aria-hidden', 'aria-label', 'aria-expanded', 'aria-checked',
          'aria-selected', 'disabled', 'open', 'href', 'role', 'style', 'class', 'value', 'alt', 'title'],
      });
      for (const type of ['input', 'change']) {
        addEventListener(type, (e) => { s.n += 1; note(s.sub, e.composedPath()[0]); }, true);
      }
    } catch (e) { s.n = -1; }
    Object.defineProperty(window, key, { value: s });
  }
  return { doc: s.doc, n: s.n, over: s.over, hidden: document.visibilityState === 'hidden' };
})()"#;

/// Hands over (and forgets) the changed elements: an array of the outermost elements whose
/// subtrees must be read again, then the parents whose child lists changed, then a string
/// `kinds:` + one letter per element (`s`, `l`). Elements whose labels or descriptions come
/// from a changed element (`<label>`, `aria-labelledby`, `aria-describedby`) are added, as
/// is the focused element after an interaction (`__ACTIVE__`). A string (why not) when the
/// page cannot say: the page must then be read whole.
const TAKE: &str = r#"(() => {
  const s = window[Symbol.for('__KEY__')];
  if (!s) return 'the change tracker is not installed';
  if (s.over) return 'they were too many to track';
  const sub = [...s.sub].filter((e) => e.isConnected);
  const lists = [...s.lists].filter((e) => e.isConnected);
  s.sub.clear(); s.lists.clear();
  const active = document.activeElement;
  if (__ACTIVE__ && active && active !== document.body && active !== document.documentElement) sub.push(active);
  const named = new Map();
  for (const el of document.querySelectorAll('[aria-labelledby],[aria-describedby]')) {
    const ids = `${el.getAttribute('aria-labelledby') || ''} ${el.getAttribute('aria-describedby') || ''}`;
    for (const id of ids.split(/\s+/)) if (id) { if (!named.has(id)) named.set(id, []); named.get(id).push(el); }
  }
  for (const e of [...sub, ...lists]) {
    for (let a = e, i = 0; a && i < 32; a = a.parentElement, i++) {
      if (a.id && named.has(a.id)) sub.push(...named.get(a.id));
      if (a.tagName === 'LABEL' && a.control) sub.push(a.control);
    }
  }
  const all = [...new Set(sub)];
  const outer = all.filter((e) => !all.some((o) => o !== e && o.contains(e)));
  const parents = [...new Set(lists)].filter((e) => !outer.some((o) => o.contains(e)));
  if (outer.length + parents.length > 64) return 'they were too many to track';
  return [...outer, ...parents, 'kinds:' + 's'.repeat(outer.length) + 'l'.repeat(parents.length)];
})()"#;

/// Forgets the changed elements before the page is read whole (the read covers them).
const RESET: &str = r#"(() => {
  const s = window[Symbol.for('__KEY__')];
  if (s) { s.sub.clear(); s.lists.clear(); s.over = false; }
  return true;
})()"#;

/// Remote objects handed over by [`TAKE`] live in this group until released.
const OBJECT_GROUP: &str = "domshell-changes";

fn page_js(template: &str) -> String {
    template.replace("__KEY__", PAGE_STATE_KEY)
}

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
    /// Too many changes to re-read them one by one.
    overflow: bool,
    /// The tab is in the background: Chromium defers the accessibility work of a partial
    /// read there (and every later call of the tab waits behind it), so it is read whole.
    hidden: bool,
}

#[derive(Debug)]
struct CachedPage {
    vfs: Rc<Vfs>,
    load_mark: LoadMark,
    probe: Option<Probe>,
    stale: bool,
    /// A command acted on the page since it was read ([`PageCache::touched`]).
    interacted: bool,
    /// Backend DOM node ids of the elements acted on since the page was read.
    touched: Vec<i64>,
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
    /// Only what changed was read again (else the whole page).
    pub partial: bool,
    /// Read a directory at a time (`getRootAXNode`/`getChildAXNodes`, see `lazy`).
    pub lazy: bool,
    /// DevTools calls that returned accessibility nodes.
    pub calls: usize,
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
    /// The whole read, start to end (for a partial read: finding what changed included).
    pub total_ms: f64,
    /// Why a page that changed was read whole rather than in part, when it was tried.
    pub not_partial: Option<String>,
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

    /// A command acted on `tab`'s page (clicked, typed, scrolled), on the element with this
    /// backend DOM node id when there is one: the next read re-reads what changed, that
    /// element included, instead of the whole page.
    pub fn touched(&self, tab: i64, backend_node_id: Option<i64>) {
        if let Some(page) = self.pages.borrow_mut().get_mut(&tab) {
            page.interacted = true;
            if let Some(id) = backend_node_id {
                if !page.touched.contains(&id) {
                    page.touched.push(id);
                }
            }
        }
    }

    /// Forget the tree of `tab`'s page as of now: the next read refetches it whole. Called
    /// after navigations.
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

    /// The tree of `tab`, read again only if the page changed since it was read: in part
    /// when the page could say what changed, else whole.
    pub async fn tree<B: Browser>(&self, browser: &B, tab: i64) -> Result<PageTree, String> {
        let probe = probe(browser, tab).await;
        let load_mark = browser.load_mark(tab);
        let tick = self.tick();
        let kept = self.pages.borrow_mut().remove(&tab);
        // Changes the page tracked in this document are covered by a whole read below.
        let tracked = kept
            .as_ref()
            .and_then(|p| p.probe.as_ref())
            .zip(probe.as_ref())
            .is_some_and(|(then, now)| then.doc == now.doc);
        // While the document lives, a whole read keeps the names given so far: a name never
        // passes to another element (see `ax::names`).
        let names = match (&kept, tracked) {
            (Some(page), true) => page.vfs.name_book().clone(),
            _ => NameBook::default(),
        };
        let mut not_partial = None;
        let fresh = match kept {
            None => Fresh::Loaded,
            Some(mut page) => {
                page.used = tick;
                match plan(&page, load_mark, probe.as_ref()) {
                    Plan::Keep => return Ok(self.keep(tab, page, Fresh::Kept)),
                    Plan::Partial => match self.update_in_place(browser, tab, &mut page).await {
                        Ok(fresh) => {
                            page.probe = probe;
                            return Ok(self.keep(tab, page, fresh));
                        }
                        Err(why) => {
                            not_partial = Some(why);
                            Fresh::Refreshed
                        }
                    },
                    Plan::Whole(why) => {
                        not_partial = why.map(str::to_string);
                        Fresh::Refreshed
                    }
                }
            }
        };
        if tracked {
            // Changes seen from here on are re-read next time; the read below covers the
            // earlier ones.
            let _ = browser
                .cdp(
                    tab,
                    "Runtime.evaluate",
                    json!({ "expression": page_js(RESET), "returnByValue": true, "silent": true }),
                )
                .await;
        }
        let (vfs, unreadable_frames, mut read) = fetch(browser, tab, names, true).await?;
        read.not_partial = not_partial;
        *self.last_read.borrow_mut() = Some(read);
        let page = CachedPage {
            vfs: Rc::new(vfs),
            load_mark,
            probe,
            stale: false,
            interacted: false,
            touched: Vec::new(),
            unreadable_frames,
            used: tick,
        };
        Ok(self.keep(tab, page, fresh))
    }

    /// Re-read what changed of `page` into its tree ([`update`]); `Err` says why the page
    /// must be read whole instead.
    async fn update_in_place<B: Browser>(
        &self,
        browser: &B,
        tab: i64,
        page: &mut CachedPage,
    ) -> Result<Fresh, String> {
        // Another command holding this tree right now keeps it as it is.
        let vfs = Rc::get_mut(&mut page.vfs).ok_or("the tree is in use")?;
        let read = update(browser, tab, vfs, page.interacted, &page.touched).await?;
        page.interacted = false;
        page.touched.clear();
        Ok(match read {
            Some(read) => {
                *self.last_read.borrow_mut() = Some(read);
                Fresh::Refreshed
            }
            None => Fresh::Kept,
        })
    }

    /// Put `page` (back) in the cache, dropping the least recently used beyond the bound.
    fn keep(&self, tab: i64, page: CachedPage, fresh: Fresh) -> PageTree {
        let tree = PageTree {
            vfs: page.vfs.clone(),
            fresh,
            frames: page.vfs.frame_count() + page.unreadable_frames,
        };
        let mut pages = self.pages.borrow_mut();
        pages.insert(tab, page);
        while pages.len() > MAX_KEPT_PAGES {
            let Some(oldest) = pages.iter().min_by_key(|(_, p)| p.used).map(|(t, _)| *t) else {
                break;
            };
            pages.remove(&oldest);
        }
        tree
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
            json!({ "expression": page_js(PROBE), "returnByValue": true, "silent": true }),
        )
        .await
        .ok()?;
    let value = &reply["result"]["value"];
    Some(Probe {
        doc: value["doc"].as_str()?.to_string(),
        mutations: value["n"].as_i64()?,
        overflow: value["over"].as_bool().unwrap_or(false),
        hidden: value["hidden"].as_bool().unwrap_or(false),
    })
}

/// What a kept tree needs before a command uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Nothing changed.
    Keep,
    /// The same document changed, and it kept track of where: re-read those parts.
    Partial,
    /// Read the page whole: a new document, a load, a navigation, or (with the reason) a
    /// change that cannot be re-read in part.
    Whole(Option<&'static str>),
}

fn plan(page: &CachedPage, load_mark: LoadMark, probe: Option<&Probe>) -> Plan {
    let (Some(now), Some(then)) = (probe, page.probe.as_ref()) else {
        return Plan::Whole(None);
    };
    if page.stale || page.load_mark != load_mark || now.doc != then.doc || now.mutations < 0 {
        return Plan::Whole(None);
    }
    if now.mutations == then.mutations && !page.interacted {
        return Plan::Keep;
    }
    if now.overflow {
        return Plan::Whole(Some("more changes than the page tracks one by one"));
    }
    if now.hidden {
        // See `Probe::hidden`.
        return Plan::Whole(Some("the tab is in the background"));
    }
    Plan::Partial
}

/// Re-read what changed in the main frame since the last read: the subtrees of the changed
/// elements (and of `touched`, the elements commands acted on), the parents whose child
/// lists changed, and the ancestors whose names may follow; then apply them to `vfs`.
/// `Ok(None)` when nothing had changed after all. Any `Err` means: read the page whole
/// (`vfs` may then be half updated).
async fn update<B: Browser>(
    browser: &B,
    tab: i64,
    vfs: &mut Vfs,
    interacted: bool,
    touched: &[i64],
) -> Result<Option<TreeRead>, String> {
    let started = browser.monotonic_ms();
    let frame_id = vfs
        .entry(vfs.root())
        .map(|e| e.frame_id.clone())
        .unwrap_or_default();
    let (mut subtrees, parents) = changed_elements(browser, tab, interacted).await?;
    // Elements from here on were acted on but not reported changed by the page.
    let reported = subtrees.len();
    for &id in touched {
        if !subtrees.contains(&id) {
            subtrees.push(id);
        }
    }
    if subtrees.is_empty() && parents.is_empty() {
        return Ok(None);
    }
    let changed: Vec<i64> = subtrees.iter().chain(&parents).copied().collect();
    let mut singles = parents.clone();
    for id in vfs.ancestors_to_refresh(&frame_id, &changed) {
        if !singles.contains(&id) {
            singles.push(id);
        }
    }
    let mut read = TreeRead {
        tab,
        partial: true,
        ..TreeRead::default()
    };
    let mut update = Update::default();
    for (i, &id) in subtrees.iter().enumerate() {
        let params = json!({ "backendNodeId": id });
        let acted_on_only = i >= reported;
        match read_nodes(
            browser,
            tab,
            None,
            "Accessibility.queryAXTree",
            params,
            &mut read,
        )
        .await
        {
            // An element acted on may be gone (a "remove" button removes itself; Chromium
            // then answers with nodes of no place in the page): its parent's changed child
            // list says so.
            Ok(nodes) if acted_on_only && !placed(vfs, &frame_id, &nodes) => {}
            Ok(nodes) if !nodes.is_empty() => update.subtrees.push(nodes),
            Ok(_) => {}
            Err(_) if acted_on_only => {}
            Err(e) => return Err(e),
        }
    }
    // A subtree that was not in the page before (a hidden element shown) must be listed by
    // its parent: read the parent again too.
    for nodes in &update.subtrees {
        let Some(root) = nodes.first() else { continue };
        if vfs.has_node(&frame_id, &root.node_id) {
            continue;
        }
        let parent = root
            .parent_id
            .as_deref()
            .and_then(|p| vfs.backend_of(&frame_id, p));
        if let Some(parent) = parent {
            if !singles.contains(&parent) {
                singles.push(parent);
            }
        }
    }
    for &id in &singles {
        let params = json!({ "backendNodeId": id, "fetchRelatives": false });
        let nodes = read_nodes(
            browser,
            tab,
            None,
            "Accessibility.getPartialAXTree",
            params,
            &mut read,
        )
        .await?;
        // A node the page no longer has (an ancestor removed with its subtree) comes back
        // as a node of no place; its parent's changed child list covers it.
        update.nodes.extend(
            nodes
                .into_iter()
                .filter(|n| vfs.has_node(&frame_id, &n.node_id)),
        );
    }
    read.ax_nodes = update.subtrees.iter().map(Vec::len).sum::<usize>() + update.nodes.len();
    let mapping = browser.monotonic_ms();
    vfs.apply_update(&frame_id, update)
        .map_err(|e| format!("the partial re-read does not fit the tree: {e}"))?;
    read.map_ms = browser.monotonic_ms() - mapping;
    read.total_ms = browser.monotonic_ms() - started;
    Ok(Some(read))
}

/// Whether the first of `nodes` (a subtree's root) or its parent is in the mapped page.
fn placed(vfs: &Vfs, frame_id: &str, nodes: &[AxNode]) -> bool {
    nodes.first().is_some_and(|root| {
        vfs.has_node(frame_id, &root.node_id)
            || root
                .parent_id
                .as_deref()
                .is_some_and(|p| vfs.has_node(frame_id, p))
    })
}

/// The backend DOM node ids of the elements [`TAKE`] hands over: `(subtrees, parents)`.
async fn changed_elements<B: Browser>(
    browser: &B,
    tab: i64,
    interacted: bool,
) -> Result<(Vec<i64>, Vec<i64>), String> {
    let cdp = |method: &'static str, params: Value| async move {
        browser
            .cdp(tab, method, params)
            .await
            .map_err(|e| format!("{method}: {e}"))
    };
    let expression = page_js(TAKE).replace("__ACTIVE__", if interacted { "true" } else { "false" });
    let taken = cdp(
        "Runtime.evaluate",
        json!({ "expression": expression, "objectGroup": OBJECT_GROUP, "silent": true }),
    )
    .await?;
    let Some(array) = taken["result"]["objectId"].as_str() else {
        let why = match (
            taken["exceptionDetails"]["exception"]["description"].as_str(),
            taken["result"]["value"].as_str(),
        ) {
            (Some(error), _) => format!("listing them failed: {error:.200}"),
            (None, Some(reason)) => reason.to_string(),
            (None, None) => format!("unexpected answer {:.200}", taken.to_string()),
        };
        return Err(format!("the page could not say what changed: {why}"));
    };
    let result = async {
        let props = cdp(
            "Runtime.getProperties",
            json!({ "objectId": array, "ownProperties": true }),
        )
        .await?;
        let mut elements: Vec<(usize, String)> = Vec::new();
        let mut kinds = String::new();
        for prop in props["result"].as_array().into_iter().flatten() {
            let Some(index) = prop["name"].as_str().and_then(|n| n.parse::<usize>().ok()) else {
                continue;
            };
            match (
                prop["value"]["objectId"].as_str(),
                prop["value"]["value"].as_str(),
            ) {
                (Some(object), _) => elements.push((index, object.to_string())),
                (None, Some(text)) => kinds = text.trim_start_matches("kinds:").to_string(),
                _ => {}
            }
        }
        elements.sort();
        if elements.len() != kinds.len() {
            return Err("the page's list of changes is malformed".to_string());
        }
        let mut subtrees = Vec::new();
        let mut parents = Vec::new();
        for ((_, object), kind) in elements.iter().zip(kinds.chars()) {
            let described = cdp("DOM.describeNode", json!({ "objectId": object })).await?;
            let backend = described["node"]["backendNodeId"]
                .as_i64()
                .ok_or("DOM.describeNode gave no backendNodeId")?;
            if kind == 'l' {
                parents.push(backend);
            } else {
                subtrees.push(backend);
            }
        }
        Ok((subtrees, parents))
    }
    .await;
    let _ = browser
        .cdp(
            tab,
            "Runtime.releaseObjectGroup",
            json!({ "objectGroup": OBJECT_GROUP }),
        )
        .await;
    result
}

/// Reads the main frame's tree and every child frame (same-process ones through the tab,
/// out-of-process ones through their sessions), and maps them, with the names `names` gave
/// elements of this document before.
/// With `by_parts`, the main frame is read only as far as listing its root needs (`lazy`).
/// Returns the mapped page, how many child frames could not be read here, and how the read
/// went.
async fn fetch<B: Browser>(
    browser: &B,
    tab: i64,
    names: NameBook,
    by_parts: bool,
) -> Result<(Vfs, usize, TreeRead), String> {
    let started = browser.monotonic_ms();
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
    let root = match by_parts {
        true => lazy::root_node(browser, tab, &mut read)
            .await
            // A browser that cannot read by parts (or a fake) is read whole, as before.
            .ok(),
        false => None,
    };
    read.lazy = root.is_some();
    let main_nodes = match root {
        Some(root) => vec![root],
        None => read_nodes(
            browser,
            tab,
            None,
            "Accessibility.getFullAXTree",
            json!({}),
            &mut read,
        )
        .await
        .map_err(|e| {
            format!(
                "reading the page failed at Accessibility.getFullAXTree: {e}. Run `refresh` to retry."
            )
        })?,
    };

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
        let nodes = read_nodes(
            browser,
            tab,
            session_id,
            "Accessibility.getFullAXTree",
            params,
            &mut read,
        )
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
    let mut vfs = Vfs::from_page_naming(
        PageSnapshot {
            url,
            main: FrameNodes {
                frame_id: main_frame,
                nodes: main_nodes,
            },
            frames,
        },
        names,
    )
    .map_err(|e| format!("mapping the page failed: {e}"))?;
    read.map_ms = browser.monotonic_ms() - mapping;
    if read.lazy {
        let root = vfs.root();
        lazy::read_directory(browser, tab, &mut vfs, root, &mut read).await?;
    }
    read.total_ms = browser.monotonic_ms() - started;
    Ok((vfs, unreadable, read))
}

/// An `Accessibility` call that answers `{nodes}` (in the tab, or in a child frame's
/// `session`), received as text and decoded straight into nodes; adds its size and timings
/// to `read`.
pub(crate) async fn read_nodes<B: Browser>(
    browser: &B,
    tab: i64,
    session: Option<&str>,
    method: &str,
    params: Value,
    read: &mut TreeRead,
) -> Result<Vec<AxNode>, String> {
    let started = browser.monotonic_ms();
    let text = browser
        .cdp_text(tab, session, method, params)
        .await
        .map_err(|e| format!("{method}: {e}"))?;
    let received = browser.monotonic_ms();
    read.fetch_ms += received - started;
    read.bytes += text.len();
    read.calls += 1;
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
