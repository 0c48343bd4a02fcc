//! Page commands end to end: headless Chromium runs the built extension, fixture pages from
//! `tests/fixtures/pages/` are served on 127.0.0.1, and commands go through the real server.
//!
//! Covered: entering a tab (AX Nodes/Iframes), ls/cd/pwd/cat/text/read/tree/find/grep inside
//! a page, extract_links, extract_table as markdown and csv, a login form filled with
//! `submit` on a framework-controlled input and the result page read back, a link followed
//! with `click`, script-inserted content seen by `ls`/`find` without `refresh`, `wait` for
//! late content, an inner scrolling list advanced with `scroll`, `key Enter` on a background
//! tab, screenshot, whoami, a tab outside the domain allowlist refused for reading, and a
//! page on 127.0.0.1 embedding a frame from localhost on another port (out of process) whose
//! content is listed under its iframe directory; `select` on a drop-down, read back, and a
//! wrong value refused with the options listed; after every kind of change (append, remove,
//! text, visibility, label, aria-labelledby, checkbox, typing, move, innerHTML), a partial
//! re-read equal to a whole read, and a whole read after too many changes or after acting
//! inside a frame; DOMShell's habits: `ls -la`, `scroll --window` from inside a scrolling
//! container, a page's keydown shortcut fired by `key k`, and `key --activate` on a
//! background tab giving the focus back to the tab in front before.

use std::time::Duration;

use domshell_tests::page_rig::first_path;
use domshell_tests::page_rig::tab_id_from;
use domshell_tests::{eventually, PageRig};
use serde_json::json;

type Rig = PageRig;

/// The path of the first `find` result line (`[x] main/form/x_btn (button) …`).

#[tokio::test]
async fn reading_a_page_and_its_table() {
    let rig = Rig::start().await;
    let opened = rig.ok(&format!("open {}/table.html", rig.base)).await;
    assert!(opened.contains("AX Nodes: "), "{opened}");
    // A page without frames has no `Iframes:` line.
    assert!(!opened.contains("Iframes"), "{opened}");
    let id = tab_id_from(&opened);
    let entered = rig.ok(&format!("cd ~/tabs/{id}")).await;
    assert!(
        entered.starts_with(&format!("✓ Entered tab {id}")),
        "{entered}"
    );
    assert!(entered.contains("AX Nodes: "), "{entered}");

    let root = rig.ok("ls").await;
    assert!(root.lines().any(|l| l.ends_with('/')), "{root}");
    let table = first_path(&rig.ok("find --type table").await);
    let markdown = rig.ok(&format!("extract_table {table}")).await;
    assert!(
        markdown.starts_with("Model | Org | Context | Action\r\n--- | --- | --- | ---\r\nAlpha | North Lab | 8k | Details"),
        "{markdown}"
    );
    let csv = rig
        .ok(&format!("extract_table {table} --format csv -n 1"))
        .await;
    assert_eq!(
        csv,
        "Model,Org,Context,Action\r\nAlpha,North Lab,8k,Details"
    );
    // cd is all-or-nothing and names what exists.
    let dir = table.split('/').next().unwrap().to_string();
    rig.ok(&format!("cd {dir}")).await;
    assert_eq!(rig.ok("pwd").await, format!("~/tabs/{id}/{dir}"));
    let missing = rig.err("cd nowhere").await;
    assert!(
        missing.starts_with("cd: nowhere: No such directory"),
        "{missing}"
    );
    assert_eq!(rig.ok("pwd").await, format!("~/tabs/{id}/{dir}"));
    let long = rig.ok("ls -l").await;
    assert!(long.contains("[d] table"), "{long}");
    let meta = rig.ok("ls -l --meta --text -n 1 --type table").await;
    assert!(
        meta.contains("<table>") && meta.contains("\"Language models Model Org"),
        "{meta}"
    );
    let content = rig.ok("find \"128k\" --content --type cell").await;
    assert!(content.contains("(cell)"), "{content}");
    let count = rig.ok("ls --count").await;
    assert!(count.contains(" total ("), "{count}");
    let tree = rig.ok("tree 2").await;
    assert!(tree.contains("├── ") || tree.contains("└── "), "{tree}");
    let grep = rig.ok("grep -r alpha").await;
    assert!(grep.to_lowercase().contains("alpha"), "{grep}");
    let read = rig.ok("read -d 1").await;
    assert!(read.lines().count() > 1, "{read}");
    let details = first_path(&rig.ok("find details --type btn").await);
    let cat = rig.ok(&format!("cat {details}")).await;
    assert!(cat.contains("Role:") && cat.contains("<button>"), "{cat}");
    let text = rig.ok("text").await;
    assert!(
        text.contains("Alpha") && text.contains("North Lab"),
        "{text}"
    );
    rig.ok(&format!("cd ~/tabs/{id}")).await;
    let json: serde_json::Value =
        serde_json::from_str(&rig.ok(&format!("ls ~/tabs/{id}/{dir} --json")).await).unwrap();
    assert!(json["total"].as_u64().unwrap() >= 1, "{json}");

    // A tab outside the allowlist is listed but cannot be read.
    let mut browser = rig.chromium.browser_cdp().await.unwrap();
    browser
        .send(
            "Target.createTarget",
            json!({ "url": format!("{}/table.html", rig.other) }),
        )
        .await
        .unwrap();
    let tabs = eventually(
        Duration::from_secs(5),
        Duration::from_millis(100),
        || async {
            let out = rig.ok("tabs").await;
            if out.contains("localhost") {
                Ok(out)
            } else {
                Err(out)
            }
        },
    )
    .await
    .unwrap();
    let outside = tabs
        .lines()
        .find(|l| l.contains("localhost"))
        .and_then(|l| l.trim().trim_start_matches('*').split_whitespace().next())
        .unwrap()
        .to_string();
    let refused = rig.err(&format!("cd ~/tabs/{outside}")).await;
    assert!(refused.contains("allowlist"), "{refused}");
}

