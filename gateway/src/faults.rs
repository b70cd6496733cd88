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
}
