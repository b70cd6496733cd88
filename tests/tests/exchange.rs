//! End to end over real mutual TLS: every partner submits and receives in its own format; wrong,
//! missing and expired certificates and forged senders are refused; submissions are idempotent;
//! unacknowledged deliveries come back; a restart loses nothing; the rate limit answers.

use std::time::Duration;
use tokio_stream_shim::next_delivery;
use tonic::Code;
use tonic_types::StatusExt;
use yrdx_adapters::{Partner, Record};
use yrdx_pki::{partner_identity, CertificateAuthority};
use yrdx_proto::v1::{AckRequest, PlanChannel, ReceiveRequest, SubmitRequest};
use yrdx_tests::records::example_plan as plan;
use yrdx_tests::{document, vector_record, TestGateway};

/// Reads one delivery from a Receive stream, with a deadline.
mod tokio_stream_shim {
    use std::time::Duration;
    use tonic::Streaming;
    use yrdx_proto::v1::Delivery;

    pub async fn next_delivery(stream: &mut Streaming<Delivery>, wait: Duration) -> Option<Delivery> {
        match tokio::time::timeout(wait, stream.message()).await {
            Ok(Ok(d)) => d,
            Ok(Err(status)) => panic!("stream failed: {status}"),
            Err(_) => None,
        }
    }
}

const WAIT: Duration = Duration::from_secs(5);

async fn submit(g: &TestGateway, who: &str, bytes: Vec<u8>) -> Result<yrdx_proto::v1::SubmitReply, tonic::Status> {
    g.client(who).await.submit(SubmitRequest { document: bytes }).await.map(|r| r.into_inner())
}

/// Receives everything pending for `who` (acknowledging it), decoded in `format`.
async fn drain(g: &TestGateway, who: &str, format: Partner) -> Vec<Record> {
    let mut client = g.client(who).await;
    let mut stream = client.receive(ReceiveRequest { max_unacked: 10 }).await.expect("receive").into_inner();
    let mut out = Vec::new();
    while let Some(d) = next_delivery(&mut stream, Duration::from_millis(700)).await {
        let doc = format
            .decode(&d.document, &Default::default())
            .unwrap_or_else(|e| panic!("{who} got a document it cannot read: {e}"));
        out.extend(doc.records);
        client.ack(AckRequest { delivery_ids: vec![d.delivery_id] }).await.expect("ack");
    }
    out
}

#[tokio::test]
async fn every_partner_submits_and_receives_in_its_own_format() {
    let g = TestGateway::start().await;
    // Shanghai publishes the plan (canonical format).
    let reply = submit(&g, "shanghai", document(Partner::Canonical, "310000", "SH-PLAN-1", &[plan()]))
        .await
        .expect("plan accepted");
    assert_eq!(reply.records.len(), 1);
    assert_eq!(reply.records[0].kind, "plan");
    // Jiangsu, Zhejiang and Beijing get the plan, each in its own format.
    for (who, format) in [("jiangsu", Partner::Jiangsu), ("zhejiang", Partner::Zhejiang), ("beijing", Partner::Beijing)]
    {
        let got = drain(&g, who, format).await;
        assert!(matches!(got.as_slice(), [Record::Plan(p)] if p.plan_id == "YRD-2024-WS-01"), "{who}: {got:?}");
    }
    // Jiangsu submits a sampling record in Jiangsu format; it goes to the lead region, Shanghai.
    let sampling = vector_record(Partner::Jiangsu, "jiangsu/valid/example-sampling.json");
    let reply =
        submit(&g, "jiangsu", document(Partner::Jiangsu, "320000", "JS-CYD-1", std::slice::from_ref(&sampling)))
            .await
            .expect("sampling accepted");
    assert_eq!(reply.records[0].id, "JS2024WS0102-0007");
    let at_shanghai = drain(&g, "shanghai", Partner::Canonical).await;
    assert_eq!(at_shanghai, vec![sampling]);
    // Zhejiang submits the inspection result in Zhejiang format: to the lead (Shanghai) and the
    // sampling region (Jiangsu), each in its own format.
    let inspection = vector_record(Partner::Zhejiang, "zhejiang/valid/example-inspection.xml");
    submit(&g, "zhejiang", document(Partner::Zhejiang, "330000", "ZJ-JY-1", std::slice::from_ref(&inspection)))
        .await
        .expect("inspection accepted");
    assert_eq!(drain(&g, "shanghai", Partner::Canonical).await, vec![inspection.clone()]);
    // Jiangsu gets the result, and — the result being nonconforming and the producer in Jiangsu —
    // the disposal case that stays local there.
    let at_jiangsu = drain(&g, "jiangsu", Partner::Jiangsu).await;
    assert_eq!(at_jiangsu.len(), 2, "{at_jiangsu:?}");
    assert_eq!(at_jiangsu[0], inspection);
    assert!(
        matches!(&at_jiangsu[1], Record::CaseTransfer(c) if c.responsible_region == "320000" && c.origin_region == "320000")
    );
    // Nothing of this reached Beijing's or Zhejiang's mailbox.
    assert!(drain(&g, "beijing", Partner::Beijing).await.is_empty());
    assert!(drain(&g, "zhejiang", Partner::Zhejiang).await.is_empty());
    g.stop().await;
}

