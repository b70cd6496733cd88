//! The engine both JSON field-table formats drive (Jiangsu's `jiangsu/table.rs`, Beijing's
//! `beijing/table.rs`): [`read()`], [`write()`], [`allowed_keys`] and [`template`] walk a table of
//! [`Field`]s, whose codec ([`Codec`]) says how one value is spelled in the format; the
//! [`Reader`] reads the values both formats spell alike, as the format's [`Spelling`] says. So the
//! allowed-keys check, decoding, encoding and the problem paths cannot disagree, and each format
//! keeps only its tables and what is its own.

use crate::fields::Field;
use crate::json::{self, Obj};
use crate::problems::{parse_date, Ctx};
use serde_json::{Map, Value};
use yrdx_proto::Date;

/// How a JSON format spells what every format has: absent values, dates, and the JSON types its
/// problems name.
pub(crate) struct Spelling {
    /// The problem for a `null` string; `None`: `null` is an omitted key.
    pub null: Option<&'static str>,
    /// `""` also stands for an empty array (a format where every scalar is a string).
    pub empty_string_is_empty_array: bool,
    /// A JSON string and a JSON array as "expected …" problems name them.
    pub string: &'static str,
    pub array: &'static str,
    /// How a date is read, and its form as problems name it.
    pub date: fn(&str) -> Option<Date>,
    pub date_form: &'static str,
}

/// How one field's value is read and written in a format: the format's `Io`.
pub(crate) trait Codec<R>: Sized + 'static {
    /// Reads the value at `key` into `record`.
    fn read(&self, key: &'static str, r: &mut Reader<'_, '_>, record: &mut R);
    /// Writes the value of `record` at `key` into `m` (none, or more than one key, as the codec
    /// says).
    fn write(&self, key: &'static str, record: &R, m: &mut Map<String, Value>);
    /// The keys the field takes in the record's object.
    fn keys(&self, key: &'static str) -> impl Iterator<Item = &'static str> + Clone;
    /// The format's template of a canonical pattern within this field (an element of an array,
    /// a nested part), tried before the cases every format has (the field's own path, an
    /// optional part named as a whole).
    fn template(&self, field: &Field<Self>, pattern: &str) -> Option<String>;
}

/// Reads one JSON object of a format.
pub(crate) struct Reader<'v, 'c> {
    pub o: Obj<'v>,
    pub cx: &'c mut Ctx,
    pub spelling: &'static Spelling,
}

impl<'v, 'c> Reader<'v, 'c> {
    /// A reader of `o` in the format spelt `spelling`.
    pub fn new(o: Obj<'v>, cx: &'c mut Ctx, spelling: &'static Spelling) -> Reader<'v, 'c> {
        Reader { o, cx, spelling }
    }

    /// A reader of a nested object, in the same format.
    pub fn inner<'w>(&'w mut self, o: Obj<'w>) -> Reader<'w, 'w> {
        Reader { o, cx: self.cx, spelling: self.spelling }
    }

    /// The value of a key; `None` when missing (or `null`, where `null` is an omitted key).
    pub fn value(&self, key: &str) -> Option<&'v Value> {
        let v = self.o.get(key);
        if self.spelling.null.is_none() {
            v.filter(|v| !v.is_null())
        } else {
            v
        }
    }

    /// A string value, trimmed; `""` when absent. Other types are problems.
    pub fn s(&mut self, key: &str) -> String {
        match self.value(key) {
            None => String::new(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Null) => {
                self.cx.error(self.o.at(key), self.spelling.null.unwrap_or_default());
                String::new()
            }
            Some(other) => {
                let found = json::type_name(other);
                self.cx.error(self.o.at(key), format!("expected {}, found {found}", self.spelling.string));
                String::new()
            }
        }
    }

    /// A date in the format's form; `""` is no date.
    pub fn date(&mut self, key: &str) -> Option<Date> {
        let text = self.s(key);
        parse_date(&text, self.spelling.date, self.spelling.date_form, self.o.at(key), self.cx)
    }

    /// A JSON array (`[]` when absent).
    pub fn list(&mut self, key: &str) -> &'v [Value] {
        match self.value(key) {
            None => &[],
            Some(Value::Array(a)) => a,
            Some(Value::String(s)) if s.is_empty() && self.spelling.empty_string_is_empty_array => &[],
            Some(other) => {
                let found = json::type_name(other);
                self.cx.error(self.o.at(key), format!("expected {}, found {found}", self.spelling.array));
                &[]
            }
        }
    }

    /// An array of strings, each trimmed.
    pub fn strings(&mut self, key: &str) -> Vec<String> {
        let path = self.o.at(key);
        let list = self.list(key);
        json::strings(list, &path, self.spelling.string, self.cx)
    }

    /// An array of strings, each turned into a value by `each`, given its path (`KEY[i]`).
    pub fn each_string<T>(&mut self, key: &str, mut each: impl FnMut(&str, String, &mut Ctx) -> T) -> Vec<T> {
        let base = self.o.at(key);
        let strings = self.strings(key);
        strings.iter().enumerate().map(|(i, s)| each(s, format!("{base}[{i}]"), self.cx)).collect()
    }

    /// Each object of the array at `key`, checked against `table`, read into a new `T`.
    pub fn objects<T: Default, I: Codec<T>>(&mut self, key: &str, table: &'static [Field<I>]) -> Vec<T> {
        let base = self.o.at(key);
        let mut out = Vec::new();
        for (i, v) in self.list(key).iter().enumerate() {
            let Some(o) = Obj::of(v, format!("{base}[{i}]"), self.cx) else {
                continue;
            };
            out.push(read_new(table, &mut self.inner(o)));
        }
        out
    }
}

