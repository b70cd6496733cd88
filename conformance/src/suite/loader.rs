//! Loading a suite: reading its case files, checking steps against records and clauses against
//! the catalogue, and generating the `formats` cases from the vectors.

use super::*;

/// The formats whose documents carry several records (Beijing's carry one, SAMR packages are
/// not written by a partner's translator).
pub fn carries_batches(format: yrdx_adapters::Partner) -> bool {
    use yrdx_adapters::Partner;
    matches!(format, Partner::Jiangsu | Partner::Zhejiang | Partner::Canonical)
}

/// The canonical document a valid vector stands for: its `.canonical.json`, or the vector itself
/// for the canonical format.
pub fn canonical_of(v: &crate::vectors::Vector) -> Option<PathBuf> {
    match &v.expect {
        crate::vectors::Expectation::Valid { canonical: Some(p) } => Some(p.clone()),
        crate::vectors::Expectation::Valid { canonical: None } if v.partner == yrdx_adapters::Partner::Canonical => {
            Some(v.path.clone())
        }
        _ => None,
    }
}

/// Why suites could not be loaded (the tool's input is broken: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// A file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        message: String,
    },
    /// A case refers to what it does not declare, or shapes a step wrongly.
    #[error("{path}: {source}")]
    Case {
        /// The file.
        path: String,
        /// What is wrong.
        source: CaseDefError,
    },
    /// A case file is not valid.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong (with the TOML position).
        message: String,
    },
    /// Two cases share an id.
    #[error("case id {id} is declared twice ({first} and {second})")]
    DuplicateId {
        /// The id.
        id: String,
        /// One file.
        first: String,
        /// The other.
        second: String,
    },
    /// A case names a clause the catalogue does not have.
    #[error("{path}: case {case}: unknown requirement {requirement} (see conformance/requirements.toml)")]
    UnknownRequirement {
        /// The file.
        path: String,
        /// The case.
        case: String,
        /// The clause id.
        requirement: String,
    },
    /// A vector set could not be loaded.
    #[error("vectors: {0}")]
    Vectors(String),
}

/// The suites built into the tool ([`crate::embedded`]).
pub fn default_dir() -> PathBuf {
    crate::embedded::path("suites")
}

/// Loads every case of `suite` from `dir/<suite>/*.toml` (sorted by file name), expanding vector
/// sets from `vectors_dir`; every requirement must be in `catalogue`.
pub fn load(
    dir: &Path,
    suite: &str,
    vectors_dir: &Path,
    catalogue: &crate::requirements::Catalogue,
) -> Result<Vec<LoadedCase>, SuiteError> {
    let folder = dir.join(suite);
    let io = |p: &Path, e: std::io::Error| SuiteError::Io { path: p.display().to_string(), message: e.to_string() };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .map_err(|e| io(&folder, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut cases: Vec<LoadedCase> = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| io(&file, e))?;
        let group: GroupFile = toml::from_str(&text)
            .map_err(|e| SuiteError::Invalid { path: file.display().to_string(), message: e.to_string() })?;
        if group.suite != suite {
            return Err(SuiteError::Invalid {
                path: file.display().to_string(),
                message: format!("suite = {:?}, but the file is in the {suite} folder", group.suite),
            });
        }
        let mut found = Vec::new();
        for def in group.cases.clone() {
            check_steps(&def).map_err(|source| SuiteError::Case { path: file.display().to_string(), source })?;
            found.push(LoadedCase {
                suite: suite.into(),
                group: group.group.clone(),
                file: file.clone(),
                def,
                vector: None,
                batch: vec![],
            });
        }
        for set in &group.vector_sets {
            found.extend(expand_vectors(set, &group, &file, vectors_dir)?);
        }
        for case in found {
            for r in &case.def.requirements {
                if !catalogue.contains(r) {
                    return Err(SuiteError::UnknownRequirement {
                        path: file.display().to_string(),
                        case: case.def.id.clone(),
                        requirement: r.clone(),
                    });
                }
            }
            if let Some(first) = seen.insert(case.def.id.clone(), file.display().to_string()) {
                return Err(SuiteError::DuplicateId {
                    id: case.def.id.clone(),
                    first,
                    second: file.display().to_string(),
                });
            }
            cases.push(case);
        }
    }
    Ok(cases)
}

