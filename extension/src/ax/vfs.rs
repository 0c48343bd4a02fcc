//! The mapped filesystem of one page: entries (directories, `[x]` and `[-]` files) built from
//! the accessibility nodes in a [`Store`], kept in an arena so that one directory can be
//! rebuilt (a subtree re-read after a DOM mutation, children fetched on demand, a frame read
//! late) without touching entries elsewhere.
//!
//! It decides kinds and names; it must not talk to CDP (the kernel fetches and hands nodes
//! in) nor format command output (`listing` and the kernel do).

use std::collections::{HashMap, HashSet, VecDeque};

use thiserror::Error;

use super::cdp::{AxNode, ChildFrame, PageSnapshot};
use super::names::{ElementKey, Fate, NameBook};
use super::naming;
use super::roles::{self, EntryKind};
use super::store::{Listing, NodeKey, NodeRef, Store, TextLenWalk, MAX_ANCESTOR_STEPS};

/// Bound on entries in one page's filesystem; past it directories stay incomplete.
pub const MAX_ENTRIES: usize = 1_000_000;

/// Handle of an entry in a [`Vfs`]. Stable while the entry exists; an entry rebuilt by
/// [`Vfs::replace_subtree`] keeps its handle, its former descendants' handles become invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(u32);

/// One file or directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Unique among its siblings; empty for the page root.
    pub name: String,
    pub kind: EntryKind,
    /// The AX role (`button`, `RootWebArea`…).
    pub role: String,
    /// The accessible name (else the description); empty when the node has neither.
    pub accessible_name: String,
    /// The AX value: a field's text, a slider's number.
    pub value: Option<String>,
    /// The `url` property of links and documents.
    pub url: Option<String>,
    /// The `checked` property of checkboxes, radios and switches.
    pub checked: Option<String>,
    /// For clicks, scrolls and reads through `DOM.resolveNode` (in this entry's frame).
    pub backend_node_id: Option<i64>,
    pub ax_node_id: String,
    /// The frame the node belongs to (`""` when the main frame's id was not given).
    pub frame_id: String,
    /// Characters of visible text in the subtree (as far as it is loaded).
    pub text_len: usize,
    pub parent: Option<EntryId>,
    base_name: String,
    /// The name at [`naming::LONGER_NAME_CHARS`], when it says more than `base_name`: used
    /// when siblings' short names collide.
    longer_base: Option<Box<str>>,
    frame: usize,
    children: Vec<EntryId>,
    pending: Vec<NodeRef>,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Directory
    }

    /// The name the entry would have alone in its directory (`get_report_link` for the link
    /// a paragraph is named after, which holds `link`): what a bare name may still call it.
    pub fn own_name(&self) -> &str {
        &self.base_name
    }
}

impl Vfs {
    /// The parent whose name an entry's text would only repeat, so that the entry holds its
    /// role word (`reply_2/btn`); `None` for an entry named after its own text.
    fn repeated_parent(&self, entry: &Entry) -> Option<&Entry> {
        let parent = self.entry(entry.parent?)?;
        let held = naming::child_base(
            &parent.base_name,
            &parent.role,
            &entry.base_name,
            &entry.role,
        );
        (held != entry.base_name).then_some(parent)
    }

    /// The name a reply calls an entry by: its own, or with its parent's when it holds only its
    /// role word (`reply_2/btn`), so "✓ Clicked: btn" never leaves the agent guessing.
    pub fn spoken_name(&self, entry: &Entry) -> String {
        match self.repeated_parent(entry) {
            Some(parent) => format!("{}/{}", parent.name, entry.name),
            None => entry.name.clone(),
        }
    }

    /// Whether an entry's path already says its label, so a line need not: its name does, or
    /// it holds its bare role word because its parent's name says that text (`reply_2/btn`
    /// for a "Reply" button in a list item named after it).
    pub fn says_label(&self, id: EntryId) -> bool {
        let Some(entry) = self.entry(id) else {
            return false;
        };
        let label = entry.accessible_name.trim();
        label.is_empty()
            || naming::name_says_label(&entry.name, &entry.role, label)
            || (self.repeated_parent(entry).is_some()
                && naming::name_says_label(&entry.base_name, &entry.role, label))
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MapError {
    #[error("the accessibility tree is empty: nothing to map (is the page still loading?)")]
    EmptyTree,
    #[error("unknown frame {0}: read the frame's tree first (attach_frame)")]
    UnknownFrame(String),
    #[error("the replacement nodes are empty or have no node ids")]
    EmptyReplacement,
    #[error("node {node} of frame {frame} is not in the mapped tree: re-read its parent (or the whole tree)")]
    Unanchored { frame: String, node: String },
}

/// A partial re-read of one frame after DOM changes (see [`Vfs::apply_update`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    /// Whole subtrees read again (e.g. `Accessibility.queryAXTree` on a changed element):
    /// each replaces the old descendants of its root(s).
    pub subtrees: Vec<Vec<AxNode>>,
    /// Single nodes read again (`getPartialAXTree` without relatives): a parent whose child
    /// list changed (children it no longer lists are forgotten), or an ancestor whose name
    /// may follow its content.
    pub nodes: Vec<AxNode>,
}

/// What a name no entry of a directory holds once meant there ([`Vfs::former_name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormerName {
    /// Never given in this directory while the document lived.
    Unknown,
    /// Given to an element that is no longer there (removed, or moved elsewhere).
    Gone,
    /// The old name of this entry, whose label changed.
    Renamed(EntryId),
}

/// Bound on ancestors re-read above one change (see [`Vfs::ancestors_to_refresh`]).
pub const MAX_REFRESHED_ANCESTORS: usize = 8;

