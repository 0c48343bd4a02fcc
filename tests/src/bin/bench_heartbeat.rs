//! `cargo xtask bench-heartbeat [--trials N]`: heartbeat figures measured with the real server,
//! the fault proxy, and for the extension's side real headless Chromium running the built
//! extension.
//!
//! Per trial the proxy turns the live link into a zombie (TCP open, nothing forwarded) with
//! requests in flight, and the benchmark records
//! - server detection, against the fake extension: blackhole → the in-flight requests are
//!   answered with an error;
//! - extension recovery, against Chromium: blackhole → a fresh WELCOME and a successful round
//!   trip;
//! - unanswered requests: in-flight requests that never got any answer (must be 0).
//!
//! It prints figures; it asserts nothing about speed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use domshell_tests::{
    eventually, workspace_root, Chromium, Direction, FakeExtension, FakeOptions, FaultProxy,
    ServerOptions, ServerProcess, TEST_TOKEN,
};
use serde_json::json;
use shared_protocol::EXTENSION_ID;

const PING_MS: u64 = 500;
const SILENCE_MS: u64 = 2_000;
const ALARM_MS: u64 = 1_000;
const IN_FLIGHT: usize = 3;

struct Trial {
    detection: Duration,
    recovery: Option<Duration>,
    unanswered: usize,
    errors: usize,
}

fn options() -> ServerOptions {
    ServerOptions {
        ping_interval_ms: PING_MS,
        silence_limit_ms: SILENCE_MS,
        connect_grace_ms: Some(3_000),
        ..Default::default()
    }
}

/// Fire requests that will be stuck behind the blackhole; return when all are answered (or the
/// bound passes) with the time of the first answer.
async fn in_flight(
    server: &Arc<ServerProcess>,
    command: &str,
) -> Vec<tokio::task::JoinHandle<Option<(Instant, u16)>>> {
    (0..IN_FLIGHT)
        .map(|_| {
            let server = server.clone();
            let command = command.to_string();
            tokio::spawn(async move {
                let answer = tokio::time::timeout(
                    Duration::from_millis(SILENCE_MS + 10_000),
                    server.execute(&command, Some(30_000)),
                )
                .await;
                match answer {
                    Ok(Ok((status, _))) => Some((Instant::now(), status)),
                    _ => None,
                }
            })
        })
        .collect()
}

async fn collect(
    calls: Vec<tokio::task::JoinHandle<Option<(Instant, u16)>>>,
    cut_at: Instant,
) -> (Option<Duration>, usize, usize) {
    let mut first: Option<Duration> = None;
    let (mut unanswered, mut errors) = (0, 0);
    for call in calls {
        match call.await.ok().flatten() {
            Some((at, status)) => {
                if status != 200 {
                    errors += 1;
                    let d = at.saturating_duration_since(cut_at);
                    first = Some(first.map_or(d, |f| f.min(d)));
                }
            }
            None => unanswered += 1,
        }
    }
    (first, unanswered, errors)
}

/// Server detection against the fake extension (no reconnect can interfere).
async fn server_trial() -> Result<Trial> {
    let server = Arc::new(ServerProcess::start(options()).await?);
    let proxy = FaultProxy::start(server.bridge_addr()).await?;
    let fake = FakeExtension::connect(
        &format!("ws://{}/bridge", proxy.addr()),
        FakeOptions::default(),
    )
    .await?;
    fake.set_answer_executes(false);
    server
        .wait_for_link_state("connected", Duration::from_secs(5))
        .await?;
    // Let a few heartbeats pass so the cut lands at a random phase of the ping cycle.
    tokio::time::sleep(Duration::from_millis(700 + rand_ms(PING_MS))).await;
    let calls = in_flight(&server, "sleep 60000").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cut_at = Instant::now();
    proxy.blackhole_existing(Direction::Both);
    let (first, unanswered, errors) = collect(calls, cut_at).await;
    Ok(Trial {
        detection: first.context("no request was answered with an error")?,
        recovery: None,
        unanswered,
        errors,
    })
}

