//! The problems a decoder finds ([`Ctx`]: every problem with the sender's path and the record's
//! id, linear to collect, capped at `max_problems`) and the code-list lookups every decoder
//! reports through.

use crate::model::{DecodeLimits, Problem, Record};
use std::collections::HashSet;

/// Problems collected while decoding one document.
pub(crate) struct Ctx {
    pub problems: Vec<Problem>,
    /// The id of the record being decoded, attached to its problems.
    pub record_id: Option<String>,
    /// Paths already reported, for one problem per path in O(1): scanning `problems` for each new
    /// one made a document with n problems cost n².
    seen: HashSet<String>,
    /// Problems kept before collection stops.
    max_problems: usize,
    /// Set once `max_problems` were kept: further problems are not collected.
    full: bool,
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx::new(&DecodeLimits::default())
    }
}

impl Ctx {
    /// A collector keeping at most `limits.max_problems` problems.
    pub fn new(limits: &DecodeLimits) -> Ctx {
        Ctx {
            problems: Vec::new(),
            record_id: None,
            seen: HashSet::new(),
            max_problems: limits.max_problems.max(1),
            full: false,
        }
    }

    /// True once the problem limit was reached: the decoder may stop reading records.
    pub fn full(&self) -> bool {
        self.full
    }

    /// Validates a decoded record against the domain rules and reports each violation at the
    /// partner's own path (`partner_path` maps a canonical path such as `seller.uscc`), as
    /// [`Ctx::rule_violations`] does.
    pub fn check_rules(&mut self, start: usize, record: &Record, partner_path: impl Fn(&str) -> String) {
        self.rule_violations(start, record.validate().into_iter().map(|v| (partner_path(&v.path), v.message)));
    }

    /// Reports the domain rules' violations of a record decoded from `start` on, skipping paths
    /// whose syntax already failed (a bad date is not reported again as a missing one).
    pub fn rule_violations(&mut self, start: usize, violations: impl IntoIterator<Item = (String, String)>) {
        // Only this record's problems: the cost stays linear in the number of problems.
        let syntax: HashSet<&str> =
            self.problems[start.min(self.problems.len())..].iter().map(|p| p.path.as_str()).collect();
        let fresh: Vec<(String, String)> =
            violations.into_iter().filter(|(path, _)| !syntax.contains(path.as_str())).collect();
        for (path, message) in fresh {
            self.push(path, message);
        }
    }

    pub fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        if self.full {
            return;
        }
        let path = path.into();
        // One problem per path: a field whose syntax failed is not reported again by the rules.
        if self.seen.contains(&path) {
            return;
        }
        self.push(path, message.into());
    }

    fn push(&mut self, path: String, message: String) {
        if self.full {
            return;
        }
        if self.problems.len() >= self.max_problems {
            self.full = true;
            self.problems.push(Problem {
                path: "/".into(),
                record_id: None,
                message: format!(
                    "more problems not listed: reporting stops after the first {} (limit max_problems)",
                    self.max_problems
                ),
            });
            return;
        }
        self.seen.insert(path.clone());
        self.problems.push(Problem { path, record_id: self.record_id.clone(), message });
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

/// A date in a partner's form (`parse`, described as `form` in the problem); `""` is no date.
pub(crate) fn parse_date(
    text: &str,
    parse: fn(&str) -> Option<yrdx_proto::Date>,
    form: &str,
    path: impl std::fmt::Display,
    cx: &mut Ctx,
) -> Option<yrdx_proto::Date> {
    if text.is_empty() {
        return None;
    }
    let d = parse(text);
    if d.is_none() {
        cx.error(path.to_string(), format!("'{text}' is not a date {form}"));
    }
    d
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_stop_at_the_limit_and_say_so() {
        let mut cx = Ctx::new(&DecodeLimits { max_problems: 3, ..DecodeLimits::default() });
        for i in 0..100_000 {
            cx.error(format!("DATA[{i}]"), "bad");
        }
        assert_eq!(cx.problems.len(), 4);
        assert!(cx.full());
        assert!(cx.problems[3].message.contains("after the first 3"), "{}", cx.problems[3].message);
        // One problem per path, and the rules do not repeat a path whose syntax failed.
        let mut cx = Ctx::default();
        cx.error("a", "first");
        cx.error("a", "second");
        cx.rule_violations(0, [("a".to_string(), "rule".to_string()), ("b".to_string(), "rule".to_string())]);
        let got: Vec<&str> = cx.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(got, ["first", "rule"]);
    }
}
