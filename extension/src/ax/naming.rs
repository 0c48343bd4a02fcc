//! Entry names: a short, readable, Unicode-aware slug of the accessible name plus the role
//! suffix, and de-duplication among siblings.
//!
//! Names depend only on a node's role and text and on its siblings' names, never on AX node
//! ids or positions among differently named siblings, so an unchanged page gets the same
//! names on every read, and a change in one directory never renames entries in another.
//! A name is what an agent types and pays for in every path, so it is short: whole words of
//! the label up to [`MAX_NAME_CHARS`] characters, without articles or a last word that only
//! repeats the role (`Submit button` → `submit_btn`), and never the same text as its parent's
//! (a list item's only text is named after its role, not a second time after the text).
//! This module must not look at the tree; callers pass the texts.

use std::collections::{HashMap, HashSet};

/// Names keep whole words of the label up to this many characters (not bytes) before the
/// role suffix; a first word longer than that is cut. Measured on the recorded pages
/// (`extension/tests/ax_mapping.rs` prints it): names take 0.62× the characters of whole
/// labels at 24 (0.76× at the 40 of before, 0.41× at 12); 24 is the shortest that still
/// keeps two long words (`physical_characteristics`, `list_of_comets_by_type`) where 12 or
/// 16 keep one. From 20 to 24 the same 11 siblings would share a name (references alike in
/// their first words), which [`LONGER_NAME_CHARS`] keeps apart; 32 and 40 merge none.
pub const MAX_NAME_CHARS: usize = 24;

/// Siblings whose names would be the same at [`MAX_NAME_CHARS`] while their labels differ
/// (`Comets and their orbits, part 1…`, `…part 2…`) keep whole words up to this many
/// instead, so they are told apart by words rather than by numbers.
pub const LONGER_NAME_CHARS: usize = 40;

/// Characters of a label read to make its name: enough for [`MAX_NAME_CHARS`] after fillers
/// are dropped, without walking a paragraph of thousands.
const LABEL_SCAN_CHARS: usize = 8 * MAX_NAME_CHARS;

/// Words that add nothing to a name when other words are there.
const FILLER_WORDS: [&str; 3] = ["a", "an", "the"];

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

/// Last words of a label that only say the role its suffix already says.
fn role_words(role: &str) -> &'static [&'static str] {
    match role {
        "button" => &["button", "btn"],
        "link" => &["link"],
        "textbox" => &["input", "field", "textbox"],
        "checkbox" => &["checkbox"],
        "combobox" => &["dropdown", "select"],
        "img" | "image" => &["image", "img"],
        "heading" => &["heading"],
        _ => &[],
    }
}

/// Lower-case letters and digits of any script are kept; runs of whitespace, `_`, `-` and
/// punctuation become one `_`; articles are dropped when other words remain; whole words are
/// kept up to [`MAX_NAME_CHARS`] characters. The result never starts or ends with `_` or `-`
/// (so it cannot be read as a flag) and never contains `/`, `~`, `@`, `%` or `.`, which paths
/// give a meaning.
pub fn slug(text: &str) -> String {
    shorten(&slug_within(text, LABEL_SCAN_CHARS), &[], MAX_NAME_CHARS)
}

/// Whole words of a full slug within the budget, fillers and trailing `role_words` dropped
/// while other words remain.
fn shorten(full: &str, role_words: &[&str], budget: usize) -> String {
    let mut words: Vec<&str> = full.split('_').filter(|w| !w.is_empty()).collect();
    if words.iter().any(|w| !FILLER_WORDS.contains(w)) {
        words.retain(|w| !FILLER_WORDS.contains(w));
    }
    while words.len() > 1 && words.last().is_some_and(|w| role_words.contains(w)) {
        words.pop();
    }
    let mut out = String::new();
    let mut chars = 0usize;
    for word in words {
        let len = word.chars().count();
        let needed = if out.is_empty() { len } else { len + 1 };
        if chars + needed > budget {
            if out.is_empty() {
                // One long word: cut it rather than name the entry after its role.
                out.extend(word.chars().take(budget));
            }
            break;
        }
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(word);
        chars += needed;
    }
    while out.ends_with('_') || out.ends_with('-') {
        out.pop();
    }
    out
}

/// The whole slug of `text`, cut to `cap` characters.
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
    base_name_within(role, label, MAX_NAME_CHARS)
}

/// [`base_name`] with another budget than [`MAX_NAME_CHARS`]: what the budget is chosen by.
pub fn base_name_within(role: &str, label: &str, budget: usize) -> String {
    named(role, &slug_within(label, LABEL_SCAN_CHARS), budget)
}

/// An entry's name at [`MAX_NAME_CHARS`] and, when it says more, at
/// [`LONGER_NAME_CHARS`] (for siblings whose short names collide): the label slugged once.
pub fn base_names(role: &str, label: &str) -> (String, Option<String>) {
    let full = slug_within(label, LABEL_SCAN_CHARS);
    let short = named(role, &full, MAX_NAME_CHARS);
    let longer = named(role, &full, LONGER_NAME_CHARS);
    let longer = (longer != short).then_some(longer);
    (short, longer)
}

