//! The gateway's own TLS accept loop and admission control (`[limits]` in the configuration):
//! connection counting (total and per source address, the excess closed right after accept,
//! before any handshake), a handshake timeout, an idle timeout, back-off on accept errors, the
//! open-file limit, and a global bound on calls in flight that refuses the excess with
//! `RESOURCE_EXHAUSTED` before reading its body.
//!
//! The rustls configuration sits behind a [`TlsConfigHandle`]: every handshake takes the one in
//! force at that moment, so a later change (CRL reload) can swap it without a restart.

use crate::config::LimitsConfig;
use crate::metrics::TlsRefusals;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tonic::codegen::http;
use tracing::{debug, info, warn};
use x509_parser::prelude::FromDer;

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A PEM file holds no usable certificate or key.
    #[error("{what}: {message}")]
    Pem {
        /// Which key of the configuration (`tls.cert`, `tls.key`, `tls.client_ca`, `tls.crls[0]`).
        what: String,
        /// The parser's message.
        message: String,
    },
    /// rustls refused the material.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("tls.client_ca / tls.crls: client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The TLS material of a configuration, read from its files: what [`server_config`] builds from.
#[derive(Debug, Clone, Default)]
pub struct TlsMaterial {
    /// The server certificate chain, PEM (`tls.cert`).
    pub cert_pem: Vec<u8>,
    /// The server's private key, PEM (`tls.key`).
    pub key_pem: Vec<u8>,
    /// The CAs that issue client certificates, PEM (`tls.client_ca`; two during a rollover).
    pub client_ca_pem: Vec<u8>,
    /// The CRLs, each with its key for error messages (`tls.crls[0]` …), PEM or DER.
    pub crls: Vec<(String, Vec<u8>)>,
    /// `tls.allow_stale_crls`.
    pub allow_stale_crls: bool,
}

/// The CRLs of one file, PEM (one or more blocks) or DER, checked to parse, with when the
/// oldest of them is due to be replaced (its nextUpdate, Unix seconds).
fn parse_crls(
    what: &str,
    bytes: &[u8],
) -> Result<(Vec<CertificateRevocationListDer<'static>>, Option<i64>), TransportError> {
    let bad = |message: String| TransportError::Pem { what: what.to_string(), message };
    let ders: Vec<CertificateRevocationListDer<'static>> = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        CertificateRevocationListDer::pem_slice_iter(bytes).collect::<Result<_, _>>().map_err(|e| bad(e.to_string()))?
    } else {
        vec![CertificateRevocationListDer::from(bytes.to_vec())]
    };
    if ders.is_empty() {
        return Err(bad("no certificate revocation list".into()));
    }
    let mut next_update: Option<i64> = None;
    for der in &ders {
        let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der.as_ref())
            .map_err(|e| bad(format!("not a certificate revocation list: {e}")))?;
        if let Some(t) = crl.next_update() {
            let t = t.timestamp();
            next_update = Some(next_update.map_or(t, |n| n.min(t)));
        }
    }
    Ok((ders, next_update))
}

/// A TLS server configuration and the client verifier inside it (kept to check the certificates
/// of open connections again after a reload).
#[derive(Debug, Clone)]
pub struct BuiltTls {
    /// For the acceptor.
    pub config: Arc<ServerConfig>,
    /// The CA bundle and CRLs, as the handshake applies them (uncounted).
    pub verifier: Arc<dyn ClientCertVerifier>,
    /// Where refused handshakes are counted.
    pub refusals: TlsRefusals,
}

