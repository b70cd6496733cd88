//! The `formats` suite (offline): every conformance vector against yrdx's own adapters, or — so a
//! partner can test its own encoder — the valid vectors of one format against an external
//! translator command that turns a canonical document into that format.

use crate::report::{Evidence, Finding, Payload};
use crate::suite::LoadedCase;
use crate::vectors::{self, Expectation};
use serde_json::Value;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
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
        /// How long one translation may take before it is killed and the case fails.
        timeout: Duration,
    },
}

/// The default translator timeout.
pub const DEFAULT_TRANSLATOR_TIMEOUT: Duration = Duration::from_secs(10);

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
    if !case.batch.is_empty() {
        return run_batch(case, target);
    }
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
                            message.to_string(),
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
                        findings.push(Finding::new(
                            "the document is refused",
                            v.name(),
                            "refused",
                            message.to_string(),
                        ));
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
        FormatsTarget::Translator { command, format, timeout } => {
            if v.partner != *format {
                return FormatsOutcome::Omit(format!("the translator writes {format}; this vector is {}", v.partner));
            }
            let Some(expected_path) = crate::suite::canonical_of(v) else {
                return FormatsOutcome::Omit(
                    "a translator is checked with valid vectors that have a canonical document".into(),
                );
            };
            let input = match std::fs::read(&expected_path) {
                Ok(b) => b,
                Err(e) => return FormatsOutcome::Error(format!("{}: {e}", expected_path.display())),
            };
            translate_and_compare(command, *format, &input, *timeout)
        }
    }
}

/// Why a batch case's input could not be built (the vectors are wrong: the case ends in error).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A vector of the batch has no expected canonical document.
    #[error("{vector}: no canonical document")]
    NoCanonical {
        /// The vector.
        vector: String,
    },
    /// A canonical document could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A canonical document is not JSON.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The case has no vectors.
    #[error("a batch case without vectors")]
    Empty,
}

/// Why a translator could not be run (the tool's configuration: the case ends in error).
#[derive(Debug, thiserror::Error)]
pub enum TranslatorError {
    /// The command could not start.
    #[error("translator {command:?} could not start: {source}")]
    Start {
        /// The command.
        command: String,
        /// The error.
        source: std::io::Error,
    },
    /// Waiting for it failed.
    #[error("translator {command:?}: {source}")]
    Wait {
        /// The command.
        command: String,
        /// The error.
        source: std::io::Error,
    },
}

/// The canonical document of a batch case: the first vector's envelope and kind, every vector's
/// records in order.
fn batch_document(case: &LoadedCase) -> Result<Value, BatchError> {
    let mut doc: Option<Value> = None;
    let mut records = Vec::new();
    for v in &case.batch {
        let path = crate::suite::canonical_of(v).ok_or_else(|| BatchError::NoCanonical { vector: v.name() })?;
        let shown = || path.display().to_string();
        let bytes = std::fs::read(&path).map_err(|source| BatchError::Read { path: shown(), source })?;
        let d: Value = serde_json::from_slice(&bytes).map_err(|source| BatchError::Json { path: shown(), source })?;
        records.extend(d.get("records").and_then(Value::as_array).cloned().unwrap_or_default());
        doc.get_or_insert(d);
    }
    let mut doc = doc.ok_or(BatchError::Empty)?;
    doc["records"] = Value::Array(records);
    Ok(doc)
}

fn run_batch(case: &LoadedCase, target: &FormatsTarget) -> FormatsOutcome {
    let doc = match batch_document(case) {
        Ok(d) => d,
        Err(e) => return FormatsOutcome::Error(e.to_string()),
    };
    let input = match serde_json::to_vec_pretty(&doc) {
        Ok(b) => b,
        Err(e) => return FormatsOutcome::Error(e.to_string()),
    };
    let Some(format) = case.batch.first().map(|v| v.partner) else {
        return FormatsOutcome::Error("a batch case without vectors".into());
    };
    match target {
        FormatsTarget::Translator { command, format: writes, timeout } => {
            if *writes != format {
                return FormatsOutcome::Omit(format!("the translator writes {writes}; this batch is {format}"));
            }
            translate_and_compare(command, format, &input, *timeout)
        }
        FormatsTarget::Adapters => {
            // Our own adapters, as the translator would be judged: canonical in, the format out,
            // decoded back and compared.
            let started = Instant::now();
            let encoded = canonical::decode(&input, &DecodeLimits::default())
                .map_err(|e| e.to_string())
                .and_then(|d| format.encode(&d.envelope, &d.records, 1).map_err(|e| e.to_string()));
            let bytes = match encoded {
                Ok(e) => e.bytes,
                Err(e) => {
                    let f = Finding::new("the batch is written in the format", format.to_string(), "written", e);
                    return FormatsOutcome::Ran(vec![f], vec![]);
                }
            };
            let findings = compare_output(format, &input, &bytes);
            let evidence = Evidence {
                step: 1,
                actor: "adapters".into(),
                method: format!("encode {format}, decode {format}"),
                status: if findings.is_empty() { "as expected".into() } else { "not as expected".into() },
                request: Payload::of(&input, None),
                response: Payload::of(&bytes, decoded_view(format, &bytes)),
                tls: None,
                duration_ms: started.elapsed().as_millis() as u64,
            };
            FormatsOutcome::Ran(findings, vec![evidence])
        }
    }
}

