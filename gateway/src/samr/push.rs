//! SAMR docking: turns the records waiting in the store's SAMR outbox into numbered packages
//! ([`super::numbering`]) and pushes them to SAMR's intake over HTTPS with mutual TLS
//! (`docs/partners/samr.md`, transport).
//! A package is delivered at least once; `429`/`503` are retried after `Retry-After`; other
//! failures back off; a package SAMR rejects, or that runs out of attempts, is parked with the
//! reason for an operator to see and resend — never dropped.

use super::numbering;
use crate::config::{Config, SamrConfig};
use crate::store::{PackageState, Store, StoreError};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tracing::{info, warn};
use yrdx_adapters::samr::{self, transport, PackageType};
use yrdx_adapters::Record;
use yrdx_clock::Clock;

/// Why the pusher could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SamrSetupError {
    /// A file could not be read.
    #[error("samr: {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        message: String,
    },
    /// The TLS material is unusable.
    #[error("samr: TLS: {0}")]
    Tls(String),
    /// The intake URL is unusable.
    #[error("samr.intake_url: {0}")]
    Url(String),
}

/// Why a round of the pusher stopped (the packages stay as they are; the next round goes on).
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The store failed.
    #[error("SAMR push: {0}")]
    Store(#[from] StoreError),
}

/// Why one attempt to send a package failed (kept as the package's reason).
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// No TCP connection to the intake.
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The TLS handshake with the intake failed.
    #[error("TLS: {0}")]
    Tls(#[source] std::io::Error),
    /// HTTP failed (handshake or exchange).
    #[error("HTTP: {0}")]
    Http(#[source] hyper::Error),
    /// The request could not be built.
    #[error("request: {0}")]
    Request(#[source] hyper::http::Error),
    /// The response was refused or could not be read.
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// No answer in time.
    #[error("timed out after {0} s")]
    Timeout(u64),
}

/// Why a response body was refused or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// Its `Content-Length` is over the limit.
    #[error("response of {announced} bytes refused: over the limit of {limit} bytes")]
    Announced {
        /// The announced length.
        announced: u64,
        /// `[samr] max_response_bytes`.
        limit: usize,
    },
    /// It grew past the limit while it was read.
    #[error("response refused: over the limit of {limit} bytes")]
    TooLarge {
        /// `[samr] max_response_bytes`.
        limit: usize,
    },
    /// Reading it failed.
    #[error("HTTP body: {0}")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// How long one attempt may take.
const ATTEMPT_TIMEOUT_SECS: u64 = 30;

/// What one round of the pusher did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Packages formed from waiting records.
    pub formed: Vec<String>,
    /// Packages SAMR accepted.
    pub accepted: Vec<String>,
    /// Packages to be tried again.
    pub retrying: Vec<String>,
    /// Packages parked (rejected, or out of attempts).
    pub parked: Vec<String>,
}

/// Pushes SAMR packages.
pub struct SamrPusher {
    store: Arc<dyn Store>,
    config: SamrConfig,
    clock: Arc<dyn Clock>,
    tls: Arc<ClientConfig>,
    host: String,
    port: u16,
    path: String,
    server_name: ServerName<'static>,
    sender: String,
    /// Fault hook (feature `fault-injection`, tests only): deliberate numbering and retry faults.
    faults: crate::faults::Faults,
    /// Attempts and receipt latency (`yrdx_samr_attempts_total`, `yrdx_samr_receipt_seconds`).
    metrics: crate::metrics::SamrMetrics,
}

fn read(config: &Config, p: &std::path::Path) -> Result<Vec<u8>, SamrSetupError> {
    let path = config.resolve(p);
    std::fs::read(&path).map_err(|e| SamrSetupError::Io { path: path.display().to_string(), message: e.to_string() })
}

impl SamrPusher {
    /// The pusher of a configuration with a `[samr]` section (`None` without one).
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<SamrPusher>, SamrSetupError> {
        let Some(samr) = config.samr.clone() else { return Ok(None) };
        let uri: hyper::Uri = samr.intake_url.parse().map_err(|e| SamrSetupError::Url(format!("{e}")))?;
        if uri.scheme_str() != Some("https") {
            return Err(SamrSetupError::Url("SAMR is reached over https only".into()));
        }
        let host = uri.host().ok_or_else(|| SamrSetupError::Url("no host".into()))?.to_string();
        let port = uri.port_u16().unwrap_or(443);
        let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        let name = samr.server_name.clone().unwrap_or_else(|| host.clone());
        let server_name = ServerName::try_from(name).map_err(|e| SamrSetupError::Url(e.to_string()))?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&read(config, &samr.ca)?) {
            roots
                .add(cert.map_err(|e| SamrSetupError::Tls(e.to_string()))?)
                .map_err(|e| SamrSetupError::Tls(e.to_string()))?;
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(config, &samr.cert)?)
            .collect::<Result<_, _>>()
            .map_err(|e| SamrSetupError::Tls(e.to_string()))?;
        let key =
            PrivateKeyDer::from_pem_slice(&read(config, &samr.key)?).map_err(|e| SamrSetupError::Tls(e.to_string()))?;
        let tls = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| SamrSetupError::Tls(e.to_string()))?;
        let sender = config
            .partners
            .iter()
            .find(|p| p.format == crate::config::PartnerFormat::Canonical)
            .map(|p| p.region.clone())
            .unwrap_or_else(|| "310000".into());
        let metrics = crate::metrics::SamrMetrics::default();
        Ok(Some(SamrPusher {
            store,
            config: samr,
            clock,
            tls: Arc::new(tls),
            host,
            port,
            path,
            server_name,
            sender,
            faults: crate::faults::Faults::default(),
            metrics,
        }))
    }

    /// Fault hook (feature `fault-injection`, tests only): this pusher with deliberate faults.
    pub(crate) fn with_faults(mut self, faults: crate::faults::Faults) -> SamrPusher {
        self.faults = faults;
        self
    }

    /// The pusher counting into the gateway's metrics.
    pub fn with_metrics(self, metrics: crate::metrics::SamrMetrics) -> SamrPusher {
        SamrPusher { metrics, ..self }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// One round: forms the packages that are due (full, or whose oldest record waited long
    /// enough) and sends every package whose attempt is due.
    pub async fn tick(&self) -> Result<PushReport, PushError> {
        let mut report = PushReport::default();
        self.form(&mut report).await?;
        self.send_due(&mut report).await?;
        Ok(report)
    }

    async fn form(&self, report: &mut PushReport) -> Result<(), PushError> {
        let now = self.now_ms();
        let rows = self.store.samr_outbox().await?;
        let mut groups: BTreeMap<&'static str, Vec<_>> = BTreeMap::new();
        for row in &rows {
            let Some(t) = PackageType::for_kind(row.kind) else {
                warn!(kind = %row.kind, "record kind with no SAMR package type left in the outbox");
                continue;
            };
            groups.entry(t.code()).or_default().push(row);
        }
        let max_age_ms = (self.config.batch_max_age_secs * 1000) as i64;
        for (code, rows) in groups {
            for chunk in rows.chunks(self.config.batch_max_records.clamp(1, samr::MAX_RECORDS)) {
                let full = chunk.len() == self.config.batch_max_records.clamp(1, samr::MAX_RECORDS);
                let old = chunk.first().is_some_and(|r| r.created_at_ms + max_age_ms <= now);
                if !full && !old {
                    continue;
                }
                let records: Vec<Record> = chunk.iter().map(|r| r.record.clone()).collect();
                let package = numbering::Package::new(&self.sender, self.clock.now(), records, self.faults);
                let seqs: Vec<i64> = chunk.iter().map(|r| r.seq).collect();
                let created =
                    self.store.samr_create_package(&package.day_key(), code, &seqs, now, package.builder()).await?;
                match created {
                    Ok(number) => {
                        info!(%number, records = chunk.len(), "SAMR package formed");
                        report.formed.push(number);
                    }
                    Err(e) => warn!(error = %e, "SAMR package could not be formed; the records stay in the outbox"),
                }
            }
        }
        Ok(())
    }

    async fn send_due(&self, report: &mut PushReport) -> Result<(), PushError> {
        let due = self.store.samr_due(self.now_ms()).await?;
        for pkg in due {
            let attempt = pkg.attempts + 1;
            let sent = std::time::Instant::now();
            let result = self.post(pkg.bytes.clone()).await;
            let status = result.as_ref().ok().map(|(status, _, _)| *status);
            // The next attempt is counted from when the answer came, to the nanosecond, rounded up.
            let now = self.clock.now();
            let backoff = |n: u32| retry_at_ms(&now, None, n, &self.config);
            let (state, next, reason) = match result {
                Ok((200, _, body)) => match samr::decode_receipt(&body) {
                    Ok(r) if r.number == pkg.number && r.accepted => (PackageState::Accepted, 0, String::new()),
                    Ok(r) if r.number == pkg.number => {
                        // Fault hook (feature `fault-injection`): parked unless a test drops rejections.
                        (self.faults.samr_rejected_state(), 0, format!("rejected by SAMR: {}", r.reason))
                    }
                    Ok(r) => {
                        (PackageState::Pending, backoff(attempt), format!("receipt for another package {}", r.number))
                    }
                    Err(e) => (PackageState::Pending, backoff(attempt), format!("unreadable receipt: {e}")),
                },
                Ok((status @ (429 | 503), retry_after, _)) => {
                    let honoured = retry_at_ms(&now, retry_after, attempt, &self.config);
                    // Fault hook (feature `fault-injection`): identity unless a test ignores Retry-After.
                    let next = self.faults.samr_busy_retry_at(honoured, yrdx_clock::to_ms(&now));
                    (PackageState::Pending, next, format!("SAMR busy ({status})"))
                }
                Ok((status, _, body)) => (
                    PackageState::Pending,
                    backoff(attempt),
                    format!("HTTP {status}: {}", String::from_utf8_lossy(&body).chars().take(200).collect::<String>()),
                ),
                Err(e) => (PackageState::Pending, backoff(attempt), e.to_string()),
            };
            let (state, reason) = if state == PackageState::Pending && attempt >= self.config.max_attempts {
                (PackageState::Parked, format!("gave up after {attempt} attempts; last: {reason}"))
            } else {
                (state, reason)
            };
            self.store.samr_record_attempt(&pkg.number, state, attempt, next, &reason).await?;
            let state_name = state.as_str();
            self.metrics.attempted(status, state_name, sent.elapsed());
            // One line per SAMR receipt (or failed attempt), with the same fields whatever the
            // outcome, so that a log query needs no case per state.
            match state {
                PackageState::Accepted => {
                    info!(number = %pkg.number, state = state_name, attempt, %reason, "SAMR receipt");
                    report.accepted.push(pkg.number);
                }
                PackageState::Parked => {
                    warn!(number = %pkg.number, state = state_name, attempt, %reason, "SAMR receipt");
                    report.parked.push(pkg.number);
                }
                PackageState::Pending => {
                    info!(number = %pkg.number, state = state_name, attempt, %reason, "SAMR receipt");
                    report.retrying.push(pkg.number);
                }
            }
        }
        Ok(())
    }

    /// One HTTPS POST over mutual TLS: (status, Retry-After seconds, body).
    async fn post(&self, body: Vec<u8>) -> Result<(u16, Option<u64>, Vec<u8>), AttemptError> {
        let attempt = async {
            let tcp =
                tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await.map_err(AttemptError::Connect)?;
            let tls = TlsConnector::from(self.tls.clone())
                .connect(self.server_name.clone(), tcp)
                .await
                .map_err(AttemptError::Tls)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.map_err(AttemptError::Http)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let request = Request::post(self.path.as_str())
                .header(hyper::header::HOST, format!("{}:{}", self.host, self.port))
                .header(hyper::header::CONTENT_TYPE, transport::PACKAGE_CONTENT_TYPE)
                .body(Full::new(Bytes::from(body)))
                .map_err(AttemptError::Request)?;
            let response = sender.send_request(request).await.map_err(AttemptError::Http)?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(transport::retry_after_seconds);
            let body = read_response(response, self.config.max_response_bytes).await?;
            Ok::<_, AttemptError>((status, retry_after, body))
        };
        tokio::time::timeout(Duration::from_secs(ATTEMPT_TIMEOUT_SECS), attempt)
            .await
            .map_err(|_| AttemptError::Timeout(ATTEMPT_TIMEOUT_SECS))?
    }
}

