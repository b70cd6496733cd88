//! Evidence for partners and auditors: the SM2-signed receipt of an accepted submission
//! (Submit's reply, a duplicate's reply, `Exchange.GetReceipt`), and the signed heads of the
//! audit chain (signed by the one replica leading [`LeaderRole::AuditHeads`]).
//!
//! Receipts are not stored: signing is deterministic, so the receipt made again from the stored
//! submission (its sender, message id, SM3, acceptance time and chain position) is the same one,
//! byte for byte.

use crate::store::{LeaderRole, Store, StoreError, StoredSubmission};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};
use yrdx_evidence::{ChainHead, GatewaySigningKey, HeadPolicy, ReceiptFields, Sm3Digest};

/// The gateway's signing key and what it signs with.
pub struct Evidence {
    key: GatewaySigningKey,
    /// The gateway's identity written into receipts.
    pub gateway: String,
    policy: HeadPolicy,
}

/// What a receipt states of a stored submission besides its sender and message id: from the
/// store, or from the commit that just stored it.
#[derive(Debug, Clone, Copy)]
pub struct Accepted<'a> {
    /// When it was accepted (ms since the epoch).
    pub received_at_ms: i64,
    /// Its entry in the audit chain (none before the chain existed).
    pub audit_position: Option<u64>,
    /// SM3 of its bytes as received, hex.
    pub document_sm3: &'a str,
}

impl<'a> From<&'a StoredSubmission> for Accepted<'a> {
    fn from(s: &'a StoredSubmission) -> Accepted<'a> {
        Accepted { received_at_ms: s.received_at_ms, audit_position: s.audit_position, document_sm3: &s.document_sm3 }
    }
}

/// Why a receipt cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptUnavailable {
    /// The submission was accepted before the audit chain existed.
    #[error("message {0} was accepted before this gateway kept an audit chain: it has no receipt")]
    BeforeTheChain(String),
    /// The stored values could not be signed.
    #[error("the receipt of message {message_id} could not be made: {detail}")]
    Signing {
        /// The message.
        message_id: String,
        /// Why.
        detail: String,
    },
}

impl Evidence {
    /// The evidence of a configuration's `[evidence]` section (`None` without one).
    pub fn load(config: &crate::config::Config) -> Result<Option<Arc<Evidence>>, crate::config::EvidenceKeyError> {
        let Some(e) = &config.evidence else { return Ok(None) };
        let key = e.signing_key(config)?;
        Ok(Some(Arc::new(Evidence {
            key,
            gateway: gateway_identity(config),
            policy: HeadPolicy { every_entries: e.head_every_entries, every_secs: e.head_every_secs },
        })))
    }

    /// The signed receipt of a stored submission, in the wire form.
    pub fn receipt(
        &self,
        sender: &str,
        message_id: &str,
        stored: Accepted<'_>,
    ) -> Result<yrdx_proto::v1::Receipt, ReceiptUnavailable> {
        let Some(audit_position) = stored.audit_position else {
            return Err(ReceiptUnavailable::BeforeTheChain(message_id.to_string()));
        };
        let signing = |detail: String| ReceiptUnavailable::Signing { message_id: message_id.to_string(), detail };
        let document_sm3 = Sm3Digest::from_hex(stored.document_sm3).map_err(|e| signing(e.to_string()))?;
        let fields = ReceiptFields {
            gateway: self.gateway.clone(),
            sender: sender.to_string(),
            message_id: message_id.to_string(),
            document_sm3,
            accepted_at_ms: stored.received_at_ms,
            audit_position,
        };
        let receipt = yrdx_evidence::sign_receipt(&self.key, fields).map_err(|e| signing(e.to_string()))?;
        receipt.to_proto().map_err(|e| signing(e.to_string()))
    }

    /// Signs the chain's head when the policy says so. Returns the position signed, if any.
    pub async fn sign_head_if_due(&self, store: &dyn Store, now_ms: i64) -> Result<Option<u64>, HeadSigningError> {
        // Both read from the end: this runs every few seconds, whatever the chain's length.
        let last_head = store.audit_last_head().await?.map(|h| h.head);
        let Some(latest) = store.audit_last_entry().await? else { return Ok(None) };
        if !self.policy.is_due(last_head.as_ref(), &latest, now_ms) {
            return Ok(None);
        }
        let signed = ChainHead::of(&latest, now_ms).sign(&self.key)?;
        store.audit_store_head(signed).await?;
        info!(position = latest.position, "audit chain head signed");
        Ok(Some(latest.position))
    }
}

