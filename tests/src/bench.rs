//! What the lane and workflow benchmarks share: their `--trials N` argument, a timed call
//! through the server's debug route, and the median/min/max line they print.
//!
//! It must not judge the figures: benchmarks print, they assert nothing about speed.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::PageRig;

/// `--trials N` from the command line (`default` without it); at least one.
pub fn trials_from_args(default: usize) -> Result<usize> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let trials: usize = match args.iter().position(|a| a == "--trials") {
        Some(i) => args
            .get(i + 1)
            .context("--trials needs a number")?
            .parse()
            .context("--trials needs a number")?,
        None => default,
    };
    if trials == 0 {
        bail!("--trials must be at least 1");
    }
    Ok(trials)
}

/// One debug-route call (`body` as `/debug/execute` takes it), its time in milliseconds and
/// its reply; a call that did not succeed fails the benchmark.
pub async fn timed(rig: &PageRig, body: Value) -> Result<(f64, Value)> {
    let started = Instant::now();
    let (status, reply) = rig.server.execute_body(body.clone()).await?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status != 200 || reply["ok"] != true {
        bail!("the benchmark's call {body} failed ({status}): {reply}");
    }
    Ok((ms, reply))
}

/// Prints `name`'s median, min and max over `values` (at least one).
pub fn summary(name: &str, mut values: Vec<f64>) {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    println!(
        "{name:<30} median {median:>8.1} ms   min {:>8.1}   max {:>8.1}   ({} trials)",
        values[0],
        values[values.len() - 1],
        values.len()
    );
}
