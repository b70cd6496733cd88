//! The load generator: concurrent partner clients over real mutual TLS, each with its own
//! certificate, submitting documents as fast as they can (closed loop) or at a target rate (open
//! loop: latency is measured from the intended start, so a slow server shows as latency rather
//! than as a quietly lower rate); receivers drain and acknowledge the partners' mailboxes and time
//! submit-to-delivery.

use crate::stats::{Percentiles, RunFigures};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use yrdx_adapters::Partner;
use yrdx_gateway::progress::Progress;
use yrdx_proto::v1::exchange_client::ExchangeClient;
use yrdx_proto::v1::{AckRequest, ReceiveRequest, SubmitRequest};

/// One client: a partner connection with its own certificate.
#[derive(Clone)]
pub struct BenchClient {
    /// Index among all clients.
    pub index: usize,
    /// Partner name.
    pub partner: String,
    /// Its region.
    pub region: String,
    /// Its format.
    pub format: Partner,
    /// Its connection.
    pub channel: Channel,
}

/// A document to submit.
pub struct Doc {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its message id (deliveries carry it).
    pub message_id: String,
    /// Records in it.
    pub records: u32,
}

/// Makes the `seq`-th document of a client.
pub type DocMaker = Arc<dyn Fn(&BenchClient, u64) -> Doc + Send + Sync>;

/// How to load the server.
#[derive(Clone)]
pub struct LoadSpec {
    /// How long to submit.
    pub duration: Duration,
    /// Closed loop: submissions in flight per client.
    pub concurrency: usize,
    /// Open loop: total submissions per second (overrides `concurrency`).
    pub rate: Option<f64>,
    /// Stop after this many submissions.
    pub max_submissions: Option<u64>,
    /// The documents.
    pub make: DocMaker,
    /// Partners whose mailboxes are drained: (name, channel).
    pub receivers: Vec<(String, Channel)>,
    /// How long receivers keep draining after the last submission.
    pub grace: Duration,
}

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    latencies: Mutex<Vec<u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
    examples: Mutex<BTreeMap<String, String>>,
}

impl Tally {
    fn done(&self, started: Instant, doc_records: u32, doc_bytes: usize, result: Result<(), tonic::Status>) {
        let micros = started.elapsed().as_micros() as u64;
        match result {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.records.fetch_add(doc_records as u64, Ordering::Relaxed);
                self.bytes.fetch_add(doc_bytes as u64, Ordering::Relaxed);
                self.latencies.lock().unwrap_or_else(|p| p.into_inner()).push(micros);
            }
            Err(status) => {
                let code = format!("{:?}", status.code());
                let mut examples = self.examples.lock().unwrap_or_else(|p| p.into_inner());
                examples.entry(code.clone()).or_insert_with(|| status.message().chars().take(300).collect());
                *self.errors.lock().unwrap_or_else(|p| p.into_inner()).entry(code).or_default() += 1;
            }
        }
    }
}

type Submitted = Arc<Mutex<HashMap<String, Instant>>>;

async fn submit_one(client: &BenchClient, doc: Doc, started: Instant, tally: &Tally, submitted: &Submitted) {
    submitted.lock().unwrap_or_else(|p| p.into_inner()).insert(doc.message_id.clone(), started);
    let (records, len) = (doc.records, doc.bytes.len());
    let mut c = ExchangeClient::new(client.channel.clone())
        .max_encoding_message_size(64 << 20)
        .max_decoding_message_size(64 << 20);
    let result = c.submit(SubmitRequest { document: doc.bytes }).await.map(|_| ());
    tally.done(started, records, len, result);
}

/// Drains a mailbox, acknowledging in batches, timing each delivery whose message it submitted.
async fn drain(
    channel: Channel,
    submitted: Submitted,
    stop: Arc<AtomicBool>,
    latencies: Arc<Mutex<Vec<u64>>>,
    count: Arc<AtomicU64>,
) {
    let mut client = ExchangeClient::new(channel).max_decoding_message_size(64 << 20);
    let Ok(stream) = client.receive(ReceiveRequest { max_unacked: 1000 }).await else { return };
    let mut stream = stream.into_inner();
    let mut pending: Vec<String> = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_millis(5), stream.message()).await;
        // Acknowledge in batches: at 200 pending, or when the stream pauses for 5 ms.
        let idle = next.is_err();
        match next {
            Ok(Ok(Some(d))) => {
                let at = submitted.lock().unwrap_or_else(|p| p.into_inner()).get(&d.message_id).copied();
                if let Some(at) = at {
                    latencies.lock().unwrap_or_else(|p| p.into_inner()).push(at.elapsed().as_micros() as u64);
                }
                count.fetch_add(1, Ordering::Relaxed);
                pending.push(d.delivery_id);
            }
            Ok(Ok(None)) | Ok(Err(_)) => break,
            Err(_) => {
                if stop.load(Ordering::Relaxed) && pending.is_empty() {
                    break;
                }
            }
        }
        if pending.len() >= 200 || (idle && !pending.is_empty()) {
            let ids = std::mem::take(&mut pending);
            let _ = client.ack(AckRequest { delivery_ids: ids }).await;
        }
    }
    if !pending.is_empty() {
        let _ = client.ack(AckRequest { delivery_ids: pending }).await;
    }
}

