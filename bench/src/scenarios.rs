//! The scenarios: each runs the gateway and the baseline alternately (A B A B …) with the same
//! clients and payloads, prints a table and writes JSON to the results folder.

use crate::load::{self, BenchClient, DocMaker, LoadSpec};
use crate::servers::{ServerProcess, Side};
use crate::setup::{self, Environment, Templates, PARTNERS};
use crate::stats::{self, RunFigures};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use yrdx_adapters::Record;
use yrdx_gateway::progress::Progress;
use yrdx_gateway::store::{LookupKeys, NewDelivery, SqliteStore, StoredRecord, Submission};

/// Knobs common to every scenario.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Seconds per timed run.
    pub seconds: f64,
    /// Alternating rounds (each runs the gateway, then the baseline).
    pub rounds: usize,
    /// Clients per partner.
    pub clients_per_partner: usize,
    /// Submissions in flight per client (closed loop).
    pub concurrency: usize,
    /// Pending deliveries of the backlog scenario.
    pub backlog: usize,
    /// Records already stored in the bigstore scenario.
    pub bigstore: usize,
    /// A short run for CI (`--smoke`).
    pub smoke: bool,
    /// Open loop at this total rate instead of closed loop.
    pub rate: Option<f64>,
    /// Stop each run after this many submissions.
    pub count: Option<u64>,
}

/// One target and whether it was met.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Target {
    /// What is targeted.
    pub name: String,
    /// The measured figure.
    pub measured: f64,
    /// The target.
    pub target: String,
    /// Met?
    pub met: bool,
}

pub(crate) fn target(name: &str, measured: f64, target: &str, met: bool) -> Target {
    Target { name: name.into(), measured, target: target.into(), met }
}

pub(crate) fn print_targets(targets: &[Target]) {
    println!("\ntargets");
    for t in targets {
        println!(
            "  {:<52} {:>12.3}  target {:<14} {}",
            t.name,
            t.measured,
            t.target,
            if t.met { "met" } else { "MISSED" }
        );
    }
}

/// The seeds of the mixed load: the bench plan (Shanghai leads it) and one sample per region.
pub(crate) async fn seed_mixed(clients: &[BenchClient], templates: &Templates) -> Result<(), String> {
    let shanghai = clients.iter().find(|c| c.partner == "shanghai").ok_or("no shanghai client")?;
    submit(shanghai, "SEED-PLANS", &templates.bench_plans()).await?;
    for (name, region, _) in PARTNERS {
        if let Some(c) = clients.iter().find(|c| c.partner == *name) {
            let seed = templates.sampling_of(region, &Templates::seed_sample_id(region));
            submit(c, &format!("SEED-{region}"), &[seed]).await?;
        }
    }
    Ok(())
}

async fn submit(client: &BenchClient, message_id: &str, records: &[Record]) -> Result<(), String> {
    let doc = setup::document(client, message_id.to_string(), records);
    let mut c = yrdx_proto::v1::exchange_client::ExchangeClient::new(client.channel.clone());
    c.submit(yrdx_proto::v1::SubmitRequest { document: doc.bytes })
        .await
        .map(|_| ())
        .map_err(|s| format!("seed {message_id}: {}", s.message()))
}

/// What a run needs besides the load: which partners submit and receive, and its seeding.
pub(crate) struct Plan {
    pub(crate) submitters: Vec<&'static str>,
    pub(crate) receivers: Vec<&'static str>,
    pub(crate) seed_mixed: bool,
}

/// One run of one side on a fresh server and store.
pub(crate) async fn run_side(
    env: &Environment,
    side: Side,
    tag: &str,
    plan: &Plan,
    settings: &Settings,
    spec: &LoadSpec,
    templates: &Templates,
) -> Result<RunFigures, String> {
    let config = env.config_for(&format!("{tag}-{}", side.name()))?;
    let server = ServerProcess::start(side, &config)?;
    let clients = env.clients(server.addr, &plan.submitters, settings.clients_per_partner).await?;
    if plan.seed_mixed && side == Side::Gateway {
        seed_mixed(&clients, templates).await?;
    }
    let mut spec = spec.clone();
    if side == Side::Gateway {
        let receivers = env.clients(server.addr, &plan.receivers, 1).await?;
        spec.receivers = receivers.into_iter().map(|c| (c.partner, c.channel)).collect();
    }
    Ok(load::run(side.name(), &clients, &spec, &|| server.usage()).await)
}

