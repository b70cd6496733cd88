//! Jiangsu exchange interface (苏监交换接口 v2.1): JSON in UTF-8 with upper-case pinyin-initial
//! keys, every scalar a JSON string, `""` for absent values, 1–100 records per message.
//! See `docs/partners/jiangsu.md`.

//!
//! Each record is a field table (`records.rs`: key, canonical path, how it is read and written,
//! once per key) that the allowed-keys check, decoding, encoding and the problem paths all use;
//! `table.rs` is how Jiangsu spells each value for the engine, `crate::json_table`; `codes.rs` the
//! code dictionaries.

mod codes;
mod records;
mod table;

use crate::envelope::EnvelopePaths;
use crate::fields::key_of;
use crate::json::{self, Obj};
use crate::json_table::read_new;
use crate::model::*;
use crate::paths::map_path_by;
use crate::problems::Ctx;
use serde_json::{Map, Value};
use table::{template, write, Reader};
use yrdx_proto::v1::*;

/// Jiangsu's envelope id.
pub const PARTNER_ID: &str = "320000";
/// Most records in one message.
pub const MAX_RECORDS: usize = 100;
/// The interface version written and required (`HEAD.BBH`).
pub const VERSION: &str = "2.1";

/// Message types (`HEAD.XXLX`) and the record kind each carries.
const MESSAGE_TYPES: &[(&str, RecordKind)] = &[
    ("JH", RecordKind::Plan),
    ("CYD", RecordKind::Sampling),
    ("JYBG", RecordKind::Inspection),
    ("CZYS", RecordKind::CaseTransfer),
    ("CZFK", RecordKind::CaseFeedback),
    ("FXXX", RecordKind::RiskSignal),
];

/// Decodes a Jiangsu message: the envelope and every record, checked against the interface
/// document and the domain rules. Every problem is returned, with Jiangsu paths.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Document, DecodeError> {
    let root = json::parse(bytes, limits)?;
    let mut cx = Ctx::new(limits);
    let Some(top) = Obj::of(&root, "", &mut cx) else {
        return Err(DecodeError::Invalid(cx.problems));
    };
    top.deny_unknown(&["HEAD", "DATA"], &mut cx);
    let (envelope, kind) = match top.get("HEAD") {
        Some(h) => decode_head(h, &mut cx),
        None => {
            cx.error("HEAD", "required");
            (Envelope::default(), None)
        }
    };
    let data: &[Value] = match top.get("DATA") {
        Some(Value::Array(a)) => a,
        Some(other) => {
            cx.error("DATA", format!("expected a JSON array of records, found {}", json::type_name(other)));
            &[]
        }
        None => {
            cx.error("DATA", "required");
            &[]
        }
    };
    if top.get("DATA").is_some_and(Value::is_array) && !(1..=MAX_RECORDS).contains(&data.len()) {
        cx.error("DATA", format!("expected 1–{MAX_RECORDS} records, found {}", data.len()));
    }
    // More records than the interface allows are not interpreted: the count is the problem.
    let data = if data.len() > MAX_RECORDS { &[] } else { data };
    let mut records = Vec::with_capacity(data.len());
    if let Some(kind) = kind {
        for (i, value) in data.iter().enumerate() {
            if cx.full() {
                break;
            }
            let path = format!("DATA[{i}]");
            cx.record_id = None;
            let start = cx.problems.len();
            let Some(o) = Obj::of(value, path.clone(), &mut cx) else {
                continue;
            };
            let record = decode_record(kind, o, &mut cx);
            cx.record_id = Some(record.id());
            cx.check_rules(start, &record, |canonical| {
                format!(
                    "{path}.{}",
                    map_path_by(|p| template_of(kind, p), canonical, 0).unwrap_or_else(|| canonical.to_string())
                )
            });
            records.push(record);
        }
    }
    if cx.problems.is_empty() {
        Ok(Document { envelope, records })
    } else {
        Err(DecodeError::Invalid(cx.problems))
    }
}

/// The record kind of a message type (`HEAD.XXLX`).
fn kind_of(message_type: &str) -> Option<RecordKind> {
    MESSAGE_TYPES.iter().find(|(c, _)| *c == message_type).map(|(_, k)| *k)
}

/// The problem of a `HEAD.XXLX` that is no message type.
fn message_type_problem(xxlx: &str) -> Option<String> {
    let message = || format!("'{xxlx}' is not a message type (expected JH, CYD, JYBG, CZYS, CZFK or FXXX)");
    kind_of(xxlx).is_none().then(message)
}

