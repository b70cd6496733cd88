//! Zhejiang exchange interface (浙江省市场监管数据交换 XML 1.0): XML in UTF-8, every element in
//! the namespace `urn:zjamr:yrd:exchange:1`, absent values omitted, 1–500 records per message.
//! See `docs/partners/zhejiang.md`.

use crate::envelope::EnvelopePaths;
use crate::model::*;
use crate::money::{format_yuan, parse_yuan};
use crate::paths::map_path;
use crate::problems::{category_value, code_of, lookup, Ctx};
use crate::xml::{self, Next, Ns, Start, Stream, Writer};
use reader::{attributes, each_attribute, leaf, leaf_text, read_children, read_list, At};

mod envelope;
mod reader;
use yrdx_proto::civil::{parse_rfc3339, BeijingTime};
use yrdx_proto::codes::category_code_of;
use yrdx_proto::v1::*;
use yrdx_proto::{Date, Timestamp};

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

fn date(text: &str, at: &At<'_>, cx: &mut Ctx) -> Option<Date> {
    if text.is_empty() {
        return None;
    }
    let d = Date::parse_iso(text);
    if d.is_none() {
        cx.error(at.to_string(), format!("'{text}' is not an xs:date yyyy-MM-dd"));
    }
    d
}

fn time(text: &str, at: &At<'_>, cx: &mut Ctx) -> Option<Timestamp> {
    if text.is_empty() {
        return None;
    }
    let t = parse_rfc3339(text);
    if t.is_none() {
        cx.error(at.to_string(), format!("'{text}' is not an xs:dateTime with an offset"));
    }
    t
}

/// A non-negative integer (`""` gives 0: the caller reports a missing value).
fn int(text: &str, at: &At<'_>, cx: &mut Ctx) -> i32 {
    if text.is_empty() {
        return 0;
    }
    match text.parse::<i32>() {
        Ok(v) if text.bytes().all(|b| b.is_ascii_digit()) => v,
        _ => {
            cx.error(at.to_string(), format!("'{text}' is not a non-negative integer"));
            0
        }
    }
}

/// A MONEY element: yuan with two decimals and `currency="CNY"`, as fen.
fn money<'a>(stream: &mut Stream<'a>, start: Start<'a>, at: &At<'_>, cx: &mut Ctx) -> Result<Option<i64>, DecodeError> {
    let mut cny = false;
    each_attribute(&start, at, &["currency"], cx, |_, v, _| cny = v == "CNY")?;
    if !cny {
        cx.error(at.attr("currency").to_string(), "required: currency=\"CNY\"");
    }
    let text = leaf_text(stream, &start, at, cx)?;
    Ok(match parse_yuan(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            if !text.is_empty() {
                cx.error(at.to_string(), e.to_string());
            }
            None
        }
    })
}

/// Reads a list of text items (`Standards/Standard`), each with its path.
fn text_list<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    item: &'static str,
    cx: &mut Ctx,
    mut each: impl FnMut(String, &At<'_>, &mut Ctx),
) -> Result<usize, DecodeError> {
    read_list(stream, start, at, item, cx, |stream, child, at, cx| {
        let text = leaf(stream, child, at, cx)?;
        each(text, at, cx);
        Ok(())
    })
}

