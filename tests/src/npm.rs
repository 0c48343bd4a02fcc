//! npm packages the benchmarks compare against, installed the way a user gets them: `npm
//! install <package>@<version>` into a directory of their own, without install scripts.
//!
//! It owns nothing past the call. It must not reach anything but the npm registry.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::bounded;

/// A cold install of a server and its dependencies takes seconds; this is far above.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// `program` as found on `PATH`.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// `npm install <spec>` into `prefix` (no install scripts: none of the packages needs one,
/// and the benchmarks reach nothing but the registry); how long it took.
pub async fn install(npm: &Path, prefix: &Path, spec: &str) -> Result<Duration> {
    let mut cmd = tokio::process::Command::new(npm);
    cmd.args([
        "install",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--loglevel=error",
        "--prefix",
    ])
    .arg(prefix)
    .arg(spec)
    .current_dir(prefix);
    let started = Instant::now();
    let out = bounded::run(cmd, None, INSTALL_TIMEOUT, "npm install").await?;
    if !out.status.success() {
        bail!(
            "{}\nhint: npm needs to reach the npm registry",
            bounded::describe_failure(&format!("npm install {spec}"), &out)
        );
    }
    Ok(started.elapsed())
}
