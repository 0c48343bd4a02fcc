//! What changed on the page, said by name: the account an action's reply ends with and what
//! `diff` shows.
//!
//! A [`Look`] is what a session last saw of its directory: the entries below it (two levels,
//! as far as they were read) keyed by their paths, with the role, label, value and checked
//! state of each, and which document they belonged to. Two looks compare into [`Changes`]
//! (added, removed, changed), rendered as short lines or JSON. Names are the key because they
//! keep denoting one element while a document lives and are derived again, stably, for a new
//! one; accessibility ids do not survive a re-read. A look of another document compares as
//! "new document" and nothing else.
//!
//! Sans-IO: it reads a [`Vfs`] and formats text; it must not call the browser nor decide
//! when a look is taken (the kernel's commands do).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::ax::{EntryId, Vfs};

/// Entries a look keeps at most: past it the account says it compared only the first ones.
pub const LOOK_LIMIT: usize = 2_000;

/// How far below the directory a look reaches (1: its own entries).
const LOOK_DEPTH: usize = 4;

/// Lines an action's account holds at most before "+N more".
pub const EFFECT_LINES: usize = 10;

/// The document a look was taken in: a new load or another address is another document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// The tab's load count when the look was taken.
    pub load: u64,
    /// The page's address without its fragment.
    pub url: String,
}

impl Document {
    pub fn new(load: u64, url: &str) -> Document {
        let url = url.split('#').next().unwrap_or(url).to_string();
        Document { load, url }
    }
}

/// One entry as a look saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Below the look's directory: `list/item_3`; directories end with `/`.
    pub path: String,
    pub role: String,
    pub label: String,
    pub value: Option<String>,
    pub checked: Option<String>,
}

impl Seen {
    /// The directory it is in, `""` for the look's own directory.
    fn parent(&self) -> &str {
        let trimmed = self.path.trim_end_matches('/');
        trimmed.rfind('/').map_or("", |at| &self.path[..=at])
    }

    fn state(&self) -> (&str, Option<&str>, Option<&str>) {
        (&self.label, self.value.as_deref(), self.checked.as_deref())
    }
}

/// What a session saw of one directory of one tab.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Look {
    pub tab: i64,
    pub document: Document,
    /// The directory's path below the page root.
    pub dir: Vec<String>,
    pub seen: Vec<Seen>,
    /// Directories in `seen` whose entries are not all in it (not read yet, or below
    /// [`LOOK_DEPTH`]): what is under them was not seen, so it is not compared.
    pub unread: Vec<String>,
    /// Every entry within [`LOOK_DEPTH`] that was read is in `seen` (not cut at
    /// [`LOOK_LIMIT`]).
    pub complete: bool,
}

impl Look {
    /// The entries below `dir` of `vfs` (none when `dir` is not in it).
    pub fn of(vfs: &Vfs, tab: i64, document: Document, dir: &[String]) -> Look {
        let mut look = Look {
            tab,
            document,
            dir: dir.to_vec(),
            seen: Vec::new(),
            unread: Vec::new(),
            complete: true,
        };
        let Some(start) = find_dir(vfs, dir) else {
            return look;
        };
        // Breadth first, so a cut keeps the directory's own entries.
        let mut level: Vec<(EntryId, String)> = vec![(start, String::new())];
        for depth in 1..=LOOK_DEPTH {
            let mut next = Vec::new();
            for (parent, prefix) in &level {
                for &child in vfs.children(*parent) {
                    let Some(entry) = vfs.entry(child) else {
                        continue;
                    };
                    if look.seen.len() == LOOK_LIMIT {
                        look.complete = false;
                        return look;
                    }
                    let slash = if entry.is_dir() { "/" } else { "" };
                    let path = format!("{prefix}{}{slash}", entry.name);
                    if entry.is_dir() {
                        if depth == LOOK_DEPTH || !vfs.is_complete(child) {
                            look.unread.push(path.clone());
                        } else {
                            next.push((child, path.clone()));
                        }
                    }
                    look.seen.push(Seen {
                        path,
                        role: entry.role.clone(),
                        label: entry.accessible_name.trim().to_string(),
                        value: entry.value.clone(),
                        checked: entry.checked.clone(),
                    });
                }
            }
            level = next;
        }
        look
    }
}

