//! Overdue stages (`docs/domain.md` section 5; clause `domain.5.deadlines`): a stage whose due date has passed notifies both sides
//! once; the check runs on a timer by the gateway's clock, and the store's ledger
//! (`overdue_notices`) makes "once" hold across restarts.

use crate::state::Gateway;
use std::sync::Arc;
use tokio::sync::watch;
use tracing::warn;

/// How often overdue stages are looked for (the clock may be moved in tests).
const EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Notifies both sides, once, of every case whose current stage is overdue (`docs/domain.md`
/// section 5). The partners' formats have no overdue message: each side receives the case in
/// its case-transfer format (canonical for Shanghai) under the message id
/// `{case_id}-OVERDUE-{STATE}`. Returns the case ids notified.
pub async fn check_overdue(g: &Gateway) -> Result<Vec<String>, crate::store::StoreError> {
    let now = yrdx_clock::whole_seconds(g.clock.now());
    let today = yrdx_proto::civil::BeijingTime::of(&now).date;
    let now_ms = g.clock.now_ms();
    let mut notified = Vec::new();
    for case in g.store.cases().await? {
        if !super::disposal::is_overdue(&case, &today) || g.store.overdue_notified(&case.case_id, case.status).await? {
            continue;
        }
        let state = yrdx_proto::v1::CaseStatus::try_from(case.status)
            .map(|s| s.as_str_name().trim_start_matches("CASE_STATUS_").to_string())
            .unwrap_or_default();
        // At most 40 + 9 + 11 characters: within every partner's 64.
        let message_id = format!("{}-OVERDUE-{state}", case.case_id);
        let deliveries = g.case_to_both_sides(&case, &message_id, now);
        let recipients: Vec<String> = deliveries.iter().map(|d| d.recipient.clone()).collect();
        if g.store.commit_overdue_notice(&case.case_id, case.status, deliveries, now_ms).await? {
            warn!(case = %case.case_id, due = %case.due_on.map(|d| d.to_string()).unwrap_or_default(), %state, "case overdue: both sides notified");
            for r in &recipients {
                g.wake(r);
            }
            notified.push(case.case_id.clone());
        }
    }
    Ok(notified)
}

/// Runs [`check_overdue`] every [`EVERY`] on the replica that leads the deadline checks, until
/// `stop` says so.
pub fn spawn(gateway: Arc<Gateway>, stop: watch::Receiver<bool>) {
    let store = gateway.store.clone();
    crate::leader::spawn(store, crate::store::LeaderRole::Deadlines, EVERY, stop, move || {
        let g = gateway.clone();
        async move {
            if let Err(e) = check_overdue(&g).await {
                warn!(error = %e, "overdue check failed");
            }
        }
    });
}
