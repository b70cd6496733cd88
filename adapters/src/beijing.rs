//! Beijing online-sales interface (北京网络销售联动抽查接口 v1): JSON in UTF-8, camelCase keys, one
//! record per message, JSON numbers, epoch-millisecond times, money in fen. Online channel only.
//! See `docs/partners/beijing.md`.

//!
//! Each record is a field table (`records.rs`: key, canonical path, how it is read and written,
//! once per key) that the allowed-keys check, decoding, encoding and the problem paths all use;
//! `table.rs` is how Beijing spells each value for the engine, `crate::json_table`.

mod records;
mod table;

use crate::envelope::EnvelopePaths;
use crate::json::{self, Obj};
use crate::model::*;
use crate::paths::map_path_by;
use crate::problems::Ctx;
use serde_json::{Map, Value};
use table::{timestamp_to_epoch, Reader};
use yrdx_proto::v1::*;

/// Beijing's envelope id.
pub const PARTNER_ID: &str = "110000";

const MESSAGE_TYPES: &[(&str, RecordKind)] = &[
    ("PLAN", RecordKind::Plan),
    ("SAMPLE", RecordKind::Sampling),
    ("REPORT", RecordKind::Inspection),
    ("CASE_TRANSFER", RecordKind::CaseTransfer),
    ("CASE_FEEDBACK", RecordKind::CaseFeedback),
];
const ACTION: &[(i64, CaseAction)] = &[
    (1, CaseAction::Accept),
    (2, CaseAction::Return),
    (3, CaseAction::Notify),
    (4, CaseAction::Objection),
    (5, CaseAction::RecheckPass),
    (6, CaseAction::RecheckFail),
    (7, CaseAction::RectifyOrder),
    (8, CaseAction::RectifyVerified),
    (9, CaseAction::Penalty),
    (10, CaseAction::Close),
];

/// Decodes a Beijing message (exactly one record) with every problem in Beijing's paths.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Document, DecodeError> {
    let root = json::parse(bytes, limits)?;
    let mut cx = Ctx::new(limits);
    let Some(top) = Obj::of(&root, "", &mut cx) else {
        return Err(DecodeError::Invalid(cx.problems));
    };
    top.deny_unknown(&["messageId", "type", "from", "to", "timestamp", "payload"], &mut cx);
    let mut r = Reader::new(top, &mut cx, &table::SPELLING);
    let message_id = r.s("messageId");
    let type_text = r.s("type");
    let kind = MESSAGE_TYPES.iter().find(|(t, _)| *t == type_text).map(|(_, k)| *k);
    if kind.is_none() {
        r.cx.error(
            "type",
            format!("'{type_text}' is not a message type (PLAN, SAMPLE, REPORT, CASE_TRANSFER, CASE_FEEDBACK)"),
        );
    }
    let sender = r.s("from");
    let receiver = r.s("to");
    let sent_at = r.epoch("timestamp");
    let payload = r.object("payload");
    if payload.is_none() && r.value("payload").is_none() {
        r.cx.error("payload", "required (one record)");
    }
    let envelope = Envelope { message_id, sender, receiver, sent_at };
    let paths = EnvelopePaths {
        message_id: "messageId",
        sender: "from",
        receiver: "to",
        sent_at: "timestamp",
        sent_at_form: "epoch milliseconds",
    };
    crate::envelope::check(&envelope, &paths, r.cx);
    let mut records = Vec::new();
    if let (Some(kind), Some(o)) = (kind, payload) {
        let start = cx.problems.len();
        let record = decode_record(kind, o, &mut cx);
        cx.record_id = Some(record.id());
        cx.check_rules(start, &record, |canonical| {
            let key =
                map_path_by(|p| records::template_of(kind, p), canonical, 0).unwrap_or_else(|| canonical.to_string());
            format!("payload.{key}")
        });
        records.push(record);
    }
    if cx.problems.is_empty() {
        Ok(Document { envelope, records })
    } else {
        Err(DecodeError::Invalid(cx.problems))
    }
}

fn decode_record(kind: RecordKind, o: Obj<'_>, cx: &mut Ctx) -> Record {
    if let Some(Value::String(id)) = o.get(records::id_key(kind)) {
        cx.record_id = Some(id.trim().to_string());
    }
    records::decode(kind, &mut Reader::new(o, cx, &table::SPELLING))
}

// ---------------------------------------------------------------------------------------------
// Encoding

fn put(m: &mut Map<String, Value>, key: &str, v: impl Into<Value>) {
    m.insert(key.into(), v.into());
}

fn unsupported(kind: RecordKind, id: String, reason: &str) -> EncodeError {
    EncodeError::Unsupported { partner: "Beijing", kind, record_id: id, reason: reason.into() }
}

