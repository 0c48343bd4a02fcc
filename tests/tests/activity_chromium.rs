//! Console, network and page waits end to end: headless Chromium runs the built extension,
//! the fixture page `tests/fixtures/pages/activity.html` is served on 127.0.0.1, and the
//! Python MCP SDK calls `domshell_execute` over streamable HTTP.
//!
//! Covered: console messages and an uncaught exception listed with their levels; requests
//! listed with status, type and size, a 404 and a `fetch` Chrome refuses among the failed
//! ones;
//! a response body shown with the sensitive tier and refused by a server without it;
//! `wait --idle` on a page that polls for 1.5 s returning only once it stopped; `wait --url`
//! after a navigation; `wait --gone`; a link that downloads a file, said by the click's
//! reply and listed by `downloads` with its final path and size.

use std::time::Duration;

use domshell_tests::python::{execute_step, http_transport, PythonEnv};
use domshell_tests::PageRig;
use serde_json::{json, Value};

async fn drive(
    py: &PythonEnv,
    rig: &PageRig,
    steps: Vec<Value>,
) -> domshell_tests::python::DriverRun {
    let mut all = vec![json!({"op": "initialize"})];
    all.extend(steps);
    let plan = json!({
        "transport": http_transport(&rig.server),
        "timeout_ms": 60_000,
        "steps": all,
    });
    let run = py
        .run_driver(&plan, Duration::from_secs(90))
        .await
        .expect("the driver runs");
    for step in run.steps() {
        eprintln!("{}: {} {}", step["label"], step["is_error"], step["text"]);
    }
    run.ensure_ok().expect("every step ran");
    run
}

