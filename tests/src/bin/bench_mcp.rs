//! `cargo xtask bench-mcp`: what an MCP client sees of the real `domshell` server (over
//! streamable HTTP and over stdio) next to DOMShell 2.0.10, the Node/TypeScript server it
//! replaces (HTTP only: it has no stdio transport), in the same run, each fed by a fake
//! extension that answers at once, all on 127.0.0.1.
//!
//! Per server it measures
//! - start-up: process spawn → first `initialize` answered (median of a few starts);
//! - memory: VmRSS idle (extension connected, before any call), sampled under the
//!   many-session load, and the peak (VmHWM);
//! - `tools/call domshell_execute {"command":"pwd"}` → reply: p50/p99 latency and calls per
//!   second with 1 session (sequential calls), then with 16 sessions in parallel, each making
//!   sequential calls (stdio carries one session per process, so there 16 callers share it);
//! - server CPU time per call (from /proc), which the shared 2-core machine distorts less than
//!   wall-clock figures.
//!
//! It prints figures and a markdown table for the README; it asserts nothing about speed and
//! fails only when something is broken (a server does not start, a call errs or returns the
//! wrong text). It must not talk to anything but 127.0.0.1 (the npm install of DOMShell
//! aside), must not loop without a bound (every phase has a call count and a time limit), and
//! must not leave a process behind (every child is killed when its guard drops).

// Helper modules live beside this file in bench_mcp/ (not in src/bin/, where Cargo would take
// each for a binary of its own).
#[path = "bench_mcp/fake_peer.rs"]
mod fake_peer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use domshell_tests::domshell_peer as peer;
use domshell_tests::mcp_client::{self, check_protocol, client_config, Client, PROTOCOL_VERSION};
use domshell_tests::process::{self, Child};
use domshell_tests::{
    server::server_binary, FakeExtension, FakeOptions, TEST_MCP_TOKEN, TEST_TOKEN,
};
use rmcp::model::{CallToolRequestParams, CallToolResult, JsonObject};
use rmcp::service::Peer;
use rmcp::{RoleClient, ServiceExt};
use serde_json::json;

/// Bound on one tool call; a call that takes this long means something is broken.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a server's start-up (Node with a cold disk cache can take a few seconds).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on opening or closing one MCP session.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Let the fresh process settle (Node finishes loading, GC runs) before the idle sample.
const IDLE_SETTLE: Duration = Duration::from_secs(1);
/// VmRSS sampling period during the many-session phase.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(20);

// The MCP client is rmcp's (the SDK the server itself is built on), not a hand-written
// JSON-RPC loop: it is a real client as a Rust host would use one — streamable HTTP with
// sessions, SSE-framed replies, the standalone GET stream, DELETE on close — so both servers
// pay for the whole protocol a host exercises. Its cost is the same for both servers.
// Two choices are ours, not rmcp's defaults: the reqwest client has proxies off (all traffic
// must stay on 127.0.0.1 whatever HTTP_PROXY says) and keeps connections alive, as the Python
// and TypeScript SDKs' HTTP clients do (rmcp's default client opens a connection per POST);
// `--no-keep-alive` restores rmcp's default. For stdio the benchmark spawns the server itself
// and hands rmcp its pipes (rather than rmcp's child-process transport) so that it knows the
// pid for /proc and its guard kills the process synchronously.

#[derive(Debug, Clone)]
struct Options {
    warmup: usize,
    calls_single: usize,
    sessions: usize,
    calls_per_session: usize,
    start_trials: usize,
    phase_limit: Duration,
    keep_alive: bool,
    peer: PeerChoice,
}

#[derive(Debug, Clone)]
enum PeerChoice {
    Install,
    Existing(std::path::PathBuf),
    Skip,
}

const USAGE: &str = "usage: bench-mcp [--calls N] [--sessions N] [--calls-per-session N] \
[--warmup N] [--start-trials N] [--phase-limit-s S] [--no-keep-alive] [--peer-dir DIR | --no-peer]";

