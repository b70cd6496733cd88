//! OTLP export end to end: a gateway whose spans go, through `yrdx_gateway::otlp::install` (what
//! `yrdx serve` calls for `[tracing] otlp_endpoint`), to an in-test OTLP/gRPC receiver — a tonic
//! server of the collector's own `opentelemetry.proto.collector.trace.v1.TraceService`. The
//! caller's W3C trace is continued; spans carry the partner, message id, record ids and
//! delivery ids; shutting the telemetry down sends what was still batched.
//!
//! One test: the export is the process's one global subscriber, on this test's runtime.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::sync::{Arc, Mutex, PoisonError};
use tonic::{Request, Response, Status};
use yrdx_adapters::{Partner, Record};
use yrdx_gateway::config::{LogFormat, TracingConfig};
use yrdx_proto::v1::{AckRequest, SubmitRequest};
use yrdx_tests::{document, vector_record, TestGateway};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID: &str = "b7ad6b7169203331";

/// What the receiver was sent: every span of every export call, with its service name.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, Span)>>>);

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| text(a.value.as_ref()?.value.as_ref()?))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

/// A span's string attribute.
fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| text(a.value.as_ref()?.value.as_ref()?))
}

fn plan(id: &str) -> Record {
    let mut r = vector_record(Partner::Canonical, "canonical/valid/plan.json");
    if let Record::Plan(p) = &mut r {
        p.plan_id = id.into();
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_receiver_in_the_callers_trace_with_the_exchange_attributes() {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("receiver port");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let receiver = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(received.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let telemetry =
        yrdx_gateway::otlp::install(LogFormat::Json, &TracingConfig { otlp_endpoint: Some(endpoint.clone()) })
            .expect("the export is installed");
    assert!(telemetry.exporting());

    let g = TestGateway::start().await;
    let mut shanghai = g.client("shanghai").await;
    let mut traced = Request::new(SubmitRequest {
        document: document(Partner::Canonical, "310000", "OT-1", &[plan("YRD-OTLP-01")]),
    });
    traced.metadata_mut().insert("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01").parse().expect("ascii"));
    shanghai.submit(traced).await.expect("accepted");
    // Without a traceparent: a fresh trace, the same id in the log's field and at the collector.
    shanghai
        .submit(SubmitRequest { document: document(Partner::Canonical, "310000", "OT-2", &[plan("YRD-OTLP-02")]) })
        .await
        .expect("accepted");
    g.client("jiangsu")
        .await
        .ack(AckRequest { delivery_ids: vec!["D-OTLP-1".into(), "D-OTLP-2".into()] })
        .await
        .expect("ack");
    g.stop().await;
    // The batch processor waits 5 s between exports: what is here now, shutdown sent.
    telemetry.shutdown().expect("the last batch is sent");

    let spans = received.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
    assert!(spans.iter().all(|(service, _)| service == "yrdx-gateway"), "service.name");
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let named = |name: &str, message_id: &str| {
        spans
            .iter()
            .map(|(_, s)| s)
            .find(|s| {
                s.name == name && (message_id.is_empty() || attribute(s, "message_id").as_deref() == Some(message_id))
            })
            .unwrap_or_else(|| {
                let names: Vec<_> = spans.iter().map(|(_, s)| (&s.name, attribute(s, "message_id"))).collect();
                panic!("no {name} span of {message_id:?} among {names:?}")
            })
            .clone()
    };

    // The continued trace: the submit span in the caller's trace, under the call span, whose
    // parent is the caller's span.
    let submit = named("submit", "OT-1");
    assert_eq!(hex(&submit.trace_id), TRACE_ID);
    assert_eq!(attribute(&submit, "partner").as_deref(), Some("shanghai"));
    assert_eq!(attribute(&submit, "records").as_deref(), Some("YRD-OTLP-01"));
    let call = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.span_id == submit.parent_span_id)
        .expect("the submit span's parent was exported");
    assert_eq!(call.name, "call");
    assert_eq!(hex(&call.trace_id), TRACE_ID);
    assert_eq!(hex(&call.parent_span_id), PARENT_ID, "the caller's span is the call's parent");
    assert_eq!(attribute(call, "path").as_deref(), Some("/yrdx.v1.Exchange/Submit"));
    assert_eq!(attribute(call, "trace_id").as_deref(), Some(TRACE_ID));

    // The fresh trace: the id the log names is the id the collector got.
    let fresh = named("submit", "OT-2");
    let fresh_trace = hex(&fresh.trace_id);
    assert_ne!(fresh_trace, TRACE_ID);
    assert_ne!(fresh_trace, "0".repeat(32));
    let fresh_call = spans.iter().map(|(_, s)| s).find(|s| s.span_id == fresh.parent_span_id).expect("its call span");
    assert_eq!(attribute(fresh_call, "trace_id"), Some(fresh_trace), "log field and exported trace id agree");
    assert!(fresh_call.parent_span_id.is_empty(), "a fresh trace starts at the gateway");

    // Ack's span names the delivery ids.
    let ack = named("ack", "");
    assert_eq!(attribute(&ack, "deliveries").as_deref(), Some("D-OTLP-1,D-OTLP-2"));
    assert_eq!(attribute(&ack, "partner").as_deref(), Some("jiangsu"));
    receiver.abort();
}