/// Why the chain's head could not be signed this time (the next tick tries again).
#[derive(Debug, thiserror::Error)]
pub enum HeadSigningError {
    /// The store could not read the chain or keep the signed head.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The head could not be signed.
    #[error("signing: {0}")]
    Signing(#[from] yrdx_evidence::ChainError),
}

/// The gateway's identity in receipts: `urn:yrdx:gateway:` and the region of the partner that
/// runs it (the canonical-format partner, Shanghai's bureau), as in its SAMR client certificate.
pub fn gateway_identity(config: &crate::config::Config) -> String {
    let region = config
        .partners
        .iter()
        .find(|p| p.format == crate::config::PartnerFormat::Canonical)
        .map(|p| p.region.clone())
        .unwrap_or_else(|| "310000".into());
    format!("urn:yrdx:gateway:{region}")
}

/// Signs chain heads on the leading replica every few seconds (the policy decides when one is due).
pub fn spawn_head_signer(
    store: Arc<dyn Store>,
    evidence: Arc<Evidence>,
    clock: Arc<dyn yrdx_clock::Clock>,
    stop: watch::Receiver<bool>,
) {
    let s = store.clone();
    crate::leader::spawn(store, LeaderRole::AuditHeads, Duration::from_secs(2), stop, move || {
        let (store, evidence, clock) = (s.clone(), evidence.clone(), clock.clone());
        async move {
            if let Err(e) = evidence.sign_head_if_due(store.as_ref(), clock.now_ms()).await {
                warn!(error = %e, "signing the audit chain's head failed");
            }
        }
    });
}

/// Every entry of a store's chain, in position order.
async fn all_entries(
    store: &dyn Store,
    from: u64,
    to: Option<u64>,
) -> Result<Vec<yrdx_evidence::AuditEntry>, StoreError> {
    let mut out = Vec::new();
    let mut at = from;
    loop {
        let page = store.audit_entries(at, 1000).await?;
        let Some(last) = page.last() else { break };
        at = last.position + 1;
        let full = page.len() == 1000;
        out.extend(page.into_iter().filter(|e| to.is_none_or(|t| e.position <= t)));
        if !full || to.is_some_and(|t| at > t) {
            break;
        }
    }
    Ok(out)
}

/// Walks a store's whole chain and signed heads with the gateway's public key, and checks that
/// each stored original document still hashes to its entry (`yrdx audit verify`).
pub async fn verify_store(
    store: &dyn Store,
    key: &yrdx_evidence::GatewayPublicKey,
) -> Result<yrdx_evidence::ChainReport, StoreError> {
    let entries = all_entries(store, 0, None).await?;
    let heads = store.audit_heads().await?;
    let mut documents = std::collections::HashMap::new();
    for e in &entries {
        if let yrdx_evidence::AuditEvent::SubmissionAccepted { sender, message_id, .. } = &e.event {
            if let Some(bytes) = store.document(sender, message_id).await? {
                documents.insert((sender.clone(), message_id.clone()), Sm3Digest::of(&bytes));
            }
        }
    }
    Ok(yrdx_evidence::verify_chain(entries, &heads, key, |sender, message_id| {
        documents.get(&(sender.to_string(), message_id.to_string())).copied()
    }))
}

/// Writes the entries `from..=to` (to the end without `to`) and the heads covering them as JSON
/// lines with their proofs (`yrdx audit export`). Returns the lines written.
pub async fn export_range(
    store: &dyn Store,
    from: u64,
    to: Option<u64>,
    out: &mut impl std::io::Write,
) -> Result<u64, ExportError> {
    let entries = all_entries(store, from, to).await?;
    let last = entries.last().map(|e| e.position);
    let heads: Vec<_> = store
        .audit_heads()
        .await?
        .into_iter()
        .filter(|h| h.head.position >= from && last.is_some_and(|l| h.head.position <= l))
        .collect();
    Ok(yrdx_evidence::export_jsonl(entries, &heads, out)?)
}

/// Why `yrdx audit export` stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The lines could not be written.
    #[error(transparent)]
    Write(#[from] yrdx_evidence::ChainError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditLog, SqliteStore};
    use yrdx_evidence::AuditEvent;

    fn evidence(every_entries: u64) -> Evidence {
        Evidence {
            key: GatewaySigningKey::generate("1234567812345678").unwrap(),
            gateway: "urn:yrdx:gateway:310000".into(),
            policy: HeadPolicy { every_entries, every_secs: 3600 },
        }
    }

    fn actions(n: usize) -> Vec<AuditEvent> {
        (0..n).map(|i| AuditEvent::OperatorAction { operator: "ops".into(), action: format!("action {i}") }).collect()
    }

    #[tokio::test]
    async fn a_head_is_signed_over_the_newest_entry_when_due_and_not_before() {
        let store = SqliteStore::in_memory().unwrap();
        let evidence = evidence(1000);
        assert_eq!(evidence.sign_head_if_due(&store, 10).await.unwrap(), None, "an empty chain has no head");
        // More entries than a page of the chain.
        AuditLog::audit_append(&store, actions(2500), 10).await.unwrap();
        assert_eq!(evidence.sign_head_if_due(&store, 20).await.unwrap(), Some(2499), "the first head, at once");
        assert_eq!(evidence.sign_head_if_due(&store, 30).await.unwrap(), None, "nothing new");
        AuditLog::audit_append(&store, actions(999), 40).await.unwrap();
        assert_eq!(evidence.sign_head_if_due(&store, 50).await.unwrap(), None, "999 entries: not due yet");
        AuditLog::audit_append(&store, actions(1), 60).await.unwrap();
        assert_eq!(evidence.sign_head_if_due(&store, 70).await.unwrap(), Some(3499));
        let heads = store.audit_heads().unwrap();
        assert_eq!(heads.iter().map(|h| h.head.position).collect::<Vec<_>>(), [2499, 3499]);
        assert_eq!(AuditLog::audit_last_head(&store).await.unwrap(), heads.last().cloned());
        let last = AuditLog::audit_last_entry(&store).await.unwrap().unwrap();
        assert_eq!(last.position, 3499);
        assert_eq!(Some(last), store.audit_entries(3499, 10).unwrap().pop());
        // The head verifies against the entry it covers.
        let signed = heads.last().unwrap();
        assert_eq!(signed.head.hash, store.audit_entries(3499, 1).unwrap()[0].hash);
    }
}
