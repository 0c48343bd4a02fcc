//! The official Python MCP SDK (PyPI `mcp`, pinned in `tests/python/requirements.txt`) as a
//! real third-party MCP client: a virtualenv under `<target>/test-venv`, and a runner for the
//! scripts in `tests/python/` — above all `mcp_driver.py`, which performs a JSON plan of MCP
//! operations against a server and prints one JSON result.
//!
//! It owns that venv (created once, shared by every test and run, rebuilt when the pinned
//! requirements or the interpreter change; serialized across processes by a file lock) and
//! the script processes it starts (bounded, killed with their children on timeout or drop).
//! It must not skip anything when Python is missing: it fails with what to install. It must
//! not judge what a script reports: tests do.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use crate::bounded;
use crate::install::{target_dir, write_atomic, FileLock};

/// The pinned `mcp` version (must match `tests/python/requirements.txt`).
pub const MCP_SDK_VERSION: &str = "2.3.0";
/// The oldest Python the pinned SDK supports (`Requires-Python: >=3.10`).
const MIN_PYTHON: (u32, u32) = (3, 10);
/// Bound on creating the venv and installing into it (a cold pip install takes ~15 s).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// Written into the venv last: its presence (with matching content) means "complete".
const STAMP: &str = ".domshell-stamp";
/// What the caller is told to do when the base interpreter is missing or unusable.
const INSTALL_HINT: &str = "install Python >= 3.10 with the venv module \
     (`apt-get install python3 python3-venv`), or point DOMSHELL_TEST_PYTHON at one";

/// A ready virtualenv holding the pinned Python MCP SDK.
#[derive(Debug, Clone)]
pub struct PythonEnv {
    venv: PathBuf,
    python: PathBuf,
}

/// One finished run of `mcp_driver.py`: its parsed result document plus how the process ended.
#[derive(Debug, Clone)]
pub struct DriverRun {
    /// The driver's JSON result (format documented in `tests/python/mcp_driver.py`).
    pub result: Value,
    pub exit_code: Option<i32>,
    /// The driver's own stderr (SDK warnings; the server's stderr is in `result`).
    pub stderr: String,
    pub elapsed: Duration,
}

/// The process-wide outcome of [`PythonEnv::ensure`]: done once, failures included, so a
/// broken install is reported by every test without each one retrying a slow pip run.
static ENSURED: Mutex<Option<Result<PythonEnv, String>>> = Mutex::new(None);

/// `tests/python/`: the scripts and the pinned requirements.
/// A driver step calling `domshell_execute` with `command`, recorded under `label`.
pub fn execute_step(label: &str, command: &str) -> Value {
    serde_json::json!({"op": "call_tool", "name": "domshell_execute", "label": label,
                       "arguments": {"command": command}})
}

/// The driver's transport to `server`'s streamable HTTP endpoint, with its MCP token.
pub fn http_transport(server: &crate::ServerProcess) -> Value {
    serde_json::json!({
        "type": "http",
        "url": server.http_url("/mcp"),
        "headers": {"Authorization": format!("Bearer {}", server.mcp_token())},
    })
}

pub fn scripts_dir() -> PathBuf {
    crate::workspace_root().join("tests").join("python")
}

/// `tests/python/mcp_driver.py`.
pub fn driver_script() -> PathBuf {
    scripts_dir().join("mcp_driver.py")
}

fn blocking_command(program: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    // Neither the developer's user site-packages nor pip's self-update nag belong in a test.
    cmd.env("PYTHONNOUSERSITE", "1")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .env_remove("PYTHONPATH")
        .env_remove("PIP_REQUIRE_VIRTUALENV");
    cmd
}

