//! Reading a tab's accessibility tree a directory at a time, instead of whole.
//!
//! Entering a tab reads the root node (`Accessibility.getRootAXNode`) and then, in rounds,
//! the children (`Accessibility.getChildAXNodes`) of every node the root directory needs to
//! be listed: its own children, the wrappers flattened into it, and its child directories'
//! children (an entry is named after them). `cd`/`ls` read a directory the same way when it
//! is first visited. Commands that need the whole page (`find`, `grep`, `text` of the root)
//! read it with one `getFullAXTree`, which costs Chromium far less per node than thousands of
//! small calls. The rounds run on a scratch copy and their nodes are added to the tree in one
//! step, so a directory's entries are named from all of its children at once, in document
//! order, exactly as a whole read names them (`ax::names`).
//!
//! It owns those reads and their accounting in [`TreeRead`]; when a page is stale and how it
//! is re-read after a change stay in `page`.

use std::collections::HashSet;
use std::rc::Rc;

use serde::Deserialize;
use serde_json::json;

use super::{fetch, read_nodes, PageCache, PageTree, TreeRead};
use crate::ax::{AxNode, EntryId, NodeRef, Vfs};
use crate::shell::browser::Browser;
use crate::shell::dom::{Dom, FrameTargets, Objects};

/// Rounds of `getChildAXNodes` for one directory (each round goes one level of wrappers or
/// child directories deeper).
const MAX_ROUNDS: usize = 32;
/// `getChildAXNodes` calls for one directory; what is left stays unread (and says so).
const MAX_CALLS: usize = 1_000;

/// `Accessibility.getRootAXNode`'s reply.
#[derive(Deserialize)]
struct RootReply {
    node: AxNode,
}

/// The main frame's root node. `Err` when this browser cannot read the tree by parts (the
/// page is then read whole).
pub(super) async fn root_node<B: Browser>(
    browser: &B,
    tab: i64,
    read: &mut TreeRead,
) -> Result<AxNode, String> {
    let started = browser.monotonic_ms();
    // The node-by-node methods answer only with the agent enabled; enabling twice is harmless.
    browser
        .cdp(tab, "Accessibility.enable", json!({}))
        .await
        .map_err(|e| format!("Accessibility.enable: {e}"))?;
    let text = browser
        .cdp_text(tab, None, "Accessibility.getRootAXNode", json!({}))
        .await
        .map_err(|e| format!("Accessibility.getRootAXNode: {e}"))?;
    let received = browser.monotonic_ms();
    read.fetch_ms += received - started;
    read.bytes += text.len();
    read.calls += 1;
    let reply: RootReply = serde_json::from_str(&text)
        .map_err(|e| format!("the accessibility root is unreadable: {e}"))?;
    read.decode_ms += browser.monotonic_ms() - received;
    Ok(reply.node)
}

/// Read what `dir` of `vfs` needs to be listed and add it to `vfs`. Returns whether anything
/// was added (nothing when the directory was complete, or the browser gave nothing more).
pub(super) async fn read_directory<B: Browser>(
    browser: &B,
    tab: i64,
    vfs: &mut Vfs,
    dir: EntryId,
    read: &mut TreeRead,
) -> Result<bool, String> {
    if vfs.pending_to_list(dir).is_empty() {
        return Ok(false);
    }
    let Some((frame_id, ax_node_id)) = vfs
        .entry(dir)
        .map(|e| (e.frame_id.clone(), e.ax_node_id.clone()))
    else {
        return Ok(false);
    };
    let main_frame = vfs
        .entry(vfs.root())
        .map(|e| e.frame_id.clone())
        .unwrap_or_default();
    // Rounds run on a copy: adding nodes to the real tree one parent at a time would name
    // the directory's entries before all of them are known.
    let mut scratch = vfs.clone();
    let mut asked: HashSet<NodeRef> = HashSet::new();
    let mut fetched: Vec<(String, Vec<AxNode>)> = Vec::new();
    let mut calls = 0usize;
    'rounds: for _ in 0..MAX_ROUNDS {
        let Some(at) = scratch.entry_for_node(&frame_id, &ax_node_id) else {
            break;
        };
        let pending: Vec<NodeRef> = scratch
            .pending_to_list(at)
            .into_iter()
            .filter(|n| asked.insert(n.clone()))
            .collect();
        if pending.is_empty() {
            break;
        }
        for node in pending {
            if calls >= MAX_CALLS {
                break 'rounds;
            }
            calls += 1;
            let mut params = json!({ "id": node.ax_node_id });
            if !node.frame_id.is_empty() && node.frame_id != main_frame {
                params["frameId"] = json!(node.frame_id);
            }
            let children = read_nodes(
                browser,
                tab,
                None,
                "Accessibility.getChildAXNodes",
                params,
                read,
            )
            .await
            .map_err(|e| format!("reading a directory failed: {e}. Run `refresh` to retry."))?;
            if children.is_empty() {
                continue;
            }
            scratch
                .add_nodes(&node.frame_id, children.clone())
                .map_err(|e| format!("a directory read does not fit the tree: {e}"))?;
            fetched.push((node.frame_id, children));
        }
    }
    read.calls += calls;
    let mut frames: Vec<(String, Vec<AxNode>)> = Vec::new();
    for (frame, nodes) in fetched {
        read.ax_nodes += nodes.len();
        match frames.iter_mut().find(|(f, _)| *f == frame) {
            Some((_, all)) => all.extend(nodes),
            None => frames.push((frame, nodes)),
        }
    }
    let added = !frames.is_empty();
    let mapping = browser.monotonic_ms();
    for (frame, nodes) in frames {
        vfs.add_nodes(&frame, nodes)
            .map_err(|e| format!("a directory read does not fit the tree: {e}"))?;
    }
    read.map_ms += browser.monotonic_ms() - mapping;
    Ok(added)
}

