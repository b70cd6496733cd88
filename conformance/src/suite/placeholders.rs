//! The run-time placeholders (`${RUN}`, `${REGION}` …) filled into every string of a case.

use super::*;

/// Run-time values of the placeholders.
#[derive(Debug, Clone)]
pub struct Placeholders {
    values: Vec<(String, String)>,
}

impl Placeholders {
    /// Placeholders for a run.
    pub fn new(pairs: &[(&str, String)]) -> Placeholders {
        Placeholders { values: pairs.iter().map(|(k, v)| (format!("${{{k}}}"), v.clone())).collect() }
    }

    /// Fills in every placeholder of `text`.
    pub fn fill(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (k, v) in &self.values {
            if out.contains(k.as_str()) {
                out = out.replace(k.as_str(), v);
            }
        }
        out
    }

    /// Fills in every string of a JSON value.
    pub fn fill_json(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.fill(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.fill_json(x)).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), self.fill_json(x))).collect()),
            other => other.clone(),
        }
    }
}
