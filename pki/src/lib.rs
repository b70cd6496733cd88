//! Development PKI (`yrdx pki init`, `yrdx pki renew`): a CA (valid two years), a server
//! certificate for localhost, a client certificate for every partner and an operator (one year
//! each), the gateway's SM2 signing key for receipts and audit chain heads with a self-signed
//! SM2-with-SM3 certificate (`pki/gateway-sign.key`, `pki/gateway-sign.pem`; rcgen, which makes
//! the TLS certificates, has no SM2), and a ready configuration. Test fixtures only — generated at
//! run time, never committed.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod client;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};

/// Why the PKI could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// The SM2 signing key or its certificate could not be made or read.
    #[error("{path}: {source}")]
    Evidence {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: yrdx_evidence::KeyError,
    },
    /// A file could not be written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        message: String,
    },
}

/// A certificate authority able to issue certificates.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// The CA's private key, PEM (a development or test CA: keep it off production machines).
    pub key_pem: String,
}

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PEM.
    pub key_pem: String,
}

/// The partners of the development PKI: (name, region, format).
pub const DEV_PARTNERS: &[(&str, &str, &str)] = &[
    ("shanghai", "310000", "canonical"),
    ("jiangsu", "320000", "jiangsu"),
    ("zhejiang", "330000", "zhejiang"),
    ("beijing", "110000", "beijing"),
];

/// The SAN URI of a partner certificate.
pub fn partner_identity(name: &str) -> String {
    format!("urn:yrdx:partner:{name}")
}

/// The SAN URI of an operator certificate.
pub fn operator_identity(name: &str) -> String {
    format!("urn:yrdx:operator:{name}")
}

/// Days a development client or server certificate is valid (renew with `yrdx pki renew`).
pub const LEAF_VALIDITY_DAYS: u64 = 365;
/// Days a development CA is valid (then `yrdx pki init` anew).
pub const CA_VALIDITY_DAYS: u64 = 2 * 365;

/// Valid from an hour ago (clocks drift) for `days` days: a realistic lifetime, since people copy
/// development setups into production.
fn set_validity(params: &mut CertificateParams, days: u64) {
    let now = x509_parser::time::ASN1Time::now().to_datetime();
    params.not_before = now - std::time::Duration::from_secs(3600);
    params.not_after = now + std::time::Duration::from_secs(days * 24 * 3600);
}

impl CertificateAuthority {
    /// A new self-signed CA.
    pub fn new(common_name: &str) -> Result<CertificateAuthority, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        set_validity(&mut params, CA_VALIDITY_DAYS);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        Ok(CertificateAuthority { cert_pem: cert.pem(), key_pem, issuer: Issuer::new(params, key) })
    }

    /// An existing CA from its certificate and private key (PEM), to issue more certificates.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<CertificateAuthority, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(CertificateAuthority { issuer, cert_pem: cert_pem.to_string(), key_pem: key_pem.to_string() })
    }

    fn issue(&self, mut params: CertificateParams, common_name: &str) -> Result<IssuedCert, PkiError> {
        let key = KeyPair::generate()?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if params.not_after == CertificateParams::default().not_after {
            set_validity(&mut params, LEAF_VALIDITY_DAYS);
        }
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// A server certificate for `localhost`, `127.0.0.1` and `::1`.
    pub fn issue_server(&self) -> Result<IssuedCert, PkiError> {
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params.subject_alt_names.push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.subject_alt_names.push(SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, "yrdx gateway (development)")
    }

    /// A client certificate whose SAN URI is `identity`; `expired` makes one valid only in 2020.
    pub fn issue_client(&self, identity: &str, expired: bool) -> Result<IssuedCert, PkiError> {
        self.issue_client_uris(&[identity], expired)
    }

    /// A client certificate with these SAN URIs in this order (tests of ambiguous identities).
    pub fn issue_client_uris(&self, identities: &[&str], expired: bool) -> Result<IssuedCert, PkiError> {
        let identity = identities.first().copied().unwrap_or_default();
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names =
            identities.iter().map(|i| Ok(SanType::URI((*i).try_into()?))).collect::<Result<_, rcgen::Error>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        self.issue(params, identity)
    }
}