/// Decodes a Zhejiang message with every problem in XPath form
/// (`/Exchange/Records/Sampling[1]/Seller/CreditCode`). The records are filled straight from the
/// XML events: no tree of the document, or of a record, is built.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Document, DecodeError> {
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge { size: bytes.len(), limit: limits.max_bytes });
    }
    if let Some(enc) = xml::sniff_encoding(bytes) {
        if !enc.eq_ignore_ascii_case("UTF-8") {
            return Err(DecodeError::refused("/", format!("declared encoding '{enc}': Zhejiang documents are UTF-8")));
        }
    }
    // UTF-8 is checked as the events are read (the stream refuses the first bad byte): a
    // separate pass over the whole document first cost a tenth of the decode.
    let mut stream = Stream::new(bytes, limits, Some(NAMESPACE));
    let mut cx = Ctx::new(limits);
    let root = match stream.next()? {
        Next::Start(el) => el,
        _ => return Err(DecodeError::refused("/", "no root element")),
    };
    if root.name() != "Exchange" {
        return Err(DecodeError::refused(
            "/",
            format!("the root element is <{}>; expected <Exchange> in the namespace {NAMESPACE}", root.name()),
        ));
    }
    if root.ns != Ns::Expected {
        let found = match (root.ns, root.own_namespace_declaration()) {
            (Ns::None, _) => "no namespace".to_string(),
            (_, Some(uri)) => format!("the namespace '{uri}'"),
            // Declared further up: only the root can declare it, so this is a prefix bound to
            // another namespace by an enclosing scope that does not exist; name the prefix.
            (_, None) => format!("another namespace (prefix '{}')", root.prefix()),
        };
        return Err(DecodeError::refused(
            "/Exchange",
            format!("the root element <Exchange> is in {found}; expected the namespace {NAMESPACE}"),
        ));
    }
    let mut version_ok = false;
    root.each_attr(|k, v| {
        if k == "version" {
            version_ok = v == "1.0";
        } else {
            cx.error(format!("/Exchange/@{k}"), format!("unknown attribute '{k}'"));
        }
    })?;
    if !version_ok {
        cx.error("/Exchange/@version", "required: version=\"1.0\"");
    }
    let mut envelope = Envelope::default();
    let mut kind: Option<(RecordKind, &str)> = None;
    // One record is the common message; a record is ~700 bytes, and room for four would leave
    // the allocator's fast path.
    let mut records = Vec::with_capacity(1);
    let (mut saw_header, mut saw_records) = (false, false);
    // "On input any order of children is accepted": a <Records> before <Header> is read past
    // (still checked for well-formedness) and decoded from here once the Kind is known.
    let mut records_first: Option<(Stream<'_>, Start<'_>)> = None;
    if !root.empty {
        loop {
            match stream.next()? {
                Next::Start(el) => {
                    let ok_ns = el.ns == Ns::Expected;
                    match el.name() {
                        "Header" if ok_ns && !saw_header => {
                            saw_header = true;
                            (envelope, kind) = decode_header(&mut stream, el, &mut cx)?;
                        }
                        "Records" if ok_ns && !saw_records => {
                            saw_records = true;
                            if saw_header {
                                decode_records_element(&mut stream, el, kind, &mut records, &mut cx)?;
                            } else {
                                records_first = Some((stream.clone(), el.clone()));
                                stream.skip(el)?;
                            }
                        }
                        other => {
                            let path = format!("/Exchange/{other}");
                            let why = if !ok_ns {
                                format!("not in the namespace {NAMESPACE}")
                            } else if other == "Header" || other == "Records" {
                                "repeated: <Header> and <Records> appear once each, in any order".to_string()
                            } else {
                                "expected <Header> and <Records>, once each, in any order".to_string()
                            };
                            cx.error(path, format!("unexpected element <{other}> ({why})"));
                            stream.skip(el)?;
                        }
                    }
                }
                Next::End => break,
                Next::Eof => return Err(DecodeError::refused("/", "document ends inside <Exchange>")),
            }
        }
    }
    if let Some((mut later, el)) = records_first {
        decode_records_element(&mut later, el, kind, &mut records, &mut cx)?;
    }
    stream.finish()?;
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

/// The `<Records>` element: no attributes, 1–500 records of the header's Kind.
fn decode_records_element<'a>(
    stream: &mut Stream<'a>,
    el: Start<'a>,
    kind: Kind,
    records: &mut Vec<Record>,
    cx: &mut Ctx,
) -> Result<(), DecodeError> {
    attributes(&el, &At::Fixed("/Exchange/Records"), [], cx)?;
    let count = read_records(stream, el, kind, records, cx)?;
    if !(1..=MAX_RECORDS).contains(&count) {
        cx.error("/Exchange/Records", format!("expected 1–{MAX_RECORDS} records, found {count}"));
    }
    Ok(())
}

