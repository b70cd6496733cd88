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

use crate::json::{self, Obj};
use crate::model::*;
use crate::problems::Ctx;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use serde_path_to_error::{Path, Segment};
use yrdx_proto::v1::*;

fn parse_as<T: DeserializeOwned>(v: &Value, message: &str, path: &str, cx: &mut Ctx) -> Option<T> {
    // The generated deserialisers do not say where a value is wrong; track the path ourselves.
    match serde_path_to_error::deserialize::<_, T>(v.clone()) {
        Ok(t) => Some(t),
        Err(e) => {
            let inner = e.path().to_string();
            let at = if inner.is_empty() || inner == "." { path.to_string() } else { format!("{path}.{inner}") };
            let original = e.inner().to_string();
            let text = explain(v, message, e.path(), &original);
            cx.error(at, text);
            None
        }
    }
}

/// A refusal of the generated deserialisers in partner terms: what the field takes (from the
/// compiled descriptors) and what was found. Their own messages ("data did not match any variant
/// of untagged enum Content", "input contains invalid characters") name neither.
fn explain(root: &Value, message: &str, path: &Path, original: &str) -> String {
    if original.starts_with("unknown field") || original.starts_with("duplicate field") {
        return original.to_string();
    }
    let expected = schema::expected_at(message, path);
    let found = value_at(root, path).map(describe_value);
    match (expected, found) {
        (Some(expected), Some(found)) if original.contains("untagged enum") || original.contains("invalid type") => {
            format!("expected {expected}, found {found}")
        }
        (Some(expected), Some(found)) => format!("expected {expected}, found {found} ({original})"),
        (Some(expected), None) => format!("expected {expected} ({original})"),
        (None, Some(found)) if original.contains("untagged enum") => {
            format!("expected a number (a JSON number or a string of digits), found {found}")
        }
        _ => original.to_string(),
    }
}

/// The value at a deserialiser's path, if the path leads to one.
fn value_at<'v>(root: &'v Value, path: &Path) -> Option<&'v Value> {
    let mut v = root;
    for segment in path.iter() {
        v = match segment {
            Segment::Seq { index } => v.as_array()?.get(*index)?,
            Segment::Map { key } => v.as_object()?.get(key)?,
            Segment::Enum { .. } | Segment::Unknown => return None,
        };
    }
    Some(v)
}

/// A found value for a message: its type and, for a scalar, the value itself (shortened).
fn describe_value(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let short: String = s.chars().take(40).collect();
            let more = if short.len() < s.len() { "…" } else { "" };
            format!("the string \"{short}{more}\"")
        }
        Value::Number(n) => format!("the number {n}"),
        Value::Bool(b) => format!("{b}"),
        other => json::type_name(other).to_string(),
    }
}

