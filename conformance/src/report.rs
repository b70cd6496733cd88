//! What a run found, as data: the versioned JSON report that the JUnit and HTML reports are
//! written from.

use crate::tls::TlsFacts;
use base64::Engine;
use serde::Serialize;

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
    /// The verdict: `pass`, `fail` or `error`.
    pub verdict: String,
    /// Every case, in run order.
    pub cases: Vec<CaseReport>,
}

impl RunReport {
    /// Counts the outcomes and sets the verdict.
    pub fn finish(&mut self) {
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
        self.summary = s;
        self.verdict = match self.exit_code() {
            0 => "pass",
            1 => "fail",
            _ => "error",
        }
        .into();
    }

    /// 0 every required case passed; 1 the system under test failed; 2 the tool or its
    /// configuration failed (an `error` outweighs failures: the run cannot be trusted).
    pub fn exit_code(&self) -> u8 {
        if self.cases.iter().any(|c| c.outcome == Outcome::Error && c.required) {
            2
        } else if self.cases.iter().any(CaseReport::fails_run) {
            1
        } else {
            0
        }
    }
}

/// The time now as RFC 3339 in Beijing time (`2026-11-25T16:00:00+08:00`).
pub fn beijing_now() -> String {
    yrdx_proto::civil::BeijingTime::of(&crate::live::now()).to_rfc3339()
}
