//! Everything the console reads or changes, in one place: the gateway's store, registry, calendar,
//! open connections and the last hour of submissions, turned into plain views the pages render.
//! Every function here blocks (it queries the store): the server calls them on the blocking pool.

use crate::activity::HourOfSubmissions;
use crate::identity::{self, Caller};
use crate::state::Gateway;
use crate::store::{SamrPackage, StoreError};

/// Waits for a store call from the blocking pool, where the console's pages are built.
fn wait<T>(call: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Handle::current().block_on(call)
}
use crate::transport::LiveConnections;
use crate::workflow::disposal::{status_label, OPEN_STAGES};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use yrdx_proto::civil::BeijingTime;
use yrdx_proto::v1::{CaseAction, CaseStatus, DisposalCase, ProductCategory};
use yrdx_proto::Date;

/// Why the console could not read what a page shows.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The store failed while reading `what`.
    #[error("store, reading {what}: {source}")]
    Store {
        /// What was being read (`mailbox depth of 320000`, `SAMR packages` …).
        what: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// No random confirmation token could be made.
    #[error("no random token could be made for the confirmation")]
    NoRandomToken,
    /// The blocking task that read the page did not finish.
    #[error("console task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Why a verified certificate gets no console page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAnOperator {
    /// The certificate names a registered partner.
    #[error("partner {0} is not an operator")]
    Partner(String),
    /// The certificate names no registered identity, or several (the identity check's words).
    #[error("{0}")]
    Unregistered(String),
}

fn store_err(what: impl Into<String>) -> impl FnOnce(StoreError) -> DataError {
    let what = what.into();
    move |source| DataError::Store { what, source }
}

fn action_label(action: i32) -> String {
    CaseAction::try_from(action)
        .unwrap_or(CaseAction::Unspecified)
        .as_str_name()
        .trim_start_matches("CASE_ACTION_")
        .to_string()
}

/// A product category's protobuf name without the prefix (`E_BIKE_LITHIUM_BATTERY`).
pub fn category_label(category: i32) -> String {
    ProductCategory::try_from(category)
        .map(|c| c.as_str_name().trim_start_matches("PRODUCT_CATEGORY_").to_string())
        .unwrap_or_else(|_| format!("category {category}"))
}

/// A due date as shown: the date, and whether it is provisional (counted Monday–Friday in a year
/// the working-day calendar does not cover).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownDueDate {
    /// `yyyy-mm-dd`.
    pub date: String,
    /// Provisional: recomputed once the calendar covers its year.
    pub provisional: bool,
}

/// One partner on the overview.
#[derive(Debug, Clone)]
pub struct PartnerStatus {
    /// Registry name.
    pub name: String,
    /// Region code.
    pub region: String,
    /// Suspended in the registry.
    pub suspended: bool,
    /// Open mutual-TLS connections presenting its certificate.
    pub connections: usize,
    /// When it last called, Beijing time (since start-up).
    pub last_contact: Option<String>,
    /// Its last hour of submissions.
    pub hour: HourOfSubmissions,
    /// Unacknowledged deliveries in its mailbox.
    pub mailbox_depth: u64,
    /// Age of the oldest unacknowledged delivery, seconds.
    pub oldest_unacknowledged_secs: Option<i64>,
}

/// The overview page.
#[derive(Debug, Clone)]
pub struct Overview {
    /// Now, Beijing time.
    pub now: String,
    /// Every registered partner.
    pub partners: Vec<PartnerStatus>,
    /// Client certificates refused in TLS handshakes since start-up, by reason.
    pub tls_refusals: Vec<(String, u64)>,
}

/// The filters of the cases page (empty: any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFilter {
    /// Origin or responsible region.
    pub region: String,
    /// Status label (`TRANSFERRED` …), or `open`, or `overdue`.
    pub status: String,
    /// Plan id (through the case's sampling record).
    pub plan: String,
}

/// One case in the list.
#[derive(Debug, Clone)]
pub struct CaseRow {
    /// Case id.
    pub case_id: String,
    /// The nonconforming sample.
    pub sample_id: String,
    /// Its plan (empty when the sampling record is not held).
    pub plan_id: String,
    /// Origin region.
    pub origin_region: String,
    /// Responsible region.
    pub responsible_region: String,
    /// Status label.
    pub status: String,
    /// Due date of the current stage.
    pub due_on: Option<ShownDueDate>,
    /// The current stage is overdue today.
    pub overdue: bool,
}

