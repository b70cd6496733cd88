//! The stored form of a canonical record: its canonical JSON (docs/canonical-records.md), written
//! and read only here, so everything above the store handles typed records and never JSON.

use super::types::{PlanRecords, RawPlanRecords};
use super::StoreError;
use yrdx_adapters::{canonical, Record, RecordKind};
use yrdx_proto::v1::{DisposalCase, InspectionResult, SamplingRecord};

/// The text a record is stored as.
pub(crate) fn encode(record: &Record) -> String {
    canonical::record_to_value(record).to_string()
}

/// The text a disposal case is stored as (a case is stored as its transfer record).
pub(crate) fn encode_case(case: &DisposalCase) -> String {
    encode(&Record::CaseTransfer(case.clone()))
}

/// A stored record read back; a row that does not read is a corrupt store, named by kind and id.
pub(crate) fn decode(kind: RecordKind, id: &str, text: &str) -> Result<Record, StoreError> {
    canonical::record_from_json(kind, text)
        .map_err(|e| StoreError::Corrupt { what: format!("stored {kind} {id}"), detail: e.to_string() })
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
