//! The domshell container image run by a real engine (podman), the way ToolHive runs it.
//!
//! It owns the containers it starts: each gets a unique name, and dropping the handle
//! removes it (`podman rm --force`), whatever the test did. It must not build or pull images
//! (`cargo xtask test` builds the image and names it in `DOMSHELL_TEST_IMAGE`; nothing can be
//! pulled here) and must not skip when podman or the image is missing: it fails saying what
//! to run.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The env var naming the image under test.
pub const IMAGE_ENV: &str = "DOMSHELL_TEST_IMAGE";

/// Bound on one podman call that is not a container's own run.
const PODMAN_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The image `cargo xtask test` built; an error saying how to get one otherwise.
pub fn test_image() -> anyhow::Result<String> {
    let name = std::env::var(IMAGE_ENV).ok().filter(|v| !v.is_empty());
    let Some(name) = name else {
        bail!(
            "{IMAGE_ENV} is not set: run the suite with `cargo xtask test` (it builds the image), \
             or `cargo xtask image` and then {IMAGE_ENV}=localhost/domshell:{} cargo test",
            env!("CARGO_PKG_VERSION")
        );
    };
    let out = podman(&["image", "exists", &name])?;
    if !out.status.success() {
        bail!("the image {name} ({IMAGE_ENV}) does not exist: run `cargo xtask image`");
    }
    Ok(name)
}

/// `podman <global options> args…`, bounded. The global options make podman work on hosts
/// without systemd (CI containers): runc as the OCI runtime, cgroupfs as the cgroup manager.
pub fn podman(args: &[&str]) -> anyhow::Result<Output> {
    let mut cmd = Command::new("podman");
    cmd.args(["--runtime", "runc", "--cgroup-manager=cgroupfs"])
        .args(args);
    crate::bounded::run_blocking(cmd, PODMAN_CALL_TIMEOUT, "podman").with_context(|| {
        format!(
            "running podman {} (install it: apt-get install -y podman runc)",
            args.join(" ")
        )
    })
}

fn podman_ok(args: &[&str]) -> anyhow::Result<String> {
    let out = podman(args)?;
    if !out.status.success() {
        bail!(
            "{}",
            crate::bounded::describe_failure(&format!("podman {}", args.join(" ")), &out)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A running container. Dropping it removes it.
#[derive(Debug)]
pub struct Container {
    name: String,
}

impl Container {
    /// `podman run --detach` of `image` with `options` (before the image) and `args` (after
    /// it, i.e. to `domshell serve`). Resource limits are the ones the engine needs here.
    pub fn run(image: &str, options: &[String], args: &[String]) -> anyhow::Result<Container> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "domshell-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let mut argv: Vec<String> = [
            "run",
            "--detach",
            "--name",
            &name,
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        argv.extend(options.iter().cloned());
        argv.push(image.to_string());
        argv.extend(args.iter().cloned());
        let argv_ref: Vec<&str> = argv.iter().map(String::as_str).collect();
        // From here on the name is ours to remove, even if `run` half-failed.
        let container = Container { name };
        podman_ok(&argv_ref)?;
        Ok(container)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host port published for `container_port` (`podman port`).
    pub fn host_port(&self, container_port: u16) -> anyhow::Result<u16> {
        let text = podman_ok(&["port", &self.name, &format!("{container_port}/tcp")])?;
        let line = text
            .lines()
            .next()
            .with_context(|| format!("{container_port}/tcp is not published"))?;
        line.rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .with_context(|| format!("podman port printed {line:?}"))
    }

    /// Stdout and stderr the container wrote so far.
    pub fn logs(&self) -> anyhow::Result<(String, String)> {
        let out = podman(&["logs", &self.name])?;
        Ok((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// `podman exec` in the container; the process output whatever its status.
    pub fn exec(&self, command: &[&str]) -> anyhow::Result<Output> {
        let mut argv = vec!["exec", self.name.as_str()];
        argv.extend_from_slice(command);
        podman(&argv)
    }

    /// The image's own HEALTHCHECK, run once now: whether it passed.
    pub fn healthcheck(&self) -> anyhow::Result<bool> {
        Ok(podman(&["healthcheck", "run", &self.name])?
            .status
            .success())
    }

    /// `podman stop --time grace`: SIGTERM, then SIGKILL after `grace`. Returns the exit
    /// code and how long the stop took; a server that ignores SIGTERM shows up as 137.
    pub fn stop(&self, grace: Duration) -> anyhow::Result<(i64, Duration)> {
        let started = Instant::now();
        podman_ok(&[
            "stop",
            "--time",
            &grace.as_secs().max(1).to_string(),
            &self.name,
        ])?;
        let elapsed = started.elapsed();
        let code = podman_ok(&["inspect", "--format", "{{.State.ExitCode}}", &self.name])?;
        let code = code
            .parse()
            .with_context(|| format!("podman inspect printed the exit code {code:?}"))?;
        Ok((code, elapsed))
    }

    /// Copy a file out of the container (works on a running one).
    pub fn copy_out(&self, path: &str, to: &std::path::Path) -> anyhow::Result<()> {
        let source = format!("{}:{path}", self.name);
        let dest = to.display().to_string();
        podman_ok(&["cp", &source, &dest]).map(|_| ())
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "--force", "--time", "0", &self.name]);
    }
}
