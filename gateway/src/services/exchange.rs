//! The partner-facing `yrdx.v1.Exchange` service: Submit, Receive, Ack, Check, GetReceipt — thin
//! handlers over the gateway's state (`state.rs`) and the submission path (`intake.rs`).

use crate::identity;
use crate::intake::CancelOnDrop;
use crate::state::Gateway;
use crate::status::{internal, store_unavailable};
use crate::store::DeliveryId;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{debug, info, warn, Instrument};
use yrdx_proto::v1::exchange_server::Exchange;
use yrdx_proto::v1::{
    AckReply, AckRequest, CheckReply, CheckRequest, Delivery, ReceiveRequest, SubmitReply, SubmitRequest,
};

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
        let partner = g.calling_partner(&request)?;
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
        let partner = g.calling_partner(&request)?;
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
        let partner = g.calling_partner(&request)?;
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
        let partner = g.calling_partner(&request)?;
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
        let partner = g.calling_partner(&request)?;
        let message_id = request.into_inner().message_id;
        let Some(evidence) = g.evidence.clone() else {
            return Err(Status::failed_precondition("this gateway signs no receipts ([evidence] is not configured)"));
        };
        // Only the sender's own submissions: another partner's message id finds nothing.
        let stored =
            g.store.stored_submission(&partner.region, &message_id).await.map_err(store_unavailable)?.ok_or_else(
                || Status::not_found(format!("no message {message_id} was accepted from {}", partner.name)),
            )?;
        let receipt = evidence.receipt(&partner.region, &message_id, (&stored).into()).map_err(|e| match e {
            crate::receipts::ReceiptUnavailable::BeforeTheChain(_) => Status::not_found(e.to_string()),
            other => internal(other),
        })?;
        Ok(Response::new(yrdx_proto::v1::GetReceiptReply { receipt: Some(receipt) }))
    }
}
