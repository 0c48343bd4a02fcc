//! `upload` end to end: headless Chromium runs the built extension on the fixture page
//! `tests/fixtures/pages/upload.html` served on 127.0.0.1, a server started with
//! `--upload-dir` on a fresh directory, and the Python MCP SDK over streamable HTTP.
//!
//! Covered: files attached to a visible file input, to a hidden one behind a button that
//! opens its chooser, and to a hidden one beside a label, the page reading each file's name
//! and bytes back from its `change` handler; a path out of the directory and a symlink out
//! of it refused; a server without `--upload-dir` refusing and naming the flag.

use std::time::Duration;

use domshell_tests::page_rig::first_path;
use domshell_tests::python::{execute_step, http_transport, PythonEnv};
use domshell_tests::{PageRig, ServerOptions, ServerProcess};
use serde_json::json;

#[tokio::test]
async fn files_reach_visible_hidden_and_chooser_inputs_and_nothing_else_is_read() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("a Python venv with the mcp SDK");
    let uploads = tempfile::tempdir().expect("an upload directory");
    let outside = tempfile::tempdir().expect("a directory outside it");
    std::fs::write(uploads.path().join("notes.txt"), "hello notes").unwrap();
    std::fs::write(uploads.path().join("a.txt"), "first").unwrap();
    std::fs::write(uploads.path().join("b.csv"), "x,y").unwrap();
    std::fs::write(outside.path().join("secret.txt"), "do not read").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        uploads.path().join("link.txt"),
    )
    .unwrap();
    let dir = uploads.path().display().to_string();
    let rig = PageRig::start_with_args(5_000, &["--transport", "http", "--upload-dir", &dir]).await;
    rig.open_fixture("upload.html").await;
    let doc = first_path(&rig.ok("find document").await);
    let chooser = first_path(&rig.ok("find choose --type btn").await);
    let avatar = first_path(&rig.ok("find avatar").await);
    let escape = format!(
        "../{}/secret.txt",
        outside.path().file_name().unwrap().to_string_lossy()
    );
    let plan = json!({
        "transport": http_transport(&rig.server),
        "timeout_ms": 60_000,
        "steps": [
            {"op": "initialize"},
            execute_step("open", &format!("open {}/upload.html", rig.base)),
            execute_step("visible", &format!("upload {doc} notes.txt")),
            execute_step("seen_visible", "js document.getElementById('out').textContent"),
            execute_step("chooser", &format!("upload {chooser} a.txt b.csv")),
            execute_step("seen_chooser", "js document.getElementById('out').textContent"),
            execute_step("hidden", &format!("upload {avatar} a.txt")),
            execute_step("seen_hidden", "js document.getElementById('out').textContent"),
            execute_step("outside", &format!("upload {doc} {escape}")),
            execute_step("symlink", &format!("upload {doc} link.txt")),
            execute_step("seen_last", "js document.getElementById('out').textContent"),
        ],
    });
    let run = py
        .run_driver(&plan, Duration::from_secs(90))
        .await
        .expect("the driver runs");
    for step in run.steps() {
        eprintln!("{}: {} {}", step["label"], step["is_error"], step["text"]);
    }
    run.ensure_ok().expect("every step ran");
    let text = |label: &str| -> (bool, String) {
        let step = run.step(label).unwrap_or_else(|| panic!("no step {label}"));
        (
            step["is_error"] == true,
            step["text"].as_str().unwrap_or_default().to_string(),
        )
    };
    let ok = |label: &str| {
        let (error, text) = text(label);
        assert!(!error, "{label}: {text}");
        text
    };
    assert!(ok("visible").starts_with("✓ Attached 1 file(s) to doc: notes.txt"));
    assert!(ok("seen_visible").starts_with("doc: notes.txt=hello notes"));
    assert!(ok("chooser").starts_with("✓ Attached 2 file(s) to many (hidden): a.txt, b.csv"));
    assert!(ok("seen_chooser").starts_with("many: a.txt=first, b.csv=x,y"));
    ok("hidden");
    assert!(ok("seen_hidden").starts_with("avatar: a.txt=first"));
    for label in ["outside", "symlink"] {
        let (error, refused) = text(label);
        assert!(
            error && refused.contains("outside the upload directories"),
            "{label}: {refused}"
        );
    }
    // Nothing of the refused files reached the page.
    assert!(ok("seen_last").starts_with("avatar: a.txt=first"));
}

#[tokio::test]
async fn without_an_upload_directory_upload_is_refused_naming_the_flag() {
    let server = ServerProcess::start(ServerOptions {
        extra_args: vec!["--allow-all".into()],
        debug_api: true,
        ..Default::default()
    })
    .await
    .expect("the server starts");
    let (status, body) = server
        .execute("upload doc notes.txt", Some(5_000))
        .await
        .expect("the debug route answers");
    // Refused like a denied tier: nothing was sent to the browser.
    assert_eq!(status, 403, "{body}");
    let output = body.to_string();
    assert!(output.contains("--upload-dir"), "{output}");
    assert!(output.contains("upload_refused"), "{output}");
}
