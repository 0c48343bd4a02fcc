//! Entry names: a readable, Unicode-aware slug of the accessible name plus the role suffix,
//! and de-duplication among siblings.
//!
//! Names depend only on a node's role and text and on its siblings' names, never on AX node
//! ids or positions among differently named siblings, so an unchanged page gets the same
//! names on every read, and a change in one directory never renames entries in another.
//! This module must not look at the tree; callers pass the texts.

use std::collections::{HashMap, HashSet};

/// Names are cut to this many characters (not bytes) before the role suffix.
pub const MAX_NAME_CHARS: usize = 40;

/// The suffix a role adds to its entry name (`Sign in` button → `sign_in_btn`).
pub fn role_suffix(role: &str) -> Option<&'static str> {
    Some(match role {
        "button" => "_btn",
        "link" => "_link",
        "textbox" => "_input",
        "checkbox" => "_chk",
        "radio" => "_radio",
        "combobox" => "_select",
        "menuitem" => "_item",
        "tab" => "_tab",
        "slider" => "_slider",
        "searchbox" => "_search",
        "switch" => "_switch",
        "img" | "image" => "_img",
        "heading" => "_heading",
        _ => return None,
    })
}

/// Lower-case letters and digits of any script are kept; runs of whitespace, `_`, `-` and
/// punctuation become one `_`; the result is cut to [`MAX_NAME_CHARS`] characters and never
/// starts or ends with `_` or `-` (so it cannot be read as a flag). It never contains `/`,
/// `~`, `@`, `%` or `.`, which paths give a meaning.
pub fn slug(text: &str) -> String {
    slug_within(text, MAX_NAME_CHARS)
}

/// [`slug`] cut to `cap` characters.
fn slug_within(text: &str, cap: usize) -> String {
    let mut out = String::new();
    let mut chars = 0usize;
    let mut pending_separator = false;
    for c in text.chars() {
        if chars >= cap {
            break;
        }
        // Combining marks (Devanagari vowel signs, accents written separately) carry meaning.
        if c.is_alphanumeric() || is_combining_mark(c) {
            if pending_separator && !out.is_empty() {
                out.push('_');
                chars += 1;
                if chars >= cap {
                    break;
                }
            }
            pending_separator = false;
            for lower in c.to_lowercase() {
                out.push(lower);
            }
            chars += 1;
        } else if c == '-' && !out.is_empty() && !pending_separator {
            out.push('-');
            chars += 1;
        } else {
            pending_separator = true;
        }
    }
    while out.ends_with('_') || out.ends_with('-') {
        out.pop();
    }
    out
}

fn is_combining_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05BD | 0x0610..=0x061A | 0x064B..=0x065F
        | 0x0900..=0x0903 | 0x093A..=0x094F | 0x0951..=0x0957 | 0x0962..=0x0963
        | 0x0981..=0x0983 | 0x09BC..=0x09D7 | 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E
        | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0x3099..=0x309A | 0xFE20..=0xFE2F)
}

/// The name an entry would have alone: `slug(label) + suffix`; when the label yields nothing,
/// the role itself (`main`, `button_btn`, `iframe`).
pub fn base_name(role: &str, label: &str) -> String {
    let suffix = role_suffix(role).unwrap_or("");
    let text = slug(label);
    if !text.is_empty() {
        return format!("{text}{suffix}");
    }
    let role_slug = slug(role);
    let role_slug = if role_slug.is_empty() {
        "node".to_string()
    } else {
        role_slug
    };
    format!("{role_slug}{suffix}")
}

