//! The PostgreSQL backend: several gateway replicas on one database.
//!
//! - tokio-postgres with a deadpool pool; statements prepared once per connection and the
//!   statements of one transaction pipelined (sent without waiting for each answer).
//! - Every commit is durable before it is answered (`synchronous_commit = on` in the transaction).
//! - Idempotency across replicas by the primary key of `messages` (`ON CONFLICT DO NOTHING`: the
//!   second of two concurrent commits waits for the first and then finds it).
//! - Deliveries are leased with `FOR UPDATE SKIP LOCKED`; a commit that fills a mailbox sends
//!   `NOTIFY`, and every replica `LISTEN`s, so a stream open on another replica wakes at once.
//! - Leader-only work holds a session advisory lock on a dedicated connection: when the holder
//!   dies its connection closes and the lock is free for the next replica.
//! - Migrations are versioned and run in one transaction under an advisory lock, so replicas
//!   starting together do not race.

use super::codec;
use super::copy::{self, Column, ColumnType, Row, StoreCopy, Value};
use super::types::*;
use super::{
    AuditLog, CaseLedger, Intake, LeaderLease, Leadership, Mailboxes, SamrOutbox, Store, StoreError, WorkflowRecords,
};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, NoTls, Statement};
use tracing::{info, warn};
use yrdx_adapters::{Record, RecordKind};
use yrdx_evidence::{AuditEntry, AuditEvent, SamrPackageAction, SignedHead, Sm3Digest};
use yrdx_proto::v1::{DisposalCase, SamplingRecord};

/// Pool size and timeouts of the PostgreSQL backend (`[postgres]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Connections in the pool (default 16: two cores' worth of concurrent commits, with room
    /// for Receive streams and the leader's work).
    pub pool_size: usize,
    /// How long a call waits for a free connection before the store counts as unavailable.
    pub acquire_timeout: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> PostgresOptions {
        PostgresOptions {
            pool_size: 16,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A URL with its password replaced, for logs.
pub(crate) fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &userinfo[..colon], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

const MIGRATIONS: &[&str] = &[
    // 1: the same tables as the embedded store, with the workflow lookups' values as plain
    // indexed columns instead of JSON expressions.
    "CREATE TABLE messages (
        sender TEXT NOT NULL,
        message_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        document BYTEA NOT NULL,
        reply BYTEA NOT NULL,
        received_at_ms BIGINT NOT NULL,
        PRIMARY KEY (sender, message_id)
    );
    CREATE TABLE records (
        kind TEXT NOT NULL,
        record_id TEXT NOT NULL,
        sender TEXT NOT NULL,
        message_id TEXT NOT NULL,
        canonical TEXT NOT NULL,
        stored_at_ms BIGINT NOT NULL,
        plan_id TEXT NOT NULL DEFAULT '',
        sampling_region TEXT NOT NULL DEFAULT '',
        producer_uscc TEXT NOT NULL DEFAULT '',
        brand TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        sample_id TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (kind, record_id)
    );
    CREATE INDEX records_sampling_plan ON records (plan_id, sampling_region) WHERE kind = 'sampling';
    CREATE INDEX records_sampling_product ON records (producer_uscc, brand, model) WHERE kind = 'sampling';
    CREATE INDEX records_by_sample ON records (kind, sample_id) WHERE kind IN ('inspection', 'case_transfer');
    CREATE TABLE deliveries (
        seq BIGSERIAL PRIMARY KEY,
        recipient TEXT NOT NULL,
        message_id TEXT NOT NULL,
        document BYTEA NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        visible_at_ms BIGINT NOT NULL DEFAULT 0,
        acked BOOLEAN NOT NULL DEFAULT false,
        created_at_ms BIGINT NOT NULL
    );
    CREATE INDEX deliveries_mailbox ON deliveries (recipient, seq) WHERE NOT acked;
    CREATE TABLE samr_outbox (
        seq BIGSERIAL PRIMARY KEY,
        kind TEXT NOT NULL,
        record_id TEXT NOT NULL,
        canonical TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL,
        package TEXT
    );
    CREATE INDEX samr_outbox_waiting ON samr_outbox (seq) WHERE package IS NULL;
    CREATE TABLE samr_packages (
        number TEXT PRIMARY KEY,
        day TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        package_type TEXT NOT NULL,
        bytes BYTEA NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ms BIGINT NOT NULL DEFAULT 0,
        reason TEXT NOT NULL DEFAULT '',
        created_at_ms BIGINT NOT NULL,
        UNIQUE (day, sequence)
    );
    CREATE TABLE overdue_notices (
        case_id TEXT NOT NULL,
        status INTEGER NOT NULL,
        sent_at_ms BIGINT NOT NULL,
        PRIMARY KEY (case_id, status)
    );",
    // 2: the audit chain and its signed heads; each submission keeps its entry's position and
    // the SM3 of its bytes (its receipt).
    "CREATE TABLE audit_log (position BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, entry TEXT NOT NULL);
    CREATE TABLE audit_heads (position BIGINT PRIMARY KEY, head TEXT NOT NULL);
    ALTER TABLE messages ADD COLUMN audit_position BIGINT;
    ALTER TABLE messages ADD COLUMN document_sm3 TEXT NOT NULL DEFAULT '';",
    // 3: the quota count can be answered from the plan index alone (an index-only scan): the
    // record id it leaves out is in the index.
    "DROP INDEX records_sampling_plan;
    CREATE INDEX records_sampling_plan ON records (plan_id, sampling_region, record_id) WHERE kind = 'sampling';",
    // 4: a delivery's document in a table of its own, written once (decision 195): the lease and
    // the Ack write a new version of the delivery's narrow row only, not of its document.
    "CREATE TABLE delivery_documents (seq BIGINT PRIMARY KEY, document BYTEA NOT NULL);
    INSERT INTO delivery_documents (seq, document) SELECT seq, document FROM deliveries;
    ALTER TABLE deliveries DROP COLUMN document;",
];

/// Advisory-lock key under which SAMR package numbers are taken (gap-free across replicas).
const NUMBERING_KEY: i64 = 0x7972_6478_0101;

/// Advisory-lock key under which audit entries are appended (one chain across replicas).
const AUDIT_KEY: i64 = 0x7972_6478_0003;

/// Advisory-lock key under which migrations run (per schema, see [`PostgresStore::scoped`]).
const MIGRATION_KEY: i64 = 0x7972_6478_0000;

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    config: tokio_postgres::Config,
    /// The schema the store lives in (`current_schema()`); lock keys and the notification
    /// channel are scoped to it, so two installations on one database do not meet.
    schema: String,
    signals: broadcast::Sender<String>,
    /// Dropped with the last clone of the store: the listener then stops.
    alive: std::sync::Arc<()>,
    /// Told each commit's group size.
    groups: std::sync::Arc<std::sync::Mutex<Option<super::GroupObserver>>>,
    /// The queue of submissions the group writers commit (`None` in the writers' own copy).
    writers: Option<mpsc::UnboundedSender<Waiting>>,
    /// The queue of acknowledgements the ack writer commits together (`None` in its own copy).
    ackers: Option<mpsc::UnboundedSender<WaitingChange<Acknowledgement>>>,
    /// The queue of leases the lease writer commits together (`None` in its own copy).
    leasers: Option<mpsc::UnboundedSender<WaitingChange<Lease>>>,
}

/// A mailbox lease asked for: up to `max` visible deliveries, hidden for `visibility_ms`.
struct Lease {
    recipient: String,
    max: usize,
    now_ms: i64,
    visibility_ms: i64,
}

/// An acknowledgement asked for: a mailbox and delivery ids.
struct Acknowledgement {
    recipient: String,
    delivery_ids: Vec<DeliveryId>,
}

/// A change to mailboxes that one task per replica commits in groups (leases, Acks): one
/// transaction for every change waiting, its statements pipelined on one connection, one hold
/// of the audit chain's lock — where each change alone held the lock for a transaction of its
/// own (an Ack across its own WAL flush), queueing every other writer of the chain behind it.
#[async_trait]
trait MailboxChange: Send + Sync + Sized + 'static {
    /// What the change's caller is answered.
    type Answer: Send + 'static;
    /// Commits the changes in one transaction, each answered as if alone.
    async fn commit_together(store: &PostgresStore, group: &[&Self]) -> Result<Vec<Self::Answer>, StoreError>;
}

#[async_trait]
impl MailboxChange for Lease {
    type Answer = Vec<PendingDelivery>;
    async fn commit_together(store: &PostgresStore, group: &[&Lease]) -> Result<Vec<Self::Answer>, StoreError> {
        store.take_group(group).await
    }
}

#[async_trait]
impl MailboxChange for Acknowledgement {
    type Answer = u32;
    async fn commit_together(store: &PostgresStore, group: &[&Acknowledgement]) -> Result<Vec<u32>, StoreError> {
        store.ack_group(group).await
    }
}

/// One mailbox change in a transaction of its own.
async fn commit_alone<C: MailboxChange>(store: &PostgresStore, change: &C) -> Result<C::Answer, StoreError> {
    C::commit_together(store, &[change])
        .await?
        .pop()
        .ok_or_else(|| StoreError::GroupCommit("the change was not answered".into()))
}

