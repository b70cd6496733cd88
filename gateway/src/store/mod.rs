//! The store: the one boundary between the gateway and its database, and the only place with SQL.
//!
//! The services hold the traits below (through [`Store`]), never a backend type. Each trait is what
//! one consumer needs:
//!
//! | trait | consumer |
//! |---|---|
//! | [`Intake`] | Submit: idempotency by sender and message id, and the one atomic commit of a submission |
//! | [`Mailboxes`] | Receive and Ack: leased deliveries, visibility timeout, acknowledgement, wake-ups |
//! | [`WorkflowRecords`] | the workflow rules and queries: stored records, quota and mutual-recognition lookups |
//! | [`CaseLedger`] | the overdue notices (once per case and stage) and recomputed due dates |
//! | [`SamrOutbox`] | SAMR docking: the outbox, per-day package numbers, attempts, parking and resend |
//! | [`AuditLog`] | the audit chain: reading it, signed heads, events with no other change |
//! | [`Leadership`] | the work exactly one replica does at a time (SAMR push, overdue checks) |
//! | [`StoreCopy`] | `yrdx store copy`: every row out of one backend and into another |
//!
//! Two backends: [`SqliteStore`] (embedded, the default: `store = "yrdx.sqlite"`) and
//! [`PostgresStore`] (`store = "postgres://user@host/db"`, several replicas on one database).
//! Both pass the same contract tests (`gateway/tests/store_contract.rs`).

mod audit;
mod codec;
mod copy;
mod error;
mod postgres;
mod sqlite;
mod types;

pub use copy::{
    copy_store, table_named, Column, ColumnType, CopyReport, Row, StoreCopy, Table, TableCount, Value, TABLES,
};
pub use error::StoreError;
pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::SqliteStore;
pub use types::{
    Committed, DeliveryId, LeaderRole, LookupKeys, NewDelivery, OutboxRow, PackageBuilder, PackageNotFormed,
    PackageState, PendingDelivery, PlanRecords, SamrPackage, StoredRecord, StoredSubmission, Submission,
};

use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::broadcast;
use yrdx_adapters::{Record, RecordKind};
use yrdx_proto::v1::{DisposalCase, InspectionResult, RiskSignal, SamplingRecord, SpotCheckPlan};

/// Submit's part of the store: idempotency and the atomic commit.
#[async_trait]
pub trait Intake: Send + Sync {
    /// The stored submission of a sender and message id (its digest and reply), if any.
    async fn stored_submission(&self, sender: &str, message_id: &str) -> Result<Option<StoredSubmission>, StoreError>;
    /// Commits a submission atomically — its evidence, records, deliveries and SAMR outbox rows —
    /// and answers only once it is durable; or reports the one already stored under its key.
    /// Concurrent commits of one key (on any replica) get one [`Committed::New`].
    async fn commit(&self, submission: Submission) -> Result<Committed, StoreError>;
    /// Told the number of submissions of each committed group (metrics).
    fn observe_groups(&self, observer: GroupObserver);
}

/// Told the size of each group of submissions a store commits in one transaction.
pub type GroupObserver = Arc<dyn Fn(usize) + Send + Sync>;

/// Receive's and Ack's part of the store: the mailboxes.
#[async_trait]
pub trait Mailboxes: Send + Sync {
    /// Leases up to `max` visible deliveries of a mailbox, oldest first: they become invisible
    /// for `visibility_ms` (to every replica) and their attempt is counted.
    async fn take(
        &self,
        recipient: &str,
        max: usize,
        now_ms: i64,
        visibility_ms: i64,
    ) -> Result<Vec<PendingDelivery>, StoreError>;
    /// Deliveries of a mailbox handed out, not acknowledged, whose lease has not run out.
    async fn in_flight(&self, recipient: &str, now_ms: i64) -> Result<usize, StoreError>;
    /// Makes unacknowledged deliveries visible again (their stream dropped).
    async fn release(&self, delivery_ids: &[DeliveryId]) -> Result<(), StoreError>;
    /// Acknowledges deliveries of a mailbox; returns how many were pending. An acknowledged
    /// delivery is never handed out again.
    async fn ack(&self, recipient: &str, delivery_ids: &[DeliveryId]) -> Result<u32, StoreError>;
    /// Unacknowledged deliveries in a mailbox.
    async fn depth(&self, recipient: &str) -> Result<u64, StoreError>;
    /// When the oldest unacknowledged delivery of a mailbox was queued (ms since the epoch).
    async fn oldest_unacknowledged_ms(&self, recipient: &str) -> Result<Option<i64>, StoreError>;
    /// Mailboxes another process filled (region codes), for a backend shared by replicas; `None`
    /// when only this process writes (the gateway wakes its own streams itself).
    fn mailbox_signals(&self) -> Option<broadcast::Receiver<String>> {
        None
    }
}

