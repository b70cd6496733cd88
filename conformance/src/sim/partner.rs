//! A well-behaved partner: submits a scripted scenario in its own format, receives and
//! acknowledges its deliveries, and answers case transfers addressed to its region with an ACCEPT
//! feedback — what `yrdx conformance simulate` runs and `yrdx demo` drives.
//!
//! It behaves as the `partner-endpoint` suite expects of a partner's system: it verifies the
//! gateway's server certificate against `--ca` (a connection to a server whose certificate
//! another CA issued fails its handshake and is retried later, never used), reconnects when its
//! connection drops, and answers `RESOURCE_EXHAUSTED` by sending the same bytes again once the
//! `retry-after` has passed.

use crate::suite::RecordSpec;
use crate::suites::live::{LiveTarget, PartnerProfile};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Code, Status};
use yrdx_adapters::{DecodeLimits, Partner, Record};
use yrdx_proto::v1::exchange_client::ExchangeClient;
use yrdx_proto::v1::{
    AckRequest, CaseAction, CaseEvent, CaseFeedback, CaseStatus, Envelope, ReceiveRequest, SubmitReply, SubmitRequest,
};
use yrdx_proto::Timestamp;

/// A scenario file (`conformance/scenarios/<partner>.toml`): named records and the submissions
/// made of them, in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario does.
    pub title: String,
    /// Named records.
    pub records: BTreeMap<String, RecordSpec>,
    /// Submissions, in order.
    pub submit: Vec<ScenarioSubmit>,
}

/// One submission of a scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSubmit {
    /// The records of the document.
    pub records: Vec<String>,
}

/// Why a scenario file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read, or is not a valid scenario.
    #[error(transparent)]
    File(#[from] crate::toml_file::TomlFileError),
    /// A submission names a record the scenario does not declare.
    #[error("{path}: no record named {record:?}")]
    UnknownRecord {
        /// The file.
        path: String,
        /// The name.
        record: String,
    },
}

impl Scenario {
    /// The built-in scenario of a partner (`conformance/scenarios`, [`crate::embedded`]).
    pub fn default_path(partner: &str) -> PathBuf {
        crate::embedded::path("scenarios").join(format!("{partner}.toml"))
    }

    /// Loads a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let shown = || path.display().to_string();
        let s: Scenario = crate::toml_file::load(path)?;
        for sub in &s.submit {
            if let Some(n) = sub.records.iter().find(|n| !s.records.contains_key(*n)) {
                return Err(ScenarioError::UnknownRecord { path: shown(), record: n.clone() });
            }
        }
        Ok(s)
    }
}

/// Why the simulator stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The channel to the gateway could not be set up.
    #[error("{partner}: {source}")]
    Channel {
        /// The partner simulated.
        partner: String,
        /// What is wrong.
        source: crate::suites::live::ChannelError,
    },
    /// A scenario record could not be built.
    #[error("scenario record {name}: {source}")]
    Record {
        /// The record's name in the scenario.
        name: String,
        /// Why.
        source: crate::records::RecordError,
    },
    /// Records could not be written in the partner's format.
    #[error("{partner} {message_id}: cannot encode as {format}: {source}")]
    Encode {
        /// The partner simulated.
        partner: String,
        /// The message.
        message_id: String,
        /// Its format.
        format: Partner,
        /// The encoder's error.
        source: yrdx_adapters::EncodeError,
    },
    /// The gateway refused a Submit (other than busy, or busy too often).
    #[error("{partner} {message_id}: {}: {}", crate::suites::live::code_name(.status.code()), .status.message())]
    Submit {
        /// The partner simulated.
        partner: String,
        /// The message.
        message_id: String,
        /// The gateway's answer.
        status: Status,
    },
    /// Receive failed other than by a lost connection.
    #[error("Receive: {}: {}", crate::suites::live::code_name(.status.code()), .status.message())]
    Receive {
        /// The gateway's answer.
        status: Status,
    },
    /// A delivery is not a document of the partner's format.
    #[error("delivery {delivery_id} does not decode as {format}: {source}")]
    Decode {
        /// The delivery.
        delivery_id: String,
        /// The partner's format.
        format: Partner,
        /// The decoder's error.
        source: yrdx_adapters::DecodeError,
    },
    /// Ack failed other than by a lost connection.
    #[error("Ack {delivery_id}: {}: {}", crate::suites::live::code_name(.status.code()), .status.message())]
    Ack {
        /// The delivery.
        delivery_id: String,
        /// The gateway's answer.
        status: Status,
    },
}

