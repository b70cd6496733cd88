//! Failover, end to end: three `yrdx serve` processes on one PostgreSQL database, partners'
//! clients spread over them and moving to another replica when theirs fails (as behind an L4 load
//! balancer), under load; replica 1 (the first leader) is killed with SIGKILL, later replica 2,
//! then both are restarted. Afterwards:
//! - every acknowledged submission is stored and was delivered to each of its recipients;
//! - no delivery acknowledged successfully was handed out again;
//! - SAMR package numbers are unique and gap-free per day, every package accepted, and the SAMR
//!   pusher moved to a live replica within [`PUSHER_BOUND`];
//! - each overdue notice went out once (one delivery per case, stage and side).
//!
//! Skipped loudly without PostgreSQL (fails instead when `YRDX_REQUIRE_POSTGRES=1`).

mod common;

use common::free_port;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use yrdx_adapters::{Partner, Record};
use yrdx_conformance::samr_simulator::{IntakeOptions, SamrIntake};
use yrdx_gateway::store::{Intake, SamrOutbox, StoreCopy};
use yrdx_pki::CertificateAuthority;
use yrdx_proto::v1::exchange_client::ExchangeClient;
use yrdx_proto::v1::{AckRequest, ReceiveRequest, SubmitRequest};
use yrdx_tests::{document, postgres_schema, skip_without_postgres, temp_dir, vector_record};

/// The bound this test holds the SAMR pusher's move to: the lease is asked for every 2 s
/// (`leader::RETRY`), a push round runs every 0.3 s, and a dead holder's connection closes at once
/// on a local database; 15 s leaves room for a loaded CI machine.
const PUSHER_BOUND: Duration = Duration::from_secs(15);

const SUBMISSIONS: usize = 120;

struct Replica {
    config: std::path::PathBuf,
    log: std::path::PathBuf,
    url: String,
    child: Option<Child>,
}

