//! System programs the test suite needs (Chromium, podman with runc, npm, Python): whether they are
//! present, and what to do when they are not.
//!
//! The decision is pure ([`decide`]): given what is missing, whether we run as root and what
//! the OS says it is, either install with apt (root on Debian/Ubuntu: `apt-get update` once,
//! then one `apt-get install -y`) or stop with the one command the person must run. The I/O
//! around it only looks things up and runs apt. It must not install anything outside that
//! case (no sudo, no other package managers) and must not touch the Rust toolchain, which
//! `rust-toolchain.toml` already pins.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// A program the tests run, and the Debian packages that provide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemTool {
    /// What it is for, in messages.
    pub purpose: &'static str,
    /// Any one of these on PATH (or at an absolute path) counts as present.
    pub binaries: &'static [&'static str],
    /// Debian/Ubuntu packages that install it.
    pub apt_packages: &'static [&'static str],
}

/// The browser of the end-to-end tests (the harness also honours `CHROMIUM_BIN`).
pub const CHROMIUM: SystemTool = SystemTool {
    purpose: "Chromium (end-to-end tests)",
    binaries: &[
        "/usr/bin/chromium",
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ],
    apt_packages: &["chromium"],
};

/// The container engine of the image test.
pub const PODMAN: SystemTool = SystemTool {
    purpose: "podman (container image test)",
    binaries: &["podman"],
    apt_packages: &["podman"],
};

/// The OCI runtime the tests ask podman for (crun is not always usable in nested containers).
pub const RUNC: SystemTool = SystemTool {
    purpose: "runc (container image test)",
    binaries: &["runc"],
    apt_packages: &["runc"],
};

/// The Node package manager: installs the MCP conformance suite and the mcpb CLI.
pub const NPM: SystemTool = SystemTool {
    purpose: "npm (conformance suite, mcpb CLI)",
    binaries: &["npm"],
    apt_packages: &["npm"],
};

/// Python with venv: the tests' real MCP client is the Python SDK in a venv.
pub const PYTHON: SystemTool = SystemTool {
    purpose: "Python 3 with venv (MCP client tests)",
    binaries: &["python3"],
    apt_packages: &["python3", "python3-venv"],
};

/// What to do about missing tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Everything is there.
    Nothing,
    /// Run these commands (in order), then check again.
    Install(Vec<Vec<String>>),
    /// Stop and tell the person to run this command.
    Ask(String),
}

/// Whether `/etc/os-release` describes Debian or a derivative (Ubuntu included).
pub fn is_debian_like(os_release: &str) -> bool {
    os_release.lines().any(|line| {
        let Some((key, value)) = line.split_once('=') else {
            return false;
        };
        matches!(key.trim(), "ID" | "ID_LIKE")
            && value
                .trim_matches(|c| c == '"' || c == '\'')
                .split_whitespace()
                .any(|id| id == "debian" || id == "ubuntu")
    })
}

/// Decide how to get `missing` installed. `os_release` is the content of `/etc/os-release`
/// (`None` when absent, e.g. macOS); `has_apt` says whether `apt-get` is on PATH.
pub fn decide(
    missing: &[SystemTool],
    is_root: bool,
    os_release: Option<&str>,
    has_apt: bool,
) -> Plan {
    if missing.is_empty() {
        return Plan::Nothing;
    }
    let mut packages: Vec<&str> = Vec::new();
    for tool in missing {
        for package in tool.apt_packages {
            if !packages.contains(package) {
                packages.push(package);
            }
        }
    }
    let debian = os_release.is_some_and(is_debian_like) && has_apt;
    if debian && is_root {
        let mut install: Vec<String> = ["apt-get", "install", "-y", "--no-install-recommends"]
            .into_iter()
            .map(String::from)
            .collect();
        install.extend(packages.iter().map(|p| p.to_string()));
        return Plan::Install(vec![vec!["apt-get".into(), "update".into()], install]);
    }
    let what: Vec<&str> = missing.iter().map(|t| t.purpose).collect();
    let command = if debian {
        format!("sudo apt-get install -y {}", packages.join(" "))
    } else {
        // Elsewhere the package names differ too much to guess; name the programs.
        format!(
            "install {} with your system's package manager",
            packages.join(" and ")
        )
    };
    Plan::Ask(format!(
        "the tests need {} — run: {command}",
        what.join(", ")
    ))
}

/// The first of `tool.binaries` that exists.
pub fn find(tool: &SystemTool) -> Option<PathBuf> {
    tool.binaries.iter().find_map(|name| find_program(name))
}

