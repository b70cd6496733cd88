//! Beijing's side of the field tables (`crate::json_table` is the engine): how a value is
//! spelled in Beijing's JSON ([`Io`]: JSON numbers, epoch milliseconds, fen, optional keys
//! omitted), the values only Beijing reads, and [`nested`] for the paths inside a nested part.

use crate::fields::Acc;
use crate::json::{self, Obj};
pub(super) use crate::json_table::{read, template, write, Reader};
use crate::json_table::{read_new, Codec, Spelling};
use serde_json::{Map, Value};
use yrdx_proto::codes::{category_code_of, category_from_code};
use yrdx_proto::{Date, Timestamp};

/// One Beijing key of a record `R` (see [`crate::fields::Field`]).
pub(super) type Field<R> = crate::fields::Field<Io<R>>;

/// How a value is written in Beijing's JSON.
pub(super) enum Io<R: 'static> {
    /// A string, always written.
    Text(Acc<R, String>),
    /// A string, omitted when empty.
    OptText(Acc<R, String>),
    /// An integer (a JSON number), required.
    Int(Acc<R, i32>),
    /// Fen (a JSON number), required.
    Fen(Acc<R, i64>),
    /// Fen, omitted when absent.
    OptFen(Acc<R, Option<i64>>),
    /// `yyyy-MM-dd`, `null` when absent.
    Date(Acc<R, Option<Date>>),
    /// `yyyy-MM-dd`, omitted when absent.
    OptDate(Acc<R, Option<Date>>),
    /// Epoch milliseconds, `null` when absent.
    Epoch(Acc<R, Option<Timestamp>>),
    /// A product category code of the catalogue.
    Category(Acc<R, i32>),
    /// An array of strings.
    Strings(Acc<R, Vec<String>>),
    /// A value the record's own code reads and writes (nested objects, arrays of objects or codes,
    /// numeric codes); `write` gives `None` to omit the key; `paths` maps the canonical patterns
    /// the value holds to Beijing templates, given the key.
    Own {
        read: fn(&mut Reader<'_, '_>, &'static str, &mut R),
        write: fn(&R) -> Option<Value>,
        paths: Option<fn(&'static str, &str) -> Option<String>>,
    },
}

/// Beijing's spelling: optional keys omitted, `null` the same as omitted.
pub(super) const SPELLING: Spelling = Spelling {
    null: None,
    empty_string_is_empty_array: false,
    string: "a string",
    array: "an array",
    date: Date::parse_iso,
    date_form: "yyyy-MM-dd",
};

/// The values only Beijing spells: nested objects, JSON numbers, epoch milliseconds.
impl<'v> Reader<'v, '_> {
    /// The object at `key` read into a new `T` through `table`; `None` when omitted or `null`.
    pub(super) fn part<T: Default>(&mut self, key: &str, table: &'static [Field<T>]) -> Option<T> {
        let o = self.object(key)?;
        Some(read_new(table, &mut self.inner(o)))
    }

    /// An integer (a JSON number); a problem when `required` and absent.
    pub(super) fn number(&mut self, key: &str, required: bool) -> Option<i64> {
        match self.value(key) {
            None => {
                if required {
                    self.cx.error(self.o.at(key), "required (an integer)");
                }
                None
            }
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) => Some(v),
                None => {
                    self.cx.error(self.o.at(key), format!("{n} is not an integer"));
                    None
                }
            },
            Some(other) => {
                self.cx.error(self.o.at(key), format!("expected a number, found {}", json::type_name(other)));
                None
            }
        }
    }

    pub(super) fn i32(&mut self, key: &str) -> i32 {
        match self.number(key, true) {
            Some(v) => match i32::try_from(v) {
                Ok(v) => v,
                Err(_) => {
                    self.cx.error(self.o.at(key), format!("{v} is out of range"));
                    0
                }
            },
            None => 0,
        }
    }

    /// Epoch milliseconds, or `None` when omitted.
    pub(super) fn epoch(&mut self, key: &str) -> Option<Timestamp> {
        self.number(key, false).map(epoch_to_timestamp)
    }

    pub(super) fn category(&mut self, key: &str) -> i32 {
        let text = self.s(key);
        if text.is_empty() {
            return 0;
        }
        match category_from_code(&text) {
            Some(c) => c as i32,
            None => {
                self.cx.error(self.o.at(key), format!("'{text}' is not a product category code of the catalogue"));
                0
            }
        }
    }

    /// A nested object, or `None` when omitted or `null`.
    pub(super) fn object(&mut self, key: &str) -> Option<Obj<'v>> {
        let v = self.value(key)?;
        Obj::of(v, self.o.at(key), self.cx)
    }
}