/// Runs gateway and baseline alternately for `settings.rounds` rounds.
async fn alternate(
    env: &Environment,
    tag: &str,
    plan: &Plan,
    settings: &Settings,
    spec: &LoadSpec,
    templates: &Templates,
) -> Result<(Vec<RunFigures>, Vec<RunFigures>), String> {
    let (mut g, mut b) = (Vec::new(), Vec::new());
    for round in 0..settings.rounds {
        for side in [Side::Gateway, Side::Baseline] {
            let f = run_side(env, side, &format!("{tag}-{round}"), plan, settings, spec, templates).await?;
            stats::print_run(&format!("{tag} round {} {}", round + 1, side.name()), &f);
            if side == Side::Gateway {
                g.push(f)
            } else {
                b.push(f)
            }
        }
    }
    Ok((g, b))
}

pub(crate) fn mixed_maker(templates: &Templates, round_tag: &str) -> DocMaker {
    let (t, tag) = (templates.clone(), round_tag.to_string());
    Arc::new(move |c: &BenchClient, seq: u64| {
        let record = t.mixed(c, seq, &tag);
        setup::document(c, format!("{tag}-{}-{seq}", c.index), &[record])
    })
}

pub(crate) fn spec(settings: &Settings, make: DocMaker) -> LoadSpec {
    LoadSpec {
        duration: Duration::from_secs_f64(settings.seconds),
        concurrency: settings.concurrency,
        rate: settings.rate,
        max_submissions: settings.count,
        make,
        receivers: vec![],
        grace: Duration::from_millis(if settings.smoke { 200 } else { 1500 }),
    }
}

/// `submit`: every partner, mixed record types; then the open-loop latency run at half the
/// gateway's measured peak.
pub async fn submit_scenario(env: &Environment, settings: &Settings) -> Result<Value, String> {
    let templates = Templates::load()?;
    let all: Vec<&'static str> = PARTNERS.iter().map(|(n, ..)| *n).collect();
    let plan = Plan { submitters: all.clone(), receivers: all, seed_mixed: true };
    println!(
        "submit: {} clients per partner × 4 partners, {} in flight each, {} s per run, {} rounds",
        settings.clients_per_partner, settings.concurrency, settings.seconds, settings.rounds
    );
    let (g, b) =
        alternate(env, "submit", &plan, settings, &spec(settings, mixed_maker(&templates, "M")), &templates).await?;
    let rows = stats::ratio_rows(&g, &b);
    stats::print_ratio_table("submit: closed loop, as fast as the clients can (median, min–max over rounds)", &rows);
    let peak = stats::Spread::of(&g.iter().map(|f| f.submissions_per_s).collect::<Vec<_>>()).median;
    let rate = (peak / 2.0).max(1.0);
    println!("\nopen loop at half the gateway's peak: {rate:.0} submissions/s");
    let mut open = spec(settings, mixed_maker(&templates, "O"));
    open.rate = Some(rate);
    let og = run_side(env, Side::Gateway, "submit-open", &plan, settings, &open, &templates).await?;
    stats::print_run("open loop gateway", &og);
    let ob = run_side(env, Side::Baseline, "submit-open", &plan, settings, &open, &templates).await?;
    stats::print_run("open loop baseline", &ob);
    let ratio = rows[0].ratio.median;
    let rss = g.iter().chain([&og]).map(|f| f.peak_rss_mb).fold(0.0, f64::max);
    let targets = vec![
        target("Submit throughput gateway/baseline (durable commit)", ratio, ">= 0.5", ratio >= 0.5),
        target("p99 Submit latency at half peak (ms)", og.submit_ms.p99, "<= 20", og.submit_ms.p99 <= 20.0),
        target("p99 submit-to-delivery at half peak (ms)", og.delivery_ms.p99, "<= 50", og.delivery_ms.p99 <= 50.0),
        target("gateway peak RSS (MB)", rss, "<= 200", rss <= 200.0),
    ];
    print_targets(&targets);
    Ok(
        json!({"scenario": "submit", "gateway": g, "baseline": b, "ratios": rows, "open_loop": {"rate": rate, "gateway": og, "baseline": ob}, "targets": targets}),
    )
}

