//! Validation of canonical records against `docs/domain.md` section 1: every field's type and pattern and
//! every cross-field invariant. Validation returns **all** problems of a record, each with its
//! canonical field path (`seller.uscc`, `items[2].severity`) and a message for a person.

use crate::identifiers::{self, IdPattern};
use crate::v1::*;
use crate::{Date, Timestamp};
use std::fmt;

/// One problem with a canonical record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Canonical field path, e.g. `seller.uscc` or `items[2].severity`.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A canonical record that can be checked.
pub trait Validate {
    /// Every problem of the record; empty when it is valid.
    fn validate(&self) -> Vec<Violation>;
}

/// Collects violations under a path prefix.
#[derive(Default)]
struct Check {
    out: Vec<Violation>,
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

impl Check {
    fn push(&mut self, path: String, message: impl Into<String>) {
        self.out.push(Violation { path, message: message.into() });
    }

    fn text(&mut self, path: impl FnOnce() -> String, value: &str, required: bool) {
        if value.is_empty() {
            if required {
                self.push(path(), "required");
            }
        } else if let Some(p) = identifiers::text_problem(value) {
            self.push(path(), p);
        }
    }

    fn id(&mut self, path: impl FnOnce() -> String, value: &str, pattern: IdPattern) {
        if value.is_empty() {
            self.push(path(), format!("required ({})", pattern.describe()));
        } else if !pattern.matches(value) {
            self.push(path(), format!("'{value}' does not match {}", pattern.describe()));
        }
    }

    fn region(&mut self, path: impl FnOnce() -> String, value: &str) {
        if value.is_empty() {
            self.push(path(), "required (6-digit GB/T 2260 region code)");
        } else if !identifiers::is_region(value) {
            self.push(path(), format!("'{value}' is not a GB/T 2260 region code (6 digits, known province)"));
        }
    }

    fn uscc(&mut self, path: impl FnOnce() -> String, value: &str) {
        if value.is_empty() {
            self.push(path(), "required (18-character unified social credit code)");
            return;
        }
        let problems = identifiers::check_uscc(value);
        if !problems.is_empty() {
            let at = path();
            for p in problems {
                self.push(at.clone(), format!("'{value}': {p}"));
            }
        }
    }

    fn date(&mut self, path: impl FnOnce() -> String, value: Option<&Date>, required: bool) {
        match value {
            None if required => self.push(path(), "required (date)"),
            Some(d) if !d.is_valid() => {
                self.push(path(), format!("{:04}-{:02}-{:02} is not a calendar date", d.year, d.month, d.day))
            }
            _ => {}
        }
    }

    fn instant(&mut self, path: impl FnOnce() -> String, value: Option<&Timestamp>) {
        match value {
            None => self.push(path(), "required (instant)"),
            Some(t) if !(0..1_000_000_000).contains(&t.nanos) => self.push(path(), "nanos out of range"),
            _ => {}
        }
    }

    fn enum_set<E: TryFrom<i32>>(&mut self, path: impl FnOnce() -> String, value: i32, what: &str) {
        if value == 0 {
            self.push(path(), format!("required ({what})"));
        } else if E::try_from(value).is_err() {
            self.push(path(), format!("{value} is not a {what}"));
        }
    }

    fn party(&mut self, prefix: &str, party: Option<&Party>) {
        let Some(p) = party else {
            self.push(prefix.to_string(), "required");
            return;
        };
        self.text(|| join(prefix, "name"), &p.name, true);
        self.uscc(|| join(prefix, "uscc"), &p.uscc);
        self.region(|| join(prefix, "region"), &p.region);
        self.text(|| join(prefix, "address"), &p.address, false);
    }

    fn product(&mut self, prefix: &str, product: Option<&Product>) {
        let Some(p) = product else {
            self.push(prefix.to_string(), "required");
            return;
        };
        self.text(|| join(prefix, "name"), &p.name, true);
        self.enum_set::<ProductCategory>(|| join(prefix, "category"), p.category, "product category");
        self.text(|| join(prefix, "brand"), &p.brand, false);
        self.text(|| join(prefix, "model"), &p.model, false);
        self.text(|| join(prefix, "batch"), &p.batch, false);
        self.date(|| join(prefix, "production_date"), p.production_date.as_ref(), false);
    }

