//! JavaScript dialogs end to end: headless Chromium runs the built extension, the fixture
//! page `tests/fixtures/pages/dialogs.html` is served on 127.0.0.1, and commands go through
//! the real server.
//!
//! Covered: a `click` whose handler calls `alert` returns promptly and reports the alert; a
//! page command while the alert is open answers within a second, without running; `dialog`
//! shows it and `dialog accept` lets the page's code go on (the text it writes afterwards is
//! read back); `confirm` accepted and dismissed, `prompt` answered with text and dismissed,
//! each proved by what the page wrote; a `beforeunload` handler reported on `navigate`,
//! `dialog dismiss` keeping the page and `dialog accept` leaving it; the same on `close`,
//! where accepting closes the tab; an `alert` in an inline script, which holds the page's
//! load, reported by `open` at once and, accepted, letting the page load.

use std::time::Duration;

use domshell_tests::PageRig;

/// How long a command that meets a dialog may take, at most: it must not wait on the paused
/// page (the glue's own call timeout is 10 s, a load wait 15 s).
const PROMPT_REPLY: Duration = Duration::from_secs(3);
/// How long a command refused because a dialog is open may take.
const REFUSAL_REPLY: Duration = Duration::from_secs(1);

/// The shared page rig with what these tests ask of a page that opens dialogs.
struct Rig {
    page: PageRig,
    base: String,
}

impl Rig {
    async fn start() -> Rig {
        let page = PageRig::start().await;
        let base = page.base.clone();
        Rig { page, base }
    }

    async fn run(&self, command: &str) -> (bool, String, Duration) {
        self.page.run_timed(command, 20_000).await
    }

    async fn ok(&self, command: &str) -> String {
        self.page.ok(command).await
    }

    /// A command that meets a dialog: it answers promptly, successfully or not as `ok` says.
    async fn prompt(&self, command: &str, ok: bool) -> String {
        let (was_ok, out, took) = self.run(command).await;
        assert_eq!(was_ok, ok, "`{command}`: {out}");
        assert!(
            took < PROMPT_REPLY,
            "`{command}` took {took:?}, waiting on a paused page: {out}"
        );
        out
    }

    /// The page's status line (`status N: …`), as `text` reads it.
    async fn status(&self) -> String {
        let text = self.ok("text").await;
        text.lines()
            .find(|l| l.starts_with("status "))
            .unwrap_or_else(|| panic!("no status line in {text:?}"))
            .to_string()
    }

    /// Clicks a button of the fixture page whose handler opens a dialog, and checks the
    /// reply names it.
    async fn click_to_open(&self, button: &str, shown: &str) {
        let out = self.prompt(&format!("click {button}"), true).await;
        assert!(out.starts_with("✓ Clicked: "), "{out}");
        assert!(
            out.contains(
                "⚠ The page opened a JavaScript dialog and is paused until it is answered — "
            ) && out.contains(shown),
            "{out}"
        );
    }
}

#[tokio::test]
async fn alert_confirm_and_prompt_are_reported_and_answered() {
    let rig = Rig::start().await;
    rig.ok(&format!("open {}/dialogs.html", rig.base)).await;
    assert_eq!(rig.status().await, "status idle");

    rig.click_to_open("alert_me_btn", "alert: \"hi\"").await;
    // While the alert is open, page commands answer at once and say how to answer it.
    for command in ["text", "ls", "click confirm_me_btn"] {
        let (ok, out, took) = rig.run(command).await;
        assert!(!ok, "{out}");
        assert!(
            took < REFUSAL_REPLY,
            "`{command}` took {took:?} with an alert open"
        );
        assert!(
            out.contains("has a JavaScript dialog open, which pauses the page — alert: \"hi\"")
                && out.contains("`dialog accept`"),
            "{out}"
        );
    }
    let shown = rig.ok("dialog").await;
    assert!(shown.contains("alert: \"hi\""), "{shown}");
    assert_eq!(
        rig.ok("dialog accept").await,
        "✓ Accepted the alert: \"hi\""
    );
    // The handler ran on after `alert` returned.
    assert_eq!(rig.status().await, "status 1: after alert");
    assert_eq!(
        rig.ok("dialog").await.lines().next(),
        Some(format!("No dialog is open on tab {}.", tab_of(&rig.ok("pwd").await)).as_str())
    );

    rig.click_to_open("confirm_me_btn", "confirm: \"Delete it?\"")
        .await;
    rig.ok("dialog accept").await;
    assert_eq!(rig.status().await, "status 2: confirm yes");
    rig.click_to_open("confirm_me_btn", "confirm: \"Delete it?\"")
        .await;
    rig.ok("dialog dismiss").await;
    assert_eq!(rig.status().await, "status 3: confirm no");

    rig.click_to_open(
        "prompt_me_btn",
        "prompt: \"Your name?\" (default text \"anon\")",
    )
    .await;
    rig.ok("dialog accept \"some text\"").await;
    assert_eq!(rig.status().await, "status 4: prompt \"some text\"");
    rig.click_to_open("prompt_me_btn", "prompt: \"Your name?\"")
        .await;
    rig.ok("dialog accept").await;
    assert_eq!(rig.status().await, "status 5: prompt \"anon\"");
    rig.click_to_open("prompt_me_btn", "prompt: \"Your name?\"")
        .await;
    rig.ok("dialog dismiss").await;
    assert_eq!(rig.status().await, "status 6: prompt null");
}

