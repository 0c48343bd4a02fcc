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

use anyhow::Result;
use domshell_tests::{bench, PageRig};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<()> {
    let trials = bench::trials_from_args(10)?;
    let rig = PageRig::start_with_args(20_000, &[]).await;
    let url = format!("{}/lane.html", rig.base);
    let (mut mint, mut first, mut join, mut shared, mut close) =
        (vec![], vec![], vec![], vec![], vec![]);
    for trial in 0..trials {
        let owner = format!("bench-owner-{trial}");
        let (ms, reply) = bench::timed(
            &rig,
            json!({"session": owner, "command": "pwd", "group_id": "new", "initial_url": url}),
        )
        .await?;
        mint.push(ms);
        let lane = reply["lane"].as_str().unwrap_or_default().to_string();
        first.push(
            bench::timed(&rig, json!({"session": owner, "command": "ls"}))
                .await?
                .0,
        );
        let guest = format!("bench-guest-{trial}");
        join.push(
            bench::timed(
                &rig,
                json!({"session": guest, "command": "pwd", "group_id": lane}),
            )
            .await?
            .0,
        );
        shared.push(
            bench::timed(&rig, json!({"session": "bench-user", "command": "tabs"}))
                .await?
                .0,
        );
        close.push(
            bench::timed(&rig, json!({"session": owner, "command": "group close"}))
                .await?
                .0,
        );
    }
    println!("lanes: {trials} trials, headless Chromium, loopback page\n");
    bench::summary("mint (group_id new + page)", mint);
    bench::summary("first command in the lane", first);
    bench::summary("join (group_id <lane>)", join);
    bench::summary("tabs in the user's tabs", shared);
    bench::summary("group close", close);
    Ok(())
}
