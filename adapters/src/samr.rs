//! SAMR data-platform docking (总局数据对接 数据包规范): GB18030 XML data packages with upper-case
//! pinyin element names, an SM3 digest of the `<SJ>` element's exact bytes, and receipts.
//! The gateway only sends packages to SAMR; decoding exists for SAMR intake simulators and
//! conformance checks. See `docs/partners/samr.md`.

use crate::model::*;
use crate::money::format_yuan;
use crate::problems::Ctx;
use crate::xml::{self, Element, Next, Ns, Start, Stream, Tree, Writer};
use sm3::{Digest, Sm3};
use yrdx_proto::civil::BeijingTime;
use yrdx_proto::codes::category_code_of;
use yrdx_proto::v1::*;
use yrdx_proto::{identifiers, Date, Timestamp};

/// The envelope id of SAMR.
pub const PARTNER_ID: &str = "SAMR";
/// Most records in one package.
pub const MAX_RECORDS: usize = 1000;
const DECLARATION: &str = r#"<?xml version="1.0" encoding="GB18030"?>"#;

/// SAMR package types (`BT/SJLX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageType {
    /// `CCJG` — spot-check results.
    SpotCheckResults,
    /// `FXBS` — risk reports.
    RiskReports,
    /// `ZTZR` — responsibility reports.
    ResponsibilityReports,
    /// `CZJG` — closed disposal cases.
    ClosedCases,
    /// `AJYS` — case transfers for SAMR to forward.
    CaseForwards,
}

impl PackageType {
    /// Every type.
    pub const ALL: [PackageType; 5] = [
        PackageType::SpotCheckResults,
        PackageType::RiskReports,
        PackageType::ResponsibilityReports,
        PackageType::ClosedCases,
        PackageType::CaseForwards,
    ];

    /// The `SJLX` code.
    pub fn code(self) -> &'static str {
        match self {
            PackageType::SpotCheckResults => "CCJG",
            PackageType::RiskReports => "FXBS",
            PackageType::ResponsibilityReports => "ZTZR",
            PackageType::ClosedCases => "CZJG",
            PackageType::CaseForwards => "AJYS",
        }
    }

    /// The type of an `SJLX` code.
    pub fn from_code(code: &str) -> Option<PackageType> {
        PackageType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The package type that carries a record kind.
    pub fn for_kind(kind: RecordKind) -> Option<PackageType> {
        match kind {
            RecordKind::SpotCheckResult => Some(PackageType::SpotCheckResults),
            RecordKind::RiskSignal => Some(PackageType::RiskReports),
            RecordKind::ResponsibilityReport => Some(PackageType::ResponsibilityReports),
            RecordKind::ClosedCase => Some(PackageType::ClosedCases),
            RecordKind::CaseForward => Some(PackageType::CaseForwards),
            _ => None,
        }
    }

    /// The children of one `JL` record, in order; a name ending in `/` is a group (party or
    /// failing items) whose own children are listed by [`group_children`].
    pub fn record_children(self) -> &'static [&'static str] {
        match self {
            PackageType::SpotCheckResults => &[
                "CYDBH", "JHBH", "CYDQ", "CYRQ", "QD", "BCYDW/", "SCQY/", "WDPT", "WDMC", "CPMC", "CPFL", "SB", "GGXH",
                "PH", "BGBH", "JYJG", "JYJL", "BHGXM/",
            ],
            PackageType::RiskReports => &[
                "FXBH", "BB", "ZT", "SBDW", "FXRQ", "LY", "CPMC", "CPFL", "SB", "GGXH", "WHLX", "FXDJ", "FXMS", "JYCS",
                "GLCYD",
            ],
            PackageType::ResponsibilityReports => &[
                "QYMC", "XYDM", "QH", "QYLX", "ML", "ZJXM", "ZJRZRQ", "AQYRS", "BGQ", "RGK", "ZPC", "YDD", "FXYH",
                "ZGYH",
            ],
            PackageType::ClosedCases => &["AJBH", "YSDQ", "CBDQ", "CYDBH", "BGBH", "JASJ", "JG", "CS", "FMJE"],
            PackageType::CaseForwards => &[
                "AJBH", "YSDQ", "CBDQ", "CYDBH", "BGBH", "YSSJ", "QX", "SCQY/", "BCYDW/", "CPMC", "SB", "GGXH", "PH",
                "BHGXM/",
            ],
        }
    }
}

/// Children of a group element of a record.
pub fn group_children(group: &str) -> &'static [&'static str] {
    match group {
        "BCYDW" | "SCQY" => &["MC", "XYDM", "QH"],
        "BHGXM" => &["XM"],
        "XM" => &["XMMC", "BZYQ", "SCJG", "BHGCD"],
        _ => &[],
    }
}

