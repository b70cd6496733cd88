//! Test vectors: partner documents with what decoding them must give.
//!
//! Layout, one folder per format (`jiangsu`, `zhejiang`, `beijing`, `samr`, `canonical`):
//!
//! - `valid/NAME.json|xml` — a document that must decode. Beside it, `NAME.canonical.json` is the
//!   canonical document it must decode to (absent for SAMR packages, which are checked as SAMR's
//!   intake would). Re-encoding the decoded records must decode to the same records again.
//! - `invalid/NAME.json|xml` with `NAME.expect.toml` — a document that must be refused:
//!   `paths` lists the sender's paths its problems must name (every one of them), `refused = true`
//!   asks for a refusal before interpretation (size, DOCTYPE, encoding, depth), `max_bytes` sets the
//!   configured size limit for the vector, and `record_id` the id its problems must carry.
//!
//! Adding a vector needs no code: drop the files in the folder.

use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use yrdx_adapters::{canonical, samr, DecodeError, DecodeLimits, Partner};

/// Whether a vector must decode or must be refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    /// Must decode (to the canonical document in this file, if given).
    Valid {
        /// The expected canonical document.
        canonical: Option<PathBuf>,
    },
    /// Must be refused, naming these paths.
    Invalid(InvalidExpectation),
}

/// What an invalid vector's problems must say.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvalidExpectation {
    /// Paths (in the sender's terms) that must each be named by a problem.
    pub paths: Vec<String>,
    /// Whether the document must be refused before interpretation.
    #[serde(default)]
    pub refused: bool,
    /// A size limit to apply instead of the default 4 MiB.
    pub max_bytes: Option<usize>,
    /// The record id the problems at `paths` must carry.
    pub record_id: Option<String>,
    /// Clauses this vector checks (for the conformance suite's traceability).
    #[serde(default)]
    pub requirements: Vec<String>,
}

/// One test vector.
#[derive(Debug, Clone)]
pub struct Vector {
    /// The format of the document.
    pub partner: Partner,
    /// The document's file.
    pub path: PathBuf,
    /// What decoding it must give.
    pub expect: Expectation,
}

impl Vector {
    /// A short name: `jiangsu/invalid/bad-region.json`.
    pub fn name(&self) -> String {
        let parts: Vec<_> = self.path.iter().rev().take(3).collect();
        parts.iter().rev().map(|p| p.to_string_lossy()).collect::<Vec<_>>().join("/")
    }
}

/// Why the vectors could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    /// A file or folder could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        message: String,
    },
    /// An `.expect.toml` is malformed or missing.
    #[error("{path}: {message}")]
    Expectation {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
}

fn io(path: &Path, e: std::io::Error) -> VectorError {
    VectorError::Io { path: path.display().to_string(), message: e.to_string() }
}

/// The vectors built into the tool (`conformance/vectors`, [`crate::embedded`]).
pub fn default_dir() -> PathBuf {
    crate::embedded::path("vectors")
}

/// Loads every vector under `dir`, sorted by path.
pub fn load(dir: &Path) -> Result<Vec<Vector>, VectorError> {
    let mut out = Vec::new();
    for partner in Partner::ALL {
        for (sub, valid) in [("valid", true), ("invalid", false)] {
            let folder = dir.join(partner.name()).join(sub);
            if !folder.exists() {
                continue;
            }
            let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
                .map_err(|e| io(&folder, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
                    (name.ends_with(".json") || name.ends_with(".xml")) && !name.ends_with(".canonical.json")
                })
                .collect();
            files.sort();
            for path in files {
                let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
                let expect = if valid {
                    let c = folder.join(format!("{stem}.canonical.json"));
                    Expectation::Valid {
                        canonical: (partner != Partner::Samr && partner != Partner::Canonical).then_some(c),
                    }
                } else {
                    let e = folder.join(format!("{stem}.expect.toml"));
                    let text = std::fs::read_to_string(&e).map_err(|err| io(&e, err))?;
                    let parsed: InvalidExpectation = toml::from_str(&text).map_err(|err| VectorError::Expectation {
                        path: e.display().to_string(),
                        message: err.to_string(),
                    })?;
                    Expectation::Invalid(parsed)
                };
                out.push(Vector { partner, path, expect });
            }
        }
    }
    Ok(out)
}

