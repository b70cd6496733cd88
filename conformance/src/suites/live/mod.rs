//! The live suites (`gateway`, `tls`): runs a case's steps against a gateway over mutual TLS as a
//! given partner, recording every exchange as evidence.

use crate::report::{Evidence, Finding, Payload};
use crate::suite::{Actor, ClientKind, LoadedCase, Placeholders, PlanSummaryStep, ReceiveStep, Step, SubmitStep};
use crate::tls::{ClientIdentity, LegacyOutcome, TlsClient, TlsFacts};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod ack;
mod burst;
mod connect;
mod plan_summary;
mod receive;
mod submit;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::Code;
use tonic_types::StatusExt;
use yrdx_adapters::{canonical, DecodeLimits, Partner, Record, RecordKind};
use yrdx_proto::v1::exchange_client::ExchangeClient;
use yrdx_proto::v1::records_client::RecordsClient;
use yrdx_proto::v1::{AckRequest, Envelope, PlanSummaryRequest, ReceiveRequest, SubmitRequest};

/// A partner as the suite knows it.
#[derive(Debug, Clone)]
pub struct PartnerProfile {
    /// Its name (`jiangsu`).
    pub name: String,
    /// Its region, the envelope sender (`320000`).
    pub region: String,
    /// Its format.
    pub format: Partner,
    /// Its client certificate and key.
    pub identity: ClientIdentity,
}

impl PartnerProfile {
    /// The profile of a known partner (`shanghai`, `jiangsu`, `zhejiang`, `beijing`).
    pub fn known(name: &str, identity: ClientIdentity) -> Option<PartnerProfile> {
        let (n, region, format) = yrdx_pki::DEV_PARTNERS.iter().find(|(n, _, _)| *n == name)?;
        Some(PartnerProfile {
            name: n.to_string(),
            region: region.to_string(),
            format: Partner::from_name(format)?,
            identity,
        })
    }
}

/// A gateway to test.
#[derive(Debug, Clone)]
pub struct LiveTarget {
    /// `https://host:port`.
    pub url: String,
    /// The name its server certificate must carry (`localhost`).
    pub server_name: String,
    /// The CA that signed its server certificate, PEM.
    pub ca_pem: String,
    /// The partner acted as.
    pub me: PartnerProfile,
    /// A second registered partner (deliveries, mailbox isolation), if given.
    pub peer: Option<PartnerProfile>,
    /// A CA the gateway trusts for clients, to mint expired and wrong-SAN certificates.
    pub issuing_ca: Option<(String, String)>,
    /// Submissions of a rate-limit burst (overrides the case's count).
    pub burst: Option<u32>,
    /// The size of an oversized document (overrides the case's), bytes.
    pub oversized_bytes: Option<usize>,
    /// How long one call (connect, Submit, Ack, opening Receive …) may take before the step fails,
    /// so a gateway that never answers fails in seconds, not minutes.
    pub step_timeout: Duration,
    /// The gateway's visibility timeout: how long a delivery sent and not acknowledged stays
    /// invisible before it is sent again (`wait` steps wait past it).
    pub visibility_timeout: Duration,
}

impl LiveTarget {
    /// A target acting as `me` alone against the gateway at `url`: no peer, no issuing CA, the
    /// cases' own burst and oversized sizes, and the default step and visibility timeouts (what a
    /// partner simulator needs).
    pub fn partner(url: String, server_name: String, ca_pem: String, me: PartnerProfile) -> LiveTarget {
        LiveTarget {
            url,
            server_name,
            ca_pem,
            me,
            peer: None,
            issuing_ca: None,
            burst: None,
            oversized_bytes: None,
            step_timeout: DEFAULT_STEP_TIMEOUT,
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
        }
    }
}

/// The default of [`LiveTarget::visibility_timeout`]: the gateway's own default
/// (`visibility_timeout_secs = 60`).
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(60);

