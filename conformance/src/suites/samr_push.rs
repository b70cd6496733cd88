//! The `samr-push` suite: yrdx plays SAMR's intake ([`crate::samr_simulator`]) and the gateway
//! under test pushes packages to it. A case submits records to the gateway as a partner (records
//! that SAMR must receive: high or nationwide risk signals, spot-check results), tells the intake
//! how to answer (busy `429`/`503` with `Retry-After`, a rejection), waits for the package holding
//! the records and judges every attempt of it: SAMR's own check (GB18030, structure, SM3 digest),
//! the reporting unit, the package type, the batch limit, the waits after a busy answer, and —
//! through the gateway's Admin service — parking and resend. A last case judges the numbering of
//! every package the run saw: per day, without gaps, never reused for other bytes.

use crate::report::{Evidence, Finding, Payload};
use crate::sim::samr::{IntakeEvent, PlannedAnswer, SamrIntake};
use crate::suite::{
    Actor, LoadedCase, Placeholders, SamrAnswerStep, SamrPackageStep, SamrParkedStep, SamrResendStep, Step, SubmitStep,
};
use crate::suites::live::{
    case_records, code_name, omitted_for_partner, peer_need, unmet_need, KnownNeed, LiveOutcome, LiveTarget,
    PartnerProfile,
};
use crate::tls::ClientIdentity;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use yrdx_adapters::samr;
use yrdx_adapters::Record;
use yrdx_proto::v1::admin_client::AdminClient;
use yrdx_proto::v1::exchange_client::ExchangeClient;
use yrdx_proto::v1::{Envelope, ParkedPackagesRequest, ResendPackageRequest, SubmitRequest};

/// A gateway whose SAMR docking is tested, and the intake it pushes to.
#[derive(Clone)]
pub struct SamrPushTarget {
    /// The gateway (its URL, CA and the partners the suite submits as: `me`, and `peer` for plans).
    pub gateway: LiveTarget,
    /// An operator's certificate for the gateway's Admin service (parking and resend); the cases
    /// needing it are skipped without it.
    pub operator: Option<ClientIdentity>,
    /// The intake the gateway's `[samr] intake_url` points at, run by yrdx.
    pub intake: Arc<SamrIntake>,
    /// The reporting unit (`BSDW`) every package must carry: `310000`.
    pub reporting_unit: String,
    /// How long a `samr_package` step waits for a package: the gateway's `batch_max_age_secs`
    /// and the longest `Retry-After` of the case, with some margin.
    pub package_wait: Duration,
    /// The most records a package may hold (SAMR's limit, or the gateway's lower
    /// `batch_max_records`).
    pub batch_max_records: usize,
}

impl std::fmt::Debug for SamrPushTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamrPushTarget")
            .field("gateway", &self.gateway.url)
            .field("intake", &self.intake.url())
            .field("reporting_unit", &self.reporting_unit)
            .field("package_wait", &self.package_wait)
            .field("batch_max_records", &self.batch_max_records)
            .finish()
    }
}

/// The default of [`SamrPushTarget::package_wait`]: the gateway's default `batch_max_age_secs`
/// (60 s), a retry after a busy answer and margin.
pub const DEFAULT_PACKAGE_WAIT: Duration = Duration::from_secs(90);

/// Checks, before any case, that the gateway answers as the partner, and that the operator's
/// certificate is an operator's.
pub async fn preflight(t: &SamrPushTarget) -> Result<(), crate::suites::TargetError> {
    crate::suites::live::preflight(&t.gateway).await?;
    if let Some(op) = &t.operator {
        let sans = crate::tls::pem_san(&op.cert_pem);
        if !sans.iter().any(|s| s.starts_with("URI:urn:yrdx:operator:")) {
            let named = if sans.is_empty() { "no subject alternative name".to_string() } else { sans.join(", ") };
            return Err(crate::suites::TargetError::NotAnOperator { named });
        }
    }
    Ok(())
}

/// Message ids of this process's submissions: each gets a new one.
static MESSAGE_COUNTER: AtomicU32 = AtomicU32::new(1);

/// State of one case as it runs.
struct PushRun<'a> {
    target: &'a SamrPushTarget,
    fill: &'a Placeholders,
    records: BTreeMap<String, Record>,
    /// Saved packages: name → (number, bytes of its last attempt).
    saved: BTreeMap<String, (String, Vec<u8>)>,
    /// Intake events before this index belong to earlier steps (or cases).
    cursor: usize,
    findings: Vec<Finding>,
    evidence: Vec<Evidence>,
    step: usize,
}