/// Builds the server's rustls configuration: TLS 1.2 and 1.3, a client certificate signed by one
/// of the client CAs and not revoked by the CRLs required, ALPN `h2`. Refusals of client
/// certificates are logged with the certificate's serial and counted by reason in `refusals`.
pub fn server_config(material: &TlsMaterial, refusals: TlsRefusals) -> Result<BuiltTls, TransportError> {
    let pem = |what: &'static str| {
        move |e: rustls::pki_types::pem::Error| TransportError::Pem { what: what.into(), message: e.to_string() }
    };
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&material.cert_pem).collect::<Result<_, _>>().map_err(pem("tls.cert"))?;
    if chain.is_empty() {
        return Err(TransportError::Pem { what: "tls.cert".into(), message: "no certificate".into() });
    }
    let key = PrivateKeyDer::from_pem_slice(&material.key_pem).map_err(pem("tls.key"))?;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&material.client_ca_pem) {
        roots
            .add(ca.map_err(pem("tls.client_ca"))?)
            .map_err(|e| TransportError::Pem { what: "tls.client_ca".into(), message: e.to_string() })?;
    }
    if roots.is_empty() {
        return Err(TransportError::Pem { what: "tls.client_ca".into(), message: "no certificate".into() });
    }
    let mut crls = Vec::new();
    let now = x509_parser::time::ASN1Time::now().timestamp();
    for (what, bytes) in &material.crls {
        let (ders, next_update) = parse_crls(what, bytes)?;
        if let Some(t) = next_update.filter(|t| *t < now) {
            // Loaded anyway: the handshake decides (refused unless tls.allow_stale_crls).
            warn!(crl = %what, next_update = t, allow_stale_crls = material.allow_stale_crls,
                "certificate revocation list is past its nextUpdate: publish a fresh one");
        }
        crls.extend(ders);
    }
    // One explicit provider: the process-wide default panics when two are compiled in.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .with_crls(crls)
        // Partner and operator certificates are issued by the configured CAs directly; a CA's
        // own revocation is its removal from tls.client_ca.
        .only_check_end_entity_revocation();
    if !material.allow_stale_crls {
        // Fail closed: a CRL past its nextUpdate may not list the latest revocations.
        builder = builder.enforce_revocation_expiration();
    }
    let verifier = builder.build()?;
    let counting = Arc::new(CountingVerifier { inner: verifier.clone(), refusals: refusals.clone() });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)?
        .with_client_cert_verifier(counting)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(BuiltTls { config: Arc::new(config), verifier, refusals })
}

/// The word a refusal is counted under.
pub fn refusal_reason(e: &rustls::Error) -> &'static str {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Revoked => "revoked",
            C::ExpiredRevocationList | C::ExpiredRevocationListContext { .. } => "crl_expired",
            C::UnknownRevocationStatus => "unknown_revocation_status",
            C::UnknownIssuer => "unknown_issuer",
            C::Expired | C::ExpiredContext { .. } => "expired",
            C::NotValidYet | C::NotValidYetContext { .. } => "not_valid_yet",
            _ => "invalid",
        },
        _ => "invalid",
    }
}

pub use crate::certificate::serial_hex;

/// The webpki client verifier, logging and counting what it refuses.
#[derive(Debug)]
struct CountingVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    refusals: TlsRefusals,
}

impl ClientCertVerifier for CountingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner.verify_client_cert(end_entity, intermediates, now).inspect_err(|e| {
            let reason = refusal_reason(e);
            self.refusals.refused(reason);
            warn!(
                serial = %serial_hex(end_entity.as_ref()),
                identity = %crate::certificate::san_uris(end_entity.as_ref()).join(", "),
                reason,
                error = %e,
                "client certificate refused in the TLS handshake"
            );
        })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Why `verifier` refuses these certificates now (leaf first), if it does.
pub fn refused_now(verifier: &dyn ClientCertVerifier, certs: &[CertificateDer<'static>]) -> Option<String> {
    let Some((leaf, intermediates)) = certs.split_first() else {
        return Some("no client certificate".into());
    };
    verifier
        .verify_client_cert(leaf, intermediates, UnixTime::now())
        .err()
        .map(|e| format!("{} ({e})", refusal_reason(&e)))
}

/// The rustls configuration in force, swappable while the gateway runs: each handshake uses the
/// one current when it starts; connections already open keep theirs.
#[derive(Debug)]
pub struct TlsConfigHandle(RwLock<BuiltTls>);

impl TlsConfigHandle {
    /// A handle holding `tls`.
    pub fn new(tls: BuiltTls) -> TlsConfigHandle {
        TlsConfigHandle(RwLock::new(tls))
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).config.clone()
    }

    /// The client verifier in force (CA bundle and CRLs).
    pub fn verifier(&self) -> Arc<dyn ClientCertVerifier> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).verifier.clone()
    }

    /// Where refused handshakes are counted.
    pub fn refusals(&self) -> TlsRefusals {
        self.0.read().unwrap_or_else(PoisonError::into_inner).refusals.clone()
    }

    /// Puts `tls` in force for every later handshake (a reload of keys, CAs or CRLs).
    pub fn replace(&self, tls: BuiltTls) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = tls;
    }
}

