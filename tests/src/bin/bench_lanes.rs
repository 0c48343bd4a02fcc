//! `cargo xtask bench-lanes [--trials N]`: what a lane costs, measured with the real server
//! and headless Chromium running the built extension, on the fixture page `lane.html`
//! served on 127.0.0.1.
//!
//! Per trial, through the server's debug route (the same pipeline as `domshell_execute`):
//! - mint: `group_id: "new"` with `initial_url` and the command `pwd` (a background tab
//!   opened, grouped, titled, loaded and entered, then the line);
//! - first command: `ls` in the new lane (the page's tree read for the first time);
//! - join: another session's `pwd` with `group_id` set to the lane;
//! - a command in the user's tabs beside it (`tabs`), for comparison;
//! - close: `group close`.
//!
//! It prints figures; it asserts nothing about speed.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use domshell_tests::PageRig;
use serde_json::{json, Value};

async fn timed(rig: &PageRig, body: Value) -> Result<(f64, Value)> {
    let started = Instant::now();
    let (status, reply) = rig.server.execute_body(body).await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status != 200 || reply["ok"] != true {
        bail!("the benchmark's call failed ({status}): {reply}");
    }
    Ok((ms, reply))
}

fn summary(name: &str, mut values: Vec<f64>) {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    println!(
        "{name:<28} median {median:>7.1} ms   min {:>7.1}   max {:>7.1}   ({} trials)",
        values[0],
        values[values.len() - 1],
        values.len()
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let trials: usize = match args.iter().position(|a| a == "--trials") {
        Some(i) => args
            .get(i + 1)
            .context("--trials needs a number")?
            .parse()
            .context("--trials needs a number")?,
        None => 10,
    };
    if trials == 0 {
        bail!("--trials must be at least 1");
    }
    let rig = PageRig::start_with_args(20_000, &[]).await;
    let url = format!("{}/lane.html", rig.base);
    let (mut mint, mut first, mut join, mut shared, mut close) =
        (vec![], vec![], vec![], vec![], vec![]);
    for trial in 0..trials {
        let owner = format!("bench-owner-{trial}");
        let (ms, reply) = timed(
            &rig,
            json!({"session": owner, "command": "pwd", "group_id": "new", "initial_url": url}),
        )
        .await?;
        mint.push(ms);
        let lane = reply["lane"].as_str().unwrap_or_default().to_string();
        first.push(
            timed(&rig, json!({"session": owner, "command": "ls"}))
                .await?
                .0,
        );
        let guest = format!("bench-guest-{trial}");
        join.push(
            timed(
                &rig,
                json!({"session": guest, "command": "pwd", "group_id": lane}),
            )
            .await?
            .0,
        );
        shared.push(
            timed(&rig, json!({"session": "bench-user", "command": "tabs"}))
                .await?
                .0,
        );
        close.push(
            timed(&rig, json!({"session": owner, "command": "group close"}))
                .await?
                .0,
        );
    }
    println!("lanes: {trials} trials, headless Chromium, loopback page\n");
    summary("mint (group_id new + page)", mint);
    summary("first command in the lane", first);
    summary("join (group_id <lane>)", join);
    summary("tabs in the user's tabs", shared);
    summary("group close", close);
    Ok(())
}
