//! Integration tests of the bridge without a browser: the real `domshell` binary, a fake
//! extension, and a fault proxy between them that can blackhole, reset or delay the link.

use std::time::{Duration, Instant};

use domshell_tests::fake_extension::connect_raw;
use domshell_tests::{
    eventually, Direction, FakeExtension, FakeOptions, FaultProxy, ServerOptions, ServerProcess,
};
use serde_json::Value;
use shared_protocol::frame::Frame;

const PING_MS: u64 = 200;
const SILENCE_MS: u64 = 1_000;

async fn server() -> ServerProcess {
    ServerProcess::start(ServerOptions {
        ping_interval_ms: PING_MS,
        silence_limit_ms: SILENCE_MS,
        connect_grace_ms: Some(300),
        ..Default::default()
    })
    .await
    .expect("server starts")
}

/// Server, proxy in front of it, and a fake extension connected through the proxy.
async fn linked() -> (ServerProcess, FaultProxy, FakeExtension) {
    let server = server().await;
    let proxy = FaultProxy::start(server.bridge_addr())
        .await
        .expect("proxy");
    let url = format!("ws://{}/bridge", proxy.addr());
    let fake = FakeExtension::connect(&url, FakeOptions::default())
        .await
        .expect("fake extension connects");
    server
        .wait_for_link_state("connected", Duration::from_secs(5))
        .await
        .expect("link connected");
    (server, proxy, fake)
}

fn error_reason(body: &Value) -> &str {
    body["error"]["reason"].as_str().unwrap_or("<none>")
}

/// Cut the link with `fault`, with one request in flight; check the server declares the link
/// dead within the silence limit + 1 s and answers the request within 1 s after that.
async fn assert_dead_link_detected(fault: impl FnOnce(&FaultProxy, &FakeExtension)) {
    let (server, proxy, fake) = linked().await;
    let server = std::sync::Arc::new(server);
    let in_flight = {
        let server = server.clone();
        tokio::spawn(async move {
            let result = server.execute("sleep 60000", Some(30_000)).await;
            (result, Instant::now())
        })
    };
    fake.wait_for_frame(
        |f| matches!(f, Frame::Execute { .. }),
        Duration::from_secs(5),
    )
    .await
    .expect("the request reached the extension");

    let cut_at = Instant::now();
    fault(&proxy, &fake);
    let health = server
        .wait_for_health(
            |h| h["link"]["state"] == "waiting",
            Duration::from_millis(SILENCE_MS + 3_000),
        )
        .await
        .expect("server declares the link dead");
    let detected_at = Instant::now();
    let detection = detected_at - cut_at;
    assert!(
        detection <= Duration::from_millis(SILENCE_MS + 1_000),
        "detected after {detection:?}; limit {SILENCE_MS} ms + 1 s"
    );
    let reason = health["link"]["last_disconnect_reason"]
        .as_str()
        .unwrap_or("");
    assert!(!reason.is_empty(), "a reason is recorded: {health}");

    let (result, answered_at) = in_flight.await.expect("request task");
    let (status, body) = result.expect("the request got an HTTP answer");
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_reason(&body), "extension_link_lost", "{body}");
    assert_eq!(body["error"]["retryable"], true);
    assert!(
        answered_at <= detected_at + Duration::from_secs(1),
        "pending request answered {:?} after detection",
        answered_at.saturating_duration_since(detected_at)
    );
    assert_eq!(
        server.health().await.unwrap()["link"]["pending_requests"],
        0
    );
}

#[tokio::test]
async fn blackhole_both_directions_is_detected_and_pending_requests_fail() {
    assert_dead_link_detected(|proxy, _| proxy.blackhole_existing(Direction::Both)).await;
}

#[tokio::test]
async fn blackhole_towards_the_server_is_detected() {
    assert_dead_link_detected(|proxy, _| proxy.blackhole_existing(Direction::ToUpstream)).await;
}

#[tokio::test]
async fn blackhole_towards_the_extension_is_detected() {
    assert_dead_link_detected(|proxy, _| proxy.blackhole_existing(Direction::ToClient)).await;
}

#[tokio::test]
async fn an_extension_that_stops_answering_pings_is_detected() {
    assert_dead_link_detected(|_, fake| fake.set_answer_pings(false)).await;
}

#[tokio::test]
async fn a_reset_connection_fails_pending_requests_at_once() {
    let (server, proxy, fake) = linked().await;
    let server = std::sync::Arc::new(server);
    let in_flight = {
        let server = server.clone();
        tokio::spawn(async move { server.execute("sleep 60000", Some(30_000)).await })
    };
    fake.wait_for_frame(
        |f| matches!(f, Frame::Execute { .. }),
        Duration::from_secs(5),
    )
    .await
    .expect("the request reached the extension");
    let cut_at = Instant::now();
    proxy.reset_existing();
    let (status, body) = in_flight.await.unwrap().unwrap();
    let elapsed = cut_at.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_reason(&body), "extension_link_lost");
    assert!(
        elapsed < Duration::from_millis(500),
        "answered after {elapsed:?}"
    );
}

