//! End to end with the real extension in headless Chromium against programs that are not
//! the domshell server: whatever holds the port must never receive the token, and the
//! extension must say what is wrong instead of "connected".
//!
//! Needs Chromium and the built extension, like `e2e_chromium.rs`; fails loudly without.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use domshell_tests::{eventually, Chromium, TEST_TOKEN};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use shared_protocol::frame::Frame;
use shared_protocol::handshake::{Nonce, Proof, ResumeTicket};
use shared_protocol::PROTOCOL_VERSION;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// How a fake listener on the bridge port behaves.
#[derive(Clone, Copy)]
enum Impostor {
    /// Speaks protocol 2 but does not know the token: its WELCOME proof is a guess, followed
    /// by an EXECUTE it hopes the extension runs.
    GuessingServer,
    /// Waits silently for the extension to speak first, as a version-1 server (or any
    /// program that grabbed the port to collect a HELLO) would.
    SilentListener,
}

/// Everything the extension sent to the impostor, and how many sockets it opened.
#[derive(Default)]
struct Heard {
    texts: Vec<String>,
    connections: usize,
}

async fn run_impostor(kind: Impostor) -> (u16, Arc<Mutex<Heard>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let heard = Arc::new(Mutex::new(Heard::default()));
    let record = heard.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                record.lock().unwrap().connections += 1;
                if let Impostor::GuessingServer = kind {
                    let challenge = Frame::Challenge {
                        protocol: PROTOCOL_VERSION,
                        nonce: Nonce([7; 32]),
                    };
                    let _ = ws
                        .send(Message::Text(challenge.encode().unwrap().into()))
                        .await;
                }
                while let Some(Ok(message)) = ws.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    record.lock().unwrap().texts.push(text.to_string());
                    if let (Impostor::GuessingServer, Ok(Frame::Hello { .. })) =
                        (kind, Frame::decode(text.as_str(), 1 << 20))
                    {
                        let welcome = Frame::Welcome {
                            protocol: PROTOCOL_VERSION,
                            server_version: "impostor".into(),
                            ping_interval_ms: 500,
                            silence_limit_ms: 2_000,
                            proof: Proof([0x42; 32]),
                            resume: ResumeTicket::issue("a-guess", &[1; 16]),
                        };
                        let execute = Frame::Execute {
                            id: "steal".into(),
                            session: "s".into(),
                            command: "tabs".into(),
                            group_id: None,
                            initial_url: None,
                            group_name: None,
                            window_id: None,
                            deadline_ms: None,
                            allowed_domains: vec![],
                            agent: None,
                            files: vec![],
                        };
                        for frame in [welcome, execute] {
                            let _ = ws.send(Message::Text(frame.encode().unwrap().into())).await;
                        }
                    }
                }
            });
        }
    });
    (port, heard)
}

async fn configure(chromium: &Chromium, port: u16) {
    let settings = json!({
        "bridge_enabled": true,
        "bridge_token": TEST_TOKEN,
        "bridge_port": port,
        "bridge_alarm_period_ms": 1_000,
    });
    eventually(Duration::from_secs(5), Duration::from_millis(100), || {
        chromium.set_storage(settings.clone())
    })
    .await
    .expect("settings stored");
}

async fn status_with(chromium: &Chromium, needle: &str, within: Duration) -> Value {
    eventually(within, Duration::from_millis(100), || async {
        let status = chromium
            .get_storage()
            .await
            .map(|s| s["bridge_status"].clone())
            .unwrap_or(Value::Null);
        status["detail"]
            .as_str()
            .is_some_and(|d| d.contains(needle))
            .then_some(status)
    })
    .await
    .unwrap_or_else(|e| panic!("no status mentioning {needle:?}: {e:#}"))
}

fn assert_token_never_sent(heard: &Mutex<Heard>) {
    for text in &heard.lock().unwrap().texts {
        assert!(
            !text.contains(TEST_TOKEN),
            "the token reached the impostor: {text}"
        );
        let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        assert!(value.get("token").is_none(), "{text}");
    }
}

#[tokio::test]
async fn a_server_that_cannot_prove_the_token_gets_no_token_and_no_obedience() {
    let (port, heard) = run_impostor(Impostor::GuessingServer).await;
    let chromium = Chromium::launch_built_extension()
        .await
        .expect("Chromium with the built extension");
    configure(&chromium, port).await;
    let status = status_with(
        &chromium,
        "could not prove it knows the token",
        Duration::from_secs(10),
    )
    .await;
    assert_ne!(status["state"], "connected", "{status}");
    assert!(
        status["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("port {port}")),
        "{status}"
    );
    // It keeps trying, with backoff, and never hands anything over.
    eventually(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async { (heard.lock().unwrap().connections >= 2).then_some(()) },
    )
    .await
    .expect("the extension retries");
    assert_token_never_sent(&heard);
    let texts = heard.lock().unwrap().texts.clone();
    assert!(
        texts.iter().all(|t| t.contains("\"HELLO\"")),
        "only HELLOs were sent, the EXECUTE was not answered: {texts:?}"
    );
}

#[tokio::test]
async fn a_listener_that_waits_for_the_extension_to_speak_hears_nothing() {
    let (port, heard) = run_impostor(Impostor::SilentListener).await;
    let chromium = Chromium::launch_built_extension()
        .await
        .expect("Chromium with the built extension");
    configure(&chromium, port).await;
    let status = status_with(
        &chromium,
        "did not start the domshell handshake",
        Duration::from_secs(15),
    )
    .await;
    assert!(
        status["detail"]
            .as_str()
            .unwrap()
            .contains("older domshell server"),
        "{status}"
    );
    assert!(heard.lock().unwrap().connections >= 1);
    assert!(
        heard.lock().unwrap().texts.is_empty(),
        "the extension spoke first: {:?}",
        heard.lock().unwrap().texts
    );
}
