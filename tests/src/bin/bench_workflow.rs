//! `cargo xtask bench-workflow [--trials N]`: what JavaScript and loops cost, measured with
//! the real server and headless Chromium running the built extension, on fixture pages
//! served on 127.0.0.1, through the server's debug route (the same pipeline as
//! `domshell_execute`).
//!
//! Per trial:
//! - `js` round trip: `js 6 * 7` at the tab's root (the page's main world, one evaluate);
//! - `each` over 20 tabs: `each --pattern bench= pwd` (each tab entered, the command run,
//!   the session back where it was);
//! - a 50-iteration `for`: `for` over the 50 lines a `js` line makes, `echo {}` each.
//!
//! It prints figures; it asserts nothing about speed.

use anyhow::{bail, Result};
use domshell_tests::{bench, PageRig};
use serde_json::{json, Value};

const TABS: usize = 20;
const ITERATIONS: usize = 50;

async fn timed(rig: &PageRig, command: &str) -> Result<(f64, Value)> {
    bench::timed(
        rig,
        json!({"session": "bench", "command": command, "timeout_ms": 60_000}),
    )
    .await
}

#[tokio::main]
async fn main() -> Result<()> {
    let trials = bench::trials_from_args(10)?;
    let rig = PageRig::start_with_args(20_000, &[]).await;
    for n in 0..TABS {
        timed(
            &rig,
            &format!("open {}/welcome.html?user=bench={n}", rig.base),
        )
        .await?;
    }
    // A source of 50 lines (the page makes them): `for` over it runs 50 iterations.
    let looping = format!(
        "for js Array.from({{length: {ITERATIONS}}}, (_, i) => 'l' + i).join('\\n') : echo {{}}"
    );
    let (mut js, mut each, mut each_tabs, mut looped) = (vec![], vec![], vec![], vec![]);
    for _ in 0..trials {
        js.push(timed(&rig, "js 6 * 7").await?.0);
        let (ms, reply) = timed(&rig, "each --pattern bench= pwd").await?;
        each.push(ms);
        each_tabs.push(
            reply["output"]
                .as_str()
                .unwrap_or_default()
                .matches("=== tab ")
                .count(),
        );
        let (ms, reply) = timed(&rig, &looping).await?;
        looped.push(ms);
        let runs = reply["output"]
            .as_str()
            .unwrap_or_default()
            .matches("$ echo ")
            .count();
        if runs != ITERATIONS {
            bail!("the for loop ran {runs} iterations, not {ITERATIONS}: {reply}");
        }
    }
    if each_tabs.iter().any(|n| *n != TABS) {
        bail!("each visited {each_tabs:?} tabs, not {TABS}");
    }
    println!("workflow: {trials} trials, headless Chromium, loopback pages\n");
    bench::summary("js round trip (js 6 * 7)", js);
    bench::summary(&format!("each over {TABS} tabs (pwd)"), each);
    bench::summary(&format!("for, {ITERATIONS} iterations (echo)"), looped);
    Ok(())
}
