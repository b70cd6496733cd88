//! Durable store behind a small trait: SQLite by default (WAL, `synchronous=FULL`). A submission is
//! committed in one transaction — its original bytes (evidence), its canonical records and every
//! delivery it causes — before the partner gets an answer.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store's lock was poisoned by a panic elsewhere.
    #[error("store: lock poisoned")]
    Poisoned,
    /// The group commit this submission was part of failed.
    #[error("store: group commit failed: {0}")]
    GroupCommit(String),
}

/// A canonical record to keep.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// Record kind name (`sampling` …).
    pub kind: String,
    /// Record id.
    pub id: String,
    /// Canonical JSON of the record.
    pub canonical: String,
}

/// A document to queue for a recipient.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Recipient region (its mailbox).
    pub recipient: String,
    /// Message id of the delivered document.
    pub message_id: String,
    /// The document, in the recipient's format.
    pub document: Vec<u8>,
}

/// Everything one accepted submission writes.
#[derive(Debug, Clone)]
pub struct Submission {
    /// Sender region.
    pub sender: String,
    /// Envelope message id.
    pub message_id: String,
    /// SHA-256 of the submitted bytes, hex.
    pub digest: String,
    /// The submitted bytes.
    pub document: Vec<u8>,
    /// The encoded `SubmitReply` to give again on a duplicate.
    pub reply: Vec<u8>,
    /// Canonical records.
    pub records: Vec<StoredRecord>,
    /// Deliveries caused.
    pub deliveries: Vec<NewDelivery>,
    /// Records queued for SAMR packages.
    pub samr: Vec<StoredRecord>,
    /// Milliseconds since the epoch.
    pub received_at_ms: i64,
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// Stored now.
    New,
    /// The same sender and message id were stored before: their digest and reply.
    Existing {
        /// Digest of the first submission.
        digest: String,
        /// Reply given to the first submission.
        reply: Vec<u8>,
    },
}

/// A delivery taken from a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    /// Delivery id (to acknowledge).
    pub delivery_id: String,
    /// Message id of the document.
    pub message_id: String,
    /// The document.
    pub document: Vec<u8>,
    /// 1 on first delivery, +1 on each redelivery.
    pub attempt: u32,
}

