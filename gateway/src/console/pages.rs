//! The console's pages, rendered on the server from the views of [`crate::console::data`]: each
//! function returns the page's body; every value goes through [`esc`].

use crate::console::data::{
    CalendarView, CaseDetail, CaseFilter, CaseRow, CasesView, Overview, PackageDetail, PlanView, SamrView,
};
use crate::console::html::{bar, chart, due, esc, url_part, PROVISIONAL_NOTE};
use std::fmt::Write;

fn age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// The overview: one row per partner.
pub fn overview(o: &Overview) -> String {
    let mut rows = String::new();
    for p in &o.partners {
        let connected = match (p.suspended, p.connections) {
            (true, _) => "<span class=\"bad\">suspended</span>".to_string(),
            (false, 0) => "<span class=\"muted\">no</span>".to_string(),
            (false, n) => format!("<span class=\"good\">yes</span> ({n} connection{})", if n == 1 { "" } else { "s" }),
        };
        let refusals = if p.hour.refused.is_empty() {
            "<span class=\"muted\">none</span>".to_string()
        } else {
            p.hour.refused.iter().map(|(why, n)| format!("{} {n}", esc(why))).collect::<Vec<_>>().join(", ")
        };
        let label = format!("{}: {} submissions in the last hour, per minute", p.name, p.hour.total);
        let _ = write!(
            rows,
            "<tr id=\"partner-{name_id}\"><th scope=\"row\">{name}<br><span class=\"muted\">{region}</span></th><td>{connected}</td>\
             <td>{last}</td><td class=\"num\">{total}</td><td class=\"num\">{depth}</td><td>{oldest}</td><td>{refusals}</td><td>{chart}</td></tr>",
            name_id = url_part(&p.name),
            name = esc(&p.name),
            region = esc(&p.region),
            last = p.last_contact.as_deref().map(esc).unwrap_or_else(|| "<span class=\"muted\">not since start-up</span>".into()),
            total = p.hour.total,
            depth = p.mailbox_depth,
            oldest = p.oldest_unacknowledged_secs.map(age).unwrap_or_else(|| "<span class=\"muted\">none</span>".into()),
            chart = chart(&p.hour.per_minute, &label),
        );
    }
    let tls: String = o
        .tls_refusals
        .iter()
        .map(|(why, n)| format!("<tr><th scope=\"row\">{}</th><td class=\"num\">{n}</td></tr>", esc(why)))
        .collect();
    format!(
        "<p>As of {now}.</p><table class=\"grid\" id=\"partners\"><thead><tr><th>Partner</th><th>Connected</th><th>Last contact</th>\
         <th>Submissions (last hour)</th><th>Mailbox depth</th><th>Oldest unacknowledged</th><th>Refusals (last hour) by reason</th>\
         <th>Submissions per minute (last hour)</th></tr></thead><tbody>{rows}</tbody></table>\
         <h2>Client certificates refused in the TLS handshake (since start-up)</h2>\
         <table class=\"grid narrow\" id=\"tls-refusals\"><tbody>{tls}</tbody></table>",
        now = esc(&o.now)
    )
}

fn options(name: &str, values: &[String], chosen: &str, any: &str) -> String {
    let mut s = format!("<select name=\"{name}\" id=\"filter-{name}\"><option value=\"\">{any}</option>");
    for v in values {
        let selected = if v == chosen { " selected" } else { "" };
        let _ = write!(s, "<option value=\"{v}\"{selected}>{v}</option>", v = esc(v));
    }
    s.push_str("</select>");
    s
}

fn case_row(c: &CaseRow) -> String {
    format!(
        "<tr{class}><td><a href=\"/cases/{id_url}\">{id}</a></td><td>{sample}</td><td>{plan}</td><td>{origin}</td><td>{resp}</td>\
         <td>{status}</td><td>{due}</td><td>{overdue}</td></tr>",
        class = if c.overdue { " class=\"overdue\"" } else { "" },
        id_url = url_part(&c.case_id),
        id = esc(&c.case_id),
        sample = esc(&c.sample_id),
        plan = esc(&c.plan_id),
        origin = esc(&c.origin_region),
        resp = esc(&c.responsible_region),
        status = esc(&c.status),
        due = c.due_on.as_ref().map(due).unwrap_or_default(),
        overdue = if c.overdue { "<span class=\"bad\">overdue</span>" } else { "" },
    )
}

