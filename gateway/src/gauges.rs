//! What the metrics' gauges show, read from the store, the registry and the calendar at each
//! scrape (so they are never stale): mailbox depth and age, last contact, SAMR packages by state,
//! open and overdue cases by stage, provisional due dates, the calendar's end.

use crate::metrics::{MailboxReading, Readings};
use crate::state::Gateway;
use crate::store::PackageState;

use crate::workflow::disposal::{status_label, OPEN_STAGES as STAGES};

/// Reads every gauge's value.
pub async fn read(g: &Gateway) -> Result<Readings, crate::store::StoreError> {
    let now = g.clock.now();
    let now_ms = g.clock.now_ms();
    let mut readings = Readings::default();
    let config = g.config();
    for p in &config.partners {
        let depth = g.store.depth(&p.region).await?;
        let oldest = g.store.oldest_unacknowledged_ms(&p.region).await?;
        let in_flight = g.store.in_flight(&p.region, now_ms).await? as u64;
        readings.mailboxes.push(MailboxReading {
            partner: p.name.clone(),
            depth,
            in_flight,
            oldest_unacknowledged_secs: oldest.map(|t| (now_ms - t).max(0) as f64 / 1000.0).unwrap_or(0.0),
            last_contact_secs: g.last_contact(&p.name).map(|t| t.seconds as f64 + f64::from(t.nanos) / 1e9),
        });
    }
    let mut states: std::collections::BTreeMap<String, i64> =
        [PackageState::Pending, PackageState::Accepted, PackageState::Parked]
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect();
    for p in g.store.samr_packages().await? {
        *states.entry(p.state.as_str().to_string()).or_default() += 1;
    }
    readings.samr_packages = states.into_iter().collect();
    let today = yrdx_proto::civil::BeijingTime::of(&now).date;
    let mut open = [0i64; STAGES.len()];
    let mut overdue = [0i64; STAGES.len()];
    for case in g.store.cases().await? {
        let Some(i) = STAGES.iter().position(|s| *s as i32 == case.status) else { continue };
        open[i] += 1;
        if case.due_on_provisional {
            readings.provisional_due_dates += 1;
        }
        if crate::workflow::disposal::is_overdue(&case, &today) {
            overdue[i] += 1;
        }
    }
    readings.cases_open = STAGES.iter().zip(open).map(|(s, n)| (status_label(*s as i32), n)).collect();
    readings.cases_overdue = STAGES.iter().zip(overdue).map(|(s, n)| (status_label(*s as i32), n)).collect();
    // Midnight after the last covered day, Beijing time (UTC+8).
    readings.calendar_end_secs = g.calendar().covered_range().map(|(_, last)| (last.to_days() + 1) * 86_400 - 8 * 3600);
    Ok(readings)
}
