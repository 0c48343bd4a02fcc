//! Path resolution inside a page's filesystem: absolute (`/…` from the page root, or the
//! page's own `~/tabs/<id>/…`), relative, `.`, `..`, `%here%` (the current directory) and
//! `@bookmark`. Resolution is a pure function of the tree and a [`PathContext`]; `cd` built
//! on it is all-or-nothing: the caller adopts the new directory only on `Ok`, so a failed
//! `cd` changes nothing.
//!
//! Paths that leave the page (`~`, `~/tabs`, `..` above the page root) are handed back as
//! [`Resolved::Browser`] for the kernel's browser level; this module must not know about tabs
//! or windows.

use std::collections::BTreeMap;

use thiserror::Error;

use super::naming;
use super::roles::EntryKind;
use super::store::NodeRef;
use super::vfs::{EntryId, FormerName, Vfs};

/// Bound on segments of one path (after bookmark and `%here%` expansion).
const MAX_SEGMENTS: usize = 1_000;
/// Alternatives listed in an error before "… and N more".
const MAX_ALTERNATIVES: usize = 40;

/// What a path is resolved against.
#[derive(Debug, Clone, Copy)]
pub struct PathContext<'a> {
    /// The current directory, as names from the page root (empty = the root).
    pub cwd: &'a [String],
    /// How the shell spells this page's root, e.g. `~/tabs/412093`. `~` paths under it
    /// resolve in the page; other `~` paths belong to the browser level. May be empty.
    pub page_prefix: &'a str,
    /// Saved paths by name (without the `@`).
    pub bookmarks: &'a BTreeMap<String, String>,
}

/// Where a path leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// An entry of this page and its names from the page root.
    Entry { id: EntryId, path: Vec<String> },
    /// Outside the page; `path` is absolute and normalised (`~`, `~/tabs`, `~/windows/1`).
    Browser { path: String },
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum PathError {
    #[error("{segment}: {}\n{}", if *want_dir { "No such directory" } else { "No such file or directory" }, alternatives_line(parent, alternatives, *want_dir))]
    NotFound {
        segment: String,
        /// The directory searched, as the shell prints it.
        parent: String,
        want_dir: bool,
        /// What does exist there: directories (with `/`) for `cd`, every entry otherwise.
        alternatives: Vec<String>,
    },
    /// The name was given in this document to an element that is no longer there: it never
    /// denotes another one.
    #[error("{segment}: gone: the element this name denoted is no longer in {parent} (removed, or moved); names never pass to another element, so look again\n{}", alternatives_line(parent, alternatives, false))]
    Gone {
        segment: String,
        parent: String,
        alternatives: Vec<String>,
    },
    #[error("{segment}: Not a directory (type: {} {role})", kind.marker())]
    NotADirectory {
        segment: String,
        kind: EntryKind,
        role: String,
    },
    #[error("{dir}: contents not loaded yet; fetch the pending nodes and retry")]
    NotLoaded { dir: String, pending: Vec<NodeRef> },
    #[error("@{name}: no such bookmark{}", known_bookmarks(known))]
    UnknownBookmark { name: String, known: Vec<String> },
    #[error("path too long (more than {MAX_SEGMENTS} segments)")]
    TooLong,
}

fn alternatives_line(parent: &str, alternatives: &[String], want_dir: bool) -> String {
    let what = if want_dir { "Directories" } else { "Entries" };
    if alternatives.is_empty() {
        return format!(
            "({} in {parent})",
            if want_dir {
                "no directories"
            } else {
                "empty directory"
            }
        );
    }
    let shown: Vec<&str> = alternatives
        .iter()
        .take(MAX_ALTERNATIVES)
        .map(String::as_str)
        .collect();
    let more = alternatives.len().saturating_sub(MAX_ALTERNATIVES);
    let tail = if more > 0 {
        format!("  … and {more} more")
    } else {
        String::new()
    };
    format!("{what} in {parent}: {}{tail}", shown.join("  "))
}

fn known_bookmarks(known: &[String]) -> String {
    if known.is_empty() {
        "; none saved (bookmark <name> [path])".to_string()
    } else {
        let names: Vec<String> = known.iter().map(|k| format!("@{k}")).collect();
        format!("; saved: {}", names.join(" "))
    }
}

