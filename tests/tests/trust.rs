//! Trust between processes, tried as an attacker on the same machine would, against the real
//! binary: a client without a token cannot make the owner open a file; rails held by a bearer
//! token cannot exceed the owner's; a program that holds the port learns no secret and the
//! host hears why within 5 s; a client with a huge name does not split the hosts; the relay
//! door refuses every bad input of `tests/relay-door-cases.tsv`; the owner records a command
//! before it runs it. Positive controls: a relay's own rails and an HTTP client's token still
//! work.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domshell_tests::python::{DriverRun, PythonEnv};
use domshell_tests::raw_mcp::RawMcp;
use domshell_tests::server::{server_binary, stdio_transport};
use domshell_tests::{
    eventually, FakeExtension, FakeOptions, ServerOptions, ServerProcess, TEST_MCP_TOKEN,
    TEST_TOKEN,
};
use serde_json::{json, Value};
use shared_protocol::frame::Frame;
use shared_protocol::handshake::{relay_proof, to_hex, Nonce, Proof, RelayRole};

const DRIVER_TIMEOUT: Duration = Duration::from_secs(90);
/// The relay key of these tests' servers (written before they start).
const RELAY_KEY: &str = "trust-test-relay-key-0123456789abcdef0123456789abcdef";

async fn python() -> PythonEnv {
    tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .expect("venv task")
        .expect("a Python venv with the mcp SDK (needs python3 and PyPI)")
}

