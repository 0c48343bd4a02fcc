//! The accessibility-tree mapping on trees recorded from real Chromium
//! (`tests/fixtures/ax/`, written by `cargo run -p domshell-tests --bin record-ax-fixtures`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use domshell_extension::ax::{
    AxNode, AxValue, EntryId, EntryKind, FindQuery, ListOptions, MapError, Mapping, NodeRef,
    PageSnapshot, PathContext, PathError, Resolved, TypeFilter, Update, Vfs,
};
use serde_json::json;

fn load(name: &str) -> PageSnapshot {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ax");
    let plain = dir.join(format!("{name}.json"));
    let text = if plain.is_file() {
        std::fs::read_to_string(&plain).unwrap()
    } else {
        let file = std::fs::File::open(dir.join(format!("{name}.json.gz"))).unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .unwrap();
        text
    };
    serde_json::from_str(&text).unwrap()
}

fn map(name: &str) -> Vfs {
    Vfs::from_page(load(name)).unwrap()
}

/// Every entry as `path kind role`, depth first: the whole observable shape of a mapping.
fn outline(vfs: &Vfs) -> Vec<String> {
    vfs.descendants(vfs.root(), usize::MAX)
        .into_iter()
        .map(|(id, _)| {
            let e = vfs.entry(id).unwrap();
            format!(
                "/{} {} {}",
                vfs.path_of(id).join("/"),
                e.kind.marker(),
                e.role
            )
        })
        .collect()
}

/// The entry at `path` (names joined by `/`, from the page root).
fn at(vfs: &Vfs, path: &str) -> EntryId {
    let ctx = PathContext {
        cwd: &[],
        page_prefix: "",
        bookmarks: &BTreeMap::new(),
    };
    match vfs.resolve(&ctx, path) {
        Ok(Resolved::Entry { id, .. }) => id,
        other => panic!("{path}: {other:?}\n{}", outline(vfs).join("\n")),
    }
}

/// The entry at `path`, if any.
fn try_at(vfs: &Vfs, path: &str) -> Option<EntryId> {
    let ctx = PathContext {
        cwd: &[],
        page_prefix: "",
        bookmarks: &BTreeMap::new(),
    };
    match vfs.resolve(&ctx, path) {
        Ok(Resolved::Entry { id, .. }) => Some(id),
        _ => None,
    }
}

fn names(vfs: &Vfs, dir: EntryId) -> Vec<String> {
    vfs.children(dir)
        .iter()
        .map(|&c| vfs.entry(c).unwrap().name.clone())
        .collect()
}

#[test]
fn form_controls_are_interactive_files_with_values() {
    let vfs = map("form");
    let form = at(&vfs, "/main/sign_up");
    assert_eq!(vfs.entry(form).unwrap().kind, EntryKind::Directory);
    assert_eq!(vfs.entry(form).unwrap().role, "form");

    let email = vfs
        .entry(at(&vfs, "/main/sign_up/email_address/input"))
        .unwrap();
    assert_eq!(
        (email.kind, email.role.as_str()),
        (EntryKind::Interactive, "textbox")
    );
    assert_eq!(email.value.as_deref(), Some("ada@example.com"));
    assert!(email.backend_node_id.is_some());

    let country = vfs.entry(at(&vfs, "/main/sign_up/country/select")).unwrap();
    assert_eq!(country.value.as_deref(), Some("Germany"));
    let free = vfs
        .entry(at(&vfs, "/main/sign_up/plan/free_radio"))
        .unwrap();
    assert_eq!(free.checked.as_deref(), Some("true"));
    let terms = vfs
        .entry(at(&vfs, "/main/sign_up/i_accept_terms/chk"))
        .unwrap();
    assert_eq!(
        (terms.kind, terms.checked.as_deref()),
        (EntryKind::Interactive, Some("false"))
    );
    assert_eq!(
        vfs.entry(at(&vfs, "/main/sign_up/volume/slider"))
            .unwrap()
            .value
            .as_deref(),
        Some("3")
    );
    // An icon-only button has no name: it is named after its role.
    assert!(names(&vfs, form).contains(&"button_btn".to_string()));
    // A heading with only text is a file, not a directory to cd into.
    assert_eq!(
        vfs.entry(at(&vfs, "/main/create_your_account_heading"))
            .unwrap()
            .kind,
        EntryKind::Static
    );
    // A paragraph holding a link is a directory, so the link stays reachable.
    let signin = vfs
        .entry(at(&vfs, "/main/already_registered_sign_in/sign_in_link"))
        .unwrap();
    assert_eq!(
        signin.url.as_deref().map(|u| u.ends_with("/login")),
        Some(true)
    );
}

#[test]
fn table_rows_are_named_by_their_cells() {
    let vfs = map("table");
    let table = at(&vfs, "/main/language_models");
    assert_eq!(vfs.entry(table).unwrap().role, "table");
    let rows = names(&vfs, table);
    assert!(rows.contains(&"alpha_north_lab_8k".to_string()), "{rows:?}");
    assert!(
        rows.contains(&"delta_east_lab_1m_delta".to_string()),
        "{rows:?}"
    );
    // Text-only cells are files; a cell with a button is a directory.
    assert_eq!(
        vfs.entry(at(&vfs, "/main/language_models/alpha_north_lab_8k/alpha"))
            .unwrap()
            .kind,
        EntryKind::Static
    );
    let details = at(&vfs, "/main/language_models/alpha_north_lab_8k/details");
    assert_eq!(vfs.entry(details).unwrap().kind, EntryKind::Directory);
    assert_eq!(names(&vfs, details), ["btn"]);
    // `find --type btn` below the table: one per row.
    let buttons = vfs.find(
        table,
        &FindQuery {
            type_filter: Some(TypeFilter::with_aliases("btn")),
            ..FindQuery::default()
        },
    );
    assert_eq!(buttons.len(), 3);
    assert_eq!(
        buttons[1].relative_path,
        ["beta_south_lab_32k", "details", "btn"]
    );
    let text = vfs
        .entry(at(&vfs, "/main/language_models/alpha_north_lab_8k"))
        .unwrap()
        .text_len;
    assert_eq!(
        text,
        "Alpha".len() + "North Lab".len() + "8k".len() + "Details".len()
    );
}

#[test]
fn nested_landmarks_flatten_wrappers_and_deduplicate() {
    let vfs = map("landmarks");
    // <main> sits inside three unnamed <div>s: they are flattened away.
    assert_eq!(
        names(&vfs, vfs.root()),
        ["banner", "main", "related", "contentinfo"]
    );
    assert_eq!(
        names(&vfs, at(&vfs, "/main")),
        [
            "today_heading",
            "comet_seen_over_bay",
            "rain_expected_tomorrow",
            "opinion",
            "cookie_notice"
        ]
    );
    assert_eq!(
        names(&vfs, at(&vfs, "/main/opinion/columns")),
        ["article", "article_2"]
    );
    assert_eq!(
        names(&vfs, at(&vfs, "/main/cookie_notice")),
        ["we_use_no_cookies", "ok_btn", "ok_btn_2"]
    );
    assert_eq!(
        names(&vfs, at(&vfs, "/banner/primary/list")),
        ["world", "science", "sport"]
    );
    // The same link name in different directories is not de-duplicated across them.
    for article in [
        "/main/comet_seen_over_bay",
        "/main/rain_expected_tomorrow",
        "/main/opinion/columns/article_2",
    ] {
        at(&vfs, &format!("{article}/read_more_link"));
    }
    let counts = vfs.count(vfs.children(at(&vfs, "/main/cookie_notice")));
    assert_eq!(
        (
            counts.total,
            counts.directories,
            counts.interactive,
            counts.other
        ),
        (3, 0, 2, 1)
    );
}