#[tokio::test]
async fn interacting_with_forms_links_scripts_and_scrolling() {
    let rig = Rig::start().await;

    // A login form on a framework-controlled input, submitted, result page read back.
    rig.ok(&format!("open {}/login.html", rig.base)).await;
    let user = first_path(&rig.ok("find username --type input").await);
    let pass = first_path(&rig.ok("find password --type input").await);
    rig.ok(&format!("focus {pass}")).await;
    // The account shows the field's new value as the accessibility tree gives it (masked).
    assert_eq!(
        rig.ok("type s3cret").await,
        format!("✓ Typed 6 characters\r\n~ {pass}: value \"\" → \"••••••\"")
    );
    let submitted = rig.ok(&format!("submit {user} ada --submit sign_in")).await;
    assert!(
        submitted.starts_with("✓ Submitted: typed \"ada\""),
        "{submitted}"
    );
    let welcome = eventually(
        Duration::from_secs(5),
        Duration::from_millis(200),
        || async {
            let found = rig.ok("find welcome").await;
            // The heading's name says its label ("Welcome, ada"), so the line does not repeat it.
            if found.contains("welcome_ada_heading") {
                Ok(found)
            } else {
                Err(found)
            }
        },
    )
    .await
    .expect("the result page shows the submitted user");
    assert!(welcome.contains("(heading)"), "{welcome}");

    // Script-inserted content, a late arrival, hidden and script text, and a link.
    rig.ok(&format!("navigate {}/spa.html", rig.base)).await;
    let visible = rig.ok("text").await;
    assert!(visible.contains("First item"), "{visible}");
    assert!(!visible.contains("This text is hidden"), "{visible}");
    assert!(!visible.contains("never shown by text"), "{visible}");
    let links = rig.ok("extract_links").await;
    assert!(links.contains("[Go to welcome]("), "{links}");
    let with_links = rig.ok("text --links").await;
    assert!(
        with_links.contains(&format!(
            "[Go to welcome]({}/welcome.html?user=link)",
            rig.base
        )),
        "{with_links}"
    );
    assert!(with_links.contains("\r\nFirst item\r\n"), "{with_links}");
    let clicked = rig.ok("click load_more").await;
    assert!(clicked.starts_with("✓ Clicked: load_more"), "{clicked}");
    let found = rig.ok("find inserted").await;
    assert!(found.contains("inserted_item"), "{found}");
    let waited = rig.ok("wait late --timeout 5").await;
    assert!(waited.starts_with("✓ Found after "), "{waited}");
    // A DOM change nobody announced (another script, not a command) is noticed by ls.
    rig.ok("ls").await;
    let target = rig
        .chromium
        .targets()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.kind == "page" && t.url.ends_with("/spa.html"))
        .expect("the spa page target");
    let mut page = domshell_tests::CdpClient::connect(&target.ws_url)
        .await
        .unwrap();
    page.send(
        "Runtime.evaluate",
        json!({ "expression": "document.querySelector('main').insertAdjacentHTML('beforeend', '<button>Injected later</button>')" }),
    )
    .await
    .unwrap();
    drop(page);
    let noticed = rig.ok("ls").await;
    assert!(noticed.starts_with("(tree auto-refreshed, "), "{noticed}");
    let injected = rig.ok("find injected --type button").await;
    assert!(injected.contains("injected_later"), "{injected}");
    let followed = rig.ok("click go_to_welcome").await;
    assert!(
        followed.starts_with("✓ Clicked: go_to_welcome"),
        "{followed}"
    );
    let listed = rig.ok("ls -r").await;
    assert!(
        listed.contains("(page changed") || listed.contains("(tree auto-refreshed"),
        "{listed}"
    );
    let heading = rig.ok("find welcome --type heading").await;
    // Its name says its label ("Welcome, link"), so the line does not repeat it.
    assert!(heading.contains("welcome_link_heading"), "{heading}");

    // An inner scrolling list.
    rig.ok(&format!("navigate {}/scroll.html", rig.base)).await;
    let scrolled = rig.ok("scroll down 2").await;
    assert!(scrolled.contains("(inner container)"), "{scrolled}");
    assert!(!scrolled.contains("Position: 0/"), "{scrolled}");
    let back_up = rig.ok("scroll up").await;
    assert!(
        back_up.starts_with("✓ Scrolled up 1 viewport(s) (inner container)"),
        "{back_up}"
    );

    // key Enter on a background tab.
    let keys = tab_id_from(&rig.ok(&format!("open {}/keys.html", rig.base)).await);
    let query = first_path(&rig.ok("find query --type input").await);
    rig.ok(&format!("submit {query} hello --submit {query}"))
        .await;
    rig.ok(&format!("open {}/table.html", rig.base)).await;
    rig.ok(&format!("cd ~/tabs/{keys}")).await;
    rig.ok(&format!("focus {query}")).await;
    let pressed = rig.ok("key Enter").await;
    assert!(pressed.starts_with("✓ Pressed Enter"), "{pressed}");
    let status_dir = first_path(&rig.ok("find --type status").await);
    let status = rig.ok(&format!("text {status_dir}")).await;
    assert!(status.contains("Key: Enter"), "{status}");
    assert!(status.contains("searched hello"), "{status}");

    let shot = rig.ok("screenshot").await;
    assert!(
        shot.starts_with("__SCREENSHOT_BASE64__image/jpeg;") && shot.contains(";/9j/"),
        "{}",
        &shot[..40.min(shot.len())]
    );
    let mut browser = rig.chromium.browser_cdp().await.unwrap();
    browser
        .send(
            "Storage.setCookies",
            json!({ "cookies": [{ "name": "session_id", "value": "topsecret", "domain": "127.0.0.1", "path": "/", "expires": 4102444800i64 }] }),
        )
        .await
        .unwrap();
    let who = rig.ok("whoami").await;
    assert!(
        who.contains("Status: Authenticated\r\nVia: session_id"),
        "{who}"
    );
    // Chrome caps cookie lifetimes (400 days), so only the shape of the date is known.
    assert!(who.contains("Expires: 20") && who.contains(" UTC"), "{who}");
    assert!(
        !who.contains("topsecret"),
        "cookie values are never shown: {who}"
    );
}

