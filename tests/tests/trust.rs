//! Revocation and reload without restart (issue 17, first two parts), end to end against a real
//! gateway over real mutual TLS on loopback: CRLs made with rcgen refuse revoked certificates and
//! stale CRLs fail closed; a reload (what SIGHUP and `Admin.Reload` do) rotates the server
//! certificate under an open stream, rolls the client CA over, suspends and adds partners,
//! changes a rate limit, closes a revoked certificate's open Receive stream, and refuses a broken
//! configuration whole.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use yrdx_adapters::{Partner, Record};
use yrdx_pki::{partner_identity, CertificateAuthority};
use yrdx_proto::v1::{MailboxesRequest, PlanChannel, ProductCategory, ReceiveRequest, ReloadRequest, SubmitRequest};
use yrdx_tests::{document, vector_record, TestGateway};

const WAIT: Duration = Duration::from_secs(10);

/// A gateway with metrics on a free port.
async fn gateway() -> TestGateway {
    TestGateway::start_with(|t| format!("{t}\n[metrics]\nlisten = \"127.0.0.1:0\"\n")).await
}

/// `[tls] crls = [files]` in the configuration text.
fn with_crls(text: String, files: &[&str]) -> String {
    let list = files.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(", ");
    text.replace("key = \"pki/server.key\"\n", &format!("key = \"pki/server.key\"\ncrls = [{list}]\n"))
}

fn read(path: std::path::PathBuf) -> String {
    std::fs::read_to_string(path).expect("readable")
}

/// A call as `who` through the service: `Ok` when it got past TLS and identity (an empty
/// document is judged `INVALID_ARGUMENT`), else what stopped it.
async fn call(g: &TestGateway, who: &str) -> Result<(), (Option<Code>, String)> {
    let (cert, key) = g.pki.client_files(who);
    let mut client = match g.client_with(Some((read(cert), read(key))), &g.ca_pem()).await {
        Ok(c) => c,
        Err(e) => return Err((None, format!("connect: {e}"))),
    };
    match client.submit(SubmitRequest { document: b"{}".to_vec() }).await {
        Err(s) if s.code() == Code::InvalidArgument => Ok(()),
        Err(s) => Err((Some(s.code()), s.message().to_string())),
        Ok(_) => Err((None, "an empty document was accepted".into())),
    }
}

/// The exposition of `GET /metrics`.
async fn scrape(g: &TestGateway) -> String {
    let addr = g.running.as_ref().expect("running").metrics_addr.expect("[metrics] configured");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("metrics listener");
    let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\nConnection: close\r\n\r\n";
    tcp.write_all(request.as_bytes()).await.expect("request");
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.expect("response");
    String::from_utf8_lossy(&raw).into_owned()
}

/// How many handshakes were refused for `reason`, as exposed.
async fn refused(g: &TestGateway, reason: &str) -> u64 {
    let wanted = format!("yrdx_tls_handshakes_refused_total{{reason=\"{reason}\"}} ");
    scrape(g)
        .await
        .lines()
        .find_map(|l| l.strip_prefix(&wanted).map(|v| v.trim().parse::<f64>().unwrap_or(0.0) as u64))
        .unwrap_or(0)
}

/// Shanghai's plan, which is delivered to Jiangsu, Zhejiang and Beijing.
fn plan_document(message_id: &str, plan_id: &str) -> Vec<u8> {
    let mut r = vector_record(Partner::Canonical, "canonical/valid/plan.json");
    if let Record::Plan(p) = &mut r {
        p.plan_id = plan_id.into();
        p.channel = PlanChannel::Online as i32;
        p.categories = vec![ProductCategory::EBikeLithiumBattery as i32];
    }
    document(Partner::Canonical, "310000", message_id, &[r])
}

async fn publish_plan(g: &TestGateway, message_id: &str, plan_id: &str) {
    g.client("shanghai")
        .await
        .submit(SubmitRequest { document: plan_document(message_id, plan_id) })
        .await
        .expect("plan accepted");
}

