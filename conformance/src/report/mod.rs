//! What a run found, as data: the versioned JSON report that the JUnit and HTML reports are
//! written from.

use crate::tls::TlsFacts;
use base64::Engine;
use serde::Serialize;

pub mod html;
pub mod json;
pub mod junit;

/// The JSON report's format identifier; bumped on any incompatible change.
pub const REPORT_FORMAT: &str = "yrdx-conformance-report/1";

/// The outcome of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every assertion held.
    Pass,
    /// The system under test is wrong.
    Fail,
    /// The case could not apply to this run (a credential it needs was not given …).
    Skip,
    /// Not run: deselected by `--run`/`--skip`, or not for this partner.
    Omit,
    /// The suite or its configuration broke; says nothing of the system under test.
    Error,
}

impl Outcome {
    /// The lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
            Outcome::Omit => "omit",
            Outcome::Error => "error",
        }
    }
}

/// One assertion that did not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was asserted.
    pub assertion: String,
    /// Where: a field path, a vector, a step.
    pub location: String,
    /// The expected value.
    pub expected: String,
    /// The value seen.
    pub actual: String,
}

impl Finding {
    /// A finding.
    pub fn new(
        assertion: impl Into<String>,
        location: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Finding {
        Finding {
            assertion: assertion.into(),
            location: location.into(),
            expected: expected.into(),
            actual: actual.into(),
        }
    }
}

/// Bytes of a request or response, for a person to read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Payload {
    /// The full length in bytes.
    pub length: usize,
    /// The bytes as text (UTF-8, or GB18030 for SAMR), when they are text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The bytes in base64, when they are not text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    /// Whether `text`/`base64` hold only the first [`Payload::KEEP`] bytes.
    pub truncated: bool,
    /// A decoded view (canonical JSON of a document, the fields of a reply …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoded: Option<serde_json::Value>,
}

impl Payload {
    /// How many bytes of a payload a report keeps.
    pub const KEEP: usize = 16 * 1024;

    /// A payload of `bytes`, with an optional decoded view.
    pub fn of(bytes: &[u8], decoded: Option<serde_json::Value>) -> Payload {
        let kept = &bytes[..bytes.len().min(Payload::KEEP)];
        let text = match std::str::from_utf8(kept) {
            Ok(t) => Some(t.to_string()),
            // A cut may split a UTF-8 character; keep what is whole.
            Err(e) if e.valid_up_to() + 4 >= kept.len() && bytes.len() > kept.len() => {
                Some(String::from_utf8_lossy(&kept[..e.valid_up_to()]).into_owned())
            }
            Err(_) if bytes.starts_with(b"<?xml") => Some(yrdx_adapters::samr::gb18030_text(kept)),
            Err(_) => None,
        };
        let base64 = match text {
            Some(_) => None,
            None => Some(base64::engine::general_purpose::STANDARD.encode(kept)),
        };
        Payload { length: bytes.len(), text, base64, truncated: bytes.len() > kept.len(), decoded }
    }

    /// A payload that is only a decoded view (no bytes on the wire of its own).
    pub fn view(decoded: serde_json::Value) -> Payload {
        Payload { decoded: Some(decoded), ..Payload::default() }
    }
}

/// One exchange with the target, as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The step it belongs to (1-based).
    pub step: usize,
    /// Who acted (`self`, `peer`, `no certificate` …).
    pub actor: String,
    /// The method: `yrdx.v1.Exchange/Submit`, `POST /v1/packages`, `TLS handshake` …
    pub method: String,
    /// The status answered: `OK`, `INVALID_ARGUMENT`, `200`, `refused` …
    pub status: String,
    /// What was sent.
    pub request: Payload,
    /// What came back.
    pub response: Payload,
    /// The TLS session, when one was established.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
    /// How long it took.
    pub duration_ms: u64,
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    /// Case id.
    pub id: String,
    /// Title.
    pub title: String,
    /// The suite.
    pub suite: String,
    /// The group within the suite.
    pub group: String,
    /// What it checks.
    pub checks: String,
    /// The clauses it checks.
    pub requirements: Vec<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// Whether it counts toward the verdict.
    pub required: bool,
    /// The outcome.
    pub outcome: Outcome,
    /// Listed in `--known-failing`.
    pub known_failing: bool,
    /// Omitted because `--run`/`--skip`/`--tag` left it out (not because it does not apply):
    /// a required case left out makes the verdict `incomplete`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deselected: bool,
    /// Why it was skipped, omitted or broke, or a summary of its failure.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Assertions that did not hold.
    pub findings: Vec<Finding>,
    /// Every exchange with the target.
    pub evidence: Vec<Evidence>,
    /// Duration.
    pub duration_ms: u64,
}