/// Whether a failed call means the connection is gone or could not be made (the gateway went
/// away, closed it, or its certificate was refused): the simulator then tries again later.
fn connection_lost(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Unknown | Code::Cancelled | Code::DeadlineExceeded)
}

/// The `retry-after` of a busy answer, seconds (1 when it names none).
fn retry_after(status: &Status) -> u64 {
    status.metadata().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok()).unwrap_or(1)
}

/// How many times one message is sent before the simulator gives up on it (busy answers and
/// lost connections).
const SEND_ATTEMPTS: u32 = 10;

/// One delivery the simulator took.
#[derive(Debug, Clone)]
pub struct Received {
    /// The delivery id (acknowledged).
    pub delivery_id: String,
    /// The message id delivered.
    pub message_id: String,
    /// The document in the partner's format.
    pub document: Vec<u8>,
    /// Its records.
    pub records: Vec<Record>,
    /// The feedback sent in answer to a case transfer, as `kind id`.
    pub answered: Option<String>,
}

/// A simulated partner connected to a gateway.
pub struct PartnerSimulator {
    /// Who it is.
    pub me: PartnerProfile,
    client: ExchangeClient<Channel>,
    /// The time its feedback events carry (`None`: now).
    pub event_time: Option<Timestamp>,
    sent: u32,
}

impl PartnerSimulator {
    /// Connects to the gateway of `target` as `target.me`.
    pub async fn connect(target: &LiveTarget) -> Result<PartnerSimulator, SimError> {
        let (channel, _) = target
            .channel(Some(&target.me.identity))
            .await
            .map_err(|source| SimError::Channel { partner: target.me.name.clone(), source })?;
        Ok(PartnerSimulator { me: target.me.clone(), client: ExchangeClient::new(channel), event_time: None, sent: 0 })
    }

    /// Submits records in the partner's own format under `message_id`: encoded once, and those
    /// bytes sent again after a busy answer (once its `retry-after` has passed) or a lost
    /// connection, up to [`SEND_ATTEMPTS`] times.
    pub async fn submit(&mut self, records: &[Record], message_id: &str) -> Result<(Vec<u8>, SubmitReply), SimError> {
        let envelope = Envelope {
            message_id: message_id.into(),
            sender: self.me.region.clone(),
            receiver: "310000".into(),
            sent_at: Some(self.event_time.unwrap_or_else(crate::clock::now)),
        };
        let bytes = self
            .me
            .format
            .encode(&envelope, records, 1)
            .map_err(|source| SimError::Encode {
                partner: self.me.name.clone(),
                message_id: message_id.to_string(),
                format: self.me.format,
                source,
            })?
            .bytes;
        let mut attempt = 1;
        loop {
            let status = match self.client.submit(SubmitRequest { document: bytes.clone() }).await {
                Ok(reply) => return Ok((bytes, reply.into_inner())),
                Err(status) => status,
            };
            let pause = match status.code() {
                Code::ResourceExhausted => Duration::from_secs(retry_after(&status)),
                _ if connection_lost(&status) => Duration::from_secs(1),
                _ => Duration::ZERO,
            };
            if pause.is_zero() || attempt >= SEND_ATTEMPTS {
                return Err(SimError::Submit { partner: self.me.name.clone(), message_id: message_id.into(), status });
            }
            attempt += 1;
            tokio::time::sleep(pause).await;
        }
    }

