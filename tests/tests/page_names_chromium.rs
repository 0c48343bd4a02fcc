//! Names never move, end to end: headless Chromium with the built extension, a comment
//! thread served on 127.0.0.1, commands through the real server.
//!
//! Covered: a same-named sibling inserted before `reply_btn_2` (by the page, after the agent
//! listed it) does not redirect `click reply_btn_2`, whether the next read is partial or whole
//! (many changes at once); the new element gets a name never used before; a name whose
//! element was removed fails saying it is gone and lists what is there now; a new document
//! (navigating to the page again) derives names afresh.

use domshell_tests::PageRig;

/// The Reply clicks the page saw, in order.
async fn replies(rig: &PageRig) -> Vec<String> {
    let value = rig.page_value("/names.html", "window.replies").await;
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The entry names `ls` prints, one per line (directories with a trailing `/`).
fn listed(ls: &str) -> Vec<String> {
    ls.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.trim_end_matches('/').to_string())
        .collect()
}

#[tokio::test]
async fn an_inserted_sibling_never_redirects_a_name() {
    let rig = PageRig::start().await;
    rig.open_fixture("names.html").await;
    let before = listed(&rig.ok("ls main/comments").await);
    for name in ["reply_btn", "reply_btn_2", "reply_btn_3"] {
        assert!(before.contains(&name.to_string()), "{before:?}");
    }

    // The page inserts a new comment with its own Reply at the top (a partial re-read).
    rig.page_value("/names.html", "addComment('dee', 'a new comment')")
        .await;
    rig.ok("click main/comments/reply_btn_2").await;
    assert_eq!(replies(&rig).await, ["bob"], "reply_btn_2 is still Bob's");
    let now = listed(&rig.ok("ls main/comments").await);
    assert!(
        now.contains(&"reply_btn_4".to_string()),
        "the new one gets a new name: {now:?}"
    );
    rig.ok("click main/comments/reply_btn_4").await;
    rig.ok("click main/comments/reply_btn").await;
    assert_eq!(replies(&rig).await, ["bob", "dee", "ann"]);

    // Another insertion together with more changes than are tracked one by one: the page is
    // read whole, and the names still hold.
    rig.page_value(
        "/names.html",
        "churn(300); addComment('eve', 'another new comment')",
    )
    .await;
    rig.ok("click main/comments/reply_btn_3").await;
    assert_eq!(
        replies(&rig).await,
        ["bob", "dee", "ann", "cy"],
        "reply_btn_3 is still Cy's"
    );
    let whole = listed(&rig.ok("ls main/comments").await);
    assert!(whole.contains(&"reply_btn_5".to_string()), "{whole:?}");

    // Bob's comment is removed: its name fails as gone, listing what is there now.
    rig.page_value("/names.html", "removeComment('bob')").await;
    let gone = rig.err("click main/comments/reply_btn_2").await;
    assert!(gone.contains("reply_btn_2: gone"), "{gone}");
    assert!(gone.contains("reply_btn_3"), "lists what is there: {gone}");
    assert_eq!(replies(&rig).await.len(), 4, "nothing was clicked");

    // A new document names afresh: the page as served has three comments again.
    rig.ok(&format!("navigate {}/names.html", rig.base)).await;
    let fresh = listed(&rig.ok("ls main/comments").await);
    let replies_listed: Vec<&String> = fresh
        .iter()
        .filter(|n| n.starts_with("reply_btn"))
        .collect();
    assert_eq!(replies_listed, ["reply_btn", "reply_btn_2", "reply_btn_3"]);
    rig.ok("click main/comments/reply_btn_2").await;
    assert_eq!(replies(&rig).await, ["bob"]);
}
