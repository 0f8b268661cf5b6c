//! Time and backoff: an injectable clock and capped exponential backoff with jitter.

use std::time::{Duration, Instant};

/// Monotonic time and sleeping, injectable so that tests never wait.
pub trait Clock: Send {
    /// Time since an arbitrary, fixed origin.
    fn now(&self) -> Duration;
    /// Waits `duration`.
    fn sleep(&mut self, duration: Duration);
}

/// The real clock.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// The delay before retry number `attempt` (1 for the first retry): `initial * 2^(attempt-1)`
/// capped at `max`, then drawn in `[d/2, d]` by `random` (equal jitter).
pub(crate) fn backoff(initial: Duration, max: Duration, attempt: u32, random: u64) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1).min(31))
        .unwrap_or(u32::MAX);
    let full = initial.saturating_mul(factor).min(max);
    let half = full / 2;
    let span = (full - half).as_nanos() as u64;
    let jitter = if span == 0 { 0 } else { random % (span + 1) };
    half + Duration::from_nanos(jitter)
}

/// A small xorshift generator for jitter (not for anything secret).
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new(seed: u64) -> Jitter {
        Jitter(seed | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let (i, m) = (Duration::from_secs(2), Duration::from_secs(64));
        let mut rng = Jitter::new(7);
        for attempt in 1..40 {
            let full = Duration::from_secs(2u64.saturating_mul(1 << (attempt - 1).min(20)).min(64));
            let d = backoff(i, m, attempt, rng.next());
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert_eq!(backoff(i, m, 1, 0), Duration::from_secs(1));
        assert_eq!(backoff(i, m, 100, u64::MAX), backoff(i, m, 100, u64::MAX));
        assert_eq!(backoff(Duration::ZERO, m, 3, 5), Duration::ZERO);
    }
}
