//! Jiangsu's records as field tables (interface v2.1, `docs/partners/jiangsu.md`): each key
//! once, in the interface's (and the encoder's) order, with its canonical path and how it is
//! read and written. The checks that tie two fields together run after the table is read
//! (`finish_*`).

use super::codes::*;
use super::table::{template, write, Field, Io, Reader};
use crate::fields::acc;
use crate::fields::key_of;
use crate::json_table::read_new;
use crate::problems::{category_value, code_of, lookup};
use serde_json::Value;
use yrdx_proto::codes::category_code_of;
use yrdx_proto::v1::*;

/// `HEAD` as read and written: the envelope's fields, the message type and the version.
#[derive(Default)]
pub(super) struct Head {
    pub message_id: String,
    pub message_type: String,
    pub sender: String,
    pub receiver: String,
    pub sent_at: Option<yrdx_proto::Timestamp>,
    pub version: String,
}

/// `HEAD` — the envelope; the message type and the version are checked as they are read.
pub(super) const HEAD: &[Field<Head>] = &[
    Field { key: "XXBH", path: "message_id", io: Io::Text(acc!(message_id)) },
    Field { key: "XXLX", path: "message_type", io: Io::Checked(acc!(message_type), super::message_type_problem) },
    Field { key: "FSF", path: "sender", io: Io::Text(acc!(sender)) },
    Field { key: "JSF", path: "receiver", io: Io::Text(acc!(receiver)) },
    Field { key: "FSSJ", path: "sent_at", io: Io::Time(acc!(sent_at)) },
    Field { key: "BBH", path: "version", io: Io::Checked(acc!(version), super::version_problem) },
];

/// `JH` — a joint spot-check plan.
pub(super) const PLAN: &[Field<SpotCheckPlan>] = &[
    Field { key: "JHBH", path: "plan_id", io: Io::Text(acc!(plan_id)) },
    Field { key: "JHMC", path: "title", io: Io::Text(acc!(title)) },
    Field { key: "ND", path: "year", io: Io::Int(acc!(year)) },
    Field { key: "QTDQ", path: "lead_region", io: Io::Text(acc!(lead_region)) },
    Field {
        key: "CYDQ",
        path: "participants",
        io: Io::Own {
            read: |r, key, p| p.participants = r.objects(key, PARTICIPANT),
            write: |p| Value::Array(p.participants.iter().map(|x| Value::Object(write(PARTICIPANT, x))).collect()),
            items: Some(|pattern| template(PARTICIPANT, pattern)),
        },
    },
    Field { key: "QD", path: "channel", io: Io::Code(CHANNEL_PLAN, acc!(channel)) },
    Field {
        key: "CPFL",
        path: "categories",
        io: Io::Own {
            read: |r, key, p| p.categories = r.each_string(key, category_value),
            write: |p| Value::Array(p.categories.iter().map(|c| Value::String(category_code_of(*c))).collect()),
            items: None,
        },
    },
    Field { key: "YJBZ", path: "standards", io: Io::Strings(acc!(standards)) },
    Field { key: "JZRQ", path: "sampling_deadline", io: Io::Date(acc!(sampling_deadline)) },
    Field { key: "FBSJ", path: "published_at", io: Io::Time(acc!(published_at)) },
];

/// One region of a plan (`CYDQ[i]`).
pub(super) const PARTICIPANT: &[Field<PlanParticipant>] = &[
    Field { key: "DQ", path: "region", io: Io::Text(acc!(region)) },
    Field { key: "PE", path: "quota", io: Io::Int(acc!(quota)) },
];

/// `CYD` — a sampling record.
pub(super) const SAMPLING: &[Field<SamplingRecord>] = &[
    Field { key: "CYDBH", path: "sample_id", io: Io::Text(acc!(sample_id)) },
    Field { key: "JHBH", path: "plan_id", io: Io::Text(acc!(plan_id)) },
    Field { key: "CYDQ", path: "sampling_region", io: Io::Text(acc!(sampling_region)) },
    Field { key: "CYDW", path: "sampling_org", io: Io::Text(acc!(sampling_org)) },
    Field { key: "CYRQ", path: "sampled_on", io: Io::Date(acc!(sampled_on)) },
    Field { key: "QD", path: "channel", io: Io::Code(CHANNEL_SAMPLE, acc!(channel)) },
    Field { key: "BCYDWMC", path: "seller.name", io: Io::Text(acc!(seller.name)) },
    Field { key: "BCYDWXYDM", path: "seller.uscc", io: Io::Text(acc!(seller.uscc)) },
    Field { key: "BCYDWQH", path: "seller.region", io: Io::Text(acc!(seller.region)) },
    Field { key: "BCYDWDZ", path: "seller.address", io: Io::Text(acc!(seller.address)) },
    Field { key: "SCQYMC", path: "producer.name", io: Io::Text(acc!(producer.name)) },
    Field { key: "SCQYXYDM", path: "producer.uscc", io: Io::Text(acc!(producer.uscc)) },
    Field { key: "SCQYQH", path: "producer.region", io: Io::Text(acc!(producer.region)) },
    Field { key: "SCQYDZ", path: "producer.address", io: Io::Text(acc!(producer.address)) },
    Field { key: "WDPT", path: "shop.platform", io: Io::Text(acc!(shop.platform)) },
    Field { key: "WDMC", path: "shop.shop_name", io: Io::Text(acc!(shop.shop_name)) },
    Field { key: "WDDZ", path: "shop.shop_url", io: Io::Text(acc!(shop.shop_url)) },
    Field { key: "DDH", path: "shop.order_no", io: Io::Text(acc!(shop.order_no)) },
    Field { key: "", path: "product", io: Io::Product(acc!(product?)) },
    Field { key: "CYSL", path: "quantity", io: Io::Int(acc!(quantity)) },
    Field { key: "JLDW", path: "unit", io: Io::Text(acc!(unit)) },
    Field { key: "BYSL", path: "reserve_quantity", io: Io::Int(acc!(reserve_quantity)) },
    Field { key: "YPDJ", path: "unit_price", io: Io::Yuan(acc!(unit_price)) },
    Field { key: "LRSJ", path: "recorded_at", io: Io::Time(acc!(recorded_at)) },
];

