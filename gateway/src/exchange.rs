//! The partner-facing `yrdx.v1.Exchange` service: Submit, Receive, Ack.

use crate::clock::Clock;
use crate::config::{Config, PartnerConfig};
use crate::disposal::Deadlines;
use crate::faults::Faults;
use crate::identity;
use crate::routing::{self, RecordLookup, RouteError};
use crate::store::{
    Committed, DeliveryId, LookupKeys, NewDelivery, Store, StoreError, StoredRecord, StoredSubmission, Submission,
};
use governor::{DefaultDirectRateLimiter, Quota};
use prost::Message;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::{debug, info, warn, Instrument};
use yrdx_adapters::{canonical, DecodeError, Document, Record};
use yrdx_proto::calendar::Calendar;
use yrdx_proto::v1::exchange_server::Exchange;
use yrdx_proto::v1::{
    AckReply, AckRequest, CheckProblem, CheckReply, CheckRequest, Delivery, Envelope, ReceiveRequest, RecordRef,
    SubmitReply, SubmitRequest,
};

/// A partner's rate limiter and the quota it was built for (kept across a reload that leaves the
/// quota alone, so a reload is no way to reset a limit).
struct Limiter {
    rate: u32,
    burst: u32,
    limiter: DefaultDirectRateLimiter,
}

impl Limiter {
    fn new(p: &PartnerConfig) -> Arc<Limiter> {
        let rate = NonZeroU32::new(p.rate_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(p.burst).unwrap_or(NonZeroU32::MIN);
        Arc::new(Limiter {
            rate: p.rate_per_second,
            burst: p.burst,
            limiter: DefaultDirectRateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
        })
    }
}

/// Shared state of the gateway's services.
pub struct Gateway {
    /// The configuration in force (swapped whole by a reload; read it with [`Gateway::config`]).
    config: RwLock<Arc<Config>>,
    /// The durable store.
    pub store: Arc<dyn Store>,
    /// The working-day calendar in force (swapped by a reload; read it with [`Gateway::calendar`]).
    calendar: RwLock<Arc<Calendar>>,
    /// Disposal stage durations.
    pub deadlines: Deadlines,
    /// The clock (injectable for tests).
    pub clock: Arc<dyn Clock>,
    limiters: RwLock<HashMap<String, Arc<Limiter>>>,
    mailboxes: Mutex<HashMap<String, Arc<Notify>>>,
    contacts: Mutex<HashMap<String, yrdx_proto::Timestamp>>,
    shutdown: watch::Receiver<bool>,
    /// Deliberate faults (only settable with the `fault-injection` feature).
    pub(crate) faults: Faults,
    /// Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
    /// The receipts' and chain heads' signing key (`[evidence]`; none: no receipts).
    pub evidence: Option<Arc<crate::receipts::Evidence>>,
    /// The last hour of submissions per partner and minute, for the operators' console.
    pub activity: crate::console::activity::SubmissionActivity,
}

/// `UNAVAILABLE`, logged with its source: the store failed. The partner learns that nothing was
/// stored and that it may retry, never the store's own text.
pub(crate) fn store_unavailable(e: StoreError) -> Status {
    warn!(error = %e, source = ?std::error::Error::source(&e), "store unavailable");
    Status::unavailable("the exchange's store is unavailable: nothing was stored; retry later")
}

/// `INTERNAL`, logged: a failure of the gateway itself, not of the caller's request.
pub(crate) fn internal(e: impl std::fmt::Display) -> Status {
    warn!(error = %e, "internal error");
    Status::internal(format!("gateway error: {e}"))
}

/// `INVALID_ARGUMENT` with a `google.rpc.BadRequest` carrying the first problems by the sender's
/// path, as many as fit in `budget` bytes of trailer (`grpc-status-details-bin`, base64, plus the
/// percent-encoded `grpc-message`), then one violation counting the rest and pointing to
/// `Exchange.Check`. Every problem in the trailer made a large batch's answer exceed the 16 KiB
/// metadata limit of default grpcio clients, which then saw only RESOURCE_EXHAUSTED.
fn invalid_document(e: &DecodeError, budget: usize, max_problems: usize) -> Status {
    let problems = e.problems();
    let truncated = problems.len() > max_problems;
    let count = if truncated {
        format!("more than {max_problems} problems (reporting stopped there)")
    } else {
        format!("{} problem(s)", problems.len())
    };
    let first = problems.first().map(|p| shorten(&p.to_string(), 200)).unwrap_or_default();
    let message = format!("{count} in the document; first: {first}");
    // Percent-encoding can triple the message; base64 makes 4 of every 3 bytes of details.
    let room = budget.saturating_sub(3 * message.len()).saturating_mul(3) / 4;
    let room = room.saturating_sub(message.len() + 160);
    let described: Vec<(String, String)> = problems
        .iter()
        .map(|p| {
            let description = match &p.record_id {
                Some(id) if !id.is_empty() => format!("{} (record {id})", p.message),
                _ => p.message.clone(),
            };
            (shorten(&p.path, 200), shorten(&description, 400))
        })
        .collect();
    let mut listed = 0;
    let mut used = 0;
    for (path, description) in &described {
        // Each violation costs its text and a few bytes of protobuf framing.
        let cost = path.len() + description.len() + 8;
        if used + cost > room {
            break;
        }
        used += cost;
        listed += 1;
    }
    let build = |listed: usize| {
        let mut details = ErrorDetails::new();
        for (path, description) in &described[..listed] {
            details.add_bad_request_violation(path.clone(), description.clone());
        }
        let rest = described.len() - listed;
        if rest > 0 {
            details.add_bad_request_violation(
                "/",
                format!("{rest} more problem(s) not listed here; Exchange.Check returns every problem of the document"),
            );
        }
        Status::with_error_details(Code::InvalidArgument, message.clone(), details)
    };
    let mut status = build(listed);
    // The estimate errs on the small side; the encoded size decides.
    while listed > 0 && status.details().len().div_ceil(3) * 4 + 3 * message.len() > budget {
        listed -= 1;
        status = build(listed);
    }
    status
}

/// `text` cut to at most `max` bytes at a character boundary, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Set when the handler of a call is dropped (the caller went away or its deadline passed), so
/// that the blocking work it started stops at its next check instead of running to completion.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn gone() -> Status {
    Status::cancelled("the caller went away before the document was processed; nothing was stored")
}

