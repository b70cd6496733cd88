//! Zhejiang exchange interface (浙江省市场监管数据交换 XML 1.0): XML in UTF-8, every element in
//! the namespace `urn:zjamr:yrd:exchange:1`, absent values omitted, 1–500 records per message.
//! See `docs/partners/zhejiang.md`.

use crate::json::{category_value, code_of, lookup, Ctx};
use crate::model::*;
use crate::money::{format_yuan, parse_yuan};
use crate::paths::map_path;
use crate::xml::{self, Element, Next, Ns, Stream, Writer};
use yrdx_proto::civil::{parse_rfc3339, BeijingTime};
use yrdx_proto::codes::{category_code_of, category_from_code};
use yrdx_proto::v1::*;
use yrdx_proto::{rules, Date, Timestamp};

/// Zhejiang's envelope id.
pub const PARTNER_ID: &str = "330000";
/// The namespace of every element.
pub const NAMESPACE: &str = "urn:zjamr:yrd:exchange:1";
/// Most records in one message.
pub const MAX_RECORDS: usize = 500;

const KINDS: &[(&str, RecordKind)] = &[
    ("Plan", RecordKind::Plan),
    ("Sampling", RecordKind::Sampling),
    ("Inspection", RecordKind::Inspection),
    ("CaseTransfer", RecordKind::CaseTransfer),
    ("CaseFeedback", RecordKind::CaseFeedback),
    ("RiskAlert", RecordKind::RiskSignal),
];
const PLAN_CHANNEL: &[(&str, i32)] = &[("offline", 1), ("online", 2), ("both", 3)];
const SALES_CHANNEL: &[(&str, i32)] = &[("offline", 1), ("online", 2)];
const CONCLUSION: &[(&str, i32)] = &[("conforming", 1), ("nonconforming", 2)];
const VERDICT: &[(&str, i32)] = &[("pass", 1), ("fail", 2)];
const SEVERITY: &[(&str, i32)] = &[("serious", Severity::Serious as i32), ("general", Severity::General as i32)];
const ACTION: &[(&str, i32)] = &[
    ("accept", CaseAction::Accept as i32),
    ("return", CaseAction::Return as i32),
    ("notify", CaseAction::Notify as i32),
    ("objection", CaseAction::Objection as i32),
    ("recheck-pass", CaseAction::RecheckPass as i32),
    ("recheck-fail", CaseAction::RecheckFail as i32),
    ("rectify-order", CaseAction::RectifyOrder as i32),
    ("rectify-verified", CaseAction::RectifyVerified as i32),
    ("penalty", CaseAction::Penalty as i32),
    ("close", CaseAction::Close as i32),
];
const STATE: &[(&str, i32)] = &[("new", 1), ("updated", 2), ("withdrawn", 3)];
const SOURCE: &[(&str, i32)] = &[
    ("spot-check", 1),
    ("enforcement", 2),
    ("routine-inspection", 3),
    ("risk-monitoring", 4),
    ("recall", 5),
    ("injury", 6),
    ("complaint", 7),
    ("public-opinion", 8),
];
const LEVEL: &[(&str, i32)] = &[("high", 1), ("elevated", 2), ("medium", 3), ("low", 4)];
const HAZARD: &[(&str, i32)] = &[
    ("electric-shock", Hazard::ElectricShock as i32),
    ("fire", Hazard::Fire as i32),
    ("burn", Hazard::Burn as i32),
    ("chemical", Hazard::Chemical as i32),
    ("mechanical", Hazard::Mechanical as i32),
    ("choking", Hazard::Choking as i32),
    ("explosion", Hazard::Explosion as i32),
    ("environment", Hazard::Environment as i32),
    ("other", Hazard::Other as i32),
];

const PARTY_PATHS: &[(&str, &str)] = &[
    ("seller", "Seller"),
    ("seller.name", "Seller/Name"),
    ("seller.uscc", "Seller/CreditCode"),
    ("seller.region", "Seller/Region"),
    ("seller.address", "Seller/Address"),
    ("producer", "Producer"),
    ("producer.name", "Producer/Name"),
    ("producer.uscc", "Producer/CreditCode"),
    ("producer.region", "Producer/Region"),
    ("producer.address", "Producer/Address"),
    ("shop", "Shop"),
    ("shop.platform", "Shop/Platform"),
    ("shop.shop_name", "Shop/ShopName"),
    ("shop.shop_url", "Shop/ShopUrl"),
    ("shop.order_no", "Shop/OrderNo"),
    ("product", "Product"),
    ("product.name", "Product/Name"),
    ("product.category", "Product/Category"),
    ("product.brand", "Product/Brand"),
    ("product.model", "Product/Model"),
    ("product.batch", "Product/Batch"),
    ("product.production_date", "Product/ProductionDate"),
];

