//! The `partner-endpoint` suite: certifies a partner's own system as the party under test. yrdx
//! acts as the gateway for it ([`PartnerFacingGateway`]: the `Exchange` service over mutual TLS),
//! the partner's client connects and submits its documents, receives and acknowledges what the
//! suite delivers, and answers a case transfer. The verdict is on its documents (decoded by our
//! adapter of its format, the envelope naming it and Shanghai), its handling of deliveries (every
//! delivery acknowledged, a redelivered case transfer not answered a second time as a new event),
//! its TLS client behaviour (a certificate naming the partner, TLS 1.2 or later, and a server
//! certificate from a CA it does not trust refused) and its handling of a busy gateway (a Submit
//! answered `RESOURCE_EXHAUSTED` with `retry-after` sent again, unchanged, no earlier than that).
//!
//! For the untrusted-certificate check the listener stays on the same address: each handshake
//! picks its certificate when the ClientHello arrives ([`LazyConfigAcceptor`]), so the suite can
//! serve a twin of the server certificate (same names, issued by a CA made for the run and given
//! to nobody) for one step, close the partner's open connections so that it must reconnect, and
//! swap back.

use crate::report::{Evidence, Finding, Payload};
use crate::suite::{LoadedCase, Placeholders, Step};
use crate::suites::live::{case_records, omitted_for_partner, LiveOutcome};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};
use tokio_rustls::rustls::server::{Acceptor, WebPkiClientVerifier};
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::LazyConfigAcceptor;
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
    #[error("partner-endpoint TLS ({what}): {source}")]
    Tls {
        /// Which file or step.
        what: &'static str,
        /// rustls's or the PEM parser's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The untrusted twin of the server certificate could not be made.
    #[error("partner-endpoint: cannot make the untrusted twin of the server certificate: {source}")]
    UntrustedTwin {
        /// rcgen's error.
        #[from]
        source: rcgen::Error,
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

/// How one TLS handshake with the partner's client ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// It completed, with this TLS version (`TLSv1_3`).
    Completed {
        /// The version negotiated.
        version: String,
    },
    /// It failed (an alert from the client, the client closing, our verifier refusing its
    /// certificate, no handshake in time), for this reason.
    Failed {
        /// rustls's error, or what happened.
        reason: String,
    },
}

impl Handshake {
    /// The version negotiated, or why it failed, for the report.
    pub fn describe(&self) -> String {
        match self {
            Handshake::Completed { version } => version.clone(),
            Handshake::Failed { reason } => reason.clone(),
        }
    }
}

/// Which server certificate the listener presented in a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServedCertificate {
    /// The server certificate the partner was given the CA of (`--server-cert`).
    Trusted,
    /// Its twin from a CA made for the run, which the partner's client must refuse.
    Untrusted,
}

/// One TLS connection the partner's client opened (or tried to; a connection closed before any
/// ClientHello, a port probe, is not kept).
#[derive(Debug, Clone)]
pub struct ConnectionSeen {
    /// When the handshake ended.
    pub at: Instant,
    /// The certificate the listener presented.
    pub served: ServedCertificate,
    /// The SANs of its client certificate (`URI:urn:yrdx:partner:jiangsu`).
    pub client_sans: Vec<String>,
    /// How the handshake ended.
    pub handshake: Handshake,
}

/// One document the partner submitted.
#[derive(Debug, Clone)]
pub struct SubmissionSeen {
    /// When it arrived (a refused one: when it was answered).
    pub at: Instant,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its envelope and records as our adapter decoded them, or every problem by its path.
    pub decoded: Result<(Envelope, Vec<Record>), Vec<String>>,
    /// `Some(seconds)` when the suite answered it `RESOURCE_EXHAUSTED` with this `retry-after`.
    pub busy_retry_after: Option<u64>,
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
    /// New handshakes present the untrusted twin of the server certificate.
    serve_untrusted: bool,
    /// The next Submit is answered `RESOURCE_EXHAUSTED` with this `retry-after` (seconds).
    busy_next_submit: Option<u64>,
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
    /// Bumped to close every connection open at that moment.
    close_open: watch::Sender<u64>,
    untrusted_fingerprint: String,
}

