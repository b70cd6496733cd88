//! The gateway's one TOML configuration file, with documented defaults. Relative paths are relative
//! to the directory of the configuration file.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use yrdx_adapters::Partner;
use yrdx_proto::v1::CaseStatus;

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        message: String,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message (names the key).
        message: String,
    },
    /// A value breaks a rule.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// The offending key.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7443))
}
fn default_store() -> PathBuf {
    PathBuf::from("yrdx.sqlite")
}
fn default_max_document_bytes() -> usize {
    4 * 1024 * 1024
}
fn default_max_document_nodes() -> usize {
    yrdx_adapters::DecodeLimits::DEFAULT_MAX_NODES
}
fn default_max_document_records() -> usize {
    yrdx_adapters::DecodeLimits::DEFAULT_MAX_RECORDS
}
fn default_max_problems() -> usize {
    yrdx_adapters::DecodeLimits::DEFAULT_MAX_PROBLEMS
}
fn default_error_details_max_bytes() -> usize {
    4096
}
fn default_shutdown_grace_secs() -> u64 {
    10
}
fn default_visibility_timeout_secs() -> u64 {
    60
}
fn default_max_unacked() -> u32 {
    32
}
fn default_rate() -> u32 {
    50
}
fn default_burst() -> u32 {
    100
}

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (default).
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// The gateway configuration (`yrdx.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (default `127.0.0.1:7443`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The store: a SQLite file (default `yrdx.sqlite`, relative to this file) or a PostgreSQL
    /// URL (`postgres://user@host/db`; several replicas may share it).
    #[serde(default = "default_store")]
    pub store: PathBuf,
    /// PostgreSQL pool size and timeouts (`[postgres]`; used only when `store` is a URL).
    #[serde(default)]
    pub postgres: PostgresConfig,
    /// Largest document accepted, checked before decoding (default 4 MiB).
    #[serde(default = "default_max_document_bytes")]
    pub max_document_bytes: usize,
    /// Most JSON values (array items, object members) or XML elements a document may hold,
    /// counted while parsing and refused before interpretation (default 200 000).
    #[serde(default = "default_max_document_nodes")]
    pub max_document_nodes: usize,
    /// Most records in a canonical document, refused before interpretation (default 1000; the
    /// partner formats' own limits apply too).
    #[serde(default = "default_max_document_records")]
    pub max_document_records: usize,
    /// Most problems collected for one document; decoding stops there and says so (default 1000).
    #[serde(default = "default_max_problems")]
    pub max_problems: usize,
    /// Budget of the `grpc-status-details-bin` trailer of a refused submission, in bytes: the
    /// first problems that fit and a count of the rest (default 4096, well under the 8 KiB
    /// metadata limits of common gRPC clients; `Exchange.Check` lists every problem).
    #[serde(default = "default_error_details_max_bytes")]
    pub error_details_max_bytes: usize,
    /// Seconds `yrdx serve` waits for in-flight calls after SIGTERM or Ctrl-C before it exits
    /// anyway (default 10).
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// Seconds before an unacknowledged delivery is sent again (default 60).
    #[serde(default = "default_visibility_timeout_secs")]
    pub visibility_timeout_secs: u64,
    /// Deliveries in flight per mailbox when the client asks for 0 (default 32).
    #[serde(default = "default_max_unacked")]
    pub max_unacked: u32,
    /// `human` (default) or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Working-day calendar file (default: the calendar shipped with yrdx).
    #[serde(default)]
    pub calendar_file: Option<PathBuf>,
    /// TLS material.
    pub tls: TlsConfig,
    /// The partner registry: who may connect, by certificate identity.
    #[serde(default, rename = "partner")]
    pub partners: Vec<PartnerConfig>,
    /// SAMR docking: where packages are pushed (absent: packages wait in the store's outbox).
    #[serde(default)]
    pub samr: Option<SamrConfig>,
    /// Operators (certificate identities allowed on the admin API).
    #[serde(default, rename = "operator")]
    pub operators: Vec<OperatorConfig>,
    /// Prometheus metrics (absent: none served).
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    /// Where spans go besides the log (`[tracing]`; absent or without `otlp_endpoint`: only the
    /// log).
    #[serde(default)]
    pub tracing: TracingConfig,
    /// The operators' web console (absent: none served).
    #[serde(default)]
    pub console: Option<ConsoleConfig>,
    /// Connection, stream and in-flight limits (`[limits]`; every key has a default).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The gateway's SM2 signing key for receipts and audit chain heads (`[evidence]`; absent:
    /// Submit's replies carry no receipt and chain heads are not signed).
    #[serde(default)]
    pub evidence: Option<EvidenceConfig>,
    /// Where the file was read from (paths resolve against its directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file itself, when loaded from one: a reload (SIGHUP, `Admin.Reload`) reads it again.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// Server certificate, key and the CA that signs client certificates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CA that issues partner and operator certificates.
    pub client_ca: PathBuf,
    /// PEM file of the server certificate (chain).
    pub cert: PathBuf,
    /// PEM file of the server's private key.
    pub key: PathBuf,
    /// Certificate revocation lists (PEM or DER files), one or more per CA of `client_ca`: a
    /// revoked partner or operator certificate fails the handshake (default none: no revocation
    /// check). Once any is set, a certificate whose CA has no CRL here is refused too.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// Accept certificates checked against a CRL past its nextUpdate (default false: such a
    /// handshake is refused, as X-Road refuses a stale OCSP answer).
    #[serde(default)]
    pub allow_stale_crls: bool,
}

