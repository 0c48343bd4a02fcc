//! End to end through every real component: the Python MCP SDK spawns `domshell serve` over
//! stdio (as Claude Desktop does), headless Chromium runs the built extension, and
//! `domshell_execute` answers `tabs` and `pwd` from the real browser.

use std::time::Duration;

use domshell_tests::python::PythonEnv;
use domshell_tests::server::{ready_bridge_port, server_binary};
use domshell_tests::{eventually, Chromium, TEST_TOKEN};
use serde_json::json;

#[tokio::test]
async fn tabs_and_pwd_through_claude_desktop_style_stdio() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("a Python venv with the mcp SDK");
    let chromium = Chromium::launch_built_extension()
        .await
        .expect("Chromium with the built extension (apt-get install -y chromium)");

    let dir = tempfile::tempdir().unwrap();
    let plan = json!({
        "transport": {
            "type": "stdio",
            "command": server_binary().unwrap().display().to_string(),
            "args": ["serve", "--ws-port", "0", "--token", TEST_TOKEN, "--connect-grace-ms", "15000",
                     "--ready-file", dir.path().join("ready.json").display().to_string(), "--no-audit"],
            "env": {"XDG_CONFIG_HOME": dir.path().display().to_string()},
        },
        "protocol": "legacy",
        "timeout_ms": 50_000,
        "steps": [
            {"op": "initialize"},
            {"op": "call_tool", "name": "domshell_execute", "label": "tabs", "arguments": {"command": "tabs"}},
            {"op": "call_tool", "name": "domshell_execute", "label": "both", "arguments": {"command": "pwd\ntabs"}},
            {"op": "call_tool", "name": "domshell_status", "arguments": {}, "label": "status"},
        ],
    });
    let driver = tokio::spawn(async move { py.run_driver(&plan, Duration::from_secs(60)).await });

    // Point the extension at the port the stdio server bound.
    let ready = dir.path().join("ready.json");
    let port = ready_bridge_port(&ready).await;
    let settings =
        json!({"bridge_token": TEST_TOKEN, "bridge_port": port, "bridge_alarm_period_ms": 1000});
    eventually(Duration::from_secs(10), Duration::from_millis(100), || {
        chromium.set_storage(settings.clone())
    })
    .await
    .unwrap();

    let run = driver.await.unwrap().unwrap();
    run.ensure_ok().unwrap();
    let tabs = run.step("tabs").unwrap();
    assert_eq!(tabs["is_error"], false, "{tabs}");
    let text = tabs["text"].as_str().unwrap();
    assert!(text.contains("about:blank"), "the real tab list: {text}");
    assert!(text.ends_with("[lane: shared]"), "{text}");
    let both = run.step("both").unwrap();
    let text = both["text"].as_str().unwrap();
    assert!(text.starts_with("$ pwd\n~\n$ tabs\n"), "{text}");
    let status = run.step("status").unwrap();
    assert_eq!(status["structured_content"]["link"]["state"], "connected");
    assert_eq!(
        status["structured_content"]["link"]["extension_version"],
        env!("CARGO_PKG_VERSION")
    );
}
