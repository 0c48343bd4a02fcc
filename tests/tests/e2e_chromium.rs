//! End to end: headless Chromium loads the built extension from the repository root and
//! connects to the real server, directly or through the fault proxy. Timings are short (ping
//! 500 ms, silence 2 s, alarm 1 s) so the heartbeat scenarios run in seconds.
//!
//! These tests need Chromium and the built extension (`cargo xtask test` builds it); when
//! either is missing they fail with the command that fixes it.

use std::time::{Duration, Instant};

use domshell_tests::{
    eventually, Chromium, Direction, FaultProxy, ServerOptions, ServerProcess, TEST_TOKEN,
};
use serde_json::{json, Value};
use shared_protocol::EXTENSION_ID;

const PING_MS: u64 = 500;
const SILENCE_MS: u64 = 2_000;
const ALARM_MS: u64 = 1_000;

fn server_options() -> ServerOptions {
    ServerOptions {
        ping_interval_ms: PING_MS,
        silence_limit_ms: SILENCE_MS,
        connect_grace_ms: Some(3_000),
        ..Default::default()
    }
}

/// Chromium with the built extension, configured to dial `port`, once the server sees it.
async fn connect_browser(server: &ServerProcess, port: u16) -> Chromium {
    let chromium = Chromium::launch_built_extension()
        .await
        .expect("Chromium with the built extension");
    configure(&chromium, port, TEST_TOKEN).await;
    server
        .wait_for_link_state("connected", Duration::from_secs(10))
        .await
        .expect("the extension connects");
    chromium
}

async fn configure(chromium: &Chromium, port: u16, token: &str) {
    let settings = json!({
        "bridge_enabled": true,
        "bridge_token": token,
        "bridge_port": port,
        "bridge_alarm_period_ms": ALARM_MS,
    });
    eventually(Duration::from_secs(5), Duration::from_millis(100), || {
        chromium.set_storage(settings.clone())
    })
    .await
    .expect("settings stored");
}

async fn extension_status(chromium: &Chromium) -> Value {
    chromium
        .get_storage()
        .await
        .map(|s| s["bridge_status"].clone())
        .unwrap_or(Value::Null)
}

async fn assert_round_trip(server: &ServerProcess) {
    let (status, body) = server
        .execute("pwd", Some(5_000))
        .await
        .expect("request answered");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(body["output"], "~", "{body}");
}