/// A page's filesystem. Build it with [`Vfs::from_page`]; keep it up to date with
/// [`Vfs::replace_subtree`], [`Vfs::add_nodes`] and [`Vfs::attach_frame`]. Cloning is for
/// scratch copies of small (partly read) trees.
#[derive(Clone)]
pub struct Vfs {
    store: Store,
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    by_node: HashMap<NodeKey, EntryId>,
    root: EntryId,
    live: usize,
    /// Names given in this document so far: they never move to another element.
    names: NameBook,
}

/// Per-operation scratch: text lengths are memoised for the duration of one build.
#[derive(Default)]
struct Build {
    text_len: HashMap<NodeKey, usize>,
}

/// A directory being filled: the nodes it lists that have no entry yet, the entries made so far.
struct Filling {
    at: EntryId,
    children: std::vec::IntoIter<NodeKey>,
    made: Vec<EntryId>,
    pending: Vec<NodeRef>,
    /// Children of a directory not fully read (it, or a child directory, whose name comes
    /// from its own children) are named only for now; see `rename_children`.
    provisional: bool,
    /// Entries of a directory being rebuilt whose subtrees did not change: kept as they are
    /// when their node is listed again, freed when it is not.
    reuse: HashMap<NodeKey, EntryId>,
}

impl Filling {
    fn new(at: EntryId, listing: Listing) -> Self {
        Filling {
            at,
            reuse: HashMap::new(),
            made: Vec::with_capacity(listing.children.len()),
            children: listing.children.into_iter(),
            provisional: !listing.pending.is_empty(),
            pending: listing.pending,
        }
    }
}

/// Nodes stored per step for each entry a step may make: storing a node costs a fraction of
/// making an entry.
const NODES_PER_ENTRY_STEP: usize = 4;

/// A whole page being mapped a step at a time, so that a large page never holds the worker
/// (and the heartbeat it answers) for long: its nodes go into the store, its child frames
/// are stitched in, then its directories are filled breadth first. [`Vfs::from_page_naming`]
/// is all steps at once; the result is the same however the work is cut.
pub struct Mapping {
    vfs: Vfs,
    unstored: std::vec::IntoIter<AxNode>,
    frames: std::vec::IntoIter<ChildFrame>,
    queue: VecDeque<Filling>,
    build: Build,
    /// The text below the root, summed before the root is made (else its one step would
    /// walk the whole page).
    text: Option<TextLenWalk>,
    rooted: bool,
}

impl Mapping {
    /// Begin mapping `page`, naming as [`Vfs::from_page_naming`] does.
    pub fn new(page: PageSnapshot, names: NameBook) -> Mapping {
        let mut store = Store::default();
        store.add_main_frame(page.main.frame_id, Vec::new());
        store.frames[0].choose_root(&page.main.nodes);
        Mapping {
            vfs: Vfs {
                store,
                entries: Vec::new(),
                free: Vec::new(),
                by_node: HashMap::new(),
                root: EntryId(0),
                live: 0,
                names,
            },
            unstored: page.main.nodes.into_iter(),
            frames: page.frames.into_iter(),
            queue: VecDeque::new(),
            build: Build::default(),
            text: None,
            rooted: false,
        }
    }

    /// Do about `budget` entries' worth of work; `Ok(true)` once the page is mapped.
    pub fn step(&mut self, budget: usize) -> Result<bool, MapError> {
        let budget = budget.max(1);
        let vfs = &mut self.vfs;
        if self.unstored.len() > 0 {
            let take = budget.saturating_mul(NODES_PER_ENTRY_STEP);
            vfs.store.frames[0].insert(self.unstored.by_ref().take(take));
            return Ok(false);
        }
        // Child frames link to their owners among the main frame's nodes, so they come after.
        if let Some(frame) = self.frames.next() {
            vfs.store.add_child_frame(frame);
            return Ok(false);
        }
        if !self.rooted {
            let root_id = vfs.store.frames[0]
                .root
                .clone()
                .ok_or(MapError::EmptyTree)?;
            let walk = self
                .text
                .get_or_insert_with(|| TextLenWalk::new(0, &root_id));
            let nodes = budget.saturating_mul(NODES_PER_ENTRY_STEP);
            if !walk.advance(&vfs.store, &mut self.build.text_len, nodes) {
                return Ok(false);
            }
            let (root, listing) = vfs.new_entry(0, &root_id, None, &mut self.build);
            vfs.root = root;
            if let Some(entry) = vfs.entry_mut(root) {
                entry.kind = EntryKind::Directory;
            }
            if let Some(listing) = listing {
                self.queue.push_back(Filling::new(root, listing));
            }
            self.rooted = true;
        }
        Ok(vfs.fill(&mut self.queue, budget, &mut self.build))
    }

    /// The mapped page, once [`Mapping::step`] said it is done.
    pub fn finish(mut self) -> Vfs {
        self.vfs.prune_names();
        self.vfs
    }
}

impl Vfs {
    /// Map a whole page: the main frame plus any child frames, stitched under their owners.
    /// Frames whose owner cannot be found are kept aside ([`Vfs::unattached_frames`]).
    pub fn from_page(page: PageSnapshot) -> Result<Vfs, MapError> {
        Self::from_page_naming(page, NameBook::default())
    }

    /// Map a whole page read again while its document lives: elements keep the names `names`
    /// (taken from the previous mapping, [`Vfs::take_names`]) gave them, new elements get
    /// names never used before in their directory.
    pub fn from_page_naming(page: PageSnapshot, names: NameBook) -> Result<Vfs, MapError> {
        let mut mapping = Mapping::new(page, names);
        while !mapping.step(usize::MAX)? {}
        Ok(mapping.finish())
    }

