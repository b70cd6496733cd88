//! The `partner-endpoint` suite: certifies a partner's own system as the party under test. yrdx
//! acts as the gateway for it ([`PartnerFacingGateway`]: the `Exchange` service over mutual TLS),
//! the partner's client connects and submits its documents, receives and acknowledges what the
//! suite delivers, and answers a case transfer. The verdict is on its documents (decoded by our
//! adapter of its format, the envelope naming it and Shanghai), its handling of deliveries (every
//! delivery acknowledged, a redelivered case transfer not answered a second time as a new event)
//! and its TLS client behaviour (a certificate naming the partner, TLS 1.2 or later).

use crate::report::{Evidence, Finding, Payload};
use crate::suite::{LoadedCase, Placeholders, Step};
use crate::suites::live::LiveOutcome;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use yrdx_adapters::{canonical, DecodeLimits, Partner, Record};
use yrdx_proto::v1::exchange_server::{Exchange, ExchangeServer};
use yrdx_proto::v1::{
    AckReply, AckRequest, CheckProblem, CheckReply, CheckRequest, Delivery, Envelope, GetReceiptReply,
    GetReceiptRequest, ReceiveRequest, RecordRef, SubmitReply, SubmitRequest,
};

/// Why the partner-facing gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The TLS material is unusable.
    #[error("partner-endpoint TLS ({what}): {message}")]
    Tls {
        /// Which file or step.
        what: &'static str,
        /// The error.
        message: String,
    },
    /// The address cannot be listened on.
    #[error("partner-endpoint --listen {listen}: {source}")]
    Listen {
        /// The address.
        listen: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Why a delivery could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The records cannot be written in the partner's format.
    #[error("cannot encode the delivery as {format}: {source}")]
    Encode {
        /// The partner's format.
        format: Partner,
        /// The encoder's error.
        source: yrdx_adapters::EncodeError,
    },
    /// No such delivery was queued.
    #[error("no delivery {delivery_id} to send again")]
    Unknown {
        /// The id asked for.
        delivery_id: String,
    },
}

/// One TLS connection the partner's client opened (or tried to; a connection closed before any
/// handshake, a port probe, is not kept).
#[derive(Debug, Clone)]
pub struct ConnectionSeen {
    /// When.
    pub at: Instant,
    /// The SANs of its client certificate (`URI:urn:yrdx:partner:jiangsu`).
    pub client_sans: Vec<String>,
    /// The TLS version negotiated (`TLSv1_3`), or why the handshake failed.
    pub outcome: Result<String, String>,
}

/// One document the partner submitted.
#[derive(Debug, Clone)]
pub struct SubmissionSeen {
    /// When.
    pub at: Instant,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its envelope and records as our adapter decoded them, or every problem by its path.
    pub decoded: Result<(Envelope, Vec<Record>), Vec<String>>,
}

/// A delivery the suite queued for the partner.
#[derive(Debug, Clone)]
struct Queued {
    delivery_id: String,
    message_id: String,
    document: Vec<u8>,
    attempt: u32,
    /// Streamed and not yet due again.
    sent: bool,
}

#[derive(Default)]
struct EndpointState {
    connections: Vec<ConnectionSeen>,
    submissions: Vec<SubmissionSeen>,
    queue: Vec<Queued>,
    /// delivery id → (attempt acknowledged, when).
    acks: Vec<(String, u32, Instant)>,
}

/// yrdx as the gateway toward one partner's system: its `Exchange` over mutual TLS.
pub struct PartnerFacingGateway {
    /// Its address.
    pub addr: SocketAddr,
    /// The partner's format (documents are decoded and delivered in it).
    pub format: Partner,
    /// The partner's region (its envelope sender).
    pub region: String,
    state: Arc<Mutex<EndpointState>>,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
}

struct ExchangeForPartner {
    format: Partner,
    state: Arc<Mutex<EndpointState>>,
    wake: Arc<Notify>,
}

