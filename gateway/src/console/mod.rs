//! The operators' web console on `[console] listen`: HTTPS with the gateway's own server
//! certificate and client-certificate verifier (the CAs and CRLs in force, swapped by a reload),
//! and a page only for a certificate naming a registered operator (a partner's certificate gets
//! 403; no certificate fails the handshake). Pages are rendered on the server from
//! [`data`]; no script, no external resource. An action (resend of a parked SAMR package) is a
//! GET showing a confirmation form carrying a one-time token, then a POST with that token; it is
//! logged with the operator's identity, like the Admin call.

#![forbid(unsafe_code)]

pub mod data;
mod html;
mod pages;

use crate::console::data::{CaseFilter, ConsoleData, DataError, Resent};
use crate::transport::TlsConfigHandle;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tracing::{debug, info, warn};

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// `[console] listen` could not be bound.
    #[error("console.listen {listen}: {source}")]
    Bind {
        /// The configured address.
        listen: SocketAddr,
        /// The system's error.
        #[source]
        source: std::io::Error,
    },
}

/// How long a confirmation form stays valid.
const CONFIRMATION_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Most confirmations outstanding at once (the oldest are dropped beyond it).
const MAX_CONFIRMATIONS: usize = 1000;
/// The largest form body read.
const MAX_FORM_BYTES: usize = 4096;
/// Console connections served at once.
const MAX_CONNECTIONS: usize = 64;

/// A confirmation form handed out: who may post it, for which action.
#[derive(Debug, Clone)]
struct Pending {
    operator: String,
    action: String,
    issued: Instant,
}

/// One-time confirmation tokens (random, bound to the operator and the action).
#[derive(Debug, Default)]
struct Confirmations(Mutex<HashMap<String, Pending>>);

impl Confirmations {
    /// A new token for `operator` to confirm `action`.
    fn issue(&self, operator: &str, action: &str) -> Option<String> {
        let mut bytes = [0u8; 24];
        rustls::crypto::ring::default_provider().secure_random.fill(&mut bytes).ok()?;
        let token = hex::encode(bytes);
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, p| p.issued.elapsed() < CONFIRMATION_LIFETIME);
        if map.len() >= MAX_CONFIRMATIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, p)| p.issued).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(token.clone(), Pending { operator: operator.into(), action: action.into(), issued: Instant::now() });
        Some(token)
    }

    /// Whether `token` confirms `action` by `operator`; a token is used up by its first match.
    fn redeem(&self, token: &str, operator: &str, action: &str) -> bool {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let ok = map.get(token).is_some_and(|p| {
            p.operator == operator && p.action == action && p.issued.elapsed() < CONFIRMATION_LIFETIME
        });
        if ok {
            map.remove(token);
        }
        ok
    }
}

struct Console {
    data: ConsoleData,
    confirmations: Confirmations,
    tls: Arc<TlsConfigHandle>,
}

/// Binds `listen` and serves the console until `stop` says so; returns the bound address.
pub async fn start(
    listen: SocketAddr,
    data: ConsoleData,
    tls: Arc<TlsConfigHandle>,
    mut stop: watch::Receiver<bool>,
) -> Result<SocketAddr, ConsoleError> {
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|source| ConsoleError::Bind { listen, source })?;
    let addr = listener.local_addr().map_err(|source| ConsoleError::Bind { listen, source })?;
    let console = Arc::new(Console { data, confirmations: Confirmations::default(), tls: tls.clone() });
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "console listener: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = stop.changed() => break,
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                debug!(%peer, "console: too many connections, closed");
                continue;
            };
            let (console, tls, mut stop) = (console.clone(), tls.clone(), stop.clone());
            tokio::spawn(async move {
                let _slot = slot;
                // The configuration in force for this handshake, speaking HTTP/1.1 to browsers.
                let mut config = (*tls.current()).clone();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
                let limit = Duration::from_secs(console.data.handshake_timeout_secs().max(1));
                let stream = match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return debug!(%peer, error = %e, "console: TLS handshake failed"),
                    Err(_) => return debug!(%peer, "console: TLS handshake timed out"),
                };
                let certs: Arc<Vec<CertificateDer<'static>>> = Arc::new(
                    stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                        .unwrap_or_default(),
                );
                let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (console, certs) = (console.clone(), certs.clone());
                    async move { Ok::<_, std::convert::Infallible>(answer(&console, &certs, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    r = conn => if let Err(e) = r { debug!(%peer, error = %e, "console connection ended") },
                    _ = stop.changed() => {}
                }
            });
        }
        info!("console listener closed");
    });
    info!(%addr, "operators' console on https://{addr}/ (operator certificates only)");
    Ok(addr)
}