impl CaseReport {
    /// Whether this case makes the run fail: a required failure not listed as known, or a listed
    /// case that passed (the list is stale).
    pub fn fails_run(&self) -> bool {
        match (self.outcome, self.known_failing) {
            (Outcome::Fail, false) => self.required,
            (Outcome::Pass, true) => true,
            _ => false,
        }
    }

    /// Whether this is a required case that did not run although it applies to the target: skipped
    /// for a missing credential, or left out by `--run`/`--skip`/`--tag`. Such a run proved less
    /// than the suite asks, so it cannot pass.
    pub fn required_but_not_run(&self) -> bool {
        self.required && (self.outcome == Outcome::Skip || (self.outcome == Outcome::Omit && self.deselected))
    }

    /// Whether the case ran to a verdict on the system under test (pass or fail).
    pub fn checked(&self) -> bool {
        matches!(self.outcome, Outcome::Pass | Outcome::Fail)
    }

    /// The order a person reads a report in: what needs action first (fail, error), then what did
    /// not run, then what passed.
    pub fn reading_rank(&self) -> u8 {
        match self.outcome {
            Outcome::Fail if self.known_failing => 2,
            Outcome::Fail => 0,
            Outcome::Error => 1,
            Outcome::Pass if self.known_failing => 0,
            Outcome::Skip => 3,
            Outcome::Pass => 4,
            Outcome::Omit => 5,
        }
    }
}

/// The verdict of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every required case of the suite ran and passed.
    Pass,
    /// The system under test failed a required case (or a known-failing case passed).
    Fail,
    /// Nothing failed, but a required case did not run (a missing credential, a selection): the
    /// run cannot certify anything.
    Incomplete,
    /// The tool or its configuration broke; says nothing of the system under test.
    Error,
}

impl Verdict {
    /// The word every report shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Incomplete => "incomplete",
            Verdict::Error => "error",
        }
    }

    /// The exit code: 0 pass, 1 fail or incomplete, 2 error.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail | Verdict::Incomplete => 1,
            Verdict::Error => 2,
        }
    }
}

/// One input of the run, for the report (secrets redacted).
#[derive(Debug, Clone, Serialize)]
pub struct Input {
    /// Its name (`--cert`).
    pub name: String,
    /// Its value; keys show as `<redacted>`.
    pub value: String,
}

/// Counts by outcome.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Skipped.
    pub skip: usize,
    /// Omitted.
    pub omit: usize,
    /// Broken.
    pub error: usize,
    /// Failures listed as known.
    pub known_failing: usize,
    /// Listed as known failing, yet passed.
    pub unexpectedly_passed: usize,
    /// Required cases that apply but did not run (skipped, or left out by a selection).
    pub required_not_run: usize,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// [`REPORT_FORMAT`].
    pub report_format: String,
    /// A unique id of this run.
    pub run_id: String,
    /// The tool: `yrdx conformance`.
    pub tool: String,
    /// The tool's version.
    pub tool_version: String,
    /// SHA-256 of the tool's own binary, hex (empty when it could not be read).
    pub tool_sha256: String,
    /// The suite run.
    pub suite: String,
    /// The suite's version (of its case files).
    pub suite_version: String,
    /// What was tested (URL, translator command, or `adapters`).
    pub target: String,
    /// The partner acted as, when live.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub acting_as: String,
    /// The run's inputs.
    pub inputs: Vec<Input>,
    /// Start, RFC 3339 (Beijing time).
    pub started_at: String,
    /// Duration.
    pub duration_ms: u64,
    /// Counts.
    pub summary: Summary,
    /// The verdict: `pass`, `fail`, `incomplete` or `error`.
    pub verdict: String,
    /// Why the verdict is what it is, in one sentence.
    pub verdict_reason: String,
    /// Set when the run was stopped before its end (Ctrl-C): how far it got. The cases after it
    /// are reported as not run; such a run never passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
    /// Every case, in run order.
    pub cases: Vec<CaseReport>,
    /// Requirement × case: every clause the run's cases check, with those cases and their
    /// outcomes (set by [`RunReport::finish`]).
    pub requirements: Vec<RequirementRow>,
}

/// One clause of the catalogue and the cases of this run that check it.
#[derive(Debug, Clone, Serialize)]
pub struct RequirementRow {
    /// The clause id (`gateway.idempotency`).
    pub clause: String,
    /// The cases that check it, in run order, with their outcomes.
    pub cases: Vec<RequirementCase>,
}