#[tokio::test]
async fn risk_signals_reach_the_risk_partners_but_never_beijing() {
    let g = TestGateway::start().await;
    submit(&g, "shanghai", document(Partner::Canonical, "310000", "SH-PLAN-2", &[plan()])).await.unwrap();
    let mut risk = vector_record(Partner::Canonical, "canonical/valid/risk-signal.json");
    if let Record::RiskSignal(r) = &mut risk {
        r.reporting_region = "310000".into();
    }
    let reply = submit(&g, "shanghai", document(Partner::Canonical, "310000", "SH-FX-1", &[risk])).await.unwrap();
    assert!(reply.warnings.is_empty(), "{:?}", reply.warnings);
    // Risk signals go to Jiangsu and Zhejiang, never to Beijing.
    assert_eq!(drain(&g, "jiangsu", Partner::Jiangsu).await.len(), 2, "plan and risk signal");
    assert_eq!(drain(&g, "beijing", Partner::Beijing).await.len(), 1, "the plan only");
    g.stop().await;
}

#[tokio::test]
async fn forged_senders_and_invalid_documents_are_refused_with_every_problem() {
    let g = TestGateway::start().await;
    // Jiangsu's certificate, Zhejiang's region in the envelope.
    let forged = document(Partner::Jiangsu, "330000", "FORGED-1", &[plan()]);
    let err = submit(&g, "jiangsu", forged).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    // The format follows from the certificate: a Zhejiang document from Jiangsu's certificate is invalid.
    let zj = document(Partner::Zhejiang, "320000", "WRONG-FORMAT-1", &[plan()]);
    assert_eq!(submit(&g, "jiangsu", zj).await.unwrap_err().code(), Code::InvalidArgument);
    // An invalid document: INVALID_ARGUMENT with a BadRequest naming every path.
    let bad = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../conformance/vectors/jiangsu/invalid/second-record-problems.json"
    ))
    .unwrap();
    let bad = String::from_utf8(bad).unwrap().replace("\"FSF\": \"310000\"", "\"FSF\": \"320000\"");
    let err = submit(&g, "jiangsu", bad.into_bytes()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let details = err.get_error_details();
    let fields: Vec<String> =
        details.bad_request().expect("BadRequest detail").field_violations.iter().map(|v| v.field.clone()).collect();
    assert!(
        fields.contains(&"DATA[1].BCYDWXYDM".to_string()) && fields.contains(&"DATA[1].CYSL".to_string()),
        "{fields:?}"
    );
    // A sampling record whose plan is unknown cannot be routed.
    let sampling = vector_record(Partner::Jiangsu, "jiangsu/valid/example-sampling.json");
    let err = submit(&g, "jiangsu", document(Partner::Jiangsu, "320000", "JS-CYD-9", &[sampling])).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    assert!(err.message().contains("YRD-2024-WS-01"), "{err}");
    // Operators do not exchange documents.
    let err = submit(&g, "ops", document(Partner::Canonical, "310000", "OPS-1", &[plan()])).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    g.stop().await;
}