#[tokio::test]
async fn an_out_of_process_frame_is_listed_under_its_iframe() {
    let rig = Rig::start().await;
    let opened = rig.ok(&format!("open {}/frame_cross.html", rig.base)).await;
    assert!(opened.contains("Iframes: 1"), "{opened}");
    // The frame may attach a moment after the page loads; the next read picks it up.
    let found = eventually(
        Duration::from_secs(5),
        Duration::from_millis(200),
        || async {
            let found = rig.ok("find subscribe --type button").await;
            if found.contains("subscribe") {
                Ok(found)
            } else {
                rig.ok("refresh").await;
                Err(found)
            }
        },
    )
    .await
    .expect("the out-of-process frame's button is found");
    let path = first_path(&found);
    let iframe = first_path(&rig.ok("find --type iframe").await);
    assert!(
        path.starts_with(&format!("{iframe}/")),
        "{path} under {iframe}"
    );
    rig.ok(&format!("cd {iframe}")).await;
    let listed = rig.ok("ls -r").await;
    assert!(listed.contains("partner_menu"), "{listed}");
    let links = rig.ok("extract_links").await;
    assert!(links.contains("[Offers]("), "{links}");
}

/// On a page of about 12,000 accessibility nodes: an unchanged page is not re-read, a DOM
/// change is. Prints what each step took (figures for the record, never asserted).
#[tokio::test]
async fn a_large_page_is_read_once_until_it_changes() {
    let rig = Rig::start_with(10_000).await;
    let timed = |command: &'static str| {
        let rig = &rig;
        async move {
            let started = std::time::Instant::now();
            let out = rig.ok(command).await;
            (out, started.elapsed())
        }
    };
    let opened = rig.ok(&format!("open {}/big.html", rig.base)).await;
    assert!(
        opened.contains(" read so far (the rest as it is visited)"),
        "entering reads the page by parts: {opened}"
    );
    let (first, first_took) = timed("find --type link -n 3").await;
    assert_eq!(first.lines().count(), 3, "{first}");
    // `find` read the page whole.
    let read = rig
        .chromium
        .evaluate_in_worker("globalThis.domshell && globalThis.domshell.lastTreeRead")
        .await
        .expect("the worker answers");
    let nodes = read["axNodes"].as_u64().unwrap_or_default();
    assert!(nodes > 10_000, "{read}");
    let (kept, kept_took) = timed("ls").await;
    assert!(
        !kept.contains("refreshed"),
        "an unchanged page is not re-read: {kept}"
    );
    // The click reads the page again to tell its effect (the button has no handler), and the
    // listing after it starts from that read.
    let (clicked, clicked_took) = timed("click add_1_btn").await;
    // On a page this large the account compares the first entries of the directory only, and
    // says so.
    assert!(
        clicked.ends_with("(nothing changed here)")
            || clicked.ends_with("(compared the first 2000 entries here)"),
        "{clicked}"
    );
    let (after, after_took) = timed("ls").await;
    assert!(!after.contains("refreshed"), "{after}");
    eprintln!(
        "figures ({nodes} AX nodes): find on the kept tree {first_took:?}, ls on the kept tree {kept_took:?}, click with its account {clicked_took:?}, ls after the click {after_took:?}"
    );
}