fn paths_for(kind: RecordKind) -> &'static [(&'static str, &'static str)] {
    match kind {
        RecordKind::Plan => &[
            ("plan_id", "@id"),
            ("title", "Title"),
            ("year", "Year"),
            ("lead_region", "LeadRegion"),
            ("participants", "Participants"),
            ("participants[]", "Participants/Participant[{}]"),
            ("participants[].region", "Participants/Participant[{}]/@region"),
            ("participants[].quota", "Participants/Participant[{}]/@quota"),
            ("channel", "Channel"),
            ("categories", "Categories"),
            ("categories[]", "Categories/Category[{}]"),
            ("standards", "Standards"),
            ("standards[]", "Standards/Standard[{}]"),
            ("sampling_deadline", "SamplingDeadline"),
            ("published_at", "PublishedAt"),
        ],
        RecordKind::Sampling => &[
            ("sample_id", "@id"),
            ("plan_id", "PlanRef"),
            ("sampling_region", "SamplingRegion"),
            ("sampling_org", "SamplingOrg"),
            ("sampled_on", "SampledOn"),
            ("channel", "Channel"),
            ("quantity", "Quantity"),
            ("unit", "Quantity/@unit"),
            ("reserve_quantity", "ReserveQuantity"),
            ("unit_price", "UnitPrice"),
            ("recorded_at", "RecordedAt"),
        ],
        RecordKind::Inspection => &[
            ("report_no", "@id"),
            ("sample_id", "@sample"),
            ("lab_name", "Lab"),
            ("lab_cma", "Lab/@cma"),
            ("issued_on", "IssuedOn"),
            ("conclusion", "Conclusion"),
            ("items", "Items"),
            ("items[]", "Items/Item[{}]"),
            ("items[].name", "Items/Item[{}]/Name"),
            ("items[].standard", "Items/Item[{}]/Standard"),
            ("items[].requirement", "Items/Item[{}]/Requirement"),
            ("items[].measured", "Items/Item[{}]/Measured"),
            ("items[].unit", "Items/Item[{}]/Unit"),
            ("items[].verdict", "Items/Item[{}]/@verdict"),
            ("items[].severity", "Items/Item[{}]/@severity"),
        ],
        RecordKind::CaseTransfer => &[
            ("case_id", "@id"),
            ("origin_region", "Origin"),
            ("responsible_region", "Responsible"),
            ("sample_id", "SampleRef"),
            ("report_no", "ReportRef"),
            ("opened_at", "OpenedAt"),
            ("due_on", "DueOn"),
        ],
        RecordKind::CaseFeedback => &[
            ("case_id", "@case"),
            ("event", "@id"),
            ("event.event_id", "@id"),
            ("event.by_region", "By"),
            ("event.at", "At"),
            ("event.action", "Action"),
            ("event.note", "Note"),
            ("event.amount", "Amount"),
        ],
        _ => &[
            ("signal_id", "@id"),
            ("revision", "@revision"),
            ("state", "@state"),
            ("reporting_region", "ReportedBy"),
            ("observed_on", "ObservedOn"),
            ("source", "Source"),
            ("hazards", "Hazards"),
            ("hazards[]", "Hazards/Hazard[{}]"),
            ("level", "Level"),
            ("summary", "Summary"),
            ("nationwide", "Nationwide"),
            ("related_samples", "RelatedSamples"),
            ("related_samples[]", "RelatedSamples/SampleRef[{}]"),
            ("recommended_measures", "RecommendedMeasures"),
        ],
    }
}

fn zj_path(kind: RecordKind, canonical: &str) -> String {
    map_path(paths_for(kind), canonical, 1)
        .or_else(|| map_path(PARTY_PATHS, canonical, 1))
        .unwrap_or_else(|| canonical.to_string())
}

/// An element being read at its path.
struct El<'e> {
    e: Element<'e>,
    path: String,
}

impl<'e> El<'e> {
    fn child_path(&self, name: &str) -> String {
        format!("{}/{name}", self.path)
    }

    /// Checks children (names, namespace, no repeats unless `repeat`) and attributes. Paths are
    /// only formatted for problems: this runs for every element of every record.
    fn check(&self, children: &[&str], repeat: &[&str], attrs: &[&str], cx: &mut Ctx) {
        for (i, c) in self.e.children().enumerate() {
            let name = c.name();
            if *c.ns() != Ns::Expected {
                cx.error(self.child_path(name), format!("element <{name}> is not in the namespace {NAMESPACE}"));
            } else if !children.contains(&name) {
                cx.error(
                    self.child_path(name),
                    format!("unknown element <{name}> (expected: {})", children.join(", ")),
                );
            } else if !repeat.contains(&name) && self.e.children().take(i).any(|p| p.name() == name) {
                cx.error(self.child_path(name), format!("<{name}> appears more than once"));
            }
        }
        for (k, _) in self.e.attrs() {
            if !attrs.contains(&k) {
                cx.error(format!("{}/@{k}", self.path), format!("unknown attribute '{k}'"));
            }
        }
        if self.e.mixed() {
            cx.error(self.path.clone(), "unexpected text beside child elements");
        }
    }