fn parse_args() -> Result<Options> {
    let mut opts = Options {
        warmup: 100,
        calls_single: 500,
        sessions: 16,
        calls_per_session: 200,
        start_trials: 5,
        phase_limit: Duration::from_secs(60),
        keep_alive: true,
        peer: PeerChoice::Install,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<usize> {
            let value = args
                .next()
                .with_context(|| format!("{name} needs a number"))?;
            let n: usize = value.parse().with_context(|| format!("{name} {value}"))?;
            anyhow::ensure!(n > 0, "{name} must be above 0");
            Ok(n)
        };
        match arg.as_str() {
            "--calls" => opts.calls_single = number("--calls")?,
            "--sessions" => opts.sessions = number("--sessions")?,
            "--calls-per-session" => opts.calls_per_session = number("--calls-per-session")?,
            "--warmup" => opts.warmup = number("--warmup")?,
            "--start-trials" => opts.start_trials = number("--start-trials")?,
            "--phase-limit-s" => {
                opts.phase_limit = Duration::from_secs(number("--phase-limit-s")? as u64)
            }
            "--no-keep-alive" => opts.keep_alive = false,
            "--peer-dir" => {
                opts.peer =
                    PeerChoice::Existing(args.next().context("--peer-dir needs a path")?.into())
            }
            "--no-peer" => opts.peer = PeerChoice::Skip,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    Ok(opts)
}

/// How the benchmark reaches one server's MCP.
enum Endpoint {
    /// A fresh session (own HTTP client, own connections) per [`Endpoint::open`].
    Http {
        url: String,
        token: String,
        keep_alive: bool,
        server: String,
    },
    /// The process's one stdio session; every "session" is a handle on it.
    Stdio(Client),
}

/// Handles to make calls with, and the HTTP sessions to close afterwards.
struct Sessions {
    peers: Vec<Peer<RoleClient>>,
    owned: Vec<Client>,
}

impl Sessions {
    async fn close(self) {
        for client in self.owned {
            // Closing sends DELETE, so neither server keeps the session (DOMShell never
            // reaps abandoned ones).
            let _ = tokio::time::timeout(SESSION_TIMEOUT, client.cancel()).await;
        }
    }
}

impl Endpoint {
    async fn open(&self, n: usize) -> Result<Sessions> {
        match self {
            Endpoint::Http {
                url,
                token,
                keep_alive,
                server,
            } => {
                let mut owned = Vec::with_capacity(n);
                for _ in 0..n {
                    owned.push(
                        mcp_client::connect_http(url, token, *keep_alive, server, SESSION_TIMEOUT)
                            .await?,
                    );
                }
                let peers = owned.iter().map(|c| c.peer().clone()).collect();
                Ok(Sessions { peers, owned })
            }
            Endpoint::Stdio(client) => Ok(Sessions {
                peers: vec![client.peer().clone(); n],
                owned: Vec::new(),
            }),
        }
    }
}

fn pwd_arguments() -> JsonObject {
    match json!({"command": "pwd"}) {
        serde_json::Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// Both servers answer `pwd` with `~` first (then a lane marker; DOMShell also appends a
/// deprecation notice because no `group_id` is given). Returns the reply's text length.
fn check_reply(result: &CallToolResult) -> std::result::Result<usize, String> {
    let text: String = result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.as_str())
        .collect();
    if result.is_error == Some(true) {
        return Err(format!("tool error: {text:.300}"));
    }
    if !text.starts_with('~') {
        return Err(format!("unexpected reply: {text:.300}"));
    }
    Ok(text.len())
}

async fn call_pwd(
    peer: &Peer<RoleClient>,
    args: &JsonObject,
) -> std::result::Result<usize, String> {
    let params = CallToolRequestParams::new("domshell_execute").with_arguments(args.clone());
    match tokio::time::timeout(CALL_TIMEOUT, peer.call_tool(params)).await {
        Ok(Ok(result)) => check_reply(&result),
        Ok(Err(e)) => Err(format!("call failed: {e}")),
        Err(_) => Err(format!("no reply within {CALL_TIMEOUT:?}")),
    }
}

/// One measured load phase.
#[derive(Default)]
struct Phase {
    sessions: usize,
    latencies: Vec<Duration>,
    wall: Duration,
    errors: usize,
    first_error: Option<String>,
    /// The time limit cut the phase short.
    cut: bool,
    cpu: Option<Duration>,
    rss_samples: Vec<u64>,
}

impl Phase {
    fn calls(&self) -> usize {
        self.latencies.len()
    }

    fn percentile(&self, p: f64) -> Option<Duration> {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        percentile(&sorted, p)
    }

    fn per_second(&self) -> Option<f64> {
        (self.calls() > 0 && !self.wall.is_zero())
            .then(|| self.calls() as f64 / self.wall.as_secs_f64())
    }

    fn cpu_per_call(&self) -> Option<Duration> {
        let calls = u32::try_from(self.calls()).ok().filter(|&c| c > 0)?;
        Some(self.cpu? / calls)
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Every peer makes `calls_each` sequential calls, all starting together; stops at `limit`.
async fn run_phase(
    peers: Vec<Peer<RoleClient>>,
    calls_each: usize,
    limit: Duration,
    pid: u32,
    sample_rss: bool,
) -> Phase {
    let sessions = peers.len();
    let barrier = Arc::new(tokio::sync::Barrier::new(sessions + 1));
    let args = Arc::new(pwd_arguments());
    let mut tasks = Vec::with_capacity(sessions);
    for peer in peers {
        let (barrier, args) = (barrier.clone(), args.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let deadline = Instant::now() + limit;
            let mut latencies = Vec::with_capacity(calls_each);
            let (mut errors, mut first_error, mut cut) = (0usize, None, false);
            for _ in 0..calls_each {
                if Instant::now() >= deadline {
                    cut = true;
                    break;
                }
                let started = Instant::now();
                match call_pwd(&peer, &args).await {
                    Ok(_) => latencies.push(started.elapsed()),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (latencies, errors, first_error, cut)
        }));
    }
    let (stop, sampler) = if sample_rss {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let sampler = tokio::spawn(async move {
            let mut samples = Vec::new();
            loop {
                if let Some(kib) = process::status_kib(pid, "VmRSS") {
                    samples.push(kib);
                }
                tokio::select! {
                    _ = tokio::time::sleep(RSS_SAMPLE_EVERY) => {}
                    _ = stopped.changed() => return samples,
                }
            }
        });
        (Some(stop), Some(sampler))
    } else {
        (None, None)
    };
    let cpu_before = process::cpu_time(pid);
    barrier.wait().await;
    let started = Instant::now();
    let mut phase = Phase {
        sessions,
        ..Phase::default()
    };
    for task in tasks {
        match task.await {
            Ok((latencies, errors, first_error, cut)) => {
                phase.latencies.extend(latencies);
                phase.errors += errors;
                if phase.first_error.is_none() {
                    phase.first_error = first_error;
                }
                phase.cut |= cut;
            }
            Err(e) => {
                phase.errors += 1;
                phase
                    .first_error
                    .get_or_insert(format!("load task failed: {e}"));
            }
        }
    }
    phase.wall = started.elapsed();
    phase.cpu = match (cpu_before, process::cpu_time(pid)) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    if let (Some(stop), Some(sampler)) = (stop, sampler) {
        let _ = stop.send(true);
        phase.rss_samples = sampler.await.unwrap_or_default();
    }
    phase
}

/// Everything measured for one server × transport.
struct Run {
    label: String,
    starts: Vec<Duration>,
    rss_idle_kib: Option<u64>,
    rss_peak_kib: Option<u64>,
    single: Phase,
    many: Phase,
    reply_bytes: usize,
    /// What the fake extension saw, for the record (and a sanity check).
    fake_note: String,
}

impl Run {
    fn start_median(&self) -> Option<Duration> {
        let mut sorted = self.starts.clone();
        sorted.sort();
        percentile(&sorted, 50.0)
    }

    fn errors(&self) -> usize {
        self.single.errors + self.many.errors
    }
}

/// Warm-up, then the 1-session and the many-session phase, against a started server whose
/// extension is connected.
async fn measure(
    label: &str,
    child: &mut Child,
    endpoint: &Endpoint,
    opts: &Options,
) -> Result<(Run, usize)> {
    let pid = child.pid();
    tokio::time::sleep(IDLE_SETTLE).await;
    let rss_idle_kib = process::status_kib(pid, "VmRSS");

    // Warm-up (not measured): Node compiles its hot paths, both fill their allocators. The
    // first call is retried briefly in case the extension link is not registered yet.
    let warm = endpoint.open(1).await?;
    let args = pwd_arguments();
    let deadline = Instant::now() + Duration::from_secs(5);
    let reply_bytes = loop {
        match call_pwd(&warm.peers[0], &args).await {
            Ok(bytes) => break bytes,
            Err(e) if Instant::now() >= deadline => {
                return Err(child.failure(&format!("the first call never succeeded: {e}")))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let mut calls = 1;
    for _ in 1..opts.warmup {
        call_pwd(&warm.peers[0], &args)
            .await
            .map_err(|e| child.failure(&format!("warm-up call failed: {e}")))?;
        calls += 1;
    }
    warm.close().await;

    let one = endpoint.open(1).await?;
    let single = run_phase(
        one.peers.clone(),
        opts.calls_single,
        opts.phase_limit,
        pid,
        false,
    )
    .await;
    one.close().await;
    calls += single.calls();

    let many_sessions = endpoint.open(opts.sessions).await?;
    let many = run_phase(
        many_sessions.peers.clone(),
        opts.calls_per_session,
        opts.phase_limit,
        pid,
        true,
    )
    .await;
    many_sessions.close().await;
    calls += many.calls();

    if child.exited().is_some() {
        return Err(child.failure("exited during the benchmark"));
    }
    let run = Run {
        label: label.to_string(),
        starts: Vec::new(),
        rss_idle_kib,
        rss_peak_kib: process::status_kib(pid, "VmHWM"),
        single,
        many,
        reply_bytes,
        fake_note: String::new(),
    };
    Ok((run, calls))
}

fn our_command(
    bin: &std::path::Path,
    dir: &std::path::Path,
    transport: &str,
    port: u16,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("serve")
        .args(["--transport", transport])
        .args(["--host", "127.0.0.1"])
        .args(["--ws-port", &port.to_string()])
        .args(["--token", TEST_TOKEN])
        .args(["--mcp-token", TEST_MCP_TOKEN])
        .arg("--audit-log")
        .arg(dir.join("audit.log"))
        .arg("--ready-file")
        .arg(dir.join("ready.json"));
    // Production defaults (log level, heartbeat, timeouts): the developer's own settings must
    // not leak in, and nothing may touch their config or state dirs.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DOMSHELL_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("XDG_CONFIG_HOME", dir).env("XDG_STATE_HOME", dir);
    cmd
}

/// A fresh directory per server start (audit log, ready file).
fn run_dir(root: &tempfile::TempDir, name: &str, trial: usize) -> Result<std::path::PathBuf> {
    let dir = root.path().join(format!("{name}-{trial}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

async fn connect_our_fake(port: u16) -> Result<FakeExtension> {
    let url = format!("ws://127.0.0.1:{port}{}", shared_protocol::BRIDGE_PATH);
    FakeExtension::connect(&url, FakeOptions::default())
        .await
        .context("connecting the fake extension to domshell")
}

/// Every successful call got its answer from an EXECUTE of its own, so as many EXECUTE as
/// successful calls means each reached the extension exactly once: no call was lost, none
/// sent twice. Anything else fails the benchmark.
fn ensure_each_call_reached_the_extension_once(
    server: &str,
    executes: usize,
    calls: usize,
) -> Result<()> {
    if executes != calls {
        bail!(
            "{server}: the fake extension saw {executes} EXECUTE for {calls} successful calls; every call must reach the extension exactly once"
        );
    }
    Ok(())
}

async fn fake_note_ours(fake: &FakeExtension, calls: usize) -> Result<String> {
    // SESSION_END follows the last DELETE asynchronously: give it a moment to arrive.
    tokio::time::sleep(Duration::from_millis(200)).await;
    ensure_each_call_reached_the_extension_once("domshell", fake.count("EXECUTE"), calls)?;
    Ok(format!(
        "fake extension saw {} EXECUTE for {calls} successful calls (warm-up included; each exactly once), {} SESSION_START, {} SESSION_END",
        fake.count("EXECUTE"),
        fake.count("SESSION_START"),
        fake.count("SESSION_END")
    ))
}

async fn bench_ours_http(
    opts: &Options,
    root: &tempfile::TempDir,
    http: &reqwest::Client,
) -> Result<Run> {
    let bin = server_binary()?;
    let mut starts = Vec::new();
    let mut kept = None;
    for trial in 0..opts.start_trials {
        let dir = run_dir(root, "ours-http", trial)?;
        let mut attempt = 0;
        let (child, port) = loop {
            attempt += 1;
            let port = process::free_port()?;
            let mut cmd = our_command(&bin, &dir, "http", port);
            cmd.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null());
            let started = Instant::now();
            let mut child = Child::spawn(cmd, "domshell (http)")?;
            let url = format!("http://127.0.0.1:{port}/mcp");
            match process::time_to_serving(
                &mut child,
                http,
                &url,
                TEST_MCP_TOKEN,
                started,
                START_TIMEOUT,
            )
            .await
            {
                Ok(t) => {
                    starts.push(t);
                    break (child, port);
                }
                // The port was taken between choosing and binding it.
                Err(_) if attempt < 3 && child.exited().is_some() => continue,
                Err(e) => return Err(e),
            }
        };
        // Only the last start is kept for the load; earlier ones are dropped (killed) here.
        kept = Some((child, port));
    }
    let (mut child, port) = kept.context("no start trial ran")?;
    let fake = connect_our_fake(port).await?;
    let endpoint = Endpoint::Http {
        url: format!("http://127.0.0.1:{port}/mcp"),
        token: TEST_MCP_TOKEN.into(),
        keep_alive: opts.keep_alive,
        server: "domshell".into(),
    };
    let (mut run, calls) = measure("domshell HTTP", &mut child, &endpoint, opts).await?;
    run.starts = starts;
    run.fake_note = fake_note_ours(&fake, calls).await?;
    Ok(run)
}

async fn bench_ours_stdio(opts: &Options, root: &tempfile::TempDir) -> Result<Run> {
    let bin = server_binary()?;
    let mut starts = Vec::new();
    let mut kept = None;
    for trial in 0..opts.start_trials {
        let dir = run_dir(root, "ours-stdio", trial)?;
        // Port 0: the bridge port is read back from the ready file; stdio needs no port.
        let mut cmd = our_command(&bin, &dir, "stdio", 0);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let started = Instant::now();
        let mut child = Child::spawn(cmd, "domshell (stdio)")?;
        let pipes = child.take_stdio()?;
        let client = match tokio::time::timeout(START_TIMEOUT, client_config().serve(pipes)).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return Err(child.failure(&format!("initialize over stdio failed: {e}"))),
            Err(_) => return Err(child.failure("no initialize reply over stdio")),
        };
        starts.push(started.elapsed());
        check_protocol(&client, "domshell (stdio)")?;
        kept = Some((child, client, dir));
    }
    let (mut child, client, dir) = kept.context("no start trial ran")?;
    let port = read_ready_port(&dir.join("ready.json"), &mut child).await?;
    let fake = connect_our_fake(port).await?;
    let endpoint = Endpoint::Stdio(client);
    let (mut run, calls) = measure("domshell stdio", &mut child, &endpoint, opts).await?;
    run.starts = starts;
    run.fake_note = fake_note_ours(&fake, calls).await?;
    if let Endpoint::Stdio(client) = endpoint {
        let _ = tokio::time::timeout(SESSION_TIMEOUT, client.cancel()).await;
    }
    Ok(run)
}

async fn read_ready_port(path: &std::path::Path, child: &mut Child) -> Result<u16> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            let doc: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("parsing {text:?}"))?;
            return doc["bridge_port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .with_context(|| format!("ready file without bridge_port: {text}"));
        }
        if Instant::now() >= deadline {
            return Err(child.failure("wrote no ready file"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn bench_peer(
    install: &peer::Install,
    opts: &Options,
    root: &tempfile::TempDir,
    http: &reqwest::Client,
) -> Result<Run> {
    let mut starts = Vec::new();
    let mut kept = None;
    for trial in 0..opts.start_trials {
        let dir = run_dir(root, "domshell-2.0.10", trial)?;
        let server = peer::start(install, &dir, TEST_TOKEN, &[], http).await?;
        starts.push(server.start);
        kept = Some(server);
    }
    let mut server = kept.context("no start trial ran")?;
    let fake = fake_peer::Fake::connect(server.ws_port, TEST_TOKEN).await?;
    let endpoint = Endpoint::Http {
        url: server.mcp_url(),
        token: TEST_TOKEN.into(),
        keep_alive: opts.keep_alive,
        server: "DOMShell 2.0.10".into(),
    };
    let (mut run, calls) =
        measure("DOMShell 2.0.10 HTTP", &mut server.child, &endpoint, opts).await?;
    if let Some(why) = fake.ended() {
        bail!("DOMShell's fake extension lost its socket: {why}");
    }
    run.starts = starts;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = &fake.stats;
    use std::sync::atomic::Ordering::Relaxed;
    ensure_each_call_reached_the_extension_once(
        "DOMShell 2.0.10",
        stats.executes.load(Relaxed) as usize,
        calls,
    )?;
    run.fake_note = format!(
        "fake extension saw {} EXECUTE for {calls} successful calls (warm-up included; each exactly once), {} SESSION_START, {} SESSION_END, {} other frames",
        stats.executes.load(Relaxed),
        stats.session_starts.load(Relaxed),
        stats.session_ends.load(Relaxed),
        stats.other.load(Relaxed)
    );
    Ok(run)
}

// ---- printing ----

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn median_max(samples: &[u64]) -> Option<(u64, u64)> {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    Some((*sorted.get(sorted.len() / 2)?, *sorted.last()?))
}

/// One row: a label and a value per run, plus the number the ratio is taken of.
struct Row {
    label: String,
    cells: Vec<(String, Option<f64>)>,
}

fn rows(runs: &[&Run], opts: &Options) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut row = |label: String, f: &dyn Fn(&Run) -> (String, Option<f64>)| {
        rows.push(Row {
            label,
            cells: runs.iter().map(|r| f(r)).collect(),
        });
    };
    let dash = || ("–".to_string(), None);
    row(
        format!(
            "start → first initialize answered (median of {})",
            opts.start_trials
        ),
        &|r| match r.start_median() {
            Some(d) => (ms(d), Some(d.as_secs_f64())),
            None => dash(),
        },
    );
    row(
        "RSS idle, extension connected".into(),
        &|r| match r.rss_idle_kib {
            Some(k) => (mib(k), Some(k as f64)),
            None => dash(),
        },
    );
    row(
        format!("RSS under {} sessions, median", opts.sessions),
        &|r| match median_max(&r.many.rss_samples) {
            Some((med, _)) => (mib(med), Some(med as f64)),
            None => dash(),
        },
    );
    row(
        format!("RSS under {} sessions, max", opts.sessions),
        &|r| match median_max(&r.many.rss_samples) {
            Some((_, max)) => (mib(max), Some(max as f64)),
            None => dash(),
        },
    );
    row("RSS peak (VmHWM)".into(), &|r| match r.rss_peak_kib {
        Some(k) => (mib(k), Some(k as f64)),
        None => dash(),
    });
    for (name, pick) in [
        ("1 session", (|r: &Run| &r.single) as fn(&Run) -> &Phase),
        ("N sessions", |r: &Run| &r.many),
    ] {
        let title = if name == "N sessions" {
            format!("{} sessions", opts.sessions)
        } else {
            name.to_string()
        };
        row(
            format!("{title}: latency p50"),
            &|r| match pick(r).percentile(50.0) {
                Some(d) => (ms(d), Some(d.as_secs_f64())),
                None => dash(),
            },
        );
        row(
            format!("{title}: latency p99"),
            &|r| match pick(r).percentile(99.0) {
                Some(d) => (ms(d), Some(d.as_secs_f64())),
                None => dash(),
            },
        );
        row(
            format!("{title}: calls/s"),
            &|r| match pick(r).per_second() {
                Some(v) => (format!("{v:.0}"), Some(v)),
                None => dash(),
            },
        );
        row(
            format!("{title}: server CPU per call"),
            &|r| match pick(r).cpu_per_call() {
                Some(d) => (us(d), Some(d.as_secs_f64())),
                None => dash(),
            },
        );
    }
    rows
}

fn ratio(ours: Option<f64>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 => {
            let r = a / b;
            if r >= 10.0 {
                format!("{r:.0}×")
            } else if r >= 0.1 {
                format!("{r:.2}×")
            } else {
                format!("{r:.3}×")
            }
        }
        _ => "–".into(),
    }
}

fn print_tables(runs: &[&Run], peer: Option<&Run>, opts: &Options) {
    let mut all: Vec<&Run> = runs.to_vec();
    all.extend(peer);
    let table = rows(&all, opts);
    let width = table
        .iter()
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(10)
        + 2;
    let col = 22;
    println!();
    let mut header = format!("{:<width$}", "measure");
    for run in &all {
        header += &format!("{:>col$}", run.label);
    }
    if peer.is_some() {
        for run in runs {
            header += &format!("{:>col$}", format!("{} / D", short(&run.label)));
        }
    }
    println!("{header}");
    println!("{}", "-".repeat(header.chars().count()));
    for row in &table {
        let mut line = format!("{:<width$}", row.label);
        for (text, _) in &row.cells {
            line += &format!("{text:>col$}");
        }
        if peer.is_some() {
            let theirs = row.cells.last().and_then(|c| c.1);
            for (i, _) in runs.iter().enumerate() {
                line += &format!("{:>col$}", ratio(row.cells[i].1, theirs));
            }
        }
        println!("{line}");
    }
    if peer.is_some() {
        println!(
            "(D = DOMShell 2.0.10 over HTTP. Ratios are ours / theirs: below 1 is better for times, \
             memory and CPU; above 1 is better for calls/s. DOMShell has no stdio transport, so \
             its HTTP figures are the reference for both of ours.)"
        );
    }
    println!(
        "(stdio carries one MCP session per process: its \"{n} sessions\" rows are {n} concurrent \
         callers on that session. Server CPU is read from /proc in 10 ms ticks.)",
        n = opts.sessions
    );

    // Markdown for the README.
    println!();
    println!("Summary (markdown):");
    println!();
    let mut head = "| measure |".to_string();
    let mut rule = "| --- |".to_string();
    for run in &all {
        head += &format!(" {} |", run.label);
        rule += " ---: |";
    }
    if peer.is_some() {
        for run in runs {
            head += &format!(" {} ÷ DOMShell |", short(&run.label));
            rule += " ---: |";
        }
    }
    println!("{head}\n{rule}");
    for row in &table {
        let mut line = format!("| {} |", row.label);
        for (text, _) in &row.cells {
            line += &format!(" {text} |");
        }
        if peer.is_some() {
            let theirs = row.cells.last().and_then(|c| c.1);
            for (i, _) in runs.iter().enumerate() {
                line += &format!(" {} |", ratio(row.cells[i].1, theirs));
            }
        }
        println!("{line}");
    }
}

fn short(label: &str) -> &str {
    label.strip_prefix("domshell ").unwrap_or(label)
}

fn print_run_details(run: &Run) {
    let starts: Vec<String> = run.starts.iter().map(|d| ms(*d)).collect();
    println!("{}:", run.label);
    println!("  starts: {}", starts.join(", "));
    for phase in [&run.single, &run.many] {
        println!(
            "  {} session(s): {} calls in {}, max {}{}{}",
            phase.sessions,
            phase.calls(),
            ms(phase.wall),
            phase
                .percentile(100.0)
                .map(ms)
                .unwrap_or_else(|| "–".into()),
            if phase.cut {
                " (cut at the time limit)"
            } else {
                ""
            },
            if phase.errors > 0 {
                format!(
                    ", {} FAILED calls, first: {}",
                    phase.errors,
                    phase.first_error.as_deref().unwrap_or("?")
                )
            } else {
                String::new()
            }
        );
    }
    println!("  reply text: {} bytes; {}", run.reply_bytes, run.fake_note);
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| first_line(&String::from_utf8_lossy(&out.stdout)))
}

fn print_environment(opts: &Options) -> Result<()> {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "?".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    let bin = server_binary()?;
    let ours =
        command_output(&bin.display().to_string(), &["--version"]).unwrap_or_else(|| "?".into());
    println!("MCP round-trip benchmark: tools/call domshell_execute {{\"command\":\"pwd\"}} → reply, fake extension answering at once, all on 127.0.0.1");
    println!("machine: {cpus} CPUs ({model}), Linux {kernel}; load generator and servers share these CPUs");
    println!("domshell: {ours} ({})", bin.display());
    println!(
        "client: rmcp 3.9.0, protocol {PROTOCOL_VERSION} for every server, HTTP keep-alive {}",
        if opts.keep_alive {
            "on"
        } else {
            "off (a connection per POST)"
        }
    );
    println!(
        "load: warm-up {} calls; 1 session × {} calls; {} sessions × {} calls in parallel (stdio: {} callers on its one session); ≤ {} s per phase",
        opts.warmup,
        opts.calls_single,
        opts.sessions,
        opts.calls_per_session,
        opts.sessions,
        opts.phase_limit.as_secs()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    // On Ctrl-C the benchmark future is dropped, so every process guard still kills its child
    // (a plain exit on the signal would leave the HTTP servers running).
    tokio::select! {
        result = bench() => result,
        _ = process::interrupted() => bail!("interrupted; every server started was stopped"),
    }
}

async fn bench() -> Result<()> {
    let opts = parse_args()?;
    print_environment(&opts)?;
    let install = match &opts.peer {
        PeerChoice::Skip => None,
        PeerChoice::Install => Some(peer::Install::get(None).await?),
        PeerChoice::Existing(dir) => Some(peer::Install::get(Some(dir.clone())).await?),
    };
    match &install {
        Some(install) => {
            let resolved: Vec<String> = install
                .resolved
                .iter()
                .map(|(n, v)| format!("{n} {v}"))
                .collect();
            println!(
                "DOMShell: {} (node {}, npm {}); HTTP only (no stdio transport; stdio hosts go through its domshell-proxy)",
                resolved.join(", "),
                install.node_version,
                install.npm_version
            );
        }
        None => println!("DOMShell: skipped (--no-peer)"),
    }

    let root = tempfile::Builder::new()
        .prefix("domshell-bench-mcp-")
        .tempdir()
        .context("creating the benchmark's temp dir")?;
    // The readiness probe's client: no proxies, loopback only.
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("building the probe's HTTP client")?;

    eprintln!("bench-mcp: domshell over HTTP…");
    let ours_http = bench_ours_http(&opts, &root, &http).await?;
    eprintln!("bench-mcp: domshell over stdio…");
    let ours_stdio = bench_ours_stdio(&opts, &root).await?;
    let theirs = match &install {
        Some(install) => {
            eprintln!("bench-mcp: DOMShell 2.0.10 over HTTP…");
            Some(bench_peer(install, &opts, &root, &http).await?)
        }
        None => None,
    };

    println!();
    for run in [&ours_http, &ours_stdio].into_iter().chain(theirs.as_ref()) {
        print_run_details(run);
    }
    print_tables(&[&ours_http, &ours_stdio], theirs.as_ref(), &opts);

    let failed: usize = [&ours_http, &ours_stdio]
        .into_iter()
        .chain(theirs.as_ref())
        .map(Run::errors)
        .sum();
    if failed > 0 {
        bail!("{failed} calls failed (see above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_or_repeated_call_fails_the_benchmark() {
        assert!(ensure_each_call_reached_the_extension_once("x", 3800, 3800).is_ok());
        assert!(ensure_each_call_reached_the_extension_once("x", 3799, 3800).is_err());
        let err = ensure_each_call_reached_the_extension_once("x", 3801, 3800).unwrap_err();
        assert!(err.to_string().contains("exactly once"), "{err}");
    }
}
