//! Prometheus metrics: what an on-call operator alerts on, on `[metrics] listen` (`GET /metrics`)
//! in the Prometheus text format (0.0.4), or OpenMetrics when the scraper asks for it (`Accept:
//! application/openmetrics-text`, as Prometheus itself does). Counters and histograms are moved where the work happens;
//! gauges that describe the store (mailbox depth, oldest unacknowledged delivery, SAMR packages,
//! open and overdue cases, provisional due dates) and the calendar's days left are read when
//! scraped, so they are never stale.
//!
//! `prometheus-client` is the maintained client of the Prometheus project for Rust (linkerd2-proxy
//! uses it): typed label sets, OpenMetrics encoding, no global registry.

use crate::exchange::Gateway;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};
use yrdx_proto::v1::CaseStatus;

/// How a submission ended, as counted (low cardinality: one of these words).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    /// Stored and routed.
    accepted,
    /// The same message again (the first reply).
    duplicate,
    /// The document broke a rule of its format or of the domain.
    invalid,
    /// The caller may not do this (forged sender, another's mailbox, no registry entry).
    denied,
    /// A workflow rule was not met.
    failed_precondition,
    /// Over the partner's rate limit.
    rate_limited,
    /// Over the document size limit.
    too_large,
    /// The same message id with other content.
    conflict,
    /// The gateway itself failed.
    internal,
}

