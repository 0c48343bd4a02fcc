//! The sans-IO heartbeat machine both ends run.
//!
//! It owns one decision: given what arrived and when, is the link alive, is a `PING` due, or
//! is it dead? It must not touch sockets or clocks; the driver feeds it `now_ms` from its own
//! monotonic clock, sleeps until [`Liveness::next_deadline`], and acts on [`Action`].
//!
//! The server configures a ping interval (it pings); the extension does not (it only listens
//! and answers), so for it the machine reduces to "dead after `silence_limit_ms` of quiet".
//!
//! Sleep/wake: when a tick arrives more than [`CLOCK_JUMP_FACTOR`]× the ping interval after
//! the previous one, the process (or the machine) was frozen, and the silence it measured says
//! nothing about the peer. The machine then pings at once and gives the peer a short
//! verification window instead of declaring death from stale arithmetic.

/// A tick later than this many ping intervals means the clock jumped (sleep/wake, SIGSTOP).
pub const CLOCK_JUMP_FACTOR: u64 = 3;

/// Unanswered pings remembered for RTT measurement; older ones are forgotten.
const MAX_OUTSTANDING_PINGS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivenessConfig {
    /// `Some` on the side that sends `PING` (the server); `None` on the side that answers.
    pub ping_interval_ms: Option<u64>,
    /// Quiet longer than this means the link is dead.
    pub silence_limit_ms: u64,
}

/// What the driver must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing until [`Liveness::next_deadline`].
    Idle,
    /// Send `PING {id, sent_at_ms}`.
    SendPing { id: u64, sent_at_ms: u64 },
    /// The peer is gone: drop the socket without waiting for a close handshake.
    Dead { silent_for_ms: u64 },
}

#[derive(Debug, Clone)]
pub struct Liveness {
    config: LivenessConfig,
    last_inbound_ms: u64,
    last_tick_ms: u64,
    next_ping_ms: Option<u64>,
    /// Set after a clock jump: the peer must be heard from before this instant.
    verify_deadline_ms: Option<u64>,
    next_ping_id: u64,
    /// Recent unanswered pings `(id, sent_at)`, oldest first. More than one, so a round trip
    /// longer than the ping interval is still measured.
    outstanding_pings: std::collections::VecDeque<(u64, u64)>,
    last_rtt_ms: Option<u64>,
    dead: bool,
}

impl Liveness {
    /// A machine for a link that was established (and so heard from) at `now_ms`.
    pub fn new(config: LivenessConfig, now_ms: u64) -> Self {
        Self {
            config,
            last_inbound_ms: now_ms,
            last_tick_ms: now_ms,
            next_ping_ms: config.ping_interval_ms.map(|p| now_ms.saturating_add(p)),
            verify_deadline_ms: None,
            next_ping_id: 1,
            outstanding_pings: Default::default(),
            last_rtt_ms: None,
            dead: false,
        }
    }

    pub fn config(&self) -> LivenessConfig {
        self.config
    }

    /// Any frame arrived: the peer is alive.
    pub fn on_inbound(&mut self, now_ms: u64) {
        if self.dead {
            return;
        }
        self.last_inbound_ms = self.last_inbound_ms.max(now_ms);
        self.verify_deadline_ms = None;
    }

    /// A `PONG` arrived (after [`Self::on_inbound`]); returns the round trip when it answers
    /// the outstanding `PING`.
    pub fn on_pong(&mut self, id: u64, now_ms: u64) -> Option<u64> {
        let index = self.outstanding_pings.iter().position(|(p, _)| *p == id)?;
        let (_, sent_at) = self.outstanding_pings[index];
        // Pongs arrive in order, so anything older than this one will never be answered.
        self.outstanding_pings.drain(..=index);
        let rtt = now_ms.saturating_sub(sent_at);
        self.last_rtt_ms = Some(rtt);
        Some(rtt)
    }

    /// Decide what to do at `now_ms`. Call it at least at [`Self::next_deadline`].
    pub fn poll(&mut self, now_ms: u64) -> Action {
        if self.dead {
            return Action::Dead {
                silent_for_ms: self.silent_for(now_ms),
            };
        }
        let tick_gap = now_ms.saturating_sub(self.last_tick_ms);
        self.last_tick_ms = self.last_tick_ms.max(now_ms);

        if let Some(interval) = self.config.ping_interval_ms {
            if tick_gap > interval.saturating_mul(CLOCK_JUMP_FACTOR)
                && self.verify_deadline_ms.is_none()
            {
                let window = interval.min(self.config.silence_limit_ms);
                self.verify_deadline_ms = Some(now_ms.saturating_add(window));
                return self.ping_now(now_ms, interval);
            }
        }

        let dead = match self.verify_deadline_ms {
            Some(deadline) => now_ms >= deadline,
            None => self.silent_for(now_ms) >= self.config.silence_limit_ms,
        };
        if dead {
            self.dead = true;
            return Action::Dead {
                silent_for_ms: self.silent_for(now_ms),
            };
        }

        match (self.config.ping_interval_ms, self.next_ping_ms) {
            (Some(interval), Some(due)) if now_ms >= due => self.ping_now(now_ms, interval),
            _ => Action::Idle,
        }
    }