    /// The names given so far, for the next whole read of the same document
    /// ([`Vfs::from_page_naming`]); this mapping keeps an empty book.
    pub fn take_names(&mut self) -> NameBook {
        std::mem::take(&mut self.names)
    }

    /// The names given so far (see [`Vfs::take_names`]), when the mapping is shared.
    pub fn name_book(&self) -> &NameBook {
        &self.names
    }

    /// What `name` meant in directory `dir` when no child holds it now: the entry it now
    /// denotes (its label changed), or whether it was given to an element that is gone.
    pub fn former_name(&self, dir: EntryId, name: &str) -> FormerName {
        let Some(dir_key) = self.lookup_key(dir) else {
            return FormerName::Unknown;
        };
        match self.names.fate(&dir_key, name) {
            Fate::Unknown => FormerName::Unknown,
            Fate::Gone => FormerName::Gone,
            Fate::Renamed(key) => self
                .children(dir)
                .iter()
                .copied()
                .find(|&c| self.lookup_key(c).as_ref() == Some(&key))
                .map_or(FormerName::Gone, FormerName::Renamed),
        }
    }

    fn lookup_key(&self, id: EntryId) -> Option<ElementKey> {
        let entry = self.entry(id)?;
        self.names.lookup_key(
            &entry.frame_id,
            entry.backend_node_id,
            &entry.ax_node_id,
            &entry.role,
        )
    }

    fn element_key(&mut self, id: EntryId) -> Option<ElementKey> {
        let entry = self.entries.get(id.0 as usize)?.as_ref()?;
        let (frame, backend, ax, role) = (
            entry.frame_id.clone(),
            entry.backend_node_id,
            entry.ax_node_id.clone(),
            entry.role.clone(),
        );
        Some(self.names.key(&frame, backend, &ax, &role))
    }

    /// Keep the name book's records of elements no longer shown bounded.
    fn prune_names(&mut self) {
        if self.names.len() <= self.live + 1_024 {
            return;
        }
        let live: HashSet<ElementKey> = (0..self.entries.len())
            .filter_map(|i| self.lookup_key(EntryId(u32::try_from(i).unwrap_or(u32::MAX))))
            .collect();
        self.names.prune(|k| live.contains(k));
    }

    pub fn root(&self) -> EntryId {
        self.root
    }

    pub fn entry(&self, id: EntryId) -> Option<&Entry> {
        self.entries.get(id.0 as usize)?.as_ref()
    }

    fn entry_mut(&mut self, id: EntryId) -> Option<&mut Entry> {
        self.entries.get_mut(id.0 as usize)?.as_mut()
    }

    /// The entries a directory lists, in document order (empty for files).
    pub fn children(&self, id: EntryId) -> &[EntryId] {
        self.entry(id).map_or(&[], |e| e.children.as_slice())
    }

    /// Whether every child of this directory has been read. When not, [`Vfs::pending`] says
    /// which nodes need `Accessibility.getChildAXNodes` before a listing is complete.
    pub fn is_complete(&self, id: EntryId) -> bool {
        self.entry(id).is_some_and(|e| e.pending.is_empty())
    }

    pub fn pending(&self, id: EntryId) -> &[NodeRef] {
        self.entry(id).map_or(&[], |e| e.pending.as_slice())
    }

    /// Whether `dir` or anything below it still has children to read (a tree read a
    /// directory at a time).
    pub fn has_unread(&self, dir: EntryId) -> bool {
        !self.is_complete(dir)
            || self
                .descendants(dir, usize::MAX)
                .iter()
                .any(|&(id, _)| !self.is_complete(id))
    }

    /// What must still be fetched before `ls dir` shows final names and kinds: the
    /// directory's own pending nodes and those of its child directories whose kind or name
    /// comes from their children (a list item or row is named after its children, and a
    /// paragraph is a file or a directory depending on them). Fetch these with `getChildAXNodes`, hand the answers to [`Vfs::add_nodes`],
    /// and repeat until it is empty.
    pub fn pending_to_list(&self, dir: EntryId) -> Vec<NodeRef> {
        let mut out: Vec<NodeRef> = self.pending(dir).to_vec();
        for &child in self.children(dir) {
            if !self.entry(child).is_some_and(shaped_by_children) {
                continue;
            }
            for node in self.pending(child) {
                if !out.contains(node) {
                    out.push(node.clone());
                }
            }
        }
        out
    }

    /// Entries currently mapped (the root included).
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// AX nodes held (all frames, wrappers and text included).
    pub fn node_count(&self) -> usize {
        self.store.node_count()
    }

    /// The accessibility node behind an entry, as DevTools sent it.
    pub fn raw_node(&self, id: EntryId) -> Option<&AxNode> {
        let entry = self.entry(id)?;
        self.store.node(entry.frame, &entry.ax_node_id)
    }

    /// Entries that are directories.
    pub fn directory_count(&self) -> usize {
        self.entries.iter().flatten().filter(|e| e.is_dir()).count()
    }

    /// Child frames read (stitched or not).
    pub fn frame_count(&self) -> usize {
        self.store.frames.len().saturating_sub(1)
    }