/// A mailbox change waiting for its group's commit, and where its answer goes.
type WaitingChange<C> = (C, oneshot::Sender<Result<<C as MailboxChange>::Answer, StoreError>>);

/// Most mailbox changes one transaction commits.
const MAX_CHANGE_GROUP: usize = 256;

/// Takes the waiting changes in groups and commits each group in one transaction. A group that
/// fails is committed again one change at a time, so one fails alone.
async fn commit_changes_in_groups<C: MailboxChange>(
    store: PostgresStore,
    mut queue: mpsc::UnboundedReceiver<WaitingChange<C>>,
) {
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_CHANGE_GROUP {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let changes: Vec<&C> = group.iter().map(|(c, _)| c).collect();
        let together = if group.len() > 1 { C::commit_together(&store, &changes).await.ok() } else { None };
        match together {
            Some(answers) if answers.len() == group.len() => {
                for ((_, answer), answered) in group.into_iter().zip(answers) {
                    let _ = answer.send(Ok(answered));
                }
            }
            _ => {
                for (change, answer) in group {
                    let _ = answer.send(commit_alone(&store, &change).await);
                }
            }
        }
    }
}

/// A submission waiting for its group's commit, and where its answer goes.
type Waiting = (Submission, oneshot::Sender<Result<Committed, StoreError>>);

/// Most submissions one transaction commits.
const MAX_GROUP: usize = 64;

/// Writer tasks per store. One: a group takes five round trips whatever its size, so while it
/// is written the next group only grows, and larger groups cost PostgreSQL less per submission.
/// Measured (docs/benchmarks.md, sixth run): one writer gave 11 % more submissions/s on two
/// replicas than two writers, and four were worse than two.
const WRITERS: usize = 1;

/// Takes the waiting submissions in groups and commits each group in one transaction. A group
/// that fails is committed again one submission at a time, so one bad submission fails alone.
async fn write_groups(
    store: PostgresStore,
    queue: std::sync::Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Waiting>>>,
) {
    loop {
        let mut group = Vec::new();
        {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else { return };
            group.push(first);
            while group.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
        }
        let together = if group.len() > 1 {
            let submissions: Vec<&Submission> = group.iter().map(|(s, _)| s).collect();
            store.commit_group(&submissions).await.ok()
        } else {
            None
        };
        match together {
            Some(answers) => {
                store.observe_group(group.len());
                for ((_, answer), committed) in group.into_iter().zip(answers) {
                    let _ = answer.send(Ok(committed));
                }
            }
            None => {
                for (submission, answer) in group {
                    let committed = store.commit_alone(&submission).await;
                    store.observe_group(1);
                    let _ = answer.send(committed);
                }
            }
        }
    }
}

fn pg(operation: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::postgres(operation, e)
}

fn pool_error(operation: &'static str) -> impl Fn(deadpool_postgres::PoolError) -> StoreError {
    move |e| StoreError::postgres(operation, e)
}

/// Whether a failed transaction may simply be run again (a deadlock or serialization failure
/// between replicas).
fn retryable(e: &StoreError) -> bool {
    let StoreError::Backend { source, .. } = e else { return false };
    source.downcast_ref::<tokio_postgres::Error>().and_then(|e| e.code()).is_some_and(|c| {
        *c == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
            || *c == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
    })
}

