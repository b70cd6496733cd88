//! The `formats` suite (offline): every conformance vector against yrdx's own adapters, or — so a
//! partner can test its own encoder — the valid vectors of one format against an external
//! translator command that turns a canonical document into that format.

use crate::report::{Evidence, Finding, Payload};
use crate::suite::LoadedCase;
use crate::vectors::{self, Expectation};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;
use yrdx_adapters::{canonical, DecodeLimits, Partner};

/// What the formats suite runs against.
#[derive(Debug, Clone)]
pub enum FormatsTarget {
    /// yrdx's adapters.
    Adapters,
    /// A command reading a canonical document on stdin and writing `format` on stdout.
    Translator {
        /// The shell command (`their-tool --to jiangsu`).
        command: String,
        /// The format it writes.
        format: Partner,
    },
}

/// How a formats case ended.
pub enum FormatsOutcome {
    /// Ran: the findings (none = pass) and the evidence.
    Ran(Vec<Finding>, Vec<Evidence>),
    /// Does not apply to this target.
    Omit(String),
    /// The case itself is broken (unreadable vector …).
    Error(String),
}

fn decoded_view(partner: Partner, bytes: &[u8]) -> Option<Value> {
    if partner == Partner::Samr {
        return None;
    }
    let doc = partner.decode(bytes, &DecodeLimits::default()).ok()?;
    let c = canonical::encode(&doc.envelope, &doc.records).ok()?;
    serde_json::from_slice(&c.bytes).ok()
}

/// Runs one generated vector case.
pub fn run_case(case: &LoadedCase, target: &FormatsTarget) -> FormatsOutcome {
    let Some(v) = &case.vector else { return FormatsOutcome::Error("a formats case needs a vector".into()) };
    let bytes = match std::fs::read(&v.path) {
        Ok(b) => b,
        Err(e) => return FormatsOutcome::Error(format!("{}: {e}", v.path.display())),
    };
    match target {
        FormatsTarget::Adapters => {
            let started = Instant::now();
            let mut findings = Vec::new();
            let response = match &v.expect {
                Expectation::Valid { .. } => {
                    if let Err(message) = vectors::check(v, false) {
                        findings.push(Finding::new(
                            "the vector decodes to its canonical document and re-encodes unchanged",
                            v.name(),
                            "decodes",
                            message,
                        ));
                    }
                    Payload { decoded: decoded_view(v.partner, &bytes), ..Payload::default() }
                }
                Expectation::Invalid(x) => match vectors::invalid_findings(v.partner, &bytes, x) {
                    Ok(outcome) => {
                        for (path, expected, actual) in outcome.missing {
                            findings.push(Finding::new(
                                "every expected path is named by a problem",
                                path,
                                expected,
                                actual,
                            ));
                        }
                        Payload::view(Value::Array(outcome.reported.into_iter().map(Value::String).collect()))
                    }
                    Err(message) => {
                        findings.push(Finding::new("the document is refused", v.name(), "refused", message));
                        Payload::default()
                    }
                },
            };
            let evidence = Evidence {
                step: 1,
                actor: "adapters".into(),
                method: format!("decode {}", v.partner),
                status: if findings.is_empty() { "as expected".into() } else { "not as expected".into() },
                request: Payload::of(&bytes, None),
                response,
                tls: None,
                duration_ms: started.elapsed().as_millis() as u64,
            };
            FormatsOutcome::Ran(findings, vec![evidence])
        }
        FormatsTarget::Translator { command, format } => {
            if v.partner != *format {
                return FormatsOutcome::Omit(format!("the translator writes {format}; this vector is {}", v.partner));
            }
            let Expectation::Valid { canonical: Some(expected_path) } = &v.expect else {
                return FormatsOutcome::Omit(
                    "a translator is checked with valid vectors that have a canonical document".into(),
                );
            };
            let input = match std::fs::read(expected_path) {
                Ok(b) => b,
                Err(e) => return FormatsOutcome::Error(format!("{}: {e}", expected_path.display())),
            };
            translate_and_compare(command, *format, &input)
        }
    }
}

fn translate_and_compare(command: &str, format: Partner, input: &[u8]) -> FormatsOutcome {
    let started = Instant::now();
    let child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return FormatsOutcome::Error(format!("translator {command:?} could not start: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A translator that exits without reading is judged by its output below.
        let _ = stdin.write_all(input);
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => return FormatsOutcome::Error(format!("translator {command:?}: {e}")),
    };
    let mut findings = Vec::new();
    let status = out.status.code().map(|c| format!("exit {c}")).unwrap_or_else(|| "killed".into());
    let decoded = format.decode(&out.stdout, &DecodeLimits::default());
    let expected: Option<Value> = serde_json::from_slice(input).ok();
    if !out.status.success() {
        findings.push(Finding::new(
            "the translator translates a valid canonical document",
            "exit status",
            "exit 0",
            format!("{status}: {}", String::from_utf8_lossy(&out.stderr).trim()),
        ));
    } else {
        match &decoded {
            Err(e) => {
                for p in e.problems() {
                    findings.push(Finding::new(
                        format!("the output is a valid {format} document"),
                        p.path.clone(),
                        p.message.clone(),
                        "refused by the adapter",
                    ));
                }
            }
            Ok(doc) => {
                let got = canonical::encode(&doc.envelope, &doc.records)
                    .ok()
                    .and_then(|c| serde_json::from_slice::<Value>(&c.bytes).ok());
                let (want, got) = (
                    expected.as_ref().and_then(|v| v.get("records")).cloned().unwrap_or(Value::Null),
                    got.as_ref().and_then(|v| v.get("records")).cloned().unwrap_or(Value::Null),
                );
                for (path, e, a) in crate::suite::json_differences(&want, &got) {
                    findings.push(Finding::new(
                        "the output carries every field of the input (envelope values excepted)",
                        format!("records.{path}"),
                        e,
                        a,
                    ));
                }
            }
        }
    }
    let evidence = Evidence {
        step: 1,
        actor: "translator".into(),
        method: command.to_string(),
        status,
        request: Payload::of(input, None),
        response: Payload::of(&out.stdout, decoded_view(format, &out.stdout)),
        tls: None,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    FormatsOutcome::Ran(findings, vec![evidence])
}
