//! `yrdx conformance`: run a suite and write its reports, list clause coverage, and run the
//! partner and SAMR-intake simulators.

use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use yrdx_adapters::Partner;
use yrdx_conformance::formats::FormatsTarget;
use yrdx_conformance::live::{LiveTarget, PartnerProfile};
use yrdx_conformance::partner_endpoint_suite::{PartnerEndpointTarget, PartnerFacingGateway};
use yrdx_conformance::report::Input;
use yrdx_conformance::requirements::Catalogue;
use yrdx_conformance::runner::{self, RunOptions, Target};
use yrdx_conformance::samr_intake_suite::SamrTarget;
use yrdx_conformance::samr_push_suite::SamrPushTarget;
use yrdx_conformance::samr_simulator::{IntakeOptions, SamrIntake};
use yrdx_conformance::tls::{pem_fingerprint, ClientIdentity};

/// Exit code when the tool or its configuration failed.
const EXIT_TOOL: u8 = 2;

/// `yrdx conformance …`
#[derive(Subcommand)]
pub enum ConformanceCommand {
    /// Run a suite (formats, gateway, tls, samr-intake, samr-push, partner-endpoint) and write JSON, JUnit and HTML
    /// reports.
    /// Exit 0: every required case passed; 1: the system under test failed; 2: the tool or its
    /// configuration failed.
    Run(Box<RunArgs>),
    /// List the cases of a suite: id, whether it is required, what it needs, tags and clauses.
    List(ListArgs),
    /// List the clauses of the interface documents and docs/domain.md that no case checks.
    Coverage(Folders),
    /// Run a well-behaved partner against a gateway: submit a scenario, receive and acknowledge,
    /// answer case transfers with feedback.
    Simulate(SimulateArgs),
    /// Run a SAMR intake that checks packages (GB18030, SM3, numbering) and answers receipts.
    SamrIntake(IntakeArgs),
}

/// Where suites, vectors and the clause catalogue are.
#[derive(Args, Clone)]
pub struct Folders {
    /// The suites folder (default: the suites built into yrdx).
    #[arg(long)]
    suites: Option<PathBuf>,
    /// The vectors folder (default: the vectors built into yrdx).
    #[arg(long)]
    vectors: Option<PathBuf>,
    /// The clause catalogue (default: the one built into yrdx).
    #[arg(long)]
    requirements: Option<PathBuf>,
}

impl Folders {
    fn suites(&self) -> PathBuf {
        self.suites.clone().unwrap_or_else(yrdx_conformance::suite::default_dir)
    }
    fn vectors(&self) -> PathBuf {
        self.vectors.clone().unwrap_or_else(yrdx_conformance::vectors::default_dir)
    }
    fn requirements(&self) -> PathBuf {
        self.requirements.clone().unwrap_or_else(Catalogue::default_path)
    }
}

/// `yrdx conformance list`.
#[derive(Args)]
pub struct ListArgs {
    /// The suite: formats, gateway, tls, samr-intake or samr-push.
    #[arg(long)]
    suite: String,
    /// Only cases carrying one of these tags.
    #[arg(long)]
    tag: Vec<String>,
    #[command(flatten)]
    folders: Folders,
}

