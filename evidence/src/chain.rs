//! The SM3 audit chain: every event that changes what the exchange holds, each entry carrying the
//! SM3 hash of the one before, and the chain head signed with the gateway's SM2 key every N
//! entries or M seconds.
//!
//! An entry's hash is `SM3(prev_hash ‖ canonical text)`, `prev_hash` being the previous entry's
//! 32-byte hash (32 zero bytes for position 0) and the canonical text (UTF-8, the same line rules
//! as receipts: `key=value\n`, `%`, line feed and carriage return escaped as `%25`, `%0A`, `%0D`):
//!
//! ```text
//! yrdx-audit-entry-v1
//! position=<decimal>
//! at_ms=<milliseconds since 1970, decimal>
//! event=<kind, e.g. submission_accepted>
//! <the event's fields in the order of AuditEvent's documentation, one key=value line each>
//! ```
//!
//! A signed head is the SM2 signature (SM3, the gateway's distinguishing identifier, DER) of:
//!
//! ```text
//! yrdx-audit-head-v1
//! position=<the last entry covered>
//! hash=<its hash, 64 lowercase hex digits>
//! signed_at=<RFC 3339 UTC with milliseconds>
//! ```
//!
//! Everything here is pure: the store appends entries in the same transaction as the change
//! (positions 0, 1, 2 … without gaps) and hands them back to [`verify_chain`] in position order.

use crate::digest::Sm3Digest;
use crate::keys::{GatewayPublicKey, GatewaySigningKey, KeyError};
use crate::text::Lines;
use crate::time::{format_millis, OutOfRange};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write;

/// The first line of an entry's canonical text.
pub const ENTRY_FORM: &str = "yrdx-audit-entry-v1";
/// The first line of a chain head's signed text.
pub const HEAD_FORM: &str = "yrdx-audit-head-v1";

/// What happened to a SAMR package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SamrPackageAction {
    /// Formed from the outbox and numbered.
    Created,
    /// Sent to SAMR's intake.
    Pushed,
    /// SAMR's receipt was received.
    Receipted,
    /// Given up after its attempts; waiting for an operator.
    Parked,
    /// Sent again at an operator's request.
    Resent,
}

impl SamrPackageAction {
    /// The word in the canonical text.
    pub fn as_str(self) -> &'static str {
        match self {
            SamrPackageAction::Created => "created",
            SamrPackageAction::Pushed => "pushed",
            SamrPackageAction::Receipted => "receipted",
            SamrPackageAction::Parked => "parked",
            SamrPackageAction::Resent => "resent",
        }
    }
}

/// An event that changes what the exchange holds. The canonical text writes the fields in the
/// order given here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuditEvent {
    /// A document was accepted (`submission_accepted`: sender, message_id, document_sm3).
    SubmissionAccepted {
        /// The sender's envelope id.
        sender: String,
        /// The envelope's message id.
        message_id: String,
        /// SM3 of the original bytes, as stored.
        document_sm3: Sm3Digest,
    },
    /// A delivery was handed to its recipient (`delivery_handed_out`: delivery_id, recipient,
    /// message_id).
    DeliveryHandedOut {
        /// The delivery's id.
        delivery_id: String,
        /// The recipient's envelope id.
        recipient: String,
        /// The message delivered.
        message_id: String,
    },
    /// The recipient acknowledged a delivery (`delivery_acknowledged`: delivery_id, recipient).
    DeliveryAcknowledged {
        /// The delivery's id.
        delivery_id: String,
        /// The recipient's envelope id.
        recipient: String,
    },
    /// A disposal case changed (`case_event`: case_id, event).
    CaseEvent {
        /// The case's id.
        case_id: String,
        /// What happened (opened, a stage done, overdue noticed, a due date settled …).
        event: String,
    },
    /// A SAMR package changed (`samr_package`: package_id, action).
    SamrPackage {
        /// The package's id.
        package_id: String,
        /// What happened to it.
        action: SamrPackageAction,
    },
    /// An operator acted (`operator_action`: operator, action).
    OperatorAction {
        /// The operator's identity.
        operator: String,
        /// What was done (e.g. `resend package P`).
        action: String,
    },
    /// A new configuration was put in force (`configuration_reloaded`: config_sm3).
    ConfigurationReloaded {
        /// SM3 of the configuration file's bytes.
        config_sm3: Sm3Digest,
    },
}

