//! Self-test of the Chromium harness with a throwaway MV3 extension generated here: launch,
//! find the worker, storage round trip, stop the worker like idle suspension does.
//!
//! It must not depend on the real extension (built separately); a missing Chromium fails the
//! test with install instructions instead of skipping it.

use std::time::Duration;

use domshell_tests::Chromium;
use serde_json::json;

fn throwaway_extension() -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix("domshell-ext-").tempdir()?;
    let manifest = json!({
        "manifest_version": 3,
        "name": "domshell harness self-test",
        "version": "0.0.1",
        "background": { "service_worker": "sw.js", "type": "module" },
        "permissions": ["storage", "alarms"],
    });
    std::fs::write(dir.path().join("manifest.json"), manifest.to_string())?;
    std::fs::write(
        dir.path().join("sw.js"),
        "self.started = Date.now();\n\
         chrome.runtime.onInstalled.addListener(() => {});\n\
         chrome.runtime.onMessage.addListener((msg, _sender, reply) => { reply({ pong: msg, started: self.started }); });\n",
    )?;
    std::fs::write(
        dir.path().join("page.html"),
        "<!doctype html><title>page</title>",
    )?;
    Ok(dir)
}

#[tokio::test]
async fn chromium_loads_an_extension_and_drives_its_worker() -> anyhow::Result<()> {
    let ext = throwaway_extension()?;
    let browser = Chromium::launch(ext.path()).await?;
    let worker = browser
        .wait_for_any_extension_worker(Duration::from_secs(15))
        .await?;
    let id = worker.extension_id().map(str::to_string);
    assert!(id.as_deref().is_some_and(|i| i.len() == 32), "{worker:?}");
    assert_eq!(browser.extension_id(), id);
    // The id-specific lookup finds the same worker.
    let same = browser
        .wait_for_service_worker(id.as_deref().unwrap_or_default(), Duration::from_secs(5))
        .await?;
    assert_eq!(same.id, worker.id);

    assert_eq!(browser.evaluate_in_worker("1 + 2").await?, json!(3));
    assert_eq!(
        browser
            .evaluate_in_worker("Promise.resolve({a: [1, 'x']})")
            .await?,
        json!({"a": [1, "x"]})
    );
    let err = browser
        .evaluate_in_worker("Promise.reject(new Error('boom'))")
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("boom"), "{err:#}");

    browser
        .set_storage(json!({"bridge": {"port": 1234, "token": "t"}, "n": 7}))
        .await?;
    let stored = browser.get_storage().await?;
    assert_eq!(stored["bridge"]["port"], 1234, "{stored}");
    assert_eq!(stored["n"], 7, "{stored}");

    let started_before = browser.evaluate_in_worker("self.started").await?;
    assert!(browser.service_worker_running().await?);
    browser.stop_service_worker().await?;
    assert!(!browser.service_worker_running().await?);

    // A message from an extension page wakes a fresh worker; the harness finds the new
    // target by itself and storage survived the restart.
    let page = browser
        .open_page(&format!(
            "chrome-extension://{}/page.html",
            id.unwrap_or_default()
        ))
        .await?;
    assert_eq!(page.kind, "page");
    let answer =
        domshell_tests::chromium::evaluate_in_target(&page, "chrome.runtime.sendMessage('hi')")
            .await?;
    assert_eq!(answer["pong"], "hi", "{answer}");
    let started_after = browser.evaluate_in_worker("self.started").await?;
    assert_ne!(
        started_before, started_after,
        "the worker must have been restarted"
    );
    assert_eq!(browser.get_storage().await?["n"], 7);
    Ok(())
}

#[tokio::test]
async fn launch_fails_clearly_without_a_manifest() {
    let empty = tempfile::tempdir().expect("tempdir");
    let err = Chromium::launch(empty.path())
        .await
        .expect_err("launch must refuse a directory without manifest.json");
    assert!(format!("{err:#}").contains("manifest.json"), "{err:#}");
}
