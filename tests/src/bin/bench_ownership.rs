//! `cargo xtask bench-ownership [--trials N]`: many hosts on one bridge port, measured with
//! the real server, stdio hosts driven by a minimal line-based JSON-RPC client, and the fake
//! extension standing in for the browser.
//!
//! Per trial:
//! - takeover: an owner with a fake extension and two attached stdio hosts, each with a call in
//!   flight, is SIGKILLed; the benchmark records the time until a new owner answers `/health`,
//!   until the (redialing) extension is connected again, until each host's first successful
//!   call, and the in-flight calls that never got an answer (must be 0);
//! - spawn storm: ten stdio servers started at once on a fresh port (plus three killed within
//!   200 ms of their start); it counts the processes that say they own the port (must be 1).
//!
//! It prints figures; it asserts nothing about speed.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use domshell_tests::server::server_binary;
use domshell_tests::{FakeExtension, FakeOptions, ServerOptions, ServerProcess, TEST_TOKEN};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

const STORM_HOSTS: usize = 10;
const STORM_SHORT_LIVED: usize = 3;
const ANSWER_BOUND: Duration = Duration::from_secs(15);

/// A stdio `domshell serve` as an MCP host runs it, with a line-based JSON-RPC client.
struct Host {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    next_id: u64,
}