    fn child(&self, name: &str) -> Option<El<'e>> {
        self.e.child(name).map(|c| El { e: c, path: self.child_path(name) })
    }

    /// The trimmed text of an element; an empty element is an error (absent values are omitted).
    fn own_text(&self, cx: &mut Ctx) -> String {
        leaf_text(self.e, || self.path.clone(), cx)
    }

    fn text(&self, name: &str, cx: &mut Ctx) -> String {
        match self.e.child(name) {
            Some(c) => leaf_text(c, || self.child_path(name), cx),
            None => String::new(),
        }
    }

    fn attr(&self, name: &str) -> String {
        self.e.attr(name).map(|v| v.trim().to_string()).unwrap_or_default()
    }

    fn date(&self, name: &str, cx: &mut Ctx) -> Option<Date> {
        let text = self.text(name, cx);
        if text.is_empty() {
            return None;
        }
        let d = Date::parse_iso(&text);
        if d.is_none() {
            cx.error(self.child_path(name), format!("'{text}' is not an xs:date yyyy-MM-dd"));
        }
        d
    }

    fn time(&self, name: &str, cx: &mut Ctx) -> Option<Timestamp> {
        let text = self.text(name, cx);
        if text.is_empty() {
            return None;
        }
        let t = parse_rfc3339(&text);
        if t.is_none() {
            cx.error(self.child_path(name), format!("'{text}' is not an xs:dateTime with an offset"));
        }
        t
    }

    fn int_text(path: String, text: &str, cx: &mut Ctx) -> i32 {
        if text.is_empty() {
            return 0;
        }
        match text.parse::<i32>() {
            Ok(v) if text.bytes().all(|b| b.is_ascii_digit()) => v,
            _ => {
                cx.error(path, format!("'{text}' is not a non-negative integer"));
                0
            }
        }
    }

    fn int(&self, name: &str, cx: &mut Ctx) -> i32 {
        let text = self.text(name, cx);
        if text.is_empty() && self.child(name).is_none() {
            cx.error(self.child_path(name), "required");
        }
        El::int_text(self.child_path(name), &text, cx)
    }

    fn code(&self, name: &str, table: &[(&str, i32)], cx: &mut Ctx) -> i32 {
        let text = self.text(name, cx);
        match table.iter().find(|(c, _)| *c == text) {
            Some((_, v)) => *v,
            None => lookup(&text, table, &self.child_path(name), cx),
        }
    }

    fn money(&self, name: &str, cx: &mut Ctx) -> Option<i64> {
        let c = self.child(name)?;
        c.check(&[], &[], &["currency"], cx);
        if c.e.attr("currency") != Some("CNY") {
            cx.error(format!("{}/@currency", c.path), "required: currency=\"CNY\"");
        }
        let text = c.own_text(cx);
        match parse_yuan(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                if !text.is_empty() {
                    cx.error(c.path.clone(), e);
                }
                None
            }
        }
    }

    fn category(&self, name: &str, cx: &mut Ctx) -> i32 {
        let text = self.text(name, cx);
        match category_from_code(&text) {
            Some(c) => c as i32,
            None => category_value(&text, &self.child_path(name), cx),
        }
    }

    /// The text of each `item` child of the list element `list`.
    fn list_texts(&self, list: &str, item: &str, cx: &mut Ctx) -> Vec<(String, String)> {
        let Some(l) = self.child(list) else {
            return vec![];
        };
        l.check(&[item], &[item], &[], cx);
        l.e.children()
            .filter(|c| c.name() == item)
            .enumerate()
            .map(|(i, c)| {
                let el = El { e: c, path: format!("{}/{item}[{}]", l.path, i + 1) };
                let t = el.own_text(cx);
                (el.path, t)
            })
            .collect()
    }
}

/// The trimmed text of a leaf element; `path` is only built for a problem.
fn leaf_text(e: Element<'_>, path: impl Fn() -> String, cx: &mut Ctx) -> String {
    if e.has_children() {
        cx.error(path(), "expected text, found child elements");
        return String::new();
    }
    let t = e.text().trim();
    if t.is_empty() {
        cx.error(path(), "empty element: an absent value is an omitted element, never an empty one");
    }
    t.to_string()
}

