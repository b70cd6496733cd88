//! A "gateway" that completes the TLS handshake and then never answers: every case must fail in
//! about `step_timeout`, and a refusal case must not pass (silence is not a refusal).

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio_rustls::rustls::ServerConfig;
use yrdx_conformance::live::{LiveTarget, PartnerProfile};
use yrdx_conformance::report::Outcome;
use yrdx_conformance::runner::{self, RunOptions, Target};
use yrdx_conformance::tls::ClientIdentity;
use yrdx_pki::{partner_identity, CertificateAuthority};

/// Listens on a free port; accepts TLS (h2) and reads forever, answering nothing.
async fn silent_server(ca: &CertificateAuthority) -> String {
    let server = ca.issue_server().expect("server certificate");
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(server.cert_pem.as_bytes()).collect::<Result<_, _>>().expect("chain");
    let key = PrivateKeyDer::from_pem_slice(server.key_pem.as_bytes()).expect("key");
    let mut config = ServerConfig::builder().with_no_client_auth().with_single_cert(chain, key).expect("server config");
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 4096];
                    while matches!(tls.read(&mut buf).await, Ok(n) if n > 0) {}
                }
            });
        }
    });
    format!("https://{addr}")
}

#[tokio::test]
async fn a_gateway_that_never_answers_fails_every_case_and_passes_no_refusal() {
    let ca = CertificateAuthority::new("silent test CA").expect("ca");
    let url = silent_server(&ca).await;
    let me = ca.issue_client(&partner_identity("jiangsu"), false).expect("client");
    let target = LiveTarget {
        url,
        server_name: "localhost".into(),
        ca_pem: ca.cert_pem.clone(),
        me: PartnerProfile::known("jiangsu", ClientIdentity { cert_pem: me.cert_pem, key_pem: me.key_pem })
            .expect("jiangsu"),
        peer: None,
        issuing_ca: None,
        burst: None,
        oversized_bytes: None,
        step_timeout: Duration::from_secs(1),
        visibility_timeout: Duration::from_secs(1),
    };
    let opts = RunOptions {
        suite: "gateway".into(),
        suites_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("suites"),
        vectors_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors"),
        catalogue: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("requirements.toml"),
        run: vec!["gateway.submit.plan".into(), "gateway.negative.no-client-certificate".into()],
        skip: vec![],
        tags: vec![],
        known_failing: BTreeSet::new(),
        target: Target::Live(Box::new(target)),
        inputs: vec![],
        progress: false,
    };
    let report = runner::run(&opts).await.expect("the handshake succeeds, so the run starts");
    assert_eq!(report.verdict, "fail", "{:?}", report.summary);
    for id in ["gateway.submit.plan", "gateway.negative.no-client-certificate"] {
        let case = report.cases.iter().find(|c| c.id == id).expect("case");
        assert_eq!(case.outcome, Outcome::Fail, "{id}: {:?}", case.findings);
    }
    let refusal = report.cases.iter().find(|c| c.id == "gateway.negative.no-client-certificate").expect("case");
    assert!(refusal.findings[0].actual.starts_with("no answer"), "{:?}", refusal.findings);
}