/// One open connection as the registry knows it.
#[derive(Debug)]
struct Live {
    remote: SocketAddr,
    certs: Option<Arc<Vec<CertificateDer<'static>>>>,
    close: watch::Sender<bool>,
}

/// Every established connection with its verified certificates and a way to close it: a reload
/// checks each again and closes those the new CAs, CRLs or registry no longer admit.
#[derive(Debug, Default)]
pub struct LiveConnections {
    next: AtomicU64,
    map: Mutex<HashMap<u64, Live>>,
}

/// A connection's place in [`LiveConnections`]; dropping it (the connection ends) removes it.
#[derive(Debug)]
struct Registration {
    id: u64,
    registry: Arc<LiveConnections>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.map.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
    }
}

impl LiveConnections {
    /// An empty registry.
    pub fn new() -> Arc<LiveConnections> {
        Arc::new(LiveConnections::default())
    }

    fn register(
        self: &Arc<Self>,
        remote: SocketAddr,
        certs: Option<Arc<Vec<CertificateDer<'static>>>>,
    ) -> (Registration, watch::Receiver<bool>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (close, closed) = watch::channel(false);
        self.map.lock().unwrap_or_else(PoisonError::into_inner).insert(id, Live { remote, certs, close });
        (Registration { id, registry: self.clone() }, closed)
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// True when no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The SAN URIs of the leaf certificate of every open connection (one entry per connection;
    /// empty while a connection has no verified certificate): who is connected now.
    pub fn connected_identities(&self) -> Vec<Vec<String>> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.values()
            .map(|live| {
                live.certs
                    .as_deref()
                    .and_then(|c| c.first())
                    .map(|leaf| crate::certificate::san_uris(leaf.as_ref()))
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Closes every connection whose certificates `refuse` has a reason for (logged with the
    /// certificate's serial); returns how many were closed. Their calls and Receive streams end
    /// with the connection.
    pub fn close_unless_admitted(&self, refuse: impl Fn(&[CertificateDer<'static>]) -> Option<String>) -> usize {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        let mut closed = 0;
        for live in map.values() {
            let certs: &[CertificateDer<'static>] = live.certs.as_deref().map_or(&[], |c| c.as_slice());
            if let Some(why) = refuse(certs) {
                let serial = certs.first().map(|c| serial_hex(c.as_ref())).unwrap_or_default();
                warn!(peer = %live.remote, %serial, reason = %why, "closing a connection no longer admitted after the reload");
                let _ = live.close.send(true);
                closed += 1;
            }
        }
        closed
    }
}

/// Raises the soft open-file limit to the hard limit and logs both; returns (soft, hard) in force.
/// Each connection is a file descriptor: systemd's default soft limit of 1024 would otherwise cap
/// the gateway below `limits.max_connections`.
pub fn raise_open_file_limit(max_connections: usize) -> (Option<u64>, Option<u64>) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let before = getrlimit(Resource::Nofile);
    let mut soft = before.current;
    if before.current != before.maximum {
        let wanted = rustix::process::Rlimit { current: before.maximum, maximum: before.maximum };
        match setrlimit(Resource::Nofile, wanted) {
            Ok(()) => soft = getrlimit(Resource::Nofile).current,
            Err(e) => warn!(error = %e, "could not raise the open-file limit"),
        }
    }
    let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |v| v.to_string());
    info!(
        soft_before = %show(before.current),
        soft = %show(soft),
        hard = %show(before.maximum),
        "open-file limit (RLIMIT_NOFILE)"
    );
    // Headroom for the store, logs and outgoing SAMR connections.
    if let Some(s) = soft {
        if (max_connections as u64).saturating_add(64) > s {
            warn!(soft = s, max_connections, "the open-file limit is below limits.max_connections + 64");
        }
    }
    (soft, before.maximum)
}

/// Open connections, total and per source address.
#[derive(Debug, Default)]
struct Table {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// Counts connections against the limits; a [`Slot`] is one admitted connection.
#[derive(Debug)]
pub struct Admission {
    table: Mutex<Table>,
    max_total: usize,
    max_per_address: usize,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `limits.max_connections` reached.
    Total,
    /// `limits.max_connections_per_address` reached for this address.
    PerAddress,
}

impl Admission {
    /// Counting against these limits.
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Admission> {
        Arc::new(Admission { table: Mutex::new(Table::default()), max_total, max_per_address })
    }

    /// A slot for a connection from `ip`, or why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        self.admit_inner(ip, false)
    }

    /// A slot for `ip` beyond the total, in place of a connection being dropped (its slot is
    /// freed a moment later); the per-address limit still holds.
    pub fn admit_replacing(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        self.admit_inner(ip, true)
    }

    fn admit_inner(self: &Arc<Self>, ip: IpAddr, replacing: bool) -> Result<Slot, Refusal> {
        let mut t = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if t.total >= self.max_total && !replacing {
            return Err(Refusal::Total);
        }
        let n = t.per_address.entry(ip).or_insert(0);
        if *n >= self.max_per_address {
            return Err(Refusal::PerAddress);
        }
        *n += 1;
        t.total += 1;
        Ok(Slot { admission: self.clone(), ip })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.table.lock().unwrap_or_else(PoisonError::into_inner).total
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.admission.table.lock().unwrap_or_else(PoisonError::into_inner);
        t.total = t.total.saturating_sub(1);
        if let Some(n) = t.per_address.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.per_address.remove(&self.ip);
            }
        }
    }
}

/// Calls in progress on one connection and when the last one started or ended (the idle clock).
#[derive(Debug)]
pub struct Activity {
    born: Instant,
    calls: AtomicUsize,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity { born: Instant::now(), calls: AtomicUsize::new(0), last_ms: AtomicU64::new(0) })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long the connection has had no call in progress (zero while one is).
    fn idle_for(&self) -> Duration {
        if self.calls.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        self.born.elapsed().saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Counts a call on its connection from start until its response body is dropped.
struct CallGuard(Arc<Activity>);

impl CallGuard {
    fn new(activity: Arc<Activity>) -> CallGuard {
        activity.calls.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        CallGuard(activity)
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.calls.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a request knows of its connection (a request extension): the peer's address, the
/// certificate chain that mutual TLS verified, and the identities its leaf names — read once per
/// connection, not per call.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer's address.
    pub remote: SocketAddr,
    /// The peer's certificates, leaf first.
    pub certs: Option<Arc<Vec<CertificateDer<'static>>>>,
    /// The SAN URIs of the leaf certificate (empty without one).
    pub san_uris: Arc<[String]>,
    activity: Arc<Activity>,
}

/// The SAN URIs of a request's verified leaf certificate: from the connection (read once when it
/// was accepted), or read now for a request served by another listener; `None` without a
/// certificate.
pub fn peer_identities<T>(request: &tonic::Request<T>) -> Option<Arc<[String]>> {
    match request.extensions().get::<ConnInfo>() {
        Some(info) => info.certs.as_ref().map(|_| info.san_uris.clone()),
        None => {
            let certs = request.peer_certs()?;
            let leaf = certs.first()?;
            Some(crate::certificate::san_uris(leaf.as_ref()).into())
        }
    }
}

/// The verified client certificates of a request served by this gateway.
pub fn peer_certs<T>(request: &tonic::Request<T>) -> Option<Arc<Vec<CertificateDer<'static>>>> {
    match request.extensions().get::<ConnInfo>() {
        Some(info) => info.certs.clone(),
        None => request.peer_certs(),
    }
}

/// An established TLS connection, counted, closed when idle.
pub struct Conn {
    io: TlsStream<TcpStream>,
    info: ConnInfo,
    idle: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
    /// Ready once a reload no longer admits the connection's certificate.
    closing: Pin<Box<dyn Future<Output = ()> + Send>>,
    _slot: Slot,
    _registration: Registration,
}

impl Conn {
    fn new(
        io: TlsStream<TcpStream>,
        remote: SocketAddr,
        slot: Slot,
        idle_timeout: Option<Duration>,
        live: &Arc<LiveConnections>,
    ) -> Conn {
        let certs = io.get_ref().1.peer_certificates().map(|c| Arc::new(c.to_vec()));
        let (registration, mut closed) = live.register(remote, certs.clone());
        let san_uris: Arc<[String]> = certs
            .as_ref()
            .and_then(|c| c.first())
            .map(|leaf| crate::certificate::san_uris(leaf.as_ref()).into())
            .unwrap_or_else(|| Arc::from(Vec::new()));
        let info = ConnInfo { remote, certs, san_uris, activity: Activity::new() };
        let idle = idle_timeout.map(|d| (d, Box::pin(tokio::time::sleep(d))));
        let closing = Box::pin(async move {
            // The registry dropping the sender (never while the connection lives) closes too.
            let _ = closed.wait_for(|c| *c).await;
        });
        Conn { io, info, idle, closing, _slot: slot, _registration: registration }
    }

    /// True when the idle timer says to close: no call for the whole timeout. Re-arms otherwise.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some((timeout, sleep)) = &mut self.idle else {
            return false;
        };
        while sleep.as_mut().poll(cx).is_ready() {
            let idle = self.info.activity.idle_for();
            if idle >= *timeout {
                return true;
            }
            let wait = if idle.is_zero() { *timeout } else { *timeout - idle };
            sleep.as_mut().reset(tokio::time::Instant::now() + wait);
        }
        false
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if self.closing.as_mut().poll(cx).is_ready() {
            // An error, not end of stream: the HTTP/2 server drops the connection with every
            // call and Receive stream on it at once, instead of finishing them gracefully.
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "certificate no longer admitted after a reload",
            )));
        }
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Pending => {}
            ready => return ready,
        }
        if self.idle_expired(cx) {
            info!(peer = %self.info.remote, "closing an idle connection (limits.idle_timeout_secs)");
            // End of stream: the HTTP/2 server ends the connection and drops it.
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if self.closing.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "certificate no longer admitted after a reload",
            )));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The delay before accepting again after the `failures`-th accept error in a row: 10 ms doubling