    fn ping_now(&mut self, now_ms: u64, interval: u64) -> Action {
        let id = self.next_ping_id;
        self.next_ping_id += 1;
        if self.outstanding_pings.len() == MAX_OUTSTANDING_PINGS {
            self.outstanding_pings.pop_front();
        }
        self.outstanding_pings.push_back((id, now_ms));
        self.next_ping_ms = Some(now_ms.saturating_add(interval));
        Action::SendPing {
            id,
            sent_at_ms: now_ms,
        }
    }

    /// The next instant at which [`Self::poll`] may return something other than `Idle`.
    pub fn next_deadline(&self) -> u64 {
        let death = self.verify_deadline_ms.unwrap_or(
            self.last_inbound_ms
                .saturating_add(self.config.silence_limit_ms),
        );
        match self.next_ping_ms {
            Some(ping) => ping.min(death),
            None => death,
        }
    }

    pub fn silent_for(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_inbound_ms)
    }

    /// Quiet for longer than a healthy peer would be: worth showing as "silent" while the
    /// machine waits for the verdict.
    pub fn is_quiet(&self, now_ms: u64) -> bool {
        let threshold = match self.config.ping_interval_ms {
            Some(interval) => interval.saturating_add(interval / 2),
            None => self.config.silence_limit_ms / 2,
        };
        self.verify_deadline_ms.is_some() || self.silent_for(now_ms) > threshold
    }

    pub fn last_inbound_ms(&self) -> u64 {
        self.last_inbound_ms
    }

    pub fn last_rtt_ms(&self) -> Option<u64> {
        self.last_rtt_ms
    }

    pub fn is_dead(&self) -> bool {
        self.dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SERVER: LivenessConfig = LivenessConfig {
        ping_interval_ms: Some(20_000),
        silence_limit_ms: 60_000,
    };
    const EXTENSION: LivenessConfig = LivenessConfig {
        ping_interval_ms: None,
        silence_limit_ms: 60_000,
    };

    /// Drive the machine the way a driver does: poll at every deadline until `until`,
    /// answering pings when `peer_answers` says so.
    fn run(
        m: &mut Liveness,
        from: u64,
        until: u64,
        peer_answers: impl Fn(u64) -> bool,
    ) -> Option<u64> {
        let mut now = from;
        while now <= until {
            match m.poll(now) {
                Action::Dead { .. } => return Some(now),
                Action::SendPing { id, .. } if peer_answers(now) => {
                    m.on_inbound(now + 5);
                    assert_eq!(m.on_pong(id, now + 5), Some(5));
                }
                _ => {}
            }
            let next = m.next_deadline();
            assert!(next > now || m.is_dead(), "deadline must advance");
            now = next;
        }
        None
    }

    #[test]
    fn server_pings_every_interval_and_stays_alive_while_answered() {
        let mut m = Liveness::new(SERVER, 0);
        assert_eq!(m.next_deadline(), 20_000);
        assert_eq!(m.poll(19_999), Action::Idle);
        assert_eq!(
            m.poll(20_000),
            Action::SendPing {
                id: 1,
                sent_at_ms: 20_000
            }
        );
        assert_eq!(run(&mut m, 20_001, 3_600_000, |_| true), None);
        assert_eq!(m.last_rtt_ms(), Some(5));
    }

    #[test]
    fn server_declares_death_exactly_at_the_silence_limit() {
        let mut m = Liveness::new(SERVER, 1_000);
        m.on_inbound(10_000);
        let died = run(&mut m, 10_000, 1_000_000, |_| false);
        assert_eq!(died, Some(70_000));
        assert!(m.is_dead());
        assert_eq!(
            m.poll(80_000),
            Action::Dead {
                silent_for_ms: 70_000
            }
        );
    }

    #[test]
    fn extension_never_pings_and_dies_after_silence() {
        let mut m = Liveness::new(EXTENSION, 0);
        assert_eq!(m.next_deadline(), 60_000);
        assert_eq!(m.poll(59_999), Action::Idle);
        m.on_inbound(59_999);
        assert_eq!(m.poll(119_998), Action::Idle);
        assert_eq!(
            m.poll(119_999),
            Action::Dead {
                silent_for_ms: 60_000
            }
        );
    }

    #[test]
    fn clock_jump_verifies_instead_of_killing_a_healthy_link() {
        let mut m = Liveness::new(SERVER, 0);
        // The machine slept for an hour: the first tick after wake is 180x late.
        let wake = 3_600_000;
        let action = m.poll(wake);
        assert!(matches!(action, Action::SendPing { sent_at_ms, .. } if sent_at_ms == wake));
        assert!(m.is_quiet(wake));
        assert_eq!(m.next_deadline(), wake + 20_000);
        // The peer answers within the window: alive, verification cleared.
        m.on_inbound(wake + 30);
        assert!(!m.is_quiet(wake + 30));
        assert_eq!(run(&mut m, wake + 31, wake + 200_000, |_| true), None);
    }

    #[test]
    fn clock_jump_with_a_dead_peer_is_detected_within_one_interval() {
        let mut m = Liveness::new(SERVER, 0);
        let wake = 3_600_000;
        assert!(matches!(m.poll(wake), Action::SendPing { .. }));
        assert_eq!(
            run(&mut m, wake + 1, wake + 100_000, |_| false),
            Some(wake + 20_000)
        );
    }

    #[test]
    fn stale_pongs_do_not_report_rtt() {
        let mut m = Liveness::new(SERVER, 0);
        let Action::SendPing { id, .. } = m.poll(20_000) else {
            panic!("expected a ping")
        };
        assert_eq!(m.on_pong(id + 1, 20_010), None);
        assert_eq!(m.on_pong(id, 20_012), Some(12));
        assert_eq!(m.on_pong(id, 20_013), None, "answered once only");
    }

    #[test]
    fn round_trips_longer_than_the_ping_interval_are_measured() {
        let mut m = Liveness::new(
            LivenessConfig {
                ping_interval_ms: Some(200),
                silence_limit_ms: 1_000,
            },
            0,
        );
        let Action::SendPing { id: first, .. } = m.poll(200) else {
            panic!("ping")
        };
        let Action::SendPing { id: second, .. } = m.poll(400) else {
            panic!("ping")
        };
        // The first pong comes back 250 ms later, after the second ping left.
        m.on_inbound(450);
        assert_eq!(m.on_pong(first, 450), Some(250));
        m.on_inbound(650);
        assert_eq!(m.on_pong(second, 650), Some(250));
        assert_eq!(m.last_rtt_ms(), Some(250));
    }

    #[test]
    fn quiet_flag_rises_between_interval_and_death() {
        let m = Liveness::new(SERVER, 0);
        assert!(!m.is_quiet(30_000));
        assert!(m.is_quiet(30_001));
        let e = Liveness::new(EXTENSION, 0);
        assert!(!e.is_quiet(30_000));
        assert!(e.is_quiet(30_001));
    }

    proptest! {
        /// Whatever the inbound pattern, death is declared no later than the silence limit
        /// after the last inbound frame (the server's detection target), and never while a
        /// frame arrived within the limit.
        #[test]
        fn death_is_timely_and_never_premature(
            interval in 50u64..5_000,
            limit_factor in 2u64..6,
            gaps in proptest::collection::vec(0u64..4_000, 0..40),
        ) {
            let limit = interval * limit_factor;
            let mut m = Liveness::new(LivenessConfig { ping_interval_ms: Some(interval), silence_limit_ms: limit }, 0);
            let mut now = 0;
            let mut last_inbound = 0;
            for gap in gaps {
                // Tick at every deadline up to the next inbound frame, like a driver would.
                let arrival = now + gap;
                while m.next_deadline() <= arrival {
                    let t = m.next_deadline();
                    if let Action::Dead { .. } = m.poll(t) {
                        prop_assert!(t >= last_inbound + limit, "premature death at {}", t);
                        prop_assert!(t <= last_inbound + limit, "late death at {}", t);
                        return Ok(());
                    }
                }
                now = arrival;
                m.on_inbound(now);
                last_inbound = now;
            }
            let t = m.next_deadline();
            let mut now = t;
            loop {
                if let Action::Dead { .. } = m.poll(now) { break; }
                now = m.next_deadline();
            }
            prop_assert_eq!(now, last_inbound + limit);
        }
    }
}
