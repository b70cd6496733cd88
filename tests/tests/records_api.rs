//! Shanghai's Records API end to end: canonical submissions, record lookup, case lists with the
//! overdue flag under a moved clock, the plan summary (open to participants only), responsibility
//! reports for SAMR, and who may call what.

use tonic::Code;
use yrdx_adapters::{Partner, Record};
use yrdx_proto::v1::records_submit_request::Record as R;
use yrdx_proto::v1::*;
use yrdx_tests::{document, vector_record, TestGateway};

fn plan() -> SpotCheckPlan {
    let Record::Plan(mut p) = vector_record(Partner::Canonical, "canonical/valid/plan.json") else { unreachable!() };
    p.plan_id = "YRD-2024-WS-01".into();
    p.channel = PlanChannel::Online as i32;
    p.categories = vec![ProductCategory::EBikeLithiumBattery as i32];
    p.participants =
        ["310000", "320000", "330000"].iter().map(|r| PlanParticipant { region: r.to_string(), quota: 5 }).collect();
    p
}

fn sampling(id: &str, region: &str) -> Record {
    let mut r = vector_record(Partner::Jiangsu, "jiangsu/valid/example-sampling.json");
    if let Record::Sampling(s) = &mut r {
        s.sample_id = id.into();
        s.sampling_region = region.into();
    }
    r
}

fn result(sample_id: &str, report_no: &str, conforming: bool) -> Record {
    let mut r = vector_record(Partner::Jiangsu, "jiangsu/valid/example-inspection.json");
    if let Record::Inspection(i) = &mut r {
        i.sample_id = sample_id.into();
        i.report_no = report_no.into();
        if conforming {
            i.items.retain(|it| it.verdict == Verdict::Pass as i32);
            i.conclusion = Conclusion::Conforming as i32;
        }
    }
    r
}

#[tokio::test]
async fn shanghai_submits_and_queries_in_canonical_records() {
    let g = TestGateway::start().await;
    let mut shanghai = g.records("shanghai").await;
    let reply = shanghai
        .submit(RecordsSubmitRequest { message_id: "SH-API-1".into(), record: Some(R::Plan(plan())) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.records[0].id, "YRD-2024-WS-01");
    // Partners sample and report through Exchange, in their own formats.
    let exchange_submit = |who: &'static str, document: Vec<u8>| {
        let g = &g;
        async move { g.client(who).await.submit(SubmitRequest { document }).await.unwrap() }
    };
    exchange_submit("jiangsu", document(Partner::Jiangsu, "320000", "S-1", &[sampling("JS-0001", "320000")])).await;
    exchange_submit("zhejiang", document(Partner::Zhejiang, "330000", "S-2", &[sampling("ZJ-0001", "330000")])).await;
    exchange_submit("jiangsu", document(Partner::Jiangsu, "320000", "R-1", &[result("JS-0001", "JSR-1", true)])).await;
    // Friday 2024-03-15: ZJ-0001 fails; the case goes to Jiangsu (the producer's province), due 2024-03-22.
    exchange_submit("zhejiang", document(Partner::Zhejiang, "330000", "R-2", &[result("ZJ-0001", "ZJR-1", false)]))
        .await;

    let got = shanghai
        .get_record(GetRecordRequest { kind: "sampling".into(), id: "ZJ-0001".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(got.record, Some(get_record_reply::Record::Sampling(s)) if s.sampling_region == "330000"));
    let missing =
        shanghai.get_record(GetRecordRequest { kind: "sampling".into(), id: "NOPE-01".into() }).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let cases = shanghai
        .list_cases(ListCasesRequest { region: "320000".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(cases.len(), 1);
    let case = cases[0].case.clone().unwrap();
    assert_eq!(case.due_on, yrdx_proto::Date::from_ymd(2024, 3, 22));
    assert!(!cases[0].overdue);
    assert!(shanghai
        .list_cases(ListCasesRequest { overdue_only: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .cases
        .is_empty());
    // The clock moves past the due date: the case shows as overdue.
    g.set_time("2024-03-25T09:00:00+08:00");
    let overdue = shanghai
        .list_cases(ListCasesRequest { overdue_only: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(overdue.len(), 1);
    assert!(overdue[0].overdue);
    let transferred = shanghai
        .list_cases(ListCasesRequest { status: CaseStatus::Transferred as i32, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(transferred.len(), 1);

    // The plan summary: any participant may read it; Beijing is not one here.
    let summary = g
        .records("jiangsu")
        .await
        .get_plan_summary(PlanSummaryRequest { plan_id: "YRD-2024-WS-01".into() })
        .await
        .unwrap()
        .into_inner();
    let row = |region: &str| summary.rows.iter().find(|r| r.region == region).cloned().unwrap();
    let zj = row("330000");
    assert_eq!((zj.quota, zj.sampled, zj.results, zj.conforming, zj.nonconforming), (5, 1, 1, 0, 1));
    assert_eq!((zj.open_cases, zj.overdue_cases), (1, 1));
    assert!((zj.nonconforming_rate - 1.0).abs() < 1e-9);
    let js = row("320000");
    assert_eq!((js.sampled, js.results, js.conforming, js.nonconforming, js.open_cases), (1, 1, 1, 0, 0));
    assert_eq!(row("310000").sampled, 0);
    let denied = g
        .records("beijing")
        .await
        .get_plan_summary(PlanSummaryRequest { plan_id: "YRD-2024-WS-01".into() })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // Shanghai is not a side of this case: it may not act on it.
    let act = ActOnCaseRequest {
        message_id: "SH-ACT-1".into(),
        feedback: Some(CaseFeedback {
            case_id: case.case_id.clone(),
            event: Some(CaseEvent {
                event_id: "SH-FK-1".into(),
                at: yrdx_proto::civil::parse_rfc3339("2024-03-25T10:00:00+08:00"),
                by_region: "310000".into(),
                action: CaseAction::Accept as i32,
                note: String::new(),
                amount: None,
            }),
        }),
    };
    assert_eq!(shanghai.act_on_case(act).await.unwrap_err().code(), Code::FailedPrecondition);

    // Responsibility reports go to SAMR (ZTZR), from Shanghai only.
    let Record::ResponsibilityReport(report) =
        vector_record(Partner::Canonical, "canonical/valid/responsibility-report.json")
    else {
        unreachable!()
    };
    shanghai
        .submit(RecordsSubmitRequest {
            message_id: "SH-ZT-1".into(),
            record: Some(R::ResponsibilityReport(report.clone())),
        })
        .await
        .unwrap();
    assert!(g.store().samr_waiting().unwrap().iter().any(|(k, _)| k == "responsibility_report"));
    // Partners use Exchange, not the Records API.
    let err = g
        .records("jiangsu")
        .await
        .submit(RecordsSubmitRequest { message_id: "JS-ZT-1".into(), record: Some(R::ResponsibilityReport(report)) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    g.stop().await;
}