/// `yrdx conformance run`.
#[derive(Args)]
pub struct RunArgs {
    /// The suite: formats, gateway, tls, samr-intake, samr-push or partner-endpoint.
    #[arg(long)]
    suite: String,
    /// The partner to act as (gateway, tls, samr-push): jiangsu, zhejiang, beijing or shanghai;
    /// partner-endpoint: the partner whose system is certified.
    #[arg(long = "as")]
    acting_as: Option<String>,
    /// The gateway's URL (gateway, tls, samr-push): https://127.0.0.1:7443.
    #[arg(long)]
    gateway: Option<String>,
    /// The SAMR intake's URL (samr-intake): https://host:port/v1/packages.
    #[arg(long)]
    intake: Option<String>,
    /// A folder written by `yrdx pki init` (`state/dev/pki`): the defaults of --cert and --key
    /// (`<as>.pem`, `<as>.key`), --ca (`ca.pem`), --peer-cert and --peer-key (`<peer>.pem`,
    /// `<peer>.key`) and --issuing-ca-cert and --issuing-ca-key (`ca.pem`, `ca.key`); for
    /// samr-push also --operator-cert and --operator-key (`ops.pem`, `ops.key`), --intake-cert and
    /// --intake-key (`server.pem`, `server.key`) and --intake-client-ca (`ca.pem`).
    #[arg(long)]
    pki: Option<PathBuf>,
    /// samr-push: where yrdx's SAMR intake listens — the address of the gateway's
    /// `[samr] intake_url` (`https://127.0.0.1:8443/v1/packages` → 127.0.0.1:8443);
    /// partner-endpoint: where yrdx listens as the gateway for the partner's system.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,
    /// partner-endpoint: yrdx's server certificate toward the partner, PEM (default from --pki:
    /// `server.pem`).
    #[arg(long)]
    server_cert: Option<PathBuf>,
    /// partner-endpoint: its private key, PEM (`server.key`).
    #[arg(long)]
    server_key: Option<PathBuf>,
    /// partner-endpoint: the CA of the partner's client certificate, PEM (`ca.pem`).
    #[arg(long)]
    client_ca: Option<PathBuf>,
    /// partner-endpoint: seconds each step waits for the partner's system (to connect, submit,
    /// acknowledge, answer).
    #[arg(long, default_value_t = 60)]
    partner_wait_secs: u64,
    /// samr-push: the intake's server certificate, PEM (the gateway's `[samr] ca` must trust it,
    /// and `[samr] server_name` must be in it).
    #[arg(long)]
    intake_cert: Option<PathBuf>,
    /// samr-push: its private key, PEM.
    #[arg(long)]
    intake_key: Option<PathBuf>,
    /// samr-push: the CA of the gateway's SAMR client certificate (`[samr] cert`), PEM.
    #[arg(long)]
    intake_client_ca: Option<PathBuf>,
    /// samr-push: an operator's certificate for the gateway's Admin service (parking and
    /// resend; the case is skipped without it).
    #[arg(long)]
    operator_cert: Option<PathBuf>,
    /// samr-push: its private key, PEM.
    #[arg(long)]
    operator_key: Option<PathBuf>,
    /// samr-push: seconds to wait for a package — the gateway's `[samr] batch_max_age_secs`
    /// (default 60) and margin.
    #[arg(long, default_value_t = 90)]
    package_wait_secs: u64,
    /// samr-push: the most records a package may hold (the gateway's `[samr]
    /// batch_max_records`; SAMR's limit is 1000).
    #[arg(long, default_value_t = 1000)]
    batch_max_records: usize,
    /// Client certificate, PEM (the partner's; for samr-intake, the gateway's SAMR certificate).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Its private key, PEM.
    #[arg(long)]
    key: Option<PathBuf>,
    /// The CA that signed the target's server certificate, PEM.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The name the target's certificate must carry.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// A second registered partner, for deliveries and mailbox isolation.
    #[arg(long, default_value = "shanghai")]
    peer: String,
    /// The peer's client certificate, PEM (cases needing a peer are skipped without it).
    #[arg(long)]
    peer_cert: Option<PathBuf>,
    /// The peer's private key, PEM.
    #[arg(long)]
    peer_key: Option<PathBuf>,
    /// A CA the gateway trusts for clients (test environments only), to mint an expired and a
    /// wrong-SAN certificate; those cases are skipped without it.
    #[arg(long)]
    issuing_ca_cert: Option<PathBuf>,
    /// That CA's private key, PEM.
    #[arg(long)]
    issuing_ca_key: Option<PathBuf>,
    /// formats: an external translator reading canonical JSON on stdin and writing --format.
    #[arg(long)]
    translator: Option<String>,
    /// formats: the format the translator writes.
    #[arg(long)]
    format: Option<String>,
    /// Submissions of the rate-limit burst (default: the case's).
    #[arg(long)]
    burst: Option<u32>,
    /// Size of the oversized document in bytes (default: the case's, 5 MiB).
    #[arg(long)]
    oversized_bytes: Option<usize>,
    /// Run only cases whose id matches one of these globs (`gateway.submit.*`).
    #[arg(long)]
    run: Vec<String>,
    /// Do not run cases whose id matches one of these globs.
    #[arg(long)]
    skip: Vec<String>,
    /// Run only the cases that failed or broke in an earlier run's report.json (the verdict is
    /// then `incomplete` at best: the others did not run).
    #[arg(long)]
    rerun_failed: Option<PathBuf>,
    /// Run only cases carrying one of these tags (`yrdx conformance list` shows them).
    #[arg(long)]
    tag: Vec<String>,
    /// Seconds one call to the target (connect, Submit, opening Receive …) may take before the
    /// step fails.
    #[arg(long, default_value_t = 10)]
    step_timeout_secs: u64,
    /// The gateway's visibility timeout in seconds (its `visibility_timeout_secs`): the
    /// redelivery case waits past it.
    #[arg(long, default_value_t = 60)]
    visibility_timeout_secs: u64,
    /// Seconds one translation by --translator may take before it is killed and the case fails.
    #[arg(long, default_value_t = 10)]
    translator_timeout_secs: u64,
    /// A file of case ids expected to fail, one per line; one that passes fails the run.
    #[arg(long)]
    known_failing: Option<PathBuf>,
    /// Where to write the reports (default: conformance-reports/<suite>-<run id>).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    folders: Folders,
}

