//! The safe streaming reader: pulls a document held as text element by element, refusing what
//! a partner document may not contain (DOCTYPE, entities, deep nesting, too many elements).

use super::{is_xml_space, Ns};
use crate::model::{DecodeError, DecodeLimits};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::Reader;
use std::borrow::Cow;

/// The namespace declarations in scope, innermost last: (element depth, prefix — empty for the
/// default namespace —, what the namespace is to the reader). A document usually declares one
/// namespace on its root, so this stays tiny; resolving here costs a fraction of quick-xml's
/// general `NsReader`, and comparing each URI once, when declared, keeps string comparisons off
/// the per-element path.
#[derive(Clone)]
struct NsScope {
    bindings: Vec<(usize, String, Ns)>,
    expected: Option<&'static str>,
}

/// The namespace the `xml:` prefix is bound to by definition.
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

impl NsScope {
    /// Takes the declarations of an element at `depth` into scope.
    fn declare(&mut self, depth: usize, start: &BytesStart<'_>) -> Result<(), DecodeError> {
        // Most elements declare nothing (most have no attributes at all): a substring search
        // skips the attribute parse.
        let raw = start.attributes_raw();
        if raw.is_empty() || !raw.contains("xmlns") {
            return Ok(());
        }
        // Duplicates are refused by `Start::each_attr`, which sees every element's attributes.
        for a in start.attributes().with_checks(false) {
            let a = a.map_err(|e| refused(format!("bad attribute: {e}")))?;
            let key = a.key.as_ref();
            let prefix = if key == "xmlns" {
                ""
            } else if let Some(p) = key.strip_prefix("xmlns:") {
                if p.is_empty() {
                    return Err(refused("an empty namespace prefix is declared"));
                }
                p
            } else {
                continue;
            };
            let uri = a.value.as_ref();
            let ns = if uri.is_empty() {
                if !prefix.is_empty() {
                    return Err(refused(format!("the prefix '{prefix}' is declared with an empty namespace")));
                }
                Ns::None
            } else if Some(uri) == self.expected {
                Ns::Expected
            } else {
                Ns::Other
            };
            self.bindings.push((depth, prefix.to_string(), ns));
        }
        Ok(())
    }

    /// The namespace of an element's qualified name, whose local part starts at `local`.
    fn resolve(&self, qname: &str, local: usize) -> Result<Ns, DecodeError> {
        let prefix = &qname[..local.saturating_sub(1)];
        if prefix == "xml" {
            return Ok(if self.expected == Some(XML_NS) { Ns::Expected } else { Ns::Other });
        }
        // The default namespace is by far the most common: compare lengths first, so the empty
        // prefix never reaches `memcmp` (an empty `String` has a dangling pointer, and some
        // `memcmp` implementations pay a slow masked load for it: a quarter of the decode time).
        match self.bindings.iter().rev().find(|(_, p, _)| p.len() == prefix.len() && (prefix.is_empty() || p == prefix))
        {
            Some((_, _, ns)) => Ok(*ns),
            None if prefix.is_empty() => Ok(Ns::None),
            None => Err(refused(format!("element <{qname}> uses the undeclared prefix '{prefix}'"))),
        }
    }

    /// Drops the declarations of the element at `depth` (it ended).
    fn close(&mut self, depth: usize) {
        while self.bindings.last().is_some_and(|(d, ..)| *d >= depth) {
            self.bindings.pop();
        }
    }
}

/// Whether text is only XML white space (space, tab, CR, LF): a byte test, cheaper than

#[derive(Clone)]
pub(crate) struct Start<'a> {
    event: BytesStart<'a>,
    /// Where the local name starts in the qualified name (after `prefix:`).
    local: usize,
    /// Namespace relative to the expected one.
    pub ns: Ns,
    /// `<x/>`: nothing inside, and no end follows.
    pub empty: bool,
}

