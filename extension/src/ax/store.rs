//! The accessibility nodes read so far, per frame, and the structural questions asked of
//! them: which nodes a directory lists once wrappers are flattened and child frames stitched
//! in, which of them are still unfetched, how much text lies below a node.
//!
//! It owns raw nodes only; entries, names and paths belong to `vfs`. Every walk is iterative
//! and bounded in steps, and guarded against cycles, so malformed trees cannot hang or
//! overflow the stack.

use std::collections::{HashMap, HashSet};

use super::cdp::{AxNode, ChildFrame};
use super::roles;

/// Bound on nodes visited to list one directory (wrappers included).
const MAX_LISTING_STEPS: usize = 200_000;
/// Bound on nodes visited when walking up parents.
pub(crate) const MAX_ANCESTOR_STEPS: usize = 10_000;

/// A node in a given frame: node ids are only unique within their frame.
pub(crate) type NodeKey = (usize, String);

/// An AX node of a frame, as the kernel must name it to CDP (`getChildAXNodes {id}` sent to
/// that frame's session, or with `frameId`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeRef {
    pub frame_id: String,
    pub ax_node_id: String,
}

#[derive(Clone)]
pub(crate) struct FrameStore {
    pub frame_id: String,
    pub parent_frame_id: Option<String>,
    pub parent: Option<usize>,
    pub owner_backend_node_id: Option<i64>,
    pub out_of_process: bool,
    pub nodes: HashMap<String, AxNode>,
    pub root: Option<String>,
}

impl FrameStore {
    fn new(frame_id: String, parent: Option<usize>, owner: Option<i64>, oop: bool) -> Self {
        FrameStore {
            frame_id,
            parent_frame_id: None,
            parent,
            owner_backend_node_id: owner,
            out_of_process: oop,
            nodes: HashMap::new(),
            root: None,
        }
    }

    /// Insert or replace nodes; the first `RootWebArea`/`WebArea` (else the first node without
    /// a parent) becomes the frame's root unless it already has one.
    pub fn upsert(&mut self, nodes: Vec<AxNode>) {
        self.choose_root(&nodes);
        self.insert(nodes.into_iter());
    }

    /// The root part of [`FrameStore::upsert`]: when the frame has none yet, the root among
    /// `nodes`, which are all the nodes about to be inserted.
    pub fn choose_root(&mut self, nodes: &[AxNode]) {
        if self.root.is_none() {
            self.root = nodes
                .iter()
                .find(|n| matches!(n.role(), "RootWebArea" | "WebArea"))
                .or_else(|| nodes.iter().find(|n| n.parent_id.is_none()))
                .or_else(|| nodes.first())
                .map(|n| n.node_id.clone())
                .filter(|id| !id.is_empty());
        }
    }

    /// The insert part of [`FrameStore::upsert`], which may be given its nodes in parts.
    pub fn insert(&mut self, nodes: impl ExactSizeIterator<Item = AxNode>) {
        self.nodes.reserve(nodes.len());
        for node in nodes {
            if node.node_id.is_empty() {
                continue;
            }
            let node = match self.nodes.get(&node.node_id) {
                // A re-read node without a parent link keeps the one it had.
                Some(old) if node.parent_id.is_none() => AxNode {
                    parent_id: old.parent_id.clone(),
                    ..node
                },
                _ => node,
            };
            self.nodes.insert(node.node_id.clone(), node);
        }
    }
}

/// The nodes a directory lists, in document order, and the nodes whose children are needed
/// but not fetched yet.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub children: Vec<NodeKey>,
    pub pending: Vec<NodeRef>,
}

#[derive(Clone, Default)]
pub(crate) struct Store {
    pub frames: Vec<FrameStore>,
    /// `(parent frame, owner backend node id)` → child frame.
    owners: HashMap<(usize, i64), usize>,
}

impl Store {
    pub fn add_main_frame(&mut self, frame_id: String, nodes: Vec<AxNode>) {
        let mut frame = FrameStore::new(frame_id, None, None, false);
        frame.upsert(nodes);
        self.frames.push(frame);
    }

    /// Add (or refill) a child frame; returns its index and whether it hangs under a known
    /// parent frame. Frames may arrive in any order: links are recomputed for all of them.
    pub fn add_child_frame(&mut self, child: ChildFrame) -> (usize, bool) {
        let index = match self.frame_index(&child.frame_id).filter(|&i| i != 0) {
            Some(existing) => {
                let frame = &mut self.frames[existing];
                frame.nodes.clear();
                frame.root = None;
                existing
            }
            None => {
                self.frames.push(FrameStore::new(
                    child.frame_id.clone(),
                    None,
                    child.owner_backend_node_id,
                    child.out_of_process,
                ));
                self.frames.len() - 1
            }
        };
        let frame = &mut self.frames[index];
        frame.parent_frame_id = child.parent_frame_id;
        frame.owner_backend_node_id = child.owner_backend_node_id;
        frame.out_of_process = child.out_of_process;
        frame.upsert(child.nodes);
        self.link_frames();
        let attached = self.owners.values().any(|&i| i == index);
        (index, attached)
    }