/// The cases page: stages, filters, the list.
pub fn cases(v: &CasesView, f: &CaseFilter) -> String {
    let stages: String = v
        .stages
        .iter()
        .map(|(s, open, overdue)| {
            format!(
                "<tr><th scope=\"row\">{}</th><td class=\"num\">{open}</td><td class=\"num\">{overdue}</td></tr>",
                esc(s)
            )
        })
        .collect();
    let statuses: Vec<String> = ["open", "overdue"]
        .iter()
        .map(|s| s.to_string())
        .chain(
            ["TRANSFERRED", "ACCEPTED", "NOTIFIED", "RECHECKING", "RECTIFYING", "VERIFIED", "RETURNED", "CLOSED"]
                .map(String::from),
        )
        .collect();
    let rows: String = v.cases.iter().map(case_row).collect();
    let provisional = v.cases.iter().any(|c| c.due_on.as_ref().is_some_and(|d| d.provisional));
    format!(
        "<h2>Open and overdue by stage</h2><table class=\"grid narrow\" id=\"stages\"><thead><tr><th>Stage</th><th>Open</th><th>Overdue</th></tr></thead><tbody>{stages}</tbody></table>\
         <form method=\"get\" action=\"/cases\" class=\"filters\"><label>Region {region}</label> <label>Status {status}</label> \
         <label>Plan {plan}</label> <button type=\"submit\">Filter</button> <a href=\"/cases\">clear</a></form>\
         <table class=\"grid\" id=\"cases\"><thead><tr><th>Case</th><th>Sample</th><th>Plan</th><th>Origin</th><th>Responsible</th><th>Status</th>\
         <th>Due</th><th></th></tr></thead><tbody>{rows}</tbody></table><p class=\"muted\">{n} case(s).</p>{note}",
        region = options("region", &v.regions, &f.region, "any"),
        status = options("status", &statuses, &f.status, "any"),
        plan = options("plan", &v.plans, &f.plan, "any"),
        n = v.cases.len(),
        note = if provisional { PROVISIONAL_NOTE } else { "" },
    )
}

/// A case and its timeline.
pub fn case(d: &CaseDetail) -> String {
    let c = &d.row;
    let mut events = String::new();
    for e in &d.events {
        let _ = write!(
            events,
            "<li><span class=\"when\">{at}</span> <strong>{action}</strong> by {by} → {after}{amount}{due}{note}</li>",
            at = esc(&e.at),
            action = esc(&e.action),
            by = esc(&e.by_region),
            after = esc(&e.status_after),
            amount = e.amount_yuan.as_deref().map(|a| format!(", amount ¥{}", esc(a))).unwrap_or_default(),
            due = e.stage_due.as_ref().map(|d| format!("; stage due {}", due(d))).unwrap_or_default(),
            note = if e.note.is_empty() {
                String::new()
            } else {
                format!("<br><span class=\"note\">{}</span>", esc(&e.note))
            },
        );
    }
    let provisional = c.due_on.as_ref().is_some_and(|d| d.provisional)
        || d.events.iter().any(|e| e.stage_due.as_ref().is_some_and(|d| d.provisional));
    format!(
        "<dl class=\"facts\"><dt>Status</dt><dd id=\"case-status\">{status}{overdue}</dd><dt>Due</dt><dd>{due}</dd>\
         <dt>Sample</dt><dd>{sample}</dd><dt>Report</dt><dd>{report}</dd><dt>Plan</dt><dd>{plan}</dd>\
         <dt>Origin</dt><dd>{origin}</dd><dt>Responsible</dt><dd>{resp}</dd><dt>Opened</dt><dd>{opened}</dd></dl>\
         <h2>Timeline</h2><ol class=\"timeline\" id=\"timeline\">{events}</ol>{note}<p><a href=\"/cases\">All cases</a></p>",
        status = esc(&c.status),
        overdue = if c.overdue { " <span class=\"bad\">overdue</span>" } else { "" },
        due = c.due_on.as_ref().map(due).unwrap_or_else(|| "—".into()),
        sample = esc(&c.sample_id),
        report = esc(&d.report_no),
        plan = esc(&c.plan_id),
        origin = esc(&c.origin_region),
        resp = esc(&c.responsible_region),
        opened = esc(&d.opened_at),
        note = if provisional { PROVISIONAL_NOTE } else { "" },
    )
}

