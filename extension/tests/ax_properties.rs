//! Properties of the accessibility-tree mapping over arbitrary (often malformed) trees:
//! it never panics, it is deterministic, names are unique per directory and path-safe, and
//! every entry's path resolves back to it.

use std::collections::{BTreeMap, HashSet};

use domshell_extension::ax::{
    AxNode, AxValue, FrameNodes, PageSnapshot, PathContext, Resolved, Vfs,
};
use proptest::prelude::*;
use serde_json::json;

const ROLES: &[&str] = &[
    "RootWebArea",
    "generic",
    "none",
    "main",
    "list",
    "listitem",
    "link",
    "button",
    "StaticText",
    "paragraph",
    "heading",
    "Iframe",
    "textbox",
    "row",
    "cell",
    "InlineTextBox",
    "",
];
const NAMES: &[&str] = &[
    "",
    " ",
    "Go",
    "go",
    "Главная",
    "登录",
    "a/b",
    "..",
    "~",
    "@x",
    "%here%",
    "x_2",
    "x",
    "-n",
];

fn arb_node(count: usize) -> impl Strategy<Value = AxNode> {
    (
        0..count,
        0..ROLES.len(),
        0..NAMES.len(),
        any::<bool>(),
        proptest::collection::vec(0..count + 3, 0..5),
        proptest::option::of(0..count),
    )
        .prop_map(|(id, role, name, ignored, children, parent)| AxNode {
            node_id: id.to_string(),
            ignored: ignored && id % 3 == 0,
            role: Some(AxValue {
                kind: "role".into(),
                value: Some(json!(ROLES[role])),
            }),
            name: Some(AxValue {
                kind: "computedString".into(),
                value: Some(json!(NAMES[name])),
            }),
            child_ids: children.into_iter().map(|c| c.to_string()).collect(),
            parent_id: parent.map(|p| p.to_string()),
            backend_dom_node_id: Some(id as i64),
            ..AxNode::default()
        })
}

fn arb_page() -> impl Strategy<Value = PageSnapshot> {
    proptest::collection::vec(arb_node(40), 0..60).prop_map(|nodes| PageSnapshot {
        url: String::new(),
        main: FrameNodes {
            frame_id: "main".into(),
            nodes,
        },
        frames: Vec::new(),
    })
}

fn outline(vfs: &Vfs) -> Vec<String> {
    vfs.descendants(vfs.root(), usize::MAX)
        .into_iter()
        .map(|(id, _)| {
            let e = vfs.entry(id).unwrap();
            format!(
                "{} {} {}",
                vfs.path_of(id).join("/"),
                e.kind.marker(),
                e.role
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_tree_maps_deterministically_to_unique_resolvable_names(page in arb_page()) {
        let Ok(vfs) = Vfs::from_page(page.clone()) else {
            prop_assert!(page.main.nodes.is_empty());
            return Ok(());
        };
        let again = Vfs::from_page(page).unwrap();
        prop_assert_eq!(outline(&vfs), outline(&again));

        let bookmarks = BTreeMap::new();
        let ctx = PathContext { cwd: &[], page_prefix: "~/tabs/1", bookmarks: &bookmarks };
        let all = vfs.descendants(vfs.root(), usize::MAX);
        prop_assert_eq!(all.len() + 1, vfs.len());
        for (id, _) in all {
            let entry = vfs.entry(id).unwrap();
            prop_assert!(!entry.name.is_empty());
            prop_assert!(!entry.name.contains(['/', '~', '@', '%', '.']), "{}", entry.name);
            prop_assert!(!entry.name.starts_with('-'));
            let path = format!("/{}", vfs.path_of(id).join("/"));
            prop_assert_eq!(
                vfs.resolve(&ctx, &path),
                Ok(Resolved::Entry { id, path: vfs.path_of(id) })
            );
        }
        for (dir, _) in std::iter::once((vfs.root(), 0)).chain(vfs.descendants(vfs.root(), usize::MAX)) {
            let names: Vec<&str> = vfs.children(dir).iter().map(|&c| vfs.entry(c).unwrap().name.as_str()).collect();
            let unique: HashSet<&str> = names.iter().copied().collect();
            prop_assert_eq!(unique.len(), names.len(), "{:?}", names);
        }
    }

    #[test]
    fn replacing_any_subtree_keeps_other_directories_names(page in arb_page(), pick in any::<prop::sample::Index>(), extra in arb_node(40)) {
        let Ok(mut vfs) = Vfs::from_page(page.clone()) else { return Ok(()) };
        let entries: Vec<_> = vfs.descendants(vfs.root(), usize::MAX);
        if entries.is_empty() {
            return Ok(());
        }
        let (target, _) = entries[pick.index(entries.len())];
        let ax = vfs.entry(target).unwrap().ax_node_id.clone();
        // Re-read the target with one more (possibly odd) child.
        let mut root = page.main.nodes.iter().rev().find(|n| n.node_id == ax).unwrap().clone();
        let mut extra = extra;
        extra.node_id = "new-node".into();
        extra.parent_id = Some(ax.clone());
        root.child_ids.push(extra.node_id.clone());
        let before: Vec<_> = entries.iter().map(|&(id, _)| (id, vfs.path_of(id))).collect();
        let Ok(rebuilt) = vfs.replace_subtree("main", vec![root, extra]) else { return Ok(()) };
        // Only the rebuilt directory and its siblings (the parent's listing) may change.
        let scope = vfs.entry(rebuilt).unwrap().parent.unwrap_or(rebuilt);
        for (id, path) in before {
            let Some(_) = vfs.entry(id) else {
                let inside = path.len() > vfs.path_of(scope).len()
                    && path.starts_with(&vfs.path_of(scope));
                prop_assert!(inside || scope == vfs.root(), "{path:?} vanished");
                continue;
            };
            let inside = std::iter::successors(Some(id), |&e| vfs.entry(e).and_then(|x| x.parent))
                .skip(1)
                .any(|e| e == scope);
            if !inside {
                prop_assert_eq!(vfs.path_of(id), path);
            }
        }
    }
}
