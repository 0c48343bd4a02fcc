//! Kernel tests against the in-memory browser: dispatch, help, pipes, builtins, history,
//! sessions, navigation, allowlist and debugger-loss handling.

use super::browser::{Attachment, Browser};
use super::commands::COMMANDS;
use super::fake::{block_on, FakeBrowser};
use super::session::{Cwd, Session};
use super::{execute, Context, Reply};

fn ctx() -> Context {
    Context::new(&[], None)
}

fn ctx_with(domains: &[&str]) -> Context {
    let list: Vec<String> = domains.iter().map(|d| d.to_string()).collect();
    Context::new(&list, None)
}

fn run(session: &mut Session, browser: &FakeBrowser, line: &str) -> Reply {
    block_on(execute(session, browser, &ctx(), line))
}

fn run_in(session: &mut Session, browser: &FakeBrowser, c: &Context, line: &str) -> Reply {
    block_on(execute(session, browser, c, line))
}

fn ok(session: &mut Session, browser: &FakeBrowser, line: &str) -> String {
    let reply = run(session, browser, line);
    assert!(reply.ok, "`{line}` failed: {}", reply.output);
    reply.output
}

fn err(session: &mut Session, browser: &FakeBrowser, line: &str) -> String {
    let reply = run(session, browser, line);
    assert!(
        !reply.ok,
        "`{line}` should fail but printed: {}",
        reply.output
    );
    reply.output
}

#[test]
fn every_command_has_help_and_help_lists_them_all() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    let help = ok(&mut s, &b, "help");
    for spec in COMMANDS {
        assert!(
            help.contains(&format!("  {:<14}", spec.name)),
            "{} missing",
            spec.name
        );
        let own = ok(&mut s, &b, &format!("{} --help", spec.name));
        assert!(own.starts_with(&format!("usage: {}", spec.name)), "{own}");
        assert_eq!(
            own.contains("Not available yet"),
            !spec.available(),
            "{own}"
        );
        assert_eq!(ok(&mut s, &b, &format!("help {}", spec.name)), own);
    }
    assert!(help.contains("diff           what changed here since your last look"));
    assert!(help.contains("click          click an element\r\n"));
}

#[test]
fn unavailable_commands_fail_clearly_and_unknown_ones_are_not_found() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    for spec in COMMANDS.iter().filter(|c| !c.available()) {
        let line = match spec.name {
            "for" => "for tabs : pwd".to_string(),
            "watch" | "each" => format!("{} pwd", spec.name),
            "script" => "script list".to_string(),
            "type" => "type hello".to_string(),
            name => name.to_string(),
        };
        let out = err(&mut s, &b, &line);
        assert!(
            out.starts_with(&format!("{}: not available yet in this build", spec.name)),
            "{out}"
        );
    }
    let out = err(&mut s, &b, "frobnicate x");
    assert_eq!(
        out,
        "domshell: frobnicate: command not found. Run `help` for the list of commands."
    );
    // The grammar's errors are reported as they are.
    let out = err(&mut s, &b, "tabs | sort");
    assert_eq!(
        out,
        "Pipe: 'sort' not supported as pipe consumer. Use grep or head."
    );
    assert!(err(&mut s, &b, "cd \"unclosed").contains("unterminated"));
    assert!(err(&mut s, &b, "tabs --jsno").contains("unknown option --jsno"));
}

#[test]
fn pipes_filter_lines_through_grep_and_head() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    let out = ok(&mut s, &b, "tabs | grep EXAMPLE");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("101"), "{out}");
    assert_eq!(
        ok(&mut s, &b, "tabs | grep nothing-like-this"),
        "(no matches)"
    );
    let out = ok(&mut s, &b, "help | head -n 2");
    assert_eq!(out.split("\r\n").count(), 2, "{out}");
    let out = ok(&mut s, &b, "help | grep -n 2 tab");
    assert_eq!(out.split("\r\n").count(), 2, "{out}");
    assert_eq!(
        ok(&mut s, &b, "env | grep term | head -n 1"),
        "TERM=xterm-256color"
    );
    // A quoted pipe is part of the argument, not a pipe.
    assert!(err(&mut s, &b, "cd ~/tabs/\"a|b\"").contains("No such tab"));
}

