//! The machinery of Jiangsu's field tables: a [`Field`] names a Jiangsu key once, with its
//! canonical path and how its value is read and written ([`Io`]); [`read()`], [`write()`],
//! [`allowed_keys`] and [`template`] walk a table, so the allowed-keys check, decoding,
//! encoding and the problem paths cannot disagree. The tables are `const` slices of function
//! pointers: nothing is built or allocated per record.

use crate::fields::{acc, Acc};
use crate::json::{self, Obj};
use crate::money::{format_yuan, parse_yuan};
use crate::problems::{category_value, code_of, lookup, parse_date, Ctx};
use serde_json::{Map, Value};
use yrdx_proto::civil::BeijingTime;
use yrdx_proto::codes::category_code_of;
use yrdx_proto::v1::Product;
use yrdx_proto::{Date, Timestamp};

/// The product, as `CYD` and `FXXX` both write it (keys in the record's own object).
pub(super) const PRODUCT: &[Field<Product>] = &[
    Field { key: "CPMC", path: "name", io: Io::Text(acc!(name)) },
    Field { key: "CPFL", path: "category", io: Io::Category(acc!(category)) },
    Field { key: "SB", path: "brand", io: Io::Text(acc!(brand)) },
    Field { key: "GGXH", path: "model", io: Io::Text(acc!(model)) },
    Field { key: "PH", path: "batch", io: Io::Text(acc!(batch)) },
    Field { key: "SCRQ", path: "production_date", io: Io::Date(acc!(production_date)) },
];

/// One Jiangsu key of a record `R` (see [`crate::fields::Field`]).
pub(super) type Field<R> = crate::fields::Field<Io<R>>;

/// How a value is written in Jiangsu's text (every scalar a JSON string, `""` when absent).
pub(super) enum Io<R: 'static> {
    /// Text, trimmed.
    Text(Acc<R, String>),
    /// A decimal integer, required.
    Int(Acc<R, i32>),
    /// `yyyyMMdd`.
    Date(Acc<R, Option<Date>>),
    /// `yyyyMMddHHmmss`, Beijing time.
    Time(Acc<R, Option<Timestamp>>),
    /// A code of a Jiangsu dictionary (`""` is unset).
    Code(&'static [(&'static str, i32)], Acc<R, i32>),
    /// A product category code of the catalogue.
    Category(Acc<R, i32>),
    /// Yuan with two decimals, required.
    Yuan(Acc<R, i64>),
    /// Yuan with two decimals, or `""`.
    OptYuan(Acc<R, Option<i64>>),
    /// `"1"` true, `"0"` false.
    Flag(Acc<R, bool>),
    /// An array of strings.
    Strings(Acc<R, Vec<String>>),
    /// The product's keys ([`PRODUCT`]), in the record's own object: sampling records and risk
    /// signals share them.
    Product(Acc<R, Product>),
    /// A value the record's own code reads and writes (arrays of objects or codes, values that
    /// depend on another field); `items` maps the paths inside an array of objects.
    Own {
        read: fn(&mut Reader<'_, '_>, &'static str, &mut R),
        write: fn(&R) -> Value,
        items: Option<fn(&str) -> Option<String>>,
    },
}

/// Reads one Jiangsu object, where every scalar is a string.
pub(super) struct Reader<'v, 'c> {
    pub o: Obj<'v>,
    pub cx: &'c mut Ctx,
}

