//! Build chores for domshell, run as `cargo xtask <command>`:
//!
//! - `dist`  — release server binary + the extension's WASM, so the repository root loads in
//!   Chrome as an unpacked extension;
//! - `run`   — `dist`, then start the server (extra arguments go to `domshell serve`);
//! - `test`  — the whole suite: unit, integration, end-to-end (real Chromium), the container
//!   image run by podman, the packages;
//! - `image` — the static musl server in a `FROM scratch` container image ([`image`]);
//! - `package` — the `.mcpb` bundle and the extension zip ([`package`]);
//! - `bench-heartbeat` — heartbeat figures with real Chromium, printed;
//! - `bench-ownership` — takeover and spawn-storm figures for many hosts on one port, printed;
//! - `bench-lanes` — the cost of minting and joining a lane and of its first command, printed;
//! - `bench-workflow` — a `js` round trip, `each` over 20 tabs and a 50-iteration `for`, printed;
//! - `bench-mcp` — MCP round-trip, memory and start-up figures next to DOMShell 2.0.10, printed;
//! - `bench-shell` — shell command timings on generated pages in real Chromium, next to
//!   DOMShell 2.0.10 with its own extension when that is at hand, printed with ratios;
//! - `bench-tasks` — calls and characters per agent task on replica sites for domshell,
//!   DOMShell 2.0.10 and Playwright MCP, every answer checked, printed.
//!
//! Nothing is installed by hand: rustup fetches the pinned toolchain and its targets from
//! `rust-toolchain.toml`, the WebAssembly bindings are generated in-process, and the system
//! programs the tests need (Chromium, podman, runc, npm, Python) are installed with apt when
//! running as root on Debian/Ubuntu, or named in one command to run otherwise ([`prereq`]).

mod first_run;
mod image;
mod package;
mod paths;
mod prereq;
mod serve;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

pub use paths::{root, target_dir};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The cargo profile of the WASM build (Cargo.toml: size-first settings for the extension only).
const WASM_PROFILE: &str = "wasm";
/// The server binary's file name on this platform.
const EXE: &str = if cfg!(windows) {
    "domshell.exe"
} else {
    "domshell"
};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("dist") => dist().map(|_| ()),
        Some("run") => run(&args[1..]),
        Some("build-extension") => build_extension().map(|_| ()),
        Some("test") => test(&args[1..]),
        Some("image") => image::image(&args[1..]),
        Some("package") => package::package(),
        Some("bench-heartbeat") => bench_heartbeat(&args[1..]),
        Some("bench-mcp") => bench_mcp(&args[1..]),
        Some("bench-shell") => bench_shell(&args[1..]),
        Some("bench-tasks") => bench_tasks(&args[1..]),
        Some("bench-ownership") => {
            run_bench("bench-ownership", &args[1..], "the ownership benchmark")
        }
        Some("bench-lanes") => build_extension()
            .and_then(|_| run_bench("bench-lanes", &args[1..], "the lanes benchmark")),
        Some("bench-workflow") => build_extension()
            .and_then(|_| run_bench("bench-workflow", &args[1..], "the workflow benchmark")),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 dist              build <target dir>/release/domshell and the extension (load the repository root in Chrome)\n  \
                 run [ARGS..]      dist, then run `domshell serve --transport http ARGS..`\n  \
                 build-extension   build only the extension's WASM into extension/pkg\n  \
                 test [ARGS..]     run the whole test suite (unit, integration, end-to-end, container, packages); ARGS go to cargo test\n  \
                 image [--tag NAME]  build the static server and its container image with podman\n  \
                 package           write the .mcpb bundle, the extension zips and server.json into <target dir>/package\n  \
                 bench-heartbeat [--trials N]  print heartbeat figures measured with real Chromium\n  \
                 bench-ownership [--trials N]  print takeover and spawn-storm figures (fake extension)\n  \
                 bench-lanes [--trials N]  print what minting, joining and a lane's first command cost in real Chromium\n  \
                 bench-workflow [--trials N]  print what a `js` round trip, `each` over 20 tabs and a 50-iteration `for` cost in real Chromium\n  \
                 bench-mcp [ARGS..]  print MCP latency/memory/start-up figures next to DOMShell 2.0.10 (ARGS: bench-mcp --help)\n  \
                 bench-shell [ARGS..]  print shell command timings on 1k/10k/50k-node pages in real Chromium next to DOMShell 2.0.10 (ARGS: bench-shell --help)\n  \
                 bench-tasks [ARGS..]  print calls and characters per agent task for domshell, DOMShell 2.0.10 and Playwright MCP (ARGS: bench-tasks --help)\n\n\
                 <target dir> is cargo's (`cargo metadata`): CARGO_TARGET_DIR or build.target-dir when set, else target/ in the checkout."
            );
            return std::process::ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn cargo() -> Command {
    let mut cmd = Command::new(paths::cargo_program());
    cmd.current_dir(root());
    cmd
}

