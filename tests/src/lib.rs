//! Test harness for domshell's integration and end-to-end tests: the real server binary as a
//! child process ([`server`]), a scriptable stand-in for the browser extension
//! ([`fake_extension`]), a TCP fault injector ([`fault_proxy`]) and real headless Chromium
//! driven over CDP ([`chromium`]).
//!
//! It owns process and socket lifecycles for tests: everything it starts is stopped when the
//! owning handle is dropped. It must not talk to anything but 127.0.0.1, and it must not skip
//! a test when a dependency is missing: it fails with a message saying what to install.

pub mod bench;
pub mod bounded;
pub mod chromium;
pub mod conformance;
pub mod container;
pub mod domshell_peer;
pub mod fake_extension;
pub mod fault_proxy;
pub mod html_server;
pub mod install;
pub mod mcp_client;
pub mod npm;
pub mod page_rig;
pub mod playwright_peer;
pub mod process;
pub mod python;
pub mod raw_mcp;
pub mod replica_sites;
pub mod server;
pub mod shell_rig;
pub mod workspace;

use std::future::Future;
use std::time::Duration;

pub use chromium::{CdpClient, Chromium, Target};
pub use fake_extension::{
    ConnectError, ExecuteCall, FakeExtension, FakeOptions, HandshakeRefused, Reply, ServerNotProven,
};
pub use fault_proxy::{Direction, FaultProxy};
pub use page_rig::PageRig;
pub use server::{ServerOptions, ServerProcess, TEST_MCP_TOKEN, TEST_TOKEN};
pub use workspace::{target_dir, workspace_root};

/// Remove ANSI escape sequences (colours some CLIs and DOMShell put in their output).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte in '@'..='~'.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Something a polled condition returns: `Some`/`Ok` means done, `None`/`Err` means "not yet"
/// (the error text is kept for the timeout message).
pub trait Attempt<T> {
    fn into_attempt(self) -> Result<T, String>;
}

impl<T> Attempt<T> for Option<T> {
    fn into_attempt(self) -> Result<T, String> {
        self.ok_or_else(|| "condition not met".to_string())
    }
}

impl<T, E: std::fmt::Display> Attempt<T> for Result<T, E> {
    fn into_attempt(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Call `f` every `interval` until it yields `Some`/`Ok`, for at most `timeout`. The error
/// carries the last "not yet" reason, so a failing test says what it was waiting for.
pub async fn eventually<F, Fut, R, T>(
    timeout: Duration,
    interval: Duration,
    mut f: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = R>,
    R: Attempt<T>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let last = match f().await.into_attempt() {
            Ok(value) => return Ok(value),
            Err(why) => why,
        };
        if tokio::time::Instant::now() + interval > deadline {
            anyhow::bail!("not satisfied within {timeout:?} ({attempts} attempts); last: {last}");
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn eventually_returns_the_first_success() {
        let calls = AtomicU32::new(0);
        let got = eventually(Duration::from_secs(1), Duration::from_millis(1), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            (n >= 3).then_some(n)
        })
        .await
        .unwrap();
        assert_eq!(got, 3);
    }

    #[tokio::test]
    async fn eventually_times_out_with_the_last_reason() {
        let err = eventually(
            Duration::from_millis(50),
            Duration::from_millis(10),
            || async { Err::<(), _>("still waiting for X") },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("still waiting for X"), "{err}");
    }
}