/// `SJB-{BSDW}-{yyyyMMdd}-{NNNN}`: the package number for a sender, a sending day and a daily
/// sequence number (1–9999).
pub fn package_number(sender: &str, day: &Date, sequence: u32) -> String {
    format!("SJB-{sender}-{}-{sequence:04}", day.to_compact())
}

/// Lower-case hex SM3 of bytes.
pub fn sm3_hex(bytes: &[u8]) -> String {
    hex::encode(Sm3::digest(bytes))
}

/// GB18030 bytes as text, lossy (for looking into packages; checks use [`decode_package`]).
pub fn gb18030_text(bytes: &[u8]) -> String {
    encoding_rs::GB18030.decode(bytes).0.into_owned()
}

fn gb18030(text: &str) -> Vec<u8> {
    // GB18030 encodes every Unicode scalar value, so there is never a replacement.
    encoding_rs::GB18030.encode(text).0.into_owned()
}

fn time_text(t: &Option<Timestamp>) -> String {
    t.as_ref().map(|t| BeijingTime::of(t).to_spaced()).unwrap_or_default()
}

fn date_text(d: &Option<Date>) -> String {
    d.as_ref().map(Date::to_string).unwrap_or_default()
}

fn hazard_word(h: i32) -> &'static str {
    match Hazard::try_from(h) {
        Ok(Hazard::ElectricShock) => "触电",
        Ok(Hazard::Fire) => "火灾",
        Ok(Hazard::Burn) => "灼烫",
        Ok(Hazard::Chemical) => "化学",
        Ok(Hazard::Mechanical) => "机械伤害",
        Ok(Hazard::Choking) => "窒息",
        Ok(Hazard::Explosion) => "爆炸",
        Ok(Hazard::Environment) => "环境污染",
        Ok(Hazard::Other) => "其他",
        _ => "",
    }
}

/// The words SAMR uses for the coded fields, for checks on received packages.
fn allowed_words(field: &str) -> Option<&'static [&'static str]> {
    Some(match field {
        "QD" => &["线下", "网络"],
        "JYJL" => &["合格", "不合格"],
        "BHGCD" => &["严重", "一般"],
        "ZT" => &["新增", "更新", "撤回"],
        "LY" => &["监督抽查", "执法检查", "日常检查", "风险监测", "缺陷召回", "伤害监测", "消费者投诉", "网络舆情"],
        "FXDJ" => &["高", "较高", "一般", "低"],
        "QYLX" => &["生产", "销售"],
        "JG" => &["复检合格", "整改完成"],
        _ => return None,
    })
}

fn write_party(w: &mut Writer, name: &str, p: Option<&Party>, record_id: &str, prefix: &str, losses: &mut Vec<Loss>) {
    let p = p.cloned().unwrap_or_default();
    if !p.address.is_empty() {
        losses.push(Loss {
            record_id: record_id.into(),
            field: format!("{prefix}.address"),
            detail: "SAMR packages carry no party address".into(),
        });
    }
    w.open(name, &[]);
    w.leaf("MC", &[], &p.name);
    w.leaf("XYDM", &[], &p.uscc);
    w.leaf("QH", &[], &p.region);
    w.close(name);
}

fn write_failing_items(
    w: &mut Writer,
    r: &InspectionResult,
    record_id: &str,
    prefix: &str,
    losses: &mut Vec<Loss>,
    report: bool,
) {
    let failing: Vec<(usize, &InspectionItem)> =
        r.items.iter().enumerate().filter(|(_, it)| it.verdict == Verdict::Fail as i32).collect();
    if report {
        for (i, it) in r.items.iter().enumerate() {
            let lost = |field: String, detail: &str| Loss { record_id: record_id.into(), field, detail: detail.into() };
            if it.verdict != Verdict::Fail as i32 {
                losses.push(lost(format!("{prefix}.items[{i}]"), "passing items are not carried to SAMR"));
                continue;
            }
            if !it.standard.is_empty() {
                losses.push(lost(format!("{prefix}.items[{i}].standard"), "item standards are not carried to SAMR"));
            }
            if !it.unit.is_empty() {
                losses.push(lost(format!("{prefix}.items[{i}].unit"), "item units are not carried to SAMR"));
            }
        }
    }
    if failing.is_empty() {
        w.leaf("BHGXM", &[], "");
        return;
    }
    w.open("BHGXM", &[]);
    for (_, it) in failing {
        w.open("XM", &[]);
        w.leaf("XMMC", &[], &it.name);
        w.leaf("BZYQ", &[], &it.requirement);
        w.leaf("SCJG", &[], &it.measured);
        w.leaf("BHGCD", &[], if it.severity == Severity::Serious as i32 { "严重" } else { "一般" });
        w.close("XM");
    }
    w.close("BHGXM");
}

