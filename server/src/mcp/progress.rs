//! `notifications/progress` while a `domshell_execute` call runs, for clients that sent a
//! progress token: which line of how many is running and for how long.
//!
//! MCP requires the progress value to increase with every notification of a token, so the
//! value is not the bare line index: [`ProgressSequence`] (pure, no I/O) turns "line `i`
//! is still running" into `i + f`, where `f` grows towards 1 with each tick on that line
//! and starts again when the line advances, always below `total`.
//!
//! It must not decide anything about the call; it only reports what it is told.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::ProgressNotificationParam;
use rmcp::service::RequestContext;
use rmcp::RoleServer;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bridge::ProgressSink;

/// Which line of how many is running and what the extension last said of it (a loop's
/// item), shared with the progress ticker.
#[derive(Debug, Clone, Default)]
struct Running {
    index: usize,
    line: String,
    detail: Option<String>,
}

type CurrentLine = Arc<Mutex<Running>>;

/// Shortest time between two notifications a report brings forward (the ticker's own are
/// `interval` apart): a fast loop must not flood the client.
const MIN_REPORT_GAP: Duration = Duration::from_millis(250);

/// The progress values of one token: strictly increasing, below `total`.
#[derive(Debug, Clone)]
pub(super) struct ProgressSequence {
    total: usize,
    /// The furthest line reported; an index behind it does not move progress back.
    line: usize,
    /// Ticks spent on `line` so far.
    ticks: u32,
    last: Option<f64>,
}

impl ProgressSequence {
    pub(super) fn new(total: usize) -> Self {
        Self {
            total,
            line: 0,
            ticks: 0,
            last: None,
        }
    }

    /// The value for one more tick while line `index` runs, or `None` when no value both
    /// above the last one and below `total` exists (then nothing may be sent).
    /// Nothing changes when `None` is returned.
    pub(super) fn tick(&mut self, index: usize) -> Option<f64> {
        let (line, ticks) = if index > self.line {
            (index, 1)
        } else {
            (self.line, self.ticks.saturating_add(1))
        };
        let fraction = f64::from(ticks) / (f64::from(ticks) + 1.0);
        // 1/2, 2/3, 3/4, …: visibly moving, never reaching the next line.
        let mut value = (line as f64 + fraction).min(((line + 1) as f64).next_down());
        if let Some(last) = self.last {
            if value <= last {
                // f64 rounding after very many ticks: the smallest step up still increases.
                value = last.next_up();
            }
        }
        if value >= self.total as f64 {
            return None;
        }
        (self.line, self.ticks, self.last) = (line, ticks, Some(value));
        Some(value)
    }
}

/// Sends `notifications/progress` while a call runs, when the client supplied a token.
pub(super) struct ProgressReporter {
    state: Option<(CurrentLine, CancellationToken, Arc<Notify>)>,
}

impl ProgressReporter {
    pub(super) fn start(
        context: &RequestContext<RoleServer>,
        total: usize,
        interval: Duration,
    ) -> Self {
        let Some(token) = context.meta.get_progress_token() else {
            return Self { state: None };
        };
        let current: CurrentLine = Arc::default();
        let stop = CancellationToken::new();
        let report = Arc::new(Notify::new());
        let peer = context.peer.clone();
        let (current2, stop2, report2) = (current.clone(), stop.clone(), report.clone());
        let started = Instant::now();
        tokio::spawn(async move {
            let mut sequence = ProgressSequence::new(total);
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            let mut last_sent: Option<Instant> = None;
            loop {
                tokio::select! {
                    _ = stop2.cancelled() => return,
                    _ = ticker.tick() => {}
                    _ = report2.notified() => {
                        // A report moves the next notification forward, not closer together.
                        if let Some(wait) = last_sent
                            .map(|at| MIN_REPORT_GAP.saturating_sub(at.elapsed()))
                            .filter(|w| !w.is_zero())
                        {
                            tokio::select! {
                                _ = stop2.cancelled() => return,
                                _ = tokio::time::sleep(wait) => {}
                            }
                        }
                    }
                }
                let running = current2.lock().map(|g| g.clone()).unwrap_or_default();
                let Some(progress) = sequence.tick(running.index) else {
                    continue;
                };
                let mut message = format!(
                    "running line {} of {total} ({:.1} s): {}",
                    running.index + 1,
                    started.elapsed().as_secs_f64(),
                    running.line
                );
                if let Some(detail) = &running.detail {
                    message.push_str(" — ");
                    message.push_str(detail);
                }
                let param = ProgressNotificationParam::new(token.clone(), progress)
                    .with_total(total as f64)
                    .with_message(message);
                if peer.notify_progress(param).await.is_err() {
                    return;
                }
                last_sent = Some(Instant::now());
            }
        });
        Self {
            state: Some((current, stop, report)),
        }
    }