/// Whether Beijing can take this record at all (online-sales records only; no risk signals or
/// responsibility reports).
pub fn refusal(record: &Record) -> Option<EncodeError> {
    let id = record.id();
    match record {
        Record::Plan(p) if p.channel == PlanChannel::Offline as i32 => {
            Some(unsupported(RecordKind::Plan, id, "Beijing takes only plans whose channel is ONLINE or BOTH"))
        }
        Record::Sampling(s) if s.channel != SalesChannel::Online as i32 => {
            Some(unsupported(RecordKind::Sampling, id, "Beijing takes only online sampling records (channel OFFLINE)"))
        }
        Record::Plan(_)
        | Record::Sampling(_)
        | Record::Inspection(_)
        | Record::CaseTransfer(_)
        | Record::CaseFeedback(_) => None,
        other => Some(unsupported(other.kind(), id, "the Beijing interface has no message type for this record")),
    }
}

/// Encodes exactly one canonical record as a Beijing message.
pub fn encode(envelope: &Envelope, records: &[Record]) -> Result<Encoded, EncodeError> {
    let kind = batch_kind(records, 1, "Beijing")?;
    let record = &records[0];
    if let Some(e) = refusal(record) {
        return Err(e);
    }
    check_before_encode(records)?;
    let type_name = MESSAGE_TYPES.iter().find(|(_, k)| *k == kind).map(|(t, _)| *t).unwrap_or("");
    let mut losses = Vec::new();
    precision_losses(records, 1_000_000, &mut losses);
    let id = record.id();
    match record {
        Record::Plan(p) if p.channel == PlanChannel::Both as i32 => losses.push(Loss {
            record_id: id.clone(),
            field: "channel".into(),
            detail: "BOTH sent to Beijing as ONLINE (Beijing takes online sales only)".into(),
        }),
        Record::Inspection(r) => {
            for (i, it) in r.items.iter().enumerate().filter(|(_, it)| it.verdict != Verdict::Fail as i32) {
                losses.push(Loss {
                    record_id: id.clone(),
                    field: format!("items[{i}]"),
                    detail: format!("passing item '{}' has no place in a Beijing report", it.name),
                });
            }
        }
        Record::CaseTransfer(c) => crate::model::transfer_losses(c, &mut losses),
        _ => {}
    }
    let payload = records::encode(record);
    let mut root = Map::new();
    put(&mut root, "messageId", envelope.message_id.clone());
    put(&mut root, "type", type_name);
    put(&mut root, "from", envelope.sender.clone());
    put(&mut root, "to", envelope.receiver.clone());
    put(
        &mut root,
        "timestamp",
        envelope.sent_at.as_ref().map(|t| Value::from(timestamp_to_epoch(t))).unwrap_or(Value::Null),
    );
    put(&mut root, "payload", Value::Object(payload));
    Ok(Encoded { bytes: json::to_bytes(&Value::Object(root)), losses })
}

#[cfg(test)]
mod tests {
    //! The tables checked against the key lists and the path table they replaced, spelled out here
    //! independently.
    use super::records::*;
    use super::table::Field;
    use super::*;
    use crate::json_table::allowed_keys;

    const PATHS: &[(&str, &str)] = &[
        ("plan_id", "planCode"),
        ("title", "title"),
        ("year", "year"),
        ("lead_region", "leadRegion"),
        ("participants", "participants"),
        ("participants[]", "participants[{}]"),
        ("participants[].region", "participants[{}].regionCode"),
        ("participants[].quota", "participants[{}].quota"),
        ("channel", "channel"),
        ("categories", "categoryCodes"),
        ("categories[]", "categoryCodes[{}]"),
        ("standards", "standards"),
        ("standards[]", "standards[{}]"),
        ("sampling_deadline", "deadline"),
        ("published_at", "publishedAt"),
        ("sample_id", "sampleNo"),
        ("sampling_region", "regionCode"),
        ("sampling_org", "samplingAgency"),
        ("sampled_on", "sampleDate"),
        ("seller", "seller"),
        ("seller.name", "seller.name"),
        ("seller.uscc", "seller.creditCode"),
        ("seller.region", "seller.regionCode"),
        ("seller.address", "seller.address"),
        ("producer", "manufacturer"),
        ("producer.name", "manufacturer.name"),
        ("producer.uscc", "manufacturer.creditCode"),
        ("producer.region", "manufacturer.regionCode"),
        ("producer.address", "manufacturer.address"),
        ("shop", "shop"),
        ("shop.platform", "shop.platform"),
        ("shop.shop_name", "shop.name"),
        ("shop.shop_url", "shop.url"),
        ("shop.order_no", "shop.orderNo"),
        ("product", "product"),
        ("product.name", "product.name"),
        ("product.category", "product.categoryCode"),
        ("product.brand", "product.brand"),
        ("product.model", "product.model"),
        ("product.batch", "product.batchNo"),
        ("product.production_date", "product.productionDate"),
        ("quantity", "quantity"),
        ("unit", "unit"),
        ("reserve_quantity", "reserveQuantity"),
        ("unit_price", "unitPriceFen"),
        ("recorded_at", "createdAt"),
        ("report_no", "reportNo"),
        ("lab_name", "lab.name"),
        ("lab_cma", "lab.cma"),
        ("issued_on", "issueDate"),
        ("conclusion", "conclusion"),
        ("items", "unqualifiedItems"),
        ("items[]", "unqualifiedItems[{}]"),
        ("items[].name", "unqualifiedItems[{}].name"),
        ("items[].standard", "unqualifiedItems[{}].standard"),
        ("items[].requirement", "unqualifiedItems[{}].requirement"),
        ("items[].measured", "unqualifiedItems[{}].measured"),
        ("items[].unit", "unqualifiedItems[{}].unit"),
        ("items[].severity", "unqualifiedItems[{}].severity"),
        ("case_id", "caseNo"),
        ("origin_region", "originRegion"),
        ("responsible_region", "responsibleRegion"),
        ("opened_at", "openedAt"),
        ("due_on", "dueDate"),
        ("event", "eventNo"),
        ("event.event_id", "eventNo"),
        ("event.by_region", "byRegion"),
        ("event.at", "at"),
        ("event.action", "action"),
        ("event.note", "note"),
        ("event.amount", "amountFen"),
    ];

