//! Mutual recognition: a product (same producer USCC, brand and model) already checked by any
//! region within the 6 months before this sampling date is accepted again only as a follow-up or
//! emergency check, with a warning naming the earlier check. `docs/domain.md` section 4.5; clause
//! `domain.4.5.mutual-recognition`.

use super::{Batch, RouteError, Step};
use yrdx_proto::v1::SamplingRecord;
use yrdx_proto::Date;

/// The date `months` calendar months before `d` (the day clamped to the month's length).
fn months_before(d: &Date, months: i32) -> Date {
    let total = d.year * 12 + (d.month - 1) - months;
    let (y, m) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let day = (d.day as u32).min(yrdx_proto::civil::days_in_month(y as i64, m as u32));
    Date::from_ymd(y, m as u32, day).unwrap_or(*d)
}

/// Warnings for every earlier check of the same product within 6 months (stored, or earlier in
/// the same document).
pub(super) async fn earlier_checks(
    s: &SamplingRecord,
    step: &Step<'_>,
    batch: &Batch,
) -> Result<Vec<String>, RouteError> {
    let mut warnings = Vec::new();
    let (Some(producer), Some(product), Some(on)) = (&s.producer, &s.product, &s.sampled_on) else {
        return Ok(warnings);
    };
    let since = months_before(on, 6);
    let mut earlier = step.lookup.samplings_of_product(&producer.uscc, &product.brand, &product.model).await?;
    earlier.extend(
        batch
            .samplings
            .iter()
            .filter(|b| {
                b.producer.as_ref().map(|p| &p.uscc) == Some(&producer.uscc)
                    && b.product.as_ref().is_some_and(|p| p.brand == product.brand && p.model == product.model)
            })
            .cloned(),
    );
    for e in earlier {
        let Some(e_on) = e.sampled_on else { continue };
        if e.sample_id != s.sample_id && e_on.to_days() <= on.to_days() && e_on.to_days() >= since.to_days() {
            warnings.push(format!(
                "mutual recognition: {}: the same product (producer {}, brand '{}', model '{}') was checked within 6 months — sample {} by region {} on {e_on}; accepted as a follow-up or emergency check",
                step.what, producer.uscc, product.brand, product.model, e.sample_id, e.sampling_region
            ));
        }
    }
    Ok(warnings)
}
