//! `yrdx validate`: check partner documents (and SAMR packages) against their interface documents
//! and the domain rules, reporting every problem.

use yrdx_adapters::{samr, DecodeLimits, Partner};

/// The outcome for one document: a one-line summary, or every problem on its own line.
pub fn validate_document(
    partner: Partner,
    name: &str,
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<String, Vec<String>> {
    let result = if partner == Partner::Samr {
        samr::decode_package(bytes, limits).map(|p| {
            format!(
                "{name}: ok — SAMR package {} ({}, {} records)",
                p.header.number,
                p.header.package_type.code(),
                p.records.len()
            )
        })
    } else {
        partner.decode(bytes, limits).map(|d| {
            let kind = d.kind().map(|k| k.name()).unwrap_or("none");
            format!(
                "{name}: ok — message {} from {}, {} {kind} record(s)",
                d.envelope.message_id,
                d.envelope.sender,
                d.records.len()
            )
        })
    };
    result.map_err(|e| e.problems().iter().map(|p| format!("{name}: {p}")).collect())
}