fn status(mut cmd: Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Make sure rustup has `target` for the active toolchain. `rust-toolchain.toml` lists every
/// target the project builds, so rustup normally fetched it already; a toolchain override
/// (RUSTUP_TOOLCHAIN, `cargo +x`) skips that file, so add it then.
fn ensure_rust_target(target: &str) -> Result<()> {
    match output("rustup", &["target", "list", "--installed"]) {
        Some(list) if list.lines().any(|l| l.trim() == target) => Ok(()),
        Some(_) => {
            let mut add = Command::new("rustup");
            add.args(["target", "add", target]);
            status(add, &format!("rustup target add {target}"))
        }
        // Without rustup, trust the toolchain and let cargo report a missing target.
        None => Ok(()),
    }
}

/// Build the WASM worker into `extension/pkg`; returns the path of the `.wasm` file.
fn build_extension() -> Result<PathBuf> {
    ensure_rust_target(WASM_TARGET)?;
    let mut build = cargo();
    build.args([
        "build",
        "--package",
        "domshell-extension",
        "--lib",
        "--profile",
        WASM_PROFILE,
        "--target",
        WASM_TARGET,
    ]);
    status(build, "building the extension for wasm32")?;
    let wasm = target_dir()?
        .join(WASM_TARGET)
        .join(WASM_PROFILE)
        .join("domshell_extension.wasm");
    anyhow::ensure!(
        wasm.is_file(),
        "cargo built the extension but {} is missing",
        wasm.display()
    );
    // The bindings go to a staging directory first and only changed files are moved into
    // `extension/pkg`, each with one rename: a browser (or a test) loading the extension from
    // the checkout meanwhile never reads a half-written file.
    let stage = target_dir()?.join("extension-pkg-stage");
    if stage.exists() {
        std::fs::remove_dir_all(&stage).with_context(|| format!("clearing {}", stage.display()))?;
    }
    // The bindings generator is linked in at the same pinned version as the `wasm-bindgen`
    // crate (see xtask/Cargo.toml), so the two can never disagree.
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        // Function names and toolchain records are for debugging; the shipped worker needs
        // neither (they were a fifth of the file).
        .remove_name_section(true)
        .remove_producers_section(true)
        .web(true)
        .and_then(|b| {
            // The worker calls `init()` with no argument: the glue must know where its .wasm is.
            b.omit_default_module_path(false)
                .typescript(false)
                .generate(&stage)
        })
        .with_context(|| format!("generating JS bindings for {}", wasm.display()))?;
    // No wasm-opt pass: Debian's binaryen (108) predates the reference-types output of current
    // Rust and corrupts wasm-bindgen's externref table, and a current one (132, -Oz or -Os)
    // makes the file smaller but its gzipped form larger, which is what is downloaded.
    let out_dir = root().join("extension").join("pkg");
    install_changed_files(&stage, &out_dir)?;
    let bg = out_dir.join("domshell_extension_bg.wasm");
    let size = std::fs::metadata(&bg).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "xtask: extension built: {} ({} KiB)",
        bg.display(),
        size / 1024
    );
    Ok(bg)
}

/// Move every file of `stage` whose content differs from its namesake in `dest` onto it (one
/// rename each), leaving identical files untouched.
fn install_changed_files(stage: &Path, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let entries =
        std::fs::read_dir(stage).with_context(|| format!("reading {}", stage.display()))?;
    for entry in entries {
        let from = entry
            .with_context(|| format!("listing {}", stage.display()))?
            .path();
        if !from.is_file() {
            continue;
        }
        let Some(name) = from.file_name() else {
            continue;
        };
        let to = dest.join(name);
        let new = std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
        if std::fs::read(&to).is_ok_and(|old| old == new) {
            continue;
        }
        // A rename across file systems fails (the target directory may live elsewhere):
        // write a sibling in `dest`, then rename that.
        let tmp = dest.join(format!(".{}.tmp", name.to_string_lossy()));
        std::fs::write(&tmp, &new).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &to).with_context(|| format!("renaming onto {}", to.display()))?;
    }
    Ok(())
}

/// `<target dir>/release/domshell`, built.
fn build_release_server() -> Result<PathBuf> {
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "--package",
        "domshell-server",
        "--bin",
        "domshell",
    ]);
    status(build, "building the server")?;
    let bin = target_dir()?.join("release").join(EXE);
    anyhow::ensure!(
        bin.is_file(),
        "cargo built the server but {} is missing",
        bin.display()
    );
    Ok(bin)
}

fn dist() -> Result<PathBuf> {
    build_extension()?;
    let bin = build_release_server()?;
    eprintln!(
        "xtask: done.\n  server:    {}\n  extension: load {} in chrome://extensions (Developer mode → Load unpacked)\n  then run `{} token` and paste the token into the extension's options.",
        bin.display(),
        root().display(),
        bin.display()
    );
    Ok(bin)
}

