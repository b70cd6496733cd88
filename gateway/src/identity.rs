//! Who is calling: the identity is the SAN URI of the client certificate that mutual TLS
//! verified, looked up in the partner registry. Nothing the caller sends can change it. A
//! certificate must name exactly one registered identity (docs/decisions.md #53).

pub use crate::certificate::san_uris;
use crate::config::{Config, PartnerConfig};
use tonic::Status;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A connected partner (by registry name).
    Partner(String),
    /// An operator (by name).
    Operator(String),
}

/// The registered identity (partner or operator) that a SAN URI names, if any.
fn registered(uri: &str, config: &Config) -> Option<Caller> {
    if let Some(p) = config.partner_by_identity(uri) {
        return Some(Caller::Partner(p.name.clone()));
    }
    config.operators.iter().find(|o| o.identity == uri).map(|o| Caller::Operator(o.name.clone()))
}

/// The caller named by a certificate's SAN URIs: exactly one registered identity must be named.
/// URIs that name no registered identity are ignored; the same identity named twice is one.
/// A certificate naming two or more registered identities is refused (`PERMISSION_DENIED`
/// naming them): which one it acts as must never depend on the order of its SAN entries.
pub fn caller_of(uris: &[String], config: &Config) -> Result<Caller, Status> {
    let mut named: Vec<(&str, Caller)> = Vec::new();
    for uri in uris {
        if let Some(c) = registered(uri, config) {
            if !named.iter().any(|(_, n)| *n == c) {
                named.push((uri.as_str(), c));
            }
        }
    }
    match named.len() {
        1 => Ok(named.remove(0).1),
        0 => Err(Status::permission_denied(format!(
            "certificate identity {} is not in the partner registry",
            if uris.is_empty() { "(no SAN URI)".to_string() } else { uris.join(", ") }
        ))),
        _ => {
            let list = named.iter().map(|(u, _)| *u).collect::<Vec<_>>().join(", ");
            tracing::warn!(identities = %list, "refused a certificate naming more than one registered identity");
            Err(Status::permission_denied(format!(
                "certificate names more than one registered identity ({list}); a certificate must name exactly one"
            )))
        }
    }
}

/// The caller of a request, from the identities its connection's verified client certificate
/// names (read once per connection); the registry in force decides who they are.
pub fn caller<T>(request: &tonic::Request<T>, config: &Config) -> Result<Caller, Status> {
    let uris = crate::transport::peer_identities(request)
        .ok_or_else(|| Status::unauthenticated("no client certificate: mutual TLS is required"))?;
    caller_of(&uris, config)
}

/// The registry entry of the partner `name`, if it is registered and not suspended.
pub fn active_partner<'c>(name: &str, config: &'c Config) -> Result<&'c PartnerConfig, Status> {
    match config.partners.iter().find(|p| p.name == name) {
        Some(p) if p.suspended => Err(Status::permission_denied(format!(
            "partner {name} is suspended (partner.suspended in the gateway's configuration); its mailbox is kept"
        ))),
        Some(p) => Ok(p),
        None => Err(Status::permission_denied(format!("partner {name} is no longer in the partner registry"))),
    }
}

/// Whether the partner `name` may still call under `config` (for streams opened before a reload).
pub fn still_admitted(name: &str, config: &Config) -> Result<(), Status> {
    active_partner(name, config).map(|_| ())
}

/// Whether a connection's verified leaf certificate still names an identity that may call under
/// `config`: exactly one registered identity, and not a suspended partner.
pub fn certificate_admitted(leaf: &[u8], config: &Config) -> Result<Caller, Status> {
    let caller = caller_of(&san_uris(leaf), config)?;
    if let Caller::Partner(name) = &caller {
        active_partner(name, config)?;
    }
    Ok(caller)
}

/// The calling partner's registry entry; operators and suspended partners are refused.
pub fn partner<'c, T>(request: &tonic::Request<T>, config: &'c Config) -> Result<&'c PartnerConfig, Status> {
    match caller(request, config)? {
        Caller::Partner(name) => active_partner(&name, config),
        Caller::Operator(name) => Err(Status::permission_denied(format!(
            "operator {name} cannot exchange documents: use a partner certificate"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrdx_pki::{partner_identity, CertificateAuthority};

    #[test]
    fn reads_the_san_uri_of_an_issued_certificate() {
        let ca = CertificateAuthority::new("test CA").unwrap();
        let c = ca.issue_client(&partner_identity("jiangsu"), false).unwrap();
        let der = pem_to_der(&c.cert_pem);
        assert_eq!(san_uris(&der), vec!["urn:yrdx:partner:jiangsu".to_string()]);
        assert!(san_uris(b"not a certificate").is_empty());
    }

    #[test]
    fn a_certificate_must_name_exactly_one_registered_identity() {
        let config = Config::parse(
            r#"
[tls]
client_ca = "a"
cert = "b"
key = "c"
[[partner]]
name = "jiangsu"
region = "320000"
format = "jiangsu"
identity = "urn:yrdx:partner:jiangsu"
[[partner]]
name = "zhejiang"
region = "330000"
format = "zhejiang"
identity = "urn:yrdx:partner:zhejiang"
[[operator]]
name = "ops"
identity = "urn:yrdx:operator:ops"
"#,
            "t",
        )
        .unwrap();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let js = "urn:yrdx:partner:jiangsu";
        assert_eq!(caller_of(&s(&[js]), &config).unwrap(), Caller::Partner("jiangsu".into()));
        assert_eq!(caller_of(&s(&["urn:other:x", js, js]), &config).unwrap(), Caller::Partner("jiangsu".into()));
        for two in [[js, "urn:yrdx:partner:zhejiang"], ["urn:yrdx:operator:ops", js]] {
            let e = caller_of(&s(&two), &config).unwrap_err();
            assert_eq!(e.code(), tonic::Code::PermissionDenied);
            assert!(e.message().contains(two[0]) && e.message().contains(two[1]), "{}", e.message());
        }
        assert_eq!(caller_of(&[], &config).unwrap_err().code(), tonic::Code::PermissionDenied);
    }

    fn pem_to_der(pem: &str) -> Vec<u8> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64_decode(&body)
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let (mut buf, mut bits) = (0u32, 0);
        for c in s.bytes().filter(|c| *c != b'=') {
            let v = T.iter().position(|t| *t == c).unwrap() as u32;
            buf = (buf << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((buf >> bits) as u8);
                buf &= (1 << bits) - 1;
            }
        }
        out
    }
}
