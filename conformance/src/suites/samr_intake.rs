//! The `samr-intake` suite (live, the other way): acts as the gateway toward a SAMR intake URL,
//! pushing packages over HTTPS with mutual TLS and checking the receipts, the digest rejection and
//! the handling of a package number already accepted.

use crate::report::{Evidence, Finding, Payload};
use crate::suite::{LoadedCase, Placeholders, SamrPushStep, Step};
use crate::tls::{ClientIdentity, TlsClient, TlsFacts};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use yrdx_adapters::samr::{self, PackageType};
use yrdx_adapters::{Record, RecordKind};
use yrdx_proto::v1::{Envelope, SpotCheckResult};

/// A SAMR intake to test.
#[derive(Debug, Clone)]
pub struct SamrTarget {
    /// `https://host:port/path`.
    pub url: String,
    /// The name its certificate must carry.
    pub server_name: String,
    /// The CA of its server certificate, PEM.
    pub ca_pem: String,
    /// The gateway's client certificate for SAMR.
    pub identity: ClientIdentity,
    /// The reporting unit (`BSDW`), `310000`.
    pub sender: String,
}

/// Checks, before any case, that the intake answers and our `--ca` accepts its certificate.
pub async fn preflight(target: &SamrTarget) -> Result<(), crate::suites::TargetError> {
    let authority = crate::suites::https_authority("--intake", &target.url)?;
    crate::tls::preflight(
        &authority,
        &target.ca_pem,
        Some(&target.identity),
        &target.server_name,
        &[b"http/1.1"],
        crate::suites::live::DEFAULT_STEP_TIMEOUT,
    )
    .await
    .map(|_| ())
    .map_err(|source| crate::suites::TargetError::Unreachable {
        flag: "--intake",
        url: target.url.clone(),
        source,
    })
}

/// Package sequence numbers of this process: each push gets a new one.
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// Starts this run's package numbering at `first` (1–9999), so reruns on one day do not reuse the
/// numbers of earlier runs (SAMR would answer them as duplicates).
pub fn start_numbering(first: u32) {
    SEQUENCE.store(first.clamp(1, 9000) - 1, Ordering::SeqCst);
}

/// The response to one POST.
struct Posted {
    status: u16,
    /// The `Retry-After` header in seconds, when it is one.
    retry_after: Option<u64>,
    body: Vec<u8>,
    tls: Option<TlsFacts>,
}

/// Busy answers (`429`/`503`) a step accepts before it gives up: SAMR may be busy, and a gateway
/// must then wait the `Retry-After` and try again — so does the suite.
const MAX_BUSY_ANSWERS: u32 = 5;

/// The longest `Retry-After` the suite waits; a longer one is a finding, not a hung run.
const MAX_RETRY_AFTER_SECS: u64 = 30;

/// Why a package could not be posted to the intake (nothing was judged).
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The `--intake` URL is unusable.
    #[error(transparent)]
    Url(#[from] crate::suites::TargetError),
    /// The TLS credentials are unusable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsSetupError),
    /// No connection (or TLS handshake) to the intake.
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        /// `host:port`.
        authority: String,
        /// The error.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("HTTP: {source}")]
    Http {
        /// hyper's error.
        source: hyper::Error,
    },
    /// The request could not be built.
    #[error("HTTP request: {source}")]
    Request {
        /// The error.
        source: hyper::http::Error,
    },
}

async fn post(target: &SamrTarget, bytes: &[u8]) -> Result<Posted, PostError> {
    let authority = crate::suites::https_authority("--intake", &target.url)?;
    let uri: hyper::Uri = target.url.parse().map_err(|e: hyper::http::uri::InvalidUri| {
        crate::suites::TargetError::Url { flag: "--intake", url: target.url.clone(), reason: e.to_string() }
    })?;
    let tls = TlsClient::new(&target.ca_pem, Some(&target.identity), &target.server_name, &[b"http/1.1"])?;
    let facts = Arc::new(Mutex::new(None));
    let stream = tls
        .connect(&authority, &facts)
        .await
        .map_err(|source| PostError::Connect { authority: authority.clone(), source })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|source| PostError::Http { source })?;
    tokio::spawn(conn);
    let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let request = hyper::Request::post(path)
        .header("host", &authority)
        .header("content-type", yrdx_adapters::samr::transport::PACKAGE_CONTENT_TYPE)
        .body(Full::new(Bytes::copy_from_slice(bytes)))
        .map_err(|source| PostError::Request { source })?;
    let response = sender.send_request(request).await.map_err(|source| PostError::Http { source })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(yrdx_adapters::samr::transport::retry_after_seconds);
    let body = response.into_body().collect().await.map_err(|source| PostError::Http { source })?.to_bytes().to_vec();
    let tls = facts.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(Posted { status, retry_after, body, tls })
}

