//! What replies cost an agent, end to end in headless Chromium with the built extension and
//! the real server, on fixture pages served on 127.0.0.1: an encyclopedia-like article
//! (`article.html`) and an older site laid out in tables (`layout_table.html`).
//!
//! Covered: `find` lines leave out a label the name already says and show a same-site
//! `href` from its path on, another site's whole; `text` has no header, and a table's text is
//! one line per row; `extract_table` is compact Markdown; a layout table's records are listed
//! as one directory each, not as a flood of fragments at the page root; a click on a plain
//! form's submit button (the browser submits a moment later) waits for the page it leads to,
//! says so, and the next read reads that page.

use domshell_tests::PageRig;

#[tokio::test]
async fn an_article_reads_in_short_lines() {
    let rig = PageRig::start().await;
    rig.open_fixture("article.html").await;
    let found = rig.ok("find list_of_comets_by --type link").await;
    assert_eq!(
        found,
        "[x] main/list_4/list_of_comets_by_type/link (link)  href=/wiki/List_of_comets_by_type"
    );
    // A label the name cannot hold (cut at 40 characters) is shown (clipped at 60); another
    // site's link whole.
    let reference = rig.ok("find \"part 1:\" --type link -n 1").await;
    assert!(
        reference.contains("  \"Comets and their orbits, part 1: a survey of the literature…\"  href=https://journal.example/0")
            // References alike in their first 24 characters are told apart by their words.
            && reference.contains("main/list_5/comets_and_their_orbits_part_1_"),
        "{reference}"
    );
    // The infobox: its text one line per row, and as a table without padding.
    assert_eq!(
        rig.ok("text main/comet").await,
        "Comet\r\nType\tSmall Solar System body\r\nNucleus size\t0.1 to 40 km\r\nKnown\t4,584 (as of 2024)\r\n(85 chars)"
    );
    assert_eq!(
        rig.ok("extract_table main/comet").await,
        "Type | Small Solar System body\r\n--- | ---\r\nNucleus size | 0.1 to 40 km\r\nKnown | 4,584 (as of 2024)"
    );
    // The page's text: no header line and no blank lines between paragraphs.
    let page = rig.ok("text -n 400").await;
    assert!(page.starts_with("Open Encyclopedia\r\n"), "{page}");
    assert!(!page.contains("\r\n\r\n"), "{page}");
}

#[tokio::test]
async fn a_layout_table_lists_its_records_where_they_are() {
    let rig = PageRig::start().await;
    rig.open_fixture("layout_table.html").await;
    // The page is a table of one-cell rows holding a table of stories: each story's row and
    // its details' row is one directory at the root, the page's wrapper rows are not.
    assert_eq!(
        rig.ok("ls").await,
        [
            "orbit_news_new_ask/",
            "1_upvote_comet_seen_over/",
            "120_points_by_ada_2/",
            "2_upvote_new_rocket/",
            "98_points_by_lin_3_hours/",
            "3_upvote_why_orbits_are/",
            "77_points_by_sam_5_hours/",
            "more_link",
        ]
        .join("\r\n")
    );
    let story = rig.ok("ls 1_upvote_comet_seen_over").await;
    assert_eq!(
        story,
        "1\r\nupvote_link\r\ncomet_seen_over_bay_link\r\nsky_example"
    );
    let clicked = rig
        .ok("click 1_upvote_comet_seen_over/comet_seen_over_bay_link")
        .await;
    assert!(
        clicked.starts_with("✓ Clicked: comet_seen_over_bay_link"),
        "{clicked}"
    );
}

#[tokio::test]
async fn a_plain_forms_submission_is_waited_for_and_read() {
    let rig = PageRig::start().await;
    rig.open_fixture("plain_form.html").await;
    rig.ok("focus main/username/input").await;
    rig.ok("type ada").await;
    let clicked = rig.ok("click create_account_btn").await;
    assert!(
        clicked.starts_with("✓ Clicked: create_account_btn (button)\r\n→ New page: Welcome — "),
        "{clicked}"
    );
    // At once, without a retry: the click waited for the new page.
    let text = rig.ok("text main").await;
    assert!(text.starts_with("Welcome, ada\r\n"), "{text}");
}
