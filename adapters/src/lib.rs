//! # yrdx-adapters
//!
//! Pure translation (no I/O, no async) between yrdx's canonical records ([`yrdx_proto::v1`]) and
//! each partner's native format:
//!
//! | module | partner | format |
//! |---|---|---|
//! | [`jiangsu`] | Jiangsu `320000` | JSON, pinyin-initial keys, every scalar a string |
//! | [`zhejiang`] | Zhejiang `330000` | XML in `urn:zjamr:yrd:exchange:1` |
//! | [`beijing`] | Beijing `110000` | JSON, camelCase, one record per message, online only |
//! | [`samr`] | SAMR | GB18030 XML data packages with an SM3 digest, and receipts |
//! | [`canonical`] | Shanghai `310000` | the canonical records' own JSON form |
//!
//! Every decoder checks the whole document and returns **all** problems with the sender's own field
//! paths ([`Problem`]); every encoder is deterministic and reports what the target had no place for
//! ([`Loss`]). [`Partner`] dispatches by partner.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod beijing;
pub mod canonical;
mod envelope;
mod fields;
pub mod jiangsu;
mod json;
mod json_table;
pub mod model;
pub mod money;
pub mod partner;
mod paths;
mod problems;
pub mod samr;
mod xml;
pub mod zhejiang;

pub use model::{
    CaseForward, DecodeError, DecodeLimits, Document, EncodeError, Encoded, Loss, Problem, Record, RecordKind,
};
pub use partner::Partner;