/// A private relay key file with [`RELAY_KEY`] in `dir`.
fn relay_key_file(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("relay-key");
    std::fs::write(&path, format!("{RELAY_KEY}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// An owner with `args`, its audit log in `dir`, the test relay key, a fake extension.
async fn owner(dir: &Path, args: &[&str]) -> (ServerProcess, FakeExtension) {
    let mut extra_args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    extra_args.push("--audit-log".into());
    extra_args.push(dir.join("owner-audit.log").display().to_string());
    let server = ServerProcess::start(ServerOptions {
        extra_args,
        relay_key_file: Some(relay_key_file(dir)),
        connect_grace_ms: Some(500),
        ..Default::default()
    })
    .await
    .expect("owner starts");
    let fake = FakeExtension::connect(&server.bridge_url(), FakeOptions::default())
        .await
        .expect("fake extension");
    server
        .wait_for_link_state("connected", Duration::from_secs(5))
        .await
        .expect("the owner sees its extension");
    (server, fake)
}

/// A stdio server on `port` as an MCP host spawns it, with this test's secrets.
fn stdio_host(dir: &Path, port: u16, key: &Path, extra: &[&str]) -> Value {
    let mut args: Vec<String> = [
        "--ws-port",
        &port.to_string(),
        "--token",
        TEST_TOKEN,
        "--mcp-token",
        TEST_MCP_TOKEN,
        "--connect-grace-ms",
        "1000",
        "--audit-log",
        &dir.join("host-audit.log").display().to_string(),
        "--relay-key-file",
        &key.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    stdio_transport(dir, &args)
}

fn call(label: &str, command: &str) -> Value {
    json!({"op": "call_tool", "name": "domshell_execute", "arguments": {"command": command}, "label": label})
}

fn status_call(label: &str) -> Value {
    json!({"op": "call_tool", "name": "domshell_status", "arguments": {}, "label": label})
}

fn step<'a>(run: &'a DriverRun, label: &str) -> &'a Value {
    run.step(label)
        .unwrap_or_else(|| panic!("no step {label}:\n{}", run.failure_report()))
}

fn audit_records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// What a relay of earlier versions (or anyone) could claim in `initialize`: rails, and an
/// audit log path for the owner to open.
fn unproven_claim(audit_log: &Path) -> Value {
    json!({"dev.domshell/host": {
        "shell_session": "stdio-1-aa", "client_id": "evil",
        "policy": {"allow_write": true, "allow_sensitive": true, "domains": []},
        "audit_log": audit_log.display().to_string(),
    }})
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn an_initialize_without_proof_makes_the_owner_open_no_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (server, fake) = owner(dir.path(), &[]).await;
    // An executable the attacker would like to see lose its run bit, and a file to create.
    let script = dir.path().join("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let absent = dir.path().join("bashrc-to-be");
    for (target, bearer) in [
        (&script, None),
        (&absent, None),
        (&absent, Some(TEST_MCP_TOKEN)),
    ] {
        let raw = RawMcp::new(server.http_url("/mcp"), bearer);
        let (status, session, body) = raw
            .open("attacker", Some(unproven_claim(target)))
            .await
            .unwrap();
        assert!(
            (400..500).contains(&status),
            "a claim without proof is refused: {status} {body}"
        );
        assert!(session.is_none(), "no session for it: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("relay claim")),
            "{body}"
        );
    }
    assert_eq!(mode(&script), 0o755, "the script keeps its mode");
    assert_eq!(
        std::fs::read_to_string(&script).unwrap(),
        "#!/bin/sh\necho hi\n"
    );
    assert!(!absent.exists(), "no file was created");
    assert_eq!(fake.count("EXECUTE"), 0);
}

#[tokio::test]
async fn rails_held_by_a_bearer_token_cannot_exceed_the_owners() {
    let dir = tempfile::tempdir().unwrap();
    // A read-only owner that allows only example.com.
    let (server, fake) = owner(dir.path(), &["--domains", "example.com"]).await;
    let raw = RawMcp::new(server.http_url("/mcp"), Some(TEST_MCP_TOKEN));
    let (status, _, _) = raw
        .open(
            "bearer-client",
            Some(unproven_claim(&dir.path().join("x.log"))),
        )
        .await
        .unwrap();
    assert_eq!(status, 400, "the claim is refused even with the token");
    // Its ordinary session has exactly the owner's rails.
    let (status, session, body) = raw.open("bearer-client", None).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let session = session.expect("a session");
    for (command, reason) in [
        ("whoami", "tier_denied"),
        ("open https://evil.example/", "tier_denied"),
        ("click x", "tier_denied"),
    ] {
        let (status, body) = raw.execute(&session, command).await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"]["isError"], true, "{command}: {body}");
        assert_eq!(
            body["result"]["structuredContent"]["reason"], reason,
            "{command}: {body}"
        );
    }
    // What it may do runs, and the extension is told the owner's allowlist.
    let (_, body) = raw.execute(&session, "pwd").await.unwrap();
    assert_eq!(body["result"]["isError"], false, "{body}");
    let executes: Vec<Frame> = fake
        .received()
        .into_iter()
        .filter(|f| matches!(f, Frame::Execute { .. }))
        .collect();
    assert_eq!(executes.len(), 1, "only pwd reached the extension");
    let Frame::Execute {
        allowed_domains, ..
    } = &executes[0]
    else {
        unreachable!()
    };
    assert_eq!(allowed_domains, &vec!["example.com".to_string()]);
    // Tool annotations follow the rails: this session may only read.
    let (_, _, tools) = raw
        .post(
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
        )
        .await
        .unwrap();
    let execute = tools["result"]["tools"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "domshell_execute"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(execute["annotations"]["readOnlyHint"], true, "{execute}");
    assert_eq!(
        execute["annotations"]["destructiveHint"], false,
        "{execute}"
    );
}

#[tokio::test]
async fn an_http_client_with_the_token_writes_on_a_writing_owner() {
    let dir = tempfile::tempdir().unwrap();
    let (server, fake) = owner(dir.path(), &["--allow-write"]).await;
    let raw = RawMcp::new(server.http_url("/mcp"), Some(TEST_MCP_TOKEN));
    let (_, session, _) = raw.open("writer", None).await.unwrap();
    let (_, body) = raw.execute(&session.unwrap(), "click x").await.unwrap();
    // Allowed: it reached the extension (which knows no `click`).
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("command not found")),
        "{body}"
    );
    assert_eq!(fake.count("EXECUTE"), 1);
    // The extension's token is the wrong door for HTTP clients, and says so.
    let wrong = RawMcp::new(server.http_url("/mcp"), Some(TEST_TOKEN));
    let (_, session, _) = wrong.open("confused", None).await.unwrap();
    let (status, body) = wrong.execute(&session.unwrap(), "pwd").await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("domshell token mcp")),
        "{body}"
    );
}