impl PostgresStore {
    /// Connects, runs pending migrations (under an advisory lock) and starts listening for
    /// mailbox notifications.
    pub async fn connect(url: &str, options: &PostgresOptions) -> Result<PostgresStore, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| StoreError::Config(format!("store URL {}: {e}", redacted(url))))?;
        config.connect_timeout(options.connect_timeout);
        if options.pool_size == 0 {
            return Err(StoreError::Config("postgres.pool_size must be at least 1".into()));
        }
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(options.connect_timeout))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Config(format!("postgres pool: {e}")))?;
        let mut client = pool.get().await.map_err(pool_error("connect"))?;
        let schema: String = client.query_one("SELECT current_schema()", &[]).await.map_err(pg("connect"))?.get(0);
        let store = PostgresStore {
            pool: pool.clone(),
            config,
            schema,
            signals: broadcast::channel(1024).0,
            alive: std::sync::Arc::new(()),
            groups: Default::default(),
            writers: None,
            ackers: None,
            leasers: None,
        };
        store.migrate(&mut client).await?;
        drop(client);
        store.spawn_listener();
        // The writers hold a copy without the queue's sender: when the last copy the gateway
        // holds is dropped, the queue closes and they stop.
        let (writers, queue) = mpsc::unbounded_channel();
        let queue = std::sync::Arc::new(tokio::sync::Mutex::new(queue));
        for _ in 0..WRITERS {
            tokio::spawn(write_groups(store.clone(), queue.clone()));
        }
        let (ackers, acks) = mpsc::unbounded_channel();
        tokio::spawn(commit_changes_in_groups(store.clone(), acks));
        let (leasers, leases) = mpsc::unbounded_channel();
        tokio::spawn(commit_changes_in_groups(store.clone(), leases));
        let store = PostgresStore { writers: Some(writers), ackers: Some(ackers), leasers: Some(leasers), ..store };
        info!(store = %redacted(url), schema = %store.schema, "PostgreSQL store ready");
        Ok(store)
    }

    /// Tells the observer (the metrics) how many submissions one commit held.
    fn observe_group(&self, size: usize) {
        if let Some(observe) = self.groups.lock().ok().and_then(|o| o.clone()) {
            observe(size);
        }
    }

    /// A key unique to this store's schema (advisory locks are per database).
    fn scoped(&self, key: i64) -> i64 {
        // FNV-1a of the schema name, mixed into the key.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.schema.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        key ^ (h as i64 & 0x7fff_ffff_0000_0000)
    }

    fn channel(&self) -> String {
        let mut c = format!("yrdx_mailbox_{}", self.schema);
        c.truncate(63);
        c
    }

    async fn migrate(&self, client: &mut deadpool_postgres::Client) -> Result<(), StoreError> {
        let tx = client.transaction().await.map_err(pg("migrate"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&self.scoped(MIGRATION_KEY)]).await.map_err(pg("migrate"))?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS yrdx_schema_version (version INTEGER NOT NULL)")
            .await
            .map_err(pg("migrate"))?;
        let version: i32 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM yrdx_schema_version", &[])
            .await
            .map_err(pg("migrate"))?
            .get(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            tx.batch_execute(sql).await.map_err(pg("migrate"))?;
            tx.execute("INSERT INTO yrdx_schema_version VALUES ($1)", &[&(i as i32 + 1)])
                .await
                .map_err(pg("migrate"))?;
            info!(version = i + 1, "PostgreSQL store migrated");
        }
        tx.commit().await.map_err(pg("migrate"))
    }

    /// Listens for mailbox notifications on a dedicated connection, reconnecting after a failure
    /// (streams still poll, so a lost notification only delays a delivery).
    fn spawn_listener(&self) {
        let (config, channel, signals) = (self.config.clone(), self.channel(), self.signals.clone());
        let alive = std::sync::Arc::downgrade(&self.alive);
        tokio::spawn(async move {
            'reconnect: while alive.strong_count() > 0 {
                match config.connect(NoTls).await {
                    Ok((client, mut connection)) => {
                        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                        let pump = tokio::spawn(async move {
                            use futures_util::StreamExt;
                            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                            while let Some(message) = messages.next().await {
                                match message {
                                    Ok(AsyncMessage::Notification(n)) => {
                                        if tx.send(n.payload().to_string()).is_err() {
                                            break;
                                        }
                                    }
                                    Ok(_) => {}
                                    Err(e) => {
                                        warn!(error = %e, "PostgreSQL notification connection failed");
                                        break;
                                    }
                                }
                            }
                        });
                        if let Err(e) = client.batch_execute(&format!("LISTEN \"{channel}\"")).await {
                            warn!(error = %e, "LISTEN failed");
                        } else {
                            loop {
                                tokio::select! {
                                    region = rx.recv() => match region {
                                        // No receiver yet is fine: nobody waits.
                                        Some(region) => { let _ = signals.send(region); }
                                        None => break,
                                    },
                                    _ = tokio::time::sleep(Duration::from_secs(1)) => {
                                        if alive.strong_count() == 0 {
                                            pump.abort();
                                            break 'reconnect;
                                        }
                                    }
                                }
                            }
                        }
                        pump.abort();
                    }
                    Err(e) => warn!(error = %e, "PostgreSQL notification connection could not be opened"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    async fn client(&self, operation: &'static str) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(pool_error(operation))
    }

    /// Commits a group of submissions in one transaction (one WAL flush for all), each answered
    /// as if alone: `New`, or `Existing` with the first submission's digest and reply (also for
    /// the same key twice in one group).
    async fn commit_group(&self, group: &[&Submission]) -> Result<Vec<Committed>, StoreError> {
        // A key another replica committed after this group looked it up makes the group start
        // again; each start sees more keys stored, so a few tries always end.
        for _ in 0..8 {
            if let Some(answers) = self.try_commit_group(group).await? {
                return Ok(answers);
            }
        }
        Err(StoreError::GroupCommit("the group's keys kept being committed by another replica".into()))
    }

    /// One try of [`PostgresStore::commit_group`]; `None` when a key it took for new was
    /// committed meanwhile (nothing is then stored).
    ///
    /// Five round trips whatever the group's size: each table gets one multi-row statement over
    /// arrays, and statements that do not wait for each other's answers are sent together
    /// (pipelined). The messages are inserted under the audit chain's lock, with their positions
    /// in it: every message insert of the group commit happens under that lock, so there the
    /// insert decides for good which keys are new, and no message row is written twice.
    /// Records are upserted in key order before the lock, so two replicas' groups wait for each
    /// other rather than deadlock.
    async fn try_commit_group(&self, group: &[&Submission]) -> Result<Option<Vec<Committed>>, StoreError> {
        use std::collections::hash_map::{Entry, HashMap};
        let mut client = self.client("commit").await?;
        let prepared = prepare_all(&GROUP_STATEMENTS, |sql| client.prepare_cached(sql)).await.map_err(pg("commit"))?;
        let [stored_messages, upsert_records, insert_delivery_rows, insert_samr, notify, lock, tip, insert_messages, insert_audit] =
            prepared.as_slice()
        else {
            return Err(StoreError::GroupCommit("the group commit's statements were not prepared".into()));
        };
        // The first of each key counts; a later one in the group is answered as its duplicate.
        let mut first_of: HashMap<(&str, &str), usize> = HashMap::with_capacity(group.len());
        let mut repeats = Vec::new();
        for (i, s) in group.iter().enumerate() {
            match first_of.entry((s.sender.as_str(), s.message_id.as_str())) {
                Entry::Occupied(first) => repeats.push((i, *first.get())),
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
            }
        }
        let tx = client.transaction().await.map_err(pg("commit"))?;
        // Round trip 2: which keys were stored before (senders × ids, a superset of the pairs:
        // it reads the primary key alone whatever the planner thinks of the group's size).
        let mut senders: Vec<&str> = group.iter().map(|s| s.sender.as_str()).collect();
        senders.sort_unstable();
        senders.dedup();
        let ids: Vec<&str> = group.iter().map(|s| s.message_id.as_str()).collect();
        let (durable, stored) = futures_util::join!(tx.batch_execute("SET LOCAL synchronous_commit TO on"), async {
            tx.query(stored_messages, &[&senders, &ids]).await
        },);
        durable.map_err(pg("commit"))?;
        let mut answers: Vec<Option<Committed>> = vec![None; group.len()];
        for r in stored.map_err(pg("commit"))? {
            if let Some(&i) = first_of.get(&(r.get::<_, &str>(0), r.get::<_, &str>(1))) {
                answers[i] = Some(Committed::Existing { digest: r.get(2), reply: r.get(3) });
            }
        }
        // Arrival order: mailboxes, the SAMR outbox and the chain see the group as it came.
        let new: Vec<usize> = {
            let mut new: Vec<usize> = first_of.values().copied().filter(|&i| answers[i].is_none()).collect();
            new.sort_unstable();
            new
        };
        if !new.is_empty() {
            let sm3: Vec<Sm3Digest> = new.iter().map(|&i| Sm3Digest::of(&group[i].document)).collect();
            let sm3_hex: Vec<String> = sm3.iter().map(|d| d.to_hex()).collect();
            let records = RecordRows::latest(group, &new);
            let deliveries = DeliveryRows::of(new.iter().map(|&i| (group[i].received_at_ms, &group[i].deliveries[..])));
            let outbox = OutboxRows::of(new.iter().map(|&i| (group[i].received_at_ms, &group[i].samr[..])));
            let regions = deliveries.regions();
            let (channel, audit_key) = (self.channel(), self.scoped(AUDIT_KEY));
            let mut events = Vec::new();
            let mut firsts = Vec::with_capacity(new.len());
            for (n, &i) in new.iter().enumerate() {
                firsts.push(events.len());
                let at = group[i].received_at_ms;
                events.extend(super::audit::submission_events(group[i], sm3[n]).into_iter().map(|e| (at, e)));
            }
            // Round trip 3: every row but the messages, the notification, then the chain's lock
            // and its tip. The futures are first polled, and so sent, in this order (`join!`
            // polls in order), which is the order PostgreSQL runs them: the tip is read after
            // the lock is held.
            let (written, delivered, queued, notified, locked, last) = futures_util::join!(
                records.upsert(&tx, upsert_records),
                deliveries.insert(&tx, insert_delivery_rows),
                outbox.insert(&tx, insert_samr),
                async { execute_rows(&tx, notify, regions.len(), &[&channel, &regions]).await },
                async { tx.execute(lock, &[&audit_key]).await },
                async { tx.query_opt(tip, &[]).await },
            );
            written.map_err(pg("commit"))?;
            delivered.map_err(pg("deliveries"))?;
            queued.map_err(pg("commit"))?;
            notified.map_err(pg("notify"))?;
            locked.map_err(pg("audit"))?;
            let entries = ChainRows::after(last.map_err(pg("audit"))?, events)?;
            // Round trip 4: the messages, each with its position in the chain, and the chain's
            // entries.
            let text = |f: fn(&Submission) -> &str| new.iter().map(|&i| f(group[i])).collect::<Vec<&str>>();
            let bytes = |f: fn(&Submission) -> &[u8]| new.iter().map(|&i| f(group[i])).collect::<Vec<&[u8]>>();
            let (m_senders, m_ids, m_digests) = (text(|s| &s.sender), text(|s| &s.message_id), text(|s| &s.digest));
            let (m_documents, m_replies) = (bytes(|s| &s.document), bytes(|s| &s.reply));
            let m_received: Vec<i64> = new.iter().map(|&i| group[i].received_at_ms).collect();
            let m_positions: Vec<i64> = firsts.iter().map(|&first| entries.positions[first]).collect();
            let (inserted, appended) = futures_util::join!(
                async {
                    tx.execute(
                        insert_messages,
                        &[
                            &m_senders,
                            &m_ids,
                            &m_digests,
                            &m_documents,
                            &m_replies,
                            &m_received,
                            &m_positions,
                            &sm3_hex,
                        ],
                    )
                    .await
                },
                entries.insert(&tx, insert_audit),
            );
            let inserted = inserted.map_err(pg("commit"))?;
            appended.map_err(pg("audit"))?;
            if inserted as usize != new.len() {
                // A key was committed by another replica after round trip 2: start again.
                tx.rollback().await.map_err(pg("commit"))?;
                return Ok(None);
            }
            // Round trip 5: the commit, durable before anyone is answered.
            tx.commit().await.map_err(pg("commit"))?;
            for ((&i, &first), document_sm3) in new.iter().zip(&firsts).zip(sm3_hex) {
                answers[i] = Some(Committed::New { audit_position: entries.positions[first] as u64, document_sm3 });
            }
        } else {
            tx.commit().await.map_err(pg("commit"))?;
        }
        for (i, first) in repeats {
            answers[i] = match &answers[first] {
                Some(Committed::New { .. }) => {
                    Some(Committed::Existing { digest: group[first].digest.clone(), reply: group[first].reply.clone() })
                }
                other => other.clone(),
            };
        }
        answers
            .into_iter()
            .map(|a| a.ok_or_else(|| StoreError::GroupCommit("a submission of the group was not answered".into())))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Commits a mailbox change through its group writer's queue, or alone in a copy that has
    /// none (the writers' own).
    async fn commit_change<C: MailboxChange>(
        &self,
        queue: Option<&mpsc::UnboundedSender<WaitingChange<C>>>,
        change: C,
    ) -> Result<C::Answer, StoreError> {
        let Some(queue) = queue else { return commit_alone(self, &change).await };
        let (answer, answered) = oneshot::channel();
        queue
            .send((change, answer))
            .map_err(|_| StoreError::GroupCommit("the store's mailbox writer has stopped".into()))?;
        answered.await.map_err(|_| StoreError::GroupCommit("the mailbox change was not committed".into()))?
    }

    /// Leases deliveries for several leases in one transaction, each as if alone (oldest first,
    /// every hand-out audited at its lease's instant); two leases of one mailbox in a group never
    /// get the same delivery (the second sees the first's hidden). A lease need not survive a
    /// crash (a lost lease only makes the delivery visible again sooner: it is sent again, as
    /// after any failure), so the commit does not wait for the WAL flush.
    async fn take_group(&self, leases: &[&Lease]) -> Result<Vec<Vec<PendingDelivery>>, StoreError> {
        let mut client = self.client("take").await?;
        let tx = client.transaction().await.map_err(pg("take"))?;
        let stmt = tx.prepare_cached(TAKE_DELIVERIES).await.map_err(pg("take"))?;
        let asked: Vec<(i64, i64)> = leases
            .iter()
            .map(|l| (l.now_ms.saturating_add(l.visibility_ms), l.max.min(i64::MAX as usize) as i64))
            .collect();
        // Polled, and so sent, in order: one round trip for the setting and every lease.
        let (lazy, taken) = futures_util::join!(
            tx.batch_execute("SET LOCAL synchronous_commit TO off"),
            futures_util::future::join_all(leases.iter().zip(&asked).map(|(l, (until, max))| {
                let (tx, stmt) = (&tx, &stmt);
                async move { tx.query(stmt, &[&l.recipient, &l.now_ms, until, max]).await }
            })),
        );
        lazy.map_err(pg("take"))?;
        let mut events = Vec::new();
        let mut out = Vec::with_capacity(leases.len());
        for (lease, rows) in leases.iter().zip(taken) {
            let mut deliveries: Vec<PendingDelivery> = rows
                .map_err(pg("take"))?
                .into_iter()
                .map(|r| PendingDelivery {
                    delivery_id: DeliveryId(r.get(0)),
                    message_id: r.get(1),
                    document: r.get(2),
                    attempt: r.get::<_, i32>(3).max(0) as u32,
                    queued_at_ms: r.get(4),
                })
                .collect();
            deliveries.sort_by_key(|d| d.delivery_id);
            events.extend(deliveries.iter().map(|d| {
                let event = AuditEvent::DeliveryHandedOut {
                    delivery_id: d.delivery_id.0.to_string(),
                    recipient: lease.recipient.clone(),
                    message_id: d.message_id.clone(),
                };
                (lease.now_ms, event)
            }));
            out.push(deliveries);
        }
        self.append_audit_at(&tx, events).await?;
        tx.commit().await.map_err(pg("take"))?;
        Ok(out)
    }

    /// Acknowledges the deliveries of several Acks in one transaction, durable before any is
    /// answered; returns per Ack how many of its deliveries were unacknowledged until now, each
    /// of those audited, in id order within the Ack. A delivery two Acks name counts for the
    /// first. Rows are locked in id order, so two replicas' groups wait rather than deadlock.
    async fn ack_group(&self, asked: &[&Acknowledgement]) -> Result<Vec<u32>, StoreError> {
        use std::collections::{HashMap, HashSet};
        let (mut seqs, mut recipients) = (Vec::new(), Vec::new());
        for a in asked {
            for id in &a.delivery_ids {
                seqs.push(id.0);
                recipients.push(a.recipient.as_str());
            }
        }
        let mut client = self.client("ack").await?;
        let tx = client.transaction().await.map_err(pg("ack"))?;
        let stmt = tx.prepare_cached(ACK_DELIVERIES).await.map_err(pg("ack"))?;
        let (durable, rows) = futures_util::join!(tx.batch_execute("SET LOCAL synchronous_commit TO on"), async {
            tx.query(&stmt, &[&seqs, &recipients]).await
        },);
        durable.map_err(pg("ack"))?;
        // Each delivery acknowledged now, and its mailbox (a delivery id is one row).
        let acked: HashMap<i64, String> =
            rows.map_err(pg("ack"))?.iter().map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1))).collect();
        let (mut counts, mut events, mut counted) = (Vec::with_capacity(asked.len()), Vec::new(), HashSet::new());
        for a in asked {
            let mut newly: Vec<i64> = a
                .delivery_ids
                .iter()
                .map(|d| d.0)
                .filter(|seq| acked.get(seq).is_some_and(|r| *r == a.recipient) && counted.insert(*seq))
                .collect();
            newly.sort_unstable();
            counts.push(newly.len() as u32);
            events.extend(newly.iter().map(|seq| AuditEvent::DeliveryAcknowledged {
                delivery_id: seq.to_string(),
                recipient: a.recipient.clone(),
            }));
        }
        self.append_audit(&tx, super::audit::wall_clock_ms(), events).await?;
        tx.commit().await.map_err(pg("ack"))?;
        Ok(counts)
    }

    /// One submission on its own, run again after a deadlock or serialization failure.
    async fn commit_alone(&self, submission: &Submission) -> Result<Committed, StoreError> {
        let mut tries = 0;
        loop {
            match self.commit_group(&[submission]).await {
                Err(e) if retryable(&e) && tries < 3 => tries += 1,
                Ok(mut answers) if answers.len() == 1 => return Ok(answers.remove(0)),
                Ok(_) => return Err(StoreError::GroupCommit("the submission was not answered".into())),
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends audit entries as the transaction's last statements (the chain's lock is then held
    /// only until the commit); returns their positions.
    async fn append_audit(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        at_ms: i64,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<u64>, StoreError> {
        self.append_audit_at(tx, events.into_iter().map(|e| (at_ms, e)).collect()).await
    }

    /// [`PostgresStore::append_audit`] with each entry's own instant: two round trips (the lock
    /// with the tip, then every entry in one statement).
    async fn append_audit_at(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        events: Vec<(i64, AuditEvent)>,
    ) -> Result<Vec<u64>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let prepared = prepare_all(&AUDIT_STATEMENTS, |sql| tx.prepare_cached(sql)).await.map_err(pg("audit"))?;
        let [lock, tip, insert_audit] = prepared.as_slice() else {
            return Err(StoreError::GroupCommit("the audit statements were not prepared".into()));
        };
        let audit_key = self.scoped(AUDIT_KEY);
        // Polled in order: the tip is read after the lock is held.
        let (locked, last) = futures_util::join!(async { tx.execute(lock, &[&audit_key]).await }, async {
            tx.query_opt(tip, &[]).await
        },);
        locked.map_err(pg("audit"))?;
        let entries = ChainRows::after(last.map_err(pg("audit"))?, events)?;
        entries.insert(tx, insert_audit).await.map_err(pg("audit"))?;
        Ok(entries.positions.iter().map(|&p| p as u64).collect())
    }

    /// Tells every replica which mailboxes the transaction fills (sent when it commits).
    async fn notify(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        deliveries: &[NewDelivery],
    ) -> Result<(), StoreError> {
        let regions = regions_of(deliveries.iter().map(|d| d.recipient.as_str()));
        if regions.is_empty() {
            return Ok(());
        }
        let stmt = tx.prepare_cached(NOTIFY).await.map_err(pg("notify"))?;
        tx.execute(&stmt, &[&self.channel(), &regions]).await.map_err(pg("notify"))?;
        Ok(())
    }

    async fn packages(&self, tail: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<SamrPackage>, StoreError> {
        let client = self.client("samr_packages").await?;
        let sql = format!("SELECT number, package_type, bytes, state, attempts, reason FROM samr_packages {tail}");
        let stmt = client.prepare_cached(&sql).await.map_err(pg("samr_packages"))?;
        let rows = client.query(&stmt, params).await.map_err(pg("samr_packages"))?;
        rows.into_iter()
            .map(|r| {
                let number: String = r.get(0);
                let state: String = r.get(3);
                let state = PackageState::from_name(&state).ok_or_else(|| StoreError::Corrupt {
                    what: format!("samr_packages.state of {number}"),
                    detail: state.clone(),
                })?;
                Ok(SamrPackage {
                    number,
                    package_type: r.get(1),
                    bytes: r.get(2),
                    state,
                    attempts: r.get::<_, i32>(4).max(0) as u32,
                    reason: r.get(5),
                })
            })
            .collect()
    }

    async fn strings(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<String>, StoreError> {
        let client = self.client(operation).await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg(operation))?;
        Ok(client.query(&stmt, params).await.map_err(pg(operation))?.into_iter().map(|r| r.get(0)).collect())
    }

    async fn count(
        &self,
        operation: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<i64, StoreError> {
        let client = self.client(operation).await?;
        let stmt = client.prepare_cached(sql).await.map_err(pg(operation))?;
        Ok(client.query_one(&stmt, params).await.map_err(pg(operation))?.get(0))
    }

    /// Records waiting for a SAMR package: (kind, record id), oldest first (tests, operators).
    pub async fn samr_waiting(&self) -> Result<Vec<(String, String)>, StoreError> {
        let client = self.client("samr_waiting").await?;
        let rows = client
            .query("SELECT kind, record_id FROM samr_outbox WHERE package IS NULL ORDER BY seq", &[])
            .await
            .map_err(pg("samr_waiting"))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

async fn insert_deliveries(
    tx: &deadpool_postgres::Transaction<'_>,
    deliveries: &[NewDelivery],
    now_ms: i64,
) -> Result<(), StoreError> {
    let rows = DeliveryRows::of(std::iter::once((now_ms, deliveries)));
    let stmt = tx.prepare_cached(INSERT_DELIVERIES).await.map_err(pg("deliveries"))?;
    rows.insert(tx, &stmt).await.map_err(pg("deliveries"))?;
    Ok(())
}

/// Prepares statements on one connection (each once per connection: the pool's statement cache
/// keeps them), those not yet prepared together in one round trip.
async fn prepare_all<'a, F, P>(sql: &'a [&'a str], prepare: F) -> Result<Vec<Statement>, tokio_postgres::Error>
where
    F: Fn(&'a str) -> P,
    P: std::future::Future<Output = Result<Statement, tokio_postgres::Error>>,
{
    futures_util::future::try_join_all(sql.iter().map(|s| prepare(s))).await
}

/// What was stored before under a group's senders and message ids (a superset of its keys).
const STORED_MESSAGES: &str = "SELECT sender, message_id, digest, reply FROM messages
    WHERE sender = ANY($1::text[]) AND message_id = ANY($2::text[])";

/// The records of a group (one row per key: `ON CONFLICT DO UPDATE` may touch a row once).
const UPSERT_RECORDS: &str = "INSERT INTO records (kind, record_id, sender, message_id, canonical, stored_at_ms,
        plan_id, sampling_region, producer_uscc, brand, model, sample_id)
    SELECT k, i, s, m, c, t, p, r, u, b, o, a
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
                $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
        WITH ORDINALITY AS x(k, i, s, m, c, t, p, r, u, b, o, a, n)
    ORDER BY n
    ON CONFLICT (kind, record_id) DO UPDATE SET sender = excluded.sender,
        message_id = excluded.message_id, canonical = excluded.canonical,
        stored_at_ms = excluded.stored_at_ms, plan_id = excluded.plan_id,
        sampling_region = excluded.sampling_region, producer_uscc = excluded.producer_uscc,
        brand = excluded.brand, model = excluded.model, sample_id = excluded.sample_id";

/// Deliveries, in mailbox order.
/// Each takes its id from the sequence in that order (PostgreSQL evaluates a volatile output
/// column after the `ORDER BY`), and its document goes to `delivery_documents` under that id.
const INSERT_DELIVERIES: &str = "WITH x AS (
        SELECT nextval('deliveries_seq_seq') AS seq, r, m, d, t
        FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[]) WITH ORDINALITY AS u(r, m, d, t, n)
        ORDER BY n
    ), queued AS (
        INSERT INTO deliveries (seq, recipient, message_id, created_at_ms) SELECT seq, r, m, t FROM x
    )
    INSERT INTO delivery_documents (seq, document) SELECT seq, d FROM x";

/// Leases a mailbox's oldest visible deliveries: `$1` the mailbox, `$2` now, `$3` until when they
/// are hidden, `$4` how many at most; rows another transaction holds are skipped.
const TAKE_DELIVERIES: &str = "UPDATE deliveries d SET attempt = d.attempt + 1, visible_at_ms = $3
    FROM (SELECT seq FROM deliveries WHERE recipient = $1 AND NOT acked AND visible_at_ms <= $2
          ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED) t
    WHERE d.seq = t.seq
    RETURNING d.seq, d.message_id, (SELECT c.document FROM delivery_documents c WHERE c.seq = d.seq),
        d.attempt, d.created_at_ms";

/// Acknowledges (delivery id, mailbox) pairs not yet acknowledged, locking them in id order;
/// returns each pair acknowledged now.
const ACK_DELIVERIES: &str = "WITH asked AS (
        SELECT d.seq FROM deliveries d
        JOIN (SELECT DISTINCT s, r FROM unnest($1::bigint[], $2::text[]) AS u(s, r)) u ON d.seq = u.s AND d.recipient = u.r
        WHERE NOT d.acked ORDER BY d.seq FOR UPDATE OF d
    )
    UPDATE deliveries SET acked = true FROM asked WHERE deliveries.seq = asked.seq
    RETURNING deliveries.seq, deliveries.recipient";

/// Records queued for SAMR packages, in order.
const INSERT_SAMR: &str = "INSERT INTO samr_outbox (kind, record_id, canonical, created_at_ms)
    SELECT k, i, c, t FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS x(k, i, c, t, n)
    ORDER BY n";

/// One notification per mailbox filled (sent when the transaction commits).
const NOTIFY: &str = "SELECT pg_notify($1, r) FROM unnest($2::text[]) AS r";

/// The audit chain's lock, held until the transaction ends.
const AUDIT_LOCK: &str = "SELECT pg_advisory_xact_lock($1)";

/// The chain's last entry (read under its lock).
const AUDIT_TIP: &str = "SELECT entry FROM audit_log ORDER BY position DESC LIMIT 1";

/// Entries of the chain, in one statement.
const INSERT_AUDIT: &str = "INSERT INTO audit_log (position, at_ms, entry)
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[])";

/// The new messages of a group, each with its position in the chain (its receipt states it).
/// Run under the chain's lock: a key committed meanwhile is not written again, and the count
/// tells.
const INSERT_MESSAGES: &str = "INSERT INTO messages (sender, message_id, digest, document, reply, received_at_ms,
        audit_position, document_sm3)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::bigint[], $7::bigint[],
                         $8::text[])
    ON CONFLICT DO NOTHING";

/// The group commit's statements, in the order [`PostgresStore::try_commit_group`] names them.
const GROUP_STATEMENTS: [&str; 9] = [
    STORED_MESSAGES,
    UPSERT_RECORDS,
    INSERT_DELIVERIES,
    INSERT_SAMR,
    NOTIFY,
    AUDIT_LOCK,
    AUDIT_TIP,
    INSERT_MESSAGES,
    INSERT_AUDIT,
];

/// The statements that append to the chain.
const AUDIT_STATEMENTS: [&str; 3] = [AUDIT_LOCK, AUDIT_TIP, INSERT_AUDIT];

/// Runs a multi-row statement over `rows` rows of array parameters; none is no round trip.
async fn execute_rows(
    tx: &tokio_postgres::Transaction<'_>,
    stmt: &Statement,
    rows: usize,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    if rows == 0 {
        return Ok(0);
    }
    tx.execute(stmt, params).await
}

/// The records a group writes, as the columns of [`UPSERT_RECORDS`]: the last version of each
/// record in arrival order, in key order (so two replicas lock the same rows in the same order).
struct RecordRows<'a> {
    kinds: Vec<&'static str>,
    ids: Vec<&'a str>,
    senders: Vec<&'a str>,
    message_ids: Vec<&'a str>,
    canonical: Vec<String>,
    stored_at_ms: Vec<i64>,
    keys: [Vec<&'a str>; 6],
}

impl<'a> RecordRows<'a> {
    fn latest(group: &[&'a Submission], new: &[usize]) -> RecordRows<'a> {
        let mut latest: std::collections::BTreeMap<(&'static str, &'a str), (&'a Submission, &'a StoredRecord)> =
            Default::default();
        for &i in new {
            let s: &'a Submission = group[i];
            for r in &s.records {
                latest.insert((r.kind.name(), r.id.as_str()), (s, r));
            }
        }
        let n = latest.len();
        let mut rows = RecordRows {
            kinds: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            senders: Vec::with_capacity(n),
            message_ids: Vec::with_capacity(n),
            canonical: Vec::with_capacity(n),
            stored_at_ms: Vec::with_capacity(n),
            keys: Default::default(),
        };
        for ((kind, id), (s, r)) in latest {
            rows.kinds.push(kind);
            rows.ids.push(id);
            rows.senders.push(&s.sender);
            rows.message_ids.push(&s.message_id);
            rows.canonical.push(codec::encode(&r.record));
            rows.stored_at_ms.push(s.received_at_ms);
            let k = &r.keys;
            for (column, value) in rows.keys.iter_mut().zip([
                &k.plan_id,
                &k.sampling_region,
                &k.producer_uscc,
                &k.brand,
                &k.model,
                &k.sample_id,
            ]) {
                column.push(value.as_str());
            }
        }
        rows
    }

    async fn upsert(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        stmt: &Statement,
    ) -> Result<u64, tokio_postgres::Error> {
        let [plan, region, uscc, brand, model, sample] = &self.keys;
        execute_rows(
            tx,
            stmt,
            self.ids.len(),
            &[
                &self.kinds,
                &self.ids,
                &self.senders,
                &self.message_ids,
                &self.canonical,
                &self.stored_at_ms,
                plan,
                region,
                uscc,
                brand,
                model,
                sample,
            ],
        )
        .await
    }
}

/// Recipient regions, each once (one notification per mailbox).
fn regions_of<'a>(recipients: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut regions: Vec<&str> = recipients.collect();
    regions.sort_unstable();
    regions.dedup();
    regions
}

/// Deliveries as the columns of [`INSERT_DELIVERIES`], each queued at its submission's instant.
struct DeliveryRows<'a> {
    recipients: Vec<&'a str>,
    message_ids: Vec<&'a str>,
    documents: Vec<&'a [u8]>,
    created_at_ms: Vec<i64>,
}

impl<'a> DeliveryRows<'a> {
    fn of(batches: impl Iterator<Item = (i64, &'a [NewDelivery])>) -> DeliveryRows<'a> {
        let mut rows = DeliveryRows {
            recipients: Vec::new(),
            message_ids: Vec::new(),
            documents: Vec::new(),
            created_at_ms: Vec::new(),
        };
        for (at, deliveries) in batches {
            for d in deliveries {
                rows.recipients.push(&d.recipient);
                rows.message_ids.push(&d.message_id);
                rows.documents.push(&d.document);
                rows.created_at_ms.push(at);
            }
        }
        rows
    }

    /// The mailboxes these fill, each once.
    fn regions(&self) -> Vec<&'a str> {
        regions_of(self.recipients.iter().copied())
    }

    async fn insert(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        stmt: &Statement,
    ) -> Result<u64, tokio_postgres::Error> {
        execute_rows(
            tx,
            stmt,
            self.recipients.len(),
            &[&self.recipients, &self.message_ids, &self.documents, &self.created_at_ms],
        )
        .await
    }
}

/// Records queued for SAMR as the columns of [`INSERT_SAMR`], each at its submission's instant.
struct OutboxRows<'a> {
    kinds: Vec<&'static str>,
    ids: Vec<&'a str>,
    canonical: Vec<String>,
    created_at_ms: Vec<i64>,
}

impl<'a> OutboxRows<'a> {
    fn of(batches: impl Iterator<Item = (i64, &'a [StoredRecord])>) -> OutboxRows<'a> {
        let mut rows =
            OutboxRows { kinds: Vec::new(), ids: Vec::new(), canonical: Vec::new(), created_at_ms: Vec::new() };
        for (at, records) in batches {
            for r in records {
                rows.kinds.push(r.kind.name());
                rows.ids.push(&r.id);
                rows.canonical.push(codec::encode(&r.record));
                rows.created_at_ms.push(at);
            }
        }
        rows
    }

    async fn insert(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        stmt: &Statement,
    ) -> Result<u64, tokio_postgres::Error> {
        execute_rows(tx, stmt, self.ids.len(), &[&self.kinds, &self.ids, &self.canonical, &self.created_at_ms]).await
    }
}

/// Audit entries as the columns of [`INSERT_AUDIT`], chained after the tip read under the lock.
struct ChainRows {
    positions: Vec<i64>,
    at_ms: Vec<i64>,
    json: Vec<String>,
}

impl ChainRows {
    fn after(tip: Option<tokio_postgres::Row>, events: Vec<(i64, AuditEvent)>) -> Result<ChainRows, StoreError> {
        let mut prev = match tip {
            Some(r) => Some(super::audit::parse_entry(r.get(0))?),
            None => None,
        };
        let mut rows = ChainRows {
            positions: Vec::with_capacity(events.len()),
            at_ms: Vec::with_capacity(events.len()),
            json: Vec::new(),
        };
        for (at_ms, event) in events {
            let entry = super::audit::next_entry(prev.as_ref(), at_ms, event)?;
            rows.positions.push(entry.position as i64);
            rows.at_ms.push(at_ms);
            rows.json.push(super::audit::entry_json(&entry)?);
            prev = Some(entry);
        }
        Ok(rows)
    }

    async fn insert(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        stmt: &Statement,
    ) -> Result<u64, tokio_postgres::Error> {
        execute_rows(tx, stmt, self.positions.len(), &[&self.positions, &self.at_ms, &self.json]).await
    }
}

#[async_trait]
impl Intake for PostgresStore {
    async fn stored_submission(&self, sender: &str, message_id: &str) -> Result<Option<StoredSubmission>, StoreError> {
        let client = self.client("stored_submission").await?;
        let stmt = client
            .prepare_cached(
                "SELECT digest, reply, received_at_ms, audit_position, document_sm3 FROM messages
                 WHERE sender = $1 AND message_id = $2",
            )
            .await
            .map_err(pg("stored_submission"))?;
        let row = client.query_opt(&stmt, &[&sender, &message_id]).await.map_err(pg("stored_submission"))?;
        Ok(row.map(|r| StoredSubmission {
            digest: r.get(0),
            reply: r.get(1),
            received_at_ms: r.get(2),
            audit_position: r.get::<_, Option<i64>>(3).map(|p| p as u64),
            document_sm3: r.get(4),
        }))
    }

    async fn commit(&self, submission: Submission) -> Result<Committed, StoreError> {
        let Some(writers) = &self.writers else {
            let answer = self.commit_alone(&submission).await;
            self.observe_group(1);
            return answer;
        };
        let (answer, answered) = oneshot::channel();
        writers
            .send((submission, answer))
            .map_err(|_| StoreError::GroupCommit("the store's writers have stopped".into()))?;
        answered.await.map_err(|_| StoreError::GroupCommit("the submission was not committed".into()))?
    }

    fn observe_groups(&self, observer: super::GroupObserver) {
        if let Ok(mut o) = self.groups.lock() {
            *o = Some(observer);
        }
    }
}

#[async_trait]
impl Mailboxes for PostgresStore {
    async fn take(
        &self,
        recipient: &str,
        max: usize,
        now_ms: i64,
        visibility_ms: i64,
    ) -> Result<Vec<PendingDelivery>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let lease = Lease { recipient: recipient.to_string(), max, now_ms, visibility_ms };
        self.commit_change(self.leasers.as_ref(), lease).await
    }

    async fn in_flight(&self, recipient: &str, now_ms: i64) -> Result<usize, StoreError> {
        let n = self
            .count(
                "in_flight",
                "SELECT COUNT(*) FROM deliveries WHERE recipient = $1 AND NOT acked AND attempt > 0 AND visible_at_ms > $2",
                &[&recipient, &now_ms],
            )
            .await?;
        Ok(n.max(0) as usize)
    }

    async fn release(&self, delivery_ids: &[DeliveryId]) -> Result<(), StoreError> {
        let ids: Vec<i64> = delivery_ids.iter().map(|d| d.0).collect();
        let client = self.client("release").await?;
        client
            .execute("UPDATE deliveries SET visible_at_ms = 0 WHERE seq = ANY($1) AND NOT acked", &[&ids])
            .await
            .map_err(pg("release"))?;
        Ok(())
    }

    async fn ack(&self, recipient: &str, delivery_ids: &[DeliveryId]) -> Result<u32, StoreError> {
        let ack = Acknowledgement { recipient: recipient.to_string(), delivery_ids: delivery_ids.to_vec() };
        self.commit_change(self.ackers.as_ref(), ack).await
    }

    async fn depth(&self, recipient: &str) -> Result<u64, StoreError> {
        let n = self
            .count("depth", "SELECT COUNT(*) FROM deliveries WHERE recipient = $1 AND NOT acked", &[&recipient])
            .await?;
        Ok(n.max(0) as u64)
    }

    async fn oldest_unacknowledged_ms(&self, recipient: &str) -> Result<Option<i64>, StoreError> {
        let client = self.client("oldest_unacknowledged").await?;
        let row = client
            .query_opt(
                "SELECT created_at_ms FROM deliveries WHERE recipient = $1 AND NOT acked ORDER BY seq LIMIT 1",
                &[&recipient],
            )
            .await
            .map_err(pg("oldest_unacknowledged"))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn mailbox_signals(&self) -> Option<broadcast::Receiver<String>> {
        Some(self.signals.subscribe())
    }
}

#[async_trait]
impl WorkflowRecords for PostgresStore {
    async fn record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
        let client = self.client("record").await?;
        let stmt = client
            .prepare_cached("SELECT canonical FROM records WHERE kind = $1 AND record_id = $2")
            .await
            .map_err(pg("record"))?;
        let text: Option<String> =
            client.query_opt(&stmt, &[&kind.name(), &id]).await.map_err(pg("record"))?.map(|r| r.get(0));
        text.map(|t| codec::decode(kind, id, &t)).transpose()
    }

    async fn records_of_kind(&self, kind: RecordKind) -> Result<Vec<Record>, StoreError> {
        let client = self.client("records_of_kind").await?;
        let stmt = client
            .prepare_cached("SELECT record_id, canonical FROM records WHERE kind = $1 ORDER BY record_id COLLATE \"C\"")
            .await
            .map_err(pg("records_of_kind"))?;
        let rows = client.query(&stmt, &[&kind.name()]).await.map_err(pg("records_of_kind"))?;
        rows.iter().map(|r| codec::decode(kind, r.get(0), r.get(1))).collect()
    }

    async fn sampling_count(&self, plan_id: &str, region: &str, except: &str, at_most: u64) -> Result<u64, StoreError> {
        let n = self
            .count(
                "sampling_count",
                "SELECT COUNT(*) FROM (SELECT 1 FROM records WHERE kind = 'sampling' AND plan_id = $1
                 AND sampling_region = $2 AND record_id <> $3 LIMIT $4) t",
                &[&plan_id, &region, &except, &(at_most.min(i64::MAX as u64) as i64)],
            )
            .await?;
        Ok(n.max(0) as u64)
    }

    async fn samplings_of_product(
        &self,
        uscc: &str,
        brand: &str,
        model: &str,
    ) -> Result<Vec<SamplingRecord>, StoreError> {
        let texts = self.strings(
            "samplings_of_product",
            "SELECT canonical FROM records WHERE kind = 'sampling' AND producer_uscc = $1 AND brand = $2 AND model = $3",
            &[&uscc, &brand, &model],
        )
        .await?;
        texts.iter().map(|t| codec::sampling(t)).collect()
    }

    async fn plan_records(&self, plan_id: &str) -> Result<PlanRecords, StoreError> {
        let client = self.client("plan_records").await?;
        let stmt = client
            .prepare_cached(
                "WITH s AS (SELECT record_id, canonical FROM records WHERE kind = 'sampling' AND plan_id = $1)
                 SELECT 0, canonical FROM s
                 UNION ALL
                 SELECT 1, r.canonical FROM s JOIN records r ON r.kind = 'inspection' AND r.sample_id = s.record_id
                 UNION ALL
                 SELECT 2, r.canonical FROM s JOIN records r ON r.kind = 'case_transfer' AND r.sample_id = s.record_id",
            )
            .await
            .map_err(pg("plan_records"))?;
        let mut out = RawPlanRecords::default();
        for r in client.query(&stmt, &[&plan_id]).await.map_err(pg("plan_records"))? {
            let json: String = r.get(1);
            match r.get::<_, i32>(0) {
                0 => out.samplings.push(json),
                1 => out.inspections.push(json),
                _ => out.cases.push(json),
            }
        }
        codec::plan_records(out)
    }
}

#[async_trait]
impl CaseLedger for PostgresStore {
    async fn overdue_notified(&self, case_id: &str, status: i32) -> Result<bool, StoreError> {
        let n = self
            .count(
                "overdue_notified",
                "SELECT COUNT(*) FROM overdue_notices WHERE case_id = $1 AND status = $2",
                &[&case_id, &status],
            )
            .await?;
        Ok(n > 0)
    }

    async fn commit_overdue_notice(
        &self,
        case_id: &str,
        status: i32,
        deliveries: Vec<NewDelivery>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut client = self.client("commit_overdue_notice").await?;
        let tx = client.transaction().await.map_err(pg("commit_overdue_notice"))?;
        tx.batch_execute("SET LOCAL synchronous_commit TO on").await.map_err(pg("commit_overdue_notice"))?;
        let inserted = tx
            .execute(
                "INSERT INTO overdue_notices (case_id, status, sent_at_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&case_id, &status, &now_ms],
            )
            .await
            .map_err(pg("commit_overdue_notice"))?;
        if inserted == 0 {
            tx.rollback().await.map_err(pg("commit_overdue_notice"))?;
            return Ok(false);
        }
        insert_deliveries(&tx, &deliveries, now_ms).await?;
        self.notify(&tx, &deliveries).await?;
        self.append_audit(&tx, now_ms, vec![super::audit::overdue_event(case_id, status)]).await?;
        tx.commit().await.map_err(pg("commit_overdue_notice"))?;
        Ok(true)
    }

    async fn commit_case_revision(
        &self,
        expected: &DisposalCase,
        revised: &DisposalCase,
        deliveries: Vec<NewDelivery>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (case_id, expected, revised) =
            (expected.case_id.as_str(), codec::encode_case(expected), codec::encode_case(revised));
        let mut client = self.client("commit_case_revision").await?;
        let tx = client.transaction().await.map_err(pg("commit_case_revision"))?;
        tx.batch_execute("SET LOCAL synchronous_commit TO on").await.map_err(pg("commit_case_revision"))?;
        let updated = tx
            .execute(
                "UPDATE records SET canonical = $1, stored_at_ms = $2
                 WHERE kind = 'case_transfer' AND record_id = $3 AND canonical = $4",
                &[&revised, &now_ms, &case_id, &expected],
            )
            .await
            .map_err(pg("commit_case_revision"))?;
        if updated == 0 {
            tx.rollback().await.map_err(pg("commit_case_revision"))?;
            return Ok(false);
        }
        insert_deliveries(&tx, &deliveries, now_ms).await?;
        self.notify(&tx, &deliveries).await?;
        self.append_audit(
            &tx,
            now_ms,
            vec![AuditEvent::CaseEvent { case_id: case_id.to_string(), event: "due date recomputed".into() }],
        )
        .await?;
        tx.commit().await.map_err(pg("commit_case_revision"))?;
        Ok(true)
    }
}

#[async_trait]
impl SamrOutbox for PostgresStore {
    async fn samr_outbox(&self) -> Result<Vec<OutboxRow>, StoreError> {
        let client = self.client("samr_outbox").await?;
        let rows = client
            .query(
                "SELECT seq, kind, record_id, canonical, created_at_ms FROM samr_outbox WHERE package IS NULL ORDER BY seq",
                &[],
            )
            .await
            .map_err(pg("samr_outbox"))?;
        rows.into_iter()
            .map(|r| {
                let seq: i64 = r.get(0);
                let kind: String = r.get(1);
                let kind = RecordKind::from_name(&kind).ok_or_else(|| StoreError::Corrupt {
                    what: format!("samr_outbox.kind of row {seq}"),
                    detail: kind,
                })?;
                let record_id: String = r.get(2);
                let record = codec::decode(kind, &record_id, r.get(3))?;
                Ok(OutboxRow { seq, kind, record_id, record, created_at_ms: r.get(4) })
            })
            .collect()
    }

    async fn samr_create_package(
        &self,
        day: &str,
        package_type: &str,
        rows: &[i64],
        now_ms: i64,
        build: PackageBuilder,
    ) -> Result<Result<String, PackageNotFormed>, StoreError> {
        let mut client = self.client("samr_create_package").await?;
        let tx = client.transaction().await.map_err(pg("samr_create_package"))?;
        tx.batch_execute("SET LOCAL synchronous_commit TO on").await.map_err(pg("samr_create_package"))?;
        // Numbering is serialised across replicas whoever calls: numbers are never reused and
        // leave no gap.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&self.scoped(NUMBERING_KEY)])
            .await
            .map_err(pg("samr_create_package"))?;
        let last: i32 = tx
            .query_one("SELECT COALESCE(MAX(sequence), 0) FROM samr_packages WHERE day = $1", &[&day])
            .await
            .map_err(pg("samr_create_package"))?
            .get(0);
        let sequence = (last.max(0) + 1) as u32;
        let (number, bytes) = match build(sequence) {
            Ok(b) => b,
            Err(e) => {
                tx.rollback().await.map_err(pg("samr_create_package"))?;
                return Ok(Err(e.into()));
            }
        };
        tx.execute(
            "INSERT INTO samr_packages (number, day, sequence, package_type, bytes, state, created_at_ms)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6)",
            &[&number, &day, &(sequence as i32), &package_type, &bytes, &now_ms],
        )
        .await
        .map_err(pg("samr_create_package"))?;
        let marked = tx
            .execute("UPDATE samr_outbox SET package = $1 WHERE seq = ANY($2) AND package IS NULL", &[&number, &rows])
            .await
            .map_err(pg("samr_create_package"))?;
        if marked as usize != rows.len() {
            // Another replica packaged some of these rows meanwhile: form the package again.
            tx.rollback().await.map_err(pg("samr_create_package"))?;
            return Ok(Err(PackageNotFormed::RowsTaken { taken: rows.len() - marked as usize, of: rows.len() }));
        }
        self.append_audit(
            &tx,
            now_ms,
            vec![AuditEvent::SamrPackage { package_id: number.clone(), action: SamrPackageAction::Created }],
        )
        .await?;
        tx.commit().await.map_err(pg("samr_create_package"))?;
        Ok(Ok(number))
    }

    async fn samr_due(&self, now_ms: i64) -> Result<Vec<SamrPackage>, StoreError> {
        self.packages("WHERE state = 'pending' AND next_attempt_ms <= $1 ORDER BY day, sequence", &[&now_ms]).await
    }

    async fn samr_parked(&self) -> Result<Vec<SamrPackage>, StoreError> {
        self.packages("WHERE state = 'parked' ORDER BY day, sequence", &[]).await
    }

    async fn samr_packages(&self) -> Result<Vec<SamrPackage>, StoreError> {
        self.packages("ORDER BY day, sequence", &[]).await
    }

    async fn samr_record_attempt(
        &self,
        number: &str,
        state: PackageState,
        attempts: u32,
        next_attempt_ms: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        let mut client = self.client("samr_record_attempt").await?;
        let tx = client.transaction().await.map_err(pg("samr_record_attempt"))?;
        tx.execute(
            "UPDATE samr_packages SET state = $2, attempts = $3, next_attempt_ms = $4, reason = $5 WHERE number = $1",
            &[&number, &state.as_str(), &(attempts.min(i32::MAX as u32) as i32), &next_attempt_ms, &reason],
        )
        .await
        .map_err(pg("samr_record_attempt"))?;
        self.append_audit(&tx, super::audit::wall_clock_ms(), super::audit::attempt_events(number, state)).await?;
        tx.commit().await.map_err(pg("samr_record_attempt"))?;
        Ok(())
    }

    async fn samr_resend(&self, number: &str, operator: &str) -> Result<bool, StoreError> {
        let mut client = self.client("samr_resend").await?;
        let tx = client.transaction().await.map_err(pg("samr_resend"))?;
        let n = tx
            .execute(
                "UPDATE samr_packages SET state = 'pending', attempts = 0, next_attempt_ms = 0 WHERE number = $1 AND state = 'parked'",
                &[&number],
            )
            .await
            .map_err(pg("samr_resend"))?;
        if n == 1 {
            self.append_audit(&tx, super::audit::wall_clock_ms(), super::audit::resend_events(number, operator))
                .await?;
        }
        tx.commit().await.map_err(pg("samr_resend"))?;
        Ok(n == 1)
    }
}

/// A session advisory lock held on a connection of its own.
struct AdvisoryLease {
    client: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for AdvisoryLease {
    fn drop(&mut self) {
        // Closing the connection ends the session and so releases the lock.
        self.connection.abort();
    }
}

#[async_trait]
impl LeaderLease for AdvisoryLease {
    async fn is_held(&self) -> bool {
        !self.client.is_closed() && self.client.simple_query("SELECT 1").await.is_ok()
    }
}

#[async_trait]
impl Leadership for PostgresStore {
    async fn try_lead(&self, role: LeaderRole) -> Result<Option<Box<dyn LeaderLease>>, StoreError> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(pg("try_lead"))?;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                warn!(error = %e, "leader connection ended");
            }
        });
        let lease = AdvisoryLease { client, connection };
        let held: bool = lease
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&self.scoped(role.lock_key())])
            .await
            .map_err(pg("try_lead"))?
            .get(0);
        Ok(held.then(|| Box::new(lease) as Box<dyn LeaderLease>))
    }
}

