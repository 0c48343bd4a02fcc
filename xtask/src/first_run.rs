//! The first-run check of `cargo xtask test`: the README's build, `cargo xtask dist`, run as a
//! child exactly as a person whose cargo builds outside the checkout runs it — with
//! `CARGO_TARGET_DIR` set to a fresh directory elsewhere — before the suite starts.
//!
//! It owns that directory for the length of the suite (removed when [`FirstRun`] is dropped)
//! and hands it to the tests (`DOMSHELL_TEST_FIRST_RUN_TARGET`): `first_run_chromium.rs` runs
//! the server built there with the extension loaded from the repository root, and
//! `xtask_run_signals.rs` runs `cargo xtask run` against it, so neither test has to build
//! anything while the suite runs. The `extension/pkg/` it generates in the checkout is the one
//! the suite's browser tests load. It must not build into the suite's own target directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::paths::{cargo_program, root};

/// The env var naming the first-run target directory for the tests.
pub const TARGET_ENV: &str = "DOMSHELL_TEST_FIRST_RUN_TARGET";

/// A target directory `cargo xtask dist` has built into; removed on drop.
pub struct FirstRun {
    dir: tempfile::TempDir,
}

impl FirstRun {
    pub fn target_dir(&self) -> &Path {
        self.dir.path()
    }
}

/// `CARGO_TARGET_DIR=<fresh dir> cargo xtask dist`, its output passed through; checks that it
/// built the server in that directory and said so.
pub fn build() -> Result<FirstRun> {
    let dir = tempfile::Builder::new()
        .prefix("domshell-first-run-")
        .tempdir()
        .context("creating a fresh target directory for the first-run check")?;
    if dir.path().starts_with(root()) {
        bail!(
            "the temporary directory {} is inside the checkout; point TMPDIR elsewhere so the first-run check builds outside it",
            dir.path().display()
        );
    }
    eprintln!(
        "xtask: first run: CARGO_TARGET_DIR={} cargo xtask dist",
        dir.path().display()
    );
    let started = Instant::now();
    let mut child = Command::new(cargo_program())
        .args(["xtask", "dist"])
        .current_dir(root())
        .env("CARGO_TARGET_DIR", dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting `cargo xtask dist` for the first-run check")?;
    let mut said = String::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.context("reading the output of `cargo xtask dist`")?;
            eprintln!("{line}");
            said.push_str(&line);
            said.push('\n');
        }
    }
    let status = child
        .wait()
        .context("waiting for `cargo xtask dist` (first run)")?;
    if !status.success() {
        bail!(
            "`cargo xtask dist` with CARGO_TARGET_DIR={} failed ({status}): see its output above",
            dir.path().display()
        );
    }
    let server = dir.path().join("release").join(crate::EXE);
    if !server.is_file() {
        bail!(
            "`cargo xtask dist` with CARGO_TARGET_DIR={} succeeded but built no {}",
            dir.path().display(),
            server.display()
        );
    }
    if !said.contains(&server.display().to_string()) {
        bail!(
            "`cargo xtask dist` did not name the server it built ({}); it said:\n{said}",
            server.display()
        );
    }
    eprintln!(
        "xtask: first run built in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(FirstRun { dir })
}