/// A program that holds the port while domshell is down and answers `/health` like an
/// owner. It records every byte it is sent; `/relay/challenge` gets `challenge_answer`.
fn impostor(
    challenge_answer: &'static str,
) -> (u16, Arc<Mutex<Vec<u8>>>, Arc<std::sync::atomic::AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("impostor binds");
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (record, stopped) = (seen.clone(), stop.clone());
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !stopped.load(std::sync::atomic::Ordering::SeqCst)
            && std::time::Instant::now() < deadline
        {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
            let mut request = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                if request.windows(4).any(|w| w == b"\r\n\r\n") && !request.starts_with(b"POST") {
                    break;
                }
            }
            record.lock().unwrap().extend_from_slice(&request);
            let body = if request.starts_with(b"GET /health") {
                r#"{"name":"domshell","protocol":2,"relay_protocol":1,"state":"ready","pid":1}"#
            } else {
                challenge_answer
            };
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    (port, seen, stop)
}

#[tokio::test]
async fn an_impostor_holding_the_port_learns_no_secret_and_the_host_hears_why_in_5_s() {
    let py = python().await;
    for answer in [
        // Says nothing sensible to the challenge…
        r#"{"error":"what?"}"#,
        // …or answers in the right shape with a proof it could not have made.
        r#"{"challenge":"00000000000000000000000000000000","nonce":"0000000000000000000000000000000000000000000000000000000000000000","proof":"0000000000000000000000000000000000000000000000000000000000000000"}"#,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let key = relay_key_file(dir.path());
        let (port, seen, stop) = impostor(answer);
        let plan = json!({
            "transport": stdio_host(dir.path(), port, &key, &[]),
            "protocol": "legacy",
            "timeout_ms": 30_000,
            "steps": [{"op": "initialize", "label": "initialize"}, call("tabs", "tabs")],
        });
        let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        run.ensure_ok()
            .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
        let tabs = step(&run, "tabs");
        assert_eq!(tabs["is_error"], true, "{tabs}");
        assert_eq!(
            tabs["structured_content"]["reason"], "port_held_unproven",
            "{tabs}"
        );
        assert!(
            tabs["text"]
                .as_str()
                .is_some_and(|t| t.contains("could not prove it is domshell")),
            "{tabs}"
        );
        let took = step(&run, "initialize")["elapsed_ms"]
            .as_f64()
            .unwrap_or(f64::MAX)
            + tabs["elapsed_ms"].as_f64().unwrap_or(f64::MAX);
        assert!(took < 5_000.0, "the degraded answer took {took} ms");
        let seen = String::from_utf8_lossy(&seen.lock().unwrap()).to_string();
        assert!(
            seen.contains("/relay/challenge"),
            "it was challenged: {seen}"
        );
        for secret in [TEST_TOKEN, TEST_MCP_TOKEN, RELAY_KEY] {
            assert!(
                !seen.contains(secret),
                "a secret reached the impostor: {seen}"
            );
        }
        for never in ["authorization", "initialize", "stdio-proxy", "/mcp"] {
            assert!(
                !seen.to_ascii_lowercase().contains(never),
                "{never:?} reached the impostor: {seen}"
            );
        }
    }
}