const CSS: &str = include_str!("assets/console.css");

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let headers = r.headers_mut();
    for (name, value) in [
        ("content-type", content_type),
        // Nothing but this origin's stylesheet: no script, no frame, forms post only here.
        (
            "content-security-policy",
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        if let Ok(v) = hyper::header::HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    }
    r
}

fn html(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    respond(status, "text/html; charset=utf-8", body)
}

/// A page for a request with no operator behind it.
fn refused(why: &str) -> Response<Full<Bytes>> {
    html(
        StatusCode::FORBIDDEN,
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Refused · yrdx console</title></head>\
             <body><h1>Operators only</h1><p>{}</p></body></html>\n",
            html::esc(why)
        ),
    )
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space).
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of `key` in a query string or form body (first occurrence; empty when absent).
fn form_value(query: &str, key: &str) -> String {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| form_decode(k) == key)
        .map(|(_, v)| form_decode(v))
        .unwrap_or_default()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DataError> + Send + 'static,
) -> Result<T, DataError> {
    tokio::task::spawn_blocking(f).await?
}

async fn answer(
    console: &Arc<Console>,
    certs: &[CertificateDer<'static>],
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let Some(leaf) = certs.first() else {
        return refused("no client certificate: the console needs an operator's certificate");
    };
    // A keep-alive connection outlives a reload: its certificate is checked again against the CAs
    // and CRLs in force, as the gateway's own connections are.
    if let Some(why) = crate::transport::refused_now(console.tls.verifier().as_ref(), certs) {
        warn!(reason = %why, "console: refused a certificate the CAs or CRLs in force no longer admit");
        return refused(&format!("certificate no longer admitted: {why}"));
    }
    let leaf = leaf.as_ref();
    let operator = match console.data.operator_of(leaf) {
        Ok(o) => o,
        Err(why) => {
            warn!(reason = %why, path = %req.uri().path(), "console: refused a certificate that names no operator");
            return refused(&format!("{why}: the console serves registered operators only"));
        }
    };
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let segments: Vec<String> = path.trim_matches('/').split('/').map(form_decode).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method().clone();
    if path == "/console.css" && method == Method::GET {
        return respond(StatusCode::OK, "text/css; charset=utf-8", CSS.to_string());
    }
    let data = console.data.clone();
    let banner = {
        let d = data.clone();
        tokio::task::spawn_blocking(move || d.banner()).await.ok().flatten()
    };
    let page = |status: StatusCode, title: &str, current: &str, body: String| {
        html(status, html::page(title, current, &operator, banner.as_deref(), &body))
    };
    let failed = |e: DataError| {
        warn!(error = %e, "console: page could not be read");
        html(
            StatusCode::INTERNAL_SERVER_ERROR,
            html::page("Error", "", &operator, None, &format!("<p class=\"bad\">{}</p>", html::esc(&e.to_string()))),
        )
    };
    let not_found = |what: String| {
        html(
            StatusCode::NOT_FOUND,
            html::page("Not found", "", &operator, None, &format!("<p>{}</p>", html::esc(&what))),
        )
    };
    match (method.clone(), segments.as_slice()) {
        (Method::GET, [""]) => match blocking(move || data.overview()).await {
            Ok(o) => page(StatusCode::OK, "Overview", "/", pages::overview(&o)),
            Err(e) => failed(e),
        },
        (Method::GET, ["cases"]) => {
            let filter = CaseFilter {
                region: form_value(&query, "region"),
                status: form_value(&query, "status"),
                plan: form_value(&query, "plan"),
            };
            let f = filter.clone();
            match blocking(move || data.cases(&f)).await {
                Ok(v) => page(StatusCode::OK, "Cases", "/cases", pages::cases(&v, &filter)),
                Err(e) => failed(e),
            }
        }
        (Method::GET, ["cases", id]) => {
            let id = id.to_string();
            let i = id.clone();
            match blocking(move || data.case(&i)).await {
                Ok(Some(d)) => page(StatusCode::OK, &format!("Case {id}"), "/cases", pages::case(&d)),
                Ok(None) => not_found(format!("no case {id}")),
                Err(e) => failed(e),
            }
        }
        (Method::GET, ["samr"]) => match blocking(move || data.samr()).await {
            Ok(v) => page(StatusCode::OK, "SAMR docking", "/samr", pages::samr(&v)),
            Err(e) => failed(e),
        },
        (Method::GET, ["samr", "packages", number]) => {
            let number = number.to_string();
            let n = number.clone();
            match blocking(move || data.samr_package(&n)).await {
                Ok(Some(d)) => {
                    page(StatusCode::OK, &format!("SAMR package {number}"), "/samr", pages::samr_package(&d))
                }
                Ok(None) => not_found(format!("no SAMR package {number}")),
                Err(e) => failed(e),
            }
        }
        (Method::GET, ["samr", "packages", number, "resend"]) => {
            let number = number.to_string();
            let n = number.clone();
            match blocking(move || data.samr_package(&n)).await {
                Ok(Some(d)) if d.row.state == "parked" => {
                    match console.confirmations.issue(&operator, &format!("resend {number}")) {
                        Some(token) => page(
                            StatusCode::OK,
                            &format!("Resend {number}?"),
                            "/samr",
                            pages::confirm_resend(&d, &token),
                        ),
                        None => failed(DataError::NoRandomToken),
                    }
                }
                Ok(Some(d)) => page(
                    StatusCode::CONFLICT,
                    &format!("SAMR package {number}"),
                    "/samr",
                    format!(
                        "<p class=\"bad\">Package {} is {}, not parked: there is nothing to resend.</p>",
                        html::esc(&number),
                        html::esc(&d.row.state)
                    ),
                ),
                Ok(None) => not_found(format!("no SAMR package {number}")),
                Err(e) => failed(e),
            }
        }
        (Method::POST, ["samr", "packages", number, "resend"]) => {
            let number = number.to_string();
            let body = match Limited::new(req.into_body(), MAX_FORM_BYTES).collect().await {
                Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                Err(e) => {
                    return page(
                        StatusCode::BAD_REQUEST,
                        "Not done",
                        "/samr",
                        format!(
                            "<p class=\"bad\">The form could not be read ({}): nothing was changed.</p>",
                            html::esc(&e.to_string())
                        ),
                    )
                }
            };
            let token = form_value(&body, "confirm");
            if token.is_empty() || !console.confirmations.redeem(&token, &operator, &format!("resend {number}")) {
                warn!(%operator, %number, "console: resend posted without a valid confirmation; nothing changed");
                return page(
                    StatusCode::FORBIDDEN,
                    "Not confirmed",
                    "/samr",
                    format!(
                        "<p class=\"bad\" id=\"not-confirmed\">This resend was not confirmed (missing, used or expired confirmation): nothing was changed.</p>\
                         <p><a href=\"/samr/packages/{}/resend\">Start again</a></p>",
                        html::url_part(&number)
                    ),
                );
            }
            let (o, n) = (operator.clone(), number.clone());
            match blocking(move || data.resend(&o, &n)).await {
                Ok(Resent::Requeued) => page(
                    StatusCode::OK,
                    "Resent",
                    "/samr",
                    format!(
                        "<p class=\"good\" id=\"resent\">Package {} is queued for SAMR again (by operator {}).</p><p><a href=\"/samr\">SAMR docking</a></p>",
                        html::esc(&number),
                        html::esc(&operator)
                    ),
                ),
                Ok(Resent::NotParked) => page(
                    StatusCode::CONFLICT,
                    "Not done",
                    "/samr",
                    format!("<p class=\"bad\">Package {} is not parked: nothing was changed.</p>", html::esc(&number)),
                ),
                Err(e) => failed(e),
            }
        }
        (Method::GET, ["plans"]) => match blocking(move || data.plans()).await {
            Ok(v) => page(StatusCode::OK, "Plans", "/plans", pages::plans(&v)),
            Err(e) => failed(e),
        },
        (Method::GET, ["calendar"]) => match blocking(move || data.calendar()).await {
            Ok(v) => page(StatusCode::OK, "Calendar", "/calendar", pages::calendar(&v)),
            Err(e) => failed(e),
        },
        (Method::GET, _) => not_found(format!("no page {path}")),
        _ => html(
            StatusCode::METHOD_NOT_ALLOWED,
            html::page("Not allowed", "", &operator, None, "<p>Only the pages' own forms may post.</p>"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_and_missing_keys_are_empty() {
        assert_eq!(form_value("region=320000&status=open&plan=YRD-2024%2D01", "plan"), "YRD-2024-01");
        assert_eq!(form_value("a=x+y&b=%3Cs%3E", "b"), "<s>");
        assert_eq!(form_value("a=x+y", "a"), "x y");
        assert_eq!(form_value("flag&a=1", "flag"), "");
        assert_eq!(form_value("", "confirm"), "");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn a_confirmation_is_for_one_operator_one_action_and_once() {
        let c = Confirmations::default();
        let t = c.issue("ops", "resend SJB-1").unwrap();
        assert_eq!(t.len(), 48);
        assert!(!c.redeem(&t, "other", "resend SJB-1"), "another operator");
        assert!(!c.redeem(&t, "ops", "resend SJB-2"), "another package");
        assert!(!c.redeem("not-a-token", "ops", "resend SJB-1"));
        assert!(c.redeem(&t, "ops", "resend SJB-1"));
        assert!(!c.redeem(&t, "ops", "resend SJB-1"), "used up");
        assert_ne!(c.issue("ops", "x"), c.issue("ops", "x"), "tokens are random");
    }
}