    fn event(&mut self, prefix: &str, e: &CaseEvent) {
        self.id(|| join(prefix, "event_id"), &e.event_id, IdPattern::Message);
        self.instant(|| join(prefix, "at"), e.at.as_ref());
        self.region(|| join(prefix, "by_region"), &e.by_region);
        self.enum_set::<CaseAction>(|| join(prefix, "action"), e.action, "case action");
        let action = CaseAction::try_from(e.action).unwrap_or(CaseAction::Unspecified);
        self.text(|| join(prefix, "note"), &e.note, action == CaseAction::Return);
        match (action, e.amount) {
            (CaseAction::Penalty, None) => self.push(join(prefix, "amount"), "required on PENALTY"),
            (CaseAction::Penalty, Some(a)) if a < 0 => {
                self.push(join(prefix, "amount"), format!("{a} fen: must be ≥ 0"))
            }
            (CaseAction::Penalty, _) | (_, None) => {}
            (_, Some(_)) => self.push(join(prefix, "amount"), "only allowed on PENALTY"),
        }
    }

    fn finish(self) -> Vec<Violation> {
        self.out
    }
}

impl Validate for SpotCheckPlan {
    fn validate(&self) -> Vec<Violation> {
        let mut c = Check::default();
        c.id(|| "plan_id".into(), &self.plan_id, IdPattern::Plan);
        c.text(|| "title".into(), &self.title, true);
        if !(2000..=2100).contains(&self.year) {
            c.push("year".into(), format!("{} is outside 2000–2100", self.year));
        }
        c.region(|| "lead_region".into(), &self.lead_region);
        if self.participants.is_empty() {
            c.push("participants".into(), "at least one participant required");
        }
        for (i, p) in self.participants.iter().enumerate() {
            c.region(|| format!("participants[{i}].region"), &p.region);
            if p.quota < 1 {
                c.push(format!("participants[{i}].quota"), format!("{} is below 1", p.quota));
            }
            if self.participants[..i].iter().any(|q| q.region == p.region) {
                c.push(format!("participants[{i}].region"), format!("region {} appears twice", p.region));
            }
        }
        c.enum_set::<PlanChannel>(|| "channel".into(), self.channel, "plan channel");
        if self.categories.is_empty() {
            c.push("categories".into(), "at least one category required");
        }
        for (i, cat) in self.categories.iter().enumerate() {
            c.enum_set::<ProductCategory>(|| format!("categories[{i}]"), *cat, "product category");
        }
        for (i, s) in self.standards.iter().enumerate() {
            c.text(|| format!("standards[{i}]"), s, true);
        }
        c.date(|| "sampling_deadline".into(), self.sampling_deadline.as_ref(), true);
        c.instant(|| "published_at".into(), self.published_at.as_ref());
        c.finish()
    }
}

impl Validate for SamplingRecord {
    fn validate(&self) -> Vec<Violation> {
        let mut c = Check::default();
        c.id(|| "sample_id".into(), &self.sample_id, IdPattern::Record);
        c.id(|| "plan_id".into(), &self.plan_id, IdPattern::Plan);
        c.region(|| "sampling_region".into(), &self.sampling_region);
        c.text(|| "sampling_org".into(), &self.sampling_org, true);
        c.date(|| "sampled_on".into(), self.sampled_on.as_ref(), true);
        c.enum_set::<SalesChannel>(|| "channel".into(), self.channel, "sales channel");
        c.party("seller", self.seller.as_ref());
        if self.producer.is_some() {
            c.party("producer", self.producer.as_ref());
        }
        match (SalesChannel::try_from(self.channel), &self.shop) {
            (Ok(SalesChannel::Online), None) => c.push("shop".into(), "required when channel is ONLINE"),
            (Ok(SalesChannel::Offline), Some(_)) => c.push("shop".into(), "forbidden when channel is OFFLINE"),
            (_, Some(shop)) => {
                c.text(|| "shop.platform".into(), &shop.platform, true);
                c.text(|| "shop.shop_name".into(), &shop.shop_name, true);
                c.text(|| "shop.shop_url".into(), &shop.shop_url, false);
                if !shop.shop_url.is_empty() && !identifiers::is_http_url(&shop.shop_url) {
                    c.push("shop.shop_url".into(), format!("'{}' is not an http or https URL", shop.shop_url));
                }
                c.text(|| "shop.order_no".into(), &shop.order_no, false);
            }
            _ => {}
        }
        c.product("product", self.product.as_ref());
        if self.quantity < 1 {
            c.push("quantity".into(), format!("{} is below 1", self.quantity));
        }
        c.text(|| "unit".into(), &self.unit, true);
        if self.reserve_quantity < 0 {
            c.push("reserve_quantity".into(), format!("{} is below 0", self.reserve_quantity));
        }
        if self.unit_price < 0 {
            c.push("unit_price".into(), format!("{} fen is below 0", self.unit_price));
        }
        c.instant(|| "recorded_at".into(), self.recorded_at.as_ref());
        c.finish()
    }
}

impl Validate for InspectionResult {
    fn validate(&self) -> Vec<Violation> {
        let mut c = Check::default();
        c.id(|| "report_no".into(), &self.report_no, IdPattern::Report);
        c.id(|| "sample_id".into(), &self.sample_id, IdPattern::Record);
        c.text(|| "lab_name".into(), &self.lab_name, true);
        if !identifiers::is_cma(&self.lab_cma) {
            c.push("lab_cma".into(), format!("'{}' is not a CMA number (12 digits)", self.lab_cma));
        }
        c.date(|| "issued_on".into(), self.issued_on.as_ref(), true);
        c.enum_set::<Conclusion>(|| "conclusion".into(), self.conclusion, "conclusion");
        let mut failing = 0;
        for (i, item) in self.items.iter().enumerate() {
            // Paths are built only for a problem: this runs for every item of every report.
            let p = |field: &str| format!("items[{i}].{field}");
            c.text(|| p("name"), &item.name, true);
            c.text(|| p("standard"), &item.standard, true);
            c.text(|| p("requirement"), &item.requirement, false);
            c.text(|| p("measured"), &item.measured, false);
            c.text(|| p("unit"), &item.unit, false);
            c.enum_set::<Verdict>(|| p("verdict"), item.verdict, "verdict");
            c.enum_set::<Severity>(|| p("severity"), item.severity, "severity");
            let severity = Severity::try_from(item.severity).unwrap_or(Severity::Unspecified);
            match Verdict::try_from(item.verdict) {
                Ok(Verdict::Fail) => {
                    failing += 1;
                    if !matches!(severity, Severity::Serious | Severity::General | Severity::Unspecified) {
                        c.push(p("severity"), "a failing item is SERIOUS or GENERAL");
                    }
                }
                Ok(Verdict::Pass) if !matches!(severity, Severity::None | Severity::Unspecified) => {
                    c.push(p("severity"), "a passing item has severity NONE");
                }
                _ => {}
            }
        }
        match Conclusion::try_from(self.conclusion) {
            Ok(Conclusion::Nonconforming) if failing == 0 => {
                c.push("conclusion".into(), "NONCONFORMING requires at least one failing item")
            }
            Ok(Conclusion::Conforming) if failing > 0 => c.push(
                "conclusion".into(),
                format!("CONFORMING but {failing} item(s) fail: the conclusion must be NONCONFORMING"),
            ),
            _ => {}
        }
        c.finish()
    }
}

/// Whether a case status is final (no further stage, no due date).
pub fn is_final(status: CaseStatus) -> bool {
    matches!(status, CaseStatus::Returned | CaseStatus::Closed)
}

impl Validate for DisposalCase {
    fn validate(&self) -> Vec<Violation> {
        let mut c = Check::default();
        c.id(|| "case_id".into(), &self.case_id, IdPattern::Record);
        c.region(|| "origin_region".into(), &self.origin_region);
        c.region(|| "responsible_region".into(), &self.responsible_region);
        c.id(|| "sample_id".into(), &self.sample_id, IdPattern::Record);
        c.id(|| "report_no".into(), &self.report_no, IdPattern::Report);
        c.instant(|| "opened_at".into(), self.opened_at.as_ref());
        c.enum_set::<CaseStatus>(|| "status".into(), self.status, "case status");
        let status = CaseStatus::try_from(self.status).unwrap_or(CaseStatus::Unspecified);
        c.date(|| "due_on".into(), self.due_on.as_ref(), !is_final(status));
        for (i, e) in self.events.iter().enumerate() {
            c.event(&format!("events[{i}]"), e);
        }
        c.finish()
    }
}

impl Validate for CaseFeedback {
    fn validate(&self) -> Vec<Violation> {
        let mut c = Check::default();
        c.id(|| "case_id".into(), &self.case_id, IdPattern::Record);
        match &self.event {
            Some(e) => c.event("event", e),
            None => c.push("event".into(), "required"),
        }
        c.finish()
    }
}

impl Validate for RiskSignal {
    fn validate(&self) -> Vec<Violation> {
        let mut c = Check::default();
        c.id(|| "signal_id".into(), &self.signal_id, IdPattern::Record);
        if self.revision < 1 {
            c.push("revision".into(), format!("{} is below 1", self.revision));
        }
        c.enum_set::<RiskState>(|| "state".into(), self.state, "risk state");
        c.region(|| "reporting_region".into(), &self.reporting_region);
        c.date(|| "observed_on".into(), self.observed_on.as_ref(), true);
        c.enum_set::<RiskSource>(|| "source".into(), self.source, "risk source");
        c.product("product", self.product.as_ref());
        if self.hazards.is_empty() {
            c.push("hazards".into(), "at least one hazard required");
        }
        for (i, h) in self.hazards.iter().enumerate() {
            c.enum_set::<Hazard>(|| format!("hazards[{i}]"), *h, "hazard");
        }
        c.enum_set::<RiskLevel>(|| "level".into(), self.level, "risk level");
        c.text(|| "summary".into(), &self.summary, true);
        for (i, s) in self.related_samples.iter().enumerate() {
            c.id(|| format!("related_samples[{i}]"), s, IdPattern::Record);
        }
        c.text(|| "recommended_measures".into(), &self.recommended_measures, false);
        c.finish()
    }
}

impl Validate for ResponsibilityReport {
    fn validate(&self) -> Vec<Violation> {
        let mut c = Check::default();
        c.party("enterprise", self.enterprise.as_ref());
        c.enum_set::<EnterpriseRole>(|| "role".into(), self.role, "enterprise role");
        if self.catalogue.is_empty() {
            c.push("catalogue".into(), "at least one category required");
        }
        for (i, cat) in self.catalogue.iter().enumerate() {
            c.enum_set::<ProductCategory>(|| format!("catalogue[{i}]"), *cat, "product category");
        }
        c.text(|| "director_name".into(), &self.director_name, true);
        c.date(|| "director_appointed_on".into(), self.director_appointed_on.as_ref(), true);
        if !identifiers::is_period(&self.period) {
            c.push("period".into(), format!("'{}' is not a month YYYY-MM", self.period));
        }
        for (name, v) in [
            ("officers", self.officers),
            ("daily_checks", self.daily_checks),
            ("weekly_checks", self.weekly_checks),
            ("monthly_reviews", self.monthly_reviews),
            ("hazards_found", self.hazards_found),
            ("hazards_fixed", self.hazards_fixed),
        ] {
            if v < 0 {
                c.push(name.into(), format!("{v} is below 0"));
            }
        }
        if self.hazards_fixed > self.hazards_found {
            c.push(
                "hazards_fixed".into(),
                format!("{} fixed exceeds {} found", self.hazards_fixed, self.hazards_found),
            );
        }
        c.finish()
    }
}

impl Validate for SpotCheckResult {
    fn validate(&self) -> Vec<Violation> {
        let mut out = Vec::new();
        fn prefixed(prefix: &'static str, v: Vec<Violation>) -> impl Iterator<Item = Violation> {
            v.into_iter().map(move |x| Violation { path: join(prefix, &x.path), message: x.message })
        }
        match &self.sampling {
            Some(s) => out.extend(prefixed("sampling", s.validate())),
            None => out.push(Violation { path: "sampling".into(), message: "required".into() }),
        }
        match &self.inspection {
            Some(i) => {
                out.extend(prefixed("inspection", i.validate()));
                if let Some(s) = &self.sampling {
                    if i.sample_id != s.sample_id {
                        out.push(Violation {
                            path: "inspection.sample_id".into(),
                            message: format!("'{}' is not the joined sample '{}'", i.sample_id, s.sample_id),
                        });
                    }
                }
            }
            None => out.push(Violation { path: "inspection".into(), message: "required".into() }),
        }
        out
    }
}

#[cfg(test)]
mod tests;
