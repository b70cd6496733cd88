//! `yrdx receipt verify` as a partner runs it, on a receipt signed with the key `yrdx pki init`
//! wrote: exit codes, what it says; and the OpenSSL-only check docs/operations.md gives partners.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use yrdx_evidence::{sign_receipt, GatewaySigningKey, ReceiptFields, DEFAULT_DISTINGUISHING_ID};

fn yrdx(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_yrdx")).args(args).output().expect("yrdx runs")
}

/// A development PKI, a document and its receipt (`receipt.json`) signed with the PKI's key.
fn setup(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("yrdx-receipt-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = yrdx(&["pki", "init", "--dir", dir.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let config = std::fs::read_to_string(dir.join("yrdx.toml")).unwrap();
    assert!(config.contains("[evidence]\nkey = \"pki/gateway-sign.key\"\ncert = \"pki/gateway-sign.pem\""), "{config}");
    let key_pem = std::fs::read_to_string(dir.join("pki/gateway-sign.key")).unwrap();
    let key = GatewaySigningKey::from_pkcs8_pem(&key_pem, DEFAULT_DISTINGUISHING_ID).unwrap();
    let document = b"{\"XXDM\":\"320000\",\"DATA\":[{\"CYDBH\":\"JS-1\"}]}";
    std::fs::write(dir.join("document.json"), document).unwrap();
    std::fs::write(dir.join("other.json"), b"{\"XXDM\":\"320000\",\"DATA\":[]}").unwrap();
    let receipt = sign_receipt(&key, ReceiptFields::example(document, 12)).unwrap();
    std::fs::write(dir.join("receipt.json"), receipt.to_json().unwrap()).unwrap();
    dir
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn a_receipt_verifies_and_what_fails_is_named() {
    let dir = setup("verify");
    let cert = path(&dir, "pki/gateway-sign.pem");
    let receipt = path(&dir, "receipt.json");

    let out = yrdx(&["receipt", "verify", "--cert", &cert, &receipt, &path(&dir, "document.json")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("verified: urn:yrdx:gateway:shanghai accepted message JS-20261201-000001 from 320000 at 2026-12-01T13:00:00.123Z, audit chain position 12"), "{stdout}");
    assert!(stdout.contains("document.json matches: SM3 "), "{stdout}");

    let out = yrdx(&["receipt", "verify", "--cert", &cert, &receipt]);
    assert_eq!(out.status.code(), Some(0));
    // Submit's whole reply, as grpcurl prints it, holding the receipt.
    let reply = format!(
        "{{\"messageId\": \"JS-20261201-000001\", \"records\": [], \"receipt\": {}}}",
        std::fs::read_to_string(&receipt).unwrap()
    );
    std::fs::write(dir.join("reply.json"), reply).unwrap();
    let out = yrdx(&["receipt", "verify", "--cert", &cert, &path(&dir, "reply.json"), &path(&dir, "document.json")]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    // Another document: exit 1, naming the digest.
    let out = yrdx(&["receipt", "verify", "--cert", &cert, &receipt, &path(&dir, "other.json")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not verify") && stderr.contains("receipt's document_sm3"), "{stderr}");

    // An altered receipt: exit 1, naming the signature.
    let text = std::fs::read_to_string(&receipt).unwrap();
    std::fs::write(dir.join("altered.json"), text.replace("\"320000\"", "\"330000\"")).unwrap();
    let out = yrdx(&["receipt", "verify", "--cert", &cert, &path(&dir, "altered.json")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the SM2 signature does not verify"), "{stderr}");

    // Another gateway's certificate: exit 1.
    let other = setup("other-gateway");
    let out = yrdx(&["receipt", "verify", "--cert", &path(&other, "pki/gateway-sign.pem"), &receipt]);
    assert_eq!(out.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&other);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_and_unreadable_input_exit_2() {
    let dir = setup("usage");
    let cert = path(&dir, "pki/gateway-sign.pem");
    let receipt = path(&dir, "receipt.json");
    std::fs::write(dir.join("garbage.json"), "{\"messageId\": 1").unwrap();
    for (args, says) in [
        (vec!["receipt", "verify", &receipt], "--cert"),
        (vec!["receipt", "verify", "--cert", &cert], "RECEIPT"),
        (
            vec!["receipt", "verify", "--cert", "/nonexistent/gateway-sign.pem", &receipt],
            "/nonexistent/gateway-sign.pem",
        ),
        (vec!["receipt", "verify", "--cert", &receipt, &receipt], "expected a PEM certificate"),
        (vec!["receipt", "verify", "--cert", &cert, "/nonexistent/receipt.json"], "/nonexistent/receipt.json"),
        (vec!["receipt", "verify", "--cert", &cert, &path(&dir, "garbage.json")], "receipt JSON"),
        (vec!["receipt", "verify", "--cert", &cert, &receipt, "/nonexistent/doc"], "/nonexistent/doc"),
    ] {
        let out = yrdx(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // The TLS CA is a certificate, but not of an SM2 key.
    let out = yrdx(&["receipt", "verify", "--cert", &path(&dir, "pki/ca.pem"), &receipt]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an SM2 key"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The partner's OpenSSL-only check, as docs/operations.md writes it (shell, base64, openssl).
#[test]
fn the_documented_openssl_commands_verify_the_receipt() {
    let tools = ["openssl", "base64", "sh"];
    if let Some(missing) = tools.iter().find(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
    }) {
        eprintln!("SKIPPED: {missing} is not on this machine; the documented OpenSSL check did not run");
        return;
    }
    let dir = setup("openssl");
    let receipt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("receipt.json")).unwrap()).unwrap();
    let field = |name: &str| receipt[name].as_str().unwrap().to_string();
    // docs/operations.md, "Receipts and the audit chain", for a partner: the same lines.
    let script = format!(
        r#"set -e
openssl x509 -in pki/gateway-sign.pem -pubkey -noout > gateway-sign.pub
printf 'yrdx-receipt-v1\ngateway=%s\nsender=%s\nmessage_id=%s\ndocument_sm3=%s\naccepted_at=%s\naudit_position=%s\n' \
  '{gateway}' '{sender}' '{message_id}' '{document_sm3}' '{accepted_at}' '{audit_position}' > receipt.txt
printf '%s' '{signature}' | base64 -d > receipt.sig
openssl pkeyutl -verify -pubin -inkey gateway-sign.pub -rawin -digest sm3 \
  -pkeyopt distid:{distid} -in receipt.txt -sigfile receipt.sig
openssl dgst -sm3 -r document.json
"#,
        gateway = field("gateway"),
        sender = field("sender"),
        message_id = field("messageId"),
        document_sm3 = field("documentSm3"),
        accepted_at = field("acceptedAt"),
        audit_position = field("auditPosition"),
        signature = field("signature"),
        distid = field("distinguishingId"),
    );
    let out = Command::new("sh").args(["-c", &script]).current_dir(&dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Signature Verified Successfully"), "{stdout}");
    assert!(stdout.contains(&field("documentSm3")), "openssl's SM3 of the document is the receipt's: {stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