/// What the workflow rules and the query services read.
#[async_trait]
pub trait WorkflowRecords: Send + Sync {
    /// A stored record.
    async fn record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError>;
    /// Every stored record of a kind, in id order.
    async fn records_of_kind(&self, kind: RecordKind) -> Result<Vec<Record>, StoreError>;
    /// Stored sampling records of a plan and region, other than `except`, counted up to
    /// `at_most` (the quota: counting further changes no decision).
    async fn sampling_count(&self, plan_id: &str, region: &str, except: &str, at_most: u64) -> Result<u64, StoreError>;
    /// The stored sampling records of one product (mutual recognition).
    async fn samplings_of_product(
        &self,
        uscc: &str,
        brand: &str,
        model: &str,
    ) -> Result<Vec<SamplingRecord>, StoreError>;
    /// A plan's sampling records with their samples' results and cases.
    async fn plan_records(&self, plan_id: &str) -> Result<PlanRecords, StoreError>;

    /// A stored plan.
    async fn plan(&self, id: &str) -> Result<Option<SpotCheckPlan>, StoreError> {
        typed(self.record(RecordKind::Plan, id).await?, id, |r| match r {
            Record::Plan(p) => Some(p),
            _ => None,
        })
    }
    /// A stored sampling record.
    async fn sampling(&self, id: &str) -> Result<Option<SamplingRecord>, StoreError> {
        typed(self.record(RecordKind::Sampling, id).await?, id, |r| match r {
            Record::Sampling(s) => Some(s),
            _ => None,
        })
    }
    /// A stored inspection result.
    async fn inspection(&self, report_no: &str) -> Result<Option<InspectionResult>, StoreError> {
        typed(self.record(RecordKind::Inspection, report_no).await?, report_no, |r| match r {
            Record::Inspection(i) => Some(i),
            _ => None,
        })
    }
    /// A stored disposal case (the gateway's copy, with its due date and events).
    async fn case(&self, case_id: &str) -> Result<Option<DisposalCase>, StoreError> {
        typed(self.record(RecordKind::CaseTransfer, case_id).await?, case_id, |r| match r {
            Record::CaseTransfer(c) => Some(c),
            _ => None,
        })
    }
    /// A stored risk signal (its latest revision).
    async fn risk_signal(&self, id: &str) -> Result<Option<RiskSignal>, StoreError> {
        typed(self.record(RecordKind::RiskSignal, id).await?, id, |r| match r {
            Record::RiskSignal(s) => Some(s),
            _ => None,
        })
    }
    /// Every stored disposal case, in id order.
    async fn cases(&self) -> Result<Vec<DisposalCase>, StoreError> {
        self.records_of_kind(RecordKind::CaseTransfer)
            .await?
            .into_iter()
            .map(|r| match r {
                Record::CaseTransfer(c) => Ok(c),
                other => Err(StoreError::Corrupt {
                    what: format!("stored case {}", other.id()),
                    detail: format!("read back as {}", other.kind()),
                }),
            })
            .collect()
    }
    /// Every stored plan, in id order.
    async fn plans(&self) -> Result<Vec<SpotCheckPlan>, StoreError> {
        self.records_of_kind(RecordKind::Plan)
            .await?
            .into_iter()
            .map(|r| match r {
                Record::Plan(p) => Ok(p),
                other => Err(StoreError::Corrupt {
                    what: format!("stored plan {}", other.id()),
                    detail: format!("read back as {}", other.kind()),
                }),
            })
            .collect()
    }
}

/// A stored record of the expected variant, or a corrupt store naming it.
fn typed<T>(record: Option<Record>, id: &str, want: impl FnOnce(Record) -> Option<T>) -> Result<Option<T>, StoreError> {
    let Some(record) = record else { return Ok(None) };
    let kind = record.kind();
    want(record).map(Some).ok_or_else(|| StoreError::Corrupt {
        what: format!("stored record {id}"),
        detail: format!("read back as {kind}"),
    })
}