#[tokio::test]
async fn a_slow_link_stays_up_and_reports_its_round_trip() {
    let (server, proxy, _fake) = linked().await;
    proxy.set_delay(Duration::from_millis(100));
    // Several ping intervals and more than the silence limit pass with the delay in place.
    tokio::time::sleep(Duration::from_millis(SILENCE_MS + 500)).await;
    let health = server.health().await.unwrap();
    assert_eq!(health["link"]["state"], "connected", "{health}");
    assert_eq!(health["link"]["reconnect_count"], 0);
    let rtt = health["link"]["last_rtt_ms"]
        .as_u64()
        .expect("an RTT is recorded");
    assert!(rtt >= 200, "RTT {rtt} ms should include 2 × 100 ms delay");
    let (status, body) = server.execute("echo slow", None).await.unwrap();
    assert_eq!(
        (status, body["output"].as_str()),
        (200, Some("slow")),
        "{body}"
    );
}

#[tokio::test]
async fn requests_round_trip_and_command_failures_are_not_link_failures() {
    let (server, _proxy, _fake) = linked().await;
    let (status, body) = server.execute("pwd", None).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(body["output"], "~");
    let (status, body) = server.execute("refresh", None).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], false);
    assert!(body["output"]
        .as_str()
        .unwrap()
        .contains("command not found"));
}

#[tokio::test]
async fn a_command_past_its_deadline_is_cancelled_in_the_extension() {
    let (server, _proxy, fake) = linked().await;
    let started = Instant::now();
    let (status, body) = server.execute("sleep 10000", Some(300)).await.unwrap();
    assert_eq!(status, 504, "{body}");
    assert_eq!(error_reason(&body), "command_timeout");
    assert!(started.elapsed() < Duration::from_secs(2));
    let Frame::Execute {
        id, deadline_ms, ..
    } = fake
        .wait_for_frame(
            |f| matches!(f, Frame::Execute { .. }),
            Duration::from_secs(1),
        )
        .await
        .unwrap()
    else {
        unreachable!()
    };
    // The call's budget, less what checking the line took.
    assert!(
        deadline_ms.is_some_and(|ms| (250..=300).contains(&ms)),
        "the extension learns the deadline: {deadline_ms:?}"
    );
    fake.wait_for_frame(
        |f| matches!(f, Frame::Cancel { id: c } if *c == id),
        Duration::from_secs(2),
    )
    .await
    .expect("CANCEL with the request id");
    // The link itself is fine.
    assert_eq!(server.health().await.unwrap()["link"]["state"], "connected");
}

#[tokio::test]
async fn no_extension_fails_after_the_grace_with_a_hint() {
    let server = server().await;
    let started = Instant::now();
    let (status, body) = server.execute("pwd", None).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_reason(&body), "extension_not_connected");
    assert!(body["error"]["hint"].as_str().unwrap().contains("token"));
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(1_300),
        "failed after {elapsed:?}; grace 300 ms"
    );
}

