//! Disposal cases end to end (`docs/domain.md` section 5): a nonconforming result opens a case with
//! the responsible region from the producer, transfers it (or keeps it local, or queues it for SAMR),
//! the state machine accepts only the named region's legal actions, every event reaches the other
//! side in its own format, due dates follow the calendar, and a closed case is queued for SAMR.

use std::time::Duration;
use tonic::Code;
use yrdx_adapters::{Partner, Record};
use yrdx_proto::v1::*;
use yrdx_proto::Date;
use yrdx_tests::records::{example_plan as plan, example_result as result, example_sampling_in as sampling};
use yrdx_tests::TestGateway;

fn feedback(case_id: &str, n: u32, by: &str, action: CaseAction, at: &str) -> Record {
    Record::CaseFeedback(CaseFeedback {
        case_id: case_id.into(),
        event: Some(CaseEvent {
            event_id: format!("FK-{n:04}"),
            at: yrdx_proto::civil::parse_rfc3339(at),
            by_region: by.into(),
            action: action as i32,
            note: if action == CaseAction::Return { "非本辖区".into() } else { String::new() },
            amount: (action == CaseAction::Penalty).then_some(1_250_000),
        }),
    })
}

/// Everything waiting for `who`, acknowledged: the records of every delivery.
async fn drain(g: &TestGateway, who: &str, format: Partner) -> Vec<Record> {
    g.drain_messages(who, format).await.into_iter().flat_map(|(_, records)| records).collect()
}

async fn setup(g: &TestGateway, sample: Record, sampler: (&str, Partner, &str)) {
    g.submit_one("shanghai", Partner::Canonical, "310000", "PLAN-1", plan()).await.unwrap();
    g.submit_one(sampler.0, sampler.1, sampler.2, "S-1", sample).await.unwrap();
    for (who, f) in [
        ("shanghai", Partner::Canonical),
        ("jiangsu", Partner::Jiangsu),
        ("zhejiang", Partner::Zhejiang),
        ("beijing", Partner::Beijing),
    ] {
        drain(g, who, f).await;
    }
}

