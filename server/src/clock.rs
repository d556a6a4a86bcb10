//! Where "now" comes from. Production reads the system clock; tests inject
//! a [`TestClock`] and move it forward instead of sleeping until a link or
//! session expires.

use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The system clock plus whatever a test skipped: time still flows, and
/// [`TestClock::advance`] jumps ahead. Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct TestClock {
    skipped: Arc<Mutex<Duration>>,
}

impl TestClock {
    /// Moves this clock (and its clones) `by` into the future.
    pub fn advance(&self, by: std::time::Duration) {
        let by = Duration::try_from(by).expect("a test advances by a sane duration");
        *self.skipped.lock().expect("clock lock") += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + *self.skipped.lock().expect("clock lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_jumps_ahead_and_clones_follow() {
        let clock = TestClock::default();
        let twin = clock.clone();
        let before = SystemClock.now();
        clock.advance(std::time::Duration::from_secs(3600));
        let later = twin.now();
        assert!(later - before >= Duration::hours(1), "{later} vs {before}");
        assert!(later - before < Duration::hours(1) + Duration::minutes(1));
    }
}
