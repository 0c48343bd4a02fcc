//! End to end with the real extension in headless Chromium: two stdio hosts attached to one
//! owner, the owner SIGKILLed; one host's server takes over, the other re-attaches, the real
//! extension redials the same port and lands on the new owner, and a real browser command
//! through each host succeeds. With lanes: each host mints one through the first owner, and
//! after the takeover each is still in its own lane (nothing minted twice); once the hosts
//! are gone their lanes are closed (tabs and tab groups counted before and after). Fails
//! (never skips) when Chromium or the built extension is missing.

use std::time::{Duration, Instant};

use domshell_tests::python::PythonEnv;
use domshell_tests::server::server_binary;
use domshell_tests::{eventually, Chromium, ServerOptions, ServerProcess, TEST_TOKEN};
use serde_json::{json, Value};

/// A host's stdio server; `key` is the relay key file all servers of the test share.
fn host_transport(dir: &std::path::Path, port: u16, key: &std::path::Path) -> Value {
    json!({
        "type": "stdio",
        "command": server_binary().expect("server binary").display().to_string(),
        "args": ["serve", "--ws-port", port.to_string(), "--token", TEST_TOKEN,
                 "--connect-grace-ms", "20000", "--no-audit",
                 "--relay-key-file", key.display().to_string()],
        "env": {
            "XDG_CONFIG_HOME": dir.display().to_string(),
            "XDG_STATE_HOME": dir.display().to_string(),
            "DOMSHELL_LOG": "debug",
        },
    })
}

fn tabs(label: &str) -> Value {
    json!({"op": "call_tool", "name": "domshell_execute", "arguments": {"command": "tabs"}, "label": label})
}

#[tokio::test]
async fn the_real_extension_follows_the_takeover_and_both_hosts_work() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .expect("venv task")
        .expect("a Python venv with the mcp SDK");
    let chromium = Chromium::launch_built_extension()
        .await
        .expect("Chromium with the built extension (apt-get install -y chromium)");
    let mut owner = ServerProcess::start(ServerOptions {
        connect_grace_ms: Some(20_000),
        ..Default::default()
    })
    .await
    .expect("owner starts");
    let port = owner.port();
    let settings =
        json!({"bridge_token": TEST_TOKEN, "bridge_port": port, "bridge_alarm_period_ms": 1000});
    eventually(Duration::from_secs(10), Duration::from_millis(100), || {
        chromium.set_storage(settings.clone())
    })
    .await
    .expect("extension settings written");
    owner
        .wait_for_link_state("connected", Duration::from_secs(20))
        .await
        .expect("the real extension connects to the owner");

    let barriers = tempfile::tempdir().unwrap();
    let barrier = |name: &str, count: usize| {
        json!({"op": "barrier", "dir": barriers.path().display().to_string(),
               "name": name, "count": count, "timeout_ms": 60_000, "label": name})
    };
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut drivers = Vec::new();
    for dir in &dirs {
        let plan = json!({
            "transport": host_transport(dir.path(), port, &owner.relay_key_path()),
            "protocol": "legacy",
            "timeout_ms": 100_000,
            "steps": [
                {"op": "initialize"},
                tabs("before"),
                // Both hosts attached and served; the test kills the owner, then lets them go.
                barrier("attached", 3),
                tabs("after"),
                {"op": "call_tool", "name": "domshell_status", "arguments": {}, "label": "status"},
                barrier("done", 2),
            ],
        });
        let py = py.clone();
        drivers.push(tokio::spawn(async move {
            py.run_driver(&plan, Duration::from_secs(110)).await
        }));
    }
    let arrived = || {
        std::fs::read_dir(barriers.path())
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrived() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(arrived(), 2, "both hosts were served by the first owner");
    let killed_pid = owner.pid();
    owner.kill().expect("SIGKILL the owner");
    let killed_at = Instant::now();
    std::fs::write(barriers.path().join("attached.test"), b"").unwrap();

    let mut runs = Vec::new();
    for driver in drivers {
        let run = driver.await.expect("driver task").expect("driver ran");
        run.ensure_ok()
            .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
        runs.push(run);
    }
    eprintln!(
        "both hosts had a real tab list again {:?} after the kill",
        killed_at.elapsed()
    );
    let mut roles = Vec::new();
    let mut owners = Vec::new();
    for run in &runs {
        for label in ["before", "after"] {
            let step = run.step(label).expect("step");
            assert_eq!(step["is_error"], false, "{step}");
            let text = step["text"].as_str().unwrap_or("");
            assert!(text.contains("about:blank"), "the real tab list: {text}");
        }
        let status = &run.step("status").expect("status")["structured_content"];
        assert_ne!(status["pid"], killed_pid, "{status}");
        assert_eq!(status["link"]["state"], "connected", "{status}");
        assert_eq!(
            status["link"]["extension_version"],
            env!("CARGO_PKG_VERSION"),
            "{status}"
        );
        roles.push(
            status["this_process"]["role"]
                .as_str()
                .unwrap_or("?")
                .to_string(),
        );
        owners.push(status["pid"].clone());
    }
    roles.sort();
    assert_eq!(roles, ["owner", "proxy"]);
    assert_eq!(owners[0], owners[1], "both hosts name the new owner");
}