/// The overdue ledger and recomputed due dates.
#[async_trait]
pub trait CaseLedger: Send + Sync {
    /// Whether the overdue notice of a case's stage was sent.
    async fn overdue_notified(&self, case_id: &str, status: i32) -> Result<bool, StoreError>;
    /// Records an overdue notice and queues its deliveries in one transaction; false (and nothing
    /// queued) when the notice was already sent.
    async fn commit_overdue_notice(
        &self,
        case_id: &str,
        status: i32,
        deliveries: Vec<NewDelivery>,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Replaces a stored case whose due date was recomputed and queues its notices, in one
    /// transaction — only if the stored copy is still `expected`. Returns whether it was replaced.
    async fn commit_case_revision(
        &self,
        expected: &DisposalCase,
        revised: &DisposalCase,
        deliveries: Vec<NewDelivery>,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
}

/// SAMR docking's part: the outbox and the packages.
#[async_trait]
pub trait SamrOutbox: Send + Sync {
    /// Records waiting for a package, oldest first.
    async fn samr_outbox(&self) -> Result<Vec<OutboxRow>, StoreError>;
    /// Creates a package for outbox rows in one transaction: takes the next sequence number of
    /// `day` (never reused, no gaps), lets `build` write the bytes for it, stores the package as
    /// pending and marks the rows as packaged. `Ok(Err(reason))` when `build` refused.
    async fn samr_create_package(
        &self,
        day: &str,
        package_type: &str,
        rows: &[i64],
        now_ms: i64,
        build: PackageBuilder,
    ) -> Result<Result<String, PackageNotFormed>, StoreError>;
    /// Pending packages whose next attempt is due, in number order.
    async fn samr_due(&self, now_ms: i64) -> Result<Vec<SamrPackage>, StoreError>;
    /// Parked packages, for operators.
    async fn samr_parked(&self) -> Result<Vec<SamrPackage>, StoreError>;
    /// Every package.
    async fn samr_packages(&self) -> Result<Vec<SamrPackage>, StoreError>;
    /// Records the outcome of an attempt.
    async fn samr_record_attempt(
        &self,
        number: &str,
        state: PackageState,
        attempts: u32,
        next_attempt_ms: i64,
        reason: &str,
    ) -> Result<(), StoreError>;
    /// Puts a parked package back in line at `operator`'s request (recorded with the change);
    /// false when it is not parked.
    async fn samr_resend(&self, number: &str, operator: &str) -> Result<bool, StoreError>;
}

/// The audit chain: every change's entry is appended in the change's own transaction by the
/// methods above; this is what is left — events that change nothing else, reading the chain, and
/// keeping its signed heads.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends events that change nothing else (an operator's action, a configuration reload).
    async fn audit_append(&self, events: Vec<yrdx_evidence::AuditEvent>, at_ms: i64) -> Result<(), StoreError>;
    /// Up to `limit` entries from position `from` on, in order.
    async fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<yrdx_evidence::AuditEntry>, StoreError>;
    /// The newest entry of the chain, if any (read from the end, whatever the chain's length).
    async fn audit_last_entry(&self) -> Result<Option<yrdx_evidence::AuditEntry>, StoreError>;
    /// The signed heads, in position order.
    async fn audit_heads(&self) -> Result<Vec<yrdx_evidence::SignedHead>, StoreError>;
    /// The newest signed head, if any.
    async fn audit_last_head(&self) -> Result<Option<yrdx_evidence::SignedHead>, StoreError>;
    /// Keeps a signed head.
    async fn audit_store_head(&self, head: yrdx_evidence::SignedHead) -> Result<(), StoreError>;
    /// The stored bytes of a submission (to check them against the chain).
    async fn document(&self, sender: &str, message_id: &str) -> Result<Option<Vec<u8>>, StoreError>;
}

/// Work exactly one replica does at a time.
#[async_trait]
pub trait Leadership: Send + Sync {
    /// Takes the lease of `role` if no live replica holds it. The lease ends when it is dropped
    /// or when the process holding it dies.
    async fn try_lead(&self, role: LeaderRole) -> Result<Option<Box<dyn LeaderLease>>, StoreError>;
}

/// A held leadership lease.
#[async_trait]
pub trait LeaderLease: Send + Sync {
    /// Whether the lease is still held (false once its connection to the database is gone).
    async fn is_held(&self) -> bool;
}

/// Everything the gateway needs of a store.
pub trait Store:
    Intake + Mailboxes + WorkflowRecords + CaseLedger + SamrOutbox + AuditLog + Leadership + StoreCopy
{
    /// The backend's name for logs and metrics (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;
}

/// Where the store is: a SQLite file path or a `postgres://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded SQLite file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl StoreLocation {
    /// Reads a configuration value: `postgres://…` / `postgresql://…` is PostgreSQL, anything
    /// else a SQLite file path (relative to `base`).
    pub fn parse(value: &str, base: &std::path::Path) -> StoreLocation {
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            StoreLocation::Postgres(value.to_string())
        } else {
            let p = std::path::Path::new(value);
            StoreLocation::Sqlite(if p.is_absolute() { p.to_path_buf() } else { base.join(p) })
        }
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sqlite(p) => write!(f, "{}", p.display()),
            // Never print a password.
            StoreLocation::Postgres(url) => write!(f, "{}", postgres::redacted(url)),
        }
    }
}

/// Opens the store at `location`, running pending migrations.
pub async fn open(location: &StoreLocation, options: &PostgresOptions) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match location {
        StoreLocation::Sqlite(path) => {
            let path = path.clone();
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
                .await
                .map_err(|e| StoreError::task("open", e))??;
            Arc::new(store)
        }
        StoreLocation::Postgres(url) => Arc::new(PostgresStore::connect(url, options).await?),
    })
}
