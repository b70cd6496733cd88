//! Moving a whole store from one backend to another (`yrdx store copy`): every row of every
//! table, ids kept (a partner may hold delivery ids), then counts and a checksum compared.

use super::{Store, StoreError};
use async_trait::async_trait;
use sha2::{Digest, Sha256};

/// The tables of a store, in the order they are copied.
pub const TABLES: [&str; 8] = [
    "messages",
    "records",
    "deliveries",
    "samr_outbox",
    "samr_packages",
    "overdue_notices",
    "audit_log",
    "audit_heads",
];

/// One stored row, backend-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    /// A submission's evidence: `messages`.
    Message {
        /// Sender region.
        sender: String,
        /// Message id.
        message_id: String,
        /// SHA-256 of the bytes, hex.
        digest: String,
        /// The submitted bytes.
        document: Vec<u8>,
        /// The encoded reply.
        reply: Vec<u8>,
        /// When it was received.
        received_at_ms: i64,
        /// Its entry in the audit chain.
        audit_position: Option<i64>,
        /// SM3 of its bytes, hex.
        document_sm3: String,
    },
    /// A canonical record: `records`.
    Record {
        /// Kind name.
        kind: String,
        /// Record id.
        record_id: String,
        /// Sender region.
        sender: String,
        /// Message id it came in.
        message_id: String,
        /// Canonical JSON.
        canonical: String,
        /// When it was stored.
        stored_at_ms: i64,
    },
    /// A delivery: `deliveries`.
    Delivery {
        /// Delivery id.
        seq: i64,
        /// Recipient region.
        recipient: String,
        /// Message id.
        message_id: String,
        /// The document.
        document: Vec<u8>,
        /// Attempts so far.
        attempt: i64,
        /// Invisible until.
        visible_at_ms: i64,
        /// Acknowledged.
        acked: bool,
        /// Queued at.
        created_at_ms: i64,
    },
    /// A SAMR outbox row: `samr_outbox`.
    Outbox {
        /// Row id.
        seq: i64,
        /// Kind name.
        kind: String,
        /// Record id.
        record_id: String,
        /// Canonical JSON.
        canonical: String,
        /// Queued at.
        created_at_ms: i64,
        /// The package it went into.
        package: Option<String>,
    },
    /// A SAMR package: `samr_packages`.
    Package {
        /// Package number.
        number: String,
        /// `yyyyMMdd`.
        day: String,
        /// Sequence of the day.
        sequence: i64,
        /// Package type.
        package_type: String,
        /// GB18030 bytes.
        bytes: Vec<u8>,
        /// State name.
        state: String,
        /// Attempts.
        attempts: i64,
        /// Next attempt at.
        next_attempt_ms: i64,
        /// Reason.
        reason: String,
        /// Created at.
        created_at_ms: i64,
    },
    /// An overdue notice sent: `overdue_notices`.
    OverdueNotice {
        /// Case id.
        case_id: String,
        /// Stage.
        status: i64,
        /// Sent at.
        sent_at_ms: i64,
    },
    /// An audit entry: `audit_log`.
    AuditEntry {
        /// Position.
        position: i64,
        /// When.
        at_ms: i64,
        /// The entry as kept (JSON).
        entry: String,
    },
    /// A signed head: `audit_heads`.
    AuditHead {
        /// Position signed.
        position: i64,
        /// The head as kept (JSON).
        head: String,
    },
}

impl Row {
    /// Feeds the row, unambiguously, into a checksum.
    fn hash_into(&self, h: &mut Sha256) {
        fn s(h: &mut Sha256, v: &[u8]) {
            h.update((v.len() as u64).to_be_bytes());
            h.update(v);
        }
        fn n(h: &mut Sha256, v: i64) {
            h.update(v.to_be_bytes());
        }
        match self {
            Row::Message {
                sender,
                message_id,
                digest,
                document,
                reply,
                received_at_ms,
                audit_position,
                document_sm3,
            } => {
                h.update([1]);
                s(h, sender.as_bytes());
                s(h, message_id.as_bytes());
                s(h, digest.as_bytes());
                s(h, document);
                s(h, reply);
                n(h, *received_at_ms);
                n(h, audit_position.unwrap_or(-1));
                s(h, document_sm3.as_bytes());
            }
            Row::Record { kind, record_id, sender, message_id, canonical, stored_at_ms } => {
                h.update([2]);
                s(h, kind.as_bytes());
                s(h, record_id.as_bytes());
                s(h, sender.as_bytes());
                s(h, message_id.as_bytes());
                s(h, canonical.as_bytes());
                n(h, *stored_at_ms);
            }
            Row::Delivery { seq, recipient, message_id, document, attempt, visible_at_ms, acked, created_at_ms } => {
                h.update([3]);
                n(h, *seq);
                s(h, recipient.as_bytes());
                s(h, message_id.as_bytes());
                s(h, document);
                n(h, *attempt);
                n(h, *visible_at_ms);
                n(h, *acked as i64);
                n(h, *created_at_ms);
            }
            Row::Outbox { seq, kind, record_id, canonical, created_at_ms, package } => {
                h.update([4]);
                n(h, *seq);
                s(h, kind.as_bytes());
                s(h, record_id.as_bytes());
                s(h, canonical.as_bytes());
                n(h, *created_at_ms);
                s(h, package.as_deref().unwrap_or("\u{0}").as_bytes());
            }
            Row::Package {
                number,
                day,
                sequence,
                package_type,
                bytes,
                state,
                attempts,
                next_attempt_ms,
                reason,
                created_at_ms,
            } => {
                h.update([5]);
                s(h, number.as_bytes());
                s(h, day.as_bytes());
                n(h, *sequence);
                s(h, package_type.as_bytes());
                s(h, bytes);
                s(h, state.as_bytes());
                n(h, *attempts);
                n(h, *next_attempt_ms);
                s(h, reason.as_bytes());
                n(h, *created_at_ms);
            }
            Row::OverdueNotice { case_id, status, sent_at_ms } => {
                h.update([6]);
                s(h, case_id.as_bytes());
                n(h, *status);
                n(h, *sent_at_ms);
            }
            Row::AuditEntry { position, at_ms, entry } => {
                h.update([7]);
                n(h, *position);
                n(h, *at_ms);
                s(h, entry.as_bytes());
            }
            Row::AuditHead { position, head } => {
                h.update([8]);
                n(h, *position);
                s(h, head.as_bytes());
            }
        }
    }
}