#[tokio::test]
async fn wrong_missing_and_expired_certificates_never_get_in() {
    let g = TestGateway::start().await;
    let ca = g.ca_pem();
    let call = |client: Result<
        yrdx_proto::v1::exchange_client::ExchangeClient<tonic::transport::Channel>,
        tonic::transport::Error,
    >| async move {
        match client {
            Err(_) => Err(()),
            Ok(mut c) => c.submit(SubmitRequest { document: b"{}".to_vec() }).await.map(|_| ()).map_err(|_| ()),
        }
    };
    // No client certificate: the handshake fails.
    assert!(call(g.client_with(None, &ca).await).await.is_err());
    // A certificate from another CA, with a registered identity.
    let rogue =
        CertificateAuthority::new("rogue CA").unwrap().issue_client(&partner_identity("jiangsu"), false).unwrap();
    let client = g.client_with(Some((rogue.cert_pem, rogue.key_pem)), &ca).await;
    assert!(call(client).await.is_err(), "an unknown CA must not get in");
    // An expired certificate from the gateway's own CA.
    let expired = g.ca.issue_client(&partner_identity("jiangsu"), true).unwrap();
    let client = g.client_with(Some((expired.cert_pem, expired.key_pem)), &ca).await;
    assert!(call(client).await.is_err(), "an expired certificate must not get in");
    // A valid certificate from the right CA whose identity is not in the registry.
    let stranger = g.ca.issue_client(&partner_identity("anhui"), false).unwrap();
    let mut client = g.client_with(Some((stranger.cert_pem, stranger.key_pem)), &ca).await.expect("TLS is fine");
    let err = client.submit(SubmitRequest { document: b"{}".to_vec() }).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    // The same partner certificate from the right CA works.
    let mut ok = g.client("jiangsu").await;
    let err = ok.submit(SubmitRequest { document: b"{}".to_vec() }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "in, and the document is judged: {err}");
    g.stop().await;
}

#[tokio::test]
async fn duplicates_are_idempotent_and_conflicts_refused() {
    let g = TestGateway::start().await;
    let doc = document(Partner::Canonical, "310000", "SH-PLAN-DUP", &[plan()]);
    let first = submit(&g, "shanghai", doc.clone()).await.unwrap();
    let second = submit(&g, "shanghai", doc).await.unwrap();
    assert!(!first.duplicate && second.duplicate);
    assert_eq!(first.records, second.records);
    assert_eq!(drain(&g, "jiangsu", Partner::Jiangsu).await.len(), 1, "the duplicate caused nothing new");
    let mut other = plan();
    if let Record::Plan(p) = &mut other {
        p.title = "另一个标题".into();
    }
    let err =
        submit(&g, "shanghai", document(Partner::Canonical, "310000", "SH-PLAN-DUP", &[other])).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    g.stop().await;
}