/// The entry at `dir` below the root of `vfs`, by name.
fn find_dir(vfs: &Vfs, dir: &[String]) -> Option<EntryId> {
    let mut at = vfs.root();
    for name in dir {
        at = *vfs
            .children(at)
            .iter()
            .find(|&&c| vfs.entry(c).is_some_and(|e| e.name == *name))?;
    }
    Some(at)
}

/// How one look differs from an earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes<'a> {
    /// The later look is of another document (or another tab or directory): entries are
    /// not compared.
    Elsewhere { document: bool },
    Same {
        added: Vec<&'a Seen>,
        removed: Vec<&'a Seen>,
        changed: Vec<(&'a Seen, &'a Seen)>,
        /// One of the looks was cut at [`LOOK_LIMIT`].
        partial: bool,
    },
}

impl Changes<'_> {
    /// Nothing was added, removed or changed.
    pub fn is_empty(&self) -> bool {
        matches!(self, Changes::Same { added, removed, changed, .. } if added.is_empty() && removed.is_empty() && changed.is_empty())
    }
}

/// What changed from `before` to `after`. An entry inside an added or removed directory is
/// not listed again on its own, nor one in a directory either look had not read.
pub fn compare<'a>(before: &'a Look, after: &'a Look) -> Changes<'a> {
    if before.tab != after.tab || before.document != after.document {
        return Changes::Elsewhere { document: true };
    }
    if before.dir != after.dir {
        return Changes::Elsewhere { document: false };
    }
    let earlier: BTreeMap<&str, &Seen> = before.seen.iter().map(|s| (s.path.as_str(), s)).collect();
    let later: BTreeMap<&str, &Seen> = after.seen.iter().map(|s| (s.path.as_str(), s)).collect();
    // An entry can be new (or gone) only in a directory both looks read: one under a new
    // directory is said by that directory, one under a directory not read was never seen.
    let unread_before: BTreeSet<&str> = before.unread.iter().map(String::as_str).collect();
    let unread_after: BTreeSet<&str> = after.unread.iter().map(String::as_str).collect();
    let read_in = |unread: &BTreeSet<&str>, map: &BTreeMap<&str, &Seen>, seen: &Seen| {
        let parent = seen.parent();
        parent.is_empty() || (map.contains_key(parent) && !unread.contains(parent))
    };
    let mut added: Vec<&Seen> = Vec::new();
    let mut changed = Vec::new();
    for seen in &after.seen {
        match earlier.get(seen.path.as_str()) {
            None if read_in(&unread_before, &earlier, seen) => added.push(seen),
            None => {}
            Some(old) if old.state() != seen.state() || old.role != seen.role => {
                changed.push((*old, seen))
            }
            Some(_) => {}
        }
    }
    let removed: Vec<&Seen> = before
        .seen
        .iter()
        .filter(|s| !later.contains_key(s.path.as_str()) && read_in(&unread_after, &later, s))
        .collect();
    Changes::Same {
        added,
        removed,
        changed,
        partial: !before.complete || !after.complete,
    }
}

/// One line per change, `+ name (role)`, `- name (role)`, `~ name: what changed`; at most
/// `limit` of them, then how many more there are.
pub fn lines(changes: &Changes<'_>, limit: usize) -> Vec<String> {
    let Changes::Same {
        added,
        removed,
        changed,
        partial,
    } = changes
    else {
        return Vec::new();
    };
    let mut all: Vec<String> = Vec::new();
    all.extend(added.iter().map(|s| format!("+ {}{}", s.path, labelled(s))));
    all.extend(removed.iter().map(|s| format!("- {} ({})", s.path, s.role)));
    all.extend(
        changed
            .iter()
            .map(|(old, new)| format!("~ {}: {}", new.path, what_changed(old, new))),
    );
    let total = all.len();
    all.truncate(limit);
    if total > limit {
        all.push(format!("… +{} more", total - limit));
    }
    if *partial {
        all.push(format!("(compared the first {LOOK_LIMIT} entries here)"));
    }
    all
}

