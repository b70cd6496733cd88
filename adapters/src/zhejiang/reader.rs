//! Zhejiang's strict element reader: children in any order, each expected one handed to its
//! decoder; unknown, foreign-namespace and repeated children, text beside them, empty leaves and
//! undefined attributes are problems at their own paths (`/Exchange/Records/Sampling[1]/…`),
//! formatted only when reported. Every element read past is still checked.

use super::NAMESPACE;
use crate::model::DecodeError;
use crate::problems::Ctx;
use crate::xml::{Content, Ns, Start, Stream};

/// Where an element or attribute sits in the document. Paths are formatted only when a problem is
/// reported: building them for every element read cost more than reading it.
#[derive(Clone, Copy)]
pub(super) enum At<'p> {
    /// A fixed path (`/Exchange/Header`).
    Fixed(&'static str),
    /// `/Exchange/Records/{name}[{n}]`.
    Record(&'p str, usize),
    /// A child element.
    Child(&'p At<'p>, &'p str),
    /// The `n`th (from 1) item of a list.
    Item(&'p At<'p>, &'p str, usize),
    /// An attribute.
    Attr(&'p At<'p>, &'p str),
}

impl<'p> At<'p> {
    #[inline]
    pub(super) fn child(&'p self, name: &'p str) -> At<'p> {
        At::Child(self, name)
    }

    #[inline]
    pub(super) fn attr(&'p self, name: &'p str) -> At<'p> {
        At::Attr(self, name)
    }
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Fixed(path) => f.write_str(path),
            At::Record(name, n) => write!(f, "/Exchange/Records/{name}[{n}]"),
            At::Child(parent, name) => write!(f, "{parent}/{name}"),
            At::Item(parent, name, n) => write!(f, "{parent}/{name}[{n}]"),
            At::Attr(parent, name) => write!(f, "{parent}/@{name}"),
        }
    }
}

/// Checks the attributes of `start` against `allowed` (others are problems) and returns the
/// trimmed value of each allowed one, in the order given (`""` when absent).
pub(super) fn attributes<const N: usize>(
    start: &Start<'_>,
    at: &At<'_>,
    allowed: [&str; N],
    cx: &mut Ctx,
) -> Result<[String; N], DecodeError> {
    let mut values: [String; N] = std::array::from_fn(|_| String::new());
    each_attribute(start, at, &allowed, cx, |i, v, _| values[i] = v.to_string())?;
    Ok(values)
}

/// Checks the attributes of `start` against `allowed` (others are problems) and hands each
/// allowed one to `each` with its index in `allowed` and its trimmed value, for attributes that
/// are codes and need no copy.
pub(super) fn each_attribute(
    start: &Start<'_>,
    at: &At<'_>,
    allowed: &[&str],
    cx: &mut Ctx,
    mut each: impl FnMut(usize, &str, &mut Ctx),
) -> Result<(), DecodeError> {
    start.each_attr(|k, v| match allowed.iter().position(|a| *a == k) {
        Some(i) => each(i, v.trim(), cx),
        None => cx.error(at.attr(k).to_string(), format!("unknown attribute '{k}'")),
    })
}

/// A child element's name, as [`read_children`] and [`read_elements`] take them: a bare name or
/// an entry of an element table (`element_table.rs`), so a table's names are written once.
pub(super) trait Named {
    /// The element's local name.
    fn name(&self) -> &'static str;
}

impl Named for &'static str {
    fn name(&self) -> &'static str {
        self
    }
}

/// Reads the children of the element `start`, handing each one named in `names` to `field` with
/// its path. Children in another namespace, unknown, or repeated, and text beside them, are
/// problems (the child is read past and checked, not kept).
pub(super) fn read_children<'a>(
    stream: &mut Stream<'a>,
    start: &Start<'a>,
    at: &At<'_>,
    names: &[&'static str],
    cx: &mut Ctx,
    mut field: impl FnMut(&mut Stream<'a>, &'static str, Start<'a>, &At<'_>, &mut Ctx) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    read_elements(stream, start, at, names, false, cx, |s, i, child, at, cx| field(s, names[i], child, at, cx))?;
    Ok(())
}