/// Whether an entry's name already says its label: the name is the label's whole slug (not
/// cut short) with the role suffix, perhaps with a de-duplication number. Lines then leave the
/// label out.
pub fn name_says_label(name: &str, role: &str, label: &str) -> bool {
    let text = slug(label);
    // A label longer than a name can be is not said by it (this scan stops one past the cut).
    if text.is_empty() || text != slug_within(label, MAX_NAME_CHARS + 1) {
        return false;
    }
    let base = base_name(role, label);
    name == base
        || name
            .strip_prefix(base.as_str())
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Unique names for one directory's entries, in document order. The first entry with a given
/// base name keeps it; later ones get `_2`, `_3`… skipping any suffix a sibling already owns
/// as its own base name, so a genuine `item_2` is never shadowed.
pub fn dedup<S: AsRef<str>>(bases: &[S]) -> Vec<String> {
    let genuine: HashSet<&str> = bases.iter().map(AsRef::as_ref).collect();
    let mut used: HashSet<String> = HashSet::with_capacity(bases.len());
    // Next suffix to try per base, so n repeats cost O(n), not O(n²).
    let mut next_suffix: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::with_capacity(bases.len());
    for base in bases {
        let base = base.as_ref();
        if used.insert(base.to_string()) {
            out.push(base.to_string());
            continue;
        }
        let n = next_suffix.entry(base).or_insert(2);
        // Every skipped candidate is owned by another entry, so this ends within
        // `bases.len()` steps overall.
        let name = loop {
            let candidate = format!("{base}_{n}");
            *n += 1;
            if !genuine.contains(candidate.as_str()) && !used.contains(&candidate) {
                break candidate;
            }
        };
        used.insert(name.clone());
        out.push(name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_names_are_lower_snake_case_with_suffix() {
        assert_eq!(base_name("button", "Sign in"), "sign_in_btn");
        assert_eq!(base_name("link", "  Read more… "), "read_more_link");
        assert_eq!(
            base_name("heading", "Comet: seen over the bay!"),
            "comet_seen_over_the_bay_heading"
        );
        assert_eq!(base_name("paragraph", "e-mail / phone"), "e-mail_phone");
    }

    #[test]
    fn non_latin_names_stay_readable() {
        assert_eq!(base_name("link", "Главная"), "главная_link");
        assert_eq!(base_name("button", "登录"), "登录_btn");
        assert_eq!(base_name("region", "中文 区域"), "中文_区域");
        assert_eq!(
            base_name("button", "Ёлка Straße ÉCOLE"),
            "ёлка_straße_école_btn"
        );
        assert_eq!(base_name("link", "हिन्दी"), "हिन्दी_link");
    }

    #[test]
    fn unnamed_nodes_are_named_after_their_role() {
        assert_eq!(base_name("main", ""), "main");
        assert_eq!(base_name("button", "✓"), "button_btn");
        assert_eq!(base_name("RootWebArea", ""), "rootwebarea");
        assert_eq!(base_name("", ""), "node");
    }

    #[test]
    fn names_are_cut_by_characters_not_bytes() {
        let long = "Ж".repeat(100);
        let name = slug(&long);
        assert_eq!(name.chars().count(), MAX_NAME_CHARS);
        assert!(!slug("-- --flag").starts_with('-'));
        for bad in ["a/b", "~x", "@y", "%here%", "..", "a.b"] {
            let s = slug(bad);
            assert!(!s.contains(['/', '~', '@', '%', '.']), "{bad} -> {s}");
        }
    }

    #[test]
    fn a_name_says_its_label_only_when_nothing_was_lost() {
        assert!(name_says_label("sign_in_btn", "button", "Sign in"));
        assert!(name_says_label("sign_in_btn_3", "button", "Sign  in!"));
        assert!(!name_says_label("sign_in_btn_x", "button", "Sign in"));
        assert!(!name_says_label("button_btn", "button", "✓"));
        let long = "word ".repeat(20);
        assert!(!name_says_label(&base_name("link", &long), "link", &long));
        let exact = "a".repeat(MAX_NAME_CHARS);
        assert!(name_says_label(&base_name("link", &exact), "link", &exact));
    }

    #[test]
    fn dedup_numbers_repeats_and_respects_genuine_suffixes() {
        assert_eq!(
            dedup(&["ok_btn", "ok_btn", "x", "ok_btn"]),
            ["ok_btn", "ok_btn_2", "x", "ok_btn_3"]
        );
        assert_eq!(
            dedup(&["item", "item_2", "item"]),
            ["item", "item_2", "item_3"]
        );
        assert_eq!(dedup::<&str>(&[]), Vec::<String>::new());
        let many = dedup(&vec!["add_btn"; 20_000]);
        assert_eq!(many[19_999], "add_btn_20000");
        assert_eq!(many.iter().collect::<HashSet<_>>().len(), 20_000);
    }
}
