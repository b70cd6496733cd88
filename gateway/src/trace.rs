//! W3C Trace Context: the `traceparent` of an incoming call is continued, and a call without
//! one (or with an invalid one) starts a fresh trace. [`TraceLayer`] opens one span per call with
//! `trace_id` and `parent_id`, and leaves the [`TraceContext`] in the request's extensions so
//! that services can name the trace on their outcome lines.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tonic::codegen::http;
use tracing::Instrument;

/// A parsed `traceparent` header (W3C Trace Context, version `00`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits, not all zero: the caller's span.
    pub parent_id: String,
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

fn lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses a `traceparent` value strictly; `None` for anything invalid (which is then ignored, as
/// the specification asks, and a fresh trace started).
pub fn parse_traceparent(value: &str) -> Option<TraceParent> {
    let mut parts = value.split('-');
    let (version, trace_id, parent_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four fields; a later version may append more, which we may ignore.
    if !lower_hex(version, 2) || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if !lower_hex(trace_id, 32) || trace_id.bytes().all(|b| b == b'0') {
        return None;
    }
    if !lower_hex(parent_id, 16) || parent_id.bytes().all(|b| b == b'0') {
        return None;
    }
    if !lower_hex(flags, 2) {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(TraceParent { trace_id: trace_id.to_owned(), parent_id: parent_id.to_owned(), flags })
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A fresh trace id: 32 hex digits, unique per process and call (a hash of the time, the process
/// and a counter; no random source is needed for uniqueness, only for unguessability, which a
/// trace id does not promise).
pub fn fresh_trace_id() -> String {
    use sha2::Digest;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let digest = sha2::Sha256::new()
        .chain_update(now.to_le_bytes())
        .chain_update(std::process::id().to_le_bytes())
        .chain_update(n.to_le_bytes())
        .finalize();
    hex::encode(&digest[..16])
}

/// The trace a call belongs to, in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// The continued or fresh trace id.
    pub trace_id: String,
    /// The caller's span id, when a valid `traceparent` came with the call.
    pub parent_id: Option<String>,
    /// Whether the caller records this trace (`traceparent` flag bit 0; a fresh trace is
    /// recorded): an exported span of an unsampled trace is not sent.
    pub sampled: bool,
}

impl TraceContext {
    /// The context of a call with these headers.
    pub fn from_headers(headers: &http::HeaderMap) -> TraceContext {
        let parent = headers.get("traceparent").and_then(|v| v.to_str().ok()).and_then(parse_traceparent);
        match parent {
            Some(p) => TraceContext { trace_id: p.trace_id, parent_id: Some(p.parent_id), sampled: p.flags & 1 == 1 },
            None => TraceContext { trace_id: fresh_trace_id(), parent_id: None, sampled: true },
        }
    }
}

/// The trace id of a tonic request (set by [`TraceLayer`]); empty outside a server.
pub fn trace_id_of<T>(request: &tonic::Request<T>) -> String {
    request.extensions().get::<TraceContext>().map(|c| c.trace_id.clone()).unwrap_or_default()
}

/// Opens a `call` span (path, trace_id, parent_id) around every call; with the `otlp` feature,
/// joined to the caller's trace in OpenTelemetry too ([`join_trace`]).
#[derive(Debug, Clone, Default)]
pub struct TraceLayer;

impl<S> tower::Layer<S> for TraceLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced { inner }
    }
}

/// The service of [`TraceLayer`].
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for Traced<S>
where
    S: tower::Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let context = TraceContext::from_headers(request.headers());
        let span = tracing::info_span!(
            "call",
            path = %request.uri().path(),
            trace_id = tracing::field::Empty,
            parent_id = context.parent_id.as_deref().unwrap_or(""),
        );
        #[cfg(feature = "otlp")]
        let context = join_trace(&span, context);
        span.record("trace_id", context.trace_id.as_str());
        request.extensions_mut().insert(context);
        // The clone that was made ready is the one called (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // Entered while the service is called too: spans the handler opens are children of it.
        let future = span.in_scope(|| inner.call(request));
        Box::pin(future.instrument(span))
    }
}

/// Joins `span` (a call's, just opened) to its trace in OpenTelemetry, and says which trace
/// that is. A continued trace gets the caller's span as its remote parent, with the caller's
/// sampled flag. A fresh trace takes the id OpenTelemetry gave the span, so that the log lines
/// and the collector name the same trace. Without an OpenTelemetry layer (no export
/// configured), `context` is returned as it came.
#[cfg(feature = "otlp")]
pub fn join_trace(span: &tracing::Span, context: TraceContext) -> TraceContext {
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    match &context.parent_id {
        Some(parent) => {
            // Both were checked as W3C hex when the header was read.
            if let (Ok(trace_id), Ok(span_id)) = (TraceId::from_hex(&context.trace_id), SpanId::from_hex(parent)) {
                let flags = if context.sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
                let remote = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
                // Refused only when no OpenTelemetry layer is installed: nothing to join then.
                let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
            }
            context
        }
        None => {
            let otel = span.context();
            let given = otel.span().span_context().clone();
            if given.is_valid() {
                TraceContext { trace_id: given.trace_id().to_string(), ..context }
            } else {
                context
            }
        }
    }
}

/// Without the `otlp` feature there is no OpenTelemetry trace to join: `context` as it came.
#[cfg(not(feature = "otlp"))]
pub fn join_trace(_span: &tracing::Span, context: TraceContext) -> TraceContext {
    context
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_read() {
        let p = parse_traceparent(GOOD).unwrap();
        assert_eq!(p.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p.parent_id, "00f067aa0ba902b7");
        assert_eq!(p.flags, 1);
        // A later version may carry more fields.
        assert!(parse_traceparent(&format!("01-{}-{}-00-extra", &GOOD[3..35], &GOOD[36..52])).is_some());
    }

    #[test]
    fn invalid_traceparents_are_ignored() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_call_without_a_valid_traceparent_gets_a_fresh_trace() {
        let mut headers = http::HeaderMap::new();
        let a = TraceContext::from_headers(&headers);
        let b = TraceContext::from_headers(&headers);
        assert!(lower_hex(&a.trace_id, 32) && a.parent_id.is_none() && a.sampled);
        assert_ne!(a.trace_id, b.trace_id);
        headers.insert("traceparent", http::HeaderValue::from_static(GOOD));
        let c = TraceContext::from_headers(&headers);
        assert_eq!(c.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(c.parent_id.as_deref(), Some("00f067aa0ba902b7"));
        assert!(c.sampled);
        let unsampled = GOOD.replace("-01", "-00");
        headers.insert("traceparent", http::HeaderValue::from_str(&unsampled).unwrap());
        assert!(!TraceContext::from_headers(&headers).sampled);
    }
}
