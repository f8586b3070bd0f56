//! Exponential backoff with jitter, as the Java client computes it.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff: `base * 2^attempts`, capped at `max`, with ±20 % random jitter so that
/// many clients do not retry in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempts: u32,
}

/// Relative jitter applied to each delay.
const JITTER: f64 = 0.2;

impl Backoff {
    /// A backoff starting at `base` and growing to at most `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
            attempts: 0,
        }
    }

    /// The delay before the next attempt; each call doubles the next one, up to the maximum.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.attempts.min(31);
        self.attempts = self.attempts.saturating_add(1);
        let raw = self
            .base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.max)
            .min(self.max);
        let factor = rand::rng().random_range((1.0 - JITTER)..=(1.0 + JITTER));
        raw.mul_f64(factor)
    }

    /// Attempts made since the last [`reset`](Self::reset).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts over at the base delay, after a success.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let d: Vec<_> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert!((80..=120).contains(&d[0]), "{d:?}");
        assert!((160..=240).contains(&d[1]), "{d:?}");
        assert!((320..=480).contains(&d[2]), "{d:?}");
        assert!((800..=1200).contains(&d[5]), "{d:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(120));
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(12));
        }
    }
}
