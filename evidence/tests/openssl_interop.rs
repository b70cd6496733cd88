//! Interoperability with an independent SM2 implementation: OpenSSL 3's `pkeyutl` verifies the
//! receipts and chain heads this crate signs (with the commands docs/operations.md gives
//! partners), reads the certificate this crate makes, and signs what this crate verifies.
//! Skips loudly when no `openssl` with SM2 is on the machine (`.ci/run` installs Debian's).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use yrdx_evidence::{
    sign_receipt, verify_receipt, AuditEntry, AuditEvent, ChainHead, GatewayPublicKey, GatewaySigningKey, Receipt,
    ReceiptError, ReceiptFields, Sm3Digest, DEFAULT_DISTINGUISHING_ID,
};

fn openssl(args: &[&str], dir: &Path) -> Output {
    match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(output) => output,
        Err(e) => panic!("openssl {args:?}: {e}"),
    }
}

/// A scratch folder, or `None` (after saying why) when OpenSSL cannot do SM2 here.
fn openssl_with_sm2(name: &str) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("yrdx-evidence-openssl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    match Command::new("openssl").args(["genpkey", "-algorithm", "SM2", "-out", "probe.key"]).current_dir(&dir).output()
    {
        Ok(out) if out.status.success() => Some(dir),
        Ok(out) => {
            eprintln!(
                "SKIPPED: this openssl cannot make SM2 keys ({}); the interoperability check did not run",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        Err(e) => {
            eprintln!("SKIPPED: no openssl on this machine ({e}); the interoperability check did not run");
            None
        }
    }
}

/// `openssl pkeyutl -verify` exactly as docs/operations.md gives it to partners.
fn openssl_verifies(dir: &Path, public_pem: &str, message: &[u8], signature: &[u8], distid: &str) -> bool {
    std::fs::write(dir.join("pub.pem"), public_pem).unwrap();
    std::fs::write(dir.join("msg"), message).unwrap();
    std::fs::write(dir.join("sig.der"), signature).unwrap();
    let distid = format!("distid:{distid}");
    let out = openssl(
        &[
            "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-digest", "sm3", "-pkeyopt", &distid,
            "-in", "msg", "-sigfile", "sig.der",
        ],
        dir,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    out.status.success() && stdout.contains("Signature Verified Successfully")
}

fn fields(document: &[u8]) -> ReceiptFields {
    ReceiptFields::example(document, 7)
}

#[test]
fn openssl_verifies_receipts_and_heads_this_crate_signs() {
    let Some(dir) = openssl_with_sm2("verify") else { return };
    let key = GatewaySigningKey::generate(DEFAULT_DISTINGUISHING_ID).unwrap();
    // The public key as a partner gets it: out of the certificate, by OpenSSL.
    let cert = key.self_signed_certificate("yrdx gateway signing (test)", 30).unwrap();
    std::fs::write(dir.join("gateway-sign.pem"), &cert).unwrap();
    let out = openssl(&["x509", "-in", "gateway-sign.pem", "-pubkey", "-noout"], &dir);
    assert!(out.status.success(), "openssl reads the certificate: {}", String::from_utf8_lossy(&out.stderr));
    let public_pem = String::from_utf8(out.stdout).unwrap();
    assert_eq!(GatewayPublicKey::from_pem(&public_pem).unwrap(), key.public_key());
    let text = openssl(&["x509", "-in", "gateway-sign.pem", "-noout", "-text"], &dir);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("SM2-with-SM3"), "signature algorithm named by OpenSSL:\n{text}");
    let out = openssl(&["verify", "-check_ss_sig", "-CAfile", "gateway-sign.pem", "gateway-sign.pem"], &dir);
    assert!(
        out.status.success(),
        "openssl checks the certificate's own SM2-with-SM3 signature: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let document = b"{\"XXDM\":\"320000\",\"DATA\":[]}";
    let receipt = sign_receipt(&key, fields(document)).unwrap();
    let message = receipt.signed_bytes().unwrap();
    assert!(openssl_verifies(&dir, &public_pem, &message, &receipt.signature, DEFAULT_DISTINGUISHING_ID));
    // Not vacuous: OpenSSL refuses an altered text and another distinguishing id.
    let mut altered = message.clone();
    altered[message.len() - 2] = b'8';
    assert!(!openssl_verifies(&dir, &public_pem, &altered, &receipt.signature, DEFAULT_DISTINGUISHING_ID));
    assert!(!openssl_verifies(&dir, &public_pem, &message, &receipt.signature, "1234567812345679"));
    // Many signatures: r and s with their high bit set (a 0x00 byte in DER) or short come up.
    for position in 0..16u64 {
        let r = sign_receipt(&key, ReceiptFields { audit_position: position, ..fields(document) }).unwrap();
        assert!(
            openssl_verifies(&dir, &public_pem, &r.signed_bytes().unwrap(), &r.signature, DEFAULT_DISTINGUISHING_ID),
            "position {position}: signature {}",
            r.signature.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
    }

    // A configured distinguishing id.
    let configured = key.with_distinguishing_id("yrdx-shanghai-gateway").unwrap();
    let receipt = sign_receipt(&configured, fields(document)).unwrap();
    assert!(openssl_verifies(
        &dir,
        &public_pem,
        &receipt.signed_bytes().unwrap(),
        &receipt.signature,
        "yrdx-shanghai-gateway"
    ));

    // A signed chain head.
    let entry = AuditEntry::first(
        1_796_130_000_000,
        AuditEvent::SubmissionAccepted {
            sender: "320000".into(),
            message_id: "JS-1".into(),
            document_sm3: Sm3Digest::of(document),
        },
    );
    let head = ChainHead::of(&entry, 1_796_130_000_500).sign(&key).unwrap();
    assert!(openssl_verifies(
        &dir,
        &public_pem,
        &head.head.signed_bytes().unwrap(),
        &head.signature,
        DEFAULT_DISTINGUISHING_ID
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn this_crate_verifies_what_openssl_signs() {
    let Some(dir) = openssl_with_sm2("sign") else { return };
    let out = openssl(&["genpkey", "-algorithm", "SM2", "-out", "openssl.key"], &dir);
    assert!(out.status.success());
    let out = openssl(&["pkey", "-in", "openssl.key", "-pubout", "-out", "openssl.pub"], &dir);
    assert!(out.status.success());
    let document = b"<doc>zhejiang</doc>";
    let unsigned = Receipt {
        fields: fields(document),
        distinguishing_id: DEFAULT_DISTINGUISHING_ID.into(),
        signature: Vec::new(),
    };
    std::fs::write(dir.join("msg"), unsigned.signed_bytes().unwrap()).unwrap();
    let out = openssl(
        &[
            "pkeyutl",
            "-sign",
            "-inkey",
            "openssl.key",
            "-rawin",
            "-digest",
            "sm3",
            "-pkeyopt",
            "distid:1234567812345678",
            "-in",
            "msg",
            "-out",
            "sig.der",
        ],
        &dir,
    );
    assert!(out.status.success(), "openssl signs: {}", String::from_utf8_lossy(&out.stderr));
    let signature = std::fs::read(dir.join("sig.der")).unwrap();
    let public = GatewayPublicKey::from_pem(&std::fs::read_to_string(dir.join("openssl.pub")).unwrap()).unwrap();
    let receipt = Receipt { signature, ..unsigned };
    verify_receipt(&public, &receipt, Some(document)).unwrap();
    // The key OpenSSL wrote (PKCS#8) loads as a signing key with the same public key.
    let key = GatewaySigningKey::from_pkcs8_pem(
        &std::fs::read_to_string(dir.join("openssl.key")).unwrap(),
        DEFAULT_DISTINGUISHING_ID,
    )
    .unwrap();
    assert_eq!(key.public_key(), public);
    let mut altered = receipt.clone();
    altered.fields.sender = "330000".into();
    assert!(matches!(verify_receipt(&public, &altered, None), Err(ReceiptError::Signature { .. })));
    let _ = std::fs::remove_dir_all(&dir);
}