/// The store the gateway needs (a PostgreSQL backend implements the same).
pub trait Store: Send + Sync {
    /// The stored submission of a sender and message id: (digest, reply).
    fn message(&self, sender: &str, message_id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError>;
    /// Commits a submission atomically, or reports the one already stored under its key.
    fn commit(&self, submission: Submission) -> Result<Committed, StoreError>;
    /// The canonical JSON of a record.
    fn record(&self, kind: &str, id: &str) -> Result<Option<String>, StoreError>;
    /// Takes up to `max` visible deliveries of a mailbox, oldest first, making them invisible for
    /// `visibility_ms` and counting the attempt.
    fn take(
        &self,
        recipient: &str,
        max: usize,
        now_ms: i64,
        visibility_ms: i64,
    ) -> Result<Vec<PendingDelivery>, StoreError>;
    /// Deliveries of a mailbox sent and not acknowledged whose visibility has not run out.
    fn in_flight(&self, recipient: &str, now_ms: i64) -> Result<usize, StoreError>;
    /// Makes unacknowledged deliveries visible again (their stream dropped).
    fn release(&self, delivery_ids: &[String]) -> Result<(), StoreError>;
    /// Acknowledges deliveries of a mailbox; returns how many were pending.
    fn ack(&self, recipient: &str, delivery_ids: &[String]) -> Result<u32, StoreError>;
    /// Unacknowledged deliveries in a mailbox.
    fn depth(&self, recipient: &str) -> Result<u64, StoreError>;
}

impl SqliteStore {
    /// Stored sampling records of a plan and region, other than `except`, counted up to
    /// `at_most` (the quota: counting further would cost time and change no decision).
    pub fn sampling_count(&self, plan_id: &str, region: &str, except: &str, at_most: u64) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        let n: i64 = conn
            .prepare_cached(
                "SELECT COUNT(*) FROM (SELECT 1 FROM records WHERE kind = 'sampling' AND record_id != ?3
             AND json_extract(canonical, '$.planId') = ?1 AND json_extract(canonical, '$.samplingRegion') = ?2
             LIMIT ?4)",
            )?
            .query_row(params![plan_id, region, except, at_most.min(i64::MAX as u64) as i64], |r| r.get(0))?;
        Ok(n as u64)
    }

    /// The plan's sampling records with their samples' results and cases, in one query (a plan
    /// summary used to cost a query per sample).
    pub fn plan_records(&self, plan_id: &str) -> Result<PlanRecords, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "WITH s AS (SELECT record_id, canonical FROM records
                        WHERE kind = 'sampling' AND json_extract(canonical, '$.planId') = ?1)
             SELECT 0, canonical FROM s
             UNION ALL
             SELECT 1, r.canonical FROM s CROSS JOIN records r
               ON r.kind = 'inspection' AND json_extract(r.canonical, '$.sampleId') = +s.record_id
             UNION ALL
             SELECT 2, r.canonical FROM s CROSS JOIN records r
               ON r.kind = 'case_transfer' AND json_extract(r.canonical, '$.sampleId') = +s.record_id",
        )?;
        let mut out = PlanRecords::default();
        let rows = stmt.query_map(params![plan_id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (what, json) = row?;
            match what {
                0 => out.samplings.push(json),
                1 => out.inspections.push(json),
                _ => out.cases.push(json),
            }
        }
        Ok(out)
    }

    /// Records waiting for a SAMR package: (kind, record id), oldest first.
    pub fn samr_waiting(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.reader()?;
        let mut stmt =
            conn.prepare_cached("SELECT kind, record_id FROM samr_outbox WHERE package IS NULL ORDER BY seq")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Canonical JSON of stored sampling records of one product (mutual recognition).
    pub fn samplings_of_product(&self, uscc: &str, brand: &str, model: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT canonical FROM records WHERE kind = 'sampling'
             AND json_extract(canonical, '$.producer.uscc') = ?1
             AND COALESCE(json_extract(canonical, '$.product.brand'), '') = ?2
             AND COALESCE(json_extract(canonical, '$.product.model'), '') = ?3",
        )?;
        let rows = stmt.query_map(params![uscc, brand, model], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The embedded SQLite store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Submissions waiting to be committed; whoever holds the connection next commits them all in
    /// one transaction (group commit: one fsync for many submissions, each still answered only
    /// after its own data is durable).
    waiting: Mutex<Vec<Arc<CommitSlot>>>,
    /// A second connection for reads: in WAL mode they see the last commit without waiting for
    /// the writer's fsync. `None` for an in-memory store (a second connection would be another
    /// database).
    reader: Option<Mutex<Connection>>,
}

const MIGRATIONS: &[&str] = &[
    // 1: messages (evidence), records, deliveries.
    "CREATE TABLE messages (
        sender TEXT NOT NULL,
        message_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        document BLOB NOT NULL,
        reply BLOB NOT NULL,
        received_at_ms INTEGER NOT NULL,
        PRIMARY KEY (sender, message_id)
    );
    CREATE TABLE records (
        kind TEXT NOT NULL,
        record_id TEXT NOT NULL,
        sender TEXT NOT NULL,
        message_id TEXT NOT NULL,
        canonical TEXT NOT NULL,
        stored_at_ms INTEGER NOT NULL,
        PRIMARY KEY (kind, record_id)
    );
    CREATE TABLE deliveries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient TEXT NOT NULL,
        message_id TEXT NOT NULL,
        document BLOB NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        visible_at_ms INTEGER NOT NULL DEFAULT 0,
        acked INTEGER NOT NULL DEFAULT 0,
        created_at_ms INTEGER NOT NULL
    );
    CREATE INDEX deliveries_mailbox ON deliveries (recipient, acked, seq);",
    // 2: records waiting for a SAMR package (AJYS case forwards, CZJG closed cases …).
    "CREATE TABLE samr_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        record_id TEXT NOT NULL,
        canonical TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        package TEXT
    );",
    // 3: SAMR packages: numbered per day, never reused; kept until SAMR accepts them.
    "CREATE TABLE samr_packages (
        number TEXT PRIMARY KEY,
        day TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        package_type TEXT NOT NULL,
        bytes BLOB NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms INTEGER NOT NULL DEFAULT 0,
        reason TEXT NOT NULL DEFAULT '',
        created_at_ms INTEGER NOT NULL,
        UNIQUE (day, sequence)
    );",
    // 4: overdue notices sent, once per case and stage.
    "CREATE TABLE overdue_notices (
        case_id TEXT NOT NULL,
        status INTEGER NOT NULL,
        sent_at_ms INTEGER NOT NULL,
        PRIMARY KEY (case_id, status)
    );",
    // 5: the workflow lookups on sampling records (quota, mutual recognition) use indexes, so a
    // submission costs the same with a million records stored as with none.
    "CREATE INDEX records_sampling_plan ON records
        (json_extract(canonical, '$.planId'), json_extract(canonical, '$.samplingRegion'))
        WHERE kind = 'sampling';
    CREATE INDEX records_sampling_product ON records (json_extract(canonical, '$.producer.uscc'),
        COALESCE(json_extract(canonical, '$.product.brand'), ''), COALESCE(json_extract(canonical, '$.product.model'), ''))
        WHERE kind = 'sampling';",
    // 6: counting a mailbox's deliveries in flight reads only those, not the whole backlog.
    "CREATE INDEX deliveries_in_flight ON deliveries (recipient, acked, visible_at_ms);",
    // 7: a plan summary finds the results and cases of the plan's samples by index.
    "CREATE INDEX records_inspection_sample ON records (json_extract(canonical, '$.sampleId'))
        WHERE kind = 'inspection';
    CREATE INDEX records_case_sample ON records (json_extract(canonical, '$.sampleId'))
        WHERE kind = 'case_transfer';",
];