#[test]
fn same_origin_frame_is_stitched_under_its_iframe() {
    let page = load("frame_same_origin");
    let child_frame = page.frames[0].frame_id.clone();
    assert!(!page.frames[0].out_of_process);
    let vfs = Vfs::from_page(page).unwrap();
    let iframe = vfs.entry(at(&vfs, "/main/embedded_checkout")).unwrap();
    assert_eq!(
        (iframe.kind, iframe.role.as_str()),
        (EntryKind::Directory, "Iframe")
    );
    let pay = vfs
        .entry(at(&vfs, "/main/embedded_checkout/main/pay_now_btn"))
        .unwrap();
    assert_eq!(
        pay.frame_id, child_frame,
        "the button belongs to the child frame"
    );
    assert!(pay.backend_node_id.is_some());
    at(&vfs, "/main/embedded_checkout/main/card_number_input");
    assert_eq!(vfs.frame_count(), 1);
    assert!(vfs.unattached_frames().is_empty());
}

#[test]
fn cross_site_out_of_process_frame_is_stitched_under_its_iframe() {
    let page = load("frame_cross_site");
    assert!(
        page.frames[0].out_of_process,
        "the fixture must hold an out-of-process frame"
    );
    let oopif = page.frames[0].frame_id.clone();
    let vfs = Vfs::from_page(page).unwrap();
    let widget = at(&vfs, "/main/partner_widget");
    assert_eq!(names(&vfs, widget), ["partner_menu", "main"]);
    let offers = vfs
        .entry(at(&vfs, "/main/partner_widget/partner_menu/offers_link"))
        .unwrap();
    assert_eq!(offers.frame_id, oopif);
    assert!(offers
        .url
        .as_deref()
        .is_some_and(|u| u.starts_with("http://localhost:")));
    at(&vfs, "/main/partner_widget/main/subscribe_btn");
    // The frame's entries are found from the host page too.
    let found = vfs.find(
        vfs.root(),
        &FindQuery {
            pattern: Some("subscribe".into()),
            ..FindQuery::default()
        },
    );
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].relative_path,
        ["main", "partner_widget", "main", "subscribe_btn"]
    );
    assert!(vfs.unattached_frames().is_empty());
}

#[test]
fn a_frame_read_late_is_attached_to_its_iframe() {
    let mut page = load("frame_cross_site");
    let frame = page.frames.remove(0);
    let mut vfs = Vfs::from_page(page).unwrap();
    assert!(names(&vfs, at(&vfs, "/main/partner_widget")).is_empty());
    let before = at(&vfs, "/main/host_btn");
    let rebuilt = vfs.attach_frame(frame).expect("the owner iframe is mapped");
    assert_eq!(rebuilt, at(&vfs, "/main/partner_widget"));
    at(&vfs, "/main/partner_widget/partner_menu/support_link");
    assert_eq!(
        at(&vfs, "/main/host_btn"),
        before,
        "siblings keep their handles"
    );
}

#[test]
fn frames_attach_when_the_main_frame_id_is_unknown() {
    let mut page = load("frame_cross_site");
    page.main.frame_id.clear();
    let vfs = Vfs::from_page(page).unwrap();
    at(&vfs, "/main/partner_widget/main/subscribe_btn");
    assert!(vfs.unattached_frames().is_empty());
}

#[test]
fn a_frame_without_a_known_owner_is_reported() {
    let mut page = load("frame_cross_site");
    page.frames[0].owner_backend_node_id = Some(999_999);
    let vfs = Vfs::from_page(page).unwrap();
    assert_eq!(vfs.unattached_frames().len(), 1);
    assert!(names(&vfs, at(&vfs, "/main/partner_widget")).is_empty());
}

#[test]
fn non_latin_names_stay_readable() {
    let vfs = map("i18n");
    assert_eq!(
        names(&vfs, vfs.root()),
        ["навигация", "основное_содержание"]
    );
    assert_eq!(
        names(&vfs, at(&vfs, "/навигация")),
        ["главная_link", "новости_link", "新闻_link", "ニュース_link"]
    );
    at(&vfs, "/основное_содержание/вход/войти_btn");
    at(&vfs, "/основное_содержание/вход/登录_btn");
    assert_eq!(
        names(&vfs, at(&vfs, "/основное_содержание/中文_区域")),
        [
            "欢迎来到我们的网站_heading",
            "阅读更多_link",
            "阅读更多_link_2"
        ]
    );
    at(&vfs, "/основное_содержание/ёлка_straße_école_btn");
    // Agents may type another case.
    at(&vfs, "/ОСНОВНОЕ_СОДЕРЖАНИЕ/Вход/Войти_btn");
    // No entry fell back to a role- or id-based ASCII name such as `main_443`.
    for line in outline(&vfs) {
        let path = line.split(' ').next().unwrap();
        let last = path.rsplit('/').next().unwrap();
        assert!(!last.is_ascii(), "{line}");
    }
}

#[test]
fn a_page_of_over_ten_thousand_nodes_maps() {
    let vfs = map("big");
    assert!(vfs.node_count() >= 10_000, "{} nodes", vfs.node_count());
    let items = at(&vfs, "/main/items");
    assert_eq!(vfs.children(items).len(), 2000);
    assert_eq!(names(&vfs, items)[0], "item_1_add_1");
    let item = at(&vfs, "/main/items/item_1234_add_1234");
    assert_eq!(names(&vfs, item), ["item_1234_link", "add_1234_btn"]);
    let links = vfs.find(
        vfs.root(),
        &FindQuery {
            type_filter: Some(TypeFilter::with_aliases("anchor")),
            ..FindQuery::default()
        },
    );
    assert_eq!(links.len(), 2000);
    let counts = vfs.count(
        &vfs.descendants(vfs.root(), usize::MAX)
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>(),
    );
    assert_eq!(counts.interactive, 4000);
    assert_eq!(vfs.len(), counts.total + 1);
}

#[test]
fn a_page_mapped_in_small_steps_is_the_page_mapped_at_once() {
    // The worker maps large pages a step at a time, yielding between steps: however the
    // work is cut (inside a directory of 2,000 items, between frames), the result is the same.
    for name in [
        "big",
        "landmarks",
        "form",
        "frame_cross_site",
        "frame_same_origin",
    ] {
        let whole = map(name);
        for budget in [1, 7, 500] {
            let mut mapping = Mapping::new(load(name), Default::default());
            let mut steps = 0usize;
            while !mapping.step(budget).unwrap() {
                steps += 1;
                assert!(steps <= 1_000_000, "{name}: mapping never ends");
            }
            let sliced = mapping.finish();
            assert_eq!(outline(&sliced), outline(&whole), "{name}, budget {budget}");
            assert_eq!(sliced.node_count(), whole.node_count(), "{name}");
            // Each step makes at most `budget` entries, so the work really was cut.
            assert!(
                steps >= whole.len().saturating_sub(1) / budget,
                "{name}, budget {budget}: {steps} steps for {} entries",
                whole.len()
            );
        }
    }
}

