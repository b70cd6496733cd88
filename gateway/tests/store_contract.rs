//! The store contract: every backend behind `yrdx_gateway::store::Store` must pass the same tests.
//! Each `contract!` case runs on SQLite (a fresh file) and on PostgreSQL (a fresh schema of the
//! database named by `YRDX_TEST_POSTGRES`, default `postgres://root@127.0.0.1:5432/test`). When
//! PostgreSQL cannot be reached the PostgreSQL half prints `SKIPPED` with the reason and fails
//! nothing — unless `YRDX_REQUIRE_POSTGRES=1`, when it fails (CI sets it: the machine has one).
//!
//! "Replicas" are two stores opened on the same database: what two gateway processes see.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use yrdx_adapters::{EncodeError, Record, RecordKind};
use yrdx_gateway::store::{
    self, Committed, DeliveryId, LeaderRole, LookupKeys, NewDelivery, PackageNotFormed, PackageState, PostgresOptions,
    PostgresStore, SqliteStore, Store, StoreLocation, StoredRecord, StoredSubmission, Submission,
};
use yrdx_proto::v1::DisposalCase;

/// Where a test's store lives, so that it can be opened again (a restart, a second replica).
enum Place {
    Sqlite(tempdir::Dir),
    Postgres { url: String, schema: String },
}

mod tempdir {
    /// A directory removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let p = std::env::temp_dir().join(format!("yrdx-contract-{}-{tag}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn postgres_base() -> String {
    std::env::var("YRDX_TEST_POSTGRES").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

fn options() -> PostgresOptions {
    PostgresOptions { pool_size: 4, ..PostgresOptions::default() }
}

impl Place {
    async fn sqlite(tag: &str) -> Place {
        Place::Sqlite(tempdir::Dir::new(tag))
    }

    /// A fresh schema, or the reason PostgreSQL is not there.
    async fn postgres(tag: &str) -> Result<Place, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let base = postgres_base();
        let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("cannot connect to {base}: {e}"))?;
        tokio::spawn(connection);
        let schema = format!(
            "yrdx_ct_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            tag.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>()
        );
        client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.map_err(|e| e.to_string())?;
        let sep = if base.contains('?') { '&' } else { '?' };
        Ok(Place::Postgres { url: format!("{base}{sep}options=-csearch_path%3D{schema}"), schema })
    }

    async fn open(&self) -> Arc<dyn Store> {
        match self {
            Place::Sqlite(dir) => {
                store::open(&StoreLocation::Sqlite(dir.0.join("s.sqlite")), &options()).await.expect("sqlite opens")
            }
            Place::Postgres { url, .. } => {
                store::open(&StoreLocation::Postgres(url.clone()), &options()).await.expect("postgres opens")
            }
        }
    }

    fn is_postgres(&self) -> bool {
        matches!(self, Place::Postgres { .. })
    }

    async fn clean(self) {
        if let Place::Postgres { schema, .. } = &self {
            if let Ok((client, connection)) = tokio_postgres::connect(&postgres_base(), tokio_postgres::NoTls).await {
                tokio::spawn(connection);
                let _ = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await;
            }
        }
    }
}

/// Runs a contract case on both backends.
macro_rules! contract {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let place = super::Place::sqlite(stringify!($name)).await;
                super::$name(&place).await;
                place.clean().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match super::Place::postgres(stringify!($name)).await {
                    Ok(place) => {
                        super::$name(&place).await;
                        place.clean().await;
                    }
                    Err(why) => {
                        if std::env::var("YRDX_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                            panic!("PostgreSQL is required (YRDX_REQUIRE_POSTGRES=1) but absent: {why}");
                        }
                        eprintln!("SKIPPED store contract {} on PostgreSQL: {why}", stringify!($name));
                    }
                }
            }
        }
    };
}

fn rec(kind: RecordKind, id: &str, canonical: &str) -> StoredRecord {
    let record = yrdx_adapters::canonical::record_from_json(kind, canonical).unwrap();
    StoredRecord { kind, id: id.into(), keys: LookupKeys::of(&record), record }
}

fn submission(id: &str, recipients: &[&str]) -> Submission {
    Submission {
        sender: "320000".into(),
        message_id: id.into(),
        digest: format!("d-{id}"),
        document: b"doc".to_vec(),
        reply: b"reply".to_vec(),
        records: vec![rec(RecordKind::Sampling, &format!("S-{id}"), "{}")],
        deliveries: recipients
            .iter()
            .map(|r| NewDelivery { recipient: r.to_string(), message_id: id.into(), document: id.as_bytes().to_vec() })
            .collect(),
        samr: vec![],
        received_at_ms: 1,
    }
}

