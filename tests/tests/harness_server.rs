//! Self-test of the server and fake-extension harness against the real `domshell` binary:
//! start, health, handshake, execute, refusals, restart on a known port.
//!
//! It checks the harness, not the server's fault handling (that belongs to the feature tests);
//! it must not depend on Chromium.

use std::time::Duration;

use domshell_tests::fake_extension::connect_raw;
use domshell_tests::{FakeExtension, FakeOptions, ServerOptions, ServerProcess};
use shared_protocol::frame::Frame;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn server_starts_waiting_and_a_fake_extension_runs_commands() -> anyhow::Result<()> {
    let server = ServerProcess::start(ServerOptions::default()).await?;
    let health = server.health().await?;
    assert_eq!(health["name"], "domshell", "{health}");
    assert_eq!(health["link"]["state"], "waiting", "{health}");
    assert_eq!(health["link"]["ping_interval_ms"], 200, "{health}");
    assert_eq!(health["link"]["silence_limit_ms"], 1_000, "{health}");

    let fake = FakeExtension::connect(&server.bridge_url(), FakeOptions::default()).await?;
    assert!(matches!(
        fake.welcome(),
        Frame::Welcome {
            ping_interval_ms: 200,
            ..
        }
    ));
    let health = server.wait_for_link_state("connected", WAIT).await?;
    assert_eq!(health["link"]["extension_version"], "fake", "{health}");

    let (status, body) = server.execute("pwd", None).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(body["output"], "~", "{body}");

    let (status, body) = server.execute("echo hello world", Some(2_000)).await?;
    assert_eq!(
        (status, body["output"].as_str()),
        (200, Some("hello world")),
        "{body}"
    );
    let (status, body) = server.execute("refresh", None).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], false, "{body}");
    assert!(fake.count("EXECUTE") >= 3);

    // Heartbeats flow and are answered, so the link stays up past the silence limit.
    fake.wait_for_frame(|f| matches!(f, Frame::Ping { .. }), WAIT)
        .await?;
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert!(!fake.is_closed(), "closed: {:?}", fake.close_reason());
    let health = server.health().await?;
    assert_eq!(health["link"]["state"], "connected", "{health}");
    assert!(health["link"]["last_rtt_ms"].is_u64(), "{health}");
    Ok(())
}

#[tokio::test]
async fn silent_fake_is_dropped_and_a_slow_command_times_out() -> anyhow::Result<()> {
    let server = ServerProcess::start(ServerOptions::default()).await?;
    let fake = FakeExtension::connect(&server.bridge_url(), FakeOptions::default()).await?;
    server.wait_for_link_state("connected", WAIT).await?;

    let (status, body) = server.execute("sleep 2000", Some(300)).await?;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"]["reason"], "command_timeout", "{body}");
    fake.wait_for_frame(|f| matches!(f, Frame::Cancel { .. }), WAIT)
        .await?;

    fake.set_answer_pings(false);
    server.wait_for_link_state("waiting", WAIT).await?;
    // A dead-declared link is dropped without a close frame.
    tokio::time::timeout(WAIT, async {
        while !fake.is_closed() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn refusals_are_observable() -> anyhow::Result<()> {
    let server = ServerProcess::start(ServerOptions::default()).await?;
    let url = server.bridge_url();

    let err = connect_raw(&url, Some("http://evil.example"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    let err = connect_raw(&url, None).await.unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");

    let (code, reason) =
        FakeExtension::connect_expect_refusal(&url, FakeOptions::new("wrong-token")).await?;
    assert_eq!(code, 4001, "{reason}");

    let old_protocol = FakeOptions {
        protocol: 99,
        ..Default::default()
    };
    let (code, _) = FakeExtension::connect_expect_refusal(&url, old_protocol).await?;
    assert_eq!(code, 4002);

    let (status, body) = server.execute_as("nope", "pwd", None).await?;
    assert_eq!(status, 401, "{body}");

    // The first connection is replaced by the second, with a reason.
    let first = FakeExtension::connect(&url, FakeOptions::default()).await?;
    let _second = FakeExtension::connect(&url, FakeOptions::default()).await?;
    let closed = first.wait_closed(WAIT).await;
    assert_eq!(closed.map(|c| c.0), Some(4003));
    Ok(())
}

#[tokio::test]
async fn restart_on_the_same_port_and_shutdown_close_code() -> anyhow::Result<()> {
    let mut server = ServerProcess::start(ServerOptions::default()).await?;
    let port = server.port();
    let fake = FakeExtension::connect(&server.bridge_url(), FakeOptions::default()).await?;
    server.wait_for_link_state("connected", WAIT).await?;
    let status = server.terminate().await?;
    assert!(
        status.success(),
        "{status}; stderr:\n{}",
        server.stderr_text()
    );
    assert_eq!(fake.wait_closed(WAIT).await.map(|c| c.0), Some(4006));

    let server = ServerProcess::start_on_port(port, ServerOptions::default()).await?;
    assert_eq!(server.port(), port);
    let _fake = FakeExtension::connect(&server.bridge_url(), FakeOptions::default()).await?;
    server.wait_for_link_state("connected", WAIT).await?;
    Ok(())
}

#[tokio::test]
async fn generated_token_is_read_back() -> anyhow::Result<()> {
    let server = ServerProcess::start(ServerOptions {
        token: None,
        ..Default::default()
    })
    .await?;
    assert_eq!(server.token().len(), 64, "{}", server.stderr_text());
    let _fake =
        FakeExtension::connect(&server.bridge_url(), FakeOptions::new(server.token())).await?;
    let (status, body) = server.execute("pwd", None).await?;
    assert_eq!(
        (status, body["output"].as_str()),
        (200, Some("~")),
        "{body}"
    );
    Ok(())
}
