//! The suite's own TLS client: mutual TLS with whatever credentials a case needs (none, untrusted,
//! expired, a wrong SAN), recording what each handshake negotiated — the TLS version and the
//! peer certificate's SHA-256 fingerprint and SANs — as evidence for the report.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// What one TLS handshake showed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsFacts {
    /// The negotiated version (`TLSv1_3`).
    pub version: String,
    /// SHA-256 of the peer's leaf certificate (DER), lower-case hex.
    pub peer_fingerprint_sha256: String,
    /// The peer certificate's subject alternative names.
    pub peer_san: Vec<String>,
}

/// A client certificate and key, PEM.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// Certificate chain, PEM.
    pub cert_pem: String,
    /// Private key, PEM.
    pub key_pem: String,
}

/// Why TLS could not be set up (the tool's configuration, not the target).
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA certificate is unusable.
    #[error("CA certificate: {0}")]
    Ca(String),
    /// The client certificate or key is unusable.
    #[error("client certificate or key: {0}")]
    Identity(String),
    /// The server name is not a valid DNS name or address.
    #[error("server name {0:?} is not a DNS name or an IP address")]
    ServerName(String),
}

/// A TLS client: trusted roots, an optional client identity and the server name to check.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl TlsClient {
    /// A client trusting `ca_pem`, presenting `identity` when given, checking `server_name`;
    /// `alpn` protocols are offered (`h2` for gRPC).
    pub fn new(
        ca_pem: &str,
        identity: Option<&ClientIdentity>,
        server_name: &str,
        alpn: &[&[u8]],
    ) -> Result<TlsClient, TlsSetupError> {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots
                .add(c.map_err(|e| TlsSetupError::Ca(e.to_string()))?)
                .map_err(|e| TlsSetupError::Ca(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(TlsSetupError::Ca("no certificate in the PEM".into()));
        }
        let builder = ClientConfig::builder().with_root_certificates(roots);
        let mut config = match identity {
            Some(id) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(|e| TlsSetupError::Identity(e.to_string()))?;
                let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes())
                    .map_err(|e| TlsSetupError::Identity(e.to_string()))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| TlsSetupError::Identity(e.to_string()))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|_| TlsSetupError::ServerName(server_name.to_string()))?;
        Ok(TlsClient { connector: TlsConnector::from(Arc::new(config)), server_name })
    }

    /// A client from a rustls configuration built by the caller (its own roots or verifier,
    /// identity and ALPN), checking `server_name`.
    pub fn from_config(config: Arc<ClientConfig>, server_name: &str) -> Result<TlsClient, TlsSetupError> {
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|_| TlsSetupError::ServerName(server_name.to_string()))?;
        Ok(TlsClient { connector: TlsConnector::from(config), server_name })
    }

    /// Connects to `addr` (`host:port`) and completes the handshake, recording its facts in `facts`.
    pub async fn connect(
        &self,
        addr: &str,
        facts: &Arc<Mutex<Option<TlsFacts>>>,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        let stream = self.connector.connect(self.server_name.clone(), tcp).await?;
        let (_, conn) = stream.get_ref();
        let observed = TlsFacts::of(conn);
        *facts.lock().unwrap_or_else(|p| p.into_inner()) = Some(observed);
        Ok(stream)
    }
}

/// The subject alternative names of a DER certificate (`DNS:localhost`, `URI:urn:…`, `IP:…`).
pub fn san_of(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { return vec![] };
    let Ok(Some(san)) = cert.subject_alternative_name() else { return vec![] };
    san.value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => format!("DNS:{d}"),
            GeneralName::URI(u) => format!("URI:{u}"),
            GeneralName::IPAddress(ip) => match ip.len() {
                4 => format!("IP:{}", std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
                16 => {
                    let mut b = [0u8; 16];
                    b.copy_from_slice(ip);
                    format!("IP:{}", std::net::Ipv6Addr::from(b))
                }
                _ => format!("IP:{}", hex::encode(ip)),
            },
            other => format!("{other:?}"),
        })
        .collect()
}

