//! SAMR docking end to end: the gateway pushes packages over HTTPS with mutual TLS to a test SAMR
//! intake that checks the GB18030 bytes, the SM3 digest and the numbering, answers 503 once and
//! rejects one package — which ends up parked with SAMR's reason and is resent by an operator.

use std::time::Duration;
use yrdx_adapters::Partner;
use yrdx_conformance::samr_simulator::IntakeOptions;
use yrdx_proto::v1::SubmitRequest;
use yrdx_tests::records::{example_plan as plan, example_result as result, example_sampling as sampling};
use yrdx_tests::samr::{until_all_accepted, TestSamr};
use yrdx_tests::{document, wait_for, TestGateway};

/// Waits up to 10 s for `f` to give a value.
async fn until<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_for(what, Duration::from_secs(10), f).await
}

#[tokio::test]
async fn packages_reach_samr_with_retries_parking_and_resend() {
    // SAMR's side: its own CA, the intake's server certificate, and the gateway's client certificate.
    let options = IntakeOptions {
        busy_first: 1,
        reject_containing: Some(("JS-REJ-0002".into(), "抽样单信息不完整".into())),
        ..Default::default()
    };
    let samr = TestSamr::start("samr", options).await;
    let intake = &samr.intake;
    let samr_section = samr.section("max_attempts = 4\nretry_base_secs = 1\n");
    let g = TestGateway::start_with(|t| t + &samr_section).await;
    g.submit_one("shanghai", Partner::Canonical, "310000", "PLAN-1", plan()).await.unwrap();
    g.submit_one("jiangsu", Partner::Jiangsu, "320000", "S-1", sampling("JS-OK-0001")).await.unwrap();
    g.submit_one("jiangsu", Partner::Jiangsu, "320000", "S-2", sampling("JS-REJ-0002")).await.unwrap();

    // A nonconforming result: a CCJG package (and the local case). SAMR is busy the first time.
    g.submit_one("jiangsu", Partner::Jiangsu, "320000", "R-1", result("JS-OK-0001", "JSR-0001")).await.unwrap();
    until("the 503", || intake.events().iter().any(|e| e.status == 503).then_some(())).await;
    // Retry-After: 1 — the gateway waits by its own clock.
    g.set_time("2024-03-15T10:00:05+08:00");
    let first = until("acceptance", || intake.events().into_iter().find(|e| e.accepted)).await;
    assert_eq!(first.number.as_deref(), Some("SJB-310000-20240315-0001"));
    let store = g.store();
    until("the store to record it", || {
        store
            .samr_packages()
            .unwrap()
            .iter()
            .any(|p| p.state == yrdx_gateway::store::PackageState::Accepted)
            .then_some(())
    })
    .await;

    // The second result's package is rejected: parked with SAMR's reason, never dropped.
    g.submit_one("jiangsu", Partner::Jiangsu, "320000", "R-2", result("JS-REJ-0002", "JSR-0002")).await.unwrap();
    let parked = until("parking", || store.samr_parked().unwrap().into_iter().next()).await;
    assert_eq!(parked.number, "SJB-310000-20240315-0002", "numbers follow per day, never reused");
    assert!(parked.reason.contains("抽样单信息不完整"), "{}", parked.reason);
    assert_eq!(parked.package_type, "CCJG");
    // Operators see it with SAMR's reason (partners may not look) and resend it; SAMR now accepts it.
    let mut ops = g.admin("ops").await;
    let listed = ops.parked_packages(yrdx_proto::v1::ParkedPackagesRequest {}).await.unwrap().into_inner().packages;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].number, parked.number);
    assert!(listed[0].reason.contains("抽样单信息不完整"));
    let denied = g.admin("jiangsu").await.parked_packages(yrdx_proto::v1::ParkedPackagesRequest {}).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let resent =
        ops.resend_package(yrdx_proto::v1::ResendPackageRequest { number: parked.number.clone() }).await.unwrap();
    assert!(resent.into_inner().requeued);
    let again =
        ops.resend_package(yrdx_proto::v1::ResendPackageRequest { number: parked.number.clone() }).await.unwrap_err();
    assert_eq!(again.code(), tonic::Code::FailedPrecondition, "only a parked package can be resent");
    until_all_accepted("the resent package's acceptance", Duration::from_secs(10), &store).await;
    let accepted: Vec<String> = intake.events().into_iter().filter(|e| e.accepted).filter_map(|e| e.number).collect();
    assert_eq!(accepted, ["SJB-310000-20240315-0001", "SJB-310000-20240315-0002"]);
    // Every package the intake read had a valid GB18030 body and SM3 digest: none failed its check.
    assert!(intake.events().iter().all(|e| !e.reason.contains("校验失败")), "{:?}", intake.events());
    intake.stop();
    g.stop().await;
}

/// Peak resident memory of this process (the gateway runs in it), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[tokio::test]
async fn a_huge_samr_response_is_refused_while_it_is_read() {
    // SAMR answers the first attempt with 128 MiB of filler, streamed without a Content-Length.
    let options = IntakeOptions { oversized_first: 1, oversized_bytes: 128 << 20, ..Default::default() };
    let samr = TestSamr::start("samr-huge", options).await;
    let intake = &samr.intake;
    let samr_section = samr.section("retry_base_secs = 1\nmax_response_bytes = 65536\n");
    let g = TestGateway::start_with(|t| t + &samr_section).await;
    let before = peak_rss_kib();
    for (who, format, region, id, r) in [
        ("shanghai", Partner::Canonical, "310000", "PLAN-1", plan()),
        ("jiangsu", Partner::Jiangsu, "320000", "S-1", sampling("JS-BIG-0001")),
        ("jiangsu", Partner::Jiangsu, "320000", "R-1", result("JS-BIG-0001", "JSR-0001")),
    ] {
        g.client(who).await.submit(SubmitRequest { document: document(format, region, id, &[r]) }).await.unwrap();
    }
    let store = g.store();
    // The first attempt is refused at 64 KiB and counted as failed; the package stays pending.
    let pending = until("the refused attempt", || {
        store.samr_packages().unwrap().into_iter().find(|p| p.attempts >= 1 && p.reason.contains("over the limit"))
    })
    .await;
    assert_eq!(pending.state, yrdx_gateway::store::PackageState::Pending, "{pending:?}");
    assert!(pending.reason.contains("65536"), "{}", pending.reason);
    // The retry (1 s later by the gateway's clock) gets a real receipt.
    g.set_time("2024-03-15T10:00:09+08:00");
    until_all_accepted("acceptance", Duration::from_secs(10), &store).await;
    let after = peak_rss_kib();
    eprintln!("peak RSS of the test process: {before} KiB before the huge response, {after} KiB after");
    // Nowhere near the 128 MiB that was offered (test process: gateway, intake and client).
    assert!(after < before + 64 * 1024, "peak RSS grew from {before} to {after} KiB");
    intake.stop();
    g.stop().await;
}
