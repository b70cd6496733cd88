//! The `yrdx` command.

#![forbid(unsafe_code)]

mod audit_cmd;
mod conformance_cmd;
mod demo;
mod demo_live;
mod progress;
mod receipt_cmd;
mod store_cmd;
mod translate;
mod validate;

use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::process::ExitCode;
use translate::{TranslateRequest, EXIT_USAGE};
use validate::validate_document;
use yrdx_adapters::{DecodeLimits, Partner};
use yrdx_proto::civil::{parse_rfc3339, BeijingTime};
use yrdx_proto::Timestamp;

/// yrdx — the Yangtze River Delta exchange gateway.
#[derive(Parser)]
#[command(name = "yrdx", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Translate partner documents into another partner's format (losses on stderr).
    Translate {
        /// Source format: jiangsu, zhejiang, beijing, samr or canonical.
        #[arg(long)]
        from: String,
        /// Target format: jiangsu, zhejiang, beijing, samr or canonical.
        #[arg(long)]
        to: String,
        /// Message id of the output (default: generated).
        #[arg(long)]
        message_id: Option<String>,
        /// Sending time of the output, RFC 3339 (default: now).
        #[arg(long)]
        sent_at: Option<String>,
        /// Sender of the output.
        #[arg(long, default_value = "310000")]
        sender: String,
        /// SAMR package sequence number of the day (1–9999).
        #[arg(long, default_value_t = 1)]
        sequence: u32,
        /// Input documents (standard input when none).
        files: Vec<String>,
    },
    /// Show the exchange at work: a live gateway over mutual TLS with simulated partners.
    Demo {
        /// Folder for the PKI, configuration and store (recreated on every run).
        #[arg(long, default_value = "state/demo")]
        state_dir: String,
        /// Only translate the partners' examples into each other, without a gateway.
        #[arg(long)]
        offline: bool,
    },
    /// Development PKI: a CA, server and client certificates, and a ready configuration.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
    /// Run the gateway.
    Serve {
        /// The configuration file (see docs/operations.md).
        #[arg(long)]
        config: String,
    },
    /// Conformance suites, coverage and simulators (see docs/conformance.md).
    Conformance {
        #[command(subcommand)]
        command: Box<conformance_cmd::ConformanceCommand>,
    },
    /// The store: move it to another backend (`yrdx store copy --from yrdx.sqlite --to postgres://…`).
    Store {
        #[command(subcommand)]
        command: store_cmd::StoreCommand,
    },
    /// The audit chain: verify it against the stored documents and signed heads, or export it.
    Audit {
        #[command(subcommand)]
        command: audit_cmd::AuditCommand,
    },
    /// Signed receipts: verify one with the gateway's certificate (see docs/operations.md).
    Receipt {
        #[command(subcommand)]
        command: receipt_cmd::ReceiptCommand,
    },
    /// Check partner documents against their interface document and the domain rules.
    Validate {
        /// The documents' format: jiangsu, zhejiang, beijing, samr or canonical.
        #[arg(long)]
        partner: String,
        /// Documents to check.
        #[arg(required = true)]
        files: Vec<String>,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Write a development CA, a server certificate for localhost, a client certificate per
    /// partner and an operator, and yrdx.toml, into a folder.
    Init {
        /// The folder to write.
        #[arg(long)]
        dir: String,
        /// The address the written configuration listens on.
        #[arg(long, default_value = "127.0.0.1:7443")]
        listen: String,
        /// Replace a CA the folder already holds (every certificate it issued stops working).
        #[arg(long)]
        force: bool,
    },
    /// Issue the server and client certificates of a development PKI again (one more year),
    /// with its CA; yrdx.toml is left as it is.
    Renew {
        /// The folder `yrdx pki init` wrote.
        #[arg(long)]
        dir: String,
    },
}

fn serve(config_path: &str) -> ExitCode {
    let config = match yrdx_gateway::config::Config::load(std::path::Path::new(config_path)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("yrdx serve: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("yrdx serve: {e}");
            return ExitCode::from(1);
        }
    };
    // Inside the runtime: the span export's gRPC channel runs on it.
    let telemetry = match runtime.block_on(async { yrdx_gateway::otlp::install(config.log_format, &config.tracing) }) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("yrdx serve: {e}");
            return ExitCode::from(2);
        }
    };
    let grace = std::time::Duration::from_secs(config.shutdown_grace_secs);
    let code = runtime.block_on(async move {
        let running = match yrdx_gateway::server::start(config).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("yrdx serve: {e}");
                return ExitCode::from(1);
            }
        };
        let stop = running.shutdown_handle();
        let mut stopping = stop.subscribe();
        #[cfg(unix)]
        {
            // SIGHUP reloads (the gateway logs what it put in force, or why it refused).
            let reloader = running.reloader();
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(mut hangup) => {
                    tokio::spawn(async move {
                        while hangup.recv().await.is_some() {
                            let _ = reloader.reload().await;
                        }
                    });
                }
                Err(e) => eprintln!("yrdx serve: SIGHUP cannot be handled ({e}): reload with Admin.Reload"),
            }
        }
        tokio::spawn(async move {
            wait_for_signal().await;
            let _ = stop.send(true);
        });
        // A graceful stop waits for in-flight calls, but never longer than the grace period.
        let deadline = async move {
            let _ = stopping.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = running.wait() => match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("yrdx serve: {e}");
                    ExitCode::from(1)
                }
            },
            () = deadline => {
                eprintln!("yrdx serve: calls still in flight {} s after the stop signal (shutdown_grace_secs): stopping anyway", grace.as_secs());
                ExitCode::SUCCESS
            }
        }
    });
    // The last spans go to the collector while the runtime (their channel's) still runs.
    if let Err(e) = telemetry.shutdown() {
        eprintln!("yrdx serve: {e}");
    }
    // Blocking work still running is abandoned, not waited for (dropping the runtime would wait).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn usage(message: String) -> ExitCode {
    eprintln!("yrdx: {message}");
    ExitCode::from(EXIT_USAGE as u8)
}