/// Decodes a Zhejiang message with every problem in XPath form
/// (`/Exchange/Records/Sampling[1]/Seller/CreditCode`).
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Document, DecodeError> {
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge { size: bytes.len(), limit: limits.max_bytes });
    }
    if let Some(enc) = xml::sniff_encoding(bytes) {
        if !enc.eq_ignore_ascii_case("UTF-8") {
            return Err(DecodeError::refused("/", format!("declared encoding '{enc}': Zhejiang documents are UTF-8")));
        }
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        DecodeError::refused("/", format!("not valid UTF-8: invalid byte at offset {}", e.valid_up_to()))
    })?;
    let mut stream = Stream::new(text, limits, Some(NAMESPACE));
    let mut cx = Ctx::default();
    let root = match stream.next()? {
        Next::Start(el, empty) => (el, empty),
        _ => return Err(DecodeError::refused("/", "no root element")),
    };
    if root.0.name != "Exchange" || root.0.ns != Ns::Expected {
        return Err(DecodeError::refused("/", format!("the root element must be <Exchange> in {NAMESPACE}")));
    }
    if root.0.attr("version") != Some("1.0") {
        cx.error("/Exchange/@version", "required: version=\"1.0\"");
    }
    for (k, _) in &root.0.attrs {
        if k != "version" {
            cx.error(format!("/Exchange/@{k}"), format!("unknown attribute '{k}'"));
        }
    }
    let mut envelope = Envelope::default();
    let mut kind: Option<(RecordKind, &str)> = None;
    let mut records = Vec::new();
    let (mut saw_header, mut saw_records) = (false, false);
    if !root.1 {
        loop {
            match stream.next()? {
                Next::Start(el, empty) => {
                    let ok_ns = el.ns == Ns::Expected;
                    match el.name.as_str() {
                        "Header" if ok_ns && !saw_header => {
                            saw_header = true;
                            let h = stream.subtree(el, empty)?;
                            let (env, k) = decode_header(h.root(), &mut cx);
                            envelope = env;
                            kind = k;
                        }
                        "Records" if ok_ns && !saw_records && saw_header => {
                            saw_records = true;
                            let count = read_records(&mut stream, empty, kind, &mut records, &mut cx)?;
                            if !(1..=MAX_RECORDS).contains(&count) {
                                cx.error(
                                    "/Exchange/Records",
                                    format!("expected 1–{MAX_RECORDS} records, found {count}"),
                                );
                            }
                        }
                        other => {
                            let path = format!("/Exchange/{other}");
                            let why = if ok_ns {
                                "expected <Header> then <Records>, once each"
                            } else {
                                "not in the namespace urn:zjamr:yrd:exchange:1"
                            };
                            cx.error(path, format!("unexpected element <{other}> ({why})"));
                            stream.subtree(el, empty)?;
                        }
                    }
                }
                Next::End => break,
                Next::Eof => return Err(DecodeError::refused("/", "document ends inside <Exchange>")),
            }
        }
    }
    if !saw_header {
        cx.error("/Exchange/Header", "required");
    }
    if !saw_records {
        cx.error("/Exchange/Records", "required");
    }
    if cx.problems.is_empty() {
        Ok(Document { envelope, records })
    } else {
        Err(DecodeError::Invalid(cx.problems))
    }
}

fn read_records(
    stream: &mut Stream<'_>,
    empty: bool,
    kind: Option<(RecordKind, &str)>,
    records: &mut Vec<Record>,
    cx: &mut Ctx,
) -> Result<usize, DecodeError> {
    if empty {
        return Ok(0);
    }
    let mut count = 0;
    loop {
        match stream.next()? {
            Next::Start(rec, empty) => {
                count += 1;
                // One record's tree at a time: decoded, then dropped.
                let (rec_name, rec_in_ns) = (rec.name.clone(), rec.ns == Ns::Expected);
                let tree = stream.subtree(rec, empty)?;
                let path = format!("/Exchange/Records/{rec_name}[{count}]");
                cx.record_id = None;
                let start = cx.problems.len();
                match kind {
                    Some((k, name)) if rec_name == name && rec_in_ns => {
                        let record = decode_record(k, El { e: tree.root(), path: path.clone() }, cx);
                        cx.record_id = Some(record.id());
                        cx.rule_violations(
                            start,
                            record
                                .validate()
                                .into_iter()
                                .map(|v| (format!("{path}/{}", zj_path(k, &v.path)), v.message)),
                        );
                        records.push(record);
                    }
                    Some((_, name)) => {
                        cx.error(path, format!("<{rec_name}> in a message whose Kind is {name}"));
                    }
                    None => {}
                }
            }
            Next::End => return Ok(count),
            Next::Eof => return Err(DecodeError::refused("/", "document ends inside <Records>")),
        }
    }
}

fn decode_header(h: Element<'_>, cx: &mut Ctx) -> (Envelope, Option<(RecordKind, &'static str)>) {
    let el = El { e: h, path: "/Exchange/Header".into() };
    el.check(&["MessageId", "Kind", "Sender", "Receiver", "SentAt"], &[], &[], cx);
    let message_id = el.text("MessageId", cx);
    if !rules::IdPattern::Message.matches(&message_id) {
        cx.error("/Exchange/Header/MessageId", format!("'{message_id}' is not a message id (1–64 of [A-Za-z0-9_-])"));
    }
    let kind_text = el.text("Kind", cx);
    let kind = KINDS.iter().find(|(n, _)| *n == kind_text).map(|(n, k)| (*k, *n));
    if kind.is_none() {
        cx.error(
            "/Exchange/Header/Kind",
            format!("'{kind_text}' is not a Kind (Plan, Sampling, Inspection, CaseTransfer, CaseFeedback, RiskAlert)"),
        );
    }
    let sender = el.text("Sender", cx);
    let receiver = el.text("Receiver", cx);
    for (name, v) in [("Sender", &sender), ("Receiver", &receiver)] {
        if !rules::is_region(v) && !rules::is_samr(v) {
            cx.error(format!("/Exchange/Header/{name}"), format!("'{v}' is not a region code or SAMR"));
        }
    }
    let sent_at = el.time("SentAt", cx);
    if sent_at.is_none() {
        cx.error("/Exchange/Header/SentAt", "required (xs:dateTime with an offset)");
    }
    (Envelope { message_id, sender, receiver, sent_at }, kind)
}

