//! Signed receipts: the gateway's proof to a sender that a document was accepted.
//!
//! The signature covers [`Receipt::signed_bytes`], a plain text a partner can rebuild from the
//! receipt's fields with any tool and check with OpenSSL alone (docs/operations.md, "Receipts and
//! the audit chain"):
//!
//! ```text
//! yrdx-receipt-v1
//! gateway=<the gateway's identity>
//! sender=<the sender's envelope id>
//! message_id=<the envelope's message id>
//! document_sm3=<SM3 of the document bytes as received, 64 lowercase hex digits>
//! accepted_at=<acceptance time, RFC 3339 UTC with milliseconds: 2026-12-01T13:00:00.123Z>
//! audit_position=<the position of the acceptance's entry in the audit chain, decimal>
//! ```
//!
//! Every line ends with one line feed (the last too); no other white space; in a value `%`, line
//! feed and carriage return are written `%25`, `%0A` and `%0D` (nothing else is escaped).
//! The signature is SM2 (GM/T 0003) with SM3 under the receipt's distinguishing identifier,
//! DER-encoded.

use crate::digest::Sm3Digest;
use crate::keys::{GatewayPublicKey, GatewaySigningKey, KeyError};
use crate::text::Lines;
use crate::time::{format_millis, parse_millis, OutOfRange};
use base64::Engine;
use serde::{Deserialize, Serialize};

/// The first line of the signed text: the receipt form and its version.
pub const RECEIPT_FORM: &str = "yrdx-receipt-v1";

/// What a receipt states, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptFields {
    /// The gateway's identity (e.g. `urn:yrdx:gateway:shanghai`).
    pub gateway: String,
    /// The sender's envelope id (a region code, `320000`).
    pub sender: String,
    /// The envelope's message id.
    pub message_id: String,
    /// SM3 of the document bytes exactly as received.
    pub document_sm3: Sm3Digest,
    /// When the document was accepted, in milliseconds since 1970-01-01T00:00:00Z.
    pub accepted_at_ms: i64,
    /// The position of the acceptance's entry in the audit chain.
    pub audit_position: u64,
}

impl ReceiptFields {
    /// The example receipt of the documentation and the tests: Jiangsu's message
    /// `JS-20261201-000001` of `document`, accepted by Shanghai's gateway at a fixed time, its
    /// acceptance at `audit_position` in the audit chain.
    pub fn example(document: &[u8], audit_position: u64) -> ReceiptFields {
        ReceiptFields {
            gateway: "urn:yrdx:gateway:shanghai".into(),
            sender: "320000".into(),
            message_id: "JS-20261201-000001".into(),
            document_sm3: Sm3Digest::of(document),
            accepted_at_ms: 1_796_130_000_123,
            audit_position,
        }
    }
}

/// A signed receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// What it states.
    pub fields: ReceiptFields,
    /// The SM2 distinguishing identifier the signature was made under.
    pub distinguishing_id: String,
    /// The SM2 signature of [`Receipt::signed_bytes`], DER `SEQUENCE { r, s }`.
    pub signature: Vec<u8>,
}

