//! The gateway's own TLS accept loop and admission control (`[limits]` in the configuration):
//! connection counting (total and per source address, the excess closed right after accept,
//! before any handshake), a handshake timeout, an idle timeout, back-off on accept errors, the
//! open-file limit, and a global bound on calls in flight that refuses the excess with
//! `RESOURCE_EXHAUSTED` before reading its body.
//!
//! The rustls configuration sits behind a [`TlsConfigHandle`]: every handshake takes the one in
//! force at that moment, so a later change (CRL reload) can swap it without a restart.

use crate::config::LimitsConfig;
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
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tonic::codegen::http;
use tracing::{debug, info, warn};

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A PEM file holds no usable certificate or key.
    #[error("{what}: {message}")]
    Pem {
        /// Which file (`tls.cert`, `tls.key`, `tls.client_ca`).
        what: &'static str,
        /// The parser's message.
        message: String,
    },
    /// rustls refused the material.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Builds the server's rustls configuration: TLS 1.2 and 1.3, a client certificate signed by
/// `client_ca_pem` required, ALPN `h2`.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8], client_ca_pem: &[u8]) -> Result<ServerConfig, TransportError> {
    let pem = |what: &'static str| {
        move |e: rustls::pki_types::pem::Error| TransportError::Pem { what, message: e.to_string() }
    };
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem).collect::<Result<_, _>>().map_err(pem("tls.cert"))?;
    if chain.is_empty() {
        return Err(TransportError::Pem { what: "tls.cert", message: "no certificate".into() });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(pem("tls.key"))?;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(client_ca_pem) {
        roots.add(ca.map_err(pem("tls.client_ca"))?)?;
    }
    if roots.is_empty() {
        return Err(TransportError::Pem { what: "tls.client_ca", message: "no certificate".into() });
    }
    // One explicit provider: the process-wide default panics when two are compiled in.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The rustls configuration in force, swappable while the gateway runs: each handshake uses the
/// one current when it starts; connections already open keep theirs.
#[derive(Debug)]
pub struct TlsConfigHandle(RwLock<Arc<ServerConfig>>);

impl TlsConfigHandle {
    /// A handle holding `config`.
    pub fn new(config: ServerConfig) -> TlsConfigHandle {
        TlsConfigHandle(RwLock::new(Arc::new(config)))
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Puts `config` in force for every later handshake (for a future reload of CRLs or keys).
    pub fn replace(&self, config: ServerConfig) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
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

/// What a request knows of its connection (a request extension): the peer's address and the
/// certificate chain that mutual TLS verified.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer's address.
    pub remote: SocketAddr,
    /// The peer's certificates, leaf first.
    pub certs: Option<Arc<Vec<CertificateDer<'static>>>>,
    activity: Arc<Activity>,
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
    _slot: Slot,
}

impl Conn {
    fn new(io: TlsStream<TcpStream>, remote: SocketAddr, slot: Slot, idle_timeout: Option<Duration>) -> Conn {
        let certs = io.get_ref().1.peer_certificates().map(|c| Arc::new(c.to_vec()));
        let info = ConnInfo { remote, certs, activity: Activity::new() };
        let idle = idle_timeout.map(|d| (d, Box::pin(tokio::time::sleep(d))));
        Conn { io, info, idle, _slot: slot }
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
            let (tls, tx) = (tls.current(), tx.clone());
            let task = tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(io)) => {
                        let _ = tx.send(Ok(Conn::new(io, peer, slot, idle_timeout))).await;
                    }
                    Ok(Err(e)) => debug!(peer = %peer, error = %e, "TLS handshake failed"),
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
