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

use serde::Serialize;
use serde_json::{json, Value};

use super::browser::{Browser, FrameSession, LoadMark, Slices};
use super::cdp;
use super::dom::{Dom, FrameTargets, Objects};
use super::sort;
use crate::ax::{AxNode, ChildFrame, FrameNodes, Mapping, NameBook, PageSnapshot, Update, Vfs};

mod gate;
mod lazy;

pub use gate::TabGates;

/// The page-side state's key (`window[Symbol.for(KEY)]` in this extension's isolated
/// world of each frame), shared with the commands that wait for changes.
pub(crate) const PAGE_STATE_KEY: &str = "domshell.page.v2";

/// Page-side change tracker (see each file); run in the isolated world of each frame.
const PROBE: &str = page_js!("tracker_probe.js");
const TAKE: &str = page_js!("tracker_take.js");
const RESET: &str = page_js!("tracker_reset.js");

fn page_js(template: &str) -> String {
    template.replace("__KEY__", PAGE_STATE_KEY)
}

/// Bound on child frames read per page (ad-heavy pages can have hundreds).
const MAX_FRAMES: usize = 50;
/// Nodes per part of a tree read ([`Browser::cdp_node_chunks`]): a few milliseconds to
/// serialise or decode (a node is about 400 bytes of JSON).
const NODES_PER_CHUNK: usize = 2_000;
/// Entries per step of mapping a whole page ([`Mapping::step`]): a few milliseconds.
const ENTRIES_PER_MAP_STEP: usize = 500;
/// Bound on how deep out-of-process frames nest when asking each level to attach its own.
const MAX_FRAME_NESTING: usize = 8;
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
    /// Which child session each out-of-process frame is reached through.
    targets: Rc<FrameTargets>,
    /// The child frames read, each with its tracker's state when it was read.
    frames: Vec<FrameProbe>,
    /// The child sessions Chrome had attached when the page was read.
    sessions_seen: Vec<String>,
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
    /// Per tab, the child session of the frame a command last focused or clicked in (keys
    /// and text go to the target whose frame has the focus).
    focus: Rc<RefCell<HashMap<i64, String>>>,
    /// One reader per tab: every read holds its tab's lock from its first call to its
    /// write-back.
    gates: TabGates,
    /// Per tab, what commands said about the page while a read of it was running (the kept
    /// tree is out of the cache then): applied to the tree that read writes back.
    notices: Rc<RefCell<HashMap<i64, Notices>>>,
}

/// What [`PageCache::touched`] and [`PageCache::invalidate`] said about a tab while its tree
/// was being read.
#[derive(Debug, Default)]
struct Notices {
    stale: bool,
    interacted: bool,
    touched: Vec<i64>,
}

impl Notices {
    fn touch(&mut self, backend_node_id: Option<i64>) {
        self.interacted = true;
        if let Some(id) = backend_node_id {
            if !self.touched.contains(&id) {
                self.touched.push(id);
            }
        }
    }

    fn apply(self, page: &mut CachedPage) {
        page.stale |= self.stale;
        page.interacted |= self.interacted;
        for id in self.touched {
            if !page.touched.contains(&id) {
                page.touched.push(id);
            }
        }
    }
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
    /// Which child session each out-of-process frame is reached through.
    pub targets: Rc<FrameTargets>,
}

/// A child frame of a read page: its target and its tracker's state then.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FrameProbe {
    frame_id: String,
    session: Option<String>,
    probe: Option<Probe>,
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

impl PageCache {
    /// How the most recent tree read of any tab went (`None` before the first).
    pub fn last_read(&self) -> Option<TreeRead> {
        self.last_read.borrow().clone()
    }

    /// A command acted on `tab`'s page (clicked, typed, scrolled), on the element with this
    /// backend DOM node id when there is one: the next read re-reads what changed, that
    /// element included, instead of the whole page.
    pub fn touched(&self, tab: i64, backend_node_id: Option<i64>) {
        match self.pages.borrow_mut().get_mut(&tab) {
            Some(page) => {
                let mut notice = Notices::default();
                notice.touch(backend_node_id);
                notice.apply(page);
            }
            None if self.gates.is_held(tab) => self
                .notices
                .borrow_mut()
                .entry(tab)
                .or_default()
                .touch(backend_node_id),
            None => {}
        }
    }