fn decode_record(kind: RecordKind, el: El<'_>, cx: &mut Ctx) -> Record {
    cx.record_id = Some(el.attr("id"));
    match kind {
        RecordKind::Plan => Record::Plan(decode_plan(&el, cx)),
        RecordKind::Sampling => Record::Sampling(decode_sampling(&el, cx)),
        RecordKind::Inspection => Record::Inspection(decode_inspection(&el, cx)),
        RecordKind::CaseTransfer => Record::CaseTransfer(decode_transfer(&el, cx)),
        RecordKind::CaseFeedback => Record::CaseFeedback(decode_feedback(&el, cx)),
        _ => Record::RiskSignal(decode_risk(&el, cx)),
    }
}

fn decode_plan(el: &El<'_>, cx: &mut Ctx) -> SpotCheckPlan {
    el.check(
        &[
            "Title",
            "Year",
            "LeadRegion",
            "Participants",
            "Channel",
            "Categories",
            "Standards",
            "SamplingDeadline",
            "PublishedAt",
        ],
        &[],
        &["id"],
        cx,
    );
    let mut participants = Vec::new();
    if let Some(list) = el.child("Participants") {
        list.check(&["Participant"], &["Participant"], &[], cx);
        for (i, p) in list.e.children().filter(|c| c.name() == "Participant").enumerate() {
            let pe = El { e: p, path: format!("{}/Participant[{}]", list.path, i + 1) };
            pe.check(&[], &[], &["region", "quota"], cx);
            let quota_text = pe.attr("quota");
            if quota_text.is_empty() {
                cx.error(format!("{}/@quota", pe.path), "required");
            }
            participants.push(PlanParticipant {
                region: pe.attr("region"),
                quota: El::int_text(format!("{}/@quota", pe.path), &quota_text, cx),
            });
        }
    }
    let categories =
        el.list_texts("Categories", "Category", cx).into_iter().map(|(p, t)| category_value(&t, &p, cx)).collect();
    SpotCheckPlan {
        plan_id: el.attr("id"),
        title: el.text("Title", cx),
        year: el.int("Year", cx),
        lead_region: el.text("LeadRegion", cx),
        participants,
        channel: el.code("Channel", PLAN_CHANNEL, cx),
        categories,
        standards: el.list_texts("Standards", "Standard", cx).into_iter().map(|(_, t)| t).collect(),
        sampling_deadline: el.date("SamplingDeadline", cx),
        published_at: el.time("PublishedAt", cx),
    }
}

fn decode_party(el: Option<El<'_>>, cx: &mut Ctx) -> Option<Party> {
    let el = el?;
    el.check(&["Name", "CreditCode", "Region", "Address"], &[], &[], cx);
    Some(Party {
        name: el.text("Name", cx),
        uscc: el.text("CreditCode", cx),
        region: el.text("Region", cx),
        address: el.text("Address", cx),
    })
}

fn decode_product(el: Option<El<'_>>, cx: &mut Ctx) -> Option<Product> {
    let el = el?;
    el.check(&["Name", "Category", "Brand", "Model", "Batch", "ProductionDate"], &[], &[], cx);
    Some(Product {
        name: el.text("Name", cx),
        category: el.category("Category", cx),
        brand: el.text("Brand", cx),
        model: el.text("Model", cx),
        batch: el.text("Batch", cx),
        production_date: el.date("ProductionDate", cx),
    })
}

fn decode_sampling(el: &El<'_>, cx: &mut Ctx) -> SamplingRecord {
    el.check(
        &[
            "PlanRef",
            "SamplingRegion",
            "SamplingOrg",
            "SampledOn",
            "Channel",
            "Seller",
            "Producer",
            "Shop",
            "Product",
            "Quantity",
            "ReserveQuantity",
            "UnitPrice",
            "RecordedAt",
        ],
        &[],
        &["id"],
        cx,
    );
    let shop = el.child("Shop").map(|s| {
        s.check(&["Platform", "ShopName", "ShopUrl", "OrderNo"], &[], &[], cx);
        OnlineShop {
            platform: s.text("Platform", cx),
            shop_name: s.text("ShopName", cx),
            shop_url: s.text("ShopUrl", cx),
            order_no: s.text("OrderNo", cx),
        }
    });
    let (quantity, unit) = match el.child("Quantity") {
        Some(q) => {
            q.check(&[], &[], &["unit"], cx);
            let text = q.own_text(cx);
            (El::int_text(q.path.clone(), &text, cx), q.attr("unit"))
        }
        None => {
            cx.error(el.child_path("Quantity"), "required");
            (0, String::new())
        }
    };
    let unit_price = el.money("UnitPrice", cx);
    if el.child("UnitPrice").is_none() {
        cx.error(el.child_path("UnitPrice"), "required (yuan with two decimals, currency=\"CNY\")");
    }
    SamplingRecord {
        sample_id: el.attr("id"),
        plan_id: el.text("PlanRef", cx),
        sampling_region: el.text("SamplingRegion", cx),
        sampling_org: el.text("SamplingOrg", cx),
        sampled_on: el.date("SampledOn", cx),
        channel: el.code("Channel", SALES_CHANNEL, cx),
        seller: decode_party(el.child("Seller"), cx),
        producer: decode_party(el.child("Producer"), cx),
        shop,
        product: decode_product(el.child("Product"), cx),
        quantity,
        unit,
        reserve_quantity: el.int("ReserveQuantity", cx),
        unit_price: unit_price.unwrap_or(0),
        recorded_at: el.time("RecordedAt", cx),
    }
}