/// Waits for the next delivery on `stream`: `Ok(Some)` a delivery, `Ok(None)` or `Err` the
/// stream ended; panics if nothing happens within [`WAIT`].
async fn next(
    stream: &mut tonic::Streaming<yrdx_proto::v1::Delivery>,
) -> Result<Option<yrdx_proto::v1::Delivery>, tonic::Status> {
    tokio::time::timeout(WAIT, stream.message()).await.expect("the stream answered within the wait")
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_and_counted_and_others_accepted() {
    let mut g = gateway().await;
    let crl = g.ca.crl(&[&read(g.pki.client_files("jiangsu").0)], 24, 1).expect("CRL");
    std::fs::write(g.dir.join("pki/ca.crl"), crl).expect("CRL written");
    g.edit_config(|t| with_crls(t, &["pki/ca.crl"]));
    g.restart().await;
    assert_eq!(refused(&g, "revoked").await, 0);
    let (code, message) = call(&g, "jiangsu").await.expect_err("revoked jiangsu refused");
    assert_ne!(code, Some(Code::PermissionDenied), "refused in the handshake, not by a service: {message}");
    assert!(refused(&g, "revoked").await >= 1, "counted under reason=revoked");
    // Everyone else, and the operator, still get in.
    for who in ["zhejiang", "shanghai", "beijing"] {
        call(&g, who).await.unwrap_or_else(|e| panic!("{who}: {e:?}"));
    }
    g.admin("ops").await.mailboxes(MailboxesRequest {}).await.expect("operator accepted");
    // A DER CRL works as well as PEM: revoking the operator too.
    let ops = read(g.pki.client_files("ops").0);
    let pem = g.ca.crl(&[&read(g.pki.client_files("jiangsu").0), &ops], 24, 2).expect("CRL");
    let der = rustls_pem_der(&pem);
    std::fs::write(g.dir.join("pki/ca.crl.der"), der).expect("CRL written");
    g.edit_config(|t| t.replace("pki/ca.crl\"", "pki/ca.crl.der\""));
    g.reload().await.expect("reload");
    let admin = yrdx_pki::client::channel(&g.url(), &g.ca_pem(), Some((ops, read(g.pki.client_files("ops").1)))).await;
    let refused_ops = match admin {
        Err(_) => true,
        Ok(ch) => yrdx_proto::v1::admin_client::AdminClient::new(ch).mailboxes(MailboxesRequest {}).await.is_err(),
    };
    assert!(refused_ops, "a revoked operator certificate is refused too");
    assert!(refused(&g, "revoked").await >= 2);
    call(&g, "zhejiang").await.expect("zhejiang still accepted");
    g.stop().await;
}

/// The DER inside a PEM block.
fn rustls_pem_der(pem: &str) -> Vec<u8> {
    use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateRevocationListDer};
    CertificateRevocationListDer::from_pem_slice(pem.as_bytes()).expect("PEM CRL").as_ref().to_vec()
}

#[tokio::test]
async fn a_stale_crl_fails_closed_unless_allowed() {
    let g = gateway().await;
    // Revokes nobody, but its nextUpdate passed an hour ago.
    std::fs::write(g.dir.join("pki/ca.crl"), g.ca.crl(&[], -1, 1).expect("CRL")).expect("CRL written");
    g.edit_config(|t| with_crls(t, &["pki/ca.crl"]));
    g.reload().await.expect("a stale CRL loads (the handshake decides)");
    call(&g, "zhejiang").await.expect_err("refused against a stale CRL");
    assert!(refused(&g, "crl_expired").await >= 1, "counted under reason=crl_expired");
    g.edit_config(|t| t.replace("crls = [", "allow_stale_crls = true\ncrls = ["));
    g.reload().await.expect("reload");
    call(&g, "zhejiang").await.expect("accepted with tls.allow_stale_crls = true");
    // A fresh CRL without the switch: accepted again.
    std::fs::write(g.dir.join("pki/ca.crl"), g.ca.crl(&[], 24, 2).expect("CRL")).expect("CRL written");
    g.edit_config(|t| t.replace("allow_stale_crls = true\n", ""));
    g.reload().await.expect("reload");
    call(&g, "zhejiang").await.expect("accepted with a fresh CRL");
    g.stop().await;
}

