//! Prometheus metrics of a running gateway under a little load: the exposition passes
//! Prometheus' own `promtool check metrics`, and the counters moved as the load says.

use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yrdx_adapters::Partner;
use yrdx_conformance::samr_simulator::IntakeOptions;
use yrdx_proto::v1::*;
use yrdx_tests::records::{example_plan as plan, example_result, example_sampling};
use yrdx_tests::samr::TestSamr;
use yrdx_tests::{document, TestGateway};

async fn scrape(g: &TestGateway, accept: &str, content_type: &str) -> String {
    let addr = g.running.as_ref().expect("running").metrics_addr.expect("[metrics] configured");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("metrics listener");
    let request = format!("GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: {accept}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).expect("UTF-8 exposition");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains(&format!("content-type: {content_type}")), "{head}");
    // The body may be chunked; promtool and the assertions want the exposition itself.
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        body.to_string()
    }
}

/// The value of the sample `name{labels}` (labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split_whitespace().next()?.parse().ok())
}

/// `promtool`, installed from Debian's `prometheus` package when missing (as root, as in CI).
fn promtool() -> Option<std::path::PathBuf> {
    let find =
        || ["/usr/bin/promtool", "/usr/local/bin/promtool"].iter().map(std::path::PathBuf::from).find(|p| p.exists());
    if let Some(p) = find() {
        return Some(p);
    }
    eprintln!("promtool missing: installing Debian's prometheus package");
    let _ = Command::new("apt-get").arg("update").stdout(Stdio::null()).status();
    let _ = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "prometheus"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status();
    find()
}