/// `name` if it is an absolute path to a file, else the first match on PATH.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    if path.is_absolute() {
        return path.is_file().then(|| path.to_path_buf());
    }
    let search = std::env::var_os("PATH")?;
    std::env::split_paths(&search)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn running_as_root() -> bool {
    // Linux exposes the effective uid here; elsewhere apt is not an option anyway.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Make sure every tool in `tools` is installed, installing with apt when [`decide`] says so.
pub fn ensure(tools: &[SystemTool]) -> Result<()> {
    let missing = |tools: &[SystemTool]| -> Vec<SystemTool> {
        tools
            .iter()
            .copied()
            .filter(|t| find(t).is_none())
            .collect()
    };
    // CHROMIUM_BIN points the harness at a browser of the person's choosing.
    let chromium_given = std::env::var_os("CHROMIUM_BIN").is_some_and(|v| !v.is_empty());
    let wanted: Vec<SystemTool> = tools
        .iter()
        .copied()
        .filter(|t| !(chromium_given && *t == CHROMIUM))
        .collect();
    let absent = missing(&wanted);
    let os_release = std::fs::read_to_string("/etc/os-release").ok();
    match decide(
        &absent,
        running_as_root(),
        os_release.as_deref(),
        find_program("apt-get").is_some(),
    ) {
        Plan::Nothing => Ok(()),
        Plan::Ask(message) => bail!("{message}"),
        Plan::Install(commands) => {
            for argv in commands {
                eprintln!("xtask: {}", argv.join(" "));
                let status = Command::new(&argv[0])
                    .args(&argv[1..])
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .status()
                    .with_context(|| format!("starting {}", argv.join(" ")))?;
                if !status.success() {
                    bail!("`{}` failed ({status})", argv.join(" "));
                }
            }
            let still = missing(&wanted);
            if !still.is_empty() {
                let names: Vec<&str> = still.iter().map(|t| t.purpose).collect();
                bail!(
                    "installed with apt, yet still missing: {}",
                    names.join(", ")
                );
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
    const UBUNTU: &str = "NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\n";
    const MINT: &str = "ID=linuxmint\nID_LIKE=\"ubuntu debian\"\n";
    const FEDORA: &str = "ID=fedora\nID_LIKE=\"rhel centos\"\n";

    #[test]
    fn debian_family_is_recognised_by_id_or_id_like() {
        assert!(is_debian_like(DEBIAN));
        assert!(is_debian_like(UBUNTU));
        assert!(is_debian_like(MINT));
        assert!(!is_debian_like(FEDORA));
        assert!(!is_debian_like(""));
    }

    #[test]
    fn nothing_missing_means_nothing_to_do() {
        assert_eq!(decide(&[], false, None, false), Plan::Nothing);
    }

    #[test]
    fn root_on_debian_updates_once_then_installs_everything_in_one_go() {
        let plan = decide(&[CHROMIUM, PODMAN, RUNC], true, Some(DEBIAN), true);
        let Plan::Install(commands) = plan else {
            panic!("expected an install plan, got {plan:?}");
        };
        assert_eq!(commands.len(), 2);
        assert_eq!(commands[0], ["apt-get", "update"]);
        assert_eq!(
            commands[1],
            [
                "apt-get",
                "install",
                "-y",
                "--no-install-recommends",
                "chromium",
                "podman",
                "runc"
            ]
        );
    }

    #[test]
    fn not_root_on_ubuntu_names_the_one_sudo_command() {
        let plan = decide(&[PODMAN, RUNC], false, Some(UBUNTU), true);
        assert_eq!(
            plan,
            Plan::Ask(
                "the tests need podman (container image test), runc (container image test) — \
                 run: sudo apt-get install -y podman runc"
                    .into()
            )
        );
    }

    #[test]
    fn other_systems_are_told_what_to_install_not_how() {
        let Plan::Ask(message) = decide(&[CHROMIUM], true, Some(FEDORA), false) else {
            panic!("expected a message");
        };
        assert!(message.contains("chromium"), "{message}");
        assert!(!message.contains("apt-get"), "{message}");
        let Plan::Ask(message) = decide(&[CHROMIUM], false, None, false) else {
            panic!("expected a message");
        };
        assert!(message.contains("package manager"), "{message}");
    }

    #[test]
    fn debian_without_apt_on_path_is_not_installed_into() {
        assert!(matches!(
            decide(&[RUNC], true, Some(DEBIAN), false),
            Plan::Ask(_)
        ));
    }
}