/// Extension recovery with real Chromium.
async fn browser_trial(
    server: &Arc<ServerProcess>,
    proxy: &FaultProxy,
    chromium: &Chromium,
) -> Result<Trial> {
    let before = server
        .wait_for_link_state("connected", Duration::from_secs(15))
        .await?;
    let base = before["link"]["reconnect_count"].as_u64().unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(300 + rand_ms(PING_MS))).await;
    let cut_at = Instant::now();
    proxy.blackhole_existing(Direction::Both);
    // Commands sent into the zombie link: each must be answered (an error, or a success after
    // the link is replaced) — never left hanging.
    let calls = in_flight(server, "pwd").await;
    server
        .wait_for_health(
            |h| {
                h["link"]["state"] == "connected"
                    && h["link"]["reconnect_count"].as_u64().unwrap_or(0) > base
            },
            Duration::from_secs(20),
        )
        .await?;
    let (status, body) = server.execute("pwd", Some(5_000)).await?;
    if status != 200 || body["output"] != "~" {
        bail!("round trip after recovery failed: {status} {body}");
    }
    let recovery = cut_at.elapsed();
    let (first, unanswered, errors) = collect(calls, cut_at).await;
    let _ = chromium;
    Ok(Trial {
        detection: first.unwrap_or_default(),
        recovery: Some(recovery),
        unanswered,
        errors,
    })
}

fn rand_ms(max: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    nanos % max.max(1)
}

fn summary(label: &str, mut values: Vec<Duration>) {
    if values.is_empty() {
        return;
    }
    values.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p50 = values[values.len() / 2];
    let mean = values.iter().map(|d| ms(*d)).sum::<f64>() / values.len() as f64;
    println!(
        "{label:<34} n={:<3} min {:>7.0} ms  p50 {:>7.0} ms  mean {:>7.0} ms  max {:>7.0} ms",
        values.len(),
        ms(values[0]),
        ms(p50),
        mean,
        ms(values[values.len() - 1])
    );
}

fn gzip_len(path: &std::path::Path) -> Option<u64> {
    let out = std::process::Command::new("gzip")
        .arg("-9c")
        .arg(path)
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout.len() as u64)
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut trials = 10usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--trials" => {
                trials = args
                    .next()
                    .context("--trials needs a number")?
                    .parse()
                    .context("--trials")?
            }
            other => bail!("unknown argument {other}; usage: bench-heartbeat [--trials N]"),
        }
    }
    println!(
        "heartbeat benchmark: ping {PING_MS} ms, silence limit {SILENCE_MS} ms, alarm {ALARM_MS} ms, {trials} trials each, {IN_FLIGHT} requests in flight per trial"
    );
    println!(
        "targets: server detection ≤ silence + 1 s = {} ms; extension recovery ≤ silence + alarm + 2 s = {} ms; unanswered = 0",
        SILENCE_MS + 1_000,
        SILENCE_MS + ALARM_MS + 2_000
    );

    let mut detection = Vec::new();
    let mut unanswered = 0;
    let mut answered_errors = 0;
    for i in 0..trials {
        let t = server_trial()
            .await
            .with_context(|| format!("server trial {i}"))?;
        detection.push(t.detection);
        unanswered += t.unanswered;
        answered_errors += t.errors;
    }

    let server = Arc::new(ServerProcess::start(options()).await?);
    let proxy = FaultProxy::start(server.bridge_addr()).await?;
    let chromium = Chromium::launch(&workspace_root()).await?;
    chromium
        .wait_for_service_worker(EXTENSION_ID, Duration::from_secs(20))
        .await?;
    let settings = json!({
        "bridge_token": TEST_TOKEN,
        "bridge_port": proxy.addr().port(),
        "bridge_alarm_period_ms": ALARM_MS,
    });
    eventually(Duration::from_secs(15), Duration::from_millis(100), || {
        chromium.set_storage(settings.clone())
    })
    .await?;
    let mut recovery = Vec::new();
    let mut browser_unanswered = 0;
    for i in 0..trials {
        let t = browser_trial(&server, &proxy, &chromium)
            .await
            .with_context(|| format!("browser trial {i}"))?;
        recovery.push(t.recovery.unwrap_or_default());
        browser_unanswered += t.unanswered;
    }

    println!();
    summary("server detection (fake extension)", detection);
    summary("extension recovery (Chromium)", recovery);
    println!(
        "requests in flight on a dead link: {} answered with an error, {} unanswered (server trials); {} unanswered (Chromium trials)",
        answered_errors, unanswered, browser_unanswered
    );
    let wasm = workspace_root().join("extension/pkg/domshell_extension_bg.wasm");
    let raw = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    println!(
        "extension .wasm: {} bytes raw, {} bytes gzipped",
        raw,
        gzip_len(&wasm).map_or("?".into(), |n| n.to_string())
    );
    if unanswered + browser_unanswered > 0 {
        bail!(
            "{} requests were never answered",
            unanswered + browser_unanswered
        );
    }
    Ok(())
}
