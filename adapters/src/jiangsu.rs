//! Jiangsu exchange interface (苏监交换接口 v2.1): JSON in UTF-8 with upper-case pinyin-initial
//! keys, every scalar a JSON string, `""` for absent values, 1–100 records per message.
//! See `docs/partners/jiangsu.md`.

use crate::envelope::EnvelopePaths;
use crate::json::{self, Obj};
use crate::model::*;
use crate::money::{format_yuan, parse_yuan};
use crate::paths::map_path;
use crate::problems::{category_value, code_of, lookup, Ctx};
use serde_json::{Map, Value};
use yrdx_proto::civil::BeijingTime;
use yrdx_proto::codes::category_code_of;
use yrdx_proto::v1::*;
use yrdx_proto::{Date, Timestamp};

/// Jiangsu's envelope id.
pub const PARTNER_ID: &str = "320000";
/// Most records in one message.
pub const MAX_RECORDS: usize = 100;
/// The interface version written and required (`HEAD.BBH`).
pub const VERSION: &str = "2.1";

const CHANNEL_PLAN: &[(&str, i32)] = &[("1", 1), ("2", 2), ("3", 3)];
const CHANNEL_SAMPLE: &[(&str, i32)] = &[("1", 1), ("2", 2)];
const CONCLUSION: &[(&str, i32)] = &[("1", 1), ("2", 2)];
const VERDICT: &[(&str, i32)] = &[("1", 1), ("2", 2)];
const SEVERITY: &[(&str, i32)] = &[("A", Severity::Serious as i32), ("B", Severity::General as i32)];
const ACTION: &[(&str, i32)] = &[
    ("01", CaseAction::Accept as i32),
    ("02", CaseAction::Return as i32),
    ("03", CaseAction::Notify as i32),
    ("04", CaseAction::Objection as i32),
    ("05", CaseAction::RecheckPass as i32),
    ("06", CaseAction::RecheckFail as i32),
    ("07", CaseAction::RectifyOrder as i32),
    ("08", CaseAction::RectifyVerified as i32),
    ("09", CaseAction::Penalty as i32),
    ("10", CaseAction::Close as i32),
];
const STATE: &[(&str, i32)] = &[("1", 1), ("2", 2), ("3", 3)];
const SOURCE: &[(&str, i32)] = &[("1", 1), ("2", 2), ("3", 3), ("4", 4), ("5", 5), ("6", 6), ("7", 7), ("8", 8)];
const LEVEL: &[(&str, i32)] = &[("1", 1), ("2", 2), ("3", 3), ("4", 4)];
const HAZARD: &[(&str, i32)] = &[
    ("01", Hazard::ElectricShock as i32),
    ("02", Hazard::Fire as i32),
    ("03", Hazard::Burn as i32),
    ("04", Hazard::Chemical as i32),
    ("05", Hazard::Mechanical as i32),
    ("06", Hazard::Choking as i32),
    ("07", Hazard::Explosion as i32),
    ("08", Hazard::Environment as i32),
    ("99", Hazard::Other as i32),
];

/// Message types (`HEAD.XXLX`) and the record kind each carries.
const MESSAGE_TYPES: &[(&str, RecordKind)] = &[
    ("JH", RecordKind::Plan),
    ("CYD", RecordKind::Sampling),
    ("JYBG", RecordKind::Inspection),
    ("CZYS", RecordKind::CaseTransfer),
    ("CZFK", RecordKind::CaseFeedback),
    ("FXXX", RecordKind::RiskSignal),
];

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

/// Reads one Jiangsu object, where every scalar is a string.
struct Reader<'v, 'c> {
    o: Obj<'v>,
    cx: &'c mut Ctx,
}

impl<'v, 'c> Reader<'v, 'c> {
    /// A string value, trimmed; `""` when missing. `null` and non-strings are errors.
    fn s(&mut self, key: &str) -> String {
        match self.o.get(key) {
            None => String::new(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Null) => {
                self.cx.error(self.o.at(key), "null is not allowed (an absent value is \"\")");
                String::new()
            }
            Some(other) => {
                self.cx.error(self.o.at(key), format!("expected a JSON string, found {}", json::type_name(other)));
                String::new()
            }
        }
    }

    fn date(&mut self, key: &str) -> Option<Date> {
        let text = self.s(key);
        if text.is_empty() {
            return None;
        }
        let d = Date::parse_compact(&text);
        if d.is_none() {
            self.cx.error(self.o.at(key), format!("'{text}' is not a date yyyyMMdd"));
        }
        d
    }

