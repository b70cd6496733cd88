//! What a client certificate says, read once from its DER: its SAN URIs (the identity is one of
//! them, see [`crate::identity`]) and its serial number (what refusals and revocations log).
//! Below both the transport and identity, so neither imports the other for it.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The SAN URIs of a DER certificate (none when it does not parse).
pub fn san_uris(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return vec![];
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return vec![];
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect()
}

/// The serial number of a DER certificate, hex (empty when it does not parse).
pub fn serial_hex(der: &[u8]) -> String {
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => hex::encode(cert.raw_serial()),
        Err(_) => String::new(),
    }
}
