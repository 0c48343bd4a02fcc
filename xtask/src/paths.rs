//! Where things are: the checkout, and the directory cargo builds into.
//!
//! The target directory is asked of cargo (`cargo metadata`), never assumed: `CARGO_TARGET_DIR`
//! and `build.target-dir` in any cargo config move it out of the checkout, and every artifact
//! xtask reads or writes under it (binaries, the WebAssembly, staging and package directories,
//! installed tools) follows. It is asked once per process and cached. What stays in the
//! checkout is what a person points at: the repository root they load in Chrome and the
//! generated `extension/pkg/` inside it.
//!
//! It must not create anything; callers create what they write.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// The repository root (the parent of the xtask crate).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cargo binary that runs xtask (`$CARGO`), else `cargo` from `PATH`.
pub fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "cargo".into())
}

/// The directory cargo builds this workspace into, as `cargo metadata` reports it.
pub fn target_dir() -> Result<&'static Path> {
    static TARGET: OnceLock<PathBuf> = OnceLock::new();
    if let Some(dir) = TARGET.get() {
        return Ok(dir);
    }
    let dir = ask_cargo()?;
    Ok(TARGET.get_or_init(|| dir))
}

fn ask_cargo() -> Result<PathBuf> {
    let out = Command::new(cargo_program())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("starting `cargo metadata` to find the target directory")?;
    if !out.status.success() {
        bail!(
            "`cargo metadata --format-version 1 --no-deps` failed ({}) in {}: fix the cargo error above (a broken Cargo.toml or cargo config) and run again",
            out.status,
            root().display()
        );
    }
    target_directory(&out.stdout)
}

/// `target_directory` of `cargo metadata`'s JSON.
pub fn target_directory(metadata: &[u8]) -> Result<PathBuf> {
    let doc: serde_json::Value =
        serde_json::from_slice(metadata).context("parsing the output of `cargo metadata`")?;
    match doc["target_directory"].as_str() {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => bail!("`cargo metadata` reported no target_directory; is this cargo too old?"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_target_directory_of_cargo_metadata() {
        let json = br#"{"packages":[],"target_directory":"/elsewhere/t","version":1}"#;
        assert_eq!(target_directory(json).unwrap(), Path::new("/elsewhere/t"));
        assert!(target_directory(br#"{"version":1}"#).is_err());
        assert!(target_directory(b"not json").is_err());
    }

    #[test]
    fn cargo_answers_with_an_absolute_directory() {
        let dir = target_dir().unwrap();
        assert!(dir.is_absolute(), "{}", dir.display());
        // Asked once: the second answer is the same cached path.
        assert!(std::ptr::eq(dir, target_dir().unwrap()));
    }
}
