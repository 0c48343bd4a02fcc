//! Reading a page a directory at a time (`page::lazy`) against the in-memory browser, on
//! trees recorded from Chromium: what it lists equals what a whole read lists.

use serde_json::json;

use super::fake::{block_on, FakeBrowser};
use super::page::PageCache;
use super::{execute, Context, Reply, Session};

const PAGES: [(&str, &str); 4] = [
    (
        "landmarks",
        include_str!("../../tests/fixtures/ax/landmarks.json"),
    ),
    ("form", include_str!("../../tests/fixtures/ax/form.json")),
    ("table", include_str!("../../tests/fixtures/ax/table.json")),
    ("i18n", include_str!("../../tests/fixtures/ax/i18n.json")),
];

struct Shell {
    b: FakeBrowser,
    s: Session,
    c: Context,
}

impl Shell {
    /// Tab 101 showing the recorded page; `by_parts` makes the fake answer the node-by-node
    /// methods (as Chromium does), else it answers `getFullAXTree` only.
    fn on(page: &str, by_parts: bool) -> Shell {
        let b = FakeBrowser::standard();
        let snapshot: serde_json::Value = serde_json::from_str(page).unwrap();
        {
            let mut s = b.state.borrow_mut();
            s.cdp_replies.insert(
                "Page.getFrameTree".into(),
                json!({"frameTree": {"frame": {"id": snapshot["main"]["frameId"], "url": "https://example.com/"}}}),
            );
            s.cdp_replies.insert(
                "Accessibility.getFullAXTree".into(),
                json!({"nodes": snapshot["main"]["nodes"]}),
            );
            if by_parts {
                s.ax_page = snapshot["main"]["nodes"].as_array().cloned();
            }
            s.cdp_replies.insert(
                "Runtime.evaluate".into(),
                json!({"result": {"value": {"doc": "doc-1", "n": 0}}}),
            );
        }
        let mut shell = Shell {
            b,
            s: Session::default(),
            c: Context::new(&["example.com".to_string()], None).with_pages(PageCache::default()),
        };
        shell.ok("cd ~/tabs/101");
        shell
    }

    fn run(&mut self, line: &str) -> Reply {
        block_on(execute(&mut self.s, &self.b, &self.c, line))
    }

    fn ok(&mut self, line: &str) -> String {
        let reply = self.run(line);
        assert!(reply.ok, "`{line}` failed: {}", reply.output);
        reply.output
    }

    fn calls(&self, method: &str) -> usize {
        self.b
            .state
            .borrow()
            .cdp_calls
            .iter()
            .filter(|(_, m)| m == method)
            .count()
    }

    fn page_nodes(&self) -> usize {
        self.b.state.borrow().ax_page.as_ref().map_or(0, Vec::len)
    }
}

/// Directory names in a listing (`name/` lines).
fn dirs(listing: &str) -> Vec<String> {
    listing
        .lines()
        .map(str::trim)
        .filter(|l| l.ends_with('/') && !l.starts_with('('))
        .map(|l| {
            l.rsplit(' ')
                .next()
                .unwrap_or(l)
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

#[test]
fn a_listing_read_by_parts_equals_the_whole_read_listing() {
    for (name, page) in PAGES {
        let mut lazy = Shell::on(page, true);
        let mut whole = Shell::on(page, false);
        assert_eq!(lazy.ok("ls"), whole.ok("ls"), "{name}: root");
        // Every directory, visited from the root down, lists the same entries by the same
        // names (the lazy shell reads each one when first visited).
        let mut todo: Vec<String> = dirs(&whole.ok("ls")).into_iter().collect();
        let mut visited = 0;
        while let Some(path) = todo.pop() {
            visited += 1;
            assert!(visited < 500, "{name}: too many directories");
            let expected = whole.ok(&format!("ls {path}"));
            assert_eq!(
                lazy.ok(&format!("ls {path}")),
                expected,
                "{name}: ls {path}"
            );
            todo.extend(dirs(&expected).into_iter().map(|d| format!("{path}/{d}")));
        }
        assert_eq!(lazy.calls("Accessibility.getFullAXTree"), 0, "{name}");
        assert!(lazy.calls("Accessibility.getChildAXNodes") > 0, "{name}");
    }
}

#[test]
fn entering_a_tab_reads_only_what_its_root_listing_needs() {
    let (_, page) = PAGES[0];
    let mut sh = Shell::on(page, true);
    let listing = sh.ok("ls");
    assert!(!dirs(&listing).is_empty(), "{listing}");
    assert_eq!(sh.calls("Accessibility.getFullAXTree"), 0);
    assert_eq!(sh.calls("Accessibility.getRootAXNode"), 1);
    let read = sh.c.pages.last_read().unwrap();
    assert!(read.lazy, "{read:?}");
    assert!(
        read.ax_nodes < sh.page_nodes() / 2,
        "{} of {} nodes read to list the root",
        read.ax_nodes,
        sh.page_nodes()
    );
    // Listing the root again reads nothing more.
    let calls = sh.calls("Accessibility.getChildAXNodes");
    sh.ok("ls");
    assert_eq!(sh.calls("Accessibility.getChildAXNodes"), calls);
}

#[test]
fn cd_into_an_unread_directory_reads_it() {
    let (_, page) = PAGES[0];
    let mut whole = Shell::on(page, false);
    // A directory two levels down: neither it nor its parent's listing was read on entry.
    let (parent, child) = dirs(&whole.ok("ls"))
        .into_iter()
        .find_map(|d| {
            let inner = dirs(&whole.ok(&format!("ls {d}")));
            inner.into_iter().next().map(|c| (d, c))
        })
        .expect("a page with nested directories");
    let path = format!("{parent}/{child}");
    let mut lazy = Shell::on(page, true);
    let before = lazy.calls("Accessibility.getChildAXNodes");
    lazy.ok(&format!("cd {path}"));
    assert!(lazy.calls("Accessibility.getChildAXNodes") > before);
    assert_eq!(lazy.ok("pwd"), format!("~/tabs/101/{path}"));
    assert_eq!(lazy.ok("ls"), whole.ok(&format!("ls {path}")));
    assert_eq!(lazy.calls("Accessibility.getFullAXTree"), 0);
}

#[test]
fn find_on_a_tree_read_by_parts_still_finds_everything() {
    for (name, page) in PAGES {
        let mut lazy = Shell::on(page, true);
        let mut whole = Shell::on(page, false);
        lazy.ok("ls");
        whole.ok("ls");
        assert_eq!(lazy.ok("find e"), whole.ok("find e"), "{name}: find e");
        assert_eq!(
            lazy.ok("find --type link"),
            whole.ok("find --type link"),
            "{name}: find --type link"
        );
        // The whole page came in one call, not node by node.
        assert_eq!(lazy.calls("Accessibility.getFullAXTree"), 1, "{name}");
        assert_eq!(
            lazy.ok("grep -r a"),
            whole.ok("grep -r a"),
            "{name}: grep -r"
        );
        assert_eq!(lazy.calls("Accessibility.getFullAXTree"), 1, "{name}");
    }
}
