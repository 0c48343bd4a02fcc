//! The README's first run for a person whose cargo builds outside the checkout
//! (`CARGO_TARGET_DIR`, or `build.target-dir` in a cargo config).
//!
//! `cargo xtask test` runs `CARGO_TARGET_DIR=<fresh temporary directory> cargo xtask dist`
//! before the suite (`xtask/src/first_run.rs`) and hands that directory over in
//! `DOMSHELL_TEST_FIRST_RUN_TARGET`. This test runs the server built there with the token it
//! generates on first start, and real headless Chromium with the extension loaded from the
//! folder the README names (the repository root, whose `extension/pkg/` that build
//! generated), configured as the README says; the extension connects and answers commands.

use std::time::Duration;

use domshell_tests::workspace::first_run_target;
use domshell_tests::{eventually, workspace_root, Chromium, ServerOptions, ServerProcess};
use serde_json::json;

#[tokio::test]
async fn the_readme_first_run_works_when_cargo_builds_outside_the_checkout() {
    let target = first_run_target();
    assert!(
        !target.starts_with(workspace_root()),
        "{} is inside the checkout: the check needs a target directory elsewhere",
        target.display()
    );
    // `cargo xtask dist` put both halves where cargo built, and the extension's generated
    // part where the README's folder has it.
    let server_bin = target.join("release").join("domshell");
    assert!(server_bin.is_file(), "{} missing", server_bin.display());
    let wasm = target
        .join("wasm32-unknown-unknown")
        // The extension's own cargo profile (Cargo.toml `[profile.wasm]`).
        .join("wasm")
        .join("domshell_extension.wasm");
    assert!(wasm.is_file(), "{} missing", wasm.display());
    let generated = workspace_root()
        .join("extension")
        .join("pkg")
        .join("domshell_extension_bg.wasm");
    assert!(generated.is_file(), "{} missing", generated.display());

    // First start: the server generates its token; the person pastes it into the options.
    let server = ServerProcess::start(ServerOptions {
        binary: Some(server_bin),
        token: None,
        mcp_token: None,
        silence_limit_ms: 5_000,
        connect_grace_ms: Some(10_000),
        ..Default::default()
    })
    .await
    .expect("the server built in the first-run target directory starts");
    assert!(server.token().len() >= 32, "a generated token");
    let chromium = Chromium::launch_built_extension()
        .await
        .expect("Chromium with the extension loaded from the repository root");
    let settings = json!({
        "bridge_enabled": true,
        "bridge_token": server.token(),
        "bridge_port": server.port(),
        "bridge_alarm_period_ms": 1_000,
    });
    eventually(Duration::from_secs(10), Duration::from_millis(100), || {
        chromium.set_storage(settings.clone())
    })
    .await
    .expect("extension settings stored");
    let health = server
        .wait_for_link_state("connected", Duration::from_secs(15))
        .await
        .expect("the extension connects to the server");
    assert_eq!(
        health["link"]["extension_version"],
        env!("CARGO_PKG_VERSION")
    );
    let (status, body) = server.execute("tabs", Some(10_000)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true, "{body}");
    assert!(
        body["output"]
            .as_str()
            .unwrap_or_default()
            .contains("about:blank"),
        "{body}"
    );
}