/// `yrdx conformance simulate`.
#[derive(Args)]
pub struct SimulateArgs {
    /// The partner to simulate: jiangsu, zhejiang or beijing.
    #[arg(long)]
    partner: String,
    /// The gateway's URL.
    #[arg(long)]
    gateway: String,
    /// The partner's client certificate, PEM.
    #[arg(long)]
    cert: PathBuf,
    /// Its private key, PEM.
    #[arg(long)]
    key: PathBuf,
    /// The CA of the gateway's server certificate, PEM.
    #[arg(long)]
    ca: PathBuf,
    /// The name the gateway's certificate must carry.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// The scenario (default: the partner's scenario built into yrdx).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// How long to keep receiving after the scenario, seconds.
    #[arg(long, default_value_t = 10)]
    listen_secs: u64,
}

/// `yrdx conformance samr-intake`.
#[derive(Args)]
pub struct IntakeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,
    /// The intake's server certificate, PEM.
    #[arg(long)]
    cert: PathBuf,
    /// Its private key, PEM.
    #[arg(long)]
    key: PathBuf,
    /// The CA whose client certificates (the gateway's) are accepted, PEM.
    #[arg(long)]
    client_ca: PathBuf,
    /// Answer 503 with Retry-After to this many requests first.
    #[arg(long, default_value_t = 0)]
    busy_first: u32,
}