/// The cases page.
#[derive(Debug, Clone, Default)]
pub struct CasesView {
    /// Open and overdue cases by stage (of the filtered cases): (stage, open, overdue).
    pub stages: Vec<(String, u64, u64)>,
    /// The filtered cases, by case id.
    pub cases: Vec<CaseRow>,
    /// Regions, statuses and plans to filter by.
    pub regions: Vec<String>,
    /// Plans to filter by.
    pub plans: Vec<String>,
}

/// One event of a case's timeline.
#[derive(Debug, Clone)]
pub struct TimelineEvent {
    /// Event id.
    pub event_id: String,
    /// When, Beijing time.
    pub at: String,
    /// The acting region.
    pub by_region: String,
    /// The action label (`ACCEPT` …).
    pub action: String,
    /// Its note.
    pub note: String,
    /// The penalty amount in yuan, when set.
    pub amount_yuan: Option<String>,
    /// The status the event led to.
    pub status_after: String,
    /// The due date of the stage the event opened (none for final states and penalties).
    pub stage_due: Option<ShownDueDate>,
}

/// A case with its timeline.
#[derive(Debug, Clone)]
pub struct CaseDetail {
    /// The case as listed.
    pub row: CaseRow,
    /// Opened, Beijing time.
    pub opened_at: String,
    /// The report.
    pub report_no: String,
    /// Its events, in order.
    pub events: Vec<TimelineEvent>,
}

/// One SAMR package as listed.
#[derive(Debug, Clone)]
pub struct PackageRow {
    /// Package number.
    pub number: String,
    /// `CCJG`, `FXBS` …
    pub package_type: String,
    /// `pending`, `accepted`, `parked` …
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// SAMR's reason (parked) or the last error.
    pub reason: String,
}

/// The SAMR docking page.
#[derive(Debug, Clone, Default)]
pub struct SamrView {
    /// Packages by state.
    pub by_state: Vec<(String, u64)>,
    /// Every package, newest number first.
    pub packages: Vec<PackageRow>,
}

/// A package with its records.
#[derive(Debug, Clone)]
pub struct PackageDetail {
    /// The package as listed.
    pub row: PackageRow,
    /// Its records, each as (SAMR path, text) pairs; or why they could not be read.
    pub records: Result<Vec<Vec<(String, String)>>, yrdx_adapters::DecodeError>,
}

/// One region × category row of a plan.
#[derive(Debug, Clone, Default)]
pub struct QuotaUse {
    /// Region code.
    pub region: String,
    /// Category label.
    pub category: String,
    /// The region's quota.
    pub quota: i64,
    /// Samples taken.
    pub sampled: i64,
    /// Inspection results held.
    pub results: i64,
    /// Conforming results.
    pub conforming: i64,
    /// Open cases.
    pub open_cases: i64,
    /// Overdue cases.
    pub overdue_cases: i64,
}

/// One plan.
#[derive(Debug, Clone)]
pub struct PlanView {
    /// Plan id.
    pub plan_id: String,
    /// Title.
    pub title: String,
    /// Year.
    pub year: i32,
    /// Sampling deadline.
    pub sampling_deadline: String,
    /// Quota use.
    pub rows: Vec<QuotaUse>,
}

/// The calendar page.
#[derive(Debug, Clone)]
pub struct CalendarView {
    /// Covered years.
    pub years: Vec<i32>,
    /// First and last covered day.
    pub range: Option<(String, String)>,
    /// Days from today to the last covered day (negative: past it).
    pub days_left: Option<i64>,
    /// The operator's warning, from 60 days before the last day.
    pub warning: Option<String>,
    /// Open cases whose due date is provisional: (case id, due date).
    pub provisional: Vec<(String, ShownDueDate)>,
}

/// What a resend did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resent {
    /// The parked package is queued again.
    Requeued,
    /// The package is not parked (nothing changed).
    NotParked,
}

/// The console's access to the gateway.
#[derive(Clone)]
pub struct ConsoleData {
    gateway: Arc<Gateway>,
    live: Arc<LiveConnections>,
}

impl ConsoleData {
    /// Reads `gateway` and the open connections `live`.
    pub fn new(gateway: Arc<Gateway>, live: Arc<LiveConnections>) -> ConsoleData {
        ConsoleData { gateway, live }
    }