fn text(run: &domshell_tests::python::DriverRun, label: &str) -> (bool, String) {
    let step = run.step(label).unwrap_or_else(|| panic!("no step {label}"));
    (
        step["is_error"] == true,
        step["text"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn console_network_and_waits_show_what_the_page_did() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("a Python venv with the mcp SDK");
    let rig = PageRig::start_with_args(5_000, &["--transport", "http"]).await;
    let base = rig.base.clone();
    let run = drive(
        &py,
        &rig,
        vec![
            execute_step("open", &format!("open {base}/activity.html")),
            execute_step("run", "click main/run_btn"),
            execute_step("idle", "wait --idle --timeout 5"),
            execute_step("console", "console"),
            execute_step("errors", "console --level error"),
            execute_step("network", "network"),
            execute_step("failed", "network --failed"),
            execute_step("fetches", "network --type fetch --json"),
            execute_step("poll", "click main/poll_btn"),
            execute_step("idle_after_poll", "wait --idle --timeout 10"),
            execute_step("state", "js document.getElementById('state').textContent"),
            execute_step("gone", "wait --gone run_btn --timeout 1"),
        ],
    )
    .await;
    let ok = |label: &str| {
        let (error, text) = text(&run, label);
        assert!(!error, "{label}: {text}");
        text
    };
    ok("run");
    assert!(ok("idle").starts_with("✓ Network idle after "));
    let console = ok("console");
    assert!(console.contains("[info] page ready 42"), "{console}");
    assert!(console.contains("[warn] careful now"), "{console}");
    assert!(
        console.contains("[error] Uncaught TypeError: broken on purpose"),
        "{console}"
    );
    let errors = ok("errors");
    assert!(
        !errors.contains("careful now") && errors.contains("fetch refused"),
        "{errors}"
    );
    let network = ok("network");
    assert!(
        network.contains(" GET 200 fetch ") && network.contains("/tools.html"),
        "{network}"
    );
    let failed = ok("failed");
    assert!(
        failed.contains(" GET 404") && failed.contains("/no-such-api"),
        "{failed}"
    );
    // Port 9 is one Chrome refuses to fetch from at all: a failure that sends nothing.
    assert!(
        failed.contains("failed (net::ERR_UNSAFE_PORT)") && failed.contains("127.0.0.1:9/refused"),
        "{failed}"
    );
    assert!(!failed.contains("/tools.html"), "{failed}");
    let fetches: Value =
        serde_json::from_str(ok("fetches").split("\n[lane:").next().unwrap_or_default())
            .expect("network --json is JSON");
    let found = fetches["requests"]
        .as_array()
        .and_then(|r| {
            r.iter()
                .find(|r| {
                    r["url"]
                        .as_str()
                        .is_some_and(|u| u.ends_with("/tools.html"))
                })
                .cloned()
        })
        .expect("the fetch of tools.html is listed");
    assert_eq!(found["status"], 200);
    assert!(found["size"].as_u64().is_some_and(|s| s > 100), "{found}");
    // The network rested only once the page stopped polling.
    assert!(ok("idle_after_poll").starts_with("✓ Network idle after "));
    assert!(
        ok("state").starts_with("polled"),
        "the wait ended while the page still polled"
    );
    let (error, gone) = text(&run, "gone");
    assert!(error && gone.contains("is still there"), "{gone}");

    // A body, by its number: the sensitive tier (this rig allows everything). The debug
    // route runs the same pipeline in a session of its own, which enters the same tab.
    let number = found["n"].as_u64().expect("a request number");
    let tab = domshell_tests::page_rig::tab_id_from(&ok("open"));
    rig.ok(&format!("cd ~/tabs/{tab}")).await;
    let body = rig.ok(&format!("network body {number}")).await;
    assert!(body.contains("Tools page"), "{body}");
    rig.ok(&format!("navigate {base}/tools.html")).await;
    let url = rig.ok("wait --url tools.html --timeout 2").await;
    assert!(url.starts_with("✓ URL matches after "), "{url}");
}

#[tokio::test]
async fn a_response_body_needs_the_sensitive_tier() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("a Python venv with the mcp SDK");
    let rig = PageRig::start_with_rails(&["--allow-write"], &["--transport", "http"]).await;
    let base = rig.base.clone();
    let run = drive(
        &py,
        &rig,
        vec![
            execute_step("open", &format!("open {base}/activity.html")),
            execute_step("run", "click main/run_btn"),
            execute_step("idle", "wait --idle --timeout 5"),
            execute_step("list", "network"),
            execute_step("body", "network body 1"),
        ],
    )
    .await;
    let (error, list) = text(&run, "list");
    assert!(!error && list.contains("/tools.html"), "{list}");
    let (error, body) = text(&run, "body");
    assert!(error && body.contains("--allow-sensitive"), "{body}");
}

#[tokio::test]
async fn a_click_that_downloads_says_so_and_downloads_lists_the_file() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("a Python venv with the mcp SDK");
    let rig = PageRig::start_with_args(5_000, &["--transport", "http"]).await;
    // Into the profile (deleted with it), not the user's Downloads folder.
    let folder = rig.chromium.profile_dir().join("downloads");
    std::fs::create_dir_all(&folder).expect("a download folder");
    let mut browser = rig.chromium.browser_cdp().await.expect("the browser's CDP");
    browser
        .send(
            "Browser.setDownloadBehavior",
            json!({"behavior": "allow", "downloadPath": folder.to_string_lossy()}),
        )
        .await
        .expect("downloads go to the profile");
    let base = rig.base.clone();
    let run = drive(
        &py,
        &rig,
        vec![
            execute_step("open", &format!("open {base}/activity.html")),
            execute_step("before", "downloads"),
            execute_step("click", "click get_report_link"),
            execute_step("wait", "downloads wait --timeout 10"),
            execute_step("list", "downloads --json"),
        ],
    )
    .await;
    let ok = |label: &str| {
        let (error, text) = text(&run, label);
        assert!(!error, "{label}: {text}");
        text
    };
    assert!(ok("before").starts_with("(no downloads started by this session)"));
    let waited = ok("wait");
    assert!(waited.starts_with("✓ report.html  complete  "), "{waited}");
    let list: Value = serde_json::from_str(ok("list").split("\n[lane:").next().unwrap_or_default())
        .expect("downloads --json is JSON");
    let file = &list["downloads"][0];
    let path = std::path::PathBuf::from(file["path"].as_str().unwrap_or_default());
    assert_eq!(path.parent(), Some(folder.as_path()), "{file}");
    let on_disk = std::fs::metadata(&path).expect("the downloaded file").len();
    assert_eq!(file["bytes"].as_u64(), Some(on_disk), "{file}");
    assert!(on_disk > 100, "{file}");
    // The click's own reply said that a download started.
    let clicked = ok("click");
    assert!(clicked.contains("↓ Download: "), "{clicked}");
}
