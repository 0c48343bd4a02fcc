//! `cargo xtask image`: the static `x86_64-unknown-linux-musl` release server and the
//! container image built from `packaging/container/Containerfile` with podman.
//!
//! It owns the build context `image-context` in the cargo target directory (the binary, the
//! Containerfile and the empty `data/` tree the image gives the server) and the podman
//! invocations. It must not pull anything (the Containerfile starts `FROM scratch`) and must
//! not push the image anywhere.

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

/// Build the image `name` from `binary`; returns its size in bytes.
pub fn build_image(binary: &Path, name: &str) -> Result<u64> {
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
    status(build, "podman build")?;
    image_size(name)
}

/// The size podman reports for `name`, in bytes.
pub fn image_size(name: &str) -> Result<u64> {
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
    let size = build_image(&binary, &name)?;
    print_image(&name, size, &binary);
    Ok(())
}

pub fn print_image(name: &str, size: u64, binary: &Path) {
    let binary_size = std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "xtask: image {name}: {:.1} MB (binary {:.1} MB; goal < 15 MB)",
        size as f64 / 1e6,
        binary_size as f64 / 1e6
    );
}
