//! Lanes through the kernel against the in-memory browser: minting (and failing to mint
//! without leaving anything), confinement of every tab-choosing command, joining, per-lane
//! places, closing and what a closed lane does to the sessions in it.

use super::fake::{block_on, FakeBrowser};
use super::group::{LaneCell, LaneRequest};
use super::session::{Cwd, Session};
use super::{execute, Context, Reply};

fn ctx(lanes: &LaneCell, session: &str, request: LaneRequest) -> Context {
    Context::new(&[], None)
        .with_lanes(lanes.clone(), session, request, 1_000)
        .with_agent(&format!("{session}-client/1"))
}

fn run(s: &mut Session, b: &FakeBrowser, lanes: &LaneCell, name: &str, line: &str) -> Reply {
    run_with(s, b, lanes, name, LaneRequest::Keep { open: None }, line)
}

fn ok(s: &mut Session, b: &FakeBrowser, lanes: &LaneCell, name: &str, line: &str) -> String {
    let reply = run(s, b, lanes, name, line);
    assert!(reply.ok, "`{line}` failed: {}", reply.output);
    reply.output
}

/// Runs `line` in session `name` with the `EXECUTE` lane parameters `request`.
fn run_with(
    s: &mut Session,
    b: &FakeBrowser,
    lanes: &LaneCell,
    name: &str,
    request: LaneRequest,
    line: &str,
) -> Reply {
    block_on(execute(s, b, &ctx(lanes, name, request), line))
}

/// Session `name` mints a lane (no page); its id.
fn mint(s: &mut Session, b: &FakeBrowser, lanes: &LaneCell, name: &str) -> i64 {
    let reply = run_with(s, b, lanes, name, new_lane(None), "pwd");
    reply
        .lane
        .unwrap_or_else(|| panic!("no lane minted: {}", reply.output))
}

fn new_lane(url: Option<&str>) -> LaneRequest {
    LaneRequest::New {
        url: url.map(str::to_string),
        name: Some("research".into()),
        window: None,
    }
}

fn tab_count(b: &FakeBrowser) -> usize {
    b.state.borrow().tabs.len()
}

#[test]
fn a_mint_opens_a_grouped_background_tab_and_confines_the_session_to_it() {
    let b = FakeBrowser::standard();
    let lanes = LaneCell::default();
    let mut s = Session::default();
    let reply = run_with(
        &mut s,
        &b,
        &lanes,
        "agent-1",
        new_lane(Some("https://example.com/a")),
        "pwd",
    );
    assert!(reply.ok, "{}", reply.output);
    let lane = reply.lane.expect("the reply names the lane");
    assert!(
        reply.output.starts_with(&format!(
            "✓ New lane {lane} (🐚 research): tab 300 in window 1"
        )),
        "{}",
        reply.output
    );
    assert!(reply.output.ends_with("~/tabs/300"), "{}", reply.output);
    {
        let st = b.state.borrow();
        let tab = st.tabs.iter().find(|t| t.id == Some(300)).unwrap();
        assert_eq!(tab.group_id, Some(lane));
        assert!(!tab.active, "a lane's tab never takes the user's view");
        assert_eq!(st.groups[&lane].0, "🐚 research");
        // The user's active tab is still the active one.
        assert!(st.tabs.iter().find(|t| t.id == Some(100)).unwrap().active);
    }
    // Only the lane's tab is visible; the user's tabs are not, by any path.
    let tabs = ok(&mut s, &b, &lanes, "agent-1", "tabs");
    assert!(
        tabs.contains("300") && !tabs.contains("101") && !tabs.contains("200"),
        "{tabs}"
    );
    let refused = run(&mut s, &b, &lanes, "agent-1", "cd ~/tabs/101");
    assert!(
        !refused.ok && refused.output.contains("No such tab"),
        "{}",
        refused.output
    );
    let refused = run(&mut s, &b, &lanes, "agent-1", "close 101");
    assert!(
        !refused.ok && refused.output.contains("not in lane"),
        "{}",
        refused.output
    );
    assert!(b.url_of(101).is_some(), "the user's tab is still open");
    let windows = ok(&mut s, &b, &lanes, "agent-1", "windows");
    assert!(
        !windows.contains("200") && !windows.contains("Window 2"),
        "{windows}"
    );
    // `open` in a lane opens into the lane, in the background.
    ok(&mut s, &b, &lanes, "agent-1", "open https://example.com/b");
    {
        let st = b.state.borrow();
        let tab = st.tabs.iter().find(|t| t.id == Some(301)).unwrap();
        assert_eq!(tab.group_id, Some(lane));
        assert!(!tab.active);
    }
    assert_eq!(s.lane, Some(lane));
    // A shared session sees the user's tabs and none of the lane's.
    let mut user = Session::default();
    let tabs = ok(&mut user, &b, &lanes, "other", "tabs");
    assert!(
        tabs.contains("101") && !tabs.contains("300") && !tabs.contains("301"),
        "{tabs}"
    );
    let refused = run(&mut user, &b, &lanes, "other", "cd ~/tabs/300");
    assert!(!refused.ok, "{}", refused.output);
}

