//! The gateway's SM2 signing key and the public key partners verify with.
//!
//! The private key is PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, curve SM2
//! `1.2.156.10197.1.301`), as `openssl genpkey -algorithm SM2` writes it. The public key comes
//! from an X.509 certificate (`-----BEGIN CERTIFICATE-----`) or a SubjectPublicKeyInfo PEM
//! (`-----BEGIN PUBLIC KEY-----`). [`GatewaySigningKey::self_signed_certificate`] makes a
//! certificate signed with SM2-with-SM3 (`1.2.156.10197.1.501`) by the key itself.

use crate::digest::Sm3Digest;
use sm2::dsa::signature::Signer;
use sm2::dsa::{DerSignature, SigningKey, VerifyingKey};
use sm2::elliptic_curve::Generate;
use sm2::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use sm2::{PublicKey, SecretKey};
use std::str::FromStr;
use std::time::{Duration, SystemTime};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::der::asn1::BitString;
use x509_cert::der::{DecodePem, Encode, EncodePem};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoRef;
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

/// The distinguishing identifier of the certificate's own signature: empty, as OpenSSL 3 signs
/// and checks SM2 signatures of X.509 certificates (`openssl verify` then accepts it). Receipts
/// and chain heads are signed under the configured identifier instead (default
/// [`crate::DEFAULT_DISTINGUISHING_ID`]).
pub const CERTIFICATE_DISTINGUISHING_ID: &str = "";

/// Why a key or certificate could not be read, made or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The private key PEM is not a PKCS#8 SM2 key.
    #[error("private key: not a PKCS#8 SM2 private key (-----BEGIN PRIVATE KEY-----): {0}")]
    PrivateKey(String),
    /// The PEM is neither a certificate nor a public key, or its key is not on the SM2 curve.
    #[error("public key: {0}")]
    PublicKey(String),
    /// The distinguishing identifier cannot be used (longer than 8191 bytes).
    #[error("distinguishing id: {length} bytes is more than SM2's 8191")]
    DistinguishingId {
        /// Its length in bytes.
        length: usize,
    },
    /// The certificate could not be made.
    #[error("certificate: {0}")]
    Certificate(String),
    /// Signing failed (the SM2 implementation refused).
    #[error("signing: {0}")]
    Signing(String),
}

/// The gateway's SM2 private key with the distinguishing identifier it signs under.
#[derive(Clone)]
pub struct GatewaySigningKey {
    secret: SecretKey,
    signing: SigningKey,
}

impl std::fmt::Debug for GatewaySigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("GatewaySigningKey").field("distinguishing_id", &self.distinguishing_id()).finish()
    }
}

fn check_distinguishing_id(distinguishing_id: &str) -> Result<(), KeyError> {
    // SM2's ENTL is the identifier's length in bits as a 16-bit number.
    if distinguishing_id.len() > 8191 {
        return Err(KeyError::DistinguishingId { length: distinguishing_id.len() });
    }
    Ok(())
}

impl GatewaySigningKey {
    /// A new random key (the operating system's random source) signing under `distinguishing_id`.
    pub fn generate(distinguishing_id: &str) -> Result<GatewaySigningKey, KeyError> {
        GatewaySigningKey::from_secret(SecretKey::generate(), distinguishing_id)
    }

    /// The key of a PKCS#8 PEM file's text, signing under `distinguishing_id`.
    pub fn from_pkcs8_pem(pem: &str, distinguishing_id: &str) -> Result<GatewaySigningKey, KeyError> {
        let secret = SecretKey::from_pkcs8_pem(pem).map_err(|e| KeyError::PrivateKey(e.to_string()))?;
        GatewaySigningKey::from_secret(secret, distinguishing_id)
    }

    fn from_secret(secret: SecretKey, distinguishing_id: &str) -> Result<GatewaySigningKey, KeyError> {
        check_distinguishing_id(distinguishing_id)?;
        let signing = SigningKey::new(distinguishing_id, &secret)
            .map_err(|e| KeyError::Signing(format!("the key refused the distinguishing id: {e}")))?;
        Ok(GatewaySigningKey { secret, signing })
    }

    /// The same key signing under another distinguishing identifier.
    pub fn with_distinguishing_id(&self, distinguishing_id: &str) -> Result<GatewaySigningKey, KeyError> {
        GatewaySigningKey::from_secret(self.secret.clone(), distinguishing_id)
    }

    /// The distinguishing identifier this key signs under.
    pub fn distinguishing_id(&self) -> &str {
        self.signing.distid()
    }