#[tokio::test]
async fn unacknowledged_deliveries_come_back_and_a_restart_loses_nothing() {
    let mut g = TestGateway::start().await;
    submit(&g, "shanghai", document(Partner::Canonical, "310000", "SH-PLAN-R", &[plan()])).await.unwrap();
    // Take the delivery and drop the stream without acknowledging.
    {
        let mut client = g.client("jiangsu").await;
        let mut stream = client.receive(ReceiveRequest { max_unacked: 1 }).await.unwrap().into_inner();
        let d = next_delivery(&mut stream, WAIT).await.expect("delivered");
        assert_eq!(d.attempt, 1);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The gateway restarts on the same store: the delivery is still there, with attempt 2.
    g.restart().await;
    let mut client = g.client("jiangsu").await;
    let mut stream = client.receive(ReceiveRequest { max_unacked: 1 }).await.unwrap().into_inner();
    let d = next_delivery(&mut stream, WAIT).await.expect("delivered again");
    assert_eq!(d.attempt, 2);
    assert_eq!(d.message_id, "SH-PLAN-R");
    let acked = client.ack(AckRequest { delivery_ids: vec![d.delivery_id.clone()] }).await.unwrap().into_inner();
    assert_eq!(acked.acknowledged, 1);
    drop(stream);
    // Acknowledged before the restart: never sent again. Other mailboxes keep theirs.
    g.restart().await;
    assert!(drain(&g, "jiangsu", Partner::Jiangsu).await.is_empty());
    assert_eq!(drain(&g, "zhejiang", Partner::Zhejiang).await.len(), 1);
    // Duplicate detection survives the restart too.
    let again = submit(&g, "shanghai", document(Partner::Canonical, "310000", "SH-PLAN-R", &[plan()])).await.unwrap();
    assert!(again.duplicate);
    g.stop().await;
}

#[tokio::test]
async fn a_partner_flood_meets_the_rate_limit() {
    let g = TestGateway::start_with(|t| {
        t.replacen("rate_per_second = 50\nburst = 100", "rate_per_second = 1\nburst = 2", 2)
    })
    .await;
    let mut codes = Vec::new();
    for n in 0..4 {
        let r = submit(&g, "shanghai", document(Partner::Canonical, "310000", &format!("SH-RL-{n}"), &[plan()])).await;
        codes.push(r.map(|_| Code::Ok).unwrap_or_else(|s| {
            if s.code() == Code::ResourceExhausted {
                assert!(s.metadata().get("retry-after").is_some(), "a retry-after hint");
            }
            s.code()
        }));
    }
    assert_eq!(codes[..2], [Code::Ok, Code::Ok]);
    assert!(codes[2..].contains(&Code::ResourceExhausted), "{codes:?}");
    // Another partner is not slowed by Shanghai's flood (its own limit, its own bucket).
    let r = submit(
        &g,
        "jiangsu",
        document(
            Partner::Jiangsu,
            "320000",
            "JS-FX-1",
            &[vector_record(Partner::Jiangsu, "jiangsu/valid/risk-signal.json")],
        ),
    )
    .await;
    assert!(r.is_ok(), "{r:?}");
    g.stop().await;
}

#[tokio::test]
async fn oversized_documents_are_refused_before_decoding() {
    let g = TestGateway::start_with(|t| t.replace("max_document_bytes = 4194304", "max_document_bytes = 600")).await;
    let big = document(Partner::Canonical, "310000", "SH-BIG-1", &[plan()]);
    assert!(big.len() > 600);
    let err = submit(&g, "shanghai", big).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    // Garbage of the same size is refused the same way: the size is checked before decoding.
    let err = submit(&g, "shanghai", vec![b'x'; 700]).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err}");
    g.stop().await;
}

#[tokio::test]
async fn a_record_a_recipient_cannot_take_is_not_queued_and_the_reply_says_so() {
    let g = TestGateway::start().await;
    let mut offline = plan();
    if let Record::Plan(p) = &mut offline {
        p.plan_id = "YRD-2024-XX-02".into();
        p.channel = PlanChannel::Offline as i32;
    }
    let reply = submit(&g, "shanghai", document(Partner::Canonical, "310000", "SH-OFF-1", &[offline])).await.unwrap();
    assert!(
        reply.warnings.iter().any(|w| w.contains("beijing") && w.contains("110000") && w.contains("ONLINE or BOTH")),
        "{:?}",
        reply.warnings
    );
    assert!(drain(&g, "beijing", Partner::Beijing).await.is_empty(), "nothing queued for Beijing");
    assert_eq!(drain(&g, "jiangsu", Partner::Jiangsu).await.len(), 1, "the other participants get it");
    g.stop().await;
}

#[tokio::test]
async fn operators_see_mailbox_depth_and_last_contact() {
    let g = TestGateway::start().await;
    submit(&g, "shanghai", document(Partner::Canonical, "310000", "SH-PLAN-OPS", &[plan()])).await.unwrap();
    let reply = g.admin("ops").await.mailboxes(yrdx_proto::v1::MailboxesRequest {}).await.unwrap().into_inner();
    let by_name = |n: &str| reply.mailboxes.iter().find(|m| m.partner == n).cloned().unwrap();
    assert_eq!(by_name("jiangsu").depth, 1);
    assert_eq!(by_name("beijing").depth, 1);
    assert_eq!(by_name("shanghai").depth, 0);
    assert!(by_name("shanghai").last_contact.is_some(), "Shanghai just called");
    assert!(by_name("zhejiang").last_contact.is_none(), "Zhejiang never called");
    let err = g.admin("jiangsu").await.mailboxes(yrdx_proto::v1::MailboxesRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    g.stop().await;
}
