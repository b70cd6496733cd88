//! Jiangsu's side of the field tables (`crate::json_table` is the engine): how a value is
//! spelled ([`Io`], every scalar a JSON string, `""` when absent), the product's keys
//! ([`PRODUCT`], which sampling records and risk signals spread into their own object) and the
//! values only Jiangsu reads (times, integers, yuan, codes, flags).

use crate::fields::{acc, Acc};
use crate::json_table::{read_fields, write_fields, Codec, Spelling};
pub(super) use crate::json_table::{template, write, Reader};
use crate::money::{format_yuan, parse_yuan};
use crate::problems::{category_value, code_of, lookup};
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
    /// Text, trimmed, checked as it is read: `check` gives the problem, if any.
    Checked(Acc<R, String>, fn(&str) -> Option<String>),
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

/// Jiangsu's spelling: every scalar a string, `""` when absent (also for an empty array),
/// `null` refused.
pub(super) const SPELLING: Spelling = Spelling {
    null: Some("null is not allowed (an absent value is \"\")"),
    empty_string_is_empty_array: true,
    string: "a JSON string",
    array: "a JSON array",
    date: Date::parse_compact,
    date_form: "yyyyMMdd",
};

/// The values only Jiangsu spells: times, integers, yuan, codes and flags as strings.
impl Reader<'_, '_> {
    pub(super) fn time(&mut self, key: &str) -> Option<Timestamp> {
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

    pub(super) fn decimal(&mut self, key: &str) -> i32 {
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

    pub(super) fn yuan(&mut self, key: &str, required: bool) -> Option<i64> {
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
    pub(super) fn code(&mut self, key: &str, table: &[(&str, i32)]) -> i32 {
        let text = self.s(key);
        lookup(&text, table, self.o.at(key), self.cx)
    }

    pub(super) fn flag(&mut self, key: &str) -> bool {
        match self.s(key).as_str() {
            "1" => true,
            "0" => false,
            other => {
                self.cx.error(self.o.at(key), format!("'{other}' is not 1 (true) or 0 (false)"));
                false
            }
        }
    }
}

impl<R> Codec<R> for Io<R> {
    fn read(&self, key: &'static str, r: &mut Reader<'_, '_>, record: &mut R) {
        match self {
            Io::Text(a) => *(a.slot)(record) = r.s(key),
            Io::Checked(a, check) => {
                let text = r.s(key);
                if let Some(problem) = check(&text) {
                    r.cx.error(r.o.at(key), problem);
                }
                *(a.slot)(record) = text;
            }
            Io::Int(a) => *(a.slot)(record) = r.decimal(key),
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

    fn write(&self, key: &'static str, record: &R, m: &mut Map<String, Value>) {
        let text = |s: String| Value::String(s);
        let value = match self {
            Io::Text(a) | Io::Checked(a, _) => text((a.get)(record).cloned().unwrap_or_default()),
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
                return;
            }
            Io::Own { write, .. } => write(record),
        };
        m.insert(key.to_string(), value);
    }

    /// The product's keys stand in the record's own object.
    fn keys(&self, key: &'static str) -> impl Iterator<Item = &'static str> + Clone {
        let (own, part): (Option<&'static str>, &'static [Field<Product>]) = match self {
            Io::Product(_) => (None, PRODUCT),
            _ => (Some(key), &[]),
        };
        own.into_iter().chain(part.iter().map(|p| p.key))
    }

    /// An element of an array field (`CPFL[{}]`, `XM[{}].BHGCD`), or a product field; the
    /// product named as a whole is its first key (`CPMC`).
    fn template(&self, f: &Field<R>, pattern: &str) -> Option<String> {
        let rest = pattern.strip_prefix(f.path)?;
        if let Io::Product(_) = self {
            return match rest {
                "" => PRODUCT.first().map(|p| p.key.to_string()),
                _ => rest.strip_prefix('.').and_then(|rest| template(PRODUCT, rest)),
            };
        }
        let rest = rest.strip_prefix("[]")?;
        match (self, rest) {
            (Io::Strings(_) | Io::Own { .. }, "") => Some(format!("{}[{{}}]", f.key)),
            (Io::Own { items: Some(items), .. }, _) => {
                let inner = rest.strip_prefix('.').and_then(items)?;
                Some(format!("{}[{{}}].{inner}", f.key))
            }
            _ => None,
        }
    }
}
