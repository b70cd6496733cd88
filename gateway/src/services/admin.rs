//! The operators' `yrdx.v1.Admin` service: mailboxes, parked SAMR packages, resend.

use crate::identity::{self, Caller};
use crate::state::Gateway;
use crate::status::store_unavailable;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use yrdx_proto::v1::admin_server::Admin;
use yrdx_proto::v1::*;

/// The `Admin` service.
pub struct AdminService {
    gateway: Arc<Gateway>,
    reloader: Arc<crate::reload::Reloader>,
}

impl AdminService {
    /// The service over shared gateway state, reloading with `reloader`.
    pub fn new(gateway: Arc<Gateway>, reloader: Arc<crate::reload::Reloader>) -> AdminService {
        AdminService { gateway, reloader }
    }

    fn operator<T>(&self, request: &Request<T>) -> Result<String, Status> {
        match identity::caller(request, &self.gateway.config())? {
            Caller::Operator(name) => Ok(name),
            Caller::Partner(name) => Err(Status::permission_denied(format!("partner {name} is not an operator"))),
        }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn mailboxes(&self, request: Request<MailboxesRequest>) -> Result<Response<MailboxesReply>, Status> {
        self.operator(&request)?;
        let g = &self.gateway;
        let mut mailboxes = Vec::new();
        for p in &g.config().partners {
            mailboxes.push(MailboxStatus {
                partner: p.name.clone(),
                region: p.region.clone(),
                depth: g.store.depth(&p.region).await.map_err(store_unavailable)?,
                last_contact: g.last_contact(&p.name),
            });
        }
        Ok(Response::new(MailboxesReply { mailboxes }))
    }

    async fn parked_packages(
        &self,
        request: Request<ParkedPackagesRequest>,
    ) -> Result<Response<ParkedPackagesReply>, Status> {
        self.operator(&request)?;
        let parked = self.gateway.store.samr_parked().await.map_err(store_unavailable)?;
        let packages = parked
            .into_iter()
            .map(|p| ParkedPackage {
                number: p.number,
                package_type: p.package_type,
                reason: p.reason,
                attempts: p.attempts,
            })
            .collect();
        Ok(Response::new(ParkedPackagesReply { packages }))
    }

    async fn resend_package(
        &self,
        request: Request<ResendPackageRequest>,
    ) -> Result<Response<ResendPackageReply>, Status> {
        let operator = self.operator(&request)?;
        let number = request.into_inner().number;
        let requeued = self.gateway.store.samr_resend(&number, &operator).await.map_err(store_unavailable)?;
        if !requeued {
            return Err(Status::failed_precondition(format!("package {number} is not parked")));
        }
        tracing::info!(%operator, %number, "parked SAMR package requeued");
        Ok(Response::new(ResendPackageReply { requeued }))
    }

    async fn calendar_status(
        &self,
        request: Request<CalendarStatusRequest>,
    ) -> Result<Response<CalendarStatusReply>, Status> {
        self.operator(&request)?;
        let cases = self.gateway.store.cases().await.map_err(store_unavailable)?;
        let mut provisional_cases = Vec::new();
        for case in cases {
            let status = CaseStatus::try_from(case.status).unwrap_or(CaseStatus::Unspecified);
            if case.due_on_provisional && !yrdx_proto::validate::is_final(status) {
                provisional_cases.push(case.case_id);
            }
        }
        let today = yrdx_proto::civil::BeijingTime::of(&self.gateway.clock.now()).date;
        let calendar = self.gateway.calendar();
        let range = calendar.covered_range();
        Ok(Response::new(CalendarStatusReply {
            first_day: range.map(|r| r.0),
            last_day: range.map(|r| r.1),
            days_left: range.map(|r| r.1.to_days() - today.to_days()).unwrap_or(0),
            warning: crate::workflow::calendar_watch::year_end_warning(&calendar, &today).unwrap_or_default(),
            provisional_cases,
        }))
    }

    async fn reload(&self, request: Request<ReloadRequest>) -> Result<Response<ReloadReply>, Status> {
        let operator = self.operator(&request)?;
        tracing::info!(%operator, "reload asked for");
        let r = self.reloader.reload().await.map_err(|e| {
            Status::failed_precondition(format!("reload refused, the running configuration stays: {e}"))
        })?;
        Ok(Response::new(ReloadReply {
            summary: r.summary(),
            partners: r.partners,
            suspended: r.suspended,
            connections_closed: u32::try_from(r.connections_closed).unwrap_or(u32::MAX),
        }))
    }
}