#[test]
fn a_failed_mint_says_why_and_leaves_nothing() {
    let b = FakeBrowser::standard();
    {
        let mut st = b.state.borrow_mut();
        st.window_kinds.insert(1, "popup".into());
        st.window_kinds.insert(2, "devtools".into());
    }
    let lanes = LaneCell::default();
    let mut s = Session::default();
    let before = tab_count(&b);
    let reply = run_with(&mut s, &b, &lanes, "a", new_lane(None), "tabs");
    assert!(!reply.ok);
    assert!(
        reply
            .output
            .contains("lane mint failed: no normal browser window"),
        "{}",
        reply.output
    );
    assert!(
        reply.output.contains("nothing was created"),
        "{}",
        reply.output
    );
    assert_eq!(tab_count(&b), before);
    assert!(lanes.borrow().is_empty() && s.lane.is_none() && reply.lane.is_none());
    // A window that cannot group: the tab opened for the lane is closed again.
    let b = FakeBrowser::standard();
    let asked = LaneRequest::New {
        url: None,
        name: None,
        window: Some(2),
    };
    b.state.borrow_mut().window_kinds.insert(2, "popup".into());
    let reply = run_with(&mut s, &b, &lanes, "a", asked, "tabs");
    assert!(
        reply.output.contains("window 2 is a 'popup' window"),
        "{}",
        reply.output
    );
    let asked = LaneRequest::New {
        url: None,
        name: None,
        window: Some(77),
    };
    let reply = run_with(&mut s, &b, &lanes, "a", asked, "tabs");
    assert!(
        reply.output.contains("window 77 not found"),
        "{}",
        reply.output
    );
    assert_eq!(tab_count(&b), 3);
    assert!(b.state.borrow().groups.is_empty());
}

#[test]
fn joining_keeps_a_place_per_lane_and_only_minted_lanes_can_be_joined() {
    let b = FakeBrowser::standard();
    let lanes = LaneCell::default();
    let mut a = Session::default();
    let lane = mint(&mut a, &b, &lanes, "a");
    // Session b joins by id, from the shared lane where it was in tab 101.
    let mut other = Session::default();
    ok(&mut other, &b, &lanes, "b", "cd ~/tabs/101");
    let reply = run_with(
        &mut other,
        &b,
        &lanes,
        "b",
        LaneRequest::Join(lane.to_string()),
        "pwd",
    );
    assert!(reply.ok, "{}", reply.output);
    assert_eq!(reply.lane, Some(lane));
    assert_eq!(reply.output, "~", "a new place in the lane");
    ok(&mut other, &b, &lanes, "b", "cd ~/tabs/300");
    // Back to the user's tabs: back in tab 101; and back to the lane: back in 300.
    let out = ok(&mut other, &b, &lanes, "b", "group detach");
    assert!(out.contains("~/tabs/101"), "{out}");
    let out = ok(&mut other, &b, &lanes, "b", &format!("group attach {lane}"));
    assert!(out.contains("~/tabs/300"), "{out}");
    assert_eq!(lanes.borrow().get(lane).unwrap().members, vec!["a", "b"]);
    // A group the user made is not a lane.
    b.state.borrow_mut().groups.insert(5, ("Banking".into(), 1));
    let reply = run_with(
        &mut other,
        &b,
        &lanes,
        "b",
        LaneRequest::Join("5".into()),
        "tabs",
    );
    assert!(
        !reply.ok && reply.output.contains("lane 5 does not exist"),
        "{}",
        reply.output
    );
    let reply = run(&mut other, &b, &lanes, "b", "group attach nope");
    assert!(reply.output.contains("not a lane id"), "{}", reply.output);
    let list = ok(&mut other, &b, &lanes, "b", "group list");
    assert!(
        list.contains(&format!(
            "* {lane}  🐚 research  a-client/1  1 tab(s)  2 session(s)"
        )),
        "{list}"
    );
}

