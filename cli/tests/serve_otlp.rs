//! `yrdx serve` with `[tracing] otlp_endpoint` (a `yrdx` built with the `otlp` feature, as this
//! package's tests are, through `yrdx-tests`): the spans of a call reach an OTLP/gRPC receiver,
//! in the caller's trace, and those still batched at SIGTERM are sent before the process exits.

mod common;

use common::{pki_init_on_free_port, serve, sigterm_and_wait, wait_listening};
use yrdx_adapters::{Partner, Record};
use yrdx_proto::v1::SubmitRequest;
use yrdx_tests::otlp_receiver::{attribute, hex, OtlpReceiver};

const TRACE_ID: &str = "5c2f0e8b6a1d4e3f9b7a8c6d5e4f3a2b";

#[cfg(unix)]
#[tokio::test]
async fn serve_sends_spans_to_the_collector_and_flushes_them_at_sigterm() {
    let receiver = OtlpReceiver::start().await;
    let (dir, port, config) = pki_init_on_free_port("serve-otlp");
    let text = std::fs::read_to_string(&config).expect("config");
    // Metrics on a free port (another gateway may hold 9464).
    let text = text.replace("listen = \"127.0.0.1:9464\"", "listen = \"127.0.0.1:0\"");
    std::fs::write(&config, format!("{text}\n[tracing]\notlp_endpoint = \"{}\"\n", receiver.endpoint)).expect("config");
    let mut server = serve(&config);
    wait_listening(port, "the gateway").await;

    let pki = dir.join("pki");
    let read = |f: &str| std::fs::read_to_string(pki.join(f)).expect("pki file");
    let mut client = yrdx_pki::client::connect(
        &format!("https://127.0.0.1:{port}"),
        &read("ca.pem"),
        Some((read("shanghai.pem"), read("shanghai.key"))),
    )
    .await
    .expect("connects");
    let mut plan = yrdx_tests::vector_record(Partner::Canonical, "canonical/valid/plan.json");
    if let Record::Plan(p) = &mut plan {
        p.plan_id = "YRD-SERVE-OTLP".into();
    }
    let mut request = tonic::Request::new(SubmitRequest {
        document: yrdx_tests::document(Partner::Canonical, "310000", "SO-1", &[plan]),
    });
    request.metadata_mut().insert("traceparent", format!("00-{TRACE_ID}-1a2b3c4d5e6f7a8b-01").parse().expect("ascii"));
    client.submit(request).await.expect("accepted");
    drop(client);

    // Well within the batch processor's 5 s: nothing need have been sent yet.
    let (status, _, stderr) = sigterm_and_wait(&mut server).await;
    assert!(status.success(), "exit {status:?}: {stderr}");
    assert!(stderr.contains("spans are sent to the OTLP collector"), "{stderr}");

    let spans = receiver.spans();
    let submit = spans
        .iter()
        .find(|r| r.span.name == "submit" && attribute(&r.span, "message_id").as_deref() == Some("SO-1"))
        .unwrap_or_else(|| panic!("the submit span reached the collector by exit: {spans:#?}\n{stderr}"));
    assert_eq!(submit.service, "yrdx-gateway");
    assert_eq!(hex(&submit.span.trace_id), TRACE_ID);
    assert_eq!(attribute(&submit.span, "partner").as_deref(), Some("shanghai"));
    assert_eq!(attribute(&submit.span, "records").as_deref(), Some("YRD-SERVE-OTLP"));
    let _ = std::fs::remove_dir_all(&dir);
}