/// The default of [`LiveTarget::step_timeout`].
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks, before any case, that the run can test the target at all: the gateway answers, our
/// `--ca` accepts its certificate, and the certificates given are those of the partners named
/// (a certificate of another partner would make the gateway's correct answers look wrong).
pub async fn preflight(t: &LiveTarget) -> Result<(), crate::suites::TargetError> {
    check_partner_certificate("--cert", &t.me)?;
    if let Some(peer) = &t.peer {
        check_partner_certificate("--peer-cert", peer)?;
    }
    let addr = t.authority()?;
    crate::tls::preflight(&addr, &t.ca_pem, Some(&t.me.identity), &t.server_name, &[b"h2"], t.step_timeout)
        .await
        .map(|_| ())
        .map_err(|source| crate::suites::TargetError::Unreachable { flag: "--gateway", url: t.url.clone(), source })
}

/// Refuses a certificate whose SAN does not name `partner` (`URI:urn:yrdx:partner:jiangsu`).
fn check_partner_certificate(flag: &'static str, partner: &PartnerProfile) -> Result<(), crate::suites::TargetError> {
    let want = format!("URI:{}", yrdx_pki::partner_identity(&partner.name));
    let sans = crate::tls::pem_san(&partner.identity.cert_pem);
    if sans.contains(&want) {
        return Ok(());
    }
    let named = if sans.is_empty() { "no subject alternative name".to_string() } else { sans.join(", ") };
    Err(crate::suites::TargetError::NotThePartner { flag, named, partner: partner.name.clone(), want })
}

impl LiveTarget {
    /// `host:port` of the URL.
    pub fn authority(&self) -> Result<String, crate::suites::TargetError> {
        crate::suites::https_authority("--gateway", &self.url)
    }

    /// Opens a gRPC channel presenting `identity`; the TLS facts land in the returned slot.
    pub async fn channel(&self, identity: Option<&ClientIdentity>) -> Result<(Channel, FactsSlot), ChannelError> {
        let tls = TlsClient::new(&self.ca_pem, identity, &self.server_name, &[b"h2"])?;
        self.channel_with(tls)
    }

    /// Opens a gRPC channel over a TLS client of the caller's (its own roots, verifier and
    /// identity); the TLS facts land in the returned slot.
    pub fn channel_with(&self, tls: TlsClient) -> Result<(Channel, FactsSlot), ChannelError> {
        let authority = self.authority()?;
        let plain = format!("http://{authority}");
        let facts: FactsSlot = Arc::new(Mutex::new(None));
        let slot = facts.clone();
        let connector = tower::service_fn(move |_: Uri| {
            let (tls, facts, authority) = (tls.clone(), slot.clone(), authority.clone());
            async move {
                let stream = tls.connect(&authority, &facts).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        });
        // TLS is done by the connector, so the endpoint itself is plain.
        let endpoint = Endpoint::from_shared(plain.clone())
            .map_err(|source| ChannelError::Endpoint { url: plain, source })?
            .connect_timeout(self.step_timeout)
            .timeout(self.step_timeout);
        let channel = endpoint.connect_with_connector_lazy(connector);
        Ok((channel, facts))
    }
}

/// Why a channel to the target could not be set up (the configuration's fault: nothing was sent).
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The target's URL is unusable.
    #[error(transparent)]
    Target(#[from] crate::suites::TargetError),
    /// The TLS credentials are unusable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsSetupError),
    /// tonic refused the endpoint.
    #[error("gRPC endpoint {url}: {source}")]
    Endpoint {
        /// The endpoint's URL.
        url: String,
        /// tonic's error.
        source: tonic::transport::Error,
    },
}

/// The canonical name of a gRPC code (`INVALID_ARGUMENT`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn status_view(s: &tonic::Status) -> Value {
    let violations: Vec<Value> = s
        .get_details_bad_request()
        .map(|b| b.field_violations.iter().map(|v| json!({"field": v.field, "description": v.description})).collect())
        .unwrap_or_default();
    let mut v = json!({"code": code_name(s.code()), "message": s.message()});
    if !violations.is_empty() {
        v["bad_request"] = Value::Array(violations);
    }
    if let Some(r) = s.metadata().get("retry-after").and_then(|r| r.to_str().ok()) {
        v["retry-after"] = Value::String(r.to_string());
    }
    v
}

/// Whether a failed call means the target refused the client (at the handshake, by closing the
/// connection, or by authentication) rather than letting its request reach the service: only a
/// service's own judgement of the document counts as being let in.
fn is_refusal(s: &tonic::Status) -> bool {
    !matches!(
        s.code(),
        Code::InvalidArgument
            | Code::ResourceExhausted
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::OutOfRange
    )
}

