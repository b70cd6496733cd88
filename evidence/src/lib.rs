//! yrdx evidence: what lets every party prove afterwards what was sent, when, and that it was
//! accepted.
//!
//! - [`receipt`]: the receipt Submit answers with, signed with the gateway's SM2 key (GM/T 0003,
//!   SM3 digest, a distinguishing identifier), and its verification — by this crate, or by a
//!   partner with OpenSSL alone (the signed bytes are plain text, see [`receipt::Receipt::signed_bytes`]).
//! - [`chain`]: the SM3 audit chain — the events that change what the exchange holds, each entry
//!   hashing the previous one, chain heads signed every N entries or M seconds, the verifier that
//!   names the first entry that does not verify and why, and the JSON-lines export.
//! - [`keys`]: the gateway's SM2 signing key (PKCS#8 PEM), its public key from a certificate or a
//!   public-key PEM, and a self-signed SM2-with-SM3 certificate for it.
//!
//! - `Receipt::to_proto` and `Receipt::from_proto`: the API's `yrdx.v1.Receipt`.
//!
//! Everything here is pure (no I/O, no clock): the store supplies positions, times and stored
//! documents; the gateway supplies the key.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod chain;
pub mod digest;
pub mod keys;
pub mod receipt;
mod sm2_fixed_base;
mod text;
pub mod time;
mod wire;

pub use chain::{
    export_jsonl, import_jsonl, verify_chain, verify_chain_from, verify_export, AuditEntry, AuditEvent, ChainError,
    ChainFault, ChainHead, ChainReport, HeadPolicy, SamrPackageAction, SignedHead,
};
pub use digest::Sm3Digest;
pub use keys::{GatewayPublicKey, GatewaySigningKey, KeyError, CERTIFICATE_DISTINGUISHING_ID};
pub use receipt::{sign_receipt, verify_receipt, Receipt, ReceiptError, ReceiptFields};

/// The distinguishing identifier GM/T 0009 gives as the default (`1234567812345678`), used when
/// the configuration names none; OpenSSL 3 uses it too when told `-pkeyopt distid:1234567812345678`.
pub const DEFAULT_DISTINGUISHING_ID: &str = "1234567812345678";
