//! Which recipients can take a record: a region with no connected partner gets nothing (the
//! sender is warned), and a partner whose format refuses the record (Beijing takes online-sales
//! records only) is skipped with a warning. Clause `partners.beijing.online-only`.

use super::Route;
use crate::config::{Config, PartnerConfig};
use yrdx_adapters::Record;

/// Splits recipients into connected partners that can take the record, with a warning for each
/// that is not connected or cannot take it.
pub fn deliverable<'c>(record: &Record, route: &mut Route, config: &'c Config) -> Vec<&'c PartnerConfig> {
    let mut out = Vec::new();
    for region in &route.recipients {
        match config.partner_by_region(region) {
            None => route.warnings.push(format!(
                "{} {}: region {region} has no connected partner; nothing was queued for it",
                record.kind(),
                record.id()
            )),
            Some(p) => match p.format().refusal(record) {
                Some(e) => route.warnings.push(format!("not queued for {} ({region}): {e}", p.name)),
                None => out.push(p),
            },
        }
    }
    out
}
