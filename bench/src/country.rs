//! `country`: every provincial bureau on one gateway. The registry holds the 31 provincial-level
//! regions of the mainland (the four programme partners under their own names and formats, the
//! other 27 spread over the four partner formats) and SAMR's outbox; every partner submits the
//! mixed load and drains its mailbox at once; the risk signals are nationwide, so each goes to
//! every other risk partner and to SAMR. Then the fan-out cost: the same risk-signal load with one
//! recipient and with 31 (30 mailboxes and SAMR's outbox). See docs/benchmarks.md.

use crate::load::{self, BenchClient, DocMaker};
use crate::scenarios::{print_targets, spec, target, Settings};
use crate::servers::{ServerProcess, Side};
use crate::setup::{self, Environment, Templates};
use crate::stats::{self, RunFigures};
use serde_json::{json, Value};
use std::sync::Arc;
use yrdx_adapters::Record;
use yrdx_proto::identifiers::PROVINCE_PREFIXES;
use yrdx_proto::v1::{PlanParticipant, SubmitRequest};

/// The partner formats the other provinces are spread over, in turn.
const FORMATS: [&str; 4] = ["jiangsu", "zhejiang", "beijing", "canonical"];

/// The registry: (name, region, format, takes risk signals) for each of the 31 mainland
/// provincial-level regions. A partner on Beijing's format cannot carry risk signals, so it does
/// not take them; with `risk_capable_only`, those partners use Jiangsu's format instead (the
/// fan-out run needs every province to be a risk partner).
fn registry(risk_capable_only: bool) -> Vec<(String, String, String, bool)> {
    let mut others = 0;
    PROVINCE_PREFIXES[..31]
        .iter()
        .map(|prefix| {
            let region = format!("{prefix}0000");
            let (name, mut format) = match setup::PARTNERS.iter().find(|(_, r, _)| *r == region) {
                Some((n, _, f)) => (n.to_string(), f.to_string()),
                None => {
                    others += 1;
                    (format!("p{region}"), FORMATS[(others - 1) % FORMATS.len()].to_string())
                }
            };
            if risk_capable_only && format == "beijing" {
                format = "jiangsu".into();
            }
            let risk = format != "beijing";
            (name, region, format, risk)
        })
        .collect()
}

/// The names of a registry, for [`Environment::clients`]; leaked once per run of the harness
/// (31 short strings) because the load plans name partners by `&'static str`.
fn names(registry: &[(String, String, String, bool)]) -> Vec<&'static str> {
    registry.iter().map(|(n, ..)| &*Box::leak(n.clone().into_boxed_str())).collect()
}

/// The templates with the bench plans open to every province (so each province's samples are
/// accepted) and nationwide risk signals.
fn country_templates(registry: &[(String, String, String, bool)]) -> Result<Templates, String> {
    let mut t = Templates::load()?;
    if let Record::Plan(p) = &mut t.plan {
        p.participants =
            registry.iter().map(|(_, r, ..)| PlanParticipant { region: r.clone(), quota: 100_000 }).collect();
    }
    if let Record::RiskSignal(s) = &mut t.risk {
        s.nationwide = true;
    }
    Ok(t)
}

/// The mixed load of one province: its own plans (led by it, with Shanghai), samples of the bench
/// plans, results of its seed sample and, where its format carries them, nationwide risk signals.
fn country_maker(t: &Templates, tag: &str) -> DocMaker {
    let (t, tag) = (t.clone(), tag.to_string());
    Arc::new(move |c: &BenchClient, seq: u64| {
        let mut record = t.mixed(c, seq, &tag);
        match &mut record {
            Record::Plan(p) => {
                p.participants = [c.region.as_str(), "310000"]
                    .iter()
                    .map(|r| PlanParticipant { region: r.to_string(), quota: 10 })
                    .collect();
                p.participants.dedup_by(|a, b| a.region == b.region);
            }
            Record::RiskSignal(s) => s.reporting_region = c.region.clone(),
            _ => {}
        }
        setup::document(c, format!("{tag}-{}-{seq}", c.index), &[record])
    })
}

async fn submit(client: &BenchClient, message_id: &str, records: &[Record]) -> Result<(), String> {
    let doc = setup::document(client, message_id.to_string(), records);
    let mut c = yrdx_proto::v1::exchange_client::ExchangeClient::new(client.channel.clone());
    c.submit(SubmitRequest { document: doc.bytes })
        .await
        .map(|_| ())
        .map_err(|s| format!("seed {message_id} from {}: {}", client.partner, s.message()))
}

