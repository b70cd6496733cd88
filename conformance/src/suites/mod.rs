//! The suites, one module each; their cases are the TOML files of `conformance/suites/<suite>/`
//! ([`crate::suite`]), run by [`crate::runner`].

pub mod formats;
pub mod live;
pub mod partner_endpoint;
pub mod samr_intake;
pub mod samr_push;

/// Why a target cannot be tested with the configuration given (found before any case runs, exit
/// 2): the fault is the configuration's, not the target's.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A target URL is unusable.
    #[error("{flag} {url}: {reason}")]
    Url {
        /// `--gateway` or `--intake`.
        flag: &'static str,
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate given is not the named partner's.
    #[error("{flag}: the certificate names {named}, not the {partner} partner ({want})")]
    NotThePartner {
        /// `--cert` or `--peer-cert`.
        flag: &'static str,
        /// The SANs it carries.
        named: String,
        /// The partner named by `--as` or `--peer`.
        partner: String,
        /// The SAN it must carry.
        want: String,
    },
    /// The operator's certificate is not an operator's.
    #[error("--operator-cert: the certificate names {named}, not an operator (urn:yrdx:operator:…)")]
    NotAnOperator {
        /// The SANs it carries.
        named: String,
    },
    /// The target does not answer, or our `--ca` rejects it.
    #[error("{flag} {url}: {source}")]
    Unreachable {
        /// `--gateway` or `--intake`.
        flag: &'static str,
        /// The URL given.
        url: String,
        /// What the TLS preflight found.
        source: crate::tls::PreflightError,
    },
}

/// `host:port` of an `https://` URL given as `flag`.
pub(crate) fn https_authority(flag: &'static str, url: &str) -> Result<String, TargetError> {
    let bad = |reason: String| TargetError::Url { flag, url: url.to_string(), reason };
    let uri: hyper::Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| bad(e.to_string()))?;
    if uri.scheme_str() != Some("https") {
        return Err(bad("an https:// URL is required".into()));
    }
    let host = uri.host().ok_or_else(|| bad("no host".into()))?;
    Ok(format!("{host}:{}", uri.port_u16().unwrap_or(443)))
}