/// What a plan summary counts, read in one query: the plan's sampling records, and the results
/// and cases of those samples (canonical JSON each).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PlanRecords {
    /// Sampling records of the plan.
    pub samplings: Vec<String>,
    /// Inspection results of those samples.
    pub inspections: Vec<String>,
    /// Disposal cases of those samples.
    pub cases: Vec<String>,
}

/// A SAMR package as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamrPackage {
    /// `SJB-310000-20240402-0001`.
    pub number: String,
    /// `CCJG`, `FXBS` …
    pub package_type: String,
    /// The GB18030 bytes.
    pub bytes: Vec<u8>,
    /// `pending`, `accepted` or `parked`.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// SAMR's reason (rejected) or the last failure (parked).
    pub reason: String,
}

/// A record waiting in the SAMR outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Row id.
    pub seq: i64,
    /// Record kind (`spot_check_result` …).
    pub kind: String,
    /// Canonical JSON.
    pub canonical: String,
    /// When it was queued.
    pub created_at_ms: i64,
}

impl SqliteStore {
    /// Canonical JSON of every stored record of a kind, in id order.
    pub fn records_of_kind(&self, kind: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached("SELECT canonical FROM records WHERE kind = ?1 ORDER BY record_id")?;
        let rows = stmt.query_map(params![kind], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Canonical JSON of stored records of a kind whose JSON field `path` (`$.planId`) equals `value`.
    pub fn records_where(&self, kind: &str, path: &str, value: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT canonical FROM records WHERE kind = ?1 AND json_extract(canonical, ?2) = ?3 ORDER BY record_id",
        )?;
        let rows = stmt.query_map(params![kind, path, value], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the oldest unacknowledged delivery of a mailbox was queued (ms since the epoch).
    pub fn oldest_unacknowledged_ms(&self, recipient: &str) -> Result<Option<i64>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT created_at_ms FROM deliveries WHERE recipient = ?1 AND acked = 0 ORDER BY seq LIMIT 1",
        )?;
        let mut rows = stmt.query(params![recipient])?;
        Ok(match rows.next()? {
            Some(row) => Some(row.get(0)?),
            None => None,
        })
    }

    /// Whether the overdue notice of a case's stage was sent.
    pub fn overdue_notified(&self, case_id: &str, status: i32) -> Result<bool, StoreError> {
        let conn = self.reader()?;
        let n: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM overdue_notices WHERE case_id = ?1 AND status = ?2")?
            .query_row(params![case_id, status], |r| r.get(0))?;
        Ok(n > 0)
    }

    /// Records an overdue notice and queues its deliveries in one transaction; false (and nothing
    /// queued) when the notice was already sent.
    pub fn commit_overdue_notice(
        &self,
        case_id: &str,
        status: i32,
        deliveries: &[NewDelivery],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx
            .prepare_cached("INSERT OR IGNORE INTO overdue_notices (case_id, status, sent_at_ms) VALUES (?1, ?2, ?3)")?
            .execute(params![case_id, status, now_ms])?;
        if inserted == 0 {
            return Ok(false);
        }
        insert_deliveries(&tx, deliveries, now_ms)?;
        tx.commit()?;
        Ok(true)
    }

    /// Replaces a stored disposal case whose due date was recomputed, and queues its notices, in
    /// one transaction — only if the stored copy is still `expected` (a feedback committed in
    /// between wins; the next pass looks again). Returns whether it was replaced.
    pub fn commit_case_revision(
        &self,
        case_id: &str,
        expected: &str,
        revised: &str,
        deliveries: &[NewDelivery],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let updated = tx
            .prepare_cached(
                "UPDATE records SET canonical = ?1, stored_at_ms = ?2
                 WHERE kind = 'case_transfer' AND record_id = ?3 AND canonical = ?4",
            )?
            .execute(params![revised, now_ms, case_id, expected])?;
        if updated == 0 {
            return Ok(false);
        }
        insert_deliveries(&tx, deliveries, now_ms)?;
        tx.commit()?;
        Ok(true)
    }

    /// Records waiting for a package, oldest first.
    pub fn samr_outbox(&self) -> Result<Vec<OutboxRow>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT seq, kind, canonical, created_at_ms FROM samr_outbox WHERE package IS NULL ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(OutboxRow { seq: r.get(0)?, kind: r.get(1)?, canonical: r.get(2)?, created_at_ms: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Creates a package for outbox rows in one transaction: takes the next sequence number of
    /// `day` (never reused), lets `build` write the bytes for it, stores the package as pending
    /// and marks the rows as packaged.
    pub fn samr_create_package(
        &self,
        day: &str,
        package_type: &str,
        rows: &[i64],
        now_ms: i64,
        build: impl FnOnce(u32) -> Result<(String, Vec<u8>), String>,
    ) -> Result<Result<String, String>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(sequence), 0) FROM samr_packages WHERE day = ?1")?
            .query_row(params![day], |r| r.get(0))?;
        let sequence = (last + 1) as u32;
        let (number, bytes) = match build(sequence) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        tx.prepare_cached("INSERT INTO samr_packages (number, day, sequence, package_type, bytes, state, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)")?.execute(params![number, day, sequence, package_type, bytes, now_ms])?;
        for seq in rows {
            tx.prepare_cached("UPDATE samr_outbox SET package = ?1 WHERE seq = ?2")?.execute(params![number, seq])?;
        }
        tx.commit()?;
        Ok(Ok(number))
    }

    /// Pending packages whose next attempt is due.
    pub fn samr_due(&self, now_ms: i64) -> Result<Vec<SamrPackage>, StoreError> {
        self.samr_query("WHERE state = 'pending' AND next_attempt_ms <= ?1 ORDER BY day, sequence", params![now_ms])
    }

    /// Parked packages, for operators.
    pub fn samr_parked(&self) -> Result<Vec<SamrPackage>, StoreError> {
        self.samr_query("WHERE state = 'parked' ORDER BY day, sequence", [])
    }

    /// Every package (operators, tests).
    pub fn samr_packages(&self) -> Result<Vec<SamrPackage>, StoreError> {
        self.samr_query("ORDER BY day, sequence", [])
    }

    fn samr_query(&self, tail: &str, p: impl rusqlite::Params) -> Result<Vec<SamrPackage>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT number, package_type, bytes, state, attempts, reason FROM samr_packages {tail}"
        ))?;
        let rows = stmt.query_map(p, |r| {
            Ok(SamrPackage {
                number: r.get(0)?,
                package_type: r.get(1)?,
                bytes: r.get(2)?,
                state: r.get(3)?,
                attempts: r.get(4)?,
                reason: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records the outcome of an attempt.
    pub fn samr_record_attempt(
        &self,
        number: &str,
        state: &str,
        attempts: u32,
        next_attempt_ms: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.prepare_cached(
            "UPDATE samr_packages SET state = ?2, attempts = ?3, next_attempt_ms = ?4, reason = ?5 WHERE number = ?1",
        )?
        .execute(params![number, state, attempts, next_attempt_ms, reason])?;
        Ok(())
    }

    /// Puts a parked package back in line (an operator's resend); false when it is not parked.
    pub fn samr_resend(&self, number: &str) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n = conn.prepare_cached("UPDATE samr_packages SET state = 'pending', attempts = 0, next_attempt_ms = 0 WHERE number = ?1 AND state = 'parked'")?.execute(params![number])?;
        Ok(n == 1)
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store file and runs pending migrations.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path)?;
        let mut store = SqliteStore::init(conn)?;
        let reader = Connection::open(path)?;
        reader.pragma_update(None, "cache_size", -16384)?;
        reader.pragma_update(None, "query_only", true)?;
        reader.set_prepared_statement_cache_capacity(64);
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        store.reader = Some(Mutex::new(reader));
        Ok(store)
    }

    /// An in-memory store (tests).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        SqliteStore::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<SqliteStore, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // 32 MiB of page cache: the hot pages (mailboxes, indexes) stay in memory instead of
        // being copied in from the OS on every read.
        conn.pragma_update(None, "cache_size", -32768)?;
        // Every statement of the store stays prepared (rusqlite keeps 16 by default; the store
        // has more, and re-preparing a statement costs more than running it).
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
        let version: i64 = conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            conn.execute_batch(&format!("BEGIN; {sql}; INSERT INTO schema_version VALUES ({}); COMMIT;", i + 1))?;
        }
        Ok(SqliteStore { conn: Mutex::new(conn), waiting: Mutex::new(Vec::new()), reader: None })
    }

    fn reader(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        match &self.reader {
            Some(r) => r.lock().map_err(|_| StoreError::Poisoned),
            None => self.conn(),
        }
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }
}

