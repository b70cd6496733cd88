//! `yrdx audit verify` and `yrdx audit export`: the audit chain of a gateway's store, checked
//! with the gateway's signing certificate, or written out with its proofs.

use clap::Subcommand;
use std::process::ExitCode;

/// `yrdx audit …`.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the whole chain and its signed heads, and check every stored original document
    /// against its entry; report the first entry that does not verify (exit 1).
    Verify {
        /// The gateway's configuration (its `store` and `[evidence] cert`).
        #[arg(long, required_unless_present = "store")]
        config: Option<String>,
        /// The store itself (a SQLite file or a postgres:// URL), instead of `--config`; then
        /// `--cert` is needed.
        #[arg(long, conflicts_with = "config")]
        store: Option<String>,
        /// The gateway's signing certificate (default: `[evidence] cert` of the configuration).
        #[arg(long)]
        cert: Option<String>,
    },
    /// Write entries (and the signed heads among them) as JSON lines with their proofs.
    Export {
        /// The gateway's configuration (its `store`).
        #[arg(long, required_unless_present = "store")]
        config: Option<String>,
        /// The store itself (a SQLite file or a postgres:// URL), instead of `--config`.
        #[arg(long, conflicts_with = "config")]
        store: Option<String>,
        /// First position (default 0).
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Last position (default: the chain's end).
        #[arg(long)]
        to: Option<u64>,
    },
}

/// Runs an audit command: 0 verified (or written), 1 a fault was found, 2 usage or store errors.
pub fn main(command: AuditCommand) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("yrdx audit: {e}");
            return ExitCode::from(2);
        }
    };
    let (config_path, store_arg) = match &command {
        AuditCommand::Verify { config, store, .. } | AuditCommand::Export { config, store, .. } => {
            (config.clone(), store.clone())
        }
    };
    let config = match &config_path {
        Some(path) => match yrdx_gateway::config::Config::load(std::path::Path::new(path)) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("yrdx audit: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let location = match (&config, &store_arg) {
        (Some(c), _) => c.store_location(),
        (None, Some(s)) => yrdx_gateway::store::StoreLocation::parse(s, std::path::Path::new(".")),
        (None, None) => {
            eprintln!("yrdx audit: give --config or --store");
            return ExitCode::from(2);
        }
    };
    if let yrdx_gateway::store::StoreLocation::Sqlite(p) = &location {
        if !p.exists() {
            eprintln!("yrdx audit: the store {}: no such file", p.display());
            return ExitCode::from(2);
        }
    }
    runtime.block_on(async move {
        let options = config.as_ref().map(|c| c.postgres.options()).unwrap_or_default();
        let store = match yrdx_gateway::store::open(&location, &options).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("yrdx audit: the store {location}: {e}");
                return ExitCode::from(2);
            }
        };
        match command {
            AuditCommand::Verify { cert, .. } => {
                let from_config = config.as_ref().and_then(|c| c.evidence.as_ref().map(|e| c.resolve(&e.cert)));
                let cert_path = match (cert, from_config) {
                    (Some(c), _) => std::path::PathBuf::from(c),
                    (None, Some(p)) => p,
                    (None, None) => {
                        eprintln!("yrdx audit verify: no --cert, and no [evidence] cert in a --config");
                        return ExitCode::from(2);
                    }
                };
                let key = match std::fs::read_to_string(&cert_path)
                    .map_err(|e| e.to_string())
                    .and_then(|pem| yrdx_evidence::GatewayPublicKey::from_pem(&pem).map_err(|e| e.to_string()))
                {
                    Ok(k) => k,
                    Err(e) => {
                        eprintln!("yrdx audit verify: {}: {e}", cert_path.display());
                        return ExitCode::from(2);
                    }
                };
                let report = match yrdx_gateway::receipts::verify_store(store.as_ref(), &key).await {
                    Ok(r) => r,
                    Err(e) => {
                        eprintln!("yrdx audit verify: {e}");
                        return ExitCode::from(2);
                    }
                };
                match &report.fault {
                    None => {
                        println!(
                            "audit chain verified: {} entries, {} signed heads (last signed position {}), {} entries after the last head",
                            report.entries_verified,
                            report.heads_verified,
                            report.last_signed_position.map(|p| p.to_string()).unwrap_or_else(|| "none".into()),
                            report.unsigned_entries()
                        );
                        ExitCode::SUCCESS
                    }
                    Some(fault) => {
                        println!("audit chain does NOT verify: {} at position {}: {fault:?}", fault.kind(), fault.position());
                        println!("({} entries verified before it)", report.entries_verified);
                        ExitCode::from(1)
                    }
                }
            }
            AuditCommand::Export { from, to, .. } => {
                let mut out = std::io::stdout().lock();
                match yrdx_gateway::receipts::export_range(store.as_ref(), from, to, &mut out).await {
                    Ok(n) => {
                        eprintln!("{n} lines written");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("yrdx audit export: {e}");
                        ExitCode::from(2)
                    }
                }
            }
        }
    })
}