/// `fanout`: Jiangsu's risk signals, each delivered to Shanghai and Zhejiang.
pub async fn fanout_scenario(env: &Environment, settings: &Settings) -> Result<Value, String> {
    let templates = Templates::load()?;
    let plan = Plan { submitters: vec!["jiangsu"], receivers: vec!["shanghai", "zhejiang"], seed_mixed: false };
    let t = templates.clone();
    let make: DocMaker = Arc::new(move |c: &BenchClient, seq: u64| {
        let r = t.risk_signal(&format!("FX-F{}-{seq}", c.index));
        setup::document(c, format!("F-{}-{seq}", c.index), &[r])
    });
    let mut s = settings.clone();
    s.clients_per_partner = settings.clients_per_partner * 2;
    println!("fanout: {} Jiangsu clients send risk signals; Shanghai and Zhejiang receive each", s.clients_per_partner);
    let (g, b) = alternate(env, "fanout", &plan, &s, &spec(&s, make), &templates).await?;
    let rows = stats::ratio_rows(&g, &b);
    stats::print_ratio_table("fanout (median, min–max over rounds)", &rows);
    let delivery = stats::Spread::of(&g.iter().map(|f| f.delivery_ms.p99).collect::<Vec<_>>());
    let per_s = stats::Spread::of(&g.iter().map(|f| f.deliveries_per_s).collect::<Vec<_>>());
    println!("  deliveries/s {}   submit-to-delivery p99 ms {}", per_s.show(0), delivery.show(2));
    Ok(
        json!({"scenario": "fanout", "gateway": g, "baseline": b, "ratios": rows, "deliveries_per_s": per_s, "delivery_p99_ms": delivery}),
    )
}

/// A plan padded with standards until its canonical document is about `bytes` long.
fn padded_plan(t: &Templates, region: &str, bytes: usize) -> Record {
    let mut r = t.plan.clone();
    if let Record::Plan(p) = &mut r {
        p.lead_region = region.into();
        p.participants = vec![yrdx_proto::v1::PlanParticipant { region: region.into(), quota: 1 }];
        // About 24 bytes per standard in the canonical JSON.
        let n = bytes.saturating_sub(900) / 24;
        p.standards = (0..n).map(|i| format!("GB/T {:05}.1-2024", i % 100_000)).collect();
    }
    r
}

/// `docsize`: 1 KB → 1 MB documents (Shanghai's canonical plans, no recipients).
pub async fn docsize_scenario(env: &Environment, settings: &Settings) -> Result<Value, String> {
    let templates = Templates::load()?;
    let plan = Plan { submitters: vec!["shanghai"], receivers: vec![], seed_mixed: false };
    let sizes: &[usize] = if settings.smoke { &[1_000, 100_000] } else { &[1_000, 10_000, 100_000, 1_000_000] };
    let mut out = Vec::new();
    for &size in sizes {
        let t = templates.clone();
        let make: DocMaker = Arc::new(move |c: &BenchClient, seq: u64| {
            let mut r = padded_plan(&t, &c.region, size);
            if let Record::Plan(p) = &mut r {
                p.plan_id = format!("BD-{}-{seq}", c.index);
            }
            setup::document(c, format!("D{size}-{}-{seq}", c.index), &[r])
        });
        println!("docsize {size} bytes");
        let (g, b) =
            alternate(env, &format!("docsize{size}"), &plan, settings, &spec(settings, make), &templates).await?;
        let rows = stats::ratio_rows(&g, &b);
        stats::print_ratio_table(&format!("docsize {size} bytes (median, min–max over rounds)"), &rows);
        out.push(json!({"bytes": size, "gateway": g, "baseline": b, "ratios": rows}));
    }
    Ok(json!({"scenario": "docsize", "sizes": out}))
}

