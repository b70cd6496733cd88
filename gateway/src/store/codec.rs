//! The stored form of a canonical record: its canonical JSON (docs/canonical-records.md), written
//! and read only here, so everything above the store handles typed records and never JSON.

use super::types::{PlanRecords, RawPlanRecords};
use super::StoreError;
use yrdx_adapters::{canonical, Record, RecordKind};
use yrdx_proto::v1::{DisposalCase, InspectionResult, SamplingRecord};

/// The text a record is stored as.
pub(crate) fn encode(record: &Record) -> String {
    canonical::record_json(record)
}

/// The text a disposal case is stored as (a case is stored as its transfer record).
pub(crate) fn encode_case(case: &DisposalCase) -> String {
    encode(&Record::CaseTransfer(case.clone()))
}

/// A stored record read back; a row that does not read is a corrupt store, named by kind and id.
///
/// The routing reads the same few records for most submissions (every sample names its plan), and
/// decoding a record's JSON costs more than the read. Decoding is a pure function of the kind and
/// the text, so the record last decoded from the same text is reused: the row is still read every
/// time (another replica may have changed it), only an unchanged text skips the parse.
pub(crate) fn decode(kind: RecordKind, id: &str, text: &str) -> Result<Record, StoreError> {
    DECODED.decode(kind, id, text)
}

fn decode_text(kind: RecordKind, id: &str, text: &str) -> Result<Record, StoreError> {
    canonical::record_from_json(kind, text)
        .map_err(|e| StoreError::Corrupt { what: format!("stored {kind} {id}"), detail: e.to_string() })
}

/// How many decoded records are kept: one slot per (kind, id) hash, a new record replacing the
/// slot's old one. At most a few MB (records are bounded by the document limits).
const DECODED_SLOTS: usize = 512;

/// Recently decoded records, each with the exact text it came from.
static DECODED: std::sync::LazyLock<DecodedRecords> = std::sync::LazyLock::new(DecodedRecords::new);

struct DecodedRecords {
    slots: Vec<std::sync::Mutex<Option<Decoded>>>,
}

struct Decoded {
    kind: RecordKind,
    text: Box<str>,
    record: Record,
}

impl DecodedRecords {
    fn new() -> DecodedRecords {
        DecodedRecords { slots: (0..DECODED_SLOTS).map(|_| std::sync::Mutex::new(None)).collect() }
    }

    fn slot(&self, kind: RecordKind, id: &str) -> &std::sync::Mutex<Option<Decoded>> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (kind, id).hash(&mut h);
        &self.slots[(h.finish() % DECODED_SLOTS as u64) as usize]
    }

    /// [`decode`], reusing the slot's record when it was decoded from exactly `text` as `kind`.
    fn decode(&self, kind: RecordKind, id: &str, text: &str) -> Result<Record, StoreError> {
        if let Some(record) = self.get(kind, id, text) {
            return Ok(record);
        }
        let record = decode_text(kind, id, text)?;
        self.put(kind, id, text, &record);
        Ok(record)
    }

    /// The record decoded from exactly `text` as `kind`, if this slot still holds it.
    fn get(&self, kind: RecordKind, id: &str, text: &str) -> Option<Record> {
        let slot = self.slot(kind, id).lock().ok()?;
        slot.as_ref().filter(|d| d.kind == kind && *d.text == *text).map(|d| d.record.clone())
    }

    fn put(&self, kind: RecordKind, id: &str, text: &str, record: &Record) {
        if let Ok(mut slot) = self.slot(kind, id).lock() {
            *slot = Some(Decoded { kind, text: text.into(), record: record.clone() });
        }
    }
}

fn corrupt(kind: RecordKind, got: &Record) -> StoreError {
    StoreError::Corrupt { what: format!("stored {kind} {}", got.id()), detail: format!("read back as {}", got.kind()) }
}

/// A stored sampling record.
pub(crate) fn sampling(text: &str) -> Result<SamplingRecord, StoreError> {
    match decode(RecordKind::Sampling, "", text)? {
        Record::Sampling(s) => Ok(s),
        other => Err(corrupt(RecordKind::Sampling, &other)),
    }
}

