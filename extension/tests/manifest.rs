//! The manifest asks for what the extension uses, and no more: every permission is one its
//! sources exercise, every permission-gated API they call is granted, and
//! `minimum_chrome_version` is the newest of the browser features the sources rely on.
//!
//! The sources are read as text: the extension reaches Chrome through `wasm_bindgen`
//! imports (`js_namespace = ["chrome", "tabs"]`) and the bootstrap's `chrome.x.y` calls, so a
//! namespace used anywhere shows up in one of those two spellings.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Each permission the extension may ask for, with the API namespace it gates. `tabs` gates
/// no namespace of its own (`chrome.tabs` works without it) but is what lets the worker see
/// a tab's `url` and `title`, which the shell lists and checks against the allowlist.
const PERMISSIONS: [(&str, &str); 8] = [
    ("storage", "storage"),
    ("alarms", "alarms"),
    ("tabs", "tabs"),
    ("tabGroups", "tabGroups"),
    ("sidePanel", "sidePanel"),
    ("debugger", "debugger"),
    ("cookies", "cookies"),
    ("downloads", "downloads"),
];

/// Browser features the sources depend on, each with a source marker that shows it is used
/// and the first Chrome version that has it. `minimum_chrome_version` must be the highest
/// version among the features in use.
const FEATURES: [(&str, &str, u32); 4] = [
    // chrome.debugger's flat sessions: `sessionId` in a `DebuggerSession` reaches the
    // child targets (out-of-process frames) `Target.setAutoAttach` attaches.
    ("flat debugger child sessions", "\"sessionId\"", 125),
    // The heartbeat alarm fires every 30 s; before Chrome 120 a packed extension's alarms
    // were held to one a minute.
    ("30-second alarms", "periodInMinutes", 120),
    // WebSocket traffic keeps an MV3 service worker alive.
    (
        "WebSocket activity extends the worker's life",
        "WebSocket::new",
        116,
    ),
    // The resume ticket lives in session storage.
    ("chrome.storage.session", "\"storage\", \"session\"", 102),
];

fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

fn manifest() -> Value {
    let path = repo_root().join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Every `.rs` and `.js` file under `dir`, concatenated.
fn sources_in(dir: &Path, into: &mut String) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources_in(&path, into);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "rs" || ext == "js")
        {
            into.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            into.push('\n');
        }
    }
}

/// The extension's own code: the Rust worker and the static pages and bootstrap (not the
/// generated `pkg/`, which only repeats what the Rust asks for).
fn sources() -> String {
    let ext = repo_root().join("extension");
    let mut text = String::new();
    sources_in(&ext.join("src"), &mut text);
    sources_in(&ext.join("static"), &mut text);
    assert!(
        text.contains("wasm_bindgen"),
        "the extension sources were found"
    );
    text
}

fn uses_namespace(sources: &str, namespace: &str) -> bool {
    sources.contains(&format!("\"chrome\", \"{namespace}\""))
        || sources.contains(&format!("chrome.{namespace}."))
}

fn permissions() -> Vec<String> {
    manifest()["permissions"]
        .as_array()
        .expect("manifest.json has a permissions list")
        .iter()
        .map(|p| p.as_str().expect("permissions are strings").to_string())
        .collect()
}

#[test]
fn every_permission_is_used() {
    let sources = sources();
    for permission in permissions() {
        let Some((_, namespace)) = PERMISSIONS.iter().find(|(p, _)| *p == permission) else {
            panic!(
                "manifest.json asks for `{permission}`, which this test does not know: add it to PERMISSIONS with the API it gates"
            );
        };
        assert!(
            uses_namespace(&sources, namespace),
            "manifest.json asks for `{permission}` but nothing in extension/ calls chrome.{namespace}: remove the permission"
        );
    }
}

#[test]
fn every_gated_api_used_is_granted() {
    let sources = sources();
    let granted = permissions();
    for (permission, namespace) in PERMISSIONS {
        if uses_namespace(&sources, namespace) {
            assert!(
                granted.iter().any(|g| g == permission),
                "the extension calls chrome.{namespace} but manifest.json does not ask for `{permission}`"
            );
        }
    }
}

#[test]
fn minimum_chrome_version_is_what_the_features_in_use_need() {
    let sources = sources();
    let in_use: Vec<_> = FEATURES
        .iter()
        .filter(|(_, marker, _)| sources.contains(marker))
        .collect();
    let (feature, _, needed) = in_use
        .iter()
        .max_by_key(|(_, _, version)| *version)
        .expect("the extension uses at least one versioned feature");
    let declared: u32 = manifest()["minimum_chrome_version"]
        .as_str()
        .expect("manifest.json sets minimum_chrome_version")
        .parse()
        .expect("minimum_chrome_version is a major version number");
    assert_eq!(
        declared, *needed,
        "minimum_chrome_version should be {needed} (the newest feature in use: {feature})"
    );
}
