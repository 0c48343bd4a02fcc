//! The shell kernel end to end: headless Chromium runs the built extension, fixture pages
//! are served on 127.0.0.1, and commands arrive through the real server — from the Python
//! MCP SDK over stdio (as Claude Desktop sends them) and through `/debug/execute` where a
//! test needs to read one answer before writing the next command.
//!
//! Covered: tabs, windows, here, open, navigate, back, forward, refresh, close,
//! cd ~/tabs/<id>, pipes, history/env/export, a navigation outside the allowlist (refused by
//! the server) and a redirect out of it (refused by the extension), a forbidden scheme, and
//! a session that keeps its place and its tab across a stopped service worker.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use domshell_tests::python::{DriverRun, PythonEnv};
use domshell_tests::server::{ready_bridge_port, server_binary};
use domshell_tests::{eventually, Chromium, ServerOptions, ServerProcess, TEST_TOKEN};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const ALARM_MS: u64 = 1_000;

/// A tiny HTTP server for fixture pages: `/a`, `/b` (titled "Page A", "Page B") and
/// `/redirect?to=<url>` (a 302). Every connection is answered and closed; the task ends
/// with the test's runtime.
async fn fixture_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut len = 0;
                // Headers end with an empty line; requests here have no body.
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
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
                let response = if let Some(to) = path.strip_prefix("/redirect?to=") {
                    format!(
                        "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                } else {
                    let name = match path.as_str() {
                        "/a" => "A",
                        "/b" => "B",
                        _ => "Other",
                    };
                    let body = format!(
                        "<!doctype html><html><head><title>Page {name}</title></head><body><main><h1>Page {name}</h1><a href=\"/b\">to B</a><button>Go</button></main></body></html>"
                    );
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

async fn point_extension_at(chromium: &Chromium, port: u16) {
    let settings = json!({
        "bridge_enabled": true,
        "bridge_token": TEST_TOKEN,
        "bridge_port": port,
        "bridge_alarm_period_ms": ALARM_MS,
    });
    eventually(Duration::from_secs(10), Duration::from_millis(100), || {
        chromium.set_storage(settings.clone())
    })
    .await
    .expect("extension settings stored");
}

/// Runs `steps` (all `domshell_execute` calls, each `[label, command]`) through the Python
/// MCP SDK against a stdio server started with `server_args`, with the extension pointed at
/// it once it listens.
async fn mcp_scenario(
    py: &PythonEnv,
    chromium: &Chromium,
    dir: &Path,
    server_args: &[&str],
    steps: &[(&str, String)],
) -> DriverRun {
    let ready = dir.join("ready.json");
    let mut args = vec![
        "serve".to_string(),
        "--ws-port".into(),
        "0".into(),
        "--token".into(),
        TEST_TOKEN.into(),
        "--connect-grace-ms".into(),
        "15000".into(),
        "--ready-file".into(),
        ready.display().to_string(),
        "--no-audit".into(),
    ];
    args.extend(server_args.iter().map(|s| s.to_string()));
    let mut plan_steps = vec![json!({"op": "initialize"})];
    plan_steps.extend(steps.iter().map(|(label, command)| {
        json!({"op": "call_tool", "name": "domshell_execute", "label": label,
               "arguments": {"command": command}})
    }));
    let plan = json!({
        "transport": {
            "type": "stdio",
            "command": server_binary().unwrap().display().to_string(),
            "args": args,
            "env": {"XDG_CONFIG_HOME": dir.display().to_string()},
        },
        "protocol": "legacy",
        "timeout_ms": 100_000,
        "steps": plan_steps,
    });
    let py = py.clone();
    let driver = tokio::spawn(async move { py.run_driver(&plan, Duration::from_secs(120)).await });
    let port = ready_bridge_port(&ready).await;
    point_extension_at(chromium, port).await;
    let run = driver.await.unwrap().unwrap();
    run.ensure_ok().unwrap();
    // Figures for the record (never asserted): how long each call took end to end.
    for step in run.steps_of("call_tool") {
        eprintln!(
            "{:>10}: {:>7.1} ms",
            step["label"].as_str().unwrap_or("?"),
            step["elapsed_ms"].as_f64().unwrap_or(f64::NAN)
        );
    }
    run
}

/// The text of a step, asserting whether it was an error.
fn text<'a>(run: &'a DriverRun, label: &str, is_error: bool) -> &'a str {
    let step = run.step(label).unwrap_or_else(|| panic!("no step {label}"));
    assert_eq!(step["is_error"], is_error, "{label}: {step}");
    step["text"].as_str().unwrap_or_default()
}