struct ExchangeForPartner {
    format: Partner,
    state: Arc<Mutex<EndpointState>>,
    wake: Arc<Notify>,
}

fn tls_error<E: std::error::Error + Send + Sync + 'static>(what: &'static str) -> impl Fn(E) -> EndpointError {
    move |e| EndpointError::Tls { what, source: Box::new(e) }
}

/// A twin of the server certificate `cert_pem`: the same DNS and IP names, issued by a CA made
/// here and given to nobody, so that the only thing wrong with it is who issued it. Returns the
/// certificate and key, PEM.
fn untrusted_twin(cert_pem: &str) -> Result<(String, String), rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
    let now = x509_parser::time::ASN1Time::now().to_datetime();
    let (hour, day) = (Duration::from_secs(3600), Duration::from_secs(24 * 3600));
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name.push(DnType::CommonName, "yrdx conformance untrusted CA (given to no partner)");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    (ca.not_before, ca.not_after) = (now - hour, now + day);
    let issuer = Issuer::new(ca, ca_key);
    let mut sans = Vec::new();
    for name in crate::tls::pem_san(cert_pem) {
        if let Some(dns) = name.strip_prefix("DNS:") {
            sans.push(SanType::DnsName(dns.try_into()?));
        } else if let Some(ip) = name.strip_prefix("IP:").and_then(|ip| ip.parse().ok()) {
            sans.push(SanType::IpAddress(ip));
        }
    }
    if sans.is_empty() {
        sans.push(SanType::DnsName("localhost".try_into()?));
    }
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, "yrdx gateway (untrusted twin)");
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    (params.not_before, params.not_after) = (now - hour, now + day);
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A server configuration: `cert_pem`/`key_pem`, client certificates verified by `verifier`, h2.
fn server_config(
    verifier: Arc<dyn tokio_rustls::rustls::server::danger::ClientCertVerifier>,
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<ServerConfig>, EndpointError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(tls_error("server certificate"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(tls_error("server key"))?;
    let mut tls = ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(tls_error("server certificate"))?;
    tls.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(tls))
}

/// Hands `tls` to the gRPC server through an in-memory pipe, so the suite can close it
/// (`close_open` bumped) whatever state HTTP/2 is in; the partner then sees its connection drop.
fn closable(
    mut tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    mut close_open: watch::Receiver<u64>,
) -> tokio::io::DuplexStream {
    let (near, mut far) = tokio::io::duplex(256 * 1024);
    close_open.borrow_and_update();
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::io::copy_bidirectional(&mut tls, &mut far) => {}
            _ = close_open.changed() => {}
        }
    });
    near
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
            let c = c.map_err(tls_error("client CA"))?;
            roots.add(c).map_err(tls_error("client CA"))?;
        }
        let verifier = WebPkiClientVerifier::builder(Arc::new(roots)).build().map_err(tls_error("client CA"))?;
        let trusted = server_config(verifier.clone(), cert_pem, key_pem)?;
        let (twin_cert, twin_key) = untrusted_twin(cert_pem)?;
        let untrusted_fingerprint = crate::tls::pem_fingerprint(&twin_cert).unwrap_or_default();
        let untrusted = server_config(verifier, &twin_cert, &twin_key)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| EndpointError::Listen { listen: listen.to_string(), source })?;
        let addr =
            listener.local_addr().map_err(|source| EndpointError::Listen { listen: listen.to_string(), source })?;
        let state = Arc::new(Mutex::new(EndpointState::default()));
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let (close_open, closing) = watch::channel(0u64);
        let (tx, rx) = mpsc::channel(16);
        let seen = state.clone();
        let mut accept_stop = stopped.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
                    _ = accept_stop.changed() => break,
                };
                let (tx, seen, closing) = (tx.clone(), seen.clone(), closing.clone());
                let (trusted, untrusted) = (trusted.clone(), untrusted.clone());
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(Duration::from_secs(10), async {
                        let start = match LazyConfigAcceptor::new(Acceptor::default(), tcp).await {
                            Ok(start) => start,
                            // Closed before any ClientHello: a port probe, not a TLS client.
                            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
                            Err(e) => return Some((ServedCertificate::Trusted, Err(e))),
                        };
                        // The certificate is chosen when the ClientHello arrives.
                        let served = match seen.lock().map(|st| st.serve_untrusted) {
                            Ok(true) => ServedCertificate::Untrusted,
                            _ => ServedCertificate::Trusted,
                        };
                        let config = if served == ServedCertificate::Untrusted { untrusted } else { trusted };
                        Some((served, start.into_stream(config).await))
                    })
                    .await;
                    let (served, result) = match handshake {
                        Ok(None) => return,
                        Ok(Some(r)) => r,
                        Err(_) => (ServedCertificate::Trusted, Err(std::io::Error::other("no handshake within 10 s"))),
                    };
                    let (conn, sans, outcome) = match result {
                        Ok(tls) => {
                            let (_, session) = tls.get_ref();
                            let sans = session
                                .peer_certificates()
                                .and_then(|c| c.first())
                                .map(|c| crate::tls::san_of(c.as_ref()))
                                .unwrap_or_default();
                            let version = session.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
                            (Some(tls), sans, Handshake::Completed { version })
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                            (None, vec![], Handshake::Failed { reason: "the client closed the connection".into() })
                        }
                        Err(e) => (None, vec![], Handshake::Failed { reason: e.to_string() }),
                    };
                    if let Ok(mut st) = seen.lock() {
                        st.connections.push(ConnectionSeen {
                            at: Instant::now(),
                            served,
                            client_sans: sans,
                            handshake: outcome,
                        });
                    }
                    // A handshake the client should have refused carries nothing: it is closed.
                    if let (Some(conn), ServedCertificate::Trusted) = (conn, served) {
                        let _ = tx.send(Ok::<_, std::io::Error>(closable(conn, closing))).await;
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
        Ok(PartnerFacingGateway {
            addr,
            format,
            region: region.to_string(),
            state,
            wake,
            stop,
            close_open,
            untrusted_fingerprint,
        })
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

    /// From now on every new handshake presents the untrusted twin of the server certificate
    /// (`true`) or the server certificate again (`false`); turning it on closes every open
    /// connection, so the partner's client must reconnect.
    pub fn serve_untrusted_certificate(&self, on: bool) {
        self.with(|st| st.serve_untrusted = on);
        if on {
            self.close_open.send_modify(|g| *g += 1);
        }
    }

    /// The SHA-256 fingerprint of the untrusted twin of the server certificate.
    pub fn untrusted_fingerprint(&self) -> &str {
        &self.untrusted_fingerprint
    }

    /// Answers the partner's next Submit `RESOURCE_EXHAUSTED` with `retry-after` = `secs`, as
    /// the gateway answers a partner over its rate limit (nothing is stored).
    pub fn answer_next_submit_busy(&self, secs: u64) {
        self.with(|st| st.busy_next_submit = Some(secs));
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
        let busy = self.state.lock().ok().and_then(|mut st| st.busy_next_submit.take());
        if let Some(secs) = busy {
            // The shape of the gateway's own answer to a partner over its rate limit.
            let mut status = Status::resource_exhausted(format!(
                "rate limit for {} (the conformance suite's busy answer): retry in {secs} s",
                self.format
            ));
            if let Ok(v) = secs.to_string().parse() {
                status.metadata_mut().insert("retry-after", v);
            }
            if let Ok(mut st) = self.state.lock() {
                st.submissions.push(SubmissionSeen {
                    at: Instant::now(),
                    bytes,
                    decoded,
                    busy_retry_after: Some(secs),
                });
            }
            return Err(status);
        }
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
            st.submissions.push(SubmissionSeen { at: Instant::now(), bytes, decoded, busy_retry_after: None });
        }
        answer
    }

    type ReceiveStream = ReceiverStream<Result<Delivery, Status>>;

    async fn receive(&self, _request: Request<ReceiveRequest>) -> Result<Response<Self::ReceiveStream>, Status> {
        let (tx, rx) = mpsc::channel(16);
        let (state, wake) = (self.state.clone(), self.wake.clone());
        tokio::spawn(async move {
            // What this stream sent: a delivery it sent and that was not acknowledged when the
            // stream ends (the partner went away, its connection was closed) is due again, as
            // after a gateway's visibility timeout.
            let mut sent_here: Vec<(String, u32)> = Vec::new();
            'stream: loop {
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
                    sent_here.push((d.delivery_id.clone(), d.attempt));
                    if tx.send(Ok(d)).await.is_err() {
                        break 'stream;
                    }
                }
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = tx.closed() => break 'stream,
                }
            }
            if let Ok(mut st) = state.lock() {
                let st = &mut *st;
                for (id, attempt) in sent_here {
                    let acked = st.acks.iter().any(|(d, a, _)| *d == id && *a == attempt);
                    if let Some(q) = st.queue.iter_mut().find(|q| q.delivery_id == id && q.attempt == attempt) {
                        q.sent = q.sent && acked;
                    }
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

/// Why a step of the suite could not run (the case or the tool is wrong, not the partner: the
/// case ends in error).
#[derive(Debug, thiserror::Error)]
pub enum EndpointStepError {
    /// The step is another suite's.
    #[error("{step} steps belong to another suite, not partner-endpoint")]
    OtherSuite {
        /// The step's `do`.
        step: &'static str,
    },
    /// A step judging connections ran before the partner connected at all.
    #[error("the partner's system has not connected yet (run the documents case first)")]
    NotConnected,
    /// A step names a delivery no earlier step saved.
    #[error("no delivery saved as {name:?}")]
    NotSaved {
        /// The name.
        name: String,
    },
    /// A saved delivery is not in the queue.
    #[error("delivery {delivery_id} is not queued")]
    NotQueued {
        /// Its id.
        delivery_id: String,
    },
    /// A step names a record that is not a case transfer.
    #[error("record {name:?} is not a case transfer")]
    NotACaseTransfer {
        /// The record's name.
        name: String,
    },
    /// `partner_resends` ran without a `busy_answer` step before it.
    #[error("partner_resends needs a busy_answer step before it in the case")]
    NoBusyAnswer,
    /// A delivery could not be queued.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
}

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
    /// Set by a step that could not check what it checks (the partner did nothing to judge):
    /// the case is skipped with this reason, and a required one makes the run incomplete.
    not_checked: Option<String>,
    /// The `busy_answer` of the case: (submissions seen before it, retry-after seconds).
    busy: Option<(usize, u64)>,
}

/// Runs one case of the `partner-endpoint` suite; records are built from the vectors in `vectors`.
pub async fn run_case(
    case: &LoadedCase,
    target: &PartnerEndpointTarget,
    fill: &Placeholders,
    vectors: &Path,
) -> LiveOutcome {
    let def = &case.def;
    if let Some(outcome) = omitted_for_partner(def, &target.partner) {
        return outcome;
    }
    let records = match case_records(def, fill, vectors) {
        Ok(records) => records,
        Err(outcome) => return outcome,
    };
    let mut run = EndpointRun {
        target,
        fill,
        case_id: def.id.clone(),
        records,
        saved: BTreeMap::new(),
        findings: vec![],
        evidence: vec![],
        step: 0,
        not_checked: None,
        busy: None,
    };
    for (i, step) in def.steps.iter().enumerate() {
        run.step = i + 1;
        let result = match step {
            Step::PartnerSubmits(s) => run.submits(s.count, s.within_ms).await,
            Step::PartnerTls => run.tls(),
            Step::Deliver(s) => run.deliver(&s.records, &s.save),
            Step::PartnerAcks(s) => run.acks(&s.delivery, s.within_ms).await,
            Step::Redeliver(s) => run.redeliver(&s.delivery),
            Step::PartnerAnswers(s) => run.answers(&s.record, s.within_ms, s.once).await,
            Step::UntrustedServerCertificate(s) => run.untrusted_server(s.within_ms, s.watch_ms).await,
            Step::BusyAnswer(s) => {
                run.busy_answer(s.retry_after_secs);
                Ok(())
            }
            Step::PartnerResends(s) => run.resends(s.within_ms).await,
            other => Err(EndpointStepError::OtherSuite { step: other.name() }),
        };
        if let Err(e) = result {
            return LiveOutcome::Error(format!("step {}: {e}", i + 1), run.evidence);
        }
        if let Some(reason) = run.not_checked.take() {
            return LiveOutcome::Skip(format!("step {}: {reason}", i + 1));
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
    async fn submits(&mut self, count: usize, within_ms: Option<u64>) -> Result<(), EndpointStepError> {
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
                status: match (&s.decoded, s.busy_retry_after) {
                    (_, Some(_)) => "RESOURCE_EXHAUSTED (the suite's busy answer)".into(),
                    (Ok(_), None) => "OK".into(),
                    (Err(_), None) => "INVALID_ARGUMENT".into(),
                },
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

    /// Every connection presented the partner's certificate and negotiated TLS 1.2 or later
    /// (those served the untrusted twin are judged by [`EndpointRun::untrusted_server`]).
    fn tls(&mut self) -> Result<(), EndpointStepError> {
        let conns: Vec<ConnectionSeen> =
            self.target.gateway.connections().into_iter().filter(|c| c.served == ServedCertificate::Trusted).collect();
        if conns.is_empty() {
            return Err(EndpointStepError::NotConnected);
        }
        let want = format!("URI:{}", yrdx_pki::partner_identity(&self.target.partner));
        for (n, c) in conns.iter().enumerate() {
            let here = format!("{}: connection {}", self.at("TLS"), n + 1);
            self.evidence.push(Evidence {
                step: self.step,
                actor: self.target.partner.clone(),
                method: "TLS handshake (yrdx as the gateway)".into(),
                status: match &c.handshake {
                    Handshake::Completed { version } => version.clone(),
                    Handshake::Failed { .. } => "refused".into(),
                },
                request: Payload::view(json!({ "client certificate SANs": c.client_sans })),
                response: Payload::view(json!({ "outcome": c.handshake.describe() })),
                tls: None,
                duration_ms: 0,
            });
            match &c.handshake {
                Handshake::Failed { reason } => self.findings.push(Finding::new(
                    "the partner's client completes mutual TLS with a certificate the gateway accepts",
                    here,
                    "a completed handshake",
                    reason.clone(),
                )),
                Handshake::Completed { version } => {
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

    fn deliver(&mut self, names: &[String], save: &Option<String>) -> Result<(), EndpointStepError> {
        let records: Vec<Record> = names.iter().filter_map(|n| self.records.get(n).cloned()).collect();
        let id = self.fill.fill(&format!("D-${{RUN}}-{}-{}", self.case_id.replace('.', "-"), self.step));
        let message_id = self.fill.fill(&format!("YRDX-C-${{RUN}}-{:02}{}", self.step, self.case_id.len()));
        self.target.gateway.deliver(&id, &message_id, &records)?;
        if let Some(name) = save {
            self.saved.insert(name.clone(), id);
        }
        Ok(())
    }

    fn saved(&self, name: &str) -> Result<String, EndpointStepError> {
        self.saved.get(name).cloned().ok_or_else(|| EndpointStepError::NotSaved { name: name.to_string() })
    }

    async fn acks(&mut self, name: &str, within_ms: Option<u64>) -> Result<(), EndpointStepError> {
        let id = self.saved(name)?;
        let attempt = self
            .target
            .gateway
            .with(|st| st.queue.iter().find(|q| q.delivery_id == id).map(|q| q.attempt))
            .flatten()
            .ok_or_else(|| EndpointStepError::NotQueued { delivery_id: id.clone() })?;
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

    fn redeliver(&mut self, name: &str) -> Result<(), EndpointStepError> {
        let id = self.saved(name)?;
        self.target.gateway.redeliver(&id)?;
        Ok(())
    }

    /// Waits for the partner's feedback on a case transfer; with `once`, waits the whole time and
    /// asserts it never answered the case again as a new event.
    async fn answers(&mut self, name: &str, within_ms: Option<u64>, once: bool) -> Result<(), EndpointStepError> {
        let Some(Record::CaseTransfer(case)) = self.records.get(name) else {
            return Err(EndpointStepError::NotACaseTransfer { name: name.to_string() });
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

    /// Serves the untrusted twin of the server certificate, closes the partner's connections and
    /// watches its attempts to reconnect: it passes when at least one was made and its client
    /// aborted every one; a completed handshake fails; no attempt within the wait leaves the case
    /// not checked. The right certificate is served again in any case.
    async fn untrusted_server(
        &mut self,
        within_ms: Option<u64>,
        watch_ms: Option<u64>,
    ) -> Result<(), EndpointStepError> {
        let gw = self.target.gateway.clone();
        let wait = self.wait_ms(within_ms);
        let watch = Duration::from_millis(watch_ms.unwrap_or(3000));
        let before = gw.connections().len();
        let started = Instant::now();
        gw.serve_untrusted_certificate(true);
        let attempts = loop {
            let attempts: Vec<ConnectionSeen> = gw
                .connections()
                .into_iter()
                .skip(before)
                .filter(|c| c.served == ServedCertificate::Untrusted)
                .collect();
            let now = Instant::now();
            let watched = attempts.first().is_some_and(|first| now >= first.at + watch);
            if watched || now >= started + wait {
                break attempts;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        gw.serve_untrusted_certificate(false);
        if attempts.is_empty() {
            self.not_checked = Some(format!(
                "the partner's client made no TLS connection within {} s after its connections were closed, so \
                 whether it refuses an untrusted server certificate is not known (have it reconnect, or poll, \
                 within --partner-wait-secs)",
                wait.as_secs()
            ));
            return Ok(());
        }
        for (n, c) in attempts.iter().enumerate() {
            let after = c.at.saturating_duration_since(started).as_secs_f64();
            self.evidence.push(Evidence {
                step: self.step,
                actor: self.target.partner.clone(),
                method: "TLS handshake, yrdx serving a server certificate from an untrusted CA".into(),
                status: match &c.handshake {
                    Handshake::Completed { version } => format!("completed ({version})"),
                    Handshake::Failed { .. } => "aborted".into(),
                },
                request: Payload::view(json!({
                    "served certificate (SHA-256)": gw.untrusted_fingerprint(),
                    "client certificate SANs": c.client_sans,
                })),
                response: Payload::view(json!({ "outcome": c.handshake.describe(), "seconds after the swap": after })),
                tls: None,
                duration_ms: 0,
            });
            if let Handshake::Completed { version } = &c.handshake {
                self.findings.push(Finding::new(
                    "the partner's client refuses a server certificate from a CA it does not trust",
                    format!("{}: connection attempt {} ({after:.1} s after the swap)", self.at("TLS"), n + 1),
                    "the handshake aborted by the client (unknown issuer)",
                    format!(
                        "the handshake completed ({version}): the client accepted a certificate issued by \
                         \"yrdx conformance untrusted CA\" (SHA-256 {})",
                        gw.untrusted_fingerprint()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Arms the busy answer for the partner's next Submit.
    fn busy_answer(&mut self, retry_after_secs: u64) {
        let seen = self.target.gateway.submissions().len();
        self.busy = Some((seen, retry_after_secs));
        self.target.gateway.answer_next_submit_busy(retry_after_secs);
    }

    /// Waits for the Submit the suite answered busy, then for the same message again: same
    /// sender and message id, same bytes, no earlier than its `retry-after`, within the wait.
    async fn resends(&mut self, within_ms: Option<u64>) -> Result<(), EndpointStepError> {
        let (seen, secs) = self.busy.ok_or(EndpointStepError::NoBusyAnswer)?;
        let gw = self.target.gateway.clone();
        let wait = self.wait_ms(within_ms);
        let deadline = Instant::now() + wait;
        let refused = loop {
            let refused = gw.submissions().into_iter().skip(seen).find(|s| s.busy_retry_after.is_some());
            if let Some(r) = refused {
                break r;
            }
            if Instant::now() >= deadline {
                gw.with(|st| st.busy_next_submit = None);
                self.findings.push(Finding::new(
                    "the partner's system submits (its feedback on the case transferred to it), so that the \
                     Submit can be answered busy",
                    self.at("Submit"),
                    format!("a Submit within {} s", wait.as_secs()),
                    "none",
                ));
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let envelope = refused.decoded.as_ref().ok().map(|(e, _)| (e.sender.clone(), e.message_id.clone()));
        let shown = envelope
            .as_ref()
            .map(|(sender, id)| format!("sender {sender}, message {id}"))
            .unwrap_or_else(|| "a document that does not decode".into());
        self.evidence.push(Evidence {
            step: self.step,
            actor: self.target.partner.clone(),
            method: "yrdx.v1.Exchange/Submit (received by yrdx as the gateway)".into(),
            status: "RESOURCE_EXHAUSTED".into(),
            request: Payload::of(&refused.bytes, Some(json!({ "message": shown }))),
            response: Payload::view(json!({ "code": "RESOURCE_EXHAUSTED", "retry-after": secs.to_string() })),
            tls: None,
            duration_ms: 0,
        });
        let same_message = |s: &SubmissionSeen| match (&s.decoded, &envelope) {
            (Ok((e, _)), Some((sender, id))) => e.sender == *sender && e.message_id == *id,
            _ => s.bytes == refused.bytes,
        };
        let not_before = refused.at + Duration::from_secs(secs);
        let deadline = not_before + wait;
        let here = format!("{}: {shown}", self.at("Submit"));
        let resent = loop {
            let again = gw
                .submissions()
                .into_iter()
                .filter(|s| s.at > refused.at && s.busy_retry_after.is_none())
                .find(|s| same_message(s));
            if again.is_some() || Instant::now() >= deadline {
                break again;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let Some(resent) = resent else {
            self.findings.push(Finding::new(
                "a Submit answered RESOURCE_EXHAUSTED is sent again once its retry-after has passed",
                here,
                format!("the same message again, {secs} s to {} s after the refusal", secs + wait.as_secs()),
                format!("not sent again within {} s of the refusal", secs + wait.as_secs()),
            ));
            return Ok(());
        };
        let after = resent.at.saturating_duration_since(refused.at).as_secs_f64();
        self.evidence.push(Evidence {
            step: self.step,
            actor: self.target.partner.clone(),
            method: "yrdx.v1.Exchange/Submit (received by yrdx as the gateway)".into(),
            status: "OK".into(),
            request: Payload::of(&resent.bytes, Some(json!({ "seconds after the refusal": after }))),
            response: Payload::view(json!({})),
            tls: None,
            duration_ms: 0,
        });
        if resent.at < not_before {
            self.findings.push(Finding::new(
                "a Submit answered RESOURCE_EXHAUSTED is not sent again before its retry-after",
                here.clone(),
                format!("sent again no earlier than {secs} s after the refusal (retry-after: {secs})"),
                format!("sent again {after:.3} s after the refusal"),
            ));
        }
        if resent.bytes != refused.bytes {
            self.findings.push(Finding::new(
                "a message sent again after a busy answer is the same message (same bytes)",
                here,
                format!("the {} bytes refused", refused.bytes.len()),
                format!("{} other bytes under the same sender and message id", resent.bytes.len()),
            ));
        }
        Ok(())
    }
}