#[tokio::test]
async fn a_revoked_certificates_open_receive_stream_is_closed_on_reload() {
    let g = gateway().await;
    let mut jiangsu = g.client("jiangsu").await;
    let mut revoked_stream = jiangsu.receive(ReceiveRequest { max_unacked: 10 }).await.expect("receive").into_inner();
    let mut zhejiang = g.client("zhejiang").await;
    let mut kept_stream = zhejiang.receive(ReceiveRequest { max_unacked: 10 }).await.expect("receive").into_inner();
    publish_plan(&g, "SH-PLAN-1", "YRD-2024-WS-01").await;
    assert!(next(&mut revoked_stream).await.expect("delivery").is_some());
    assert!(next(&mut kept_stream).await.expect("delivery").is_some());

    let crl = g.ca.crl(&[&read(g.pki.client_files("jiangsu").0)], 24, 1).expect("CRL");
    std::fs::write(g.dir.join("pki/ca.crl"), crl).expect("CRL written");
    g.edit_config(|t| with_crls(t, &["pki/ca.crl"]));
    let reloaded = g.reload().await.expect("reload");
    assert_eq!(reloaded.connections_closed, 1, "{}", reloaded.summary());
    // Jiangsu's stream ends (it must not keep receiving or submitting); Zhejiang's stays open and
    // gets the next plan.
    assert!(!matches!(next(&mut revoked_stream).await, Ok(Some(_))), "the revoked stream ended");
    assert!(jiangsu
        .submit(SubmitRequest { document: b"{}".to_vec() })
        .await
        .is_err_and(|s| s.code() != Code::InvalidArgument));
    publish_plan(&g, "SH-PLAN-2", "YRD-2024-WS-02").await;
    assert!(next(&mut kept_stream).await.expect("the unrevoked stream is open").is_some());
    call(&g, "jiangsu").await.expect_err("new connections refused");
    g.stop().await;
}

#[tokio::test]
async fn the_server_certificate_rotates_under_an_open_stream() {
    let g = gateway().await;
    let mut zhejiang = g.client("zhejiang").await;
    let mut stream = zhejiang.receive(ReceiveRequest { max_unacked: 10 }).await.expect("receive").into_inner();
    let served = |tls: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>| {
        tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec())
    };
    let local = std::net::IpAddr::from([127, 0, 0, 1]);
    let before = served(&g.tls_from("jiangsu", local).await.expect("TLS")).expect("a server certificate");

    let next_cert = g.ca.issue_server().expect("server certificate");
    std::fs::write(g.dir.join("pki/server-2.pem"), &next_cert.cert_pem).expect("written");
    std::fs::write(g.dir.join("pki/server-2.key"), &next_cert.key_pem).expect("written");
    g.edit_config(|t| t.replace("pki/server.pem", "pki/server-2.pem").replace("pki/server.key", "pki/server-2.key"));
    let reloaded = g.reload().await.expect("reload");
    assert_eq!(reloaded.connections_closed, 0);

    let after = served(&g.tls_from("jiangsu", local).await.expect("TLS")).expect("a server certificate");
    assert_ne!(after, before, "new connections see the new certificate");
    assert_eq!(after, rustls_cert_der(&next_cert.cert_pem));
    // The stream opened before the rotation carries on.
    publish_plan(&g, "SH-PLAN-1", "YRD-2024-WS-01").await;
    assert!(next(&mut stream).await.expect("the stream continues").is_some());
    g.stop().await;
}

fn rustls_cert_der(pem: &str) -> Vec<u8> {
    use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer};
    CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM certificate").as_ref().to_vec()
}

