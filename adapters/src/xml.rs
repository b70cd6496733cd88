//! Safe, streaming XML reading (Zhejiang and SAMR) and a small deterministic writer.
//!
//! The reader refuses a DOCTYPE, every entity reference other than the five predefined ones and
//! character references, and nesting deeper than the limit. It hands the caller one small element
//! tree per record (`Stream::subtree`), so a large document is never held as a whole tree.

use crate::model::{DecodeError, DecodeLimits};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// One element with its children: a record, or the envelope header.
#[derive(Debug, Clone, Default)]
pub(crate) struct Element {
    /// Local name (prefix removed).
    pub name: String,
    /// Namespace URI, if bound.
    pub ns: Option<String>,
    /// Attributes other than namespace declarations: (qualified name, value).
    pub attrs: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Concatenated character data (text and CDATA) directly inside this element.
    pub text: String,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
}

/// What comes next at the current level of a [`Stream`].
pub(crate) enum Next {
    /// An element starts (`empty` when it is `<x/>`).
    Start(Element, bool),
    /// The element whose children were being read ends.
    End,
    /// The document ends.
    Eof,
}

/// A streaming reader over a whole document held as text.
pub(crate) struct Stream<'a> {
    reader: NsReader<&'a [u8]>,
    depth: usize,
    max_depth: usize,
    /// Whether an XML declaration was seen, and its encoding label.
    pub declared_encoding: Option<String>,
    pub saw_declaration: bool,
}

fn refused(message: impl Into<String>) -> DecodeError {
    DecodeError::refused("/", message)
}

impl<'a> Stream<'a> {
    pub fn new(text: &'a str, limits: &DecodeLimits) -> Stream<'a> {
        let mut reader = NsReader::from_str(text);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Stream { reader, depth: 0, max_depth: limits.max_depth, declared_encoding: None, saw_declaration: false }
    }

    fn position(&self) -> u64 {
        self.reader.buffer_position()
    }

}

fn head(ns: ResolveResult<'_>, start: &BytesStart<'_>) -> Result<Element, DecodeError> {
        let name = start.local_name().as_ref().to_string();
        let ns = match ns {
            ResolveResult::Bound(n) => Some(n.as_ref().to_string()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(p) => {
                return Err(refused(format!("element <{name}> uses the undeclared prefix '{}'", String::from_utf8_lossy(p.as_ref()))))
            }
        };
        let mut attrs = Vec::new();
        for a in start.attributes() {
            let a = a.map_err(|e| refused(format!("bad attribute in <{name}>: {e}")))?;
            let key = a.key.as_ref().to_string();
            if key == "xmlns" || key.starts_with("xmlns:") {
                continue;
            }
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| refused(format!("attribute {key} of <{name}>: {e} (only the predefined entities are allowed)")))?;
            attrs.push((key, value.into_owned()));
        }
        Ok(Element { name, ns, attrs, children: Vec::new(), text: String::new() })
}

impl<'a> Stream<'a> {
    /// Reads to the next element start or end at the current level. Text between elements must be
    /// white space.
    pub fn next(&mut self) -> Result<Next, DecodeError> {
        loop {
            let pos = self.position();
            let (ns, event) = self
                .reader
                .read_resolved_event()
                .map_err(|e| refused(format!("not well-formed XML near byte {pos}: {e}")))?;
            match event {
                Event::Start(s) => {
                    let el = head(ns, &s)?;
                    self.enter()?;
                    return Ok(Next::Start(el, false));
                }
                Event::Empty(s) => return Ok(Next::Start(head(ns, &s)?, true)),
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    return Ok(Next::End);
                }
                Event::Eof => return Ok(Next::Eof),
                Event::Text(t) => {
                    if !t.trim().is_empty() {
                        return Err(refused(format!("unexpected text '{}' near byte {pos}", t.trim())));
                    }
                }
                Event::CData(c) => {
                    if !c.trim().is_empty() {
                        return Err(refused(format!("unexpected CDATA near byte {pos}")));
                    }
                }
                Event::GeneralRef(_) => return Err(refused(format!("unexpected entity reference near byte {pos}"))),
                Event::DocType(_) => return Err(refused("a DOCTYPE is not allowed (no DTDs, entity declarations or external references)")),
                Event::Decl(d) => {
                    self.saw_declaration = true;
                    if let Some(enc) = d.encoding() {
                        let enc = enc.map_err(|e| refused(format!("XML declaration: {e}")))?;
                        self.declared_encoding = Some(enc.to_string());
                    }
                }
                Event::Comment(_) | Event::PI(_) => {}
            }
        }
    }