#[test]
fn an_empty_page_fails_to_map_in_steps_as_at_once() {
    let mut page = load("form");
    page.main.nodes.clear();
    page.frames.clear();
    let mut mapping = Mapping::new(page, Default::default());
    assert!(matches!(mapping.step(10), Err(MapError::EmptyTree)));
}

#[test]
fn two_recordings_of_a_page_give_identical_paths() {
    for (first, second) in [("landmarks", "landmarks_again"), ("big", "big_again")] {
        let (a, b) = (map(first), map(second));
        assert!(!outline(&a).is_empty());
        assert_eq!(outline(&a), outline(&b), "{first} vs {second}");
    }
}

#[test]
fn names_do_not_depend_on_node_ids_or_node_order() {
    // A refresh renumbers AX and DOM nodes and may list them in another order.
    for name in ["landmarks", "form", "i18n", "frame_cross_site"] {
        let page = load(name);
        let renumber = |id: &str| format!("r{}", id.chars().rev().collect::<String>());
        let mut moved = page.clone();
        for frame_nodes in std::iter::once(&mut moved.main.nodes)
            .chain(moved.frames.iter_mut().map(|f| &mut f.nodes))
        {
            for node in frame_nodes.iter_mut() {
                node.node_id = renumber(&node.node_id);
                node.child_ids = node.child_ids.iter().map(|c| renumber(c)).collect();
                node.parent_id = node.parent_id.as_deref().map(renumber);
                node.backend_dom_node_id = node.backend_dom_node_id.map(|b| b + 7_000);
            }
            frame_nodes.reverse();
        }
        for frame in &mut moved.frames {
            frame.owner_backend_node_id = frame.owner_backend_node_id.map(|b| b + 7_000);
        }
        assert_eq!(
            outline(&map_page(page)),
            outline(&map_page(moved)),
            "{name}"
        );
    }
}

fn map_page(page: PageSnapshot) -> Vfs {
    Vfs::from_page(page).unwrap()
}

/// The nodes of the subtree rooted at `root` (root first, document order).
fn subtree(page: &PageSnapshot, root: &str) -> Vec<AxNode> {
    let by_id: std::collections::HashMap<&str, &AxNode> = page
        .main
        .nodes
        .iter()
        .map(|n| (n.node_id.as_str(), n))
        .collect();
    let mut out = Vec::new();
    let mut stack = vec![root.to_string()];
    while let Some(id) = stack.pop() {
        let node = by_id[id.as_str()];
        out.push(node.clone());
        stack.extend(node.child_ids.iter().rev().cloned());
    }
    out
}

fn text_node(id: &str, parent: &str, role: &str, name: &str, children: &[&str]) -> AxNode {
    AxNode {
        node_id: id.into(),
        role: Some(AxValue {
            kind: "role".into(),
            value: Some(json!(role)),
        }),
        name: Some(AxValue {
            kind: "computedString".into(),
            value: Some(json!(name)),
        }),
        child_ids: children.iter().map(|c| c.to_string()).collect(),
        parent_id: Some(parent.into()),
        backend_dom_node_id: Some(90_000 + id.len() as i64),
        ..AxNode::default()
    }
}

#[test]
fn inserting_into_one_container_renames_nothing_elsewhere() {
    let page = load("landmarks");
    let mut vfs = Vfs::from_page(page.clone()).unwrap();
    let before = outline(&vfs);
    let list = at(&vfs, "/banner/primary/list");
    let others: Vec<(String, EntryId)> = [
        "/related/list/archive/link",
        "/main/cookie_notice/ok_btn_2",
        "/main/opinion/columns/article_2",
        "/banner/primary",
    ]
    .iter()
    .map(|p| (p.to_string(), at(&vfs, p)))
    .collect();

    // Script inserts <li><a>World</a></li> at the top of the primary navigation's list.
    let list_ax = vfs.entry(list).unwrap().ax_node_id.clone();
    let mut nodes = subtree(&page, &list_ax);
    nodes[0].child_ids.insert(0, "n1".into());
    nodes.push(text_node("n1", &list_ax, "listitem", "", &["n2"]));
    nodes.push(text_node("n2", "n1", "link", "World", &["n3"]));
    nodes.push(text_node("n3", "n2", "StaticText", "World", &[]));
    let rebuilt = vfs.replace_subtree("", nodes).unwrap();
    assert_eq!(rebuilt, list, "the list directory is rebuilt in place");
    // A mutation reported on the list's DOM node lands on the same directory.
    let list_backend = vfs.entry(list).unwrap().backend_node_id.unwrap();
    assert_eq!(
        vfs.nearest_entry_for_backend_node("", list_backend),
        Some(list)
    );
    assert_eq!(
        vfs.nearest_entry_for_node("", "n3"),
        vfs.entry_for_node("", "n2")
    );

    // The new item comes first but gets a new name: `world` still denotes the old one.
    assert_eq!(names(&vfs, list), ["world_2", "world", "science", "sport"]);
    for (path, id) in &others {
        assert_eq!(at(&vfs, path), *id, "{path} kept its handle");
    }
    let after = outline(&vfs);
    let outside = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| !l.starts_with("/banner/primary/list/"))
            .cloned()
            .collect()
    };
    assert_eq!(outside(&before), outside(&after));
}

#[test]
fn replacing_a_subtree_with_its_own_read_changes_nothing() {
    let page = load("table");
    let mut vfs = Vfs::from_page(page.clone()).unwrap();
    let before = outline(&vfs);
    let table = at(&vfs, "/main/language_models");
    let root_len = vfs.entry(vfs.root()).unwrap().text_len;
    let ax = vfs.entry(table).unwrap().ax_node_id.clone();
    vfs.replace_subtree("", subtree(&page, &ax)).unwrap();
    assert_eq!(outline(&vfs), before);
    assert_eq!(vfs.entry(vfs.root()).unwrap().text_len, root_len);
}

#[test]
fn a_removed_row_leaves_its_siblings_alone() {
    let page = load("table");
    let mut vfs = Vfs::from_page(page.clone()).unwrap();
    let table = at(&vfs, "/main/language_models");
    let heading = at(&vfs, "/main/models_heading");
    let beta = vfs
        .entry(at(&vfs, "/main/language_models/beta_south_lab_32k"))
        .unwrap()
        .ax_node_id
        .clone();
    let rowgroup_ax = page
        .main
        .nodes
        .iter()
        .find(|n| n.node_id == beta)
        .unwrap()
        .parent_id
        .clone()
        .unwrap();
    let mut nodes = subtree(&page, &rowgroup_ax);
    nodes[0].child_ids.retain(|c| *c != beta);
    let removed: Vec<String> = subtree(&page, &beta)
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    let nodes: Vec<AxNode> = nodes
        .into_iter()
        .filter(|n| !removed.contains(&n.node_id))
        .collect();
    let root_len = vfs.entry(vfs.root()).unwrap().text_len;
    vfs.replace_subtree("", nodes).unwrap();
    let rows = names(&vfs, table);
    assert!(
        !rows.contains(&"beta_south_lab_32k".to_string()),
        "{rows:?}"
    );
    assert!(rows.contains(&"gamma_north_lab_128k".to_string()));
    assert_eq!(
        vfs.entry(vfs.root()).unwrap().text_len,
        root_len - "BetaSouth Lab32kDetails".len()
    );
    // The (flattened) row group's directory is the table: the rest of the page is untouched.
    assert_eq!(at(&vfs, "/main/models_heading"), heading);
}