impl CertificateAuthority {
    /// A CRL of this CA (PEM) revoking the certificates `revoked` (PEM), issued an hour ago and
    /// due for renewal `next_update_hours` from now (negative: already past its nextUpdate, for
    /// tests of stale CRLs). `number` is its CRL number.
    pub fn crl(&self, revoked: &[&str], next_update_hours: i64, number: u64) -> Result<String, PkiError> {
        use x509_parser::prelude::FromDer;
        let now = x509_parser::time::ASN1Time::now().to_datetime();
        let hour = std::time::Duration::from_secs(3600);
        let next_update = if next_update_hours >= 0 {
            now + hour * u32::try_from(next_update_hours).unwrap_or(u32::MAX)
        } else {
            now - hour * u32::try_from(-next_update_hours).unwrap_or(u32::MAX)
        };
        let this_update = next_update.min(now) - hour;
        let mut revoked_certs = Vec::new();
        for pem in revoked {
            let (_, der) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
                .map_err(|e| PkiError::Generate(rcgen::Error::X509(e.to_string())))?;
            let (_, cert) = x509_parser::prelude::X509Certificate::from_der(&der.contents)
                .map_err(|e| PkiError::Generate(rcgen::Error::X509(e.to_string())))?;
            revoked_certs.push(rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(cert.raw_serial()),
                revocation_time: this_update,
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            });
        }
        let params = rcgen::CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: rcgen::SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }
}

/// The file of the gateway's SM2 signing key, under the folder `init` writes.
pub const SIGNING_KEY_FILE: &str = "pki/gateway-sign.key";
/// The file of its self-signed certificate (what partners verify receipts with).
pub const SIGNING_CERT_FILE: &str = "pki/gateway-sign.pem";
/// The subject common name of the signing certificate.
const SIGNING_CERT_NAME: &str = "yrdx gateway receipt signing (development)";

/// Writes a new SM2 signing key and its self-signed certificate ([`LEAF_VALIDITY_DAYS`]).
fn write_signing_identity(dir: &Path) -> Result<(), PkiError> {
    let evidence = |path: &str| {
        let path = dir.join(path).display().to_string();
        move |source| PkiError::Evidence { path, source }
    };
    let key = yrdx_evidence::GatewaySigningKey::generate(yrdx_evidence::DEFAULT_DISTINGUISHING_ID)
        .map_err(evidence(SIGNING_KEY_FILE))?;
    let cert =
        key.self_signed_certificate(SIGNING_CERT_NAME, LEAF_VALIDITY_DAYS).map_err(evidence(SIGNING_CERT_FILE))?;
    let key_path = dir.join(SIGNING_KEY_FILE);
    write(&key_path, &key.to_pkcs8_pem().map_err(evidence(SIGNING_KEY_FILE))?)?;
    // The key that signs receipts is readable by its owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| PkiError::Io { path: key_path.display().to_string(), message: e.to_string() })?;
    }
    write(&dir.join(SIGNING_CERT_FILE), &cert)
}

/// A new certificate for the signing key already in the folder (the key is kept, so receipts
/// signed before stay verifiable with either certificate).
fn renew_signing_certificate(dir: &Path) -> Result<(), PkiError> {
    let path = dir.join(SIGNING_KEY_FILE);
    let pem = std::fs::read_to_string(&path)
        .map_err(|e| PkiError::Io { path: path.display().to_string(), message: e.to_string() })?;
    let evidence = |source| PkiError::Evidence { path: path.display().to_string(), source };
    let key = yrdx_evidence::GatewaySigningKey::from_pkcs8_pem(&pem, yrdx_evidence::DEFAULT_DISTINGUISHING_ID)
        .map_err(evidence)?;
    let cert = key.self_signed_certificate(SIGNING_CERT_NAME, LEAF_VALIDITY_DAYS).map_err(evidence)?;
    write(&dir.join(SIGNING_CERT_FILE), &cert)
}

/// The serial number of a PEM certificate, hex as the gateway logs it (`None` when it does not
/// parse).
pub fn serial_hex_of_pem(pem: &str) -> Option<String> {
    with_pem_cert(pem, |cert| hex::encode(cert.raw_serial()))
}