impl Host {
    /// A host's server in `dir`; every server of one trial shares the relay key in `key`.
    fn spawn(port: u16, dir: &std::path::Path, key: &std::path::Path) -> Result<Host> {
        let mut child = Command::new(server_binary()?)
            .args([
                "serve",
                "--ws-port",
                &port.to_string(),
                "--token",
                TEST_TOKEN,
                "--connect-grace-ms",
                "3000",
                "--no-audit",
            ])
            .arg("--relay-key-file")
            .arg(key)
            .env("XDG_CONFIG_HOME", dir)
            .env("XDG_STATE_HOME", dir)
            .env("DOMSHELL_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting a stdio server")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    if tx.send(value).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Host {
            child,
            stdin,
            lines,
            next_id: 0,
        })
    }

    async fn send(&mut self, message: Value) -> Result<()> {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await?;
        Ok(self.stdin.flush().await?)
    }

    /// Send a request; return its id.
    async fn request(&mut self, method: &str, params: Value) -> Result<u64> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        Ok(id)
    }

    /// The answer to request `id`, skipping notifications; `None` past `bound`.
    async fn answer(&mut self, id: u64, bound: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let message = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .ok()??;
            if message.get("id") == Some(&json!(id)) {
                return Some(message);
            }
        }
    }

    async fn initialize(&mut self) -> Result<()> {
        let id = self
            .request(
                "initialize",
                json!({"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "bench-ownership", "version": "0"}}),
            )
            .await?;
        self.answer(id, ANSWER_BOUND)
            .await
            .context("no answer to initialize")?;
        self.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await
    }

    async fn call(&mut self, tool: &str, arguments: Value) -> Result<u64> {
        self.request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await
    }
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

struct TakeoverTrial {
    takeover: Duration,
    extension_back: Duration,
    first_call: [Duration; 2],
    unanswered: usize,
}

async fn takeover_trial(dir: &std::path::Path) -> Result<TakeoverTrial> {
    let key = dir.join("relay-key");
    let mut owner = ServerProcess::start(ServerOptions {
        connect_grace_ms: Some(3_000),
        relay_key_file: Some(key.clone()),
        ..Default::default()
    })
    .await?;
    let port = owner.port();
    let fake = FakeExtension::connect(&owner.bridge_url(), FakeOptions::default()).await?;
    owner
        .wait_for_link_state("connected", Duration::from_secs(5))
        .await?;
    let mut hosts = Vec::new();
    for i in 0..2 {
        let mut host = Host::spawn(port, &dir.join(format!("host{i}")), &key)?;
        host.initialize().await?;
        let id = host
            .call(
                "domshell_execute",
                json!({"command": format!("sleep 3000{i}")}),
            )
            .await?;
        hosts.push((host, id));
    }
    for i in 0..2 {
        let wanted = format!("sleep 3000{i}");
        fake.wait_for_frame(
            move |f| matches!(f, shared_protocol::frame::Frame::Execute { command, .. } if *command == wanted),
            Duration::from_secs(15),
        )
        .await?;
    }
    let killed = owner.pid();
    owner.kill()?;
    let killed_at = Instant::now();

    // Each host: its in-flight call answered, then new calls until one succeeds.
    let mut tasks = Vec::new();
    for (mut host, in_flight) in hosts {
        tasks.push(tokio::spawn(async move {
            let answered = host.answer(in_flight, ANSWER_BOUND).await.is_some();
            let mut first_ok = None;
            for _ in 0..400 {
                let Ok(id) = host
                    .call("domshell_execute", json!({"command": "echo back"}))
                    .await
                else {
                    break;
                };
                if let Some(answer) = host.answer(id, ANSWER_BOUND).await {
                    if answer.pointer("/result/isError") == Some(&json!(false)) {
                        first_ok = Some(killed_at.elapsed());
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (answered, first_ok, host)
        }));
    }
    let http = reqwest::Client::builder().no_proxy().build()?;
    let health = format!("http://127.0.0.1:{port}/health");
    let mut takeover = None;
    while killed_at.elapsed() < ANSWER_BOUND {
        if let Ok(response) = http
            .get(&health)
            .timeout(Duration::from_millis(500))
            .send()
            .await
        {
            if let Ok(body) = response.json::<Value>().await {
                if body["pid"].as_u64().is_some_and(|p| p != u64::from(killed))
                    && body["state"] == "ready"
                {
                    takeover = Some(killed_at.elapsed());
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let takeover = takeover.context("no new owner answered /health")?;
    let bridge = format!("ws://127.0.0.1:{port}/bridge");
    let mut extension = None;
    while killed_at.elapsed() < ANSWER_BOUND {
        if let Ok(fake) = FakeExtension::connect(&bridge, FakeOptions::default()).await {
            extension = Some((killed_at.elapsed(), fake));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (extension_back, _fake2) = extension.context("the extension did not reconnect")?;
    let mut unanswered = 0;
    let mut first_call = [Duration::ZERO; 2];
    let mut survivors = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let (answered, first_ok, host) = task.await?;
        if !answered {
            unanswered += 1;
        }
        first_call[i] = first_ok.context("a host never got a successful call")?;
        survivors.push(host);
    }
    for mut host in survivors {
        // Closing stdin ends a stdio server (the new owner included).
        drop(host.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(10), host.child.wait()).await;
        let _ = host.child.kill().await;
    }
    Ok(TakeoverTrial {
        takeover,
        extension_back,
        first_call,
        unanswered,
    })
}

/// Owners seen in one spawn storm (1 is right), and how long until every host had its status.
async fn storm_trial(dir: &std::path::Path) -> Result<(usize, Duration)> {
    let port = free_port()?;
    let key = dir.join("relay-key");
    let started = Instant::now();
    let mut short_lived = Vec::new();
    for i in 0..STORM_SHORT_LIVED {
        short_lived.push(Host::spawn(port, &dir.join(format!("short{i}")), &key)?);
    }
    let mut hosts = Vec::new();
    for i in 0..STORM_HOSTS {
        hosts.push(Host::spawn(port, &dir.join(format!("storm{i}")), &key)?);
    }
    for (i, mut host) in short_lived.into_iter().enumerate() {
        let due = started + Duration::from_millis(40 + 60 * i as u64);
        tokio::time::sleep_until(due.into()).await;
        let _ = host.child.kill().await;
    }
    let mut tasks = Vec::new();
    for mut host in hosts {
        tasks.push(tokio::spawn(async move {
            host.initialize().await?;
            let id = host.call("domshell_status", json!({})).await?;
            let answer = host
                .answer(id, ANSWER_BOUND)
                .await
                .context("no status answer")?;
            anyhow::Ok((answer, host))
        }));
    }
    let mut statuses = Vec::new();
    let mut done = Vec::new();
    for task in tasks {
        let (answer, host) = task.await??;
        statuses.push(answer);
        done.push(host);
    }
    let settled = started.elapsed();
    // Ask again once all are in: the first answers may predate a short-lived owner's death.
    let mut owners = std::collections::BTreeSet::new();
    for host in &mut done {
        let id = host.call("domshell_status", json!({})).await?;
        let answer = host
            .answer(id, ANSWER_BOUND)
            .await
            .context("no status answer")?;
        let status = &answer["result"]["structuredContent"];
        let this = &status["this_process"];
        let (role, pid) = if this.is_object() {
            (this["role"].clone(), this["pid"].clone())
        } else {
            (status["role"].clone(), status["pid"].clone())
        };
        if role == "owner" {
            owners.insert(pid.to_string());
        }
    }
    for mut host in done {
        drop(host.stdin);
        let _ = tokio::time::timeout(Duration::from_secs(10), host.child.wait()).await;
        let _ = host.child.kill().await;
    }
    Ok((owners.len(), settled))
}

fn stats(values: &[Duration]) -> String {
    let mut ms: Vec<f64> = values.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    if ms.is_empty() {
        return "-".into();
    }
    let median = ms[ms.len() / 2];
    format!("{:>8.0} {:>8.0} {:>8.0}", ms[0], median, ms[ms.len() - 1])
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut trials = 10usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--trials" => {
                trials = args
                    .next()
                    .context("--trials needs a number")?
                    .parse()
                    .context("--trials")?
            }
            other => bail!("unknown argument {other}; usage: bench-ownership [--trials N]"),
        }
    }
    println!(
        "ownership benchmark: {trials} trials; takeover with 2 attached hosts, 1 call in flight each; spawn storm of {STORM_HOSTS} hosts + {STORM_SHORT_LIVED} killed within 200 ms"
    );
    let (mut takeover, mut back, mut first) = (Vec::new(), Vec::new(), Vec::new());
    let (mut unanswered, mut duplicate_owners, mut storms) = (0usize, 0usize, Vec::new());
    for i in 0..trials {
        let dir = tempfile::tempdir()?;
        let trial = takeover_trial(dir.path())
            .await
            .with_context(|| format!("takeover trial {i}"))?;
        takeover.push(trial.takeover);
        back.push(trial.extension_back);
        first.extend(trial.first_call);
        unanswered += trial.unanswered;
        let (owners, settled) = storm_trial(dir.path())
            .await
            .with_context(|| format!("storm trial {i}"))?;
        duplicate_owners += owners.saturating_sub(1);
        if owners == 0 {
            bail!("storm trial {i}: no process says it owns the port");
        }
        storms.push(settled);
        eprintln!(
            "trial {i}: takeover {:?}, extension back {:?}, first calls {:?}, unanswered {}, owners in storm {owners}",
            trial.takeover, trial.extension_back, trial.first_call, trial.unanswered
        );
    }
    println!(
        "{:<44} {:>8} {:>8} {:>8}",
        "figure (ms)", "min", "median", "max"
    );
    println!(
        "{:<44} {}",
        "takeover after owner SIGKILL",
        stats(&takeover)
    );
    println!("{:<44} {}", "extension back on the new owner", stats(&back));
    println!(
        "{:<44} {}",
        "first successful call, each surviving host",
        stats(&first)
    );
    println!(
        "{:<44} {}",
        "spawn storm: every host has its status",
        stats(&storms)
    );
    println!("calls left unanswered: {unanswered}");
    println!("duplicate owners during spawn storms: {duplicate_owners}");
    Ok(())
}
