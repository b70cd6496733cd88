//! Traces and logs end to end: a caller's W3C `traceparent` is continued into the gateway's
//! spans, and each submission ends in one structured (JSON) outcome line naming the partner, the
//! message, its records and the trace; each SAMR receipt ends in one line too.
//!
//! This binary installs one global JSON subscriber writing into a buffer, so every test here
//! reads the log lines the real gateway wrote.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tonic::Request;
use yrdx_adapters::{Partner, Record};
use yrdx_conformance::samr_simulator::{IntakeOptions, SamrIntake};
use yrdx_pki::CertificateAuthority;
use yrdx_proto::v1::{AckRequest, PlanChannel, ProductCategory, SubmitRequest};
use yrdx_tests::{document, temp_dir, vector_record, TestGateway};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log so far, one JSON value per line (installed on first use).
fn log_lines() -> Vec<serde_json::Value> {
    static LOG: OnceLock<Buffer> = OnceLock::new();
    let buffer = LOG.get_or_init(|| {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the one subscriber of this binary");
        buffer
    });
    let bytes = buffer.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
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
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `SAMR receipt` lines so far.
fn receipt_lines() -> Vec<serde_json::Value> {
    log_lines().into_iter().filter(|l| l["fields"]["message"] == "SAMR receipt").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_samr_receipt_gets_one_line_with_number_state_attempt_and_reason() {
    log_lines();
    let samr_ca = CertificateAuthority::new("SAMR test CA").expect("ca");
    let server = samr_ca.issue_server().expect("server cert");
    let client = samr_ca.issue_client("urn:yrdx:gateway:310000", false).expect("client cert");
    let dir = temp_dir("traces-samr");
    for (name, text) in
        [("ca.pem", &samr_ca.cert_pem), ("client.pem", &client.cert_pem), ("client.key", &client.key_pem)]
    {
        std::fs::write(dir.join(name), text).expect("write");
    }
    let options = IntakeOptions { busy_first: 1, ..Default::default() };
    let intake =
        SamrIntake::start(&server.cert_pem, &server.key_pem, &samr_ca.cert_pem, options).await.expect("intake");
    let samr_section = format!(
        "\n[samr]\nintake_url = \"{}\"\nserver_name = \"localhost\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nbatch_max_age_secs = 0\nmax_attempts = 4\nretry_base_secs = 1\n",
        intake.url(),
        dir.join("ca.pem").display(),
        dir.join("client.pem").display(),
        dir.join("client.key").display()
    );
    let g = TestGateway::start_with(|t| t + &samr_section).await;
    let mut plan = plan("YRD-2024-WS-01");
    if let Record::Plan(p) = &mut plan {
        p.channel = PlanChannel::Online as i32;
        p.categories = vec![ProductCategory::EBikeLithiumBattery as i32];
    }
    let mut sampling = vector_record(Partner::Jiangsu, "jiangsu/valid/example-sampling.json");
    if let Record::Sampling(s) = &mut sampling {
        s.sample_id = "JS-OK-0001".into();
    }
    let mut result = vector_record(Partner::Jiangsu, "jiangsu/valid/example-inspection.json");
    if let Record::Inspection(i) = &mut result {
        i.sample_id = "JS-OK-0001".into();
        i.report_no = "JSR-0001".into();
    }
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