#[tokio::test]
async fn a_second_client_ca_is_trusted_after_reload() {
    let g = gateway().await;
    let next_ca = CertificateAuthority::new("yrdx next CA").expect("CA");
    g.install_cert("jiangsu-next", &next_ca.issue_client(&partner_identity("jiangsu"), false).expect("cert"));
    call(&g, "jiangsu-next").await.expect_err("not trusted yet");
    assert!(refused(&g, "unknown_issuer").await >= 1);
    // The rollover bundle: both CAs.
    let bundle = format!("{}{}", g.ca_pem(), next_ca.cert_pem);
    std::fs::write(g.dir.join("pki/client-cas.pem"), bundle).expect("written");
    g.edit_config(|t| t.replace("client_ca = \"pki/ca.pem\"", "client_ca = \"pki/client-cas.pem\""));
    g.reload().await.expect("reload");
    call(&g, "jiangsu-next").await.expect("the next CA's certificate");
    call(&g, "jiangsu").await.expect("the old CA's certificate");
    // CRLs for the old CA only: the next CA's certificates have no known status and are refused
    // (fail closed) until its CRL is listed too.
    std::fs::write(g.dir.join("pki/ca.crl"), g.ca.crl(&[], 24, 1).expect("CRL")).expect("written");
    std::fs::write(g.dir.join("pki/next.crl"), next_ca.crl(&[], 24, 1).expect("CRL")).expect("written");
    g.edit_config(|t| with_crls(t, &["pki/ca.crl"]));
    g.reload().await.expect("reload");
    call(&g, "jiangsu-next").await.expect_err("no CRL of its CA");
    assert!(refused(&g, "unknown_revocation_status").await >= 1);
    call(&g, "jiangsu").await.expect("the old CA's certificate, checked against its CRL");
    g.edit_config(|t| t.replace("crls = [\"pki/ca.crl\"]", "crls = [\"pki/ca.crl\", \"pki/next.crl\"]"));
    g.reload().await.expect("reload");
    call(&g, "jiangsu-next").await.expect("the next CA's certificate, checked against its CRL");
    // The old CA dropped: its certificates' connections close, new ones are refused.
    let mut zhejiang = g.client("zhejiang").await;
    let mut stream = zhejiang.receive(ReceiveRequest { max_unacked: 10 }).await.expect("receive").into_inner();
    std::fs::write(g.dir.join("pki/client-cas.pem"), &next_ca.cert_pem).expect("written");
    let reloaded = g.reload().await.expect("reload");
    assert!(reloaded.connections_closed >= 1, "{}", reloaded.summary());
    assert!(!matches!(next(&mut stream).await, Ok(Some(_))), "the old CA's stream ended");
    call(&g, "jiangsu-next").await.expect("the next CA's certificate");
    g.stop().await;
}

#[tokio::test]
async fn a_suspended_partner_is_denied_and_its_mailbox_kept() {
    let g = gateway().await;
    publish_plan(&g, "SH-PLAN-1", "YRD-2024-WS-01").await;
    let mut zhejiang = g.client("zhejiang").await;
    let mut stream = zhejiang.receive(ReceiveRequest { max_unacked: 10 }).await.expect("receive").into_inner();
    assert!(next(&mut stream).await.expect("delivery").is_some(), "delivered, not acknowledged");
    g.edit_config(|t| {
        t.replace(
            "identity = \"urn:yrdx:partner:zhejiang\"\n",
            "identity = \"urn:yrdx:partner:zhejiang\"\nsuspended = true\n",
        )
    });
    let mut admin = g.admin("ops").await;
    let reply = admin.reload(ReloadRequest {}).await.expect("Admin.Reload").into_inner();
    assert_eq!(reply.suspended, ["zhejiang"], "{}", reply.summary);
    assert!(!reply.partners.contains(&"zhejiang".to_string()));
    assert!(!matches!(next(&mut stream).await, Ok(Some(_))), "the suspended partner's stream ended");
    let (code, message) = call(&g, "zhejiang").await.expect_err("suspended");
    assert_eq!(code, Some(Code::PermissionDenied), "{message}");
    assert!(message.contains("suspended"), "{message}");
    let receive = g.client("zhejiang").await.receive(ReceiveRequest { max_unacked: 10 }).await;
    let status = match receive {
        Err(s) => s,
        Ok(r) => next(&mut r.into_inner()).await.expect_err("refused on the stream"),
    };
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    // Its mailbox is kept: the plan is still there, and comes once the suspension is lifted.
    let boxes = admin.mailboxes(MailboxesRequest {}).await.expect("mailboxes").into_inner().mailboxes;
    assert_eq!(boxes.iter().find(|m| m.partner == "zhejiang").map(|m| m.depth), Some(1));
    g.edit_config(|t| t.replace("suspended = true\n", ""));
    admin.reload(ReloadRequest {}).await.expect("Admin.Reload");
    let mut stream =
        g.client("zhejiang").await.receive(ReceiveRequest { max_unacked: 10 }).await.expect("receive").into_inner();
    assert!(next(&mut stream).await.expect("delivery").is_some(), "the kept delivery arrives");
    call(&g, "jiangsu").await.expect("others were never affected");
    g.stop().await;
}