/// Why `yrdx conformance run` cannot start: its flags or the files they name (exit 2, the tool or
/// its configuration; nothing is known of the system under test yet).
#[derive(Debug, thiserror::Error)]
enum ConfigError {
    /// A file named by a flag cannot be read.
    #[error("{flag} {path}: {source}")]
    Read {
        /// The flag.
        flag: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A flag the suite needs is missing.
    #[error("{flag} is required for this suite")]
    Required {
        /// The flag.
        flag: &'static str,
    },
    /// Only one flag of a pair is given.
    #[error("{first} and {second} go together")]
    Together {
        /// One flag.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// `--as` is missing.
    #[error("--as is required: {what}")]
    NoPartner {
        /// What it names in this suite.
        what: &'static str,
    },
    /// `--as` names no partner the suite can act as or certify.
    #[error("--as {name}: expected {expected}")]
    UnknownPartner {
        /// The name given.
        name: String,
        /// The names allowed.
        expected: &'static str,
    },
    /// A development partner names a format yrdx does not know.
    #[error("--as {name}: no format {format}")]
    NoFormat {
        /// The partner.
        name: String,
        /// Its format's name.
        format: String,
    },
    /// `--peer` is the partner of `--as`.
    #[error("--peer must be another partner than --as")]
    SamePeer,
    /// `--peer` names no known partner.
    #[error("--peer {name}: not a known partner")]
    UnknownPeer {
        /// The name given.
        name: String,
    },
    /// `--gateway` is missing.
    #[error("--gateway is required: https://host:port")]
    NoGateway,
    /// `--intake` is missing.
    #[error("--intake is required: https://host:port/path")]
    NoIntake,
    /// `--format` names no format a translator can write.
    #[error("--format {format}: expected jiangsu, zhejiang, beijing or canonical")]
    Format {
        /// The name given.
        format: String,
    },
    /// The SAMR intake yrdx plays cannot start on `--listen`.
    #[error("--listen {listen}: {source}")]
    Intake {
        /// The address.
        listen: String,
        /// Why.
        source: yrdx_conformance::samr_simulator::IntakeError,
    },
    /// yrdx's gateway for the partner cannot start.
    #[error(transparent)]
    Endpoint(#[from] yrdx_conformance::partner_endpoint_suite::EndpointError),
    /// A suite whose target is started asynchronously reached the synchronous set-up.
    #[error("the {suite} target is started asynchronously")]
    StartedAsynchronously {
        /// The suite.
        suite: String,
    },
    /// `--suite` names no suite.
    #[error("--suite {suite}: expected formats, gateway, tls, samr-intake, samr-push or partner-endpoint")]
    UnknownSuite {
        /// The name given.
        suite: String,
    },
}

fn read(flag: &'static str, path: &Option<PathBuf>) -> Result<Option<String>, ConfigError> {
    match path {
        None => Ok(None),
        Some(p) => std::fs::read_to_string(p).map(Some).map_err(|source| ConfigError::Read {
            flag,
            path: p.display().to_string(),
            source,
        }),
    }
}

fn required(flag: &'static str, path: &Option<PathBuf>) -> Result<String, ConfigError> {
    read(flag, path)?.ok_or(ConfigError::Required { flag })
}

fn pair(
    cert_flag: &'static str,
    cert: &Option<PathBuf>,
    key_flag: &'static str,
    key: &Option<PathBuf>,
) -> Result<Option<(String, String)>, ConfigError> {
    match (read(cert_flag, cert)?, read(key_flag, key)?) {
        (Some(c), Some(k)) => Ok(Some((c, k))),
        (None, None) => Ok(None),
        _ => Err(ConfigError::Together { first: cert_flag, second: key_flag }),
    }
}

impl RunArgs {
    /// Fills the credential flags not given from `--pki DIR`, where `yrdx pki init` wrote them; a
    /// file that is not there is left out (its cases are skipped, and the verdict says so).
    fn apply_pki(&mut self) {
        let Some(dir) = self.pki.clone() else { return };
        let file = |name: String| Some(dir.join(name)).filter(|p| p.is_file());
        if let Some(me) = self.acting_as.clone() {
            self.cert = self.cert.take().or_else(|| file(format!("{me}.pem")));
            self.key = self.key.take().or_else(|| file(format!("{me}.key")));
        }
        self.ca = self.ca.take().or_else(|| file("ca.pem".into()));
        if self.acting_as.as_deref() != Some(self.peer.as_str()) {
            self.peer_cert = self.peer_cert.take().or_else(|| file(format!("{}.pem", self.peer)));
            self.peer_key = self.peer_key.take().or_else(|| file(format!("{}.key", self.peer)));
        }
        self.issuing_ca_cert = self.issuing_ca_cert.take().or_else(|| file("ca.pem".into()));
        self.issuing_ca_key = self.issuing_ca_key.take().or_else(|| file("ca.key".into()));
        if self.suite == "partner-endpoint" {
            self.server_cert = self.server_cert.take().or_else(|| file("server.pem".into()));
            self.server_key = self.server_key.take().or_else(|| file("server.key".into()));
            self.client_ca = self.client_ca.take().or_else(|| file("ca.pem".into()));
        }
        if self.suite == "samr-push" {
            self.operator_cert = self.operator_cert.take().or_else(|| file("ops.pem".into()));
            self.operator_key = self.operator_key.take().or_else(|| file("ops.key".into()));
            self.intake_cert = self.intake_cert.take().or_else(|| file("server.pem".into()));
            self.intake_key = self.intake_key.take().or_else(|| file("server.key".into()));
            self.intake_client_ca = self.intake_client_ca.take().or_else(|| file("ca.pem".into()));
        }
    }
}

fn inputs(a: &RunArgs) -> Vec<Input> {
    let mut out = vec![Input { name: "--suite".into(), value: a.suite.clone() }];
    let mut text = |name: &str, v: &Option<String>| {
        if let Some(v) = v {
            out.push(Input { name: name.into(), value: v.clone() });
        }
    };
    text("--as", &a.acting_as);
    text("--gateway", &a.gateway);
    text("--intake", &a.intake);
    text("--translator", &a.translator);
    text("--format", &a.format);
    for (name, path) in [
        ("--cert", &a.cert),
        ("--ca", &a.ca),
        ("--peer-cert", &a.peer_cert),
        ("--issuing-ca-cert", &a.issuing_ca_cert),
        ("--operator-cert", &a.operator_cert),
        ("--intake-cert", &a.intake_cert),
        ("--intake-client-ca", &a.intake_client_ca),
        ("--server-cert", &a.server_cert),
        ("--client-ca", &a.client_ca),
    ] {
        if let Some(p) = path {
            let fp = std::fs::read_to_string(p).ok().and_then(|t| pem_fingerprint(&t)).unwrap_or_default();
            out.push(Input { name: name.into(), value: format!("{} (SHA-256 {fp})", p.display()) });
        }
    }
    for (name, path) in [
        ("--key", &a.key),
        ("--peer-key", &a.peer_key),
        ("--issuing-ca-key", &a.issuing_ca_key),
        ("--operator-key", &a.operator_key),
        ("--intake-key", &a.intake_key),
        ("--server-key", &a.server_key),
    ] {
        if path.is_some() {
            out.push(Input { name: name.into(), value: "<redacted>".into() });
        }
    }
    out.push(Input { name: "--server-name".into(), value: a.server_name.clone() });
    out.push(Input { name: "--peer".into(), value: a.peer.clone() });
    if a.suite == "partner-endpoint" {
        out.push(Input { name: "--listen".into(), value: a.listen.clone() });
        out.push(Input { name: "--partner-wait-secs".into(), value: a.partner_wait_secs.to_string() });
    }
    if a.suite == "samr-push" {
        out.push(Input { name: "--listen".into(), value: a.listen.clone() });
        out.push(Input { name: "--package-wait-secs".into(), value: a.package_wait_secs.to_string() });
        out.push(Input { name: "--batch-max-records".into(), value: a.batch_max_records.to_string() });
    }
    if !a.run.is_empty() {
        out.push(Input { name: "--run".into(), value: a.run.join(" ") });
    }
    if !a.skip.is_empty() {
        out.push(Input { name: "--skip".into(), value: a.skip.join(" ") });
    }
    if !a.tag.is_empty() {
        out.push(Input { name: "--tag".into(), value: a.tag.join(" ") });
    }
    if let Some(k) = &a.known_failing {
        out.push(Input { name: "--known-failing".into(), value: k.display().to_string() });
    }
    // Every other flag that shapes the run, given or by its default, so a report says how it
    // was made.
    let path = |p: &Option<PathBuf>, default: &str| {
        p.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| default.into())
    };
    for (name, value) in [
        ("--pki", a.pki.as_ref().map(|p| p.display().to_string())),
        ("--burst", a.burst.map(|n| n.to_string())),
        ("--oversized-bytes", a.oversized_bytes.map(|n| n.to_string())),
        ("--rerun-failed", a.rerun_failed.as_ref().map(|p| p.display().to_string())),
        ("--out", a.out.as_ref().map(|p| p.display().to_string())),
    ] {
        if let Some(value) = value {
            out.push(Input { name: name.into(), value });
        }
    }
    out.push(Input { name: "--step-timeout-secs".into(), value: a.step_timeout_secs.to_string() });
    out.push(Input { name: "--visibility-timeout-secs".into(), value: a.visibility_timeout_secs.to_string() });
    out.push(Input { name: "--translator-timeout-secs".into(), value: a.translator_timeout_secs.to_string() });
    out.push(Input { name: "--suites".into(), value: path(&a.folders.suites, "(built in)") });
    out.push(Input { name: "--vectors".into(), value: path(&a.folders.vectors, "(built in)") });
    out.push(Input { name: "--requirements".into(), value: path(&a.folders.requirements, "(built in)") });
    out
}

/// The gateway as the partner `--as` (and `--peer`) sees it.
fn live_target(a: &RunArgs) -> Result<LiveTarget, ConfigError> {
    let name = a.acting_as.clone().ok_or(ConfigError::NoPartner { what: "the partner to act as" })?;
    let me = ClientIdentity { cert_pem: required("--cert", &a.cert)?, key_pem: required("--key", &a.key)? };
    let me = PartnerProfile::known(&name, me).ok_or_else(|| ConfigError::UnknownPartner {
        name: name.clone(),
        expected: "jiangsu, zhejiang, beijing or shanghai",
    })?;
    let peer = match pair("--peer-cert", &a.peer_cert, "--peer-key", &a.peer_key)? {
        None => None,
        Some((cert_pem, key_pem)) => {
            if a.peer == name {
                return Err(ConfigError::SamePeer);
            }
            Some(
                PartnerProfile::known(&a.peer, ClientIdentity { cert_pem, key_pem })
                    .ok_or_else(|| ConfigError::UnknownPeer { name: a.peer.clone() })?,
            )
        }
    };
    Ok(LiveTarget {
        url: a.gateway.clone().ok_or(ConfigError::NoGateway)?,
        server_name: a.server_name.clone(),
        ca_pem: required("--ca", &a.ca)?,
        me,
        peer,
        issuing_ca: pair("--issuing-ca-cert", &a.issuing_ca_cert, "--issuing-ca-key", &a.issuing_ca_key)?,
        burst: a.burst,
        oversized_bytes: a.oversized_bytes,
        step_timeout: Duration::from_secs(a.step_timeout_secs.max(1)),
        visibility_timeout: Duration::from_secs(a.visibility_timeout_secs),
    })
}

/// The samr-push target: the gateway, and yrdx's SAMR intake started on `--listen`.
async fn samr_push_target(a: &RunArgs) -> Result<Target, ConfigError> {
    let gateway = live_target(a)?;
    let operator = pair("--operator-cert", &a.operator_cert, "--operator-key", &a.operator_key)?
        .map(|(cert_pem, key_pem)| ClientIdentity { cert_pem, key_pem });
    let cert = required("--intake-cert", &a.intake_cert)?;
    let key = required("--intake-key", &a.intake_key)?;
    let client_ca = required("--intake-client-ca", &a.intake_client_ca)?;
    let intake = SamrIntake::start_on(&a.listen, &cert, &key, &client_ca, IntakeOptions::default())
        .await
        .map_err(|source| ConfigError::Intake { listen: a.listen.clone(), source })?;
    Ok(Target::SamrPush(Box::new(SamrPushTarget {
        gateway,
        operator,
        intake: Arc::new(intake),
        reporting_unit: "310000".into(),
        package_wait: Duration::from_secs(a.package_wait_secs.max(1)),
        batch_max_records: a.batch_max_records.clamp(1, yrdx_adapters::samr::MAX_RECORDS),
    })))
}

/// The partner-endpoint target: yrdx's gateway for the partner started on `--listen`.
async fn partner_endpoint_target(a: &RunArgs) -> Result<Target, ConfigError> {
    let name = a.acting_as.clone().ok_or(ConfigError::NoPartner { what: "the partner whose system is certified" })?;
    let (_, region, format) = yrdx_pki::DEV_PARTNERS
        .iter()
        .find(|(n, _, _)| *n == name && *n != "shanghai")
        .ok_or_else(|| ConfigError::UnknownPartner { name: name.clone(), expected: "jiangsu, zhejiang or beijing" })?;
    let format = Partner::from_name(format)
        .ok_or_else(|| ConfigError::NoFormat { name: name.clone(), format: format.to_string() })?;
    let cert = required("--server-cert", &a.server_cert)?;
    let key = required("--server-key", &a.server_key)?;
    let client_ca = required("--client-ca", &a.client_ca)?;
    let gateway = PartnerFacingGateway::start(&a.listen, &cert, &key, &client_ca, format, region).await?;
    say(&format!("yrdx listens as the gateway for {name} on {}: start the partner's system now", gateway.url()));
    Ok(Target::PartnerEndpoint(Box::new(PartnerEndpointTarget {
        partner: name,
        gateway: Arc::new(gateway),
        wait: Duration::from_secs(a.partner_wait_secs.max(1)),
    })))
}

/// The target of a suite whose target needs nothing started (`formats`, `gateway`, `tls`,
/// `samr-intake`).
fn target(a: &RunArgs) -> Result<Target, ConfigError> {
    match a.suite.as_str() {
        "formats" => match (&a.translator, &a.format) {
            (None, None) => Ok(Target::Formats(FormatsTarget::Adapters)),
            (Some(command), Some(format)) => {
                let format = Partner::from_name(format)
                    .filter(|p| *p != Partner::Samr)
                    .ok_or_else(|| ConfigError::Format { format: format.clone() })?;
                Ok(Target::Formats(FormatsTarget::Translator {
                    command: command.clone(),
                    format,
                    timeout: Duration::from_secs(a.translator_timeout_secs.max(1)),
                }))
            }
            _ => Err(ConfigError::Together { first: "--translator", second: "--format" }),
        },
        "gateway" | "tls" => Ok(Target::Live(Box::new(live_target(a)?))),
        "samr-intake" => Ok(Target::Samr(Box::new(SamrTarget {
            url: a.intake.clone().ok_or(ConfigError::NoIntake)?,
            server_name: a.server_name.clone(),
            ca_pem: required("--ca", &a.ca)?,
            identity: ClientIdentity { cert_pem: required("--cert", &a.cert)?, key_pem: required("--key", &a.key)? },
            sender: "310000".into(),
        }))),
        "samr-push" | "partner-endpoint" => Err(ConfigError::StartedAsynchronously { suite: a.suite.clone() }),
        other => Err(ConfigError::UnknownSuite { suite: other.to_string() }),
    }
}

/// Writes a line to standard output; `false` when it is closed (`| head -1`), so the caller stops
/// writing instead of panicking.
fn out(line: &str) -> bool {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}").is_ok()
}

/// Writes a line to standard error, silently when it is closed.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

async fn run(mut a: RunArgs) -> ExitCode {
    let fail = |e: String| {
        say(&format!("yrdx conformance run: {e}"));
        say("verdict error (the tool or its configuration; nothing is known of the system under test)");
        ExitCode::from(EXIT_TOOL)
    };
    a.apply_pki();
    let target = match a.suite.as_str() {
        "samr-push" => samr_push_target(&a).await,
        "partner-endpoint" => partner_endpoint_target(&a).await,
        _ => target(&a),
    };
    let target = match target {
        Ok(t) => t,
        Err(e) => return fail(e.to_string()),
    };
    if let Some(path) = &a.rerun_failed {
        match runner::failed_in(path, &a.suite) {
            Ok(ids) => a.run.extend(ids),
            Err(e) => return fail(e.to_string()),
        }
    }
    let known_failing = match &a.known_failing {
        Some(p) => match runner::read_known_failing(p) {
            Ok(k) => k,
            Err(e) => return fail(e.to_string()),
        },
        None => Default::default(),
    };
    let opts = RunOptions {
        suite: a.suite.clone(),
        suites_dir: a.folders.suites(),
        vectors_dir: a.folders.vectors(),
        catalogue: a.folders.requirements(),
        run: a.run.clone(),
        skip: a.skip.clone(),
        tags: a.tag.clone(),
        known_failing,
        target,
        inputs: inputs(&a),
        progress: true,
    };
    say(&format!("yrdx conformance: suite {} against {}", opts.suite, target_name(&a)));
    let progress = crate::progress::ConformanceProgress::on_stderr();
    // Ctrl-C stops the run after writing the partial report (marked interrupted; never a pass).
    let result = runner::run_until(&opts, &progress, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    progress.finish();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            // The reports say it too, so a CI system reading them sees the configuration's fault.
            let report = runner::error_report(&opts, &e);
            let dir = report_dir(&a, &report);
            if let Ok(w) = runner::write_reports(&report, &dir) {
                say(&format!("reports: {}, {}, {}", w.json.display(), w.junit.display(), w.html.display()));
            }
            return fail(e.to_string());
        }
    };
    let dir = report_dir(&a, &report);
    let written = match runner::write_reports(&report, &dir) {
        Ok(w) => w,
        Err(e) => return fail(e.to_string()),
    };
    let s = &report.summary;
    // Failing cases first: what the reader must act on; then what did not run (cases left out
    // by a selection only counted, the operator chose them).
    use yrdx_conformance::report::Outcome;
    let mut lines: Vec<String> = report
        .cases_for_reading()
        .into_iter()
        .filter(|c| c.fails_run() || c.outcome == Outcome::Error || (c.required && c.outcome == Outcome::Skip))
        .map(|c| format!("  {:<5} {} — {}", c.outcome.as_str(), c.id, c.message))
        .collect();
    let left_out = report.cases.iter().filter(|c| c.required && c.deselected).count();
    if left_out > 0 {
        lines.push(format!("  {left_out} required case(s) left out by --run/--skip/--tag"));
    }
    let summary = format!(
        "{}: {} pass, {} fail, {} error, {} skip, {} omit ({} known failing, {} listed but passed, {} required not run) — verdict {}",
        report.suite,
        s.pass,
        s.fail,
        s.error,
        s.skip,
        s.omit,
        s.known_failing,
        s.unexpectedly_passed,
        s.required_not_run,
        report.verdict
    );
    let _ = [summary, format!("verdict {}: {}", report.verdict, report.verdict_reason)]
        .iter()
        .chain(&lines)
        .chain(&[format!(
            "reports: {}, {}, {}",
            written.json.display(),
            written.junit.display(),
            written.html.display()
        )])
        .all(|l| out(l));
    ExitCode::from(report.exit_code())
}

