//! `yrdx store copy`: moves a whole store to another backend (an installation outgrowing the
//! embedded SQLite file moves to PostgreSQL) and verifies counts and checksums afterwards.

use clap::Subcommand;
use std::process::ExitCode;
use yrdx_gateway::store::{self, PostgresOptions, StoreLocation};

/// `yrdx store …`.
#[derive(Subcommand)]
pub enum StoreCommand {
    /// Copy every record, delivery, case, package and its state from one store into another
    /// (empty) one, keeping delivery ids; then compare row counts and SHA-256 checksums per table.
    /// Stop the gateway first: rows written during the copy would be missed.
    Copy {
        /// The source: a SQLite file or a postgres:// URL.
        #[arg(long)]
        from: String,
        /// The target (empty, or not yet created): a SQLite file or a postgres:// URL.
        #[arg(long)]
        to: String,
    },
}

/// Runs a store command: 0 copied and verified, 1 the copy does not match, 2 a store could not
/// be opened or written.
pub fn main(command: StoreCommand) -> ExitCode {
    let StoreCommand::Copy { from, to } = command;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("yrdx store copy: {e}");
            return ExitCode::from(2);
        }
    };
    let here = std::path::Path::new(".");
    let (from, to) = (StoreLocation::parse(&from, here), StoreLocation::parse(&to, here));
    if from == to {
        eprintln!("yrdx store copy: --from and --to are the same store ({from})");
        return ExitCode::from(2);
    }
    if let StoreLocation::Sqlite(p) = &from {
        if !p.exists() {
            eprintln!("yrdx store copy: --from {}: no such file", p.display());
            return ExitCode::from(2);
        }
    }
    runtime.block_on(async move {
        let options = PostgresOptions::default();
        let source = match store::open(&from, &options).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("yrdx store copy: --from {from}: {e}");
                return ExitCode::from(2);
            }
        };
        let target = match store::open(&to, &options).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("yrdx store copy: --to {to}: {e}");
                return ExitCode::from(2);
            }
        };
        // One progress per table: a bar on a terminal, a line per tenth elsewhere (stderr).
        let mut current: Option<(&'static str, yrdx_gateway::progress::Progress)> = None;
        let progress = |table: &'static str, rows: u64, total: u64| {
            if current.as_ref().map(|(t, _)| *t) != Some(table) {
                if let Some((_, p)) = current.take() {
                    p.finish();
                }
                current = Some((table, yrdx_gateway::progress::Progress::on_stderr(table, "rows", total)));
            }
            if let Some((_, p)) = &current {
                p.set(rows);
            }
        };
        let copied = store::copy_store(source.as_ref(), target.as_ref(), progress).await;
        if let Some((_, p)) = current.take() {
            p.finish();
        }
        let report = match copied {
            Ok(r) => r,
            Err(e) => {
                eprintln!("yrdx store copy: {e} (the target may hold part of the copy: empty it before trying again)");
                return ExitCode::from(2);
            }
        };
        println!("{:<16} {:>10} {:>10}  sha-256 (source = target)", "table", "source", "target");
        for t in &report.tables {
            let mark = if t.matches() { "" } else { "  MISMATCH" };
            println!("{:<16} {:>10} {:>10}  {}{mark}", t.table, t.source_rows, t.target_rows, t.source_sha256);
        }
        if report.verified() {
            println!("copied {from} to {to}: every table verified");
            ExitCode::SUCCESS
        } else {
            eprintln!("yrdx store copy: the target does not match the source (see MISMATCH above)");
            ExitCode::from(1)
        }
    })
}
