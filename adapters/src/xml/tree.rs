//! The per-record element tree: one element with everything inside it, read from a [`Stream`]
//! into a flat arena, for readers that walk a record rather than its events (SAMR).

use super::stream::{refused, resolve_ref, Start, Stream};
use super::{is_xml_space, Ns};
use crate::model::DecodeError;
use quick_xml::events::Event;

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

impl<'a> Stream<'a> {
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
