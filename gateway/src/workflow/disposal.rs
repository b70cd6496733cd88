//! The disposal-case state machine and its stage due dates in working days (`docs/domain.md`
//! section 5; clauses `domain.5.state-machine`, `domain.5.deadlines`). Pure: the gateway stores
//! cases and calls [`apply`]; every refused transition changes nothing. The case a
//! nonconforming result opens is [`super::case_opening`]'s; overdue notices are
//! [`super::overdue`]'s.

use yrdx_proto::calendar::{Calendar, DueDate};
use yrdx_proto::civil::BeijingTime;
use yrdx_proto::v1::{CaseAction, CaseEvent, CaseStatus, DisposalCase};
use yrdx_proto::Date;
use yrdx_proto::Timestamp;

/// The TRANSFER event that opens a case, by the origin region.
pub fn transfer_event(case_id: &str, at: Timestamp, by: &str) -> CaseEvent {
    CaseEvent {
        event_id: format!("{case_id}-T"),
        at: Some(at),
        by_region: by.to_string(),
        action: CaseAction::Transfer as i32,
        note: String::new(),
        amount: None,
    }
}

/// Which side of the case may take an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The origin (sampling) region.
    Origin,
    /// The responsible region.
    Responsible,
}

// The stage durations are configuration, so that the shared state can hold them without
// importing the workflow (which imports the state for its timers).
pub use crate::config::{Deadlines, Due};

/// The due date of a stage opened on `opened` (a Beijing date): provisional when it needs a year
/// the calendar does not cover (`docs/domain.md` section 5: never a refusal, never a silent guess).
pub fn due_date(calendar: &Calendar, opened: &Date, due: Due) -> DueDate {
    match due {
        Due::WorkingDays(n) => calendar.add_working_days(opened, n),
        Due::CalendarDays(n) => calendar.add_calendar_days(opened, n),
    }
}

/// The event that opened the case's current stage: the last one that changed its status (a
/// PENALTY keeps the rectification stage).
pub fn stage_opening_event(case: &DisposalCase) -> Option<&CaseEvent> {
    case.events.iter().rev().find(|e| e.action != CaseAction::Penalty as i32)
}

/// The case with its current stage's due date computed again by `calendar` (after the calendar
/// was extended), or `None` when nothing would change. Only provisional due dates are
/// recomputed: a settled one was counted on known days, which a newer calendar file does not
/// move unless the operator corrected a covered year — and then the cases that were told a date
/// keep it (a correction of history is the operator's to announce).
pub fn settle_due_date(case: &DisposalCase, calendar: &Calendar, deadlines: &Deadlines) -> Option<DisposalCase> {
    if !case.due_on_provisional {
        return None;
    }
    let status = CaseStatus::try_from(case.status).ok()?;
    let due = deadlines.for_status(status)?;
    let opened = stage_opening_event(case)?.at.as_ref()?;
    let again = due_date(calendar, &BeijingTime::of(opened).date, due);
    if Some(again.date) == case.due_on && again.provisional {
        return None;
    }
    let mut next = case.clone();
    next.due_on = Some(again.date);
    next.due_on_provisional = again.provisional;
    Some(next)
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// Not allowed from the current state.
    #[error("case {case_id}: {action} is not allowed in state {status} (allowed: {allowed})")]
    NotAllowed {
        /// The case.
        case_id: String,
        /// The action tried.
        action: String,
        /// The current state.
        status: String,
        /// The actions allowed now.
        allowed: String,
    },
    /// The wrong region acted.
    #[error("case {case_id}: only the {side} region {region} may {action}; {by} may not")]
    WrongRegion {
        /// The case.
        case_id: String,
        /// The action tried.
        action: String,
        /// Which side may.
        side: &'static str,
        /// That side's region.
        region: String,
        /// Who tried.
        by: String,
    },
    /// A RETURN without its note, or a PENALTY without its amount.
    #[error("case {case_id}: {message}")]
    Incomplete {
        /// The case.
        case_id: String,
        /// What is missing.
        message: String,
    },
}

/// The transition table: (from, action) → (who, to).
pub fn transition(from: CaseStatus, action: CaseAction) -> Option<(Side, CaseStatus)> {
    use CaseAction as A;
    use CaseStatus as S;
    Some(match (from, action) {
        (S::Unspecified, A::Transfer) => (Side::Origin, S::Transferred),
        (S::Transferred, A::Accept) => (Side::Responsible, S::Accepted),
        (S::Transferred, A::Return) => (Side::Responsible, S::Returned),
        (S::Accepted, A::Notify) => (Side::Responsible, S::Notified),
        (S::Notified, A::Objection) => (Side::Responsible, S::Rechecking),
        (S::Rechecking, A::RecheckPass) => (Side::Responsible, S::Closed),
        (S::Rechecking, A::RecheckFail) => (Side::Responsible, S::Rectifying),
        (S::Notified, A::RectifyOrder) => (Side::Responsible, S::Rectifying),
        (S::Rectifying, A::Penalty) => (Side::Responsible, S::Rectifying),
        (S::Rectifying, A::RectifyVerified) => (Side::Responsible, S::Verified),
        (S::Verified, A::Close) => (Side::Responsible, S::Closed),
        _ => return None,
    })
}