/// What is wrong with a case beyond what serde checks.
#[derive(Debug, thiserror::Error)]
pub enum CaseDefError {
    /// A `samr_answer` answer is neither busy nor a rejection.
    #[error(
        "case {case}: step {step}: an answer is `status = 429|503` (with retry_after_secs) or `reject = \"reason\"`"
    )]
    Answer {
        /// The case.
        case: String,
        /// The step, from 1.
        step: usize,
    },
    /// A `wait` step gives neither or both of its keys.
    #[error("case {case}: step {step}: wait needs past = \"visibility_timeout\" or ms")]
    Wait {
        /// The case.
        case: String,
        /// The step, from 1.
        step: usize,
    },
    /// A `plan_summary` step gives neither or both of `plan` and `plan_id`.
    #[error("case {case}: step {step}: give exactly one of plan and plan_id")]
    PlanChoice {
        /// The case.
        case: String,
        /// The step, from 1.
        step: usize,
    },
    /// An expected plan-summary row lacks `region` or `category`.
    #[error("case {case}: step {step}: a row needs region and category: {row}")]
    Row {
        /// The case.
        case: String,
        /// The step, from 1.
        step: usize,
        /// The row as written.
        row: String,
    },
    /// A step names a record the case does not declare.
    #[error("case {case}: step {step}: no record named {record:?} in [case.records]")]
    UnknownRecord {
        /// The case.
        case: String,
        /// The step, from 1.
        step: usize,
        /// The name.
        record: String,
    },
    /// A record gives neither or both of a vector and an inline record.
    #[error("case {case}: record {record}: give either `vector`, or `kind` and `inline`")]
    RecordSpec {
        /// The case.
        case: String,
        /// The record's name.
        record: String,
    },
    /// A case without id or requirements.
    #[error("case {case:?}: an id and at least one requirement are required")]
    IdAndRequirements {
        /// The id (maybe empty).
        case: String,
    },
}

/// Checks what serde cannot: steps refer to declared records.
fn check_steps(def: &CaseDef) -> Result<(), CaseDefError> {
    let known = |name: &String| def.records.contains_key(name);
    for (i, step) in def.steps.iter().enumerate() {
        let names: &[String] = match step {
            Step::Submit(s) => &s.records,
            Step::Receive(s) => &s.records,
            Step::SamrPush(s) => &s.records,
            Step::SamrPackage(s) => &s.records,
            Step::Deliver(s) => &s.records,
            Step::PartnerAnswers(s) => std::slice::from_ref(&s.record),
            Step::SamrAnswer(a) => {
                for x in &a.answers {
                    match (x.status, &x.reject) {
                        (Some(429 | 503), None) | (None, Some(_)) => {}
                        _ => return Err(CaseDefError::Answer { case: def.id.clone(), step: i + 1 }),
                    }
                }
                &[]
            }
            Step::Wait(w) => {
                match (&w.past, w.ms) {
                    (Some(p), None) if p == "visibility_timeout" => {}
                    (None, Some(_)) => {}
                    _ => return Err(CaseDefError::Wait { case: def.id.clone(), step: i + 1 }),
                }
                &[]
            }
            Step::PlanSummary(s) => {
                if s.plan.is_some() == s.plan_id.is_some() {
                    return Err(CaseDefError::PlanChoice { case: def.id.clone(), step: i + 1 });
                }
                if let Some(row) =
                    s.expect.rows.iter().find(|r| !r.contains_key("region") || !r.contains_key("category"))
                {
                    return Err(CaseDefError::Row { case: def.id.clone(), step: i + 1, row: format!("{row:?}") });
                }
                s.plan.as_slice()
            }
            _ => &[],
        };
        if let Some(missing) = names.iter().find(|n| !known(n)) {
            return Err(CaseDefError::UnknownRecord { case: def.id.clone(), step: i + 1, record: missing.clone() });
        }
    }
    for (name, spec) in &def.records {
        match (&spec.vector, &spec.inline, &spec.kind) {
            (Some(_), None, None) | (None, Some(_), Some(_)) => {}
            _ => return Err(CaseDefError::RecordSpec { case: def.id.clone(), record: name.clone() }),
        }
    }
    if def.id.is_empty() || def.requirements.is_empty() {
        return Err(CaseDefError::IdAndRequirements { case: def.id.clone() });
    }
    Ok(())
}