/// A case as a requirement's row shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RequirementCase {
    /// The case id.
    pub id: String,
    /// Its outcome.
    pub outcome: Outcome,
}

/// SHA-256 of the running binary, hex; empty when it cannot be read.
pub fn own_binary_sha256() -> String {
    use sha2::{Digest, Sha256};
    std::env::current_exe().and_then(std::fs::read).map(|bytes| hex::encode(Sha256::digest(&bytes))).unwrap_or_default()
}

impl RunReport {
    /// The requirement × case matrix of the cases run, clauses in id order.
    pub fn requirement_matrix(&self) -> Vec<RequirementRow> {
        let mut rows: std::collections::BTreeMap<&str, Vec<RequirementCase>> = std::collections::BTreeMap::new();
        for c in &self.cases {
            for clause in &c.requirements {
                rows.entry(clause).or_default().push(RequirementCase { id: c.id.clone(), outcome: c.outcome });
            }
        }
        rows.into_iter().map(|(clause, cases)| RequirementRow { clause: clause.to_string(), cases }).collect()
    }

    /// Counts the outcomes and sets the verdict.
    pub fn finish(&mut self) {
        self.requirements = self.requirement_matrix();
        let mut s = Summary::default();
        for c in &self.cases {
            match c.outcome {
                Outcome::Pass => s.pass += 1,
                Outcome::Fail => s.fail += 1,
                Outcome::Skip => s.skip += 1,
                Outcome::Omit => s.omit += 1,
                Outcome::Error => s.error += 1,
            }
            if c.known_failing && c.outcome == Outcome::Fail {
                s.known_failing += 1;
            }
            if c.known_failing && c.outcome == Outcome::Pass {
                s.unexpectedly_passed += 1;
            }
        }
        s.required_not_run = self.cases.iter().filter(|c| c.required_but_not_run()).count();
        self.summary = s;
        let v = self.verdict_of();
        self.verdict = v.as_str().into();
        self.verdict_reason = self.reason(v);
    }

    /// The verdict: an `error` outweighs failures (the run cannot be trusted), a failure outweighs
    /// cases that did not run, and only a run where every required case ran and passed passes.
    pub fn verdict_of(&self) -> Verdict {
        // A run with no case checked nothing: it can never pass.
        if self.cases.is_empty() || self.cases.iter().any(|c| c.outcome == Outcome::Error && c.required) {
            Verdict::Error
        } else if self.cases.iter().any(CaseReport::fails_run) {
            Verdict::Fail
        } else if self.interrupted.is_some() || self.cases.iter().any(CaseReport::required_but_not_run) {
            Verdict::Incomplete
        } else {
            Verdict::Pass
        }
    }

    fn reason(&self, v: Verdict) -> String {
        let ids = |f: &dyn Fn(&CaseReport) -> bool| {
            let ids: Vec<&str> = self.cases.iter().filter(|c| f(c)).map(|c| c.id.as_str()).collect();
            match ids.len() {
                0..=3 => ids.join(", "),
                n => format!("{} and {} more", ids[..3].join(", "), n - 3),
            }
        };
        match v {
            Verdict::Pass => format!("every required case that applies ran and passed ({})", self.summary.pass),
            Verdict::Fail => format!("the system under test failed: {}", ids(&|c: &CaseReport| c.fails_run())),
            Verdict::Incomplete if self.interrupted.is_some() => format!(
                "{}: {} case(s) did not run, so the run certifies nothing",
                self.interrupted.as_deref().unwrap_or("interrupted"),
                self.cases.iter().filter(|c| c.message == "not run: the run was interrupted").count()
            ),
            Verdict::Incomplete => {
                let skipped = self.cases.iter().filter(|c| c.required && c.outcome == Outcome::Skip).count();
                let left_out = self.summary.required_not_run - skipped;
                let mut why = Vec::new();
                if skipped > 0 {
                    why.push(format!("{skipped} skipped for a missing credential"));
                }
                if left_out > 0 {
                    why.push(format!("{left_out} left out by --run/--skip/--tag"));
                }
                format!(
                    "{} required case(s) did not run ({}): {}",
                    self.summary.required_not_run,
                    why.join(", "),
                    ids(&|c: &CaseReport| c.required_but_not_run())
                )
            }
            Verdict::Error if self.cases.is_empty() => "no case ran".into(),
            Verdict::Error => format!(
                "the tool or its configuration broke (not a verdict on the system under test): {}",
                ids(&|c: &CaseReport| c.outcome == Outcome::Error && c.required)
            ),
        }
    }

