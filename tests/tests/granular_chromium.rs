//! Granular tools end to end: a server started with `--granular`, headless Chromium running
//! the built extension on the fixture page `tests/fixtures/pages/tools.html` served on
//! 127.0.0.1, and the Python MCP SDK over streamable HTTP calling every granular tool once.
//!
//! Covered: with every tier allowed, the tool list is `domshell_execute`, `domshell_status`
//! and one tool per command of the table, each with a schema and annotations that say what
//! it may do; every tool runs its command (the page sees the clicks, the typing, the
//! submitted form and the script calls), a screenshot comes back as image content, bad
//! arguments come back as tool errors that name the parameter, and the lane parameters
//! work on a granular tool. A read-only server lists no tool that could change anything,
//! and a write tool called anyway is refused by the pipeline with the flag that allows it.

use std::time::Duration;

use domshell_tests::page_rig::first_path;
use domshell_tests::python::{http_transport, PythonEnv};
use domshell_tests::{PageRig, ServerOptions, ServerProcess};
use serde_json::{json, Value};
use shared_protocol::tools::{tool_commands, tool_name};

fn call(label: &str, tool: &str, arguments: Value) -> Value {
    json!({"op": "call_tool", "name": format!("domshell_{tool}"), "label": label,
           "arguments": arguments})
}

/// The name of an entry in `main` (its path without the `main/` in front).
fn in_main(path: &str) -> String {
    path.strip_prefix("main/").unwrap_or(path).to_string()
}