/// `f` of the (first) certificate of `pem`; `None` when it does not parse.
fn with_pem_cert<T>(pem: &str, f: impl FnOnce(&x509_parser::prelude::X509Certificate<'_>) -> T) -> Option<T> {
    use x509_parser::prelude::FromDer;
    let (_, der) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let (_, cert) = x509_parser::prelude::X509Certificate::from_der(&der.contents).ok()?;
    Some(f(&cert))
}

/// How a PEM certificate's validity stands now: (minutes since its `notBefore`, whole days left
/// until its `notAfter`, negative once expired); `None` when it does not parse. What an operator
/// (or a test of the development PKI) checks against the lifetimes this crate issues.
pub fn validity_of_pem(pem: &str) -> Option<(i64, i64)> {
    with_pem_cert(pem, |cert| {
        let now = x509_parser::time::ASN1Time::now().timestamp();
        let v = cert.validity();
        ((now - v.not_before.timestamp()) / 60, (v.not_after.timestamp() - now) / 86400)
    })
}

fn write(path: &Path, text: &str) -> Result<(), PkiError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| PkiError::Io { path: dir.display().to_string(), message: e.to_string() })?;
    }
    std::fs::write(path, text).map_err(|e| PkiError::Io { path: path.display().to_string(), message: e.to_string() })
}

/// What `init` wrote.
#[derive(Debug, Clone)]
pub struct DevPki {
    /// The folder.
    pub dir: PathBuf,
    /// The configuration file.
    pub config: PathBuf,
}

impl DevPki {
    /// The certificate and key files of a partner or operator by name.
    pub fn client_files(&self, name: &str) -> (PathBuf, PathBuf) {
        (self.dir.join(format!("pki/{name}.pem")), self.dir.join(format!("pki/{name}.key")))
    }

    /// The CA certificate file.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("pki/ca.pem")
    }
}

/// Issues the server certificate and every client certificate of a development PKI written by
/// [`init`] again, for [`LEAF_VALIDITY_DAYS`] from now, with its CA (`pki/ca.pem`, `pki/ca.key`);
/// new keys, same identities; `yrdx.toml` is left as it is. Returns the names renewed.
pub fn renew(dir: &Path) -> Result<Vec<String>, PkiError> {
    let read = |name: &str| {
        let path = dir.join("pki").join(name);
        std::fs::read_to_string(&path)
            .map_err(|e| PkiError::Io { path: path.display().to_string(), message: e.to_string() })
    };
    let ca = CertificateAuthority::from_pem(&read("ca.pem")?, &read("ca.key")?)?;
    let server = ca.issue_server()?;
    write(&dir.join("pki/server.pem"), &server.cert_pem)?;
    write(&dir.join("pki/server.key"), &server.key_pem)?;
    let mut renewed = vec!["server".to_string()];
    if dir.join(SIGNING_KEY_FILE).exists() {
        renew_signing_certificate(dir)?;
        renewed.push("gateway-sign".to_string());
    }
    let clients =
        DEV_PARTNERS.iter().map(|(n, ..)| (*n, partner_identity(n))).chain([("ops", operator_identity("ops"))]);
    for (name, identity) in clients {
        // Only what `init` wrote: a certificate removed on purpose stays removed.
        if !dir.join(format!("pki/{name}.pem")).exists() {
            continue;
        }
        let c = ca.issue_client(&identity, false)?;
        write(&dir.join(format!("pki/{name}.pem")), &c.cert_pem)?;
        write(&dir.join(format!("pki/{name}.key")), &c.key_pem)?;
        renewed.push(name.to_string());
    }
    Ok(renewed)
}

/// The CA files of a folder [`init`] wrote into, that exist: replacing them would orphan every
/// certificate the old CA issued, so `yrdx pki init` asks for `--force` first.
pub fn existing_ca(dir: &Path) -> Vec<PathBuf> {
    ["pki/ca.pem", "pki/ca.key"].iter().map(|f| dir.join(f)).filter(|p| p.exists()).collect()
}

