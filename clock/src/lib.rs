//! Time as a dependency: every part of the gateway (submissions, deliveries and their visibility
//! timeout, deadlines and overdue cases, SAMR retries, calendar alerts) reads the one [`Clock`] it
//! was started with, so tests can move time end to end.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::sync::Mutex;
use std::time::Instant;
use yrdx_proto::Timestamp;

/// Where the gateway reads the current time.
pub trait Clock: Send + Sync {
    /// Now, to the nanosecond the source gives.
    fn now(&self) -> Timestamp;

    /// Now in milliseconds since the Unix epoch (sub-millisecond parts dropped, never rounded up).
    fn now_ms(&self) -> i64 {
        to_ms(&self.now())
    }
}

/// Milliseconds since the Unix epoch of a timestamp (floor).
pub fn to_ms(t: &Timestamp) -> i64 {
    t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos.clamp(0, 999_999_999) / 1_000_000))
}

/// The timestamp with its fraction of a second dropped: what records carry (every partner format
/// carries whole seconds, so a record stamped by the gateway loses nothing in translation).
pub fn whole_seconds(t: Timestamp) -> Timestamp {
    Timestamp { seconds: t.seconds, nanos: 0 }
}

/// The system clock, with its full precision (a truncated "now" made `now + Retry-After` up to a
/// second early).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
    }
}

/// A clock for tests: set to any time, then either stopped there or running on from it at the
/// speed of real time.
pub struct ManualClock {
    state: Mutex<(Timestamp, Instant)>,
    running: bool,
}

impl ManualClock {
    /// A clock stopped at `at`: it moves only when [`ManualClock::set`] is called.
    pub fn new(at: Timestamp) -> ManualClock {
        ManualClock { state: Mutex::new((at, Instant::now())), running: false }
    }

    /// A clock that starts at `at` and runs on in real time (visibility timeouts and retry delays
    /// then elapse as they would), and jumps when [`ManualClock::set`] is called.
    pub fn running(at: Timestamp) -> ManualClock {
        ManualClock { state: Mutex::new((at, Instant::now())), running: true }
    }

    /// Sets the time.
    pub fn set(&self, at: Timestamp) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = (at, Instant::now());
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        let (at, since) = *self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !self.running {
            return at;
        }
        let elapsed = since.elapsed();
        let nanos = i64::from(at.nanos) + i64::from(elapsed.subsec_nanos());
        Timestamp {
            seconds: at.seconds.saturating_add(elapsed.as_secs() as i64).saturating_add(nanos / 1_000_000_000),
            nanos: (nanos % 1_000_000_000) as i32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_keeps_sub_second_precision() {
        // Two readings a few milliseconds apart differ below the second at least once in a
        // hundred tries (a truncated clock would give nanos == 0 every time).
        let fractional = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(3));
            SystemClock.now().nanos != 0
        });
        assert!(fractional);
    }

    #[test]
    fn a_stopped_clock_stays_and_a_running_one_moves_on() {
        let at = Timestamp { seconds: 1_700_000_000, nanos: 999_000_000 };
        let stopped = ManualClock::new(at);
        let running = ManualClock::running(at);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(stopped.now(), at);
        let later = running.now();
        assert!(to_ms(&later) >= to_ms(&at) + 20, "{later:?}");
        assert!((0..1_000_000_000).contains(&later.nanos));
        running.set(Timestamp { seconds: 5, nanos: 0 });
        assert!(running.now().seconds < 6);
        assert_eq!(to_ms(&Timestamp { seconds: 2, nanos: 1_999_999 }), 2001);
        assert_eq!(whole_seconds(at), Timestamp { seconds: 1_700_000_000, nanos: 0 });
    }
}