/// Why a vector does not hold (a finding of the `formats` suite, or a failing vector test).
#[derive(Debug, thiserror::Error)]
pub enum VectorCheckError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A valid vector was refused, with every problem.
    #[error("must decode but was refused:\n  {}", .problems.join("\n  "))]
    Refused {
        /// The problems, as text.
        problems: Vec<String>,
    },
    /// Its records could not be encoded again in its format.
    #[error("re-encoding failed: {source}")]
    ReEncode {
        /// The encoder's error.
        source: yrdx_adapters::EncodeError,
    },
    /// The re-encoded document was refused.
    #[error("re-encoded document refused: {source}")]
    ReDecode {
        /// The decoder's error.
        source: DecodeError,
    },
    /// The round trip changed the document.
    #[error("decode → encode → decode changed the document")]
    RoundTrip,
    /// Its records could not be written as canonical JSON.
    #[error("canonical encoding failed: {source}")]
    Canonical {
        /// The encoder's error.
        source: yrdx_adapters::EncodeError,
    },
    /// A canonical document is not JSON.
    #[error("{path}: {source}")]
    Json {
        /// The file (or `decoded`, for what the adapter gave).
        path: String,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// It decoded to another canonical document than the expected one.
    #[error("decoded to a different canonical document than {path}:\n{got}")]
    OtherCanonical {
        /// The expected document's file.
        path: String,
        /// What it decoded to, pretty-printed.
        got: String,
    },
    /// An invalid vector decoded.
    #[error("must be refused but decoded")]
    Decoded,
    /// An invalid vector was refused otherwise than expected (before or after interpretation).
    #[error("expected refused = {expected}, got: {got}")]
    RefusedOtherwise {
        /// `refused` of its expectation.
        expected: bool,
        /// The refusal.
        got: DecodeError,
    },
    /// Expected paths no problem names.
    #[error("{}\n  problems reported:\n  {}", .missing.join("; "), .reported.join("\n  "))]
    PathsMissing {
        /// `path: expected …, found …` for each.
        missing: Vec<String>,
        /// Every problem reported.
        reported: Vec<String>,
    },
}

/// Why a vector's first record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FirstRecordError {
    /// The vector's first folder is no format.
    #[error("vector {vector}: the first folder must name a format, not {folder:?}")]
    NotAFormat {
        /// The vector.
        vector: String,
        /// Its first folder.
        folder: String,
    },
    /// It could not be read.
    #[error("vector {vector}: {source}")]
    Read {
        /// The vector.
        vector: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// It does not decode.
    #[error("vector {vector}: {source}")]
    Decode {
        /// The vector.
        vector: String,
        /// The decoder's error.
        source: DecodeError,
    },
    /// It holds no record.
    #[error("vector {vector}: no record")]
    Empty {
        /// The vector.
        vector: String,
    },
}

/// Checks one vector against the adapters; `bless` writes a missing expected canonical document
/// instead of failing (for new valid vectors).
pub fn check(v: &Vector, bless: bool) -> Result<(), VectorCheckError> {
    let bytes =
        std::fs::read(&v.path).map_err(|source| VectorCheckError::Io { path: v.path.display().to_string(), source })?;
    match &v.expect {
        Expectation::Valid { canonical } => check_valid(v.partner, &bytes, canonical.as_deref(), bless),
        Expectation::Invalid(x) => check_invalid(v.partner, &bytes, x),
    }
}