/// [`read_children`], with children that may repeat (the items of a list) when `repeatable`;
/// `field` is given the index of the child's name in `names`. Returns the set of names seen (bit
/// `i` for `names[i]`).
pub(super) fn read_elements<'a, N: Named>(
    stream: &mut Stream<'a>,
    start: &Start<'a>,
    at: &At<'_>,
    names: &[N],
    repeatable: bool,
    cx: &mut Ctx,
    mut field: impl FnMut(&mut Stream<'a>, usize, Start<'a>, &At<'_>, &mut Ctx) -> Result<(), DecodeError>,
) -> Result<u64, DecodeError> {
    if start.empty {
        return Ok(0);
    }
    let (mut seen, mut mixed) = (0u64, false);
    loop {
        match stream.content()? {
            Content::End => break,
            Content::Text => mixed = true,
            Content::Start(child) => {
                let name = child.name();
                // First bytes before `memcmp`: most names differ there, and the call costs more
                // than the comparison of a short name.
                let first = name.as_bytes().first();
                let known = names.iter().position(|n| n.name().as_bytes().first() == first && n.name() == name);
                let problem = match known {
                    _ if child.ns != Ns::Expected => {
                        Some(format!("element <{name}> is not in the namespace {NAMESPACE}"))
                    }
                    None if names.is_empty() => Some(format!("unknown element <{name}> (no child elements here)")),
                    None => {
                        let expected: Vec<&str> = names.iter().map(Named::name).collect();
                        Some(format!("unknown element <{name}> (expected: {})", expected.join(", ")))
                    }
                    Some(i) if !repeatable && seen & (1 << i) != 0 => Some(format!("<{name}> appears more than once")),
                    Some(_) => None,
                };
                match (problem, known) {
                    (None, Some(i)) => {
                        seen |= 1 << i;
                        field(stream, i, child, &at.child(names[i].name()), cx)?;
                    }
                    (problem, _) => {
                        cx.error(at.child(name).to_string(), problem.unwrap_or_default());
                        stream.skip(child)?;
                    }
                }
            }
        }
    }
    if mixed {
        cx.error(at.to_string(), "unexpected text beside child elements");
    }
    Ok(seen)
}

/// Reads a list element: each `item` child is handed to `each` with its path
/// (`…/Items/Item[2]`); anything else inside is a problem. Returns how many items there were.
pub(super) fn read_list<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    item: &'static str,
    cx: &mut Ctx,
    mut each: impl FnMut(&mut Stream<'a>, Start<'a>, &At<'_>, &mut Ctx) -> Result<(), DecodeError>,
) -> Result<usize, DecodeError> {
    attributes(&start, at, [], cx)?;
    let mut count = 0;
    read_elements(stream, &start, at, &[item], true, cx, |stream, _, child, _, cx| {
        count += 1;
        each(stream, child, &At::Item(at, item, count), cx)
    })?;
    Ok(count)
}

/// The trimmed text of a leaf element whose attributes the caller has checked; an empty element
/// is a problem (absent values are omitted), and so are child elements.
#[inline]
pub(super) fn leaf_text<'a>(
    stream: &mut Stream<'a>,
    start: &Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<String, DecodeError> {
    match stream.leaf_text(start)? {
        None => {
            cx.error(at.to_string(), "expected text, found child elements");
            Ok(String::new())
        }
        Some(text) => {
            let t = trim(&text);
            if t.is_empty() {
                cx.error(at.to_string(), "empty element: an absent value is an omitted element, never an empty one");
            }
            Ok(t.to_string())
        }
    }
}

/// `str::trim`, but cheap for the common value that has nothing to trim.
#[inline]
fn trim(text: &str) -> &str {
    let padded = |c: Option<char>| c.is_none_or(char::is_whitespace);
    if padded(text.chars().next()) || padded(text.chars().next_back()) {
        text.trim()
    } else {
        text
    }
}

/// The trimmed text of a leaf element that takes no attributes.
#[inline]
pub(super) fn leaf<'a>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    cx: &mut Ctx,
) -> Result<String, DecodeError> {
    attributes(&start, at, [], cx)?;
    leaf_text(stream, &start, at, cx)
}