    /// The operator a verified client certificate names under the registry in force, or why it
    /// gets no page (a partner's certificate, or one naming no or several registered identities).
    pub fn operator_of(&self, leaf: &[u8]) -> Result<String, NotAnOperator> {
        match identity::caller_of(&identity::san_uris(leaf), &self.gateway.config()) {
            Ok(Caller::Operator(name)) => Ok(name),
            Ok(Caller::Partner(name)) => Err(NotAnOperator::Partner(name)),
            Err(status) => Err(NotAnOperator::Unregistered(status.message().to_string())),
        }
    }

    /// The TLS handshake limit of `[limits]`, seconds.
    pub fn handshake_timeout_secs(&self) -> u64 {
        self.gateway.config().limits.handshake_timeout_secs
    }

    fn today(&self) -> Date {
        BeijingTime::of(&self.gateway.clock.now()).date
    }

    fn shown(&self, date: Option<&Date>, provisional: bool) -> Option<ShownDueDate> {
        date.map(|d| ShownDueDate { date: d.to_string(), provisional })
    }

    /// The calendar's warning shown as a banner on every page (from 60 days before its last day).
    pub fn banner(&self) -> Option<String> {
        crate::workflow::calendar_watch::year_end_warning(&self.gateway.calendar(), &self.today())
    }

    /// The overview page.
    pub fn overview(&self) -> Result<Overview, DataError> {
        let g = &self.gateway;
        let config = g.config();
        let now_ms = g.clock.now_ms();
        let connected = self.live.connected_identities();
        let mut partners = Vec::new();
        for p in &config.partners {
            let depth = wait(g.store.depth(&p.region)).map_err(store_err(format!("mailbox depth of {}", p.region)))?;
            let oldest = wait(g.store.oldest_unacknowledged_ms(&p.region))
                .map_err(store_err(format!("oldest delivery of {}", p.region)))?;
            partners.push(PartnerStatus {
                name: p.name.clone(),
                region: p.region.clone(),
                suspended: p.suspended,
                connections: connected.iter().filter(|uris| uris.contains(&p.identity)).count(),
                last_contact: g.last_contact(&p.name).map(|t| BeijingTime::of(&t).to_spaced()),
                hour: g.activity.last_hour(&p.name, now_ms),
                mailbox_depth: depth,
                oldest_unacknowledged_secs: oldest.map(|t| (now_ms - t).max(0) / 1000),
            });
        }
        let refusals = g.metrics.tls_refusals();
        let tls_refusals = ["unknown_issuer", "expired", "not_valid_yet", "revoked", "crl_expired", "invalid"]
            .iter()
            .map(|r| (r.to_string(), refusals.count(r)))
            .collect();
        Ok(Overview { now: BeijingTime::of(&g.clock.now()).to_spaced(), partners, tls_refusals })
    }

    fn all_cases(&self) -> Result<Vec<(DisposalCase, String)>, DataError> {
        let store = &self.gateway.store;
        let mut plans: HashMap<String, String> = HashMap::new();
        let mut out = Vec::new();
        for case in wait(store.cases()).map_err(store_err("disposal cases"))? {
            let plan = match plans.get(&case.sample_id) {
                Some(p) => p.clone(),
                None => {
                    let plan = wait(store.sampling(&case.sample_id))
                        .map_err(store_err(format!("sampling {}", case.sample_id)))?
                        .map(|s| s.plan_id)
                        .unwrap_or_default();
                    plans.insert(case.sample_id.clone(), plan.clone());
                    plan
                }
            };
            out.push((case, plan));
        }
        out.sort_by(|a, b| a.0.case_id.cmp(&b.0.case_id));
        Ok(out)
    }

    fn row(&self, case: &DisposalCase, plan_id: &str, today: &Date) -> CaseRow {
        CaseRow {
            case_id: case.case_id.clone(),
            sample_id: case.sample_id.clone(),
            plan_id: plan_id.to_string(),
            origin_region: case.origin_region.clone(),
            responsible_region: case.responsible_region.clone(),
            status: status_label(case.status),
            due_on: self.shown(case.due_on.as_ref(), case.due_on_provisional),
            overdue: crate::workflow::disposal::is_overdue(case, today),
        }
    }

