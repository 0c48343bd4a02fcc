//! Many hosts, one bridge port: a stdio server that finds the port taken attaches to the
//! owner, explains a conflict it cannot resolve (degraded mode) and heals in place, and takes
//! the port over in-process when its owner dies — answering whatever was in flight. Driven by
//! the Python MCP SDK over stdio, against the real binary and fake extensions.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domshell_tests::python::{DriverRun, PythonEnv};
use domshell_tests::server::stdio_transport;
use domshell_tests::{
    eventually, FakeExtension, FakeOptions, ServerOptions, ServerProcess, TEST_TOKEN,
};
use serde_json::{json, Value};
use shared_protocol::frame::Frame;

const DRIVER_TIMEOUT: Duration = Duration::from_secs(90);

async fn python() -> PythonEnv {
    tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .expect("venv task")
        .expect("a Python venv with the mcp SDK (needs python3 and PyPI)")
}

/// A stdio `domshell serve` on `port`, as an MCP host would spawn it. `key` is the relay key
/// file it shares with the other servers of the test, as one user's servers share
/// `~/.config/domshell/relay-key`.
fn contender(dir: &std::path::Path, port: u16, key: &std::path::Path) -> Value {
    contender_with(dir, port, key, &[])
}

fn contender_with(
    dir: &std::path::Path,
    port: u16,
    key: &std::path::Path,
    extra: &[&str],
) -> Value {
    let mut args: Vec<String> = [
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
        "--audit-log",
        &dir.join("audit.log").display().to_string(),
        "--relay-key-file",
        &key.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    stdio_transport(dir, &args)
}

/// An owner started with `opts`, with a fake extension connected to it.
async fn owner_with_extension(opts: ServerOptions) -> (ServerProcess, FakeExtension) {
    let owner = ServerProcess::start(opts).await.expect("owner starts");
    let fake = FakeExtension::connect(&owner.bridge_url(), FakeOptions::default())
        .await
        .expect("fake extension on the owner");
    owner
        .wait_for_link_state("connected", Duration::from_secs(5))
        .await
        .expect("the owner sees its extension");
    (owner, fake)
}

fn call(label: &str, command: &str) -> Value {
    json!({"op": "call_tool", "name": "domshell_execute", "arguments": {"command": command}, "label": label})
}

fn status(label: &str) -> Value {
    json!({"op": "call_tool", "name": "domshell_status", "arguments": {}, "label": label})
}

fn step<'a>(run: &'a DriverRun, label: &str) -> &'a Value {
    run.step(label)
        .unwrap_or_else(|| panic!("no step {label}:\n{}", run.failure_report()))
}

