//! SAMR package numbers, `SJB-{sending unit}-{yyyyMMdd}-{NNNN}` (`docs/partners/samr.md`; clause
//! `samr.package.number`): per sending unit and Beijing day, the sequence starts at 1 and has no
//! gap and no reuse — across restarts, failovers and replicas. The rule has three parts, all
//! reached from here:
//!
//! - **the day**: the Beijing date of the package's sending time ([`Package::new`]);
//! - **the sequence**: the store takes the day's highest sequence + 1 inside the very transaction
//!   that stores the package (`SamrOutbox::samr_create_package`; on PostgreSQL under the numbering
//!   advisory lock), so two packages never share a number, and a package that cannot be built
//!   takes none;
//! - **the text**: [`yrdx_adapters::samr::package_number`], written into the package's `SJBBH`.

use crate::faults::Faults;
use crate::store::PackageBuilder;
use yrdx_adapters::{samr, Record};
use yrdx_proto::civil::BeijingTime;
use yrdx_proto::v1::Envelope;
use yrdx_proto::{Date, Timestamp};

/// A package about to be numbered: its records, its sending time and day.
pub struct Package {
    sender: String,
    day: Date,
    envelope: Envelope,
    records: Vec<Record>,
    faults: Faults,
}

impl Package {
    /// The package of `records` that `sender` (the sending unit's code) sends at `sent_at`.
    pub fn new(sender: &str, sent_at: Timestamp, records: Vec<Record>, faults: Faults) -> Package {
        let day = BeijingTime::of(&sent_at).date;
        let envelope = Envelope {
            message_id: String::new(),
            sender: sender.to_string(),
            receiver: "SAMR".into(),
            sent_at: Some(sent_at),
        };
        Package { sender: sender.to_string(), day, envelope, records, faults }
    }

    /// The day the store numbers by (`yyyyMMdd`, Beijing time).
    pub fn day_key(&self) -> String {
        self.day.to_compact()
    }

    /// What the store calls with the sequence it took: the package number and the encoded
    /// package (GB18030, SM3 digest) carrying it.
    pub fn builder(self) -> PackageBuilder {
        Box::new(move |sequence| {
            // Fault hook (feature `fault-injection`): identity unless a test skips numbers.
            let sequence = self.faults.samr_sequence(sequence);
            let encoded = samr::encode(&self.envelope, sequence, &self.records)?;
            Ok((samr::package_number(&self.sender, &self.day, sequence), encoded.bytes))
        })
    }
}
