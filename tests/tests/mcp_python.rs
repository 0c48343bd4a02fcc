//! The MCP surface driven by a real third-party client, the Python `mcp` SDK (2.3.0), against
//! the real `domshell` binary and a fake extension: stdio and streamable HTTP, multi-line
//! calls, lane trailers, `isError` results, status, progress, cancellation, logging, the
//! bearer token, HTTP session semantics, fail-fast errors and the tier policy.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domshell_tests::python::{DriverRun, PythonEnv};
use domshell_tests::raw_mcp::RawMcp;
use domshell_tests::server::{ready_bridge_port, server_binary};
use domshell_tests::{
    eventually, FakeExtension, FakeOptions, ServerOptions, ServerProcess, TEST_MCP_TOKEN,
    TEST_TOKEN,
};
use serde_json::{json, Value};
use shared_protocol::frame::Frame;

const DRIVER_TIMEOUT: Duration = Duration::from_secs(60);

async fn python() -> PythonEnv {
    tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .expect("venv task")
        .expect("a Python venv with the mcp SDK (needs python3 and PyPI)")
}

fn call_step(label: &str, command: &str) -> Value {
    json!({"op": "call_tool", "name": "domshell_execute", "arguments": {"command": command}, "label": label})
}

fn step<'a>(run: &'a DriverRun, label: &str) -> &'a Value {
    run.step(label)
        .unwrap_or_else(|| panic!("no step {label}:\n{}", run.failure_report()))
}

fn structured<'a>(step: &'a Value, key: &str) -> &'a Value {
    &step["structured_content"][key]
}