    /// The cases page under `filter`.
    pub fn cases(&self, filter: &CaseFilter) -> Result<CasesView, DataError> {
        let today = self.today();
        let all = self.all_cases()?;
        let mut view = CasesView::default();
        let mut regions: Vec<String> =
            self.gateway.config().partners.iter().map(|p| p.region.clone()).chain(["310000".to_string()]).collect();
        let mut plans: Vec<String> = Vec::new();
        let mut stages: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
        for (case, plan) in &all {
            regions.extend([case.origin_region.clone(), case.responsible_region.clone()]);
            if !plan.is_empty() {
                plans.push(plan.clone());
            }
            let row = self.row(case, plan, &today);
            let status = CaseStatus::try_from(case.status).unwrap_or(CaseStatus::Unspecified);
            let open = !yrdx_proto::validate::is_final(status);
            let keep = (filter.region.is_empty()
                || case.origin_region == filter.region
                || case.responsible_region == filter.region)
                && (filter.plan.is_empty() || *plan == filter.plan)
                && match filter.status.as_str() {
                    "" => true,
                    "open" => open,
                    "overdue" => row.overdue,
                    s => row.status == s,
                };
            if !keep {
                continue;
            }
            if let Some(i) = OPEN_STAGES.iter().position(|s| *s == status) {
                let e = stages.entry(i).or_default();
                e.0 += 1;
                if row.overdue {
                    e.1 += 1;
                }
            }
            view.cases.push(row);
        }
        view.stages = OPEN_STAGES
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (open, overdue) = stages.get(&i).copied().unwrap_or_default();
                (status_label(*s as i32), open, overdue)
            })
            .collect();
        regions.sort();
        regions.dedup();
        plans.sort();
        plans.dedup();
        view.regions = regions;
        view.plans = plans;
        Ok(view)
    }

    /// A case with its timeline, or `None` when no case has this id.
    pub fn case(&self, case_id: &str) -> Result<Option<CaseDetail>, DataError> {
        let store = &self.gateway.store;
        let Some(case) = wait(store.case(case_id)).map_err(store_err(format!("case {case_id}")))? else {
            return Ok(None);
        };
        let plan = wait(store.sampling(&case.sample_id))
            .map_err(store_err("sampling"))?
            .map(|s| s.plan_id)
            .unwrap_or_default();
        let today = self.today();
        let calendar = self.gateway.calendar();
        let deadlines = self.gateway.deadlines;
        let current = crate::workflow::disposal::stage_opening_event(&case).map(|e| e.event_id.clone());
        let mut status = CaseStatus::Unspecified;
        let mut events = Vec::new();
        for e in &case.events {
            let action = CaseAction::try_from(e.action).unwrap_or(CaseAction::Unspecified);
            if let Some((_, next)) = crate::workflow::disposal::transition(status, action) {
                status = next;
            }
            let opened = e.at.as_ref().map(|t| BeijingTime::of(t).date);
            let stage_due = if action == CaseAction::Penalty {
                None
            } else if current.as_deref() == Some(e.event_id.as_str()) {
                // The current stage: the date the case carries (settled or not) is the truth.
                self.shown(case.due_on.as_ref(), case.due_on_provisional)
            } else {
                deadlines.for_status(status).zip(opened).map(|(due, opened)| {
                    let d = crate::workflow::disposal::due_date(&calendar, &opened, due);
                    ShownDueDate { date: d.date.to_string(), provisional: d.provisional }
                })
            };
            events.push(TimelineEvent {
                event_id: e.event_id.clone(),
                at: e.at.as_ref().map(|t| BeijingTime::of(t).to_spaced()).unwrap_or_default(),
                by_region: e.by_region.clone(),
                action: action_label(e.action),
                note: e.note.clone(),
                amount_yuan: e.amount.map(|fen| format!("{}.{:02}", fen / 100, (fen % 100).abs())),
                status_after: status_label(status as i32),
                stage_due,
            });
        }
        Ok(Some(CaseDetail {
            row: self.row(&case, &plan, &today),
            opened_at: case.opened_at.as_ref().map(|t| BeijingTime::of(t).to_spaced()).unwrap_or_default(),
            report_no: case.report_no.clone(),
            events,
        }))
    }

    fn package_row(p: &SamrPackage) -> PackageRow {
        PackageRow {
            number: p.number.clone(),
            package_type: p.package_type.clone(),
            state: p.state.to_string(),
            attempts: p.attempts,
            reason: p.reason.clone(),
        }
    }

    /// The SAMR docking page.
    pub fn samr(&self) -> Result<SamrView, DataError> {
        let packages = wait(self.gateway.store.samr_packages()).map_err(store_err("SAMR packages"))?;
        let mut by_state: BTreeMap<String, u64> =
            ["pending", "accepted", "parked"].iter().map(|s| (s.to_string(), 0)).collect();
        for p in &packages {
            *by_state.entry(p.state.to_string()).or_default() += 1;
        }
        let mut rows: Vec<PackageRow> = packages.iter().map(Self::package_row).collect();
        rows.sort_by(|a, b| b.number.cmp(&a.number));
        Ok(SamrView { by_state: by_state.into_iter().collect(), packages: rows })
    }

    /// A package with its records, or `None` when no package has this number.
    pub fn samr_package(&self, number: &str) -> Result<Option<PackageDetail>, DataError> {
        let packages = wait(self.gateway.store.samr_packages()).map_err(store_err("SAMR packages"))?;
        let Some(p) = packages.into_iter().find(|p| p.number == number) else { return Ok(None) };
        let records = yrdx_adapters::samr::decode_package(&p.bytes, &Default::default()).map(|pkg| pkg.records);
        Ok(Some(PackageDetail { row: Self::package_row(&p), records }))
    }

    /// Queues a parked package again, as `Admin.ResendPackage` does, logged with the operator.
    pub fn resend(&self, operator: &str, number: &str) -> Result<Resent, DataError> {
        let requeued =
            wait(self.gateway.store.samr_resend(number, operator)).map_err(store_err(format!("resend of {number}")))?;
        if requeued {
            tracing::info!(%operator, %number, via = "console", "parked SAMR package requeued");
            Ok(Resent::Requeued)
        } else {
            tracing::info!(%operator, %number, via = "console", "resend refused: the package is not parked");
            Ok(Resent::NotParked)
        }
    }

    /// The plans page: quota use per region and category.
    pub fn plans(&self) -> Result<Vec<PlanView>, DataError> {
        let store = &self.gateway.store;
        let today = self.today();
        let mut out = Vec::new();
        for plan in wait(store.plans()).map_err(store_err("plans"))? {
            let held =
                wait(store.plan_records(&plan.plan_id)).map_err(store_err(format!("records of {}", plan.plan_id)))?;
            let rows = crate::workflow::plan_summary::summarise(&plan, &held, &today)
                .into_iter()
                .map(|r| QuotaUse {
                    category: category_label(r.category),
                    region: r.region,
                    quota: i64::from(r.quota),
                    sampled: i64::from(r.sampled),
                    results: i64::from(r.results),
                    conforming: i64::from(r.conforming),
                    open_cases: i64::from(r.open_cases),
                    overdue_cases: i64::from(r.overdue_cases),
                })
                .collect();
            out.push(PlanView {
                plan_id: plan.plan_id.clone(),
                title: plan.title.clone(),
                year: plan.year,
                sampling_deadline: plan.sampling_deadline.map(|d| d.to_string()).unwrap_or_default(),
                rows,
            });
        }
        out.sort_by(|a, b| a.plan_id.cmp(&b.plan_id));
        Ok(out)
    }

    /// The calendar page.
    pub fn calendar(&self) -> Result<CalendarView, DataError> {
        let calendar = self.gateway.calendar();
        let today = self.today();
        let range = calendar.covered_range();
        let mut provisional = Vec::new();
        for (case, _) in self.all_cases()? {
            let status = CaseStatus::try_from(case.status).unwrap_or(CaseStatus::Unspecified);
            if case.due_on_provisional && !yrdx_proto::validate::is_final(status) {
                if let Some(due) = self.shown(case.due_on.as_ref(), true) {
                    provisional.push((case.case_id.clone(), due));
                }
            }
        }
        Ok(CalendarView {
            years: calendar.years().collect(),
            range: range.map(|(a, b)| (a.to_string(), b.to_string())),
            days_left: range.map(|(_, last)| last.to_days() - today.to_days()),
            warning: crate::workflow::calendar_watch::year_end_warning(&calendar, &today),
            provisional,
        })
    }
}
