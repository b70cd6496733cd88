//! HTML building blocks of the console: escaping (every value printed goes through [`esc`]:
//! partner data can hold markup), the page layout with the calendar banner, the inline SVG chart
//! and bars, and the marker of provisional due dates. No script, no external resource.

use crate::console::data::ShownDueDate;
use std::fmt::Write;

/// `text` safe to print in HTML element content and in double- or single-quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` as one percent-encoded URL path segment or query value (unreserved characters kept).
pub fn url_part(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The pages of the navigation bar: (path, title).
const NAV: [(&str, &str); 5] =
    [("/", "Overview"), ("/cases", "Cases"), ("/samr", "SAMR docking"), ("/plans", "Plans"), ("/calendar", "Calendar")];

/// A whole page: title, navigation (`current` highlighted), who is signed in, the calendar's
/// banner when there is one, then `body` (already escaped HTML).
pub fn page(title: &str, current: &str, operator: &str, banner: Option<&str>, body: &str) -> String {
    let mut nav = String::new();
    for (path, name) in NAV {
        let class = if path == current { " class=\"current\"" } else { "" };
        let _ = write!(nav, "<a href=\"{path}\"{class}>{name}</a>");
    }
    let banner = banner
        .map(|b| format!("<div class=\"banner\" role=\"alert\" id=\"calendar-banner\"><strong>Calendar:</strong> {}. <a href=\"/calendar\">See the calendar</a>.</div>", esc(b)))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · yrdx console</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"stylesheet\" href=\"/console.css\"></head><body>\
         <header><span class=\"brand\">yrdx · Shanghai exchange</span><nav>{nav}</nav>\
         <span class=\"who\">operator <strong id=\"operator\">{operator}</strong></span></header>\
         {banner}<main><h1>{title}</h1>{body}</main>\
         <footer>Times are Beijing time (UTC+8). Everything on this page is served by the gateway itself.</footer>\
         </body></html>\n",
        title = esc(title),
        operator = esc(operator),
    )
}

/// A due date, marked when provisional.
pub fn due(d: &ShownDueDate) -> String {
    if d.provisional {
        format!(
            "{} <span class=\"provisional\" title=\"counted Monday–Friday: the working-day calendar does not cover this year; recomputed once it does\">provisional</span>",
            esc(&d.date)
        )
    } else {
        esc(&d.date)
    }
}

/// The note under a table that shows a provisional due date.
pub const PROVISIONAL_NOTE: &str = "<p class=\"note\"><span class=\"provisional\">provisional</span> due dates \
    were counted Monday–Friday in a year the working-day calendar does not cover; they are recomputed, and the \
    case sent again to both sides, once a calendar covering that year is loaded.</p>";

/// A small bar chart of `values` (oldest first) as inline SVG, labelled for screen readers.
pub fn chart(values: &[u64], label: &str) -> String {
    let (w, h) = (4u64, 36u64);
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let width = w * values.len() as u64;
    let mut svg = format!(
        "<svg class=\"chart\" width=\"{width}\" height=\"{h}\" viewBox=\"0 0 {width} {h}\" role=\"img\" aria-label=\"{label}\"><title>{label}</title><rect class=\"axis\" x=\"0\" y=\"{y}\" width=\"{width}\" height=\"1\"/>",
        label = esc(label),
        y = h - 1
    );
    for (i, v) in values.iter().enumerate() {
        if *v == 0 {
            continue;
        }
        let bar = ((v * (h - 2)) / max).max(1);
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{bw}\" height=\"{bar}\"><title>{v}</title></rect>",
            x = i as u64 * w,
            y = h - 1 - bar,
            bw = w - 1
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A horizontal bar of `used` out of `of` (capped at full; over-use is marked), inline SVG.
pub fn bar(used: i64, of: i64) -> String {
    let width = 160i64;
    let filled = if of <= 0 { 0 } else { (used.max(0) * width / of).min(width) };
    let class = if of > 0 && used > of { "over" } else { "fill" };
    format!(
        "<svg class=\"bar\" width=\"{width}\" height=\"12\" viewBox=\"0 0 {width} 12\" role=\"img\" aria-label=\"{used} of {of}\"><rect class=\"track\" x=\"0\" y=\"0\" width=\"{width}\" height=\"12\"/><rect class=\"{class}\" x=\"0\" y=\"0\" width=\"{filled}\" height=\"12\"/></svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped_everywhere() {
        let evil = "<script>alert('x')</script>&\"";
        assert_eq!(esc(evil), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;");
        let p = page(evil, "/", evil, Some(evil), "");
        assert!(!p.contains("<script>"), "{p}");
        assert_eq!(p.matches("&lt;script&gt;").count(), 4, "title (twice), operator and banner: {p}");
        let c = chart(&[1, 2], evil);
        assert!(!c.contains("<script>") && c.contains("&lt;script&gt;"), "{c}");
        assert_eq!(url_part("SJB-1/../x y"), "SJB-1%2F..%2Fx%20y");
    }

    #[test]
    fn provisional_due_dates_are_marked() {
        let d = ShownDueDate { date: "2025-01-03".into(), provisional: true };
        assert!(due(&d).contains("class=\"provisional\""));
        assert_eq!(due(&ShownDueDate { provisional: false, ..d }), "2025-01-03");
    }

    #[test]
    fn chart_and_bars_scale_to_their_values() {
        let c = chart(&[0, 5, 10], "submissions");
        assert_eq!(c.matches("<rect x=").count(), 2, "zero minutes draw no bar: {c}");
        assert!(c.contains("height=\"34\"><title>10</title>"), "the largest fills the chart: {c}");
        assert!(bar(5, 10).contains("width=\"80\""), "{}", bar(5, 10));
        assert!(bar(12, 10).contains("class=\"over\" x=\"0\" y=\"0\" width=\"160\""));
        assert!(bar(1, 0).contains("width=\"0\""));
    }
}
