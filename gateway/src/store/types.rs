//! What crosses the store boundary, typed and backend-neutral.

use std::fmt;
use yrdx_adapters::RecordKind;

/// The plain values the workflow lookups search by, taken from a record when it is stored (so a
/// backend indexes columns, not JSON expressions). Empty strings where the record has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LookupKeys {
    /// A sampling record's plan (quota, plan summaries).
    pub plan_id: String,
    /// A sampling record's sampling region (quota).
    pub sampling_region: String,
    /// A sampling record's producer USCC (mutual recognition).
    pub producer_uscc: String,
    /// A sampling record's product brand (mutual recognition).
    pub brand: String,
    /// A sampling record's product model (mutual recognition).
    pub model: String,
    /// The sample an inspection result or a case refers to (plan summaries).
    pub sample_id: String,
}

impl LookupKeys {
    /// The lookup values of a record.
    pub fn of(record: &yrdx_adapters::Record) -> LookupKeys {
        use yrdx_adapters::Record;
        match record {
            Record::Sampling(s) => LookupKeys {
                plan_id: s.plan_id.clone(),
                sampling_region: s.sampling_region.clone(),
                producer_uscc: s.producer.as_ref().map(|p| p.uscc.clone()).unwrap_or_default(),
                brand: s.product.as_ref().map(|p| p.brand.clone()).unwrap_or_default(),
                model: s.product.as_ref().map(|p| p.model.clone()).unwrap_or_default(),
                sample_id: s.sample_id.clone(),
            },
            Record::Inspection(i) => LookupKeys { sample_id: i.sample_id.clone(), ..LookupKeys::default() },
            Record::CaseTransfer(c) => LookupKeys { sample_id: c.sample_id.clone(), ..LookupKeys::default() },
            _ => LookupKeys::default(),
        }
    }

    /// The lookup values read back from a record's canonical JSON (moving a store whose rows
    /// carry only the JSON).
    pub fn from_canonical(json: &str) -> LookupKeys {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else { return LookupKeys::default() };
        let at = |p: &str| v.pointer(p).and_then(|x| x.as_str()).unwrap_or_default().to_string();
        LookupKeys {
            plan_id: at("/planId"),
            sampling_region: at("/samplingRegion"),
            producer_uscc: at("/producer/uscc"),
            brand: at("/product/brand"),
            model: at("/product/model"),
            sample_id: at("/sampleId"),
        }
    }
}

/// A canonical record to keep.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// Record kind.
    pub kind: RecordKind,
    /// Record id.
    pub id: String,
    /// The record.
    pub record: yrdx_adapters::Record,
    /// The values the workflow lookups search by.
    pub keys: LookupKeys,
}

impl StoredRecord {
    /// A record to keep, with its kind, id and lookup values.
    pub fn of(record: yrdx_adapters::Record) -> StoredRecord {
        StoredRecord { kind: record.kind(), id: record.id(), keys: LookupKeys::of(&record), record }
    }
}

/// A document to queue for a recipient.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Recipient region (its mailbox).
    pub recipient: String,
    /// Message id of the delivered document.
    pub message_id: String,
    /// The document, in the recipient's format.
    pub document: Vec<u8>,
}

/// Everything one accepted submission writes.
#[derive(Debug, Clone)]
pub struct Submission {
    /// Sender region.
    pub sender: String,
    /// Envelope message id.
    pub message_id: String,
    /// SHA-256 of the submitted bytes, hex.
    pub digest: String,
    /// The submitted bytes.
    pub document: Vec<u8>,
    /// The encoded `SubmitReply` to give again on a duplicate.
    pub reply: Vec<u8>,
    /// Canonical records.
    pub records: Vec<StoredRecord>,
    /// Deliveries caused.
    pub deliveries: Vec<NewDelivery>,
    /// Records queued for SAMR packages.
    pub samr: Vec<StoredRecord>,
    /// Milliseconds since the epoch.
    pub received_at_ms: i64,
}

/// A submission already stored under a sender and message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubmission {
    /// Digest of the first submission.
    pub digest: String,
    /// Reply given to the first submission.
    pub reply: Vec<u8>,
    /// When it was accepted (ms since the epoch).
    pub received_at_ms: i64,
    /// Its entry in the audit chain (none for a submission stored before the chain existed).
    pub audit_position: Option<u64>,
    /// SM3 of its bytes as received, hex (empty before the chain existed).
    pub document_sm3: String,
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// Stored now, with what its receipt states (so the caller need not read it back).
    New {
        /// Its entry in the audit chain.
        audit_position: u64,
        /// SM3 of its bytes as received, hex.
        document_sm3: String,
    },
    /// The same sender and message id were stored before: their digest and reply.
    Existing {
        /// Digest of the first submission.
        digest: String,
        /// Reply given to the first submission.
        reply: Vec<u8>,
    },
}