fn default_batch_max_records() -> usize {
    1000
}
fn default_batch_max_age_secs() -> u64 {
    60
}
fn default_max_attempts() -> u32 {
    8
}
fn default_max_retry_after_secs() -> u64 {
    3600
}
fn default_max_response_bytes() -> usize {
    1 << 20
}
fn default_retry_base_secs() -> u64 {
    2
}

/// SAMR docking (`docs/partners/samr.md`, transport): HTTPS POST over mutual TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamrConfig {
    /// The intake URL, e.g. `https://samr-intake.example/v1/packages`.
    pub intake_url: String,
    /// PEM of the CA that signs SAMR's server certificate.
    pub ca: PathBuf,
    /// PEM of the gateway's client certificate for SAMR.
    pub cert: PathBuf,
    /// PEM of its key.
    pub key: PathBuf,
    /// Server name to check in SAMR's certificate (default: the URL's host).
    #[serde(default)]
    pub server_name: Option<String>,
    /// Most records per package (default 1000, SAMR's limit).
    #[serde(default = "default_batch_max_records")]
    pub batch_max_records: usize,
    /// A package is sent once its oldest record waited this long (default 60 s).
    #[serde(default = "default_batch_max_age_secs")]
    pub batch_max_age_secs: u64,
    /// Attempts before a package is parked for an operator (default 8).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt (default 2 s).
    #[serde(default = "default_retry_base_secs")]
    pub retry_base_secs: u64,
    /// The longest wait a `Retry-After` may ask for (default 3600 s): a larger (or absurd)
    /// value waits this long, so a package is neither retried at once nor held for years.
    #[serde(default = "default_max_retry_after_secs")]
    pub max_retry_after_secs: u64,
    /// The largest SAMR response body read (default 1 MiB; a receipt is well under 1 KiB): a
    /// response past it is refused while it is read, never held in memory whole.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
}

/// PostgreSQL pool settings (`[postgres]`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// Connections per replica (default 16). The database must allow
    /// `replicas × (pool_size + 2)` connections (each replica also keeps one for notifications
    /// and one per leader lease).
    pub pool_size: usize,
    /// Seconds a call waits for a free connection before answering UNAVAILABLE (default 5).
    pub acquire_timeout_secs: u64,
    /// Seconds connecting may take (default 5).
    pub connect_timeout_secs: u64,
}

impl Default for PostgresConfig {
    fn default() -> PostgresConfig {
        PostgresConfig { pool_size: 16, acquire_timeout_secs: 5, connect_timeout_secs: 5 }
    }
}

impl PostgresConfig {
    /// The store's options.
    pub fn options(&self) -> crate::store::PostgresOptions {
        crate::store::PostgresOptions {
            pool_size: self.pool_size,
            acquire_timeout: std::time::Duration::from_secs(self.acquire_timeout_secs),
            connect_timeout: std::time::Duration::from_secs(self.connect_timeout_secs),
        }
    }
}