/// `select` on a real drop-down: the page's own value changes (read back from the DOM and
/// through `cat`), and a value that matches no option is refused with the options listed.
#[tokio::test]
async fn select_changes_a_drop_down_and_lists_the_options_of_a_wrong_value() {
    let rig = Rig::start().await;
    rig.ok(&format!("open {}/form.html", rig.base)).await;
    let country = first_path(&rig.ok("find --type select").await);
    let chosen = rig.ok(&format!("select {country} japan")).await;
    assert!(
        chosen.starts_with("✓ Selected: Japan (value=Japan)\r\n"),
        "{chosen}"
    );
    // The reply's account names the drop-down and its new value.
    assert!(
        chosen.ends_with(&format!("~ {country}: value \"Germany\" → \"Japan\"")),
        "{chosen}"
    );

    let target = rig
        .chromium
        .targets()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.kind == "page" && t.url.ends_with("/form.html"))
        .expect("the form page target");
    let mut page = domshell_tests::CdpClient::connect(&target.ws_url)
        .await
        .unwrap();
    let read_back = page
        .send(
            "Runtime.evaluate",
            json!({ "expression": "document.getElementById('country').value", "returnByValue": true }),
        )
        .await
        .unwrap();
    assert_eq!(read_back["result"]["value"], "Japan", "{read_back}");
    drop(page);
    let shown = rig.ok(&format!("cat {country}")).await;
    assert!(shown.contains("Japan"), "{shown}");

    let refused = rig.err(&format!("select {country} Peru")).await;
    assert!(
        refused.starts_with("select: no option 'Peru' in ")
            && refused.ends_with(
                "Options: France (value=France), Germany (value=Germany), Japan (value=Japan)"
            ),
        "{refused}"
    );
}

