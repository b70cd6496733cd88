//! A plan's summary: for each participating region and each category of the plan, the samples
//! taken against the quota, the results received (conforming and not), the nonconforming rate and
//! the cases open and overdue. `docs/domain.md` section 4.6; clause `domain.4.6.plan-summary`.
//!
//! `Records.GetPlanSummary` and the console's plans page both show these counts.

use super::disposal;
use crate::store::PlanRecords;
use std::collections::HashMap;
use yrdx_proto::v1::{CaseStatus, Conclusion, DisposalCase, InspectionResult, SpotCheckPlan};
use yrdx_proto::Date;

/// The counts of one region and category of a plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SummaryRow {
    /// The participating region's code.
    pub region: String,
    /// The product category (`ProductCategory` as a number).
    pub category: i32,
    /// The region's quota of samples in the plan.
    pub quota: i32,
    /// Sampling records of this region and category.
    pub sampled: u32,
    /// Inspection results of those samples.
    pub results: u32,
    /// Of those results, the conforming ones.
    pub conforming: u32,
    /// Of those results, the nonconforming ones.
    pub nonconforming: u32,
    /// Disposal cases of those samples not yet in a final state.
    pub open_cases: u32,
    /// Disposal cases of those samples whose current stage is overdue on the day of the summary.
    pub overdue_cases: u32,
}

impl SummaryRow {
    /// Nonconforming results over all results (0 when there are none).
    pub fn nonconforming_rate(&self) -> f64 {
        if self.results == 0 {
            0.0
        } else {
            f64::from(self.nonconforming) / f64::from(self.results)
        }
    }
}

/// The summary of `plan` from the records it holds, one row per participant and category in the
/// plan's order; `today` (a Beijing date) decides which cases are overdue.
pub fn summarise(plan: &SpotCheckPlan, held: &PlanRecords, today: &Date) -> Vec<SummaryRow> {
    let results = by_sample(&held.inspections, |i: &InspectionResult| &i.sample_id);
    let cases = by_sample(&held.cases, |c: &DisposalCase| &c.sample_id);
    let mut rows = Vec::with_capacity(plan.participants.len() * plan.categories.len());
    for part in &plan.participants {
        for &category in &plan.categories {
            let mut row = SummaryRow { region: part.region.clone(), category, quota: part.quota, ..Default::default() };
            let samples = held.samplings.iter().filter(|s| {
                s.sampling_region == part.region && s.product.as_ref().map(|p| p.category) == Some(category)
            });
            for s in samples {
                row.sampled += 1;
                for i in results.get(s.sample_id.as_str()).into_iter().flatten() {
                    row.results += 1;
                    if i.conclusion == Conclusion::Nonconforming as i32 {
                        row.nonconforming += 1;
                    } else {
                        row.conforming += 1;
                    }
                }
                for c in cases.get(s.sample_id.as_str()).into_iter().flatten() {
                    let status = CaseStatus::try_from(c.status).unwrap_or(CaseStatus::Unspecified);
                    if !yrdx_proto::validate::is_final(status) {
                        row.open_cases += 1;
                    }
                    if disposal::is_overdue(c, today) {
                        row.overdue_cases += 1;
                    }
                }
            }
            rows.push(row);
        }
    }
    rows
}

fn by_sample<'a, T>(records: &'a [T], sample_id: impl Fn(&'a T) -> &'a String) -> HashMap<&'a str, Vec<&'a T>> {
    let mut out: HashMap<&str, Vec<&T>> = HashMap::new();
    for r in records {
        out.entry(sample_id(r).as_str()).or_default().push(r);
    }
    out
}
