//! Loops end to end: headless Chromium runs the built extension, fixture pages are served on
//! 127.0.0.1, and the Python MCP SDK calls `domshell_execute` over streamable HTTP.
//!
//! Covered: `each` over three tabs (entering each, coming back), `for` over a command's
//! output, `watch --until-change` on a page that changes, `watch` on a page that does not
//! (every run listed), and a client's cancellation stopping a running `watch` within a
//! second, the session free for its next command.

use std::time::Duration;

use domshell_tests::python::PythonEnv;
use domshell_tests::PageRig;
use serde_json::{json, Value};

fn call(label: &str, command: &str) -> Value {
    json!({"op": "call_tool", "name": "domshell_execute", "label": label,
           "arguments": {"command": command}})
}

#[tokio::test]
async fn for_each_and_watch_run_their_commands_and_a_cancelled_watch_stops() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("a Python venv with the mcp SDK");
    let rig = PageRig::start_with_args(5_000, &["--transport", "http"]).await;
    let base = rig.base.clone();
    let mut cancelled = call("cancelled", "watch --interval 0.5 --times 100 pwd");
    cancelled["cancel_after_ms"] = json!(1_000);
    let plan = json!({
        "transport": {
            "type": "http",
            "url": rig.server.http_url("/mcp"),
            "headers": {"Authorization": format!("Bearer {}", rig.server.mcp_token())},
        },
        "timeout_ms": 60_000,
        "steps": [
            {"op": "initialize"},
            call("open1", &format!("open {base}/welcome.html?user=w1")),
            call("open2", &format!("open {base}/welcome.html?user=w2")),
            call("open3", &format!("open {base}/welcome.html?user=w3")),
            call("each", "each --pattern user=w text"),
            call("where", "pwd"),
            call("for", "for each --pattern user=w pwd : echo visited {}"),
            {"op": "call_tool", "name": "domshell_execute", "label": "watch_same", "progress": true,
             "arguments": {"command": "watch --interval 0.5 --times 3 pwd"}},
            call("open_changing", &format!("open {base}/mutating.html")),
            call("until_change", "watch --interval 0.5 --times 10 --until-change text"),
            cancelled,
            call("next", "pwd"),
        ],
    });
    let run = py
        .run_driver(&plan, Duration::from_secs(90))
        .await
        .expect("the driver runs");
    for step in run.steps() {
        eprintln!("{}: {}", step["label"], step["text"]);
    }
    let text = |label: &str| -> String {
        let step = run.step(label).unwrap_or_else(|| panic!("no step {label}"));
        assert_eq!(step["is_error"], false, "{label}: {step}");
        step["text"].as_str().unwrap_or_default().to_string()
    };
    let each = text("each");
    assert_eq!(each.matches("=== tab ").count(), 3, "{each}");
    for user in ["w1", "w2", "w3"] {
        assert!(each.contains(&format!("Welcome, {user}")), "{each}");
    }
    // `each` came back to the tab the session was in (the third one it opened).
    let open3 = text("open3");
    let third = open3
        .split_whitespace()
        .nth(4)
        .unwrap_or_default()
        .to_string();
    assert!(
        text("where").starts_with(&format!("~/tabs/{third}")),
        "{open3}"
    );
    // Every line of the source is an item: each tab's header and its `pwd`.
    let looped = text("for");
    assert_eq!(
        looped.matches("$ echo visited ~/tabs/").count(),
        3,
        "{looped}"
    );
    assert_eq!(
        looped.matches("$ echo visited === tab").count(),
        3,
        "{looped}"
    );
    let same = text("watch_same");
    assert_eq!(same.matches("--- run ").count(), 3, "{same}");
    // The client that asked for progress heard each run as it started, in order.
    let progress = run.step("watch_same").expect("the watch step")["progress"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let messages: Vec<&str> = progress
        .iter()
        .filter_map(|p| p["message"].as_str())
        .collect();
    for n in 2..=3 {
        assert!(
            messages
                .iter()
                .any(|m| m.contains(&format!("watch: run {n} of 3"))),
            "{messages:?}"
        );
    }
    let values: Vec<f64> = progress
        .iter()
        .filter_map(|p| p["progress"].as_f64())
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] < w[1]),
        "progress must increase: {values:?}"
    );
    let changed = text("until_change");
    assert!(
        changed.contains("--- run 1: ") && changed.contains(": changed ---"),
        "{changed}"
    );
    let cancelled = run.step("cancelled").expect("the cancelled step");
    assert_eq!(cancelled["cancelled"], true, "{cancelled}");
    let next = run.step("next").expect("the next step");
    assert_eq!(next["is_error"], false, "{next}");
    let took = next["elapsed_ms"].as_f64().unwrap_or(f64::MAX);
    eprintln!("the command after the cancelled watch answered in {took:.0} ms");
    assert!(
        took < 1_000.0,
        "the session's next command waited {took:.0} ms behind the cancelled watch"
    );
}

#[tokio::test]
async fn scripts_and_bookmarks_outlive_the_worker_and_run_with_arguments() {
    // Under a domain allowlist the server refuses `script run`: it cannot see where the
    // stored commands go.
    let guarded = PageRig::start_with_args(5_000, &[]).await;
    let (status, body) = guarded
        .server
        .execute("script run anything", None)
        .await
        .expect("the debug route answers");
    assert_eq!(
        (status, body["error"]["reason"].as_str()),
        (403, Some("domain_denied")),
        "{body}"
    );
    drop(guarded);
    let rig = PageRig::start_without_allowlist(5_000, &[]).await;
    let tab = rig.open_fixture("welcome.html?user=saved").await;
    assert_eq!(
        rig.ok("bookmark hello").await,
        format!("✓ Bookmark @hello → ~/tabs/{tab}")
    );
    rig.ok("script save visit cd @$1 ; text ; echo $0 ran with $# argument(s)")
        .await;
    // Chrome stops the worker; the book comes back from the profile's storage.
    rig.chromium
        .stop_service_worker()
        .await
        .expect("the worker stops");
    rig.server
        .wait_for_link_state("connected", Duration::from_secs(15))
        .await
        .expect("the restarted worker reconnects");
    rig.ok("cd ~").await;
    let ran = rig.ok("script run visit hello").await;
    assert!(ran.contains("Welcome, saved"), "{ran}");
    assert!(ran.ends_with("visit ran with 1 argument(s)"), "{ran}");
    assert_eq!(rig.ok("pwd").await, format!("~/tabs/{tab}"));
    // `!N` runs the script again.
    rig.ok("cd ~").await;
    let history = rig.ok("history").await;
    let n = history
        .lines()
        .find(|l| l.contains("script run visit hello"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{history}"))
        .to_string();
    assert!(rig.ok(&format!("!{n}")).await.contains("Welcome, saved"));
    rig.ok("script delete visit").await;
    rig.ok("bookmark -d hello").await;
}