fn text(step: &Value) -> &str {
    step["text"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_second_server_attaches_to_the_owner() {
    let py = python().await;
    let (owner, fake) = owner_with_extension(ServerOptions {
        extra_args: vec!["--progress-interval-ms".into(), "100".into()],
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let plan = json!({
        "transport": contender(dir.path(), owner.port(), &owner.relay_key_path()),
        "protocol": "legacy",
        "timeout_ms": 30_000,
        "steps": [
            {"op": "initialize"},
            {"op": "list_tools", "label": "tools"},
            call("pwd", "pwd"),
            call("multi", "echo one\necho two"),
            {"op": "call_tool", "name": "domshell_execute", "label": "progress", "progress": true,
             "arguments": {"command": "sleep 700"}},
            {"op": "call_tool", "name": "domshell_execute", "label": "cancel", "cancel_after_ms": 300,
             "arguments": {"command": "sleep 5000"}},
            status("status"),
        ],
    });
    let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
    run.ensure_ok()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
    assert_eq!(run.tool_names(), ["domshell_execute", "domshell_status"]);
    assert_eq!(text(step(&run, "pwd")), "~\n[lane: shared]");
    assert!(text(step(&run, "multi")).contains("$ echo two\ntwo"));
    // Progress and cancellation pass through the relay both ways.
    let progress = step(&run, "progress");
    assert_eq!(progress["is_error"], false, "{progress}");
    assert!(
        progress["progress"].as_array().map_or(0, Vec::len) >= 2,
        "progress notifications from the owner reach the host: {progress}"
    );
    assert_eq!(step(&run, "cancel")["cancelled"], true);
    let Frame::Execute { id, .. } = fake
        .wait_for_frame(
            |f| matches!(f, Frame::Execute { command, .. } if command == "sleep 5000"),
            Duration::from_secs(1),
        )
        .await
        .unwrap()
    else {
        unreachable!()
    };
    fake.wait_for_frame(
        |f| matches!(f, Frame::Cancel { id: c } if *c == id),
        Duration::from_secs(3),
    )
    .await
    .expect("the host's cancellation reaches the extension through the relay");
    // The owner answers: its pid, its link to the extension.
    let status = &step(&run, "status")["structured_content"];
    assert_eq!(status["pid"], owner.pid(), "{status}");
    assert_eq!(status["link"]["state"], "connected", "{status}");
    assert_eq!(status["state"], "ready", "{status}");
    // ... and the proxy says what it is.
    assert_eq!(status["this_process"]["role"], "proxy", "{status}");
    assert_ne!(status["this_process"]["pid"], owner.pid(), "{status}");
}

#[tokio::test]
async fn each_attached_host_keeps_its_own_rails() {
    let py = python().await;
    // A read-only owner; the host that attaches allowed its agent to write.
    let (owner, _fake) = owner_with_extension(ServerOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = json!({
        "transport": contender_with(dir.path(), owner.port(), &owner.relay_key_path(), &["--allow-write", "--domains", "example.com"]),
        "protocol": "legacy",
        "timeout_ms": 30_000,
        "steps": [
            {"op": "initialize"},
            call("click", "click x"),
            call("elsewhere", "open evil.example"),
            status("status"),
        ],
    });
    let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
    run.ensure_ok()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
    // Allowed by the host's rails: it reached the extension (which knows no `click`).
    let click = step(&run, "click");
    assert!(text(click).contains("command not found"), "{click}");
    // The host's domain list holds too.
    let elsewhere = step(&run, "elsewhere");
    assert_eq!(
        elsewhere["structured_content"]["reason"], "domain_denied",
        "{elsewhere}"
    );
    // The owner lists the session with the host's rails.
    let status = &step(&run, "status")["structured_content"];
    let sessions: Vec<&Value> = status["sessions"]
        .as_object()
        .map(|m| m.values().collect())
        .unwrap_or_default();
    assert!(
        sessions.iter().any(|s| s["policy"]["allow_write"] == true
            && s["policy"]["domains"] == json!(["example.com"])
            && s["client"]
                .as_str()
                .is_some_and(|c| c.starts_with("stdio-proxy/"))),
        "{status}"
    );
    // The host's own audit log has the record, written by the owner.
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap_or_default();
    assert!(
        audit.contains("click x") && audit.contains("\"tier\":\"write\""),
        "{audit}"
    );

    // The other way round: a read-only host on a writing owner stays read-only.
    let dir = tempfile::tempdir().unwrap();
    let writer = ServerProcess::start(ServerOptions {
        extra_args: vec!["--allow-write".into()],
        ..Default::default()
    })
    .await
    .expect("writing owner starts");
    let _fake = FakeExtension::connect(&writer.bridge_url(), FakeOptions::default())
        .await
        .expect("fake extension on the writing owner");
    let plan = json!({
        "transport": contender(dir.path(), writer.port(), &writer.relay_key_path()),
        "protocol": "legacy",
        "timeout_ms": 30_000,
        "steps": [{"op": "initialize"}, call("click", "click x")],
    });
    let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
    run.ensure_ok()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
    assert_eq!(
        step(&run, "click")["structured_content"]["reason"],
        "tier_denied"
    );
}

/// A plain TCP program on the port that accepts and hangs up; after `serve` connections it
/// stops listening, so the port frees up while the contender is degraded.
fn squatter(serve: usize) -> (u16, std::thread::JoinHandle<()>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("squatter binds");
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(serve) {
            counter.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut s) = stream {
                // Read the request first: hanging up on unread data would reset the
                // connection before the prober sees the banner.
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut request = [0u8; 1024];
                let _ = s.read(&mut request);
                let _ = s.write_all(b"SSH-2.0-NotDomshell\r\n");
            }
        }
    });
    (port, handle, seen)
}

/// A program on the port that accepts connections and never says a word (every probe of it
/// waits out its timeouts), until `stop` is set or two minutes pass.
fn silent_squatter() -> (u16, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("squatter binds");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let handle = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let mut held = Vec::new();
        while !stopped.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => held.push(stream),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (port, stop, handle)
}

/// While degraded, tries for the port run in the background: a holder that never answers
/// (each probe of it lasts seconds) does not hold up the replies to the host.
#[tokio::test]
async fn a_silent_holder_does_not_hold_up_degraded_replies() {
    let py = python().await;
    let (port, stop, squatter) = silent_squatter();
    let dir = tempfile::tempdir().unwrap();
    let mut steps = vec![json!({"op": "initialize"})];
    for i in 0..10 {
        steps.push(call(&format!("call_{i}"), "tabs"));
        steps.push(json!({"op": "sleep", "ms": 400}));
    }
    let plan = json!({
        "transport": contender(dir.path(), port, &dir.path().join("relay-key")),
        "protocol": "legacy",
        "timeout_ms": 60_000,
        "steps": steps,
    });
    let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
    stop.store(true, Ordering::SeqCst);
    squatter.join().unwrap();
    run.ensure_ok()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
    // Ten calls over about 5 s span at least one try for the port (every 2 s), and a try
    // of a silent holder lasts about 4 s; a reply that waited for it would take seconds.
    for i in 0..10 {
        let answered = step(&run, &format!("call_{i}"));
        assert_eq!(answered["is_error"], true, "{answered}");
        assert_eq!(
            answered["structured_content"]["reason"], "owner_unresponsive",
            "{answered}"
        );
        let took = answered["elapsed_ms"].as_f64().unwrap_or(f64::MAX);
        assert!(
            took < 1_500.0,
            "call_{i} waited {took} ms:\n{}",
            run.failure_report()
        );
    }
}

#[tokio::test]
async fn a_foreign_program_on_the_port_is_explained_then_healed_in_place() {
    let py = python().await;
    // Three probes (start, two heals: the host has 4 s to see the degraded server even on a
    // loaded machine), then the squatter leaves.
    let (port, squatter, seen) = squatter(3);
    let dir = tempfile::tempdir().unwrap();
    let plan = json!({
        "transport": contender(dir.path(), port, &dir.path().join("relay-key")),
        "protocol": "legacy",
        "timeout_ms": 40_000,
        "steps": [
            {"op": "initialize"},
            {"op": "set_logging_level", "level": "info"},
            {"op": "list_tools", "label": "degraded_tools"},
            call("degraded_call", "tabs"),
            {"op": "ping", "label": "ping"},
            {"op": "sleep", "ms": 9_000},
            {"op": "list_tools", "label": "healed_tools"},
            status("healed_status"),
        ],
    });
    let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
    run.ensure_ok()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
    squatter.join().unwrap();
    assert!(seen.load(Ordering::SeqCst) >= 2);
    let tools = &step(&run, "degraded_tools")["tools"];
    assert_eq!(tools.as_array().map(Vec::len), Some(1), "{tools}");
    let description = tools[0]["description"].as_str().unwrap_or("");
    assert!(description.contains("another program"), "{description}");
    let degraded = step(&run, "degraded_call");
    assert_eq!(degraded["is_error"], true, "{degraded}");
    let data = &degraded["structured_content"];
    assert_eq!(data["reason"], "port_in_use_foreign", "{data}");
    assert_eq!(data["port"], port);
    assert!(data["remediations"]
        .as_array()
        .is_some_and(|r| r.len() >= 2));
    assert!(
        run.logs()
            .iter()
            .any(|l| l.to_string().contains("port_in_use_foreign")),
        "the host was told in a log message: {:?}",
        run.logs()
    );
    // The port freed up: the same process became the owner without its host restarting.
    let healed: Vec<&str> = step(&run, "healed_tools")["tool_names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(healed, ["domshell_execute", "domshell_status"]);
    let status = &step(&run, "healed_status")["structured_content"];
    assert_eq!(status["role"], "owner", "{status}");
    assert_eq!(status["bridge_port"], port, "{status}");
}

/// An HTTP responder that says it is domshell with another protocol version.
fn incompatible_owner() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        // Enough answers for the probes of one short session; then the thread ends.
        for stream in listener.incoming().take(6) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let body = r#"{"name":"domshell","pid":4242,"server_version":"9.9.9","protocol":99,"state":"ready"}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, handle)
}

#[tokio::test]
async fn an_incompatible_owner_is_a_version_mismatch() {
    let py = python().await;
    let (port, _responder) = incompatible_owner();
    let dir = tempfile::tempdir().unwrap();
    let plan = json!({
        "transport": contender(dir.path(), port, &dir.path().join("relay-key")),
        "protocol": "legacy",
        "timeout_ms": 30_000,
        "steps": [
            {"op": "initialize"},
            call("call", "tabs"),
        ],
    });
    let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
    run.ensure_ok()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
    let data = &step(&run, "call")["structured_content"];
    assert_eq!(data["reason"], "version_mismatch", "{data}");
    assert_eq!(data["holder_pid"], 4242, "{data}");
    assert_eq!(data["holder_version"], "9.9.9", "{data}");
}

#[tokio::test]
async fn when_the_owner_dies_in_flight_calls_are_answered_and_the_proxy_takes_over() {
    let py = python().await;
    let (mut owner, fake) = owner_with_extension(ServerOptions::default()).await;
    let port = owner.port();
    let dir = tempfile::tempdir().unwrap();
    let plan = json!({
        "transport": contender(dir.path(), port, &owner.relay_key_path()),
        "protocol": "legacy",
        "timeout_ms": 60_000,
        "steps": [
            {"op": "initialize"},
            call("before", "echo before"),
            call("in_flight", "sleep 20000"),
            call("after", "echo after"),
            status("status"),
        ],
    });
    let driver = tokio::spawn(async move { py.run_driver(&plan, DRIVER_TIMEOUT).await });
    fake.wait_for_frame(
        |f| matches!(f, Frame::Execute { command, .. } if command == "sleep 20000"),
        Duration::from_secs(30),
    )
    .await
    .expect("the long call reached the owner's extension");
    let killed_pid = owner.pid();
    owner.kill().expect("SIGKILL the owner");
    // The browser's extension redials the same port and lands on the new owner.
    let bridge = format!("ws://127.0.0.1:{port}/bridge");
    let fake2 = eventually(Duration::from_secs(15), Duration::from_millis(100), || {
        let bridge = bridge.clone();
        async move {
            FakeExtension::connect(&bridge, FakeOptions::default())
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await
    .expect("the extension reconnects to the new owner");
    let run = driver.await.unwrap().unwrap();
    run.ensure_ok()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
    // The host's shell session is the same one on the new owner: the extension keeps its
    // place (cwd, tab, history) across the change of owner.
    let session_of = |fake: &FakeExtension, wanted: &str| {
        fake.received().into_iter().find_map(|f| match f {
            Frame::Execute {
                command, session, ..
            } if command == wanted => Some(session),
            _ => None,
        })
    };
    let before_session = session_of(&fake, "echo before").expect("`before` ran on the old owner");
    let after_session = session_of(&fake2, "echo after").expect("`after` ran on the new owner");
    assert_eq!(before_session, after_session);
    assert!(before_session.starts_with("host:"), "{before_session}");
    assert_eq!(text(step(&run, "before")), "before\n[lane: shared]");
    let lost = step(&run, "in_flight");
    assert_eq!(lost["is_error"], true, "{lost}");
    assert_eq!(lost["structured_content"]["reason"], "owner_lost", "{lost}");
    assert_eq!(lost["structured_content"]["retryable"], true, "{lost}");
    assert_eq!(text(step(&run, "after")), "after\n[lane: shared]");
    let status = &step(&run, "status")["structured_content"];
    assert_ne!(status["pid"], killed_pid, "{status}");
    assert_eq!(status["role"], "owner", "{status}");
    assert_eq!(
        status["this_process"]["session_state"], "active",
        "{status}"
    );
    // The host heard what happened, in order: its session reconnecting, then the takeover.
    let events = relay_events(&run);
    let reconnecting = events
        .iter()
        .position(|d| d["event"] == "session_state" && d["state"] == "reconnecting");
    let took_over = events
        .iter()
        .position(|d| d["event"] == "role_changed" && d["from"] == "proxy" && d["to"] == "owner");
    assert!(
        matches!((reconnecting, took_over), (Some(r), Some(t)) if r < t),
        "{events:?}"
    );
}

/// The `data` of the relay's `notifications/message` to its host, in arrival order.
fn relay_events(run: &DriverRun) -> Vec<Value> {
    run.logs()
        .iter()
        .filter(|l| l["logger"] == "domshell.relay")
        .map(|l| l["data"].clone())
        .collect()
}

#[tokio::test]
async fn when_the_owner_dies_under_two_proxies_one_takes_over_and_the_other_reattaches() {
    let py = python().await;
    let (mut owner, fake) = owner_with_extension(ServerOptions::default()).await;
    let port = owner.port();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let barriers = tempfile::tempdir().unwrap();
    let mut drivers = Vec::new();
    for (host, dir) in dirs.iter().enumerate() {
        let plan = json!({
            "transport": contender(dir.path(), port, &owner.relay_key_path()),
            "protocol": "legacy",
            "timeout_ms": 60_000,
            "steps": [
                {"op": "initialize"},
                call("before", &format!("echo before {host}")),
                // Two calls in flight per host when the owner dies.
                {"op": "parallel", "steps": [
                    call("in_flight_a", &format!("sleep 20{host}01")),
                    call("in_flight_b", &format!("sleep 20{host}02")),
                ], "label": "in_flight"},
                // The new call goes once the extension is back (the test says when).
                {"op": "barrier", "dir": barriers.path().display().to_string(),
                 "name": "extension_back", "count": 3, "timeout_ms": 30_000},
                call("after", &format!("echo after {host}")),
                status("status"),
                // Neither host leaves (closing its server, maybe the new owner) before both
                // have made their new call.
                {"op": "barrier", "dir": barriers.path().display().to_string(),
                 "name": "done", "count": 2, "timeout_ms": 30_000},
            ],
        });
        let py = py.clone();
        drivers.push(tokio::spawn(async move {
            py.run_driver(&plan, DRIVER_TIMEOUT).await
        }));
    }
    for host in 0..2 {
        for n in 1..=2 {
            let wanted = format!("sleep 20{host}0{n}");
            fake.wait_for_frame(
                move |f| matches!(f, Frame::Execute { command, .. } if *command == wanted),
                Duration::from_secs(30),
            )
            .await
            .expect("every long call reached the owner's extension");
        }
    }
    let killed_pid = owner.pid();
    owner.kill().expect("SIGKILL the owner");
    let killed_at = std::time::Instant::now();
    let bridge = format!("ws://127.0.0.1:{port}/bridge");
    let _fake2 = eventually(Duration::from_secs(15), Duration::from_millis(100), || {
        let bridge = bridge.clone();
        async move {
            FakeExtension::connect(&bridge, FakeOptions::default())
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await
    .expect("the extension reconnects to the new owner");
    eprintln!("extension back {:?} after the kill", killed_at.elapsed());
    std::fs::write(barriers.path().join("extension_back.test"), b"").unwrap();
    let mut runs = Vec::new();
    for driver in drivers {
        let run = driver.await.unwrap().unwrap();
        run.ensure_ok()
            .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
        runs.push(run);
    }
    let mut unanswered = 0;
    let mut roles = Vec::new();
    let mut owner_pids = Vec::new();
    for (host, run) in runs.iter().enumerate() {
        for sub in step(run, "in_flight")["results"].as_array().unwrap() {
            if sub["ok"] != true || sub["structured_content"]["reason"] != "owner_lost" {
                unanswered += 1;
            }
        }
        assert_eq!(
            text(step(run, "after")),
            format!("after {host}\n[lane: shared]"),
            "{}",
            run.failure_report()
        );
        let status = &step(run, "status")["structured_content"];
        assert_ne!(status["pid"], killed_pid, "{status}");
        owner_pids.push(status["pid"].clone());
        roles.push(
            status["this_process"]["role"]
                .as_str()
                .unwrap_or("?")
                .to_string(),
        );
        assert_eq!(status["this_process"]["owner_changes"], 1, "{status}");
        assert_eq!(
            status["this_process"]["session_state"], "active",
            "{status}"
        );
        // Up to the status step: once past the "done" barrier the other host may leave and
        // take the new owner with it, which this proxy then reports too.
        let status_step = step(run, "status");
        let until = status_step["started_ms"].as_f64().unwrap_or(f64::MAX)
            + status_step["elapsed_ms"].as_f64().unwrap_or(0.0);
        let states: Vec<Value> = run
            .logs()
            .iter()
            .filter(|l| l["logger"] == "domshell.relay")
            .filter(|l| l["t_ms"].as_f64().is_some_and(|t| t <= until))
            .map(|l| &l["data"])
            .filter(|d| d["event"] == "session_state")
            .map(|d| d["state"].clone())
            .collect();
        // The proxy that re-attached made a new session with the new owner and said so.
        if status["this_process"]["role"] == "proxy" {
            assert_eq!(
                states,
                [json!("reconnecting"), json!("connecting"), json!("active")],
                "{status}"
            );
        }
    }
    assert_eq!(
        unanswered, 0,
        "every in-flight call gets an owner_lost answer"
    );
    roles.sort();
    assert_eq!(
        roles,
        ["owner", "proxy"],
        "one proxy took over, the other re-attached"
    );
    assert_eq!(
        owner_pids[0], owner_pids[1],
        "both hosts name the new owner"
    );
}

#[tokio::test]
async fn an_owner_without_its_extension_is_attached_to_not_taken_over() {
    let py = python().await;
    // Healthy, but the browser is closed: no extension has ever connected.
    let mut owner = ServerProcess::start(ServerOptions::default())
        .await
        .expect("owner starts");
    let dir = tempfile::tempdir().unwrap();
    let plan = json!({
        "transport": contender(dir.path(), owner.port(), &owner.relay_key_path()),
        "protocol": "legacy",
        "timeout_ms": 30_000,
        "steps": [
            {"op": "initialize"},
            {"op": "list_tools", "label": "tools"},
            status("status"),
            {"op": "sleep", "ms": 3_000},
            status("later"),
        ],
    });
    let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
    run.ensure_ok()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
    assert_eq!(run.tool_names(), ["domshell_execute", "domshell_status"]);
    for label in ["status", "later"] {
        let status = &step(&run, label)["structured_content"];
        assert_eq!(status["pid"], owner.pid(), "{status}");
        assert_ne!(status["link"]["state"], "connected", "{status}");
        assert_eq!(status["this_process"]["role"], "proxy", "{status}");
        assert_eq!(status["this_process"]["owner_changes"], 0, "{status}");
    }
    assert!(owner.is_running(), "the owner was left alone");
    let health = owner.health().await.expect("the owner still answers");
    assert_eq!(health["state"], "ready", "{health}");
}

#[tokio::test]
async fn a_session_the_owner_forgot_is_reported_expired_and_made_again() {
    let py = python().await;
    // The owner drops idle MCP sessions after 1.5 s.
    let owner = ServerProcess::start(ServerOptions {
        extra_args: vec!["--session-idle-ttl-ms".into(), "1500".into()],
        ..Default::default()
    })
    .await
    .expect("owner starts");
    let _fake = FakeExtension::connect(&owner.bridge_url(), FakeOptions::default())
        .await
        .expect("fake extension on the owner");
    let dir = tempfile::tempdir().unwrap();
    let plan = json!({
        "transport": contender(dir.path(), owner.port(), &owner.relay_key_path()),
        "protocol": "legacy",
        "timeout_ms": 40_000,
        "steps": [
            {"op": "initialize"},
            call("before", "echo before"),
            {"op": "sleep", "ms": 5_000},
            // Sent into a session the owner no longer knows: answered, retryable.
            call("into_expired", "echo lost"),
            call("after", "echo after"),
            status("status"),
        ],
    });
    let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
    run.ensure_ok()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
    assert_eq!(text(step(&run, "before")), "before\n[lane: shared]");
    let into_expired = step(&run, "into_expired");
    assert!(
        text(into_expired) == "lost\n[lane: shared]"
            || into_expired["structured_content"]["retryable"] == true,
        "{into_expired}"
    );
    assert_eq!(text(step(&run, "after")), "after\n[lane: shared]");
    let states: Vec<Value> = relay_events(&run)
        .into_iter()
        .filter(|d| d["event"] == "session_state")
        .map(|d| d["state"].clone())
        .collect();
    // The owner forgets the idle session again every 1.5 s while the host sleeps. Each time
    // the host hears its session expire and be made again; a call that reaches the owner
    // first (404 on the forgotten session) skips straight to reconnecting. Every cycle ends
    // active.
    assert!(!states.is_empty(), "{}", run.failure_report());
    let expired = [
        json!("expired"),
        json!("reconnecting"),
        json!("connecting"),
        json!("active"),
    ];
    let mut rest: &[Value] = &states;
    let mut expirations = 0;
    while !rest.is_empty() {
        if rest.starts_with(&expired) {
            expirations += 1;
            rest = &rest[4..];
        } else if rest.starts_with(&expired[1..]) {
            rest = &rest[3..];
        } else {
            panic!("unexpected session states {states:?}");
        }
    }
    assert!(expirations >= 1, "{states:?}");
    let status = &step(&run, "status")["structured_content"];
    assert_eq!(status["pid"], owner.pid(), "{status}");
    assert_eq!(
        status["this_process"]["session_state"], "active",
        "{status}"
    );
}
