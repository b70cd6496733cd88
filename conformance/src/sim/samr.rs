//! A SAMR intake for tests, simulations and `yrdx demo` (the other end of the gateway's SAMR docking, `yrdx_gateway::samr_push`): an HTTPS server with mutual TLS that checks packages as
//! SAMR does (GB18030, structure, SM3 digest, package numbering) and answers with receipts. It can be
//! told to be busy (`503` with `Retry-After`) for the first requests and to reject packages, and
//! scripted while it runs ([`SamrIntake::plan`]: `429`/`503` with a `Retry-After`, a rejection) —
//! the `samr-push` suite plays SAMR with it. Every request is kept as an [`IntakeEvent`] with its
//! time and bytes, so a suite can judge the numbering, the digests and the waits between attempts.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use yrdx_adapters::samr::{self, Receipt};
use yrdx_adapters::DecodeLimits;

/// How the intake behaves.
#[derive(Debug, Clone, Default)]
pub struct IntakeOptions {
    /// Answer `503` with `Retry-After: 1` to this many requests first.
    pub busy_first: u32,
    /// Reject the first package whose decoded text contains this, with this reason (a resend
    /// of it is then accepted, as after an operator fixed the cause).
    pub reject_containing: Option<(String, String)>,
    /// Answer this many requests first with `200` and an endless-looking body of
    /// `oversized_bytes` (streamed, no `Content-Length`): a hostile or broken SAMR the gateway
    /// must refuse while reading.
    pub oversized_first: u32,
    /// The size of those bodies (default 128 MiB when 0).
    pub oversized_bytes: usize,
}

/// An answer the intake is told to give ([`SamrIntake::plan`]), in the order planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedAnswer {
    /// Answer the next request with this status (`429` or `503`) and `Retry-After` seconds,
    /// without a receipt.
    Busy {
        /// `429` or `503`.
        status: u16,
        /// The `Retry-After` header, seconds.
        retry_after_secs: u64,
    },
    /// Reject the next readable package not already accepted (receipt `JSZT` 0) with this reason.
    Reject {
        /// The `CWXX` reason.
        reason: String,
    },
}

/// One request the intake answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeEvent {
    /// HTTP status answered.
    pub status: u16,
    /// Package number, when the package could be read.
    pub number: Option<String>,
    /// Accepted (receipt `JSZT` 1)?
    pub accepted: bool,
    /// The reason when rejected.
    pub reason: String,
    /// When the request was answered (the intake's monotonic clock).
    pub at: Instant,
    /// The `Retry-After` seconds of a busy answer.
    pub retry_after_secs: Option<u64>,
    /// Why the package failed SAMR's check (GB18030, structure, SM3 digest …), when it did.
    pub problem: Option<String>,
    /// The package's type code (`CCJG`), when it could be read.
    pub package_type: Option<String>,
    /// The package's reporting unit (`BSDW`), when it could be read.
    pub reporting_unit: Option<String>,
    /// Records in the package, when it could be read.
    pub record_count: usize,
    /// The request body as received.
    pub body: Vec<u8>,
}

impl IntakeEvent {
    fn new(status: u16, number: Option<String>, accepted: bool, reason: String) -> IntakeEvent {
        IntakeEvent {
            status,
            number,
            accepted,
            reason,
            at: Instant::now(),
            retry_after_secs: None,
            problem: None,
            package_type: None,
            reporting_unit: None,
            record_count: 0,
            body: Vec::new(),
        }
    }
}

/// A running intake.
pub struct SamrIntake {
    /// Its address.
    pub addr: SocketAddr,
    /// Every request answered, in order.
    pub events: Arc<Mutex<Vec<IntakeEvent>>>,
    state: Arc<Mutex<State>>,
    stop: watch::Sender<bool>,
}

/// Why the intake could not start.
#[derive(Debug, thiserror::Error)]
#[error("SAMR intake: {0}")]
pub struct IntakeError(String);