fn partner(name: &str, flag: &str) -> Result<Partner, String> {
    Partner::from_name(name)
        .ok_or_else(|| format!("--{flag} {name}: expected one of jiangsu, zhejiang, beijing, samr, canonical"))
}

fn read_inputs(files: &[String]) -> Result<Vec<(String, Vec<u8>)>, String> {
    if files.is_empty() {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(|e| format!("standard input: {e}"))?;
        return Ok(vec![("<stdin>".into(), buf)]);
    }
    files.iter().map(|f| std::fs::read(f).map(|b| (f.clone(), b)).map_err(|e| format!("{f}: {e}"))).collect()
}

fn now() -> Timestamp {
    use yrdx_clock::Clock;
    yrdx_clock::SystemClock.now()
}

fn generated_message_id(at: &Timestamp) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("YRDX-{}-{:06}", BeijingTime::of(at).to_compact(), (nanos / 1000 + std::process::id()) % 1_000_000)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                receipt_cmd::usage_exit_code(conformance_cmd::usage_exit_code(EXIT_USAGE))
            } else {
                0
            };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    match cli.command {
        Command::Translate { from, to, message_id, sent_at, sender, sequence, files } => {
            let (from, to) = match (partner(&from, "from"), partner(&to, "to")) {
                (Ok(f), Ok(t)) => (f, t),
                (Err(e), _) | (_, Err(e)) => return usage(e),
            };
            let sent_at = match sent_at {
                Some(text) => match parse_rfc3339(&text) {
                    Some(t) => t,
                    None => {
                        return usage(format!(
                            "--sent-at {text}: expected RFC 3339 with an offset, e.g. 2024-03-12T14:30:00+08:00"
                        ))
                    }
                },
                None => now(),
            };
            let inputs = match read_inputs(&files) {
                Ok(i) => i,
                Err(e) => return usage(e),
            };
            let req = TranslateRequest {
                from,
                to,
                message_id: message_id.unwrap_or_else(|| generated_message_id(&sent_at)),
                sent_at,
                sender,
                sequence,
                limits: DecodeLimits::default(),
            };
            let progress = progress::translate(inputs.len());
            let translated =
                translate::translate_with_progress(&req, &inputs, &mut || progress.iter().for_each(|p| p.advance(1)));
            progress.iter().for_each(|p| p.finish());
            match translated {
                Ok(encoded) => {
                    for loss in &encoded.losses {
                        eprintln!("{loss}");
                    }
                    if std::io::stdout().write_all(&encoded.bytes).is_err() {
                        return ExitCode::from(1);
                    }
                    ExitCode::SUCCESS
                }
                Err(failure) => {
                    for line in &failure.lines {
                        eprintln!("{line}");
                    }
                    ExitCode::from(failure.exit_code as u8)
                }
            }
        }
        Command::Pki { command: PkiCommand::Init { dir, listen, force } } => {
            let existing = yrdx_pki::existing_ca(std::path::Path::new(&dir));
            if !existing.is_empty() && !force {
                let files: Vec<String> = existing.iter().map(|p| p.display().to_string()).collect();
                eprintln!(
                    "yrdx pki init: {dir} already holds a CA ({}); replacing it would invalidate every certificate it issued. Give --force to replace it.",
                    files.join(", ")
                );
                return ExitCode::from(1);
            }
            match yrdx_pki::init(std::path::Path::new(&dir), &listen) {
                Ok(pki) => {
                    println!("wrote the development PKI and {}", pki.config.display());
                    println!("run: yrdx serve --config {}", pki.config.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("yrdx pki init: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Pki { command: PkiCommand::Renew { dir } } => match yrdx_pki::renew(std::path::Path::new(&dir)) {
            Ok(names) => {
                println!(
                    "renewed for {} days: {} (restart the gateway and the partners' clients)",
                    yrdx_pki::LEAF_VALIDITY_DAYS,
                    names.join(", ")
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("yrdx pki renew: {e}");
                ExitCode::from(1)
            }
        },
        Command::Serve { config } => serve(&config),
        Command::Store { command } => store_cmd::main(command),
        Command::Receipt { command } => receipt_cmd::main(command),
        Command::Audit { command } => audit_cmd::main(command),
        Command::Conformance { command } => conformance_cmd::main(*command),
        Command::Demo { state_dir, offline } => {
            let result = if offline {
                demo::run_offline()
            } else {
                match tokio::runtime::Runtime::new() {
                    Ok(rt) => rt.block_on(demo_live::run(std::path::Path::new(&state_dir))),
                    Err(e) => Err(e.to_string()),
                }
            };
            match result {
                Ok(account) => {
                    print!("{account}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("yrdx demo: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Validate { partner: p, files } => {
            let p = match partner(&p, "partner") {
                Ok(p) => p,
                Err(e) => return usage(e),
            };
            let inputs = match read_inputs(&files) {
                Ok(i) => i,
                Err(e) => return usage(e),
            };
            let mut failed = false;
            for (name, bytes) in &inputs {
                match validate_document(p, name, bytes, &DecodeLimits::default()) {
                    Ok(line) => println!("{line}"),
                    Err(lines) => {
                        failed = true;
                        for l in lines {
                            eprintln!("{l}");
                        }
                    }
                }
            }
            if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