fn tls_error(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> EndpointError {
    move |e| EndpointError::Tls { what, message: e.to_string() }
}

impl PartnerFacingGateway {
    /// Starts on `listen` with the server certificate and key (PEM), accepting client
    /// certificates signed by `client_ca_pem`, for the partner of `format` and `region`.
    pub async fn start(
        listen: &str,
        cert_pem: &str,
        key_pem: &str,
        client_ca_pem: &str,
        format: Partner,
        region: &str,
    ) -> Result<PartnerFacingGateway, EndpointError> {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(client_ca_pem.as_bytes()) {
            let c = c.map_err(|e| tls_error("client CA")(&e))?;
            roots.add(c).map_err(|e| tls_error("client CA")(&e))?;
        }
        let verifier =
            WebPkiClientVerifier::builder(Arc::new(roots)).build().map_err(|e| tls_error("client CA")(&e))?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| tls_error("server certificate")(&e))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| tls_error("server key")(&e))?;
        let mut tls = ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| tls_error("server certificate")(&e))?;
        tls.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| EndpointError::Listen { listen: listen.to_string(), source })?;
        let addr =
            listener.local_addr().map_err(|source| EndpointError::Listen { listen: listen.to_string(), source })?;
        let state = Arc::new(Mutex::new(EndpointState::default()));
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let (tx, rx) = mpsc::channel(16);
        let seen = state.clone();
        let mut accept_stop = stopped.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
                    _ = accept_stop.changed() => break,
                };
                let (acceptor, tx, seen) = (acceptor.clone(), tx.clone(), seen.clone());
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await;
                    let (conn, outcome) = match handshake {
                        Ok(Ok(tls)) => {
                            let (_, session) = tls.get_ref();
                            let sans = session
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .map(|c| crate::tls::san_of(c.as_ref()))
                                .unwrap_or_default();
                            let version = session.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
                            (Some(tls), (sans, Ok(version)))
                        }
                        // Closed before any handshake: a port probe, not a TLS client.
                        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
                        Ok(Err(e)) => (None, (vec![], Err(e.to_string()))),
                        Err(_) => (None, (vec![], Err("no handshake within 10 s".to_string()))),
                    };
                    if let Ok(mut st) = seen.lock() {
                        st.connections.push(ConnectionSeen {
                            at: Instant::now(),
                            client_sans: outcome.0,
                            outcome: outcome.1,
                        });
                    }
                    if let Some(conn) = conn {
                        let _ = tx.send(Ok::<_, std::io::Error>(conn)).await;
                    }
                });
            }
        });
        let service = ExchangeForPartner { format, state: state.clone(), wake: wake.clone() };
        let mut serve_stop = stopped;
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(ExchangeServer::new(service))
                .serve_with_incoming_shutdown(ReceiverStream::new(rx), async move {
                    let _ = serve_stop.wait_for(|s| *s).await;
                })
                .await;
        });
        Ok(PartnerFacingGateway { addr, format, region: region.to_string(), state, wake, stop })
    }

    /// The URL the partner's client connects to.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Stops listening.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    fn with<T>(&self, f: impl FnOnce(&mut EndpointState) -> T) -> Option<T> {
        self.state.lock().ok().map(|mut st| f(&mut st))
    }

    /// Queues a delivery of `records` in the partner's format (from Shanghai) under `delivery_id`.
    pub fn deliver(&self, delivery_id: &str, message_id: &str, records: &[Record]) -> Result<(), DeliveryError> {
        let envelope = Envelope {
            message_id: message_id.to_string(),
            sender: "310000".into(),
            receiver: self.region.clone(),
            sent_at: Some(crate::clock::now()),
        };
        let document = self
            .format
            .encode(&envelope, records, 1)
            .map_err(|source| DeliveryError::Encode { format: self.format, source })?
            .bytes;
        self.with(|st| {
            st.queue.push(Queued {
                delivery_id: delivery_id.to_string(),
                message_id: message_id.to_string(),
                document,
                attempt: 1,
                sent: false,
            })
        });
        self.wake.notify_waiters();
        Ok(())
    }

    /// Sends a delivery again with the same id (as after an acknowledgement that was lost).
    pub fn redeliver(&self, delivery_id: &str) -> Result<u32, DeliveryError> {
        let attempt = self
            .with(|st| {
                st.queue.iter_mut().find(|q| q.delivery_id == delivery_id).map(|q| {
                    q.attempt += 1;
                    q.sent = false;
                    q.attempt
                })
            })
            .flatten()
            .ok_or_else(|| DeliveryError::Unknown { delivery_id: delivery_id.to_string() })?;
        self.wake.notify_waiters();
        Ok(attempt)
    }

    /// The documents submitted so far.
    pub fn submissions(&self) -> Vec<SubmissionSeen> {
        self.with(|st| st.submissions.clone()).unwrap_or_default()
    }

    /// The connections so far.
    pub fn connections(&self) -> Vec<ConnectionSeen> {
        self.with(|st| st.connections.clone()).unwrap_or_default()
    }

    /// Whether (and when) the given attempt of a delivery was acknowledged.
    pub fn acked(&self, delivery_id: &str, attempt: u32) -> Option<Instant> {
        self.with(|st| st.acks.iter().find(|(d, a, _)| d == delivery_id && *a == attempt).map(|(_, _, t)| *t)).flatten()
    }
}

