//! A region takes at most its quota of samples in a plan: the stored sampling records of the plan
//! and region, plus those earlier in the same document, other than the record itself (a resent
//! record replaces its copy and uses no second place). `docs/domain.md` section 4.2; clause
//! `domain.4.2.sampling-acceptance`.

use super::{Batch, RouteError, Step};
use yrdx_proto::v1::{PlanParticipant, SamplingRecord, SpotCheckPlan};

/// Refuses the record when its region's quota in the plan is used up.
pub(super) async fn check(
    s: &SamplingRecord,
    plan: &SpotCheckPlan,
    part: &PlanParticipant,
    step: &Step<'_>,
    batch: &Batch,
) -> Result<(), RouteError> {
    let quota = part.quota.max(0) as u64;
    // Counted only up to the quota: counting further changes no decision.
    let stored = step.lookup.sampling_count(&plan.plan_id, &s.sampling_region, &s.sample_id, quota).await?;
    let in_batch = batch
        .samplings
        .iter()
        .filter(|b| b.plan_id == plan.plan_id && b.sampling_region == s.sampling_region && b.sample_id != s.sample_id)
        .count() as u64;
    if stored + in_batch >= quota {
        return Err(step.refuse(format!(
            "region {}'s quota of {} samples in plan {} is used up",
            s.sampling_region, part.quota, plan.plan_id
        )));
    }
    Ok(())
}
