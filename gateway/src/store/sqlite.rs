//! The embedded SQLite backend (the default): WAL, `synchronous=FULL`, one writer connection
//! (group commit on its writer thread) and one reader connection. A submission is committed in one
//! transaction — its original bytes (evidence), its canonical records and every delivery it causes —
//! before the partner gets an answer. Commits, leases and acknowledgements go to the writer thread,
//! which writes whatever is waiting in one transaction (each change under its own savepoint) and
//! answers each once that transaction is durable; indexed point reads run inline when the reader is
//! free, and the other async calls run on the blocking pool. The same calls are also offered as
//! blocking methods for tools and tests.

use super::copy::{self, ColumnType, Row, StoreCopy, Value};
use super::types::*;
use super::{
    AuditLog, CaseLedger, Intake, LeaderLease, Leadership, Mailboxes, SamrOutbox, Store, StoreError, WorkflowRecords,
};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::oneshot;
use yrdx_adapters::{Record, RecordKind};
use yrdx_evidence::{AuditEntry, AuditEvent, SamrPackageAction, SignedHead, Sm3Digest};
use yrdx_proto::v1::{DisposalCase, SamplingRecord};

impl SqliteStore {
    /// Stored sampling records of a plan and region, other than `except`, counted up to
    /// `at_most` (the quota: counting further would cost time and change no decision).
    pub fn sampling_count(&self, plan_id: &str, region: &str, except: &str, at_most: u64) -> Result<u64, StoreError> {
        sampling_count_in(&*self.reader()?, plan_id, region, except, at_most)
    }

    /// The plan's sampling records with their samples' results and cases, in one query (a plan
    /// summary used to cost a query per sample).
    pub fn plan_records(&self, plan_id: &str) -> Result<PlanRecords, StoreError> {
        super::codec::plan_records(self.plan_rows(plan_id)?)
    }

    fn plan_rows(&self, plan_id: &str) -> Result<RawPlanRecords, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(PLAN_ROWS)?;
        let mut out = RawPlanRecords::default();
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

    /// Stored sampling records of one product (mutual recognition).
    pub fn samplings_of_product(
        &self,
        uscc: &str,
        brand: &str,
        model: &str,
    ) -> Result<Vec<SamplingRecord>, StoreError> {
        samplings_of_product_in(&*self.reader()?, uscc, brand, model)
    }
}

/// The embedded SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// The queue of the writer thread, which commits every change waiting in it (submissions,
    /// leases, acknowledgements, releases) in one transaction (group commit: one fsync for many,
    /// each answered only once its own data is durable). Callers wait for their answer without
    /// holding a thread.
    writer: mpsc::Sender<Box<dyn GroupWrite>>,
    /// A second connection for reads: in WAL mode they see the last commit without waiting for
    /// the writer's fsync. `None` for an in-memory store (a second connection would be another
    /// database).
    reader: Option<Arc<Mutex<Connection>>>,
    /// Told each group's size (metrics).
    groups: Arc<Mutex<Option<super::GroupObserver>>>,
}

/// A plan's samples (0), their results (1) and their cases (2) in one query; CROSS JOIN keeps
/// SQLite from driving the join from every stored result instead of the plan's samples.
const PLAN_ROWS: &str = "WITH s AS (SELECT record_id, canonical FROM records
                        WHERE kind = 'sampling' AND plan_id = ?1)
             SELECT 0, canonical FROM s
             UNION ALL
             SELECT 1, r.canonical FROM s CROSS JOIN records r
               ON r.kind = 'inspection' AND json_extract(r.canonical, '$.sampleId') = +s.record_id
             UNION ALL
             SELECT 2, r.canonical FROM s CROSS JOIN records r
               ON r.kind = 'case_transfer' AND json_extract(r.canonical, '$.sampleId') = +s.record_id";

/// A mailbox's next visible deliveries. Every `LIMIT` here is `CAST(? AS INTEGER)`: SQLite's
/// planner reads a bare `LIMIT ?` parameter's value, which marks the prepared statement to be
/// compiled again whenever that parameter is bound — on every run, since every run binds it
/// (measured: the lease's SELECT was re-prepared on every call, 2.7 % of the gateway's CPU).
/// The mailbox's own index is named: it walks the mailbox in order, where the in-flight index
/// would collect every visible delivery of the backlog and sort them.
const TAKE_DELIVERIES: &str = "SELECT d.seq, d.message_id, c.document, d.attempt, d.created_at_ms
    FROM deliveries d INDEXED BY deliveries_waiting JOIN delivery_documents c ON c.seq = d.seq
    WHERE d.recipient = ?1 AND d.acked = 0 AND d.visible_at_ms <= ?2 ORDER BY d.seq LIMIT CAST(?3 AS INTEGER)";

/// A mailbox's deliveries leased and not yet visible again, counted from the in-flight index
/// alone: only a lease sets `visible_at_ms` past the present (queued and released deliveries
/// hold 0), so the index's range is the leased ones.
const IN_FLIGHT: &str =
    "SELECT COUNT(*) FROM deliveries WHERE recipient = ?1 AND acked = 0 AND visible_at_ms > MAX(?2, 0)";

/// The chain's newest entry.
const AUDIT_TIP: &str = "SELECT entry FROM audit_log ORDER BY position DESC LIMIT 1";

/// Audit entries from a position on, in order.
const AUDIT_ENTRIES_FROM: &str =
    "SELECT entry FROM audit_log WHERE position >= ?1 ORDER BY position LIMIT CAST(?2 AS INTEGER)";

/// Fills the kept quota counts from the sampling records themselves (migration 10, and a copy).
macro_rules! samplings_counted_from_rows {
    () => {
        "INSERT INTO sampling_counts (plan_id, sampling_region, n)
         SELECT plan_id, sampling_region, COUNT(*) FROM records WHERE kind = 'sampling'
         GROUP BY plan_id, sampling_region"
    };
}

/// Every kept quota count again from the rows (after a copy).
const RECOUNT_SAMPLINGS: &str = concat!("DELETE FROM sampling_counts; ", samplings_counted_from_rows!(), ";");

/// A region's sampling records in a plan, other than `?3`: the kept count (migration 10) less the
/// record itself when it is already stored there.
const SAMPLING_COUNT: &str =
    "SELECT COALESCE((SELECT n FROM sampling_counts WHERE plan_id = ?1 AND sampling_region = ?2), 0)
     - EXISTS (SELECT 1 FROM records WHERE kind = 'sampling' AND record_id = ?3
               AND plan_id = ?1 AND sampling_region = ?2)";