    /// 0 every required case ran and passed; 1 the system under test failed, or a required case
    /// did not run (`incomplete`); 2 the tool or its configuration failed.
    pub fn exit_code(&self) -> u8 {
        self.verdict_of().exit_code()
    }

    /// The cases in reading order: failures and errors first, then what did not run, then passes
    /// (run order within each).
    pub fn cases_for_reading(&self) -> Vec<&CaseReport> {
        let mut cases: Vec<&CaseReport> = self.cases.iter().collect();
        cases.sort_by_key(|c| c.reading_rank());
        cases
    }
}

/// The time now as RFC 3339 in Beijing time (`2026-11-25T16:00:00+08:00`).
pub fn beijing_now() -> String {
    yrdx_proto::civil::BeijingTime::of(&crate::clock::now()).to_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str, outcome: Outcome, required: bool, deselected: bool) -> CaseReport {
        CaseReport {
            id: id.into(),
            title: String::new(),
            suite: "gateway".into(),
            group: "g".into(),
            checks: String::new(),
            requirements: vec![],
            tags: vec![],
            required,
            outcome,
            known_failing: false,
            deselected,
            message: String::new(),
            findings: vec![],
            evidence: vec![],
            duration_ms: 0,
        }
    }

    fn run(cases: Vec<CaseReport>) -> RunReport {
        let mut r = RunReport {
            report_format: REPORT_FORMAT.into(),
            run_id: "r".into(),
            tool: "t".into(),
            tool_version: "0".into(),
            tool_sha256: String::new(),
            suite: "gateway".into(),
            suite_version: "0".into(),
            target: "x".into(),
            acting_as: String::new(),
            inputs: vec![],
            started_at: String::new(),
            duration_ms: 0,
            summary: Summary::default(),
            verdict: String::new(),
            interrupted: None,
            verdict_reason: String::new(),
            cases,
            requirements: vec![],
        };
        r.finish();
        r
    }

    #[test]
    fn the_matrix_lists_each_clause_with_its_cases_and_outcomes() {
        let mut a = case("a", Outcome::Pass, true, false);
        a.requirements = vec!["x.two".into(), "x.one".into()];
        let mut b = case("b", Outcome::Fail, true, false);
        b.requirements = vec!["x.two".into()];
        let r = run(vec![a, b]);
        let rows: Vec<(&str, Vec<(&str, Outcome)>)> = r
            .requirements
            .iter()
            .map(|row| (row.clause.as_str(), row.cases.iter().map(|c| (c.id.as_str(), c.outcome)).collect()))
            .collect();
        assert_eq!(
            rows,
            [("x.one", vec![("a", Outcome::Pass)]), ("x.two", vec![("a", Outcome::Pass), ("b", Outcome::Fail)])]
        );
    }

    #[test]
    fn only_every_required_case_passing_passes() {
        let r = run(vec![case("a", Outcome::Pass, true, false), case("b", Outcome::Omit, true, false)]);
        assert_eq!((r.verdict.as_str(), r.exit_code()), ("pass", 0), "omitted for another partner");
        let r = run(vec![case("a", Outcome::Pass, true, false), case("b", Outcome::Skip, true, false)]);
        assert_eq!((r.verdict.as_str(), r.exit_code()), ("incomplete", 1));
        assert!(r.verdict_reason.contains('b'), "{}", r.verdict_reason);
        let r = run(vec![case("a", Outcome::Pass, true, false), case("b", Outcome::Omit, true, true)]);
        assert_eq!(r.verdict, "incomplete", "left out by a selection");
        let r = run(vec![case("a", Outcome::Pass, true, false), case("b", Outcome::Skip, false, false)]);
        assert_eq!(r.verdict, "pass", "an optional case may skip");
        let r = run(vec![case("a", Outcome::Fail, true, false), case("b", Outcome::Skip, true, false)]);
        assert_eq!((r.verdict.as_str(), r.exit_code()), ("fail", 1), "a failure outweighs incomplete");
        let r = run(vec![case("a", Outcome::Fail, true, false), case("b", Outcome::Error, true, false)]);
        assert_eq!((r.verdict.as_str(), r.exit_code()), ("error", 2));
    }

    #[test]
    fn failing_cases_are_read_first() {
        let r = run(vec![
            case("passed", Outcome::Pass, true, false),
            case("skipped", Outcome::Skip, true, false),
            case("failed", Outcome::Fail, true, false),
            case("broke", Outcome::Error, true, false),
        ]);
        let order: Vec<&str> = r.cases_for_reading().iter().map(|c| c.id.as_str()).collect();
        assert_eq!(order, ["failed", "broke", "skipped", "passed"]);
    }
}