/// What a canonical field takes, read from the compiled `.proto` descriptors.
mod schema {
    use prost::Message;
    use prost_types::field_descriptor_proto::{Label, Type};
    use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet};
    use serde_path_to_error::{Path, Segment};
    use std::sync::OnceLock;

    fn set() -> &'static FileDescriptorSet {
        static SET: OnceLock<FileDescriptorSet> = OnceLock::new();
        // The set is compiled into yrdx-proto; an unreadable one only costs the better messages.
        SET.get_or_init(|| FileDescriptorSet::decode(yrdx_proto::FILE_DESCRIPTOR_SET).unwrap_or_default())
    }

    /// `name` is fully qualified without the leading dot (`yrdx.v1.SamplingRecord`).
    fn message(name: &str) -> Option<&'static DescriptorProto> {
        set().file.iter().find_map(|f| {
            let short = name.strip_prefix(f.package())?.strip_prefix('.')?;
            f.message_type.iter().find(|m| m.name() == short)
        })
    }

    fn enumeration(name: &str) -> Option<&'static EnumDescriptorProto> {
        set().file.iter().find_map(|f| {
            let short = name.strip_prefix(f.package())?.strip_prefix('.')?;
            f.enum_type.iter().find(|e| e.name() == short)
        })
    }

    /// What the field at `path` inside `message` takes, in words.
    pub(super) fn expected_at(message_name: &str, path: &Path) -> Option<String> {
        let mut msg = message(message_name)?;
        let mut field: Option<&FieldDescriptorProto> = None;
        let mut element = false;
        for segment in path.iter() {
            match segment {
                Segment::Map { key } => {
                    if let Some(f) = field {
                        msg = message(f.type_name().trim_start_matches('.'))?;
                    }
                    field = Some(msg.field.iter().find(|f| f.json_name() == key || f.name() == key)?);
                    element = false;
                }
                Segment::Seq { .. } => element = true,
                Segment::Enum { .. } | Segment::Unknown => return None,
            }
        }
        let field = field?;
        let one = of_type(field)?;
        Some(if field.label() == Label::Repeated && !element { format!("an array of {one}") } else { one })
    }

    fn of_type(f: &FieldDescriptorProto) -> Option<String> {
        Some(match f.r#type() {
            Type::String => "a string".into(),
            Type::Bool => "true or false".into(),
            Type::Int32 | Type::Sint32 | Type::Sfixed32 => {
                "a 32-bit integer (a JSON number or a string of digits)".into()
            }
            Type::Uint32 | Type::Fixed32 => {
                "a non-negative 32-bit integer (a JSON number or a string of digits)".into()
            }
            Type::Int64 | Type::Sint64 | Type::Sfixed64 | Type::Uint64 | Type::Fixed64 => {
                "a 64-bit integer as a string of digits (e.g. \"12800\")".into()
            }
            Type::Double | Type::Float => "a number".into(),
            Type::Bytes => "base64 text".into(),
            Type::Enum => {
                let e = enumeration(f.type_name().trim_start_matches('.'))?;
                let names: Vec<&str> =
                    e.value.iter().map(|v| v.name()).filter(|n| !n.ends_with("_UNSPECIFIED")).collect();
                format!("one of the names {}", names.join(", "))
            }
            Type::Message | Type::Group => match f.type_name() {
                ".google.protobuf.Timestamp" => "an RFC 3339 instant such as \"2024-03-15T02:30:00Z\"".into(),
                ".google.type.Date" => "a date object such as {\"year\": 2024, \"month\": 3, \"day\": 20}".into(),
                other => format!("a JSON object ({})", other.rsplit('.').next().unwrap_or(other)),
            },
        })
    }
}

fn record_from(kind: RecordKind, v: &Value, path: &str, cx: &mut Ctx) -> Option<Record> {
    Some(match kind {
        RecordKind::Plan => Record::Plan(parse_as(v, "yrdx.v1.SpotCheckPlan", path, cx)?),
        RecordKind::Sampling => Record::Sampling(parse_as(v, "yrdx.v1.SamplingRecord", path, cx)?),
        RecordKind::Inspection => Record::Inspection(parse_as(v, "yrdx.v1.InspectionResult", path, cx)?),
        RecordKind::CaseTransfer => Record::CaseTransfer(parse_as(v, "yrdx.v1.DisposalCase", path, cx)?),
        RecordKind::CaseFeedback => Record::CaseFeedback(parse_as(v, "yrdx.v1.CaseFeedback", path, cx)?),
        RecordKind::RiskSignal => Record::RiskSignal(parse_as(v, "yrdx.v1.RiskSignal", path, cx)?),
        RecordKind::ResponsibilityReport => {
            Record::ResponsibilityReport(parse_as(v, "yrdx.v1.ResponsibilityReport", path, cx)?)
        }
        RecordKind::SpotCheckResult => Record::SpotCheckResult(parse_as(v, "yrdx.v1.SpotCheckResult", path, cx)?),
        RecordKind::ClosedCase => Record::ClosedCase(parse_as(v, "yrdx.v1.DisposalCase", path, cx)?),
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
            let case: DisposalCase = parse_as(part("case", cx)?, "yrdx.v1.DisposalCase", &o.at("case"), cx)?;
            let sampling: SamplingRecord =
                parse_as(part("sampling", cx)?, "yrdx.v1.SamplingRecord", &o.at("sampling"), cx)?;
            let inspection: InspectionResult =
                parse_as(part("inspection", cx)?, "yrdx.v1.InspectionResult", &o.at("inspection"), cx)?;
            Record::CaseForward(Box::new(CaseForward { case, sampling, inspection }))
        }
    })
}

/// Why [`record_from_json`] gave no record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordJsonError {
    /// The text is not strict JSON (the reader's refusal, its message unchanged).
    #[error(transparent)]
    Json(#[from] DecodeError),
    /// The JSON is not a record of the kind; every problem, joined by `; ` when shown.
    #[error("{}", join_problems(.0))]
    Invalid(Vec<Problem>),
}

