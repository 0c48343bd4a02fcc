//! `notifications/progress` while a `domshell_execute` call runs, for clients that sent a
//! progress token: which line of how many is running and for how long.
//!
//! It must not decide anything about the call; it only reports what it is told.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::ProgressNotificationParam;
use rmcp::service::RequestContext;
use rmcp::RoleServer;
use tokio_util::sync::CancellationToken;

/// Which line of how many is running, shared with the progress ticker.
type CurrentLine = Arc<Mutex<(usize, String)>>;

/// Sends `notifications/progress` while a call runs, when the client supplied a token.
pub(super) struct ProgressReporter {
    state: Option<(CurrentLine, CancellationToken)>,
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
        let current = Arc::new(Mutex::new((0usize, String::new())));
        let stop = CancellationToken::new();
        let peer = context.peer.clone();
        let (current2, stop2) = (current.clone(), stop.clone());
        let started = Instant::now();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = stop2.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                let (index, line) = current2.lock().map(|g| g.clone()).unwrap_or_default();
                let param = ProgressNotificationParam::new(token.clone(), index as f64)
                    .with_total(total as f64)
                    .with_message(format!(
                        "running line {} of {total} ({:.1} s): {line}",
                        index + 1,
                        started.elapsed().as_secs_f64()
                    ));
                if peer.notify_progress(param).await.is_err() {
                    return;
                }
            }
        });
        Self {
            state: Some((current, stop)),
        }
    }

    pub(super) fn line(&self, index: usize, line: &str) {
        if let Some((current, _)) = &self.state {
            if let Ok(mut guard) = current.lock() {
                *guard = (index, line.chars().take(80).collect());
            }
        }
    }

    pub(super) fn finish(&self) {
        if let Some((_, stop)) = &self.state {
            stop.cancel();
        }
    }
}

impl Drop for ProgressReporter {
    fn drop(&mut self) {
        self.finish();
    }
}