/// Decodes a vector as its format's adapter would (SAMR packages as SAMR's intake checks them:
/// `None` when the package holds).
pub fn decode(
    partner: Partner,
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<Option<yrdx_adapters::Document>, DecodeError> {
    if partner == Partner::Samr {
        samr::decode_package(bytes, limits).map(|_| None)
    } else {
        partner.decode(bytes, limits).map(Some)
    }
}

fn check_valid(partner: Partner, bytes: &[u8], expected: Option<&Path>, bless: bool) -> Result<(), VectorCheckError> {
    let limits = DecodeLimits::default();
    let doc = match decode(partner, bytes, &limits) {
        Ok(Some(doc)) => doc,
        Ok(None) => return Ok(()),
        Err(e) => {
            let problems: Vec<String> = e.problems().iter().map(|p| p.to_string()).collect();
            return Err(VectorCheckError::Refused { problems });
        }
    };
    // Round trip in the same format: the records survive unchanged.
    let again =
        partner.encode(&doc.envelope, &doc.records, 1).map_err(|source| VectorCheckError::ReEncode { source })?;
    let redecoded = partner.decode(&again.bytes, &limits).map_err(|source| VectorCheckError::ReDecode { source })?;
    if redecoded != doc {
        return Err(VectorCheckError::RoundTrip);
    }
    if let Some(path) = expected {
        let got =
            canonical::encode(&doc.envelope, &doc.records).map_err(|source| VectorCheckError::Canonical { source })?;
        let shown = || path.display().to_string();
        if !path.exists() && bless {
            std::fs::write(path, &got.bytes).map_err(|source| VectorCheckError::Io { path: shown(), source })?;
            return Ok(());
        }
        let text = std::fs::read(path).map_err(|source| VectorCheckError::Io { path: shown(), source })?;
        let want: Value =
            serde_json::from_slice(&text).map_err(|source| VectorCheckError::Json { path: shown(), source })?;
        let got: Value = serde_json::from_slice(&got.bytes)
            .map_err(|source| VectorCheckError::Json { path: "decoded".into(), source })?;
        if got != want {
            return Err(VectorCheckError::OtherCanonical {
                path: shown(),
                got: serde_json::to_string_pretty(&got).unwrap_or_default(),
            });
        }
    }
    Ok(())
}

/// What decoding an invalid vector showed.
#[derive(Debug, Clone, Default)]
pub struct InvalidOutcome {
    /// Each expected path no problem names (or names with another record id), as (path, what
    /// was expected, what was found).
    pub missing: Vec<(String, String, String)>,
    /// Every problem reported, as text.
    pub reported: Vec<String>,
}

/// Checks an invalid vector; an `Err` when the document was not refused as expected.
pub fn invalid_findings(
    partner: Partner,
    bytes: &[u8],
    x: &InvalidExpectation,
) -> Result<InvalidOutcome, VectorCheckError> {
    let mut limits = DecodeLimits::default();
    if let Some(m) = x.max_bytes {
        limits.max_bytes = m;
    }
    let err = match decode(partner, bytes, &limits) {
        Ok(_) => return Err(VectorCheckError::Decoded),
        Err(e) => e,
    };
    let is_refusal = matches!(err, DecodeError::Refused { .. } | DecodeError::TooLarge { .. });
    if x.refused != is_refusal {
        return Err(VectorCheckError::RefusedOtherwise { expected: x.refused, got: err });
    }
    let problems = err.problems();
    let reported: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let mut missing = Vec::new();
    for want in &x.paths {
        match problems.iter().find(|p| &p.path == want) {
            None => missing.push((want.clone(), "a problem naming this path".into(), reported.join("; "))),
            Some(p) => {
                if let Some(id) = &x.record_id {
                    if p.record_id.as_deref() != Some(id.as_str()) {
                        missing.push((want.clone(), format!("record id {id}"), format!("{:?}", p.record_id)));
                    }
                }
            }
        }
    }
    Ok(InvalidOutcome { missing, reported })
}

fn check_invalid(partner: Partner, bytes: &[u8], x: &InvalidExpectation) -> Result<(), VectorCheckError> {
    let outcome = invalid_findings(partner, bytes, x)?;
    if outcome.missing.is_empty() {
        return Ok(());
    }
    let missing: Vec<String> = outcome
        .missing
        .iter()
        .map(|(path, expected, found)| format!("{path}: expected {expected}, found {found}"))
        .collect();
    Err(VectorCheckError::PathsMissing { missing, reported: outcome.reported })
}

/// The first record of a vector (`jiangsu/valid/example-sampling.json`, relative to `dir`),
/// decoded by the format its first folder names.
pub fn first_record(dir: &Path, vector: &str) -> Result<yrdx_adapters::Record, FirstRecordError> {
    let format_name = vector.split('/').next().unwrap_or_default();
    let format = Partner::from_name(format_name)
        .ok_or_else(|| FirstRecordError::NotAFormat { vector: vector.to_string(), folder: format_name.to_string() })?;
    let bytes = std::fs::read(dir.join(vector))
        .map_err(|source| FirstRecordError::Read { vector: vector.to_string(), source })?;
    let doc = format
        .decode(&bytes, &DecodeLimits::default())
        .map_err(|source| FirstRecordError::Decode { vector: vector.to_string(), source })?;
    doc.records.into_iter().next().ok_or_else(|| FirstRecordError::Empty { vector: vector.to_string() })
}