/// The Prometheus metrics listener (`[metrics]`; without it, no metrics are served).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of `GET /metrics` (plain HTTP; keep it on loopback or a management network).
    pub listen: SocketAddr,
}

fn default_distinguishing_id() -> String {
    yrdx_evidence::DEFAULT_DISTINGUISHING_ID.to_string()
}
fn default_head_every_entries() -> u64 {
    yrdx_evidence::HeadPolicy::DEFAULT_EVERY_ENTRIES
}
fn default_head_every_secs() -> u64 {
    yrdx_evidence::HeadPolicy::DEFAULT_EVERY_SECS
}

/// Receipts and the audit chain (`[evidence]`, docs/operations.md "Receipts and the audit chain").
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// PKCS#8 PEM file of the gateway's SM2 signing key (`yrdx pki init` writes
    /// `pki/gateway-sign.key`).
    pub key: PathBuf,
    /// PEM file of its certificate, the one partners verify receipts with (`pki/gateway-sign.pem`).
    pub cert: PathBuf,
    /// SM2 distinguishing identifier of receipts and chain heads (default `1234567812345678`).
    #[serde(default = "default_distinguishing_id")]
    pub distinguishing_id: String,
    /// Sign the chain head once this many entries are unsigned (default 1000).
    #[serde(default = "default_head_every_entries")]
    pub head_every_entries: u64,
    /// Sign the chain head once this many seconds passed since the last one, when entries were
    /// added since (default 300).
    #[serde(default = "default_head_every_secs")]
    pub head_every_secs: u64,
}

/// Why the evidence key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceKeyError {
    /// A file could not be read.
    #[error("evidence.{field}: {path}: {message}")]
    Io {
        /// `key` or `cert`.
        field: &'static str,
        /// The file.
        path: String,
        /// The error.
        message: String,
    },
    /// The key or certificate does not read, or they do not belong together.
    #[error("evidence.{field}: {path}: {source}")]
    Key {
        /// `key` or `cert`.
        field: &'static str,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: yrdx_evidence::KeyError,
    },
}

impl EvidenceConfig {
    /// When chain heads are signed.
    pub fn head_policy(&self) -> yrdx_evidence::HeadPolicy {
        yrdx_evidence::HeadPolicy { every_entries: self.head_every_entries, every_secs: self.head_every_secs }
    }

    /// Reads the signing key (under the configured distinguishing identifier) and checks that the
    /// certificate is the key's; paths resolve against `config`'s directory.
    pub fn signing_key(&self, config: &Config) -> Result<yrdx_evidence::GatewaySigningKey, EvidenceKeyError> {
        let read = |field: &'static str, p: &Path| {
            let path = config.resolve(p);
            std::fs::read_to_string(&path)
                .map(|text| (text, path.display().to_string()))
                .map_err(|e| EvidenceKeyError::Io { field, path: path.display().to_string(), message: e.to_string() })
        };
        let (key_pem, key_path) = read("key", &self.key)?;
        let (cert_pem, cert_path) = read("cert", &self.cert)?;
        let key = yrdx_evidence::GatewaySigningKey::from_pkcs8_pem(&key_pem, &self.distinguishing_id)
            .map_err(|source| EvidenceKeyError::Key { field: "key", path: key_path, source })?;
        key.matches_certificate(&cert_pem).map_err(|source| EvidenceKeyError::Key {
            field: "cert",
            path: cert_path,
            source,
        })?;
        Ok(key)
    }

    /// The first key whose value cannot work, with why.
    fn check(&self) -> Option<(&'static str, String)> {
        if self.distinguishing_id.is_empty() || self.distinguishing_id.len() > 8191 {
            return Some((
                "evidence.distinguishing_id",
                format!("{} bytes: must be 1 to 8191 bytes", self.distinguishing_id.len()),
            ));
        }
        if self.head_every_entries == 0 {
            return Some(("evidence.head_every_entries", "must be at least 1".into()));
        }
        if self.head_every_secs == 0 {
            return Some(("evidence.head_every_secs", "must be at least 1".into()));
        }
        None
    }
}

