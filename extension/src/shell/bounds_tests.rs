//! Reply bounds through the kernel: a page too big for one reply is listed page by page,
//! each page within the cap and ending with the command for the next, until nothing is left.

use serde_json::{json, Value};

use super::bounds::{split_footer, LEFT_OUT_PREFIX, MAX_OUTPUT_CHARS};
use super::fake::{block_on, FakeBrowser};
use super::page::PageCache;
use super::{execute, Context, Session};

/// Buttons on the synthetic page: their long names make `ls -l` several replies long.
const BUTTONS: usize = 3_000;

/// Tab 101 (example.com): a main landmark holding [`BUTTONS`] buttons.
fn big_page() -> FakeBrowser {
    let b = FakeBrowser::standard();
    let mut nodes: Vec<Value> = vec![
        json!({"nodeId": "1", "backendDOMNodeId": 1, "frameId": "F", "childIds": ["2"],
               "role": {"type": "internalRole", "value": "RootWebArea"},
               "name": {"type": "computedString", "value": "Big"}}),
        json!({"nodeId": "2", "backendDOMNodeId": 2, "parentId": "1",
               "childIds": (0..BUTTONS).map(|i| (i + 10).to_string()).collect::<Vec<_>>(),
               "role": {"type": "role", "value": "main"}}),
    ];
    for i in 0..BUTTONS {
        nodes.push(json!({
            "nodeId": (i + 10).to_string(), "backendDOMNodeId": i + 10, "parentId": "2",
            "role": {"type": "role", "value": "button"},
            "name": {"type": "computedString",
                     "value": format!("Action {i:04} with a long label that takes room")},
        }));
    }
    {
        let mut s = b.state.borrow_mut();
        s.cdp_replies.insert(
            "Page.getFrameTree".into(),
            json!({"frameTree": {"frame": {"id": "F", "url": "https://example.com/"}}}),
        );
        s.cdp_replies.insert(
            "Accessibility.getFullAXTree".into(),
            json!({ "nodes": nodes }),
        );
        s.cdp_replies.insert(
            "Runtime.evaluate".into(),
            json!({"result": {"value": {"doc": "doc-1", "n": 0}}}),
        );
    }
    b
}

fn run(b: &FakeBrowser, s: &mut Session, c: &Context, line: &str) -> String {
    let reply = block_on(execute(s, b, c, line));
    assert!(reply.ok, "`{line}` failed: {}", reply.output);
    reply.output
}

/// Runs `first` and then every next page it names; returns the pages.
fn all_pages(b: &FakeBrowser, s: &mut Session, c: &Context, first: &str) -> Vec<String> {
    let mut pages = Vec::new();
    let mut line = first.to_string();
    for _ in 0..100 {
        let out = run(b, s, c, &line);
        assert!(
            out.chars().count() <= MAX_OUTPUT_CHARS,
            "`{line}`: {}",
            out.len()
        );
        let next = split_footer(&out).1.map(|f| {
            f.split_once("; next: ")
                .expect(f)
                .1
                .trim_end_matches(']')
                .to_string()
        });
        pages.push(out);
        match next {
            Some(n) => line = n,
            None => return pages,
        }
    }
    panic!("more than 100 pages for `{first}`");
}

#[test]
fn a_listing_too_big_for_one_reply_pages_through_every_entry_once() {
    let b = big_page();
    let mut s = Session::default();
    let c = Context::new(&["example.com".to_string()], None).with_pages(PageCache::default());
    run(&b, &mut s, &c, "cd ~/tabs/101");
    run(&b, &mut s, &c, "cd main");
    for command in ["ls -l", "find action", "grep action", "read", "tree 2"] {
        let pages = all_pages(&b, &mut s, &c, command);
        assert!(
            pages.len() >= 2,
            "`{command}` fits one reply: make the page bigger"
        );
        let first = split_footer(&pages[0]).1.unwrap();
        assert!(
            first.starts_with(LEFT_OUT_PREFIX)
                && first.contains(&format!(
                    "({} in all)",
                    if command == "read" {
                        BUTTONS + 1
                    } else {
                        BUTTONS
                    }
                )),
            "{first}"
        );
        let mut seen: Vec<String> = Vec::new();
        for page in &pages {
            let (body, _) = split_footer(page);
            for line in body.split("\r\n") {
                if let Some(at) = line.find("Action ").or_else(|| line.find("action_")) {
                    seen.push(line[at..].chars().take(11).collect());
                }
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "`{command}`: no entry twice");
        assert_eq!(seen.len(), BUTTONS, "`{command}`: every entry once");
    }
    // A pipe keeps the line that says the command had more.
    let piped = run(&b, &mut s, &c, "ls -l | grep 0001");
    let (body, footer) = split_footer(&piped);
    assert!(
        footer.is_some_and(|f| f.contains("next: ls -l --offset ")),
        "{piped}"
    );
    assert!(body.split("\r\n").all(|l| l.contains("0001")), "{piped}");
}
