//! Reconnect delays: exponential, jittered, capped, reset by a successful `WELCOME`.
//!
//! Sans-IO: the caller supplies the random number, so tests are deterministic and the WASM
//! side can use `Math.random()` without this crate depending on a RNG.

/// Default first retry delay after a failed dial.
pub const DEFAULT_BASE_MS: u64 = 250;
/// Default ceiling: the server is local, so a few seconds, not minutes.
pub const DEFAULT_CAP_MS: u64 = 5_000;

#[derive(Debug, Clone)]
pub struct Backoff {
    base_ms: u64,
    cap_ms: u64,
    failures: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(DEFAULT_BASE_MS, DEFAULT_CAP_MS)
    }
}

impl Backoff {
    pub fn new(base_ms: u64, cap_ms: u64) -> Self {
        Self {
            base_ms: base_ms.max(1),
            cap_ms: cap_ms.max(base_ms.max(1)),
            failures: 0,
        }
    }

    /// Delay before the next dial after another failure. `random_unit` is uniform in [0, 1);
    /// the delay is in [ceiling/2, ceiling) ("equal jitter"), so retries from many workers
    /// spread out but never collapse to zero.
    pub fn next_delay_ms(&mut self, random_unit: f64) -> u64 {
        let shift = self.failures.min(30);
        let ceiling = self.base_ms.saturating_mul(1u64 << shift).min(self.cap_ms);
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        let unit = if random_unit.is_finite() {
            random_unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        half + ((ceiling - half) as f64 * unit) as u64
    }

    /// Consecutive failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn grows_exponentially_then_caps() {
        let mut b = Backoff::new(250, 5_000);
        let lows: Vec<u64> = (0..8).map(|_| b.next_delay_ms(0.0)).collect();
        assert_eq!(lows, vec![125, 250, 500, 1_000, 2_000, 2_500, 2_500, 2_500]);
        let mut b = Backoff::new(250, 5_000);
        let highs: Vec<u64> = (0..7).map(|_| b.next_delay_ms(0.999_999)).collect();
        assert_eq!(highs, vec![249, 499, 999, 1_999, 3_999, 4_999, 4_999]);
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::default();
        for _ in 0..10 {
            b.next_delay_ms(0.5);
        }
        assert_eq!(b.failures(), 10);
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.next_delay_ms(0.5) < DEFAULT_BASE_MS);
    }

    #[test]
    fn odd_random_inputs_stay_in_range() {
        let mut b = Backoff::new(100, 1_000);
        for r in [f64::NAN, f64::INFINITY, -1.0, 7.0] {
            let d = b.next_delay_ms(r);
            assert!(d <= 1_000);
        }
    }

    proptest! {
        #[test]
        fn delays_are_bounded(base in 1u64..10_000, cap in 1u64..60_000, rs in proptest::collection::vec(0.0f64..1.0, 1..100)) {
            let mut b = Backoff::new(base, cap);
            let cap = cap.max(base);
            for r in rs {
                let d = b.next_delay_ms(r);
                prop_assert!(d <= cap);
                prop_assert!(d >= base.min(cap) / 2);
            }
        }
    }
}