/// Span export (`[tracing]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// An OpenTelemetry collector's OTLP/gRPC endpoint (`http://127.0.0.1:4317`) the spans are
    /// sent to, in batches (default: none, export off). Plain `http://` only: the collector runs
    /// beside the gateway or on the management network, as the metrics scraper does. Needs a
    /// `yrdx` built with the cargo feature `otlp`; a binary without it refuses the key rather
    /// than ignore it.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
}

impl TracingConfig {
    /// Why `otlp_endpoint` cannot work, if it cannot: an absolute `http://` URL with a host, in
    /// a binary built with the `otlp` feature.
    fn check(&self) -> Option<String> {
        let endpoint = self.otlp_endpoint.as_deref()?;
        let uri: Result<tonic::codegen::http::Uri, _> = endpoint.parse();
        match uri {
            Err(e) => Some(format!("'{endpoint}' is not a URL: {e}")),
            Ok(u) if u.scheme_str() != Some("http") || u.host().is_none() => {
                Some(format!("'{endpoint}' is not an http:// URL with a host (the collector's OTLP/gRPC port)"))
            }
            Ok(_) if !cfg!(feature = "otlp") => Some(
                "this yrdx was built without the cargo feature `otlp`: build with `--features otlp` or remove the key"
                    .into(),
            ),
            Ok(_) => None,
        }
    }
}

/// The operators' web console (`[console]`; without it, no console is served): HTTPS on its own
/// address with the gateway's server certificate and client CAs; only a registered operator's
/// certificate gets a page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Address of the console (`https://…/`; keep it on loopback or a management network).
    pub listen: SocketAddr,
}

/// Transport limits (`[limits]`): what one client, or many, can hold of the gateway.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// A TLS handshake not finished in this many seconds is dropped (default 10).
    pub handshake_timeout_secs: u64,
    /// A connection with no call in progress for this many seconds is closed; 0: never (default 300).
    pub idle_timeout_secs: u64,
    /// Open connections, handshaking ones included; the excess is closed right after accept (default 1000).
    pub max_connections: usize,
    /// Open connections from one IP address (default 100).
    pub max_connections_per_address: usize,
    /// HTTP/2 `MAX_CONCURRENT_STREAMS` advertised on every connection (default 64).
    pub max_concurrent_streams: u32,
    /// Calls being read or handled at once over all connections; the excess is refused with
    /// `RESOURCE_EXHAUSTED` before its body is read (default 32).
    pub max_requests_in_flight: usize,
    /// Seconds a refused call is told to wait (`retry-after`, default 1).
    pub retry_after_secs: u64,
    /// Seconds between HTTP/2 pings on a connection; 0: none (default 30).
    pub keepalive_interval_secs: u64,
    /// Seconds to wait for a ping's answer before closing the connection (default 20).
    pub keepalive_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            handshake_timeout_secs: 10,
            idle_timeout_secs: 300,
            max_connections: 1000,
            max_connections_per_address: 100,
            max_concurrent_streams: 64,
            max_requests_in_flight: 32,
            retry_after_secs: 1,
            keepalive_interval_secs: 30,
            keepalive_timeout_secs: 20,
        }
    }
}

impl LimitsConfig {
    /// The first key whose value cannot work, with why.
    fn check(&self) -> Option<(&'static str, &'static str)> {
        let at_least_one: [(&'static str, u64); 6] = [
            ("limits.handshake_timeout_secs", self.handshake_timeout_secs),
            ("limits.max_connections", self.max_connections as u64),
            ("limits.max_connections_per_address", self.max_connections_per_address as u64),
            ("limits.max_concurrent_streams", u64::from(self.max_concurrent_streams)),
            ("limits.max_requests_in_flight", self.max_requests_in_flight as u64),
            ("limits.keepalive_timeout_secs", self.keepalive_timeout_secs),
        ];
        at_least_one.into_iter().find(|(_, v)| *v == 0).map(|(k, _)| (k, "must be at least 1"))
    }
}

/// One connected partner.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// Short name (`jiangsu`).
    pub name: String,
    /// Its envelope id: a region code (`320000`).
    pub region: String,
    /// The format it speaks: `jiangsu`, `zhejiang`, `beijing` or `canonical`, parsed when the
    /// file is loaded (a typo is an error there, never a fall-back to another format's rights).
    pub format: PartnerFormat,
    /// The certificate's SAN URI (`urn:yrdx:partner:jiangsu`).
    pub identity: String,
    /// Submissions per second allowed (default 50).
    #[serde(default = "default_rate")]
    pub rate_per_second: u32,
    /// Burst of submissions allowed above the rate (default 100).
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// A suspended partner stays registered and its mailbox is kept, but every call it makes is
    /// refused with `PERMISSION_DENIED` and its open connections are closed on reload (default
    /// false).
    #[serde(default)]
    pub suspended: bool,
    /// Whether the partner takes part in shared risk monitoring and receives risk signals
    /// (default: Shanghai `310000`, Jiangsu `320000` and Zhejiang `330000`, the programme's risk
    /// partners; set it to register another province's bureau, or to take one out).
    #[serde(default)]
    pub risk_signals: Option<bool>,
}

