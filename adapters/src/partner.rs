//! The registry of formats: one entry per partner, dispatching to its adapter module. Adding a
//! partner (Anhui, say) takes one adapter module and one variant here.

use crate::model::*;
use crate::{beijing, canonical, jiangsu, samr, zhejiang};
use std::fmt;
use yrdx_proto::v1::Envelope;

/// A format the exchange speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Partner {
    /// Jiangsu, `320000`.
    Jiangsu,
    /// Zhejiang, `330000`.
    Zhejiang,
    /// Beijing, `110000` (online sales only).
    Beijing,
    /// SAMR data platform (packages out, receipts back).
    Samr,
    /// Shanghai's canonical records, `310000`.
    Canonical,
}

impl Partner {
    /// Every format.
    pub const ALL: [Partner; 5] =
        [Partner::Jiangsu, Partner::Zhejiang, Partner::Beijing, Partner::Samr, Partner::Canonical];

    /// The lower-case name used on command lines and in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Partner::Jiangsu => "jiangsu",
            Partner::Zhejiang => "zhejiang",
            Partner::Beijing => "beijing",
            Partner::Samr => "samr",
            Partner::Canonical => "canonical",
        }
    }

    /// The format of a lower-case name.
    pub fn from_name(name: &str) -> Option<Partner> {
        Partner::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The id this partner has in envelopes (`320000`, `SAMR`, `310000` …).
    pub fn envelope_id(self) -> &'static str {
        match self {
            Partner::Jiangsu => jiangsu::PARTNER_ID,
            Partner::Zhejiang => zhejiang::PARTNER_ID,
            Partner::Beijing => beijing::PARTNER_ID,
            Partner::Samr => samr::PARTNER_ID,
            Partner::Canonical => "310000",
        }
    }

    /// The partner whose envelope id this is.
    pub fn from_envelope_id(id: &str) -> Option<Partner> {
        Partner::ALL.into_iter().find(|p| p.envelope_id() == id)
    }

    /// Decodes a document in this format. SAMR sends no records (only receipts): use
    /// [`samr::decode_package`] to check a package.
    pub fn decode(self, bytes: &[u8], limits: &DecodeLimits) -> Result<Document, DecodeError> {
        match self {
            Partner::Jiangsu => jiangsu::decode(bytes, limits),
            Partner::Zhejiang => zhejiang::decode(bytes, limits),
            Partner::Beijing => beijing::decode(bytes, limits),
            Partner::Canonical => canonical::decode(bytes, limits),
            Partner::Samr => Err(DecodeError::refused(
                "/",
                "SAMR packages carry partial records and are not decoded into canonical records; check one with `yrdx validate --partner samr`",
            )),
        }
    }

    /// Encodes records in this format (`sequence` is the SAMR package sequence; ignored elsewhere).
    pub fn encode(self, envelope: &Envelope, records: &[Record], sequence: u32) -> Result<Encoded, EncodeError> {
        match self {
            Partner::Jiangsu => jiangsu::encode(envelope, records),
            Partner::Zhejiang => zhejiang::encode(envelope, records),
            Partner::Beijing => beijing::encode(envelope, records),
            Partner::Samr => samr::encode(envelope, sequence, records),
            Partner::Canonical => canonical::encode(envelope, records),
        }
    }

    /// Encodes the same records under each envelope, as [`Partner::encode`] would one by one,
    /// byte for byte, but the records once: a document fanned out to many recipients of one
    /// format differs only in its envelope. An error is the records' and so every envelope's.
    pub fn encode_each(
        self,
        envelopes: &[Envelope],
        records: &[Record],
        sequence: u32,
    ) -> Result<Vec<Encoded>, EncodeError> {
        match self {
            Partner::Jiangsu => encode_each::<jiangsu::Body>(envelopes, records),
            Partner::Zhejiang => encode_each::<zhejiang::Body>(envelopes, records),
            Partner::Canonical => encode_each::<canonical::Body>(envelopes, records),
            // One record per message (Beijing) or one package per recipient (SAMR): no shared part.
            Partner::Beijing | Partner::Samr => envelopes.iter().map(|e| self.encode(e, records, sequence)).collect(),
        }
    }

    /// Why this format cannot take `record` at all, if it cannot (Beijing takes online-sales
    /// records only); the gateway then queues nothing for that recipient and warns the sender.
    pub fn refusal(self, record: &Record) -> Option<EncodeError> {
        match self {
            Partner::Beijing => beijing::refusal(record),
            Partner::Jiangsu | Partner::Zhejiang | Partner::Samr | Partner::Canonical => None,
        }
    }

    /// Most records in one document of this format.
    pub fn max_records(self) -> usize {
        match self {
            Partner::Jiangsu => jiangsu::MAX_RECORDS,
            Partner::Zhejiang => zhejiang::MAX_RECORDS,
            Partner::Beijing => 1,
            Partner::Samr => samr::MAX_RECORDS,
            Partner::Canonical => usize::MAX,
        }
    }
}

impl fmt::Display for Partner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}
