//! Receipts and the audit chain end to end: Submit's reply carries an SM2-signed receipt that
//! verifies with the gateway's certificate (the same for a duplicate and for GetReceipt, none for
//! another partner's message); `yrdx audit verify` passes on the gateway's store and names each
//! tampering — an altered stored document, a deleted entry, two entries reordered.

use std::process::Command;
use yrdx_adapters::{Partner, Record};
use yrdx_proto::v1::{GetReceiptRequest, PlanChannel, SubmitRequest};
use yrdx_tests::{document, vector_record, TestGateway};

fn plan(id: &str) -> Record {
    let mut r = vector_record(Partner::Canonical, "canonical/valid/plan.json");
    if let Record::Plan(p) = &mut r {
        p.plan_id = id.into();
        p.channel = PlanChannel::Online as i32;
    }
    r
}

fn verify(config: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_yrdx"))
        .args(["audit", "verify", "--config"])
        .arg(config)
        .output()
        .expect("yrdx runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_verify_and_audit_verify_names_each_tampering() {
    let mut g = TestGateway::start().await;
    let cert = std::fs::read_to_string(g.dir.join(yrdx_pki::SIGNING_CERT_FILE)).expect("signing cert");
    let key = yrdx_evidence::GatewayPublicKey::from_pem(&cert).expect("certificate");
    let mut shanghai = g.client("shanghai").await;
    let mut docs = Vec::new();
    for i in 0..4 {
        let bytes =
            document(Partner::Canonical, "310000", &format!("SH-AUDIT-{i}"), &[plan(&format!("YRD-2024-AU-{i}"))]);
        let reply = shanghai.submit(SubmitRequest { document: bytes.clone() }).await.expect("accepted").into_inner();
        let receipt = reply.receipt.clone().expect("a receipt");
        let r = yrdx_evidence::Receipt::from_proto(&receipt).expect("readable receipt");
        yrdx_evidence::verify_receipt(&key, &r, Some(&bytes)).expect("the receipt verifies with the document");
        assert_eq!(r.fields.sender, "310000");
        assert_eq!(r.fields.message_id, format!("SH-AUDIT-{i}"));
        // Another document does not match the receipt.
        assert!(yrdx_evidence::verify_receipt(&key, &r, Some(b"other bytes")).is_err());
        // The duplicate and GetReceipt give the same receipt.
        let again = shanghai.submit(SubmitRequest { document: bytes.clone() }).await.expect("duplicate").into_inner();
        assert!(again.duplicate);
        assert_eq!(again.receipt.as_ref(), Some(&receipt));
        let fetched = shanghai
            .get_receipt(GetReceiptRequest { message_id: format!("SH-AUDIT-{i}") })
            .await
            .expect("GetReceipt")
            .into_inner();
        assert_eq!(fetched.receipt.as_ref(), Some(&receipt));
        docs.push(bytes);
    }
    // Another partner's message is not found for Jiangsu.
    let err = g
        .client("jiangsu")
        .await
        .get_receipt(GetReceiptRequest { message_id: "SH-AUDIT-0".into() })
        .await
        .expect_err("not Jiangsu's");
    assert_eq!(err.code(), tonic::Code::NotFound, "{err}");
    // Let the head signer sign a head, then stop writing.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    if let Some(r) = g.running.take() {
        r.stop().await.expect("clean stop");
    }
    let config = g.pki.config.clone();
    let (code, text) = verify(&config);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("audit chain verified"), "{text}");

    let db = rusqlite::Connection::open(g.dir.join("yrdx.sqlite")).expect("store file");
    // 1. A stored document altered.
    db.execute("UPDATE messages SET document = X'00' WHERE message_id = 'SH-AUDIT-2'", []).expect("tamper");
    let (code, text) = verify(&config);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("document altered"), "{text}");
    db.execute("UPDATE messages SET document = ?1 WHERE message_id = 'SH-AUDIT-2'", [&docs[2]]).expect("restore");
    assert_eq!(verify(&config).0, 0);
    // 2. An entry deleted.
    let kept: String =
        db.query_row("SELECT entry FROM audit_log WHERE position = 1", [], |r| r.get(0)).expect("entry 1");
    db.execute("DELETE FROM audit_log WHERE position = 1", []).expect("delete");
    let (code, text) = verify(&config);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("entry deleted at position 1"), "{text}");
    db.execute("INSERT INTO audit_log (position, at_ms, entry) VALUES (1, 0, ?1)", [&kept]).expect("restore");
    assert_eq!(verify(&config).0, 0);
    // The store and certificate can be named without a configuration.
    let out = Command::new(env!("CARGO_BIN_EXE_yrdx"))
        .args(["audit", "verify", "--store"])
        .arg(g.dir.join("yrdx.sqlite"))
        .arg("--cert")
        .arg(g.dir.join(yrdx_pki::SIGNING_CERT_FILE))
        .output()
        .expect("yrdx runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // 3. Two entries reordered.
    let e1: String = db.query_row("SELECT entry FROM audit_log WHERE position = 1", [], |r| r.get(0)).expect("1");
    let e2: String = db.query_row("SELECT entry FROM audit_log WHERE position = 2", [], |r| r.get(0)).expect("2");
    db.execute("UPDATE audit_log SET entry = ?1 WHERE position = 1", [&e2]).expect("swap");
    db.execute("UPDATE audit_log SET entry = ?1 WHERE position = 2", [&e1]).expect("swap");
    let (code, text) = verify(&config);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("entries reordered at position 1"), "{text}");
    // The export writes the entries with their proofs.
    let out = Command::new(env!("CARGO_BIN_EXE_yrdx"))
        .args(["audit", "export", "--config"])
        .arg(&config)
        .args(["--from", "0", "--to", "3"])
        .output()
        .expect("yrdx runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() >= 4);
    g.stop().await;
}
