//! A spawn storm on one bridge port: ten stdio servers started at once, each under a real MCP
//! client (the Python SDK), plus servers killed within 200 ms of their start as some hosts do.
//! Exactly one process owns the port, every host completes `initialize` and a status call,
//! and the survivors keep working whoever died. Every process the test starts is stopped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use domshell_tests::python::{DriverRun, PythonEnv};
use domshell_tests::server::server_binary;
use domshell_tests::{eventually, FakeExtension, FakeOptions, TEST_TOKEN};
use serde_json::{json, Value};

const HOSTS: usize = 10;
/// Servers killed (SIGKILL) shortly after their start, in two waves.
const SHORT_LIVED: usize = 6;
const DRIVER_TIMEOUT: Duration = Duration::from_secs(150);

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("an ephemeral port");
    listener.local_addr().expect("its address").port()
}

/// Arguments of one stdio server; `key` is the relay key file all of them share, as the
/// servers of one user share `~/.config/domshell/relay-key`.
fn serve_args(dir: &std::path::Path, key: &std::path::Path, port: u16) -> Vec<String> {
    let mut args: Vec<String> = [
        "serve",
        "--ws-port",
        &port.to_string(),
        "--token",
        TEST_TOKEN,
        "--ping-interval-ms",
        "200",
        "--silence-limit-ms",
        "1000",
        "--connect-grace-ms",
        "3000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push("--audit-log".into());
    args.push(dir.join("audit.log").display().to_string());
    args.push("--relay-key-file".into());
    args.push(key.display().to_string());
    args
}

fn server_env(dir: &std::path::Path) -> Value {
    json!({
        "XDG_CONFIG_HOME": dir.display().to_string(),
        "XDG_STATE_HOME": dir.display().to_string(),
        "DOMSHELL_LOG": "debug",
    })
}

fn status(label: &str) -> Value {
    json!({"op": "call_tool", "name": "domshell_status", "arguments": {}, "label": label})
}

/// A stdio server started directly, so the test holds its pid and can kill it.
fn short_lived(dir: &std::path::Path, key: &std::path::Path, port: u16) -> Child {
    let mut cmd = Command::new(server_binary().expect("server binary"));
    cmd.args(serve_args(dir, key, port))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in server_env(dir).as_object().into_iter().flatten() {
        cmd.env(key, value.as_str().unwrap_or(""));
    }
    cmd.spawn().expect("a short-lived server starts")
}

/// Kill each child at its own moment within 200 ms of its start; reap it.
fn kill_within_200ms(mut children: Vec<(Child, Instant)>) {
    // Spread over 0..200 ms, deterministic per run but different per child.
    let mut delays: Vec<u64> = (0..children.len() as u64)
        .map(|i| (i * 67 + u64::from(std::process::id())) % 190)
        .collect();
    delays.sort_unstable();
    for ((child, started), delay) in children.iter_mut().zip(delays) {
        let due = *started + Duration::from_millis(delay);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let _ = child.kill();
    }
    for (child, started) in &mut children {
        let _ = child.wait();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a short-lived server was not reaped promptly"
        );
    }
}

/// The role and pid of the server answering `run`'s host, and the owner pid it reports.
fn identity(status: &Value) -> (String, u64, u64) {
    let owner_pid = status["pid"].as_u64().unwrap_or(0);
    match status.get("this_process").filter(|t| t.is_object()) {
        Some(this) => (
            this["role"].as_str().unwrap_or("?").to_string(),
            this["pid"].as_u64().unwrap_or(0),
            owner_pid,
        ),
        None => (
            status["role"].as_str().unwrap_or("?").to_string(),
            owner_pid,
            owner_pid,
        ),
    }
}

/// A process that exists and is not a zombie.
fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