    /// Receives until the mailbox stays quiet for `idle` (or the connection drops): decodes each
    /// delivery in the partner's format, answers case transfers addressed to its region, and
    /// acknowledges. A lost connection ends the drain with what it took; the next one
    /// reconnects.
    pub async fn drain(&mut self, idle: Duration) -> Result<Vec<Received>, SimError> {
        let mut stream = match self.client.receive(ReceiveRequest { max_unacked: 16 }).await {
            Ok(s) => s.into_inner(),
            Err(status) if connection_lost(&status) => return Ok(vec![]),
            Err(status) => return Err(SimError::Receive { status }),
        };
        let mut got = Vec::new();
        loop {
            let d = match tokio::time::timeout(idle, stream.message()).await {
                Ok(Ok(Some(d))) => d,
                Ok(Ok(None)) | Err(_) => break,
                Ok(Err(status)) if connection_lost(&status) => break,
                Ok(Err(status)) => return Err(SimError::Receive { status }),
            };
            let doc = self.me.format.decode(&d.document, &DecodeLimits::default()).map_err(|source| {
                SimError::Decode { delivery_id: d.delivery_id.clone(), format: self.me.format, source }
            })?;
            let mut answered = None;
            for r in &doc.records {
                if let Some(feedback) = self.answer(r) {
                    self.sent += 1;
                    let id = format!("SIM-{}-FK-{:04}", self.me.region, self.sent);
                    let what = format!("{} {}", feedback.kind(), feedback.id());
                    self.submit(std::slice::from_ref(&feedback), &id).await?;
                    answered = Some(what);
                }
            }
            match self.client.ack(AckRequest { delivery_ids: vec![d.delivery_id.clone()] }).await {
                Ok(_) => {}
                // Not acknowledged: the gateway sends it again, and it is answered again.
                Err(status) if connection_lost(&status) => break,
                Err(status) => return Err(SimError::Ack { delivery_id: d.delivery_id, status }),
            }
            got.push(Received {
                delivery_id: d.delivery_id,
                message_id: d.message_id,
                document: d.document,
                records: doc.records,
                answered,
            });
        }
        Ok(got)
    }

    /// The ACCEPT feedback for a case transferred to this partner's region.
    fn answer(&self, r: &Record) -> Option<Record> {
        let Record::CaseTransfer(c) = r else { return None };
        if c.responsible_region != self.me.region || c.status != CaseStatus::Transferred as i32 {
            return None;
        }
        Some(Record::CaseFeedback(CaseFeedback {
            case_id: c.case_id.clone(),
            event: Some(CaseEvent {
                event_id: format!("{}-A", c.case_id.chars().take(60).collect::<String>()),
                at: Some(self.event_time.unwrap_or_else(crate::clock::now)),
                by_region: self.me.region.clone(),
                action: CaseAction::Accept as i32,
                note: "已接收，将依法处置".into(),
                amount: None,
            }),
        }))
    }
}

/// What a simulation did, for the terminal.
#[derive(Debug, Default)]
pub struct SimulationLog {
    /// One line per event.
    pub lines: Vec<String>,
}

/// Runs `scenario` as `target.me`, then keeps receiving for `listen` (answering case transfers).
pub async fn run(
    target: &LiveTarget,
    scenario: &Scenario,
    listen: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<SimulationLog, SimError> {
    let (_, token) = crate::runner::run_token();
    let fill = crate::runner::placeholders(&token, Some(target));
    let mut records = BTreeMap::new();
    for (name, spec) in &scenario.records {
        let record = crate::records::build(spec, &fill, &crate::vectors::default_dir())
            .map_err(|source| SimError::Record { name: name.clone(), source })?;
        records.insert(name.clone(), record);
    }
    let mut sim = PartnerSimulator::connect(target).await?;
    let mut log = SimulationLog::default();
    let mut say = |log: &mut SimulationLog, line: String| {
        progress(&line);
        log.lines.push(line);
    };
    say(&mut log, format!("{} ({}, {}): {}", target.me.name, target.me.region, target.me.format, scenario.title));
    for (i, sub) in scenario.submit.iter().enumerate() {
        let batch: Vec<Record> = sub.records.iter().filter_map(|n| records.get(n).cloned()).collect();
        let id = format!("SIM-{}-{token}-{:02}", target.me.region, i + 1);
        let (bytes, reply) = sim.submit(&batch, &id).await?;
        let refs: Vec<String> = reply.records.iter().map(|r| format!("{} {}", r.kind, r.id)).collect();
        say(&mut log, format!("→ submitted {id} ({} bytes): accepted {}", bytes.len(), refs.join(", ")));
        for w in reply.warnings {
            say(&mut log, format!("  ! {w}"));
        }
    }
    let until = tokio::time::Instant::now() + listen;
    while tokio::time::Instant::now() < until {
        let took = sim.drain(Duration::from_millis(500)).await?;
        if took.is_empty() {
            // Quiet, or the connection is down: a moment before the next Receive.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for r in took {
            let kinds: Vec<String> = r.records.iter().map(|x| format!("{} {}", x.kind(), x.id())).collect();
            say(&mut log, format!("← received {} ({} bytes): {}", r.message_id, r.document.len(), kinds.join(", ")));
            if let Some(a) = r.answered {
                say(&mut log, format!("→ answered with {a}"));
            }
        }
    }
    Ok(log)
}
