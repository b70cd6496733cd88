//! SM3 digests (GM/T 0004) and their lowercase-hex form.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sm3::{Digest, Sm3};
use std::fmt;

/// An SM3 digest (32 bytes), written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Sm3Digest(pub [u8; 32]);

/// A text that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not an SM3 digest (64 hex digits)")]
pub struct DigestParseError {
    /// The text found (cut to 80 characters).
    pub text: String,
}

impl Sm3Digest {
    /// The all-zero digest: the `prev_hash` of the chain's first entry.
    pub const GENESIS: Sm3Digest = Sm3Digest([0; 32]);

    /// SM3 of `bytes`.
    pub fn of(bytes: &[u8]) -> Sm3Digest {
        Sm3Digest(Sm3::digest(bytes).into())
    }

    /// SM3 of the concatenation of `parts`.
    pub fn of_parts(parts: &[&[u8]]) -> Sm3Digest {
        let mut hasher = Sm3::new();
        for part in parts {
            hasher.update(part);
        }
        Sm3Digest(hasher.finalize().into())
    }

    /// The 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Result<Sm3Digest, DigestParseError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes)
            .map_err(|_| DigestParseError { text: text.chars().take(80).collect() })?;
        Ok(Sm3Digest(bytes))
    }
}

impl fmt::Display for Sm3Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sm3Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sm3Digest({})", self.to_hex())
    }
}

impl std::str::FromStr for Sm3Digest {
    type Err = DigestParseError;

    fn from_str(text: &str) -> Result<Sm3Digest, DigestParseError> {
        Sm3Digest::from_hex(text)
    }
}

impl Serialize for Sm3Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sm3Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Sm3Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Sm3Digest::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// SM3 of `bytes` as 64 lowercase hex digits.
pub fn sm3_hex(bytes: &[u8]) -> String {
    Sm3Digest::of(bytes).to_hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sm3_of_abc_is_the_standard_vector() {
        // GM/T 0004-2012, example 1.
        assert_eq!(sm3_hex(b"abc"), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
        assert_eq!(Sm3Digest::of_parts(&[b"a", b"bc"]), Sm3Digest::of(b"abc"));
    }

    #[test]
    fn hex_round_trips_and_refuses_what_is_not_a_digest() {
        let d = Sm3Digest::of(b"x");
        assert_eq!(Sm3Digest::from_hex(&d.to_hex()).unwrap(), d);
        assert_eq!(Sm3Digest::from_hex(&d.to_hex().to_uppercase()).unwrap(), d);
        for bad in ["", "00", &"g".repeat(64), &"0".repeat(66)] {
            let e = Sm3Digest::from_hex(bad).unwrap_err();
            assert!(e.to_string().contains("not an SM3 digest"), "{e}");
        }
    }
}