fn reconnects(health: &Value) -> u64 {
    health["link"]["reconnect_count"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn the_extension_connects_and_serves_requests() {
    let server = ServerProcess::start(server_options()).await.unwrap();
    let chromium = Chromium::launch_built_extension()
        .await
        .expect("Chromium with the built extension");
    configure(&chromium, server.port(), TEST_TOKEN).await;
    let health = server
        .wait_for_link_state("connected", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        health["link"]["extension_version"],
        env!("CARGO_PKG_VERSION")
    );
    assert_round_trip(&server).await;
    let (status, body) = server.execute("tabs", Some(5_000)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body["output"].as_str().unwrap().contains("about:blank"),
        "{body}"
    );
    // The heartbeat runs and the extension records what it heard, for the options page.
    let status = eventually(
        Duration::from_secs(5),
        Duration::from_millis(100),
        || async {
            let s = extension_status(&chromium).await;
            (s["state"] == "connected" && s["last_rtt_ms"].is_u64()).then_some(s)
        },
    )
    .await
    .unwrap();
    assert_eq!(status["port"], server.port());
}

#[tokio::test]
async fn a_zombie_link_is_abandoned_and_replaced_within_the_target() {
    let server = ServerProcess::start(server_options()).await.unwrap();
    let proxy = FaultProxy::start(server.bridge_addr()).await.unwrap();
    let chromium = connect_browser(&server, proxy.addr().port()).await;
    assert_round_trip(&server).await;
    assert_eq!(proxy.connections_accepted(), 1);

    // TCP stays open, nothing is forwarded: the extension must notice on its own.
    let cut_at = Instant::now();
    proxy.blackhole_existing(Direction::Both);
    let target = Duration::from_millis(SILENCE_MS + ALARM_MS + 2_000);
    server
        .wait_for_health(
            |h| h["link"]["state"] == "connected" && reconnects(h) >= 1,
            target + Duration::from_secs(5),
        )
        .await
        .expect("a fresh connection is welcomed");
    assert_round_trip(&server).await;
    let recovered = cut_at.elapsed();
    assert!(
        recovered <= target,
        "recovered after {recovered:?}; target silence + alarm + 2 s = {target:?}"
    );
    assert_eq!(proxy.connections_accepted(), 2, "exactly one new dial");
    let status = extension_status(&chromium).await;
    assert_eq!(status["reconnects"], 1, "{status}");
}

#[tokio::test]
async fn the_extension_returns_after_the_server_is_killed_and_restarted() {
    let mut server = ServerProcess::start(server_options()).await.unwrap();
    let port = server.port();
    let chromium = connect_browser(&server, port).await;
    server.kill().unwrap();
    // The extension sees the socket close and starts redialing into a closed port.
    eventually(
        Duration::from_secs(5),
        Duration::from_millis(100),
        || async {
            let s = extension_status(&chromium).await;
            (s["state"] == "reconnecting" || s["state"] == "connecting").then_some(())
        },
    )
    .await
    .expect("the extension notices the server is gone");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let restarted_at = Instant::now();
    let server = ServerProcess::start_on_port(port, server_options())
        .await
        .unwrap();
    server
        .wait_for_link_state("connected", Duration::from_secs(10))
        .await
        .expect("the extension reconnects to the restarted server");
    assert_round_trip(&server).await;
    let back = restarted_at.elapsed();
    // Failed dials back off to at most 5 s.
    assert!(back <= Duration::from_secs(6), "back after {back:?}");
}

#[tokio::test]
async fn a_stopped_service_worker_is_woken_by_its_alarm_and_reconnects() {
    let server = ServerProcess::start(server_options()).await.unwrap();
    let chromium = connect_browser(&server, server.port()).await;

    let stopped_at = Instant::now();
    chromium.stop_service_worker().await.unwrap();
    let health = server
        .wait_for_link_state("waiting", Duration::from_secs(SILENCE_MS / 1000 + 3))
        .await
        .expect("the server sees the worker's socket go");
    assert!(reconnects(&health) == 0);
    server
        .wait_for_health(
            |h| h["link"]["state"] == "connected" && reconnects(h) >= 1,
            Duration::from_secs(15),
        )
        .await
        .expect("the alarm wakes the worker and it reconnects");
    assert!(chromium.service_worker_running().await.unwrap());
    assert_round_trip(&server).await;
    eprintln!(
        "worker stop → working link again: {:?}",
        stopped_at.elapsed()
    );
}

#[tokio::test]
async fn a_wrong_token_stops_dialing_until_the_settings_change() {
    let server = ServerProcess::start(server_options()).await.unwrap();
    let proxy = FaultProxy::start(server.bridge_addr()).await.unwrap();
    let chromium = Chromium::launch_built_extension()
        .await
        .expect("Chromium with the built extension");
    configure(&chromium, proxy.addr().port(), "wrong-token").await;
    let status = eventually(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || async {
            // Before the settings land, the worker is "unauthorized" for want of any token;
            // wait for the server's refusal.
            let s = extension_status(&chromium).await;
            (s["state"] == "unauthorized" && s["detail"].as_str().unwrap_or("").contains("refused"))
                .then_some(s)
        },
    )
    .await
    .expect("the extension reports the refusal");
    assert!(
        status["detail"]
            .as_str()
            .unwrap()
            .contains("domshell token"),
        "{status}"
    );
    let dials = proxy.connections_accepted();
    assert_eq!(dials, 1, "one dial, refused");
    // Several alarm periods pass: no hammering.
    tokio::time::sleep(Duration::from_millis(ALARM_MS * 3)).await;
    assert_eq!(proxy.connections_accepted(), dials, "no redial after 4001");
    assert_eq!(server.health().await.unwrap()["link"]["state"], "waiting");

    // A restarted worker remembers the refusal: it does not try the same token again.
    chromium.stop_service_worker().await.unwrap();
    eventually(
        Duration::from_secs(15),
        Duration::from_millis(100),
        || async {
            let ready = chromium
                .evaluate_in_worker("globalThis.domshell && globalThis.domshell.ready")
                .await
                .map_err(|e| e.to_string())?;
            (ready == json!(true))
                .then_some(())
                .ok_or_else(|| "not booted yet".to_string())
        },
    )
    .await
    .expect("the alarm wakes the worker again");
    tokio::time::sleep(Duration::from_millis(ALARM_MS * 3)).await;
    assert_eq!(
        proxy.connections_accepted(),
        dials,
        "no dial with the refused token after a worker restart"
    );
    assert_eq!(extension_status(&chromium).await["state"], "unauthorized");

    configure(&chromium, proxy.addr().port(), TEST_TOKEN).await;
    server
        .wait_for_link_state("connected", Duration::from_secs(10))
        .await
        .expect("a corrected token connects at once");
    assert_round_trip(&server).await;
}

#[tokio::test]
async fn disabling_the_bridge_disconnects_and_enabling_reconnects() {
    let server = ServerProcess::start(server_options()).await.unwrap();
    let chromium = connect_browser(&server, server.port()).await;
    chromium
        .set_storage(json!({ "bridge_enabled": false }))
        .await
        .unwrap();
    server
        .wait_for_link_state("waiting", Duration::from_secs(5))
        .await
        .expect("disabling closes the socket");
    eventually(
        Duration::from_secs(5),
        Duration::from_millis(100),
        || async { (extension_status(&chromium).await["state"] == "disabled").then_some(()) },
    )
    .await
    .unwrap();
    chromium
        .set_storage(json!({ "bridge_enabled": true }))
        .await
        .unwrap();
    server
        .wait_for_link_state("connected", Duration::from_secs(5))
        .await
        .expect("enabling reconnects without a reload");
}

#[tokio::test]
async fn the_options_page_shows_the_live_link_state() {
    let server = ServerProcess::start(server_options()).await.unwrap();
    let chromium = connect_browser(&server, server.port()).await;
    let page = chromium
        .open_page(&format!(
            "chrome-extension://{EXTENSION_ID}/extension/static/options.html"
        ))
        .await
        .unwrap();
    let read = "[document.getElementById('state').textContent, document.getElementById('figures').textContent, document.getElementById('token').value, document.getElementById('port').value]";
    let shown = eventually(
        Duration::from_secs(5),
        Duration::from_millis(100),
        || async {
            let v = domshell_tests::chromium::evaluate_in_target(&page, read).await?;
            if v[0] == "Connected" && v[1].as_str().unwrap_or("").contains("last heard") {
                Ok(v)
            } else {
                anyhow::bail!("page shows {v}")
            }
        },
    )
    .await
    .expect("the options page shows the connection");
    assert_eq!(shown[2], TEST_TOKEN);
    assert_eq!(shown[3], server.port().to_string());

    // The page follows the link live: stopping the server turns it away from "Connected".
    drop(server);
    eventually(
        Duration::from_secs(5),
        Duration::from_millis(100),
        || async {
            let v = domshell_tests::chromium::evaluate_in_target(&page, read).await?;
            if v[0] != "Connected" {
                Ok(())
            } else {
                anyhow::bail!("still shows {v}")
            }
        },
    )
    .await
    .expect("the options page shows the link going down");
}