/// After a change, a partial re-read (what changed, the elements acted on, the parents whose
/// child lists changed, the ancestors named after their content, the fields labelled by a
/// changed element) gives exactly the filesystem a whole read gives; too many changes at once
/// fall back to a whole read.
#[tokio::test]
async fn a_partial_re_read_after_a_change_equals_a_whole_read() {
    let rig = Rig::start().await;
    rig.ok(&format!("open {}/changes.html", rig.base)).await;
    // The whole filesystem, with the fields' values and the boxes' states.
    let dump = || async {
        let mut all = rig.ok("read -d 40").await;
        for fields in ["find --type checkbox", "find --type input"] {
            all.push('\n');
            all.push_str(&rig.ok(fields).await);
        }
        all
    };
    let original = dump().await;
    let last_read = || async {
        rig.chromium
            .evaluate_in_worker("globalThis.domshell.lastTreeRead")
            .await
            .unwrap()
    };
    // (what to do, whether it is re-read in part, a name only the changed page shows)
    let scenarios: [(&str, bool, &str); 11] = [
        ("click append_item_btn", true, "item_4"),
        ("click remove_two_btn", true, ""),
        ("click rename_first_link_btn", true, "uno"),
        ("click toggle_details_btn", true, "inner_action_btn"),
        ("click relabel_search_btn", true, "find_input"),
        ("click retitle_save_btn", true, "store_btn"),
        ("click exact_match_chk", true, "checked=true"),
        ("type hello", true, "hello"),
        ("click move_last_item_btn", true, ""),
        ("click replace_notes_btn", true, "new_notes"),
        ("click flood_btn", false, "t0 [paragraph]"),
    ];
    let mut previous = original;
    for (action, partial, shows) in scenarios {
        let target = action.split_whitespace().nth(1).unwrap_or_default();
        let action = if action.starts_with("type") {
            let field = first_path(&rig.ok("find --type textbox").await);
            rig.ok(&format!("focus {field}")).await;
            action.to_string()
        } else {
            let path = first_path(&rig.ok(&format!("find {target}")).await);
            format!("click {path}")
        };
        rig.ok(&action).await;
        let changed = dump().await;
        let read = last_read().await;
        assert_eq!(
            read["partial"], partial,
            "{action}: how the change was read: {read}"
        );
        if partial {
            assert!(
                read["axNodes"].as_u64().unwrap_or(u64::MAX) < 100,
                "{action}: only what changed is read: {read}"
            );
        } else {
            assert!(read["notPartial"].is_string(), "{action}: {read}");
        }
        assert_ne!(changed, previous, "{action} changed the page");
        if !shows.is_empty() {
            assert!(
                changed.contains(shows),
                "{action}: no {shows} in\n{changed}"
            );
        }
        rig.ok("refresh").await;
        let whole = dump().await;
        assert_eq!(
            changed, whole,
            "{action}: the partial re-read differs from a whole read"
        );
        previous = whole;
    }
}

/// The change tracker watches the main document only: acting inside a frame makes the next
/// read a whole one, so what a click or typing changed in the frame shows.
#[tokio::test]
async fn changes_made_inside_a_frame_show_after_acting_there() {
    let rig = Rig::start().await;
    rig.ok(&format!("open {}/frame_changes.html", rig.base))
        .await;
    let button = first_path(&rig.ok("find add_line").await);
    rig.ok(&format!("click {button}")).await;
    let found = rig.ok("find line_added").await;
    assert!(found.contains("line_added_in_frame"), "{found}");
    let read = rig
        .chromium
        .evaluate_in_worker("globalThis.domshell.lastTreeRead")
        .await
        .unwrap();
    assert_eq!(read["partial"], false, "{read}");

    let field = first_path(&rig.ok("find --type textbox").await);
    rig.ok(&format!("focus {field}")).await;
    rig.ok("type 4242").await;
    let fields = rig.ok("find --type textbox").await;
    assert!(fields.contains("4242"), "{fields}");
}

/// The line of `tabs` for tab `id`.
fn tab_line(tabs: &str, id: i64) -> String {
    tabs.lines()
        .find(|l| {
            l.trim_start()
                .trim_start_matches('*')
                .starts_with(&format!("{id} "))
        })
        .unwrap_or_else(|| panic!("no tab {id} in {tabs}"))
        .to_string()
}

/// Evaluates `expression` in the page at `url_suffix` through its own CDP target.
async fn page_value(rig: &Rig, url_suffix: &str, expression: &str) -> serde_json::Value {
    rig.page_value(url_suffix, expression).await
}