/// A format a connected partner may speak (SAMR is not one: it never connects to the gateway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub enum PartnerFormat {
    /// Jiangsu's JSON.
    Jiangsu,
    /// Zhejiang's XML.
    Zhejiang,
    /// Beijing's JSON (online sales only).
    Beijing,
    /// Shanghai's canonical records: the only format that grants the Records API and plan
    /// summaries of every plan.
    Canonical,
}

/// A partner's `format` that names none of the formats.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("format: '{0}' is not jiangsu, zhejiang, beijing or canonical")]
pub struct UnknownFormat(pub String);

impl TryFrom<String> for PartnerFormat {
    type Error = UnknownFormat;

    fn try_from(name: String) -> Result<PartnerFormat, UnknownFormat> {
        match name.as_str() {
            "jiangsu" => Ok(PartnerFormat::Jiangsu),
            "zhejiang" => Ok(PartnerFormat::Zhejiang),
            "beijing" => Ok(PartnerFormat::Beijing),
            "canonical" => Ok(PartnerFormat::Canonical),
            _ => Err(UnknownFormat(name)),
        }
    }
}

impl PartnerFormat {
    /// The adapter of this format.
    pub fn adapter(self) -> Partner {
        match self {
            PartnerFormat::Jiangsu => Partner::Jiangsu,
            PartnerFormat::Zhejiang => Partner::Zhejiang,
            PartnerFormat::Beijing => Partner::Beijing,
            PartnerFormat::Canonical => Partner::Canonical,
        }
    }
}

/// One operator identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfig {
    /// Short name.
    pub name: String,
    /// The certificate's SAN URI (`urn:yrdx:operator:ops`).
    pub identity: String,
}