/// Fills the sampling records' plan and region columns from their JSON (migration 9, and a
/// store copied in, whose rows carry the JSON only).
macro_rules! plan_columns_from_json {
    () => {
        "UPDATE records SET plan_id = COALESCE(json_extract(canonical, '$.planId'), ''),
         sampling_region = COALESCE(json_extract(canonical, '$.samplingRegion'), '')
         WHERE kind = 'sampling'"
    };
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
    // 8: the audit chain (every change's entry, in the change's transaction) and its signed heads;
    // each submission keeps its entry's position and the SM3 of its bytes (its receipt).
    "CREATE TABLE audit_log (position INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, entry TEXT NOT NULL);
    CREATE TABLE audit_heads (position INTEGER PRIMARY KEY, head TEXT NOT NULL);
    ALTER TABLE messages ADD COLUMN audit_position INTEGER;
    ALTER TABLE messages ADD COLUMN document_sm3 TEXT NOT NULL DEFAULT '';",
    // 9: a sampling record's plan and region as plain columns, and the quota count answered from
    // their index alone (SQLite never reads an expression index without its rows). Counting the
    // rows themselves was most of a submission's cost once a region had hundreds of samples in a
    // plan.
    concat!(
        "ALTER TABLE records ADD COLUMN plan_id TEXT NOT NULL DEFAULT '';
        ALTER TABLE records ADD COLUMN sampling_region TEXT NOT NULL DEFAULT '';",
        plan_columns_from_json!(),
        "; DROP INDEX records_sampling_plan;
        CREATE INDEX records_sampling_plan ON records (plan_id, sampling_region, record_id) WHERE kind = 'sampling';"
    ),
    // 10: the quota count kept per plan and region, so a sampling submission reads one row instead
    // of counting up to the quota's hundreds of index entries (decision 193). New records are
    // counted by the commit, once per plan and region of the submission (a trigger per inserted
    // row cost more than the count saved in large documents); a record moved to another plan or
    // region (an upsert, the copy's column fill) or deleted moves its count by trigger; a copy
    // counts again from the rows (`RECOUNT_SAMPLINGS`).
    concat!(
        "CREATE TABLE sampling_counts (
            plan_id TEXT NOT NULL,
            sampling_region TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (plan_id, sampling_region)
        ) WITHOUT ROWID; ",
        samplings_counted_from_rows!(),
        "; CREATE TRIGGER sampling_recounted AFTER UPDATE OF plan_id, sampling_region ON records
        WHEN NEW.kind = 'sampling' AND (OLD.plan_id IS NOT NEW.plan_id OR OLD.sampling_region IS NOT NEW.sampling_region)
    BEGIN
        UPDATE sampling_counts SET n = n - 1 WHERE plan_id = OLD.plan_id AND sampling_region = OLD.sampling_region;
        INSERT INTO sampling_counts (plan_id, sampling_region, n) VALUES (NEW.plan_id, NEW.sampling_region, 1)
            ON CONFLICT (plan_id, sampling_region) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER sampling_uncounted AFTER DELETE ON records WHEN OLD.kind = 'sampling' BEGIN
        UPDATE sampling_counts SET n = n - 1 WHERE plan_id = OLD.plan_id AND sampling_region = OLD.sampling_region;
    END;"
    ),
    // 11: a delivery's document in a table of its own, written once (decision 195): the lease
    // and the Ack rewrite only the delivery's narrow row, so a page of the WAL holds dozens of
    // them instead of two. The mailbox indexes keep unacknowledged deliveries only: the Ack
    // takes a delivery out of both, and acknowledged ones no longer fill them.
    "CREATE TABLE delivery_documents (seq INTEGER PRIMARY KEY, document BLOB NOT NULL);
    INSERT INTO delivery_documents (seq, document) SELECT seq, document FROM deliveries;
    ALTER TABLE deliveries DROP COLUMN document;
    DROP INDEX deliveries_mailbox;
    DROP INDEX deliveries_in_flight;
    CREATE INDEX deliveries_waiting ON deliveries (recipient, seq) WHERE acked = 0;
    CREATE INDEX deliveries_in_flight ON deliveries (recipient, visible_at_ms) WHERE acked = 0;",
];

impl SqliteStore {
    /// Every stored record of a kind, in id order.
    pub fn records_of_kind(&self, kind: RecordKind) -> Result<Vec<Record>, StoreError> {
        let conn = self.reader()?;
        let mut stmt =
            conn.prepare_cached("SELECT record_id, canonical FROM records WHERE kind = ?1 ORDER BY record_id")?;
        let rows = stmt.query_map(params![kind.name()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.map(|row| {
            let (id, text) = row?;
            super::codec::decode(kind, &id, &text)
        })
        .collect()
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
        overdue_notified_in(&*self.reader()?, case_id, status)
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
        append_audit(&tx, now_ms, vec![super::audit::overdue_event(case_id, status)])?;
        tx.commit()?;
        Ok(true)
    }

    /// Replaces a stored disposal case whose due date was recomputed, and queues its notices, in
    /// one transaction — only if the stored copy is still `expected` (a feedback committed in
    /// between wins; the next pass looks again). Returns whether it was replaced.
    pub fn commit_case_revision(
        &self,
        expected: &DisposalCase,
        revised: &DisposalCase,
        deliveries: &[NewDelivery],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (case_id, expected, revised) =
            (expected.case_id.as_str(), super::codec::encode_case(expected), super::codec::encode_case(revised));
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
        append_audit(
            &tx,
            now_ms,
            vec![AuditEvent::CaseEvent { case_id: case_id.to_string(), event: "due date recomputed".into() }],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Records waiting for a package, oldest first.
    pub fn samr_outbox(&self) -> Result<Vec<OutboxRow>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT seq, kind, record_id, canonical, created_at_ms FROM samr_outbox WHERE package IS NULL ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?, r.get(4)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, kind, record_id, canonical, created_at_ms) = row?;
            let kind = RecordKind::from_name(&kind)
                .ok_or_else(|| StoreError::Corrupt { what: format!("samr_outbox.kind of row {seq}"), detail: kind })?;
            let record = super::codec::decode(kind, &record_id, &canonical)?;
            out.push(OutboxRow { seq, kind, record_id, record, created_at_ms });
        }
        Ok(out)
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
        build: PackageBuilder,
    ) -> Result<Result<String, PackageNotFormed>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(sequence), 0) FROM samr_packages WHERE day = ?1")?
            .query_row(params![day], |r| r.get(0))?;
        let sequence = (last + 1) as u32;
        let (number, bytes) = match build(sequence) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e.into())),
        };
        tx.prepare_cached("INSERT INTO samr_packages (number, day, sequence, package_type, bytes, state, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)")?.execute(params![number, day, sequence, package_type, bytes, now_ms])?;
        for seq in rows {
            tx.prepare_cached("UPDATE samr_outbox SET package = ?1 WHERE seq = ?2")?.execute(params![number, seq])?;
        }
        append_audit(
            &tx,
            now_ms,
            vec![AuditEvent::SamrPackage { package_id: number.clone(), action: SamrPackageAction::Created }],
        )?;
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
            Ok((
                SamrPackage {
                    number: r.get(0)?,
                    package_type: r.get(1)?,
                    bytes: r.get(2)?,
                    state: PackageState::Pending,
                    attempts: r.get(4)?,
                    reason: r.get(5)?,
                },
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut package, state) = row?;
            package.state = PackageState::from_name(&state).ok_or_else(|| StoreError::Corrupt {
                what: format!("samr_packages.state of {}", package.number),
                detail: state,
            })?;
            out.push(package);
        }
        Ok(out)
    }

    /// Records the outcome of an attempt.
    pub fn samr_record_attempt(
        &self,
        number: &str,
        state: PackageState,
        attempts: u32,
        next_attempt_ms: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "UPDATE samr_packages SET state = ?2, attempts = ?3, next_attempt_ms = ?4, reason = ?5 WHERE number = ?1",
        )?
        .execute(params![number, state.as_str(), attempts, next_attempt_ms, reason])?;
        append_audit(&tx, super::audit::wall_clock_ms(), super::audit::attempt_events(number, state))?;
        tx.commit()?;
        Ok(())
    }

    /// Puts a parked package back in line (an operator's resend); false when it is not parked.
    pub fn samr_resend(&self, number: &str, operator: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.prepare_cached("UPDATE samr_packages SET state = 'pending', attempts = 0, next_attempt_ms = 0 WHERE number = ?1 AND state = 'parked'")?.execute(params![number])?;
        if n == 1 {
            append_audit(&tx, super::audit::wall_clock_ms(), super::audit::resend_events(number, operator))?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    /// Appends events that change nothing else (an operator's action, a reload).
    pub fn audit_append(&self, events: Vec<AuditEvent>, at_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        append_audit(&tx, at_ms, events)?;
        tx.commit()?;
        Ok(())
    }

    /// Up to `limit` audit entries from position `from` on, in order.
    pub fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(AUDIT_ENTRIES_FROM)?;
        let rows =
            stmt.query_map(params![from.min(i64::MAX as u64) as i64, limit as i64], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(super::audit::parse_entry(&row?)?);
        }
        Ok(out)
    }

    /// The newest chain entry.
    pub fn audit_last_entry(&self) -> Result<Option<AuditEntry>, StoreError> {
        self.newest(AUDIT_TIP, super::audit::parse_entry)
    }

    /// The newest signed chain head.
    pub fn audit_last_head(&self) -> Result<Option<SignedHead>, StoreError> {
        self.newest("SELECT head FROM audit_heads ORDER BY position DESC LIMIT 1", super::audit::parse_head)
    }

    /// The one JSON text `sql` reads, if any, parsed.
    fn newest<T>(&self, sql: &str, parse: fn(&str) -> Result<T, StoreError>) -> Result<Option<T>, StoreError> {
        let json: Option<String> = self.reader()?.prepare_cached(sql)?.query_row([], |r| r.get(0)).optional()?;
        json.map(|j| parse(&j)).transpose()
    }

    /// The signed chain heads, in position order.
    pub fn audit_heads(&self) -> Result<Vec<SignedHead>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached("SELECT head FROM audit_heads ORDER BY position")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(super::audit::parse_head(&row?)?);
        }
        Ok(out)
    }

    /// Keeps a signed head.
    pub fn audit_store_head(&self, head: &SignedHead) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.prepare_cached("INSERT OR REPLACE INTO audit_heads (position, head) VALUES (?1, ?2)")?
            .execute(params![head.head.position as i64, super::audit::head_json(head)?])?;
        Ok(())
    }

    /// The stored bytes of a submission (checking the chain against them).
    pub fn document(&self, sender: &str, message_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let conn = self.reader()?;
        let found = conn
            .prepare_cached("SELECT document FROM messages WHERE sender = ?1 AND message_id = ?2")?
            .query_row(params![sender, message_id], |r| r.get(0))
            .optional()?;
        Ok(found)
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
        store.reader = Some(Arc::new(Mutex::new(reader)));
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
        let conn = Arc::new(Mutex::new(conn));
        let groups: Arc<Mutex<Option<super::GroupObserver>>> = Arc::new(Mutex::new(None));
        let (writer, queue) = mpsc::channel();
        // The thread holds no sender: it ends when the last copy of the store is dropped.
        let (thread_conn, thread_groups) = (conn.clone(), groups.clone());
        std::thread::Builder::new()
            .name("yrdx-sqlite-writer".into())
            .spawn(move || write_groups(&thread_conn, &thread_groups, &queue))
            .map_err(|e| StoreError::GroupCommit(format!("cannot start the store's writer thread: {e}")))?;
        Ok(SqliteStore { conn, writer, reader: None, groups })
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

/// The blocking forms of the async traits (tools, tests, the blocking pool).
impl SqliteStore {
    /// The stored submission of a sender and message id.
    pub fn stored_submission(&self, sender: &str, message_id: &str) -> Result<Option<StoredSubmission>, StoreError> {
        stored_submission_in(&*self.reader()?, sender, message_id)
    }

    /// Commits a submission (group commit; see [`Intake::commit`]), waiting on this thread.
    pub fn commit(&self, s: Submission) -> Result<Committed, StoreError> {
        self.change_blocking(Queued::Submission, move |tx, tip| commit_submission(tx, tip, &s))
    }

    /// A stored record.
    pub fn record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
        record_in(&*self.reader()?, kind, id)
    }

    /// Leases deliveries (see [`Mailboxes::take`]), waiting on this thread for the writer.
    pub fn take(
        &self,
        recipient: &str,
        max: usize,
        now_ms: i64,
        visibility_ms: i64,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        let recipient = recipient.to_string();
        self.change_blocking(Queued::MailboxChange, move |tx, tip| {
            take_in(tx, tip, &recipient, max, now_ms, visibility_ms)
        })
    }

    /// Deliveries in flight (see [`Mailboxes::in_flight`]).
    pub fn in_flight(&self, recipient: &str, now_ms: i64) -> Result<usize, StoreError> {
        in_flight_in(&*self.reader()?, recipient, now_ms)
    }

    /// Makes deliveries visible again, waiting on this thread for the writer.
    pub fn release(&self, delivery_ids: &[DeliveryId]) -> Result<(), StoreError> {
        let ids = delivery_ids.to_vec();
        self.change_blocking(Queued::MailboxChange, move |tx, _| release_in(tx, &ids))
    }

    /// Acknowledges deliveries of a mailbox, waiting on this thread for the writer.
    pub fn ack(&self, recipient: &str, delivery_ids: &[DeliveryId]) -> Result<u32, StoreError> {
        let (recipient, ids) = (recipient.to_string(), delivery_ids.to_vec());
        self.change_blocking(Queued::MailboxChange, move |tx, tip| ack_in(tx, tip, &recipient, &ids))
    }

    /// Puts a change in the writer thread's queue; `answer` gets its result once the group it
    /// joined is durable.
    fn enqueue<T: Send + 'static>(
        &self,
        queued: Queued,
        write: impl FnOnce(&rusqlite::Transaction<'_>, &mut AuditTip) -> Result<T, StoreError> + Send + 'static,
        answer: impl FnOnce(Result<T, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        self.writer
            .send(Box::new(Change { queued, write: Some(write), outcome: None, answer }))
            .map_err(|_| StoreError::GroupCommit("the store's writer thread has stopped".into()))
    }

    /// A change committed by the writer thread, waited for on this thread.
    fn change_blocking<T: Send + 'static>(
        &self,
        queued: Queued,
        write: impl FnOnce(&rusqlite::Transaction<'_>, &mut AuditTip) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = mpsc::sync_channel(1);
        self.enqueue(queued, write, move |outcome| drop(answer.send(outcome)))?;
        answered.recv().map_err(|_| StoreError::GroupCommit("the change was not committed".into()))?
    }

    /// A change committed by the writer thread, awaited without holding a thread.
    async fn change<T: Send + 'static>(
        &self,
        queued: Queued,
        write: impl FnOnce(&rusqlite::Transaction<'_>, &mut AuditTip) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.enqueue(queued, write, move |outcome| drop(answer.send(outcome)))?;
        answered.await.map_err(|_| StoreError::GroupCommit("the change was not committed".into()))?
    }

    /// Unacknowledged deliveries in a mailbox.
    pub fn depth(&self, recipient: &str) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        let n: i64 = conn
            .prepare_cached("SELECT COUNT(*) FROM deliveries WHERE recipient = ?1 AND acked = 0")?
            .query_row(params![recipient], |r| r.get(0))?;
        Ok(n as u64)
    }
}

