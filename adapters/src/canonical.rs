//! The canonical JSON form: Shanghai's own records in the proto3 JSON mapping (camelCase keys,
//! enums by name, int64 as strings, instants in RFC 3339), wrapped in a small document:
//!
//! ```json
//! {"envelope": {"messageId": "…", "sender": "310000", "receiver": "320000", "sentAt": "…"},
//!  "kind": "sampling",
//!  "records": [ { …SamplingRecord… } ]}
//! ```
//!
//! `kind` is a [`RecordKind`] name. A `case_forward` record is `{"case", "sampling", "inspection"}`.

use crate::json::{self, Ctx, Obj};
use crate::model::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use yrdx_proto::v1::*;

fn parse_as<T: DeserializeOwned>(v: &Value, path: &str, cx: &mut Ctx) -> Option<T> {
    // The generated deserialisers do not say where a value is wrong; track the path ourselves.
    match serde_path_to_error::deserialize::<_, T>(v.clone()) {
        Ok(t) => Some(t),
        Err(e) => {
            let inner = e.path().to_string();
            let at = if inner.is_empty() || inner == "." { path.to_string() } else { format!("{path}.{inner}") };
            cx.error(at, e.into_inner().to_string());
            None
        }
    }
}

fn record_from(kind: RecordKind, v: &Value, path: &str, cx: &mut Ctx) -> Option<Record> {
    Some(match kind {
        RecordKind::Plan => Record::Plan(parse_as(v, path, cx)?),
        RecordKind::Sampling => Record::Sampling(parse_as(v, path, cx)?),
        RecordKind::Inspection => Record::Inspection(parse_as(v, path, cx)?),
        RecordKind::CaseTransfer => Record::CaseTransfer(parse_as(v, path, cx)?),
        RecordKind::CaseFeedback => Record::CaseFeedback(parse_as(v, path, cx)?),
        RecordKind::RiskSignal => Record::RiskSignal(parse_as(v, path, cx)?),
        RecordKind::ResponsibilityReport => Record::ResponsibilityReport(parse_as(v, path, cx)?),
        RecordKind::SpotCheckResult => Record::SpotCheckResult(parse_as(v, path, cx)?),
        RecordKind::ClosedCase => Record::ClosedCase(parse_as(v, path, cx)?),
        RecordKind::CaseForward => {
            let o = Obj::of(v, path, cx)?;
            o.deny_unknown(&["case", "sampling", "inspection"], cx);
            let part = |key: &str, cx: &mut Ctx| -> Option<&Value> {
                let got = o.get(key);
                if got.is_none() {
                    cx.error(o.at(key), "required");
                }
                got
            };
            let case: DisposalCase = parse_as(part("case", cx)?, &o.at("case"), cx)?;
            let sampling: SamplingRecord = parse_as(part("sampling", cx)?, &o.at("sampling"), cx)?;
            let inspection: InspectionResult = parse_as(part("inspection", cx)?, &o.at("inspection"), cx)?;
            Record::CaseForward(Box::new(CaseForward { case, sampling, inspection }))
        }
    })
}

/// One record of a kind from its canonical JSON (as the gateway stores records).
pub fn record_from_json(kind: RecordKind, json: &str) -> Result<Record, String> {
    let value: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut cx = Ctx::default();
    record_from(kind, &value, "record", &mut cx)
        .ok_or_else(|| cx.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))
}

/// Decodes a canonical document; problems carry `records[i].<canonical path>`.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Document, DecodeError> {
    let root = json::parse(bytes, limits)?;
    let mut cx = Ctx::default();
    let Some(top) = Obj::of(&root, "", &mut cx) else {
        return Err(DecodeError::Invalid(cx.problems));
    };
    top.deny_unknown(&["envelope", "kind", "records"], &mut cx);
    let envelope = match top.get("envelope") {
        Some(v) => parse_as::<Envelope>(v, "envelope", &mut cx).unwrap_or_default(),
        None => Envelope::default(),
    };
    let kind = match top.get("kind") {
        Some(Value::String(k)) => {
            let kind = RecordKind::from_name(k);
            if kind.is_none() {
                let names: Vec<&str> = RecordKind::ALL.iter().map(|k| k.name()).collect();
                cx.error("kind", format!("'{k}' is not a record kind ({})", names.join(", ")));
            }
            kind
        }
        _ => {
            cx.error("kind", "required (a record kind name, e.g. \"sampling\")");
            None
        }
    };
    let list: &[Value] = match top.get("records") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => {
            cx.error("records", "required (a non-empty array of records)");
            &[]
        }
    };
    let mut records = Vec::new();
    if let Some(kind) = kind {
        for (i, v) in list.iter().enumerate() {
            let path = format!("records[{i}]");
            cx.record_id = None;
            let start = cx.problems.len();
            if let Some(r) = record_from(kind, v, &path, &mut cx) {
                cx.record_id = Some(r.id());
                cx.rule_violations(start, r.validate().into_iter().map(|v| (format!("{path}.{}", v.path), v.message)));
                records.push(r);
            }
        }
    }
    if cx.problems.is_empty() {
        Ok(Document { envelope, records })
    } else {
        Err(DecodeError::Invalid(cx.problems))
    }
}

fn to_value<T: Serialize>(t: &T) -> Value {
    // Generated pbjson serialisers cannot fail on in-memory messages.
    serde_json::to_value(t).unwrap_or(Value::Null)
}

/// The canonical JSON of one record.
pub fn record_to_value(record: &Record) -> Value {
    match record {
        Record::Plan(r) => to_value(r),
        Record::Sampling(r) => to_value(r),
        Record::Inspection(r) => to_value(r),
        Record::CaseTransfer(r) | Record::ClosedCase(r) => to_value(r),
        Record::CaseFeedback(r) => to_value(r),
        Record::RiskSignal(r) => to_value(r),
        Record::ResponsibilityReport(r) => to_value(r),
        Record::SpotCheckResult(r) => to_value(r),
        Record::CaseForward(f) => {
            let mut m = Map::new();
            m.insert("case".into(), to_value(&f.case));
            m.insert("sampling".into(), to_value(&f.sampling));
            m.insert("inspection".into(), to_value(&f.inspection));
            Value::Object(m)
        }
    }
}

/// Encodes records as a canonical document. Nothing is ever lost.
pub fn encode(envelope: &Envelope, records: &[Record]) -> Result<Encoded, EncodeError> {
    let kind = batch_kind(records, usize::MAX, "canonical")?;
    check_before_encode(records)?;
    let mut root = Map::new();
    root.insert("envelope".into(), to_value(envelope));
    root.insert("kind".into(), Value::String(kind.name().into()));
    root.insert("records".into(), Value::Array(records.iter().map(record_to_value).collect()));
    Ok(Encoded { bytes: json::to_bytes(&Value::Object(root)), losses: vec![] })
}