#[tokio::test]
async fn a_client_with_a_huge_name_does_not_split_the_hosts() {
    let py = python().await;
    let dir = tempfile::tempdir().unwrap();
    let (server, _fake) = owner(dir.path(), &[]).await;
    // A tokenless session whose clientInfo.name is 300 KB, kept open.
    let raw = RawMcp::new(server.http_url("/mcp"), None);
    let (status, session, _) = raw.open(&"n".repeat(300_000), None).await.unwrap();
    assert_eq!(status, 200);
    assert!(session.is_some());
    let health = reqwest::get(server.http_url("/health"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        health.len() < 8_192,
        "/health stays small: {} bytes",
        health.len()
    );
    // The next host attaches as a relay, not degraded.
    let plan = json!({
        "transport": stdio_host(dir.path(), server.port(), &server.relay_key_path(), &[]),
        "protocol": "legacy",
        "timeout_ms": 30_000,
        "steps": [{"op": "initialize"}, call("pwd", "pwd"), status_call("status")],
    });
    let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
    run.ensure_ok()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
    assert_eq!(step(&run, "pwd")["text"], "~\n[lane: shared]");
    let status = &step(&run, "status")["structured_content"];
    assert_eq!(status["this_process"]["role"], "proxy", "{status}");
    let listed = serde_json::to_string(&status["sessions"]).unwrap();
    assert!(
        listed.len() < 16_384,
        "names are capped: {} bytes",
        listed.len()
    );
}

#[tokio::test]
async fn a_relay_writes_its_hosts_audit_and_keeps_its_rails_on_a_read_only_owner() {
    let py = python().await;
    let dir = tempfile::tempdir().unwrap();
    let (server, fake) = owner(dir.path(), &[]).await;
    let plan = json!({
        "transport": stdio_host(dir.path(), server.port(), &server.relay_key_path(), &["--allow-write"]),
        "protocol": "legacy",
        "timeout_ms": 30_000,
        "steps": [{"op": "initialize"}, call("click", "click x"), call("whoami", "whoami")],
    });
    let run = py.run_driver(&plan, DRIVER_TIMEOUT).await.unwrap();
    run.ensure_ok()
        .unwrap_or_else(|e| panic!("{e:#}\n{}", run.failure_report()));
    // The host's write rail holds on the read-only owner; its missing sensitive rail too.
    assert!(step(&run, "click")["text"]
        .as_str()
        .is_some_and(|t| t.contains("command not found")));
    assert_eq!(
        step(&run, "whoami")["structured_content"]["reason"],
        "tier_denied"
    );
    assert_eq!(fake.count("EXECUTE"), 1);
    // The host's log is the relay's own work: before and after, with the host's tiers.
    let host = audit_records(&dir.path().join("host-audit.log"));
    let click: Vec<&Value> = host.iter().filter(|r| r["command"] == "click x").collect();
    assert_eq!(
        click
            .iter()
            .map(|r| r["outcome"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["relayed", "error"],
        "{host:?}"
    );
    assert!(click.iter().all(|r| r["tier"] == "write"));
    assert!(host
        .iter()
        .any(|r| r["command"] == "whoami" && r["outcome"] == "denied"));
    // The owner keeps its own record of what it ran for the relay.
    let owner_log = audit_records(&dir.path().join("owner-audit.log"));
    assert!(
        owner_log
            .iter()
            .any(|r| r["command"] == "click x" && r["outcome"] == "started"),
        "{owner_log:?}"
    );
}

#[tokio::test]
async fn the_owner_records_a_command_before_it_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, fake) = owner(dir.path(), &[]).await;
    let log = dir.path().join("owner-audit.log");
    let running = {
        let url = server.http_url("/debug/execute");
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(TEST_MCP_TOKEN)
                .json(&json!({"command": "sleep 20000"}))
                .send()
                .await
        })
    };
    fake.wait_for_frame(
        |f| matches!(f, Frame::Execute { command, .. } if command == "sleep 20000"),
        Duration::from_secs(5),
    )
    .await
    .expect("the command reached the extension");
    // Killed mid-command, the owner has left its trace.
    server.kill().unwrap();
    running.abort();
    let records = audit_records(&log);
    assert!(
        records
            .iter()
            .any(|r| r["command"] == "sleep 20000" && r["outcome"] == "started"),
        "{records:?}"
    );
}

#[tokio::test]
async fn named_debug_sessions_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (server, fake) = owner(dir.path(), &[]).await;
    for i in 0..17 {
        let (status, body) = server
            .execute_body(json!({"command": "pwd", "session": format!("s{i}")}))
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
    }
    fake.wait_for_frame(
        |f| matches!(f, Frame::SessionEnd { session, .. } if session == "debug:s0"),
        Duration::from_secs(3),
    )
    .await
    .expect("the least recently used debug session is ended");
    let (status, body) = server
        .execute_body(json!({"command": "pwd", "session": "a b"}))
        .await
        .unwrap();
    assert_eq!(status, 400, "{body}");
}

/// One row of `tests/relay-door-cases.tsv`.
struct DoorCase {
    line: usize,
    step: String,
    expected: u16,
    input: String,
}

fn door_cases() -> Vec<DoorCase> {
    let path = domshell_tests::workspace_root().join("tests/relay-door-cases.tsv");
    let text = std::fs::read_to_string(&path).expect("the relay door cases");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            let mut cols = l.splitn(3, '\t');
            let (step, expected, input) = (cols.next(), cols.next(), cols.next());
            DoorCase {
                line: i + 1,
                step: step.expect("a step").to_string(),
                expected: expected.and_then(|e| e.parse().ok()).expect("a status"),
                input: input.expect("an input").to_string(),
            }
        })
        .collect()
}

