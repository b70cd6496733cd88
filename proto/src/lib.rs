//! # yrdx-proto
//!
//! The canonical records of the yrdx exchange (protobuf package `yrdx.v1`), compiled in pure Rust,
//! with their canonical JSON form (proto3 JSON mapping, via pbjson), and the domain rules that every
//! adapter and the gateway share: identifiers ([`identifiers`]), record validation ([`validate`]), civil
//! dates and Beijing time ([`civil`]) and the official working-day calendar ([`calendar`]).
#![deny(missing_docs)]

/// Generated Google well-known types that the records use (vendored `google.type.Date`).
pub mod google {
    /// `google.type` — calendar types.
    #[allow(missing_docs, clippy::all)]
    pub mod r#type {
        include!(concat!(env!("OUT_DIR"), "/google.r#type.rs"));
        include!(concat!(env!("OUT_DIR"), "/google.r#type.serde.rs"));
    }
}

/// Generated code for package `yrdx`.
pub mod yrdx {
    /// `yrdx.v1` — the canonical records, the envelope and the gateway services.
    #[allow(missing_docs, clippy::all)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/yrdx.v1.rs"));
        include!(concat!(env!("OUT_DIR"), "/yrdx.v1.serde.rs"));
    }
}

pub use yrdx::v1;

/// `google.protobuf.Timestamp` as used by the generated records.
pub type Timestamp = pbjson_types::Timestamp;
/// `google.type.Date` as used by the generated records.
pub type Date = google::r#type::Date;

/// The encoded `FileDescriptorSet` of every `.proto` file (for gRPC reflection).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/yrdx_descriptor.bin"));

pub mod calendar;
pub mod civil;
pub mod codes;
pub mod identifiers;
pub mod validate;
