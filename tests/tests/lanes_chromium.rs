//! Lanes end to end: headless Chromium runs the built extension, the fixture page
//! `tests/fixtures/pages/lane.html` is served on 127.0.0.1, and the server runs with the
//! streamable HTTP transport.
//!
//! Covered: two MCP sessions of the Python SDK each mint a lane and work in it at the same
//! time (click, type, a `target=_blank` link whose tab joins the lane), each seeing only its
//! own tabs and never the user's; ending the sessions closes their lanes and leaves the
//! user's tab alone (tabs and tab groups counted before and after); a mint in a popup window
//! fails, says why and creates nothing; a service worker Chrome stopped resumes its lane, and
//! the reconnect mints nothing; a lane whose session the server no longer announces is
//! reaped.

use std::time::Duration;

use domshell_tests::python::PythonEnv;
use domshell_tests::{eventually, Chromium, PageRig};
use serde_json::{json, Value};

/// Tabs and tab groups of the whole browser, as the extension's worker sees them.
async fn census(chromium: &Chromium) -> (Vec<(i64, i64, String)>, usize) {
    let js = "Promise.all([chrome.tabs.query({}), chrome.tabGroups.query({})]).then(([t, g]) => JSON.stringify({tabs: t.map(x => [x.id, x.groupId, x.url]), groups: g.length}))";
    let text = chromium
        .evaluate_in_worker(js)
        .await
        .expect("the worker answers");
    let value: Value = serde_json::from_str(text.as_str().unwrap_or("{}")).unwrap_or_default();
    let tabs = value["tabs"]
        .as_array()
        .map(|tabs| {
            tabs.iter()
                .map(|t| {
                    (
                        t[0].as_i64().unwrap_or(0),
                        t[1].as_i64().unwrap_or(0),
                        t[2].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (tabs, value["groups"].as_u64().unwrap_or(0) as usize)
}

/// The census once no tab group is left and the browser holds `tabs` tabs again, within
/// 10 s (closing a lane is asynchronous).
async fn lanes_gone(
    rig: &PageRig,
    tabs: usize,
) -> anyhow::Result<(Vec<(i64, i64, String)>, usize)> {
    eventually(
        Duration::from_secs(10),
        Duration::from_millis(200),
        || async {
            let (now, groups) = census(&rig.chromium).await;
            if groups == 0 && now.len() == tabs {
                Ok((now, groups))
            } else {
                Err(anyhow::anyhow!("{groups} group(s), tabs {now:?}"))
            }
        },
    )
    .await
}

async fn debug(rig: &PageRig, body: Value) -> Value {
    let (status, body) = rig
        .server
        .execute_body(body)
        .await
        .expect("the debug route answers");
    assert_eq!(status, 200, "{body}");
    eprintln!("{body:#}");
    body
}

fn lane_of(reply: &Value) -> String {
    reply["lane"].as_str().unwrap_or_default().to_string()
}

/// One agent's plan: mint a lane at the fixture page, wait until both lanes are reported
/// (the test releases that barrier), read the status, click, type, open a link in a new
/// tab, wait until both links' tabs are in the browser (released by the test again), list
/// its tabs, wait for the other agent, and end (the SDK ends its HTTP session on close).
fn agent_plan(rig: &PageRig, barriers: &std::path::Path, name: &str) -> Value {
    let call = |label: &str, arguments: Value| json!({"op": "call_tool", "name": "domshell_execute", "label": label, "arguments": arguments});
    let dir = barriers.display().to_string();
    json!({
        "transport": {
            "type": "http",
            "url": rig.server.http_url("/mcp"),
            "headers": {"Authorization": format!("Bearer {}", rig.server.mcp_token())},
        },
        "timeout_ms": 60_000,
        "steps": [
            {"op": "initialize"},
            call("mint", json!({
                "command": "pwd",
                "group_id": "new",
                "group_name": name,
                "initial_url": format!("{}/lane.html", rig.base),
            })),
            {"op": "barrier", "dir": dir, "name": "minted", "count": 3, "timeout_ms": 30_000},
            {"op": "call_tool", "name": "domshell_status", "label": "status", "arguments": {}},
            call("work", json!({"command": format!("click count_btn\nclick count_btn\nfocus note_input\ntype {name}-was-here\ntext")})),
            call("link", json!({"command": "click open_welcome_link"})),
            {"op": "barrier", "dir": dir, "name": "linked", "count": 3, "timeout_ms": 30_000},
            call("tabs", json!({"command": "tabs --json\ngroup"})),
            {"op": "barrier", "dir": dir, "name": "done", "count": 2, "timeout_ms": 30_000},
        ],
    })
}

#[tokio::test]
async fn two_agents_work_in_their_own_lanes_and_leave_nothing_behind() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("a Python venv with the mcp SDK");
    let rig = PageRig::start_with_args(1_000, &["--transport", "http"]).await;
    // The user's own tab, which no agent may see or touch.
    let user_url = format!("{}/welcome.html?user=me", rig.base);
    rig.chromium
        .open_page(&user_url)
        .await
        .expect("the user's tab");
    let (before, groups_before) = census(&rig.chromium).await;
    assert_eq!(groups_before, 0);
    assert!(before.iter().any(|t| t.2 == user_url), "{before:?}");

    let barriers = tempfile::tempdir().unwrap();
    let (plan_a, plan_b) = (
        agent_plan(&rig, barriers.path(), "alpha"),
        agent_plan(&rig, barriers.path(), "beta"),
    );
    // The test's own part of the barriers: both lanes reported to the server, then both
    // links' tabs open, in groups (each in its own lane is what the agents' `tabs` show).
    let coordinate = async {
        eventually(
            Duration::from_secs(30),
            Duration::from_millis(100),
            || async {
                let health = rig.server.health().await?;
                match health["lanes"].as_array().map(Vec::len) {
                    Some(2) => Ok(()),
                    other => Err(anyhow::anyhow!("lanes reported: {other:?}")),
                }
            },
        )
        .await
        .expect("both lanes are reported");
        std::fs::write(barriers.path().join("minted.test"), "").expect("a barrier file");
        eventually(
            Duration::from_secs(30),
            Duration::from_millis(100),
            || async {
                let (tabs, _) = census(&rig.chromium).await;
                let mut per_group = std::collections::BTreeMap::<i64, usize>::new();
                for tab in tabs.iter().filter(|t| t.1 != -1) {
                    *per_group.entry(tab.1).or_default() += 1;
                }
                if per_group.len() == 2 && per_group.values().all(|n| *n == 2) {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("tabs per lane {per_group:?}: {tabs:?}"))
                }
            },
        )
        .await
        .expect("both links' tabs are in lanes");
        // Chrome brought each link's tab to the front; the user's view is given back.
        eventually(
            Duration::from_secs(10),
            Duration::from_millis(100),
            || async {
                let active = rig
                    .chromium
                    .evaluate_in_worker("chrome.tabs.query({active: true}).then(t => JSON.stringify(t.map(x => [x.groupId, x.url])))")
                    .await?;
                let text = active.as_str().unwrap_or_default().to_string();
                anyhow::ensure!(
                    text.contains("user=me") && !text.contains("user=lane"),
                    "active tabs: {text}"
                );
                Ok(())
            },
        )
        .await
        .expect("the user's tab is in front again");
        std::fs::write(barriers.path().join("linked.test"), "").expect("a barrier file");
    };
    let (a, b, ()) = tokio::join!(
        py.run_driver(&plan_a, Duration::from_secs(90)),
        py.run_driver(&plan_b, Duration::from_secs(90)),
        coordinate
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    a.ensure_ok().unwrap();
    b.ensure_ok().unwrap();

    let text = |run: &domshell_tests::python::DriverRun, label: &str| -> String {
        let step = run.step(label).unwrap_or_else(|| panic!("no step {label}"));
        assert_eq!(step["is_error"], false, "{label}: {step}");
        step["text"].as_str().unwrap_or_default().to_string()
    };
    let lane = |reply: &str| -> String {
        reply
            .rsplit("[lane: ")
            .next()
            .and_then(|rest| rest.strip_suffix(']'))
            .unwrap_or_default()
            .to_string()
    };
    let (mint_a, mint_b) = (text(&a, "mint"), text(&b, "mint"));
    let (lane_a, lane_b) = (lane(&mint_a), lane(&mint_b));
    assert!(
        lane_a.parse::<i64>().is_ok() && lane_b.parse::<i64>().is_ok(),
        "{mint_a}\n{mint_b}"
    );
    assert_ne!(lane_a, lane_b, "two agents, two lanes");
    assert!(
        mint_a.contains(&format!("✓ New lane {lane_a} (🐚 alpha)")),
        "{mint_a}"
    );
    // Both lanes are in the status, with their names, owners and tab counts.
    for run in [&a, &b] {
        let lanes = &run.step("status").unwrap()["structured_content"]["lanes"];
        let mut names: Vec<&str> = lanes
            .as_array()
            .unwrap_or_else(|| panic!("no lanes in the status: {lanes}"))
            .iter()
            .map(|l| l["name"].as_str().unwrap_or_default())
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["alpha", "beta"], "{lanes}");
        assert!(
            lanes.as_array().unwrap().iter().all(|l| l["tabs"] == 1
                && l["sessions"] == 1
                && l["owner"].as_str().is_some_and(|o| !o.is_empty())
                // The MCP client's own name and version, from its `initialize`.
                && l["agent"].as_str().is_some_and(|a| a.contains('/') && a != "debug-api")),
            "{lanes}"
        );
    }
    for (run, name, lane_id) in [(&a, "alpha", &lane_a), (&b, "beta", &lane_b)] {
        let work = text(run, "work");
        // Each agent's clicks and typing landed in its own page, not the other's.
        assert!(work.contains("clicked 2"), "{name}: {work}");
        assert!(
            work.contains(&format!("typed {name}-was-here")),
            "{name}: {work}"
        );
        assert!(
            work.ends_with(&format!("[lane: {lane_id}]")),
            "{name}: {work}"
        );
        let tabs = text(run, "tabs");
        // Its lane page and the page its link opened, nothing of the user's or the other's.
        assert!(
            tabs.contains("lane.html") && tabs.contains("user=lane"),
            "{name}: {tabs}"
        );
        assert!(
            !tabs.contains("user=me"),
            "{name} saw the user's tab: {tabs}"
        );
        assert_eq!(tabs.matches("lane.html").count(), 1, "{name}: {tabs}");
        assert!(
            tabs.contains(&format!("lane {lane_id} (🐚 {name}): 2 tab(s)")),
            "{name}: {tabs}"
        );
    }

    // Both sessions ended: their lanes are closed, the user's tab is where it was.
    let (after, groups_after) = lanes_gone(&rig, before.len())
        .await
        .expect("the lanes close when their sessions end");
    assert_eq!(groups_after, 0);
    assert_eq!(after, before, "exactly the tabs there were before");
}

#[tokio::test]
async fn failed_mints_leave_nothing_and_a_restarted_worker_keeps_its_lane() {
    let rig = PageRig::start_with_args(1_000, &["--transport", "http"]).await;
    let (before, _) = census(&rig.chromium).await;

    // A popup window cannot hold a tab group: the mint says so and creates nothing.
    let popup = rig
        .chromium
        .evaluate_in_worker(
            "chrome.windows.create({type: 'popup', url: 'about:blank'}).then(w => w.id)",
        )
        .await
        .expect("a popup window");
    let popup = popup.as_i64().expect("a window id");
    let (with_popup, _) = census(&rig.chromium).await;
    let failed = debug(
        &rig,
        json!({"session": "p", "command": "tabs", "group_id": "new", "window_id": popup}),
    )
    .await;
    assert_eq!(failed["ok"], false);
    let output = failed["output"].as_str().unwrap_or_default();
    assert!(
        output.contains(&format!("window {popup} is a 'popup' window")),
        "{output}"
    );
    assert!(output.contains("nothing was created"), "{output}");
    assert_eq!(lane_of(&failed), "none (the new lane was not made)");
    let failed = debug(
        &rig,
        json!({"session": "p", "command": "tabs", "group_id": "new", "window_id": 987654}),
    )
    .await;
    assert!(failed["output"]
        .as_str()
        .unwrap_or_default()
        .contains("window 987654 not found"));
    let ids = |tabs: &[(i64, i64, String)]| -> Vec<(i64, i64)> {
        tabs.iter().map(|t| (t.0, t.1)).collect()
    };
    let (now, groups) = census(&rig.chromium).await;
    assert_eq!(
        (ids(&now), groups),
        (ids(&with_popup), 0),
        "nothing was created"
    );
    rig.chromium
        .evaluate_in_worker(&format!("chrome.windows.remove({popup}).then(() => 1)"))
        .await
        .expect("the popup closes");

    // A lane minted, then the worker stopped by Chrome: it comes back with its lane and
    // its place, the server announces the session again, and nothing is minted twice.
    let url = format!("{}/lane.html", rig.base);
    let minted = debug(&rig, json!({"session": "w", "command": "click count_btn", "group_id": "new", "initial_url": url})).await;
    assert_eq!(minted["ok"], true, "{minted}");
    let lane = lane_of(&minted);
    rig.chromium
        .stop_service_worker()
        .await
        .expect("the worker stops");
    rig.server
        .wait_for_link_state("connected", Duration::from_secs(15))
        .await
        .expect("the restarted worker reconnects");
    let resumed = debug(
        &rig,
        json!({"session": "w", "command": "pwd\ntext\ngroup list"}),
    )
    .await;
    assert_eq!(resumed["ok"], true, "{resumed}");
    assert_eq!(lane_of(&resumed), lane, "the same lane, not a new one");
    let out = resumed["output"].as_str().unwrap_or_default();
    assert!(
        out.contains("clicked 1"),
        "the same page, read after the restart: {out}"
    );
    assert!(out.contains("1 lane(s):"), "{out}");
    // Past the grace period (three of the server's 1 s silence limits) it is still there:
    // its session was announced again.
    tokio::time::sleep(Duration::from_millis(3_600)).await;
    let (tabs, groups) = census(&rig.chromium).await;
    assert_eq!((tabs.len(), groups), (before.len() + 1, 1), "{tabs:?}");
    // `/health` lists it without its owner.
    let health = rig.server.health().await.expect("/health answers");
    assert_eq!(health["lanes"][0]["id"], lane.as_str(), "{health}");
    assert_eq!(health["lanes"][0]["tabs"], 1, "{health}");
    assert!(health["lanes"][0].get("owner").is_none(), "{health}");

    // Another session joins it by id, and a user's group is not a lane.
    let joined = debug(
        &rig,
        json!({"session": "j", "command": "tabs", "group_id": lane}),
    )
    .await;
    assert_eq!(joined["ok"], true, "{joined}");
    assert!(joined["output"]
        .as_str()
        .unwrap_or_default()
        .contains("lane.html"));
    let closed = debug(&rig, json!({"session": "j", "command": "group close"})).await;
    assert!(
        closed["output"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("✓ Closed lane {lane} and its 1 tab(s)")),
        "{closed}"
    );
    // The minting session's next line is refused, not run in the user's tabs.
    let refused = debug(&rig, json!({"session": "w", "command": "tabs"})).await;
    assert!(
        refused["output"]
            .as_str()
            .unwrap_or_default()
            .contains("was closed, so nothing was done"),
        "{refused}"
    );
    assert_eq!(census(&rig.chromium).await, (before, 0));
}

#[tokio::test]
async fn a_lane_whose_server_died_is_reaped_after_the_grace_period() {
    let mut rig = PageRig::start_with_args(1_000, &["--transport", "http"]).await;
    let (before, _) = census(&rig.chromium).await;
    let url = format!("{}/lane.html", rig.base);
    let minted = debug(
        &rig,
        json!({"session": "r", "command": "pwd", "group_id": "new", "initial_url": url}),
    )
    .await;
    assert_eq!(minted["ok"], true, "{minted}");
    assert_eq!(census(&rig.chromium).await.1, 1);
    // Killed, it ends no session: the extension only learns that the new server on the
    // port does not know this one.
    let port = rig.server.port();
    let opts = rig.server.options().clone();
    rig.server.kill().expect("the server is killed");
    rig.server = domshell_tests::ServerProcess::start_on_port(port, opts)
        .await
        .expect("a new server on the same port");
    rig.server
        .wait_for_link_state("connected", Duration::from_secs(15))
        .await
        .expect("the extension reconnects");
    let (after, groups) = lanes_gone(&rig, before.len())
        .await
        .expect("the orphan lane is reaped");
    assert_eq!((after, groups), (before, 0));
}