/// Build the tree the way a lazy kernel would: root first, then `getChildAXNodes` for every
/// node the filesystem reports as pending, until nothing is pending.
fn build_on_demand(page: &PageSnapshot) -> Vfs {
    let by_id: std::collections::HashMap<&str, &AxNode> = page
        .main
        .nodes
        .iter()
        .map(|n| (n.node_id.as_str(), n))
        .collect();
    let root = page.main.nodes[0].clone();
    let mut vfs = Vfs::from_page(PageSnapshot {
        url: page.url.clone(),
        main: domshell_extension::ax::FrameNodes {
            frame_id: page.main.frame_id.clone(),
            nodes: vec![root],
        },
        frames: Vec::new(),
    })
    .unwrap();
    for round in 0.. {
        assert!(round < 1000, "fetching on demand did not converge");
        let pending: Vec<NodeRef> = std::iter::once(vfs.root())
            .chain(
                vfs.descendants(vfs.root(), usize::MAX)
                    .into_iter()
                    .map(|(id, _)| id),
            )
            .flat_map(|id| vfs.pending(id).to_vec())
            .collect();
        if pending.is_empty() {
            break;
        }
        // Names in a directory not fully read yet are provisional (never shown: a directory
        // is read before it is listed); the others are given for good.
        let seen: Vec<(String, String)> = outline(&vfs)
            .into_iter()
            .zip(vfs.descendants(vfs.root(), usize::MAX))
            .filter(|(_, (id, _))| {
                let parent = vfs.entry(*id).unwrap().parent.unwrap();
                vfs.pending_to_list(parent).is_empty()
            })
            .map(|(line, (id, _))| (line, vfs.entry(id).unwrap().ax_node_id.clone()))
            .collect();
        for node in pending {
            let parent = by_id[node.ax_node_id.as_str()];
            let children: Vec<AxNode> = parent
                .child_ids
                .iter()
                .filter_map(|c| by_id.get(c.as_str()).map(|n| (*n).clone()))
                .collect();
            vfs.add_nodes(&node.frame_id, children).unwrap();
        }
        // A name once given keeps denoting its element while more children arrive.
        for (line, ax) in seen {
            let path = line.split(' ').next().unwrap();
            if let Some(id) = try_at(&vfs, path) {
                assert_eq!(vfs.entry(id).unwrap().ax_node_id, ax, "{path} moved");
            }
        }
    }
    vfs
}

/// Each entry by what it is, not what it is called: its node, kind, role and its parent's
/// node. Names can differ when children arrive in another order (the first to arrive keeps
/// the bare name; names never move afterwards).
fn shape(vfs: &Vfs) -> Vec<String> {
    let mut lines: Vec<String> = vfs
        .descendants(vfs.root(), usize::MAX)
        .into_iter()
        .map(|(id, _)| {
            let e = vfs.entry(id).unwrap();
            let parent = e
                .parent
                .and_then(|p| vfs.entry(p))
                .map(|p| p.ax_node_id.clone())
                .unwrap_or_default();
            format!(
                "{} {} {} under {parent}",
                e.ax_node_id,
                e.kind.marker(),
                e.role
            )
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn children_fetched_on_demand_give_the_same_filesystem() {
    for name in ["landmarks", "form", "table", "i18n"] {
        let page = load(name);
        let lazy = build_on_demand(&page);
        let full = Vfs::from_page(page).unwrap();
        assert_eq!(shape(&lazy), shape(&full), "{name}");
    }
}

#[test]
fn one_directory_can_be_listed_without_reading_the_page() {
    let page = load("landmarks");
    let full = Vfs::from_page(page.clone()).unwrap();
    let by_id: std::collections::HashMap<&str, &AxNode> = page
        .main
        .nodes
        .iter()
        .map(|n| (n.node_id.as_str(), n))
        .collect();
    let mut lazy = Vfs::from_page(PageSnapshot {
        main: domshell_extension::ax::FrameNodes {
            frame_id: page.main.frame_id.clone(),
            nodes: vec![page.main.nodes[0].clone()],
        },
        ..PageSnapshot::default()
    })
    .unwrap();
    // `ls /banner/primary/list`, fetching only what each step needs.
    let mut calls = 0;
    let mut dir = lazy.root();
    for name in ["", "banner", "primary", "list"] {
        if !name.is_empty() {
            dir = *lazy
                .children(dir)
                .iter()
                .find(|&&c| lazy.entry(c).unwrap().name == name)
                .unwrap_or_else(|| panic!("{name} in {:?}", names(&lazy, dir)));
        }
        for _ in 0..20 {
            let pending = lazy.pending_to_list(dir);
            if pending.is_empty() {
                break;
            }
            for node in pending {
                calls += 1;
                let children = by_id[node.ax_node_id.as_str()]
                    .child_ids
                    .iter()
                    .filter_map(|c| by_id.get(c.as_str()).map(|n| (*n).clone()))
                    .collect();
                lazy.add_nodes(&node.frame_id, children).unwrap();
            }
        }
        assert!(lazy.pending_to_list(dir).is_empty());
        let full_dir = at(&full, &format!("/{}", lazy.path_of(dir).join("/")));
        assert_eq!(names(&lazy, dir), names(&full, full_dir), "{name}");
    }
    assert!(
        lazy.node_count() < page.main.nodes.len() / 2,
        "{} of {} nodes read",
        lazy.node_count(),
        page.main.nodes.len()
    );
    assert!(calls < 40, "{calls} getChildAXNodes calls");
}

#[test]
fn a_directory_not_fetched_yet_says_so() {
    let page = load("landmarks");
    let root = page.main.nodes[0].clone();
    let vfs = Vfs::from_page(PageSnapshot {
        main: domshell_extension::ax::FrameNodes {
            frame_id: String::new(),
            nodes: vec![root.clone()],
        },
        ..PageSnapshot::default()
    })
    .unwrap();
    assert!(!vfs.is_complete(vfs.root()));
    assert_eq!(vfs.pending(vfs.root())[0].ax_node_id, root.node_id);
    let ctx = PathContext {
        cwd: &[],
        page_prefix: "",
        bookmarks: &BTreeMap::new(),
    };
    let err = vfs.resolve_dir(&ctx, "main").unwrap_err();
    assert!(matches!(err, PathError::NotLoaded { .. }), "{err:?}");
}

fn bookmarks() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("nav".to_string(), "~/tabs/7/banner/primary".to_string()),
        ("rel".to_string(), "/related".to_string()),
        ("wins".to_string(), "~/windows".to_string()),
    ])
}

