//! What `cargo xtask package` ships, checked the way its users meet it:
//!
//! - the `.mcpb` bundle passes the official `@anthropic-ai/mcpb` CLI's `validate` and `info`,
//!   and the server inside it, started the way Claude Desktop starts it (the manifest's
//!   `mcp_config` with `${__dirname}` resolved), answers a real MCP client over stdio with the
//!   tools the manifest declares;
//! - the extension zip holds `manifest.json`, `extension/static/` and `extension/pkg/` only,
//!   and once extracted loads unpacked in Chromium, where its worker boots.
//!
//! The files come from `cargo xtask test` (`DOMSHELL_TEST_MCPB`, `DOMSHELL_TEST_MCPB_CLI`,
//! `DOMSHELL_TEST_EXTENSION_ZIP`); without them these tests fail saying how to build them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use domshell_tests::bounded;
use domshell_tests::python::PythonEnv;
use domshell_tests::Chromium;
use serde_json::{json, Value};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A path `cargo xtask test` hands over in `var`.
fn handed_over(var: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "{var} is not set: run the suite with `cargo xtask test` (it builds the packages)"
            )
        });
    assert!(path.exists(), "{var}={} does not exist", path.display());
    path
}

/// Extract `archive` into `into`; returns the entry names.
fn extract(archive: &Path, into: &Path) -> Vec<String> {
    let file = std::fs::File::open(archive).unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let names: Vec<String> = zip
        .file_names()
        .map(|name| name.unwrap().into_owned())
        .collect();
    zip.extract(into).unwrap();
    names
}

fn run_mcpb_cli(verb: &str, arg: &Path) -> std::process::Output {
    let cli = handed_over("DOMSHELL_TEST_MCPB_CLI");
    let mut cmd = Command::new("node");
    cmd.arg(&cli).arg(verb).arg(arg);
    bounded::run_blocking(cmd, Duration::from_secs(60), "mcpb").unwrap()
}

