//! The store's one error type, the same whichever backend failed.

/// A storage failure. The source is kept for the operator's log; partners are only told that the
/// store is unavailable (see `status::store_unavailable`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or could not be reached (disk full, read-only, connection lost …).
    #[error("store ({backend}) failed during {operation}: {source}")]
    Backend {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// What the store was doing (`commit`, `take` …).
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored value could not be read back as what it should be.
    #[error("store: stored {what} is unreadable: {detail}")]
    Corrupt {
        /// The value (`samr_packages.state of SJB-…`).
        what: String,
        /// Why.
        detail: String,
    },
    /// The store's configuration is wrong (a URL that does not parse, a bad pool size).
    #[error("store configuration: {0}")]
    Config(String),
    /// A lock of the embedded store was poisoned by a panic elsewhere.
    #[error("store: lock poisoned")]
    Poisoned,
    /// The blocking task running a store call failed.
    #[error("store: the task running {operation} failed: {source}")]
    Task {
        /// What the store was doing.
        operation: &'static str,
        /// The join error.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The group commit this submission was part of failed.
    #[error("store: group commit failed: {0}")]
    GroupCommit(String),
}

impl StoreError {
    pub(crate) fn task(operation: &'static str, source: tokio::task::JoinError) -> StoreError {
        StoreError::Task { operation, source }
    }

    pub(crate) fn sqlite(operation: &'static str, source: rusqlite::Error) -> StoreError {
        StoreError::Backend { backend: "sqlite", operation, source: Box::new(source) }
    }

    pub(crate) fn postgres(
        operation: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> StoreError {
        StoreError::Backend { backend: "postgres", operation, source: Box::new(source) }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::sqlite("a statement", e)
    }
}