#[tokio::test]
async fn every_granular_tool_runs_its_command_through_the_pipeline() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("a Python venv with the mcp SDK");
    // Without the domain allowlist: under one the server refuses `script run`, whose stored
    // commands it cannot see.
    let uploads = tempfile::tempdir().expect("an upload directory");
    std::fs::write(uploads.path().join("note.txt"), "granular").unwrap();
    let upload_dir = uploads.path().display().to_string();
    let rig = PageRig::start_without_allowlist(
        5_000,
        &[
            "--transport",
            "http",
            "--granular",
            "--upload-dir",
            &upload_dir,
        ],
    )
    .await;
    let tab = rig.open_fixture("tools.html").await;
    rig.ok("cd main").await;
    let button = in_main(&first_path(&rig.ok("find count --type btn").await));
    let go = in_main(&first_path(&rig.ok("find go --type btn").await));
    let query = in_main(&first_path(&rig.ok("find query --type input").await));
    let color = in_main(&first_path(&rig.ok("find color --type select").await));
    let table = in_main(&first_path(&rig.ok("find --type table").await));
    let tools_url = format!("{}/tools.html", rig.base);
    let script_url = format!("{}/script.html", rig.base);

    let plan = json!({
        "transport": http_transport(&rig.server),
        "timeout_ms": 60_000,
        "steps": [
            {"op": "initialize"},
            {"op": "list_tools"},
            call("here", "here", json!({})),
            call("cd", "cd", json!({"path": format!("~/tabs/{tab}")})),
            call("pwd", "pwd", json!({})),
            call("tabs", "tabs", json!({"json": true})),
            call("windows", "windows", json!({})),
            call("refresh", "refresh", json!({})),
            call("ls", "ls", json!({"long": true})),
            call("cd_main", "cd", json!({"path": "main"})),
            call("tree", "tree", json!({"depth": 1})),
            call("read", "read", json!({"depth": 1, "limit": 5})),
            call("text", "text", json!({})),
            call("grep", "grep", json!({"pattern": "count"})),
            call("find", "find", json!({"pattern": "count", "type": "btn"})),
            call("cat", "cat", json!({"name": button})),
            call("extract_links", "extract_links", json!({})),
            call("extract_table", "extract_table", json!({"name": table, "format": "csv"})),
            call("screenshot", "screenshot", json!({})),
            call("wait", "wait", json!({"pattern": "count", "timeout": 2})),
            call("whoami", "whoami", json!({})),
            call("console", "console", json!({"level": "error", "limit": 5})),
            call("network", "network", json!({"failed": true})),
            call("pdf", "pdf", json!({"landscape": true})),
            call("downloads", "downloads", json!({"json": true})),
            call("upload", "upload", json!({"input": query.clone(), "files": ["note.txt"]})),
            call("click", "click", json!({"name": button})),
            call("after_click", "js", json!({"code": "document.getElementById('out').textContent"})),
            call("focus", "focus", json!({"name": query})),
            call("type", "type", json!({"text": "two words"})),
            call("key", "key", json!({"key": "End"})),
            call("typed", "eval", json!({"expression": "document.getElementById('q').value"})),
            call("select", "select", json!({"name": color, "value": "Blue"})),
            call("selected", "eval", json!({"expression": "document.getElementById('color').value"})),
            call("scroll", "scroll", json!({"target": "down"})),
            call("submit", "submit", json!({"input": query, "value": "tools \"quoted\"", "submit": go})),
            call("submitted", "js", json!({"code": "document.getElementById('out').textContent"})),
            call("dialog", "dialog", json!({})),
            call("functions", "functions", json!({})),
            call("call", "call", json!({"function": "count"})),
            call("watch", "watch", json!({"command": "pwd", "times": 2, "interval": 0.5})),
            call("for", "for", json!({"source": "echo a b", "template": "echo item {}"})),
            call("each", "each", json!({"command": "pwd", "pattern": "tools.html"})),
            call("script_save", "script", json!({"action": "save", "name": "greet", "commands": "echo hello $1"})),
            call("script_run", "script", json!({"action": "run", "name": "greet", "args": ["granular world"]})),
            call("navigate", "navigate", json!({"url": script_url})),
            call("back", "back", json!({})),
            call("forward", "forward", json!({})),
            call("open", "open", json!({"url": tools_url})),
            call("close", "close", json!({})),
            call("missing", "click", json!({})),
            call("unknown", "click", json!({"name": "x", "colour": "red"})),
            call("lane", "pwd", json!({"group_id": "new", "initial_url": tools_url, "group_name": "granular"})),
        ],
    });
    let run = py
        .run_driver(&plan, Duration::from_secs(120))
        .await
        .expect("the driver runs");
    for step in run.steps() {
        eprintln!("{}: {} {}", step["label"], step["is_error"], step["text"]);
    }
    run.ensure_ok().expect("every step ran");

    // The tool list: the two, then one per command of the table, each described.
    let mut expected: Vec<String> = vec!["domshell_execute".into(), "domshell_status".into()];
    expected.extend(tool_commands().map(tool_name));
    assert_eq!(run.tool_names(), expected);
    let tools = run.result["tools"].as_array().cloned().unwrap_or_default();
    let tool = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no tool {name}"))
    };
    for t in &tools {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert!(
            t["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{t}"
        );
    }
    assert_eq!(tool("domshell_ls")["annotations"]["readOnlyHint"], true);
    assert_eq!(
        tool("domshell_click")["annotations"]["destructiveHint"],
        true
    );
    assert_eq!(tool("domshell_open")["annotations"]["readOnlyHint"], false);
    assert_eq!(
        tool("domshell_open")["annotations"]["destructiveHint"],
        false
    );
    assert_eq!(
        tool("domshell_cat")["inputSchema"]["required"],
        json!(["name"])
    );
    assert!(tool("domshell_find")["inputSchema"]["properties"]["group_id"].is_object());

    let step = |label: &str| -> (bool, String, Value) {
        let step = run
            .step(label)
            .unwrap_or_else(|| panic!("no step {label}"))
            .clone();
        (
            step["is_error"] == true,
            step["text"].as_str().unwrap_or_default().to_string(),
            step,
        )
    };
    let ok = |label: &str| -> String {
        let (error, text, _) = step(label);
        assert!(!error, "{label} failed: {text}");
        assert!(text.contains("[lane: "), "{label}: {text}");
        text
    };
    // `here` enters whichever tab is in front; it ran through the shell either way.
    assert!(step("here").1.contains("[lane: "), "{:?}", step("here"));
    for label in [
        "cd",
        "tabs",
        "windows",
        "refresh",
        "cd_main",
        "tree",
        "read",
        "whoami",
        "focus",
        "type",
        "key",
        "select",
        "scroll",
        "watch",
        "script_save",
        "navigate",
        "back",
        "forward",
        "open",
        "close",
    ] {
        ok(label);
    }
    assert!(ok("pwd").contains(&format!("tabs/{tab}")));
    assert!(ok("ls").contains("main/"));
    assert!(ok("text").contains("nothing yet"));
    assert!(ok("grep").contains("count/"));
    assert!(ok("find").contains(&button));
    assert!(ok("cat").contains("button"));
    assert!(ok("extract_links").contains("Script page"));
    assert!(ok("extract_table").contains("Ada,3"));
    let (_, _, shot) = step("screenshot");
    assert!(
        shot["content"].as_array().is_some_and(|blocks| blocks
            .iter()
            .any(|b| b["type"] == "image"
                && b["mimeType"] == "image/jpeg"
                && b["data"].as_str().is_some_and(|d| d.len() > 100))),
        "{shot}"
    );
    ok("wait");
    assert!(ok("console").contains("no console messages"));
    ok("network");
    assert!(ok("downloads").starts_with(r#"{"downloads":[]}"#));
    // The tools page has no file input: the file was read and sent, and the page said so.
    let (error, upload, _) = step("upload");
    assert!(error && upload.contains("no file input here"), "{upload}");
    let (_, _, pdf) = step("pdf");
    assert!(
        pdf["content"]
            .as_array()
            .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "resource")),
        "{pdf}"
    );
    ok("click");
    assert!(ok("after_click").starts_with("clicked 1"));
    assert!(ok("typed").starts_with("two words"));
    assert!(ok("selected").starts_with("Blue"));
    ok("submit");
    assert!(ok("submitted").starts_with("searched tools \"quoted\""));
    assert!(step("dialog").1.to_lowercase().contains("dialog"));
    assert!(ok("functions").contains("count()"));
    assert!(ok("call").starts_with('2'));
    assert!(ok("for").contains("item a b"));
    assert!(ok("each").contains(&format!("=== tab {tab}: Tools page ===")));
    assert!(ok("script_run").contains("hello granular world"));
    let (error, missing, _) = step("missing");
    assert!(
        error && missing.contains("domshell_click: missing required argument `name`"),
        "{missing}"
    );
    let (error, unknown, _) = step("unknown");
    assert!(
        error && unknown.contains("unknown argument `colour`"),
        "{unknown}"
    );
    let lane = ok("lane");
    assert!(!lane.contains("[lane: shared]"), "{lane}");
}

