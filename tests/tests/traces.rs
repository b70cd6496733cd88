//! Traces and logs end to end: a caller's W3C `traceparent` is continued into the gateway's
//! spans, and each submission ends in one structured (JSON) outcome line naming the partner, the
//! message, its records and the trace; each SAMR receipt ends in one line too.
//!
//! This binary installs one global JSON subscriber writing into a buffer, so every test here
//! reads the log lines the real gateway wrote.

use std::time::Duration;
use tonic::Request;
use yrdx_adapters::{Partner, Record};
use yrdx_conformance::samr_simulator::IntakeOptions;
use yrdx_proto::v1::{AckRequest, SubmitRequest};
use yrdx_tests::log::JsonLog;
use yrdx_tests::records::{example_plan, example_result, example_sampling};
use yrdx_tests::samr::TestSamr;
use yrdx_tests::{document, vector_record, wait_for, TestGateway};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// The log so far, one JSON value per line (installed on first use).
fn log_lines() -> Vec<serde_json::Value> {
    JsonLog::global().lines()
}

fn plan(id: &str) -> Record {
    let mut r = vector_record(Partner::Canonical, "canonical/valid/plan.json");
    if let Record::Plan(p) = &mut r {
        p.plan_id = id.into();
    }
    r
}

/// The outcome lines of one message.
fn outcome_lines(message_id: &str) -> Vec<serde_json::Value> {
    log_lines()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "submission" && l["fields"]["message_id"] == message_id)
        .collect()
}

fn traced<T>(message: T, traceparent: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("traceparent", traceparent.parse().expect("ascii"));
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_continues_the_callers_trace_and_logs_one_outcome_line() {
    log_lines();
    let g = TestGateway::start().await;
    let mut client = g.client("shanghai").await;
    let bytes = document(Partner::Canonical, "310000", "TR-1", &[plan("YRD-TRACE-01")]);
    let reply = client
        .submit(traced(SubmitRequest { document: bytes }, &format!("00-{TRACE_ID}-{PARENT_ID}-01")))
        .await
        .expect("accepted")
        .into_inner();
    assert!(!reply.duplicate);

    let lines = outcome_lines("TR-1");
    assert_eq!(lines.len(), 1, "one outcome line: {lines:#?}");
    let line = &lines[0];
    let fields = &line["fields"];
    assert_eq!(fields["partner"], "shanghai");
    assert_eq!(fields["outcome"], "accepted");
    assert_eq!(fields["records"], "YRD-TRACE-01");
    assert_eq!(fields["code"], "OK");
    assert_eq!(fields["trace_id"], TRACE_ID);
    assert!(fields["duration_ms"].is_u64(), "{line}");
    // The spans of the line: the call's (continued trace, caller's span as parent) and the
    // submission's (partner, message id, record ids).
    let spans = line["spans"].as_array().expect("spans");
    let call = spans.iter().find(|s| s["name"] == "call").expect("call span");
    assert_eq!(call["trace_id"], TRACE_ID);
    assert_eq!(call["parent_id"], PARENT_ID);
    assert_eq!(call["path"], "/yrdx.v1.Exchange/Submit");
    let submit = spans.iter().find(|s| s["name"] == "submit").expect("submit span");
    assert_eq!(submit["partner"], "shanghai");
    assert_eq!(submit["message_id"], "TR-1");
    assert_eq!(submit["records"], "YRD-TRACE-01");
    g.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_gets_its_outcome_line_and_an_invalid_traceparent_a_fresh_trace() {
    log_lines();
    let g = TestGateway::start().await;
    let mut client = g.client("shanghai").await;
    let err = client
        .submit(traced(SubmitRequest { document: b"not a document".to_vec() }, "00-zz-00f067aa0ba902b7-01"))
        .await
        .expect_err("refused");
    let refusals: Vec<_> = log_lines()
        .into_iter()
        .filter(|l| l["fields"]["message"] == "submission" && l["fields"]["outcome"] == "invalid")
        .collect();
    assert!(!refusals.is_empty(), "a refusal line for {err}");
    let fields = &refusals[refusals.len() - 1]["fields"];
    assert_eq!(fields["partner"], "shanghai");
    assert_eq!(fields["code"], "InvalidArgument");
    let trace = fields["trace_id"].as_str().expect("a trace id");
    assert_eq!(trace.len(), 32, "a fresh trace id: {trace}");
    assert_ne!(trace, TRACE_ID);

    // Ack carries the delivery ids it was given.
    let mut client = g.client("jiangsu").await;
    client.ack(AckRequest { delivery_ids: vec!["D-TRACE-1".into(), "D-TRACE-2".into()] }).await.expect("ack");
    let acked = log_lines()
        .into_iter()
        .find(|l| {
            l["fields"]["message"] == "acknowledged"
                && l["spans"].as_array().is_some_and(|s| s.iter().any(|s| s["deliveries"] == "D-TRACE-1,D-TRACE-2"))
        })
        .is_some();
    assert!(acked, "an ack line inside a span with the delivery ids");
    g.stop().await;
}

/// Waits up to 10 s for `done`.
async fn until(mut done: impl FnMut() -> bool) {
    wait_for("the log line", Duration::from_secs(10), || done().then_some(())).await;
}

/// The `SAMR receipt` lines so far.
fn receipt_lines() -> Vec<serde_json::Value> {
    log_lines().into_iter().filter(|l| l["fields"]["message"] == "SAMR receipt").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_samr_receipt_gets_one_line_with_number_state_attempt_and_reason() {
    log_lines();
    let options = IntakeOptions { busy_first: 1, ..Default::default() };
    let samr = TestSamr::start("traces-samr", options).await;
    let intake = &samr.intake;
    let samr_section = samr.section("max_attempts = 4\nretry_base_secs = 1\n");
    let g = TestGateway::start_with(|t| t + &samr_section).await;
    let plan = example_plan();
    let sampling = example_sampling("JS-OK-0001");
    let result = example_result("JS-OK-0001", "JSR-0001");
    for (who, format, region, id, record) in [
        ("shanghai", Partner::Canonical, "310000", "SR-PLAN-1", plan),
        ("jiangsu", Partner::Jiangsu, "320000", "SR-S-1", sampling),
        ("jiangsu", Partner::Jiangsu, "320000", "SR-R-1", result),
    ] {
        g.client(who)
            .await
            .submit(SubmitRequest { document: document(format, region, id, &[record]) })
            .await
            .expect(id);
    }
    // SAMR is busy the first time (one `pending` line), then accepts (one `accepted` line).
    until(|| receipt_lines().iter().any(|l| l["fields"]["state"] == "pending")).await;
    // Retry-After: 1 — the gateway waits by its own clock, moved once past it.
    g.set_time("2024-03-15T10:00:05+08:00");
    until(|| receipt_lines().iter().any(|l| l["fields"]["state"] == "accepted")).await;
    let lines = receipt_lines();
    let fields: Vec<_> = lines.iter().map(|l| &l["fields"]).collect();
    assert_eq!(fields.len(), 2, "{lines:#?}");
    assert_eq!(fields[0]["number"], "SJB-310000-20240315-0001");
    assert_eq!(fields[0]["state"], "pending");
    assert_eq!(fields[0]["attempt"], 1);
    assert_eq!(fields[0]["reason"], "SAMR busy (503)");
    assert_eq!(fields[1]["number"], "SJB-310000-20240315-0001");
    assert_eq!(fields[1]["state"], "accepted");
    assert_eq!(fields[1]["attempt"], 2);
    assert_eq!(fields[1]["reason"], "");
    intake.stop();
    g.stop().await;
}