    fn time(&mut self, key: &str) -> Option<Timestamp> {
        let text = self.s(key);
        if text.is_empty() {
            return None;
        }
        match BeijingTime::parse_compact(&text) {
            Some(t) => Some(t.to_timestamp()),
            None => {
                self.cx.error(self.o.at(key), format!("'{text}' is not a time yyyyMMddHHmmss (Beijing time)"));
                None
            }
        }
    }

    fn int(&mut self, key: &str) -> i32 {
        let text = self.s(key);
        if text.is_empty() {
            self.cx.error(self.o.at(key), "required (a decimal integer as a string)");
            return 0;
        }
        match text.parse::<i32>() {
            Ok(n) if text.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                self.cx.error(self.o.at(key), format!("'{text}' is not a decimal integer"));
                0
            }
        }
    }

    fn yuan(&mut self, key: &str, required: bool) -> Option<i64> {
        let text = self.s(key);
        if text.is_empty() {
            if required {
                self.cx.error(self.o.at(key), "required (yuan with two decimals, e.g. 128.00)");
            }
            return None;
        }
        match parse_yuan(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.cx.error(self.o.at(key), e.to_string());
                None
            }
        }
    }

    /// A code from a dictionary; `""` gives 0 (unset, reported by the rules as required).
    fn code(&mut self, key: &str, table: &[(&str, i32)]) -> i32 {
        let text = self.s(key);
        lookup(&text, table, self.o.at(key), self.cx)
    }

    fn category(&mut self, key: &str) -> i32 {
        let text = self.s(key);
        category_value(&text, self.o.at(key), self.cx)
    }

    /// A JSON array (`[]` when missing or `""`).
    fn list(&mut self, key: &str) -> &'v [Value] {
        match self.o.get(key) {
            None => &[],
            Some(Value::Array(a)) => a,
            Some(Value::String(s)) if s.is_empty() => &[],
            Some(other) => {
                self.cx.error(self.o.at(key), format!("expected a JSON array, found {}", json::type_name(other)));
                &[]
            }
        }
    }

    fn strings(&mut self, key: &str) -> Vec<String> {
        let path = self.o.at(key);
        let list = self.list(key);
        list.iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => s.trim().to_string(),
                other => {
                    self.cx.error(
                        format!("{path}[{i}]"),
                        format!("expected a JSON string, found {}", json::type_name(other)),
                    );
                    String::new()
                }
            })
            .collect()
    }
}

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
                format!("{path}.{}", map_path(PATHS, canonical, 0).unwrap_or_else(|| canonical.to_string()))
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

fn decode_head(value: &Value, cx: &mut Ctx) -> (Envelope, Option<RecordKind>) {
    let Some(o) = Obj::of(value, "HEAD", cx) else {
        return (Envelope::default(), None);
    };
    o.deny_unknown(&["XXBH", "XXLX", "FSF", "JSF", "FSSJ", "BBH"], cx);
    let mut r = Reader { o, cx };
    let message_id = r.s("XXBH");
    let xxlx = r.s("XXLX");
    let kind = MESSAGE_TYPES.iter().find(|(c, _)| *c == xxlx).map(|(_, k)| *k);
    if kind.is_none() {
        r.cx.error("HEAD.XXLX", format!("'{xxlx}' is not a message type (expected JH, CYD, JYBG, CZYS, CZFK or FXXX)"));
    }
    let sender = r.s("FSF");
    let receiver = r.s("JSF");
    let sent_at = r.time("FSSJ");
    let version = r.s("BBH");
    if version != VERSION {
        r.cx.error("HEAD.BBH", format!("'{version}' is not the interface version {VERSION}"));
    }
    let envelope = Envelope { message_id, sender, receiver, sent_at };
    let paths = EnvelopePaths {
        message_id: "HEAD.XXBH",
        sender: "HEAD.FSF",
        receiver: "HEAD.JSF",
        sent_at: "HEAD.FSSJ",
        sent_at_form: "yyyyMMddHHmmss, Beijing time",
    };
    crate::envelope::check(&envelope, &paths, r.cx);
    (envelope, kind)
}