fn tab_id_from(opened: &str) -> i64 {
    opened
        .lines()
        .find_map(|l| l.trim().strip_prefix("✓ Opened new tab "))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("no tab id in {opened:?}"))
}

#[tokio::test]
async fn browser_commands_through_the_python_mcp_client() {
    let py = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("a Python venv with the mcp SDK");
    let chromium = Chromium::launch_built_extension()
        .await
        .expect("Chromium with the built extension (apt-get install -y chromium)");
    let pages = fixture_server().await;
    let base = format!("http://127.0.0.1:{}", pages.port());
    let elsewhere = format!("http://localhost:{}", pages.port());

    // 1. With a domain allowlist: navigation, history of the tab, and both refusals.
    let dir = tempfile::tempdir().unwrap();
    let steps = vec![
        ("tabs", "tabs".to_string()),
        ("open", format!("open {base}/a")),
        ("pwd", "pwd".to_string()),
        ("windows", "windows".to_string()),
        ("navigate", format!("navigate {base}/b")),
        ("back", "back".to_string()),
        ("forward", "forward".to_string()),
        ("refresh", "refresh".to_string()),
        ("outside", format!("open {elsewhere}/a")),
        ("redirect", format!("open {base}/redirect?to={elsewhere}/b")),
        ("after", "pwd\ntabs | grep Page".to_string()),
        ("here", "here".to_string()),
    ];
    let run = mcp_scenario(
        &py,
        &chromium,
        dir.path(),
        &["--allow-write", "--domains", "127.0.0.1"],
        &steps,
    )
    .await;
    assert!(text(&run, "tabs", false).contains("about:blank"));
    let opened = text(&run, "open", false);
    assert!(opened.contains("Title: Page A"), "{opened}");
    assert!(opened.contains(&format!("URL: {base}/a")), "{opened}");
    let id = tab_id_from(opened);
    assert!(text(&run, "pwd", false).starts_with(&format!("~/tabs/{id}")));
    let here = text(&run, "here", false);
    assert!(
        here.starts_with(&format!("Already in tab {id}")) || here.contains("Entered tab"),
        "{here}"
    );
    let windows = text(&run, "windows", false);
    assert!(
        windows.contains("Window ") && windows.contains("Page A"),
        "{windows}"
    );
    let navigated = text(&run, "navigate", false);
    assert!(navigated.starts_with("✓ Navigated"), "{navigated}");
    assert!(navigated.contains("Title: Page B"), "{navigated}");
    assert!(text(&run, "back", false).contains(&format!("URL: {base}/a")));
    assert!(text(&run, "forward", false).contains(&format!("URL: {base}/b")));
    assert!(text(&run, "refresh", false).starts_with(&format!("✓ Refreshed tab {id}")));
    let outside = text(&run, "outside", true);
    assert!(
        outside.contains("outside the domain allowlist"),
        "{outside}"
    );
    let redirect = text(&run, "redirect", true);
    assert!(
        redirect.contains(&format!("ended up at {elsewhere}/b")),
        "the extension checks the final URL: {redirect}"
    );
    let after = text(&run, "after", false);
    assert!(after.contains(&format!("~/tabs/{id}")), "{after}");
    assert_eq!(
        after.matches("Page B").count(),
        1,
        "the redirected tab was closed: {after}"
    );

    // 2. Without an allowlist: the extension's own refusals, shell builtins, pipes, close.
    let dir = tempfile::tempdir().unwrap();
    let steps = vec![
        ("open", format!("open {base}/a")),
        ("internal", "open chrome://settings".to_string()),
        ("scheme", "open file:///etc/passwd".to_string()),
        ("export", "export GREETING=hello".to_string()),
        ("env", "env | grep greeting".to_string()),
        ("history", "history".to_string()),
        ("replay", "!1".to_string()),
        ("head", "tabs | head -n 1".to_string()),
        ("grep", "tabs | grep -n 1 \"page a\"".to_string()),
        ("pagels", "ls -r".to_string()),
        ("pagefind", "find --type link".to_string()),
        ("pagetext", "text".to_string()),
        ("click", "click go".to_string()),
        ("help", "help | grep navigate".to_string()),
        ("cdhelp", "cd --help".to_string()),
        ("close", "close".to_string()),
        ("home", "pwd".to_string()),
    ];
    // `!N` replays what the server cannot see, so it needs every tier.
    let run = mcp_scenario(&py, &chromium, dir.path(), &["--allow-all"], &steps).await;
    let first = tab_id_from(text(&run, "open", false));
    let internal = text(&run, "internal", true);
    assert!(internal.contains("browser-internal page"), "{internal}");
    assert!(text(&run, "scheme", true).contains("only http(s) URLs and about:blank"));
    assert!(text(&run, "export", false).contains("✓ GREETING=hello"));
    assert!(text(&run, "env", false).starts_with("GREETING=hello"));
    let history = text(&run, "history", false);
    assert!(
        history.contains(&format!("   1  open {base}/a")),
        "{history}"
    );
    assert!(history.contains("export GREETING=hello"), "{history}");
    // !1 opens page A again in a new tab.
    let second = tab_id_from(text(&run, "replay", false));
    assert_ne!(first, second);
    let head = text(&run, "head", false);
    // `tabs` has no header line: the first line is a tab, `*<id>  <title>  <url>  win <id>`.
    let first_tab = head.lines().next().unwrap_or_default();
    assert!(
        first_tab
            .trim_start_matches(['*', ' '])
            .starts_with(|c: char| c.is_ascii_digit())
            && first_tab.contains("  win "),
        "{head}"
    );
    let grep = text(&run, "grep", false);
    assert!(
        grep.contains("Page A") && grep.lines().count() <= 2,
        "{grep}"
    );
    let listed = text(&run, "pagels", false);
    assert!(listed.contains("main/"), "{listed}");
    let links = text(&run, "pagefind", false);
    // The name says the label, and the link is on the page's own site: its path is enough.
    assert!(links.contains("to_b_link (link)  href=/b"), "{links}");
    assert!(!links.contains("\"to B\""), "{links}");
    let page_text = text(&run, "pagetext", false);
    assert!(page_text.starts_with("Page A\r\nto B"), "{page_text}");
    let click = text(&run, "click", false);
    assert!(click.starts_with("✓ Clicked: go"), "{click}");
    assert!(text(&run, "help", false).contains("navigate"));
    assert!(text(&run, "cdhelp", false).contains("usage: cd"));
    assert!(text(&run, "close", false).starts_with("✓ Closed: Page A"));
    assert!(text(&run, "home", false).starts_with('~'));
}

