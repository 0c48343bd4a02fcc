//! JavaScript dialogs against the in-memory browser: a command while a dialog is open
//! answers without touching the page, a dialog opened by a command is reported with it, and
//! `dialog` shows and answers it (`beforeunload` on navigation included).

use serde_json::json;

use super::browser::Dialog;
use super::fake::{block_on, FakeBrowser};
use super::page::PageCache;
use super::{execute, Context, Reply, Session};

const FORM: &str = include_str!("../../tests/fixtures/ax/form.json");

/// Tab 101 (example.com) showing the recorded form page, entered; every element's centre
/// is visible, so `click` uses trusted mouse events.
struct Shell {
    b: FakeBrowser,
    s: Session,
    c: Context,
}

impl Shell {
    fn in_form() -> Shell {
        let b = FakeBrowser::standard();
        let snapshot: serde_json::Value = serde_json::from_str(FORM).unwrap();
        {
            let mut s = b.state.borrow_mut();
            for (method, reply) in [
                (
                    "Page.getFrameTree",
                    json!({"frameTree": {"frame": {"id": snapshot["main"]["frameId"], "url": "https://example.com/"}}}),
                ),
                (
                    "Accessibility.getFullAXTree",
                    json!({"nodes": snapshot["main"]["nodes"]}),
                ),
                ("DOM.resolveNode", json!({"object": {"objectId": "obj-1"}})),
                (
                    "Runtime.callFunctionOn",
                    json!({"result": {"value": {"x": 40.0, "y": 30.0, "w": 80.0, "h": 20.0, "hit": true}}}),
                ),
                (
                    "Runtime.evaluate",
                    json!({"result": {"value": {"doc": "doc-1", "n": 0}}}),
                ),
                ("Input.dispatchMouseEvent", json!({})),
            ] {
                s.cdp_replies.insert(method.into(), reply);
            }
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

    fn err(&mut self, line: &str) -> String {
        let reply = self.run(line);
        assert!(!reply.ok, "`{line}` should fail: {}", reply.output);
        reply.output
    }

    /// The page's next mouse event runs a handler that opens this dialog.
    fn click_opens(&self, kind: &str, message: &str, default_prompt: &str) {
        self.b.state.borrow_mut().dialog_on.insert(
            "Input.dispatchMouseEvent".into(),
            Dialog {
                kind: kind.into(),
                message: message.into(),
                default_prompt: default_prompt.into(),
                url: "https://example.com/".into(),
            },
        );
    }

    fn cdp_call_count(&self) -> usize {
        self.b.state.borrow().cdp_calls.len()
    }

    fn answers(&self) -> Vec<(i64, bool, Option<String>)> {
        self.b.state.borrow().dialog_answers.clone()
    }

    fn tree_reads(&self) -> usize {
        self.b
            .state
            .borrow()
            .cdp_calls
            .iter()
            .filter(|(_, m)| m == "Accessibility.getFullAXTree")
            .count()
    }
}

#[test]
fn a_click_whose_handler_alerts_returns_and_reports_the_alert() {
    let mut sh = Shell::in_form();
    sh.click_opens("alert", "hi", "");
    let out = sh.ok("click create_account_btn");
    assert!(
        out.starts_with("✓ Clicked: create_account_btn (button)"),
        "{out}"
    );
    assert!(
        out.contains("⚠ The page opened a JavaScript dialog and is paused until it is answered — alert: \"hi\""),
        "{out}"
    );
    assert!(
        out.contains("`dialog accept` (or `dialog dismiss`) closes it"),
        "{out}"
    );
    // A fallback DOM click would click a second time.
    assert_eq!(
        sh.b.state
            .borrow()
            .cdp_params
            .iter()
            .filter(|(_, m, p)| m == "Runtime.callFunctionOn"
                && p["functionDeclaration"]
                    .as_str()
                    .is_some_and(|f| f.contains("this.click()")))
            .count(),
        0,
        "the trusted click happened: no DOM click after it"
    );
}

#[test]
fn page_commands_while_a_dialog_is_open_answer_at_once_without_touching_the_page() {
    let mut sh = Shell::in_form();
    sh.click_opens("alert", "hi", "");
    sh.ok("click create_account_btn");
    let calls = sh.cdp_call_count();
    for line in [
        "text",
        "ls",
        "cd main",
        "find x",
        "click create_account_btn",
        "type hello",
        "key Enter",
        "scroll down",
        "wait x --timeout 1",
        "screenshot",
        "navigate https://example.com/next",
        "back",
        "refresh",
    ] {
        let name = line.split_whitespace().next().unwrap();
        let e = sh.err(line);
        assert!(
            e.starts_with(&format!(
                "{name}: not run: tab 101 has a JavaScript dialog open, which pauses the page — alert: \"hi\""
            )),
            "{line}: {e}"
        );
        assert!(
            e.ends_with("Answer it first: `dialog accept` (or `dialog dismiss`) closes it."),
            "{e}"
        );
    }
    assert_eq!(
        sh.cdp_call_count(),
        calls,
        "nothing reached the paused page"
    );
    // What does not touch the page runs as usual, without a notice about a known dialog.
    for line in ["pwd", "tabs", "help", "click --help", "history -n 1"] {
        let out = sh.ok(line);
        assert!(!out.contains("⚠"), "{line}: {out}");
    }
    let shown = sh.ok("dialog");
    assert_eq!(
        shown,
        "Dialog open on tab 101 — alert: \"hi\"\r\n  `dialog accept` (or `dialog dismiss`) closes it."
    );
}

#[test]
fn dialog_accept_closes_an_alert_and_the_next_read_is_fresh() {
    let mut sh = Shell::in_form();
    sh.click_opens("alert", "hi", "");
    sh.ok("click create_account_btn");
    let reads = sh.tree_reads();
    assert_eq!(sh.ok("dialog accept"), "✓ Accepted the alert: \"hi\"");
    assert_eq!(sh.answers(), vec![(101, true, None)]);
    assert_eq!(sh.ok("dialog"), "No dialog is open on tab 101.");
    sh.ok("ls");
    assert_eq!(
        sh.tree_reads(),
        reads + 1,
        "the page ran on: its tree is read again"
    );
    let e = sh.err("dialog dismiss");
    assert_eq!(
        e,
        "dialog: no dialog is open on tab 101; nothing to dismiss"
    );
}

#[test]
fn confirm_is_accepted_or_dismissed() {
    let mut sh = Shell::in_form();
    sh.click_opens("confirm", "Delete it?", "");
    let out = sh.ok("click create_account_btn");
    assert!(out.contains("confirm: \"Delete it?\""), "{out}");
    assert!(
        out.contains("`dialog accept` answers OK, `dialog dismiss` answers Cancel"),
        "{out}"
    );
    let e = sh.err("dialog accept yes");
    assert!(
        e.starts_with(
            "dialog: only `dialog accept` on a prompt takes text; this is a confirm dialog"
        ),
        "{e}"
    );
    assert_eq!(
        sh.ok("dialog dismiss"),
        "✓ Dismissed the confirm: \"Delete it?\""
    );
    sh.click_opens("confirm", "Delete it?", "");
    sh.ok("click create_account_btn");
    assert_eq!(
        sh.ok("DIALOG ACCEPT"),
        "✓ Accepted the confirm: \"Delete it?\""
    );
    assert_eq!(sh.answers(), vec![(101, false, None), (101, true, None)]);
}

#[test]
fn prompt_gets_the_given_text_or_its_default() {
    let mut sh = Shell::in_form();
    sh.click_opens("prompt", "Your name?", "anon");
    let out = sh.ok("click create_account_btn");
    assert!(
        out.contains("prompt: \"Your name?\" (default text \"anon\")"),
        "{out}"
    );
    assert_eq!(
        sh.ok("dialog accept some  text"),
        "✓ Accepted the prompt: \"Your name?\" (default text \"anon\") with \"some text\""
    );
    sh.click_opens("prompt", "Your name?", "anon");
    sh.ok("click create_account_btn");
    sh.ok("dialog accept \"two  spaces\"");
    sh.click_opens("prompt", "Your name?", "anon");
    sh.ok("click create_account_btn");
    sh.ok("dialog accept");
    sh.click_opens("prompt", "Your name?", "anon");
    sh.ok("click create_account_btn");
    sh.err("dialog dismiss whatever");
    sh.ok("dialog dismiss");
    assert_eq!(
        sh.answers(),
        vec![
            (101, true, Some("some text".into())),
            (101, true, Some("two  spaces".into())),
            (101, true, Some("anon".into())),
            (101, false, None),
        ]
    );
}

#[test]
fn beforeunload_on_navigate_is_reported_and_answered() {
    let mut sh = Shell::in_form();
    sh.b.state.borrow_mut().beforeunload.insert(101);
    let e = sh.err("navigate https://example.com/next");
    assert!(
        e.starts_with("navigate: the page asks to confirm leaving it (beforeunload dialog); the tab stays where it was until you answer: `dialog accept` leaves the page, `dialog dismiss` stays on it."),
        "{e}"
    );
    assert_eq!(sh.b.url_of(101).as_deref(), Some("https://example.com/"));
    assert_eq!(
        sh.ok("dialog"),
        "Dialog open on tab 101 — beforeunload: the page asks to confirm leaving it\r\n  `dialog accept` leaves the page, `dialog dismiss` stays on it."
    );
    assert_eq!(
        sh.ok("dialog dismiss"),
        "✓ Dismissed the beforeunload: the page asks to confirm leaving it: staying on the page"
    );
    assert_eq!(sh.b.url_of(101).as_deref(), Some("https://example.com/"));
    sh.err("navigate https://example.com/next");
    let out = sh.ok("dialog accept");
    assert!(
        out.starts_with("✓ Accepted beforeunload: left the page\r\n"),
        "{out}"
    );
    assert!(out.contains("URL: https://example.com/next"), "{out}");
    assert_eq!(
        sh.b.url_of(101).as_deref(),
        Some("https://example.com/next")
    );
    assert_eq!(sh.s.cwd.display(), "~/tabs/101");
}

#[test]
fn a_dialog_that_interrupts_a_read_is_reported_with_the_error() {
    let mut sh = Shell::in_form();
    sh.b.state.borrow_mut().dialog_on.insert(
        "Runtime.evaluate".into(),
        Dialog {
            kind: "alert".into(),
            message: "timer fired".into(),
            ..Default::default()
        },
    );
    let e = sh.err("text");
    assert!(e.starts_with("text: "), "{e}");
    assert!(
        e.contains("⚠ The page opened a JavaScript dialog and is paused until it is answered — alert: \"timer fired\""),
        "{e}"
    );
}

#[test]
fn dialog_outside_a_tab_and_with_an_unknown_action() {
    let mut sh = Shell::in_form();
    assert_eq!(
        sh.err("dialog maybe"),
        "dialog: unknown action 'maybe'; usage: dialog [accept [text] | dismiss]"
    );
    sh.ok("cd ~");
    let e = sh.err("dialog");
    assert!(e.starts_with("dialog: not in a tab"), "{e}");
}

#[test]
fn beforeunload_on_close_is_reported_and_answered() {
    let mut sh = Shell::in_form();
    sh.b.state.borrow_mut().beforeunload.insert(101);
    let e = sh.err("close");
    assert_eq!(
        e,
        "close: the page asks to confirm leaving it (beforeunload dialog); the tab stays open until you answer: `dialog accept` closes it, `dialog dismiss` keeps it."
    );
    assert!(sh.b.url_of(101).is_some(), "the tab stays open");
    assert_eq!(sh.s.cwd.display(), "~/tabs/101");
    let stayed = sh.ok("dialog dismiss");
    assert!(stayed.ends_with(": staying on the page"), "{stayed}");
    assert!(sh.b.url_of(101).is_some());

    sh.err("close");
    assert_eq!(
        sh.ok("dialog accept"),
        "✓ Accepted beforeunload: the tab is closed; you are at ~ now"
    );
    assert_eq!(sh.b.url_of(101), None);
    assert_eq!(sh.s.cwd.display(), "~");
}

#[test]
fn close_without_a_guard_closes_through_the_page_and_an_open_dialog_stops_it() {
    let mut sh = Shell::in_form();
    sh.b.state.borrow_mut().dialogs.insert(
        101,
        Dialog {
            kind: "alert".into(),
            message: "hold on".into(),
            ..Default::default()
        },
    );
    let e = sh.err("close");
    assert!(
        e.starts_with("close: not run: tab 101 has a JavaScript dialog open — alert: \"hold on\""),
        "{e}"
    );
    sh.ok("dialog accept");
    assert!(sh.ok("close").starts_with("✓ Closed: "));
    assert_eq!(sh.b.url_of(101), None);
    let calls = sh.b.state.borrow().cdp_calls.clone();
    assert!(
        calls.contains(&(101, "Page.close".to_string())),
        "{calls:?}"
    );
}
