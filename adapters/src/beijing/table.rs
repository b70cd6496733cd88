//! The machinery of Beijing's field tables (as Jiangsu's, `jiangsu/table.rs`, for Beijing's
//! JSON: JSON numbers, epoch milliseconds, fen, optional keys omitted): a [`Field`] names a
//! Beijing key once with its canonical path and how it is read and written ([`Io`]);
//! [`read()`], [`write()`], [`allowed_keys`] and [`template`] walk a table.

use crate::fields::Acc;
use crate::json::{self, Obj};
use crate::problems::{parse_date, Ctx};
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

/// Reads one Beijing object; an omitted key and `null` are the same.
pub(super) struct Reader<'v, 'c> {
    pub o: Obj<'v>,
    pub cx: &'c mut Ctx,
}

impl<'v, 'c> Reader<'v, 'c> {
    /// The object at `key` read into a new `T` through `table`; `None` when omitted or `null`.
    pub fn part<T: Default>(&mut self, key: &str, table: &'static [Field<T>]) -> Option<T> {
        let o = self.object(key)?;
        let mut part = T::default();
        read(table, &mut Reader { o, cx: self.cx }, &mut part);
        Some(part)
    }

    /// Each object of the array at `key`, read into a new `T` through `table`.
    pub fn objects<T: Default>(&mut self, key: &str, table: &'static [Field<T>]) -> Vec<T> {
        let base = self.o.at(key);
        let mut out = Vec::new();
        for (i, v) in self.list(key).iter().enumerate() {
            let Some(o) = Obj::of(v, format!("{base}[{i}]"), self.cx) else {
                continue;
            };
            let mut item = T::default();
            read(table, &mut Reader { o, cx: self.cx }, &mut item);
            out.push(item);
        }
        out
    }

    pub fn value(&self, key: &str) -> Option<&'v Value> {
        self.o.get(key).filter(|v| !v.is_null())
    }

    pub fn s(&mut self, key: &str) -> String {
        match self.value(key) {
            None => String::new(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(other) => {
                self.cx.error(self.o.at(key), format!("expected a string, found {}", json::type_name(other)));
                String::new()
            }
        }
    }

    pub fn int(&mut self, key: &str, required: bool) -> Option<i64> {
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

    pub fn i32(&mut self, key: &str) -> i32 {
        match self.int(key, true) {
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

    pub fn date(&mut self, key: &str) -> Option<Date> {
        let text = self.s(key);
        parse_date(&text, Date::parse_iso, "yyyy-MM-dd", self.o.at(key), self.cx)
    }

    pub fn epoch(&mut self, key: &str) -> Option<Timestamp> {
        self.int(key, false).map(epoch_to_timestamp)
    }

    pub fn category(&mut self, key: &str) -> i32 {
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

    pub fn list(&mut self, key: &str) -> &'v [Value] {
        match self.value(key) {
            None => &[],
            Some(Value::Array(a)) => a,
            Some(other) => {
                self.cx.error(self.o.at(key), format!("expected an array, found {}", json::type_name(other)));
                &[]
            }
        }
    }

    pub fn strings(&mut self, key: &str) -> Vec<String> {
        let path = self.o.at(key);
        let list = self.list(key);
        json::strings(list, &path, "a string", self.cx)
    }

    /// A nested object, or `None` when omitted or `null`.
    pub fn object(&mut self, key: &str) -> Option<Obj<'v>> {
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

/// Reports the keys of `r`'s object that `table` does not have, then reads every field of
/// `table` into `record`, in the table's order.
pub(super) fn read<R>(table: &'static [Field<R>], r: &mut Reader<'_, '_>, record: &mut R) {
    r.o.deny_unknown_of(allowed_keys(table), r.cx);
    for f in table {
        let key = f.key;
        match &f.io {
            Io::Text(a) | Io::OptText(a) => *(a.slot)(record) = r.s(key),
            Io::Int(a) => *(a.slot)(record) = r.i32(key),
            Io::Fen(a) => *(a.slot)(record) = r.int(key, true).unwrap_or(0),
            Io::OptFen(a) => *(a.slot)(record) = r.int(key, false),
            Io::Date(a) | Io::OptDate(a) => *(a.slot)(record) = r.date(key),
            Io::Epoch(a) => *(a.slot)(record) = r.epoch(key),
            Io::Category(a) => *(a.slot)(record) = r.category(key),
            Io::Strings(a) => *(a.slot)(record) = r.strings(key),
            Io::Own { read, .. } => read(r, key, record),
        }
    }
}

/// Writes every field of `table` from `record`, in the table's order.
pub(super) fn write<R>(table: &'static [Field<R>], record: &R) -> Map<String, Value> {
    let mut m = Map::new();
    for f in table {
        let text = |a: &Acc<R, String>| (a.get)(record).cloned().unwrap_or_default();
        let date = |d: Option<&Option<Date>>| d.and_then(Option::as_ref).map(|d| Value::String(d.to_string()));
        let value = match &f.io {
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
            m.insert(f.key.to_string(), value);
        }
    }
    m
}

/// The keys of a table, in order.
pub(super) fn allowed_keys<R>(table: &'static [Field<R>]) -> impl Iterator<Item = &'static str> + Clone {
    table.iter().map(|f| f.key)
}

/// The Beijing path template (`{}` for each array index) of a canonical pattern (`[]` for each
/// index): a field's own path, what an [`Io::Own`] field's `paths` gives, or an optional part
/// named as a whole (`event`), which is the first of its fields (`eventNo`).
pub(super) fn template<R>(table: &'static [Field<R>], pattern: &str) -> Option<String> {
    for f in table {
        if let Io::Own { paths: Some(paths), .. } = f.io {
            if let Some(t) = paths(f.key, pattern) {
                return Some(t);
            }
        }
        if pattern == f.path {
            return Some(f.key.to_string());
        }
        if let Io::Strings(_) = f.io {
            if pattern.strip_prefix(f.path) == Some("[]") {
                return Some(format!("{}[{{}}]", f.key));
            }
        }
    }
    let group = table.iter().find(|f| f.path.strip_prefix(pattern).is_some_and(|r| r.starts_with('.')))?;
    Some(group.key.to_string())
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