/// How a live case ended.
pub enum LiveOutcome {
    /// Ran: findings (none = pass) and evidence.
    Ran(Vec<Finding>, Vec<Evidence>),
    /// Cannot apply (a needed credential is missing).
    Skip(String),
    /// Not for this partner.
    Omit(String),
    /// The case or the tool broke, with what evidence there is.
    Error(String, Vec<Evidence>),
}

/// The outcome of a case that is not for the partner acted as (`partners` names others): it is
/// omitted. `None`: the case is for this partner.
pub(crate) fn omitted_for_partner(def: &crate::suite::CaseDef, partner: &str) -> Option<LiveOutcome> {
    if !def.partners.is_empty() && !def.partners.iter().any(|p| p == partner) {
        return Some(LiveOutcome::Omit(format!("for {} only", def.partners.join(", "))));
    }
    None
}

/// A case need (`needs = ["peer"]`) a suite knows: its name, whether this run's target meets it,
/// and why the case is skipped when it does not.
pub(crate) struct KnownNeed {
    /// The name in a case's `needs`.
    pub name: &'static str,
    /// Whether the target has what the need asks for.
    pub met: bool,
    /// The skip message when it does not: which flags to give.
    pub missing: &'static str,
}

/// The second partner's certificate: its need, shared by the suites that act as partners.
pub(crate) fn peer_need(met: bool) -> KnownNeed {
    KnownNeed { name: "peer", met, missing: "needs a second partner: give --peer-cert and --peer-key" }
}

/// The outcome of a case whose needs this target does not meet, the first in the case's order:
/// skipped for a known need not met, an error for a need the suite does not know. `None`: every
/// need is met.
pub(crate) fn unmet_need(def: &crate::suite::CaseDef, known: &[KnownNeed]) -> Option<LiveOutcome> {
    for need in &def.needs {
        match known.iter().find(|k| k.name == need.as_str()) {
            Some(k) if !k.met => return Some(LiveOutcome::Skip(k.missing.into())),
            Some(_) => {}
            None => return Some(LiveOutcome::Error(format!("unknown need {need:?}"), vec![])),
        }
    }
    None
}

/// A case's named records, built before its first step; a record that cannot be built ends the
/// case in error.
pub(crate) fn case_records(
    def: &crate::suite::CaseDef,
    fill: &Placeholders,
    vectors: &Path,
) -> Result<BTreeMap<String, Record>, LiveOutcome> {
    crate::records::build_all(&def.records, fill, vectors).map_err(|e| LiveOutcome::Error(e, vec![]))
}

