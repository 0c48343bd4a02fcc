//! A reply over the frame limit fails its own request and nothing else: the real `domshell`
//! binary with a small frame limit, and a fake extension that answers one command with a
//! `RESULT` larger than the limit (but under the ceiling the socket reads) while another
//! command is in flight on the same link.

use std::sync::Arc;
use std::time::Duration;

use domshell_tests::fake_extension::{HandlerFuture, Reply};
use domshell_tests::{FakeExtension, FakeOptions, ServerOptions, ServerProcess};
use serde_json::{json, Value};
use shared_protocol::OVERSIZE_CEILING_FACTOR;

/// The server's frame limit in these tests: small, so an oversized reply is quick to send.
const LIMIT: usize = 64 * 1024;

/// A server with the small limit and a fake extension that answers `text N` with N bytes,
/// `sleep MS` after MS milliseconds and `echo X` with X.
async fn linked() -> (ServerProcess, FakeExtension) {
    let server = ServerProcess::start(ServerOptions {
        extra_args: vec!["--max-frame-bytes".into(), LIMIT.to_string()],
        ..Default::default()
    })
    .await
    .expect("server starts");
    let handler = Arc::new(|call: domshell_tests::fake_extension::ExecuteCall| {
        Box::pin(async move {
            let (name, rest) = call.command.split_once(' ').unwrap_or((&call.command, ""));
            Some(match name {
                "text" => Reply::ok("x".repeat(rest.parse().unwrap_or(0))),
                "sleep" => {
                    tokio::time::sleep(Duration::from_millis(rest.parse().unwrap_or(0))).await;
                    Reply::ok("slept")
                }
                "echo" => Reply::ok(rest),
                _ => Reply::err(format!("{name}: command not found")),
            })
        }) as HandlerFuture
    });
    let fake = FakeExtension::connect(
        &server.bridge_url(),
        FakeOptions::default().with_handler(handler),
    )
    .await
    .expect("fake extension connects");
    server
        .wait_for_link_state("connected", Duration::from_secs(5))
        .await
        .expect("link connected");
    (server, fake)
}

async fn run(server: &ServerProcess, session: &str, command: &str) -> (u16, Value) {
    server
        .execute_body(json!({ "command": command, "session": session, "timeout_ms": 10_000 }))
        .await
        .expect("debug route answers")
}

#[tokio::test]
async fn an_oversized_reply_fails_only_its_request_and_the_link_stays_up() {
    let (server, fake) = linked().await;
    let server = Arc::new(server);
    let before = server.health().await.unwrap();
    let in_flight = {
        let server = server.clone();
        tokio::spawn(async move { run(&server, "other", "sleep 800").await })
    };
    fake.wait_for_frame(
        |f| matches!(f, shared_protocol::frame::Frame::Execute { command, .. } if command == "sleep 800"),
        Duration::from_secs(5),
    )
    .await
    .expect("the slow command reached the extension");

    let (status, body) = run(&server, "main", &format!("text {}", 2 * LIMIT)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["reason"], "reply_too_large", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("larger than the 64 KB"), "{message}");
    let hint = body["error"]["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains("-n N") && hint.contains("--offset K"),
        "{hint}"
    );

    let (status, body) = in_flight.await.unwrap();
    assert_eq!(
        (status, body["output"].as_str()),
        (200, Some("slept")),
        "{body}"
    );
    let (status, body) = run(&server, "main", "echo still here").await;
    assert_eq!(
        (status, body["output"].as_str()),
        (200, Some("still here")),
        "{body}"
    );

    assert!(!fake.is_closed(), "the fake extension was not disconnected");
    let after = server.health().await.unwrap();
    assert_eq!(after["link"]["state"], "connected", "{after}");
    assert_eq!(
        after["link"]["reconnect_count"], before["link"]["reconnect_count"],
        "no reconnect: {after}"
    );
}

#[tokio::test]
async fn the_lines_after_an_oversized_reply_still_run() {
    let (server, _fake) = linked().await;
    let (_, body) = run(&server, "main", &format!("text {}\necho after", 2 * LIMIT)).await;
    let lines = body["lines"].as_array().cloned().unwrap_or_default();
    assert_eq!(lines.len(), 2, "{body}");
    assert_eq!(lines[0]["reason"], "reply_too_large", "{body}");
    assert_eq!(lines[1]["output"], "after", "{body}");
}

#[tokio::test]
async fn an_oversized_frame_that_answers_nothing_is_ignored() {
    let (server, fake) = linked().await;
    fake.send_raw_text(&format!(
        r#"{{"type":"PONG","id":1,"pad":"{}"}}"#,
        "x".repeat(2 * LIMIT)
    ))
    .unwrap();
    let (status, body) = run(&server, "main", "echo still here").await;
    assert_eq!(
        (status, body["output"].as_str()),
        (200, Some("still here")),
        "{body}"
    );
    let health = server.health().await.unwrap();
    assert_eq!(health["link"]["state"], "connected", "{health}");
    assert!(
        health["link"]["malformed_frames"].as_u64().unwrap_or(0) >= 1,
        "{health}"
    );
}

#[tokio::test]
async fn a_frame_over_the_ceiling_still_closes_the_link() {
    let (server, fake) = linked().await;
    let too_big = format!("text {}", OVERSIZE_CEILING_FACTOR * LIMIT + 1);
    let (status, body) = run(&server, "main", &too_big).await;
    assert_ne!(status, 200, "{body}");
    assert_eq!(body["error"]["reason"], "extension_link_lost", "{body}");
    let closed = fake.wait_closed(Duration::from_secs(3)).await;
    assert_eq!(
        closed.map(|(code, _)| code),
        Some(1009),
        "closed as too big"
    );
}