fn write_spot_check(w: &mut Writer, r: &SpotCheckResult, losses: &mut Vec<Loss>) {
    let s = r.sampling.clone().unwrap_or_default();
    let i = r.inspection.clone().unwrap_or_default();
    let id = s.sample_id.clone();
    let shop = s.shop.clone().unwrap_or_default();
    let product = s.product.clone().unwrap_or_default();
    let mut lose = |field: &str, present: bool| {
        if present {
            losses.push(Loss {
                record_id: id.clone(),
                field: field.into(),
                detail: "not carried in a CCJG package".into(),
            });
        }
    };
    lose("sampling.sampling_org", !s.sampling_org.is_empty());
    lose("sampling.shop.shop_url", !shop.shop_url.is_empty());
    lose("sampling.shop.order_no", !shop.order_no.is_empty());
    lose("sampling.product.production_date", product.production_date.is_some());
    lose("sampling.quantity", true);
    lose("sampling.unit", !s.unit.is_empty());
    lose("sampling.reserve_quantity", true);
    lose("sampling.unit_price", true);
    lose("sampling.recorded_at", s.recorded_at.is_some());
    lose("inspection.lab_cma", !i.lab_cma.is_empty());
    lose("inspection.issued_on", i.issued_on.is_some());
    w.open("JL", &[]);
    w.leaf("CYDBH", &[], &s.sample_id);
    w.leaf("JHBH", &[], &s.plan_id);
    w.leaf("CYDQ", &[], &s.sampling_region);
    w.leaf("CYRQ", &[], &date_text(&s.sampled_on));
    w.leaf("QD", &[], if s.channel == SalesChannel::Online as i32 { "网络" } else { "线下" });
    write_party(w, "BCYDW", s.seller.as_ref(), &id, "sampling.seller", losses);
    write_party(w, "SCQY", s.producer.as_ref(), &id, "sampling.producer", losses);
    w.leaf("WDPT", &[], &shop.platform);
    w.leaf("WDMC", &[], &shop.shop_name);
    w.leaf("CPMC", &[], &product.name);
    w.leaf("CPFL", &[], &category_code_of(product.category));
    w.leaf("SB", &[], &product.brand);
    w.leaf("GGXH", &[], &product.model);
    w.leaf("PH", &[], &product.batch);
    w.leaf("BGBH", &[], &i.report_no);
    w.leaf("JYJG", &[], &i.lab_name);
    w.leaf("JYJL", &[], if i.conclusion == Conclusion::Nonconforming as i32 { "不合格" } else { "合格" });
    write_failing_items(w, &i, &id, "inspection", losses, true);
    w.close("JL");
}

fn write_risk(w: &mut Writer, s: &RiskSignal, losses: &mut Vec<Loss>) {
    let p = s.product.clone().unwrap_or_default();
    let id = s.signal_id.clone();
    let mut lose = |field: &str, present: bool| {
        if present {
            losses.push(Loss {
                record_id: id.clone(),
                field: field.into(),
                detail: "not carried in an FXBS package".into(),
            });
        }
    };
    lose("nationwide", true);
    lose("product.batch", !p.batch.is_empty());
    lose("product.production_date", p.production_date.is_some());
    w.open("JL", &[]);
    w.leaf("FXBH", &[], &s.signal_id);
    w.leaf("BB", &[], &s.revision.to_string());
    let state = match RiskState::try_from(s.state) {
        Ok(RiskState::New) => "新增",
        Ok(RiskState::Updated) => "更新",
        _ => "撤回",
    };
    w.leaf("ZT", &[], state);
    w.leaf("SBDW", &[], &s.reporting_region);
    w.leaf("FXRQ", &[], &date_text(&s.observed_on));
    let source = allowed_words("LY").and_then(|l| l.get((s.source - 1).max(0) as usize)).copied().unwrap_or("");
    w.leaf("LY", &[], source);
    w.leaf("CPMC", &[], &p.name);
    w.leaf("CPFL", &[], &category_code_of(p.category));
    w.leaf("SB", &[], &p.brand);
    w.leaf("GGXH", &[], &p.model);
    let hazards: Vec<&str> = s.hazards.iter().map(|h| hazard_word(*h)).collect();
    w.leaf("WHLX", &[], &hazards.join("、"));
    let level = allowed_words("FXDJ").and_then(|l| l.get((s.level - 1).max(0) as usize)).copied().unwrap_or("");
    w.leaf("FXDJ", &[], level);
    w.leaf("FXMS", &[], &s.summary);
    w.leaf("JYCS", &[], &s.recommended_measures);
    w.leaf("GLCYD", &[], &s.related_samples.join(","));
    w.close("JL");
}