    /// Recompute every child frame's parent and the owner table. A frame without a parent
    /// id, or naming a parent that is not read when the main frame's id is unknown, hangs
    /// under the main frame.
    fn link_frames(&mut self) {
        self.owners.clear();
        let main_id_known = self.frames.first().is_some_and(|f| !f.frame_id.is_empty());
        for index in 1..self.frames.len() {
            let parent = match self.frames[index].parent_frame_id.clone() {
                None => Some(0),
                Some(id) => self
                    .frame_index(&id)
                    .or_else(|| (!main_id_known).then_some(0)),
            };
            let parent = parent.filter(|&p| p != index);
            self.frames[index].parent = parent;
            if let (Some(parent), Some(owner)) = (parent, self.frames[index].owner_backend_node_id)
            {
                self.owners.insert((parent, owner), index);
            }
        }
    }

    /// Index of a frame by id; `""` names the main frame.
    pub fn frame_index(&self, frame_id: &str) -> Option<usize> {
        if frame_id.is_empty() {
            return (!self.frames.is_empty()).then_some(0);
        }
        self.frames.iter().position(|f| f.frame_id == frame_id)
    }

    pub fn node(&self, frame: usize, id: &str) -> Option<&AxNode> {
        self.frames.get(frame)?.nodes.get(id)
    }

    pub fn node_ref(&self, frame: usize, id: &str) -> NodeRef {
        NodeRef {
            frame_id: self
                .frames
                .get(frame)
                .map(|f| f.frame_id.clone())
                .unwrap_or_default(),
            ax_node_id: id.to_string(),
        }
    }

    pub fn node_count(&self) -> usize {
        self.frames.iter().map(|f| f.nodes.len()).sum()
    }

    /// The child frame stitched under `node` (an `Iframe` of `frame`), if one was read.
    pub fn stitched_frame(&self, frame: usize, node: &AxNode) -> Option<usize> {
        if !roles::is_frame_owner(node.role()) {
            return None;
        }
        let backend = node.backend_dom_node_id?;
        self.owners.get(&(frame, backend)).copied()
    }

    /// The node of `frame` whose backend DOM node id is `backend` (linear: used only when a
    /// frame is attached after the fact).
    pub fn node_with_backend_id(&self, frame: usize, backend: i64) -> Option<String> {
        self.frames
            .get(frame)?
            .nodes
            .values()
            .find(|n| n.backend_dom_node_id == Some(backend))
            .map(|n| n.node_id.clone())
    }

    /// Where the children of `(frame, id)` come from: its own `childIds`, or for an `Iframe`
    /// with a stitched frame, the children of that frame's root.
    fn child_source(&self, frame: usize, node: &AxNode) -> (usize, Vec<String>, String) {
        if let Some(child) = self.stitched_frame(frame, node) {
            let store = &self.frames[child];
            if let Some(root) = store.root.as_ref().and_then(|r| store.nodes.get(r)) {
                return (child, root.child_ids.clone(), root.node_id.clone());
            }
            return (child, Vec::new(), String::new());
        }
        (frame, node.child_ids.clone(), node.node_id.clone())
    }

    /// What the directory for `(frame, id)` lists: children with wrappers flattened away
    /// (their children spliced in place), dropped nodes skipped, child frames stitched under
    /// their `Iframe`. Missing children make their parent pending.
    pub fn listing(&self, frame: usize, id: &str) -> Listing {
        let mut listing = Listing::default();
        let Some(node) = self.node(frame, id) else {
            listing.pending.push(self.node_ref(frame, id));
            return listing;
        };
        let (start_frame, start_children, start_parent) = self.child_source(frame, node);
        let mut seen: HashSet<NodeKey> = HashSet::new();
        seen.insert((frame, id.to_string()));
        let mut pending_seen: HashSet<NodeKey> = HashSet::new();
        // (frame, node id, id of the parent that listed it)
        let mut stack: Vec<(usize, String, String)> = start_children
            .into_iter()
            .rev()
            .map(|c| (start_frame, c, start_parent.clone()))
            .collect();
        let mut steps = 0usize;
        while let Some((f, child_id, parent_id)) = stack.pop() {
            steps += 1;
            if steps > MAX_LISTING_STEPS {
                // Too large to list in one go: what is left is reported as not loaded.
                listing.pending.push(self.node_ref(f, &parent_id));
                break;
            }
            if !seen.insert((f, child_id.clone())) {
                continue;
            }
            let Some(child) = self.node(f, &child_id) else {
                if pending_seen.insert((f, parent_id.clone())) {
                    listing.pending.push(self.node_ref(f, &parent_id));
                }
                continue;
            };
            if roles::is_dropped(child) {
                continue;
            }
            if roles::is_flattened(child) {
                let (g, grandchildren, via) = self.child_source(f, child);
                stack.extend(grandchildren.into_iter().rev().map(|c| (g, c, via.clone())));
                continue;
            }
            listing.children.push((f, child_id));
        }
        listing
    }

