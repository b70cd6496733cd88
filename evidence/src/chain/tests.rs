use super::*;
use crate::DEFAULT_DISTINGUISHING_ID;
use std::collections::HashMap;

const T0: i64 = 1_796_130_000_000;

/// A chain of eight entries (three submissions among them), its stored documents, a head signed
/// every three entries, and the key.
struct Fixture {
    entries: Vec<AuditEntry>,
    heads: Vec<SignedHead>,
    documents: HashMap<(String, String), Vec<u8>>,
    key: GatewaySigningKey,
}

fn submission(sender: &str, message_id: &str, document: &[u8]) -> AuditEvent {
    AuditEvent::SubmissionAccepted {
        sender: sender.into(),
        message_id: message_id.into(),
        document_sm3: Sm3Digest::of(document),
    }
}

fn fixture() -> Fixture {
    let key = GatewaySigningKey::generate(DEFAULT_DISTINGUISHING_ID).unwrap();
    let mut documents = HashMap::new();
    let mut events = Vec::new();
    for (sender, id, doc) in [
        ("320000", "JS-1", &b"{\"doc\":1}"[..]),
        ("330000", "ZJ-1", b"<doc>2</doc>"),
        ("110000", "BJ-1", b"{\"doc\":3}"),
    ] {
        documents.insert((sender.to_string(), id.to_string()), doc.to_vec());
        events.push(submission(sender, id, doc));
    }
    events.insert(
        1,
        AuditEvent::DeliveryHandedOut {
            delivery_id: "d-1".into(),
            recipient: "330000".into(),
            message_id: "JS-1".into(),
        },
    );
    events.insert(2, AuditEvent::DeliveryAcknowledged { delivery_id: "d-1".into(), recipient: "330000".into() });
    events.push(AuditEvent::CaseEvent { case_id: "CASE-1".into(), event: "opened\nfor result R-1".into() });
    events.push(AuditEvent::SamrPackage { package_id: "P-20261201-0001".into(), action: SamrPackageAction::Parked });
    events.push(AuditEvent::OperatorAction {
        operator: "urn:yrdx:operator:ops".into(),
        action: "resend P-20261201-0001".into(),
    });
    let mut entries: Vec<AuditEntry> = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        let at = T0 + i as i64 * 1000;
        let entry = match entries.last() {
            None => AuditEntry::first(at, event),
            Some(prev) => prev.next(at, event).unwrap(),
        };
        entries.push(entry);
    }
    let heads = entries
        .iter()
        .filter(|e| e.position % 3 == 2)
        .map(|e| ChainHead::of(e, e.at_ms + 10).sign(&key).unwrap())
        .collect();
    Fixture { entries, heads, documents, key }
}

impl Fixture {
    fn verify(&self) -> ChainReport {
        let documents = &self.documents;
        verify_chain(self.entries.clone(), &self.heads, &self.key.public_key(), |sender, id| {
            documents.get(&(sender.to_string(), id.to_string())).map(|d| Sm3Digest::of(d))
        })
    }
}

#[test]
fn a_clean_chain_verifies() {
    let f = fixture();
    assert_eq!(f.entries.len(), 8);
    assert_eq!(f.heads.len(), 2);
    let report = f.verify();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.entries_verified, 8);
    assert_eq!(report.heads_verified, 2);
    assert_eq!(report.last_position, Some(7));
    assert_eq!(report.last_hash, Some(f.entries[7].hash));
    assert_eq!(report.last_signed_position, Some(5));
    assert_eq!(report.unsigned_entries(), 2);
    assert!(report.to_string().starts_with("verified (8 entries and 2 signed heads"), "{report}");
    // Each entry links to the one before.
    assert!(f.entries.windows(2).all(|w| w[1].prev_hash == w[0].hash));
    assert_eq!(f.entries[0].prev_hash, Sm3Digest::GENESIS);
}