#[async_trait]
impl StoreCopy for PostgresStore {
    async fn export_rows(&self, table: &'static str, offset: u64, limit: usize) -> Result<Vec<Row>, StoreError> {
        let table = copy::table_named(table)?;
        let client = self.client("export_rows").await?;
        let (limit, offset) = (limit as i64, offset.min(i64::MAX as u64) as i64);
        // Text keys in bytewise order, as SQLite compares them, so both export alike.
        let order = table
            .key
            .iter()
            .map(|k| match table.position(k).map(|i| table.columns[i].kind) {
                Some(ColumnType::Text | ColumnType::OptText) => format!("{k} COLLATE \"C\""),
                _ => k.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT {} FROM {} ORDER BY {order} LIMIT $1 OFFSET $2", table.column_list(), table.name);
        let found = client.query(sql.as_str(), &[&limit, &offset]).await.map_err(pg("export_rows"))?;
        found
            .iter()
            .map(|r| {
                let values = table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| copied_value(r, i, c.kind))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(pg("export_rows"))?;
                Ok(Row { table, values })
            })
            .collect()
    }

    async fn import_rows(&self, rows: Vec<Row>) -> Result<(), StoreError> {
        let mut client = self.client("import_rows").await?;
        let tx = client.transaction().await.map_err(pg("import_rows"))?;
        // Rows come table by table: each table's statement is prepared once, not per row.
        let mut insert: Option<(&'static str, tokio_postgres::Statement)> = None;
        for row in &rows {
            let table = row.table;
            // The lookup key columns are PostgreSQL's own, derived from the canonical record.
            let keys = (table.name == "records")
                .then(|| LookupKeys::from_canonical(row.get("canonical").and_then(Value::as_text).unwrap_or_default()));
            let statement = match &insert {
                Some((name, statement)) if *name == table.name => statement.clone(),
                _ => {
                    let extra: &[&str] = if keys.is_some() { &LOOKUP_KEY_COLUMNS } else { &[] };
                    let sql = table.insert_sql(extra, |n| format!("${n}"));
                    let statement = tx.prepare(&sql).await.map_err(pg("import_rows"))?;
                    insert = Some((table.name, statement.clone()));
                    statement
                }
            };
            let mut values = Vec::with_capacity(row.values.len() + LOOKUP_KEY_COLUMNS.len());
            for (c, v) in table.columns.iter().zip(&row.values) {
                values.push(copied_param(c, v)?);
            }
            if let Some(k) = keys {
                for key in [k.plan_id, k.sampling_region, k.producer_uscc, k.brand, k.model, k.sample_id] {
                    values.push(Box::new(key));
                }
            }
            let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect();
            tx.execute(&statement, &params).await.map_err(pg("import_rows"))?;
        }
        tx.commit().await.map_err(pg("import_rows"))
    }

    async fn count_rows(&self, table: &'static str) -> Result<u64, StoreError> {
        copy::table_named(table)?;
        let n = self.count("count_rows", &format!("SELECT COUNT(*) FROM {table}"), &[]).await?;
        Ok(n.max(0) as u64)
    }

    async fn after_import(&self) -> Result<(), StoreError> {
        let client = self.client("after_import").await?;
        client
            .batch_execute(
                "SELECT setval(pg_get_serial_sequence('deliveries', 'seq'), GREATEST((SELECT MAX(seq) FROM deliveries), 1));
                 SELECT setval(pg_get_serial_sequence('samr_outbox', 'seq'), GREATEST((SELECT MAX(seq) FROM samr_outbox), 1));",
            )
            .await
            .map_err(pg("after_import"))
    }
}

#[async_trait]
impl AuditLog for PostgresStore {
    async fn audit_append(&self, events: Vec<AuditEvent>, at_ms: i64) -> Result<(), StoreError> {
        let mut client = self.client("audit_append").await?;
        let tx = client.transaction().await.map_err(pg("audit_append"))?;
        self.append_audit(&tx, at_ms, events).await?;
        tx.commit().await.map_err(pg("audit_append"))
    }

    async fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let json = self
            .strings(
                "audit_entries",
                "SELECT entry FROM audit_log WHERE position >= $1 ORDER BY position LIMIT $2",
                &[&(from.min(i64::MAX as u64) as i64), &(limit as i64)],
            )
            .await?;
        json.iter().map(|j| super::audit::parse_entry(j)).collect()
    }

    async fn audit_last_entry(&self) -> Result<Option<AuditEntry>, StoreError> {
        let json = self.strings("audit_last_entry", AUDIT_TIP, &[]).await?;
        json.first().map(|j| super::audit::parse_entry(j)).transpose()
    }

    async fn audit_heads(&self) -> Result<Vec<SignedHead>, StoreError> {
        let json = self.strings("audit_heads", "SELECT head FROM audit_heads ORDER BY position", &[]).await?;
        json.iter().map(|j| super::audit::parse_head(j)).collect()
    }

    async fn audit_last_head(&self) -> Result<Option<SignedHead>, StoreError> {
        let sql = "SELECT head FROM audit_heads ORDER BY position DESC LIMIT 1";
        let json = self.strings("audit_last_head", sql, &[]).await?;
        json.first().map(|j| super::audit::parse_head(j)).transpose()
    }

    async fn audit_store_head(&self, head: SignedHead) -> Result<(), StoreError> {
        let client = self.client("audit_store_head").await?;
        client
            .execute(
                "INSERT INTO audit_heads (position, head) VALUES ($1, $2) ON CONFLICT (position) DO UPDATE SET head = excluded.head",
                &[&(head.head.position as i64), &super::audit::head_json(&head)?],
            )
            .await
            .map_err(pg("audit_store_head"))?;
        Ok(())
    }

    async fn document(&self, sender: &str, message_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client("document").await?;
        let row = client
            .query_opt("SELECT document FROM messages WHERE sender = $1 AND message_id = $2", &[&sender, &message_id])
            .await
            .map_err(pg("document"))?;
        Ok(row.map(|r| r.get(0)))
    }
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }
}