fn read_records<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    kind: Option<(RecordKind, &'static str)>,
    records: &mut Vec<Record>,
    cx: &mut Ctx,
) -> Result<usize, DecodeError> {
    if start.empty {
        return Ok(0);
    }
    let mut count = 0;
    loop {
        match stream.next()? {
            Next::Start(rec) => {
                count += 1;
                cx.record_id = None;
                match kind {
                    Some((k, name)) if rec.name() == name && rec.ns == Ns::Expected => {
                        let at = At::Record(name, count);
                        let first_problem = cx.problems.len();
                        let record = decode_record(stream, k, rec, &at, cx)?;
                        cx.check_rules(first_problem, &record, |canonical| format!("{at}/{}", zj_path(k, canonical)));
                        records.push(record);
                    }
                    Some((_, name)) => {
                        cx.record_id = rec.attr("id")?.map(|id| id.trim().to_string());
                        let rec_name = rec.name();
                        let problem = if rec.ns != Ns::Expected {
                            format!("element <{rec_name}> is not in the namespace {NAMESPACE}")
                        } else {
                            format!("<{rec_name}> in a message whose Kind is {name}")
                        };
                        cx.error(At::Record(rec_name, count).to_string(), problem);
                        stream.skip(rec)?;
                    }
                    None => stream.skip(rec)?,
                }
            }
            Next::End => return Ok(count),
            Next::Eof => return Err(DecodeError::refused("/", "document ends inside <Records>")),
        }
    }
}

use envelope::{decode_header, Kind};

fn decode_record<'a>(
    stream: &mut Stream<'a>,
    kind: RecordKind,
    start: Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<Record, DecodeError> {
    // The record's own id goes with every problem found in it.
    // Every Zhejiang record's id is its `id` attribute.
    cx.record_id = Some(start.attr("id")?.map(|id| id.trim().to_string()).unwrap_or_default());
    Ok(match kind {
        RecordKind::Plan => Record::Plan(decode_plan(stream, start, at, cx)?),
        RecordKind::Sampling => Record::Sampling(decode_sampling(stream, start, at, cx)?),
        RecordKind::Inspection => Record::Inspection(decode_inspection(stream, start, at, cx)?),
        RecordKind::CaseTransfer => Record::CaseTransfer(decode_transfer(stream, start, at, cx)?),
        RecordKind::CaseFeedback => Record::CaseFeedback(decode_feedback(stream, start, at, cx)?),
        _ => Record::RiskSignal(decode_risk(stream, start, at, cx)?),
    })
}

fn decode_plan<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<SpotCheckPlan, DecodeError> {
    let [plan_id] = attributes(&start, at, ["id"], cx)?;
    let mut plan = SpotCheckPlan { plan_id, ..Default::default() };
    let mut year_seen = false;
    const FIELDS: &[&str] = &[
        "Title",
        "Year",
        "LeadRegion",
        "Participants",
        "Channel",
        "Categories",
        "Standards",
        "SamplingDeadline",
        "PublishedAt",
    ];
    read_children(stream, &start, at, FIELDS, cx, |s, name, child, at, cx| {
        match name {
            "Participants" => {
                read_list(s, child, at, "Participant", cx, |s, p, at, cx| {
                    let [region, quota] = attributes(&p, at, ["region", "quota"], cx)?;
                    if !p.empty {
                        // A participant is all attributes: anything inside is unknown.
                        read_children(s, &p, at, &[], cx, |_, _, _, _, _| Ok(()))?;
                    }
                    if quota.is_empty() {
                        cx.error(at.attr("quota").to_string(), "required");
                    }
                    plan.participants.push(PlanParticipant { region, quota: int(&quota, &at.attr("quota"), cx) });
                    Ok(())
                })?;
            }
            "Categories" => {
                text_list(s, child, at, "Category", cx, |t, at, cx| plan.categories.push(category_value(&t, at, cx)))?;
            }
            "Standards" => {
                text_list(s, child, at, "Standard", cx, |t, _, _| plan.standards.push(t))?;
            }
            _ => {
                let text = leaf(s, child, at, cx)?;
                match name {
                    "Title" => plan.title = text,
                    "Year" => {
                        year_seen = true;
                        plan.year = int(&text, at, cx);
                    }
                    "LeadRegion" => plan.lead_region = text,
                    "Channel" => plan.channel = lookup(&text, PLAN_CHANNEL, at, cx),
                    "SamplingDeadline" => plan.sampling_deadline = date(&text, at, cx),
                    _ => plan.published_at = time(&text, at, cx),
                }
            }
        }
        Ok(())
    })?;
    if !year_seen {
        cx.error(at.child("Year").to_string(), "required");
    }
    Ok(plan)
}

