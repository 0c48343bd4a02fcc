//! The DOM layer through the in-memory browser: which target a node's calls go to, the
//! isolated world they run in, one batched call per frame for listings, and the command's
//! object group released in every target it used.

use serde_json::{json, Value};

use super::fake::{block_on, FakeBrowser};
use super::{execute, Context, Reply, Session};

const FRAME_CROSS_SITE: &str = include_str!("../../tests/fixtures/ax/frame_cross_site.json");

/// Tab 101 showing a page with one out-of-process frame (session `S1`), recorded from
/// Chromium; `S1` answers every call the DOM layer makes.
fn framed_browser() -> FakeBrowser {
    let snapshot: Value = serde_json::from_str(FRAME_CROSS_SITE).unwrap();
    let frame = &snapshot["frames"][0];
    let b = FakeBrowser::standard();
    {
        let mut s = b.state.borrow_mut();
        s.cdp_replies.insert(
            "Page.getFrameTree".into(),
            json!({"frameTree": {"frame": {"id": snapshot["main"]["frameId"], "url": "https://example.com/"}}}),
        );
        s.cdp_replies.insert(
            "Accessibility.getFullAXTree".into(),
            json!({"nodes": snapshot["main"]["nodes"]}),
        );
        for method in ["Target.setAutoAttach", "DOM.getDocument"] {
            s.cdp_replies.insert(method.into(), json!({}));
        }
        s.cdp_replies.insert(
            "DOM.getFrameOwner".into(),
            json!({"backendNodeId": frame["ownerBackendNodeId"]}),
        );
        s.cdp_replies.insert(
            "DOM.resolveNode".into(),
            json!({"object": {"objectId": "main-object"}}),
        );
        s.frame_sessions.insert(
            101,
            vec![super::browser::FrameSession {
                frame_id: frame["frameId"].as_str().unwrap().into(),
                session_id: "S1".into(),
                ..Default::default()
            }],
        );
        let in_s1 = [
            (
                "Accessibility.getFullAXTree",
                json!({"nodes": frame["nodes"]}),
            ),
            (
                "Page.getFrameTree",
                json!({"frameTree": {"frame": {"id": frame["frameId"], "url": "https://partner.example/"}}}),
            ),
            (
                "Page.createIsolatedWorld",
                json!({"executionContextId": 42}),
            ),
            ("Target.setAutoAttach", json!({})),
            ("DOM.getDocument", json!({})),
            (
                "DOM.resolveNode",
                json!({"object": {"objectId": "frame-object"}}),
            ),
            (
                "Runtime.callFunctionOn",
                json!({"result": {"value": {"x": 1.0, "y": 1.0, "w": 1.0, "h": 1.0, "hit": true}}}),
            ),
            (
                "Runtime.evaluate",
                json!({"result": {"value": {"doc": "frame-doc", "n": 0}}}),
            ),
            ("Runtime.releaseObjectGroup", json!({})),
        ];
        for (method, reply) in in_s1 {
            s.session_replies
                .insert(("S1".into(), method.into()), reply);
        }
    }
    b
}

struct Shell {
    b: FakeBrowser,
    s: Session,
    c: Context,
}

impl Shell {
    fn in_framed_page() -> Shell {
        let mut sh = Shell {
            b: framed_browser(),
            s: Session::default(),
            c: Context::new(&["example.com".to_string()], None),
        };
        sh.ok("cd ~/tabs/101");
        sh
    }

    fn run(&mut self, line: &str) -> Reply {
        block_on(execute(&mut self.s, &self.b, &self.c, line))
    }

    fn ok(&mut self, line: &str) -> String {
        let reply = self.run(line);
        assert!(reply.ok, "`{line}` failed: {}", reply.output);
        reply.output
    }

    /// The calls made so far with their parameters, then forgotten.
    fn take_calls(&self) -> Vec<(String, Value)> {
        let mut s = self.b.state.borrow_mut();
        s.cdp_calls.clear();
        std::mem::take(&mut s.cdp_params)
            .into_iter()
            .map(|(_, m, p)| (m, p))
            .collect()
    }

    /// The path `find <name>` prints first.
    fn path_of(&mut self, name: &str) -> String {
        let found = self.ok(&format!("find {name}"));
        found
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string()
    }
}

fn calls_of<'a>(calls: &'a [(String, Value)], method: &str) -> Vec<&'a Value> {
    calls
        .iter()
        .filter(|(m, _)| m == method)
        .map(|(_, p)| p)
        .collect()
}