/// ` (role)`, with the label when the name does not already say it.
fn labelled(seen: &Seen) -> String {
    let name = seen.path.trim_end_matches('/');
    let name = name.rsplit('/').next().unwrap_or(name);
    let label = clip(&seen.label);
    if label.is_empty() || naming_says(name, &seen.label) {
        format!(" ({})", seen.role)
    } else {
        format!(" ({}) \"{label}\"", seen.role)
    }
}

/// Whether a name already carries its label (names are the label's words, lower-cased and
/// joined with `_`, cut to a budget).
fn naming_says(name: &str, label: &str) -> bool {
    let words: String = label
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let words = words.trim_matches('_');
    let stem = name.trim_end_matches(|c: char| c == '_' || c.is_ascii_digit());
    !words.is_empty() && (name.starts_with(words) || (!stem.is_empty() && words.starts_with(stem)))
}

fn what_changed(old: &Seen, new: &Seen) -> String {
    let mut parts = Vec::new();
    if old.role != new.role {
        parts.push(format!("{} → {}", old.role, new.role));
    }
    if old.label != new.label {
        parts.push(format!(
            "\"{}\" → \"{}\"",
            clip(&old.label),
            clip(&new.label)
        ));
    }
    if old.value != new.value {
        parts.push(format!(
            "value \"{}\" → \"{}\"",
            clip(old.value.as_deref().unwrap_or("")),
            clip(new.value.as_deref().unwrap_or(""))
        ));
    }
    if old.checked != new.checked {
        parts.push(format!(
            "checked {} → {}",
            old.checked.as_deref().unwrap_or("none"),
            new.checked.as_deref().unwrap_or("none")
        ));
    }
    parts.join(", ")
}

/// Labels and values in an account are cut to this many characters.
const CLIP_CHARS: usize = 60;