impl AuditEvent {
    /// The event's kind as the canonical text writes it.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::SubmissionAccepted { .. } => "submission_accepted",
            AuditEvent::DeliveryHandedOut { .. } => "delivery_handed_out",
            AuditEvent::DeliveryAcknowledged { .. } => "delivery_acknowledged",
            AuditEvent::CaseEvent { .. } => "case_event",
            AuditEvent::SamrPackage { .. } => "samr_package",
            AuditEvent::OperatorAction { .. } => "operator_action",
            AuditEvent::ConfigurationReloaded { .. } => "configuration_reloaded",
        }
    }

    fn write(&self, lines: Lines) -> Lines {
        let lines = lines.field("event", self.kind());
        match self {
            AuditEvent::SubmissionAccepted { sender, message_id, document_sm3 } => lines
                .field("sender", sender)
                .field("message_id", message_id)
                .field("document_sm3", &document_sm3.to_hex()),
            AuditEvent::DeliveryHandedOut { delivery_id, recipient, message_id } => {
                lines.field("delivery_id", delivery_id).field("recipient", recipient).field("message_id", message_id)
            }
            AuditEvent::DeliveryAcknowledged { delivery_id, recipient } => {
                lines.field("delivery_id", delivery_id).field("recipient", recipient)
            }
            AuditEvent::CaseEvent { case_id, event } => lines.field("case_id", case_id).field("event_detail", event),
            AuditEvent::SamrPackage { package_id, action } => {
                lines.field("package_id", package_id).field("action", action.as_str())
            }
            AuditEvent::OperatorAction { operator, action } => {
                lines.field("operator", operator).field("action", action)
            }
            AuditEvent::ConfigurationReloaded { config_sm3 } => lines.field("config_sm3", &config_sm3.to_hex()),
        }
    }
}

/// One entry of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Its place: 0 for the first entry, then one more for each.
    pub position: u64,
    /// When the change happened, in milliseconds since 1970-01-01T00:00:00Z.
    pub at_ms: i64,
    /// What changed.
    pub event: AuditEvent,
    /// The previous entry's hash ([`Sm3Digest::GENESIS`] for position 0).
    pub prev_hash: Sm3Digest,
    /// `SM3(prev_hash ‖ canonical text)`.
    pub hash: Sm3Digest,
}

/// Why an entry or head could not be made, or an export written or read.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The chain is as long as a `u64` counts.
    #[error("audit chain: no position after {position}")]
    PositionOverflow {
        /// The last position.
        position: u64,
    },
    /// A time cannot be written in a head.
    #[error("chain head at position {position}: signed_at: {source}")]
    Time {
        /// The head's position.
        position: u64,
        /// Why.
        #[source]
        source: OutOfRange,
    },
    /// The key could not sign.
    #[error("chain head at position {position}: {source}")]
    Key {
        /// The head's position.
        position: u64,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// The export could not be written.
    #[error("audit export: {0}")]
    Write(#[from] std::io::Error),
    /// A line of an export does not read.
    #[error("audit export line {line}: {message}")]
    Read {
        /// The line number (from 1).
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl AuditEntry {
    /// The entry at `position` after an entry whose hash is `prev_hash`, its hash computed.
    pub fn new(position: u64, at_ms: i64, event: AuditEvent, prev_hash: Sm3Digest) -> AuditEntry {
        let mut entry = AuditEntry { position, at_ms, event, prev_hash, hash: Sm3Digest::GENESIS };
        entry.hash = entry.computed_hash();
        entry
    }

    /// The chain's first entry (position 0).
    pub fn first(at_ms: i64, event: AuditEvent) -> AuditEntry {
        AuditEntry::new(0, at_ms, event, Sm3Digest::GENESIS)
    }

    /// The entry that follows this one.
    pub fn next(&self, at_ms: i64, event: AuditEvent) -> Result<AuditEntry, ChainError> {
        let position = self.position.checked_add(1).ok_or(ChainError::PositionOverflow { position: self.position })?;
        Ok(AuditEntry::new(position, at_ms, event, self.hash))
    }

    /// The canonical text hashed (see the module's documentation).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let lines = Lines::new(ENTRY_FORM)
            .field("position", &self.position.to_string())
            .field("at_ms", &self.at_ms.to_string());
        self.event.write(lines).into_bytes()
    }

    /// `SM3(prev_hash ‖ canonical text)` of the entry as it is now.
    pub fn computed_hash(&self) -> Sm3Digest {
        Sm3Digest::of_parts(&[&self.prev_hash.0, &self.canonical_bytes()])
    }
}

/// The chain head: the last entry covered and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainHead {
    /// The position of the last entry covered.
    pub position: u64,
    /// That entry's hash.
    pub hash: Sm3Digest,
    /// When the head was signed, in milliseconds since 1970.
    pub signed_at_ms: i64,
}

/// A chain head with the gateway's SM2 signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedHead {
    /// What is signed.
    pub head: ChainHead,
    /// The distinguishing identifier of the signature.
    pub distinguishing_id: String,
    /// The SM2 signature of [`ChainHead::signed_bytes`], DER, base64 in JSON.
    #[serde(with = "base64_bytes")]
    pub signature: Vec<u8>,
}

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