fn decode_record(kind: RecordKind, o: Obj<'_>, cx: &mut Ctx) -> Record {
    let id_key = match kind {
        RecordKind::Plan => "JHBH",
        RecordKind::Sampling => "CYDBH",
        RecordKind::Inspection => "BGBH",
        RecordKind::CaseTransfer => "AJBH",
        RecordKind::CaseFeedback => "FKBH",
        _ => "FXBH",
    };
    if let Some(Value::String(id)) = o.get(id_key) {
        cx.record_id = Some(id.trim().to_string());
    }
    match kind {
        RecordKind::Plan => Record::Plan(decode_plan(o, cx)),
        RecordKind::Sampling => Record::Sampling(decode_sampling(o, cx)),
        RecordKind::Inspection => Record::Inspection(decode_inspection(o, cx)),
        RecordKind::CaseTransfer => Record::CaseTransfer(decode_transfer(o, cx)),
        RecordKind::CaseFeedback => Record::CaseFeedback(decode_feedback(o, cx)),
        _ => Record::RiskSignal(decode_risk(o, cx)),
    }
}

fn decode_plan(o: Obj<'_>, cx: &mut Ctx) -> SpotCheckPlan {
    o.deny_unknown(PLAN_KEYS, cx);
    let base = o.path.clone();
    let mut r = Reader { o, cx };
    let mut participants = Vec::new();
    for (i, v) in r.list("CYDQ").iter().enumerate() {
        let Some(po) = Obj::of(v, format!("{base}.CYDQ[{i}]"), r.cx) else {
            continue;
        };
        po.deny_unknown(&["DQ", "PE"], r.cx);
        let mut pr = Reader { o: po, cx: r.cx };
        participants.push(PlanParticipant { region: pr.s("DQ"), quota: pr.int("PE") });
    }
    let categories = r
        .strings("CPFL")
        .iter()
        .enumerate()
        .map(|(i, c)| category_value(c, format_args!("{base}.CPFL[{i}]"), r.cx))
        .collect();
    SpotCheckPlan {
        plan_id: r.s("JHBH"),
        title: r.s("JHMC"),
        year: r.int("ND"),
        lead_region: r.s("QTDQ"),
        participants,
        channel: r.code("QD", CHANNEL_PLAN),
        categories,
        standards: r.strings("YJBZ"),
        sampling_deadline: r.date("JZRQ"),
        published_at: r.time("FBSJ"),
    }
}

fn decode_product(r: &mut Reader<'_, '_>) -> Product {
    Product {
        name: r.s("CPMC"),
        category: r.category("CPFL"),
        brand: r.s("SB"),
        model: r.s("GGXH"),
        batch: r.s("PH"),
        production_date: r.date("SCRQ"),
    }
}

fn decode_sampling(o: Obj<'_>, cx: &mut Ctx) -> SamplingRecord {
    o.deny_unknown(SAMPLING_KEYS, cx);
    let mut r = Reader { o, cx };
    let channel = r.code("QD", CHANNEL_SAMPLE);
    let seller =
        Party { name: r.s("BCYDWMC"), uscc: r.s("BCYDWXYDM"), region: r.s("BCYDWQH"), address: r.s("BCYDWDZ") };
    let producer = Party { name: r.s("SCQYMC"), uscc: r.s("SCQYXYDM"), region: r.s("SCQYQH"), address: r.s("SCQYDZ") };
    let shop =
        OnlineShop { platform: r.s("WDPT"), shop_name: r.s("WDMC"), shop_url: r.s("WDDZ"), order_no: r.s("DDH") };
    let shop_given = shop != OnlineShop::default();
    let shop = if channel == SalesChannel::Online as i32 {
        Some(shop)
    } else if channel == SalesChannel::Offline as i32 {
        for (key, v) in
            [("WDPT", &shop.platform), ("WDMC", &shop.shop_name), ("WDDZ", &shop.shop_url), ("DDH", &shop.order_no)]
        {
            if !v.is_empty() {
                r.cx.error(r.o.at(key), "must be \"\" unless QD is 2 (online)");
            }
        }
        None
    } else {
        shop_given.then_some(shop)
    };
    SamplingRecord {
        sample_id: r.s("CYDBH"),
        plan_id: r.s("JHBH"),
        sampling_region: r.s("CYDQ"),
        sampling_org: r.s("CYDW"),
        sampled_on: r.date("CYRQ"),
        channel,
        seller: Some(seller),
        producer: (producer != Party::default()).then_some(producer),
        shop,
        product: Some(decode_product(&mut r)),
        quantity: r.int("CYSL"),
        unit: r.s("JLDW"),
        reserve_quantity: r.int("BYSL"),
        unit_price: r.yuan("YPDJ", true).unwrap_or(0),
        recorded_at: r.time("LRSJ"),
    }
}

