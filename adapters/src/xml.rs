//! Safe, streaming XML reading (Zhejiang and SAMR) and a small deterministic writer.
//!
//! The reader refuses a DOCTYPE, every entity reference other than the five predefined ones and
//! character references, and nesting deeper than the limit. Callers either pull the document
//! element by element ([`Stream::content`], [`Stream::leaf_text`], [`Stream::skip`]: Zhejiang fills
//! its records straight from the events) or take one small element tree per record
//! ([`Stream::subtree`]: SAMR), so a large document is never held as a whole tree.

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
/// `str::trim`'s Unicode rules on the hot path.
fn is_xml_space(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// A span of [`Tree::strings`].
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    end: u32,
}

const NONE: u32 = u32::MAX;

/// One element of a [`Tree`].
#[derive(Debug, Clone)]
struct NodeData {
    name: Span,
    ns: Ns,
    attrs: (u32, u32),
    text: Span,
    /// Non-white text appeared beside child elements.
    mixed: bool,
    first_child: u32,
    last_child: u32,
    next_sibling: u32,
}

/// One record (or the envelope header) as a flat arena: every element, attribute and text of it
/// in three buffers, so reading a record costs a handful of allocations, not one per element.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tree {
    nodes: Vec<NodeData>,
    strings: String,
    attrs: Vec<(Span, Span)>,
}

impl Tree {
    fn with_capacity(bytes: usize) -> Tree {
        Tree { nodes: Vec::with_capacity(32), strings: String::with_capacity(bytes), attrs: Vec::with_capacity(8) }
    }

    fn push_str(&mut self, s: &str) -> Span {
        let start = self.strings.len() as u32;
        self.strings.push_str(s);
        Span { start, end: self.strings.len() as u32 }
    }

    fn str(&self, span: Span) -> &str {
        &self.strings[span.start as usize..span.end as usize]
    }

    /// Adds an element (its attributes checked and unescaped) under `parent`.
    fn add(&mut self, start: &Start<'_>, parent: Option<u32>) -> Result<u32, DecodeError> {
        let name = self.push_str(start.name());
        let a0 = self.attrs.len() as u32;
        start.each_attr(|k, v| {
            let ks = self.push_str(k);
            let vs = self.push_str(v);
            self.attrs.push((ks, vs));
        })?;
        Ok(self.link(name, start.ns, (a0, self.attrs.len() as u32), parent))
    }

    fn link(&mut self, name: Span, ns: Ns, attrs: (u32, u32), parent: Option<u32>) -> u32 {
        let idx = self.nodes.len() as u32;
        self.nodes.push(NodeData {
            name,
            ns,
            attrs,
            text: Span::default(),
            mixed: false,
            first_child: NONE,
            last_child: NONE,
            next_sibling: NONE,
        });
        if let Some(p) = parent {
            let last = self.nodes[p as usize].last_child;
            if last == NONE {
                self.nodes[p as usize].first_child = idx;
            } else {
                self.nodes[last as usize].next_sibling = idx;
            }
            self.nodes[p as usize].last_child = idx;
        }
        idx
    }

    /// Appends character data to an element. An element's text is only kept while it has no
    /// children, so its pieces stay contiguous in the buffer.
    fn add_text(&mut self, idx: u32, piece: &str) {
        let node = &self.nodes[idx as usize];
        if node.first_child != NONE {
            if !is_xml_space(piece) {
                self.nodes[idx as usize].mixed = true;
            }
            return;
        }
        let empty = node.text.start == node.text.end;
        if empty && is_xml_space(piece) {
            return;
        }
        let span = self.push_str(piece);
        let node = &mut self.nodes[idx as usize];
        if empty {
            node.text = span;
        } else {
            node.text.end = span.end;
        }
    }

    /// Marks text seen before the first child as beside children.
    fn start_child(&mut self, parent: u32) {
        let node = &mut self.nodes[parent as usize];
        if node.first_child == NONE && node.text.start != node.text.end {
            node.mixed = true;
            node.text = Span::default();
        }
    }

    /// The root element.
    pub fn root(&self) -> Element<'_> {
        Element { tree: self, idx: 0 }
    }
}

