//! The link's health figures: counters and heartbeat round trips the connection tasks
//! record, and the [`LinkHealth`] snapshot `/health` and `domshell_status` show.
//!
//! It owns the figures and their arithmetic (the p95); it must not decide anything about the
//! link itself.

use std::collections::VecDeque;
use std::time::Instant;

use serde::Serialize;
use shared_protocol::link::LinkState;

/// Heartbeat round trips kept for the p95 figure.
const RTT_WINDOW: usize = 100;

/// Link figures for `/health` and the status tool.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LinkHealth {
    pub state: LinkState,
    pub connected_for_ms: Option<u64>,
    pub last_inbound_age_ms: Option<u64>,
    pub last_rtt_ms: Option<u64>,
    /// Successful connections after the first one.
    pub reconnect_count: u64,
    pub extension_version: Option<String>,
    pub last_disconnect_reason: Option<String>,
    pub pending_requests: usize,
    pub malformed_frames: u64,
    /// Connection attempts refused for a wrong proof (wrong token) since start.
    pub rejected_tokens: u64,
    /// Connection attempts refused unchecked because too many proofs failed recently.
    pub throttled_handshakes: u64,
    /// 95th percentile of the recent heartbeat round trips.
    pub rtt_p95_ms: Option<u64>,
    /// Shell sessions (one per MCP session) known to the bridge.
    pub shell_sessions: usize,
    pub ping_interval_ms: u64,
    pub silence_limit_ms: u64,
}

/// The counters behind [`LinkHealth`], kept in the bridge's state.
#[derive(Debug, Default)]
pub(super) struct Figures {
    /// Connections that completed the handshake since start.
    pub(super) connections: u64,
    pub(super) last_inbound_at: Option<Instant>,
    pub(super) last_rtt_ms: Option<u64>,
    /// The active link has been silent for a while (not dead yet).
    pub(super) quiet: bool,
    pub(super) malformed_frames: u64,
    pub(super) rejected_tokens: u64,
    pub(super) throttled_handshakes: u64,
    pub(super) recent_rtts: VecDeque<u64>,
    pub(super) last_disconnect_reason: Option<String>,
}

impl Figures {
    pub(super) fn record_rtt(&mut self, rtt_ms: u64) {
        self.last_rtt_ms = Some(rtt_ms);
        if self.recent_rtts.len() == RTT_WINDOW {
            self.recent_rtts.pop_front();
        }
        self.recent_rtts.push_back(rtt_ms);
    }

    pub(super) fn rtt_p95_ms(&self) -> Option<u64> {
        percentile(&self.recent_rtts, 95)
    }

    /// Connections after the first one.
    pub(super) fn reconnects(&self) -> u64 {
        self.connections.saturating_sub(1)
    }
}

fn percentile(values: &VecDeque<u64>, pct: usize) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted: Vec<u64> = values.iter().copied().collect();
    sorted.sort_unstable();
    let rank = (pct * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_of_round_trips() {
        let values: VecDeque<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 95), Some(95));
        assert_eq!(percentile(&[7].into_iter().collect(), 95), Some(7));
        assert_eq!(percentile(&Default::default(), 95), None);
    }

    #[test]
    fn the_rtt_window_keeps_the_latest_figures() {
        let mut figures = Figures::default();
        for rtt in 0..(RTT_WINDOW as u64 + 50) {
            figures.record_rtt(rtt);
        }
        assert_eq!(figures.recent_rtts.len(), RTT_WINDOW);
        assert_eq!(figures.last_rtt_ms, Some(RTT_WINDOW as u64 + 49));
        assert_eq!(figures.recent_rtts.front(), Some(&50));
    }
}