struct State {
    options: IntakeOptions,
    busy_left: u32,
    oversized_left: u32,
    /// Answers planned while running, consumed in order.
    planned: VecDeque<PlannedAnswer>,
    /// number → digest of the accepted package (SAMR ignores a number it already accepted).
    accepted: HashMap<String, String>,
    events: Arc<Mutex<Vec<IntakeEvent>>>,
}

impl SamrIntake {
    /// Starts on `127.0.0.1:0` with the server certificate and key (PEM), trusting client
    /// certificates signed by `client_ca_pem`.
    pub async fn start(
        cert_pem: &str,
        key_pem: &str,
        client_ca_pem: &str,
        options: IntakeOptions,
    ) -> Result<SamrIntake, IntakeError> {
        SamrIntake::start_on("127.0.0.1:0", cert_pem, key_pem, client_ca_pem, options).await
    }

    /// [`SamrIntake::start`] on a given address (`127.0.0.1:8443`).
    pub async fn start_on(
        listen: &str,
        cert_pem: &str,
        key_pem: &str,
        client_ca_pem: &str,
        options: IntakeOptions,
    ) -> Result<SamrIntake, IntakeError> {
        let err = |e: &dyn std::fmt::Display| IntakeError(e.to_string());
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(client_ca_pem.as_bytes()) {
            roots.add(c.map_err(|e| err(&e))?).map_err(|e| err(&e))?;
        }
        let verifier = WebPkiClientVerifier::builder(Arc::new(roots)).build().map_err(|e| err(&e))?;
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<_, _>>().map_err(|e| err(&e))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| err(&e))?;
        let tls = ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| err(&e))?;
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| err(&e))?;
        let addr = listener.local_addr().map_err(|e| err(&e))?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(Mutex::new(State {
            busy_left: options.busy_first,
            oversized_left: options.oversized_first,
            options,
            planned: VecDeque::new(),
            accepted: HashMap::new(),
            events: events.clone(),
        }));
        let shared = state.clone();
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
                    _ = stopped.changed() => break,
                };
                let acceptor = acceptor.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    // A client without an acceptable certificate fails here.
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let state = state.clone();
                        async move {
                            let body =
                                req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
                            if let Some(size) = oversized(&state) {
                                return Ok::<_, std::convert::Infallible>(huge_response(size));
                            }
                            Ok(answer(&state, &body).map(|b| b.map_err(|never| match never {}).boxed()))
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
                });
            }
        });
        Ok(SamrIntake { addr, events, state: shared, stop })
    }

    /// The URL packages are posted to.
    pub fn url(&self) -> String {
        format!("https://{}/v1/packages", self.addr)
    }

    /// What the intake answered so far.
    pub fn events(&self) -> Vec<IntakeEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Plans the next answers: busy ones are given to the next requests, a rejection to the next
    /// readable package not already accepted; then the intake answers normally again.
    pub fn plan(&self, answers: impl IntoIterator<Item = PlannedAnswer>) {
        if let Ok(mut st) = self.state.lock() {
            st.planned.extend(answers);
        }
    }

    /// Forgets the answers planned and not yet given (a case that stopped early leaves none
    /// behind for the next).
    pub fn clear_plan(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.planned.clear();
        }
    }

    /// Stops accepting connections.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

type AnyBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// Whether to answer this request with a huge body (and how large), counting it as an event.
fn oversized(state: &Mutex<State>) -> Option<usize> {
    let mut st = state.lock().ok()?;
    if st.oversized_left == 0 {
        return None;
    }
    st.oversized_left -= 1;
    let size = if st.options.oversized_bytes == 0 { 128 << 20 } else { st.options.oversized_bytes };
    if let Ok(mut l) = st.events.lock() {
        l.push(IntakeEvent::new(200, None, false, format!("oversized body of {size} bytes")));
    }
    Some(size)
}

