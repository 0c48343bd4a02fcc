//! One tab, one reader: two sessions working on one tab at once, run interleaved on one
//! thread the way the worker's event loop runs them, against the in-memory browser yielding
//! at every DevTools call under a virtual clock.

use serde_json::{json, Value};

use super::fake::{run_together, FakeBrowser};
use super::page::PageCache;
use super::{execute, Context, Reply, Session};

pub(super) const FRAME: &str = "MAIN";

pub(super) fn node(id: u32, role: &str, name: &str, children: &[u32]) -> Value {
    json!({
        "nodeId": id.to_string(),
        "backendDOMNodeId": id,
        "role": {"type": "role", "value": role},
        "name": {"type": "computedString", "value": name},
        "childIds": children.iter().map(u32::to_string).collect::<Vec<_>>(),
    })
}

/// A comment thread: the root, then one "Reply" button per id of `replies`, in order.
pub(super) fn thread(replies: &[u32]) -> Vec<Value> {
    let mut root = node(1, "RootWebArea", "Thread", replies);
    root["frameId"] = json!(FRAME);
    root["role"]["type"] = json!("internalRole");
    let mut nodes = vec![root];
    for id in replies {
        let mut button = node(*id, "button", "Reply", &[]);
        button["parentId"] = json!("1");
        nodes.push(button);
    }
    nodes
}

/// Tab 101 showing `nodes`, its tracker at `mutations` changes of document `doc-1`, every
/// DevTools call yielding and taking 5 virtual milliseconds.
pub(super) fn browser(nodes: Vec<Value>) -> FakeBrowser {
    let b = FakeBrowser::standard();
    {
        let mut s = b.state.borrow_mut();
        s.cdp_replies.insert(
            "Page.getFrameTree".into(),
            json!({"frameTree": {"frame": {"id": FRAME, "url": "https://example.com/"}}}),
        );
        s.interleave = true;
        s.call_ms = 5.0;
    }
    show(&b, nodes, 0);
    b
}

/// The page now shows `nodes`, after `mutations` changes the tracker counted.
fn show(b: &FakeBrowser, nodes: Vec<Value>, mutations: i64) {
    let mut s = b.state.borrow_mut();
    s.cdp_replies.insert(
        "Accessibility.getFullAXTree".into(),
        json!({ "nodes": nodes.clone() }),
    );
    s.ax_page = Some(nodes);
    s.cdp_replies.insert(
        "Runtime.evaluate".into(),
        json!({"result": {"value": {"doc": "doc-1", "n": mutations}}}),
    );
}

fn tree_reads(b: &FakeBrowser) -> usize {
    b.state
        .borrow()
        .cdp_calls
        .iter()
        .filter(|(_, m)| m == "Accessibility.getFullAXTree" || m == "Accessibility.getRootAXNode")
        .count()
}

pub(super) fn in_tab(b: &FakeBrowser, c: &Context) -> Session {
    let mut s = Session::default();
    let (reply, ()) = run_together(execute(&mut s, b, c, "cd ~/tabs/101"), async {}, |_| {});
    assert!(reply.ok, "{}", reply.output);
    s
}

pub(super) fn ok(reply: &Reply) -> &str {
    assert!(reply.ok, "failed: {}", reply.output);
    &reply.output
}

/// The name the kept tree of tab 101 gives the element with backend node id `id`.
fn name_of(c: &Context, id: i64) -> String {
    let tree = c.pages.kept(101).expect("a kept tree");
    let entry = tree
        .nearest_entry_for_backend_node(FRAME, id)
        .expect("the button is mapped");
    tree.entry(entry).expect("entry").name.clone()
}

pub(super) fn context() -> Context {
    Context::new(&["example.com".to_string()], None).with_pages(PageCache::default())
}

#[test]
fn two_sessions_entering_a_tab_at_once_read_it_once() {
    let b = browser(thread(&[10, 11]));
    let c = context();
    let (mut one, mut two) = (Session::default(), Session::default());
    let (a, z) = run_together(
        execute(&mut one, &b, &c, "cd ~/tabs/101"),
        execute(&mut two, &b, &c, "cd ~/tabs/101"),
        |_| {},
    );
    ok(&a);
    ok(&z);
    assert_eq!(
        tree_reads(&b),
        1,
        "the second session waits for the first read and uses its tree"
    );
    let (a, z) = run_together(
        execute(&mut one, &b, &c, "ls"),
        execute(&mut two, &b, &c, "ls"),
        |_| {},
    );
    assert_eq!(ok(&a), ok(&z), "both see one tree");
    assert!(b.state.borrow().clock_ms > 0.0, "the virtual clock ran");
}

#[test]
fn a_sibling_inserted_while_two_sessions_read_never_moves_a_name() {
    let b = browser(thread(&[10, 11]));
    let c = context();
    let mut one = in_tab(&b, &c);
    let mut two = in_tab(&b, &c);
    let first = name_of(&c, 10);
    let second = name_of(&c, 11);
    assert_ne!(first, second);
    // A new "Reply" appears before both; the tracker counts the change.
    show(&b, thread(&[12, 10, 11]), 1);
    let (a, z) = run_together(
        execute(&mut one, &b, &c, "ls"),
        execute(&mut two, &b, &c, "ls"),
        |_| {},
    );
    ok(&a);
    ok(&z);
    assert_eq!(name_of(&c, 10), first, "the first button keeps its name");
    assert_eq!(name_of(&c, 11), second, "the second button keeps its name");
    let new = name_of(&c, 12);
    assert!(
        new != first && new != second,
        "the new button has a new name: {new}"
    );
    for listing in [&a.output, &z.output] {
        for name in [&first, &second, &new] {
            assert!(
                listing.contains(name.as_str()),
                "{name} missing in:\n{listing}"
            );
        }
    }
}

#[test]
fn a_navigation_during_a_read_is_not_lost_when_the_read_writes_back() {
    let b = browser(thread(&[10, 11]));
    let c = context();
    let mut one = in_tab(&b, &c);
    // The page changed: the next `ls` reads it again; while that read runs, another
    // session's command navigates the tab.
    show(&b, thread(&[10, 11, 12]), 1);
    let reads_before = tree_reads(&b);
    let mut told = false;
    let (a, ()) = run_together(execute(&mut one, &b, &c, "ls"), async {}, |_| {
        if !told && tree_reads(&b) > reads_before {
            told = true;
            c.pages.invalidate(101);
        }
    });
    ok(&a);
    assert!(told, "the notice came while the read was under way");
    let reads = tree_reads(&b);
    let (a, ()) = run_together(execute(&mut one, &b, &c, "ls"), async {}, |_| {});
    ok(&a);
    assert_eq!(
        tree_reads(&b),
        reads + 1,
        "the tree written back was marked stale, so it is read again"
    );
}

#[test]
fn a_session_waiting_for_the_tab_waits_its_turn_then_runs() {
    let b = browser(thread(&[10, 11]));
    let c = context();
    let mut one = in_tab(&b, &c);
    let mut two = in_tab(&b, &c);
    show(&b, thread(&[10, 11, 12]), 1);
    let mut most_waiting = 0;
    let (a, z) = run_together(
        execute(&mut one, &b, &c, "ls"),
        execute(&mut two, &b, &c, "ls"),
        |_| most_waiting = most_waiting.max(c.pages.readers_waiting(101)),
    );
    ok(&a);
    ok(&z);
    assert_eq!(most_waiting, 1, "the second reader queued behind the first");
    assert_eq!(c.pages.readers_waiting(101), 0);
}
