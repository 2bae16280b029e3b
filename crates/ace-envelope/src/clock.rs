//! Injected time: the [`Clock`] trait, the real [`SystemClock`] and the test [`ManualClock`].
//!
//! Nothing in ACE::COMMS reads the system time directly (time and storage are
//! injected); code that needs "now" takes a `&dyn Clock` or an `Arc<dyn Clock>`, so tests pause
//! and advance time instead of sleeping. Time is a `chrono::DateTime<Utc>` with nanosecond
//! resolution — the same type as the envelope's `created_at`, so no conversion sits in between.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time, UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock of the machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; for tests. Shared by reference or `Arc`, it is
/// lock-free (one atomic of Unix nanoseconds).
#[derive(Debug)]
pub struct ManualClock {
    unix_nanos: AtomicI64,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            unix_nanos: AtomicI64::new(to_nanos(start)),
        }
    }

    /// A clock stopped at 2026-01-01T00:00:00Z, a fixed point for reproducible tests.
    pub fn fixed() -> Self {
        Self::new(DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.unix_nanos.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Sets the clock to `to` (backwards too: tests of clock skew need it).
    pub fn set(&self, to: DateTime<Utc>) {
        self.unix_nanos.store(to_nanos(to), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.unix_nanos.load(Ordering::SeqCst))
    }
}

fn to_nanos(t: DateTime<Utc>) -> i64 {
    // Outside 1677..2262 the nanosecond count overflows; saturate rather than wrap.
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_manual_clock_when_advanced_then_now_moves_by_exactly_that_much() {
        let clock = ManualClock::fixed();
        let before = clock.now();
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now() - before, chrono::Duration::milliseconds(1500));
    }

    #[test]
    fn given_a_manual_clock_when_set_back_then_now_goes_back() {
        let clock = ManualClock::fixed();
        let earlier = clock.now() - chrono::Duration::seconds(10);
        clock.set(earlier);
        assert_eq!(clock.now(), earlier);
    }
}