fn decode_party<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<Party, DecodeError> {
    attributes(&start, at, [], cx)?;
    let mut party = Party::default();
    read_children(stream, &start, at, &["Name", "CreditCode", "Region", "Address"], cx, |s, name, child, at, cx| {
        let text = leaf(s, child, at, cx)?;
        match name {
            "Name" => party.name = text,
            "CreditCode" => party.uscc = text,
            "Region" => party.region = text,
            _ => party.address = text,
        }
        Ok(())
    })?;
    Ok(party)
}

fn decode_product<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<Product, DecodeError> {
    attributes(&start, at, [], cx)?;
    let mut product = Product::default();
    const FIELDS: &[&str] = &["Name", "Category", "Brand", "Model", "Batch", "ProductionDate"];
    read_children(stream, &start, at, FIELDS, cx, |s, name, child, at, cx| {
        let text = leaf(s, child, at, cx)?;
        match name {
            "Name" => product.name = text,
            "Category" => product.category = category_value(&text, at, cx),
            "Brand" => product.brand = text,
            "Model" => product.model = text,
            "Batch" => product.batch = text,
            _ => product.production_date = date(&text, at, cx),
        }
        Ok(())
    })?;
    Ok(product)
}

fn decode_shop<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<OnlineShop, DecodeError> {
    attributes(&start, at, [], cx)?;
    let mut shop = OnlineShop::default();
    read_children(
        stream,
        &start,
        at,
        &["Platform", "ShopName", "ShopUrl", "OrderNo"],
        cx,
        |s, name, child, at, cx| {
            let text = leaf(s, child, at, cx)?;
            match name {
                "Platform" => shop.platform = text,
                "ShopName" => shop.shop_name = text,
                "ShopUrl" => shop.shop_url = text,
                _ => shop.order_no = text,
            }
            Ok(())
        },
    )?;
    Ok(shop)
}

