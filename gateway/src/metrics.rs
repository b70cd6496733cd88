//! Prometheus metrics: what an on-call operator alerts on, on `[metrics] listen` (`GET /metrics`)
//! in the Prometheus text format (0.0.4), or OpenMetrics when the scraper asks for it (`Accept:
//! application/openmetrics-text`, as Prometheus itself does). Counters and histograms are moved where the work happens;
//! gauges that describe the store (mailbox depth, oldest unacknowledged delivery, SAMR packages,
//! open and overdue cases, provisional due dates) and the calendar's days left are read when
//! scraped, so they are never stale.
//!
//! `prometheus-client` is the maintained client of the Prometheus project for Rust (linkerd2-proxy
//! uses it): typed label sets, OpenMetrics encoding, no global registry.

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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabel {
    outcome: SamrAttempt,
}

/// How one push of a SAMR package ended, as counted (`yrdx_samr_attempts_total{outcome}`).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum SamrAttempt {
    /// SAMR's receipt accepted the package.
    accepted,
    /// SAMR's receipt rejected it (parked with SAMR's reason).
    rejected,
    /// SAMR answered 429 or 503 (retried after `Retry-After`).
    busy,
    /// Any other answer, an unreadable receipt, or no answer (connection, TLS, time-out).
    failed,
}

impl SamrAttempt {
    /// The outcome of an attempt from its HTTP status (`None`: no answer) and the state the
    /// package was left in (`accepted`, `pending`, `parked`).
    pub fn of(status: Option<u16>, state: &str) -> SamrAttempt {
        match (status, state) {
            (_, "accepted") => SamrAttempt::accepted,
            (Some(429 | 503), _) => SamrAttempt::busy,
            // A 200 that parks the package is SAMR's own rejection; one that leaves it pending
            // was a receipt for another package or unreadable.
            (Some(200), "parked") => SamrAttempt::rejected,
            _ => SamrAttempt::failed,
        }
    }
}

/// SAMR docking's counters (`yrdx_samr_attempts_total{outcome}`, `yrdx_samr_receipt_seconds`): a
/// cheap clone handed to the pusher, which counts where the push happens. A default one (a
/// pusher built without the gateway's metrics) counts into nothing that is served.
#[derive(Debug, Clone)]
pub struct SamrMetrics {
    attempts: Family<AttemptLabel, Counter>,
    receipt_seconds: Histogram,
}

impl Default for SamrMetrics {
    fn default() -> Self {
        SamrMetrics { attempts: Family::default(), receipt_seconds: latency() }
    }
}

impl SamrMetrics {
    /// Counts one attempt: its HTTP status (`None`: no answer came), the state it left the
    /// package in, and, when SAMR answered, how long the answer took.
    pub fn attempted(&self, status: Option<u16>, state: &str, elapsed: Duration) {
        self.attempts.get_or_create(&AttemptLabel { outcome: SamrAttempt::of(status, state) }).inc();
        if status.is_some() {
            self.receipt_seconds.observe(elapsed.as_secs_f64());
        }
    }

    /// How many attempts ended with `outcome` so far.
    pub fn count(&self, outcome: SamrAttempt) -> u64 {
        self.attempts.get_or_create(&AttemptLabel { outcome }).get()
    }
}

fn latency() -> Histogram {
    // 0.5 ms … ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// One partner's mailbox as read when scraped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MailboxReading {
    /// Registry name.
    pub partner: String,
    /// Unacknowledged deliveries.
    pub depth: u64,
    /// Deliveries handed out and not acknowledged whose lease runs.
    pub in_flight: u64,
    /// Age of the oldest of them, in seconds (0 when none).
    pub oldest_unacknowledged_secs: f64,
    /// Last call since start-up (Unix time, seconds), if any.
    pub last_contact_secs: Option<f64>,
}