/// A stored inspection result.
pub(crate) fn inspection(text: &str) -> Result<InspectionResult, StoreError> {
    match decode(RecordKind::Inspection, "", text)? {
        Record::Inspection(i) => Ok(i),
        other => Err(corrupt(RecordKind::Inspection, &other)),
    }
}

/// A stored disposal case.
pub(crate) fn case(text: &str) -> Result<DisposalCase, StoreError> {
    match decode(RecordKind::CaseTransfer, "", text)? {
        Record::CaseTransfer(c) => Ok(c),
        other => Err(corrupt(RecordKind::CaseTransfer, &other)),
    }
}

/// A plan's records as the backends read them, typed.
pub(crate) fn plan_records(raw: RawPlanRecords) -> Result<PlanRecords, StoreError> {
    Ok(PlanRecords {
        samplings: raw.samplings.iter().map(|t| sampling(t)).collect::<Result<_, _>>()?,
        inspections: raw.inspections.iter().map(|t| inspection(t)).collect::<Result<_, _>>()?,
        cases: raw.cases.iter().map(|t| case(t)).collect::<Result<_, _>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrdx_proto::v1::{PlanChannel, PlanParticipant, ProductCategory, SpotCheckPlan};

    fn plan(title: &str) -> Record {
        Record::Plan(SpotCheckPlan {
            plan_id: "YRD-2024-CODEC-01".into(),
            title: title.into(),
            year: 2024,
            lead_region: "310000".into(),
            participants: vec![PlanParticipant { region: "310000".into(), quota: 5 }],
            channel: PlanChannel::Online as i32,
            categories: vec![ProductCategory::EBikeLithiumBattery as i32],
            standards: vec!["GB 43854-2024".into()],
            sampling_deadline: yrdx_proto::Date::from_ymd(2024, 6, 30),
            published_at: Some(yrdx_proto::Timestamp { seconds: 1_710_468_000, nanos: 0 }),
        })
    }

    #[test]
    fn a_reused_decoding_is_the_decoding_of_the_text_read() {
        // A cache of its own: other tests share the process-wide one.
        let cache = DecodedRecords::new();
        let id = "YRD-2024-CODEC-01";
        let (first, second) = (plan("第一版"), plan("第二版"));
        let (first_text, second_text) = (encode(&first), encode(&second));
        assert_ne!(first_text, second_text);
        // Decoded once, kept, and reused for the same text.
        assert_eq!(cache.get(RecordKind::Plan, id, &first_text), None);
        assert_eq!(cache.decode(RecordKind::Plan, id, &first_text).unwrap(), first);
        assert_eq!(cache.get(RecordKind::Plan, id, &first_text), Some(first.clone()));
        assert_eq!(cache.decode(RecordKind::Plan, id, &first_text).unwrap(), first);
        // The row changed under the same id (another replica's commit): the new text's record.
        assert_eq!(cache.get(RecordKind::Plan, id, &second_text), None);
        assert_eq!(cache.decode(RecordKind::Plan, id, &second_text).unwrap(), second);
        // The same text read as another kind is decoded as that kind (and refused), not reused.
        assert_eq!(cache.get(RecordKind::Sampling, id, &second_text), None);
        assert!(cache.decode(RecordKind::Sampling, id, &second_text).is_err());
        // A corrupt row is refused each time and never replaces a good decoding.
        let corrupt = second_text.replace("\"title\"", "\"titel\"");
        for _ in 0..2 {
            let err = cache.decode(RecordKind::Plan, id, &corrupt).unwrap_err();
            assert!(err.to_string().contains(id), "{err}");
        }
        assert_eq!(cache.get(RecordKind::Plan, id, &second_text), Some(second.clone()));
        // The process-wide entry point decodes the same way.
        assert_eq!(decode(RecordKind::Plan, id, &second_text).unwrap(), second);
    }
}
