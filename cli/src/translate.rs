//! `yrdx translate`: read partner documents, translate them to another partner's format, report
//! what the target had no place for. Pure: the binary does the I/O.

use yrdx_adapters::{DecodeLimits, EncodeError, Encoded, Partner, Problem, Record};
use yrdx_proto::v1::Envelope;
use yrdx_proto::Timestamp;

/// Exit code: the input is invalid.
pub const EXIT_INVALID: i32 = 1;
/// Exit code: the target cannot take the record.
pub const EXIT_UNSUPPORTED: i32 = 2;
/// Exit code: usage error.
pub const EXIT_USAGE: i32 = 64;

/// What to translate and how to address the output.
#[derive(Debug, Clone)]
pub struct TranslateRequest {
    /// Source format.
    pub from: Partner,
    /// Target format.
    pub to: Partner,
    /// Envelope message id of the output.
    pub message_id: String,
    /// Sending time of the output.
    pub sent_at: Timestamp,
    /// Sender of the output.
    pub sender: String,
    /// SAMR package sequence number.
    pub sequence: u32,
    /// Decoding limits.
    pub limits: DecodeLimits,
}

/// Why a translation failed: an exit code and the lines to print on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateFailure {
    /// Process exit code ([`EXIT_INVALID`] or [`EXIT_UNSUPPORTED`]).
    pub exit_code: i32,
    /// One problem per line.
    pub lines: Vec<String>,
}

fn invalid(lines: Vec<String>) -> TranslateFailure {
    TranslateFailure { exit_code: EXIT_INVALID, lines }
}

fn unsupported(line: String) -> TranslateFailure {
    TranslateFailure { exit_code: EXIT_UNSUPPORTED, lines: vec![line] }
}

fn problem_lines(name: &str, problems: &[Problem]) -> Vec<String> {
    problems.iter().map(|p| format!("{name}: {p}")).collect()
}

/// Translates the named input documents, calling `decoded` after each input is decoded (the
/// command's progress).
pub fn translate_with_progress(
    req: &TranslateRequest,
    inputs: &[(String, Vec<u8>)],
    decoded: &mut dyn FnMut(),
) -> Result<Encoded, TranslateFailure> {
    if req.from == Partner::Samr {
        return Err(unsupported(
            "SAMR packages carry partial records (no quantities, prices, addresses …) and cannot be translated into another format; use `yrdx validate --partner samr` to check one".into(),
        ));
    }
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for (name, bytes) in inputs {
        match req.from.decode(bytes, &req.limits) {
            Ok(doc) => records.extend(doc.records),
            Err(e) => errors.extend(problem_lines(name, &e.problems())),
        }
        decoded();
    }
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    if req.to == Partner::Samr {
        records = join_for_samr(records)?;
    }
    let envelope = Envelope {
        message_id: req.message_id.clone(),
        sender: req.sender.clone(),
        receiver: req.to.envelope_id().to_string(),
        sent_at: Some(req.sent_at),
    };
    req.to.encode(&envelope, &records, req.sequence).map_err(|e| match e {
        EncodeError::Invalid(problems) => invalid(problem_lines("record", &problems)),
        other => unsupported(other.to_string()),
    })
}

/// Prepares records for a SAMR package: sampling records and inspection results become joined
/// spot-check results; a case transfer with its sample and report becomes a case to forward;
/// closed cases, risk signals and responsibility reports go as they are.
pub fn join_for_samr(records: Vec<Record>) -> Result<Vec<Record>, TranslateFailure> {
    let mut samplings = Vec::new();
    let mut inspections = Vec::new();
    let mut cases = Vec::new();
    let mut others = Vec::new();
    for r in records {
        match r {
            Record::Sampling(s) => samplings.push(s),
            Record::Inspection(i) => inspections.push(i),
            Record::CaseTransfer(c) => cases.push(c),
            Record::CaseFeedback(_) | Record::Plan(_) => {
                return Err(unsupported(format!(
                    "SAMR takes no {} (packages: spot-check results, risk reports, responsibility reports, closed cases, case forwards)",
                    r.kind()
                )))
            }
            other => others.push(other),
        }
    }
    if !cases.is_empty() {
        let mut out = Vec::new();
        for case in cases {
            let s = samplings.iter().find(|s| s.sample_id == case.sample_id);
            let i = inspections.iter().find(|i| i.report_no == case.report_no);
            match (s, i) {
                (Some(s), Some(i)) => out.push(Record::case_forward(case, s, i)),
                _ => {
                    return Err(invalid(vec![format!(
                    "case {}: a case forward (AJYS) needs its sampling record {} and inspection result {} as inputs",
                    case.case_id, case.sample_id, case.report_no
                )]))
                }
            }
        }
        return Ok(out);
    }
    if samplings.is_empty() && inspections.is_empty() {
        return Ok(others);
    }
    if !others.is_empty() {
        return Err(unsupported("a SAMR package carries one kind of record".into()));
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for i in inspections {
        match samplings.iter().find(|s| s.sample_id == i.sample_id) {
            Some(s) => out.push(Record::spot_check_result(s, &i)),
            None => errors.push(format!(
                "inspection {}: its sampling record {} is not among the inputs (a CCJG package joins both)",
                i.report_no, i.sample_id
            )),
        }
    }
    for s in &samplings {
        if !out.iter().any(|r| matches!(r, Record::SpotCheckResult(j) if j.sampling.as_ref().map(|x| &x.sample_id) == Some(&s.sample_id))) {
            errors.push(format!(
                "sampling {}: no inspection result among the inputs (a CCJG package is sent once both are held)",
                s.sample_id
            ));
        }
    }
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    Ok(out)
}
