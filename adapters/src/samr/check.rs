//! The package checker: a received SAMR package checked as SAMR's intake would (GB18030,
//! structure, every element present, coded values, identifiers, record count, package number,
//! the SM3 digest). Used by the SAMR simulator and the conformance suites.

use super::{allowed_words, group_children, sm3_hex, PackageType, MAX_RECORDS};
use crate::model::*;
use crate::problems::Ctx;
use crate::xml::{self, Element, Next, Ns, Start, Stream, Tree};
use yrdx_proto::civil::BeijingTime;
use yrdx_proto::{identifiers, Date, Timestamp};

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

pub(super) fn leaf_text(el: Element<'_>, path: &str, cx: &mut Ctx) -> String {
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
pub(super) fn check_plain(el: Element<'_>, path: &str, cx: &mut Ctx) {
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
