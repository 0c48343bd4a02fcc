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
        for method in [
            "Input.dispatchMouseEvent",
            "Input.insertText",
            "Input.dispatchKeyEvent",
            "Page.bringToFront",
        ] {
            s.cdp_replies.insert(method.into(), json!({}));
        }
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

pub(super) fn tree_reads(b: &FakeBrowser) -> usize {
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
    // No frames: no `Iframes:` line.
    assert!(!out.contains("Iframes"), "{out}");
}

#[test]
fn a_tree_read_reports_its_size_and_node_count() {
    let mut sh = Shell::in_form();
    let read =
        sh.c.pages
            .last_read()
            .expect("entering the tab read its tree");
    assert_eq!(read.tab, 101);
    let expected: usize = serde_json::from_str::<serde_json::Value>(FORM).unwrap()["main"]["nodes"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(read.ax_nodes, expected);
    assert!(read.bytes > 1000, "{read:?}");
    // The fake has no clock: durations are zero, never negative or missing.
    assert_eq!(
        (read.fetch_ms, read.decode_ms, read.map_ms),
        (0.0, 0.0, 0.0)
    );
    // A kept tree is not a read.
    sh.ok("ls");
    assert_eq!(sh.c.pages.last_read(), Some(read));
}

#[test]
fn debug_shows_the_mapping_and_the_records_behind_entries() {
    let mut sh = Shell::in_form();
    let stats = sh.ok("debug stats");
    assert!(
        stats.starts_with("Tab 101: https://example.com/\r\n"),
        "{stats}"
    );
    assert!(stats.contains("AX nodes kept: "), "{stats}");
    assert!(stats.contains("Tree: kept for this command"), "{stats}");
    assert!(stats.contains("Last read (tab 101): whole"), "{stats}");
    let json: serde_json::Value = serde_json::from_str(&sh.ok("debug stats --json")).unwrap();
    assert_eq!(json["tab"], 101);
    assert_eq!(json["tree"], "kept");
    assert_eq!(json["lastRead"]["tab"], 101);
    assert!(json["axNodes"].as_u64().unwrap() > 20, "{json}");
    assert!(json["entries"].as_u64().unwrap() > 1, "{json}");

    let raw = sh.ok("debug raw");
    let first: serde_json::Value = serde_json::from_str(raw.lines().next().unwrap()).unwrap();
    let name = first["name"].as_str().unwrap().to_string();
    let ax_id = first["node"]["nodeId"].as_str().unwrap().to_string();
    assert!(first["node"]["role"]["value"].is_string(), "{first}");
    // One record, alone, by name and by AX node id.
    let by_name: serde_json::Value =
        serde_json::from_str(&sh.ok(&format!("debug node {name}"))).unwrap();
    assert_eq!(by_name, first);
    let by_id: serde_json::Value =
        serde_json::from_str(&sh.ok(&format!("debug node {ax_id}"))).unwrap();
    assert_eq!(by_id, first);
    let one = sh.ok("debug raw main -n 1");
    let lines: Vec<&str> = one.lines().collect();
    assert_eq!(lines.len(), 2, "{one}");
    assert!(lines[1].starts_with("[left out: "), "{one}");
    assert!(
        lines[1].ends_with("next: debug raw main --offset 1]"),
        "{one}"
    );

    assert!(sh
        .err("debug")
        .starts_with("debug: which part? usage: debug stats"));
    assert!(sh.err("debug node").starts_with("debug node: which entry?"));
    assert!(sh
        .err("debug nonsense")
        .starts_with("debug: unknown part 'nonsense'"));
    assert!(sh.err("debug node no_such_entry").starts_with("debug: "));
}

/// Tab 101's page as the glue would have seen it: two console entries, two requests
/// (one to a host outside the allowlist) and one that failed.
fn with_activity(sh: &Shell) {
    let mut tab = super::activity::TabActivity::default();
    for (method, params) in [
        (
            "Runtime.consoleAPICalled",
            json!({"type": "log", "args": [{"type": "string", "value": "ready"}]}),
        ),
        (
            "Runtime.exceptionThrown",
            json!({"exceptionDetails": {"text": "Uncaught", "url": "https://example.com/app.js", "lineNumber": 4, "exception": {"description": "Error: broken"}}}),
        ),
        (
            "Network.requestWillBeSent",
            json!({"requestId": "a", "type": "Fetch", "request": {"method": "GET", "url": "https://example.com/api/items"}}),
        ),
        (
            "Network.responseReceived",
            json!({"requestId": "a", "type": "Fetch", "response": {"status": 200, "mimeType": "application/json"}}),
        ),
        (
            "Network.loadingFinished",
            json!({"requestId": "a", "encodedDataLength": 2048.0}),
        ),
        (
            "Network.requestWillBeSent",
            json!({"requestId": "b", "type": "Script", "request": {"method": "GET", "url": "https://tracker.other/t.js"}}),
        ),
        (
            "Network.loadingFinished",
            json!({"requestId": "b", "encodedDataLength": 10.0}),
        ),
        (
            "Network.requestWillBeSent",
            json!({"requestId": "c", "type": "XHR", "request": {"method": "POST", "url": "https://example.com/api/save"}}),
        ),
        (
            "Network.loadingFailed",
            json!({"requestId": "c", "errorText": "net::ERR_CONNECTION_REFUSED"}),
        ),
    ] {
        // A second before the fake clock's now (0): the network has rested since.
        assert!(tab.on_event(method, &params, -1_000.0), "{method}");
    }
    sh.b.state.borrow_mut().activity.insert(101, tab);
}

#[test]
fn console_and_network_show_what_the_page_did_within_the_allowlist() {
    let mut sh = Shell::in_form();
    assert_eq!(
        sh.ok("console"),
        "(no console messages since domshell attached to this tab)"
    );
    with_activity(&sh);
    assert_eq!(
        sh.ok("console"),
        "[info] ready\r\n[error] Uncaught Error: broken  (app.js:5)"
    );
    assert_eq!(
        sh.ok("console --level error"),
        "[error] Uncaught Error: broken  (app.js:5)"
    );
    assert!(sh
        .ok("console -n 1")
        .starts_with("[1 earlier message(s) not shown: -n N]\r\n[error]"));
    let json: serde_json::Value = serde_json::from_str(&sh.ok("console --json")).unwrap();
    assert_eq!(json["entries"][1]["source"], "app.js:5");
    assert!(sh
        .err("console --level loud")
        .starts_with("console: --level takes error"));
    sh.ok("console --clear");
    assert!(sh.ok("console").starts_with("(no console messages"));

    let all = sh.ok("network");
    assert!(
        all.contains("  1 GET 200 fetch https://example.com/api/items  2.0 KB"),
        "{all}"
    );
    assert!(
        all.contains(
            "  3 POST failed (net::ERR_CONNECTION_REFUSED) xhr https://example.com/api/save"
        ),
        "{all}"
    );
    assert!(!all.contains("tracker.other"), "{all}");
    assert!(
        all.ends_with("[1 request(s) to hosts outside the domain allowlist not shown]"),
        "{all}"
    );
    let failed = sh.ok("network --failed");
    assert!(
        failed.starts_with("  3 POST failed") && !failed.contains("api/items"),
        "{failed}"
    );
    assert!(sh
        .ok("network --type fetch")
        .starts_with("  1 GET 200 fetch"));
    let json: serde_json::Value = serde_json::from_str(&sh.ok("network --json")).unwrap();
    assert_eq!(json["outside_allowlist"], 1);
    assert_eq!(json["requests"][0]["size"], 2048);

    // A body is read on demand, by number; not for a host outside the list, nor a failure.
    sh.b.state.borrow_mut().cdp_replies.insert(
        "Network.getResponseBody".into(),
        json!({"body": "[{\"id\": 1}]", "base64Encoded": false}),
    );
    assert_eq!(sh.ok("network body 1"), "[{\"id\": 1}]");
    assert!(sh
        .err("network body 2")
        .contains("outside the domain allowlist"));
    assert!(sh
        .err("network body 9")
        .starts_with("network: no request 9 is kept"));
    assert!(sh
        .err("network body x")
        .starts_with("network body: which request?"));
    assert!(sh
        .err("network nonsense")
        .starts_with("network: usage: network"));
}

#[test]
fn downloads_lists_this_sessions_files_and_waits_for_the_last() {
    let mut sh = Shell::in_form();
    assert_eq!(sh.ok("downloads"), "(no downloads started by this session)");
    assert!(sh
        .err("downloads wait")
        .starts_with("downloads: this session started no download"));
    {
        let mut book = sh.c.downloads.borrow_mut();
        // Another session's download is not this one's.
        book.acted("someone-else", 0.0);
        book.created(
            &json!({"id": 7, "url": "https://example.com/other.bin"}),
            1.0,
        );
        book.acted("", 2.0);
        book.created(
            &json!({"id": 8, "url": "https://example.com/r", "state": "in_progress"}),
            3.0,
        );
        book.changed(
            &json!({"id": 8, "filename": {"current": "/tmp/dl/report.csv"},
                             "state": {"current": "complete"}}),
        );
        book.changed(&json!({"id": 8, "fileSize": 2048}));
    }
    assert_eq!(
        sh.ok("downloads"),
        "✓ report.csv  complete  2.0 KB  /tmp/dl/report.csv"
    );
    assert_eq!(
        sh.ok("downloads wait"),
        "✓ report.csv  complete  2.0 KB  /tmp/dl/report.csv"
    );
    let json: serde_json::Value = serde_json::from_str(&sh.ok("downloads --json")).unwrap();
    assert_eq!(json["downloads"].as_array().map(Vec::len), Some(1));
    assert_eq!(json["downloads"][0]["path"], "/tmp/dl/report.csv");
    assert!(sh
        .err("downloads nonsense")
        .starts_with("downloads: usage: downloads"));
}

#[test]
fn wait_idle_and_url_look_at_the_page_as_a_whole() {
    let mut sh = Shell::in_form();
    with_activity(&sh);
    // Every request ended a second ago: the network has rested.
    let idle = sh.ok("wait --idle");
    assert!(
        idle.starts_with("✓ Network idle after 0.0s (3 request(s) seen"),
        "{idle}"
    );
    let url = sh.ok("wait --url example.COM");
    assert_eq!(url, "✓ URL matches after 0.0s: https://example.com/");
    assert!(sh
        .err("wait --idle submit")
        .starts_with("wait: --idle and --url wait for the page"));
    let gone = sh.ok("wait --gone no_such_thing_here");
    assert!(gone.starts_with("✓ Gone after 0.0s"), "{gone}");
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
    // The name says the label already: the line does not repeat it.
    assert!(
        long.contains("go_btn") && !long.contains("\"Go\""),
        "{long}"
    );
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
    assert!(
        buttons.contains("create_account_btn") && !buttons.contains("\"Create account\""),
        "{buttons}"
    );
    let e = sh.err("ls --bogus");
    assert!(e.contains("unknown option --bogus"), "{e}");
    let none = sh.ok("ls --type nothing_like_this");
    assert_eq!(none, "(empty directory)");
}

#[test]
fn find_grep_tree_read_and_links() {
    let mut sh = Shell::in_form();
    let links = sh.ok("find --type anchor");
    // No label that the name already says (the recorded link is on another origin than
    // the fake tab, so its href is whole).
    assert!(
        links.contains("sign_in_link (link)  href=http://127.0.0.1:")
            && !links.contains("\"Sign in\""),
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
    // Without -n every match is listed: nothing is left out on a small page.
    let all = sh.ok("find --type button");
    assert!(!all.contains("[left out: "), "{all}");
    let second = sh.ok("find --type button -n 1 --offset 1");
    assert_eq!(second.lines().count(), 1, "{second}");
    assert_ne!(second.lines().next(), all.lines().next(), "{all}\n{second}");
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
    set_call_result(
        &sh.b,
        json!({"text": "Create account", "shown": 14, "total": 14, "moreLines": 0}),
    );
    let text = sh.ok(&format!("text {path}"));
    // The text alone, without a header that repeats the path.
    assert_eq!(text.lines().next(), Some("Create account"), "{text}");
    assert!(text.ends_with("(14 chars)"), "{text}");
    set_call_result(
        &sh.b,
        json!({"text": "Create", "shown": 6, "total": 14, "moreLines": 1}),
    );
    let short = sh.ok(&format!("text {path} -n 6"));
    assert!(
        short.contains("Create\r\n... (14 chars total, showing first 6)"),
        "{short}"
    );
    // A window the page cut at the reply's budget ends with the command for the next one.
    set_call_result(
        &sh.b,
        json!({"text": "Create\naccount", "shown": 14, "total": 30, "moreLines": 2}),
    );
    let cut = sh.ok(&format!("text {path}"));
    assert!(
        cut.ends_with(&format!(
            "Create\r\naccount\r\n[left out: 16 more characters, 2 more lines (30 characters in all); next: text {path} --offset 14]"
        )),
        "{cut}"
    );
    let args =
        sh.b.state
            .borrow()
            .cdp_params
            .iter()
            .rev()
            .find(|(_, m, _)| m == "Runtime.callFunctionOn")
            .map(|(_, _, p)| p["arguments"].clone())
            .unwrap();
    assert_eq!(args[0]["value"], 0, "from the start: {args}");
    assert!(
        args[2]["value"].as_u64().unwrap() < shared_protocol::MAX_OUTPUT_CHARS as u64,
        "the page is asked for no more than a reply holds: {args}"
    );
    set_call_result(
        &sh.b,
        json!({"text": "account", "shown": 16, "total": 30, "moreLines": 0}),
    );
    let rest = sh.ok(&format!("text {path} --offset 14"));
    assert!(rest.ends_with("(characters 15-30 of 30)"), "{rest}");
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
        vec!["B, C".to_string()],
        vec![" padded".to_string(), "plain".to_string()],
    ];
    // No outer pipes and no padding: a short row stays short, only a pipe is escaped.
    assert_eq!(
        super::reading::table_markdown(&rows),
        "Model | Org\r\n--- | ---\r\nA\\|1 | say \"hi\"\r\nB, C\r\n padded | plain"
    );
    // Quotes only where CSV needs them.
    assert_eq!(
        super::reading::table_csv(&rows),
        "Model,Org\r\nA|1,\"say \"\"hi\"\"\"\r\n\"B, C\"\r\n\" padded\",plain"
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

/// The first directory `ls` lists (`name/`), without its slash.
fn first_dir(listing: &str) -> String {
    listing
        .split("\r\n")
        .find_map(|l| l.strip_suffix('/'))
        .unwrap_or_else(|| panic!("no directory in {listing}"))
        .to_string()
}

fn calls(b: &FakeBrowser, method: &str) -> usize {
    b.state
        .borrow()
        .cdp_calls
        .iter()
        .filter(|(_, m)| m == method)
        .count()
}

#[test]
fn click_uses_a_trusted_mouse_click_at_the_centre_and_marks_the_tree_stale() {
    let mut sh = Shell::in_form();
    set_call_result(
        &sh.b,
        json!({"x": 40.0, "y": 30.0, "w": 80.0, "h": 20.0, "hit": true}),
    );
    let reads = tree_reads(&sh.b);
    let out = sh.ok("click create_account_btn");
    assert_eq!(
        out,
        "✓ Clicked: create_account_btn (button)\r\n(nothing changed here)"
    );
    assert_eq!(calls(&sh.b, "Input.dispatchMouseEvent"), 3);
    sh.ok("ls");
    assert_eq!(
        tree_reads(&sh.b),
        reads + 1,
        "the click made the tree stale"
    );
    // Covered element: the DOM's click() instead.
    set_call_result(
        &sh.b,
        json!({"x": 40.0, "y": 30.0, "w": 80.0, "h": 20.0, "hit": false}),
    );
    let out = sh.ok("click create_account_btn");
    assert!(out.contains("(DOM click"), "{out}");
    assert_eq!(calls(&sh.b, "Input.dispatchMouseEvent"), 3);
    let e = sh.err("click nothing_like_it");
    assert!(
        e.starts_with("click: nothing_like_it: No such file or directory"),
        "{e}"
    );
}

#[test]
fn type_inserts_text_in_one_call_and_honours_escapes() {
    assert_eq!(
        super::interact::typed_parts(r"ab\ncd\t\\x"),
        vec![
            super::interact::Typed::Text("ab".into()),
            super::interact::Typed::Key("Enter"),
            super::interact::Typed::Text("cd".into()),
            super::interact::Typed::Key("Tab"),
            super::interact::Typed::Text("\\x".into()),
        ]
    );
    let mut sh = Shell::in_form();
    assert_eq!(
        sh.ok("type hello world"),
        "✓ Typed 11 characters\r\n(nothing changed here)"
    );
    assert_eq!(calls(&sh.b, "Input.insertText"), 1);
    // Inside double quotes the grammar turns `\n` into a newline; unquoted `\\t` stays `\t`.
    assert_eq!(
        sh.ok(r#"type "a\nb""#),
        "✓ Typed 3 characters\r\n(nothing changed here)"
    );
    assert_eq!(calls(&sh.b, "Input.insertText"), 3);
    assert_eq!(calls(&sh.b, "Input.dispatchKeyEvent"), 2);
    assert_eq!(
        sh.ok(r"type c\\td"),
        "✓ Typed 3 characters\r\n(nothing changed here)"
    );
    assert_eq!(calls(&sh.b, "Input.insertText"), 5);
    assert_eq!(calls(&sh.b, "Input.dispatchKeyEvent"), 4);
}

/// The `Input.dispatchKeyEvent` parameters sent so far.
fn key_events(b: &FakeBrowser) -> Vec<serde_json::Value> {
    b.state
        .borrow()
        .cdp_params
        .iter()
        .filter(|(_, m, _)| m == "Input.dispatchKeyEvent")
        .map(|(_, _, p)| p.clone())
        .collect()
}

fn active_tab_of(b: &FakeBrowser, window: i64) -> Option<i64> {
    b.state
        .borrow()
        .tabs
        .iter()
        .find(|t| t.active && t.window_id == Some(window))
        .and_then(|t| t.id)
}

#[test]
fn key_is_trusted_on_the_active_tab_and_synthetic_on_a_background_one() {
    // Tab 101 is not the active tab of its window.
    let mut sh = Shell::in_form();
    let out = sh.ok("key Enter");
    assert!(
        out.starts_with("✓ Pressed Enter (background tab: synthetic event"),
        "{out}"
    );
    assert_eq!(calls(&sh.b, "Input.dispatchKeyEvent"), 0);
    assert!(sh.err("key Hyper").starts_with("key: unknown key 'Hyper'"));
    assert!(sh.err("key kk").starts_with("key: unknown key 'kk'"));
    assert!(sh
        .err("key a --modifiers super")
        .contains("unknown modifier"));
    assert!(sh.err("key").starts_with("key: usage: key <KeyName|char>"));
    // On the active tab a character is a real key press: keydown listeners see it.
    sh.b.activate_now(101);
    assert_eq!(
        sh.ok("key k"),
        "✓ Pressed k (trusted input)\r\n(nothing changed here)"
    );
    let events = key_events(&sh.b);
    assert_eq!(
        events,
        [
            json!({"type": "keyDown", "key": "k", "code": "KeyK", "windowsVirtualKeyCode": 75,
                "modifiers": 0, "text": "k", "unmodifiedText": "k"}),
            json!({"type": "keyUp", "key": "k", "code": "KeyK", "windowsVirtualKeyCode": 75,
                "modifiers": 0}),
        ]
    );
    assert_eq!(calls(&sh.b, "Input.insertText"), 0);
    // A shortcut with modifiers, and a named key, are raw key downs.
    sh.ok("key k --modifiers ctrl,shift");
    let events = key_events(&sh.b);
    assert_eq!(events[2]["type"], "rawKeyDown");
    assert_eq!(events[2]["modifiers"], 10);
    assert!(events[2].get("text").is_none());
    sh.ok("key Escape");
    assert_eq!(key_events(&sh.b)[4]["type"], "rawKeyDown");
    assert_eq!(key_events(&sh.b)[4]["windowsVirtualKeyCode"], 27);
}

#[test]
fn key_activate_brings_the_tab_forward_then_gives_the_focus_back() {
    // The user looks at tab 200 in window 2 (focused); tab 101 sits behind tab 100 in
    // window 1.
    let mut sh = Shell::in_form();
    sh.b.activate_now(200);
    assert_eq!(active_tab_of(&sh.b, 1), Some(100));
    let out = sh.ok("key k --activate");
    assert_eq!(
        out,
        "✓ Pressed k (trusted input) (tab 101 activated for the keys, then tab 200 active again as before)\r\n(nothing changed here)"
    );
    // 101 forward, its window's own tab back, the user's tab (and window) last.
    assert_eq!(sh.b.state.borrow().activations, [101, 100, 200]);
    assert_eq!(active_tab_of(&sh.b, 1), Some(100));
    assert_eq!(active_tab_of(&sh.b, 2), Some(200));
    assert_eq!(sh.b.state.borrow().focused_window, 2);
    assert_eq!(key_events(&sh.b).len(), 2);
    assert_eq!(key_events(&sh.b)[0]["type"], "keyDown");

    // Same window: the tab that was in front is in front again.
    sh.b.activate_now(100);
    sh.b.state.borrow_mut().activations.clear();
    let out = sh.ok("key Enter --activate --quiet");
    assert!(
        out.ends_with("then tab 100 active again as before)"),
        "{out}"
    );
    assert_eq!(sh.b.state.borrow().activations, [101, 100]);

    // Already in front: nothing to move.
    sh.b.activate_now(101);
    sh.b.state.borrow_mut().activations.clear();
    assert_eq!(
        sh.ok("key Tab --activate"),
        "✓ Pressed Tab (trusted input)\r\n(nothing changed here)"
    );
    assert!(sh.b.state.borrow().activations.is_empty());

    // The focus goes back even when it cannot be given to every tab, and says so.
    sh.b.activate_now(100);
    sh.b.state.borrow_mut().refuse_activate.insert(100);
    let out = sh.ok("key k --activate");
    assert!(out.contains("could not make tab 100 active again"), "{out}");
    sh.b.activate_now(100);
    sh.b.state.borrow_mut().refuse_activate.insert(101);
    let e = sh.err("key k --activate");
    assert!(e.starts_with("key: cannot activate tab 101"), "{e}");
}

#[test]
fn a_read_whose_node_left_with_its_document_reads_the_new_page_once_more() {
    let mut sh = Shell::in_form();
    let button = sh.ok("find --type button -n 1");
    let path = button.split_whitespace().nth(1).unwrap().to_string();
    set_call_result(
        &sh.b,
        json!({"text": "Create account", "shown": 14, "total": 14, "moreLines": 0}),
    );
    // A form's submission began after the last command returned: the node is gone once.
    sh.b.state.borrow_mut().fail_once.push((
        "DOM.resolveNode".into(),
        "Node with given id does not belong to the document".into(),
    ));
    let reads_before = calls(&sh.b, "Accessibility.getFullAXTree");
    let text = sh.ok(&format!("text {path}"));
    assert_eq!(text, "Create account\r\n(14 chars)");
    assert!(
        calls(&sh.b, "Accessibility.getFullAXTree") > reads_before,
        "the page was read again"
    );
    // Only once: a node that stays gone fails, saying so.
    for _ in 0..2 {
        sh.b.state.borrow_mut().fail_once.push((
            "DOM.resolveNode".into(),
            "Node with given id does not belong to the document".into(),
        ));
    }
    let e = sh.err(&format!("text {path}"));
    assert!(e.contains("its DOM node is gone"), "{e}");
}

#[test]
fn submit_fills_a_field_and_submits_its_form() {
    let mut sh = Shell::in_form();
    set_call_result(&sh.b, json!("submitted its form"));
    let out = sh.ok("submit email_address_input ada@example.org");
    assert_eq!(
        out,
        "✓ Submitted: typed \"ada@example.org\" into email_address/input, then submitted its form\r\n(nothing changed here)"
    );
    // Fuzzy: the label without the role suffix.
    let fuzzy = sh.ok("submit password secret");
    assert!(fuzzy.contains("into password/input"), "{fuzzy}");
    assert!(sh.err("submit only_a_name").starts_with("submit: usage"));
}

#[test]
fn select_reports_the_choice_or_lists_the_options() {
    let mut sh = Shell::in_form();
    let select = sh
        .ok("find --type select")
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    set_call_result(&sh.b, json!({"text": "Japan", "value": "Japan"}));
    assert_eq!(
        sh.ok(&format!("select {select} japan")),
        "✓ Selected: Japan (value=Japan)\r\n(nothing changed here)"
    );
    set_call_result(
        &sh.b,
        json!({"options": [{"text": "France", "value": "fr"}, {"text": "Germany", "value": "de"}]}),
    );
    let e = sh.err(&format!("select {select} Peru"));
    assert!(
        e.ends_with("Options: France (value=fr), Germany (value=de)"),
        "{e}"
    );
}

#[test]
fn scroll_reports_position_and_inner_containers() {
    let mut sh = Shell::in_form();
    sh.b.state.borrow_mut().cdp_replies.insert(
        "Runtime.evaluate".into(),
        json!({"result": {"value": {"top": 600, "height": 2400, "view": 600, "inner": true, "doc": "doc-1", "n": 0}}}),
    );
    let out = sh.ok("scroll down 2");
    assert_eq!(
        out,
        "✓ Scrolled down 2 viewport(s) (inner container)\r\nPosition: 600/2400px (33%)\r\n(nothing changed here)"
    );
    assert!(sh.err("scroll down lots").contains("N must be a number"));
    set_call_result(&sh.b, json!(null));
    assert_eq!(
        sh.ok("scroll create_account_btn"),
        "✓ Scrolled to create_account_btn\r\n(nothing changed here)"
    );
}

#[test]
fn scroll_window_scrolls_the_window_whatever_the_containers() {
    let mut sh = Shell::in_form();
    sh.b.state.borrow_mut().cdp_replies.insert(
        "Runtime.evaluate".into(),
        json!({"result": {"value": {"top": 900, "height": 4200, "view": 900, "inner": false, "moved": true, "doc": "doc-1", "n": 0}}}),
    );
    let dir = first_dir(&sh.ok("ls"));
    sh.ok(&format!("cd {dir}"));
    let out = sh.ok("scroll --window");
    assert_eq!(
        out,
        "✓ Scrolled down 1 viewport(s)\r\nPosition: 900/4200px (27%)\r\n(nothing changed here)"
    );
    // The window's own scroll ran, not the container walk from the current directory.
    let expression =
        sh.b.state
            .borrow()
            .cdp_params
            .iter()
            .rev()
            .find(|(_, m, p)| {
                m == "Runtime.evaluate"
                    && p["expression"]
                        .as_str()
                        .is_some_and(|e| e.contains("scrollBy"))
            })
            .map(|(_, _, p)| p["expression"].as_str().unwrap_or_default().to_string())
            .expect("a window scroll was evaluated");
    assert!(
        expression.starts_with("(function(n) { const root"),
        "{expression}"
    );
    assert!(expression.ends_with("})(1.0)"), "{expression}");
    assert_eq!(calls(&sh.b, "Runtime.callFunctionOn"), 0);
    sh.ok("scroll up 2 --window");
    sh.b.state.borrow_mut().cdp_replies.insert(
        "Runtime.evaluate".into(),
        json!({"result": {"value": {"top": 0, "height": 600, "view": 600, "inner": false, "moved": false, "doc": "doc-1", "n": 0}}}),
    );
    assert!(sh
        .ok("scroll --window --quiet")
        .ends_with("(the window did not move: it is at its end, or the page scrolls only inside containers; `scroll` without --window scrolls the nearest one)"));
    assert!(sh
        .err("scroll create_account_btn --window")
        .starts_with("scroll: --window scrolls the page itself"));
}

#[test]
fn every_row_of_the_command_table_is_what_the_classifier_help_and_dispatch_do() {
    use shared_protocol::commands::{Family, TierRule, COMMANDS};
    use shared_protocol::tier::{classify_line, Tier};
    let mut sh = Shell::in_form();
    for def in COMMANDS {
        let name = def.name;
        // The classifier knows it, and a fixed rule is the tier it gives.
        let classified = classify_line(name);
        match def.tier {
            TierRule::Read => assert_eq!(classified.unwrap().tier(), Tier::Read, "{name}"),
            TierRule::Needs(tier, _) => assert_eq!(classified.unwrap().tier(), tier, "{name}"),
            TierRule::JavaScript(_) => {
                assert_eq!(classified.unwrap().tier(), Tier::Sensitive, "{name}")
            }
            TierRule::ByArguments => assert!(
                !matches!(
                    classified,
                    Err(shared_protocol::grammar::ParseError::UnknownCommand(_))
                ),
                "{name}"
            ),
        }
        // Its help is its row's.
        let help = sh.ok(&format!("{name} --help"));
        assert!(
            help.starts_with(&format!("usage: {}\r\n  {}", def.usage, def.summary)),
            "{help}"
        );
        // Under `--granular` its tool is offered exactly when it has one and this build runs it.
        let tool = shared_protocol::tools::find_tool(&shared_protocol::tools::tool_name(def));
        assert_eq!(
            tool.map(|t| t.name),
            (def.available() && def.tool.is_some()).then_some(def.name)
        );
        if def.family == Family::Missing || def.raw || name == "type" {
            continue;
        }
        // Dispatch takes every flag of the row, and refuses one the row lacks.
        for flag in def.flags {
            let value = if flag.takes_value { " 1" } else { "" };
            let line = format!("{name} {}{value} x", flag.name);
            let reply = sh.run(&line);
            assert!(
                !reply.output.contains("unknown option"),
                "{line}: {}",
                reply.output
            );
        }
        let refused = sh.err(&format!("{name} --no-such-flag"));
        assert!(
            refused.starts_with(&format!("{name}: unknown option --no-such-flag")),
            "{refused}"
        );
    }
    // A word that is no command is refused by the classifier, not taken for a read.
    assert!(matches!(
        classify_line("frobnicate x"),
        Err(shared_protocol::grammar::ParseError::UnknownCommand(_))
    ));
}

#[test]
fn ls_takes_combined_short_flags() {
    let mut sh = Shell::in_form();
    let long = sh.ok("ls -l");
    assert_eq!(sh.ok("ls -la"), long);
    assert_eq!(sh.ok("ls -al"), long);
    assert_eq!(sh.ok("ls -l -a"), long);
    assert_eq!(sh.ok("ls --long --all"), long);
    assert_eq!(sh.ok("ls -a"), sh.ok("ls"));
    assert_ne!(sh.ok("ls -lr"), long);
    assert_eq!(
        sh.err("ls -lz"),
        "ls: unknown option -z in -lz (ls knows -a -l -n N -r); see `ls --help`"
    );
    assert!(sh.err("ls -ln 3").starts_with("ls: -n takes a value"));
    // At browser level too (the listings there are always long and complete).
    assert_eq!(sh.ok("ls -la ~/tabs"), sh.ok("ls ~/tabs"));
}

#[test]
fn wait_finds_at_once_or_times_out_on_page_side_change_waits() {
    let mut sh = Shell::in_form();
    let out = sh.ok("wait create --type button");
    assert!(out.starts_with("✓ Found after 0.0s\r\n  [x] "), "{out}");
    let reads = tree_reads(&sh.b);
    let e = sh.err("wait never_there --timeout 1");
    assert_eq!(e, "wait: timed out after 1s — \"never_there\" not found");
    // The probe reply carries no measured wait, so each round counts as a whole slice:
    // one page-side wait, and no full re-read while the page did not change.
    assert_eq!(tree_reads(&sh.b), reads);
}

#[test]
fn screenshot_and_whoami() {
    let mut sh = Shell::in_form();
    sh.b.state.borrow_mut().cdp_replies.insert(
        "Page.captureScreenshot".into(),
        json!({"data": "iVBORw0KGgo="}),
    );
    sh.b.state.borrow_mut().cdp_replies.insert(
        "Page.getLayoutMetrics".into(),
        json!({"cssLayoutViewport": {"pageX": 0, "pageY": 0, "clientWidth": 2560, "clientHeight": 1440},
               "layoutViewport": {"clientWidth": 2560, "clientHeight": 1440},
               "cssContentSize": {"width": 2560, "height": 5000}}),
    );
    // Scaled to the default width, as a JPEG that says its size.
    assert_eq!(
        sh.ok("screenshot"),
        "__SCREENSHOT_BASE64__image/jpeg;1280x720;iVBORw0KGgo="
    );
    assert_eq!(
        sh.ok("screenshot --full --max-width 640"),
        "__SCREENSHOT_BASE64__image/jpeg;640x1250;iVBORw0KGgo="
    );
    let params =
        sh.b.state
            .borrow()
            .cdp_params
            .iter()
            .rev()
            .find(|(_, m, _)| m == "Page.captureScreenshot")
            .map(|(_, _, p)| p.clone())
            .unwrap();
    assert_eq!(params["format"], "jpeg");
    assert_eq!(params["captureBeyondViewport"], true);
    assert_eq!(params["clip"]["height"], 5000.0);
    assert_eq!(params["clip"]["scale"], 0.25);
    assert!(sh
        .err("screenshot --max-width 5")
        .starts_with("screenshot: --max-width takes 100"));
    assert!(sh
        .err("screenshot main --full")
        .starts_with("screenshot: --full captures"));
    sh.b.state
        .borrow_mut()
        .cdp_replies
        .insert("Page.printToPDF".into(), json!({"data": "JVBERi0xLjQ="}));
    assert_eq!(sh.ok("pdf --landscape"), "__PDF_BASE64__JVBERi0xLjQ=");
    sh.b.state.borrow_mut().cdp_replies.insert(
        "Network.getCookies".into(),
        json!({"cookies": [
            {"name": "theme", "value": "dark", "expires": -1, "session": true},
            {"name": "session_id", "value": "s3cr3t", "expires": 1798761600.0, "session": false}
        ]}),
    );
    let out = sh.ok("whoami");
    assert!(
        out.contains("Status: Authenticated\r\nVia: session_id\r\nExpires: 2027-01-01 00:00 UTC"),
        "{out}"
    );
    assert!(out.contains("Total cookies: 2"), "{out}");
    assert!(
        !out.contains("s3cr3t") && !out.contains("dark"),
        "values never shown: {out}"
    );
    assert_eq!(super::interact::utc_date(0), "1970-01-01 00:00 UTC");
}

#[test]
fn an_out_of_process_frame_is_read_through_its_session_and_listed_under_its_iframe() {
    let snapshot: serde_json::Value = serde_json::from_str(include_str!(
        "../../tests/fixtures/ax/frame_cross_site.json"
    ))
    .unwrap();
    let frame = &snapshot["frames"][0];
    let b = FakeBrowser::standard();
    {
        let mut s = b.state.borrow_mut();
        // The parent's frame tree does not list the out-of-process frame.
        s.cdp_replies.insert(
            "Page.getFrameTree".into(),
            json!({"frameTree": {"frame": {"id": snapshot["main"]["frameId"], "url": "https://example.com/"}}}),
        );
        s.cdp_replies.insert(
            "Accessibility.getFullAXTree".into(),
            json!({"nodes": snapshot["main"]["nodes"]}),
        );
        for method in ["Target.setAutoAttach", "DOM.getDocument"] {
            s.cdp_replies.insert(method.into(), json!({}));
        }
        s.cdp_replies.insert(
            "DOM.getFrameOwner".into(),
            json!({"backendNodeId": frame["ownerBackendNodeId"]}),
        );
        s.frame_sessions.insert(
            101,
            vec![super::browser::FrameSession {
                frame_id: frame["frameId"].as_str().unwrap().into(),
                session_id: "S1".into(),
                ..Default::default()
            }],
        );
        s.session_replies.insert(
            ("S1".into(), "Accessibility.getFullAXTree".into()),
            json!({"nodes": frame["nodes"]}),
        );
    }
    let mut sh = Shell {
        b,
        s: Session::default(),
        c: Context::new(&["example.com".to_string()], None),
    };
    let entered = sh.ok("cd ~/tabs/101");
    assert!(entered.ends_with("  Iframes: 1"), "{entered}");
    let found = sh.ok("find subscribe");
    let path = first_word_path(&found);
    assert!(
        path.contains("partner_widget"),
        "stitched under its iframe: {found}"
    );
    assert!(found.contains("(button)"), "{found}");
    assert!(sh
        .b
        .state
        .borrow()
        .cdp_calls
        .contains(&(101, "S1:Accessibility.getFullAXTree".to_string())));
}

fn first_word_path(found: &str) -> String {
    found
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn only_the_most_recently_used_trees_are_kept() {
    let b = FakeBrowser::standard();
    let cache = PageCache::default();
    let tabs: Vec<i64> = (0..super::page::MAX_KEPT_PAGES as i64 + 2)
        .map(|i| 500 + i)
        .collect();
    {
        let mut s = b.state.borrow_mut();
        for &t in &tabs {
            s.attachments
                .insert(t, super::browser::Attachment::Attached);
        }
    }
    for &t in &tabs {
        block_on(cache.tree(&b, t)).unwrap();
        // Tab 500 stays in use all along.
        block_on(cache.tree(&b, 500)).unwrap();
    }
    let kept = cache.kept_tabs();
    assert_eq!(kept.len(), super::page::MAX_KEPT_PAGES);
    assert!(kept.contains(&500), "{kept:?}");
    assert!(!kept.contains(&501) && !kept.contains(&502), "{kept:?}");
}
