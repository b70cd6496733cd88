//! Reading one of the tool's TOML input files (the clause catalogue, a partner scenario): the
//! file read and parsed into its type, each failure naming the file.

use serde::de::DeserializeOwned;
use std::path::Path;

/// Why a TOML input file could not be read into its type.
#[derive(Debug, thiserror::Error)]
pub enum TomlFileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not parse as its type.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong, with the TOML position.
        source: toml::de::Error,
    },
}

/// Reads `path` and parses it as a `T`; the checks beyond the TOML schema stay with the caller.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, TomlFileError> {
    let shown = || path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TomlFileError::Read { path: shown(), source })?;
    toml::from_str(&text).map_err(|source| TomlFileError::Parse { path: shown(), source })
}
