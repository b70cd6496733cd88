//! The gateway's SM2 signing key and the public key partners verify with.
//!
//! The private key is PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, curve SM2
//! `1.2.156.10197.1.301`), as `openssl genpkey -algorithm SM2` writes it. The public key comes
//! from an X.509 certificate (`-----BEGIN CERTIFICATE-----`) or a SubjectPublicKeyInfo PEM
//! (`-----BEGIN PUBLIC KEY-----`). [`GatewaySigningKey::self_signed_certificate`] makes a
//! certificate signed with SM2-with-SM3 (`1.2.156.10197.1.501`) by the key itself.

use crate::digest::Sm3Digest;
use crate::sm2_fixed_base::{EQUATION_A, EQUATION_B};
use sm2::dsa::signature::Signer;
use sm2::dsa::{DerSignature, SigningKey, VerifyingKey};
use sm2::elliptic_curve::ops::Reduce;
use sm2::elliptic_curve::sec1::{Coordinates, ToSec1Point};
use sm2::elliptic_curve::subtle::ConstantTimeEq;
use sm2::elliptic_curve::{Curve, Generate, PrimeField};
use sm2::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use sm2::{AffinePoint, FieldBytes, PublicKey, Scalar, SecretKey, Sm2, U256};
use sm3::{Digest, Sm3};
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
    /// Z_A of the key and identifier: the sm2 crate hashes it again for every signature's
    /// e = SM3(Z_A ‖ message); it depends on the key alone.
    identity_hash: [u8; 32],
    /// (1 + d)⁻¹ mod n, as secret as d: the sm2 crate inverts it again for every signature (a few
    /// points of the gateway's CPU); it depends on the key alone.
    d_plus_1_inv: Scalar,
}

impl std::fmt::Debug for GatewaySigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("GatewaySigningKey").field("distinguishing_id", &self.distinguishing_id()).finish()
    }
}

/// Z_A = SM3(ENTL ‖ ID ‖ a ‖ b ‖ x_G ‖ y_G ‖ x_A ‖ y_A), as sm2 0.14's `hash_z` computes it (which
/// it does not export): computed once per key rather than once per signature.
fn identity_hash(distinguishing_id: &str, public: &PublicKey) -> Result<[u8; 32], KeyError> {
    let refused = || KeyError::Signing("the public key has no affine coordinates".into());
    let entl = u16::try_from(distinguishing_id.len().saturating_mul(8))
        .map_err(|_| KeyError::DistinguishingId { length: distinguishing_id.len() })?;
    let mut sm3 = Sm3::new();
    sm3.update(entl.to_be_bytes());
    sm3.update(distinguishing_id);
    sm3.update(EQUATION_A);
    sm3.update(EQUATION_B);
    for point in [AffinePoint::GENERATOR, *public.as_affine()] {
        match point.to_sec1_point(false).coordinates() {
            Coordinates::Uncompressed { x, y } => {
                sm3.update(x);
                sm3.update(y);
            }
            _ => return Err(refused()),
        }
    }
    Ok(sm3.finalize().into())
}