#[test]
fn env_and_export() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    let env = ok(&mut s, &b, "env");
    assert_eq!(
        env,
        "PS1=dom@shell:$PWD$ \r\nSHELL=/bin/domshell\r\nTERM=xterm-256color"
    );
    assert_eq!(
        ok(&mut s, &b, "export API_BASE=https://x/?a=b"),
        "✓ API_BASE=https://x/?a=b"
    );
    assert!(ok(&mut s, &b, "env").contains("API_BASE=https://x/?a=b"));
    assert!(err(&mut s, &b, "export NOVALUE").contains("usage: export NAME=value"));
    assert!(err(&mut s, &b, "export 1X=2").contains("not a valid name"));
    // Never expanded.
    assert!(err(&mut s, &b, "cd $API_BASE").contains("No such directory"));
}

#[test]
fn history_numbers_replay_and_clear() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    ok(&mut s, &b, "pwd");
    ok(&mut s, &b, "cd ~/tabs");
    ok(&mut s, &b, "clear");
    ok(&mut s, &b, "cd ~");
    let h = ok(&mut s, &b, "history");
    assert_eq!(h, "   1  pwd\r\n   2  cd ~/tabs\r\n   3  cd ~");
    assert_eq!(ok(&mut s, &b, "history -n 1"), "   3  cd ~");
    // !2 runs `cd ~/tabs` again and records it.
    assert_eq!(ok(&mut s, &b, "!2"), "");
    assert_eq!(s.cwd, Cwd::Tabs);
    assert_eq!(ok(&mut s, &b, "history -n 1"), "   4  cd ~/tabs");
    assert_eq!(err(&mut s, &b, "!99"), "history: !99: event not found");
    assert_eq!(ok(&mut s, &b, "history clear"), "✓ History cleared");
    assert_eq!(ok(&mut s, &b, "history"), "(history is empty)");
    // Numbers keep counting after a clear, and old numbers are gone.
    ok(&mut s, &b, "pwd");
    assert_eq!(ok(&mut s, &b, "history"), "   5  pwd");
    assert!(err(&mut s, &b, "!1").contains("event not found"));
}

#[test]
fn history_keeps_the_last_500_with_stable_numbers() {
    let mut s = Session::default();
    for i in 0..510 {
        s.record(&format!("pwd # {i}"));
    }
    assert_eq!(s.history.len(), 500);
    assert_eq!(s.history_entry(11), Some("pwd # 10"));
    assert_eq!(s.history_entry(10), None);
    assert_eq!(s.history_entry(510), Some("pwd # 509"));
}

#[test]
fn session_state_round_trips_through_storage() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    ok(&mut s, &b, "cd ~/tabs/101");
    ok(&mut s, &b, "export A=1");
    let stored = s.to_storage();
    let restored = Session::from_storage("s1", stored.clone()).unwrap();
    // What the session last saw of a page is not stored: it is read again.
    s.look = None;
    assert_eq!(restored, s);
    assert_eq!(restored.cwd.display(), "~/tabs/101");
    assert_eq!(stored["cwd"], serde_json::json!({"at": "tab", "tab": 101}));
    // Missing fields take defaults; garbage is reported, not a panic.
    let partial = Session::from_storage("s2", serde_json::json!({"history": ["pwd"]})).unwrap();
    assert_eq!(partial.cwd, Cwd::Root);
    assert!(partial.env.contains_key("SHELL"));
    let e = Session::from_storage("s3", serde_json::json!({"cwd": 5})).unwrap_err();
    assert!(e.to_string().contains("session s3"), "{e}");
}

