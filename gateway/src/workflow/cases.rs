//! Disposal cases between regions: a case goes to its responsible region (a connected partner
//! gets the transfer; an unconnected region's transfer goes to SAMR to forward; a local case stays
//! where it is); only the origin region transfers a case; feedback on a known case, by the region
//! the event names, goes to both sides through the state machine ([`super::disposal`]).
//! `docs/domain.md` section 5; clauses `domain.5.responsible-region`, `domain.5.state-machine`.

use super::disposal::{apply, transfer_event};
use super::{due_text, samr_rule, Route, RouteError, Step};
use yrdx_adapters::Record;
use yrdx_proto::v1::{CaseFeedback, CaseStatus, DisposalCase, InspectionResult, SamplingRecord};

/// Sends a case to its responsible region and keeps the gateway's copy.
pub(super) fn dispatch(
    case: &DisposalCase,
    sample: Option<&SamplingRecord>,
    report: Option<&InspectionResult>,
    step: &Step<'_>,
    r: &mut Route,
) -> Result<(), RouteError> {
    let due = due_text(case);
    r.stored.push(Record::CaseTransfer(case.clone()));
    if case.origin_region == case.responsible_region {
        r.notices.push((case.origin_region.clone(), Record::CaseTransfer(case.clone())));
        r.warnings.push(format!(
            "case {} opened and kept local in {} (not transferred), due {due}",
            case.case_id, case.origin_region
        ));
    } else if step.cx.config.partner_by_region(&case.responsible_region).is_some() {
        r.notices.push((case.responsible_region.clone(), Record::CaseTransfer(case.clone())));
        r.notices.push((case.origin_region.clone(), Record::CaseTransfer(case.clone())));
        r.warnings.push(format!("case {} transferred to {}, due {due}", case.case_id, case.responsible_region));
    } else {
        let (Some(sample), Some(report)) = (sample, report) else {
            return Err(step.refuse(format!(
                "region {} has no connected partner: SAMR forwards the transfer, which needs the case's sample {} and report {} to be known",
                case.responsible_region, case.sample_id, case.report_no
            )));
        };
        samr_rule::case_forward(case, sample, report, r);
        r.notices.push((case.origin_region.clone(), Record::CaseTransfer(case.clone())));
        r.warnings.push(format!(
            "case {}: region {} has no connected partner; the transfer is queued for SAMR to forward (AJYS), due {due}",
            case.case_id, case.responsible_region
        ));
    }
    Ok(())
}

/// A case transferred by its origin region: opened by the gateway (its due date), dispatched.
pub(super) async fn route_transfer(c: &DisposalCase, step: &Step<'_>, r: &mut Route) -> Result<(), RouteError> {
    let from = step.from;
    if c.origin_region != from {
        return Err(step.refuse(format!(
            "only the origin region {} may transfer the case; the sender is {from}",
            c.origin_region
        )));
    }
    if step.lookup.case(&c.case_id).await?.is_some() {
        return Err(step.refuse(format!("case {} already exists", c.case_id)));
    }
    let new = DisposalCase { status: CaseStatus::Unspecified as i32, due_on: None, events: vec![], ..c.clone() };
    let at = c.opened_at.unwrap_or(step.cx.now);
    let case = apply(&new, &transfer_event(&c.case_id, at, from), step.cx.calendar, step.cx.deadlines)
        .map_err(|e| step.refuse(e.to_string()))?;
    let sample = step.lookup.sampling(&c.sample_id).await?;
    let report = step.lookup.inspection(&c.report_no).await?;
    // The gateway's copy (with its due date) is what the other side receives.
    dispatch(&case, sample.as_ref(), report.as_ref(), step, r)?;
    r.notices.retain(|(region, _)| region != from);
    Ok(())
}

/// Feedback on a known case by the region its event names: the next state goes to both sides.
pub(super) async fn route_feedback(f: &CaseFeedback, step: &Step<'_>, r: &mut Route) -> Result<(), RouteError> {
    let from = step.from;
    let case = step
        .lookup
        .case(&f.case_id)
        .await?
        .ok_or_else(|| step.refuse(format!("feedback on a known case: case {} is not known", f.case_id)))?;
    let event = f.event.clone().unwrap_or_default();
    if event.by_region != from {
        return Err(step.refuse(format!("the event's region {} is not the sender {from}", event.by_region)));
    }
    let next = apply(&case, &event, step.cx.calendar, step.cx.deadlines).map_err(|e| step.refuse(e.to_string()))?;
    samr_rule::closed_case(&next, r);
    if next.due_on_provisional && next.status != case.status {
        r.warnings.push(format!("case {}: the new stage is due {}", next.case_id, due_text(&next)));
    }
    r.stored.push(Record::CaseTransfer(next));
    r.add(&case.origin_region, from);
    r.add(&case.responsible_region, from);
    Ok(())
}