/// Reading and writing whole tables, for moving a store.
#[async_trait]
pub trait StoreCopy: Send + Sync {
    /// Up to `limit` rows of `table` (one of [`TABLES`]) after the first `offset`, in the
    /// table's key order.
    async fn export_rows(&self, table: &'static str, offset: u64, limit: usize) -> Result<Vec<Row>, StoreError>;
    /// Writes rows as they are (ids kept) in one transaction; rows already present are an error.
    async fn import_rows(&self, rows: Vec<Row>) -> Result<(), StoreError>;
    /// Rows in `table` (one of [`TABLES`]).
    async fn count_rows(&self, table: &'static str) -> Result<u64, StoreError>;
    /// Makes the store's own id sequences continue after the imported ids.
    async fn after_import(&self) -> Result<(), StoreError>;
}

/// Rows and checksum of one table, on both sides of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    /// Table name.
    pub table: &'static str,
    /// Rows in the source.
    pub source_rows: u64,
    /// Rows in the target after the copy.
    pub target_rows: u64,
    /// SHA-256 over the source's rows, hex.
    pub source_sha256: String,
    /// SHA-256 over the target's rows, hex.
    pub target_sha256: String,
}

impl TableCount {
    /// Whether the table arrived whole.
    pub fn matches(&self) -> bool {
        self.source_rows == self.target_rows && self.source_sha256 == self.target_sha256
    }
}

/// What a copy did, table by table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Each table's counts and checksums.
    pub tables: Vec<TableCount>,
}

impl CopyReport {
    /// Whether every table arrived whole.
    pub fn verified(&self) -> bool {
        self.tables.iter().all(TableCount::matches)
    }
}

const PAGE: usize = 500;

/// Copies every table of `from` into `to` (which must hold none of the rows yet), then reads both
/// back and compares counts and checksums. `progress` is told (table, rows copied so far, rows
/// in the source table).
pub async fn copy_store(
    from: &dyn Store,
    to: &dyn Store,
    mut progress: impl FnMut(&'static str, u64, u64) + Send,
) -> Result<CopyReport, StoreError> {
    let mut report = CopyReport::default();
    for table in TABLES {
        let total = from.count_rows(table).await?;
        progress(table, 0, total);
        let mut offset = 0u64;
        let mut source = Sha256::new();
        loop {
            let rows = from.export_rows(table, offset, PAGE).await?;
            if rows.is_empty() {
                break;
            }
            offset += rows.len() as u64;
            for r in &rows {
                r.hash_into(&mut source);
            }
            to.import_rows(rows).await?;
            progress(table, offset, total);
        }
        let (target_rows, target) = digest_table(to, table).await?;
        report.tables.push(TableCount {
            table,
            source_rows: offset,
            target_rows,
            source_sha256: hex::encode(source.finalize()),
            target_sha256: target,
        });
    }
    to.after_import().await?;
    Ok(report)
}

/// Counts and hashes a table's rows in key order.
pub async fn digest_table(store: &dyn Store, table: &'static str) -> Result<(u64, String), StoreError> {
    let mut h = Sha256::new();
    let mut offset = 0u64;
    loop {
        let rows = store.export_rows(table, offset, PAGE).await?;
        if rows.is_empty() {
            break;
        }
        offset += rows.len() as u64;
        for r in &rows {
            r.hash_into(&mut h);
        }
    }
    Ok((offset, hex::encode(h.finalize())))
}
