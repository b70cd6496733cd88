//! Editing canonical JSON by dotted path (`producer.region`, `participants.1.quota`).

use super::*;

/// Why a dotted path cannot be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPathError {
    /// A part inside an array is not a number.
    #[error("{path}: {part} is not an index")]
    NotAnIndex {
        /// The whole path.
        path: String,
        /// The part.
        part: String,
    },
    /// An index past the end of an array.
    #[error("{path}: index {index} beyond {len} elements")]
    BeyondEnd {
        /// The whole path.
        path: String,
        /// The index.
        index: usize,
        /// The array's length.
        len: usize,
    },
    /// A part inside a string, number, boolean or null.
    #[error("{path}: {part} is inside a value that is not an object or array")]
    NotAContainer {
        /// The whole path.
        path: String,
        /// The part.
        part: String,
    },
}

/// Sets `value` at a dotted canonical path (`producer.region`, `participants.1.quota`), creating
/// objects on the way.
pub fn set_path(root: &mut Value, path: &str, value: Value) -> Result<(), JsonPathError> {
    let mut at = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        at = match at {
            Value::Object(o) => {
                if last {
                    o.insert(part.to_string(), value);
                    return Ok(());
                }
                o.entry(part.to_string()).or_insert_with(|| Value::Object(Default::default()))
            }
            Value::Array(a) => {
                let n: usize = part
                    .parse()
                    .map_err(|_| JsonPathError::NotAnIndex { path: path.to_string(), part: part.to_string() })?;
                let len = a.len();
                let slot =
                    a.get_mut(n).ok_or_else(|| JsonPathError::BeyondEnd { path: path.to_string(), index: n, len })?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
            _ => return Err(JsonPathError::NotAContainer { path: path.to_string(), part: part.to_string() }),
        };
    }
    Ok(())
}

/// Removes a dotted path (for `ignore`): `events.*.at` removes `at` from every event.
pub fn remove_path(root: &mut Value, path: &str) {
    fn walk(v: &mut Value, parts: &[&str]) {
        let Some((first, rest)) = parts.split_first() else { return };
        match v {
            Value::Object(o) => {
                if rest.is_empty() {
                    o.remove(*first);
                } else if let Some(child) = o.get_mut(*first) {
                    walk(child, rest);
                }
            }
            Value::Array(a) => {
                if *first == "*" {
                    for x in a.iter_mut() {
                        walk(x, rest);
                    }
                } else if let Ok(n) = first.parse::<usize>() {
                    if rest.is_empty() {
                        if n < a.len() {
                            a.remove(n);
                        }
                    } else if let Some(x) = a.get_mut(n) {
                        walk(x, rest);
                    }
                }
            }
            _ => {}
        }
    }
    let parts: Vec<&str> = path.split('.').collect();
    walk(root, &parts);
}