#[test]
fn an_altered_stored_document_is_named() {
    let mut f = fixture();
    f.documents.insert(("330000".into(), "ZJ-1".into()), b"<doc>two</doc>".to_vec());
    let report = f.verify();
    let fault = report.fault.clone().unwrap();
    assert_eq!(fault.kind(), "document altered");
    assert_eq!(fault.position(), 3);
    match &fault {
        ChainFault::DocumentAltered { sender, message_id, recorded, stored, .. } => {
            assert_eq!((sender.as_str(), message_id.as_str()), ("330000", "ZJ-1"));
            assert_eq!(*recorded, Sm3Digest::of(b"<doc>2</doc>"));
            assert_eq!(*stored, Sm3Digest::of(b"<doc>two</doc>"));
        }
        other => panic!("{other}"),
    }
    assert_eq!(report.entries_verified, 3, "entries before it verified");
    assert!(report.to_string().contains("position 3: document altered: the stored document of 330000 message ZJ-1"));

    f.documents.remove(&("330000".to_string(), "ZJ-1".to_string()));
    assert_eq!(f.verify().fault.unwrap().kind(), "document missing");
}

#[test]
fn a_deleted_entry_is_named() {
    let mut f = fixture();
    f.entries.remove(4);
    let fault = f.verify().fault.unwrap();
    assert_eq!(fault, ChainFault::EntryDeleted { position: 4, found: Some(5) });
    assert!(fault.to_string().contains("entry deleted"), "{fault}");

    // Deleted and the later entries renumbered to hide the gap: the link names it.
    let mut f = fixture();
    f.entries.remove(4);
    for e in &mut f.entries[4..] {
        e.position -= 1;
    }
    assert_eq!(f.verify().fault.unwrap(), ChainFault::EntryDeleted { position: 4, found: Some(4) });

    // The last entries deleted: the signed head at position 5 is past the chain's end.
    let mut f = fixture();
    f.entries.truncate(4);
    let report = f.verify();
    assert_eq!(report.fault.clone().unwrap(), ChainFault::EntryDeleted { position: 4, found: None });
    assert_eq!(report.entries_verified, 4);
}

#[test]
fn reordered_entries_are_named() {
    let mut f = fixture();
    f.entries.swap(3, 4);
    let fault = f.verify().fault.unwrap();
    assert_eq!(fault, ChainFault::EntriesReordered { position: 3, found: 4 });
    assert_eq!(fault.kind(), "entries reordered");

    // Contents swapped between two stored rows, their positions left in place.
    let mut f = fixture();
    let (a, b) = (f.entries[3].clone(), f.entries[4].clone());
    f.entries[3] = AuditEntry { position: 3, ..b };
    f.entries[4] = AuditEntry { position: 4, ..a };
    assert_eq!(f.verify().fault.unwrap(), ChainFault::EntriesReordered { position: 3, found: 3 });
}

#[test]
fn an_inserted_entry_is_named() {
    // A forged entry at position 4, correctly hashed after entry 3, before the real one.
    let mut f = fixture();
    let action = AuditEvent::OperatorAction { operator: "urn:yrdx:operator:ops".into(), action: "forged".into() };
    let forged = AuditEntry::new(4, T0, action, f.entries[3].hash);
    f.entries.insert(4, forged.clone());
    assert_eq!(f.verify().fault.unwrap(), ChainFault::EntryInserted { position: 4 });

    // The same with the later entries renumbered to make room: the chain forks after 3.
    let mut f = fixture();
    for e in &mut f.entries[4..] {
        e.position += 1;
    }
    f.entries.insert(4, forged);
    let fault = f.verify().fault.unwrap();
    assert_eq!(fault, ChainFault::EntryInserted { position: 4 });
    assert!(fault.to_string().contains("entry inserted"), "{fault}");
}

#[test]
fn an_altered_entry_and_a_rewritten_chain_are_named() {
    let mut f = fixture();
    let AuditEvent::SubmissionAccepted { message_id, .. } = &mut f.entries[4].event else {
        panic!("position 4 is a submission");
    };
    *message_id = "BJ-2".into();
    let fault = f.verify().fault.unwrap();
    assert_eq!(fault.kind(), "entry altered");
    assert_eq!(fault.position(), 4);

    // Altered and every hash recomputed: only the signed head can tell.
    let mut f = fixture();
    f.entries[4].at_ms += 1;
    let mut prev = f.entries[3].hash;
    for e in &mut f.entries[4..] {
        *e = AuditEntry::new(e.position, e.at_ms, e.event.clone(), prev);
        prev = e.hash;
    }
    let fault = f.verify().fault.unwrap();
    assert_eq!(fault.kind(), "head mismatch");
    assert_eq!(fault.position(), 5);

    // A head signed by another key proves nothing.
    let mut f = fixture();
    let stranger = GatewaySigningKey::generate(DEFAULT_DISTINGUISHING_ID).unwrap();
    f.heads[0] = f.heads[0].head.clone().sign(&stranger).unwrap();
    assert_eq!(f.verify().fault.unwrap(), ChainFault::HeadSignature { position: 2 });
}