impl Outcome {
    /// The outcome of a refusal, by its gRPC status code.
    pub fn of_status(status: &tonic::Status) -> Outcome {
        use tonic::Code;
        match status.code() {
            Code::InvalidArgument => Outcome::invalid,
            Code::PermissionDenied | Code::Unauthenticated => Outcome::denied,
            Code::FailedPrecondition => Outcome::failed_precondition,
            Code::AlreadyExists => Outcome::conflict,
            Code::ResourceExhausted if status.message().starts_with("rate limit") => Outcome::rate_limited,
            Code::ResourceExhausted | Code::OutOfRange => Outcome::too_large,
            _ => Outcome::internal,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SubmissionLabels {
    partner: String,
    outcome: Outcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecordLabels {
    partner: String,
    kind: String,
    outcome: Outcome,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartnerLabel {
    partner: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabel {
    stage: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

/// Client certificates refused, by reason (`yrdx_tls_handshakes_refused_total{reason}`): a
/// cheap clone handed to the TLS verifier, which counts where the refusal happens.
#[derive(Debug, Clone, Default)]
pub struct TlsRefusals(Family<ReasonLabel, Counter>);

impl TlsRefusals {
    /// Counts one refusal (`reason` is one of a few fixed words: `revoked`, `crl_expired` …).
    pub fn refused(&self, reason: &str) {
        self.0.get_or_create(&ReasonLabel { reason: reason.to_string() }).inc();
    }

    /// How many were refused for `reason` so far.
    pub fn count(&self, reason: &str) -> u64 {
        self.0.get_or_create(&ReasonLabel { reason: reason.to_string() }).get()
    }
}

fn latency() -> Histogram {
    // 0.5 ms … ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    submissions: Family<SubmissionLabels, Counter>,
    records: Family<RecordLabels, Counter>,
    submit_seconds: Family<PartnerLabel, Histogram, fn() -> Histogram>,
    commit_seconds: Histogram,
    deliveries_sent: Family<PartnerLabel, Counter>,
    deliveries_redelivered: Family<PartnerLabel, Counter>,
    deliveries_acked: Family<PartnerLabel, Counter>,
    mailbox_depth: Family<PartnerLabel, Gauge>,
    oldest_unacked: Family<PartnerLabel, Gauge<f64, AtomicU64>>,
    last_contact: Family<PartnerLabel, Gauge<f64, AtomicU64>>,
    samr_packages: Family<StateLabel, Gauge>,
    cases_open: Family<StageLabel, Gauge>,
    cases_overdue: Family<StageLabel, Gauge>,
    provisional: Gauge,
    calendar_end: Gauge,
    tls_refusals: TlsRefusals,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric, registered under `yrdx_`.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("yrdx");
        let m = Metrics {
            submissions: Family::default(),
            records: Family::default(),
            submit_seconds: Family::new_with_constructor(latency),
            commit_seconds: latency(),
            deliveries_sent: Family::default(),
            deliveries_redelivered: Family::default(),
            deliveries_acked: Family::default(),
            mailbox_depth: Family::default(),
            oldest_unacked: Family::default(),
            last_contact: Family::default(),
            samr_packages: Family::default(),
            cases_open: Family::default(),
            cases_overdue: Family::default(),
            provisional: Gauge::default(),
            calendar_end: Gauge::default(),
            tls_refusals: TlsRefusals::default(),
            registry: Registry::default(),
        };
        let build = Family::<VersionLabel, Gauge>::default();
        build.get_or_create(&VersionLabel { version: env!("CARGO_PKG_VERSION").to_string() }).set(1);
        registry.register("build_info", "The gateway's version (always 1)", build);
        registry.register("submissions", "Submissions by partner and outcome", m.submissions.clone());
        registry.register("records", "Records of submissions by partner, kind and outcome", m.records.clone());
        registry.register_with_unit(
            "submit_duration",
            "Time to answer a Submit, by partner",
            Unit::Seconds,
            m.submit_seconds.clone(),
        );
        registry.register_with_unit(
            "store_commit_duration",
            "Time for a submission's durable commit (group commit included)",
            Unit::Seconds,
            m.commit_seconds.clone(),
        );
        registry.register(
            "deliveries_sent",
            "Deliveries handed to a partner's Receive stream",
            m.deliveries_sent.clone(),
        );
        registry.register(
            "deliveries_redelivered",
            "Deliveries handed out again (attempt above 1)",
            m.deliveries_redelivered.clone(),
        );
        registry.register("deliveries_acknowledged", "Deliveries a partner acknowledged", m.deliveries_acked.clone());
        registry.register("mailbox_depth", "Unacknowledged deliveries waiting per partner", m.mailbox_depth.clone());
        registry.register_with_unit(
            "mailbox_oldest_unacknowledged_age",
            "Age of the oldest unacknowledged delivery per partner (0 when none)",
            Unit::Seconds,
            m.oldest_unacked.clone(),
        );
        registry.register_with_unit(
            "partner_last_contact_timestamp",
            "When a partner last called (Unix time; since start-up)",
            Unit::Seconds,
            m.last_contact.clone(),
        );
        registry.register("samr_packages", "SAMR packages by state", m.samr_packages.clone());
        registry.register("cases_open", "Open disposal cases by stage", m.cases_open.clone());
        registry.register("cases_overdue", "Overdue disposal cases by stage", m.cases_overdue.clone());
        registry.register(
            "cases_provisional_due_date",
            "Open cases whose due date is provisional (the calendar does not cover its year)",
            m.provisional.clone(),
        );
        registry.register_with_unit(
            "calendar_end_timestamp",
            "When the working-day calendar's last covered day ends (Unix time, Beijing midnight): alert on \
             (yrdx_calendar_end_timestamp_seconds - time()) < 60 * 86400",
            Unit::Seconds,
            m.calendar_end.clone(),
        );
        registry.register(
            "tls_handshakes_refused",
            "Client certificates refused in the TLS handshake, by reason (revoked, crl_expired, \
             unknown_revocation_status, unknown_issuer, expired, not_valid_yet, invalid)",
            m.tls_refusals.0.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The counter of refused client certificates, for the TLS verifier.
    pub fn tls_refusals(&self) -> TlsRefusals {
        self.tls_refusals.clone()
    }

    /// Counts one Submit's outcome, its records and its latency.
    pub fn submitted(&self, partner: &str, outcome: Outcome, records: &[(String, Outcome)], elapsed: Duration) {
        self.submissions.get_or_create(&SubmissionLabels { partner: partner.to_string(), outcome }).inc();
        for (kind, outcome) in records {
            self.records
                .get_or_create(&RecordLabels { partner: partner.to_string(), kind: kind.clone(), outcome: *outcome })
                .inc();
        }
        self.submit_seconds
            .get_or_create(&PartnerLabel { partner: partner.to_string() })
            .observe(elapsed.as_secs_f64());
    }

    /// Times one durable commit.
    pub fn committed(&self, elapsed: Duration) {
        self.commit_seconds.observe(elapsed.as_secs_f64());
    }

    /// Counts a delivery handed to a partner (`attempt` above 1: again).
    pub fn delivered(&self, partner: &str, attempt: u32) {
        let label = PartnerLabel { partner: partner.to_string() };
        self.deliveries_sent.get_or_create(&label).inc();
        if attempt > 1 {
            self.deliveries_redelivered.get_or_create(&label).inc();
        }
    }

    /// Counts acknowledged deliveries.
    pub fn acknowledged(&self, partner: &str, n: u32) {
        self.deliveries_acked.get_or_create(&PartnerLabel { partner: partner.to_string() }).inc_by(u64::from(n));
    }

    /// Reads the store and the calendar into the gauges, then encodes every metric (OpenMetrics,
    /// or the Prometheus text format).
    pub fn render(&self, g: &Gateway, openmetrics: bool) -> Result<String, String> {
        let now = g.clock.now();
        let now_ms = g.clock.now_ms();
        let config = g.config();
        for p in &config.partners {
            let label = PartnerLabel { partner: p.name.clone() };
            let depth = crate::store::Store::depth(g.store.as_ref(), &p.region).map_err(|e| e.to_string())?;
            self.mailbox_depth.get_or_create(&label).set(i64::try_from(depth).unwrap_or(i64::MAX));
            let oldest = g.store.oldest_unacknowledged_ms(&p.region).map_err(|e| e.to_string())?;
            let age = oldest.map(|t| (now_ms - t).max(0) as f64 / 1000.0).unwrap_or(0.0);
            self.oldest_unacked.get_or_create(&label).set(age);
            if let Some(t) = g.last_contact(&p.name) {
                self.last_contact.get_or_create(&label).set(t.seconds as f64 + f64::from(t.nanos) / 1e9);
            }
        }
        let mut states: std::collections::BTreeMap<String, i64> =
            ["pending", "accepted", "parked"].iter().map(|s| (s.to_string(), 0)).collect();
        for p in g.store.samr_packages().map_err(|e| e.to_string())? {
            *states.entry(p.state).or_default() += 1;
        }
        for (state, n) in states {
            self.samr_packages.get_or_create(&StateLabel { state }).set(n);
        }
        let today = yrdx_proto::civil::BeijingTime::of(&now).date;
        let (mut open, mut overdue) = (std::collections::BTreeMap::new(), std::collections::BTreeMap::new());
        let mut provisional = 0;
        for stage in [
            CaseStatus::Transferred,
            CaseStatus::Accepted,
            CaseStatus::Notified,
            CaseStatus::Rechecking,
            CaseStatus::Rectifying,
            CaseStatus::Verified,
        ] {
            let name = stage.as_str_name().trim_start_matches("CASE_STATUS_").to_string();
            open.insert(stage as i32, (name.clone(), 0i64));
            overdue.insert(stage as i32, (name, 0i64));
        }
        for json in g.store.records_of_kind("case_transfer").map_err(|e| e.to_string())? {
            let case: yrdx_proto::v1::DisposalCase = serde_json::from_str(&json).map_err(|e| e.to_string())?;
            if let Some((_, n)) = open.get_mut(&case.status) {
                *n += 1;
                if case.due_on_provisional {
                    provisional += 1;
                }
            }
            if crate::disposal::is_overdue(&case, &today) {
                if let Some((_, n)) = overdue.get_mut(&case.status) {
                    *n += 1;
                }
            }
        }
        for (name, n) in open.into_values() {
            self.cases_open.get_or_create(&StageLabel { stage: name }).set(n);
        }
        for (name, n) in overdue.into_values() {
            self.cases_overdue.get_or_create(&StageLabel { stage: name }).set(n);
        }
        self.provisional.set(provisional);
        if let Some((_, last)) = g.calendar().covered_range() {
            // Midnight after the last day, Beijing time (UTC+8).
            self.calendar_end.set((last.to_days() + 1) * 86_400 - 8 * 3600);
        }
        let mut text = String::new();
        if openmetrics {
            prometheus_client::encoding::text::encode(&mut text, &self.registry).map_err(|e| e.to_string())?;
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
                .map_err(|e| e.to_string())?;
        }
        Ok(text)
    }
}

/// The OpenMetrics content type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` on `listener` until `stop` says so. Plain HTTP on the address the
/// operator chose (loopback by default): the scrape carries no partner data.
pub fn serve(listener: tokio::net::TcpListener, gateway: Arc<Gateway>, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "metrics listener: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = stop.changed() => break,
            };
            let g = gateway.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let g = g.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(req, g).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
            });
        }
        info!("metrics listener closed");
    });
}

async fn answer(req: Request<hyper::body::Incoming>, g: Arc<Gateway>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = content_type.parse() {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    if req.method() != Method::GET || req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "text/plain", "only GET /metrics is served here\n".into());
    }
    let openmetrics = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let rendered = tokio::task::spawn_blocking(move || g.metrics.render(&g, openmetrics)).await;
    let content_type =
        if openmetrics { OPENMETRICS } else { prometheus_client::encoding::prometheus_text::CONTENT_TYPE };
    match rendered {
        Ok(Ok(text)) => reply(StatusCode::OK, content_type, text),
        Ok(Err(e)) => {
            warn!(error = %e, "metrics could not be read");
            reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "metrics could not be read\n".into())
        }
        Err(e) => {
            warn!(error = %e, "metrics task failed");
            reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "metrics could not be read\n".into())
        }
    }
}