#[test]
fn every_cwd_is_stored_in_the_internally_tagged_form() {
    // The shape serde's `#[serde(tag = "at")]` wrote: sessions stored by an older worker
    // must read back, and a newer one must write what an older one reads.
    let cases = [
        (Cwd::Root, r#"{"at":"root"}"#),
        (Cwd::Tabs, r#"{"at":"tabs"}"#),
        (Cwd::Windows, r#"{"at":"windows"}"#),
        (Cwd::Window { window: 3 }, r#"{"at":"window","window":3}"#),
        (Cwd::tab_root(101, None), r#"{"at":"tab","tab":101}"#),
        (
            Cwd::Tab {
                tab: 101,
                via_window: Some(3),
                dom: vec!["main".into(), "nav".into()],
            },
            r#"{"at":"tab","tab":101,"via_window":3,"dom":["main","nav"]}"#,
        ),
    ];
    for (cwd, stored) in cases {
        assert_eq!(serde_json::to_string(&cwd).unwrap(), stored);
        assert_eq!(serde_json::from_str::<Cwd>(stored).unwrap(), cwd);
    }
    // Fields of other variants are ignored; a missing or unknown variant is an error.
    let root: Cwd = serde_json::from_str(r#"{"tab":1,"at":"root"}"#).unwrap();
    assert_eq!(root, Cwd::Root);
    for bad in [
        r#"{"tab":1}"#,
        r#"{"at":"window"}"#,
        r#"{"at":"moon"}"#,
        "5",
    ] {
        assert!(serde_json::from_str::<Cwd>(bad).is_err(), "{bad}");
    }
}

#[test]
fn tabs_and_windows_listings() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    ok(&mut s, &b, "cd ~/tabs/101");
    let out = ok(&mut s, &b, "tabs");
    let lines: Vec<&str> = out.split("\r\n").collect();
    // One unpadded line per tab, no header.
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0], "*100  about:blank  win 1", "{out}");
    assert!(
        lines[1].starts_with(" 101  Example Domain  https://example.com/  win 1"),
        "{out}"
    );
    assert!(lines[1].ends_with("win 1 *current"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&ok(&mut s, &b, "tabs --json")).unwrap();
    assert_eq!(json["tabs"][1]["current"], true);
    assert_eq!(json["tabs"][1]["windowId"], 1);
    let out = ok(&mut s, &b, "windows");
    assert!(out.starts_with("Window 1 (focused)\r\n├── *100"), "{out}");
    assert!(
        out.contains("└──  101 Example Domain   example.com/ *current"),
        "{out}"
    );
    assert!(
        out.contains("Window 2\r\n└── *200 Other docs   other.org/docs"),
        "{out}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&mut s, &b, "windows --json")).unwrap();
    assert_eq!(json["windows"][0]["focused"], true);
    assert_eq!(json["windows"][1]["tabs"][0]["id"], 200);
    assert_eq!(ok(&mut s, &b, "ls ~/tabs"), ok(&mut s, &b, "tabs"));
    let root = ok(&mut s, &b, "ls ~");
    assert!(
        root.starts_with("windows/ (2 windows)\r\ntabs/ (3 tabs)\r\nActive tab: 100"),
        "{root}"
    );
    assert_eq!(
        ok(&mut s, &b, "ls"),
        "(empty directory)",
        "inside a tab, ls lists the page"
    );
}

#[test]
fn tabs_marks_tabs_outside_the_allowlist() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    let c = ctx_with(&["example.com"]);
    let out = run_in(&mut s, &b, &c, "tabs").output;
    let lines: Vec<&str> = out.split("\r\n").collect();
    assert!(
        !lines[0].contains("outside"),
        "about:blank is allowed: {out}"
    );
    assert!(!lines[1].contains("outside"), "{out}");
    assert!(lines[2].ends_with("[outside allowlist]"), "{out}");
    b.state.borrow_mut().tabs[0].url = "chrome://newtab/".into();
    let out = run_in(&mut s, &b, &ctx(), "tabs").output;
    assert!(
        out.split("\r\n")
            .next()
            .unwrap()
            .ends_with("[browser page]"),
        "{out}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run_in(&mut s, &b, &ctx(), "windows --json").output).unwrap();
    assert_eq!(json["windows"][0]["tabs"][0]["allowed"], false);
    assert_eq!(json["windows"][0]["tabs"][1]["allowed"], true);
}

#[test]
fn cd_through_browser_paths() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    assert_eq!(ok(&mut s, &b, "cd tabs"), "");
    assert_eq!(ok(&mut s, &b, "pwd"), "~/tabs");
    let out = ok(&mut s, &b, "cd 101");
    assert_eq!(
        out,
        "✓ Entered tab 101\r\n  Title: Example Domain\r\n  URL: https://example.com/\r\n  AX Nodes: 1"
    );
    assert_eq!(ok(&mut s, &b, "pwd"), "~/tabs/101");
    assert_eq!(b.attachment(101), Attachment::Attached);
    ok(&mut s, &b, "cd ..");
    assert_eq!(ok(&mut s, &b, "pwd"), "~/tabs");
    ok(&mut s, &b, "cd ~/windows/2");
    assert_eq!(ok(&mut s, &b, "pwd"), "~/windows/2");
    ok(&mut s, &b, "cd docs");
    assert_eq!(ok(&mut s, &b, "pwd"), "~/windows/2/200");
    ok(&mut s, &b, "cd ..");
    assert_eq!(ok(&mut s, &b, "pwd"), "~/windows/2");
    ok(&mut s, &b, "cd");
    assert_eq!(ok(&mut s, &b, "pwd"), "~");
    assert!(err(&mut s, &b, "cd ~/windows/9").contains("No such window"));
    assert!(err(&mut s, &b, "cd ~/tabs/999").contains("999: No such tab"));
    assert!(err(&mut s, &b, "cd nowhere").contains("No such directory"));
    ok(&mut s, &b, "cd ~/tabs/example");
    assert_eq!(ok(&mut s, &b, "pwd"), "~/tabs/101");
    assert!(err(&mut s, &b, "cd main").starts_with("cd: main: No such directory"));
    assert_eq!(
        ok(&mut s, &b, "pwd"),
        "~/tabs/101",
        "a failed cd moves nothing"
    );
}

#[test]
fn a_pattern_matching_several_tabs_lists_them() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    let out = err(&mut s, &b, "cd ~/tabs/https");
    assert!(
        out.starts_with("cd: https: matches 2 tabs; enter one by id:"),
        "{out}"
    );
    assert!(out.contains("101") && out.contains("200"), "{out}");
    assert_eq!(s.cwd, Cwd::Root);
}

#[test]
fn here_enters_the_focused_tab() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    assert!(ok(&mut s, &b, "here").starts_with("✓ Entered tab 100"));
    assert_eq!(ok(&mut s, &b, "here"), "Already in tab 100 — ");
    ok(&mut s, &b, "cd %here%");
    assert_eq!(ok(&mut s, &b, "pwd"), "~/windows/1/100");
    ok(&mut s, &b, "cd %here%/..");
    assert_eq!(ok(&mut s, &b, "pwd"), "~/windows/1");
    assert!(err(&mut s, &b, "cd %here%x").contains("No such directory"));
}

#[test]
fn open_waits_attaches_and_enters() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    let out = ok(&mut s, &b, "open example.com/page");
    assert_eq!(
        out,
        "✓ Opened new tab 300\r\n  Title: Page https://example.com/page\r\n  URL: https://example.com/page\r\n  AX Nodes: 1"
    );
    assert_eq!(ok(&mut s, &b, "pwd"), "~/tabs/300");
    assert_eq!(b.attachment(300), Attachment::Attached);
    // The tab is made blank (a short wait), attached, then sent to the page (the load wait).
    assert_eq!(b.state.borrow().waits, vec![2_000, 15_000]);
    ok(&mut s, &b, "open about:blank --timeout 2.5");
    assert_eq!(b.state.borrow().waits[2], 2_500);
    assert!(err(&mut s, &b, "open").contains("missing the URL"));
    // `--url` is the grammar's other spelling of the URL; anything else is refused.
    assert!(ok(&mut s, &b, "open --url https://x.org").contains("URL: https://x.org"));
    assert!(err(&mut s, &b, "navigate x.org y.org").contains("usage: open|navigate|goto"));
    assert!(err(&mut s, &b, "open -n https://x.org").starts_with("open: unknown option -n"));
    assert!(err(&mut s, &b, "open x.org --timeout soon").contains("--timeout expects seconds"));
}

#[test]
fn a_slow_page_is_reported_not_hidden() {
    let b = FakeBrowser::standard();
    b.state
        .borrow_mut()
        .slow
        .insert("https://slow.test/".into());
    let mut s = Session::default();
    let out = ok(&mut s, &b, "open https://slow.test/ --timeout 1");
    assert!(out.contains("still loading after 1.0 s"), "{out}");
}

#[test]
fn the_deadline_caps_every_wait() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    let c = Context::new(&[], Some(5_000));
    assert!(run_in(&mut s, &b, &c, "open https://a.test/ --timeout 50").ok);
    assert!(run_in(&mut s, &b, &c, "open https://b.test/").ok);
    assert_eq!(b.state.borrow().waits, vec![2_000, 3_000, 2_000, 3_000]);
}

