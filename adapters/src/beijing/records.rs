//! Beijing's records as field tables (interface v1, `docs/partners/beijing.md`): each key once,
//! in the interface's (and the encoder's) order, with its canonical path and how it is read and
//! written. What ties fields together, or has no key, is set after the table is read.

use super::table::{nested, read, template, write, Field, Io, Reader};
use super::ACTION;
use crate::fields::acc;
use crate::fields::key_of;
use crate::json_table::read_new;
use crate::model::{Record, RecordKind};
use serde_json::Value;
use yrdx_proto::codes::{category_code_of, category_from_code};
use yrdx_proto::v1::*;

/// `PLAN` — a plan (online or both channels only).
pub(super) const PLAN: &[Field<SpotCheckPlan>] = &[
    Field { key: "planCode", path: "plan_id", io: Io::Text(acc!(plan_id)) },
    Field { key: "title", path: "title", io: Io::Text(acc!(title)) },
    Field { key: "year", path: "year", io: Io::Int(acc!(year)) },
    Field { key: "leadRegion", path: "lead_region", io: Io::Text(acc!(lead_region)) },
    Field {
        key: "participants",
        path: "participants",
        io: Io::Own {
            read: |r, key, p| p.participants = r.objects(key, PARTICIPANT),
            write: |p| {
                Some(Value::Array(p.participants.iter().map(|x| Value::Object(write(PARTICIPANT, x))).collect()))
            },
            paths: Some(|key, pattern| nested(key, "participants", true, PARTICIPANT, pattern)),
        },
    },
    Field {
        key: "channel",
        path: "channel",
        io: Io::Own {
            read: |r, key, p| {
                p.channel = match r.s(key).as_str() {
                    "ONLINE" => PlanChannel::Online as i32,
                    "" => 0,
                    other => {
                        r.cx.error(r.o.at(key), format!("'{other}' is not a channel Beijing takes (only \"ONLINE\")"));
                        0
                    }
                }
            },
            // BOTH goes as ONLINE, reported as a loss by the encoder; OFFLINE is refused before.
            write: |_| Some(Value::String("ONLINE".into())),
            paths: None,
        },
    },
    Field {
        key: "categoryCodes",
        path: "categories",
        io: Io::Own {
            read: |r, key, p| {
                p.categories = r.each_string(key, |c, path, cx| match category_from_code(c) {
                    Some(cat) => cat as i32,
                    None => {
                        cx.error(path, format!("'{c}' is not a product category code of the catalogue"));
                        0
                    }
                });
            },
            write: |p| Some(Value::Array(p.categories.iter().map(|c| Value::String(category_code_of(*c))).collect())),
            paths: Some(|key, pattern| (pattern == "categories[]").then(|| format!("{key}[{{}}]"))),
        },
    },
    Field { key: "standards", path: "standards", io: Io::Strings(acc!(standards)) },
    Field { key: "deadline", path: "sampling_deadline", io: Io::Date(acc!(sampling_deadline)) },
    Field { key: "publishedAt", path: "published_at", io: Io::Epoch(acc!(published_at)) },
];

/// One region of a plan.
pub(super) const PARTICIPANT: &[Field<PlanParticipant>] = &[
    Field { key: "regionCode", path: "region", io: Io::Text(acc!(region)) },
    Field { key: "quota", path: "quota", io: Io::Int(acc!(quota)) },
];

/// A party (`seller`, `manufacturer`).
pub(super) const PARTY: &[Field<Party>] = &[
    Field { key: "name", path: "name", io: Io::Text(acc!(name)) },
    Field { key: "creditCode", path: "uscc", io: Io::Text(acc!(uscc)) },
    Field { key: "regionCode", path: "region", io: Io::Text(acc!(region)) },
    Field { key: "address", path: "address", io: Io::OptText(acc!(address)) },
];

