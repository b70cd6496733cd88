//! Shanghai's `yrdx.v1.Records` service: canonical records in (through the same path as partner
//! submissions: evidence, idempotency, routing, workflows), queries out.

use crate::config::PartnerConfig;
use crate::state::Gateway;
use crate::status::{internal, store_unavailable};
use crate::workflow::{disposal, plan_summary};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use yrdx_adapters::{canonical, Record, RecordKind};
use yrdx_proto::civil::BeijingTime;
use yrdx_proto::v1::records_server::Records;
use yrdx_proto::v1::*;

/// The `Records` service.
pub struct RecordsService {
    gateway: Arc<Gateway>,
}

impl RecordsService {
    /// The service over shared gateway state.
    pub fn new(gateway: Arc<Gateway>) -> RecordsService {
        RecordsService { gateway }
    }

    /// Shanghai's registry entry: the caller must hold the canonical-format (310000) certificate.
    fn shanghai<T>(&self, request: &Request<T>) -> Result<PartnerConfig, Status> {
        let p = self.gateway.calling_partner(request)?;
        if p.format() != yrdx_adapters::Partner::Canonical {
            return Err(Status::permission_denied(format!("the Records API is Shanghai's; {} uses Exchange", p.name)));
        }
        Ok(p.clone())
    }

    /// Submits one record as Shanghai's document. Idempotency depends on what the caller sent
    /// (the message id and the record), never on when: a retry of the same call a second later
    /// gets the first reply with `duplicate = true`, whatever time its envelope is stamped with.
    async fn submit_record(
        &self,
        partner: PartnerConfig,
        message_id: String,
        record: Record,
    ) -> Result<SubmitReply, Status> {
        let g = &self.gateway;
        let envelope = Envelope {
            message_id,
            sender: partner.region.clone(),
            receiver: partner.region.clone(),
            sent_at: Some(yrdx_clock::whole_seconds(g.clock.now())),
        };
        // The record's canonical JSON is the idempotency key, as it always was (a retry after an
        // upgrade is still recognised).
        let key = canonical::record_to_value(&record).to_string();
        g.submit_record(&partner, envelope, record, key.as_bytes()).await
    }

    fn today(&self) -> yrdx_proto::Date {
        BeijingTime::of(&self.gateway.clock.now()).date
    }
}

#[tonic::async_trait]
impl Records for RecordsService {
    async fn submit(&self, request: Request<RecordsSubmitRequest>) -> Result<Response<SubmitReply>, Status> {
        let partner = self.shanghai(&request)?;
        let req = request.into_inner();
        use records_submit_request::Record as R;
        let record = match req.record.ok_or_else(|| Status::invalid_argument("record: required"))? {
            R::Plan(r) => Record::Plan(r),
            R::Sampling(r) => Record::Sampling(r),
            R::Inspection(r) => Record::Inspection(r),
            R::CaseTransfer(r) => Record::CaseTransfer(r),
            R::CaseFeedback(r) => Record::CaseFeedback(r),
            R::RiskSignal(r) => Record::RiskSignal(r),
            R::ResponsibilityReport(r) => Record::ResponsibilityReport(r),
        };
        self.submit_record(partner, req.message_id, record).await.map(Response::new)
    }

    async fn act_on_case(&self, request: Request<ActOnCaseRequest>) -> Result<Response<DisposalCase>, Status> {
        let partner = self.shanghai(&request)?;
        let req = request.into_inner();
        let feedback = req.feedback.ok_or_else(|| Status::invalid_argument("feedback: required"))?;
        let case_id = feedback.case_id.clone();
        self.submit_record(partner, req.message_id, Record::CaseFeedback(feedback)).await?;
        let case = self
            .gateway
            .store
            .case(&case_id)
            .await
            .map_err(store_unavailable)?
            .ok_or_else(|| Status::not_found(format!("case {case_id}")))?;
        Ok(Response::new(case))
    }

    async fn get_record(&self, request: Request<GetRecordRequest>) -> Result<Response<GetRecordReply>, Status> {
        self.shanghai(&request)?;
        let req = request.into_inner();
        let kind = match RecordKind::from_name(&req.kind) {
            Some(
                k @ (RecordKind::Plan
                | RecordKind::Sampling
                | RecordKind::Inspection
                | RecordKind::CaseTransfer
                | RecordKind::RiskSignal),
            ) => k,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "kind '{}': expected plan, sampling, inspection, case_transfer or risk_signal",
                    req.kind
                )))
            }
        };
        let stored = self
            .gateway
            .store
            .record(kind, &req.id)
            .await
            .map_err(store_unavailable)?
            .ok_or_else(|| Status::not_found(format!("no {} {}", req.kind, req.id)))?;
        use get_record_reply::Record as R;
        let record = match stored {
            Record::Plan(r) => R::Plan(r),
            Record::Sampling(r) => R::Sampling(r),
            Record::Inspection(r) => R::Inspection(r),
            Record::CaseTransfer(r) => R::DisposalCase(r),
            Record::RiskSignal(r) => R::RiskSignal(r),
            other => return Err(internal(format!("stored {} {} read back as {}", req.kind, req.id, other.kind()))),
        };
        Ok(Response::new(GetRecordReply { record: Some(record) }))
    }

    async fn list_cases(&self, request: Request<ListCasesRequest>) -> Result<Response<ListCasesReply>, Status> {
        self.shanghai(&request)?;
        let req = request.into_inner();
        let today = self.today();
        let mut cases = Vec::new();
        for case in self.gateway.store.cases().await.map_err(store_unavailable)? {
            let overdue = disposal::is_overdue(&case, &today);
            let matches = (req.status == 0 || req.status == case.status)
                && (req.region.is_empty() || req.region == case.origin_region || req.region == case.responsible_region)
                && (!req.overdue_only || overdue);
            if matches {
                cases.push(CaseView { case: Some(case), overdue });
            }
        }
        Ok(Response::new(ListCasesReply { cases }))
    }

    async fn get_plan_summary(&self, request: Request<PlanSummaryRequest>) -> Result<Response<PlanSummary>, Status> {
        let caller = self.gateway.calling_partner(&request)?;
        let plan_id = request.into_inner().plan_id;
        let store = &self.gateway.store;
        let plan = store.plan(&plan_id).await.map_err(store_unavailable)?;
        let held = if plan.is_some() {
            store.plan_records(&plan_id).await.map_err(store_unavailable)?
        } else {
            Default::default()
        };
        let plan = plan.ok_or_else(|| Status::not_found(format!("plan {plan_id}")))?;
        if caller.format() != yrdx_adapters::Partner::Canonical
            && !plan.participants.iter().any(|p| p.region == caller.region)
        {
            return Err(Status::permission_denied(format!("{} does not take part in plan {plan_id}", caller.name)));
        }
        let rows = plan_summary::summarise(&plan, &held, &self.today())
            .into_iter()
            .map(|r| PlanSummaryRow {
                nonconforming_rate: r.nonconforming_rate(),
                region: r.region,
                category: r.category,
                quota: r.quota,
                sampled: r.sampled,
                results: r.results,
                conforming: r.conforming,
                nonconforming: r.nonconforming,
                open_cases: r.open_cases,
                overdue_cases: r.overdue_cases,
            })
            .collect();
        Ok(Response::new(PlanSummary { plan_id, rows }))
    }
}