impl Vfs {
    /// Resolve `input` to an entry of any kind (for `ls`, `cat`, `click`…).
    pub fn resolve(&self, ctx: &PathContext<'_>, input: &str) -> Result<Resolved, PathError> {
        self.walk_path(ctx, input, false)
    }

    /// Resolve `input` for `cd`: the target must be a directory. The caller sets its cwd to
    /// the returned path only on `Ok`, which makes `cd` all-or-nothing.
    pub fn resolve_dir(&self, ctx: &PathContext<'_>, input: &str) -> Result<Resolved, PathError> {
        self.walk_path(ctx, input, true)
    }

    /// The shell's spelling of a path inside this page: `~/tabs/1/main/form`, or `/main/form`
    /// without a prefix.
    pub fn display_path(page_prefix: &str, names: &[String]) -> String {
        let mut out = page_prefix.trim_end_matches('/').to_string();
        if names.is_empty() {
            if out.is_empty() {
                out.push('/');
            }
            return out;
        }
        for name in names {
            out.push('/');
            out.push_str(name);
        }
        out
    }

    fn walk_path(
        &self,
        ctx: &PathContext<'_>,
        input: &str,
        want_dir: bool,
    ) -> Result<Resolved, PathError> {
        let prefix = ctx.page_prefix.trim_end_matches('/');
        let here = Self::display_path(prefix, ctx.cwd);
        let mut text = input.trim().replace("%here%", &here);
        if let Some(rest) = text.strip_prefix('@') {
            let (name, tail) = rest.split_once('/').map_or((rest, ""), |(n, t)| (n, t));
            let saved = ctx
                .bookmarks
                .get(name)
                .or_else(|| ctx.bookmarks.get(&format!("@{name}")))
                .ok_or_else(|| PathError::UnknownBookmark {
                    name: name.to_string(),
                    known: ctx
                        .bookmarks
                        .keys()
                        .map(|k| k.trim_start_matches('@').to_string())
                        .collect(),
                })?;
            text = if tail.is_empty() {
                saved.clone()
            } else {
                format!("{}/{tail}", saved.trim_end_matches('/'))
            };
        }

        // Where the walk starts, and what is left to walk.
        let (mut stack, rest): (Vec<EntryId>, String) = if text.starts_with('~') {
            let inside =
                !prefix.is_empty() && (text == prefix || text.starts_with(&format!("{prefix}/")));
            if !inside {
                return Ok(Resolved::Browser {
                    path: normalise_browser_path(&text),
                });
            }
            (Vec::new(), text[prefix.len()..].to_string())
        } else if text.starts_with('/') {
            (Vec::new(), text)
        } else {
            // The cwd itself is resolved from the root: if the page changed under it, the
            // error names the first missing part.
            let mut stack = Vec::new();
            let mut at = self.root();
            for name in ctx.cwd {
                let child = self.child_named(at, name, &stack, prefix, true)?;
                stack.push(child);
                at = child;
            }
            (stack, text)
        };

        let segments: Vec<&str> = rest
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        if segments.len() > MAX_SEGMENTS {
            return Err(PathError::TooLong);
        }
        for (index, segment) in segments.iter().enumerate() {
            if *segment == ".." {
                if stack.pop().is_none() && !prefix.is_empty() {
                    return Ok(Resolved::Browser {
                        path: leave_page(prefix, &segments[index + 1..]),
                    });
                }
                continue;
            }
            let at = stack.last().copied().unwrap_or_else(|| self.root());
            let last = index + 1 == segments.len();
            let child = self.child_named(at, segment, &stack, prefix, want_dir || !last)?;
            let entry = self.entry(child);
            let is_dir = entry.is_some_and(|e| e.is_dir());
            if !is_dir && (want_dir || !last) {
                let (kind, role) = entry.map_or((EntryKind::Static, String::new()), |e| {
                    (e.kind, e.role.clone())
                });
                return Err(PathError::NotADirectory {
                    segment: segment.to_string(),
                    kind,
                    role,
                });
            }
            stack.push(child);
        }
        let id = stack.last().copied().unwrap_or_else(|| self.root());
        let path = stack
            .iter()
            .filter_map(|&e| self.entry(e).map(|e| e.name.clone()))
            .collect();
        Ok(Resolved::Entry { id, path })
    }

