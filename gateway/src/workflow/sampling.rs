//! A sampling record is accepted only for a known plan it fits: its region participates, its
//! category is in the plan, its sales channel is allowed, it was sampled by the plan's deadline,
//! and the region's quota is not used up ([`super::quota`]). It goes to the plan's lead region;
//! the same product checked within 6 months is accepted with a warning
//! ([`super::mutual_recognition`]). `docs/domain.md` section 4.2; clause
//! `domain.4.2.sampling-acceptance`.

use super::{mutual_recognition, quota, Batch, Route, RouteError, Step};
use yrdx_proto::v1::{PlanChannel, ProductCategory, SalesChannel, SamplingRecord, SpotCheckPlan};

/// The plan a sampling record names, which must be known.
pub(super) async fn plan_of(step: &Step<'_>, s: &SamplingRecord) -> Result<SpotCheckPlan, RouteError> {
    step.lookup.plan(&s.plan_id).await?.ok_or_else(|| {
        step.refuse(format!("plan {} is not known to the exchange (its lead region must publish it first)", s.plan_id))
    })
}

/// Checks a sampling record against its plan, then routes it to the plan's lead region.
pub(super) async fn route(
    s: &SamplingRecord,
    step: &Step<'_>,
    batch: &mut Batch,
    r: &mut Route,
) -> Result<(), RouteError> {
    let plan = plan_of(step, s).await?;
    let Some(part) = plan.participants.iter().find(|p| p.region == s.sampling_region) else {
        return Err(
            step.refuse(format!("sampling region {} does not participate in plan {}", s.sampling_region, plan.plan_id))
        );
    };
    let category = s.product.as_ref().map(|p| p.category).unwrap_or(0);
    if !plan.categories.contains(&category) {
        let code =
            ProductCategory::try_from(category).ok().and_then(yrdx_proto::codes::category_code).unwrap_or_default();
        return Err(step.refuse(format!("category {code} is not in plan {}", plan.plan_id)));
    }
    let channel_ok = match PlanChannel::try_from(plan.channel) {
        Ok(PlanChannel::Both) => true,
        Ok(PlanChannel::Online) => s.channel == SalesChannel::Online as i32,
        Ok(PlanChannel::Offline) => s.channel == SalesChannel::Offline as i32,
        _ => false,
    };
    if !channel_ok {
        let ch = SalesChannel::try_from(s.channel).map(|c| c.as_str_name()).unwrap_or("?");
        let pc = PlanChannel::try_from(plan.channel).map(|c| c.as_str_name()).unwrap_or("?");
        return Err(step.refuse(format!("channel {ch} is not allowed by plan {} ({pc})", plan.plan_id)));
    }
    if let (Some(on), Some(deadline)) = (&s.sampled_on, &plan.sampling_deadline) {
        if on.to_days() > deadline.to_days() {
            return Err(
                step.refuse(format!("sampled on {on}, after plan {}'s sampling deadline {deadline}", plan.plan_id))
            );
        }
    }
    quota::check(s, &plan, part, step, batch).await?;
    r.warnings.extend(mutual_recognition::earlier_checks(s, step, batch).await?);
    batch.samplings.push(s.clone());
    r.add(&plan.lead_region, step.from);
    Ok(())
}