/// Writes a development CA, server certificate, a client certificate per partner of
/// [`DEV_PARTNERS`] and one operator (`ops`), and `yrdx.toml` listening on `listen`, with
/// Prometheus metrics on `127.0.0.1:9464` and the operators' console on `127.0.0.1:9465` (each on
/// a free port when `listen`'s port is 0, as for the demo).
pub fn init(dir: &Path, listen: &str) -> Result<DevPki, PkiError> {
    let pki = init_with(dir, listen, &CertificateAuthority::new("yrdx development CA (not for production)")?)?;
    let (port, console) = if listen.ends_with(":0") { (0, 0) } else { (9464, 9465) };
    let mut config = std::fs::read_to_string(&pki.config)
        .map_err(|e| PkiError::Io { path: pki.config.display().to_string(), message: e.to_string() })?;
    config.push_str(&format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    config.push_str(&format!("\n[console]\nlisten = \"127.0.0.1:{console}\"\n"));
    write(&pki.config, &config)?;
    Ok(pki)
}

/// [`init`] with a given CA (tests keep it to issue more certificates, expired ones too).
pub fn init_with(dir: &Path, listen: &str, ca: &CertificateAuthority) -> Result<DevPki, PkiError> {
    write(&dir.join("pki/ca.pem"), &ca.cert_pem)?;
    // The development CA's key stays beside it so test certificates (expired, wrong SAN) can be
    // minted for `yrdx conformance run --suite tls`; a production CA's key never sits here.
    write(&dir.join("pki/ca.key"), &ca.key_pem)?;
    let server = ca.issue_server()?;
    write(&dir.join("pki/server.pem"), &server.cert_pem)?;
    write(&dir.join("pki/server.key"), &server.key_pem)?;
    let mut config = format!(
        "# yrdx gateway configuration (development PKI written by `yrdx pki init`).\n\
         # Every key is documented in docs/operations.md; omitted keys take their defaults.\n\
         listen = \"{listen}\"\n\
         store = \"yrdx.sqlite\"\n\
         max_document_bytes = 4194304\n\
         visibility_timeout_secs = 60\n\
         log_format = \"human\"\n\n\
         [tls]\n\
         client_ca = \"pki/ca.pem\"\n\
         cert = \"pki/server.pem\"\n\
         key = \"pki/server.key\"\n"
    );
    for (name, region, format) in DEV_PARTNERS {
        let c = ca.issue_client(&partner_identity(name), false)?;
        write(&dir.join(format!("pki/{name}.pem")), &c.cert_pem)?;
        write(&dir.join(format!("pki/{name}.key")), &c.key_pem)?;
        config.push_str(&format!(
            "\n[[partner]]\nname = \"{name}\"\nregion = \"{region}\"\nformat = \"{format}\"\nidentity = \"{}\"\nrate_per_second = 50\nburst = 100\n",
            partner_identity(name)
        ));
    }
    let ops = ca.issue_client(&operator_identity("ops"), false)?;
    write(&dir.join("pki/ops.pem"), &ops.cert_pem)?;
    write(&dir.join("pki/ops.key"), &ops.key_pem)?;
    config.push_str(&format!("\n[[operator]]\nname = \"ops\"\nidentity = \"{}\"\n", operator_identity("ops")));
    write_signing_identity(dir)?;
    config.push_str(&format!(
        "\n# The gateway's SM2 key for signed receipts and audit chain heads; partners verify with the certificate.\n\
         [evidence]\nkey = \"{SIGNING_KEY_FILE}\"\ncert = \"{SIGNING_CERT_FILE}\"\ndistinguishing_id = \"{}\"\n",
        yrdx_evidence::DEFAULT_DISTINGUISHING_ID
    ));
    let config_path = dir.join("yrdx.toml");
    write(&config_path, &config)?;
    Ok(DevPki { dir: dir.to_path_buf(), config: config_path })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validity_days(pem: &str) -> (i64, i64) {
        validity_of_pem(pem).expect("a PEM certificate")
    }

    #[test]
    fn certificates_have_a_realistic_validity_and_renew() {
        let dir = std::env::temp_dir().join(format!("yrdx-pki-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        init(&dir, "127.0.0.1:0").unwrap();
        let read = |n: &str| std::fs::read_to_string(dir.join("pki").join(n)).unwrap();
        let (ago_minutes, left_days) = validity_days(&read("jiangsu.pem"));
        assert!((59..=61).contains(&ago_minutes), "not_before {ago_minutes} minutes ago");
        assert!((364..=365).contains(&left_days), "{left_days} days left");
        assert!((729..=730).contains(&validity_days(&read("ca.pem")).1));
        assert!((364..=365).contains(&validity_days(&read("server.pem")).1));
        let before = read("jiangsu.pem");
        let renewed = renew(&dir).unwrap();
        assert_eq!(renewed, ["server", "gateway-sign", "shanghai", "jiangsu", "zhejiang", "beijing", "ops"]);
        assert_ne!(read("jiangsu.pem"), before);
        assert!((364..=365).contains(&validity_days(&read("jiangsu.pem")).1));
        let expired = CertificateAuthority::new("t").unwrap().issue_client("urn:x", true).unwrap();
        assert!(validity_days(&expired.cert_pem).1 < 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