/// Why a receipt could not be made, read or verified.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The signature does not verify with the key given: the receipt was altered, made by another
    /// key, or under another distinguishing identifier.
    #[error("receipt for message {message_id}: the SM2 signature does not verify with this key (distinguishing id '{distinguishing_id}')")]
    Signature {
        /// The receipt's message id.
        message_id: String,
        /// The distinguishing identifier it claims.
        distinguishing_id: String,
    },
    /// The document given is not the one the receipt was issued for.
    #[error(
        "receipt for message {message_id}: the document's SM3 is {document}, the receipt's document_sm3 is {receipt}"
    )]
    DocumentDigest {
        /// The receipt's message id.
        message_id: String,
        /// The digest the receipt states.
        receipt: Sm3Digest,
        /// The digest of the document given.
        document: Sm3Digest,
    },
    /// The acceptance time cannot be written as a receipt time.
    #[error("receipt for message {message_id}: accepted_at: {source}")]
    Time {
        /// The message id.
        message_id: String,
        /// Why.
        #[source]
        source: OutOfRange,
    },
    /// The key could not sign, or the distinguishing identifier cannot be used.
    #[error("receipt for message {message_id}: {source}")]
    Key {
        /// The message id.
        message_id: String,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// The receipt's JSON form does not read.
    #[error("receipt JSON: {field}: {message}")]
    Json {
        /// The offending field (`$` for the whole text).
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl ReceiptFields {
    /// The text the signature covers (see the module's documentation).
    pub fn signed_bytes(&self) -> Result<Vec<u8>, OutOfRange> {
        Ok(Lines::new(RECEIPT_FORM)
            .field("gateway", &self.gateway)
            .field("sender", &self.sender)
            .field("message_id", &self.message_id)
            .field("document_sm3", &self.document_sm3.to_hex())
            .field("accepted_at", &format_millis(self.accepted_at_ms)?)
            .field("audit_position", &self.audit_position.to_string())
            .into_bytes())
    }
}

impl Receipt {
    /// The text the signature covers (see the module's documentation).
    pub fn signed_bytes(&self) -> Result<Vec<u8>, OutOfRange> {
        self.fields.signed_bytes()
    }

    /// The acceptance time as the signed text writes it.
    pub fn accepted_at(&self) -> Result<String, OutOfRange> {
        format_millis(self.fields.accepted_at_ms)
    }

    /// The JSON form (`yrdx receipt verify` reads it): the proto3 JSON names of `yrdx.v1.Receipt`
    /// (`messageId`, `documentSm3`, `acceptedAt`, `auditPosition` as a decimal string,
    /// `distinguishingId`, `signature` in base64), so a receipt saved from a gRPC reply reads too.
    pub fn to_json(&self) -> Result<String, ReceiptError> {
        let accepted_at = self
            .accepted_at()
            .map_err(|source| ReceiptError::Time { message_id: self.fields.message_id.clone(), source })?;
        let wire = ReceiptJson {
            gateway: self.fields.gateway.clone(),
            sender: self.fields.sender.clone(),
            message_id: self.fields.message_id.clone(),
            document_sm3: self.fields.document_sm3.to_hex(),
            accepted_at,
            audit_position: Position::Text(self.fields.audit_position.to_string()),
            distinguishing_id: self.distinguishing_id.clone(),
            signature: base64::engine::general_purpose::STANDARD.encode(&self.signature),
        };
        serde_json::to_string_pretty(&wire)
            .map_err(|e| ReceiptError::Json { field: "$".into(), message: e.to_string() })
    }

    /// Reads the JSON form [`Receipt::to_json`] writes (`auditPosition` as a number is accepted
    /// too; a field proto3 JSON omits because it is empty or zero reads as empty or zero).
    pub fn from_json(text: &str) -> Result<Receipt, ReceiptError> {
        let wire: ReceiptJson =
            serde_json::from_str(text).map_err(|e| ReceiptError::Json { field: "$".into(), message: e.to_string() })?;
        let bad = |field: &str, message: String| ReceiptError::Json { field: field.into(), message };
        let document_sm3 = Sm3Digest::from_hex(&wire.document_sm3).map_err(|e| bad("documentSm3", e.to_string()))?;
        let accepted_at_ms = parse_millis(&wire.accepted_at).map_err(|e| bad("acceptedAt", e.to_string()))?;
        let audit_position = match &wire.audit_position {
            Position::Number(n) => *n,
            Position::Text(t) => {
                t.parse::<u64>().map_err(|_| bad("auditPosition", format!("'{t}' is not a whole number")))?
            }
        };
        let signature = base64::engine::general_purpose::STANDARD
            .decode(wire.signature.trim())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(wire.signature.trim()))
            .map_err(|e| bad("signature", format!("not base64: {e}")))?;
        if signature.is_empty() {
            return Err(bad("signature", "missing".into()));
        }
        Ok(Receipt {
            fields: ReceiptFields {
                gateway: wire.gateway,
                sender: wire.sender,
                message_id: wire.message_id,
                document_sm3,
                accepted_at_ms,
                audit_position,
            },
            distinguishing_id: wire.distinguishing_id,
            signature,
        })
    }
}

impl Receipt {
    /// Reads a receipt's JSON form, or the proto3 JSON of a reply that carries one in its
    /// `receipt` member (`SubmitReply`, `GetReceiptReply`; the reply's other members are ignored).
    pub fn from_reply_json(text: &str) -> Result<Receipt, ReceiptError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ReceiptError::Json { field: "$".into(), message: e.to_string() })?;
        match value.get("receipt") {
            Some(receipt @ serde_json::Value::Object(_)) => {
                Receipt::from_json(&receipt.to_string()).map_err(|e| match e {
                    ReceiptError::Json { field, message } if field != "$" => {
                        ReceiptError::Json { field: format!("receipt.{field}"), message }
                    }
                    other => other,
                })
            }
            Some(_) => Err(ReceiptError::Json { field: "receipt".into(), message: "not an object".into() }),
            None => Receipt::from_json(text),
        }
    }
}

