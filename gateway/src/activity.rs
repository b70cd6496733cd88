//! Submissions per partner and minute, kept in memory for the console's overview (the last hour:
//! a small ring per partner, fed where the metrics count each Submit's outcome). Lost on restart,
//! as the counters of `/metrics` are; Prometheus keeps the long history.

use crate::metrics::Outcome;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

/// Minutes kept per partner.
pub const MINUTES_KEPT: usize = 60;

/// One minute of one partner's submissions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Minute {
    /// Minutes since the Unix epoch.
    minute: i64,
    /// Accepted (or answered again as duplicates).
    accepted: u64,
    /// Refused, by outcome word (`invalid`, `denied`, `rate_limited` …).
    refused: BTreeMap<String, u64>,
}

/// The last hour of submissions per partner.
#[derive(Debug, Default)]
pub struct SubmissionActivity {
    partners: Mutex<HashMap<String, VecDeque<Minute>>>,
}

/// One partner's last hour, as the console shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HourOfSubmissions {
    /// Submissions per minute, oldest first, the last entry being the current minute
    /// ([`MINUTES_KEPT`] entries).
    pub per_minute: Vec<u64>,
    /// Every submission of the hour, accepted or refused.
    pub total: u64,
    /// Refusals of the hour by outcome word.
    pub refused: BTreeMap<String, u64>,
}

/// The word an outcome is counted under (as in the metrics' `outcome` label).
pub fn outcome_word(outcome: Outcome) -> String {
    format!("{outcome:?}")
}

impl SubmissionActivity {
    /// Counts one Submit of `partner` that ended with `outcome` at `now_ms` (Unix milliseconds).
    pub fn record(&self, partner: &str, outcome: Outcome, now_ms: i64) {
        let minute = now_ms.div_euclid(60_000);
        let mut partners = self.partners.lock().unwrap_or_else(PoisonError::into_inner);
        let ring = partners.entry(partner.to_string()).or_default();
        // A clock moved back (tests, NTP) lands in the newest minute rather than reordering.
        let newest = ring.back().map(|m| m.minute);
        if newest.is_none_or(|n| n < minute) {
            ring.push_back(Minute { minute, ..Minute::default() });
        }
        while ring.len() > MINUTES_KEPT {
            ring.pop_front();
        }
        let Some(slot) = ring.back_mut() else { return };
        match outcome {
            Outcome::accepted | Outcome::duplicate => slot.accepted += 1,
            other => *slot.refused.entry(outcome_word(other)).or_default() += 1,
        }
    }

    /// The hour of `partner` ending with the minute of `now_ms`.
    pub fn last_hour(&self, partner: &str, now_ms: i64) -> HourOfSubmissions {
        let current = now_ms.div_euclid(60_000);
        let first = current - (MINUTES_KEPT as i64 - 1);
        let mut hour = HourOfSubmissions { per_minute: vec![0; MINUTES_KEPT], ..Default::default() };
        let partners = self.partners.lock().unwrap_or_else(PoisonError::into_inner);
        for m in partners.get(partner).into_iter().flatten() {
            if m.minute < first || m.minute > current {
                continue;
            }
            let refused: u64 = m.refused.values().sum();
            let Ok(i) = usize::try_from(m.minute - first) else { continue };
            hour.per_minute[i] += m.accepted + refused;
            hour.total += m.accepted + refused;
            for (why, n) in &m.refused {
                *hour.refused.entry(why.clone()).or_default() += n;
            }
        }
        hour
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_710_468_000_000; // 2024-03-15 10:00 Beijing time, on a minute boundary.

    #[test]
    fn counts_per_minute_and_refusals_by_outcome() {
        let a = SubmissionActivity::default();
        a.record("jiangsu", Outcome::accepted, T0);
        a.record("jiangsu", Outcome::accepted, T0 + 59_999);
        a.record("jiangsu", Outcome::invalid, T0 + 60_000);
        a.record("jiangsu", Outcome::rate_limited, T0 + 61_000);
        a.record("zhejiang", Outcome::duplicate, T0);
        let hour = a.last_hour("jiangsu", T0 + 61_000);
        assert_eq!(hour.per_minute.len(), MINUTES_KEPT);
        assert_eq!(&hour.per_minute[MINUTES_KEPT - 2..], &[2, 2]);
        assert_eq!(hour.total, 4);
        assert_eq!(hour.refused.get("invalid"), Some(&1));
        assert_eq!(hour.refused.get("rate_limited"), Some(&1));
        assert_eq!(a.last_hour("zhejiang", T0).total, 1);
        assert_eq!(
            a.last_hour("beijing", T0),
            HourOfSubmissions { per_minute: vec![0; MINUTES_KEPT], ..Default::default() }
        );
    }

    #[test]
    fn minutes_older_than_the_hour_drop_out() {
        let a = SubmissionActivity::default();
        a.record("jiangsu", Outcome::accepted, T0);
        a.record("jiangsu", Outcome::accepted, T0 + 59 * 60_000);
        assert_eq!(a.last_hour("jiangsu", T0 + 59 * 60_000).total, 2, "the first minute is still in the hour");
        let later = a.last_hour("jiangsu", T0 + 60 * 60_000);
        assert_eq!(later.total, 1);
        assert_eq!(later.per_minute[MINUTES_KEPT - 2], 1);
        for i in 0..100 {
            a.record("jiangsu", Outcome::accepted, T0 + (100 + i) * 60_000);
        }
        assert_eq!(a.partners.lock().unwrap()["jiangsu"].len(), MINUTES_KEPT, "the ring stays bounded");
    }
}