/// What the gauges show, read from the store and the calendar at each scrape (`gauges.rs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Readings {
    /// Every registered partner's mailbox.
    pub mailboxes: Vec<MailboxReading>,
    /// SAMR packages per state.
    pub samr_packages: Vec<(String, i64)>,
    /// Open cases per stage.
    pub cases_open: Vec<(String, i64)>,
    /// Overdue cases per stage.
    pub cases_overdue: Vec<(String, i64)>,
    /// Open cases whose due date is provisional.
    pub provisional_due_dates: i64,
    /// End of the calendar's last covered day (Unix time), if it covers any.
    pub calendar_end_secs: Option<i64>,
}

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    submissions: Family<SubmissionLabels, Counter>,
    records: Family<RecordLabels, Counter>,
    submit_seconds: Family<PartnerLabel, Histogram, fn() -> Histogram>,
    commit_seconds: Histogram,
    submit_to_delivery_seconds: Histogram,
    deliveries_sent: Family<PartnerLabel, Counter>,
    deliveries_redelivered: Family<PartnerLabel, Counter>,
    deliveries_acked: Family<PartnerLabel, Counter>,
    mailbox_depth: Family<PartnerLabel, Gauge>,
    mailbox_in_flight: Family<PartnerLabel, Gauge>,
    commit_group_size: Histogram,
    oldest_unacked: Family<PartnerLabel, Gauge<f64, AtomicU64>>,
    last_contact: Family<PartnerLabel, Gauge<f64, AtomicU64>>,
    samr_packages: Family<StateLabel, Gauge>,
    cases_open: Family<StageLabel, Gauge>,
    cases_overdue: Family<StageLabel, Gauge>,
    provisional: Gauge,
    calendar_end: Gauge,
    tls_refusals: TlsRefusals,
    samr: SamrMetrics,
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
            submit_to_delivery_seconds: latency(),
            deliveries_sent: Family::default(),
            deliveries_redelivered: Family::default(),
            deliveries_acked: Family::default(),
            mailbox_depth: Family::default(),
            mailbox_in_flight: Family::default(),
            commit_group_size: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            oldest_unacked: Family::default(),
            last_contact: Family::default(),
            samr_packages: Family::default(),
            cases_open: Family::default(),
            cases_overdue: Family::default(),
            provisional: Gauge::default(),
            calendar_end: Gauge::default(),
            tls_refusals: TlsRefusals::default(),
            samr: SamrMetrics::default(),
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
        registry.register_with_unit(
            "submit_to_delivery",
            "Time from a delivery's commit to its first hand-out on a Receive stream (any replica)",
            Unit::Seconds,
            m.submit_to_delivery_seconds.clone(),
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
        registry.register(
            "mailbox_in_flight",
            "Deliveries handed out and not acknowledged, their lease running, per partner",
            m.mailbox_in_flight.clone(),
        );
        registry.register(
            "store_commit_group_size",
            "Submissions committed together in one transaction (1 on PostgreSQL: one per transaction)",
            m.commit_group_size.clone(),
        );
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
        registry.register(
            "samr_packages",
            "SAMR packages by state (pending, accepted, parked: the parked count is state=\"parked\")",
            m.samr_packages.clone(),
        );
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
        registry.register(
            "samr_attempts",
            "SAMR package pushes by outcome (accepted, rejected, busy, failed)",
            m.samr.attempts.clone(),
        );
        registry.register_with_unit(
            "samr_receipt",
            "Time from pushing a SAMR package to SAMR's answer (receipt, busy or error status)",
            Unit::Seconds,
            m.samr.receipt_seconds.clone(),
        );
        Metrics { registry, ..m }
    }

    /// SAMR docking's counters, for the pusher.
    pub fn samr(&self) -> SamrMetrics {
        self.samr.clone()
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

    /// Observes how long a delivery waited between its commit and its first hand-out.
    pub fn submit_to_delivery(&self, waited_ms: i64, attempt: u32) {
        if attempt == 1 {
            self.submit_to_delivery_seconds.observe(waited_ms.max(0) as f64 / 1000.0);
        }
    }

    /// What the store calls with the size of each group it commits.
    pub fn group_size_observer(&self) -> std::sync::Arc<dyn Fn(usize) + Send + Sync> {
        let h = self.commit_group_size.clone();
        std::sync::Arc::new(move |n| h.observe(n as f64))
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

    /// Sets the gauges from `readings`, then encodes every metric (OpenMetrics, or the
    /// Prometheus text format).
    pub fn render(&self, readings: &Readings, openmetrics: bool) -> Result<String, RenderError> {
        for m in &readings.mailboxes {
            let label = PartnerLabel { partner: m.partner.clone() };
            self.mailbox_depth.get_or_create(&label).set(i64::try_from(m.depth).unwrap_or(i64::MAX));
            self.mailbox_in_flight.get_or_create(&label).set(i64::try_from(m.in_flight).unwrap_or(i64::MAX));
            self.oldest_unacked.get_or_create(&label).set(m.oldest_unacknowledged_secs);
            if let Some(t) = m.last_contact_secs {
                self.last_contact.get_or_create(&label).set(t);
            }
        }
        for (state, n) in &readings.samr_packages {
            self.samr_packages.get_or_create(&StateLabel { state: state.clone() }).set(*n);
        }
        for (stage, n) in &readings.cases_open {
            self.cases_open.get_or_create(&StageLabel { stage: stage.clone() }).set(*n);
        }
        for (stage, n) in &readings.cases_overdue {
            self.cases_overdue.get_or_create(&StageLabel { stage: stage.clone() }).set(*n);
        }
        self.provisional.set(readings.provisional_due_dates);
        if let Some(end) = readings.calendar_end_secs {
            self.calendar_end.set(end);
        }
        let mut text = String::new();
        if openmetrics {
            prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        }
        Ok(text)
    }
}

/// Why a scrape could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The gauges could not be read from the store.
    #[error("reading the gauges: {0}")]
    Readings(#[from] crate::store::StoreError),
    /// The exposition could not be encoded.
    #[error("encoding the exposition: {0}")]
    Encode(#[from] std::fmt::Error),
}

/// The OpenMetrics content type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Renders the exposition (`true`: OpenMetrics); it may block (it reads the store).
pub type Render = Arc<
    dyn Fn(bool) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, RenderError>> + Send>>
        + Send
        + Sync,
>;

/// Serves `GET /metrics` on `listener` until `stop` says so. Plain HTTP on the address the
/// operator chose (loopback by default): the scrape carries no partner data.
pub fn serve(listener: tokio::net::TcpListener, render: Render, mut stop: watch::Receiver<bool>) {
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
            let render = render.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let render = render.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(req, render).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
            });
        }
        info!("metrics listener closed");
    });
}

