//! The development PKI writes a configuration the gateway loads, with its SM2 signing key.

use std::path::PathBuf;

fn validity_days(pem: &str) -> (i64, i64) {
    yrdx_pki::validity_of_pem(pem).expect("a PEM certificate")
}

#[test]
fn init_writes_the_signing_key_and_configures_it() {
    let dir = std::env::temp_dir().join(format!("yrdx-pki-evidence-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pki = yrdx_pki::init(&dir, "127.0.0.1:0").unwrap();
    let config = yrdx_gateway::config::Config::load(&pki.config).unwrap();
    let evidence = config.evidence.clone().expect("[evidence] written");
    assert_eq!(evidence.key, PathBuf::from(yrdx_pki::SIGNING_KEY_FILE));
    assert_eq!(evidence.cert, PathBuf::from(yrdx_pki::SIGNING_CERT_FILE));
    let key = evidence.signing_key(&config).unwrap();
    assert_eq!(key.distinguishing_id(), yrdx_evidence::DEFAULT_DISTINGUISHING_ID);
    let cert = std::fs::read_to_string(dir.join(yrdx_pki::SIGNING_CERT_FILE)).unwrap();
    assert!((364..=365).contains(&validity_days(&cert).1));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(yrdx_pki::SIGNING_KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Renewing keeps the key and issues a new certificate for it.
    yrdx_pki::renew(&dir).unwrap();
    let renewed = std::fs::read_to_string(dir.join(yrdx_pki::SIGNING_CERT_FILE)).unwrap();
    assert_ne!(renewed, cert);
    key.matches_certificate(&renewed).unwrap();
    // A certificate of another key is refused, naming the key.
    std::fs::copy(dir.join("pki/ca.pem"), dir.join(yrdx_pki::SIGNING_CERT_FILE)).unwrap();
    let e = evidence.signing_key(&config).unwrap_err();
    assert!(e.to_string().starts_with("evidence.cert:"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