fn write_responsibility(w: &mut Writer, r: &ResponsibilityReport, losses: &mut Vec<Loss>) {
    let e = r.enterprise.clone().unwrap_or_default();
    if !e.address.is_empty() {
        losses.push(Loss {
            record_id: format!("{}/{}", e.uscc, r.period),
            field: "enterprise.address".into(),
            detail: "not carried in a ZTZR package".into(),
        });
    }
    w.open("JL", &[]);
    w.leaf("QYMC", &[], &e.name);
    w.leaf("XYDM", &[], &e.uscc);
    w.leaf("QH", &[], &e.region);
    w.leaf("QYLX", &[], if r.role == EnterpriseRole::Producer as i32 { "生产" } else { "销售" });
    let cats: Vec<String> = r.catalogue.iter().map(|c| category_code_of(*c)).collect();
    w.leaf("ML", &[], &cats.join(","));
    w.leaf("ZJXM", &[], &r.director_name);
    w.leaf("ZJRZRQ", &[], &date_text(&r.director_appointed_on));
    w.leaf("AQYRS", &[], &r.officers.to_string());
    w.leaf("BGQ", &[], &r.period);
    w.leaf("RGK", &[], &r.daily_checks.to_string());
    w.leaf("ZPC", &[], &r.weekly_checks.to_string());
    w.leaf("YDD", &[], &r.monthly_reviews.to_string());
    w.leaf("FXYH", &[], &r.hazards_found.to_string());
    w.leaf("ZGYH", &[], &r.hazards_fixed.to_string());
    w.close("JL");
}

/// The event that closed a case: its last CLOSE or RECHECK_PASS event.
pub fn closing_event(c: &DisposalCase) -> Option<&CaseEvent> {
    c.events.iter().rev().find(|e| e.action == CaseAction::Close as i32 || e.action == CaseAction::RecheckPass as i32)
}

fn write_closed(w: &mut Writer, c: &DisposalCase, losses: &mut Vec<Loss>) {
    let closing = closing_event(c).cloned().unwrap_or_default();
    let has = |a: CaseAction| c.events.iter().any(|e| e.action == a as i32);
    let mut measures = Vec::new();
    if has(CaseAction::RectifyOrder) || has(CaseAction::RecheckFail) {
        measures.push("责令整改");
    }
    if has(CaseAction::Penalty) {
        measures.push("罚没");
    }
    let fines: i64 = c.events.iter().filter(|e| e.action == CaseAction::Penalty as i32).filter_map(|e| e.amount).sum();
    for (field, detail) in [
        ("opened_at", "not carried in a CZJG package"),
        ("due_on", "not carried in a CZJG package"),
        ("events", "summarised as JASJ, JG, CS and FMJE"),
    ] {
        let present = match field {
            "opened_at" => c.opened_at.is_some(),
            "due_on" => c.due_on.is_some(),
            _ => !c.events.is_empty(),
        };
        if present {
            losses.push(Loss { record_id: c.case_id.clone(), field: field.into(), detail: detail.into() });
        }
    }
    w.open("JL", &[]);
    w.leaf("AJBH", &[], &c.case_id);
    w.leaf("YSDQ", &[], &c.origin_region);
    w.leaf("CBDQ", &[], &c.responsible_region);
    w.leaf("CYDBH", &[], &c.sample_id);
    w.leaf("BGBH", &[], &c.report_no);
    w.leaf("JASJ", &[], &time_text(&closing.at));
    w.leaf("JG", &[], if closing.action == CaseAction::RecheckPass as i32 { "复检合格" } else { "整改完成" });
    w.leaf("CS", &[], &measures.join("、"));
    w.leaf("FMJE", &[], &format_yuan(fines));
    w.close("JL");
}

fn write_forward(w: &mut Writer, f: &CaseForward, losses: &mut Vec<Loss>) {
    let c = &f.case;
    crate::model::transfer_losses(c, losses);
    let p = f.sampling.product.clone().unwrap_or_default();
    w.open("JL", &[]);
    w.leaf("AJBH", &[], &c.case_id);
    w.leaf("YSDQ", &[], &c.origin_region);
    w.leaf("CBDQ", &[], &c.responsible_region);
    w.leaf("CYDBH", &[], &c.sample_id);
    w.leaf("BGBH", &[], &c.report_no);
    w.leaf("YSSJ", &[], &time_text(&c.opened_at));
    w.leaf("QX", &[], &date_text(&c.due_on));
    // Party addresses of the joined sample are context here, not fields of the case: no loss.
    let mut ignored = Vec::new();
    write_party(w, "SCQY", f.sampling.producer.as_ref(), &c.case_id, "sampling.producer", &mut ignored);
    write_party(w, "BCYDW", f.sampling.seller.as_ref(), &c.case_id, "sampling.seller", &mut ignored);
    w.leaf("CPMC", &[], &p.name);
    w.leaf("SB", &[], &p.brand);
    w.leaf("GGXH", &[], &p.model);
    w.leaf("PH", &[], &p.batch);
    write_failing_items(w, &f.inspection, &c.case_id, "inspection", losses, false);
    w.close("JL");
}