/// `batch`: 1 → 500 records per document (Zhejiang's risk alerts, delivered to Shanghai and
/// Jiangsu).
pub async fn batch_scenario(env: &Environment, settings: &Settings) -> Result<Value, String> {
    let templates = Templates::load()?;
    let plan = Plan { submitters: vec!["zhejiang"], receivers: vec!["shanghai", "jiangsu"], seed_mixed: false };
    let batches: &[usize] = if settings.smoke { &[1, 100] } else { &[1, 10, 100, 500] };
    let mut out = Vec::new();
    for &n in batches {
        let t = templates.clone();
        let make: DocMaker = Arc::new(move |c: &BenchClient, seq: u64| {
            let records: Vec<Record> =
                (0..n).map(|k| t.risk_signal(&format!("FX-B{n}-{}-{seq}-{k}", c.index))).collect();
            setup::document(c, format!("B{n}-{}-{seq}", c.index), &records)
        });
        println!("batch {n} records per document");
        let (g, b) = alternate(env, &format!("batch{n}"), &plan, settings, &spec(settings, make), &templates).await?;
        let mut rows = stats::ratio_rows(&g, &b);
        let rec = |f: &[RunFigures]| stats::Spread::of(&f.iter().map(|x| x.records_per_s).collect::<Vec<_>>());
        let ratios: Vec<f64> = g.iter().zip(&b).map(|(g, b)| g.records_per_s / b.records_per_s.max(1e-9)).collect();
        rows.insert(
            0,
            stats::RatioRow {
                figure: "records/s".into(),
                gateway: rec(&g),
                baseline: rec(&b),
                ratio: stats::Spread::of(&ratios),
            },
        );
        stats::print_ratio_table(&format!("batch of {n} (median, min–max over rounds)"), &rows);
        out.push(json!({"records_per_document": n, "gateway": g, "baseline": b, "ratios": rows}));
    }
    Ok(json!({"scenario": "batch", "batches": out}))
}

/// Fills a fresh store with `n` pending deliveries for Jiangsu (bulk, before the gateway starts).
fn seed_backlog(store: &SqliteStore, n: usize, templates: &Templates) -> Result<(), String> {
    let doc = {
        let plan = templates.plan.clone();
        let envelope = yrdx_proto::v1::Envelope {
            message_id: "BACKLOG".into(),
            sender: "310000".into(),
            receiver: "320000".into(),
            sent_at: yrdx_proto::civil::parse_rfc3339("2024-03-15T10:30:00+08:00"),
        };
        yrdx_adapters::Partner::Jiangsu.encode(&envelope, &[plan], 1).map_err(|e| e.to_string())?.bytes
    };
    seed_in_batches(store, n, "seeding the backlog", "deliveries", |m, count| Submission {
        sender: "310000".into(),
        message_id: format!("BACKLOG-{m}"),
        digest: format!("backlog-{m}"),
        document: vec![],
        reply: vec![],
        records: vec![],
        deliveries: (0..count)
            .map(|k| NewDelivery {
                recipient: "320000".into(),
                message_id: format!("BACKLOG-{m}-{k}"),
                document: doc.clone(),
            })
            .collect(),
        samr: vec![],
        received_at_ms: 0,
    })
}

/// How fast one receiver drains a mailbox of `n` pending deliveries.
async fn drain_rate(env: &Environment, tag: &str, n: usize, templates: &Templates) -> Result<(f64, f64, f64), String> {
    let config = env.config_for(tag)?;
    let started = Instant::now();
    seed_backlog(&SqliteStore::open(&env.store_for(tag)).map_err(|e| e.to_string())?, n, templates)?;
    let seeded = started.elapsed().as_secs_f64();
    let server = ServerProcess::start(Side::Gateway, &config)?;
    let receiver = env.clients(server.addr, &["jiangsu"], 1).await?.remove(0);
    // One receiver takes everything, acknowledging in batches: time it until the mailbox is empty.
    let mut count = 0usize;
    let t0 = Instant::now();
    let mut client = yrdx_proto::v1::exchange_client::ExchangeClient::new(receiver.channel.clone())
        .max_decoding_message_size(64 << 20);
    let mut stream = client
        .receive(yrdx_proto::v1::ReceiveRequest { max_unacked: 1000 })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let mut pending = Vec::new();
    while count < n {
        match tokio::time::timeout(Duration::from_secs(10), stream.message()).await {
            Ok(Ok(Some(d))) => {
                count += 1;
                pending.push(d.delivery_id);
                if pending.len() >= 500 {
                    client
                        .ack(yrdx_proto::v1::AckRequest { delivery_ids: std::mem::take(&mut pending) })
                        .await
                        .map_err(|s| s.message().to_string())?;
                }
            }
            _ => break,
        }
    }
    if !pending.is_empty() {
        let _ = client.ack(yrdx_proto::v1::AckRequest { delivery_ids: pending }).await;
    }
    let took = t0.elapsed().as_secs_f64();
    let got = count as f64;
    let (rss, _) = server.usage();
    println!("  backlog {n}: seeded in {seeded:.1} s; drained {got:.0} in {took:.2} s = {:.0} deliveries/s (peak RSS {:.1} MB)", got / took, rss as f64 / 1e6);
    Ok((got / took, got, rss as f64 / 1e6))
}

