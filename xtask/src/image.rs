//! `cargo xtask image`: the static `x86_64-unknown-linux-musl` release server and the
//! container image built from `packaging/container/Containerfile` with podman.
//!
//! It owns the build context `image-context` in the cargo target directory (the binary, the
//! Containerfile and the empty `data/` tree the image gives the server), the podman
//! invocations, and the one measurement of the image's size ([`report_image`]), which is what
//! the README quotes. It must not pull anything (the Containerfile starts `FROM scratch`) and
//! must not push the image anywhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{cargo, ensure_rust_target, root, status, target_dir};

/// The target of the container binary: static, so the image needs no libc.
pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

/// The image name `cargo xtask image` tags by default (and `cargo xtask test` tests).
pub fn default_image_name() -> String {
    format!("localhost/domshell:{}", env!("CARGO_PKG_VERSION"))
}

/// podman with the options that work on hosts without systemd (CI containers included):
/// runc as the OCI runtime and cgroupfs as the cgroup manager.
pub fn podman() -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", "runc", "--cgroup-manager=cgroupfs"]);
    cmd
}

/// `<target dir>/x86_64-unknown-linux-musl/release/domshell`, built with symbols stripped.
pub fn build_static_server() -> Result<PathBuf> {
    ensure_rust_target(MUSL_TARGET)?;
    let mut build = cargo();
    build
        .args([
            "build",
            "--release",
            "--package",
            "domshell-server",
            "--bin",
            "domshell",
            "--target",
            MUSL_TARGET,
        ])
        // Symbols are a third of the binary and nobody debugs inside the image.
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
    status(build, "building the static server (musl)")?;
    let bin = target_dir()?
        .join(MUSL_TARGET)
        .join("release")
        .join("domshell");
    anyhow::ensure!(bin.is_file(), "{} was not produced", bin.display());
    Ok(bin)
}

/// Build the image `name` from `binary`.
pub fn build_image(binary: &Path, name: &str) -> Result<()> {
    let context = target_dir()?.join("image-context");
    if context.exists() {
        std::fs::remove_dir_all(&context)
            .with_context(|| format!("clearing {}", context.display()))?;
    }
    for dir in ["data/config/domshell", "data/state/domshell"] {
        std::fs::create_dir_all(context.join(dir))
            .with_context(|| format!("creating {}", context.join(dir).display()))?;
    }
    std::fs::copy(binary, context.join("domshell"))
        .with_context(|| format!("copying {} into the build context", binary.display()))?;
    let containerfile = root()
        .join("packaging")
        .join("container")
        .join("Containerfile");
    std::fs::copy(&containerfile, context.join("Containerfile"))
        .with_context(|| format!("copying {}", containerfile.display()))?;

    let mut build = podman();
    build
        .arg("build")
        // The docker image format keeps HEALTHCHECK; the OCI format has no field for it.
        .args([
            "--format",
            "docker",
            "--pull=never",
            "--quiet",
            "--tag",
            name,
        ])
        .arg("--file")
        .arg(context.join("Containerfile"))
        .arg(&context)
        .stdout(std::process::Stdio::null());
    status(build, "podman build")
}

/// The size podman reports for `name`, in bytes.
fn image_size(name: &str) -> Result<u64> {
    let out = podman()
        .args(["image", "inspect", "--format", "{{.Size}}", name])
        .output()
        .context("starting podman image inspect")?;
    if !out.status.success() {
        bail!(
            "podman image inspect {name} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("podman reported the size {text:?}"))
}

/// `cargo xtask image [--tag NAME]`.
pub fn image(args: &[String]) -> Result<()> {
    let name = match args {
        [] => default_image_name(),
        [flag, value] if flag == "--tag" => value.clone(),
        _ => bail!("usage: cargo xtask image [--tag NAME]"),
    };
    crate::prereq::ensure(&[crate::prereq::PODMAN, crate::prereq::RUNC])?;
    let binary = build_static_server()?;
    build_image(&binary, &name)?;
    report_image(&name, &binary)
}

/// Measure the image `name` (as podman reports it) and the `binary` in it, and print both:
/// the figures the README quotes come from this line.
pub fn report_image(name: &str, binary: &Path) -> Result<()> {
    let size = image_size(name)?;
    let binary_size = std::fs::metadata(binary)
        .with_context(|| format!("measuring {}", binary.display()))?
        .len();
    eprintln!("xtask: {}", size_line(name, size, binary_size));
    Ok(())
}

/// `image NAME: 9.4 MB (binary 9.3 MB; goal < 15 MB)`, in decimal megabytes.
fn size_line(name: &str, image_bytes: u64, binary_bytes: u64) -> String {
    format!(
        "image {name}: {:.1} MB (binary {:.1} MB; goal < 15 MB)",
        image_bytes as f64 / 1e6,
        binary_bytes as f64 / 1e6
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_line_is_in_decimal_megabytes() {
        assert_eq!(
            size_line("localhost/domshell:1", 9_412_345, 9_350_000),
            "image localhost/domshell:1: 9.4 MB (binary 9.3 MB; goal < 15 MB)"
        );
    }
}
