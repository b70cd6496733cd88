//! `yrdx demo --offline`: the partners' published examples decoded, checked, and translated into
//! every other partner's format and into a SAMR package, showing what each target could not carry
//! (no gateway; see [`crate::demo_live`] for the live demonstration).

use crate::translate::join_for_samr;
use std::fmt::Write;
use yrdx_adapters::{DecodeLimits, Partner, Record};
use yrdx_proto::civil::parse_rfc3339;
use yrdx_proto::v1::Envelope;

/// The partners' published examples: (title, format, vector), among the conformance vectors
/// built into the binary.
const EXAMPLES: &[(&str, Partner, &str)] = &[
    ("Jiangsu sampling record", Partner::Jiangsu, "vectors/jiangsu/valid/example-sampling.json"),
    ("Zhejiang inspection report", Partner::Zhejiang, "vectors/zhejiang/valid/example-inspection.xml"),
    ("Beijing online sample", Partner::Beijing, "vectors/beijing/valid/example-sample.json"),
];

/// An embedded conformance file's bytes.
fn embedded(rel: &str) -> Result<&'static [u8], String> {
    yrdx_conformance::embedded::files()
        .iter()
        .find(|(p, _)| *p == rel)
        .map(|(_, b)| *b)
        .ok_or_else(|| format!("the example {rel} is not built into this binary"))
}

fn summary(r: &Record) -> String {
    match r {
        Record::Sampling(s) => format!(
            "sample {} of plan {}, {} by {} ({})",
            s.sample_id,
            s.plan_id,
            s.product.as_ref().map(|p| p.name.as_str()).unwrap_or(""),
            s.seller.as_ref().map(|p| p.name.as_str()).unwrap_or(""),
            s.sampling_region
        ),
        Record::Inspection(i) => format!(
            "report {} on sample {}: {} of {} items fail",
            i.report_no,
            i.sample_id,
            i.items.iter().filter(|x| x.verdict == 2).count(),
            i.items.len()
        ),
        other => format!("{} {}", other.kind(), other.id()),
    }
}

/// Runs the offline demonstration; returns the account to print, or what went wrong.
pub fn run_offline() -> Result<String, String> {
    let limits = DecodeLimits::default();
    let mut out = String::new();
    let sent_at = parse_rfc3339("2024-04-02T09:15:00+08:00").ok_or("bad demo time")?;
    let _ = writeln!(out, "yrdx demo (offline: the gateway server is not built yet)\n");
    let mut joined = Vec::new();
    for (title, from, vector) in EXAMPLES {
        let bytes = embedded(vector)?;
        let doc = from.decode(bytes, &limits).map_err(|e| format!("{title}: {e}"))?;
        let _ = writeln!(out, "{title} — {} bytes from {} ({from} format)", bytes.len(), doc.envelope.sender);
        for r in &doc.records {
            let _ = writeln!(out, "  {}", summary(r));
        }
        for to in [Partner::Jiangsu, Partner::Zhejiang, Partner::Beijing, Partner::Canonical] {
            if to == *from {
                continue;
            }
            let env = Envelope {
                message_id: "YRDX-DEMO-0001".into(),
                sender: "310000".into(),
                receiver: to.envelope_id().into(),
                sent_at: Some(sent_at),
            };
            match to.encode(&env, &doc.records, 1) {
                Ok(enc) => {
                    to.decode(&enc.bytes, &limits)
                        .map_err(|e| format!("{title} → {to}: our own output was refused: {e}"))?;
                    let _ = write!(out, "  → {to:<9} {:>5} bytes", enc.bytes.len());
                    if enc.losses.is_empty() {
                        let _ = writeln!(out, ", nothing lost");
                    } else {
                        let fields: Vec<&str> = enc.losses.iter().map(|l| l.field.as_str()).collect();
                        let _ = writeln!(out, ", no place for: {}", fields.join(", "));
                    }
                }
                Err(e) => {
                    let _ = writeln!(out, "  → {to:<9} refused: {e}");
                }
            }
        }
        joined.extend(doc.records);
        let _ = writeln!(out);
    }
    // The Jiangsu sample and the Zhejiang report concern the same sample: one CCJG package.
    let records: Vec<Record> = joined
        .into_iter()
        .filter(|r| {
            matches!(r, Record::Sampling(s) if s.sample_id == "JS2024WS0102-0007") || matches!(r, Record::Inspection(_))
        })
        .collect();
    let mut sampling_seen = false;
    let records: Vec<Record> = records
        .into_iter()
        .filter(|r| !matches!(r, Record::Sampling(_)) || !std::mem::replace(&mut sampling_seen, true))
        .collect();
    let package_records = join_for_samr(records).map_err(|f| f.lines.join("; "))?;
    let env = Envelope {
        message_id: String::new(),
        sender: "310000".into(),
        receiver: "SAMR".into(),
        sent_at: Some(sent_at),
    };
    let enc = Partner::Samr.encode(&env, &package_records, 1).map_err(|e| format!("SAMR package: {e}"))?;
    let pkg = yrdx_adapters::samr::decode_package(&enc.bytes, &limits)
        .map_err(|e| format!("SAMR package refused by our own check: {e}"))?;
    let _ = writeln!(
        out,
        "SAMR spot-check result package {} ({}, {} record, {} GB18030 bytes, SM3 {}…), {} fields not carried",
        pkg.header.number,
        pkg.header.package_type.code(),
        pkg.records.len(),
        enc.bytes.len(),
        &pkg.header.digest[..16],
        enc.losses.len()
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_offline_demo_runs() {
        let account = super::run_offline().unwrap();
        assert!(account.contains("SJB-310000-20240402-0001"), "{account}");
        assert!(account.contains("no place for: items[0], items[1]"), "{account}");
    }
}