/// A fresh challenge for `identity`: (challenge id, owner nonce, relay nonce, owner proof).
async fn challenge(server: &ServerProcess, identity: &str) -> (String, Nonce, Nonce, String) {
    let relay = Nonce([0x5a; 32]);
    let answer: Value = reqwest::Client::new()
        .post(server.http_url("/relay/challenge"))
        .json(&json!({"nonce": to_hex(&relay.0), "identity": identity}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let owner = shared_protocol::handshake::from_hex::<32>(answer["nonce"].as_str().unwrap())
        .map(Nonce)
        .unwrap();
    (
        answer["challenge"].as_str().unwrap().to_string(),
        owner,
        relay,
        answer["proof"].as_str().unwrap().to_string(),
    )
}

fn proof_hex(proof: Proof) -> String {
    to_hex(&proof.0)
}

#[tokio::test]
async fn the_relay_door_refuses_every_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _fake) = owner(dir.path(), &[]).await;
    let rails = r#"{"allow_write":true,"allow_sensitive":true,"domains":[]}"#;
    let http = reqwest::Client::new();
    // A challenge admitted once already, for the replay case.
    let (used, owner_nonce, relay_nonce, _) = challenge(&server, "r1").await;
    let used_proof = proof_hex(relay_proof(
        RELAY_KEY,
        RelayRole::Relay,
        &owner_nonce,
        &relay_nonce,
        "r1",
    ));
    let first = format!(
        r#"{{"challenge":"{used}","proof":"{used_proof}","client_id":"x","policy":{rails}}}"#
    );
    let relay = RawMcp::new(server.http_url("/mcp"), None);
    let (status, relay_session, body) = relay
        .open(
            "relay",
            Some(json!({"dev.domshell/host": serde_json::from_str::<Value>(&first).unwrap()})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "a right claim is admitted: {body}");
    let relay_session = relay_session.expect("a session for the relay");
    // An admitted relay's calls need no bearer, and run with the rails it was granted.
    let (status, body) = relay.execute(&relay_session, "click x").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("command not found")),
        "the write rail was granted: {body}"
    );
    let mut failures = Vec::new();
    for case in door_cases() {
        let mut input = case
            .input
            .replace("$NONCE", &"ab".repeat(32))
            .replace("$LONG", &"r".repeat(97))
            .replace("$HUGE", &format!(r#"{{"pad":"{}"}}"#, "x".repeat(2048)))
            .replace("$BADPROOF", &"0".repeat(64))
            .replace("$USED_PROOF", &used_proof)
            .replace("$USED", &used)
            .replace("$RAILS", rails);
        let (status, body) = match case.step.as_str() {
            "challenge" => {
                let response = http
                    .post(server.http_url("/relay/challenge"))
                    .header("Content-Type", "application/json")
                    .body(input.clone())
                    .send()
                    .await
                    .unwrap();
                (
                    response.status().as_u16(),
                    response.text().await.unwrap_or_default(),
                )
            }
            "initialize" => {
                let (id, owner_nonce, relay_nonce, owner_proof) = challenge(&server, "r1").await;
                let right = relay_proof(
                    RELAY_KEY,
                    RelayRole::Relay,
                    &owner_nonce,
                    &relay_nonce,
                    "r1",
                );
                let other = relay_proof(
                    RELAY_KEY,
                    RelayRole::Relay,
                    &owner_nonce,
                    &relay_nonce,
                    "r2",
                );
                input = input
                    .replace("$CHALLENGE", &id)
                    .replace("$OWNER_PROOF", &owner_proof)
                    .replace("$OTHER_PROOF", &proof_hex(other))
                    .replace("$PROOF", &proof_hex(right));
                let claim: Value =
                    serde_json::from_str(&input).unwrap_or(Value::String(input.clone()));
                let (status, _, body) = RawMcp::new(server.http_url("/mcp"), None)
                    .open("door-case", Some(json!({"dev.domshell/host": claim})))
                    .await
                    .unwrap();
                (status, body.to_string())
            }
            other => panic!("line {}: unknown step {other}", case.line),
        };
        if status != case.expected {
            failures.push(format!(
                "line {}: {} {} → {status} (expected {}): {body}",
                case.line,
                case.step,
                input.chars().take(120).collect::<String>(),
                case.expected
            ));
        }
        // Whatever was refused, the owner still answers.
        assert!(eventually(
            Duration::from_secs(2),
            Duration::from_millis(50),
            || async {
                anyhow::ensure!(reqwest::get(server.http_url("/health")).await?.status() == 200);
                Ok(())
            }
        )
        .await
        .is_ok());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The relays admitted are listed under their identity, with their rails and their
    // names capped.
    let (_, _, status) = relay
        .post(
            Some(&relay_session),
            json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                   "params": {"name": "domshell_status", "arguments": {}}}),
        )
        .await
        .unwrap();
    let sessions = &status["result"]["structuredContent"]["sessions"];
    let relay_entry = &sessions["host:r1"];
    assert_eq!(relay_entry["policy"]["allow_write"], true, "{sessions}");
    assert!(
        relay_entry["client"]
            .as_str()
            .is_some_and(|c| c.chars().count() <= 64),
        "{sessions}"
    );
}