#[test]
fn forbidden_schemes_are_refused_with_advice() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    for line in [
        "open chrome://settings",
        "open devtools://devtools/bundled/inspector.html",
        "open view-source:https://example.com",
        "open chrome-extension://abcdefghijklmnopabcdefghijklmnop/page.html",
    ] {
        let out = err(&mut s, &b, line);
        assert!(out.contains("browser-internal page"), "{line}: {out}");
        assert!(out.contains("open https://example.com"), "{out}");
    }
    let out = err(&mut s, &b, "open javascript:alert(1)");
    assert!(out.contains("only http(s) URLs and about:blank"), "{out}");
    assert!(err(&mut s, &b, "open file:///etc/passwd").contains("only http(s)"));
    // A tab showing an internal page cannot be entered either.
    b.state.borrow_mut().tabs[0].url = "chrome://newtab/".into();
    assert!(err(&mut s, &b, "cd ~/tabs/100").contains("browser-internal"));
    assert_eq!(b.state.borrow().tabs.len(), 3, "nothing was opened");
}

#[test]
fn navigation_targets_and_redirects_obey_the_allowlist() {
    let b = FakeBrowser::standard();
    let c = ctx_with(&["example.com"]);
    let mut s = Session::default();
    let r = run_in(&mut s, &b, &c, "open https://evil.test/");
    assert!(
        !r.ok && r.output.contains("outside the domain allowlist"),
        "{}",
        r.output
    );
    assert_eq!(b.state.borrow().tabs.len(), 3, "refused before opening");

    // A listed page that redirects off the list: the new tab is closed again.
    b.state.borrow_mut().redirects.insert(
        "https://example.com/out".into(),
        "https://evil.test/landing".into(),
    );
    let r = run_in(&mut s, &b, &c, "open https://example.com/out");
    assert!(!r.ok, "{}", r.output);
    assert!(
        r.output
            .contains("ended up at https://evil.test/landing and was closed"),
        "{}",
        r.output
    );
    assert_eq!(b.state.borrow().tabs.len(), 3);

    // The same in the session's own tab: refused and the session leaves the tab.
    assert!(run_in(&mut s, &b, &c, "cd ~/tabs/101").ok);
    let r = run_in(&mut s, &b, &c, "navigate https://example.com/out");
    assert!(
        !r.ok && r.output.contains("You are at ~ now"),
        "{}",
        r.output
    );
    assert_eq!(s.cwd, Cwd::Root);

    // Reading commands on a tab outside the list are refused.
    let r = run_in(&mut s, &b, &c, "cd ~/tabs/200");
    assert!(
        !r.ok && r.output.contains("other.org is not one of: example.com"),
        "{}",
        r.output
    );
    assert_eq!(b.attachment(200), Attachment::NotAttached, "never attached");
    let r = run_in(&mut s, &b, &c, "close 200");
    assert!(!r.ok, "{}", r.output);
}

