//! Harness for end-to-end tests: a real gateway with a freshly generated development PKI on a
//! loopback port, and real tonic clients holding partner certificates.
#![deny(missing_docs)]

pub mod log;
pub mod otlp_receiver;
pub mod records;
pub mod samr;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;
use yrdx_adapters::{Partner, Record};
use yrdx_clock::ManualClock;
use yrdx_gateway::config::Config;
use yrdx_gateway::server::{self, RunningGateway};
use yrdx_pki::{self as pki, CertificateAuthority, DevPki};
use yrdx_proto::civil::parse_rfc3339;
use yrdx_proto::v1::exchange_client::ExchangeClient;
use yrdx_proto::v1::Envelope;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A gateway under test.
pub struct TestGateway {
    /// Its state folder (PKI, configuration, store).
    pub dir: PathBuf,
    /// The development PKI.
    pub pki: DevPki,
    /// The running server.
    pub running: Option<RunningGateway>,
    /// The CA that signed the gateway's and partners' certificates.
    pub ca: CertificateAuthority,
    /// The gateway's one clock: starts at 2024-03-15 10:00 Beijing time and runs on in real time;
    /// tests move it.
    pub clock: Arc<ManualClock>,
}

/// A fresh temporary folder for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("yrdx-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl TestGateway {
    /// Starts a gateway with the development PKI on a free loopback port.
    pub async fn start() -> TestGateway {
        TestGateway::start_with(|t| t).await
    }

    /// Starts a gateway with deliberate faults switched on (to prove a test catches them).
    pub async fn start_with_faults(faults: yrdx_gateway::faults::Faults) -> TestGateway {
        TestGateway::start_with_config_and_faults(|t| t, faults).await
    }

    /// [`TestGateway::start_with`] and then [`TestGateway::start_with_faults`]: the edited
    /// configuration, restarted with `faults` switched on (as it is when there are none).
    pub async fn start_with_config_and_faults(
        edit: impl FnOnce(String) -> String,
        faults: yrdx_gateway::faults::Faults,
    ) -> TestGateway {
        let mut g = TestGateway::start_with(edit).await;
        if faults == yrdx_gateway::faults::Faults::default() {
            return g;
        }
        if let Some(r) = g.running.take() {
            r.stop().await.expect("clean stop");
        }
        let config = Config::load(&g.pki.config).expect("config loads");
        g.running =
            Some(server::start_with_faults(config, g.clock.clone(), faults).await.expect("faulty gateway starts"));
        g
    }

    /// Starts a gateway after editing its configuration text.
    pub async fn start_with(edit: impl FnOnce(String) -> String) -> TestGateway {
        let dir = temp_dir("e2e");
        let ca = CertificateAuthority::new("yrdx test CA").expect("ca");
        let pki = pki::init_with(&dir, "127.0.0.1:0", &ca).expect("pki");
        let text = std::fs::read_to_string(&pki.config).expect("config");
        std::fs::write(&pki.config, edit(text)).expect("config");
        let clock = Arc::new(ManualClock::running(parse_rfc3339("2024-03-15T10:00:00+08:00").expect("time")));
        let mut g = TestGateway { dir, pki, running: None, ca, clock };
        g.boot().await;
        g
    }

    async fn boot(&mut self) {
        let config = Config::load(&self.pki.config).expect("config loads");
        self.running = Some(server::start_with_clock(config, self.clock.clone()).await.expect("gateway starts"));
    }

    /// Stops and starts the gateway on the same store (a new port).
    pub async fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean stop");
        }
        self.boot().await;
    }

    /// Rewrites the configuration file (for a reload or restart to read).
    pub fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(&self.pki.config).expect("config");
        std::fs::write(&self.pki.config, edit(text)).expect("config");
    }

    /// Reloads the running gateway from its configuration file (what SIGHUP does).
    pub async fn reload(&self) -> Result<yrdx_gateway::reload::Reloaded, yrdx_gateway::reload::ReloadError> {
        self.running.as_ref().expect("running").reload().await
    }

    /// Writes `cert` as the development certificate `name` (`pki/{name}.pem`, `.key`), so that
    /// [`TestGateway::client`] and friends can use it.
    pub fn install_cert(&self, name: &str, cert: &yrdx_pki::IssuedCert) {
        let (c, k) = self.pki.client_files(name);
        std::fs::write(c, &cert.cert_pem).expect("cert");
        std::fs::write(k, &cert.key_pem).expect("key");
    }

    /// Sets the gateway's clock (RFC 3339).
    pub fn set_time(&self, at: &str) {
        self.clock.set(parse_rfc3339(at).expect("RFC 3339 time"));
    }

    /// The gateway's store, opened alongside the running server (SQLite allows it).
    pub fn store(&self) -> yrdx_gateway::store::SqliteStore {
        yrdx_gateway::store::SqliteStore::open(&self.dir.join("yrdx.sqlite")).expect("store")
    }

    /// Stops the gateway.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await.expect("clean stop");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// The `https://` URL of the running gateway.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.running.as_ref().expect("running").addr.port())
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.pki.ca_file()).expect("ca")
    }

    /// An Exchange client holding the named development certificate (`jiangsu`, `ops` …).
    pub async fn client(&self, name: &str) -> ExchangeClient<Channel> {
        let (cert, key) = self.pki.client_files(name);
        let cert = std::fs::read_to_string(cert).expect("cert");
        let key = std::fs::read_to_string(key).expect("key");
        self.client_with(Some((cert, key)), &self.ca_pem()).await.expect("connects")
    }

    /// An Admin client holding the named development certificate (`ops`, or a partner's).
    pub async fn admin(&self, name: &str) -> yrdx_proto::v1::admin_client::AdminClient<Channel> {
        let (cert, key) = self.pki.client_files(name);
        let identity = (std::fs::read_to_string(cert).expect("cert"), std::fs::read_to_string(key).expect("key"));
        let channel = yrdx_pki::client::channel(&self.url(), &self.ca_pem(), Some(identity)).await.expect("connects");
        yrdx_proto::v1::admin_client::AdminClient::new(channel)
    }

    /// A Records client holding the named development certificate (`shanghai`, or a partner's).
    pub async fn records(&self, name: &str) -> yrdx_proto::v1::records_client::RecordsClient<Channel> {
        let (cert, key) = self.pki.client_files(name);
        let identity = (std::fs::read_to_string(cert).expect("cert"), std::fs::read_to_string(key).expect("key"));
        let channel = yrdx_pki::client::channel(&self.url(), &self.ca_pem(), Some(identity)).await.expect("connects");
        yrdx_proto::v1::records_client::RecordsClient::new(channel)
    }

    /// An Exchange client with any identity (or none) trusting `ca_pem`.
    pub async fn client_with(
        &self,
        identity: Option<(String, String)>,
        ca_pem: &str,
    ) -> Result<ExchangeClient<Channel>, tonic::transport::Error> {
        yrdx_pki::client::connect(&self.url(), ca_pem, identity).await
    }
}

