//! The tree read by parts, end to end: headless Chromium with the built extension, a large
//! generated list served on 127.0.0.1, commands through the real server.
//!
//! Covered: entering a page of 75k AX nodes and listing its root reads a few dozen AX nodes
//! node by node (`getRootAXNode`/`getChildAXNodes`), not the whole tree, as the worker's
//! `domshell.lastTreeRead` reports; `cd` into a directory not read yet reads it; `find`
//! reads the whole page in one call, and the server's heartbeats (every 200 ms) keep being
//! answered while the worker reads and maps those 75k nodes.

use std::time::Duration;

use domshell_tests::PageRig;
use serde_json::Value;

/// List items on the page: six DOM nodes and nine AX nodes each, about 75k AX nodes in all.
const ITEMS: usize = 8_333;

/// Both tests read a 75k-node page; at once they would measure each other on two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn last_read(rig: &PageRig) -> Value {
    rig.chromium
        .evaluate_in_worker("globalThis.domshell && globalThis.domshell.lastTreeRead")
        .await
        .expect("the worker answers")
}

#[tokio::test]
async fn entering_a_large_page_reads_only_what_its_root_listing_needs() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let rig = PageRig::start_with(60_000).await;
    rig.ok(&format!("open {}/big_list.html?items={ITEMS}", rig.base))
        .await;
    let root = rig.ok("ls").await;
    assert!(root.contains("main/"), "{root}");
    let read = last_read(&rig).await;
    eprintln!("read on entering: {read}");
    assert_eq!(read["lazy"], true, "{read}");
    let nodes = read["axNodes"].as_u64().unwrap_or(u64::MAX);
    assert!(
        nodes < 200,
        "{nodes} AX nodes read to list the root: {read}"
    );
    assert!(read["calls"].as_u64().unwrap_or(u64::MAX) < 50, "{read}");

    // `cd main` reads that directory, still by parts.
    rig.ok("cd main").await;
    let main = rig.ok("ls").await;
    assert!(main.contains("catalogue_heading"), "{main}");
    assert!(main.contains("items/"), "{main}");
    let read = last_read(&rig).await;
    assert_eq!(read["lazy"], true, "{read}");
    assert!(read["axNodes"].as_u64().unwrap_or(u64::MAX) < 200, "{read}");
}

#[tokio::test]
async fn heartbeats_are_answered_while_a_large_page_is_read_whole() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // The rig pings every 200 ms; the link must survive the read whatever the delay.
    let rig = PageRig::start_with(60_000).await;
    rig.ok(&format!("open {}/big_list.html?items={ITEMS}", rig.base))
        .await;
    // A whole read of 75k nodes takes seconds: a budget above the rig's default.
    let find = rig.run_timed("find --type link -n 3", 60_000);
    tokio::pin!(find);
    let mut rtts: Vec<u64> = Vec::new();
    let (ok, output, _) = loop {
        tokio::select! {
            done = &mut find => break done,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                if let Some(rtt) = rig.server.health().await.ok().and_then(|h| h["link"]["last_rtt_ms"].as_u64()) {
                    rtts.push(rtt);
                }
            }
        }
    };
    assert!(ok, "{output}");
    let read = last_read(&rig).await;
    assert_eq!(read["lazy"], false, "the whole page was read: {read}");
    assert_eq!(read["calls"], 1, "in one call: {read}");
    assert!(
        read["axNodes"].as_u64().unwrap_or(0) > (ITEMS * 8) as u64,
        "{read}"
    );
    assert!(rtts.len() > 5, "{rtts:?}");
    rtts.sort_unstable();
    let p95 = rtts[(rtts.len() * 95).div_ceil(100) - 1];
    eprintln!(
        "PONG delay during a whole read of {} AX nodes: p95 {p95} ms, max {} ms over {} samples ({read})",
        read["axNodes"],
        rtts[rtts.len() - 1],
        rtts.len()
    );
    assert!(p95 < 1_000, "heartbeat round trips {rtts:?}");
}