#[test]
fn closing_a_lane_closes_its_tabs_and_a_session_left_in_it_runs_nothing() {
    let b = FakeBrowser::standard();
    let lanes = LaneCell::default();
    let mut a = Session::default();
    let lane = mint(&mut a, &b, &lanes, "a");
    ok(&mut a, &b, &lanes, "a", "open https://example.com/b");
    let mut other = Session::default();
    run_with(
        &mut other,
        &b,
        &lanes,
        "b",
        LaneRequest::Join(lane.to_string()),
        "pwd",
    );
    // A session outside the lane may not close it.
    let mut stranger = Session::default();
    let refused = run(
        &mut stranger,
        &b,
        &lanes,
        "c",
        &format!("group close {lane}"),
    );
    assert!(
        refused.output.contains("belongs to other sessions"),
        "{}",
        refused.output
    );
    let out = ok(&mut a, &b, &lanes, "a", "group close");
    assert_eq!(out, format!("✓ Closed lane {lane} and its 2 tab(s)"));
    assert_eq!(tab_count(&b), 3, "the user's three tabs are left");
    assert!(b.state.borrow().groups.is_empty());
    assert_eq!((a.lane, &a.cwd), (None, &Cwd::Root));
    // The other session's next line is refused, not run in the user's tabs.
    let reply = run(&mut other, &b, &lanes, "b", "tabs");
    assert!(
        !reply.ok && reply.output.contains("was closed, so nothing was done"),
        "{}",
        reply.output
    );
    assert_eq!((other.lane, &other.cwd), (None, &Cwd::Root));
}

#[test]
fn a_group_the_user_renamed_is_released_not_closed() {
    let b = FakeBrowser::standard();
    let lanes = LaneCell::default();
    let mut a = Session::default();
    let lane = mint(&mut a, &b, &lanes, "a");
    b.state.borrow_mut().groups.get_mut(&lane).unwrap().0 = "mine now".into();
    let out = ok(&mut a, &b, &lanes, "a", "group close");
    assert!(out.contains("released"), "{out}");
    assert_eq!(tab_count(&b), 4);
    assert!(lanes.borrow().is_empty());
}

#[test]
fn the_person_closes_any_lane_and_keeps_their_own_across_link_changes() {
    let b = FakeBrowser::standard();
    let lanes = LaneCell::default();
    let mut agent = Session::default();
    let lane = mint(&mut agent, &b, &lanes, "a");
    assert_eq!(lanes.borrow().get(lane).unwrap().agent, "a-client/1");
    // The person's hand stops an agent's lane without joining it.
    let mut person = Session::default();
    let out = ok(
        &mut person,
        &b,
        &lanes,
        super::lanes::PERSON,
        &format!("group close {lane}"),
    );
    assert_eq!(out, format!("✓ Closed lane {lane} and its 1 tab(s)"));
    assert_eq!(tab_count(&b), 3);
    // A lane the person makes is theirs: no server announces the person, so it is never
    // reaped after the link comes up, while an agent's unannounced lane is.
    let own = mint(&mut person, &b, &lanes, super::lanes::PERSON);
    let other = mint(&mut agent, &b, &lanes, "a");
    lanes.borrow_mut().link_up(0);
    let reaped = lanes.borrow_mut().reap(1_000_000, 1_000);
    assert_eq!(reaped.iter().map(|l| l.id).collect::<Vec<_>>(), [other]);
    assert!(lanes.borrow().get(own).is_some());
}