impl Start<'_> {
    /// Local name (prefix removed).
    pub fn name(&self) -> &str {
        &self.event.name().into_inner()[self.local..]
    }

    /// Calls `f` with each attribute other than namespace declarations, its value unescaped (only
    /// the predefined entities and character references are allowed: anything else is refused).
    pub fn each_attr(&self, mut f: impl FnMut(&str, &str)) -> Result<(), DecodeError> {
        // Most elements have none: skip setting up the attribute parser.
        if self.event.attributes_raw().is_empty() {
            return Ok(());
        }
        // quick-xml's own duplicate check allocates for every element with attributes; elements
        // here have a handful, so a fixed array (a vector past eight) does it without.
        let (mut seen, mut count, mut more) = ([""; 8], 0, Vec::new());
        for a in self.event.attributes().with_checks(false) {
            let a = a.map_err(|e| refused(format!("bad attribute in <{}>: {e}", self.name())))?;
            let key = a.key.into_inner();
            if seen[..count.min(8)].contains(&key) || more.contains(&key) {
                return Err(refused(format!("attribute {key} appears twice in <{}>", self.name())));
            }
            if count < 8 {
                seen[count] = key;
            } else {
                more.push(key);
            }
            count += 1;
            if key == "xmlns" || key.starts_with("xmlns:") {
                continue;
            }
            let value = a.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|e| {
                refused(format!("attribute {key} of <{}>: {e} (only the predefined entities are allowed)", self.name()))
            })?;
            f(key, &value);
        }
        Ok(())
    }

    /// The namespace URI this element's own prefix (or the default namespace) is declared with
    /// on the element itself, if it is declared there: what an error about a root element in the
    /// wrong namespace shows as found.
    pub fn own_namespace_declaration(&self) -> Option<String> {
        let qname = self.event.name().into_inner();
        let prefix = &qname[..self.local.saturating_sub(1)];
        let wanted = if prefix.is_empty() { "xmlns".to_string() } else { format!("xmlns:{prefix}") };
        self.event
            .attributes()
            .with_checks(false)
            .flatten()
            .find(|a| a.key.into_inner() == wanted)
            .map(|a| a.value.to_string())
    }

    /// The prefix of the element's qualified name (`zj` of `zj:Exchange`; empty for none).
    pub fn prefix(&self) -> &str {
        &self.event.name().into_inner()[..self.local.saturating_sub(1)]
    }

    /// The value of one attribute, if present.
    pub fn attr(&self, name: &str) -> Result<Option<String>, DecodeError> {
        let mut found = None;
        self.each_attr(|k, v| {
            if k == name && found.is_none() {
                found = Some(v.to_string());
            }
        })?;
        Ok(found)
    }
}

/// What comes next at the current level of a [`Stream`], between elements.
pub(crate) enum Next<'a> {
    /// An element starts.
    Start(Start<'a>),
    /// The element whose children were being read ends.
    End,
    /// The document ends.
    Eof,
}

/// What comes next inside an element whose children are being read.
pub(crate) enum Content<'a> {
    /// A child element starts.
    Start(Start<'a>),
    /// Character data that is not white space (beside child elements: the caller decides).
    Text,
    /// The element ends.
    End,
}

/// A streaming reader over a whole document held as text. Cloning it is cheap (a position in the
/// borrowed text and the namespaces in scope): a decoder may come back to an element later.
#[derive(Clone)]
pub(crate) struct Stream<'a> {
    reader: Reader<&'a [u8]>,
    scope: NsScope,
    depth: usize,
    max_depth: usize,
    /// Elements read so far, bounded by `max_nodes` (a million empty elements are refused
    /// before they are interpreted).
    elements: usize,
    max_nodes: usize,
}

pub(super) fn refused(message: impl Into<String>) -> DecodeError {
    DecodeError::refused("/", message)
}

/// The character a reference stands for: a character reference, or one of the five predefined
/// entities; any other entity is refused (no DTD can have declared it).
pub(super) fn resolve_ref(r: &BytesRef<'_>) -> Result<char, DecodeError> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(ch)) => Ok(ch),
            _ => Err(refused(format!("bad character reference &{};", &**r))),
        };
    }
    match &**r {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(refused(format!("entity reference &{other}; is not allowed (only the five predefined entities)"))),
    }
}