/// A read-only handle on one element of a [`Tree`].
#[derive(Clone, Copy)]
pub(crate) struct Element<'t> {
    tree: &'t Tree,
    idx: u32,
}

impl<'t> Element<'t> {
    fn data(&self) -> &'t NodeData {
        &self.tree.nodes[self.idx as usize]
    }

    /// Local name (prefix removed).
    pub fn name(&self) -> &'t str {
        self.tree.str(self.data().name)
    }

    /// Namespace relative to the expected one.
    pub fn ns(&self) -> Ns {
        self.data().ns
    }

    /// Character data directly inside (empty when the element has children).
    pub fn text(&self) -> &'t str {
        self.tree.str(self.data().text)
    }

    /// Whether non-white text appears beside child elements.
    pub fn mixed(&self) -> bool {
        self.data().mixed
    }

    /// Attributes other than namespace declarations, in document order.
    pub fn attrs(&self) -> impl Iterator<Item = (&'t str, &'t str)> + 't {
        let (a, b) = self.data().attrs;
        let tree = self.tree;
        tree.attrs[a as usize..b as usize].iter().map(move |(k, v)| (tree.str(*k), tree.str(*v)))
    }

    /// Whether the element has child elements.
    pub fn has_children(&self) -> bool {
        self.data().first_child != NONE
    }

    /// Child elements in document order.
    pub fn children(&self) -> Children<'t> {
        Children { tree: self.tree, next: self.data().first_child }
    }

    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<Element<'t>> {
        self.children().find(|c| c.name() == name)
    }
}

/// Iterator over child elements.
pub(crate) struct Children<'t> {
    tree: &'t Tree,
    next: u32,
}

impl<'t> Iterator for Children<'t> {
    type Item = Element<'t>;

    fn next(&mut self) -> Option<Element<'t>> {
        if self.next == NONE {
            return None;
        }
        let el = Element { tree: self.tree, idx: self.next };
        self.next = self.tree.nodes[self.next as usize].next_sibling;
        Some(el)
    }
}

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

/// An element start read by a [`Stream`]: its name, namespace and (still unparsed) attributes.
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

fn refused(message: impl Into<String>) -> DecodeError {
    DecodeError::refused("/", message)
}

/// The character a reference stands for: a character reference, or one of the five predefined
/// entities; any other entity is refused (no DTD can have declared it).
fn resolve_ref(r: &BytesRef<'_>) -> Result<char, DecodeError> {
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
    fn read(&mut self) -> Result<Event<'a>, DecodeError> {
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
    fn open(&mut self, event: BytesStart<'a>, empty: bool) -> Result<Start<'a>, DecodeError> {
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
    fn close(&mut self) {
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
    fn refuse_outside_content(&self, event: Event<'a>) -> Result<(), DecodeError> {
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

    /// Reads the element `start`, with everything inside it, into a [`Tree`] whose root it is.
    pub fn subtree(&mut self, start: Start<'a>) -> Result<Tree, DecodeError> {
        let mut tree = Tree::with_capacity(512);
        tree.add(&start, None)?;
        if start.empty {
            return Ok(tree);
        }
        // The open elements, innermost last; the root is 0.
        let mut open: Vec<u32> = vec![0];
        while let Some(&current) = open.last() {
            match self.read()? {
                Event::Start(s) => {
                    let child = self.open(s, false)?;
                    tree.start_child(current);
                    open.push(tree.add(&child, Some(current))?);
                }
                Event::Empty(s) => {
                    let child = self.open(s, true)?;
                    tree.start_child(current);
                    tree.add(&child, Some(current))?;
                }
                Event::End(_) => {
                    self.close();
                    open.pop();
                }
                Event::Text(t) => tree.add_text(current, &t.xml10_content()),
                Event::CData(c) => tree.add_text(current, &c.xml10_content()),
                Event::GeneralRef(r) => {
                    let mut buf = [0u8; 4];
                    tree.add_text(current, resolve_ref(&r)?.encode_utf8(&mut buf));
                }
                Event::Eof => {
                    let name = tree.str(tree.nodes[current as usize].name).to_string();
                    return Err(refused(format!("document ends inside <{name}>")));
                }
                event => self.refuse_outside_content(event)?,
            }
        }
        Ok(tree)
    }
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
