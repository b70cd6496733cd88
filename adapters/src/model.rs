//! What every adapter speaks: canonical [`Record`]s in a [`Document`], the [`Problem`]s a decoder
//! finds, the [`Loss`]es an encoder reports, and their error types.

use std::fmt;
use yrdx_proto::v1::{
    CaseFeedback, DisposalCase, Envelope, InspectionResult, ResponsibilityReport, RiskSignal, SamplingRecord,
    SpotCheckPlan, SpotCheckResult,
};
use yrdx_proto::validate::{Validate, Violation};

/// The kinds of record the exchange carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    /// 抽查计划.
    Plan,
    /// 抽样单.
    Sampling,
    /// 检验报告.
    Inspection,
    /// 案件移送 — a disposal case as transferred.
    CaseTransfer,
    /// 案件反馈 — one event on a case.
    CaseFeedback,
    /// 风险信息.
    RiskSignal,
    /// 主体责任报告 (SAMR only).
    ResponsibilityReport,
    /// 抽查结果 — sampling joined with inspection (SAMR only).
    SpotCheckResult,
    /// 结案 — a closed case (SAMR only).
    ClosedCase,
    /// 案件转交 — a case for SAMR to forward to an unconnected region (SAMR only).
    CaseForward,
}

impl RecordKind {
    /// Every kind, in a stable order.
    pub const ALL: [RecordKind; 10] = [
        RecordKind::Plan,
        RecordKind::Sampling,
        RecordKind::Inspection,
        RecordKind::CaseTransfer,
        RecordKind::CaseFeedback,
        RecordKind::RiskSignal,
        RecordKind::ResponsibilityReport,
        RecordKind::SpotCheckResult,
        RecordKind::ClosedCase,
        RecordKind::CaseForward,
    ];

    /// The snake_case name used in canonical documents and gRPC replies.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Plan => "plan",
            RecordKind::Sampling => "sampling",
            RecordKind::Inspection => "inspection",
            RecordKind::CaseTransfer => "case_transfer",
            RecordKind::CaseFeedback => "case_feedback",
            RecordKind::RiskSignal => "risk_signal",
            RecordKind::ResponsibilityReport => "responsibility_report",
            RecordKind::SpotCheckResult => "spot_check_result",
            RecordKind::ClosedCase => "closed_case",
            RecordKind::CaseForward => "case_forward",
        }
    }

    /// The kind of a snake_case name.
    pub fn from_name(name: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A disposal case for SAMR to forward (AJYS), with the sampling record and inspection result it
/// concerns (the package carries the parties, the product and the failing items).
#[derive(Debug, Clone, PartialEq)]
pub struct CaseForward {
    /// The case as transferred.
    pub case: DisposalCase,
    /// The nonconforming sample.
    pub sampling: SamplingRecord,
    /// Its inspection result.
    pub inspection: InspectionResult,
}

/// One canonical record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A spot-check plan.
    Plan(SpotCheckPlan),
    /// A sampling record.
    Sampling(SamplingRecord),
    /// An inspection result.
    Inspection(InspectionResult),
    /// A case transfer (status TRANSFERRED, no events).
    CaseTransfer(DisposalCase),
    /// One event on a case.
    CaseFeedback(CaseFeedback),
    /// A risk signal revision.
    RiskSignal(RiskSignal),
    /// An enterprise responsibility report.
    ResponsibilityReport(ResponsibilityReport),
    /// A sampling record joined with its inspection result.
    SpotCheckResult(SpotCheckResult),
    /// A closed case with its events.
    ClosedCase(DisposalCase),
    /// A case for SAMR to forward.
    CaseForward(Box<CaseForward>),
}

impl Record {
    /// What SAMR receives for a result (CCJG): the sampling record joined with its inspection
    /// result, once both are held.
    pub fn spot_check_result(sampling: &SamplingRecord, inspection: &InspectionResult) -> Record {
        Record::SpotCheckResult(SpotCheckResult {
            sampling: Some(sampling.clone()),
            inspection: Some(inspection.clone()),
        })
    }

    /// What SAMR receives to forward a case to an unconnected region (AJYS): the case with its
    /// sample and report.
    pub fn case_forward(case: DisposalCase, sampling: &SamplingRecord, inspection: &InspectionResult) -> Record {
        Record::CaseForward(Box::new(CaseForward { case, sampling: sampling.clone(), inspection: inspection.clone() }))
    }