#[tokio::test]
async fn the_bundle_passes_the_official_cli_and_its_server_answers_like_claude_desktop_starts_it() {
    let mcpb = handed_over("DOMSHELL_TEST_MCPB");
    assert_eq!(
        mcpb.file_name().unwrap().to_string_lossy(),
        format!("domshell-{VERSION}.mcpb")
    );
    let dir = tempfile::tempdir().unwrap();
    let names = extract(&mcpb, dir.path());
    assert!(names.contains(&"manifest.json".to_string()), "{names:?}");

    let out = run_mcpb_cli("validate", &dir.path().join("manifest.json"));
    assert!(
        out.status.success(),
        "{}",
        bounded::describe_failure("mcpb validate", &out)
    );
    let out = run_mcpb_cli("info", &mcpb);
    assert!(
        out.status.success(),
        "{}",
        bounded::describe_failure("mcpb info", &out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Size"),
        "mcpb info read the bundle"
    );

    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["version"], VERSION);
    assert_eq!(manifest["server"]["type"], "binary");
    let entry = dir
        .path()
        .join(manifest["server"]["entry_point"].as_str().unwrap());
    let mode = std::fs::metadata(&entry).unwrap().permissions().mode();
    assert!(
        mode & 0o111 != 0,
        "the bundled server is executable: {mode:o}"
    );
    let command = manifest["server"]["mcp_config"]["command"]
        .as_str()
        .unwrap()
        .replace("${__dirname}", &dir.path().display().to_string());
    assert_eq!(Path::new(&command), entry);
    let args: Vec<String> =
        serde_json::from_value(manifest["server"]["mcp_config"]["args"].clone()).unwrap();
    assert_eq!(args, ["serve"], "stdio, read-only by default");

    // Started the way the host starts it; only the environment keeps it off the real port
    // and out of the person's config directory.
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("a Python venv with the mcp SDK");
    let home = tempfile::tempdir().unwrap();
    let plan = json!({
        "transport": {"type": "stdio", "command": command, "args": args,
                      "env": {"XDG_CONFIG_HOME": home.path().join("config").display().to_string(),
                              "XDG_STATE_HOME": home.path().join("state").display().to_string(),
                              "DOMSHELL_WS_PORT": "0"}},
        "protocol": "legacy",
        "timeout_ms": 20_000,
        "steps": [
            {"op": "initialize"},
            {"op": "list_tools"},
            {"op": "call_tool", "name": "domshell_status", "arguments": {}, "label": "status"},
        ],
    });
    let run = py.run_driver(&plan, Duration::from_secs(30)).await.unwrap();
    run.ensure_ok().unwrap();
    let mut served = run.tool_names();
    served.sort_unstable();
    let mut declared: Vec<&str> = manifest["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    declared.sort_unstable();
    assert_eq!(
        served, declared,
        "the manifest declares exactly the served tools"
    );
    let status = &run.step("status").unwrap()["structured_content"];
    assert_eq!(status["server_version"], VERSION, "{status}");
    assert_eq!(status["transport"], "stdio");
}

#[tokio::test]
async fn the_extension_zip_holds_only_the_extension_and_loads_unpacked_in_chromium() {
    let zip = handed_over("DOMSHELL_TEST_EXTENSION_ZIP");
    assert_eq!(
        zip.file_name().unwrap().to_string_lossy(),
        format!("domshell-extension-{VERSION}.zip")
    );
    let dir = tempfile::tempdir().unwrap();
    let names = extract(&zip, dir.path());
    for name in &names {
        assert!(
            name == "manifest.json"
                || name.starts_with("extension/static/")
                || name.starts_with("extension/pkg/"),
            "{name} does not belong in the extension zip"
        );
    }
    for required in [
        "manifest.json",
        "extension/pkg/domshell_extension_bg.wasm",
        "extension/pkg/domshell_extension.js",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "{required} missing: {names:?}"
        );
    }
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["manifest_version"], 3);
    assert_eq!(manifest["version"], VERSION);
    for referenced in [
        &manifest["background"]["service_worker"],
        &manifest["options_ui"]["page"],
    ] {
        let path = referenced.as_str().unwrap();
        assert!(
            dir.path().join(path).is_file(),
            "{path} is referenced but not shipped"
        );
    }

    // Loaded unpacked from the extracted folder: the pinned id, a worker that boots.
    let chromium = Chromium::launch_extension_dir(dir.path())
        .await
        .expect("the extracted extension boots in Chromium (apt-get install -y chromium)");
    assert_eq!(
        chromium.extension_id().as_deref(),
        Some(shared_protocol::EXTENSION_ID)
    );
    let storage = chromium.get_storage().await.unwrap();
    assert!(storage.is_object(), "the worker answers: {storage}");
}

#[tokio::test]
async fn the_web_store_zip_is_the_same_extension_without_the_key() {
    let unpacked = handed_over("DOMSHELL_TEST_EXTENSION_ZIP");
    let web_store = handed_over("DOMSHELL_TEST_WEBSTORE_ZIP");
    assert_eq!(
        web_store.file_name().unwrap().to_string_lossy(),
        format!("domshell-extension-{VERSION}-webstore.zip")
    );
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut names_a = extract(&unpacked, a.path());
    let mut names_b = extract(&web_store, b.path());
    names_a.sort();
    names_b.sort();
    assert_eq!(names_a, names_b);
    for name in names_a.iter().filter(|n| *n != "manifest.json") {
        assert_eq!(
            std::fs::read(a.path().join(name)).unwrap(),
            std::fs::read(b.path().join(name)).unwrap(),
            "{name} differs"
        );
    }
    let read = |dir: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
    };
    let mut with_key = read(a.path());
    let without_key = read(b.path());
    assert!(
        without_key.get("key").is_none(),
        "the Web Store refuses a key"
    );
    with_key.as_object_mut().unwrap().remove("key");
    assert_eq!(with_key, without_key);

    // Without a key Chromium derives an id of its own; the worker still starts.
    let chromium = Chromium::launch(b.path())
        .await
        .expect("Chromium (apt-get install -y chromium)");
    let worker = chromium
        .wait_for_any_extension_worker(Duration::from_secs(20))
        .await
        .unwrap();
    assert_ne!(
        worker.extension_id(),
        Some(shared_protocol::EXTENSION_ID),
        "no key, so not the pinned id"
    );
}
