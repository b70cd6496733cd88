//! SAMR's receipts (`<HZ>`): the answer to one package, accepted or rejected with a reason.

use super::check::{check_plain, leaf_text};
use super::{gb18030, DECLARATION};
use crate::model::*;
use crate::problems::Ctx;
use crate::xml::{self, Next, Stream, Writer};

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