    /// Characters of visible text (`StaticText` names) below and including `(frame, id)`,
    /// stitched frames included; memoised in `memo` across calls of one operation.
    pub fn text_len(&self, frame: usize, id: &str, memo: &mut HashMap<NodeKey, usize>) -> usize {
        let mut walk = TextLenWalk::new(frame, id);
        walk.advance(self, memo, usize::MAX);
        walk.total(memo)
    }
    /// Remove `(frame, id)` and its descendants from the store.
    pub fn remove_subtree(&mut self, frame: usize, id: &str) {
        self.remove_descendants(frame, id);
        if let Some(store) = self.frames.get_mut(frame) {
            store.nodes.remove(id);
        }
    }

    /// Remove the descendants of `(frame, id)` (not the node itself) from the store.
    pub fn remove_descendants(&mut self, frame: usize, id: &str) {
        let Some(store) = self.frames.get_mut(frame) else {
            return;
        };
        let mut stack: Vec<String> = store
            .nodes
            .get(id)
            .map(|n| n.child_ids.clone())
            .unwrap_or_default();
        let mut steps = 0usize;
        while let Some(child) = stack.pop() {
            steps += 1;
            if steps > 4 * MAX_LISTING_STEPS || child == id {
                continue;
            }
            if let Some(node) = store.nodes.remove(&child) {
                stack.extend(node.child_ids);
            }
        }
    }
}

/// The walk of [`Store::text_len`], which can stop and go on: the text below a whole page is
/// summed a slice at a time (`Mapping`). Post-order without recursion: a node is summed once
/// all its children are; memoised in the operation's `memo`.
pub(crate) struct TextLenWalk {
    key: NodeKey,
    stack: Vec<(NodeKey, bool)>,
    on_path: HashSet<NodeKey>,
    steps: usize,
}

impl TextLenWalk {
    pub fn new(frame: usize, id: &str) -> Self {
        let key = (frame, id.to_string());
        TextLenWalk {
            stack: vec![(key.clone(), false)],
            key,
            on_path: HashSet::new(),
            steps: 0,
        }
    }

    /// Walk at most `budget` nodes; `true` once the sum is known ([`TextLenWalk::total`]).
    pub fn advance(
        &mut self,
        store: &Store,
        memo: &mut HashMap<NodeKey, usize>,
        budget: usize,
    ) -> bool {
        let mut walked = 0usize;
        while walked < budget {
            let Some(((f, nid), expanded)) = self.stack.pop() else {
                return true;
            };
            walked += 1;
            self.steps += 1;
            if self.steps > 4 * MAX_LISTING_STEPS {
                self.stack.clear();
                return true;
            }
            if memo.contains_key(&(f, nid.clone())) {
                continue;
            }
            let Some(node) = store.node(f, &nid) else {
                memo.insert((f, nid), 0);
                continue;
            };
            let (g, children, _) = store.child_source(f, node);
            if roles::is_text(node.role()) {
                let own = if node.ignored {
                    0
                } else {
                    node.name().chars().count()
                };
                memo.insert((f, nid), own);
                continue;
            }
            if expanded {
                self.on_path.remove(&(f, nid.clone()));
                let total = children
                    .iter()
                    .map(|c| memo.get(&(g, c.clone())).copied().unwrap_or(0))
                    .fold(0usize, usize::saturating_add);
                memo.insert((f, nid), total);
                continue;
            }
            if !self.on_path.insert((f, nid.clone())) {
                // A cycle: count this occurrence as empty.
                memo.insert((f, nid), 0);
                continue;
            }
            self.stack.push(((f, nid), true));
            for c in children {
                if !memo.contains_key(&(g, c.clone())) && !self.on_path.contains(&(g, c.clone())) {
                    self.stack.push(((g, c), false));
                }
            }
        }
        self.stack.is_empty()
    }

    /// The sum, once [`TextLenWalk::advance`] said it is known.
    pub fn total(&self, memo: &HashMap<NodeKey, usize>) -> usize {
        memo.get(&self.key).copied().unwrap_or(0)
    }
}
