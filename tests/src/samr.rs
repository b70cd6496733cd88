//! SAMR's side of a docking test: its own CA, a running test intake, and the gateway's client
//! certificate written to a folder, so that a test names only what it asks of SAMR and how the
//! gateway's `[samr]` section differs.

use std::path::PathBuf;
use yrdx_conformance::samr_simulator::{IntakeOptions, SamrIntake};
use yrdx_pki::{CertificateAuthority, IssuedCert};

/// The test SAMR: its CA, the gateway's client certificate it trusts, and its intake.
pub struct TestSamr {
    /// SAMR's CA (it signed the intake's server certificate and the gateway's client one).
    pub ca: CertificateAuthority,
    /// The gateway's client certificate (`urn:yrdx:gateway:310000`).
    pub client: IssuedCert,
    /// The running intake.
    pub intake: SamrIntake,
    /// Where `ca.pem`, `client.pem` and `client.key` were written for the gateway to read.
    pub dir: PathBuf,
}

impl TestSamr {
    /// Starts an intake answering as `options` say, its files in a fresh folder tagged `tag`.
    pub async fn start(tag: &str, options: IntakeOptions) -> TestSamr {
        let ca = CertificateAuthority::new("SAMR test CA").expect("ca");
        let server = ca.issue_server().expect("server cert");
        let client = ca.issue_client("urn:yrdx:gateway:310000", false).expect("client cert");
        let dir = crate::temp_dir(tag);
        for (name, text) in
            [("ca.pem", &ca.cert_pem), ("client.pem", &client.cert_pem), ("client.key", &client.key_pem)]
        {
            std::fs::write(dir.join(name), text).expect("write");
        }
        let intake = SamrIntake::start(&server.cert_pem, &server.key_pem, &ca.cert_pem, options).await.expect("intake");
        TestSamr { ca, client, intake, dir }
    }

    /// The gateway's `[samr]` section pushing to this intake at once (`batch_max_age_secs = 0`),
    /// followed by `extra` (more `[samr]` keys, then any other sections).
    pub fn section(&self, extra: &str) -> String {
        format!(
            "\n[samr]\nintake_url = \"{}\"\nserver_name = \"localhost\"\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\nbatch_max_age_secs = 0\n{extra}",
            self.intake.url(),
            self.dir.join("ca.pem").display(),
            self.dir.join("client.pem").display(),
            self.dir.join("client.key").display()
        )
    }
}

/// Waits up to `within` until every package in `store` is accepted by SAMR (fails naming `what`).
pub async fn until_all_accepted(what: &str, within: std::time::Duration, store: &yrdx_gateway::store::SqliteStore) {
    crate::wait_for(what, within, || {
        store
            .samr_packages()
            .unwrap()
            .iter()
            .all(|p| p.state == yrdx_gateway::store::PackageState::Accepted)
            .then_some(())
    })
    .await;
}