/// The problem of a `HEAD.BBH` that is not [`VERSION`].
fn version_problem(version: &str) -> Option<String> {
    (version != VERSION).then(|| format!("'{version}' is not the interface version {VERSION}"))
}

fn decode_head(value: &Value, cx: &mut Ctx) -> (Envelope, Option<RecordKind>) {
    let Some(o) = Obj::of(value, "HEAD", cx) else {
        return (Envelope::default(), None);
    };
    let mut r = Reader::new(o, cx, &table::SPELLING);
    let head: records::Head = read_new(records::HEAD, &mut r);
    let kind = kind_of(&head.message_type);
    let envelope =
        Envelope { message_id: head.message_id, sender: head.sender, receiver: head.receiver, sent_at: head.sent_at };
    let path = |field| format!("HEAD.{}", key_of(records::HEAD, field));
    let (message_id, sender, receiver, sent_at) =
        (path("message_id"), path("sender"), path("receiver"), path("sent_at"));
    let paths = EnvelopePaths {
        message_id: &message_id,
        sender: &sender,
        receiver: &receiver,
        sent_at: &sent_at,
        sent_at_form: "yyyyMMddHHmmss, Beijing time",
    };
    crate::envelope::check(&envelope, &paths, r.cx);
    (envelope, kind)
}

fn decode_record(kind: RecordKind, o: Obj<'_>, cx: &mut Ctx) -> Record {
    let id = match kind {
        RecordKind::Plan => key_of(records::PLAN, "plan_id"),
        RecordKind::Sampling => key_of(records::SAMPLING, "sample_id"),
        RecordKind::Inspection => key_of(records::INSPECTION, "report_no"),
        RecordKind::CaseTransfer => key_of(records::TRANSFER, "case_id"),
        RecordKind::CaseFeedback => key_of(records::FEEDBACK, "event.event_id"),
        _ => key_of(records::RISK, "signal_id"),
    };
    if let Some(Value::String(id)) = o.get(id) {
        cx.record_id = Some(id.trim().to_string());
    }
    records::decode(kind, &mut Reader::new(o, cx, &table::SPELLING))
}