impl Config {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Io { path: path.display().to_string(), message: e.to_string() })?;
        let mut config = Config::parse(&text, &path.display().to_string())?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses and checks configuration text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text)
            .map_err(|e| ConfigError::Syntax { path: origin.to_string(), message: e.to_string() })?;
        let invalid =
            |field: String, message: String| ConfigError::Invalid { path: origin.to_string(), field, message };
        for (i, p) in config.partners.iter().enumerate() {
            let at = |k: &str| format!("partner[{i}].{k}");
            if !yrdx_proto::identifiers::is_region(&p.region) {
                return Err(invalid(at("region"), format!("'{}' is not a region code", p.region)));
            }
            if p.rate_per_second == 0 || p.burst == 0 {
                return Err(invalid(at("rate_per_second"), "rate and burst must be at least 1".into()));
            }
            if config.partners[..i].iter().any(|q| q.region == p.region || q.identity == p.identity || q.name == p.name)
            {
                return Err(invalid(at("name"), format!("partner '{}' repeats a name, region or identity", p.name)));
            }
        }
        if config.max_document_bytes == 0 {
            return Err(invalid("max_document_bytes".into(), "must be at least 1".into()));
        }
        if let Some((field, message)) = config.limits.check() {
            return Err(invalid(field.into(), message.into()));
        }
        if let Some((field, message)) = config.evidence.as_ref().and_then(EvidenceConfig::check) {
            return Err(invalid(field.into(), message));
        }
        if let Some(message) = config.tracing.check() {
            return Err(invalid("tracing.otlp_endpoint".into(), message));
        }
        for (key, value) in [
            ("max_document_nodes", config.max_document_nodes),
            ("max_document_records", config.max_document_records),
            ("max_problems", config.max_problems),
        ] {
            if value == 0 {
                return Err(invalid(key.into(), "must be at least 1".into()));
            }
        }
        if config.error_details_max_bytes < 512 {
            return Err(invalid(
                "error_details_max_bytes".into(),
                format!("{} is too small to name one problem (at least 512)", config.error_details_max_bytes),
            ));
        }
        Ok(config)
    }

    /// The decode limits of this configuration.
    pub fn decode_limits(&self) -> yrdx_adapters::DecodeLimits {
        yrdx_adapters::DecodeLimits {
            max_bytes: self.max_document_bytes,
            max_nodes: self.max_document_nodes,
            max_records: self.max_document_records,
            max_problems: self.max_problems,
            ..yrdx_adapters::DecodeLimits::default()
        }
    }

    /// The largest gRPC message the transport admits: twice the document limit, at least 1 MiB
    /// over it, so that an oversized document gets the service's RESOURCE_EXHAUSTED naming the
    /// limit; only a grossly oversized message is cut off by the transport (OUT_OF_RANGE).
    pub fn transport_message_limit(&self) -> usize {
        (self.max_document_bytes * 2).max(self.max_document_bytes + 1024 * 1024)
    }

    /// Where the store is (`store`: a SQLite file resolved against this file's directory, or a
    /// PostgreSQL URL).
    pub fn store_location(&self) -> crate::store::StoreLocation {
        crate::store::StoreLocation::parse(&self.store.to_string_lossy(), &self.base_dir)
    }

    /// A path of the configuration, resolved against the file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The partner with this region, if connected.
    pub fn partner_by_region(&self, region: &str) -> Option<&PartnerConfig> {
        self.partners.iter().find(|p| p.region == region)
    }

    /// The partner with this certificate identity.
    pub fn partner_by_identity(&self, identity: &str) -> Option<&PartnerConfig> {
        self.partners.iter().find(|p| p.identity == identity)
    }
}

/// The programme's risk partners (`docs/domain.md` section 6: Shanghai, Jiangsu, Zhejiang), who take
/// risk signals unless `[[partner]] risk_signals` says otherwise.
pub const DEFAULT_RISK_SIGNAL_REGIONS: [&str; 3] = ["310000", "320000", "330000"];

impl PartnerConfig {
    /// Whether risk signals go to this partner (`risk_signals`, else the programme's default).
    pub fn takes_risk_signals(&self) -> bool {
        self.risk_signals.unwrap_or_else(|| DEFAULT_RISK_SIGNAL_REGIONS.contains(&self.region.as_str()))
    }

    /// The adapter of the format this partner speaks.
    pub fn format(&self) -> Partner {
        self.format.adapter()
    }
}

/// How long a stage may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// N working days after the opening day.
    WorkingDays(u32),
    /// N calendar days, moved to the next working day when it falls on a day off.
    CalendarDays(u32),
}

/// Stage durations (configuration; the defaults follow `docs/domain.md` section 5; used by `workflow::disposal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// TRANSFERRED → ACCEPTED/RETURNED.
    pub transferred: Due,
    /// ACCEPTED → NOTIFIED.
    pub accepted: Due,
    /// NOTIFIED → OBJECTION or RECTIFY_ORDER (objection window).
    pub notified: Due,
    /// RECHECKING → RECHECK_PASS/FAIL.
    pub rechecking: Due,
    /// RECTIFYING → RECTIFY_VERIFIED.
    pub rectifying: Due,
    /// VERIFIED → CLOSE.
    pub verified: Due,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            transferred: Due::WorkingDays(5),
            accepted: Due::WorkingDays(10),
            notified: Due::CalendarDays(15),
            rechecking: Due::WorkingDays(10),
            rectifying: Due::CalendarDays(60),
            verified: Due::WorkingDays(5),
        }
    }
}

impl Deadlines {
    /// The duration of the stage a status opens (`None` for final states).
    pub fn for_status(&self, status: CaseStatus) -> Option<Due> {
        match status {
            CaseStatus::Transferred => Some(self.transferred),
            CaseStatus::Accepted => Some(self.accepted),
            CaseStatus::Notified => Some(self.notified),
            CaseStatus::Rechecking => Some(self.rechecking),
            CaseStatus::Rectifying => Some(self.rectifying),
            CaseStatus::Verified => Some(self.verified),
            _ => None,
        }
    }
}

