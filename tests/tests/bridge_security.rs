//! Who may use the server, tested against the real binary: the challenge–response handshake
//! (no token on the wire, old extensions told to update), the guess throttle (one budget for
//! any number of sockets, a returning extension exempt), token strength and file permissions,
//! and the Host/Origin checks on every route.

use domshell_tests::fake_extension::connect_raw;
use domshell_tests::{
    FakeExtension, FakeOptions, ServerOptions, ServerProcess, TEST_MCP_TOKEN, TEST_TOKEN,
};
use shared_protocol::frame::Frame;

async fn server() -> ServerProcess {
    ServerProcess::start(ServerOptions::default())
        .await
        .expect("server starts")
}

#[tokio::test]
async fn a_version_1_extension_is_told_to_update_and_gets_nothing_else() {
    let server = server().await;
    let ((code, reason), texts) =
        FakeExtension::connect_as_version_1(&server.bridge_url(), TEST_TOKEN)
            .await
            .unwrap();
    assert_eq!(code, 4002, "{reason}");
    assert!(reason.contains("update the domshell extension"), "{reason}");
    // Only the CHALLENGE went out, and it carries no secret.
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(matches!(
        Frame::decode(&texts[0], 10_000),
        Ok(Frame::Challenge { protocol: 2, .. })
    ));
    assert!(!texts[0].contains(TEST_TOKEN));
    assert_eq!(server.health().await.unwrap()["link"]["state"], "waiting");
    assert!(
        !server.stderr_text().contains(TEST_TOKEN),
        "the token a version-1 HELLO carried reached the log"
    );
}

#[tokio::test]
async fn no_frame_of_the_handshake_carries_the_token_and_the_server_proves_itself() {
    let server = server().await;
    // `connect` checks the server's proof in WELCOME and fails otherwise.
    let fake = FakeExtension::connect(&server.bridge_url(), FakeOptions::default())
        .await
        .expect("the server proves it knows the token");
    let (status, _) = server.execute("pwd", None).await.unwrap();
    assert_eq!(status, 200);
    let welcome = fake.welcome().encode().unwrap();
    assert!(!welcome.contains(TEST_TOKEN), "{welcome}");
    for text in fake.received_texts() {
        assert!(!text.contains(TEST_TOKEN), "{text}");
    }
    assert!(fake.resume_ticket().is_some());
}

#[tokio::test]
async fn many_sockets_at_once_share_one_guess_budget_and_a_returning_extension_gets_in() {
    let server = server().await;
    let url = server.bridge_url();
    // The real extension connected once before the flood and kept its ticket.
    let before = FakeExtension::connect(&url, FakeOptions::default())
        .await
        .unwrap();
    let ticket = before.resume_ticket().expect("WELCOME carries a ticket");
    drop(before);

    // 30 sockets guess at the same moment.
    let guesses: Vec<_> = (0..30)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                FakeExtension::connect_expect_refusal(
                    &url,
                    FakeOptions::new(format!("wrong-guess-{i}-0123456789abcdef0123456789")),
                )
                .await
            })
        })
        .collect();
    let mut evaluated = 0;
    let mut throttled = 0;
    for guess in guesses {
        let (code, reason) = guess.await.unwrap().unwrap();
        match code {
            4001 => evaluated += 1,
            4007 => throttled += 1,
            other => panic!("unexpected close {other} {reason}"),
        }
    }
    assert!(
        evaluated <= 10,
        "{evaluated} of 30 parallel guesses were evaluated; the budget is 10 per window"
    );
    assert_eq!(evaluated + throttled, 30);

    // Now even the right token is refused unchecked…
    let (code, _) = FakeExtension::connect_expect_refusal(&url, FakeOptions::default())
        .await
        .unwrap();
    assert_eq!(code, 4007);
    // …except for the extension that presents its ticket (and still proves the token).
    let returning = FakeExtension::connect(
        &url,
        FakeOptions {
            resume: Some(ticket.clone()),
            ..Default::default()
        },
    )
    .await
    .expect("a returning extension is admitted during the flood");
    let (status, body) = server.execute("pwd", None).await.unwrap();
    assert_eq!(status, 200, "{body}");
    drop(returning);
    // A ticket does not replace the proof.
    let (code, _) = FakeExtension::connect_expect_refusal(
        &url,
        FakeOptions {
            resume: Some(ticket),
            ..FakeOptions::new("wrong-but-holding-a-ticket-0123456789")
        },
    )
    .await
    .unwrap();
    assert_eq!(code, 4001);
    let health = server.health().await.unwrap();
    assert!(
        health["link"]["throttled_handshakes"].as_u64().unwrap() >= 20,
        "{health}"
    );
}

