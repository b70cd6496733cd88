//! A spot-check plan goes to every participating region but the sender (`docs/domain.md`
//! section 4.1; clause `domain.4.1.plan-distribution`).

use super::Route;
use yrdx_proto::v1::SpotCheckPlan;

/// Routes a plan to its participants.
pub(super) fn route(plan: &SpotCheckPlan, from: &str, r: &mut Route) {
    for part in &plan.participants {
        r.add(&part.region, from);
    }
}