/// The SAMR docking page.
pub fn samr(v: &SamrView) -> String {
    let states: String = v
        .by_state
        .iter()
        .map(|(s, n)| {
            format!("<tr><th scope=\"row\">{}</th><td class=\"num\" id=\"state-{}\">{n}</td></tr>", esc(s), url_part(s))
        })
        .collect();
    let mut rows = String::new();
    for p in &v.packages {
        let _ = write!(
            rows,
            "<tr class=\"state-{state_class}\"><td><a href=\"/samr/packages/{num_url}\">{num}</a></td><td>{ty}</td><td>{state}</td><td class=\"num\">{attempts}</td><td>{reason}</td></tr>",
            state_class = url_part(&p.state),
            num_url = url_part(&p.number),
            num = esc(&p.number),
            ty = esc(&p.package_type),
            state = esc(&p.state),
            attempts = p.attempts,
            reason = esc(&p.reason),
        );
    }
    format!(
        "<h2>Packages by state</h2><table class=\"grid narrow\" id=\"by-state\"><tbody>{states}</tbody></table>\
         <h2>Packages</h2><table class=\"grid\" id=\"packages\"><thead><tr><th>Number</th><th>Type</th><th>State</th><th>Attempts</th>\
         <th>SAMR's reason / last error</th></tr></thead><tbody>{rows}</tbody></table>"
    )
}

/// One package with its records, and the resend action when it is parked.
pub fn samr_package(d: &PackageDetail) -> String {
    let p = &d.row;
    let action = if p.state == "parked" {
        format!(
            "<p><a class=\"button\" id=\"resend\" href=\"/samr/packages/{}/resend\">Resend to SAMR…</a></p>",
            url_part(&p.number)
        )
    } else {
        String::new()
    };
    let records = match &d.records {
        Ok(records) => {
            let mut s = format!("<h2>Records ({})</h2>", records.len());
            for (i, r) in records.iter().enumerate() {
                let _ = write!(s, "<table class=\"grid record\"><caption>Record {}</caption><tbody>", i + 1);
                for (path, text) in r {
                    let _ = write!(s, "<tr><th scope=\"row\">{}</th><td>{}</td></tr>", esc(path), esc(text));
                }
                s.push_str("</tbody></table>");
            }
            s
        }
        Err(e) => format!("<p class=\"bad\">The package's records could not be read: {}</p>", esc(&e.to_string())),
    };
    format!(
        "<dl class=\"facts\"><dt>Number</dt><dd id=\"package-number\">{num}</dd><dt>Type</dt><dd>{ty}</dd><dt>State</dt><dd id=\"package-state\">{state}</dd>\
         <dt>Attempts</dt><dd>{attempts}</dd><dt>SAMR's reason</dt><dd id=\"package-reason\">{reason}</dd></dl>{action}{records}\
         <p><a href=\"/samr\">All packages</a></p>",
        num = esc(&p.number),
        ty = esc(&p.package_type),
        state = esc(&p.state),
        attempts = p.attempts,
        reason = esc(&p.reason),
    )
}