/// Leases up to `max` visible deliveries of a mailbox, oldest first, inside the writer's
/// transaction: each is hidden for `visibility_ms` and its hand-out is audited.
fn take_in(
    tx: &rusqlite::Transaction<'_>,
    tip: &mut AuditTip,
    recipient: &str,
    max: usize,
    now_ms: i64,
    visibility_ms: i64,
) -> Result<Vec<PendingDelivery>, StoreError> {
    let rows: Vec<(i64, String, Vec<u8>, u32, i64)> = {
        let mut stmt = tx.prepare_cached(TAKE_DELIVERIES)?;
        let mapped = stmt.query_map(params![recipient, now_ms, max as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        mapped.collect::<Result<_, _>>()?
    };
    for (seq, ..) in &rows {
        tx.prepare_cached("UPDATE deliveries SET attempt = attempt + 1, visible_at_ms = ?2 WHERE seq = ?1")?
            .execute(params![seq, now_ms + visibility_ms])?;
    }
    let events = rows
        .iter()
        .map(|(seq, message_id, ..)| AuditEvent::DeliveryHandedOut {
            delivery_id: seq.to_string(),
            recipient: recipient.to_string(),
            message_id: message_id.clone(),
        })
        .collect();
    append_audit_after(tx, tip, now_ms, events)?;
    Ok(rows
        .into_iter()
        .map(|(seq, message_id, document, attempt, queued_at_ms)| PendingDelivery {
            delivery_id: DeliveryId(seq),
            message_id,
            document,
            attempt: attempt + 1,
            queued_at_ms,
        })
        .collect())
}

/// Makes unacknowledged deliveries visible again, inside the writer's transaction.
fn release_in(tx: &rusqlite::Transaction<'_>, delivery_ids: &[DeliveryId]) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached("UPDATE deliveries SET visible_at_ms = 0 WHERE seq = ?1 AND acked = 0")?;
    for DeliveryId(seq) in delivery_ids {
        stmt.execute(params![seq])?;
    }
    Ok(())
}

/// Acknowledges deliveries of a mailbox inside the writer's transaction; returns how many were
/// unacknowledged until now (each of those is audited).
fn ack_in(
    tx: &rusqlite::Transaction<'_>,
    tip: &mut AuditTip,
    recipient: &str,
    delivery_ids: &[DeliveryId],
) -> Result<u32, StoreError> {
    let mut n = 0;
    let mut events = Vec::new();
    {
        let mut stmt =
            tx.prepare_cached("UPDATE deliveries SET acked = 1 WHERE seq = ?1 AND recipient = ?2 AND acked = 0")?;
        for DeliveryId(seq) in delivery_ids {
            let done = stmt.execute(params![seq, recipient])? as u32;
            if done == 1 {
                events.push(AuditEvent::DeliveryAcknowledged {
                    delivery_id: seq.to_string(),
                    recipient: recipient.to_string(),
                });
            }
            n += done;
        }
    }
    append_audit_after(tx, tip, super::audit::wall_clock_ms(), events)?;
    Ok(n)
}

/// What a queued change is: the group-size metric counts submissions only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queued {
    /// A submission's rows.
    Submission,
    /// A lease, an acknowledgement or a release.
    MailboxChange,
}

/// A change the writer thread commits in its next group, under its own savepoint (a boxed
/// [`Change`], whatever its result type).
trait GroupWrite: Send {
    /// Writes inside the group's transaction; false when it failed (its savepoint is then rolled
    /// back, and it alone fails).
    fn write(&mut self, tx: &rusqlite::Transaction<'_>, tip: &mut AuditTip) -> bool;
    /// Answers once the group's transaction has ended: `Ok` when it is durable, else why not.
    fn answer(self: Box<Self>, committed: Result<(), &str>);
    /// What it is.
    fn queued(&self) -> Queued;
}

/// A change waiting in the writer thread's queue: `write` runs in the group's transaction,
/// `answer` gets its result once that transaction is durable.
struct Change<T, W, A> {
    queued: Queued,
    write: Option<W>,
    outcome: Option<Result<T, StoreError>>,
    answer: A,
}

impl<T, W, A> GroupWrite for Change<T, W, A>
where
    T: Send,
    W: FnOnce(&rusqlite::Transaction<'_>, &mut AuditTip) -> Result<T, StoreError> + Send,
    A: FnOnce(Result<T, StoreError>) + Send,
{
    fn queued(&self) -> Queued {
        self.queued
    }

    fn write(&mut self, tx: &rusqlite::Transaction<'_>, tip: &mut AuditTip) -> bool {
        let Some(write) = self.write.take() else { return false };
        let outcome = write(tx, tip);
        let kept = outcome.is_ok();
        self.outcome = Some(outcome);
        kept
    }

    fn answer(self: Box<Self>, committed: Result<(), &str>) {
        let outcome = match committed {
            Ok(()) => self.outcome.unwrap_or_else(|| Err(StoreError::GroupCommit("the change was not written".into()))),
            Err(why) => Err(StoreError::GroupCommit(why.to_string())),
        };
        (self.answer)(outcome);
    }
}

/// The most changes one transaction commits.
const MAX_GROUP: usize = 256;

/// The writer thread: takes every change waiting (those that queued during the last
/// transaction's fsync, up to [`MAX_GROUP`]), commits them in one transaction and answers each.
/// Leases and acknowledgements share the submissions' transactions (and their fsync) instead of
/// each paying its own.
fn write_groups(
    conn: &Mutex<Connection>,
    groups: &Mutex<Option<super::GroupObserver>>,
    queue: &mpsc::Receiver<Box<dyn GroupWrite>>,
) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let submissions = group.iter().filter(|w| w.queued() == Queued::Submission).count();
        if submissions > 0 {
            if let Some(observe) = groups.lock().ok().and_then(|o| o.clone()) {
                observe(submissions);
            }
        }
        let committed = match conn.lock() {
            Ok(mut conn) => write_group(&mut conn, &mut group),
            Err(_) => Err(StoreError::Poisoned),
        };
        let committed = committed.map_err(|e| e.to_string());
        for write in group {
            write.answer(committed.as_ref().map(|_| ()).map_err(String::as_str));
        }
    }
}

/// Writes a group in one transaction, each change under its own savepoint so one that fails
/// fails alone, and commits it (durably: `synchronous=FULL`). An error here fails the group.
fn write_group(conn: &mut Connection, group: &mut [Box<dyn GroupWrite>]) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut tip = AuditTip::default();
    for write in group.iter_mut() {
        tx.prepare_cached("SAVEPOINT one")?.execute([])?;
        if write.write(&tx, &mut tip) {
            tx.prepare_cached("RELEASE one")?.execute([])?;
        } else {
            tx.prepare_cached("ROLLBACK TO one")?.execute([])?;
            tx.prepare_cached("RELEASE one")?.execute([])?;
            tip.forget();
        }
    }
    tx.commit()?;
    Ok(())
}