/// Runs one case of the `samr-push` suite; its records are built from the vectors in `vectors`.
pub async fn run_case(
    case: &LoadedCase,
    target: &SamrPushTarget,
    fill: &Placeholders,
    vectors: &std::path::Path,
) -> LiveOutcome {
    let def = &case.def;
    let needs = [
        peer_need(target.gateway.peer.is_some()),
        KnownNeed {
            name: "operator",
            met: target.operator.is_some(),
            missing: "needs an operator's certificate for Admin: give --operator-cert and --operator-key",
        },
    ];
    if let Some(outcome) = omitted_for_partner(def, &target.gateway.me.name).or_else(|| unmet_need(def, &needs)) {
        return outcome;
    }
    // The intake's events so far, before the records are built: building them sends nothing.
    let cursor = target.intake.events().len();
    let records = match case_records(def, fill, vectors) {
        Ok(records) => records,
        Err(outcome) => return outcome,
    };
    let mut run =
        PushRun { target, fill, records, saved: BTreeMap::new(), cursor, findings: vec![], evidence: vec![], step: 0 };
    // Answers an earlier case planned and the gateway never asked for must not reach this one.
    target.intake.clear_plan();
    let mut outcome = None;
    for (i, step) in def.steps.iter().enumerate() {
        run.step = i + 1;
        let result = match step {
            Step::Submit(s) => run.submit(s).await,
            Step::SamrAnswer(s) => {
                run.answer(s);
                Ok(())
            }
            Step::SamrPackage(s) => run.package(s).await,
            Step::SamrParked(s) => run.parked(s).await,
            Step::SamrResend(s) => run.resend(s).await,
            Step::SamrNumbering => run.numbering(),
            Step::Wait(w) => {
                tokio::time::sleep(Duration::from_millis(w.ms.unwrap_or(1000))).await;
                Ok(())
            }
            other => Err(PushStepError::OtherSuite { step: other.name() }),
        };
        if let Err(e) = result {
            outcome = Some(LiveOutcome::Error(format!("step {}: {e}", i + 1), std::mem::take(&mut run.evidence)));
            break;
        }
        if !run.findings.is_empty() {
            break;
        }
    }
    target.intake.clear_plan();
    outcome.unwrap_or(LiveOutcome::Ran(run.findings, run.evidence))
}

