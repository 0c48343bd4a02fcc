//! Unit tests of the bridge against in-memory connections (a channel stands for the socket).

use std::time::{Duration, Instant};

use shared_protocol::frame::{Frame, Secret};
use shared_protocol::link::LinkState;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;

fn bridge(grace_ms: u64, timeout_ms: u64) -> Bridge {
    Bridge::new(BridgeConfig {
        token: Secret("0123456789abcdef0123456789abcdef".into()),
        ping_interval: Duration::from_millis(100),
        silence_limit: Duration::from_millis(300),
        connect_grace: Duration::from_millis(grace_ms),
        command_timeout: Duration::from_millis(timeout_ms),
        max_frame_bytes: 1024,
        hello_timeout: Duration::from_millis(100),
        origins: OriginPolicy::new(&[]),
    })
}

impl Bridge {
    async fn execute_test(&self, request: ExecuteRequest) -> Result<Outcome, BridgeError> {
        self.execute(request, &CancellationToken::new()).await
    }
}

fn request(command: &str) -> ExecuteRequest {
    ExecuteRequest {
        session: "s".into(),
        command: command.into(),
        ..Default::default()
    }
}

/// Play the extension's part for session frames: acknowledge them, and return the next
/// other frame.
async fn next_frame(
    b: &Bridge,
    conn: u64,
    rx: &mut mpsc::UnboundedReceiver<Outbound>,
) -> Option<Outbound> {
    loop {
        match rx.recv().await? {
            Outbound::Frame(Frame::SessionStart { id, .. } | Frame::SessionEnd { id, .. }) => {
                b.acknowledge(conn, &id)
            }
            other => return Some(other),
        }
    }
}

#[tokio::test]
async fn no_link_fails_after_the_grace_with_a_hint() {
    let b = bridge(50, 1_000);
    let err = b.execute_test(request("pwd")).await.unwrap_err();
    assert!(matches!(err, BridgeError::NotConnected { waited_ms } if waited_ms >= 50));
    assert!(err.retryable());
    assert!(err.hint().contains("token"));
}

#[tokio::test]
async fn a_link_arriving_within_the_grace_is_used() {
    let b = bridge(2_000, 1_000);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let b2 = b.clone();
    let call = tokio::spawn(async move { b2.execute_test(request("pwd")).await });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let conn = b.install(tx, "test".into()).unwrap();
    let Some(Outbound::Frame(Frame::Execute { id, command, .. })) =
        next_frame(&b, conn, &mut rx).await
    else {
        panic!("expected EXECUTE")
    };
    assert_eq!(command, "pwd");
    b.complete(
        conn,
        &id,
        Outcome {
            ok: true,
            output: "~".into(),
            lane: None,
        },
    );
    assert_eq!(call.await.unwrap().unwrap().output, "~");
    assert_eq!(b.health().pending_requests, 0);
}

#[tokio::test]
async fn sessions_are_started_once_per_connection_and_again_after_a_reconnect() {
    let b = bridge(1_000, 1_000);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn = b.install(tx, "test".into()).unwrap();
    for _ in 0..2 {
        let b2 = b.clone();
        let call = tokio::spawn(async move { b2.execute_test(request("pwd")).await });
        // The first command of the session is preceded by SESSION_START, the second not.
        let mut starts = 0;
        let id = loop {
            match rx.recv().await.unwrap() {
                Outbound::Frame(Frame::SessionStart { id, session }) => {
                    assert_eq!(session, "s");
                    starts += 1;
                    b.acknowledge(conn, &id);
                }
                Outbound::Frame(Frame::Execute { id, .. }) => break id,
                _ => panic!("unexpected frame"),
            }
        };
        b.complete(
            conn,
            &id,
            Outcome {
                ok: true,
                output: String::new(),
                lane: None,
            },
        );
        call.await.unwrap().unwrap();
        assert!(starts <= 1);
    }
    assert_eq!(b.health().shell_sessions, 1);
    // A new connection is told about every known session without being asked.
    let (tx2, mut rx2) = mpsc::unbounded_channel();
    b.install(tx2, "test".into()).unwrap();
    assert!(matches!(
        rx2.recv().await,
        Some(Outbound::Frame(Frame::SessionStart { session, .. })) if session == "s"
    ));
}