/// The Jiangsu path template of a canonical pattern in a record of `kind` (the table's).
fn template_of(kind: RecordKind, pattern: &str) -> Option<String> {
    match kind {
        RecordKind::Plan => template(records::PLAN, pattern),
        RecordKind::Sampling => template(records::SAMPLING, pattern),
        RecordKind::Inspection => template(records::INSPECTION, pattern),
        RecordKind::CaseTransfer => template(records::TRANSFER, pattern),
        RecordKind::CaseFeedback => template(records::FEEDBACK, pattern),
        _ => template(records::RISK, pattern),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Encodes canonical records (all of one kind, 1–100) as a Jiangsu message. `envelope.sent_at`
/// is written in Beijing time; the same inputs always give the same bytes.
pub fn encode(envelope: &Envelope, records: &[Record]) -> Result<Encoded, EncodeError> {
    Ok(Body::of(records)?.under(envelope))
}

/// A message's records, encoded: its `DATA` member's bytes, message type and losses.
pub(crate) struct Body {
    message_type: &'static str,
    data: Vec<u8>,
    losses: Vec<Loss>,
}

impl EncodedOnce for Body {
    fn of(records: &[Record]) -> Result<Body, EncodeError> {
        let (message_type, mut losses) =
            checked_batch(records, MAX_RECORDS, "Jiangsu", MESSAGE_TYPES, "message type", 1_000_000_000)?;
        let data: Vec<Value> = records.iter().map(|r| Value::Object(encode_record(r, &mut losses))).collect();
        Ok(Body { message_type, data: json::member_bytes(&Value::Array(data)), losses })
    }

    fn under(&self, envelope: &Envelope) -> Encoded {
        let head = records::Head {
            message_id: envelope.message_id.clone(),
            message_type: self.message_type.to_string(),
            sender: envelope.sender.clone(),
            receiver: envelope.receiver.clone(),
            sent_at: envelope.sent_at,
            version: VERSION.to_string(),
        };
        let head = json::member_bytes(&Value::Object(write(records::HEAD, &head)));
        Encoded { bytes: json::object_bytes(&[("HEAD", &head), ("DATA", &self.data)]), losses: self.losses.clone() }
    }
}

fn encode_record(record: &Record, losses: &mut Vec<Loss>) -> Map<String, Value> {
    match record {
        Record::Plan(p) => write(records::PLAN, p),
        Record::Sampling(s) => write(records::SAMPLING, s),
        Record::Inspection(r) => write(records::INSPECTION, r),
        Record::CaseTransfer(c) => {
            crate::model::transfer_losses(c, losses);
            write(records::TRANSFER, c)
        }
        Record::CaseFeedback(f) => write(records::FEEDBACK, f),
        Record::RiskSignal(s) => write(records::RISK, s),
        // batch_kind + MESSAGE_TYPES exclude every other kind before we get here.
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    //! The tables checked against the key lists and path table they replaced, spelled out here
    //! independently.
    use super::table::Field;
    use super::*;
    use crate::json_table::allowed_keys;

    const PLAN_KEYS: &[&str] = &["JHBH", "JHMC", "ND", "QTDQ", "CYDQ", "QD", "CPFL", "YJBZ", "JZRQ", "FBSJ"];
    const SAMPLING_KEYS: &[&str] = &[
        "CYDBH",
        "JHBH",
        "CYDQ",
        "CYDW",
        "CYRQ",
        "QD",
        "BCYDWMC",
        "BCYDWXYDM",
        "BCYDWQH",
        "BCYDWDZ",
        "SCQYMC",
        "SCQYXYDM",
        "SCQYQH",
        "SCQYDZ",
        "WDPT",
        "WDMC",
        "WDDZ",
        "DDH",
        "CPMC",
        "CPFL",
        "SB",
        "GGXH",
        "PH",
        "SCRQ",
        "CYSL",
        "JLDW",
        "BYSL",
        "YPDJ",
        "LRSJ",
    ];
    const INSPECTION_KEYS: &[&str] = &["BGBH", "CYDBH", "JYJG", "CMA", "QFRQ", "JYJL", "XM"];
    const ITEM_KEYS: &[&str] = &["XMMC", "YJBZ", "BZYQ", "SCJG", "DW", "DXPD", "BHGCD"];
    const TRANSFER_KEYS: &[&str] = &["AJBH", "YSDQ", "CBDQ", "CYDBH", "BGBH", "YSSJ", "QX"];
    const FEEDBACK_KEYS: &[&str] = &["AJBH", "FKBH", "FKDQ", "FKSJ", "DZ", "SM", "CFJE"];
    const RISK_KEYS: &[&str] = &[
        "FXBH", "BB", "ZT", "SBDQ", "FXRQ", "LY", "CPMC", "CPFL", "SB", "GGXH", "PH", "SCRQ", "WHLX", "FXDJ", "FXMS",
        "QGX", "GLCYD", "JYCS",
    ];

    /// Canonical field paths → Jiangsu keys, for the domain rules' violations.
    const PATHS: &[(&str, &str)] = &[
        // plan
        ("plan_id", "JHBH"),
        ("title", "JHMC"),
        ("year", "ND"),
        ("lead_region", "QTDQ"),
        ("participants", "CYDQ"),
        ("participants[]", "CYDQ[{}]"),
        ("participants[].region", "CYDQ[{}].DQ"),
        ("participants[].quota", "CYDQ[{}].PE"),
        ("categories", "CPFL"),
        ("categories[]", "CPFL[{}]"),
        ("standards", "YJBZ"),
        ("standards[]", "YJBZ[{}]"),
        ("sampling_deadline", "JZRQ"),
        ("published_at", "FBSJ"),
        // sampling
        ("sample_id", "CYDBH"),
        ("sampling_region", "CYDQ"),
        ("sampling_org", "CYDW"),
        ("sampled_on", "CYRQ"),
        ("channel", "QD"),
        ("seller", "BCYDWMC"),
        ("seller.name", "BCYDWMC"),
        ("seller.uscc", "BCYDWXYDM"),
        ("seller.region", "BCYDWQH"),
        ("seller.address", "BCYDWDZ"),
        ("producer", "SCQYMC"),
        ("producer.name", "SCQYMC"),
        ("producer.uscc", "SCQYXYDM"),
        ("producer.region", "SCQYQH"),
        ("producer.address", "SCQYDZ"),
        ("shop", "WDPT"),
        ("shop.platform", "WDPT"),
        ("shop.shop_name", "WDMC"),
        ("shop.shop_url", "WDDZ"),
        ("shop.order_no", "DDH"),
        ("product", "CPMC"),
        ("product.name", "CPMC"),
        ("product.category", "CPFL"),
        ("product.brand", "SB"),
        ("product.model", "GGXH"),
        ("product.batch", "PH"),
        ("product.production_date", "SCRQ"),
        ("quantity", "CYSL"),
        ("unit", "JLDW"),
        ("reserve_quantity", "BYSL"),
        ("unit_price", "YPDJ"),
        ("recorded_at", "LRSJ"),
        // inspection
        ("report_no", "BGBH"),
        ("lab_name", "JYJG"),
        ("lab_cma", "CMA"),
        ("issued_on", "QFRQ"),
        ("conclusion", "JYJL"),
        ("items", "XM"),
        ("items[]", "XM[{}]"),
        ("items[].name", "XM[{}].XMMC"),
        ("items[].standard", "XM[{}].YJBZ"),
        ("items[].requirement", "XM[{}].BZYQ"),
        ("items[].measured", "XM[{}].SCJG"),
        ("items[].unit", "XM[{}].DW"),
        ("items[].verdict", "XM[{}].DXPD"),
        ("items[].severity", "XM[{}].BHGCD"),
        // case transfer
        ("case_id", "AJBH"),
        ("origin_region", "YSDQ"),
        ("responsible_region", "CBDQ"),
        ("opened_at", "YSSJ"),
        ("due_on", "QX"),
        // case feedback
        ("event", "FKBH"),
        ("event.event_id", "FKBH"),
        ("event.by_region", "FKDQ"),
        ("event.at", "FKSJ"),
        ("event.action", "DZ"),
        ("event.note", "SM"),
        ("event.amount", "CFJE"),
        // risk signal
        ("signal_id", "FXBH"),
        ("revision", "BB"),
        ("state", "ZT"),
        ("reporting_region", "SBDQ"),
        ("observed_on", "FXRQ"),
        ("source", "LY"),
        ("hazards", "WHLX"),
        ("hazards[]", "WHLX[{}]"),
        ("level", "FXDJ"),
        ("summary", "FXMS"),
        ("nationwide", "QGX"),
        ("related_samples", "GLCYD"),
        ("related_samples[]", "GLCYD[{}]"),
        ("recommended_measures", "JYCS"),
    ];

    fn keys<R>(table: &'static [Field<R>]) -> Vec<&'static str> {
        allowed_keys(table).collect()
    }

    #[test]
    fn the_tables_have_the_interface_keys_in_order() {
        assert_eq!(keys(records::PLAN), PLAN_KEYS);
        assert_eq!(keys(records::SAMPLING), SAMPLING_KEYS);
        assert_eq!(keys(records::INSPECTION), INSPECTION_KEYS);
        assert_eq!(keys(records::ITEM), ITEM_KEYS);
        assert_eq!(keys(records::PARTICIPANT), ["DQ", "PE"]);
        assert_eq!(keys(records::TRANSFER), TRANSFER_KEYS);
        assert_eq!(keys(records::FEEDBACK), FEEDBACK_KEYS);
        assert_eq!(keys(records::RISK), RISK_KEYS);
    }

    #[test]
    fn every_canonical_path_maps_as_before() {
        let kinds: Vec<RecordKind> = MESSAGE_TYPES.iter().map(|(_, k)| *k).collect();
        for (canonical, template) in PATHS {
            let found: Vec<String> = kinds.iter().filter_map(|k| template_of(*k, canonical)).collect();
            assert!(!found.is_empty(), "{canonical} maps nowhere");
            assert!(found.iter().all(|t| t == template), "{canonical}: {found:?}, expected {template}");
        }
        let path = |kind, canonical| map_path_by(|p| template_of(kind, p), canonical, 0);
        assert_eq!(path(RecordKind::Plan, "participants[2].quota").as_deref(), Some("CYDQ[2].PE"));
        assert_eq!(path(RecordKind::Inspection, "items[1].severity").as_deref(), Some("XM[1].BHGCD"));
        assert_eq!(path(RecordKind::Sampling, "seller").as_deref(), Some("BCYDWMC"));
        assert_eq!(path(RecordKind::RiskSignal, "hazards[0]").as_deref(), Some("WHLX[0]"));
        assert_eq!(path(RecordKind::CaseFeedback, "event").as_deref(), Some("FKBH"));
    }
}