/// Reads a response body of at most `limit` bytes: refused at once when its `Content-Length`
/// says it is larger, and while it is read when it grows past the limit (a huge or endless
/// body is never held whole).
pub async fn read_response<B>(response: hyper::Response<B>, limit: usize) -> Result<Vec<u8>, ResponseError>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let announced = response
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = announced.filter(|n| *n > limit as u64) {
        return Err(ResponseError::Announced { announced: n, limit });
    }
    let collected = http_body_util::Limited::new(response.into_body(), limit).collect().await.map_err(|e| {
        if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            ResponseError::TooLarge { limit }
        } else {
            ResponseError::Body(e)
        }
    })?;
    Ok(collected.to_bytes().to_vec())
}

/// When the next attempt of a package is due, in milliseconds since the epoch: `Retry-After`
/// seconds when SAMR sent one (capped at `max_retry_after_secs`), else the back-off of the
/// attempt (`retry_base_secs` doubling, capped likewise). Counted from `now` rounded up to the
/// next millisecond, with saturating arithmetic: never early, never wrapped.
pub fn retry_at_ms(now: &yrdx_proto::Timestamp, retry_after: Option<u64>, attempt: u32, config: &SamrConfig) -> i64 {
    let cap = config.max_retry_after_secs;
    let wait_secs = match retry_after {
        Some(secs) => secs.min(cap),
        None => {
            let doublings = attempt.saturating_sub(1).min(32);
            config.retry_base_secs.saturating_mul(1u64 << doublings).min(cap.max(config.retry_base_secs))
        }
    };
    let exact_ms = yrdx_clock::to_ms(now);
    let now_ceil = if now.nanos % 1_000_000 != 0 { exact_ms.saturating_add(1) } else { exact_ms };
    let wait_ms = i64::try_from(wait_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    now_ceil.saturating_add(wait_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrdx_proto::Timestamp;

    fn config() -> SamrConfig {
        let text = "intake_url = \"https://x\"\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\n";
        toml::from_str(text).expect("minimal [samr]")
    }

    #[test]
    fn retry_after_is_counted_from_the_precise_now_and_never_early() {
        let c = config();
        // 0.999 s past the second: a truncated now would make the retry 999 ms early.
        let now = Timestamp { seconds: 1_710_000_000, nanos: 999_000_000 };
        assert_eq!(retry_at_ms(&now, Some(1), 1, &c), 1_710_000_000_999 + 1000);
        // A fraction of a millisecond rounds up.
        let now = Timestamp { seconds: 1_710_000_000, nanos: 500_001 };
        assert_eq!(retry_at_ms(&now, Some(2), 1, &c), 1_710_000_000_001 + 2000);
        assert_eq!(retry_at_ms(&now, Some(0), 1, &c), 1_710_000_000_001);
    }

    /// A body that never ends, in 64 KiB chunks, counting what was pulled from it.
    fn endless(
        pulled: Arc<std::sync::atomic::AtomicUsize>,
    ) -> http_body_util::StreamBody<impl tokio_stream::Stream<Item = Result<hyper::body::Frame<Bytes>, std::io::Error>>>
    {
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        http_body_util::StreamBody::new(tokio_stream::iter(std::iter::repeat_with(move || {
            pulled.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
            Ok::<_, std::io::Error>(hyper::body::Frame::data(chunk.clone()))
        })))
    }

    #[tokio::test]
    async fn a_response_past_the_limit_is_refused_while_it_is_read() {
        let limit = 1 << 20;
        let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let response = hyper::Response::new(endless(pulled.clone()));
        let err = read_response(response, limit).await.unwrap_err();
        assert!(err.to_string().contains("over the limit of 1048576 bytes"), "{err}");
        // It stopped right past the limit: an endless body was not read whole.
        let read = pulled.load(std::sync::atomic::Ordering::Relaxed);
        assert!(read <= limit + 64 * 1024, "read {read} bytes");
        // One that announces itself as too large is not read at all.
        let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut response = hyper::Response::new(endless(pulled.clone()));
        response.headers_mut().insert(hyper::header::CONTENT_LENGTH, "134217728".parse().unwrap());
        let err = read_response(response, limit).await.unwrap_err();
        assert!(err.to_string().contains("134217728 bytes refused"), "{err}");
        assert_eq!(pulled.load(std::sync::atomic::Ordering::Relaxed), 0);
        // Within the limit, the body is read as it is.
        let ok = read_response(hyper::Response::new(Full::new(Bytes::from_static(b"<HZ/>"))), limit).await.unwrap();
        assert_eq!(ok, b"<HZ/>");
    }

    #[test]
    fn an_absurd_retry_after_is_capped_not_wrapped() {
        let c = config();
        let now = Timestamp { seconds: 1_710_000_000, nanos: 0 };
        let at = retry_at_ms(&now, Some(u64::MAX), 1, &c);
        assert_eq!(at, 1_710_000_000_000 + 3_600_000, "capped at max_retry_after_secs");
        assert!(at > yrdx_clock::to_ms(&now));
        // Back-off doubles from retry_base_secs and is capped the same way.
        assert_eq!(retry_at_ms(&now, None, 1, &c), 1_710_000_000_000 + 2000);
        assert_eq!(retry_at_ms(&now, None, 3, &c), 1_710_000_000_000 + 8000);
        assert_eq!(retry_at_ms(&now, None, 60, &c), 1_710_000_000_000 + 3_600_000);
        // Far in the future, the sum saturates instead of wrapping negative.
        let late = Timestamp { seconds: i64::MAX / 1000, nanos: 0 };
        assert!(retry_at_ms(&late, Some(3600), 1, &c) > 0);
    }
}