#[test]
fn a_node_of_an_out_of_process_frame_is_resolved_and_called_in_that_frames_session() {
    let mut sh = Shell::in_framed_page();
    let path = sh.path_of("subscribe");
    sh.take_calls();
    sh.ok(&format!("click {path}"));
    let calls = sh.take_calls();
    assert!(
        calls_of(&calls, "DOM.resolveNode").is_empty(),
        "never resolved in the tab, where the id means another node: {calls:?}"
    );
    let resolved = calls_of(&calls, "S1:DOM.resolveNode");
    assert!(!resolved.is_empty(), "{calls:?}");
    for params in &resolved {
        assert_eq!(params["backendNodeId"], 12, "the frame's own node id");
        assert_eq!(
            params["executionContextId"], 42,
            "in the isolated world made in that frame"
        );
    }
    let world = calls_of(&calls, "S1:Page.createIsolatedWorld");
    assert_eq!(world.len(), 1, "one world per frame and command: {calls:?}");
    assert_eq!(world[0]["worldName"], "domshell");
    // The frame's element was clicked through the DOM (its centre is in another
    // process's coordinates), in the frame's session.
    let clicked = calls_of(&calls, "S1:Runtime.callFunctionOn");
    assert!(clicked.iter().any(|p| p["functionDeclaration"]
        .as_str()
        .unwrap()
        .contains("this.click()")));
    assert!(calls_of(&calls, "Input.dispatchMouseEvent").is_empty());
}

#[test]
fn a_commands_object_group_is_released_in_every_target_it_used() {
    let mut sh = Shell::in_framed_page();
    let path = sh.path_of("subscribe");
    sh.b.state.borrow_mut().session_replies.insert(
        ("S1".into(), "Runtime.callFunctionOn".into()),
        json!({"result": {"value": {"text": "Subscribe", "shown": 9, "total": 9, "moreLines": 0}}}),
    );
    sh.take_calls();
    sh.ok(&format!("text {path}"));
    let calls = sh.take_calls();
    let group = calls_of(&calls, "S1:DOM.resolveNode")[0]["objectGroup"]
        .as_str()
        .unwrap()
        .to_string();
    let released = calls_of(&calls, "S1:Runtime.releaseObjectGroup");
    assert_eq!(released.len(), 1, "{calls:?}");
    assert_eq!(released[0]["objectGroup"], group.as_str());
    // The release comes after every call that made objects.
    let last_resolve = calls
        .iter()
        .rposition(|(m, _)| m == "S1:DOM.resolveNode")
        .unwrap();
    let release = calls
        .iter()
        .position(|(m, _)| m == "S1:Runtime.releaseObjectGroup")
        .unwrap();
    assert!(release > last_resolve);

    // The next command has a group of its own.
    sh.ok(&format!("text {path}"));
    let calls = sh.take_calls();
    let next = calls_of(&calls, "S1:DOM.resolveNode")[0]["objectGroup"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(next, group);
    assert_eq!(calls_of(&calls, "S1:Runtime.releaseObjectGroup").len(), 1);
}

#[test]
fn ls_text_and_meta_make_one_call_per_frame_not_per_row() {
    let mut sh = Shell::in_framed_page();
    let path = sh.path_of("partner_menu");
    sh.take_calls();
    let listed = sh.ok(&format!("ls --text --meta {path}"));
    let rows = listed.lines().count();
    assert!(rows >= 2, "{listed}");
    let calls = sh.take_calls();
    let batched = calls_of(&calls, "S1:Runtime.callFunctionOn");
    assert_eq!(
        batched.len(),
        2,
        "one call for --meta and one for --text over all {rows} rows: {calls:?}"
    );
    for call in &batched {
        // Every row's node is an argument of the one call, the shared arguments last.
        let args = call["arguments"].as_array().unwrap();
        assert_eq!(args.len(), rows + 1, "{call}");
        assert!(args[..rows].iter().all(|a| a["objectId"] == "frame-object"));
    }
}

#[test]
fn every_frame_session_is_asked_to_attach_the_frames_nested_in_it() {
    let sh = Shell::in_framed_page();
    let calls = sh.b.state.borrow().cdp_calls.clone();
    assert!(
        calls.contains(&(101, "Target.setAutoAttach".to_string())),
        "{calls:?}"
    );
    assert!(
        calls.contains(&(101, "S1:Target.setAutoAttach".to_string())),
        "without it, frames nested in S1 never attach: {calls:?}"
    );
}

#[test]
fn a_frame_that_changed_or_attached_makes_the_next_read_whole() {
    let mut sh = Shell::in_framed_page();
    let reads = |sh: &Shell| {
        sh.b.state
            .borrow()
            .cdp_calls
            .iter()
            .filter(|(_, m)| m == "S1:Accessibility.getFullAXTree")
            .count()
    };
    let before = reads(&sh);
    sh.ok("ls");
    assert_eq!(reads(&sh), before, "nothing changed: the tree is kept");
    // The frame's own tracker counted a change.
    sh.b.state.borrow_mut().session_replies.insert(
        ("S1".into(), "Runtime.evaluate".into()),
        json!({"result": {"value": {"doc": "frame-doc", "n": 3}}}),
    );
    sh.ok("ls");
    assert_eq!(reads(&sh), before + 1, "the frame's change is read");
    sh.ok("ls");
    assert_eq!(reads(&sh), before + 1);
    // Another frame attached.
    sh.b.state
        .borrow_mut()
        .frame_sessions
        .get_mut(&101)
        .unwrap()
        .push(super::browser::FrameSession {
            frame_id: "LATE".into(),
            session_id: "S2".into(),
            ..Default::default()
        });
    sh.ok("ls");
    assert_eq!(reads(&sh), before + 2, "a frame that attached late is read");
}