/// What the sampling table cannot say field by field: the producer is absent when all its fields
/// are `""`; the online shop is kept for the online channel, must be empty for the offline one
/// and is kept when given with an unset channel (the rules report the channel).
pub(super) fn finish_sampling(r: &mut Reader<'_, '_>, s: &mut SamplingRecord) {
    if s.producer.as_ref().is_some_and(|p| *p == Party::default()) {
        s.producer = None;
    }
    if s.channel == SalesChannel::Offline as i32 {
        let channel = key_of(SAMPLING, "channel");
        for f in SAMPLING.iter().filter(|f| f.path.starts_with("shop.")) {
            if let Io::Text(a) = &f.io {
                if (a.get)(s).is_some_and(|v| !v.is_empty()) {
                    r.cx.error(r.o.at(f.key), format!("must be \"\" unless {channel} is 2 (online)"));
                }
            }
        }
        s.shop = None;
    } else if s.channel != SalesChannel::Online as i32 && s.shop.as_ref().is_some_and(|p| *p == OnlineShop::default()) {
        s.shop = None;
    }
}

/// `JYBG` — an inspection report.
pub(super) const INSPECTION: &[Field<InspectionResult>] = &[
    Field { key: "BGBH", path: "report_no", io: Io::Text(acc!(report_no)) },
    Field { key: "CYDBH", path: "sample_id", io: Io::Text(acc!(sample_id)) },
    Field { key: "JYJG", path: "lab_name", io: Io::Text(acc!(lab_name)) },
    Field { key: "CMA", path: "lab_cma", io: Io::Text(acc!(lab_cma)) },
    Field { key: "QFRQ", path: "issued_on", io: Io::Date(acc!(issued_on)) },
    Field { key: "JYJL", path: "conclusion", io: Io::Code(CONCLUSION, acc!(conclusion)) },
    Field {
        key: "XM",
        path: "items",
        io: Io::Own {
            read: |r, key, x| x.items = r.objects(key, ITEM),
            write: |x| Value::Array(x.items.iter().map(|it| Value::Object(write(ITEM, it))).collect()),
            items: Some(|pattern| template(ITEM, pattern)),
        },
    },
];

/// One inspected item (`XM[i]`).
pub(super) const ITEM: &[Field<InspectionItem>] = &[
    Field { key: "XMMC", path: "name", io: Io::Text(acc!(name)) },
    Field { key: "YJBZ", path: "standard", io: Io::Text(acc!(standard)) },
    Field { key: "BZYQ", path: "requirement", io: Io::Text(acc!(requirement)) },
    Field { key: "SCJG", path: "measured", io: Io::Text(acc!(measured)) },
    Field { key: "DW", path: "unit", io: Io::Text(acc!(unit)) },
    Field { key: "DXPD", path: "verdict", io: Io::Code(VERDICT, acc!(verdict)) },
    Field {
        key: "BHGCD",
        path: "severity",
        io: Io::Own {
            // After DXPD: a failing item needs a severity, a passing one has none ("" is NONE).
            read: |r, key, it| {
                let text = r.s(key);
                it.severity = if text.is_empty() {
                    if it.verdict == Verdict::Fail as i32 {
                        r.cx.error(r.o.at(key), "required on a failing item (A serious, B general)");
                    }
                    Severity::None as i32
                } else {
                    let s = lookup(&text, SEVERITY, r.o.at(key), r.cx);
                    if it.verdict == Verdict::Pass as i32 && s != 0 {
                        let verdict = key_of(ITEM, "verdict");
                        r.cx.error(r.o.at(key), format!("must be \"\" when {verdict} is 1 (pass)"));
                    }
                    s
                };
            },
            write: |it| Value::String(code_of(it.severity, SEVERITY).into()),
            items: None,
        },
    },
];

