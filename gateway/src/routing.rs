//! Who receives what (`domain.md` sections 4–6): a plan to its participants, a sampling record to
//! its plan's lead region, an inspection result to the lead and sampling regions, a risk signal to
//! every risk-signal partner but its sender, case transfers and feedback to the other side of the
//! case. One module, so the workflow rules can grow here.

use crate::config::{Config, PartnerConfig};
use crate::disposal::{self, Deadlines};
use crate::store::StoreError;
use yrdx_adapters::{beijing, Record, RecordKind};
use yrdx_proto::calendar::Calendar;
use yrdx_proto::v1::RiskLevel;
use yrdx_proto::v1::{
    CaseStatus, Conclusion, DisposalCase, InspectionResult, PlanChannel, ProductCategory, RiskSignal, RiskState,
    SalesChannel, SamplingRecord, SpotCheckPlan,
};
use yrdx_proto::Date;
use yrdx_proto::Timestamp;

/// Regions that take risk signals (`domain.md` section 6).
pub const RISK_SIGNAL_REGIONS: [&str; 3] = ["310000", "320000", "330000"];

/// What the rules look up in the store: the store's [`WorkflowRecords`] part.
pub use crate::store::WorkflowRecords as RecordLookup;

/// Records accepted earlier in the same document (they count towards quotas too).
#[derive(Debug, Default)]
pub struct Batch {
    samplings: Vec<SamplingRecord>,
}

/// The date `months` calendar months before `d` (the day clamped to the month's length).
fn months_before(d: &Date, months: i32) -> Date {
    let total = d.year * 12 + (d.month - 1) - months;
    let (y, m) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let day = (d.day as u32).min(yrdx_proto::civil::days_in_month(y as i64, m as u32));
    Date::from_ymd(y, m as u32, day).unwrap_or(*d)
}

async fn sampling_rules(
    s: &SamplingRecord,
    plan: &SpotCheckPlan,
    l: &dyn RecordLookup,
    batch: &Batch,
    what: &str,
) -> Result<Vec<String>, RouteError> {
    let refuse = |rule: String| Err(RouteError::Precondition { record: what.to_string(), rule });
    let Some(part) = plan.participants.iter().find(|p| p.region == s.sampling_region) else {
        return refuse(format!("sampling region {} does not participate in plan {}", s.sampling_region, plan.plan_id));
    };
    let category = s.product.as_ref().map(|p| p.category).unwrap_or(0);
    if !plan.categories.contains(&category) {
        let code =
            ProductCategory::try_from(category).ok().and_then(yrdx_proto::codes::category_code).unwrap_or_default();
        return refuse(format!("category {code} is not in plan {}", plan.plan_id));
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
        return refuse(format!("channel {ch} is not allowed by plan {} ({pc})", plan.plan_id));
    }
    if let (Some(on), Some(deadline)) = (&s.sampled_on, &plan.sampling_deadline) {
        if on.to_days() > deadline.to_days() {
            return refuse(format!("sampled on {on}, after plan {}'s sampling deadline {deadline}", plan.plan_id));
        }
    }
    let quota = part.quota.max(0) as u64;
    let stored = l.sampling_count(&plan.plan_id, &s.sampling_region, &s.sample_id, quota).await?;
    let in_batch = batch
        .samplings
        .iter()
        .filter(|b| b.plan_id == plan.plan_id && b.sampling_region == s.sampling_region && b.sample_id != s.sample_id)
        .count() as u64;
    if stored + in_batch >= part.quota.max(0) as u64 {
        return refuse(format!(
            "region {}'s quota of {} samples in plan {} is used up",
            s.sampling_region, part.quota, plan.plan_id
        ));
    }
    // Mutual recognition: accepted, with a warning naming the earlier check.
    let mut warnings = Vec::new();
    if let (Some(producer), Some(product), Some(on)) = (&s.producer, &s.product, &s.sampled_on) {
        let since = months_before(on, 6);
        let mut earlier: Vec<SamplingRecord> = Vec::new();
        for json in l.samplings_of_product(&producer.uscc, &product.brand, &product.model).await? {
            if let Ok(e) = serde_json::from_str::<SamplingRecord>(&json) {
                earlier.push(e);
            }
        }
        earlier.extend(
            batch
                .samplings
                .iter()
                .filter(|b| {
                    b.producer.as_ref().map(|p| &p.uscc) == Some(&producer.uscc)
                        && b.product.as_ref().is_some_and(|p| p.brand == product.brand && p.model == product.model)
                })
                .cloned(),
        );
        for e in earlier {
            let Some(e_on) = e.sampled_on else { continue };
            if e.sample_id != s.sample_id && e_on.to_days() <= on.to_days() && e_on.to_days() >= since.to_days() {
                warnings.push(format!(
                    "mutual recognition: {what}: the same product (producer {}, brand '{}', model '{}') was checked within 6 months — sample {} by region {} on {e_on}; accepted as a follow-up or emergency check",
                    producer.uscc, product.brand, product.model, e.sample_id, e.sampling_region
                ));
            }
        }
    }
    Ok(warnings)
}