/// How a samr-intake case ended.
pub enum SamrOutcome {
    /// Ran: findings (none = pass) and evidence.
    Ran(Vec<Finding>, Vec<Evidence>),
    /// The case or the tool broke.
    Error(String, Vec<Evidence>),
}

/// Why a case's SAMR package could not be built (the case is wrong: it ends in error).
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The package type code is unknown.
    #[error("unknown package type {code}")]
    UnknownType {
        /// The code given.
        code: String,
    },
    /// A step names a record the case does not declare.
    #[error("no record named {name}")]
    UnknownRecord {
        /// The name.
        name: String,
    },
    /// A CCJG package without its two records.
    #[error("a CCJG package needs a sampling record and its inspection")]
    SpotCheckPair,
    /// The records are not of the package's kind.
    #[error("the records do not fit a {code} package")]
    Misfit {
        /// The package type code.
        code: String,
    },
    /// The package could not be encoded.
    #[error("cannot encode the {code} package: {source}")]
    Encode {
        /// The package type code.
        code: String,
        /// The encoder's error.
        source: yrdx_adapters::EncodeError,
    },
}

fn package(step: &SamrPushStep, records: &BTreeMap<String, Record>, sender: &str) -> Result<Vec<u8>, PackageError> {
    let kind = PackageType::from_code(&step.package)
        .ok_or_else(|| PackageError::UnknownType { code: step.package.clone() })?;
    let named: Vec<Record> = step
        .records
        .iter()
        .map(|n| records.get(n).cloned().ok_or_else(|| PackageError::UnknownRecord { name: n.clone() }))
        .collect::<Result<_, _>>()?;
    let payload: Vec<Record> = if kind == PackageType::SpotCheckResults {
        let sampling = named.iter().find_map(|r| if let Record::Sampling(s) = r { Some(s.clone()) } else { None });
        let inspection = named.iter().find_map(|r| if let Record::Inspection(i) = r { Some(i.clone()) } else { None });
        match (sampling, inspection) {
            (Some(s), Some(i)) => {
                vec![Record::SpotCheckResult(SpotCheckResult { sampling: Some(s), inspection: Some(i) })]
            }
            _ => return Err(PackageError::SpotCheckPair),
        }
    } else {
        named
    };
    if payload.iter().any(|r| PackageType::for_kind(r.kind()) != Some(kind) && r.kind() != RecordKind::SpotCheckResult)
    {
        return Err(PackageError::Misfit { code: step.package.clone() });
    }
    let sequence = SEQUENCE.fetch_add(1, Ordering::SeqCst) + 1;
    let envelope = Envelope {
        message_id: String::new(),
        sender: sender.to_string(),
        receiver: "SAMR".into(),
        sent_at: Some(crate::clock::now()),
    };
    let encoded = samr::encode(&envelope, sequence, &payload)
        .map_err(|source| PackageError::Encode { code: step.package.clone(), source })?;
    Ok(encoded.bytes)
}

/// Replaces the digest (`BT/ZY`) with one that cannot match.
fn corrupt_digest(bytes: &[u8]) -> Vec<u8> {
    let find = |needle: &[u8]| bytes.windows(needle.len()).position(|w| w == needle);
    match (find(b"<ZY>"), find(b"</ZY>")) {
        (Some(a), Some(b)) if b > a + 4 => {
            let mut out = bytes[..a + 4].to_vec();
            out.extend(std::iter::repeat_n(b'0', 64));
            out.extend_from_slice(&bytes[b..]);
            out
        }
        _ => bytes.to_vec(),
    }
}

