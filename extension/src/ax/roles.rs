//! What an accessibility role means for the filesystem: directory, interactive file `[x]` or
//! other file `[-]`; which nodes are flattened away (their children take their place); which
//! nodes are dropped; and the `--type` aliases of `find`.
//!
//! Pure tables and predicates over one node. It must not look at a node's relatives (the
//! `vfs` builder decides the "file or directory" question for roles that depend on content).

use super::cdp::AxNode;

/// How an entry is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A container: `cd` into it, `ls` it.
    Directory,
    /// `[x]`: something to click, type into or toggle.
    Interactive,
    /// `[-]`: text, images, headings without actionable content.
    #[default]
    Static,
}

impl EntryKind {
    /// The prefix listings print: `[d]`, `[x]`, `[-]`.
    pub fn marker(self) -> &'static str {
        match self {
            EntryKind::Directory => "[d]",
            EntryKind::Interactive => "[x]",
            EntryKind::Static => "[-]",
        }
    }

    /// The `type` field of `--json` listings.
    pub fn json_name(self) -> &'static str {
        match self {
            EntryKind::Directory => "directory",
            EntryKind::Interactive => "interactive",
            EntryKind::Static => "static",
        }
    }
}

/// Roles that are always directories.
pub const CONTAINER_ROLES: &[&str] = &[
    "group",
    "navigation",
    "form",
    "search",
    "section",
    "main",
    "complementary",
    "banner",
    "contentinfo",
    "region",
    "article",
    "list",
    "listitem",
    "tree",
    "treeitem",
    "treegrid",
    "tablist",
    "tabpanel",
    "dialog",
    "menu",
    "menubar",
    "toolbar",
    "table",
    "row",
    "rowgroup",
    "grid",
    "document",
    "application",
    "figure",
    "feed",
    "log",
    "status",
    "timer",
    "alertdialog",
    "radiogroup",
    "listbox",
    "generic",
    "WebArea",
    "RootWebArea",
    "Iframe",
    "IframePresentational",
    "LayoutTableRow",
];

/// Roles that are interactive files `[x]`.
pub const INTERACTIVE_ROLES: &[&str] = &[
    "button",
    "link",
    "textbox",
    "checkbox",
    "radio",
    "combobox",
    "menuitem",
    "menuitemcheckbox",
    "menuitemradio",
    "option",
    "switch",
    "tab",
    "slider",
    "spinbutton",
    "searchbox",
];

/// Containers that are named after their role when they have no accessible name (a landmark's
/// text would be the whole page). Other unnamed nodes are named after their children's text.
pub const NAMED_BY_ROLE: &[&str] = &[
    "navigation",
    "form",
    "search",
    "section",
    "main",
    "complementary",
    "banner",
    "contentinfo",
    "region",
    "article",
    "list",
    "tree",
    "treegrid",
    "tablist",
    "tabpanel",
    "dialog",
    "menu",
    "menubar",
    "toolbar",
    "table",
    "rowgroup",
    "grid",
    "document",
    "application",
    "figure",
    "feed",
    "log",
    "status",
    "timer",
    "alertdialog",
    "radiogroup",
    "listbox",
    "group",
    "WebArea",
    "RootWebArea",
    "Iframe",
    "IframePresentational",
];

/// Structural containers: their accessible name never comes from their content, so a change
/// inside them cannot rename them or anything above them. Re-reading the ancestors of a
/// change stops at the first of these.
pub const NAME_BOUNDARIES: &[&str] = &[
    "list",
    "table",
    "grid",
    "treegrid",
    "tree",
    "tablist",
    "tabpanel",
    "menu",
    "menubar",
    "listbox",
    "radiogroup",
    "toolbar",
    "feed",
    "log",
    "status",
    "timer",
    "main",
    "navigation",
    "banner",
    "contentinfo",
    "complementary",
    "region",
    "form",
    "search",
    "dialog",
    "alertdialog",
    "document",
    "application",
    "article",
    "figure",
    "rowgroup",
    "WebArea",
    "RootWebArea",
    "Iframe",
    "IframePresentational",
];

pub fn is_name_boundary(role: &str) -> bool {
    NAME_BOUNDARIES.contains(&role)
}

pub fn is_container(role: &str) -> bool {
    CONTAINER_ROLES.contains(&role)
}

pub fn is_interactive(role: &str) -> bool {
    INTERACTIVE_ROLES.contains(&role)
}

pub fn is_frame_owner(role: &str) -> bool {
    role == "Iframe" || role == "IframePresentational"
}

