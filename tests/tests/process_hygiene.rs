//! A server started by an MCP host does not outlive it and does not hold the port while
//! wedged: a stdio server (owner or relay) exits when the process that started it dies even
//! though its stdin stays open, and an owner whose runtime stalls exits with status 70 on its
//! own, freeing the port for a contender.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use domshell_tests::server::server_binary;
use domshell_tests::{ServerOptions, ServerProcess, TEST_TOKEN};

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("an ephemeral port");
    listener.local_addr().expect("its address").port()
}

/// A process that exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done()
}

/// A host stand-in: `sh` starts the stdio server in the background with the shell's own
/// stdin (a pipe the test keeps open), prints its pid and waits. Killing the shell is the
/// host dying while the server's stdin stays open. (A background job of a non-interactive
/// shell reads /dev/null, so the pipe is handed over on fd 3.)
struct HostShell {
    shell: Child,
    server_pid: u32,
    /// The server's stdin (the shell's, inherited): held open for the whole test.
    stdin: Option<std::process::ChildStdin>,
    /// The server's stdout (the shell's, inherited), kept open as a host would.
    _stdout: BufReader<std::process::ChildStdout>,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl HostShell {
    fn start(port: u16) -> HostShell {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(r#"exec 3<&0; "$0" "$@" <&3 3<&- 2>"$DOMSHELL_TEST_LOG" & echo $!; while :; do sleep 1; done"#)
            .arg(server_binary().expect("server binary"))
            .args([
                "serve",
                "--ws-port",
                &port.to_string(),
                "--token",
                TEST_TOKEN,
                "--no-audit",
            ])
            .env("DOMSHELL_TEST_LOG", &log)
            .env("XDG_CONFIG_HOME", dir.path())
            .env("XDG_STATE_HOME", dir.path())
            .env("DOMSHELL_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sh starts");
        let mut line = String::new();
        let mut stdout = BufReader::new(shell.stdout.take().expect("sh stdout"));
        stdout
            .read_line(&mut line)
            .expect("sh prints the server pid");
        let server_pid = line.trim().parse().expect("a pid");
        let stdin = shell.stdin.take();
        HostShell {
            shell,
            server_pid,
            stdin,
            _stdout: stdout,
            log,
            _dir: dir,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for HostShell {
    fn drop(&mut self) {
        let _ = self.shell.kill();
        let _ = self.shell.wait();
        if alive(self.server_pid) {
            // SAFETY: kill(2) on the server this test started; a lingering server is a
            // failure the test reports, this only keeps it from outliving the test.
            unsafe { libc::kill(self.server_pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

async fn exits_with_its_host(host: HostShell, ready: &str) {
    assert!(
        wait_until(Duration::from_secs(15), || host.log_text().contains(ready)).await,
        "the server did not get ready ({ready:?}):\n{}",
        host.log_text()
    );
    let mut host = host;
    host.shell.kill().expect("SIGKILL the host");
    host.shell.wait().expect("reap the host");
    // The pipe to the server's stdin is still open: the test holds its write end.
    assert!(host.stdin.is_some());
    let pid = host.server_pid;
    assert!(
        wait_until(Duration::from_secs(10), || !alive(pid)).await,
        "the server outlived its host:\n{}",
        host.log_text()
    );
    assert!(
        host.log_text().contains("is gone: shutting down"),
        "{}",
        host.log_text()
    );
}

#[tokio::test]
async fn an_owner_exits_when_its_host_dies_with_stdin_still_open() {
    let port = free_port();
    exits_with_its_host(HostShell::start(port), "listening on").await;
}

#[tokio::test]
async fn a_relay_exits_when_its_host_dies_with_stdin_still_open() {
    let owner = ServerProcess::start(ServerOptions::default())
        .await
        .expect("owner starts");
    exits_with_its_host(HostShell::start(owner.port()), "relay backend").await;
}

#[tokio::test]
async fn a_wedged_owner_exits_by_itself_and_frees_the_port() {
    let mut owner = ServerProcess::start(ServerOptions {
        extra_args: vec![
            "--watchdog-ms".into(),
            "1000".into(),
            "--stall-runtime-after-ms".into(),
            "1500".into(),
        ],
        ..Default::default()
    })
    .await
    .expect("owner starts");
    let port = owner.port();
    assert!(
        wait_until(Duration::from_secs(15), || !owner.is_running()).await,
        "the wedged owner is still running:\n{}",
        owner.stderr_tail(20)
    );
    let status = owner.kill().expect("exit status");
    assert_eq!(status.code(), Some(70), "{}", owner.stderr_tail(20));
    assert!(
        owner.stderr_text().contains("has not run for"),
        "{}",
        owner.stderr_tail(20)
    );
    // The port is free for the next server.
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port was freed");
}
