//! Process hygiene for a server started by an MCP host: notice that the host is gone even
//! when stdin stays open (the parent died and the pipe leaked to a grandchild), and end the
//! process when its async runtime is wedged, so the kernel frees the bridge port and a
//! contender takes over instead of proxying to an owner that never answers.
//!
//! It owns the parent watch (a task that polls the parent pid) and the watchdog (a plain OS
//! thread, outside the runtime it watches, fed by a tick the runtime bumps). The decision of
//! the watchdog is sans-IO ([`StallDetector`]). It must not stop services itself: the parent
//! watch only cancels a token the caller chose; the watchdog exits with [`STALL_EXIT_CODE`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Exit status of a process whose runtime stalled (EX_SOFTWARE).
pub const STALL_EXIT_CODE: i32 = 70;

/// How often the parent pid is checked.
const PARENT_POLL: Duration = Duration::from_secs(1);

/// Cancel `host_gone` when this process's parent changes: on Unix an orphan is re-parented
/// (to init or a subreaper), so a different parent pid means the host that started us died.
pub fn watch_parent(host_gone: CancellationToken) {
    #[cfg(unix)]
    {
        let original = std::os::unix::process::parent_id();
        tokio::spawn(async move {
            let mut poll = tokio::time::interval(PARENT_POLL);
            loop {
                tokio::select! {
                    _ = host_gone.cancelled() => return,
                    _ = poll.tick() => {}
                }
                let now = std::os::unix::process::parent_id();
                if now != original {
                    tracing::info!(
                        original,
                        now,
                        "the process that started this server is gone: shutting down"
                    );
                    host_gone.cancel();
                    return;
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = host_gone;
}

/// The watchdog's judgement, fed with the runtime's tick counter and the time.
#[derive(Debug)]
pub struct StallDetector {
    limit: Duration,
    last_tick: u64,
    last_change: Instant,
}

impl StallDetector {
    pub fn new(limit: Duration, now: Instant) -> Self {
        Self {
            limit,
            last_tick: 0,
            last_change: now,
        }
    }

    /// `Some(stalled_for)` when the tick has not moved for longer than the limit.
    pub fn observe(&mut self, tick: u64, now: Instant) -> Option<Duration> {
        if tick != self.last_tick {
            self.last_tick = tick;
            self.last_change = now;
            return None;
        }
        let stalled = now.saturating_duration_since(self.last_change);
        (stalled > self.limit).then_some(stalled)
    }
}

/// Start the watchdog for `runtime`: a task there bumps a counter several times per `limit`;
/// a thread outside it exits the process when the counter stops for longer than `limit`.
pub fn start_watchdog(runtime: &tokio::runtime::Runtime, limit: Duration) -> anyhow::Result<()> {
    let tick = Arc::new(AtomicU64::new(0));
    let period = (limit / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let bump = tick.clone();
    runtime.spawn(async move {
        let mut interval = tokio::time::interval(period);
        loop {
            interval.tick().await;
            bump.fetch_add(1, Ordering::Relaxed);
        }
    });
    std::thread::Builder::new()
        .name("domshell-watchdog".into())
        .spawn(move || {
            let mut detector = StallDetector::new(limit, Instant::now());
            loop {
                std::thread::sleep(period);
                if let Some(stalled) = detector.observe(tick.load(Ordering::Relaxed), Instant::now())
                {
                    // Written straight to stderr too: the logging pipeline may be what hangs.
                    eprintln!(
                        "domshell: the async runtime has not run for {stalled:?} (limit {limit:?}); exiting so another server can take the port over"
                    );
                    tracing::error!(?stalled, "runtime stalled: exiting");
                    std::process::exit(STALL_EXIT_CODE);
                }
            }
        })
        .map_err(|e| anyhow::anyhow!("cannot start the watchdog thread: {e}"))?;
    Ok(())
}

/// Test hook: after `after`, block every worker of the current runtime for good, which is
/// what a wedged owner looks like from outside (the port stays bound, nothing answers).
pub fn stall_runtime_after(after: Duration) {
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    for _ in 0..workers.max(1) {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            tracing::warn!("stalling the runtime on purpose (--stall-runtime-after-ms)");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(15);

    #[test]
    fn a_moving_tick_is_never_a_stall() {
        let t0 = Instant::now();
        let mut detector = StallDetector::new(LIMIT, t0);
        for i in 1..100u64 {
            assert_eq!(detector.observe(i, t0 + LIMIT * (i as u32)), None);
        }
    }

    #[test]
    fn a_tick_stopped_longer_than_the_limit_is_a_stall() {
        let t0 = Instant::now();
        let mut detector = StallDetector::new(LIMIT, t0);
        assert_eq!(detector.observe(1, t0 + Duration::from_secs(1)), None);
        assert_eq!(detector.observe(1, t0 + Duration::from_secs(16)), None);
        assert_eq!(
            detector.observe(1, t0 + Duration::from_secs(17)),
            Some(Duration::from_secs(16))
        );
    }

    #[test]
    fn the_limit_itself_is_not_yet_a_stall_and_a_late_tick_resets() {
        let t0 = Instant::now();
        let mut detector = StallDetector::new(LIMIT, t0);
        assert_eq!(detector.observe(0, t0 + LIMIT), None);
        // The runtime came back just in time: the clock starts again from here.
        assert_eq!(
            detector.observe(5, t0 + LIMIT + Duration::from_secs(1)),
            None
        );
        assert_eq!(detector.observe(5, t0 + LIMIT * 2), None);
        assert!(detector
            .observe(5, t0 + LIMIT * 2 + Duration::from_secs(2))
            .is_some());
    }
}