fn clip(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(CLIP_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// `diff --json`: the changes as one object.
pub fn to_json(changes: &Changes<'_>, url: &str) -> Value {
    let entry = |s: &Seen| json!({ "path": s.path, "role": s.role, "label": s.label, "value": s.value, "checked": s.checked });
    match changes {
        Changes::Elsewhere { document } => json!({
            "document": if *document { "new" } else { "same" },
            "url": url,
            "compared": false,
        }),
        Changes::Same {
            added,
            removed,
            changed,
            partial,
        } => json!({
            "document": "same",
            "url": url,
            "compared": true,
            "partial": partial,
            "added": added.iter().map(|s| entry(s)).collect::<Vec<_>>(),
            "removed": removed.iter().map(|s| entry(s)).collect::<Vec<_>>(),
            "changed": changed.iter().map(|(old, new)| json!({ "before": entry(old), "after": entry(new) })).collect::<Vec<_>>(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(path: &str, role: &str, label: &str) -> Seen {
        Seen {
            path: path.into(),
            role: role.into(),
            label: label.into(),
            value: None,
            checked: None,
        }
    }

    fn look(load: u64, seen: Vec<Seen>) -> Look {
        Look {
            tab: 7,
            document: Document::new(load, "https://example.com/thread#top"),
            dir: vec!["main".into()],
            seen,
            unread: Vec::new(),
            complete: true,
        }
    }

    #[test]
    fn added_removed_and_changed_entries_are_named_once() {
        let before = look(
            1,
            vec![
                seen("list/", "list", ""),
                seen("list/row_1", "listitem", "Row 1"),
                seen("old_banner", "statictext", "Sale ends today"),
                seen("count", "statictext", "Count: 1"),
            ],
        );
        let mut after = look(
            1,
            vec![
                seen("list/", "list", ""),
                seen("list/row_1", "listitem", "Row 1"),
                seen("list/row_2", "listitem", "Row 2"),
                seen("count", "statictext", "Count: 2"),
                seen("notes/", "group", "Notes"),
                seen("notes/note_1", "statictext", "first"),
            ],
        );
        after.seen.push(Seen {
            value: Some("ada".into()),
            ..seen("name_field", "textbox", "Name")
        });
        let mut before = before;
        before.seen.push(seen("name_field", "textbox", "Name"));
        let changes = compare(&before, &after);
        assert_eq!(
            lines(&changes, EFFECT_LINES),
            [
                "+ list/row_2 (listitem)",
                // Inside an added directory: the directory says it.
                "+ notes/ (group)",
                "- old_banner (statictext)",
                "~ count: \"Count: 1\" → \"Count: 2\"",
                "~ name_field: value \"\" → \"ada\"",
            ]
        );
        let json = to_json(&changes, "https://example.com/thread");
        assert_eq!(json["added"][0]["path"], "list/row_2");
        assert_eq!(json["changed"][1]["after"]["value"], "ada");
        assert_eq!(json["document"], "same");
    }

    #[test]
    fn what_was_not_read_is_not_compared() {
        let mut before = look(1, vec![seen("comments/", "list", "")]);
        before.unread.push("comments/".into());
        // The comments were read since (an action's re-read listed them): they are not new
        // to the agent's knowledge, just never seen, so they are not reported as added.
        let after = look(
            1,
            vec![
                seen("comments/", "list", ""),
                seen("comments/first", "listitem", "First"),
            ],
        );
        assert!(compare(&before, &after).is_empty());
        // Nor are entries reported gone from a directory the later look did not read.
        let mut unread_after = look(1, vec![seen("comments/", "list", "")]);
        unread_after.unread.push("comments/".into());
        assert!(compare(&after, &unread_after).is_empty());
    }

    #[test]
    fn an_unchanged_page_has_nothing_to_say_and_a_long_account_is_capped() {
        let rows: Vec<Seen> = (1..=30)
            .map(|i| seen(&format!("row_{i}"), "row", &format!("Item number {i}")))
            .collect();
        let same = look(1, rows.clone());
        assert!(compare(&same, &same).is_empty());
        assert!(lines(&compare(&same, &same), EFFECT_LINES).is_empty());
        let empty = look(1, vec![]);
        let grown = compare(&empty, &same);
        let said = lines(&grown, EFFECT_LINES);
        assert_eq!(said.len(), EFFECT_LINES + 1);
        assert_eq!(said[0], "+ row_1 (row) \"Item number 1\"");
        assert_eq!(said[EFFECT_LINES], "… +20 more");
    }

    #[test]
    fn another_document_or_directory_is_not_compared() {
        let before = look(1, vec![seen("a", "link", "A")]);
        let reloaded = look(2, vec![seen("a", "link", "A")]);
        assert_eq!(
            compare(&before, &reloaded),
            Changes::Elsewhere { document: true }
        );
        // The fragment is not another document.
        let mut scrolled = before.clone();
        scrolled.document = Document::new(1, "https://example.com/thread#reply");
        assert!(compare(&before, &scrolled).is_empty());
        let mut deeper = before.clone();
        deeper.dir.push("list".into());
        assert_eq!(
            compare(&before, &deeper),
            Changes::Elsewhere { document: false }
        );
        assert_eq!(
            to_json(&compare(&before, &reloaded), "u")["document"],
            "new"
        );
    }

    #[test]
    fn a_label_the_name_already_says_is_not_repeated() {
        assert_eq!(
            labelled(&seen("reply_btn_2", "button", "Reply")),
            " (button)"
        );
        assert_eq!(
            labelled(&seen(
                "there_is_a_page_named_machine_learning_o",
                "link",
                "There is a page named Machine Learning on Wikipedia"
            )),
            " (link)"
        );
        assert_eq!(
            labelled(&seen("submit_btn", "button", "Send the form")),
            " (button) \"Send the form\""
        );
    }
}
