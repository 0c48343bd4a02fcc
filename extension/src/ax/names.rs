//! Which name each element of one document holds, so that a name never moves to another
//! element while the document lives.
//!
//! De-duplication by document order alone (`reply_btn`, `reply_btn_2`, …) renames siblings
//! when the page inserts a same-named element before them: `click reply_btn_2` would then hit
//! an element the agent never saw. The [`NameBook`] remembers, per directory, the name given
//! to each element and every name ever handed out there. An element keeps its name as long as
//! it stays in that directory with the same base name; a new element gets the first name
//! never used in that directory; a name whose element is gone is never given again, so it
//! fails (and says so) instead of denoting a stranger. An element whose base name changed
//! (its label changed) gets a new name, and its old one stays an alias of it.
//!
//! On a document's first read every element is new and the names are exactly those of
//! [`naming::dedup`](super::naming::dedup): an unchanged page gets the same names on every fresh read.
//!
//! Plain data, no tree: callers pass element keys and base names. It must not decide base
//! names ([`naming`](super::naming) does) nor look at entries.

use std::collections::{HashMap, HashSet, VecDeque};

/// An element of the page, as stable as the document allows: its frame and its backend DOM
/// node id with its role (two accessibility nodes can share a DOM node: a `<select>` and its
/// popup), or, for nodes the browser generates, its accessibility node id. Frames and roles
/// are interned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ElementKey {
    frame: u32,
    node: NodeRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum NodeRef {
    Dom(i64, u32),
    Ax(Box<str>),
}

/// The name an element holds and where.
#[derive(Debug, Clone)]
struct Given {
    dir: ElementKey,
    base: Box<str>,
    name: Box<str>,
}

/// What a name that no child holds now once meant in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Never given here.
    Unknown,
    /// Given to an element that is no longer in this directory (removed, or moved).
    Gone,
    /// The former name of an element that was renamed (its label changed); it is this one.
    Renamed(ElementKey),
}

/// Former names kept as aliases of renamed elements, per document.
const MAX_ALIASES: usize = 4_096;
/// Names handed out per document beyond which those of directories no longer shown are
/// forgotten (a single-page app can run for days in one document).
const MAX_COUNTERS: usize = 50_000;
/// Records of elements no longer shown kept before they are pruned.
const MAX_STALE_GIVEN: usize = 4_096;

/// Names given in one document (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct NameBook {
    frames: Vec<Box<str>>,
    roles: Vec<Box<str>>,
    given: HashMap<ElementKey, Given>,
    /// Per directory and base name: the next suffix to try. Present means the bare base was
    /// given; `n` means `base_2` … `base_{n-1}` were handed out or skipped (held by a sibling
    /// whose own base is that text, which then has its own entry here).
    next: HashMap<(ElementKey, Box<str>), u32>,
    aliases: HashMap<(ElementKey, Box<str>), ElementKey>,
    alias_order: VecDeque<(ElementKey, Box<str>)>,
}

impl NameBook {
    /// The key of an element of frame `frame_id`.
    pub fn key(
        &mut self,
        frame_id: &str,
        backend_node_id: Option<i64>,
        ax_node_id: &str,
        role: &str,
    ) -> ElementKey {
        let frame = intern(&mut self.frames, frame_id);
        let role = intern(&mut self.roles, role);
        Self::make_key(frame, backend_node_id, ax_node_id, role)
    }

    /// The key of an element, when its frame and role have been seen (else nothing was named
    /// there).
    pub fn lookup_key(
        &self,
        frame_id: &str,
        backend_node_id: Option<i64>,
        ax_node_id: &str,
        role: &str,
    ) -> Option<ElementKey> {
        let frame = self.frames.iter().position(|f| &**f == frame_id)?;
        let role = self.roles.iter().position(|r| &**r == role)?;
        Some(Self::make_key(frame, backend_node_id, ax_node_id, role))
    }

    fn make_key(
        frame: usize,
        backend_node_id: Option<i64>,
        ax_node_id: &str,
        role: usize,
    ) -> ElementKey {
        ElementKey {
            frame: u32::try_from(frame).unwrap_or(u32::MAX),
            node: match backend_node_id {
                Some(id) => NodeRef::Dom(id, u32::try_from(role).unwrap_or(u32::MAX)),
                None => NodeRef::Ax(ax_node_id.into()),
            },
        }
    }