#[test]
fn back_and_forward_check_their_target_before_going() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    ok(&mut s, &b, "cd ~/tabs/101");
    ok(&mut s, &b, "navigate https://example.com/two");
    ok(&mut s, &b, "navigate https://elsewhere.test/three");
    let out = ok(&mut s, &b, "back");
    assert_eq!(
        out,
        "✓ Back\r\n  Title: Page https://example.com/two\r\n  URL: https://example.com/two\r\n  AX Nodes: 1"
    );
    let out = ok(&mut s, &b, "forward");
    assert!(out.starts_with("✓ Forward\r\n"), "{out}");
    assert_eq!(ok(&mut s, &b, "forward"), "No next page in history.");
    ok(&mut s, &b, "back");
    ok(&mut s, &b, "back");
    assert_eq!(ok(&mut s, &b, "back"), "No previous page in history.");
    // With an allowlist, going forward to an unlisted page is refused before it loads.
    let c = ctx_with(&["example.com"]);
    ok(&mut s, &b, "forward");
    let r = run_in(&mut s, &b, &c, "forward");
    assert!(!r.ok && r.output.contains("elsewhere.test"), "{}", r.output);
    assert_eq!(b.url_of(101).as_deref(), Some("https://example.com/two"));
    assert!(err(&mut s, &b, "back now").contains("unexpected argument"));
}

#[test]
fn navigate_needs_a_tab_and_resets_the_path() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    assert!(err(&mut s, &b, "navigate https://example.com/").contains("not in a tab"));
    assert!(err(&mut s, &b, "back").contains("not in a tab"));
    ok(&mut s, &b, "cd ~/windows/1/101");
    let out = ok(&mut s, &b, "goto https://example.com/x");
    assert!(out.starts_with("✓ Navigated\r\n"), "{out}");
    assert_eq!(ok(&mut s, &b, "pwd"), "~/windows/1/101");
}