impl<'v> Reader<'v, '_> {
    /// A string value, trimmed; `""` when missing. `null` and non-strings are errors.
    pub fn s(&mut self, key: &str) -> String {
        match self.o.get(key) {
            None => String::new(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Null) => {
                self.cx.error(self.o.at(key), "null is not allowed (an absent value is \"\")");
                String::new()
            }
            Some(other) => {
                self.cx.error(self.o.at(key), format!("expected a JSON string, found {}", json::type_name(other)));
                String::new()
            }
        }
    }

    pub fn date(&mut self, key: &str) -> Option<Date> {
        let text = self.s(key);
        parse_date(&text, Date::parse_compact, "yyyyMMdd", self.o.at(key), self.cx)
    }

    pub fn time(&mut self, key: &str) -> Option<Timestamp> {
        let text = self.s(key);
        if text.is_empty() {
            return None;
        }
        match BeijingTime::parse_compact(&text) {
            Some(t) => Some(t.to_timestamp()),
            None => {
                self.cx.error(self.o.at(key), format!("'{text}' is not a time yyyyMMddHHmmss (Beijing time)"));
                None
            }
        }
    }

    fn int(&mut self, key: &str) -> i32 {
        let text = self.s(key);
        if text.is_empty() {
            self.cx.error(self.o.at(key), "required (a decimal integer as a string)");
            return 0;
        }
        match text.parse::<i32>() {
            Ok(n) if text.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                self.cx.error(self.o.at(key), format!("'{text}' is not a decimal integer"));
                0
            }
        }
    }

    fn yuan(&mut self, key: &str, required: bool) -> Option<i64> {
        let text = self.s(key);
        if text.is_empty() {
            if required {
                self.cx.error(self.o.at(key), "required (yuan with two decimals, e.g. 128.00)");
            }
            return None;
        }
        match parse_yuan(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.cx.error(self.o.at(key), e.to_string());
                None
            }
        }
    }

    /// A code from a dictionary; `""` gives 0 (unset, reported by the rules as required).
    pub fn code(&mut self, key: &str, table: &[(&str, i32)]) -> i32 {
        let text = self.s(key);
        lookup(&text, table, self.o.at(key), self.cx)
    }

    fn flag(&mut self, key: &str) -> bool {
        match self.s(key).as_str() {
            "1" => true,
            "0" => false,
            other => {
                self.cx.error(self.o.at(key), format!("'{other}' is not 1 (true) or 0 (false)"));
                false
            }
        }
    }

    /// A JSON array (`[]` when missing or `""`).
    pub fn list(&mut self, key: &str) -> &'v [Value] {
        match self.o.get(key) {
            None => &[],
            Some(Value::Array(a)) => a,
            Some(Value::String(s)) if s.is_empty() => &[],
            Some(other) => {
                self.cx.error(self.o.at(key), format!("expected a JSON array, found {}", json::type_name(other)));
                &[]
            }
        }
    }

    /// An array of strings, each trimmed.
    pub fn strings(&mut self, key: &str) -> Vec<String> {
        let path = self.o.at(key);
        let list = self.list(key);
        json::strings(list, &path, "a JSON string", self.cx)
    }

    /// Each object of an array at `key`, checked against `table`, read into a new `T`.
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
}

/// Reports the keys of `r`'s object that `table` does not have, then reads every field of
/// `table` into `record`, in the table's order.
pub(super) fn read<R>(table: &'static [Field<R>], r: &mut Reader<'_, '_>, record: &mut R) {
    r.o.deny_unknown_of(allowed_keys(table), r.cx);
    read_fields(table, r, record);
}

/// Reads every field of `table` into `record`, in the table's order.
fn read_fields<R>(table: &'static [Field<R>], r: &mut Reader<'_, '_>, record: &mut R) {
    for f in table {
        let key = f.key;
        match &f.io {
            Io::Text(a) => *(a.slot)(record) = r.s(key),
            Io::Int(a) => *(a.slot)(record) = r.int(key),
            Io::Date(a) => *(a.slot)(record) = r.date(key),
            Io::Time(a) => *(a.slot)(record) = r.time(key),
            Io::Code(codes, a) => *(a.slot)(record) = r.code(key, codes),
            Io::Category(a) => {
                let text = r.s(key);
                *(a.slot)(record) = category_value(&text, r.o.at(key), r.cx);
            }
            Io::Yuan(a) => *(a.slot)(record) = r.yuan(key, true).unwrap_or(0),
            Io::OptYuan(a) => *(a.slot)(record) = r.yuan(key, false),
            Io::Flag(a) => *(a.slot)(record) = r.flag(key),
            Io::Strings(a) => *(a.slot)(record) = r.strings(key),
            Io::Product(a) => read_fields(PRODUCT, r, (a.slot)(record)),
            Io::Own { read, .. } => read(r, key, record),
        }
    }
}