    /// Names for the children of `dir`, in order: `(key, base name)` each. Children that hold
    /// a name here keep it; the others, in document order, get the first name never used in
    /// this directory (a sibling's literal base counts as used, as in [`naming::dedup`](super::naming::dedup)).
    pub fn name_children(
        &mut self,
        dir: &ElementKey,
        children: &[(ElementKey, &str)],
    ) -> Vec<String> {
        let mut names: Vec<Option<String>> = Vec::with_capacity(children.len());
        let mut held: HashSet<String> = HashSet::new();
        for (key, base) in children {
            let kept = self
                .given
                .get(key)
                .filter(|g| g.dir == *dir && &*g.base == *base)
                .map(|g| g.name.to_string())
                .filter(|name| !held.contains(name));
            if let Some(name) = &kept {
                held.insert(name.clone());
            }
            names.push(kept);
        }
        // Bases of the new children: a genuine `item_2` is not taken by an `item` repeat.
        let genuine: HashSet<&str> = children
            .iter()
            .zip(&names)
            .filter(|(_, n)| n.is_none())
            .map(|((_, base), _)| *base)
            .collect();
        let mut taken: HashSet<String> = names.iter().flatten().cloned().collect();
        // First the new children whose base is free take it bare (the first of each base, in
        // order), then the rest get suffixes: so a repeat never takes a sibling's literal
        // base, exactly as document-order de-duplication does.
        let mut fresh: Vec<bool> = vec![false; children.len()];
        for (i, (_, base)) in children.iter().enumerate() {
            if names[i].is_none() && !taken.contains(*base) && !self.was_used(dir, base) {
                self.next.entry((dir.clone(), (*base).into())).or_insert(2);
                taken.insert((*base).to_string());
                names[i] = Some((*base).to_string());
                fresh[i] = true;
            }
        }
        for (i, (_, base)) in children.iter().enumerate() {
            if names[i].is_none() {
                let name = self.suffixed_name(dir, base, &genuine, &taken);
                taken.insert(name.clone());
                names[i] = Some(name);
                fresh[i] = true;
            }
        }
        let mut out = Vec::with_capacity(children.len());
        for (((key, base), name), fresh) in children.iter().zip(names).zip(fresh) {
            let name = name.unwrap_or_default();
            if fresh {
                if let Some(old) = self.given.get(key).filter(|g| g.dir == *dir) {
                    // The same element under a new label: its old name stays its alias.
                    let old = old.name.clone();
                    self.alias(dir.clone(), old, key.clone());
                }
                self.given.insert(
                    key.clone(),
                    Given {
                        dir: dir.clone(),
                        base: (*base).into(),
                        name: name.as_str().into(),
                    },
                );
            }
            out.push(name);
        }
        out
    }

    /// What `name` meant in `dir`, given that no child of `dir` holds it now.
    pub fn fate(&self, dir: &ElementKey, name: &str) -> Fate {
        let slot = (dir.clone(), Box::<str>::from(name));
        if let Some(key) = self.aliases.get(&slot) {
            return Fate::Renamed(key.clone());
        }
        if self.was_used(dir, name) {
            Fate::Gone
        } else {
            Fate::Unknown
        }
    }

    /// Forget what no longer matters: records of elements not shown (`live` says which are),
    /// once there are many, and the names handed out in directories not shown, once there
    /// are very many. Bounded memory for a document that lives for days.
    pub fn prune(&mut self, live: impl Fn(&ElementKey) -> bool) {
        let stale = self.given.keys().filter(|k| !live(k)).count();
        if stale > MAX_STALE_GIVEN {
            self.given.retain(|k, _| live(k));
        }
        if self.next.len() > MAX_COUNTERS {
            self.next.retain(|(dir, _), _| live(dir));
        }
    }

    /// Elements that hold a name.
    pub fn len(&self) -> usize {
        self.given.len()
    }

    pub fn is_empty(&self) -> bool {
        self.given.is_empty()
    }