fn step<'a>(run: &'a DriverRun, label: &str) -> &'a Value {
    run.step(label)
        .unwrap_or_else(|| panic!("no step {label}:\n{}", run.failure_report()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spawn_storm_elects_one_owner_and_serves_every_host() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .expect("venv task")
        .expect("a Python venv with the mcp SDK (needs python3 and PyPI)");
    let port = free_port();
    let dirs: Vec<tempfile::TempDir> = (0..HOSTS + SHORT_LIVED)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let barriers = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("relay-key");
    let barrier = |name: &str, count: usize| {
        json!({"op": "barrier", "dir": barriers.path().display().to_string(),
               "name": name, "count": count, "timeout_ms": 90_000, "label": name})
    };
    let started = Instant::now();
    let mut drivers = Vec::new();
    for dir in &dirs[..HOSTS] {
        let plan = json!({
            "transport": {
                "type": "stdio",
                "command": server_binary().expect("server binary").display().to_string(),
                "args": serve_args(dir.path(), &key, port),
                "env": server_env(dir.path()),
            },
            "protocol": "legacy",
            "timeout_ms": 120_000,
            "read_timeout_ms": 60_000,
            "steps": [
                {"op": "initialize"},
                status("first"),
                // Every host (and the test, once the short-lived servers are dead) arrives
                // before anyone asks who owns the port, so the answers describe one moment.
                barrier("settled", HOSTS + 1),
                status("final"),
                {"op": "call_tool", "name": "domshell_execute",
                 "arguments": {"command": "pwd"}, "label": "pwd"},
                // Nobody leaves (closing its server, maybe the owner) before all have asked.
                barrier("asked", HOSTS),
            ],
        });
        let py = py.clone();
        drivers.push(tokio::spawn(async move {
            py.run_driver(&plan, DRIVER_TIMEOUT).await
        }));
    }
    // Short-lived servers: a first wave with the storm, a second while the hosts' servers
    // are starting (the Python clients take about a second to import the SDK).
    let (first_wave, second_wave) = dirs[HOSTS..].split_at(SHORT_LIVED / 2);
    for (wave, delay) in [(first_wave, 0u64), (second_wave, 1_200)] {
        let due = started + Duration::from_millis(delay);
        tokio::time::sleep(due.saturating_duration_since(Instant::now())).await;
        let children: Vec<(Child, Instant)> = wave
            .iter()
            .map(|dir| (short_lived(dir.path(), &key, port), Instant::now()))
            .collect();
        tokio::task::spawn_blocking(move || kill_within_200ms(children))
            .await
            .expect("kill task");
    }
    // The browser's extension finds the owner on the port, whichever process that is.
    let bridge = format!("ws://127.0.0.1:{port}/bridge");
    let _extension = eventually(Duration::from_secs(60), Duration::from_millis(200), || {
        let bridge = bridge.clone();
        async move {
            FakeExtension::connect(&bridge, FakeOptions::default())
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await
    .expect("the extension reaches the owner");
    std::fs::write(barriers.path().join("settled.test"), b"").unwrap();

    let mut runs = Vec::new();
    for driver in drivers {
        runs.push(driver.await.expect("driver task").expect("driver ran"));
    }
    let mut owners = Vec::new();
    let mut owner_pids = Vec::new();
    let mut server_pids = Vec::new();
    for run in &runs {
        run.ensure_ok()
            .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
        // The first status was answered: by the owner, or — if the owner it was attached to
        // was one of the short-lived servers — with a retryable owner_lost.
        let first = step(run, "first");
        assert!(
            first["is_error"] == false || first["structured_content"]["reason"] == "owner_lost",
            "{first}"
        );
        let fin = step(run, "final");
        assert_eq!(fin["is_error"], false, "{fin}");
        let (role, pid, owner_pid) = identity(&fin["structured_content"]);
        assert!(role == "owner" || role == "proxy", "{fin}");
        if role == "owner" {
            owners.push(pid);
        }
        owner_pids.push(owner_pid);
        server_pids.push(pid);
        assert!(
            step(run, "pwd")["text"]
                .as_str()
                .is_some_and(|t| t.starts_with('~')),
            "{}",
            step(run, "pwd")
        );
    }
    assert_eq!(owners.len(), 1, "exactly one owner: {owners:?}");
    assert!(
        owner_pids.iter().all(|p| *p == owners[0]),
        "every host's status names the same owner {owners:?}: {owner_pids:?}"
    );
    server_pids.sort_unstable();
    server_pids.dedup();
    assert_eq!(server_pids.len(), HOSTS, "one server per host");
    // Every host closed its server's stdin; each server must be gone soon after.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server_pids.iter().any(|pid| alive(*pid)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lingering: Vec<u64> = server_pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(
        lingering.is_empty(),
        "servers outlived their hosts: {lingering:?}"
    );
    eprintln!(
        "spawn storm: {HOSTS} hosts + {SHORT_LIVED} short-lived servers settled in {:?}",
        started.elapsed()
    );
}