    /// Ids of child frames whose owning `Iframe` was not found in their parent frame.
    pub fn unattached_frames(&self) -> Vec<String> {
        self.store
            .frames
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(index, frame)| {
                let owner = frame.parent.zip(frame.owner_backend_node_id);
                !owner.is_some_and(|(parent, backend)| {
                    self.store
                        .node_with_backend_id(parent, backend)
                        .and_then(|id| self.store.node(parent, &id).cloned())
                        .is_some_and(|n| self.store.stitched_frame(parent, &n) == Some(*index))
                })
            })
            .map(|(_, frame)| frame.frame_id.clone())
            .collect()
    }

    /// The entry showing `(frame, AX node)`, if that node is an entry.
    pub fn entry_for_node(&self, frame_id: &str, ax_node_id: &str) -> Option<EntryId> {
        let frame = self.store.frame_index(frame_id)?;
        self.by_node.get(&(frame, ax_node_id.to_string())).copied()
    }

    /// The entry that shows `(frame, AX node)`: the node's own entry, or the closest
    /// ancestor's when the node is a flattened wrapper or text inside a file. Where a change
    /// reported for that node becomes visible.
    pub fn nearest_entry_for_node(&self, frame_id: &str, ax_node_id: &str) -> Option<EntryId> {
        let frame = self.store.frame_index(frame_id)?;
        self.nearest_entry(frame, ax_node_id)
    }

    /// [`Vfs::nearest_entry_for_node`] for a DOM node known by its backend id (what
    /// `DOM.describeNode` gives for a mutation's parent). Linear in the frame's nodes.
    pub fn nearest_entry_for_backend_node(&self, frame_id: &str, backend: i64) -> Option<EntryId> {
        let frame = self.store.frame_index(frame_id)?;
        let node = self.store.node_with_backend_id(frame, backend)?;
        self.nearest_entry(frame, &node)
    }

    /// Names from the root down to `id` (empty for the root).
    pub fn path_of(&self, id: EntryId) -> Vec<String> {
        let mut names = Vec::new();
        let mut current = Some(id);
        let mut steps = 0usize;
        while let Some(at) = current {
            steps += 1;
            let Some(entry) = self.entry(at) else { break };
            if entry.parent.is_none() || steps > MAX_ANCESTOR_STEPS {
                break;
            }
            names.push(entry.name.clone());
            current = entry.parent;
        }
        names.reverse();
        names
    }

    /// Re-read part of the tree: `nodes` is a fresh read of one subtree of `frame_id` (its
    /// root first, e.g. from `getPartialAXTree`/`getChildAXNodes` after a DOM mutation). The
    /// old descendants of that root are forgotten, the new ones mapped, and only the
    /// directory showing them is rebuilt: entries in other directories keep their names and
    /// handles. Returns the rebuilt directory.
    pub fn replace_subtree(
        &mut self,
        frame_id: &str,
        nodes: Vec<AxNode>,
    ) -> Result<EntryId, MapError> {
        let frame = self
            .store
            .frame_index(frame_id)
            .ok_or_else(|| MapError::UnknownFrame(frame_id.to_string()))?;
        let ids: HashSet<&str> = nodes.iter().map(|n| n.node_id.as_str()).collect();
        let subtree_root = nodes
            .iter()
            .find(|n| {
                !n.node_id.is_empty() && n.parent_id.as_deref().is_none_or(|p| !ids.contains(p))
            })
            .map(|n| n.node_id.clone())
            .ok_or(MapError::EmptyReplacement)?;
        // A node never seen has no place yet: its parent's child list must be re-read.
        if self.store.node(frame, &subtree_root).is_none() {
            return Err(MapError::Unanchored {
                frame: frame_id.to_string(),
                node: subtree_root,
            });
        }
        self.store.remove_descendants(frame, &subtree_root);
        self.store.frames[frame].upsert(nodes);
        let anchor =
            self.nearest_entry(frame, &subtree_root)
                .ok_or_else(|| MapError::Unanchored {
                    frame: frame_id.to_string(),
                    node: subtree_root.clone(),
                })?;
        self.remap(anchor);
        Ok(anchor)
    }

    /// Whether node `ax_node_id` of `frame_id` is in the mapped page (shown or not).
    pub fn has_node(&self, frame_id: &str, ax_node_id: &str) -> bool {
        self.store
            .frame_index(frame_id)
            .is_some_and(|frame| self.store.node(frame, ax_node_id).is_some())
    }

    /// The backend DOM node id of node `ax_node_id` of `frame_id`, if it is mapped and has one.
    pub fn backend_of(&self, frame_id: &str, ax_node_id: &str) -> Option<i64> {
        let frame = self.store.frame_index(frame_id)?;
        self.store.node(frame, ax_node_id)?.backend_dom_node_id
    }

    /// For DOM nodes that changed (their backend ids), the backend ids of the ancestors whose
    /// accessible names may follow their content: each changed node's ancestors up to the
    /// first structural container ([`roles::NAME_BOUNDARIES`]), at most
    /// [`MAX_REFRESHED_ANCESTORS`] each, without the changed nodes themselves. Changed nodes
    /// unknown to the mapping (just inserted) contribute nothing: their parent changed too.
    pub fn ancestors_to_refresh(&self, frame_id: &str, changed: &[i64]) -> Vec<i64> {
        let Some(frame) = self.store.frame_index(frame_id) else {
            return Vec::new();
        };
        let store = &self.store.frames[frame];
        let wanted: HashSet<i64> = changed.iter().copied().collect();
        let starts: Vec<&AxNode> = store
            .nodes
            .values()
            .filter(|n| n.backend_dom_node_id.is_some_and(|b| wanted.contains(&b)))
            .collect();
        let mut out: Vec<i64> = Vec::new();
        for start in starts {
            let mut current = start.parent_id.clone();
            for _ in 0..MAX_REFRESHED_ANCESTORS {
                let Some(node) = current.as_deref().and_then(|id| store.nodes.get(id)) else {
                    break;
                };
                if roles::is_name_boundary(node.role()) {
                    break;
                }
                if let Some(backend) = node.backend_dom_node_id {
                    if !wanted.contains(&backend) && !out.contains(&backend) {
                        out.push(backend);
                    }
                }
                current = node.parent_id.clone();
            }
        }
        out
    }

    /// Apply a partial re-read of `frame_id` ([`Update`]) and rebuild the directories that
    /// show what changed; entries elsewhere keep their names and handles. Returns the rebuilt
    /// directories. On `Err` the filesystem may be half updated and must be read again whole:
    /// the update did not cover the change (a subtree whose place is unknown, a child that
    /// was never read).
    pub fn apply_update(
        &mut self,
        frame_id: &str,
        update: Update,
    ) -> Result<Vec<EntryId>, MapError> {
        let frame = self
            .store
            .frame_index(frame_id)
            .ok_or_else(|| MapError::UnknownFrame(frame_id.to_string()))?;
        let unanchored = |node: &str| MapError::Unanchored {
            frame: frame_id.to_string(),
            node: node.to_string(),
        };
        // Where each subtree hangs: a root already mapped, or a new root under a known parent.
        let mut roots: Vec<String> = Vec::new();
        let mut new_roots: Vec<(String, String)> = Vec::new();
        for nodes in &update.subtrees {
            let ids: HashSet<&str> = nodes.iter().map(|n| n.node_id.as_str()).collect();
            for node in nodes {
                if node.node_id.is_empty()
                    || node.parent_id.as_deref().is_some_and(|p| ids.contains(p))
                {
                    continue;
                }
                let known = self.store.node(frame, &node.node_id).is_some();
                let parent_known = node
                    .parent_id
                    .as_deref()
                    .is_some_and(|p| self.store.node(frame, p).is_some());
                if !known && !parent_known {
                    return Err(unanchored(&node.node_id));
                }
                if let (false, Some(parent)) = (known, node.parent_id.as_ref()) {
                    new_roots.push((node.node_id.clone(), parent.clone()));
                }
                roots.push(node.node_id.clone());
            }
        }
        // Children a re-read parent no longer lists are gone (or moved, and then re-read
        // below with their new parent).
        for node in &update.nodes {
            // A set: a list of thousands of items compared child by child is quadratic.
            let listed: HashSet<&str> = node.child_ids.iter().map(String::as_str).collect();
            let dropped: Vec<String> = self
                .store
                .node(frame, &node.node_id)
                .map(|old| {
                    old.child_ids
                        .iter()
                        .filter(|c| !listed.contains(c.as_str()))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            for child in dropped {
                self.store.remove_subtree(frame, &child);
            }
        }
        for root in &roots {
            self.store.remove_descendants(frame, root);
        }
        let mut touched: Vec<String> = roots.clone();
        let mut upserted: Vec<String> = Vec::new();
        for nodes in update.subtrees {
            upserted.extend(nodes.iter().map(|n| n.node_id.clone()));
            self.store.frames[frame].upsert(nodes);
        }
        for node in &update.nodes {
            touched.push(node.node_id.clone());
            upserted.push(node.node_id.clone());
        }
        self.store.frames[frame].upsert(update.nodes);
        for id in &upserted {
            let Some(node) = self.store.node(frame, id) else {
                continue;
            };
            if let Some(missing) = node
                .child_ids
                .iter()
                .find(|c| self.store.node(frame, c).is_none())
            {
                return Err(unanchored(missing));
            }
        }
        // A subtree new to the mapping must be listed by its parent, read again with it.
        for (root, parent) in &new_roots {
            let listed = self
                .store
                .node(frame, parent)
                .is_some_and(|p| p.child_ids.contains(root));
            if !listed {
                return Err(unanchored(root));
            }
        }
        let mut anchors: Vec<EntryId> = Vec::new();
        for id in &touched {
            let anchor = self
                .nearest_entry(frame, id)
                .ok_or_else(|| unanchored(id))?;
            if !anchors.contains(&anchor) {
                anchors.push(anchor);
            }
        }
        // Rebuilding a directory rebuilds everything below it: keep only the outermost.
        let outermost: Vec<EntryId> = anchors
            .iter()
            .copied()
            .filter(|&a| !self.has_ancestor_in(a, &anchors))
            .collect();
        // What changed, and every node above it: entries of other nodes are kept.
        let mut changed: HashSet<String> = HashSet::new();
        for id in touched.iter().chain(&upserted) {
            let mut current = Some(id.clone());
            for _ in 0..MAX_ANCESTOR_STEPS {
                let Some(at) = current.take() else { break };
                current = self
                    .store
                    .node(frame, &at)
                    .and_then(|n| n.parent_id.clone());
                if !changed.insert(at) {
                    break;
                }
            }
        }
        for &anchor in &outermost {
            self.remap_keeping(anchor, &|entry| {
                entry.frame != frame || !changed.contains(&entry.ax_node_id)
            });
        }
        self.prune_names();
        Ok(outermost)
    }

    fn has_ancestor_in(&self, id: EntryId, set: &[EntryId]) -> bool {
        let mut current = self.entry(id).and_then(|e| e.parent);
        let mut steps = 0usize;
        while let Some(at) = current {
            steps += 1;
            if set.contains(&at) || steps > MAX_ANCESTOR_STEPS {
                return set.contains(&at);
            }
            current = self.entry(at).and_then(|e| e.parent);
        }
        false
    }

    /// Add nodes fetched on demand (the answer of `getChildAXNodes` for a pending node)
    /// without forgetting anything, and rebuild the directories that show them. Returns the
    /// rebuilt directories.
    pub fn add_nodes(
        &mut self,
        frame_id: &str,
        nodes: Vec<AxNode>,
    ) -> Result<Vec<EntryId>, MapError> {
        let frame = self
            .store
            .frame_index(frame_id)
            .ok_or_else(|| MapError::UnknownFrame(frame_id.to_string()))?;
        let parents: Vec<String> = nodes
            .iter()
            .filter(|n| !n.node_id.is_empty())
            .map(|n| n.parent_id.clone().unwrap_or_else(|| n.node_id.clone()))
            .collect();
        if parents.is_empty() {
            return Err(MapError::EmptyReplacement);
        }
        self.store.frames[frame].upsert(nodes);
        let mut anchors: Vec<EntryId> = Vec::new();
        for parent in parents {
            if let Some(anchor) = self.nearest_entry(frame, &parent) {
                if !anchors.contains(&anchor) {
                    anchors.push(anchor);
                }
            }
        }
        if anchors.is_empty() {
            return Err(MapError::Unanchored {
                frame: frame_id.to_string(),
                node: String::new(),
            });
        }
        // Rebuilding a directory rebuilds everything below it: skip anchors inside another.
        let outer: Vec<EntryId> = anchors
            .iter()
            .copied()
            .filter(|&a| !anchors.iter().any(|&b| b != a && self.is_ancestor(b, a)))
            .collect();
        for &anchor in &outer {
            self.remap(anchor);
        }
        Ok(outer)
    }

    /// Read (or re-read) a child frame after the page was mapped, e.g. an out-of-process
    /// frame attached late. Its owner `Iframe` directory is rebuilt; returns it, or `None`
    /// when the owner is not mapped (the frame is then listed by `unattached_frames`).
    pub fn attach_frame(&mut self, frame: ChildFrame) -> Option<EntryId> {
        let (index, attached) = self.store.add_child_frame(frame);
        if !attached {
            return None;
        }
        let stored = &self.store.frames[index];
        let parent = stored.parent?;
        let owner = self
            .store
            .node_with_backend_id(parent, stored.owner_backend_node_id?)?;
        let anchor = self.nearest_entry(parent, &owner)?;
        self.remap(anchor);
        Some(anchor)
    }

    fn is_ancestor(&self, ancestor: EntryId, of: EntryId) -> bool {
        let mut current = self.entry(of).and_then(|e| e.parent);
        let mut steps = 0usize;
        while let Some(at) = current {
            if at == ancestor {
                return true;
            }
            steps += 1;
            if steps > MAX_ANCESTOR_STEPS {
                return false;
            }
            current = self.entry(at).and_then(|e| e.parent);
        }
        false
    }

    /// The entry that shows `(frame, id)`: itself, or the closest ancestor that is an entry
    /// (across frame boundaries, through the owning `Iframe`).
    fn nearest_entry(&self, frame: usize, id: &str) -> Option<EntryId> {
        let mut frame = frame;
        let mut current = id.to_string();
        for _ in 0..MAX_ANCESTOR_STEPS {
            if let Some(&entry) = self.by_node.get(&(frame, current.clone())) {
                return Some(entry);
            }
            match self
                .store
                .node(frame, &current)
                .and_then(|n| n.parent_id.clone())
            {
                Some(parent) => current = parent,
                None => {
                    let stored = self.store.frames.get(frame)?;
                    let parent = stored.parent?;
                    current = self
                        .store
                        .node_with_backend_id(parent, stored.owner_backend_node_id?)?;
                    frame = parent;
                }
            }
        }
        None
    }

    /// Rebuild one entry from the store: its own fields, its whole subtree, and the names of
    /// its siblings (only they can be affected by its name changing).
    fn remap(&mut self, id: EntryId) {
        self.remap_keeping(id, &|_| false);
    }

    /// [`Vfs::remap`], keeping as they are the child entries `unchanged` says nothing below
    /// changed, when they are listed again: rebuilding a list of thousands of items after one
    /// was added then costs one item, not the list.
    fn remap_keeping(&mut self, id: EntryId, unchanged: &dyn Fn(&Entry) -> bool) {
        let Some(entry) = self.entry(id) else { return };
        let (frame, ax, old_len, parent) = (
            entry.frame,
            entry.ax_node_id.clone(),
            entry.text_len,
            entry.parent,
        );
        let old_children = self
            .entry_mut(id)
            .map(|e| std::mem::take(&mut e.children))
            .unwrap_or_default();
        let mut reuse = HashMap::new();
        let mut build = Build::default();
        for child in old_children {
            match self.entry(child) {
                Some(kept) if unchanged(kept) => {
                    let key = (kept.frame, kept.ax_node_id.clone());
                    // Its text did not change either: the walk summing the text below `id`
                    // stops here instead of going through every kept subtree again.
                    build.text_len.insert(key.clone(), kept.text_len);
                    reuse.insert(key, child);
                }
                _ => self.free_subtree(child),
            }
        }
        let (fields, listing) = self.describe(frame, &ax, &mut build);
        let is_root = parent.is_none();
        let listing = match listing {
            None if is_root => Some(self.store.listing(frame, &ax)),
            other => other,
        };
        let new_len = fields.text_len;
        if let Some(entry) = self.entry_mut(id) {
            entry.kind = if is_root {
                EntryKind::Directory
            } else {
                fields.kind
            };
            entry.role = fields.role;
            entry.accessible_name = fields.accessible_name;
            entry.value = fields.value;
            entry.url = fields.url;
            entry.checked = fields.checked;
            entry.backend_node_id = fields.backend_node_id;
            entry.text_len = new_len;
            entry.base_name = fields.base_name;
            entry.longer_base = fields.longer_base;
            entry.pending.clear();
        }
        match listing {
            Some(listing) => {
                let mut filling = Filling::new(id, listing);
                filling.reuse = reuse;
                self.fill(&mut VecDeque::from([filling]), usize::MAX, &mut build);
            }
            None => {
                for (_, unlisted) in reuse {
                    self.free_subtree(unlisted);
                }
            }
        }
        if let Some(parent) = parent {
            self.rename_children(parent);
        }
        // Ancestors' text lengths follow the change.
        let mut current = parent;
        let mut steps = 0usize;
        while let Some(at) = current {
            steps += 1;
            if steps > MAX_ANCESTOR_STEPS {
                break;
            }
            let Some(entry) = self.entry_mut(at) else {
                break;
            };
            entry.text_len = entry
                .text_len
                .saturating_sub(old_len)
                .saturating_add(new_len);
            current = entry.parent;
        }
    }

    /// Name `dir`'s children: those named before in this document keep their names, new
    /// ones get names never used there ([`NameBook`]).
    fn rename_children(&mut self, dir: EntryId) {
        let provisional = !self.pending_to_list(dir).is_empty();
        self.name_children(dir, provisional);
    }

    /// Name `dir`'s children. While `dir` is not fully read (`provisional`: a tree read a
    /// directory at a time), names given before hold and the others are made in document
    /// order, but none is recorded: the names are given for good once all of them are known, so they
    /// equal what a whole read gives. Such names are never shown: a directory is read before
    /// it is listed.
    fn name_children(&mut self, dir: EntryId, provisional: bool) {
        let children = self.children(dir).to_vec();
        let Some(dir_key) = self.element_key(dir) else {
            return;
        };
        let (dir_base, dir_role) = self
            .entry(dir)
            .map(|e| (e.base_name.clone(), e.role.clone()))
            .unwrap_or_default();
        let mut bases: Vec<String> = children
            .iter()
            .map(|&child| {
                self.entry(child)
                    .map(|e| naming::child_base(&dir_base, &dir_role, &e.base_name, &e.role))
                    .unwrap_or_default()
            })
            .collect();
        self.lengthen_colliding(&children, &mut bases);
        let mut keyed: Vec<(ElementKey, String)> = Vec::with_capacity(children.len());
        for (&child, base) in children.iter().zip(bases) {
            if let Some(key) = self.element_key(child) {
                keyed.push((key, base));
            }
        }
        let pairs: Vec<(ElementKey, &str)> =
            keyed.iter().map(|(k, b)| (k.clone(), b.as_str())).collect();
        let names = if provisional {
            // Names already given hold; new ones are not recorded.
            self.names.clone().name_children(&dir_key, &pairs)
        } else {
            self.names.name_children(&dir_key, &pairs)
        };
        for (child, name) in children.into_iter().zip(names) {
            if let Some(entry) = self.entry_mut(child) {
                entry.name = name;
            }
        }
    }

    /// Siblings whose short names are equal though their labels are not get their longer
    /// names ([`naming::LONGER_NAME_CHARS`]), so words, not numbers, tell them apart.
    fn lengthen_colliding(&self, children: &[EntryId], bases: &mut [String]) {
        let mut count: HashMap<&str, usize> = HashMap::with_capacity(bases.len());
        for base in bases.iter() {
            *count.entry(base.as_str()).or_default() += 1;
        }
        let colliding: Vec<usize> = (0..bases.len())
            .filter(|&i| count.get(bases[i].as_str()).is_some_and(|n| *n > 1))
            .collect();
        if colliding.is_empty() {
            return;
        }
        for i in colliding {
            let longer = children
                .get(i)
                .and_then(|&c| self.entry(c))
                .and_then(|e| e.longer_base.as_deref());
            if let Some(longer) = longer {
                bases[i] = longer.to_string();
            }
        }
    }

    fn free_subtree(&mut self, id: EntryId) {
        let mut stack = vec![id];
        while let Some(at) = stack.pop() {
            let Some(slot) = self.entries.get_mut(at.0 as usize) else {
                continue;
            };
            let Some(entry) = slot.take() else { continue };
            self.by_node.remove(&(entry.frame, entry.ax_node_id));
            self.free.push(at.0);
            self.live = self.live.saturating_sub(1);
            stack.extend(entry.children);
        }
    }

    /// Fill the directories in `queue`, breadth first, until it is empty (`true`) or about
    /// `budget` entries were made; a directory left half filled stays at the queue's front.
    /// Nodes already shown elsewhere are skipped (cycles, or a node listed by two parents).
    fn fill(&mut self, queue: &mut VecDeque<Filling>, budget: usize, build: &mut Build) -> bool {
        let mut made = 0usize;
        while let Some(mut filling) = queue.pop_front() {
            for (frame, node) in filling.children.by_ref() {
                let key = (frame, node);
                if let Some(kept) = filling.reuse.remove(&key) {
                    if let Some(entry) = self.entry(kept) {
                        filling.provisional |=
                            !entry.pending.is_empty() && shaped_by_children(entry);
                    }
                    filling.made.push(kept);
                    continue;
                }
                let (frame, node) = key;
                if self.by_node.contains_key(&(frame, node.clone())) {
                    continue;
                }
                if self.live >= MAX_ENTRIES {
                    filling.pending.push(self.store.node_ref(frame, &node));
                    filling.children = Vec::new().into_iter();
                    break;
                }
                let (child, child_listing) = self.new_entry(frame, &node, Some(filling.at), build);
                filling.made.push(child);
                made += 1;
                if let Some(child_listing) = child_listing {
                    filling.provisional |= !child_listing.pending.is_empty()
                        && self.entry(child).is_some_and(shaped_by_children);
                    queue.push_back(Filling::new(child, child_listing));
                }
                if made >= budget {
                    break;
                }
            }
            if filling.children.len() > 0 {
                queue.push_front(filling);
                return false;
            }
            for (_, unlisted) in filling.reuse.drain() {
                self.free_subtree(unlisted);
            }
            let at = filling.at;
            if let Some(entry) = self.entry_mut(at) {
                entry.children = filling.made;
                entry.pending = filling.pending;
            }
            self.name_children(at, filling.provisional);
            if made >= budget {
                return queue.is_empty();
            }
        }
        true
    }

    /// Create the entry for `(frame, id)`; for a directory also return its listing, so it is
    /// computed once.
    fn new_entry(
        &mut self,
        frame: usize,
        id: &str,
        parent: Option<EntryId>,
        build: &mut Build,
    ) -> (EntryId, Option<Listing>) {
        let (fields, listing) = self.describe(frame, id, build);
        // The root is always a directory, whatever its role.
        let listing = match listing {
            None if parent.is_none() => Some(self.store.listing(frame, id)),
            other => other,
        };
        let entry = Entry {
            name: String::new(),
            kind: fields.kind,
            role: fields.role,
            accessible_name: fields.accessible_name,
            value: fields.value,
            url: fields.url,
            checked: fields.checked,
            backend_node_id: fields.backend_node_id,
            ax_node_id: id.to_string(),
            frame_id: self
                .store
                .frames
                .get(frame)
                .map(|f| f.frame_id.clone())
                .unwrap_or_default(),
            text_len: fields.text_len,
            parent,
            base_name: fields.base_name,
            longer_base: fields.longer_base,
            frame,
            children: Vec::new(),
            pending: Vec::new(),
        };
        let handle = match self.free.pop() {
            Some(slot) => {
                self.entries[slot as usize] = Some(entry);
                EntryId(slot)
            }
            None => {
                // MAX_ENTRIES keeps this far below u32::MAX.
                let slot = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
                self.entries.push(Some(entry));
                EntryId(slot)
            }
        };
        self.live += 1;
        self.by_node.insert((frame, id.to_string()), handle);
        (handle, listing)
    }

    /// Kind, label and the rest of an entry's fields for `(frame, id)`, plus its listing when
    /// one was needed to decide (or it is a directory).
    fn describe(&self, frame: usize, id: &str, build: &mut Build) -> (Fields, Option<Listing>) {
        let Some(node) = self.store.node(frame, id) else {
            return (
                Fields {
                    kind: EntryKind::Directory,
                    base_name: "node".into(),
                    ..Fields::default()
                },
                Some(Listing {
                    children: Vec::new(),
                    pending: vec![self.store.node_ref(frame, id)],
                }),
            );
        };
        let role = node.role().to_string();
        let mut label = node.name();
        if label.is_empty() {
            label = node.description();
        }
        let accessible_name = label.clone();
        let mut listing = None;
        let kind = if roles::is_interactive(&role) {
            EntryKind::Interactive
        } else if roles::is_container(&role) {
            EntryKind::Directory
        } else {
            // Headings, paragraphs, cells…: a directory only when something inside is more
            // than text (a link in a paragraph must stay reachable), else a file.
            let l = self.store.listing(frame, id);
            let has_structure = !l.pending.is_empty()
                || l.children.iter().any(|(f, c)| {
                    self.store
                        .node(*f, c)
                        .is_some_and(|n| !roles::is_text(n.role()))
                });
            listing = Some(l);
            if has_structure {
                EntryKind::Directory
            } else {
                EntryKind::Static
            }
        };
        if kind == EntryKind::Directory && listing.is_none() {
            listing = Some(self.store.listing(frame, id));
        }
        if label.is_empty() && !roles::NAMED_BY_ROLE.contains(&role.as_str()) {
            // Rows, list items, paragraphs have no accessible name: their children's text
            // names them, which stays the same on every read of an unchanged page.
            let l = match &listing {
                Some(l) => l,
                None => listing.insert(self.store.listing(frame, id)),
            };
            label = self.children_text(l);
        }
        let (base_name, longer_base) = naming::base_names(&role, &label);
        let fields = Fields {
            kind,
            base_name,
            longer_base: longer_base.map(String::into_boxed_str),
            accessible_name,
            value: node.value(),
            url: node.property("url"),
            checked: node.property("checked"),
            backend_node_id: node.backend_dom_node_id,
            text_len: self.store.text_len(frame, id, &mut build.text_len),
            role,
        };
        let listing = if kind == EntryKind::Directory {
            listing
        } else {
            None
        };
        (fields, listing)
    }

    /// The names of a listing's children joined, long enough to make a name.
    fn children_text(&self, listing: &Listing) -> String {
        let mut text = String::new();
        for (frame, child) in &listing.children {
            let Some(node) = self.store.node(*frame, child) else {
                continue;
            };
            let name = node.name();
            if name.is_empty() {
                continue;
            }
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&name);
            if text.chars().count() > 2 * naming::MAX_NAME_CHARS {
                break;
            }
        }
        text
    }
}

#[derive(Default)]
struct Fields {
    kind: EntryKind,
    role: String,
    accessible_name: String,
    value: Option<String>,
    url: Option<String>,
    checked: Option<String>,
    backend_node_id: Option<i64>,
    text_len: usize,
    base_name: String,
    longer_base: Option<Box<str>>,
}

/// Whether an entry's kind or name comes from its children: a named container or control is
/// what it is whatever it holds (a list of 10,000 items needs none of them read to be listed
/// by its parent); a paragraph, a heading or an unnamed row is not.
fn shaped_by_children(entry: &Entry) -> bool {
    let role = entry.role.as_str();
    let kind_fixed = roles::is_interactive(role) || roles::is_container(role);
    let name_fixed = !entry.accessible_name.is_empty() || roles::NAMED_BY_ROLE.contains(&role);
    !(kind_fixed && name_fixed)
}

impl std::fmt::Debug for Vfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vfs")
            .field("entries", &self.live)
            .field("nodes", &self.store.node_count())
            .field("frames", &self.store.frames.len())
            .finish_non_exhaustive()
    }
}