    fn alias(&mut self, dir: ElementKey, old: Box<str>, key: ElementKey) {
        let slot = (dir, old);
        if self.aliases.insert(slot.clone(), key).is_none() {
            self.alias_order.push_back(slot);
        }
        while self.alias_order.len() > MAX_ALIASES {
            if let Some(oldest) = self.alias_order.pop_front() {
                self.aliases.remove(&oldest);
            }
        }
    }

    /// Whether `name` was ever handed out in `dir`.
    fn was_used(&self, dir: &ElementKey, name: &str) -> bool {
        let slot = (dir.clone(), Box::<str>::from(name));
        if self.next.contains_key(&slot) {
            return true;
        }
        // `base_N` handed out as the N-th repeat of `base`.
        let Some((base, n)) = name.rsplit_once('_') else {
            return false;
        };
        let Ok(n) = n.parse::<u32>() else {
            return false;
        };
        n >= 2
            && self
                .next
                .get(&(dir.clone(), base.into()))
                .is_some_and(|&next| next > n)
    }

    /// `base_N` for the smallest `N` never used in `dir`, not held by a sibling and not a
    /// new sibling's literal base.
    fn suffixed_name(
        &mut self,
        dir: &ElementKey,
        base: &str,
        genuine: &HashSet<&str>,
        taken: &HashSet<String>,
    ) -> String {
        let slot = (dir.clone(), Box::<str>::from(base));
        let mut n = self.next.get(&slot).copied().unwrap_or(2).max(2);
        // Every skipped candidate is held by a sibling or was handed out before, so this
        // ends within (siblings + names given here) steps.
        let name = loop {
            let candidate = format!("{base}_{n}");
            n = n.saturating_add(1);
            if !genuine.contains(candidate.as_str())
                && !taken.contains(&candidate)
                && !self.was_used(dir, &candidate)
            {
                break candidate;
            }
            if n == u32::MAX {
                break format!("{base}_{}", self.given.len());
            }
        };
        self.next.insert(slot, n);
        name
    }
}

/// The index of `text` in `table`, added when new. Frames and roles are few per document.
fn intern(table: &mut Vec<Box<str>>, text: &str) -> usize {
    match table.iter().position(|t| &**t == text) {
        Some(i) => i,
        None => {
            table.push(text.into());
            table.len() - 1
        }
    }
}