    /// A command focused or clicked an element of `tab` in the target of child session
    /// `session` (`None`: the tab's own target).
    pub fn focused_in(&self, tab: i64, session: Option<&str>) {
        let mut focus = self.focus.borrow_mut();
        match session {
            Some(session) => focus.insert(tab, session.to_string()),
            None => focus.remove(&tab),
        };
    }

    /// The target key events and typed text go to: the child session of the frame last
    /// focused by a command, while Chrome still has it attached; else the tab (`None`).
    pub fn focus_session<B: Browser>(&self, browser: &B, tab: i64) -> Option<String> {
        let session = self.focus.borrow().get(&tab).cloned()?;
        browser
            .frame_sessions(tab)
            .iter()
            .any(|s| s.session_id == session)
            .then_some(session)
    }

    /// Forget the tree of `tab`'s page as of now: the next read refetches it whole. Called
    /// after navigations.
    pub fn invalidate(&self, tab: i64) {
        match self.pages.borrow_mut().get_mut(&tab) {
            Some(page) => page.stale = true,
            // The read under way may have started before the navigation: what it writes
            // back is out of date.
            None if self.gates.is_held(tab) => {
                self.notices.borrow_mut().entry(tab).or_default().stale = true
            }
            None => {}
        }
    }

    /// The tree kept for `tab`, if any.
    pub fn kept(&self, tab: i64) -> Option<Rc<Vfs>> {
        self.pages.borrow().get(&tab).map(|p| p.vfs.clone())
    }

    /// Sessions waiting to read `tab` while another one reads it.
    #[cfg(test)]
    pub fn readers_waiting(&self, tab: i64) -> usize {
        self.gates.waiting(tab)
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
        // The tracker's objects and worlds live for this read only.
        let objects = Objects::default();
        let result = self.tree_with(browser, tab, &objects).await;
        objects.release(browser).await;
        result
    }

    /// [`PageCache::tree`] for a command whose remote objects and isolated worlds live in
    /// `objects` (released when the command ends).
    pub async fn tree_with<B: Browser>(
        &self,
        browser: &B,
        tab: i64,
        objects: &Objects,
    ) -> Result<PageTree, String> {
        // Another session reading this tab finishes first; this read then starts from the
        // tree it wrote back (with the names it gave) instead of reading alongside it.
        let _reading = self.gates.lock(tab).await;
        let tree = self.read_locked(browser, tab, objects).await;
        if tree.is_err() {
            // No tree is written back: the next read starts afresh anyway.
            self.notices.borrow_mut().remove(&tab);
        }
        tree
    }

    /// The body of [`PageCache::tree_with`], run holding `tab`'s lock.
    async fn read_locked<B: Browser>(
        &self,
        browser: &B,
        tab: i64,
        objects: &Objects,
    ) -> Result<PageTree, String> {
        let known = self.pages.borrow().get(&tab).and_then(|p| {
            p.vfs
                .entry(p.vfs.root())
                .map(|e| e.frame_id.clone())
                .filter(|f| !f.is_empty())
        });
        let main_frame = match known {
            Some(frame) => frame,
            None => main_frame_id(browser, tab).await.unwrap_or_default(),
        };
        let no_targets = FrameTargets::default();
        let dom = Dom::new(browser, tab, &no_targets, &main_frame, objects);
        let probe = probe(&dom, None, &main_frame).await;
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
        // passes to another element (see `ax::names`). Taken only once a read is due: on a
        // large page copying the book costs more than the rest of a command that reads
        // nothing.
        let mut names = NameBook::default();
        let mut not_partial = None;
        let fresh = match kept {
            None => Fresh::Loaded,
            Some(mut page) => {
                page.used = tick;
                let mut plan = plan(&page, load_mark, probe.as_ref());
                if plan != Plan::Whole(None) {
                    if let Some(why) = frames_changed(&dom, &page).await {
                        plan = Plan::Whole(Some(why));
                    }
                }
                let fresh = match plan {
                    Plan::Keep => return Ok(self.keep(tab, page, Fresh::Kept)),
                    Plan::Partial => {
                        match self.update_in_place(&dom, &main_frame, &mut page).await {
                            Ok(fresh) => {
                                page.probe = probe;
                                return Ok(self.keep(tab, page, fresh));
                            }
                            Err(why) => {
                                not_partial = Some(why);
                                Fresh::Refreshed
                            }
                        }
                    }
                    Plan::Whole(why) => {
                        not_partial = why.map(str::to_string);
                        Fresh::Refreshed
                    }
                };
                if tracked {
                    names = match Rc::try_unwrap(page.vfs) {
                        Ok(mut vfs) => vfs.take_names(),
                        Err(shared) => shared.name_book().clone(),
                    };
                }
                fresh
            }
        };
        if tracked {
            // Changes seen from here on are re-read next time; the read below covers the
            // earlier ones.
            let _ = dom.evaluate_in(None, &main_frame, &page_js(RESET)).await;
        }
        // A new document is read by parts (entering reads what listing the root needs); a
        // re-read of a changing one is whole, as a page that re-renders all the time would
        // otherwise pull node ids from under the reads by parts.
        let fetched = fetch(&dom, names, !tracked).await?;
        let mut read = fetched.read;
        read.not_partial = not_partial;
        *self.last_read.borrow_mut() = Some(read);
        let page = CachedPage {
            vfs: Rc::new(fetched.vfs),
            load_mark,
            probe,
            stale: false,
            interacted: false,
            touched: Vec::new(),
            unreadable_frames: fetched.unreadable,
            targets: Rc::new(fetched.targets),
            frames: fetched.frames,
            sessions_seen: fetched.sessions_seen,
            used: tick,
        };
        Ok(self.keep(tab, page, fresh))
    }

