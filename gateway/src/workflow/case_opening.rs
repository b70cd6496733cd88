//! A NONCONFORMING result opens a disposal case: transferred at once by the sampling (origin)
//! region to the responsible region (the producer's province, else the seller's), with its first
//! stage's due date. Its id comes from the sample, so a resent result opens no second case.
//! `docs/domain.md` section 4.4; clause `domain.4.4.case-opening`.

use super::cases::dispatch;
use super::disposal::{apply, transfer_event, Deadlines, TransitionError};
use super::{Route, RouteError, Step};
use yrdx_proto::calendar::Calendar;
use yrdx_proto::v1::{CaseStatus, Conclusion, DisposalCase, InspectionResult, SamplingRecord};
use yrdx_proto::Timestamp;

/// The region responsible for a case: the producer's province, else the seller's.
pub fn responsible_region(producer_region: Option<&str>, seller_region: &str) -> String {
    yrdx_proto::identifiers::province_of(producer_region.unwrap_or(seller_region))
}

/// The id of the case opened for a sample's nonconforming result (deterministic, so a resent
/// result opens no second case).
pub fn case_id_for(sample_id: &str) -> String {
    let tail: String = sample_id.chars().rev().take(37).collect::<Vec<_>>().into_iter().rev().collect();
    format!("CZ-{tail}")
}

/// The case a NONCONFORMING result opens, transferred at `now` by the sampling (origin) region to
/// the responsible region, with its first stage's due date.
pub fn open_for_result(
    sample: &SamplingRecord,
    result: &InspectionResult,
    now: Timestamp,
    calendar: &Calendar,
    deadlines: &Deadlines,
) -> Result<DisposalCase, TransitionError> {
    let case_id = case_id_for(&sample.sample_id);
    let seller_region = sample.seller.as_ref().map(|p| p.region.as_str()).unwrap_or("");
    let new = DisposalCase {
        case_id: case_id.clone(),
        origin_region: sample.sampling_region.clone(),
        responsible_region: responsible_region(sample.producer.as_ref().map(|p| p.region.as_str()), seller_region),
        sample_id: sample.sample_id.clone(),
        report_no: result.report_no.clone(),
        opened_at: Some(now),
        status: CaseStatus::Unspecified as i32,
        due_on: None,
        events: vec![],
        due_on_provisional: false,
    };
    apply(&new, &transfer_event(&case_id, now, &sample.sampling_region), calendar, deadlines)
}

/// Opens (and dispatches) the case of a nonconforming result, unless it is already open.
pub(super) async fn open_if_nonconforming(
    sample: &SamplingRecord,
    i: &InspectionResult,
    step: &Step<'_>,
    r: &mut Route,
) -> Result<(), RouteError> {
    if i.conclusion != Conclusion::Nonconforming as i32
        || step.lookup.case(&case_id_for(&sample.sample_id)).await?.is_some()
    {
        return Ok(());
    }
    let case = open_for_result(sample, i, step.cx.now, step.cx.calendar, step.cx.deadlines)
        .map_err(|e| step.refuse(e.to_string()))?;
    dispatch(&case, Some(sample), Some(i), step, r)
}