impl ChainHead {
    /// The head at `entry`, signed at `signed_at_ms`.
    pub fn of(entry: &AuditEntry, signed_at_ms: i64) -> ChainHead {
        ChainHead { position: entry.position, hash: entry.hash, signed_at_ms }
    }

    /// The text signed (see the module's documentation).
    pub fn signed_bytes(&self) -> Result<Vec<u8>, OutOfRange> {
        Ok(Lines::new(HEAD_FORM)
            .field("position", &self.position.to_string())
            .field("hash", &self.hash.to_hex())
            .field("signed_at", &format_millis(self.signed_at_ms)?)
            .into_bytes())
    }

    /// This head signed with the gateway's key.
    pub fn sign(self, key: &GatewaySigningKey) -> Result<SignedHead, ChainError> {
        let position = self.position;
        let message = self.signed_bytes().map_err(|source| ChainError::Time { position, source })?;
        let signature = key.sign_der(&message).map_err(|source| ChainError::Key { position, source })?;
        Ok(SignedHead { head: self, distinguishing_id: key.distinguishing_id().to_string(), signature })
    }
}

impl SignedHead {
    /// Whether the signature is the key's over this head.
    pub fn verifies(&self, key: &GatewayPublicKey) -> bool {
        let Ok(message) = self.head.signed_bytes() else {
            return false;
        };
        key.verify_der(&message, &self.signature, &self.distinguishing_id).unwrap_or(false)
    }
}

/// When the head is signed: every `every_entries` entries or `every_secs` seconds, whichever
/// comes first (`[evidence] head_every_entries`, `head_every_secs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadPolicy {
    /// Entries after the last signed head that call for a new one (at least 1).
    pub every_entries: u64,
    /// Seconds after the last signed head that call for a new one when entries were added since.
    pub every_secs: u64,
}

impl HeadPolicy {
    /// Default `head_every_entries`: 1000.
    pub const DEFAULT_EVERY_ENTRIES: u64 = 1000;
    /// Default `head_every_secs`: 300 (five minutes).
    pub const DEFAULT_EVERY_SECS: u64 = 300;