/// Why the tool cannot test a target with the configuration it was given (exit 2: nothing is
/// known yet about the target itself).
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The credentials or server name are unusable.
    #[error(transparent)]
    Setup(#[from] TlsSetupError),
    /// Nothing answers at the address.
    #[error("cannot reach {addr}: {message} (is the address right and the target running?)")]
    Unreachable {
        /// `host:port`.
        addr: String,
        /// The connection error.
        message: String,
    },
    /// The TLS handshake did not complete in time.
    #[error("{addr} accepted a connection but completed no TLS handshake within {secs} s")]
    NoHandshake {
        /// `host:port`.
        addr: String,
        /// The limit.
        secs: u64,
    },
    /// Our own `--ca` (or `--server-name`) rejects the server's certificate.
    #[error(
        "the server certificate of {addr} is not accepted by --ca for the name {server_name:?}: {message} \
         (give the CA that signed the server's certificate, or --server-name)"
    )]
    ServerCertificate {
        /// `host:port`.
        addr: String,
        /// The name checked.
        server_name: String,
        /// rustls's reason.
        message: String,
    },
    /// The handshake failed otherwise.
    #[error("TLS handshake with {addr} failed: {message}")]
    Handshake {
        /// `host:port`.
        addr: String,
        /// The error.
        message: String,
    },
}

/// Checks, before any case, that `addr` answers, and that `ca_pem` accepts its certificate for
/// `server_name`: otherwise every case would fail (or a refusal case pass) for the
/// configuration's sake. A client certificate the server rejects is not judged here — that is
/// what the cases check.
pub async fn preflight(
    addr: &str,
    ca_pem: &str,
    identity: Option<&ClientIdentity>,
    server_name: &str,
    alpn: &[&[u8]],
    limit: std::time::Duration,
) -> Result<TlsFacts, PreflightError> {
    let client = TlsClient::new(ca_pem, identity, server_name, alpn)?;
    let unreachable = |message: String| PreflightError::Unreachable { addr: addr.to_string(), message };
    let tcp = match tokio::time::timeout(limit, TcpStream::connect(addr)).await {
        Err(_) => return Err(unreachable(format!("no connection within {} s", limit.as_secs()))),
        Ok(Err(e)) => return Err(unreachable(e.to_string())),
        Ok(Ok(t)) => t,
    };
    let handshake = tokio::time::timeout(limit, client.connector.connect(client.server_name.clone(), tcp)).await;
    let stream = match handshake {
        Err(_) => return Err(PreflightError::NoHandshake { addr: addr.to_string(), secs: limit.as_secs() }),
        Ok(Err(e)) => {
            let rustls_error = e.get_ref().and_then(|i| i.downcast_ref::<tokio_rustls::rustls::Error>());
            return Err(match rustls_error {
                Some(tokio_rustls::rustls::Error::InvalidCertificate(reason)) => PreflightError::ServerCertificate {
                    addr: addr.to_string(),
                    server_name: server_name.to_string(),
                    message: format!("{reason:?}"),
                },
                _ => PreflightError::Handshake { addr: addr.to_string(), message: e.to_string() },
            });
        }
        Ok(Ok(s)) => s,
    };
    let (_, conn) = stream.get_ref();
    Ok(TlsFacts::of(conn))
}

/// The subject alternative names of the first certificate of a PEM text (empty when none
/// parses).
pub fn pem_san(pem: &str) -> Vec<String> {
    match CertificateDer::pem_slice_iter(pem.as_bytes()).next() {
        Some(Ok(c)) => san_of(c.as_ref()),
        _ => vec![],
    }
}

/// The SHA-256 fingerprint of the first certificate of a PEM text, for the report's inputs.
pub fn pem_fingerprint(pem: &str) -> Option<String> {
    CertificateDer::pem_slice_iter(pem.as_bytes()).next()?.ok().map(|c| hex::encode(Sha256::digest(c.as_ref())))
}

/// What the target did with a ClientHello offering only an old protocol version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyOutcome {
    /// It answered with an alert or closed the connection.
    Refused(String),
    /// It answered with a ServerHello for the offered version.
    Accepted(String),
}