#[tokio::test]
async fn closing_a_session_sends_session_end_and_waits_for_its_ack() {
    let b = bridge(1_000, 1_000);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn = b.install(tx, "test".into()).unwrap();
    b.state().sessions.insert(
        "s1".into(),
        ShellSession {
            started_on: Some(conn),
        },
    );
    let b2 = b.clone();
    let closing = tokio::spawn(async move { b2.close_session("s1", Duration::from_secs(5)).await });
    let Some(Outbound::Frame(Frame::SessionEnd { id, session })) = rx.recv().await else {
        panic!("expected SESSION_END")
    };
    assert_eq!(session, "s1");
    assert!(!closing.is_finished());
    b.acknowledge(conn, &id);
    closing.await.unwrap();
    assert_eq!(b.health().shell_sessions, 0);
}

#[tokio::test]
async fn removing_the_link_fails_pending_requests_at_once() {
    let b = bridge(10, 60_000);
    let (tx, _rx) = mpsc::unbounded_channel();
    let conn = b.install(tx, "test".into()).unwrap();
    let calls: Vec<_> = (0..5)
        .map(|i| {
            let b = b.clone();
            tokio::spawn(async move { b.execute_test(request(&format!("cmd{i}"))).await })
        })
        .collect();
    while b.health().pending_requests < 5 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut events = b.subscribe_link_events();
    let started = Instant::now();
    b.remove(conn, "silence limit");
    for call in calls {
        let err = call.await.unwrap().unwrap_err();
        assert_eq!(err.reason(), "extension_link_lost");
    }
    assert!(started.elapsed() < Duration::from_millis(100));
    assert_eq!(b.health().state, LinkState::Waiting);
    assert_eq!(
        b.health().last_disconnect_reason.as_deref(),
        Some("silence limit")
    );
    assert_eq!(
        events.recv().await.unwrap(),
        LinkEvent::Down {
            reason: "silence limit".into()
        }
    );
}

#[tokio::test]
async fn replacement_closes_the_old_link_and_fails_its_requests() {
    let b = bridge(10, 60_000);
    let (old_tx, mut old_rx) = mpsc::unbounded_channel();
    let old = b.install(old_tx, "old".into()).unwrap();
    let b2 = b.clone();
    let call = tokio::spawn(async move { b2.execute_test(request("pwd")).await });
    assert!(matches!(
        next_frame(&b, old, &mut old_rx).await,
        Some(Outbound::Frame(_))
    ));
    let (new_tx, _new_rx) = mpsc::unbounded_channel();
    b.install(new_tx, "new".into()).unwrap();
    assert!(matches!(
        old_rx.recv().await,
        Some(Outbound::Close(4003, _))
    ));
    assert_eq!(
        call.await.unwrap().unwrap_err().reason(),
        "extension_link_lost"
    );
    let health = b.health();
    assert_eq!(health.reconnect_count, 1);
    assert_eq!(health.extension_version.as_deref(), Some("new"));
}

#[tokio::test]
async fn timeout_cancels_in_the_extension() {
    let b = bridge(10, 50);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn = b.install(tx, "test".into()).unwrap();
    b.state().sessions.insert(
        "s".into(),
        ShellSession {
            started_on: Some(conn),
        },
    );
    let err = b.execute_test(request("wait")).await.unwrap_err();
    assert_eq!(err, BridgeError::Timeout { after_ms: 50 });
    assert!(!err.retryable());
    let Some(Outbound::Frame(Frame::Execute { id, .. })) = rx.recv().await else {
        panic!("expected EXECUTE")
    };
    assert!(matches!(rx.recv().await, Some(Outbound::Frame(Frame::Cancel { id: c })) if c == id));
    assert_eq!(b.health().pending_requests, 0);
}