/// The confirmation of a resend: nothing changes until the operator posts this form.
pub fn confirm_resend(d: &PackageDetail, token: &str) -> String {
    let p = &d.row;
    format!(
        "<div class=\"confirm\"><p>Queue package <strong>{num}</strong> ({ty}) for SAMR again? SAMR parked it with this reason:</p>\
         <blockquote>{reason}</blockquote><p>It keeps its number; the push starts again with its first attempt. Your identity is recorded in the log.</p>\
         <form method=\"post\" action=\"/samr/packages/{num_url}/resend\"><input type=\"hidden\" name=\"confirm\" value=\"{token}\">\
         <button type=\"submit\" id=\"confirm-resend\">Resend to SAMR</button> <a href=\"/samr/packages/{num_url}\">Cancel</a></form></div>",
        num = esc(&p.number),
        ty = esc(&p.package_type),
        reason = esc(&p.reason),
        num_url = url_part(&p.number),
        token = esc(token),
    )
}

/// The plans page: quota use per region and category.
pub fn plans(plans: &[PlanView]) -> String {
    if plans.is_empty() {
        return "<p class=\"muted\">No plan has been received.</p>".into();
    }
    let mut s = String::new();
    for plan in plans {
        let mut rows = String::new();
        for r in &plan.rows {
            let rate = if r.results == 0 {
                "<span class=\"muted\">no results</span>".to_string()
            } else {
                format!("{:.1} %", r.conforming as f64 * 100.0 / r.results as f64)
            };
            let _ = write!(
                rows,
                "<tr><td>{region}</td><td>{category}</td><td>{bar} {sampled} / {quota}</td><td class=\"num\">{results}</td>\
                 <td class=\"num\">{rate}</td><td class=\"num\">{open}</td><td class=\"num{overdue_class}\">{overdue}</td></tr>",
                region = esc(&r.region),
                category = esc(&r.category),
                bar = bar(r.sampled, r.quota),
                sampled = r.sampled,
                quota = r.quota,
                results = r.results,
                open = r.open_cases,
                overdue_class = if r.overdue_cases > 0 { " bad" } else { "" },
                overdue = r.overdue_cases,
            );
        }
        let _ = write!(
            s,
            "<section class=\"plan\" id=\"plan-{id_url}\"><h2>{id} · {title} ({year})</h2><p>Sampling deadline {deadline}.</p>\
             <table class=\"grid\"><thead><tr><th>Region</th><th>Category</th><th>Quota use</th><th>Results</th><th>Conforming rate</th>\
             <th>Open cases</th><th>Overdue</th></tr></thead><tbody>{rows}</tbody></table></section>",
            id_url = url_part(&plan.plan_id),
            id = esc(&plan.plan_id),
            title = esc(&plan.title),
            year = plan.year,
            deadline = esc(&plan.sampling_deadline),
        );
    }
    s
}

/// The calendar page.
pub fn calendar(v: &CalendarView) -> String {
    let years = v.years.iter().map(|y| y.to_string()).collect::<Vec<_>>().join(", ");
    let range = v
        .range
        .as_ref()
        .map(|(a, b)| format!("{} to {}", esc(a), esc(b)))
        .unwrap_or_else(|| "<span class=\"bad\">no year</span>".into());
    let left = v.days_left.map(|d| d.to_string()).unwrap_or_else(|| "—".into());
    let warning = v.warning.as_deref().map(|w| format!("<p class=\"warning\">{}</p>", esc(w))).unwrap_or_default();
    let mut provisional = String::new();
    if v.provisional.is_empty() {
        provisional.push_str("<p class=\"muted\">No open case has a provisional due date.</p>");
    } else {
        provisional.push_str(
            "<table class=\"grid narrow\" id=\"provisional\"><thead><tr><th>Case</th><th>Due</th></tr></thead><tbody>",
        );
        for (id, d) in &v.provisional {
            let _ = write!(
                provisional,
                "<tr><td><a href=\"/cases/{}\">{}</a></td><td>{}</td></tr>",
                url_part(id),
                esc(id),
                due(d)
            );
        }
        provisional.push_str("</tbody></table>");
        provisional.push_str(PROVISIONAL_NOTE);
    }
    format!(
        "<dl class=\"facts\"><dt>Covered years</dt><dd id=\"covered-years\">{years}</dd><dt>Covered days</dt><dd>{range}</dd>\
         <dt>Days left</dt><dd id=\"days-left\">{left}</dd></dl>{warning}<h2>Open cases with a provisional due date</h2>{provisional}"
    )
}