    /// Whether a head should be signed now at `latest`, the last head signed being `last_head`:
    /// never when `latest` is already covered; always when no head was ever signed; else when
    /// `every_entries` entries are unsigned or `every_secs` passed since the last head.
    pub fn is_due(&self, last_head: Option<&ChainHead>, latest: &AuditEntry, now_ms: i64) -> bool {
        let Some(last) = last_head else {
            return true;
        };
        if latest.position <= last.position {
            return false;
        }
        let unsigned = latest.position - last.position;
        let elapsed_ms = now_ms.saturating_sub(last.signed_at_ms);
        unsigned >= self.every_entries.max(1)
            || elapsed_ms >= i64::try_from(self.every_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

impl Default for HeadPolicy {
    fn default() -> HeadPolicy {
        HeadPolicy { every_entries: HeadPolicy::DEFAULT_EVERY_ENTRIES, every_secs: HeadPolicy::DEFAULT_EVERY_SECS }
    }
}

/// The first thing found wrong in a chain, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainFault {
    /// A stored original document no longer hashes to its entry: the document was altered.
    DocumentAltered {
        /// The entry's position.
        position: u64,
        /// The sender.
        sender: String,
        /// The message id.
        message_id: String,
        /// The SM3 the entry recorded.
        recorded: Sm3Digest,
        /// The SM3 of the document stored now.
        stored: Sm3Digest,
    },
    /// The entry names a document the store no longer holds.
    DocumentMissing {
        /// The entry's position.
        position: u64,
        /// The sender.
        sender: String,
        /// The message id.
        message_id: String,
    },
    /// An entry's contents were changed after it was written: its hash no longer computes.
    EntryAltered {
        /// The entry's position.
        position: u64,
        /// The hash it carries.
        recorded: Sm3Digest,
        /// The hash its contents give.
        computed: Sm3Digest,
    },
    /// The entry expected here is not in the chain (deleted): a gap in the positions, or the next
    /// entry's `prev_hash` names an entry that is not there.
    EntryDeleted {
        /// The position whose entry is missing.
        position: u64,
        /// The position of the entry found in its place (`None` at the chain's end).
        found: Option<u64>,
    },
    /// An entry was inserted: a second entry claims a position already taken, or follows an
    /// entry that already has its successor (the chain forks there).
    EntryInserted {
        /// The position claimed twice (the first entry after the fork).
        position: u64,
    },
    /// Entries are out of order: the entry that belongs here comes later.
    EntriesReordered {
        /// The position expected here.
        position: u64,
        /// The position of the entry found in its place.
        found: u64,
    },
    /// A signed head's signature does not verify with the gateway's key.
    HeadSignature {
        /// The head's position.
        position: u64,
    },
    /// A correctly signed head names another hash than the chain has at its position: entries up
    /// to it were rewritten (rehashed) after it was signed.
    HeadMismatch {
        /// The head's position.
        position: u64,
        /// The hash it signs.
        signed: Sm3Digest,
        /// The hash the chain has there.
        chain: Sm3Digest,
    },
}

impl ChainFault {
    /// The position of the first entry (or head) that does not verify.
    pub fn position(&self) -> u64 {
        match self {
            ChainFault::DocumentAltered { position, .. }
            | ChainFault::DocumentMissing { position, .. }
            | ChainFault::EntryAltered { position, .. }
            | ChainFault::EntryDeleted { position, .. }
            | ChainFault::EntriesReordered { position, .. }
            | ChainFault::EntryInserted { position }
            | ChainFault::HeadSignature { position }
            | ChainFault::HeadMismatch { position, .. } => *position,
        }
    }

    /// The kind of fault in two or three words (`document altered`, `entry deleted` …).
    pub fn kind(&self) -> &'static str {
        match self {
            ChainFault::DocumentAltered { .. } => "document altered",
            ChainFault::DocumentMissing { .. } => "document missing",
            ChainFault::EntryAltered { .. } => "entry altered",
            ChainFault::EntryDeleted { .. } => "entry deleted",
            ChainFault::EntriesReordered { .. } => "entries reordered",
            ChainFault::EntryInserted { .. } => "entry inserted",
            ChainFault::HeadSignature { .. } => "head signature invalid",
            ChainFault::HeadMismatch { .. } => "head mismatch",
        }
    }
}

impl fmt::Display for ChainFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "position {}: {}: ", self.position(), self.kind())?;
        match self {
            ChainFault::DocumentAltered { sender, message_id, recorded, stored, .. } => write!(
                f,
                "the stored document of {sender} message {message_id} hashes to {stored}, its entry recorded {recorded}"
            ),
            ChainFault::DocumentMissing { sender, message_id, .. } => {
                write!(f, "the store holds no document for {sender} message {message_id}")
            }
            ChainFault::EntryAltered { recorded, computed, .. } => {
                write!(f, "the entry's contents hash to {computed}, it carries {recorded}")
            }
            ChainFault::EntryDeleted { found: Some(found), .. } => {
                write!(f, "the entry is missing; the next one found is position {found}")
            }
            ChainFault::EntryDeleted { found: None, .. } => {
                write!(f, "the entry is missing: the chain ends before a signed head")
            }
            ChainFault::EntriesReordered { found, .. } => {
                write!(f, "position {found} is found here; the entry for this position comes later")
            }
            ChainFault::EntryInserted { .. } => write!(f, "a second entry claims this position"),
            ChainFault::HeadSignature { .. } => write!(f, "the head's SM2 signature does not verify with this key"),
            ChainFault::HeadMismatch { signed, chain, .. } => {
                write!(f, "the signed head names hash {signed}, the chain has {chain}")
            }
        }
    }
}