#[tokio::test]
async fn domshell_habits_combined_flags_window_scroll_and_shortcut_keys() {
    let rig = Rig::start().await;

    // `ls -la`, `ls -al`: the long listing (every entry is always listed).
    let shortcuts = tab_id_from(&rig.ok(&format!("open {}/shortcuts.html", rig.base)).await);
    let long = rig.ok("ls -l main").await;
    assert_eq!(rig.ok("ls -la main").await, long);
    assert_eq!(rig.ok("ls -al main").await, long);
    assert!(long.lines().any(|l| l.starts_with("[-] heading")), "{long}");
    assert_ne!(rig.ok("ls main").await, long);
    let refused = rig.err("ls -lz").await;
    assert!(
        refused.starts_with("ls: unknown option -z in -lz"),
        "{refused}"
    );

    // A page shortcut (a keydown listener on the document) fired by `key k` on the active
    // tab, as a person's key press: trusted, with its code and key code.
    let pressed = rig.ok("key k").await;
    assert_eq!(
        pressed,
        "✓ Pressed k (trusted input)\r\n(nothing changed here)"
    );
    let status = first_path(&rig.ok("find --type status").await);
    let text = rig.ok(&format!("text {status}")).await;
    assert!(text.contains("Shortcut k (KeyK, 75, trusted)"), "{text}");

    // `key --activate` on a background tab: the keys reach it, then the tab in front before
    // is in front again.
    let other = tab_id_from(&rig.ok(&format!("open {}/table.html", rig.base)).await);
    rig.ok(&format!("cd ~/tabs/{shortcuts}")).await;
    let tabs = rig.ok("tabs").await;
    assert!(
        tab_line(&tabs, other).trim_start().starts_with('*'),
        "{tabs}"
    );
    assert!(
        !tab_line(&tabs, shortcuts).trim_start().starts_with('*'),
        "{tabs}"
    );
    let pressed = rig.ok("key j --activate").await;
    assert!(
        pressed.starts_with(&format!("✓ Pressed j (trusted input) (tab {shortcuts} activated for the keys, then tab {other} active again as before)\r\n")),
        "{pressed}"
    );
    // The account: the status's text (its name) changed from the `k` shortcut's to this one's.
    assert!(
        pressed.contains("+ main/status/shortcut_j_keyj_74 (StaticText)"),
        "{pressed}"
    );
    // The status is named after its text, which the shortcut changed: find it again.
    let status = first_path(&rig.ok("find --type status").await);
    let text = rig.ok(&format!("text {status}")).await;
    assert!(text.contains("Shortcut j (KeyJ, 74, trusted)"), "{text}");
    let tabs = rig.ok("tabs").await;
    assert!(
        tab_line(&tabs, other).trim_start().starts_with('*'),
        "{tabs}"
    );
    assert!(
        !tab_line(&tabs, shortcuts).trim_start().starts_with('*'),
        "{tabs}"
    );

    // `scroll --window` from inside a scrolling container moves the window, not the
    // container; plain `scroll` there moves the container.
    rig.ok(&format!("cd ~/tabs/{other}")).await;
    rig.ok(&format!("navigate {}/window_scroll.html", rig.base))
        .await;
    let feed = first_path(&rig.ok("find --type list").await);
    rig.ok(&format!("cd {feed}")).await;
    let inner = rig.ok("scroll").await;
    assert!(inner.contains("(inner container)"), "{inner}");
    let before = page_value(
        &rig,
        "/window_scroll.html",
        "[scrollY, document.getElementById('feed').scrollTop]",
    )
    .await;
    assert_eq!(before[0], 0, "{before}");
    assert!(before[1].as_f64().unwrap_or(0.0) > 0.0, "{before}");
    let window = rig.ok("scroll --window").await;
    assert!(
        window.starts_with("✓ Scrolled down 1 viewport(s)\r\nPosition: "),
        "{window}"
    );
    assert!(!window.contains("(inner container)"), "{window}");
    let after = page_value(
        &rig,
        "/window_scroll.html",
        "[scrollY, innerHeight, document.getElementById('feed').scrollTop]",
    )
    .await;
    assert_eq!(after[0], after[1], "the window moved one viewport: {after}");
    assert_eq!(
        after[2], before[1],
        "the container stayed where it was: {after}"
    );
    let up = rig.ok("scroll up --window").await;
    assert!(up.contains("Position: 0/"), "{up}");
}