fn decode_sampling<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<SamplingRecord, DecodeError> {
    let [sample_id] = attributes(&start, at, ["id"], cx)?;
    let mut record = SamplingRecord { sample_id, ..Default::default() };
    let (mut quantity_seen, mut reserve_seen, mut price_seen) = (false, false, false);
    const FIELDS: &[&str] = &[
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
    ];
    read_children(stream, &start, at, FIELDS, cx, |s, name, child, at, cx| {
        match name {
            "Seller" => record.seller = Some(decode_party(s, child, at, cx)?),
            "Producer" => record.producer = Some(decode_party(s, child, at, cx)?),
            "Shop" => record.shop = Some(decode_shop(s, child, at, cx)?),
            "Product" => record.product = Some(decode_product(s, child, at, cx)?),
            "Quantity" => {
                quantity_seen = true;
                let [unit] = attributes(&child, at, ["unit"], cx)?;
                let text = leaf_text(s, &child, at, cx)?;
                record.quantity = int(&text, at, cx);
                record.unit = unit;
            }
            "UnitPrice" => {
                price_seen = true;
                record.unit_price = money(s, child, at, cx)?.unwrap_or(0);
            }
            _ => {
                let text = leaf(s, child, at, cx)?;
                match name {
                    "PlanRef" => record.plan_id = text,
                    "SamplingRegion" => record.sampling_region = text,
                    "SamplingOrg" => record.sampling_org = text,
                    "SampledOn" => record.sampled_on = date(&text, at, cx),
                    "Channel" => record.channel = lookup(&text, SALES_CHANNEL, at, cx),
                    "ReserveQuantity" => {
                        reserve_seen = true;
                        record.reserve_quantity = int(&text, at, cx);
                    }
                    _ => record.recorded_at = time(&text, at, cx),
                }
            }
        }
        Ok(())
    })?;
    if !quantity_seen {
        cx.error(at.child("Quantity").to_string(), "required");
    }
    if !reserve_seen {
        cx.error(at.child("ReserveQuantity").to_string(), "required");
    }
    if !price_seen {
        cx.error(at.child("UnitPrice").to_string(), "required (yuan with two decimals, currency=\"CNY\")");
    }
    Ok(record)
}

fn decode_inspection<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<InspectionResult, DecodeError> {
    let [report_no, sample_id] = attributes(&start, at, ["id", "sample"], cx)?;
    let mut report = InspectionResult { report_no, sample_id, ..Default::default() };
    read_children(stream, &start, at, &["Lab", "IssuedOn", "Conclusion", "Items"], cx, |s, name, child, at, cx| {
        match name {
            "Lab" => {
                let [cma] = attributes(&child, at, ["cma"], cx)?;
                report.lab_name = leaf_text(s, &child, at, cx)?;
                report.lab_cma = cma;
            }
            "Items" => {
                read_list(s, child, at, "Item", cx, |s, item, at, cx| {
                    report.items.push(decode_item(s, item, at, cx)?);
                    Ok(())
                })?;
            }
            _ => {
                let text = leaf(s, child, at, cx)?;
                match name {
                    "IssuedOn" => report.issued_on = date(&text, at, cx),
                    _ => report.conclusion = lookup(&text, CONCLUSION, at, cx),
                }
            }
        }
        Ok(())
    })?;
    Ok(report)
}

fn decode_item<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<InspectionItem, DecodeError> {
    let (mut verdict, mut severity, mut severity_given) = (0, Severity::None as i32, false);
    each_attribute(&start, at, &["verdict", "severity"], cx, |i, v, cx| {
        if i == 0 {
            verdict = lookup(v, VERDICT, at.attr("verdict"), cx);
        } else {
            severity_given = !v.is_empty();
            severity = lookup(v, SEVERITY, at.attr("severity"), cx);
        }
    })?;
    if !severity_given && verdict == Verdict::Fail as i32 {
        cx.error(at.attr("severity").to_string(), "required on a failing item (serious or general)");
    } else if severity_given && verdict == Verdict::Pass as i32 {
        cx.error(at.attr("severity").to_string(), "only failing items carry a severity");
    }
    let mut item = InspectionItem { verdict, severity, ..Default::default() };
    const FIELDS: &[&str] = &["Name", "Standard", "Requirement", "Measured", "Unit"];
    read_children(stream, &start, at, FIELDS, cx, |s, name, child, at, cx| {
        let text = leaf(s, child, at, cx)?;
        match name {
            "Name" => item.name = text,
            "Standard" => item.standard = text,
            "Requirement" => item.requirement = text,
            "Measured" => item.measured = text,
            _ => item.unit = text,
        }
        Ok(())
    })?;
    Ok(item)
}

