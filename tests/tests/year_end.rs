//! Exactness end to end (issue 21): the calendar's year end (provisional due dates, settled and
//! sent again when the calendar is extended, across a restart), one clock for deliveries too,
//! retry-safe Records API calls, and Zhejiang envelopes in any order through Submit.

use std::time::Duration;
use yrdx_adapters::{Partner, Record};
use yrdx_proto::v1::records_submit_request::Record as R;
use yrdx_proto::v1::*;
use yrdx_proto::Date;
use yrdx_tests::records::{example_plan as plan, example_result as result, example_sampling_in};
use yrdx_tests::{document, temp_dir, TestGateway};

/// The example sampling taken by Zhejiang of a product made in Suzhou (Jiangsu).
fn sampling(id: &str) -> Record {
    example_sampling_in(id, "330000", "320583")
}

async fn submit(g: &TestGateway, who: &str, format: Partner, region: &str, id: &str, r: Record) -> SubmitReply {
    g.submit_one(who, format, region, id, r).await.unwrap_or_else(|e| panic!("{id}: {e}"))
}

/// Everything waiting for `who`: (message id, records), acknowledged.
async fn drain(g: &TestGateway, who: &str, format: Partner) -> Vec<(String, Vec<Record>)> {
    g.drain_messages(who, format).await
}

async fn case(g: &TestGateway, id: &str) -> DisposalCase {
    let reply = g
        .records("shanghai")
        .await
        .get_record(GetRecordRequest { kind: "case_transfer".into(), id: id.into() })
        .await
        .unwrap()
        .into_inner();
    match reply.record {
        Some(get_record_reply::Record::DisposalCase(c)) => c,
        other => panic!("{other:?}"),
    }
}

const ONLY_2024: &str = "[[year]]\nyear = 2024\nholidays = [\"2024-01-01\", \"2024-02-10..2024-02-17\", \
    \"2024-04-04..2024-04-06\", \"2024-05-01..2024-05-05\", \"2024-06-10\", \"2024-09-15..2024-09-17\", \
    \"2024-10-01..2024-10-07\"]\nweekend_workdays = [\"2024-02-04\", \"2024-02-18\", \"2024-04-07\", \
    \"2024-04-28\", \"2024-05-11\", \"2024-09-14\", \"2024-09-29\", \"2024-10-12\"]\n";