fn decode(format: Partner, bytes: &[u8]) -> Result<(Envelope, Vec<Record>), Vec<String>> {
    format.decode(bytes, &DecodeLimits::default()).map(|d| (d.envelope, d.records)).map_err(|e| {
        let problems: Vec<String> = e.problems().iter().map(|p| p.to_string()).collect();
        if problems.is_empty() {
            vec![e.to_string()]
        } else {
            problems
        }
    })
}

fn refs(records: &[Record]) -> Vec<RecordRef> {
    records.iter().map(|r| RecordRef { kind: r.kind().to_string(), id: r.id() }).collect()
}

#[tonic::async_trait]
impl Exchange for ExchangeForPartner {
    async fn submit(&self, request: Request<SubmitRequest>) -> Result<Response<SubmitReply>, Status> {
        let bytes = request.into_inner().document;
        let decoded = decode(self.format, &bytes);
        let answer = match &decoded {
            Ok((env, records)) => Ok(Response::new(SubmitReply {
                message_id: env.message_id.clone(),
                duplicate: false,
                records: refs(records),
                warnings: vec![],
                // yrdx as a test gateway signs nothing: its acceptance is no evidence.
                receipt: None,
            })),
            Err(problems) => Err(Status::invalid_argument(problems.join("; "))),
        };
        if let Ok(mut st) = self.state.lock() {
            st.submissions.push(SubmissionSeen { at: Instant::now(), bytes, decoded });
        }
        answer
    }

    type ReceiveStream = ReceiverStream<Result<Delivery, Status>>;