    fn enter(&mut self) -> Result<(), DecodeError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(refused(format!("nesting is deeper than the limit of {} levels", self.max_depth)));
        }
        Ok(())
    }

    /// Reads the children and text of an element whose start was just returned by `next`.
    pub fn subtree(&mut self, mut el: Element, empty: bool) -> Result<Element, DecodeError> {
        if empty {
            return Ok(el);
        }
        loop {
            let pos = self.position();
            let (ns, event) = self
                .reader
                .read_resolved_event()
                .map_err(|e| refused(format!("not well-formed XML near byte {pos}: {e}")))?;
            match event {
                Event::Start(s) => {
                    let child = head(ns, &s)?;
                    self.enter()?;
                    let child = self.subtree(child, false)?;
                    el.children.push(child);
                }
                Event::Empty(s) => el.children.push(head(ns, &s)?),
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    return Ok(el);
                }
                Event::Text(t) => el.text.push_str(&t.xml10_content()),
                Event::CData(c) => el.text.push_str(&c.xml10_content()),
                Event::GeneralRef(r) => {
                    if r.is_char_ref() {
                        match r.resolve_char_ref() {
                            Ok(Some(ch)) => el.text.push(ch),
                            _ => return Err(refused(format!("bad character reference &{};", &*r))),
                        }
                    } else {
                        el.text.push(match &*r {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "apos" => '\'',
                            "quot" => '"',
                            other => {
                                return Err(refused(format!(
                                    "entity reference &{other}; is not allowed (only the five predefined entities)"
                                )))
                            }
                        });
                    }
                }
                Event::Eof => return Err(refused(format!("document ends inside <{}>", el.name))),
                Event::DocType(_) => return Err(refused("a DOCTYPE is not allowed")),
                Event::Decl(_) => return Err(refused("misplaced XML declaration")),
                Event::Comment(_) | Event::PI(_) => {}
            }
        }
    }
}

/// Reads the encoding label of an XML declaration at the start of raw bytes, if any.
pub(crate) fn sniff_encoding(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(200)];
    let text = String::from_utf8_lossy(head);
    let decl = text.strip_prefix("<?xml")?;
    let end = decl.find("?>")?;
    let decl = &decl[..end];
    let at = decl.find("encoding")?;
    let rest = decl[at + 8..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let rest = &rest[1..];
    Some(rest[..rest.find(quote)?].to_string())
}

/// A deterministic, indented XML writer (two spaces a level, `\n` line ends).
pub(crate) struct Writer {
    pub out: String,
    depth: usize,
}

impl Writer {
    pub fn new(declaration: &str) -> Writer {
        let mut out = String::with_capacity(4096);
        out.push_str(declaration);
        out.push('\n');
        Writer { out, depth: 0 }
    }

    /// Starts at a given indentation depth with no declaration (a fragment).
    pub fn fragment(depth: usize) -> Writer {
        Writer { out: String::with_capacity(4096), depth }
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn tag(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            self.out.push_str(&quick_xml::escape::escape(*v));
            self.out.push('"');
        }
    }

    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.indent();
        self.tag(name, attrs);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    pub fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// `<name attrs>text</name>`, or `<name attrs/>` when text is empty.
    pub fn leaf(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        self.indent();
        self.tag(name, attrs);
        if text.is_empty() {
            self.out.push_str("/>\n");
        } else {
            self.out.push('>');
            self.out.push_str(&quick_xml::escape::minimal_escape(text));
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push_str(">\n");
        }
    }

    /// A leaf only when the value is present (Zhejiang omits absent values).
    pub fn opt_leaf(&mut self, name: &str, text: &str) {
        if !text.is_empty() {
            self.leaf(name, &[], text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str) -> Result<Element, DecodeError> {
        let mut s = Stream::new(text, &DecodeLimits::default());
        loop {
            match s.next()? {
                Next::Start(el, empty) => return s.subtree(el, empty),
                Next::End | Next::Eof => return Err(refused("no root")),
            }
        }
    }

    #[test]
    fn refuses_doctype_and_entities() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><r>&a;</r>"#;
        assert!(matches!(read_all(bomb), Err(DecodeError::Refused { .. })));
        assert!(read_all("<r>&custom;</r>").is_err());
        let ok = read_all("<r a=\"1&amp;2\">x &lt; y &#x4E2D;<![CDATA[<z>]]></r>").unwrap();
        assert_eq!(ok.text, "x < y 中<z>");
        assert_eq!(ok.attr("a"), Some("1&2"));
    }

    #[test]
    fn refuses_deep_nesting() {
        let deep = "<a>".repeat(40) + &"</a>".repeat(40);
        let err = read_all(&deep).unwrap_err();
        assert!(err.to_string().contains("deeper"), "{err}");
        let fine = "<a>".repeat(30) + &"</a>".repeat(30);
        assert!(read_all(&fine).is_ok());
    }

    #[test]
    fn resolves_namespaces_by_uri_not_prefix() {
        let el = read_all(r#"<z:r xmlns:z="urn:x"><z:c>1</z:c></z:r>"#).unwrap();
        assert_eq!(el.ns.as_deref(), Some("urn:x"));
        assert_eq!(el.children[0].name, "c");
        assert!(read_all("<q:r/>").is_err(), "undeclared prefix");
    }

    #[test]
    fn sniffs_declared_encoding() {
        assert_eq!(sniff_encoding(br#"<?xml version="1.0" encoding="GB18030"?><a/>"#).as_deref(), Some("GB18030"));
        assert_eq!(sniff_encoding(b"<?xml version='1.0' encoding='utf-8'?>").as_deref(), Some("utf-8"));
        assert_eq!(sniff_encoding(b"<a/>"), None);
    }
}

#[cfg(test)]
mod regression {
    /// Found by the no-panic property: a multi-byte character where the quote belongs.
    #[test]
    fn sniffing_a_multibyte_quote_does_not_panic() {
        assert_eq!(super::sniff_encoding("<?xml version=\"1.0\" encoding=\u{fffd}\"UTF-8\"?>".as_bytes()), None);
    }
}
