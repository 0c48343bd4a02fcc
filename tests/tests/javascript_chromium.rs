//! JavaScript in the page end to end: headless Chromium runs the built extension, the
//! fixture page `tests/fixtures/pages/script.html` (global functions, a same-origin iframe)
//! is served on 127.0.0.1, and the Python MCP SDK calls `domshell_execute` over streamable
//! HTTP; the frame part goes through the debug route, which runs the same pipeline.
//!
//! Covered: `js` returning an object as JSON, statements with `let` (the last value is the
//! answer), a rejected promise as an error with its message, an endless loop stopped within
//! its timeout with the tab usable afterwards, `functions` and `call` on the page's own
//! functions (the page sees the call), and `js` in the frame of the current directory.

use std::time::{Duration, Instant};

use domshell_tests::python::PythonEnv;
use domshell_tests::PageRig;
use serde_json::{json, Value};

/// The call budget the server is started with: the script timeout is what it leaves (the
/// extension keeps 2 s back to answer in time).
const BUDGET_MS: u64 = 5_000;

fn call(label: &str, command: &str) -> Value {
    json!({"op": "call_tool", "name": "domshell_execute", "label": label,
           "arguments": {"command": command}})
}

#[tokio::test]
async fn js_functions_and_call_run_in_the_page_and_a_loop_is_stopped() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("a Python venv with the mcp SDK");
    let budget = BUDGET_MS.to_string();
    let rig = PageRig::start_with_args(
        5_000,
        &["--transport", "http", "--command-timeout-ms", &budget],
    )
    .await;
    let plan = json!({
        "transport": {
            "type": "http",
            "url": rig.server.http_url("/mcp"),
            "headers": {"Authorization": format!("Bearer {}", rig.server.mcp_token())},
        },
        "timeout_ms": 60_000,
        "steps": [
            {"op": "initialize"},
            call("open", &format!("open {}/script.html", rig.base)),
            call("object", "js ({a: 1, list: [1, 2], nested: {b: 'x'}, self: document.body})"),
            call("statements", "js let n = 2; n * 21"),
            call("rejected", "js Promise.reject(new Error('nope'))"),
            call("loop", "js while (true) {}"),
            call("after", "js document.title + ' ' + total"),
            call("functions", "functions"),
            call("functions_json", "functions add --json"),
            call("call", "call addItem pen 3"),
            call("bad_call", "call noSuchFunction"),
        ],
    });
    let started = Instant::now();
    let run = py
        .run_driver(&plan, Duration::from_secs(90))
        .await
        .expect("the driver runs");
    eprintln!("driver took {:?}", started.elapsed());
    for step in run.steps() {
        eprintln!("{}: {}", step["label"], step["text"]);
    }
    let step = |label: &str| -> (bool, String) {
        let step = run
            .step(label)
            .unwrap_or_else(|| panic!("no step {label}: {run:?}"));
        (
            step["is_error"] == true,
            step["text"].as_str().unwrap_or_default().to_string(),
        )
    };
    let (error, object) = step("object");
    assert!(!error, "{object}");
    let json_part = object.split("\n[lane:").next().unwrap_or_default();
    let value: Value = serde_json::from_str(json_part).unwrap_or_else(|e| panic!("{e}: {object}"));
    assert_eq!(
        value,
        json!({"a": 1, "list": [1, 2], "nested": {"b": "x"}, "self": "[body]"})
    );
    let (error, statements) = step("statements");
    assert!(!error && statements.starts_with("42\n"), "{statements}");
    let (error, rejected) = step("rejected");
    assert!(error && rejected.contains("nope"), "{rejected}");
    let (error, looped) = step("loop");
    assert!(
        error
            && looped.contains("js: stopped after ")
            && looped.contains("the page is usable again"),
        "{looped}"
    );
    // The page answers again at once: the loop was stopped, not left running.
    let (error, after) = step("after");
    assert!(!error && after.starts_with("Script page 0\n"), "{after}");
    let (error, functions) = step("functions");
    assert!(
        !error
            && functions.contains("Functions (2):")
            && functions.contains("  addItem(name, count)")
            && functions.contains("  reset()"),
        "{functions}"
    );
    let (_, functions_json) = step("functions_json");
    assert!(
        functions_json.starts_with(r#"[{"arity":2,"name":"addItem","params":"name, count"}]"#),
        "{functions_json}"
    );
    let (error, called) = step("call");
    assert!(!error, "{called}");
    assert!(
        called.contains(r#""added": "pen""#) && called.contains(r#""total": 3"#),
        "{called}"
    );
    assert_eq!(
        rig.page_value(
            "/script.html",
            "document.getElementById('total').textContent"
        )
        .await,
        "total 3",
        "the page itself saw the call"
    );
    let (error, bad) = step("bad_call");
    assert!(
        error && bad.contains("noSuchFunction is not a function"),
        "{bad}"
    );

    // In a child frame, `js` runs in that frame's world.
    rig.open_fixture("script.html").await;
    assert_eq!(rig.ok("js window.frameMarker").await, "top");
    let frames = rig.ok("find --type iframe").await;
    let frame = frames
        .lines()
        .find_map(|l| l.split_whitespace().find(|w| w.contains("inner_frame")))
        .unwrap_or_else(|| panic!("no frame directory in {frames}"))
        .trim_end_matches('/')
        .to_string();
    rig.ok(&format!("cd {frame}")).await;
    assert_eq!(
        rig.ok("js (window.frameMarker ?? 'none') + ' ' + document.title")
            .await,
        "none Checkout"
    );
    let thrown = rig.err("js nope.nope").await;
    assert!(thrown.contains("nope is not defined"), "{thrown}");
}