    fn keys<R>(table: &'static [Field<R>]) -> Vec<&'static str> {
        allowed_keys(table).collect()
    }

    #[test]
    fn the_tables_have_the_interface_keys_in_order() {
        let plan = ["planCode", "title", "year", "leadRegion", "participants", "channel", "categoryCodes"];
        assert_eq!(keys(PLAN), [&plan[..], &["standards", "deadline", "publishedAt"]].concat());
        assert_eq!(
            keys(SAMPLE),
            [
                "sampleNo",
                "taskCode",
                "regionCode",
                "samplingAgency",
                "sampleDate",
                "seller",
                "manufacturer",
                "shop",
                "product",
                "quantity",
                "unit",
                "reserveQuantity",
                "unitPriceFen",
                "createdAt"
            ]
        );
        assert_eq!(keys(REPORT), ["reportNo", "sampleNo", "lab", "issueDate", "conclusion", "unqualifiedItems"]);
        assert_eq!(
            keys(TRANSFER),
            ["caseNo", "originRegion", "responsibleRegion", "sampleNo", "reportNo", "openedAt", "dueDate"]
        );
        assert_eq!(keys(FEEDBACK), ["caseNo", "eventNo", "byRegion", "at", "action", "note", "amountFen"]);
        assert_eq!(keys(PARTY), ["name", "creditCode", "regionCode", "address"]);
        assert_eq!(keys(SHOP), ["platform", "name", "url", "orderNo"]);
        assert_eq!(keys(PRODUCT), ["name", "categoryCode", "brand", "model", "batchNo", "productionDate"]);
        assert_eq!(keys(ITEM), ["name", "standard", "requirement", "measured", "unit", "severity"]);
        assert_eq!(keys(PARTICIPANT), ["regionCode", "quota"]);
    }

    #[test]
    fn every_canonical_path_maps_as_before() {
        let kinds: Vec<RecordKind> = MESSAGE_TYPES.iter().map(|(_, k)| *k).collect();
        for (canonical, template) in PATHS {
            let found: Vec<String> = kinds.iter().filter_map(|k| template_of(*k, canonical)).collect();
            assert!(found.iter().any(|t| t == template), "{canonical}: {found:?}, expected {template}");
        }
        let path = |kind, canonical| map_path_by(|p| template_of(kind, p), canonical, 0);
        // Formerly a special case: a sample's plan is its taskCode.
        assert_eq!(path(RecordKind::Sampling, "plan_id").as_deref(), Some("taskCode"));
        assert_eq!(path(RecordKind::Plan, "plan_id").as_deref(), Some("planCode"));
        assert_eq!(path(RecordKind::Inspection, "items[1].verdict").as_deref(), Some("unqualifiedItems[1]"));
        assert_eq!(path(RecordKind::Plan, "categories[2]").as_deref(), Some("categoryCodes[2]"));
        assert_eq!(path(RecordKind::Plan, "standards[0]").as_deref(), Some("standards[0]"));
        assert_eq!(path(RecordKind::Sampling, "seller.uscc").as_deref(), Some("seller.creditCode"));
        assert_eq!(path(RecordKind::Sampling, "producer").as_deref(), Some("manufacturer"));
    }
}
