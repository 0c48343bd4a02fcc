//! Where the checkout and its builds are: the workspace root, and the directory cargo builds
//! into, asked of cargo (`cargo metadata`), never assumed — `CARGO_TARGET_DIR` and
//! `build.target-dir` in a cargo config move it out of the checkout.
//!
//! It owns those two answers (the target directory is asked once per process and cached). It
//! must not build anything: binaries a test runs are built before the suite starts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context};

/// The Cargo workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cargo that runs the tests (`$CARGO`), else `cargo` from `PATH`.
pub fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "cargo".into())
}

/// The directory cargo builds this workspace into, as `cargo metadata` reports it.
pub fn target_dir() -> anyhow::Result<&'static Path> {
    static TARGET: OnceLock<PathBuf> = OnceLock::new();
    if let Some(dir) = TARGET.get() {
        return Ok(dir);
    }
    let out = Command::new(cargo_program())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(workspace_root())
        .output()
        .context("starting `cargo metadata` to find the target directory")?;
    if !out.status.success() {
        bail!(
            "`cargo metadata --format-version 1 --no-deps` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let dir = target_directory(&out.stdout)?;
    Ok(TARGET.get_or_init(|| dir))
}

/// `target_directory` of `cargo metadata`'s JSON.
pub fn target_directory(metadata: &[u8]) -> anyhow::Result<PathBuf> {
    let doc: serde_json::Value =
        serde_json::from_slice(metadata).context("parsing the output of `cargo metadata`")?;
    match doc["target_directory"].as_str() {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => bail!("`cargo metadata` reported no target_directory"),
    }
}

/// The variable through which `cargo xtask test` hands over the target directory it built
/// into with a fresh `CARGO_TARGET_DIR` (the first-run check).
pub const FIRST_RUN_TARGET_ENV: &str = "DOMSHELL_TEST_FIRST_RUN_TARGET";

/// The target directory of the first-run build; panics (a test helper) with what to run when
/// the suite was not started by `cargo xtask test`.
pub fn first_run_target() -> PathBuf {
    let dir = std::env::var_os(FIRST_RUN_TARGET_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "{FIRST_RUN_TARGET_ENV} is not set: run the suite with `cargo xtask test` (it runs `cargo xtask dist` with CARGO_TARGET_DIR set to a fresh directory first), or set it to a directory where `CARGO_TARGET_DIR=<dir> cargo xtask dist` has run"
            )
        });
    assert!(
        dir.is_dir(),
        "{FIRST_RUN_TARGET_ENV}={} does not exist",
        dir.display()
    );
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("shared-protocol").is_dir());
    }

    #[test]
    fn the_target_directory_is_cargos_answer() {
        let json = br#"{"packages":[],"target_directory":"/elsewhere/t","version":1}"#;
        assert_eq!(target_directory(json).unwrap(), Path::new("/elsewhere/t"));
        assert!(target_directory(br#"{"version":1}"#).is_err());
        let dir = target_dir().unwrap();
        assert!(dir.is_absolute(), "{}", dir.display());
        assert!(std::ptr::eq(dir, target_dir().unwrap()));
    }
}
