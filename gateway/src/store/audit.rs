//! What both backends share about the audit chain: how an entry follows the last one, how
//! entries and heads are kept (their JSON), and which events a store change records.

use super::{PackageState, StoreError};
use yrdx_evidence::{AuditEntry, AuditEvent, SamrPackageAction, SignedHead};

/// The entry after `prev` (the first entry when there is none).
pub(crate) fn next_entry(prev: Option<&AuditEntry>, at_ms: i64, event: AuditEvent) -> Result<AuditEntry, StoreError> {
    match prev {
        None => Ok(AuditEntry::first(at_ms, event)),
        Some(p) => p.next(at_ms, event).map_err(|e| StoreError::Corrupt {
            what: format!("audit entry after {}", p.position),
            detail: e.to_string(),
        }),
    }
}

/// An entry as the store keeps it.
pub(crate) fn entry_json(entry: &AuditEntry) -> Result<String, StoreError> {
    serde_json::to_string(entry)
        .map_err(|e| StoreError::Corrupt { what: format!("audit entry {}", entry.position), detail: e.to_string() })
}

/// An entry read back.
pub(crate) fn parse_entry(json: &str) -> Result<AuditEntry, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt { what: "an audit entry".into(), detail: e.to_string() })
}

/// A signed head as the store keeps it.
pub(crate) fn head_json(head: &SignedHead) -> Result<String, StoreError> {
    serde_json::to_string(head)
        .map_err(|e| StoreError::Corrupt { what: format!("audit head {}", head.head.position), detail: e.to_string() })
}

/// A signed head read back.
pub(crate) fn parse_head(json: &str) -> Result<SignedHead, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt { what: "an audit head".into(), detail: e.to_string() })
}

/// The time of entries whose change carries none (acknowledgements, SAMR attempts, resends).
pub(crate) fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis().min(i64::MAX as u128) as i64)
        .unwrap_or(0)
}

/// An overdue notice of a case's stage.
pub(crate) fn overdue_event(case_id: &str, status: i32) -> AuditEvent {
    let stage = yrdx_proto::v1::CaseStatus::try_from(status)
        .map(|s| s.as_str_name().trim_start_matches("CASE_STATUS_").to_string())
        .unwrap_or_else(|_| status.to_string());
    AuditEvent::CaseEvent { case_id: case_id.to_string(), event: format!("overdue notice ({stage})") }
}

/// What an attempt to push a package records: it was pushed, and SAMR's receipt or parking.
pub(crate) fn attempt_events(number: &str, state: PackageState) -> Vec<AuditEvent> {
    let event = |action| AuditEvent::SamrPackage { package_id: number.to_string(), action };
    let mut events = vec![event(SamrPackageAction::Pushed)];
    match state {
        PackageState::Accepted => events.push(event(SamrPackageAction::Receipted)),
        PackageState::Parked => events.push(event(SamrPackageAction::Parked)),
        PackageState::Pending => {}
    }
    events
}

/// An operator's resend of a parked package.
pub(crate) fn resend_events(number: &str, operator: &str) -> Vec<AuditEvent> {
    vec![
        AuditEvent::OperatorAction { operator: operator.to_string(), action: format!("resend package {number}") },
        AuditEvent::SamrPackage { package_id: number.to_string(), action: SamrPackageAction::Resent },
    ]
}

/// What a submission records: its acceptance, then an event for each disposal case it stores
/// (opened, transferred, or moved on by a feedback), in record order.
pub(crate) fn submission_events(s: &super::Submission, document_sm3: yrdx_evidence::Sm3Digest) -> Vec<AuditEvent> {
    let mut events = vec![AuditEvent::SubmissionAccepted {
        sender: s.sender.clone(),
        message_id: s.message_id.clone(),
        document_sm3,
    }];
    for r in s.records.iter().filter(|r| r.kind == yrdx_adapters::RecordKind::CaseTransfer) {
        // As the case's JSON names it: no name for the unset status.
        let status = match &r.record {
            yrdx_adapters::Record::CaseTransfer(c) if c.status != 0 => yrdx_proto::v1::CaseStatus::try_from(c.status)
                .map(|x| x.as_str_name().trim_start_matches("CASE_STATUS_").to_string())
                .unwrap_or_default(),
            _ => String::new(),
        };
        events.push(AuditEvent::CaseEvent {
            case_id: r.id.clone(),
            event: format!("stored by message {} (status {status})", s.message_id),
        });
    }
    events
}