#[tokio::test]
async fn a_partner_added_by_reload_works_at_once_and_a_rate_limit_changes() {
    let g = gateway().await;
    g.install_cert("anhui", &g.ca.issue_client(&partner_identity("anhui"), false).expect("cert"));
    let (code, _) = call(&g, "anhui").await.expect_err("not registered yet");
    assert_eq!(code, Some(Code::PermissionDenied));
    g.edit_config(|t| {
        format!(
            "{}\n[[partner]]\nname = \"anhui\"\nregion = \"340000\"\nformat = \"jiangsu\"\nidentity = \"{}\"\n",
            t.replace(
                "identity = \"urn:yrdx:partner:jiangsu\"\nrate_per_second = 50\nburst = 100\n",
                "identity = \"urn:yrdx:partner:jiangsu\"\nrate_per_second = 1\nburst = 1\n",
            ),
            partner_identity("anhui")
        )
    });
    let reply = g.admin("ops").await.reload(ReloadRequest {}).await.expect("Admin.Reload").into_inner();
    assert!(reply.partners.contains(&"anhui".to_string()), "{}", reply.summary);
    call(&g, "anhui").await.expect("Anhui works at once");
    // Jiangsu's new limit: one submission, then the next within the second is refused.
    let mut jiangsu = g.client("jiangsu").await;
    let mut limited = None;
    for _ in 0..3 {
        if let Err(s) = jiangsu.submit(SubmitRequest { document: b"{}".to_vec() }).await {
            if s.code() == Code::ResourceExhausted {
                limited = Some(s.message().to_string());
                break;
            }
        }
    }
    let limited = limited.expect("the new rate limit applies");
    assert!(limited.contains("1 submissions per second, burst 1"), "{limited}");
    // A partner only an operator may call Reload.
    let denied = g.admin("jiangsu").await.reload(ReloadRequest {}).await.expect_err("partners may not reload");
    assert_eq!(denied.code(), Code::PermissionDenied);
    g.stop().await;
}

#[tokio::test]
async fn a_broken_configuration_is_refused_whole_and_the_old_one_runs() {
    let g = gateway().await;
    let good = read(g.pki.config.clone());
    std::fs::write(g.dir.join("pki/bad.crl"), "not a CRL").expect("written");
    let cases: Vec<(String, &str)> = vec![
        (good.replace("330000", "390000"), "partner[2].region"),
        (good.replace("pki/server.pem", "pki/missing.pem"), "tls.cert"),
        (with_crls(good.clone(), &["pki/bad.crl"]), "tls.crls[0]"),
        (good.replace("client_ca = \"pki/ca.pem\"", "client_ca = \"pki/server.key\""), "tls.client_ca"),
        (good.replace("listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:1\""), "listen"),
        (format!("calendar_file = \"missing.json\"\n{good}"), "calendar_file"),
        (format!("{good}\n[[partner]]\nname = \"anhui\"\nregion = \"340000\"\nformat = \"anhui\"\nidentity = \"urn:yrdx:partner:anhui\"\n"), "format"),
    ];
    for (text, key) in cases {
        // Suspending Jiangsu rides along: it must not take effect when the rest fails.
        std::fs::write(
            &g.pki.config,
            text.replace(
                "identity = \"urn:yrdx:partner:jiangsu\"\n",
                "identity = \"urn:yrdx:partner:jiangsu\"\nsuspended = true\n",
            ),
        )
        .expect("written");
        let e = g.reload().await.expect_err("refused");
        assert!(e.to_string().contains(key), "names {key}: {e}");
        let status = g.admin("ops").await.reload(ReloadRequest {}).await.expect_err("refused");
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains(key), "names {key}: {}", status.message());
        call(&g, "jiangsu").await.unwrap_or_else(|e| panic!("the old configuration runs after a broken {key}: {e:?}"));
    }
    std::fs::write(&g.pki.config, good).expect("written");
    g.reload().await.expect("the good configuration reloads");
    g.stop().await;
}