impl Gateway {
    /// Builds the services' state.
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        calendar: Calendar,
        clock: Arc<dyn Clock>,
        shutdown: watch::Receiver<bool>,
    ) -> Gateway {
        let limiters = config.partners.iter().map(|p| (p.name.clone(), Limiter::new(p))).collect();
        let metrics = crate::metrics::Metrics::new();
        store.observe_groups(metrics.group_size_observer());
        Gateway {
            config: RwLock::new(config),
            store,
            calendar: RwLock::new(Arc::new(calendar)),
            deadlines: Deadlines::default(),
            clock,
            limiters: RwLock::new(limiters),
            mailboxes: Mutex::new(HashMap::new()),
            contacts: Mutex::new(HashMap::new()),
            shutdown,
            faults: Faults::default(),
            metrics,
            evidence: None,
            activity: Default::default(),
        }
    }

    /// The configuration in force now. A call takes it once and keeps it to its end, so a reload
    /// never changes the rules halfway through a submission.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The working-day calendar in force now.
    pub fn calendar(&self) -> Arc<Calendar> {
        self.calendar.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Puts a reloaded configuration (and calendar, when given) in force for every later call.
    /// Rate limiters of partners whose quota did not change are kept; open Receive streams are
    /// woken so that a suspended or removed partner's stream ends at once.
    pub fn replace_config(&self, config: Arc<Config>, calendar: Option<Calendar>) {
        {
            let mut limiters = self.limiters.write().unwrap_or_else(PoisonError::into_inner);
            let next = config
                .partners
                .iter()
                .map(|p| {
                    let kept = limiters.get(&p.name).filter(|l| l.rate == p.rate_per_second && l.burst == p.burst);
                    (p.name.clone(), kept.cloned().unwrap_or_else(|| Limiter::new(p)))
                })
                .collect();
            *limiters = next;
        }
        if let Some(calendar) = calendar {
            *self.calendar.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(calendar);
        }
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config;
        let mailboxes: Vec<Arc<Notify>> =
            self.mailboxes.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        for m in mailboxes {
            m.notify_waiters();
        }
    }

    /// The case, in each side's own case-transfer format (canonical for Shanghai), as deliveries
    /// under `message_id`: the origin region, and the responsible one when it differs and is
    /// connected. The partners' formats have no message for "this case changed" or "overdue".
    pub(crate) fn case_to_both_sides(
        &self,
        case: &yrdx_proto::v1::DisposalCase,
        message_id: &str,
        now: yrdx_proto::Timestamp,
    ) -> Vec<NewDelivery> {
        let mut deliveries = Vec::new();
        let config = self.config();
        let mut sides = vec![case.origin_region.clone()];
        if case.responsible_region != case.origin_region {
            sides.push(case.responsible_region.clone());
        }
        for region in sides {
            let Some(p) = config.partner_by_region(&region) else { continue };
            let envelope = Envelope {
                message_id: message_id.to_string(),
                sender: case.origin_region.clone(),
                receiver: region.clone(),
                sent_at: Some(now),
            };
            match p.format().encode(&envelope, &[Record::CaseTransfer(case.clone())], 1) {
                Ok(enc) => deliveries.push(NewDelivery {
                    recipient: region.clone(),
                    message_id: message_id.to_string(),
                    document: enc.bytes,
                }),
                Err(e) => warn!(case = %case.case_id, partner = %p.name, error = %e, "case notice not encodable"),
            }
        }
        deliveries
    }

    /// Notifies the mailbox of `region` that deliveries are waiting.
    pub(crate) fn wake(&self, region: &str) {
        self.mailbox(region).notify_waiters();
    }

    /// Wakes every open stream (each then looks at its own mailbox).
    pub(crate) fn wake_all(&self) {
        let mailboxes: Vec<Arc<Notify>> =
            self.mailboxes.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        for m in mailboxes {
            m.notify_waiters();
        }
    }

    /// When a partner last called (since start-up).
    pub fn last_contact(&self, partner: &str) -> Option<yrdx_proto::Timestamp> {
        self.contacts.lock().unwrap_or_else(|p| p.into_inner()).get(partner).copied()
    }

    fn contact(&self, partner: &str) {
        let now = self.clock.now();
        self.contacts.lock().unwrap_or_else(|p| p.into_inner()).insert(partner.to_string(), now);
    }

    fn mailbox(&self, region: &str) -> Arc<Notify> {
        let mut m = self.mailboxes.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(region.to_string()).or_default().clone()
    }

    /// What Submit and Check both ask of a document before decoding it: the partner's rate
    /// limit, then the size limit (`RESOURCE_EXHAUSTED` naming it).
    fn admit(&self, partner: &PartnerConfig, bytes: Vec<u8>) -> Result<Vec<u8>, Status> {
        self.check_rate(partner)?;
        let max = self.config().max_document_bytes;
        if bytes.len() > max {
            return Err(Status::resource_exhausted(format!(
                "document is {} bytes, over the limit of {max} bytes",
                bytes.len(),
            )));
        }
        Ok(bytes)
    }

    fn check_rate(&self, partner: &PartnerConfig) -> Result<(), Status> {
        let limiter = self.limiters.read().unwrap_or_else(PoisonError::into_inner).get(&partner.name).cloned();
        let Some(limiter) = limiter else {
            return Ok(());
        };
        if let Err(not_until) = limiter.limiter.check() {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let mut status = Status::resource_exhausted(format!(
                "rate limit for {}: {} submissions per second, burst {}; retry in {secs} s",
                partner.name, partner.rate_per_second, partner.burst
            ));
            if let Ok(v) = secs.to_string().parse() {
                status.metadata_mut().insert("retry-after", v);
            }
            return Err(status);
        }
        Ok(())
    }

    /// Decodes, routes, encodes and commits one submission; answers only after the commit. The
    /// bytes whose digest decides "same message" may be given separately when they are not the
    /// document itself (the Records API wraps what Shanghai
    /// sent in an envelope stamped with the time of the call).
    pub(crate) async fn submit_keyed(
        &self,
        partner: &PartnerConfig,
        bytes: Vec<u8>,
        idempotency_key: Option<&[u8]>,
    ) -> Result<SubmitReply, Status> {
        self.submit_cancellable(partner, bytes, idempotency_key, Arc::new(AtomicBool::new(false))).await
    }

    /// [`Gateway::submit_keyed`], stopping before decoding and before routing when `cancelled`
    /// is set (decoding itself is bounded by the value, element and problem limits). Dropping the
    /// future stops it at its next step; a commit already sent completes or not as a whole.
    async fn submit_cancellable(
        &self,
        partner: &PartnerConfig,
        bytes: Vec<u8>,
        idempotency_key: Option<&[u8]>,
        cancelled: Arc<AtomicBool>,
    ) -> Result<SubmitReply, Status> {
        if cancelled.load(Ordering::Relaxed) {
            return Err(gone());
        }
        let config = self.config();
        // Decoding is CPU work (bounded by the limits): on the blocking pool, so that a large
        // document does not hold up the runtime's workers.
        let (format, limits, flag) = (partner.format(), config.decode_limits(), cancelled.clone());
        let (decoded, bytes) = tokio::task::spawn_blocking(move || {
            if flag.load(Ordering::Relaxed) {
                return (None, bytes);
            }
            let decoded = format.decode(&bytes, &limits);
            (Some(decoded), bytes)
        })
        .await
        .map_err(internal)?;
        let Some(decoded) = decoded else { return Err(gone()) };
        let doc = decoded.map_err(|e| invalid_document(&e, config.error_details_max_bytes, config.max_problems))?;
        if cancelled.load(Ordering::Relaxed) {
            return Err(gone());
        }
        if doc.envelope.sender != partner.region && !self.faults.accept_forged_sender {
            return Err(Status::permission_denied(format!(
                "the envelope's sender is {} but the certificate is {}'s ({})",
                doc.envelope.sender, partner.name, partner.region
            )));
        }
        let digest = hex::encode(Sha256::digest(idempotency_key.unwrap_or(&bytes)));
        if let Some(stored) =
            self.store.stored_submission(&partner.region, &doc.envelope.message_id).await.map_err(store_unavailable)?
        {
            let mut reply = duplicate(&stored.digest, &stored.reply, &digest, &doc.envelope.message_id)?;
            reply.receipt = self.receipt_of(&partner.region, &doc.envelope.message_id, &stored);
            return Ok(reply);
        }
        let mut planned = self.plan_deliveries(&doc, partner).await?;
        let (deliveries, warnings) = (planned.deliveries, planned.warnings);
        let reply = SubmitReply {
            message_id: doc.envelope.message_id.clone(),
            duplicate: false,
            records: doc.records.iter().map(|r| RecordRef { kind: r.kind().name().into(), id: r.id() }).collect(),
            warnings,
            receipt: None,
        };
        let stored = |r: &Record| StoredRecord {
            kind: r.kind(),
            id: r.id(),
            canonical: canonical::record_to_value(r).to_string(),
            keys: LookupKeys::of(r),
        };
        // The gateway's own records (opened or updated cases) come last: they win over the
        // submitted copy.
        let records = doc.records.iter().chain(planned.stored.iter()).map(stored).collect();
        let planned_stored = std::mem::take(&mut planned.stored);
        let samr = planned.samr.iter().map(stored).collect();
        let submission = Submission {
            sender: partner.region.clone(),
            message_id: doc.envelope.message_id.clone(),
            digest: digest.clone(),
            document: bytes,
            reply: reply.encode_to_vec(),
            records,
            deliveries,
            samr,
            received_at_ms: self.clock.now_ms(),
        };
        let recipients: Vec<String> = submission.deliveries.iter().map(|d| d.recipient.clone()).collect();
        let commit_started = std::time::Instant::now();
        let committed = self.store.commit(submission).await.map_err(store_unavailable)?;
        self.metrics.committed(commit_started.elapsed());
        match committed {
            Committed::New => {
                for r in &recipients {
                    self.mailbox(r).notify_waiters();
                }
                for record in &planned_stored {
                    if let Record::CaseTransfer(c) = record {
                        if c.due_on_provisional {
                            // The operator's alert: extend the calendar to settle it.
                            warn!(case = %c.case_id, due = %routing::due_text(c), "provisional due date: the working-day calendar does not cover its year");
                        }
                    }
                }
                let mut reply = reply;
                if self.evidence.is_some() {
                    let stored = self
                        .store
                        .stored_submission(&partner.region, &doc.envelope.message_id)
                        .await
                        .map_err(store_unavailable)?;
                    if let Some(stored) = stored {
                        reply.receipt = self.receipt_of(&partner.region, &doc.envelope.message_id, &stored);
                    }
                }
                Ok(reply)
            }
            // Another call with the same key committed first.
            Committed::Existing { digest: stored, reply } => {
                let mut reply = duplicate(&stored, &reply, &digest, &doc.envelope.message_id)?;
                if let Some(stored) = self
                    .store
                    .stored_submission(&partner.region, &doc.envelope.message_id)
                    .await
                    .map_err(store_unavailable)?
                {
                    reply.receipt = self.receipt_of(&partner.region, &doc.envelope.message_id, &stored);
                }
                Ok(reply)
            }
        }
    }

    /// The receipt of a stored submission, when this gateway signs receipts (`[evidence]`). A
    /// receipt that cannot be made is logged and left out: the submission itself stands.
    fn receipt_of(&self, sender: &str, message_id: &str, stored: &StoredSubmission) -> Option<yrdx_proto::v1::Receipt> {
        let evidence = self.evidence.as_ref()?;
        match evidence.receipt(sender, message_id, stored) {
            Ok(r) => Some(r),
            Err(e) => {
                warn!(%message_id, error = %e, "no receipt");
                None
            }
        }
    }

    /// Decodes a document as Submit would and reports every problem (up to `max_problems`) in
    /// the reply; nothing is stored or routed (blocking: run it on the blocking pool).
    fn check_blocking(
        &self,
        partner: &PartnerConfig,
        bytes: &[u8],
        cancelled: &AtomicBool,
    ) -> Result<CheckReply, Status> {
        if cancelled.load(Ordering::Relaxed) {
            return Err(gone());
        }
        let config = self.config();
        Ok(match partner.format().decode(bytes, &config.decode_limits()) {
            Ok(doc) => CheckReply {
                valid: true,
                problems: vec![],
                truncated: false,
                records: doc.records.iter().map(|r| RecordRef { kind: r.kind().name().into(), id: r.id() }).collect(),
            },
            Err(e) => {
                let problems = e.problems();
                CheckReply {
                    valid: false,
                    truncated: problems.len() > config.max_problems,
                    problems: problems
                        .into_iter()
                        .map(|p| CheckProblem {
                            path: p.path,
                            record_id: p.record_id.unwrap_or_default(),
                            message: p.message,
                        })
                        .collect(),
                    records: vec![],
                }
            }
        })
    }

    /// Routes every record and encodes, per recipient, the records it takes in its own format.
    async fn plan_deliveries(&self, doc: &Document, sender: &PartnerConfig) -> Result<Planned, Status> {
        let lookup: &dyn RecordLookup = self.store.as_ref();
        let (config, calendar) = (self.config(), self.calendar());
        let cx = routing::Context {
            config: &config,
            calendar: &calendar,
            deadlines: &self.deadlines,
            // Records the gateway stamps (opened cases, their TRANSFER events) carry whole
            // seconds, which every partner format carries.
            now: crate::clock::whole_seconds(self.clock.now()),
        };
        let mut planned = Planned::default();
        // (recipient, message id, envelope sender, records): one document each (split if too many).
        let mut groups: Vec<(&PartnerConfig, String, String, Vec<Record>)> = Vec::new();
        let mut refused = Vec::new();
        let mut batch = routing::Batch::default();
        for record in &doc.records {
            let mut route = match routing::route(record, sender, lookup, &mut batch, &cx).await {
                Ok(r) => r,
                Err(RouteError::Precondition { record, rule }) => {
                    refused.push(format!("{record}: {rule}"));
                    continue;
                }
                Err(RouteError::Store(e)) => return Err(store_unavailable(e)),
                Err(RouteError::Corrupt(e)) => return Err(internal(e)),
            };
            for p in routing::deliverable(record, &mut route, &config) {
                match groups.iter_mut().find(|(q, id, ..)| q.name == p.name && *id == doc.envelope.message_id) {
                    Some((.., list)) => list.push(record.clone()),
                    None => groups.push((
                        p,
                        doc.envelope.message_id.clone(),
                        doc.envelope.sender.clone(),
                        vec![record.clone()],
                    )),
                }
            }
            for (region, notice) in route.notices.drain(..) {
                let mut single = routing::Route { recipients: vec![region], ..Default::default() };
                for p in routing::deliverable(&notice, &mut single, &config) {
                    let (id, from) = match &notice {
                        Record::CaseTransfer(c) => (c.case_id.clone(), c.origin_region.clone()),
                        other => (other.id(), doc.envelope.sender.clone()),
                    };
                    groups.push((p, id, from, vec![notice.clone()]));
                }
            }
            planned.warnings.extend(route.warnings);
            planned.stored.extend(route.stored);
            planned.samr.extend(route.samr);
        }
        if !refused.is_empty() {
            return Err(Status::failed_precondition(refused.join("; ")));
        }
        for (p, base_id, from, records) in groups {
            let format = p.format();
            let chunks: Vec<&[Record]> = records.chunks(format.max_records().min(records.len()).max(1)).collect();
            let many = chunks.len() > 1;
            for (n, chunk) in chunks.into_iter().enumerate() {
                let message_id = if many { split_id(&base_id, n + 1) } else { base_id.clone() };
                let envelope = Envelope {
                    message_id: message_id.clone(),
                    sender: from.clone(),
                    receiver: p.region.clone(),
                    sent_at: doc.envelope.sent_at,
                };
                let faulty: Vec<Record>;
                let chunk = if self.faults == Faults::default() {
                    chunk
                } else {
                    faulty = chunk.iter().map(|r| self.faults.delivered(r)).collect();
                    &faulty[..]
                };
                match format.encode(&envelope, chunk, 1) {
                    Ok(enc) => {
                        for loss in &enc.losses {
                            planned.warnings.push(format!("for {} ({}): {loss}", p.name, p.region));
                        }
                        planned.deliveries.push(NewDelivery {
                            recipient: p.region.clone(),
                            message_id,
                            document: enc.bytes,
                        });
                    }
                    Err(e) => planned.warnings.push(format!("not queued for {} ({}): {e}", p.name, p.region)),
                }
            }
        }
        Ok(planned)
    }
}