fn run(args: &[String]) -> Result<()> {
    let bin = dist()?;
    let mut serve = Command::new(bin);
    serve.arg("serve");
    // In a terminal, MCP over stdio would wait on the keyboard: serve MCP over HTTP instead.
    if !args.iter().any(|a| a.starts_with("--transport")) {
        serve.args(["--transport", "http"]);
    }
    serve.args(args);
    serve::run_owned(serve, "domshell serve")
}

fn test(args: &[String]) -> Result<()> {
    prereq::ensure(&[
        prereq::CHROMIUM,
        prereq::PODMAN,
        prereq::RUNC,
        prereq::NPM,
        prereq::PYTHON,
    ])?;
    // First the README's build as a person whose cargo builds outside the checkout runs it;
    // the suite gets that directory to run what was built there. It also generated
    // `extension/pkg/` from these sources, which every browser test loads: building the
    // WebAssembly again here would only repeat it.
    let first_run = first_run::build()?;
    let mut build = cargo();
    build.args(["build", "--package", "domshell-server", "--bin", "domshell"]);
    status(build, "building the server")?;
    // What the container and package tests exercise is what ships: the static release
    // binary, its image, the bundle and the extension zip, built here (a test must not race
    // a cargo build of its own) and handed over by name.
    let static_server = image::build_static_server()?;
    let image_name = image::default_image_name();
    image::build_image(&static_server, &image_name)?;
    image::report_image(&image_name, &static_server)?;
    let packages = package::build_packages(&static_server)?;
    let mut tests = cargo();
    tests
        .args(["test", "--workspace"])
        .args(args)
        .env("DOMSHELL_BIN", target_dir()?.join("debug").join(EXE))
        .env(first_run::TARGET_ENV, first_run.target_dir())
        .env("DOMSHELL_TEST_IMAGE", &image_name)
        .env("DOMSHELL_TEST_MCPB", &packages.mcpb)
        .env("DOMSHELL_TEST_MCPB_CLI", &packages.mcpb_cli)
        .env("DOMSHELL_TEST_EXTENSION_ZIP", &packages.extension_zip)
        .env("DOMSHELL_TEST_WEBSTORE_ZIP", &packages.web_store_zip)
        .env("DOMSHELL_TEST_SERVER_JSON", &packages.server_json)
        .stdout(std::process::Stdio::piped());
    let mut child = tests.spawn().context("starting the test suite")?;
    let stdout = child.stdout.take().context("capturing test output")?;
    let mut totals = Totals::default();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.context("reading test output")?;
        println!("{line}");
        totals.add(&line);
    }
    let status = child.wait().context("waiting for the test suite")?;
    // One closing line for the whole workspace: cargo's last block is often a crate with no
    // tests, whose "0 passed" says nothing about the run.
    println!(
        "workspace: {} passed, {} failed, {} skipped",
        totals.passed, totals.failed, totals.ignored
    );
    if !status.success() {
        bail!("the test suite failed ({status})");
    }
    if totals.passed == 0 {
        bail!("the test suite ran no test");
    }
    Ok(())
}

/// Sums of cargo's `test result:` lines.
#[derive(Default)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Totals {
    fn add(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = count.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

fn bench_heartbeat(args: &[String]) -> Result<()> {
    build_extension()?;
    run_bench("bench-heartbeat", args, "the heartbeat benchmark")
}

fn bench_mcp(args: &[String]) -> Result<()> {
    // A fake extension stands in for the browser: the server is all this benchmark needs.
    run_bench("bench-mcp", args, "the MCP benchmark")
}

fn bench_shell(args: &[String]) -> Result<()> {
    build_extension()?;
    run_bench("bench-shell", args, "the shell benchmark")?;
    // The mapping alone, natively, on the recorded large page: what the worker spends of the
    // figures above once CDP has answered.
    run_bench("bench-ax-map", &[], "the mapping benchmark")
}

fn bench_tasks(args: &[String]) -> Result<()> {
    build_extension()?;
    run_bench("bench-tasks", args, "the task benchmark")
}

/// Build the release server, then run the benchmark binary `bin` of the test crate against it.
fn run_bench(bin: &str, args: &[String], what: &str) -> Result<()> {
    let server = build_release_server()?;
    let mut bench = cargo();
    bench
        .args([
            "run",
            "--release",
            "--package",
            "domshell-tests",
            "--bin",
            bin,
            "--",
        ])
        .args(args)
        .env("DOMSHELL_BIN", server);
    status(bench, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_cargo_result_lines() {
        let mut t = Totals::default();
        t.add("test result: ok. 15 passed; 0 failed; 2 ignored; 0 measured; 0 filtered out; finished in 0.00s");
        t.add("test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out");
        t.add("running 4 tests");
        t.add("test foo ... ok");
        assert_eq!((t.passed, t.failed, t.ignored), (18, 1, 2));
    }
}