/// The `records` columns PostgreSQL derives from the canonical record ([`LookupKeys`]), in the
/// order `import_rows` binds them.
const LOOKUP_KEY_COLUMNS: [&str; 6] = ["plan_id", "sampling_region", "producer_uscc", "brand", "model", "sample_id"];

/// Column `i` of a PostgreSQL row read as a copied column of type `kind`.
fn copied_value(r: &tokio_postgres::Row, i: usize, kind: ColumnType) -> Result<Value, tokio_postgres::Error> {
    let opt = |v: Option<Value>| v.unwrap_or(Value::Null);
    Ok(match kind {
        ColumnType::BigInt => Value::Int(r.try_get::<_, i64>(i)?),
        ColumnType::Int => Value::Int(r.try_get::<_, i32>(i)?.into()),
        ColumnType::OptBigInt => opt(r.try_get::<_, Option<i64>>(i)?.map(Value::Int)),
        ColumnType::Text => Value::Text(r.try_get(i)?),
        ColumnType::OptText => opt(r.try_get::<_, Option<String>>(i)?.map(Value::Text)),
        ColumnType::Bytes => Value::Bytes(r.try_get(i)?),
        ColumnType::Bool => Value::Bool(r.try_get(i)?),
    })
}

/// A copied value as a parameter for column `c`, typed as PostgreSQL's column is.
fn copied_param(c: &Column, v: &Value) -> Result<Box<dyn ToSql + Sync + Send>, StoreError> {
    let mismatch = || StoreError::Config(format!("a copied row's {} does not fit the column ({:?})", c.name, c.kind));
    Ok(match (c.kind, v) {
        (ColumnType::BigInt | ColumnType::OptBigInt, Value::Int(n)) => Box::new(*n),
        (ColumnType::Int, Value::Int(n)) => Box::new(i32::try_from(*n).map_err(|_| mismatch())?),
        (ColumnType::OptBigInt, Value::Null) => Box::new(None::<i64>),
        (ColumnType::Text | ColumnType::OptText, Value::Text(t)) => Box::new(t.clone()),
        (ColumnType::OptText, Value::Null) => Box::new(None::<String>),
        (ColumnType::Bytes, Value::Bytes(b)) => Box::new(b.clone()),
        (ColumnType::Bool, Value::Bool(b)) => Box::new(*b),
        _ => return Err(mismatch()),
    })
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn a_password_never_reaches_the_log() {
        assert_eq!(redacted("postgres://yrdx:s3cret@db:5432/yrdx"), "postgres://yrdx:***@db:5432/yrdx");
        assert_eq!(redacted("postgres://yrdx@db/yrdx"), "postgres://yrdx@db/yrdx");
    }
}