#[test]
fn paths_resolve_like_a_shell() {
    let vfs = map("landmarks");
    let marks = bookmarks();
    let cwd = vec!["main".to_string()];
    let ctx = PathContext {
        cwd: &cwd,
        page_prefix: "~/tabs/7",
        bookmarks: &marks,
    };
    let entry =
        |p: &[&str]| Ok::<_, PathError>(p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let cases: Vec<(&str, Result<Vec<String>, PathError>)> = vec![
        ("", entry(&["main"])),
        (".", entry(&["main"])),
        ("/", entry(&[])),
        ("/banner/primary", entry(&["banner", "primary"])),
        (
            "comet_seen_over_bay",
            entry(&["main", "comet_seen_over_bay"]),
        ),
        ("./opinion/columns/", entry(&["main", "opinion", "columns"])),
        ("..", entry(&[])),
        ("../related/list", entry(&["related", "list"])),
        ("opinion/columns/../..", entry(&["main"])),
        ("%here%/cookie_notice", entry(&["main", "cookie_notice"])),
        ("%here%", entry(&["main"])),
        ("@nav/list", entry(&["banner", "primary", "list"])),
        ("@rel", entry(&["related"])),
        ("~/tabs/7", entry(&[])),
        ("~/tabs/7/contentinfo", entry(&["contentinfo"])),
        ("/MAIN/Cookie_Notice", entry(&["main", "cookie_notice"])),
        (
            "cookie_notice/ok_btn_2",
            entry(&["main", "cookie_notice", "ok_btn_2"]),
        ),
    ];
    for (input, want) in cases {
        let got = vfs.resolve(&ctx, input).map(|r| match r {
            Resolved::Entry { id, path } => {
                assert_eq!(vfs.path_of(id), path, "{input}");
                path
            }
            other => panic!("{input}: {other:?}"),
        });
        assert_eq!(got, want, "{input}");
    }
    let browser: Vec<(&str, &str)> = vec![
        ("~", "~"),
        ("~/tabs", "~/tabs"),
        ("~/tabs/8/main", "~/tabs/8/main"),
        ("../..", "~/tabs"),
        ("../../..", "~"),
        ("../../../windows/1", "~/windows/1"),
        ("@wins", "~/windows"),
    ];
    for (input, want) in browser {
        assert_eq!(
            vfs.resolve(&ctx, input),
            Ok(Resolved::Browser {
                path: want.to_string()
            }),
            "{input}"
        );
    }
}

#[test]
fn path_errors_name_the_culprit_and_what_exists() {
    let vfs = map("landmarks");
    let marks = bookmarks();
    let cwd = vec!["main".to_string()];
    let ctx = PathContext {
        cwd: &cwd,
        page_prefix: "~/tabs/7",
        bookmarks: &marks,
    };

    let err = vfs.resolve_dir(&ctx, "x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "x: No such directory\nDirectories in ~/tabs/7/main: comet_seen_over_bay/  rain_expected_tomorrow/  opinion/  cookie_notice/"
    );
    let err = vfs.resolve(&ctx, "opinion/nope").unwrap_err();
    assert_eq!(
        err.to_string(),
        "nope: No such file or directory\nEntries in ~/tabs/7/main/opinion: columns/"
    );
    let err = vfs.resolve_dir(&ctx, "today_heading").unwrap_err();
    assert_eq!(
        err.to_string(),
        "today_heading: Not a directory (type: [-] heading)"
    );
    let err = vfs
        .resolve(&ctx, "cookie_notice/ok_btn/deeper")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ok_btn: Not a directory (type: [x] button)"
    );
    let err = vfs.resolve(&ctx, "@missing/x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "@missing: no such bookmark; saved: @nav @rel @wins"
    );
    let err = vfs
        .resolve_dir(&ctx, "comet_seen_over_bay/sub")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "sub: No such directory\n(no directories in ~/tabs/7/main/comet_seen_over_bay)"
    );
    // A stale cwd (the page changed under it) is reported, not silently reset.
    let gone = vec!["vanished".to_string()];
    let stale = PathContext { cwd: &gone, ..ctx };
    assert!(
        matches!(vfs.resolve(&stale, "x"), Err(PathError::NotFound { segment, .. }) if segment == "vanished")
    );
}

/// The kernel's `cd`: adopt the resolved directory only on success.
fn cd(vfs: &Vfs, cwd: &mut Vec<String>, path: &str) -> Result<(), String> {
    let marks = bookmarks();
    let ctx = PathContext {
        cwd,
        page_prefix: "~/tabs/7",
        bookmarks: &marks,
    };
    match vfs.resolve_dir(&ctx, path) {
        Ok(Resolved::Entry { path, .. }) => {
            *cwd = path;
            Ok(())
        }
        Ok(Resolved::Browser { path }) => Err(format!("browser level: {path}")),
        Err(e) => Err(format!("cd: {e}")),
    }
}

#[test]
fn cd_is_all_or_nothing() {
    let vfs = map("landmarks");
    let mut cwd = vec!["main".to_string()];
    cd(&vfs, &mut cwd, "opinion").unwrap();
    assert_eq!(cwd, ["main", "opinion"]);
    // The first two segments exist; the third does not: nothing moves.
    let err = cd(&vfs, &mut cwd, "columns/article/missing").unwrap_err();
    assert!(err.starts_with("cd: missing: No such directory\n"), "{err}");
    assert_eq!(cwd, ["main", "opinion"]);
    let err = cd(&vfs, &mut cwd, "/banner/primary/list/world/link").unwrap_err();
    assert_eq!(err, "cd: link: Not a directory (type: [x] link)");
    assert_eq!(cwd, ["main", "opinion"]);
    let err = cd(&vfs, &mut cwd, "@nope").unwrap_err();
    assert!(err.starts_with("cd: @nope: no such bookmark"), "{err}");
    assert_eq!(cwd, ["main", "opinion"]);
    cd(&vfs, &mut cwd, "@nav/list/science").unwrap();
    assert_eq!(cwd, ["banner", "primary", "list", "science"]);
}

#[test]
fn listings_slice_filter_and_page() {
    let vfs = map("landmarks");
    let main = at(&vfs, "/main");
    let shown = |opts: ListOptions| -> (Vec<String>, usize) {
        let page = vfs.list(main, &opts).unwrap();
        (
            page.entries
                .iter()
                .map(|&e| vfs.entry(e).unwrap().name.clone())
                .collect(),
            page.total,
        )
    };
    assert_eq!(shown(ListOptions::default()).1, 5);
    assert_eq!(
        shown(ListOptions {
            after: Some("today_heading".into()),
            before: Some("cookie_notice".into()),
            ..ListOptions::default()
        }),
        (
            vec![
                "comet_seen_over_bay".into(),
                "rain_expected_tomorrow".into(),
                "opinion".into()
            ],
            3
        )
    );
    assert_eq!(
        shown(ListOptions {
            type_filter: Some(TypeFilter::exact("ARTICLE")),
            ..ListOptions::default()
        }),
        (
            vec![
                "comet_seen_over_bay".into(),
                "rain_expected_tomorrow".into()
            ],
            2
        )
    );
    assert_eq!(
        shown(ListOptions {
            offset: 1,
            limit: Some(2),
            ..ListOptions::default()
        }),
        (
            vec![
                "comet_seen_over_bay".into(),
                "rain_expected_tomorrow".into()
            ],
            5
        )
    );
    // `ls --type` is exact; aliases are for `find`.
    assert_eq!(
        shown(ListOptions {
            type_filter: Some(TypeFilter::exact("modal")),
            ..ListOptions::default()
        })
        .1,
        0
    );
    let modal = vfs.find(
        vfs.root(),
        &FindQuery {
            type_filter: Some(TypeFilter::with_aliases("modal")),
            ..FindQuery::default()
        },
    );
    assert_eq!(modal.len(), 1);
    assert!(vfs
        .list(
            main,
            &ListOptions {
                after: Some("nope".into()),
                ..ListOptions::default()
            }
        )
        .is_err());
    assert!(vfs
        .list(at(&vfs, "/main/today_heading"), &ListOptions::default())
        .is_err());
    let limited = vfs.find(
        vfs.root(),
        &FindQuery {
            pattern: Some("READ MORE".into()),
            limit: Some(2),
            ..FindQuery::default()
        },
    );
    assert_eq!(limited.len(), 2);
    let tree = vfs.descendants(at(&vfs, "/banner"), 2);
    assert!(tree.iter().all(|(_, depth)| *depth <= 2));
    assert!(tree
        .iter()
        .any(|(id, _)| vfs.entry(*id).unwrap().name == "list"));
}