impl PythonEnv {
    /// The venv with the pinned SDK, creating or repairing it first if needed.
    ///
    /// Blocking: the first call of a fresh checkout runs `python3 -m venv` and `pip install`
    /// (about 15 s); later calls in the same process return at once, and later processes only
    /// check the stamp. Safe to call from several test processes at the same time.
    pub fn ensure() -> anyhow::Result<PythonEnv> {
        let mut slot = ENSURED.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(Self::ensure_uncached().map_err(|e| format!("{e:#}")));
        }
        match slot.as_ref() {
            Some(Ok(env)) => Ok(env.clone()),
            Some(Err(message)) => bail!("{message}"),
            None => unreachable!("the slot was filled above"),
        }
    }

    fn ensure_uncached() -> anyhow::Result<PythonEnv> {
        let target = target_dir()?;
        let venv = target.join("test-venv");
        let python = venv.join("bin").join("python");
        let requirements_path = scripts_dir().join("requirements.txt");
        let requirements = std::fs::read_to_string(&requirements_path)
            .with_context(|| format!("reading {}", requirements_path.display()))?;
        anyhow::ensure!(
            requirements.contains(&format!("mcp=={MCP_SDK_VERSION}")),
            "{} does not pin mcp=={MCP_SDK_VERSION} (MCP_SDK_VERSION in tests/src/python.rs)",
            requirements_path.display()
        );

        let _lock = FileLock::acquire(&target.join("test-venv.lock"), INSTALL_TIMEOUT)?;
        let base = base_python()?;
        let base_version = python_version(&base)?;
        let stamp = format!(
            "base={}\nversion={}.{}.{}\n--- requirements.txt ---\n{requirements}",
            base.display(),
            base_version.0,
            base_version.1,
            base_version.2
        );
        // `exists()` follows the bin/python symlink, so a removed base interpreter (e.g. a
        // pyenv version uninstalled) counts as broken and triggers a rebuild.
        if python.exists() && std::fs::read_to_string(venv.join(STAMP)).is_ok_and(|s| s == stamp) {
            return Ok(PythonEnv { venv, python });
        }

        let started = Instant::now();
        if venv.exists() {
            std::fs::remove_dir_all(&venv)
                .with_context(|| format!("removing the stale venv {}", venv.display()))?;
        }
        let mut cmd = blocking_command(&base);
        cmd.args(["-m", "venv"]).arg(&venv);
        let out = bounded::run_blocking(cmd, INSTALL_TIMEOUT, "python3 -m venv")?;
        if !out.status.success() {
            bail!(
                "{}\nhint: {INSTALL_HINT}",
                bounded::describe_failure(&format!("{} -m venv", base.display()), &out)
            );
        }
        let mut cmd = blocking_command(&python);
        cmd.args(["-m", "pip", "install", "--quiet", "--no-input", "-r"])
            .arg(&requirements_path);
        let remaining = INSTALL_TIMEOUT.saturating_sub(started.elapsed());
        let out = bounded::run_blocking(cmd, remaining, "pip install")?;
        if !out.status.success() {
            bail!(
                "{}\nhint: pip needs to reach the package index",
                bounded::describe_failure(
                    &format!("pip install -r {}", requirements_path.display()),
                    &out
                )
            );
        }
        // Check the import works and is the pinned version before declaring the venv ready.
        let mut cmd = blocking_command(&python);
        cmd.args([
            "-c",
            "import importlib.metadata as m, mcp.client.session; print(m.version('mcp'))",
        ]);
        let out = bounded::run_blocking(cmd, Duration::from_secs(60), "import mcp")?;
        let installed = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || installed != MCP_SDK_VERSION {
            bail!(
                "the venv does not import mcp=={MCP_SDK_VERSION} (got {installed:?})\n{}",
                bounded::describe_failure("python -c 'import mcp'", &out)
            );
        }
        write_atomic(&venv.join(STAMP), stamp.as_bytes())?;
        tracing::info!(
            "created {} with mcp=={MCP_SDK_VERSION} in {:?}",
            venv.display(),
            started.elapsed()
        );
        Ok(PythonEnv { venv, python })
    }

    /// The venv directory (`<target>/test-venv`).
    pub fn venv_dir(&self) -> &Path {
        &self.venv
    }

    /// The venv's interpreter.
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// A command running `script` with the venv's interpreter, with a clean Python
    /// environment (no user site, no inherited PYTHONPATH, no bytecode written into the repo).
    pub fn command<I, S>(&self, script: &Path, args: I) -> tokio::process::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = tokio::process::Command::new(&self.python);
        cmd.arg(script)
            .args(args)
            .env("PYTHONNOUSERSITE", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .env_remove("PYTHONPATH");
        cmd
    }

    /// Run `script args…` with extra `env`, for at most `timeout` (then the script and
    /// everything it started are killed and an error with its output tail is returned).
    /// The output is returned whatever the exit status.
    /// `stdin`, when given, is fed to the script.
    pub async fn run_script_with_input<I, S, K, V>(
        &self,
        script: &Path,
        args: I,
        env: &[(K, V)],
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> anyhow::Result<Output>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut cmd = self.command(script, args);
        for (key, value) in env {
            cmd.env(key, value);
        }
        bounded::run(cmd, stdin, timeout, &script.display().to_string()).await
    }

    /// Run `mcp_driver.py` on `plan` (see the script's docstring for the format) and parse
    /// its result. The driver enforces `plan.timeout_ms` itself and reports a timeout in its
    /// JSON; `timeout` is the outer backstop that kills it, so make it a few seconds longer.
    ///
    /// Errors only when the driver could not report (crashed, killed, unparseable output);
    /// a failed MCP step is a successful run whose [`DriverRun::ok`] is false.
    pub async fn run_driver(&self, plan: &Value, timeout: Duration) -> anyhow::Result<DriverRun> {
        let started = Instant::now();
        let input = serde_json::to_vec(plan).context("serializing the driver plan")?;
        let no_env: &[(&str, &str)] = &[];
        let out = self
            .run_script_with_input(
                &driver_script(),
                [] as [&str; 0],
                no_env,
                Some(input),
                timeout,
            )
            .await?;
        let elapsed = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        // The result is the last line: nothing else is printed on stdout, but be lenient.
        let line = stdout.lines().rev().find(|l| !l.trim().is_empty());
        let result: Value = match line.map(serde_json::from_str) {
            Some(Ok(value)) => value,
            _ => bail!(
                "the MCP driver printed no JSON result\n{}",
                bounded::describe_failure("mcp_driver.py", &out)
            ),
        };
        Ok(DriverRun {
            result,
            exit_code: out.status.code(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed,
        })
    }
}

