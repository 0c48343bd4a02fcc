//! The shipped container image, run by podman the way ToolHive runs it, with the browser on
//! the host: `MCP_TRANSPORT`/`MCP_PORT` in the environment, the MCP port and the bridge port
//! published to 127.0.0.1 (and separately `--network host`), the Python MCP SDK on `/mcp`
//! through the published port, the real extension in headless Chromium dialing the published
//! bridge port, `domshell_execute "tabs"` answered from the real browser, then `podman stop`
//! and a clean exit within the 2 s grace. Also: the scratch image's writable data directory
//! (generated token, audit log) and its HEALTHCHECK.
//!
//! The image comes from `cargo xtask test` (`DOMSHELL_TEST_IMAGE`); without it these tests
//! fail saying how to build it.

use std::time::Duration;

use domshell_tests::container::{test_image, Container};
use domshell_tests::python::PythonEnv;
use domshell_tests::{eventually, Chromium, TEST_MCP_TOKEN, TEST_TOKEN};
use serde_json::{json, Value};

/// The port ToolHive would pass as `--target-port` (it sets `MCP_PORT` to it).
const TARGET_PORT: u16 = 8080;
const BRIDGE_PORT: u16 = shared_protocol::DEFAULT_BRIDGE_PORT;
/// `podman stop` grace: the server must be gone before SIGKILL would come.
const STOP_GRACE: Duration = Duration::from_secs(2);

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn health(port: u16) -> anyhow::Result<Value> {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(format!("http://127.0.0.1:{port}/health"))
        .timeout(Duration::from_secs(2))
        .send()
        .await?;
    anyhow::ensure!(response.status().is_success(), "{}", response.status());
    Ok(response.json().await?)
}

/// Where the test reaches the container from the host.
struct Reach {
    mcp_port: u16,
    bridge_port: u16,
}

/// Drive one running container end to end: MCP client, real extension, `tabs`, stop.
async fn tabs_through_the_container(container: Container, reach: Reach) {
    let first = eventually(Duration::from_secs(20), Duration::from_millis(100), || {
        health(reach.mcp_port)
    })
    .await
    .unwrap_or_else(|e| panic!("no /health on the MCP port: {e:#}\n{:?}", container.logs()));
    assert_eq!(first["transport"], "http", "{first}");
    assert!(
        container.healthcheck().unwrap(),
        "the image's HEALTHCHECK fails"
    );

    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("a Python venv with the mcp SDK");
    let chromium = Chromium::launch_built_extension()
        .await
        .expect("Chromium with the built extension (apt-get install -y chromium)");
    let settings = json!({"bridge_token": TEST_TOKEN, "bridge_port": reach.bridge_port,
                          "bridge_alarm_period_ms": 1000});
    eventually(Duration::from_secs(10), Duration::from_millis(100), || {
        chromium.set_storage(settings.clone())
    })
    .await
    .unwrap();
    eventually(
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            let doc = health(reach.mcp_port).await?;
            anyhow::ensure!(doc["link"]["state"] == "connected", "link: {}", doc["link"]);
            Ok(())
        },
    )
    .await
    .unwrap_or_else(|e| {
        panic!(
            "the extension never connected to the published bridge port: {e:#}\n{:?}",
            container.logs()
        )
    });

    let plan = json!({
        "transport": {"type": "http", "url": format!("http://127.0.0.1:{}/mcp", reach.mcp_port),
                      "headers": {"Authorization": format!("Bearer {TEST_MCP_TOKEN}")}},
        "protocol": "legacy",
        "timeout_ms": 30_000,
        "steps": [
            {"op": "call_tool", "name": "domshell_execute", "label": "tabs", "arguments": {"command": "tabs"}},
            {"op": "call_tool", "name": "domshell_status", "label": "status", "arguments": {}},
        ],
    });
    let run = py.run_driver(&plan, Duration::from_secs(40)).await.unwrap();
    run.ensure_ok().unwrap();
    let tabs = run.step("tabs").unwrap();
    assert_eq!(tabs["is_error"], false, "{tabs}");
    let text = tabs["text"].as_str().unwrap();
    assert!(text.contains("about:blank"), "the real tab list: {text}");
    assert!(text.contains("[lane: "), "{text}");
    let status = &run.step("status").unwrap()["structured_content"];
    assert_eq!(status["link"]["state"], "connected", "{status}");
    assert_eq!(status["transport"], "http");

    let (code, elapsed) = container.stop(STOP_GRACE).unwrap();
    let (stdout, stderr) = container.logs().unwrap();
    assert_eq!(
        code, 0,
        "exit code after SIGTERM (137 = killed after the {STOP_GRACE:?} grace), took {elapsed:?}\n{stderr}"
    );
    assert_eq!(stdout, "", "logs go to stderr only");
    assert!(stderr.contains("listening on"), "{stderr}");
    assert!(stderr.contains("signal received"), "{stderr}");
    assert!(
        !stderr.contains(TEST_TOKEN),
        "the token never reaches the log"
    );
    drop(chromium);
}

