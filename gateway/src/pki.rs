//! Development PKI (`yrdx pki init`): a CA, a server certificate for localhost, a client certificate
//! for every partner and an operator, and a ready configuration. Test fixtures only — generated at
//! run time, never committed.

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

impl CertificateAuthority {
    /// A new self-signed CA.
    pub fn new(common_name: &str) -> Result<CertificateAuthority, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
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
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = vec![SanType::URI(identity.try_into()?)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 12, 31);
        }
        self.issue(params, identity)
    }
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

/// The CA files of a folder [`init`] wrote into, that exist: replacing them would orphan every
/// certificate the old CA issued, so `yrdx pki init` asks for `--force` first.
pub fn existing_ca(dir: &Path) -> Vec<PathBuf> {
    ["pki/ca.pem", "pki/ca.key"].iter().map(|f| dir.join(f)).filter(|p| p.exists()).collect()
}

/// Writes a development CA, server certificate, a client certificate per partner of
/// [`DEV_PARTNERS`] and one operator (`ops`), and `yrdx.toml` listening on `listen`.
pub fn init(dir: &Path, listen: &str) -> Result<DevPki, PkiError> {
    init_with(dir, listen, &CertificateAuthority::new("yrdx development CA (not for production)")?)
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
    let config_path = dir.join("yrdx.toml");
    write(&config_path, &config)?;
    Ok(DevPki { dir: dir.to_path_buf(), config: config_path })
}