/// Checks that SAMR can take these records: a closed case must be CLOSED with its closing event;
/// a forwarded case's sample and report must be the case's.
fn refusal(record: &Record) -> Option<EncodeError> {
    let unsupported = |reason: String| EncodeError::Unsupported {
        partner: "SAMR",
        kind: record.kind(),
        record_id: record.id(),
        reason,
    };
    match record {
        Record::ClosedCase(c) => {
            if c.status != CaseStatus::Closed as i32 || closing_event(c).is_none() {
                return Some(unsupported("a CZJG package takes closed cases with their CLOSE or RECHECK_PASS event".into()));
            }
        }
        Record::CaseForward(f) => {
            if f.sampling.sample_id != f.case.sample_id || f.inspection.report_no != f.case.report_no {
                return Some(unsupported("the joined sample and report are not the case's".into()));
            }
        }
        Record::SpotCheckResult(_) | Record::RiskSignal(_) | Record::ResponsibilityReport(_) => {}
        other => {
            return Some(unsupported(format!(
                "SAMR takes spot-check results, risk reports, responsibility reports, closed cases and case forwards, not {}",
                other.kind()
            )))
        }
    }
    None
}

/// Encodes records (one kind, 1–1000) as a SAMR package: GB18030 bytes, package number from the
/// sender, the Beijing date of `envelope.sent_at` and `sequence`, and the SM3 digest of `<SJ>`.
pub fn encode(envelope: &Envelope, sequence: u32, records: &[Record]) -> Result<Encoded, EncodeError> {
    let kind = batch_kind(records, MAX_RECORDS, "SAMR")?;
    if let Some(e) = records.iter().find_map(refusal) {
        return Err(e);
    }
    let package_type =
        PackageType::for_kind(kind).ok_or_else(|| EncodeError::Batch(format!("no SAMR package type for {kind}")))?;
    if !(1..=9999).contains(&sequence) {
        return Err(EncodeError::Batch(format!("package sequence {sequence} is outside 1–9999")));
    }
    if !identifiers::is_region(&envelope.sender) {
        return Err(EncodeError::Batch(format!("reporting unit '{}' is not a region code", envelope.sender)));
    }
    let sent_at = envelope.sent_at.ok_or_else(|| EncodeError::Batch("a SAMR package needs a sending time".into()))?;
    check_before_encode(records)?;
    let mut losses = Vec::new();
    precision_losses(records, 1_000_000_000, &mut losses);
    let mut body = Writer::fragment(1);
    body.open("SJ", &[]);
    for r in records {
        match r {
            Record::SpotCheckResult(x) => write_spot_check(&mut body, x, &mut losses),
            Record::RiskSignal(x) => write_risk(&mut body, x, &mut losses),
            Record::ResponsibilityReport(x) => write_responsibility(&mut body, x, &mut losses),
            Record::ClosedCase(x) => write_closed(&mut body, x, &mut losses),
            Record::CaseForward(x) => write_forward(&mut body, x, &mut losses),
            _ => {}
        }
    }
    body.close("SJ");
    let sj = gb18030(body.out.trim());
    let local = BeijingTime::of(&sent_at);
    let mut head = Writer::new(DECLARATION);
    head.open("SJB", &[]);
    head.open("BT", &[]);
    head.leaf("SJBBH", &[], &package_number(&envelope.sender, &local.date, sequence));
    head.leaf("BSDW", &[], &envelope.sender);
    head.leaf("SJLX", &[], package_type.code());
    head.leaf("BSSJ", &[], &local.to_spaced());
    head.leaf("JLS", &[], &records.len().to_string());
    head.leaf("ZY", &[], &sm3_hex(&sj));
    head.close("BT");
    let mut bytes = gb18030(&head.out);
    bytes.extend_from_slice(b"  ");
    bytes.extend_from_slice(&sj);
    bytes.extend_from_slice(b"\n</SJB>\n");
    Ok(Encoded { bytes, losses })
}

/// The header of a received package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageHeader {
    /// `SJBBH` package number.
    pub number: String,
    /// `BSDW` reporting unit.
    pub reporting_unit: String,
    /// `SJLX` package type.
    pub package_type: PackageType,
    /// `BSSJ` sending time.
    pub sent_at: Timestamp,
    /// `JLS` record count.
    pub record_count: usize,
    /// `ZY` digest as sent.
    pub digest: String,
}

/// One record of a received package: its fields as (path, text) pairs in document order, with
/// group paths such as `BCYDW/MC` and `BHGXM/XM[1]/XMMC`.
pub type PackageRecord = Vec<(String, String)>;

/// A received package, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    /// Its header.
    pub header: PackageHeader,
    /// Its records.
    pub records: Vec<PackageRecord>,
}