/// up to 1 s, so that running out of file descriptors does not spin a core.
pub fn accept_backoff(failures: u32) -> Duration {
    Duration::from_millis(10u64.saturating_mul(1 << failures.saturating_sub(1).min(7)).min(1000))
}

/// Accepts connections on `listener` until `stop` turns true: admits them against the limits,
/// runs each handshake under the timeout in its own task, and yields established connections.
///
/// At `max_connections`, the oldest connection still in its handshake is dropped to make room
/// for the newcomer (a partner handshakes in milliseconds, a silent client never does), so
/// silent connections from many addresses cannot lock partners out; only when every connection
/// is established is the newcomer refused.
pub fn incoming(
    listener: TcpListener,
    tls: Arc<TlsConfigHandle>,
    live: Arc<LiveConnections>,
    limits: &LimitsConfig,
    mut stop: watch::Receiver<bool>,
) -> tokio_stream::wrappers::ReceiverStream<Result<Conn, std::io::Error>> {
    let admission = Admission::new(limits.max_connections, limits.max_connections_per_address);
    let handshake_timeout = Duration::from_secs(limits.handshake_timeout_secs);
    let idle_timeout = (limits.idle_timeout_secs > 0).then(|| Duration::from_secs(limits.idle_timeout_secs));
    // A few established connections may wait for the HTTP/2 server to pick them up.
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut failures = 0u32;
        let (mut refused, mut evicted) = (0u64, 0u64);
        // Handshake tasks, oldest first.
        let mut handshaking: std::collections::VecDeque<tokio::task::AbortHandle> = Default::default();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.wait_for(|s| *s) => break,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => {
                    failures = 0;
                    a
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = accept_backoff(failures);
                    warn!(error = %e, delay_ms = delay.as_millis() as u64, "accept failed; backing off");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                    continue;
                }
            };
            handshaking.retain(|h| !h.is_finished());
            let admitted = match admission.admit(peer.ip()) {
                Err(Refusal::Total) => match handshaking.pop_front() {
                    Some(oldest) => {
                        // Aborting drops its socket and, a moment later, its slot.
                        oldest.abort();
                        evicted += 1;
                        if evicted.is_power_of_two() {
                            warn!(
                                evicted,
                                open = admission.open(),
                                "at limits.max_connections: dropped the oldest unfinished handshake"
                            );
                        }
                        admission.admit_replacing(peer.ip())
                    }
                    None => Err(Refusal::Total),
                },
                other => other,
            };
            let slot = match admitted {
                Ok(slot) => slot,
                Err(why) => {
                    // Closed at once: no handshake, no task, no buffer.
                    drop(tcp);
                    refused += 1;
                    if refused.is_power_of_two() {
                        warn!(peer = %peer, reason = ?why, refused, open = admission.open(), "connection refused: limit reached");
                    }
                    continue;
                }
            };
            let (handle, tx, live) = (tls.clone(), tx.clone(), live.clone());
            let task = tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let used = handle.current();
                let acceptor = tokio_rustls::TlsAcceptor::from(used.clone());
                match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(io)) => {
                        let conn = Conn::new(io, peer, slot, idle_timeout, &live);
                        // A reload during the handshake checked the open connections without
                        // this one: it is checked against the new CAs and CRLs here.
                        if !Arc::ptr_eq(&used, &handle.current()) {
                            if let Some(why) = refused_now(
                                &*handle.verifier(),
                                conn.info.certs.as_deref().map_or(&[], |c| c.as_slice()),
                            ) {
                                warn!(peer = %peer, reason = %why, "connection refused: its handshake overlapped a reload");
                                return;
                            }
                        }
                        let _ = tx.send(Ok(conn)).await;
                    }
                    Ok(Err(e)) => {
                        // A client without a certificate never reaches the verifier: counted here.
                        let no_certificate = e
                            .get_ref()
                            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                            .is_some_and(|r| matches!(r, rustls::Error::NoCertificatesPresented));
                        if no_certificate {
                            handle.refusals().refused("no_certificate");
                            warn!(peer = %peer, reason = "no_certificate", "client presented no certificate in the TLS handshake");
                        } else {
                            debug!(peer = %peer, error = %e, "TLS handshake failed");
                        }
                    }
                    Err(_) => debug!(peer = %peer, "TLS handshake timed out (limits.handshake_timeout_secs)"),
                }
            });
            handshaking.push_back(task.abort_handle());
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Bounds calls in flight over the whole gateway (`limits.max_requests_in_flight`) and counts
/// calls per connection for the idle timeout.
#[derive(Debug, Clone)]
pub struct InFlightLayer {
    permits: Arc<Semaphore>,
    retry_after_secs: u64,
    refused: Arc<AtomicU64>,
}