fn decode_inspection(o: Obj<'_>, cx: &mut Ctx) -> InspectionResult {
    o.deny_unknown(INSPECTION_KEYS, cx);
    let base = o.path.clone();
    let mut r = Reader { o, cx };
    let mut items = Vec::new();
    for (i, v) in r.list("XM").iter().enumerate() {
        let Some(io) = Obj::of(v, format!("{base}.XM[{i}]"), r.cx) else {
            continue;
        };
        io.deny_unknown(ITEM_KEYS, r.cx);
        let mut ir = Reader { o: io, cx: r.cx };
        let verdict = ir.code("DXPD", VERDICT);
        let severity_text = ir.s("BHGCD");
        let severity = if severity_text.is_empty() {
            // "" is NONE, which the rules accept only on a passing item.
            if verdict == Verdict::Fail as i32 {
                ir.cx.error(ir.o.at("BHGCD"), "required on a failing item (A serious, B general)");
            }
            Severity::None as i32
        } else {
            let s = lookup(&severity_text, SEVERITY, ir.o.at("BHGCD"), ir.cx);
            if verdict == Verdict::Pass as i32 && s != 0 {
                ir.cx.error(ir.o.at("BHGCD"), "must be \"\" when DXPD is 1 (pass)");
            }
            s
        };
        items.push(InspectionItem {
            name: ir.s("XMMC"),
            standard: ir.s("YJBZ"),
            requirement: ir.s("BZYQ"),
            measured: ir.s("SCJG"),
            unit: ir.s("DW"),
            verdict,
            severity,
        });
    }
    InspectionResult {
        report_no: r.s("BGBH"),
        sample_id: r.s("CYDBH"),
        lab_name: r.s("JYJG"),
        lab_cma: r.s("CMA"),
        issued_on: r.date("QFRQ"),
        conclusion: r.code("JYJL", CONCLUSION),
        items,
    }
}

fn decode_transfer(o: Obj<'_>, cx: &mut Ctx) -> DisposalCase {
    o.deny_unknown(TRANSFER_KEYS, cx);
    let mut r = Reader { o, cx };
    let due_on = r.date("QX");
    if due_on.is_none() {
        r.cx.error(r.o.at("QX"), "required (yyyyMMdd)");
    }
    DisposalCase {
        case_id: r.s("AJBH"),
        origin_region: r.s("YSDQ"),
        responsible_region: r.s("CBDQ"),
        sample_id: r.s("CYDBH"),
        report_no: r.s("BGBH"),
        opened_at: r.time("YSSJ"),
        status: CaseStatus::Transferred as i32,
        due_on,
        events: vec![],
        due_on_provisional: false,
    }
}

fn decode_feedback(o: Obj<'_>, cx: &mut Ctx) -> CaseFeedback {
    o.deny_unknown(FEEDBACK_KEYS, cx);
    let mut r = Reader { o, cx };
    let action = r.code("DZ", ACTION);
    let amount = r.yuan("CFJE", false);
    CaseFeedback {
        case_id: r.s("AJBH"),
        event: Some(CaseEvent {
            event_id: r.s("FKBH"),
            at: r.time("FKSJ"),
            by_region: r.s("FKDQ"),
            action,
            note: r.s("SM"),
            amount,
        }),
    }
}

