//! Actions that say what they did, and `diff`, end to end: headless Chromium runs the built
//! extension on the fixture page `tests/fixtures/pages/effects.html`, served on 127.0.0.1,
//! and commands go through the real server.
//!
//! Covered: a click that adds three rows reports those three rows and nothing else; one
//! that changes nothing says so; one that opens a dialog reports the dialog and no account;
//! typing reports the field's new value; one that navigates reports the new page; `--quiet`
//! says nothing more, and `diff` then tells what the quiet click did; `diff` with nothing
//! changed, after a change the page made on its own and after a navigation; `diff --json`.

use domshell_tests::PageRig;

/// The lines after an action's first (`✓ Clicked: …`) line.
fn account(reply: &str) -> Vec<String> {
    reply
        .lines()
        .skip(1)
        .map(|l| l.trim_end().to_string())
        .collect()
}

#[tokio::test]
async fn actions_report_their_effect_and_diff_tells_what_changed_since() {
    let rig = PageRig::start().await;
    rig.open_fixture("effects.html").await;
    rig.ok("cd main").await;

    // Each click adds three rows to the list: the reply names those three and nothing else.
    for first in [1, 4] {
        let added = rig.ok("click add_rows_btn").await;
        assert!(
            added.starts_with("✓ Clicked: add_rows_btn (button)"),
            "{added}"
        );
        let expected: Vec<String> = (first..first + 3)
            .map(|n| format!("+ list/row_{n}/ (listitem)"))
            .collect();
        assert_eq!(account(&added), expected, "{added}");
    }

    let nothing = rig.ok("click do_nothing_btn").await;
    assert_eq!(
        nothing,
        "✓ Clicked: do_nothing_btn (button)\r\n(nothing changed here)"
    );

    let warned = rig.ok("click warn_me_btn").await;
    assert!(
        warned.contains("⚠ The page opened a JavaScript dialog"),
        "{warned}"
    );
    assert!(
        !warned.contains("changed here") && !warned.contains("\n+ "),
        "{warned}"
    );
    rig.ok("dialog accept").await;

    rig.ok("focus note_note/note_input").await;
    let typed = rig.ok("type hi").await;
    assert_eq!(
        account(&typed),
        ["~ note_note/note_input: value \"\" → \"hi\""],
        "{typed}"
    );

    // Quiet: only the first line; the look stays, so `diff` tells the effect afterwards.
    let quiet = rig.ok("click add_rows_btn --quiet").await;
    assert_eq!(quiet, "✓ Clicked: add_rows_btn (button)");
    let diff = rig.ok("diff").await;
    assert_eq!(diff.lines().count(), 3, "{diff}");
    assert!(diff.lines().all(|l| l.starts_with("+ ")), "{diff}");
    assert_eq!(rig.ok("diff").await, "No change here since your last look.");

    // A change the page makes on its own.
    rig.ok("js document.querySelector('h1').textContent = 'Effects, changed'")
        .await;
    let json: serde_json::Value = serde_json::from_str(&rig.ok("diff --json").await).unwrap();
    assert_eq!(json["document"], "same", "{json}");
    assert_eq!(json["compared"], true, "{json}");
    // The heading's label changed, and with it the name it is listed under.
    assert_eq!(json["added"][0]["label"], "Effects, changed", "{json}");
    assert_eq!(json["added"][0]["role"], "heading", "{json}");
    assert_eq!(json["removed"][0]["label"], "Effects", "{json}");
    assert_eq!(json["changed"], serde_json::json!([]), "{json}");

    let left = rig.ok("click go_elsewhere_btn").await;
    assert_eq!(
        account(&left),
        [format!(
            "→ New page: Welcome — {}/welcome.html?user=ada",
            rig.base
        )],
        "{left}"
    );
    // A navigation the session did not make through an action: `diff` says the document is new.
    rig.ok(&format!("navigate {}/effects.html", rig.base)).await;
    let renewed = rig.ok("diff").await;
    assert!(
        renewed.starts_with("New document since your last look: Effects — "),
        "{renewed}"
    );
}
