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

mod element_table;
mod envelope;
mod reader;
mod records;
use records::{decode_record, write_record};
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

// ---------------------------------------------------------------------------------------------
// Encoding

fn time_text(t: &Option<Timestamp>) -> String {
    t.as_ref().map(|t| BeijingTime::of(t).to_rfc3339()).unwrap_or_default()
}

fn date_text(d: &Option<Date>) -> String {
    d.as_ref().map(Date::to_string).unwrap_or_default()
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
    Ok(Body::of(records)?.under(envelope))
}

/// A message's `Records` element, written at its depth, with its `Kind` and losses.
pub(crate) struct Body {
    kind_name: &'static str,
    records: String,
    losses: Vec<Loss>,
}

impl EncodedOnce for Body {
    fn of(records: &[Record]) -> Result<Body, EncodeError> {
        let (kind_name, mut losses) = checked_batch(records, MAX_RECORDS, "Zhejiang", KINDS, "Kind", 1_000_000_000)?;
        // Inside `Exchange`: one level deep.
        let mut w = Writer::fragment(1);
        w.open("Records", &[]);
        for r in records {
            write_record(&mut w, r, &mut losses);
        }
        w.close("Records");
        Ok(Body { kind_name, records: w.out, losses })
    }

    fn under(&self, envelope: &Envelope) -> Encoded {
        let mut w = Writer::new(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        w.open("Exchange", &[("xmlns", NAMESPACE), ("version", "1.0")]);
        w.open("Header", &[]);
        w.leaf("MessageId", &[], &envelope.message_id);
        w.leaf("Kind", &[], self.kind_name);
        w.leaf("Sender", &[], &envelope.sender);
        w.leaf("Receiver", &[], &envelope.receiver);
        w.leaf("SentAt", &[], &time_text(&envelope.sent_at));
        w.close("Header");
        w.out.push_str(&self.records);
        w.close("Exchange");
        Encoded { bytes: w.out.into_bytes(), losses: self.losses.clone() }
    }
}