#[tokio::test]
async fn an_alert_while_the_page_loads_is_reported_by_open_and_answered() {
    let rig = Rig::start().await;
    let out = rig
        .prompt(&format!("open {}/alert_on_load.html", rig.base), true)
        .await;
    assert!(out.starts_with("✓ Opened new tab"), "{out}");
    assert!(
        out.contains("(still loading: a JavaScript dialog the page opened holds it)")
            && out.contains("alert: \"hello while loading\"")
            && out.contains("`dialog accept`"),
        "{out}"
    );
    assert_eq!(
        rig.ok("dialog accept").await,
        "✓ Accepted the alert: \"hello while loading\""
    );
    // The parser goes on once the alert is answered, and the page finishes loading.
    assert_eq!(rig.status().await, "status 1: loaded after the alert");
    // The blank page the tab was made with (so the debugger listened before the page ran)
    // is not a step back in its history.
    assert_eq!(rig.ok("back").await, "No previous page in history.");
}

#[tokio::test]
async fn beforeunload_on_navigate_is_reported_and_answered() {
    let rig = Rig::start().await;
    let page = format!("{}/dialogs.html", rig.base);
    let elsewhere = format!("{}/welcome.html?user=ada", rig.base);
    rig.ok(&format!("open {page}")).await;
    // A trusted click: Chromium asks before unloading only a page the user interacted with.
    rig.ok("click guard_leaving_btn").await;
    assert_eq!(rig.status().await, "status 1: guarded");

    let out = rig.prompt(&format!("navigate {elsewhere}"), false).await;
    assert!(
        out.starts_with("navigate: the page asks to confirm leaving it (beforeunload dialog)"),
        "{out}"
    );
    let shown = rig.ok("dialog").await;
    assert!(shown.contains("beforeunload"), "{shown}");
    let stayed = rig.prompt("dialog dismiss", true).await;
    assert!(stayed.ends_with(": staying on the page"), "{stayed}");
    assert_eq!(rig.status().await, "status 1: guarded");
    let tabs = rig.ok("tabs").await;
    assert!(tabs.contains("dialogs.html"), "{tabs}");

    rig.ok("click guard_leaving_btn").await;
    let out = rig.prompt(&format!("navigate {elsewhere}"), false).await;
    assert!(out.contains("beforeunload"), "{out}");
    let left = rig.ok("dialog accept").await;
    assert!(
        left.starts_with("✓ Accepted beforeunload: left the page") && left.contains("welcome.html"),
        "{left}"
    );
    let text = rig.ok("text").await;
    assert!(text.contains("Welcome, ada"), "{text}");
}

#[tokio::test]
async fn beforeunload_on_close_is_reported_and_answered() {
    let rig = Rig::start().await;
    let opened = rig.ok(&format!("open {}/dialogs.html", rig.base)).await;
    let tab = domshell_tests::page_rig::tab_id_from(&opened);
    rig.ok("click guard_leaving_btn").await;
    assert_eq!(rig.status().await, "status 1: guarded");

    let out = rig.prompt("close", false).await;
    assert!(
        out.starts_with("close: the page asks to confirm leaving it (beforeunload dialog)"),
        "{out}"
    );
    let stayed = rig.prompt("dialog dismiss", true).await;
    assert!(stayed.ends_with(": staying on the page"), "{stayed}");
    assert_eq!(rig.status().await, "status 1: guarded");

    rig.ok("click guard_leaving_btn").await;
    rig.prompt(&format!("close {tab}"), false).await;
    let closed = rig.prompt("dialog accept", true).await;
    assert_eq!(
        closed,
        "✓ Accepted beforeunload: the tab is closed; you are at ~ now"
    );
    let tabs = rig.ok("tabs").await;
    assert!(!tabs.contains("dialogs.html"), "{tabs}");
    assert_eq!(rig.ok("pwd").await.trim(), "~");
}

/// The tab id in a `pwd` like `~/tabs/123` or `~/tabs/123/main`.
fn tab_of(pwd: &str) -> i64 {
    pwd.trim()
        .strip_prefix("~/tabs/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not in a tab: {pwd:?}"))
}