/// The online shop of a sample.
pub(super) const SHOP: &[Field<OnlineShop>] = &[
    Field { key: "platform", path: "platform", io: Io::Text(acc!(platform)) },
    Field { key: "name", path: "shop_name", io: Io::Text(acc!(shop_name)) },
    Field { key: "url", path: "shop_url", io: Io::OptText(acc!(shop_url)) },
    Field { key: "orderNo", path: "order_no", io: Io::OptText(acc!(order_no)) },
];

/// The product of a sample.
pub(super) const PRODUCT: &[Field<Product>] = &[
    Field { key: "name", path: "name", io: Io::Text(acc!(name)) },
    Field { key: "categoryCode", path: "category", io: Io::Category(acc!(category)) },
    Field { key: "brand", path: "brand", io: Io::OptText(acc!(brand)) },
    Field { key: "model", path: "model", io: Io::OptText(acc!(model)) },
    Field { key: "batchNo", path: "batch", io: Io::OptText(acc!(batch)) },
    Field { key: "productionDate", path: "production_date", io: Io::OptDate(acc!(production_date)) },
];

/// `SAMPLE` — a sampling record (online: there is no channel key).
pub(super) const SAMPLE: &[Field<SamplingRecord>] = &[
    Field { key: "sampleNo", path: "sample_id", io: Io::Text(acc!(sample_id)) },
    Field { key: "taskCode", path: "plan_id", io: Io::Text(acc!(plan_id)) },
    Field { key: "regionCode", path: "sampling_region", io: Io::Text(acc!(sampling_region)) },
    Field { key: "samplingAgency", path: "sampling_org", io: Io::Text(acc!(sampling_org)) },
    Field { key: "sampleDate", path: "sampled_on", io: Io::Date(acc!(sampled_on)) },
    Field {
        key: "seller",
        path: "seller",
        io: Io::Own {
            read: |r, key, s| s.seller = r.part(key, PARTY),
            write: |s| Some(Value::Object(write(PARTY, s.seller.as_ref().unwrap_or(&Party::default())))),
            paths: Some(|key, pattern| nested(key, "seller", false, PARTY, pattern)),
        },
    },
    Field {
        key: "manufacturer",
        path: "producer",
        io: Io::Own {
            read: |r, key, s| s.producer = r.part(key, PARTY),
            write: |s| s.producer.as_ref().map(|p| Value::Object(write(PARTY, p))),
            paths: Some(|key, pattern| nested(key, "producer", false, PARTY, pattern)),
        },
    },
    Field {
        key: "shop",
        path: "shop",
        io: Io::Own {
            read: |r, key, s| s.shop = r.part(key, SHOP),
            write: |s| Some(Value::Object(write(SHOP, s.shop.as_ref().unwrap_or(&OnlineShop::default())))),
            paths: Some(|key, pattern| nested(key, "shop", false, SHOP, pattern)),
        },
    },
    Field {
        key: "product",
        path: "product",
        io: Io::Own {
            read: |r, key, s| s.product = r.part(key, PRODUCT),
            write: |s| Some(Value::Object(write(PRODUCT, s.product.as_ref().unwrap_or(&Product::default())))),
            paths: Some(|key, pattern| nested(key, "product", false, PRODUCT, pattern)),
        },
    },
    Field { key: "quantity", path: "quantity", io: Io::Int(acc!(quantity)) },
    Field { key: "unit", path: "unit", io: Io::Text(acc!(unit)) },
    Field { key: "reserveQuantity", path: "reserve_quantity", io: Io::Int(acc!(reserve_quantity)) },
    Field { key: "unitPriceFen", path: "unit_price", io: Io::Fen(acc!(unit_price)) },
    Field { key: "createdAt", path: "recorded_at", io: Io::Epoch(acc!(recorded_at)) },
];