impl PageCache {
    /// Read directory `dir` of `tree` (a tree [`PageCache::tree`] gave for `tab`) if it was
    /// not read yet; `tree` and the kept tree then show it. Entry ids of `tree` other than
    /// `dir` and its ancestors may change.
    pub async fn read_directory<B: Browser>(
        &self,
        browser: &B,
        tab: i64,
        tree: &mut PageTree,
        dir: EntryId,
    ) -> Result<bool, String> {
        if tree.vfs.pending_to_list(dir).is_empty() {
            return Ok(false);
        }
        let _reading = self.gates.lock(tab).await;
        let started = browser.monotonic_ms();
        let mut read = TreeRead {
            tab,
            partial: true,
            lazy: true,
            ..TreeRead::default()
        };
        let mut vfs = Vfs::clone(&tree.vfs);
        let added = read_directory(browser, tab, &mut vfs, dir, &mut read).await?;
        read.total_ms = browser.monotonic_ms() - started;
        *self.last_read.borrow_mut() = Some(read);
        self.replace(tab, tree, vfs, None);
        Ok(added)
    }

    /// Read the whole page under `tree` (for commands that search or read all of it), keeping
    /// the names given so far.
    pub async fn read_whole<B: Browser>(
        &self,
        browser: &B,
        tab: i64,
        tree: &mut PageTree,
    ) -> Result<(), String> {
        let _reading = self.gates.lock(tab).await;
        let names = tree.vfs.name_book().clone();
        let main_frame = tree
            .vfs
            .entry(tree.vfs.root())
            .map(|e| e.frame_id.clone())
            .unwrap_or_default();
        let objects = Objects::default();
        let no_targets = FrameTargets::default();
        let dom = Dom::new(browser, tab, &no_targets, &main_frame, &objects);
        let fetched = fetch(&dom, names, false).await;
        objects.release(browser).await;
        let fetched = fetched?;
        *self.last_read.borrow_mut() = Some(fetched.read);
        // Frames may have come or gone since the tree was entered: their nodes are
        // addressed through the targets this read found.
        self.replace(tab, tree, fetched.vfs, Some(Rc::new(fetched.targets)));
        Ok(())
    }

    /// `tree` becomes `vfs` (with `targets`, when given), and so does the kept tree if it
    /// still is the one `tree` had (a command of another session may have replaced it
    /// meanwhile).
    fn replace(&self, tab: i64, tree: &mut PageTree, vfs: Vfs, targets: Option<Rc<FrameTargets>>) {
        let old = std::mem::replace(&mut tree.vfs, Rc::new(vfs));
        if let Some(targets) = targets {
            tree.targets = targets;
        }
        if let Some(page) = self.pages.borrow_mut().get_mut(&tab) {
            if Rc::ptr_eq(&page.vfs, &old) {
                page.vfs = tree.vfs.clone();
                page.targets = tree.targets.clone();
            }
        }
    }
}