const ACTIONS: [CaseAction; 11] = [
    CaseAction::Transfer,
    CaseAction::Accept,
    CaseAction::Return,
    CaseAction::Notify,
    CaseAction::Objection,
    CaseAction::RecheckPass,
    CaseAction::RecheckFail,
    CaseAction::RectifyOrder,
    CaseAction::RectifyVerified,
    CaseAction::Penalty,
    CaseAction::Close,
];

fn name<T: AsRef<str>>(s: T) -> String {
    s.as_ref().split('_').skip(2).collect::<Vec<_>>().join("_")
}

/// Applies an event to a case: checks the state, the acting region and the event's own rules,
/// then returns the new case (status, due date of the new stage, event appended). On error the
/// case is untouched.
pub fn apply(
    case: &DisposalCase,
    event: &CaseEvent,
    calendar: &Calendar,
    deadlines: &Deadlines,
) -> Result<DisposalCase, TransitionError> {
    let status = CaseStatus::try_from(case.status).unwrap_or(CaseStatus::Unspecified);
    let action = CaseAction::try_from(event.action).unwrap_or(CaseAction::Unspecified);
    let action_name = name(action.as_str_name());
    let Some((side, to)) = transition(status, action) else {
        let allowed: Vec<String> =
            ACTIONS.iter().filter(|a| transition(status, **a).is_some()).map(|a| name(a.as_str_name())).collect();
        return Err(TransitionError::NotAllowed {
            case_id: case.case_id.clone(),
            action: action_name,
            status: if status == CaseStatus::Unspecified { "(new)".into() } else { name(status.as_str_name()) },
            allowed: if allowed.is_empty() { "none: the case is final".into() } else { allowed.join(", ") },
        });
    };
    let (side_name, region) = match side {
        Side::Origin => ("origin", &case.origin_region),
        Side::Responsible => ("responsible", &case.responsible_region),
    };
    if &event.by_region != region {
        return Err(TransitionError::WrongRegion {
            case_id: case.case_id.clone(),
            action: action_name,
            side: side_name,
            region: region.clone(),
            by: event.by_region.clone(),
        });
    }
    if action == CaseAction::Return && event.note.is_empty() {
        return Err(TransitionError::Incomplete {
            case_id: case.case_id.clone(),
            message: "RETURN requires a note (why it is not our jurisdiction)".into(),
        });
    }
    if (action == CaseAction::Penalty) != event.amount.is_some() {
        let message = if action == CaseAction::Penalty {
            "PENALTY requires an amount"
        } else {
            "an amount is only allowed on PENALTY"
        };
        return Err(TransitionError::Incomplete { case_id: case.case_id.clone(), message: message.into() });
    }
    let mut next = case.clone();
    next.events.push(event.clone());
    next.status = to as i32;
    // A PENALTY keeps the rectification stage and its due date.
    if to != status {
        let due = match (deadlines.for_status(to), &event.at) {
            (Some(due), Some(at)) => Some(due_date(calendar, &BeijingTime::of(at).date, due)),
            _ => None,
        };
        next.due_on = due.map(|d| d.date);
        next.due_on_provisional = due.is_some_and(|d| d.provisional);
    }
    Ok(next)
}

/// The stages a case can be open in, in the state machine's order (the console and the metrics
/// count open and overdue cases by these).
pub const OPEN_STAGES: [CaseStatus; 6] = [
    CaseStatus::Transferred,
    CaseStatus::Accepted,
    CaseStatus::Notified,
    CaseStatus::Rechecking,
    CaseStatus::Rectifying,
    CaseStatus::Verified,
];

/// A status as its protobuf name without the prefix (`TRANSFERRED`): the console's words and the
/// metrics' `stage` label.
pub fn status_label(status: i32) -> String {
    CaseStatus::try_from(status)
        .unwrap_or(CaseStatus::Unspecified)
        .as_str_name()
        .trim_start_matches("CASE_STATUS_")
        .to_string()
}

/// Whether the current stage is overdue on `today` (a Beijing date).
pub fn is_overdue(case: &DisposalCase, today: &Date) -> bool {
    let status = CaseStatus::try_from(case.status).unwrap_or(CaseStatus::Unspecified);
    !yrdx_proto::validate::is_final(status) && case.due_on.as_ref().is_some_and(|d| d.to_days() < today.to_days())
}

#[cfg(test)]
mod tests;