fn report_dir(a: &RunArgs, report: &yrdx_conformance::report::RunReport) -> PathBuf {
    a.out
        .clone()
        .unwrap_or_else(|| Path::new("conformance-reports").join(format!("{}-{}", report.suite, report.run_id)))
}

fn list(a: ListArgs) -> ExitCode {
    let cases = match runner::load_cases(&a.folders.suites(), &a.suite, &a.folders.vectors(), &a.folders.requirements())
    {
        Ok(c) => c,
        Err(e) => {
            say(&format!("yrdx conformance list: {e}"));
            return ExitCode::from(EXIT_TOOL);
        }
    };
    let cases: Vec<_> =
        cases.iter().filter(|c| a.tag.is_empty() || a.tag.iter().any(|t| c.def.tags.contains(t))).collect();
    if cases.is_empty() {
        say(&format!("yrdx conformance list: no case of the {} suite has tag {}", a.suite, a.tag.join(" or ")));
        return ExitCode::from(EXIT_TOOL);
    }
    for c in cases {
        let d = &c.def;
        let mut line = format!("{}\t{}", d.id, if d.required { "required" } else { "optional" });
        let needs = if d.needs.is_empty() { "-".to_string() } else { d.needs.join(",") };
        let partners = if d.partners.is_empty() { "all".to_string() } else { d.partners.join(",") };
        line.push_str(&format!(
            "\tneeds={needs}\tpartners={partners}\ttags={}\tclauses={}\t{}",
            d.tags.join(","),
            d.requirements.join(","),
            d.title
        ));
        if !out(&line) {
            break;
        }
    }
    ExitCode::SUCCESS
}

