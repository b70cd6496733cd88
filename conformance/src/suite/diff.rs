//! Field-by-field differences between an expected and an actual JSON value.

use super::*;

/// The leaf differences between two JSON values, as (path, expected, actual).
pub fn json_differences(expected: &Value, actual: &Value) -> Vec<(String, String, String)> {
    fn walk(path: &str, e: &Value, a: &Value, out: &mut Vec<(String, String, String)>) {
        let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
        match (e, a) {
            (Value::Object(eo), Value::Object(ao)) => {
                let keys: std::collections::BTreeSet<&String> = eo.keys().chain(ao.keys()).collect();
                for k in keys {
                    walk(&join(k), eo.get(k).unwrap_or(&Value::Null), ao.get(k).unwrap_or(&Value::Null), out);
                }
            }
            (Value::Array(ea), Value::Array(aa)) if ea.len() == aa.len() => {
                for (i, (x, y)) in ea.iter().zip(aa).enumerate() {
                    walk(&join(&i.to_string()), x, y, out);
                }
            }
            _ if e == a => {}
            _ => out.push((path.to_string(), show(e), show(a))),
        }
    }
    fn show(v: &Value) -> String {
        match v {
            Value::Null => "(absent)".into(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    let mut out = Vec::new();
    walk("", expected, actual, &mut out);
    out
}
