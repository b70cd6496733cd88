//! Who receives what (`domain.md` sections 4–6): a plan to its participants, a sampling record to
//! its plan's lead region, an inspection result to the lead and sampling regions, a risk signal to
//! every risk-signal partner but its sender, case transfers and feedback to the other side of the
//! case. One module, so the workflow rules can grow here.

use crate::config::{Config, PartnerConfig};
use yrdx_adapters::{beijing, Record};
use yrdx_proto::v1::{DisposalCase, SamplingRecord, SpotCheckPlan};

/// Regions that take risk signals (`domain.md` section 6).
pub const RISK_SIGNAL_REGIONS: [&str; 3] = ["310000", "320000", "330000"];

/// Looks stored canonical records up by kind and id.
pub trait RecordLookup {
    /// The canonical JSON of a stored record.
    fn canonical(&self, kind: &str, id: &str) -> Result<Option<String>, String>;
}

fn lookup<T: serde::de::DeserializeOwned>(
    l: &dyn RecordLookup,
    kind: &str,
    id: &str,
) -> Result<Option<T>, RouteError> {
    match l.canonical(kind, id).map_err(RouteError::Store)? {
        Some(json) => serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| RouteError::Store(format!("stored {kind} {id}: {e}"))),
        None => Ok(None),
    }
}

/// Why a record cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// A rule of the workflow is not met (→ `FAILED_PRECONDITION`).
    #[error("{record}: {rule}")]
    Precondition {
        /// The record (`sampling JS2024…`).
        record: String,
        /// The rule and what is missing.
        rule: String,
    },
    /// The store failed (→ `INTERNAL`).
    #[error("{0}")]
    Store(String),
}

/// The recipients of one record, and what the sender should know.
#[derive(Debug, Default)]
pub struct Route {
    /// Recipient regions, in a stable order.
    pub recipients: Vec<String>,
    /// Warnings for the sender.
    pub warnings: Vec<String>,
}

fn add(route: &mut Route, region: &str, sender: &str) {
    if region != sender && !route.recipients.iter().any(|r| r == region) {
        route.recipients.push(region.to_string());
    }
}

fn plan_for(
    l: &dyn RecordLookup,
    s: &SamplingRecord,
    what: &str,
) -> Result<SpotCheckPlan, RouteError> {
    lookup::<SpotCheckPlan>(l, "plan", &s.plan_id)?.ok_or_else(|| RouteError::Precondition {
        record: what.to_string(),
        rule: format!(
            "plan {} is not known to the exchange (its lead region must publish it first)",
            s.plan_id
        ),
    })
}

/// Routes one record from `sender`.
pub fn route(
    record: &Record,
    sender: &PartnerConfig,
    l: &dyn RecordLookup,
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
            let plan = plan_for(l, s, &what)?;
            add(&mut r, &plan.lead_region, from);
        }
        Record::Inspection(i) => {
            let sample =
                lookup::<SamplingRecord>(l, "sampling", &i.sample_id)?.ok_or_else(|| {
                    RouteError::Precondition {
                        record: what.clone(),
                        rule: format!(
                            "results reference a known sample: sample {} is not known",
                            i.sample_id
                        ),
                    }
                })?;
            let plan = plan_for(l, &sample, &what)?;
            add(&mut r, &plan.lead_region, from);
            add(&mut r, &sample.sampling_region, from);
        }
        Record::RiskSignal(_) => {
            for region in RISK_SIGNAL_REGIONS {
                add(&mut r, region, from);
            }
        }
        Record::CaseTransfer(c) => {
            add(&mut r, &c.responsible_region, from);
            if c.responsible_region != from {
                add(&mut r, &c.origin_region, from);
            }
        }
        Record::CaseFeedback(f) => {
            let case =
                lookup::<DisposalCase>(l, "case_transfer", &f.case_id)?.ok_or_else(|| {
                    RouteError::Precondition {
                        record: what.clone(),
                        rule: format!("feedback on a known case: case {} is not known", f.case_id),
                    }
                })?;
            add(&mut r, &case.origin_region, from);
            add(&mut r, &case.responsible_region, from);
        }
        other => {
            return Err(RouteError::Precondition {
                record: what,
                rule: format!(
                    "{} records are not exchanged between partners",
                    other.kind()
                ),
            })
        }
    }
    Ok(r)
}

/// Splits recipients into connected partners that can take the record, with a warning for each
/// that is not connected or cannot take it.
pub fn deliverable<'c>(
    record: &Record,
    route: &mut Route,
    config: &'c Config,
) -> Vec<&'c PartnerConfig> {
    let mut out = Vec::new();
    for region in &route.recipients {
        match config.partner_by_region(region) {
            None => route.warnings.push(format!(
                "{} {}: region {region} has no connected partner; nothing was queued for it",
                record.kind(),
                record.id()
            )),
            Some(p) => {
                let refusal = if p.format() == yrdx_adapters::Partner::Beijing {
                    beijing::refusal(record)
                } else {
                    None
                };
                match refusal {
                    Some(e) => route
                        .warnings
                        .push(format!("not queued for {} ({region}): {e}", p.name)),
                    None => out.push(p),
                }
            }
        }
    }
    out
}