    /// The private key as PKCS#8 PEM (keep the file readable by the gateway only).
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        self.secret
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| KeyError::PrivateKey(e.to_string()))
    }

    /// The public half.
    pub fn public_key(&self) -> GatewayPublicKey {
        GatewayPublicKey { key: self.secret.public_key() }
    }

    /// `Ok` when `cert_pem` is a certificate (or public key) of this key; an error naming the
    /// mismatch otherwise (a key and certificate from different `pki init` runs, say).
    pub fn matches_certificate(&self, cert_pem: &str) -> Result<(), KeyError> {
        if GatewayPublicKey::from_pem(cert_pem)? == self.public_key() {
            Ok(())
        } else {
            Err(KeyError::PublicKey("the certificate is not the signing key's (its public key differs)".into()))
        }
    }

    /// The SM2 signature (GM/T 0003 with SM3 over Z‖message, Z from the distinguishing
    /// identifier and the public key), DER-encoded `SEQUENCE { r INTEGER, s INTEGER }`.
    /// Deterministic (RFC 6979 nonces): the same message gives the same signature.
    pub fn sign_der(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let signature: sm2::dsa::Signature =
            self.signing.try_sign(message).map_err(|e| KeyError::Signing(e.to_string()))?;
        Ok(signature.to_der().to_vec())
    }

    /// A certificate for this key, self-signed with SM2-with-SM3 under
    /// [`CERTIFICATE_DISTINGUISHING_ID`] (as OpenSSL 3 checks certificate signatures), subject `CN=<common_name>`, valid
    /// from an hour ago for `days` days, key usage digitalSignature and nonRepudiation, not a CA.
    pub fn self_signed_certificate(&self, common_name: &str, days: u64) -> Result<String, KeyError> {
        let cert_error = |e: &dyn std::fmt::Display| KeyError::Certificate(e.to_string());
        let certifying = SigningKey::new(CERTIFICATE_DISTINGUISHING_ID, &self.secret).map_err(|e| cert_error(&e))?;
        let cn = common_name.replace('\\', "\\\\").replace(',', "\\,").replace('+', "\\+").replace('=', "\\=");
        let subject = Name::from_str(&format!("CN={cn}")).map_err(|e| cert_error(&e))?;
        let now = SystemTime::now();
        let not_before = Time::try_from(now - Duration::from_secs(3600)).map_err(|e| cert_error(&e))?;
        let not_after =
            Time::try_from(now + Duration::from_secs(days.saturating_mul(86_400))).map_err(|e| cert_error(&e))?;
        let public = self.public_key().key;
        let spki_der = public.to_public_key_der().map_err(|e| cert_error(&e))?;
        let spki =
            x509_cert::spki::SubjectPublicKeyInfoOwned::try_from(spki_der.as_bytes()).map_err(|e| cert_error(&e))?;
        // A serial from the key and the time: unique per certificate, positive, 16 bytes.
        let nanos = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let mut serial = Sm3Digest::of_parts(&[spki_der.as_bytes(), &nanos.to_be_bytes()]).0;
        serial[0] = (serial[0] & 0x7f) | 0x01;
        let serial = SerialNumber::new(&serial[..16]).map_err(|e| cert_error(&e))?;
        let profile = SigningCertificate { subject };
        let mut builder = CertificateBuilder::new(profile, serial, Validity::new(not_before, not_after), spki)
            .map_err(|e| cert_error(&e))?;
        let tbs = builder.finalize(&certifying).map_err(|e| cert_error(&e))?;
        let signature: sm2::dsa::Signature = certifying.try_sign(&tbs).map_err(|e| cert_error(&e))?;
        let der: DerSignature = signature.to_der();
        let bits = BitString::from_bytes(der.as_bytes()).map_err(|e| cert_error(&e))?;
        let cert = builder.assemble(bits, &certifying).map_err(|e| cert_error(&e))?;
        cert.to_pem(LineEnding::LF).map_err(|e| cert_error(&e))
    }
}

/// The profile of the gateway's signing certificate: self-issued end entity.
struct SigningCertificate {
    subject: Name,
}

impl BuilderProfile for SigningCertificate {
    fn get_issuer(&self, subject: &Name) -> Name {
        subject.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        tbs: &x509_cert::TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let subject = tbs.subject();
        let constraints = BasicConstraints { ca: false, path_len_constraint: None };
        let usage = KeyUsage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation);
        let key_id = SubjectKeyIdentifier::try_from(spk)?;
        Ok(vec![
            constraints.to_extension(subject, &[])?,
            usage.to_extension(subject, &[])?,
            key_id.to_extension(subject, &[])?,
        ])
    }
}

/// The gateway's SM2 public key, as a partner holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayPublicKey {
    key: PublicKey,
}

impl GatewayPublicKey {
    /// The public key of a PEM text holding a certificate (the first, when a chain) or a public key.
    pub fn from_pem(text: &str) -> Result<GatewayPublicKey, KeyError> {
        if text.contains("-----BEGIN CERTIFICATE-----") {
            let start = text.find("-----BEGIN CERTIFICATE-----").unwrap_or_default();
            let cert = Certificate::from_pem(&text.as_bytes()[start..])
                .map_err(|e| KeyError::PublicKey(format!("certificate does not parse: {e}")))?;
            let spki = cert
                .tbs_certificate()
                .subject_public_key_info()
                .to_der()
                .map_err(|e| KeyError::PublicKey(e.to_string()))?;
            let key = PublicKey::from_public_key_der(&spki)
                .map_err(|e| KeyError::PublicKey(format!("the certificate's key is not an SM2 key: {e}")))?;
            return Ok(GatewayPublicKey { key });
        }
        if text.contains("-----BEGIN PUBLIC KEY-----") {
            let key = PublicKey::from_public_key_pem(text.trim())
                .map_err(|e| KeyError::PublicKey(format!("not an SM2 public key: {e}")))?;
            return Ok(GatewayPublicKey { key });
        }
        Err(KeyError::PublicKey(
            "expected a PEM certificate (-----BEGIN CERTIFICATE-----) or public key (-----BEGIN PUBLIC KEY-----)"
                .into(),
        ))
    }