/// Appends a piece of character data, borrowing the first piece from the document.
fn append<'a>(text: &mut Cow<'a, str>, piece: Cow<'a, str>) {
    if text.is_empty() {
        *text = piece;
    } else {
        text.to_mut().push_str(&piece);
    }
}

impl<'a> Stream<'a> {
    /// A stream over a UTF-8 document (a byte-order mark is skipped; bytes that are not UTF-8
    /// are refused as they are read: every byte belongs to some event, and [`Stream::finish`]
    /// reads the rest after the root element); elements in `expected_ns` come out as
    /// [`Ns::Expected`].
    pub fn new(text: &'a [u8], limits: &DecodeLimits, expected_ns: Option<&'static str>) -> Stream<'a> {
        let mut reader = Reader::from_reader(text);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Stream {
            reader,
            scope: NsScope { bindings: Vec::new(), expected: expected_ns },
            depth: 0,
            max_depth: limits.max_depth,
            elements: 0,
            max_nodes: limits.max_nodes,
        }
    }

    #[inline]
    pub(super) fn read(&mut self) -> Result<Event<'a>, DecodeError> {
        match self.reader.read_event() {
            Ok(event) => Ok(event),
            Err(e) => Err(self.not_well_formed(e)),
        }
    }

    #[cold]
    fn not_well_formed(&self, e: quick_xml::Error) -> DecodeError {
        let at = self.reader.error_position();
        match e {
            quick_xml::Error::Encoding(e) => refused(format!("not valid UTF-8 near byte {at}: {e}")),
            e => refused(format!("not well-formed XML near byte {at}: {e}")),
        }
    }

    /// Reads what follows the root element: only white space, comments and processing
    /// instructions may (a second root, or text, is not well-formed).
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        loop {
            let pos = self.reader.buffer_position();
            match self.read()? {
                Event::Eof => return Ok(()),
                Event::Text(t) if is_xml_space(&t) => {}
                Event::Comment(_) | Event::PI(_) => {}
                _ => return Err(refused(format!("content after the root element near byte {pos}"))),
            }
        }
    }

    /// Enters an element: depth limit, namespace declarations, its namespace.
    pub(super) fn open(&mut self, event: BytesStart<'a>, empty: bool) -> Result<Start<'a>, DecodeError> {
        let depth = self.depth + 1;
        if depth > self.max_depth {
            return Err(refused(format!("nesting is deeper than the limit of {} levels", self.max_depth)));
        }
        self.elements += 1;
        if self.elements > self.max_nodes {
            let at = self.reader.buffer_position();
            return Err(refused(format!(
                "the document holds more than {} elements, the limit (near byte {at})",
                self.max_nodes
            )));
        }
        self.scope.declare(depth, &event)?;
        let qname = event.name().into_inner();
        let local = qname.bytes().position(|b| b == b':').map_or(0, |i| i + 1);
        let ns = self.scope.resolve(qname, local);
        if empty {
            self.scope.close(depth);
        } else {
            self.depth = depth;
        }
        Ok(Start { event, local, ns: ns?, empty })
    }

    /// Leaves the innermost open element.
    pub(super) fn close(&mut self) {
        self.scope.close(self.depth);
        self.depth = self.depth.saturating_sub(1);
    }

    /// Reads to the next element start or end at the current level. Text between elements must be
    /// white space.
    pub fn next(&mut self) -> Result<Next<'a>, DecodeError> {
        loop {
            let pos = self.reader.buffer_position();
            match self.read()? {
                Event::Start(s) => return Ok(Next::Start(self.open(s, false)?)),
                Event::Empty(s) => return Ok(Next::Start(self.open(s, true)?)),
                Event::End(_) => {
                    self.close();
                    return Ok(Next::End);
                }
                Event::Eof => return Ok(Next::Eof),
                Event::Text(t) => {
                    if !is_xml_space(&t) {
                        return Err(refused(format!("unexpected text '{}' near byte {pos}", t.trim())));
                    }
                }
                Event::CData(c) => {
                    if !c.trim().is_empty() {
                        return Err(refused(format!("unexpected CDATA near byte {pos}")));
                    }
                }
                Event::GeneralRef(_) => return Err(refused(format!("unexpected entity reference near byte {pos}"))),
                Event::DocType(_) => {
                    return Err(refused(
                        "a DOCTYPE is not allowed (no DTDs, entity declarations or external references)",
                    ))
                }
                // The declared encoding was checked on the raw bytes (`sniff_encoding`).
                Event::Decl(_) => {}
                Event::Comment(_) | Event::PI(_) => {}
            }
        }
    }

    /// Reads the next piece of the content of the element being read: a child element, the
    /// element's end, or non-white character data.
    pub fn content(&mut self) -> Result<Content<'a>, DecodeError> {
        loop {
            match self.read()? {
                Event::Start(s) => return Ok(Content::Start(self.open(s, false)?)),
                Event::Empty(s) => return Ok(Content::Start(self.open(s, true)?)),
                Event::End(_) => {
                    self.close();
                    return Ok(Content::End);
                }
                Event::Text(t) if !is_xml_space(&t) => return Ok(Content::Text),
                Event::CData(c) if !is_xml_space(&c) => return Ok(Content::Text),
                Event::GeneralRef(r) => {
                    if !matches!(resolve_ref(&r)?, ' ' | '\t' | '\r' | '\n') {
                        return Ok(Content::Text);
                    }
                }
                event => self.refuse_outside_content(event)?,
            }
        }
    }

    /// Refuses what may not appear inside an element; white space, comments and processing
    /// instructions pass.
    pub(super) fn refuse_outside_content(&self, event: Event<'a>) -> Result<(), DecodeError> {
        match event {
            Event::Eof => Err(refused("the document ends inside an element")),
            Event::DocType(_) => Err(refused("a DOCTYPE is not allowed")),
            Event::Decl(_) => Err(refused("misplaced XML declaration")),
            _ => Ok(()),
        }
    }

    /// Reads the character data of the element `start` up to its end (line ends normalised,
    /// references resolved); `None` when it holds child elements, which are read and checked but
    /// not kept.
    pub fn leaf_text(&mut self, start: &Start<'a>) -> Result<Option<Cow<'a, str>>, DecodeError> {
        let mut text = Cow::Borrowed("");
        if start.empty {
            return Ok(Some(text));
        }
        let mut children = false;
        loop {
            match self.read()? {
                Event::Text(t) => append(&mut text, t.xml10_content()),
                Event::CData(c) => append(&mut text, c.xml10_content()),
                Event::GeneralRef(r) => {
                    let ch = resolve_ref(&r)?;
                    text.to_mut().push(ch);
                }
                Event::Start(s) => {
                    children = true;
                    let child = self.open(s, false)?;
                    self.skip(child)?;
                }
                Event::Empty(s) => {
                    children = true;
                    let child = self.open(s, true)?;
                    self.skip(child)?;
                }
                Event::End(_) => {
                    self.close();
                    return Ok(if children { None } else { Some(text) });
                }
                event => self.refuse_outside_content(event)?,
            }
        }
    }

    /// Reads past the element `start` and everything inside it, still refusing what is refused
    /// anywhere (bad attributes, entities, undeclared prefixes, too deep nesting).
    pub fn skip(&mut self, start: Start<'a>) -> Result<(), DecodeError> {
        start.each_attr(|_, _| {})?;
        if start.empty {
            return Ok(());
        }
        let mut open = 1usize;
        while open > 0 {
            match self.read()? {
                Event::Start(s) => {
                    self.open(s, false)?.each_attr(|_, _| {})?;
                    open += 1;
                }
                Event::Empty(s) => self.open(s, true)?.each_attr(|_, _| {})?,
                Event::End(_) => {
                    self.close();
                    open -= 1;
                }
                Event::GeneralRef(r) => {
                    resolve_ref(&r)?;
                }
                event => self.refuse_outside_content(event)?,
            }
        }
        Ok(())
    }
}