/// sm2 0.14's `bytes2scalar` for a 32-byte digest (it does not export it): big endian, reduced mod n.
fn digest_scalar(digest: &[u8]) -> Scalar {
    let n_bits = Sm2::ORDER.bit_width();
    <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice_truncated(digest, n_bits))
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
        let identity_hash = identity_hash(distinguishing_id, &secret.public_key())?;
        let d: &Scalar = signing.as_nonzero_scalar();
        // d = n − 1 has no inverse of 1 + d: sm2 refuses every signature of such a key, so refuse
        // the key itself (GM/T 0003 takes d from [1, n − 2]).
        let d_plus_1_inv = Option::<Scalar>::from((*d + Scalar::ONE).invert())
            .ok_or_else(|| KeyError::PrivateKey("d = n − 1 cannot make SM2 signatures".into()))?;
        crate::sm2_fixed_base::prepare();
        Ok(GatewaySigningKey { secret, signing, identity_hash, d_plus_1_inv })
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
    ///
    /// The same bytes as sm2 0.14's `SigningKey::try_sign` (its `sign_prehash_rfc6979`, step for
    /// step), with Z_A and (1 + d)⁻¹ computed once per key instead of once per signature and
    /// [k]G by [`crate::sm2_fixed_base`] (decision 192).
    pub fn sign_der(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let refused = |why: &str| KeyError::Signing(format!("signature error: {why}"));
        let d: &Scalar = self.signing.as_nonzero_scalar();
        // A1–A2: e = SM3(Z_A ‖ M) mod n.
        let mut sm3 = Sm3::new_with_prefix(self.identity_hash);
        sm3.update(message);
        let e = digest_scalar(&sm3.finalize());
        // A3: k by RFC 6979 (HMAC-SM3) from d and e, no added data; one candidate, as sm2 draws.
        let mut kgen = rfc6979::KGenerator::<Sm3, U256>::new(&d.to_repr(), &e.to_bytes(), &[], &Sm2::ORDER);
        let mut k_bytes = FieldBytes::default();
        kgen.fill_next_k(&mut k_bytes);
        let k = Option::<Scalar>::from(Scalar::from_repr(k_bytes)).ok_or_else(|| refused("k is not a scalar"))?;
        // A4–A5: r = e + x([k]G) mod n, refused when 0 or n − k.
        let x = crate::sm2_fixed_base::generator_multiple_x(&k_bytes.into())
            .ok_or_else(|| refused("[k]G is the identity"))?;
        let r = e + <Scalar as Reduce<FieldBytes>>::reduce(&x.into());
        if bool::from(r.is_zero() | (r + k).ct_eq(&Scalar::ZERO)) {
            return Err(refused("r = 0 or r + k = n"));
        }
        // A6–A7: s = (1 + d)⁻¹ · (k − r·d) mod n; `from_scalars` refuses s = 0.
        let s = self.d_plus_1_inv * (k - (r * d));
        let signature = sm2::dsa::Signature::from_scalars(r, s).map_err(|e| KeyError::Signing(e.to_string()))?;
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

    /// Messages of every shape: empty, one byte, a block and a bit, 100 kB, lengths around SM3's
    /// padding boundary (55–74 bytes), short and medium ones; pseudo-random bytes (a fixed
    /// xorshift, so a failure reproduces).
    fn messages(count: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out =
            vec![Vec::new(), b"a".to_vec(), b"message".to_vec(), vec![0; 64], vec![0xff; 65], vec![7; 100_000]];
        while out.len() < count {
            let len = match out.len() % 4 {
                0 => (next() % 8) as usize,
                1 => (next() % 200) as usize,
                2 => (next() % 5000) as usize,
                _ => 55 + (next() % 20) as usize,
            };
            out.push((0..len).map(|_| next() as u8).collect());
        }
        out
    }

    /// Signs each message with the key and with the sm2 crate's own signer for the same secret and
    /// identifier, and checks the bytes are the same and (every fourth: verifying is the slow part
    /// of a debug build) verify.
    fn assert_signs_as_sm2(key: &GatewaySigningKey, messages: &[Vec<u8>]) {
        let id = key.distinguishing_id();
        let reference = SigningKey::new(id, &key.secret).unwrap();
        let public = key.public_key();
        for (i, message) in messages.iter().enumerate() {
            let ours = key.sign_der(message).unwrap();
            let theirs: sm2::dsa::Signature = reference.try_sign(message).unwrap();
            assert_eq!(ours, theirs.to_der().to_vec(), "message {i} ({} bytes) under id {id:?}", message.len());
            if i % 4 == 0 {
                assert!(public.verify_der(message, &ours, id).unwrap(), "message {i} under id {id:?}");
            }
        }
    }

    #[test]
    fn signatures_are_the_sm2_crates_byte_for_byte() {
        let messages = messages(200, 0x5eed);
        let long_id = "i".repeat(8191);
        for seed in 0..4 {
            let key = GatewaySigningKey::generate(DEFAULT_DISTINGUISHING_ID).unwrap();
            for id in [DEFAULT_DISTINGUISHING_ID, "", "gateway@yrdx", "上海网关", long_id.as_str()] {
                let key = key.with_distinguishing_id(id).unwrap();
                // A few keys get every message, the rest a sample: debug-build signing is slow.
                let sample = if seed < 2 || id == DEFAULT_DISTINGUISHING_ID { &messages[..] } else { &messages[..20] };
                assert_signs_as_sm2(&key, sample);
            }
        }
        // The per-key values survive every way of making a key: PEM, clone.
        let key = GatewaySigningKey::generate("gateway@yrdx").unwrap();
        let again = GatewaySigningKey::from_pkcs8_pem(&key.to_pkcs8_pem().unwrap(), "gateway@yrdx").unwrap();
        let cloned = again.clone();
        for k in [&key, &again, &cloned] {
            assert_signs_as_sm2(k, &messages[..10]);
        }
        // Z_A differs by identifier (else the identifier would not be signed).
        assert_ne!(key.sign_der(b"m").unwrap(), key.with_distinguishing_id("").unwrap().sign_der(b"m").unwrap());
    }

    #[test]
    fn extreme_secrets_sign_as_sm2_and_n_minus_1_is_refused() {
        let messages = messages(10, 7);
        let mut n = [0u8; 32];
        n.copy_from_slice(Sm2::ORDER.to_be_bytes().as_ref());
        let from = |bytes: &[u8]| SecretKey::from_slice(bytes).unwrap();
        let mut one = [0u8; 32];
        one[31] = 1;
        let mut n_minus_2 = n;
        n_minus_2[31] -= 2;
        for secret in [from(&one), from(&n_minus_2)] {
            let key = GatewaySigningKey::from_secret(secret, DEFAULT_DISTINGUISHING_ID).unwrap();
            assert_signs_as_sm2(&key, &messages);
        }
        // d = n − 1: 1 + d has no inverse; sm2 refuses every signature, the key is refused.
        let mut n_minus_1 = n;
        n_minus_1[31] -= 1;
        let secret = from(&n_minus_1);
        let reference = SigningKey::new(DEFAULT_DISTINGUISHING_ID, &secret).unwrap();
        assert!(Signer::<sm2::dsa::Signature>::try_sign(&reference, b"m").is_err());
        let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
        let e = GatewaySigningKey::from_pkcs8_pem(&pem, DEFAULT_DISTINGUISHING_ID).unwrap_err();
        assert!(matches!(e, KeyError::PrivateKey(_)), "{e}");
    }

    #[test]
    fn signed_receipts_verify() {
        let key = GatewaySigningKey::generate(DEFAULT_DISTINGUISHING_ID).unwrap();
        let public = key.public_key();
        for (position, document) in messages(20, 11).iter().enumerate() {
            let receipt = crate::sign_receipt(&key, crate::ReceiptFields::example(document, position as u64)).unwrap();
            crate::verify_receipt(&public, &receipt, Some(document)).unwrap();
        }
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
