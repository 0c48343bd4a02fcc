//! One deadline per command, end to end: headless Chromium with the built extension, the
//! fixture `mutating.html` (the document changes every 10 ms, forever) served on 127.0.0.1.
//!
//! Covered: `wait --timeout 2` for something that never appears returns within its timeout
//! plus 0.5 s, in the foreground tab and in a background one (whose timers Chromium
//! throttles); a client's cancellation of a running `wait` (the Python MCP SDK sends
//! `notifications/cancelled`, the server `CANCEL`) frees the session within a second: the
//! same session's next command answers at once.

use std::time::Duration;

use domshell_tests::page_rig::{fixture_server, tab_id_from};
use domshell_tests::python::PythonEnv;
use domshell_tests::server::{ready_bridge_port, server_binary};
use domshell_tests::{eventually, Chromium, PageRig, TEST_TOKEN};
use serde_json::{json, Value};

/// What `wait --timeout 2` may take at most: its timeout plus half a second.
const WAIT_BOUND: Duration = Duration::from_millis(2_500);

async fn wait_times_out_in_time(rig: &PageRig, place: &str) {
    let (ok, out, took) = rig
        .run_timed("wait never_there_at_all --timeout 2", 20_000)
        .await;
    assert!(!ok, "{place}: nothing matches, so the wait fails: {out}");
    assert!(
        out.contains("wait: timed out after 2s"),
        "{place}: the wait reports its own timeout: {out}"
    );
    assert!(
        took < WAIT_BOUND,
        "{place}: `wait --timeout 2` on a page changing every 10 ms took {took:?}"
    );
}

#[tokio::test]
async fn a_wait_on_a_page_that_never_stops_changing_ends_at_its_timeout() {
    let rig = PageRig::start().await;
    let tab = rig.open_fixture("mutating.html").await;
    let listed = rig.ok("ls main").await;
    assert!(listed.contains("log"), "{listed}");
    wait_times_out_in_time(&rig, "foreground tab").await;

    // Another tab in front: the mutating one is in the background now.
    rig.ok(&format!("open {}/welcome.html?user=ada", rig.base))
        .await;
    rig.ok(&format!("cd ~/tabs/{tab}")).await;
    let visible: Value = rig
        .page_value("/mutating.html", "document.visibilityState")
        .await;
    assert_eq!(visible, "hidden", "the tab under test is in the background");
    wait_times_out_in_time(&rig, "background tab").await;
}

#[tokio::test]
async fn a_cancelled_wait_frees_its_session_within_a_second() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .expect("the venv task runs")
        .expect("a Python venv with the mcp SDK");
    let chromium = Chromium::launch_built_extension()
        .await
        .expect("Chromium with the built extension (apt-get install -y chromium)");
    let pages = fixture_server(String::new()).await;
    let page = format!("http://127.0.0.1:{}/mutating.html", pages.port());

    let dir = tempfile::tempdir().expect("a temporary directory");
    let call = |label: &str, command: &str| {
        json!({"op": "call_tool", "name": "domshell_execute", "label": label,
               "arguments": {"command": command}})
    };
    let mut cancelled = call("wait", "wait never_there_at_all --timeout 30");
    cancelled["cancel_after_ms"] = json!(1_000);
    let plan = json!({
        "transport": {
            "type": "stdio",
            "command": server_binary().expect("the server is built").display().to_string(),
            "args": ["serve", "--ws-port", "0", "--token", TEST_TOKEN, "--connect-grace-ms", "15000",
                     "--ready-file", dir.path().join("ready.json").display().to_string(), "--no-audit",
                     "--allow-all", "--domains", "127.0.0.1"],
            "env": {"XDG_CONFIG_HOME": dir.path().display().to_string()},
        },
        "protocol": "legacy",
        "timeout_ms": 50_000,
        "steps": [
            {"op": "initialize"},
            call("open", &format!("open {page}")),
            cancelled,
            call("next", "pwd"),
        ],
    });
    let driver = tokio::spawn(async move { py.run_driver(&plan, Duration::from_secs(60)).await });

    let ready = dir.path().join("ready.json");
    let port = ready_bridge_port(&ready).await;
    let settings =
        json!({"bridge_token": TEST_TOKEN, "bridge_port": port, "bridge_alarm_period_ms": 1000});
    eventually(Duration::from_secs(10), Duration::from_millis(100), || {
        chromium.set_storage(settings.clone())
    })
    .await
    .expect("extension settings stored");

    let run = driver
        .await
        .expect("the driver task runs")
        .expect("the driver runs its plan");
    run.ensure_ok().expect("every step as planned");
    let opened = run.step("open").expect("the open step");
    assert_eq!(opened["is_error"], false, "{opened}");
    tab_id_from(opened["text"].as_str().unwrap_or_default());
    let wait = run.step("wait").expect("the wait step");
    assert_eq!(wait["cancelled"], true, "{wait}");
    let next = run.step("next").expect("the next step");
    assert_eq!(next["is_error"], false, "{next}");
    let text = next["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("~/tabs/"),
        "the session kept its place: {text}"
    );
    let took = next["elapsed_ms"].as_f64().unwrap_or(f64::MAX);
    eprintln!("the command after the cancelled wait answered in {took:.0} ms");
    assert!(
        took < 1_000.0,
        "the session's next command waited {took:.0} ms behind the cancelled wait"
    );
}
