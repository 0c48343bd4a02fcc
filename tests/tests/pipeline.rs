//! Every entry point runs commands through the one pipeline: the debug route splits its body
//! into lines, checks each, records each in the audit log and sends the domain list with each,
//! exactly like `domshell_execute`; call parameters that act like commands (`group_id: "new"`,
//! `initial_url`) are checked and sent once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use domshell_tests::fake_extension::{ExecuteCall, HandlerFuture, Reply};
use domshell_tests::{FakeExtension, FakeOptions, ServerOptions, ServerProcess};
use serde_json::{json, Value};
use shared_protocol::frame::Frame;

const WAIT: Duration = Duration::from_secs(5);

/// A server with `args`, an audit log in `audit`, and a fake extension that answers `echo`,
/// reports lane `L7` when asked to create one, and fails anything else.
async fn setup(args: &[&str], audit: &Path) -> (ServerProcess, FakeExtension) {
    let mut extra: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    extra.push("--audit-log".into());
    extra.push(audit.display().to_string());
    let server = ServerProcess::start(ServerOptions {
        extra_args: extra,
        ..Default::default()
    })
    .await
    .expect("server starts");
    let handler = Arc::new(|call: ExecuteCall| {
        Box::pin(async move {
            let lane = match call.group_id.as_deref() {
                Some("new") => Some("L7".to_string()),
                other => other.map(str::to_string),
            };
            let reply = match call.command.strip_prefix("echo ") {
                Some(text) => Reply::ok(text),
                None => Reply::err(format!("{}: command not found", call.command)),
            };
            Some(Reply { lane, ..reply })
        }) as HandlerFuture
    });
    let fake = FakeExtension::connect(
        &server.bridge_url(),
        FakeOptions::default().with_handler(handler),
    )
    .await
    .expect("fake extension connects");
    server
        .wait_for_link_state("connected", WAIT)
        .await
        .expect("link up");
    (server, fake)
}

fn executes(fake: &FakeExtension) -> Vec<Frame> {
    fake.received()
        .into_iter()
        .filter(|f| matches!(f, Frame::Execute { .. }))
        .collect()
}

fn audit_records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
        .collect()
}

#[tokio::test]
async fn the_debug_route_checks_audits_and_sends_domains_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let (server, fake) = setup(&["--allow-write", "--domains", "example.com"], &audit).await;
    let (status, body) = server
        .execute("echo one\nopen evil.example\necho two", Some(5_000))
        .await
        .unwrap();
    // The denied line is refused on its own; the others run.
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["reason"], "domain_denied", "{body}");
    let lines = body["lines"].as_array().expect("per-line results");
    assert_eq!(lines.len(), 3, "{body}");
    assert_eq!(lines[0]["output"], "one");
    assert_eq!(lines[1]["reason"], "domain_denied");
    assert_eq!(lines[2]["output"], "two");
    let sent = executes(&fake);
    assert_eq!(sent.len(), 2, "{sent:?}");
    for frame in &sent {
        let Frame::Execute {
            command,
            allowed_domains,
            ..
        } = frame
        else {
            unreachable!()
        };
        assert!(command.starts_with("echo "), "{command}");
        assert_eq!(
            allowed_domains,
            &["example.com"],
            "the list travels with {command}"
        );
    }
    let records = audit_records(&audit);
    let outcomes: Vec<&str> = records
        .iter()
        .map(|r| r["outcome"].as_str().unwrap_or(""))
        .collect();
    // Each line that runs is recorded before it runs, and again with its outcome.
    assert_eq!(
        outcomes,
        ["started", "ok", "denied", "started", "ok"],
        "{records:?}"
    );
    assert!(records.iter().all(|r| r["session"] == "debug"));
}

#[tokio::test]
async fn a_line_break_inside_watch_or_each_smuggles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let (server, fake) = setup(&[], &audit).await;
    for command in ["watch \"echo a\nclick x\"", "each \"echo a\nclick x\""] {
        let (status, body) = server.execute(command, Some(5_000)).await.unwrap();
        assert_eq!(status, 403, "{command}: {body}");
        assert_eq!(body["error"]["reason"], "parse_error", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("line break outside quotes"),
            "{body}"
        );
    }
    assert!(executes(&fake).is_empty(), "nothing reached the extension");
}

#[tokio::test]
async fn group_id_new_needs_navigation_and_is_sent_once() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let (read_only, fake) = setup(&[], &audit).await;
    let (status, body) = read_only
        .execute_body(json!({"command": "echo a", "group_id": "new"}))
        .await
        .unwrap();
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["reason"], "tier_denied", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("--allow-write"),
        "{body}"
    );
    assert!(executes(&fake).is_empty());
    drop(fake);
    drop(read_only);

    let audit = dir.path().join("audit-write.log");
    let (server, fake) = setup(&["--allow-write"], &audit).await;
    let (status, body) = server
        .execute_body(json!({
            "command": "echo a\necho b\necho c",
            "group_id": "new",
            "group_name": "research",
            "initial_url": "https://example.com/start",
        }))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lane"], "L7", "{body}");
    let sent: Vec<(Option<String>, Option<String>, Option<String>)> = executes(&fake)
        .into_iter()
        .map(|f| match f {
            Frame::Execute {
                group_id,
                initial_url,
                group_name,
                ..
            } => (group_id, initial_url, group_name),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        sent,
        [
            (
                Some("new".into()),
                Some("https://example.com/start".into()),
                Some("research".into())
            ),
            (Some("L7".into()), None, None),
            (Some("L7".into()), None, None),
        ],
        "the lane is created once and joined after"
    );
    // The outcome records (each follows the line's `started` record, with the same fields).
    let all = audit_records(&audit);
    assert_eq!(all.len(), 6, "{all:?}");
    let records: Vec<&Value> = all.iter().filter(|r| r["outcome"] != "started").collect();
    assert_eq!(records.len(), 3, "{records:?}");
    assert_eq!(records[0]["group_id"], "new");
    assert_eq!(records[0]["initial_url"], "https://example.com/start");
    assert_eq!(records[0]["tier"], "navigate");
    assert_eq!(records[1]["group_id"], "L7");
    assert!(records[1].get("initial_url").is_none());
}