    /// The key as a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), as OpenSSL reads it.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.key.to_public_key_pem(LineEnding::LF).map_err(|e| KeyError::PublicKey(e.to_string()))
    }

    /// Whether `signature_der` is this key's SM2 signature of `message` under `distinguishing_id`.
    /// `Err` only when the identifier cannot be used; a malformed signature is `Ok(false)`.
    pub fn verify_der(&self, message: &[u8], signature_der: &[u8], distinguishing_id: &str) -> Result<bool, KeyError> {
        use sm2::dsa::signature::Verifier;
        check_distinguishing_id(distinguishing_id)?;
        let verifying = VerifyingKey::new(distinguishing_id, self.key)
            .map_err(|_| KeyError::DistinguishingId { length: distinguishing_id.len() })?;
        let Ok(signature) = sm2::dsa::Signature::from_der(signature_der) else {
            return Ok(false);
        };
        Ok(verifying.verify(message, &signature).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEFAULT_DISTINGUISHING_ID;

    #[test]
    fn sign_and_verify_under_the_distinguishing_id() {
        let key = GatewaySigningKey::generate(DEFAULT_DISTINGUISHING_ID).unwrap();
        let sig = key.sign_der(b"message").unwrap();
        assert_eq!(sig, key.sign_der(b"message").unwrap(), "deterministic");
        assert_eq!(sig[0], 0x30, "DER SEQUENCE");
        let public = key.public_key();
        assert!(public.verify_der(b"message", &sig, DEFAULT_DISTINGUISHING_ID).unwrap());
        assert!(!public.verify_der(b"messagE", &sig, DEFAULT_DISTINGUISHING_ID).unwrap());
        assert!(!public.verify_der(b"message", &sig, "another id").unwrap());
        assert!(!public.verify_der(b"message", &sig[1..], DEFAULT_DISTINGUISHING_ID).unwrap());
        let other = key.with_distinguishing_id("gateway@yrdx").unwrap();
        assert_eq!(other.distinguishing_id(), "gateway@yrdx");
        assert!(public.verify_der(b"m", &other.sign_der(b"m").unwrap(), "gateway@yrdx").unwrap());
        assert!(matches!(GatewaySigningKey::generate(&"x".repeat(8192)), Err(KeyError::DistinguishingId { .. })));
    }

    #[test]
    fn keys_and_certificates_round_trip_through_pem() {
        let key = GatewaySigningKey::generate(DEFAULT_DISTINGUISHING_ID).unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        let again = GatewaySigningKey::from_pkcs8_pem(&pem, DEFAULT_DISTINGUISHING_ID).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert!(!format!("{again:?}").contains(&pem[30..60]));
        let cert = key.self_signed_certificate("yrdx gateway, signing", 365).unwrap();
        assert_eq!(GatewayPublicKey::from_pem(&cert).unwrap(), key.public_key());
        key.matches_certificate(&cert).unwrap();
        let stranger = GatewaySigningKey::generate(DEFAULT_DISTINGUISHING_ID).unwrap();
        let e = stranger.matches_certificate(&cert).unwrap_err();
        assert!(e.to_string().contains("not the signing key's"), "{e}");
        let public_pem = key.public_key().to_pem().unwrap();
        assert_eq!(GatewayPublicKey::from_pem(&public_pem).unwrap(), key.public_key());
        // The certificate's own signature verifies with the key under the certificate's id.
        let parsed = Certificate::from_pem(cert.as_bytes()).unwrap();
        let tbs = parsed.tbs_certificate().to_der().unwrap();
        let sig = parsed.signature().raw_bytes();
        assert!(key.public_key().verify_der(&tbs, sig, CERTIFICATE_DISTINGUISHING_ID).unwrap());
        assert_eq!(parsed.signature_algorithm().oid.to_string(), "1.2.156.10197.1.501");
    }

    #[test]
    fn unreadable_pem_is_named() {
        let e = GatewaySigningKey::from_pkcs8_pem("nonsense", DEFAULT_DISTINGUISHING_ID).unwrap_err();
        assert!(e.to_string().starts_with("private key:"), "{e}");
        let e = GatewayPublicKey::from_pem("nonsense").unwrap_err();
        assert!(e.to_string().contains("expected a PEM certificate"), "{e}");
        let e =
            GatewayPublicKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap_err();
        assert!(e.to_string().contains("certificate does not parse"), "{e}");
    }
}