/// What one submission causes.
#[derive(Default)]
struct Planned {
    deliveries: Vec<NewDelivery>,
    warnings: Vec<String>,
    stored: Vec<Record>,
    samr: Vec<Record>,
}

/// A message id for the n-th part of a split document, within 64 characters.
fn split_id(id: &str, n: usize) -> String {
    let suffix = format!("-{n}");
    let keep = 64usize.saturating_sub(suffix.len()).min(id.len());
    format!("{}{suffix}", &id[..keep])
}

fn duplicate(stored: &str, reply: &[u8], digest: &str, message_id: &str) -> Result<SubmitReply, Status> {
    if stored != digest {
        return Err(Status::already_exists(format!(
            "message {message_id} was already submitted with different content; use a new message id"
        )));
    }
    let mut reply = SubmitReply::decode(reply).map_err(internal)?;
    reply.duplicate = true;
    Ok(reply)
}

/// The `Exchange` service.
#[derive(Clone)]
pub struct ExchangeService {
    gateway: Arc<Gateway>,
}

impl ExchangeService {
    /// The service over shared gateway state.
    pub fn new(gateway: Arc<Gateway>) -> ExchangeService {
        ExchangeService { gateway }
    }
}

#[tonic::async_trait]
impl Exchange for ExchangeService {
    async fn submit(&self, request: Request<SubmitRequest>) -> Result<Response<SubmitReply>, Status> {
        let g = self.gateway.clone();
        let partner = identity::partner(&request, &g.config())?.clone();
        g.contact(&partner.name);
        let trace_id = crate::trace::trace_id_of(&request);
        let span = tracing::info_span!(
            "submit",
            partner = %partner.name,
            message_id = tracing::field::Empty,
            records = tracing::field::Empty,
        );
        let started = std::time::Instant::now();
        let counted = g.clone();
        let name = partner.name.clone();
        let result = async move {
            let result = async {
                let bytes = g.admit(&partner, request.into_inner().document)?;
                let guard = CancelOnDrop(Arc::new(AtomicBool::new(false)));
                let result = g.submit_cancellable(&partner, bytes, None, guard.0.clone()).await;
                drop(guard);
                result
            }
            .await;
            // The one outcome line of a submission (what operators grep and ship): who, which
            // message and records, how it ended, how long it took, in which trace.
            let outcome = match &result {
                Ok(reply) if reply.duplicate => crate::metrics::Outcome::duplicate,
                Ok(_) => crate::metrics::Outcome::accepted,
                Err(status) => crate::metrics::Outcome::of_status(status),
            };
            let duration_ms = started.elapsed().as_millis() as u64;
            match &result {
                Ok(reply) => {
                    let records = reply.records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(",");
                    let span = tracing::Span::current();
                    span.record("message_id", reply.message_id.as_str());
                    span.record("records", records.as_str());
                    info!(
                        partner = %partner.name,
                        message_id = %reply.message_id,
                        outcome = ?outcome,
                        %records,
                        code = "OK",
                        duration_ms,
                        %trace_id,
                        "submission"
                    );
                }
                Err(status) => info!(
                    partner = %partner.name,
                    message_id = "",
                    outcome = ?outcome,
                    records = "",
                    code = ?status.code(),
                    reason = status.message(),
                    duration_ms,
                    %trace_id,
                    "submission"
                ),
            }
            result.map(Response::new)
        }
        .instrument(span)
        .await;
        let (outcome, records) = match &result {
            Ok(reply) => {
                let outcome = if reply.get_ref().duplicate {
                    crate::metrics::Outcome::duplicate
                } else {
                    crate::metrics::Outcome::accepted
                };
                (outcome, reply.get_ref().records.iter().map(|r| (r.kind.clone(), outcome)).collect::<Vec<_>>())
            }
            Err(status) => (crate::metrics::Outcome::of_status(status), Vec::new()),
        };
        counted.metrics.submitted(&name, outcome, &records, started.elapsed());
        counted.activity.record(&name, outcome, counted.clock.now_ms());
        result
    }

