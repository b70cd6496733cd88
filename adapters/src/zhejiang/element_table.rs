//! The machinery of Zhejiang's element tables: a [`Child`] names a child element of a record or
//! part once, with how its value is read and written ([`Io`]) and whether it may be absent
//! ([`Presence`]); [`read_part`] and [`write_part`] walk a table, so the expected children,
//! decoding, encoding and the required checks cannot disagree. The tables are `const` slices of
//! function pointers: nothing is built or allocated per record.

use super::reader::{attributes, leaf, read_elements, At, Named};
use super::{date, date_text, int, time, time_text};
use crate::fields::Acc;
use crate::model::DecodeError;
use crate::problems::{category_value, code_of, lookup, Ctx};
use crate::xml::{Start, Stream, Writer};
use std::borrow::Cow;
use yrdx_proto::codes::category_code_of;
use yrdx_proto::v1::Product;
use yrdx_proto::{Date, Timestamp};

/// One child element of a Zhejiang record or part `T`.
pub(super) struct Child<T: 'static> {
    /// The element's local name (`CreditCode`).
    pub name: &'static str,
    /// How its value is read and written.
    pub io: Io<T>,
    /// Whether it is written when empty, and whether its absence is a problem.
    pub presence: Presence,
}

impl<T> Named for Child<T> {
    fn name(&self) -> &'static str {
        self.name
    }
}

/// Whether a child is written when its value is empty, and whether its absence is a problem.
#[derive(Clone, Copy)]
pub(super) enum Presence {
    /// Always written (`<Name/>` when empty); may be absent on input.
    Written,
    /// Omitted when empty (Zhejiang omits absent values).
    Optional,
    /// Always written; absent on input, the problem given at the child's path.
    Required(&'static str),
}

/// How a child's value is spelled in Zhejiang's XML.
pub(super) enum Io<T: 'static> {
    /// A leaf's text, trimmed.
    Text(Acc<T, String>),
    /// A leaf holding a non-negative integer.
    Int(Acc<T, i32>),
    /// A leaf holding an `xs:date`.
    Date(Acc<T, Option<Date>>),
    /// A leaf holding an `xs:dateTime` with an offset.
    Time(Acc<T, Option<Timestamp>>),
    /// A leaf holding a code of a Zhejiang dictionary.
    Code(&'static [(&'static str, i32)], Acc<T, i32>),
    /// A leaf holding a product category code of the catalogue.
    Category(Acc<T, i32>),
    /// The product, through its own table (`records.rs`' `PRODUCT`), written empty when absent:
    /// sampling records and risk alerts share it.
    Product(Acc<T, Product>, &'static [Child<Product>]),
    /// A leaf whose text the caller keeps and checks after all children (its problems come after
    /// theirs): see [`read_part`]; `write` gives the text.
    Later { write: fn(&T) -> &'static str },
    /// An element the record's own code reads and writes (attributes, lists, nested parts, money);
    /// `write` is given the element's name and writes nothing for an absent value.
    Own {
        read: for<'a> fn(&mut Stream<'a>, Start<'a>, &At<'_>, &mut Ctx, &mut T) -> Result<(), DecodeError>,
        write: fn(&mut Writer, &'static str, &T),
    },
}

/// Reads the children of `start` into `part` through `table`, handing the text of each
/// [`Io::Later`] child to `later` with its name ([`no_later`] where the table has none), then
/// reports each required child that was absent, in the table's order.
pub(super) fn read_part<'a, T>(
    stream: &mut Stream<'a>,
    start: &Start<'a>,
    at: &At<'_>,
    table: &'static [Child<T>],
    cx: &mut Ctx,
    part: &mut T,
    mut later: impl FnMut(&'static str, String),
) -> Result<(), DecodeError> {
    let seen = read_elements(stream, start, at, table, false, cx, |s, i, child, at, cx| {
        let c = &table[i];
        match &c.io {
            Io::Own { read, .. } => return read(s, child, at, cx, part),
            Io::Product(a, product) => {
                *(a.slot)(part) = decode_part(s, child, at, product, cx)?;
                return Ok(());
            }
            _ => {}
        }
        let text = leaf(s, child, at, cx)?;
        match &c.io {
            Io::Text(a) => *(a.slot)(part) = text,
            Io::Int(a) => *(a.slot)(part) = int(&text, at, cx),
            Io::Date(a) => *(a.slot)(part) = date(&text, at, cx),
            Io::Time(a) => *(a.slot)(part) = time(&text, at, cx),
            Io::Code(codes, a) => *(a.slot)(part) = lookup(&text, codes, at, cx),
            Io::Category(a) => *(a.slot)(part) = category_value(&text, at, cx),
            Io::Later { .. } => later(c.name, text),
            Io::Own { .. } | Io::Product(..) => {}
        }
        Ok(())
    })?;
    for (i, c) in table.iter().enumerate() {
        if let Presence::Required(message) = c.presence {
            if seen & (1 << i) == 0 {
                cx.error(at.child(c.name).to_string(), message);
            }
        }
    }
    Ok(())
}

/// The `later` of [`read_part`] for a table with no [`Io::Later`] child.
pub(super) fn no_later(_: &'static str, _: String) {}

/// Writes every child of `table` from `part`, in the table's order.
pub(super) fn write_part<T>(w: &mut Writer, table: &'static [Child<T>], part: &T) {
    for c in table {
        // Borrowed where the value is already text: most children are.
        let text: Cow<'_, str> = match &c.io {
            Io::Text(a) => Cow::Borrowed((a.get)(part).map_or("", String::as_str)),
            Io::Int(a) => Cow::Owned((a.get)(part).copied().unwrap_or_default().to_string()),
            Io::Date(a) => Cow::Owned((a.get)(part).map(date_text).unwrap_or_default()),
            Io::Time(a) => Cow::Owned((a.get)(part).map(time_text).unwrap_or_default()),
            Io::Code(codes, a) => Cow::Borrowed(code_of((a.get)(part).copied().unwrap_or_default(), codes)),
            Io::Category(a) => Cow::Owned(category_code_of((a.get)(part).copied().unwrap_or_default())),
            Io::Later { write } => Cow::Borrowed(write(part)),
            Io::Own { write, .. } => {
                write(w, c.name, part);
                continue;
            }
            Io::Product(a, product) => {
                write_element(w, c.name, product, (a.get)(part).unwrap_or(&Product::default()));
                continue;
            }
        };
        match c.presence {
            Presence::Optional => w.opt_leaf(c.name, &text),
            Presence::Written | Presence::Required(_) => w.leaf(c.name, &[], &text),
        }
    }
}

/// Writes `part` as the element `name` (no attributes) holding its children.
pub(super) fn write_element<T>(w: &mut Writer, name: &str, table: &'static [Child<T>], part: &T) {
    w.open(name, &[]);
    write_part(w, table, part);
    w.close(name);
}

/// A part with no attributes (`Seller`, `Shop`, `Product`) read through its table.
pub(super) fn decode_part<'a, T: Default>(
    stream: &mut Stream<'a>,
    start: Start<'a>,
    at: &At<'_>,
    table: &'static [Child<T>],
    cx: &mut Ctx,
) -> Result<T, DecodeError> {
    attributes(&start, at, [], cx)?;
    let mut part = T::default();
    read_part(stream, &start, at, table, cx, &mut part, no_later)?;
    Ok(part)
}