#[tokio::test]
async fn a_nonconforming_result_is_transferred_and_the_case_runs_its_course() {
    let g = TestGateway::start().await;
    setup(&g, sampling("ZJ-0001", "330000", "320583"), ("zhejiang", Partner::Zhejiang, "330000")).await;
    // The result arrives on Thursday 2024-02-08: transferred, due 2024-02-21.
    g.set_time("2024-02-08T16:00:00+08:00");
    let reply =
        g.submit_one("zhejiang", Partner::Zhejiang, "330000", "R-1", result("ZJ-0001", "ZJR-0001")).await.unwrap();
    let case_id = "CZ-ZJ-0001";
    assert!(
        reply
            .warnings
            .iter()
            .any(|w| w.contains(case_id) && w.contains("transferred to 320000") && w.contains("2024-02-21")),
        "{:?}",
        reply.warnings
    );
    // Jiangsu (responsible, producer's province) receives the transfer in Jiangsu format.
    let at_jiangsu = drain(&g, "jiangsu", Partner::Jiangsu).await;
    match at_jiangsu.as_slice() {
        [Record::CaseTransfer(c)] => {
            assert_eq!((c.origin_region.as_str(), c.responsible_region.as_str()), ("330000", "320000"));
            assert_eq!(c.due_on, Date::from_ymd(2024, 2, 21));
        }
        other => panic!("{other:?}"),
    }
    // Zhejiang (origin) is told the case id too.
    assert!(drain(&g, "zhejiang", Partner::Zhejiang)
        .await
        .iter()
        .any(|r| matches!(r, Record::CaseTransfer(c) if c.case_id == case_id)));
    // Only the responsible region may accept; nothing changes on a refusal.
    let err = g
        .submit_one(
            "zhejiang",
            Partner::Zhejiang,
            "330000",
            "F-0",
            feedback(case_id, 0, "330000", CaseAction::Accept, "2024-02-09T10:00:00+08:00"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("only the responsible region 320000"), "{err}");
    // Forging the acting region is refused too.
    let err = g
        .submit_one(
            "zhejiang",
            Partner::Zhejiang,
            "330000",
            "F-00",
            feedback(case_id, 0, "320000", CaseAction::Accept, "2024-02-09T10:00:00+08:00"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    // Out of order: NOTIFY before ACCEPT.
    let err = g
        .submit_one(
            "jiangsu",
            Partner::Jiangsu,
            "320000",
            "F-1",
            feedback(case_id, 1, "320000", CaseAction::Notify, "2024-02-09T10:00:00+08:00"),
        )
        .await
        .unwrap_err();
    assert!(err.message().contains("not allowed in state TRANSFERRED"), "{err}");
    // The course of the case; every event reaches Zhejiang in Zhejiang format.
    let steps = [
        (CaseAction::Accept, "2024-02-09T10:00:00+08:00"),
        (CaseAction::Notify, "2024-02-20T10:00:00+08:00"),
        (CaseAction::RectifyOrder, "2024-02-26T10:00:00+08:00"),
        (CaseAction::Penalty, "2024-03-20T10:00:00+08:00"),
        (CaseAction::RectifyVerified, "2024-04-20T10:00:00+08:00"),
        (CaseAction::Close, "2024-04-24T10:00:00+08:00"),
    ];
    for (n, (action, at)) in steps.iter().enumerate() {
        g.submit_one(
            "jiangsu",
            Partner::Jiangsu,
            "320000",
            &format!("F-{}", n + 10),
            feedback(case_id, n as u32 + 10, "320000", *action, at),
        )
        .await
        .unwrap_or_else(|e| panic!("{action:?}: {e}"));
        let got = drain(&g, "zhejiang", Partner::Zhejiang).await;
        assert!(
            matches!(got.as_slice(), [Record::CaseFeedback(f)] if f.event.as_ref().unwrap().action == *action as i32),
            "{action:?}: {got:?}"
        );
    }
    // A closed case is final and queued for SAMR (CZJG).
    let err = g
        .submit_one(
            "jiangsu",
            Partner::Jiangsu,
            "320000",
            "F-99",
            feedback(case_id, 99, "320000", CaseAction::Close, "2024-04-25T10:00:00+08:00"),
        )
        .await
        .unwrap_err();
    assert!(err.message().contains("final"), "{err}");
    let waiting = g.store().samr_waiting().unwrap();
    assert!(waiting.contains(&("closed_case".to_string(), case_id.to_string())), "{waiting:?}");
    g.stop().await;
}

#[tokio::test]
async fn a_case_for_a_region_without_a_partner_goes_to_samr() {
    let g = TestGateway::start().await;
    // Producer in Anhui (340100): no connected partner.
    setup(&g, sampling("ZJ-0002", "330000", "340100"), ("zhejiang", Partner::Zhejiang, "330000")).await;
    let reply =
        g.submit_one("zhejiang", Partner::Zhejiang, "330000", "R-2", result("ZJ-0002", "ZJR-0002")).await.unwrap();
    assert!(reply.warnings.iter().any(|w| w.contains("340000") && w.contains("SAMR")), "{:?}", reply.warnings);
    let waiting = g.store().samr_waiting().unwrap();
    assert_eq!(
        waiting,
        vec![
            ("spot_check_result".to_string(), "ZJ-0002".to_string()),
            ("case_forward".to_string(), "CZ-ZJ-0002".to_string())
        ]
    );
    assert!(drain(&g, "jiangsu", Partner::Jiangsu).await.is_empty(), "Jiangsu is not involved");
    g.stop().await;
}

#[tokio::test]
async fn a_case_whose_producer_is_local_is_not_transferred() {
    let g = TestGateway::start().await;
    setup(&g, sampling("JS-0003", "320000", "320583"), ("jiangsu", Partner::Jiangsu, "320000")).await;
    let reply =
        g.submit_one("jiangsu", Partner::Jiangsu, "320000", "R-3", result("JS-0003", "JSR-0003")).await.unwrap();
    assert!(reply.warnings.iter().any(|w| w.contains("kept local")), "{:?}", reply.warnings);
    assert!(drain(&g, "zhejiang", Partner::Zhejiang).await.is_empty());
    assert_eq!(g.store().samr_waiting().unwrap(), vec![("spot_check_result".to_string(), "JS-0003".to_string())]);
    // A conforming result opens nothing.
    let mut ok = result("JS-0003", "JSR-0004");
    if let Record::Inspection(i) = &mut ok {
        i.items.retain(|it| it.verdict == Verdict::Pass as i32);
        i.conclusion = Conclusion::Conforming as i32;
    }
    let reply = g.submit_one("jiangsu", Partner::Jiangsu, "320000", "R-4", ok).await.unwrap();
    assert!(reply.warnings.is_empty(), "{:?}", reply.warnings);
    g.stop().await;
}

/// Message ids of everything pending for `who` (acknowledged).
async fn drain_ids(g: &TestGateway, who: &str) -> Vec<String> {
    g.drain_deliveries(who).await.into_iter().map(|d| d.message_id).collect()
}

#[tokio::test]
async fn an_overdue_stage_notifies_both_sides_once() {
    let g = TestGateway::start().await;
    setup(&g, sampling("ZJ-0005", "330000", "320583"), ("zhejiang", Partner::Zhejiang, "330000")).await;
    g.set_time("2024-02-08T16:00:00+08:00");
    g.submit_one("zhejiang", Partner::Zhejiang, "330000", "R-5", result("ZJ-0005", "ZJR-0005")).await.unwrap();
    drain_ids(&g, "jiangsu").await;
    drain_ids(&g, "zhejiang").await;
    // Due 2024-02-21: on the due day itself nothing is overdue.
    g.set_time("2024-02-21T18:00:00+08:00");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(drain_ids(&g, "jiangsu").await.is_empty());
    // The next day: both sides are told, once.
    g.set_time("2024-02-22T09:00:00+08:00");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(drain_ids(&g, "jiangsu").await, ["CZ-ZJ-0005-OVERDUE-TRANSFERRED"]);
    assert_eq!(drain_ids(&g, "zhejiang").await, ["CZ-ZJ-0005-OVERDUE-TRANSFERRED"]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(drain_ids(&g, "jiangsu").await.is_empty(), "only once");
    assert!(drain_ids(&g, "zhejiang").await.is_empty(), "only once");
    // Late acceptance opens the next stage (10 working days → 2024-03-07); it too is watched.
    g.submit_one(
        "jiangsu",
        Partner::Jiangsu,
        "320000",
        "F-5",
        feedback("CZ-ZJ-0005", 5, "320000", CaseAction::Accept, "2024-02-22T10:00:00+08:00"),
    )
    .await
    .unwrap();
    drain_ids(&g, "zhejiang").await;
    g.set_time("2024-03-08T09:00:00+08:00");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(drain_ids(&g, "zhejiang").await, ["CZ-ZJ-0005-OVERDUE-ACCEPTED"]);
    g.stop().await;
}