/// What a translator wrote, compared with the canonical document it was given: a valid document
/// of the format, with the input's sender and receiver, a message id and a sending time (the
/// interface documents leave those to the sender: a translated document is a new message), and
/// every record, in order, with every field.
fn compare_output(format: Partner, input: &[u8], output: &[u8]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let doc = match format.decode(output, &DecodeLimits::default()) {
        Ok(d) => d,
        Err(e) => {
            for p in e.problems() {
                findings.push(Finding::new(
                    format!("the output is a valid {format} document"),
                    p.path.clone(),
                    "a valid value",
                    format!("refused by the {format} adapter: {}", p.message),
                ));
            }
            if findings.is_empty() {
                findings.push(Finding::new(
                    format!("the output is a valid {format} document"),
                    "(document)",
                    format!("a {format} document"),
                    e.to_string(),
                ));
            }
            return findings;
        }
    };
    // The input as our canonical encoder writes it, so that spellings of one value (`Z` and
    // `+00:00`) do not count as differences.
    let want: Value = canonical::decode(input, &DecodeLimits::default())
        .ok()
        .and_then(|d| canonical::encode(&d.envelope, &d.records).ok())
        .and_then(|c| serde_json::from_slice(&c.bytes).ok())
        .or_else(|| serde_json::from_slice(input).ok())
        .unwrap_or(Value::Null);
    let got = canonical::encode(&doc.envelope, &doc.records)
        .ok()
        .and_then(|c| serde_json::from_slice::<Value>(&c.bytes).ok())
        .unwrap_or(Value::Null);
    for field in ["sender", "receiver"] {
        let (e, a) = (&want["envelope"][field], &got["envelope"][field]);
        if e != a {
            findings.push(Finding::new(
                format!("the envelope keeps the {field}"),
                format!("envelope.{field}"),
                show(e),
                show(a),
            ));
        }
    }
    for field in ["messageId", "sentAt"] {
        if got["envelope"][field].as_str().is_none_or(str::is_empty) {
            findings.push(Finding::new(
                format!("the envelope has a {field}"),
                format!("envelope.{field}"),
                "a value",
                "(absent)",
            ));
        }
    }
    if want["kind"] != got["kind"] {
        findings.push(Finding::new(
            "the output holds the same kind of record",
            "kind",
            show(&want["kind"]),
            show(&got["kind"]),
        ));
    }
    let empty = Vec::new();
    let (want_records, got_records) =
        (want["records"].as_array().unwrap_or(&empty), got["records"].as_array().unwrap_or(&empty));
    if want_records.len() != got_records.len() {
        findings.push(Finding::new(
            "the output carries every record of the batch",
            "records",
            format!("{} record(s)", want_records.len()),
            format!("{} record(s)", got_records.len()),
        ));
    }
    for (i, (w, g)) in want_records.iter().zip(got_records).enumerate() {
        for (path, e, a) in crate::suite::json_differences(w, g) {
            findings.push(Finding::new(
                "the output carries every field of the input",
                format!("records.{i}.{path}"),
                e,
                a,
            ));
        }
    }
    findings
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(absent)".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Output of a translator run.
struct Translated {
    status: String,
    success: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `command` with `input` on stdin, killing it after `timeout`.
fn run_translator(command: &str, input: &[u8], timeout: Duration) -> Result<Translated, TranslatorError> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| TranslatorError::Start { command: command.to_string(), source })?;
    // Writing and reading on threads, so a translator that reads nothing or writes much cannot
    // block the wait below.
    let stdin = child.stdin.take();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            // A translator that exits without reading is judged by its output.
            let _ = stdin.write_all(&input);
        }
    });
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(source) => return Err(TranslatorError::Wait { command: command.to_string(), source }),
        }
    };
    let _ = writer.join();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(match status {
        Some(s) => Translated {
            status: s.code().map(|c| format!("exit {c}")).unwrap_or_else(|| "killed by a signal".into()),
            success: s.success(),
            stdout,
            stderr,
        },
        None => Translated {
            status: format!("no answer within {} ms (killed)", timeout.as_millis()),
            success: false,
            stdout,
            stderr,
        },
    })
}

fn translate_and_compare(command: &str, format: Partner, input: &[u8], timeout: Duration) -> FormatsOutcome {
    let started = Instant::now();
    let out = match run_translator(command, input, timeout) {
        Ok(o) => o,
        Err(e) => return FormatsOutcome::Error(e.to_string()),
    };
    let findings = if out.success {
        compare_output(format, input, &out.stdout)
    } else {
        vec![Finding::new(
            "the translator translates a valid canonical document",
            "exit status",
            "exit 0",
            format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        )]
    };
    let evidence = Evidence {
        step: 1,
        actor: "translator".into(),
        method: command.to_string(),
        status: out.status,
        request: Payload::of(input, None),
        response: Payload::of(&out.stdout, decoded_view(format, &out.stdout)),
        tls: None,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    FormatsOutcome::Ran(findings, vec![evidence])
}