/// `auditPosition`: proto3 JSON writes 64-bit numbers as strings; a number is read too.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Position {
    Number(u64),
    Text(String),
}

impl Default for Position {
    fn default() -> Position {
        Position::Number(0)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReceiptJson {
    #[serde(default)]
    gateway: String,
    #[serde(default)]
    sender: String,
    #[serde(default)]
    message_id: String,
    document_sm3: String,
    accepted_at: String,
    #[serde(default)]
    audit_position: Position,
    #[serde(default)]
    distinguishing_id: String,
    signature: String,
}

/// Signs `fields` with the gateway's key under the key's distinguishing identifier.
pub fn sign_receipt(key: &GatewaySigningKey, fields: ReceiptFields) -> Result<Receipt, ReceiptError> {
    let message =
        fields.signed_bytes().map_err(|source| ReceiptError::Time { message_id: fields.message_id.clone(), source })?;
    let signature =
        key.sign_der(&message).map_err(|source| ReceiptError::Key { message_id: fields.message_id.clone(), source })?;
    Ok(Receipt { fields, distinguishing_id: key.distinguishing_id().to_string(), signature })
}

/// Checks the receipt's signature with the gateway's public key and, when `document` is given,
/// that the document's SM3 is the one the receipt states. The first failure is the error: the
/// signature (nothing the receipt says can be trusted then), then the document.
pub fn verify_receipt(key: &GatewayPublicKey, receipt: &Receipt, document: Option<&[u8]>) -> Result<(), ReceiptError> {
    let message_id = &receipt.fields.message_id;
    let message =
        receipt.signed_bytes().map_err(|source| ReceiptError::Time { message_id: message_id.clone(), source })?;
    let verified = key
        .verify_der(&message, &receipt.signature, &receipt.distinguishing_id)
        .map_err(|source| ReceiptError::Key { message_id: message_id.clone(), source })?;
    if !verified {
        return Err(ReceiptError::Signature {
            message_id: message_id.clone(),
            distinguishing_id: receipt.distinguishing_id.clone(),
        });
    }
    if let Some(document) = document {
        let found = Sm3Digest::of(document);
        if found != receipt.fields.document_sm3 {
            return Err(ReceiptError::DocumentDigest {
                message_id: message_id.clone(),
                receipt: receipt.fields.document_sm3,
                document: found,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_DISTINGUISHING_ID;

    fn fields(document: &[u8]) -> ReceiptFields {
        ReceiptFields::example(document, 42)
    }

    #[test]
    fn the_signed_text_is_exactly_the_documented_one() {
        let text = String::from_utf8(fields(b"abc").signed_bytes().unwrap()).unwrap();
        assert_eq!(
            text,
            "yrdx-receipt-v1\ngateway=urn:yrdx:gateway:shanghai\nsender=320000\nmessage_id=JS-20261201-000001\n\
             document_sm3=66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0\n\
             accepted_at=2026-12-01T13:00:00.123Z\naudit_position=42\n"
        );
    }

    #[test]
    fn a_receipt_verifies_and_names_what_fails() {
        let key = GatewaySigningKey::generate(DEFAULT_DISTINGUISHING_ID).unwrap();
        let public = key.public_key();
        let document = b"{\"XXDM\":\"320000\"}";
        let receipt = sign_receipt(&key, fields(document)).unwrap();
        assert_eq!(receipt.distinguishing_id, DEFAULT_DISTINGUISHING_ID);
        // Signed again (a duplicate resubmission): the same receipt, byte for byte.
        assert_eq!(sign_receipt(&key, fields(document)).unwrap(), receipt);
        verify_receipt(&public, &receipt, None).unwrap();
        verify_receipt(&public, &receipt, Some(document)).unwrap();

        let e = verify_receipt(&public, &receipt, Some(b"{\"XXDM\":\"320001\"}")).unwrap_err();
        assert!(matches!(e, ReceiptError::DocumentDigest { .. }), "{e}");
        assert!(e.to_string().contains("JS-20261201-000001") && e.to_string().contains("document_sm3"), "{e}");

        let mut altered = receipt.clone();
        altered.fields.audit_position = 43;
        let e = verify_receipt(&public, &altered, Some(document)).unwrap_err();
        assert!(matches!(e, ReceiptError::Signature { .. }), "{e}");
        assert!(e.to_string().contains("does not verify"), "{e}");

        let mut other_id = receipt.clone();
        other_id.distinguishing_id = "another".into();
        assert!(matches!(verify_receipt(&public, &other_id, None), Err(ReceiptError::Signature { .. })));

        let stranger = GatewaySigningKey::generate(DEFAULT_DISTINGUISHING_ID).unwrap().public_key();
        assert!(matches!(verify_receipt(&stranger, &receipt, None), Err(ReceiptError::Signature { .. })));

        let configured = key.with_distinguishing_id("yrdx-shanghai").unwrap();
        let r = sign_receipt(&configured, fields(document)).unwrap();
        assert_eq!(r.distinguishing_id, "yrdx-shanghai");
        verify_receipt(&public, &r, Some(document)).unwrap();
    }

    #[test]
    fn the_json_form_round_trips_and_reads_proto3_json() {
        let key = GatewaySigningKey::generate(DEFAULT_DISTINGUISHING_ID).unwrap();
        let receipt = sign_receipt(&key, fields(b"doc")).unwrap();
        let json = receipt.to_json().unwrap();
        assert!(
            json.contains("\"auditPosition\": \"42\"") && json.contains("\"acceptedAt\": \"2026-12-01T13:00:00.123Z\"")
        );
        assert_eq!(Receipt::from_json(&json).unwrap(), receipt);
        let numeric = json.replace("\"auditPosition\": \"42\"", "\"auditPosition\": 42");
        assert_eq!(Receipt::from_json(&numeric).unwrap(), receipt);

        let bad = json.replace("2026-12-01T13:00:00.123Z", "2026-12-01T21:00:00+08:00");
        let e = Receipt::from_json(&bad).unwrap_err();
        assert!(e.to_string().starts_with("receipt JSON: acceptedAt:"), "{e}");
        let e =
            Receipt::from_json(&json.replace("\"auditPosition\": \"42\"", "\"auditPosition\": \"-1\"")).unwrap_err();
        assert!(e.to_string().contains("auditPosition"), "{e}");
        let e = Receipt::from_json(&json.replace("\"gateway\"", "\"gateway_x\"")).unwrap_err();
        assert!(e.to_string().contains("gateway_x"), "{e}");
        let reply = format!("{{\"messageId\": \"JS-20261201-000001\", \"records\": [], \"receipt\": {json}}}");
        assert_eq!(Receipt::from_reply_json(&reply).unwrap(), receipt);
        assert_eq!(Receipt::from_reply_json(&json).unwrap(), receipt);
        let e = Receipt::from_reply_json(&reply.replace("\"documentSm3\": \"", "\"documentSm3\": \"zz")).unwrap_err();
        assert!(e.to_string().starts_with("receipt JSON: receipt.documentSm3:"), "{e}");
        assert!(Receipt::from_reply_json("{\"receipt\": 1}").unwrap_err().to_string().contains("not an object"));
        let e = Receipt::from_json("[]").unwrap_err();
        assert!(e.to_string().starts_with("receipt JSON: $:"), "{e}");
    }
}
