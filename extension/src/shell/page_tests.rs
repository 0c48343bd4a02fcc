//! Page commands against the in-memory browser, on a tree recorded from Chromium.

use serde_json::json;

use super::fake::{block_on, FakeBrowser};
use super::page::PageCache;
use super::{execute, Context, Reply, Session};

const FORM: &str = include_str!("../../tests/fixtures/ax/form.json");

/// Tab 101 (example.com) showing the recorded form page, mutation counter at `mutations`.
fn form_browser() -> FakeBrowser {
    let b = FakeBrowser::standard();
    let snapshot: serde_json::Value = serde_json::from_str(FORM).unwrap();
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
        s.cdp_replies.insert(
            "DOM.resolveNode".into(),
            json!({"object": {"objectId": "obj-1"}}),
        );
    }
    set_probe(&b, "doc-1", 0);
    b
}

fn set_probe(b: &FakeBrowser, doc: &str, mutations: i64) {
    b.state.borrow_mut().cdp_replies.insert(
        "Runtime.evaluate".into(),
        json!({"result": {"value": {"doc": doc, "n": mutations}}}),
    );
}

fn set_call_result(b: &FakeBrowser, value: serde_json::Value) {
    b.state.borrow_mut().cdp_replies.insert(
        "Runtime.callFunctionOn".into(),
        json!({"result": {"value": value}}),
    );
}

fn tree_reads(b: &FakeBrowser) -> usize {
    b.state
        .borrow()
        .cdp_calls
        .iter()
        .filter(|(_, m)| m == "Accessibility.getFullAXTree")
        .count()
}

struct Shell {
    b: FakeBrowser,
    s: Session,
    c: Context,
}