fn raw(id: &str, role: &str, children: &[&str]) -> AxNode {
    AxNode {
        node_id: id.into(),
        role: Some(AxValue {
            kind: "role".into(),
            value: Some(json!(role)),
        }),
        child_ids: children.iter().map(|c| c.to_string()).collect(),
        ..AxNode::default()
    }
}

fn page_of(nodes: Vec<AxNode>) -> PageSnapshot {
    PageSnapshot {
        main: domshell_extension::ax::FrameNodes {
            frame_id: "F".into(),
            nodes,
        },
        ..PageSnapshot::default()
    }
}

#[test]
fn malformed_trees_map_without_panicking() {
    assert_eq!(
        Vfs::from_page(page_of(Vec::new())).unwrap_err(),
        MapError::EmptyTree
    );
    // A cycle through a list, a self-loop, a dangling child id, a child listed twice.
    let vfs = Vfs::from_page(page_of(vec![
        raw("1", "RootWebArea", &["2", "2", "9"]),
        raw("2", "list", &["3", "2"]),
        raw("3", "listitem", &["1", "2", "3"]),
    ]))
    .unwrap();
    assert_eq!(vfs.len(), 3);
    assert!(
        !vfs.is_complete(vfs.root()),
        "the dangling child 9 is reported as not loaded"
    );
    // A root that is not a document still lists its children.
    let vfs = Vfs::from_page(page_of(vec![
        raw("1", "button", &["2"]),
        raw("2", "link", &[]),
    ]))
    .unwrap();
    assert_eq!(names(&vfs, vfs.root()), ["link_link"]);
    assert_eq!(vfs.entry(vfs.root()).unwrap().kind, EntryKind::Directory);
    // A wrapper cycle (two ignored nodes pointing at each other).
    let mut a = raw("2", "generic", &["3"]);
    a.ignored = true;
    let mut b = raw("3", "none", &["2"]);
    b.ignored = true;
    assert_eq!(
        Vfs::from_page(page_of(vec![raw("1", "RootWebArea", &["2"]), a, b]))
            .unwrap()
            .len(),
        1
    );
    // A chain of 100,000 nested unnamed wrappers ending in a button: no recursion to overflow.
    let mut nodes = vec![raw("0", "RootWebArea", &["1"])];
    for i in 1..100_000 {
        nodes.push(raw(&i.to_string(), "generic", &[&(i + 1).to_string()]));
    }
    nodes.push(raw("100000", "button", &[]));
    let vfs = Vfs::from_page(page_of(nodes)).unwrap();
    assert_eq!(names(&vfs, vfs.root()), ["button_btn"]);
    // 2,000 nested groups: deep directories, bounded walks.
    let mut nodes = vec![raw("0", "RootWebArea", &["1"])];
    for i in 1..2_000 {
        nodes.push(raw(&i.to_string(), "group", &[&(i + 1).to_string()]));
    }
    let vfs = Vfs::from_page(page_of(nodes)).unwrap();
    assert_eq!(vfs.len(), 2_000);
    // Garbage JSON values where strings are expected.
    let page: PageSnapshot = serde_json::from_str(
        r#"{"main": {"nodes": [{"nodeId": "1", "role": {"value": 5}, "childIds": "x", "name": {"value": ["a"]}}]}}"#,
    )
    .unwrap();
    let vfs = Vfs::from_page(page).unwrap();
    assert_eq!(vfs.len(), 1);
    // Replacing with nothing, or with nodes of an unknown frame, is an error, not a panic.
    let mut vfs = map("form");
    assert_eq!(
        vfs.replace_subtree("", Vec::new()).unwrap_err(),
        MapError::EmptyReplacement
    );
    assert!(matches!(
        vfs.replace_subtree("nope", vec![raw("1", "main", &[])]),
        Err(MapError::UnknownFrame(_))
    ));
    assert!(matches!(
        vfs.replace_subtree("", vec![raw("zz", "main", &[])]),
        Err(MapError::Unanchored { .. })
    ));
}

/// `page` with `edit` applied to its main frame's nodes.
fn edited(page: &PageSnapshot, edit: impl FnOnce(&mut Vec<AxNode>)) -> PageSnapshot {
    let mut page = page.clone();
    edit(&mut page.main.nodes);
    page
}

fn node_mut<'a>(nodes: &'a mut [AxNode], id: &str) -> &'a mut AxNode {
    nodes.iter_mut().find(|n| n.node_id == id).unwrap()
}

fn node_of(page: &PageSnapshot, id: &str) -> AxNode {
    page.main
        .nodes
        .iter()
        .find(|n| n.node_id == id)
        .unwrap()
        .clone()
}

#[test]
fn a_partial_update_gives_the_filesystem_a_full_read_gives() {
    let page = load("landmarks");
    let vfs = Vfs::from_page(page.clone()).unwrap();
    let list_ax = vfs
        .entry(at(&vfs, "/banner/primary/list"))
        .unwrap()
        .ax_node_id
        .clone();
    let first_item = node_of(&page, &list_ax).child_ids[0].clone();

    // Script appends <li><a>World</a></li>: the list's child list and the new subtree.
    let appended = edited(&page, |nodes| {
        node_mut(nodes, &list_ax).child_ids.push("n1".into());
        nodes.push(text_node("n1", &list_ax, "listitem", "", &["n2"]));
        nodes.push(text_node("n2", "n1", "link", "World", &["n3"]));
        nodes.push(text_node("n3", "n2", "StaticText", "World", &[]));
    });
    let mut vfs = Vfs::from_page(page.clone()).unwrap();
    let rebuilt = vfs
        .apply_update(
            "",
            Update {
                subtrees: vec![subtree(&appended, "n1")],
                nodes: vec![node_of(&appended, &list_ax)],
            },
        )
        .unwrap();
    assert_eq!(rebuilt, vec![at(&vfs, "/banner/primary/list")]);
    assert_eq!(outline(&vfs), outline(&map_page(appended.clone())));

    // The first item is removed again: only the list is read again.
    let removed = edited(&appended, |nodes| {
        node_mut(nodes, &list_ax)
            .child_ids
            .retain(|c| *c != first_item);
        let gone: Vec<String> = subtree(&appended, &first_item)
            .into_iter()
            .map(|n| n.node_id)
            .collect();
        nodes.retain(|n| !gone.contains(&n.node_id));
    });
    vfs.apply_update(
        "",
        Update {
            subtrees: Vec::new(),
            nodes: vec![node_of(&removed, &list_ax)],
        },
    )
    .unwrap();
    // The appended item keeps the name it was given (`world_2`): a whole read of the same
    // document, with the names given so far, gives what the partial read gives.
    assert_eq!(
        names(&vfs, at(&vfs, "/banner/primary/list")),
        ["science", "sport", "world_2"]
    );
    let partial = outline(&vfs);
    let whole = Vfs::from_page_naming(removed, vfs.take_names()).unwrap();
    assert_eq!(partial, outline(&whole));
}

