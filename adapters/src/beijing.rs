//! Beijing online-sales interface (北京网络销售联动抽查接口 v1): JSON in UTF-8, camelCase keys, one
//! record per message, JSON numbers, epoch-millisecond times, money in fen. Online channel only.
//! See `docs/partners/beijing.md`.

use crate::envelope::EnvelopePaths;
use crate::json::{self, Obj};
use crate::model::*;
use crate::paths::map_path;
use crate::problems::{parse_date, Ctx};
use serde_json::{Map, Value};
use yrdx_proto::codes::{category_code_of, category_from_code};
use yrdx_proto::v1::*;
use yrdx_proto::{Date, Timestamp};

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

/// Reads one Beijing object; an omitted key and `null` are the same.
struct Reader<'v, 'c> {
    o: Obj<'v>,
    cx: &'c mut Ctx,
}

impl<'v, 'c> Reader<'v, 'c> {
    fn value(&self, key: &str) -> Option<&'v Value> {
        self.o.get(key).filter(|v| !v.is_null())
    }

    fn s(&mut self, key: &str) -> String {
        match self.value(key) {
            None => String::new(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(other) => {
                self.cx.error(self.o.at(key), format!("expected a string, found {}", json::type_name(other)));
                String::new()
            }
        }
    }

    fn int(&mut self, key: &str, required: bool) -> Option<i64> {
        match self.value(key) {
            None => {
                if required {
                    self.cx.error(self.o.at(key), "required (an integer)");
                }
                None
            }
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) => Some(v),
                None => {
                    self.cx.error(self.o.at(key), format!("{n} is not an integer"));
                    None
                }
            },
            Some(other) => {
                self.cx.error(self.o.at(key), format!("expected a number, found {}", json::type_name(other)));
                None
            }
        }
    }

    fn i32(&mut self, key: &str) -> i32 {
        match self.int(key, true) {
            Some(v) => match i32::try_from(v) {
                Ok(v) => v,
                Err(_) => {
                    self.cx.error(self.o.at(key), format!("{v} is out of range"));
                    0
                }
            },
            None => 0,
        }
    }

    fn date(&mut self, key: &str) -> Option<Date> {
        let text = self.s(key);
        parse_date(&text, Date::parse_iso, "yyyy-MM-dd", self.o.at(key), self.cx)
    }

    fn epoch(&mut self, key: &str) -> Option<Timestamp> {
        self.int(key, false).map(epoch_to_timestamp)
    }

    fn category(&mut self, key: &str) -> i32 {
        let text = self.s(key);
        if text.is_empty() {
            return 0;
        }
        match category_from_code(&text) {
            Some(c) => c as i32,
            None => {
                self.cx.error(self.o.at(key), format!("'{text}' is not a product category code of the catalogue"));
                0
            }
        }
    }

    fn list(&mut self, key: &str) -> &'v [Value] {
        match self.value(key) {
            None => &[],
            Some(Value::Array(a)) => a,
            Some(other) => {
                self.cx.error(self.o.at(key), format!("expected an array, found {}", json::type_name(other)));
                &[]
            }
        }
    }

    fn strings(&mut self, key: &str) -> Vec<String> {
        let path = self.o.at(key);
        let list = self.list(key);
        json::strings(list, &path, "a string", self.cx)
    }

    /// A nested object, or `None` when omitted or `null`.
    fn object(&mut self, key: &str) -> Option<Obj<'v>> {
        let v = self.value(key)?;
        Obj::of(v, self.o.at(key), self.cx)
    }

    fn party(&mut self, key: &str) -> Option<Party> {
        let o = self.object(key)?;
        o.deny_unknown(&["name", "creditCode", "regionCode", "address"], self.cx);
        let mut r = Reader { o, cx: self.cx };
        Some(Party { name: r.s("name"), uscc: r.s("creditCode"), region: r.s("regionCode"), address: r.s("address") })
    }
}