/// Arguments that start a stdio server writing its ready file into `dir`.
fn stdio_server_args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "serve",
        "--ws-port",
        "0",
        "--token",
        TEST_TOKEN,
        "--ping-interval-ms",
        "200",
        "--silence-limit-ms",
        "1000",
        "--progress-interval-ms",
        "100",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push("--ready-file".into());
    args.push(dir.join("ready.json").display().to_string());
    args.push("--audit-log".into());
    args.push(dir.join("audit.log").display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn stdio_transport(dir: &Path, extra: &[&str]) -> Value {
    json!({
        "type": "stdio",
        "command": server_binary().expect("server binary").display().to_string(),
        "args": stdio_server_args(dir, extra),
        "env": {
            "XDG_CONFIG_HOME": dir.display().to_string(),
            "XDG_STATE_HOME": dir.display().to_string(),
            "DOMSHELL_LOG": "debug",
        },
    })
}

/// The bridge port of a server the driver spawned, once it listens.
async fn wait_ready(dir: &Path) -> u16 {
    ready_bridge_port(&dir.join("ready.json")).await
}

#[tokio::test]
async fn stdio_session_with_the_python_sdk() {
    let py = python().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = json!({
        "transport": stdio_transport(dir.path(), &[]),
        "protocol": "legacy",
        "timeout_ms": 45_000,
        "steps": [
            {"op": "initialize"},
            {"op": "set_logging_level", "level": "info", "label": "level"},
            {"op": "list_tools", "label": "tools"},
            call_step("single", "pwd"),
            call_step("multi", "pwd\necho hi\nrefresh\necho after"),
            call_step("denied", "click submit_btn"),
            {"op": "call_tool", "name": "domshell_execute", "label": "progress", "progress": true,
             "arguments": {"command": "sleep 700"}},
            {"op": "call_tool", "name": "domshell_execute", "label": "cancel", "cancel_after_ms": 300,
             "arguments": {"command": "sleep 5000"}},
            {"op": "call_tool", "name": "domshell_status", "arguments": {}, "label": "status"},
            {"op": "call_tool", "name": "domshell_execute", "label": "bad_args",
             "arguments": {"cmd": "pwd"}},
        ],
    });
    let driver = tokio::spawn(async move { py.run_driver(&plan, DRIVER_TIMEOUT).await });
    let port = wait_ready(dir.path()).await;
    let fake = FakeExtension::connect(
        &format!("ws://127.0.0.1:{port}/bridge"),
        FakeOptions::default(),
    )
    .await
    .expect("fake extension connects to the stdio server's bridge");
    let run = driver.await.unwrap().unwrap();
    run.ensure_ok().unwrap();

    assert_eq!(run.result["server_info"]["name"], "domshell");
    let mut names = run.tool_names();
    names.sort();
    assert_eq!(names, vec!["domshell_execute", "domshell_status"]);
    let tools = step(&run, "tools")["tools"].as_array().unwrap();
    // What an agent reads before its first call, as the client received it: the instructions
    // and the tool's description together stay under 2,000 characters.
    let described = tools
        .iter()
        .find(|t| t["name"] == "domshell_execute")
        .and_then(|t| t["description"].as_str())
        .map_or(0, |d| d.chars().count());
    let instructions = run.result["instructions_length"].as_u64().unwrap() as usize;
    assert!(
        instructions + described < 2_000,
        "{instructions} + {described}"
    );
    let status_tool = tools
        .iter()
        .find(|t| t["name"] == "domshell_status")
        .unwrap();
    assert_eq!(status_tool["annotations"]["readOnlyHint"], true);

    let single = step(&run, "single");
    assert_eq!(single["is_error"], false);
    assert_eq!(single["text"], "~\n[lane: shared]");

    let multi = step(&run, "multi");
    assert_eq!(multi["is_error"], true, "{multi}");
    assert_eq!(
        multi["text"],
        "$ pwd\n~\n$ echo hi\nhi\n$ refresh\nrefresh: command not found\n$ echo after\nafter\n[lane: shared]"
    );
    assert_eq!(structured(multi, "reason"), "command_failed");
    assert_eq!(structured(multi, "failed_lines")[0]["line"], "refresh");

    let denied = step(&run, "denied");
    assert_eq!(denied["is_error"], true);
    assert_eq!(structured(denied, "reason"), "tier_denied");
    assert!(
        denied["text"].as_str().unwrap().contains("--allow-write"),
        "{denied}"
    );
    assert_eq!(
        fake.received()
            .iter()
            .filter(|f| matches!(f, Frame::Execute { command, .. } if command.contains("click")))
            .count(),
        0,
        "a denied command never reaches the extension"
    );

    let progress = step(&run, "progress");
    assert_eq!(progress["is_error"], false, "{progress}");
    assert!(
        progress["progress"].as_array().map_or(0, Vec::len) >= 3,
        "progress notifications every 100 ms during a 700 ms command: {progress}"
    );

    let cancel = step(&run, "cancel");
    assert_eq!(cancel["cancelled"], true, "{cancel}");
    let Frame::Execute { id, .. } = fake
        .wait_for_frame(
            |f| matches!(f, Frame::Execute { command, .. } if command == "sleep 5000"),
            Duration::from_secs(1),
        )
        .await
        .unwrap()
    else {
        unreachable!()
    };
    fake.wait_for_frame(
        |f| matches!(f, Frame::Cancel { id: c } if *c == id),
        Duration::from_secs(3),
    )
    .await
    .expect("the client's cancellation reaches the extension as CANCEL");

    // Wrong arguments are a readable tool error, not a hidden protocol error.
    let bad = step(&run, "bad_args");
    assert_eq!(bad["is_error"], true, "{bad}");
    assert_eq!(structured(bad, "reason"), "invalid_arguments");
    assert!(bad["text"].as_str().unwrap().contains("command"), "{bad}");

    let status = step(&run, "status");
    assert_eq!(structured(status, "link")["state"], "connected");
    assert_eq!(structured(status, "transport"), "stdio");
    assert!(structured(status, "remediation").is_null());

    // Every executed line shares one shell session, announced (and acknowledged) once.
    let sessions: Vec<String> = fake
        .received()
        .iter()
        .filter_map(|f| match f {
            Frame::SessionStart { session, .. } => Some(session.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    for frame in fake.received() {
        if let Frame::Execute { session, .. } = frame {
            assert_eq!(session, sessions[0]);
        }
    }

    // The audit log recorded every line, the denied one included.
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).expect("audit log written");
    let entries: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(entries
        .iter()
        .any(|e| e["outcome"] == "denied" && e["command"].as_str().unwrap().starts_with("click")));
    assert!(entries
        .iter()
        .any(|e| e["command"] == "echo hi" && e["outcome"] == "ok"));
    // When the host closes stdin the server exits by itself (the driver waited for that).
    assert!(
        run.result["shutdown_error"].is_null(),
        "{}",
        run.result["shutdown_error"]
    );
}

async fn http_server(extra: &[&str]) -> (ServerProcess, FakeExtension) {
    let mut extra_args: Vec<String> = vec![
        "--transport".into(),
        "http".into(),
        "--progress-interval-ms".into(),
        "100".into(),
    ];
    extra_args.extend(extra.iter().map(|s| s.to_string()));
    let server = ServerProcess::start(ServerOptions {
        extra_args,
        connect_grace_ms: Some(500),
        ..Default::default()
    })
    .await
    .unwrap();
    let fake = FakeExtension::connect(&server.bridge_url(), FakeOptions::default())
        .await
        .unwrap();
    (server, fake)
}

fn http_transport(server: &ServerProcess, token: Option<&str>) -> Value {
    let headers = match token {
        Some(t) => json!({"Authorization": format!("Bearer {t}")}),
        None => json!({}),
    };
    json!({"type": "http", "url": server.http_url("/mcp"), "headers": headers})
}

#[tokio::test]
async fn http_sessions_with_the_python_sdk_in_both_protocol_eras() {
    let py = python().await;
    let (server, fake) = http_server(&[]).await;
    for protocol in ["legacy", "modern"] {
        let plan = json!({
            "transport": http_transport(&server, Some(TEST_MCP_TOKEN)),
            "protocol": protocol,
            "timeout_ms": 30_000,
            "steps": [
                {"op": "list_tools"},
                call_step("multi", "pwd\necho two"),
                {"op": "call_tool", "name": "domshell_execute", "label": "progress", "progress": true,
                 "arguments": {"command": "sleep 600"}},
                {"op": "call_tool", "name": "domshell_status", "arguments": {}, "label": "status"},
            ],
        });
        let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
        run.ensure_ok().unwrap();
        let multi = step(&run, "multi");
        assert_eq!(multi["is_error"], false, "{protocol}: {multi}");
        assert_eq!(multi["text"], "$ pwd\n~\n$ echo two\ntwo\n[lane: shared]");
        assert!(
            step(&run, "progress")["progress"]
                .as_array()
                .map_or(0, Vec::len)
                >= 3,
            "{protocol}"
        );
        assert_eq!(structured(step(&run, "status"), "transport"), "http");
        if protocol == "modern" {
            assert_eq!(run.protocol_version(), Some("2026-07-28"));
        }
    }
    // The stateless (2026-07-28) client got a shell session of its own identity.
    assert!(fake.received().iter().any(
        |f| matches!(f, Frame::SessionStart { session, .. } if session.starts_with("client:"))
    ));
}

#[tokio::test]
async fn http_tool_calls_need_the_token_but_discovery_does_not() {
    let py = python().await;
    let (server, fake) = http_server(&[]).await;
    for token in [None, Some("wrong-token")] {
        let plan = json!({
            "transport": http_transport(&server, token),
            "protocol": "legacy",
            "timeout_ms": 20_000,
            "steps": [
                {"op": "list_tools", "label": "tools"},
                {"op": "call_tool", "name": "domshell_execute", "arguments": {"command": "pwd"},
                 "label": "call", "expect_error": true},
            ],
        });
        let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
        run.ensure_ok().unwrap();
        assert_eq!(run.tool_names().len(), 2);
        // Legacy-era requests carry no Mcp-Method header, so find the refusal by its status.
        let refusals = run.result["http"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["method"] == "POST" && h["status"] == 401)
            .count();
        assert_eq!(refusals, 1, "{token:?}: {}", run.result["http"]);
    }
    assert_eq!(fake.count("EXECUTE"), 0, "nothing ran without the token");
}

#[tokio::test]
async fn http_session_ids_are_enforced_and_delete_ends_the_shell_session() {
    let (server, fake) = http_server(&[]).await;
    let raw = RawMcp::new(server.http_url("/mcp"), Some(TEST_MCP_TOKEN));
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let (status, session, body) = raw.post(None, init).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let session = session.expect("an Mcp-Session-Id");
    let (status, _, _) = raw
        .post(
            Some(&session),
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await
        .unwrap();
    assert!(status == 202 || status == 200, "{status}");

    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "domshell_execute", "arguments": {"command": "pwd"}}});
    let (status, _, body) = raw.post(Some(&session), call.clone()).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["content"][0]["text"], "~\n[lane: shared]");
    let Frame::SessionStart { session: shell, .. } = fake
        .wait_for_frame(
            |f| matches!(f, Frame::SessionStart { .. }),
            Duration::from_secs(1),
        )
        .await
        .unwrap()
    else {
        unreachable!()
    };

    // An id the server never issued: 404, so the client knows to initialize again.
    let (status, _, _) = raw.post(Some("not-a-session"), call.clone()).await.unwrap();
    assert_eq!(status, 404);
    // No id on a non-initialize request: 400.
    let (status, _, _) = raw.post(None, call.clone()).await.unwrap();
    assert_eq!(status, 400);

    // DELETE ends the MCP session, and with it the shell session in the extension.
    let response = reqwest::Client::new()
        .delete(server.http_url("/mcp"))
        .header("Mcp-Session-Id", &session)
        .header("MCP-Protocol-Version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    fake.wait_for_frame(
        |f| matches!(f, Frame::SessionEnd { session: s, .. } if *s == shell),
        Duration::from_secs(3),
    )
    .await
    .expect("SESSION_END for the deleted session");
    let (status, _, _) = raw.post(Some(&session), call).await.unwrap();
    assert_eq!(status, 404, "a deleted session is gone");
}

