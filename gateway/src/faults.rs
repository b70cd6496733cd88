//! Deliberately broken behaviours for testing the tests: with the `fault-injection` feature, a
//! test starts a gateway with a fault switched on and proves the conformance suite catches it.
//! Without the feature nothing can switch a fault on.

use yrdx_adapters::Record;

/// Which faults are switched on (all off by default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Accept a document whose envelope names another region than the certificate's.
    pub accept_forged_sender: bool,
    /// A wrong field mapping: swap the seller's and producer's names in delivered sampling records.
    pub swap_seller_and_producer_names: bool,
    /// SAMR docking: number the day's packages 1, 3, 5 … (a gap after every package) instead
    /// of 1, 2, 3 ….
    pub skip_samr_package_numbers: bool,
    /// SAMR docking: retry a package SAMR answered `429`/`503` at once, ignoring its
    /// `Retry-After`.
    pub ignore_samr_retry_after: bool,
    /// SAMR docking: treat a package SAMR rejected as done instead of parking it for an operator.
    pub drop_rejected_samr_packages: bool,
}

impl Faults {
    /// The record as delivered under these faults.
    pub(crate) fn delivered(&self, record: &Record) -> Record {
        let mut r = record.clone();
        if self.swap_seller_and_producer_names {
            if let Record::Sampling(s) = &mut r {
                if let (Some(seller), Some(producer)) = (&mut s.seller, &mut s.producer) {
                    std::mem::swap(&mut seller.name, &mut producer.name);
                }
            }
        }
        r
    }

    /// The daily sequence number written into a SAMR package whose store sequence is `sequence`.
    pub(crate) fn samr_sequence(&self, sequence: u32) -> u32 {
        if self.skip_samr_package_numbers {
            sequence.saturating_mul(2).saturating_sub(1)
        } else {
            sequence
        }
    }

    /// The state a package SAMR rejected is left in: parked, or accepted when the fault drops
    /// rejections.
    pub(crate) fn samr_rejected_state(&self) -> crate::store::PackageState {
        if self.drop_rejected_samr_packages {
            crate::store::PackageState::Accepted
        } else {
            crate::store::PackageState::Parked
        }
    }

    /// When a package answered `429`/`503` is tried again: `honoured` (the `Retry-After` the
    /// gateway computed), or `now_ms` when the fault ignores it.
    pub(crate) fn samr_busy_retry_at(&self, honoured: i64, now_ms: i64) -> i64 {
        if self.ignore_samr_retry_after {
            now_ms
        } else {
            honoured
        }
    }
}