/// Decodes and checks a SAMR package as SAMR's intake would: GB18030, structure, every element
/// present, coded values, identifiers, record count, package number and the SM3 digest.
pub fn decode_package(bytes: &[u8], limits: &DecodeLimits) -> Result<Package, DecodeError> {
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge { size: bytes.len(), limit: limits.max_bytes });
    }
    match xml::sniff_encoding(bytes) {
        Some(enc) if enc.eq_ignore_ascii_case("GB18030") => {}
        Some(enc) => {
            return Err(DecodeError::refused("/", format!("declared encoding '{enc}': SAMR packages are GB18030")))
        }
        None => return Err(DecodeError::refused("/", "the XML declaration with encoding=\"GB18030\" is required")),
    }
    let text = encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or_else(|| DecodeError::refused("/", "the bytes are not valid GB18030"))?;
    let mut stream = Stream::new(text.as_bytes(), limits, None);
    let root = match stream.next()? {
        Next::Start(el) => el,
        _ => return Err(DecodeError::refused("/", "no root element")),
    };
    if root.name() != "SJB" {
        return Err(DecodeError::refused(
            "/",
            format!("the root element is <{}>; expected <SJB> (a SAMR data package, no namespace)", root.name()),
        ));
    }
    if root.ns != Ns::None {
        let found = root.own_namespace_declaration().map(|uri| format!("the namespace '{uri}'"));
        return Err(DecodeError::refused(
            "/SJB",
            format!(
                "the root element <SJB> is in {}; SAMR packages use no namespace",
                found.unwrap_or_else(|| format!("a namespace (prefix '{}')", root.prefix()))
            ),
        ));
    }
    let mut cx = Ctx::new(limits);
    let mut bt: Option<Tree> = None;
    let mut records = Vec::new();
    let mut saw_sj = false;
    unknown_attributes(&root, "/SJB", &mut cx)?;
    if !root.empty {
        loop {
            match stream.next()? {
                Next::Start(el) => match el.name() {
                    "BT" if bt.is_none() => bt = Some(stream.subtree(el)?),
                    "SJ" if !saw_sj && bt.is_some() => {
                        saw_sj = true;
                        unknown_attributes(&el, "/SJB/SJ", &mut cx)?;
                        let package_type = bt
                            .as_ref()
                            .and_then(|b| b.root().child("SJLX"))
                            .and_then(|e| PackageType::from_code(e.text().trim()));
                        if !el.empty {
                            let mut n = 0;
                            loop {
                                match stream.next()? {
                                    Next::Start(jl) => {
                                        n += 1;
                                        let jl_name = jl.name().to_string();
                                        let tree = stream.subtree(jl)?;
                                        let path = format!("/SJB/SJ/JL[{n}]");
                                        if jl_name != "JL" {
                                            cx.error(path, format!("unexpected element <{jl_name}>"));
                                            continue;
                                        }
                                        if let Some(t) = package_type {
                                            records.push(check_record(t, tree.root(), &path, &mut cx));
                                        }
                                    }
                                    Next::End => break,
                                    Next::Eof => return Err(DecodeError::refused("/", "document ends inside <SJ>")),
                                }
                            }
                        }
                    }
                    other => {
                        cx.error(
                            format!("/SJB/{other}"),
                            format!("unexpected element <{other}> (expected <BT> then <SJ>)"),
                        );
                        stream.skip(el)?;
                    }
                },
                Next::End => break,
                Next::Eof => return Err(DecodeError::refused("/", "document ends inside <SJB>")),
            }
        }
    }
    stream.finish()?;
    let header = match &bt {
        Some(b) => check_header(b.root(), records.len(), &mut cx),
        None => {
            cx.error("/SJB/BT", "required");
            None
        }
    };
    if !saw_sj {
        cx.error("/SJB/SJ", "required");
    }
    if let Some(h) = &header {
        let start = find(bytes, b"<SJ>");
        let end = rfind(bytes, b"</SJ>");
        match (start, end) {
            (Some(s), Some(e)) if e > s => {
                let want = sm3_hex(&bytes[s..e + 5]);
                if h.digest != want {
                    cx.error("/SJB/BT/ZY", format!("digest {} does not match the SM3 of <SJ>…</SJ>, {want}", h.digest));
                }
            }
            _ => cx.error("/SJB/SJ", "no <SJ>…</SJ> bytes to digest"),
        }
    }
    match header {
        Some(header) if cx.problems.is_empty() => Ok(Package { header, records }),
        _ => Err(DecodeError::Invalid(cx.problems)),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn leaf_text(el: Element<'_>, path: &str, cx: &mut Ctx) -> String {
    if el.has_children() {
        cx.error(path, "expected text, found child elements");
    }
    el.text().trim().to_string()
}

/// Reports the attributes of a streamed element: SAMR elements carry none.
fn unknown_attributes(el: &Start<'_>, path: &str, cx: &mut Ctx) -> Result<(), DecodeError> {
    el.each_attr(|k, _| cx.error(format!("{path}/@{k}"), format!("unknown attribute '{k}'")))
}

/// Reports what a SAMR element may not carry: a namespace, attributes, text beside children.
fn check_plain(el: Element<'_>, path: &str, cx: &mut Ctx) {
    if el.ns() != Ns::None {
        cx.error(path, format!("element <{}> is in a namespace: SAMR elements have none", el.name()));
    }
    for (k, _) in el.attrs() {
        cx.error(format!("{path}/@{k}"), format!("unknown attribute '{k}'"));
    }
    if el.mixed() {
        cx.error(path, "unexpected text beside child elements");
    }
}

fn check_header(bt: Element<'_>, count: usize, cx: &mut Ctx) -> Option<PackageHeader> {
    let names = ["SJBBH", "BSDW", "SJLX", "BSSJ", "JLS", "ZY"];
    let mut values = Vec::new();
    check_plain(bt, "/SJB/BT", cx);
    for (i, c) in bt.children().enumerate() {
        check_plain(c, &format!("/SJB/BT/{}", c.name()), cx);
        if names.get(i) != Some(&c.name()) {
            cx.error(
                format!("/SJB/BT/{}", c.name()),
                format!("unexpected element <{}> (expected {} in that order)", c.name(), names.join(", ")),
            );
        }
    }
    for n in names {
        let path = format!("/SJB/BT/{n}");
        match bt.child(n) {
            Some(e) => values.push(leaf_text(e, &path, cx)),
            None => {
                cx.error(path, "required");
                values.push(String::new());
            }
        }
    }
    let [number, unit, kind, sent, jls, digest]: [String; 6] = values.try_into().ok()?;
    let package_type = PackageType::from_code(&kind);
    if package_type.is_none() {
        cx.error("/SJB/BT/SJLX", format!("'{kind}' is not a package type (CCJG, FXBS, ZTZR, CZJG, AJYS)"));
    }
    if !identifiers::is_region(&unit) {
        cx.error("/SJB/BT/BSDW", format!("'{unit}' is not a region code"));
    }
    let sent_at = BeijingTime::parse_spaced(&sent);
    if sent_at.is_none() {
        cx.error("/SJB/BT/BSSJ", format!("'{sent}' is not a time yyyy-MM-dd HH:mm:ss"));
    }
    let prefix = format!("SJB-{unit}-");
    let number_ok = number.strip_prefix(&prefix).is_some_and(|rest| {
        let b = rest.as_bytes();
        b.len() == 13
            && b[8] == b'-'
            && Date::parse_compact(&rest[..8]).is_some()
            && b[9..].iter().all(u8::is_ascii_digit)
            && &rest[9..] != "0000"
    });
    if !number_ok {
        cx.error("/SJB/BT/SJBBH", format!("'{number}' is not SJB-{unit}-yyyyMMdd-NNNN"));
    }
    match jls.parse::<usize>() {
        Ok(n) if n == count && (1..=MAX_RECORDS).contains(&n) => {}
        _ => cx.error("/SJB/BT/JLS", format!("'{jls}' but the package has {count} records (1–{MAX_RECORDS})")),
    }
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        cx.error("/SJB/BT/ZY", "expected 64 lower-case hex digits");
    }
    Some(PackageHeader {
        number,
        reporting_unit: unit,
        package_type: package_type?,
        sent_at: sent_at?.to_timestamp(),
        record_count: count,
        digest,
    })
}