#[tokio::test]
async fn a_ticket_survives_a_server_restart() {
    let mut server = server().await;
    let port = server.port();
    let fake = FakeExtension::connect(&server.bridge_url(), FakeOptions::default())
        .await
        .unwrap();
    let ticket = fake.resume_ticket().unwrap();
    drop(fake);
    server.terminate().await.unwrap();
    let server = ServerProcess::start_on_port(port, ServerOptions::default())
        .await
        .unwrap();
    for i in 0..10 {
        FakeExtension::connect_expect_refusal(
            &server.bridge_url(),
            FakeOptions::new(format!("wrong-{i}-0123456789abcdef0123456789abcdef")),
        )
        .await
        .unwrap();
    }
    FakeExtension::connect(
        &server.bridge_url(),
        FakeOptions {
            resume: Some(ticket),
            ..Default::default()
        },
    )
    .await
    .expect("the new process honours a ticket the old one issued");
}

#[tokio::test]
async fn tokens_shorter_than_128_bits_are_refused_at_start() {
    let Err(err) = ServerProcess::start(ServerOptions {
        token: Some("short-token".into()),
        ..Default::default()
    })
    .await
    else {
        panic!("a short token is refused")
    };
    let text = format!("{err:#}");
    assert!(text.contains("at least 32"), "{text}");
    assert!(text.contains("--token"), "{text}");
}

#[cfg(unix)]
#[tokio::test]
async fn a_token_file_readable_by_others_is_refused_with_the_chmod_to_run() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{TEST_TOKEN}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let Err(err) = ServerProcess::start(ServerOptions {
        token: None,
        extra_args: vec!["--token-file".into(), path.display().to_string()],
        ..Default::default()
    })
    .await
    else {
        panic!("a world-readable token file is refused")
    };
    let text = format!("{err:#}");
    assert!(
        text.contains(&format!("chmod 600 {}", path.display())),
        "{text}"
    );
    assert!(!text.contains(TEST_TOKEN), "{text}");
}

#[tokio::test]
async fn a_generated_token_is_never_printed_to_stderr() {
    let server = ServerProcess::start(ServerOptions {
        token: None,
        ..Default::default()
    })
    .await
    .unwrap();
    let stderr = server.stderr_text();
    assert_eq!(server.token().len(), 64);
    assert!(!stderr.contains(server.token()), "{stderr}");
    assert!(stderr.contains("domshell token"), "{stderr}");
    assert!(stderr.contains("saved it"), "{stderr}");
}

#[tokio::test]
async fn every_route_refuses_foreign_hosts_and_origins() {
    let server = server().await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |path: &str, host: Option<&str>, origin: Option<&str>| {
        let mut request = client.get(server.http_url(path));
        if let Some(h) = host {
            request = request.header("Host", h);
        }
        if let Some(o) = origin {
            request = request.header("Origin", o);
        }
        request.send()
    };
    assert_eq!(get("/health", None, None).await.unwrap().status(), 200);
    assert_eq!(
        get("/health", None, Some("http://localhost:3000"))
            .await
            .unwrap()
            .status(),
        200
    );
    // A DNS-rebinding page reaches 127.0.0.1 under its own name, or sends its own Origin.
    for (host, origin) in [
        (Some("evil.example"), None),
        (Some("evil.example:9876"), None),
        (None, Some("https://evil.example")),
        (None, Some("null")),
    ] {
        let response = get("/health", host, origin).await.unwrap();
        assert_eq!(response.status(), 403, "{host:?} {origin:?}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("pid"), "{body}");
    }
    let debug = client
        .post(server.http_url("/debug/execute"))
        .header("Host", "evil.example")
        .bearer_auth(TEST_MCP_TOKEN)
        .json(&serde_json::json!({"command": "pwd"}))
        .send()
        .await
        .unwrap();
    assert_eq!(debug.status(), 403);
    let mcp = client
        .post(server.http_url("/mcp"))
        .header("Host", "evil.example")
        .header("Accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), 403);
    // The upgrade keeps its extension-only Origin rule and gets the Host check too.
    let origin = shared_protocol::extension_origin(shared_protocol::EXTENSION_ID);
    let upgrade = client
        .get(server.http_url("/bridge"))
        .header("Host", "evil.example")
        .header("Origin", &origin)
        .header("Connection", "upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(upgrade.status(), 403);
    assert!(connect_raw(&server.bridge_url(), Some(&origin))
        .await
        .is_ok());
}

#[tokio::test]
async fn wrong_bearer_tokens_on_the_debug_route_are_throttled() {
    let server = server().await;
    for i in 0..10 {
        let (status, body) = server
            .execute_as(&format!("wrong-{i}"), "pwd", None)
            .await
            .unwrap();
        assert_eq!(status, 401, "{body}");
    }
    // The budget is spent: even the right token is refused unchecked for a while.
    let (status, body) = server.execute("pwd", None).await.unwrap();
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("retry in"),
        "{body}"
    );
}
