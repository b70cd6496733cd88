//! The gateway's shared state (`Gateway`): the configuration and calendar in force, the store,
//! the clock, rate limiters, mailbox wake-ups and last contact. The services and the timers hold
//! it; what a submission does with it is in `intake.rs`.

use crate::config::Deadlines;
use crate::config::{Config, PartnerConfig};
use crate::faults::Faults;
use crate::store::{NewDelivery, Store};
use governor::{DefaultDirectRateLimiter, Quota};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use tokio::sync::{watch, Notify};
use tonic::Status;
use tracing::warn;
use yrdx_adapters::Record;
use yrdx_clock::Clock;
use yrdx_proto::calendar::Calendar;
use yrdx_proto::v1::Envelope;

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
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Deliberate faults (only settable with the `fault-injection` feature).
    pub(crate) faults: Faults,
    /// Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
    /// The receipts' and chain heads' signing key (`[evidence]`; none: no receipts).
    pub evidence: Option<Arc<crate::receipts::Evidence>>,
    /// The last hour of submissions per partner and minute, for the operators' console.
    pub activity: crate::activity::SubmissionActivity,
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

    /// The calling partner's registry entry (operators and suspended partners are refused), its
    /// contact noted: what every partner-facing handler starts with.
    pub(crate) fn calling_partner<T>(
        &self,
        request: &tonic::Request<T>,
    ) -> Result<crate::config::PartnerConfig, tonic::Status> {
        let partner = crate::identity::partner(request, &self.config())?.clone();
        self.contact(&partner.name);
        Ok(partner)
    }

    pub(crate) fn contact(&self, partner: &str) {
        let now = self.clock.now();
        self.contacts.lock().unwrap_or_else(|p| p.into_inner()).insert(partner.to_string(), now);
    }

    pub(crate) fn mailbox(&self, region: &str) -> Arc<Notify> {
        let mut m = self.mailboxes.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(region.to_string()).or_default().clone()
    }

    /// What Submit and Check both ask of a document before decoding it: the partner's rate
    /// limit, then the size limit (`RESOURCE_EXHAUSTED` naming it).
    pub(crate) fn admit(&self, partner: &PartnerConfig, bytes: Vec<u8>) -> Result<Vec<u8>, Status> {
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
}