/// The name a full slug gives within `budget`, with the role suffix; the role's own name
/// when the slug says nothing.
fn named(role: &str, full_slug: &str, budget: usize) -> String {
    let text = shorten(full_slug, role_words(role), budget);
    if text.is_empty() {
        return role_name(role);
    }
    format!("{text}{}", role_suffix(role).unwrap_or(""))
}

/// The name of an entry whose label says nothing: its role (`main`, `button_btn`).
pub fn role_name(role: &str) -> String {
    let suffix = role_suffix(role).unwrap_or("");
    let role_slug = slug(role);
    let role_slug = if role_slug.is_empty() {
        "node".to_string()
    } else {
        role_slug
    };
    format!("{role_slug}{suffix}")
}

/// The base name of a child in a directory named `parent_base`: its own, unless that only says
/// the parent's text again (a list item or row named after its only link or cell), when it is
/// its bare role word (`link`, `btn`, `statictext`), so a path says each text once.
pub fn child_base(
    parent_base: &str,
    parent_role: &str,
    child_base: &str,
    child_role: &str,
) -> String {
    let suffix = role_suffix(child_role).unwrap_or("");
    let repeats = !parent_base.is_empty()
        && parent_base != role_name(parent_role)
        && child_base
            .strip_prefix(parent_base)
            .is_some_and(|rest| rest.is_empty() || rest == suffix);
    if !repeats {
        return child_base.to_string();
    }
    match suffix.strip_prefix('_') {
        Some(word) => word.to_string(),
        None => role_name(child_role),
    }
}

/// Whether an entry's name already says its label: the name is the label's whole slug (not
/// cut short) with the role suffix, perhaps with a de-duplication number. Lines then leave the
/// label out.
pub fn name_says_label(name: &str, role: &str, label: &str) -> bool {
    // A label longer than the scan is longer than any name: not said.
    let whole = slug_within(label, LABEL_SCAN_CHARS);
    let base = named(role, &whole, MAX_NAME_CHARS);
    if whole.is_empty() || base != format!("{whole}{}", role_suffix(role).unwrap_or("")) {
        return false;
    }
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
            "comet_seen_over_bay_heading"
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
    fn names_keep_whole_words_without_fillers_or_repeated_roles() {
        assert_eq!(base_name("button", "Submit button"), "submit_btn");
        assert_eq!(base_name("button", "Button"), "button_btn");
        assert_eq!(base_name("textbox", "Email field"), "email_input");
        assert_eq!(base_name("link", "The Guardian"), "guardian_link");
        assert_eq!(base_name("link", "The"), "the_link");
        assert_eq!(
            base_name("heading", "A tale of the two cities"),
            "tale_of_two_cities_heading"
        );
        // Whole words up to the budget, never half a word after the first.
        assert_eq!(
            base_name(
                "link",
                "There is a page named Machine learning on this wiki"
            ),
            "there_is_page_named_link"
        );
        let cut = base_name("link", "Supercalifragilisticexpialidocious-ness words");
        assert_eq!(cut, "supercalifragilisticexpi_link");
        assert_eq!(
            slug("Ж".repeat(100).as_str()).chars().count(),
            MAX_NAME_CHARS
        );
        // A long first word cut at a hyphen never ends with it.
        assert!(!slug(&format!("{}- x", "a".repeat(MAX_NAME_CHARS - 1))).ends_with('-'));
    }

    #[test]
    fn a_child_never_says_its_parents_text_again() {
        assert_eq!(
            child_base("inserted_item", "listitem", "inserted_item", "StaticText"),
            "statictext"
        );
        assert_eq!(
            child_base("see_also", "listitem", "see_also_link", "link"),
            "link"
        );
        assert_eq!(child_base("alpha", "row", "alpha", "cell"), "cell");
        // Only the same text: a longer name, or one under a role-named parent, stays.
        assert_eq!(
            child_base("see", "listitem", "see_also_link", "link"),
            "see_also_link"
        );
        assert_eq!(child_base("list", "list", "list", "StaticText"), "list");
    }

    #[test]
    fn a_name_says_its_label_only_when_nothing_was_lost() {
        assert!(name_says_label("sign_in_btn", "button", "Sign in"));
        assert!(name_says_label("sign_in_btn_3", "button", "Sign  in!"));
        assert!(!name_says_label("sign_in_btn_x", "button", "Sign in"));
        assert!(!name_says_label("button_btn", "button", "✓"));
        // Dropped words are not said: the label is shown.
        assert!(!name_says_label("guardian_link", "link", "The Guardian"));
        assert!(!name_says_label("submit_btn", "button", "Submit button"));
        let long = "word ".repeat(20);
        assert!(!name_says_label(&base_name("link", &long), "link", &long));
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
