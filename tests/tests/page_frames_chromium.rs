//! Frames of every kind, end to end: headless Chromium with the built extension, pages on
//! three loopback sites (127.0.0.1 hosts a localhost frame, which hosts a 127.0.0.2 frame:
//! each out of process), commands through the real server.
//!
//! Covered: `click`, `type`, `text` and `cat` on an element inside a cross-site frame and
//! inside a cross-site frame nested in one, each proved by that frame's own state (read
//! through this test's own CDP connection to the frame's target) while the main page, which
//! has elements of the same shape and ids, records no hit; a cross-site frame that attaches
//! after the first listing and a frame that changes itself, both seen without `refresh`; a
//! page that pre-defines the change tracker's names cannot hide a change.

use std::time::Duration;

use domshell_tests::{CdpClient, PageRig};
use serde_json::{json, Value};

/// Evaluates `expression` in the frame target (out of process) whose URL ends with
/// `url_suffix`, through this test's own CDP connection.
async fn frame_value(rig: &PageRig, url_suffix: &str, expression: &str) -> Value {
    let mut found = None;
    for _ in 0..50 {
        found = rig
            .chromium
            .targets()
            .await
            .expect("Chromium lists its targets")
            .into_iter()
            .find(|t| t.kind == "iframe" && t.url.ends_with(url_suffix));
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let target = found.unwrap_or_else(|| panic!("no frame target at {url_suffix}"));
    let mut frame = CdpClient::connect(&target.ws_url)
        .await
        .expect("a CDP connection to the frame");
    let reply = frame
        .send(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        )
        .await
        .expect("the frame evaluates the expression");
    reply["result"]["value"].clone()
}

/// The paths `find` prints (second word of each line).
fn found_paths(found: &str) -> Vec<String> {
    found
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|p| p.trim_end_matches('/').to_string())
        .collect()
}

/// The one path of `paths` that passes through `depth` frame directories (names with
/// `frame` in them), the frames being the fixture's `Outer frame` and `Inner frame`.
fn at_depth(paths: &[String], depth: usize) -> String {
    let matching: Vec<&String> = paths
        .iter()
        .filter(|p| p.split('/').filter(|s| s.contains("frame")).count() == depth)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "one path at frame depth {depth}: {paths:?}"
    );
    matching[0].clone()
}

/// The main page's handlers saw nothing.
async fn host_untouched(rig: &PageRig) {
    let hits = rig.page_value("/frames_host.html", "window.hits").await;
    assert_eq!(hits, json!([]), "no main-page handler ran");
    let status = rig
        .page_value(
            "/frames_host.html",
            "document.getElementById('status').textContent",
        )
        .await;
    assert_eq!(status, json!("host status 0"));
}

#[tokio::test]
async fn click_type_text_and_cat_reach_cross_site_and_nested_cross_site_frames() {
    let rig = PageRig::start().await;
    rig.open_fixture("frames_host.html").await;
    let buttons = found_paths(&rig.ok("find count --type button").await);
    let fields = found_paths(&rig.ok("find note --type textbox").await);
    let statuses = found_paths(&rig.ok("find status").await);
    assert_eq!(buttons.len(), 3, "one button per document: {buttons:?}");

    for (depth, page, class) in [
        (1, "/frames_outer.html", "outer-btn"),
        (2, "/frames_inner.html", "inner-btn"),
    ] {
        let button = at_depth(&buttons, depth);
        let field = at_depth(&fields, depth);
        let status = at_depth(&statuses, depth);
        let name = page
            .trim_start_matches("/frames_")
            .trim_end_matches(".html");

        rig.ok(&format!("click {button}")).await;
        assert_eq!(
            frame_value(&rig, page, "window.clicks").await,
            json!(1),
            "the {name} frame's own button ran"
        );
        let text = rig.ok(&format!("text {status}")).await;
        assert!(
            text.contains(&format!("{name} status 1")),
            "text reads the {name} frame: {text}"
        );
        let cat = rig.ok(&format!("cat {button}")).await;
        assert!(
            cat.contains(class),
            "cat reads the {name} frame's node: {cat}"
        );

        rig.ok(&format!("focus {field}")).await;
        rig.ok(&format!("type typed-in-{name}")).await;
        assert_eq!(
            frame_value(&rig, page, "document.getElementById('note').value").await,
            json!(format!("typed-in-{name}")),
            "the {name} frame's field got the text"
        );
        host_untouched(&rig).await;
    }
    // Each frame was acted on once: the other frame's handlers did not run either.
    assert_eq!(
        frame_value(&rig, "/frames_outer.html", "window.clicks").await,
        json!(1)
    );
    assert_eq!(
        frame_value(
            &rig,
            "/frames_outer.html",
            "document.getElementById('note').value"
        )
        .await,
        json!("typed-in-outer")
    );
}