fn check_record(t: PackageType, jl: Element<'_>, path: &str, cx: &mut Ctx) -> PackageRecord {
    let mut fields = Vec::new();
    // Every problem of the record names its own id (rule 2), where it has one.
    let id_element = match t {
        PackageType::SpotCheckResults => "CYDBH",
        PackageType::RiskReports => "FXBH",
        PackageType::ResponsibilityReports => "XYDM",
        PackageType::ClosedCases | PackageType::CaseForwards => "AJBH",
    };
    cx.record_id = jl.child(id_element).map(|e| e.text().trim().to_string()).filter(|id| !id.is_empty());
    check_plain(jl, path, cx);
    check_children(jl, t.record_children(), path, "", &mut fields, cx);
    cx.record_id = None;
    fields
}

fn check_children(el: Element<'_>, expected: &[&str], path: &str, prefix: &str, out: &mut PackageRecord, cx: &mut Ctx) {
    let names: Vec<&str> = expected.iter().map(|n| n.trim_end_matches('/')).collect();
    let repeated = names == ["XM"];
    if !repeated {
        let got: Vec<&str> = el.children().map(|c| c.name()).collect();
        for n in &names {
            if !got.contains(n) {
                cx.error(
                    format!("{path}/{n}"),
                    "required (every element of a record is present; absent values are empty elements)",
                );
            }
        }
        for c in el.children() {
            if !names.contains(&c.name()) {
                cx.error(
                    format!("{path}/{}", c.name()),
                    format!("unknown element <{}> (expected: {})", c.name(), names.join(", ")),
                );
            }
        }
    }
    for (i, c) in el.children().enumerate() {
        let (cpath, key) = if repeated {
            (format!("{path}/{}[{}]", c.name(), i + 1), format!("{prefix}{}[{}]", c.name(), i + 1))
        } else {
            (format!("{path}/{}", c.name()), format!("{prefix}{}", c.name()))
        };
        check_plain(c, &cpath, cx);
        let group = group_children(c.name());
        if !group.is_empty() {
            if repeated && c.name() != "XM" {
                cx.error(cpath.clone(), format!("unexpected element <{}>", c.name()));
            }
            check_children(c, group, &cpath, &format!("{key}/"), out, cx);
            continue;
        }
        let text = leaf_text(c, &cpath, cx);
        if !text.is_empty() {
            if let Some(words) = allowed_words(c.name()) {
                if !words.contains(&text.as_str()) {
                    cx.error(cpath.clone(), format!("'{text}' is not one of: {}", words.join(", ")));
                }
            }
            if c.name() == "XYDM" {
                for p in identifiers::check_uscc(&text) {
                    cx.error(cpath.clone(), format!("'{text}': {p}"));
                }
            }
        }
        out.push((key, text));
    }
}