#[test]
fn a_partial_update_of_a_long_list_rebuilds_only_what_changed() {
    // An item appended to a list of 2,000, and the text of its first item changed: the other
    // items keep their entries (the same handles), and the result is what a whole read gives.
    let page = load("big");
    let mut vfs = Vfs::from_page(page.clone()).unwrap();
    let items = at(&vfs, "/main/items");
    let list_ax = vfs.entry(items).unwrap().ax_node_id.clone();
    let kept_before: Vec<EntryId> = vfs.children(items)[1..].to_vec();
    let first_ax = vfs
        .entry(vfs.children(items)[0])
        .unwrap()
        .ax_node_id
        .clone();
    let first_link_ax = subtree(&page, &first_ax)
        .into_iter()
        .find(|n| n.role() == "link")
        .unwrap()
        .node_id;
    let changed = edited(&page, |nodes| {
        node_mut(nodes, &list_ax).child_ids.push("n1".into());
        nodes.push(text_node("n1", &list_ax, "listitem", "", &["n2"]));
        nodes.push(text_node("n2", "n1", "link", "Appended", &[]));
        if let Some(name) = node_mut(nodes, &first_link_ax).name.as_mut() {
            name.value = Some(json!("Renamed"));
        }
    });
    vfs.apply_update(
        "",
        Update {
            subtrees: vec![subtree(&changed, "n1"), subtree(&changed, &first_link_ax)],
            nodes: vec![node_of(&changed, &list_ax), node_of(&changed, &first_ax)],
        },
    )
    .unwrap();
    let now = vfs.children(items).to_vec();
    assert_eq!(now.len(), 2_001);
    let kept = now[1..2_000]
        .iter()
        .zip(&kept_before)
        .filter(|(a, b)| a == b)
        .count();
    assert_eq!(kept, 1_999, "untouched items keep their entries");
    assert_eq!(outline(&vfs), outline(&map_page(changed.clone())));
    let whole = Vfs::from_page_naming(changed, vfs.take_names()).unwrap();
    assert_eq!(outline(&vfs), outline(&whole));
    // Text lengths too (kept entries bring theirs to the sum above them).
    let text_lens = |v: &Vfs| -> Vec<(Vec<String>, usize)> {
        v.descendants(v.root(), usize::MAX)
            .into_iter()
            .map(|(id, _)| (v.path_of(id), v.entry(id).unwrap().text_len))
            .chain([(Vec::new(), v.entry(v.root()).unwrap().text_len)])
            .collect()
    };
    assert_eq!(text_lens(&vfs), text_lens(&whole));
}

#[test]
fn a_text_change_renames_the_link_and_item_that_take_their_name_from_it() {
    let page = load("landmarks");
    let vfs = Vfs::from_page(page.clone()).unwrap();
    let list = at(&vfs, "/banner/primary/list");
    let item = vfs.children(list)[0];
    let link_ax = vfs.children(item)[0];
    let link_ax = vfs.entry(link_ax).unwrap().ax_node_id.clone();
    let link = node_of(&page, &link_ax);
    let item_ax = link.parent_id.clone().unwrap();
    // The item's ancestors up to the list are what a change in the link re-reads.
    let link_backend = link.backend_dom_node_id.unwrap();
    let item_backend = node_of(&page, &item_ax).backend_dom_node_id.unwrap();
    assert_eq!(
        vfs.ancestors_to_refresh("", &[link_backend]),
        vec![item_backend],
        "the walk stops at the list"
    );

    // The link's text becomes "Weather": the link and the item are named from it.
    let renamed = edited(&page, |nodes| {
        let rename = |n: &mut AxNode| {
            if let Some(v) = n.name.as_mut() {
                v.value = Some(json!("Weather"));
            }
        };
        rename(node_mut(nodes, &link_ax));
        for id in node_of(&page, &link_ax).child_ids {
            rename(node_mut(nodes, &id));
        }
    });
    let mut vfs = Vfs::from_page(page.clone()).unwrap();
    vfs.apply_update(
        "",
        Update {
            subtrees: vec![subtree(&renamed, &link_ax)],
            nodes: vec![node_of(&renamed, &item_ax)],
        },
    )
    .unwrap();
    assert_eq!(outline(&vfs), outline(&map_page(renamed)));
    assert!(
        names(&vfs, list).contains(&"weather".to_string()),
        "{:?}",
        names(&vfs, list)
    );
}

#[test]
fn a_partial_update_that_does_not_cover_the_change_is_refused() {
    let page = load("landmarks");
    let mut vfs = Vfs::from_page(page.clone()).unwrap();
    // A subtree whose root and parent were never read has no place.
    let err = vfs
        .apply_update(
            "",
            Update {
                subtrees: vec![vec![text_node("x1", "x0", "button", "Go", &[])]],
                nodes: Vec::new(),
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, MapError::Unanchored { ref node, .. } if node == "x1"),
        "{err:?}"
    );
    // A parent that now lists a child nobody read.
    let list_ax = vfs
        .entry(at(&vfs, "/banner/primary/list"))
        .unwrap()
        .ax_node_id
        .clone();
    let mut list = node_of(&page, &list_ax);
    list.child_ids.push("never-read".into());
    let err = vfs
        .apply_update(
            "",
            Update {
                subtrees: Vec::new(),
                nodes: vec![list],
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, MapError::Unanchored { ref node, .. } if node == "never-read"),
        "{err:?}"
    );
    assert!(vfs.apply_update("nope", Update::default()).is_err());
}