/// `backlog`: Receive drains 100 000 pending deliveries, against a small backlog's rate.
pub async fn backlog_scenario(env: &Environment, settings: &Settings) -> Result<Value, String> {
    let templates = Templates::load()?;
    // A tenth of the backlog: long enough to reach steady state, small enough to be "no backlog".
    let small = (settings.backlog / 10).max(500);
    println!("backlog: one Jiangsu receiver drains {small} then {} pending deliveries", settings.backlog);
    let mut small_rates = Vec::new();
    let mut big_rates = Vec::new();
    let mut rss: f64 = 0.0;
    for round in 0..settings.rounds {
        let (s, _, _) = drain_rate(env, &format!("backlog-small-{round}"), small, &templates).await?;
        let (b, got, r) = drain_rate(env, &format!("backlog-big-{round}"), settings.backlog, &templates).await?;
        if (got as usize) < settings.backlog {
            return Err(format!("only {got} of {} deliveries drained", settings.backlog));
        }
        small_rates.push(s);
        big_rates.push(b);
        rss = rss.max(r);
    }
    let big = stats::Spread::of(&big_rates);
    let small_s = stats::Spread::of(&small_rates);
    println!(
        "\nbacklog drain (median, min–max): {} deliveries/s with {} pending; {} with {small} pending",
        big.show(0),
        settings.backlog,
        small_s.show(0)
    );
    let ratios: Vec<f64> = big_rates.iter().zip(&small_rates).map(|(b, s)| b / s).collect();
    let targets = vec![
        target(
            &format!("Receive drain rate, {} pending (deliveries/s)", settings.backlog),
            big.median,
            ">= 10000",
            big.median >= 10_000.0,
        ),
        target("gateway peak RSS (MB)", rss, "<= 200", rss <= 200.0),
    ];
    print_targets(&targets);
    // Not a target of its own: how much a big backlog slows the drain against a tenth of it.
    let slowdown = stats::Spread::of(&ratios);
    println!("  drain rate with {} pending / with {small} pending: {}", settings.backlog, slowdown.show(3));
    Ok(
        json!({"scenario": "backlog", "big_over_small": slowdown, "pending": settings.backlog, "drain_per_s": big, "small_backlog": small, "small_drain_per_s": small_s, "targets": targets}),
    )
}

/// Fills a fresh store with `n` sampling records of other products (bulk, before the gateway
/// starts), as a year of exchange would.
fn seed_records(store: &SqliteStore, n: usize, templates: &Templates) -> Result<(), String> {
    seed_in_batches(store, n, "seeding the store", "records", |m, count| {
        let records = (0..count)
            .map(|k| {
                let i = m * PER_SEED_MESSAGE + k;
                let mut r = templates.sampling_of(PARTNERS[i % 4].1, &format!("OLD-{i}"));
                if let Record::Sampling(s) = &mut r {
                    s.plan_id = format!("OLD-PLAN-{}", i % 500);
                    if let Some(p) = &mut s.product {
                        p.model = format!("M-{i}");
                    }
                    if let Some(p) = &mut s.producer {
                        p.uscc = format!("{}", i % 10_000);
                    }
                }
                StoredRecord { kind: r.kind(), id: format!("OLD-{i}"), keys: LookupKeys::of(&r), record: r }
            })
            .collect();
        Submission {
            sender: "320000".into(),
            message_id: format!("OLD-{m}"),
            digest: format!("old-{m}"),
            document: vec![],
            reply: vec![],
            records,
            deliveries: vec![],
            samr: vec![],
            received_at_ms: 0,
        }
    })
}

