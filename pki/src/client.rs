//! A partner-side client of the gateway over mutual TLS (used by `yrdx demo`, the tests and the
//! simulators).

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use yrdx_proto::v1::exchange_client::ExchangeClient;

/// Connects to `url` (`https://127.0.0.1:7443`) trusting `ca_pem`, presenting `identity` (certificate
/// and key PEM) when given. The server name checked is `localhost`.
pub async fn connect(
    url: &str,
    ca_pem: &str,
    identity: Option<(String, String)>,
) -> Result<ExchangeClient<Channel>, tonic::transport::Error> {
    Ok(ExchangeClient::new(channel(url, ca_pem, identity).await?))
}

/// A mutual-TLS channel to the gateway, for any of its services.
pub async fn channel(
    url: &str,
    ca_pem: &str,
    identity: Option<(String, String)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)).domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(url.to_string())?.tls_config(tls)?.connect().await
}
