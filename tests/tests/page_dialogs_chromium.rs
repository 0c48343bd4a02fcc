//! JavaScript dialogs end to end: headless Chromium runs the built extension, the fixture
//! page `tests/fixtures/pages/dialogs.html` is served on 127.0.0.1, and commands go through
//! the real server.
//!
//! Covered: a `click` whose handler calls `alert` returns promptly and reports the alert; a
//! page command while the alert is open answers within a second, without running; `dialog`
//! shows it and `dialog accept` lets the page's code go on (the text it writes afterwards is
//! read back); `confirm` accepted and dismissed, `prompt` answered with text and dismissed,
//! each proved by what the page wrote; a `beforeunload` handler reported on `navigate`,
//! `dialog dismiss` keeping the page and `dialog accept` leaving it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use domshell_tests::{eventually, Chromium, ServerOptions, ServerProcess, TEST_TOKEN};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How long a command that meets a dialog may take, at most: it must not wait on the paused
/// page (the glue's own call timeout is 10 s, a load wait 15 s).
const PROMPT_REPLY: Duration = Duration::from_secs(3);
/// How long a command refused because a dialog is open may take.
const REFUSAL_REPLY: Duration = Duration::from_secs(1);

fn pages_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/pages")
}

/// Serves `tests/fixtures/pages/<name>` (query strings ignored), 404 otherwise. Every
/// connection is answered and closed; the task ends with the test's runtime.
async fn fixture_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut len = 0;
                while len < buf.len() {
                    match socket.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let request = String::from_utf8_lossy(&buf[..len]);
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let name = path.split('?').next().unwrap_or("").trim_start_matches('/');
                let file = (!name.contains("..") && !name.is_empty())
                    .then(|| std::fs::read(pages_dir().join(name)).ok())
                    .flatten();
                let response = match file {
                    Some(body) => {
                        let mut head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        head.extend(body);
                        head
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

struct Rig {
    server: ServerProcess,
    // Kept alive for the test; dropping it stops the browser.
    _chromium: Chromium,
    base: String,
}

impl Rig {
    async fn start() -> Rig {
        let server = ServerProcess::start(ServerOptions {
            extra_args: vec!["--allow-all".into(), "--domains".into(), "127.0.0.1".into()],
            connect_grace_ms: Some(10_000),
            ..Default::default()
        })
        .await
        .unwrap();
        let chromium = Chromium::launch_built_extension()
            .await
            .expect("Chromium with the built extension (apt-get install -y chromium; cargo xtask build-extension)");
        let settings = json!({
            "bridge_enabled": true,
            "bridge_token": TEST_TOKEN,
            "bridge_port": server.port(),
            "bridge_alarm_period_ms": 1_000,
        });
        eventually(Duration::from_secs(10), Duration::from_millis(100), || {
            chromium.set_storage(settings.clone())
        })
        .await
        .expect("extension settings stored");
        server
            .wait_for_link_state("connected", Duration::from_secs(10))
            .await
            .expect("the extension connects");
        let pages = fixture_server().await;
        Rig {
            server,
            _chromium: chromium,
            base: format!("http://127.0.0.1:{}", pages.port()),
        }
    }

    /// Runs a command; returns (ok, output, how long it took) and prints it for the record.
    async fn run(&self, command: &str) -> (bool, String, Duration) {
        let started = Instant::now();
        let (status, body) = self.server.execute(command, Some(20_000)).await.unwrap();
        let took = started.elapsed();
        assert_eq!(status, 200, "{command}: {body}");
        let ok = body["ok"].as_bool().unwrap_or(false);
        let output = body["output"].as_str().unwrap_or_default().to_string();
        eprintln!(
            "$ {command}  [{:.0} ms, ok={ok}]\n{}\n",
            took.as_secs_f64() * 1000.0,
            output.chars().take(600).collect::<String>()
        );
        (ok, output, took)
    }

    async fn ok(&self, command: &str) -> String {
        let (ok, out, _) = self.run(command).await;
        assert!(ok, "`{command}` failed: {out}");
        out
    }

    /// A command that meets a dialog: it answers promptly, successfully or not as `ok` says.
    async fn prompt(&self, command: &str, ok: bool) -> String {
        let (was_ok, out, took) = self.run(command).await;
        assert_eq!(was_ok, ok, "`{command}`: {out}");
        assert!(
            took < PROMPT_REPLY,
            "`{command}` took {took:?}, waiting on a paused page: {out}"
        );
        out
    }

    /// The page's status line (`status N: …`), as `text` reads it.
    async fn status(&self) -> String {
        let text = self.ok("text").await;
        text.lines()
            .find(|l| l.starts_with("status "))
            .unwrap_or_else(|| panic!("no status line in {text:?}"))
            .to_string()
    }

    /// Clicks a button of the fixture page whose handler opens a dialog, and checks the
    /// reply names it.
    async fn click_to_open(&self, button: &str, shown: &str) {
        let out = self.prompt(&format!("click {button}"), true).await;
        assert!(out.starts_with("✓ Clicked: "), "{out}");
        assert!(
            out.contains(
                "⚠ The page opened a JavaScript dialog and is paused until it is answered — "
            ) && out.contains(shown),
            "{out}"
        );
    }
}

#[tokio::test]
async fn alert_confirm_and_prompt_are_reported_and_answered() {
    let rig = Rig::start().await;
    rig.ok(&format!("open {}/dialogs.html", rig.base)).await;
    assert_eq!(rig.status().await, "status idle");

    rig.click_to_open("alert_me_btn", "alert: \"hi\"").await;
    // While the alert is open, page commands answer at once and say how to answer it.
    for command in ["text", "ls", "click confirm_me_btn"] {
        let (ok, out, took) = rig.run(command).await;
        assert!(!ok, "{out}");
        assert!(
            took < REFUSAL_REPLY,
            "`{command}` took {took:?} with an alert open"
        );
        assert!(
            out.contains("has a JavaScript dialog open, which pauses the page — alert: \"hi\"")
                && out.contains("`dialog accept`"),
            "{out}"
        );
    }
    let shown = rig.ok("dialog").await;
    assert!(shown.contains("alert: \"hi\""), "{shown}");
    assert_eq!(
        rig.ok("dialog accept").await,
        "✓ Accepted the alert: \"hi\""
    );
    // The handler ran on after `alert` returned.
    assert_eq!(rig.status().await, "status 1: after alert");
    assert_eq!(
        rig.ok("dialog").await.lines().next(),
        Some(format!("No dialog is open on tab {}.", tab_of(&rig.ok("pwd").await)).as_str())
    );

    rig.click_to_open("confirm_me_btn", "confirm: \"Delete it?\"")
        .await;
    rig.ok("dialog accept").await;
    assert_eq!(rig.status().await, "status 2: confirm yes");
    rig.click_to_open("confirm_me_btn", "confirm: \"Delete it?\"")
        .await;
    rig.ok("dialog dismiss").await;
    assert_eq!(rig.status().await, "status 3: confirm no");

    rig.click_to_open(
        "prompt_me_btn",
        "prompt: \"Your name?\" (default text \"anon\")",
    )
    .await;
    rig.ok("dialog accept \"some text\"").await;
    assert_eq!(rig.status().await, "status 4: prompt \"some text\"");
    rig.click_to_open("prompt_me_btn", "prompt: \"Your name?\"")
        .await;
    rig.ok("dialog accept").await;
    assert_eq!(rig.status().await, "status 5: prompt \"anon\"");
    rig.click_to_open("prompt_me_btn", "prompt: \"Your name?\"")
        .await;
    rig.ok("dialog dismiss").await;
    assert_eq!(rig.status().await, "status 6: prompt null");
}

#[tokio::test]
async fn beforeunload_on_navigate_is_reported_and_answered() {
    let rig = Rig::start().await;
    let page = format!("{}/dialogs.html", rig.base);
    let elsewhere = format!("{}/welcome.html?user=ada", rig.base);
    rig.ok(&format!("open {page}")).await;
    // A trusted click: Chromium asks before unloading only a page the user interacted with.
    rig.ok("click guard_leaving_btn").await;
    assert_eq!(rig.status().await, "status 1: guarded");

    let out = rig.prompt(&format!("navigate {elsewhere}"), false).await;
    assert!(
        out.starts_with("navigate: the page asks to confirm leaving it (beforeunload dialog)"),
        "{out}"
    );
    let shown = rig.ok("dialog").await;
    assert!(shown.contains("beforeunload"), "{shown}");
    let stayed = rig.prompt("dialog dismiss", true).await;
    assert!(stayed.ends_with(": staying on the page"), "{stayed}");
    assert_eq!(rig.status().await, "status 1: guarded");
    let tabs = rig.ok("tabs").await;
    assert!(tabs.contains("dialogs.html"), "{tabs}");

    rig.ok("click guard_leaving_btn").await;
    let out = rig.prompt(&format!("navigate {elsewhere}"), false).await;
    assert!(out.contains("beforeunload"), "{out}");
    let left = rig.ok("dialog accept").await;
    assert!(
        left.starts_with("✓ Accepted beforeunload: left the page") && left.contains("welcome.html"),
        "{left}"
    );
    let text = rig.ok("text").await;
    assert!(text.contains("Welcome, ada"), "{text}");
}

/// The tab id in a `pwd` like `~/tabs/123` or `~/tabs/123/main`.
fn tab_of(pwd: &str) -> i64 {
    pwd.trim()
        .strip_prefix("~/tabs/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not in a tab: {pwd:?}"))
}
