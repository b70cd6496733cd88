//! The path of one submission, in one direction: decode (inline up to 16 KiB, on the blocking
//! pool above) → the envelope's sender → idempotency → route every record by the workflow rules
//! (`routing.rs`) → encode per recipient → commit (`store`) → receipt. `Exchange.Submit`,
//! `Exchange.Check` and `Records.Submit` all come through here.

use crate::config::PartnerConfig;
use crate::faults::Faults;
use crate::receipts::Accepted;
use crate::state::Gateway;
use crate::status::{internal, invalid_document, store_unavailable};
use crate::store::{Committed, NewDelivery, StoredRecord, Submission};
use crate::workflow::{self, RecordLookup, RouteError};
use prost::Message;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tonic::Status;
use tracing::warn;
use yrdx_adapters::{canonical, DecodeError, Document, Encoded, Problem, Record};
use yrdx_proto::v1::{CheckProblem, CheckReply, Envelope, RecordRef, SubmitReply};

/// Set when the handler of a call is dropped (the caller went away or its deadline passed), so
/// that the blocking work it started stops at its next check instead of running to completion.
pub(crate) struct CancelOnDrop(pub(crate) Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Documents up to this size are decoded on the runtime's thread (issue 20, docs/benchmarks.md):
/// at the partners' typical 1–10 KB that takes 10–100 µs, the budget a task may hold a worker.
const INLINE_DECODE_MAX_BYTES: usize = 16 * 1024;

fn gone() -> Status {
    Status::cancelled("the caller went away before the document was processed; nothing was stored")
}

impl Gateway {
    /// Decodes, routes, encodes and commits one submission; answers only after the commit. The
    /// bytes whose digest decides "same message" may be given separately when they are not the
    /// document itself (the Records API keys a record by its canonical JSON, whatever time its
    /// envelope is stamped with). Stops before decoding and before routing when `cancelled`
    /// is set (decoding itself is bounded by the value, element and problem limits). Dropping the
    /// future stops it at its next step; a commit already sent completes or not as a whole.
    pub(crate) async fn submit_cancellable(
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
        let (format, limits) = (partner.format(), config.decode_limits());
        let (decoded, bytes) = if bytes.len() <= INLINE_DECODE_MAX_BYTES {
            // A small document decodes in tens of microseconds, less than the trip to the
            // blocking pool and back (two thread wake-ups) would cost.
            (format.decode(&bytes, &limits), bytes)
        } else {
            // A large one is CPU work that would hold up the runtime's workers (bounded by the
            // limits): on the blocking pool, where it stops before decoding if the caller left.
            let flag = cancelled.clone();
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
            (decoded, bytes)
        };
        let doc = decoded.map_err(|e| invalid_document(&e, config.error_details_max_bytes, config.max_problems))?;
        self.submit_document(partner, doc, bytes, idempotency_key, &cancelled).await
    }

    /// Submits one canonical record as `partner`'s document (Shanghai's `Records.Submit`): the
    /// record is checked by the same rules a decoded document's records are (problems at
    /// `records[0].…`), and stored as the canonical document `bytes` — never encoded and decoded
    /// again. `idempotency_key` decides "same message" (see [`Gateway::submit_cancellable`]).
    pub(crate) async fn submit_record(
        &self,
        partner: &PartnerConfig,
        envelope: Envelope,
        record: Record,
        idempotency_key: &[u8],
    ) -> Result<SubmitReply, Status> {
        let config = self.config();
        let problems: Vec<Problem> = record
            .validate()
            .into_iter()
            .take(config.max_problems.saturating_add(1))
            .map(|v| Problem {
                path: format!("records[0].{}", v.path),
                record_id: Some(record.id()),
                message: v.message,
            })
            .collect();
        if !problems.is_empty() {
            let e = DecodeError::Invalid(problems);
            return Err(invalid_document(&e, config.error_details_max_bytes, config.max_problems));
        }
        let bytes = canonical::encode(&envelope, std::slice::from_ref(&record))
            .map_err(|e| Status::invalid_argument(e.to_string()))?
            .bytes;
        let doc = Document { envelope, records: vec![record] };
        self.submit_document(partner, doc, bytes, Some(idempotency_key), &AtomicBool::new(false)).await
    }

    /// A decoded document, one direction: the envelope's sender → idempotency → route each record
    /// → encode per recipient → commit → receipt. `bytes` are what is kept as received.
    async fn submit_document(
        &self,
        partner: &PartnerConfig,
        doc: Document,
        bytes: Vec<u8>,
        idempotency_key: Option<&[u8]>,
        cancelled: &AtomicBool,
    ) -> Result<SubmitReply, Status> {
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
            reply.receipt = self.receipt_of(&partner.region, &doc.envelope.message_id, (&stored).into());
            return Ok(reply);
        }
        let mut planned = self.plan_deliveries(&doc, partner).await?;
        let (deliveries, warnings) = (planned.deliveries, planned.warnings);
        let mut reply = SubmitReply {
            message_id: doc.envelope.message_id.clone(),
            duplicate: false,
            records: doc.records.iter().map(|r| RecordRef { kind: r.kind().name().into(), id: r.id() }).collect(),
            warnings,
            receipt: None,
        };
        let stored = |r: &Record| StoredRecord::of(r.clone());
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
        let received_at_ms = submission.received_at_ms;
        let commit_started = std::time::Instant::now();
        let committed = self.store.commit(submission).await.map_err(store_unavailable)?;
        self.metrics.committed(commit_started.elapsed());
        match committed {
            Committed::New { audit_position, document_sm3 } => {
                for r in &recipients {
                    self.mailbox(r).notify_waiters();
                }
                for record in &planned_stored {
                    if let Record::CaseTransfer(c) = record {
                        if c.due_on_provisional {
                            // The operator's alert: extend the calendar to settle it.
                            warn!(case = %c.case_id, due = %workflow::due_text(c), "provisional due date: the working-day calendar does not cover its year");
                        }
                    }
                }
                // The commit told what the receipt states: no second read of the store.
                let accepted =
                    Accepted { received_at_ms, audit_position: Some(audit_position), document_sm3: &document_sm3 };
                reply.receipt = self.receipt_of(&partner.region, &doc.envelope.message_id, accepted);
                Ok(reply)
            }
            // Another call with the same key committed first.
            Committed::Existing { digest: stored, reply } => {
                let reply = duplicate(&stored, &reply, &digest, &doc.envelope.message_id)?;
                self.with_stored_receipt(reply, &partner.region, &doc.envelope.message_id).await
            }
        }
    }

    /// `reply` with the receipt of a submission another call committed (read back from the store,
    /// only when this gateway signs receipts).
    async fn with_stored_receipt(
        &self,
        mut reply: SubmitReply,
        sender: &str,
        message_id: &str,
    ) -> Result<SubmitReply, Status> {
        if self.evidence.is_some() {
            if let Some(stored) = self.store.stored_submission(sender, message_id).await.map_err(store_unavailable)? {
                reply.receipt = self.receipt_of(sender, message_id, (&stored).into());
            }
        }
        Ok(reply)
    }

    /// The receipt of a stored submission, when this gateway signs receipts (`[evidence]`). A
    /// receipt that cannot be made is logged and left out: the submission itself stands.
    fn receipt_of(&self, sender: &str, message_id: &str, stored: Accepted<'_>) -> Option<yrdx_proto::v1::Receipt> {
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
    pub(crate) fn check_blocking(
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
        let cx = workflow::Context {
            config: &config,
            calendar: &calendar,
            deadlines: &self.deadlines,
            // Records the gateway stamps (opened cases, their TRANSFER events) carry whole
            // seconds, which every partner format carries.
            now: yrdx_clock::whole_seconds(self.clock.now()),
        };
        let mut planned = Planned::default();
        // One document each (split if too many).
        let mut groups: Vec<Outgoing<'_>> = Vec::new();
        let mut refused = Vec::new();
        let mut batch = workflow::Batch::default();
        for (at, record) in doc.records.iter().enumerate() {
            let mut route = match workflow::route(record, sender, lookup, &mut batch, &cx).await {
                Ok(r) => r,
                Err(RouteError::Precondition { record, rule }) => {
                    refused.push(format!("{record}: {rule}"));
                    continue;
                }
                Err(RouteError::Store(e)) => return Err(store_unavailable(e)),
            };
            for p in workflow::deliverable(record, &mut route, &config) {
                let of_document = |g: &&mut Outgoing<'_>| {
                    g.to.name == p.name && g.message_id == doc.envelope.message_id && g.places.is_some()
                };
                match groups.iter_mut().find(of_document) {
                    Some(Outgoing { records, places: Some(places), .. }) => {
                        records.push(record.clone());
                        places.push(at);
                    }
                    _ => groups.push(Outgoing {
                        to: p,
                        message_id: doc.envelope.message_id.clone(),
                        sender: doc.envelope.sender.clone(),
                        records: vec![record.clone()],
                        places: Some(vec![at]),
                    }),
                }
            }
            for (region, notice) in route.notices.drain(..) {
                let mut single = workflow::Route { recipients: vec![region], ..Default::default() };
                for p in workflow::deliverable(&notice, &mut single, &config) {
                    let (id, from) = match &notice {
                        Record::CaseTransfer(c) => (c.case_id.clone(), c.origin_region.clone()),
                        other => (other.id(), doc.envelope.sender.clone()),
                    };
                    groups.push(Outgoing {
                        to: p,
                        message_id: id,
                        sender: from,
                        records: vec![notice.clone()],
                        places: None,
                    });
                }
            }
            planned.warnings.extend(route.warnings);
            planned.stored.extend(route.stored);
            planned.samr.extend(route.samr);
        }
        if !refused.is_empty() {
            return Err(Status::failed_precondition(refused.join("; ")));
        }
        // Recipients of one format taking the same records of the document under the same id
        // differ only in their envelope: their records are encoded once (`encode_each`).
        let mut documents: Vec<Vec<(String, Result<Encoded, String>)>> = vec![Vec::new(); groups.len()];
        let mut encoded = vec![false; groups.len()];
        for first in 0..groups.len() {
            if encoded[first] {
                continue;
            }
            let Outgoing { to, message_id: base_id, sender: from, records, places } = &groups[first];
            let format = to.format();
            let alike: Vec<usize> = (first..groups.len())
                .filter(|&j| {
                    let g = &groups[j];
                    j == first
                        || (!encoded[j]
                            && places.is_some()
                            && g.places == *places
                            && g.to.format() == format
                            && g.message_id == *base_id
                            && g.sender == *from)
                })
                .collect();
            let chunks: Vec<&[Record]> = records.chunks(format.max_records().min(records.len()).max(1)).collect();
            let many = chunks.len() > 1;
            for (n, chunk) in chunks.into_iter().enumerate() {
                let message_id = if many { split_id(base_id, n + 1) } else { base_id.clone() };
                let envelopes: Vec<Envelope> = alike
                    .iter()
                    .map(|&j| Envelope {
                        message_id: message_id.clone(),
                        sender: from.clone(),
                        receiver: groups[j].to.region.clone(),
                        sent_at: doc.envelope.sent_at,
                    })
                    .collect();
                let faulty: Vec<Record>;
                let chunk = if self.faults == Faults::default() {
                    chunk
                } else {
                    faulty = chunk.iter().map(|r| self.faults.delivered(r)).collect();
                    &faulty[..]
                };
                match format.encode_each(&envelopes, chunk, 1) {
                    Ok(each) => {
                        for (&j, enc) in alike.iter().zip(each) {
                            documents[j].push((message_id.clone(), Ok(enc)));
                        }
                    }
                    Err(e) => {
                        for &j in &alike {
                            documents[j].push((message_id.clone(), Err(e.to_string())));
                        }
                    }
                }
            }
            for &j in &alike {
                encoded[j] = true;
            }
        }
        // Queued in the order the recipients were routed, as each would be alone.
        for (Outgoing { to: p, .. }, documents) in groups.iter().zip(documents) {
            for (message_id, encoded) in documents {
                match encoded {
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

/// One recipient's part of a submission, before it is encoded.
struct Outgoing<'a> {
    to: &'a PartnerConfig,
    /// The document's message id (a notice's own).
    message_id: String,
    /// The envelope's sender.
    sender: String,
    records: Vec<Record>,
    /// Where its records are in the submitted document; none for a notice, which is never
    /// encoded with another recipient's.
    places: Option<Vec<usize>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::sync::atomic::Ordering;
    use tokio::sync::watch;
    use tonic::Code;
    use yrdx_adapters::RecordKind;
    use yrdx_adapters::{canonical, Record};
    use yrdx_proto::calendar::Calendar;
    use yrdx_proto::v1::Envelope;

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
        let clock = Arc::new(yrdx_clock::ManualClock::new(yrdx_proto::Timestamp { seconds: 1_710_468_000, nanos: 0 }));
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