/// One submission inside a group's transaction: the stored answer when its sender and message
/// id are already stored (another call committed first), else its rows.
fn commit_submission(
    tx: &rusqlite::Transaction<'_>,
    tip: &mut AuditTip,
    s: &Submission,
) -> Result<Committed, StoreError> {
    let existing: Option<(String, Vec<u8>)> = tx
        .prepare_cached("SELECT digest, reply FROM messages WHERE sender = ?1 AND message_id = ?2")?
        .query_row(params![s.sender, s.message_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((digest, reply)) = existing {
        return Ok(Committed::Existing { digest, reply });
    }
    let (audit_position, document_sm3) = insert_submission(tx, tip, s)?;
    Ok(Committed::New { audit_position, document_sm3 })
}

/// Appends audit entries inside the transaction of the change they record; returns their
/// positions. The transaction holds SQLite's write lock, so the chain cannot fork.
fn append_audit(tx: &rusqlite::Transaction<'_>, at_ms: i64, events: Vec<AuditEvent>) -> Result<Vec<u64>, StoreError> {
    append_audit_after(tx, &mut AuditTip::default(), at_ms, events)
}

/// The last entry of the audit chain as a group's transaction has written it, so that the
/// group's changes after the first need not read it back (and parse its JSON) each.
#[derive(Default)]
struct AuditTip(Option<Option<AuditEntry>>);

impl AuditTip {
    /// The last entry: as known, else read from the transaction.
    fn take(&mut self, tx: &rusqlite::Transaction<'_>) -> Result<Option<AuditEntry>, StoreError> {
        if let Some(known) = self.0.take() {
            return Ok(known);
        }
        let last: Option<String> = tx.prepare_cached(AUDIT_TIP)?.query_row([], |r| r.get(0)).optional()?;
        last.map(|json| super::audit::parse_entry(&json)).transpose()
    }

    /// Forgets the last entry (a change was rolled back: it may have written entries).
    fn forget(&mut self) {
        self.0 = None;
    }
}

/// [`append_audit`] after the tip a group has kept; the tip moves on only once every entry is
/// written (an error leaves it unknown, to be read again).
fn append_audit_after(
    tx: &rusqlite::Transaction<'_>,
    tip: &mut AuditTip,
    at_ms: i64,
    events: Vec<AuditEvent>,
) -> Result<Vec<u64>, StoreError> {
    // Most mailbox polls hand out nothing: no entry, no read of the chain's tip.
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut prev = tip.take(tx)?;
    let mut positions = Vec::with_capacity(events.len());
    for event in events {
        let entry = super::audit::next_entry(prev.as_ref(), at_ms, event)?;
        tx.prepare_cached("INSERT INTO audit_log (position, at_ms, entry) VALUES (?1, ?2, ?3)")?.execute(params![
            entry.position as i64,
            at_ms,
            super::audit::entry_json(&entry)?
        ])?;
        positions.push(entry.position);
        prev = Some(entry);
    }
    tip.0 = Some(prev);
    Ok(positions)
}

/// Queues deliveries inside a transaction, created at `now_ms`.
fn insert_deliveries(
    tx: &rusqlite::Transaction<'_>,
    deliveries: &[NewDelivery],
    now_ms: i64,
) -> Result<(), StoreError> {
    let mut delivery =
        tx.prepare_cached("INSERT INTO deliveries (recipient, message_id, created_at_ms) VALUES (?1, ?2, ?3)")?;
    let mut document = tx.prepare_cached("INSERT INTO delivery_documents (seq, document) VALUES (?1, ?2)")?;
    for d in deliveries {
        let seq = delivery.insert(params![d.recipient, d.message_id, now_ms])?;
        document.execute(params![seq, d.document])?;
    }
    Ok(())
}

/// Writes one submission's rows inside a transaction (the caller checked it is new); returns its
/// audit chain position and the SM3 of its bytes, hex (its receipt's).
fn insert_submission(
    tx: &rusqlite::Transaction<'_>,
    tip: &mut AuditTip,
    s: &Submission,
) -> Result<(u64, String), StoreError> {
    let document_sm3 = Sm3Digest::of(&s.document);
    let document_sm3_hex = document_sm3.to_hex();
    let position = append_audit_after(tx, tip, s.received_at_ms, super::audit::submission_events(s, document_sm3))?[0];
    tx.prepare_cached(
        "INSERT INTO messages (sender, message_id, digest, document, reply, received_at_ms, audit_position, document_sm3)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        s.sender,
        s.message_id,
        s.digest,
        s.document,
        s.reply,
        s.received_at_ms,
        position as i64,
        document_sm3_hex
    ])?;
    // New sampling records per plan and region, for the kept quota counts (migration 10).
    let mut new_samplings: Vec<(&str, &str, i64)> = Vec::new();
    for r in &s.records {
        let canonical = super::codec::encode(&r.record);
        let row = params![
            r.kind.name(),
            r.id,
            s.sender,
            s.message_id,
            canonical,
            s.received_at_ms,
            r.keys.plan_id,
            r.keys.sampling_region
        ];
        // A new record is inserted; a stored one is updated in place (a sampling record that
        // moves plan or region moves its count by trigger).
        let inserted = tx
            .prepare_cached(
                "INSERT INTO records (kind, record_id, sender, message_id, canonical, stored_at_ms, plan_id, sampling_region)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (kind, record_id) DO NOTHING",
            )?
            .execute(row)?;
        if inserted == 0 {
            tx.prepare_cached(
                "UPDATE records SET sender = ?3, message_id = ?4, canonical = ?5, stored_at_ms = ?6, plan_id = ?7,
                 sampling_region = ?8 WHERE kind = ?1 AND record_id = ?2",
            )?
            .execute(row)?;
        } else if r.kind == RecordKind::Sampling {
            let (plan, region) = (r.keys.plan_id.as_str(), r.keys.sampling_region.as_str());
            match new_samplings.iter_mut().find(|(p, g, _)| *p == plan && *g == region) {
                Some((_, _, n)) => *n += 1,
                None => new_samplings.push((plan, region, 1)),
            }
        }
    }
    for (plan, region, n) in new_samplings {
        tx.prepare_cached(
            "INSERT INTO sampling_counts (plan_id, sampling_region, n) VALUES (?1, ?2, ?3)
             ON CONFLICT (plan_id, sampling_region) DO UPDATE SET n = n + excluded.n",
        )?
        .execute(params![plan, region, n])?;
    }
    insert_deliveries(tx, &s.deliveries, s.received_at_ms)?;
    for r in &s.samr {
        tx.prepare_cached(
            "INSERT INTO samr_outbox (kind, record_id, canonical, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![r.kind.name(), r.id, super::codec::encode(&r.record), s.received_at_ms])?;
    }
    Ok((position, document_sm3_hex))
}

impl SqliteStore {
    /// Commits many submissions in one transaction, skipping any already stored (bulk loading:
    /// migrations and the benchmark harness's large stores). Returns how many were new, or the
    /// first submission that failed, and then nothing of the batch is stored.
    pub fn bulk_commit(&self, submissions: &[Submission]) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (mut new, mut tip) = (0, AuditTip::default());
        for s in submissions {
            // An error drops the transaction: nothing of the batch is stored.
            new += usize::from(matches!(commit_submission(&tx, &mut tip, s)?, Committed::New { .. }));
        }
        tx.commit()?;
        Ok(new)
    }
}

/// [`SqliteStore::sampling_count`] on a reader connection.
fn sampling_count_in(
    conn: &Connection,
    plan_id: &str,
    region: &str,
    except: &str,
    at_most: u64,
) -> Result<u64, StoreError> {
    let n: i64 = conn.prepare_cached(SAMPLING_COUNT)?.query_row(params![plan_id, region, except], |r| r.get(0))?;
    Ok((n.max(0) as u64).min(at_most))
}

/// [`SqliteStore::samplings_of_product`] on a reader connection.
fn samplings_of_product_in(
    conn: &Connection,
    uscc: &str,
    brand: &str,
    model: &str,
) -> Result<Vec<SamplingRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT canonical FROM records WHERE kind = 'sampling'
         AND json_extract(canonical, '$.producer.uscc') = ?1
         AND COALESCE(json_extract(canonical, '$.product.brand'), '') = ?2
         AND COALESCE(json_extract(canonical, '$.product.model'), '') = ?3",
    )?;
    let rows = stmt.query_map(params![uscc, brand, model], |r| r.get::<_, String>(0))?;
    rows.map(|t| super::codec::sampling(&t?)).collect()
}