/// Offers TLS `minor` (1 = TLS 1.0, 2 = TLS 1.1) and nothing newer — rustls cannot speak these, so
/// the ClientHello is written by hand — and reads what the target answers.
pub async fn probe_legacy_version(addr: &str, minor: u8, server_name: &str) -> std::io::Result<LegacyOutcome> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hello = legacy_client_hello(minor, server_name);
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.write_all(&hello).await?;
    let mut head = [0u8; 5];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_exact(&mut head)).await;
    match read {
        Err(_) => Ok(LegacyOutcome::Refused("no answer within 5 s".into())),
        Ok(Err(e)) => Ok(LegacyOutcome::Refused(format!("connection closed: {e}"))),
        Ok(Ok(_)) => match head[0] {
            0x15 => {
                let mut alert = [0u8; 2];
                let _ = tcp.read_exact(&mut alert).await;
                Ok(LegacyOutcome::Refused(format!("alert level {} description {}", alert[0], alert[1])))
            }
            0x16 => {
                let len = u16::from_be_bytes([head[3], head[4]]) as usize;
                let mut body = vec![0u8; len.min(16_384)];
                let _ = tcp.read_exact(&mut body).await;
                // ServerHello: type 2, 3 length bytes, then the chosen version.
                if body.first() == Some(&2) && body.len() >= 6 {
                    let (major, chosen) = (body[4], body[5]);
                    if major == 3 && chosen <= 2 {
                        return Ok(LegacyOutcome::Accepted(format!("ServerHello chose version 3.{chosen}")));
                    }
                    return Ok(LegacyOutcome::Refused(format!("ServerHello with version {major}.{chosen}")));
                }
                Ok(LegacyOutcome::Refused(format!("handshake message type {:?}", body.first())))
            }
            other => Ok(LegacyOutcome::Refused(format!("record type {other}"))),
        },
    }
}

/// A TLS 1.0/1.1 ClientHello with common CBC suites, SNI and the curves a server would need.
fn legacy_client_hello(minor: u8, server_name: &str) -> Vec<u8> {
    let mut body = vec![3, minor];
    body.extend((0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(11)));
    body.push(0); // no session id
    let suites: [u16; 6] = [0xc013, 0xc014, 0xc009, 0xc00a, 0x002f, 0x0035];
    body.extend(((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend(s.to_be_bytes());
    }
    body.extend([1, 0]); // null compression
    let mut ext = Vec::new();
    let name = server_name.as_bytes();
    let mut sni = Vec::new();
    sni.extend(((name.len() + 3) as u16).to_be_bytes());
    sni.push(0);
    sni.extend((name.len() as u16).to_be_bytes());
    sni.extend(name);
    push_extension(&mut ext, 0x0000, &sni);
    push_extension(&mut ext, 0x000a, &[0, 4, 0, 0x17, 0, 0x1d]); // secp256r1, x25519
    push_extension(&mut ext, 0x000b, &[1, 0]); // uncompressed points
    body.extend((ext.len() as u16).to_be_bytes());
    body.extend(ext);
    let mut handshake = vec![1];
    handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend(body);
    let mut record = vec![0x16, 3, 1];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

fn push_extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend(kind.to_be_bytes());
    out.extend((data.len() as u16).to_be_bytes());
    out.extend(data);
}

impl TlsFacts {
    /// What an established connection shows: the protocol version and the peer's leaf
    /// certificate (its SHA-256 and SAN URIs).
    fn of(conn: &tokio_rustls::rustls::CommonState) -> TlsFacts {
        let leaf = conn.peer_certificates().and_then(|c| c.first());
        TlsFacts {
            version: conn.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default(),
            peer_fingerprint_sha256: leaf.map(|c| hex::encode(Sha256::digest(c.as_ref()))).unwrap_or_default(),
            peer_san: leaf.map(|c| san_of(c.as_ref())).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legacy_hello_is_well_formed() {
        let h = legacy_client_hello(2, "localhost");
        assert_eq!(&h[..3], &[0x16, 3, 1]);
        assert_eq!(u16::from_be_bytes([h[3], h[4]]) as usize, h.len() - 5);
        assert_eq!(h[5], 1, "ClientHello");
        assert_eq!(&h[9..11], &[3, 2], "offers TLS 1.1 only");
    }
}