fn join_problems(problems: &[Problem]) -> String {
    problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")
}

/// One record of a kind from its canonical JSON (as the gateway stores records).
pub fn record_from_json(kind: RecordKind, json: &str) -> Result<Record, RecordJsonError> {
    let value = json::parse(json.as_bytes(), &DecodeLimits { max_bytes: usize::MAX, ..DecodeLimits::default() })?;
    let mut cx = Ctx::default();
    record_from(kind, &value, "record", &mut cx).ok_or(RecordJsonError::Invalid(cx.problems))
}

/// Decodes a canonical document; problems carry `records[i].<canonical path>`.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Document, DecodeError> {
    let root = json::parse(bytes, limits)?;
    let mut cx = Ctx::new(limits);
    let Some(top) = Obj::of(&root, "", &mut cx) else {
        return Err(DecodeError::Invalid(cx.problems));
    };
    top.deny_unknown(&["envelope", "kind", "records"], &mut cx);
    let envelope = match top.get("envelope") {
        Some(v) => parse_as::<Envelope>(v, "yrdx.v1.Envelope", "envelope", &mut cx).unwrap_or_default(),
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
        // A longer list is not interpreted: the count is the problem.
        Some(Value::Array(a)) if a.len() > limits.max_records => {
            cx.error("records", format!("expected at most {} records, found {}", limits.max_records, a.len()));
            &[]
        }
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => {
            cx.error("records", "required (a non-empty array of records)");
            &[]
        }
    };
    let mut records = Vec::new();
    if let Some(kind) = kind {
        for (i, v) in list.iter().enumerate() {
            if cx.full() {
                break;
            }
            let path = format!("records[{i}]");
            cx.record_id = None;
            let start = cx.problems.len();
            if let Some(r) = record_from(kind, v, &path, &mut cx) {
                cx.record_id = Some(r.id());
                cx.check_rules(start, &r, |canonical| format!("{path}.{canonical}"));
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
    to_value(&AsCanonical(record))
}

/// The canonical JSON of one record as compact text: [`record_to_value`]'s text, written
/// straight from the record (no tree of values in between; the stored form of every record).
pub fn record_json(record: &Record) -> String {
    // Serialising an in-memory message to a string cannot fail.
    serde_json::to_string(&AsCanonical(record)).unwrap_or_default()
}

/// A record serialised as its canonical JSON (a case forward as its three parts).
struct AsCanonical<'a>(&'a Record);

impl Serialize for AsCanonical<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            Record::Plan(r) => r.serialize(s),
            Record::Sampling(r) => r.serialize(s),
            Record::Inspection(r) => r.serialize(s),
            Record::CaseTransfer(r) | Record::ClosedCase(r) => r.serialize(s),
            Record::CaseFeedback(r) => r.serialize(s),
            Record::RiskSignal(r) => r.serialize(s),
            Record::ResponsibilityReport(r) => r.serialize(s),
            Record::SpotCheckResult(r) => r.serialize(s),
            Record::CaseForward(f) => {
                let mut m = s.serialize_map(Some(3))?;
                m.serialize_entry("case", &f.case)?;
                m.serialize_entry("sampling", &f.sampling)?;
                m.serialize_entry("inspection", &f.inspection)?;
                m.end()
            }
        }
    }
}

/// Encodes records as a canonical document. Nothing is ever lost.
pub fn encode(envelope: &Envelope, records: &[Record]) -> Result<Encoded, EncodeError> {
    Ok(Body::of(records)?.under(envelope))
}

/// A document's `kind` and `records` members, written.
pub(crate) struct Body {
    kind: Vec<u8>,
    records: Vec<u8>,
}

impl EncodedOnce for Body {
    fn of(records: &[Record]) -> Result<Body, EncodeError> {
        let kind = batch_kind(records, usize::MAX, "canonical")?;
        check_before_encode(records)?;
        Ok(Body {
            kind: json::member_bytes(kind.name()),
            records: json::member_bytes(&records.iter().map(AsCanonical).collect::<Vec<_>>()),
        })
    }

    fn under(&self, envelope: &Envelope) -> Encoded {
        let envelope = json::member_bytes(envelope);
        let members: [(&str, &[u8]); 3] = [("envelope", &envelope), ("kind", &self.kind), ("records", &self.records)];
        Encoded { bytes: json::object_bytes(&members), losses: vec![] }
    }
}