fn expand_vectors(
    set: &VectorSet,
    group: &GroupFile,
    file: &Path,
    vectors_dir: &Path,
) -> Result<Vec<LoadedCase>, SuiteError> {
    let all = crate::vectors::load(vectors_dir).map_err(|e| SuiteError::Vectors(e.to_string()))?;
    let mut out = Vec::new();
    for v in all {
        let format = v.partner.to_string();
        if !set.formats.contains(&format) {
            continue;
        }
        let (kind, mut requirements, checks) = match &v.expect {
            crate::vectors::Expectation::Valid { .. } => (
                "valid",
                set.valid_requirements.clone(),
                "decodes, equals its expected canonical document, and re-encodes unchanged".to_string(),
            ),
            crate::vectors::Expectation::Invalid(x) => (
                "invalid",
                set.invalid_requirements
                    .iter()
                    .cloned()
                    .chain(x.refused.then(|| "partners.common.safe-input".to_string()))
                    .chain(x.requirements.iter().cloned())
                    .collect(),
                format!("is refused, naming {}", x.paths.join(", ")),
            ),
        };
        for r in &mut requirements {
            *r = r.replace("${FORMAT}", &format);
        }
        let stem = v.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let stem = stem.split('.').next().unwrap_or_default().to_string();
        out.push(LoadedCase {
            suite: group.suite.clone(),
            group: group.group.clone(),
            file: file.to_path_buf(),
            def: CaseDef {
                id: format!("formats.{format}.{kind}.{stem}"),
                title: format!("{} vector {}", format, v.name()),
                checks: format!("{} {checks}", v.name()),
                requirements,
                tags: set.tags.iter().cloned().chain([format.clone(), kind.to_string()]).collect(),
                partners: vec![],
                required: true,
                needs: vec![],
                records: BTreeMap::new(),
                steps: vec![],
            },
            vector: Some(v),
            batch: vec![],
        });
    }
    // One batch case per format and record kind with two or more valid vectors: their records in
    // one document, in vector order.
    let mut batches: BTreeMap<(String, String), Vec<crate::vectors::Vector>> = BTreeMap::new();
    for v in out.iter().filter_map(|c| c.vector.as_ref()) {
        if !carries_batches(v.partner) {
            continue;
        }
        let Some(path) = canonical_of(v) else { continue };
        let kind = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|d| d.get("kind").and_then(Value::as_str).map(String::from));
        if let Some(kind) = kind {
            batches.entry((v.partner.to_string(), kind)).or_default().push(v.clone());
        }
    }
    for ((format, kind), vectors) in batches {
        if vectors.len() < 2 {
            continue;
        }
        let names: Vec<String> = vectors.iter().map(|v| v.name()).collect();
        out.push(LoadedCase {
            suite: group.suite.clone(),
            group: group.group.clone(),
            file: file.to_path_buf(),
            def: CaseDef {
                id: format!("formats.{format}.batch.{}", kind.replace('_', "-")),
                title: format!("{format}: {} {kind} records in one document", vectors.len()),
                checks: format!(
                    "The records of {} in one document keep their number, order and every field",
                    names.join(", ")
                ),
                requirements: set
                    .valid_requirements
                    .iter()
                    .map(|r| r.replace("${FORMAT}", &format))
                    .chain(["partners.common.no-silent-loss".to_string()])
                    .collect(),
                tags: set.tags.iter().cloned().chain([format.clone(), "batch".to_string()]).collect(),
                partners: vec![],
                required: true,
                needs: vec![],
                records: BTreeMap::new(),
                steps: vec![],
            },
            vector: None,
            batch: vectors,
        });
    }
    Ok(out)
}