fn decode_inspection(el: &El<'_>, cx: &mut Ctx) -> InspectionResult {
    el.check(&["Lab", "IssuedOn", "Conclusion", "Items"], &[], &["id", "sample"], cx);
    let (lab_name, lab_cma) = match el.child("Lab") {
        Some(l) => {
            l.check(&[], &[], &["cma"], cx);
            (l.own_text(cx), l.attr("cma"))
        }
        None => (String::new(), String::new()),
    };
    let mut items = Vec::new();
    if let Some(list) = el.child("Items") {
        list.check(&["Item"], &["Item"], &[], cx);
        for (i, it) in list.e.children().filter(|c| c.name() == "Item").enumerate() {
            let ie = El { e: it, path: format!("{}/Item[{}]", list.path, i + 1) };
            ie.check(&["Name", "Standard", "Requirement", "Measured", "Unit"], &[], &["verdict", "severity"], cx);
            let verdict = lookup(&ie.attr("verdict"), VERDICT, &format!("{}/@verdict", ie.path), cx);
            let severity_text = ie.attr("severity");
            let severity = if severity_text.is_empty() {
                if verdict == Verdict::Fail as i32 {
                    cx.error(format!("{}/@severity", ie.path), "required on a failing item (serious or general)");
                }
                Severity::None as i32
            } else {
                let s = lookup(&severity_text, SEVERITY, &format!("{}/@severity", ie.path), cx);
                if verdict == Verdict::Pass as i32 {
                    cx.error(format!("{}/@severity", ie.path), "only failing items carry a severity");
                }
                s
            };
            items.push(InspectionItem {
                name: ie.text("Name", cx),
                standard: ie.text("Standard", cx),
                requirement: ie.text("Requirement", cx),
                measured: ie.text("Measured", cx),
                unit: ie.text("Unit", cx),
                verdict,
                severity,
            });
        }
    }
    InspectionResult {
        report_no: el.attr("id"),
        sample_id: el.attr("sample"),
        lab_name,
        lab_cma,
        issued_on: el.date("IssuedOn", cx),
        conclusion: el.code("Conclusion", CONCLUSION, cx),
        items,
    }
}

fn decode_transfer(el: &El<'_>, cx: &mut Ctx) -> DisposalCase {
    el.check(&["Origin", "Responsible", "SampleRef", "ReportRef", "OpenedAt", "DueOn"], &[], &["id"], cx);
    let due_on = el.date("DueOn", cx);
    if due_on.is_none() {
        cx.error(el.child_path("DueOn"), "required (xs:date)");
    }
    DisposalCase {
        case_id: el.attr("id"),
        origin_region: el.text("Origin", cx),
        responsible_region: el.text("Responsible", cx),
        sample_id: el.text("SampleRef", cx),
        report_no: el.text("ReportRef", cx),
        opened_at: el.time("OpenedAt", cx),
        status: CaseStatus::Transferred as i32,
        due_on,
        events: vec![],
    }
}

fn decode_feedback(el: &El<'_>, cx: &mut Ctx) -> CaseFeedback {
    cx.record_id = Some(el.attr("id"));
    el.check(&["By", "At", "Action", "Note", "Amount"], &[], &["id", "case"], cx);
    CaseFeedback {
        case_id: el.attr("case"),
        event: Some(CaseEvent {
            event_id: el.attr("id"),
            at: el.time("At", cx),
            by_region: el.text("By", cx),
            action: el.code("Action", ACTION, cx),
            note: el.text("Note", cx),
            amount: el.money("Amount", cx),
        }),
    }
}

