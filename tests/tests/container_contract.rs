//! The contract a container runtime such as ToolHive relies on, tested by running the binary
//! the way its image does: `MCP_TRANSPORT` and `MCP_PORT` from the environment, bound to all
//! interfaces, `/mcp` and `/health` on the assigned port, logs on stderr and nothing on stdout.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use domshell_tests::server::server_binary;
use serde_json::{json, Value};

/// Kills the child on drop, so a failing assertion leaves nothing behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn mcp_transport_and_port_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (bridge_port, mcp_port) = (free_port(), free_port());
    let child = Command::new(server_binary().unwrap())
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("MCP_TRANSPORT", "streamable-http")
        .env("MCP_PORT", mcp_port.to_string())
        .env("DOMSHELL_HOST", "0.0.0.0")
        .env("DOMSHELL_WS_PORT", bridge_port.to_string())
        .env("DOMSHELL_TOKEN", "container-token-0123456789abcdef0123")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut child = Killed(child);

    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{mcp_port}");
    let started = Instant::now();
    let health: Value = loop {
        match http.get(format!("{url}/health")).send().await {
            Ok(r) if r.status().is_success() => break r.json().await.unwrap(),
            _ if started.elapsed() > Duration::from_secs(10) => panic!("no /health on MCP_PORT"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert_eq!(health["transport"], "http");
    assert_eq!(health["bridge_port"], bridge_port);

    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "thv", "version": "1"}}});
    // Bound to 0.0.0.0, the Host check stays on: the machine's (in a container, the
    // container's) own name is accepted, as are the loopback names ToolHive's proxy sends…
    let own_name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("the host name")
        .trim()
        .to_string();
    for host in [own_name.as_str(), "127.0.0.1", "localhost"] {
        let response = http
            .post(format!("{url}/mcp"))
            .header("Accept", "application/json, text/event-stream")
            .header("Host", format!("{host}:{mcp_port}"))
            .json(&init)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{host}: {}",
            response.status()
        );
        assert!(response.text().await.unwrap().contains("\"domshell\""));
    }
    // …and a name it is not reached by is refused (DNS rebinding), on both ports.
    for port in [mcp_port, bridge_port] {
        let refused = http
            .get(format!("http://127.0.0.1:{port}/health"))
            .header("Host", format!("rebound.example:{port}"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403, "port {port}");
    }
    // The bridge port serves the extension too.
    let bridge_health = http
        .get(format!("http://127.0.0.1:{bridge_port}/health"))
        .send()
        .await
        .unwrap();
    assert!(bridge_health.status().is_success());

    // SIGTERM (docker stop) exits cleanly; stdout stayed empty, logs went to stderr.
    let pid = child.0.id() as i32;
    // SAFETY: signalling a child this test spawned and still owns.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 5 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
    let (mut out, mut err) = (String::new(), String::new());
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(out, "", "stdout is reserved for MCP over stdio");
    assert!(err.contains("listening on"), "{err}");
    assert!(
        !err.contains("container-token-0123456789abcdef0123"),
        "the token never reaches the log"
    );
}