async fn lookup<T: serde::de::DeserializeOwned>(
    l: &dyn RecordLookup,
    kind: RecordKind,
    id: &str,
) -> Result<Option<T>, RouteError> {
    match l.record(kind, id).await? {
        Some(json) => {
            serde_json::from_str(&json).map(Some).map_err(|e| RouteError::Corrupt(format!("stored {kind} {id}: {e}")))
        }
        None => Ok(None),
    }
}

/// Why a record cannot be routed.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A rule of the workflow is not met (→ `FAILED_PRECONDITION`).
    #[error("{record}: {rule}")]
    Precondition {
        /// The record (`sampling JS2024…`).
        record: String,
        /// The rule and what is missing.
        rule: String,
    },
    /// The store failed (→ `UNAVAILABLE`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record could not be read back (→ `INTERNAL`).
    #[error("{0}")]
    Corrupt(String),
}

/// The recipients of one record, and what else it causes.
#[derive(Debug, Default)]
pub struct Route {
    /// Recipient regions of the record itself, in a stable order.
    pub recipients: Vec<String>,
    /// Warnings (and notices) for the sender.
    pub warnings: Vec<String>,
    /// Records the gateway keeps besides the submitted ones (opened or updated cases).
    pub stored: Vec<Record>,
    /// Further records to deliver: (recipient region, record) — case transfers of opened cases.
    pub notices: Vec<(String, Record)>,
    /// Records queued for SAMR packages (case forwards, closed cases).
    pub samr: Vec<Record>,
}

/// What routing needs besides the stored records: the partner registry, the working-day calendar,
/// the stage durations and the current time.
pub struct Context<'a> {
    /// The partner registry.
    pub config: &'a Config,
    /// The working-day calendar.
    pub calendar: &'a Calendar,
    /// Stage durations.
    pub deadlines: &'a Deadlines,
    /// Now.
    pub now: Timestamp,
}

fn precondition(what: &str, rule: impl Into<String>) -> RouteError {
    RouteError::Precondition { record: what.to_string(), rule: rule.into() }
}

/// Sends a case to its responsible region: a connected partner gets the transfer; an unconnected
/// region's transfer goes to SAMR (AJYS) to forward; a local case stays where it is.
fn dispatch_case(
    case: &DisposalCase,
    sample: Option<&SamplingRecord>,
    report: Option<&InspectionResult>,
    cx: &Context<'_>,
    r: &mut Route,
    what: &str,
) -> Result<(), RouteError> {
    let due = due_text(case);
    r.stored.push(Record::CaseTransfer(case.clone()));
    if case.origin_region == case.responsible_region {
        r.notices.push((case.origin_region.clone(), Record::CaseTransfer(case.clone())));
        r.warnings.push(format!(
            "case {} opened and kept local in {} (not transferred), due {due}",
            case.case_id, case.origin_region
        ));
    } else if cx.config.partner_by_region(&case.responsible_region).is_some() {
        r.notices.push((case.responsible_region.clone(), Record::CaseTransfer(case.clone())));
        r.notices.push((case.origin_region.clone(), Record::CaseTransfer(case.clone())));
        r.warnings.push(format!("case {} transferred to {}, due {due}", case.case_id, case.responsible_region));
    } else {
        let (Some(sample), Some(report)) = (sample, report) else {
            return Err(precondition(what, format!(
                "region {} has no connected partner: SAMR forwards the transfer, which needs the case's sample {} and report {} to be known",
                case.responsible_region, case.sample_id, case.report_no
            )));
        };
        r.samr.push(Record::case_forward(case.clone(), sample, report));
        r.notices.push((case.origin_region.clone(), Record::CaseTransfer(case.clone())));
        r.warnings.push(format!(
            "case {}: region {} has no connected partner; the transfer is queued for SAMR to forward (AJYS), due {due}",
            case.case_id, case.responsible_region
        ));
    }
    Ok(())
}