    async fn receive(&self, _request: Request<ReceiveRequest>) -> Result<Response<Self::ReceiveStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        let (state, wake) = (self.state.clone(), self.wake.clone());
        tokio::spawn(async move {
            loop {
                let due: Vec<Delivery> = match state.lock() {
                    Ok(mut st) => st
                        .queue
                        .iter_mut()
                        .filter(|q| !q.sent)
                        .map(|q| {
                            q.sent = true;
                            Delivery {
                                delivery_id: q.delivery_id.clone(),
                                message_id: q.message_id.clone(),
                                document: q.document.clone(),
                                attempt: q.attempt,
                            }
                        })
                        .collect(),
                    Err(_) => return,
                };
                for d in due {
                    if tx.send(Ok(d)).await.is_err() {
                        return;
                    }
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn ack(&self, request: Request<AckRequest>) -> Result<Response<AckReply>, Status> {
        let ids = request.into_inner().delivery_ids;
        let mut st = self.state.lock().map_err(|_| Status::internal("state"))?;
        let mut acknowledged = 0;
        for id in ids {
            let Some(attempt) = st.queue.iter().find(|q| q.delivery_id == id && q.sent).map(|q| q.attempt) else {
                continue;
            };
            if !st.acks.iter().any(|(d, a, _)| *d == id && *a == attempt) {
                st.acks.push((id, attempt, Instant::now()));
                acknowledged += 1;
            }
        }
        Ok(Response::new(AckReply { acknowledged }))
    }

    async fn get_receipt(&self, _request: Request<GetReceiptRequest>) -> Result<Response<GetReceiptReply>, Status> {
        Err(Status::not_found("yrdx as a test gateway issues no signed receipts"))
    }

    async fn check(&self, request: Request<CheckRequest>) -> Result<Response<CheckReply>, Status> {
        let reply = match decode(self.format, &request.into_inner().document) {
            Ok((_, records)) => CheckReply { valid: true, problems: vec![], truncated: false, records: refs(&records) },
            Err(problems) => CheckReply {
                valid: false,
                problems: problems
                    .into_iter()
                    .map(|message| CheckProblem { path: String::new(), record_id: String::new(), message })
                    .collect(),
                truncated: false,
                records: vec![],
            },
        };
        Ok(Response::new(reply))
    }
}

/// A partner's system to certify, and yrdx's gateway for it.
#[derive(Clone)]
pub struct PartnerEndpointTarget {
    /// The partner's name (`jiangsu`): its certificate must carry `urn:yrdx:partner:<name>`.
    pub partner: String,
    /// yrdx's gateway the partner's client connects to.
    pub gateway: Arc<PartnerFacingGateway>,
    /// How long a step waits for the partner (to connect, submit, acknowledge, answer).
    pub wait: Duration,
}

impl std::fmt::Debug for PartnerEndpointTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerEndpointTarget")
            .field("partner", &self.partner)
            .field("gateway", &self.gateway.url())
            .field("wait", &self.wait)
            .finish()
    }
}

/// The default of [`PartnerEndpointTarget::wait`].
pub const DEFAULT_PARTNER_WAIT: Duration = Duration::from_secs(60);

struct EndpointRun<'a> {
    target: &'a PartnerEndpointTarget,
    fill: &'a Placeholders,
    case_id: String,
    records: BTreeMap<String, Record>,
    /// Saved deliveries: name → delivery id.
    saved: BTreeMap<String, String>,
    findings: Vec<Finding>,
    evidence: Vec<Evidence>,
    step: usize,
}

/// Runs one case of the `partner-endpoint` suite; records are built from the vectors in `vectors`.
pub async fn run_case(
    case: &LoadedCase,
    target: &PartnerEndpointTarget,
    fill: &Placeholders,
    vectors: &Path,
) -> LiveOutcome {
    let def = &case.def;
    if !def.partners.is_empty() && !def.partners.contains(&target.partner) {
        return LiveOutcome::Omit(format!("for {} only", def.partners.join(", ")));
    }
    let mut run = EndpointRun {
        target,
        fill,
        case_id: def.id.clone(),
        records: BTreeMap::new(),
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
            Step::PartnerSubmits(s) => run.submits(s.count, s.within_ms).await,
            Step::PartnerTls => run.tls(),
            Step::Deliver(s) => run.deliver(&s.records, &s.save),
            Step::PartnerAcks(s) => run.acks(&s.delivery, s.within_ms).await,
            Step::Redeliver(s) => run.redeliver(&s.delivery),
            Step::PartnerAnswers(s) => run.answers(&s.record, s.within_ms, s.once).await,
            _ => Err("this step does not belong to the partner-endpoint suite".into()),
        };
        if let Err(e) = result {
            return LiveOutcome::Error(format!("step {}: {e}", i + 1), run.evidence);
        }
        if !run.findings.is_empty() {
            break;
        }
    }
    LiveOutcome::Ran(run.findings, run.evidence)
}

fn feedback_events(subs: &[SubmissionSeen], case_id: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in subs {
        let Ok((_, records)) = &s.decoded else { continue };
        for r in records {
            if let Record::CaseFeedback(f) = r {
                if f.case_id == case_id {
                    let e = f.event.as_ref();
                    out.push((
                        e.map(|e| e.event_id.clone()).unwrap_or_default(),
                        e.map(|e| e.by_region.clone()).unwrap_or_default(),
                    ));
                }
            }
        }
    }
    out
}