/// `REPORT` — an inspection report with its failing items only.
pub(super) const REPORT: &[Field<InspectionResult>] = &[
    Field { key: "reportNo", path: "report_no", io: Io::Text(acc!(report_no)) },
    Field { key: "sampleNo", path: "sample_id", io: Io::Text(acc!(sample_id)) },
    Field {
        key: "lab",
        path: "",
        io: Io::Own {
            read: |r, key, x| match r.object(key) {
                Some(o) => read(LAB, &mut r.inner(o), x),
                None => r.cx.error(r.o.at(key), "required ({\"name\", \"cma\"})"),
            },
            write: |x| Some(Value::Object(write(LAB, x))),
            paths: Some(|key, pattern| template(LAB, pattern).map(|t| format!("{key}.{t}"))),
        },
    },
    Field { key: "issueDate", path: "issued_on", io: Io::Date(acc!(issued_on)) },
    Field {
        key: "conclusion",
        path: "conclusion",
        io: Io::Own {
            read: |r, key, x| {
                x.conclusion = match r.number(key, true) {
                    Some(0) => Conclusion::Conforming as i32,
                    Some(1) => Conclusion::Nonconforming as i32,
                    Some(other) => {
                        r.cx.error(r.o.at(key), format!("{other} is not 0 (conforming) or 1 (nonconforming)"));
                        0
                    }
                    None => 0,
                }
            },
            write: |x| Some(Value::from(if x.conclusion == Conclusion::Nonconforming as i32 { 1 } else { 0 })),
            paths: None,
        },
    },
    Field {
        key: "unqualifiedItems",
        path: "items",
        io: Io::Own {
            read: |r, key, x| {
                x.items = r.objects(key, ITEM);
                for it in &mut x.items {
                    it.verdict = Verdict::Fail as i32;
                }
            },
            // Passing items have no place: the encoder reports each as a loss.
            write: |x| {
                Some(Value::Array(
                    x.items
                        .iter()
                        .filter(|it| it.verdict == Verdict::Fail as i32)
                        .map(|it| Value::Object(write(ITEM, it)))
                        .collect(),
                ))
            },
            paths: Some(|key, pattern| nested(key, "items", true, ITEM, pattern)),
        },
    },
];

/// The laboratory of a report: the report's own fields, in an object.
const LAB: &[Field<InspectionResult>] = &[
    Field { key: "name", path: "lab_name", io: Io::Text(acc!(lab_name)) },
    Field { key: "cma", path: "lab_cma", io: Io::Text(acc!(lab_cma)) },
];

/// One failing item of a report.
pub(super) const ITEM: &[Field<InspectionItem>] = &[
    Field { key: "name", path: "name", io: Io::Text(acc!(name)) },
    Field { key: "standard", path: "standard", io: Io::Text(acc!(standard)) },
    Field { key: "requirement", path: "requirement", io: Io::OptText(acc!(requirement)) },
    Field { key: "measured", path: "measured", io: Io::OptText(acc!(measured)) },
    Field { key: "unit", path: "unit", io: Io::OptText(acc!(unit)) },
    Field {
        key: "severity",
        path: "severity",
        io: Io::Own {
            read: |r, key, it| {
                it.severity = match r.number(key, true) {
                    Some(1) => Severity::Serious as i32,
                    Some(2) => Severity::General as i32,
                    Some(other) => {
                        r.cx.error(r.o.at(key), format!("{other} is not 1 (serious) or 2 (general)"));
                        0
                    }
                    None => 0,
                }
            },
            write: |it| Some(Value::from(if it.severity == Severity::Serious as i32 { 1 } else { 2 })),
            paths: None,
        },
    },
];

/// `CASE_TRANSFER` — a disposal case transferred.
pub(super) const TRANSFER: &[Field<DisposalCase>] = &[
    Field { key: "caseNo", path: "case_id", io: Io::Text(acc!(case_id)) },
    Field { key: "originRegion", path: "origin_region", io: Io::Text(acc!(origin_region)) },
    Field { key: "responsibleRegion", path: "responsible_region", io: Io::Text(acc!(responsible_region)) },
    Field { key: "sampleNo", path: "sample_id", io: Io::Text(acc!(sample_id)) },
    Field { key: "reportNo", path: "report_no", io: Io::Text(acc!(report_no)) },
    Field { key: "openedAt", path: "opened_at", io: Io::Epoch(acc!(opened_at)) },
    Field { key: "dueDate", path: "due_on", io: Io::Date(acc!(due_on)) },
];

