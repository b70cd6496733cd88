//! The clause catalogue (`conformance/requirements.toml`) and coverage: which clauses of the
//! interface documents (`docs/partners.md`, `docs/partners/*.md`) and `docs/domain.md` no case
//! checks.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One clause.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clause {
    /// Its id (`samr.package.digest`).
    pub id: String,
    /// Where it is written.
    pub source: String,
    /// What it says, briefly.
    pub text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    clause: Vec<Clause>,
}

/// Every clause, in catalogue order.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// The clauses.
    pub clauses: Vec<Clause>,
}

/// Why a clause catalogue could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// The file could not be read, or is not a valid catalogue.
    #[error(transparent)]
    File(#[from] crate::toml_file::TomlFileError),
    /// A clause id appears twice.
    #[error("{path}: clause {clause} is listed twice")]
    Twice {
        /// The file.
        path: String,
        /// The clause id.
        clause: String,
    },
}

impl Catalogue {
    /// The catalogue built into the tool (`conformance/requirements.toml`, [`crate::embedded`]).
    pub fn default_path() -> PathBuf {
        crate::embedded::path("requirements.toml")
    }

    /// Loads a catalogue file.
    pub fn load(path: &Path) -> Result<Catalogue, CatalogueError> {
        let shown = || path.display().to_string();
        let file: CatalogueFile = crate::toml_file::load(path)?;
        let mut ids = std::collections::BTreeSet::new();
        for c in &file.clause {
            if !ids.insert(c.id.clone()) {
                return Err(CatalogueError::Twice { path: shown(), clause: c.id.clone() });
            }
        }
        Ok(Catalogue { clauses: file.clause })
    }

    /// Whether the catalogue has this clause.
    pub fn contains(&self, id: &str) -> bool {
        self.clauses.iter().any(|c| c.id == id)
    }

    /// The clauses none of `covered` names, in catalogue order.
    pub fn uncovered<'a>(&'a self, covered: &std::collections::BTreeSet<String>) -> Vec<&'a Clause> {
        self.clauses.iter().filter(|c| !covered.contains(&c.id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_loads_and_reports_gaps() {
        let c = Catalogue::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("requirements.toml")).unwrap();
        assert!(c.contains("samr.package.digest"));
        let covered: std::collections::BTreeSet<String> = ["samr.package.digest".to_string()].into();
        let gaps = c.uncovered(&covered);
        assert_eq!(gaps.len(), c.clauses.len() - 1);
        assert!(gaps.iter().all(|g| g.id != "samr.package.digest"));
    }
}
