//! The worker stays responsive: a whole read of a large page is decoded and mapped in
//! slices, between which the event loop runs other work (the heartbeat, another session).
//! Run on one thread against the in-memory browser, whose clock moves as work is done.

use std::cell::Cell;

use serde_json::json;

use super::execute;
use super::fake::{run_together, FakeBrowser, YieldOnce};
use super::page_tests::tree_reads;
use super::reader_tests::{browser, context, in_tab, node, ok, thread};

/// Tab 101 showing a list of `items` list items, each holding a "Reply" button: entering the
/// tab reads only the root and the list, `find` reads the page whole. Every reading of the
/// clock costs `work_ms`, and DevTools calls do not yield, so only the kernel's slicing does.
fn page(items: u32, work_ms: f64) -> FakeBrowser {
    let mut nodes = thread(&[]);
    nodes[0]["childIds"] = json!(["2"]);
    let item_ids: Vec<u32> = (0..items).map(|i| 10 + 2 * i).collect();
    let mut list = node(2, "list", "Items", &item_ids);
    list["parentId"] = json!("1");
    nodes.push(list);
    for &id in &item_ids {
        let mut item = node(id, "listitem", "", &[id + 1]);
        item["parentId"] = json!("2");
        let mut button = node(id + 1, "button", "Reply", &[]);
        button["parentId"] = json!(id.to_string());
        nodes.extend([item, button]);
    }
    let b = browser(nodes);
    {
        let mut s = b.state.borrow_mut();
        s.interleave = false;
        s.work_ms = work_ms;
    }
    b
}

/// Runs `line` in a session already in tab 101 next to a stand-in for the heartbeat, which
/// counts how often it ran after the whole read's answer arrived and before the command
/// ended. Returns the command's output and that count.
fn beats_during(b: &FakeBrowser, line: &str) -> (String, usize) {
    let c = context();
    let mut session = in_tab(b, &c);
    let reads_before = tree_reads(b);
    let done = Cell::new(false);
    let command = async {
        let reply = execute(&mut session, b, &c, line).await;
        done.set(true);
        reply
    };
    let heartbeat = async {
        let mut beats = 0usize;
        while !done.get() {
            if tree_reads(b) > reads_before {
                beats += 1;
            }
            YieldOnce(false).await;
        }
        beats
    };
    let (reply, beats) = run_together(command, heartbeat, |_| {});
    (ok(&reply).to_string(), beats)
}

#[test]
fn the_heartbeat_runs_while_a_large_page_is_decoded_and_mapped() {
    let b = page(6_000, 2.0);
    let (found, beats) = beats_during(&b, "find --type button -n 1 --offset 5999");
    assert!(
        found.contains("reply_6000/btn (button)"),
        "every button was mapped: {found}"
    );
    assert!(
        beats >= 3,
        "the read of 12,000 nodes ran in one piece: the heartbeat ran {beats} times"
    );
    let s = b.state.borrow();
    assert!(s.yields >= beats, "{} yields, {beats} beats", s.yields);
}

#[test]
fn a_small_page_is_read_without_yielding() {
    let b = page(20, 1.0);
    let (found, beats) = beats_during(&b, "find --type button -n 1 --offset 19");
    assert!(found.contains("reply_20/btn (button)"), "{found}");
    assert_eq!(beats, 0, "short work costs no trip through the event loop");
    assert_eq!(b.state.borrow().yields, 0);
}