/// `CZYS` — a disposal case transferred.
pub(super) const TRANSFER: &[Field<DisposalCase>] = &[
    Field { key: "AJBH", path: "case_id", io: Io::Text(acc!(case_id)) },
    Field { key: "YSDQ", path: "origin_region", io: Io::Text(acc!(origin_region)) },
    Field { key: "CBDQ", path: "responsible_region", io: Io::Text(acc!(responsible_region)) },
    Field { key: "CYDBH", path: "sample_id", io: Io::Text(acc!(sample_id)) },
    Field { key: "BGBH", path: "report_no", io: Io::Text(acc!(report_no)) },
    Field { key: "YSSJ", path: "opened_at", io: Io::Time(acc!(opened_at)) },
    Field { key: "QX", path: "due_on", io: Io::Date(acc!(due_on)) },
];

/// A transferred case is TRANSFERRED, and its due date is required.
pub(super) fn finish_transfer(r: &mut Reader<'_, '_>, c: &mut DisposalCase) {
    c.status = CaseStatus::Transferred as i32;
    if c.due_on.is_none() {
        r.cx.error(r.o.at(key_of(TRANSFER, "due_on")), "required (yyyyMMdd)");
    }
}

/// `CZFK` — feedback on a case: one event.
pub(super) const FEEDBACK: &[Field<CaseFeedback>] = &[
    Field { key: "AJBH", path: "case_id", io: Io::Text(acc!(case_id)) },
    Field { key: "FKBH", path: "event.event_id", io: Io::Text(acc!(event.event_id)) },
    Field { key: "FKDQ", path: "event.by_region", io: Io::Text(acc!(event.by_region)) },
    Field { key: "FKSJ", path: "event.at", io: Io::Time(acc!(event.at)) },
    Field { key: "DZ", path: "event.action", io: Io::Code(ACTION, acc!(event.action)) },
    Field { key: "SM", path: "event.note", io: Io::Text(acc!(event.note)) },
    Field { key: "CFJE", path: "event.amount", io: Io::OptYuan(acc!(event.amount)) },
];

/// `FXXX` — a risk signal.
pub(super) const RISK: &[Field<RiskSignal>] = &[
    Field { key: "FXBH", path: "signal_id", io: Io::Text(acc!(signal_id)) },
    Field { key: "BB", path: "revision", io: Io::Int(acc!(revision)) },
    Field { key: "ZT", path: "state", io: Io::Code(STATE, acc!(state)) },
    Field { key: "SBDQ", path: "reporting_region", io: Io::Text(acc!(reporting_region)) },
    Field { key: "FXRQ", path: "observed_on", io: Io::Date(acc!(observed_on)) },
    Field { key: "LY", path: "source", io: Io::Code(SOURCE, acc!(source)) },
    Field { key: "", path: "product", io: Io::Product(acc!(product?)) },
    Field {
        key: "WHLX",
        path: "hazards",
        io: Io::Own {
            read: |r, key, s| {
                s.hazards = r.each_string(key, |h, path, cx| {
                    if h.is_empty() {
                        cx.error(path, "required (a Jiangsu hazard code 01–08 or 99)");
                        0
                    } else {
                        lookup(h, HAZARD, path, cx)
                    }
                });
            },
            write: |s| Value::Array(s.hazards.iter().map(|h| Value::String(code_of(*h, HAZARD).into())).collect()),
            items: None,
        },
    },
    Field { key: "FXDJ", path: "level", io: Io::Code(LEVEL, acc!(level)) },
    Field { key: "FXMS", path: "summary", io: Io::Text(acc!(summary)) },
    Field { key: "QGX", path: "nationwide", io: Io::Flag(acc!(nationwide)) },
    Field { key: "GLCYD", path: "related_samples", io: Io::Strings(acc!(related_samples)) },
    Field { key: "JYCS", path: "recommended_measures", io: Io::Text(acc!(recommended_measures)) },
];

/// Reads one record of a kind from its object: the table, then the record's own checks.
pub(super) fn decode(kind: crate::model::RecordKind, r: &mut Reader<'_, '_>) -> crate::model::Record {
    use crate::model::{Record, RecordKind};
    match kind {
        RecordKind::Plan => Record::Plan(read_new(PLAN, r)),
        RecordKind::Sampling => {
            let mut s = read_new(SAMPLING, r);
            finish_sampling(r, &mut s);
            Record::Sampling(s)
        }
        RecordKind::Inspection => Record::Inspection(read_new(INSPECTION, r)),
        RecordKind::CaseTransfer => {
            let mut c = read_new(TRANSFER, r);
            finish_transfer(r, &mut c);
            Record::CaseTransfer(c)
        }
        RecordKind::CaseFeedback => Record::CaseFeedback(read_new(FEEDBACK, r)),
        _ => Record::RiskSignal(read_new(RISK, r)),
    }
}