/// `bigstore`: Submit latency at a fixed rate with 1 000 000 records stored, against an empty
/// store's, alternately.
pub async fn bigstore_scenario(env: &Environment, settings: &Settings) -> Result<Value, String> {
    let templates = Templates::load()?;
    let all: Vec<&'static str> = PARTNERS.iter().map(|(n, ..)| *n).collect();
    let plan = Plan { submitters: all.clone(), receivers: all, seed_mixed: true };
    let rate = if settings.smoke { 50.0 } else { 200.0 };
    println!(
        "bigstore: mixed load at {rate} submissions/s on an empty store and on one holding {} records",
        settings.bigstore
    );
    let seeded_tag = "bigstore-seeded";
    let started = Instant::now();
    {
        let _ = env.config_for(seeded_tag)?;
        let store = SqliteStore::open(&env.store_for(seeded_tag)).map_err(|e| e.to_string())?;
        seed_records(&store, settings.bigstore, &templates)?;
    }
    println!("  seeded {} records in {:.1} s", settings.bigstore, started.elapsed().as_secs_f64());
    let mut open = spec(settings, mixed_maker(&templates, "G"));
    open.rate = Some(rate);
    let (mut empty, mut big) = (Vec::new(), Vec::new());
    for round in 0..settings.rounds {
        open.make = mixed_maker(&templates, &format!("E{round}"));
        let e = run_side(env, Side::Gateway, &format!("bigstore-empty-{round}"), &plan, settings, &open, &templates)
            .await?;
        stats::print_run(&format!("round {} empty store", round + 1), &e);
        // The seeded store is reused (its records are what matter); new ids every round.
        open.make = mixed_maker(&templates, &format!("S{round}"));
        let config = env.dir.join(format!("yrdx-{seeded_tag}.toml"));
        let server = ServerProcess::start(Side::Gateway, &config)?;
        let clients = env.clients(server.addr, &plan.submitters, settings.clients_per_partner).await?;
        if round == 0 {
            seed_mixed(&clients, &templates).await?;
        }
        let receivers = env.clients(server.addr, &plan.receivers, 1).await?;
        let mut s = open.clone();
        s.receivers = receivers.into_iter().map(|c| (c.partner, c.channel)).collect();
        let b = load::run("gateway", &clients, &s, &|| server.usage()).await;
        stats::print_run(&format!("round {} {} records", round + 1, settings.bigstore), &b);
        empty.push(e);
        big.push(b);
    }
    let p99 = |f: &[RunFigures]| stats::Spread::of(&f.iter().map(|x| x.submit_ms.p99).collect::<Vec<_>>());
    let ratios: Vec<f64> = big.iter().zip(&empty).map(|(b, e)| b.submit_ms.p99 / e.submit_ms.p99.max(1e-9)).collect();
    let ratio = stats::Spread::of(&ratios);
    println!(
        "\nbigstore Submit p99 ms (median, min–max): empty {}   {} records {}   ratio {}",
        p99(&empty).show(2),
        settings.bigstore,
        p99(&big).show(2),
        ratio.show(3)
    );
    let targets = vec![target("bigstore p99 / empty p99", ratio.median, "<= 1.5", ratio.median <= 1.5)];
    print_targets(&targets);
    Ok(
        json!({"scenario": "bigstore", "records": settings.bigstore, "rate": rate, "empty": empty, "big": big, "p99_ratio": ratio, "targets": targets}),
    )
}

/// Writes `n` seeded items (deliveries or records) straight into the store, `PER_SEED_MESSAGE` to
/// a submission made by `make(message number, items in it)`, 20 submissions to a transaction, with
/// progress on stderr.
fn seed_in_batches(
    store: &SqliteStore,
    n: usize,
    what: &str,
    unit: &str,
    mut make: impl FnMut(usize, usize) -> Submission,
) -> Result<(), String> {
    let progress = Progress::on_stderr(what, unit, n as u64);
    let mut batch = Vec::new();
    for m in 0..n.div_ceil(PER_SEED_MESSAGE) {
        batch.push(make(m, PER_SEED_MESSAGE.min(n - m * PER_SEED_MESSAGE)));
        if batch.len() == 20 {
            store.bulk_commit(&batch).map_err(|e| e.to_string())?;
            batch.clear();
            progress.set(((m + 1) * PER_SEED_MESSAGE).min(n) as u64);
        }
    }
    store.bulk_commit(&batch).map_err(|e| e.to_string())?;
    progress.set(n as u64);
    progress.finish();
    Ok(())
}

/// Items per seeded submission.
const PER_SEED_MESSAGE: usize = 1000;