/// Why a step of the `gateway` or `tls` suite could not run (the case, the tool or its
/// configuration is wrong, not the gateway: the case ends in error).
#[derive(Debug, thiserror::Error)]
pub enum LiveStepError {
    /// The step belongs to another suite.
    #[error("{step} steps belong to the {suite} suite")]
    OtherSuite {
        /// The step's `do`.
        step: &'static str,
        /// The suite it belongs to.
        suite: &'static str,
    },
    /// A step acts as the peer, and none was given.
    #[error("no peer partner given")]
    NoPeer,
    /// A channel could not be set up.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The target's URL is unusable.
    #[error(transparent)]
    Target(#[from] crate::suites::TargetError),
    /// The expected records could not pass through a format.
    #[error("expected records: {source}")]
    ExpectedEncode {
        /// The encoder's error.
        source: yrdx_adapters::EncodeError,
    },
    /// The expected records did not decode again.
    #[error("expected records: {source}")]
    ExpectedDecode {
        /// The decoder's error.
        source: yrdx_adapters::DecodeError,
    },
    /// An `expect_set` path cannot be set in the expected record.
    #[error("expect_set {path}: {source}")]
    ExpectSet {
        /// The path.
        path: String,
        /// Why.
        source: crate::suite::JsonPathError,
    },
    /// A case's records cannot be written in the actor's format.
    #[error("cannot encode for {partner}: {source}")]
    Encode {
        /// The actor.
        partner: String,
        /// The encoder's error.
        source: yrdx_adapters::EncodeError,
    },
    /// An encoded document is not UTF-8, so `replace` cannot edit it.
    #[error("encoded document: {source}")]
    NotText {
        /// Where it is not.
        source: std::string::FromUtf8Error,
    },
    /// A `replace` text is not in the document.
    #[error("replace: {from:?} is not in the encoded document")]
    ReplaceMissing {
        /// The text.
        from: String,
    },
    /// `repeat` or `reuse_message_id` without an earlier submit step.
    #[error("`{key}` needs an earlier submit step")]
    NoEarlierSubmit {
        /// The key.
        key: &'static str,
    },
    /// A step names a delivery no earlier step saved.
    #[error("no delivery saved as {name:?}")]
    NotSaved {
        /// The name.
        name: String,
    },
    /// A `plan_summary` step names a record that is not a plan.
    #[error("{name:?} is not a plan record of the case")]
    NotAPlan {
        /// The record's name.
        name: String,
    },
    /// A `plan_summary` step names no plan.
    #[error("no plan to ask about")]
    NoPlan,
    /// A `legacy_tls` version other than 1.0 and 1.1.
    #[error("legacy_tls version {version:?}: expected 1.0 or 1.1")]
    LegacyVersion {
        /// The version given.
        version: String,
    },
    /// The legacy-TLS probe could not connect.
    #[error("cannot reach the target: {source}")]
    Unreachable {
        /// The connection error.
        source: std::io::Error,
    },
    /// A case needs the issuing CA, and none was given.
    #[error("no issuing CA given")]
    NoIssuingCa,
    /// The issuing CA given is unusable.
    #[error("issuing CA: {source}")]
    IssuingCa {
        /// Why.
        source: yrdx_pki::PkiError,
    },
    /// A test client certificate could not be made.
    #[error("cannot make the {kind} client certificate: {source}")]
    Mint {
        /// Which (`Untrusted`, `Expired`, `WrongSan`).
        kind: String,
        /// Why.
        source: yrdx_pki::PkiError,
    },
}

/// Where a channel's connector records the TLS facts of its handshake.
pub type FactsSlot = Arc<Mutex<Option<TlsFacts>>>;

/// State of one case as it runs.
struct CaseRun<'a> {
    target: &'a LiveTarget,
    fill: &'a Placeholders,
    records: BTreeMap<String, Record>,
    clients: BTreeMap<&'static str, (ExchangeClient<Channel>, FactsSlot)>,
    last: Option<(Actor, Vec<u8>, String)>,
    saved: BTreeMap<String, String>,
    findings: Vec<Finding>,
    evidence: Vec<Evidence>,
    step: usize,
}

static MESSAGE_COUNTER: AtomicU32 = AtomicU32::new(1);

/// Runs one case of the `gateway` or `tls` suite; its records are built from the vectors in
/// `vectors`.
pub async fn run_case(case: &LoadedCase, target: &LiveTarget, fill: &Placeholders, vectors: &Path) -> LiveOutcome {
    let def = &case.def;
    let needs = [
        peer_need(target.peer.is_some()),
        KnownNeed {
            name: "issuing_ca",
            met: target.issuing_ca.is_some(),
            missing:
                "needs the client-issuing CA to mint test certificates: give --issuing-ca-cert and --issuing-ca-key",
        },
    ];
    if let Some(outcome) = omitted_for_partner(def, &target.me.name).or_else(|| unmet_need(def, &needs)) {
        return outcome;
    }
    let records = match case_records(def, fill, vectors) {
        Ok(records) => records,
        Err(outcome) => return outcome,
    };
    let mut run = CaseRun {
        target,
        fill,
        records,
        clients: BTreeMap::new(),
        last: None,
        saved: BTreeMap::new(),
        findings: vec![],
        evidence: vec![],
        step: 0,
    };
    for (i, step) in def.steps.iter().enumerate() {
        run.step = i + 1;
        let result = match step {
            Step::Submit(s) => run.submit(s).await,
            Step::Receive(s) => run.receive(s).await,
            Step::Ack(s) => run.ack(s.by, &s.delivery, s.expect_acknowledged).await,
            Step::Burst(s) => run.burst(s).await,
            Step::Connect(s) => run.connect(s.client, &s.expect).await,
            Step::LegacyTls(s) => run.legacy(&s.version, &s.expect).await,
            Step::SamrPush(_) => Err(LiveStepError::OtherSuite { step: "samr_push", suite: "samr-intake" }),
            Step::SamrAnswer(_)
            | Step::SamrPackage(_)
            | Step::SamrParked(_)
            | Step::SamrResend(_)
            | Step::SamrNumbering => Err(LiveStepError::OtherSuite { step: "samr_*", suite: "samr-push" }),
            Step::PartnerSubmits(_)
            | Step::PartnerTls
            | Step::Deliver(_)
            | Step::PartnerAcks(_)
            | Step::Redeliver(_)
            | Step::PartnerAnswers(_)
            | Step::UntrustedServerCertificate(_)
            | Step::BusyAnswer(_)
            | Step::PartnerResends(_) => {
                Err(LiveStepError::OtherSuite { step: "partner_*", suite: "partner-endpoint" })
            }
            Step::PlanSummary(s) => run.plan_summary(s).await,
            Step::Wait(w) => {
                let wait = match w.ms {
                    Some(ms) => Duration::from_millis(ms),
                    None => target.visibility_timeout + Duration::from_secs(1),
                };
                tokio::time::sleep(wait).await;
                Ok(())
            }
        };
        if let Err(e) = result {
            return LiveOutcome::Error(format!("step {}: {e}", i + 1), run.evidence);
        }
        // A failed step makes later steps meaningless (they build on it).
        if !run.findings.is_empty() {
            break;
        }
    }
    LiveOutcome::Ran(run.findings, run.evidence)
}