#[tokio::test]
async fn a_due_date_past_the_calendar_is_provisional_then_settled_and_resent_after_a_restart() {
    let cal_dir = temp_dir("calendar");
    let cal = cal_dir.join("calendar.toml");
    std::fs::write(&cal, ONLY_2024).unwrap();
    let cal_line = format!("calendar_file = \"{}\"\n", cal.display());
    let mut g = TestGateway::start_with(|t| format!("{cal_line}{t}")).await;
    g.set_time("2024-12-27T16:00:00+08:00");
    submit(&g, "shanghai", Partner::Canonical, "310000", "PLAN-1", plan()).await;
    submit(&g, "zhejiang", Partner::Zhejiang, "330000", "S-1", sampling("ZJ-0901")).await;
    for (who, f) in [("shanghai", Partner::Canonical), ("jiangsu", Partner::Jiangsu), ("zhejiang", Partner::Zhejiang)] {
        drain(&g, who, f).await;
    }
    // Friday 2024-12-27 + 5 working days needs 2025, which this calendar lacks: counted
    // Monday–Friday (12-30, 12-31, 01-01, 01-02, 01-03), provisional — and never a refusal.
    let reply = submit(&g, "zhejiang", Partner::Zhejiang, "330000", "R-1", result("ZJ-0901", "ZJR-0901")).await;
    let case_id = "CZ-ZJ-0901";
    assert!(
        reply.warnings.iter().any(|w| w.contains(case_id) && w.contains("2025-01-03") && w.contains("provisional")),
        "{:?}",
        reply.warnings
    );
    // Each partner format gets the date itself (no place for the mark; the loss is reported).
    assert!(reply.warnings.iter().any(|w| w.contains("due_on_provisional")), "{:?}", reply.warnings);
    let at_jiangsu = drain(&g, "jiangsu", Partner::Jiangsu).await;
    match at_jiangsu.as_slice() {
        [(_, records)] => match records.as_slice() {
            [Record::CaseTransfer(c)] => assert_eq!(c.due_on, Date::from_ymd(2025, 1, 3)),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
    drain(&g, "zhejiang", Partner::Zhejiang).await;
    // Canonical records and the Records API carry the mark; operators see it.
    let held = case(&g, case_id).await;
    assert_eq!(held.due_on, Date::from_ymd(2025, 1, 3));
    assert!(held.due_on_provisional);
    let status = g.admin("ops").await.calendar_status(CalendarStatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.last_day, Date::from_ymd(2024, 12, 31));
    assert_eq!(status.days_left, 4);
    assert!(status.warning.contains("ends on 2024-12-31"), "{}", status.warning);
    assert_eq!(status.provisional_cases, vec![case_id.to_string()]);

    // A restart on the same short calendar changes nothing and sends nothing.
    g.restart().await;
    assert!(case(&g, case_id).await.due_on_provisional);
    assert!(drain(&g, "jiangsu", Partner::Jiangsu).await.is_empty());

    // The operator extends the calendar (2025-01-01 is a holiday): after the restart the date is
    // settled at 2025-01-06 and the case goes again to both sides, same case id.
    std::fs::write(&cal, yrdx_proto::calendar::DEFAULT_CALENDAR_TOML).unwrap();
    g.restart().await;
    let held = case(&g, case_id).await;
    assert_eq!(held.due_on, Date::from_ymd(2025, 1, 6));
    assert!(!held.due_on_provisional);
    for (who, format) in [("jiangsu", Partner::Jiangsu), ("zhejiang", Partner::Zhejiang)] {
        let got = drain(&g, who, format).await;
        match got.as_slice() {
            [(message_id, records)] => {
                assert_eq!(message_id, "CZ-ZJ-0901-DUE-20250106", "{who}");
                match records.as_slice() {
                    [Record::CaseTransfer(c)] => {
                        assert_eq!(c.case_id, case_id);
                        assert_eq!(c.due_on, Date::from_ymd(2025, 1, 6), "{who}");
                    }
                    other => panic!("{who}: {other:?}"),
                }
            }
            other => panic!("{who}: {other:?}"),
        }
    }
    let status = g.admin("ops").await.calendar_status(CalendarStatusRequest {}).await.unwrap().into_inner();
    assert!(status.provisional_cases.is_empty(), "{:?}", status.provisional_cases);
    // Once settled, another restart sends nothing again.
    g.restart().await;
    assert!(drain(&g, "jiangsu", Partner::Jiangsu).await.is_empty());
    g.stop().await;
    let _ = std::fs::remove_dir_all(cal_dir);
}

#[tokio::test]
async fn the_visibility_timeout_runs_on_the_gateways_clock() {
    let g = TestGateway::start().await;
    submit(&g, "shanghai", Partner::Canonical, "310000", "PLAN-1", plan()).await;
    let mut client = g.client("jiangsu").await;
    let mut stream = client.receive(ReceiveRequest { max_unacked: 10 }).await.unwrap().into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.attempt, 1);
    // Not acknowledged; the gateway's clock moves past the 60 s visibility timeout: the same
    // stream gets it again at once (on the wall clock this would take a minute).
    g.set_time("2024-03-15T10:01:05+08:00");
    let again =
        tokio::time::timeout(Duration::from_secs(5), stream.message()).await.expect("redelivered").unwrap().unwrap();
    assert_eq!(again.delivery_id, first.delivery_id);
    assert_eq!(again.attempt, 2);
    client.ack(AckRequest { delivery_ids: vec![again.delivery_id] }).await.unwrap();
    g.stop().await;
}

#[tokio::test]
async fn retrying_shanghais_records_calls_gets_the_first_reply() {
    let g = TestGateway::start().await;
    let mut shanghai = g.records("shanghai").await;
    let Record::Plan(p) = plan() else { unreachable!() };
    let call = RecordsSubmitRequest { message_id: "SH-RETRY-1".into(), record: Some(R::Plan(p.clone())) };
    let first = shanghai.submit(call.clone()).await.unwrap().into_inner();
    assert!(!first.duplicate);
    // The same call, retried later (after a timeout, say): the first reply, marked duplicate.
    g.set_time("2024-03-15T10:00:07+08:00");
    let again = shanghai.submit(call).await.unwrap_or_else(|e| panic!("retry refused: {e}")).into_inner();
    assert!(again.duplicate);
    assert_eq!(again.records, first.records);
    // Another record under the same message id is still refused.
    let mut other = p;
    other.title = "另一个计划".into();
    let err = shanghai
        .submit(RecordsSubmitRequest { message_id: "SH-RETRY-1".into(), record: Some(R::Plan(other)) })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists, "{err}");

    // ActOnCase likewise: a case from Zhejiang's nonconforming result, Shanghai... is not a side,
    // so use a case whose responsible region is Shanghai.
    submit(&g, "zhejiang", Partner::Zhejiang, "330000", "S-9", {
        let mut s = sampling("ZJ-0902");
        if let Record::Sampling(s) = &mut s {
            s.producer.as_mut().unwrap().region = "310115".into();
        }
        s
    })
    .await;
    submit(&g, "zhejiang", Partner::Zhejiang, "330000", "R-9", result("ZJ-0902", "ZJR-0902")).await;
    let act = ActOnCaseRequest {
        message_id: "SH-ACT-1".into(),
        feedback: Some(CaseFeedback {
            case_id: "CZ-ZJ-0902".into(),
            event: Some(CaseEvent {
                event_id: "SH-FK-1".into(),
                at: yrdx_proto::civil::parse_rfc3339("2024-03-15T11:00:00+08:00"),
                by_region: "310000".into(),
                action: CaseAction::Accept as i32,
                note: String::new(),
                amount: None,
            }),
        }),
    };
    let first = shanghai.act_on_case(act.clone()).await.unwrap().into_inner();
    assert_eq!(first.status, CaseStatus::Accepted as i32);
    g.set_time("2024-03-15T11:00:09+08:00");
    let again = shanghai.act_on_case(act).await.unwrap_or_else(|e| panic!("retry refused: {e}")).into_inner();
    assert_eq!(again, first);
    g.stop().await;
}

#[tokio::test]
async fn a_zhejiang_document_with_records_before_its_header_is_accepted() {
    let g = TestGateway::start().await;
    submit(&g, "shanghai", Partner::Canonical, "310000", "PLAN-1", plan()).await;
    let xml = String::from_utf8(document(Partner::Zhejiang, "330000", "S-SWAP", &[sampling("ZJ-0903")])).unwrap();
    let (start, end) = (xml.find("<Header>").unwrap(), xml.find("</Header>").unwrap() + "</Header>".len());
    let header = &xml[start..end];
    let without = format!("{}{}", &xml[..start], &xml[end..]);
    let close = without.find("</Records>").unwrap() + "</Records>".len();
    let swapped = format!("{}{header}{}", &without[..close], &without[close..]);
    let reply = g
        .client("zhejiang")
        .await
        .submit(SubmitRequest { document: swapped.into_bytes() })
        .await
        .unwrap_or_else(|e| panic!("refused: {e}"))
        .into_inner();
    assert_eq!(reply.message_id, "S-SWAP");
    assert_eq!(reply.records[0].id, "ZJ-0903");
    g.stop().await;
}