/// Tab and tab-group counts of the whole browser, as the extension's worker sees them.
async fn census(chromium: &Chromium) -> (usize, usize) {
    let js = "Promise.all([chrome.tabs.query({}), chrome.tabGroups.query({})]).then(([t, g]) => [t.length, g.length])";
    let v = chromium
        .evaluate_in_worker(js)
        .await
        .expect("the worker answers");
    (
        v[0].as_u64().unwrap_or(0) as usize,
        v[1].as_u64().unwrap_or(0) as usize,
    )
}

/// The lane a reply names in its `[lane: …]` marker.
fn lane_in(text: &str) -> String {
    text.rsplit("[lane: ")
        .next()
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn lanes_live_through_an_owner_takeover_and_close_with_their_hosts() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .expect("venv task")
        .expect("a Python venv with the mcp SDK");
    let chromium = Chromium::launch_built_extension()
        .await
        .expect("Chromium with the built extension (apt-get install -y chromium)");
    let mut owner = ServerProcess::start(ServerOptions {
        connect_grace_ms: Some(20_000),
        ..Default::default()
    })
    .await
    .expect("owner starts");
    let port = owner.port();
    let settings =
        json!({"bridge_token": TEST_TOKEN, "bridge_port": port, "bridge_alarm_period_ms": 1000});
    eventually(Duration::from_secs(10), Duration::from_millis(100), || {
        chromium.set_storage(settings.clone())
    })
    .await
    .expect("extension settings written");
    owner
        .wait_for_link_state("connected", Duration::from_secs(20))
        .await
        .expect("the real extension connects to the owner");
    let before = census(&chromium).await;

    let barriers = tempfile::tempdir().unwrap();
    let barrier = |name: &str, count: usize| {
        json!({"op": "barrier", "dir": barriers.path().display().to_string(),
               "name": name, "count": count, "timeout_ms": 60_000, "label": name})
    };
    let execute = |label: &str, arguments: Value| json!({"op": "call_tool", "name": "domshell_execute", "arguments": arguments, "label": label});
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut drivers = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        // Minting a lane opens a tab, which the default rails (read only) refuse.
        let mut transport = host_transport(dir.path(), port, &owner.relay_key_path());
        if let Some(args) = transport["args"].as_array_mut() {
            args.push(json!("--allow-all"));
        }
        let plan = json!({
            "transport": transport,
            "protocol": "legacy",
            "timeout_ms": 100_000,
            "steps": [
                {"op": "initialize"},
                execute("mint", json!({"command": "pwd", "group_id": "new", "group_name": format!("host{i}")})),
                // Both lanes made through the first owner; the test kills it, then lets go.
                barrier("minted", 3),
                execute("after", json!({"command": "pwd\ngroup"})),
                barrier("done", 2),
            ],
        });
        let py = py.clone();
        drivers.push(tokio::spawn(async move {
            py.run_driver(&plan, Duration::from_secs(110)).await
        }));
    }
    let arrived = || {
        std::fs::read_dir(barriers.path())
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrived() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(arrived(), 2, "both hosts minted through the first owner");
    assert_eq!(census(&chromium).await, (before.0 + 2, 2), "one lane each");
    owner.kill().expect("SIGKILL the owner");
    std::fs::write(barriers.path().join("minted.test"), b"").unwrap();

    let mut runs = Vec::new();
    for driver in drivers {
        let run = driver.await.expect("driver task").expect("driver ran");
        run.ensure_ok()
            .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
        runs.push(run);
    }
    let mut lanes = Vec::new();
    for run in &runs {
        let text = |label: &str| {
            let step = run.step(label).expect("step");
            assert_eq!(step["is_error"], false, "{step}");
            step["text"].as_str().unwrap_or("").to_string()
        };
        let (minted, after) = (text("mint"), text("after"));
        let lane = lane_in(&minted);
        assert!(lane.parse::<i64>().is_ok(), "{minted}");
        // After the takeover the host's session is still in its own lane: nothing new.
        assert_eq!(lane_in(&after), lane, "{after}");
        assert!(after.contains(&format!("lane {lane} (")), "{after}");
        lanes.push(lane);
    }
    assert_ne!(lanes[0], lanes[1]);
    // Once both hosts are gone their lanes close: the new owner ended their sessions, or
    // the extension reaped the lanes none of whose sessions came back.
    let after = eventually(
        Duration::from_secs(30),
        Duration::from_millis(200),
        || async {
            let now = census(&chromium).await;
            anyhow::ensure!(now == before, "{now:?}, before {before:?}");
            Ok(now)
        },
    )
    .await;
    assert!(after.is_ok(), "the hosts' lanes are left: {after:?}");
}