impl CaseRun<'_> {
    fn profile(&self, by: Actor) -> Result<&PartnerProfile, LiveStepError> {
        match by {
            Actor::Myself => Ok(&self.target.me),
            Actor::Peer => self.target.peer.as_ref().ok_or(LiveStepError::NoPeer),
        }
    }

    fn actor_name(&self, by: Actor) -> String {
        self.profile(by).map(|p| p.name.clone()).unwrap_or_else(|_| "peer".into())
    }

    async fn client(&mut self, by: Actor) -> Result<(ExchangeClient<Channel>, FactsSlot), LiveStepError> {
        let key = match by {
            Actor::Myself => "self",
            Actor::Peer => "peer",
        };
        if let Some(c) = self.clients.get(key) {
            return Ok(c.clone());
        }
        let identity = self.profile(by)?.identity.clone();
        let (channel, facts) = self.target.channel(Some(&identity)).await?;
        let client = ExchangeClient::new(channel)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024);
        self.clients.insert(key, (client.clone(), facts.clone()));
        Ok((client, facts))
    }

    fn fresh_message_id(&self) -> String {
        let n = MESSAGE_COUNTER.fetch_add(1, Ordering::SeqCst);
        self.fill.fill(&format!("C-${{RUN}}-{n:04}"))
    }

    #[allow(clippy::too_many_arguments)]
    fn record_evidence(
        &mut self,
        by: Actor,
        method: &str,
        status: &str,
        request: Payload,
        response: Payload,
        facts: &Arc<Mutex<Option<TlsFacts>>>,
        duration_ms: u64,
    ) {
        let tls = facts.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.evidence.push(Evidence {
            step: self.step,
            actor: self.actor_name(by),
            method: method.into(),
            status: status.into(),
            request,
            response,
            tls,
            duration_ms,
        });
    }

    /// The expected records as the recipient's format carries them, as canonical JSON values.
    fn expected_as_carried(
        &self,
        from: Option<Actor>,
        format: Partner,
        names: &[String],
        envelope: &Envelope,
    ) -> Result<Vec<Value>, LiveStepError> {
        let mut records: Vec<Record> = names.iter().filter_map(|n| self.records.get(n).cloned()).collect();
        if let Some(by) = from {
            let sender = self.profile(by)?.format;
            let encoded =
                sender.encode(envelope, &records, 1).map_err(|source| LiveStepError::ExpectedEncode { source })?;
            records = sender
                .decode(&encoded.bytes, &DecodeLimits::default())
                .map_err(|source| LiveStepError::ExpectedDecode { source })?
                .records;
        }
        let encoded =
            format.encode(envelope, &records, 1).map_err(|source| LiveStepError::ExpectedEncode { source })?;
        let doc = format
            .decode(&encoded.bytes, &DecodeLimits::default())
            .map_err(|source| LiveStepError::ExpectedDecode { source })?;
        Ok(doc.records.iter().map(canonical::record_to_value).collect())
    }
}