#[tokio::test]
async fn http_refuses_foreign_hosts_and_origins() {
    let (server, _fake) = http_server(&[]).await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}});
    let client = reqwest::Client::new();
    let send = |host: Option<&'static str>, origin: Option<&'static str>| {
        let mut request = client
            .post(server.http_url("/mcp"))
            .header("Accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(h) = host {
            request = request.header("Host", h);
        }
        if let Some(o) = origin {
            request = request.header("Origin", o);
        }
        request.send()
    };
    assert!(send(None, None).await.unwrap().status().is_success());
    assert!(send(None, Some("http://127.0.0.1:5173"))
        .await
        .unwrap()
        .status()
        .is_success());
    assert_eq!(
        send(Some("evil.example.com"), None)
            .await
            .unwrap()
            .status()
            .as_u16()
            / 100,
        4
    );
    assert_eq!(
        send(None, Some("https://evil.example.com"))
            .await
            .unwrap()
            .status()
            .as_u16()
            / 100,
        4
    );
}

#[tokio::test]
async fn calls_fail_fast_when_the_extension_is_gone_or_silent() {
    let py = python().await;
    // No extension at all: the grace (500 ms) then an actionable error.
    let server = ServerProcess::start(ServerOptions {
        extra_args: vec!["--transport".into(), "http".into()],
        connect_grace_ms: Some(500),
        ..Default::default()
    })
    .await
    .unwrap();
    let plan = json!({
        "transport": http_transport(&server, Some(TEST_MCP_TOKEN)),
        "protocol": "legacy",
        "timeout_ms": 20_000,
        "steps": [
            call_step("absent", "pwd"),
            {"op": "call_tool", "name": "domshell_status", "arguments": {}, "label": "status"},
        ],
    });
    let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
    run.ensure_ok().unwrap();
    let absent = step(&run, "absent");
    assert_eq!(absent["is_error"], true);
    assert_eq!(structured(absent, "reason"), "extension_not_connected");
    assert_eq!(structured(absent, "retryable"), true);
    assert!(absent["elapsed_ms"].as_f64().unwrap() < 1_500.0, "{absent}");
    let status = step(&run, "status");
    assert_eq!(structured(status, "link")["state"], "waiting");
    assert!(structured(status, "remediation")
        .as_str()
        .unwrap()
        .contains("domshell token"));

    // An extension that went silent mid-command: the link is declared dead at the silence
    // limit (1 s) and the call answered at once, long before any client timeout.
    let fake = FakeExtension::connect(&server.bridge_url(), FakeOptions::default())
        .await
        .unwrap();
    let server = Arc::new(server);
    let plan = json!({
        "transport": http_transport(&server, Some(TEST_MCP_TOKEN)),
        "protocol": "legacy",
        "timeout_ms": 20_000,
        "steps": [call_step("silent", "sleep 30000\npwd")],
    });
    let started = Instant::now();
    let run = {
        let py = py.clone();
        let driver = tokio::spawn(async move { py.run_driver(&plan, DRIVER_TIMEOUT).await });
        fake.wait_for_frame(
            |f| matches!(f, Frame::Execute { .. }),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        fake.set_answer_pings(false);
        driver.await.unwrap().unwrap()
    };
    run.ensure_ok().unwrap();
    let silent = step(&run, "silent");
    assert_eq!(silent["is_error"], true);
    assert_eq!(structured(silent, "reason"), "extension_link_lost");
    let text = silent["text"].as_str().unwrap();
    assert!(
        text.contains("$ pwd\nError: not run"),
        "the second line is not run blind: {text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(
        silent["elapsed_ms"].as_f64().unwrap() < 1_000.0 + 1_000.0 + 500.0,
        "{silent}"
    );
}

#[tokio::test]
async fn clients_hear_when_the_extension_link_drops() {
    let py = python().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = json!({
        "transport": stdio_transport(dir.path(), &[]),
        "protocol": "legacy",
        "timeout_ms": 30_000,
        "steps": [
            {"op": "initialize"},
            {"op": "set_logging_level", "level": "info"},
            call_step("first", "pwd"),
            {"op": "sleep", "ms": 2_500},
        ],
    });
    let driver = tokio::spawn(async move { py.run_driver(&plan, DRIVER_TIMEOUT).await });
    let port = wait_ready(dir.path()).await;
    let fake = FakeExtension::connect(
        &format!("ws://127.0.0.1:{port}/bridge"),
        FakeOptions::default(),
    )
    .await
    .unwrap();
    // Once the first command has run (so the client has set its level), drop the extension.
    fake.wait_for_frame(
        |f| matches!(f, Frame::Execute { .. }),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    // ... and its RESULT is back at the server (nothing pending), so the call itself succeeds.
    let health = format!("http://127.0.0.1:{port}/health");
    eventually(
        Duration::from_secs(5),
        Duration::from_millis(10),
        || async {
            let doc: Value = reqwest::get(&health).await?.json().await?;
            anyhow::ensure!(doc["link"]["pending_requests"] == 0, "pending: {doc}");
            Ok(())
        },
    )
    .await
    .unwrap();
    fake.abort();
    let run = driver.await.unwrap().unwrap();
    run.ensure_ok().unwrap();
    let logs = run.logs();
    assert!(
        logs.iter()
            .any(|l| l["data"]["event"] == "extension_disconnected" && l["level"] == "warning"),
        "a warning log notification names the disconnect: {logs:?}"
    );
}

#[tokio::test]
async fn navigation_and_nested_commands_are_gated_by_tier() {
    let py = python().await;
    let (server, fake) = http_server(&[]).await;
    let plan = json!({
        "transport": http_transport(&server, Some(TEST_MCP_TOKEN)),
        "protocol": "legacy",
        "timeout_ms": 20_000,
        "steps": [
            {"op": "call_tool", "name": "domshell_execute", "label": "initial_url",
             "arguments": {"command": "ls", "group_id": "new", "initial_url": "https://example.com"}},
            call_step("for", "for tabs : click {}"),
            call_step("each", "each type hello"),
            call_step("history", "!3"),
            call_step("js", "js document.cookie"),
            call_step("read", "pwd | grep x"),
        ],
    });
    let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
    run.ensure_ok().unwrap();
    for label in ["initial_url", "for", "each", "history", "js"] {
        let s = step(&run, label);
        assert_eq!(s["is_error"], true, "{label}: {s}");
        assert_eq!(structured(s, "reason"), "tier_denied", "{label}: {s}");
        assert!(
            s["text"].as_str().unwrap().contains("--allow"),
            "{label}: the flag is named: {s}"
        );
    }
    assert_eq!(step(&run, "read")["is_error"], false);
    let executed: Vec<String> = fake
        .received()
        .iter()
        .filter_map(|f| match f {
            Frame::Execute { command, .. } => Some(command.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(executed, vec!["pwd | grep x"], "only the read command ran");
}

#[tokio::test]
async fn the_domain_allowlist_applies_to_navigation_targets_and_travels_to_the_extension() {
    let py = python().await;
    let (server, fake) = http_server(&["--allow-write", "--domains", "example.com"]).await;
    let plan = json!({
        "transport": http_transport(&server, Some(TEST_MCP_TOKEN)),
        "protocol": "legacy",
        "timeout_ms": 20_000,
        "steps": [
            call_step("foreign", "open https://evil.test/"),
            {"op": "call_tool", "name": "domshell_execute", "label": "initial_url",
             "arguments": {"command": "pwd", "group_id": "new", "initial_url": "https://evil.test/"}},
            call_step("allowed", "open https://docs.example.com/start"),
        ],
    });
    let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
    run.ensure_ok().unwrap();
    for label in ["foreign", "initial_url"] {
        let s = step(&run, label);
        assert_eq!(structured(s, "reason"), "domain_denied", "{label}: {s}");
        assert!(
            s["text"].as_str().unwrap().contains("evil.test"),
            "{label}: {s}"
        );
    }
    // The allowed one reached the extension (whose fake does not know `open`), with the list.
    let allowed = step(&run, "allowed");
    assert_ne!(structured(allowed, "reason"), "domain_denied", "{allowed}");
    let Frame::Execute {
        allowed_domains, ..
    } = fake
        .wait_for_frame(
            |f| matches!(f, Frame::Execute { command, .. } if command.starts_with("open")),
            Duration::from_secs(2),
        )
        .await
        .unwrap()
    else {
        unreachable!()
    };
    assert_eq!(allowed_domains, vec!["example.com".to_string()]);
    assert_eq!(fake.count("EXECUTE"), 1);
}

#[tokio::test]
async fn idle_http_sessions_end_their_shell_session() {
    let (server, fake) = http_server(&["--session-idle-ttl-ms", "600"]).await;
    let raw = RawMcp::new(server.http_url("/mcp"), Some(TEST_MCP_TOKEN));
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "idle", "version": "1"}}});
    let (_, session, _) = raw.post(None, init).await.unwrap();
    let session = session.expect("an Mcp-Session-Id");
    raw.post(
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await
    .unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "domshell_execute", "arguments": {"command": "pwd"}}});
    let (status, _, _) = raw.post(Some(&session), call.clone()).await.unwrap();
    assert_eq!(status, 200);
    let health = server.health().await.unwrap();
    assert_eq!(health["link"]["shell_sessions"], 1);
    assert_eq!(health["mcp_sessions"], 1);
    assert!(health["connected_since"].as_str().unwrap().ends_with('Z'));
    // The client walks away without DELETE: the session and its shell state still end.
    fake.wait_for_frame(
        |f| matches!(f, Frame::SessionEnd { .. }),
        Duration::from_secs(5),
    )
    .await
    .expect("SESSION_END after the idle TTL");
    let health = server.health().await.unwrap();
    assert_eq!(health["link"]["shell_sessions"], 0);
    assert_eq!(health["mcp_sessions"], 0);
    let (status, _, _) = raw.post(Some(&session), call).await.unwrap();
    assert_eq!(status, 404, "the expired session id is unknown now");
}