/// Runs one load against a server; `usage` reads the server's (peak RSS bytes, CPU seconds).
pub async fn run(
    side: &str,
    clients: &[BenchClient],
    spec: &LoadSpec,
    usage: &(dyn Fn() -> (u64, f64) + Sync),
) -> RunFigures {
    let tally = Arc::new(Tally::default());
    let submitted: Submitted = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let delivery_latencies = Arc::new(Mutex::new(Vec::new()));
    let delivered = Arc::new(AtomicU64::new(0));
    let mut receivers = Vec::new();
    for (_, channel) in &spec.receivers {
        receivers.push(tokio::spawn(drain(
            channel.clone(),
            submitted.clone(),
            stop.clone(),
            delivery_latencies.clone(),
            delivered.clone(),
        )));
    }
    let cpu_before = usage().1;
    let started = Instant::now();
    let deadline = started + spec.duration;
    // The run's progress by time (on stderr: the tables go to stdout).
    let planned_ms = spec.duration.as_millis() as u64;
    let progress = Arc::new(Progress::on_stderr(&format!("{side} run"), "ms", planned_ms));
    let ticker = {
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                progress.set(started.elapsed().as_millis() as u64);
            }
        })
    };
    let budget = Arc::new(AtomicU64::new(spec.max_submissions.unwrap_or(u64::MAX)));
    let take = |b: &AtomicU64| b.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    match spec.rate {
        None => {
            let mut tasks = tokio::task::JoinSet::new();
            for client in clients {
                for lane in 0..spec.concurrency.max(1) {
                    let (client, tally, submitted, make, budget) =
                        (client.clone(), tally.clone(), submitted.clone(), spec.make.clone(), budget.clone());
                    tasks.spawn(async move {
                        let mut seq = lane as u64;
                        while Instant::now() < deadline && take(&budget) {
                            let doc = make(&client, seq);
                            seq += 1_000_000;
                            submit_one(&client, doc, Instant::now(), &tally, &submitted).await;
                        }
                    });
                }
            }
            while tasks.join_next().await.is_some() {}
        }
        Some(rate) => {
            let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut tasks = tokio::task::JoinSet::new();
            let mut n: u64 = 0;
            loop {
                let tick = ticker.tick().await.into_std();
                if tick >= deadline || !take(&budget) {
                    break;
                }
                let client = clients[(n as usize) % clients.len()].clone();
                let (tally, submitted, make) = (tally.clone(), submitted.clone(), spec.make.clone());
                let seq = n / clients.len() as u64;
                n += 1;
                tasks.spawn(async move {
                    let doc = make(&client, seq);
                    // Latency from the intended start: a late server cannot hide behind a late client.
                    submit_one(&client, doc, tick, &tally, &submitted).await;
                });
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    ticker.abort();
    progress.set(planned_ms);
    progress.finish();
    // Let the receivers take what is still on its way, then stop them.
    tokio::time::sleep(spec.grace).await;
    stop.store(true, Ordering::Relaxed);
    for r in receivers {
        let _ = tokio::time::timeout(Duration::from_secs(10), r).await;
    }
    let (rss, cpu_after) = usage();
    let ok = tally.ok.load(Ordering::Relaxed);
    let bytes = tally.bytes.load(Ordering::Relaxed);
    let records = tally.records.load(Ordering::Relaxed);
    let mut submit_lat = std::mem::take(&mut *tally.latencies.lock().unwrap_or_else(|p| p.into_inner()));
    let mut delivery_lat = std::mem::take(&mut *delivery_latencies.lock().unwrap_or_else(|p| p.into_inner()));
    let deliveries = delivered.load(Ordering::Relaxed);
    let errors = tally.errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let error_examples = tally.examples.lock().unwrap_or_else(|p| p.into_inner()).clone();
    RunFigures {
        side: side.to_string(),
        seconds: elapsed,
        submissions: ok,
        records,
        bytes,
        submissions_per_s: ok as f64 / elapsed,
        records_per_s: records as f64 / elapsed,
        mb_per_s: bytes as f64 / elapsed / 1e6,
        submit_ms: Percentiles::of(&mut submit_lat),
        delivery_ms: Percentiles::of(&mut delivery_lat),
        deliveries,
        deliveries_per_s: deliveries as f64 / elapsed,
        errors,
        error_examples,
        peak_rss_mb: rss as f64 / 1e6,
        cpu_seconds: cpu_after - cpu_before,
        offered_rate: spec.rate.unwrap_or(0.0),
    }
}