    /// The child of `dir` called `name`: exact match first, else a unique case-insensitive
    /// match (names are lower-case, agents often are not), else a unique match of the typed
    /// text made into a name (`"Sign up"` finds `sign_up`).
    fn child_named(
        &self,
        dir: EntryId,
        name: &str,
        stack: &[EntryId],
        prefix: &str,
        want_dir: bool,
    ) -> Result<EntryId, PathError> {
        let children = self.children(dir);
        let exact = children
            .iter()
            .copied()
            .find(|&c| self.entry(c).is_some_and(|e| e.name == name));
        if let Some(found) = exact {
            return Ok(found);
        }
        // A name seen earlier in this document denotes the same element or nothing.
        match self.former_name(dir, name) {
            FormerName::Renamed(now) => return Ok(now),
            FormerName::Gone => {
                let names: Vec<String> = stack
                    .iter()
                    .filter_map(|&e| self.entry(e).map(|e| e.name.clone()))
                    .collect();
                return Err(PathError::Gone {
                    segment: name.to_string(),
                    parent: Self::display_path(prefix, &names),
                    alternatives: self.alternatives(dir, want_dir),
                });
            }
            FormerName::Unknown => {}
        }
        let lower = name.to_lowercase();
        let mut folded = children.iter().copied().filter(|&c| {
            self.entry(c)
                .is_some_and(|e| e.name.to_lowercase() == lower)
        });
        if let (Some(found), None) = (folded.next(), folded.next()) {
            return Ok(found);
        }
        // Typed as the page shows it ("Sign up"): compare as a name would be made.
        let slugged = naming::slug(name);
        if !slugged.is_empty() && slugged != lower {
            let mut by_slug = children
                .iter()
                .copied()
                .filter(|&c| self.entry(c).is_some_and(|e| e.name == slugged));
            if let (Some(found), None) = (by_slug.next(), by_slug.next()) {
                return Ok(found);
            }
        }
        let names: Vec<String> = stack
            .iter()
            .filter_map(|&e| self.entry(e).map(|e| e.name.clone()))
            .collect();
        let parent = Self::display_path(prefix, &names);
        if !self.is_complete(dir) {
            return Err(PathError::NotLoaded {
                dir: parent,
                pending: self.pending(dir).to_vec(),
            });
        }
        Err(PathError::NotFound {
            segment: name.to_string(),
            parent,
            want_dir,
            alternatives: self.alternatives(dir, want_dir),
        })
    }

    /// What `dir` holds, as an error lists it: directories (with `/`) for `cd`, every entry
    /// otherwise.
    fn alternatives(&self, dir: EntryId, want_dir: bool) -> Vec<String> {
        self.children(dir)
            .iter()
            .filter_map(|&c| self.entry(c))
            .filter(|e| !want_dir || e.is_dir())
            .map(|e| {
                if e.is_dir() {
                    format!("{}/", e.name)
                } else {
                    e.name.clone()
                }
            })
            .collect()
    }
}

/// `..` above the page root: drop the prefix's last part, then walk what is left textually.
fn leave_page(prefix: &str, rest: &[&str]) -> String {
    let mut parts: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
    parts.pop();
    let joined = if rest.is_empty() {
        parts.join("/")
    } else {
        format!("{}/{}", parts.join("/"), rest.join("/"))
    };
    normalise_browser_path(&joined)
}

/// `~/tabs/../windows/./1/` → `~/windows/1`; never climbs above `~`.
fn normalise_browser_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/').skip(1) {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        "~".to_string()
    } else {
        format!("~/{}", parts.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_paths_are_normalised() {
        assert_eq!(normalise_browser_path("~"), "~");
        assert_eq!(
            normalise_browser_path("~/tabs/../windows/./1/"),
            "~/windows/1"
        );
        assert_eq!(normalise_browser_path("~/../.."), "~");
        assert_eq!(leave_page("~/tabs/12", &[]), "~/tabs");
        assert_eq!(leave_page("~/tabs/12", &["..", "windows"]), "~/windows");
    }

    #[test]
    fn display_paths_join_the_prefix() {
        assert_eq!(Vfs::display_path("", &[]), "/");
        assert_eq!(Vfs::display_path("", &["main".into()]), "/main");
        assert_eq!(
            Vfs::display_path("~/tabs/3/", &["a".into(), "b".into()]),
            "~/tabs/3/a/b"
        );
        assert_eq!(Vfs::display_path("~/tabs/3", &[]), "~/tabs/3");
    }
}
