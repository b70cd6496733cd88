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
        let (n, region, format) = yrdx_gateway::pki::DEV_PARTNERS.iter().find(|(n, _, _)| *n == name)?;
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

/// The default of [`LiveTarget::visibility_timeout`]: the gateway's own default
/// (`visibility_timeout_secs = 60`).
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(60);

/// The default of [`LiveTarget::step_timeout`].
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks, before any case, that the run can test the target at all: the gateway answers, our
/// `--ca` accepts its certificate, and the certificates given are those of the partners named
/// (a certificate of another partner would make the gateway's correct answers look wrong).
pub async fn preflight(t: &LiveTarget) -> Result<(), String> {
    check_partner_certificate("--cert", &t.me)?;
    if let Some(peer) = &t.peer {
        check_partner_certificate("--peer-cert", peer)?;
    }
    let addr = t.authority()?;
    crate::tls::preflight(&addr, &t.ca_pem, Some(&t.me.identity), &t.server_name, &[b"h2"], t.step_timeout)
        .await
        .map(|_| ())
        .map_err(|e| format!("--gateway {}: {e}", t.url))
}

/// Refuses a certificate whose SAN does not name `partner` (`URI:urn:yrdx:partner:jiangsu`).
fn check_partner_certificate(flag: &str, partner: &PartnerProfile) -> Result<(), String> {
    let want = format!("URI:{}", yrdx_gateway::pki::partner_identity(&partner.name));
    let sans = crate::tls::pem_san(&partner.identity.cert_pem);
    if sans.contains(&want) {
        return Ok(());
    }
    let named = if sans.is_empty() { "no subject alternative name".to_string() } else { sans.join(", ") };
    Err(format!("{flag}: the certificate names {named}, not the {} partner ({want})", partner.name))
}