/// What [`verify_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainReport {
    /// Entries that verified (hash, link and, for submissions, the stored document).
    pub entries_verified: u64,
    /// Signed heads that verified against the chain.
    pub heads_verified: u64,
    /// The last position verified.
    pub last_position: Option<u64>,
    /// The hash at the last position verified.
    pub last_hash: Option<Sm3Digest>,
    /// The last position covered by a verified signed head.
    pub last_signed_position: Option<u64>,
    /// The first fault, if any (verification stops there).
    pub fault: Option<ChainFault>,
}

impl ChainReport {
    /// No fault found.
    pub fn is_clean(&self) -> bool {
        self.fault.is_none()
    }

    /// Verified entries after the last verified signed head (their integrity rests on the hash
    /// links alone until the next head is signed).
    pub fn unsigned_entries(&self) -> u64 {
        match (self.last_position, self.last_signed_position) {
            (Some(last), Some(signed)) => last.saturating_sub(signed),
            (Some(last), None) => last.saturating_add(1),
            _ => 0,
        }
    }
}

impl fmt::Display for ChainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.fault {
            Some(fault) => write!(f, "does not verify at {fault}")?,
            None => write!(f, "verified")?,
        }
        write!(
            f,
            " ({} entries and {} signed heads verified; {} entries after the last signed head)",
            self.entries_verified,
            self.heads_verified,
            self.unsigned_entries()
        )
    }
}

/// Walks the whole chain from position 0: each entry's position and `prev_hash` link, its hash,
/// for a submission the stored document's SM3 (`stored_document(sender, message_id)`: the SM3 of
/// the original bytes the store holds now, `None` when it holds none), and every signed head
/// against the entry at its position. Stops at the first fault. `entries` come in position
/// order as the store keeps them; they are held in memory while verifying (to tell a deleted
/// entry from a misplaced one).
pub fn verify_chain<F>(
    entries: impl IntoIterator<Item = AuditEntry>,
    heads: &[SignedHead],
    key: &GatewayPublicKey,
    stored_document: F,
) -> ChainReport
where
    F: FnMut(&str, &str) -> Option<Sm3Digest>,
{
    verify_chain_from(0, Sm3Digest::GENESIS, entries, heads, key, stored_document)
}

/// [`verify_chain`] of a range that starts at `position` after an entry whose hash is
/// `prev_hash` (an export's first entry gives both); heads before `position` are ignored.
pub fn verify_chain_from<F>(
    position: u64,
    prev_hash: Sm3Digest,
    entries: impl IntoIterator<Item = AuditEntry>,
    heads: &[SignedHead],
    key: &GatewayPublicKey,
    mut stored_document: F,
) -> ChainReport
where
    F: FnMut(&str, &str) -> Option<Sm3Digest>,
{
    let entries: Vec<AuditEntry> = entries.into_iter().collect();
    let mut heads: Vec<&SignedHead> = heads.iter().filter(|h| h.head.position >= position).collect();
    heads.sort_by_key(|h| h.head.position);
    let mut heads = heads.into_iter().peekable();
    let mut report = ChainReport::default();
    let (mut expected, mut prev) = (position, prev_hash);
    // Hash → position of every entry verified so far (to see where an inserted entry forks).
    let mut verified: std::collections::HashMap<Sm3Digest, u64> = std::collections::HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        if entry.position != expected || entry.prev_hash != prev {
            // Following an entry that already has its successor, or a position already passed:
            // inserted.
            let fork = verified.get(&entry.prev_hash).map(|p| p.saturating_add(1));
            if let Some(position) = fork.or((entry.position < expected).then_some(entry.position)) {
                report.fault = Some(ChainFault::EntryInserted { position });
                return report;
            }
            // The entry that belongs here, if anywhere, comes later: misplaced, not deleted.
            let later = entries[i + 1..].iter().any(|l| l.position == expected || l.prev_hash == prev);
            report.fault = Some(if later {
                ChainFault::EntriesReordered { position: expected, found: entry.position }
            } else {
                ChainFault::EntryDeleted { position: expected, found: Some(entry.position) }
            });
            return report;
        }
        let computed = entry.computed_hash();
        if computed != entry.hash {
            report.fault = Some(ChainFault::EntryAltered { position: expected, recorded: entry.hash, computed });
            return report;
        }
        if let AuditEvent::SubmissionAccepted { sender, message_id, document_sm3 } = &entry.event {
            let fault = match stored_document(sender, message_id) {
                None => Some(ChainFault::DocumentMissing {
                    position: expected,
                    sender: sender.clone(),
                    message_id: message_id.clone(),
                }),
                Some(stored) if stored != *document_sm3 => Some(ChainFault::DocumentAltered {
                    position: expected,
                    sender: sender.clone(),
                    message_id: message_id.clone(),
                    recorded: *document_sm3,
                    stored,
                }),
                Some(_) => None,
            };
            if fault.is_some() {
                report.fault = fault;
                return report;
            }
        }
        while let Some(head) = heads.next_if(|h| h.head.position == expected) {
            if !head.verifies(key) {
                report.fault = Some(ChainFault::HeadSignature { position: expected });
                return report;
            }
            if head.head.hash != entry.hash {
                report.fault =
                    Some(ChainFault::HeadMismatch { position: expected, signed: head.head.hash, chain: entry.hash });
                return report;
            }
            report.heads_verified += 1;
            report.last_signed_position = Some(expected);
        }
        verified.insert(entry.hash, expected);
        report.entries_verified += 1;
        report.last_position = Some(expected);
        report.last_hash = Some(entry.hash);
        prev = entry.hash;
        let Some(following) = expected.checked_add(1) else {
            break;
        };
        expected = following;
    }
    // A correctly signed head past the end: the entries after the last one were deleted. A head
    // whose signature does not verify proves nothing and is reported as such.
    if let Some(head) = heads.next() {
        report.fault = Some(if head.verifies(key) {
            ChainFault::EntryDeleted { position: expected, found: None }
        } else {
            ChainFault::HeadSignature { position: head.head.position }
        });
    }
    report
}

