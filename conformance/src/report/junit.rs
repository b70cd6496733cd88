//! The JUnit XML report, for CI systems: one `testsuite` per group, `failure` for a failed case,
//! `error` for a broken one, `skipped` for skipped and omitted ones.

use crate::report::{Outcome, RunReport};
use std::fmt::Write;

/// Escapes text for XML content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Renders the report as JUnit XML.
pub fn render(r: &RunReport) -> String {
    let mut groups: Vec<&str> = Vec::new();
    for c in &r.cases {
        if !groups.contains(&c.group.as_str()) {
            groups.push(&c.group);
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"yrdx conformance {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        escape(&r.suite),
        r.cases.len(),
        r.summary.fail,
        r.summary.error,
        r.summary.skip + r.summary.omit,
        r.duration_ms as f64 / 1000.0
    );
    for g in groups {
        let cases: Vec<_> = r.cases.iter().filter(|c| c.group == g).collect();
        let count = |o: Outcome| cases.iter().filter(|c| c.outcome == o).count();
        let time: u64 = cases.iter().map(|c| c.duration_ms).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}.{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            escape(&r.suite),
            escape(g),
            cases.len(),
            count(Outcome::Fail),
            count(Outcome::Error),
            count(Outcome::Skip) + count(Outcome::Omit),
            time as f64 / 1000.0
        );
        for c in cases {
            let _ = write!(
                out,
                "    <testcase classname=\"{}.{}\" name=\"{}\" time=\"{:.3}\">",
                escape(&r.suite),
                escape(g),
                escape(&c.id),
                c.duration_ms as f64 / 1000.0
            );
            let details: String = c
                .findings
                .iter()
                .map(|f| format!("{} at {}: expected {}, got {}\n", f.assertion, f.location, f.expected, f.actual))
                .collect();
            match c.outcome {
                Outcome::Pass => {}
                Outcome::Fail => {
                    let kind = if c.known_failing { " (known failing)" } else { "" };
                    let _ =
                        write!(out, "<failure message=\"{}{kind}\">{}</failure>", escape(&c.message), escape(&details));
                }
                Outcome::Error => {
                    let _ = write!(out, "<error message=\"{}\"/>", escape(&c.message));
                }
                Outcome::Skip | Outcome::Omit => {
                    let _ = write!(out, "<skipped message=\"{}: {}\"/>", c.outcome.as_str(), escape(&c.message));
                }
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    // The verdict as a case of its own, so a CI system shows `incomplete` (a required case did
    // not run) as a failure rather than as a row of harmless skips.
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}.verdict\" tests=\"1\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"0.000\">",
        escape(&r.suite),
        u8::from(matches!(r.verdict.as_str(), "fail" | "incomplete")),
        u8::from(r.verdict == "error"),
    );
    let _ = writeln!(
        out,
        "    <properties><property name=\"verdict\" value=\"{}\"/><property name=\"verdict_reason\" value=\"{}\"/></properties>",
        escape(&r.verdict),
        escape(&r.verdict_reason)
    );
    let _ = write!(
        out,
        "    <testcase classname=\"{}.verdict\" name=\"verdict {}\" time=\"0.000\">",
        escape(&r.suite),
        escape(&r.verdict)
    );
    match r.verdict.as_str() {
        "pass" => {}
        "error" => {
            let _ = write!(out, "<error message=\"verdict error: {}\"/>", escape(&r.verdict_reason));
        }
        v => {
            let _ = write!(out, "<failure message=\"verdict {}: {}\"/>", escape(v), escape(&r.verdict_reason));
        }
    }
    out.push_str("</testcase>\n  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;\u{fffd}");
    }
}
