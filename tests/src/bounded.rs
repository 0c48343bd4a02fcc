//! Run a helper program to completion under a deadline: installers (`python3 -m venv`, pip,
//! npm) and one-shot tools (the Python MCP driver, the Node conformance CLI).
//!
//! It owns the child and every process the child started: on timeout, or when the future is
//! dropped mid-run (a panicking or cancelled test), the whole process tree is SIGKILLed, so a
//! helper's own children (e.g. a stdio MCP server the Python SDK spawned in a new session) do
//! not outlive the test. It must not be used for long-lived peers (see [`crate::server`]) and
//! must not interpret the output: callers do.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// How long to keep reading a finished (or killed) child's stdout/stderr: a grandchild that
/// escaped the tree kill may still hold the pipe, and we must not wait on it forever.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// How much of each stream a timeout/failure message quotes.
const TAIL_BYTES: usize = 4_000;

type Buffer = Arc<Mutex<Vec<u8>>>;

fn take(buffer: &Buffer) -> Vec<u8> {
    std::mem::take(&mut *buffer.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The last `TAIL_BYTES` of `bytes` as text, for error messages.
pub fn tail(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(TAIL_BYTES);
    let text = String::from_utf8_lossy(&bytes[start..]);
    if start > 0 {
        format!("…{text}")
    } else {
        text.into_owned()
    }
}

/// Every live descendant of `root` (children, grandchildren, …), found through /proc. Must be
/// called while `root` is still alive: a process that exits hands its children to init.
fn descendants(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may contain spaces and parentheses, so parse after
        // the last ')'.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        if let Some(ppid) = after
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u32>().ok())
        {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            found.push(child);
            queue.push(child);
        }
    }
    found
}

/// SIGKILL `root` and all its descendants. Returns how many processes were signalled.
///
/// `root` must be our own child that has not been reaped yet, so its pid cannot have been
/// reused; descendants are signalled right after they are listed.
pub fn kill_tree(root: u32) -> usize {
    let mut pids = descendants(root);
    pids.push(root);
    let mut signalled = 0;
    for pid in pids {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            continue;
        };
        // SAFETY: plain kill(2); see the function's contract for why the pids are ours.
        if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
            signalled += 1;
        }
    }
    signalled
}

/// Kills the tree of a child that was not reaped yet when it is dropped armed.
struct TreeGuard {
    pid: Option<u32>,
}

impl TreeGuard {
    /// The child was reaped: its pid may be reused from now on, so never signal it.
    fn disarm(&mut self) {
        self.pid = None;
    }
}

impl Drop for TreeGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            kill_tree(pid);
        }
    }
}

fn spawn_reader<R: AsyncRead + Unpin + Send + 'static>(
    mut stream: R,
    into: Buffer,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => into
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&chunk[..n]),
            }
        }
    })
}

async fn drain(readers: Vec<tokio::task::JoinHandle<()>>) {
    for reader in readers {
        let abort = reader.abort_handle();
        if tokio::time::timeout(DRAIN_GRACE, reader).await.is_err() {
            abort.abort();
        }
    }
}

/// Run `cmd` to completion, feeding it `stdin` (or /dev/null), for at most `timeout`.
///
/// Returns the output whatever the exit status (callers judge it). On timeout the process
/// tree is killed and the error quotes the tail of what it printed. `what` names the program
/// in error messages.
pub async fn run(
    mut cmd: tokio::process::Command,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    what: &str,
) -> anyhow::Result<Output> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    // Backstop for the direct child; the guard below handles its descendants.
    .kill_on_drop(true);
    let mut child = cmd.spawn().with_context(|| format!("spawning {what}"))?;
    let mut guard = TreeGuard { pid: child.id() };

    let stdout: Buffer = Arc::default();
    let stderr: Buffer = Arc::default();
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(spawn_reader(out, stdout.clone()));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(spawn_reader(err, stderr.clone()));
    }
    if let (Some(mut pipe), Some(input)) = (child.stdin.take(), stdin) {
        // A child that exits without reading all of its input makes this fail; that is the
        // child's business and shows in its exit status, so the error is ignored.
        tokio::spawn(async move {
            let _ = pipe.write_all(&input).await;
            let _ = pipe.shutdown().await;
        });
    }

    let waited = tokio::time::timeout(timeout, child.wait()).await;
    let status = match waited {
        Ok(status) => {
            guard.disarm();
            status.with_context(|| format!("waiting for {what}"))?
        }
        Err(_) => {
            let killed = guard.pid.take().map(kill_tree).unwrap_or(0);
            let _ = child.wait().await;
            drain(readers).await;
            bail!(
                "{what} did not finish within {timeout:?}; killed its process tree ({killed} processes)\n\
                 --- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
                tail(&take(&stdout)),
                tail(&take(&stderr)),
            );
        }
    };
    drain(readers).await;
    Ok(Output {
        status,
        stdout: take(&stdout),
        stderr: take(&stderr),
    })
}

