//! Editing canonical JSON by dotted path (`producer.region`, `participants.1.quota`).

use super::*;

/// Sets `value` at a dotted canonical path (`producer.region`, `participants.1.quota`), creating
/// objects on the way.
pub fn set_path(root: &mut Value, path: &str, value: Value) -> Result<(), String> {
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
                let n: usize = part.parse().map_err(|_| format!("{path}: {part} is not an index"))?;
                let len = a.len();
                let slot = a.get_mut(n).ok_or_else(|| format!("{path}: index {n} beyond {len} elements"))?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
            _ => return Err(format!("{path}: {part} is inside a value that is not an object or array")),
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