impl Replica {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_yrdx"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("yrdx serve starts");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The replicas behind one address, as an L4 load balancer would spread them: each new
/// connection goes to the next replica that accepts it.
struct Balancer {
    urls: Vec<String>,
    next: AtomicUsize,
    ca_pem: String,
}

impl Balancer {
    async fn connect(&self, identity: &(String, String)) -> ExchangeClient<Channel> {
        loop {
            let i = self.next.fetch_add(1, Ordering::SeqCst) % self.urls.len();
            if let Ok(c) = yrdx_pki::client::connect(&self.urls[i], &self.ca_pem, Some(identity.clone())).await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What one partner's receiver saw.
#[derive(Default)]
struct Seen {
    /// Message id → distinct delivery ids it came under.
    deliveries: HashMap<String, BTreeSet<String>>,
    /// Delivery ids whose Ack answered 1.
    acked: HashSet<String>,
    /// Deliveries handed out again after a successful Ack.
    again_after_ack: Vec<String>,
}

fn identity(dir: &std::path::Path, name: &str) -> (String, String) {
    (
        std::fs::read_to_string(dir.join(format!("pki/{name}.pem"))).expect("cert"),
        std::fs::read_to_string(dir.join(format!("pki/{name}.key"))).expect("key"),
    )
}

fn risk_signal(n: usize) -> Record {
    let mut r = vector_record(Partner::Jiangsu, "jiangsu/valid/risk-signal.json");
    if let Record::RiskSignal(s) = &mut r {
        s.signal_id = format!("FX-2026-320000-{n:04}");
        s.revision = 1;
        s.state = yrdx_proto::v1::RiskState::New as i32;
        // HIGH: also for SAMR.
        s.level = yrdx_proto::v1::RiskLevel::High as i32;
    }
    r
}

fn overdue_case(n: usize) -> Record {
    let mut r = vector_record(Partner::Canonical, "canonical/valid/case-transfer.json");
    if let Record::CaseTransfer(c) = &mut r {
        c.case_id = format!("CZ-2024-310000-09{n:02}");
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_fail_over_without_losing_or_repeating_anything() {
    let store_url = match postgres_schema("failover").await {
        Ok(u) => u,
        Err(why) => return skip_without_postgres("the failover test", &why),
    };
    let dir = temp_dir("failover");
    let ca = CertificateAuthority::new("yrdx failover CA").expect("ca");
    let pki = yrdx_pki::init_with(&dir, "127.0.0.1:0", &ca).expect("pki");
    // SAMR's intake, with its own CA.
    let samr_ca = CertificateAuthority::new("SAMR failover CA").expect("samr ca");
    let server = samr_ca.issue_server().expect("server");
    let client = samr_ca.issue_client("urn:yrdx:gateway:310000", false).expect("client");
    for (name, text) in [
        ("samr-ca.pem", &samr_ca.cert_pem),
        ("samr-client.pem", &client.cert_pem),
        ("samr-client.key", &client.key_pem),
    ] {
        std::fs::write(dir.join(name), text).expect("samr files");
    }
    let intake = SamrIntake::start(&server.cert_pem, &server.key_pem, &samr_ca.cert_pem, IntakeOptions::default())
        .await
        .expect("intake");
    let base = std::fs::read_to_string(&pki.config).expect("config");
    let mut replicas = Vec::new();
    for n in 1..=3 {
        let port = free_port();
        let text = base
            .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{port}\""))
            .replace("store = \"yrdx.sqlite\"", &format!("store = \"{store_url}\""))
            .replace("rate_per_second = 50", "rate_per_second = 500")
            + &format!(
                "\n[samr]\nintake_url = \"{}\"\nserver_name = \"localhost\"\nca = \"samr-ca.pem\"\ncert = \"samr-client.pem\"\nkey = \"samr-client.key\"\nbatch_max_age_secs = 0\nretry_base_secs = 1\n",
                intake.url()
            );
        let config = dir.join(format!("replica-{n}.toml"));
        std::fs::write(&config, text).expect("replica config");
        replicas.push(Replica {
            config,
            log: dir.join(format!("replica-{n}.log")),
            url: format!("https://127.0.0.1:{port}"),
            child: None,
        });
    }
    let ca_pem = std::fs::read_to_string(dir.join("pki/ca.pem")).expect("ca pem");
    let ready = |url: String, ca: String, id: (String, String)| async move {
        for _ in 0..200 {
            if yrdx_pki::client::connect(&url, &ca, Some(id.clone())).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("replica {url} did not come up");
    };
    // Replica 1 first: it takes the leader leases (SAMR push, deadlines).
    replicas[0].spawn();
    ready(replicas[0].url.clone(), ca_pem.clone(), identity(&dir, "jiangsu")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    replicas[1].spawn();
    replicas[2].spawn();
    for r in &replicas[1..] {
        ready(r.url.clone(), ca_pem.clone(), identity(&dir, "jiangsu")).await;
    }
    let lb = Arc::new(Balancer {
        urls: replicas.iter().map(|r| r.url.clone()).collect(),
        next: AtomicUsize::new(0),
        ca_pem,
    });

    // Receivers: Shanghai, Jiangsu and Zhejiang, each reconnecting through the balancer.
    let stop = Arc::new(AtomicBool::new(false));
    let mut seen: BTreeMap<&'static str, Arc<Mutex<Seen>>> = BTreeMap::new();
    let mut receivers = Vec::new();
    for who in ["shanghai", "jiangsu", "zhejiang"] {
        let s = Arc::new(Mutex::new(Seen::default()));
        seen.insert(who, s.clone());
        let (lb, stop, id) = (lb.clone(), stop.clone(), identity(&dir, who));
        receivers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let mut client = lb.connect(&id).await;
                let Ok(stream) = client.receive(ReceiveRequest { max_unacked: 20 }).await else { continue };
                let mut stream = stream.into_inner();
                loop {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let d = match tokio::time::timeout(Duration::from_millis(300), stream.message()).await {
                        Ok(Ok(Some(d))) => d,
                        Ok(_) => break, // the replica went away: reconnect elsewhere
                        Err(_) => continue,
                    };
                    {
                        let mut s = s.lock().expect("seen");
                        if s.acked.contains(&d.delivery_id) {
                            s.again_after_ack.push(format!("{} ({})", d.delivery_id, d.message_id));
                        }
                        s.deliveries.entry(d.message_id.clone()).or_default().insert(d.delivery_id.clone());
                    }
                    match client.ack(AckRequest { delivery_ids: vec![d.delivery_id.clone()] }).await {
                        Ok(r) if r.get_ref().acknowledged == 1 => {
                            s.lock().expect("seen").acked.insert(d.delivery_id);
                        }
                        _ => break,
                    }
                }
            }
        }));
    }

    // Three overdue cases (opened in 2024): the deadline checker notifies both sides once.
    let shanghai = identity(&dir, "shanghai");
    for n in 0..3 {
        let doc = document(Partner::Canonical, "310000", &format!("SH-CASE-{n}"), &[overdue_case(n)]);
        let mut c = lb.connect(&shanghai).await;
        c.submit(SubmitRequest { document: doc }).await.expect("case accepted");
    }

    // Load: Jiangsu's risk signals, spread over the replicas; a failed call is retried (same
    // message id: idempotent) on the next replica.
    let jiangsu = identity(&dir, "jiangsu");
    let mut acknowledged = Vec::new();
    let mut killed_leader_at = None;
    let mut after_kill_signal = None;
    for i in 0..SUBMISSIONS {
        match i {
            40 => {
                replicas[0].kill();
                killed_leader_at = Some(Instant::now());
                after_kill_signal = Some(format!("FX-2026-320000-{i:04}"));
            }
            75 => replicas[1].kill(),
            90 => replicas[0].spawn(),
            105 => replicas[1].spawn(),
            _ => {}
        }
        let message_id = format!("JS-FX-{i}");
        let doc = document(Partner::Jiangsu, "320000", &message_id, &[risk_signal(i)]);
        let started = Instant::now();
        loop {
            let mut c = lb.connect(&jiangsu).await;
            match c.submit(SubmitRequest { document: doc.clone() }).await {
                Ok(_) => {
                    acknowledged.push(message_id.clone());
                    break;
                }
                Err(status) => {
                    assert_ne!(status.code(), tonic::Code::AlreadyExists, "a retry is the same message: {status}");
                    assert!(started.elapsed() < Duration::from_secs(30), "{message_id} never accepted: {status}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(acknowledged.len(), SUBMISSIONS);

    // Wait until every acknowledged submission reached Shanghai and Zhejiang, every package was
    // accepted by SAMR, and the overdue notices arrived.
    let store = yrdx_gateway::store::PostgresStore::connect(&store_url, &Default::default()).await.expect("store");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut pusher_moved_after = None;
    loop {
        let delivered = |who: &str| {
            let s = seen[who].lock().expect("seen");
            acknowledged.iter().filter(|m| s.deliveries.contains_key(*m)).count()
        };
        let notices =
            |who: &str| seen[who].lock().expect("seen").deliveries.keys().filter(|m| m.contains("-OVERDUE-")).count();
        let packages = store.samr_packages().await.expect("packages");
        let waiting = store.samr_outbox().await.expect("outbox").len();
        let all_accepted =
            waiting == 0 && packages.iter().all(|p| p.state == yrdx_gateway::store::PackageState::Accepted);
        if pusher_moved_after.is_none() {
            let accepted_numbers: HashSet<String> =
                intake.events().into_iter().filter(|e| e.accepted).filter_map(|e| e.number).collect();
            // The signal submitted right after the kill is in an accepted package.
            let signal = after_kill_signal.clone().expect("killed");
            let json =
                store.export_rows("samr_outbox", 0, 100_000).await.expect("outbox rows").into_iter().find_map(|r| {
                    let text = |column| r.get(column).and_then(yrdx_gateway::store::Value::as_text).map(str::to_owned);
                    (text("record_id").as_deref() == Some(signal.as_str())).then(|| text("package")).flatten()
                });
            if json.is_some_and(|p| accepted_numbers.contains(&p)) {
                pusher_moved_after = killed_leader_at.map(|t| t.elapsed());
            }
        }
        let done = delivered("shanghai") == SUBMISSIONS
            && delivered("zhejiang") == SUBMISSIONS
            && notices("shanghai") == 3
            && notices("jiangsu") == 3
            && all_accepted
            && pusher_moved_after.is_some();
        if done {
            break;
        }
        if Instant::now() > deadline {
            let logs: String = replicas
                .iter()
                .map(|r| {
                    std::fs::read_to_string(&r.log)
                        .unwrap_or_default()
                        .lines()
                        .rev()
                        .take(15)
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .collect::<Vec<_>>()
                .join("\n----\n");
            panic!(
                "not done in 90 s: shanghai {}/{SUBMISSIONS}, zhejiang {}/{SUBMISSIONS}, notices {}+{} of 3+3, packages all accepted {all_accepted} ({waiting} waiting), pusher moved {pusher_moved_after:?}\n{logs}",
                delivered("shanghai"),
                delivered("zhejiang"),
                notices("shanghai"),
                notices("jiangsu"),
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for r in receivers {
        let _ = r.await;
    }

    // Every acknowledged submission is stored.
    for m in &acknowledged {
        assert!(store.stored_submission("320000", m).await.expect("read").is_some(), "{m} acknowledged but not stored");
    }
    // No acknowledged delivery came back; each overdue notice is one delivery per side.
    for (who, s) in &seen {
        let s = s.lock().expect("seen");
        assert!(s.again_after_ack.is_empty(), "{who} got acknowledged deliveries again: {:?}", s.again_after_ack);
        for (m, ids) in s.deliveries.iter().filter(|(m, _)| m.contains("-OVERDUE-")) {
            assert_eq!(ids.len(), 1, "{who}: overdue notice {m} queued {} times", ids.len());
        }
        for (m, ids) in &s.deliveries {
            assert_eq!(ids.len(), 1, "{who}: {m} was queued as {} deliveries", ids.len());
        }
    }
    // SAMR: per day, numbers 1..=n, each package accepted; a number posted again after a crash
    // (SAMR's receipt arrived but the dead replica never recorded it) carries the same package.
    let packages = store.samr_packages().await.expect("packages");
    let mut per_day: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for p in &packages {
        let (day, seq) = p.number.rsplit_once('-').expect("number");
        per_day.entry(day.to_string()).or_default().push(seq.parse().expect("sequence"));
    }
    for (day, mut seqs) in per_day {
        seqs.sort_unstable();
        let expected: Vec<u32> = (1..=seqs.len() as u32).collect();
        assert_eq!(seqs, expected, "{day}: numbers must be gap-free and unique");
    }
    let accepted: Vec<String> = intake.events().into_iter().filter(|e| e.accepted).filter_map(|e| e.number).collect();
    let distinct: BTreeSet<&String> = accepted.iter().collect();
    assert_eq!(distinct.len(), packages.len(), "SAMR accepted exactly the stored packages");
    let moved = pusher_moved_after.expect("measured");
    eprintln!(
        "failover: {SUBMISSIONS} submissions acknowledged, {} SAMR packages ({} posts accepted), SAMR pusher moved {:?} after the leader was killed (bound {PUSHER_BOUND:?})",
        packages.len(),
        accepted.len(),
        moved
    );
    assert!(moved <= PUSHER_BOUND, "the SAMR pusher took {moved:?} to move (bound {PUSHER_BOUND:?})");
    for r in &mut replicas {
        r.kill();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