#[test]
fn close_the_current_or_a_given_tab() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    ok(&mut s, &b, "cd ~/tabs/101");
    assert_eq!(ok(&mut s, &b, "close"), "✓ Closed: Example Domain");
    assert_eq!(ok(&mut s, &b, "pwd"), "~");
    assert!(err(&mut s, &b, "close").contains("not in a tab"));
    assert_eq!(ok(&mut s, &b, "close 200"), "✓ Closed: Other docs");
    assert!(err(&mut s, &b, "close 200").contains("no tab with id 200"));
    assert!(err(&mut s, &b, "close abc").contains("not a tab id"));
}

#[test]
fn a_lost_debugger_is_reported_once_then_reattached() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    ok(&mut s, &b, "cd ~/tabs/101");
    assert_eq!(b.state.borrow().attach_calls, 1);
    b.lose(
        101,
        "the user opened DevTools or another debugger (canceled_by_user)",
    );
    let out = err(&mut s, &b, "refresh");
    assert!(
        out.contains("debugger connection to tab 101 was lost"),
        "{out}"
    );
    assert!(out.contains("canceled_by_user"), "{out}");
    assert!(out.contains("run the command again"), "{out}");
    let out = ok(&mut s, &b, "refresh");
    assert!(out.starts_with("✓ Refreshed tab 101"), "{out}");
    assert_eq!(b.state.borrow().attach_calls, 2);
    assert_eq!(b.attachment(101), Attachment::Attached);
    // Back/forward use the same rule.
    b.lose(101, "target_closed");
    assert!(err(&mut s, &b, "back").contains("was lost"));
    assert_eq!(ok(&mut s, &b, "back"), "No previous page in history.");
}

#[test]
fn a_closed_tab_sends_the_session_home() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    ok(&mut s, &b, "cd ~/tabs/101");
    b.state.borrow_mut().tabs.retain(|t| t.id != Some(101));
    b.lose(101, "target_closed");
    let out = err(&mut s, &b, "refresh");
    assert!(out.contains("tab 101 no longer exists"), "{out}");
    assert_eq!(s.cwd, Cwd::Root);
    assert_eq!(b.attachment(101), Attachment::NotAttached);
}

#[test]
fn attach_failures_are_explained() {
    let b = FakeBrowser::standard();
    b.state.borrow_mut().refuse_attach.insert(101);
    let mut s = Session::default();
    let out = err(&mut s, &b, "cd ~/tabs/101");
    assert!(
        out.contains("cannot attach to tab 101: Another debugger"),
        "{out}"
    );
    assert_eq!(s.cwd, Cwd::Root);
}

#[test]
fn several_tabs_stay_attached_across_switches() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    ok(&mut s, &b, "cd ~/tabs/101");
    ok(&mut s, &b, "cd ~/tabs/200");
    ok(&mut s, &b, "cd ~/tabs/101");
    ok(&mut s, &b, "cd ~/tabs/200");
    assert_eq!(
        b.state.borrow().attach_calls,
        2,
        "no detach + re-attach per switch"
    );
    assert_eq!(b.attachment(101), Attachment::Attached);
}

#[test]
fn page_commands_get_an_attached_readable_tab_from_require_page() {
    // How a page command plugs in: the gate first, then protocol calls on the tab.
    let b = FakeBrowser::standard();
    b.state.borrow_mut().cdp_replies.insert(
        "Accessibility.getRootAXNode".into(),
        serde_json::json!({"node": {"nodeId": "1"}}),
    );
    let mut s = Session::default();
    let c = ctx_with(&["example.com"]);
    let refused = block_on(super::navigation::require_page(&mut s, &b, &c, "ls"));
    assert_eq!(
        refused.unwrap_err(),
        "ls: not in a tab. Enter one with `here`, `cd ~/tabs/<id>` or `open <url>`."
    );
    assert!(run_in(&mut s, &b, &c, "cd ~/tabs/101").ok);
    b.lose(101, "canceled_by_user");
    b.state.borrow_mut().cdp_calls.clear();
    let lost = block_on(super::navigation::require_page(&mut s, &b, &c, "ls")).unwrap_err();
    assert!(
        lost.starts_with("ls: the debugger connection to tab 101 was lost"),
        "{lost}"
    );
    let tab = block_on(super::navigation::require_page(&mut s, &b, &c, "ls")).unwrap();
    assert_eq!(tab.id, Some(101));
    let root = block_on(b.cdp(101, "Accessibility.getRootAXNode", serde_json::json!({})));
    assert_eq!(root.unwrap()["node"]["nodeId"], "1");
    assert_eq!(
        b.state.borrow().cdp_calls,
        vec![(101, "Accessibility.getRootAXNode".to_string())]
    );
}

