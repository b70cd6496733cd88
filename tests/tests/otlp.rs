//! OTLP export end to end: a gateway whose spans go, through `yrdx_gateway::otlp::install` (what
//! `yrdx serve` calls for `[tracing] otlp_endpoint`), to an in-test OTLP/gRPC receiver — a tonic
//! server of the collector's own `opentelemetry.proto.collector.trace.v1.TraceService`. The
//! caller's W3C trace is continued; spans carry the partner, message id, record ids and
//! delivery ids; shutting the telemetry down sends what was still batched.
//!
//! One test: the export is the process's one global subscriber, on this test's runtime.

use tonic::Request;
use yrdx_adapters::{Partner, Record};
use yrdx_gateway::config::{LogFormat, TracingConfig};
use yrdx_proto::v1::{AckRequest, SubmitRequest};
use yrdx_tests::otlp_receiver::{attribute, hex, OtlpReceiver, Span};
use yrdx_tests::{document, vector_record, TestGateway};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID: &str = "b7ad6b7169203331";

fn plan(id: &str) -> Record {
    let mut r = vector_record(Partner::Canonical, "canonical/valid/plan.json");
    if let Record::Plan(p) = &mut r {
        p.plan_id = id.into();
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_receiver_in_the_callers_trace_with_the_exchange_attributes() {
    let receiver = OtlpReceiver::start().await;
    let telemetry =
        yrdx_gateway::otlp::install(LogFormat::Json, &TracingConfig { otlp_endpoint: Some(receiver.endpoint.clone()) })
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

    let received = receiver.spans();
    assert!(received.iter().all(|r| r.service == "yrdx-gateway"), "service.name");
    let spans: Vec<Span> = received.into_iter().map(|r| r.span).collect();
    let named = |name: &str, message_id: &str| {
        spans
            .iter()
            .find(|s| {
                s.name == name && (message_id.is_empty() || attribute(s, "message_id").as_deref() == Some(message_id))
            })
            .unwrap_or_else(|| {
                let names: Vec<_> = spans.iter().map(|s| (&s.name, attribute(s, "message_id"))).collect();
                panic!("no {name} span of {message_id:?} among {names:?}")
            })
            .clone()
    };
    let parent_of = |span: &Span| spans.iter().find(|s| s.span_id == span.parent_span_id).cloned();

    // The continued trace: the submit span in the caller's trace, under the call span, whose
    // parent is the caller's span.
    let submit = named("submit", "OT-1");
    assert_eq!(hex(&submit.trace_id), TRACE_ID);
    assert_eq!(attribute(&submit, "partner").as_deref(), Some("shanghai"));
    assert_eq!(attribute(&submit, "records").as_deref(), Some("YRD-OTLP-01"));
    let call = parent_of(&submit).expect("the submit span's parent was exported");
    assert_eq!(call.name, "call");
    assert_eq!(hex(&call.trace_id), TRACE_ID);
    assert_eq!(hex(&call.parent_span_id), PARENT_ID, "the caller's span is the call's parent");
    assert_eq!(attribute(&call, "path").as_deref(), Some("/yrdx.v1.Exchange/Submit"));
    assert_eq!(attribute(&call, "trace_id").as_deref(), Some(TRACE_ID));

    // The fresh trace: the id the log names is the id the collector got.
    let fresh = named("submit", "OT-2");
    let fresh_trace = hex(&fresh.trace_id);
    assert_ne!(fresh_trace, TRACE_ID);
    assert_ne!(fresh_trace, "0".repeat(32));
    let fresh_call = parent_of(&fresh).expect("its call span");
    assert_eq!(attribute(&fresh_call, "trace_id"), Some(fresh_trace), "log field and exported trace id agree");
    assert!(fresh_call.parent_span_id.is_empty(), "a fresh trace starts at the gateway");

    // Ack's span names the delivery ids.
    let ack = named("ack", "");
    assert_eq!(attribute(&ack, "deliveries").as_deref(), Some("D-OTLP-1,D-OTLP-2"));
    assert_eq!(attribute(&ack, "partner").as_deref(), Some("jiangsu"));
}