/// [`SqliteStore::overdue_notified`] on a reader connection.
fn overdue_notified_in(conn: &Connection, case_id: &str, status: i32) -> Result<bool, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM overdue_notices WHERE case_id = ?1 AND status = ?2")?
        .query_row(params![case_id, status], |r| r.get(0))?;
    Ok(n > 0)
}

/// [`SqliteStore::stored_submission`] on a reader connection.
fn stored_submission_in(
    conn: &Connection,
    sender: &str,
    message_id: &str,
) -> Result<Option<StoredSubmission>, StoreError> {
    let found = conn
        .prepare_cached(
            "SELECT digest, reply, received_at_ms, audit_position, document_sm3 FROM messages
             WHERE sender = ?1 AND message_id = ?2",
        )?
        .query_row(params![sender, message_id], |r| {
            Ok(StoredSubmission {
                digest: r.get(0)?,
                reply: r.get(1)?,
                received_at_ms: r.get(2)?,
                audit_position: r.get::<_, Option<i64>>(3)?.map(|p| p as u64),
                document_sm3: r.get(4)?,
            })
        })
        .optional();
    Ok(found?)
}

/// [`SqliteStore::record`] on a reader connection.
fn record_in(conn: &Connection, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
    let found: Option<String> = conn
        .prepare_cached("SELECT canonical FROM records WHERE kind = ?1 AND record_id = ?2")?
        .query_row(params![kind.name(), id], |r| r.get(0))
        .optional()?;
    found.map(|text| super::codec::decode(kind, id, &text)).transpose()
}

/// [`SqliteStore::in_flight`] on a reader connection.
fn in_flight_in(conn: &Connection, recipient: &str, now_ms: i64) -> Result<usize, StoreError> {
    let n: i64 = conn.prepare_cached(IN_FLIGHT)?.query_row(params![recipient, now_ms], |r| r.get(0))?;
    Ok(n as usize)
}

impl SqliteStore {
    /// Runs an indexed read on the reader connection: inline when that connection is free, on
    /// the blocking pool when it is busy. A point read answered from the page cache takes
    /// microseconds, less than a trip to the blocking pool and back (two thread wake-ups); WAL
    /// readers never wait for the writer, and a busy reader (a scan) is never waited for on the
    /// runtime's threads. Without a reader connection (in memory) the read always goes to the
    /// pool, since it would share the writer's lock.
    async fn point_read<T: Send + 'static>(
        &self,
        operation: &'static str,
        read: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if let Some(reader) = &self.reader {
            // The writer's connection first when it is between groups: its page cache holds what
            // it has just written, where the reader's is emptied by every commit and read back
            // from the OS (decision 194).
            for conn in [&self.conn, reader] {
                match conn.try_lock() {
                    Ok(conn) => return read(&conn),
                    Err(std::sync::TryLockError::Poisoned(_)) => return Err(StoreError::Poisoned),
                    Err(std::sync::TryLockError::WouldBlock) => {}
                }
            }
        }
        let this = self.clone();
        blocking(operation, move || read(&*this.reader()?)).await
    }
}

/// Runs a blocking call of the store on the blocking pool.
async fn blocking<T: Send + 'static>(
    operation: &'static str,
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::task(operation, e))?
}

#[async_trait]
impl Intake for SqliteStore {
    async fn stored_submission(&self, sender: &str, message_id: &str) -> Result<Option<StoredSubmission>, StoreError> {
        let (sender, message_id) = (sender.to_string(), message_id.to_string());
        self.point_read("stored_submission", move |c| stored_submission_in(c, &sender, &message_id)).await
    }

    async fn commit(&self, submission: Submission) -> Result<Committed, StoreError> {
        // Handed to the writer thread without a blocking-pool thread waiting for it.
        self.change(Queued::Submission, move |tx, tip| commit_submission(tx, tip, &submission)).await
    }

    fn observe_groups(&self, observer: super::GroupObserver) {
        if let Ok(mut o) = self.groups.lock() {
            *o = Some(observer);
        }
    }
}

#[async_trait]
impl Mailboxes for SqliteStore {
    async fn take(
        &self,
        recipient: &str,
        max: usize,
        now_ms: i64,
        visibility_ms: i64,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        let recipient = recipient.to_string();
        self.change(Queued::MailboxChange, move |tx, tip| take_in(tx, tip, &recipient, max, now_ms, visibility_ms))
            .await
    }

    async fn in_flight(&self, recipient: &str, now_ms: i64) -> Result<usize, StoreError> {
        let recipient = recipient.to_string();
        self.point_read("in_flight", move |c| in_flight_in(c, &recipient, now_ms)).await
    }

    async fn release(&self, delivery_ids: &[DeliveryId]) -> Result<(), StoreError> {
        let ids = delivery_ids.to_vec();
        self.change(Queued::MailboxChange, move |tx, _| release_in(tx, &ids)).await
    }

    async fn ack(&self, recipient: &str, delivery_ids: &[DeliveryId]) -> Result<u32, StoreError> {
        let (recipient, ids) = (recipient.to_string(), delivery_ids.to_vec());
        self.change(Queued::MailboxChange, move |tx, tip| ack_in(tx, tip, &recipient, &ids)).await
    }

    async fn depth(&self, recipient: &str) -> Result<u64, StoreError> {
        let (this, recipient) = (self.clone(), recipient.to_string());
        blocking("depth", move || this.depth(&recipient)).await
    }