/// A case's due date as partners and operators read it: the date, and when it is provisional,
/// why (`domain.md` section 5: marked wherever it is shown).
pub fn due_text(case: &DisposalCase) -> String {
    let date = case.due_on.map(|d| d.to_string()).unwrap_or_default();
    if case.due_on_provisional {
        format!("{date} (provisional: counted Monday–Friday, the working-day calendar does not cover the year yet)")
    } else {
        date
    }
}

fn add(route: &mut Route, region: &str, sender: &str) {
    if region != sender && !route.recipients.iter().any(|r| r == region) {
        route.recipients.push(region.to_string());
    }
}

async fn plan_for(l: &dyn RecordLookup, s: &SamplingRecord, what: &str) -> Result<SpotCheckPlan, RouteError> {
    lookup::<SpotCheckPlan>(l, RecordKind::Plan, &s.plan_id).await?.ok_or_else(|| RouteError::Precondition {
        record: what.to_string(),
        rule: format!("plan {} is not known to the exchange (its lead region must publish it first)", s.plan_id),
    })
}

/// Routes one record from `sender`, checking the workflow rules it must meet; `batch` holds the
/// records accepted earlier in the same document.
pub async fn route(
    record: &Record,
    sender: &PartnerConfig,
    l: &dyn RecordLookup,
    batch: &mut Batch,
    cx: &Context<'_>,
) -> Result<Route, RouteError> {
    let mut r = Route::default();
    let from = sender.region.as_str();
    let what = format!("{} {}", record.kind(), record.id());
    match record {
        Record::Plan(p) => {
            for part in &p.participants {
                add(&mut r, &part.region, from);
            }
        }
        Record::Sampling(s) => {
            let plan = plan_for(l, s, &what).await?;
            r.warnings.extend(sampling_rules(s, &plan, l, batch, &what).await?);
            batch.samplings.push(s.clone());
            add(&mut r, &plan.lead_region, from);
        }
        Record::Inspection(i) => {
            let sample = lookup::<SamplingRecord>(l, RecordKind::Sampling, &i.sample_id).await?.ok_or_else(|| {
                RouteError::Precondition {
                    record: what.clone(),
                    rule: format!("results reference a known sample: sample {} is not known", i.sample_id),
                }
            })?;
            let plan = plan_for(l, &sample, &what).await?;
            add(&mut r, &plan.lead_region, from);
            add(&mut r, &sample.sampling_region, from);
            // SAMR receives the spot-check result once both the sample and its result are held.
            r.samr.push(Record::spot_check_result(&sample, i));
            // A nonconforming result opens a disposal case (domain.md section 4.4); a resent
            // result opens no second one.
            let case_id = disposal::case_id_for(&sample.sample_id);
            if i.conclusion == Conclusion::Nonconforming as i32
                && lookup::<DisposalCase>(l, RecordKind::CaseTransfer, &case_id).await?.is_none()
            {
                let case = disposal::open_for_result(&sample, i, cx.now, cx.calendar, cx.deadlines)
                    .map_err(|e| precondition(&what, e.to_string()))?;
                dispatch_case(&case, Some(&sample), Some(i), cx, &mut r, &what)?;
            }
        }
        Record::RiskSignal(sig) => {
            if let Some(held) = lookup::<RiskSignal>(l, RecordKind::RiskSignal, &sig.signal_id).await? {
                if held.state == RiskState::Withdrawn as i32 {
                    return Err(RouteError::Precondition {
                        record: what,
                        rule: format!(
                            "signal {} was withdrawn at revision {}: WITHDRAWN is final",
                            held.signal_id, held.revision
                        ),
                    });
                }
                if sig.revision <= held.revision {
                    return Err(RouteError::Precondition {
                        record: what,
                        rule: format!(
                            "stale revision {}: revision {} is held; a revision must be higher",
                            sig.revision, held.revision
                        ),
                    });
                }
            }
            for region in RISK_SIGNAL_REGIONS {
                add(&mut r, region, from);
            }
            // Nationwide or HIGH risks also go to SAMR (domain.md section 6).
            if sig.nationwide || sig.level == RiskLevel::High as i32 {
                r.samr.push(record.clone());
            }
        }
        Record::CaseTransfer(c) => {
            if c.origin_region != from {
                return Err(precondition(
                    &what,
                    format!("only the origin region {} may transfer the case; the sender is {from}", c.origin_region),
                ));
            }
            if lookup::<DisposalCase>(l, RecordKind::CaseTransfer, &c.case_id).await?.is_some() {
                return Err(precondition(&what, format!("case {} already exists", c.case_id)));
            }
            let new =
                DisposalCase { status: CaseStatus::Unspecified as i32, due_on: None, events: vec![], ..c.clone() };
            let at = c.opened_at.unwrap_or(cx.now);
            let case =
                disposal::apply(&new, &disposal::transfer_event(&c.case_id, at, from), cx.calendar, cx.deadlines)
                    .map_err(|e| precondition(&what, e.to_string()))?;
            let sample = lookup::<SamplingRecord>(l, RecordKind::Sampling, &c.sample_id).await?;
            let report = lookup::<InspectionResult>(l, RecordKind::Inspection, &c.report_no).await?;
            // The gateway's copy (with its due date) is what the other side receives.
            dispatch_case(&case, sample.as_ref(), report.as_ref(), cx, &mut r, &what)?;
            r.notices.retain(|(region, _)| region != from);
        }
        Record::CaseFeedback(f) => {
            let case = lookup::<DisposalCase>(l, RecordKind::CaseTransfer, &f.case_id).await?.ok_or_else(|| {
                precondition(&what, format!("feedback on a known case: case {} is not known", f.case_id))
            })?;
            let event = f.event.clone().unwrap_or_default();
            if event.by_region != from {
                return Err(precondition(
                    &what,
                    format!("the event's region {} is not the sender {from}", event.by_region),
                ));
            }
            let next = disposal::apply(&case, &event, cx.calendar, cx.deadlines)
                .map_err(|e| precondition(&what, e.to_string()))?;
            if next.status == CaseStatus::Closed as i32 {
                r.samr.push(Record::ClosedCase(next.clone()));
            }
            if next.due_on_provisional && next.status != case.status {
                r.warnings.push(format!("case {}: the new stage is due {}", next.case_id, due_text(&next)));
            }
            r.stored.push(Record::CaseTransfer(next));
            add(&mut r, &case.origin_region, from);
            add(&mut r, &case.responsible_region, from);
        }
        // Responsibility reports are Shanghai's, for SAMR only (ZTZR).
        Record::ResponsibilityReport(_) if from == "310000" => r.samr.push(record.clone()),
        other => {
            return Err(RouteError::Precondition {
                record: what,
                rule: format!("{} records are not exchanged between partners", other.kind()),
            })
        }
    }
    Ok(r)
}

/// Splits recipients into connected partners that can take the record, with a warning for each
/// that is not connected or cannot take it.
pub fn deliverable<'c>(record: &Record, route: &mut Route, config: &'c Config) -> Vec<&'c PartnerConfig> {
    let mut out = Vec::new();
    for region in &route.recipients {
        match config.partner_by_region(region) {
            None => route.warnings.push(format!(
                "{} {}: region {region} has no connected partner; nothing was queued for it",
                record.kind(),
                record.id()
            )),
            Some(p) => {
                let refusal =
                    if p.format() == yrdx_adapters::Partner::Beijing { beijing::refusal(record) } else { None };
                match refusal {
                    Some(e) => route.warnings.push(format!("not queued for {} ({region}): {e}", p.name)),
                    None => out.push(p),
                }
            }
        }
    }
    out
}