/// A Python virtual environment under `target/python-grpc` with grpcio, grpcio-reflection and
/// protobuf installed from PyPI (an independent gRPC client); its `python`, or why it cannot be
/// set up.
pub fn python_grpc_venv() -> Result<PathBuf, String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/python-grpc");
    let python = root.join("bin/python");
    if !python.exists() {
        let out =
            Command::new("python3").args(["-m", "venv"]).arg(&root).output().map_err(|e| format!("python3: {e}"))?;
        if !out.status.success() {
            return Err(format!("python3 -m venv failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    let out = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "grpcio>=1.60",
            "grpcio-reflection>=1.60",
            "protobuf>=4.25",
        ])
        .output()
        .map_err(|e| format!("pip: {e}"))?;
    if !out.status.success() {
        return Err(format!("pip install grpcio grpcio-reflection failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(python)
}

/// The PostgreSQL server the tests use (`YRDX_TEST_POSTGRES`, default the machine's own).
pub fn postgres_base() -> String {
    std::env::var("YRDX_TEST_POSTGRES").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

/// A fresh, empty PostgreSQL schema and the store URL that uses it, or why there is none (the
/// caller prints `SKIPPED` with it, or fails when `YRDX_REQUIRE_POSTGRES=1`).
pub async fn postgres_schema(tag: &str) -> Result<String, String> {
    let base = postgres_base();
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to {base}: {e}"))?;
    tokio::spawn(connection);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let schema = format!("yrdx_e2e_{tag}_{}_{n}", std::process::id());
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"))
        .await
        .map_err(|e| e.to_string())?;
    let sep = if base.contains('?') { '&' } else { '?' };
    Ok(format!("{base}{sep}options=-csearch_path%3D{schema}"))
}

/// Reports a test part that needs PostgreSQL and cannot run: loudly, and as a failure when
/// `YRDX_REQUIRE_POSTGRES=1`.
pub fn skip_without_postgres(what: &str, why: &str) {
    if std::env::var("YRDX_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        panic!("{what} needs PostgreSQL (YRDX_REQUIRE_POSTGRES=1) but it is absent: {why}");
    }
    eprintln!("SKIPPED {what}: PostgreSQL absent ({why})");
}

impl TestGateway {
    /// Starts a gateway whose store is a fresh PostgreSQL schema; `None` (after saying so) when
    /// PostgreSQL is absent.
    pub async fn start_on_postgres(tag: &str) -> Option<TestGateway> {
        match postgres_schema(tag).await {
            Ok(url) => Some(
                TestGateway::start_with(|t| t.replace("store = \"yrdx.sqlite\"", &format!("store = \"{url}\""))).await,
            ),
            Err(why) => {
                skip_without_postgres(tag, &why);
                None
            }
        }
    }

    /// Starts one more gateway process on the same configuration and store (a replica behind a
    /// load balancer), on its own port.
    pub async fn start_replica(&self) -> RunningGateway {
        let config = Config::load(&self.pki.config).expect("config loads");
        server::start_with_clock(config, self.clock.clone()).await.expect("replica starts")
    }

    /// An Exchange client of a replica, holding the named development certificate.
    pub async fn client_of(&self, replica: &RunningGateway, name: &str) -> ExchangeClient<Channel> {
        let (cert, key) = self.pki.client_files(name);
        let identity = (std::fs::read_to_string(cert).expect("cert"), std::fs::read_to_string(key).expect("key"));
        let url = format!("https://127.0.0.1:{}", replica.addr.port());
        yrdx_pki::client::connect(&url, &self.ca_pem(), Some(identity)).await.expect("connects")
    }
}

/// A TCP connection to `addr` from the loopback address `source` (127.0.0.2 … stand for other
/// machines: Linux answers the whole 127.0.0.0/8 on loopback).
pub async fn tcp_from(source: std::net::IpAddr, addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

impl TestGateway {
    /// A raw mutual-TLS connection (ALPN `h2`) from `source` holding the named development
    /// certificate, for tests that speak HTTP/2 themselves.
    pub async fn tls_from(
        &self,
        name: &str,
        source: std::net::IpAddr,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        use tokio_rustls::rustls::{self, pki_types::pem::PemObject};
        let (cert, key) = self.pki.client_files(name);
        let bad = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
        let chain = rustls::pki_types::CertificateDer::pem_file_iter(cert)
            .map_err(|e| bad(&e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(&e))?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).map_err(|e| bad(&e))?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in rustls::pki_types::CertificateDer::pem_file_iter(self.pki.ca_file()).map_err(|e| bad(&e))? {
            roots.add(ca.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
        }
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(rustls::DEFAULT_VERSIONS)
                .map_err(|e| bad(&e))?
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad(&e))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        let addr = self.running.as_ref().expect("running").addr;
        let tcp = tcp_from(source, addr).await?;
        let name = rustls::pki_types::ServerName::try_from("localhost").map_err(|e| bad(&e))?;
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await
    }
}

/// Encodes records as `sender` would send them to the exchange, in `format`.
pub fn document(format: Partner, sender: &str, message_id: &str, records: &[Record]) -> Vec<u8> {
    let envelope = Envelope {
        message_id: message_id.into(),
        sender: sender.into(),
        receiver: "310000".into(),
        sent_at: parse_rfc3339("2024-03-12T14:30:00+08:00"),
    };
    format.encode(&envelope, records, 1).expect("test document encodes").bytes
}

/// A canonical record from a conformance vector (its first record).
pub fn vector_record(format: Partner, file: &str) -> Record {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors").join(file);
    let bytes = std::fs::read(&path).expect("vector");
    format.decode(&bytes, &Default::default()).expect("valid vector").records.remove(0)
}

/// Polls `f` every 100 ms until it gives a value, for at most `within`; fails the test naming
/// `what` when it never does.
pub async fn wait_for<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let tries = within.as_millis().div_ceil(100).max(1);
    for _ in 0..tries {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

impl TestGateway {
    /// Submits one record as `who`, encoded in `format` as `sender` sends it with message id `id`.
    pub async fn submit_one(
        &self,
        who: &str,
        format: Partner,
        sender: &str,
        id: &str,
        record: Record,
    ) -> Result<yrdx_proto::v1::SubmitReply, tonic::Status> {
        self.client(who)
            .await
            .submit(yrdx_proto::v1::SubmitRequest { document: document(format, sender, id, &[record]) })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Everything waiting for `who` until the mailbox stays quiet for 600 ms, acknowledged.
    pub async fn drain_deliveries(&self, who: &str) -> Vec<yrdx_proto::v1::Delivery> {
        use yrdx_proto::v1::{AckRequest, ReceiveRequest};
        let mut client = self.client(who).await;
        let mut stream = client.receive(ReceiveRequest { max_unacked: 10 }).await.expect("receive").into_inner();
        let mut out = Vec::new();
        while let Ok(Ok(Some(d))) = tokio::time::timeout(Duration::from_millis(600), stream.message()).await {
            client.ack(AckRequest { delivery_ids: vec![d.delivery_id.clone()] }).await.expect("ack");
            out.push(d);
        }
        out
    }

    /// [`TestGateway::drain_deliveries`], each as (message id, its records decoded in `format`).
    pub async fn drain_messages(&self, who: &str, format: Partner) -> Vec<(String, Vec<Record>)> {
        let deliveries = self.drain_deliveries(who).await;
        deliveries
            .into_iter()
            .map(|d| (d.message_id, format.decode(&d.document, &Default::default()).expect("readable").records))
            .collect()
    }
}