const ONLY_2024: &str = "[[year]]\nyear = 2024\nholidays = [\"2024-01-01\", \"2024-02-10..2024-02-17\", \
    \"2024-04-04..2024-04-06\", \"2024-05-01..2024-05-05\", \"2024-06-10\", \"2024-09-15..2024-09-17\", \
    \"2024-10-01..2024-10-07\"]\nweekend_workdays = [\"2024-02-04\", \"2024-02-18\", \"2024-04-07\", \
    \"2024-04-28\", \"2024-05-11\", \"2024-09-14\", \"2024-09-29\", \"2024-10-12\"]\n";

/// Everything waiting on `stream` until it is quiet for a moment: (message id), acknowledged.
async fn drain_ids(
    client: &mut yrdx_proto::v1::exchange_client::ExchangeClient<tonic::transport::Channel>,
    stream: &mut tonic::Streaming<yrdx_proto::v1::Delivery>,
) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(Ok(Some(d))) = tokio::time::timeout(Duration::from_millis(600), stream.message()).await {
        out.push(d.message_id.clone());
        client.ack(yrdx_proto::v1::AckRequest { delivery_ids: vec![d.delivery_id] }).await.expect("ack");
    }
    out
}

#[tokio::test]
async fn a_reloaded_calendar_settles_provisional_due_dates_onto_open_streams() {
    let cal = yrdx_tests::temp_dir("calendar").join("calendar.toml");
    std::fs::write(&cal, ONLY_2024).expect("calendar");
    let cal_line = format!("calendar_file = \"{}\"\n", cal.display());
    let g = TestGateway::start_with(|t| format!("{cal_line}{t}")).await;
    g.set_time("2024-12-27T16:00:00+08:00");
    let mut jiangsu = g.client("jiangsu").await;
    let mut stream = jiangsu.receive(ReceiveRequest { max_unacked: 10 }).await.expect("receive").into_inner();
    let send = |who: &'static str, format: Partner, region: &'static str, id: &'static str, r: Record| {
        let g = &g;
        async move {
            g.client(who)
                .await
                .submit(SubmitRequest { document: document(format, region, id, &[r]) })
                .await
                .unwrap_or_else(|e| panic!("{id}: {e}"));
        }
    };
    publish_plan(&g, "PLAN-1", "YRD-2024-WS-01").await;
    let mut sampling = vector_record(Partner::Jiangsu, "jiangsu/valid/example-sampling.json");
    if let Record::Sampling(s) = &mut sampling {
        s.sample_id = "ZJ-0901".into();
        s.sampling_region = "330000".into();
        if let Some(p) = s.producer.as_mut() {
            p.region = "320583".into();
        }
    }
    send("zhejiang", Partner::Zhejiang, "330000", "S-1", sampling).await;
    let mut result = vector_record(Partner::Jiangsu, "jiangsu/valid/example-inspection.json");
    if let Record::Inspection(i) = &mut result {
        i.sample_id = "ZJ-0901".into();
        i.report_no = "ZJR-0901".into();
    }
    // Friday 2024-12-27 + 5 working days needs 2025: provisional.
    send("zhejiang", Partner::Zhejiang, "330000", "R-1", result).await;
    let before = drain_ids(&mut jiangsu, &mut stream).await;
    assert!(before.iter().any(|id| id == "CZ-ZJ-0901"), "{before:?}");

    // The operator extends the calendar and reloads: the date is settled and the case goes again
    // to the stream that stayed open.
    std::fs::write(&cal, yrdx_proto::calendar::DEFAULT_CALENDAR_TOML).expect("calendar");
    let reloaded = g.reload().await.expect("reload");
    assert_eq!(reloaded.due_dates_resent, ["CZ-ZJ-0901"], "{}", reloaded.summary());
    assert_eq!(drain_ids(&mut jiangsu, &mut stream).await, ["CZ-ZJ-0901-DUE-20250106"]);
    let status = g
        .admin("ops")
        .await
        .calendar_status(yrdx_proto::v1::CalendarStatusRequest {})
        .await
        .expect("calendar status")
        .into_inner();
    assert!(status.provisional_cases.is_empty(), "{:?}", status.provisional_cases);
    assert_ne!(status.last_day, yrdx_proto::Date::from_ymd(2024, 12, 31), "the extended calendar is in force");
    g.stop().await;
    let _ = std::fs::remove_dir_all(cal.parent().expect("dir"));
}