fn epoch_to_timestamp(ms: i64) -> Timestamp {
    Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

fn timestamp_to_epoch(t: &Timestamp) -> i64 {
    t.seconds * 1000 + (t.nanos / 1_000_000) as i64
}

/// Decodes a Beijing message (exactly one record) with every problem in Beijing's paths.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Document, DecodeError> {
    let root = json::parse(bytes, limits)?;
    let mut cx = Ctx::new(limits);
    let Some(top) = Obj::of(&root, "", &mut cx) else {
        return Err(DecodeError::Invalid(cx.problems));
    };
    top.deny_unknown(&["messageId", "type", "from", "to", "timestamp", "payload"], &mut cx);
    let mut r = Reader { o: top, cx: &mut cx };
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
        let sampling = kind == RecordKind::Sampling;
        cx.check_rules(start, &record, |canonical| {
            let key = if sampling && canonical == "plan_id" {
                "taskCode".to_string()
            } else {
                map_path(PATHS, canonical, 0).unwrap_or_else(|| canonical.to_string())
            };
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
    let id_key = match kind {
        RecordKind::Plan => "planCode",
        RecordKind::Sampling => "sampleNo",
        RecordKind::Inspection => "reportNo",
        RecordKind::CaseTransfer => "caseNo",
        _ => "eventNo",
    };
    if let Some(Value::String(id)) = o.get(id_key) {
        cx.record_id = Some(id.trim().to_string());
    }
    let mut r = Reader { o, cx };
    match kind {
        RecordKind::Plan => Record::Plan(decode_plan(&mut r)),
        RecordKind::Sampling => Record::Sampling(decode_sample(&mut r)),
        RecordKind::Inspection => Record::Inspection(decode_report(&mut r)),
        RecordKind::CaseTransfer => Record::CaseTransfer(decode_transfer(&mut r)),
        _ => Record::CaseFeedback(decode_feedback(&mut r)),
    }
}

fn decode_plan(r: &mut Reader<'_, '_>) -> SpotCheckPlan {
    r.o.deny_unknown(
        &[
            "planCode",
            "title",
            "year",
            "leadRegion",
            "participants",
            "channel",
            "categoryCodes",
            "standards",
            "deadline",
            "publishedAt",
        ],
        r.cx,
    );
    let mut participants = Vec::new();
    let base = r.o.at("participants");
    for (i, v) in r.list("participants").iter().enumerate() {
        let Some(po) = Obj::of(v, format!("{base}[{i}]"), r.cx) else {
            continue;
        };
        po.deny_unknown(&["regionCode", "quota"], r.cx);
        let mut pr = Reader { o: po, cx: r.cx };
        participants.push(PlanParticipant { region: pr.s("regionCode"), quota: pr.i32("quota") });
    }
    let channel = match r.s("channel").as_str() {
        "ONLINE" => PlanChannel::Online as i32,
        "" => 0,
        other => {
            r.cx.error(r.o.at("channel"), format!("'{other}' is not a channel Beijing takes (only \"ONLINE\")"));
            0
        }
    };
    let cat_base = r.o.at("categoryCodes");
    let categories = r
        .strings("categoryCodes")
        .iter()
        .enumerate()
        .map(|(i, c)| match category_from_code(c) {
            Some(cat) => cat as i32,
            None => {
                r.cx.error(
                    format!("{cat_base}[{i}]"),
                    format!("'{c}' is not a product category code of the catalogue"),
                );
                0
            }
        })
        .collect();
    SpotCheckPlan {
        plan_id: r.s("planCode"),
        title: r.s("title"),
        year: r.i32("year"),
        lead_region: r.s("leadRegion"),
        participants,
        channel,
        categories,
        standards: r.strings("standards"),
        sampling_deadline: r.date("deadline"),
        published_at: r.epoch("publishedAt"),
    }
}

fn decode_sample(r: &mut Reader<'_, '_>) -> SamplingRecord {
    r.o.deny_unknown(
        &[
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
            "createdAt",
        ],
        r.cx,
    );
    let shop = r.object("shop").map(|o| {
        o.deny_unknown(&["platform", "name", "url", "orderNo"], r.cx);
        let mut sr = Reader { o, cx: r.cx };
        OnlineShop {
            platform: sr.s("platform"),
            shop_name: sr.s("name"),
            shop_url: sr.s("url"),
            order_no: sr.s("orderNo"),
        }
    });
    let product = r.object("product").map(|o| {
        o.deny_unknown(&["name", "categoryCode", "brand", "model", "batchNo", "productionDate"], r.cx);
        let mut pr = Reader { o, cx: r.cx };
        Product {
            name: pr.s("name"),
            category: pr.category("categoryCode"),
            brand: pr.s("brand"),
            model: pr.s("model"),
            batch: pr.s("batchNo"),
            production_date: pr.date("productionDate"),
        }
    });
    SamplingRecord {
        sample_id: r.s("sampleNo"),
        plan_id: r.s("taskCode"),
        sampling_region: r.s("regionCode"),
        sampling_org: r.s("samplingAgency"),
        sampled_on: r.date("sampleDate"),
        channel: SalesChannel::Online as i32,
        seller: r.party("seller"),
        producer: r.party("manufacturer"),
        shop,
        product,
        quantity: r.i32("quantity"),
        unit: r.s("unit"),
        reserve_quantity: r.i32("reserveQuantity"),
        unit_price: r.int("unitPriceFen", true).unwrap_or(0),
        recorded_at: r.epoch("createdAt"),
    }
}

fn decode_report(r: &mut Reader<'_, '_>) -> InspectionResult {
    r.o.deny_unknown(&["reportNo", "sampleNo", "lab", "issueDate", "conclusion", "unqualifiedItems"], r.cx);
    let (lab_name, lab_cma) = match r.object("lab") {
        Some(o) => {
            o.deny_unknown(&["name", "cma"], r.cx);
            let mut lr = Reader { o, cx: r.cx };
            (lr.s("name"), lr.s("cma"))
        }
        None => {
            r.cx.error(r.o.at("lab"), "required ({\"name\", \"cma\"})");
            (String::new(), String::new())
        }
    };
    let conclusion = match r.int("conclusion", true) {
        Some(0) => Conclusion::Conforming as i32,
        Some(1) => Conclusion::Nonconforming as i32,
        Some(other) => {
            r.cx.error(r.o.at("conclusion"), format!("{other} is not 0 (conforming) or 1 (nonconforming)"));
            0
        }
        None => 0,
    };
    let base = r.o.at("unqualifiedItems");
    let mut items = Vec::new();
    for (i, v) in r.list("unqualifiedItems").iter().enumerate() {
        let Some(io) = Obj::of(v, format!("{base}[{i}]"), r.cx) else {
            continue;
        };
        io.deny_unknown(&["name", "standard", "requirement", "measured", "unit", "severity"], r.cx);
        let mut ir = Reader { o: io, cx: r.cx };
        let severity = match ir.int("severity", true) {
            Some(1) => Severity::Serious as i32,
            Some(2) => Severity::General as i32,
            Some(other) => {
                ir.cx.error(ir.o.at("severity"), format!("{other} is not 1 (serious) or 2 (general)"));
                0
            }
            None => 0,
        };
        items.push(InspectionItem {
            name: ir.s("name"),
            standard: ir.s("standard"),
            requirement: ir.s("requirement"),
            measured: ir.s("measured"),
            unit: ir.s("unit"),
            verdict: Verdict::Fail as i32,
            severity,
        });
    }
    InspectionResult {
        report_no: r.s("reportNo"),
        sample_id: r.s("sampleNo"),
        lab_name,
        lab_cma,
        issued_on: r.date("issueDate"),
        conclusion,
        items,
    }
}

fn decode_transfer(r: &mut Reader<'_, '_>) -> DisposalCase {
    r.o.deny_unknown(
        &["caseNo", "originRegion", "responsibleRegion", "sampleNo", "reportNo", "openedAt", "dueDate"],
        r.cx,
    );
    let due_on = r.date("dueDate");
    if due_on.is_none() {
        r.cx.error(r.o.at("dueDate"), "required (yyyy-MM-dd)");
    }
    DisposalCase {
        case_id: r.s("caseNo"),
        origin_region: r.s("originRegion"),
        responsible_region: r.s("responsibleRegion"),
        sample_id: r.s("sampleNo"),
        report_no: r.s("reportNo"),
        opened_at: r.epoch("openedAt"),
        status: CaseStatus::Transferred as i32,
        due_on,
        events: vec![],
        due_on_provisional: false,
    }
}

fn decode_feedback(r: &mut Reader<'_, '_>) -> CaseFeedback {
    r.o.deny_unknown(&["caseNo", "eventNo", "byRegion", "at", "action", "note", "amountFen"], r.cx);
    let action = match r.int("action", true) {
        Some(n) => match ACTION.iter().find(|(c, _)| *c == n) {
            Some((_, a)) => *a as i32,
            None => {
                r.cx.error(r.o.at("action"), format!("{n} is not an action code (1–10)"));
                0
            }
        },
        None => 0,
    };
    let amount = r.int("amountFen", false);
    CaseFeedback {
        case_id: r.s("caseNo"),
        event: Some(CaseEvent {
            event_id: r.s("eventNo"),
            at: r.epoch("at"),
            by_region: r.s("byRegion"),
            action,
            note: r.s("note"),
            amount,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

fn put_opt(m: &mut Map<String, Value>, key: &str, v: &str) {
    if !v.is_empty() {
        m.insert(key.into(), Value::String(v.into()));
    }
}

fn put(m: &mut Map<String, Value>, key: &str, v: impl Into<Value>) {
    m.insert(key.into(), v.into());
}

fn date_value(d: &Option<Date>) -> Value {
    d.as_ref().map(|d| Value::String(d.to_string())).unwrap_or(Value::Null)
}

fn epoch_value(t: &Option<Timestamp>) -> Value {
    t.as_ref().map(|t| Value::from(timestamp_to_epoch(t))).unwrap_or(Value::Null)
}

fn party_value(p: &Party) -> Value {
    let mut m = Map::new();
    put(&mut m, "name", p.name.clone());
    put(&mut m, "creditCode", p.uscc.clone());
    put(&mut m, "regionCode", p.region.clone());
    put_opt(&mut m, "address", &p.address);
    Value::Object(m)
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
    let mut payload = Map::new();
    let id = record.id();
    match record {
        Record::Plan(p) => {
            if p.channel == PlanChannel::Both as i32 {
                losses.push(Loss {
                    record_id: id.clone(),
                    field: "channel".into(),
                    detail: "BOTH sent to Beijing as ONLINE (Beijing takes online sales only)".into(),
                });
            }
            put(&mut payload, "planCode", p.plan_id.clone());
            put(&mut payload, "title", p.title.clone());
            put(&mut payload, "year", p.year);
            put(&mut payload, "leadRegion", p.lead_region.clone());
            let parts: Vec<Value> = p
                .participants
                .iter()
                .map(|x| {
                    let mut m = Map::new();
                    put(&mut m, "regionCode", x.region.clone());
                    put(&mut m, "quota", x.quota);
                    Value::Object(m)
                })
                .collect();
            put(&mut payload, "participants", parts);
            put(&mut payload, "channel", "ONLINE");
            let cats: Vec<Value> = p.categories.iter().map(|c| Value::String(category_code_of(*c))).collect();
            put(&mut payload, "categoryCodes", cats);
            put(&mut payload, "standards", p.standards.iter().cloned().map(Value::String).collect::<Vec<_>>());
            put(&mut payload, "deadline", date_value(&p.sampling_deadline));
            put(&mut payload, "publishedAt", epoch_value(&p.published_at));
        }
        Record::Sampling(s) => {
            put(&mut payload, "sampleNo", s.sample_id.clone());
            put(&mut payload, "taskCode", s.plan_id.clone());
            put(&mut payload, "regionCode", s.sampling_region.clone());
            put(&mut payload, "samplingAgency", s.sampling_org.clone());
            put(&mut payload, "sampleDate", date_value(&s.sampled_on));
            put(&mut payload, "seller", party_value(&s.seller.clone().unwrap_or_default()));
            if let Some(p) = &s.producer {
                put(&mut payload, "manufacturer", party_value(p));
            }
            let shop = s.shop.clone().unwrap_or_default();
            let mut sm = Map::new();
            put(&mut sm, "platform", shop.platform);
            put(&mut sm, "name", shop.shop_name);
            put_opt(&mut sm, "url", &shop.shop_url);
            put_opt(&mut sm, "orderNo", &shop.order_no);
            put(&mut payload, "shop", Value::Object(sm));
            let p = s.product.clone().unwrap_or_default();
            let mut pm = Map::new();
            put(&mut pm, "name", p.name);
            put(&mut pm, "categoryCode", category_code_of(p.category));
            put_opt(&mut pm, "brand", &p.brand);
            put_opt(&mut pm, "model", &p.model);
            put_opt(&mut pm, "batchNo", &p.batch);
            if p.production_date.is_some() {
                put(&mut pm, "productionDate", date_value(&p.production_date));
            }
            put(&mut payload, "product", Value::Object(pm));
            put(&mut payload, "quantity", s.quantity);
            put(&mut payload, "unit", s.unit.clone());
            put(&mut payload, "reserveQuantity", s.reserve_quantity);
            put(&mut payload, "unitPriceFen", s.unit_price);
            put(&mut payload, "createdAt", epoch_value(&s.recorded_at));
        }
        Record::Inspection(r) => {
            put(&mut payload, "reportNo", r.report_no.clone());
            put(&mut payload, "sampleNo", r.sample_id.clone());
            let mut lab = Map::new();
            put(&mut lab, "name", r.lab_name.clone());
            put(&mut lab, "cma", r.lab_cma.clone());
            put(&mut payload, "lab", Value::Object(lab));
            put(&mut payload, "issueDate", date_value(&r.issued_on));
            put(&mut payload, "conclusion", if r.conclusion == Conclusion::Nonconforming as i32 { 1 } else { 0 });
            let mut items = Vec::new();
            for (i, it) in r.items.iter().enumerate() {
                if it.verdict != Verdict::Fail as i32 {
                    losses.push(Loss {
                        record_id: id.clone(),
                        field: format!("items[{i}]"),
                        detail: format!("passing item '{}' has no place in a Beijing report", it.name),
                    });
                    continue;
                }
                let mut m = Map::new();
                put(&mut m, "name", it.name.clone());
                put(&mut m, "standard", it.standard.clone());
                put_opt(&mut m, "requirement", &it.requirement);
                put_opt(&mut m, "measured", &it.measured);
                put_opt(&mut m, "unit", &it.unit);
                put(&mut m, "severity", if it.severity == Severity::Serious as i32 { 1 } else { 2 });
                items.push(Value::Object(m));
            }
            put(&mut payload, "unqualifiedItems", items);
        }
        Record::CaseTransfer(c) => {
            crate::model::transfer_losses(c, &mut losses);
            put(&mut payload, "caseNo", c.case_id.clone());
            put(&mut payload, "originRegion", c.origin_region.clone());
            put(&mut payload, "responsibleRegion", c.responsible_region.clone());
            put(&mut payload, "sampleNo", c.sample_id.clone());
            put(&mut payload, "reportNo", c.report_no.clone());
            put(&mut payload, "openedAt", epoch_value(&c.opened_at));
            put(&mut payload, "dueDate", date_value(&c.due_on));
        }
        Record::CaseFeedback(f) => {
            let e = f.event.clone().unwrap_or_default();
            put(&mut payload, "caseNo", f.case_id.clone());
            put(&mut payload, "eventNo", e.event_id);
            put(&mut payload, "byRegion", e.by_region);
            put(&mut payload, "at", epoch_value(&e.at));
            let code = ACTION.iter().find(|(_, a)| *a as i32 == e.action).map(|(c, _)| *c).unwrap_or(0);
            put(&mut payload, "action", code);
            put_opt(&mut payload, "note", &e.note);
            if let Some(a) = e.amount {
                put(&mut payload, "amountFen", a);
            }
        }
        _ => {}
    }
    let mut root = Map::new();
    put(&mut root, "messageId", envelope.message_id.clone());
    put(&mut root, "type", type_name);
    put(&mut root, "from", envelope.sender.clone());
    put(&mut root, "to", envelope.receiver.clone());
    put(&mut root, "timestamp", epoch_value(&envelope.sent_at));
    put(&mut root, "payload", Value::Object(payload));
    Ok(Encoded { bytes: json::to_bytes(&Value::Object(root)), losses })
}
