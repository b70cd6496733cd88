//! The working-day calendar's year end (`docs/domain.md` section 5; clause `domain.5.deadlines`): the operator is warned at
//! start-up and daily from 60 days before the calendar's last covered day; due dates that needed
//! an uncovered year are provisional, and when a calendar that covers it is loaded they are
//! recomputed — where a date changes, the case is sent again to both sides (same case id, the
//! corrected due date).

use super::disposal;
use crate::state::Gateway;
use std::sync::Arc;
use tokio::sync::watch;
use tracing::{info, warn};
use yrdx_proto::calendar::Calendar;
use yrdx_proto::civil::BeijingTime;
use yrdx_proto::v1::CaseStatus;
use yrdx_proto::Date;

/// How many days before the calendar's last covered day the operator is warned, daily.
pub const WARN_DAYS_BEFORE_END: i64 = 60;

/// The operator's warning about the calendar's end on `today`, if one is due: from
/// [`WARN_DAYS_BEFORE_END`] days before its last covered day, and every day after it.
pub fn year_end_warning(calendar: &Calendar, today: &Date) -> Option<String> {
    let Some((_, last)) = calendar.covered_range() else {
        return Some("the working-day calendar covers no year: every due date is provisional".into());
    };
    let left = last.to_days() - today.to_days();
    if left > WARN_DAYS_BEFORE_END {
        return None;
    }
    let next = last.year + 1;
    Some(if left >= 0 {
        format!(
            "the working-day calendar ends on {last} ({left} days left): due dates reaching into {next} are provisional \
             (counted Monday–Friday) until a calendar_file covering {next} is loaded"
        )
    } else {
        format!(
            "the working-day calendar ended on {last}: every due date after it is provisional (counted Monday–Friday) \
             until a calendar_file covering {next} is loaded"
        )
    })
}

/// What one settling pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Cases whose due date changed: sent again to both sides.
    pub resent: Vec<String>,
    /// Cases whose date stayed but is no longer provisional.
    pub confirmed: Vec<String>,
    /// Open cases still provisional.
    pub still_provisional: Vec<String>,
}

/// Recomputes every provisional due date of an open case with the gateway's calendar. A changed
/// date is stored and the case sent again to both sides under `{case_id}-DUE-{yyyyMMdd}`; an
/// unchanged date that is now settled only loses its mark.
pub async fn settle_provisional_due_dates(g: &Gateway) -> Result<Settled, crate::store::StoreError> {
    let mut out = Settled::default();
    let calendar = g.calendar();
    for case in g.store.cases().await? {
        let status = CaseStatus::try_from(case.status).unwrap_or(CaseStatus::Unspecified);
        if !case.due_on_provisional || yrdx_proto::validate::is_final(status) {
            continue;
        }
        let Some(next) = disposal::settle_due_date(&case, &calendar, &g.deadlines) else {
            out.still_provisional.push(case.case_id.clone());
            continue;
        };
        let changed = next.due_on != case.due_on;
        let now = yrdx_clock::whole_seconds(g.clock.now());
        let deliveries = if changed {
            let day = next.due_on.map(|d| d.to_compact()).unwrap_or_default();
            // At most 40 + 5 + 8 characters: within every partner's 64.
            g.case_to_both_sides(&next, &format!("{}-DUE-{day}", next.case_id), now)
        } else {
            Vec::new()
        };
        let recipients: Vec<String> = deliveries.iter().map(|d| d.recipient.clone()).collect();
        if !g.store.commit_case_revision(&case, &next, deliveries, g.clock.now_ms()).await? {
            // Changed meanwhile by a feedback: its own stage has its own due date.
            continue;
        }
        if next.due_on_provisional {
            out.still_provisional.push(next.case_id.clone());
        }
        if changed {
            warn!(case = %next.case_id, was = %super::due_text(&case), now = %super::due_text(&next),
                "due date recomputed with the extended calendar: the case is sent again to both sides");
            for r in &recipients {
                g.wake(r);
            }
            out.resent.push(next.case_id);
        } else {
            info!(case = %next.case_id, due = %super::due_text(&next), "provisional due date confirmed by the calendar");
            out.confirmed.push(next.case_id);
        }
    }
    Ok(out)
}

/// At start-up: settles what the calendar now covers and warns about what it does not. Then,
/// in the background, warns once a day (by the gateway's clock) while the calendar's end is near.
pub async fn start(gateway: Arc<Gateway>, mut stop: watch::Receiver<bool>) -> Result<(), crate::store::StoreError> {
    let g = gateway.clone();
    let settled = settle_provisional_due_dates(&g).await?;
    if !settled.still_provisional.is_empty() {
        warn!(cases = settled.still_provisional.len(), ids = %settled.still_provisional.join(", "),
            "open cases with provisional due dates: extend the working-day calendar");
    }
    let mut last_warned: Option<Date> = None;
    let mut warn_if_due = move |g: &Gateway| {
        let today = BeijingTime::of(&g.clock.now()).date;
        if last_warned == Some(today) {
            return;
        }
        if let Some(message) = year_end_warning(&g.calendar(), &today) {
            warn!(%today, "{message}");
        }
        last_warned = Some(today);
    };
    warn_if_due(&gateway);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = stop.changed() => break,
            }
            warn_if_due(&gateway);
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse_iso(s).unwrap()
    }

    #[test]
    fn warned_from_sixty_days_before_the_end_and_after_it() {
        let cal = Calendar::embedded();
        assert_eq!(year_end_warning(&cal, &d("2026-10-31")), None, "61 days left");
        let w = year_end_warning(&cal, &d("2026-11-01")).expect("60 days left");
        assert!(w.contains("ends on 2026-12-31 (60 days left)"), "{w}");
        assert!(w.contains("2027") && w.contains("provisional"), "{w}");
        let w = year_end_warning(&cal, &d("2026-12-31")).expect("last day");
        assert!(w.contains("(0 days left)"), "{w}");
        let w = year_end_warning(&cal, &d("2027-01-05")).expect("past the end");
        assert!(w.contains("ended on 2026-12-31"), "{w}");
    }
}