contract!(commit_is_idempotent_by_sender_and_message_id);
async fn commit_is_idempotent_by_sender_and_message_id(place: &Place) {
    let s = place.open().await;
    let first = s.commit(submission("M1", &["310000"])).await.unwrap();
    let Committed::New { audit_position, document_sm3 } = first else { panic!("not new: {first:?}") };
    let stored = s.stored_submission("320000", "M1").await.unwrap().unwrap();
    assert_eq!(
        (Some(audit_position), document_sm3),
        (stored.audit_position, stored.document_sm3),
        "a new commit states what its receipt will"
    );
    let again = s.commit(submission("M1", &["310000"])).await.unwrap();
    assert_eq!(again, Committed::Existing { digest: "d-M1".into(), reply: b"reply".to_vec() });
    assert_eq!(s.depth("310000").await.unwrap(), 1, "a duplicate queues nothing");
    assert_eq!(s.record(RecordKind::Sampling, "S-M1").await.unwrap(), Some(Record::Sampling(Default::default())));
    assert_eq!(
        s.stored_submission("320000", "M1").await.unwrap(),
        Some(StoredSubmission {
            digest: "d-M1".into(),
            reply: b"reply".to_vec(),
            received_at_ms: 1,
            audit_position: Some(0),
            document_sm3: yrdx_evidence::Sm3Digest::of(b"doc").to_hex(),
        })
    );
    assert_eq!(s.stored_submission("330000", "M1").await.unwrap(), None, "the key is sender and message id");
}

contract!(concurrent_commits_are_each_answered_once);
async fn concurrent_commits_are_each_answered_once(place: &Place) {
    // Two "replicas" (two stores on one database), four callers each, the same 30 keys.
    let (a, b) = (place.open().await, place.open().await);
    let mut tasks = Vec::new();
    for n in 0..8 {
        let s = if n % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut new = 0;
            for i in 0..30 {
                if matches!(s.commit(submission(&format!("G{i}"), &["310000"])).await.unwrap(), Committed::New { .. }) {
                    new += 1;
                }
            }
            new
        }));
    }
    let mut new = 0;
    for t in tasks {
        new += t.await.unwrap();
    }
    assert_eq!(new, 30, "every key New exactly once");
    assert_eq!(a.depth("310000").await.unwrap(), 30);
    // The replicas' groups raced for the chain's lock: one chain still, each entry read its
    // predecessor after the lock was held.
    assert_chain_unforked(&a.audit_entries(0, 1000).await.unwrap(), 30);
}

/// Positions 0..n, each entry linked to the one before and hashing to itself.
fn assert_chain_unforked(entries: &[yrdx_evidence::AuditEntry], n: usize) {
    assert_eq!(entries.len(), n);
    let mut prev = yrdx_evidence::Sm3Digest::GENESIS;
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.position, i as u64, "gap-free");
        assert_eq!(e.prev_hash, prev, "entry {i} links to the one before");
        assert_eq!(e.hash, e.computed_hash(), "entry {i} hashes to itself");
        prev = e.hash;
    }
}

/// The largest group the store commits from now on.
fn largest_group(s: &dyn Store) -> Arc<AtomicU32> {
    let largest = Arc::new(AtomicU32::new(0));
    let seen = largest.clone();
    s.observe_groups(Arc::new(move |n| {
        seen.fetch_max(n as u32, Ordering::Relaxed);
    }));
    largest
}