    /// The record's kind.
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Plan(_) => RecordKind::Plan,
            Record::Sampling(_) => RecordKind::Sampling,
            Record::Inspection(_) => RecordKind::Inspection,
            Record::CaseTransfer(_) => RecordKind::CaseTransfer,
            Record::CaseFeedback(_) => RecordKind::CaseFeedback,
            Record::RiskSignal(_) => RecordKind::RiskSignal,
            Record::ResponsibilityReport(_) => RecordKind::ResponsibilityReport,
            Record::SpotCheckResult(_) => RecordKind::SpotCheckResult,
            Record::ClosedCase(_) => RecordKind::ClosedCase,
            Record::CaseForward(_) => RecordKind::CaseForward,
        }
    }

    /// The record's own id (plan id, sample id, report number, case id, event id, signal id, USCC).
    pub fn id(&self) -> String {
        match self {
            Record::Plan(r) => r.plan_id.clone(),
            Record::Sampling(r) => r.sample_id.clone(),
            Record::Inspection(r) => r.report_no.clone(),
            Record::CaseTransfer(r) | Record::ClosedCase(r) => r.case_id.clone(),
            Record::CaseFeedback(r) => r.event.as_ref().map(|e| e.event_id.clone()).unwrap_or_default(),
            Record::RiskSignal(r) => r.signal_id.clone(),
            Record::ResponsibilityReport(r) => {
                let uscc = r.enterprise.as_ref().map(|e| e.uscc.as_str()).unwrap_or("");
                format!("{uscc}/{}", r.period)
            }
            Record::SpotCheckResult(r) => r.sampling.as_ref().map(|s| s.sample_id.clone()).unwrap_or_default(),
            Record::CaseForward(r) => r.case.case_id.clone(),
        }
    }

    /// Every domain-rule violation, with canonical paths.
    pub fn validate(&self) -> Vec<Violation> {
        match self {
            Record::Plan(r) => r.validate(),
            Record::Sampling(r) => r.validate(),
            Record::Inspection(r) => r.validate(),
            Record::CaseTransfer(r) | Record::ClosedCase(r) => r.validate(),
            Record::CaseFeedback(r) => r.validate(),
            Record::RiskSignal(r) => r.validate(),
            Record::ResponsibilityReport(r) => r.validate(),
            Record::SpotCheckResult(r) => r.validate(),
            Record::CaseForward(r) => {
                let mut v = r.case.validate();
                let prefix = |p: &str, list: Vec<Violation>| {
                    list.into_iter()
                        .map(|x| Violation { path: format!("{p}.{}", x.path), message: x.message })
                        .collect::<Vec<_>>()
                };
                for x in &mut v {
                    x.path = format!("case.{}", x.path);
                }
                v.extend(prefix("sampling", r.sampling.validate()));
                v.extend(prefix("inspection", r.inspection.validate()));
                v
            }
        }
    }
}

/// A decoded document: its envelope and its records, all of one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Message id, sender, receiver, sending time.
    pub envelope: Envelope,
    /// The records, in document order.
    pub records: Vec<Record>,
}

impl Document {
    /// The kind of the document's records (`None` when it has none).
    pub fn kind(&self) -> Option<RecordKind> {
        self.records.first().map(Record::kind)
    }
}

/// One problem found in a partner document, in the sender's own terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The offending field by the sender's own path (`DATA[2].BCYDWXYDM`,
    /// `/Exchange/Records/Sampling[1]/Seller/CreditCode`, `payload.seller.creditCode`).
    pub path: String,
    /// The id of the record the field belongs to, when the record has one.
    pub record_id: Option<String>,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.record_id {
            Some(id) if !id.is_empty() => {
                write!(f, "{} (record {id}): {}", self.path, self.message)
            }
            _ => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Limits applied before and while decoding (`docs/partners.md`, rule 5).
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest document accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of elements or JSON values accepted.
    pub max_depth: usize,
    /// Most JSON values (array items and object members) or XML elements a document may hold;
    /// counted while parsing, so that a document of a million tiny items is refused before any of
    /// them is interpreted.
    pub max_nodes: usize,
    /// Most records a canonical document may hold (the partner formats have their own limits in
    /// their interface documents, which apply too); a longer list is refused before its records
    /// are interpreted.
    pub max_records: usize,
    /// Most problems reported for one document: decoding stops collecting at this number and
    /// adds one last problem saying that more were not listed.
    pub max_problems: usize,
}

impl DecodeLimits {
    /// Default of [`DecodeLimits::max_nodes`]: well above the largest legitimate document (100
    /// Jiangsu inspection reports of 100 items are ~80 000 values; 1000 SAMR records ~60 000
    /// elements).
    pub const DEFAULT_MAX_NODES: usize = 200_000;
    /// Default of [`DecodeLimits::max_records`].
    pub const DEFAULT_MAX_RECORDS: usize = 1000;
    /// Default of [`DecodeLimits::max_problems`].
    pub const DEFAULT_MAX_PROBLEMS: usize = 1000;
}