impl InFlightLayer {
    /// At most `max` calls at once; the excess told to retry after `retry_after_secs`.
    pub fn new(max: usize, retry_after_secs: u64) -> InFlightLayer {
        InFlightLayer { permits: Arc::new(Semaphore::new(max)), retry_after_secs, refused: Default::default() }
    }
}

impl<S> tower::Layer<S> for InFlightLayer {
    type Service = InFlight<S>;

    fn layer(&self, inner: S) -> InFlight<S> {
        InFlight {
            inner,
            permits: self.permits.clone(),
            retry_after_secs: self.retry_after_secs,
            refused: self.refused.clone(),
        }
    }
}

/// The service of [`InFlightLayer`].
#[derive(Debug, Clone)]
pub struct InFlight<S> {
    inner: S,
    permits: Arc<Semaphore>,
    retry_after_secs: u64,
    refused: Arc<AtomicU64>,
}

/// The answer to a call refused for load: trailers-only `RESOURCE_EXHAUSTED` with `retry-after`
/// (seconds, as the rate limiter gives it) and gRPC's own `grpc-retry-pushback-ms`.
fn overloaded(retry_after_secs: u64) -> http::Response<tonic::body::Body> {
    let status = tonic::Status::resource_exhausted(format!(
        "the gateway is at limits.max_requests_in_flight; retry after {retry_after_secs} s"
    ));
    let mut response = status.into_http::<tonic::body::Body>();
    let headers = response.headers_mut();
    headers.insert("retry-after", http::HeaderValue::from(retry_after_secs));
    headers.insert("grpc-retry-pushback-ms", http::HeaderValue::from(retry_after_secs.saturating_mul(1000)));
    response
}