#[tokio::test]
async fn a_read_only_server_lists_no_tool_that_changes_anything() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("a Python venv with the mcp SDK");
    let server = ServerProcess::start(ServerOptions {
        extra_args: vec!["--transport".into(), "http".into(), "--granular".into()],
        ..Default::default()
    })
    .await
    .expect("the server starts");
    let plan = json!({
        "transport": http_transport(&server),
        "timeout_ms": 30_000,
        "steps": [
            {"op": "initialize"},
            {"op": "list_tools"},
            call("click", "click", json!({"name": "x"})),
        ],
    });
    let run = py
        .run_driver(&plan, Duration::from_secs(60))
        .await
        .expect("the driver runs");
    run.ensure_ok().expect("every step ran");
    let names = run.tool_names();
    for name in [
        "domshell_ls",
        "domshell_find",
        "domshell_text",
        "domshell_for",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    for name in [
        "domshell_click",
        "domshell_type",
        "domshell_open",
        "domshell_navigate",
        "domshell_js",
        "domshell_eval",
        "domshell_call",
        "domshell_whoami",
        "domshell_close",
        "domshell_submit",
        "domshell_upload",
    ] {
        assert!(!names.contains(&name), "{name} listed read-only: {names:?}");
    }
    for tool in run.result["tools"].as_array().cloned().unwrap_or_default() {
        if tool["name"] == "domshell_status" {
            continue;
        }
        assert_eq!(tool["annotations"]["readOnlyHint"], true, "{tool}");
        assert_eq!(tool["annotations"]["destructiveHint"], false, "{tool}");
    }
    // Called anyway, a write tool is refused like the command it runs.
    let refused = run.step("click").expect("the click step");
    assert_eq!(refused["is_error"], true, "{refused}");
    let text = refused["text"].as_str().unwrap_or_default();
    assert!(text.contains("--allow-write"), "{text}");
}