fn target_name(a: &RunArgs) -> String {
    if a.suite == "samr-push" {
        return format!("{} (yrdx plays SAMR on {})", a.gateway.clone().unwrap_or_default(), a.listen);
    }
    if a.suite == "partner-endpoint" {
        return format!(
            "{}'s system (yrdx plays the gateway on {})",
            a.acting_as.clone().unwrap_or_default(),
            a.listen
        );
    }
    a.gateway
        .clone()
        .or(a.intake.clone())
        .or(a.translator.clone().map(|t| format!("translator `{t}`")))
        .unwrap_or_else(|| "yrdx adapters".into())
}

fn coverage(f: Folders) -> ExitCode {
    let catalogue = match Catalogue::load(&f.requirements()) {
        Ok(c) => c,
        Err(e) => {
            say(&format!("yrdx conformance coverage: {e}"));
            return ExitCode::from(EXIT_TOOL);
        }
    };
    let covered = match runner::covered_clauses(&f.suites(), &f.vectors(), &catalogue) {
        Ok(c) => c,
        Err(e) => {
            say(&format!("yrdx conformance coverage: {e}"));
            return ExitCode::from(EXIT_TOOL);
        }
    };
    let gaps = catalogue.uncovered(&covered);
    out(&format!(
        "{} of {} clauses are checked by an assertion of some case.",
        catalogue.clauses.len() - gaps.len(),
        catalogue.clauses.len()
    ));
    if gaps.is_empty() {
        out("Every clause is covered.");
    } else {
        out("Clauses no case checks:");
        for c in gaps {
            if !out(&format!("  {:<36} {} — {}", c.id, c.source, c.text)) {
                break;
            }
        }
    }
    ExitCode::SUCCESS
}