impl<S, B, R> tower::Service<http::Request<B>> for InFlight<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    R: http_body::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    R::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let guard = request.extensions().get::<ConnInfo>().map(|i| CallGuard::new(i.activity.clone()));
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            // Refused before the service, so before a byte of the body is read. Logged at 1, 2,
            // 4 … refusals so that a flood does not flood the log too.
            let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
            if refused.is_power_of_two() {
                warn!(refused, path = %request.uri().path(), "call refused: limits.max_requests_in_flight reached");
            }
            let response = overloaded(self.retry_after_secs);
            return Box::pin(async move { Ok(response) });
        };
        // The clone that was made ready is the one called (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let future = inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            // A unary call has read its request and been handled once it answers; a Receive
            // stream then lives on without holding a permit.
            drop(permit);
            Ok(response.map(|body| {
                tonic::body::Body::new(http_body_util::BodyExt::map_frame(body, move |frame| {
                    // The call counts for the idle timeout until its body is gone.
                    let _ = &guard;
                    frame
                }))
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_counts_total_and_per_address() {
        let a = Admission::new(3, 2);
        let (x, y) = (IpAddr::from([127, 0, 0, 2]), IpAddr::from([127, 0, 0, 3]));
        let s1 = a.admit(x).unwrap();
        let _s2 = a.admit(x).unwrap();
        assert_eq!(a.admit(x).unwrap_err(), Refusal::PerAddress);
        let _s3 = a.admit(y).unwrap();
        assert_eq!(a.admit(y).unwrap_err(), Refusal::Total);
        let replacing = a.admit_replacing(y).unwrap();
        assert_eq!(a.open(), 4, "one over the total while a dropped connection's slot is freed");
        drop(replacing);
        drop(s1);
        assert_eq!(a.open(), 2);
        let _s4 = a.admit(x).unwrap();
        assert_eq!(a.admit_replacing(x).unwrap_err(), Refusal::PerAddress);
    }

    #[test]
    fn crl_files_are_pem_or_der_and_garbage_names_the_key() {
        let ca = yrdx_pki::CertificateAuthority::new("t").unwrap();
        let pem = ca.crl(&[], 24, 1).unwrap();
        let (ders, next) = parse_crls("tls.crls[0]", pem.as_bytes()).unwrap();
        assert_eq!(ders.len(), 1);
        assert!(next.unwrap() > x509_parser::time::ASN1Time::now().timestamp());
        let (again, _) = parse_crls("tls.crls[0]", ders[0].as_ref()).unwrap();
        assert_eq!(again[0].as_ref(), ders[0].as_ref(), "DER as it is");
        let e = parse_crls("tls.crls[3]", b"not a CRL").unwrap_err();
        assert!(e.to_string().starts_with("tls.crls[3]: "), "{e}");
        let e = parse_crls("tls.crls[1]", b"-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n").unwrap_err();
        assert!(e.to_string().starts_with("tls.crls[1]: "), "{e}");
    }

    #[test]
    fn refusals_are_counted_under_a_few_words() {
        use rustls::CertificateError as C;
        let r = |c: C| refusal_reason(&rustls::Error::InvalidCertificate(c));
        assert_eq!(r(C::Revoked), "revoked");
        assert_eq!(r(C::ExpiredRevocationList), "crl_expired");
        assert_eq!(r(C::UnknownRevocationStatus), "unknown_revocation_status");
        assert_eq!(r(C::UnknownIssuer), "unknown_issuer");
        assert_eq!(r(C::Expired), "expired");
        assert_eq!(r(C::BadSignature), "invalid");
        assert_eq!(refusal_reason(&rustls::Error::HandshakeNotComplete), "invalid");
    }

    #[test]
    fn accept_backoff_grows_and_is_capped() {
        assert_eq!(accept_backoff(1), Duration::from_millis(10));
        assert_eq!(accept_backoff(2), Duration::from_millis(20));
        assert_eq!(accept_backoff(8), Duration::from_millis(1000));
        assert_eq!(accept_backoff(u32::MAX), Duration::from_millis(1000));
    }

    #[test]
    fn refusal_is_resource_exhausted_with_retry_after() {
        let r = overloaded(3);
        assert_eq!(r.headers()["grpc-status"], "8");
        assert_eq!(r.headers()["retry-after"], "3");
        assert_eq!(r.headers()["grpc-retry-pushback-ms"], "3000");
    }
}
