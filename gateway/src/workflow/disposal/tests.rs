//! The state machine table row by row, every refused transition, and the deadline examples of
//! `docs/domain.md` section 5 through real cases.

use super::*;
use crate::workflow::case_opening::{case_id_for, open_for_result, responsible_region};
use yrdx_proto::civil::parse_rfc3339;
use yrdx_proto::v1::{InspectionResult, SamplingRecord};

const ORIGIN: &str = "310000";
const RESPONSIBLE: &str = "320000";

const STATES: [CaseStatus; 9] = [
    CaseStatus::Unspecified,
    CaseStatus::Transferred,
    CaseStatus::Accepted,
    CaseStatus::Returned,
    CaseStatus::Notified,
    CaseStatus::Rechecking,
    CaseStatus::Rectifying,
    CaseStatus::Verified,
    CaseStatus::Closed,
];

/// The table of `docs/domain.md` section 5, written out independently of `transition`.
const TABLE: &[(CaseStatus, CaseAction, Side, CaseStatus)] = &[
    (CaseStatus::Unspecified, CaseAction::Transfer, Side::Origin, CaseStatus::Transferred),
    (CaseStatus::Transferred, CaseAction::Accept, Side::Responsible, CaseStatus::Accepted),
    (CaseStatus::Transferred, CaseAction::Return, Side::Responsible, CaseStatus::Returned),
    (CaseStatus::Accepted, CaseAction::Notify, Side::Responsible, CaseStatus::Notified),
    (CaseStatus::Notified, CaseAction::Objection, Side::Responsible, CaseStatus::Rechecking),
    (CaseStatus::Rechecking, CaseAction::RecheckPass, Side::Responsible, CaseStatus::Closed),
    (CaseStatus::Rechecking, CaseAction::RecheckFail, Side::Responsible, CaseStatus::Rectifying),
    (CaseStatus::Notified, CaseAction::RectifyOrder, Side::Responsible, CaseStatus::Rectifying),
    (CaseStatus::Rectifying, CaseAction::Penalty, Side::Responsible, CaseStatus::Rectifying),
    (CaseStatus::Rectifying, CaseAction::RectifyVerified, Side::Responsible, CaseStatus::Verified),
    (CaseStatus::Verified, CaseAction::Close, Side::Responsible, CaseStatus::Closed),
];

fn case(status: CaseStatus) -> DisposalCase {
    DisposalCase {
        case_id: "CZ-2024-000001".into(),
        origin_region: ORIGIN.into(),
        responsible_region: RESPONSIBLE.into(),
        sample_id: "JS2024WS0102-0007".into(),
        report_no: "JSZJ-2024-WS-00731".into(),
        opened_at: parse_rfc3339("2024-02-08T10:00:00+08:00"),
        status: status as i32,
        due_on: Date::from_ymd(2024, 2, 21),
        events: vec![],
        due_on_provisional: false,
    }
}

fn event(action: CaseAction, by: &str, at: &str) -> CaseEvent {
    CaseEvent {
        event_id: "FK-1".into(),
        at: parse_rfc3339(at),
        by_region: by.into(),
        action: action as i32,
        note: if action == CaseAction::Return { "非本辖区".into() } else { String::new() },
        amount: (action == CaseAction::Penalty).then_some(500_000),
    }
}

#[test]
fn every_row_of_the_table_and_nothing_else() {
    let cal = Calendar::embedded();
    let d = Deadlines::default();
    for from in STATES {
        for action in ACTIONS {
            let row = TABLE.iter().find(|(f, a, ..)| *f == from && *a == action);
            let c = case(from);
            match row {
                Some((_, _, side, to)) => {
                    let (right, wrong) = match side {
                        Side::Origin => (ORIGIN, RESPONSIBLE),
                        Side::Responsible => (RESPONSIBLE, ORIGIN),
                    };
                    let next = apply(&c, &event(action, right, "2024-03-04T10:00:00+08:00"), &cal, &d)
                        .unwrap_or_else(|e| panic!("{from:?} {action:?} by {right}: {e}"));
                    assert_eq!(next.status, *to as i32, "{from:?} {action:?}");
                    assert_eq!(next.events.len(), 1);
                    let err = apply(&c, &event(action, wrong, "2024-03-04T10:00:00+08:00"), &cal, &d).unwrap_err();
                    assert!(
                        matches!(err, TransitionError::WrongRegion { .. }),
                        "{from:?} {action:?} by {wrong}: {err}"
                    );
                    let err = apply(&c, &event(action, "330000", "2024-03-04T10:00:00+08:00"), &cal, &d).unwrap_err();
                    assert!(matches!(err, TransitionError::WrongRegion { .. }), "a third region");
                }
                None => {
                    for by in [ORIGIN, RESPONSIBLE] {
                        let err = apply(&c, &event(action, by, "2024-03-04T10:00:00+08:00"), &cal, &d).unwrap_err();
                        assert!(matches!(err, TransitionError::NotAllowed { .. }), "{from:?} {action:?}: {err}");
                        assert!(err.to_string().contains(&c.case_id));
                    }
                }
            }
        }
    }
}