fn decode_risk(el: &El<'_>, cx: &mut Ctx) -> RiskSignal {
    el.check(
        &[
            "ReportedBy",
            "ObservedOn",
            "Source",
            "Product",
            "Hazards",
            "Level",
            "Summary",
            "Nationwide",
            "RelatedSamples",
            "RecommendedMeasures",
        ],
        &[],
        &["id", "revision", "state"],
        cx,
    );
    let revision_text = el.attr("revision");
    if revision_text.is_empty() {
        cx.error(format!("{}/@revision", el.path), "required");
    }
    let hazards = el.list_texts("Hazards", "Hazard", cx).into_iter().map(|(p, t)| lookup(&t, HAZARD, &p, cx)).collect();
    let nationwide = match el.text("Nationwide", cx).as_str() {
        "true" => true,
        "false" => false,
        "" => {
            cx.error(el.child_path("Nationwide"), "required (true or false)");
            false
        }
        other => {
            cx.error(el.child_path("Nationwide"), format!("'{other}' is not true or false"));
            false
        }
    };
    if el.child("RelatedSamples").is_some_and(|r| !r.e.has_children()) {
        cx.error(el.child_path("RelatedSamples"), "omitted when there are no related samples, never empty");
    }
    RiskSignal {
        signal_id: el.attr("id"),
        revision: El::int_text(format!("{}/@revision", el.path), &revision_text, cx),
        state: lookup(&el.attr("state"), STATE, &format!("{}/@state", el.path), cx),
        reporting_region: el.text("ReportedBy", cx),
        observed_on: el.date("ObservedOn", cx),
        source: el.code("Source", SOURCE, cx),
        product: decode_product(el.child("Product"), cx),
        hazards,
        level: el.code("Level", LEVEL, cx),
        summary: el.text("Summary", cx),
        nationwide,
        related_samples: el.list_texts("RelatedSamples", "SampleRef", cx).into_iter().map(|(_, t)| t).collect(),
        recommended_measures: el.text("RecommendedMeasures", cx),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

fn time_text(t: &Option<Timestamp>) -> String {
    t.as_ref().map(|t| BeijingTime::of(t).to_rfc3339()).unwrap_or_default()
}

fn date_text(d: &Option<Date>) -> String {
    d.as_ref().map(Date::to_string).unwrap_or_default()
}

fn write_party(w: &mut Writer, name: &str, p: &Party) {
    w.open(name, &[]);
    w.leaf("Name", &[], &p.name);
    w.leaf("CreditCode", &[], &p.uscc);
    w.leaf("Region", &[], &p.region);
    w.opt_leaf("Address", &p.address);
    w.close(name);
}

fn write_product(w: &mut Writer, p: &Product) {
    w.open("Product", &[]);
    w.leaf("Name", &[], &p.name);
    w.leaf("Category", &[], &category_code_of(p.category));
    w.opt_leaf("Brand", &p.brand);
    w.opt_leaf("Model", &p.model);
    w.opt_leaf("Batch", &p.batch);
    w.opt_leaf("ProductionDate", &date_text(&p.production_date));
    w.close("Product");
}

/// Writes a list element: open/close with items, or `<Name/>` when empty.
fn write_list(w: &mut Writer, list: &str, item: &str, values: &[String]) {
    if values.is_empty() {
        w.leaf(list, &[], "");
        return;
    }
    w.open(list, &[]);
    for v in values {
        w.leaf(item, &[], v);
    }
    w.close(list);
}

/// Encodes canonical records (one kind, 1–500) as a Zhejiang message, deterministically.
pub fn encode(envelope: &Envelope, records: &[Record]) -> Result<Encoded, EncodeError> {
    let kind = batch_kind(records, MAX_RECORDS, "Zhejiang")?;
    let kind_name =
        KINDS.iter().find(|(_, k)| *k == kind).map(|(n, _)| *n).ok_or_else(|| EncodeError::Unsupported {
            partner: "Zhejiang",
            kind,
            record_id: records[0].id(),
            reason: "the Zhejiang interface has no Kind for this record".into(),
        })?;
    check_before_encode(records)?;
    let mut losses = Vec::new();
    precision_losses(records, 1_000_000_000, &mut losses);
    let mut w = Writer::new(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    w.open("Exchange", &[("xmlns", NAMESPACE), ("version", "1.0")]);
    w.open("Header", &[]);
    w.leaf("MessageId", &[], &envelope.message_id);
    w.leaf("Kind", &[], kind_name);
    w.leaf("Sender", &[], &envelope.sender);
    w.leaf("Receiver", &[], &envelope.receiver);
    w.leaf("SentAt", &[], &time_text(&envelope.sent_at));
    w.close("Header");
    w.open("Records", &[]);
    for r in records {
        write_record(&mut w, r, &mut losses);
    }
    w.close("Records");
    w.close("Exchange");
    Ok(Encoded { bytes: w.out.into_bytes(), losses })
}

fn write_record(w: &mut Writer, record: &Record, losses: &mut Vec<Loss>) {
    match record {
        Record::Plan(p) => {
            w.open("Plan", &[("id", &p.plan_id)]);
            w.leaf("Title", &[], &p.title);
            w.leaf("Year", &[], &p.year.to_string());
            w.leaf("LeadRegion", &[], &p.lead_region);
            if p.participants.is_empty() {
                w.leaf("Participants", &[], "");
            } else {
                w.open("Participants", &[]);
                for x in &p.participants {
                    w.leaf("Participant", &[("region", &x.region), ("quota", &x.quota.to_string())], "");
                }
                w.close("Participants");
            }
            w.leaf("Channel", &[], code_of(p.channel, PLAN_CHANNEL));
            let cats: Vec<String> = p.categories.iter().map(|c| category_code_of(*c)).collect();
            write_list(w, "Categories", "Category", &cats);
            write_list(w, "Standards", "Standard", &p.standards);
            w.leaf("SamplingDeadline", &[], &date_text(&p.sampling_deadline));
            w.leaf("PublishedAt", &[], &time_text(&p.published_at));
            w.close("Plan");
        }
        Record::Sampling(s) => {
            w.open("Sampling", &[("id", &s.sample_id)]);
            w.leaf("PlanRef", &[], &s.plan_id);
            w.leaf("SamplingRegion", &[], &s.sampling_region);
            w.leaf("SamplingOrg", &[], &s.sampling_org);
            w.leaf("SampledOn", &[], &date_text(&s.sampled_on));
            w.leaf("Channel", &[], code_of(s.channel, SALES_CHANNEL));
            write_party(w, "Seller", &s.seller.clone().unwrap_or_default());
            if let Some(p) = &s.producer {
                write_party(w, "Producer", p);
            }
            if let Some(shop) = &s.shop {
                w.open("Shop", &[]);
                w.leaf("Platform", &[], &shop.platform);
                w.leaf("ShopName", &[], &shop.shop_name);
                w.opt_leaf("ShopUrl", &shop.shop_url);
                w.opt_leaf("OrderNo", &shop.order_no);
                w.close("Shop");
            }
            write_product(w, &s.product.clone().unwrap_or_default());
            w.leaf("Quantity", &[("unit", &s.unit)], &s.quantity.to_string());
            w.leaf("ReserveQuantity", &[], &s.reserve_quantity.to_string());
            w.leaf("UnitPrice", &[("currency", "CNY")], &format_yuan(s.unit_price));
            w.leaf("RecordedAt", &[], &time_text(&s.recorded_at));
            w.close("Sampling");
        }
        Record::Inspection(r) => {
            w.open("Inspection", &[("id", &r.report_no), ("sample", &r.sample_id)]);
            w.leaf("Lab", &[("cma", &r.lab_cma)], &r.lab_name);
            w.leaf("IssuedOn", &[], &date_text(&r.issued_on));
            w.leaf("Conclusion", &[], code_of(r.conclusion, CONCLUSION));
            if r.items.is_empty() {
                w.leaf("Items", &[], "");
            } else {
                w.open("Items", &[]);
                for it in &r.items {
                    let verdict = code_of(it.verdict, VERDICT);
                    let severity = code_of(it.severity, SEVERITY);
                    let attrs: Vec<(&str, &str)> = if it.verdict == Verdict::Fail as i32 {
                        vec![("verdict", verdict), ("severity", severity)]
                    } else {
                        vec![("verdict", verdict)]
                    };
                    w.open("Item", &attrs);
                    w.leaf("Name", &[], &it.name);
                    w.leaf("Standard", &[], &it.standard);
                    w.opt_leaf("Requirement", &it.requirement);
                    w.opt_leaf("Measured", &it.measured);
                    w.opt_leaf("Unit", &it.unit);
                    w.close("Item");
                }
                w.close("Items");
            }
            w.close("Inspection");
        }
        Record::CaseTransfer(c) => {
            crate::model::transfer_losses(c, losses);
            w.open("CaseTransfer", &[("id", &c.case_id)]);
            w.leaf("Origin", &[], &c.origin_region);
            w.leaf("Responsible", &[], &c.responsible_region);
            w.leaf("SampleRef", &[], &c.sample_id);
            w.leaf("ReportRef", &[], &c.report_no);
            w.leaf("OpenedAt", &[], &time_text(&c.opened_at));
            w.leaf("DueOn", &[], &date_text(&c.due_on));
            w.close("CaseTransfer");
        }
        Record::CaseFeedback(f) => {
            let e = f.event.clone().unwrap_or_default();
            w.open("CaseFeedback", &[("id", &e.event_id), ("case", &f.case_id)]);
            w.leaf("By", &[], &e.by_region);
            w.leaf("At", &[], &time_text(&e.at));
            w.leaf("Action", &[], code_of(e.action, ACTION));
            w.opt_leaf("Note", &e.note);
            if let Some(a) = e.amount {
                w.leaf("Amount", &[("currency", "CNY")], &format_yuan(a));
            }
            w.close("CaseFeedback");
        }
        Record::RiskSignal(s) => {
            let revision = s.revision.to_string();
            w.open("RiskAlert", &[("id", &s.signal_id), ("revision", &revision), ("state", code_of(s.state, STATE))]);
            w.leaf("ReportedBy", &[], &s.reporting_region);
            w.leaf("ObservedOn", &[], &date_text(&s.observed_on));
            w.leaf("Source", &[], code_of(s.source, SOURCE));
            write_product(w, &s.product.clone().unwrap_or_default());
            let hazards: Vec<String> = s.hazards.iter().map(|h| code_of(*h, HAZARD).to_string()).collect();
            write_list(w, "Hazards", "Hazard", &hazards);
            w.leaf("Level", &[], code_of(s.level, LEVEL));
            w.leaf("Summary", &[], &s.summary);
            w.leaf("Nationwide", &[], if s.nationwide { "true" } else { "false" });
            if !s.related_samples.is_empty() {
                write_list(w, "RelatedSamples", "SampleRef", &s.related_samples);
            }
            w.opt_leaf("RecommendedMeasures", &s.recommended_measures);
            w.close("RiskAlert");
        }
        _ => {}
    }
}