/// The seeds: the bench plans (Shanghai leads them) and one sample per province.
async fn seed(clients: &[BenchClient], t: &Templates) -> Result<(), String> {
    let shanghai = clients.iter().find(|c| c.partner == "shanghai").ok_or("no shanghai client")?;
    submit(shanghai, "SEED-PLANS", &t.bench_plans()).await?;
    let mut seeded = std::collections::BTreeSet::new();
    for c in clients {
        if seeded.insert(c.region.clone()) {
            let sample = t.sampling_of(&c.region, &Templates::seed_sample_id(&c.region));
            submit(c, &format!("SEED-{}", c.region), &[sample]).await?;
        }
    }
    Ok(())
}

/// One run on a fresh server and store; for the gateway also the store's size after it (bytes).
struct Run {
    figures: RunFigures,
    store_bytes: u64,
}

/// Who takes part in a run: submitters, receivers, and the seeds the mixed load needs (`None`:
/// no seeds).
struct Parties<'a> {
    submitters: &'a [&'static str],
    receivers: &'a [&'static str],
    seeds: Option<&'a Templates>,
}

async fn run(
    env: &Environment,
    side: Side,
    tag: &str,
    parties: &Parties<'_>,
    settings: &Settings,
    make: DocMaker,
) -> Result<Run, String> {
    let name = format!("{tag}-{}", side.name());
    let config = env.config_for(&name)?;
    let server = ServerProcess::start(side, &config)?;
    let clients = env.clients(server.addr, parties.submitters, settings.clients_per_partner).await?;
    let mut load = spec(settings, make);
    if side == Side::Gateway {
        if let Some(t) = parties.seeds {
            seed(&clients, t).await?;
        }
        let receivers = env.clients(server.addr, parties.receivers, 1).await?;
        load.receivers = receivers.into_iter().map(|c| (c.partner, c.channel)).collect();
    }
    let figures = load::run(side.name(), &clients, &load, &|| server.usage()).await;
    drop(server);
    // Opening and closing the store after the server is gone folds its write-ahead log into the
    // file, whose size is then what the run stored (the seeds included).
    let store = env.store_for(&name);
    let store_bytes = if side == Side::Gateway {
        drop(yrdx_gateway::store::SqliteStore::open(&store).map_err(|e| format!("{}: {e}", store.display()))?);
        std::fs::metadata(&store).map(|m| m.len()).unwrap_or(0)
    } else {
        0
    };
    Ok(Run { figures, store_bytes })
}

/// Server CPU microseconds per accepted submission.
fn cpu_us_per_submission(f: &RunFigures) -> f64 {
    if f.submissions == 0 {
        0.0
    } else {
        f.cpu_seconds * 1e6 / f.submissions as f64
    }
}