/// The blocking twin of [`run`] (no stdin), for one-time installs done outside any runtime.
pub fn run_blocking(
    mut cmd: std::process::Command,
    timeout: Duration,
    what: &str,
) -> anyhow::Result<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("spawning {what}"))?;
    let mut guard = TreeGuard {
        pid: Some(child.id()),
    };

    let stdout: Buffer = Arc::default();
    let stderr: Buffer = Arc::default();
    let mut readers = Vec::new();
    fn reader<R: Read + Send + 'static>(
        mut stream: R,
        into: Buffer,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => into
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend_from_slice(&chunk[..n]),
                }
            }
        })
    }
    if let Some(out) = child.stdout.take() {
        readers.push(reader(out, stdout.clone()));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(reader(err, stderr.clone()));
    }

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                guard.disarm();
                break status;
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let killed = guard.pid.take().map(kill_tree).unwrap_or(0);
                let _ = child.wait();
                let grace = Instant::now() + DRAIN_GRACE;
                while readers.iter().any(|r| !r.is_finished()) && Instant::now() < grace {
                    std::thread::sleep(Duration::from_millis(20));
                }
                bail!(
                    "{what} did not finish within {timeout:?}; killed its process tree ({killed} processes)\n\
                     --- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
                    tail(&take(&stdout)),
                    tail(&take(&stderr)),
                );
            }
            Err(e) => {
                // The guard kills the tree on the way out.
                return Err(e).with_context(|| format!("waiting for {what}"));
            }
        }
    };
    // Bounded wait for the readers: a grandchild that escaped may hold the pipes open.
    let grace = Instant::now() + DRAIN_GRACE;
    while readers.iter().any(|r| !r.is_finished()) && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(Output {
        status,
        stdout: take(&stdout),
        stderr: take(&stderr),
    })
}

/// `cmd`'s output as an error message: exit status plus the tails of stdout and stderr.
pub fn describe_failure(what: &str, output: &Output) -> String {
    format!(
        "{what} failed ({})\n--- stdout (tail) ---\n{}\n--- stderr (tail) ---\n{}",
        output.status,
        tail(&output.stdout),
        tail(&output.stderr),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn run_captures_output_and_feeds_stdin() {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "cat; echo err >&2; exit 3"]);
        let out = run(cmd, Some(b"hello".to_vec()), Duration::from_secs(10), "sh")
            .await
            .unwrap();
        assert_eq!(out.stdout, b"hello");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
    }

    #[tokio::test]
    async fn run_kills_the_whole_tree_on_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        // The grandchild runs in its own session (setsid), as the Python SDK starts stdio
        // servers, so only the /proc walk can find it.
        let script = format!(
            "setsid sh -c 'echo $$ > {}; exec sleep 60' & echo started; sleep 60",
            pidfile.display()
        );
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", &script]);
        let err = run(cmd, None, Duration::from_millis(500), "sleeper")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("did not finish"), "{err}");
        assert!(err.contains("started"), "{err}");
        let pid: libc::pid_t = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild was SIGKILLed; give the kernel a moment to deliver it.
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Gone, or a zombie waiting for init to reap it.
            state.is_empty()
                || state
                    .rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z'))
        });
        assert!(gone, "grandchild {pid} survived the tree kill");
    }

    #[test]
    fn run_blocking_times_out() {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", "echo partial; sleep 60"]);
        let err = run_blocking(cmd, Duration::from_millis(300), "sleeper")
            .unwrap_err()
            .to_string();
        assert!(err.contains("partial"), "{err}");
    }
}