impl Default for DecodeLimits {
    /// 4 MiB and 32 levels (the defaults of the interface documents), 200 000 values or
    /// elements, 1000 records and 1000 problems.
    fn default() -> Self {
        DecodeLimits {
            max_bytes: 4 * 1024 * 1024,
            max_depth: 32,
            max_nodes: DecodeLimits::DEFAULT_MAX_NODES,
            max_records: DecodeLimits::DEFAULT_MAX_RECORDS,
            max_problems: DecodeLimits::DEFAULT_MAX_PROBLEMS,
        }
    }
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Larger than the configured limit; nothing was parsed.
    #[error("document is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The document's size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Hostile or unreadable input refused before interpretation (DOCTYPE, entities, bad encoding,
    /// nesting too deep, not well-formed).
    #[error("document refused at {path}: {message}")]
    Refused {
        /// Where it was found.
        path: String,
        /// What was found.
        message: String,
    },
    /// The document was read, and these are all of its problems.
    #[error("{} problem(s) in the document, first: {}", .0.len(), .0.first().map(|p| p.to_string()).unwrap_or_default())]
    Invalid(Vec<Problem>),
}

impl DecodeError {
    /// Every problem, as a list (a refusal is one problem).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            DecodeError::TooLarge { .. } => {
                vec![Problem { path: "/".into(), record_id: None, message: self.to_string() }]
            }
            DecodeError::Refused { path, message } => {
                vec![Problem { path: path.clone(), record_id: None, message: message.clone() }]
            }
            DecodeError::Invalid(p) => p.clone(),
        }
    }

    pub(crate) fn refused(path: impl Into<String>, message: impl Into<String>) -> DecodeError {
        DecodeError::Refused { path: path.into(), message: message.into() }
    }
}

/// Why records could not be encoded for a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The target cannot take this record at all (an offline sample for Beijing, a risk signal for
    /// Beijing …); nothing is written.
    #[error("{partner} cannot take {kind} {record_id}: {reason}")]
    Unsupported {
        /// The target partner.
        partner: &'static str,
        /// The record's kind.
        kind: RecordKind,
        /// The record's id.
        record_id: String,
        /// Why.
        reason: String,
    },
    /// The canonical records break the domain rules (canonical paths).
    #[error("invalid record: {}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    /// The batch cannot be written as one document (empty, too many, mixed kinds).
    #[error("{0}")]
    Batch(String),
}

/// A canonical field the target had no place for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    /// The id of the record.
    pub record_id: String,
    /// The canonical field (`seller.address`, `items[0]`).
    pub field: String,
    /// What happened to it.
    pub detail: String,
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dropped {} of {}: {}", self.field, self.record_id, self.detail)
    }
}

/// An encoded document and the fields it could not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The document's bytes.
    pub bytes: Vec<u8>,
    /// Every canonical field the target had no place for.
    pub losses: Vec<Loss>,
}

/// A format's records written once, apart from the envelope: a document fanned out to many
/// recipients of one format differs only in its envelope.
pub(crate) trait EncodedOnce: Sized {
    /// Checks and writes the records (every error of an encode is the records').
    fn of(records: &[Record]) -> Result<Self, EncodeError>;
    /// The document of these records under `envelope`, as an encode of it alone writes it.
    fn under(&self, envelope: &Envelope) -> Encoded;
}