/// SAMR's answer to a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// `SJBBH` the package answered.
    pub number: String,
    /// `JSZT` 1 accepted, 0 rejected.
    pub accepted: bool,
    /// `CWXX` the reason when rejected (Chinese text).
    pub reason: String,
}

/// Writes a receipt in GB18030.
pub fn encode_receipt(r: &Receipt) -> Vec<u8> {
    let mut w = Writer::fragment(0);
    w.out.push_str(DECLARATION);
    w.out.push('\n');
    let mut inner = String::new();
    for (name, text) in
        [("SJBBH", r.number.as_str()), ("JSZT", if r.accepted { "1" } else { "0" }), ("CWXX", r.reason.as_str())]
    {
        if text.is_empty() {
            inner.push_str(&format!("<{name}/>"));
        } else {
            inner.push_str(&format!("<{name}>{}</{name}>", quick_xml::escape::minimal_escape(text)));
        }
    }
    w.out.push_str(&format!("<HZ>{inner}</HZ>\n"));
    gb18030(&w.out)
}

/// Reads a receipt (GB18030).
pub fn decode_receipt(bytes: &[u8]) -> Result<Receipt, DecodeError> {
    let limits = DecodeLimits::default();
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge { size: bytes.len(), limit: limits.max_bytes });
    }
    if let Some(enc) = xml::sniff_encoding(bytes) {
        if !enc.eq_ignore_ascii_case("GB18030") {
            return Err(DecodeError::refused("/", format!("declared encoding '{enc}': receipts are GB18030")));
        }
    }
    let text = encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(bytes)
        .ok_or_else(|| DecodeError::refused("/", "the bytes are not valid GB18030"))?;
    let mut stream = Stream::new(text.as_bytes(), &limits, None);
    let hz = match stream.next()? {
        Next::Start(el) if el.name() == "HZ" => stream.subtree(el)?,
        Next::Start(el) => {
            return Err(DecodeError::refused(
                "/",
                format!("the root element is <{}>; expected <HZ> (a SAMR receipt)", el.name()),
            ))
        }
        _ => return Err(DecodeError::refused("/", "no root element; expected <HZ> (a SAMR receipt)")),
    };
    stream.finish()?;
    let mut cx = Ctx::default();
    check_plain(hz.root(), "/HZ", &mut cx);
    for c in hz.root().children() {
        let path = format!("/HZ/{}", c.name());
        check_plain(c, &path, &mut cx);
        if !["SJBBH", "JSZT", "CWXX"].contains(&c.name()) {
            cx.error(path, format!("unknown element <{}> (expected SJBBH, JSZT, CWXX)", c.name()));
        }
    }
    let get = |n: &str, cx: &mut Ctx| match hz.root().child(n) {
        Some(e) => leaf_text(e, &format!("/HZ/{n}"), cx),
        None => {
            cx.error(format!("/HZ/{n}"), "required");
            String::new()
        }
    };
    let number = get("SJBBH", &mut cx);
    let status = get("JSZT", &mut cx);
    let reason = get("CWXX", &mut cx);
    let accepted = match status.as_str() {
        "1" => true,
        "0" => false,
        other => {
            cx.error("/HZ/JSZT", format!("'{other}' is not 1 (accepted) or 0 (rejected)"));
            false
        }
    };
    if cx.problems.is_empty() {
        Ok(Receipt { number, accepted, reason })
    } else {
        Err(DecodeError::Invalid(cx.problems))
    }
}
