//! Safe XML for the XML formats: two readers and a writer, each in its own file.
//!
//! - `stream.rs` — [`Stream`], the safe streaming reader both readers rest on: it refuses a
//!   DOCTYPE, every entity reference other than the five predefined ones and character
//!   references, and nesting deeper than the limit, and resolves namespaces by URI. Zhejiang
//!   pulls its documents element by element ([`Stream::content`], [`Stream::leaf_text`],
//!   [`Stream::skip`]) and fills its records straight from the events.
//! - `tree.rs` — [`Tree`], one small element tree per record ([`Stream::subtree`]), which SAMR's
//!   package checker and receipts walk; a large document is never held as a whole tree.
//! - `writer.rs` — [`Writer`], the deterministic indented writer every XML encoder uses.

mod stream;
mod tree;
mod writer;

pub(crate) use stream::{Content, Next, Start, Stream};
pub(crate) use tree::{Element, Tree};
pub(crate) use writer::Writer;

/// An element's namespace relative to the one its format expects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Ns {
    /// No namespace.
    #[default]
    None,
    /// The namespace the stream was told to expect.
    Expected,
    /// Some other namespace.
    Other,
}

/// Whether text is XML white space only.
fn is_xml_space(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// Reads the encoding label of an XML declaration at the start of raw bytes, if any.
pub(crate) fn sniff_encoding(bytes: &[u8]) -> Option<String> {
    let decl = bytes.strip_prefix(b"<?xml")?;
    let end = decl[..decl.len().min(200)].windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&decl[..end]).ok()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + 8..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let rest = &rest[1..];
    Some(rest[..rest.find(quote)?].to_string())
}

#[cfg(test)]
mod tests {
    use super::stream::refused;
    use super::*;
    use crate::model::{DecodeError, DecodeLimits};

    fn read_all(text: &str) -> Result<Tree, DecodeError> {
        let mut s = Stream::new(text.as_bytes(), &DecodeLimits::default(), Some("urn:x"));
        let tree = match s.next()? {
            Next::Start(el) => s.subtree(el)?,
            Next::End | Next::Eof => return Err(refused("no root")),
        };
        s.finish()?;
        Ok(tree)
    }

    #[test]
    fn refuses_doctype_and_entities() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><r>&a;</r>"#;
        assert!(matches!(read_all(bomb), Err(DecodeError::Refused { .. })));
        assert!(read_all("<r>&custom;</r>").is_err());
        let ok = read_all("<r a=\"1&amp;2\">x &lt; y &#x4E2D;<![CDATA[<z>]]></r>").unwrap();
        assert_eq!(ok.root().text(), "x < y 中<z>");
        assert_eq!(ok.root().attrs().collect::<Vec<_>>(), [("a", "1&2")]);
    }

    #[test]
    fn refuses_what_follows_the_root_and_bad_utf8() {
        assert!(read_all("<r/>\n<!-- done -->\n").is_ok());
        assert!(read_all("<r/><r/>").is_err(), "a second root");
        assert!(read_all("<r/>text").is_err(), "text after the root");
        for bytes in [&b"<r>\xff</r>"[..], b"<r a=\"\xc3\"/>", b"<r/><!-- \xe4\xb8 -->", b"<r/>\xff", b"<\xff/>"] {
            let mut s = Stream::new(bytes, &DecodeLimits::default(), None);
            let read = match s.next() {
                Ok(Next::Start(el)) => s.subtree(el).and_then(|_| s.finish()),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            let err = read.expect_err("invalid UTF-8 refused");
            assert!(err.to_string().contains("UTF-8"), "{err}");
        }
    }

    #[test]
    fn refuses_duplicate_attributes() {
        assert!(read_all(r#"<r a="1" a="2"/>"#).is_err());
        assert!(read_all(r#"<r xmlns="urn:x" xmlns="urn:y"/>"#).is_err());
        assert!(read_all(r#"<r><c b="1" b="1">x</c></r>"#).is_err(), "on a child too");
        let many: String = (0..10).map(|i| format!(" a{i}=\"{i}\"")).collect();
        assert_eq!(read_all(&format!("<r{many}/>")).unwrap().root().attrs().count(), 10);
        assert!(read_all(&format!("<r{many} a9=\"x\"/>")).is_err(), "past the first eight");
        assert!(read_all(&format!("<r{many} a0=\"x\"/>")).is_err(), "within the first eight");
    }

    #[test]
    fn elements_are_counted_against_the_limit() {
        let limits = DecodeLimits { max_nodes: 5, ..DecodeLimits::default() };
        let read = |text: &str| -> Result<(), DecodeError> {
            let mut s = Stream::new(text.as_bytes(), &limits, None);
            match s.next()? {
                Next::Start(el) => s.skip(el)?,
                _ => return Err(refused("no root")),
            }
            s.finish()
        };
        assert!(read("<r><a/><a/><a/><a/></r>").is_ok(), "five elements");
        let err = read("<r><a/><a/><a/><a/><a/></r>").expect_err("six elements");
        assert!(err.to_string().contains("more than 5 elements"), "{err}");
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
        let tree = read_all(r#"<z:r xmlns:z="urn:x"><z:c>1</z:c><d/> <e>x</e></z:r>"#).unwrap();
        let el = tree.root();
        assert_eq!(el.ns(), Ns::Expected);
        let names: Vec<&str> = el.children().map(|c| c.name()).collect();
        assert_eq!(names, ["c", "d", "e"]);
        assert_eq!(el.child("c").unwrap().text(), "1");
        assert_eq!(el.child("e").unwrap().ns(), Ns::None);
        assert!(!el.mixed());
        assert!(read_all("<r>a<b/></r>").unwrap().root().mixed());
        assert!(read_all("<r><b/>a</r>").unwrap().root().mixed());
        assert!(read_all("<q:r/>").is_err(), "undeclared prefix");
    }

    #[test]
    fn namespace_scopes_follow_the_elements() {
        // A declaration on a child holds for it and its children only; `xmlns=""` undeclares.
        let tree = read_all(
            r#"<r xmlns="urn:x"><a xmlns="urn:other"><b/></a><c/><d xmlns=""><e/></d><p:f xmlns:p="urn:x"/><g/></r>"#,
        )
        .unwrap();
        let root = tree.root();
        let ns = |name: &str| root.child(name).unwrap().ns();
        assert_eq!(root.ns(), Ns::Expected);
        assert_eq!(ns("a"), Ns::Other);
        assert_eq!(root.child("a").unwrap().child("b").unwrap().ns(), Ns::Other);
        assert_eq!(ns("c"), Ns::Expected, "the child's declaration ended with it");
        assert_eq!(ns("d"), Ns::None);
        assert_eq!(root.child("d").unwrap().child("e").unwrap().ns(), Ns::None);
        assert_eq!(ns("f"), Ns::Expected, "a prefix declared on an empty element");
        assert_eq!(ns("g"), Ns::Expected);
        // A prefix declared on an empty sibling is gone after it.
        assert!(read_all(r#"<r xmlns="urn:x"><p:a xmlns:p="urn:x"/><p:b/></r>"#).is_err());
        assert!(read_all(r#"<r xmlns:p=""/>"#).is_err(), "a prefix cannot be undeclared");
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
