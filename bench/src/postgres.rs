//! `postgres`: the submit load on SQLite, on PostgreSQL with one replica and with two (clients
//! spread over both, receivers on the second, so deliveries cross replicas), in one run beside
//! PostgreSQL's own ceiling on this machine — `pgbench` with a single-row insert per transaction at
//! the same client count. Skipped (and said so) without a reachable PostgreSQL and pgbench.

use crate::load;
use crate::load::{BenchClient, DocMaker};
use crate::scenarios::{mixed_maker, print_targets, run_side, seed_mixed, spec, target, Plan, Settings};
use crate::servers::{ServerProcess, Side};
use crate::setup::{self, Environment, Templates, PARTNERS};
use crate::stats::{self, RunFigures};
use serde_json::{json, Value};
use std::process::Command;
use std::sync::Arc;

fn postgres_base() -> String {
    std::env::var("YRDX_BENCH_POSTGRES").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

/// A fresh schema and the store URL that uses it.
async fn schema(tag: &str) -> Result<String, String> {
    let base = postgres_base();
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to {base}: {e}"))?;
    tokio::spawn(connection);
    let schema = format!("yrdx_bench_{}_{}", tag.replace('-', "_"), std::process::id());
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"))
        .await
        .map_err(|e| e.to_string())?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}options=-csearch_path%3D{schema}"))
}

async fn drop_schemas() {
    if let Ok((client, connection)) = tokio_postgres::connect(&postgres_base(), tokio_postgres::NoTls).await {
        tokio::spawn(connection);
        let pattern = format!("yrdx_bench_%_{}", std::process::id());
        if let Ok(rows) = client.query("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", &[&pattern]).await {
            for r in rows {
                let name: String = r.get(0);
                let _ = client.batch_execute(&format!("DROP SCHEMA {name} CASCADE")).await;
            }
        }
    }
}

/// pgbench, one single-row insert per transaction, `clients` connections, `seconds` long: tps.
fn pgbench(clients: usize, seconds: u64) -> Result<f64, String> {
    let base = postgres_base();
    let setup = Command::new("psql")
        .args([
            &base,
            "-qc",
            "DROP TABLE IF EXISTS yrdx_pgbench; CREATE TABLE yrdx_pgbench (id BIGSERIAL PRIMARY KEY, v TEXT NOT NULL)",
        ])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if !setup.status.success() {
        return Err(format!("psql: {}", String::from_utf8_lossy(&setup.stderr)));
    }
    let script = std::env::temp_dir().join(format!("yrdx-pgbench-{}.sql", std::process::id()));
    std::fs::write(&script, "INSERT INTO yrdx_pgbench (v) VALUES ('a submission''s worth of nothing');\n")
        .map_err(|e| e.to_string())?;
    let out = Command::new("pgbench")
        .args(["-n", "-c", &clients.to_string(), "-j", "2", "-T", &seconds.max(1).to_string(), "-f"])
        .arg(&script)
        .arg(&base)
        .output()
        .map_err(|e| format!("pgbench: {e}"))?;
    let _ = std::fs::remove_file(&script);
    let _ = Command::new("psql").args([&base, "-qc", "DROP TABLE IF EXISTS yrdx_pgbench"]).output();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("pgbench printed no tps: {text} {}", String::from_utf8_lossy(&out.stderr)))
}

/// The gateway on PostgreSQL with `replicas` processes; clients spread over them, receivers on
/// the last one.
async fn run_replicas(
    env: &Environment,
    tag: &str,
    replicas: usize,
    plan: &Plan,
    settings: &Settings,
    spec: &load::LoadSpec,
    templates: &Templates,
) -> Result<RunFigures, String> {
    let url = schema(tag).await?;
    let mut servers = Vec::new();
    for n in 0..replicas {
        let config = env.config_for(&format!("{tag}-{n}"))?;
        let text = std::fs::read_to_string(&config).map_err(|e| e.to_string())?;
        let text = text
            .lines()
            .map(|l| if l.starts_with("store = ") { format!("store = \"{url}\"") } else { l.to_string() })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        servers.push(ServerProcess::start(Side::Gateway, &config)?);
    }
    let mut clients = Vec::new();
    for s in &servers {
        clients.push(env.clients(s.addr, &plan.submitters, settings.clients_per_partner.div_ceil(replicas)).await?);
    }
    // Interleaved, so that every partner submits through every replica.
    let mut spread = Vec::new();
    let longest = clients.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..longest {
        for c in &clients {
            if let Some(x) = c.get(i) {
                spread.push(x.clone());
            }
        }
    }
    // Each replica's clients are numbered from 0; the ids of their records come from the index,
    // so the spread clients are numbered again (two clients sending one risk signal id were
    // refused as a stale revision).
    for (i, c) in spread.iter_mut().enumerate() {
        c.index = i;
    }
    if plan.seed_mixed {
        seed_mixed(&spread, templates).await?;
    }
    let mut spec = spec.clone();
    let last = servers.last().ok_or("no replica")?;
    let receivers = env.clients(last.addr, &plan.receivers, 1).await?;
    spec.receivers = receivers.into_iter().map(|c| (c.partner, c.channel)).collect();
    let usage = || servers.iter().map(|s| s.usage()).fold((0u64, 0f64), |(rss, cpu), (r, c)| (rss.max(r), cpu + c));
    Ok(load::run(&format!("postgres×{replicas}"), &spread, &spec, &usage).await)
}

