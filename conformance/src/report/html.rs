//! The HTML report: one self-contained, printable page (no scripts, no external resources) that a
//! person can read and sign off — the run, its inputs, a summary, every case with its findings and
//! the evidence of every exchange.

use crate::report::junit::escape;
use crate::report::{CaseReport, Evidence, Outcome, Payload, RunReport};
use std::fmt::Write;

const STYLE: &str = "
body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;margin:2em;color:#222;max-width:75em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
.pass{color:#176a2c}.fail{color:#b00020;font-weight:bold}.error{color:#8a4b00;font-weight:bold}.skip,.omit{color:#666}
.case{border:1px solid #ddd;border-radius:4px;padding:.6em 1em;margin:1em 0;page-break-inside:avoid}
pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:.5em;max-height:30em;overflow:auto;font-size:.85em}
.sign{margin-top:3em}.sign td{height:2.5em;min-width:18em}
@media print{details{display:block}details>summary{display:none}pre{max-height:none}body{margin:0}}
";

fn outcome_cell(c: &CaseReport) -> String {
    let o = c.outcome.as_str();
    let extra = match (c.outcome, c.known_failing) {
        (Outcome::Fail, true) => " (known)",
        (Outcome::Pass, true) => " (listed as known failing)",
        _ => "",
    };
    format!("<span class=\"{o}\">{o}{extra}</span>")
}

fn payload(out: &mut String, label: &str, p: &Payload) {
    let _ = write!(out, "<p><b>{label}</b> ({} bytes{})</p>", p.length, if p.truncated { ", cut" } else { "" });
    if let Some(t) = &p.text {
        let _ = write!(out, "<pre>{}</pre>", escape(t));
    }
    if let Some(b) = &p.base64 {
        let _ = write!(out, "<pre>base64: {}</pre>", escape(b));
    }
    if let Some(d) = &p.decoded {
        let text = serde_json::to_string_pretty(d).unwrap_or_default();
        let _ = write!(out, "<p><i>decoded</i></p><pre>{}</pre>", escape(&text));
    }
}

fn evidence(out: &mut String, e: &Evidence) {
    let _ = write!(
        out,
        "<details><summary>step {} · {} · {} → {} ({} ms)</summary><table>",
        e.step,
        escape(&e.actor),
        escape(&e.method),
        escape(&e.status),
        e.duration_ms
    );
    if let Some(t) = &e.tls {
        let _ = write!(
            out,
            "<tr><th>TLS</th><td>{}</td></tr><tr><th>peer certificate SHA-256</th><td><code>{}</code></td></tr><tr><th>peer SAN</th><td>{}</td></tr>",
            escape(&t.version),
            escape(&t.peer_fingerprint_sha256),
            escape(&t.peer_san.join(", "))
        );
    }
    out.push_str("</table>");
    payload(out, "request", &e.request);
    payload(out, "response", &e.response);
    out.push_str("</details>");
}

/// Renders the report as one HTML page.
pub fn render(r: &RunReport) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>yrdx conformance — {} — {}</title><style>{STYLE}</style></head><body>",
        escape(&r.suite),
        escape(&r.run_id)
    );
    let _ = write!(
        out,
        "<h1>yrdx conformance report: suite <code>{}</code> — verdict <span class=\"{}\">{}</span></h1>",
        escape(&r.suite),
        match r.verdict.as_str() {
            "pass" => "pass",
            "incomplete" => "error",
            _ => "fail",
        },
        escape(&r.verdict)
    );
    let _ =
        write!(out, "<p class=\"verdict\"><b>verdict {}</b>: {}</p>", escape(&r.verdict), escape(&r.verdict_reason));
    out.push_str("<table>");
    for (k, v) in [
        ("run id", r.run_id.clone()),
        ("target", r.target.clone()),
        ("acting as", r.acting_as.clone()),
        ("started", r.started_at.clone()),
        ("duration", format!("{:.1} s", r.duration_ms as f64 / 1000.0)),
        ("tool", format!("{} {}", r.tool, r.tool_version)),
        ("tool SHA-256", r.tool_sha256.clone()),
        ("suite version", r.suite_version.clone()),
        ("report format", r.report_format.clone()),
    ] {
        if !v.is_empty() {
            let _ = write!(out, "<tr><th>{k}</th><td>{}</td></tr>", escape(&v));
        }
    }
    out.push_str("</table><h2>Inputs</h2><table>");
    for i in &r.inputs {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", escape(&i.name), escape(&i.value));
    }
    let s = &r.summary;
    let _ = write!(
        out,
        "</table><h2>Summary</h2><table><tr><th>pass</th><th>fail</th><th>error</th><th>skip</th><th>omit</th><th>known failing</th><th>listed but passed</th><th>required not run</th></tr><tr><td class=\"pass\">{}</td><td class=\"fail\">{}</td><td class=\"error\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        s.pass, s.fail, s.error, s.skip, s.omit, s.known_failing, s.unexpectedly_passed, s.required_not_run
    );
    out.push_str("<table><tr><th>case</th><th>outcome</th><th>title</th><th>requirements</th><th>ms</th></tr>");
    for c in r.cases_for_reading() {
        let _ = write!(
            out,
            "<tr><td><a href=\"#{}\"><code>{}</code></a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&c.id),
            escape(&c.id),
            outcome_cell(c),
            escape(&c.title),
            escape(&c.requirements.join(", ")),
            c.duration_ms
        );
    }
    out.push_str("</table><h2 id=\"requirements\">Requirements × cases</h2><table class=\"matrix\"><tr><th>clause</th><th>cases and outcomes</th></tr>");
    for row in &r.requirements {
        let cells: Vec<String> = row
            .cases
            .iter()
            .map(|c| {
                format!(
                    "<a href=\"#{0}\"><code>{0}</code></a> <span class=\"{1}\">{1}</span>",
                    escape(&c.id),
                    c.outcome.as_str()
                )
            })
            .collect();
        let _ = write!(out, "<tr><td><code>{}</code></td><td>{}</td></tr>", escape(&row.clause), cells.join("<br>"));
    }
    out.push_str("</table><h2>Cases</h2>");
    for c in r.cases_for_reading() {
        let _ = write!(
            out,
            "<div class=\"case\" id=\"{}\"><h3><code>{}</code> — {}</h3><p>{}</p><p>{}</p><p>requirements: {} · tags: {} · group: {}{}</p>",
            escape(&c.id),
            escape(&c.id),
            outcome_cell(c),
            escape(&c.title),
            escape(&c.checks),
            escape(&c.requirements.join(", ")),
            escape(&c.tags.join(", ")),
            escape(&c.group),
            if c.required { "" } else { " · optional" }
        );
        if !c.message.is_empty() {
            let _ = write!(out, "<p><i>{}</i></p>", escape(&c.message));
        }
        if !c.findings.is_empty() {
            out.push_str("<table><tr><th>assertion</th><th>location</th><th>expected</th><th>actual</th></tr>");
            for f in &c.findings {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    escape(&f.assertion),
                    escape(&f.location),
                    escape(&f.expected),
                    escape(&f.actual)
                );
            }
            out.push_str("</table>");
        }
        for e in &c.evidence {
            evidence(&mut out, e);
        }
        out.push_str("</div>");
    }
    out.push_str(
        "<table class=\"sign\"><tr><th>reviewed by</th><td></td><th>date</th><td></td></tr><tr><th>signature</th><td></td><th>decision</th><td></td></tr></table></body></html>\n",
    );
    out
}