fn decode_risk(o: Obj<'_>, cx: &mut Ctx) -> RiskSignal {
    o.deny_unknown(RISK_KEYS, cx);
    let base = o.path.clone();
    let mut r = Reader { o, cx };
    let hazards = r
        .strings("WHLX")
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let path = format!("{base}.WHLX[{i}]");
            if h.is_empty() {
                r.cx.error(path, "required (a Jiangsu hazard code 01–08 or 99)");
                0
            } else {
                lookup(h, HAZARD, path, r.cx)
            }
        })
        .collect();
    let nationwide = match r.s("QGX").as_str() {
        "1" => true,
        "0" => false,
        other => {
            r.cx.error(r.o.at("QGX"), format!("'{other}' is not 1 (true) or 0 (false)"));
            false
        }
    };
    RiskSignal {
        signal_id: r.s("FXBH"),
        revision: r.int("BB"),
        state: r.code("ZT", STATE),
        reporting_region: r.s("SBDQ"),
        observed_on: r.date("FXRQ"),
        source: r.code("LY", SOURCE),
        product: Some(decode_product(&mut r)),
        hazards,
        level: r.code("FXDJ", LEVEL),
        summary: r.s("FXMS"),
        nationwide,
        related_samples: r.strings("GLCYD"),
        recommended_measures: r.s("JYCS"),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

fn date_str(d: &Option<Date>) -> String {
    d.as_ref().map(Date::to_compact).unwrap_or_default()
}

fn time_str(t: &Option<Timestamp>) -> String {
    t.as_ref().map(|t| BeijingTime::of(t).to_compact()).unwrap_or_default()
}

fn put(m: &mut Map<String, Value>, key: &str, value: impl Into<String>) {
    m.insert(key.to_string(), Value::String(value.into()));
}

/// Encodes canonical records (all of one kind, 1–100) as a Jiangsu message. `envelope.sent_at`
/// is written in Beijing time; the same inputs always give the same bytes.
pub fn encode(envelope: &Envelope, records: &[Record]) -> Result<Encoded, EncodeError> {
    let kind = batch_kind(records, MAX_RECORDS, "Jiangsu")?;
    let xxlx =
        MESSAGE_TYPES.iter().find(|(_, k)| *k == kind).map(|(c, _)| *c).ok_or_else(|| EncodeError::Unsupported {
            partner: "Jiangsu",
            kind,
            record_id: records[0].id(),
            reason: "the Jiangsu interface has no message type for this record".into(),
        })?;
    check_before_encode(records)?;
    let mut losses = Vec::new();
    precision_losses(records, 1_000_000_000, &mut losses);
    let mut head = Map::new();
    put(&mut head, "XXBH", envelope.message_id.clone());
    put(&mut head, "XXLX", xxlx);
    put(&mut head, "FSF", envelope.sender.clone());
    put(&mut head, "JSF", envelope.receiver.clone());
    put(&mut head, "FSSJ", time_str(&envelope.sent_at));
    put(&mut head, "BBH", VERSION);
    let data: Vec<Value> = records.iter().map(|r| Value::Object(encode_record(r, &mut losses))).collect();
    let mut root = Map::new();
    root.insert("HEAD".into(), Value::Object(head));
    root.insert("DATA".into(), Value::Array(data));
    Ok(Encoded { bytes: json::to_bytes(&Value::Object(root)), losses })
}

fn encode_record(record: &Record, losses: &mut Vec<Loss>) -> Map<String, Value> {
    let mut m = Map::new();
    match record {
        Record::Plan(p) => {
            put(&mut m, "JHBH", p.plan_id.clone());
            put(&mut m, "JHMC", p.title.clone());
            put(&mut m, "ND", p.year.to_string());
            put(&mut m, "QTDQ", p.lead_region.clone());
            let parts = p
                .participants
                .iter()
                .map(|x| {
                    let mut pm = Map::new();
                    put(&mut pm, "DQ", x.region.clone());
                    put(&mut pm, "PE", x.quota.to_string());
                    Value::Object(pm)
                })
                .collect();
            m.insert("CYDQ".into(), Value::Array(parts));
            put(&mut m, "QD", code_of(p.channel, CHANNEL_PLAN));
            let cats = p.categories.iter().map(|c| Value::String(category_code_of(*c))).collect();
            m.insert("CPFL".into(), Value::Array(cats));
            m.insert("YJBZ".into(), Value::Array(p.standards.iter().cloned().map(Value::String).collect()));
            put(&mut m, "JZRQ", date_str(&p.sampling_deadline));
            put(&mut m, "FBSJ", time_str(&p.published_at));
        }
        Record::Sampling(s) => {
            put(&mut m, "CYDBH", s.sample_id.clone());
            put(&mut m, "JHBH", s.plan_id.clone());
            put(&mut m, "CYDQ", s.sampling_region.clone());
            put(&mut m, "CYDW", s.sampling_org.clone());
            put(&mut m, "CYRQ", date_str(&s.sampled_on));
            put(&mut m, "QD", code_of(s.channel, CHANNEL_SAMPLE));
            let seller = s.seller.clone().unwrap_or_default();
            put(&mut m, "BCYDWMC", seller.name);
            put(&mut m, "BCYDWXYDM", seller.uscc);
            put(&mut m, "BCYDWQH", seller.region);
            put(&mut m, "BCYDWDZ", seller.address);
            let producer = s.producer.clone().unwrap_or_default();
            put(&mut m, "SCQYMC", producer.name);
            put(&mut m, "SCQYXYDM", producer.uscc);
            put(&mut m, "SCQYQH", producer.region);
            put(&mut m, "SCQYDZ", producer.address);
            let shop = s.shop.clone().unwrap_or_default();
            put(&mut m, "WDPT", shop.platform);
            put(&mut m, "WDMC", shop.shop_name);
            put(&mut m, "WDDZ", shop.shop_url);
            put(&mut m, "DDH", shop.order_no);
            encode_product(&mut m, s.product.as_ref());
            put(&mut m, "CYSL", s.quantity.to_string());
            put(&mut m, "JLDW", s.unit.clone());
            put(&mut m, "BYSL", s.reserve_quantity.to_string());
            put(&mut m, "YPDJ", format_yuan(s.unit_price));
            put(&mut m, "LRSJ", time_str(&s.recorded_at));
        }
        Record::Inspection(r) => {
            put(&mut m, "BGBH", r.report_no.clone());
            put(&mut m, "CYDBH", r.sample_id.clone());
            put(&mut m, "JYJG", r.lab_name.clone());
            put(&mut m, "CMA", r.lab_cma.clone());
            put(&mut m, "QFRQ", date_str(&r.issued_on));
            put(&mut m, "JYJL", code_of(r.conclusion, CONCLUSION));
            let items = r
                .items
                .iter()
                .map(|it| {
                    let mut im = Map::new();
                    put(&mut im, "XMMC", it.name.clone());
                    put(&mut im, "YJBZ", it.standard.clone());
                    put(&mut im, "BZYQ", it.requirement.clone());
                    put(&mut im, "SCJG", it.measured.clone());
                    put(&mut im, "DW", it.unit.clone());
                    put(&mut im, "DXPD", code_of(it.verdict, VERDICT));
                    put(&mut im, "BHGCD", code_of(it.severity, SEVERITY));
                    Value::Object(im)
                })
                .collect();
            m.insert("XM".into(), Value::Array(items));
        }
        Record::CaseTransfer(c) => {
            crate::model::transfer_losses(c, losses);
            put(&mut m, "AJBH", c.case_id.clone());
            put(&mut m, "YSDQ", c.origin_region.clone());
            put(&mut m, "CBDQ", c.responsible_region.clone());
            put(&mut m, "CYDBH", c.sample_id.clone());
            put(&mut m, "BGBH", c.report_no.clone());
            put(&mut m, "YSSJ", time_str(&c.opened_at));
            put(&mut m, "QX", date_str(&c.due_on));
        }
        Record::CaseFeedback(f) => {
            let e = f.event.clone().unwrap_or_default();
            put(&mut m, "AJBH", f.case_id.clone());
            put(&mut m, "FKBH", e.event_id);
            put(&mut m, "FKDQ", e.by_region);
            put(&mut m, "FKSJ", time_str(&e.at));
            put(&mut m, "DZ", code_of(e.action, ACTION));
            put(&mut m, "SM", e.note);
            put(&mut m, "CFJE", e.amount.map(format_yuan).unwrap_or_default());
        }
        Record::RiskSignal(s) => {
            put(&mut m, "FXBH", s.signal_id.clone());
            put(&mut m, "BB", s.revision.to_string());
            put(&mut m, "ZT", code_of(s.state, STATE));
            put(&mut m, "SBDQ", s.reporting_region.clone());
            put(&mut m, "FXRQ", date_str(&s.observed_on));
            put(&mut m, "LY", code_of(s.source, SOURCE));
            encode_product(&mut m, s.product.as_ref());
            let hazards = s.hazards.iter().map(|h| Value::String(code_of(*h, HAZARD).into())).collect();
            m.insert("WHLX".into(), Value::Array(hazards));
            put(&mut m, "FXDJ", code_of(s.level, LEVEL));
            put(&mut m, "FXMS", s.summary.clone());
            put(&mut m, "QGX", if s.nationwide { "1" } else { "0" });
            m.insert("GLCYD".into(), Value::Array(s.related_samples.iter().cloned().map(Value::String).collect()));
            put(&mut m, "JYCS", s.recommended_measures.clone());
        }
        // batch_kind + MESSAGE_TYPES exclude every other kind before we get here.
        _ => {}
    }
    m
}

fn encode_product(m: &mut Map<String, Value>, p: Option<&Product>) {
    let p = p.cloned().unwrap_or_default();
    put(m, "CPMC", p.name);
    put(m, "CPFL", category_code_of(p.category));
    put(m, "SB", p.brand);
    put(m, "GGXH", p.model);
    put(m, "PH", p.batch);
    put(m, "SCRQ", date_str(&p.production_date));
}