    async fn oldest_unacknowledged_ms(&self, recipient: &str) -> Result<Option<i64>, StoreError> {
        let (this, recipient) = (self.clone(), recipient.to_string());
        blocking("oldest_unacknowledged", move || this.oldest_unacknowledged_ms(&recipient)).await
    }
}

#[async_trait]
impl WorkflowRecords for SqliteStore {
    async fn record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
        let id = id.to_string();
        self.point_read("record", move |c| record_in(c, kind, &id)).await
    }

    async fn records_of_kind(&self, kind: RecordKind) -> Result<Vec<Record>, StoreError> {
        let this = self.clone();
        blocking("records_of_kind", move || this.records_of_kind(kind)).await
    }

    async fn sampling_count(&self, plan_id: &str, region: &str, except: &str, at_most: u64) -> Result<u64, StoreError> {
        let (plan_id, region, except) = (plan_id.to_string(), region.to_string(), except.to_string());
        self.point_read("sampling_count", move |c| sampling_count_in(c, &plan_id, &region, &except, at_most)).await
    }

    async fn samplings_of_product(
        &self,
        uscc: &str,
        brand: &str,
        model: &str,
    ) -> Result<Vec<SamplingRecord>, StoreError> {
        let (uscc, brand, model) = (uscc.to_string(), brand.to_string(), model.to_string());
        self.point_read("samplings_of_product", move |c| samplings_of_product_in(c, &uscc, &brand, &model)).await
    }

    async fn plan_records(&self, plan_id: &str) -> Result<PlanRecords, StoreError> {
        let (this, plan_id) = (self.clone(), plan_id.to_string());
        blocking("plan_records", move || this.plan_records(&plan_id)).await
    }
}

#[async_trait]
impl CaseLedger for SqliteStore {
    async fn overdue_notified(&self, case_id: &str, status: i32) -> Result<bool, StoreError> {
        let case_id = case_id.to_string();
        self.point_read("overdue_notified", move |c| overdue_notified_in(c, &case_id, status)).await
    }

    async fn commit_overdue_notice(
        &self,
        case_id: &str,
        status: i32,
        deliveries: Vec<NewDelivery>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (this, case_id) = (self.clone(), case_id.to_string());
        blocking("commit_overdue_notice", move || this.commit_overdue_notice(&case_id, status, &deliveries, now_ms))
            .await
    }

    async fn commit_case_revision(
        &self,
        expected: &DisposalCase,
        revised: &DisposalCase,
        deliveries: Vec<NewDelivery>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (this, expected, revised) = (self.clone(), expected.clone(), revised.clone());
        blocking("commit_case_revision", move || this.commit_case_revision(&expected, &revised, &deliveries, now_ms))
            .await
    }
}

#[async_trait]
impl SamrOutbox for SqliteStore {
    async fn samr_outbox(&self) -> Result<Vec<OutboxRow>, StoreError> {
        let this = self.clone();
        blocking("samr_outbox", move || this.samr_outbox()).await
    }

    async fn samr_create_package(
        &self,
        day: &str,
        package_type: &str,
        rows: &[i64],
        now_ms: i64,
        build: PackageBuilder,
    ) -> Result<Result<String, PackageNotFormed>, StoreError> {
        let (this, day, package_type, rows) = (self.clone(), day.to_string(), package_type.to_string(), rows.to_vec());
        blocking("samr_create_package", move || this.samr_create_package(&day, &package_type, &rows, now_ms, build))
            .await
    }

    async fn samr_due(&self, now_ms: i64) -> Result<Vec<SamrPackage>, StoreError> {
        let this = self.clone();
        blocking("samr_due", move || this.samr_due(now_ms)).await
    }

    async fn samr_parked(&self) -> Result<Vec<SamrPackage>, StoreError> {
        let this = self.clone();
        blocking("samr_parked", move || this.samr_parked()).await
    }

    async fn samr_packages(&self) -> Result<Vec<SamrPackage>, StoreError> {
        let this = self.clone();
        blocking("samr_packages", move || this.samr_packages()).await
    }

    async fn samr_record_attempt(
        &self,
        number: &str,
        state: PackageState,
        attempts: u32,
        next_attempt_ms: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        let (this, number, reason) = (self.clone(), number.to_string(), reason.to_string());
        blocking("samr_record_attempt", move || {
            this.samr_record_attempt(&number, state, attempts, next_attempt_ms, &reason)
        })
        .await
    }

    async fn samr_resend(&self, number: &str, operator: &str) -> Result<bool, StoreError> {
        let (this, number, operator) = (self.clone(), number.to_string(), operator.to_string());
        blocking("samr_resend", move || this.samr_resend(&number, &operator)).await
    }
}

/// One process owns a SQLite file: its every lease is held for as long as it runs.
struct ProcessLease;

#[async_trait]
impl LeaderLease for ProcessLease {
    async fn is_held(&self) -> bool {
        true
    }
}

#[async_trait]
impl Leadership for SqliteStore {
    async fn try_lead(&self, _role: LeaderRole) -> Result<Option<Box<dyn LeaderLease>>, StoreError> {
        Ok(Some(Box::new(ProcessLease)))
    }
}