async fn simulate(a: SimulateArgs) -> ExitCode {
    let result = async {
        let identity = ClientIdentity {
            cert_pem: std::fs::read_to_string(&a.cert).map_err(|e| format!("--cert {}: {e}", a.cert.display()))?,
            key_pem: std::fs::read_to_string(&a.key).map_err(|e| format!("--key {}: {e}", a.key.display()))?,
        };
        let me = PartnerProfile::known(&a.partner, identity)
            .ok_or_else(|| format!("--partner {}: expected jiangsu, zhejiang or beijing", a.partner))?;
        let scenario_path =
            a.scenario.clone().unwrap_or_else(|| yrdx_conformance::simulate::Scenario::default_path(&a.partner));
        let scenario = yrdx_conformance::simulate::Scenario::load(&scenario_path).map_err(|e| e.to_string())?;
        let ca_pem = std::fs::read_to_string(&a.ca).map_err(|e| format!("--ca {}: {e}", a.ca.display()))?;
        let target = LiveTarget::partner(a.gateway.clone(), a.server_name.clone(), ca_pem, me);
        yrdx_conformance::simulate::run(&target, &scenario, Duration::from_secs(a.listen_secs), &mut |line| {
            out(line);
        })
        .await
        .map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            say(&format!("yrdx conformance simulate: {e}"));
            ExitCode::from(1)
        }
    }
}