#[tokio::test]
async fn client_cancellation_stops_waiting_and_tells_the_extension() {
    let b = bridge(10, 60_000);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn = b.install(tx, "test".into()).unwrap();
    let cancel = CancellationToken::new();
    let b2 = b.clone();
    let token = cancel.clone();
    let call = tokio::spawn(async move { b2.execute(request("wait"), &token).await });
    let Some(Outbound::Frame(Frame::Execute { id, .. })) = next_frame(&b, conn, &mut rx).await
    else {
        panic!("expected EXECUTE")
    };
    cancel.cancel();
    assert_eq!(call.await.unwrap().unwrap_err(), BridgeError::Cancelled);
    assert!(matches!(rx.recv().await, Some(Outbound::Frame(Frame::Cancel { id: c })) if c == id));
    assert_eq!(b.health().pending_requests, 0);
}

#[tokio::test]
async fn shutdown_answers_everyone() {
    let b = bridge(10, 60_000);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn = b.install(tx, "test".into()).unwrap();
    let b2 = b.clone();
    let call = tokio::spawn(async move { b2.execute_test(request("pwd")).await });
    assert!(matches!(
        next_frame(&b, conn, &mut rx).await,
        Some(Outbound::Frame(_))
    ));
    b.shutdown();
    assert_eq!(call.await.unwrap().unwrap_err(), BridgeError::ShuttingDown);
    // Sessions are ended before the close frame.
    assert!(matches!(
        rx.recv().await,
        Some(Outbound::Frame(Frame::SessionEnd { .. }))
    ));
    assert!(matches!(rx.recv().await, Some(Outbound::Close(4006, _))));
    assert_eq!(
        b.execute_test(request("pwd")).await.unwrap_err(),
        BridgeError::ShuttingDown
    );
}

#[tokio::test]
async fn a_link_lost_during_the_session_handshake_fails_the_call_at_once() {
    // A long budget and grace: only the link's end may finish this call quickly.
    let b = bridge(3_000, 60_000);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn = b.install(tx, "test".into()).unwrap();
    let b2 = b.clone();
    let call = tokio::spawn(async move { b2.execute_test(request("pwd")).await });
    // The SESSION_START is on the wire; the link dies before its ACK.
    assert!(matches!(
        rx.recv().await,
        Some(Outbound::Frame(Frame::SessionStart { .. }))
    ));
    let started = Instant::now();
    b.remove(conn, "connection reset");
    let result = tokio::time::timeout(Duration::from_secs(1), call)
        .await
        .expect("the call ends within a second of the link's end")
        .unwrap();
    assert_eq!(result.unwrap_err().reason(), "extension_link_lost");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(b.health().pending_requests, 0, "nothing left in the table");
    // And nothing was sent on the dead connection after it was removed.
    while let Ok(item) = rx.try_recv() {
        assert!(
            !matches!(item, Outbound::Frame(Frame::Execute { .. })),
            "EXECUTE sent on a removed link"
        );
    }
}

#[tokio::test]
async fn a_link_replaced_during_the_session_handshake_fails_the_call_at_once() {
    let b = bridge(3_000, 60_000);
    let (tx, mut rx) = mpsc::unbounded_channel();
    b.install(tx, "old".into()).unwrap();
    let b2 = b.clone();
    let call = tokio::spawn(async move { b2.execute_test(request("pwd")).await });
    assert!(matches!(
        rx.recv().await,
        Some(Outbound::Frame(Frame::SessionStart { .. }))
    ));
    let (new_tx, _new_rx) = mpsc::unbounded_channel();
    b.install(new_tx, "new".into()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(1), call)
        .await
        .expect("the call ends within a second of the replacement")
        .unwrap();
    assert_eq!(result.unwrap_err().reason(), "extension_link_lost");
}

