//! An inspection result references a known sample; it goes to the plan's lead region and the
//! sampling region, and to SAMR joined with its sample ([`super::samr_rule`]); a nonconforming
//! result opens a disposal case ([`super::case_opening`]). `docs/domain.md` section 4.3; clause
//! `domain.4.3.results`.

use super::{case_opening, sampling, samr_rule, Route, RouteError, Step};
use yrdx_proto::v1::InspectionResult;

/// Routes a result to the lead and sampling regions, with what it causes.
pub(super) async fn route(i: &InspectionResult, step: &Step<'_>, r: &mut Route) -> Result<(), RouteError> {
    let sample =
        step.lookup.sampling(&i.sample_id).await?.ok_or_else(|| {
            step.refuse(format!("results reference a known sample: sample {} is not known", i.sample_id))
        })?;
    let plan = sampling::plan_of(step, &sample).await?;
    r.add(&plan.lead_region, step.from);
    r.add(&sample.sampling_region, step.from);
    samr_rule::spot_check_result(&sample, i, r);
    case_opening::open_if_nonconforming(&sample, i, step, r).await
}