/// A delivery's id in its mailbox (what a partner acknowledges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeliveryId(pub i64);

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl DeliveryId {
    /// Reads the ids a partner sent; ids that are not the gateway's are left out (acknowledging
    /// them acknowledges nothing).
    pub fn parse_all(ids: &[String]) -> Vec<DeliveryId> {
        ids.iter().filter_map(|s| s.parse::<i64>().ok()).map(DeliveryId).collect()
    }
}

/// A delivery taken from a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelivery {
    /// Delivery id (to acknowledge).
    pub delivery_id: DeliveryId,
    /// Message id of the document.
    pub message_id: String,
    /// The document.
    pub document: Vec<u8>,
    /// 1 on first delivery, +1 on each redelivery.
    pub attempt: u32,
    /// When the delivery was queued (ms since the epoch).
    pub queued_at_ms: i64,
}

/// What a plan summary counts: the plan's sampling records, and the results and cases of those
/// samples.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PlanRecords {
    /// Sampling records of the plan.
    pub samplings: Vec<yrdx_proto::v1::SamplingRecord>,
    /// Inspection results of those samples.
    pub inspections: Vec<yrdx_proto::v1::InspectionResult>,
    /// Disposal cases of those samples.
    pub cases: Vec<yrdx_proto::v1::DisposalCase>,
}

/// [`PlanRecords`] as a backend reads them: each record's stored text (read by `codec`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RawPlanRecords {
    pub(crate) samplings: Vec<String>,
    pub(crate) inspections: Vec<String>,
    pub(crate) cases: Vec<String>,
}

/// Where a SAMR package stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackageState {
    /// Waiting for its (next) attempt.
    Pending,
    /// SAMR accepted it.
    Accepted,
    /// Given up on until an operator resends it.
    Parked,
}

impl PackageState {
    /// The name kept in the store and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageState::Pending => "pending",
            PackageState::Accepted => "accepted",
            PackageState::Parked => "parked",
        }
    }

    /// Reads a stored name.
    pub fn from_name(name: &str) -> Option<PackageState> {
        match name {
            "pending" => Some(PackageState::Pending),
            "accepted" => Some(PackageState::Accepted),
            "parked" => Some(PackageState::Parked),
            _ => None,
        }
    }
}

impl fmt::Display for PackageState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SAMR package as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamrPackage {
    /// `SJB-310000-20240402-0001`.
    pub number: String,
    /// `CCJG`, `FXBS` …
    pub package_type: String,
    /// The GB18030 bytes.
    pub bytes: Vec<u8>,
    /// Where it stands.
    pub state: PackageState,
    /// Attempts made.
    pub attempts: u32,
    /// SAMR's reason (rejected) or the last failure (parked).
    pub reason: String,
}

/// A record waiting in the SAMR outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// Row id.
    pub seq: i64,
    /// Record kind.
    pub kind: RecordKind,
    /// Record id.
    pub record_id: String,
    /// The record.
    pub record: yrdx_adapters::Record,
    /// When it was queued.
    pub created_at_ms: i64,
}

/// Why a SAMR package was not formed (its records stay in the outbox for the next round).
#[derive(Debug, thiserror::Error)]
pub enum PackageNotFormed {
    /// The records could not be encoded as a package.
    #[error(transparent)]
    Encode(#[from] yrdx_adapters::EncodeError),
    /// Another replica packaged some of the rows meanwhile.
    #[error("{taken} of {of} outbox rows were packaged meanwhile")]
    RowsTaken {
        /// Rows already packaged.
        taken: usize,
        /// Rows asked for.
        of: usize,
    },
}

/// Writes a package's number and bytes for the sequence number the store took.
pub type PackageBuilder = Box<dyn FnOnce(u32) -> Result<(String, Vec<u8>), yrdx_adapters::EncodeError> + Send>;

/// Work exactly one replica does at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LeaderRole {
    /// Forming, numbering and pushing SAMR packages.
    SamrPush,
    /// The overdue checker and the calendar's settling pass.
    Deadlines,
    /// Signing the audit chain's heads.
    AuditHeads,
}

impl LeaderRole {
    /// The role's name in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaderRole::SamrPush => "samr-push",
            LeaderRole::Deadlines => "deadlines",
            LeaderRole::AuditHeads => "audit-heads",
        }
    }

    /// The PostgreSQL advisory-lock key of the role (stable across versions).
    pub fn lock_key(self) -> i64 {
        match self {
            LeaderRole::SamrPush => 0x7972_6478_0001,
            LeaderRole::Deadlines => 0x7972_6478_0002,
            LeaderRole::AuditHeads => 0x7972_6478_0004,
        }
    }
}