/// `country`: 31 provinces and SAMR on one box, then the fan-out cost from 1 recipient to 31.
pub async fn country_scenario(env: &Environment, settings: &Settings) -> Result<Value, String> {
    let mut env = Environment::create(&env.dir.join("country"))?;
    let partners = registry(false);
    env.register(&partners)?;
    let all = names(&partners);
    let templates = country_templates(&partners)?;
    let risk_partners = partners.iter().filter(|p| p.3).count();
    println!(
        "country: {} provinces ({} risk partners), one client each with one submission in flight, {} s per run, {} rounds",
        all.len(),
        risk_partners,
        settings.seconds,
        settings.rounds
    );
    // One client per province with one submission in flight: 31 Submits at once, besides the 31
    // Receive streams and their Acks (the bench's in-flight bound is `MAX_REQUESTS_IN_FLIGHT`).
    let one_each = Settings { concurrency: 1, clients_per_partner: 1, ..settings.clone() };
    let (mut g, mut b, mut growth) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..settings.rounds {
        for side in [Side::Gateway, Side::Baseline] {
            let tag = format!("country-{round}");
            let make = country_maker(&templates, &format!("C{round}"));
            let parties = Parties { submitters: &all, receivers: &all, seeds: Some(&templates) };
            let r = run(&env, side, &tag, &parties, &one_each, make).await?;
            stats::print_run(&format!("country round {} {}", round + 1, side.name()), &r.figures);
            if side == Side::Gateway {
                let per_submission = r.store_bytes as f64 / r.figures.submissions.max(1) as f64;
                growth.push(per_submission);
                g.push(r.figures);
            } else {
                b.push(r.figures);
            }
        }
    }
    let rows = stats::ratio_rows(&g, &b);
    stats::print_ratio_table("country: 31 provinces at once (median, min–max over rounds)", &rows);
    let median = |v: Vec<f64>| stats::Spread::of(&v).median;
    let subs = median(g.iter().map(|f| f.submissions_per_s).collect());
    let dels = median(g.iter().map(|f| f.deliveries_per_s).collect());
    let p99 = median(g.iter().map(|f| f.delivery_ms.p99).collect());
    let rss = g.iter().map(|f| f.peak_rss_mb).fold(0.0, f64::max);
    let bytes_per_submission = median(growth);
    let gb_per_day = bytes_per_submission * subs * 86_400.0 / 1e9;
    println!(
        "  submissions/s {subs:.0}   deliveries/s {dels:.0}   submit-to-delivery p99 {p99:.1} ms   peak RSS {rss:.0} MB\n  \
         store growth {bytes_per_submission:.0} bytes per submission: {gb_per_day:.1} GB per day at {subs:.0} submissions/s"
    );

    // Fan-out: Jiangsu's nationwide risk signals to one risk partner, then to all 30 others and SAMR.
    let mut fan_env = Environment::create(&env.dir.join("fanout"))?;
    let fan_partners = registry(true);
    let fan_names = names(&fan_partners);
    let t = country_templates(&fan_partners)?;
    let sender: &'static str = "jiangsu";
    let mut cost = Vec::new();
    for (recipients, label) in [(1usize, "1 recipient"), (31, "31 recipients")] {
        let mut reg = fan_partners.clone();
        for p in reg.iter_mut() {
            // One recipient: Shanghai alone takes the signals besides the sender; 31: every
            // province does (30 mailboxes besides the sender's), and SAMR's outbox.
            p.3 = p.0 == sender || (recipients > 1 && p.3) || p.0 == "shanghai";
        }
        fan_env.register(&reg)?;
        let receivers: Vec<&'static str> =
            fan_names.iter().copied().filter(|n| reg.iter().any(|p| p.0 == *n && p.3 && p.0 != sender)).collect();
        let mut signal = t.clone();
        if let Record::RiskSignal(s) = &mut signal.risk {
            // One recipient: a local LOW signal (not for SAMR); 31: nationwide (SAMR too).
            s.nationwide = recipients > 1;
        }
        let tag = format!("F{recipients}");
        let make: DocMaker = Arc::new(move |c: &BenchClient, seq: u64| {
            let mut r = signal.risk_signal(&format!("FX-{tag}-{}-{seq}", c.index));
            if let Record::RiskSignal(s) = &mut r {
                s.reporting_region = c.region.clone();
            }
            setup::document(c, format!("{tag}-{}-{seq}", c.index), &[r])
        });
        let mut s = settings.clone();
        s.clients_per_partner = settings.clients_per_partner * 2;
        let parties = Parties { submitters: &[sender], receivers: &receivers, seeds: None };
        let r = run(&fan_env, Side::Gateway, &format!("fan-{recipients}"), &parties, &s, make).await?;
        let mailboxes = receivers.len();
        let samr = if recipients > 1 { 1 } else { 0 };
        stats::print_run(&format!("fanout to {label} ({mailboxes} mailboxes + {samr} SAMR outbox)"), &r.figures);
        cost.push((mailboxes + samr, cpu_us_per_submission(&r.figures), r.figures));
    }
    let growth_ratio = if cost[0].1 > 0.0 { cost[1].1 / cost[0].1 } else { 0.0 };
    println!(
        "  server CPU per submission: {:.0} µs with {} recipient(s), {:.0} µs with {}: ×{growth_ratio:.2}",
        cost[0].1, cost[0].0, cost[1].1, cost[1].0
    );
    let rss = rss.max(cost.iter().map(|c| c.2.peak_rss_mb).fold(0.0, f64::max));
    let targets = vec![
        target("fanout cost per submission, 31 recipients / 1", growth_ratio, "<= 2", growth_ratio <= 2.0),
        target("gateway peak RSS (MB)", rss, "<= 200", rss <= 200.0),
    ];
    print_targets(&targets);
    let fanout: Vec<Value> =
        cost.iter().map(|(n, us, f)| json!({"recipients": n, "cpu_us_per_submission": us, "gateway": f})).collect();
    Ok(json!({
        "scenario": "country",
        "provinces": all.len(),
        "risk_partners": risk_partners,
        "gateway": g,
        "baseline": b,
        "ratios": rows,
        "submissions_per_s": subs,
        "deliveries_per_s": dels,
        "delivery_p99_ms": p99,
        "peak_rss_mb": rss,
        "store_bytes_per_submission": bytes_per_submission,
        "store_gb_per_day": gb_per_day,
        "fanout": fanout,
        "fanout_cost_ratio": growth_ratio,
        "targets": targets,
    }))
}