pub fn is_text(role: &str) -> bool {
    role == "StaticText"
}

/// Nodes that never become entries and whose children are not shown either: line boxes and
/// line breaks repeat their parent's text, list bullets are decoration, whitespace-only text
/// says nothing.
pub fn is_dropped(node: &AxNode) -> bool {
    match node.role() {
        "InlineTextBox" | "LineBreak" | "ListMarker" => true,
        "StaticText" => !node.ignored && node.name().is_empty(),
        _ => false,
    }
}

/// Nodes that are not shown but whose children are listed in their place: ignored nodes,
/// presentational roles, unnamed `generic` wrappers and layout-only tables, whose rows of
/// two or more cells stay (a story's rank, vote and title on an older site are one record,
/// listed together where the page shows them) while one-cell rows only wrap the page.
pub fn is_flattened(node: &AxNode) -> bool {
    if node.ignored {
        return true;
    }
    match node.role() {
        "" | "none" | "Ignored" | "presentation" => true,
        "LayoutTable" | "LayoutTableCell" => true,
        "LayoutTableRow" => node.child_ids.len() < 2,
        "generic" => node.name().is_empty(),
        _ => false,
    }
}

/// `find --type` aliases: a word and the roles it stands for. `ls --type` matches roles
/// exactly; `find --type` also accepts these.
pub const TYPE_ALIASES: &[(&str, &[&str])] = &[
    ("input", &["textbox", "searchbox", "combobox", "spinbutton"]),
    ("field", &["textbox", "searchbox", "combobox"]),
    ("dropdown", &["combobox", "listbox"]),
    ("select", &["combobox", "listbox"]),
    ("nav", &["navigation"]),
    ("sidebar", &["complementary"]),
    ("toggle", &["switch", "checkbox"]),
    ("modal", &["dialog"]),
    ("image", &["img", "image"]),
    ("searchbar", &["searchbox", "search"]),
    ("btn", &["button"]),
    ("anchor", &["link"]),
    ("header", &["banner"]),
    ("footer", &["contentinfo"]),
];

/// The roles `word` selects: itself plus, when `with_aliases`, what it is an alias for.
/// Matching is case-insensitive; the result is lower-case.
pub fn roles_for_type(word: &str, with_aliases: bool) -> Vec<String> {
    let word = word.trim().to_lowercase();
    let mut roles = vec![word.clone()];
    if with_aliases {
        if let Some((_, targets)) = TYPE_ALIASES.iter().find(|(alias, _)| *alias == word) {
            roles.extend(targets.iter().map(|r| r.to_lowercase()));
        }
    }
    roles.dedup();
    roles
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ax::cdp::AxValue;
    use serde_json::json;

    fn node(role: &str, name: &str, ignored: bool) -> AxNode {
        AxNode {
            node_id: "1".into(),
            ignored,
            role: Some(AxValue {
                kind: "role".into(),
                value: Some(json!(role)),
            }),
            name: Some(AxValue {
                kind: "computedString".into(),
                value: Some(json!(name)),
            }),
            ..AxNode::default()
        }
    }

    #[test]
    fn wrappers_are_flattened_and_named_generics_kept() {
        assert!(is_flattened(&node("generic", "", false)));
        assert!(!is_flattened(&node("generic", "Toolbar area", false)));
        assert!(is_flattened(&node("none", "", false)));
        assert!(is_flattened(&node("button", "Hidden", true)));
        assert!(!is_flattened(&node("main", "", false)));
    }

    #[test]
    fn line_boxes_and_blank_text_are_dropped() {
        assert!(is_dropped(&node("InlineTextBox", "x", false)));
        assert!(is_dropped(&node("StaticText", "   ", false)));
        assert!(!is_dropped(&node("StaticText", "Hello", false)));
    }

    #[test]
    fn aliases_expand_only_when_asked() {
        assert_eq!(roles_for_type("BTN", true), ["btn", "button"]);
        assert_eq!(roles_for_type("btn", false), ["btn"]);
        assert_eq!(roles_for_type("Link", true), ["link"]);
        assert!(roles_for_type("input", true).contains(&"spinbutton".to_string()));
    }

    #[test]
    fn kinds_print_their_markers() {
        assert_eq!(EntryKind::Directory.marker(), "[d]");
        assert_eq!(EntryKind::Interactive.marker(), "[x]");
        assert_eq!(EntryKind::Static.json_name(), "static");
    }
}