async fn samr_intake(a: IntakeArgs) -> ExitCode {
    let read = |flag: &str, p: &PathBuf| std::fs::read_to_string(p).map_err(|e| format!("{flag} {}: {e}", p.display()));
    let files = (read("--cert", &a.cert), read("--key", &a.key), read("--client-ca", &a.client_ca));
    let (cert, key, ca) = match files {
        (Ok(c), Ok(k), Ok(ca)) => (c, k, ca),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            say(&format!("yrdx conformance samr-intake: {e}"));
            return ExitCode::from(EXIT_TOOL);
        }
    };
    let options = yrdx_conformance::samr_simulator::IntakeOptions { busy_first: a.busy_first, ..Default::default() };
    let intake =
        match yrdx_conformance::samr_simulator::SamrIntake::start_on(&a.listen, &cert, &key, &ca, options).await {
            Ok(i) => i,
            Err(e) => {
                say(&format!("yrdx conformance samr-intake: {e}"));
                return ExitCode::from(EXIT_TOOL);
            }
        };
    out(&format!("SAMR intake listening on {} (mutual TLS); Ctrl-C to stop", intake.url()));
    let mut shown = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_millis(300)) => {
                let events = intake.events();
                for e in &events[shown..] {
                    let verdict = if e.accepted { "JSZT=1".to_string() } else { format!("JSZT=0 {}", e.reason) };
                    out(&format!("{} {} {verdict}", e.status, e.number.as_deref().unwrap_or("-")));
                }
                shown = events.len();
            }
        }
    }
    intake.stop();
    ExitCode::SUCCESS
}

/// The exit code for a command line clap refuses: 2 for `yrdx conformance …` (as
/// docs/conformance.md says: the tool's configuration failed), `other` for the rest of `yrdx`.
pub fn usage_exit_code(other: i32) -> i32 {
    if std::env::args().nth(1).as_deref() == Some("conformance") {
        i32::from(EXIT_TOOL)
    } else {
        other
    }
}

/// Runs a `yrdx conformance` command.
pub fn main(command: ConformanceCommand) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            say(&format!("yrdx conformance: {e}"));
            return ExitCode::from(EXIT_TOOL);
        }
    };
    let code = match command {
        ConformanceCommand::Run(a) => runtime.block_on(run(*a)),
        ConformanceCommand::List(a) => list(a),
        ConformanceCommand::Coverage(f) => coverage(f),
        ConformanceCommand::Simulate(a) => runtime.block_on(simulate(a)),
        ConformanceCommand::SamrIntake(a) => runtime.block_on(samr_intake(a)),
    };
    // The built-in material unpacked for this command (when it was used) goes with it.
    yrdx_conformance::embedded::cleanup();
    code
}