#[tokio::test]
async fn a_waiting_request_holds_no_sender_of_its_connection() {
    let b = bridge(10, 60_000);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn = b.install(tx, "test".into()).unwrap();
    let b2 = b.clone();
    let call = tokio::spawn(async move { b2.execute_test(request("wait")).await });
    let Some(Outbound::Frame(Frame::Execute { .. })) = next_frame(&b, conn, &mut rx).await else {
        panic!("expected EXECUTE")
    };
    // Once the bridge forgets the link, the only senders left would be the request's: the
    // channel must report closed, which is what lets a connection's writer stop.
    b.state().active = None;
    tokio::time::timeout(Duration::from_secs(1), rx.recv())
        .await
        .expect("the channel closes: no sender is left");
    call.abort();
}

#[tokio::test]
async fn request_ids_come_from_a_counter() {
    let b = bridge(10, 1_000);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn = b.install(tx, "test".into()).unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let b2 = b.clone();
        let call = tokio::spawn(async move { b2.execute_test(request("pwd")).await });
        let Some(Outbound::Frame(Frame::Execute { id, .. })) = next_frame(&b, conn, &mut rx).await
        else {
            panic!("expected EXECUTE")
        };
        b.complete(
            conn,
            &id,
            Outcome {
                ok: true,
                output: String::new(),
                lane: None,
            },
        );
        call.await.unwrap().unwrap();
        ids.push(id);
    }
    let numbers: Vec<u64> = ids
        .iter()
        .map(|id| id.trim_start_matches('r').parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[1] > w[0]), "{ids:?}");
}

#[tokio::test]
async fn a_connection_after_shutdown_is_not_installed() {
    let b = bridge(10, 1_000);
    b.shutdown();
    let (tx, _rx) = mpsc::unbounded_channel();
    assert_eq!(b.install(tx, "late".into()), None);
    assert_eq!(b.health().state, LinkState::Waiting);
}

#[tokio::test]
async fn unacknowledged_session_frames_are_bounded() {
    let b = bridge(1_000, 1_000);
    let (tx, _rx) = mpsc::unbounded_channel();
    let conn = b.install(tx, "test".into()).unwrap();
    for i in 0..(super::sessions::MAX_PENDING_ACKS + 50) {
        b.state().sessions.insert(
            format!("s{i}"),
            ShellSession {
                started_on: Some(conn),
            },
        );
        b.close_session(&format!("s{i}"), Duration::ZERO).await;
    }
    assert_eq!(
        b.state().pending_acks.len(),
        super::sessions::MAX_PENDING_ACKS
    );
}

#[tokio::test]
async fn progress_reaches_the_request_it_names_on_its_own_connection_only() {
    let b = bridge(2_000, 1_000);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn = b.install(tx, "test".into()).unwrap();
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = heard.clone();
    let mut watched = request("watch pwd");
    watched.progress = Some(ProgressSink::new(move |done, total, message| {
        sink.lock()
            .unwrap()
            .push((done, total, message.to_string()));
    }));
    let b2 = b.clone();
    let call = tokio::spawn(async move { b2.execute_test(watched).await });
    let Some(Outbound::Frame(Frame::Execute { id, .. })) = next_frame(&b, conn, &mut rx).await
    else {
        panic!("expected EXECUTE")
    };
    b.progress(conn, &id, 1, Some(3), "watch: run 2 of 3");
    // Another connection's report, and one for a request nobody waits for, go nowhere.
    b.progress(conn + 1, &id, 2, Some(3), "from elsewhere");
    b.progress(conn, "r-unknown", 2, Some(3), "nobody");
    b.complete(
        conn,
        &id,
        Outcome {
            ok: true,
            output: "done".into(),
            lane: None,
        },
    );
    // After the result, the request is gone: a late report is dropped.
    b.progress(conn, &id, 2, Some(3), "late");
    assert_eq!(call.await.unwrap().unwrap().output, "done");
    assert_eq!(
        *heard.lock().unwrap(),
        [(1, Some(3), "watch: run 2 of 3".to_string())]
    );
}
