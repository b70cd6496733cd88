//! Strict reading of JSON documents (Jiangsu, Beijing, canonical): duplicate keys refused, every
//! key checked against the record's table, nesting depth and values bounded while parsing.

use crate::model::{DecodeError, DecodeLimits};
use crate::problems::Ctx;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};
use std::fmt;

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
    let mut state = ParseState { nodes: 0, max_nodes: limits.max_nodes, failure: None };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = ValueSeed(&mut state).deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    result.map_err(|e| match state.failure.take() {
        Some(f) => DecodeError::refused(f.path(), format!("{} (line {}, column {})", f.message, e.line(), e.column())),
        None => {
            DecodeError::refused("$", format!("not well-formed JSON: {e} (line {}, column {})", e.line(), e.column()))
        }
    })
}

/// What the strict reader refused, and where (innermost segment first, as the error unwinds).
struct Failure {
    segments: Vec<Segment>,
    message: String,
}

enum Segment {
    Key(String),
    Index(usize),
}

impl Failure {
    /// The path in the decoders' own form (`DATA[2].XM[0].XMMC`, `HEAD.FSF`; `$` for the root).
    fn path(&self) -> String {
        let mut out = String::new();
        for s in self.segments.iter().rev() {
            match s {
                Segment::Key(k) if out.is_empty() => out.push_str(k),
                Segment::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        if out.is_empty() {
            "$".into()
        } else {
            out
        }
    }
}

/// State of the strict reader: values counted against the limit, the first refusal.
struct ParseState {
    nodes: usize,
    max_nodes: usize,
    failure: Option<Failure>,
}

impl ParseState {
    /// Adds the segment of a child to a refusal unwinding through its parent.
    #[cold]
    fn unwind(&mut self, segment: Segment) {
        if let Some(f) = &mut self.failure {
            f.segments.push(segment);
        }
    }
}

/// Builds a [`Value`] like serde_json's own deserialiser, but refuses a duplicate key (serde_json
/// keeps the last, while a partner's reader may take the first: the gateway would store another
/// document than the one the partner sees) and more values than the limit (counted as they are
/// read, before anything is interpreted).
struct ValueSeed<'s>(&'s mut ParseState);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.0.nodes += 1;
        if self.0.nodes > self.0.max_nodes {
            self.0.failure = Some(Failure {
                segments: Vec::new(),
                message: format!(
                    "the document holds more than {} values (array items and object members), the limit",
                    self.0.max_nodes
                ),
            });
            return Err(de::Error::custom("too many values"));
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            match seq.next_element_seed(ValueSeed(&mut *self.0)) {
                Ok(Some(v)) => items.push(v),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    self.0.unwind(Segment::Index(items.len()));
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            match map.entry(key) {
                Entry::Occupied(o) => {
                    let key = o.key().clone();
                    self.0.failure = Some(Failure {
                        message: format!("duplicate key '{key}': a key may appear only once in an object"),
                        segments: vec![Segment::Key(key)],
                    });
                    return Err(de::Error::custom("duplicate key"));
                }
                Entry::Vacant(slot) => match access.next_value_seed(ValueSeed(&mut *self.0)) {
                    Ok(v) => {
                        slot.insert(v);
                    }
                    Err(e) => {
                        self.0.unwind(Segment::Key(slot.key().clone()));
                        return Err(e);
                    }
                },
            }
        }
        Ok(Value::Object(map))
    }
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
        self.deny_unknown_of(allowed.iter().copied(), cx);
    }

    /// [`Obj::deny_unknown`] with the allowed keys from an iterator (a field table's keys).
    pub fn deny_unknown_of<'k>(&self, allowed: impl Iterator<Item = &'k str> + Clone, cx: &mut Ctx) {
        for key in self.map.keys() {
            if !allowed.clone().any(|a| a == key) {
                let expected = allowed.clone().collect::<Vec<_>>().join(", ");
                cx.error(self.at(key), format!("unknown key '{key}' (expected one of: {expected})"));
            }
        }
    }

    /// The value of a key; `None` when missing.
    pub fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key)
    }
}

/// The strings of an array, each trimmed; an element of another type is a problem at
/// `path[i]`, "expected {`what`}, found …", and reads as `""`.
pub(crate) fn strings(list: &[Value], path: &str, what: &str, cx: &mut Ctx) -> Vec<String> {
    list.iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => s.trim().to_string(),
            other => {
                cx.error(format!("{path}[{i}]"), format!("expected {what}, found {}", type_name(other)));
                String::new()
            }
        })
        .collect()
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