#[test]
fn echo_prints_its_words_and_sleep_checks_its_argument() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    assert_eq!(
        ok(&mut s, &b, "echo hello   \"big world\""),
        "hello big world"
    );
    assert_eq!(ok(&mut s, &b, "echo"), "");
    assert_eq!(ok(&mut s, &b, "echo -- -n"), "-n");
    // The in-memory browser has no clock: a sleep of nothing returns at once (the real wait
    // is run in Chromium by the side-panel test).
    assert_eq!(ok(&mut s, &b, "sleep 0"), "slept 0 ms");
    assert_eq!(
        err(&mut s, &b, "sleep soon"),
        "sleep: expects seconds (e.g. 1.5), got 'soon'"
    );
    assert_eq!(err(&mut s, &b, "sleep"), "sleep: usage: sleep <seconds>");
}

#[test]
fn for_runs_its_template_per_line_and_records_only_itself() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    let out = ok(&mut s, &b, "for env : echo got {}");
    assert_eq!(
        out,
        "$ echo got PS1=dom@shell:$PWD$\r\ngot PS1=dom@shell:$PWD$\r\n$ echo got SHELL=/bin/domshell\r\ngot SHELL=/bin/domshell\r\n$ echo got TERM=xterm-256color\r\ngot TERM=xterm-256color"
    );
    let history = ok(&mut s, &b, "history");
    assert!(history.contains("for env : echo got {}"), "{history}");
    assert!(!history.contains("  echo got"), "{history}");
    // One failing run does not stop the others; the reply says how many failed.
    let failed = err(&mut s, &b, "for env : frobnicate {}");
    assert!(
        failed.starts_with("for: 3 of 3 run(s) failed\r\n$ frobnicate PS1="),
        "{failed}"
    );
    let empty = ok(&mut s, &b, "for clear : echo {}");
    assert_eq!(empty, "for: the source printed nothing: no item to run");
}

#[test]
fn each_visits_the_tabs_it_may_see_and_comes_back() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    let out = ok(&mut s, &b, "each pwd");
    let visited = out.matches("=== tab ").count();
    assert!(visited >= 2, "{out}");
    assert!(out.contains("~/tabs/"), "{out}");
    assert_eq!(s.cwd, Cwd::Root, "each does not move the session");
    let one = ok(&mut s, &b, "each --limit 1 pwd");
    assert_eq!(one.matches("=== tab ").count(), 1, "{one}");
    assert!(one.contains("more tab(s) not visited: --limit 1"), "{one}");
    assert_eq!(
        ok(&mut s, &b, "each --pattern no-such-tab pwd"),
        "each: no tab matches (tabs you may not read are left out)"
    );
}

#[test]
fn watch_reruns_and_loops_nest_no_deeper_than_the_grammar_allows() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    assert_eq!(ok(&mut s, &b, "watch --times 1 pwd"), "--- run 1 ---\r\n~");
    // A source may be a loop itself (the template is what follows the last ` : `).
    let nested = ok(&mut s, &b, "for for echo a : echo b{} : echo c{}");
    assert!(nested.ends_with("$ echo cba\r\ncba"), "{nested}");
}

#[test]
fn loops_report_each_item_of_the_outermost_loop() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    let reports = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = reports.clone();
    let c = ctx().with_progress(super::ProgressHook::new(move |done, total, message| {
        sink.borrow_mut().push((done, total, message.to_string()));
    }));
    ok_in(&mut s, &b, &c, "for env : echo {}");
    assert_eq!(
        reports
            .borrow()
            .iter()
            .map(|r| r.2.as_str())
            .collect::<Vec<_>>(),
        ["for: item 1 of 3", "for: item 2 of 3", "for: item 3 of 3"]
    );
    assert_eq!(reports.borrow()[2].0, 2);
    assert_eq!(reports.borrow()[2].1, Some(3));
    reports.borrow_mut().clear();
    ok_in(&mut s, &b, &c, "watch --times 1 pwd");
    assert_eq!(reports.borrow()[0].2, "watch: run 1 of 1");
    reports.borrow_mut().clear();
    ok_in(&mut s, &b, &c, "each --limit 2 pwd");
    let each: Vec<String> = reports.borrow().iter().map(|r| r.2.clone()).collect();
    assert_eq!(each.len(), 2, "{each:?}");
    assert_eq!(each[1], "each: tab 2 of 2");
    // An inner loop's items are not reported: only the outer count moves.
    reports.borrow_mut().clear();
    ok_in(&mut s, &b, &c, "for echo a : for env : echo {}");
    assert_eq!(
        reports
            .borrow()
            .iter()
            .map(|r| r.2.as_str())
            .collect::<Vec<_>>(),
        ["for: item 1 of 1"]
    );
    // A source that fails leaves the depth as it was: the next loop reports again.
    reports.borrow_mut().clear();
    err_in(&mut s, &b, &c, "for frobnicate : echo {}");
    ok_in(&mut s, &b, &c, "for echo x : echo {}");
    assert_eq!(reports.borrow().len(), 1, "{:?}", reports.borrow());
}