impl EndpointRun<'_> {
    fn at(&self, what: &str) -> String {
        format!("step {} {what}", self.step)
    }

    fn wait_ms(&self, within_ms: Option<u64>) -> Duration {
        within_ms.map(Duration::from_millis).unwrap_or(self.target.wait)
    }

    /// Waits for `count` submissions in all, then judges every one.
    async fn submits(&mut self, count: usize, within_ms: Option<u64>) -> Result<(), String> {
        let wait = self.wait_ms(within_ms);
        let deadline = Instant::now() + wait;
        let gw = &self.target.gateway;
        while gw.submissions().len() < count && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Documents sent in one go arrive close together: give the rest a moment.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let subs = gw.submissions();
        if subs.len() < count {
            self.findings.push(Finding::new(
                "the partner's system submits its documents",
                self.at("Submit"),
                format!("at least {count} document(s) within {} s", wait.as_secs()),
                format!("{}", subs.len()),
            ));
            return Ok(());
        }
        let mut ids: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (n, s) in subs.iter().enumerate() {
            let here = format!("{}: document {}", self.at("Submit"), n + 1);
            let view = match &s.decoded {
                Ok((env, records)) => canonical::encode(env, records)
                    .ok()
                    .and_then(|c| serde_json::from_slice::<serde_json::Value>(&c.bytes).ok()),
                Err(p) => Some(json!({ "problems": p })),
            };
            self.evidence.push(Evidence {
                step: self.step,
                actor: self.target.partner.clone(),
                method: "yrdx.v1.Exchange/Submit (received by yrdx as the gateway)".into(),
                status: if s.decoded.is_ok() { "OK".into() } else { "INVALID_ARGUMENT".into() },
                request: Payload::of(&s.bytes, view),
                response: Payload::view(json!({})),
                tls: None,
                duration_ms: 0,
            });
            match &s.decoded {
                Err(problems) => self.findings.push(Finding::new(
                    format!("the document is valid {} (every problem by the partner's path)", gw.format),
                    here,
                    "no problem",
                    problems.join("; "),
                )),
                Ok((env, _)) => {
                    if env.sender != gw.region {
                        self.findings.push(Finding::new(
                            "the envelope's sender is the partner's region",
                            format!("{here}: envelope.sender"),
                            gw.region.clone(),
                            env.sender.clone(),
                        ));
                    }
                    if env.receiver != "310000" {
                        self.findings.push(Finding::new(
                            "the envelope's receiver is Shanghai's exchange",
                            format!("{here}: envelope.receiver"),
                            "310000",
                            env.receiver.clone(),
                        ));
                    }
                    match ids.get(&env.message_id) {
                        Some(earlier) if *earlier != s.bytes => self.findings.push(Finding::new(
                            "a message id is never reused for another document",
                            format!("{here}: envelope.messageId"),
                            "a new message id",
                            env.message_id.clone(),
                        )),
                        _ => {
                            ids.insert(env.message_id.clone(), s.bytes.clone());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Every connection presented the partner's certificate and negotiated TLS 1.2 or later.
    fn tls(&mut self) -> Result<(), String> {
        let conns = self.target.gateway.connections();
        if conns.is_empty() {
            return Err("the partner's system has not connected yet (run the documents case first)".into());
        }
        let want = format!("URI:{}", yrdx_pki::partner_identity(&self.target.partner));
        for (n, c) in conns.iter().enumerate() {
            let here = format!("{}: connection {}", self.at("TLS"), n + 1);
            self.evidence.push(Evidence {
                step: self.step,
                actor: self.target.partner.clone(),
                method: "TLS handshake (yrdx as the gateway)".into(),
                status: match &c.outcome {
                    Ok(v) => v.clone(),
                    Err(_) => "refused".into(),
                },
                request: Payload::view(json!({ "client certificate SANs": c.client_sans })),
                response: Payload::view(json!({ "outcome": c.outcome.clone().unwrap_or_else(|e| e) })),
                tls: None,
                duration_ms: 0,
            });
            match &c.outcome {
                Err(e) => self.findings.push(Finding::new(
                    "the partner's client completes mutual TLS with a certificate the gateway accepts",
                    here,
                    "a completed handshake",
                    e.clone(),
                )),
                Ok(version) => {
                    if !c.client_sans.contains(&want) {
                        self.findings.push(Finding::new(
                            "the client certificate names the partner (exactly one registered identity)",
                            format!("{here}: subjectAltName"),
                            want.clone(),
                            c.client_sans.join(", "),
                        ));
                    }
                    if !matches!(version.as_str(), "TLSv1_2" | "TLSv1_3") {
                        self.findings.push(Finding::new(
                            "TLS 1.2 or later",
                            format!("{here}: version"),
                            "TLSv1_2 or TLSv1_3",
                            version.clone(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn deliver(&mut self, names: &[String], save: &Option<String>) -> Result<(), String> {
        let records: Vec<Record> = names.iter().filter_map(|n| self.records.get(n).cloned()).collect();
        let id = self.fill.fill(&format!("D-${{RUN}}-{}-{}", self.case_id.replace('.', "-"), self.step));
        let message_id = self.fill.fill(&format!("YRDX-C-${{RUN}}-{:02}{}", self.step, self.case_id.len()));
        self.target.gateway.deliver(&id, &message_id, &records).map_err(|e| e.to_string())?;
        if let Some(name) = save {
            self.saved.insert(name.clone(), id);
        }
        Ok(())
    }

    fn saved(&self, name: &str) -> Result<String, String> {
        self.saved.get(name).cloned().ok_or_else(|| format!("no delivery saved as {name:?}"))
    }

    async fn acks(&mut self, name: &str, within_ms: Option<u64>) -> Result<(), String> {
        let id = self.saved(name)?;
        let attempt = self
            .target
            .gateway
            .with(|st| st.queue.iter().find(|q| q.delivery_id == id).map(|q| q.attempt))
            .flatten()
            .ok_or("the delivery is not queued")?;
        let wait = self.wait_ms(within_ms);
        let deadline = Instant::now() + wait;
        while self.target.gateway.acked(&id, attempt).is_none() {
            if Instant::now() >= deadline {
                self.findings.push(Finding::new(
                    "the partner acknowledges every delivery it received (attempt by attempt)",
                    format!("{}: delivery {id}", self.at("Ack")),
                    format!("Ack of attempt {attempt} within {} s", wait.as_secs()),
                    "no Ack",
                ));
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    fn redeliver(&mut self, name: &str) -> Result<(), String> {
        let id = self.saved(name)?;
        self.target.gateway.redeliver(&id).map(|_| ()).map_err(|e| e.to_string())
    }

    /// Waits for the partner's feedback on a case transfer; with `once`, waits the whole time and
    /// asserts it never answered the case again as a new event.
    async fn answers(&mut self, name: &str, within_ms: Option<u64>, once: bool) -> Result<(), String> {
        let Some(Record::CaseTransfer(case)) = self.records.get(name) else {
            return Err(format!("record {name:?} is not a case transfer"));
        };
        let case_id = case.case_id.clone();
        let wait = self.wait_ms(within_ms);
        let deadline = Instant::now() + wait;
        loop {
            let events = feedback_events(&self.target.gateway.submissions(), &case_id);
            let done = Instant::now() >= deadline;
            if once && done {
                let distinct: BTreeSet<&String> = events.iter().map(|(e, _)| e).collect();
                if distinct.len() > 1 {
                    self.findings.push(Finding::new(
                        "a redelivered case transfer is not processed again (no second event)",
                        format!("{}: case {case_id}", self.at("feedback")),
                        "one feedback event for the case",
                        distinct.into_iter().cloned().collect::<Vec<_>>().join(", "),
                    ));
                }
                return Ok(());
            }
            if !once {
                if let Some((_, by)) = events.first() {
                    if *by != self.target.gateway.region {
                        self.findings.push(Finding::new(
                            "the feedback is by the responsible region",
                            format!("{}: case {case_id}: event.byRegion", self.at("feedback")),
                            self.target.gateway.region.clone(),
                            by.clone(),
                        ));
                    }
                    return Ok(());
                }
                if done {
                    self.findings.push(Finding::new(
                        "the partner answers a case transferred to it with a feedback",
                        format!("{}: case {case_id}", self.at("feedback")),
                        format!("a case_feedback for {case_id} within {} s", wait.as_secs()),
                        "none",
                    ));
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