/// Reports the keys of `r`'s object that `table` does not have, then reads every field of
/// `table` into `record`, in the table's order.
pub(crate) fn read<R, I: Codec<R>>(table: &'static [Field<I>], r: &mut Reader<'_, '_>, record: &mut R) {
    r.o.deny_unknown_of(allowed_keys(table), r.cx);
    read_fields(table, r, record);
}

/// [`read()`] into a new record.
pub(crate) fn read_new<R: Default, I: Codec<R>>(table: &'static [Field<I>], r: &mut Reader<'_, '_>) -> R {
    let mut record = R::default();
    read(table, r, &mut record);
    record
}

/// Reads every field of `table` into `record`, in the table's order (no check of the keys: for
/// fields spread into the record's own object).
pub(crate) fn read_fields<R, I: Codec<R>>(table: &'static [Field<I>], r: &mut Reader<'_, '_>, record: &mut R) {
    for f in table {
        f.io.read(f.key, r, record);
    }
}

/// Writes every field of `table` from `record`, in the table's order.
pub(crate) fn write<R, I: Codec<R>>(table: &'static [Field<I>], record: &R) -> Map<String, Value> {
    let mut m = Map::new();
    write_fields(table, record, &mut m);
    m
}

/// Writes every field of `table` from `record` into `m`, in the table's order.
pub(crate) fn write_fields<R, I: Codec<R>>(table: &'static [Field<I>], record: &R, m: &mut Map<String, Value>) {
    for f in table {
        f.io.write(f.key, record, m);
    }
}

/// The keys of a table, in order.
pub(crate) fn allowed_keys<R, I: Codec<R>>(table: &'static [Field<I>]) -> impl Iterator<Item = &'static str> + Clone {
    table.iter().flat_map(|f| f.io.keys(f.key))
}

/// The format's path template (`{}` for each array index) of a canonical pattern (`[]` for each
/// index, as [`crate::paths::map_path_by`] passes it): what a field's codec gives, a field's own
/// path, or an optional part named as a whole (`seller`, `event`), which is the first of its
/// fields.
pub(crate) fn template<R, I: Codec<R>>(table: &'static [Field<I>], pattern: &str) -> Option<String> {
    for f in table {
        if let Some(t) = f.io.template(f, pattern) {
            return Some(t);
        }
        if pattern == f.path {
            return Some(f.key.to_string());
        }
    }
    let group = table.iter().find(|f| f.path.strip_prefix(pattern).is_some_and(|r| r.starts_with('.')))?;
    Some(group.key.to_string())
}
