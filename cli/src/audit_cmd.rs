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
        #[arg(long)]
        config: String,
        /// The gateway's signing certificate (default: `[evidence] cert` of the configuration).
        #[arg(long)]
        cert: Option<String>,
    },
    /// Write entries (and the signed heads among them) as JSON lines with their proofs.
    Export {
        /// The gateway's configuration (its `store`).
        #[arg(long)]
        config: String,
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
    let config_path = match &command {
        AuditCommand::Verify { config, .. } | AuditCommand::Export { config, .. } => config.clone(),
    };
    let config = match yrdx_gateway::config::Config::load(std::path::Path::new(&config_path)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("yrdx audit: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async move {
        let store = match yrdx_gateway::store::open(&config.store_location(), &config.postgres.options()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("yrdx audit: the store {}: {e}", config.store_location());
                return ExitCode::from(2);
            }
        };
        match command {
            AuditCommand::Verify { cert, .. } => {
                let cert_path = match (cert, &config.evidence) {
                    (Some(c), _) => std::path::PathBuf::from(c),
                    (None, Some(e)) => config.resolve(&e.cert),
                    (None, None) => {
                        eprintln!("yrdx audit verify: no --cert and no [evidence] cert in {config_path}");
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