#[test]
fn refused_transitions_change_nothing() {
    let cal = Calendar::embedded();
    let c = case(CaseStatus::Closed);
    let before = c.clone();
    let err =
        apply(&c, &event(CaseAction::Accept, RESPONSIBLE, "2024-03-04T10:00:00+08:00"), &cal, &Deadlines::default())
            .unwrap_err();
    assert!(err.to_string().contains("final"), "{err}");
    assert_eq!(c, before);
}

#[test]
fn return_needs_a_note_and_penalty_an_amount() {
    let cal = Calendar::embedded();
    let d = Deadlines::default();
    let mut e = event(CaseAction::Return, RESPONSIBLE, "2024-02-09T10:00:00+08:00");
    e.note.clear();
    assert!(matches!(apply(&case(CaseStatus::Transferred), &e, &cal, &d), Err(TransitionError::Incomplete { .. })));
    let mut e = event(CaseAction::Penalty, RESPONSIBLE, "2024-03-09T10:00:00+08:00");
    e.amount = None;
    assert!(matches!(apply(&case(CaseStatus::Rectifying), &e, &cal, &d), Err(TransitionError::Incomplete { .. })));
    let mut e = event(CaseAction::Accept, RESPONSIBLE, "2024-02-09T10:00:00+08:00");
    e.amount = Some(1);
    assert!(matches!(apply(&case(CaseStatus::Transferred), &e, &cal, &d), Err(TransitionError::Incomplete { .. })));
}

#[test]
fn deadline_examples_through_real_cases() {
    let cal = Calendar::embedded();
    let d = Deadlines::default();
    // Transferred Thursday 2024-02-08: due 2024-02-21.
    let new = DisposalCase { status: CaseStatus::Unspecified as i32, due_on: None, ..case(CaseStatus::Unspecified) };
    let t = apply(&new, &event(CaseAction::Transfer, ORIGIN, "2024-02-08T16:00:00+08:00"), &cal, &d).unwrap();
    assert_eq!(t.due_on, Date::from_ymd(2024, 2, 21));
    // Transferred 2024-09-27: due 2024-10-10.
    let t = apply(&new, &event(CaseAction::Transfer, ORIGIN, "2024-09-27T09:00:00+08:00"), &cal, &d).unwrap();
    assert_eq!(t.due_on, Date::from_ymd(2024, 10, 10));
    // Accepted 2025-01-24: 10 working days → 2025-02-13.
    let a = apply(
        &case(CaseStatus::Transferred),
        &event(CaseAction::Accept, RESPONSIBLE, "2025-01-24T11:00:00+08:00"),
        &cal,
        &d,
    )
    .unwrap();
    assert_eq!(a.due_on, Date::from_ymd(2025, 2, 13));
    // Notified Friday 2024-09-13: 15 calendar days → Saturday 09-28 is off → 2024-09-29.
    let n = apply(
        &case(CaseStatus::Accepted),
        &event(CaseAction::Notify, RESPONSIBLE, "2024-09-13T15:00:00+08:00"),
        &cal,
        &d,
    )
    .unwrap();
    assert_eq!(n.due_on, Date::from_ymd(2024, 9, 29));
    // The Beijing date counts: 2024-02-08 23:30 in Beijing is 15:30 UTC the same day.
    let late = apply(&new, &event(CaseAction::Transfer, ORIGIN, "2024-02-08T15:30:00Z"), &cal, &d).unwrap();
    assert_eq!(late.due_on, Date::from_ymd(2024, 2, 21));
    // A PENALTY keeps the rectification due date.
    let mut r = case(CaseStatus::Rectifying);
    r.due_on = Date::from_ymd(2024, 5, 6);
    let p = apply(&r, &event(CaseAction::Penalty, RESPONSIBLE, "2024-03-20T10:00:00+08:00"), &cal, &d).unwrap();
    assert_eq!(p.due_on, Date::from_ymd(2024, 5, 6));
    // Final states have no due date.
    let c = apply(
        &case(CaseStatus::Verified),
        &event(CaseAction::Close, RESPONSIBLE, "2024-05-06T10:00:00+08:00"),
        &cal,
        &d,
    )
    .unwrap();
    assert_eq!(c.due_on, None);
}