/// The smallest valid configuration (one partner), for the unit tests of the configuration and
/// of reloading.
#[cfg(test)]
pub(crate) const MINIMAL: &str = r#"
[tls]
client_ca = "pki/ca.pem"
cert = "pki/server.pem"
key = "pki/server.key"

[[partner]]
name = "jiangsu"
region = "320000"
format = "jiangsu"
identity = "urn:yrdx:partner:jiangsu"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply() {
        let c = Config::parse(MINIMAL, "t").unwrap();
        assert_eq!(c.listen.port(), 7443);
        assert_eq!(c.max_document_bytes, 4 * 1024 * 1024);
        assert_eq!(c.visibility_timeout_secs, 60);
        assert_eq!(c.partners[0].rate_per_second, 50);
        assert_eq!(c.partners[0].format(), Partner::Jiangsu);
        assert_eq!(c.limits, LimitsConfig::default());
        assert_eq!(c.limits.handshake_timeout_secs, 10);
        assert!(c.tls.crls.is_empty() && !c.tls.allow_stale_crls && !c.partners[0].suspended);
        assert!(c.console.is_none(), "no console unless configured");
        let c = Config::parse(
            &MINIMAL.replace("key = \"pki/server.key\"", "key = \"k\"\ncrls = [\"a.crl\"]\nallow_stale_crls = true"),
            "t",
        )
        .unwrap();
        assert_eq!((c.tls.crls.len(), c.tls.allow_stale_crls), (1, true));
        let e = Config::parse(&MINIMAL.replace("key = \"pki/server.key\"", "key = \"k\"\ncrl = []"), "t").unwrap_err();
        assert!(e.to_string().contains("crl"), "{e}");
    }

    #[test]
    fn the_console_section_is_read_and_checked() {
        let c = Config::parse(&format!("{MINIMAL}\n[console]\nlisten = \"127.0.0.1:9465\"\n"), "t").unwrap();
        assert_eq!(c.console.map(|k| k.listen.port()), Some(9465));
        let e = Config::parse(&format!("{MINIMAL}\n[console]\nlisten = \"not an address\"\n"), "t").unwrap_err();
        assert!(e.to_string().contains("listen"), "{e}");
        let e = Config::parse(&format!("{MINIMAL}\n[console]\nlisten = \"127.0.0.1:1\"\nport = 2\n"), "t").unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
    }

    #[test]
    fn limits_are_read_and_checked() {
        let c = Config::parse(&format!("{MINIMAL}\n[limits]\nmax_connections = 7\n"), "t").unwrap();
        assert_eq!(c.limits.max_connections, 7);
        assert_eq!(c.limits.max_requests_in_flight, 32);
        let e = Config::parse(&format!("{MINIMAL}\n[limits]\nmax_requests_in_flight = 0\n"), "t").unwrap_err();
        assert!(e.to_string().contains("limits.max_requests_in_flight"), "{e}");
        let e = Config::parse(&format!("{MINIMAL}\n[limits]\nmax_conections = 1\n"), "t").unwrap_err();
        assert!(e.to_string().contains("max_conections"), "{e}");
    }

    #[test]
    fn evidence_is_optional_defaults_and_is_checked() {
        assert_eq!(Config::parse(MINIMAL, "t").unwrap().evidence, None);
        let with = |extra: &str| {
            format!("{MINIMAL}\n[evidence]\nkey = \"pki/gateway-sign.key\"\ncert = \"pki/gateway-sign.pem\"\n{extra}")
        };
        let e = Config::parse(&with(""), "t").unwrap().evidence.unwrap();
        assert_eq!(e.key, PathBuf::from("pki/gateway-sign.key"));
        assert_eq!(
            (e.distinguishing_id.as_str(), e.head_every_entries, e.head_every_secs),
            ("1234567812345678", 1000, 300)
        );
        assert_eq!(e.head_policy(), yrdx_evidence::HeadPolicy { every_entries: 1000, every_secs: 300 });
        let e = Config::parse(&with("distinguishing_id = \"yrdx\"\nhead_every_entries = 5"), "t").unwrap();
        assert_eq!(e.evidence.map(|e| (e.distinguishing_id, e.head_every_entries)), Some(("yrdx".into(), 5)));
        for (extra, key) in [
            ("head_every_entries = 0", "evidence.head_every_entries"),
            ("head_every_secs = 0", "evidence.head_every_secs"),
            ("distinguishing_id = \"\"", "evidence.distinguishing_id"),
            ("distid = \"x\"", "distid"),
        ] {
            let e = Config::parse(&with(extra), "t").unwrap_err();
            assert!(e.to_string().contains(key), "{e}");
        }
        let e = Config::parse(&format!("{MINIMAL}\n[evidence]\nkey = \"k\"\n"), "t").unwrap_err();
        assert!(e.to_string().contains("cert"), "{e}");
    }

    #[test]
    fn input_limits_default_and_are_checked() {
        let c = Config::parse(MINIMAL, "t").unwrap();
        assert_eq!(
            (c.max_document_nodes, c.max_document_records, c.max_problems, c.error_details_max_bytes),
            (200_000, 1000, 1000, 4096)
        );
        assert_eq!(c.shutdown_grace_secs, 10);
        let limits = c.decode_limits();
        assert_eq!((limits.max_bytes, limits.max_nodes, limits.max_problems), (4 * 1024 * 1024, 200_000, 1000));
        let c = Config::parse(&format!("max_problems = 5\nmax_document_nodes = 9\n{MINIMAL}"), "t").unwrap();
        assert_eq!((c.decode_limits().max_problems, c.decode_limits().max_nodes), (5, 9));
        let e = Config::parse(&format!("max_problems = 0\n{MINIMAL}"), "t").unwrap_err();
        assert!(e.to_string().contains("max_problems"), "{e}");
        let e = Config::parse(&format!("error_details_max_bytes = 100\n{MINIMAL}"), "t").unwrap_err();
        assert!(e.to_string().contains("error_details_max_bytes"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        // An unknown format (or SAMR, which never connects) is refused at load time, naming
        // the key: a typo can never become Shanghai's canonical rights.
        for bad in ["samr", "canonicl", "Canonical", ""] {
            let e = Config::parse(&MINIMAL.replace("format = \"jiangsu\"", &format!("format = \"{bad}\"")), "t")
                .unwrap_err();
            let text = e.to_string();
            assert!(text.contains(&format!("format: '{bad}' is not jiangsu, zhejiang, beijing or canonical")), "{e}");
            assert!(text.contains("line 10"), "names where: {e}");
        }
        let e = Config::parse(&format!("{MINIMAL}\nlistn = 1\n"), "t").unwrap_err();
        assert!(e.to_string().contains("listn"), "{e}");
        let e = Config::parse(&MINIMAL.replace("320000", "390000"), "t").unwrap_err();
        assert!(e.to_string().contains("partner[0].region"), "{e}");
    }

    #[test]
    fn otlp_export_is_off_by_default_and_its_endpoint_is_checked() {
        let c = Config::parse(MINIMAL, "t").unwrap();
        assert_eq!(c.tracing, TracingConfig::default());
        assert_eq!(c.tracing.otlp_endpoint, None);
        let with =
            |endpoint: &str| Config::parse(&format!("{MINIMAL}\n[tracing]\notlp_endpoint = \"{endpoint}\"\n"), "t");
        for bad in ["localhost:4317", "ftp://collector:21", "https://collector:4317", "http://", "not a url"] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains("tracing.otlp_endpoint"), "{bad}: {e}");
        }
        let good = with("http://127.0.0.1:4317");
        if cfg!(feature = "otlp") {
            assert_eq!(good.unwrap().tracing.otlp_endpoint.as_deref(), Some("http://127.0.0.1:4317"));
        } else {
            let e = good.unwrap_err().to_string();
            assert!(e.contains("built without the cargo feature `otlp`"), "{e}");
        }
        let e = Config::parse(&format!("{MINIMAL}\n[tracing]\notlp_endpiont = \"http://x:1\"\n"), "t").unwrap_err();
        assert!(e.to_string().contains("otlp_endpiont"), "{e}");
    }
}