impl LiveTarget {
    /// `host:port` of the URL.
    pub fn authority(&self) -> Result<String, String> {
        let uri: Uri = self.url.parse().map_err(|e| format!("--gateway {}: {e}", self.url))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("--gateway {}: an https:// URL is required", self.url));
        }
        let host = uri.host().ok_or_else(|| format!("--gateway {}: no host", self.url))?;
        Ok(format!("{host}:{}", uri.port_u16().unwrap_or(443)))
    }

    /// Opens a gRPC channel presenting `identity`; the TLS facts land in the returned slot.
    pub async fn channel(
        &self,
        identity: Option<&ClientIdentity>,
    ) -> Result<(Channel, Arc<Mutex<Option<TlsFacts>>>), String> {
        let authority = self.authority()?;
        let tls = TlsClient::new(&self.ca_pem, identity, &self.server_name, &[b"h2"]).map_err(|e| e.to_string())?;
        let facts: Arc<Mutex<Option<TlsFacts>>> = Arc::new(Mutex::new(None));
        let slot = facts.clone();
        let connector = tower::service_fn(move |_: Uri| {
            let (tls, facts, authority) = (tls.clone(), slot.clone(), authority.clone());
            async move {
                let stream = tls.connect(&authority, &facts).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        });
        // TLS is done by the connector, so the endpoint itself is plain.
        let endpoint = Endpoint::from_shared(format!("http://{}", self.authority()?))
            .map_err(|e| e.to_string())?
            .connect_timeout(self.step_timeout)
            .timeout(self.step_timeout);
        let channel = endpoint.connect_with_connector_lazy(connector);
        Ok((channel, facts))
    }
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
    if !def.partners.is_empty() && !def.partners.contains(&target.me.name) {
        return LiveOutcome::Omit(format!("for {} only", def.partners.join(", ")));
    }
    for need in &def.needs {
        match need.as_str() {
            "peer" if target.peer.is_none() => {
                return LiveOutcome::Skip("needs a second partner: give --peer-cert and --peer-key".into())
            }
            "issuing_ca" if target.issuing_ca.is_none() => return LiveOutcome::Skip(
                "needs the client-issuing CA to mint test certificates: give --issuing-ca-cert and --issuing-ca-key"
                    .into(),
            ),
            "peer" | "issuing_ca" => {}
            other => return LiveOutcome::Error(format!("unknown need {other:?}"), vec![]),
        }
    }
    let mut run = CaseRun {
        target,
        fill,
        records: BTreeMap::new(),
        clients: BTreeMap::new(),
        last: None,
        saved: BTreeMap::new(),
        findings: vec![],
        evidence: vec![],
        step: 0,
    };
    for (name, spec) in &def.records {
        match crate::records::build(spec, fill, vectors) {
            Ok(r) => {
                run.records.insert(name.clone(), r);
            }
            Err(e) => return LiveOutcome::Error(format!("record {name}: {e}"), vec![]),
        }
    }
    for (i, step) in def.steps.iter().enumerate() {
        run.step = i + 1;
        let result = match step {
            Step::Submit(s) => run.submit(s).await,
            Step::Receive(s) => run.receive(s).await,
            Step::Ack(s) => run.ack(s.by, &s.delivery, s.expect_acknowledged).await,
            Step::Burst(s) => run.burst(s).await,
            Step::Connect(s) => run.connect(s.client, &s.expect).await,
            Step::LegacyTls(s) => run.legacy(&s.version, &s.expect).await,
            Step::SamrPush(_) => Err("samr_push steps belong to the samr-intake suite".to_string()),
            Step::SamrAnswer(_)
            | Step::SamrPackage(_)
            | Step::SamrParked(_)
            | Step::SamrResend(_)
            | Step::SamrNumbering => Err("samr_* steps belong to the samr-push suite".to_string()),
            Step::PartnerSubmits(_)
            | Step::PartnerTls
            | Step::Deliver(_)
            | Step::PartnerAcks(_)
            | Step::Redeliver(_)
            | Step::PartnerAnswers(_) => Err("partner_* steps belong to the partner-endpoint suite".to_string()),
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
    fn profile(&self, by: Actor) -> Result<&PartnerProfile, String> {
        match by {
            Actor::Myself => Ok(&self.target.me),
            Actor::Peer => self.target.peer.as_ref().ok_or_else(|| "no peer partner given".to_string()),
        }
    }

    fn actor_name(&self, by: Actor) -> String {
        self.profile(by).map(|p| p.name.clone()).unwrap_or_else(|_| "peer".into())
    }

    async fn client(&mut self, by: Actor) -> Result<(ExchangeClient<Channel>, Arc<Mutex<Option<TlsFacts>>>), String> {
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

    fn document(&self, by: Actor, s: &SubmitStep, message_id: &str) -> Result<Vec<u8>, String> {
        let p = self.profile(by)?;
        if let Some(raw) = &s.raw {
            return Ok(self.fill.fill(raw).replace("${MESSAGE_ID}", message_id).into_bytes());
        }
        if let Some(n) = s.oversized {
            let n = self.target.oversized_bytes.unwrap_or(n);
            let mut doc = br#"{"pad":""#.to_vec();
            doc.resize(n.saturating_sub(2).max(doc.len()), b'x');
            doc.extend_from_slice(b"\"}");
            return Ok(doc);
        }
        let records: Vec<Record> = s.records.iter().filter_map(|n| self.records.get(n).cloned()).collect();
        let envelope = Envelope {
            message_id: message_id.to_string(),
            sender: s.sender.as_ref().map(|x| self.fill.fill(x)).unwrap_or_else(|| p.region.clone()),
            receiver: "310000".into(),
            sent_at: Some(crate::clock::now()),
        };
        let encoded =
            p.format.encode(&envelope, &records, 1).map_err(|e| format!("cannot encode for {}: {e}", p.name))?;
        let mut text = String::from_utf8(encoded.bytes).map_err(|e| format!("encoded document: {e}"))?;
        for (from, to) in &s.replace {
            let from = self.fill.fill(from);
            if !text.contains(&from) {
                return Err(format!("replace: {from:?} is not in the encoded document"));
            }
            text = text.replace(&from, &self.fill.fill(to));
        }
        Ok(text.into_bytes())
    }

    async fn submit(&mut self, s: &SubmitStep) -> Result<(), String> {
        let (bytes, message_id) = if s.repeat {
            let (_, b, m) = self.last.clone().ok_or("`repeat` needs an earlier submit step")?;
            (b, m)
        } else {
            let m = if s.reuse_message_id {
                self.last.as_ref().map(|l| l.2.clone()).ok_or("`reuse_message_id` needs an earlier submit step")?
            } else {
                self.fresh_message_id()
            };
            (self.document(s.by, s, &m)?, m)
        };
        let format = self.profile(s.by)?.format;
        let (mut client, facts) = self.client(s.by).await?;
        let started = Instant::now();
        let result = client.submit(SubmitRequest { document: bytes.clone() }).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        let decoded = format
            .decode(&bytes, &DecodeLimits { max_bytes: usize::MAX, ..DecodeLimits::default() })
            .ok()
            .and_then(|d| canonical::encode(&d.envelope, &d.records).ok())
            .and_then(|c| serde_json::from_slice(&c.bytes).ok());
        let (status, response) = match &result {
            Ok(r) => ("OK".to_string(), serde_json::to_value(r.get_ref()).unwrap_or(Value::Null)),
            Err(st) => (code_name(st.code()).to_string(), status_view(st)),
        };
        self.record_evidence(
            s.by,
            "yrdx.v1.Exchange/Submit",
            &status,
            Payload::of(&bytes, decoded),
            Payload::view(response),
            &facts,
            duration_ms,
        );
        self.last = Some((s.by, bytes, message_id));
        let want = self.fill.fill(&s.expect.status);
        let at = format!("step {} Submit", self.step);
        if status != want {
            let detail = match &result {
                Err(st) => format!("{status}: {}", st.message()),
                Ok(_) => status.clone(),
            };
            self.findings.push(Finding::new("Submit answers the expected status", at, want, detail));
            return Ok(());
        }
        match &result {
            Ok(reply) => {
                let reply = reply.get_ref();
                if let Some(d) = s.expect.duplicate {
                    if reply.duplicate != d {
                        self.findings.push(Finding::new(
                            "the reply's duplicate flag",
                            format!("{at}: duplicate"),
                            d.to_string(),
                            reply.duplicate.to_string(),
                        ));
                    }
                }
                if let Some(words) = &s.expect.warning_contains {
                    let words = self.fill.fill(words);
                    if !reply.warnings.iter().any(|w| w.contains(&words)) {
                        self.findings.push(Finding::new(
                            "the reply warns",
                            format!("{at}: warnings"),
                            format!("a warning containing {words:?}"),
                            if reply.warnings.is_empty() { "(no warnings)".into() } else { reply.warnings.join(" | ") },
                        ));
                    }
                }
                if !s.expect.records.is_empty() {
                    let want: Vec<String> = s.expect.records.iter().map(|r| self.fill.fill(r)).collect();
                    let got: Vec<String> = reply.records.iter().map(|r| format!("{} {}", r.kind, r.id)).collect();
                    if want != got {
                        self.findings.push(Finding::new(
                            "the reply lists the records accepted, in document order",
                            format!("{at}: records"),
                            want.join(", "),
                            got.join(", "),
                        ));
                    }
                }
            }
            Err(st) => {
                if let Some(words) = &s.expect.message_contains {
                    let words = self.fill.fill(words);
                    if !st.message().contains(&words) {
                        self.findings.push(Finding::new(
                            "the status message says why",
                            format!("{at}: message"),
                            format!("contains {words:?}"),
                            st.message().to_string(),
                        ));
                    }
                }
                if let Some(paths) = s.expect.paths.get(&format.to_string()) {
                    let named: Vec<String> = st
                        .get_details_bad_request()
                        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
                        .unwrap_or_default();
                    for p in paths {
                        if !named.contains(p) {
                            self.findings.push(Finding::new(
                                "the error details name the field by the sender's own path",
                                p.clone(),
                                "a field violation for this path",
                                if named.is_empty() { "(no BadRequest details)".into() } else { named.join(", ") },
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
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
    ) -> Result<Vec<Value>, String> {
        let mut records: Vec<Record> = names.iter().filter_map(|n| self.records.get(n).cloned()).collect();
        if let Some(by) = from {
            let sender = self.profile(by)?.format;
            let encoded = sender.encode(envelope, &records, 1).map_err(|e| format!("expected records: {e}"))?;
            records = sender
                .decode(&encoded.bytes, &DecodeLimits::default())
                .map_err(|e| format!("expected records: {e}"))?
                .records;
        }
        let encoded = format.encode(envelope, &records, 1).map_err(|e| format!("expected records: {e}"))?;
        let doc =
            format.decode(&encoded.bytes, &DecodeLimits::default()).map_err(|e| format!("expected records: {e}"))?;
        Ok(doc.records.iter().map(canonical::record_to_value).collect())
    }

    async fn receive(&mut self, s: &ReceiveStep) -> Result<(), String> {
        let format = self.profile(s.by)?.format;
        let wanted: Vec<(RecordKind, String)> =
            s.records.iter().filter_map(|n| self.records.get(n)).map(|r| (r.kind(), r.id())).collect();
        let (mut client, facts) = self.client(s.by).await?;
        let started = Instant::now();
        let at = format!("step {} Receive", self.step);
        let opened =
            tokio::time::timeout(self.target.step_timeout, client.receive(ReceiveRequest { max_unacked: 500 })).await;
        let Ok(stream) = opened else {
            self.findings.push(Finding::new(
                "Receive opens the mailbox",
                at,
                "a delivery stream",
                format!("no answer within {} ms", self.target.step_timeout.as_millis()),
            ));
            return Ok(());
        };
        let mut stream = match stream {
            Ok(r) => r.into_inner(),
            Err(st) => {
                let status = code_name(st.code()).to_string();
                self.record_evidence(
                    s.by,
                    "yrdx.v1.Exchange/Receive",
                    &status,
                    Payload::default(),
                    Payload::view(status_view(&st)),
                    &facts,
                    0,
                );
                self.findings.push(Finding::new(
                    "Receive opens the mailbox",
                    at,
                    "OK",
                    format!("{status}: {}", st.message()),
                ));
                return Ok(());
            }
        };
        let deadline = started + Duration::from_millis(s.within_ms);
        let mut found = None;
        let mut seen = 0usize;
        while found.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, stream.message()).await {
                Err(_) | Ok(Ok(None)) => break,
                Ok(Err(st)) => {
                    self.findings.push(Finding::new(
                        "the delivery stream stays open",
                        at.clone(),
                        "deliveries",
                        format!("{}: {}", code_name(st.code()), st.message()),
                    ));
                    return Ok(());
                }
                Ok(Ok(Some(d))) => {
                    seen += 1;
                    let Ok(doc) = format.decode(&d.document, &DecodeLimits::default()) else {
                        // Another delivery this case does not judge; an awaited one that does not
                        // decode is reported below as never arriving.
                        continue;
                    };
                    let ids: Vec<(RecordKind, String)> = doc.records.iter().map(|r| (r.kind(), r.id())).collect();
                    if ids == wanted {
                        found = Some((d, doc));
                    }
                }
            }
        }
        drop(stream);
        let duration_ms = started.elapsed().as_millis() as u64;
        let want_text: Vec<String> = wanted.iter().map(|(k, id)| format!("{k} {id}")).collect();
        match (found, s.absent) {
            (None, true) => {
                self.record_evidence(
                    s.by,
                    "yrdx.v1.Exchange/Receive",
                    "OK",
                    Payload::view(json!({"max_unacked": 500})),
                    Payload::view(json!({"deliveries_seen": seen, "matching": 0})),
                    &facts,
                    duration_ms,
                );
            }
            (Some((d, _)), true) => {
                self.record_evidence(
                    s.by,
                    "yrdx.v1.Exchange/Receive",
                    "OK",
                    Payload::view(json!({"max_unacked": 500})),
                    Payload::of(&d.document, None),
                    &facts,
                    duration_ms,
                );
                self.findings.push(Finding::new(
                    "no such delivery reaches this mailbox",
                    at,
                    format!("no delivery of {}", want_text.join(", ")),
                    format!("delivery {} ({})", d.delivery_id, d.message_id),
                ));
            }
            (None, false) => {
                self.record_evidence(
                    s.by,
                    "yrdx.v1.Exchange/Receive",
                    "OK",
                    Payload::view(json!({"max_unacked": 500})),
                    Payload::view(json!({"deliveries_seen": seen, "matching": 0})),
                    &facts,
                    duration_ms,
                );
                self.findings.push(Finding::new(
                    format!("a delivery arrives within {} ms", s.within_ms),
                    at,
                    want_text.join(", "),
                    format!("{seen} other deliveries, none with these records"),
                ));
            }
            (Some((d, doc)), false) => {
                let got_view = canonical::encode(&doc.envelope, &doc.records)
                    .ok()
                    .and_then(|c| serde_json::from_slice::<Value>(&c.bytes).ok());
                self.record_evidence(
                    s.by,
                    "yrdx.v1.Exchange/Receive",
                    "OK",
                    Payload::view(json!({"max_unacked": 500})),
                    Payload::of(&d.document, got_view),
                    &facts,
                    duration_ms,
                );
                let expected = self.expected_as_carried(s.from, format, &s.records, &doc.envelope)?;
                let ignore: Vec<String> = s.ignore.iter().map(|p| self.fill.fill(p)).collect();
                for (i, (want, got)) in
                    expected.iter().zip(doc.records.iter().map(canonical::record_to_value)).enumerate()
                {
                    let (mut want, mut got) = (want.clone(), got);
                    for p in &ignore {
                        crate::suite::remove_path(&mut want, p);
                        crate::suite::remove_path(&mut got, p);
                    }
                    for (p, value) in &s.expect_set {
                        crate::suite::set_path(&mut want, p, self.fill.fill_json(value))?;
                    }
                    for (path, e, a) in crate::suite::json_differences(&want, &got) {
                        self.findings.push(Finding::new(
                            format!("the delivered {} carries the submitted values", wanted[i].0),
                            format!("records.{i}.{path}"),
                            e,
                            a,
                        ));
                    }
                }
                if let Some(name) = &s.save {
                    self.saved.insert(name.clone(), d.delivery_id.clone());
                }
                if s.ack {
                    self.ack_one(s.by, &d.delivery_id, 1, "Ack confirms the delivery", "Ack").await?;
                }
            }
        }
        Ok(())
    }

    async fn plan_summary(&mut self, s: &PlanSummaryStep) -> Result<(), String> {
        let plan_id = match (&s.plan, &s.plan_id) {
            (Some(name), _) => match self.records.get(name) {
                Some(Record::Plan(p)) => p.plan_id.clone(),
                _ => return Err(format!("{name:?} is not a plan record of the case")),
            },
            (None, Some(id)) => self.fill.fill(id),
            (None, None) => return Err("no plan to ask about".into()),
        };
        let identity = self.profile(s.by)?.identity.clone();
        let (channel, facts) = self.target.channel(Some(&identity)).await?;
        let started = Instant::now();
        let answer =
            RecordsClient::new(channel).get_plan_summary(PlanSummaryRequest { plan_id: plan_id.clone() }).await;
        let (status, view) = match &answer {
            Ok(r) => ("OK".to_string(), serde_json::to_value(r.get_ref()).unwrap_or(Value::Null)),
            Err(st) => (code_name(st.code()).to_string(), status_view(st)),
        };
        self.record_evidence(
            s.by,
            "yrdx.v1.Records/GetPlanSummary",
            &status,
            Payload::view(json!({ "plan_id": plan_id })),
            Payload::view(view.clone()),
            &facts,
            started.elapsed().as_millis() as u64,
        );
        let at = format!("step {} GetPlanSummary {plan_id}", self.step);
        let want_status = s.expect.status.clone().unwrap_or_else(|| "OK".into());
        if status != want_status {
            let message = answer.as_ref().err().map(|st| format!(": {}", st.message())).unwrap_or_default();
            self.findings.push(Finding::new(
                "the summary is answered as expected",
                at,
                want_status,
                format!("{status}{message}"),
            ));
            return Ok(());
        }
        let rows = view.get("rows").and_then(Value::as_array).cloned().unwrap_or_default();
        for want in &s.expect.rows {
            let want: serde_json::Map<String, Value> =
                want.iter().map(|(k, v)| (k.clone(), self.fill.fill_json(v))).collect();
            let key = (want.get("region"), want.get("category"));
            let Some(got) = rows.iter().find(|r| (r.get("region"), r.get("category")) == key) else {
                self.findings.push(Finding::new(
                    "the summary has a row per region and category of the plan",
                    at.clone(),
                    Value::Object(want.clone()).to_string(),
                    format!("rows: {}", Value::Array(rows.clone())),
                ));
                continue;
            };
            // Only the fields the case names; proto3 JSON leaves zero counts out.
            let got: serde_json::Map<String, Value> =
                want.keys().map(|k| (k.clone(), got.get(k).cloned().unwrap_or(json!(0)))).collect();
            for (path, e, a) in crate::suite::json_differences(&Value::Object(want), &Value::Object(got)) {
                self.findings.push(Finding::new(
                    "the summary counts what the gateway holds",
                    format!("{at} {path}"),
                    e,
                    a,
                ));
            }
        }
        Ok(())
    }

    async fn ack(&mut self, by: Actor, delivery: &str, expect: u32) -> Result<(), String> {
        let id = self.saved.get(delivery).cloned().ok_or_else(|| format!("no delivery saved as {delivery:?}"))?;
        let at = format!("Ack {delivery}");
        self.ack_one(by, &id, expect, "Ack acknowledges only the caller's own deliveries", &at).await
    }

    /// Acknowledges one delivery and asserts how many the target acknowledged (an error answer
    /// counts as none acknowledged).
    async fn ack_one(&mut self, by: Actor, id: &str, expect: u32, assertion: &str, at: &str) -> Result<(), String> {
        let (mut client, facts) = self.client(by).await?;
        let started = Instant::now();
        let r = client.ack(AckRequest { delivery_ids: vec![id.to_string()] }).await;
        let (status, view, n) = match &r {
            Ok(a) => ("OK".to_string(), json!({"acknowledged": a.get_ref().acknowledged}), a.get_ref().acknowledged),
            Err(st) => (code_name(st.code()).to_string(), status_view(st), 0),
        };
        self.record_evidence(
            by,
            "yrdx.v1.Exchange/Ack",
            &status,
            Payload::view(json!({"delivery_ids": [id]})),
            Payload::view(view),
            &facts,
            started.elapsed().as_millis() as u64,
        );
        if n != expect {
            let answer = match &r {
                Ok(_) => format!("{n} acknowledged"),
                Err(st) => format!("{n} acknowledged ({status}: {})", st.message()),
            };
            self.findings.push(Finding::new(
                assertion,
                format!("step {} {at}", self.step),
                format!("{expect} acknowledged"),
                answer,
            ));
        }
        Ok(())
    }

    async fn burst(&mut self, s: &crate::suite::BurstStep) -> Result<(), String> {
        let count = self.target.burst.unwrap_or(s.count);
        let (client, facts) = self.client(s.by).await?;
        let body = self.fill.fill(&s.raw).into_bytes();
        let started = Instant::now();
        // Concurrent, so the burst outruns any sane per-partner rate.
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..count {
            let mut c = client.clone();
            let b = body.clone();
            tasks.spawn(async move { c.submit(SubmitRequest { document: b }).await });
        }
        let mut by_status: BTreeMap<String, u32> = BTreeMap::new();
        let mut sample: Option<tonic::Status> = None;
        while let Some(r) = tasks.join_next().await {
            let status = match r {
                Ok(Ok(_)) => "OK".to_string(),
                Ok(Err(st)) => {
                    let name = code_name(st.code()).to_string();
                    if name == s.expect_status && sample.is_none() {
                        sample = Some(st);
                    }
                    name
                }
                Err(e) => format!("task failed: {e}"),
            };
            *by_status.entry(status).or_default() += 1;
        }
        let view =
            json!({"submissions": count, "answers_by_status": by_status, "example": sample.as_ref().map(status_view)});
        self.record_evidence(
            s.by,
            &format!("yrdx.v1.Exchange/Submit ×{count}"),
            &s.expect_status,
            Payload::of(&body, None),
            Payload::view(view),
            &facts,
            started.elapsed().as_millis() as u64,
        );
        let at = format!("step {} burst", self.step);
        match &sample {
            None => self.findings.push(Finding::new(
                format!("a burst of {count} submissions is limited"),
                at,
                format!("at least one {}", s.expect_status),
                format!("{by_status:?}"),
            )),
            Some(st) => {
                if let Some(key) = &s.expect_metadata {
                    match st.metadata().get(key.as_str()).and_then(|v| v.to_str().ok()) {
                        None => self.findings.push(Finding::new(
                            "the refusal says when to retry",
                            format!("{at}: {key}"),
                            "present",
                            "absent",
                        )),
                        Some(v) => {
                            // Let the limit recover, so later cases are not throttled by this one.
                            let secs: u64 = v.trim().parse().unwrap_or(1);
                            tokio::time::sleep(Duration::from_secs(secs.clamp(1, 5) + 1)).await;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn mint(&self, kind: ClientKind) -> Result<Option<ClientIdentity>, String> {
        let me = &self.target.me;
        let identity = yrdx_gateway::pki::partner_identity(&me.name);
        let issued = match kind {
            ClientKind::Valid => return Ok(Some(me.identity.clone())),
            ClientKind::None => return Ok(None),
            ClientKind::Untrusted => {
                let ca = yrdx_gateway::pki::CertificateAuthority::new("yrdx conformance untrusted CA")
                    .map_err(|e| e.to_string())?;
                ca.issue_client(&identity, false).map_err(|e| e.to_string())?
            }
            ClientKind::Expired | ClientKind::WrongSan => {
                let (cert, key) = self.target.issuing_ca.as_ref().ok_or("no issuing CA given")?;
                let ca = yrdx_gateway::pki::CertificateAuthority::from_pem(cert, key)
                    .map_err(|e| format!("issuing CA: {e}"))?;
                if kind == ClientKind::Expired {
                    ca.issue_client(&identity, true).map_err(|e| e.to_string())?
                } else {
                    ca.issue_client("urn:yrdx:partner:not-registered", false).map_err(|e| e.to_string())?
                }
            }
        };
        Ok(Some(ClientIdentity { cert_pem: issued.cert_pem, key_pem: issued.key_pem }))
    }

    async fn connect(&mut self, kind: ClientKind, expect: &str) -> Result<(), String> {
        let identity = self.mint(kind)?;
        let label = format!("{kind:?} client certificate").replace("None ", "no ");
        let (channel, facts) = self.target.channel(identity.as_ref()).await?;
        let mut client = ExchangeClient::new(channel);
        let started = Instant::now();
        // An empty document: a gateway that let the caller in answers INVALID_ARGUMENT.
        let limit = self.target.step_timeout;
        let r = tokio::time::timeout(limit, client.submit(SubmitRequest { document: b"{}".to_vec() })).await;
        // No answer in time is neither a refusal nor an acceptance: it fails both expectations,
        // so a gateway that hangs cannot pass a refusal case.
        let (outcome, view) = match &r {
            Err(_) => ("no answer", json!({"timeout_ms": limit.as_millis() as u64})),
            Ok(Err(st))
                if st.code() == Code::DeadlineExceeded
                    || (st.code() == Code::Cancelled && st.message().contains("Timeout")) =>
            {
                ("no answer", status_view(st))
            }
            Ok(Ok(_)) => ("accepted", json!({"code": "OK"})),
            Ok(Err(st)) if is_refusal(st) => ("refused", status_view(st)),
            Ok(Err(st)) => ("accepted", status_view(st)),
        };
        let tls = facts.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.evidence.push(Evidence {
            step: self.step,
            actor: label.clone(),
            method: "yrdx.v1.Exchange/Submit".into(),
            status: outcome.into(),
            request: Payload::of(b"{}", None),
            response: Payload::view(view.clone()),
            tls,
            duration_ms: started.elapsed().as_millis() as u64,
        });
        if outcome != expect {
            self.findings.push(Finding::new(
                format!("a call with {label} is {expect}"),
                format!("step {} TLS/authentication", self.step),
                expect,
                format!("{outcome}: {view}"),
            ));
        }
        Ok(())
    }

    async fn legacy(&mut self, version: &str, expect: &str) -> Result<(), String> {
        let minor = match version {
            "1.0" => 1,
            "1.1" => 2,
            other => return Err(format!("legacy_tls version {other:?}: expected 1.0 or 1.1")),
        };
        let started = Instant::now();
        let outcome = crate::tls::probe_legacy_version(&self.target.authority()?, minor, &self.target.server_name)
            .await
            .map_err(|e| format!("cannot reach the target: {e}"))?;
        let (got, detail) = match &outcome {
            LegacyOutcome::Refused(d) => ("refused", d.clone()),
            LegacyOutcome::Accepted(d) => ("accepted", d.clone()),
        };
        self.evidence.push(Evidence {
            step: self.step,
            actor: format!("TLS {version} client"),
            method: format!("TLS handshake offering only TLS {version}"),
            status: got.into(),
            request: Payload::view(json!({"offered_version": version})),
            response: Payload::view(json!({"answer": detail})),
            tls: None,
            duration_ms: started.elapsed().as_millis() as u64,
        });
        if got != expect {
            self.findings.push(Finding::new(
                format!("a TLS {version} handshake is {expect}"),
                format!("step {} TLS handshake", self.step),
                expect,
                format!("{got}: {detail}"),
            ));
        }
        Ok(())
    }
}