/// One line of an export.
#[derive(Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
enum ExportLine {
    Entry(AuditEntry),
    Head(SignedHead),
}

/// Writes entries as JSON lines with their proofs: each entry (`"record":"entry"`: position,
/// at_ms, event, prev_hash, hash) followed by the signed heads at its position
/// (`"record":"head"`: head, distinguishing_id, signature in base64). Returns the lines written.
pub fn export_jsonl(
    entries: impl IntoIterator<Item = AuditEntry>,
    heads: &[SignedHead],
    out: &mut impl Write,
) -> Result<u64, ChainError> {
    let mut heads: Vec<&SignedHead> = heads.iter().collect();
    heads.sort_by_key(|h| h.head.position);
    let mut lines = 0u64;
    let mut write_line = |line: &ExportLine, out: &mut dyn Write| -> Result<(), ChainError> {
        serde_json::to_writer(&mut *out, line).map_err(std::io::Error::from)?;
        out.write_all(b"\n")?;
        lines += 1;
        Ok(())
    };
    for entry in entries {
        let position = entry.position;
        write_line(&ExportLine::Entry(entry), out)?;
        for head in heads.iter().filter(|h| h.head.position == position) {
            write_line(&ExportLine::Head((*head).clone()), out)?;
        }
    }
    Ok(lines)
}

/// Reads an export [`export_jsonl`] wrote back into its entries and heads (empty lines skipped).
pub fn import_jsonl(text: &str) -> Result<(Vec<AuditEntry>, Vec<SignedHead>), ChainError> {
    let (mut entries, mut heads) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line).map_err(|e| ChainError::Read { line: i + 1, message: e.to_string() })? {
            ExportLine::Entry(entry) => entries.push(entry),
            ExportLine::Head(head) => heads.push(head),
        }
    }
    Ok((entries, heads))
}

/// Verifies an export on its own: reads it ([`import_jsonl`]) and walks it from its first entry's
/// position and `prev_hash` ([`verify_chain_from`]) with its heads. An empty export verifies (with
/// nothing checked).
pub fn verify_export<F>(text: &str, key: &GatewayPublicKey, stored_document: F) -> Result<ChainReport, ChainError>
where
    F: FnMut(&str, &str) -> Option<Sm3Digest>,
{
    let (entries, heads) = import_jsonl(text)?;
    let Some(first) = entries.first() else {
        return Ok(ChainReport::default());
    };
    let (position, prev_hash) = (first.position, first.prev_hash);
    Ok(verify_chain_from(position, prev_hash, entries, &heads, key, stored_document))
}

#[cfg(test)]
mod tests;