#[tokio::test]
async fn a_frame_attached_late_and_a_frame_that_changes_itself_are_seen_without_refresh() {
    let rig = PageRig::start().await;
    rig.open_fixture("frames_late.html").await;
    let (_, first) = rig.run("find mutating").await;
    assert!(!first.contains("late_frame"), "no frame yet: {first}");

    rig.page_value("/frames_late.html", "addFrame()").await;
    // The frame's target attaches on its own time; a few reads at most.
    let mut seen = String::new();
    for _ in 0..20 {
        seen = rig.run("find mutating").await.1;
        if seen.contains("late_frame") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        seen.contains("late_frame"),
        "the late frame is listed without refresh: {seen}"
    );

    frame_value(&rig, "/frames_mutating.html", "addItem('Added inside')").await;
    let after = rig.ok("find added --type button").await;
    assert!(
        after.contains("added_inside"),
        "a change inside the frame is seen without refresh: {after}"
    );
}

#[tokio::test]
async fn a_page_that_predefines_the_trackers_names_cannot_hide_a_change() {
    let rig = PageRig::start().await;
    rig.open_fixture("hostile_tracker.html").await;
    let (_, before) = rig.run("find added").await;
    assert!(!before.contains("added_by_page"), "{before}");
    rig.page_value("/hostile_tracker.html", "addItem('Added by page')")
        .await;
    let after = rig.ok("find added --type button").await;
    assert!(
        after.contains("added_by_page"),
        "the change is seen though the page defined the tracker's names: {after}"
    );
}

/// `Memory.getDOMCounters` of the page at `url_suffix` after a full garbage collection,
/// through this test's own CDP connection: `(documents, nodes, listeners)`.
async fn dom_counters(rig: &PageRig, url_suffix: &str) -> (i64, i64, i64) {
    let target = rig
        .chromium
        .targets()
        .await
        .expect("Chromium lists its targets")
        .into_iter()
        .find(|t| t.kind == "page" && t.url.ends_with(url_suffix))
        .unwrap_or_else(|| panic!("no page target at {url_suffix}"));
    let mut page = CdpClient::connect(&target.ws_url)
        .await
        .expect("a CDP connection to the page");
    for _ in 0..3 {
        page.send("HeapProfiler.collectGarbage", json!({}))
            .await
            .expect("the page collects garbage");
    }
    let counters = page
        .send("Memory.getDOMCounters", json!({}))
        .await
        .expect("the page counts its DOM");
    let n = |k: &str| counters[k].as_i64().unwrap_or(-1);
    (n("documents"), n("nodes"), n("jsEventListeners"))
}

#[tokio::test]
async fn dom_counters_stay_flat_over_a_thousand_text_listings_of_a_churning_app() {
    const LINES_PER_CALL: usize = 25;
    const CALLS: usize = 1_000 / LINES_PER_CALL;
    let rig = PageRig::start().await;
    rig.open_fixture("churn_spa.html").await;
    let batch = vec!["ls --text main/feed"; LINES_PER_CALL].join("\n");
    // Warm up: the first reads install the tracker and the isolated world.
    let first = rig.ok(&batch).await;
    assert!(first.contains("Item 0 of round"), "{first}");
    let before = dom_counters(&rig, "/churn_spa.html").await;
    for _ in 0..CALLS {
        let out = rig.ok(&batch).await;
        assert!(out.contains("Item 19 of round"), "{out}");
    }
    let after = dom_counters(&rig, "/churn_spa.html").await;
    eprintln!("DOM counters (documents, nodes, listeners): before {before:?}, after {after:?}");
    assert_eq!(after.0, before.0, "documents");
    // Each listing resolves the 20 links of a feed that is replaced twice a second;
    // pinned, 1,000 listings would keep thousands of removed nodes alive.
    assert!(
        after.1 <= before.1 + 500,
        "nodes stay flat: {before:?} → {after:?}"
    );
    assert!(
        after.2 <= before.2 + 50,
        "listeners stay flat: {before:?} → {after:?}"
    );
}