async fn answer(req: Request<hyper::body::Incoming>, render: Render) -> Response<Full<Bytes>> {
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
    // The gauges are read (from the store) on each scrape; rendering itself is cheap.
    let rendered = render(openmetrics).await;
    let content_type =
        if openmetrics { OPENMETRICS } else { prometheus_client::encoding::prometheus_text::CONTENT_TYPE };
    match rendered {
        Ok(text) => reply(StatusCode::OK, content_type, text),
        Err(e) => {
            warn!(error = %e, "metrics could not be read");
            reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "metrics could not be read\n".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samr_attempts_are_told_apart_by_answer_and_state() {
        assert_eq!(SamrAttempt::of(Some(200), "accepted"), SamrAttempt::accepted);
        assert_eq!(SamrAttempt::of(Some(200), "parked"), SamrAttempt::rejected);
        assert_eq!(SamrAttempt::of(Some(200), "pending"), SamrAttempt::failed);
        assert_eq!(SamrAttempt::of(Some(503), "pending"), SamrAttempt::busy);
        // Busy for the last allowed attempt: parked, but SAMR did not reject it.
        assert_eq!(SamrAttempt::of(Some(429), "parked"), SamrAttempt::busy);
        assert_eq!(SamrAttempt::of(Some(500), "pending"), SamrAttempt::failed);
        assert_eq!(SamrAttempt::of(None, "pending"), SamrAttempt::failed);
    }

    #[test]
    fn samr_counters_are_exposed_under_their_names() {
        let m = Metrics::new();
        let samr = m.samr();
        samr.attempted(Some(503), "pending", Duration::from_millis(20));
        samr.attempted(None, "pending", Duration::from_secs(30));
        samr.attempted(Some(200), "accepted", Duration::from_millis(40));
        assert_eq!((samr.count(SamrAttempt::busy), samr.count(SamrAttempt::accepted)), (1, 1));
        let text = m.render(&Readings::default(), false).unwrap();
        assert!(text.contains("yrdx_samr_attempts_total{outcome=\"busy\"} 1"), "{text}");
        assert!(text.contains("yrdx_samr_attempts_total{outcome=\"failed\"} 1"), "{text}");
        // Only the two answers were timed, not the attempt that got none.
        assert!(text.contains("yrdx_samr_receipt_seconds_count 2"), "{text}");
    }
}