impl DriverRun {
    /// Every step met its expectation and nothing failed around them.
    pub fn ok(&self) -> bool {
        self.result["ok"] == true
    }

    /// `Ok` if [`Self::ok`], else an error naming the failure: the plan-level error, each
    /// failed step, and the tails of the server's and the driver's stderr.
    pub fn ensure_ok(&self) -> anyhow::Result<&Self> {
        if self.ok() {
            return Ok(self);
        }
        bail!("{}", self.failure_report());
    }

    /// A readable account of what went wrong (empty parts omitted), for assertion messages.
    pub fn failure_report(&self) -> String {
        let mut report = format!("MCP driver run failed (exit {:?})", self.exit_code);
        if let Some(error) = self.result.get("error").filter(|e| !e.is_null()) {
            report += &format!("\nplan error: {}", one_error(error));
        }
        for step in self.steps() {
            if step["ok"] != true {
                report += &format!(
                    "\nstep {} {}{}: {}",
                    step["index"],
                    step["op"].as_str().unwrap_or("?"),
                    step["label"]
                        .as_str()
                        .map(|l| format!(" [{l}]"))
                        .unwrap_or_default(),
                    if step["skipped"] == true {
                        "skipped".to_string()
                    } else if step["error"].is_null() {
                        "succeeded but an error was expected".to_string()
                    } else {
                        one_error(&step["error"])
                    }
                );
            }
        }
        if let Some(error) = self.result.get("shutdown_error").filter(|e| !e.is_null()) {
            report += &format!("\nshutdown error: {}", one_error(error));
        }
        if let Some(server) = self.result["server_stderr"]
            .as_str()
            .filter(|s| !s.is_empty())
        {
            report += &format!(
                "\n--- server stderr (tail) ---\n{}",
                bounded::tail(server.as_bytes())
            );
        }
        if !self.stderr.trim().is_empty() {
            report += &format!(
                "\n--- driver stderr (tail) ---\n{}",
                bounded::tail(self.stderr.as_bytes())
            );
        }
        report
    }

    /// The top-level step records, in plan order (an implicit initialize comes first).
    pub fn steps(&self) -> &[Value] {
        self.result["steps"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The first top-level step with `"label": label`.
    pub fn step(&self, label: &str) -> Option<&Value> {
        self.steps().iter().find(|s| s["label"] == label)
    }

    /// All top-level steps of one op (`"call_tool"`, …).
    pub fn steps_of(&self, op: &str) -> Vec<&Value> {
        self.steps().iter().filter(|s| s["op"] == op).collect()
    }

    /// The negotiated protocol version (`"2025-11-25"`, `"2026-07-28"`, …).
    pub fn protocol_version(&self) -> Option<&str> {
        self.result["protocol_version"].as_str()
    }

    /// Tool names from the last `list_tools` step.
    pub fn tool_names(&self) -> Vec<&str> {
        self.result["tools"]
            .as_array()
            .map(|tools| tools.iter().filter_map(|t| t["name"].as_str()).collect())
            .unwrap_or_default()
    }

    /// `notifications/message` payloads the server sent, in arrival order.
    pub fn logs(&self) -> &[Value] {
        self.result["logs"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

fn one_error(error: &Value) -> String {
    let mut text = format!(
        "{}: {}",
        error["type"].as_str().unwrap_or("error"),
        error["message"].as_str().unwrap_or("")
    );
    if let Some(code) = error["code"].as_i64() {
        text += &format!(" (code {code})");
    }
    if let Some(data) = error.get("data").filter(|d| !d.is_null()) {
        text += &format!(" data={data}");
    }
    text
}

/// The base interpreter: `$DOMSHELL_TEST_PYTHON`, else `python3` from PATH.
fn base_python() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("DOMSHELL_TEST_PYTHON").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3"))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("python3 is not on PATH; {INSTALL_HINT}"))
}

/// `(major, minor, micro)` of `python`, which must be at least [`MIN_PYTHON`].
fn python_version(python: &Path) -> anyhow::Result<(u32, u32, u32)> {
    let mut cmd = blocking_command(python);
    cmd.args(["-c", "import sys; print('%d %d %d' % sys.version_info[:3])"]);
    let out = bounded::run_blocking(cmd, Duration::from_secs(30), "python3 --version")
        .with_context(|| format!("running {}; {INSTALL_HINT}", python.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let parts: Vec<u32> = text
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    let [major, minor, micro] = parts[..] else {
        bail!(
            "{}\nhint: {INSTALL_HINT}",
            bounded::describe_failure(&format!("{} -c sys.version_info", python.display()), &out)
        );
    };
    anyhow::ensure!(
        (major, minor) >= MIN_PYTHON,
        "{} is Python {major}.{minor}.{micro}; mcp=={MCP_SDK_VERSION} needs >= {}.{}; {INSTALL_HINT}",
        python.display(),
        MIN_PYTHON.0,
        MIN_PYTHON.1
    );
    Ok((major, minor, micro))
}
