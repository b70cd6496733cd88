//! The workflow rulebook (`docs/domain.md` sections 4–7): who receives each record and what it
//! causes. One file per rule, each tagged with its clause in `conformance/requirements.toml`:
//!
//! | rule | file | clause |
//! |---|---|---|
//! | a plan goes to its participants | [`plans`] | `domain.4.1.plan-distribution` |
//! | a plan's summary: quota use, results, open and overdue cases per region and category | [`plan_summary`] | `domain.4.6.plan-summary` |
//! | a sampling record is accepted for its plan (participant, category, channel, deadline) and goes to the lead region | [`sampling`] | `domain.4.2.sampling-acceptance` |
//! | a region's quota of samples per plan | [`quota`] | `domain.4.2.sampling-acceptance` |
//! | the same product checked within 6 months: accepted with a warning | [`mutual_recognition`] | `domain.4.5.mutual-recognition` |
//! | a result goes to the lead and sampling regions | [`results`] | `domain.4.3.results` |
//! | a nonconforming result opens a disposal case | [`case_opening`] | `domain.4.4.case-opening` |
//! | case transfers and feedback go to the other side; the responsible region | [`cases`] | `domain.5.responsible-region` |
//! | the case state machine and its stage due dates | [`disposal`] | `domain.5.state-machine`, `domain.5.deadlines` |
//! | an overdue stage notifies both sides once | [`overdue`] | `domain.5.deadlines` |
//! | the working-day calendar's year end, provisional due dates | [`calendar_watch`] | `domain.5.deadlines` |
//! | risk signals: distribution and revisions | [`risk`] | `domain.6.risk-distribution`, `domain.6.risk-revisions` |
//! | what goes to SAMR | [`samr_rule`] | `domain.7.samr-docking` |
//! | which recipients can take a record (Beijing: online only) | [`recipients`] | `partners.beijing.online-only` |
//!
//! The rules work on typed records; what they read from the store comes through
//! [`RecordLookup`] (the store's [`WorkflowRecords`](crate::store::WorkflowRecords)).

pub mod calendar_watch;
pub mod case_opening;
pub mod cases;
pub mod disposal;
pub mod mutual_recognition;
pub mod overdue;
pub mod plan_summary;
pub mod plans;
pub mod quota;
pub mod recipients;
pub mod results;
pub mod risk;
pub mod sampling;
pub mod samr_rule;

use crate::config::{Config, PartnerConfig};
use crate::store::StoreError;
use disposal::Deadlines;
use yrdx_adapters::Record;
use yrdx_proto::calendar::Calendar;
use yrdx_proto::v1::{DisposalCase, SamplingRecord};
use yrdx_proto::Timestamp;

pub use recipients::deliverable;

/// What the rules look up in the store: the store's [`WorkflowRecords`](crate::store::WorkflowRecords) part.
pub use crate::store::WorkflowRecords as RecordLookup;

/// Records accepted earlier in the same document (they count towards quotas and mutual
/// recognition too).
#[derive(Debug, Default)]
pub struct Batch {
    samplings: Vec<SamplingRecord>,
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
    /// The store failed, or a stored record did not read back (→ `UNAVAILABLE` / `INTERNAL`).
    #[error(transparent)]
    Store(#[from] StoreError),
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

impl Route {
    /// Adds `region` as a recipient, unless it is the sender or already one.
    fn add(&mut self, region: &str, sender: &str) {
        if region != sender && !self.recipients.iter().any(|r| r == region) {
            self.recipients.push(region.to_string());
        }
    }
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

/// One record's walk through the rules: who sent it, what the rules may look up, the context,
/// and the record as a refusal names it (`sampling JS2024…`).
struct Step<'a> {
    /// The sender's region.
    from: &'a str,
    /// The stored records the rules read.
    lookup: &'a dyn RecordLookup,
    /// The registry, calendar, stage durations and now.
    cx: &'a Context<'a>,
    /// The record, as refusals and warnings name it.
    what: String,
}

impl Step<'_> {
    /// A refusal of this record for a rule it does not meet.
    fn refuse(&self, rule: impl Into<String>) -> RouteError {
        RouteError::Precondition { record: self.what.clone(), rule: rule.into() }
    }
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
    let step = Step { from, lookup: l, cx, what: format!("{} {}", record.kind(), record.id()) };
    match record {
        Record::Plan(p) => plans::route(p, from, &mut r),
        Record::Sampling(s) => sampling::route(s, &step, batch, &mut r).await?,
        Record::Inspection(i) => results::route(i, &step, &mut r).await?,
        Record::RiskSignal(sig) => risk::route(sig, &step, &mut r).await?,
        Record::CaseTransfer(c) => cases::route_transfer(c, &step, &mut r).await?,
        Record::CaseFeedback(f) => cases::route_feedback(f, &step, &mut r).await?,
        Record::ResponsibilityReport(_) if samr_rule::takes_responsibility_report_from(from) => {
            samr_rule::responsibility_report(record, &mut r)
        }
        other => return Err(step.refuse(format!("{} records are not exchanged between partners", other.kind()))),
    }
    Ok(r)
}

/// A case's due date as partners and operators read it: the date, and when it is provisional,
/// why (`docs/domain.md` section 5: marked wherever it is shown).
pub fn due_text(case: &DisposalCase) -> String {
    let date = case.due_on.map(|d| d.to_string()).unwrap_or_default();
    if case.due_on_provisional {
        format!("{date} (provisional: counted Monday–Friday, the working-day calendar does not cover the year yet)")
    } else {
        date
    }
}