#[tokio::test]
async fn a_session_keeps_its_place_across_a_stopped_service_worker() {
    let server = ServerProcess::start(ServerOptions {
        ping_interval_ms: 500,
        silence_limit_ms: 2_000,
        connect_grace_ms: Some(10_000),
        extra_args: vec!["--allow-write".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let chromium = Chromium::launch_built_extension()
        .await
        .expect("Chromium with the built extension");
    point_extension_at(&chromium, server.port()).await;
    server
        .wait_for_link_state("connected", Duration::from_secs(10))
        .await
        .expect("the extension connects");
    let pages = fixture_server().await;
    let base = format!("http://127.0.0.1:{}", pages.port());

    let run = |command: String| {
        let server = &server;
        async move {
            let (status, body) = server.execute(&command, Some(20_000)).await.unwrap();
            assert_eq!(status, 200, "{command}: {body}");
            (
                body["ok"].as_bool().unwrap_or(false),
                body["output"].as_str().unwrap_or_default().to_string(),
            )
        }
    };
    let (ok, opened) = run(format!("open {base}/a")).await;
    assert!(ok, "{opened}");
    let id = tab_id_from(&opened);
    assert_eq!(run("cd ~".into()).await, (true, String::new()));
    let (ok, entered) = run(format!("cd ~/tabs/{id}")).await;
    assert!(ok, "{entered}");
    assert!(
        entered.starts_with(&format!("✓ Entered tab {id}")),
        "{entered}"
    );
    assert!(entered.contains("Title: Page A"), "{entered}");
    run("export STEP=one".into()).await;

    let reconnects = |h: &Value| h["link"]["reconnect_count"].as_u64().unwrap_or(0);
    let stopped_at = std::time::Instant::now();
    chromium.stop_service_worker().await.unwrap();
    server
        .wait_for_health(
            |h| h["link"]["state"] == "connected" && reconnects(h) >= 1,
            Duration::from_secs(20),
        )
        .await
        .expect("the alarm wakes the worker and it reconnects");

    assert_eq!(run("pwd".into()).await, (true, format!("~/tabs/{id}")));
    eprintln!(
        "worker stopped → restored session answering: {:?}",
        stopped_at.elapsed()
    );
    let (ok, env) = run("env | grep STEP".into()).await;
    assert!(ok && env == "STEP=one", "{env}");
    let (ok, history) = run("history".into()).await;
    assert!(
        ok && history.contains(&format!("cd ~/tabs/{id}")),
        "{history}"
    );
    let still_attached = chromium
        .evaluate_in_worker(&format!(
            "chrome.debugger.getTargets().then(ts => ts.filter(t => t.tabId === {id}).map(t => t.attached))"
        ))
        .await
        .unwrap();
    eprintln!("debugger attached to tab {id} after the worker restart: {still_attached}");
    // The restored session still drives its tab: the debugger is attached (again, or
    // still) and history navigation works.
    let (ok, refreshed) = run("refresh".into()).await;
    assert!(ok, "{refreshed}");
    assert!(
        refreshed.starts_with(&format!("✓ Refreshed tab {id}")),
        "{refreshed}"
    );
    let (ok, navigated) = run(format!("navigate {base}/b")).await;
    assert!(ok && navigated.contains("Title: Page B"), "{navigated}");
    let (ok, back) = run("back".into()).await;
    assert!(ok && back.contains(&format!("URL: {base}/a")), "{back}");
}

#[tokio::test]
async fn a_crashed_or_closed_tab_is_reported_once_and_then_recovered() {
    let server = ServerProcess::start(ServerOptions {
        extra_args: vec!["--allow-write".into()],
        connect_grace_ms: Some(5_000),
        ..Default::default()
    })
    .await
    .unwrap();
    let chromium = Chromium::launch_built_extension()
        .await
        .expect("Chromium with the built extension");
    point_extension_at(&chromium, server.port()).await;
    server
        .wait_for_link_state("connected", Duration::from_secs(10))
        .await
        .expect("the extension connects");
    let pages = fixture_server().await;
    let base = format!("http://127.0.0.1:{}", pages.port());
    let run = |command: String| {
        let server = &server;
        async move {
            let (status, body) = server.execute(&command, Some(20_000)).await.unwrap();
            assert_eq!(status, 200, "{command}: {body}");
            (
                body["ok"].as_bool().unwrap_or(false),
                body["output"].as_str().unwrap_or_default().to_string(),
            )
        }
    };
    let page_target = |url: String| {
        let chromium = &chromium;
        async move {
            chromium
                .targets()
                .await
                .unwrap()
                .into_iter()
                .find(|t| t.kind == "page" && t.url == url)
                .unwrap_or_else(|| panic!("no page target at {url}"))
        }
    };

    // The renderer crashes under the attached debugger: Chrome detaches it.
    let (ok, opened) = run(format!("open {base}/a")).await;
    assert!(ok, "{opened}");
    let id = tab_id_from(&opened);
    let target = page_target(format!("{base}/a")).await;
    let mut page = domshell_tests::CdpClient::connect(&target.ws_url)
        .await
        .unwrap();
    page.call_timeout = Duration::from_secs(2);
    // The crash takes the connection with it; no answer is expected.
    let _ = page.send("Page.crash", json!({})).await;
    drop(page);
    let (ok, lost) = eventually(
        Duration::from_secs(5),
        Duration::from_millis(100),
        || async {
            let (ok, out) = run("refresh".into()).await;
            if out.contains("was lost") {
                Ok((ok, out))
            } else {
                Err(format!("not reported yet: {out}"))
            }
        },
    )
    .await
    .expect("the lost debugger is reported");
    assert!(!ok, "{lost}");
    assert!(lost.contains("renderer crashed"), "{lost}");
    // Reported once: the next command reloads the tab, re-attaches and goes on.
    let (ok, refreshed) = run("refresh".into()).await;
    assert!(ok, "{refreshed}");
    assert!(
        refreshed.starts_with(&format!("✓ Refreshed tab {id}")),
        "{refreshed}"
    );
    assert!(refreshed.contains("Title: Page A"), "{refreshed}");
    let (ok, navigated) = run(format!("navigate {base}/b")).await;
    assert!(ok && navigated.contains("Title: Page B"), "{navigated}");
    let (ok, back) = run("back".into()).await;
    assert!(ok && back.contains(&format!("URL: {base}/a")), "{back}");

    // The tab is closed behind the session's back.
    let target = page_target(format!("{base}/a")).await;
    let mut browser = chromium.browser_cdp().await.unwrap();
    browser
        .send("Target.closeTarget", json!({ "targetId": target.id }))
        .await
        .unwrap();
    let (ok, gone) = eventually(
        Duration::from_secs(5),
        Duration::from_millis(100),
        || async {
            let (ok, out) = run("refresh".into()).await;
            if out.contains("no longer exists") {
                Ok((ok, out))
            } else {
                Err(format!("not reported yet: {out}"))
            }
        },
    )
    .await
    .expect("the closed tab is reported");
    assert!(!ok, "{gone}");
    assert_eq!(run("pwd".into()).await, (true, "~".to_string()));
}