/// What a batch encoder starts with: the records are of one kind named in `names` and at most
/// `max`, each valid; returns the kind's name and the instants' precision lost below `unit_nanos`.
pub(crate) fn checked_batch(
    records: &[Record],
    max: usize,
    partner: &'static str,
    names: &[(&'static str, RecordKind)],
    what: &str,
    unit_nanos: i32,
) -> Result<(&'static str, Vec<Loss>), EncodeError> {
    let (_, name) = batch_kind_named(records, max, partner, names, what)?;
    check_before_encode(records)?;
    let mut losses = Vec::new();
    precision_losses(records, unit_nanos, &mut losses);
    Ok((name, losses))
}

/// The same records under each envelope, written once (see [`EncodedOnce`]).
pub(crate) fn encode_each<B: EncodedOnce>(
    envelopes: &[Envelope],
    records: &[Record],
) -> Result<Vec<Encoded>, EncodeError> {
    let body = B::of(records)?;
    Ok(envelopes.iter().map(|e| body.under(e)).collect())
}

/// Validates records before encoding: an encoder never writes a record that breaks the rules.
pub(crate) fn check_before_encode(records: &[Record]) -> Result<(), EncodeError> {
    let mut problems = Vec::new();
    for r in records {
        let id = r.id();
        problems.extend(r.validate().into_iter().map(|v| Problem {
            path: v.path,
            record_id: Some(id.clone()),
            message: v.message,
        }));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(EncodeError::Invalid(problems))
    }
}

/// Checks that a batch is non-empty, within `max` records, and of one kind; returns the kind.
pub(crate) fn batch_kind(records: &[Record], max: usize, partner: &str) -> Result<RecordKind, EncodeError> {
    let first = records.first().ok_or_else(|| EncodeError::Batch("no record to encode".into()))?;
    if records.len() > max {
        return Err(EncodeError::Batch(format!("{partner} takes 1–{max} records per document, got {}", records.len())));
    }
    if let Some(other) = records.iter().find(|r| r.kind() != first.kind()) {
        return Err(EncodeError::Batch(format!(
            "a document carries one kind of record: {} and {} mixed",
            first.kind(),
            other.kind()
        )));
    }
    Ok(first.kind())
}

/// [`batch_kind`], and the name a format gives that kind in `names` (its message types); a kind
/// the format has no name for is refused as having no `what` (`message type`, `Kind`).
pub(crate) fn batch_kind_named(
    records: &[Record],
    max: usize,
    partner: &'static str,
    names: &[(&'static str, RecordKind)],
    what: &str,
) -> Result<(RecordKind, &'static str), EncodeError> {
    let kind = batch_kind(records, max, partner)?;
    let name = names.iter().find(|(_, k)| *k == kind).map(|(n, _)| *n).ok_or_else(|| EncodeError::Unsupported {
        partner,
        kind,
        record_id: records[0].id(),
        reason: format!("the {partner} interface has no {what} for this record"),
    })?;
    Ok((kind, name))
}

/// Every instant of a record with its canonical path.
fn instants(record: &Record) -> Vec<(String, yrdx_proto::Timestamp)> {
    let mut out = Vec::new();
    let mut add = |path: String, t: &Option<yrdx_proto::Timestamp>| {
        if let Some(t) = t {
            out.push((path, *t));
        }
    };
    match record {
        Record::Plan(p) => add("published_at".into(), &p.published_at),
        Record::Sampling(s) => add("recorded_at".into(), &s.recorded_at),
        Record::CaseTransfer(c) | Record::ClosedCase(c) => {
            add("opened_at".into(), &c.opened_at);
            for (i, e) in c.events.iter().enumerate() {
                add(format!("events[{i}].at"), &e.at);
            }
        }
        Record::CaseFeedback(f) => add("event.at".into(), &f.event.as_ref().and_then(|e| e.at)),
        Record::SpotCheckResult(r) => {
            add("sampling.recorded_at".into(), &r.sampling.as_ref().and_then(|s| s.recorded_at))
        }
        Record::CaseForward(f) => add("case.opened_at".into(), &f.case.opened_at),
        Record::Inspection(_) | Record::RiskSignal(_) | Record::ResponsibilityReport(_) => {}
    }
    out
}

/// Reports instants whose precision is finer than the target carries: `unit_nanos` is 1e9 for
/// formats that carry seconds, 1e6 for milliseconds.
pub(crate) fn precision_losses(records: &[Record], unit_nanos: i32, losses: &mut Vec<Loss>) {
    for r in records {
        for (path, t) in instants(r) {
            if t.nanos % unit_nanos != 0 {
                let unit = if unit_nanos == 1_000_000_000 { "seconds" } else { "milliseconds" };
                losses.push(Loss {
                    record_id: r.id(),
                    field: path,
                    detail: format!("the part below {unit} has no place in the target (truncated)"),
                });
            }
        }
    }
}

/// The case-transfer message carries the case as transferred: a later status and the events have
/// no place in it.
pub(crate) fn transfer_losses(c: &DisposalCase, losses: &mut Vec<Loss>) {
    // No partner format has a place for "this due date is provisional": they get the date
    // itself, and the case again with the settled date once the calendar covers the year.
    if c.due_on_provisional {
        losses.push(Loss {
            record_id: c.case_id.clone(),
            field: "due_on_provisional".into(),
            detail: "the due date is provisional (counted Monday–Friday: the working-day calendar does not cover \
                     its year); the target has no place for the mark, the case is sent again once the date is settled"
                .into(),
        });
    }
    if c.status != yrdx_proto::v1::CaseStatus::Transferred as i32 {
        let status = yrdx_proto::v1::CaseStatus::try_from(c.status).map(|s| s.as_str_name()).unwrap_or("?");
        losses.push(Loss {
            record_id: c.case_id.clone(),
            field: "status".into(),
            detail: format!("{status} has no place in a case transfer (sent as transferred)"),
        });
    }
    for (i, e) in c.events.iter().enumerate() {
        // The TRANSFER event is what the transfer message itself says.
        if e.action == yrdx_proto::v1::CaseAction::Transfer as i32 {
            continue;
        }
        losses.push(Loss {
            record_id: c.case_id.clone(),
            field: format!("events[{i}]"),
            detail: "events travel as case feedback, not in a case transfer".into(),
        });
    }
}