fn decode_transfer<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<DisposalCase, DecodeError> {
    let [case_id] = attributes(&start, at, ["id"], cx)?;
    let mut case = DisposalCase { case_id, status: CaseStatus::Transferred as i32, ..Default::default() };
    const FIELDS: &[&str] = &["Origin", "Responsible", "SampleRef", "ReportRef", "OpenedAt", "DueOn"];
    read_children(stream, &start, at, FIELDS, cx, |s, name, child, at, cx| {
        let text = leaf(s, child, at, cx)?;
        match name {
            "Origin" => case.origin_region = text,
            "Responsible" => case.responsible_region = text,
            "SampleRef" => case.sample_id = text,
            "ReportRef" => case.report_no = text,
            "OpenedAt" => case.opened_at = time(&text, at, cx),
            _ => case.due_on = date(&text, at, cx),
        }
        Ok(())
    })?;
    if case.due_on.is_none() {
        cx.error(at.child("DueOn").to_string(), "required (xs:date)");
    }
    Ok(case)
}

fn decode_feedback<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<CaseFeedback, DecodeError> {
    let [event_id, case_id] = attributes(&start, at, ["id", "case"], cx)?;
    let mut event = CaseEvent { event_id, ..Default::default() };
    read_children(stream, &start, at, &["By", "At", "Action", "Note", "Amount"], cx, |s, name, child, at, cx| {
        if name == "Amount" {
            event.amount = money(s, child, at, cx)?;
            return Ok(());
        }
        let text = leaf(s, child, at, cx)?;
        match name {
            "By" => event.by_region = text,
            "At" => event.at = time(&text, at, cx),
            "Action" => event.action = lookup(&text, ACTION, at, cx),
            _ => event.note = text,
        }
        Ok(())
    })?;
    Ok(CaseFeedback { case_id, event: Some(event) })
}

fn decode_risk<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<RiskSignal, DecodeError> {
    let mut signal = RiskSignal::default();
    let mut revision_given = false;
    each_attribute(&start, at, &["id", "revision", "state"], cx, |i, v, cx| match i {
        0 => signal.signal_id = v.to_string(),
        1 => {
            revision_given = !v.is_empty();
            signal.revision = int(v, &at.attr("revision"), cx);
        }
        _ => signal.state = lookup(v, STATE, at.attr("state"), cx),
    })?;
    if !revision_given {
        cx.error(at.attr("revision").to_string(), "required");
    }
    let mut nationwide: Option<String> = None;
    const FIELDS: &[&str] = &[
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
    ];
    read_children(stream, &start, at, FIELDS, cx, |s, name, child, at, cx| {
        match name {
            "Product" => signal.product = Some(decode_product(s, child, at, cx)?),
            "Hazards" => {
                text_list(s, child, at, "Hazard", cx, |t, at, cx| signal.hazards.push(lookup(&t, HAZARD, at, cx)))?;
            }
            "RelatedSamples" => {
                let count = text_list(s, child, at, "SampleRef", cx, |t, _, _| signal.related_samples.push(t))?;
                if count == 0 {
                    cx.error(at.to_string(), "omitted when there are no related samples, never empty");
                }
            }
            _ => {
                let text = leaf(s, child, at, cx)?;
                match name {
                    "ReportedBy" => signal.reporting_region = text,
                    "ObservedOn" => signal.observed_on = date(&text, at, cx),
                    "Source" => signal.source = lookup(&text, SOURCE, at, cx),
                    "Level" => signal.level = lookup(&text, LEVEL, at, cx),
                    "Summary" => signal.summary = text,
                    "Nationwide" => nationwide = Some(text),
                    _ => signal.recommended_measures = text,
                }
            }
        }
        Ok(())
    })?;
    let nationwide_at = at.child("Nationwide");
    signal.nationwide = match nationwide.as_deref() {
        Some("true") => true,
        Some("false") => false,
        None | Some("") => {
            cx.error(nationwide_at.to_string(), "required (true or false)");
            false
        }
        Some(other) => {
            cx.error(nationwide_at.to_string(), format!("'{other}' is not true or false"));
            false
        }
    };
    Ok(signal)
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