#[tokio::test]
async fn published_ports_like_toolhive_bridge_networking() {
    let image = test_image().unwrap();
    let container = Container::run(
        &image,
        &[
            "--env".into(),
            "MCP_TRANSPORT=streamable-http".into(),
            "--env".into(),
            format!("MCP_PORT={TARGET_PORT}"),
            "--env".into(),
            format!("DOMSHELL_TOKEN={TEST_TOKEN}"),
            "--env".into(),
            format!("DOMSHELL_MCP_TOKEN={TEST_MCP_TOKEN}"),
            // Ephemeral host ports on loopback only.
            "--publish".into(),
            format!("127.0.0.1::{TARGET_PORT}"),
            "--publish".into(),
            format!("127.0.0.1::{BRIDGE_PORT}"),
        ],
        &strings(&["--connect-grace-ms", "15000"]),
    )
    .unwrap();
    let reach = Reach {
        mcp_port: container.host_port(TARGET_PORT).unwrap(),
        bridge_port: container.host_port(BRIDGE_PORT).unwrap(),
    };
    tabs_through_the_container(container, reach).await;
}

#[tokio::test]
async fn host_networking_like_toolhive_on_linux() {
    let image = test_image().unwrap();
    let (mcp_port, bridge_port) = (free_port(), free_port());
    let container = Container::run(
        &image,
        &[
            "--network".into(),
            "host".into(),
            "--env".into(),
            "MCP_TRANSPORT=streamable-http".into(),
            "--env".into(),
            format!("MCP_PORT={mcp_port}"),
            // On the host's network the bridge stays on loopback, as the recipe says.
            "--env".into(),
            "DOMSHELL_HOST=127.0.0.1".into(),
            "--env".into(),
            format!("DOMSHELL_WS_PORT={bridge_port}"),
            "--env".into(),
            format!("DOMSHELL_TOKEN={TEST_TOKEN}"),
            "--env".into(),
            format!("DOMSHELL_MCP_TOKEN={TEST_MCP_TOKEN}"),
        ],
        &strings(&["--connect-grace-ms", "15000"]),
    )
    .unwrap();
    tabs_through_the_container(
        container,
        Reach {
            mcp_port,
            bridge_port,
        },
    )
    .await;
}

#[tokio::test]
async fn without_a_token_the_image_keeps_a_generated_one_and_its_audit_log_in_data() {
    let image = test_image().unwrap();
    let container = Container::run(
        &image,
        &strings(&["--publish", &format!("127.0.0.1::{BRIDGE_PORT}")]),
        &[],
    )
    .unwrap();
    let port = container.host_port(BRIDGE_PORT).unwrap();
    eventually(Duration::from_secs(20), Duration::from_millis(100), || {
        health(port)
    })
    .await
    .unwrap_or_else(|e| panic!("the server did not come up: {e:#}\n{:?}", container.logs()));

    let out = container.exec(&["/domshell", "token"]).unwrap();
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(token.len() >= 32, "a generated token: {token:?}");

    let dir = tempfile::tempdir().unwrap();
    container
        .copy_out("/data/config/domshell/token", dir.path())
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("token"))
            .unwrap()
            .trim(),
        token
    );
    // The MCP token is a secret of its own, kept beside it.
    let out = container.exec(&["/domshell", "token", "mcp"]).unwrap();
    assert!(out.status.success(), "{out:?}");
    let mcp_token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        mcp_token.len() >= 32,
        "a generated MCP token: {mcp_token:?}"
    );
    assert_ne!(mcp_token, token, "the MCP token is not the extension's");
    container
        .copy_out("/data/config/domshell/mcp-token", dir.path())
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mcp-token"))
            .unwrap()
            .trim(),
        mcp_token
    );
    container
        .copy_out("/data/state/domshell/audit.log", dir.path())
        .unwrap();
    assert!(dir.path().join("audit.log").is_file());

    // The health subcommand itself, inside the image, on the default port.
    let out = container.exec(&["/domshell", "health"]).unwrap();
    assert!(out.status.success(), "{out:?}");
    let out = container
        .exec(&["/domshell", "health", "--port", "1"])
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "nothing listens on port 1: {out:?}"
    );

    let (code, _) = container.stop(STOP_GRACE).unwrap();
    assert_eq!(code, 0);
}

#[tokio::test]
async fn a_token_file_mounted_into_the_container_is_the_token() {
    use std::os::unix::fs::PermissionsExt;
    let image = test_image().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let token = "mounted-token-0123456789abcdef0123456789";
    std::fs::write(&token_file, token).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The file's owner runs the server, so a private (0600) file stays readable to it.
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let container = Container::run(
        &image,
        &[
            "--user".into(),
            format!("{uid}:{gid}"),
            "--volume".into(),
            format!("{}:/run/secrets/domshell-token:ro", token_file.display()),
            "--env".into(),
            "DOMSHELL_TOKEN_FILE=/run/secrets/domshell-token".into(),
            "--publish".into(),
            format!("127.0.0.1::{BRIDGE_PORT}"),
        ],
        &[],
    )
    .unwrap();
    let port = container.host_port(BRIDGE_PORT).unwrap();
    eventually(Duration::from_secs(20), Duration::from_millis(100), || {
        health(port)
    })
    .await
    .unwrap_or_else(|e| panic!("the server did not come up: {e:#}\n{:?}", container.logs()));
    let out = container.exec(&["/domshell", "token"]).unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), token);
    let (code, _) = container.stop(STOP_GRACE).unwrap();
    assert_eq!(code, 0);
}