#[test]
fn the_canonical_text_is_the_documented_one() {
    let entry = AuditEntry::first(T0, submission("320000", "JS-1", b"abc"));
    assert_eq!(
        String::from_utf8(entry.canonical_bytes()).unwrap(),
        "yrdx-audit-entry-v1\nposition=0\nat_ms=1796130000000\nevent=submission_accepted\nsender=320000\n\
         message_id=JS-1\ndocument_sm3=66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0\n"
    );
    assert_eq!(entry.hash, Sm3Digest::of_parts(&[&[0u8; 32], &entry.canonical_bytes()]));
    let case = entry.next(T0, AuditEvent::CaseEvent { case_id: "C".into(), event: "a\nevent=x".into() }).unwrap();
    assert!(String::from_utf8(case.canonical_bytes()).unwrap().ends_with("case_id=C\nevent_detail=a%0Aevent=x\n"));
    let head = ChainHead::of(&entry, T0 + 5);
    assert_eq!(
        String::from_utf8(head.signed_bytes().unwrap()).unwrap(),
        format!("yrdx-audit-head-v1\nposition=0\nhash={}\nsigned_at=2026-12-01T13:00:00.005Z\n", entry.hash)
    );
    let last = AuditEntry { position: u64::MAX, ..entry };
    assert!(matches!(last.next(T0, submission("a", "b", b"")), Err(ChainError::PositionOverflow { .. })));
}

#[test]
fn heads_fall_due_by_count_or_time() {
    let policy = HeadPolicy { every_entries: 3, every_secs: 60 };
    let f = fixture();
    let head = ChainHead::of(&f.entries[2], T0);
    assert!(policy.is_due(None, &f.entries[0], T0), "the first head at once");
    assert!(!policy.is_due(Some(&head), &f.entries[2], T0 + 3_600_000), "nothing unsigned");
    assert!(!policy.is_due(Some(&head), &f.entries[4], T0 + 59_999));
    assert!(policy.is_due(Some(&head), &f.entries[5], T0 + 1));
    assert!(policy.is_due(Some(&head), &f.entries[3], T0 + 60_000));
    assert_eq!(HeadPolicy::default(), HeadPolicy { every_entries: 1000, every_secs: 300 });
}

#[test]
fn an_export_reads_back_and_a_range_verifies() {
    let f = fixture();
    let mut out = Vec::new();
    let lines = export_jsonl(f.entries[3..].to_vec(), &f.heads, &mut out).unwrap();
    assert_eq!(lines, 5 + 1, "five entries and the head at position 5");
    let text = String::from_utf8(out).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["record"], "entry");
    assert_eq!(first["position"], 3);
    assert_eq!(first["event"]["kind"], "submission_accepted");
    assert_eq!(first["prev_hash"], f.entries[2].hash.to_hex());
    assert!(text.lines().nth(3).unwrap().contains("\"record\":\"head\""));

    let (entries, heads) = import_jsonl(&text).unwrap();
    assert_eq!(entries, f.entries[3..]);
    assert_eq!(heads, f.heads[1..]);
    let documents = &f.documents;
    let report = verify_chain_from(3, entries[0].prev_hash, entries.clone(), &heads, &f.key.public_key(), |s, m| {
        documents.get(&(s.to_string(), m.to_string())).map(|d| Sm3Digest::of(d))
    });
    assert!(report.is_clean(), "{report}");
    assert_eq!((report.entries_verified, report.heads_verified), (5, 1));

    let report = verify_export(&text, &f.key.public_key(), |s, m| {
        documents.get(&(s.to_string(), m.to_string())).map(|d| Sm3Digest::of(d))
    })
    .unwrap();
    assert!(report.is_clean() && report.entries_verified == 5, "{report}");
    let tampered = text.replacen("\"at_ms\":1796130003000", "\"at_ms\":1796130003001", 1);
    assert_ne!(tampered, text);
    let report = verify_export(&tampered, &f.key.public_key(), |_, _| None).unwrap();
    assert_eq!(report.fault.map(|f| (f.kind(), f.position())), Some(("entry altered", 3)));
    let e = import_jsonl(&format!("{text}\n{{\"record\":\"entry\"}}\n")).unwrap_err();
    assert!(e.to_string().starts_with("audit export line 8:"), "{e}");
}
