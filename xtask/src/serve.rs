//! `cargo xtask run`'s last step: the server as a child that never outlives xtask.
//!
//! It owns the child `domshell serve` and the SIGINT/SIGTERM handling while it runs: a signal
//! to xtask is forwarded to the server (which shuts down gracefully on either), the server is
//! waited for at most [`STOP_GRACE`], killed if it is still there, and xtask then dies of the
//! same signal, so whoever signalled it sees the usual status. It must not install its
//! handlers before the server is started (a signal during the build ends xtask as usual) and
//! must not leave the server running on any path out of it.

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long the server may take to stop after the forwarded signal (its own grace is 2 s).
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often the child and the signal flag are looked at.
const POLL: Duration = Duration::from_millis(50);

/// Run `cmd` to its end, forwarding SIGINT and SIGTERM to it; `what` names it in errors.
pub fn run_owned(mut cmd: Command, what: &str) -> Result<()> {
    signals::install().context("installing the SIGINT/SIGTERM handlers")?;
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let status = supervise(&mut child, what);
    // Whatever went wrong above, the child is gone when this returns.
    if !matches!(child.try_wait(), Ok(Some(_))) {
        let _ = child.kill();
        let _ = child.wait();
    }
    match status? {
        Ended::Exited(status) if status.success() => Ok(()),
        Ended::Exited(status) => bail!("{what} failed ({status})"),
        Ended::Signalled(signal) => signals::die_of(signal),
    }
}

enum Ended {
    /// The child ended on its own.
    Exited(ExitStatus),
    /// xtask got this signal; the child has been stopped.
    Signalled(i32),
}

fn supervise(child: &mut Child, what: &str) -> Result<Ended> {
    loop {
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("waiting for {what}"))?
        {
            return Ok(Ended::Exited(status));
        }
        if let Some(signal) = signals::take() {
            eprintln!(
                "xtask: {} received: stopping {what} (pid {})",
                signals::name(signal),
                child.id()
            );
            stop(child, signal, what)?;
            return Ok(Ended::Signalled(signal));
        }
        std::thread::sleep(POLL);
    }
}

/// Forward `signal` to the child and wait for it (bounded), then kill it if it is still there.
fn stop(child: &mut Child, signal: i32, what: &str) -> Result<()> {
    signals::send(child.id(), signal);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if child
            .try_wait()
            .with_context(|| format!("waiting for {what} to stop"))?
            .is_some()
        {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
    eprintln!(
        "xtask: {what} did not stop within {} s: killing it",
        STOP_GRACE.as_secs()
    );
    child
        .kill()
        .with_context(|| format!("killing {what} (pid {})", child.id()))?;
    child
        .wait()
        .with_context(|| format!("waiting for {what} after killing it"))?;
    Ok(())
}

#[cfg(unix)]
mod signals {
    //! The signal flag: the handler only stores the signal number (async-signal-safe); the
    //! supervising loop reads it.

    use std::sync::atomic::{AtomicI32, Ordering};

    static PENDING: AtomicI32 = AtomicI32::new(0);

    extern "C" fn on_signal(signal: libc::c_int) {
        PENDING.store(signal, Ordering::SeqCst);
    }

    pub fn install() -> std::io::Result<()> {
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a zeroed sigaction with a handler that only stores into an atomic, which
            // is async-signal-safe; the struct outlives the call that copies it.
            let rc = unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut())
            };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// The signal received since the last call, if any.
    pub fn take() -> Option<i32> {
        match PENDING.swap(0, Ordering::SeqCst) {
            0 => None,
            signal => Some(signal),
        }
    }

    pub fn name(signal: i32) -> &'static str {
        match signal {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            _ => "signal",
        }
    }

    pub fn send(pid: u32, signal: i32) {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return;
        };
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet, so it cannot
        // have been reused.
        unsafe {
            libc::kill(pid, signal);
        }
    }

    /// End xtask by `signal` with its default action, as if it had not been caught.
    pub fn die_of(signal: i32) -> ! {
        // SAFETY: restoring the default disposition and raising the signal at ourselves.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
        std::process::exit(128 + signal)
    }
}

#[cfg(not(unix))]
mod signals {
    //! Without POSIX signals the console's Ctrl+C reaches the child directly; nothing to
    //! forward.

    pub fn install() -> std::io::Result<()> {
        Ok(())
    }

    pub fn take() -> Option<i32> {
        None
    }

    pub fn name(_: i32) -> &'static str {
        "signal"
    }

    pub fn send(_: u32, _: i32) {}

    pub fn die_of(signal: i32) -> ! {
        std::process::exit(128 + signal)
    }
}