/// A member's value as [`to_bytes`] writes it inside the document's top-level object: its
/// pretty form with every line after the first indented one level more. JSON text holds no raw
/// newline inside a string, so every newline of the pretty form is a line break of the layout.
pub(crate) fn member_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let alone = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut out = Vec::with_capacity(alone.len() + alone.len() / 8);
    for &b in &alone {
        out.push(b);
        if b == b'\n' {
            out.extend_from_slice(b"  ");
        }
    }
    out
}

/// The bytes [`to_bytes`] writes for an object of these members, in order, from each value's
/// [`member_bytes`]: a document's parts shared by several documents are written once.
pub(crate) fn object_bytes(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::with_capacity(members.iter().map(|(k, v)| k.len() + v.len() + 8).sum::<usize>() + 4);
    out.extend_from_slice(b"{");
    for (i, (key, value)) in members.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"\n  " } else { b",\n  " });
        out.extend_from_slice(&serde_json::to_vec(key).unwrap_or_default());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
    }
    out.extend_from_slice(if members.is_empty() { b"}\n" } else { b"\n}\n" });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_written_from_its_members_is_the_object_written_whole() {
        let value: Value = serde_json::from_str(
            r#"{"HEAD": {"a": "x\ny", "b": [], "c": {}}, "DATA": [{"k": [1, 2.5, null, true]}, "\"q\"", {"e": {"f": "中文"}}], "n": 3}"#,
        )
        .unwrap();
        let Value::Object(map) = &value else { unreachable!() };
        let parts: Vec<(&str, Vec<u8>)> = map.iter().map(|(k, v)| (k.as_str(), member_bytes(v))).collect();
        let members: Vec<(&str, &[u8])> = parts.iter().map(|(k, v)| (*k, &v[..])).collect();
        assert_eq!(String::from_utf8(object_bytes(&members)).unwrap(), String::from_utf8(to_bytes(&value)).unwrap());
        assert_eq!(object_bytes(&[]), to_bytes(&Value::Object(Map::new())));
    }

    #[test]
    fn depth_counts_structure_not_strings() {
        assert_eq!(json_depth(br#"{"a":[{"b":"[[[["}]}"#), 3);
        assert_eq!(json_depth(br#""{{{{""#), 0);
        assert_eq!(json_depth(br#"{"a":"\"{"}"#), 1);
    }

    fn refusal(bytes: &[u8], limits: &DecodeLimits) -> (String, String) {
        match parse(bytes, limits) {
            Err(DecodeError::Refused { path, message }) => (path, message),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_path() {
        let limits = DecodeLimits::default();
        let (path, message) = refusal(br#"{"HEAD":{"FSF":"330000","FSF":"320000"},"DATA":[]}"#, &limits);
        assert_eq!(path, "HEAD.FSF");
        assert!(message.contains("duplicate key 'FSF'") && message.contains("line 1"), "{message}");
        let (path, _) = refusal(br#"{"HEAD":{},"HEAD":{}}"#, &limits);
        assert_eq!(path, "HEAD");
        let (path, _) = refusal(br#"{"DATA":[{"A":"1"},{"CYDBH":"x","B":"","CYDBH":"y"}]}"#, &limits);
        assert_eq!(path, "DATA[1].CYDBH");
        // The same key in two objects is no duplicate.
        assert!(parse(br#"[{"a":1},{"a":2}]"#, &limits).is_ok());
    }

    #[test]
    fn values_are_counted_against_the_limit_while_parsing() {
        let limits = DecodeLimits { max_nodes: 10, ..DecodeLimits::default() };
        // The root and nine items: ten values.
        assert!(parse(b"[1,2,3,4,5,6,7,8,9]", &limits).is_ok());
        let (path, message) = refusal(b"[1,2,3,4,5,6,7,8,9,10]", &limits);
        assert_eq!(path, "[9]");
        assert!(message.contains("more than 10 values"), "{message}");
        let (path, _) = refusal(br#"{"a":{"b":[1,2,3,4,5,6,7,8]}}"#, &limits);
        assert_eq!(path, "a.b[7]");
    }

    #[test]
    fn limits_refuse_before_parsing() {
        let limits = DecodeLimits { max_bytes: 10, max_depth: 2, ..DecodeLimits::default() };
        assert!(matches!(parse(b"{\"a\": \"0123456789\"}", &limits), Err(DecodeError::TooLarge { .. })));
        assert!(matches!(parse(b"[[[1]]]", &limits), Err(DecodeError::Refused { .. })));
        assert!(matches!(parse(b"\xff", &limits), Err(DecodeError::Refused { .. })));
        assert!(matches!(parse(b"{", &limits), Err(DecodeError::Refused { .. })));
    }
}
