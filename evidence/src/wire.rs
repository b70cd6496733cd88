//! Receipts as the API carries them: `yrdx.v1.Receipt` (`SubmitReply.receipt`,
//! `GetReceiptReply.receipt`).

use crate::digest::Sm3Digest;
use crate::receipt::{Receipt, ReceiptError, ReceiptFields};
use crate::time::parse_millis;
use yrdx_proto::v1;

impl Receipt {
    /// The API message of this receipt.
    pub fn to_proto(&self) -> Result<v1::Receipt, ReceiptError> {
        let accepted_at = self
            .accepted_at()
            .map_err(|source| ReceiptError::Time { message_id: self.fields.message_id.clone(), source })?;
        Ok(v1::Receipt {
            gateway: self.fields.gateway.clone(),
            sender: self.fields.sender.clone(),
            message_id: self.fields.message_id.clone(),
            document_sm3: self.fields.document_sm3.to_hex(),
            accepted_at,
            audit_position: self.fields.audit_position,
            distinguishing_id: self.distinguishing_id.clone(),
            signature: self.signature.clone(),
        })
    }

    /// The receipt of an API message (its fields checked as [`Receipt::from_json`] checks them;
    /// the signature is not verified here).
    pub fn from_proto(message: &v1::Receipt) -> Result<Receipt, ReceiptError> {
        let bad = |field: &str, message: String| ReceiptError::Json { field: field.into(), message };
        Ok(Receipt {
            fields: ReceiptFields {
                gateway: message.gateway.clone(),
                sender: message.sender.clone(),
                message_id: message.message_id.clone(),
                document_sm3: Sm3Digest::from_hex(&message.document_sm3)
                    .map_err(|e| bad("document_sm3", e.to_string()))?,
                accepted_at_ms: parse_millis(&message.accepted_at).map_err(|e| bad("accepted_at", e.to_string()))?,
                audit_position: message.audit_position,
            },
            distinguishing_id: message.distinguishing_id.clone(),
            signature: message.signature.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::GatewaySigningKey;
    use crate::receipt::{sign_receipt, verify_receipt};
    use crate::DEFAULT_DISTINGUISHING_ID;

    #[test]
    fn the_api_message_round_trips_and_its_proto3_json_is_the_receipt_json() {
        let key = GatewaySigningKey::generate(DEFAULT_DISTINGUISHING_ID).unwrap();
        let document = b"<doc/>";
        let receipt = sign_receipt(
            &key,
            ReceiptFields {
                gateway: "urn:yrdx:gateway:shanghai".into(),
                sender: "330000".into(),
                message_id: "ZJ-20261201-000002".into(),
                document_sm3: Sm3Digest::of(document),
                accepted_at_ms: 1_796_130_000_999,
                audit_position: 0,
            },
        )
        .unwrap();
        let message = receipt.to_proto().unwrap();
        assert_eq!(message.accepted_at, "2026-12-01T13:00:00.999Z");
        assert_eq!(Receipt::from_proto(&message).unwrap(), receipt);
        // What a gRPC client prints (pbjson, proto3 JSON: position 0 omitted) reads and verifies.
        let printed = serde_json::to_string(&message).unwrap();
        assert!(!printed.contains("auditPosition"), "{printed}");
        let read = Receipt::from_json(&printed).unwrap();
        assert_eq!(read, receipt);
        verify_receipt(&key.public_key(), &read, Some(document)).unwrap();
        let reply = v1::SubmitReply {
            message_id: message.message_id.clone(),
            receipt: Some(message.clone()),
            ..Default::default()
        };
        assert_eq!(Receipt::from_reply_json(&serde_json::to_string(&reply).unwrap()).unwrap(), receipt);
        let positioned = v1::Receipt { audit_position: 12_345_678_901, ..message.clone() };
        assert_eq!(
            Receipt::from_json(&serde_json::to_string(&positioned).unwrap()).unwrap().fields.audit_position,
            12_345_678_901
        );

        let e = Receipt::from_proto(&v1::Receipt { accepted_at: "yesterday".into(), ..message }).unwrap_err();
        assert!(e.to_string().contains("accepted_at"), "{e}");
    }
}