/// Writes every field of `table` from `record`, in the table's order.
pub(super) fn write<R>(table: &'static [Field<R>], record: &R) -> Map<String, Value> {
    let mut m = Map::new();
    write_fields(table, record, &mut m);
    m
}

/// Writes every field of `table` from `record` into `m`, in the table's order.
fn write_fields<R>(table: &'static [Field<R>], record: &R, m: &mut Map<String, Value>) {
    for f in table {
        let text = |s: String| Value::String(s);
        let value = match &f.io {
            Io::Text(a) => text((a.get)(record).cloned().unwrap_or_default()),
            Io::Int(a) => text((a.get)(record).copied().unwrap_or_default().to_string()),
            Io::Date(a) => text((a.get)(record).and_then(Option::as_ref).map(Date::to_compact).unwrap_or_default()),
            Io::Time(a) => text(
                (a.get)(record).and_then(Option::as_ref).map(|t| BeijingTime::of(t).to_compact()).unwrap_or_default(),
            ),
            Io::Code(codes, a) => text(code_of((a.get)(record).copied().unwrap_or_default(), codes).into()),
            Io::Category(a) => text(category_code_of((a.get)(record).copied().unwrap_or_default())),
            Io::Yuan(a) => text(format_yuan((a.get)(record).copied().unwrap_or_default())),
            Io::OptYuan(a) => text((a.get)(record).copied().flatten().map(format_yuan).unwrap_or_default()),
            Io::Flag(a) => text(if (a.get)(record).copied().unwrap_or_default() { "1" } else { "0" }.into()),
            Io::Strings(a) => Value::Array(
                (a.get)(record).map(|v| v.iter().cloned().map(Value::String).collect()).unwrap_or_default(),
            ),
            Io::Product(a) => {
                let none = Product::default();
                write_fields(PRODUCT, (a.get)(record).unwrap_or(&none), m);
                continue;
            }
            Io::Own { write, .. } => write(record),
        };
        m.insert(f.key.to_string(), value);
    }
}

/// The keys of a table, in order.
pub(super) fn allowed_keys<R>(table: &'static [Field<R>]) -> impl Iterator<Item = &'static str> + Clone {
    table.iter().flat_map(|f| {
        let (own, part): (Option<&'static str>, &'static [Field<Product>]) = match f.io {
            Io::Product(_) => (None, PRODUCT),
            _ => (Some(f.key), &[]),
        };
        own.into_iter().chain(part.iter().map(|p| p.key))
    })
}

/// The Jiangsu path template (`{}` for each array index) of a canonical pattern (`[]` for each
/// index, as [`crate::paths::map_path_by`] passes it): a field's own path; an element of an
/// array field (`CPFL[{}]`, `XM[{}].BHGCD`); or an optional part named as a whole (`seller`),
/// which is the first of its fields (`BCYDWMC`).
pub(super) fn template<R>(table: &'static [Field<R>], pattern: &str) -> Option<String> {
    for f in table {
        if let Io::Product(_) = f.io {
            match pattern.strip_prefix(f.path) {
                Some("") => return PRODUCT.first().map(|p| p.key.to_string()),
                Some(rest) => {
                    if let Some(inner) = rest.strip_prefix('.').and_then(|rest| template(PRODUCT, rest)) {
                        return Some(inner);
                    }
                }
                None => {}
            }
            continue;
        }
        if pattern == f.path {
            return Some(f.key.to_string());
        }
        let Some(rest) = pattern.strip_prefix(f.path).and_then(|r| r.strip_prefix("[]")) else {
            continue;
        };
        match (&f.io, rest) {
            (Io::Strings(_) | Io::Own { .. }, "") => return Some(format!("{}[{{}}]", f.key)),
            (Io::Own { items: Some(items), .. }, _) => {
                if let Some(inner) = rest.strip_prefix('.').and_then(items) {
                    return Some(format!("{}[{{}}].{inner}", f.key));
                }
            }
            _ => {}
        }
    }
    let group = table.iter().find(|f| f.path.strip_prefix(pattern).is_some_and(|r| r.starts_with('.')))?;
    Some(group.key.to_string())
}