/// Commits every submission at once (one task each, released together), answers in order.
async fn commit_at_once(s: &Arc<dyn Store>, burst: Vec<Submission>) -> Vec<Committed> {
    let start = Arc::new(tokio::sync::Barrier::new(burst.len()));
    let mut tasks = Vec::new();
    for sub in burst {
        let (s, start) = (s.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            s.commit(sub).await.unwrap()
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

contract!(a_burst_that_shares_a_record_is_still_committed_in_groups);
async fn a_burst_that_shares_a_record_is_still_committed_in_groups(place: &Place) {
    // 48 submissions at once, each a new key carrying a version of the same record: a group
    // writes that record once (its last version), so the groups commit whole instead of
    // failing and being committed again one by one.
    let s = place.open().await;
    let largest = largest_group(&*s);
    let burst = (0..48).map(|n| {
        let mut sub = submission(&format!("V{n}"), &["310000"]);
        sub.records = vec![rec(RecordKind::Sampling, "S-SHARED", &format!(r#"{{"planId":"P-{n}"}}"#))];
        sub
    });
    for committed in commit_at_once(&s, burst.collect()).await {
        assert!(matches!(committed, Committed::New { .. }));
    }
    assert!(largest.load(Ordering::Relaxed) > 1, "the burst was committed in groups");
    let stored = s.record(RecordKind::Sampling, "S-SHARED").await.unwrap().expect("the record is stored");
    let Record::Sampling(sampling) = stored else { panic!("a sampling record: {stored:?}") };
    assert!(sampling.plan_id.starts_with("P-"), "one of the versions: {}", sampling.plan_id);
    assert_eq!(s.depth("310000").await.unwrap(), 48);
    assert_chain_unforked(&s.audit_entries(0, 1000).await.unwrap(), 48);
}

contract!(a_burst_is_committed_in_groups_each_answered_once);
async fn a_burst_is_committed_in_groups_each_answered_once(place: &Place) {
    // 64 callers at once, 32 keys each sent twice (two different bodies of the same key would be
    // a conflict: these are the same submission resent), one store: commits are grouped, and the
    // group still answers each key New once, the other Existing with the first's reply.
    let s = place.open().await;
    let largest = largest_group(&*s);
    let burst = (0..64).map(|n| submission(&format!("B{}", n % 32), &["310000"])).collect();
    let mut new = 0;
    for committed in commit_at_once(&s, burst).await {
        match committed {
            Committed::New { .. } => new += 1,
            Committed::Existing { digest, reply } => {
                assert!(digest.starts_with("d-B"), "{digest}");
                assert_eq!(reply, b"reply".to_vec());
            }
        }
    }
    assert_eq!(new, 32, "every key New exactly once");
    assert_eq!(s.depth("310000").await.unwrap(), 32, "a resent key queues nothing");
    assert!(largest.load(Ordering::Relaxed) > 1, "the burst was committed in groups");
    // One audit entry per stored submission, the chain unbroken, each submission knowing its own.
    let entries = s.audit_entries(0, 1000).await.unwrap();
    assert_chain_unforked(&entries, 32);
    for i in 0..32 {
        let stored = s.stored_submission("320000", &format!("B{i}")).await.unwrap().unwrap();
        let position = stored.audit_position.unwrap();
        match &entries[position as usize].event {
            yrdx_evidence::AuditEvent::SubmissionAccepted { message_id, .. } => {
                assert_eq!(message_id, &format!("B{i}"))
            }
            other => panic!("entry {position} is {other:?}"),
        }
    }
}

contract!(mailbox_order_visibility_and_ack);
async fn mailbox_order_visibility_and_ack(place: &Place) {
    let s = place.open().await;
    for id in ["A", "B", "C"] {
        s.commit(submission(id, &["310000", "330000"])).await.unwrap();
    }
    let first = s.take("310000", 2, 1000, 60_000).await.unwrap();
    assert_eq!(first.iter().map(|d| d.message_id.as_str()).collect::<Vec<_>>(), ["A", "B"]);
    assert!(first.iter().all(|d| d.attempt == 1));
    assert!(first.iter().all(|d| d.queued_at_ms == 1));
    assert_eq!(s.in_flight("310000", 1000).await.unwrap(), 2);
    assert_eq!(s.take("310000", 5, 1000, 60_000).await.unwrap().len(), 1, "only C is visible");
    // Not acknowledged within the visibility timeout: sent again with attempt 2.
    let again = s.take("310000", 5, 61_001, 60_000).await.unwrap();
    assert_eq!(
        again.iter().map(|d| (d.message_id.as_str(), d.attempt)).collect::<Vec<_>>(),
        [("A", 2), ("B", 2), ("C", 2)]
    );
    // Acks only count for the caller's own mailbox.
    assert_eq!(s.ack("330000", &[again[0].delivery_id]).await.unwrap(), 0);
    assert_eq!(s.ack("310000", &[again[0].delivery_id, DeliveryId(i64::MAX)]).await.unwrap(), 1);
    assert_eq!(s.ack("310000", &[again[0].delivery_id]).await.unwrap(), 0, "acknowledged once");
    assert_eq!(s.depth("310000").await.unwrap(), 2);
    s.release(&[again[1].delivery_id]).await.unwrap();
    assert_eq!(s.take("310000", 5, 61_002, 60_000).await.unwrap()[0].message_id, "B");
    assert_eq!(s.depth("330000").await.unwrap(), 3, "other mailboxes untouched");
    assert_eq!(s.oldest_unacknowledged_ms("330000").await.unwrap(), Some(1));
    assert_eq!(s.oldest_unacknowledged_ms("440000").await.unwrap(), None);
}

contract!(an_acknowledged_delivery_is_never_handed_out_again);
async fn an_acknowledged_delivery_is_never_handed_out_again(place: &Place) {
    let s = place.open().await;
    s.commit(submission("ACK-1", &["310000"])).await.unwrap();
    let d = s.take("310000", 10, 1000, 1000).await.unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(s.ack("310000", &[d[0].delivery_id]).await.unwrap(), 1);
    // Long past the visibility timeout, released, on another replica: never again.
    s.release(&[d[0].delivery_id]).await.unwrap();
    let other = place.open().await;
    assert!(other.take("310000", 10, 1_000_000, 1000).await.unwrap().is_empty());
    assert!(s.take("310000", 10, 1_000_000, 1000).await.unwrap().is_empty());
}

contract!(concurrent_acks_are_each_answered_as_alone_and_audited_once);
async fn concurrent_acks_are_each_answered_as_alone_and_audited_once(place: &Place) {
    let (a, b) = (place.open().await, place.open().await);
    for i in 0..10 {
        a.commit(submission(&format!("CA{i}"), &["310000", "330000"])).await.unwrap();
    }
    let shanghai = a.take("310000", 10, 1000, 60_000).await.unwrap();
    let zhejiang = a.take("330000", 10, 1000, 60_000).await.unwrap();
    let before = a.audit_entries(0, 10_000).await.unwrap().len();
    let ids = |d: &[yrdx_gateway::store::PendingDelivery]| d.iter().map(|d| d.delivery_id).collect::<Vec<_>>();
    let (sh, zj) = (ids(&shanghai), ids(&zhejiang));
    // At once, on two replicas: each Shanghai delivery acknowledged twice (one Ack on each
    // replica), Zhejiang's in halves, and Ack calls naming the other mailbox's deliveries.
    let calls: Vec<(Arc<dyn Store>, &str, Vec<DeliveryId>)> = vec![
        (a.clone(), "310000", sh.clone()),
        (b.clone(), "310000", sh.clone()),
        (a.clone(), "330000", zj[..5].to_vec()),
        (b.clone(), "330000", zj[5..].to_vec()),
        (a.clone(), "330000", sh.clone()),
        (b.clone(), "310000", zj.clone()),
    ];
    let answers = futures_util::future::join_all(
        calls.iter().map(|(store, mailbox, ids)| async move { store.ack(mailbox, ids).await.unwrap() }),
    )
    .await;
    assert_eq!(answers[0] + answers[1], 10, "each Shanghai delivery counted once: {answers:?}");
    assert_eq!((answers[2], answers[3]), (5, 5));
    assert_eq!((answers[4], answers[5]), (0, 0), "another mailbox's deliveries are not acknowledged");
    assert_eq!((a.depth("310000").await.unwrap(), a.depth("330000").await.unwrap()), (0, 0));
    let entries = a.audit_entries(before as u64, 10_000).await.unwrap();
    let mut acked: Vec<(String, String)> = entries
        .iter()
        .filter_map(|e| match &e.event {
            yrdx_evidence::AuditEvent::DeliveryAcknowledged { delivery_id, recipient } => {
                Some((delivery_id.clone(), recipient.clone()))
            }
            _ => None,
        })
        .collect();
    acked.sort();
    let mut expected: Vec<(String, String)> = sh
        .iter()
        .map(|d| (d.0.to_string(), "310000".to_string()))
        .chain(zj.iter().map(|d| (d.0.to_string(), "330000".to_string())))
        .collect();
    expected.sort();
    assert_eq!(acked, expected, "one entry per delivery acknowledged");
    assert_chain_unforked(&a.audit_entries(0, 10_000).await.unwrap(), before + 20);
}

contract!(leases_are_exclusive_between_replicas);
async fn leases_are_exclusive_between_replicas(place: &Place) {
    let (a, b) = (place.open().await, place.open().await);
    for i in 0..40 {
        a.commit(submission(&format!("L{i}"), &["310000"])).await.unwrap();
    }
    // Both replicas take from one mailbox at once: every delivery goes to exactly one of them.
    let (x, y) = tokio::join!(
        async {
            let mut got = Vec::new();
            for _ in 0..10 {
                got.extend(a.take("310000", 3, 1000, 60_000).await.unwrap());
            }
            got
        },
        async {
            let mut got = Vec::new();
            for _ in 0..10 {
                got.extend(b.take("310000", 3, 1000, 60_000).await.unwrap());
            }
            got
        }
    );
    let mut ids: Vec<i64> = x.iter().chain(&y).map(|d| d.delivery_id.0).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "no delivery handed out twice");
    assert_eq!(n, 40, "every delivery handed out once");
    assert!(x.iter().chain(&y).all(|d| d.attempt == 1));
}

contract!(concurrent_leases_on_one_replica_are_each_answered_as_alone);
async fn concurrent_leases_on_one_replica_are_each_answered_as_alone(place: &Place) {
    let s = place.open().await;
    for i in 0..30 {
        s.commit(submission(&format!("CL{i}"), &["310000", "330000"])).await.unwrap();
    }
    let before = s.audit_entries(0, 10_000).await.unwrap().len();
    // Twenty leases at once, of two mailboxes, each of up to 4 deliveries.
    let taken = futures_util::future::join_all((0..20).map(|i| {
        let s = s.clone();
        async move {
            let mailbox = if i % 2 == 0 { "310000" } else { "330000" };
            (mailbox, s.take(mailbox, 4, 1000, 60_000).await.unwrap())
        }
    }))
    .await;
    for mailbox in ["310000", "330000"] {
        let mut ids: Vec<i64> =
            taken.iter().filter(|(m, _)| *m == mailbox).flat_map(|(_, d)| d.iter().map(|d| d.delivery_id.0)).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!((ids.len(), n), (30, 30), "{mailbox}: every delivery handed out once");
    }
    for (_, deliveries) in &taken {
        assert!(deliveries.len() <= 4);
        assert!(deliveries.windows(2).all(|w| w[0].delivery_id < w[1].delivery_id), "each lease oldest first");
        assert!(deliveries.iter().all(|d| d.attempt == 1 && d.document == d.message_id.as_bytes()));
    }
    let entries = s.audit_entries(0, 10_000).await.unwrap();
    assert_chain_unforked(&entries, before + 60);
    assert!(entries[before..].iter().all(|e| e.event.kind() == "delivery_handed_out"));
}

fn builder(tag: &'static str) -> store::PackageBuilder {
    Box::new(move |sequence| {
        Ok((format!("SJB-310000-20261201-{sequence:04}"), format!("{tag}{sequence}").into_bytes()))
    })
}

contract!(package_numbers_are_gap_free_and_never_reused);
async fn package_numbers_are_gap_free_and_never_reused(place: &Place) {
    let s = place.open().await;
    let mut sub = submission("P-1", &[]);
    sub.samr = (0..6).map(|i| rec(RecordKind::RiskSignal, &format!("FX-{i}"), "{}")).collect();
    s.commit(sub).await.unwrap();
    let rows: Vec<i64> = s.samr_outbox().await.unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(rows.len(), 6);
    assert!(s.samr_outbox().await.unwrap().iter().all(|r| r.kind == RecordKind::RiskSignal));
    // A refused build takes no number.
    let refused = s
        .samr_create_package("20261201", "FXBS", &rows[..1], 5, Box::new(|_| Err(EncodeError::Batch("no".into()))))
        .await
        .unwrap();
    assert!(matches!(refused, Err(PackageNotFormed::Encode(EncodeError::Batch(ref m))) if m == "no"), "{refused:?}");
    assert_eq!(s.samr_outbox().await.unwrap().len(), 6, "the rows stay in the outbox");
    // Two replicas forming packages at once: numbers 1..=6, each once.
    let other = place.open().await;
    let mut tasks = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let s = if i % 2 == 0 { s.clone() } else { other.clone() };
        let row = *row;
        tasks.push(tokio::spawn(async move {
            s.samr_create_package("20261201", "FXBS", &[row], 5, builder("x")).await.unwrap().unwrap()
        }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap());
    }
    numbers.sort();
    let expected: Vec<String> = (1..=6).map(|n| format!("SJB-310000-20261201-{n:04}")).collect();
    assert_eq!(numbers, expected, "gap-free, never reused");
    assert!(s.samr_outbox().await.unwrap().is_empty());
    let packages = s.samr_packages().await.unwrap();
    assert_eq!(packages.len(), 6);
    assert!(packages.iter().all(|p| p.state == PackageState::Pending && p.attempts == 0));
    // Attempts, parking and resend.
    s.samr_record_attempt(&expected[0], PackageState::Parked, 3, 0, "gave up").await.unwrap();
    s.samr_record_attempt(&expected[1], PackageState::Pending, 1, 10_000, "busy").await.unwrap();
    s.samr_record_attempt(&expected[2], PackageState::Accepted, 1, 0, "").await.unwrap();
    let due: Vec<String> = s.samr_due(9_999).await.unwrap().into_iter().map(|p| p.number).collect();
    assert_eq!(due, expected[3..].to_vec(), "not the parked, retrying-later or accepted ones");
    let parked = s.samr_parked().await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].reason.as_str(), parked[0].attempts), ("gave up", 3));
    assert!(!s.samr_resend(&expected[2], "urn:yrdx:operator:ops").await.unwrap(), "an accepted package is not resent");
    assert!(s.samr_resend(&expected[0], "urn:yrdx:operator:ops").await.unwrap());
    assert!(s.samr_parked().await.unwrap().is_empty());
    // A new day starts again at 1; the old day continues after 6.
    let mut sub = submission("P-2", &[]);
    sub.samr = vec![rec(RecordKind::RiskSignal, "FX-9", "{}"), rec(RecordKind::RiskSignal, "FX-10", "{}")];
    s.commit(sub).await.unwrap();
    let rows: Vec<i64> = s.samr_outbox().await.unwrap().iter().map(|r| r.seq).collect();
    let next = s.samr_create_package("20261201", "FXBS", &rows[..1], 6, builder("x")).await.unwrap().unwrap();
    assert_eq!(next, "SJB-310000-20261201-0007");
    let tomorrow = s
        .samr_create_package(
            "20261202",
            "FXBS",
            &rows[1..],
            6,
            Box::new(|n| Ok((format!("SJB-310000-20261202-{n:04}"), vec![]))),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tomorrow, "SJB-310000-20261202-0001");
}

contract!(the_store_survives_a_restart);
async fn the_store_survives_a_restart(place: &Place) {
    let s = place.open().await;
    s.commit(submission("R1", &["310000"])).await.unwrap();
    let mut sub = submission("R2", &[]);
    sub.samr = vec![rec(RecordKind::RiskSignal, "FX-R", "{}")];
    s.commit(sub).await.unwrap();
    drop(s);
    let s = place.open().await;
    assert_eq!(s.depth("310000").await.unwrap(), 1);
    assert!(s.stored_submission("320000", "R1").await.unwrap().is_some());
    assert_eq!(s.samr_outbox().await.unwrap().len(), 1);
    assert_eq!(
        s.commit(submission("R1", &["310000"])).await.unwrap(),
        Committed::Existing { digest: "d-R1".into(), reply: b"reply".to_vec() }
    );
}

contract!(the_workflow_lookups);
async fn the_workflow_lookups(place: &Place) {
    let s = place.open().await;
    let sampling = |id: &str, plan: &str, region: &str, model: &str| {
        rec(
            RecordKind::Sampling,
            id,
            &format!(
                r#"{{"sampleId":"{id}","planId":"{plan}","samplingRegion":"{region}","producer":{{"uscc":"U1"}},"product":{{"brand":"B","model":"{model}"}}}}"#
            ),
        )
    };
    let mut sub = submission("W-1", &[]);
    sub.records = vec![
        sampling("S-1", "P", "320000", "M1"),
        sampling("S-2", "P", "320000", "M1"),
        sampling("S-3", "P", "330000", "M2"),
        sampling("S-4", "Q", "320000", "M1"),
        rec(RecordKind::Inspection, "R-1", r#"{"reportNo":"R-1","sampleId":"S-1"}"#),
        rec(RecordKind::Inspection, "R-4", r#"{"reportNo":"R-4","sampleId":"S-4"}"#),
        rec(RecordKind::CaseTransfer, "C-1", r#"{"caseId":"C-1","sampleId":"S-1"}"#),
    ];
    s.commit(sub).await.unwrap();
    assert_eq!(s.sampling_count("P", "320000", "", 10).await.unwrap(), 2);
    assert_eq!(s.sampling_count("P", "320000", "S-1", 10).await.unwrap(), 1, "except the record itself");
    assert_eq!(s.sampling_count("P", "320000", "", 1).await.unwrap(), 1, "counted up to at_most");
    assert_eq!(s.sampling_count("P", "310000", "", 10).await.unwrap(), 0);
    let mut same: Vec<String> =
        s.samplings_of_product("U1", "B", "M1").await.unwrap().into_iter().map(|r| r.sample_id).collect();
    same.sort();
    assert_eq!(same.len(), 3, "{same:?}");
    assert!(s.samplings_of_product("U1", "B", "M9").await.unwrap().is_empty());
    let held = s.plan_records("P").await.unwrap();
    assert_eq!(held.samplings.len(), 3);
    assert_eq!(held.inspections.iter().map(|i| i.report_no.as_str()).collect::<Vec<_>>(), ["R-1"]);
    assert_eq!(held.cases.iter().map(|c| c.case_id.as_str()).collect::<Vec<_>>(), ["C-1"]);
    let ids: Vec<String> = s.records_of_kind(RecordKind::Sampling).await.unwrap().iter().map(|r| r.id()).collect();
    assert_eq!(ids, ["S-1", "S-2", "S-3", "S-4"], "in id order");
    // A record sent again replaces the stored copy (and its lookup values).
    let mut sub = submission("W-2", &[]);
    sub.records = vec![sampling("S-2", "Q", "320000", "M1")];
    s.commit(sub).await.unwrap();
    assert_eq!(s.sampling_count("P", "320000", "", 10).await.unwrap(), 1);
}

contract!(an_overdue_notice_goes_out_once);
async fn an_overdue_notice_goes_out_once(place: &Place) {
    let (a, b) = (place.open().await, place.open().await);
    let notice =
        |r: &str| NewDelivery { recipient: r.into(), message_id: "C-1-OVERDUE-ACCEPTED".into(), document: vec![1] };
    assert!(!a.overdue_notified("C-1", 3).await.unwrap());
    assert!(a.commit_overdue_notice("C-1", 3, vec![notice("310000"), notice("320000")], 5).await.unwrap());
    assert!(!b.commit_overdue_notice("C-1", 3, vec![notice("310000")], 6).await.unwrap(), "once, across replicas");
    assert!(b.overdue_notified("C-1", 3).await.unwrap());
    assert_eq!(a.depth("310000").await.unwrap(), 1);
    assert_eq!(a.depth("320000").await.unwrap(), 1);
    assert!(a.commit_overdue_notice("C-1", 4, vec![], 7).await.unwrap(), "the next stage has its own notice");
}

contract!(a_case_revision_replaces_only_the_copy_it_read);
async fn a_case_revision_replaces_only_the_copy_it_read(place: &Place) {
    let s = place.open().await;
    let mut sub = submission("CR-1", &[]);
    sub.records = vec![rec(RecordKind::CaseTransfer, "C-1", r#"{"caseId":"C-1","reportNo":"R-1"}"#)];
    s.commit(sub).await.unwrap();
    let notice = NewDelivery { recipient: "320000".into(), message_id: "C-1-DUE-20270104".into(), document: vec![] };
    let case = |report: &str| DisposalCase { case_id: "C-1".into(), report_no: report.into(), ..Default::default() };
    assert!(!s.commit_case_revision(&case("R-0"), &case("R-2"), vec![notice.clone()], 5).await.unwrap());
    assert_eq!(s.depth("320000").await.unwrap(), 0);
    assert!(s.commit_case_revision(&case("R-1"), &case("R-2"), vec![notice], 5).await.unwrap());
    assert_eq!(s.case("C-1").await.unwrap(), Some(case("R-2")));
    assert_eq!(s.depth("320000").await.unwrap(), 1);
}

contract!(a_plan_summary_reads_its_samples_results_and_cases);
async fn a_plan_summary_reads_its_samples_results_and_cases(place: &Place) {
    let s = place.open().await;
    let mut sub = submission("PS-1", &[]);
    sub.records = vec![
        rec(RecordKind::Sampling, "S-1", r#"{"sampleId":"S-1","planId":"P"}"#),
        rec(RecordKind::Sampling, "S-2", r#"{"sampleId":"S-2","planId":"Q"}"#),
        rec(RecordKind::Inspection, "R-1", r#"{"reportNo":"R-1","sampleId":"S-1"}"#),
        rec(RecordKind::Inspection, "R-2", r#"{"reportNo":"R-2","sampleId":"S-2"}"#),
        rec(RecordKind::CaseTransfer, "C-1", r#"{"caseId":"C-1","sampleId":"S-1"}"#),
    ];
    assert!(matches!(s.commit(sub).await.unwrap(), Committed::New { .. }));
    let got = s.plan_records("P").await.unwrap();
    assert_eq!(got.samplings.iter().map(|r| r.sample_id.as_str()).collect::<Vec<_>>(), ["S-1"]);
    assert_eq!(got.inspections.iter().map(|r| r.report_no.as_str()).collect::<Vec<_>>(), ["R-1"]);
    assert_eq!(got.cases.iter().map(|r| r.case_id.as_str()).collect::<Vec<_>>(), ["C-1"]);
    assert_eq!(s.plan_records("none").await.unwrap(), store::PlanRecords::default());
}

/// SQLite only: the bulk import used by the benchmarks' seeding skips what is already stored.
#[test]
fn sqlite_bulk_commit_skips_what_is_stored() {
    let store = SqliteStore::in_memory().unwrap();
    assert_eq!(store.bulk_commit(&[submission("1", &["310000"]), submission("2", &[])]).unwrap(), 2);
    assert_eq!(store.bulk_commit(&[submission("2", &[]), submission("3", &["310000"])]).unwrap(), 1);
    assert_eq!(store.depth("310000").unwrap(), 2);
}

contract!(leadership_is_held_by_one_replica_and_moves_when_it_ends);
async fn leadership_is_held_by_one_replica_and_moves_when_it_ends(place: &Place) {
    let (a, b) = (place.open().await, place.open().await);
    let lease = a.try_lead(LeaderRole::SamrPush).await.unwrap().expect("the first asker leads");
    assert!(lease.is_held().await);
    if !place.is_postgres() {
        // One process owns a SQLite file: it always leads.
        assert!(b.try_lead(LeaderRole::SamrPush).await.unwrap().is_some());
        return;
    }
    assert!(b.try_lead(LeaderRole::SamrPush).await.unwrap().is_none(), "one leader at a time");
    assert!(b.try_lead(LeaderRole::Deadlines).await.unwrap().is_some(), "each role has its own lease");
    drop(lease);
    // The holder's connection closes: the lease is free within moments.
    let mut moved = None;
    for _ in 0..50 {
        if let Some(l) = b.try_lead(LeaderRole::SamrPush).await.unwrap() {
            moved = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(moved.is_some(), "the lease moved to the other replica");
}

contract!(a_commit_on_one_replica_signals_the_others);
async fn a_commit_on_one_replica_signals_the_others(place: &Place) {
    let (a, b) = (place.open().await, place.open().await);
    let Some(mut signals) = b.mailbox_signals() else {
        assert!(!place.is_postgres(), "a shared backend must signal other replicas");
        return;
    };
    // The listener connects in the background; commit until a signal arrives (bounded).
    let started = std::time::Instant::now();
    let mut got = None;
    for i in 0..20 {
        a.commit(submission(&format!("N{i}"), &["330000"])).await.unwrap();
        if let Ok(Ok(region)) = tokio::time::timeout(Duration::from_millis(250), signals.recv()).await {
            got = Some(region);
            break;
        }
    }
    assert_eq!(got.as_deref(), Some("330000"), "no signal within {:?}", started.elapsed());
}

contract!(a_whole_store_copies_with_ids_counts_and_checksums);
async fn a_whole_store_copies_with_ids_counts_and_checksums(place: &Place) {
    // From an embedded store with some of everything into the backend under test.
    let dir = tempdir::Dir::new("copy-source");
    let source = SqliteStore::open(&dir.0.join("source.sqlite")).expect("source");
    for i in 0..30 {
        let mut sub = submission(&format!("K{i}"), &["310000", "330000"]);
        sub.samr = vec![rec(RecordKind::RiskSignal, &format!("FX-K{i}"), "{}")];
        sub.records.push(rec(
            RecordKind::Sampling,
            &format!("SK-{i}"),
            &format!(r#"{{"sampleId":"SK-{i}","planId":"PK","samplingRegion":"320000"}}"#),
        ));
        source.commit(sub).expect("commit");
    }
    let taken = source.take("310000", 5, 10, 1000).expect("take");
    source.ack("310000", &[taken[0].delivery_id]).expect("ack");
    let rows: Vec<i64> = source.samr_outbox().expect("outbox").iter().take(3).map(|r| r.seq).collect();
    source.samr_create_package("20261201", "FXBS", &rows, 5, builder("k")).expect("package").expect("built");
    source.commit_overdue_notice("C-K", 3, &[], 9).expect("notice");
    let source: Arc<dyn Store> = Arc::new(source);
    let target = place.open().await;
    let mut progress = 0u64;
    let report =
        store::copy_store(source.as_ref(), target.as_ref(), |_, n, _| progress = progress.max(n)).await.unwrap();
    assert!(report.verified(), "{report:?}");
    assert!(progress > 0);
    let count = |t: &str| report.tables.iter().find(|c| c.table == t).map(|c| c.target_rows).unwrap();
    assert_eq!((count("messages"), count("records"), count("deliveries")), (30, 60, 60));
    assert_eq!((count("samr_outbox"), count("samr_packages"), count("overdue_notices")), (30, 1, 1));
    // 30 submissions, 5 hand-outs, 1 acknowledgement, 1 package, 1 overdue notice.
    assert_eq!(count("audit_log"), 38);
    assert_eq!(
        target.stored_submission("320000", "K7").await.unwrap(),
        source.stored_submission("320000", "K7").await.unwrap(),
        "each submission keeps its chain position (its receipt)"
    );
    // Everything behaves as before: delivery ids kept, acknowledged stays acknowledged, leases
    // and the lookups carry over, numbering continues.
    assert_eq!(target.depth("310000").await.unwrap(), 29);
    let next = target.take("310000", 100, 2000, 1000).await.unwrap();
    assert!(next.iter().all(|d| d.delivery_id != taken[0].delivery_id));
    assert_eq!(next.len(), 29);
    assert_eq!(target.sampling_count("PK", "320000", "", 100).await.unwrap(), 30);
    assert!(target.overdue_notified("C-K", 3).await.unwrap());
    assert_eq!(target.samr_outbox().await.unwrap().len(), 27);
    target.commit(submission("AFTER", &["310000"])).await.unwrap();
    let after = target.take("310000", 100, 3000, 1000).await.unwrap();
    let max_copied = next.iter().map(|d| d.delivery_id).max().unwrap();
    assert!(after.iter().any(|d| d.message_id == "AFTER" && d.delivery_id > max_copied), "ids continue after the copy");
    // A second copy into the same target refuses rather than mixing stores.
    assert!(store::copy_store(source.as_ref(), target.as_ref(), |_, _, _| {}).await.is_err());
}

#[tokio::test]
async fn an_unreachable_database_is_an_error_naming_the_store_not_a_panic() {
    let err = PostgresStore::connect(
        "postgres://root@127.0.0.1:1/none",
        &PostgresOptions { connect_timeout: Duration::from_secs(2), ..options() },
    )
    .await
    .err()
    .expect("nothing listens on port 1");
    assert!(err.to_string().contains("postgres"), "{err}");
    let err = PostgresStore::connect("postgres://[bad", &options()).await.err().expect("a bad URL");
    assert!(matches!(err, store::StoreError::Config(_)), "{err}");
}

contract!(every_change_is_in_one_unforked_audit_chain);
async fn every_change_is_in_one_unforked_audit_chain(place: &Place) {
    // Two replicas changing the store at once: one chain, positions 0.., each linked to the last.
    let (a, b) = (place.open().await, place.open().await);
    let (x, y) = tokio::join!(
        async {
            for i in 0..15 {
                a.commit(submission(&format!("A{i}"), &["310000"])).await.unwrap();
            }
        },
        async {
            for i in 0..15 {
                b.commit(submission(&format!("B{i}"), &["330000"])).await.unwrap();
            }
        }
    );
    let ((), ()) = (x, y);
    let taken = a.take("310000", 2, 10, 1000).await.unwrap();
    assert_eq!(b.ack("310000", &[taken[0].delivery_id]).await.unwrap(), 1);
    a.audit_append(
        vec![yrdx_evidence::AuditEvent::OperatorAction { operator: "ops".into(), action: "reload".into() }],
        20,
    )
    .await
    .unwrap();
    let entries = a.audit_entries(0, 1000).await.unwrap();
    assert_chain_unforked(&entries, 30 + 2 + 1 + 1);
    // The newest entry is read from the end, by either replica.
    assert_eq!(b.audit_last_entry().await.unwrap().as_ref(), entries.last());
    assert_eq!(a.audit_last_head().await.unwrap(), None);
    let key = yrdx_evidence::GatewaySigningKey::generate("1234567812345678").unwrap();
    for at in [5, 12] {
        let head = yrdx_evidence::ChainHead::of(&entries[at], 100).sign(&key).unwrap();
        a.audit_store_head(head).await.unwrap();
    }
    assert_eq!(b.audit_last_head().await.unwrap().map(|h| h.head.position), Some(12));
    assert_eq!(b.audit_heads().await.unwrap().len(), 2);
    let kinds: Vec<&str> = entries.iter().map(|e| e.event.kind()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "submission_accepted").count(), 30);
    assert_eq!(
        &kinds[30..],
        ["delivery_handed_out", "delivery_handed_out", "delivery_acknowledged", "operator_action"]
    );
    // Each submission knows its entry.
    // A submission storing a disposal case records the case's event after its own entry.
    let mut with_case = submission("CASE-1", &[]);
    with_case.records.push(rec(
        RecordKind::CaseTransfer,
        "C-9",
        r#"{"caseId":"C-9","status":"CASE_STATUS_TRANSFERRED"}"#,
    ));
    a.commit(with_case).await.unwrap();
    let tail = a.audit_entries(entries.len() as u64, 10).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.event.kind()).collect::<Vec<_>>(), ["submission_accepted", "case_event"]);
    assert!(
        matches!(&tail[1].event, yrdx_evidence::AuditEvent::CaseEvent { case_id, event } if case_id == "C-9" && event.contains("TRANSFERRED"))
    );
    let stored = a.stored_submission("320000", "A3").await.unwrap().unwrap();
    let entry = &entries[stored.audit_position.unwrap() as usize];
    assert!(
        matches!(&entry.event, yrdx_evidence::AuditEvent::SubmissionAccepted { message_id, .. } if message_id == "A3")
    );
    assert_eq!(a.document("320000", "A3").await.unwrap().as_deref(), Some(&b"doc"[..]));
}