fn parse_ids(ids: &[String]) -> Vec<i64> {
    ids.iter().filter_map(|s| s.parse::<i64>().ok()).collect()
}

impl Store for SqliteStore {
    fn message(&self, sender: &str, message_id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let conn = self.reader()?;
        let found = conn
            .prepare_cached("SELECT digest, reply FROM messages WHERE sender = ?1 AND message_id = ?2")?
            .query_row(params![sender, message_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional();
        Ok(found?)
    }

    fn commit(&self, s: Submission) -> Result<Committed, StoreError> {
        let slot = Arc::new(CommitSlot { submission: s, result: Mutex::new(None) });
        self.waiting.lock().map_err(|_| StoreError::Poisoned)?.push(slot.clone());
        let mut conn = self.conn()?;
        // A leader before us may have committed this submission while we waited for the lock.
        if let Some(done) = slot.take_result() {
            return done;
        }
        let group = std::mem::take(&mut *self.waiting.lock().map_err(|_| StoreError::Poisoned)?);
        let submissions: Vec<&Submission> = group.iter().map(|g| &g.submission).collect();
        match commit_group(&mut conn, &submissions) {
            Ok(outcomes) => {
                for (other, outcome) in group.iter().zip(outcomes) {
                    other.set(outcome);
                }
            }
            Err(e) => {
                let message = e.to_string();
                for other in &group {
                    other.set(Err(StoreError::GroupCommit(message.clone())));
                }
            }
        }
        drop(conn);
        slot.take_result().unwrap_or(Err(StoreError::GroupCommit("the submission was not committed".into())))
    }

    fn record(&self, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
        let conn = self.reader()?;
        let found = conn
            .prepare_cached("SELECT canonical FROM records WHERE kind = ?1 AND record_id = ?2")?
            .query_row(params![kind, id], |r| r.get(0))
            .optional();
        Ok(found?)
    }

    fn take(
        &self,
        recipient: &str,
        max: usize,
        now_ms: i64,
        visibility_ms: i64,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows: Vec<(i64, String, Vec<u8>, u32)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, message_id, document, attempt FROM deliveries
                 WHERE recipient = ?1 AND acked = 0 AND visible_at_ms <= ?2 ORDER BY seq LIMIT ?3",
            )?;
            let mapped = stmt.query_map(params![recipient, now_ms, max as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            mapped.collect::<Result<_, _>>()?
        };
        for (seq, ..) in &rows {
            tx.prepare_cached("UPDATE deliveries SET attempt = attempt + 1, visible_at_ms = ?2 WHERE seq = ?1")?
                .execute(params![seq, now_ms + visibility_ms])?;
        }
        tx.commit()?;
        Ok(rows
            .into_iter()
            .map(|(seq, message_id, document, attempt)| PendingDelivery {
                delivery_id: seq.to_string(),
                message_id,
                document,
                attempt: attempt + 1,
            })
            .collect())
    }

    fn in_flight(&self, recipient: &str, now_ms: i64) -> Result<usize, StoreError> {
        let conn = self.reader()?;
        let n: i64 = conn.prepare_cached("SELECT COUNT(*) FROM deliveries WHERE recipient = ?1 AND acked = 0 AND attempt > 0 AND visible_at_ms > ?2")?.query_row(params![recipient, now_ms], |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    fn release(&self, delivery_ids: &[String]) -> Result<(), StoreError> {
        let conn = self.conn()?;
        for seq in parse_ids(delivery_ids) {
            conn.prepare_cached("UPDATE deliveries SET visible_at_ms = 0 WHERE seq = ?1 AND acked = 0")?
                .execute(params![seq])?;
        }
        Ok(())
    }

    fn ack(&self, recipient: &str, delivery_ids: &[String]) -> Result<u32, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let mut n = 0;
        for seq in parse_ids(delivery_ids) {
            n += tx
                .prepare_cached("UPDATE deliveries SET acked = 1 WHERE seq = ?1 AND recipient = ?2 AND acked = 0")?
                .execute(params![seq, recipient])? as u32;
        }
        tx.commit()?;
        Ok(n)
    }

    fn depth(&self, recipient: &str) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        let n: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM deliveries WHERE recipient = ?1 AND acked = 0")?
            .query_row(params![recipient], |r| r.get(0))?;
        Ok(n as u64)
    }
}

/// One submission waiting for a group commit, and its outcome once committed.
struct CommitSlot {
    submission: Submission,
    result: Mutex<Option<Result<Committed, StoreError>>>,
}

impl CommitSlot {
    fn set(&self, r: Result<Committed, StoreError>) {
        if let Ok(mut slot) = self.result.lock() {
            if slot.is_none() {
                *slot = Some(r);
            }
        }
    }

    fn take_result(&self) -> Option<Result<Committed, StoreError>> {
        self.result.lock().ok().and_then(|mut r| r.take())
    }
}

/// Commits a group in one transaction, each submission under its own savepoint so one that fails
/// fails alone; returns each one's outcome once the transaction is durable.
fn commit_group(
    conn: &mut Connection,
    group: &[&Submission],
) -> Result<Vec<Result<Committed, StoreError>>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(group.len());
    for s in group {
        let existing: Option<(String, Vec<u8>)> = tx
            .prepare_cached("SELECT digest, reply FROM messages WHERE sender = ?1 AND message_id = ?2")?
            .query_row(params![s.sender, s.message_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((digest, reply)) = existing {
            outcomes.push(Ok(Committed::Existing { digest, reply }));
            continue;
        }
        tx.execute_batch("SAVEPOINT one")?;
        match insert_submission(&tx, s) {
            Ok(()) => {
                tx.execute_batch("RELEASE one")?;
                outcomes.push(Ok(Committed::New));
            }
            Err(e) => {
                tx.execute_batch("ROLLBACK TO one; RELEASE one")?;
                outcomes.push(Err(e));
            }
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

/// Queues deliveries inside a transaction, created at `now_ms`.
fn insert_deliveries(
    tx: &rusqlite::Transaction<'_>,
    deliveries: &[NewDelivery],
    now_ms: i64,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO deliveries (recipient, message_id, document, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for d in deliveries {
        stmt.execute(params![d.recipient, d.message_id, d.document, now_ms])?;
    }
    Ok(())
}

/// Writes one submission's rows inside a transaction (the caller checked it is new).
fn insert_submission(tx: &rusqlite::Transaction<'_>, s: &Submission) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO messages (sender, message_id, digest, document, reply, received_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![s.sender, s.message_id, s.digest, s.document, s.reply, s.received_at_ms])?;
    for r in &s.records {
        tx.prepare_cached(
            "INSERT INTO records (kind, record_id, sender, message_id, canonical, stored_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (kind, record_id) DO UPDATE SET sender = excluded.sender, message_id = excluded.message_id,
             canonical = excluded.canonical, stored_at_ms = excluded.stored_at_ms",
        )?
        .execute(params![r.kind, r.id, s.sender, s.message_id, r.canonical, s.received_at_ms])?;
    }
    insert_deliveries(tx, &s.deliveries, s.received_at_ms)?;
    for r in &s.samr {
        tx.prepare_cached(
            "INSERT INTO samr_outbox (kind, record_id, canonical, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![r.kind, r.id, r.canonical, s.received_at_ms])?;
    }
    Ok(())
}

impl SqliteStore {
    /// Commits many submissions in one transaction, skipping any already stored (bulk loading:
    /// migrations and the benchmark harness's large stores). Returns how many were new, or the
    /// first submission that failed (each one is stored whole or not at all).
    pub fn bulk_commit(&self, submissions: &[Submission]) -> Result<usize, StoreError> {
        let refs: Vec<&Submission> = submissions.iter().collect();
        let outcomes = commit_group(&mut *self.conn()?, &refs)?;
        let mut new = 0;
        for outcome in outcomes {
            if outcome? == Committed::New {
                new += 1;
            }
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workflow_lookups_use_indexes_not_scans() {
        let store = SqliteStore::in_memory().unwrap();
        let conn = store.conn().unwrap();
        for (sql, index) in [
            (
                "SELECT COUNT(*) FROM (SELECT 1 FROM records WHERE kind = 'sampling' AND record_id != 'x'
                 AND json_extract(canonical, '$.planId') = 'p' AND json_extract(canonical, '$.samplingRegion') = 'r'
                 LIMIT 10)",
                "records_sampling_plan",
            ),
            (
                "SELECT canonical FROM records WHERE kind = 'sampling'
                 AND json_extract(canonical, '$.producer.uscc') = 'u'
                 AND COALESCE(json_extract(canonical, '$.product.brand'), '') = 'b'
                 AND COALESCE(json_extract(canonical, '$.product.model'), '') = 'm'",
                "records_sampling_product",
            ),
            (
                "SELECT COUNT(*) FROM deliveries WHERE recipient = 'r' AND acked = 0 AND attempt > 0 AND visible_at_ms > 5",
                "deliveries_in_flight",
            ),
        ] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(plan.iter().any(|p| p.contains(index)), "{index} not used: {plan:?}");
        }
        // The plan summary's one query uses an index for each of its three parts (CROSS JOIN
        // keeps SQLite from driving the join from every stored result instead of the plan's samples).
        let sql = "EXPLAIN QUERY PLAN WITH s AS (SELECT record_id, canonical FROM records
                        WHERE kind = 'sampling' AND json_extract(canonical, '$.planId') = 'p')
             SELECT 0, canonical FROM s
             UNION ALL
             SELECT 1, r.canonical FROM s CROSS JOIN records r
               ON r.kind = 'inspection' AND json_extract(r.canonical, '$.sampleId') = +s.record_id
             UNION ALL
             SELECT 2, r.canonical FROM s CROSS JOIN records r
               ON r.kind = 'case_transfer' AND json_extract(r.canonical, '$.sampleId') = +s.record_id";
        let plan: Vec<String> = conn
            .prepare(sql)
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for index in ["records_sampling_plan", "records_inspection_sample", "records_case_sample"] {
            assert!(plan.iter().any(|p| p.contains(index)), "{index} not used: {plan:?}");
        }
    }

    #[test]
    fn a_plan_summary_reads_its_records_in_one_query() {
        let store = SqliteStore::in_memory().unwrap();
        let mut s = submission("M-1", &[]);
        s.records = vec![
            StoredRecord {
                kind: "sampling".into(),
                id: "S-1".into(),
                canonical: r#"{"sampleId":"S-1","planId":"P"}"#.into(),
            },
            StoredRecord {
                kind: "sampling".into(),
                id: "S-2".into(),
                canonical: r#"{"sampleId":"S-2","planId":"Q"}"#.into(),
            },
            StoredRecord {
                kind: "inspection".into(),
                id: "R-1".into(),
                canonical: r#"{"reportNo":"R-1","sampleId":"S-1"}"#.into(),
            },
            StoredRecord {
                kind: "inspection".into(),
                id: "R-2".into(),
                canonical: r#"{"reportNo":"R-2","sampleId":"S-2"}"#.into(),
            },
            StoredRecord {
                kind: "case_transfer".into(),
                id: "C-1".into(),
                canonical: r#"{"caseId":"C-1","sampleId":"S-1"}"#.into(),
            },
        ];
        assert_eq!(store.commit(s).unwrap(), Committed::New);
        let got = store.plan_records("P").unwrap();
        assert_eq!(got.samplings, vec![r#"{"sampleId":"S-1","planId":"P"}"#.to_string()]);
        assert_eq!(got.inspections, vec![r#"{"reportNo":"R-1","sampleId":"S-1"}"#.to_string()]);
        assert_eq!(got.cases, vec![r#"{"caseId":"C-1","sampleId":"S-1"}"#.to_string()]);
        assert_eq!(store.plan_records("none").unwrap(), PlanRecords::default());
    }

    #[test]
    fn a_case_revision_replaces_only_the_copy_it_read() {
        let store = SqliteStore::in_memory().unwrap();
        let mut s = submission("M-1", &[]);
        s.records =
            vec![StoredRecord { kind: "case_transfer".into(), id: "C-1".into(), canonical: "{\"v\":1}".into() }];
        store.commit(s).unwrap();
        let notice =
            NewDelivery { recipient: "320000".into(), message_id: "C-1-DUE-20270104".into(), document: b"x".to_vec() };
        // Another copy was stored meanwhile: nothing changes, nothing is queued.
        assert!(!store
            .commit_case_revision("C-1", "{\"v\":0}", "{\"v\":2}", std::slice::from_ref(&notice), 5)
            .unwrap());
        assert_eq!(store.depth("320000").unwrap(), 0);
        assert!(store.commit_case_revision("C-1", "{\"v\":1}", "{\"v\":2}", &[notice], 5).unwrap());
        assert_eq!(store.record("case_transfer", "C-1").unwrap().as_deref(), Some("{\"v\":2}"));
        assert_eq!(store.depth("320000").unwrap(), 1);
    }

    #[test]
    fn concurrent_commits_are_grouped_and_each_answered_once() {
        // Eight threads commit the same 40 keys: every key is New exactly once, Existing otherwise.
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..40)
                        .map(|i| store.commit(submission(&format!("G{i}"), &["310000"])).unwrap())
                        .filter(|c| *c == Committed::New)
                        .count()
                })
            })
            .collect();
        let new: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(new, 40);
        assert_eq!(store.depth("310000").unwrap(), 40);
    }

    #[test]
    fn bulk_commit_skips_what_is_stored() {
        let store = SqliteStore::in_memory().unwrap();
        assert_eq!(store.bulk_commit(&[submission("1", &["310000"]), submission("2", &[])]).unwrap(), 2);
        assert_eq!(store.bulk_commit(&[submission("2", &[]), submission("3", &["310000"])]).unwrap(), 1);
        assert_eq!(store.depth("310000").unwrap(), 2);
    }

    fn submission(id: &str, recipients: &[&str]) -> Submission {
        Submission {
            sender: "320000".into(),
            message_id: id.into(),
            digest: format!("d-{id}"),
            document: b"doc".to_vec(),
            reply: b"reply".to_vec(),
            records: vec![StoredRecord { kind: "sampling".into(), id: format!("S-{id}"), canonical: "{}".into() }],
            deliveries: recipients
                .iter()
                .map(|r| NewDelivery {
                    recipient: r.to_string(),
                    message_id: id.into(),
                    document: id.as_bytes().to_vec(),
                })
                .collect(),
            received_at_ms: 1,
            samr: vec![],
        }
    }

    #[test]
    fn commit_is_idempotent_by_sender_and_message_id() {
        let s = SqliteStore::in_memory().unwrap();
        assert_eq!(s.commit(submission("M1", &["310000"])).unwrap(), Committed::New);
        let again = s.commit(submission("M1", &["310000"])).unwrap();
        assert_eq!(again, Committed::Existing { digest: "d-M1".into(), reply: b"reply".to_vec() });
        assert_eq!(s.depth("310000").unwrap(), 1, "a duplicate queues nothing");
        assert_eq!(s.record("sampling", "S-M1").unwrap().as_deref(), Some("{}"));
    }

    #[test]
    fn mailbox_order_visibility_and_ack() {
        let s = SqliteStore::in_memory().unwrap();
        for id in ["A", "B", "C"] {
            s.commit(submission(id, &["310000", "330000"])).unwrap();
        }
        let first = s.take("310000", 2, 1000, 60_000).unwrap();
        assert_eq!(first.iter().map(|d| d.message_id.as_str()).collect::<Vec<_>>(), ["A", "B"]);
        assert!(first.iter().all(|d| d.attempt == 1));
        assert_eq!(s.in_flight("310000", 1000).unwrap(), 2);
        assert_eq!(s.take("310000", 5, 1000, 60_000).unwrap().len(), 1, "only C is visible");
        // Not acknowledged within the visibility timeout: sent again with attempt 2.
        let again = s.take("310000", 5, 61_001, 60_000).unwrap();
        assert_eq!(
            again.iter().map(|d| (d.message_id.as_str(), d.attempt)).collect::<Vec<_>>(),
            [("A", 2), ("B", 2), ("C", 2)]
        );
        // Acks only count for the caller's own mailbox.
        assert_eq!(s.ack("330000", &[again[0].delivery_id.clone()]).unwrap(), 0);
        assert_eq!(s.ack("310000", &[again[0].delivery_id.clone(), "junk".into()]).unwrap(), 1);
        assert_eq!(s.ack("310000", &[again[0].delivery_id.clone()]).unwrap(), 0, "acknowledged once");
        assert_eq!(s.depth("310000").unwrap(), 2);
        s.release(&[again[1].delivery_id.clone()]).unwrap();
        assert_eq!(s.take("310000", 5, 61_002, 60_000).unwrap()[0].message_id, "B");
        assert_eq!(s.depth("330000").unwrap(), 3, "other mailboxes untouched");
    }

    #[test]
    fn survives_reopening() {
        let dir = std::env::temp_dir().join(format!("yrdx-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sqlite");
        {
            let s = SqliteStore::open(&path).unwrap();
            s.commit(submission("M1", &["310000"])).unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.depth("310000").unwrap(), 1);
        assert!(s.message("320000", "M1").unwrap().is_some());
        std::fs::remove_dir_all(&dir).ok();
    }
}
