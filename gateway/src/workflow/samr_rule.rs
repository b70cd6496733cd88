//! What goes to SAMR (`docs/domain.md` section 7; clause `domain.7.samr-docking`): a spot-check
//! result once both its sample and result are held, a case transfer SAMR forwards to an
//! unconnected region (AJYS), a closed case, a nationwide or HIGH risk signal, and Shanghai's
//! responsibility reports (ZTZR). The records queue in the store's SAMR outbox; `crate::samr`
//! packages and pushes them.

use super::Route;
use yrdx_adapters::Record;
use yrdx_proto::v1::{CaseStatus, DisposalCase, InspectionResult, RiskLevel, RiskSignal, SamplingRecord};

/// The region whose responsibility reports go to SAMR (Shanghai's).
const RESPONSIBILITY_REPORTS_FROM: &str = "310000";

/// A spot-check result, the sample joined with its result.
pub(super) fn spot_check_result(sample: &SamplingRecord, result: &InspectionResult, r: &mut Route) {
    r.samr.push(Record::spot_check_result(sample, result));
}

/// A case SAMR forwards to a region with no connected partner.
pub(super) fn case_forward(case: &DisposalCase, sample: &SamplingRecord, report: &InspectionResult, r: &mut Route) {
    r.samr.push(Record::case_forward(case.clone(), sample, report));
}

/// A case in its final state.
pub(super) fn closed_case(case: &DisposalCase, r: &mut Route) {
    if case.status == CaseStatus::Closed as i32 {
        r.samr.push(Record::ClosedCase(case.clone()));
    }
}

/// A nationwide or HIGH risk signal.
pub(super) fn risk_signal(sig: &RiskSignal, r: &mut Route) {
    if sig.nationwide || sig.level == RiskLevel::High as i32 {
        r.samr.push(Record::RiskSignal(sig.clone()));
    }
}

/// Whether responsibility reports from `region` are taken (Shanghai's, for SAMR only).
pub(super) fn takes_responsibility_report_from(region: &str) -> bool {
    region == RESPONSIBILITY_REPORTS_FROM
}

/// A responsibility report, for SAMR only.
pub(super) fn responsibility_report(record: &Record, r: &mut Route) {
    r.samr.push(record.clone());
}