/// A `200` whose body is `size` bytes of filler, streamed in 64 KiB chunks (never held whole).
fn huge_response(size: usize) -> Response<AnyBody> {
    let chunk = Bytes::from(vec![b' '; 64 * 1024]);
    let frames = (0..size.div_ceil(chunk.len())).map(move |_| Ok(hyper::body::Frame::data(chunk.clone())));
    Response::new(http_body_util::StreamBody::new(tokio_stream::iter(frames)).boxed())
}

fn receipt(status: u16, number: &str, accepted: bool, reason: &str) -> Response<Full<Bytes>> {
    let bytes = samr::encode_receipt(&Receipt { number: number.into(), accepted, reason: reason.into() });
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml; charset=GB18030"),
    );
    r
}

fn busy(status: u16, retry_after_secs: u64) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(b"busy")));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::SERVICE_UNAVAILABLE);
    r.headers_mut().insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from(retry_after_secs));
    r
}

fn answer(state: &Mutex<State>, body: &[u8]) -> Response<Full<Bytes>> {
    let Ok(mut st) = state.lock() else { return receipt(500, "", false, "内部错误") };
    let log = st.events.clone();
    // What SAMR's check says of the bytes, kept with every answer (busy ones too, so a suite
    // can tell which package a retry belongs to).
    let decoded = samr::decode_package(body, &DecodeLimits::default());
    let mut event = IntakeEvent::new(200, None, false, String::new());
    event.body = body.to_vec();
    match &decoded {
        Ok(p) => {
            event.number = Some(p.header.number.clone());
            event.package_type = Some(p.header.package_type.code().to_string());
            event.reporting_unit = Some(p.header.reporting_unit.clone());
            event.record_count = p.records.len();
        }
        Err(e) => event.problem = Some(e.problems().first().map(|p| p.to_string()).unwrap_or_else(|| e.to_string())),
    }
    let record = |mut e: IntakeEvent, status: u16, accepted: bool, reason: &str| {
        e.status = status;
        e.accepted = accepted;
        e.reason = reason.to_string();
        e.at = Instant::now();
        if let Ok(mut l) = log.lock() {
            l.push(e);
        }
    };
    if st.busy_left > 0 {
        st.busy_left -= 1;
        event.retry_after_secs = Some(1);
        record(event, 503, false, "busy");
        return busy(503, 1);
    }
    if let Some(PlannedAnswer::Busy { status, retry_after_secs }) = st.planned.front().cloned() {
        st.planned.pop_front();
        event.retry_after_secs = Some(retry_after_secs);
        record(event, status, false, "busy");
        return busy(status, retry_after_secs);
    }
    let pkg = match decoded {
        Ok(p) => p,
        Err(_) => {
            let reason = format!("数据包校验失败：{}", event.problem.clone().unwrap_or_default());
            record(event, 200, false, &reason);
            return receipt(200, "", false, &reason);
        }
    };
    let number = pkg.header.number.clone();
    let digest = hex::encode(Sha256::digest(body));
    if let Some(seen) = st.accepted.get(&number) {
        let (accepted, reason) =
            if *seen == digest { (true, String::new()) } else { (false, "数据包编号重复".to_string()) };
        record(event, 200, accepted, &reason);
        return receipt(200, &number, accepted, &reason);
    }
    if let Some(PlannedAnswer::Reject { reason }) = st.planned.front().cloned() {
        st.planned.pop_front();
        record(event, 200, false, &reason);
        return receipt(200, &number, false, &reason);
    }
    if let Some((needle, reason)) = st.options.reject_containing.clone() {
        let text = samr::gb18030_text(body);
        if text.contains(needle.as_str()) {
            st.options.reject_containing = None;
            record(event, 200, false, &reason);
            return receipt(200, &number, false, &reason);
        }
    }
    st.accepted.insert(number.clone(), digest);
    record(event, 200, true, "");
    receipt(200, &number, true, "")
}
