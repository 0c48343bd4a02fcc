//! Selection helpers behind `ls`, `find`, `grep` and `--count`: which entries a listing
//! shows (slicing with `--after`/`--before`, `--type` with or without aliases,
//! `--offset`/`-n`) and recursive search. They return entry handles and counts; the kernel
//! formats them. This module must not produce command output text.

use thiserror::Error;

use super::roles::{self, EntryKind};
use super::vfs::{Entry, EntryId, Vfs};

/// Bound on entries a recursive search visits.
const MAX_SEARCH_VISITS: usize = 2_000_000;

/// `--type`: a set of roles (case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeFilter {
    roles: Vec<String>,
}

impl TypeFilter {
    /// `ls --type ROLE`: the role itself only.
    pub fn exact(role: &str) -> TypeFilter {
        TypeFilter {
            roles: roles::roles_for_type(role, false),
        }
    }

    /// `find --type WORD`: the role, or what the alias stands for (`btn` → `button`).
    pub fn with_aliases(word: &str) -> TypeFilter {
        TypeFilter {
            roles: roles::roles_for_type(word, true),
        }
    }

    pub fn matches(&self, entry: &Entry) -> bool {
        let role = entry.role.to_lowercase();
        self.roles.contains(&role)
    }
}

/// What `ls` selects in one directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// `--after NAME`: only siblings after this one (applied before `--type`).
    pub after: Option<String>,
    /// `--before NAME`: only siblings before this one.
    pub before: Option<String>,
    pub type_filter: Option<TypeFilter>,
    /// `--offset N`.
    pub offset: usize,
    /// `-n N`.
    pub limit: Option<usize>,
}

/// One page of a listing: the entries to show and the size of the whole selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    pub entries: Vec<EntryId>,
    /// Entries selected before `--offset`/`-n`.
    pub total: usize,
    pub offset: usize,
}

/// `--count`: `45 total (12 [d], 28 [x], 5 [-])`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    pub directories: usize,
    pub interactive: usize,
    pub other: usize,
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ListError {
    #[error("{flag} {name}: no such entry in this directory")]
    NoSuchSibling { flag: &'static str, name: String },
    #[error("not a directory (type: {} {role})", kind.marker())]
    NotADirectory { kind: EntryKind, role: String },
}

/// What `find`/`grep -r` look for below a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindQuery {
    /// Case-insensitive substring of the name, role, accessible name or value.
    pub pattern: Option<String>,
    pub type_filter: Option<TypeFilter>,
    /// Stop after this many results.
    pub limit: Option<usize>,
}

/// A search result and its path relative to where the search started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub id: EntryId,
    pub relative_path: Vec<String>,
}

impl Vfs {
    /// The entries `ls` shows for `dir` with `options`.
    pub fn list(&self, dir: EntryId, options: &ListOptions) -> Result<ListPage, ListError> {
        let entry = self.entry(dir).ok_or(ListError::NotADirectory {
            kind: EntryKind::Static,
            role: String::new(),
        })?;
        if !entry.is_dir() {
            return Err(ListError::NotADirectory {
                kind: entry.kind,
                role: entry.role.clone(),
            });
        }
        let mut selected: &[EntryId] = self.children(dir);
        if let Some(name) = &options.after {
            let at = self
                .position(selected, name)
                .ok_or_else(|| ListError::NoSuchSibling {
                    flag: "--after",
                    name: name.clone(),
                })?;
            selected = &selected[at + 1..];
        }
        if let Some(name) = &options.before {
            let at = self
                .position(selected, name)
                .ok_or_else(|| ListError::NoSuchSibling {
                    flag: "--before",
                    name: name.clone(),
                })?;
            selected = &selected[..at];
        }
        let filtered: Vec<EntryId> = selected
            .iter()
            .copied()
            .filter(|&c| {
                options
                    .type_filter
                    .as_ref()
                    .is_none_or(|f| self.entry(c).is_some_and(|e| f.matches(e)))
            })
            .collect();
        let total = filtered.len();
        let entries = filtered
            .into_iter()
            .skip(options.offset)
            .take(options.limit.unwrap_or(usize::MAX))
            .collect();
        Ok(ListPage {
            entries,
            total,
            offset: options.offset,
        })
    }