/// Runs one case of the samr-intake suite; its records are built from the vectors in `vectors`.
pub async fn run_case(
    case: &LoadedCase,
    target: &SamrTarget,
    fill: &Placeholders,
    vectors: &std::path::Path,
) -> SamrOutcome {
    let mut records = BTreeMap::new();
    for (name, spec) in &case.def.records {
        match crate::records::build(spec, fill, vectors) {
            Ok(r) => {
                records.insert(name.clone(), r);
            }
            Err(e) => return SamrOutcome::Error(format!("record {name}: {e}"), vec![]),
        }
    }
    let mut findings = Vec::new();
    let mut evidence = Vec::new();
    let mut last: Option<(Vec<u8>, Vec<u8>)> = None;
    for (i, step) in case.def.steps.iter().enumerate() {
        let Step::SamrPush(s) = step else {
            return SamrOutcome::Error(
                format!("step {}: only samr_push steps run against a SAMR intake", i + 1),
                evidence,
            );
        };
        let bytes = if s.repeat {
            match &last {
                Some((b, _)) => b.clone(),
                None => return SamrOutcome::Error(format!("step {}: `repeat` needs an earlier push", i + 1), evidence),
            }
        } else {
            match package(s, &records, &target.sender) {
                Ok(b) if s.corrupt_digest => corrupt_digest(&b),
                Ok(b) => b,
                Err(e) => return SamrOutcome::Error(format!("step {}: {e}", i + 1), evidence),
            }
        };
        let number = samr::decode_package(&bytes, &yrdx_adapters::DecodeLimits::default())
            .map(|p| p.header.number)
            .unwrap_or_else(|_| "(digest corrupted on purpose)".into());
        // Every POST of this step, busy answers and the last, is evidence of the same request.
        let post_evidence = |posted: &Posted, response: Payload, started: Instant| Evidence {
            step: i + 1,
            actor: format!("gateway ({})", target.sender),
            method: format!("POST {}", target.url),
            status: posted.status.to_string(),
            request: Payload::of(&bytes, Some(json!({"package": number, "type": s.package}))),
            response,
            tls: posted.tls.clone(),
            duration_ms: started.elapsed().as_millis() as u64,
        };
        let mut started = Instant::now();
        let mut busy = 0;
        let posted = loop {
            let posted = match post(target, &bytes).await {
                Ok(p) => p,
                Err(e) => return SamrOutcome::Error(format!("step {}: {e}", i + 1), evidence),
            };
            if !matches!(posted.status, 429 | 503) || busy >= MAX_BUSY_ANSWERS || s.expect.http == posted.status {
                break posted;
            }
            // A busy intake: wait as it asks (SAMR's transport allows 429 and 503) and try again.
            busy += 1;
            let wait = posted.retry_after.unwrap_or(1);
            evidence.push(post_evidence(
                &posted,
                Payload::view(json!({"status": posted.status, "Retry-After": posted.retry_after})),
                started,
            ));
            if wait > MAX_RETRY_AFTER_SECS {
                findings.push(Finding::new(
                    "a busy intake asks for a Retry-After the suite can wait",
                    format!("step {} {}", i + 1, s.package),
                    format!("Retry-After of at most {MAX_RETRY_AFTER_SECS} s"),
                    format!("{} with Retry-After: {wait}", posted.status),
                ));
                return SamrOutcome::Ran(findings, evidence);
            }
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            started = Instant::now();
        };
        let receipt = samr::decode_receipt(&posted.body).ok();
        let view = receipt
            .as_ref()
            .map(|r| json!({"SJBBH": r.number, "JSZT": if r.accepted { 1 } else { 0 }, "CWXX": r.reason}));
        evidence.push(post_evidence(&posted, Payload::of(&posted.body, view), started));
        let at = format!("step {} {}", i + 1, s.package);
        if posted.status != s.expect.http {
            findings.push(Finding::new(
                "the intake answers with the HTTP status",
                at.clone(),
                s.expect.http.to_string(),
                posted.status.to_string(),
            ));
        }
        match &receipt {
            None if posted.status == 200 => findings.push(Finding::new(
                "a 200 answer carries a GB18030 receipt",
                format!("{at}: body"),
                "<HZ><SJBBH/><JSZT/><CWXX/></HZ>",
                samr::gb18030_text(&posted.body),
            )),
            None => {}
            Some(r) => {
                if let Some(a) = s.expect.accepted {
                    if r.accepted != a {
                        findings.push(Finding::new(
                            "the receipt's JSZT",
                            format!("{at}: HZ/JSZT"),
                            if a { "1" } else { "0" },
                            format!("{} {}", if r.accepted { "1" } else { "0" }, r.reason),
                        ));
                    }
                }
                if let Some(words) = &s.expect.reason_contains {
                    if !r.reason.contains(words.as_str()) {
                        findings.push(Finding::new(
                            "the receipt says why",
                            format!("{at}: HZ/CWXX"),
                            format!("contains {words}"),
                            r.reason.clone(),
                        ));
                    }
                }
                if !s.corrupt_digest && r.number != number {
                    findings.push(Finding::new(
                        "the receipt names the package",
                        format!("{at}: HZ/SJBBH"),
                        number.clone(),
                        r.number.clone(),
                    ));
                }
                if s.expect.same_receipt {
                    match &last {
                        Some((_, earlier)) if *earlier == posted.body => {}
                        Some((_, earlier)) => findings.push(Finding::new(
                            "a package number already accepted is answered with the same receipt",
                            format!("{at}: receipt"),
                            samr::gb18030_text(earlier),
                            samr::gb18030_text(&posted.body),
                        )),
                        None => {}
                    }
                }
            }
        }
        last = Some((bytes, posted.body));
        if !findings.is_empty() {
            break;
        }
    }
    SamrOutcome::Ran(findings, evidence)
}