#[tokio::test]
async fn an_extension_arriving_during_the_grace_serves_the_request() {
    let server = ServerProcess::start(ServerOptions {
        connect_grace_ms: Some(3_000),
        ..Default::default()
    })
    .await
    .unwrap();
    let server = std::sync::Arc::new(server);
    let call = {
        let server = server.clone();
        tokio::spawn(async move { server.execute("pwd", None).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _fake = FakeExtension::connect(&server.bridge_url(), FakeOptions::default())
        .await
        .unwrap();
    let (status, body) = call.await.unwrap().unwrap();
    assert_eq!(
        (status, body["output"].as_str()),
        (200, Some("~")),
        "{body}"
    );
}

#[tokio::test]
async fn a_bad_token_is_refused_with_4001() {
    let server = server().await;
    let (code, reason) = FakeExtension::connect_expect_refusal(
        &server.bridge_url(),
        FakeOptions::new("not-the-token"),
    )
    .await
    .unwrap();
    assert_eq!(code, 4001);
    assert!(reason.contains("token"), "{reason}");
    assert_eq!(server.health().await.unwrap()["link"]["state"], "waiting");
    assert!(
        !server.stderr_text().contains(domshell_tests::TEST_TOKEN),
        "token leaked to the log"
    );
}

#[tokio::test]
async fn a_protocol_mismatch_is_refused_with_4002() {
    let server = server().await;
    let opts = FakeOptions {
        protocol: 999,
        ..Default::default()
    };
    let (code, reason) = FakeExtension::connect_expect_refusal(&server.bridge_url(), opts)
        .await
        .unwrap();
    assert_eq!(code, 4002);
    assert!(reason.contains("999"), "{reason}");
}

#[tokio::test]
async fn web_pages_and_foreign_extensions_cannot_open_the_bridge() {
    let server = server().await;
    let url = server.bridge_url();
    for origin in [
        Some("http://127.0.0.1:8000"),
        Some("https://example.com"),
        Some("chrome-extension://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        None,
    ] {
        let err = connect_raw(&url, origin)
            .await
            .err()
            .unwrap_or_else(|| panic!("origin {origin:?} was allowed to upgrade"));
        assert_eq!(err.status(), Some(403), "origin {origin:?}: {err}");
    }
}

#[tokio::test]
async fn repeated_bad_tokens_are_throttled() {
    let server = server().await;
    for _ in 0..10 {
        let (code, _) =
            FakeExtension::connect_expect_refusal(&server.bridge_url(), FakeOptions::new("wrong"))
                .await
                .unwrap();
        assert_eq!(code, 4001);
    }
    // The 11th attempt within the window is refused without its proof being looked at, even
    // when it is right.
    let (code, reason) =
        FakeExtension::connect_expect_refusal(&server.bridge_url(), FakeOptions::default())
            .await
            .unwrap();
    assert_eq!(code, 4007, "{reason}");
    assert!(reason.contains("retry in"), "{reason}");
}

#[tokio::test]
async fn garbage_frames_do_not_kill_the_link_or_the_server() {
    let (server, _proxy, fake) = linked().await;
    for text in [
        "not json",
        "{}",
        r#"{"type":"FROM_THE_FUTURE","x":1}"#,
        r#"{"type":"RESULT"}"#,
        "\u{0}",
    ] {
        fake.send_raw_text(text).unwrap();
    }
    fake.send_message(tokio_tungstenite::tungstenite::Message::Binary(
        vec![1u8, 2, 3].into(),
    ))
    .unwrap();
    let (status, body) = server.execute("echo still here", None).await.unwrap();
    assert_eq!(
        (status, body["output"].as_str()),
        (200, Some("still here")),
        "{body}"
    );
    let health = server.health().await.unwrap();
    assert_eq!(health["link"]["state"], "connected");
    assert!(
        health["link"]["malformed_frames"].as_u64().unwrap() >= 4,
        "{health}"
    );
}

#[tokio::test]
async fn an_oversize_frame_closes_only_that_connection() {
    let mut server = ServerProcess::start(ServerOptions {
        extra_args: vec!["--max-frame-bytes".into(), "4096".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let fake = FakeExtension::connect(&server.bridge_url(), FakeOptions::default())
        .await
        .unwrap();
    // Over the ceiling the socket reads (4 × the limit); frames between the limit and the
    // ceiling are tested in `bridge_oversize.rs`.
    fake.send_raw_text(&format!(
        r#"{{"type":"PONG","id":1,"pad":"{}"}}"#,
        "x".repeat(20_000)
    ))
    .unwrap();
    let closed = fake.wait_closed(Duration::from_secs(3)).await;
    assert!(
        fake.is_closed(),
        "the oversize sender is disconnected ({closed:?})"
    );
    assert!(server.is_running(), "the server survives");
    let _again = FakeExtension::connect(&server.bridge_url(), FakeOptions::default())
        .await
        .expect("a fresh connection is welcomed");
    let (status, _) = server.execute("pwd", None).await.unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_newer_connection_replaces_the_old_one_with_4003() {
    let server = server().await;
    let old = FakeExtension::connect(&server.bridge_url(), FakeOptions::default())
        .await
        .unwrap();
    let _new = FakeExtension::connect(&server.bridge_url(), FakeOptions::default())
        .await
        .unwrap();
    let (code, reason) = old
        .wait_closed(Duration::from_secs(3))
        .await
        .expect("the old connection gets a close frame");
    assert_eq!(code, 4003);
    assert!(reason.contains("replaced"), "{reason}");
    let health = server
        .wait_for_link_state("connected", Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(health["link"]["reconnect_count"], 1);
}

#[tokio::test]
async fn sigterm_closes_the_link_with_a_reason_and_exits_cleanly() {
    let mut server = server().await;
    let fake = FakeExtension::connect(&server.bridge_url(), FakeOptions::default())
        .await
        .unwrap();
    // A command opens a shell session in the extension.
    let (status, _) = server.execute("pwd", None).await.unwrap();
    assert_eq!(status, 200);
    let status = server
        .terminate_within(Duration::from_secs(5))
        .await
        .unwrap();
    assert!(status.success(), "exit status {status}");
    let (code, _) = fake
        .wait_closed(Duration::from_secs(2))
        .await
        .expect("the extension is told");
    assert_eq!(code, 4006);
    // The session was ended before the socket closed.
    let frames = fake.received();
    let start = frames
        .iter()
        .position(|f| matches!(f, Frame::SessionStart { .. }));
    let end = frames
        .iter()
        .position(|f| matches!(f, Frame::SessionEnd { .. }));
    assert!(start.is_some() && end > start, "{frames:?}");
}

#[tokio::test]
async fn health_reports_heartbeat_figures() {
    let (server, _proxy, fake) = linked().await;
    eventually(
        Duration::from_secs(3),
        Duration::from_millis(50),
        || async { (fake.count("PING") >= 3).then_some(()) },
    )
    .await
    .unwrap();
    let health = server.health().await.unwrap();
    assert_eq!(health["name"], "domshell");
    assert_eq!(health["role"], "owner");
    assert_eq!(health["pid"], server.pid());
    assert_eq!(health["link"]["extension_version"], "fake");
    assert_eq!(health["link"]["ping_interval_ms"], PING_MS);
    assert!(health["link"]["last_inbound_age_ms"].as_u64().unwrap() < SILENCE_MS);
    assert!(health["link"]["last_rtt_ms"].is_u64(), "{health}");
    assert!(health["link"]["connected_for_ms"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_liveness_death_sends_no_close_frame() {
    // Directly connected (no proxy): the only way the fake can miss a close frame is if the
    // server never sent one.
    let server = server().await;
    let fake = FakeExtension::connect(&server.bridge_url(), FakeOptions::default())
        .await
        .unwrap();
    server
        .wait_for_link_state("connected", Duration::from_secs(2))
        .await
        .unwrap();
    fake.set_answer_pings(false);
    let health = server
        .wait_for_health(
            |h| h["link"]["state"] == "waiting",
            Duration::from_millis(SILENCE_MS + 3_000),
        )
        .await
        .expect("the server declares the link dead");
    assert!(
        health["link"]["last_disconnect_reason"]
            .as_str()
            .unwrap_or("")
            .contains("silence"),
        "{health}"
    );
    let close = fake.wait_closed(Duration::from_secs(3)).await;
    assert!(fake.is_closed(), "the server dropped the socket");
    assert_eq!(close, None, "a dead peer gets no close frame");
    assert!(
        fake.read_error().is_some(),
        "the socket just ended: {:?}",
        fake.read_error()
    );
}

#[tokio::test]
async fn a_link_lost_during_the_session_handshake_fails_the_call_within_a_second() {
    // The budget is long: only the link's end may answer the call quickly.
    let server = std::sync::Arc::new(
        ServerProcess::start(ServerOptions {
            connect_grace_ms: Some(3_000),
            command_timeout_ms: Some(30_000),
            ..Default::default()
        })
        .await
        .unwrap(),
    );
    let fake = FakeExtension::connect(
        &server.bridge_url(),
        FakeOptions {
            answer_sessions: false,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let call = {
        let server = server.clone();
        tokio::spawn(async move { server.execute("pwd", Some(30_000)).await })
    };
    fake.wait_for_frame(
        |f| matches!(f, Frame::SessionStart { .. }),
        Duration::from_secs(5),
    )
    .await
    .expect("the session handshake started");
    let cut_at = Instant::now();
    fake.abort();
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the call is answered long before its budget")
        .unwrap()
        .unwrap();
    let elapsed = cut_at.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_reason(&body), "extension_link_lost", "{body}");
    assert!(
        elapsed < Duration::from_secs(1),
        "answered after {elapsed:?}"
    );
    assert_eq!(fake.count("EXECUTE"), 0);
}

#[tokio::test]
async fn every_shutdown_delivers_4006_to_the_connected_extension() {
    for round in 0..5 {
        let mut server = server().await;
        let fake = FakeExtension::connect(&server.bridge_url(), FakeOptions::default())
            .await
            .unwrap();
        server
            .wait_for_link_state("connected", Duration::from_secs(2))
            .await
            .unwrap();
        let status = server
            .terminate_within(Duration::from_secs(5))
            .await
            .unwrap();
        assert!(status.success(), "round {round}: exit status {status}");
        // The process has exited: whatever it sent is already on the fake's side.
        let close = fake.wait_closed(Duration::from_secs(2)).await;
        assert_eq!(
            close.as_ref().map(|c| c.0),
            Some(4006),
            "round {round}: {close:?}, {:?}",
            fake.read_error()
        );
    }
}