    /// Re-read what changed of `page` into its tree ([`update`]); `Err` says why the page
    /// must be read whole instead.
    async fn update_in_place<B: Browser>(
        &self,
        dom: &Dom<'_, B>,
        main_frame: &str,
        page: &mut CachedPage,
    ) -> Result<Fresh, String> {
        // Another command holding this tree right now keeps it as it is.
        let vfs = Rc::get_mut(&mut page.vfs).ok_or("the tree is in use")?;
        let read = update(dom, main_frame, vfs, page.interacted, &page.touched).await?;
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
    /// What commands said about the tab during the read applies to it.
    fn keep(&self, tab: i64, mut page: CachedPage, fresh: Fresh) -> PageTree {
        if let Some(notices) = self.notices.borrow_mut().remove(&tab) {
            notices.apply(&mut page);
        }
        let tree = PageTree {
            vfs: page.vfs.clone(),
            fresh,
            frames: page.vfs.frame_count() + page.unreadable_frames,
            targets: page.targets.clone(),
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

/// The main frame's id, from the tab's frame tree.
async fn main_frame_id<B: Browser>(browser: &B, tab: i64) -> Result<String, String> {
    Ok(cdp::call(browser, tab, None, &cdp::GetFrameTree {})
        .await?
        .frame_tree
        .frame
        .id)
}

/// A frame's document token and mutation count, from the tracker in this extension's
/// isolated world of that frame (installed by the first probe); `None` when it cannot be
/// read (then the frame is treated as changed).
async fn probe<B: Browser>(dom: &Dom<'_, B>, session: Option<&str>, frame: &str) -> Option<Probe> {
    if frame.is_empty() {
        return None;
    }
    let value = dom
        .evaluate_in(session, frame, &page_js(PROBE))
        .await
        .ok()?;
    Some(Probe {
        doc: value["doc"].as_str()?.to_string(),
        mutations: value["n"].as_i64()?,
        overflow: value["over"].as_bool().unwrap_or(false),
        hidden: value["hidden"].as_bool().unwrap_or(false),
    })
}

/// Why a kept page must be read whole because of its child frames: one attached or went
/// away since the read, or one changed (its tracker counted a change, or it holds another
/// document). `None` when every frame is as it was.
async fn frames_changed<B: Browser>(dom: &Dom<'_, B>, page: &CachedPage) -> Option<&'static str> {
    let mut sessions: Vec<String> = dom
        .browser
        .frame_sessions(dom.tab)
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    sort::sort(&mut sessions);
    if sessions != page.sessions_seen {
        return Some("a frame attached or went away");
    }
    for frame in &page.frames {
        let now = probe(dom, frame.session.as_deref(), &frame.frame_id).await;
        if now.is_none() || now != frame.probe {
            return Some("a frame changed");
        }
    }
    None
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
    dom: &Dom<'_, B>,
    main_frame: &str,
    vfs: &mut Vfs,
    interacted: bool,
    touched: &[i64],
) -> Result<Option<TreeRead>, String> {
    let (browser, tab) = (dom.browser, dom.tab);
    let started = browser.monotonic_ms();
    let frame_id = vfs
        .entry(vfs.root())
        .map(|e| e.frame_id.clone())
        .unwrap_or_default();
    let (mut subtrees, parents) = changed_elements(dom, main_frame, interacted).await?;
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
/// Its objects live in the read's object group, released when the read ends.
async fn changed_elements<B: Browser>(
    dom: &Dom<'_, B>,
    main_frame: &str,
    interacted: bool,
) -> Result<(Vec<i64>, Vec<i64>), String> {
    let expression = page_js(TAKE).replace("__ACTIVE__", if interacted { "true" } else { "false" });
    let taken = dom
        .evaluate_raw(None, main_frame, &expression, false)
        .await?;
    let array = match (taken.exception_details, taken.result.object_id) {
        (Some(error), _) => {
            return Err(format!(
                "the page could not say what changed: listing them failed: {:.200}",
                error.message()
            ))
        }
        (None, Some(array)) => array,
        (None, None) => {
            let why = match taken.result.value {
                Some(Value::String(reason)) => reason,
                other => format!("unexpected answer {:.200}", json!(other).to_string()),
            };
            return Err(format!("the page could not say what changed: {why}"));
        }
    };
    let props = cdp::call(
        dom.browser,
        dom.tab,
        None,
        &cdp::GetProperties {
            object_id: array,
            own_properties: true,
        },
    )
    .await?;
    let mut elements: Vec<(usize, String)> = Vec::new();
    let mut kinds = String::new();
    for prop in props.result {
        let Ok(index) = prop.name.parse::<usize>() else {
            continue;
        };
        let Some(value) = prop.value else { continue };
        match (value.object_id, value.value) {
            (Some(object), _) => elements.push((index, object)),
            (None, Some(Value::String(text))) => {
                kinds = text.trim_start_matches("kinds:").to_string()
            }
            _ => {}
        }
    }
    sort::sort(&mut elements);
    if elements.len() != kinds.len() {
        return Err("the page's list of changes is malformed".to_string());
    }
    let mut subtrees = Vec::new();
    let mut parents = Vec::new();
    for ((_, object), kind) in elements.into_iter().zip(kinds.chars()) {
        let described = cdp::call(
            dom.browser,
            dom.tab,
            None,
            &cdp::DescribeNode { object_id: object },
        )
        .await?;
        if kind == 'l' {
            parents.push(described.node.backend_node_id);
        } else {
            subtrees.push(described.node.backend_node_id);
        }
    }
    Ok((subtrees, parents))
}

/// What [`fetch`] read.
struct Fetched {
    vfs: Vfs,
    /// Child frames that could not be read.
    unreadable: usize,
    read: TreeRead,
    targets: FrameTargets,
    frames: Vec<FrameProbe>,
    sessions_seen: Vec<String>,
}

/// A child frame to read: where its nodes are (its own target's session, `None` for the
/// tab), where its owner element is, and whether it is its target's root frame.
struct FrameToRead {
    frame_id: String,
    parent_frame_id: String,
    session: Option<String>,
    owner_session: Option<String>,
    target_root: bool,
}

/// Asks the tab and every child session to attach the out-of-process frames inside them
/// (`Target.setAutoAttach` is per target: without it in a frame's own session, frames
/// nested in it are never attached), and returns the sessions attached, parents before
/// children, leaving out any whose parent session is unknown.
async fn attach_frames<B: Browser>(browser: &B, tab: i64) -> Vec<FrameSession> {
    let auto = cdp::SetAutoAttach {
        auto_attach: true,
        wait_for_debugger_on_start: false,
        flatten: true,
    };
    let _ = cdp::call(browser, tab, None, &auto).await;
    let mut asked: Vec<String> = Vec::new();
    for _ in 0..MAX_FRAME_NESTING {
        let new: Vec<String> = browser
            .frame_sessions(tab)
            .into_iter()
            .map(|s| s.session_id)
            .filter(|s| !asked.contains(s))
            .collect();
        if new.is_empty() {
            break;
        }
        for session in new {
            let _ = cdp::call(browser, tab, Some(&session), &auto).await;
            asked.push(session);
        }
    }
    let mut pending = browser.frame_sessions(tab);
    let mut ordered: Vec<FrameSession> = Vec::new();
    while !pending.is_empty() {
        let (ready, rest): (Vec<_>, Vec<_>) = pending.into_iter().partition(|s| {
            s.parent_session
                .as_ref()
                .is_none_or(|p| ordered.iter().any(|o| &o.session_id == p))
        });
        if ready.is_empty() {
            break;
        }
        ordered.extend(ready);
        pending = rest;
    }
    ordered
}

/// Reads the main frame's tree and every child frame (same-process ones with `frameId` in
/// the target that holds them, out-of-process ones — nested ones too — through their own
/// sessions), and maps them, with the names `names` gave elements of this document before.
/// With `by_parts`, the main frame is read only as far as listing its root needs (`lazy`).
async fn fetch<B: Browser>(
    dom: &Dom<'_, B>,
    names: NameBook,
    by_parts: bool,
) -> Result<Fetched, String> {
    let (browser, tab) = (dom.browser, dom.tab);
    let started = browser.monotonic_ms();
    let mut read = TreeRead {
        tab,
        ..TreeRead::default()
    };
    let failed = |method: &str, e: String| {
        format!("reading the page failed at {method}: {e}. Run `refresh` to retry.")
    };
    let frame_tree = cdp::call(browser, tab, None, &cdp::GetFrameTree {})
        .await
        .map_err(|e| failed("Page.getFrameTree", e))?;
    let main_frame = frame_tree.frame_tree.frame.id.clone();
    let url = frame_tree.frame_tree.frame.url.clone();
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
        .map_err(|e| failed("Accessibility.getFullAXTree", e))?,
    };

    let sessions = attach_frames(browser, tab).await;
    let mut sessions_seen: Vec<String> = sessions.iter().map(|s| s.session_id.clone()).collect();
    sort::sort(&mut sessions_seen);
    let mut targets = FrameTargets::default();
    let mut to_read: Vec<FrameToRead> = Vec::new();
    let same_process =
        |tree: &cdp::FrameTree, session: Option<&String>, out: &mut Vec<FrameToRead>| {
            let mut list = Vec::new();
            collect_child_frames(tree, &tree.frame.id, &mut list);
            for (frame_id, parent) in list {
                out.push(FrameToRead {
                    frame_id,
                    parent_frame_id: parent,
                    session: session.cloned(),
                    owner_session: session.cloned(),
                    target_root: false,
                });
            }
        };
    same_process(&frame_tree.frame_tree, None, &mut to_read);
    for session in &sessions {
        targets.insert(session.frame_id.clone(), session.session_id.clone());
        // An out-of-process frame hangs in the frame Chrome names, else in the root frame
        // of the target that reported it.
        let parent = session.parent_frame_id.clone().unwrap_or_else(|| {
            session
                .parent_session
                .as_ref()
                .and_then(|p| sessions.iter().find(|s| &s.session_id == p))
                .map(|s| s.frame_id.clone())
                .unwrap_or_else(|| main_frame.clone())
        });
        to_read.push(FrameToRead {
            frame_id: session.frame_id.clone(),
            parent_frame_id: parent,
            session: Some(session.session_id.clone()),
            owner_session: session.parent_session.clone(),
            target_root: true,
        });
        if let Ok(tree) = cdp::call(
            browser,
            tab,
            Some(&session.session_id),
            &cdp::GetFrameTree {},
        )
        .await
        {
            let mut inner = Vec::new();
            same_process(&tree.frame_tree, Some(&session.session_id), &mut inner);
            for frame in inner {
                targets.insert(frame.frame_id.clone(), session.session_id.clone());
                to_read.push(frame);
            }
        }
    }
    // A frame listed by its parent's frame tree and also attached: its session holds it.
    let attached: Vec<String> = sessions.iter().map(|s| s.frame_id.clone()).collect();
    to_read.retain(|f| f.target_root || !attached.contains(&f.frame_id));

    let mut frames = Vec::new();
    let mut probes = Vec::new();
    let mut unreadable = 0usize;
    let mut documents: Vec<Option<String>> = Vec::new();
    for frame in to_read.into_iter().take(MAX_FRAMES) {
        // DOM.getFrameOwner answers only once the DOM agent of that target has a document.
        if !documents.contains(&frame.owner_session) {
            let _ = cdp::call(
                browser,
                tab,
                frame.owner_session.as_deref(),
                &cdp::GetDocument { depth: 0 },
            )
            .await;
            documents.push(frame.owner_session.clone());
        }
        let owner = cdp::call(
            browser,
            tab,
            frame.owner_session.as_deref(),
            &cdp::GetFrameOwner {
                frame_id: frame.frame_id.clone(),
            },
        )
        .await
        .ok()
        .map(|o| o.backend_node_id);
        // The tracker goes in before the read, so no change after it is missed.
        let frame_probe = probe(dom, frame.session.as_deref(), &frame.frame_id).await;
        let params = if frame.target_root {
            json!({})
        } else {
            json!({ "frameId": frame.frame_id })
        };
        let nodes = read_nodes(
            browser,
            tab,
            frame.session.as_deref(),
            "Accessibility.getFullAXTree",
            params,
            &mut read,
        )
        .await
        .ok();
        match nodes {
            Some(nodes) => {
                probes.push(FrameProbe {
                    frame_id: frame.frame_id.clone(),
                    session: frame.session.clone(),
                    probe: frame_probe,
                });
                frames.push(ChildFrame {
                    frame_id: frame.frame_id,
                    parent_frame_id: Some(frame.parent_frame_id),
                    owner_backend_node_id: owner,
                    out_of_process: frame.session.is_some(),
                    nodes,
                });
            }
            None => unreadable += 1,
        }
    }
    read.ax_nodes = main_nodes.len() + frames.iter().map(|f| f.nodes.len()).sum::<usize>();
    let page = PageSnapshot {
        url,
        main: FrameNodes {
            frame_id: main_frame,
            nodes: main_nodes,
        },
        frames,
    };
    let mut vfs = map_page(browser, page, names, &mut read).await?;
    if read.lazy {
        let root = vfs.root();
        lazy::read_directory(browser, tab, &mut vfs, root, &mut read).await?;
    }
    read.total_ms = browser.monotonic_ms() - started;
    Ok(Fetched {
        vfs,
        unreadable,
        read,
        targets,
        frames: probes,
        sessions_seen,
    })
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
    let chunks = browser
        .cdp_node_chunks(tab, session, method, params, NODES_PER_CHUNK)
        .await
        .map_err(|e| format!("{method}: {e}"))?;
    let received = browser.monotonic_ms();
    read.fetch_ms += received - started;
    read.bytes += chunks.iter().map(String::len).sum::<usize>();
    read.calls += 1;
    let mut slices = Slices::start(browser);
    let mut nodes = Vec::new();
    for chunk in chunks {
        let part: Vec<AxNode> = serde_json::from_str(&chunk)
            .map_err(|e| format!("the accessibility tree is unreadable: {e}"))?;
        nodes.extend(part);
        slices.breathe(browser).await;
    }
    read.decode_ms += browser.monotonic_ms() - received - slices.yielded_ms;
    Ok(nodes)
}

/// Map a whole page a step at a time, letting the worker's event loop run between slices
/// ([`Slices`]); adds the mapping's own time (not the time yielded) to `read`.
async fn map_page<B: Browser>(
    browser: &B,
    page: PageSnapshot,
    names: NameBook,
    read: &mut TreeRead,
) -> Result<Vfs, String> {
    let started = browser.monotonic_ms();
    let mut slices = Slices::start(browser);
    let mut mapping = Mapping::new(page, names);
    while !mapping
        .step(ENTRIES_PER_MAP_STEP)
        .map_err(|e| format!("mapping the page failed: {e}"))?
    {
        slices.breathe(browser).await;
    }
    let vfs = mapping.finish();
    read.map_ms += browser.monotonic_ms() - started - slices.yielded_ms;
    Ok(vfs)
}

/// `(frame id, parent frame id)` of every frame below `node` of `Page.getFrameTree`.
fn collect_child_frames(node: &cdp::FrameTree, parent: &str, out: &mut Vec<(String, String)>) {
    for child in &node.child_frames {
        out.push((child.frame.id.clone(), parent.to_string()));
        collect_child_frames(child, &child.frame.id, out);
    }
}