/// `CASE_FEEDBACK` — one event of a case.
pub(super) const FEEDBACK: &[Field<CaseFeedback>] = &[
    Field { key: "caseNo", path: "case_id", io: Io::Text(acc!(case_id)) },
    Field { key: "eventNo", path: "event.event_id", io: Io::Text(acc!(event.event_id)) },
    Field { key: "byRegion", path: "event.by_region", io: Io::Text(acc!(event.by_region)) },
    Field { key: "at", path: "event.at", io: Io::Epoch(acc!(event.at)) },
    Field {
        key: "action",
        path: "event.action",
        io: Io::Own {
            read: |r, key, f| {
                let action = match r.number(key, true) {
                    Some(n) => match ACTION.iter().find(|(c, _)| *c == n) {
                        Some((_, a)) => *a as i32,
                        None => {
                            r.cx.error(r.o.at(key), format!("{n} is not an action code (1–10)"));
                            0
                        }
                    },
                    None => 0,
                };
                f.event.get_or_insert_with(Default::default).action = action;
            },
            write: |f| {
                let action = f.event.as_ref().map_or(0, |e| e.action);
                Some(Value::from(ACTION.iter().find(|(_, a)| *a as i32 == action).map(|(c, _)| *c).unwrap_or(0)))
            },
            paths: None,
        },
    },
    Field { key: "note", path: "event.note", io: Io::OptText(acc!(event.note)) },
    Field { key: "amountFen", path: "event.amount", io: Io::OptFen(acc!(event.amount)) },
];

/// The key holding a record's own id.
pub(super) fn id_key(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Plan => key_of(PLAN, "plan_id"),
        RecordKind::Sampling => key_of(SAMPLE, "sample_id"),
        RecordKind::Inspection => key_of(REPORT, "report_no"),
        RecordKind::CaseTransfer => key_of(TRANSFER, "case_id"),
        _ => key_of(FEEDBACK, "event.event_id"),
    }
}

/// The Beijing template of a canonical pattern in a record of `kind`.
pub(super) fn template_of(kind: RecordKind, pattern: &str) -> Option<String> {
    match kind {
        RecordKind::Plan => template(PLAN, pattern),
        RecordKind::Sampling => template(SAMPLE, pattern),
        RecordKind::Inspection => template(REPORT, pattern),
        RecordKind::CaseTransfer => template(TRANSFER, pattern),
        _ => template(FEEDBACK, pattern),
    }
}

/// Reads one record of a kind from its payload: the table, then what has no key of its own.
pub(super) fn decode(kind: RecordKind, r: &mut Reader<'_, '_>) -> Record {
    match kind {
        RecordKind::Plan => Record::Plan(read_new(PLAN, r)),
        RecordKind::Sampling => {
            let mut s = read_new(SAMPLE, r);
            s.channel = SalesChannel::Online as i32;
            Record::Sampling(s)
        }
        RecordKind::Inspection => Record::Inspection(read_new(REPORT, r)),
        RecordKind::CaseTransfer => {
            let mut c = read_new(TRANSFER, r);
            c.status = CaseStatus::Transferred as i32;
            if c.due_on.is_none() {
                r.cx.error(r.o.at(key_of(TRANSFER, "due_on")), "required (yyyy-MM-dd)");
            }
            Record::CaseTransfer(c)
        }
        _ => Record::CaseFeedback(read_new(FEEDBACK, r)),
    }
}

/// Writes one record's payload (the encoder has refused what Beijing cannot take).
pub(super) fn encode(record: &Record) -> serde_json::Map<String, Value> {
    match record {
        Record::Plan(p) => write(PLAN, p),
        Record::Sampling(s) => write(SAMPLE, s),
        Record::Inspection(x) => write(REPORT, x),
        Record::CaseTransfer(c) => write(TRANSFER, c),
        Record::CaseFeedback(f) => write(FEEDBACK, f),
        _ => serde_json::Map::new(),
    }
}