    type ReceiveStream = ReceiverStream<Result<Delivery, Status>>;

    async fn receive(&self, request: Request<ReceiveRequest>) -> Result<Response<Self::ReceiveStream>, Status> {
        let g = self.gateway.clone();
        let partner = identity::partner(&request, &g.config())?.clone();
        g.contact(&partner.name);
        let asked = request.into_inner().max_unacked;
        let max_unacked = if asked == 0 { g.config().max_unacked } else { asked.min(1000) } as usize;
        let (tx, rx) = mpsc::channel(max_unacked.max(1));
        let notify = g.mailbox(&partner.region);
        let mut shutdown = g.shutdown.clone();
        let span = tracing::info_span!("receive", partner = %partner.name);
        tokio::spawn(
            async move {
                let visibility = (g.config().visibility_timeout_secs * 1000) as i64;
                let mut sent: Vec<DeliveryId> = Vec::new();
                loop {
                    // A reload that suspends or removes the partner ends its stream (the reload
                    // wakes every mailbox); what it held unacknowledged stays in its mailbox.
                    if let Err(status) = identity::still_admitted(&partner.name, &g.config()) {
                        let _ = tx.send(Err(status)).await;
                        break;
                    }
                    // Registered before the store is read, so a commit between the read and the
                    // wait still wakes this stream (notify_waiters only wakes registered waiters).
                    let notified = notify.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    // The gateway's one clock: visibility timeouts move with it in tests too.
                    let now = g.clock.now_ms();
                    let batch = async {
                        let room = max_unacked.saturating_sub(g.store.in_flight(&partner.region, now).await?);
                        if room == 0 {
                            return Ok(vec![]);
                        }
                        g.store.take(&partner.region, room, now, visibility).await
                    }
                    .await;
                    let batch = match batch {
                        Ok(b) => b,
                        Err(e) => {
                            let _ = tx.send(Err(store_unavailable(e))).await;
                            break;
                        }
                    };
                    for d in batch {
                        sent.push(d.delivery_id);
                        g.metrics.submit_to_delivery(now - d.queued_at_ms, d.attempt);
                        // A span per delivery sent, inside the stream's, so that a delivery id
                        // can be followed from here to its Ack.
                        tracing::info_span!("deliver", delivery_id = %d.delivery_id, message_id = %d.message_id)
                            .in_scope(|| debug!(attempt = d.attempt, "delivered"));
                        g.metrics.delivered(&partner.name, d.attempt);
                        let delivery = Delivery {
                            delivery_id: d.delivery_id.to_string(),
                            message_id: d.message_id,
                            document: d.document,
                            attempt: d.attempt,
                        };
                        if tx.send(Ok(delivery)).await.is_err() {
                            break;
                        }
                    }
                    if tx.is_closed() {
                        break;
                    }
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        _ = tx.closed() => break,
                        _ = shutdown.changed() => break,
                    }
                }
                // The stream is gone: what it carried and was not acknowledged is sent again.
                if !sent.is_empty() {
                    if let Err(e) = g.store.release(&sent).await {
                        // Their lease runs out by itself: they are sent again after the timeout.
                        warn!(error = %e, "unacknowledged deliveries could not be released");
                    }
                }
                info!("stream closed");
            }
            .instrument(span),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn check(&self, request: Request<CheckRequest>) -> Result<Response<CheckReply>, Status> {
        let g = self.gateway.clone();
        let partner = identity::partner(&request, &g.config())?.clone();
        g.contact(&partner.name);
        let span = tracing::info_span!("check", partner = %partner.name);
        async move {
            // A check costs what a submission's decoding costs: the same rate and size limits.
            let bytes = g.admit(&partner, request.into_inner().document)?;
            let g2 = g.clone();
            let guard = CancelOnDrop(Arc::new(AtomicBool::new(false)));
            let cancelled = guard.0.clone();
            let reply = tokio::task::spawn_blocking(move || g2.check_blocking(&partner, &bytes, &cancelled))
                .await
                .map_err(internal)??;
            drop(guard);
            info!(valid = reply.valid, problems = reply.problems.len(), "checked");
            Ok(Response::new(reply))
        }
        .instrument(span)
        .await
    }

    async fn ack(&self, request: Request<AckRequest>) -> Result<Response<AckReply>, Status> {
        let g = self.gateway.clone();
        let partner = identity::partner(&request, &g.config())?.clone();
        g.contact(&partner.name);
        let ids = request.into_inner().delivery_ids;
        let span = tracing::info_span!("ack", partner = %partner.name, deliveries = %ids.join(","));
        async move {
            let n = g.store.ack(&partner.region, &DeliveryId::parse_all(&ids)).await.map_err(store_unavailable)?;
            g.mailbox(&partner.region).notify_waiters();
            g.metrics.acknowledged(&partner.name, n);
            info!(acknowledged = n, "acknowledged");
            Ok(Response::new(AckReply { acknowledged: n }))
        }
        .instrument(span)
        .await
    }

    async fn get_receipt(
        &self,
        request: Request<yrdx_proto::v1::GetReceiptRequest>,
    ) -> Result<Response<yrdx_proto::v1::GetReceiptReply>, Status> {
        let g = self.gateway.clone();
        let partner = identity::partner(&request, &g.config())?.clone();
        g.contact(&partner.name);
        let message_id = request.into_inner().message_id;
        let Some(evidence) = g.evidence.clone() else {
            return Err(Status::failed_precondition("this gateway signs no receipts ([evidence] is not configured)"));
        };
        // Only the sender's own submissions: another partner's message id finds nothing.
        let stored =
            g.store.stored_submission(&partner.region, &message_id).await.map_err(store_unavailable)?.ok_or_else(
                || Status::not_found(format!("no message {message_id} was accepted from {}", partner.name)),
            )?;
        let receipt = evidence.receipt(&partner.region, &message_id, &stored).map_err(|e| match e {
            crate::receipts::ReceiptUnavailable::BeforeTheChain(_) => Status::not_found(e.to_string()),
            other => internal(other),
        })?;
        Ok(Response::new(yrdx_proto::v1::GetReceiptReply { receipt: Some(receipt) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrdx_adapters::RecordKind;

    const CONFIG: &str = r#"
[tls]
client_ca = "ca.pem"
cert = "server.pem"
key = "server.key"

[[partner]]
name = "shanghai"
region = "310000"
format = "canonical"
identity = "urn:yrdx:partner:shanghai"
"#;

    fn gateway() -> Gateway {
        let config = Arc::new(Config::parse(CONFIG, "test").expect("config"));
        let store = Arc::new(crate::store::SqliteStore::in_memory().expect("store"));
        let clock =
            Arc::new(crate::clock::ManualClock::new(yrdx_proto::Timestamp { seconds: 1_710_468_000, nanos: 0 }));
        let (_, shutdown) = watch::channel(false);
        Gateway::new(config, store, Calendar::embedded(), clock, shutdown)
    }

    fn plan_document(message_id: &str) -> Vec<u8> {
        let plan = yrdx_proto::v1::SpotCheckPlan {
            plan_id: "YRD-2024-WS-01".into(),
            title: "电动自行车联动抽查".into(),
            year: 2024,
            lead_region: "310000".into(),
            participants: vec![yrdx_proto::v1::PlanParticipant { region: "310000".into(), quota: 5 }],
            channel: yrdx_proto::v1::PlanChannel::Online as i32,
            categories: vec![yrdx_proto::v1::ProductCategory::EBikeLithiumBattery as i32],
            standards: vec!["GB 43854-2024".into()],
            sampling_deadline: yrdx_proto::Date::from_ymd(2024, 6, 30),
            published_at: Some(yrdx_proto::Timestamp { seconds: 1_710_468_000, nanos: 0 }),
        };
        let envelope = Envelope {
            message_id: message_id.into(),
            sender: "310000".into(),
            receiver: "310000".into(),
            sent_at: Some(yrdx_proto::Timestamp { seconds: 1_710_468_000, nanos: 0 }),
        };
        canonical::encode(&envelope, &[Record::Plan(plan)]).expect("plan encodes").bytes
    }

    #[tokio::test]
    async fn work_whose_caller_has_gone_stores_nothing() {
        let g = gateway();
        let shanghai = g.config().partners[0].clone();
        // The drop guard of a Submit whose caller went away sets the flag…
        let guard = CancelOnDrop(Arc::new(AtomicBool::new(false)));
        let cancelled = guard.0.clone();
        drop(guard);
        assert!(cancelled.load(Ordering::Relaxed));
        // …and the work then stops before anything is decoded, routed or stored.
        let err = g.submit_cancellable(&shanghai, plan_document("M-GONE"), None, cancelled).await.unwrap_err();
        assert_eq!(err.code(), Code::Cancelled, "{err}");
        assert_eq!(g.store.stored_submission("310000", "M-GONE").await.unwrap(), None);
        assert_eq!(g.store.record(RecordKind::Plan, "YRD-2024-WS-01").await.unwrap(), None);
        // The same document from a caller still there is stored.
        let reply = g
            .submit_cancellable(&shanghai, plan_document("M-HERE"), None, Arc::new(AtomicBool::new(false)))
            .await
            .unwrap();
        assert!(!reply.duplicate);
        assert!(g.store.record(RecordKind::Plan, "YRD-2024-WS-01").await.unwrap().is_some());
    }
}