/// `SJB-{BSDW}-{yyyyMMdd}-{NNNN}` → (BSDW, day, sequence).
fn parse_number(number: &str) -> Option<(String, String, u32)> {
    let rest = number.strip_prefix("SJB-")?;
    let mut parts = rest.rsplitn(3, '-');
    let seq = parts.next()?;
    let day = parts.next()?;
    let unit = parts.next()?;
    if seq.len() != 4 || day.len() != 8 || !day.bytes().chain(seq.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((unit.to_string(), day.to_string(), seq.parse().ok()?))
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What a report shows of one request the intake received.
fn attempt_evidence(step: usize, e: &IntakeEvent, intake_url: &str) -> Evidence {
    let view = json!({
        "package": e.number,
        "type": e.package_type,
        "BSDW": e.reporting_unit,
        "records": e.record_count,
        "SAMR check": e.problem.clone().unwrap_or_else(|| "passed (GB18030, structure, SM3 digest)".into()),
        "text": samr::gb18030_text(&e.body).chars().take(2000).collect::<String>(),
    });
    let answer = match e.retry_after_secs {
        Some(s) => json!({"status": e.status, "Retry-After": s}),
        None => json!({"status": e.status, "JSZT": if e.accepted { 1 } else { 0 }, "CWXX": e.reason}),
    };
    Evidence {
        step,
        actor: "gateway under test".into(),
        method: format!("POST {intake_url} (received by yrdx as SAMR)"),
        status: e.status.to_string(),
        request: Payload::of(&e.body, Some(view)),
        response: Payload::view(answer),
        tls: None,
        duration_ms: 0,
    }
}

/// Why a step of the `samr-push` suite could not run (the case, the tool or its configuration
/// is wrong, not the gateway: the case ends in error).
#[derive(Debug, thiserror::Error)]
pub enum PushStepError {
    /// The step belongs to another suite.
    #[error("{step} steps belong to another suite, not samr-push")]
    OtherSuite {
        /// The step's `do`.
        step: &'static str,
    },
    /// A submit step uses a key this suite does not take.
    #[error("samr-push submit steps take `by`, `records` and `expect.status` only")]
    SubmitKeys,
    /// A step acts as the peer, and none was given.
    #[error("no peer partner given")]
    NoPeer,
    /// A case's records cannot be written in the actor's format.
    #[error("cannot encode for {partner}: {source}")]
    Encode {
        /// The actor.
        partner: String,
        /// The encoder's error.
        source: yrdx_adapters::EncodeError,
    },
    /// A channel could not be set up.
    #[error(transparent)]
    Channel(#[from] crate::suites::live::ChannelError),
    /// A step names a package no earlier step saved.
    #[error("no package saved as {name:?}")]
    NotSaved {
        /// The name.
        name: String,
    },
    /// An Admin step, and no operator certificate was given.
    #[error("no operator certificate given")]
    NoOperator,
    /// `samr_numbering` found nothing to judge.
    #[error("no readable package reached the intake in this run: nothing to judge")]
    NothingToNumber,
}

impl PushRun<'_> {
    fn profile(&self, by: Actor) -> Result<&PartnerProfile, PushStepError> {
        match by {
            Actor::Myself => Ok(&self.target.gateway.me),
            Actor::Peer => self.target.gateway.peer.as_ref().ok_or(PushStepError::NoPeer),
        }
    }

    /// Submits records as a partner; only `by`, `records` and `expect.status` apply here.
    async fn submit(&mut self, s: &SubmitStep) -> Result<(), PushStepError> {
        if s.raw.is_some() || s.oversized.is_some() || s.repeat || s.sender.is_some() || !s.replace.is_empty() {
            return Err(PushStepError::SubmitKeys);
        }
        let p = self.profile(s.by)?.clone();
        let records: Vec<Record> = s.records.iter().filter_map(|n| self.records.get(n).cloned()).collect();
        let n = MESSAGE_COUNTER.fetch_add(1, Ordering::SeqCst);
        let message_id = self.fill.fill(&format!("C-${{RUN}}-SP{n:04}"));
        let envelope = Envelope {
            message_id,
            sender: p.region.clone(),
            receiver: "310000".into(),
            sent_at: Some(crate::clock::now()),
        };
        let bytes = p
            .format
            .encode(&envelope, &records, 1)
            .map_err(|source| PushStepError::Encode { partner: p.name.clone(), source })?;
        let (channel, facts) = self.target.gateway.channel(Some(&p.identity)).await?;
        let started = Instant::now();
        let result = ExchangeClient::new(channel).submit(SubmitRequest { document: bytes.bytes.clone() }).await;
        let status = match &result {
            Ok(_) => "OK".to_string(),
            Err(st) => code_name(st.code()).to_string(),
        };
        let response = match &result {
            Ok(r) => serde_json::to_value(r.get_ref()).unwrap_or_default(),
            Err(st) => json!({"code": status, "message": st.message()}),
        };
        self.evidence.push(Evidence {
            step: self.step,
            actor: p.name.clone(),
            method: "yrdx.v1.Exchange/Submit".into(),
            status: status.clone(),
            request: Payload::of(&bytes.bytes, None),
            response: Payload::view(response),
            tls: facts.lock().ok().and_then(|f| f.clone()),
            duration_ms: started.elapsed().as_millis() as u64,
        });
        let want = self.fill.fill(&s.expect.status);
        if status != want {
            let detail = match &result {
                Err(st) => format!("{status}: {}", st.message()),
                Ok(_) => status,
            };
            self.findings.push(Finding::new(
                "Submit answers the expected status",
                format!("step {} Submit", self.step),
                want,
                detail,
            ));
        }
        Ok(())
    }

    fn answer(&mut self, s: &SamrAnswerStep) {
        let planned: Vec<PlannedAnswer> = s
            .answers
            .iter()
            .map(|a| match (&a.reject, a.status) {
                (Some(reason), _) => PlannedAnswer::Reject { reason: self.fill.fill(reason) },
                (None, Some(status)) => {
                    PlannedAnswer::Busy { status, retry_after_secs: a.retry_after_secs.unwrap_or(2) }
                }
                (None, None) => PlannedAnswer::Busy { status: 503, retry_after_secs: a.retry_after_secs.unwrap_or(2) },
            })
            .collect();
        self.target.intake.plan(planned);
    }

    /// Waits for the package holding the step's records to be answered finally (accepted, or
    /// rejected when so expected), then judges each of its attempts.
    async fn package(&mut self, s: &SamrPackageStep) -> Result<(), PushStepError> {
        let ids: Vec<String> = s.records.iter().filter_map(|n| self.records.get(n)).map(Record::id).collect();
        let wait = s.within_ms.map(Duration::from_millis).unwrap_or(self.target.package_wait);
        let deadline = Instant::now() + wait;
        let at = format!("step {} {}", self.step, s.package);
        let holds = |e: &IntakeEvent| {
            let text = samr::gb18030_text(&e.body);
            e.number.is_some() && ids.iter().all(|id| text.contains(&format!(">{id}<")))
        };
        let (attempts, end) = loop {
            let events = self.target.intake.events();
            let fresh = events.get(self.cursor..).unwrap_or_default();
            if let Some(number) = fresh.iter().find(|e| holds(e)).and_then(|e| e.number.clone()) {
                let mine: Vec<(usize, &IntakeEvent)> =
                    fresh.iter().enumerate().filter(|(_, e)| e.number.as_deref() == Some(number.as_str())).collect();
                if let Some((i, last)) = mine.iter().rev().find(|(_, e)| e.status == 200) {
                    if last.accepted == s.expect.accepted || Instant::now() >= deadline {
                        let end = self.cursor + i + 1;
                        break (mine.iter().map(|(_, e)| (*e).clone()).collect::<Vec<_>>(), end);
                    }
                }
            }
            if Instant::now() >= deadline {
                let seen: Vec<String> = fresh
                    .iter()
                    .map(|e| format!("{} {}", e.status, e.number.clone().unwrap_or_else(|| "(unreadable)".into())))
                    .collect();
                self.findings.push(Finding::new(
                    "the gateway pushes a package holding the records to SAMR",
                    at,
                    format!("a {} package holding {} within {} s", s.package, ids.join(", "), wait.as_secs()),
                    if seen.is_empty() { "no request reached the intake".into() } else { seen.join("; ") },
                ));
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        self.cursor = end;
        for e in &attempts {
            self.evidence.push(attempt_evidence(self.step, e, &self.target.intake.url()));
        }
        self.judge(s, &attempts, &at);
        if let (Some(name), Some(last)) = (&s.save, attempts.last()) {
            self.saved.insert(name.clone(), (last.number.clone().unwrap_or_default(), last.body.clone()));
        }
        Ok(())
    }

    fn judge(&mut self, s: &SamrPackageStep, attempts: &[IntakeEvent], at: &str) {
        let Some(last) = attempts.last() else { return };
        let number = last.number.clone().unwrap_or_default();
        let mut found = Vec::new();
        for (k, e) in attempts.iter().enumerate() {
            let here = format!("{at}: {number} attempt {}", k + 1);
            if let Some(p) = &e.problem {
                found.push(Finding::new(
                    "SAMR's check passes: GB18030, every element, the record count and the SM3 digest of SJ",
                    here.clone(),
                    "no problem",
                    p.clone(),
                ));
            }
            if e.reporting_unit.as_deref() != Some(self.target.reporting_unit.as_str()) {
                found.push(Finding::new(
                    "the reporting unit BSDW is Shanghai's",
                    format!("{here}: /SJB/BT/BSDW"),
                    self.target.reporting_unit.clone(),
                    e.reporting_unit.clone().unwrap_or_default(),
                ));
            }
            if e.package_type.as_deref() != Some(s.package.as_str()) {
                found.push(Finding::new(
                    "the package type SJLX fits its records",
                    format!("{here}: /SJB/BT/SJLX"),
                    s.package.clone(),
                    e.package_type.clone().unwrap_or_default(),
                ));
            }
            if !(1..=self.target.batch_max_records).contains(&e.record_count) {
                found.push(Finding::new(
                    "a package holds 1 to the batch limit of records",
                    format!("{here}: /SJB/BT/JLS"),
                    format!("1–{}", self.target.batch_max_records),
                    e.record_count.to_string(),
                ));
            }
            match parse_number(&number) {
                Some((unit, _, _)) if unit == self.target.reporting_unit => {}
                _ => found.push(Finding::new(
                    "the package number is SJB-{BSDW}-{yyyyMMdd}-{NNNN}",
                    format!("{here}: /SJB/BT/SJBBH"),
                    format!("SJB-{}-yyyyMMdd-NNNN", self.target.reporting_unit),
                    number.clone(),
                )),
            }
            if k > 0 && e.body != attempts[k - 1].body {
                found.push(Finding::new(
                    "a retry sends the same package (same number, same bytes)",
                    format!("{here}: body"),
                    format!("SHA-256 {}", digest(&attempts[k - 1].body)),
                    format!("SHA-256 {}", digest(&e.body)),
                ));
            }
            if let (Some(secs), Some(next)) = (e.retry_after_secs, attempts.get(k + 1)) {
                let waited = next.at.saturating_duration_since(e.at);
                if waited < Duration::from_secs(secs) {
                    found.push(Finding::new(
                        "after a busy answer, the next attempt waits the Retry-After",
                        format!("{here}: {} with Retry-After: {secs}", e.status),
                        format!("the next attempt at least {secs} s later"),
                        format!("the next attempt {} ms later", waited.as_millis()),
                    ));
                }
            }
        }
        let busy = attempts.iter().filter(|e| e.retry_after_secs.is_some()).count() as u32;
        if busy < s.expect.busy_answers {
            found.push(Finding::new(
                "the planned busy answers went to this package, and it was retried after them",
                format!("{at}: {number}"),
                format!("{} busy answer(s) before the receipt", s.expect.busy_answers),
                format!("{busy}"),
            ));
        }
        if last.accepted != s.expect.accepted {
            found.push(Finding::new(
                "SAMR's last receipt for the package",
                format!("{at}: {number}: HZ/JSZT"),
                if s.expect.accepted { "1 (accepted)" } else { "0 (rejected)" },
                format!("{} {}", if last.accepted { 1 } else { 0 }, last.reason),
            ));
        }
        if let Some(name) = &s.expect.resent_of {
            match self.saved.get(name) {
                Some((n, bytes)) if *n == number && *bytes == last.body => {}
                Some((n, bytes)) => found.push(Finding::new(
                    "a resent package keeps its number and bytes (never renumbered)",
                    format!("{at}: {number}"),
                    format!("{n} (SHA-256 {})", digest(bytes)),
                    format!("{number} (SHA-256 {})", digest(&last.body)),
                )),
                None => found.push(Finding::new(
                    "a resent package keeps its number and bytes (never renumbered)",
                    format!("{at}: {number}"),
                    format!("the package saved as {name}"),
                    "(no package was saved under that name: the case is wrong)",
                )),
            }
        }
        self.findings.extend(found);
    }

    fn saved_number(&self, name: &str) -> Result<String, PushStepError> {
        self.saved.get(name).map(|(n, _)| n.clone()).ok_or_else(|| PushStepError::NotSaved { name: name.to_string() })
    }

    async fn admin(&self) -> Result<AdminClient<Channel>, PushStepError> {
        let op = self.target.operator.as_ref().ok_or(PushStepError::NoOperator)?;
        let (channel, _) = self.target.gateway.channel(Some(op)).await?;
        Ok(AdminClient::new(channel))
    }

    async fn parked(&mut self, s: &SamrParkedStep) -> Result<(), PushStepError> {
        let number = self.saved_number(&s.package)?;
        let mut admin = self.admin().await?;
        let started = Instant::now();
        let at = format!("step {} Admin/ParkedPackages", self.step);
        // The gateway records SAMR's receipt right after it came: give it a moment.
        let deadline = Instant::now() + self.target.gateway.step_timeout;
        let listed = loop {
            let reply = admin.parked_packages(ParkedPackagesRequest {}).await;
            let listed = match reply {
                Ok(r) => r.into_inner().packages,
                Err(st) => {
                    self.findings.push(Finding::new(
                        "an operator lists the parked packages",
                        at,
                        "OK",
                        format!("{}: {}", code_name(st.code()), st.message()),
                    ));
                    return Ok(());
                }
            };
            if listed.iter().any(|p| p.number == number) || Instant::now() >= deadline {
                break listed;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let view: Vec<_> = listed
            .iter()
            .map(|p| json!({"number": p.number, "type": p.package_type, "reason": p.reason, "attempts": p.attempts}))
            .collect();
        self.evidence.push(Evidence {
            step: self.step,
            actor: "operator".into(),
            method: "yrdx.v1.Admin/ParkedPackages".into(),
            status: "OK".into(),
            request: Payload::view(json!({})),
            response: Payload::view(json!({ "packages": view })),
            tls: None,
            duration_ms: started.elapsed().as_millis() as u64,
        });
        match listed.iter().find(|p| p.number == number) {
            None => self.findings.push(Finding::new(
                "a package SAMR rejected is parked for an operator, never dropped",
                at,
                format!("{number} among the parked packages"),
                if listed.is_empty() {
                    "(none parked)".to_string()
                } else {
                    listed.iter().map(|p| p.number.clone()).collect::<Vec<_>>().join(", ")
                },
            )),
            Some(p) => {
                if let Some(words) = &s.reason_contains {
                    let words = self.fill.fill(words);
                    if !p.reason.contains(&words) {
                        self.findings.push(Finding::new(
                            "the parked package shows SAMR's reason",
                            format!("{at}: {number}: reason"),
                            format!("contains {words:?}"),
                            p.reason.clone(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    async fn resend(&mut self, s: &SamrResendStep) -> Result<(), PushStepError> {
        let number = self.saved_number(&s.package)?;
        let mut admin = self.admin().await?;
        let started = Instant::now();
        let reply = admin.resend_package(ResendPackageRequest { number: number.clone() }).await;
        let (status, view) = match &reply {
            Ok(r) => ("OK".to_string(), json!({"requeued": r.get_ref().requeued})),
            Err(st) => {
                (code_name(st.code()).to_string(), json!({"code": code_name(st.code()), "message": st.message()}))
            }
        };
        self.evidence.push(Evidence {
            step: self.step,
            actor: "operator".into(),
            method: "yrdx.v1.Admin/ResendPackage".into(),
            status: status.clone(),
            request: Payload::view(json!({ "number": number })),
            response: Payload::view(view),
            tls: None,
            duration_ms: started.elapsed().as_millis() as u64,
        });
        let requeued = reply.as_ref().map(|r| r.get_ref().requeued).unwrap_or(false);
        if !requeued {
            self.findings.push(Finding::new(
                "an operator resends a parked package",
                format!("step {} Admin/ResendPackage {number}", self.step),
                "OK, requeued",
                match reply {
                    Ok(_) => "OK, not requeued".to_string(),
                    Err(st) => format!("{status}: {}", st.message()),
                },
            ));
        }
        Ok(())
    }

    /// Every readable package the intake saw: per day, numbers follow without gaps; a number
    /// is never used for other bytes.
    fn numbering(&mut self) -> Result<(), PushStepError> {
        let events = self.target.intake.events();
        let at = format!("step {} numbering", self.step);
        let mut days: BTreeMap<String, BTreeMap<u32, String>> = BTreeMap::new();
        let mut bodies: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in events.iter().filter(|e| e.problem.is_none()) {
            let Some(number) = &e.number else { continue };
            let Some((_, day, seq)) = parse_number(number) else { continue };
            days.entry(day).or_default().insert(seq, number.clone());
            let d = digest(&e.body);
            let seen = bodies.entry(number.clone()).or_default();
            if !seen.contains(&d) {
                seen.push(d);
            }
        }
        if days.is_empty() {
            return Err(PushStepError::NothingToNumber);
        }
        let mut shown = Vec::new();
        for (day, numbers) in &days {
            let seqs: Vec<u32> = numbers.keys().copied().collect();
            shown.push(json!({"day": day, "numbers": numbers.values().collect::<Vec<_>>()}));
            for pair in seqs.windows(2) {
                if pair[1] != pair[0] + 1 {
                    self.findings.push(Finding::new(
                        "package numbers follow per day without gaps",
                        format!("{at}: day {day}"),
                        format!("after {} comes {:04}", numbers[&pair[0]], pair[0] + 1),
                        numbers[&pair[1]].clone(),
                    ));
                }
            }
        }
        for (number, seen) in &bodies {
            if seen.len() > 1 {
                self.findings.push(Finding::new(
                    "a package number is never reused for other contents",
                    format!("{at}: {number}"),
                    "one package (one SHA-256) per number",
                    format!("{} different packages: {}", seen.len(), seen.join(", ")),
                ));
            }
        }
        self.evidence.push(Evidence {
            step: self.step,
            actor: "yrdx as SAMR".into(),
            method: "package numbers received in this run".into(),
            status: if self.findings.is_empty() { "in order".into() } else { "gap or reuse".into() },
            request: Payload::view(json!({})),
            response: Payload::view(json!({ "days": shown })),
            tls: None,
            duration_ms: 0,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_numbers_are_parsed_strictly() {
        assert_eq!(parse_number("SJB-310000-20240315-0007"), Some(("310000".into(), "20240315".into(), 7)));
        assert_eq!(parse_number("SJB-310000-20240315-7"), None);
        assert_eq!(parse_number("SJB-310000-2024031-0007"), None);
        assert_eq!(parse_number("XYZ-310000-20240315-0007"), None);
        assert_eq!(parse_number("SJB-310000-20240315-00a7"), None);
    }
}