/// `promtool check metrics` finds nothing in `text` (skipped loudly without promtool).
fn promtool_check(text: &str) {
    match promtool() {
        Some(tool) => {
            let mut child = Command::new(tool)
                .args(["check", "metrics"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("promtool runs");
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "promtool check metrics failed:\n{said}\n{text}");
            assert!(said.trim().is_empty(), "promtool has findings:\n{said}");
        }
        None => eprintln!(
            "SKIPPED (loudly): promtool could not be found or installed; the exposition was not checked by it"
        ),
    }
}

#[tokio::test]
async fn metrics_pass_promtool_and_count_the_load() {
    let g = TestGateway::start_with(|t| format!("{t}\n[metrics]\nlisten = \"127.0.0.1:0\"\n")).await;
    let mut shanghai = g.client("shanghai").await;
    let plan_doc = document(Partner::Canonical, "310000", "M-PLAN", &[plan()]);
    shanghai.submit(SubmitRequest { document: plan_doc.clone() }).await.unwrap();
    shanghai.submit(SubmitRequest { document: plan_doc }).await.unwrap();
    let mut jiangsu = g.client("jiangsu").await;
    for _ in 0..2 {
        let err = jiangsu.submit(SubmitRequest { document: b"{not json".to_vec() }).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }
    // Shanghai's document sent with Jiangsu's certificate: a forged sender.
    let forged = document(Partner::Jiangsu, "310000", "M-FORGED", &[plan()]);
    assert_eq!(
        jiangsu.submit(SubmitRequest { document: forged }).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    // The plan went to Jiangsu and Zhejiang: Jiangsu receives and acknowledges it.
    let mut stream = jiangsu.receive(ReceiveRequest { max_unacked: 10 }).await.unwrap().into_inner();
    let d = tokio::time::timeout(Duration::from_secs(5), stream.message()).await.unwrap().unwrap().unwrap();
    jiangsu.ack(AckRequest { delivery_ids: vec![d.delivery_id] }).await.unwrap();
    drop(stream);
    // Zhejiang takes its copy and holds it unacknowledged: one in flight.
    let mut zhejiang = g.client("zhejiang").await;
    let mut zstream = zhejiang.receive(ReceiveRequest { max_unacked: 10 }).await.unwrap().into_inner();
    let _held = tokio::time::timeout(Duration::from_secs(5), zstream.message()).await.unwrap().unwrap().unwrap();
    // A client without a certificate is refused in the handshake, and counted.
    // (With TLS 1.3 the client may finish its side first; its first call then fails.)
    if let Ok(mut anonymous) = g.client_with(None, &g.ca_pem()).await {
        assert!(anonymous.submit(SubmitRequest { document: vec![] }).await.is_err(), "no certificate, no call");
    }

    let text = scrape(&g, "text/plain", "text/plain; version=0.0.4").await;
    let value = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no sample {series}:\n{text}"));
    assert_eq!(value(r#"yrdx_submissions_total{partner="shanghai",outcome="accepted"}"#), 1.0);
    assert_eq!(value(r#"yrdx_submissions_total{partner="shanghai",outcome="duplicate"}"#), 1.0);
    assert_eq!(value(r#"yrdx_submissions_total{partner="jiangsu",outcome="invalid"}"#), 2.0);
    assert_eq!(value(r#"yrdx_submissions_total{partner="jiangsu",outcome="denied"}"#), 1.0);
    assert_eq!(value(r#"yrdx_records_total{partner="shanghai",kind="plan",outcome="accepted"}"#), 1.0);
    assert_eq!(value(r#"yrdx_deliveries_sent_total{partner="jiangsu"}"#), 1.0);
    assert_eq!(value(r#"yrdx_deliveries_acknowledged_total{partner="jiangsu"}"#), 1.0);
    assert_eq!(value(r#"yrdx_mailbox_depth{partner="jiangsu"}"#), 0.0);
    assert_eq!(value(r#"yrdx_mailbox_depth{partner="zhejiang"}"#), 1.0, "the plan waits for Zhejiang");
    assert!(value(r#"yrdx_mailbox_oldest_unacknowledged_age_seconds{partner="zhejiang"}"#) >= 0.0);
    assert_eq!(value(r#"yrdx_submit_duration_seconds_count{partner="jiangsu"}"#), 3.0);
    assert!(value("yrdx_store_commit_duration_seconds_count") >= 1.0);
    assert!(value("yrdx_store_commit_group_size_count") >= 1.0, "group sizes observed");
    assert_eq!(value(r#"yrdx_mailbox_in_flight{partner="zhejiang"}"#), 1.0);
    assert_eq!(value(r#"yrdx_mailbox_in_flight{partner="jiangsu"}"#), 0.0);
    assert!(value(r#"yrdx_tls_handshakes_refused_total{reason="no_certificate"}"#) >= 1.0);
    // The shipped calendar ends with 2026-12-31 (midnight after it, Beijing time).
    assert_eq!(value("yrdx_calendar_end_timestamp_seconds"), 1_798_732_800.0);
    assert_eq!(value("yrdx_cases_provisional_due_date"), 0.0);
    assert_eq!(value(r#"yrdx_samr_packages{state="parked"}"#), 0.0);
    assert_eq!(value(r#"yrdx_build_info{version="0.1.0"}"#), 1.0);
    // Prometheus itself asks for OpenMetrics: the same samples, the OpenMetrics way.
    let open =
        scrape(&g, "application/openmetrics-text;version=1.0.0,text/plain;q=0.5", "application/openmetrics-text").await;
    assert!(open.trim_end().ends_with("# EOF"), "OpenMetrics ends with # EOF");
    assert_eq!(sample(&open, r#"yrdx_submissions_total{partner="jiangsu",outcome="invalid"}"#), Some(2.0));

    promtool_check(&text);
    g.stop().await;
}

/// Scrapes until `series` shows up (10 s at most), and returns the last scrape.
async fn scrape_until(g: &TestGateway, series: &str) -> String {
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(g, "text/plain", "text/plain; version=0.0.4").await;
        if sample(&text, series).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    text
}

/// Scrapes until every series has its value: a scrape reads the gauges from the store before it
/// renders the counters, so one taken while the pusher records an attempt may show the one and
/// not yet the other.
async fn scrape_until_values(g: &TestGateway, want: &[(&str, f64)]) -> String {
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(g, "text/plain", "text/plain; version=0.0.4").await;
        if want.iter().all(|(series, value)| sample(&text, series) == Some(*value)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samr_attempts_and_receipt_latency_are_counted() {
    // SAMR is busy once (503, Retry-After: 1), then accepts.
    let options = IntakeOptions { busy_first: 1, ..Default::default() };
    let samr = TestSamr::start("metrics-samr", options).await;
    let intake = &samr.intake;
    let samr_section = samr.section("max_attempts = 4\nretry_base_secs = 1\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n");
    let g = TestGateway::start_with(|t| t + &samr_section).await;
    let sampling = example_sampling("JS-OK-0001");
    let result = example_result("JS-OK-0001", "JSR-0001");
    for (who, format, region, id, record) in [
        ("shanghai", Partner::Canonical, "310000", "MS-PLAN-1", plan()),
        ("jiangsu", Partner::Jiangsu, "320000", "MS-S-1", sampling),
        ("jiangsu", Partner::Jiangsu, "320000", "MS-R-1", result),
    ] {
        g.client(who)
            .await
            .submit(SubmitRequest { document: document(format, region, id, &[record]) })
            .await
            .expect(id);
    }
    // The first attempt is answered 503: the package waits by the gateway's clock, moved past it.
    let busy = r#"yrdx_samr_attempts_total{outcome="busy"}"#;
    let text = scrape_until(&g, busy).await;
    assert_eq!(sample(&text, busy), Some(1.0), "{text}");
    assert_eq!(sample(&text, r#"yrdx_samr_packages{state="pending"}"#), Some(1.0));
    g.set_time("2024-03-15T10:00:05+08:00");
    let text = scrape_until_values(
        &g,
        &[(r#"yrdx_samr_attempts_total{outcome="accepted"}"#, 1.0), (r#"yrdx_samr_packages{state="accepted"}"#, 1.0)],
    )
    .await;
    let value = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no sample {series}:\n{text}"));
    assert_eq!(value(busy), 1.0);
    assert_eq!(value(r#"yrdx_samr_attempts_total{outcome="accepted"}"#), 1.0);
    assert_eq!(sample(&text, r#"yrdx_samr_attempts_total{outcome="rejected"}"#), None, "nothing was rejected");
    // Both answers were timed.
    assert_eq!(value("yrdx_samr_receipt_seconds_count"), 2.0);
    assert!(value("yrdx_samr_receipt_seconds_sum") > 0.0);
    assert_eq!(value(r#"yrdx_samr_packages{state="accepted"}"#), 1.0);
    assert_eq!(value(r#"yrdx_samr_packages{state="parked"}"#), 0.0);
    promtool_check(&text);
    intake.stop();
    g.stop().await;
}