fn ok_in(s: &mut Session, b: &FakeBrowser, c: &Context, line: &str) -> String {
    let reply = run_in(s, b, c, line);
    assert!(reply.ok, "`{line}` failed: {}", reply.output);
    reply.output
}

fn err_in(s: &mut Session, b: &FakeBrowser, c: &Context, line: &str) -> String {
    let reply = run_in(s, b, c, line);
    assert!(!reply.ok, "`{line}` should fail: {}", reply.output);
    reply.output
}

#[test]
fn bookmarks_take_cd_to_their_path() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    // One context: the book of bookmarks and scripts lives as long as the worker.
    let c = ctx();
    ok_in(&mut s, &b, &c, "cd ~/tabs");
    assert_eq!(
        ok_in(&mut s, &b, &c, "bookmark t"),
        "✓ Bookmark @t → ~/tabs"
    );
    ok_in(&mut s, &b, &c, "cd ~");
    ok_in(&mut s, &b, &c, "cd @t");
    assert_eq!(ok_in(&mut s, &b, &c, "pwd"), "~/tabs");
    assert!(ok_in(&mut s, &b, &c, "bookmark").contains("@t  ~/tabs"));
    ok_in(&mut s, &b, &c, "bookmark -d t");
    assert_eq!(
        err_in(&mut s, &b, &c, "cd @t"),
        "cd: no bookmark named @t (`bookmark` lists them)"
    );
}

#[test]
fn scripts_run_their_commands_with_arguments_and_stop_at_a_failure() {
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    // One context: the book of bookmarks and scripts lives as long as the worker.
    let c = ctx();
    assert_eq!(
        ok_in(&mut s, &b, &c, "script save greet echo hi $1 of $# ; pwd"),
        "✓ Script greet saved (2 command(s))"
    );
    assert_eq!(
        ok_in(&mut s, &b, &c, "script run greet bob"),
        "$ echo hi bob of 1\r\nhi bob of 1\r\n$ pwd\r\n~"
    );
    // `!N` runs it again.
    let history = ok_in(&mut s, &b, &c, "history");
    let n = history
        .lines()
        .find(|l| l.contains("script run greet bob"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{history}"))
        .to_string();
    assert!(ok_in(&mut s, &b, &c, &format!("!{n}")).contains("hi bob of 1"));
    ok_in(&mut s, &b, &c, "script save broken frobnicate ; echo never");
    let failed = err_in(&mut s, &b, &c, "script run broken");
    assert!(
        failed.contains("[stopped: 1 later command(s) not run]"),
        "{failed}"
    );
    assert!(!failed.contains("$ echo never"), "{failed}");
    assert!(ok_in(&mut s, &b, &c, "script list").starts_with("Scripts (2):"));
    assert_eq!(
        ok_in(&mut s, &b, &c, "script show greet"),
        "echo hi $1 of $#\r\npwd"
    );
    ok_in(&mut s, &b, &c, "script delete greet");
    assert!(err_in(&mut s, &b, &c, "script run greet").contains("no script named greet"));
}

#[test]
fn a_failure_carries_its_commands_name_once() {
    use super::named;
    assert_eq!(named("cat", "no such entry".into()), "cat: no such entry");
    assert_eq!(
        named("cat", "cat: no such entry".into()),
        "cat: no such entry"
    );
    assert_eq!(
        named("debug", "debug node: which entry?".into()),
        "debug node: which entry?"
    );
    assert_eq!(named("cd", "cdx: other".into()), "cd: cdx: other");
    // Through dispatch: a browser error passed on plainly is named there.
    let b = FakeBrowser::standard();
    let mut s = Session::default();
    assert!(err(&mut s, &b, "debug").starts_with("debug: which part? usage: debug stats"));
}
