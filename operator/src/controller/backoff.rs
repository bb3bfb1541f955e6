//! Per-object exponential backoff with jitter for failed reconciles (kube-runtime has none
//! built in): 5 s doubling to 5 min, reset by the next successful pass.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

pub const DEFAULT_BASE: Duration = Duration::from_secs(5);
pub const DEFAULT_MAX: Duration = Duration::from_secs(300);

/// Share of the delay that is randomised: the delay lies in `[0.75 d, d]`, so delays grow
/// with every attempt until the cap (doubling outruns the jitter) and objects failing
/// together spread out, also at the cap.
const JITTER: f64 = 0.25;

/// The delay before retry number `attempt` (1-based) for a jitter sample `unit` in `[0, 1)`.
pub fn delay(attempt: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(31);
    let full = base.saturating_mul(1u32 << exponent).min(max);
    full.mul_f64(1.0 - JITTER * unit.clamp(0.0, 1.0))
}

/// Failure counts per object.
#[derive(Debug)]
pub struct Backoff<K> {
    base: Duration,
    max: Duration,
    attempts: Mutex<HashMap<K, u32>>,
}

impl<K: Hash + Eq> Default for Backoff<K> {
    fn default() -> Self {
        Self::new(DEFAULT_BASE, DEFAULT_MAX)
    }
}

impl<K: Hash + Eq> Backoff<K> {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure of `key` and returns how long to wait before retrying it.
    pub fn next_delay(&self, key: K) -> Duration {
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
            let n = attempts.entry(key).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        delay(
            attempt,
            self.base,
            self.max,
            rand::thread_rng().r#gen::<f64>(),
        )
    }

    /// Forgets the failures of `key` (after a successful pass or its deletion).
    pub fn reset(&self, key: &K) {
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Failures recorded for `key` since its last success.
    pub fn attempts(&self, key: &K) -> u32 {
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// Bounds of the delay of retry `attempt`: `(lowest, highest)`.
    pub fn bounds(&self, attempt: u32) -> (Duration, Duration) {
        (
            delay(attempt, self.base, self.max, 1.0),
            delay(attempt, self.base, self.max, 0.0),
        )
    }
}

/// Reconnect delays of the watches: 100 ms doubling to 1 s, with jitter, reset by the
/// controller once a watch works again. Short on purpose: the controller pauses all its
/// watches for each error any of them reports, so after an API-server restart the pauses of
/// several failed reconnects add up; a failing connect costs the server next to nothing.
#[derive(Debug, Default)]
pub struct WatchBackoff {
    attempt: u32,
}

pub const WATCH_BASE: Duration = Duration::from_millis(100);
pub const WATCH_MAX: Duration = Duration::from_secs(1);

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.attempt = self.attempt.saturating_add(1);
        Some(delay(
            self.attempt,
            WATCH_BASE,
            WATCH_MAX,
            rand::thread_rng().r#gen::<f64>(),
        ))
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_reconnects_stay_within_seconds_and_reset() {
        use kube::runtime::utils::Backoff as _;
        let mut backoff = WatchBackoff::default();
        let delays: Vec<Duration> = (&mut backoff).take(20).collect();
        assert!(delays.iter().all(|d| *d <= WATCH_MAX));
        assert!(delays[0] <= WATCH_BASE);
        assert!(delays[19] >= WATCH_MAX.mul_f64(0.75));
        backoff.reset();
        assert!(backoff.next().unwrap() <= WATCH_BASE);
    }

    #[test]
    fn delay_doubles_up_to_the_cap() {
        let (b, m) = (DEFAULT_BASE, DEFAULT_MAX);
        assert_eq!(delay(1, b, m, 0.0), Duration::from_secs(5));
        assert_eq!(delay(2, b, m, 0.0), Duration::from_secs(10));
        assert_eq!(delay(4, b, m, 0.0), Duration::from_secs(40));
        assert_eq!(delay(7, b, m, 0.0), Duration::from_secs(300));
        assert_eq!(delay(1000, b, m, 0.0), Duration::from_secs(300));
        assert_eq!(delay(1, b, m, 1.0), Duration::from_millis(3750));
    }

    #[test]
    fn jittered_delays_grow_per_object_and_reset() {
        let backoff: Backoff<&str> = Backoff::default();
        let mut previous = Duration::ZERO;
        for attempt in 1..=8 {
            let d = backoff.next_delay("a");
            let (lo, hi) = backoff.bounds(attempt);
            assert!(
                lo <= d && d <= hi,
                "attempt {attempt}: {d:?} not in {lo:?}..{hi:?}"
            );
            if hi < DEFAULT_MAX {
                assert!(d > previous, "attempt {attempt}: {d:?} <= {previous:?}");
            }
            previous = d;
        }
        assert_eq!(backoff.attempts(&"a"), 8);
        assert_eq!(backoff.attempts(&"b"), 0);
        let first_b = backoff.next_delay("b");
        assert!(first_b <= DEFAULT_BASE);
        backoff.reset(&"a");
        assert_eq!(backoff.attempts(&"a"), 0);
        assert!(backoff.next_delay("a") <= DEFAULT_BASE);
    }
}
