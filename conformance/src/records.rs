//! Builds a case's input records: a vector's first record or inline canonical JSON, with the
//! case's overrides and the run's placeholders applied.

use crate::suite::{set_path, Placeholders, RecordSpec};
use std::collections::BTreeMap;
use std::path::Path;
use yrdx_adapters::{canonical, Record, RecordKind};

/// Why a case's record could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The vector named is missing, unreadable or holds no record.
    #[error(transparent)]
    Vector(#[from] crate::vectors::FirstRecordError),
    /// An inline record names no known kind.
    #[error("unknown record kind {0:?}")]
    UnknownKind(String),
    /// Neither a vector nor an inline record with its kind.
    #[error("give either `vector`, or `kind` and `inline`")]
    Spec,
    /// An override's path cannot be set.
    #[error(transparent)]
    Override(#[from] crate::suite::JsonPathError),
    /// The record with its overrides is not a valid canonical record.
    #[error("after overrides: {0}")]
    Invalid(String),
}

/// Every record of a case, by name (as [`build`] makes each); the error names the record that
/// could not be built.
pub fn build_all(
    specs: &BTreeMap<String, RecordSpec>,
    fill: &Placeholders,
    vectors_dir: &Path,
) -> Result<BTreeMap<String, Record>, String> {
    specs
        .iter()
        .map(|(name, spec)| {
            build(spec, fill, vectors_dir).map(|r| (name.clone(), r)).map_err(|e| format!("record {name}: {e}"))
        })
        .collect()
}

/// The record a spec describes; `vectors_dir` holds the vectors it may name.
pub fn build(spec: &RecordSpec, fill: &Placeholders, vectors_dir: &Path) -> Result<Record, RecordError> {
    let (kind, mut value) = match (&spec.vector, &spec.inline, &spec.kind) {
        (Some(v), None, None) => {
            let first = crate::vectors::first_record(vectors_dir, v)?;
            (first.kind(), canonical::record_to_value(&first))
        }
        (None, Some(inline), Some(kind)) => {
            let kind = RecordKind::from_name(kind).ok_or_else(|| RecordError::UnknownKind(kind.clone()))?;
            (kind, inline.clone())
        }
        _ => return Err(RecordError::Spec),
    };
    value = fill.fill_json(&value);
    for (path, v) in &spec.set {
        set_path(&mut value, path, fill.fill_json(v))?;
    }
    canonical::record_from_json(kind, &value.to_string()).map_err(|e| RecordError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_vector_record_takes_overrides_and_placeholders() {
        let spec = RecordSpec {
            vector: Some("jiangsu/valid/example-sampling.json".into()),
            kind: None,
            inline: None,
            set: [("sampleId".to_string(), json!("S-${RUN}")), ("seller.name".to_string(), json!("某店"))].into(),
        };
        let fill = Placeholders::new(&[("RUN", "AB12CD".into())]);
        let r = build(&spec, &fill, &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")).unwrap();
        let Record::Sampling(s) = r else { panic!("a sampling record") };
        assert_eq!(s.sample_id, "S-AB12CD");
        assert_eq!(s.seller.unwrap().name, "某店");
    }

    #[test]
    fn a_bad_override_names_the_field() {
        let spec = RecordSpec {
            vector: Some("canonical/valid/plan.json".into()),
            kind: None,
            inline: None,
            set: [("year".to_string(), json!("not a year"))].into(),
        };
        let e =
            build(&spec, &Placeholders::new(&[]), &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors"))
                .unwrap_err();
        assert!(matches!(e, RecordError::Invalid(_)), "{e}");
        assert!(e.to_string().contains("year"), "{e}");
    }
}
