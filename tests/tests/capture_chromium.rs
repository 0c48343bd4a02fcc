//! Screenshots and PDFs end to end: headless Chromium runs the built extension on the
//! fixture page `tests/fixtures/pages/tools.html` (3,000 pixels tall) served on 127.0.0.1,
//! and the Python MCP SDK calls `domshell_execute` over streamable HTTP.
//!
//! Covered: the viewport, the whole page and one element as JPEG image content, each within
//! its width and under the documented size, with a text line saying its size; a PDF of the
//! page as an embedded resource whose bytes start with `%PDF`.

use std::time::Duration;

use domshell_tests::python::{execute_step, http_transport, PythonEnv};
use domshell_tests::PageRig;
use serde_json::json;

/// Decoded bytes of base64 `data` (no padding subtleties needed for a size bound).
fn decoded_len(data: &str) -> usize {
    data.len() / 4 * 3
}

#[tokio::test]
async fn screenshots_fit_their_caps_and_a_pdf_is_a_resource() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("a Python venv with the mcp SDK");
    let rig = PageRig::start_with_args(5_000, &["--transport", "http"]).await;
    let plan = json!({
        "transport": http_transport(&rig.server),
        "timeout_ms": 60_000,
        "steps": [
            {"op": "initialize"},
            execute_step("open", &format!("open {}/tools.html", rig.base)),
            execute_step("viewport", "screenshot"),
            execute_step("full", "screenshot --full --max-width 400"),
            execute_step("element", "screenshot main/scores"),
            execute_step("pdf", "pdf --background"),
        ],
    });
    let run = py
        .run_driver(&plan, Duration::from_secs(90))
        .await
        .expect("the driver runs");
    run.ensure_ok().expect("every step ran");
    let step = |label: &str| {
        run.step(label)
            .cloned()
            .unwrap_or_else(|| panic!("no {label}"))
    };
    let image = |label: &str| -> (String, String) {
        let step = step(label);
        assert_eq!(step["is_error"], false, "{label}: {}", step["text"]);
        let blocks = step["content"].as_array().cloned().unwrap_or_default();
        let image = blocks
            .iter()
            .find(|b| b["type"] == "image")
            .unwrap_or_else(|| panic!("{label}: no image in {blocks:?}"))
            .clone();
        assert_eq!(image["mimeType"], "image/jpeg", "{label}");
        let data = image["data"].as_str().unwrap_or_default().to_string();
        // A JPEG starts with FF D8 FF, which is "/9j/" in base64.
        assert!(data.starts_with("/9j/"), "{label}: not a JPEG");
        assert!(
            decoded_len(&data) <= 400 * 1024,
            "{label}: {} bytes, over the 400 KB a screenshot stays under",
            decoded_len(&data)
        );
        let text = step["text"].as_str().unwrap_or_default().to_string();
        eprintln!("{label}: {text}");
        (text, data)
    };
    let size_of = |text: &str| -> (u32, u32) {
        let said = text
            .split("[screenshot: ")
            .nth(1)
            .and_then(|t| t.split_whitespace().next())
            .unwrap_or_else(|| panic!("no size line in {text}"));
        let (w, h) = said.split_once('×').expect("W×H");
        (w.parse().unwrap(), h.parse().unwrap())
    };
    let (text, _) = image("viewport");
    let (w, h) = size_of(&text);
    assert!(w <= 1280 && h > 0, "{text}");
    let (text, _) = image("full");
    let (w, h) = size_of(&text);
    assert!(w <= 400, "{text}");
    // The whole page is far taller than wide (3,000 pixels of it is one block).
    assert!(h > 2 * w, "{text}");
    let (text, _) = image("element");
    let (w, h) = size_of(&text);
    assert!(
        w > 0 && w < 1280 && h < 400,
        "an element's box, not the page: {text}"
    );

    let pdf = step("pdf");
    assert_eq!(pdf["is_error"], false, "{}", pdf["text"]);
    let resource = pdf["content"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["type"] == "resource").cloned())
        .expect("an embedded resource");
    assert_eq!(resource["resource"]["mimeType"], "application/pdf");
    // "%PDF-" is "JVBERi0" in base64.
    let blob = resource["resource"]["blob"].as_str().unwrap_or_default();
    assert!(
        blob.starts_with("JVBERi0"),
        "not a PDF: {}",
        &blob[..blob.len().min(20)]
    );
    assert!(pdf["text"].as_str().unwrap_or_default().contains("[pdf: "));
}