/// The scenario.
pub async fn postgres_scenario(env: &Environment, settings: &Settings) -> Result<Value, String> {
    if let Err(why) = schema("probe").await {
        println!("postgres: SKIPPED — {why}");
        return Ok(json!({"scenario": "postgres", "skipped": why}));
    }
    let templates = Templates::load()?;
    let all: Vec<&'static str> = PARTNERS.iter().map(|(n, ..)| *n).collect();
    let plan = Plan { submitters: all.clone(), receivers: all.clone(), seed_mixed: true };
    let in_flight = settings.clients_per_partner * all.len() * settings.concurrency;
    println!(
        "postgres: {} clients per partner × 4 partners, {} in flight each ({in_flight} in all), {} s per run, {} rounds",
        settings.clients_per_partner, settings.concurrency, settings.seconds, settings.rounds
    );
    let (mut sqlite, mut pg1, mut pg2, mut bench) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let load = spec(settings, mixed_maker(&templates, "PG"));
    for round in 0..settings.rounds {
        let f = run_side(env, Side::Gateway, &format!("pg-sqlite-{round}"), &plan, settings, &load, &templates).await?;
        stats::print_run(&format!("round {} sqlite", round + 1), &f);
        sqlite.push(f);
        let f = run_replicas(env, &format!("pg1-{round}"), 1, &plan, settings, &load, &templates).await?;
        stats::print_run(&format!("round {} postgres, 1 replica", round + 1), &f);
        pg1.push(f);
        let f = run_replicas(env, &format!("pg2-{round}"), 2, &plan, settings, &load, &templates).await?;
        stats::print_run(&format!("round {} postgres, 2 replicas", round + 1), &f);
        pg2.push(f);
        match pgbench(in_flight, settings.seconds.ceil() as u64) {
            Ok(tps) => {
                println!(
                    "round {} pgbench: single-row insert per transaction, {in_flight} clients: {tps:.0} tps",
                    round + 1
                );
                bench.push(tps);
            }
            Err(e) => {
                println!("postgres: pgbench failed ({e}): no ceiling to compare with");
            }
        }
    }
    let med =
        |v: &[RunFigures], f: &dyn Fn(&RunFigures) -> f64| stats::Spread::of(&v.iter().map(f).collect::<Vec<_>>());
    let ceiling = stats::Spread::of(&bench);
    let (s1, s2, ss) = (
        med(&pg1, &|f| f.submissions_per_s),
        med(&pg2, &|f| f.submissions_per_s),
        med(&sqlite, &|f| f.submissions_per_s),
    );
    println!(
        "\nsubmissions/s (median, min–max):  sqlite {}   postgres×1 {}   postgres×2 {}   pgbench ceiling {}",
        ss.show(0),
        s1.show(0),
        s2.show(0),
        ceiling.show(0)
    );
    // Open loop at half the two-replica peak: Submit p99, and submit-to-delivery across replicas.
    let rate = (s2.median / 2.0).max(1.0);
    let mut open = spec(settings, mixed_maker(&templates, "PGO"));
    open.rate = Some(rate);
    let og = run_replicas(env, "pg2-open", 2, &plan, settings, &open, &templates).await?;
    stats::print_run(&format!("open loop at {rate:.0}/s, postgres, 2 replicas"), &og);
    // Fan-out across replicas: Jiangsu's risk signals (clients on both replicas), each delivered
    // to Shanghai and Zhejiang reading from the second replica.
    let fan_plan = Plan { submitters: vec!["jiangsu"], receivers: vec!["shanghai", "zhejiang"], seed_mixed: false };
    let t = templates.clone();
    let make: DocMaker = Arc::new(move |c: &BenchClient, seq: u64| {
        let r = t.risk_signal(&format!("FX-PGF{}-{seq}", c.index));
        setup::document(c, format!("PGF-{}-{seq}", c.index), &[r])
    });
    let mut fan_settings = settings.clone();
    fan_settings.clients_per_partner = settings.clients_per_partner * 2;
    let fan = run_replicas(env, "pgfan", 2, &fan_plan, &fan_settings, &spec(&fan_settings, make), &templates).await?;
    stats::print_run("fanout, postgres, 2 replicas (Jiangsu → Shanghai and Zhejiang)", &fan);
    let r1 = if ceiling.median > 0.0 { s1.median / ceiling.median } else { 0.0 };
    let r2 = if ceiling.median > 0.0 { s2.median / ceiling.median } else { 0.0 };
    let rss = pg1.iter().chain(&pg2).chain([&og]).map(|f| f.peak_rss_mb).fold(0.0, f64::max);
    let targets = vec![
        target("gateway submissions/s on PostgreSQL (1 replica) / pgbench ceiling", r1, ">= 0.5", r1 >= 0.5),
        target("gateway submissions/s on PostgreSQL (2 replicas) / pgbench ceiling", r2, ">= 0.5", r2 >= 0.5),
        target("p99 Submit at half the peak, 2 replicas (ms)", og.submit_ms.p99, "<= 20", og.submit_ms.p99 <= 20.0),
        target(
            "p99 submit-to-delivery across replicas at half the peak (ms)",
            og.delivery_ms.p99,
            "<= 50",
            og.delivery_ms.p99 <= 50.0,
        ),
        target("peak RSS of a replica (MB)", rss, "<= 200", rss <= 200.0),
    ];
    print_targets(&targets);
    drop_schemas().await;
    Ok(json!({
        "scenario": "postgres",
        "sqlite": sqlite, "postgres_1": pg1, "postgres_2": pg2,
        "pgbench_tps": bench, "in_flight": in_flight,
        "open_loop": {"rate": rate, "postgres_2": og},
        "fanout_postgres_2": fan,
        "targets": targets,
    }))
}