pub(super) fn epoch_to_timestamp(ms: i64) -> Timestamp {
    Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

pub(super) fn timestamp_to_epoch(t: &Timestamp) -> i64 {
    t.seconds * 1000 + (t.nanos / 1_000_000) as i64
}

impl<R> Codec<R> for Io<R> {
    fn read(&self, key: &'static str, r: &mut Reader<'_, '_>, record: &mut R) {
        match self {
            Io::Text(a) | Io::OptText(a) => *(a.slot)(record) = r.s(key),
            Io::Int(a) => *(a.slot)(record) = r.i32(key),
            Io::Fen(a) => *(a.slot)(record) = r.number(key, true).unwrap_or(0),
            Io::OptFen(a) => *(a.slot)(record) = r.number(key, false),
            Io::Date(a) | Io::OptDate(a) => *(a.slot)(record) = r.date(key),
            Io::Epoch(a) => *(a.slot)(record) = r.epoch(key),
            Io::Category(a) => *(a.slot)(record) = r.category(key),
            Io::Strings(a) => *(a.slot)(record) = r.strings(key),
            Io::Own { read, .. } => read(r, key, record),
        }
    }

    fn write(&self, key: &'static str, record: &R, m: &mut Map<String, Value>) {
        let text = |a: &Acc<R, String>| (a.get)(record).cloned().unwrap_or_default();
        let date = |d: Option<&Option<Date>>| d.and_then(Option::as_ref).map(|d| Value::String(d.to_string()));
        let value = match self {
            Io::Text(a) => Some(Value::String(text(a))),
            Io::OptText(a) => Some(text(a)).filter(|s| !s.is_empty()).map(Value::String),
            Io::Int(a) => Some(Value::from((a.get)(record).copied().unwrap_or_default())),
            Io::Fen(a) => Some(Value::from((a.get)(record).copied().unwrap_or_default())),
            Io::OptFen(a) => (a.get)(record).copied().flatten().map(Value::from),
            Io::Date(a) => Some(date((a.get)(record)).unwrap_or(Value::Null)),
            Io::OptDate(a) => date((a.get)(record)),
            Io::Epoch(a) => Some(
                (a.get)(record)
                    .and_then(Option::as_ref)
                    .map(|t| Value::from(timestamp_to_epoch(t)))
                    .unwrap_or(Value::Null),
            ),
            Io::Category(a) => Some(Value::String(category_code_of((a.get)(record).copied().unwrap_or_default()))),
            Io::Strings(a) => Some(Value::Array(
                (a.get)(record).map(|v| v.iter().cloned().map(Value::String).collect()).unwrap_or_default(),
            )),
            Io::Own { write, .. } => write(record),
        };
        if let Some(value) = value {
            m.insert(key.to_string(), value);
        }
    }

    fn keys(&self, key: &'static str) -> impl Iterator<Item = &'static str> + Clone {
        std::iter::once(key)
    }

    /// What an [`Io::Own`] field's `paths` gives, or an element of an array of strings.
    fn template(&self, f: &Field<R>, pattern: &str) -> Option<String> {
        match self {
            Io::Own { paths: Some(paths), .. } => paths(f.key, pattern),
            Io::Strings(_) if pattern.strip_prefix(f.path) == Some("[]") => Some(format!("{}[{{}}]", f.key)),
            _ => None,
        }
    }
}

/// The template of a canonical pattern under `canonical` (an object, or with `array` an array of
/// objects) whose Beijing key is `key` and whose fields are `table`'s.
pub(super) fn nested<T>(
    key: &str,
    canonical: &str,
    array: bool,
    table: &'static [Field<T>],
    pattern: &str,
) -> Option<String> {
    let rest = pattern.strip_prefix(canonical)?;
    let (rest, index) = if array { (rest.strip_prefix("[]")?, "[{}]") } else { (rest, "") };
    if rest.is_empty() {
        return Some(format!("{key}{index}"));
    }
    let inner = template(table, rest.strip_prefix('.')?)?;
    Some(format!("{key}{index}.{inner}"))
}