impl Shell {
    fn in_form() -> Shell {
        let mut shell = Shell {
            b: form_browser(),
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

    fn err(&mut self, line: &str) -> String {
        let reply = self.run(line);
        assert!(!reply.ok, "`{line}` should fail: {}", reply.output);
        reply.output
    }
}

#[test]
fn entering_a_tab_reads_its_tree_and_counts_nodes_and_frames() {
    let mut sh = Shell {
        b: form_browser(),
        s: Session::default(),
        c: Context::new(&["example.com".to_string()], None),
    };
    let out = sh.ok("cd ~/tabs/101");
    assert!(out.starts_with("✓ Entered tab 101\r\n"), "{out}");
    let nodes = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("AX Nodes: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(nodes.parse::<usize>().unwrap() > 20, "{out}");
    assert!(out.ends_with("  Iframes: 0"), "{out}");
}

#[test]
fn ls_lists_the_page_and_keeps_the_tree_while_nothing_changes() {
    let mut sh = Shell::in_form();
    let root = sh.ok("ls");
    assert!(root.lines().any(|l| l.ends_with('/')), "{root}");
    assert_eq!(tree_reads(&sh.b), 1, "entering read the tree once");
    sh.ok("ls");
    sh.ok("find --type button");
    assert_eq!(tree_reads(&sh.b), 1, "an unchanged page is not re-read");
    // Script changed the DOM: the mutation counter moved.
    set_probe(&sh.b, "doc-1", 3);
    let out = sh.ok("ls");
    assert!(out.starts_with("(tree auto-refreshed, "), "{out}");
    assert_eq!(tree_reads(&sh.b), 2);
    // A new document (navigation) is noticed too.
    set_probe(&sh.b, "doc-2", 0);
    sh.ok("ls");
    assert_eq!(tree_reads(&sh.b), 3);
    // An unreadable probe never leaves a stale tree in place.
    sh.b.state
        .borrow_mut()
        .cdp_replies
        .remove("Runtime.evaluate");
    sh.ok("ls");
    assert_eq!(tree_reads(&sh.b), 4);
}

#[test]
fn cd_inside_the_page_is_all_or_nothing_and_lists_what_exists() {
    let mut sh = Shell::in_form();
    let first_dir = sh
        .ok("ls")
        .lines()
        .find(|l| l.ends_with('/'))
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    sh.ok(&format!("cd {first_dir}"));
    assert_eq!(sh.ok("pwd"), format!("~/tabs/101/{first_dir}"));
    let before = sh.s.cwd.clone();
    let e = sh.err("cd no_such_place");
    assert!(e.starts_with("cd: no_such_place: No such directory"), "{e}");
    assert!(
        e.contains("Directories in") || e.contains("no directories"),
        "{e}"
    );
    assert_eq!(sh.s.cwd, before, "a failed cd changes nothing");
    sh.ok("cd ..");
    assert_eq!(sh.ok("pwd"), "~/tabs/101");
    sh.ok("cd ..");
    assert_eq!(
        sh.ok("pwd"),
        "~/tabs",
        "leaving the page root goes to the browser level"
    );
    sh.ok("cd ~/tabs/101");
    sh.ok(&format!("cd ~/tabs/101/{first_dir}"));
    assert_eq!(sh.ok("pwd"), format!("~/tabs/101/{first_dir}"));
}

#[test]
fn a_changed_page_without_the_directory_resets_the_path() {
    let mut sh = Shell::in_form();
    let dir = sh
        .ok("ls")
        .lines()
        .find(|l| l.ends_with('/'))
        .unwrap()
        .to_string();
    sh.ok(&format!("cd {dir}"));
    // The page now has only a root with one button.
    sh.b.state.borrow_mut().cdp_replies.insert(
        "Accessibility.getFullAXTree".into(),
        json!({"nodes": [
            {"nodeId": "1", "role": {"type": "role", "value": "RootWebArea"}, "childIds": ["2"], "backendDOMNodeId": 1},
            {"nodeId": "2", "parentId": "1", "role": {"type": "role", "value": "button"}, "name": {"type": "computedString", "value": "Go"}, "backendDOMNodeId": 2}
        ]}),
    );
    set_probe(&sh.b, "doc-9", 0);
    let out = sh.ok("ls");
    assert!(
        out.starts_with("(page changed — tree refreshed, 2 nodes, path reset to tab root)"),
        "{out}"
    );
    assert_eq!(sh.ok("pwd"), "~/tabs/101");
    let long = sh.ok("ls -l");
    assert!(long.contains("[x] button"), "{long}");
    assert!(long.contains("\"Go\""), "{long}");
}

#[test]
fn ls_flags_count_pagination_json_and_type() {
    let mut sh = Shell::in_form();
    let dir = sh
        .ok("find --type form")
        .lines()
        .next()
        .unwrap()
        .to_string();
    // `[d] main/sign_up_form/ (form)` → cd into it.
    let path = dir
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    sh.ok(&format!("cd {path}"));
    let count = sh.ok("ls --count");
    assert!(
        count.contains(" total (") && count.contains("[x]"),
        "{count}"
    );
    let total: usize = count.split_whitespace().next().unwrap().parse().unwrap();
    let page = sh.ok("ls -n 2");
    assert_eq!(page.lines().count(), 3, "{page}");
    assert!(
        page.ends_with(&format!("... 1-2 of {total} (--offset 2 for next page)")),
        "{page}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&sh.ok("ls --json -n 3 --offset 1")).unwrap();
    assert_eq!(json["total"], total);
    assert_eq!(json["offset"], 1);
    assert_eq!(json["limit"], 3);
    assert_eq!(json["children"].as_array().unwrap().len(), 3);
    let buttons = sh.ok("ls -l --type button");
    assert!(
        buttons.lines().all(|l| l.starts_with("[x] button")),
        "{buttons}"
    );
    assert!(buttons.contains("\"Create account\""), "{buttons}");
    let e = sh.err("ls --bogus");
    assert!(e.contains("unknown option --bogus"), "{e}");
    let none = sh.ok("ls --type nothing_like_this");
    assert_eq!(none, "(empty directory)");
}

#[test]
fn find_grep_tree_read_and_links() {
    let mut sh = Shell::in_form();
    let links = sh.ok("find --type anchor");
    assert!(
        links.contains("(link)") && links.contains("\"Sign in\""),
        "{links}"
    );
    let json: serde_json::Value = serde_json::from_str(&sh.ok("find sign --json")).unwrap();
    assert!(json["results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["role"] == "link"));
    assert_eq!(sh.ok("find zzzz_nothing"), "No matches for 'zzzz_nothing'");
    assert!(sh.err("find").contains("give a pattern or --type"));
    assert_eq!(sh.ok("find --type button -n 1").lines().count(), 1);
    let grep = sh.ok("grep -r create");
    assert!(grep.contains("(button)"), "{grep}");
    assert_eq!(sh.ok("grep zzzz"), "No matches for 'zzzz'");
    let tree = sh.ok("tree 3");
    assert!(tree.starts_with("/\r\n") && tree.contains("── "), "{tree}");
    let read = sh.ok("read -d 2");
    assert!(
        read.lines().next().unwrap().contains("[RootWebArea]"),
        "{read}"
    );
    let extracted = sh.ok("extract_links");
    assert!(extracted.starts_with("1. [Sign in]("), "{extracted}");
}

#[test]
fn text_and_cat_read_the_dom_node() {
    let mut sh = Shell::in_form();
    let button = sh.ok("find --type button -n 1");
    let path = button.split_whitespace().nth(1).unwrap().to_string();
    set_call_result(&sh.b, json!("Create account"));
    let text = sh.ok(&format!("text {path}"));
    assert_eq!(text.lines().nth(1), Some("Create account"), "{text}");
    assert!(text.ends_with("(14 chars)"), "{text}");
    let short = sh.ok(&format!("text {path} -n 6"));
    assert!(
        short.contains("Create\r\n... (14 chars total, showing first 6)"),
        "{short}"
    );
    set_call_result(
        &sh.b,
        json!({"tag": "button", "id": "", "visibleText": "Create account"}),
    );
    let cat = sh.ok(&format!("cat {path}"));
    assert!(
        cat.contains("Role:") && cat.contains("button") && cat.contains("<button>"),
        "{cat}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&sh.ok(&format!("cat {path} --json"))).unwrap();
    assert_eq!(json["role"], "button");
    assert_eq!(json["tag"], "button");
    let e = sh.err("cat nothing_here");
    assert!(
        e.starts_with("cat: nothing_here: No such file or directory"),
        "{e}"
    );
}

#[test]
fn extract_table_formats_markdown_and_csv() {
    let rows = vec![
        vec!["Model".to_string(), "Org".to_string()],
        vec!["A|1".to_string(), "say \"hi\"".to_string()],
    ];
    assert_eq!(
        super::reading::table_markdown(&rows),
        "| Model | Org |\r\n| --- | --- |\r\n| A\\|1 | say \"hi\" |"
    );
    assert_eq!(
        super::reading::table_csv(&rows),
        "\"Model\",\"Org\"\r\n\"A|1\",\"say \"\"hi\"\"\""
    );
    let mut sh = Shell::in_form();
    let e = sh.err("extract_table --format xml x");
    assert!(e.contains("unknown --format 'xml'"), "{e}");
}

#[test]
fn page_commands_respect_the_allowlist() {
    let mut sh = Shell::in_form();
    sh.c = Context::new(&["other.org".to_string()], None).with_pages(sh.c.pages.clone());
    let e = sh.err("ls");
    assert!(e.starts_with("ls: tab 101:"), "{e}");
    let e = sh.err("find --type link");
    assert!(e.starts_with("find: tab 101:"), "{e}");
}
