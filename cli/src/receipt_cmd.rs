//! `yrdx receipt verify`: checks a receipt the gateway signed, and that a document is the one it
//! was issued for. Exit 0: verified; 1: does not verify (the reason on stderr); 2: usage, or a
//! file that cannot be read or understood.

use clap::Subcommand;
use std::process::ExitCode;
use yrdx_evidence::{verify_receipt, GatewayPublicKey, Receipt};

/// Exit status of a receipt that does not verify.
const EXIT_DOES_NOT_VERIFY: u8 = 1;
/// Exit status of a usage error or an unreadable file.
const EXIT_USAGE: u8 = 2;

/// `yrdx receipt …`.
#[derive(Subcommand)]
pub enum ReceiptCommand {
    /// Check a receipt's SM2 signature with the gateway's certificate and, when a document is
    /// given, that its SM3 is the receipt's (exit 0: verified, 1: does not verify, 2: usage or
    /// unreadable input).
    Verify {
        /// The gateway's signing certificate (or its public key), PEM: `gateway-sign.pem`.
        #[arg(long)]
        cert: String,
        /// The receipt, in its JSON form, or the JSON of Submit's or GetReceipt's reply holding it.
        receipt: String,
        /// The document exactly as it was submitted.
        document: Option<String>,
    },
}

/// The exit status for a command line clap refused: 2 for `yrdx receipt …`, `other` otherwise.
pub fn usage_exit_code(other: i32) -> i32 {
    if std::env::args().nth(1).as_deref() == Some("receipt") {
        i32::from(EXIT_USAGE)
    } else {
        other
    }
}

fn unreadable(message: String) -> ExitCode {
    eprintln!("yrdx receipt verify: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// Runs a `yrdx receipt` command.
pub fn main(command: ReceiptCommand) -> ExitCode {
    let ReceiptCommand::Verify { cert, receipt, document } = command;
    let cert_text = match std::fs::read_to_string(&cert) {
        Ok(text) => text,
        Err(e) => return unreadable(format!("--cert {cert}: {e}")),
    };
    let key = match GatewayPublicKey::from_pem(&cert_text) {
        Ok(key) => key,
        Err(e) => return unreadable(format!("--cert {cert}: {e}")),
    };
    let receipt_text = match std::fs::read_to_string(&receipt) {
        Ok(text) => text,
        Err(e) => return unreadable(format!("{receipt}: {e}")),
    };
    let parsed = match Receipt::from_reply_json(&receipt_text) {
        Ok(parsed) => parsed,
        Err(e) => return unreadable(format!("{receipt}: {e}")),
    };
    let document_bytes = match &document {
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) => return unreadable(format!("{path}: {e}")),
        },
        None => None,
    };
    match verify_receipt(&key, &parsed, document_bytes.as_deref()) {
        Ok(()) => {
            let f = &parsed.fields;
            let at = parsed.accepted_at().unwrap_or_else(|_| format!("{} ms", f.accepted_at_ms));
            println!(
                "verified: {} accepted message {} from {} at {}, audit chain position {} (SM2, distinguishing id '{}')",
                f.gateway, f.message_id, f.sender, at, f.audit_position, parsed.distinguishing_id
            );
            match &document {
                Some(path) => println!("document {path} matches: SM3 {}", f.document_sm3),
                None => println!("no document given: its SM3 should be {}", f.document_sm3),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("yrdx receipt verify: does not verify: {e}");
            ExitCode::from(EXIT_DOES_NOT_VERIFY)
        }
    }
}