impl SqliteStore {
    /// Rows of a table for a copy (see [`StoreCopy::export_rows`]).
    pub fn export_rows(&self, table: &str, offset: u64, limit: usize) -> Result<Vec<Row>, StoreError> {
        let table = copy::table_named(table)?;
        let conn = self.reader()?;
        let (limit, offset) = (limit as i64, offset.min(i64::MAX as u64) as i64);
        // SQLite compares text bytewise (BINARY) already, as PostgreSQL's "C" collation does.
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {} LIMIT CAST(?1 AS INTEGER) OFFSET CAST(?2 AS INTEGER)",
            table.column_list(),
            table.name,
            table.key.join(", ")
        );
        let mut statement = conn.prepare_cached(&sql)?;
        let rows = statement.query_map(params![limit, offset], |r| {
            let values = table
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| copied_value(r.get_ref(i)?, c.kind, i))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Row { table, values })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Writes copied rows in one transaction (see [`StoreCopy::import_rows`]).
    pub fn import_rows(&self, rows: &[Row]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Rows come table by table: the statement is written again only when the table changes.
        let mut insert: Option<(&'static str, String)> = None;
        for row in rows {
            let table = row.table;
            if insert.as_ref().is_none_or(|(name, _)| *name != table.name) {
                insert = Some((table.name, table.insert_sql(&[], |n| format!("?{n}"))));
            }
            let sql = insert.as_ref().map(|(_, sql)| sql.as_str()).unwrap_or_default();
            let values = row.values.iter().map(|v| match v {
                Value::Null => rusqlite::types::Value::Null,
                Value::Int(n) => rusqlite::types::Value::Integer(*n),
                Value::Bool(b) => rusqlite::types::Value::Integer(*b as i64),
                Value::Text(t) => rusqlite::types::Value::Text(t.clone()),
                Value::Bytes(b) => rusqlite::types::Value::Blob(b.clone()),
            });
            tx.prepare_cached(sql)?.execute(rusqlite::params_from_iter(values))?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// A stored SQLite value read as a copied column of type `kind` (column `i`).
fn copied_value(v: rusqlite::types::ValueRef<'_>, kind: ColumnType, i: usize) -> rusqlite::Result<Value> {
    use rusqlite::types::{FromSql, ValueRef};
    let wrong = |e| rusqlite::Error::FromSqlConversionFailure(i, v.data_type(), Box::new(e));
    Ok(match (kind, v) {
        (ColumnType::OptBigInt | ColumnType::OptText, ValueRef::Null) => Value::Null,
        (ColumnType::BigInt | ColumnType::Int | ColumnType::OptBigInt, v) => {
            Value::Int(i64::column_result(v).map_err(wrong)?)
        }
        (ColumnType::Bool, v) => Value::Bool(i64::column_result(v).map_err(wrong)? != 0),
        (ColumnType::Text | ColumnType::OptText, v) => Value::Text(String::column_result(v).map_err(wrong)?),
        (ColumnType::Bytes, v) => Value::Bytes(Vec::<u8>::column_result(v).map_err(wrong)?),
    })
}

#[async_trait]
impl StoreCopy for SqliteStore {
    async fn export_rows(&self, table: &'static str, offset: u64, limit: usize) -> Result<Vec<Row>, StoreError> {
        let this = self.clone();
        blocking("export_rows", move || this.export_rows(table, offset, limit)).await
    }

    async fn import_rows(&self, rows: Vec<Row>) -> Result<(), StoreError> {
        let this = self.clone();
        blocking("import_rows", move || this.import_rows(&rows)).await
    }

    async fn count_rows(&self, table: &'static str) -> Result<u64, StoreError> {
        copy::table_named(table)?;
        let this = self.clone();
        blocking("count_rows", move || {
            let conn = this.reader()?;
            let n: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    async fn after_import(&self) -> Result<(), StoreError> {
        // AUTOINCREMENT already continues after the largest id inserted. A copy carries the
        // records' JSON only: their plan and region columns are read back from it.
        let this = self.clone();
        blocking("after_import", move || {
            let conn = this.conn()?;
            conn.execute(plan_columns_from_json!(), [])?;
            conn.execute_batch(RECOUNT_SAMPLINGS)?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn audit_append(&self, events: Vec<AuditEvent>, at_ms: i64) -> Result<(), StoreError> {
        let this = self.clone();
        blocking("audit_append", move || this.audit_append(events, at_ms)).await
    }

    async fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let this = self.clone();
        blocking("audit_entries", move || this.audit_entries(from, limit)).await
    }

    async fn audit_last_entry(&self) -> Result<Option<AuditEntry>, StoreError> {
        let this = self.clone();
        blocking("audit_last_entry", move || this.audit_last_entry()).await
    }

    async fn audit_heads(&self) -> Result<Vec<SignedHead>, StoreError> {
        let this = self.clone();
        blocking("audit_heads", move || this.audit_heads()).await
    }

    async fn audit_last_head(&self) -> Result<Option<SignedHead>, StoreError> {
        let this = self.clone();
        blocking("audit_last_head", move || this.audit_last_head()).await
    }

    async fn audit_store_head(&self, head: SignedHead) -> Result<(), StoreError> {
        let this = self.clone();
        blocking("audit_store_head", move || this.audit_store_head(&head)).await
    }

    async fn document(&self, sender: &str, message_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (this, sender, message_id) = (self.clone(), sender.to_string(), message_id.to_string());
        blocking("document", move || this.document(&sender, &message_id)).await
    }
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_point_read_waits_on_the_pool_when_the_reader_is_busy_and_inline_when_free() {
        let dir = std::env::temp_dir().join(format!("yrdx-point-read-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = SqliteStore::open(&dir.join("s.sqlite")).unwrap();
        let (reader, writer) = (store.reader.clone().unwrap(), store.conn.clone());
        // A scan holds the reader and a group the writer's connection: the read goes to the pool
        // and answers once the scan is done, without blocking this runtime thread meanwhile.
        let (held, release) = (std::sync::mpsc::channel::<()>(), std::sync::mpsc::channel::<()>());
        let scan = std::thread::spawn(move || {
            let _group = writer.lock().unwrap();
            let _busy = reader.lock().unwrap();
            held.0.send(()).unwrap();
            release.1.recv().unwrap();
        });
        held.1.recv().unwrap();
        let read = tokio::spawn({
            let store = store.clone();
            async move { Intake::stored_submission(&store, "320000", "M1").await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!read.is_finished(), "a read cannot finish while the reader is held");
        release.0.send(()).unwrap();
        scan.join().unwrap();
        assert_eq!(read.await.unwrap().unwrap(), None);
        // Free: answered inline, and the same as the blocking form.
        assert_eq!(Mailboxes::in_flight(&store, "320000", 0).await.unwrap(), store.in_flight("320000", 0).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// One queued submission with a delivery to Shanghai.
    fn queued(id: &str) -> Submission {
        Submission {
            sender: "320000".into(),
            message_id: id.into(),
            digest: format!("d-{id}"),
            document: b"doc".to_vec(),
            reply: b"reply".to_vec(),
            records: vec![],
            deliveries: vec![NewDelivery {
                recipient: "310000".into(),
                message_id: id.into(),
                document: id.as_bytes().to_vec(),
            }],
            samr: vec![],
            received_at_ms: 1,
        }
    }

    // The held lock is the point: the writer thread waits on it while the calls queue up.
    #[allow(clippy::await_holding_lock)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leases_and_acks_are_written_by_the_writer_after_the_submissions_before_them_and_a_failing_change_fails_alone(
    ) {
        let store = SqliteStore::in_memory().unwrap();
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        Intake::observe_groups(&store, Arc::new(move |n| seen.lock().unwrap().push(n)));
        // Holding the connection keeps the writer waiting: everything below queues up behind the
        // submission and is written after it, in order.
        let held = store.conn.lock().unwrap();
        let commit = tokio::spawn({
            let s = store.clone();
            async move { Intake::commit(&s, queued("M1")).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let failing = tokio::spawn({
            let s = store.clone();
            async move {
                s.change(Queued::MailboxChange, |tx, tip| {
                    tx.execute("UPDATE deliveries SET attempt = 99", [])?;
                    // Its audit entry moves the group's tip, then is rolled back with it.
                    let event = AuditEvent::OperatorAction { operator: "test".into(), action: "rolled back".into() };
                    append_audit_after(tx, tip, 2, vec![event])?;
                    Err::<(), _>(StoreError::Corrupt { what: "a test change".into(), detail: "fails".into() })
                })
                .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let take = tokio::spawn({
            let s = store.clone();
            async move { Mailboxes::take(&s, "310000", 10, 5, 30_000).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!commit.is_finished() && !take.is_finished(), "nothing is answered before its group is durable");
        drop(held);
        assert!(matches!(commit.await.unwrap().unwrap(), Committed::New { .. }));
        assert!(failing.await.unwrap().is_err(), "the failing change is told so");
        let taken = take.await.unwrap().unwrap();
        assert_eq!(taken.len(), 1, "the lease sees the submission written before it in the group");
        assert_eq!(taken[0].attempt, 1, "the failing change's update was rolled back with it");
        assert_eq!(*sizes.lock().unwrap(), vec![1], "groups are counted by their submissions");
        let acked = Mailboxes::ack(&store, "310000", &[taken[0].delivery_id]).await.unwrap();
        assert_eq!(acked, 1);
        assert_eq!(store.depth("310000").unwrap(), 0);
        // The chain has no hole and no fork where the failed change's entry was rolled back:
        // accepted, handed out, acknowledged, each linked to the one before.
        let entries = store.audit_entries(0, 100).unwrap();
        let kinds: Vec<&str> = entries.iter().map(|e| e.event.kind()).collect();
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        for (i, pair) in entries.windows(2).enumerate() {
            assert_eq!(pair[1].position, i as u64 + 1);
            assert_eq!(pair[1].prev_hash, pair[0].computed_hash(), "entry {} follows entry {i}", i + 1);
        }
    }

    /// A connection whose schema is as the first `version` migrations leave it.
    fn migrated_to(version: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)").unwrap();
        for (i, sql) in MIGRATIONS.iter().enumerate().take(version) {
            conn.execute_batch(&format!("BEGIN; {sql}; INSERT INTO schema_version VALUES ({}); COMMIT;", i + 1))
                .unwrap();
        }
        conn
    }

    #[test]
    fn a_store_of_schema_8_counts_its_stored_samplings_after_the_plan_columns_migration() {
        let conn = migrated_to(8);
        for (id, plan, region) in
            [("S1", "P1", "320000"), ("S2", "P1", "320000"), ("S3", "P1", "330000"), ("S4", "P2", "320000")]
        {
            conn.execute(
                "INSERT INTO records (kind, record_id, sender, message_id, canonical, stored_at_ms)
                 VALUES ('sampling', ?1, '320000', 'M', ?2, 1)",
                params![id, format!(r#"{{"sampleId":"{id}","planId":"{plan}","samplingRegion":"{region}"}}"#)],
            )
            .unwrap();
        }
        let store = SqliteStore::init(conn).unwrap();
        assert_eq!(store.sampling_count("P1", "320000", "", 10).unwrap(), 2);
        assert_eq!(store.sampling_count("P1", "320000", "S1", 10).unwrap(), 1, "the record itself is left out");
        assert_eq!(store.sampling_count("P1", "330000", "", 10).unwrap(), 1);
        assert_eq!(store.sampling_count("P2", "320000", "", 10).unwrap(), 1);
        assert_eq!(store.sampling_count("P1", "320000", "", 1).unwrap(), 1, "counted up to the bound");
    }

    #[test]
    fn a_store_of_schema_10_keeps_every_delivery_its_document_and_its_state_after_the_documents_move() {
        let conn = migrated_to(10);
        // Acknowledged, in flight until 9 000, and waiting.
        for (seq, acked, visible_at_ms) in [(3, 1, 0), (5, 0, 9_000), (8, 0, 0)] {
            conn.execute(
                "INSERT INTO deliveries (seq, recipient, message_id, document, attempt, visible_at_ms, acked, created_at_ms)
                 VALUES (?1, '320000', ?2, ?3, ?4, ?5, ?6, 100)",
                params![seq, format!("M-{seq}"), format!("doc {seq}").into_bytes(), acked + (visible_at_ms > 0) as i64, visible_at_ms, acked],
            )
            .unwrap();
        }
        let store = SqliteStore::init(conn).unwrap();
        assert_eq!(store.depth("320000").unwrap(), 2);
        assert_eq!(store.in_flight("320000", 1_000).unwrap(), 1);
        let taken = store.take("320000", 10, 1_000, 30_000).unwrap();
        let got: Vec<(i64, &str, &[u8], u32)> =
            taken.iter().map(|d| (d.delivery_id.0, d.message_id.as_str(), &d.document[..], d.attempt)).collect();
        assert_eq!(got, vec![(8, "M-8", &b"doc 8"[..], 1)], "only the waiting one, with its document");
        let taken = store.take("320000", 10, 10_000, 30_000).unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!((taken[0].delivery_id.0, &taken[0].document[..], taken[0].attempt), (5, &b"doc 5"[..], 2));
        // New ids continue after the largest one stored, each with its document.
        store.commit(queued("after")).unwrap();
        let taken = store.take("310000", 10, 10_000, 30_000).unwrap();
        assert_eq!(taken.len(), 1);
        assert!(taken[0].delivery_id.0 > 8);
        assert_eq!(taken[0].document, b"after".to_vec());
        let conn = store.conn().unwrap();
        let documents: i64 = conn.query_row("SELECT COUNT(*) FROM delivery_documents", [], |r| r.get(0)).unwrap();
        assert_eq!(documents, 4, "the acknowledged delivery's document is kept too");
    }

    #[test]
    fn the_kept_sampling_counts_follow_every_change_of_a_records_plan_or_region() {
        let store = SqliteStore::in_memory().unwrap();
        let sampling = |id: &str, plan: &str, region: &str| {
            StoredRecord::of(Record::Sampling(yrdx_proto::v1::SamplingRecord {
                sample_id: id.into(),
                plan_id: plan.into(),
                sampling_region: region.into(),
                ..Default::default()
            }))
        };
        let commit = |message: &str, records: Vec<StoredRecord>| {
            let mut s = queued(message);
            s.records = records;
            assert!(matches!(store.commit(s).unwrap(), Committed::New { .. }), "{message}");
        };
        // Several new records of one plan and region in one submission, and of another region.
        commit(
            "M1",
            vec![sampling("S1", "P1", "320000"), sampling("S2", "P1", "320000"), sampling("S4", "P1", "330000")],
        );
        // A new version of S1 in the same plan: still one; S3 new, then moved to another plan.
        commit("M2", vec![sampling("S1", "P1", "320000"), sampling("S3", "P1", "320000")]);
        commit("M3", vec![sampling("S3", "P2", "320000")]);
        // Not a sampling record: not counted.
        commit(
            "M4",
            vec![StoredRecord::of(Record::Inspection(yrdx_proto::v1::InspectionResult {
                report_no: "I1".into(),
                sample_id: "S1".into(),
                ..Default::default()
            }))],
        );
        {
            let conn = store.conn().unwrap();
            // The copy's column fill moves S4 by trigger; a deleted record is taken off its count.
            conn.execute("UPDATE records SET sampling_region = '320000' WHERE record_id = 'S4'", []).unwrap();
            conn.execute("DELETE FROM records WHERE record_id = 'S2'", []).unwrap();
        }
        let counted = || -> Vec<(String, String, i64)> {
            let conn = store.conn().unwrap();
            let mut stmt = conn
                .prepare(
                    "SELECT plan_id, sampling_region, COUNT(*) FROM records WHERE kind = 'sampling'
                     GROUP BY plan_id, sampling_region ORDER BY 1, 2",
                )
                .unwrap();
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        let rows = counted();
        assert_eq!(rows, vec![("P1".into(), "320000".into(), 2), ("P2".into(), "320000".into(), 1)]);
        let check = |rows: &[(String, String, i64)]| {
            for (plan, region, n) in rows {
                assert_eq!(store.sampling_count(plan, region, "", 100).unwrap(), *n as u64, "{plan} {region}");
            }
            assert_eq!(store.sampling_count("P1", "320000", "S1", 100).unwrap(), 1, "the record itself is left out");
            assert_eq!(store.sampling_count("P1", "320000", "S3", 100).unwrap(), 2, "S3 is no longer in P1");
            assert_eq!(store.sampling_count("P1", "330000", "", 100).unwrap(), 0, "S4 moved away");
            assert_eq!(store.sampling_count("P9", "320000", "", 100).unwrap(), 0);
            assert_eq!(store.sampling_count("P1", "320000", "", 1).unwrap(), 1, "counted up to the bound");
        };
        check(&rows);
        // Counting again from the rows (after a copy) gives the same counts.
        store.conn().unwrap().execute_batch(RECOUNT_SAMPLINGS).unwrap();
        check(&rows);
    }

    #[test]
    fn statements_with_a_limit_are_not_compiled_again_for_each_binding() {
        let store = SqliteStore::in_memory().unwrap();
        let conn = store.conn().unwrap();
        for (sql, bindings) in [
            (TAKE_DELIVERIES, [params!["320000", 5, 10], params!["330000", 6, 11], params!["320000", 7, 1]]),
            (AUDIT_ENTRIES_FROM, [params![1, 10], params![2, 20], params![3, 1]]),
        ] {
            let mut statement = conn.prepare(sql).unwrap();
            for binding in bindings {
                statement.query(binding).unwrap().next().unwrap();
            }
            assert_eq!(statement.get_status(rusqlite::StatementStatus::RePrepare), 0, "{sql}");
        }
        // The bare form is what the constants avoid.
        let mut bare =
            conn.prepare("SELECT entry FROM audit_log WHERE position >= ?1 ORDER BY position LIMIT ?2").unwrap();
        for binding in [params![1, 10], params![2, 20]] {
            bare.query(binding).unwrap().next().unwrap();
        }
        assert!(bare.get_status(rusqlite::StatementStatus::RePrepare) > 0, "SQLite no longer re-prepares on LIMIT ?");
    }

    #[test]
    fn the_workflow_lookups_use_indexes_not_scans() {
        let store = SqliteStore::in_memory().unwrap();
        let conn = store.conn().unwrap();
        // The mutual-recognition lookup of a product's samples.
        let plan = query_plan(
            &conn,
            "SELECT canonical FROM records WHERE kind = 'sampling'
             AND json_extract(canonical, '$.producer.uscc') = 'u'
             AND COALESCE(json_extract(canonical, '$.product.brand'), '') = 'b'
             AND COALESCE(json_extract(canonical, '$.product.model'), '') = 'm'",
            &[],
        );
        assert!(plan.iter().any(|p| p.contains("records_sampling_product")), "{plan:?}");
        // The in-flight count reads its index alone; the lease walks the mailbox in order.
        let plan = query_plan(&conn, IN_FLIGHT, &[&"r", &5]);
        assert!(plan.iter().any(|p| p.contains("USING COVERING INDEX deliveries_in_flight")), "{plan:?}");
        let plan = query_plan(&conn, TAKE_DELIVERIES, &[&"r", &5, &10]);
        for step in ["USING INDEX deliveries_waiting", "SEARCH c USING INTEGER PRIMARY KEY"] {
            assert!(plan.iter().any(|p| p.contains(step)), "{step} not used: {plan:?}");
        }
        assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "the lease sorts: {plan:?}");
        // The quota count reads one row of the kept counts and one record, not the plan's entries.
        let plan = query_plan(&conn, SAMPLING_COUNT, &[&"p", &"r", &"x"]);
        for step in
            ["SEARCH sampling_counts USING PRIMARY KEY", "SEARCH records USING INDEX sqlite_autoindex_records_1"]
        {
            assert!(plan.iter().any(|p| p.contains(step)), "{step} not used: {plan:?}");
        }
        // The plan summary's one query uses an index for each of its three parts.
        let plan = query_plan(&conn, PLAN_ROWS, &[&"p"]);
        for index in ["records_sampling_plan", "records_inspection_sample", "records_case_sample"] {
            assert!(plan.iter().any(|p| p.contains(index)), "{index} not used: {plan:?}");
        }
    }

    fn query_plan(conn: &Connection, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Vec<String> {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(params, |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}