    fn position(&self, entries: &[EntryId], name: &str) -> Option<usize> {
        entries
            .iter()
            .position(|&c| self.entry(c).is_some_and(|e| e.name == name))
    }

    pub fn count(&self, entries: &[EntryId]) -> Counts {
        let mut counts = Counts::default();
        for entry in entries.iter().filter_map(|&e| self.entry(e)) {
            counts.total += 1;
            match entry.kind {
                EntryKind::Directory => counts.directories += 1,
                EntryKind::Interactive => counts.interactive += 1,
                EntryKind::Static => counts.other += 1,
            }
        }
        counts
    }

    /// Entries below `from` (not `from` itself) matching `query`, in document order,
    /// descending through directories only.
    pub fn find(&self, from: EntryId, query: &FindQuery) -> Vec<Found> {
        let pattern = query.pattern.as_deref().map(Pattern::new);
        let limit = query.limit.unwrap_or(usize::MAX);
        let mut results = Vec::new();
        // Depth first in document order, without recursion.
        let mut stack: Vec<(EntryId, Vec<String>)> = self
            .children(from)
            .iter()
            .rev()
            .map(|&c| (c, Vec::new()))
            .collect();
        let mut visits = 0usize;
        while let Some((at, parent_path)) = stack.pop() {
            visits += 1;
            if visits > MAX_SEARCH_VISITS || results.len() >= limit {
                break;
            }
            let Some(entry) = self.entry(at) else {
                continue;
            };
            let mut path = parent_path;
            path.push(entry.name.clone());
            let type_ok = query.type_filter.as_ref().is_none_or(|f| f.matches(entry));
            let pattern_ok = pattern.as_ref().is_none_or(|p| p.matches(entry));
            if type_ok && pattern_ok {
                results.push(Found {
                    id: at,
                    relative_path: path.clone(),
                });
            }
            if entry.is_dir() {
                stack.extend(self.children(at).iter().rev().map(|&c| (c, path.clone())));
            }
        }
        results
    }

    /// Every entry below `from` with its depth (1 = child), directories before their
    /// contents, down to `max_depth` levels: what `tree` and `ls -r` draw.
    pub fn descendants(&self, from: EntryId, max_depth: usize) -> Vec<(EntryId, usize)> {
        let mut out = Vec::new();
        let mut stack: Vec<(EntryId, usize)> =
            self.children(from).iter().rev().map(|&c| (c, 1)).collect();
        while let Some((at, depth)) = stack.pop() {
            if out.len() >= MAX_SEARCH_VISITS {
                break;
            }
            out.push((at, depth));
            if depth < max_depth && self.entry(at).is_some_and(Entry::is_dir) {
                stack.extend(self.children(at).iter().rev().map(|&c| (c, depth + 1)));
            }
        }
        out
    }
}

/// A `find` pattern, lower-cased once for the whole search.
struct Pattern {
    lower: String,
    /// Typed as a name is written (`add_a_line`): the label's words, whatever names drop.
    as_words: Option<String>,
}

impl Pattern {
    fn new(pattern: &str) -> Pattern {
        let lower = pattern.to_lowercase();
        let as_words = lower.contains('_').then(|| lower.replace('_', " "));
        Pattern { lower, as_words }
    }

    fn matches(&self, entry: &Entry) -> bool {
        let p = self.lower.as_str();
        entry.name.to_lowercase().contains(p)
            || entry.own_name().contains(p)
            || entry.role.to_lowercase().contains(p)
            || {
                let label = entry.accessible_name.to_lowercase();
                label.contains(p) || self.as_words.as_deref().is_some_and(|w| label.contains(w))
            }
            || entry
                .value
                .as_ref()
                .is_some_and(|v| v.to_lowercase().contains(p))
    }
}