#[test]
fn an_uncovered_year_gives_a_provisional_due_date_never_a_refusal() {
    let cal = Calendar::embedded();
    // Accepted Monday 2027-03-01, 10 working days counted Monday–Friday: 2027-03-15.
    let c = apply(
        &case(CaseStatus::Transferred),
        &event(CaseAction::Accept, RESPONSIBLE, "2027-03-01T10:00:00+08:00"),
        &cal,
        &Deadlines::default(),
    )
    .unwrap();
    assert_eq!(c.due_on, Date::from_ymd(2027, 3, 15));
    assert!(c.due_on_provisional);
    // A PENALTY keeps the stage, its date and its flag; a final state has neither.
    let mut rectifying = c.clone();
    rectifying.status = CaseStatus::Rectifying as i32;
    let p = apply(
        &rectifying,
        &event(CaseAction::Penalty, RESPONSIBLE, "2027-03-02T10:00:00+08:00"),
        &cal,
        &Deadlines::default(),
    )
    .unwrap();
    assert!(p.due_on_provisional);
    assert_eq!(p.due_on, c.due_on);
    // Settling it: with 2027 covered (03-08 a holiday, say) the date moves and is no longer provisional.
    let with_2027 = format!(
        "{}\n[[year]]\nyear = 2027\nholidays = [\"2027-03-08\"]\nweekend_workdays = []\n",
        yrdx_proto::calendar::DEFAULT_CALENDAR_TOML
    );
    let extended = Calendar::from_toml(&with_2027).unwrap();
    let settled = settle_due_date(&c, &extended, &Deadlines::default()).expect("changes");
    assert_eq!(settled.due_on, Date::from_ymd(2027, 3, 16));
    assert!(!settled.due_on_provisional);
    assert_eq!(settle_due_date(&settled, &extended, &Deadlines::default()), None, "settled stays");
    // With the same short calendar nothing changes.
    assert_eq!(settle_due_date(&c, &cal, &Deadlines::default()), None);
}

#[test]
fn overdue_and_responsible_region() {
    let c = case(CaseStatus::Transferred);
    assert!(!is_overdue(&c, &Date::from_ymd(2024, 2, 21).unwrap()), "due on the day itself is not overdue");
    assert!(is_overdue(&c, &Date::from_ymd(2024, 2, 22).unwrap()));
    assert!(!is_overdue(&case(CaseStatus::Closed), &Date::from_ymd(2025, 1, 1).unwrap()));
    assert_eq!(responsible_region(Some("320583"), "330106"), "320000");
    assert_eq!(responsible_region(None, "330106"), "330000");
}

#[test]
fn a_nonconforming_result_opens_a_transferred_case() {
    let sample = SamplingRecord {
        sample_id: "ZJ2024WS0102-0007".into(),
        sampling_region: "330000".into(),
        seller: Some(yrdx_proto::v1::Party { region: "330106".into(), ..Default::default() }),
        producer: Some(yrdx_proto::v1::Party { region: "320583".into(), ..Default::default() }),
        ..Default::default()
    };
    let result = InspectionResult { report_no: "ZJR-0001".into(), ..Default::default() };
    let now = parse_rfc3339("2024-02-08T16:00:00+08:00").unwrap();
    let c = open_for_result(&sample, &result, now, &Calendar::embedded(), &Deadlines::default()).unwrap();
    assert_eq!(c.case_id, case_id_for("ZJ2024WS0102-0007"));
    assert_eq!(c.case_id, "CZ-ZJ2024WS0102-0007");
    assert_eq!((c.origin_region.as_str(), c.responsible_region.as_str()), ("330000", "320000"));
    assert_eq!(c.status, CaseStatus::Transferred as i32);
    assert_eq!(c.due_on, Date::from_ymd(2024, 2, 21));
    assert_eq!(c.events.len(), 1);
    assert_eq!(c.events[0].by_region, "330000");
    // Without a producer the seller's province is responsible; the id keeps at most 40 characters.
    let long = SamplingRecord { producer: None, sample_id: "A".repeat(40), ..sample };
    let c = open_for_result(&long, &result, now, &Calendar::embedded(), &Deadlines::default()).unwrap();
    assert_eq!(c.responsible_region, "330000");
    assert_eq!(c.case_id.len(), 40);
}