#[test]
fn a_name_whose_element_is_gone_fails_and_a_relabelled_element_answers_to_its_old_name() {
    let page = load("landmarks");
    let mut vfs = Vfs::from_page(page.clone()).unwrap();
    let dialog = at(&vfs, "/main/cookie_notice");
    let second_ok = vfs
        .entry(at(&vfs, "/main/cookie_notice/ok_btn_2"))
        .unwrap()
        .clone();
    let first_ok = vfs
        .entry(at(&vfs, "/main/cookie_notice/ok_btn"))
        .unwrap()
        .clone();
    let dialog_ax = vfs.entry(dialog).unwrap().ax_node_id.clone();

    // The first OK button goes: the second keeps `ok_btn_2`, and `ok_btn` is gone, not
    // passed on.
    let removed = edited(&page, |nodes| {
        node_mut(nodes, &dialog_ax)
            .child_ids
            .retain(|c| *c != first_ok.ax_node_id);
        nodes.retain(|n| n.node_id != first_ok.ax_node_id);
    });
    vfs.apply_update(
        "",
        Update {
            subtrees: Vec::new(),
            nodes: vec![node_of(&removed, &dialog_ax)],
        },
    )
    .unwrap();
    assert_eq!(
        vfs.entry(at(&vfs, "/main/cookie_notice/ok_btn_2"))
            .unwrap()
            .backend_node_id,
        second_ok.backend_node_id
    );
    let ctx = PathContext {
        cwd: &[],
        page_prefix: "",
        bookmarks: &BTreeMap::new(),
    };
    let gone = vfs.resolve(&ctx, "/main/cookie_notice/ok_btn").unwrap_err();
    assert!(matches!(gone, PathError::Gone { .. }), "{gone:?}");
    let message = gone.to_string();
    assert!(message.starts_with("ok_btn: gone"), "{message}");
    assert!(
        message.contains("ok_btn_2"),
        "lists what is there now: {message}"
    );

    // The remaining button is relabelled "Accept": it gets a new name, and its old name
    // still denotes it.
    let relabelled = edited(&removed, |nodes| {
        let button = node_mut(nodes, &second_ok.ax_node_id);
        button.name = Some(domshell_extension::ax::AxValue {
            kind: "computedString".into(),
            value: Some(json!("Accept")),
        });
    });
    vfs.replace_subtree("", subtree(&relabelled, &second_ok.ax_node_id))
        .unwrap();
    let now = at(&vfs, "/main/cookie_notice/accept_btn");
    assert_eq!(at(&vfs, "/main/cookie_notice/ok_btn_2"), now);
    // A new OK button does not take either old name.
    let added = edited(&relabelled, |nodes| {
        node_mut(nodes, &dialog_ax).child_ids.push("n1".into());
        nodes.push(text_node("n1", &dialog_ax, "button", "OK", &[]));
    });
    vfs.apply_update(
        "",
        Update {
            subtrees: vec![subtree(&added, "n1")],
            nodes: vec![node_of(&added, &dialog_ax)],
        },
    )
    .unwrap();
    let listed = names(&vfs, at(&vfs, "/main/cookie_notice"));
    assert!(listed.contains(&"ok_btn_3".to_string()), "{listed:?}");
    assert!(!listed.contains(&"ok_btn".to_string()), "{listed:?}");
}

/// The name rule on every recorded page: names are distinct in their directory, no entry's
/// name repeats its parent's (unless both are only a role: `region/region`), and the budget
/// of [`naming::MAX_NAME_CHARS`] makes no two siblings' names equal that a budget without
/// limit keeps apart. Prints, per budget, the characters of all names and how many siblings
/// the budget made equal (the figures the budget was chosen by).
#[test]
fn the_name_budget_keeps_names_distinct_short_and_unrepeated() {
    use domshell_extension::ax::naming;
    const PAGES: [&str; 6] = [
        "article",
        "form",
        "table",
        "landmarks",
        "i18n",
        "frame_cross_site",
    ];
    let vfs_pages: Vec<(&str, Vfs)> = PAGES.iter().map(|p| (*p, map(p))).collect();
    // Per budget: (characters of the base names, siblings made equal by the budget).
    let measure = |budget: usize| {
        let mut chars = 0usize;
        let mut merged = 0usize;
        for (_, vfs) in &vfs_pages {
            for (dir, _) in vfs.descendants(vfs.root(), usize::MAX) {
                let mut seen: BTreeMap<String, String> = BTreeMap::new();
                for &child in vfs.children(dir) {
                    let e = vfs.entry(child).unwrap();
                    // Rows and list items are named after their children's text.
                    let from_children = vfs
                        .children(child)
                        .iter()
                        .map(|&c| vfs.entry(c).unwrap().accessible_name.trim().to_string())
                        .filter(|l| !l.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ");
                    let label = match e.accessible_name.trim() {
                        "" => from_children.as_str(),
                        own => own,
                    };
                    if label.is_empty() {
                        continue;
                    }
                    let short = naming::base_name_within(&e.role, label, budget);
                    let whole = naming::base_name_within(&e.role, label, usize::MAX);
                    chars += short.chars().count();
                    match seen.get(&short) {
                        Some(other) if *other != whole => merged += 1,
                        _ => {
                            seen.insert(short, whole);
                        }
                    }
                }
            }
        }
        (chars, merged)
    };
    let unlimited = measure(usize::MAX);
    for budget in [8, 12, 16, 20, 24, 32, 40] {
        let (chars, merged) = measure(budget);
        eprintln!(
            "name budget {budget:>2}: {chars} characters of names ({:.2}× unlimited), {merged} sibling(s) made equal",
            chars as f64 / unlimited.0 as f64
        );
    }
    // Siblings the budget alone would make equal keep longer names instead: at the longer
    // budget nothing is merged that whole labels keep apart.
    let (_, merged) = measure(naming::LONGER_NAME_CHARS);
    assert_eq!(merged, unlimited.1, "the longer budget merges siblings");

    for (page, vfs) in &vfs_pages {
        for (dir, _) in vfs.descendants(vfs.root(), usize::MAX) {
            let parent = vfs.entry(dir).unwrap();
            let names = names(vfs, dir);
            let distinct: std::collections::BTreeSet<&String> = names.iter().collect();
            assert_eq!(distinct.len(), names.len(), "{page}: {names:?}");
            for &child in vfs.children(dir) {
                let e = vfs.entry(child).unwrap();
                let only_roles = e.name == naming::role_name(&e.role)
                    && parent.name == naming::role_name(&parent.role);
                assert!(
                    e.name != parent.name || only_roles,
                    "{page}: /{} repeats its parent's name",
                    vfs.path_of(child).join("/")
                );
            }
        }
    }
    // The article's paths say each text once: a list item named after its only link holds
    // `link`, not the same words a second time.
    let article = &vfs_pages[0].1;
    let item = at(article, "/main/list_4/list_of_comets_by_type");
    assert_eq!(names(article, item), ["link"]);
    let link = vfs_entry(article, "/main/list_4/list_of_comets_by_type/link");
    assert_eq!(link.accessible_name, "List of comets by type");
    // References that share their first 24 characters are told apart by their words, not by
    // de-duplication numbers: `comets_and_their_orbits_part_1_…`, `…part_2_…`.
    let references = names(article, at(article, "/main/list_5"));
    assert_eq!(references.len(), 12, "{references:?}");
    for (i, name) in references.iter().enumerate() {
        assert!(
            name.starts_with(&format!("comets_and_their_orbits_part_{}_", i + 1)),
            "{references:?}"
        );
    }
}

fn vfs_entry<'a>(vfs: &'a Vfs, path: &str) -> &'a domshell_extension::ax::Entry {
    vfs.entry(at(vfs, path)).unwrap()
}

#[test]
fn find_reads_an_underscored_pattern_as_the_labels_words() {
    let vfs = map("landmarks");
    // The heading's name drops "the"; typed with it, as a name would be, it is still found.
    let found = vfs.find(
        vfs.root(),
        &FindQuery {
            pattern: Some("comet_seen_over_the_bay".into()),
            ..FindQuery::default()
        },
    );
    assert!(!found.is_empty());
    assert!(found.iter().all(|f| vfs
        .entry(f.id)
        .unwrap()
        .accessible_name
        .to_lowercase()
        .contains("comet seen over the bay")));
}
