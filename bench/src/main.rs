//! `yrdx-bench`: the performance harness. Each scenario runs the gateway and a bare tonic baseline
//! (same rustls mutual TLS, Submit only returns) alternately as child processes, loads them with
//! the same clients and payloads over real mTLS, prints a table with gateway/baseline ratios and
//! writes JSON to the results folder. See docs/benchmarks.md.

mod country;
mod load;
mod postgres;
mod scenarios;
mod servers;
mod setup;
mod stats;

use clap::{Parser, Subcommand};
use scenarios::Settings;
use std::path::PathBuf;
use std::process::ExitCode;

/// The yrdx performance harness.
#[derive(Parser)]
#[command(name = "yrdx-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Seconds per timed run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Alternating rounds (gateway, baseline, gateway, baseline …).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Clients per partner, each with its own certificate.
    #[arg(long, default_value_t = 2)]
    clients: usize,
    /// Submissions in flight per client (closed loop).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Offer this many submissions per second in all (open loop) instead of as fast as the
    /// clients can.
    #[arg(long)]
    rate: Option<f64>,
    /// Stop each run after this many submissions (as well as after --seconds).
    #[arg(long)]
    count: Option<u64>,
    /// Pending deliveries for `backlog`.
    #[arg(long, default_value_t = 100_000)]
    backlog: usize,
    /// Records already stored for `bigstore`.
    #[arg(long, default_value_t = 1_000_000)]
    bigstore: usize,
    /// A 5-second run of every scenario at toy sizes (CI keeps the harness from rotting).
    #[arg(long)]
    smoke: bool,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/bench-results")]
    results: PathBuf,
    /// Working folder (PKI, configurations, stores; recreated).
    #[arg(long, default_value = "target/bench-state")]
    state: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Every partner submits mixed record types; then the open-loop latency run at half the peak.
    Submit(Common),
    /// Risk signals fanned out to every risk partner.
    Fanout(Common),
    /// Documents from 1 KB to 1 MB.
    Docsize(Common),
    /// 1 to 500 records per document.
    Batch(Common),
    /// Receive drains 100 000 pending deliveries.
    Backlog(Common),
    /// Submit latency with 1 000 000 records stored.
    Bigstore(Common),
    /// Submit on SQLite, on PostgreSQL with 1 and 2 replicas, beside pgbench's ceiling.
    Postgres(Common),
    /// The 31 provinces and SAMR on one gateway; fan-out cost from 1 recipient to 31.
    Country(Common),
    /// Every scenario in turn.
    All(Common),
    /// (internal) Serve the gateway of a configuration as a child process.
    #[command(hide = true)]
    ServeGateway {
        #[arg(long)]
        config: PathBuf,
    },
    /// (internal) Serve the baseline as a child process.
    #[command(hide = true)]
    ServeBaseline {
        #[arg(long)]
        config: PathBuf,
    },
}

fn settings(c: &Common) -> Settings {
    if c.smoke {
        // About five seconds of load in all: enough to run every code path.
        return Settings {
            seconds: 0.4,
            rounds: 1,
            clients_per_partner: 1,
            concurrency: 2,
            backlog: 2_000,
            bigstore: 5_000,
            smoke: true,
            rate: c.rate,
            count: c.count,
        };
    }
    Settings {
        seconds: c.seconds,
        rounds: c.rounds.max(1),
        clients_per_partner: c.clients.max(1),
        concurrency: c.concurrency.max(1),
        backlog: c.backlog,
        bigstore: c.bigstore,
        smoke: false,
        rate: c.rate,
        count: c.count,
    }
}

async fn scenario(name: &str, c: &Common) -> Result<(), String> {
    let s = settings(c);
    let env = setup::Environment::create(&c.state.join(name))?;
    let result = match name {
        "submit" => scenarios::submit_scenario(&env, &s).await?,
        "fanout" => scenarios::fanout_scenario(&env, &s).await?,
        "docsize" => scenarios::docsize_scenario(&env, &s).await?,
        "batch" => scenarios::batch_scenario(&env, &s).await?,
        "backlog" => scenarios::backlog_scenario(&env, &s).await?,
        "bigstore" => scenarios::bigstore_scenario(&env, &s).await?,
        "postgres" => postgres::postgres_scenario(&env, &s).await?,
        "country" => country::country_scenario(&env, &s).await?,
        other => return Err(format!("unknown scenario {other}")),
    };
    std::fs::create_dir_all(&c.results).map_err(|e| format!("{}: {e}", c.results.display()))?;
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let path = c.results.join(format!("{name}-{stamp}.json"));
    let doc = serde_json::json!({
        "harness": "yrdx-bench",
        "version": env!("CARGO_PKG_VERSION"),
        "smoke": s.smoke,
        "settings": {"seconds": s.seconds, "rounds": s.rounds, "clients_per_partner": s.clients_per_partner, "concurrency": s.concurrency},
        "machine": machine(),
        "result": result,
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    println!("results: {}", path.display());
    let _ = std::fs::remove_dir_all(&env.dir);
    Ok(())
}

/// The machine, for the results: CPU model and count, memory.
fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("")
        .trim()
        .to_string();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo.lines().next().unwrap_or("").to_string();
    serde_json::json!({"cpu": model, "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "memory": mem})
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("yrdx-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::ServeGateway { config } => {
                let config = yrdx_gateway::config::Config::load(&config).map_err(|e| e.to_string())?;
                servers::serve_gateway(config).await
            }
            Command::ServeBaseline { config } => {
                let config = yrdx_gateway::config::Config::load(&config).map_err(|e| e.to_string())?;
                servers::serve_baseline(&config).await
            }
            Command::All(c) => {
                for name in ["submit", "fanout", "docsize", "batch", "backlog", "bigstore", "postgres", "country"] {
                    println!("\n=== {name}");
                    scenario(name, &c).await?;
                }
                Ok(())
            }
            Command::Submit(c) => scenario("submit", &c).await,
            Command::Fanout(c) => scenario("fanout", &c).await,
            Command::Docsize(c) => scenario("docsize", &c).await,
            Command::Batch(c) => scenario("batch", &c).await,
            Command::Backlog(c) => scenario("backlog", &c).await,
            Command::Bigstore(c) => scenario("bigstore", &c).await,
            Command::Postgres(c) => scenario("postgres", &c).await,
            Command::Country(c) => scenario("country", &c).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yrdx-bench: {e}");
            ExitCode::from(1)
        }
    }
}