    pub(super) fn line(&self, index: usize, line: &str) {
        if let Some((current, _, _)) = &self.state {
            if let Ok(mut guard) = current.lock() {
                *guard = Running {
                    index,
                    line: line.chars().take(80).collect(),
                    detail: None,
                };
            }
        }
    }

    /// Where the extension's reports on the running line go (`None` when the client asked
    /// for no progress): each one is shown with the line, at once.
    pub(super) fn sink(&self) -> Option<ProgressSink> {
        let (current, _, report) = self.state.clone()?;
        Some(ProgressSink::new(move |_done, _total, message| {
            if let Ok(mut guard) = current.lock() {
                guard.detail = Some(message.chars().take(120).collect());
            }
            report.notify_one();
        }))
    }

    pub(super) fn finish(&self) {
        if let Some((_, stop, _)) = &self.state {
            stop.cancel();
        }
    }
}

impl Drop for ProgressReporter {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_increasing_below(values: &[f64], total: usize) {
        for pair in values.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
        assert!(values.iter().all(|v| *v < total as f64), "{values:?}");
    }

    #[test]
    fn ticks_on_one_line_increase_and_stay_on_that_line() {
        let mut sequence = ProgressSequence::new(3);
        let values: Vec<f64> = (0..10_000).filter_map(|_| sequence.tick(0)).collect();
        assert_eq!(values.len(), 10_000);
        assert_increasing_below(&values, 3);
        assert_eq!(values[0], 0.5);
        assert!(values.iter().all(|v| *v < 1.0), "{:?}", values.last());
    }

    #[test]
    fn a_new_line_starts_its_own_fraction_above_the_last_value() {
        let mut sequence = ProgressSequence::new(3);
        let mut values: Vec<f64> = (0..5).filter_map(|_| sequence.tick(0)).collect();
        values.extend((0..3).filter_map(|_| sequence.tick(1)));
        values.extend((0..2).filter_map(|_| sequence.tick(2)));
        assert_increasing_below(&values, 3);
        assert_eq!(values[5], 1.5, "{values:?}");
        assert_eq!(values[8], 2.5, "{values:?}");
        // A line that finishes before the next tick is simply skipped.
        let mut sequence = ProgressSequence::new(5);
        assert_eq!(sequence.tick(0), Some(0.5));
        assert_eq!(sequence.tick(3), Some(3.5));
    }

    #[test]
    fn an_index_behind_the_furthest_line_does_not_move_progress_back() {
        let mut sequence = ProgressSequence::new(4);
        let mut values: Vec<f64> = [0, 2, 2, 1, 0, 2]
            .iter()
            .filter_map(|i| sequence.tick(*i))
            .collect();
        values.extend(sequence.tick(3));
        assert_eq!(values.len(), 7);
        assert_increasing_below(&values, 4);
    }

    #[test]
    fn no_value_is_offered_that_would_reach_the_total() {
        assert_eq!(ProgressSequence::new(0).tick(0), None);
        let mut sequence = ProgressSequence::new(2);
        assert_eq!(sequence.tick(2), None);
        // Past the end is ignored; the last line's ticks still move, below the total.
        let values: Vec<f64> = (0..1_000).filter_map(|_| sequence.tick(1)).collect();
        assert_eq!(values.len(), 1_000);
        assert_increasing_below(&values, 2);
    }

    #[test]
    fn rounding_never_repeats_a_value() {
        // So far along that ticks/(ticks+1) no longer changes the sum: each tick still
        // steps up, and never onto the total.
        let total = 1usize << 40;
        let mut sequence = ProgressSequence {
            total,
            line: total - 3,
            ticks: u32::MAX - 3,
            last: None,
        };
        let values: Vec<f64> = (0..8).filter_map(|_| sequence.tick(total - 3)).collect();
        assert_eq!(values.len(), 8);
        assert_increasing_below(&values, total);
        let mut last_line = ProgressSequence {
            total,
            line: total - 1,
            ticks: u32::MAX - 3,
            last: None,
        };
        let values: Vec<f64> = (0..8).filter_map(|_| last_line.tick(total - 1)).collect();
        assert!(!values.is_empty());
        assert_increasing_below(&values, total);
    }
}