/// [`naming::dedup`](super::naming::dedup) is what a fresh book gives; kept here as the reference for tests.
#[cfg(test)]
fn reference(bases: &[&str]) -> Vec<String> {
    super::naming::dedup(bases)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(book: &mut NameBook, ids: &[i64]) -> Vec<ElementKey> {
        ids.iter()
            .map(|&i| book.key("main", Some(i), "", "button"))
            .collect()
    }

    fn name(book: &mut NameBook, dir: &ElementKey, kids: &[(ElementKey, &str)]) -> Vec<String> {
        book.name_children(dir, kids)
    }

    #[test]
    fn a_fresh_book_names_like_document_order_dedup() {
        let cases: &[&[&str]] = &[
            &["reply_btn", "reply_btn", "reply_btn"],
            &["item", "item", "item_2", "item"],
            &["item_2", "item", "item"],
            &["a", "b", "a", "b", "a_2"],
        ];
        for bases in cases {
            let mut book = NameBook::default();
            let dir = book.key("main", Some(1), "", "button");
            let ks = keys(
                &mut book,
                &(10..10 + bases.len() as i64).collect::<Vec<_>>(),
            );
            let kids: Vec<(ElementKey, &str)> = ks.into_iter().zip(bases.iter().copied()).collect();
            assert_eq!(name(&mut book, &dir, &kids), reference(bases), "{bases:?}");
        }
    }

    #[test]
    fn a_sibling_inserted_first_gets_a_new_name_and_nobody_moves() {
        let mut book = NameBook::default();
        let dir = book.key("main", Some(1), "", "button");
        let ks = keys(&mut book, &[10, 11, 12]);
        let first: Vec<_> = ks.iter().cloned().map(|k| (k, "reply_btn")).collect();
        assert_eq!(
            name(&mut book, &dir, &first),
            ["reply_btn", "reply_btn_2", "reply_btn_3"]
        );
        let new = book.key("main", Some(99), "", "button");
        let again = vec![
            (new, "reply_btn"),
            (ks[0].clone(), "reply_btn"),
            (ks[1].clone(), "reply_btn"),
            (ks[2].clone(), "reply_btn"),
        ];
        assert_eq!(
            name(&mut book, &dir, &again),
            ["reply_btn_4", "reply_btn", "reply_btn_2", "reply_btn_3"]
        );
    }

    #[test]
    fn a_removed_elements_name_is_gone_and_never_given_again() {
        let mut book = NameBook::default();
        let dir = book.key("main", Some(1), "", "button");
        let ks = keys(&mut book, &[10, 11]);
        let kids: Vec<_> = ks.iter().cloned().map(|k| (k, "reply_btn")).collect();
        name(&mut book, &dir, &kids);
        // The second goes; a new one comes.
        let new = book.key("main", Some(12), "", "button");
        let now = vec![(ks[0].clone(), "reply_btn"), (new, "reply_btn")];
        assert_eq!(name(&mut book, &dir, &now), ["reply_btn", "reply_btn_3"]);
        assert_eq!(book.fate(&dir, "reply_btn_2"), Fate::Gone);
        assert_eq!(book.fate(&dir, "reply_btn_7"), Fate::Unknown);
        assert_eq!(book.fate(&dir, "other_btn"), Fate::Unknown);
        // The bare base is gone too when its element goes.
        let newer = book.key("main", Some(13), "", "button");
        let later = vec![(newer, "reply_btn")];
        assert_eq!(name(&mut book, &dir, &later), ["reply_btn_4"]);
        assert_eq!(book.fate(&dir, "reply_btn"), Fate::Gone);
    }

    #[test]
    fn a_relabelled_element_gets_a_new_name_and_keeps_the_old_as_alias() {
        let mut book = NameBook::default();
        let dir = book.key("main", Some(1), "", "button");
        let ks = keys(&mut book, &[10]);
        name(&mut book, &dir, &[(ks[0].clone(), "follow_btn")]);
        assert_eq!(
            name(&mut book, &dir, &[(ks[0].clone(), "unfollow_btn")]),
            ["unfollow_btn"]
        );
        assert_eq!(book.fate(&dir, "follow_btn"), Fate::Renamed(ks[0].clone()));
        // A new "follow" button does not take the old name.
        let other = book.key("main", Some(11), "", "button");
        let both = vec![(ks[0].clone(), "unfollow_btn"), (other, "follow_btn")];
        assert_eq!(
            name(&mut book, &dir, &both),
            ["unfollow_btn", "follow_btn_2"]
        );
    }

    #[test]
    fn directories_and_frames_are_separate() {
        let mut book = NameBook::default();
        let a = book.key("main", Some(1), "", "button");
        let b = book.key("main", Some(2), "", "button");
        let in_a = book.key("main", Some(10), "", "button");
        let in_frame = book.key("child", Some(10), "", "button");
        assert_ne!(in_a, in_frame);
        assert_eq!(name(&mut book, &a, &[(in_a, "x_btn")]), ["x_btn"]);
        assert_eq!(name(&mut book, &b, &[(in_frame, "x_btn")]), ["x_btn"]);
    }

    #[test]
    fn generated_nodes_are_keyed_by_their_accessibility_id() {
        let mut book = NameBook::default();
        let dir = book.key("main", Some(1), "", "button");
        let a = book.key("main", None, "ax-5", "button");
        let b = book.key("main", None, "ax-6", "button");
        assert_ne!(a, b);
        assert_eq!(
            name(
                &mut book,
                &dir,
                &[(a.clone(), "marker"), (b.clone(), "marker")]
            ),
            ["marker", "marker_2"]
        );
        assert_eq!(
            name(&mut book, &dir, &[(b, "marker"), (a, "marker")]),
            ["marker_2", "marker"]
        );
    }

    #[test]
    fn memory_stays_bounded_under_churn() {
        let mut book = NameBook::default();
        let dir = book.key("main", Some(1), "", "button");
        for round in 0..20_000i64 {
            let k = book.key("main", Some(100 + round), "", "button");
            let kids = [(k.clone(), "row")];
            name(&mut book, &dir, &kids);
            book.prune(|key| *key == dir || *key == k);
        }
        assert!(book.len() <= MAX_STALE_GIVEN + 2, "{}", book.len());
        assert!(book.next.len() <= MAX_COUNTERS + 2);
    }
}