#[tokio::test]
async fn a_budget_no_clock_can_add_is_refused_and_the_owner_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    let (server, fake) = owner(dir.path(), &[]).await;
    for timeout_ms in [u64::MAX, 604_800_001] {
        let (status, body) = server
            .execute_body(json!({"command": "pwd", "timeout_ms": timeout_ms}))
            .await
            .unwrap();
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("too long")),
            "{body}"
        );
    }
    let (status, body) = server.execute("pwd", Some(604_800_000)).await.unwrap();
    assert_eq!(status, 200, "the longest accepted budget runs: {body}");
    assert_eq!(fake.count("EXECUTE"), 1);
    // A server started with one refuses to start, saying which flag.
    let out = std::process::Command::new(server_binary().unwrap())
        .args([
            "serve",
            "--ws-port",
            "0",
            "--token",
            TEST_TOKEN,
            "--no-audit",
        ])
        .args(["--command-timeout-ms", &u64::MAX.to_string()])
        .env("XDG_CONFIG_HOME", dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--command-timeout-ms"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn stateless_calls_without_a_client_identity_share_no_shell_session() {
    let dir = tempfile::tempdir().unwrap();
    let (server, fake) = owner(dir.path(), &[]).await;
    let http = reqwest::Client::new();
    let stateless_call = |client_info: Option<Value>| {
        let mut meta = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        });
        if let Some(info) = client_info {
            meta["io.modelcontextprotocol/clientInfo"] = info;
        }
        http.post(server.http_url("/mcp"))
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2026-07-28")
            .header("Mcp-Method", "tools/call")
            .header("Mcp-Name", "domshell_execute")
            .bearer_auth(TEST_MCP_TOKEN)
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "domshell_execute", "arguments": {"command": "pwd"}, "_meta": meta}}),
            )
            .send()
    };
    for _ in 0..2 {
        let response = stateless_call(None).await.unwrap();
        let status = response.status();
        if status != 200 {
            panic!("{status}: {}", response.text().await.unwrap_or_default());
        }
        assert!(response.text().await.unwrap().contains("[lane: shared]"));
    }
    let response = stateless_call(Some(json!({"name": "agent", "version": "1"})))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let started: Vec<String> = fake
        .received()
        .into_iter()
        .filter_map(|f| match f {
            Frame::SessionStart { session, .. } => Some(session),
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 3, "{started:?}");
    assert!(started[0].starts_with("anon:") && started[1].starts_with("anon:"));
    assert_ne!(
        started[0], started[1],
        "each anonymous call has its own session"
    );
    assert_eq!(started[2], "client:agent/1");
    // The anonymous sessions end with their call; the identified one lives on.
    for anon in &started[..2] {
        fake.wait_for_frame(
            |f| matches!(f, Frame::SessionEnd { session, .. } if session == anon),
            Duration::from_secs(3),
        )
        .await
        .unwrap_or_else(|e| panic!("{anon} did not end: {e:#}"));
    }
}

#[tokio::test]
async fn logs_written_to_a_file_or_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _fake) = owner(dir.path(), &[]).await;
    server.execute("pwd", None).await.unwrap();
    let stderr = server.stderr_text();
    assert!(stderr.contains("listening on"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "escape codes in a piped log: {stderr}"
    );
}
