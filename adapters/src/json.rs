//! Problem collection shared by every decoder ([`Ctx`], code and category lookups), and
//! strict reading of JSON documents (Jiangsu and Beijing): every key checked against the record's
//! table, every problem collected with the partner's path, nesting depth bounded.

use crate::model::{DecodeError, DecodeLimits, Problem};
use serde_json::{Map, Value};

/// Problems collected while decoding one document.
#[derive(Default)]
pub(crate) struct Ctx {
    pub problems: Vec<Problem>,
    /// The id of the record being decoded, attached to its problems.
    pub record_id: Option<String>,
}

impl Ctx {
    /// Reports the domain rules' violations of a record decoded from `start` on, skipping paths
    /// whose syntax already failed (a bad date is not reported again as a missing one).
    pub fn rule_violations(&mut self, start: usize, violations: impl IntoIterator<Item = (String, String)>) {
        let syntax: Vec<String> = self.problems[start..].iter().map(|p| p.path.clone()).collect();
        for (path, message) in violations {
            if !syntax.contains(&path) {
                self.problems.push(Problem { path, record_id: self.record_id.clone(), message });
            }
        }
    }

    pub fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        // One problem per path: a field whose syntax failed is not reported again by the rules.
        if self.problems.iter().any(|p| p.path == path) {
            return;
        }
        self.problems.push(Problem { path, record_id: self.record_id.clone(), message: message.into() });
    }
}

/// The canonical value of a partner code from a dictionary (`""` gives 0: unset, which the domain
/// rules report as required); an unknown code is a problem listing the expected ones. The path is
/// only written out for a problem.
pub(crate) fn lookup(text: &str, table: &[(&str, i32)], path: impl std::fmt::Display, cx: &mut Ctx) -> i32 {
    if text.is_empty() {
        return 0;
    }
    match table.iter().find(|(c, _)| *c == text) {
        Some((_, v)) => *v,
        None => {
            let codes: Vec<&str> = table.iter().map(|(c, _)| *c).collect();
            cx.error(path.to_string(), format!("'{text}' is not one of: {}", codes.join(", ")));
            0
        }
    }
}

/// The partner code of a canonical value (`""` when none).
pub(crate) fn code_of(value: i32, table: &[(&'static str, i32)]) -> &'static str {
    table.iter().find(|(_, v)| *v == value).map(|(c, _)| *c).unwrap_or("")
}

/// A product category from its catalogue code (`""` gives 0, unset).
pub(crate) fn category_value(text: &str, path: impl std::fmt::Display, cx: &mut Ctx) -> i32 {
    if text.is_empty() {
        return 0;
    }
    match yrdx_proto::codes::category_from_code(text) {
        Some(c) => c as i32,
        None => {
            cx.error(
                path.to_string(),
                format!("'{text}' is not a product category code of the catalogue (0101 … 0801)"),
            );
            0
        }
    }
}

/// Parses JSON bytes under the limits; UTF-8 without a byte-order mark.
pub(crate) fn parse(bytes: &[u8], limits: &DecodeLimits) -> Result<Value, DecodeError> {
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge { size: bytes.len(), limit: limits.max_bytes });
    }
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(DecodeError::refused("$", "a UTF-8 byte-order mark is not allowed"));
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(DecodeError::refused("$", format!("not valid UTF-8: invalid byte at offset {}", e.valid_up_to())));
    }
    let depth = json_depth(bytes);
    if depth > limits.max_depth {
        return Err(DecodeError::refused(
            "$",
            format!("nesting of {depth} levels is deeper than the limit of {}", limits.max_depth),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        DecodeError::refused("$", format!("not well-formed JSON: {e} (line {}, column {})", e.line(), e.column()))
    })
}

/// Maximum nesting of arrays and objects, counted on the raw bytes before parsing so that a
/// deeply nested document is refused without building it.
fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// A JSON object being read at a path.
pub(crate) struct Obj<'v> {
    pub map: &'v Map<String, Value>,
    pub path: String,
}

impl<'v> Obj<'v> {
    /// The object at `path`, or a problem when `value` is not an object.
    pub fn of(value: &'v Value, path: impl Into<String>, cx: &mut Ctx) -> Option<Obj<'v>> {
        let path = path.into();
        match value {
            Value::Object(map) => Some(Obj { map, path }),
            other => {
                cx.error(path, format!("expected a JSON object, found {}", type_name(other)));
                None
            }
        }
    }

    /// Path of a key of this object.
    pub fn at(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Reports every key not in `allowed` (a partner's typo must not vanish).
    pub fn deny_unknown(&self, allowed: &[&str], cx: &mut Ctx) {
        for key in self.map.keys() {
            if !allowed.contains(&key.as_str()) {
                cx.error(self.at(key), format!("unknown key '{key}' (expected one of: {})", allowed.join(", ")));
            }
        }
    }

    /// The value of a key; `None` when missing.
    pub fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key)
    }
}

/// The JSON type of a value, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Writes a JSON value as the exchange writes documents: two-space indentation, UTF-8, a final
/// newline, keys in insertion order.
pub(crate) fn to_bytes(value: &Value) -> Vec<u8> {
    // Serialising a Value built in memory cannot fail.
    let mut out = serde_json::to_vec_pretty(value).unwrap_or_default();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_structure_not_strings() {
        assert_eq!(json_depth(br#"{"a":[{"b":"[[[["}]}"#), 3);
        assert_eq!(json_depth(br#""{{{{""#), 0);
        assert_eq!(json_depth(br#"{"a":"\"{"}"#), 1);
    }

    #[test]
    fn limits_refuse_before_parsing() {
        let limits = DecodeLimits { max_bytes: 10, max_depth: 2 };
        assert!(matches!(parse(b"{\"a\": \"0123456789\"}", &limits), Err(DecodeError::TooLarge { .. })));
        assert!(matches!(parse(b"[[[1]]]", &limits), Err(DecodeError::Refused { .. })));
        assert!(matches!(parse(b"\xff", &limits), Err(DecodeError::Refused { .. })));
        assert!(matches!(parse(b"{", &limits), Err(DecodeError::Refused { .. })));
    }
}
